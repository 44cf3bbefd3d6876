/*
 * Unit tests for the bundle writer (src/model/writer.c) and the synthetic
 * bundle generator (src/train/synth.c). Everything written is read back
 * independently: offsets and padding from the raw bytes, SHA-256 with
 * OpenSSL's one-shot digest, the candidate tower with plain loops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recd/core.h"
#include "recd/model.h"
#include "recd/train.h"

/* ---- helpers ------------------------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int exists(const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Whole file into memory (NUL-terminated); *len = size. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

static void sha256_hex(const unsigned char *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(n, 32);
    for (unsigned i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/recd-test-writer-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        fail_msg("%s:%d: %s", path, je.line, je.text);
    return j;
}

/* ---- writer -------------------------------------------------------------------------- */

static void test_writer_commit(void **state)
{
    char *root = make_tmpdir();
    char models[1100];
    snprintf(models, sizeof models, "%s/models", root); /* created by the writer */
    recd_err_t err = {0};
    recd_bundle_writer_t *w = recd_bundle_writer_new(models, "m", 3, &err);
    assert_non_null(w);
    assert_true(exists("%s/m/.tmp-3", models));

    float a[3] = {1, 2, 3}; /* 12 bytes: the next tensor is padded to 64 */
    float b[5 * 7];         /* 140 bytes: next at 64 + 140 -> 256 */
    float c[1] = {-0.5f};
    for (int i = 0; i < 35; i++)
        b[i] = (float)i * 0.25f;
    int64_t sa[1] = {3}, sb[2] = {5, 7}, sc[1] = {1};
    assert_int_equal(recd_bundle_writer_tensor(w, "a", a, 1, sa, &err), 0);
    assert_int_equal(recd_bundle_writer_tensor(w, "b", b, 2, sb, &err), 0);
    assert_int_equal(recd_bundle_writer_tensor(w, "c", c, 1, sc, &err), 0);
    /* duplicates and non-finite values are refused, naming the tensor */
    assert_int_not_equal(recd_bundle_writer_tensor(w, "a", a, 1, sa, &err), 0);
    assert_non_null(strstr(err.msg, "a"));
    float bad[2] = {1, NAN};
    int64_t s2[1] = {2};
    assert_int_not_equal(recd_bundle_writer_tensor(w, "nan", bad, 1, s2, &err), 0);
    assert_non_null(strstr(err.msg, "nan"));

    const char *tsv = "id\tgenres\ni0\tComedy\ni1\t\n";
    assert_int_equal(recd_bundle_writer_items(w, tsv, strlen(tsv), &err), 0);
    /* another file written by the caller, e.g. index.faiss */
    const char *extra = recd_bundle_writer_path(w, "index.faiss");
    assert_non_null(extra);
    FILE *f = fopen(extra, "wb");
    assert_non_null(f);
    fputs("not really an index", f);
    fclose(f);

    json_t *m =
        json_pack("{s:s, s:s, s:i}", "format", RECD_BUNDLE_FORMAT, "name", "m", "version", 3);
    assert_int_equal(recd_bundle_writer_commit(w, m, &err), 0);
    /* the caller's object is untouched */
    assert_null(json_object_get(m, "tensors"));
    json_decref(m);

    assert_false(exists("%s/m/.tmp-3", models));
    assert_true(exists("%s/m/3", models));
    char dir[1200], path[1300];
    snprintf(dir, sizeof dir, "%s/m/3", models);

    /* exactly these files */
    DIR *d = opendir(dir);
    assert_non_null(d);
    int nfiles = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            nfiles++;
    closedir(d);
    assert_int_equal(nfiles, 4);

    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_t *man = load_json(path);
    assert_string_equal(json_string_value(json_object_get(man, "name")), "m");
    assert_int_equal(json_integer_value(json_object_get(man, "tensor_alignment")), 64);
    json_t *tensors = json_object_get(man, "tensors");
    assert_int_equal(json_array_size(tensors), 3);
    static const int64_t want_off[3] = {0, 64, 256};
    static const char *const want_name[3] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++) {
        json_t *t = json_array_get(tensors, i);
        assert_string_equal(json_string_value(json_object_get(t, "name")), want_name[i]);
        assert_int_equal(json_integer_value(json_object_get(t, "offset")), want_off[i]);
        assert_int_equal(json_integer_value(json_object_get(t, "offset")) % 64, 0);
    }
    json_t *shape_b = json_object_get(json_array_get(tensors, 1), "shape");
    assert_int_equal(json_array_size(shape_b), 2);
    assert_int_equal(json_integer_value(json_array_get(shape_b, 0)), 5);
    assert_int_equal(json_integer_value(json_array_get(shape_b, 1)), 7);

    /* tensors.bin: data at the offsets, zero padding between */
    size_t tlen;
    snprintf(path, sizeof path, "%s/tensors.bin", dir);
    unsigned char *tb = slurp(path, &tlen);
    assert_non_null(tb);
    assert_int_equal(tlen, 256 + 4);
    assert_memory_equal(tb, a, sizeof a);
    for (size_t i = sizeof a; i < 64; i++)
        assert_int_equal(tb[i], 0);
    assert_memory_equal(tb + 64, b, sizeof b);
    for (size_t i = 64 + sizeof b; i < 256; i++)
        assert_int_equal(tb[i], 0);
    assert_memory_equal(tb + 256, c, sizeof c);

    /* files: every file but manifest.json, with SHA-256 and size */
    json_t *files = json_object_get(man, "files");
    assert_int_equal(json_object_size(files), 3);
    assert_null(json_object_get(files, "manifest.json"));
    static const char *const fnames[3] = {"tensors.bin", "items.tsv", "index.faiss"};
    for (int i = 0; i < 3; i++) {
        json_t *info = json_object_get(files, fnames[i]);
        assert_non_null(info);
        snprintf(path, sizeof path, "%s/%s", dir, fnames[i]);
        size_t len;
        unsigned char *data = slurp(path, &len);
        assert_non_null(data);
        char hex[65];
        sha256_hex(data, len, hex);
        assert_string_equal(json_string_value(json_object_get(info, "sha256")), hex);
        assert_int_equal(json_integer_value(json_object_get(info, "bytes")), len);
        if (i == 1)
            assert_memory_equal(data, tsv, strlen(tsv));
        free(data);
    }
    free(tb);
    json_decref(man);

    /* an existing version is refused, naming the path */
    w = recd_bundle_writer_new(models, "m", 3, &err);
    assert_null(w);
    assert_non_null(strstr(err.msg, "m/3"));
    assert_non_null(strstr(err.msg, "exists"));

    rm_rf(root);
    free(root);
}

