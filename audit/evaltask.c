/*
 * evaltask.c - lm-evaluation-harness task files for quern-audit eval: the
 * YAML subset, `{{ }}` templates, local JSONL splits and few-shot prompts
 * (see evaltask.h; docs/eval.md is the user's side of it).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "evaltask.h"
#include "rd.h"
#include "ytree.h"

const char *const qn_ev_output_names[] = {"loglikelihood", "multiple_choice", "generate_until",
					  "loglikelihood_rolling", NULL};

/* ---- Python's random.Random ------------------------------------------------------ */

static void mt_init(struct qn_ev_pyrandom *r, uint32_t s)
{
	r->mt[0] = s;
	for (int i = 1; i < 624; i++)
		r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
	r->mti = 624;
}

void qn_ev_pyrandom_seed(struct qn_ev_pyrandom *r, uint64_t seed)
{
	/* random.seed(int): init_by_array over the 32-bit words of abs(seed), low first. */
	uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
	int klen = key[1] ? 2 : 1;
	mt_init(r, 19650218u);
	int i = 1, j = 0;
	for (int k = 624 > klen ? 624 : klen; k; k--) {
		r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) +
			   key[j] + (uint32_t)j;
		i++;
		j++;
		if (i >= 624) {
			r->mt[0] = r->mt[623];
			i = 1;
		}
		if (j >= klen)
			j = 0;
	}
	for (int k = 623; k; k--) {
		r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) -
			   (uint32_t)i;
		i++;
		if (i >= 624) {
			r->mt[0] = r->mt[623];
			i = 1;
		}
	}
	r->mt[0] = 0x80000000u;
}

uint32_t qn_ev_pyrandom_u32(struct qn_ev_pyrandom *r)
{
	static const uint32_t mag01[2] = {0, 0x9908b0dfu};
	if (r->mti >= 624) {
		int k;
		for (k = 0; k < 624 - 397; k++) {
			uint32_t y = (r->mt[k] & 0x80000000u) | (r->mt[k + 1] & 0x7fffffffu);
			r->mt[k] = r->mt[k + 397] ^ (y >> 1) ^ mag01[y & 1];
		}
		for (; k < 623; k++) {
			uint32_t y = (r->mt[k] & 0x80000000u) | (r->mt[k + 1] & 0x7fffffffu);
			r->mt[k] = r->mt[k + 397 - 624] ^ (y >> 1) ^ mag01[y & 1];
		}
		uint32_t y = (r->mt[623] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
		r->mt[623] = r->mt[396] ^ (y >> 1) ^ mag01[y & 1];
		r->mti = 0;
	}
	uint32_t y = r->mt[r->mti++];
	y ^= y >> 11;
	y ^= (y << 7) & 0x9d2c5680u;
	y ^= (y << 15) & 0xefc60000u;
	y ^= y >> 18;
	return y;
}

/* getrandbits(k), 1 <= k <= 64: 32-bit words, low word first. */
static uint64_t getrandbits(struct qn_ev_pyrandom *r, int k)
{
	if (k <= 32)
		return qn_ev_pyrandom_u32(r) >> (32 - k);
	uint64_t lo = qn_ev_pyrandom_u32(r);
	uint64_t hi = qn_ev_pyrandom_u32(r) >> (64 - k);
	return lo | hi << 32;
}

/* _randbelow_with_getrandbits(n), n >= 1. */
static size_t randbelow(struct qn_ev_pyrandom *r, size_t n)
{
	int k = 0;
	for (size_t m = n; m; m >>= 1)
		k++; /* n.bit_length() */
	uint64_t v = getrandbits(r, k);
	while (v >= n)
		v = getrandbits(r, k);
	return (size_t)v;
}

int qn_ev_pyrandom_sample(struct qn_ev_pyrandom *r, size_t n, size_t k, size_t *out)
{
	if (k > n)
		return -1;
	size_t setsize = 21;
	if (k > 5) { /* 4 ** ceil(log(k * 3, 4)) */
		double l = log((double)(k * 3)) / log(4.0);
		setsize += (size_t)pow(4.0, ceil(l));
	}
	if (n <= setsize) {
		size_t *pool = malloc((n ? n : 1) * sizeof *pool);
		if (!pool)
			return -1;
		for (size_t i = 0; i < n; i++)
			pool[i] = i;
		for (size_t i = 0; i < k; i++) {
			size_t j = randbelow(r, n - i);
			out[i] = pool[j];
			pool[j] = pool[n - i - 1];
		}
		free(pool);
		return 0;
	}
	for (size_t i = 0; i < k; i++) {
		size_t j;
		int again;
		do { /* k is small here: a linear look at what was selected */
			j = randbelow(r, n);
			again = 0;
			for (size_t s = 0; s < i; s++)
				if (out[s] == j)
					again = 1;
		} while (again);
		out[i] = j;
	}
	return 0;
}

/* ---- Python's str() of JSON values ------------------------------------------------ */

static int py_repr_str(const char *s, size_t n, struct qn_buf *out)
{
	char q = memchr(s, '\'', n) && !memchr(s, '"', n) ? '"' : '\'';
	int rc = qn_buf_addc(out, q);
	for (size_t i = 0; i < n && rc == 0; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == (unsigned char)q || c == '\\')
			rc = qn_buf_printf(out, "\\%c", c);
		else if (c == '\n')
			rc = qn_buf_adds(out, "\\n");
		else if (c == '\t')
			rc = qn_buf_adds(out, "\\t");
		else if (c == '\r')
			rc = qn_buf_adds(out, "\\r");
		else if (c < 0x20 || c == 0x7f)
			rc = qn_buf_printf(out, "\\x%02x", c);
		else
			rc = qn_buf_addc(out, (char)c);
	}
	return rc ? rc : qn_buf_addc(out, q);
}

/* repr(float): the shortest digits that read back, in Python's layout. */
static int py_float(double d, struct qn_buf *out)
{
	if (isnan(d))
		return qn_buf_adds(out, "nan");
	if (isinf(d))
		return qn_buf_adds(out, d < 0 ? "-inf" : "inf");
	char digits[64];
	int p;
	for (p = 1; p < 17; p++) {
		snprintf(digits, sizeof digits, "%.*e", p - 1, d);
		if (strtod(digits, NULL) == d)
			break;
	}
	snprintf(digits, sizeof digits, "%.*e", p - 1, d);
	char *ep = strchr(digits, 'e');
	int exp10 = atoi(ep + 1);
	*ep = 0;
	char mant[32];
	size_t m = 0;
	int neg = digits[0] == '-';
	for (char *c = digits + neg; *c; c++)
		if (isdigit((unsigned char)*c))
			mant[m++] = *c;
	mant[m] = 0;
	int rc = neg ? qn_buf_addc(out, '-') : 0;
	if (exp10 < -4 || exp10 >= 16) {
		rc |= qn_buf_addc(out, mant[0]);
		if (m > 1)
			rc |= qn_buf_printf(out, ".%s", mant + 1);
		return rc | qn_buf_printf(out, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
	}
	if (exp10 < 0) {
		rc |= qn_buf_adds(out, "0.");
		for (int i = -1; i > exp10; i--)
			rc |= qn_buf_addc(out, '0');
		return rc | qn_buf_adds(out, mant);
	}
	for (int i = 0; i <= exp10; i++)
		rc |= qn_buf_addc(out, (size_t)i < m ? mant[i] : '0');
	rc |= qn_buf_addc(out, '.');
	if ((size_t)exp10 + 1 < m)
		return rc | qn_buf_adds(out, mant + exp10 + 1);
	return rc | qn_buf_addc(out, '0');
}

static int py_repr(json_t *v, struct qn_buf *out, int depth)
{
	if (depth > 64)
		return -1;
	switch (json_typeof(v)) {
	case JSON_STRING:
		return py_repr_str(json_string_value(v), json_string_length(v), out);
	case JSON_ARRAY: {
		int rc = qn_buf_addc(out, '[');
		for (size_t i = 0; i < json_array_size(v) && rc == 0; i++) {
			if (i)
				rc = qn_buf_adds(out, ", ");
			rc = rc ? rc : py_repr(json_array_get(v, i), out, depth + 1);
		}
		return rc ? rc : qn_buf_addc(out, ']');
	}
	case JSON_OBJECT: {
		int rc = qn_buf_addc(out, '{'), first = 1;
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			if (rc)
				break;
			if (!first)
				rc = qn_buf_adds(out, ", ");
			first = 0;
			rc = rc ? rc : py_repr_str(k, strlen(k), out);
			rc = rc ? rc : qn_buf_adds(out, ": ");
			rc = rc ? rc : py_repr(x, out, depth + 1);
		}
		return rc ? rc : qn_buf_addc(out, '}');
	}
	default:
		return qn_ev_pystr(v, out);
	}
}

int qn_ev_pystr(json_t *v, struct qn_buf *out)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return qn_buf_add(out, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return qn_buf_printf(out, "%lld", (long long)json_integer_value(v));
	case JSON_REAL:
		return py_float(json_real_value(v), out);
	case JSON_TRUE:
		return qn_buf_adds(out, "True");
	case JSON_FALSE:
		return qn_buf_adds(out, "False");
	case JSON_NULL:
		return qn_buf_adds(out, "None");
	default:
		return py_repr(v, out, 0);
	}
}

/* ---- templates ---------------------------------------------------------------------- */

enum node_kind { N_FIELD, N_STR, N_INT, N_CONST, N_LIST, N_ADD, N_ATTR, N_INDEX };

struct node {
	enum node_kind kind;
	char *s; /* N_FIELD, N_ATTR: the name; N_STR: the text */
	size_t slen;
	long long num;	    /* N_INT; N_CONST: 0 None, 1 True, 2 False */
	struct node **kids; /* N_LIST items; N_ADD/N_INDEX: 2; N_ATTR: 1 */
	size_t nkids;
};

