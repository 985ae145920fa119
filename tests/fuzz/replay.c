/*
 * replay.c - runs a libFuzzer target over saved inputs without libFuzzer,
 * so `make test` replays every corpus file (and every crash kept after a
 * fix) under the normal and the sanitizer builds.
 *
 *   replay_<target> DIR_OR_FILE ...   prints "PASS: <file>" per input
 *
 * A crash or sanitizer report aborts the process, which tests/run.sh counts
 * as a failure.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f) {
		printf("FAIL: cannot open %s\n", path);
		return 1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *b = realloc(buf, cap);
			if (!b) {
				fclose(f);
				free(buf);
				printf("FAIL: out of memory reading %s\n", path);
				return 1;
			}
			buf = b;
		}
		size_t k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	printf("PASS: %s\n", path);
	fflush(stdout);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	int bad = 0, seen = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			printf("FAIL: no corpus at %s\n", argv[i]);
			bad = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i]);
			seen++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		char **names = NULL;
		size_t n = 0;
		while (d && (de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char **v = realloc(names, (n + 1) * sizeof *v);
			if (!v)
				break;
			names = v;
			names[n++] = strdup(de->d_name);
		}
		if (d)
			closedir(d);
		qsort(names, n, sizeof *names, cmp);
		for (size_t k = 0; k < n; k++) {
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
			bad |= run_file(path);
			seen++;
			free(names[k]);
		}
		free(names);
	}
	if (!seen) {
		printf("FAIL: empty corpus\n");
		bad = 1;
	}
	return bad;
}
