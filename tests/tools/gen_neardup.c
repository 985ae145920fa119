/*
 * gen_neardup.c - a synthetic corpus with known near-duplicates and their
 * exact Jaccard similarity, for testing MinHash dedup (lib/minhash).
 *
 *   gen_neardup [--hard] [-t TRUTH.tsv] N [SEED] > corpus.jsonl
 *   gen_neardup [--hard] --truth N [SEED] > truth.tsv
 *
 * Writes N quern documents ({"id","text","source","added","metadata"}).
 * Documents are English-like text of 150 to 1500 words in paragraphs, drawn
 * from a Zipf-distributed vocabulary of 3000 pseudo-words and 120 common
 * English words, with capitals, punctuation, numbers and accented words.
 * 55% of sources stand alone (unrelated documents); the others get one to
 * three variants, each made from the source by one of: exact copy; editing
 * a share of its words in spans of 1-3 words (replace, insert or delete);
 * shuffling its paragraphs; appending a boilerplate footer; or
 * shuffle+edit, edit+footer, shuffle+footer. The mix is a profile (see
 * `profiles` below): "web", the default, is mostly close copies (light
 * edits of 1-2%, 5% of variants heavily edited, 8-20%, as hard negatives);
 * --hard draws every edit rate from the whole 1-20% range, so many pairs
 * fall in the 0.55-0.8 band where the LSH S-curve is steep.
 * Families are mixed into windows of 512 documents, so copies are neither
 * adjacent nor always later than their source.
 *
 * The truth (TSV "id_a<TAB>id_b<TAB>jaccard", id_a before id_b in the
 * corpus) lists every pair of documents of one family with their exact
 * Jaccard of 5-word shingles under lib/minhash's default normalization.
 * Pairs from different families are not listed: they are unrelated (their
 * similarity is near 0; neardup_eval measures it for every pair it finds).
 *
 * Output is a pure function of N, SEED and the profile. metadata.family and metadata.op
 * say how a document was made, for reading the corpus by eye; evaluators
 * must not use them.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "doc.h"
#include "err.h"
#include "minhash.h"

#define WINDOW 512
#define NVOCAB 3000
#define BREAK UINT32_MAX /* paragraph break token */

/* Token bits: word index, then decorations. */
#define T_WORD(t) ((t)&0xFFFFFu)
#define T_CAP 0x100000u
#define T_PUNCT_SHIFT 21 /* 0 none, 1 ',', 2 '.', 3 '?', 4 ';', 5 ':' */

static uint64_t rng;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned below(unsigned n) { return (unsigned)(((rnd() >> 32) * n) >> 32); }
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static const char *const common[] = {
	"the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was",
	"with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from",
	"at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
	"one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when",
	"will", "would", "who", "so", "no", "she", "other", "its", "may", "these",
	"about", "them", "than", "some", "time", "into", "only", "do", "could", "new",
	"also", "two", "any", "like", "then", "first", "where", "over", "such", "our",
	"most", "after", "made", "many", "must", "through", "before", "between",
	"under", "while", "state", "world", "water", "people", "city", "river",
	"school", "market", "report", "system", "during", "against", "without",
	"café", "naïve", "résumé", "Zürich", "São", "façade", "Ångström", "coöperate",
	"1998", "2026", "12", "300", "4.5", "19th", "2,000", "7%", "$40", "#3",
};
#define NCOMMON (sizeof common / sizeof common[0])

static const char *const syl[] = {
	"ba", "be", "bi", "bo", "bu", "ca", "ce", "co", "da", "de", "di", "do", "fa", "fe",
	"ga", "go", "ha", "he", "hi", "ka", "la", "le", "li", "lo", "lu", "ma", "me", "mi",
	"mo", "na", "ne", "ni", "no", "pa", "pe", "pi", "po", "ra", "re", "ri", "ro", "ru",
	"sa", "se", "si", "so", "ta", "te", "ti", "to", "va", "ve", "vi", "za", "ze", "st",
	"tr", "pl", "gr", "ch", "sh", "th", "qu", "an", "en", "in", "on", "ar", "er", "or",
};
#define NSYL (sizeof syl / sizeof syl[0])

static char *vocab[NCOMMON + NVOCAB];
static double zipf_cdf[NCOMMON + NVOCAB];
#define NWORDS (NCOMMON + NVOCAB)

