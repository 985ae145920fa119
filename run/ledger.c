/* ledger.c - see ledger.h. */
#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "hash.h"
#include "wr.h"

#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"
#define SUFFIX_LEN 75 /* ,"hash":"<64>"} */
#define MAX_LINE (16u << 20)

/* Fills e like qn_errf and returns 1: the ledger is readable but broken. */
static int broken(struct qn_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int broken(struct qn_err *e, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
	}
	return 1;
}

static void paths(const char *dir, char *ledger, char *head, size_t n)
{
	snprintf(ledger, n, "%s/ledger.jsonl", dir);
	snprintf(head, n, "%s/ledger.head", dir);
}

/* Splits a line into its hashed prefix and hash; 0 or -1 when malformed. */
static int split(const char *line, size_t len, size_t *plen, char hex[65])
{
	static const char pre[] = ",\"hash\":\"";
	if (len < SUFFIX_LEN + 2)
		return -1;
	const char *s = line + len - SUFFIX_LEN;
	if (memcmp(s, pre, 9) || memcmp(line + len - 2, "\"}", 2))
		return -1;
	for (int i = 0; i < 64; i++) {
		char c = s[9 + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
		hex[i] = c;
	}
	hex[64] = 0;
	*plen = len - SUFFIX_LEN;
	return 0;
}

/* The last line of fd's file (without its newline), malloc'd; NULL when empty. */
static char *last_line(int fd, struct qn_err *e, int *err)
{
	struct stat st;
	*err = 0;
	if (fstat(fd, &st) < 0) {
		*err = 1;
		qn_errno(e, errno, "cannot stat the ledger");
		return NULL;
	}
	off_t end = st.st_size;
	if (end == 0)
		return NULL;
	size_t chunk = 1 << 16;
	for (;;) {
		off_t start = end > (off_t)chunk ? end - (off_t)chunk : 0;
		size_t n = (size_t)(end - start);
		char *buf = malloc(n + 1);
		if (!buf || pread(fd, buf, n, start) != (ssize_t)n) {
			free(buf);
			*err = 1;
			qn_errf(e, "cannot read the ledger");
			return NULL;
		}
		buf[n] = 0;
		size_t stop = n;
		if (stop && buf[stop - 1] == '\n')
			stop--;
		char *nl = NULL;
		for (size_t i = stop; i-- > 0;)
			if (buf[i] == '\n') {
				nl = buf + i;
				break;
			}
		if (nl || start == 0) {
			size_t from = nl ? (size_t)(nl - buf) + 1 : 0;
			char *line = strndup(buf + from, stop - from);
			free(buf);
			if (!line) {
				*err = 1;
				qn_errf(e, "out of memory");
			}
			return line;
		}
		free(buf);
		if (chunk >= MAX_LINE) {
			*err = 1;
			qn_errf(e, "the ledger's last line is longer than %u bytes", MAX_LINE);
			return NULL;
		}
		chunk *= 4;
	}
}

int rn_ledger_append(const char *dir, json_t *rec, struct qn_err *e)
{
	char lp[4096], hp[4096], prev[65], hex[65];
	long seq = 0;
	int err, rc = -1;

	paths(dir, lp, hp, sizeof lp);
	int fd = open(lp, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return qn_errno(e, errno, "cannot open '%s'", lp);
	if (flock(fd, LOCK_EX) < 0) {
		qn_errno(e, errno, "cannot lock '%s'", lp);
		goto out;
	}
	memcpy(prev, ZERO64, 65);
	char *last = last_line(fd, e, &err);
	if (err)
		goto out;
	if (last) {
		size_t plen;
		json_error_t je;
		if (split(last, strlen(last), &plen, prev) < 0) {
			free(last);
			qn_errf(e, "'%s': the last record is damaged (quern-run verify-ledger)",
				lp);
			goto out;
		}
		last[plen] = '}';
		last[plen + 1] = 0;
		json_t *j = json_loads(last, 0, &je);
		free(last);
		seq = j ? (long)json_integer_value(json_object_get(j, "seq")) : 0;
		json_decref(j);
		if (seq <= 0) {
			qn_errf(e, "'%s': the last record is damaged (quern-run verify-ledger)",
				lp);
			goto out;
		}
	}
	json_t *o = json_object();
	if (!o) {
		qn_errf(e, "out of memory");
		goto out;
	}
	json_object_set_new(o, "seq", json_integer(seq + 1));
	json_object_set_new(o, "prev", json_string(prev));
	const char *k;
	json_t *v;
	json_object_foreach(rec, k, v)
	{
		if (strcmp(k, "seq") && strcmp(k, "prev") && strcmp(k, "hash"))
			json_object_set(o, k, v);
	}
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!text) {
		qn_errf(e, "out of memory");
		goto out;
	}
	size_t n = strlen(text) - 1; /* without the closing brace */
	qn_sha256_hex(text, n, hex);
	char *line = malloc(n + SUFFIX_LEN + 2);
	if (!line) {
		free(text);
		qn_errf(e, "out of memory");
		goto out;
	}
	memcpy(line, text, n);
	free(text);
	int m = snprintf(line + n, SUFFIX_LEN + 2, ",\"hash\":\"%s\"}\n", hex);
	size_t total = n + (size_t)m, done = 0;
	while (done < total) {
		ssize_t w = write(fd, line + done, total - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			qn_errno(e, errno, "cannot write '%s'", lp);
			free(line);
			goto out;
		}
		done += (size_t)w;
	}
	free(line);
	if (fsync(fd) < 0) {
		qn_errno(e, errno, "cannot write '%s'", lp);
		goto out;
	}
	char head[100];
	int hn = snprintf(head, sizeof head, "%ld %s\n", seq + 1, hex);
	rc = qn_write_file_atomic(hp, head, (size_t)hn, e);
out:
	close(fd); /* drops the flock */
	return rc;
}

int rn_ledger_verify(const char *dir, long *records, struct qn_err *e)
{
	char lp[4096], hp[4096], prev[65], hex[65], want[65];
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long n = 0;
	int rc = 0;

	*records = 0;
	paths(dir, lp, hp, sizeof lp);
	if (!(f = fopen(lp, "rb"))) {
		if (errno == ENOENT && access(hp, F_OK) < 0)
			return 0; /* no runs yet */
		if (errno == ENOENT)
			return broken(e, "'%s' is missing but '%s' records runs", lp, hp);
		return qn_errno(e, errno, "cannot open '%s'", lp);
	}
	memcpy(prev, ZERO64, 65);
	while ((len = getline(&line, &cap, f)) > 0) {
		n++;
		size_t l = (size_t)len, plen;
		if (line[l - 1] != '\n') {
			rc = broken(e, "%s:%ld: record %ld is cut short (no newline)", lp, n, n);
			goto out;
		}
		line[--l] = 0;
		if (split(line, l, &plen, hex) < 0) {
			rc = broken(e, "%s:%ld: record %ld has no well-formed hash", lp, n, n);
			goto out;
		}
		qn_sha256_hex(line, plen, want);
		if (strcmp(want, hex)) {
			rc = broken(e, "%s:%ld: record %ld was edited (its hash does not match)",
				    lp, n, n);
			goto out;
		}
		line[plen] = '}';
		line[plen + 1] = 0;
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);
		const char *p = j ? json_string_value(json_object_get(j, "prev")) : NULL;
		long seq = j ? (long)json_integer_value(json_object_get(j, "seq")) : 0;
		int chain = p && !strcmp(p, prev);
		json_decref(j);
		if (!j) {
			rc = broken(e, "%s:%ld: record %ld is not JSON", lp, n, n);
			goto out;
		}
		if (!chain || seq != n) {
			rc = broken(e,
				    "%s:%ld: record %ld does not follow record %ld (a record was "
				    "removed, inserted or moved)",
				    lp, n, n, n - 1);
			goto out;
		}
		memcpy(prev, hex, 65);
	}
	if (ferror(f)) {
		rc = qn_errno(e, errno, "cannot read '%s'", lp);
		goto out;
	}
	*records = n;
	{
		char buf[128] = "";
		FILE *h = fopen(hp, "rb");
		long hs = -1;
		char hh[65] = "";
		if (h) {
			if (fgets(buf, sizeof buf, h) && sscanf(buf, "%ld %64s", &hs, hh) != 2)
				hs = -1;
			fclose(h);
		}
		if (n == 0 && !h)
			goto out;
		if (!h) {
			rc = broken(e, "'%s' is missing", hp);
		} else if (hs != n || strcmp(hh, n ? prev : ZERO64)) {
			rc = broken(e,
				    "%s: the ledger ends at record %ld but its head names record "
				    "%ld (records were removed from the end, or the head edited)",
				    lp, n, hs);
		}
	}
out:
	free(line);
	fclose(f);
	return rc;
}

int rn_ledger_each(const char *dir, int (*fn)(json_t *rec, void *ctx), void *ctx, struct qn_err *e)
{
	char lp[4096], hp[4096];
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	paths(dir, lp, hp, sizeof lp);
	if (!(f = fopen(lp, "rb")))
		return errno == ENOENT ? 0 : qn_errno(e, errno, "cannot open '%s'", lp);
	while (getline(&line, &cap, f) > 0) {
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);
		if (!j)
			continue;
		rc = fn(j, ctx);
		json_decref(j);
		if (rc)
			break;
	}
	free(line);
	fclose(f);
	return rc;
}
