/*
 * pii.h - the PII and secret detectors that quern-clean (redacts) and
 * quern-audit (reports) share, so that both find exactly the same things.
 *
 * A detector (struct qn_pii) is built once by qn_pii_new from options (which
 * types, whether private IP addresses count, the minimum score) and holds
 * PCRE2 code compiled and JIT-compiled at that moment. It is read-only
 * afterwards: any number of threads may call qn_pii_scan on one detector at
 * the same time, each with its own struct qn_pii_hits (match data is made per
 * call). qn_pii_free releases it.
 *
 * qn_pii_scan takes bytes as they are: UTF-8 is expected but not required
 * (invalid sequences are simply bytes that belong to no finding; every
 * pattern is ASCII; some context words are UTF-8). It never reads outside
 * [text, text + len). Each finding is a type, a byte span [start, end) and a
 * score in [0, 1]. The score starts at the pattern's base score (validated
 * structure: a Luhn-checked card, a mod-97 IBAN, a known token prefix score
 * high; loose shapes such as a bare nine-digit SSN or an unpunctuated national
 * phone number score low) and is raised by context words within
 * QN_PII_CONTEXT bytes before the value ("card", "iban", "ssn", "ip",
 * "address", ...). Findings under opts.min_score are dropped; overlapping
 * findings are resolved (higher score wins, then the longer span, then the
 * earlier one), so the result is sorted by start and disjoint. The hits array
 * is caller-owned: qn_pii_hits_init / qn_pii_hits_release; it has a maximum
 * count (QN_PII_MAX_HITS unless set).
 *
 * Phones: a number with a "+" country code (also "(+34) ..." and
 * "+44 (0)20 ...", span from the "+" or the "("), a North American number
 * ((415) 555-0123, 415-555-0123) or a national number with a trunk prefix and
 * an area code of three or more digits (020 7946 0958, (030) 9018 1234,
 * 089/21801234) or in the French layout (01 23 45 67 89) counts by itself (at
 * the default minimum score). Looser layouts count only after a phone word
 * within QN_PII_CONTEXT bytes: a two-digit area code
 * (01 732 4436, 06 7304 6721, (02) 9271 7432, (03) 5136-8086, 03(1234)5678),
 * the nine-digit plans without a trunk prefix, starting with 6 to 9
 * (916 325 746, 95 560 94 93, 612 34 56 78), and a bare run of 10 or 11
 * digits (0268542843, 4155550123). The phone
 * words are "phone", "tel" (Tel., Telefon, Telefono, TEL), "t\u00e9l"
 * (T\u00e9l., T\u00e9l\u00e9phone), "call", "mobil", "m\u00f3vil", "cell",
 * "fax", "contact", "dial", "whatsapp", "sms", "fon", "handy", "ruf" and
 * "anruf" (Rufen Sie an), "llam"/"ll\u00e1m" (Ll\u00e1manos, llame),
 * "appel" (Appelez-nous), "chiam", "ligue", "tlf", "tfno", "zadzwo",
 * "mobiel", Russian "tel", Japanese and Chinese "denwa" (U+96FB U+8A71,
 * U+7535 U+8BDD) and "keitai", and the signs U+260E, U+2706 and the phone
 * emoji; a phone word counts only when no other number's label (such as
 * "order", "contract" or "Kundennummer") comes between it and the value.
 *
 * IPv4: a dotted quad at a word boundary, also after another number and a
 * space ("ping -c 4 90.65.205.220"). It is not reported in a version
 * position, as the first dotted number after "version", "ver.", "release",
 * "build" or "firmware" in the 40 bytes before it ("Version 1.2.3.4",
 * AssemblyVersion("5.2.7.0"), "bump Standards-Version to 4.6.0.1"); when
 * another dotted number comes first, that one is the version and the address
 * counts ("Version 9.5.6 deployed on 51.94.114.69").
 *
 * qn_pii_redact writes the text with every finding replaced by a tag
 * ("<EMAIL>") or a pseudonym ("<EMAIL_3f9a1c2b>": the first 32 bits of
 * HMAC-SHA256 under the caller's key of the type and the normalised value,
 * so one value gets one pseudonym for as long as the key is kept and
 * different values almost surely differ). qn_pii_mask gives a short masked
 * excerpt of a value for reports ("j***@e*****.com"); raw secrets are never
 * meant to leave the process.
 *
 * Performance: one pass over the bytes finds cheap triggers ('@', digit runs
 * at a word boundary, '+' or '(' before a digit, ':' between hex digits, '='
 * or ':' after a key name, upper-case word starts, the '_' '-' '.' inside
 * token prefixes, and "-----BEGIN"), plus a second pass that tests every
 * second byte pair against a bitmap to find the secret names of prose (see
 * below); the anchored patterns and validators run only there, each over a
 * bounded window, so ordinary prose goes by at a few hundred MB/s on one core.
 *
 * Tokens with a published format (docs/detectors.md lists each rule): a fixed
 * prefix found at its trigger byte, then an anchored pattern of the body's
 * length and charset, never glued to more token characters, score 0.95:
 * AKIA/ASIA key ids, AIza Google keys, gh?_ and github_pat_, gl*- GitLab,
 * xox?- and Slack webhooks, sk_/rk_ Stripe, JWTs (the header must decode to
 * JSON with "alg"), PEM private key blocks (0.99; 0.8 without an END line),
 * OPENAI_API_KEY (sk-[proj-|svcacct-|admin-]...T3BlbkFJ...), ANTHROPIC_API_KEY
 * (sk-ant-api03- + 93 + "AA"), NPM_TOKEN (npm_ + 36), PYPI_TOKEN
 * (pypi-AgEIcHlwaS5vcmc + 50 or more), SENDGRID_API_KEY (SG. 22 . 43),
 * AZURE_STORAGE_KEY (the 88 base64 characters after AccountKey= in a
 * connection string), SHOPIFY_TOKEN (shpat_/shpca_/shppa_/shpss_ + 32 hex),
 * DIGITALOCEAN_TOKEN (dop_/doo_/dor_v1_ + 64 hex), VAULT_TOKEN (hvs. + 90 to
 * 120, hvb. + 138 to 300), POSTMAN_API_KEY (PMAK- 24 hex - 34 hex),
 * DOCKER_HUB_TOKEN (dckr_pat_/dckr_oat_ + 27). Where the shape alone is weak
 * the body must also look random, score 0.9: HUGGINGFACE_TOKEN (hf_ + 34
 * letters) and TELEGRAM_BOT_TOKEN (a 5 to 16 digit bot id, ':', 'A' + 34,
 * also inside api.telegram.org/bot<token>/) need both cases and at least 4
 * bits per character in the body.
 *
 * Digit groups that continue an IBAN whose check digits are wrong ("GB59 YPRH
 * 0534 9655 9724 96") are an account number, never a phone, card or SSN.
 *
 * Secrets: AWS_SECRET_KEY is 40 base64 characters under an AWS secret name
 * (aws_secret_access_key) or under any secret name (secret_key,
 * SecretAccessKey) with "aws" or an AKIA/ASIA key id in the 256 bytes before.
 * GENERIC_SECRET is the value of a secret-ish name (password, passwd, *_pass,
 * secret, token, api_key, auth, credential, private/encryption/signing key;
 * German Passwort and Kennwort, French mot de passe, Spanish contrase\u00f1a
 * and clave, Portuguese senha, Dutch wachtwoord; also key="Name" value="..."
 * and PHP define('NAME', '...')) that is 16 or more characters: hex with some
 * entropy, or mixing two of lower case, upper case and digits (all three in
 * prose) with an entropy near that of random characters of its length.
 * The entropy floors are detect-secrets' (Shannon entropy in bits per
 * character): 3.0 for hex values (HexHighEntropyString) and 4.5 for the
 * base64 charset (Base64HighEntropyString). A value of n characters cannot
 * exceed log2(n) bits, so base64 values of under 50 characters need
 * 0.8 log2(n) instead (3.2 at 16, 4.0 at 32), about what random characters
 * of that length reach; the secret name is the rest of the evidence.
 * Placeholders (YOUR_..., xxxx, ****, ${...}, {{...}}, <...>, changeme,
 * redacted, example) never count.
 *
 * In prose and on command lines the value follows a word containing
 * "secret", "passw", "kennwort", "mot de passe", "contrase\u00f1a" or "clave"
 * (any case) after at most a few filler words ("access", "key", "is", "was",
 * "ist", "war", "lautet", "est", "es", "era", "de", "\u00e9", "\u00e8"), a
 * bracketed default ("[None]", as aws configure prompts) and one ':' or '=':
 * "my password is X", "Das neue Passwort lautet X", "Votre mot de passe : X",
 * "AWS Secret Access Key [None]: X", "--password X". After an AWS secret name
 * one other short word (up to 10 letters) may also come between ("Der AWS
 * Secret Access Key lautet X"), and then only an AWS secret key counts.
 */
