/*
 * pii_fixture.c - writes the labeled PII and secret fixture of issue 7 as
 * quern documents plus a separate labels file, so that the same documents
 * can go through quern-clean and quern-audit and be scored against one
 * truth.
 *
 *   pii_fixture [-s SEED] [-n ROUNDS] DOCS.jsonl LABELS.jsonl
 *
 * DOCS.jsonl: one quern document a line ({"id", "text", "source", "added",
 * "metadata": {"kind": "positive" | "negative", "about": ...}}). LABELS.jsonl:
 * one true value a line, {"id": DOC_ID, "type": "EMAIL", "start": 12,
 * "end": 32}, byte offsets into the document's text, in document order.
 *
 * Each round writes one document for every type (each of the seven PII types
 * twice more: phones in international and national layouts, cards, IBANs
 * with their country's length and correct mod-97 check digits, SSNs with
 * valid area, group and serial), each value in a sentence, log line,
 * config snippet or shell command of the kind it is found in, and one hard
 * negative of every kind below. ROUNDS 80 (the default) gives 80 values of
 * each token type and 240 of each PII type.
 *
 * Hard negatives (documents with no label): Luhn-invalid card numbers,
 * IBANs with wrong check digits, invalid SSNs (area 000, 666 or 9xx, group
 * 00, serial 0000) next to their context words, ISBN-10 and ISBN-13, UUIDs,
 * version strings ("version 4.18.2.7"), git commit SHAs and SHA-256
 * digests, private and documentation addresses, dates and order numbers,
 * placeholders under secret names (YOUR_API_KEY, ${TOKEN}, <password>,
 * xxxx), identifiers that start like tokens (hf_hub_download, npm_config_
 * cache, sk-learn), and low-entropy values under secret names.
 *
 * The labels come from how each text is built, never from a detector, so
 * the fixture measures one. Output is a pure function of SEED and ROUNDS
 * (xorshift64). Only libc.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned below(unsigned n)
{
	return (unsigned)((rnd() >> 33) % n);
}

#define NEL(a) (sizeof(a) / sizeof *(a))
#define PICK(a) (a[below(NEL(a))])

/* ---- one document under construction ---- */

static struct {
	char text[8192];
	size_t n;
	struct {
		const char *type;
		size_t s, e;
	} lab[8];
	int nl;
} D;

static FILE *fdocs, *flabels;
static unsigned ndocs, nlabels, nneg;

static void lit(const char *s)
{
	size_t k = strlen(s);
	if (D.n + k >= sizeof D.text)
		abort();
	memcpy(D.text + D.n, s, k);
	D.n += k;
	D.text[D.n] = 0;
}

