/* test_lang.c - unit tests for clean/lang (CLD2 language identification). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "lang.h"

static const char en[] = "The library opens at nine in the morning and closes late on Thursdays. "
			 "Most visitors come for the reading room on the second floor, where the "
			 "windows look out over the river. Children are welcome, and there is a "
			 "small garden behind the building where people eat their lunch when the "
			 "weather is good.";

static const char de[] =
    "Die Bibliothek öffnet um neun Uhr morgens und schließt donnerstags erst "
    "spät am Abend. Die meisten Besucher kommen wegen des Lesesaals im zweiten "
    "Stock, dessen Fenster auf den Fluss hinausgehen. Kinder sind willkommen, "
    "und hinter dem Gebäude gibt es einen kleinen Garten, in dem man bei gutem "
    "Wetter zu Mittag essen kann.";

static const char fr[] = "La bibliothèque ouvre à neuf heures du matin et ferme tard le jeudi. "
			 "La plupart des visiteurs viennent pour la salle de lecture du deuxième "
			 "étage, dont les fenêtres donnent sur la rivière. Les enfants sont les "
			 "bienvenus, et il y a un petit jardin derrière le bâtiment où l'on peut "
			 "déjeuner quand il fait beau.";

static const char es[] = "La biblioteca abre a las nueve de la mañana y cierra tarde los jueves. "
			 "La mayoría de los visitantes vienen por la sala de lectura del segundo "
			 "piso, cuyas ventanas dan al río. Los niños son bienvenidos, y detrás del "
			 "edificio hay un pequeño jardín donde la gente almuerza cuando hace buen "
			 "tiempo.";

static const char ja[] =
    "図書館は朝九時に開き、木曜日は夜遅くまで開いています。ほとんどの利用者は"
    "二階の閲覧室を目当てに来ます。その窓からは川が見えます。子どもも歓迎されて"
    "おり、建物の裏には小さな庭があって、天気の良い日にはそこで昼食をとる人も"
    "います。";

static const char zh[] =
    "图书馆早上九点开门，星期四晚上很晚才关门。大多数读者是为了二楼的阅览室而来，"
    "那里的窗户正对着河流。欢迎孩子们来这里看书。图书馆后面有一个小花园，天气好的"
    "时候，人们会在那里吃午饭。";

static const char ru[] = "Библиотека открывается в девять часов утра, а по четвергам закрывается "
			 "поздно вечером. Большинство посетителей приходят ради читального зала на "
			 "втором этаже, окна которого выходят на реку. Детям здесь рады, а за "
			 "зданием есть небольшой сад, где в хорошую погоду люди обедают.";

static struct cn_lang got;

static const char *detect_n(const char *s, size_t len, size_t max)
{
	memset(&got, 0x5a, sizeof got);
	if (cn_lang_detect(s, len, max, &got) < 0)
		return "(error)";
	return got.code;
}

static const char *detect(const char *s)
{
	return detect_n(s, strlen(s), 0);
}

static void check_lang(const char *what, const char *text, const char *code)
{
	char name[64];

	snprintf(name, sizeof name, "%s detected", what);
	CHECK_STR(name, detect(text), code);
	snprintf(name, sizeof name, "%s reliable", what);
	CHECK_NAMED(name, got.reliable == 1);
	snprintf(name, sizeof name, "%s score high", what);
	CHECK_NAMED(name, got.score >= 0.8 && got.score <= 1.0);
	snprintf(name, sizeof name, "%s has a name", what);
	CHECK_NAMED(name, got.name && got.name[0]);
}

static void test_languages(void)
{
	check_lang("english", en, "en");
	CHECK_STR("english name", got.name, "ENGLISH");
	check_lang("german", de, "de");
	check_lang("french", fr, "fr");
	check_lang("spanish", es, "es");
	check_lang("japanese", ja, "ja");
	check_lang("chinese", zh, "zh");
	check_lang("russian", ru, "ru");
}

static void test_unknown(void)
{
	CHECK_STR("empty", detect(""), "un");
	CHECK(got.score == 0 && got.reliable == 0);
	CHECK_STR("empty name", got.name, "Unknown");
	CHECK_STR("NULL, 0", detect_n(NULL, 0, 0), "un");
	CHECK_STR("digits and punctuation", detect("1234 5678 -- 42%, (9) !!!"), "un");
	CHECK(got.score == 0);
	CHECK_STR("one word", detect("hello"), "un");
	CHECK_STR("all invalid", detect_n("\xff\xfe\xc0\x80\xed\xa0\x80", 7, 0), "un");
}

/* The English paragraph with bytes CLD2 refuses spliced between words. */
static void test_bad_bytes(void)
{
	static const char *junk[] = {
	    "\xff",	"\xc3",		"\xe2\x82",	"\xed\xa0\x80", /* surrogate */
	    "\xc0\xaf", "\xf8\x88\x80", "\x01\x1b",	"\x7f",
	    "\xc2\x85", "\xef\xb7\x90", "\xef\xbf\xbe", "\xf4\x8f\xbf\xbf",
	};
	size_t nj = sizeof junk / sizeof *junk, cap = 4 * sizeof en, n = 0, w = 0;
	char *buf = malloc(cap);

	CHECK(buf != NULL);
	if (!buf)
		return;
	for (const char *p = en; *p; p++) {
		buf[n++] = *p;
		if (*p == ' ') {
			const char *j = junk[w++ % nj];
			memcpy(buf + n, j, strlen(j));
			n += strlen(j);
		}
	}
	CHECK_STR("english with bad bytes", detect_n(buf, n, 0), "en");
	CHECK(got.reliable == 1);
	/* Each alone, after a long valid stretch (the fast scan must stop there). */
	const char *mid = strchr(en + 100, ' ');
	for (size_t i = 0; i < nj; i++) {
		char name[64];
		size_t head = (size_t)(mid - en), jl = strlen(junk[i]);
		memcpy(buf, en, head);
		memcpy(buf + head, junk[i], jl);
		strcpy(buf + head + jl, mid);
		snprintf(name, sizeof name, "english with bad bytes #%zu alone", i);
		CHECK_STR(name, detect(buf), "en");
	}
	/* Invalid from the very first byte: a prefix-only scheme would see nothing. */
	memmove(buf + 1, buf, n);
	buf[0] = (char)0x80;
	CHECK_STR("leading invalid byte", detect_n(buf, n + 1, 0), "en");
	/* A truncated sequence at the very end of the buffer. */
	size_t len = strlen(de);
	memcpy(buf, de, len);
	buf[len] = (char)0xe2;
	CHECK_STR("truncated sequence at end", detect_n(buf, len + 1, 0), "de");
	free(buf);
}