struct segment {
	char *text; /* literal (NULL for an expression) */
	size_t len;
	struct node *expr;
};

struct qn_ev_tmpl {
	struct segment *seg;
	size_t nseg;
	char *where; /* e.g. "doc_to_text (task.yaml:5:14)" */
	char *src;   /* the template as written */
	size_t srclen;
};

static void node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->s);
	free(n);
}

void qn_ev_tmpl_free(struct qn_ev_tmpl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nseg; i++) {
		free(t->seg[i].text);
		node_free(t->seg[i].expr);
	}
	free(t->seg);
	free(t->where);
	free(t->src);
	free(t);
}

struct parser {
	const char *s;
	size_t n, i;
	int depth;
	struct qn_err *e;
	const char *where;
};

static void skip_ws(struct parser *p)
{
	while (p->i < p->n && isspace((unsigned char)p->s[p->i]))
		p->i++;
}

static int perr(struct parser *p, const char *what)
{
	return qn_errf(p->e, "%s: %s at offset %zu of the template", p->where, what, p->i);
}

static struct node *new_node(enum node_kind k, struct parser *p)
{
	struct node *n = calloc(1, sizeof *n);
	if (!n)
		qn_errf(p->e, "out of memory");
	else
		n->kind = k;
	return n;
}

static int add_kid(struct node *n, struct node *k)
{
	struct node **v = realloc(n->kids, (n->nkids + 1) * sizeof *v);
	if (!v) {
		node_free(k);
		return -1;
	}
	n->kids = v;
	v[n->nkids++] = k;
	return 0;
}

static struct node *parse_expr(struct parser *p);

static struct node *parse_string(struct parser *p)
{
	char q = p->s[p->i++];
	struct qn_buf b;
	qn_buf_init(&b, QN_EV_MAX_TEXT);
	while (p->i < p->n && p->s[p->i] != q) {
		char c = p->s[p->i++];
		if (c == '\\' && p->i < p->n) {
			c = p->s[p->i++];
			c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
		}
		if (qn_buf_addc(&b, c)) {
			qn_buf_release(&b);
			perr(p, "string too long");
			return NULL;
		}
	}
	if (p->i >= p->n) {
		qn_buf_release(&b);
		perr(p, "unterminated string");
		return NULL;
	}
	p->i++;
	struct node *n = new_node(N_STR, p);
	if (n) {
		n->slen = b.len;
		n->s = b.data ? qn_buf_detach(&b, NULL) : strdup("");
		if (!n->s) {
			free(n);
			n = NULL;
		}
	}
	qn_buf_release(&b);
	return n;
}

static struct node *parse_primary(struct parser *p)
{
	skip_ws(p);
	if (p->i >= p->n) {
		perr(p, "expression expected");
		return NULL;
	}
	char c = p->s[p->i];
	if (c == '\'' || c == '"')
		return parse_string(p);
	if (isdigit((unsigned char)c) ||
	    (c == '-' && p->i + 1 < p->n && isdigit((unsigned char)p->s[p->i + 1]))) {
		char *end;
		errno = 0;
		long long v = strtoll(p->s + p->i, &end, 10);
		if (errno || end > p->s + p->n) {
			perr(p, "bad number");
			return NULL;
		}
		p->i = (size_t)(end - p->s);
		struct node *n = new_node(N_INT, p);
		if (n)
			n->num = v;
		return n;
	}
	if (c == '[' || c == '(') {
		p->i++;
		if (c == '(') {
			struct node *n = parse_expr(p);
			skip_ws(p);
			if (n && (p->i >= p->n || p->s[p->i] != ')')) {
				node_free(n);
				perr(p, "')' expected");
				return NULL;
			}
			p->i++;
			return n;
		}
		struct node *n = new_node(N_LIST, p);
		if (!n)
			return NULL;
		for (;;) {
			skip_ws(p);
			if (p->i < p->n && p->s[p->i] == ']') {
				p->i++;
				return n;
			}
			struct node *k = parse_expr(p);
			if (!k || add_kid(n, k)) {
				node_free(n);
				if (k)
					qn_errf(p->e, "out of memory");
				return NULL;
			}
			skip_ws(p);
			if (p->i < p->n && p->s[p->i] == ',') {
				p->i++;
				continue;
			}
			if (p->i < p->n && p->s[p->i] == ']') {
				p->i++;
				return n;
			}
			node_free(n);
			perr(p, "',' or ']' expected");
			return NULL;
		}
	}
	if (isalpha((unsigned char)c) || c == '_') {
		size_t b = p->i;
		while (p->i < p->n && (isalnum((unsigned char)p->s[p->i]) || p->s[p->i] == '_'))
			p->i++;
		size_t len = p->i - b;
		static const char *const consts[] = {"None", "True", "False",
						     "none", "true", "false"};
		for (int k = 0; k < 6; k++)
			if (strlen(consts[k]) == len && !memcmp(consts[k], p->s + b, len)) {
				struct node *n = new_node(N_CONST, p);
				if (n)
					n->num = k % 3;
				return n;
			}
		struct node *n = new_node(N_FIELD, p);
		if (n && !(n->s = strndup(p->s + b, len))) {
			free(n);
			n = NULL;
		}
		if (n)
			n->slen = len;
		return n;
	}
	if (c == '|')
		perr(p, "filters ('|') are not supported");
	else
		perr(p, "unexpected character");
	return NULL;
}

static struct node *parse_postfix(struct parser *p)
{
	struct node *n = parse_primary(p);
	while (n) {
		skip_ws(p);
		if (p->i < p->n && p->s[p->i] == '.') {
			p->i++;
			skip_ws(p);
			size_t b = p->i;
			while (p->i < p->n &&
			       (isalnum((unsigned char)p->s[p->i]) || p->s[p->i] == '_'))
				p->i++;
			if (b == p->i) {
				node_free(n);
				perr(p, "a field name expected after '.'");
				return NULL;
			}
			struct node *a = new_node(N_ATTR, p);
			if (!a || !(a->s = strndup(p->s + b, p->i - b)) || add_kid(a, n)) {
				if (a && !a->s)
					node_free(n);
				node_free(a);
				qn_errf(p->e, "out of memory");
				return NULL;
			}
			if (p->i < p->n && p->s[p->i] == '(') {
				node_free(a);
				perr(p, "method calls are not supported");
				return NULL;
			}
			a->slen = strlen(a->s);
			n = a;
		} else if (p->i < p->n && p->s[p->i] == '[') {
			p->i++;
			struct node *k = parse_expr(p);
			skip_ws(p);
			if (!k || p->i >= p->n || p->s[p->i] != ']') {
				node_free(n);
				if (k) {
					node_free(k);
					perr(p, "']' expected");
				}
				return NULL;
			}
			p->i++;
			struct node *x = new_node(N_INDEX, p);
			if (!x || add_kid(x, n) || add_kid(x, k)) {
				node_free(x);
				qn_errf(p->e, "out of memory");
				return NULL;
			}
			n = x;
		} else {
			break;
		}
	}
	return n;
}

static struct node *parse_expr(struct parser *p)
{
	if (++p->depth > 32) {
		perr(p, "expression nested too deep");
		return NULL;
	}
	struct node *n = parse_postfix(p);
	while (n) {
		skip_ws(p);
		if (p->i >= p->n || p->s[p->i] != '+')
			break;
		p->i++;
		struct node *r = parse_postfix(p);
		struct node *a = r ? new_node(N_ADD, p) : NULL;
		if (!a || add_kid(a, n) || add_kid(a, r)) {
			if (!a) {
				node_free(n);
				node_free(r);
			} else {
				node_free(a);
			}
			return NULL;
		}
		n = a;
	}
	p->depth--;
	return n;
}

static int add_segment(struct qn_ev_tmpl *t, const char *text, size_t len, struct node *expr)
{
	struct segment *v = realloc(t->seg, (t->nseg + 1) * sizeof *v);
	if (!v)
		return -1;
	t->seg = v;
	struct segment *s = &v[t->nseg];
	memset(s, 0, sizeof *s);
	if (expr) {
		s->expr = expr;
	} else {
		if (!(s->text = malloc(len + 1)))
			return -1;
		memcpy(s->text, text, len);
		s->text[len] = 0;
		s->len = len;
	}
	t->nseg++;
	return 0;
}

struct qn_ev_tmpl *qn_ev_tmpl_compile(const char *s, size_t n, const char *where, struct qn_err *e)
{
	struct qn_ev_tmpl *t = calloc(1, sizeof *t);
	if (!t || !(t->where = strdup(where)) || !(t->src = malloc(n + 1))) {
		qn_ev_tmpl_free(t);
		qn_errf(e, "out of memory");
		return NULL;
	}
	memcpy(t->src, s, n);
	t->src[n] = 0;
	t->srclen = n;
	s = t->src; /* NUL-terminated: strtoll cannot run past the end */
	struct parser p = {.s = s, .n = n, .e = e, .where = where};
	size_t lit = 0; /* start of the pending literal */
	int lstrip = 0; /* the last expression ended with -}} */
	while (p.i < n) {
		if (s[p.i] != '{' || p.i + 1 >= n ||
		    (s[p.i + 1] != '{' && s[p.i + 1] != '%' && s[p.i + 1] != '#')) {
			p.i++;
			continue;
		}
		if (s[p.i + 1] != '{') {
			perr(&p, "Jinja statements ({% %}) and comments ({# #}) are not supported");
			goto fail;
		}
		size_t a = lit, b = p.i;
		p.i += 2;
		int rstrip = p.i < n && s[p.i] == '-';
		if (rstrip)
			p.i++;
		if (lstrip)
			while (a < b && isspace((unsigned char)s[a]))
				a++;
		if (rstrip)
			while (b > a && isspace((unsigned char)s[b - 1]))
				b--;
		if (b > a && add_segment(t, s + a, b - a, NULL))
			goto oom;
		p.depth = 0;
		struct node *x = parse_expr(&p);
		if (!x)
			goto fail;
		skip_ws(&p);
		lstrip = p.i < n && s[p.i] == '-';
		if (lstrip)
			p.i++;
		if (p.i + 1 >= n || s[p.i] != '}' || s[p.i + 1] != '}') {
			node_free(x);
			perr(&p, "'}}' expected");
			goto fail;
		}
		p.i += 2;
		if (add_segment(t, NULL, 0, x)) {
			node_free(x);
			goto oom;
		}
		lit = p.i;
	}
	size_t a = lit;
	if (lstrip)
		while (a < n && isspace((unsigned char)s[a]))
			a++;
	if (n > a && add_segment(t, s + a, n - a, NULL))
		goto oom;
	return t;
oom:
	qn_errf(e, "out of memory");
fail:
	qn_ev_tmpl_free(t);
	return NULL;
}

