/*
 * pii.c - see pii.h.
 *
 * The scanner is one loop over the bytes with a class table. Lower-case
 * letters, spaces and most punctuation are not triggers and go by in a tight
 * loop; only a few bytes can start a finding, and only there does any real
 * work happen:
 *
 *   '@'                     e-mail: walk back over the local part, match
 *   digit, '+', '(' or "(+" a "numeric cluster" (digit groups joined by one
 *     at a word boundary      separator each) parsed once and offered to the
 *                             phone, card, SSN and IPv4 rules
 *   ':' next to hex digits  IPv6: the hex/colon run, checked by inet_pton
 *   ':' or '=' after a key  AWS secret key / generic high-entropy secret
 *   '=' after AccountKey    Azure storage key
 *   ':' after digits        Telegram bot token
 *   upper case at a word    AKIA/ASIA, AIza, SG., PMAK-, IBAN
 *     start
 *   '_' '-' '.'             the token before it: gh?_, github_pat_, ?k_live_,
 *                             npm_, hf_, shp??_, do?_v1_, dckr_,
 *                             gl{pat,ptt,rt,dt,ft,cbt,soat}-, xox?-, sk-,
 *                             pypi-, "-----BEGIN ", a JWT header
 *                             (eyJ...), hvs., hvb., hooks.slack.com
 *   '(' after "define"      PHP define('NAME', 'value')
 *   byte pairs of "secret", secrets in prose and command lines (a second
 *     "passw", "kennwort",    pass after the loop, over every second byte
 *     ... (prose_names)       pair)
 *
 * Patterns are PCRE2, compiled anchored (so JIT applies: JIT does not take
 * PCRE2_ANCHORED at match time) and run at the trigger with a bounded
 * subject length; checksums and ranges are plain C.
 */
#include "pii.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "err.h"

static const char *const type_names[QN_PII_NTYPES] = {
    "EMAIL",
    "PHONE",
    "IPV4",
    "IPV6",
    "CREDIT_CARD",
    "IBAN",
    "US_SSN",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "PRIVATE_KEY",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "SLACK_TOKEN",
    "STRIPE_KEY",
    "GOOGLE_API_KEY",
    "JWT",
    "GENERIC_SECRET",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "HUGGINGFACE_TOKEN",
    "NPM_TOKEN",
    "PYPI_TOKEN",
    "SENDGRID_API_KEY",
    "AZURE_STORAGE_KEY",
    "SHOPIFY_TOKEN",
    "DIGITALOCEAN_TOKEN",
    "VAULT_TOKEN",
    "POSTMAN_API_KEY",
    "DOCKER_HUB_TOKEN",
    "TELEGRAM_BOT_TOKEN",
};
_Static_assert(QN_PII_NTYPES <= 31, "qn_pii_opts.types is a 32-bit mask");

const char *qn_pii_type_name(enum qn_pii_type t)
{
	return (unsigned)t < QN_PII_NTYPES ? type_names[t] : "?";
}

int qn_pii_type_parse(const char *name)
{
	for (int t = 0; t < QN_PII_NTYPES; t++)
		if (name && !strcasecmp(name, type_names[t]))
			return t;
	return -1;
}

int qn_pii_type_is_secret(enum qn_pii_type t)
{
	return t >= QN_PII_AWS_ACCESS_KEY && t < QN_PII_NTYPES;
}

void qn_pii_opts_init(struct qn_pii_opts *o)
{
	o->types = QN_PII_ALL;
	o->include_private_ip = 0;
	o->min_score = QN_PII_DEFAULT_MIN_SCORE;
}

/* ---- compiled patterns ---- */

enum {
	RX_EMAIL,
	RX_AWS,
	RX_GOOGLE,
	RX_GITHUB,
	RX_GITLAB,
	RX_SLACK,
	RX_SLACK_HOOK,
	RX_STRIPE,
	RX_JWT,
	RX_KEY_BEGIN,
	RX_KEY_END,
	RX_OPENAI,
	RX_ANTHROPIC,
	RX_HF,
	RX_NPM,
	RX_PYPI,
	RX_SENDGRID,
	RX_AZURE,
	RX_SHOPIFY,
	RX_DO,
	RX_VAULT,
	RX_POSTMAN,
	RX_DOCKER,
	RX_TELEGRAM,
	RX_N
};

static const char *const rx_src[RX_N] = {
    [RX_EMAIL] = "[A-Za-z0-9_%+-]+(?:\\.[A-Za-z0-9_%+-]+)*@"
		 "(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,24}"
		 "(?![A-Za-z0-9_-])",
    [RX_AWS] = "(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9_])",
    [RX_GOOGLE] = "AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])",
    [RX_GITHUB] = "(?:gh[pousr]_[A-Za-z0-9]{36,251}+|github_pat_[A-Za-z0-9_]{22,244}+)"
		  "(?![A-Za-z0-9_])",
    [RX_GITLAB] = "gl(?:pat|ptt|rt|dt|ft|cbt|soat)-[A-Za-z0-9_-]{20,64}+(?![A-Za-z0-9_-])",
    [RX_SLACK] = "xox[abposr]-[A-Za-z0-9-]{10,250}+(?![A-Za-z0-9_-])",
    [RX_SLACK_HOOK] = "(?:https?://)?hooks\\.slack\\.com/(?:services|workflows)/"
		      "T[A-Za-z0-9_]{6,}+/[AB][A-Za-z0-9_]{6,}+/[A-Za-z0-9_]{16,}+"
		      "(?![A-Za-z0-9_])",
    [RX_STRIPE] = "[sr]k_(?:live|test)_[A-Za-z0-9]{20,247}+(?![A-Za-z0-9_])",
    [RX_JWT] = "eyJ[A-Za-z0-9_-]{6,}+\\.[A-Za-z0-9_-]{6,}+\\.[A-Za-z0-9_-]*+(?![A-Za-z0-9_-])",
    [RX_KEY_BEGIN] = "-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----",
    [RX_KEY_END] = "-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----",
    /* The published token formats (as gitleaks and detect-secrets write them): a
     * fixed prefix, then a body of fixed length or charset, never glued to more
     * token characters. */
    [RX_OPENAI] = "sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,74}T3BlbkFJ[A-Za-z0-9_-]{20,74}+"
		  "(?![A-Za-z0-9_-])",
    [RX_ANTHROPIC] = "sk-ant-(?:api03|admin01)-[A-Za-z0-9_-]{93}AA(?![A-Za-z0-9_-])",
    [RX_HF] = "hf_[A-Za-z]{34}(?![A-Za-z0-9_])",
    [RX_NPM] = "npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])",
    [RX_PYPI] = "pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000}+(?![A-Za-z0-9_-])",
    [RX_SENDGRID] = "SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])",
    [RX_AZURE] = "[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])",
    [RX_SHOPIFY] = "shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![A-Za-z0-9_])",
    [RX_DO] = "do[por]_v1_[a-f0-9]{64}(?![A-Za-z0-9_])",
    [RX_VAULT] = "(?:hvs\\.[A-Za-z0-9_-]{90,120}+|hvb\\.[A-Za-z0-9_-]{138,300}+)(?![A-Za-z0-9_-])",
    [RX_POSTMAN] = "PMAK-[a-f0-9]{24}-[a-f0-9]{34}(?![A-Za-z0-9_-])",
    [RX_DOCKER] = "dckr_(?:pat|oat)_[A-Za-z0-9_-]{27}(?![A-Za-z0-9_-])",
    [RX_TELEGRAM] = "[0-9]{5,16}:A[A-Za-z0-9_-]{34}(?![A-Za-z0-9_-])",
};

/* Byte classes of the scanning loop. */
enum {
	C_DIG = 1,
	C_UP = 2,
	C_LO = 4,
	C_US = 8,
	C_HEX = 16,
	C_TRIG = 32, /* may start a finding: digits, upper case, @ : = + ( - _ . */
	C_STOP = 64, /* ends an unquoted value: , ; ) } ] < > & quotes */
	C_WORD = C_DIG | C_UP | C_LO | C_US,
};

/* Key names (lower case, without _ - . and spaces) whose values may be secrets;
 * also German Passwort/Kennwort, French mot de passe, Spanish contrase\xc3\xb1a and
 * clave, Portuguese senha, Dutch wachtwoord. */
static const char *const secret_keys[] = {"password", "passwd", "pwd", "secret", "token",
					  "apikey", "accesskey", "auth", "credential",
					  "privatekey", "passwort", "kennwort", "motdepasse",
					  "contrase", "clave", "senha", "wachtwoord", NULL};
#define NKEYS (sizeof secret_keys / sizeof *secret_keys - 1)

/*
 * Names that start a secret in prose (det_prose). Each has an anchor, three
 * bytes made of two byte pairs that are rare in prose; every occurrence of the
 * anchor puts one of its pairs at an even offset, so one pass that tests every
 * second byte pair against a bitmap of the pairs (ASCII letters in any case)
 * finds them all, and only at a hit is the whole name compared.
 */
static const struct prose_name {
	const char *name;
	unsigned char anchor; /* offset of the three anchor bytes in name */
} prose_names[] = {
	{"secret", 1}, {"passw", 2}, {"kennwort", 2}, {"mot de passe", 0}, {"clave", 1},
	{"contrase\xc3\xb1" "a", 8}, {"contrase\xc3\x91" "a", 8}, /* with U+00F1, U+00D1 */
};
#define NPROSE (sizeof prose_names / sizeof *prose_names)

/* Which of a..z occur in s: a cheap test before strstr. */
static uint32_t letters(const char *s)
{
	uint32_t m = 0;
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			m |= 1u << (*s - 'a');
	return m;
}

struct qn_pii {
	struct qn_pii_opts o;
	uint32_t key_mask[NKEYS], aws_mask;
	uint64_t prose_pairs[65536 / 64]; /* byte pair (first | second << 8) is an anchor */
	pcre2_code *rx[RX_N];
	pcre2_match_context *mctx;
	unsigned char cls[256];
};

struct qn_pii *qn_pii_new(const struct qn_pii_opts *o, struct qn_err *e)
{
	struct qn_pii *p = calloc(1, sizeof *p);

