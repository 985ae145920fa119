/*
 * gen_pii.c - writes the labeled PII/secret fixture of lib/pii.
 *
 *   gen_pii [SEED] > tests/fixtures/pii/labeled.jsonl
 *
 * One JSON object a line: {"text": "...", "findings": [{"type": "EMAIL",
 * "start": 12, "end": 32}, ...]} with byte offsets into text. Texts are
 * sentences, tickets, log lines, CSV rows and config snippets around
 * invented values (example.com/.org/.net addresses, 555-01xx and Ofcom /
 * ARCEP drama numbers, Luhn-valid test cards with real IIN prefixes, IBANs
 * built with correct mod-97 check digits, random tokens with the real
 * prefixes), plus hard negatives that must yield no finding: Luhn-invalid
 * cards, mod-97-invalid IBANs, invalid SSNs, ISBNs, UUIDs, dates, times,
 * versions, private and documentation addresses, order numbers, hashes,
 * ordinary base64, low-entropy "secrets".
 *
 * The labels come from how each text is built, never from the detector, so
 * the fixture measures it. Output is a pure function of SEED (xorshift).
 * Only libc and libm.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static unsigned below(unsigned n)
{
	return (unsigned)((rnd() >> 33) % n);
}

#define PICK(a) (a[below(sizeof(a) / sizeof *(a))])

/* ---- a record under construction ---- */

struct rec {
	char text[16384];
	size_t n;
	struct {
		const char *type;
		size_t s, e;
	} f[32];
	int nf;
};

static struct rec R;
static unsigned counts_pos, counts_neg;

static void begin(void)
{
	R.n = 0;
	R.nf = 0;
	R.text[0] = 0;
}

static void lit(const char *s)
{
	size_t k = strlen(s);
	if (R.n + k >= sizeof R.text)
		abort();
	memcpy(R.text + R.n, s, k);
	R.n += k;
	R.text[R.n] = 0;
}