#ifndef QN_PII_H
#define QN_PII_H

#include <stddef.h>
#include <stdint.h>

struct qn_buf;
struct qn_err;

enum qn_pii_type {
	QN_PII_EMAIL,
	QN_PII_PHONE,
	QN_PII_IPV4,
	QN_PII_IPV6,
	QN_PII_CREDIT_CARD,
	QN_PII_IBAN,
	QN_PII_US_SSN,
	QN_PII_AWS_ACCESS_KEY,
	QN_PII_AWS_SECRET_KEY,
	QN_PII_PRIVATE_KEY,
	QN_PII_GITHUB_TOKEN,
	QN_PII_GITLAB_TOKEN,
	QN_PII_SLACK_TOKEN, /* xox?- tokens and hooks.slack.com webhook URLs */
	QN_PII_STRIPE_KEY,
	QN_PII_GOOGLE_API_KEY,
	QN_PII_JWT,
	QN_PII_GENERIC_SECRET,	   /* high-entropy value assigned to password/secret/token/... */
	QN_PII_OPENAI_KEY,	   /* sk-[proj-]...T3BlbkFJ... */
	QN_PII_ANTHROPIC_KEY,	   /* sk-ant-api03-... */
	QN_PII_HUGGINGFACE_TOKEN,  /* hf_ + 34 letters */
	QN_PII_NPM_TOKEN,	   /* npm_ + 36 */
	QN_PII_PYPI_TOKEN,	   /* pypi-AgEIcHlwaS5vcmc... */
	QN_PII_SENDGRID_KEY,	   /* SG.22.43 */
	QN_PII_AZURE_STORAGE_KEY,  /* AccountKey=<88 base64> */
	QN_PII_SHOPIFY_TOKEN,	   /* shp{at,ca,pa,ss}_ + 32 hex */
	QN_PII_DIGITALOCEAN_TOKEN, /* do{p,o,r}_v1_ + 64 hex */
	QN_PII_VAULT_TOKEN,	   /* hvs. / hvb. */
	QN_PII_POSTMAN_KEY,	   /* PMAK-24hex-34hex */
	QN_PII_DOCKER_TOKEN,	   /* dckr_pat_ / dckr_oat_ + 27 */
	QN_PII_TELEGRAM_TOKEN,	   /* bot id:A + 34 */
	QN_PII_NTYPES		   /* at most 31: opts.types is a 32-bit mask */

};

