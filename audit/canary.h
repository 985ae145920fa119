/*
 * canary.h - what quern-audit memorization (memo.c) and canary (canary.c)
 * share: the model as both load it, a fixed team of worker threads, and
 * the small helpers over a row of logits. Implemented in memo.c.
 *
 * Both commands score many independent sequences (documents, candidate
 * canaries) with the KV-cache inference of lib/gpt2.h: each worker owns
 * one qn_gpt2_infer over the shared, read-only model, whose own kernels run
 * on one thread, so -j N spreads whole sequences over N threads and every
 * result is the same for every N.
 */
#ifndef QN_CANARY_H
#define QN_CANARY_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;
struct qn_manifest;

struct memo_model {
	struct qn_gpt2 *m;
	struct qn_bpe *tok;
	char fingerprint[65]; /* the model's tokenizer */
	const char *dir, *adapter;
};

/* Loads DIR (its config, weights and tokenizer) and the adapter (may be NULL). */
int memo_model_open(struct memo_model *mm, const char *dir, const char *adapter, struct qn_err *e);
void memo_model_close(struct memo_model *mm);
/*
 * A manifest for quern-audit whose argv reads as typed: argv[0], the
 * command words (e.g. "canary", "insert"), then argv[1..argc).
 */
struct qn_manifest *memo_manifest_new(const char *words, int argc, char **argv);
/* Adds the model's files (and the adapter's) to the manifest as inputs. */
void memo_model_manifest(const struct memo_model *mm, struct qn_manifest *man);
/* Adds path as an input (output != 0: an output), hashed now; missing files are skipped. */
void memo_manifest_file(struct qn_manifest *man, const char *path, int output);

/* Runs fn(arg[w]) on n threads (n >= 1), each with OpenMP kept to one thread; waits. */
int memo_run_workers(int n, void *(*fn)(void *), void *arg, size_t arg_size);

/* The most likely token (the first on ties, as the greedy sampler). */
uint32_t memo_argmax(const float *logits, int V);
/* log p(target) under a row of V logits (natural log). */
double memo_logprob(const float *logits, int V, uint32_t target);
/* -j's value: 0 is one thread per CPU. */
int memo_threads(long j);

#endif