static void test_writer_abort(void **state)
{
    char *root = make_tmpdir();
    recd_err_t err = {0};
    recd_bundle_writer_t *w = recd_bundle_writer_new(root, "m", 1, &err);
    assert_non_null(w);
    float a[4] = {1, 2, 3, 4};
    int64_t s[2] = {2, 2};
    assert_int_equal(recd_bundle_writer_tensor(w, "a", a, 2, s, &err), 0);
    assert_int_equal(recd_bundle_writer_items(w, "id\ni0\n", 6, &err), 0);
    recd_bundle_writer_abort(w);
    assert_false(exists("%s/m/.tmp-1", root));
    assert_false(exists("%s/m/1", root));

    /* a stale .tmp-<version> from a crashed writer does not block */
    char stale[1100];
    snprintf(stale, sizeof stale, "%s/m/.tmp-2", root);
    assert_int_equal(mkdir(stale, 0755), 0);
    w = recd_bundle_writer_new(root, "m", 2, &err);
    assert_non_null(w);
    recd_bundle_writer_abort(w);
    assert_false(exists("%s", stale));

    /* a version published while we were writing is never replaced */
    w = recd_bundle_writer_new(root, "m", 4, &err);
    assert_non_null(w);
    assert_int_equal(recd_bundle_writer_items(w, "id\n", 3, &err), 0);
    char racer[1100];
    snprintf(racer, sizeof racer, "%s/m/4", root);
    assert_int_equal(mkdir(racer, 0755), 0);
    json_t *m = json_object();
    assert_int_not_equal(recd_bundle_writer_commit(w, m, &err), 0);
    json_decref(m);
    assert_non_null(strstr(err.msg, "exists"));
    assert_false(exists("%s/m/.tmp-4", root));
    assert_false(exists("%s/m/4/manifest.json", root));

    /* bad names and versions */
    assert_null(recd_bundle_writer_new(root, "../evil", 1, &err));
    assert_null(recd_bundle_writer_new(root, ".hidden", 1, &err));
    assert_null(recd_bundle_writer_new(root, "m", 0, &err));

    rm_rf(root);
    free(root);
}

/* ---- generator ------------------------------------------------------------------------ */

static void small_opts(recd_synth_opts_t *o, const char *dir, uint64_t seed, size_t n)
{
    recd_train_synth_defaults(o);
    o->models_dir = dir;
    o->n_items = n;
    o->dim = 32;
    o->embed_dim = 16;
    o->hidden[0] = 128;
    o->rank_embed_dim = 4;
    o->rank_hidden[0] = 16;
    o->nrank_hidden = 1;
    o->seed = seed;
    o->write_index_file = 0;
}