/* A buffer of English followed by German, or the reverse. */
static char *mix(const char *a, size_t alen, const char *b, size_t blen)
{
	char *buf = malloc(alen + blen);
	size_t n = 0;

	if (!buf)
		return NULL;
	while (n < alen) {
		size_t k = strlen(a);
		if (k > alen - n)
			k = alen - n;
		memcpy(buf + n, a, k);
		n += k;
	}
	while (n < alen + blen) {
		size_t k = strlen(b);
		if (k > alen + blen - n)
			k = alen + blen - n;
		memcpy(buf + n, b, k);
		n += k;
	}
	return buf;
}

static void test_max_bytes(void)
{
	char *buf = mix(en, 1000, de, 20000);

	CHECK(buf != NULL);
	if (!buf)
		return;
	CHECK_STR("first 1000 bytes english", detect_n(buf, 21000, 1000), "en");
	CHECK(got.reliable == 1);
	CHECK_STR("whole text german", detect_n(buf, 21000, 21000), "de");
	CHECK_STR("default window mostly german", detect_n(buf, 21000, 0), "de");
	free(buf);

	/* A cut inside a character goes back to its start. */
	size_t cut = 300;
	while ((ru[cut] & 0xc0) != 0x80)
		cut++;
	CHECK_STR("cut inside a character", detect_n(ru, strlen(ru), cut), "ru");
	struct cn_lang inside = got;
	CHECK_STR("cut at its start", detect_n(ru, strlen(ru), cut - 1), "ru");
	CHECK(got.score == inside.score && got.reliable == inside.reliable);
	CHECK_STR("max_bytes 1, inside the first character", detect_n(ru, strlen(ru), 1), "un");
}

