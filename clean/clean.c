/*
 * quern-clean - normalize, deduplicate, filter and redact document JSON Lines.
 *
 * main() builds the chain of steps (the default chain, a --config file,
 * then the flags), and runs it in up to three passes over the input:
 *
 *   0. only with line_dedup: count in how many documents each line occurs;
 *   1. every per-document step (normalize, filters, language, PII, rules)
 *      runs on worker threads; the main thread takes the results in input
 *      order, feeds the exact-hash table, the LSH index and the union-find
 *      of the dedup steps, and appends each document (serialized, with what
 *      pass 2 needs to know about it) to a spool file;
 *   2. after the duplicate groups are resolved with the keep rule, the
 *      spool is read back and every document goes to the output or to the
 *      rejects, with metadata.reject = {step, reason[, duplicate_of]}.
 *
 * Without a dedup step nothing has to wait for the end, so pass 1 writes
 * the outputs directly. Stdin is spooled to a temporary file when it must
 * be read twice. Output order is input order for every -j.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "dindex.h"
#include "doc.h"
#include "docjson.h"
#include "dsig.h"
#include "err.h"
#include "filters.h"
#include "hash.h"
#include "lines.h"
#include "lang.h"
#include "linedup.h"
#include "linclass.h"
#include "manifest.h"
#include "minhash.h"
#include "normalize.h"
#include "pii.h"
#include "pool.h"
#include "rd.h"
#include "rules.h"
#include "shardsel.h"
#include "utf8.h"
#include "wr.h"

static const char usage_text[] =
	"usage: quern-clean [options] [file ...]\n"
	"       quern-clean dedup-merge -o DIR SIG...\n"
	"       quern-clean apply-removals --removals LIST|DIR [--shard I/N] [--stats FILE]\n"
	"                                  [-o FILE] [-r FILE] [file ...]\n"
	"       quern-clean merge-stats [-o FILE] [--dedup DIR] STATS...\n"
	"\n"
	"Normalize, deduplicate (exact and MinHash near-duplicates), filter\n"
	"(Gopher, C4, FineWeb quality rules, language), and redact (PII, secrets,\n"
	"regex rules) document JSON Lines. Reads the files (or stdin; .zst and\n"
	".gz are read transparently), writes the kept documents to stdout or -o,\n"
	"and every removed one, with metadata.reject, to --rejects.\n"
	"\n"
	"Output:\n"
	"  -o, --output FILE        kept documents (atomically; .zst compresses)\n"
	"  -r, --rejects FILE       removed documents, with metadata.reject\n"
	"      --stats FILE         counters per step and reason (JSON)\n"
	"      --manifest FILE      the run's manifest (default with -o:\n"
	"                           FILE.manifest.json)\n"
	"      --no-manifest        write no manifest\n"
	"The chain:\n"
	"  -c, --config FILE        steps and parameters (YAML); flags override it\n"
	"      --print-config       print the effective chain and exit\n"
	"      --steps LIST         run these steps, in this order, with defaults\n"
	"                           (comma-separated step names)\n"
	"      --skip LIST          leave these steps out\n"
	"      --keep RULE          which duplicate stays: first (default), longest,\n"
	"                           newest (by created), priority:FIELD (highest)\n"
	"      --dedup-index DIR    persistent exact and near-dup index: documents\n"
	"                           kept by earlier runs count as seen\n"
	"      --verify             check near-dup candidates by exact Jaccard\n"
	"      --threshold J        near-dup Jaccard threshold (default 0.8)\n"
	"      --line-dedup N       add line_dedup: drop lines found in more than N\n"
	"                           documents\n"
	"      --lang LIST          add lang: keep only these languages (en,de,...)\n"
	"      --bad-words FILE     add c4_badwords with this word list\n"
	"      --pii MODE           tag (default), pseudonym, or off\n"
	"      --pii-key-file FILE  the secret key for pseudonyms\n"
	"      --rules FILE         add rules: PCRE2 patterns that drop, redact, tag\n"
	"      --classifier MODEL   add classifier: keep a document when a linear\n"
	"                           model's (quern-train --arch linear) p(label | text)\n"
	"                           is at least --min-score\n"
	"      --min-score P        the classifier's threshold (default 0.5)\n"
	"      --label L            the label scored (default: label 1 of a\n"
	"                           two-label model; needed with more labels)\n"
	"Runs:\n"
	"  -j, --jobs N             worker threads (default 1; 0 = one per CPU)\n"
	"      --max-line SIZE      longest input line (default 256M)\n"
	"Sharding (see docs/sharding.md):\n"
	"      --shard I/N          clean only shard I of N of the inputs; dedup\n"
	"                           steps remove nothing, they record signatures\n"
	"      --signatures FILE    with --shard: write the dedup signatures here\n"
	"  quern-clean dedup-merge -o DIR SIG...   resolve duplicates across shards\n"
	"  quern-clean apply-removals --removals DIR --shard I/N [--stats FILE] ...\n"
	"                           drop shard I's duplicates (and its stats correction)\n"
	"  quern-clean merge-stats --dedup DIR -o FILE STATS...   one --stats file\n"
	"                           for all shards, as a single run writes it\n"
	"  -q, --quiet              no warnings\n"
	"  -v, --verbose            more detail\n"
	"  -h, --help               this help\n"
	"  -V, --version            the version\n"
	"\n"
	"Steps: normalize, line_dedup, exact_dedup, near_dedup, length,\n"
	"gopher_repetition, gopher_quality, c4_quality, c4_badwords,\n"
	"fineweb_quality, lang, pii, rules, classifier. See quern-clean(1).\n"
	"\n"
	"Exit status: 0 done, 1 some input lines were bad (each named on stderr;\n"
	"the rest still flowed) or a failure, 2 usage error, 75 another run holds\n"
	"the --dedup-index lock.\n";

/* ---- steps ---------------------------------------------------------------- */

enum kind {
	K_NORMALIZE,
	K_LINE_DEDUP,
	K_EXACT,
	K_NEAR,
	K_LENGTH,
	K_GOPHER_REP,
	K_GOPHER_Q,
	K_C4_Q,
	K_C4_BAD,
	K_FINEWEB,
	K_LANG,
	K_PII,
	K_RULES,
	K_CLASSIFIER,
	NKIND
};

static const char *const kind_names[NKIND] = {
	"normalize",	    "line_dedup",     "exact_dedup", "near_dedup",	"length",
	"gopher_repetition", "gopher_quality", "c4_quality",  "c4_badwords", "fineweb_quality",
	"lang",		    "pii",	      "rules",       "classifier",
};

/* The filters' enable bits; qf_check runs them in this (rising) order. */
static const unsigned kind_qf[NKIND] = {
	[K_LENGTH] = QF_LENGTH,	  [K_GOPHER_REP] = QF_GOPHER_REPETITION,
	[K_GOPHER_Q] = QF_GOPHER_QUALITY, [K_C4_Q] = QF_C4_QUALITY,
	[K_C4_BAD] = QF_C4_BADWORDS,	  [K_FINEWEB] = QF_FINEWEB_QUALITY,
};

/* qf_result.filter names back to steps. */
static const char *const qf_filter_name[NKIND] = {
	[K_LENGTH] = "length",		 [K_GOPHER_REP] = "gopher_repetition",
	[K_GOPHER_Q] = "gopher_quality", [K_C4_Q] = "c4_quality",
	[K_C4_BAD] = "c4_badwords",	 [K_FINEWEB] = "fineweb_quality",
};

enum keep_rule { KEEP_FIRST, KEEP_LONGEST, KEEP_NEWEST, KEEP_PRIORITY };
static const char *const keep_names[] = {"first", "longest", "newest", "priority", NULL};
static const char *const form_names[] = {"nfc", "nfkc", "none", NULL};
static const char *const pii_modes[] = {"tag", "pseudonym", NULL};

#define MAX_STEPS 32
#define NO_STEP 0xffff

struct step {
	enum kind kind;
	struct cn_step *cs;
	/* normalize */
	int form;
	struct cn_norm_opts norm;
	/* line_dedup */
	struct cn_linedup_opts ld;
	long ld_max_docs, ld_min_chars;
	/* exact_dedup, near_dedup */
	int keep;
	const char *priority_field;
	struct qn_minhash_params mh;
	int casefold, punct, digits, accents, verify;
	double threshold;
	long max_candidates;
	/* filters: the group's first step holds the qf_config for all of it */
	struct qf_config qf;
	struct qf_config *qfp; /* the group's config */
	int group;	       /* this step runs the group: [group, group_end) */
	int group_end;
	const char *words_file;
	int no_boundaries;
	struct qf_words *words;
	/* lang */
	const char **langs;
	size_t nlangs;
	double lang_min_score;
	long lang_max_bytes;
	/* pii */
	int pii_mode, private_ip;
	uint32_t pii_types;
	double pii_min_score;
	const char *key_file;
	unsigned char key[256];
	size_t keylen;
	struct qn_pii *pii;
	/* rules */
	const char *rules_file;
	struct cn_rules *rules;
	/* classifier */
	const char *cls_model, *cls_label;
	double cls_min_score;
	struct qn_lc_model *lc;
	size_t cls_id;
	/* counters: ids cbase .. cbase + ncount - 1 */
	size_t cbase, ncount;
};

/* ---- parameters ------------------------------------------------------------ */

enum ptype { P_BOOL, P_INT, P_LONG, P_SIZE, P_UNS, P_DBL, P_U64, P_STR, P_CHOICE };

struct pdef {
	const char *key;
	enum ptype t;
	size_t off;	  /* into struct step */
	double min, max;  /* numbers */
	const char *const *choices;
};

#define S(f) offsetof(struct step, f)
#define Q(f) ((size_t)-1 - offsetof(struct qf_config, f)) /* into *qfp */
#define END {NULL, 0, 0, 0, 0, NULL}

static const struct pdef p_normalize[] = {
	{"form", P_CHOICE, S(form), 0, 0, form_names},
	{"collapse_spaces", P_BOOL, S(norm.collapse_spaces), 0, 1, NULL},
	{"max_blank_lines", P_INT, S(norm.max_blank_lines), -1, 1000000, NULL},
	{"unicode_spaces", P_BOOL, S(norm.unicode_spaces), 0, 1, NULL},
	{"trim", P_BOOL, S(norm.trim), 0, 1, NULL},
	END,
};
static const struct pdef p_line_dedup[] = {
	{"max_docs", P_LONG, S(ld_max_docs), 1, 4294967295.0, NULL},
	{"min_chars", P_LONG, S(ld_min_chars), 0, 1e9, NULL},
	END,
};
static const struct pdef p_exact[] = {
	{"keep", P_CHOICE, S(keep), 0, 0, keep_names},
	{"priority_field", P_STR, S(priority_field), 0, 0, NULL},
	END,
};
static const struct pdef p_near[] = {
	{"bands", P_UNS, S(mh.bands), 1, QN_MINHASH_MAX_HASHES, NULL},
	{"rows", P_UNS, S(mh.rows), 1, QN_MINHASH_MAX_HASHES, NULL},
	{"ngram", P_UNS, S(mh.ngram), 1, QN_MINHASH_MAX_NGRAM, NULL},
	{"seed", P_U64, S(mh.seed), 0, 0, NULL},
	{"casefold", P_BOOL, S(casefold), 0, 1, NULL},
	{"punctuation", P_BOOL, S(punct), 0, 1, NULL},
	{"digits", P_BOOL, S(digits), 0, 1, NULL},
	{"accents", P_BOOL, S(accents), 0, 1, NULL},
	{"threshold", P_DBL, S(threshold), 0, 1, NULL},
	{"verify", P_BOOL, S(verify), 0, 1, NULL},
	{"max_candidates", P_LONG, S(max_candidates), 1, 1000000, NULL},
	{"keep", P_CHOICE, S(keep), 0, 0, keep_names},
	{"priority_field", P_STR, S(priority_field), 0, 0, NULL},
	END,
};
static const struct pdef p_length[] = {
	{"min_chars", P_SIZE, Q(min_chars), 0, 1e15, NULL},
	{"max_chars", P_SIZE, Q(max_chars), 0, 1e15, NULL},
	END,
};
static const struct pdef p_gopher_rep[] = {
	{"dup_line_frac", P_DBL, Q(dup_line_frac), 0, 1, NULL},
	{"dup_para_frac", P_DBL, Q(dup_para_frac), 0, 1, NULL},
	{"dup_line_char_frac", P_DBL, Q(dup_line_char_frac), 0, 1, NULL},
	{"dup_para_char_frac", P_DBL, Q(dup_para_char_frac), 0, 1, NULL},
	{"top_2_gram_frac", P_DBL, Q(top_ngram_frac[2]), 0, 1, NULL},
	{"top_3_gram_frac", P_DBL, Q(top_ngram_frac[3]), 0, 1, NULL},
	{"top_4_gram_frac", P_DBL, Q(top_ngram_frac[4]), 0, 1, NULL},
	{"dup_5_gram_frac", P_DBL, Q(dup_ngram_frac[5]), 0, 1, NULL},
	{"dup_6_gram_frac", P_DBL, Q(dup_ngram_frac[6]), 0, 1, NULL},
	{"dup_7_gram_frac", P_DBL, Q(dup_ngram_frac[7]), 0, 1, NULL},
	{"dup_8_gram_frac", P_DBL, Q(dup_ngram_frac[8]), 0, 1, NULL},
	{"dup_9_gram_frac", P_DBL, Q(dup_ngram_frac[9]), 0, 1, NULL},
	{"dup_10_gram_frac", P_DBL, Q(dup_ngram_frac[10]), 0, 1, NULL},
	END,
};
static const struct pdef p_gopher_q[] = {
	{"min_doc_words", P_LONG, Q(min_doc_words), 0, 1e15, NULL},
	{"max_doc_words", P_LONG, Q(max_doc_words), 0, 1e15, NULL},
	{"min_avg_word_length", P_DBL, Q(min_avg_word_length), 0, 1e9, NULL},
	{"max_avg_word_length", P_DBL, Q(max_avg_word_length), 0, 1e9, NULL},
	{"max_symbol_word_ratio", P_DBL, Q(max_symbol_word_ratio), 0, 1e9, NULL},
	{"max_bullet_lines_ratio", P_DBL, Q(max_bullet_lines_ratio), 0, 1, NULL},
	{"max_ellipsis_lines_ratio", P_DBL, Q(max_ellipsis_lines_ratio), 0, 1, NULL},
	{"max_non_alpha_words_ratio", P_DBL, Q(max_non_alpha_words_ratio), 0, 1, NULL},
	{"min_stop_words", P_LONG, Q(min_stop_words), 0, 1e15, NULL},
	END,
};
static const struct pdef p_c4_q[] = {
	{"remove_citations", P_BOOL, Q(c4_remove_citations), 0, 1, NULL},
	{"filter_no_terminal_punct", P_BOOL, Q(c4_filter_no_terminal_punct), 0, 1, NULL},
	{"min_num_sentences", P_LONG, Q(c4_min_num_sentences), -1, 1e15, NULL},
	{"min_words_per_line", P_LONG, Q(c4_min_words_per_line), -1, 1e15, NULL},
	{"max_word_length", P_LONG, Q(c4_max_word_length), -1, 1e15, NULL},
	{"filter_lorem_ipsum", P_BOOL, Q(c4_filter_lorem_ipsum), 0, 1, NULL},
	{"filter_javascript", P_BOOL, Q(c4_filter_javascript), 0, 1, NULL},
	{"filter_curly_bracket", P_BOOL, Q(c4_filter_curly_bracket), 0, 1, NULL},
	{"filter_policy", P_BOOL, Q(c4_filter_policy), 0, 1, NULL},
	END,
};
static const struct pdef p_c4_bad[] = {
	{"words", P_STR, S(words_file), 0, 0, NULL},
	{"no_boundaries", P_BOOL, S(no_boundaries), 0, 1, NULL},
	END,
};
static const struct pdef p_fineweb[] = {
	{"line_punct_thr", P_DBL, Q(fw_line_punct_thr), 0, 1, NULL},
	{"line_punct_exclude_zero", P_BOOL, Q(fw_line_punct_exclude_zero), 0, 1, NULL},
	{"short_line_thr", P_DBL, Q(fw_short_line_thr), 0, 1, NULL},
	{"short_line_length", P_LONG, Q(fw_short_line_length), 0, 1e15, NULL},
	{"char_duplicates_ratio", P_DBL, Q(fw_char_duplicates_ratio), 0, 1, NULL},
	{"new_line_ratio", P_DBL, Q(fw_new_line_ratio), 0, 1e9, NULL},
	END,
};
/* lang's "keep" and pii's "types" are lists, read by hand. */
static const struct pdef p_lang[] = {
	{"min_score", P_DBL, S(lang_min_score), 0, 1, NULL},
	{"max_bytes", P_LONG, S(lang_max_bytes), 1, CN_LANG_MAX_BYTES_LIMIT, NULL},
	END,
};
static const struct pdef p_pii[] = {
	{"mode", P_CHOICE, S(pii_mode), 0, 0, pii_modes},
	{"private_ip", P_BOOL, S(private_ip), 0, 1, NULL},
	{"min_score", P_DBL, S(pii_min_score), 0, 1, NULL},
	{"key_file", P_STR, S(key_file), 0, 0, NULL},
	END,
};
static const struct pdef p_rules[] = {
	{"file", P_STR, S(rules_file), 0, 0, NULL},
	END,
};

