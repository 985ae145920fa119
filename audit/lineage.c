/*
 * lineage.c - quern-audit lineage: checks a chain of run manifests against
 * the files on disk and answers the two lineage questions, "where does
 * this artifact come from" (--artifact) and "what was made from this
 * source" (--source, an erasure request).
 *
 * The manifests become a graph of files (nodes, one per canonical path) and
 * runs (one per manifest): a run's inputs point to it, its outputs come
 * from it. docs/lineage.md states the rules this file implements: how a
 * recorded path is resolved (each manifest's paths are relative to the
 * directory its tool ran in, which is worked out from where the manifest
 * lies), when two paths count as the same file (same canonical path, or an
 * input no run produced whose content a run wrote elsewhere), and what a
 * token-shard or run directory stands for.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "cli.h"
#include "err.h"
#include "hash.h"
#include "manifests.h"

#define TREE_DEPTH_MAX 256
#define SHARDS_MAX 100000

static const char usage_text[] =
    "usage: quern-audit lineage [options] MANIFEST|DIR ...\n"
    "\n"
    "Verify a chain of run manifests against the files on disk: every input\n"
    "and output's size and SHA-256. Folders are searched for *.manifest.json\n"
    "and run.manifest.json files. Each file that changed or is missing is\n"
    "reported on stdout, one line each (exit 1).\n"
    "\n"
    "Options:\n"
    "      --artifact PATH   print the derivation tree of PATH back to its sources\n"
    "                        (repeatable)\n"
    "      --source PATH     list every artifact derived from PATH, a file or a\n"
    "                        folder, transitively: an erasure request (repeatable)\n"
    "      --no-verify       answer --artifact / --source without hashing files\n"
    "      --json            one JSON object on stdout instead of text\n"
    "  -q, --quiet           no warnings\n"
    "  -v, --verbose         also list the files that match\n"
    "  -h, --help            this help\n"
    "\n"
    "Paths are matched by canonical path, and by content (SHA-256) for inputs\n"
    "no run produced; see docs/lineage.md.\n"
    "\n"
    "Exit status: 0 everything matches, 1 a file changed or is missing, a\n"
    "manifest could not be read, or a --source / --artifact is in no manifest;\n"
    "2 usage error.\n";

/* ---- small helpers ---------------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		qn_error("out of memory");
		exit(1);
	}
	return q;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p) {
		qn_error("out of memory");
		exit(1);
	}
	return p;
}

#define PUSH(arr, n, cap, v)                                                                       \
	do {                                                                                       \
		if ((n) == (cap)) {                                                                \
			(cap) = (cap) ? 2 * (cap) : 8;                                             \
			(arr) = xrealloc((arr), (cap) * sizeof *(arr));                            \
		}                                                                                  \
		(arr)[(n)++] = (v);                                                                \
	} while (0)

/* ---- paths ------------------------------------------------------------------ */

/*
 * Lexically normalised absolute path of p (joined to base when relative):
 * no "//", "." or ".." components. Malloc'd.
 */
static char *lexical(const char *base, const char *p)
{
	size_t bl = base ? strlen(base) : 0, pl = strlen(p);
	char *s = xrealloc(NULL, bl + pl + 3), *out = xrealloc(NULL, bl + pl + 3);
	size_t n = 0;

	if (p[0] == '/' || !base)
		snprintf(s, bl + pl + 3, "/%s", p);
	else
		snprintf(s, bl + pl + 3, "%s/%s", base, p);
	out[0] = 0;
	for (char *c = s, *next; c && *c; c = next) {
		next = strchr(c, '/');
		if (next)
			*next++ = 0;
		if (!*c || !strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
			out[n] = 0;
			continue;
		}
		out[n++] = '/';
		size_t cl = strlen(c);
		memcpy(out + n, c, cl);
		n += cl;
		out[n] = 0;
	}
	if (!n) {
		out[0] = '/';
		out[1] = 0;
	}
	free(s);
	return out;
}

/*
 * The canonical path: realpath when the file exists; else its folder's
 * realpath and its name; else the lexical form.
 */
static char *canonical(const char *base, const char *p)
{
	char *lex = lexical(base, p), rp[PATH_MAX];

	if (realpath(lex, rp)) {
		free(lex);
		return xstrdup(rp);
	}
	char *slash = strrchr(lex, '/');
	if (slash && slash != lex) {
		*slash = 0;
		if (realpath(lex, rp) && strlen(rp) + strlen(slash + 1) + 2 < sizeof rp) {
			size_t rl = strcmp(rp, "/") ? strlen(rp) : 0, nl = strlen(slash + 1);
			char *out = xrealloc(NULL, rl + nl + 2);
			memcpy(out, rp, rl);
			out[rl] = '/';
			memcpy(out + rl + 1, slash + 1, nl + 1);
			free(lex);
			return out;
		}
		*slash = '/';
	}
	return lex;
}

