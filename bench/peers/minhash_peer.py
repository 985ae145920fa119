#!/usr/bin/python3
"""minhash_peer.py - the MinHash signature stage of datatrove, re-implemented
for bench/clean.sh, so quern-clean's near-duplicate step has a peer measured
on the same input in the same run.

    minhash_peer.py [--max-bytes N] [--out DIR] corpus.jsonl

datatrove (the pipeline behind FineWeb) cannot be installed here: the bench
machines reach Debian and npm, not PyPI. This is an independent
re-implementation written from the published description of datatrove's
MinhashDedupSignature stage with FineWeb's settings; no datatrove code is
copied. It is the first of datatrove's four MinHash stages (signatures,
buckets, clusters, filter) and the one that reads the text; the others work
on the signature files. For each document of the JSON Lines input:

 1. Text simplification (datatrove's default text normalization):
    lowercase; every run of digits, with an optional decimal part
    ("2026", "3.14"), becomes "0"; every punctuation character (Unicode
    general category P*, plus the ASCII symbols of string.punctuation and
    the C0/C1 control characters) becomes a space; if the text is not
    ASCII, it is decomposed (NFD) and combining marks (Mn) are dropped, so
    "résumé" becomes "resume"; runs of whitespace become one space and the
    ends are trimmed.
 2. Words: the simplified text split on spaces. datatrove runs a
    language-specific word tokenizer here (NLTK for English); after step 1
    has replaced punctuation with spaces, that mostly reduces to the split,
    which is much faster, so this choice favours the peer.
 3. Shingles: every 5 consecutive words joined by a space (word 5-grams),
    each hashed to 64 bits with xxh3_64 of its UTF-8 bytes (datatrove's
    64-bit setting; python3-xxhash, the C library under a Python binding).
    A document with fewer than 5 words has no shingle and gets no
    signature.
 4. MinHash: 112 = 14 buckets x 8 hashes per bucket. Hash function i maps a
    shingle hash h to (a_i * h + b_i) mod p, p = 2^61 - 1 (a Mersenne
    prime), where a_i in [1, p) and b_i in [0, p) are drawn once from
    numpy's RandomState(seed 1). As in numpy uint64 arithmetic, a_i * h + b_i
    wraps modulo 2^64 before the reduction mod p. The signature is the
    minimum over all shingles for each i, computed as one vectorised numpy
    expression over a (shingles x 112) matrix per document.
 5. Output: one file per bucket; for each document, the bucket's 8 minima
    (little-endian uint64) followed by the document's index (uint32). At the
    end every bucket file is read back, its records sorted by (hashes,
    index), and rewritten, so the next stage can merge sorted files.

Prints one line to stdout: documents, signatures, bytes read, seconds and
MB/s. --max-bytes stops after that many bytes of input (whole lines), for a
slice of a large corpus. The signature files go to --out (default: a
temporary folder, deleted at exit).
"""
import argparse
import json
import os
import re
import shutil
import string
import sys
import tempfile
import time
import unicodedata

import numpy as np
import xxhash

N_GRAMS = 5
NUM_BUCKETS = 14
HASHES_PER_BUCKET = 8
NUM_HASHES = NUM_BUCKETS * HASHES_PER_BUCKET
SEED = 1
MERSENNE = np.uint64((1 << 61) - 1)

NUMBERS = re.compile(r"\d+(\.\d+)?")


def punctuation_table():
    """str.translate table: punctuation and control characters to a space."""
    chars = set(string.punctuation)
    chars.update(chr(c) for c in range(0, 32) if chr(c) not in "\t\n\r")
    chars.update(chr(c) for c in range(127, 160))
    for c in range(sys.maxunicode + 1):
        if unicodedata.category(chr(c)).startswith("P"):
            chars.add(chr(c))
    return {ord(c): " " for c in chars}


PUNCT = punctuation_table()
MARKS = {c: None for c in range(sys.maxunicode + 1)
         if unicodedata.category(chr(c)) == "Mn"}


def simplify(text):
    text = text.lower()
    text = NUMBERS.sub("0", text)
    text = text.translate(PUNCT)
    if not text.isascii():
        text = unicodedata.normalize("NFD", text).translate(MARKS)
    return text  # whitespace is normalised by the split in shingle_hashes


def shingle_hashes(text):
    words = simplify(text).split()
    n = len(words) - N_GRAMS + 1
    if n <= 0:
        return None
    h = xxhash.xxh3_64_intdigest
    return np.fromiter(
        (h(" ".join(words[i:i + N_GRAMS]).encode()) for i in range(n)),
        dtype=np.uint64, count=n)


def permutations():
    gen = np.random.RandomState(SEED)
    a = gen.randint(1, MERSENNE, dtype=np.uint64, size=(1, NUM_HASHES))
    b = gen.randint(0, MERSENNE, dtype=np.uint64, size=(1, NUM_HASHES))
    return a, b


RECORD = np.dtype([("h", "<u8", (HASHES_PER_BUCKET,)), ("doc", "<u4")])


def sort_bucket(path):
    rec = np.fromfile(path, dtype=RECORD)
    keys = [rec["doc"]] + [rec["h"][:, i]
                           for i in range(HASHES_PER_BUCKET - 1, -1, -1)]
    rec[np.lexsort(keys)].tofile(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--max-bytes", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()

    out = args.out or tempfile.mkdtemp(prefix="minhash_peer.")
    os.makedirs(out, exist_ok=True)
    a, b = permutations()
    files = [open(os.path.join(out, "bucket_%03d.minhash.sig" % i), "wb")
             for i in range(NUM_BUCKETS)]
    t0 = time.perf_counter()
    docs = sigs = nbytes = 0
    with open(args.corpus, "rb") as f:
        for line in f:
            if args.max_bytes and nbytes + len(line) > args.max_bytes:
                break
            nbytes += len(line)
            idx = docs
            docs += 1
            hashes = shingle_hashes(json.loads(line)["text"])
            if hashes is None:
                continue
            # (shingles x 1) against (1 x 112): wraps mod 2^64, then mod p.
            sig = ((hashes[:, None] * a + b) % MERSENNE).min(axis=0)
            docidx = np.array([idx], dtype="<u4").tobytes()
            for bi, part in enumerate(sig.reshape(NUM_BUCKETS,
                                                  HASHES_PER_BUCKET)):
                files[bi].write(part.astype("<u8").tobytes() + docidx)
            sigs += 1
    for bf in files:
        bf.close()
        sort_bucket(bf.name)
    secs = time.perf_counter() - t0
    if not args.out:
        shutil.rmtree(out)
    print("minhash_peer: %d documents, %d signatures, %d bytes, %.2f s, "
          "%.2f MB/s" % (docs, sigs, nbytes, secs, nbytes / secs / 1e6))


if __name__ == "__main__":
    main()