static const char *const footers[] = {
	"Copyright © 2024 Example Media Group. All rights reserved. Privacy Policy | "
	"Terms of Use | Cookie Settings | Contact us | Advertise with us",
	"Subscribe to our newsletter to get the latest stories delivered to your inbox "
	"every morning. You can unsubscribe at any time by clicking the link in the footer "
	"of any email we send.",
	"This article was originally published on our partner site and is republished "
	"here with permission. Views expressed are those of the author alone.",
	"Share this: Facebook, Twitter, LinkedIn, Email, Print. Related posts: ten "
	"things you did not know about the river; why the market moved; letters to the "
	"editor (March 2023).",
	"Comments are closed. Posted in News, Local, Weather and Travel. Tagged city, "
	"school, water, report. Page 1 of 12 — next page »",
	"© 2019–2025 Städtische Bibliothek Zürich · Impressum · Datenschutz · Kontakt · "
	"Öffnungszeiten: Mo–Fr 9–18 Uhr",
};
#define NFOOTERS (sizeof footers / sizeof footers[0])

static void make_vocab(void)
{
	uint64_t save = rng;
	double sum = 0;

	rng = 0x766f636162ULL; /* the vocabulary is the same for every SEED */
	for (size_t i = 0; i < NCOMMON; i++)
		vocab[i] = (char *)common[i];
	for (size_t i = NCOMMON; i < NWORDS; i++) {
		char w[32];
		size_t n = 0;
		unsigned k = 2 + below(3);
		for (unsigned s = 0; s < k; s++) {
			const char *x = syl[below(NSYL)];
			memcpy(w + n, x, strlen(x));
			n += strlen(x);
		}
		if (below(4) == 0)
			w[n++] = "nstlr"[below(5)];
		w[n] = 0;
		vocab[i] = strdup(w);
	}
	for (size_t i = 0; i < NWORDS; i++) {
		sum += 1.0 / pow((double)i + 2.0, 1.05);
		zipf_cdf[i] = sum;
	}
	for (size_t i = 0; i < NWORDS; i++)
		zipf_cdf[i] /= sum;
	rng = save;
}

static uint32_t random_word(void)
{
	double u = unif();
	size_t lo = 0, hi = NWORDS - 1;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (zipf_cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (uint32_t)lo;
}

struct toks {
	uint32_t *v;
	size_t n, cap;
};

static void push(struct toks *t, uint32_t x)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 1024;
		t->v = realloc(t->v, t->cap * sizeof *t->v);
		if (!t->v) {
			fputs("gen_neardup: out of memory\n", stderr);
			exit(1);
		}
	}
	t->v[t->n++] = x;
}

/* A source document: sentences in paragraphs, 150 to 1500 words. */
static void make_source(struct toks *t)
{
	unsigned words = 150 + below(1351), done = 0;

	t->n = 0;
	while (done < words) {
		unsigned sentences = 2 + below(6);
		if (t->n)
			push(t, BREAK);
		for (unsigned s = 0; s < sentences && done < words; s++) {
			unsigned len = 6 + below(17);
			for (unsigned i = 0; i < len && done < words; i++, done++) {
				uint32_t w = random_word();
				if (i == 0)
					w |= T_CAP;
				if (i == len - 1 || done == words - 1)
					w |= (below(20) == 0 ? 3u : 2u) << T_PUNCT_SHIFT;
				else if (below(12) == 0)
					w |= (below(6) == 0 ? 4u + below(2) : 1u) << T_PUNCT_SHIFT;
				push(t, w);
			}
		}
	}
}

static void render(const struct toks *t, struct qn_buf *out)
{
	int first = 1;

	qn_buf_reset(out);
	for (size_t i = 0; i < t->n; i++) {
		uint32_t x = t->v[i];
		if (x == BREAK) {
			qn_buf_adds(out, "\n\n");
			first = 1;
			continue;
		}
		if (!first)
			qn_buf_addc(out, ' ');
		first = 0;
		const char *w = vocab[T_WORD(x)];
		if ((x & T_CAP) && w[0] >= 'a' && w[0] <= 'z') {
			qn_buf_addc(out, (char)(w[0] - 32));
			qn_buf_adds(out, w + 1);
		} else {
			qn_buf_adds(out, w);
		}
		unsigned p = (x >> T_PUNCT_SHIFT) & 7;
		if (p)
			qn_buf_addc(out, ",.?;:"[p - 1]);
	}
}