	if (!p) {
		qn_errf(e, "pii: out of memory");
		return NULL;
	}
	if (o)
		p->o = *o;
	else
		qn_pii_opts_init(&p->o);
	p->o.types &= QN_PII_ALL;
	for (int i = 0; i < RX_N; i++) {
		int err;
		PCRE2_SIZE off;
		p->rx[i] = pcre2_compile((PCRE2_SPTR)rx_src[i], PCRE2_ZERO_TERMINATED,
					 PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, &err, &off, NULL);
		if (!p->rx[i]) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(err, msg, sizeof msg);
			qn_errf(e, "pii: pattern %d at %zu: %s", i, (size_t)off, (char *)msg);
			qn_pii_free(p);
			return NULL;
		}
		/* Without JIT (unsupported CPU) pcre2_match interprets: slower, same result. */
		pcre2_jit_compile(p->rx[i], PCRE2_JIT_COMPLETE);
	}
	p->mctx = pcre2_match_context_create(NULL);
	if (!p->mctx) {
		qn_errf(e, "pii: out of memory");
		qn_pii_free(p);
		return NULL;
	}
	pcre2_set_match_limit(p->mctx, 100000);
	for (size_t k = 0; k < NKEYS; k++)
		p->key_mask[k] = letters(secret_keys[k]);
	p->aws_mask = letters("awssecret");
	for (size_t k = 0; k < NPROSE; k++) {
		const struct prose_name *pn = &prose_names[k];
		const unsigned char *a = (const unsigned char *)pn->name + pn->anchor;
		for (int v = 0; v < 8; v++) {
			unsigned c0 = a[v >> 2], c1 = a[(v >> 2) + 1];
			if ((v & 1) && c0 >= 'a' && c0 <= 'z')
				c0 -= 32;
			if ((v & 2) && c1 >= 'a' && c1 <= 'z')
				c1 -= 32;
			unsigned pair = c0 | c1 << 8;
			p->prose_pairs[pair >> 6] |= (uint64_t)1 << (pair & 63);
		}
	}
	for (int c = 0; c < 256; c++) {
		unsigned k = 0;
		if (c >= '0' && c <= '9')
			k |= C_DIG | C_HEX;
		if (c >= 'A' && c <= 'Z')
			k |= C_UP | (c <= 'F' ? C_HEX : 0);
		if (c >= 'a' && c <= 'z')
			k |= C_LO | (c <= 'f' ? C_HEX : 0);
		if (c == '_')
			k |= C_US;
		if (c == '@' || c == ':' || c == '=' || c == '+' || c == '(' || c == '-' || c == '_' ||
		    c == '.' || (k & (C_DIG | C_UP)))
			k |= C_TRIG;
		if (c && strchr(",;)}]<>&\"'`", c))
			k |= C_STOP;
		p->cls[c] = (unsigned char)k;
	}
	return p;
}

void qn_pii_free(struct qn_pii *p)
{
	if (!p)
		return;
	for (int i = 0; i < RX_N; i++)
		pcre2_code_free(p->rx[i]);
	pcre2_match_context_free(p->mctx);
	free(p);
}

void qn_pii_hits_init(struct qn_pii_hits *h, size_t max)
{
	h->v = NULL;
	h->n = h->cap = 0;
	h->max = max ? max : QN_PII_MAX_HITS;
}