static char *cwd_path; /* canonical working directory */

/* How a canonical path is shown: relative to the working directory when under it. */
static const char *shown(const char *canon)
{
	size_t n = strlen(cwd_path);
	if (!strcmp(cwd_path, "/"))
		return canon + 1;
	if (!strncmp(canon, cwd_path, n) && canon[n] == '/' && canon[n + 1])
		return canon + n + 1;
	return canon;
}

/* The components of relative path p, normalised ("./a//b" -> "a/b"); NULL if it climbs. */
static char *rel_norm(const char *p)
{
	if (p[0] == '/')
		return NULL;
	char *lex = lexical("/", p);
	/* ".." that climbs above the start cannot be anchored. */
	for (const char *c = p; *c; c++)
		if (c[0] == '.' && c[1] == '.' && (c == p || c[-1] == '/') &&
		    (!c[2] || c[2] == '/')) {
			free(lex);
			return NULL;
		}
	memmove(lex, lex + 1, strlen(lex));
	return lex;
}

/* When dir ends with the components rel, the folder above them (malloc'd); else NULL. */
static char *strip_suffix(const char *dir, const char *rel)
{
	size_t dl = strlen(dir), rl = strlen(rel);
	if (!rl || rl >= dl || strcmp(dir + dl - rl, rel) || dir[dl - rl - 1] != '/')
		return NULL;
	size_t keep = dl - rl - 1;
	char *b = xrealloc(NULL, keep + 2);
	memcpy(b, dir, keep);
	b[keep] = 0;
	if (!keep)
		strcpy(b, "/");
	return b;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* ---- the graph ----------------------------------------------------------------- */

struct hex256 {
	char s[65];
};

struct node {
	char *path; /* canonical */
	/* on disk, filled on first use */
	int statted, exists, isdir, hashed, hash_failed;
	int64_t size;
	char sha[65];
	struct hex256 *bad; /* recorded hashes already reported as changed */
	size_t nbad, capbad;
	int missing_reported;
	/* graph */
	size_t *prod, nprod, capprod;	 /* runs that wrote it */
	size_t *alias, nalias, capalias; /* outputs with its content (it has no producer) */
	/* queries */
	int taint, seen, matched;
};

/* A recorded file of a run, with the node it resolved to. */
struct entry {
	struct am_file f;
	size_t node;
	const char *claim; /* who recorded the hash: the manifest, or a shard manifest */
};

struct run {
	char *canon; /* the manifest's canonical path */
	struct am_manifest m;
	char *base;	 /* the folder the tool ran in, as worked out */
	char *dir;	 /* the run's folder, for DIR/run.manifest.json */
	char *shardsman; /* canonical DIR/manifest.json of implied shard outputs */
	struct entry *in, *out;
	size_t nin, nout, capout;
	int taint;
};

static struct node *nodes;
static size_t nnodes, capnodes;
static struct run *runs;
static size_t nruns, capruns;

/* path -> node index, open addressing */
static size_t *tab, tabcap;

static uint64_t hstr(const char *s)
{
	return qn_xxh3_64(s, strlen(s), 0);
}

static void tab_grow(void)
{
	size_t ncap = tabcap ? tabcap * 2 : 1024;
	size_t *nt = xrealloc(NULL, ncap * sizeof *nt);
	for (size_t i = 0; i < ncap; i++)
		nt[i] = SIZE_MAX;
	for (size_t i = 0; i < tabcap; i++)
		if (tab[i] != SIZE_MAX) {
			size_t h = hstr(nodes[tab[i]].path) & (ncap - 1);
			while (nt[h] != SIZE_MAX)
				h = (h + 1) & (ncap - 1);
			nt[h] = tab[i];
		}
	free(tab);
	tab = nt;
	tabcap = ncap;
}

static size_t node_find(const char *canon)
{
	if (!tabcap)
		return SIZE_MAX;
	for (size_t h = hstr(canon) & (tabcap - 1);; h = (h + 1) & (tabcap - 1)) {
		if (tab[h] == SIZE_MAX)
			return SIZE_MAX;
		if (!strcmp(nodes[tab[h]].path, canon))
			return tab[h];
	}
}

/* The node of canon (taken over). */
static size_t node_get(char *canon)
{
	size_t i = node_find(canon);
	if (i != SIZE_MAX) {
		free(canon);
		return i;
	}
	if (2 * (nnodes + 1) > tabcap)
		tab_grow();
	struct node n = {.path = canon, .size = -1};
	PUSH(nodes, nnodes, capnodes, n);
	size_t h = hstr(canon) & (tabcap - 1);
	while (tab[h] != SIZE_MAX)
		h = (h + 1) & (tabcap - 1);
	tab[h] = nnodes - 1;
	return nnodes - 1;
}

static void node_stat(struct node *n)
{
	struct stat st;
	if (n->statted)
		return;
	n->statted = 1;
	if (stat(n->path, &st) == 0) {
		n->exists = 1;
		n->isdir = S_ISDIR(st.st_mode);
		n->size = (int64_t)st.st_size;
	}
}

/* Hashes a node's file once; -1 (message in e) when it cannot be read. */
static int node_hash(struct node *n, struct qn_err *e)
{
	uint64_t size;
	if (n->hashed)
		return n->hash_failed ? qn_errf(e, "cannot read '%s'", shown(n->path)) : 0;
	n->hashed = 1;
	if (qn_sha256_file(n->path, n->sha, &size, e) < 0) {
		n->hash_failed = 1;
		return -1;
	}
	return 0;
}

/* ---- loading ------------------------------------------------------------------- */

static int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

/*
 * The folder the run's tool ran in. Candidates: folders the manifest's
 * own place implies (DIR/out.manifest.json beside its output "sub/out",
 * DIR/run.manifest.json for outputs "DIR/..." or an argument naming DIR),
 * then the working directory, then the manifest's folder. The one under
 * which most recorded relative paths exist wins; ties go to the earlier.
 */
static char *find_base(const struct run *r, const char *mdir)
{
	char **cand = NULL;
	size_t nc = 0, cc = 0;
	const char *mname = base_name(r->canon);

	for (size_t i = 0; i < r->m.nout; i++) {
		char *rel = rel_norm(r->m.out[i].path), *b = NULL;
		if (!rel)
			continue;
		char *slash = strrchr(rel, '/');
		size_t bl = strlen(base_name(rel));
		int beside =
		    !strncmp(mname, base_name(rel), bl) && !strcmp(mname + bl, ".manifest.json");
		if (slash) {
			*slash = 0;
			if (beside || !strcmp(mname, "run.manifest.json"))
				b = strip_suffix(mdir, rel);
		} else if (beside) {
			b = xstrdup(mdir);
		}
		if (b)
			PUSH(cand, nc, cc, b);
		free(rel);
	}
	json_t *argv = json_object_get(r->m.root, "argv");
	for (size_t i = 1; json_is_array(argv) && i < json_array_size(argv) && i < 4096; i++) {
		json_t *a = json_array_get(argv, i);
		if (!json_is_string(a) || json_string_value(a)[0] == '-' ||
		    json_string_length(a) >= AM_PATH_MAX)
			continue;
		char *rel = rel_norm(json_string_value(a)), *b;
		if (rel && (b = strip_suffix(mdir, rel)))
			PUSH(cand, nc, cc, b);
		free(rel);
	}
	PUSH(cand, nc, cc, xstrdup(cwd_path));
	PUSH(cand, nc, cc, xstrdup(mdir));

	size_t best = 0;
	long best_score = -1;
	for (size_t c = 0; c < nc; c++) {
		long score = 0;
		for (size_t k = 0; k < r->m.nin + r->m.nout; k++) {
			const char *p =
			    k < r->m.nin ? r->m.in[k].path : r->m.out[k - r->m.nin].path;
			if (p[0] == '/')
				continue;
			char *l = lexical(cand[c], p);
			score += access(l, F_OK) == 0;
			free(l);
		}
		if (score > best_score) {
			best_score = score;
			best = c;
		}
	}
	char *b = cand[best];
	for (size_t c = 0; c < nc; c++)
		if (c != best)
			free(cand[c]);
	free(cand);
	return b;
}

/*
 * quern-tokenize encode writes DIR/run.manifest.json with no outputs: the
 * shard directory is its output. Its manifest.json lists every shard with
 * its size and SHA-256, so those become the run's outputs, checked like any.
 */
static void implied_shards(struct run *r, const char *mdir)
{
	size_t cap = 0;
	char *p = lexical(mdir, "manifest.json");
	json_t *root;
	struct qn_err e;

	if (r->m.nout || strcmp(base_name(r->canon), "run.manifest.json") ||
	    am_json_load(p, &root, &e) < 0) {
		free(p);
		return;
	}
	if (am_detect(root) != AM_SHARDS) {
		json_decref(root);
		free(p);
		return;
	}
	r->shardsman = p;
	struct entry d = {.f = {.path = xstrdup(p), .size = -1}, .claim = NULL};
	PUSH(r->out, r->nout, cap, d);
	json_t *sh = json_object_get(root, "shards");
	for (size_t i = 0; json_is_array(sh) && i < json_array_size(sh) && i < SHARDS_MAX; i++) {
		json_t *o = json_array_get(sh, i), *f = json_object_get(o, "file"),
		       *h = json_object_get(o, "sha256"), *b = json_object_get(o, "bytes");
		/* A shard is a plain name inside DIR. */
		if (!json_is_string(f) || strchr(json_string_value(f), '/') ||
		    !strcmp(json_string_value(f), "..") || json_string_length(f) >= 256)
			continue;
		struct entry x = {.f = {.path = lexical(mdir, json_string_value(f)), .size = -1}};
		if (json_is_integer(b) && json_integer_value(b) >= 0)
			x.f.size = (int64_t)json_integer_value(b);
		if (json_is_string(h) && am_is_sha256(json_string_value(h)))
			memcpy(x.f.sha256, json_string_value(h), 65);
		x.claim = r->shardsman;
		PUSH(r->out, r->nout, cap, x);
	}
	r->capout = cap;
	json_decref(root);
}

static int load_manifest(const char *path)
{
	struct qn_err e;
	char rp[PATH_MAX];
	struct run r = {0};

	if (!realpath(path, rp)) {
		qn_error("cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < nruns; i++)
		if (!strcmp(runs[i].canon, rp))
			return 0;
	if (am_manifest_load(&r.m, path, &e) < 0) {
		qn_error("%s", e.msg);
		am_manifest_release(&r.m);
		return -1;
	}
	r.canon = xstrdup(rp);
	char *mdir = xstrdup(rp);
	*strrchr(mdir, '/') = 0;
	if (!mdir[0])
		strcpy(mdir, "/");
	if (!strcmp(base_name(rp), "run.manifest.json"))
		r.dir = xstrdup(mdir);
	r.base = find_base(&r, mdir);
	r.in = xrealloc(NULL, r.m.nin * sizeof *r.in);
	for (size_t i = 0; i < r.m.nin; i++)
		r.in[i] = (struct entry){.f = r.m.in[i],
					 .node = node_get(canonical(r.base, r.m.in[i].path))};
	if (r.m.nout) {
		r.out = xrealloc(NULL, r.m.nout * sizeof *r.out);
		for (size_t i = 0; i < r.m.nout; i++)
			r.out[i] = (struct entry){
			    .f = r.m.out[i], .node = node_get(canonical(r.base, r.m.out[i].path))};
		r.nout = r.m.nout;
	} else {
		implied_shards(&r, mdir);
		for (size_t i = 0; i < r.nout; i++)
			r.out[i].node = node_get(canonical(NULL, r.out[i].f.path));
	}
	r.nin = r.m.nin;
	free(mdir);
	PUSH(runs, nruns, capruns, r);
	return 0;
}

/* Producers, and content links for inputs no run produced. */
struct shaent {
	const char *sha;
	size_t node;
};

static int cmp_shaent(const void *a, const void *b)
{
	const struct shaent *x = a, *y = b;
	int c = strcmp(x->sha, y->sha);
	return c ? c : (x->node > y->node) - (x->node < y->node);
}

static void add_unique(size_t **v, size_t *n, size_t *cap, size_t x)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i] == x)
			return;
	PUSH(*v, *n, *cap, x);
}