static const struct pdef p_classifier[] = {
	{"model", P_STR, S(cls_model), 0, 0, NULL},
	{"label", P_STR, S(cls_label), 0, 0, NULL},
	{"min_score", P_DBL, S(cls_min_score), 0, 1, NULL},
	END,
};

static const struct pdef *const kind_params[NKIND] = {
	p_normalize, p_line_dedup, p_exact,  p_near, p_length, p_gopher_rep, p_gopher_q,
	p_c4_q,	     p_c4_bad,	   p_fineweb, p_lang, p_pii,	p_rules,      p_classifier,
};

static void *field_ptr(struct step *s, const struct pdef *d)
{
	if (d->off > (size_t)-1 - sizeof(struct qf_config))
		return (char *)s->qfp + ((size_t)-1 - d->off);
	return (char *)s + d->off;
}

/* Reads one parameter into the step (absent: the default stays), then
 * writes the effective value back in its plain form, so --print-config
 * shows every parameter, defaults included. */
static int read_param(struct step *s, const struct pdef *d, struct qn_err *e)
{
	struct qn_yval *m = &s->cs->params;
	void *p = field_ptr(s, d);
	int rc;

	switch (d->t) {
	case P_BOOL: {
		int v = *(int *)p;
		if ((rc = qn_yget_bool(m, d->key, &v, e)) < 0)
			return -1;
		*(int *)p = v;
		return qn_yset_bool(m, d->key, v);
	}
	case P_INT:
	case P_LONG:
	case P_SIZE:
	case P_UNS: {
		long v = d->t == P_INT ? *(int *)p
			 : d->t == P_LONG ? *(long *)p
			 : d->t == P_SIZE ? (long)*(size_t *)p
					  : (long)*(unsigned *)p;
		if ((rc = qn_yget_int(m, d->key, (long)d->min, (long)d->max, &v, e)) < 0)
			return -1;
		if (d->t == P_INT)
			*(int *)p = (int)v;
		else if (d->t == P_LONG)
			*(long *)p = v;
		else if (d->t == P_SIZE)
			*(size_t *)p = (size_t)v;
		else
			*(unsigned *)p = (unsigned)v;
		return qn_yset_int(m, d->key, v);
	}
	case P_DBL: {
		double v = *(double *)p;
		if ((rc = qn_yget_double(m, d->key, d->min, d->max, &v, e)) < 0)
			return -1;
		*(double *)p = v;
		return qn_yset_double(m, d->key, v);
	}
	case P_U64: {
		const char *str = NULL;
		char t[32];
		if ((rc = qn_yget_str(m, d->key, &str, e)) < 0)
			return -1;
		if (rc == 1) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(str, &end, 0);
			if (errno || end == str || *end || str[0] == '-') {
				char w[64];
				const struct qn_yval *x = qn_yval_get(m, d->key);
				return qn_errf(e, "%s'%s' must be an unsigned 64-bit integer",
					       qn_yval_where(x, w, sizeof w), d->key);
			}
			*(uint64_t *)p = v;
		}
		snprintf(t, sizeof t, "0x%016llx", (unsigned long long)*(uint64_t *)p);
		return qn_yset_str(m, d->key, t);
	}
	case P_STR: {
		const char *v = *(const char **)p;
		if ((rc = qn_yget_str(m, d->key, &v, e)) < 0)
			return -1;
		*(const char **)p = v;
		/* A default (static) is written back; a given value is there. */
		return rc == 0 && v ? qn_yset_str(m, d->key, v) : 0;
	}
	case P_CHOICE: {
		int v = *(int *)p;
		if ((rc = qn_yget_choice(m, d->key, d->choices, &v, e)) < 0)
			return -1;
		*(int *)p = v;
		return qn_yset_str(m, d->key, d->choices[v]);
	}
	}
	return 0;
}

/* ---- counters --------------------------------------------------------------- */

/* Per-step counters besides documents and bytes; names are "step.name". */
static const char *const norm_counters[] = {
	"invalid_utf8",	  "line_endings",  "control",	    "invisible",   "unicode_space",
	"unicode_form",	  "trailing_space", "collapsed_space", "blank_lines", "trimmed",
	"changed",
};
static const char *const ld_counters[] = {"lines_removed", "bytes_removed", "changed"};
static const char *const c4_counters[] = {
	"lines_total", "lines_kept", "too_long_word", "no_terminal_punc", "too_few_words",
	"javascript",  "policy",     "citations",     "changed",
};
static const char *const rules_counters[] = {"redactions", "tagged"};
#define PII_DOCS QN_PII_NTYPES /* after the per-type counters */

#define MAX_COUNTERS 256
static const char *counter_step[MAX_COUNTERS];
static const char *counter_name[MAX_COUNTERS];
static size_t ncounters;

static void add_counters(struct step *s, const char *const *names, size_t n)
{
	s->cbase = ncounters;
	s->ncount = n;
	for (size_t i = 0; i < n && ncounters < MAX_COUNTERS; i++) {
		counter_step[ncounters] = kind_names[s->kind];
		counter_name[ncounters++] = names[i];
	}
}

/* ---- the chain -------------------------------------------------------------- */

static struct cn_config cfg;
static struct step steps[MAX_STEPS];
static size_t nsteps;
static int exact_at = -1, near_at = -1, line_at = -1; /* step indexes */
/* --shard I/N: dedup steps record signatures instead of removing. */
static unsigned shard_index, shard_count;
static struct qn_shard_part *shard_parts; /* per input */
static struct qn_wr *sigw;
static struct qn_buf sigbuf;
static uint64_t sig_records;
static const char *dedup_index_dir;

static int kind_of(const char *name)
{
	for (int k = 0; k < NKIND; k++)
		if (!strcmp(name, kind_names[k]))
			return k;
	return -1;
}

static const char *const default_chain[] = {
	"normalize",	  "exact_dedup",     "gopher_repetition", "gopher_quality",
	"c4_quality",	  "fineweb_quality", "near_dedup",	  "pii",
};

/* The defaults a step starts from, before its parameters are read. */
static void step_defaults(struct step *s)
{
	cn_norm_opts_init(&s->norm);
	s->form = (int)s->norm.form;
	cn_linedup_opts_init(&s->ld);
	s->ld_max_docs = 10;
	s->ld_min_chars = (long)s->ld.min_chars;
	qn_minhash_params_default(&s->mh);
	s->casefold = s->punct = s->digits = s->accents = 1;
	s->threshold = QN_MINHASH_THRESHOLD;
	s->max_candidates = 64;
	s->keep = KEEP_FIRST;
	qf_config_init(&s->qf);
	s->lang_min_score = 0;
	s->lang_max_bytes = CN_LANG_MAX_BYTES;
	s->pii_mode = 0;
	s->pii_types = QN_PII_ALL;
	s->pii_min_score = QN_PII_DEFAULT_MIN_SCORE;
	s->cls_min_score = 0.5;
}

static int read_file_bytes(const char *path, unsigned char *out, size_t max, size_t *n,
			   struct qn_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qn_errno(e, errno, "cannot open '%s'", path);
	ssize_t r = read(fd, out, max);
	int err = errno;
	close(fd);
	if (r < 0)
		return qn_errno(e, err, "cannot read '%s'", path);
	*n = (size_t)r;
	return 0;
}

static int where_err(struct qn_err *e, const struct qn_yval *v, const char *fmt, const char *a,
		     const char *b)
{
	char w[600];
	qn_yval_where(v, w, sizeof w);
	return qn_errf(e, "%s%s%s%s", w, fmt, a ? a : "", b ? b : "");
}

/* Loads the classifier's model and resolves the label it scores. */
static int setup_classifier(struct step *s, struct qn_err *e)
{
	if (!s->cls_model)
		return qn_errf(e, "classifier needs 'model: DIR' (quern-train fit --arch linear's "
				  "output; or --classifier DIR)");
	if (!(s->lc = qn_lc_load(s->cls_model, e))) {
		qn_err_prefix(e, "classifier");
		return -1;
	}
	if (s->cls_label) {
		long id = qn_lc_label_id(s->lc, s->cls_label);
		if (id < 0) {
			char names[600];
			size_t n = 0;
			for (size_t i = 0; i < s->lc->k && n < sizeof names - 8; i++)
				n += (size_t)snprintf(names + n, sizeof names - n, "%s'%s'",
						      i ? ", " : "", s->lc->labels[i]);
			if (n >= sizeof names - 8)
				snprintf(names + sizeof names - 8, 8, ", ...");
			return qn_errf(e, "classifier: '%s' has no label '%s' (its labels: %s)",
				       s->cls_model, s->cls_label, names);
		}
		s->cls_id = (size_t)id;
	} else if (s->lc->k == 2) {
		s->cls_id = 1; /* the positive class of a binary model */
	} else {
		return qn_errf(e,
			       "classifier: '%s' has %zu labels; say which one to score with "
			       "--label L (or 'label:' in the config)",
			       s->cls_model, s->lc->k);
	}
	return 0;
}

/* Reads every step's parameters, checks the chain, loads what steps need. */
static int setup_steps(struct qn_err *e)
{
	nsteps = 0;
	if (cfg.n > MAX_STEPS)
		return qn_errf(e, "%s: more than %d steps", cfg.file ? cfg.file : "config",
			       MAX_STEPS);
	for (size_t i = 0; i < cfg.n; i++) {
		struct cn_step *cs = &cfg.steps[i];
		int k = kind_of(cs->name);
		char w[600] = "";
		if (cs->line)
			snprintf(w, sizeof w, "%s:%u:%u: ", cfg.file ? cfg.file : "config", cs->line,
				 cs->col);
		if (k < 0)
			return qn_errf(e, "%sunknown step '%s' (see quern-clean --help)", w, cs->name);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cfg.steps[j].name, cs->name))
				return qn_errf(e, "%sstep '%s' appears twice", w, cs->name);
		struct step *s = &steps[nsteps++];
		memset(s, 0, sizeof *s);
		s->kind = (enum kind)k;
		s->cs = cs;
		step_defaults(s);
		if (k == K_EXACT)
			exact_at = (int)i;
		else if (k == K_NEAR)
			near_at = (int)i;
		else if (k == K_LINE_DEDUP)
			line_at = (int)i;
	}
	if (exact_at >= 0 && near_at >= 0 && near_at < exact_at)
		return qn_errf(e, "%s:%u:%u: exact_dedup must come before near_dedup",
			       cfg.file ? cfg.file : "config", cfg.steps[exact_at].line,
			       cfg.steps[exact_at].col);
	if (line_at >= 0 && ((exact_at >= 0 && exact_at < line_at) ||
			     (near_at >= 0 && near_at < line_at)))
		return qn_errf(e, "%s:%u:%u: line_dedup must come before exact_dedup and near_dedup",
			       cfg.file ? cfg.file : "config", cfg.steps[line_at].line,
			       cfg.steps[line_at].col);

	/* Consecutive filters in qf_check's order share one qf_check call. */
	for (size_t i = 0; i < nsteps;) {
		if (!kind_qf[steps[i].kind]) {
			i++;
			continue;
		}
		size_t j = i + 1;
		while (j < nsteps && kind_qf[steps[j].kind] &&
		       kind_qf[steps[j].kind] > kind_qf[steps[j - 1].kind])
			j++;
		for (size_t m = i; m < j; m++) {
			steps[m].qfp = &steps[i].qf;
			steps[m].group = (int)i;
			steps[m].group_end = (int)j;
		}
		steps[i].qf.enable = 0;
		for (size_t m = i; m < j; m++)
			steps[i].qf.enable |= kind_qf[steps[m].kind];
		i = j;
	}

	ncounters = 0;
	for (size_t i = 0; i < nsteps; i++) {
		struct step *s = &steps[i];
		const struct pdef *defs = kind_params[s->kind];
		const char *known[40];
		size_t nk = 0;
		for (const struct pdef *d = defs; d->key; d++)
			known[nk++] = d->key;
		if (s->kind == K_LANG)
			known[nk++] = "keep";
		if (s->kind == K_PII)
			known[nk++] = "types";
		known[nk] = NULL;
		if (qn_ycheck_keys(&s->cs->params, known, kind_names[s->kind], e) < 0)
			return -1;
		for (const struct pdef *d = defs; d->key; d++)
			if (read_param(s, d, e) < 0)
				return -1;
		switch (s->kind) {
		case K_NORMALIZE:
			s->norm.form = (enum cn_norm_form)s->form;
			add_counters(s, norm_counters, sizeof norm_counters / sizeof *norm_counters);
			break;
		case K_LINE_DEDUP:
			s->ld.max_docs = (uint32_t)s->ld_max_docs;
			s->ld.min_chars = (size_t)s->ld_min_chars;
			add_counters(s, ld_counters, sizeof ld_counters / sizeof *ld_counters);
			break;
		case K_EXACT:
		case K_NEAR:
			if (s->keep == KEEP_PRIORITY && !s->priority_field)
				return where_err(e, qn_yval_get(&s->cs->params, "keep"),
						 "keep: priority needs priority_field", NULL, NULL);
			s->mh.flags = (s->casefold ? QN_MINHASH_CASEFOLD : 0) |
				      (s->punct ? QN_MINHASH_PUNCT : 0) |
				      (s->digits ? QN_MINHASH_DIGITS : 0) |
				      (s->accents ? QN_MINHASH_ACCENTS : 0);
			if (s->kind == K_NEAR && (size_t)s->mh.bands * s->mh.rows > QN_MINHASH_MAX_HASHES)
				return where_err(e, qn_yval_get(&s->cs->params, "bands"),
						 "near_dedup: bands x rows is over 1024", NULL, NULL);
			break;
		case K_C4_Q:
			add_counters(s, c4_counters, sizeof c4_counters / sizeof *c4_counters);
			break;
		case K_C4_BAD:
			if (!s->words_file)
				return qn_errf(e, "c4_badwords needs 'words: FILE' (a word list; "
						  "or --bad-words FILE)");
			s->words = qf_words_new(s->no_boundaries);
			if (!s->words || qf_words_load(s->words, s->words_file, e) < 0)
				return s->words ? -1 : qn_errf(e, "out of memory");
			break;
		case K_LANG: {
			int rc = qn_yget_strlist(&s->cs->params, "keep", &s->langs, &s->nlangs, e);
			if (rc < 0)
				return -1;
			if (rc == 0 && qn_yset_strlist(&s->cs->params, "keep", NULL, 0) < 0)
				return qn_errf(e, "out of memory");
			break;
		}
		case K_PII: {
			const char **types = NULL;
			size_t nt = 0;
			int rc = qn_yget_strlist(&s->cs->params, "types", &types, &nt, e);
			if (rc < 0)
				return -1;
			if (rc == 1) {
				s->pii_types = 0;
				for (size_t t = 0; t < nt; t++) {
					int ty = qn_pii_type_parse(types[t]);
					if (!strcasecmp(types[t], "all"))
						s->pii_types = QN_PII_ALL;
					else if (ty < 0) {
						rc = where_err(e, qn_yval_get(&s->cs->params, "types"),
							       "pii: unknown type '", types[t], "'");
						free(types);
						return rc;
					} else
						s->pii_types |= QN_PII_BIT(ty);
				}
			} else {
				const char *all = "all";
				if (qn_yset_strlist(&s->cs->params, "types", &all, 1) < 0)
					return qn_errf(e, "out of memory");
			}
			free(types);
			struct qn_pii_opts po;
			qn_pii_opts_init(&po);
			po.types = s->pii_types;
			po.include_private_ip = s->private_ip;
			po.min_score = s->pii_min_score;
			if (s->pii_mode == QN_PII_PSEUDONYM) {
				if (!s->key_file)
					return qn_errf(e, "pii: mode pseudonym needs key_file (a secret "
							  "key; or --pii-key-file)");
				if (read_file_bytes(s->key_file, s->key, sizeof s->key, &s->keylen,
						    e) < 0)
					return -1;
				if (s->keylen < 16)
					return qn_errf(e, "pii: key file '%s' holds %zu bytes; use at "
							  "least 16 random bytes",
						       s->key_file, s->keylen);
			}
			s->pii = qn_pii_new(&po, e);
			if (!s->pii)
				return -1;
			static const char *pii_names[QN_PII_NTYPES + 1];
			for (int t = 0; t < QN_PII_NTYPES; t++)
				pii_names[t] = qn_pii_type_name((enum qn_pii_type)t);
			pii_names[QN_PII_NTYPES] = "documents_with_findings";
			add_counters(s, pii_names, QN_PII_NTYPES + 1);
			break;
		}
		case K_RULES:
			if (!s->rules_file)
				return qn_errf(e, "rules needs 'file: FILE' (or --rules FILE)");
			s->rules = cn_rules_load(s->rules_file, e);
			if (!s->rules)
				return -1;
			add_counters(s, rules_counters, 2);
			break;
		case K_CLASSIFIER:
			if (setup_classifier(s, e) < 0)
				return -1;
			break;
		default:
			break;
		}
	}
	if (ncounters >= MAX_COUNTERS)
		return qn_errf(e, "too many counters");
	return 0;
}

