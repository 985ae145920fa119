/*
 * test_linclass - the linear classifier's features (tokens, word and
 * character n-grams as fastText takes them), its gradient against finite
 * differences of the loss, exact save/load round trips, loader refusals,
 * one-thread determinism, and that it learns a separable task.
 */
#include "check.h"
#include "err.h"
#include "linclass.h"
#include "safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long feats(const struct qn_lc_params *p, const char *s, struct qn_lc_feats *f)
{
	return qn_lc_features(p, s, strlen(s), f);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorted copy of f's ids, for comparing feature multisets. */
static uint32_t *sorted(const struct qn_lc_feats *f)
{
	uint32_t *v = malloc((f->n ? f->n : 1) * sizeof *v);
	memcpy(v, f->id, f->n * sizeof *v);
	qsort(v, f->n, sizeof *v, cmp_u32);
	return v;
}

static void test_features(void)
{
	struct qn_lc_params p;
	struct qn_lc_feats f, g;
	qn_lc_params_default(&p);
	qn_lc_feats_init(&f);
	qn_lc_feats_init(&g);

	p.word_ngrams = 1;
	CHECK_NAMED("3 tokens: word, punctuation run, word", feats(&p, "Hello,  world", &f) == 3);
	CHECK_NAMED("3 unigram features", f.n == 3);
	uint32_t a[3];
	memcpy(a, f.id, sizeof a);
	feats(&p, " hello , WORLD\n", &f);
	CHECK_NAMED("case and spacing do not change the features",
		    f.n == 3 && !memcmp(a, f.id, sizeof a));
	p.lowercase = 0;
	feats(&p, "hello , WORLD", &f);
	CHECK_NAMED("--no-lowercase keeps case apart",
		    f.n == 3 && f.id[2] != a[2] && f.id[0] == a[0]);
	p.lowercase = 1;
	CHECK_NAMED("'...' is one token", feats(&p, "a...b", &f) == 3);
	CHECK_NAMED("UTF-8 bytes are word bytes", feats(&p, "caf\xc3\xa9 na\xc3\xafve", &f) == 2);
	CHECK_NAMED("empty text: no features", feats(&p, " \t\n", &f) == 0 && f.n == 0);

	p.word_ngrams = 3;
	feats(&p, "a b c d", &f);
	CHECK_NAMED("word n-grams up to 3: 4 + 3 + 2 features", f.n == 9);
	feats(&p, "a b c d", &g);
	uint32_t *x = sorted(&f);
	feats(&p, "d c b a", &g);
	uint32_t *y = sorted(&g);
	CHECK_NAMED("n-grams depend on order (unigrams do not)", memcmp(x, y, 9 * sizeof *x) != 0);
	free(x);
	free(y);

	/* fastText's subwords of "<ab>" for minn 1, maxn 2: <a a ab b b> (not < nor >). */
	p.word_ngrams = 1;
	p.minn = 1;
	p.maxn = 2;
	feats(&p, "ab", &f);
	CHECK_NAMED("char n-grams of <ab>, 1..2: the word + 5", f.n == 6);
	p.minn = p.maxn = 1;
	feats(&p, "\xc3\xa9", &f);
	CHECK_NAMED("a 2-byte character is one 1-gram", f.n == 2);
	p.minn = 3;
	p.maxn = 5;
	feats(&p, "where", &f); /* <where>: 7 chars; 3-grams 5, 4-grams 4, 5-grams 3 */
	CHECK_NAMED("char n-grams of <where>, 3..5: the word + 12", f.n == 13);
	feats(&p, ", ,", &f);
	CHECK_NAMED("punctuation gets no char n-grams", f.n == 2);

	p.buckets = 7;
	p.minn = p.maxn = 0;
	p.word_ngrams = 2;
	feats(&p, "the quick brown fox jumps over the lazy dog", &f);
	int in_range = 1;
	for (size_t i = 0; i < f.n; i++)
		in_range &= f.id[i] < 7;
	CHECK_NAMED("every bucket below --buckets", f.n == 17 && in_range);

	qn_lc_params_default(&p);
	CHECK_NAMED("default params are valid", qn_lc_params_check(&p, NULL) == 0);
	p.minn = 4;
	p.maxn = 3;
	CHECK_NAMED("minn > maxn refused", qn_lc_params_check(&p, NULL) == -1);
	qn_lc_feats_release(&f);
	qn_lc_feats_release(&g);
}

/* -ln p(gold) of the model as it is, in double from the float forward. */
static double loss_of(struct qn_lc_model *m, const uint32_t *rows, size_t n, size_t gold)
{
	float h[8], pr[8];
	qn_lc_forward(m, rows, n, h, pr);
	return -log((double)pr[gold]);
}

static double qn_lc_test_rand(uint64_t *st)
{
	*st = *st * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(*st >> 11) * 0x1p-53;
}

static struct qn_lc_model *tiny(size_t k, int dim, size_t rows, struct qn_err *e)
{
	struct qn_lc_params p;
	qn_lc_params_default(&p);
	p.dim = dim;
	p.buckets = 1000;
	const char *names[] = {"a", "b", "c", "d"};
	struct qn_lc_model *m = qn_lc_model_new(&p, names, k, e);
	uint32_t ids[16];
	for (size_t i = 0; i < rows; i++)
		ids[i] = (uint32_t)(i * 37 + 5);
	if (!m || qn_lc_model_map(m, ids, rows, 1) || qn_lc_model_init_weights(m, 7, e))
		return NULL;
	uint64_t st = 99;
	for (size_t i = 0; i < rows * (size_t)dim; i++) /* input rows start at 0: make them not */
		m->in[i] = (float)((double)(qn_lc_test_rand(&st)) - 0.5);
	return m;
}

/*
 * qn_lc_step is SGD: each parameter moves by -lr * dLoss/dparam. Compare
 * that move with central differences of the loss (rows 0 and 2 repeated,
 * so a row that occurs twice gets twice the gradient).
 */
static void test_gradient(void)
{
	struct qn_err e;
	struct qn_lc_model *m = tiny(3, 4, 5, &e);
	CHECK_NAMED("tiny model", m != NULL);
	if (!m)
		return;
	const uint32_t rows[] = {0, 2, 2, 4};
	const size_t n = 4, gold = 1;
	const float lr = 1e-3f;
	size_t np_in = 5 * 4, np_out = 3 * 4;
	float *in0 = malloc(np_in * sizeof *in0), *out0 = malloc(np_out * sizeof *out0);
	memcpy(in0, m->in, np_in * sizeof *in0);
	memcpy(out0, m->out, np_out * sizeof *out0);
	double num_in[20], num_out[12];
	const double h = 1e-2;
	for (size_t i = 0; i < np_in; i++) {
		float keep = m->in[i];
		m->in[i] = keep + (float)h;
		double up = loss_of(m, rows, n, gold);
		m->in[i] = keep - (float)h;
		double down = loss_of(m, rows, n, gold);
		m->in[i] = keep;
		num_in[i] = (up - down) / (2 * h);
	}
	for (size_t i = 0; i < np_out; i++) {
		float keep = m->out[i];
		m->out[i] = keep + (float)h;
		double up = loss_of(m, rows, n, gold);
		m->out[i] = keep - (float)h;
		double down = loss_of(m, rows, n, gold);
		m->out[i] = keep;
		num_out[i] = (up - down) / (2 * h);
	}
	float hid[4], grad[4], pr[3];
	double l0 = loss_of(m, rows, n, gold);
	double ls = qn_lc_step(m, rows, n, gold, lr, hid, grad, pr);
	CHECK_NAMED("step returns the loss before it", fabs(ls - l0) < 1e-5);
	double worst = 0;
	for (size_t i = 0; i < np_in; i++) {
		double an = -(double)(m->in[i] - in0[i]) / lr;
		worst = fmax(worst, fabs(an - num_in[i]) / fmax(1e-2, fabs(num_in[i])));
	}
	for (size_t i = 0; i < np_out; i++) {
		double an = -(double)(m->out[i] - out0[i]) / lr;
		worst = fmax(worst, fabs(an - num_out[i]) / fmax(1e-2, fabs(num_out[i])));
	}
	printf("  gradient: worst relative difference %.2e\n", worst);
	CHECK_NAMED("SGD step = -lr x finite-difference gradient (rel. 2e-2)", worst < 2e-2);
	CHECK_NAMED("the step lowers the loss", loss_of(m, rows, n, gold) < l0);
	/* a row the example does not use does not move */
	CHECK_NAMED("unused rows untouched", !memcmp(m->in + 4, in0 + 4, 4 * sizeof(float)) &&
						 !memcmp(m->in + 12, in0 + 12, 4 * sizeof(float)));
	free(in0);
	free(out0);
	qn_lc_model_free(m);
}

/* A separable task: label i's texts hold word "wI" among shared filler. */
static int make_data(struct qn_lc_model *m, struct qn_lc_data *d, size_t n)
{
	struct qn_lc_feats f;
	char text[256];
	size_t cap = 0;
	qn_lc_feats_init(&f);
	memset(d, 0, sizeof *d);
	d->off = calloc(n + 1, sizeof *d->off);
	d->label = calloc(n, sizeof *d->label);
	d->words = calloc(n, sizeof *d->words);
	uint64_t st = 3;
	for (size_t i = 0; i < n; i++) {
		uint32_t y = (uint32_t)(i % m->k);
		snprintf(text, sizeof text, "filler %u some words w%u and more f%u",
			 (unsigned)(qn_lc_test_rand(&st) * 50), y,
			 (unsigned)(qn_lc_test_rand(&st) * 9));
		long w = qn_lc_features(&m->p, text, strlen(text), &f);
		if (w < 0 || qn_lc_model_map(m, f.id, f.n, 1))
			return -1;
		if (d->off[i] + f.n > cap) {
			cap = (cap + f.n) * 2;
			d->feat = realloc(d->feat, cap * sizeof *d->feat);
		}
		memcpy(d->feat + d->off[i], f.id, f.n * sizeof *f.id);
		d->off[i + 1] = d->off[i] + f.n;
		d->label[i] = y;
		d->words[i] = (uint32_t)w;
		d->total_words += (uint64_t)w;
	}
	d->n = n;
	qn_lc_feats_release(&f);
	return 0;
}

static void data_free(struct qn_lc_data *d)
{
	free(d->feat);
	free(d->off);
	free(d->label);
	free(d->words);
}

static struct qn_lc_model *trained(uint64_t seed, int threads, struct qn_lc_data *d)
{
	struct qn_lc_params p;
	struct qn_err e;
	qn_lc_params_default(&p);
	p.dim = 16;
	p.minn = 2;
	p.maxn = 4;
	const char *names[] = {"alpha", "beta", "gamma", "delta"};
	struct qn_lc_model *m = qn_lc_model_new(&p, names, 4, &e);
	if (!m || make_data(m, d, 400) || qn_lc_model_init_weights(m, seed, &e))
		return NULL;
	struct qn_lc_train_opts o = {.lr = 0.5, .epochs = 5, .threads = threads, .seed = seed};
	if (qn_lc_train(m, d, &o, &e))
		return NULL;
	return m;
}

static int same_weights(const struct qn_lc_model *a, const struct qn_lc_model *b)
{
	return a->rows == b->rows && a->k == b->k && a->p.dim == b->p.dim &&
	       !memcmp(a->in, b->in, a->rows * (size_t)a->p.dim * sizeof(float)) &&
	       !memcmp(a->out, b->out, a->k * (size_t)a->p.dim * sizeof(float)) &&
	       !memcmp(a->row_bucket, b->row_bucket, a->rows * sizeof(uint32_t));
}

static void test_train_save_load(void)
{
	struct qn_lc_data d1, d2, d3;
	struct qn_err e;
	struct qn_lc_model *a = trained(1, 1, &d1), *b = trained(1, 1, &d2),
			   *c = trained(2, 1, &d3);
	CHECK_NAMED("three trainings", a && b && c);
	if (!a || !b || !c)
		return;
	CHECK_NAMED("one thread, same seed: bit-identical weights", same_weights(a, b));
	CHECK_NAMED("another seed: other weights", !same_weights(a, c));
	float h[16], pr[4];
	size_t right = 0;
	for (size_t i = 0; i < d1.n; i++)
		right += qn_lc_forward(a, d1.feat + d1.off[i], d1.off[i + 1] - d1.off[i], h, pr) ==
			 d1.label[i];
	CHECK_NAMED("learns the separable task (training accuracy 1)", right == d1.n);

	struct qn_lc_scratch s;
	CHECK_NAMED("scratch", qn_lc_scratch_init(&s, a) == 0);
	const char *txt = "filler 3 some words w2 and more f1";
	long y = qn_lc_predict(a, txt, strlen(txt), &s);
	CHECK_NAMED("predicts label 2 (gamma)", y == 2);
	float p_before = s.probs[2];
	long y2 = qn_lc_predict(a, "never seen tokens at all", 24, &s);
	CHECK_NAMED("unseen features: a prediction, probabilities sum to 1",
		    y2 >= 0 &&
			fabsf(s.probs[0] + s.probs[1] + s.probs[2] + s.probs[3] - 1) < 1e-5f);

	char dir[] = "/tmp/test_linclass_XXXXXX";
	CHECK_NAMED("temp dir", mkdtemp(dir) != NULL);
	CHECK_NAMED("save", qn_lc_save(a, dir, &e) == 0);
	CHECK_NAMED("is a model dir", qn_lc_is_model_dir(dir) == 1);
	CHECK_NAMED("/tmp is not", qn_lc_is_model_dir("/tmp") == 0);
	struct qn_lc_model *l = qn_lc_load(dir, &e);
	CHECK_NAMED("load", l != NULL);
	if (l) {
		CHECK_NAMED("round trip: weights, rows, buckets exact", same_weights(a, l));
		CHECK_NAMED("round trip: params", !memcmp(&a->p, &l->p, sizeof a->p));
		CHECK_STR("round trip: label 3", l->labels[3], "delta");
		CHECK_NAMED("label ids",
			    qn_lc_label_id(l, "beta") == 1 && qn_lc_label_id(l, "zeta") == -1);
		struct qn_lc_scratch s2;
		qn_lc_scratch_init(&s2, l);
		qn_lc_predict(l, txt, strlen(txt), &s2);
		CHECK_NAMED("loaded model predicts the same probabilities",
			    s2.probs[2] == p_before);
		qn_lc_scratch_release(&s2);
	}
	qn_lc_model_free(l);

	/* The loader's refusals. */
	char cpath[256], wpath[256];
	snprintf(cpath, sizeof cpath, "%s/config.json", dir);
	snprintf(wpath, sizeof wpath, "%s/model.safetensors", dir);
	char *good = qn_lc_config_json(a);
	FILE *f = fopen(cpath, "w");
	fputs("{\"model_type\":\"gpt2\"}", f);
	fclose(f);
	l = qn_lc_load(dir, &e);
	CHECK_NAMED("wrong model_type refused", !l && strstr(e.msg, "model_type"));
	qn_lc_model_free(l);
	f = fopen(cpath, "w");
	fputs("{\"model_type\":\"quern-linear\",\"hash\":\"" QN_LC_HASH "\",\"dim\":16,"
	      "\"buckets\":2000000,\"word_ngrams\":2,\"minn\":2,\"maxn\":4,\"lowercase\":true,"
	      "\"id2label\":{\"0\":\"a\",\"1\":\"b\",\"2\":\"c\",\"3\":\"a\"}}",
	      f);
	fclose(f);
	l = qn_lc_load(dir, &e);
	CHECK_NAMED("a label twice refused", !l && strstr(e.msg, "twice"));
	qn_lc_model_free(l);
	f = fopen(cpath, "w");
	fputs(good, f);
	fclose(f);
	/* A weights file whose bucket ids pass the config's bucket count. */
	struct qn_st_writer *w = qn_st_writer_new();
	uint32_t bad_ids[2] = {5, 2000000};
	float zeros[2 * 16] = {0};
	uint64_t sb[1] = {2}, si[2] = {2, 16}, so[2] = {4, 16};
	qn_st_writer_add(w, "embeddings.bucket_ids", QN_ST_U32, 1, sb, bad_ids, &e);
	qn_st_writer_add(w, "embeddings.weight", QN_ST_F32, 2, si, zeros, &e);
	qn_st_writer_add(w, "classifier.weight", QN_ST_F32, 2, so, a->out, &e);
	qn_st_writer_write(w, wpath, &e);
	l = qn_lc_load(dir, &e);
	CHECK_NAMED("a bucket id past buckets refused", !l && strstr(e.msg, "bucket id"));
	qn_lc_model_free(l);
	bad_ids[1] = 5;
	qn_st_writer_write(w, wpath, &e);
	l = qn_lc_load(dir, &e);
	CHECK_NAMED("a bucket id twice refused", !l && strstr(e.msg, "twice"));
	qn_lc_model_free(l);
	bad_ids[1] = 6;
	zeros[3] = NAN;
	qn_st_writer_write(w, wpath, &e);
	l = qn_lc_load(dir, &e);
	CHECK_NAMED("NaN weights refused", !l && strstr(e.msg, "non-finite"));
	qn_lc_model_free(l);
	zeros[3] = 0;
	qn_st_writer_write(w, wpath, &e);
	l = qn_lc_load(dir, &e);
	CHECK_NAMED("a well-formed small model loads", l && l->rows == 2);
	qn_lc_model_free(l);
	qn_st_writer_free(w);
	free(good);
	unlink(cpath);
	unlink(wpath);
	rmdir(dir);

	/* Two threads train (Hogwild!) and still learn. */
	struct qn_lc_data d4;
	struct qn_lc_model *t2 = trained(1, 2, &d4);
	right = 0;
	for (size_t i = 0; t2 && i < d4.n; i++)
		right += qn_lc_forward(t2, d4.feat + d4.off[i], d4.off[i + 1] - d4.off[i], h, pr) ==
			 d4.label[i];
	CHECK_NAMED("two threads learn it too", t2 && right == d4.n);
	qn_lc_model_free(t2);
	data_free(&d4);

	qn_lc_scratch_release(&s);
	qn_lc_model_free(a);
	qn_lc_model_free(b);
	qn_lc_model_free(c);
	data_free(&d1);
	data_free(&d2);
	data_free(&d3);
}

int main(void)
{
	test_features();
	test_gradient();
	test_train_save_load();
	return CHECK_DONE();
}
