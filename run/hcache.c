/* hcache.c - see hcache.h. */
#include "hcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "hash.h"
#include "wr.h"

#define MAGIC "QRHCACH1"
#define HEADER 24 /* magic, count, xxh3 of the records */
#define MAX_ENTRIES (1u << 20)
#define RACY_NS 2000000000LL

struct rec {
	uint64_t dev, ino, size;
	int64_t mtime;
	unsigned char sha[32];
};

struct rn_hcache {
	char *path;
	struct rec *r;
	unsigned char *used; /* looked up or added since open */
	size_t n, cap;
	uint32_t *slot; /* open addressing: index + 1, 0 = empty */
	size_t nslot;
	int dirty, threads;
	uint64_t hits, misses;
};

static uint64_t key_hash(const struct rec *r)
{
	return qn_mix64(r->dev ^
			qn_mix64(r->ino ^ qn_mix64(r->size ^ qn_mix64((uint64_t)r->mtime))));
}

static int same_key(const struct rec *a, const struct rec *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime == b->mtime;
}

static int rehash(struct rn_hcache *c, size_t nslot)
{
	uint32_t *s = calloc(nslot, sizeof *s);
	if (!s)
		return -1;
	for (size_t i = 0; i < c->n; i++) {
		size_t h = key_hash(&c->r[i]) & (nslot - 1);
		while (s[h])
			h = (h + 1) & (nslot - 1);
		s[h] = (uint32_t)i + 1;
	}
	free(c->slot);
	c->slot = s;
	c->nslot = nslot;
	return 0;
}

static long find(const struct rn_hcache *c, const struct rec *k)
{
	if (!c->nslot)
		return -1;
	size_t h = key_hash(k) & (c->nslot - 1);
	while (c->slot[h]) {
		const struct rec *r = &c->r[c->slot[h] - 1];
		if (same_key(r, k))
			return (long)c->slot[h] - 1;
		h = (h + 1) & (c->nslot - 1);
	}
	return -1;
}

static int insert(struct rn_hcache *c, const struct rec *k)
{
	long i = find(c, k);
	if (i >= 0) {
		c->r[i] = *k;
		c->used[i] = 1;
		return 0;
	}
	if (c->n >= UINT32_MAX - 1)
		return -1;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		struct rec *r = realloc(c->r, cap * sizeof *r);
		if (!r)
			return -1;
		c->r = r;
		unsigned char *u = realloc(c->used, cap);
		if (!u)
			return -1;
		c->used = u;
		c->cap = cap;
	}
	c->r[c->n] = *k;
	c->used[c->n] = 1;
	c->n++;
	if (c->n * 2 > c->nslot) {
		if (rehash(c, c->nslot ? c->nslot * 2 : 2048) < 0)
			return -1;
	} else {
		size_t h = key_hash(k) & (c->nslot - 1);
		while (c->slot[h])
			h = (h + 1) & (c->nslot - 1);
		c->slot[h] = (uint32_t)c->n;
	}
	c->dirty = 1;
	return 0;
}

static void load(struct rn_hcache *c)
{
	int fd = open(c->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	unsigned char h[HEADER];
	uint64_t n, sum;

	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size < HEADER || read(fd, h, HEADER) != HEADER ||
	    memcmp(h, MAGIC, 8))
		goto out;
	memcpy(&n, h + 8, 8);
	memcpy(&sum, h + 16, 8);
	if (n > MAX_ENTRIES || (uint64_t)st.st_size != HEADER + n * sizeof(struct rec))
		goto out;
	c->r = malloc((n ? n : 1) * sizeof *c->r);
	c->used = calloc(n ? n : 1, 1);
	if (!c->r || !c->used)
		goto bad;
	size_t want = n * sizeof *c->r, got = 0;
	while (got < want) {
		ssize_t k = read(fd, (char *)c->r + got, want - got);
		if (k <= 0)
			goto bad;
		got += (size_t)k;
	}
	if (qn_xxh3_64(c->r, want, 0) != sum)
		goto bad;
	c->n = c->cap = n;
	size_t ns = 2048;
	while (ns < n * 2)
		ns *= 2;
	if (rehash(c, ns) < 0)
		goto bad;
	goto out;
bad:
	free(c->r);
	free(c->used);
	c->r = NULL;
	c->used = NULL;
	c->n = c->cap = 0;
out:
	close(fd);
}

struct rn_hcache *rn_hcache_open(const char *path, int threads)
{
	struct rn_hcache *c = calloc(1, sizeof *c);

	if (!c || !(c->path = strdup(path))) {
		free(c);
		return NULL;
	}
	c->threads = threads < 1 ? 1 : threads;
	load(c);
	return c;
}

