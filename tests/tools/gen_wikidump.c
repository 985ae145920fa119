/*
 * gen_wikidump.c - writes a synthetic MediaWiki export of about SIZE bytes.
 *
 *   gen_wikidump SIZE_BYTES [SEED] > dump.xml
 *
 * The XML is well-formed (export-0.11 namespace, siteinfo, pages with one
 * or two revisions, some redirects) and the wikitext is realistic enough to
 * exercise every path of ix_wikitext: headings, links with and without
 * labels, file and category links, nested templates, infoboxes, refs,
 * comments, tables, bold/italic, lists and entities. Output is a pure
 * function of SIZE and SEED (xorshift PRNG), so tests can regenerate the
 * same dump. It is for checking that a multi-gigabyte dump streams in
 * bounded memory, so it is built for speed: words come from a fixed
 * vocabulary and go through one large stdio buffer (hundreds of MB/s).
 * Only libc.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static unsigned below(unsigned n) { return (unsigned)((rnd() >> 33) % n); }

static const char *const words[] = {
	"the", "of", "and", "in", "to", "was", "is", "for", "as", "on", "with", "by", "he",
	"that", "at", "from", "his", "it", "an", "were", "are", "which", "this", "also", "be",
	"has", "or", "had", "first", "one", "their", "its", "new", "after", "but", "who",
	"not", "they", "have", "her", "she", "two", "been", "other", "when", "there", "all",
	"during", "into", "school", "time", "may", "years", "more", "most", "only", "over",
	"city", "some", "world", "would", "where", "later", "up", "such", "used", "many",
	"can", "state", "about", "national", "out", "known", "university", "united", "then",
	"made", "team", "season", "government", "river", "village", "population", "church",
	"album", "released", "война", "Zürich", "café", "naïve", "東京", "σύστημα",
};
#define NWORDS (sizeof words / sizeof words[0])

static FILE *out;
static unsigned long long written; /* ftell does not work on pipes */

static void put(const char *s)
{
	size_t n = strlen(s);
	fwrite(s, 1, n, out);
	written += n;
}

static void putch(int c)
{
	putc(c, out);
	written++;
}

static void pf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vfprintf(out, fmt, ap);
	va_end(ap);
	if (n > 0)
		written += (unsigned)n;
}

static void word(void) { put(words[below(NWORDS)]); }

static void title(void)
{
	int n = 1 + (int)below(3);
	for (int i = 0; i < n; i++) {
		const char *w = words[below(NWORDS)];
		if (i)
			putch(' ');
		if (w[0] >= 'a' && w[0] <= 'z') {
			putch(w[0] - 32);
			put(w + 1);
		} else {
			put(w);
		}
	}
}

/* One sentence of inline markup, already XML-escaped. */
static void sentence(void)
{
	int n = 6 + (int)below(14);
	for (int i = 0; i < n; i++) {
		if (i)
			putch(' ');
		switch (below(40)) {
		case 0:
			put("[[");
			title();
			put("]]");
			break;
		case 1:
			put("[[");
			title();
			put("|");
			word();
			put("]]");
			break;
		case 2:
			put("'''");
			word();
			put("'''");
			break;
		case 3:
			put("''");
			word();
			put("''");
			break;
		case 4:
			put("&lt;ref&gt;{{cite web |url=https://example.org/");
			word();
			put(" |title=");
			title();
			put("}}&lt;/ref&gt;");
			break;
		case 5:
			put("&lt;ref name=\"r");
			pf("%u", below(50));
			put("\" /&gt;");
			break;
		case 6:
			put("[https://example.com/");
			word();
			put(" ");
			word();
			put("]");
			break;
		case 7:
			put("{{lang|fr|");
			word();
			put("}}");
			break;
		case 8:
			put("&amp;nbsp;");
			word();
			break;
		case 9:
			put("&lt;!-- ");
			word();
			put(" --&gt;");
			break;
		default:
			word();
		}
	}
	put(". ");
}

static void paragraph(void)
{
	int n = 2 + (int)below(6);
	for (int i = 0; i < n; i++)
		sentence();
	put("\n\n");
}

