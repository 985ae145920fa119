/* cli.c - see cli.h. */
#include "cli.h"
#include "pool.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *qn_prog = "quern";
int qn_verbosity;

void qn_cli_init(const char *prog)
{
	qn_prog = prog;
	signal(SIGPIPE, SIG_DFL);
}

static void vmsg(const char *fmt, va_list ap)
{
	char line[4096];
	int n = snprintf(line, sizeof line, "%s: ", qn_prog);

	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	n = (int)strlen(line);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2; /* a cut message still ends its line */
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
}

void qn_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void qn_warn(const char *fmt, ...)
{
	va_list ap;

	if (qn_verbosity < 0)
		return;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void qn_info(const char *fmt, ...)
{
	va_list ap;

	if (qn_verbosity < 1)
		return;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

int qn_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	fprintf(stderr, "try '%s --help'\n", qn_prog);
	return QN_EXIT_USAGE;
}

int qn_print_version(void)
{
	printf("%s %s\n", qn_prog, QN_VERSION);
	return 0;
}

int qn_close_stdout(int rc)
{
	int bad = fflush(stdout) != 0 || ferror(stdout);
	int err = errno;

	if (fclose(stdout) != 0 && !bad) {
		bad = 1;
		err = errno;
	}
	if (bad) {
		qn_error("cannot write to stdout: %s", strerror(err));
		return QN_EXIT_FAIL;
	}
	return rc;
}

int qn_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	case 't': case 'T': mul = 1ULL << 40; end++; break;
	default: return -1;
	}
	if (*end == 'B' || *end == 'b' || (*end == 'i' && end[1] == 'B' && end++))
		end++;
	if (*end || (v && mul > UINT64_MAX / v))
		return -1;
	*out = v * mul;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void qn_progress_init(struct qn_progress *p, uint64_t total_bytes)
{
	p->on = isatty(2);
	p->start = p->last = now_s();
	p->total_bytes = total_bytes;
}

static void human(double v, char *out, size_t n)
{
	const char *u[] = {"B", "KB", "MB", "GB", "TB"};
	int i = 0;

	while (v >= 1000 && i < 4) {
		v /= 1000;
		i++;
	}
	snprintf(out, n, "%.1f %s", v, u[i]);
}

void qn_progress_update(struct qn_progress *p, uint64_t bytes, uint64_t docs)
{
	double t, el;
	char done[32], rate[32], eta[32] = "";

	if (!p->on)
		return;
	t = now_s();
	if (t - p->last < 0.25)
		return;
	p->last = t;
	el = t - p->start;
	human((double)bytes, done, sizeof done);
	human(el > 0 ? (double)bytes / el : 0, rate, sizeof rate);
	if (p->total_bytes && bytes && bytes < p->total_bytes) {
		double left = el * (double)(p->total_bytes - bytes) / (double)bytes;
		snprintf(eta, sizeof eta, ", ETA %d:%02d", (int)left / 60, (int)left % 60);
	}
	fprintf(stderr, "\r\033[K%s: %s, %llu docs, %s/s%s", qn_prog, done,
		(unsigned long long)docs, rate, eta);
}

void qn_progress_finish(struct qn_progress *p)
{
	if (p->on && p->last > p->start)
		fprintf(stderr, "\r\033[K");
}

int qn_parse_number(const char *what, const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max)) {
		qn_usage_error("%s: expected a number from %g to %g, not '%s'", what, min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

int qn_parse_jobs(const char *what, const char *s, int *out)
{
	long n;
	if (qn_parse_long(what, s, 0, 1024, &n))
		return -1;
	*out = n ? (int)n : qn_ncpu();
	return 0;
}

int qn_parse_long(const char *what, const char *s, long min, long max, long *out)
{
	double v;
	if (qn_parse_number(what, s, (double)min, (double)max, &v))
		return -1;
	if (v != floor(v)) {
		qn_usage_error("%s: expected a whole number, not '%s'", what, s);
		return -1;
	}
	*out = (long)v;
	return 0;
}