int rn_hcache_save(struct rn_hcache *c, struct qn_err *e)
{
	if (!c || !c->dirty)
		return 0;
	/* keep everything used this time; older entries while there is room */
	size_t keep = 0;
	for (size_t i = 0; i < c->n; i++)
		keep += c->used[i];
	size_t room = keep < MAX_ENTRIES ? MAX_ENTRIES - keep : 0, k = 0;
	unsigned char *buf = malloc(HEADER + (c->n ? c->n : 1) * sizeof(struct rec));
	if (!buf)
		return qn_errf(e, "cannot save the hash cache: out of memory");
	struct rec *out = (struct rec *)(buf + HEADER);
	for (size_t i = 0; i < c->n; i++) {
		if (c->used[i])
			out[k++] = c->r[i];
		else if (room) {
			out[k++] = c->r[i];
			room--;
		}
	}
	uint64_t n = k, sum = qn_xxh3_64(out, k * sizeof *out, 0);
	memcpy(buf, MAGIC, 8);
	memcpy(buf + 8, &n, 8);
	memcpy(buf + 16, &sum, 8);
	int rc = qn_write_file_atomic(c->path, buf, HEADER + k * sizeof *out, e);
	free(buf);
	if (rc == 0)
		c->dirty = 0;
	return rc;
}

void rn_hcache_free(struct rn_hcache *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->r);
	free(c->used);
	free(c->slot);
	free(c);
}

void rn_hcache_stats(const struct rn_hcache *c, uint64_t *hits, uint64_t *misses)
{
	*hits = c ? c->hits : 0;
	*misses = c ? c->misses : 0;
}

static void key_of(const struct stat *st, struct rec *k)
{
	memset(k, 0, sizeof *k);
	k->dev = (uint64_t)st->st_dev;
	k->ino = (uint64_t)st->st_ino;
	k->size = (uint64_t)st->st_size;
	k->mtime = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static void unhex(const char *hex, unsigned char out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v = 0;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
}

static void tohex(const unsigned char in[32], char hex[65])
{
	static const char d[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = d[in[i] >> 4];
		hex[2 * i + 1] = d[in[i] & 15];
	}
	hex[64] = 0;
}

/* One file to hash: its path, its stat key and, once hashed, the result. */
struct job {
	char *rel; /* relative to the folder (or the path itself) */
	struct stat st;
	char sha[65];
	int have;      /* sha known */
	int cacheable; /* read without changing, old enough */
	int err;
	char msg[256];
};

/* Hashes an open file; whether it stayed the same while read. */
static int hash_fd(int fd, const char *name, char hex[65], const struct stat *before, int *stable,
		   struct qn_err *e)
{
	static __thread char buf[1 << 18];
	struct qn_sha256 s;
	ssize_t n;
	struct stat after;

	if (qn_sha256_init(&s) < 0)
		return qn_errf(e, "cannot hash '%s': out of memory", name);
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			qn_sha256_release(&s);
			return qn_errno(e, errno, "cannot read '%s'", name);
		}
		qn_sha256_update(&s, buf, (size_t)n);
	}
	qn_sha256_final(&s, hex);
	*stable = fstat(fd, &after) == 0 && after.st_size == before->st_size &&
		  after.st_mtim.tv_sec == before->st_mtim.tv_sec &&
		  after.st_mtim.tv_nsec == before->st_mtim.tv_nsec;
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Hashes one file named by path (dirfd-relative name for messages). */
static void hash_job(const char *base, struct job *j)
{
	char full[8192];
	struct qn_err e;
	int stable = 0;

	if (base)
		snprintf(full, sizeof full, "%s/%s", base, j->rel);
	else
		snprintf(full, sizeof full, "%s", j->rel);
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		j->err = 1;
		snprintf(j->msg, sizeof j->msg, "cannot open '%.200s': %.30s", full,
			 strerror(errno));
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || hash_fd(fd, full, j->sha, &st, &stable, &e) < 0) {
		j->err = 1;
		snprintf(j->msg, sizeof j->msg, "cannot read '%.200s'", full);
		close(fd);
		return;
	}
	close(fd);
	j->st = st; /* the key is what was read */
	j->have = 1;
	j->cacheable = stable;
}

struct pool {
	const char *base;
	struct job *jobs;
	size_t *todo, ntodo;
	atomic_size_t next;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->ntodo)
			return NULL;
		hash_job(p->base, &p->jobs[p->todo[i]]);
	}
}

/* Fills every job's sha from the cache or by reading it. */
static int resolve(struct rn_hcache *c, const char *base, struct job *jobs, size_t n,
		   struct qn_err *e)
{
	size_t *todo = malloc((n ? n : 1) * sizeof *todo), ntodo = 0;
	int64_t t0 = now_ns();