void qn_pii_hits_release(struct qn_pii_hits *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

/* ---- one scan ---- */

struct scan {
	const struct qn_pii *p;
	const unsigned char *t;
	size_t len;
	pcre2_match_data *md;
	struct qn_pii_hits *out;
	struct qn_err *e;
	int failed;
	size_t v6_done; /* IPv6 runs are examined once */
	size_t key_end;  /* next "-----END " at or after the last key header, or len */
	int key_end_ok;
	size_t prose_done; /* det_prose has looked at the names before this */
};

static int on(const struct scan *s, enum qn_pii_type t)
{
	return (s->p->o.types >> t) & 1;
}

static int is_dig(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int is_upper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int has(const struct scan *s, size_t at, const char *lit)
{
	size_t n = strlen(lit);
	return s->len - at >= n && !memcmp(s->t + at, lit, n);
}

/* Runs pattern id anchored at at over at most win bytes; end of the match in *end. */
static int rx_at(struct scan *s, int id, size_t at, size_t win, size_t *end)
{
	size_t lim = s->len - at > win ? at + win : s->len;
	int rc = pcre2_match(s->p->rx[id], s->t, lim, at, 0, s->md, s->p->mctx);

	if (rc < 0)
		return 0;
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
	if (ov[0] != at || ov[1] <= at)
		return 0;
	*end = ov[1];
	return 1;
}

/*
 * Context words, lowercase, looked for in the QN_PII_CONTEXT bytes before a
 * value. A leading '^' means the word must start a word ("tel" in "Tel." or
 * "Telefon", not in "Bestellnummer").
 */
static const char *const ctx_phone[] = {
	"phone", "^tel", "^t\xc3\xa9l", "^t\xc3\x89l", "call", "mobil", "cell", "fax", "contact",
	"dial", "whatsapp", "sms", "^fon", "handy", "^ruf", "anruf", "llam", "ll\xc3\xa1m",
	"^m\xc3\xb3vil", "^movil", "celular", "appel", "chiam", "^ligue", "^tlf", "^tfno",
	"zadzwo", "^mobiel",
	"\xd1\x82\xd0\xb5\xd0\xbb", "\xd0\xa2\xd0\xb5\xd0\xbb", /* Russian tel, Tel */
	"\xe9\x9b\xbb\xe8\xa9\xb1", "\xe7\x94\xb5\xe8\xaf\x9d", /* Japanese, Chinese denwa/dianhua */
	"\xe6\x90\xba\xe5\xb8\xaf",                 /* Japanese keitai (mobile) */
	"\xe2\x98\x8e", "\xe2\x9c\x86",             /* U+260E U+2706 */
	"\xf0\x9f\x93\x9e", "\xf0\x9f\x93\xb1",     /* phone emoji U+1F4DE U+1F4F1 */
	NULL};
/* Labels of other numbers: when one of these is nearer to the value than any
 * phone word, the phone word belongs to another field. */
static const char *const ctx_not_phone[] = {"kundennummer", "kunden-nr", "vertrag", "serial",
					    "case", "order", "invoice", "bestell", "pedido",
					    "customer no", "customer id", "customer number", "contract",
					    "ticket", "tracking", "account", "konto", NULL};
static const char *const ctx_card[] = {"card", "credit", "visa", "mastercard", "amex",
				       "payment", "cc#", "pan", NULL};
static const char *const ctx_iban[] = {"iban", "account", "bank", "transfer", "sepa", NULL};
static const char *const ctx_ssn[] = {"ssn", "social security", "soc sec", "ss#", "taxpayer",
				      NULL};
static const char *const ctx_ip[] = {"ip", "address", "host", "server", "client", "from", NULL};
static const char *const ctx_email[] = {"mail", "contact", NULL};
static const char *const ctx_version[] = {"version", "ver.", "release", "build", "firmware",
					  NULL};

static const char *const *ctx_words(enum qn_pii_type t)
{
	switch (t) {
	case QN_PII_PHONE:
		return ctx_phone;
	case QN_PII_CREDIT_CARD:
		return ctx_card;
	case QN_PII_IBAN:
		return ctx_iban;
	case QN_PII_US_SSN:
		return ctx_ssn;
	case QN_PII_IPV4:
	case QN_PII_IPV6:
		return ctx_ip;
	case QN_PII_EMAIL:
		return ctx_email;
	default:
		return NULL;
	}
}

/* Where the last of words ends in the win (<= QN_PII_CONTEXT) bytes before start (1 +
 * offset into that window), or 0 when none occurs. */
static size_t word_near(const struct scan *s, size_t start, const char *const *words, size_t win)
{
	char low[QN_PII_CONTEXT];
	size_t from = start > win ? start - win : 0, n = start - from;
	size_t best = 0;

	for (size_t i = 0; i < n; i++)
		low[i] = (char)lower(s->t[from + i]);
	for (; *words; words++) {
		const char *w = *words;
		int ws = *w == '^';
		size_t wl = strlen(w + ws);
		const char *h = low, *q;
		while ((q = memmem(h, n - (size_t)(h - low), w + ws, wl)) != NULL) {
			size_t at = (size_t)(q - low);
			h = q + 1;
			if (ws && (from + at > 0) && (s->p->cls[s->t[from + at - 1]] & (C_UP | C_LO)))
				continue;
			if (at + wl + 1 > best)
				best = at + wl + 1;
		}
	}
	return best;
}

static int near_word(const struct scan *s, size_t start, const char *const *words)
{
	return word_near(s, start, words, QN_PII_CONTEXT) != 0;
}

/* Phone context: a phone word, and no other number's label after it. */
static int phone_context(const struct scan *s, size_t start)
{
	size_t pos = word_near(s, start, ctx_phone, QN_PII_CONTEXT);
	return pos && word_near(s, start, ctx_not_phone, QN_PII_CONTEXT) <= pos;
}

static void add(struct scan *s, enum qn_pii_type type, size_t start, size_t end, double score)
{
	const char *const *w = ctx_words(type);
	struct qn_pii_hits *h = s->out;

	if (s->failed || !on(s, type) || end <= start || end > s->len)
		return;
	if (w && score < 1.0 &&
	    (type == QN_PII_PHONE ? phone_context(s, start) : near_word(s, start, w)))
		score = score + 0.35 > 1.0 ? 1.0 : score + 0.35;
	if (score < s->p->o.min_score)
		return;
	if (h->n == h->cap) {
		if (h->n >= h->max) {
			s->failed = qn_errf(s->e, "pii: more than %zu findings", h->max);
			return;
		}
		size_t cap = h->cap ? h->cap * 2 : 16;
		if (cap > h->max)
			cap = h->max;
		struct qn_pii_hit *v = realloc(h->v, cap * sizeof *v);
		if (!v) {
			s->failed = qn_errf(s->e, "pii: out of memory");
			return;
		}
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n++] = (struct qn_pii_hit){type, (float)score, start, end};
}

/* ---- e-mail ---- */

static int email_local(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_dig(c) || c == '.' ||
	       c == '_' || c == '%' || c == '+' || c == '-';
}

static size_t det_email(struct scan *s, size_t at)
{
	size_t b = at, end;

	while (b > 0 && at - b < 64 && email_local(s->t[b - 1]))
		b--;
	if (b == at || (b > 0 && email_local(s->t[b - 1])))
		return 0;
	while (b < at && s->t[b] == '.')
		b++;
	if (b == at || !rx_at(s, RX_EMAIL, b, at - b + 256, &end))
		return 0;
	add(s, QN_PII_EMAIL, b, end, 0.9);
	return end;
}

/* ---- numeric clusters: phone, card, SSN, IPv4 ---- */

#define MAXG 12

struct grp {
	size_t s, e;   /* the digits */
	size_t end;    /* after the closing parenthesis, if any */
	unsigned char sep; /* separator before the group: 0 first, ' ' '-' '.' '/' ')' '(' */
	int paren;
};

struct clu {
	int plus;
	size_t start, end;
	int n;
	int tail_bad; /* the cluster runs straight into a letter or '_' */
	struct grp g[MAXG];
};

static size_t glen(const struct grp *g)
{
	return g->e - g->s;
}

/* A number may start at i: not glued to a word, nor to "x-" / "x." / "x+" (ids, versions). */
static int num_boundary(const struct scan *s, size_t i)
{
	if (i == 0)
		return 1;
	unsigned char p = s->t[i - 1];
	if (s->p->cls[p] & C_WORD)
		return 0;
	if ((p == '-' || p == '.' || p == '+' || p == '/') && i >= 2 &&
	    (s->p->cls[s->t[i - 2]] & C_WORD))
		return 0;
	return 1;
}

static void parse_cluster(const struct scan *s, size_t i, struct clu *c)
{
	const unsigned char *t = s->t;
	size_t p = i, len = s->len;
	unsigned char sep = 0;
	int open = 0; /* "(+": the country code is the first parenthesised group */

	c->plus = c->n = c->tail_bad = 0;
	c->start = c->end = i;
	if (t[p] == '(' && p + 1 < len && t[p + 1] == '+') {
		c->plus = open = 1;
		p += 2;
	} else if (t[p] == '+') {
		c->plus = 1;
		p++;
	}
	while (c->n < MAXG) {
		struct grp g = {0, 0, 0, sep, 0};
		size_t q = p;
		if (open) {
			g.paren = 1;
			open = 0;
		} else if (q < len && t[q] == '(') {
			g.paren = 1;
			q++;
		}
		if (q >= len || !is_dig(t[q]))
			break;
		g.s = q;
		while (q < len && is_dig(t[q]))
			q++;
		g.e = q;
		if (g.paren) {
			if (q >= len || t[q] != ')')
				break;
			q++;
		}
		g.end = q;
		c->g[c->n++] = g;
		c->end = q;
		p = q;
		if (p - c->start > 64)
			break;
		/* the next separator: one char, or ")" with an optional one after it, or
		 * '(' for a parenthesised group straight after digits (03(1234)5678) */
		sep = 0;
		if (g.paren) {
			sep = ')';
			if (p < len && (t[p] == ' ' || t[p] == '-' || t[p] == '.'))
				p++;
		} else if (p < len && (t[p] == ' ' || t[p] == '-' || t[p] == '.' || t[p] == '/')) {
			sep = t[p];
			p++;
		} else if (p + 1 < len && t[p] == '(' && is_dig(t[p + 1])) {
			sep = '(';
		}
		if (!sep)
			break;
		if (!(p < len && (is_dig(t[p]) || (t[p] == '(' && p + 1 < len && is_dig(t[p + 1])))))
			break;
	}
	c->tail_bad = c->end < len && (s->p->cls[t[c->end]] & C_WORD);
}

/* Groups [0, k) end cleanly: either more groups follow or the cluster ends at a non-word. */
static int tail_ok(const struct clu *c, int k)
{
	return k < c->n || !c->tail_bad;
}

static size_t grp_end(const struct clu *c, int k)
{
	return c->g[k - 1].end;
}

static int all_same(const char *d, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (d[i] != d[0])
			return 0;
	return 1;
}

/* Digits of groups [from, to) into d (NUL-terminated); their count, or 0 past cap. */
static size_t digits_of(const struct scan *s, const struct clu *c, int from, int to, char *d,
			size_t cap)
{
	size_t n = 0;
	d[0] = 0;
	for (int k = from; k < to; k++) {
		size_t l = glen(&c->g[k]);
		if (n + l + 1 > cap) {
			d[0] = 0;
			return 0;
		}
		memcpy(d + n, s->t + c->g[k].s, l);
		n += l;
	}
	d[n] = 0;
	return n;
}

static int seps_equal(const struct clu *c, int from, int to, const char *allowed)
{
	unsigned char sep = c->g[from].sep;
	if (!sep || !strchr(allowed, sep))
		return 0;
	for (int k = from + 1; k < to; k++)
		if (c->g[k].sep != sep)
			return 0;
	return 1;
}

static int no_parens(const struct clu *c, int to)
{
	for (int k = 0; k < to; k++)
		if (c->g[k].paren)
			return 0;
	return 1;
}

/* IPv4 */

static int v4_public(uint32_t a)
{
	unsigned o1 = a >> 24;
	if (o1 == 0 || o1 == 10 || o1 == 127 || o1 >= 224)
		return 0;
	if ((a & 0xFFC00000u) == 0x64400000u || /* 100.64/10 shared */
	    (a & 0xFFFF0000u) == 0xA9FE0000u || /* 169.254/16 link-local */
	    (a & 0xFFF00000u) == 0xAC100000u || /* 172.16/12 */
	    (a & 0xFFFFFF00u) == 0xC0000000u || /* 192.0.0/24 */
	    (a & 0xFFFFFF00u) == 0xC0000200u || /* 192.0.2/24 TEST-NET-1 */
	    (a & 0xFFFFFF00u) == 0xC0586300u || /* 192.88.99/24 6to4 relay */
	    (a & 0xFFFF0000u) == 0xC0A80000u || /* 192.168/16 */
	    (a & 0xFFFE0000u) == 0xC6120000u || /* 198.18/15 benchmarking */
	    (a & 0xFFFFFF00u) == 0xC6336400u || /* 198.51.100/24 TEST-NET-2 */
	    (a & 0xFFFFFF00u) == 0xCB007100u)   /* 203.0.113/24 TEST-NET-3 */
		return 0;
	return 1;
}

static int v4_wanted(const struct scan *s, uint32_t a)
{
	if (s->p->o.include_private_ip)
		return a != 0 && a != 0xFFFFFFFFu;
	return v4_public(a);
}

/*
 * The dotted quad at start is in a version position: it is the first dotted
 * number after a version word ("version", "release", "build", ...) in the 40
 * bytes before it: "Version 1.2.3.4", AssemblyVersion("5.2.7.0"), "bump
 * Standards-Version to 4.6.0.1". When another dotted number comes first, that
 * one is the version ("Version 9.5.6 deployed on 51.94.114.69").
 */
static int version_position(const struct scan *s, size_t start)
{
	size_t from = start > 40 ? start - 40 : 0, pos = word_near(s, start, ctx_version, 40);

	if (!pos)
		return 0;
	for (size_t k = from + pos - 1; k + 2 < start; k++)
		if (is_dig(s->t[k]) && num_boundary(s, k)) {
			while (k + 2 < start && is_dig(s->t[k + 1]))
				k++;
			if (s->t[k + 1] == '.' && is_dig(s->t[k + 2]))
				return 0;
		}
	return 1;
}

/* Groups [j, j + 4) as a dotted quad: the whole cluster (j 0) or a part after a
 * space ("ping -c 4 81.2.69.160"). */
static void clu_ipv4(struct scan *s, const struct clu *c, int j)
{
	uint32_t a = 0;

	if ((j == 0 && c->plus) || c->n < j + 4 || !no_parens(c, j + 4) ||
	    !seps_equal(c, j + 1, j + 4, "."))
		return;
	if ((c->n > j + 4 && c->g[j + 4].sep == '.') || !tail_ok(c, j + 4))
		return;
	for (int k = j; k < j + 4; k++) {
		size_t l = glen(&c->g[k]);
		const unsigned char *d = s->t + c->g[k].s;
		if (l > 3 || (l > 1 && d[0] == '0'))
			return;
		unsigned v = 0;
		for (size_t x = 0; x < l; x++)
			v = v * 10 + (d[x] - '0');
		if (v > 255)
			return;
		a = a << 8 | v;
	}
	size_t start = j ? c->g[j].s : c->start;
	if (!v4_wanted(s, a) || version_position(s, start))
		return;
	add(s, QN_PII_IPV4, start, grp_end(c, j + 4), 0.6);
}

/* US SSN */

static int ssn_valid(const char *d)
{
	static const char *const bad[] = {"078051120", "219099999", "123456789", "457555462", NULL};
	if (!memcmp(d, "000", 3) || !memcmp(d, "666", 3) || d[0] == '9')
		return 0;
	if (!memcmp(d + 3, "00", 2) || !memcmp(d + 5, "0000", 4) || all_same(d, 9))
		return 0;
	for (int i = 0; bad[i]; i++)
		if (!memcmp(d, bad[i], 9))
			return 0;
	return 1;
}

static void clu_ssn(struct scan *s, const struct clu *c)
{
	char d[16];

	if (c->plus || !no_parens(c, c->n < 3 ? c->n : 3))
		return;
	if (c->n >= 3 && glen(&c->g[0]) == 3 && glen(&c->g[1]) == 2 && glen(&c->g[2]) == 4 &&
	    seps_equal(c, 1, 3, "- ") && (c->n == 3 ? !c->tail_bad : c->g[3].sep != c->g[1].sep)) {
		digits_of(s, c, 0, 3, d, sizeof d);
		if (ssn_valid(d))
			add(s, QN_PII_US_SSN, c->start, grp_end(c, 3), c->g[1].sep == '-' ? 0.6 : 0.5);
		return;
	}
	if (c->n == 1 && glen(&c->g[0]) == 9 && !c->tail_bad) {
		digits_of(s, c, 0, 1, d, sizeof d);
		if (ssn_valid(d))
			add(s, QN_PII_US_SSN, c->start, c->end, 0.2);
	}
}

/* Credit cards */

static int luhn(const char *d, size_t n)
{
	unsigned sum = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned v = d[n - 1 - i] - '0';
		if (i & 1) {
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	return sum % 10 == 0;
}

static int iin_ok(const char *d, size_t n)
{
	unsigned p2 = (d[0] - '0') * 10 + (d[1] - '0');
	unsigned p3 = p2 * 10 + (d[2] - '0');
	unsigned p4 = p3 * 10 + (d[3] - '0');

	if (d[0] == '4')
		return n == 13 || n == 16 || n == 19;                 /* Visa */
	if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))
		return n == 16;                                       /* Mastercard */
	if (p2 == 34 || p2 == 37)
		return n == 15;                                       /* Amex */
	if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65)
		return n >= 16;                                       /* Discover */
	if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39)
		return n >= 14;                                       /* Diners */
	if (p4 >= 3528 && p4 <= 3589)
		return n >= 16;                                       /* JCB */
	if (p2 == 62)
		return n >= 16;                                       /* UnionPay */
	if (p2 == 50 || (p2 >= 56 && p2 <= 58) || p2 == 67)
		return 1;                                             /* Maestro */
	return 0;
}

static int card_shape(const struct clu *c, int k)
{
	if (k == 1)
		return 1;
	if (glen(&c->g[0]) != 4)
		return 0;
	if (k == 3 && glen(&c->g[1]) == 6 && (glen(&c->g[2]) == 5 || glen(&c->g[2]) == 4))
		return 1; /* Amex 4-6-5, Diners 4-6-4 */
	for (int j = 1; j < k - 1; j++)
		if (glen(&c->g[j]) != 4)
			return 0;
	return glen(&c->g[k - 1]) >= 1 && glen(&c->g[k - 1]) <= 4;
}

static void clu_card(struct scan *s, const struct clu *c)
{
	char d[32];

	if (c->plus)
		return;
	for (int k = c->n; k >= 1; k--) {
		if (!no_parens(c, k) || (k > 1 && !seps_equal(c, 1, k, " -")) || !tail_ok(c, k))
			continue;
		if (k > 1 && k < c->n && c->g[k].sep == c->g[1].sep)
			continue; /* the grouping goes on: a longer number */
		size_t n = digits_of(s, c, 0, k, d, sizeof d);
		if (n < 13 || n > 19 || !card_shape(c, k))
			continue;
		if (iin_ok(d, n) && luhn(d, n) && !all_same(d, n))
			add(s, QN_PII_CREDIT_CARD, c->start, grp_end(c, k), 0.8);
		return;
	}
}

/* Phones */

struct cc {
	unsigned short code;
	unsigned char min, max; /* digits of the national significant number */
};

