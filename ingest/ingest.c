/*
 * quern-ingest - turn files into document JSON Lines.
 *
 * main() parses options, expands the inputs (files, folders walked
 * recursively in sorted order, globs, stdin), and runs one job per input on
 * a thread pool. Each job picks the input's format (extension, then
 * content), runs its reader into a per-input sink, and the jobs' output is
 * written in input order, so the result is the same for every -j. With
 * --state, files seen before with the same size, mtime or content are
 * skipped, and the state is committed together with the atomic output file
 * (see state.h). With --shard I/N only shard I's part of the inputs is
 * read (lib/shardsel.h, docs/sharding.md): JSONL files are cut at line
 * boundaries, every other input goes whole to one shard.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "cli.h"
#include "doc.h"
#include "err.h"
#include "ingest.h"
#include "manifest.h"
#include "pool.h"
#include "rd.h"
#include "shardsel.h"
#include "state.h"
#include "wr.h"

static const char usage_text[] =
	"usage: quern-ingest [options] [path ...]\n"
	"\n"
	"Extract text and metadata from HTML, XML, CSV/TSV, e-mail (eml, mbox),\n"
	"text/Markdown and JSONL into document JSON Lines. Paths may be files,\n"
	"folders (walked recursively, sorted), globs, or - for stdin; gzip and\n"
	"zstd inputs are read transparently.\n"
	"\n"
	"Output:\n"
	"  -o, --output FILE       write here (atomically; .zst compresses), not stdout\n"
	"      --manifest FILE     write the run's manifest here (default with -o:\n"
	"                          FILE.manifest.json)\n"
	"      --no-manifest       write no manifest\n"
	"  -s, --source NAME       the documents' \"source\" (default: the top folder\n"
	"                          or file name of each path)\n"
	"Formats:\n"
	"  -f, --format FMT        auto (default), html, xml, mediawiki, rss, atom, csv,\n"
	"                          tsv, eml, mbox, text, markdown, jsonl\n"
	"      --max-bytes SIZE    largest document or record (default 64M)\n"
	"HTML:\n"
	"      --full              keep all visible text, not only the main content\n"
	"      --alt               keep image alt text as [image: ...]\n"
	"XML:\n"
	"      --xpath EXPR        one document per matching node\n"
	"      --id-xpath EXPR     the document id, relative to the node\n"
	"      --text-xpath EXPR   the document text, relative to the node\n"
	"      --meta NAME=EXPR    a metadata field, relative to the node (repeatable)\n"
	"CSV/TSV:\n"
	"      --text-column NAME  the text (default: a column named text, body,\n"
	"                          content, message, description, comment or review;\n"
	"                          else every column as \"name: value\" lines)\n"
	"      --id-column NAME    the document id\n"
	"      --meta-columns LIST comma-separated columns for metadata (default: all)\n"
	"      --delimiter C       field separator (default , or tab for .tsv)\n"
	"      --quote C           quote character (default \")\n"
	"      --no-header         the first row is data; columns are col1, col2, ...\n"
	"JSONL:\n"
	"      --text-field NAME   the text field (default text)\n"
	"      --id-field NAME     the id field (default: keep \"id\", else hashed)\n"
	"E-mail:\n"
	"      --quotes MODE       quoted replies: keep (default), mark, strip\n"
	"Runs:\n"
	"  -j, --jobs N            parallel inputs (default 1; 0 = one per CPU)\n"
	"      --shard I/N         ingest only shard I of N of the inputs: JSONL files\n"
	"                          cut at line boundaries, other files whole (see\n"
	"                          docs/sharding.md); not with --state\n"
	"      --state FILE        remember ingested files (SQLite); emit only new or\n"
	"                          changed ones\n"
	"      --strict            stop at the first failed input; keep no output\n"
	"  -q, --quiet             no warnings\n"
	"  -v, --verbose           more detail\n"
	"  -h, --help              this help\n"
	"  -V, --version           the version\n"
	"\n"
	"Exit status: 0 all inputs ingested, 1 some failed (each named on stderr),\n"
	"2 usage error, 75 another run holds the --state lock.\n";

/* ---- inputs ------------------------------------------------------------ */

struct input {
	char *path;
	char *source;
};

struct inputs {
	struct input *v;
	size_t n, cap;
	uint64_t bytes;
	int missing; /* paths that named nothing */
};