static unsigned char *bundle_file(const char *models, const char *name, int version,
                                  const char *file, size_t *len)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/%s/%d/%s", models, name, version, file);
    unsigned char *d = slurp(path, len);
    assert_non_null(d);
    return d;
}

static void test_synth_deterministic(void **state)
{
    char *root = make_tmpdir();
    recd_synth_opts_t o;
    recd_err_t err = {0};
    small_opts(&o, root, 7, 500);
    o.ranker = RECD_RANKER_WIDE_DEEP;
    o.name = "a";
    assert_int_equal(recd_train_synth_bundle(&o, &err), 0);
    o.name = "b";
    assert_int_equal(recd_train_synth_bundle(&o, &err), 0);
    o.name = "c";
    o.seed = 8;
    assert_int_equal(recd_train_synth_bundle(&o, &err), 0);
    /* the same version again is refused */
    assert_int_not_equal(recd_train_synth_bundle(&o, &err), 0);
    assert_non_null(strstr(err.msg, "exists"));

    size_t la, lb, lc, ia, ib, ic;
    unsigned char *ta = bundle_file(root, "a", 1, "tensors.bin", &la);
    unsigned char *tb = bundle_file(root, "b", 1, "tensors.bin", &lb);
    unsigned char *tc = bundle_file(root, "c", 1, "tensors.bin", &lc);
    unsigned char *xa = bundle_file(root, "a", 1, "items.tsv", &ia);
    unsigned char *xb = bundle_file(root, "b", 1, "items.tsv", &ib);
    unsigned char *xc = bundle_file(root, "c", 1, "items.tsv", &ic);
    assert_int_equal(la, lb);
    assert_memory_equal(ta, tb, la);
    assert_int_equal(ia, ib);
    assert_memory_equal(xa, xb, ia);
    assert_int_equal(la, lc);             /* same shapes ... */
    assert_true(memcmp(ta, tc, la) != 0); /* ... other values */
    assert_true(ia != ic || memcmp(xa, xc, ia) != 0);

    /* every tensor finite; items.tsv has N rows + header */
    for (size_t i = 0; i + 4 <= la; i += 4) {
        float v;
        memcpy(&v, ta + i, 4);
        assert_true(isfinite(v));
    }
    size_t lines = 0;
    for (size_t i = 0; i < ia; i++)
        lines += xa[i] == '\n';
    assert_int_equal(lines, 501);
    assert_memory_equal(xa, "id\tgenres\tyear\tpopularity\ni0\t", 29);

    free(ta), free(tb), free(tc), free(xa), free(xb), free(xc);
    rm_rf(root);
    free(root);
}

/* A loaded bundle's tensors by name, from the raw file. */
typedef struct raw_bundle {
    json_t *man;
    unsigned char *bin;
    size_t len;
} raw_bundle_t;

static const float *tensor(const raw_bundle_t *rb, const char *name, int64_t *d0, int64_t *d1)
{
    size_t i;
    json_t *t;
    json_array_foreach (json_object_get(rb->man, "tensors"), i, t) {
        if (strcmp(json_string_value(json_object_get(t, "name")), name) != 0)
            continue;
        json_t *shape = json_object_get(t, "shape");
        *d0 = json_integer_value(json_array_get(shape, 0));
        *d1 = json_array_size(shape) == 2 ? json_integer_value(json_array_get(shape, 1)) : 1;
        json_int_t off = json_integer_value(json_object_get(t, "offset"));
        assert_true((size_t)off + (size_t)(*d0 * *d1) * 4 <= rb->len);
        return (const float *)(rb->bin + off);
    }
    fail_msg("tensor %s missing", name);
    return NULL;
}

/* The candidate tower of FORMAT.md, with loops: x = [mean hist_emb rows,
 * user-field rows], each layer relu(x @ w + b). Returns u[D] (malloc). */