/*
 * Edits about rate * words words, in spans of 1 to 3 words (a changed
 * phrase, not only single words): each span is replaced (1/2), inserted
 * (1/4) or deleted (1/4).
 */
static void edit(struct toks *t, double rate)
{
	size_t words = 0, done = 0;

	for (size_t i = 0; i < t->n; i++)
		words += t->v[i] != BREAK;
	size_t target = (size_t)floor(rate * (double)words + 0.5);
	if (target == 0)
		target = 1;
	while (done < target && t->n > 4) {
		size_t span = 1 + below(3), i = below((unsigned)(t->n - span));
		unsigned op = below(4);
		if (span > target - done)
			span = target - done;
		for (size_t k = 0; k < span; k++)
			if (t->v[i + k] == BREAK)
				span = k;
		if (span == 0)
			continue;
		if (op < 2) {
			for (size_t k = 0; k < span; k++)
				t->v[i + k] = (t->v[i + k] & ~0xFFFFFu) | random_word();
		} else if (op == 2) {
			for (size_t k = 0; k < span; k++)
				push(t, 0);
			memmove(t->v + i + span, t->v + i, (t->n - span - i) * sizeof *t->v);
			for (size_t k = 0; k < span; k++)
				t->v[i + k] = random_word();
		} else {
			memmove(t->v + i, t->v + i + span, (t->n - span - i) * sizeof *t->v);
			t->n -= span;
		}
		done += span;
	}
}

/* Shuffles the paragraphs into a different order. */
static void shuffle_paragraphs(struct toks *t)
{
	size_t np = 1, *start, *len, *ord, k = 0;
	struct toks o = {0};

	for (size_t i = 0; i < t->n; i++)
		np += t->v[i] == BREAK;
	if (np < 2)
		return;
	start = calloc(np, sizeof *start);
	len = calloc(np, sizeof *len);
	ord = calloc(np, sizeof *ord);
	for (size_t i = 0; i <= t->n; i++) {
		if (i == t->n || t->v[i] == BREAK) {
			len[k] = i - start[k];
			if (++k < np)
				start[k] = i + 1;
		}
	}
	for (size_t i = 0; i < np; i++)
		ord[i] = i;
	for (size_t i = np - 1; i > 0; i--) {
		size_t j = below((unsigned)i + 1), x = ord[i];
		ord[i] = ord[j];
		ord[j] = x;
	}
	if (ord[0] == 0) { /* make sure the text changes */
		size_t x = ord[0];
		ord[0] = ord[1];
		ord[1] = x;
	}
	for (size_t i = 0; i < np; i++) {
		if (i)
			push(&o, BREAK);
		for (size_t j = 0; j < len[ord[i]]; j++)
			push(&o, t->v[start[ord[i]] + j]);
	}
	free(t->v);
	*t = o;
	free(start);
	free(len);
	free(ord);
}

struct gdoc {
	char *text;
	size_t len;
	long family; /* -1: unrelated */
	char op[32];
};

static struct gdoc win[WINDOW + 8];
static size_t nwin;
static unsigned long long next_id;
static long next_family;

static const char *id_of(unsigned long long n)
{
	static char b[2][32];
	static int k;
	k ^= 1;
	snprintf(b[k], sizeof b[k], "nd%07llu", n);
	return b[k];
}

static void add_doc(const struct qn_buf *text, long family, const char *op)
{
	struct gdoc *d = &win[nwin++];

	d->text = malloc(text->len + 1);
	if (!d->text) {
		fputs("gen_neardup: out of memory\n", stderr);
		exit(1);
	}
	memcpy(d->text, text->data, text->len + 1);
	d->len = text->len;
	d->family = family;
	snprintf(d->op, sizeof d->op, "%s", op);
}

static void die(const char *what)
{
	fprintf(stderr, "gen_neardup: %s\n", what);
	exit(1);
}