static const struct cc cc_table[] = {
	{1, 10, 10},   {7, 10, 10},   {20, 8, 10},   {27, 9, 9},    {30, 10, 10},  {31, 9, 9},
	{32, 8, 9},    {33, 9, 9},    {34, 9, 9},    {36, 8, 9},    {39, 6, 11},   {40, 9, 9},
	{41, 9, 9},    {43, 4, 13},   {44, 9, 10},   {45, 8, 8},    {46, 7, 10},   {47, 8, 8},
	{48, 9, 9},    {49, 6, 13},   {51, 8, 9},    {52, 10, 10},  {54, 10, 10},  {55, 10, 11},
	{56, 9, 9},    {57, 10, 10},  {58, 10, 10},  {60, 7, 10},   {61, 9, 9},    {62, 8, 12},
	{63, 8, 10},   {64, 8, 10},   {65, 8, 8},    {66, 8, 9},    {81, 9, 10},   {82, 8, 10},
	{84, 9, 10},   {86, 10, 11},  {90, 10, 10},  {91, 10, 10},  {92, 9, 10},   {351, 9, 9},
	{352, 6, 11},  {353, 7, 9},   {354, 7, 9},   {358, 5, 12},  {359, 7, 9},   {370, 8, 8},
	{371, 8, 8},   {372, 7, 8},   {380, 9, 9},   {385, 8, 9},   {386, 8, 8},   {420, 9, 9},
	{421, 9, 9},   {852, 8, 8},   {886, 8, 9},   {966, 9, 9},   {971, 8, 9},   {972, 8, 9},
};

static const struct cc *cc_find(const char *d, size_t n)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (d[i] - '0');
	for (size_t i = 0; i < sizeof cc_table / sizeof *cc_table; i++)
		if (cc_table[i].code == v)
			return &cc_table[i];
	return NULL;
}

static int nanp_ok(const char *d)
{
	return d[0] >= '2' && d[3] >= '2' && !(d[1] == '1' && d[2] == '1');
}

static int phone_intl(const struct scan *s, const struct clu *c, int *kout)
{
	char g0[24], d[32];
	size_t l0 = glen(&c->g[0]), pre = 0;
	const struct cc *cc = NULL;
	int first = 1;

	if ((c->g[0].paren && glen(&c->g[0]) > 3) || l0 >= sizeof g0)
		return 0; /* (+34) and +(44) enclose only the country code */
	memcpy(g0, s->t + c->g[0].s, l0);
	g0[l0] = 0;
	if (c->n >= 2 && l0 <= 3) {
		cc = cc_find(g0, l0);
	} else {
		for (size_t l = 1; l <= 3 && l < l0 && !cc; l++)
			if ((cc = cc_find(g0, l)) != NULL)
				pre = l0 - l;
	}
	if (!cc)
		return 0;
	memcpy(d, g0 + l0 - pre, pre);
	size_t n = pre;
	if (first < c->n && c->g[first].paren && glen(&c->g[first]) == 1 &&
	    s->t[c->g[first].s] == '0')
		first++; /* +44 (0)20 ... */
	int best = 0;
	for (int k = first - 1; k < c->n; k++) {
		if (k >= first) {
			size_t l = glen(&c->g[k]);
			if (n + l >= sizeof d)
				break;
			memcpy(d + n, s->t + c->g[k].s, l);
			n += l;
		}
		if (k == 0 && pre == 0)
			continue;
		size_t min = cc->min, max = cc->max;
		if (n && d[0] == '0') /* +44 020 ..., written with the trunk zero */
			min++, max++;
		if (n > max)
			break;
		if (n >= min && tail_ok(c, k + 1) && (cc->code != 1 || nanp_ok(d)))
			best = k + 1;
	}
	*kout = best;
	return best > 0;
}

/* Score of the best phone reading of the cluster, groups used in *kout. */
static double phone_national(const struct scan *s, const struct clu *c, int *kout)
{
	const unsigned char *t = s->t;
	char d[40];
	int n = c->n;

	/* NANP: [1] (AAA) EEE-LLLL, AAA-EEE-LLLL, AAA.EEE.LLLL, AAA EEE LLLL */
	int a = (n >= 4 && glen(&c->g[0]) == 1 && t[c->g[0].s] == '1' && !c->g[0].paren) ? 1 : 0;
	if (n >= a + 3 && glen(&c->g[a]) == 3 && glen(&c->g[a + 1]) == 3 &&
	    glen(&c->g[a + 2]) == 4 && !c->g[a + 1].paren && !c->g[a + 2].paren &&
	    tail_ok(c, a + 3) && (n == a + 3 || c->g[a + 3].sep != c->g[a + 2].sep)) {
		digits_of(s, c, a, a + 3, d, sizeof d);
		if (nanp_ok(d)) {
			double sc = 0;
			if (c->g[a].paren)
				sc = strchr("- .", c->g[a + 2].sep) ? 0.7 : 0;
			else if (seps_equal(c, a + 1, a + 3, "-."))
				sc = 0.7;
			else if (seps_equal(c, a + 1, a + 3, " "))
				sc = 0.5;
			if (sc > 0) {
				*kout = a + 3;
				return sc;
			}
		}
	}
	/* French: 0X XX XX XX XX */
	if (n >= 5 && !c->g[0].paren && glen(&c->g[0]) == 2 && t[c->g[0].s] == '0' &&
	    t[c->g[0].s + 1] != '0') {
		int ok = seps_equal(c, 1, 5, " .-") && no_parens(c, 5) &&
			 (n == 5 ? !c->tail_bad : c->g[5].sep != c->g[1].sep);
		for (int k = 0; k < 5 && ok; k++)
			ok = glen(&c->g[k]) == 2;
		if (ok) {
			*kout = 5;
			return 0.7;
		}
	}
	/* Trunk-prefixed national numbers (UK, DE, ...): 0AAA[A] NNN[N] NNNN */
	size_t l0 = glen(&c->g[0]);
	int ssn_shape = n >= 3 && l0 == 3 && glen(&c->g[1]) == 2 && glen(&c->g[2]) == 4;
	if (l0 >= 3 && l0 <= 5 && n >= 2 && t[c->g[0].s] == '0' && t[c->g[0].s + 1] != '0' &&
	    !ssn_shape) {
		size_t tot = l0;
		int best = 0;
		for (int k = 1; k < n && k < 4; k++) {
			size_t l = glen(&c->g[k]);
			if (l < 2 || c->g[k].paren)
				break;
			tot += l;
			if (tot > 12)
				break;
			if (tot >= 9 && tail_ok(c, k + 1))
				best = k + 1;
		}
		if (best && best + 1 < n)
			best = 0; /* part of a longer grouped number (account, IBAN body) */
		if (best) {
			*kout = best;
			return 0.6;
		}
	}
	/* Two-digit trunk area codes (Vienna, Dublin, Rome, Sydney, Tokyo): 0N NNN NNNN,
	 * 0N NNNN NNNN, (0N) NNNN-NNNN, 0N(NNNN)NNNN; dates and references take these
	 * shapes too, so it needs context */
	if (l0 == 2 && n >= 2 && t[c->g[0].s] == '0' && t[c->g[0].s + 1] != '0') {
		size_t tot = l0;
		int best = 0;
		for (int k = 1; k < n && k < 4; k++) {
			size_t l = glen(&c->g[k]);
			if (l < 3 || l > 8 || c->g[k].sep == '/' ||
			    (c->g[k].paren && (k > 1 || c->g[0].paren)))
				break;
			tot += l;
			if (tot > 11)
				break;
			if (tot >= 9 && tail_ok(c, k + 1))
				best = k + 1;
		}
		if (best && best + 1 < n)
			best = 0;
		if (best) {
			*kout = best;
			return 0.3;
		}
	}
	/* Spanish (and other 9-digit plans without a trunk prefix): [6-9]NN NNN NNN,
	 * [6-9]N NNN NN NN, [6-9]NN NN NN NN; the same layouts are common for serials,
	 * so they need context */
	static const unsigned char nine[][5] = {{3, 3, 3, 3}, {4, 2, 3, 2, 2}, {4, 3, 2, 2, 2}};
	for (size_t L = 0; L < sizeof nine / sizeof *nine && t[c->g[0].s] >= '6'; L++) {
		int m = nine[L][0], ok = n >= m && no_parens(c, m) && seps_equal(c, 1, m, " -") &&
					 (n == m ? !c->tail_bad : c->g[m].sep != c->g[1].sep);
		for (int k = 0; k < m && ok; k++)
			ok = glen(&c->g[k]) == nine[L][k + 1];
		if (ok) {
			*kout = m;
			return 0.3;
		}
	}
	/* One bare run: needs context */
	if (n == 1 && !c->tail_bad && !c->g[0].paren) {
		size_t l = digits_of(s, c, 0, 1, d, sizeof d);
		if ((d[0] == '0' && d[1] != '0' && (l == 10 || l == 11)) || (l == 10 && nanp_ok(d)) ||
		    (l == 11 && d[0] == '1' && nanp_ok(d + 1))) {
			*kout = 1;
			return 0.3;
		}
	}
	return 0;
}

static void clu_phone(struct scan *s, const struct clu *c)
{
	int k = 0;
	double sc;

	if (c->plus)
		sc = phone_intl(s, c, &k) ? 0.75 : 0;
	else
		sc = phone_national(s, c, &k);
	if (sc > 0 && k > 0)
		add(s, QN_PII_PHONE, c->start, grp_end(c, k), sc);
}

static int iban_len(const unsigned char *cc);
static int word_start(const struct scan *s, size_t at);

/*
 * The number at i continues an IBAN written in groups of four whose check
 * digits are wrong ("GB59 YPRH 0534 9655 9724 96", a typo): a country code
 * with two digits, then groups of four letters or digits, each after one
 * space. Its digit groups are an account number, not a phone or a card.
 */
static int iban_body(const struct scan *s, size_t i)
{
	const unsigned char *t = s->t;
	size_t g = i;

	for (int k = 0; k < 8; k++) {
		if (g < 5 || t[g - 1] != ' ')
			return 0;
		g -= 5;
		for (size_t j = g; j < g + 4; j++)
			if (!is_upper(t[j]) && !is_dig(t[j]))
				return 0;
		if (!word_start(s, g))
			return 0;
		if (is_upper(t[g]) && is_upper(t[g + 1]) && is_dig(t[g + 2]) && is_dig(t[g + 3]) &&
		    iban_len(t + g))
			return 1;
	}
	return 0;
}

/* Returns where scanning goes on. */
static size_t det_numeric(struct scan *s, size_t i)
{
	struct clu c;

	parse_cluster(s, i, &c);
	if (c.n == 0)
		return i + 1;
	if (iban_body(s, i))
		goto skip;
	if (on(s, QN_PII_IPV4))
		for (int k = 0; k + 4 <= c.n; k++)
			if (k == 0 || c.g[k].sep == ' ')
				clu_ipv4(s, &c, k);
	if (on(s, QN_PII_US_SSN))
		clu_ssn(s, &c);
	if (on(s, QN_PII_CREDIT_CARD))
		clu_card(s, &c);
	if (on(s, QN_PII_PHONE))
		clu_phone(s, &c);
skip:;
	size_t e = c.end;
	while (e < s->len && (s->p->cls[s->t[e]] & C_WORD))
		e++;
	return e;
}

/* ---- IPv6 ---- */

