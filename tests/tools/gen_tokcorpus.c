/*
 * gen_tokcorpus.c - writes the deterministic corpus that checks quern's BPE
 * encoder against tiktoken, byte for byte (docs/tokenizers.md).
 *
 *   gen_tokcorpus [-s SEED] [-l LONG] BYTES > corpus.jsonl
 *
 * One document a line, each a JSON string (so any character, NUL included,
 * travels safely to Node and back). Documents are drawn from kinds: prose in
 * Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai, CJK and Hangul;
 * every Unicode White_Space character and its look-alikes (U+180E, U+200B,
 * U+2060, U+FEFF); combining marks, stacked and orphaned; emoji with ZWJ
 * sequences, skin tones, flags, keycaps and tags; digit runs of every length
 * in many number systems; CR/LF runs; contractions in mixed case ('S 'LL
 * 'Ve, the long s, the Kelvin sign, curly quotes); code; special-token
 * strings; random assigned code points of every plane. Every ~1.2 MB (at
 * least twice) comes a run of LONG bytes (default 100000) with no space:
 * letters, one repeated character, punctuation, digits, CJK, anything.
 * Output stops after the document that reaches BYTES of text.
 *
 * Code points that the installed PCRE2 does not know (general category Cn in
 * its Unicode tables) are never written: a newer Unicode may have made them
 * letters, and tiktoken's tables may be newer (docs/tokenizers.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static uint64_t rng = 0x717565726e746f6bULL; /* "querntok" */

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint32_t rn(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

static int chance(int pct)
{
	return (int)rn(100) < pct;
}

/* ---- which code points PCRE2 knows ---- */

static unsigned char *known; /* bitmap over 0..0x10FFFF */

static size_t utf8(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

static void init_known(void)
{
	int err;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR) "^\\p{Cn}$", PCRE2_ZERO_TERMINATED,
				       PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	char buf[4];

	known = calloc(0x110000 / 8, 1);
	if (!re || !md || !known) {
		fprintf(stderr, "gen_tokcorpus: cannot set up PCRE2\n");
		exit(1);
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	for (uint32_t cp = 0; cp < 0x110000; cp++) {
		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		size_t n = utf8(cp, buf);
		if (pcre2_match(re, (PCRE2_SPTR)buf, n, 0, 0, md, NULL) < 0)
			known[cp >> 3] |= (unsigned char)(1 << (cp & 7));
	}
	pcre2_match_data_free(md);
	pcre2_code_free(re);
}

static int is_known(uint32_t cp)
{
	return cp < 0x110000 && (known[cp >> 3] >> (cp & 7) & 1);
}

/* ---- the document being written ---- */

static char *doc;
static size_t dlen, dcap;

static void put(const char *s, size_t n)
{
	if (dlen + n > dcap) {
		while (dlen + n > dcap)
			dcap = dcap ? dcap * 2 : 1 << 16;
		doc = realloc(doc, dcap);
		if (!doc) {
			fprintf(stderr, "gen_tokcorpus: out of memory\n");
			exit(1);
		}
	}
	memcpy(doc + dlen, s, n);
	dlen += n;
}

static void puts_(const char *s)
{
	put(s, strlen(s));
}

static void cp(uint32_t c)
{
	char b[4];
	if (is_known(c))
		put(b, utf8(c, b));
}

struct range {
	uint32_t lo, hi;
};

#define N(a) (sizeof(a) / sizeof *(a))

static uint32_t pick(const struct range *r, size_t n)
{
	uint32_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += r[i].hi - r[i].lo + 1;
	uint32_t k = rn(total);
	for (size_t i = 0; i < n; i++) {
		uint32_t w = r[i].hi - r[i].lo + 1;
		if (k < w)
			return r[i].lo + k;
		k -= w;
	}
	return r[0].lo;
}

/* ---- scripts ---- */

/* clang-format off */

static const struct range latin_lower[] = {{'a', 'z'}, {'a', 'z'}, {'a', 'z'}, {0xDF, 0xF6},
					   {0xF8, 0xFF}, {0x101, 0x101}, {0x107, 0x107},
					   {0x11B, 0x11B}, {0x142, 0x142}, {0x153, 0x153},
					   {0x161, 0x161}, {0x17E, 0x17E}};
static const struct range latin_upper[] = {{'A', 'Z'}, {'A', 'Z'}, {0xC0, 0xD6}, {0xD8, 0xDE},
					   {0x100, 0x100}, {0x141, 0x141}, {0x152, 0x152},
					   {0x160, 0x160}, {0x1E9E, 0x1E9E}};
static const struct range latin_title[] = {{0x1C5, 0x1C5}, {0x1C8, 0x1C8}, {0x1CB, 0x1CB},
					   {0x1F2, 0x1F2}};
static const struct range cyr_lower[] = {{0x430, 0x44F}, {0x451, 0x451}, {0x456, 0x457}};
static const struct range cyr_upper[] = {{0x410, 0x42F}, {0x401, 0x401}, {0x406, 0x407}};
static const struct range greek_lower[] = {{0x3B1, 0x3C9}, {0x3AC, 0x3AF}, {0x3C2, 0x3C2}};
static const struct range greek_upper[] = {{0x391, 0x3A1}, {0x3A3, 0x3A9}};
static const struct range arabic[] = {{0x621, 0x63A}, {0x641, 0x64A}};
static const struct range arabic_marks[] = {{0x64B, 0x652}};
static const struct range hebrew[] = {{0x5D0, 0x5EA}};
static const struct range hebrew_marks[] = {{0x5B0, 0x5BC}};
static const struct range deva[] = {{0x915, 0x939}};
static const struct range deva_signs[] = {{0x93E, 0x94C}, {0x94D, 0x94D}, {0x901, 0x903}};
static const struct range thai[] = {{0xE01, 0xE2E}};
static const struct range thai_marks[] = {{0xE31, 0xE31}, {0xE34, 0xE3A}, {0xE47, 0xE4E}};
static const struct range cjk[] = {{0x4E00, 0x9FA5}, {0x4E00, 0x4FFF}};
static const struct range kana[] = {{0x3041, 0x3096}, {0x30A1, 0x30FA}, {0x30FC, 0x30FC}};
static const struct range hangul[] = {{0xAC00, 0xD7A3}};
static const struct range combining[] = {{0x300, 0x36F}, {0x483, 0x489}, {0x1AB0, 0x1ABE},
					 {0x1DC0, 0x1DFF}, {0x20D0, 0x20F0}, {0xFE20, 0xFE2F}};

/* clang-format on */

enum { LATIN, CYRILLIC, GREEK, ARABIC, HEBREW, DEVANAGARI, THAI, CJK, HANGUL, N_SCRIPTS };

static void word(int script, int len)
{
	int caps = rn(10); /* 0: ALL CAPS, 1: Title, 2: mIxEd, 3: Titlecase letter */
	for (int i = 0; i < len; i++) {
		switch (script) {
		case LATIN:
			if (caps == 0 || (caps == 1 && i == 0) || (caps == 2 && chance(40)))
				cp(pick(latin_upper, N(latin_upper)));
			else if (caps == 3 && i == 0)
				cp(pick(latin_title, N(latin_title)));
			else
				cp(pick(latin_lower, N(latin_lower)));
			break;
		case CYRILLIC:
			if (caps == 0 || (caps == 1 && i == 0) || (caps == 2 && chance(40)))
				cp(pick(cyr_upper, N(cyr_upper)));
			else
				cp(pick(cyr_lower, N(cyr_lower)));
			break;
		case GREEK:
			if (caps == 0 || (caps == 1 && i == 0) || (caps == 2 && chance(40)))
				cp(pick(greek_upper, N(greek_upper)));
			else
				cp(pick(greek_lower, N(greek_lower)));
			break;
		case ARABIC:
			cp(pick(arabic, N(arabic)));
			if (chance(25))
				cp(pick(arabic_marks, N(arabic_marks)));
			break;
		case HEBREW:
			cp(pick(hebrew, N(hebrew)));
			if (chance(25))
				cp(pick(hebrew_marks, N(hebrew_marks)));
			break;
		case DEVANAGARI:
			cp(pick(deva, N(deva)));
			if (chance(50))
				cp(pick(deva_signs, N(deva_signs)));
			break;
		case THAI:
			cp(pick(thai, N(thai)));
			if (chance(30))
				cp(pick(thai_marks, N(thai_marks)));
			break;
		case CJK:
			cp(chance(70) ? pick(cjk, N(cjk)) : pick(kana, N(kana)));
			break;
		default:
			cp(pick(hangul, N(hangul)));
			break;
		}
	}
}

/* clang-format off */
static const char *const punct[] = {
	",", ".", "!", "?", ";", ":", "...", " - ", " -- ", "\xe2\x80\x94", "\xe2\x80\xa6", "(",
	")", "\"", "\xc2\xab", "\xc2\xbb", "\xe2\x80\x9c", "\xe2\x80\x9d", "\xe3\x80\x82",
	"\xe3\x80\x81", "\xd8\x8c", "\xd8\x9f", "\xe0\xa5\xa4", "/", "&", "%", "#", "@", "*",
	"\xc2\xa7", "\xc2\xb6", "[", "]", "{", "}", "<", ">", "=", "+", "~", "^", "`", "|",
	"\\", "$", "\xe2\x82\xac", "\xc2\xa3", "\xc2\xa5", "'", "_", "?!", "!!", ".)", ".\"",
};

/* clang-format on */

static void punctuation(void)
{
	puts_(punct[rn(N(punct))]);
}

/* ---- whitespace ---- */

/* clang-format off */
static const uint32_t spaces[] = {0x09,   0x0A,   0x0B,   0x0C,   0x0D,	  0x20,	  0x85,
				  0xA0,	  0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
				  0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028,
				  0x2029, 0x202F, 0x205F, 0x3000};
/* Characters that look like spaces but are not White_Space. */
static const uint32_t not_spaces[] = {0x180E, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD};

/* clang-format on */

static void some_space(void)
{
	int n = 1 + (chance(70) ? 0 : (int)rn(6));
	for (int i = 0; i < n; i++)
		cp(chance(85) ? spaces[rn(N(spaces))] : not_spaces[rn(N(not_spaces))]);
}

static void digits_run(int len)
{
	static const uint32_t zero[] = {'0', '0', '0', 0x660, 0x6F0, 0x966, 0xE50, 0xFF10, 0x1D7CE};
	static const struct range other[] = {{0xB2, 0xB3},     {0xB9, 0xB9},	 {0xBC, 0xBE},
					     {0x2460, 0x2473}, {0x2160, 0x216B}, {0x2070, 0x2070},
					     {0x2074, 0x2079}, {0x3007, 0x3007}};
	uint32_t z = zero[rn(N(zero))];
	int mixed = chance(10);
	for (int i = 0; i < len; i++) {
		if (mixed && chance(30))
			cp(chance(50) ? pick(other, N(other)) : zero[rn(N(zero))] + rn(10));
		else
			cp(z + rn(10));
	}
}

/* ---- document kinds ---- */

static void doc_prose(size_t target)
{
	int script = (int)rn(N_SCRIPTS);
	while (dlen < target) {
		if (chance(8))
			script = (int)rn(N_SCRIPTS);
		word(script, 1 + (int)rn(script == CJK || script == THAI ? 20 : 10));
		if (chance(12))
			punctuation();
		if (chance(4))
			digits_run(1 + (int)rn(6));
		if (chance(3))
			puts_(chance(50) ? "\n\n" : "\n");
		else if (script != CJK && script != THAI)
			puts_(chance(95) ? " " : chance(50) ? "  " : "\t");
		else if (chance(20))
			puts_(" ");
	}
}

static void doc_whitespace(size_t target)
{
	if (chance(50))
		some_space();
	while (dlen < target) {
		switch (rn(6)) {
		case 0:
			word((int)rn(N_SCRIPTS), 1 + (int)rn(6));
			break;
		case 1:
			digits_run(1 + (int)rn(5));
			break;
		case 2:
			punctuation();
			break;
		default:
			break;
		}
		some_space();
		if (chance(10))
			some_space();
	}
}

static void doc_combining(size_t target)
{
	while (dlen < target) {
		switch (rn(8)) {
		case 0:
			cp(' ');
			break;
		case 1:
			digits_run(1 + (int)rn(3));
			break;
		case 2:
			punctuation();
			break;
		case 3:
			word((int)rn(N_SCRIPTS), 1);
			break;
		default:
			word(chance(60) ? LATIN : (int)rn(N_SCRIPTS), 1);
			break;
		}
		int marks = (int)rn(7);
		for (int i = 0; i < marks; i++)
			cp(pick(combining, N(combining)));
		if (chance(20))
			cp(chance(80) ? ' ' : spaces[rn(N(spaces))]);
	}
}

static void emoji(void)
{
	static const struct range pics[] = {{0x1F600, 0x1F64F}, {0x1F300, 0x1F5FF},
					    {0x1F680, 0x1F6C5}, {0x1F90C, 0x1F9FF},
					    {0x2600, 0x26FF},	{0x2700, 0x27BF}};
	static const uint32_t people[] = {0x1F468, 0x1F469, 0x1F467, 0x1F466, 0x1F9D1,
					  0x1F44D, 0x1F44B, 0x1F64B, 0x1F3C3, 0x1F575};
	switch (rn(7)) {
	case 0: /* a family: people joined by ZWJ, some with skin tones */
	{
		int n = 2 + (int)rn(3);
		for (int i = 0; i < n; i++) {
			if (i)
				cp(0x200D);
			cp(people[rn(N(people))]);
			if (chance(40))
				cp(0x1F3FB + rn(5));
		}
		break;
	}
	case 1: /* a flag */
		cp(0x1F1E6 + rn(26));
		cp(0x1F1E6 + rn(26));
		break;
	case 2: /* a keycap */
		cp("0123456789#*"[rn(12)]);
		cp(0xFE0F);
		cp(0x20E3);
		break;
	case 3: /* skin tone */
		cp(people[rn(N(people))]);
		cp(0x1F3FB + rn(5));
		break;
	case 4: /* a subdivision flag with tag characters */
		cp(0x1F3F4);
		for (const char *t = chance(50) ? "gbsct" : "gbeng"; *t; t++)
			cp(0xE0000 + (uint32_t)*t);
		cp(0xE007F);
		break;
	case 5: /* text + VS16, ZWJ sequences like the rainbow flag */
		cp(chance(50) ? 0x2764 : 0x1F3F3);
		cp(0xFE0F);
		if (chance(50)) {
			cp(0x200D);
			cp(chance(50) ? 0x1F308 : 0x1F525);
		}
		break;
	default:
		cp(pick(pics, N(pics)));
		break;
	}
}

static void doc_emoji(size_t target)
{
	while (dlen < target) {
		int n = 1 + (int)rn(4);
		for (int i = 0; i < n; i++)
			emoji();
		if (chance(50)) {
			cp(' ');
			word(chance(70) ? LATIN : (int)rn(N_SCRIPTS), 1 + (int)rn(8));
		}
		if (chance(20))
			punctuation();
		if (chance(70))
			cp(chance(90) ? ' ' : '\n');
	}
}

static void doc_digits(size_t target)
{
	static const char *const sep[] = {" ", ",", ".", "-",  "/", ":", "$",	"%",
					  "+", "e", "x", "\n", " ", " ", "abc", "_"};
	int len = 1;
	while (dlen < target) {
		digits_run(chance(85) ? len : 1 + (int)rn(300));
		len = len % 64 + 1;
		if (chance(15))
			word(LATIN, 1 + (int)rn(4));
		puts_(sep[rn(N(sep))]);
	}
}

static void doc_crlf(size_t target)
{
	static const char *const nl[] = {
	    "\n",     "\r",	"\r\n",	    "\n\n",  "\r\n\r\n", " \n",	   "\n ",   "\t\n",
	    " \r\n ", "\n\n\n", "\r\r",	    "\n\r",  ".\n",	 "/\n",	   "}\r\n", "  \n  ",
	    "\n\t\t", ";\n\n",	"\xc2\x85", ",\r\n", "!\n\n",	 "/\r\n/", "\n \n"};
	while (dlen < target) {
		if (chance(60))
			word(chance(70) ? LATIN : (int)rn(N_SCRIPTS), 1 + (int)rn(8));
		else if (chance(50))
			digits_run(1 + (int)rn(4));
		else
			punctuation();
		int n = 1 + (int)rn(3);
		for (int i = 0; i < n; i++)
			puts_(nl[rn(N(nl))]);
		if (chance(30))
			some_space();
	}
}

static void doc_contractions(size_t target)
{
	static const char *const tails[] = {"s", "t", "re", "ve", "m", "ll", "d"};
	static const char *const quote[] = {"'", "'", "'", "'", "\xe2\x80\x99", "''", "`"};
	while (dlen < target) {
		switch (rn(6)) {
		case 0:
			digits_run(1 + (int)rn(4));
			break;
		case 1:
			punctuation();
			break;
		case 2:
			break;
		default:
			word(chance(80) ? LATIN : (int)rn(N_SCRIPTS), 1 + (int)rn(7));
			break;
		}
		puts_(quote[rn(N(quote))]);
		if (chance(8)) {
			cp(chance(50) ? 0x17F : 0x212A); /* long s, Kelvin sign */
		} else {
			const char *t = tails[rn(N(tails))];
			for (; *t; t++) {
				char c = *t;
				cp(chance(50) ? (uint32_t)(c - 'a' + 'A') : (uint32_t)c);
			}
		}
		if (chance(30))
			word(LATIN, 1 + (int)rn(3));
		if (chance(80))
			cp(chance(85) ? ' ' : spaces[rn(N(spaces))]);
	}
}

static void ident(void)
{
	static const char *const parts[] = {"get",  "set",   "value", "buf",  "len", "i",
					    "node", "parse", "token", "x",    "tmp", "count",
					    "Next", "HTTP",  "Id",    "json", "_",   "ptr"};
	int n = 1 + (int)rn(3);
	int style = (int)rn(3);
	for (int i = 0; i < n; i++) {
		if (i && style == 1)
			puts_("_");
		const char *p = parts[rn(N(parts))];
		if (style == 2)
			for (; *p; p++)
				cp((uint32_t)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p));
		else
			puts_(p);
	}
	if (chance(20))
		digits_run(1 + (int)rn(2));
}

static void doc_code(size_t target)
{
	static const char *const ops[] = {
	    " = ",  " == ", " === ", " != ", " !== ", " += ", " -= ", " <= ", " >= ", " => ",
	    "->",   "::",   " && ",  " || ", " << ",  " >> ", " ** ", "++",   "--",   ".",
	    ", ",   "(",    ")",     "[",    "]",     " { ",  "}",    ";",    ": ",   " ? ",
	    "!",    "&",    "*",     " // ", " # ",   "/* ",  " */",  "\"",   "'",    "\\n",
	    "\\\"", "%d",   "0x1F",  "1e-9", "3.14",  "</",   "/>",   "@",    "$",    "`"};
	static const char *const kw[] = {"if",	   "for",    "while", "return", "def",
					 "const",  "let",    "int",   "static", "void",
					 "struct", "import", "fn",    "None",	"null",
					 "true",   "else",   "elif",  "self"};
	int depth = 0;
	while (dlen < target) {
		int indent = depth * (chance(50) ? 4 : 2);
		if (chance(20))
			for (int i = 0; i < depth; i++)
				puts_("\t");
		else
			for (int i = 0; i < indent; i++)
				puts_(" ");
		int n = 1 + (int)rn(8);
		for (int i = 0; i < n; i++) {
			if (chance(25)) {
				puts_(kw[rn(N(kw))]);
				puts_(" ");
			}
			ident();
			puts_(ops[rn(N(ops))]);
		}
		if (chance(5))
			puts_("https://example.com/path/to?q=1&x=%20y#frag");
		if (chance(5))
			puts_("/usr/local/bin/quern-tokenize");
		if (chance(30)) {
			puts_(" {");
			depth = depth < 6 ? depth + 1 : depth;
		} else if (chance(30) && depth > 0) {
			depth--;
		}
		puts_(chance(10) ? "\r\n" : chance(10) ? "\n\n" : "\n");
		if (chance(5))
			puts_("    \n");
	}
}

static void doc_specials(size_t target)
{
	static const char *const sp[] = {"<|endoftext|>",
					 "<|fim_prefix|>",
					 "<|fim_middle|>",
					 "<|fim_suffix|>",
					 "<|endofprompt|>",
					 "<|endoftext|",
					 "<|endoftext",
					 "<||>",
					 "< |endoftext|>",
					 "<|ENDOFTEXT|>",
					 "<|endoftext|><|endoftext|>",
					 "<|im_start|>",
					 "<|endoftext|>\n",
					 " <|endoftext|> ",
					 "<<|endoftext|>>",
					 "<|endofprompt|>x"};
	while (dlen < target) {
		if (chance(70)) {
			word(chance(80) ? LATIN : (int)rn(N_SCRIPTS), 1 + (int)rn(8));
			if (chance(60))
				puts_(" ");
		}
		puts_(sp[rn(N(sp))]);
		if (chance(40))
			puts_(" ");
	}
}

static void doc_random(size_t target)
{
	while (dlen < target) {
		uint32_t c;
		switch (rn(6)) {
		case 0:
			c = rn(0x80);
			break;
		case 1:
			c = rn(0x800);
			break;
		case 2:
		case 3:
			c = rn(0x10000);
			break;
		case 4:
			c = 0x10000 + rn(0x20000);
			break;
		default:
			c = rn(0x110000);
			break;
		}
		cp(c);
		if (chance(10))
			cp(' ');
	}
}

/* A run of `len` bytes that no pattern splits at a space. */
static void doc_long(size_t len, int kind)
{
	static const uint32_t repeat[] = {'a', 'Z',  '.',    '0',     0xE9, 0x4E2D,
					  ' ', '\n', 0x0301, 0x1F600, '\'', '-'};
	uint32_t r = repeat[rn(N(repeat))];
	size_t start = dlen;
	while (dlen - start < len) {
		switch (kind) {
		case 0:
			cp(pick(latin_lower, 3));
			break;
		case 1:
			cp(r);
			break;
		case 2:
			word(LATIN, 1); /* mixed case */
			break;
		case 3:
			cp(pick(cyr_lower, N(cyr_lower)));
			break;
		case 4: {
			const char *q;
			do
				q = punct[rn(N(punct))];
			while (strchr(q, ' '));
			puts_(q);
			break;
		}
		case 5:
			digits_run(1);
			break;
		case 6:
			cp(pick(cjk, N(cjk)));
			break;
		default: { /* anything but White_Space */
			uint32_t c = rn(0x30000);
			int ws = 0;
			for (size_t i = 0; i < N(spaces); i++)
				ws |= spaces[i] == c;
			if (!ws)
				cp(c);
			break;
		}
		}
	}
}

static void write_doc(void)
{
	static char hex[] = "0123456789abcdef";
	putchar('"');
	for (size_t i = 0; i < dlen; i++) {
		unsigned char c = (unsigned char)doc[i];
		if (c == '"' || c == '\\') {
			putchar('\\');
			putchar(c);
		} else if (c < 0x20) {
			fputs("\\u00", stdout);
			putchar(hex[c >> 4]);
			putchar(hex[c & 15]);
		} else {
			putchar(c);
		}
	}
	putchar('"');
	putchar('\n');
}

int main(int argc, char **argv)
{
	size_t total = 0, target, longlen = 100000, next_long = 0;
	int o, nlong = 0;

	while ((o = getopt(argc, argv, "s:l:")) != -1) {
		if (o == 's')
			rng ^= strtoull(optarg, NULL, 0) * 0x9E3779B97F4A7C15ULL;
		else if (o == 'l')
			longlen = strtoull(optarg, NULL, 0);
		else
			goto usage;
	}
	if (optind + 1 != argc)
		goto usage;
	target = strtoull(argv[optind], NULL, 0);
	init_known();
	next_long = 600000;
	while (total < target) {
		size_t size = 20 + (chance(80) ? rn(600) : rn(6000));
		dlen = 0;
		if (longlen && (total >= next_long || (nlong < 2 && total + size >= target))) {
			doc_long(longlen, nlong % 8);
			nlong++;
			next_long = total + 1200000;
		} else {
			switch (rn(13)) {
			case 0:
			case 1:
			case 2:
				doc_prose(size);
				break;
			case 3:
				doc_whitespace(size);
				break;
			case 4:
				doc_combining(size);
				break;
			case 5:
				doc_emoji(size);
				break;
			case 6:
				doc_digits(size);
				break;
			case 7:
				doc_crlf(size);
				break;
			case 8:
				doc_contractions(size);
				break;
			case 9:
			case 10:
				doc_code(size);
				break;
			case 11:
				doc_specials(size);
				break;
			default:
				doc_random(size);
				break;
			}
		}
		write_doc();
		total += dlen;
	}
	if (fflush(stdout) || ferror(stdout)) {
		perror("gen_tokcorpus: write");
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: gen_tokcorpus [-s SEED] [-l LONG] BYTES\n");
	return 2;
}