static void litf(const char *fmt, ...)
{
	char b[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	lit(b);
}

static void val(const char *type, const char *v)
{
	R.f[R.nf].type = type;
	R.f[R.nf].s = R.n;
	lit(v);
	R.f[R.nf].e = R.n;
	R.nf++;
}

/* A template with one %V for the value (and nothing else special). */
static void tmpl(const char *t, const char *type, const char *v)
{
	const char *p = strstr(t, "%V");
	char head[1024];
	if (!p)
		abort();
	memcpy(head, t, (size_t)(p - t));
	head[p - t] = 0;
	lit(head);
	val(type, v);
	lit(p + 2);
}

static void emit(void)
{
	putchar('{');
	fputs("\"text\": \"", stdout);
	for (size_t i = 0; i < R.n; i++) {
		unsigned char c = (unsigned char)R.text[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	fputs("\", \"findings\": [", stdout);
	for (int i = 0; i < R.nf; i++)
		printf("%s{\"type\": \"%s\", \"start\": %zu, \"end\": %zu}", i ? ", " : "", R.f[i].type,
		       R.f[i].s, R.f[i].e);
	fputs("]}\n", stdout);
	counts_pos += (unsigned)R.nf;
	counts_neg += R.nf == 0;
}

/* ---- value makers ---- */

static const char UP[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char HEX[] = "0123456789abcdef";

static void rand_from(char *o, const char *set, size_t n)
{
	size_t k = strlen(set);
	for (size_t i = 0; i < n; i++)
		o[i] = set[below((unsigned)k)];
	o[n] = 0;
}

static void rand_digits(char *o, size_t n)
{
	rand_from(o, "0123456789", n);
}

static double entropy(const char *v)
{
	unsigned cnt[256] = {0};
	size_t n = strlen(v);
	double h = 0;
	for (size_t i = 0; i < n; i++)
		cnt[(unsigned char)v[i]]++;
	for (int c = 0; c < 256; c++)
		if (cnt[c])
			h -= (double)cnt[c] / n * log2((double)cnt[c] / n);
	return h;
}

static const char *const firsts[] = {"john", "jane", "maria", "li", "ahmed", "olga", "kenji",
				     "fatima", "pierre", "anna", "raj", "chloe", "tom", "ines"};
static const char *const lasts[] = {"doe", "roe", "garcia", "wei", "hassan", "petrova", "tanaka",
				    "khan", "martin", "schmidt", "patel", "dubois", "baker", "silva"};
static const char *const domains[] = {"example.com", "example.org", "example.net",
				      "mail.example.com", "corp.example.org", "eu.example.net",
				      "support.example.com"};

static void mk_email(char *o)
{
	const char *f = PICK(firsts), *l = PICK(lasts), *d = PICK(domains);
	switch (below(6)) {
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
		sprintf(o, "%s+%s@%s", f, PICK(((const char *[]){"billing", "news", "test"})), d);
		break;
	case 4:
		sprintf(o, "%c.%s@%s", f[0] - 32, l, d);
		break;
	default:
		sprintf(o, "%s-%s@%s", PICK(((const char *[]){"support", "no-reply", "hr", "it"})),
			PICK(((const char *[]){"team", "desk", "eu", "ops"})), d);
	}
}

static void mk_phone(char *o)
{
	static const char *const areas[] = {"212", "312", "415", "617", "202", "303", "512", "646"};
	unsigned x = below(100), y = below(1000);
	const char *a = PICK(areas);
	switch (below(22)) {
	case 0: sprintf(o, "(%s) 555-01%02u", a, x); break;
	case 1: sprintf(o, "%s-555-01%02u", a, x); break;
	case 2: sprintf(o, "%s.555.01%02u", a, x); break;
	case 3: sprintf(o, "+1 %s 555 01%02u", a, x); break;
	case 4: sprintf(o, "+1-%s-555-01%02u", a, x); break;
	case 5: sprintf(o, "1-800-555-01%02u", x); break;
	case 6: sprintf(o, "+1 (%s) 555-01%02u", a, x); break;
	case 7: sprintf(o, "020 7946 0%03u", y); break;
	case 8: sprintf(o, "+44 20 7946 0%03u", y); break;
	case 9: sprintf(o, "0161 496 0%03u", y); break;
	case 10: sprintf(o, "07700 900%03u", y); break;
	case 11: sprintf(o, "+44 7700 900%03u", y); break;
	case 12: sprintf(o, "+44 (0)20 7946 0%03u", y); break;
	case 13: sprintf(o, "+49 30 9018%04u", below(10000)); break;
	case 14: sprintf(o, "030 9018%04u", below(10000)); break;
	case 15: sprintf(o, "(089) 2180 %04u", below(10000)); break;
	case 16: sprintf(o, "0171 555%04u", below(10000)); break;
	case 17: sprintf(o, "+49 171 555%04u", below(10000)); break;
	case 18: sprintf(o, "01 99 00 %02u %02u", below(100), below(100)); break;
	case 19: sprintf(o, "+33 6 39 98 %02u %02u", below(100), below(100)); break;
	case 20: sprintf(o, "06.39.98.%02u.%02u", below(100), below(100)); break;
	default: sprintf(o, "+33 (0)1 99 00 %02u %02u", below(100), below(100)); break;
	}
}

static void mk_ipv4(char *o)
{
	static const unsigned firsts4[] = {23, 31, 45, 62, 77, 81, 91, 93, 104, 109, 145, 151, 176,
					   185, 193, 212, 213, 217};
	sprintf(o, "%u.%u.%u.%u", PICK(firsts4), below(256), below(256), 1 + below(254));
}

static void mk_ipv6(char *o)
{
	static const char *const pfx[] = {"2a00:1450:4001", "2606:4700:4700", "2a03:2880:f12f",
					  "2001:4860:4860", "2a01:4f8:c17", "2604:a880:800",
					  "2400:cb00:2048"};
	const char *p = PICK(pfx);
	switch (below(3)) {
	case 0:
		sprintf(o, "%s::%x", p, 1 + below(0xfffe));
		break;
	case 1:
		sprintf(o, "%s::%x:%x", p, 1 + below(0xfffe), below(0xffff));
		break;
	default:
		sprintf(o, "%s:%x:%x:%x:%x:%x", p, below(0x10000), below(0x10000), below(0x10000),
			below(0x10000), below(0x10000));
	}
}

static char luhn_digit(const char *d, size_t n) /* check digit for d[0..n) */
{
	unsigned sum = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned v = d[n - 1 - i] - '0';
		if (!(i & 1)) {
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	return (char)('0' + (10 - sum % 10) % 10);
}

/* A Luhn-valid number with a real IIN; digits in d, length returned. */
static size_t mk_card_digits(char *d)
{
	static const struct {
		const char *iin;
		size_t len;
	} iins[] = {{"4", 16}, {"4", 16}, {"51", 16}, {"53", 16}, {"55", 16}, {"2221", 16},
		    {"2720", 16}, {"34", 15}, {"37", 15}, {"6011", 16}, {"65", 16}, {"3530", 16},
		    {"3589", 16}, {"36", 14}, {"62", 16}, {"4", 13}};
	unsigned k = below(sizeof iins / sizeof *iins);
	size_t l = strlen(iins[k].iin), n = iins[k].len;
	memcpy(d, iins[k].iin, l);
	rand_digits(d + l, n - 1 - l);
	d[n - 1] = luhn_digit(d, n - 1);
	d[n] = 0;
	return n;
}

static void fmt_card(char *o, const char *d, size_t n)
{
	unsigned style = below(3);
	char sep = style == 1 ? ' ' : '-';
	if (style == 0 || n == 13) {
		strcpy(o, d);
	} else if (n == 15) {
		sprintf(o, "%.4s%c%.6s%c%.5s", d, sep, d + 4, sep, d + 10);
	} else if (n == 14) {
		sprintf(o, "%.4s%c%.6s%c%.4s", d, sep, d + 4, sep, d + 10);
	} else {
		sprintf(o, "%.4s%c%.4s%c%.4s%c%.4s", d, sep, d + 4, sep, d + 8, sep, d + 12);
	}
}

static void mk_card(char *o)
{
	char d[24];
	size_t n = mk_card_digits(d);
	fmt_card(o, d, n);
}

/* BBAN layouts: n digit, a upper letter, c upper alnum. */
static const struct {
	const char *cc, *bban;
} ibans[] = {
	{"DE", "nnnnnnnnnnnnnnnnnn"},       {"FR", "nnnnnnnnnnccccccccccnnn"}, {"GB", "aaaannnnnnnnnnnnnn"},
	{"ES", "nnnnnnnnnnnnnnnnnnnn"},     {"IT", "annnnnnnnnncccccccccccc"}, {"NL", "aaaannnnnnnnnn"},
	{"BE", "nnnnnnnnnnnn"},             {"AT", "nnnnnnnnnnnnnnnn"},        {"CH", "nnnnncccccccccccc"},
	{"PL", "nnnnnnnnnnnnnnnnnnnnnnnn"}, {"PT", "nnnnnnnnnnnnnnnnnnnnn"},   {"IE", "aaaannnnnnnnnnnnnn"},
	{"LU", "nnnccccccccccccc"},         {"FI", "nnnnnnnnnnnnnn"},          {"SE", "nnnnnnnnnnnnnnnnnnnn"},
	{"DK", "nnnnnnnnnnnnnn"},           {"NO", "nnnnnnnnnnn"},             {"IS", "nnnnnnnnnnnnnnnnnnnnnn"},
};

static unsigned mod97(const char *s) /* of the IBAN numeric form of s */
{
	unsigned r = 0;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9')
			r = (r * 10 + (unsigned)(*s - '0')) % 97;
		else
			r = (r * 100 + (unsigned)(*s - 'A' + 10)) % 97;
	}
	return r;
}

/* compact IBAN into c; bad != 0 makes the check digits wrong */
static void mk_iban_compact(char *c, int bad)
{
	unsigned k = below(sizeof ibans / sizeof *ibans);
	char bban[40], tmp[48];
	size_t n = strlen(ibans[k].bban);
	for (size_t i = 0; i < n; i++) {
		char t = ibans[k].bban[i];
		if (t == 'n')
			bban[i] = (char)('0' + below(10));
		else if (t == 'a')
			bban[i] = UP[below(26)];
		else
			bban[i] = below(3) ? (char)('0' + below(10)) : UP[below(26)];
	}
	bban[n] = 0;
	sprintf(tmp, "%s%s00", bban, ibans[k].cc);
	unsigned check = 98 - mod97(tmp);
	if (bad)
		check = check % 97 + 1 + below(5); /* off by 1..5 (mod 97 stays != 1) */
	if (bad && check > 98)
		check = 2;
	sprintf(c, "%s%02u%s", ibans[k].cc, check, bban);
}

static void fmt_iban(char *o, const char *c)
{
	size_t n = strlen(c), k = 0;
	int grouped = below(3) != 0;
	for (size_t i = 0; i < n; i++) {
		if (grouped && i && i % 4 == 0)
			o[k++] = ' ';
		o[k++] = c[i];
	}
	o[k] = 0;
}

static void mk_iban(char *o)
{
	char c[48];
	mk_iban_compact(c, 0);
	fmt_iban(o, c);
}

static void mk_ssn_digits(char *d)
{
	unsigned a;
	do
		a = 1 + below(899);
	while (a == 666 || a == 78 || a == 219 || a == 123);
	sprintf(d, "%03u%02u%04u", a, 1 + below(99), 1 + below(9999));
}

static void mk_ssn(char *o, char sep)
{
	char d[16];
	mk_ssn_digits(d);
	if (sep)
		sprintf(o, "%.3s%c%.2s%c%.4s", d, sep, d + 3, sep, d + 5);
	else
		strcpy(o, d);
}

static void mk_aws_id(char *o)
{
	strcpy(o, below(4) ? "AKIA" : "ASIA");
	rand_from(o + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16);
}

static void mk_aws_secret(char *o)
{
	rand_from(o, B64, 40);
}

static void b64enc(char *o, const unsigned char *in, size_t n, const char *alpha, int pad)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
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
					    "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
					    "DSA PRIVATE KEY"};
	const char *k = PICK(kinds);
	unsigned lines = 2 + below(6);
	size_t n = (size_t)sprintf(o, "-----BEGIN %s-----\n", k);
	for (unsigned i = 0; i < lines; i++) {
		rand_from(o + n, B64, 64);
		n += 64;
		o[n++] = '\n';
	}
	unsigned char raw[30];
	for (int i = 0; i < 30; i++)
		raw[i] = (unsigned char)below(256);
	b64enc(o + n, raw, 10 + below(20), B64, 1);
	n += strlen(o + n);
	sprintf(o + n, "\n-----END %s-----", k);
}

static void mk_github(char *o)
{
	if (below(5) == 0) {
		strcpy(o, "github_pat_");
		rand_from(o + 11, ALNUM, 22);
		o[33] = '_';
		rand_from(o + 34, ALNUM, 59);
		return;
	}
	sprintf(o, "gh%c_", "pousr"[below(5)]);
	rand_from(o + 4, ALNUM, 36);
}

static void mk_gitlab(char *o)
{
	strcpy(o, "glpat-");
	rand_from(o + 6, ALNUM, 20);
	if (below(3) == 0)
		o[6 + 3 + below(10)] = below(2) ? '_' : '-';
}

static void mk_slack(char *o)
{
	char a[16], b[16], c[40];
	switch (below(3)) {
	case 0:
		rand_digits(a, 12);
		rand_digits(b, 13);
		rand_from(c, ALNUM, 24);
		sprintf(o, "xoxb-%s-%s-%s", a, b, c);
		break;
	case 1:
		rand_digits(a, 12);
		rand_digits(b, 12);
		rand_from(c, HEX, 32);
		sprintf(o, "xoxp-%s-%s-%s-%s", a, b, a, c);
		break;
	default:
		rand_from(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8);
		rand_from(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10);
		rand_from(c, ALNUM, 24);
		sprintf(o, "https://hooks.slack.com/services/T%s/B%s/%s", a, b, c);
	}
}

static void mk_stripe(char *o)
{
	sprintf(o, "%ck_%s_", "sr"[below(2)], below(4) ? "live" : "test");
	rand_from(o + 8, ALNUM, below(2) ? 24 : 99);
}

static void mk_google(char *o)
{
	strcpy(o, "AIza");
	rand_from(o + 4, B64URL, 35);
}

static void mk_jwt(char *o)
{
	static const char *const hdrs[] = {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
					   "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"k1\"}",
					   "{\"alg\":\"ES256\"}"};
	char pl[256], h[128], p[400], sg[128];
	unsigned char sig[64];
	sprintf(pl, "{\"sub\":\"%u\",\"name\":\"%s %s\",\"iat\":%u}", 100000 + below(900000),
		PICK(firsts), PICK(lasts), 1700000000 + below(10000000));
	const char *hd = PICK(hdrs);
	b64enc(h, (const unsigned char *)hd, strlen(hd), B64URL, 0);
	b64enc(p, (const unsigned char *)pl, strlen(pl), B64URL, 0);
	for (int i = 0; i < 64; i++)
		sig[i] = (unsigned char)below(256);
	b64enc(sg, sig, below(2) ? 32 : 64, B64URL, 0);
	sprintf(o, "%s.%s.%s", h, p, sg);
}

static void mk_generic(char *o)
{
	if (below(3) == 0) {
		rand_from(o, HEX, 32 + 8 * below(2));
		return;
	}
	do
		rand_from(o, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%^*+/_~",
			  28 + below(16));
	while (entropy(o) < 4.6);
}

/* ---- templates ---- */

static const char *const t_email[] = {
	"Please contact %V for billing questions.",
	"From: Jane Roe <%V>\nSubject: invoice 2024-0381",
	"2024-03-15T10:22:31Z INFO login ok user=%V",
	"id,name,email\n1042,Jane Roe,%V",
	"Ticket #4821: customer (%V) reports that the export hangs at 99%.",
	"cc: %V; the rest of the team is on leave",
	"Send the signed form to mailto:%V before Friday.",
	"Reply-To: %V",
};
static const char *const t_phone[] = {
	"Call me at %V tomorrow after 3 pm.",
	"Tel: %V",
	"Customer phone %V, prefers evenings.",
	"name,phone\nJ. Roe,%V",
	"2024-03-15 11:02:44 WARN sms delivery failed to=%V",
	"Office: %V (ask for reception)",
	"You can reach the Berlin office on %V or by email.",
	"Fax %V; attn. accounts payable",
};
static const char *const t_ipv4[] = {
	"Failed password for root from %V port 52144 ssh2",
	"client_ip=%V status=403 bytes=512",
	"Connection from %V:443 closed by peer",
	"%V - - [15/Mar/2024:10:22:31 +0000] \"GET /index.html HTTP/1.1\" 200 5120",
	"The attacker's address was %V.",
	"blocked,%V,2024-03-15,brute force",
};
static const char *const t_ipv6[] = {
	"Connection from %V port 51234",
	"The AAAA record now points to %V after the migration.",
	"client=[%V]:443 tls=1.3",
	"src=%V dst=2001:db8::1 proto=tcp",
	"The user's IPv6 address is %V.",
	"allowlist: %V, fe80::1",
};
static const char *const t_card[] = {
	"Card number: %V",
	"Paid with card %V, exp 12/27.",
	"payment_method,card\nonline,%V",
	"Please charge %V for the annual plan.",
	"Customer read out the number %V and the CVV over the line.",
	"[ticket 5531] refund to %V approved",
};
static const char *const t_iban[] = {
	"IBAN: %V",
	"Please transfer the deposit to %V (Acme GmbH).",
	"beneficiary,iban\nAcme Ltd,%V",
	"Bank details updated: %V, BIC DEUTDEFFXXX",
	"Refund sent to %V yesterday.",
	"SEPA mandate for %V signed on 2024-02-01",
};
static const char *const t_ssn_sep[] = {
	"SSN: %V",
	"Employee social security number %V on file.",
	"name,ssn,dob\nJohn Doe,%V,1980-04-12",
	"Applicant %V verified by HR.",
	"W-2 shows %V for the 2023 tax year.",
};
static const char *const t_ssn_bare[] = {
	"SSN %V",
	"social security no. %V",
	"ssn=%V",
};
static const char *const t_aws_id[] = {
	"aws_access_key_id = %V",
	"Found key %V in the build log.",
	"export AWS_ACCESS_KEY_ID=%V",
	"\"AccessKeyId\": \"%V\",",
};
static const char *const t_aws_secret[] = {
	"aws_secret_access_key = %V",
	"AWS_SECRET_ACCESS_KEY=%V",
	"{\"aws_secret_access_key\": \"%V\"}",
	"aws_secret_key: %V",
};
static const char *const t_pkey[] = {
	"Here is the key I used:\n%V\nplease rotate it.",
	"```\n%V\n```",
	"deploy_key.pem:\n%V\n",
	"%V",
};
static const char *const t_github[] = {
	"GITHUB_TOKEN=%V",
	"git clone https://%V@github.com/acme/repo.git",
	"token: %V",
	"I accidentally committed %V, revoking now.",
	"Authorization: token %V",
};
static const char *const t_gitlab[] = {
	"GITLAB_TOKEN=%V",
	"PRIVATE-TOKEN: %V",
	"use %V for the CI runner",
	"glab auth login --token %V",
};
static const char *const t_slack[] = {
	"SLACK_BOT_TOKEN=%V",
	"slack webhook: %V",
	"curl -X POST -H 'Content-type: application/json' --data @msg.json %V",
	"the bot token (%V) leaked in #general",
};
static const char *const t_stripe[] = {
	"STRIPE_SECRET_KEY=%V",
	"stripe.api_key = \"%V\"",
	"publishable key %V in checkout.js",
	"Stripe::Client.new(%V)",
};
static const char *const t_google[] = {
	"https://maps.googleapis.com/maps/api/js?key=%V&callback=initMap",
	"GOOGLE_API_KEY=%V",
	"\"apiKey\": \"%V\",",
	"the Maps key %V is restricted to example.com",
};
static const char *const t_jwt[] = {
	"Authorization: Bearer %V",
	"redirect: /cb?access_token=%V&expires_in=3600",
	"Cookie: session=%V; Path=/",
	"debug: decoded %V fine",
};
static const char *const t_generic_fmt[] = {
	"%s = \"%%V\"", "%s: %%V", "%s=%%V", "\"%s\": \"%%V\",", "--%s=%%V", "%s: '%%V'",
};
static const char *const generic_keys[] = {"password", "db_password", "DB_PASSWORD", "secret",
					   "client_secret", "api_key", "API_TOKEN", "auth_token",
					   "access_token", "SECRET_KEY", "passwd", "apiKey"};

typedef void (*maker)(char *);

static void one(const char *type, const char *const *tpls, unsigned ntpl, maker mk)
{
	char v[8192];
	mk(v);
	begin();
	tmpl(tpls[below(ntpl)], type, v);
	emit();
}

#define ONE(type, tpls, mk) one(type, tpls, sizeof tpls / sizeof *tpls, mk)

static void mk_ssn_dash(char *o) { mk_ssn(o, below(4) ? '-' : ' '); }
static void mk_ssn_bare(char *o) { mk_ssn(o, 0); }

static void generic_one(void)
{
	char v[128], t[128];
	mk_generic(v);
	snprintf(t, sizeof t, PICK(t_generic_fmt), PICK(generic_keys));
	begin();
	tmpl(t, "GENERIC_SECRET", v);
	emit();
}

/* ---- records with several values ---- */

static void mixed(void)
{
	char a[8192], b[256], c[256];
	begin();
	switch (below(6)) {
	case 0:
		lit("id,name,email,phone,ssn\n");
		for (int i = 0; i < 3; i++) {
			mk_email(a);
			mk_phone(b);
			mk_ssn(c, '-');
			litf("%d,%s %s,", 17 + i, PICK(firsts), PICK(lasts));
			val("EMAIL", a);
			lit(",");
			val("PHONE", b);
			lit(",");
			val("US_SSN", c);
			lit("\n");
		}
		break;
	case 1:
		mk_ipv4(a);
		mk_email(b);
		lit("Mar 15 10:22:31 web01 sshd[2231]: Accepted publickey for deploy from ");
		val("IPV4", a);
		lit(" port 50122; notify ");
		val("EMAIL", b);
		break;
	case 2:
		mk_card(a);
		mk_phone(b);
		lit("Ticket 88213 - Customer called from ");
		val("PHONE", b);
		lit(" and asked us to update the card on file to ");
		val("CREDIT_CARD", a);
		lit(". Done, confirmation sent.");
		break;
	case 3:
		mk_aws_id(a);
		mk_aws_secret(b);
		lit("[default]\naws_access_key_id = ");
		val("AWS_ACCESS_KEY", a);
		lit("\naws_secret_access_key = ");
		val("AWS_SECRET_KEY", b);
		lit("\nregion = eu-west-1\n");
		break;
	case 4:
		mk_iban(a);
		mk_email(b);
		lit("Hi, please wire the refund to ");
		val("IBAN", a);
		lit(" and confirm to ");
		val("EMAIL", b);
		lit(". Thanks!");
		break;
	default:
		mk_github(a);
		mk_ipv6(b);
		mk_slack(c);
		lit("ci: push rejected, secret scanning found ");
		val("GITHUB_TOKEN", a);
		lit(" (runner ");
		val("IPV6", b);
		lit(") and ");
		val("SLACK_TOKEN", c);
		break;
	}
	emit();
}

/* ---- hard negatives ---- */

static void negatives(void)
{
	static const char *const fixed[] = {
		"ISBN 978-3-16-148410-0 is the classic example.",
		"See ISBN 0-306-40615-2 and ISBN-13: 978-1-4028-9462-6 for details.",
		"ISBN 9780306406157, second edition",
		"ISBN-10: 0306406152",
		"Meeting on 2024-03-15 at 14:30, room 0204.",
		"Invoice date 15.03.2024, due 14.04.2024.",
		"Born 03/15/1985; joined 12/31/1999.",
		"2023-11-02T08:15:30Z job finished in 00:04:12.531",
		"Upgraded to v2.14.3 from version 10.0.19045.3693 yesterday.",
		"Python 3.11.4 and nginx/1.25.3 are installed; firmware 2.4.1.7 pending.",
		"release 4.2.1.0 ships next week",
		"libssl-1.1.1.23 has been patched",
		"Server at 10.0.0.12, gateway 192.168.1.1, DNS 127.0.0.53.",
		"internal hosts 172.16.4.20 and 172.31.255.254; link-local 169.254.10.3",
		"CGNAT pool 100.64.12.9; docs use 192.0.2.44, 198.51.100.7 and 203.0.113.250.",
		"bind 0.0.0.0:8080 netmask 255.255.255.0 broadcast 10.255.255.255",
		"IPv6: fe80::1ff:fe23:4567:890a, fd12:3456:789a::1, ::1 and 2001:db8::42",
		"Order #4471-2290-118 shipped.",
		"PO-2023-0042-117 approved by finance",
		"invoice 100-200-3000 is overdue",
		"order 8812 3345 9021 and order 4015550123 shipped together",
		"tracking 1Z 999 AA1 01 2345 6784",
		"commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixes the build",
		"sha256: 3f2a8c1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c",
		"md5 d41d8cd98f00b204e9800998ecf8427e  empty.txt",
		"Content-Transfer-Encoding: base64\n\nSGVsbG8gV29ybGQhIFRoaXMgaXMgbm90IGEgc2VjcmV0Lg==",
		"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
		"password = \"changeme\"",
		"token: ${GITHUB_TOKEN}",
		"api_key=YOUR_API_KEY_HERE",
		"secret=\"xxxxxxxxxxxxxxxxxxxxxxxx\"",
		"password=\"Password123Password123\"",
		"STRIPE_PUBLISHABLE_KEY=pk_test_4eC39HqLyjWDarjtT1zdp7dc",
		"ghp_short is not a token, nor is AKIA1234",
		"Price $1,299.00 or 1 299,00 EUR; population 8 336 817.",
		"pi is 3.14159 and e is 2.71828",
		"Gain +3 dB, growth +15% and temperature -40 C.",
		"MAC 00:1a:2b:3c:4d:5e, times 10:22:31 and 23:59",
		"std::vector<int> v; Note: see above.",
		"user@localhost and admin@intranet are not addresses we track; nor @mention",
		"john.doe at example dot com",
		"eyJub3QiOiJqd3QifQ.eyJ4IjoxfQ.c2lnbmF0dXJl is not a JWT",
		"a.b.c and x.y.z are placeholder names",
		"SSN field left blank; see form 1040.",
		"call me at 5 or at 6:30",
		"Room 3-114, building 12, floor 02",
		"Call extension 4471 or 0800 for the operator.",
		"The year 2024 had 366 days and 8784 hours.",
	};
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
		begin();
		lit(fixed[i]);
		emit();
	}
	static const char *const badssn[] = {"000-12-3456", "666-12-3456", "912-34-5678",
					     "123-00-4567", "123-45-0000", "078-05-1120",
					     "219-09-9999", "999-99-9999", "000 12 3456",
					     "666 45 1234"};
	for (size_t i = 0; i < sizeof badssn / sizeof *badssn; i++) {
		begin();
		litf("SSN: %s (invalid, rejected by the form)", badssn[i]);
		emit();
	}
	char d[32], o[64], c[48];
	for (int i = 0; i < 20; i++) {
		size_t n = mk_card_digits(d);
		d[n - 1] = (char)('0' + (d[n - 1] - '0' + 1 + below(9)) % 10);
		fmt_card(o, d, n);
		begin();
		litf(PICK(((const char *[]){"Card number: %s (declined: checksum)",
					    "typo in card %s, please resend",
					    "payment,card\nfailed,%s"})),
		     o);
		emit();
	}
	for (int i = 0; i < 20; i++) {
		mk_iban_compact(c, 1);
		fmt_iban(o, c);
		begin();
		litf(PICK(((const char *[]){"IBAN: %s (check digits wrong)",
					    "transfer to %s bounced: invalid account"})),
		     o);
		emit();
	}
	for (int i = 0; i < 12; i++) {
		char u[40];
		rand_from(u, HEX, 32);
		begin();
		litf("request_id=%.8s-%.4s-4%.3s-a%.3s-%.12s trace ok", u, u + 8, u + 12, u + 16,
		     u + 20);
		emit();
	}
	for (int i = 0; i < 10; i++) {
		char h[72];
		rand_from(h, HEX, 64);
		begin();
		litf("%s  dataset-%02d.tar.zst", h, i);
		emit();
	}
}

int main(int argc, char **argv)
{
	if (argc > 1)
		rng_state = strtoull(argv[1], NULL, 0) | 1;
	for (int i = 0; i < 34; i++) {
		ONE("EMAIL", t_email, mk_email);
		ONE("PHONE", t_phone, mk_phone);
		ONE("IPV4", t_ipv4, mk_ipv4);
		ONE("IPV6", t_ipv6, mk_ipv6);
		ONE("CREDIT_CARD", t_card, mk_card);
		ONE("IBAN", t_iban, mk_iban);
		if (i % 4 == 3)
			ONE("US_SSN", t_ssn_bare, mk_ssn_bare);
		else
			ONE("US_SSN", t_ssn_sep, mk_ssn_dash);
		ONE("AWS_ACCESS_KEY", t_aws_id, mk_aws_id);
		ONE("AWS_SECRET_KEY", t_aws_secret, mk_aws_secret);
		ONE("PRIVATE_KEY", t_pkey, mk_private_key);
		ONE("GITHUB_TOKEN", t_github, mk_github);
		ONE("GITLAB_TOKEN", t_gitlab, mk_gitlab);
		ONE("SLACK_TOKEN", t_slack, mk_slack);
		ONE("STRIPE_KEY", t_stripe, mk_stripe);
		ONE("GOOGLE_API_KEY", t_google, mk_google);
		ONE("JWT", t_jwt, mk_jwt);
		generic_one();
	}
	for (int i = 0; i < 40; i++)
		mixed();
	negatives();
	fprintf(stderr, "gen_pii: %u findings, %u negative texts\n", counts_pos, counts_neg);
	return 0;
}