static float *user_vector(const raw_bundle_t *rb, const int64_t *hist, size_t nh,
                          const int64_t *field_rows)
{
    json_t *cand = json_object_get(rb->man, "candidate");
    int64_t n, e;
    const float *he = tensor(rb, "cand.hist_emb", &n, &e);
    json_t *fields = json_object_get(cand, "fields");
    size_t nf = json_array_size(fields);
    size_t in = (size_t)e * (1 + nf);
    double *x = calloc(in, sizeof *x);
    for (size_t k = 0; k < nh; k++)
        for (int64_t j = 0; j < e; j++)
            x[j] += he[hist[k] * e + j] / (double)nh;
    for (size_t f = 0; f < nf; f++) {
        int64_t b, e2;
        const float *tab = tensor(
            rb, json_string_value(json_object_get(json_array_get(fields, f), "tensor")), &b, &e2);
        assert_int_equal(e2, e);
        for (int64_t j = 0; j < e; j++)
            x[(f + 1) * (size_t)e + (size_t)j] = tab[field_rows[f] * e + j];
    }
    size_t i;
    json_t *layer;
    json_array_foreach (json_object_get(cand, "tower"), i, layer) {
        int64_t wi, wo, bo, one;
        const float *w = tensor(rb, json_string_value(json_object_get(layer, "w")), &wi, &wo);
        const float *bb = tensor(rb, json_string_value(json_object_get(layer, "b")), &bo, &one);
        assert_int_equal((size_t)wi, in);
        assert_int_equal(bo, wo);
        double *y = calloc((size_t)wo, sizeof *y);
        for (int64_t o = 0; o < wo; o++) {
            double s = bb[o];
            for (int64_t r = 0; r < wi; r++)
                s += x[r] * w[r * wo + o];
            y[o] = s > 0 ? s : 0;
        }
        free(x);
        x = y;
        in = (size_t)wo;
    }
    float *u = malloc(in * sizeof *u);
    for (size_t j = 0; j < in; j++)
        u[j] = (float)x[j];
    free(x);
    return u;
}

static void test_synth_structure(void **state)
{
    char *root = make_tmpdir();
    recd_synth_opts_t o;
    recd_err_t err = {0};
    small_opts(&o, root, 3, 3000);
    assert_int_equal(recd_train_synth_bundle(&o, &err), 0);

    uint32_t *topic = malloc(o.n_items * sizeof *topic);
    size_t T = recd_train_synth_topics(&o, topic);
    assert_int_equal(T, 55); /* round(sqrt(3000)) */

    raw_bundle_t rb;
    char path[1300];
    snprintf(path, sizeof path, "%s/default/1/manifest.json", root);
    rb.man = load_json(path);
    rb.bin = bundle_file(root, "default", 1, "tensors.bin", &rb.len);
    int64_t n, d;
    const float *ie = tensor(&rb, "cand.item_emb", &n, &d);
    assert_int_equal(n, 3000);
    assert_int_equal(d, 32);

    double purity_sum = 0;
    int tested = 0;
    for (uint32_t t = 0; t < T && tested < 8; t += 7) {
        int64_t hist[10];
        size_t nh = 0;
        for (size_t i = 0; i < o.n_items && nh < 10; i++)
            if (topic[i] == t)
                hist[nh++] = (int64_t)i;
        if (nh < 10)
            continue;
        int64_t rows[4] = {t * 13 % 1000, t % 16, t % 8, t % 64};
        float *u = user_vector(&rb, hist, nh, rows);
        /* top 10 by inner product, by repeated selection */
        float *s = malloc((size_t)n * sizeof *s);
        for (int64_t i = 0; i < n; i++) {
            double acc = 0;
            for (int64_t j = 0; j < d; j++)
                acc += (double)u[j] * ie[i * d + j];
            s[i] = (float)acc;
        }
        int same = 0;
        for (int k = 0; k < 10; k++) {
            int64_t best = 0;
            for (int64_t i = 1; i < n; i++)
                if (s[i] > s[best])
                    best = i;
            same += topic[best] == t;
            s[best] = -INFINITY;
        }
        print_message("topic %u: %d/10 of the top items from the topic\n", t, same);
        assert_true(same >= 7);
        purity_sum += same / 10.0;
        tested++;
        free(s);
        free(u);
    }
    assert_true(tested >= 5);
    assert_true(purity_sum / tested >= 0.9);

    json_decref(rb.man);
    free(rb.bin);
    free(topic);
    rm_rf(root);
    free(root);
}

static void test_synth_bad_options(void **state)
{
    char *root = make_tmpdir();
    recd_synth_opts_t o;
    recd_err_t err = {0};
    small_opts(&o, root, 1, 100);
    o.index = "IVF1000,Flat"; /* nlist > items */
    assert_int_equal(recd_train_synth_bundle(&o, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "IVF1000"));
    o.index = "HNSW";
    assert_int_equal(recd_train_synth_bundle(&o, &err), RECD_EINVAL);
    o.index = "Flat";
    o.dim = 0;
    assert_int_equal(recd_train_synth_bundle(&o, &err), RECD_EINVAL);
    assert_false(exists("%s/default", root) && exists("%s/default/1", root));
    rm_rf(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_commit),       cmocka_unit_test(test_writer_abort),
        cmocka_unit_test(test_synth_deterministic), cmocka_unit_test(test_synth_structure),
        cmocka_unit_test(test_synth_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