/* A readable name of a field path: "choices.text[0]". */
static void path_name(const struct node *n, struct qn_buf *b)
{
	switch (n->kind) {
	case N_FIELD:
		qn_buf_adds(b, n->s);
		break;
	case N_ATTR:
		path_name(n->kids[0], b);
		qn_buf_printf(b, ".%s", n->s);
		break;
	case N_INDEX:
		path_name(n->kids[0], b);
		if (n->kids[1]->kind == N_INT)
			qn_buf_printf(b, "[%lld]", n->kids[1]->num);
		else if (n->kids[1]->kind == N_STR)
			qn_buf_printf(b, "['%s']", n->kids[1]->s);
		else
			qn_buf_adds(b, "[...]");
		break;
	default:
		qn_buf_adds(b, "(expression)");
	}
}

static int missing(const struct node *n, const char *why, struct qn_err *e)
{
	struct qn_buf b;
	qn_buf_init(&b, 4096);
	path_name(n, &b);
	qn_errf(e, "%s '%s'", why, b.data ? b.data : "");
	qn_buf_release(&b);
	return -1;
}

static json_t *eval_node(const struct node *n, json_t *doc, struct qn_err *e)
{
	switch (n->kind) {
	case N_FIELD: {
		json_t *v = json_object_get(doc, n->s);
		if (!v) {
			missing(n, "no field", e);
			return NULL;
		}
		return json_incref(v);
	}
	case N_STR:
		return json_stringn(n->s, n->slen);
	case N_INT:
		return json_integer((json_int_t)n->num);
	case N_CONST:
		return n->num == 0 ? json_null() : n->num == 1 ? json_true() : json_false();
	case N_LIST: {
		json_t *a = json_array();
		for (size_t i = 0; a && i < n->nkids; i++) {
			json_t *v = eval_node(n->kids[i], doc, e);
			if (!v || json_array_append_new(a, v)) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case N_ATTR: {
		json_t *o = eval_node(n->kids[0], doc, e);
		if (!o)
			return NULL;
		json_t *v = json_is_object(o) ? json_object_get(o, n->s) : NULL;
		if (v)
			json_incref(v);
		else
			missing(n, json_is_object(o) ? "no field" : "not an object under", e);
		json_decref(o);
		return v;
	}
	case N_INDEX: {
		json_t *o = eval_node(n->kids[0], doc, e),
		       *k = o ? eval_node(n->kids[1], doc, e) : NULL;
		json_t *v = NULL;
		if (!k) {
			json_decref(o);
			return NULL;
		}
		if (json_is_array(o) && json_is_integer(k)) {
			json_int_t i = json_integer_value(k), len = (json_int_t)json_array_size(o);
			if (i < 0)
				i += len;
			v = i >= 0 && i < len ? json_array_get(o, (size_t)i) : NULL;
			if (!v)
				missing(n, "index out of range:", e);
		} else if (json_is_object(o) && json_is_string(k)) {
			v = json_object_get(o, json_string_value(k));
			if (!v)
				missing(n, "no field", e);
		} else {
			missing(n, "cannot index", e);
		}
		if (v)
			json_incref(v);
		json_decref(o);
		json_decref(k);
		return v;
	}
	case N_ADD: {
		json_t *a = eval_node(n->kids[0], doc, e),
		       *b = a ? eval_node(n->kids[1], doc, e) : NULL;
		json_t *v = NULL;
		if (!b) {
			json_decref(a);
			return NULL;
		}
		if (json_is_string(a) && json_is_string(b)) {
			size_t la = json_string_length(a), lb = json_string_length(b);
			char *s = la + lb <= QN_EV_MAX_TEXT ? malloc(la + lb + 1) : NULL;
			if (s) {
				memcpy(s, json_string_value(a), la);
				memcpy(s + la, json_string_value(b), lb);
				v = json_stringn_nocheck(s, la + lb);
				free(s);
			} else {
				qn_errf(e, "text too long");
			}
		} else if (json_is_integer(a) && json_is_integer(b)) {
			v = json_integer(json_integer_value(a) + json_integer_value(b));
		} else if (json_is_array(a) && json_is_array(b)) {
			v = json_copy(a);
			if (v && json_array_size(v) + json_array_size(b) <= QN_EV_MAX_CHOICES)
				json_array_extend(v, b);
		} else {
			qn_errf(e, "cannot add %s and %s in a template",
				json_is_string(a) ? "a string" : "a non-string",
				json_is_string(b) ? "a string" : "a non-string");
		}
		json_decref(a);
		json_decref(b);
		return v;
	}
	}
	return NULL;
}

int qn_ev_tmpl_render(const struct qn_ev_tmpl *t, json_t *doc, struct qn_buf *out, struct qn_err *e)
{
	for (size_t i = 0; i < t->nseg; i++) {
		const struct segment *s = &t->seg[i];
		if (s->text) {
			if (qn_buf_add(out, s->text, s->len))
				return qn_errf(e, "%s: the text is longer than %u bytes", t->where,
					       QN_EV_MAX_TEXT);
			continue;
		}
		json_t *v = eval_node(s->expr, doc, e);
		if (!v) {
			qn_err_prefix(e, "%s", t->where);
			return -1;
		}
		int rc = qn_ev_pystr(v, out);
		json_decref(v);
		if (rc)
			return qn_errf(e, "%s: the text is longer than %u bytes", t->where,
				       QN_EV_MAX_TEXT);
	}
	return 0;
}

json_t *qn_ev_tmpl_value(const struct qn_ev_tmpl *t, json_t *doc, int *is_single, struct qn_err *e)
{
	*is_single = t->nseg == 1 && t->seg[0].expr;
	if (!*is_single)
		return NULL;
	json_t *v = eval_node(t->seg[0].expr, doc, e);
	if (!v)
		qn_err_prefix(e, "%s", t->where);
	return v;
}

/* ---- the task file ------------------------------------------------------------------- */

static const char *const known_keys[] = {"task",
					 "task_alias",
					 "tag",
					 "include",
					 "dataset_path",
					 "dataset_name",
					 "dataset_kwargs",
					 "training_split",
					 "validation_split",
					 "test_split",
					 "fewshot_split",
					 "doc_to_text",
					 "doc_to_target",
					 "doc_to_choice",
					 "description",
					 "target_delimiter",
					 "fewshot_delimiter",
					 "fewshot_config",
					 "num_fewshot",
					 "output_type",
					 "generation_kwargs",
					 "metric_list",
					 "metadata",
					 "repeats",
					 "should_decontaminate",
					 NULL};

/* lm-eval fields quern does not run: named as such rather than as unknown. */
static const char *const unsupported_keys[] = {"process_docs",
					       "process_results",
					       "filter_list",
					       "use_prompt",
					       "doc_to_decontamination_query",
					       "doc_to_image",
					       "doc_to_audio",
					       "gen_prefix",
					       "custom_dataset",
					       "unsafe_code",
					       "group",
					       "group_alias",
					       "task_list",
					       "aggregate_metric_list",
					       "class",
					       "multiple_input",
					       "fewshot_as_multiturn",
					       NULL};

struct metric_def {
	enum qn_ev_metric_id id;
	const char *name;
	enum qn_ev_agg agg;
	const char *agg_name;
	int higher;
	unsigned outputs; /* bit per enum qn_ev_output */
};

#define OUT(x) (1u << (x))
static const struct metric_def metric_defs[] = {
    {QN_EVM_ACC, "acc", QN_EV_MEAN, "mean", 1,
     OUT(QN_EV_LOGLIKELIHOOD) | OUT(QN_EV_MULTIPLE_CHOICE)},
    {QN_EVM_ACC_NORM, "acc_norm", QN_EV_MEAN, "mean", 1, OUT(QN_EV_MULTIPLE_CHOICE)},
    {QN_EVM_ACC_MUTUAL_INFO, "acc_mutual_info", QN_EV_MEAN, "mean", 1, OUT(QN_EV_MULTIPLE_CHOICE)},
    {QN_EVM_EXACT_MATCH, "exact_match", QN_EV_MEAN, "mean", 1,
     OUT(QN_EV_MULTIPLE_CHOICE) | OUT(QN_EV_GENERATE_UNTIL)},
    {QN_EVM_F1, "f1", QN_EV_MACRO_F1, "f1", 1, OUT(QN_EV_MULTIPLE_CHOICE)},
    {QN_EVM_PERPLEXITY, "perplexity", QN_EV_PERPLEXITY, "perplexity", 0, OUT(QN_EV_LOGLIKELIHOOD)},
    {QN_EVM_WORD_PERPLEXITY, "word_perplexity", QN_EV_WEIGHTED_PERPLEXITY, "weighted_perplexity", 0,
     OUT(QN_EV_LOGLIKELIHOOD_ROLLING)},
    {QN_EVM_BYTE_PERPLEXITY, "byte_perplexity", QN_EV_WEIGHTED_PERPLEXITY, "weighted_perplexity", 0,
     OUT(QN_EV_LOGLIKELIHOOD_ROLLING)},
    {QN_EVM_BITS_PER_BYTE, "bits_per_byte", QN_EV_BITS_PER_BYTE, "bits_per_byte", 0,
     OUT(QN_EV_LOGLIKELIHOOD_ROLLING)},
};
#define NMETRIC_DEFS (sizeof metric_defs / sizeof *metric_defs)

/* lm-eval's metrics when metric_list is absent, by output type. */
static const char *const default_metrics[][4] = {
    {"perplexity", "acc", NULL},
    {"acc", "acc_norm", NULL},
    {"exact_match", NULL},
    {"word_perplexity", "byte_perplexity", "bits_per_byte", NULL},
};

static const struct metric_def *find_metric(const char *name)
{
	for (size_t i = 0; i < NMETRIC_DEFS; i++)
		if (!strcmp(metric_defs[i].name, name))
			return &metric_defs[i];
	return NULL;
}

static int where_err(const struct qn_yval *v, struct qn_err *e, const char *fmt, const char *a,
		     const char *b)
{
	char w[1200];
	qn_yval_where(v, w, sizeof w);
	char msg[700];
	snprintf(msg, sizeof msg, fmt, a, b ? b : "");
	return qn_errf(e, "%s%s", w, msg);
}

static char *xstrdup(const char *s, struct qn_err *e)
{
	char *d = strdup(s ? s : "");
	if (!d)
		qn_errf(e, "out of memory");
	return d;
}

/* An optional string field (any scalar); *out strdup'd, or def. */
static int get_string(const struct qn_yval *m, const char *key, const char *def, char **out,
		      struct qn_err *e)
{
	const char *s = NULL;
	int got = qn_yget_str(m, key, &s, e);
	if (got < 0)
		return -1;
	if (!got && !def) {
		*out = NULL;
		return 0;
	}
	*out = xstrdup(got ? s : def, e);
	return *out ? 0 : -1;
}

/* JSON for a YAML value: unquoted scalars that read as numbers, booleans or null become those. */
static json_t *yval_json(const struct qn_yval *v, int depth)
{
	if (!v || depth > QN_YAML_MAX_DEPTH)
		return json_null();
	switch (v->type) {
	case QN_YNULL:
		return json_null();
	case QN_YSCALAR: {
		if (!v->quoted && v->slen > 0) {
			char *end;
			errno = 0;
			long long i = strtoll(v->s, &end, 10);
			if (!errno && *end == 0)
				return json_integer(i);
			double d = strtod(v->s, &end);
			if (*end == 0 && isfinite(d) && !isspace((unsigned char)v->s[0]))
				return json_real(d);
			if (!strcasecmp(v->s, "true"))
				return json_true();
			if (!strcasecmp(v->s, "false"))
				return json_false();
			if (!strcmp(v->s, "null") || !strcmp(v->s, "~"))
				return json_null();
		}
		return json_stringn_nocheck(v->s, v->slen);
	}
	case QN_YLIST: {
		json_t *a = json_array();
		for (size_t i = 0; i < v->n; i++)
			json_array_append_new(a, yval_json(&v->v[i], depth + 1));
		return a;
	}
	case QN_YMAP: {
		json_t *o = json_object();
		for (size_t i = 0; i < v->n; i++)
			json_object_set_new(o, v->v[i].key, yval_json(&v->v[i], depth + 1));
		return o;
	}
	}
	return json_null();
}

static int is_int_scalar(const struct qn_yval *v)
{
	if (!v || v->type != QN_YSCALAR || v->quoted || v->slen == 0)
		return 0;
	for (size_t i = v->s[0] == '-'; i < v->slen; i++)
		if (!isdigit((unsigned char)v->s[i]))
			return 0;
	return v->slen > (size_t)(v->s[0] == '-');
}

static int compile_field(struct qn_ev_task *t, const char *key, struct qn_ev_tmpl **out,
			 struct qn_err *e)
{
	const struct qn_yval *v = qn_yval_get(&t->merged, key);
	*out = NULL;
	if (!v || v->type == QN_YNULL)
		return 0;
	if (v->type != QN_YSCALAR)
		return where_err(v, e, "'%s' must be a string", key, NULL);
	char w[1300], at[1200];
	qn_yval_where(v, at, sizeof at);
	size_t l = strlen(at);
	while (l && (at[l - 1] == ' ' || at[l - 1] == ':'))
		at[--l] = 0;
	snprintf(w, sizeof w, "%s (%s)", key, at);
	*out = qn_ev_tmpl_compile(v->s, v->slen, w, e);
	return *out ? 0 : -1;
}

/* The task's top-level map merged over what it includes (a shallow copy of entries). */
static int merge_roots(struct qn_ev_task *t, struct qn_err *e)
{
	size_t total = 0;
	for (size_t r = 0; r < t->nroots; r++)
		total += t->roots[r].n;
	t->merged.type = QN_YMAP;
	t->merged.v = calloc(total ? total : 1, sizeof *t->merged.v);
	if (!t->merged.v)
		return qn_errf(e, "out of memory");
	t->merged.file = t->roots[0].file;
	t->merged.line = t->roots[0].line;
	t->merged.col = t->roots[0].col;
	/* The deepest include first; each file overrides what it includes. */
	for (size_t r = t->nroots; r-- > 0;) {
		for (size_t i = 0; i < t->roots[r].n; i++) {
			const struct qn_yval *ent = &t->roots[r].v[i];
			if (!strcmp(ent->key, "include"))
				continue;
			size_t j;
			for (j = 0; j < t->merged.n; j++)
				if (!strcmp(t->merged.v[j].key, ent->key))
					break;
			t->merged.v[j] = *ent;
			if (j == t->merged.n)
				t->merged.n++;
		}
	}
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static char *join_path(const char *dir, const char *rel)
{
	if (rel[0] == '/' || !dir)
		return strdup(rel);
	size_t n = strlen(dir) + strlen(rel) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, rel);
	return p;
}

/* Follows include: from roots[nroots - 1] (whose directory is dir). */
static int load_includes(struct qn_ev_task *t, const char *dir, struct qn_err *e)
{
	char *owned = NULL;
	int rc = 0;
	for (;;) {
		const struct qn_yval *inc = qn_yval_get(&t->roots[t->nroots - 1], "include");
		if (!inc)
			break;
		if (inc->type != QN_YSCALAR) {
			rc = where_err(inc, e, "'include' must be a file name", NULL, NULL);
			break;
		}
		if (!dir) {
			rc = where_err(inc, e, "'include' is not available here", NULL, NULL);
			break;
		}
		if (t->nroots >= QN_EV_MAX_INCLUDE) {
			rc = where_err(inc, e, "includes nest more than %s deep", "8", NULL);
			break;
		}
		char *path = join_path(dir, inc->s);
		if (!path) {
			rc = qn_errf(e, "out of memory");
			break;
		}
		for (size_t r = 0; r < t->nroots && rc == 0; r++)
			if (!strcmp(t->paths[r], path))
				rc = where_err(inc, e, "'include' of '%s' makes a cycle", inc->s,
					       NULL);
		if (rc) {
			free(path);
			break;
		}
		t->paths[t->nroots] = path;
		if (qn_yaml_load(path, &t->roots[t->nroots], e)) {
			char w[1200];
			qn_yval_where(inc, w, sizeof w);
			qn_err_prefix(e, "%sinclude", w);
			rc = -1;
			break;
		}
		t->nroots++;
		if (t->roots[t->nroots - 1].type != QN_YMAP) {
			rc = qn_errf(e, "%s: a task file must be a map of fields", path);
			break;
		}
		free(owned);
		if (!(owned = dir_of(path))) {
			rc = qn_errf(e, "out of memory");
			break;
		}
		dir = owned;
	}
	free(owned);
	return rc;
}

static int parse_metrics(struct qn_ev_task *t, struct qn_err *e)
{
	const struct qn_yval *ml = qn_yval_get(&t->merged, "metric_list");
	static const char *const entry_keys[] = {"metric",
						 "aggregation",
						 "higher_is_better",
						 "ignore_case",
						 "ignore_punctuation",
						 "ignore_numbers",
						 "regexes_to_ignore",
						 NULL};
	size_t n;
	if (ml && ml->type != QN_YNULL) {
		if (ml->type != QN_YLIST || ml->n == 0)
			return where_err(ml, e,
					 "'metric_list' must be a list of {metric: ...} maps", NULL,
					 NULL);
		n = ml->n;
	} else {
		ml = NULL;
		for (n = 0; default_metrics[t->output][n]; n++)
			;
	}
	t->metrics = calloc(n, sizeof *t->metrics);
	if (!t->metrics)
		return qn_errf(e, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct qn_ev_metric *m =
		    &t->metrics[t->nmetrics++]; /* counted: released on failure */
		const struct metric_def *d;
		const struct qn_yval *ent = ml ? &ml->v[i] : NULL;
		if (ent) {
			const char *name, *agg;
			if (ent->type != QN_YMAP)
				return where_err(ent, e, "a metric_list entry must be a map", NULL,
						 NULL);
			if (qn_ycheck_keys(ent, entry_keys, "metric_list entry", e))
				return -1;
			int got = qn_yget_str(ent, "metric", &name, e);
			if (got < 0)
				return -1;
			if (!got)
				return where_err(ent, e, "a metric_list entry needs 'metric'", NULL,
						 NULL);
			const struct qn_yval *mv = qn_yval_get(ent, "metric");
			if (!(d = find_metric(name)))
				return where_err(
				    mv, e, "metric '%s' is not supported%s", name,
				    " (acc, acc_norm, acc_mutual_info, exact_match, f1, "
				    "perplexity, word_perplexity, byte_perplexity, "
				    "bits_per_byte)");
			if (!(d->outputs & OUT(t->output)))
				return where_err(mv, e,
						 "metric '%s' does not apply to output_type %s",
						 name, qn_ev_output_names[t->output]);
			for (size_t j = 0; j + 1 < t->nmetrics; j++)
				if (t->metrics[j].id == d->id)
					return where_err(mv, e, "metric '%s' is listed twice", name,
							 NULL);
			got = qn_yget_str(ent, "aggregation", &agg, e);
			if (got < 0)
				return -1;
			if (got && strcmp(agg, d->agg_name))
				return where_err(
				    qn_yval_get(ent, "aggregation"), e,
				    "aggregation '%s' is not supported for this metric "
				    "(its aggregation is '%s')",
				    agg, d->agg_name);
			m->higher_is_better = d->higher;
			if (qn_yget_bool(ent, "higher_is_better", &m->higher_is_better, e) < 0 ||
			    qn_yget_bool(ent, "ignore_case", &m->em.ignore_case, e) < 0 ||
			    qn_yget_bool(ent, "ignore_punctuation", &m->em.ignore_punctuation, e) <
				0 ||
			    qn_yget_bool(ent, "ignore_numbers", &m->em.ignore_numbers, e) < 0)
				return -1;
			if (d->id != QN_EVM_EXACT_MATCH &&
			    (m->em.ignore_case || m->em.ignore_punctuation ||
			     m->em.ignore_numbers || qn_yval_get(ent, "regexes_to_ignore")))
				return where_err(ent, e, "'%s' takes no exact_match options", name,
						 NULL);
			got = qn_yget_strlist(ent, "regexes_to_ignore", &m->regex_src,
					      &m->em.nregex, e);
			if (got < 0)
				return -1;
			if (m->em.nregex) {
				m->em.regexes = calloc(m->em.nregex, sizeof *m->em.regexes);
				if (!m->em.regexes)
					return qn_errf(e, "out of memory");
				for (size_t r = 0; r < m->em.nregex; r++)
					if (!(m->em.regexes[r] = qn_ev_regex_compile(
						  m->regex_src[r], strlen(m->regex_src[r]), e))) {
						qn_err_prefix(
						    e, "%sregexes_to_ignore",
						    qn_yval_where(
							qn_yval_get(ent, "regexes_to_ignore"),
							(char[1200]){0}, 1200));
						return -1;
					}
			}
		} else {
			d = find_metric(default_metrics[t->output][i]);
			m->higher_is_better = d->higher;
		}
		m->id = d->id;
		m->name = d->name;
		m->agg = d->agg;
		m->agg_name = d->agg_name;
		if (d->id == QN_EVM_ACC_MUTUAL_INFO)
			t->need_uncond = 1;
	}
	return 0;
}

static int parse_generation(struct qn_ev_task *t, struct qn_err *e)
{
	static const char *const gen_keys[] = {
	    "until", "max_gen_toks", "temperature",    "do_sample",
	    "top_k", "top_p",	     "max_new_tokens", NULL};
	const struct qn_yval *g = qn_yval_get(&t->merged, "generation_kwargs");
	t->max_gen_toks = 256;
	t->temperature = 0;
	t->top_p = 1;
	t->top_k = 0;
	const char **until = NULL;
	size_t nuntil = 0;
	int have_until = 0;
	if (g && g->type != QN_YNULL) {
		if (t->output != QN_EV_GENERATE_UNTIL)
			return where_err(g, e,
					 "'generation_kwargs' is for output_type generate_until",
					 NULL, NULL);
		if (g->type != QN_YMAP)
			return where_err(g, e, "'generation_kwargs' must be a map", NULL, NULL);
		if (qn_ycheck_keys(g, gen_keys, "generation_kwargs", e))
			return -1;
		int got = qn_yget_strlist(g, "until", &until, &nuntil, e);
		if (got < 0)
			return -1;
		have_until = got;
		if (qn_yget_int(g, "max_gen_toks", 1, 1 << 20, &t->max_gen_toks, e) < 0 ||
		    qn_yget_int(g, "max_new_tokens", 1, 1 << 20, &t->max_gen_toks, e) < 0 ||
		    qn_yget_double(g, "temperature", 0, 1e6, &t->temperature, e) < 0 ||
		    qn_yget_bool(g, "do_sample", &t->do_sample, e) < 0 ||
		    qn_yget_int(g, "top_k", 0, 1 << 30, &t->top_k, e) < 0 ||
		    qn_yget_double(g, "top_p", 0, 1, &t->top_p, e) < 0) {
			free(until);
			return -1;
		}
	}
	if (t->output != QN_EV_GENERATE_UNTIL) {
		free(until);
		return 0;
	}
	/* lm-eval: no until given means the few-shot delimiter. */
	size_t n = have_until ? nuntil : 1;
	t->until = calloc(n ? n : 1, sizeof *t->until);
	if (!t->until) {
		free(until);
		return qn_errf(e, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (!(t->until[i] = strdup(have_until ? until[i] : t->fewshot_delimiter))) {
			free(until);
			return qn_errf(e, "out of memory");
		}
		t->nuntil++;
	}
	free(until);
	return 0;
}

static int parse_task(struct qn_ev_task *t, struct qn_err *e)
{
	const struct qn_yval *m = &t->merged;
	for (size_t i = 0; i < m->n; i++)
		for (size_t k = 0; unsupported_keys[k]; k++)
			if (!strcmp(m->v[i].key, unsupported_keys[k])) {
				char w[1200];
				qn_yval_key_where(&m->v[i], w, sizeof w);
				return qn_errf(e,
					       "%s'%s' (an lm-evaluation-harness field) is not "
					       "supported by quern-audit eval; docs/eval.md lists "
					       "what is",
					       w, m->v[i].key);
			}
	if (qn_ycheck_keys(m, known_keys, "task", e))
		return -1;
	if (get_string(m, "task", NULL, &t->name, e))
		return -1;
	if (!t->name || !t->name[0])
		return qn_errf(e, "%s: the task needs a name ('task: NAME')", t->roots[0].file);
	if (get_string(m, "task_alias", t->name, &t->alias, e))
		return -1;
	int out = QN_EV_GENERATE_UNTIL; /* lm-eval's default */
	if (qn_yget_choice(m, "output_type", qn_ev_output_names, &out, e) < 0)
		return -1;
	t->output = (enum qn_ev_output)out;
	t->num_fewshot = -1;
	if (qn_yget_int(m, "num_fewshot", 0, 100000, &t->num_fewshot, e) < 0)
		return -1;
	long repeats = 1;
	if (qn_yget_int(m, "repeats", 1, 1000, &repeats, e) < 0)
		return -1;
	if (repeats != 1)
		return where_err(qn_yval_get(m, "repeats"), e,
				 "'repeats' other than 1 is not supported", NULL, NULL);
	int decont = 0;
	if (qn_yget_bool(m, "should_decontaminate", &decont, e) < 0)
		return -1;
	if (decont)
		return where_err(qn_yval_get(m, "should_decontaminate"), e,
				 "'should_decontaminate: true' is not supported", NULL, NULL);
	const struct qn_yval *tag = qn_yval_get(m, "tag");
	if (tag && tag->type == QN_YMAP)
		return where_err(tag, e, "'tag' must be a name or a list of names", NULL, NULL);
	if (get_string(m, "target_delimiter", " ", &t->target_delimiter, e) ||
	    get_string(m, "fewshot_delimiter", "\n\n", &t->fewshot_delimiter, e))
		return -1;
	/* fewshot_config: the sampler only */
	const struct qn_yval *fc = NULL;
	static const char *const fc_keys[] = {"sampler", NULL};
	static const char *const samplers[] = {"default", "first_n", NULL};
	if (qn_yget_map(m, "fewshot_config", &fc, e) < 0)
		return -1;
	if (qn_yval_get(m, "fewshot_config") && fc) {
		int s = 0;
		if (qn_ycheck_keys(fc, fc_keys, "fewshot_config", e) ||
		    qn_yget_choice(fc, "sampler", samplers, &s, e) < 0)
			return -1;
		t->first_n = s == 1;
	}
	/* templates */
	const struct qn_yval *tv = qn_yval_get(m, "doc_to_text");
	if (tv && tv->type == QN_YSCALAR && is_int_scalar(tv))
		return where_err(
		    tv, e, "'doc_to_text' as a choice index (multiple inputs) is not supported",
		    NULL, NULL);
	if (compile_field(t, "doc_to_text", &t->text, e) ||
	    compile_field(t, "description", &t->description, e))
		return -1;
	if (!t->text && t->output != QN_EV_LOGLIKELIHOOD_ROLLING)
		return qn_errf(e, "%s: the task needs 'doc_to_text'", t->roots[0].file);
	t->target_v = qn_yval_get(m, "doc_to_target");
	if (!t->target_v || t->target_v->type == QN_YNULL)
		return qn_errf(e, "%s: the task needs 'doc_to_target'", t->roots[0].file);
	if (t->target_v->type == QN_YLIST)
		return where_err(t->target_v, e,
				 "'doc_to_target' as a list (multiple targets) is not supported",
				 NULL, NULL);
	if (t->target_v->type != QN_YSCALAR)
		return where_err(t->target_v, e, "'doc_to_target' must be a string or an integer",
				 NULL, NULL);
	if (!is_int_scalar(t->target_v) && compile_field(t, "doc_to_target", &t->target, e))
		return -1;
	t->choice_v = qn_yval_get(m, "doc_to_choice");
	if (t->choice_v && t->choice_v->type == QN_YNULL)
		t->choice_v = NULL;
	if (t->choice_v) {
		if (t->choice_v->type == QN_YSCALAR) {
			if (compile_field(t, "doc_to_choice", &t->choice, e))
				return -1;
		} else {
			const struct qn_yval *cv = t->choice_v;
			if (cv->n == 0 || cv->n > QN_EV_MAX_CHOICES)
				return where_err(cv, e, "'doc_to_choice' needs 1 to 4096 choices",
						 NULL, NULL);
			for (size_t i = 0; i < cv->n; i++)
				if (cv->v[i].type != QN_YSCALAR)
					return where_err(&cv->v[i], e,
							 "each choice of 'doc_to_choice' must be a "
							 "string",
							 NULL, NULL);
		}
	}
	if (t->output == QN_EV_MULTIPLE_CHOICE && !t->choice_v)
		return qn_errf(e, "%s: output_type multiple_choice needs 'doc_to_choice'",
			       t->roots[0].file);
	if (parse_metrics(t, e) || parse_generation(t, e))
		return -1;
	const struct qn_yval *md = NULL;
	if (qn_yget_map(m, "metadata", &md, e) < 0)
		return -1;
	const struct qn_yval *ver = md ? qn_yval_get(md, "version") : NULL;
	t->version = ver ? yval_json(ver, 0) : json_null();
	/* dataset */
	const struct qn_yval *dp = qn_yval_get(m, "dataset_path");
	if (!dp || dp->type != QN_YSCALAR || dp->slen == 0)
		return dp ? where_err(dp, e, "'dataset_path' must be a file or directory name",
				      NULL, NULL)
			  : qn_errf(e, "%s: the task needs 'dataset_path'", t->roots[0].file);
	return 0;
}

/* The file of split name for this task (malloc'd), or NULL with e. */
static char *split_file(struct qn_ev_task *t, const char *split, struct qn_err *e)
{
	const struct qn_yval *m = &t->merged, *dp = qn_yval_get(m, "dataset_path");
	const char *name = NULL;
	if (qn_yget_str(m, "dataset_name", &name, e) < 0)
		return NULL;
	if (!strcmp(dp->s, "json") || !strcmp(dp->s, "jsonl")) {
		const struct qn_yval *kw = NULL, *df;
		static const char *const kw_keys[] = {"data_files", NULL};
		if (qn_yget_map(m, "dataset_kwargs", &kw, e) < 0)
			return NULL;
		if (!kw) {
			where_err(dp, e,
				  "dataset_path '%s' needs dataset_kwargs: {data_files: ...}",
				  dp->s, NULL);
			return NULL;
		}
		if (qn_ycheck_keys(kw, kw_keys, "dataset_kwargs", e))
			return NULL;
		df = qn_yval_get(kw, "data_files");
		const struct qn_yval *f = NULL;
		if (df && df->type == QN_YSCALAR)
			f = !strcmp(split, "train") ? df : NULL;
		else if (df && df->type == QN_YMAP)
			f = qn_yval_get(df, split);
		else {
			where_err(df ? df : kw, e,
				  "'data_files' must be a file or a map of split: file", NULL,
				  NULL);
			return NULL;
		}
		if (!f || f->type != QN_YSCALAR) {
			where_err(df, e, "no data file for split '%s' in data_files", split, NULL);
			return NULL;
		}
		char *p = join_path(t->dir, f->s);
		if (!p)
			qn_errf(e, "out of memory");
		return p;
	}
	if (qn_yval_get(m, "dataset_kwargs")) {
		where_err(qn_yval_get(m, "dataset_kwargs"), e,
			  "'dataset_kwargs' is for dataset_path: json", NULL, NULL);
		return NULL;
	}
	char *base = join_path(t->dir, dp->s);
	struct stat st;
	if (!base) {
		qn_errf(e, "out of memory");
		return NULL;
	}
	if (stat(base, &st)) {
		char w[1200];
		qn_yval_where(dp, w, sizeof w);
		qn_errno(e, errno, "%scannot read dataset_path '%s'", w, base);
		free(base);
		return NULL;
	}
	if (!S_ISDIR(st.st_mode))
		return base; /* one file: every split */
	size_t n = strlen(base) + (name ? strlen(name) : 0) + strlen(split) + 16;
	char *p = malloc(n);
	if (!p) {
		free(base);
		qn_errf(e, "out of memory");
		return NULL;
	}
	snprintf(p, n, "%s/%s%s%s.jsonl", base, name ? name : "", name ? "/" : "", split);
	if (access(p, F_OK)) {
		size_t l = strlen(p);
		char *z = realloc(p, l + 5);
		if (z) {
			p = z;
			memcpy(p + l, ".zst", 5);
			if (access(p, F_OK))
				p[l] = 0; /* report the plain name */
		}
	}
	free(base);
	return p;
}

static void split_release(struct qn_ev_split *s)
{
	for (size_t i = 0; i < s->n; i++)
		json_decref(s->docs[i]);
	free(s->docs);
	free(s->lines);
	free(s->path);
	memset(s, 0, sizeof *s);
}

static int read_split(const char *path, struct qn_ev_split *s, struct qn_err *e)
{
	struct qn_rd *r = qn_rd_open(path, 0, e);
	if (!r)
		return -1;
	struct qn_buf line;
	qn_buf_init(&line, (size_t)1 << 28);
	size_t lineno = 0, cap = 0;
	int got, rc = 0;
	if (!(s->path = strdup(path)))
		rc = qn_errf(e, "out of memory");
	while (rc == 0 && (got = qn_rd_line(r, &line, (size_t)1 << 28, e)) != 0) {
		lineno++;
		if (got == -1) {
			rc = -1;
			break;
		}
		if (got == QN_RD_TOOLONG) {
			rc = qn_errf(e, "%s:%zu: line longer than 256 MiB", path, lineno);
			break;
		}
		size_t k = 0;
		while (k < line.len && isspace((unsigned char)line.data[k]))
			k++;
		if (k == line.len)
			continue;
		json_error_t je;
		json_t *o = json_loadb(line.data, line.len, 0, &je);
		if (!json_is_object(o)) {
			rc = qn_errf(e, "%s:%zu: %s", path, lineno,
				     o ? "not a JSON object" : je.text);
			json_decref(o);
			break;
		}
		if (s->n == cap) {
			cap = cap ? 2 * cap : 256;
			json_t **d = realloc(s->docs, cap * sizeof *d);
			size_t *l = d ? realloc(s->lines, cap * sizeof *l) : NULL;
			if (d)
				s->docs = d;
			if (!l) {
				json_decref(o);
				rc = qn_errf(e, "out of memory");
				break;
			}
			s->lines = l;
		}
		s->docs[s->n] = o;
		s->lines[s->n++] = lineno;
	}
	qn_rd_close(r);
	qn_buf_release(&line);
	return rc;
}

int qn_ev_task_load_data(struct qn_ev_task *t, long k, struct qn_err *e)
{
	const struct qn_yval *m = &t->merged;
	const char *test = NULL, *val = NULL, *train = NULL, *fs = NULL;
	if (qn_yget_str(m, "test_split", &test, e) < 0 ||
	    qn_yget_str(m, "validation_split", &val, e) < 0 ||
	    qn_yget_str(m, "training_split", &train, e) < 0 ||
	    qn_yget_str(m, "fewshot_split", &fs, e) < 0)
		return -1;
	const char *ev = test ? test : val ? val : "test";
	const char *few = fs ? fs : train ? train : val ? val : test ? test : ev;
	if (!(t->eval_split = strdup(ev)) || !(t->fewshot_split = strdup(few)))
		return qn_errf(e, "out of memory");
	if (!(t->data_eval = split_file(t, ev, e)))
		return -1;
	if (read_split(t->data_eval, &t->eval, e))
		return -1;
	if (k <= 0)
		return 0;
	if (!(t->data_fewshot = split_file(t, few, e)))
		return -1;
	/* lm-eval draws one more shot when fewshot_split equals test_split as written
	 * (both unset counts); quern also when the two are the same file. */
	int same = !strcmp(t->data_eval, t->data_fewshot);
	t->draw_extra = same || (fs == test || (fs && test && !strcmp(fs, test)));
	if (same) {
		/* share the documents: equal by content anyway */
		t->fewshot = t->eval;
		t->fewshot.path = strdup(t->eval.path);
		t->fewshot.docs = malloc((t->eval.n ? t->eval.n : 1) * sizeof *t->fewshot.docs);
		t->fewshot.lines = malloc((t->eval.n ? t->eval.n : 1) * sizeof *t->fewshot.lines);
		if (!t->fewshot.path || !t->fewshot.docs || !t->fewshot.lines)
			return qn_errf(e, "out of memory");
		for (size_t i = 0; i < t->eval.n; i++) {
			t->fewshot.docs[i] = json_incref(t->eval.docs[i]);
			t->fewshot.lines[i] = t->eval.lines[i];
		}
		return 0;
	}
	return read_split(t->data_fewshot, &t->fewshot, e);
}

static int task_finish(struct qn_ev_task *t, struct qn_err *e)
{
	if (t->roots[0].type != QN_YMAP)
		return qn_errf(e, "%s: a task file must be a map of fields", t->roots[0].file);
	if (merge_roots(t, e) || parse_task(t, e))
		return -1;
	/* the resolved config, lm-eval's TaskConfig fields */
	json_t *c = yval_json(&t->merged, 0);
	if (!c)
		return qn_errf(e, "out of memory");
	json_object_set_new(c, "task", json_string(t->name));
	json_object_set_new(c, "output_type", json_string(qn_ev_output_names[t->output]));
	json_object_set_new(c, "target_delimiter", json_string(t->target_delimiter));
	json_object_set_new(c, "fewshot_delimiter", json_string(t->fewshot_delimiter));
	json_t *ml = json_array();
	for (size_t i = 0; i < t->nmetrics; i++) {
		const struct qn_ev_metric *mt = &t->metrics[i];
		json_t *o = json_pack("{s:s,s:s,s:b}", "metric", mt->name, "aggregation",
				      mt->agg_name, "higher_is_better", mt->higher_is_better);
		if (mt->id == QN_EVM_EXACT_MATCH) {
			json_object_set_new(o, "ignore_case", json_boolean(mt->em.ignore_case));
			json_object_set_new(o, "ignore_punctuation",
					    json_boolean(mt->em.ignore_punctuation));
			json_object_set_new(o, "ignore_numbers",
					    json_boolean(mt->em.ignore_numbers));
			json_t *rx = json_array();
			for (size_t r = 0; r < mt->em.nregex; r++)
				json_array_append_new(rx, json_string(mt->regex_src[r]));
			json_object_set_new(o, "regexes_to_ignore", rx);
		}
		json_array_append_new(ml, o);
	}
	json_object_set_new(c, "metric_list", ml);
	if (t->output == QN_EV_GENERATE_UNTIL) {
		json_t *u = json_array();
		for (size_t i = 0; i < t->nuntil; i++)
			json_array_append_new(u, json_string(t->until[i]));
		json_object_set_new(c, "generation_kwargs",
				    json_pack("{s:o,s:i,s:f,s:b}", "until", u, "max_gen_toks",
					      (json_int_t)t->max_gen_toks, "temperature",
					      t->temperature, "do_sample", t->do_sample));
	}
	json_object_set_new(c, "repeats", json_integer(1));
	json_object_set_new(c, "should_decontaminate", json_false());
	t->config = c;
	return 0;
}

int qn_ev_task_load(const char *path, struct qn_ev_task *t, struct qn_err *e)
{
	memset(t, 0, sizeof *t);
	if (!(t->paths[0] = strdup(path)) || !(t->dir = dir_of(path)))
		return qn_errf(e, "out of memory");
	if (qn_yaml_load(t->paths[0], &t->roots[0], e))
		return -1;
	t->nroots = 1;
	if (t->roots[0].type == QN_YMAP && load_includes(t, t->dir, e))
		return -1;
	return task_finish(t, e);
}

int qn_ev_task_parse(const char *text, size_t len, const char *name, const char *dir,
		     struct qn_ev_task *t, struct qn_err *e)
{
	memset(t, 0, sizeof *t);
	if (!(t->paths[0] = strdup(name)) || (dir && !(t->dir = strdup(dir))))
		return qn_errf(e, "out of memory");
	if (qn_yaml_parse(text, len, t->paths[0], &t->roots[0], e))
		return -1;
	t->nroots = 1;
	if (t->roots[0].type == QN_YMAP && load_includes(t, t->dir, e))
		return -1;
	return task_finish(t, e);
}

void qn_ev_task_release(struct qn_ev_task *t)
{
	if (!t)
		return;
	qn_ev_tmpl_free(t->text);
	qn_ev_tmpl_free(t->target);
	qn_ev_tmpl_free(t->choice);
	qn_ev_tmpl_free(t->description);
	for (size_t i = 0; i < t->nmetrics; i++) {
		for (size_t r = 0; r < t->metrics[i].em.nregex; r++)
			if (t->metrics[i].em.regexes)
				qn_ev_regex_free(t->metrics[i].em.regexes[r]);
		free(t->metrics[i].em.regexes);
		free(t->metrics[i].regex_src);
	}
	free(t->metrics);
	for (size_t i = 0; i < t->nuntil; i++)
		free(t->until[i]);
	free(t->until);
	json_decref(t->version);
	json_decref(t->config);
	split_release(&t->eval);
	split_release(&t->fewshot);
	free(t->data_eval);
	free(t->data_fewshot);
	free(t->eval_split);
	free(t->fewshot_split);
	free(t->name);
	free(t->alias);
	free(t->dir);
	free(t->target_delimiter);
	free(t->fewshot_delimiter);
	free(t->merged.v);
	for (size_t i = 0; i < QN_EV_MAX_INCLUDE; i++) {
		if (i < t->nroots)
			qn_yval_release(&t->roots[i]);
		free(t->paths[i]);
	}
	memset(t, 0, sizeof *t);
}

/* ---- documents to prompts ----------------------------------------------------------- */

/* Where a document is, for messages: "data/test.jsonl:17". */
static void doc_where(const struct qn_ev_split *s, size_t i, struct qn_err *e)
{
	qn_err_prefix(e, "%s:%zu", s->path, s->lines[i]);
}

/* lm-eval's doc_to_text: a field's value when the template is a field name, else rendered. */
static int text_of(const struct qn_ev_task *t, json_t *doc, struct qn_buf *out, struct qn_err *e)
{
	if (!t->text)
		return 0;
	json_t *v = json_object_get(doc, t->text->src);
	if (v) {
		if (json_is_integer(v) && t->choice_v)
			return qn_errf(e,
				       "doc_to_text gives a choice index (multiple inputs), which "
				       "is not supported");
		return qn_ev_pystr(v, out) ? qn_errf(e, "text too long") : 0;
	}
	size_t at = out->len;
	if (qn_ev_tmpl_render(t->text, doc, out, e))
		return -1;
	if (t->choice_v && out->len > at) {
		size_t i;
		for (i = at; i < out->len && isdigit((unsigned char)out->data[i]); i++)
			;
		if (i == out->len)
			return qn_errf(e, "doc_to_text gives a choice index (multiple inputs), "
					  "which is not supported");
	}
	return 0;
}

/* lm-eval's doc_to_target: an integer (a choice index) or a string; new reference. */
static json_t *target_of(const struct qn_ev_task *t, json_t *doc, struct qn_err *e)
{
	if (!t->target)
		return json_integer(strtoll(t->target_v->s, NULL, 10));
	json_t *v = json_object_get(doc, t->target->src);
	if (v) {
		if (json_is_integer(v) || json_is_string(v))
			return json_incref(v);
		if (json_is_array(v)) {
			qn_errf(e, "doc_to_target gives a list (multiple targets), which is not "
				   "supported");
			return NULL;
		}
		struct qn_buf b;
		qn_buf_init(&b, QN_EV_MAX_TEXT);
		json_t *s =
		    qn_ev_pystr(v, &b) ? NULL : json_stringn_nocheck(b.data ? b.data : "", b.len);
		qn_buf_release(&b);
		return s;
	}
	struct qn_buf b;
	qn_buf_init(&b, QN_EV_MAX_TEXT);
	json_t *out = NULL;
	if (qn_ev_tmpl_render(t->target, doc, &b, e) == 0) {
		size_t i;
		for (i = 0; i < b.len && isdigit((unsigned char)b.data[i]); i++)
			;
		if (b.len && i == b.len && t->choice_v && b.len < 18)
			out = json_integer(strtoll(b.data, NULL, 10));
		else
			out = json_stringn_nocheck(b.data ? b.data : "", b.len);
	}
	qn_buf_release(&b);
	return out;
}

/* Parses a Python list literal of strings and numbers (what ast.literal_eval reads here). */
static json_t *py_list_literal(const char *s, size_t n, struct qn_err *e)
{
	size_t i = 0;
	json_t *a = json_array();
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	if (i >= n || s[i] != '[')
		goto bad;
	i++;
	for (;;) {
		while (i < n && isspace((unsigned char)s[i]))
			i++;
		if (i < n && s[i] == ']') {
			i++;
			break;
		}
		if (i >= n)
			goto bad;
		if (s[i] == '\'' || s[i] == '"') {
			char q = s[i++];
			struct qn_buf b;
			qn_buf_init(&b, QN_EV_MAX_TEXT);
			while (i < n && s[i] != q) {
				char c = s[i++];
				if (c == '\\' && i < n) {
					c = s[i++];
					c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
				}
				qn_buf_addc(&b, c);
			}
			if (i >= n) {
				qn_buf_release(&b);
				goto bad;
			}
			i++;
			json_array_append_new(a, json_stringn_nocheck(b.data ? b.data : "", b.len));
			qn_buf_release(&b);
		} else {
			size_t b = i;
			while (i < n && s[i] != ',' && s[i] != ']' && !isspace((unsigned char)s[i]))
				i++;
			if (b == i)
				goto bad;
			json_array_append_new(a, json_stringn_nocheck(s + b, i - b));
		}
		if (json_array_size(a) > QN_EV_MAX_CHOICES)
			goto bad;
		while (i < n && isspace((unsigned char)s[i]))
			i++;
		if (i < n && s[i] == ',') {
			i++;
			continue;
		}
		if (i < n && s[i] == ']') {
			i++;
			break;
		}
		goto bad;
	}
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	if (i == n)
		return a;
bad:
	json_decref(a);
	qn_errf(e, "doc_to_choice must give a list of choices, not '%.60s'", s);
	return NULL;
}

/* The choices as a JSON array of strings (new reference). */
static json_t *choices_of(const struct qn_ev_task *t, json_t *doc, struct qn_err *e)
{
	json_t *raw = NULL;
	const struct qn_yval *cv = t->choice_v;
	if (cv->type == QN_YLIST || cv->type == QN_YMAP) {
		json_t *a = json_array();
		for (size_t i = 0; i < cv->n; i++)
			json_array_append_new(a, json_stringn_nocheck(cv->v[i].s, cv->v[i].slen));
		return a;
	}
	json_t *f = json_object_get(doc, t->choice->src);
	if (f) {
		raw = json_incref(f);
	} else {
		int single;
		raw = qn_ev_tmpl_value(t->choice, doc, &single, e);
		if (!single) {
			struct qn_buf b;
			qn_buf_init(&b, QN_EV_MAX_TEXT);
			if (qn_ev_tmpl_render(t->choice, doc, &b, e) == 0)
				raw = py_list_literal(b.data ? b.data : "", b.len, e);
			qn_buf_release(&b);
		} else if (raw && json_is_string(raw)) {
			json_t *l =
			    py_list_literal(json_string_value(raw), json_string_length(raw), e);
			json_decref(raw);
			raw = l;
		}
		if (!raw)
			return NULL;
	}
	if (!json_is_array(raw) || json_array_size(raw) == 0 ||
	    json_array_size(raw) > QN_EV_MAX_CHOICES) {
		json_decref(raw);
		qn_errf(e, "doc_to_choice must give a list of 1 to %d choices", QN_EV_MAX_CHOICES);
		return NULL;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < json_array_size(raw); i++) {
		struct qn_buf b;
		qn_buf_init(&b, QN_EV_MAX_TEXT);
		qn_ev_pystr(json_array_get(raw, i), &b);
		json_array_append_new(a, json_stringn_nocheck(b.data ? b.data : "", b.len));
		qn_buf_release(&b);
	}
	json_decref(raw);
	return a;
}

/* A shot's target text, as lm-eval's sampler writes it; NULL when empty. */
static int shot_target(const struct qn_ev_task *t, json_t *doc, struct qn_buf *out,
		       struct qn_err *e)
{
	json_t *tg = target_of(t, doc, e);
	if (!tg)
		return -1;
	int rc = 0;
	if (json_is_integer(tg) && t->choice_v) {
		json_t *ch = choices_of(t, doc, e);
		json_int_t i = json_integer_value(tg);
		if (!ch)
			rc = -1;
		else if (i < 0 || (size_t)i >= json_array_size(ch))
			rc = qn_errf(e, "doc_to_target %lld is not a choice (%zu choices)",
				     (long long)i, json_array_size(ch));
		else
			rc = qn_ev_pystr(json_array_get(ch, (size_t)i), out);
		json_decref(ch);
	} else if (!(json_is_string(tg) && json_string_length(tg) == 0)) {
		rc = qn_ev_pystr(tg, out);
	}
	json_decref(tg);
	return rc;
}

static int add_cont(struct qn_ev_inst *in, const char *a, size_t na, const char *b, size_t nb)
{
	char *s = malloc(na + nb + 1);
	if (!s)
		return -1;
	memcpy(s, a, na);
	memcpy(s + na, b, nb);
	s[na + nb] = 0;
	in->conts[in->ncont] = s;
	in->cont_lens[in->ncont++] = na + nb;
	return 0;
}

static int build_one(const struct qn_ev_task *t, size_t d, const size_t *shots, size_t nshots,
		     struct qn_ev_inst *in, struct qn_err *e)
{
	json_t *doc = t->eval.docs[d];
	struct qn_buf p;
	qn_buf_init(&p, QN_EV_MAX_TEXT);
	int rc = 0;
	in->doc_id = d;
	in->gold = -1;
	if (t->description && qn_ev_tmpl_render(t->description, doc, &p, e))
		goto fail;
	for (size_t s = 0; s < nshots; s++) {
		json_t *sd = t->fewshot.docs[shots[s]];
		size_t at;
		if (text_of(t, sd, &p, e))
			goto shot_fail;
		at = p.len;
		if (qn_buf_adds(&p, t->target_delimiter))
			goto toolong;
		size_t tat = p.len;
		if (shot_target(t, sd, &p, e))
			goto shot_fail;
		if (p.len == tat) { /* an empty target: no delimiters */
			p.len = at;
			p.data[at] = 0;
			continue;
		}
		if (qn_buf_adds(&p, t->fewshot_delimiter))
			goto toolong;
		continue;
	shot_fail:
		qn_err_prefix(e, "%s:%zu (a few-shot example)", t->fewshot.path,
			      t->fewshot.lines[shots[s]]);
		qn_buf_release(&p);
		return -1;
	}
	if (text_of(t, doc, &p, e))
		goto fail;
	in->prompt_len = p.len;
	in->prompt = p.data ? qn_buf_detach(&p, NULL) : strdup("");
	if (!in->prompt)
		goto oom;
	if (nshots) {
		if (!(in->shots = malloc(nshots * sizeof *in->shots)))
			goto oom;
		memcpy(in->shots, shots, nshots * sizeof *shots);
		in->nshots = nshots;
	}
	if (!(in->target = target_of(t, doc, e)))
		goto fail;
	json_t *ch = NULL;
	if (t->choice_v && !(ch = choices_of(t, doc, e)))
		goto fail;
	size_t nch = ch ? json_array_size(ch) : 0;
	size_t ncont = t->output == QN_EV_MULTIPLE_CHOICE ? nch * (t->need_uncond ? 2 : 1) : 1;
	in->conts = calloc(ncont, sizeof *in->conts);
	in->cont_lens = calloc(ncont, sizeof *in->cont_lens);
	in->choice_chars = calloc(nch ? nch : 1, sizeof *in->choice_chars);
	if (!in->conts || !in->cont_lens || !in->choice_chars) {
		json_decref(ch);
		goto oom;
	}
	struct qn_buf tb;
	qn_buf_init(&tb, QN_EV_MAX_TEXT);
	switch (t->output) {
	case QN_EV_MULTIPLE_CHOICE: {
		size_t dl = strlen(t->target_delimiter);
		for (size_t r = 0; r < (t->need_uncond ? 2u : 1u) && rc == 0; r++)
			for (size_t i = 0; i < nch && rc == 0; i++) {
				json_t *c = json_array_get(ch, i);
				rc = add_cont(in, t->target_delimiter, dl, json_string_value(c),
					      json_string_length(c));
				in->choice_chars[i] = (double)qn_ev_chars(json_string_value(c),
									  json_string_length(c));
			}
		if (json_is_integer(in->target)) {
			json_int_t g = json_integer_value(in->target);
			in->gold = g >= 0 && (size_t)g < nch ? (long)g : -1;
		} else {
			for (size_t i = 0; i < nch; i++)
				if (json_equal(json_array_get(ch, i), in->target)) {
					in->gold = (long)i;
					break;
				}
		}
		break;
	}
	case QN_EV_GENERATE_UNTIL:
		if (json_is_integer(in->target) && ch) {
			json_int_t g = json_integer_value(in->target);
			if (g < 0 || (size_t)g >= nch) {
				rc = qn_errf(e, "doc_to_target %lld is not a choice (%zu choices)",
					     (long long)g, nch);
				break;
			}
			rc = qn_ev_pystr(json_array_get(ch, (size_t)g), &tb);
		} else {
			rc = qn_ev_pystr(in->target, &tb);
		}
		in->gold_len = tb.len;
		in->gold_text = tb.data ? qn_buf_detach(&tb, NULL) : strdup("");
		if (!in->gold_text)
			rc = qn_errf(e, "out of memory");
		break;
	default: /* loglikelihood, loglikelihood_rolling: the target text */
		if (json_is_integer(in->target) && ch) {
			json_int_t g = json_integer_value(in->target);
			if (g >= 0 && (size_t)g < nch)
				rc = qn_ev_pystr(json_array_get(ch, (size_t)g), &tb);
			else
				rc = qn_errf(e, "doc_to_target %lld is not a choice", (long long)g);
		} else {
			rc = qn_ev_pystr(in->target, &tb);
		}
		if (rc == 0)
			rc = add_cont(in, tb.data ? tb.data : "", tb.len, "", 0);
		if (rc == 0 && t->output == QN_EV_LOGLIKELIHOOD_ROLLING) {
			/* the request's only argument is the target */
			free(in->prompt);
			in->prompt = strdup(in->conts[0]);
			in->prompt_len = in->cont_lens[0];
			if (!in->prompt)
				rc = -1;
		}
		break;
	}
	qn_buf_release(&tb);
	json_decref(ch);
	if (rc) {
		if (!e->msg[0])
			qn_errf(e, "out of memory");
		goto fail;
	}
	return 0;
toolong:
	qn_errf(e, "the prompt is longer than %u bytes", QN_EV_MAX_TEXT);
	goto fail;
oom:
	qn_errf(e, "out of memory");
fail:
	doc_where(&t->eval, d, e);
	qn_buf_release(&p);
	return -1;
}

int qn_ev_task_build(const struct qn_ev_task *t, long k, uint64_t seed, long limit,
		     struct qn_ev_inst **out, size_t *n, struct qn_err *e)
{
	size_t count = t->eval.n;
	if (limit >= 0 && (size_t)limit < count)
		count = (size_t)limit;
	*out = NULL;
	*n = 0;
	struct qn_ev_inst *v = calloc(count ? count : 1, sizeof *v);
	size_t draw = k > 0 ? (size_t)k + (t->draw_extra ? 1 : 0) : 0;
	size_t *picked = calloc(draw ? draw : 1, sizeof *picked);
	size_t *shots = calloc(draw ? draw : 1, sizeof *shots);
	if (!v || !picked || !shots) {
		free(v);
		free(picked);
		free(shots);
		return qn_errf(e, "out of memory");
	}
	if (k > 0 && draw > t->fewshot.n) {
		free(v);
		free(picked);
		free(shots);
		return qn_errf(e, "%s: %ld shots need %zu documents in split '%s', it has %zu",
			       t->fewshot.path, k, draw, t->fewshot_split, t->fewshot.n);
	}
	struct qn_ev_pyrandom rnd;
	qn_ev_pyrandom_seed(&rnd, seed);
	int rc = 0;
	for (size_t d = 0; d < count && rc == 0; d++) {
		size_t ns = 0;
		if (k > 0) {
			if (t->first_n) {
				for (size_t i = 0; i < draw; i++)
					picked[i] = i;
			} else if (qn_ev_pyrandom_sample(&rnd, t->fewshot.n, draw, picked)) {
				rc = qn_errf(e, "out of memory");
				break;
			}
			for (size_t i = 0; i < draw && ns < (size_t)k; i++)
				if (!json_equal(t->fewshot.docs[picked[i]], t->eval.docs[d]))
					shots[ns++] = picked[i];
		}
		rc = build_one(t, d, shots, ns, &v[d], e);
		*n = d + 1;
	}
	free(picked);
	free(shots);
	*out = v;
	if (rc) {
		qn_ev_insts_free(v, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

void qn_ev_insts_free(struct qn_ev_inst *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].prompt);
		for (size_t c = 0; c < v[i].ncont; c++)
			free(v[i].conts[c]);
		free(v[i].conts);
		free(v[i].cont_lens);
		free(v[i].choice_chars);
		json_decref(v[i].target);
		free(v[i].gold_text);
		free(v[i].shots);
	}
	free(v);
}