static void litf(const char *fmt, ...)
{
	char b[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	lit(b);
}

/* Text with "%V" where the value v of type goes (type NULL: a hard negative,
 * no label); at most one %V. */
static void put(const char *tmpl, const char *type, const char *v)
{
	const char *p = strstr(tmpl, "%V");
	if (!p) {
		lit(tmpl);
		return;
	}
	char head[1024];
	memcpy(head, tmpl, (size_t)(p - tmpl));
	head[p - tmpl] = 0;
	lit(head);
	if (type) {
		if (D.nl == (int)NEL(D.lab))
			abort();
		D.lab[D.nl].type = type;
		D.lab[D.nl].s = D.n;
		lit(v);
		D.lab[D.nl++].e = D.n;
	} else {
		lit(v);
	}
	lit(p + 2);
}

static void json_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void emit(const char *about)
{
	char id[32];
	snprintf(id, sizeof id, "piifx-%05u", ++ndocs);
	fprintf(fdocs, "{\"id\":\"%s\",\"text\":", id);
	json_str(fdocs, D.text, D.n);
	fprintf(fdocs,
		",\"source\":\"pii_fixture\",\"added\":\"2024-01-01T00:00:00Z\","
		"\"metadata\":{\"kind\":\"%s\",\"about\":\"%s\"}}\n",
		D.nl ? "positive" : "negative", about);
	for (int i = 0; i < D.nl; i++)
		fprintf(flabels, "{\"id\":\"%s\",\"type\":\"%s\",\"start\":%zu,\"end\":%zu}\n", id,
			D.lab[i].type, D.lab[i].s, D.lab[i].e);
	nlabels += (unsigned)D.nl;
	nneg += D.nl == 0;
	D.n = 0;
	D.nl = 0;
	D.text[0] = 0;
}

/* ---- value makers ---- */

static const char UPPER[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
static const char LETTERS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char URLSAFE[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char HEX[] = "0123456789abcdef";

/* n characters of set at o (NUL-terminated); returns o. */
static char *rand_from(char *o, const char *set, size_t n)
{
	size_t k = strlen(set);
	for (size_t i = 0; i < n; i++)
		o[i] = set[below((unsigned)k)];
	o[n] = 0;
	return o;
}

static const char *const firsts[] = {"john",  "jane",	"maria",  "li",	  "ahmed", "olga",
				     "kenji", "fatima", "pierre", "anna", "raj",   "chloe",
				     "tom",   "ines",	"sven",	  "aisha"};
static const char *const lasts[] = {"doe",    "roe",   "garcia", "wei",	    "hassan", "petrova",
				    "tanaka", "khan",  "martin", "schmidt", "patel",  "dubois",
				    "baker",  "silva", "berg",	 "okafor"};
static const char *const domains[] = {"example.com",	   "example.org",	 "mail.example.net",
				      "acme-corp.example", "corp.example.co.uk", "uni-example.de",
				      "support.example.fr"};

static void mk_email(char *o)
{
	const char *f = PICK(firsts), *l = PICK(lasts), *d = PICK(domains);
	switch (below(5)) {
	case 0:
		sprintf(o, "%s.%s@%s", f, l, d);
		break;
	case 1:
		sprintf(o, "%c%s@%s", f[0], l, d);
		break;
	case 2:
		sprintf(o, "%s_%s%u@%s", f, l, below(100), d);
		break;
	case 3:
		sprintf(o, "%s+%s@%s", f, below(2) ? "billing" : "news", d);
		break;
	default:
		sprintf(o, "%c.%s@%s", f[0] - 32, l, d);
		break;
	}
}

/* International layouts: "+CC ..." as people and systems write them. */
static void mk_phone_intl(char *o)
{
	static const char *const us[] = {"212", "312", "415", "617", "303", "512"};
	unsigned a = below(100), b = below(1000), c = below(10000);
	switch (below(10)) {
	case 0:
		sprintf(o, "+1 %s 555 01%02u", PICK(us), a);
		break;
	case 1:
		sprintf(o, "+1 (%s) 555-01%02u", PICK(us), a);
		break;
	case 2:
		sprintf(o, "+44 20 7946 0%03u", b);
		break;
	case 3:
		sprintf(o, "+44 (0)161 496 0%03u", b);
		break;
	case 4:
		sprintf(o, "+49 30 9018%04u", c);
		break;
	case 5:
		sprintf(o, "+33 6 39 98 %02u %02u", a, below(100));
		break;
	case 6:
		sprintf(o, "+34 612 %03u %03u", b, below(1000));
		break;
	case 7:
		sprintf(o, "+81 3-5%03u-%04u", b, c);
		break;
	case 8:
		sprintf(o, "+91 98765 4%04u", c);
		break;
	default:
		sprintf(o, "+61 2 9%03u %04u", b, c);
		break;
	}
}

/* National layouts: North American, trunk-prefixed European, French. */
static void mk_phone_nat(char *o)
{
	static const char *const us[] = {"212", "312", "415", "617", "303", "512"};
	unsigned a = below(100), b = below(1000), c = below(10000);
	switch (below(8)) {
	case 0:
		sprintf(o, "(%s) 555-01%02u", PICK(us), a);
		break;
	case 1:
		sprintf(o, "%s-555-01%02u", PICK(us), a);
		break;
	case 2:
		sprintf(o, "%s.555.01%02u", PICK(us), a);
		break;
	case 3:
		sprintf(o, "020 7946 0%03u", b);
		break;
	case 4:
		sprintf(o, "0161 496 0%03u", b);
		break;
	case 5:
		sprintf(o, "030 9018%04u", c);
		break;
	case 6:
		sprintf(o, "(089) 2180 %04u", c);
		break;
	default:
		sprintf(o, "01 99 00 %02u %02u", a, below(100));
		break;
	}
}

static void mk_ipv4(char *o)
{
	static const unsigned first[] = {23,  31,  45,	62,  77,  81,  91,  104,
					 109, 145, 151, 176, 185, 193, 212, 217};
	sprintf(o, "%u.%u.%u.%u", PICK(first), below(256), below(256), 1 + below(254));
}

static void mk_ipv6(char *o)
{
	static const char *const pfx[] = {"2a00:1450:4001", "2606:4700:4700", "2a03:2880:f12f",
					  "2001:4860:4860", "2a01:4f8:c17",   "2604:a880:800"};
	const char *p = PICK(pfx);
	if (below(2))
		sprintf(o, "%s::%x", p, 1 + below(0xfffe));
	else
		sprintf(o, "%s:%x:%x:%x:%x:%x", p, below(0x10000), below(0x10000), below(0x10000),
			below(0x10000), 1 + below(0xffff));
}

static char luhn_check(const char *d, size_t n) /* the check digit after d[0, n) */
{
	unsigned sum = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned v = (unsigned)(d[n - 1 - i] - '0');
		if (!(i & 1)) {
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	return (char)('0' + (10 - sum % 10) % 10);
}

/* A card number with a real IIN and length; bad: a wrong check digit. */
static void mk_card(char *o, int bad)
{
	static const struct {
		const char *iin;
		size_t len;
	} iins[] = {{"4", 16},	{"4", 16},    {"51", 16}, {"55", 16},	{"2221", 16}, {"34", 15},
		    {"37", 15}, {"6011", 16}, {"65", 16}, {"3530", 16}, {"36", 14},   {"4", 13}};
	char d[24];
	unsigned k = below(NEL(iins));
	size_t l = strlen(iins[k].iin), n = iins[k].len;
	memcpy(d, iins[k].iin, l);
	for (size_t i = l; i < n - 1; i++)
		d[i] = (char)('0' + below(10));
	d[n - 1] = luhn_check(d, n - 1);
	if (bad)
		d[n - 1] = (char)('0' + (d[n - 1] - '0' + 1 + below(9)) % 10);
	d[n] = 0;
	char sep = below(2) ? ' ' : '-';
	if (below(3) == 0 || n == 13)
		strcpy(o, d);
	else if (n == 15)
		sprintf(o, "%.4s%c%.6s%c%.5s", d, sep, d + 4, sep, d + 10);
	else if (n == 14)
		sprintf(o, "%.4s%c%.6s%c%.4s", d, sep, d + 4, sep, d + 10);
	else
		sprintf(o, "%.4s%c%.4s%c%.4s%c%.4s", d, sep, d + 4, sep, d + 8, sep, d + 12);
}

/* BBAN layouts (n digit, a letter, c letter or digit); the lengths are the
 * registry's (DE 22, FR 27, GB 22, ...). */
static const struct {
	const char *cc, *bban;
} ibans[] = {
    {"DE", "nnnnnnnnnnnnnnnnnn"},
    {"FR", "nnnnnnnnnnccccccccccnnn"},
    {"GB", "aaaannnnnnnnnnnnnn"},
    {"ES", "nnnnnnnnnnnnnnnnnnnn"},
    {"IT", "annnnnnnnnncccccccccccc"},
    {"NL", "aaaannnnnnnnnn"},
    {"BE", "nnnnnnnnnnnn"},
    {"AT", "nnnnnnnnnnnnnnnn"},
    {"CH", "nnnnncccccccccccc"},
    {"PL", "nnnnnnnnnnnnnnnnnnnnnnnn"},
    {"PT", "nnnnnnnnnnnnnnnnnnnnn"},
    {"IE", "aaaannnnnnnnnnnnnn"},
    {"NO", "nnnnnnnnnnn"},
    {"SE", "nnnnnnnnnnnnnnnnnnnn"},
    {"DK", "nnnnnnnnnnnnnn"},
    {"FI", "nnnnnnnnnnnnnn"},
    {"LU", "nnnccccccccccccc"},
    {"SA", "nncccccccccccccccccc"},
    {"MT", "aaaannnnncccccccccccccccccc"},
    {"BR", "nnnnnnnnnnnnnnnnnnnnnnnac"},
};

static unsigned mod97(const char *s)
{
	unsigned r = 0;
	for (; *s; s++)
		r = *s >= '0' && *s <= '9' ? (r * 10 + (unsigned)(*s - '0')) % 97
					   : (r * 100 + (unsigned)(*s - 'A' + 10)) % 97;
	return r;
}

static void mk_iban(char *o, int bad)
{
	unsigned k = below(NEL(ibans));
	char bban[40], tmp[48], c[48];
	size_t n = strlen(ibans[k].bban);
	for (size_t i = 0; i < n; i++) {
		char t = ibans[k].bban[i];
		bban[i] =
		    t == 'n' || (t == 'c' && below(3)) ? (char)('0' + below(10)) : UPPER[below(26)];
	}
	bban[n] = 0;
	sprintf(tmp, "%s%s00", bban, ibans[k].cc);
	unsigned check = 98 - mod97(tmp);
	if (bad)
		check = check >= 50 ? check - 1 - below(40) : check + 1 + below(40);
	sprintf(c, "%s%02u%s", ibans[k].cc, check, bban);
	size_t m = strlen(c), j = 0;
	int grouped = below(2);
	for (size_t i = 0; i < m; i++) {
		if (grouped && i && i % 4 == 0)
			o[j++] = ' ';
		o[j++] = c[i];
	}
	o[j] = 0;
}

static void mk_ssn(char *o, int bad)
{
	unsigned a, g = 1 + below(99), s = 1 + below(9999);
	do
		a = 1 + below(899);
	while (a == 666);
	if (bad)
		switch (below(5)) {
		case 0:
			a = 0;
			break;
		case 1:
			a = 666;
			break;
		case 2:
			a = 900 + below(100);
			break;
		case 3:
			g = 0;
			break;
		default:
			s = 0;
			break;
		}
	sprintf(o, "%03u-%02u-%04u", a, g, s);
}

static void b64enc(char *o, const unsigned char *in, size_t n, const char *alpha, int pad)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		o[k++] = alpha[v >> 18 & 63];
		o[k++] = alpha[v >> 12 & 63];
		if (i + 1 < n)
			o[k++] = alpha[v >> 6 & 63];
		else if (pad)
			o[k++] = '=';
		if (i + 2 < n)
			o[k++] = alpha[v & 63];
		else if (pad)
			o[k++] = '=';
	}
	o[k] = 0;
}

static void mk_private_key(char *o)
{
	static const char *const kinds[] = {"RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY",
					    "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"};
	const char *k = PICK(kinds);
	size_t n = (size_t)sprintf(o, "-----BEGIN %s-----\n", k);
	for (unsigned i = 0, lines = 3 + below(5); i < lines; i++) {
		rand_from(o + n, B64, 64);
		n += 64;
		o[n++] = '\n';
	}
	rand_from(o + n, B64, 20 + below(40));
	n += strlen(o + n);
	sprintf(o + n, "=\n-----END %s-----", k);
}

static void mk_jwt(char *o)
{
	static const char *const hdrs[] = {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
					   "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"k1\"}"};
	char pl[256], h[128], p[400], sg[128];
	unsigned char sig[64];
	sprintf(pl, "{\"sub\":\"%u\",\"name\":\"%s %s\",\"iat\":%u}", 100000 + below(900000),
		PICK(firsts), PICK(lasts), 1700000000 + below(10000000));
	const char *hd = PICK(hdrs);
	b64enc(h, (const unsigned char *)hd, strlen(hd), URLSAFE, 0);
	b64enc(p, (const unsigned char *)pl, strlen(pl), URLSAFE, 0);
	for (int i = 0; i < 64; i++)
		sig[i] = (unsigned char)below(256);
	b64enc(sg, sig, 32, URLSAFE, 0);
	sprintf(o, "%s.%s.%s", h, p, sg);
}

/* A value made of a prefix and random parts: "P" + set:count ... */
static void mk_secret(const char *type, char *o)
{
	char a[160], b[160], c[160];
	if (!strcmp(type, "AWS_ACCESS_KEY")) {
		sprintf(o, "%s%s", below(4) ? "AKIA" : "ASIA",
			rand_from(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16));
	} else if (!strcmp(type, "AWS_SECRET_KEY")) {
		rand_from(o, B64, 40);
	} else if (!strcmp(type, "PRIVATE_KEY")) {
		mk_private_key(o);
	} else if (!strcmp(type, "GITHUB_TOKEN")) {
		if (below(4))
			sprintf(o, "gh%c_%s", "pousr"[below(5)], rand_from(a, ALNUM, 36));
		else
			sprintf(o, "github_pat_%s_%s", rand_from(a, ALNUM, 22),
				rand_from(b, ALNUM, 59));
	} else if (!strcmp(type, "GITLAB_TOKEN")) {
		sprintf(o, "glpat-%s", rand_from(a, ALNUM, 20));
	} else if (!strcmp(type, "SLACK_TOKEN")) {
		if (below(3))
			sprintf(o, "xox%c-%s-%s-%s", below(2) ? 'b' : 'p',
				rand_from(a, "0123456789", 12), rand_from(b, "0123456789", 13),
				rand_from(c, ALNUM, 24));
		else
			sprintf(o, "https://hooks.slack.com/services/T%s/B%s/%s",
				rand_from(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8),
				rand_from(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
				rand_from(c, ALNUM, 24));
	} else if (!strcmp(type, "STRIPE_KEY")) {
		sprintf(o, "%ck_%s_%s", below(3) ? 's' : 'r', below(2) ? "live" : "test",
			rand_from(a, ALNUM, below(2) ? 24 : 99));
	} else if (!strcmp(type, "GOOGLE_API_KEY")) {
		sprintf(o, "AIza%s", rand_from(a, URLSAFE, 35));
	} else if (!strcmp(type, "JWT")) {
		mk_jwt(o);
	} else if (!strcmp(type, "GENERIC_SECRET")) {
		if (below(3) == 0)
			rand_from(o, HEX, 32 + 8 * below(2));
		else
			rand_from(o, ALNUM, 20 + below(20));
	} else if (!strcmp(type, "OPENAI_API_KEY")) {
		if (below(2))
			sprintf(o, "sk-%sT3BlbkFJ%s", rand_from(a, ALNUM, 20),
				rand_from(b, ALNUM, 20));
		else
			sprintf(o, "sk-%s-%sT3BlbkFJ%s", below(3) ? "proj" : "svcacct",
				rand_from(a, URLSAFE, 74), rand_from(b, URLSAFE, 74));
	} else if (!strcmp(type, "ANTHROPIC_API_KEY")) {
		sprintf(o, "sk-ant-api03-%sAA", rand_from(a, URLSAFE, 93));
	} else if (!strcmp(type, "HUGGINGFACE_TOKEN")) {
		sprintf(o, "hf_%s", rand_from(a, LETTERS, 34));
	} else if (!strcmp(type, "NPM_TOKEN")) {
		sprintf(o, "npm_%s", rand_from(a, ALNUM, 36));
	} else if (!strcmp(type, "PYPI_TOKEN")) {
		sprintf(o, "pypi-AgEIcHlwaS5vcmc%s", rand_from(a, URLSAFE, 60 + below(100)));
	} else if (!strcmp(type, "SENDGRID_API_KEY")) {
		sprintf(o, "SG.%s.%s", rand_from(a, URLSAFE, 22), rand_from(b, URLSAFE, 43));
	} else if (!strcmp(type, "AZURE_STORAGE_KEY")) {
		sprintf(o, "%s==", rand_from(a, B64, 86));
	} else if (!strcmp(type, "SHOPIFY_TOKEN")) {
		static const char *const p[] = {"shpat", "shpca", "shppa", "shpss"};
		sprintf(o, "%s_%s", PICK(p), rand_from(a, HEX, 32));
	} else if (!strcmp(type, "DIGITALOCEAN_TOKEN")) {
		sprintf(o, "do%c_v1_%s", "por"[below(3)], rand_from(a, HEX, 64));
	} else if (!strcmp(type, "VAULT_TOKEN")) {
		sprintf(o, "hvs.%s", rand_from(a, URLSAFE, 91 + below(20)));
	} else if (!strcmp(type, "POSTMAN_API_KEY")) {
		sprintf(o, "PMAK-%s-%s", rand_from(a, HEX, 24), rand_from(b, HEX, 34));
	} else if (!strcmp(type, "DOCKER_HUB_TOKEN")) {
		sprintf(o, "dckr_pat_%s", rand_from(a, URLSAFE, 27));
	} else if (!strcmp(type, "TELEGRAM_BOT_TOKEN")) {
		sprintf(o, "%u%s:AA%s", 1 + below(9), rand_from(a, "0123456789", 8 + below(2)),
			rand_from(b, URLSAFE, 33));
	} else {
		abort();
	}
}

/* ---- where the values stand ---- */

static const char *const t_email[] = {
    "Please contact %V for billing questions.",
    "From: Jane Roe <%V>\nSubject: invoice 2024-0381",
    "2024-03-15T10:22:31Z INFO login ok user=%V",
    "id,name,email\n1042,Jane Roe,%V",
    "Ticket #4821: the customer (%V) reports that the export hangs.",
    "Write to %V if the parcel does not arrive by Friday.",
};
static const char *const t_phone[] = {
    "Call me at %V tomorrow after 3 pm.",
    "Tel: %V",
    "Customer phone %V, prefers evenings.",
    "name,phone\nJ. Roe,%V",
    "You can reach the Berlin office on %V or by e-mail.",
    "Mobile: %V (weekdays only)",
};
static const char *const t_ipv4[] = {
    "Failed password for root from %V port 52211 ssh2",
    "The request came from %V according to the access log.",
    "client_ip=%V status=403 path=/admin",
    "Please whitelist our egress address %V in the firewall.",
};
static const char *const t_ipv6[] = {
    "Accepted publickey for deploy from %V port 41822",
    "The AAAA record points to %V now.",
    "client address %V was rate-limited",
};
static const char *const t_card[] = {
    "Please charge my card %V for the renewal.",
    "Payment details: Visa %V, exp 04/27.",
    "card_number,exp\n%V,11/26",
    "I paid with credit card %V but the order is still pending.",
};
static const char *const t_iban[] = {
    "Please transfer the deposit to IBAN %V by Monday.",
    "Bank details: %V (Sparkasse).",
    "Kontoverbindung: IBAN %V",
    "Refund account: %V, reference 2024/118",
};
static const char *const t_ssn[] = {
    "SSN: %V",
    "My social security number is %V, please update the record.",
    "employee,ssn\nJ. Roe,%V",
    "Taxpayer SSN %V on the W-2 does not match.",
};

/* Where a secret of a type is written; generic ones take any of these. */
static const char *const t_token[] = {
    "I accidentally committed %V to the public repo, please rotate it.",
    "export API_TOKEN=%V",
    "{\"name\": \"ci\", \"credential\": \"%V\"}",
    "2024-05-02 13:44:10 DEBUG using key %V for the upload",
    "curl -H 'Authorization: Bearer %V' https://api.example.com/v1/me",
    "token: %V\n",
};

static const char *const t_aws_secret[] = {
    "aws_secret_access_key = %V",
    "AWS_SECRET_ACCESS_KEY=%V",
    "aws configure set aws_secret_access_key %V --profile ci",
};
static const char *const t_generic[] = {
    "DB_PASSWORD=%V",	     "  client_secret: %V\n", "password = \"%V\"",
    "{\"api_key\": \"%V\"}", "SECRET_KEY = '%V'",
};

static void one_secret(const char *type)
{
	char v[2048];
	mk_secret(type, v);
	if (!strcmp(type, "AWS_SECRET_KEY") && below(3) == 0) {
		char id[64];
		mk_secret("AWS_ACCESS_KEY", id);
		put("{\"AccessKeyId\": \"%V\", ", "AWS_ACCESS_KEY", id);
		put("\"SecretAccessKey\": \"%V\"}", type, v);
	} else if (!strcmp(type, "AWS_SECRET_KEY")) {
		put(PICK(t_aws_secret), type, v);
	} else if (!strcmp(type, "GENERIC_SECRET")) {
		put(PICK(t_generic), type, v);
	} else if (!strcmp(type, "PRIVATE_KEY")) {
		put(below(2) ? "Here is the deploy key:\n%V\nDelete it after use." : "%V\n", type,
		    v);
	} else if (!strcmp(type, "AZURE_STORAGE_KEY")) {
		litf("AZURE_STORAGE_CONNECTION_STRING=\"DefaultEndpointsProtocol=https;AccountName="
		     "%s%u;",
		     PICK(lasts), below(100));
		put("AccountKey=%V;EndpointSuffix=core.windows.net\"", type, v);
	} else if (!strcmp(type, "TELEGRAM_BOT_TOKEN") && below(2)) {
		put("curl https://api.telegram.org/bot%V/getUpdates", type, v);
	} else {
		put(PICK(t_token), type, v);
	}
}

static const char *const secret_types[] = {
    "AWS_ACCESS_KEY",	  "AWS_SECRET_KEY",	"PRIVATE_KEY",
    "GITHUB_TOKEN",	  "GITLAB_TOKEN",	"SLACK_TOKEN",
    "STRIPE_KEY",	  "GOOGLE_API_KEY",	"JWT",
    "GENERIC_SECRET",	  "OPENAI_API_KEY",	"ANTHROPIC_API_KEY",
    "HUGGINGFACE_TOKEN",  "NPM_TOKEN",		"PYPI_TOKEN",
    "SENDGRID_API_KEY",	  "AZURE_STORAGE_KEY",	"SHOPIFY_TOKEN",
    "DIGITALOCEAN_TOKEN", "VAULT_TOKEN",	"POSTMAN_API_KEY",
    "DOCKER_HUB_TOKEN",	  "TELEGRAM_BOT_TOKEN",
};

/* ---- hard negatives ---- */

static void negatives(void)
{
	char v[256], a[128];

	mk_card(v, 1);
	put("Please charge my card %V for the renewal.", NULL, v);
	emit("luhn-invalid card");
	mk_iban(v, 1);
	put("Please transfer the deposit to IBAN %V by Monday.", NULL, v);
	emit("mod-97-invalid iban");
	mk_ssn(v, 1);
	put("SSN: %V (rejected by the validator)", NULL, v);
	emit("invalid ssn");
	if (below(2)) {
		rand_from(a, "0123456789", 9);
		char isbn[20];
		snprintf(isbn, sizeof isbn, "978%.9s", a);
		unsigned s = 0;
		for (int i = 0; i < 12; i++)
			s += (unsigned)(isbn[i] - '0') * (i & 1 ? 3 : 1);
		sprintf(v, "978-%c-%.4s-%.4s-%u", a[0], a + 1, a + 5, (10 - s % 10) % 10);
		put("The second edition (ISBN %V) adds two chapters.", NULL, v);
	} else {
		rand_from(a, "0123456789", 9);
		unsigned s = 0;
		for (int i = 0; i < 9; i++)
			s += (unsigned)(a[i] - '0') * (unsigned)(10 - i);
		unsigned c = (11 - s % 11) % 11;
		sprintf(v, "%c-%.3s-%.5s-%c", a[0], a + 1, a + 4, c == 10 ? 'X' : (char)('0' + c));
		put("ISBN-10: %V, paperback, 352 pages", NULL, v);
	}
	emit("isbn");
	rand_from(a, HEX, 32);
	sprintf(v, "%.8s-%.4s-4%.3s-%c%.3s-%.12s", a, a + 8, a + 12, "89ab"[below(4)], a + 15,
		a + 18);
	put("request_id=%V took 431 ms", NULL, v);
	emit("uuid");
	sprintf(v, "%u.%u.%u.%u", 1 + below(20), below(30), below(100), below(10000));
	put(below(2) ? "Upgraded the agent to version %V last night."
		     : "Firmware %V fixes the reboot loop.",
	    NULL, v);
	emit("version");
	put("commit %V\nAuthor: Jane Roe\n\n    Fix the flaky test", NULL, rand_from(v, HEX, 40));
	emit("git sha");
	put("%V  dist/quern-1.4.2.tar.gz", NULL, rand_from(v, HEX, 64));
	emit("sha256");
	put("FROM debian@sha256:%V", NULL, rand_from(v, HEX, 64));
	emit("image digest");
	static const char *const places[] = {
	    "password = \"YOUR_PASSWORD_HERE\"",
	    "api_key: xxxxxxxxxxxxxxxxxxxxxxxx",
	    "export GITHUB_TOKEN=${GITHUB_TOKEN}",
	    "AWS_SECRET_ACCESS_KEY=<your-secret-access-key>",
	    "client_secret: {{ vault_client_secret }}",
	    "OPENAI_API_KEY=sk-...",
	    "token = \"changeme-changeme-changeme\"",
	    "password: ********************",
	};
	put(PICK(places), NULL, "");
	emit("placeholder");
	static const char *const words[] = {
	    "from huggingface_hub import hf_hub_download; hf_hub_download(repo_id='gpt2')",
	    "npm_config_cache=/tmp/npm npm_package_version=1.2.3 npm ci",
	    "pip install scikit-learn  # sk-learn is the old name",
	    "SG.Corp quarterly report; see PMAK-style keys in the Postman docs",
	    "the dop_v1_ prefix marks DigitalOcean personal tokens",
	    "meeting at 10:30, call 12:45:AM",
	    "password = \"aaaaaaaaaaaaaaaaaaaa\"",
	    "secret_key = \"abcdefghijklmnopqrstuvwx\"",
	};
	put(PICK(words), NULL, "");
	emit("token-like words");
	static const char *const priv[] = {"192.168.1.1", "10.0.3.17", "203.0.113.7",
					   "172.16.4.2",  "127.0.0.1", "2001:db8::1"};
	put("Gateway %V answered on the LAN.", NULL, PICK(priv));
	emit("private address");
	sprintf(v, "%u-%02u-%02u", 2019 + below(6), 1 + below(12), 1 + below(28));
	put("Order 58214-2207 shipped on %V.", NULL, v);
	emit("date and order number");
}

static void usage(void)
{
	fputs("usage: pii_fixture [-s SEED] [-n ROUNDS] DOCS.jsonl LABELS.jsonl\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long long seed = 1;
	unsigned rounds = 80;
	int c;
	char v[2048];

	while ((c = getopt(argc, argv, "s:n:")) != -1) {
		if (c == 's')
			seed = strtoull(optarg, NULL, 10);
		else if (c == 'n')
			rounds = (unsigned)strtoul(optarg, NULL, 10);
		else
			usage();
	}
	if (argc - optind != 2 || rounds == 0)
		usage();
	rng ^= seed * 0xbf58476d1ce4e5b9ull;
	if (!rng)
		rng = 1;
	fdocs = fopen(argv[optind], "w");
	flabels = fopen(argv[optind + 1], "w");
	if (!fdocs || !flabels) {
		perror("pii_fixture");
		return 1;
	}
	for (unsigned r = 0; r < rounds; r++) {
		for (int k = 0; k < 3; k++) {
			mk_email(v);
			put(PICK(t_email), "EMAIL", v);
			emit("email");
			if (k == 0)
				mk_phone_nat(v);
			else
				mk_phone_intl(v);
			put(PICK(t_phone), "PHONE", v);
			emit(k == 0 ? "national phone" : "international phone");
			mk_ipv4(v);
			put(PICK(t_ipv4), "IPV4", v);
			emit("ipv4");
			mk_ipv6(v);
			put(PICK(t_ipv6), "IPV6", v);
			emit("ipv6");
			mk_card(v, 0);
			put(PICK(t_card), "CREDIT_CARD", v);
			emit("card");
			mk_iban(v, 0);
			put(PICK(t_iban), "IBAN", v);
			emit("iban");
			mk_ssn(v, 0);
			put(PICK(t_ssn), "US_SSN", v);
			emit("ssn");
		}
		for (size_t k = 0; k < NEL(secret_types); k++) {
			one_secret(secret_types[k]);
			emit(secret_types[k]);
		}
		/* a message with several values */
		mk_email(v);
		put("Hi, this is Jane (%V", "EMAIL", v);
		mk_phone_intl(v);
		put(", %V).", "PHONE", v);
		mk_card(v, 0);
		put(" The card on file is %V", "CREDIT_CARD", v);
		mk_secret("GITHUB_TOKEN", v);
		put(" and the CI token was %V, sorry.", "GITHUB_TOKEN", v);
		emit("mixed");
		negatives();
	}
	if (fclose(fdocs) || fclose(flabels)) {
		perror("pii_fixture");
		return 1;
	}
	fprintf(stderr, "pii_fixture: %u documents, %u labels, %u hard negatives\n", ndocs, nlabels,
		nneg);
	return 0;
}