static void free_steps(void)
{
	for (size_t i = 0; i < nsteps; i++) {
		qf_words_free(steps[i].words);
		qn_pii_free(steps[i].pii);
		cn_rules_free(steps[i].rules);
		qn_lc_model_free(steps[i].lc);
		free(steps[i].langs);
	}
	nsteps = 0;
}

/* ---- per-thread scratch ----------------------------------------------------- */

struct wctx {
	struct qn_buf a, b, ser, text;
	struct qf_result qr;
	struct qn_minhash *mh;
	struct qn_pii_hits hits;
	struct cn_rules_result rr;
	int rr_ready;
	struct qn_lc_scratch lcs;
	const struct qn_lc_model *lcs_for; /* the model lcs was sized for */
	struct wctx *next;
};

static pthread_mutex_t wctx_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wctx *wctx_all;
static __thread struct wctx *wctx_mine;

static struct wctx *wctx_get(void)
{
	if (wctx_mine)
		return wctx_mine;
	struct wctx *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	qn_buf_init(&w->a, QN_BUF_UNLIMITED);
	qn_buf_init(&w->b, QN_BUF_UNLIMITED);
	qn_buf_init(&w->ser, QN_BUF_UNLIMITED);
	qn_buf_init(&w->text, QN_BUF_UNLIMITED);
	qf_result_init(&w->qr);
	qn_pii_hits_init(&w->hits, 0);
	if (near_at >= 0) {
		struct qn_err e;
		w->mh = qn_minhash_new(&steps[near_at].mh, &e);
		if (!w->mh) {
			free(w);
			return NULL;
		}
	}
	pthread_mutex_lock(&wctx_mu);
	w->next = wctx_all;
	wctx_all = w;
	pthread_mutex_unlock(&wctx_mu);
	return wctx_mine = w;
}

static void wctx_free_all(void)
{
	while (wctx_all) {
		struct wctx *w = wctx_all;
		wctx_all = w->next;
		qn_buf_release(&w->a);
		qn_buf_release(&w->b);
		qn_buf_release(&w->ser);
		qn_buf_release(&w->text);
		qf_result_release(&w->qr);
		qn_pii_hits_release(&w->hits);
		if (w->rr_ready)
			cn_rules_result_release(&w->rr);
		if (w->lcs_for)
			qn_lc_scratch_release(&w->lcs);
		qn_minhash_free(w->mh);
		free(w);
	}
}

/* ---- batches of input lines --------------------------------------------------- */

enum { PASS_COUNT, PASS_CLEAN };

/* What the main thread needs of one document. */
struct dres {
	int ok;		 /* 0: a bad line; its message is in msgs */
	size_t rec_off;	 /* its record in out */
	size_t id_off;	 /* its id (NUL-terminated) in ids */
	int reached_exact, reached_near, has_sig, too_short;
	struct qn_hash128 h;
	size_t keys_off; /* bands keys in keys[] */
	uint64_t *set;	 /* --verify: sorted shingle hashes */
	size_t nset;
	double prio_exact, prio_near;
	uint64_t *lines; /* PASS_COUNT: distinct line hashes */
	size_t nlines;
};

struct batch {
	int pass;
	struct qn_lines l;
	/* results */
	struct dres *res;
	struct qn_buf out, ids, msgs;
	uint64_t *keys;
};

static struct batch *batch_new(int pass, const char *file)
{
	struct batch *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->pass = pass;
	qn_lines_init(&b->l, file);
	qn_buf_init(&b->out, QN_BUF_UNLIMITED);
	qn_buf_init(&b->ids, QN_BUF_UNLIMITED);
	qn_buf_init(&b->msgs, QN_BUF_UNLIMITED);
	return b;
}

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; b->res && i < b->l.n; i++) {
		free(b->res[i].set);
		free(b->res[i].lines);
	}
	qn_lines_release(&b->l);
	qn_buf_release(&b->out);
	qn_buf_release(&b->ids);
	qn_buf_release(&b->msgs);
	free(b->res);
	free(b->keys);
	free(b);
}

/* ---- one document ------------------------------------------------------------ */

/*
 * A record, as pass 1 leaves it for pass 2 (in the spool, host byte order):
 * struct rec_head, then steplen[nsteps + 1] (uint64_t: the text's bytes as
 * it entered each step; the last is the final text), ncnt struct rec_cnt,
 * the reason (nreason bytes), the language code (nlang bytes), with
 * --dedup-index the exact hash (16 bytes) and the band keys, then the
 * document's JSON line without its '\n', metadata last.
 */
struct rec_head {
	uint32_t size; /* the whole record */
	uint32_t json_len;
	uint16_t stop; /* the step that rejected it, or NO_STEP */
	uint16_t ncnt;
	uint8_t meta_empty;
	uint8_t nreason;
	uint8_t nlang;
	uint8_t has_index; /* the hash and keys are there */
};

struct rec_cnt {
	uint32_t id;
	uint32_t pad;
	uint64_t value;
};

static double parse_rfc3339(const char *s)
{
	int Y, M, D, h, m, n = 0;
	double sec;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lf%n", &Y, &M, &D, &h, &m, &sec, &n) < 6)
		return NAN;
	struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h,
			.tm_min = m};
	double t = (double)timegm(&tm) + sec;
	const char *z = s + n;
	if (*z == '+' || *z == '-') {
		int oh = 0, om = 0;
		if (sscanf(z + 1, "%2d:%2d", &oh, &om) == 2)
			t -= (*z == '-' ? -1 : 1) * (oh * 3600.0 + om * 60.0);
	}
	return t;
}

static double keep_priority(const struct step *s, json_t *obj, json_t *meta, size_t tl)
{
	switch (s->keep) {
	case KEEP_LONGEST:
		return (double)tl;
	case KEEP_NEWEST:
		return parse_rfc3339(json_string_value(json_object_get(obj, "created")));
	case KEEP_PRIORITY: {
		json_t *v = meta ? json_object_get(meta, s->priority_field) : NULL;
		if (!v)
			v = json_object_get(obj, s->priority_field);
		return json_is_number(v) ? json_number_value(v) : NAN;
	}
	}
	return 0;
}

/* Appends obj as one JSON line without '\n': its keys in order, with
 * "text" replaced, and "metadata" (meta) moved last. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))

static int serialize(json_t *obj, const char *text, size_t tl, json_t *meta, struct qn_buf *out,
		     int *meta_empty, const char *new_id)
{
	const char *key;
	json_t *v;
	int first = 1;

	if (qn_buf_addc(out, '{') < 0)
		return -1;
	if (new_id) {
		/* An id made here goes first, where readers expect it. */
		if (qn_buf_adds(out, "\"id\":") < 0 || qn_json_str(out, new_id, strlen(new_id)) < 0)
			return -1;
		first = 0;
	}
	json_object_foreach(obj, key, v) {
		if (!strcmp(key, "metadata") || (new_id && !strcmp(key, "id")))
			continue;
		if (!first && qn_buf_addc(out, ',') < 0)
			return -1;
		first = 0;
		if (qn_json_str(out, key, strlen(key)) < 0 || qn_buf_addc(out, ':') < 0)
			return -1;
		if (!strcmp(key, "text")) {
			if (qn_json_str(out, text, tl) < 0)
				return -1;
			continue;
		}
		char *d = json_dumps(v, DUMP_FLAGS);
		if (!d)
			return -1;
		int rc = qn_buf_adds(out, d);
		free(d);
		if (rc < 0)
			return -1;
	}
	if ((!first && qn_buf_addc(out, ',') < 0) || qn_buf_adds(out, "\"metadata\":") < 0)
		return -1;
	*meta_empty = json_object_size(meta) == 0;
	char *d = json_dumps(meta, DUMP_FLAGS);
	if (!d)
		return -1;
	int rc = qn_buf_adds(out, d);
	free(d);
	return rc < 0 ? -1 : qn_buf_addc(out, '}');
}

struct cnt_list {
	struct rec_cnt v[MAX_COUNTERS];
	size_t n;
};

static void cnt(struct cnt_list *c, size_t id, uint64_t value)
{
	if (value && c->n < MAX_COUNTERS)
		c->v[c->n++] = (struct rec_cnt){.id = (uint32_t)id, .value = value};
}

static int lang_kept(const struct step *s, const char *code)
{
	if (!s->nlangs)
		return 1;
	size_t cl = strcspn(code, "-");
	for (size_t i = 0; i < s->nlangs; i++) {
		if (!strcasecmp(s->langs[i], code))
			return 1;
		if (strlen(s->langs[i]) == cl && !strncasecmp(s->langs[i], code, cl))
			return 1;
	}
	return 0;
}

static size_t max_line = (size_t)256 << 20;
static int jobs = 1;
static struct cn_linecount *linecount;
static struct cn_dindex *dindex;

#define BAD(...)                                                                    \
	do {                                                                        \
		qn_buf_printf(&b->msgs, "%s:%llu: ", b->l.file,                       \
			      (unsigned long long)b->l.lineno[i]);                    \
		qn_buf_printf(&b->msgs, __VA_ARGS__);                               \
		qn_buf_addc(&b->msgs, '\n');                                        \
		goto done;                                                          \
	} while (0)