/* Shuffles the window, writes its documents and its families' truth. */
static void flush(FILE *corpus, FILE *truth, struct qn_minhash *mh)
{
	struct qn_buf line;
	size_t *ord = malloc((nwin + 1) * sizeof *ord);

	if (!ord)
		die("out of memory");
	for (size_t i = 0; i < nwin; i++)
		ord[i] = i;
	for (size_t i = nwin; i > 1; i--) {
		size_t j = below((unsigned)i), x = ord[i - 1];
		ord[i - 1] = ord[j];
		ord[j] = x;
	}
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	if (corpus) {
		for (size_t i = 0; i < nwin; i++) {
			struct gdoc *g = &win[ord[i]];
			json_t *meta = json_object();
			json_object_set_new(meta, "family",
					    g->family < 0 ? json_null() : json_integer(g->family));
			json_object_set_new(meta, "op", json_string(g->op));
			struct qn_doc d = {
				.id = id_of(next_id + i),
				.text = g->text,
				.text_len = g->len,
				.source = "gen_neardup",
				.added = "2026-01-01T00:00:00Z",
				.metadata = meta,
			};
			qn_buf_reset(&line);
			if (qn_doc_jsonl(&line, &d) < 0)
				die("out of memory");
			fwrite(line.data, 1, line.len, corpus);
			json_decref(meta);
		}
	}
	if (truth) {
		/* pos[k]: output position of window document k. */
		size_t *pos = malloc((nwin + 1) * sizeof *pos);
		uint64_t **set = calloc(nwin + 1, sizeof *set);
		size_t *nset = calloc(nwin + 1, sizeof *nset);
		if (!pos || !set || !nset)
			die("out of memory");
		for (size_t i = 0; i < nwin; i++)
			pos[ord[i]] = i;
		for (size_t i = 0; i < nwin; i++)
			if (win[i].family >= 0 &&
			    qn_minhash_shingles(mh, win[i].text, win[i].len, &set[i], &nset[i]) < 0)
				die("out of memory");
		for (size_t i = 0; i < nwin; i++) {
			for (size_t j = i + 1; j < nwin; j++) {
				if (win[i].family < 0 || win[j].family != win[i].family)
					continue;
				size_t a = pos[i] < pos[j] ? pos[i] : pos[j];
				size_t b = pos[i] < pos[j] ? pos[j] : pos[i];
				double jac = qn_jaccard(set[i], nset[i], set[j], nset[j]);
				fprintf(truth, "%s\t", id_of(next_id + a));
				fprintf(truth, "%s\t%.6f\n", id_of(next_id + b), jac);
			}
		}
		for (size_t i = 0; i < nwin; i++)
			free(set[i]);
		free(set);
		free(nset);
		free(pos);
	}
	for (size_t i = 0; i < nwin; i++)
		free(win[i].text);
	next_id += nwin;
	nwin = 0;
	free(ord);
	qn_buf_release(&line);
}

/*
 * Corpus profiles. "web" (the default) follows what near-duplicates on the
 * web mostly are: copies with boilerplate, reordering and light edits, with
 * a few heavily edited variants as hard negatives. "hard" spreads edit
 * rates log-uniformly over the whole 1-20% range, so many derived pairs
 * land in the 0.55-0.8 Jaccard band where 14 x 8 LSH is a coin toss: it
 * measures the S-curve and what --verify buys.
 */
enum { OP_EXACT, OP_LIGHT, OP_HEAVY, OP_SHUFFLE, OP_FOOTER, OP_SHUFFLE_LIGHT, OP_LIGHT_FOOTER,
       OP_SHUFFLE_FOOTER, NOPS };

static const char *const op_names[NOPS] = {
	"exact", "edit %.1f%%", "edit %.1f%%", "shuffle", "footer", "shuffle+edit %.1f%%",
	"edit %.1f%%+footer", "shuffle+footer",
};

struct profile {
	const char *name;
	unsigned family;    /* percent of sources that get variants */
	unsigned one, two;  /* percent with 1 variant, with 1 or 2 (else 3) */
	double light[2], heavy[2]; /* edit rate ranges */
	unsigned ops[NOPS]; /* cumulative percent for each OP_ */
};

static const struct profile profiles[] = {
	{"web", 45, 80, 95, {0.01, 0.02}, {0.08, 0.20}, {20, 40, 45, 60, 80, 87, 95, 100}},
	{"hard", 45, 34, 67, {0.01, 0.20}, {0.01, 0.20}, {15, 45, 45, 60, 75, 85, 95, 100}},
};

static void usage(FILE *f)
{
	fputs("usage: gen_neardup [--hard] [-t TRUTH.tsv] N [SEED] > corpus.jsonl\n"
	      "       gen_neardup [--hard] --truth N [SEED] > truth.tsv\n",
	      f);
}