#define QN_PII_ALL ((1u << QN_PII_NTYPES) - 1)
#define QN_PII_BIT(t) (1u << (t))
#define QN_PII_DEFAULT_MIN_SCORE 0.5
#define QN_PII_CONTEXT 64             /* bytes before a value searched for context words */
#define QN_PII_MAX_HITS ((size_t)1 << 20) /* default ceiling of one scan's findings */

/* "EMAIL", "PHONE", "CREDIT_CARD", "AWS_ACCESS_KEY", ...; "?" when out of range. */
const char *qn_pii_type_name(enum qn_pii_type t);
/* The type with that name (case-insensitive), or -1. */
int qn_pii_type_parse(const char *name);
/* 1 for the secret kinds (AWS_ACCESS_KEY and every type after it), 0 for personal data. */
int qn_pii_type_is_secret(enum qn_pii_type t);

struct qn_pii_opts {
	uint32_t types;         /* QN_PII_BIT(t) set for every type to look for */
	int include_private_ip; /* also report non-public addresses (see below) */
	double min_score;       /* findings below are dropped */
};

/*
 * All types, public addresses only, QN_PII_DEFAULT_MIN_SCORE. Public means
 * not private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local,
 * shared (100.64/10), documentation (192.0.2/24, 198.51.100/24, 203.0.113/24,
 * 2001:db8::/32, 3fff::/20), benchmarking, multicast or reserved; for IPv6
 * only global unicast (2000::/3) counts, and IPv4-mapped addresses are judged
 * by their IPv4 part. include_private_ip reports every valid address except
 * the unspecified ones (0.0.0.0, ::) and 255.255.255.255.
 */
