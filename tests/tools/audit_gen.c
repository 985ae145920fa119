/*
 * audit_gen.c - writes a document JSON Lines corpus for quern-audit scan's
 * benchmark (bench/audit.sh).
 *
 *   audit_gen SIZE [SEED] > corpus.jsonl     SIZE like 200M, 1G, 50000
 *
 * Documents of 1-8 KB of English-like prose (Zipf-distributed words from a
 * fixed list, sentences and paragraphs), with an id, source and added date
 * like quern-ingest writes, until SIZE bytes. About one document in three
 * carries a value the detectors report: e-mail addresses, phone numbers,
 * public IPv4 addresses, Luhn-valid test cards, IBANs, tokens with real
 * prefixes, passwords in key=value form; others carry near misses (dates,
 * versions, order numbers, hashes). Scan cost depends on how often the
 * cheap triggers fire, so the mix matters more than the exact values.
 * Output is a pure function of SIZE and SEED. Only libc.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t st = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	st ^= st << 13;
	st ^= st >> 7;
	st ^= st << 17;
	return st;
}

static unsigned below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static const char *const words[] = {
    "the",	 "of",	      "and",	    "to",      "in",	   "a",		"is",
    "that",	 "for",	      "it",	    "as",      "was",	   "with",	"be",
    "by",	 "on",	      "not",	    "he",      "this",	   "are",	"or",
    "his",	 "from",      "at",	    "which",   "but",	   "have",	"an",
    "had",	 "they",      "you",	    "were",    "their",	   "one",	"all",
    "we",	 "can",	      "her",	    "has",     "there",	   "been",	"if",
    "more",	 "when",      "will",	    "would",   "who",	   "so",	"no",
    "data",	 "model",     "system",	    "report",  "customer", "service",	"account",
    "network",	 "server",    "request",    "policy",  "training", "document",	"team",
    "project",	 "support",   "update",	    "release", "version",  "security",	"access",
    "number",	 "order",     "payment",    "address", "contact",  "office",	"market",
    "research",	 "analysis",  "process",    "quality", "language", "result",	"value",
    "history",	 "community", "government", "company", "students", "children",	"people",
    "between",	 "through",   "during",	    "without", "within",   "important", "different",
    "following", "available", "including",  "however", "because",  "although",	"several",
};
#define NWORDS (sizeof words / sizeof *words)

static void put_word(FILE *o, int cap)
{
	/* Roughly Zipf: the square of a uniform draw favours the first words. */
	double u = (double)(rnd() >> 11) / 9007199254740992.0;
	const char *w = words[(size_t)(u * u * NWORDS)];
	if (cap)
		fprintf(o, "%c%s", w[0] - 32, w + 1);
	else
		fputs(w, o);
}

static void hexs(FILE *o, int n)
{
	for (int i = 0; i < n; i++)
		fputc("0123456789abcdef"[below(16)], o);
}

static void alnum(FILE *o, int n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (int i = 0; i < n; i++)
		fputc(a[below(62)], o);
}

static void card(FILE *o)
{
	static const char *const cards[] = {"4111 1111 1111 1111", "5555 5555 5555 4444",
					    "4012 8888 8888 1881", "3782 822463 10005"};
	fputs(cards[below(4)], o);
}

/* One value a detector reports, or a near miss. */
static void special(FILE *o)
{
	static const char *const names[] = {"john.doe", "m.garcia", "support", "li.wei", "anna"};
	static const char *const doms[] = {"example.com", "example.org", "mail.example.net"};
	switch (below(12)) {
	case 0:
	case 1:
		fprintf(o, " Contact %s%u@%s for details.", names[below(5)], below(100),
			doms[below(3)]);
		break;
	case 2:
		fprintf(o, " Call us at (415) 555-01%02u.", below(100));
		break;
	case 3:
		fprintf(o, " The server at %u.%u.%u.%u answered.", 51 + below(100), below(256),
			below(256), 1 + below(254));
		break;
	case 4:
		fputs(" Card number ", o);
		card(o);
		fputs(" was charged.", o);
		break;
	case 5:
		fputs(" IBAN GB82 WEST 1234 5698 7654 32 for the transfer.", o);
		break;
	case 6:
		fputs(" export GITHUB_TOKEN=ghp_", o);
		alnum(o, 36);
		fputc('.', o);
		break;
	case 7:
		fputs(" password = \\\"", o);
		alnum(o, 20);
		fputs("\\\"", o);
		break;
	case 8:
		fprintf(o, " Released version %u.%u.%u on 2024-%02u-%02u.", below(10), below(20),
			below(100), 1 + below(12), 1 + below(28));
		break;
	case 9:
		fputs(" Commit ", o);
		hexs(o, 40);
		fputs(" fixed it.", o);
		break;
	case 10:
		fprintf(o, " Order #%u%u shipped.", 100000 + below(900000), below(1000));
		break;
	default:
		fputs(" See https://www.example.com/docs/page?id=42 for more.", o);
		break;
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: audit_gen SIZE [SEED]\n", stderr);
		return 2;
	}
	char *end;
	double size = strtod(argv[1], &end);
	if (*end == 'k' || *end == 'K')
		size *= 1e3;
	else if (*end == 'm' || *end == 'M')
		size *= 1e6;
	else if (*end == 'g' || *end == 'G')
		size *= 1e9;
	if (argc > 2)
		st ^= strtoull(argv[2], NULL, 10) * 0xbf58476d1ce4e5b9ull;
	if (!st)
		st = 1;
	static char buf[1 << 16];
	setvbuf(stdout, buf, _IOFBF, sizeof buf);
	uint64_t written = 0;
	for (unsigned long d = 0; (double)written < size; d++) {
		char *p = NULL;
		size_t sz = 0;
		FILE *o = open_memstream(&p, &sz);
		if (!o)
			return 1;
		fprintf(o, "{\"id\":\"doc-%08lu\",\"text\":\"", d);
		unsigned target = 1000 + below(7000), len = 0;
		unsigned special_at = below(3) == 0 ? below(target) : ~0u;
		while (len < target) {
			unsigned n = 8 + below(20);
			for (unsigned i = 0; i < n; i++) {
				if (i)
					fputc(' ', o);
				put_word(o, i == 0);
				len += 6;
			}
			fputc(below(8) ? '.' : ',', o);
			if (len >= special_at) {
				special(o);
				special_at = ~0u;
			}
			fputs(below(6) ? " " : "\\n\\n", o);
		}
		fprintf(o,
			"\",\"source\":\"bench\",\"added\":\"2026-01-01T00:00:00Z\","
			"\"metadata\":{\"url\":\"https://www.example.com/page/%lu\"}}\n",
			d);
		fclose(o);
		fwrite(p, 1, sz, stdout);
		written += sz;
		free(p);
	}
	return fflush(stdout) ? 1 : 0;
}