static int v6_wanted(const struct scan *s, const unsigned char *a)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char zero[16] = {0};

	if (s->p->o.include_private_ip)
		return memcmp(a, zero, 16) != 0;
	if (!memcmp(a, mapped, 12))
		return v4_public((uint32_t)a[12] << 24 | a[13] << 16 | a[14] << 8 | a[15]);
	if ((a[0] & 0xE0) != 0x20)
		return 0; /* only 2000::/3 is global unicast */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return 0; /* 2001:db8::/32 documentation */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] < 0x02)
		return 0; /* 2001::/23 IETF protocol assignments (Teredo, benchmarking, ...) */
	if (a[0] == 0x3f && a[1] == 0xff && a[2] < 0x10)
		return 0; /* 3fff::/20 documentation */
	return 1;
}

static size_t det_ipv6(struct scan *s, size_t i)
{
	const unsigned char *t = s->t;
	const unsigned char *cls = s->p->cls;
	size_t b = i, e = i, colons = 0;
	char buf[64];
	unsigned char a[16];

	if (i < s->v6_done)
		return 0;
	if (!((i > 0 && (cls[t[i - 1]] & C_HEX)) || (i + 1 < s->len && t[i + 1] == ':')))
		return 0;
	while (b > 0 && i - b < 40 && ((cls[t[b - 1]] & C_HEX) || t[b - 1] == ':'))
		b--;
	while (e < s->len && e - b < 46 && ((cls[t[e]] & C_HEX) || t[e] == ':' || t[e] == '.'))
		e++;
	s->v6_done = e;
	if ((b > 0 && ((cls[t[b - 1]] & C_WORD) || t[b - 1] == '.' || t[b - 1] == ':')) ||
	    (e < s->len && (cls[t[e]] & C_WORD)))
		return 0;
	while (e > b && t[e - 1] == '.')
		e--;
	if (e - b >= 2 && t[e - 1] == ':' && t[e - 2] != ':')
		e--; /* "addr: ..." */
	if (e - b < 2 || e - b >= sizeof buf)
		return 0;
	for (size_t k = b; k < e; k++)
		colons += t[k] == ':';
	if (colons < 2)
		return 0;
	memcpy(buf, t + b, e - b);
	buf[e - b] = 0;
	if (inet_pton(AF_INET6, buf, a) != 1 || !v6_wanted(s, a))
		return 0;
	add(s, QN_PII_IPV6, b, e, 0.6);
	return e;
}

/* ---- IBAN ---- */

static const char iban_lens[] = "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BR29BY28CH21CR22CY28CZ24"
				"DE22DK18DO28EE20EG29ES24FI18FO18FR27GB22GE22GI23GL18GR27GT28"
				"HR21HU28IE22IL23IQ23IS26IT27JO30KW30KZ20LB28LC32LI21LT20LU20"
				"LV21MC27MD24ME22MK19MR27MT31MU30NL18NO15PK24PL28PS29PT25QA29"
				"RO24RS22SA24SC31SE24SI19SK24SM27ST25SV28TL23TN24TR26UA29VA22"
				"VG24XK20";

static int iban_len(const unsigned char *cc)
{
	for (const char *p = iban_lens; *p; p += 4)
		if (p[0] == cc[0] && p[1] == cc[1])
			return (p[2] - '0') * 10 + (p[3] - '0');
	return 0;
}

static int iban_mod97(const char *v, int n)
{
	unsigned r = 0;
	for (int k = 0; k < n; k++) {
		unsigned char ch = (unsigned char)v[(k + 4) % n];
		if (is_dig(ch))
			r = (r * 10 + (ch - '0')) % 97;
		else
			r = (r * 100 + (ch - 'A' + 10)) % 97;
	}
	return (int)r;
}

static size_t det_iban(struct scan *s, size_t i)
{
	const unsigned char *t = s->t;
	char v[40];
	int n = 0, want;
	size_t p = i;

	if (s->len - i < 15 || !is_upper(t[i + 1]) || !is_dig(t[i + 2]) || !is_dig(t[i + 3]))
		return 0;
	if (!(want = iban_len(t + i)))
		return 0;
	while (n < want && p < s->len) {
		if (is_upper(t[p]) || is_dig(t[p])) {
			v[n++] = (char)t[p++];
		} else if (t[p] == ' ' && n % 4 == 0 && p + 1 < s->len &&
			   (is_upper(t[p + 1]) || is_dig(t[p + 1]))) {
			p++;
		} else {
			break;
		}
	}
	if (n != want || (p < s->len && (s->p->cls[t[p]] & C_WORD)) || iban_mod97(v, n) != 1)
		return 0;
	add(s, QN_PII_IBAN, i, p, 0.9);
	return p;
}

/* ---- JWT, tokens, private keys ---- */

/* Shannon entropy of v in bits per byte. */
static double entropy(const unsigned char *v, size_t n)
{
	unsigned cnt[256] = {0};
	double h = 0;
	for (size_t i = 0; i < n; i++)
		cnt[v[i]]++;
	for (int c = 0; c < 256; c++)
		if (cnt[c]) {
			double p = (double)cnt[c] / (double)n;
			h -= p * log2(p);
		}
	return h;
}

static int b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (is_dig(c))
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* The JWT header (base64url up to the first '.') decodes to a JSON object with "alg". */
static int jwt_header_ok(const unsigned char *h, size_t n)
{
	char out[384];
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	for (size_t k = 0; k < n && o + 1 < sizeof out; k++) {
		int v = b64url_val(h[k]);
		if (v < 0)
			return 0;
		acc = (acc << 6 | (unsigned)v) & 0xFFFFFF;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xFF);
		}
	}
	out[o] = 0;
	return o > 0 && out[0] == '{' && memmem(out, o, "\"alg\"", 5) != NULL;
}

static size_t det_jwt(struct scan *s, size_t i)
{
	size_t end;
	if (!rx_at(s, RX_JWT, i, 16384, &end))
		return 0;
	const unsigned char *dot = memchr(s->t + i, '.', end - i);
	if (!dot || !jwt_header_ok(s->t + i, (size_t)(dot - (s->t + i))))
		return 0;
	add(s, QN_PII_JWT, i, end, 0.95);
	return end;
}

static int b64ch(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_dig(c) || c == '+' ||
	       c == '/' || c == '=';
}

static size_t det_private_key(struct scan *s, size_t i)
{
	const unsigned char *t = s->t;
	size_t he, ee, lim, p;

	if (!rx_at(s, RX_KEY_BEGIN, i, 96, &he))
		return 0;
	lim = s->len - he > 16384 ? he + 16384 : s->len;
	/* One search per END line, however many headers precede it: linear. */
	if (!s->key_end_ok || s->key_end < he) {
		const unsigned char *q = memmem(t + he, s->len - he, "-----END ", 9);
		s->key_end = q ? (size_t)(q - t) : s->len;
		s->key_end_ok = 1;
	}
	if (s->key_end < lim && rx_at(s, RX_KEY_END, s->key_end, 96, &ee)) {
		add(s, QN_PII_PRIVATE_KEY, i, ee, 0.99);
		return ee;
	}
	/* No END line (truncated paste): the header and the base64 lines that follow. */
	p = he;
	for (;;) {
		size_t l = p;
		if (l < lim && t[l] == '\r')
			l++;
		if (l >= lim || t[l] != '\n')
			break;
		l++;
		size_t b = l;
		while (l < lim && b64ch(t[l]))
			l++;
		if (l == b || (l < lim && t[l] != '\n' && t[l] != '\r'))
			break;
		p = l;
	}
	add(s, QN_PII_PRIVATE_KEY, i, p, 0.8);
	return p;
}

static int word_start(const struct scan *s, size_t at)
{
	return at == 0 || !(s->p->cls[s->t[at - 1]] & C_WORD);
}

/* A known token prefix pre (of n bytes, ending just before i) starting a word. */
static int prefix_before(const struct scan *s, size_t i, const char *pre, size_t n)
{
	return i >= n && !memcmp(s->t + i - n, pre, n) && word_start(s, i - n);
}

static size_t token(struct scan *s, int rx, enum qn_pii_type type, size_t at, size_t win)
{
	size_t end;
	if (!on(s, type) || !rx_at(s, rx, at, win, &end))
		return 0;
	add(s, type, at, end, 0.95);
	return end;
}

/*
 * A token whose shape alone is weak (a short prefix and a body of letters):
 * the body, from skip bytes into the match (and past the first ':' when
 * colon is set), must hold both upper and lower case and reach min bits per
 * character, as random characters do and identifiers of the same length do
 * not.
 */
static size_t token_random(struct scan *s, int rx, enum qn_pii_type type, size_t at, size_t win,
			   size_t skip, int colon, double min)
{
	size_t end, b;
	int up = 0, lo = 0;

	if (!on(s, type) || !rx_at(s, rx, at, win, &end))
		return 0;
	b = at + skip;
	if (colon) {
		const unsigned char *q = memchr(s->t + at, ':', end - at);
		b = q ? (size_t)(q - s->t) + 1 : end;
	}
	for (size_t k = b; k < end; k++) {
		up |= is_upper(s->t[k]);
		lo |= s->t[k] >= 'a' && s->t[k] <= 'z';
	}
	if (!up || !lo || b >= end || entropy(s->t + b, end - b) < min)
		return 0;
	add(s, type, at, end, 0.9);
	return end;
}

/* "prefix" of n bytes before i, then "next" at i: a token start. */
static int prefixed(const struct scan *s, size_t i, const char *pre, size_t n, const char *next)
{
	return prefix_before(s, i, pre, n) && (!next || has(s, i, next));
}

/* Upper-case letter at a word start: AWS key ids, Google keys, IBANs. */
static size_t det_upper(struct scan *s, size_t i)
{
	if (has(s, i, "AKIA") || has(s, i, "ASIA"))
		return token(s, RX_AWS, QN_PII_AWS_ACCESS_KEY, i, 64);
	if (has(s, i, "AIza"))
		return token(s, RX_GOOGLE, QN_PII_GOOGLE_API_KEY, i, 64);
	if (has(s, i, "SG."))
		return token(s, RX_SENDGRID, QN_PII_SENDGRID_KEY, i, 80);
	if (has(s, i, "PMAK-"))
		return token(s, RX_POSTMAN, QN_PII_POSTMAN_KEY, i, 80);
	return on(s, QN_PII_IBAN) ? det_iban(s, i) : 0;
}