void qn_pii_opts_init(struct qn_pii_opts *o);

struct qn_pii;

/* o == NULL means qn_pii_opts_init's defaults. NULL with e filled on failure. */
struct qn_pii *qn_pii_new(const struct qn_pii_opts *o, struct qn_err *e);
void qn_pii_free(struct qn_pii *p);

struct qn_pii_hit {
	enum qn_pii_type type;
	float score;
	size_t start, end; /* byte offsets into the scanned text, start < end */
};

struct qn_pii_hits {
	struct qn_pii_hit *v;
	size_t n, cap;
	size_t max; /* most findings one scan may return */
};

/* max 0 means QN_PII_MAX_HITS. */
void qn_pii_hits_init(struct qn_pii_hits *h, size_t max);
void qn_pii_hits_release(struct qn_pii_hits *h);

/*
 * Replaces out's contents with the findings in text[0, len), sorted by start
 * and disjoint. -1 with e filled when out of memory or past out->max (out is
 * then empty).
 */
int qn_pii_scan(const struct qn_pii *p, const char *text, size_t len, struct qn_pii_hits *out,
		struct qn_err *e);

enum qn_pii_mode {
	QN_PII_TAG,       /* <EMAIL> */
	QN_PII_PSEUDONYM, /* <EMAIL_3f9a1c2b> */
};

/*
 * Appends text with each finding of h replaced (see above) to out. h must
 * come from a scan of this text: sorted, disjoint, inside len (-1 with e
 * filled otherwise, or when out reaches its maximum). key/keylen is the HMAC
 * key for pseudonyms (keylen 0 is allowed but anyone can then recompute
 * them). counts, when not NULL, gets counts[type] += 1 per replacement.
 */
int qn_pii_redact(const struct qn_pii_hits *h, const char *text, size_t len, enum qn_pii_mode mode,
		  const unsigned char *key, size_t keylen, struct qn_buf *out,
		  uint64_t counts[QN_PII_NTYPES], struct qn_err *e);

/*
 * Writes the pseudonym of one value ("EMAIL_3f9a1c2b", without the angle
 * brackets) into out[QN_PII_PSEUDONYM_MAX]. Values that normalise alike
 * (case of an e-mail address, spacing of a card number or IBAN, punctuation
 * of a phone number, spelling of an IPv6 address) get the same pseudonym.
 */
#define QN_PII_PSEUDONYM_MAX 40
void qn_pii_pseudonym(enum qn_pii_type t, const char *value, size_t n, const unsigned char *key,
		      size_t keylen, char out[QN_PII_PSEUDONYM_MAX]);

/*
 * Writes a masked excerpt of value into out (always NUL-terminated, at most
 * outsz - 1 bytes; returns the length written). E-mail keeps the first
 * character of the local part and of the domain and the top-level domain
 * ("j***@e*****.com"); other values keep a few characters at each end (at
 * most an eighth of the value on each side, at most 4) around "****", so
 * the length and the middle are not revealed; bytes that are not printable
 * ASCII come out as '?'.
 */
size_t qn_pii_mask(enum qn_pii_type t, const char *value, size_t n, char *out, size_t outsz);

#endif