/*
 * Texts placed at the very end of a page, with an inaccessible page after
 * it: a read past the end crashes here in any build, sanitizers or not
 * (CLD2 is not instrumented). CLD2 peeks at the character after a letter
 * whose script differs from the letters before it, so several texts end
 * with such a letter (Cyrillic after Latin, Arabic after Greek).
 */
static void test_guard_page(void)
{
	static const char *const ends[] = {
	    "The train reached the coast after the rain\xd0\xb6",
	    "\xd0\x9f\xd0\xbe\xd0\xb5\xd0\xb7\xd0\xb4 \xd0\xbf\xd1\x80\xd0\xb8x",
	    "\\he\x8a\x8a\x8a\x8a \xcf\xa7\xd9\x88",
	    "The train reached the coast after the rain",
	    "Der Zug erreichte die K\xc3\xbcste nach dem Regen \xc3\xbc",
	    "\xe5\x9b\xbe\xe4\xb9\xa6\xe9\xa6\x86\xe6\x97\xa9\xe4\xb8\x8a\xe4\xb9\x9d\xe7\x82\xb9",
	    "The train reached the coast \xff after the rain",
	    "The train reached the coast after the rain\xf0",
	    "x",
	};
	long pg = sysconf(_SC_PAGESIZE);
	char *map =
	    mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(map != MAP_FAILED);
	if (map == MAP_FAILED)
		return;
	CHECK(mprotect(map + pg, (size_t)pg, PROT_NONE) == 0);
	for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
		size_t n = strlen(ends[i]);
		char *p = map + pg - n, name[64];
		memcpy(p, ends[i], n);
		snprintf(name, sizeof name, "no read past the end #%zu", i);
		CHECK_NAMED(name, cn_lang_detect(p, n, 0, &got) == 0);
		if (n > 1) /* a window one byte short: the byte after it is readable */
			CHECK_NAMED(name, cn_lang_detect(p, n, n - 1, &got) == 0);
	}
	munmap(map, 2 * (size_t)pg);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * 5 MB: English for the default window, German after it. English proves
 * that only the window was read; the time bound is a loose safety net (a
 * full scan takes tens of milliseconds; the window, well under one).
 */
static void test_huge(void)
{
	size_t big = 5 << 20;
	char *buf = mix(en, CN_LANG_MAX_BYTES, de, big - CN_LANG_MAX_BYTES);

	CHECK(buf != NULL);
	if (!buf)
		return;
	double t0 = now();
	CHECK_STR("5 MB, default window", detect_n(buf, big, 0), "en");
	double t = now() - t0;
	CHECK_NAMED("5 MB returns quickly (< 1 s)", t < 1.0);
	if (t >= 1.0)
		printf("  took %.3f s\n", t);
	CHECK_STR("5 MB, whole text", detect_n(buf, big, big), "de");
	free(buf);
}

static const char *const texts[] = {en, de, fr, es, ja, zh, ru};
static const char *const codes[] = {"en", "de", "fr", "es", "ja", "zh", "ru"};

static void *worker(void *arg)
{
	long bad = 0;
	(void)arg;
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
			struct cn_lang l;
			if (cn_lang_detect(texts[i], strlen(texts[i]), 0, &l) < 0 ||
			    strcmp(l.code, codes[i]) || !l.reliable)
				bad++;
		}
	}
	return (void *)bad;
}

static void test_threads(void)
{
	pthread_t th[8];
	long bad = 0;
	int started = 0;

	for (int i = 0; i < 8; i++)
		if (pthread_create(&th[i], NULL, worker, NULL) == 0)
			started++;
		else
			break;
	for (int i = 0; i < started; i++) {
		void *r;
		pthread_join(th[i], &r);
		bad += (long)r;
	}
	CHECK(started == 8);
	CHECK_NAMED("8 threads agree with the answers", bad == 0);
}

int main(void)
{
	test_languages();
	test_unknown();
	test_bad_bytes();
	test_max_bytes();
	test_guard_page();
	test_huge();
	test_threads();
	return CHECK_DONE();
}