int main(int argc, char **argv)
{
	const char *truth_path = NULL;
	const struct profile *pr = &profiles[0];
	int truth_only = 0, ai = 1;
	unsigned long long n, seed = 1;
	FILE *corpus = stdout, *truth = NULL;
	struct qn_minhash_params mp;
	struct qn_minhash *mh;
	struct qn_err e;
	struct qn_buf text;
	struct toks src = {0}, var = {0};

	for (; ai < argc && argv[ai][0] == '-' && argv[ai][1]; ai++) {
		if (!strcmp(argv[ai], "--truth")) {
			truth_only = 1;
		} else if (!strcmp(argv[ai], "--hard")) {
			pr = &profiles[1];
		} else if (!strcmp(argv[ai], "-t") && ai + 1 < argc) {
			truth_path = argv[++ai];
		} else if (!strcmp(argv[ai], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (ai >= argc || ai + 2 < argc) {
		usage(stderr);
		return 2;
	}
	char *endp;
	errno = 0;
	n = strtoull(argv[ai], &endp, 10);
	if (errno || *endp || n > 100000000ULL) {
		usage(stderr);
		return 2;
	}
	if (ai + 1 < argc) {
		seed = strtoull(argv[ai + 1], &endp, 10);
		if (*endp) {
			usage(stderr);
			return 2;
		}
	}
	if (truth_only) {
		corpus = NULL;
		truth = stdout;
	} else if (truth_path) {
		truth = fopen(truth_path, "w");
		if (!truth) {
			fprintf(stderr, "gen_neardup: cannot open '%s': %s\n", truth_path,
				strerror(errno));
			return 1;
		}
	}
	qn_minhash_params_default(&mp);
	mh = qn_minhash_new(&mp, &e);
	if (!mh)
		die(e.msg);
	rng = seed * 0x2545F4914F6CDD1DULL + 0x6e656172647570ULL;
	make_vocab();
	qn_buf_init(&text, QN_BUF_UNLIMITED);

	unsigned long long made = 0;
	while (made < n) {
		make_source(&src);
		render(&src, &text);
		if (below(100) >= pr->family || made + 1 == n) {
			add_doc(&text, -1, "unrelated");
			made++;
		} else {
			long fam = next_family++;
			unsigned vr = below(100), variants = vr < pr->one ? 1 : vr < pr->two ? 2 : 3;
			add_doc(&text, fam, "source");
			made++;
			for (unsigned v = 0; v < variants && made < n; v++) {
				unsigned r = below(100), op = 0;
				char name[32];
				double light = pr->light[0] * exp(unif() * log(pr->light[1] / pr->light[0]));
				double heavy = pr->heavy[0] * exp(unif() * log(pr->heavy[1] / pr->heavy[0]));
				while (op < NOPS - 1 && r >= pr->ops[op])
					op++;
				var.n = 0;
				for (size_t i = 0; i < src.n; i++)
					push(&var, src.v[i]);
				if (op == OP_SHUFFLE || op == OP_SHUFFLE_LIGHT || op == OP_SHUFFLE_FOOTER)
					shuffle_paragraphs(&var);
				if (op == OP_LIGHT || op == OP_SHUFFLE_LIGHT || op == OP_LIGHT_FOOTER)
					edit(&var, light);
				if (op == OP_HEAVY)
					edit(&var, heavy);
				snprintf(name, sizeof name, op_names[op],
					 100 * (op == OP_HEAVY ? heavy : light));
				render(&var, &text);
				if (strstr(name, "footer")) {
					qn_buf_adds(&text, "\n\n");
					qn_buf_adds(&text, footers[below(NFOOTERS)]);
				}
				add_doc(&text, fam, name);
				made++;
			}
		}
		if (nwin >= WINDOW)
			flush(corpus, truth, mh);
	}
	flush(corpus, truth, mh);

	free(src.v);
	free(var.v);
	qn_buf_release(&text);
	qn_minhash_free(mh);
	for (size_t i = NCOMMON; i < NWORDS; i++)
		free(vocab[i]);
	int bad = 0;
	if (corpus && (fflush(corpus) || ferror(corpus)))
		bad = 1;
	if (truth && (fflush(truth) || ferror(truth) || (truth != stdout && fclose(truth))))
		bad = 1;
	if (bad) {
		fprintf(stderr, "gen_neardup: write error: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
