/* shardsel.c - see shardsel.h. */
#include "shardsel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

int qn_shardsel_parse(const char *s, unsigned *index, unsigned *count)
{
	char *end;
	unsigned long i, n;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	i = strtoul(s, &end, 10);
	if (errno || *end != '/' || end[1] < '0' || end[1] > '9')
		return -1;
	n = strtoul(end + 1, &end, 10);
	if (errno || *end || n == 0 || n > QN_SHARD_MAX || i >= n)
		return -1;
	*index = (unsigned)i;
	*count = (unsigned)n;
	return 0;
}

/* The first byte shard k owns in a stream of total bytes. */
static uint64_t bound(unsigned k, unsigned count, uint64_t total)
{
	return (uint64_t)((unsigned __int128)total * k / count);
}

/* The shard that owns byte off: the last one starting at or before it. */
static unsigned owner(uint64_t off, unsigned count, uint64_t total)
{
	unsigned lo = 0, hi = count - 1;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo + 1) / 2;
		if (bound(mid, count, total) <= off)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

void qn_shardsel_plan(unsigned index, unsigned count, size_t n, const uint64_t *size,
		      const int *splittable, struct qn_shard_part *part)
{
	uint64_t total = 0, off = 0;

	for (size_t k = 0; k < n; k++)
		total += size[k];
	uint64_t lo = bound(index, count, total);
	uint64_t hi = index + 1 == count ? UINT64_MAX : bound(index + 1, count, total);
	for (size_t k = 0; k < n; k++) {
		struct qn_shard_part *p = &part[k];
		memset(p, 0, sizeof *p);
		if (!splittable[k] || size[k] == 0) {
			p->take = p->whole = owner(off, count, total) == index;
		} else {
			uint64_t a = lo > off ? lo - off : 0;
			uint64_t b = hi <= off ? 0 : hi - off < size[k] ? hi - off : size[k];
			p->take = a < b;
			p->start = a;
			p->end = b;
		}
		off += size[k];
	}
}

int qn_shardsel_splittable_fd(int fd)
{
	unsigned char m[4];
	ssize_t n = pread(fd, m, sizeof m, 0);

	if (n == 4 && !memcmp(m, "\x28\xB5\x2F\xFD", 4))
		return 0;
	if (n >= 2 && m[0] == 0x1F && m[1] == 0x8B)
		return 0;
	return 1;
}

/* The first line start at or after pos (size when none). */
static int line_start(int fd, const char *name, uint64_t pos, uint64_t size, uint64_t *out,
		      struct qn_err *e)
{
	char buf[1 << 16];

	if (pos == 0 || pos >= size) {
		*out = pos < size ? 0 : size;
		return 0;
	}
	uint64_t at = pos - 1; /* a line starts at pos when byte pos-1 ends one */
	while (at < size) {
		ssize_t n = pread(fd, buf, sizeof buf, (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qn_errno(e, errno, "cannot read '%s'", name);
		if (n == 0)
			break;
		const char *nl = memchr(buf, '\n', (size_t)n);
		if (nl) {
			*out = at + (uint64_t)(nl - buf) + 1;
			return 0;
		}
		at += (uint64_t)n;
	}
	*out = size;
	return 0;
}

int qn_shardsel_lines(int fd, const char *name, const struct qn_shard_part *part, uint64_t *first,
		      uint64_t *last, uint64_t *lines_before, struct qn_err *e)
{
	struct stat st;
	char buf[1 << 16];

	if (fstat(fd, &st) < 0)
		return qn_errno(e, errno, "cannot read '%s'", name);
	uint64_t size = (uint64_t)st.st_size;
	if (line_start(fd, name, part->start, size, first, e) < 0 ||
	    line_start(fd, name, part->end, size, last, e) < 0)
		return -1;
	if (*last < *first)
		*last = *first;
	if (!lines_before)
		return 0;
	*lines_before = 0;
	for (uint64_t at = 0; at < *first;) {
		size_t want = *first - at < sizeof buf ? (size_t)(*first - at) : sizeof buf;
		ssize_t n = pread(fd, buf, want, (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return qn_errno(e, n < 0 ? errno : EIO, "cannot read '%s'", name);
		for (const char *p = buf, *end = buf + n; (p = memchr(p, '\n', (size_t)(end - p)));
		     p++)
			(*lines_before)++;
		at += (uint64_t)n;
	}
	return 0;
}