static void run_doc(struct wctx *w, struct batch *b, size_t i)
{
	struct dres *r = &b->res[i];
	const char *line = b->l.in.data + b->l.off[i];
	size_t len = b->l.len[i];
	json_error_t je;
	json_t *obj = NULL, *meta = NULL;
	struct qn_buf fixed;
	struct cnt_list *cl = NULL;
	uint64_t steplen[MAX_STEPS + 1];
	size_t stop = NO_STEP, last = (b->pass == PASS_COUNT) ? (size_t)line_at : nsteps;
	const char *reason = NULL;
	char reason_buf[CN_RULE_NAME_MAX + 16];
	char lang[16] = "";
	uint64_t sig[QN_MINHASH_MAX_HASHES];

	memset(r, 0, sizeof *r);
	qn_buf_init(&fixed, QN_BUF_UNLIMITED);
	if (len == QN_LINES_TOO_LONG)
		BAD("line longer than %zu bytes (--max-line); skipped", max_line);
	const char *t = NULL;
	size_t tl = 0;
	obj = qn_docjson_parse(line, len, &w->text, &w->ser);
	if (obj) {
		t = w->text.data;
		tl = w->text.len;
	} else {
		obj = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	}
	if (!obj && strstr(je.text, "too big")) {
		/* An integer past 64 bits: read numbers as doubles, not lose it. */
		obj = json_loadb(line, len,
				 JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
	}
	if (!obj && strstr(je.text, "invalid Unicode") && !qn_buf_add(&fixed, line, len) &&
	    qn_docjson_fix_surrogates(fixed.data, fixed.len)) {
		/* A lone surrogate escape becomes U+FFFD, as invalid UTF-8 does. */
		obj = json_loadb(fixed.data, fixed.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
		qn_buf_reset(&fixed);
	}
	if (!obj && !qn_utf8_valid(line, len)) {
		/* Invalid UTF-8 inside strings: repair (U+FFFD) rather than lose it. */
		if (qn_utf8_repair(&fixed, line, len) >= 0)
			obj = json_loadb(fixed.data, fixed.len,
					 JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	}
	if (!obj)
		BAD("invalid JSON at column %d: %s", je.column, je.text);
	if (!json_is_object(obj))
		BAD("not a JSON object");
	json_t *jt = json_object_get(obj, "text");
	if (!json_is_string(jt))
		BAD(jt ? "\"text\" is not a string" : "no \"text\" field");
	if (!t) {
		t = json_string_value(jt);
		tl = json_string_length(jt);
	}
	meta = json_object_get(obj, "metadata");
	if (meta && !json_is_object(meta) && !json_is_null(meta))
		BAD("\"metadata\" is not an object");
	if (!json_is_object(meta)) {
		meta = json_object();
		if (!meta || json_object_set_new(obj, "metadata", meta) < 0)
			BAD("out of memory");
	}
	json_t *jid = json_object_get(obj, "id");
	char idbuf[40];
	const char *id, *new_id = NULL;
	if (json_is_string(jid)) {
		id = json_string_value(jid);
	} else if (json_is_integer(jid)) {
		snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(jid));
		id = idbuf;
	} else {
		/* No id: one from the text, so reruns give the same. */
		qn_hash128_hex(qn_xxh3_128(t, tl, 0),
			       idbuf);
		id = new_id = idbuf;
	}
	r->id_off = b->ids.len;
	if (qn_buf_adds(&b->ids, id) < 0 || qn_buf_addc(&b->ids, 0) < 0)
		BAD("out of memory");

	cl = malloc(sizeof *cl);
	if (!cl)
		BAD("out of memory");
	cl->n = 0;
	struct qn_buf *spare = &w->a;
	struct qn_err e;

	for (size_t si = 0; si < last && stop == NO_STEP; si++) {
		struct step *s = &steps[si];
		steplen[si] = tl;
		switch (s->kind) {
		case K_NORMALIZE: {
			struct cn_norm_counts nc = {0};
			if (cn_normalize(t, tl, &s->norm, spare, &nc) < 0)
				BAD("normalize: out of memory");
			uint64_t *v = (uint64_t *)&nc;
			for (size_t k = 0; k < 10; k++)
				cnt(cl, s->cbase + k, v[k]);
			cnt(cl, s->cbase + 10, spare->len != tl || memcmp(spare->data, t, tl));
			t = spare->data;
			tl = spare->len;
			spare = spare == &w->a ? &w->b : &w->a;
			break;
		}
		case K_LINE_DEDUP: {
			uint64_t rm = 0, rmb = 0;
			if (cn_linedup_apply(&s->ld, linecount, t, tl, spare, &rm, &rmb) < 0)
				BAD("line_dedup: out of memory");
			cnt(cl, s->cbase, rm);
			cnt(cl, s->cbase + 1, rmb);
			cnt(cl, s->cbase + 2, rm != 0);
			/* A removed last line leaves the '\n' before it: drop it. */
			while (rm && spare->len && spare->data[spare->len - 1] == '\n')
				spare->data[--spare->len] = 0;
			t = spare->data;
			tl = spare->len;
			spare = spare == &w->a ? &w->b : &w->a;
			break;
		}
		case K_EXACT:
			r->reached_exact = 1;
			r->h = qn_xxh3_128(t, tl, 0);
			r->prio_exact = keep_priority(s, obj, meta, tl);
			break;
		case K_NEAR: {
			int rc;
			r->reached_near = 1;
			r->prio_near = keep_priority(s, obj, meta, tl);
			if (s->verify) {
				rc = qn_minhash_shingles(w->mh, t, tl, &r->set, &r->nset);
				if (rc == 0)
					qn_minhash_signature_of(w->mh, r->set, r->nset, sig);
			} else {
				rc = qn_minhash_signature(w->mh, t, tl, sig);
			}
			if (rc < 0)
				BAD("near_dedup: out of memory");
			if (rc == QN_MINHASH_TOO_SHORT) {
				r->too_short = 1;
				break;
			}
			r->has_sig = 1;
			r->keys_off = i * s->mh.bands;
			for (unsigned k = 0; k < s->mh.bands; k++)
				b->keys[r->keys_off + k] = qn_minhash_band_key(&s->mh, sig, k);
			break;
		}
		case K_LENGTH:
		case K_GOPHER_REP:
		case K_GOPHER_Q:
		case K_C4_Q:
		case K_C4_BAD:
		case K_FINEWEB: {
			if (s->group != (int)si)
				break; /* ran with its group */
			const struct qf_words *words = NULL;
			for (int g = s->group; g < s->group_end; g++)
				if (steps[g].words)
					words = steps[g].words;
			int rc = qf_check(s->qfp, words, t, tl, &w->qr);
			if (rc < 0)
				BAD("quality filters: %s",
				    tl >= QF_MAX_DOC_BYTES ? "document over 2 GiB" : "out of memory");
			/* Where the group's steps start: before C4 the text is t, after
			 * it the lines C4 kept. */
			size_t c4 = NO_STEP;
			for (int g = s->group; g < s->group_end; g++)
				if (steps[g].kind == K_C4_Q)
					c4 = (size_t)g;
			if (c4 != NO_STEP) {
				struct step *c = &steps[c4];
				cnt(cl, c->cbase, w->qr.c4_lines_total);
				cnt(cl, c->cbase + 1, w->qr.c4_lines_kept);
				for (int k = 0; k < QF_C4_NLINE; k++)
					cnt(cl, c->cbase + 2 + (size_t)k, w->qr.c4_removed[k]);
				cnt(cl, c->cbase + 7, w->qr.c4_citations);
			}
			/* The step that rejected it, if any; C4's lines are final when
			 * it was a step after C4. */
			size_t g = (size_t)s->group_end;
			if (rc == 1)
				for (g = (size_t)s->group; g < (size_t)s->group_end; g++)
					if (!strcmp(w->qr.filter, qf_filter_name[steps[g].kind]))
						break;
			int c4_text = c4 != NO_STEP && w->qr.has_text && w->qr.modified &&
				      (rc == 0 || (g < (size_t)s->group_end && g > c4));
			size_t after = c4_text ? w->qr.text.len : tl;
			for (size_t k = (size_t)s->group; k < (size_t)s->group_end; k++)
				steplen[k] = c4 != NO_STEP && k > c4 ? after : tl;
			if (c4_text) {
				cnt(cl, steps[c4].cbase + 8, 1);
				qn_buf_reset(spare);
				if (qn_buf_add(spare, w->qr.text.data, w->qr.text.len) < 0)
					BAD("out of memory");
				t = spare->data;
				tl = spare->len;
				spare = spare == &w->a ? &w->b : &w->a;
			}
			if (rc == 1) {
				stop = g < (size_t)s->group_end ? g : si;
				reason = w->qr.reason;
				break;
			}
			si = (size_t)s->group_end - 1;
			break;
		}
		case K_LANG: {
			struct cn_lang lr;
			cn_lang_detect(t, tl, (size_t)s->lang_max_bytes, &lr);
			snprintf(lang, sizeof lang, "%s", lr.code);
			json_t *old = json_object_get(meta, "lang");
			if (json_is_string(old) && strcmp(json_string_value(old), lr.code))
				json_object_set(meta, "lang_declared", old);
			json_object_set_new(meta, "lang", json_string(lr.code));
			json_object_set_new(meta, "lang_score",
					    json_real(round(lr.score * 1000) / 1000));
			if (!lang_kept(s, lr.code)) {
				stop = si;
				reason = "lang_not_kept";
			} else if (lr.score < s->lang_min_score) {
				stop = si;
				reason = "lang_low_score";
			}
			break;
		}
		case K_PII: {
			if (qn_pii_scan(s->pii, t, tl, &w->hits, &e) < 0)
				BAD("pii: %s", e.msg);
			if (!w->hits.n)
				break;
			uint64_t counts[QN_PII_NTYPES] = {0};
			qn_buf_reset(spare);
			if (qn_pii_redact(&w->hits, t, tl, (enum qn_pii_mode)s->pii_mode, s->key,
					  s->keylen, spare, counts, &e) < 0)
				BAD("pii: %s", e.msg);
			json_t *pm = json_object();
			for (int k = 0; k < QN_PII_NTYPES; k++) {
				cnt(cl, s->cbase + (size_t)k, counts[k]);
				if (counts[k] && pm)
					json_object_set_new(
						pm, qn_pii_type_name((enum qn_pii_type)k),
						json_integer((json_int_t)counts[k]));
			}
			cnt(cl, s->cbase + PII_DOCS, 1);
			if (pm)
				json_object_set_new(meta, "pii", pm);
			t = spare->data;
			tl = spare->len;
			spare = spare == &w->a ? &w->b : &w->a;
			break;
		}
		case K_RULES: {
			if (!w->rr_ready) {
				if (cn_rules_result_init(&w->rr, s->rules) < 0)
					BAD("out of memory");
				w->rr_ready = 1;
			}
			if (cn_rules_apply(s->rules, t, tl, spare, &w->rr, &e) < 0)
				BAD("rules: %s", e.msg);
			if (w->rr.dropped) {
				stop = si;
				snprintf(reason_buf, sizeof reason_buf, "%s", w->rr.reason);
				reason = reason_buf;
				break;
			}
			if (w->rr.ntags) {
				json_t *tags = json_object_get(meta, "tags");
				if (!json_is_array(tags)) {
					tags = json_array();
					json_object_set_new(meta, "tags", tags);
				}
				for (size_t k = 0; k < w->rr.n; k++)
					if (cn_rules_action(s->rules, k) == CN_RULE_TAG && w->rr.hits[k])
						json_array_append_new(
							tags, json_string(cn_rules_name(s->rules, k)));
				cnt(cl, s->cbase + 1, 1);
			}
			cnt(cl, s->cbase, w->rr.redactions);
			if (w->rr.redactions) {
				t = spare->data;
				tl = spare->len;
				spare = spare == &w->a ? &w->b : &w->a;
			}
			break;
		}
		case K_CLASSIFIER: {
			if (w->lcs_for != s->lc) {
				if (w->lcs_for)
					qn_lc_scratch_release(&w->lcs);
				w->lcs_for = NULL;
				if (qn_lc_scratch_init(&w->lcs, s->lc) < 0)
					BAD("out of memory");
				w->lcs_for = s->lc;
			}
			if (qn_lc_predict(s->lc, t, tl, &w->lcs) < 0)
				BAD("classifier: out of memory");
			double p = w->lcs.probs[s->cls_id];
			json_t *cm = json_object();
			if (cm) {
				json_object_set_new(cm, "label",
						    json_string(s->lc->labels[s->cls_id]));
				json_object_set_new(cm, "score", json_real(round(p * 1e4) / 1e4));
				json_object_set_new(meta, "classifier", cm);
			}
			if (p < s->cls_min_score) {
				stop = si;
				reason = "classifier_low_score";
			}
			break;
		}
		case NKIND:
			break;
		}
	}
	if (b->pass == PASS_COUNT) {
		if (stop == NO_STEP &&
		    cn_linedup_hashes(&steps[line_at].ld, t, tl, &r->lines, &r->nlines) < 0)
			BAD("line_dedup: out of memory");
		r->ok = 1;
		goto done;
	}
	if (stop == NO_STEP)
		steplen[nsteps] = tl;

	/* The record. */
	struct rec_head hd = {0};
	size_t nlen = stop == NO_STEP ? nsteps + 1 : stop + 1;
	for (size_t k = nlen; k <= nsteps; k++)
		steplen[k] = 0;
	hd.stop = (uint16_t)stop;
	hd.ncnt = (uint16_t)cl->n;
	hd.nreason = reason ? (uint8_t)strnlen(reason, 255) : 0;
	hd.nlang = (uint8_t)strlen(lang);
	hd.has_index = dindex != NULL;
	r->rec_off = b->out.len;
	size_t keys_n = near_at >= 0 ? steps[near_at].mh.bands : 0;
	if (qn_buf_add(&b->out, &hd, sizeof hd) < 0 ||
	    qn_buf_add(&b->out, steplen, (nsteps + 1) * sizeof *steplen) < 0 ||
	    qn_buf_add(&b->out, cl->v, cl->n * sizeof *cl->v) < 0 ||
	    qn_buf_add(&b->out, reason ? reason : "", hd.nreason) < 0 ||
	    qn_buf_add(&b->out, lang, hd.nlang) < 0)
		BAD("out of memory");
	if (dindex) {
		uint64_t zero[QN_MINHASH_MAX_HASHES] = {0};
		if (qn_buf_add(&b->out, &r->h, sizeof r->h) < 0 ||
		    qn_buf_add(&b->out, r->has_sig ? b->keys + r->keys_off : zero,
			       keys_n * sizeof(uint64_t)) < 0)
			BAD("out of memory");
	}
	size_t json_at = b->out.len;
	int meta_empty = 0;
	if (serialize(obj, t, tl, meta, &b->out, &meta_empty, new_id) < 0)
		BAD("out of memory");
	struct rec_head *hp = (struct rec_head *)(void *)(b->out.data + r->rec_off);
	/* memcpy: the buffer may hold records at any alignment. */
	hd.meta_empty = (uint8_t)meta_empty;
	hd.json_len = (uint32_t)(b->out.len - json_at);
	hd.size = (uint32_t)(b->out.len - r->rec_off);
	if (b->out.len - json_at > UINT32_MAX)
		BAD("document too large");
	memcpy(hp, &hd, sizeof hd);
	r->ok = 1;
done:
	free(cl);
	json_decref(obj);
	qn_buf_release(&fixed);
	if (!r->ok) {
		free(r->set);
		r->set = NULL;
		r->has_sig = 0;
	}
}

static void *work(void *job, void *ctx)
{
	struct batch *b = job;
	struct wctx *w = wctx_get();

	(void)ctx;
	b->res = calloc(b->l.n ? b->l.n : 1, sizeof *b->res);
	size_t nb = near_at >= 0 ? steps[near_at].mh.bands : 0;
	b->keys = calloc(b->l.n * nb + 1, sizeof *b->keys);
	if (!w || !b->res || !b->keys) {
		free(b->res);
		b->res = NULL;
		return b;
	}
	for (size_t i = 0; i < b->l.n; i++)
		run_doc(w, b, i);
	return b;
}

/* ---- the exact-hash table ------------------------------------------------------ */

#define OLD_BIT 0x80000000u /* a value naming an entry of the persistent index */

struct xent {
	uint64_t hi, lo;
	uint32_t v;
	uint32_t used;
};

struct xtab {
	struct xent *e;
	size_t cap, n;
};

static size_t xslot(const struct xtab *x, struct qn_hash128 h)
{
	size_t m = x->cap - 1, s = (size_t)h.lo & m;
	while (x->e[s].used && (x->e[s].hi != h.hi || x->e[s].lo != h.lo))
		s = (s + 1) & m;
	return s;
}

/* The value stored for h, or v stored as its first; -1 when out of memory. */
static int xtab_get_or_put(struct xtab *x, struct qn_hash128 h, uint32_t v, uint32_t *out)
{
	if ((x->n + 1) * 10 > x->cap * 7) {
		size_t cap = x->cap ? x->cap * 2 : 1024;
		struct xent *ne = calloc(cap, sizeof *ne);
		if (!ne)
			return -1;
		struct xtab nx = {ne, cap, 0};
		for (size_t i = 0; i < x->cap; i++)
			if (x->e[i].used) {
				struct qn_hash128 k = {x->e[i].hi, x->e[i].lo};
				nx.e[xslot(&nx, k)] = x->e[i];
				nx.n++;
			}
		free(x->e);
		*x = nx;
	}
	size_t s = xslot(x, h);
	if (!x->e[s].used) {
		x->e[s] = (struct xent){h.hi, h.lo, v, 1};
		x->n++;
	}
	*out = x->e[s].v;
	return 0;
}

/* ---- the run -------------------------------------------------------------------- */

struct reason {
	char *name;
	uint64_t docs, bytes;
};

struct step_stats {
	uint64_t docs_in, bytes_in, docs_out, bytes_out;
	struct reason *r;
	size_t nr;
};

struct lang_count {
	char code[16];
	uint64_t docs, bytes;
};

struct run {
	const char *const *inputs;
	size_t ninputs;
	int pass;
	/* outputs */
	struct qn_wr *out, *rej;
	FILE *spool;
	int direct; /* no dedup step: pass 1 writes the outputs itself */
	int failed; /* a write or memory failure: stop */
	uint64_t bad_lines, bad_inputs;
	/* documents */
	size_t ndocs, cap;
	uint64_t *id_off;
	struct qn_buf ids;
	uint32_t *egroup;      /* exact: the first document with the hash, or OLD_BIT|i */
	double *eprio, *nprio; /* keep-rule priorities */
	uint8_t *flags;
	struct xtab xt;
	/* near */
	size_t old;	       /* persistent entries, nodes 0..old-1 */
	struct qn_lsh *lsh;
	struct qn_uf *uf;
	uint32_t *keep;	       /* resolved: the node kept for each node's cluster */
	uint32_t *erep;	       /* resolved: the document kept for each exact group */
	int sets_fd;	       /* --verify: shingle sets, by document */
	uint64_t *set_off;
	uint32_t *set_n;
	uint64_t sets_len;
	const uint64_t *cur_set; /* the document being joined */
	size_t cur_n;
	uint32_t cur_node;
	uint64_t *sa, *sb;
	size_t sacap, sbcap;
	uint64_t verified, verify_failed;
	/* stats */
	struct step_stats st[MAX_STEPS];
	uint64_t counters[MAX_COUNTERS];
	struct lang_count *langs;
	size_t nlangs;
	uint64_t docs_in, bytes_in, docs_out, bytes_out, docs_rej, bytes_rej;
	uint64_t clusters, cluster_docs, too_short;
	struct qn_buf line; /* pass 2 scratch */
	struct qn_manifest *man;
	struct qn_progress prog;
	uint64_t raw_bytes;
};

enum { F_NEAR = 1, F_EXACT = 4 };

static int grow_docs(struct run *r)
{
	if (r->ndocs < r->cap)
		return 0;
	size_t cap = r->cap ? r->cap * 2 : 4096;
#define GROW(p)                                                     \
	do {                                                        \
		void *np = realloc(r->p, cap * sizeof *r->p);       \
		if (!np)                                            \
			return -1;                                  \
		r->p = np;                                          \
	} while (0)
	GROW(id_off);
	GROW(flags);
	if (exact_at >= 0)
		GROW(egroup);
	if (exact_at >= 0 && steps[exact_at].keep != KEEP_FIRST)
		GROW(eprio);
	if (near_at >= 0 && steps[near_at].keep != KEEP_FIRST)
		GROW(nprio);
	if (near_at >= 0 && steps[near_at].verify) {
		GROW(set_off);
		GROW(set_n);
	}
#undef GROW
	r->cap = cap;
	return 0;
}

static const char *doc_id(const struct run *r, size_t d) { return r->ids.data + r->id_off[d]; }

/* Loads a document's shingle set from the sets file. */
static const uint64_t *load_set(struct run *r, uint32_t node, uint64_t **buf, size_t *cap,
				size_t *n)
{
	if (node == r->cur_node) {
		*n = r->cur_n;
		return r->cur_set;
	}
	size_t d = node - r->old;
	*n = r->set_n[d];
	if (*n > *cap) {
		uint64_t *p = realloc(*buf, *n * sizeof *p);
		if (!p)
			return NULL;
		*buf = p;
		*cap = *n;
	}
	size_t want = *n * sizeof **buf;
	if (want && pread(r->sets_fd, *buf, want, (off_t)r->set_off[d]) != (ssize_t)want)
		return NULL;
	return *buf;
}

static int verify_ok(uint32_t a, uint32_t b, void *ctx)
{
	struct run *r = ctx;
	size_t na, nb;

	/* The persistent index keeps band keys, not shingles: trust the LSH. */
	if (a < r->old || b < r->old)
		return 1;
	const uint64_t *sa = load_set(r, a, &r->sa, &r->sacap, &na);
	const uint64_t *sb = load_set(r, b, &r->sb, &r->sbcap, &nb);
	r->verified++;
	if (!sa || !sb) {
		r->verify_failed++;
		return 0;
	}
	return qn_jaccard(sa, na, sb, nb) >= steps[near_at].threshold;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int finish_doc(struct run *r, size_t d, const char *rec);

/* The record's accounting from the first dedup step on (dsig.h): what the
 * merge needs to count a removed document as a single run does. */
static int add_sig_tail(struct batch *b, const struct dres *x)
{
	const char *rec = b->out.data + x->rec_off;
	struct rec_head hd;
	size_t from = (size_t)(exact_at >= 0 ? exact_at : near_at);
	uint64_t steplen[MAX_STEPS + 1];

	memcpy(&hd, rec, sizeof hd);
	memcpy(steplen, rec + sizeof hd, (nsteps + 1) * sizeof *steplen);
	const char *cnts = rec + sizeof hd + (nsteps + 1) * sizeof *steplen;
	const char *text = cnts + hd.ncnt * sizeof(struct rec_cnt); /* reason, lang */
	struct cn_dsig_tail t = {.stop = hd.stop == NO_STEP ? CN_DSIG_NO_STEP : hd.stop,
				 .nreason = hd.nreason,
				 .nlang = hd.nlang,
				 .nlen = (uint16_t)(nsteps + 1 - from)};
	size_t at = sigbuf.len;
	if (qn_buf_add(&sigbuf, &t, sizeof t) < 0 ||
	    qn_buf_add(&sigbuf, steplen + from, t.nlen * sizeof *steplen) < 0 ||
	    qn_buf_add(&sigbuf, text, (size_t)hd.nreason + hd.nlang) < 0)
		return -1;
	for (size_t c = 0; c < hd.ncnt; c++) {
		struct rec_cnt rc;
		memcpy(&rc, cnts + c * sizeof rc, sizeof rc);
		for (size_t s = from + 1; s < nsteps; s++)
			if (steps[s].ncount && rc.id >= steps[s].cbase &&
			    rc.id < steps[s].cbase + steps[s].ncount) {
				struct cn_dsig_cnt dc = {.step = (uint16_t)s,
							 .index = (uint16_t)(rc.id - steps[s].cbase),
							 .value = rc.value};
				if (qn_buf_add(&sigbuf, &dc, sizeof dc) < 0)
					return -1;
				t.ncnt++;
				break;
			}
	}
	memcpy(sigbuf.data + at, &t, sizeof t);
	return 0;
}

/* Appends a document's signature record (dsig.h); flushes now and then. */
static int add_sig(struct batch *b, struct dres *x)
{
	const char *id = b->ids.data + x->id_off;
	size_t idlen = strlen(id);
	unsigned char f[4] = {0};
	struct qn_err e;

	if (idlen > UINT16_MAX) {
		qn_error("a document id of %zu bytes is too long for --signatures", idlen);
		return -1;
	}
	f[0] = (unsigned char)((x->reached_exact ? CN_DSIG_EXACT : 0) |
			       (x->reached_near ? CN_DSIG_NEAR : 0) | (x->has_sig ? CN_DSIG_SIG : 0) |
			       (x->too_short ? CN_DSIG_TOO_SHORT : 0));
	uint16_t l16 = (uint16_t)idlen;
	memcpy(f + 2, &l16, 2);
	qn_buf_add(&sigbuf, f, 4);
	qn_buf_add(&sigbuf, id, idlen);
	if (x->reached_exact)
		qn_buf_add(&sigbuf, &x->h, sizeof x->h);
	qn_buf_add(&sigbuf, &x->prio_exact, 8);
	qn_buf_add(&sigbuf, &x->prio_near, 8);
	if (x->has_sig && qn_buf_add(&sigbuf, b->keys + x->keys_off,
				     steps[near_at].mh.bands * sizeof *b->keys) < 0)
		return -1;
	if (add_sig_tail(b, x) < 0)
		return -1;
	sig_records++;
	if (sigbuf.len >= (1u << 20)) {
		if (qn_wr_write(sigw, sigbuf.data, sigbuf.len, &e) < 0) {
			qn_error("%s", e.msg);
			return -1;
		}
		qn_buf_reset(&sigbuf);
	}
	return 0;
}

/* One document, in input order, on the main thread. */
static int add_doc(struct run *r, struct batch *b, struct dres *x)
{
	struct qn_err e;
	size_t d = r->ndocs;

	if (r->direct) {
		/* Nothing to remember: memory stays flat however long the input. */
		r->ndocs++;
		return finish_doc(r, d, b->out.data + x->rec_off);
	}
	if (grow_docs(r) < 0)
		return -1;
	r->ndocs++;
	r->id_off[d] = r->ids.len;
	if (qn_buf_adds(&r->ids, b->ids.data + x->id_off) < 0 || qn_buf_addc(&r->ids, 0) < 0)
		return -1;
	r->flags[d] = 0;
	if (sigw && (x->reached_exact || x->reached_near) && add_sig(b, x) < 0)
		return -1;
	if (exact_at >= 0) {
		r->egroup[d] = (uint32_t)d;
		if (x->reached_exact) {
			r->flags[d] |= F_EXACT;
			if (xtab_get_or_put(&r->xt, x->h, (uint32_t)d, &r->egroup[d]) < 0)
				return -1;
		}
		if (r->eprio)
			r->eprio[d] = x->prio_exact;
	}
	if (near_at >= 0) {
		const struct step *s = &steps[near_at];
		uint32_t node;
		int joins = x->has_sig && !(exact_at >= 0 && r->egroup[d] != d);
		if (r->nprio)
			r->nprio[d] = x->prio_near;
		if (x->too_short && !(exact_at >= 0 && r->egroup[d] != d))
			r->too_short++;
		if (qn_lsh_add_keys(r->lsh, joins ? b->keys + x->keys_off : NULL, &node, &e) < 0 ||
		    qn_uf_grow(r->uf, (size_t)node + 1) < 0)
			return -1;
		if (joins) {
			r->flags[d] |= F_NEAR;
			if (!s->verify) {
				for (unsigned k = 0; k < s->mh.bands; k++) {
					uint32_t p = qn_lsh_prev(r->lsh, node, k);
					if (p != QN_LSH_NONE)
						qn_uf_union(r->uf, node, p);
				}
			} else {
				uint32_t cand[1024];
				size_t max = (size_t)s->max_candidates < 1024 ? (size_t)s->max_candidates
									      : 1024;
				r->set_off[d] = r->sets_len;
				r->set_n[d] = (uint32_t)x->nset;
				if (write_all(r->sets_fd, x->set, x->nset * sizeof *x->set) < 0)
					return -1;
				r->sets_len += x->nset * sizeof *x->set;
				r->cur_set = x->set;
				r->cur_n = x->nset;
				r->cur_node = node;
				size_t nc = qn_lsh_candidates(r->lsh, node, cand, max);
				for (size_t c = 0; c < nc; c++)
					qn_uf_union_if_all(r->uf, node, cand[c], verify_ok, r);
				r->cur_node = QN_LSH_NONE;
			}
		}
	}
	struct rec_head hd;
	memcpy(&hd, b->out.data + x->rec_off, sizeof hd);
	if (fwrite(b->out.data + x->rec_off, 1, hd.size, r->spool) != hd.size)
		return -1;
	return 0;
}

static int emit(void *job, void *ctx)
{
	struct batch *b = job;
	struct run *r = ctx;

	/* Bad lines are named once, by the cleaning pass. */
	for (char *line = b->msgs.data, *nl;
	     b->pass == PASS_CLEAN && line && (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = 0;
		qn_error("%s", line);
	}
	if (!b->res) {
		qn_error("out of memory");
		r->failed = 1;
	}
	for (size_t i = 0; b->res && i < b->l.n && !r->failed; i++) {
		struct dres *x = &b->res[i];
		if (!x->ok) {
			r->bad_lines++;
			continue;
		}
		if (b->pass == PASS_COUNT) {
			if (cn_linecount_add(linecount, x->lines, x->nlines) < 0) {
				qn_error("line_dedup: out of memory");
				r->failed = 1;
			}
			continue;
		}
		if (add_doc(r, b, x) < 0) {
			qn_error("%s", errno == ENOSPC ? "no space left for the spool"
						       : "out of memory or spool write failed");
			r->failed = 1;
		}
	}
	batch_free(b);
	qn_progress_update(&r->prog, r->raw_bytes, r->ndocs);
	return r->failed;
}

/* ---- resolving the duplicate groups ------------------------------------------- */

static int better(double a, double b)
{
	if (isnan(a))
		return 0;
	return isnan(b) || a > b;
}

static int resolve(struct run *r)
{
	size_t n = r->ndocs;

	if (exact_at >= 0) {
		/* erep[g]: the document kept among those whose first is g. */
		r->erep = malloc((n ? n : 1) * sizeof *r->erep);
		if (!r->erep)
			return -1;
		for (size_t d = 0; d < n; d++)
			r->erep[d] = (uint32_t)d;
		if (r->eprio)
			for (size_t d = 0; d < n; d++) {
				uint32_t g = r->egroup[d];
				if (!(r->flags[d] & F_EXACT) || (g & OLD_BIT) || g == d)
					continue;
				if (better(r->eprio[d], r->eprio[r->erep[g]]))
					r->erep[g] = (uint32_t)d;
			}
	}
	if (near_at >= 0) {
		size_t nodes = r->old + n;
		double *prio = NULL;
		r->keep = malloc((nodes ? nodes : 1) * sizeof *r->keep);
		if (!r->keep)
			return -1;
		if (r->nprio) {
			prio = malloc((nodes ? nodes : 1) * sizeof *prio);
			if (!prio)
				return -1;
			for (size_t i = 0; i < r->old; i++)
				prio[i] = INFINITY; /* kept by an earlier run: stays */
			for (size_t d = 0; d < n; d++) {
				size_t rep = r->erep ? r->erep[d] : d;
				prio[r->old + d] = r->nprio[rep];
			}
		}
		qn_uf_keep(r->uf, prio, r->keep);
		free(prio);
		/* Without a priority the earliest node is kept: an old one when
		 * there is one, as it must be. */
		for (size_t d = 0; d < n; d++) {
			uint32_t node = (uint32_t)(r->old + d);
			if ((r->flags[d] & F_NEAR) && r->keep[node] == node &&
			    qn_uf_size(r->uf, node) > 1) {
				r->clusters++;
				r->cluster_docs += qn_uf_size(r->uf, node);
			}
		}
	}
	return 0;
}

/* The document that stands for a near-dup node (its exact group's pick). */
static const char *node_id(struct run *r, uint32_t node)
{
	if (node < r->old)
		return cn_dindex_near_id(dindex, node);
	size_t d = node - r->old;
	return doc_id(r, r->erep ? r->erep[d] : d);
}

/* ---- pass 2: decide, count, write ------------------------------------------------ */

static void count_reason(struct step_stats *st, const char *reason, size_t n, uint64_t bytes)
{
	for (size_t i = 0; i < st->nr; i++)
		if (strlen(st->r[i].name) == n && !memcmp(st->r[i].name, reason, n)) {
			st->r[i].docs++;
			st->r[i].bytes += bytes;
			return;
		}
	struct reason *p = realloc(st->r, (st->nr + 1) * sizeof *p);
	if (!p)
		return;
	st->r = p;
	p[st->nr].name = strndup(reason, n);
	if (!p[st->nr].name)
		return;
	p[st->nr].docs = 1;
	p[st->nr++].bytes = bytes;
}

static void count_lang(struct run *r, const char *code, size_t n, uint64_t bytes)
{
	for (size_t i = 0; i < r->nlangs; i++)
		if (strlen(r->langs[i].code) == n && !memcmp(r->langs[i].code, code, n)) {
			r->langs[i].docs++;
			r->langs[i].bytes += bytes;
			return;
		}
	struct lang_count *p = realloc(r->langs, (r->nlangs + 1) * sizeof *p);
	if (!p)
		return;
	r->langs = p;
	snprintf(p[r->nlangs].code, sizeof p->code, "%.*s", (int)n, code);
	p[r->nlangs].docs = 1;
	p[r->nlangs++].bytes = bytes;
}

static int put(struct run *r, struct qn_wr *w, struct qn_buf *b)
{
	struct qn_err e;
	if (w && qn_wr_write(w, b->data, b->len, &e) < 0) {
		qn_error("%s", e.msg);
		r->failed = 1;
		return -1;
	}
	return 0;
}

static int finish_doc(struct run *r, size_t d, const char *rec)
{
	struct rec_head hd;
	const char *p = rec + sizeof hd;
	uint64_t steplen[MAX_STEPS + 1];
	size_t nb = near_at >= 0 ? steps[near_at].mh.bands : 0;

	memcpy(&hd, rec, sizeof hd);
	memcpy(steplen, p, (nsteps + 1) * sizeof *steplen);
	p += (nsteps + 1) * sizeof *steplen;
	const char *cnts = p;
	p += hd.ncnt * sizeof(struct rec_cnt);
	const char *reason = p;
	size_t nreason = hd.nreason;
	p += hd.nreason;
	const char *lang = p;
	p += hd.nlang;
	struct qn_hash128 h = {0, 0};
	const uint64_t *keys = NULL;
	uint64_t keybuf[QN_MINHASH_MAX_HASHES];
	if (hd.has_index) {
		memcpy(&h, p, sizeof h);
		p += sizeof h;
		memcpy(keybuf, p, nb * sizeof *keybuf);
		keys = keybuf;
		p += nb * sizeof *keybuf;
	}
	const char *json = p;

	/* The first step that removes it, in chain order. */
	size_t stop = hd.stop;
	const char *dup_of = NULL;
	uint32_t csize = 0;
	const char *cid = NULL;
	if (!shard_count && exact_at >= 0 && (size_t)exact_at < stop && (r->flags[d] & F_EXACT)) {
		uint32_t g = r->egroup[d];
		if (g & OLD_BIT)
			dup_of = cn_dindex_exact_id(dindex, g & ~OLD_BIT);
		else if (r->erep[g] != d)
			dup_of = doc_id(r, r->erep[g]);
		if (dup_of) {
			stop = (size_t)exact_at;
			reason = "duplicate";
			nreason = strlen(reason);
		}
	}
	if (!shard_count && !dup_of && near_at >= 0 && (size_t)near_at < stop) {
		uint32_t unit = (uint32_t)(r->old + (exact_at >= 0 ? r->egroup[d] : d));
		if (r->flags[exact_at >= 0 ? r->egroup[d] : d] & F_NEAR) {
			uint32_t k = r->keep[unit];
			if (k != unit) {
				dup_of = node_id(r, k);
				stop = (size_t)near_at;
				reason = "near_duplicate";
				nreason = strlen(reason);
			} else if ((csize = (uint32_t)qn_uf_size(r->uf, unit)) > 1) {
				cid = doc_id(r, d);
			}
		}
	}

	/* Counters: every step the document reached. */
	size_t reached = stop == NO_STEP ? nsteps : stop + 1;
	for (size_t s = 0; s < reached; s++) {
		struct step_stats *st = &r->st[s];
		st->docs_in++;
		st->bytes_in += steplen[s];
		if (s == stop) {
			count_reason(st, reason, nreason, steplen[s]);
		} else {
			st->docs_out++;
			st->bytes_out += steps[s].kind == K_EXACT || steps[s].kind == K_NEAR
						 ? steplen[s]
						 : steplen[s + 1];
		}
		if (steps[s].kind == K_LANG && hd.nlang)
			count_lang(r, lang, hd.nlang, steplen[s]);
	}
	for (size_t c = 0; c < hd.ncnt; c++) {
		struct rec_cnt rc;
		memcpy(&rc, cnts + c * sizeof rc, sizeof rc);
		/* Counters of steps after the one that removed it do not count. */
		size_t s;
		for (s = 0; s < nsteps; s++)
			if (rc.id >= steps[s].cbase && rc.id < steps[s].cbase + steps[s].ncount &&
			    steps[s].ncount)
				break;
		if (s < reached && rc.id < MAX_COUNTERS)
			r->counters[rc.id] += rc.value;
	}
	r->docs_in++;
	r->bytes_in += steplen[0];

	/* The line: the record's JSON with metadata additions spliced in. */
	struct qn_buf *o = &r->line;
	qn_buf_reset(o);
	if (hd.json_len < 2)
		return 0;
	qn_buf_add(o, json, hd.json_len - 2);
	int comma = !hd.meta_empty;
	if (stop != NO_STEP) {
		qn_buf_printf(o, "%s\"reject\":{\"step\":\"%s\",\"reason\":", comma ? "," : "",
			      kind_names[steps[stop].kind]);
		qn_json_str(o, reason, nreason);
		if (dup_of) {
			qn_buf_adds(o, ",\"duplicate_of\":");
			qn_json_str(o, dup_of, strlen(dup_of));
		}
		qn_buf_addc(o, '}');
	} else if (csize > 1) {
		qn_buf_printf(o, "%s\"cluster_id\":", comma ? "," : "");
		qn_json_str(o, cid, strlen(cid));
		qn_buf_printf(o, ",\"cluster_size\":%u", csize);
	}
	if (qn_buf_add(o, "}}\n", 3) < 0) {
		qn_error("out of memory");
		r->failed = 1;
		return -1;
	}
	if (stop != NO_STEP) {
		r->docs_rej++;
		r->bytes_rej += steplen[stop];
		return put(r, r->rej, o);
	}
	r->docs_out++;
	r->bytes_out += steplen[nsteps];
	if (dindex && strlen(doc_id(r, d)) > CN_DINDEX_ID_MAX) {
		qn_warn("document id of %zu bytes is too long for the dedup index (at most %d); "
			"kept but not remembered",
			strlen(doc_id(r, d)), CN_DINDEX_ID_MAX);
	} else if (dindex) {
		struct qn_err e;
		if ((exact_at >= 0 && (r->flags[d] & F_EXACT) &&
		     cn_dindex_add_exact(dindex, h, doc_id(r, d), &e) < 0) ||
		    (near_at >= 0 && (r->flags[exact_at >= 0 ? r->egroup[d] : d] & F_NEAR) &&
		     cn_dindex_add_near(dindex, keys, doc_id(r, d), &e) < 0)) {
			qn_error("%s", e.msg);
			r->failed = 1;
			return -1;
		}
	}
	return put(r, r->out, o);
}

static int pass2(struct run *r)
{
	struct rec_head hd;
	struct qn_buf rec;

	if (fflush(r->spool) != 0 || fseeko(r->spool, 0, SEEK_SET) != 0) {
		qn_error("spool: %s", strerror(errno));
		return -1;
	}
	qn_buf_init(&rec, QN_BUF_UNLIMITED);
	for (size_t d = 0; d < r->ndocs && !r->failed; d++) {
		if (fread(&hd, sizeof hd, 1, r->spool) != 1 || hd.size < sizeof hd) {
			qn_error("spool: short read");
			r->failed = 1;
			break;
		}
		qn_buf_reset(&rec);
		if (qn_buf_grow(&rec, hd.size) < 0) {
			qn_error("out of memory");
			r->failed = 1;
			break;
		}
		memcpy(rec.data, &hd, sizeof hd);
		if (fread(rec.data + sizeof hd, 1, hd.size - sizeof hd, r->spool) !=
		    hd.size - sizeof hd) {
			qn_error("spool: short read");
			r->failed = 1;
			break;
		}
		finish_doc(r, d, rec.data);
	}
	qn_buf_release(&rec);
	return r->failed ? -1 : 0;
}

/* ---- reading the inputs ------------------------------------------------------------ */

#define BATCH_LINES 256
#define BATCH_BYTES (4u << 20)

static int stdin_fd = -1; /* stdin spooled for a second reading */

static int make_temp(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/quern-clean.XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

static int spool_stdin(void)
{
	char buf[1 << 16];
	stdin_fd = make_temp();
	if (stdin_fd < 0) {
		qn_error("cannot make a temporary file: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t n = read(0, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			qn_error("cannot read stdin: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
		if (write_all(stdin_fd, buf, (size_t)n) < 0) {
			qn_error("cannot spool stdin: %s", strerror(errno));
			return -1;
		}
	}
}

static int is_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

static int feed(struct run *r, int pass)
{
	struct qn_pool *pool = qn_pool_new(jobs, (size_t)jobs * 4, work, emit, r);
	struct qn_buf line;
	int rc = 0;

	if (!pool) {
		qn_error("out of memory");
		return -1;
	}
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	r->pass = pass;
	for (size_t f = 0; f < r->ninputs && !r->failed; f++) {
		const char *path = r->inputs[f];
		int is_stdin = !strcmp(path, "-");
		const char *name = is_stdin ? "stdin" : path;
		struct qn_err e;
		struct qn_rd *rd;
		int flags = pass == PASS_CLEAN ? QN_RD_SHA256 : 0;
		int part_fd = -1;
		uint64_t lineno = 0;
		if (shard_parts && !shard_parts[f].take)
			continue;
		if (shard_parts && !shard_parts[f].whole) {
			uint64_t first, last;
			rd = NULL;
			part_fd = open(path, O_RDONLY | O_CLOEXEC);
			if (part_fd < 0)
				qn_errno(&e, errno, "cannot open '%s'", path);
			else if (qn_shardsel_lines(part_fd, path, &shard_parts[f], &first, &last,
						   &lineno, &e) == 0 &&
				 lseek(part_fd, (off_t)first, SEEK_SET) >= 0 &&
				 (rd = qn_rd_fdopen(part_fd, path, flags, &e)) != NULL)
				qn_rd_limit(rd, last - first);
		} else if (is_stdin && stdin_fd >= 0) {
			lseek(stdin_fd, 0, SEEK_SET);
			rd = qn_rd_fdopen(stdin_fd, "stdin", flags, &e);
		} else {
			rd = qn_rd_open(is_stdin ? NULL : path, flags, &e);
		}
		if (!rd) {
			if (part_fd >= 0)
				close(part_fd);
			/* Named once; the other inputs still flow, and the run exits 1. */
			if (pass == PASS_CLEAN) {
				qn_error("%s", e.msg);
				r->bad_inputs++;
			}
			continue;
		}
		struct batch *b = batch_new(pass, name);
		int lr;
		while (b && !r->failed) {
			lr = qn_rd_line(rd, &line, max_line, &e);
			if (lr == 0)
				break;
			if (lr == -1) {
				qn_error("%s", e.msg);
				r->failed = 1;
				break;
			}
			lineno++;
			if (lr == 1 && is_blank(line.data, line.len))
				continue;
			if (qn_lines_add(&b->l, lr == 1 ? line.data : "", lr == 1 ? line.len : 0, lineno) <
			    0) {
				qn_error("out of memory");
				r->failed = 1;
				break;
			}
			if (lr == QN_RD_TOOLONG)
				b->l.len[b->l.n - 1] = QN_LINES_TOO_LONG;
			if (b->l.n >= BATCH_LINES || b->l.in.len >= BATCH_BYTES) {
				r->raw_bytes = qn_rd_raw_bytes(rd);
				if (qn_pool_submit(pool, b) != 0) {
					b = NULL;
					break;
				}
				b = batch_new(pass, name);
			}
		}
		if (b && b->l.n && !r->failed) {
			if (qn_pool_submit(pool, b) != 0)
				r->failed = 1;
		} else {
			batch_free(b);
		}
		if (!b) {
			qn_error("out of memory");
			r->failed = 1;
		}
		if (pass == PASS_CLEAN && !r->failed) {
			char sha[65];
			if (qn_rd_sha256(rd, sha, &e) == 0 && r->man)
				qn_manifest_input(r->man, name, qn_rd_raw_bytes(rd), sha);
		}
		qn_rd_close(rd);
		if (part_fd >= 0)
			close(part_fd);
	}
	if (qn_pool_finish(pool) != 0)
		rc = -1;
	qn_pool_free(pool);
	qn_buf_release(&line);
	return r->failed || rc ? -1 : 0;
}

static void exact_key(char *out, size_t n);

/* Sizes the inputs and picks this shard's part of each (shardsel.h). */
static int plan_shard(struct run *r)
{
	size_t n = r->ninputs;
	uint64_t *size = calloc(n, sizeof *size);
	int *split = calloc(n, sizeof *split);

	shard_parts = calloc(n, sizeof *shard_parts);
	if (!size || !split || !shard_parts) {
		free(size);
		free(split);
		qn_error("out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		int fd;
		if (!strcmp(r->inputs[i], "-") || stat(r->inputs[i], &st) < 0 || !S_ISREG(st.st_mode))
			continue; /* unknown size: whole, to the shard owning its start */
		size[i] = (uint64_t)st.st_size;
		if ((fd = open(r->inputs[i], O_RDONLY | O_CLOEXEC)) >= 0) {
			split[i] = qn_shardsel_splittable_fd(fd);
			close(fd);
		}
	}
	qn_shardsel_plan(shard_index, shard_count, n, size, split, shard_parts);
	free(size);
	free(split);
	return 0;
}

/* The signature file's header: every parameter the dedup decisions depend on. */
static int open_signatures(const char *path)
{
	struct cn_dsig_head h;
	struct qn_err e;
	char key[1024], params[2048];
	const struct step *x = exact_at >= 0 ? &steps[exact_at] : NULL;
	const struct step *nr = near_at >= 0 ? &steps[near_at] : NULL;

	exact_key(key, sizeof key);
	snprintf(params, sizeof params,
		 "exact=%s keep=%s%s%s near=%s bands=%u rows=%u ngram=%u flags=%u seed=%llu keep=%s%s%s",
		 x ? key : "off", x ? keep_names[x->keep] : "-",
		 x && x->keep == KEEP_PRIORITY ? ":" : "",
		 x && x->keep == KEEP_PRIORITY ? x->priority_field : "", nr ? "on" : "off",
		 nr ? nr->mh.bands : 0, nr ? nr->mh.rows : 0, nr ? nr->mh.ngram : 0,
		 nr ? nr->mh.flags : 0, nr ? (unsigned long long)nr->mh.seed : 0ULL,
		 nr ? keep_names[nr->keep] : "-", nr && nr->keep == KEEP_PRIORITY ? ":" : "",
		 nr && nr->keep == KEEP_PRIORITY ? nr->priority_field : "");
	memset(&h, 0, sizeof h);
	memcpy(h.magic, CN_DSIG_MAGIC, 8);
	h.version = CN_DSIG_VERSION;
	h.shard = shard_index;
	h.count = shard_count;
	h.flags = (x ? CN_DSIGH_EXACT : 0) | (nr ? CN_DSIGH_NEAR : 0) |
		  (x && x->keep != KEEP_FIRST ? CN_DSIGH_EXACT_PRIO : 0) |
		  (nr && nr->keep != KEEP_FIRST ? CN_DSIGH_NEAR_PRIO : 0);
	if (nr) {
		h.bands = nr->mh.bands;
		h.rows = nr->mh.rows;
		h.ngram = nr->mh.ngram;
		h.mhflags = nr->mh.flags;
		h.seed = nr->mh.seed;
	}
	h.plen = (uint32_t)strlen(params);
	/* The chain: the merge's stats correction names steps and counters. */
	json_t *chain = json_array();
	for (size_t i = 0; i < nsteps; i++) {
		json_t *st = json_object(), *cn = json_array();
		for (size_t c = 0; c < steps[i].ncount; c++)
			json_array_append_new(cn, json_string(counter_name[steps[i].cbase + c]));
		json_object_set_new(st, "step", json_string(kind_names[steps[i].kind]));
		json_object_set_new(st, "counters", cn);
		json_array_append_new(chain, st);
	}
	char *ctext = json_dumps(chain, JSON_COMPACT);
	json_decref(chain);
	if (!ctext) {
		qn_error("out of memory");
		return -1;
	}
	h.clen = (uint32_t)strlen(ctext);
	qn_buf_init(&sigbuf, QN_BUF_UNLIMITED);
	sigw = qn_wr_open(path, 0, &e);
	if (!sigw || qn_wr_write(sigw, &h, sizeof h, &e) < 0 ||
	    qn_wr_write(sigw, params, h.plen, &e) < 0 || qn_wr_write(sigw, ctext, h.clen, &e) < 0) {
		qn_error("%s", e.msg);
		if (sigw)
			qn_wr_abort(sigw);
		sigw = NULL;
		free(ctext);
		return -1;
	}
	free(ctext);
	return 0;
}

/* The end record, then the atomic rename. */
static int close_signatures(void)
{
	struct qn_err e;
	struct qn_wr_info info;
	unsigned char end[8] = {CN_DSIG_END};

	qn_buf_add(&sigbuf, end, 8);
	qn_buf_add(&sigbuf, &sig_records, 8);
	struct qn_wr *w = sigw;
	sigw = NULL;
	if (qn_wr_write(w, sigbuf.data, sigbuf.len, &e) < 0) {
		qn_wr_abort(w);
		qn_error("%s", e.msg);
		return -1;
	}
	if (qn_wr_commit(w, &info, &e) < 0) {
		qn_error("%s", e.msg);
		return -1;
	}
	return 0;
}

/* ---- stats --------------------------------------------------------------------------- */

static json_t *stats_json(struct run *r)
{
	json_t *o = json_object(), *sv = json_array();
	json_object_set_new(o, "documents_in", json_integer((json_int_t)r->docs_in));
	json_object_set_new(o, "bytes_in", json_integer((json_int_t)r->bytes_in));
	json_object_set_new(o, "documents_out", json_integer((json_int_t)r->docs_out));
	json_object_set_new(o, "bytes_out", json_integer((json_int_t)r->bytes_out));
	json_object_set_new(o, "documents_rejected", json_integer((json_int_t)r->docs_rej));
	json_object_set_new(o, "bytes_rejected", json_integer((json_int_t)r->bytes_rej));
	json_object_set_new(o, "bad_lines", json_integer((json_int_t)r->bad_lines));
	json_object_set_new(o, "bad_inputs", json_integer((json_int_t)r->bad_inputs));
	if (shard_count) {
		/* For quern-clean merge-stats, which checks every shard is there once. */
		json_t *sh = json_object();
		json_object_set_new(sh, "index", json_integer(shard_index));
		json_object_set_new(sh, "count", json_integer(shard_count));
		json_object_set_new(o, "shard", sh);
	}
	for (size_t s = 0; s < nsteps; s++) {
		struct step_stats *st = &r->st[s];
		json_t *x = json_object(), *rs = json_object(), *cs = json_object();
		json_object_set_new(x, "step", json_string(kind_names[steps[s].kind]));
		json_object_set_new(x, "documents_in", json_integer((json_int_t)st->docs_in));
		json_object_set_new(x, "bytes_in", json_integer((json_int_t)st->bytes_in));
		json_object_set_new(x, "documents_out", json_integer((json_int_t)st->docs_out));
		json_object_set_new(x, "bytes_out", json_integer((json_int_t)st->bytes_out));
		for (size_t i = 0; i < st->nr; i++) {
			json_t *y = json_object();
			json_object_set_new(y, "documents", json_integer((json_int_t)st->r[i].docs));
			json_object_set_new(y, "bytes", json_integer((json_int_t)st->r[i].bytes));
			json_object_set_new(rs, st->r[i].name, y);
		}
		json_object_set_new(x, "rejected", rs);
		for (size_t c = 0; c < steps[s].ncount; c++)
			json_object_set_new(cs, counter_name[steps[s].cbase + c],
					    json_integer((json_int_t)r->counters[steps[s].cbase + c]));
		if (steps[s].kind == K_NEAR) {
			json_object_set_new(cs, "clusters", json_integer((json_int_t)r->clusters));
			json_object_set_new(cs, "documents_in_clusters",
					    json_integer((json_int_t)r->cluster_docs));
			json_object_set_new(cs, "too_short", json_integer((json_int_t)r->too_short));
			json_object_set_new(cs, "index_bytes",
					    json_integer((json_int_t)qn_lsh_bytes(r->lsh)));
			json_object_set_new(cs, "persistent_entries", json_integer((json_int_t)r->old));
			if (steps[s].verify) {
				json_object_set_new(cs, "verified_pairs",
						    json_integer((json_int_t)r->verified));
			}
		}
		if (steps[s].kind == K_EXACT)
			json_object_set_new(cs, "distinct_hashes", json_integer((json_int_t)r->xt.n));
		if (steps[s].kind == K_LINE_DEDUP && linecount) {
			json_object_set_new(cs, "distinct_lines",
					    json_integer((json_int_t)cn_linecount_distinct(linecount)));
			json_object_set_new(cs, "table_bytes",
					    json_integer((json_int_t)cn_linecount_bytes(linecount)));
		}
		if (steps[s].kind == K_LANG) {
			json_t *l = json_object();
			for (size_t i = 0; i < r->nlangs; i++) {
				json_t *y = json_object();
				json_object_set_new(y, "documents",
						    json_integer((json_int_t)r->langs[i].docs));
				json_object_set_new(y, "bytes",
						    json_integer((json_int_t)r->langs[i].bytes));
				json_object_set_new(l, r->langs[i].code, y);
			}
			json_object_set_new(x, "languages", l);
		}
		json_object_set_new(x, "counters", cs);
		json_array_append_new(sv, x);
	}
	json_object_set_new(o, "steps", sv);
	return o;
}

/* ---- main ------------------------------------------------------------------------------- */

enum {
	OPT_STATS = 256,
	OPT_MANIFEST,
	OPT_NO_MANIFEST,
	OPT_PRINT_CONFIG,
	OPT_STEPS,
	OPT_SKIP,
	OPT_KEEP,
	OPT_DEDUP_INDEX,
	OPT_VERIFY,
	OPT_THRESHOLD,
	OPT_LINE_DEDUP,
	OPT_LANG,
	OPT_BAD_WORDS,
	OPT_PII,
	OPT_PII_KEY,
	OPT_RULES,
	OPT_MAX_LINE,
	OPT_CLASSIFIER,
	OPT_MIN_SCORE,
	OPT_LABEL,
	OPT_SHARD,
	OPT_SIGNATURES,
};

static const struct option longopts[] = {
	{"output", required_argument, NULL, 'o'},
	{"rejects", required_argument, NULL, 'r'},
	{"stats", required_argument, NULL, OPT_STATS},
	{"manifest", required_argument, NULL, OPT_MANIFEST},
	{"no-manifest", no_argument, NULL, OPT_NO_MANIFEST},
	{"config", required_argument, NULL, 'c'},
	{"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
	{"steps", required_argument, NULL, OPT_STEPS},
	{"skip", required_argument, NULL, OPT_SKIP},
	{"keep", required_argument, NULL, OPT_KEEP},
	{"dedup-index", required_argument, NULL, OPT_DEDUP_INDEX},
	{"verify", no_argument, NULL, OPT_VERIFY},
	{"threshold", required_argument, NULL, OPT_THRESHOLD},
	{"line-dedup", required_argument, NULL, OPT_LINE_DEDUP},
	{"lang", required_argument, NULL, OPT_LANG},
	{"bad-words", required_argument, NULL, OPT_BAD_WORDS},
	{"pii", required_argument, NULL, OPT_PII},
	{"pii-key-file", required_argument, NULL, OPT_PII_KEY},
	{"rules", required_argument, NULL, OPT_RULES},
	{"classifier", required_argument, NULL, OPT_CLASSIFIER},
	{"min-score", required_argument, NULL, OPT_MIN_SCORE},
	{"label", required_argument, NULL, OPT_LABEL},
	{"shard", required_argument, NULL, OPT_SHARD},
	{"signatures", required_argument, NULL, OPT_SIGNATURES},
	{"jobs", required_argument, NULL, 'j'},
	{"max-line", required_argument, NULL, OPT_MAX_LINE},
	{"quiet", no_argument, NULL, 'q'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

static int find_step(const char *name)
{
	for (size_t i = 0; i < cfg.n; i++)
		if (!strcmp(cfg.steps[i].name, name))
			return (int)i;
	return -1;
}

/* Adds a step (with no parameters) at pos; returns it, or NULL. */
static struct cn_step *insert_step(const char *name, size_t pos)
{
	if (!cn_config_add_step(&cfg, name))
		return NULL;
	struct cn_step s = cfg.steps[cfg.n - 1];
	if (pos > cfg.n - 1)
		pos = cfg.n - 1;
	memmove(cfg.steps + pos + 1, cfg.steps + pos, (cfg.n - 1 - pos) * sizeof s);
	cfg.steps[pos] = s;
	return &cfg.steps[pos];
}

static void remove_step(size_t i)
{
	free(cfg.steps[i].name);
	qn_yval_release(&cfg.steps[i].params);
	memmove(cfg.steps + i, cfg.steps + i + 1, (cfg.n - i - 1) * sizeof *cfg.steps);
	cfg.n--;
}

/* The step called name, added at the place the chain would want it. */
static struct cn_step *want_step(const char *name)
{
	int i = find_step(name);
	if (i >= 0)
		return &cfg.steps[i];
	size_t pos = cfg.n;
	int k = kind_of(name);
	if (k == K_LINE_DEDUP || k == K_LANG) {
		/* Early: after normalize (and line_dedup), before the rest. */
		pos = 0;
		for (size_t j = 0; j < cfg.n; j++) {
			int kj = kind_of(cfg.steps[j].name);
			if (kj == K_NORMALIZE || (k == K_LANG && kj == K_LINE_DEDUP))
				pos = j + 1;
		}
	} else if (kind_qf[k]) {
		/* After the last filter before it in qf order, else before near_dedup. */
		int after = -1, near = find_step("near_dedup");
		for (size_t j = 0; j < cfg.n; j++) {
			int kj = kind_of(cfg.steps[j].name);
			if (kj >= 0 && kind_qf[kj] && kind_qf[kj] < kind_qf[k])
				after = (int)j;
		}
		pos = after >= 0 ? (size_t)after + 1 : near >= 0 ? (size_t)near : cfg.n;
	} else if (k == K_CLASSIFIER) {
		/* After the rule-based filters, before near_dedup (datatrove's order). */
		int near = find_step("near_dedup");
		pos = near >= 0 ? (size_t)near : cfg.n;
	}
	return insert_step(name, pos);
}

static int split_list(const char *list, const char ***out, size_t *n)
{
	char *copy = strdup(list);
	size_t cap = 8;
	*out = malloc(cap * sizeof **out);
	*n = 0;
	if (!copy || !*out)
		return -1;
	for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		if (*n == cap) {
			const char **p = realloc(*out, (cap *= 2) * sizeof *p);
			if (!p)
				return -1;
			*out = p;
		}
		(*out)[(*n)++] = strdup(t);
	}
	free(copy);
	return 0;
}

static void free_list(const char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((void *)v[i]);
	free(v);
}

struct flags {
	const char *keep, *threshold, *line_dedup, *lang, *bad_words, *pii, *pii_key, *rules,
		*steps, *skip, *classifier, *min_score, *label;
	int verify;
};

/* Applies the flags to the chain; a usage message and -1 on a bad one. */
static int apply_flags(const struct flags *f)
{
	struct cn_step *s;
	const char **v;
	size_t n;

	if (f->steps) {
		cn_config_release(&cfg);
		cn_config_init(&cfg, "--steps");
		if (split_list(f->steps, &v, &n) < 0)
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (kind_of(v[i]) < 0) {
				qn_usage_error("unknown step '%s' in --steps", v[i]);
				free_list(v, n);
				return -1;
			}
			if (!cn_config_add_step(&cfg, v[i]))
				return -1;
		}
		free_list(v, n);
	}
	if (f->skip) {
		if (split_list(f->skip, &v, &n) < 0)
			return -1;
		for (size_t i = 0; i < n; i++) {
			int k = find_step(v[i]);
			if (kind_of(v[i]) < 0) {
				qn_usage_error("unknown step '%s' in --skip", v[i]);
				free_list(v, n);
				return -1;
			}
			if (k >= 0)
				remove_step((size_t)k);
		}
		free_list(v, n);
	}
	if (f->keep) {
		const char *rule = f->keep, *field = NULL;
		char buf[256];
		if (!strncmp(f->keep, "priority:", 9)) {
			rule = "priority";
			field = f->keep + 9;
		} else if (strcmp(rule, "first") && strcmp(rule, "longest") && strcmp(rule, "newest")) {
			qn_usage_error("--keep: expected first, longest, newest or priority:FIELD, "
				       "not '%s'",
				       f->keep);
			return -1;
		}
		snprintf(buf, sizeof buf, "%s", rule);
		for (int k = 0; k < 2; k++) {
			int i = find_step(k ? "near_dedup" : "exact_dedup");
			if (i < 0)
				continue;
			qn_yset_str(&cfg.steps[i].params, "keep", buf);
			if (field)
				qn_yset_str(&cfg.steps[i].params, "priority_field", field);
		}
	}
	if (f->verify || f->threshold) {
		if (!(s = want_step("near_dedup")))
			return -1;
		if (f->verify)
			qn_yset_bool(&s->params, "verify", 1);
		if (f->threshold) {
			char *end;
			double t = strtod(f->threshold, &end);
			if (*end || end == f->threshold || !(t >= 0 && t <= 1)) {
				qn_usage_error("--threshold: expected a number from 0 to 1, not '%s'",
					       f->threshold);
				return -1;
			}
			qn_yset_double(&s->params, "threshold", t);
		}
	}
	if (f->line_dedup) {
		char *end;
		long nd = strtol(f->line_dedup, &end, 10);
		if (*end || end == f->line_dedup || nd < 1) {
			qn_usage_error("--line-dedup: expected a positive count, not '%s'",
				       f->line_dedup);
			return -1;
		}
		if (!(s = want_step("line_dedup")))
			return -1;
		qn_yset_int(&s->params, "max_docs", nd);
	}
	if (f->lang) {
		if (!(s = want_step("lang")) || split_list(f->lang, &v, &n) < 0)
			return -1;
		qn_yset_strlist(&s->params, "keep", v, n);
		free_list(v, n);
	}
	if (f->bad_words) {
		if (!(s = want_step("c4_badwords")))
			return -1;
		qn_yset_str(&s->params, "words", f->bad_words);
	}
	if (f->pii) {
		int i = find_step("pii");
		if (!strcmp(f->pii, "off")) {
			if (i >= 0)
				remove_step((size_t)i);
		} else if (!strcmp(f->pii, "tag") || !strcmp(f->pii, "pseudonym")) {
			if (!(s = want_step("pii")))
				return -1;
			qn_yset_str(&s->params, "mode", f->pii);
		} else {
			qn_usage_error("--pii: expected tag, pseudonym or off, not '%s'", f->pii);
			return -1;
		}
	}
	if (f->pii_key && find_step("pii") < 0)
		qn_warn("--pii-key-file: the chain has no pii step; ignored");
	if (f->pii_key && find_step("pii") >= 0)
		qn_yset_str(&cfg.steps[find_step("pii")].params, "key_file", f->pii_key);
	if (f->rules) {
		if (!(s = want_step("rules")))
			return -1;
		qn_yset_str(&s->params, "file", f->rules);
	}
	if ((f->min_score || f->label) && !f->classifier && find_step("classifier") < 0) {
		qn_usage_error("%s needs --classifier MODEL", f->min_score ? "--min-score" : "--label");
		return -1;
	}
	if (f->classifier || f->min_score || f->label) {
		if (!(s = want_step("classifier")))
			return -1;
		if (f->classifier)
			qn_yset_str(&s->params, "model", f->classifier);
		if (f->label)
			qn_yset_str(&s->params, "label", f->label);
		if (f->min_score) {
			double p;
			if (qn_parse_number("--min-score", f->min_score, 0, 1, &p) < 0)
				return -1;
			qn_yset_double(&s->params, "min_score", p);
		}
	}
	return 0;
}

/* What the exact hash was taken of, so a persistent index is never mixed. */
static void exact_key(char *out, size_t n)
{
	size_t len = (size_t)snprintf(out, n, "xxh3_128");
	for (int i = 0; i < exact_at && len < n; i++) {
		const struct step *s = &steps[i];
		if (s->kind == K_NORMALIZE)
			len += (size_t)snprintf(out + len, n - len, ",normalize:%s%s%s%s:%d",
						form_names[s->form],
						s->norm.collapse_spaces ? ":collapse" : "",
						s->norm.unicode_spaces ? ":uspace" : "",
						s->norm.trim ? ":trim" : "", s->norm.max_blank_lines);
		else
			len += (size_t)snprintf(out + len, n - len, ",%s", kind_names[s->kind]);
	}
}

static int open_index(struct run *r)
{
	struct qn_err e;
	char key[1024];
	int locked = 0;

	exact_key(key, sizeof key);
	dindex = cn_dindex_open(dedup_index_dir, exact_at >= 0 ? key : NULL,
				near_at >= 0 ? &steps[near_at].mh : NULL, &locked, &e);
	if (!dindex) {
		qn_error("%s", e.msg);
		return locked ? QN_EXIT_LOCKED : QN_EXIT_FAIL;
	}
	if (exact_at >= 0) {
		size_t n = cn_dindex_exact_count(dindex);
		if (n >= OLD_BIT) {
			qn_error("%s: more than 2^31 exact entries", dedup_index_dir);
			return QN_EXIT_FAIL;
		}
		for (size_t i = 0; i < n; i++) {
			uint32_t v;
			if (xtab_get_or_put(&r->xt, cn_dindex_exact_hash(dindex, i),
					    OLD_BIT | (uint32_t)i, &v) < 0) {
				qn_error("out of memory");
				return QN_EXIT_FAIL;
			}
		}
	}
	if (near_at >= 0) {
		r->old = cn_dindex_near_count(dindex);
		for (size_t i = 0; i < r->old; i++)
			if (qn_lsh_add_keys(r->lsh, cn_dindex_near_keys(dindex, i), NULL, &e) < 0) {
				qn_error("%s", e.msg);
				return QN_EXIT_FAIL;
			}
		if (qn_uf_grow(r->uf, r->old) < 0) {
			qn_error("out of memory");
			return QN_EXIT_FAIL;
		}
	}
	qn_info("%s: %zu exact and %zu near-dup entries from earlier runs", dedup_index_dir,
		cn_dindex_exact_count(dindex), cn_dindex_near_count(dindex));
	return 0;
}

static void free_run(struct run *r)
{
	free(r->id_off);
	qn_buf_release(&r->ids);
	free(r->egroup);
	free(r->eprio);
	free(r->nprio);
	free(r->flags);
	free(r->xt.e);
	qn_lsh_free(r->lsh);
	qn_uf_free(r->uf);
	free(r->keep);
	free(r->erep);
	free(r->set_off);
	free(r->set_n);
	free(r->sa);
	free(r->sb);
	if (r->sets_fd >= 0)
		close(r->sets_fd);
	if (r->spool)
		fclose(r->spool);
	for (size_t s = 0; s < MAX_STEPS; s++) {
		for (size_t i = 0; i < r->st[s].nr; i++)
			free(r->st[s].r[i].name);
		free(r->st[s].r);
	}
	free(r->langs);
	qn_buf_release(&r->line);
	qn_manifest_free(r->man);
}

int main(int argc, char **argv)
{
	struct run r = {0};
	struct flags fl = {0};
	const char *output = NULL, *rejects = NULL, *stats = NULL, *manifest = NULL,
		   *config = NULL;
	int no_manifest = 0, print_config = 0, c, rc = 0;
	const char *signatures = NULL;
	struct qn_err e;

	qn_cli_init("quern-clean");
	if (argc >= 2 && !strcmp(argv[1], "dedup-merge"))
		return cn_dedup_merge_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "apply-removals"))
		return cn_apply_removals_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "merge-stats"))
		return cn_merge_stats_main(argc - 1, argv + 1);
	r.sets_fd = -1;
	while ((c = getopt_long(argc, argv, "o:r:c:j:qvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'r': rejects = optarg; break;
		case OPT_STATS: stats = optarg; break;
		case OPT_MANIFEST: manifest = optarg; break;
		case OPT_NO_MANIFEST: no_manifest = 1; break;
		case 'c': config = optarg; break;
		case OPT_PRINT_CONFIG: print_config = 1; break;
		case OPT_STEPS: fl.steps = optarg; break;
		case OPT_SKIP: fl.skip = optarg; break;
		case OPT_KEEP: fl.keep = optarg; break;
		case OPT_DEDUP_INDEX: dedup_index_dir = optarg; break;
		case OPT_VERIFY: fl.verify = 1; break;
		case OPT_THRESHOLD: fl.threshold = optarg; break;
		case OPT_LINE_DEDUP: fl.line_dedup = optarg; break;
		case OPT_LANG: fl.lang = optarg; break;
		case OPT_BAD_WORDS: fl.bad_words = optarg; break;
		case OPT_PII: fl.pii = optarg; break;
		case OPT_PII_KEY: fl.pii_key = optarg; break;
		case OPT_RULES: fl.rules = optarg; break;
		case OPT_CLASSIFIER: fl.classifier = optarg; break;
		case OPT_MIN_SCORE: fl.min_score = optarg; break;
		case OPT_LABEL: fl.label = optarg; break;
		case OPT_SHARD:
			if (qn_shardsel_parse(optarg, &shard_index, &shard_count) < 0)
				return qn_usage_error("--shard: expected I/N with 0 <= I < N, not '%s'",
						      optarg);
			break;
		case OPT_SIGNATURES: signatures = optarg; break;
		case 'j':
			if (qn_parse_jobs("-j", optarg, &jobs) < 0)
				return QN_EXIT_USAGE;
			break;
		case OPT_MAX_LINE: {
			uint64_t v;
			if (qn_parse_size(optarg, &v) < 0 || v < 1024 || v > ((uint64_t)1 << 32))
				return qn_usage_error("--max-line: expected a size from 1K to 4G, "
						      "not '%s'",
						      optarg);
			max_line = (size_t)v;
			break;
		}
		case 'q': qn_verbosity = -1; break;
		case 'v': qn_verbosity++; break;
		case 'h': fputs(usage_text, stdout); return qn_close_stdout(0);
		case 'V': return qn_print_version();
		default: return qn_usage_error("unknown option");
		}
	}
	if (config && fl.steps)
		return qn_usage_error("--steps and --config both set the chain; use one");

	cn_config_init(&cfg, config);
	if (config) {
		if (cn_config_load(&cfg, config, &e) < 0) {
			qn_error("%s", e.msg);
			cn_config_release(&cfg);
			return QN_EXIT_USAGE;
		}
	} else {
		for (size_t i = 0; i < sizeof default_chain / sizeof *default_chain; i++)
			if (!cn_config_add_step(&cfg, default_chain[i])) {
				qn_error("out of memory");
				return 1;
			}
	}
	if (apply_flags(&fl) < 0 || setup_steps(&e) < 0) {
		if (e.msg[0])
			qn_error("%s", e.msg);
		free_steps();
		cn_config_release(&cfg);
		return QN_EXIT_USAGE;
	}
	if (print_config) {
		struct qn_buf b;
		qn_buf_init(&b, QN_BUF_UNLIMITED);
		cn_config_print(&cfg, &b);
		fwrite(b.data, 1, b.len, stdout);
		qn_buf_release(&b);
		free_steps();
		cn_config_release(&cfg);
		return qn_close_stdout(0);
	}

	const char *std_in[] = {"-"};
	r.inputs = optind < argc ? (const char *const *)argv + optind : std_in;
	r.ninputs = optind < argc ? (size_t)(argc - optind) : 1;
	if (signatures && !shard_count)
		rc = qn_usage_error("--signatures needs --shard I/N");
	else if (shard_count && (exact_at >= 0 || near_at >= 0) && !signatures)
		rc = qn_usage_error("--shard with a dedup step needs --signatures FILE");
	else if (shard_count && dedup_index_dir)
		rc = qn_usage_error("--shard and --dedup-index do not go together yet");
	else if (shard_count && line_at >= 0)
		rc = qn_usage_error("--shard and line_dedup do not go together: line counts are "
				    "global");
	else if (shard_count && near_at >= 0 && steps[near_at].verify)
		rc = qn_usage_error("--shard and --verify do not go together yet");
	if (rc) {
		free_steps();
		cn_config_release(&cfg);
		return rc;
	}
	if (shard_count && plan_shard(&r) < 0)
		return 1;
	for (size_t i = 0; i < r.ninputs; i++)
		if (!strcmp(r.inputs[i], "-") && line_at >= 0 && stdin_fd < 0 && spool_stdin() < 0)
			return 1;

	qn_buf_init(&r.ids, QN_BUF_UNLIMITED);
	qn_buf_init(&r.line, QN_BUF_UNLIMITED);
	r.direct = exact_at < 0 && near_at < 0;
	if (near_at >= 0) {
		r.lsh = qn_lsh_new(&steps[near_at].mh, 0, &e);
		r.uf = qn_uf_new(0);
		if (!r.lsh || !r.uf) {
			qn_error("%s", r.lsh ? "out of memory" : e.msg);
			rc = 1;
			goto out;
		}
		if (steps[near_at].verify && (r.sets_fd = make_temp()) < 0) {
			qn_error("cannot make a temporary file: %s", strerror(errno));
			rc = 1;
			goto out;
		}
	}
	if (dedup_index_dir && (exact_at >= 0 || near_at >= 0) && (rc = open_index(&r)) != 0)
		goto out;
	if (!r.direct) {
		int fd = make_temp();
		r.spool = fd >= 0 ? fdopen(fd, "w+") : NULL;
		if (!r.spool) {
			qn_error("cannot make a temporary file: %s", strerror(errno));
			rc = 1;
			goto out;
		}
		setvbuf(r.spool, NULL, _IOFBF, 1 << 20);
	}
	r.out = qn_wr_open(output, 0, &e);
	if (!r.out) {
		qn_error("%s", e.msg);
		rc = 1;
		goto out;
	}
	if (rejects && !(r.rej = qn_wr_open(rejects, 0, &e))) {
		qn_error("%s", e.msg);
		qn_wr_abort(r.out);
		r.out = NULL;
		rc = 1;
		goto out;
	}
	if (signatures && (exact_at >= 0 || near_at >= 0) && open_signatures(signatures) < 0) {
		qn_wr_abort(r.out);
		r.out = NULL;
		if (r.rej)
			qn_wr_abort(r.rej);
		r.rej = NULL;
		rc = 1;
		goto out;
	}
	r.man = qn_manifest_new("quern-clean", QN_VERSION, argc, argv);
	qn_progress_init(&r.prog, 0);
	if (line_at >= 0) {
		linecount = cn_linecount_new(0);
		if (!linecount) {
			qn_error("out of memory");
			r.failed = 1;
		} else {
			feed(&r, PASS_COUNT);
		}
		r.bad_lines = 0; /* pass 1 reports them */
	}
	if (!r.failed)
		feed(&r, PASS_CLEAN);
	if (r.bad_inputs == r.ninputs) {
		qn_error("no input could be read");
		r.failed = 1;
	}
	if (!r.failed && !r.direct && (resolve(&r) < 0 || pass2(&r) < 0)) {
		if (!r.failed)
			qn_error("out of memory");
		r.failed = 1;
	}
	qn_progress_finish(&r.prog);

	struct qn_wr_info oinfo = {0}, rinfo = {0};
	if (sigw && (r.failed || close_signatures() < 0)) {
		if (sigw)
			qn_wr_abort(sigw);
		sigw = NULL;
		r.failed = 1;
	}
	if (r.failed) {
		qn_wr_abort(r.out);
		if (r.rej)
			qn_wr_abort(r.rej);
		qn_error("stopped; no output written");
		rc = 1;
		goto out;
	}
	/* Rejects first, then the output, then the index: an index never
	 * names documents that are not in a committed output. */
	if (r.rej && qn_wr_commit(r.rej, &rinfo, &e) < 0) {
		qn_error("%s", e.msg);
		qn_wr_abort(r.out);
		rc = 1;
		goto out;
	}
	if (qn_wr_commit(r.out, &oinfo, &e) < 0) {
		qn_error("%s", e.msg);
		rc = 1;
		goto out;
	}
	if (dindex && cn_dindex_commit(dindex, &e) < 0) {
		qn_error("%s", e.msg);
		rc = 1;
	}
	json_t *sj = stats_json(&r);
	if (stats) {
		char *txt = json_dumps(sj, JSON_INDENT(2));
		if (!txt || qn_write_file_atomic(stats, txt, strlen(txt), &e) < 0) {
			qn_error("%s", txt ? e.msg : "out of memory");
			rc = 1;
		}
		free(txt);
	}
	if (r.man) {
		qn_manifest_count(r.man, "documents_in", (int64_t)r.docs_in);
		qn_manifest_count(r.man, "documents_out", (int64_t)r.docs_out);
		qn_manifest_count(r.man, "documents_rejected", (int64_t)r.docs_rej);
		qn_manifest_count(r.man, "bytes_in", (int64_t)r.bytes_in);
		qn_manifest_count(r.man, "bytes_out", (int64_t)r.bytes_out);
		qn_manifest_count(r.man, "bad_lines", (int64_t)r.bad_lines);
		qn_manifest_set(r.man, "stats", json_incref(sj));
		struct qn_buf cb;
		qn_buf_init(&cb, QN_BUF_UNLIMITED);
		if (cn_config_print(&cfg, &cb) == 0)
			qn_manifest_set(r.man, "config", json_stringn(cb.data, cb.len));
		qn_buf_release(&cb);
		if (output && oinfo.sha256[0])
			qn_manifest_output(r.man, output, oinfo.bytes, oinfo.sha256);
		if (rejects && rinfo.sha256[0])
			qn_manifest_output(r.man, rejects, rinfo.bytes, rinfo.sha256);
		char *mpath = manifest ? strdup(manifest)
			      : (output && !no_manifest) ? qn_manifest_path_for(output)
							 : NULL;
		if (mpath && !no_manifest && qn_manifest_write(r.man, mpath, &e) < 0) {
			qn_error("%s", e.msg);
			rc = 1;
		}
		free(mpath);
	}
	json_decref(sj);
	qn_info("%llu documents in, %llu kept, %llu removed, %llu bad lines",
		(unsigned long long)r.docs_in, (unsigned long long)r.docs_out,
		(unsigned long long)r.docs_rej, (unsigned long long)r.bad_lines);
	if ((r.bad_lines || r.bad_inputs) && rc == 0)
		rc = 1;
out:
	cn_dindex_close(dindex);
	cn_linecount_free(linecount);
	free_run(&r);
	wctx_free_all();
	free_steps();
	cn_config_release(&cfg);
	if (stdin_fd >= 0)
		close(stdin_fd);
	free(shard_parts);
	qn_buf_release(&sigbuf);
	return qn_close_stdout(rc);
}