static void link_graph(void)
{
	struct shaent *se = NULL;
	size_t nse = 0, cse = 0;

	for (size_t r = 0; r < nruns; r++)
		for (size_t i = 0; i < runs[r].nout; i++) {
			struct node *n = &nodes[runs[r].out[i].node];
			add_unique(&n->prod, &n->nprod, &n->capprod, r);
			/* An empty file's hash links everything empty: not content. */
			if (runs[r].out[i].f.sha256[0] && runs[r].out[i].f.size != 0) {
				struct shaent s = {runs[r].out[i].f.sha256, runs[r].out[i].node};
				PUSH(se, nse, cse, s);
			}
		}
	qsort(se, nse, sizeof *se, cmp_shaent);
	for (size_t r = 0; r < nruns; r++)
		for (size_t i = 0; i < runs[r].nin; i++) {
			struct entry *x = &runs[r].in[i];
			struct node *n = &nodes[x->node];
			if (n->nprod || !x->f.sha256[0] || x->f.size == 0 || !nse)
				continue;
			struct shaent key = {x->f.sha256, 0};
			size_t lo = 0, hi = nse;
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (cmp_shaent(&se[mid], &key) < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (; lo < nse && !strcmp(se[lo].sha, x->f.sha256); lo++)
				if (se[lo].node != x->node)
					add_unique(&n->alias, &n->nalias, &n->capalias,
						   se[lo].node);
		}
	free(se);
}

/* ---- verification ------------------------------------------------------------------ */

struct report {
	int json;
	json_t *changed, *missing, *unreadable;
	size_t problems, files, checked;
};

static const char *run_name(const struct run *r)
{
	return shown(r->canon);
}

static void verify_entry(struct report *rep, const struct run *r, const struct entry *x)
{
	struct node *n = &nodes[x->node];
	const char *claim = x->claim ? shown(x->claim) : run_name(r);
	struct qn_err e;

	rep->checked++;
	node_stat(n);
	if (!n->exists) {
		if (n->missing_reported)
			return;
		n->missing_reported = 1;
		rep->problems++;
		if (rep->json)
			json_array_append_new(
			    rep->missing,
			    json_pack("{s:s,s:s}", "path", shown(n->path), "manifest", claim));
		else
			printf("missing: %s (manifest %s)\n", shown(n->path), claim);
		return;
	}
	if (!x->f.sha256[0] && x->f.size < 0)
		return;
	for (size_t i = 0; i < n->nbad; i++)
		if (!strcmp(n->bad[i].s, x->f.sha256))
			return;
	char why[256] = "";
	if (n->isdir) {
		if (!x->f.sha256[0])
			return;
		snprintf(why, sizeof why, "says sha256 %s, it is a directory", x->f.sha256);
	} else if (x->f.size >= 0 && x->f.size != n->size) {
		snprintf(why, sizeof why, "says %lld bytes, file has %lld", (long long)x->f.size,
			 (long long)n->size);
	} else if (x->f.sha256[0]) {
		if (node_hash(n, &e) < 0) {
			if (n->hash_failed == 1) {
				n->hash_failed = 2;
				rep->problems++;
				if (rep->json)
					json_array_append_new(rep->unreadable,
							      json_pack("{s:s,s:s}", "path",
									shown(n->path), "error",
									e.msg));
				else
					printf("unreadable: %s (%s)\n", shown(n->path), e.msg);
			}
			return;
		}
		if (!strcmp(n->sha, x->f.sha256)) {
			qn_info("ok: %s", shown(n->path));
			return;
		}
		snprintf(why, sizeof why, "says sha256 %s, file has %s", x->f.sha256, n->sha);
	} else {
		return;
	}
	struct hex256 bad;
	memcpy(bad.s, x->f.sha256, sizeof bad.s);
	PUSH(n->bad, n->nbad, n->capbad, bad);
	rep->problems++;
	if (rep->json) {
		json_t *o = json_pack("{s:s,s:s}", "path", shown(n->path), "manifest", claim);
		json_object_set_new(o, "recorded_sha256",
				    x->f.sha256[0] ? json_string(x->f.sha256) : json_null());
		json_object_set_new(o, "recorded_size",
				    x->f.size >= 0 ? json_integer(x->f.size) : json_null());
		json_object_set_new(o, "sha256",
				    n->hashed && !n->hash_failed && !n->isdir ? json_string(n->sha)
									      : json_null());
		json_object_set_new(o, "size", n->isdir ? json_null() : json_integer(n->size));
		json_array_append_new(rep->changed, o);
	} else {
		printf("changed: %s (manifest %s %s)\n", shown(n->path), claim, why);
	}
}

static void verify(struct report *rep)
{
	/* Outputs first: a changed file is named against the run that wrote it. */
	for (size_t r = 0; r < nruns; r++)
		for (size_t i = 0; i < runs[r].nout; i++)
			verify_entry(rep, &runs[r], &runs[r].out[i]);
	for (size_t r = 0; r < nruns; r++)
		for (size_t i = 0; i < runs[r].nin; i++)
			verify_entry(rep, &runs[r], &runs[r].in[i]);
	for (size_t i = 0; i < nnodes; i++)
		rep->files += nodes[i].statted;
}

/* ---- --artifact: the tree back to the sources --------------------------------------- */

static const char *run_label(const struct run *r, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s", r->m.tool, r->m.command ? " " : "",
		 r->m.command ? r->m.command : "");
	return buf;
}