	if (!todo)
		return qn_errf(e, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct rec k;
		key_of(&jobs[i].st, &k);
		long at = find(c, &k);
		if (at >= 0) {
			tohex(c->r[at].sha, jobs[i].sha);
			jobs[i].have = 1;
			c->used[at] = 1;
			c->hits++;
		} else {
			todo[ntodo++] = i;
		}
	}
	c->misses += ntodo;
	struct pool p = {base, jobs, todo, ntodo, 0};
	int nt = c->threads;
	if ((size_t)nt > ntodo / 4 + 1)
		nt = (int)(ntodo / 4 + 1);
	pthread_t th[64];
	int started = 0;
	if (nt > 64)
		nt = 64;
	for (int t = 1; t < nt; t++)
		if (pthread_create(&th[started], NULL, worker, &p) == 0)
			started++;
	worker(&p);
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	int rc = 0;
	for (size_t i = 0; i < ntodo; i++) {
		struct job *j = &jobs[todo[i]];
		if (j->err) {
			if (rc == 0)
				qn_errf(e, "%s", j->msg);
			rc = -1;
			continue;
		}
		struct rec k;
		key_of(&j->st, &k);
		if (j->cacheable && k.mtime < t0 - RACY_NS) {
			unhex(j->sha, k.sha);
			if (insert(c, &k) < 0 && rc == 0)
				rc = qn_errf(e, "out of memory");
		}
	}
	free(todo);
	return rc;
}

/* --- folders ------------------------------------------------------------------ */

struct list {
	struct job *v;
	size_t n, cap;
};

static int is_manifest(const char *name)
{
	size_t n = strlen(name);
	return n >= 14 && !strcmp(name + n - 14, ".manifest.json");
}

static int walk(const char *root, const char *rel, struct list *l, int depth, struct qn_err *e)
{
	char dirpath[8192];
	DIR *d;
	struct dirent *de;

	if (depth > 64)
		return qn_errf(e, "'%s/%s': folders nested too deep", root, rel);
	if (*rel)
		snprintf(dirpath, sizeof dirpath, "%s/%s", root, rel);
	else
		snprintf(dirpath, sizeof dirpath, "%s", root);
	if (!(d = opendir(dirpath)))
		return qn_errno(e, errno, "cannot open folder '%s'", dirpath);
	int dfd = dirfd(d);
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		struct stat st;
		char sub[8192];
		if (!strcmp(nm, ".") || !strcmp(nm, ".."))
			continue;
		if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			closedir(d);
			return qn_errno(e, errno, "cannot stat '%s/%s'", dirpath, nm);
		}
		if (S_ISLNK(st.st_mode)) {
			if (fstatat(dfd, nm, &st, 0) < 0 || !S_ISREG(st.st_mode))
				continue; /* dangling, or a link to a folder: not followed */
		}
		if (*rel)
			snprintf(sub, sizeof sub, "%s/%s", rel, nm);
		else
			snprintf(sub, sizeof sub, "%s", nm);
		if (S_ISDIR(st.st_mode)) {
			if (walk(root, sub, l, depth + 1, e) < 0) {
				closedir(d);
				return -1;
			}
			continue;
		}
		if (!S_ISREG(st.st_mode) || is_manifest(nm))
			continue;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 256;
			struct job *v = realloc(l->v, cap * sizeof *v);
			if (!v) {
				closedir(d);
				return qn_errf(e, "out of memory");
			}
			l->v = v;
			l->cap = cap;
		}
		struct job *j = &l->v[l->n];
		memset(j, 0, sizeof *j);
		if (!(j->rel = strdup(sub))) {
			closedir(d);
			return qn_errf(e, "out of memory");
		}
		j->st = st;
		l->n++;
	}
	closedir(d);
	return 0;
}

static int job_cmp(const void *a, const void *b)
{
	return strcmp(((const struct job *)a)->rel, ((const struct job *)b)->rel);
}

int rn_hash_path(struct rn_hcache *c, const char *path, struct rn_hash *h, struct qn_err *e)
{
	struct stat st;

	memset(h, 0, sizeof *h);
	if (stat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return qn_errno(e, errno, "cannot stat '%s'", path);
	}
	h->exists = 1;
	if (!S_ISDIR(st.st_mode)) {
		struct job j;
		memset(&j, 0, sizeof j);
		j.rel = (char *)path;
		j.st = st;
		if (resolve(c, NULL, &j, 1, e) < 0)
			return -1;
		memcpy(h->sha256, j.sha, 65);
		h->size = (uint64_t)st.st_size;
		h->nfiles = 1;
		return 0;
	}
	struct list l = {0};
	int rc = walk(path, "", &l, 0, e);
	if (rc == 0) {
		qsort(l.v, l.n, sizeof *l.v, job_cmp);
		rc = resolve(c, path, l.v, l.n, e);
	}
	if (rc == 0) {
		struct qn_sha256 s;
		if (qn_sha256_init(&s) < 0) {
			rc = qn_errf(e, "out of memory");
		} else {
			for (size_t i = 0; i < l.n; i++) {
				char sz[32];
				int k = snprintf(sz, sizeof sz, "%llu",
						 (unsigned long long)l.v[i].st.st_size);
				qn_sha256_update(&s, l.v[i].rel, strlen(l.v[i].rel) + 1);
				qn_sha256_update(&s, sz, (size_t)k + 1);
				qn_sha256_update(&s, l.v[i].sha, 64);
				qn_sha256_update(&s, "\n", 1);
				h->size += (uint64_t)l.v[i].st.st_size;
			}
			qn_sha256_final(&s, h->sha256);
		}
	}
	h->dir = 1;
	h->nfiles = l.n;
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].rel);
	free(l.v);
	return rc;
}