static int add_input(struct inputs *in, const char *path, const char *source)
{
	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 64;
		struct input *v = realloc(in->v, cap * sizeof *v);
		if (!v)
			return -1;
		in->v = v;
		in->cap = cap;
	}
	in->v[in->n].path = strdup(path);
	in->v[in->n].source = strdup(source);
	if (!in->v[in->n].path || !in->v[in->n].source)
		return -1;
	in->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The default source name of a path: its first component, without suffixes. */
static void source_of(const char *path, char *out, size_t n)
{
	const char *p = path;

	while (p[0] == '.' && p[1] == '/')
		p += 2;
	while (*p == '/')
		p++;
	size_t k = strcspn(p, "/");
	if (k == 0) {
		snprintf(out, n, "stdin");
		return;
	}
	if (p[k] == 0) { /* a file: drop extensions */
		size_t dot = k;
		for (size_t i = 1; i < k; i++)
			if (p[i] == '.') {
				dot = i;
				break;
			}
		k = dot;
	}
	snprintf(out, n, "%.*s", (int)k, p);
}

/* Walks a folder depth-first in sorted order, skipping dot entries. */
static int walk(struct inputs *in, const char *dir, const char *source, int depth)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (depth > 64) {
		qn_error("cannot read '%s': folders nested too deeply", dir);
		in->missing++;
		return 0;
	}
	d = opendir(dir);
	if (!d) {
		qn_error("cannot open '%s': %s", dir, strerror(errno));
		in->missing++;
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **v = realloc(names, cap * sizeof *v);
			if (!v) {
				rc = -1;
				break;
			}
			names = v;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			rc = -1;
			break;
		}
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n && rc == 0; i++) {
		char path[PATH_MAX];
		struct stat st;
		size_t dl = strlen(dir);
		snprintf(path, sizeof path, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/",
			 names[i]);
		if (stat(path, &st) < 0)
			continue; /* dangling link */
		if (S_ISDIR(st.st_mode))
			rc = walk(in, path, source, depth + 1);
		else if (S_ISREG(st.st_mode)) {
			in->bytes += (uint64_t)st.st_size;
			rc = add_input(in, path, source);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int expand(struct inputs *in, const char *arg, const char *source_opt)
{
	struct stat st;
	char src[256];

	if (!strcmp(arg, "-"))
		return add_input(in, "-", source_opt ? source_opt : "stdin");
	if (stat(arg, &st) == 0) {
		source_of(arg, src, sizeof src);
		if (S_ISDIR(st.st_mode))
			return walk(in, arg, source_opt ? source_opt : src, 0);
		if (S_ISREG(st.st_mode))
			in->bytes += (uint64_t)st.st_size;
		return add_input(in, arg, source_opt ? source_opt : src);
	}
	if (strpbrk(arg, "*?[")) {
		glob_t g;
		int rc = 0;
		if (glob(arg, 0, NULL, &g) != 0) {
			qn_error("cannot open '%s': no file matches", arg);
			in->missing++;
			return 0;
		}
		for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
			rc = expand(in, g.gl_pathv[i], source_opt);
		globfree(&g);
		return rc;
	}
	qn_error("cannot open '%s': %s", arg, strerror(errno));
	in->missing++;
	return 0;
}

/* ---- format detection ------------------------------------------------- */

static const char *xml_kind(const char *p, size_t n)
{
	size_t k = n < 4096 ? n : 4096;

	if (memmem(p, k, "<mediawiki", 10))
		return "mediawiki";
	if (memmem(p, k, "<rss", 4) || memmem(p, k, "<rdf:RDF", 8))
		return "rss";
	if (memmem(p, k, "<feed", 5) && memmem(p, k, "http://www.w3.org/2005/Atom", 27))
		return "atom";
	for (size_t i = 0; i + 5 <= k; i++)
		if (p[i] == '<' && !strncasecmp(p + i, "<html", 5))
			return "html";
	return "xml";
}

static int is_header_line(const char *p, size_t n)
{
	static const char *const names[] = {"received:", "return-path:", "message-id:",
					    "from:", "mime-version:", "subject:", "date:",
					    "delivered-to:", "x-", "to:"};

	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		size_t l = strlen(names[i]);
		if (n >= l && !strncasecmp(p, names[i], l))
			return 1;
	}
	return 0;
}

static const char *detect(const char *path, const char *p, size_t n)
{
	char name[256], *ext;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	static const struct {
		const char *ext, *fmt;
	} exts[] = {
		{"html", "html"}, {"htm", "html"},     {"xhtml", "html"},   {"shtml", "html"},
		{"rss", "rss"},   {"atom", "atom"},    {"csv", "csv"},      {"tsv", "tsv"},
		{"tab", "tsv"},   {"eml", "eml"},      {"mbox", "mbox"},    {"mbx", "mbox"},
		{"txt", "text"},  {"text", "text"},    {"log", "text"},     {"rst", "text"},
		{"md", "markdown"}, {"markdown", "markdown"}, {"jsonl", "jsonl"},
		{"ndjson", "jsonl"},
	};

	snprintf(name, sizeof name, "%s", base);
	for (;;) {
		ext = strrchr(name, '.');
		if (ext && (!strcasecmp(ext, ".gz") || !strcasecmp(ext, ".zst") ||
			    !strcasecmp(ext, ".zstd"))) {
			*ext = 0;
			continue;
		}
		break;
	}
	if (ext && ext != name) {
		ext++;
		if (!strcasecmp(ext, "xml"))
			return xml_kind(p, n);
		for (size_t i = 0; i < sizeof exts / sizeof *exts; i++)
			if (!strcasecmp(ext, exts[i].ext))
				return exts[i].fmt;
	}
	/* By content. */
	size_t i = 0;
	if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		i = 3;
	while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
		i++;
	if (n - i >= 5 && !memcmp(p + i, "From ", 5))
		return "mbox";
	if (is_header_line(p + i, n - i))
		return "eml";
	if (i < n && p[i] == '<') {
		if (n - i >= 14 && !strncasecmp(p + i, "<!doctype html", 14))
			return "html";
		return xml_kind(p + i, n - i);
	}
	if (i < n && p[i] == '{')
		return "jsonl";
	return "text";
}

static const char *const formats[] = {"auto", "html", "xml",  "mediawiki", "rss",
				      "atom", "csv",  "tsv",  "eml",       "mbox",
				      "text", "markdown", "jsonl"};

/* ---- the run ------------------------------------------------------------ */

struct run {
	struct ix_opts opt;
	struct qn_wr *w;
	const char *out_name;
	struct ix_state *state;
	struct qn_manifest *man;
	struct qn_progress prog;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t next_seq; /* the job whose output may be written now */
	int write_failed;
	int strict;
	/* counters */
	uint64_t inputs, docs, failed_inputs, failed_records, repaired, unchanged, bytes;
};

struct job {
	struct run *run;
	char *path;
	const char *source;
	uint64_t seq;
	uint64_t size;
	int64_t mtime_ns;
	int regular;
	int known;        /* ix_state_lookup: 2 = seen with other size/mtime */
	char old_sha[65];
	char sha[65];
	uint64_t raw_bytes;
	int failed;       /* the whole input failed */
	int flushed;      /* part of its output is already written */
	int unchanged;
	const struct qn_shard_part *part; /* --shard: a cut JSONL file; else NULL */
	struct ix_sink sink;
};

static void write_out(struct run *r, struct qn_buf *b)
{
	struct qn_err e;

	if (b->len && !r->write_failed && qn_wr_write(r->w, b->data, b->len, &e) < 0) {
		qn_error("%s", e.msg);
		r->write_failed = 1;
	}
	qn_buf_reset(b);
}

/* Sink flush from a worker: wait for this input's turn, then write. */
static int flush_sink(struct ix_sink *s)
{
	struct job *j = s->flush_ctx;
	struct run *r = j->run;

	pthread_mutex_lock(&r->mu);
	while (r->next_seq != j->seq)
		pthread_cond_wait(&r->cv, &r->mu);
	write_out(r, &s->out);
	j->flushed = 1;
	int failed = r->write_failed;
	pthread_mutex_unlock(&r->mu);
	return failed ? -1 : 0;
}

/*
 * Opens this shard's lines of a JSONL file: from the first line starting in
 * the part to the first starting past it, numbered as in the whole file.
 */
static struct qn_rd *open_part(struct job *j, int *fd, struct qn_err *e)
{
	uint64_t first, last;
	struct qn_rd *rd = NULL;

	*fd = open(j->path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		qn_errno(e, errno, "cannot open '%s'", j->path);
		return NULL;
	}
	if (qn_shardsel_lines(*fd, j->path, j->part, &first, &last, &j->sink.line_base, e) == 0) {
		if (lseek(*fd, (off_t)first, SEEK_SET) < 0)
			qn_errno(e, errno, "cannot read '%s'", j->path);
		else if ((rd = qn_rd_fdopen(*fd, j->path, QN_RD_SHA256 | QN_RD_RAW, e)) != NULL)
			qn_rd_limit(rd, last - first);
	}
	if (!rd) {
		close(*fd);
		*fd = -1;
	}
	return rd;
}

static void *work(void *arg, void *ctx)
{
	struct job *j = arg;
	struct ix_sink *s = &j->sink;
	struct qn_err e;
	struct qn_rd *rd;
	const char *peek = "";
	size_t npeek = 0;
	const char *fmt = j->part ? "jsonl" : s->opt->format;
	int rc, part_fd = -1;

	(void)ctx;
	if (j->part)
		rd = open_part(j, &part_fd, &e);
	else
		rd = qn_rd_open(j->path, QN_RD_SHA256, &e);
	if (!rd) {
		qn_buf_printf(&s->msgs, "%s\n", e.msg);
		j->failed = 1;
		return j;
	}
	if (qn_rd_peek(rd, &peek, &npeek, &e) < 0) {
		qn_buf_printf(&s->msgs, "%s\n", e.msg);
		j->failed = 1;
		qn_rd_close(rd);
		if (part_fd >= 0)
			close(part_fd);
		return j;
	}
	if (!fmt)
		fmt = detect(strcmp(j->path, "-") ? j->path : "", peek, npeek);
	if (!strcmp(fmt, "html"))
		rc = ix_html(s, rd);
	else if (!strcmp(fmt, "xml"))
		rc = ix_xml(s, rd, NULL);
	else if (!strcmp(fmt, "mediawiki") || !strcmp(fmt, "rss") || !strcmp(fmt, "atom"))
		rc = ix_xml(s, rd, s->opt->xpath ? NULL : fmt); /* --xpath wins */
	else if (!strcmp(fmt, "csv") || !strcmp(fmt, "tsv"))
		rc = ix_csv(s, rd, !strcmp(fmt, "tsv"));
	else if (!strcmp(fmt, "eml"))
		rc = ix_eml(s, rd);
	else if (!strcmp(fmt, "mbox"))
		rc = ix_mbox(s, rd);
	else if (!strcmp(fmt, "jsonl"))
		rc = ix_jsonl(s, rd);
	else
		rc = ix_text(s, rd, fmt);
	if (rc < 0)
		j->failed = 1;
	if (qn_rd_sha256(rd, j->sha, &e) < 0) {
		qn_buf_printf(&s->msgs, "%s\n", e.msg);
		j->failed = 1;
	}
	j->raw_bytes = qn_rd_raw_bytes(rd);
	qn_rd_close(rd);
	if (part_fd >= 0)
		close(part_fd);
	/* Touched but not changed: nothing new to emit. */
	if (j->known == 2 && !j->flushed && !strcmp(j->sha, j->old_sha)) {
		j->unchanged = 1;
		qn_buf_reset(&s->out);
		s->docs = 0;
	}
	return j;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	qn_buf_release(&j->sink.out);
	qn_buf_release(&j->sink.msgs);
	free(j->path);
	free(j);
}

/* In input order, on the main thread: write, report, record. */
static int emit(void *arg, void *ctx)
{
	struct job *j = arg;
	struct run *r = ctx;
	struct ix_sink *s = &j->sink;
	int bad;

	pthread_mutex_lock(&r->mu);
	write_out(r, &s->out);
	r->next_seq++;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);

	/* Failures always show: -q only hides warnings. */
	for (char *line = s->msgs.data, *nl; line && (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = 0;
		qn_error("%s", line);
	}
	bad = j->failed || s->failed;
	r->inputs++;
	r->docs += s->docs;
	r->bytes += j->raw_bytes;
	r->repaired += s->repaired;
	r->failed_records += s->failed;
	if (j->failed)
		r->failed_inputs++;
	if (j->unchanged) {
		r->unchanged++;
		qn_info("unchanged '%s'", j->path);
	}
	if (j->sha[0])
		qn_manifest_input(r->man, j->path, j->raw_bytes, j->sha);
	/* A failed input is not remembered, so the next run tries it again. */
	if (r->state && j->regular && !j->failed && j->sha[0] &&
	    ix_state_add(r->state, j->path, j->size, j->mtime_ns, j->sha) < 0) {
		qn_error("cannot record '%s' in the state", j->path);
		r->write_failed = 1;
	}
	qn_progress_update(&r->prog, r->bytes, r->docs);
	job_free(j);
	if (r->write_failed)
		return 1;
	return r->strict && bad ? 1 : 0;
}

/* Absolute form of a path that may not exist yet (its folder must). */
static char *abs_path(const char *path)
{
	char dir[PATH_MAX], *d = strdup(path), *b = strdup(path), *out = NULL;

	if (d && b && realpath(dirname(d), dir)) {
		size_t n = strlen(dir) + strlen(path) + 2;
		out = malloc(n);
		if (out)
			snprintf(out, n, "%s/%s", dir, basename(b));
	}
	free(d);
	free(b);
	return out;
}

static void fault(const char *point)
{
	const char *f = getenv("QUERN_FAULT");

	if (f && !strcmp(f, point))
		raise(SIGKILL);
}

/* An exclusive lock beside the state database, so two cron runs never mix. */
static int lock_state(const char *state)
{
	char path[PATH_MAX];
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd;

	snprintf(path, sizeof path, "%s.lock", state);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0) {
		qn_error("cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
			qn_error("'%s' is locked by another run (pid %ld)", state, (long)fl.l_pid);
		else
			qn_error("'%s' is locked by another run", state);
		close(fd);
		return -2;
	}
	return fd;
}

enum {
	OPT_FULL = 256, OPT_ALT, OPT_XPATH, OPT_ID_XPATH, OPT_TEXT_XPATH, OPT_META,
	OPT_TEXT_COLUMN, OPT_ID_COLUMN, OPT_META_COLUMNS, OPT_DELIM, OPT_QUOTE, OPT_NO_HEADER,
	OPT_TEXT_FIELD, OPT_ID_FIELD, OPT_QUOTES, OPT_MAX_BYTES, OPT_STATE, OPT_STRICT,
	OPT_MANIFEST, OPT_NO_MANIFEST, OPT_SHARD,
};

static const struct option longopts[] = {
	{"output", required_argument, NULL, 'o'},
	{"format", required_argument, NULL, 'f'},
	{"source", required_argument, NULL, 's'},
	{"jobs", required_argument, NULL, 'j'},
	{"quiet", no_argument, NULL, 'q'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{"full", no_argument, NULL, OPT_FULL},
	{"alt", no_argument, NULL, OPT_ALT},
	{"xpath", required_argument, NULL, OPT_XPATH},
	{"id-xpath", required_argument, NULL, OPT_ID_XPATH},
	{"text-xpath", required_argument, NULL, OPT_TEXT_XPATH},
	{"meta", required_argument, NULL, OPT_META},
	{"text-column", required_argument, NULL, OPT_TEXT_COLUMN},
	{"id-column", required_argument, NULL, OPT_ID_COLUMN},
	{"meta-columns", required_argument, NULL, OPT_META_COLUMNS},
	{"delimiter", required_argument, NULL, OPT_DELIM},
	{"quote", required_argument, NULL, OPT_QUOTE},
	{"no-header", no_argument, NULL, OPT_NO_HEADER},
	{"text-field", required_argument, NULL, OPT_TEXT_FIELD},
	{"id-field", required_argument, NULL, OPT_ID_FIELD},
	{"quotes", required_argument, NULL, OPT_QUOTES},
	{"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
	{"state", required_argument, NULL, OPT_STATE},
	{"strict", no_argument, NULL, OPT_STRICT},
	{"manifest", required_argument, NULL, OPT_MANIFEST},
	{"no-manifest", no_argument, NULL, OPT_NO_MANIFEST},
	{"shard", required_argument, NULL, OPT_SHARD},
	{NULL, 0, NULL, 0},
};

/* A one-character option value; "\t" and "tab" name the tab. */
static int one_char(const char *v)
{
	if (!strcmp(v, "\\t") || !strcasecmp(v, "tab"))
		return '\t';
	return strlen(v) == 1 ? (unsigned char)v[0] : -1;
}

/* What main() allocates, freed at exit on every path (LeakSanitizer checks). */
static struct inputs in;
static const char **meta_name, **meta_xpath, **meta_cols;
static struct qn_shard_part *shard_parts; /* --shard: per input */

static void free_args(void)
{
	for (size_t i = 0; i < in.n; i++) {
		free(in.v[i].path);
		free(in.v[i].source);
	}
	free(in.v);
	free(meta_name);
	free(meta_xpath);
	free(meta_cols);
	free(shard_parts);
}

/*
 * --shard: sizes the inputs and picks this shard's part of each. Only an
 * uncompressed JSONL file is cut (by line); CSV rows may hold quoted
 * newlines and mbox messages span lines, so every other file goes whole to
 * the shard that owns its first byte (lib/shardsel.h).
 */
static int plan_shard(unsigned index, unsigned count, const char *format)
{
	uint64_t *size = calloc(in.n ? in.n : 1, sizeof *size);
	int *split = calloc(in.n ? in.n : 1, sizeof *split);

	shard_parts = calloc(in.n ? in.n : 1, sizeof *shard_parts);
	if (!size || !split || !shard_parts) {
		free(size);
		free(split);
		return -1;
	}
	for (size_t i = 0; i < in.n; i++) {
		const char *path = in.v[i].path;
		struct stat st;
		char head[4096];
		int fd;
		if (!strcmp(path, "-") || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue; /* unknown size: whole, to the shard owning its start */
		size[i] = (uint64_t)st.st_size;
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue; /* whole: its job names the error */
		if (qn_shardsel_splittable_fd(fd)) {
			ssize_t n = pread(fd, head, sizeof head, 0);
			const char *fmt = format ? format : detect(path, head, n > 0 ? (size_t)n : 0);
			split[i] = !strcmp(fmt, "jsonl");
		}
		close(fd);
	}
	qn_shardsel_plan(index, count, in.n, size, split, shard_parts);
	free(size);
	free(split);
	return 0;
}

int main(int argc, char **argv)
{
	struct run r = {0};
	const char *output = NULL, *manifest = NULL, *state_path = NULL, *source = NULL;
	int nmeta = 0, ncols = 0, no_manifest = 0, jobs = 1, c, rc = 0, lockfd = -1;
	unsigned shard_index = 0, shard_count = 0;
	uint64_t max_bytes = 64ULL << 20;
	char added[32];
	struct qn_err e;

	qn_cli_init("quern-ingest");
	atexit(free_args);
	meta_name = calloc((size_t)argc, sizeof *meta_name);
	meta_xpath = calloc((size_t)argc, sizeof *meta_xpath);
	if (!meta_name || !meta_xpath) {
		qn_error("out of memory");
		return 1;
	}
	while ((c = getopt_long(argc, argv, "o:f:s:j:qvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'f': {
			size_t i;
			for (i = 0; i < sizeof formats / sizeof *formats; i++)
				if (!strcmp(optarg, formats[i]))
					break;
			if (i == sizeof formats / sizeof *formats)
				return qn_usage_error("unknown format '%s'", optarg);
			r.opt.format = strcmp(optarg, "auto") ? optarg : NULL;
			break;
		}
		case 's': source = optarg; break;
		case 'j':
			if (qn_parse_jobs("--jobs", optarg, &jobs) < 0)
				return QN_EXIT_USAGE;
			break;
		case 'q': qn_verbosity = -1; break;
		case 'v': qn_verbosity++; break;
		case 'h': fputs(usage_text, stdout); return qn_close_stdout(0);
		case 'V': qn_print_version(); return qn_close_stdout(0);
		case OPT_FULL: r.opt.html.full = 1; break;
		case OPT_ALT: r.opt.html.keep_alt = 1; break;
		case OPT_XPATH: r.opt.xpath = optarg; break;
		case OPT_ID_XPATH: r.opt.id_xpath = optarg; break;
		case OPT_TEXT_XPATH: r.opt.text_xpath = optarg; break;
		case OPT_META: {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg || !eq[1])
				return qn_usage_error("bad --meta '%s': want NAME=XPATH", optarg);
			*eq = 0;
			meta_name[nmeta] = optarg;
			meta_xpath[nmeta++] = eq + 1;
			break;
		}
		case OPT_TEXT_COLUMN: r.opt.text_column = optarg; break;
		case OPT_ID_COLUMN: r.opt.id_column = optarg; break;
		case OPT_META_COLUMNS: {
			free(meta_cols);
			meta_cols = calloc(strlen(optarg) + 1, sizeof *meta_cols);
			if (!meta_cols)
				return 1;
			ncols = 0;
			for (char *t = strtok(optarg, ","); t; t = strtok(NULL, ","))
				meta_cols[ncols++] = t;
			break;
		}
		case OPT_DELIM:
			if ((r.opt.delimiter = one_char(optarg)) < 0)
				return qn_usage_error("bad --delimiter '%s': want one character", optarg);
			break;
		case OPT_QUOTE:
			if ((r.opt.quote = one_char(optarg)) < 0)
				return qn_usage_error("bad --quote '%s': want one character", optarg);
			break;
		case OPT_NO_HEADER: r.opt.no_header = 1; break;
		case OPT_TEXT_FIELD: r.opt.text_field = optarg; break;
		case OPT_ID_FIELD: r.opt.id_field = optarg; break;
		case OPT_QUOTES:
			if (!strcmp(optarg, "keep"))
				r.opt.quotes = IX_QUOTES_KEEP;
			else if (!strcmp(optarg, "mark"))
				r.opt.quotes = IX_QUOTES_MARK;
			else if (!strcmp(optarg, "strip"))
				r.opt.quotes = IX_QUOTES_STRIP;
			else
				return qn_usage_error("bad --quotes '%s': want keep, mark or strip",
						      optarg);
			break;
		case OPT_MAX_BYTES:
			if (qn_parse_size(optarg, &max_bytes) < 0 || max_bytes == 0 ||
			    max_bytes > (1ULL << 31))
				return qn_usage_error("bad --max-bytes '%s'", optarg);
			break;
		case OPT_STATE: state_path = optarg; break;
		case OPT_STRICT: r.strict = 1; break;
		case OPT_MANIFEST: manifest = optarg; break;
		case OPT_NO_MANIFEST: no_manifest = 1; break;
		case OPT_SHARD:
			if (qn_shardsel_parse(optarg, &shard_index, &shard_count) < 0)
				return qn_usage_error("--shard: expected I/N with 0 <= I < N, not '%s'",
						      optarg);
			break;
		default:
			fprintf(stderr, "try 'quern-ingest --help'\n");
			return QN_EXIT_USAGE;
		}
	}
	if ((r.opt.id_xpath || r.opt.text_xpath || nmeta) && !r.opt.xpath)
		return qn_usage_error("--id-xpath, --text-xpath and --meta need --xpath");
	if (shard_count && state_path)
		return qn_usage_error("--shard and --state do not go together: the state "
				      "remembers whole files");
	if (output && !strcmp(output, "-"))
		output = NULL;
	r.opt.meta_name = meta_name;
	r.opt.meta_xpath = meta_xpath;
	r.opt.nmeta = nmeta;
	r.opt.meta_columns = meta_cols;
	r.opt.n_meta_columns = ncols;
	r.opt.max_bytes = (size_t)max_bytes;
	/* SOURCE_DATE_EPOCH pins "added" for reproducible output. */
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde)
		qn_time_rfc3339(strtoll(sde, NULL, 10), added);
	else
		qn_now_rfc3339(added);
	r.opt.added = added;
	r.opt.source = source;

	if (optind == argc) {
		if (add_input(&in, "-", source ? source : "stdin") < 0)
			return 1;
	}
	for (int i = optind; i < argc; i++)
		if (expand(&in, argv[i], source) < 0) {
			qn_error("out of memory");
			return 1;
		}
	if (shard_count && plan_shard(shard_index, shard_count, r.opt.format) < 0) {
		qn_error("out of memory");
		return 1;
	}

	if (state_path) {
		lockfd = lock_state(state_path);
		if (lockfd == -2)
			return QN_EXIT_LOCKED;
		if (lockfd < 0)
			return 1;
		r.state = ix_state_open(state_path, &e);
		if (!r.state) {
			qn_error("%s", e.msg);
			close(lockfd);
			return 1;
		}
	}
	r.w = qn_wr_open(output, 0, &e);
	if (!r.w) {
		qn_error("%s", e.msg);
		ix_state_close(r.state);
		return 1;
	}
	r.man = qn_manifest_new("quern-ingest", QN_VERSION, argc, argv);
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	xmlInitParser();
	qn_progress_init(&r.prog, in.bytes);

	struct qn_pool *pool = qn_pool_new(jobs, (size_t)jobs * 4, work, emit, &r);
	if (!pool || !r.man) {
		qn_error("out of memory");
		qn_wr_abort(r.w);
		return 1;
	}
	uint64_t seq = 0;
	for (size_t i = 0; i < in.n; i++) {
		struct job *j;
		struct stat st;
		if (shard_parts && !shard_parts[i].take)
			continue; /* another shard's */
		j = calloc(1, sizeof *j);
		if (!j) {
			qn_error("out of memory");
			r.write_failed = 1;
			break;
		}
		j->run = &r;
		j->path = in.v[i].path;
		in.v[i].path = NULL;
		j->source = in.v[i].source;
		if (shard_parts && !shard_parts[i].whole)
			j->part = &shard_parts[i];
		if (strcmp(j->path, "-") && stat(j->path, &st) == 0 && S_ISREG(st.st_mode)) {
			j->regular = 1;
			j->size = (uint64_t)st.st_size;
			j->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		}
		if (r.state && j->regular) {
			j->known = ix_state_lookup(r.state, j->path, j->size, j->mtime_ns, j->old_sha);
			if (j->known == 1) {
				r.unchanged++;
				qn_info("unchanged '%s'", j->path);
				job_free(j);
				continue;
			}
		}
		j->seq = seq++;
		j->sink.opt = &r.opt;
		j->sink.path = j->path;
		j->sink.source = j->source;
		j->sink.format = "text";
		qn_buf_init(&j->sink.out, QN_BUF_UNLIMITED);
		qn_buf_init(&j->sink.msgs, 1 << 16);
		j->sink.flush = flush_sink;
		j->sink.flush_ctx = j;
		if (qn_pool_submit(pool, j) != 0)
			break; /* --strict or a write failure: stop feeding */
	}
	qn_pool_finish(pool);
	qn_pool_free(pool);
	qn_progress_finish(&r.prog);

	int failed = in.missing || r.failed_inputs || r.failed_records;
	struct qn_wr_info info = {0};
	if (r.write_failed || (r.strict && failed)) {
		qn_wr_abort(r.w);
		if (r.strict && failed && !r.write_failed)
			qn_error("stopped at the first failure (--strict); no output written");
		rc = 1;
	} else {
		char *abs = output ? abs_path(output) : NULL;
		if (qn_wr_finish(r.w, &info, &e) < 0) {
			qn_error("%s", e.msg);
			qn_wr_abort(r.w);
			rc = 1;
		} else if (r.state && ix_state_prepare(r.state, abs, info.sha256, &e) < 0) {
			qn_error("%s", e.msg);
			qn_wr_abort(r.w);
			rc = 1;
		} else {
			fault("ingest-prepared");
			if (qn_wr_commit(r.w, &info, &e) < 0) {
				qn_error("%s", e.msg);
				rc = 1;
			} else {
				fault("ingest-renamed");
				if (r.state && ix_state_commit(r.state, &e) < 0) {
					qn_error("%s", e.msg);
					rc = 1;
				}
			}
		}
		free(abs);
		if (rc == 0 && failed)
			rc = 1;
	}
	if (rc == 0 || !r.write_failed) {
		qn_manifest_count(r.man, "inputs", (int64_t)r.inputs);
		qn_manifest_count(r.man, "documents", (int64_t)r.docs);
		qn_manifest_count(r.man, "bytes_in", (int64_t)r.bytes);
		qn_manifest_count(r.man, "failed_inputs", (int64_t)(r.failed_inputs + in.missing));
		qn_manifest_count(r.man, "failed_records", (int64_t)r.failed_records);
		qn_manifest_count(r.man, "repaired_bytes", (int64_t)r.repaired);
		qn_manifest_count(r.man, "unchanged", (int64_t)r.unchanged);
		if (output && info.sha256[0])
			qn_manifest_output(r.man, output, info.bytes, info.sha256);
		char *mpath = manifest ? strdup(manifest)
			      : (output && !no_manifest && info.sha256[0]) ? qn_manifest_path_for(output)
									     : NULL;
		if (mpath && !no_manifest && qn_manifest_write(r.man, mpath, &e) < 0) {
			qn_error("%s", e.msg);
			rc = 1;
		}
		free(mpath);
	}
	qn_info("%llu inputs, %llu documents, %llu failed inputs, %llu failed records",
		(unsigned long long)r.inputs, (unsigned long long)r.docs,
		(unsigned long long)(r.failed_inputs + in.missing),
		(unsigned long long)r.failed_records);
	qn_manifest_free(r.man);
	ix_state_close(r.state);
	if (lockfd >= 0)
		close(lockfd);
	xmlCleanupParser();
	return qn_close_stdout(rc);
}