static void wikitext(void)
{
	put("{{Infobox settlement\n| name = ");
	title();
	put("\n| population = ");
	pf("%u", below(1000000));
	put(" {{nowrap|{{formatnum:");
	pf("%u", below(1000));
	put("}}}}\n}}\n");
	paragraph();
	int sections = 1 + (int)below(6);
	for (int s = 0; s < sections; s++) {
		put("== ");
		title();
		put(" ==\n");
		paragraph();
		switch (below(5)) {
		case 0:
			for (int i = 0, n = 2 + (int)below(5); i < n; i++) {
				put(below(2) ? "* " : "# ");
				sentence();
				putch('\n');
			}
			putch('\n');
			break;
		case 1:
			put("{| class=\"wikitable\"\n|-\n! ");
			word();
			put(" !! ");
			word();
			put("\n");
			for (int i = 0, n = 1 + (int)below(6); i < n; i++) {
				put("|-\n| ");
				word();
				put(" || ");
				pf("%u", below(10000));
				putch('\n');
			}
			put("|}\n\n");
			break;
		case 2:
			put("[[File:");
			title();
			put(".jpg|thumb|");
			word();
			put(" [[");
			title();
			put("]]]]\n");
			paragraph();
			break;
		default:
			paragraph();
		}
	}
	put("== References ==\n{{reflist}}\n\n[[Category:");
	title();
	put("]]\n");
}

static void page(unsigned long id)
{
	int redirect = below(10) == 0, revs = 1 + (below(4) == 0);

	put("  <page>\n    <title>");
	title();
	pf("</title>\n    <ns>0</ns>\n    <id>%lu</id>\n", id);
	if (redirect) {
		put("    <redirect title=\"");
		title();
		put("\" />\n");
	}
	for (int r = 0; r < revs; r++) {
		pf(
			"    <revision>\n      <id>%lu</id>\n      <timestamp>20%02u-%02u-%02uT%02u:%02u:%02uZ</timestamp>\n"
			"      <contributor>\n        <username>User%u</username>\n        <id>%u</id>\n"
			"      </contributor>\n      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
			"      <text bytes=\"0\" xml:space=\"preserve\">",
			id * 4 + (unsigned long)r, 1 + below(24), 1 + below(12), 1 + below(28), below(24),
			below(60), below(60), below(1000), below(100000));
		if (redirect) {
			put("#REDIRECT [[");
			title();
			put("]]");
		} else {
			wikitext();
		}
		put("</text>\n      <sha1>0</sha1>\n    </revision>\n");
	}
	put("  </page>\n");
}

int main(int argc, char **argv)
{
	unsigned long long size;
	static char buf[1 << 20];
	char *end;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: gen_wikidump SIZE_BYTES [SEED]\n");
		return 2;
	}
	size = strtoull(argv[1], &end, 10);
	if (*end == 'k' || *end == 'K')
		size <<= 10;
	else if (*end == 'm' || *end == 'M')
		size <<= 20;
	else if (*end == 'g' || *end == 'G')
		size <<= 30;
	rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
	rng_state = rng_state * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
	if (!rng_state)
		rng_state = 1;
	out = stdout;
	setvbuf(out, buf, _IOFBF, sizeof buf);
	put("<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.11/\" "
	    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" version=\"0.11\" xml:lang=\"en\">\n"
	    "  <siteinfo>\n    <sitename>Synthetic</sitename>\n    <dbname>synthwiki</dbname>\n"
	    "    <generator>gen_wikidump</generator>\n    <case>first-letter</case>\n"
	    "    <namespaces>\n      <namespace key=\"0\" case=\"first-letter\" />\n"
	    "      <namespace key=\"14\" case=\"first-letter\">Category</namespace>\n"
	    "    </namespaces>\n  </siteinfo>\n");
	for (unsigned long id = 1; written < size; id++)
		page(id);
	put("</mediawiki>\n");
	if (fflush(out) || ferror(out)) {
		perror("gen_wikidump");
		return 1;
	}
	return 0;
}