/* '_' after gh[pousr], github, [sr]k. */
static size_t det_underscore(struct scan *s, size_t i)
{
	const unsigned char *t = s->t;

	if (i >= 3 && t[i - 3] == 'g' && t[i - 2] == 'h' && strchr("pousr", t[i - 1]) &&
	    t[i - 1] && word_start(s, i - 3))
		return token(s, RX_GITHUB, QN_PII_GITHUB_TOKEN, i - 3, 300);
	if (prefix_before(s, i, "github", 6) && has(s, i, "_pat_"))
		return token(s, RX_GITHUB, QN_PII_GITHUB_TOKEN, i - 6, 300);
	/* Secret and restricted keys, live or test; publishable (pk_) keys are
	 * public by design. */
	if (i >= 2 && t[i - 1] == 'k' && (t[i - 2] == 's' || t[i - 2] == 'r') &&
	    word_start(s, i - 2) && (has(s, i, "_live_") || has(s, i, "_test_")))
		return token(s, RX_STRIPE, QN_PII_STRIPE_KEY, i - 2, 300);
	if (prefixed(s, i, "npm", 3, NULL))
		return token(s, RX_NPM, QN_PII_NPM_TOKEN, i - 3, 64);
	/* Hugging Face: 34 letters, so a long identifier could take the shape. */
	if (prefixed(s, i, "hf", 2, NULL))
		return token_random(s, RX_HF, QN_PII_HUGGINGFACE_TOKEN, i - 2, 64, 3, 0, 4.0);
	/* Shopify: admin API access, custom app, private app, shared secret. */
	if (i >= 5 && t[i - 5] == 's' && t[i - 4] == 'h' && t[i - 3] == 'p' &&
	    (prefixed(s, i, "shpat", 5, NULL) || prefixed(s, i, "shpca", 5, NULL) ||
	     prefixed(s, i, "shppa", 5, NULL) || prefixed(s, i, "shpss", 5, NULL)))
		return token(s, RX_SHOPIFY, QN_PII_SHOPIFY_TOKEN, i - 5, 64);
	/* DigitalOcean: personal, OAuth, refresh. */
	if (i >= 3 && t[i - 3] == 'd' && t[i - 2] == 'o' && t[i - 1] && strchr("por", t[i - 1]) &&
	    word_start(s, i - 3) && has(s, i, "_v1_"))
		return token(s, RX_DO, QN_PII_DIGITALOCEAN_TOKEN, i - 3, 96);
	/* Docker Hub: personal and organisation access tokens. */
	if (prefixed(s, i, "dckr", 4, "_pat_") || prefixed(s, i, "dckr", 4, "_oat_"))
		return token(s, RX_DOCKER, QN_PII_DOCKER_TOKEN, i - 4, 64);
	return 0;
}

/* '-' after glpat, xox[abposr]; "-----BEGIN ". */
static size_t det_dash(struct scan *s, size_t i)
{
	const unsigned char *t = s->t;

	/* GitLab's token prefixes: personal, pipeline trigger, runner, deploy,
	 * feed, CI build, service account. */
	static const char *const gl[] = {"glpat", "glptt", "glrt", "gldt", "glft", "glcbt", "glsoat"};
	for (size_t k = 0; k < sizeof gl / sizeof *gl; k++) {
		size_t n = strlen(gl[k]);
		if (prefix_before(s, i, gl[k], n))
			return token(s, RX_GITLAB, QN_PII_GITLAB_TOKEN, i - n, 80);
	}
	if (i >= 4 && t[i - 1] && strchr("abposr", t[i - 1]) && prefix_before(s, i - 1, "xox", 3))
		return token(s, RX_SLACK, QN_PII_SLACK_TOKEN, i - 4, 300);
	if (has(s, i, "-----BEGIN ") && on(s, QN_PII_PRIVATE_KEY))
		return det_private_key(s, i);
	/* OpenAI (sk-, sk-proj-, ...; the body holds "T3BlbkFJ", base64 of
	 * "openai") and Anthropic (sk-ant-api03-). */
	if (prefixed(s, i, "sk", 2, NULL)) {
		if (has(s, i, "-ant-"))
			return token(s, RX_ANTHROPIC, QN_PII_ANTHROPIC_KEY, i - 2, 160);
		return token(s, RX_OPENAI, QN_PII_OPENAI_KEY, i - 2, 192);
	}
	/* PyPI: a macaroon whose first bytes encode its location, pypi.org. */
	if (prefixed(s, i, "pypi", 4, "-AgEIcHlwaS5vcmc"))
		return token(s, RX_PYPI, QN_PII_PYPI_TOKEN, i - 4, 1100);
	return 0;
}

static int b64url_ch(unsigned char c)
{
	return b64url_val(c) >= 0;
}

/* '=' after AccountKey (an Azure storage connection string): the key, 88
 * base64 characters. */
static size_t det_azure(struct scan *s, size_t i)
{
	if (!on(s, QN_PII_AZURE_STORAGE_KEY) || !prefixed(s, i, "AccountKey", 10, NULL))
		return 0;
	return token(s, RX_AZURE, QN_PII_AZURE_STORAGE_KEY, i + 1, 96);
}

/* ':' after digits: a Telegram bot token (bot id, ':', 35 characters from 'A'),
 * alone or in an API URL (".../bot123456:AA.../sendMessage"). */
static size_t det_telegram(struct scan *s, size_t i)
{
	const unsigned char *t = s->t;
	size_t b = i;

	if (!on(s, QN_PII_TELEGRAM_TOKEN) || i + 36 > s->len || t[i + 1] != 'A')
		return 0;
	while (b > 0 && i - b < 17 && is_dig(t[b - 1]))
		b--;
	if (i - b < 5 || i - b > 16 || !(word_start(s, b) || prefixed(s, b, "bot", 3, NULL)))
		return 0;
	return token_random(s, RX_TELEGRAM, QN_PII_TELEGRAM_TOKEN, b, 64, 0, 1, 4.0);
}

/* '.': the end of a JWT header (a word starting "eyJ") or hooks.slack.com. */
static size_t det_dot(struct scan *s, size_t i)
{
	const unsigned char *t = s->t;
	size_t w = i;

	if (on(s, QN_PII_JWT)) {
		while (w > 0 && i - w < 1024 && b64url_ch(t[w - 1]))
			w--;
		if (i - w >= 9 && has(s, w, "eyJ") && (w == 0 || !b64url_ch(t[w - 1])) &&
		    word_start(s, w))
			return det_jwt(s, w);
	}
	/* HashiCorp Vault service and batch tokens. */
	if (prefixed(s, i, "hvs", 3, NULL) || prefixed(s, i, "hvb", 3, NULL))
		return token(s, RX_VAULT, QN_PII_VAULT_TOKEN, i - 3, 310);
	if (on(s, QN_PII_SLACK_TOKEN) && i >= 5 && !memcmp(t + i - 5, "hooks", 5) &&
	    has(s, i, ".slack.com/")) {
		w = i - 5;
		if (w >= 8 && !memcmp(t + w - 8, "https://", 8))
			w -= 8;
		else if (w >= 7 && !memcmp(t + w - 7, "http://", 7))
			w -= 7;
		if (word_start(s, w))
			return token(s, RX_SLACK_HOOK, QN_PII_SLACK_TOKEN, w, 300);
	}
	return 0;
}

/* ---- key = value secrets ---- */

/* Bytes of a key name; UTF-8 sequences too (contrase\xc3\xb1a). */
static int key_ch(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_dig(c) || c == '_' ||
	       c == '-' || c == '.' || c >= 0x80;
}

static int is_quote(unsigned char c)
{
	return c == '"' || c == '\'' || c == '`';
}

/* What a key name (lower case, without _ - .) says about its value. K_AWS_ONLY:
 * only an AWS secret key counts (the name and the value are further apart). */
enum { K_GENERIC = 1, K_SECRET = 2, K_AWS = 4, K_AWS_ONLY = 8 };

static int key_kind(const struct qn_pii *p, const char *key)
{
	static const char *const more[] = {"encryptionkey", "signingkey", "masterkey", NULL};
	uint32_t have = letters(key);
	size_t kn = strlen(key);
	int k = 0;

	if (strstr(key, "secret"))
		k |= K_SECRET;
	if ((k & K_SECRET) && (have & p->aws_mask) == p->aws_mask && strstr(key, "aws"))
		k |= K_AWS;
	for (int j = 0; secret_keys[j] && !(k & K_GENERIC); j++)
		if ((have & p->key_mask[j]) == p->key_mask[j] && strstr(key, secret_keys[j]))
			k |= K_GENERIC;
	for (int j = 0; more[j] && !(k & K_GENERIC); j++)
		if (strstr(key, more[j]))
			k |= K_GENERIC;
	/* db_pass, SMTP_PASS, ldap_pw */
	if ((kn >= 4 && !memcmp(key + kn - 4, "pass", 4)) || (kn >= 2 && !memcmp(key + kn - 2, "pw", 2)))
		k |= K_GENERIC;
	return k;
}

/* The key name in t[b, e) lower-cased without _ - . and spaces into key[72]. */
static void key_norm(const unsigned char *t, size_t b, size_t e, char *key)
{
	size_t kn = 0;
	for (size_t k = b; k < e && kn < 71; k++)
		if (t[k] != '_' && t[k] != '-' && t[k] != '.' && t[k] != ' ')
			key[kn++] = (char)lower(t[k]);
	key[kn] = 0;
}

/* An AWS context within 256 bytes before at: the word "aws" (any case) or an
 * AKIA/ASIA key id. */
static int aws_context(const struct scan *s, size_t at)
{
	const unsigned char *t = s->t;
	size_t from = at > 256 ? at - 256 : 0;

	for (size_t k = from; k + 3 <= at; k++) {
		unsigned char c = t[k];
		if ((c == 'a' || c == 'A') && lower(t[k + 1]) == 'w' && lower(t[k + 2]) == 's' &&
		    (k == 0 || !(s->p->cls[t[k - 1]] & (C_UP | C_LO))) &&
		    (k + 3 >= s->len || !(s->p->cls[t[k + 3]] & C_LO)))
			return 1;
		if (c == 'A' && k + 20 <= s->len && (has(s, k, "AKIA") || has(s, k, "ASIA"))) {
			size_t j = k + 4;
			while (j < k + 20 && (is_upper(t[j]) || is_dig(t[j])))
				j++;
			if (j == k + 20)
				return 1;
		}
	}
	return 0;
}

/* Values that say they are not a secret: templates, placeholders, masks. */
static int placeholder(const unsigned char *v, size_t n)
{
	static const char *const bad[] = {"xxxx", "****", "${", "{{", "<", ">", "your", "example",
					  "changeme", "redacted", "placeholder", "...",
					  "environ", "process.env", "getenv", NULL};
	char low[257];
	if (n > 256)
		n = 256;
	for (size_t k = 0; k < n; k++)
		low[k] = (char)lower(v[k]);
	for (int k = 0; bad[k]; k++)
		if (memmem(low, n, bad[k], strlen(bad[k])))
			return 1;
	return 0;
}

/*
 * detect-secrets' entropy floors (HexHighEntropyString, Base64HighEntropyString),
 * in bits per character. A string of n characters has at most log2(n) bits per
 * character, so base64 values shorter than 2^4.5 = 23 characters could never
 * reach 4.5: up to 50 characters the floor is 0.8 log2(n) (3.2 at 16, 4.0 at
 * 32), about what n random characters reach, and the key name is the other
 * half of the evidence.
 */
#define HEX_FLOOR 3.0
#define B64_FLOOR 4.5

static double b64_floor(size_t n)
{
	double want = 0.8 * log2((double)n);
	return want < B64_FLOOR ? want : B64_FLOOR;
}

/*
 * Judges the value t[v, ve) of a key of kind: an AWS secret key (40 base64
 * characters under an AWS secret name, or under any secret name in an AWS
 * context) or a generic secret: 16 or more characters that are hex with at
 * least HEX_FLOOR bits per character, or mix two of lower case, upper case and
 * digits (strict: all three) with at least b64_floor(n). kb is where the key
 * starts.
 */