static json_t *tree(size_t ni, int depth, int json)
{
	struct node *n = &nodes[ni];
	char label[160];
	json_t *o = json ? json_pack("{s:s}", "path", shown(n->path)) : NULL;

	if (depth > TREE_DEPTH_MAX) {
		if (json)
			json_object_set_new(o, "truncated", json_true());
		else
			printf("%*s%s  ...\n", 2 * depth, "", shown(n->path));
		return o;
	}
	if (!n->nprod && !n->nalias) {
		if (json)
			json_object_set_new(o, "source", json_true());
		else
			printf("%*s%s  (source)\n", 2 * depth, "", shown(n->path));
		return o;
	}
	if (n->seen) {
		if (json)
			json_object_set_new(o, "see_above", json_true());
		else
			printf("%*s%s  (see above)\n", 2 * depth, "", shown(n->path));
		return o;
	}
	n->seen = 1;
	json_t *prods = json ? json_array() : NULL;
	for (size_t p = 0; p < n->nprod; p++) {
		const struct run *r = &runs[n->prod[p]];
		json_t *ins = json ? json_array() : NULL;
		if (!json)
			printf("%*s%s  <- %s (manifest %s)\n", 2 * depth, "", shown(n->path),
			       run_label(r, label, sizeof label), run_name(r));
		if (!r->nin && !json)
			printf("%*s(no inputs recorded)\n", 2 * depth + 2, "");
		for (size_t i = 0; i < r->nin; i++) {
			json_t *c = tree(r->in[i].node, depth + 1, json);
			if (json)
				json_array_append_new(ins, c);
		}
		if (json)
			json_array_append_new(
			    prods, json_pack("{s:s,s:s?,s:s,s:o}", "tool", r->m.tool, "command",
					     r->m.command, "manifest", run_name(r), "inputs", ins));
	}
	json_t *al = json ? json_array() : NULL;
	for (size_t a = 0; a < n->nalias; a++) {
		if (!json)
			printf("%*s%s  = same content as %s\n", 2 * depth, "", shown(n->path),
			       shown(nodes[n->alias[a]].path));
		json_t *c = tree(n->alias[a], depth + 1, json);
		if (json)
			json_array_append_new(al, c);
	}
	if (json) {
		json_object_set_new(o, "produced_by", prods);
		json_object_set_new(o, "same_content_as", al);
	}
	return o;
}

/*
 * The nodes a command-line PATH names: its canonical path; with a folder,
 * every node under it; with a regular non-empty file, every node recorded
 * with its content.
 */
static size_t match_path(const char *arg, int by_content)
{
	char *c = canonical(cwd_path, arg);
	size_t cl = strlen(c), count = 0;
	struct stat st;
	char sha[65] = "";
	struct qn_err e;
	uint64_t size;
	int isdir = stat(c, &st) == 0 && S_ISDIR(st.st_mode);

	if (by_content && !isdir && stat(c, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    qn_sha256_file(c, sha, &size, &e) < 0)
		sha[0] = 0;
	for (size_t i = 0; i < nnodes; i++) {
		const char *p = nodes[i].path;
		if (!strcmp(p, c) || (isdir && !strncmp(p, c, cl) && (p[cl] == '/' || cl == 1))) {
			nodes[i].matched = 1;
			count++;
		}
	}
	if (sha[0])
		for (size_t r = 0; r < nruns; r++)
			for (size_t k = 0; k < runs[r].nin + runs[r].nout; k++) {
				struct entry *x = k < runs[r].nin ? &runs[r].in[k]
								  : &runs[r].out[k - runs[r].nin];
				if (!strcmp(x->f.sha256, sha) && !nodes[x->node].matched) {
					nodes[x->node].matched = 1;
					count++;
				}
			}
	free(c);
	return count;
}

static void clear_marks(void)
{
	for (size_t i = 0; i < nnodes; i++)
		nodes[i].matched = nodes[i].taint = nodes[i].seen = 0;
	for (size_t r = 0; r < nruns; r++)
		runs[r].taint = 0;
}

static int artifact(const char *arg, json_t *out)
{
	clear_marks();
	if (!match_path(arg, 1)) {
		qn_error("'%s' is in no manifest", arg);
		return -1;
	}
	/* The matched node a run produced first, else the first matched. */
	size_t best = SIZE_MAX;
	for (size_t i = 0; i < nnodes; i++)
		if (nodes[i].matched &&
		    (best == SIZE_MAX || (!nodes[best].nprod && nodes[i].nprod)))
			best = i;
	json_t *t = tree(best, 0, out != NULL);
	if (out)
		json_array_append_new(out, t);
	return 0;
}

/* ---- --source: everything derived from it ----------------------------------------- */

static const char *kind_of(const struct run *r, const char *path)
{
	if (has_suffix(path, ".qsh") || (r->shardsman && !strcmp(path, r->shardsman)))
		return "shards";
	if (!strcmp(r->m.tool, "quern-ingest") || !strcmp(r->m.tool, "quern-clean"))
		return "documents";
	if (!strcmp(r->m.tool, "quern-tokenize"))
		return "shards";
	if (!strcmp(r->m.tool, "quern-train"))
		return "checkpoint";
	return "file";
}

struct derived {
	const char *path; /* canonical */
	const char *kind;
	size_t run;
};

static int cmp_derived(const void *a, const void *b)
{
	return strcmp(((const struct derived *)a)->path, ((const struct derived *)b)->path);
}

static int source(const char *arg, json_t *out)
{
	char label[160];

	clear_marks();
	if (!match_path(arg, 1)) {
		qn_error("'%s' is in no manifest", arg);
		return -1;
	}
	for (size_t i = 0; i < nnodes; i++)
		nodes[i].taint = nodes[i].matched;
	for (int changed = 1; changed;) {
		changed = 0;
		for (size_t r = 0; r < nruns; r++) {
			if (runs[r].taint)
				continue;
			for (size_t i = 0; i < runs[r].nin && !runs[r].taint; i++)
				runs[r].taint = nodes[runs[r].in[i].node].taint;
			if (!runs[r].taint)
				continue;
			changed = 1;
			for (size_t i = 0; i < runs[r].nout; i++)
				nodes[runs[r].out[i].node].taint = 1;
		}
		/* A copy of a derived file is derived. */
		for (size_t i = 0; i < nnodes; i++)
			for (size_t a = 0; a < nodes[i].nalias && !nodes[i].taint; a++)
				if (nodes[nodes[i].alias[a]].taint)
					changed = nodes[i].taint = 1;
	}
	struct derived *d = NULL;
	size_t nd = 0, cd = 0;
	for (size_t r = 0; r < nruns; r++) {
		if (!runs[r].taint)
			continue;
		for (size_t i = 0; i < runs[r].nout; i++) {
			struct node *n = &nodes[runs[r].out[i].node];
			if (n->matched || n->seen)
				continue;
			n->seen = 1;
			struct derived x = {n->path, kind_of(&runs[r], n->path), r};
			PUSH(d, nd, cd, x);
		}
		/* DIR/run.manifest.json speaks for DIR: checkpoints, metrics, ... */
		if (runs[r].dir) {
			struct derived x = {runs[r].dir, "directory", r};
			PUSH(d, nd, cd, x);
		}
	}
	for (size_t i = 0; i < nnodes; i++)
		if (nodes[i].taint && nodes[i].nalias && !nodes[i].matched && !nodes[i].seen) {
			nodes[i].seen = 1;
			struct derived x = {nodes[i].path, "copy", SIZE_MAX};
			PUSH(d, nd, cd, x);
		}
	qsort(d, nd, sizeof *d, cmp_derived);
	json_t *jd = out ? json_array() : NULL, *jm = out ? json_array() : NULL;
	if (!out)
		printf("source: %s (%zu derived)\n", arg, nd);
	for (size_t i = 0; i < nd; i++) {
		const struct run *r = d[i].run == SIZE_MAX ? NULL : &runs[d[i].run];
		const char *p = shown(d[i].path);
		int dir = !strcmp(d[i].kind, "directory");
		if (out) {
			json_t *o = json_pack("{s:s,s:s}", "path", p, "kind", d[i].kind);
			if (r) {
				json_object_set_new(o, "tool", json_string(r->m.tool));
				json_object_set_new(o, "command",
						    r->m.command ? json_string(r->m.command)
								 : json_null());
				json_object_set_new(o, "manifest", json_string(run_name(r)));
			}
			json_array_append_new(jd, o);
		} else if (r) {
			printf("derived: %s%s (%s; %s, manifest %s)\n", p, dir ? "/" : "",
			       d[i].kind, run_label(r, label, sizeof label), run_name(r));
		} else {
			printf("derived: %s (copy of a derived file)\n", p);
		}
	}
	for (size_t r = 0; r < nruns && out; r++)
		if (runs[r].taint)
			json_array_append_new(jm, json_string(run_name(&runs[r])));
	if (out) {
		json_t *src = json_array();
		for (size_t i = 0; i < nnodes; i++)
			if (nodes[i].matched)
				json_array_append_new(src, json_string(shown(nodes[i].path)));
		json_array_append_new(out, json_pack("{s:s,s:o,s:o,s:o}", "source", arg, "matched",
						     src, "derived", jd, "runs", jm));
	}
	free(d);
	return 0;
}

/* ---- main -------------------------------------------------------------------------- */

static void free_all(void)
{
	for (size_t r = 0; r < nruns; r++) {
		if (!runs[r].m.nout)
			for (size_t i = 0; i < runs[r].nout; i++)
				free(runs[r].out[i].f.path);
		free(runs[r].in);
		free(runs[r].out);
		free(runs[r].canon);
		free(runs[r].base);
		free(runs[r].dir);
		free(runs[r].shardsman);
		am_manifest_release(&runs[r].m);
	}
	free(runs);
	for (size_t i = 0; i < nnodes; i++) {
		free(nodes[i].path);
		free(nodes[i].bad);
		free(nodes[i].prod);
		free(nodes[i].alias);
	}
	free(nodes);
	free(tab);
	free(cwd_path);
	runs = NULL;
	nodes = NULL;
	tab = NULL;
	cwd_path = NULL;
	nruns = capruns = nnodes = capnodes = tabcap = 0;
}

enum { OPT_ARTIFACT = 256, OPT_SOURCE, OPT_NO_VERIFY, OPT_JSON };

static const struct option longopts[] = {
    {"artifact", required_argument, NULL, OPT_ARTIFACT},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
    {"json", no_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int lineage_main(int argc, char **argv)
{
	const char **arts = NULL, **srcs = NULL;
	size_t narts = 0, cap_a = 0, nsrcs = 0, cap_s = 0;
	int json = 0, no_verify = 0, c, rc = 0;
	char cwd[PATH_MAX];

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qvh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_ARTIFACT:
			PUSH(arts, narts, cap_a, optarg);
			break;
		case OPT_SOURCE:
			PUSH(srcs, nsrcs, cap_s, optarg);
			break;
		case OPT_NO_VERIFY:
			no_verify = 1;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'v':
			qn_verbosity++;
			break;
		case 'h':
			fputs(usage_text, stdout);
			free(arts);
			free(srcs);
			return qn_close_stdout(0);
		case ':':
			free(arts);
			free(srcs);
			return qn_usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			free(arts);
			free(srcs);
			return qn_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		free(arts);
		free(srcs);
		return qn_usage_error("lineage needs at least one MANIFEST or folder");
	}
	if (!getcwd(cwd, sizeof cwd)) {
		qn_error("cannot find the working directory: %s", strerror(errno));
		free(arts);
		free(srcs);
		return 1;
	}
	cwd_path = canonical(NULL, cwd);
	for (int i = optind; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			char **found = NULL;
			size_t nfound = 0;
			struct qn_err e;
			if (am_find_manifests(argv[i], &found, &nfound, &e) < 0) {
				qn_error("%s", e.msg);
				rc = 1;
			}
			if (!nfound)
				qn_warn("no manifests in '%s'", argv[i]);
			for (size_t k = 0; k < nfound; k++) {
				if (load_manifest(found[k]) < 0)
					rc = 1;
				free(found[k]);
			}
			free(found);
		} else if (load_manifest(argv[i]) < 0) {
			rc = 1;
		}
	}
	if (!nruns) {
		qn_error("no manifest could be read");
		free_all();
		free(arts);
		free(srcs);
		return 1;
	}
	link_graph();

	struct report rep = {.json = json};
	json_t *root = NULL;
	if (json) {
		root = json_object();
		rep.changed = json_array();
		rep.missing = json_array();
		rep.unreadable = json_array();
	}
	if (!no_verify)
		verify(&rep);
	if (rep.problems)
		rc = 1;
	json_t *jart = json ? json_array() : NULL, *jsrc = json ? json_array() : NULL;
	for (size_t i = 0; i < narts; i++) {
		if (!json && (i || rep.problems))
			putchar('\n');
		if (artifact(arts[i], jart) < 0)
			rc = 1;
	}
	for (size_t i = 0; i < nsrcs; i++) {
		if (!json && (i || narts || rep.problems))
			putchar('\n');
		if (source(srcs[i], jsrc) < 0)
			rc = 1;
	}
	if (json) {
		json_t *ms = json_array();
		for (size_t r = 0; r < nruns; r++) {
			const struct run *x = &runs[r];
			json_array_append_new(
			    ms, json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:I,s:I}", "path", run_name(x),
					  "tool", x->m.tool, "command", x->m.command, "started",
					  x->m.started, "finished", x->m.finished, "inputs",
					  (json_int_t)x->nin, "outputs", (json_int_t)x->nout));
		}
		json_object_set_new(root, "manifests", ms);
		json_object_set_new(root, "verified", json_boolean(!no_verify));
		json_object_set_new(root, "files", json_integer((json_int_t)rep.files));
		json_object_set_new(root, "changed", rep.changed);
		json_object_set_new(root, "missing", rep.missing);
		json_object_set_new(root, "unreadable", rep.unreadable);
		json_object_set_new(root, "ok", json_boolean(rc == 0));
		json_object_set_new(root, "artifacts", jart);
		json_object_set_new(root, "sources", jsrc);
		if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0)
			putchar('\n');
		json_decref(root);
	}
	if (!no_verify)
		qn_info("%zu manifests, %zu files: %zu problems", nruns, rep.files, rep.problems);
	free_all();
	free(arts);
	free(srcs);
	return qn_close_stdout(rc);
}