static void judge(struct scan *s, int kind, size_t kb, size_t v, size_t ve, int strict)
{
	const unsigned char *t = s->t;
	size_t n = ve - v;
	int hex = 1, b64 = 1, lo = 0, up = 0, dg = 0;

	if (n < 16 || n > 256)
		return;
	for (size_t k = v; k < ve; k++) {
		unsigned c = t[k], cl = s->p->cls[c];
		hex &= (cl & C_HEX) != 0;
		b64 &= (cl & (C_DIG | C_UP | C_LO)) || c == '/' || c == '+';
		lo |= (cl & C_LO) != 0;
		up |= (cl & C_UP) != 0;
		dg |= (cl & C_DIG) != 0;
	}
	if (n == 40 && b64 && ((kind & K_AWS) || ((kind & K_SECRET) && lo + up + dg == 3 &&
						   aws_context(s, kb)))) {
		add(s, QN_PII_AWS_SECRET_KEY, v, ve, 0.95);
		return;
	}
	if ((kind & K_AWS_ONLY) || !(kind & (K_GENERIC | K_SECRET)) || placeholder(t + v, n))
		return;
	double h = entropy(t + v, n);
	if (hex && !strict) {
		if (h >= HEX_FLOOR)
			add(s, QN_PII_GENERIC_SECRET, v, ve, 0.7);
		return;
	}
	if (lo + up + dg >= (strict ? 3 : 2) && h >= b64_floor(n))
		add(s, QN_PII_GENERIC_SECRET, v, ve, 0.7);
}

/* The name given by a nearby key="..." / name: ... (XML attributes, Kubernetes
 * env entries) for a key that is just "value"; its start in *kb. */
static int named_key(const struct scan *s, size_t b, char *key, size_t *kb)
{
	const unsigned char *t = s->t;
	size_t from = b > 160 ? b - 160 : 0;

	for (size_t j = b; j-- > from;) {
		size_t w;
		if (j + 4 <= b && !memcmp(t + j, "name", 4))
			w = 4;
		else if (j + 3 <= b && !memcmp(t + j, "key", 3))
			w = 3;
		else
			continue;
		if (j > 0 && key_ch(t[j - 1]))
			continue;
		size_t q = j + w;
		if (q < b && is_quote(t[q]))
			q++;
		if (q >= b || (t[q] != '=' && t[q] != ':'))
			continue;
		q++;
		while (q < b && (t[q] == ' ' || is_quote(t[q])))
			q++;
		size_t e = q;
		while (e < b && e - q < 64 && key_ch(t[e]))
			e++;
		if (e == q)
			continue;
		key_norm(t, q, e, key);
		*kb = q;
		return 1;
	}
	return 0;
}

/* The value after v: quoted (also « »), or up to a space or stop byte. */
static int value_at(const struct scan *s, size_t v, size_t *vs, size_t *vend)
{
	const unsigned char *t = s->t;
	size_t len = s->len, ve;

	if (len - v >= 2 && t[v] == 0xc2 && t[v + 1] == 0xab) { /* « */
		v += 2;
		while (v < len && (t[v] == ' ' || t[v] == '\t'))
			v++;
	}
	if (v < len && is_quote(t[v])) {
		unsigned char q = t[v++];
		ve = v;
		while (ve < len && ve - v <= 256 && t[ve] != q && t[ve] != '\n')
			ve++;
		if (ve >= len || t[ve] != q)
			return 0;
	} else {
		ve = v;
		while (ve < len && ve - v <= 256 && t[ve] > ' ' && !(s->p->cls[t[ve]] & C_STOP))
			ve++;
		while (ve > v && t[ve - 1] == '.')
			ve--; /* sentence end */
	}
	*vs = v;
	*vend = ve;
	return 1;
}

static void det_assign(struct scan *s, size_t i)
{
	const unsigned char *t = s->t;
	size_t len = s->len, b = i, ke, v, ve;
	char key[72];

	if (t[i] == '=' && ((i > 0 && t[i - 1] && strchr("=!<>", t[i - 1])) ||
			    (i + 1 < len && t[i + 1] == '=')))
		return;
	if (t[i] == ':' && ((i + 1 < len && t[i + 1] == ':') || (i > 0 && t[i - 1] == ':')))
		return;
	if (t[i] == '=' && b > 0 && t[b - 1] == ':')
		b--; /* := */
	for (int k = 0; k < 4 && b > 0 && (t[b - 1] == ' ' || t[b - 1] == '\t'); k++)
		b--;
	if (b > 0 && t[b - 1] == ']')
		b--; /* config['KEY'] = */
	if (b > 0 && is_quote(t[b - 1]))
		b--;
	ke = b;
	while (b > 0 && ke - b < 64 && key_ch(t[b - 1]))
		b--;
	if (b == ke)
		return;
	key_norm(t, b, ke, key);
	int kind = key_kind(s->p, key);
	if (!kind && !strcmp(key, "value") && named_key(s, b, key, &b))
		kind = key_kind(s->p, key);
	if (!kind && !strcmp(key, "passe") && b >= 7 &&
	    !strncasecmp((const char *)t + b - 7, "mot de ", 7)) {
		kind = K_GENERIC; /* mot de passe : X */
		b -= 7;
	}
	if (!kind)
		return;

	v = i + 1;
	if (v < len && t[i] == '=' && t[v] == '>')
		v++;
	else if (v < len && t[i] == ':' && t[v] == '=')
		v++;
	for (int k = 0; k < 8 && v < len && (t[v] == ' ' || t[v] == '\t'); k++)
		v++;
	if (len - v > 7 && !strncasecmp((const char *)t + v, "bearer ", 7))
		v += 7;
	if (!value_at(s, v, &v, &ve))
		return;
	judge(s, kind, b, v, ve, 0);
}

/* PHP define('NAME', 'value'): '(' at i. */
static void det_define(struct scan *s, size_t i)
{
	const unsigned char *t = s->t;
	size_t len = s->len, q = i + 1, kb, v, ve;
	char key[72];

	if (q >= len || !is_quote(t[q]))
		return;
	kb = ++q;
	while (q < len && q - kb < 64 && key_ch(t[q]))
		q++;
	if (q == kb || q >= len || t[q] != t[kb - 1])
		return;
	key_norm(t, kb, q, key);
	int kind = key_kind(s->p, key);
	if (!kind)
		return;
	q++;
	while (q < len && t[q] == ' ')
		q++;
	if (q >= len || t[q] != ',')
		return;
	q++;
	while (q < len && q - kb < 80 && t[q] == ' ')
		q++;
	if (q < len && is_quote(t[q]) && value_at(s, q, &v, &ve))
		judge(s, kind, kb, v, ve, 0);
}

/* The length of the filler word ("is", "lautet", ...) at w, or 0. */
static size_t filler_at(const struct scan *s, size_t w)
{
	static const char *const filler[] = {"access", "key", "is", "was", "ist", "war", "lautet",
					     "est", "es", "era", "de", "\xc3\xa9", "\xc3\xa8", NULL};

	for (int k = 0; filler[k]; k++) {
		size_t n = strlen(filler[k]);
		if (s->len - w >= n && !strncasecmp((const char *)s->t + w, filler[k], n) &&
		    (w + n == s->len || !key_ch(s->t[w + n]) || s->t[w + n] == '.'))
			return n;
	}
	return 0;
}

/* The length of a word of 1 to 10 ASCII letters at w that a space or the end
 * follows, or 0. */
static size_t short_word_at(const struct scan *s, size_t w)
{
	size_t n = 0;
	while (w + n < s->len && n <= 10 && (s->p->cls[s->t[w + n]] & (C_UP | C_LO)))
		n++;
	return n > 10 || (w + n < s->len && s->t[w + n] != ' ') ? 0 : n;
}

/*
 * Secrets in prose and on command lines, where the value does not follow the
 * name as key=value: "my password is X", "Das neue Passwort lautet X",
 * "Votre mot de passe : X", "AWS Secret Access Key [None]: X", "--password X".
 * The name is the word around [nb, ne). Between it and the value may come a few
 * filler words ("access", "key", "is", "lautet", "est", "es", ...), a bracketed
 * default ("[None]", as aws configure prompts) and one ':' or '='; after an AWS
 * name also one other short word ("Der AWS Secret Access Key lautet X"), but
 * then only an AWS secret key counts. The value must be strong (all of lower
 * case, upper case and digits).
 */
static void det_prose(struct scan *s, size_t nb, size_t ne)
{
	const unsigned char *t = s->t;
	size_t len = s->len, b = nb, e = ne, v, ve;
	int other = 0, sep = 0, done = 0;
	char key[72];

	while (b > 0 && nb - b < 64 && key_ch(t[b - 1]))
		b--;
	while (e < len && e - ne < 64 && key_ch(t[e]))
		e++;
	s->prose_done = e;
	key_norm(t, b, e, key);
	int kind = key_kind(s->p, key);
	if (!kind)
		return;
	v = e;
	for (int r = 0; r < 8 && !done; r++) {
		size_t w = v, n;
		while (w < len && w - v < 16 && (t[w] == ' ' || t[w] == '\t'))
			w++;
		if (w >= len)
			return;
		if (sep) {
			v = w;
			done = 1;
		} else if (t[w] == ':' || t[w] == '=') {
			sep = 1;
			v = w + 1;
		} else if (t[w] == '[') {
			const unsigned char *q = memchr(t + w, ']', len - w < 24 ? len - w : 24);
			if (!q || memchr(t + w, '\n', (size_t)(q - (t + w))))
				return;
			v = (size_t)(q - t) + 1;
			sep = v < len && (t[v] == ':' || t[v] == '=');
			v += sep;
		} else if (w == v) {
			return; /* glued to the word before: not a value */
		} else if ((n = filler_at(s, w)) != 0) {
			v = w + n;
		} else if (!other && (n = short_word_at(s, w)) != 0 &&
			   ((kind & K_AWS) || ((kind & K_SECRET) && aws_context(s, b)))) {
			other = 1;
			v = w + n;
		} else {
			v = w;
			done = 1;
		}
	}
	if (!done || !value_at(s, v, &v, &ve))
		return;
	judge(s, other ? kind | K_AWS_ONLY : kind, b, v, ve, 1);
}

/* The name of prose_names whose anchor has a pair at i (an even offset), if
 * any: det_prose. */
static void prose_at(struct scan *s, size_t i)
{
	for (size_t d = 2; d-- > 0;)
		for (size_t k = 0; k < NPROSE; k++) {
			const struct prose_name *pn = &prose_names[k];
			size_t nb = i - d - pn->anchor, n;
			if (i < d + pn->anchor || lower(s->t[nb]) != (unsigned char)pn->name[0] ||
			    nb < s->prose_done || s->len - nb < (n = strlen(pn->name)) ||
			    strncasecmp((const char *)s->t + nb, pn->name, n))
				continue;
			det_prose(s, nb, nb + n);
			return;
		}
}

/* Every name of prose_names (any case). */
static void scan_prose(struct scan *s)
{
	const unsigned char *t = s->t;
	const uint64_t *pairs = s->p->prose_pairs;
	size_t len = s->len;

	for (size_t i = 0; i + 1 < len; i += 2) {
		unsigned pair = t[i] | (unsigned)t[i + 1] << 8;
		if ((pairs[pair >> 6] >> (pair & 63)) & 1) {
			prose_at(s, i);
			if (s->failed)
				return;
		}
	}
}

/* redis-cli ... -a PASSWORD: '-' at i. */
static void det_cli_pass(struct scan *s, size_t i)
{
	const unsigned char *t = s->t;
	size_t from = i > 128 ? i - 128 : 0, v, ve;

	if (i == 0 || t[i - 1] != ' ' || s->len - i < 4 || t[i + 1] != 'a' || t[i + 2] != ' ')
		return;
	const unsigned char *r = memmem(t + from, i - from, "redis-cli", 9);
	if (!r || memchr(r, '\n', (size_t)(t + i - r)))
		return;
	if (value_at(s, i + 3, &v, &ve))
		judge(s, K_GENERIC, i, v, ve, 0);
}

/* ---- the scan ---- */

static int hit_cmp(const void *a, const void *b)
{
	const struct qn_pii_hit *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->end != y->end)
		return x->end > y->end ? -1 : 1;
	return (int)x->type - (int)y->type;
}

/* a beats b: higher score, then longer, then a (the earlier one). */
static int beats(const struct qn_pii_hit *a, const struct qn_pii_hit *b)
{
	if (a->score != b->score)
		return a->score > b->score;
	return a->end - a->start >= b->end - b->start;
}

static void resolve(struct qn_pii_hits *h)
{
	size_t w = 0;

	if (h->n < 2)
		return;
	qsort(h->v, h->n, sizeof *h->v, hit_cmp);
	for (size_t r = 0; r < h->n; r++) {
		if (w > 0 && h->v[r].start < h->v[w - 1].end) {
			if (!beats(&h->v[w - 1], &h->v[r]))
				h->v[w - 1] = h->v[r];
		} else {
			h->v[w++] = h->v[r];
		}
	}
	h->n = w;
}

int qn_pii_scan(const struct qn_pii *p, const char *text, size_t len, struct qn_pii_hits *out,
		struct qn_err *e)
{
	struct scan s = {p, (const unsigned char *)text, len, NULL, out, e, 0, 0, 0, 0, 0};
	const unsigned char *t = s.t;
	const unsigned char *cls = p->cls;
	int want_num = (p->o.types & (QN_PII_BIT(QN_PII_PHONE) | QN_PII_BIT(QN_PII_IPV4) |
				      QN_PII_BIT(QN_PII_CREDIT_CARD) | QN_PII_BIT(QN_PII_US_SSN))) != 0;
	int want_assign =
		(p->o.types & (QN_PII_BIT(QN_PII_AWS_SECRET_KEY) | QN_PII_BIT(QN_PII_GENERIC_SECRET))) != 0;
	size_t i = 0;

	out->n = 0;
	if (!len)
		return 0;
	if (!text)
		return qn_errf(e, "pii: no text");
	s.md = pcre2_match_data_create(4, NULL);
	if (!s.md)
		return qn_errf(e, "pii: out of memory");

	while (i < len && !s.failed) {
		while (i < len && !(cls[t[i]] & C_TRIG))
			i++;
		if (i >= len)
			break;
		unsigned char c = t[i];
		size_t end = 0;
		if (cls[c] & (C_DIG | C_UP)) {
			if (!word_start(&s, i)) {
				while (i < len && (cls[t[i]] & C_WORD))
					i++;
				continue;
			}
			if (cls[c] & C_DIG) {
				i = want_num && num_boundary(&s, i) ? det_numeric(&s, i) : i + 1;
				continue;
			}
			end = det_upper(&s, i);
			if (end > i) {
				i = end;
				continue;
			}
			while (i < len && (cls[t[i]] & C_WORD))
				i++;
			continue;
		}
		switch (c) {
		case '@':
			if (p->o.types & QN_PII_BIT(QN_PII_EMAIL))
				end = det_email(&s, i);
			break;
		case ':':
			if (p->o.types & QN_PII_BIT(QN_PII_IPV6))
				det_ipv6(&s, i);
			if (want_assign)
				det_assign(&s, i);
			if (i > 0 && is_dig(t[i - 1]))
				end = det_telegram(&s, i);
			break;
		case '=':
			if (want_assign)
				det_assign(&s, i);
			end = det_azure(&s, i);
			break;
		case '+':
		case '(':
			if (want_num && i + 1 < len &&
			    (is_dig(t[i + 1]) ||
			     (c == '(' && t[i + 1] == '+' && i + 2 < len && is_dig(t[i + 2]))) &&
			    num_boundary(&s, i))
				end = det_numeric(&s, i);
			else if (want_assign && c == '(' && i >= 6 && !memcmp(t + i - 6, "define", 6))
				det_define(&s, i);
			break;
		case '-':
			end = det_dash(&s, i);
			if (!end && want_assign && i + 1 < len && t[i + 1] == 'a')
				det_cli_pass(&s, i);
			break;
		case '_':
			end = det_underscore(&s, i);
			break;
		case '.':
			end = det_dot(&s, i);
			break;
		}
		i = end > i ? end : i + 1;
	}
	if (want_assign && !s.failed)
		scan_prose(&s);
	pcre2_match_data_free(s.md);
	if (s.failed) {
		out->n = 0;
		return -1;
	}
	resolve(out);
	return 0;
}

/* ---- redaction, pseudonyms, masks ---- */

/* Normal form of a value for pseudonyms; its length, or 0 to use the raw bytes. */
static size_t normalize(enum qn_pii_type t, const unsigned char *v, size_t n, char *o, size_t cap)
{
	size_t k = 0;

	if (n >= cap)
		return 0;
	switch (t) {
	case QN_PII_EMAIL:
		for (size_t i = 0; i < n; i++)
			o[k++] = (char)lower(v[i]);
		return k;
	case QN_PII_PHONE:
	case QN_PII_CREDIT_CARD:
	case QN_PII_US_SSN:
		for (size_t i = 0; i < n; i++)
			if (is_dig(v[i]))
				o[k++] = (char)v[i];
		if (t == QN_PII_PHONE && k == 11 && o[0] == '1') {
			memmove(o, o + 1, 10); /* +1 212 ... and (212) ... are one number */
			k = 10;
		}
		return k;
	case QN_PII_IBAN:
		for (size_t i = 0; i < n; i++)
			if (v[i] != ' ')
				o[k++] = (char)(v[i] >= 'a' && v[i] <= 'z' ? v[i] - 32 : v[i]);
		return k;
	case QN_PII_IPV6: {
		char in[64];
		unsigned char a[16];
		if (n >= sizeof in)
			return 0;
		memcpy(in, v, n);
		in[n] = 0;
		if (inet_pton(AF_INET6, in, a) != 1 || !inet_ntop(AF_INET6, a, o, (socklen_t)cap))
			return 0;
		return strlen(o);
	}
	default:
		return 0;
	}
}

void qn_pii_pseudonym(enum qn_pii_type t, const char *value, size_t n, const unsigned char *key,
		      size_t keylen, char out[QN_PII_PSEUDONYM_MAX])
{
	char norm[512];
	unsigned char dig[EVP_MAX_MD_SIZE], msg[64], mac[EVP_MAX_MD_SIZE];
	unsigned int dl = 0, ml = 0;
	const char *name = qn_pii_type_name(t);
	size_t nl = strlen(name), k = normalize(t, (const unsigned char *)value, n, norm, sizeof norm);
	static const unsigned char nokey[1];

	/* HMAC(key, name 0 SHA-256(normal form)): long values (key blocks) need no copy. */
	if (k)
		EVP_Digest(norm, k, dig, &dl, EVP_sha256(), NULL);
	else
		EVP_Digest(value ? value : "", n, dig, &dl, EVP_sha256(), NULL);
	memcpy(msg, name, nl);
	msg[nl] = 0;
	memcpy(msg + nl + 1, dig, 32);
	if (!HMAC(EVP_sha256(), key && keylen ? key : nokey, (int)(key ? keylen : 0), msg,
		  nl + 1 + 32, mac, &ml) ||
	    ml < 4)
		memset(mac, 0, 4);
	snprintf(out, QN_PII_PSEUDONYM_MAX, "%s_%02x%02x%02x%02x", name, mac[0], mac[1], mac[2],
		 mac[3]);
}

int qn_pii_redact(const struct qn_pii_hits *h, const char *text, size_t len, enum qn_pii_mode mode,
		  const unsigned char *key, size_t keylen, struct qn_buf *out,
		  uint64_t counts[QN_PII_NTYPES], struct qn_err *e)
{
	size_t at = 0;
	char ps[QN_PII_PSEUDONYM_MAX];

	for (size_t i = 0; i < h->n; i++) {
		const struct qn_pii_hit *x = &h->v[i];
		if (x->start < at || x->end <= x->start || x->end > len ||
		    (unsigned)x->type >= QN_PII_NTYPES)
			return qn_errf(e, "pii: finding %zu is outside the text or out of order", i);
		if (qn_buf_add(out, text + at, x->start - at) < 0 || qn_buf_addc(out, '<') < 0)
			goto full;
		if (mode == QN_PII_PSEUDONYM) {
			qn_pii_pseudonym(x->type, text + x->start, x->end - x->start, key, keylen, ps);
			if (qn_buf_adds(out, ps) < 0)
				goto full;
		} else if (qn_buf_adds(out, qn_pii_type_name(x->type)) < 0) {
			goto full;
		}
		if (qn_buf_addc(out, '>') < 0)
			goto full;
		if (counts)
			counts[x->type]++;
		at = x->end;
	}
	if (qn_buf_add(out, text + at, len - at) < 0)
		goto full;
	return 0;
full:
	return qn_errf(e, "pii: redacted text is larger than %zu bytes", out->max);
}

static size_t put(char *out, size_t outsz, size_t o, const char *p, size_t n)
{
	for (size_t i = 0; i < n && o + 1 < outsz; i++) {
		unsigned char c = (unsigned char)p[i];
		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	return o;
}

size_t qn_pii_mask(enum qn_pii_type t, const char *v, size_t n, char *out, size_t outsz)
{
	size_t o = 0;

	if (!outsz)
		return 0;
	const char *at = t == QN_PII_EMAIL ? memrchr(v, '@', n) : NULL;
	if (at && at > v && at + 1 < v + n) {
		const char *dom = at + 1, *end = v + n;
		const char *dot = memrchr(dom, '.', (size_t)(end - dom));
		o = put(out, outsz, o, v, 1);
		o = put(out, outsz, o, "***@", 4);
		o = put(out, outsz, o, dom, 1);
		o = put(out, outsz, o, "*****", 5);
		if (dot && dot > dom)
			o = put(out, outsz, o, dot, (size_t)(end - dot));
	} else {
		size_t k = n / 8;
		if (k > 4)
			k = 4;
		o = put(out, outsz, o, v, k);
		o = put(out, outsz, o, "****", 4);
		o = put(out, outsz, o, v + n - k, k);
	}
	out[o] = 0;
	return o;
}
