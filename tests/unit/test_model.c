/*
 * Unit tests for src/model: recd-bundle/1 loading and validation, feature
 * hashing, and the live-item overlay.
 *
 * Every bundle is built here with the project's writer (recd_bundle_writer_*)
 * as a tiny but complete model (20 items, dim 8, a two-layer tower, Flat
 * index). Each validation case then damages one thing - a file's bytes, a
 * manifest entry, a row of items.tsv - and, when the damage is not about
 * checksums, re-seals the manifest's "files" table (SHA-256 and size
 * computed here with OpenSSL) so that the loader gets past the checksum
 * stage and must catch the problem itself. Every failure is asserted with
 * the words its message must contain (file or tensor, and the reason).
 *
 * Hashing is checked against the test vectors of BUNDLE.md, which were
 * re-derived independently (FNV-1a-64 in a few lines of Python).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recd/ann.h"
#include "recd/candgen.h"
#include "recd/core.h"
#include "recd/model.h"
#include "recd/nn.h"

/* ---- the test bundle ------------------------------------------------------------ */

#define N_ITEMS 20
#define DIM 8
#define EMB 4
#define HID 16
#define UID_BUCKETS 1000

typedef struct spec {
    size_t n_items;   /* manifest n_items and items.tsv rows */
    size_t item_rows; /* rows written for cand.item_emb */
    int index;        /* 0: no index.faiss, 1: a good one, 2: one of the wrong dimension */
    int content;      /* add a year field and a content model over genres and year */
} spec_t;

typedef struct fixture {
    char models[256]; /* temporary models_dir */
    char dir[512];    /* <models>/default/1 */
} fixture_t;

static uint64_t rng = 0x243f6a8885a308d3ULL;

static float frand(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    uint64_t x = rng * 0x2545f4914f6cdd1dULL;
    return (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_tensor(size_t n)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = frand();
    return v;
}

static void put_tensor(recd_bundle_writer_t *w, const char *name, size_t r, size_t c)
{
    recd_err_t err = {0};
    int64_t shape[2] = {(int64_t)r, (int64_t)c};
    float *v = rand_tensor(r * (c ? c : 1));
    int rc = recd_bundle_writer_tensor(w, name, v, c ? 2 : 1, shape, &err);
    free(v);
    if (rc != 0)
        fail_msg("writer_tensor %s: %s", name, err.msg);
}

static json_t *base_manifest(const spec_t *s)
{
    json_error_t je;
    json_t *m = json_pack_ex(
        &je, 0,
        "{s:s, s:s, s:I, s:s, s:I,"
        " s:{s:s, s:s, s:s, s:["
        "   {s:s, s:s, s:s, s:I},"
        "   {s:s, s:s, s:s, s:[i,i,i,i,i,i], s:I},"
        "   {s:s, s:s, s:s, s:s, s:b, s:I},"
        "   {s:s, s:s, s:s, s:[i,i,i,i,i,i,i], s:I}]},"
        " s:{s:s, s:I, s:I, s:{s:s, s:s, s:I},"
        "   s:[{s:s, s:s}, {s:s, s:s}],"
        "   s:[s, s, s],"
        "   s:[{s:s, s:s, s:I, s:I, s:s}, {s:s, s:s, s:I, s:I, s:s}],"
        "   s:s, s:s},"
        " s:{s:s, s:s, s:s, s:I, s:s}}",
        "format", RECD_BUNDLE_FORMAT, "name", "default", "version", (json_int_t)1, "created",
        "2026-01-01T00:00:00Z", "n_items", (json_int_t)s->n_items,
        /* features */
        "features", "hash", "fnv1a64", "separator", "\x1f", "missing", "", "fields", "name",
        "user_id", "source", "user", "type", "categorical", "buckets", (json_int_t)UID_BUCKETS,
        "name", "age", "source", "user", "type", "bucketized", "boundaries", 18, 25, 35, 45, 50, 56,
        "buckets", (json_int_t)16, "name", "genres", "source", "item", "type", "categorical",
        "column", "genres", "multi_valued", 1, "buckets", (json_int_t)64, "name", "hour", "source",
        "context", "type", "bucketized", "boundaries", 6, 9, 12, 14, 17, 20, 23, "buckets",
        (json_int_t)16,
        /* candidate */
        "candidate", "type", "youtube_dnn", "dim", (json_int_t)DIM, "embed_dim", (json_int_t)EMB,
        "history", "tensor", "cand.hist_emb", "pooling", "mean", "max_len", (json_int_t)50,
        "fields", "name", "user_id", "tensor", "cand.field.user_id", "name", "age", "tensor",
        "cand.field.age", "input", "history", "user_id", "age", "tower", "w", "cand.tower.0.w", "b",
        "cand.tower.0.b", "in", (json_int_t)(3 * EMB), "out", (json_int_t)HID, "activation", "relu",
        "w", "cand.tower.1.w", "b", "cand.tower.1.b", "in", (json_int_t)HID, "out", (json_int_t)DIM,
        "activation", "relu", "item_embedding", "cand.item_emb", "score", "inner_product",
        /* ann */
        "ann", "library", "faiss", "metric", "inner_product", "vectors", "cand.item_emb", "dim",
        (json_int_t)DIM, "factory", "Flat");
    if (!m)
        fail_msg("json_pack: %s", je.text);
    return m;
}

static const char *GENRES[] = {"Action", "Comedy", "Drama", "Horror", "Romance", "War"};

/* items.tsv text for rows 0..n-1; popularity (i * 37) % 11 so the order has ties. */
static char *items_text(size_t n, size_t *len)
{
    size_t cap = 64 + n * 64;
    char *t = malloc(cap);
    assert_non_null(t);
    size_t p = (size_t)snprintf(t, cap, "id\tgenres\tyear\tpopularity\n");
    for (size_t i = 0; i < n; i++)
        p += (size_t)snprintf(t + p, cap - p, "i%zu\t%s|%s\t%zu\t%zu\n", i, GENRES[i % 6],
                              GENRES[(i + 2) % 6], 1930 + i * 4, (i * 37) % 11);
    *len = p;
    return t;
}

static void mkdtemp_models(fixture_t *f)
{
    snprintf(f->models, sizeof f->models, "%s/recd-test-model-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(f->models));
    snprintf(f->dir, sizeof f->dir, "%s/default/1", f->models);
}

/* The content model of spec.content: fields genres (64 buckets) and year
 * (bucketized, 32 buckets; a new item field over the year column), embed
 * CEMB, layers 2*CEMB -> CHID relu -> DIM linear. */
#define CEMB 3
#define CHID 5

static void add_content(recd_bundle_writer_t *w, json_t *m)
{
    put_tensor(w, "content.emb.genres", 64, CEMB);
    put_tensor(w, "content.emb.year", 32, CEMB);
    put_tensor(w, "content.0.w", 2 * CEMB, CHID);
    put_tensor(w, "content.0.b", CHID, 0);
    put_tensor(w, "content.1.w", CHID, DIM);
    put_tensor(w, "content.1.b", DIM, 0);
    json_array_append_new(json_object_get(json_object_get(m, "features"), "fields"),
                          json_pack("{s:s, s:s, s:s, s:s, s:[i,i,i,i,i,i,i,i], s:i}", "name",
                                    "year", "source", "item", "type", "bucketized", "column",
                                    "year", "boundaries", 1940, 1950, 1960, 1970, 1980, 1990, 2000,
                                    2010, "buckets", 32));
    json_t *c = json_pack("{s:s, s:i, s:[{s:s, s:s}, {s:s, s:s}],"
                          " s:[{s:s, s:s, s:i, s:i, s:s}, {s:s, s:s, s:i, s:i, s:s}], s:s}",
                          "type", "mlp", "embed_dim", CEMB, "fields", "name", "genres", "tensor",
                          "content.emb.genres", "name", "year", "tensor", "content.emb.year",
                          "layers", "w", "content.0.w", "b", "content.0.b", "in", 2 * CEMB, "out",
                          CHID, "activation", "relu", "w", "content.1.w", "b", "content.1.b", "in",
                          CHID, "out", DIM, "activation", "linear", "output", "cand.item_emb");
    assert_non_null(c);
    json_object_set_new(m, "content", c);
}

static void write_bundle(fixture_t *f, const spec_t *s)
{
    recd_err_t err = {0};
    recd_bundle_writer_t *w = recd_bundle_writer_new(f->models, "default", 1, &err);
    if (!w)
        fail_msg("writer_new: %s", err.msg);
    put_tensor(w, "cand.item_emb", s->item_rows, DIM);
    put_tensor(w, "cand.hist_emb", s->n_items, EMB);
    put_tensor(w, "cand.field.user_id", UID_BUCKETS, EMB);
    put_tensor(w, "cand.field.age", 16, EMB);
    put_tensor(w, "cand.tower.0.w", 3 * EMB, HID);
    put_tensor(w, "cand.tower.0.b", HID, 0);
    put_tensor(w, "cand.tower.1.w", HID, DIM);
    put_tensor(w, "cand.tower.1.b", DIM, 0);
    size_t len;
    char *tsv = items_text(s->n_items, &len);
    if (recd_bundle_writer_items(w, tsv, len, &err) != 0)
        fail_msg("writer_items: %s", err.msg);
    free(tsv);
    json_t *m = base_manifest(s);
    if (s->content)
        add_content(w, m);
    if (s->index) {
        size_t d = s->index == 2 ? DIM / 2 : DIM;
        float *v = rand_tensor(s->item_rows * d);
        recd_ann_spec_t as;
        assert_int_equal(recd_ann_spec_parse("Flat", &as, &err), 0);
        recd_ann_t *a = recd_ann_build(&as, v, s->item_rows, d, &err);
        free(v);
        if (!a)
            fail_msg("ann_build: %s", err.msg);
        if (recd_ann_save(a, recd_bundle_writer_path(w, "index.faiss"), &err) != 0)
            fail_msg("ann_save: %s", err.msg);
        recd_ann_free(a);
        json_object_set_new(json_object_get(m, "ann"), "file", json_string("index.faiss"));
    }
    if (recd_bundle_writer_commit(w, m, &err) != 0)
        fail_msg("writer_commit: %s", err.msg);
    json_decref(m);
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup_spec(void **state, spec_t s)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    mkdtemp_models(f);
    write_bundle(f, &s);
    *state = f;
    return 0;
}

static int setup_good(void **state)
{
    return setup_spec(state, (spec_t){N_ITEMS, N_ITEMS, 1, 0});
}

static int setup_noindex(void **state)
{
    return setup_spec(state, (spec_t){N_ITEMS, N_ITEMS, 0, 0});
}

static int setup_extra_item_row(void **state)
{
    return setup_spec(state, (spec_t){N_ITEMS, N_ITEMS + 1, 0, 0});
}

static int setup_content(void **state)
{
    return setup_spec(state, (spec_t){N_ITEMS, N_ITEMS, 0, 1});
}

static int setup_bad_index(void **state)
{
    return setup_spec(state, (spec_t){N_ITEMS, N_ITEMS, 2, 0});
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f) {
        nftw(f->models, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
    }
    return 0;
}

/* ---- damage helpers ----------------------------------------------------------------- */

static void path_of(const fixture_t *f, const char *file, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", f->dir, file);
}

static json_t *manifest(const fixture_t *f)
{
    char p[600];
    path_of(f, "manifest.json", p, sizeof p);
    json_error_t je;
    json_t *m = json_load_file(p, 0, &je);
    if (!m)
        fail_msg("%s: %s", p, je.text);
    return m;
}

static void save_manifest(const fixture_t *f, json_t *m)
{
    char p[600];
    path_of(f, "manifest.json", p, sizeof p);
    assert_int_equal(json_dump_file(m, p, JSON_INDENT(1)), 0);
}

static void sha256_hex(const char *path, char hex[65], json_int_t *bytes)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
    unsigned char buf[8192];
    size_t n;
    json_int_t total = 0;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
        EVP_DigestUpdate(ctx, buf, n);
        total += (json_int_t)n;
    }
    fclose(fp);
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_DigestFinal_ex(ctx, md, &ml);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    *bytes = total;
}

/* Recompute sha256 and bytes of every listed file. */
static void reseal(const fixture_t *f)
{
    json_t *m = manifest(f);
    json_t *files = json_object_get(m, "files");
    const char *name;
    json_t *v;
    json_object_foreach (files, name, v) {
        char p[600], hex[65];
        json_int_t bytes;
        path_of(f, name, p, sizeof p);
        sha256_hex(p, hex, &bytes);
        json_object_set_new(v, "sha256", json_string(hex));
        json_object_set_new(v, "bytes", json_integer(bytes));
    }
    save_manifest(f, m);
    json_decref(m);
}

static json_t *tensor_entry(json_t *m, const char *name)
{
    json_t *arr = json_object_get(m, "tensors");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *t = json_array_get(arr, i);
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
            return t;
    }
    fail_msg("no tensor %s in the manifest", name);
    return NULL;
}

static json_int_t tensor_offset(const fixture_t *f, const char *name)
{
    json_t *m = manifest(f);
    json_int_t off = json_integer_value(json_object_get(tensor_entry(m, name), "offset"));
    json_decref(m);
    return off;
}

static void poke_float(const fixture_t *f, json_int_t off, float x)
{
    char p[600];
    path_of(f, "tensors.bin", p, sizeof p);
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &x, sizeof x, off), (ssize_t)sizeof x);
    close(fd);
}

static void write_text(const fixture_t *f, const char *file, const char *text)
{
    char p[600];
    path_of(f, file, p, sizeof p);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void truncate_file(const fixture_t *f, const char *file, off_t by)
{
    char p[600];
    path_of(f, file, p, sizeof p);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(truncate(p, st.st_size - by), 0);
}

/* Load must fail with a message containing every given word (case-insensitive). */
static void expect_fail_v(const fixture_t *f, const recd_model_opts_t *o, va_list ap)
{
    recd_err_t err = {0};
    recd_bundle_t *b = recd_bundle_load(f->dir, o, &err);
    if (b) {
        recd_bundle_unref(b);
        fail_msg("the damaged bundle loaded");
    }
    assert_true(err.code < 0);
    const char *w;
    while ((w = va_arg(ap, const char *)) != NULL)
        if (!strcasestr(err.msg, w))
            fail_msg("error message lacks \"%s\": %s", w, err.msg);
    print_message("    rejected: %s\n", err.msg);
}

static void expect_fail(const fixture_t *f, ...)
{
    va_list ap;
    va_start(ap, f);
    expect_fail_v(f, NULL, ap);
    va_end(ap);
}

static recd_bundle_t *load_ok(const fixture_t *f, const recd_model_opts_t *o)
{
    recd_err_t err = {0};
    recd_bundle_t *b = recd_bundle_load(f->dir, o, &err);
    if (!b)
        fail_msg("load failed: %s", err.msg);
    return b;
}

/* ---- a good bundle ------------------------------------------------------------------------ */

static void test_good_bundle_loads(void **state)
{
    fixture_t *f = *state;
    recd_bundle_t *b = load_ok(f, NULL);
    assert_string_equal(b->name, "default");
    assert_int_equal(b->version, 1);
    assert_int_equal(b->n_items, N_ITEMS);
    assert_int_equal(b->dim, DIM);
    assert_int_equal(b->embed_dim, EMB);
    assert_int_equal(b->ntensors, 8);
    assert_int_equal(b->nfeatures, 4);
    assert_int_equal(b->ninputs, 3);
    assert_int_equal(b->ntower, 2);
    assert_int_equal(b->hist_max_len, 50);
    assert_int_equal(b->ann_from_file, 1);
    assert_int_equal(recd_ann_count(b->ann), N_ITEMS);
    assert_int_equal(recd_ann_dim(b->ann), DIM);
    assert_int_equal(recd_bundle_item_index(b, "i0", 2), 0);
    assert_int_equal(recd_bundle_item_index(b, "i17", 3), 17);
    assert_int_equal(recd_bundle_item_index(b, "i20", 3), -1);
    assert_int_equal(recd_bundle_item_index(b, "i1", 1), -1); /* a prefix is not an id */
    const recd_tensor_t *t = recd_bundle_tensor(b, "cand.tower.0.w");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 3 * EMB);
    assert_int_equal(t->shape[1], HID);
    assert_int_equal(t->offset % RECD_TENSOR_ALIGN, 0);
    assert_null(recd_bundle_tensor(b, "rank.bias"));
    /* popularity order: (i*37)%11 descending, ties by index */
    for (size_t i = 1; i < N_ITEMS; i++) {
        uint32_t x = b->by_popularity[i - 1], y = b->by_popularity[i];
        double px = (double)((x * 37) % 11), py = (double)((y * 37) % 11);
        assert_true(px > py || (px == py && x < y));
        assert_true(b->popularity[y] == py);
    }
    /* the age field as parsed from the manifest */
    assert_string_equal(b->features[1].name, "age");
    assert_true(b->features[1].bucketized);
    assert_int_equal(recd_feature_bucketize(&b->features[1], 31), 2);
    assert_int_equal(b->features[2].multi_valued, 1);
    assert_int_equal(b->features[2].source, RECD_SRC_ITEM);
    assert_int_equal(b->features[3].source, RECD_SRC_CONTEXT);
    recd_bundle_unref(b);

    /* use_index_file = 0: built at load */
    recd_model_opts_t o = {"", 0, 0, 0, NULL};
    b = load_ok(f, &o);
    assert_int_equal(b->ann_from_file, 0);
    assert_int_equal(recd_ann_count(b->ann), N_ITEMS);
    recd_bundle_unref(b);
}

static void test_no_index_file_builds(void **state)
{
    fixture_t *f = *state;
    recd_bundle_t *b = load_ok(f, NULL);
    assert_int_equal(b->ann_from_file, 0);
    assert_int_equal(recd_ann_count(b->ann), N_ITEMS);
    recd_bundle_unref(b);
}

/* ---- validation failures ------------------------------------------------------------------- */

static void test_checksum_mismatch(void **state)
{
    fixture_t *f = *state;
    poke_float(f, tensor_offset(f, "cand.hist_emb") + 8, 0.125f); /* same size, other bytes */
    expect_fail(f, "tensors.bin", "sha-256", "mismatch", NULL);
}

static void test_items_checksum_mismatch(void **state)
{
    fixture_t *f = *state;
    char p[600];
    path_of(f, "items.tsv", p, sizeof p);
    FILE *fp = fopen(p, "r+b");
    assert_non_null(fp);
    fseek(fp, 3, SEEK_SET); /* "id\tgenres" -> "id\tGenres" */
    fputc('G', fp);
    fclose(fp);
    expect_fail(f, "items.tsv", "sha-256", NULL);
}

static void test_truncated_tensors(void **state)
{
    fixture_t *f = *state;
    truncate_file(f, "tensors.bin", 64);
    expect_fail(f, "tensors.bin", "bytes", NULL);
}

static void test_truncated_tensors_resealed(void **state)
{
    /* the manifest agrees with the short file: the last tensor now ends
     * past the end of tensors.bin */
    fixture_t *f = *state;
    truncate_file(f, "tensors.bin", 16);
    reseal(f);
    expect_fail(f, "cand.tower.1.b", "outside the file", NULL);
}

static void test_item_emb_rows_mismatch(void **state)
{
    fixture_t *f = *state; /* setup wrote N+1 rows */
    expect_fail(f, "cand.item_emb", "shape", "21", "20", NULL);
}

static void test_tower_chain_mismatch(void **state)
{
    fixture_t *f = *state;
    json_t *m = manifest(f);
    json_t *l1 = json_array_get(json_object_get(json_object_get(m, "candidate"), "tower"), 1);
    json_object_set_new(l1, "in", json_integer(HID - 1));
    save_manifest(f, m);
    json_decref(m);
    expect_fail(f, "candidate.tower[1]", "in", NULL);
}

static void test_tower_weight_shape_mismatch(void **state)
{
    /* the chain is consistent but the tensor is not what the layer says */
    fixture_t *f = *state;
    json_t *m = manifest(f);
    json_t *t = tensor_entry(m, "cand.tower.0.w");
    json_object_set_new(t, "shape", json_pack("[I, I]", (json_int_t)HID, (json_int_t)(3 * EMB)));
    save_manifest(f, m);
    json_decref(m);
    expect_fail(f, "cand.tower.0.w", "shape", NULL);
}

static void test_tower_output_not_dim(void **state)
{
    fixture_t *f = *state;
    json_t *m = manifest(f);
    json_object_set_new(json_object_get(m, "candidate"), "dim", json_integer(DIM * 2));
    json_object_set_new(json_object_get(m, "ann"), "dim", json_integer(DIM * 2));
    save_manifest(f, m);
    json_decref(m);
    /* cand.item_emb is [20, 8] but dim now says 16 */
    expect_fail(f, "cand.item_emb", "shape", NULL);
}

static void test_nan_value(void **state)
{
    fixture_t *f = *state;
    poke_float(f, tensor_offset(f, "cand.hist_emb") + 4 * 7, NAN);
    reseal(f);
    expect_fail(f, "cand.hist_emb", "NaN", "element 7", NULL);
}

static void test_inf_value(void **state)
{
    fixture_t *f = *state;
    poke_float(f, tensor_offset(f, "cand.tower.0.b") + 4 * 3, -INFINITY);
    reseal(f);
    expect_fail(f, "cand.tower.0.b", "infinite", "element 3", NULL);
}

static void test_duplicate_item_id(void **state)
{
    fixture_t *f = *state;
    size_t len;
    char *t = items_text(N_ITEMS, &len);
    char *p = strstr(t, "\ni5\t"); /* row 5 gets the id of row 2 */
    assert_non_null(p);
    p[2] = '2';
    write_text(f, "items.tsv", t);
    free(t);
    reseal(f);
    expect_fail(f, "items.tsv", "duplicate", "i2", NULL);
}

static void test_misaligned_offset(void **state)
{
    fixture_t *f = *state;
    json_t *m = manifest(f);
    json_t *t = tensor_entry(m, "cand.field.age");
    json_object_set_new(t, "offset",
                        json_integer(json_integer_value(json_object_get(t, "offset")) + 4));
    save_manifest(f, m);
    json_decref(m);
    expect_fail(f, "cand.field.age", "aligned", NULL);
}

static void test_tensor_out_of_bounds(void **state)
{
    fixture_t *f = *state;
    json_t *m = manifest(f);
    json_t *t = tensor_entry(m, "cand.tower.1.b");
    json_object_set_new(t, "offset",
                        json_integer(json_integer_value(json_object_get(t, "offset")) + 4096));
    save_manifest(f, m);
    json_decref(m);
    expect_fail(f, "cand.tower.1.b", "outside", NULL);
}

static void test_overlapping_tensors(void **state)
{
    fixture_t *f = *state;
    json_t *m = manifest(f);
    /* cand.field.age [16, 4] starts 64 bytes into cand.field.user_id */
    json_int_t uid =
        json_integer_value(json_object_get(tensor_entry(m, "cand.field.user_id"), "offset"));
    json_object_set_new(tensor_entry(m, "cand.field.age"), "offset", json_integer(uid + 64));
    save_manifest(f, m);
    json_decref(m);
    expect_fail(f, "overlap", "cand.field.user_id", "cand.field.age", NULL);
}

static void test_missing_tensor(void **state)
{
    fixture_t *f = *state;
    json_t *m = manifest(f);
    json_t *arr = json_object_get(m, "tensors");
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(arr, i), "name")),
                   "cand.hist_emb") == 0) {
            json_array_remove(arr, i);
            break;
        }
    save_manifest(f, m);
    json_decref(m);
    expect_fail(f, "cand.hist_emb", "not in the tensor table", NULL);
}

static void test_unknown_format(void **state)
{
    fixture_t *f = *state;
    json_t *m = manifest(f);
    json_object_set_new(m, "format", json_string("recd-bundle/9"));
    save_manifest(f, m);
    json_decref(m);
    expect_fail(f, "format", "recd-bundle/9", NULL);
}

static void test_version_directory_mismatch(void **state)
{
    fixture_t *f = *state;
    json_t *m = manifest(f);
    json_object_set_new(m, "version", json_integer(2));
    save_manifest(f, m);
    json_decref(m);
    expect_fail(f, "version 2", "directory", NULL);
}

static void test_items_too_few_rows(void **state)
{
    fixture_t *f = *state;
    size_t len;
    char *t = items_text(N_ITEMS - 1, &len);
    write_text(f, "items.tsv", t);
    free(t);
    reseal(f);
    expect_fail(f, "items.tsv", "19 rows", "n_items = 20", NULL);
}

static void test_items_too_many_rows(void **state)
{
    fixture_t *f = *state;
    size_t len;
    char *t = items_text(N_ITEMS + 1, &len);
    write_text(f, "items.tsv", t);
    free(t);
    reseal(f);
    expect_fail(f, "items.tsv", "n_items", NULL);
}

static void test_index_wrong_dimension(void **state)
{
    fixture_t *f = *state; /* setup wrote a dim-4 index.faiss */
    expect_fail(f, "index.faiss", "dimension", NULL);
    /* without the file the same bundle builds its own index and loads */
    recd_model_opts_t o = {"", 0, 0, 0, NULL};
    recd_bundle_t *b = load_ok(f, &o);
    assert_int_equal(b->ann_from_file, 0);
    recd_bundle_unref(b);
}

static void test_missing_items_file(void **state)
{
    fixture_t *f = *state;
    char p[600];
    path_of(f, "items.tsv", p, sizeof p);
    assert_int_equal(unlink(p), 0);
    expect_fail(f, "items.tsv", NULL);
}

/* ---- feature hashing (BUNDLE.md test vectors) --------------------------------------------------
 */

static uint64_t bucket(const char *field, const char *text, uint64_t buckets)
{
    return recd_feature_bucket(field, strlen(field), text, strlen(text), buckets);
}

static void test_feature_hash_vectors(void **state)
{
    (void)state;
    assert_true(recd_fnv1a64(RECD_FNV1A64_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(recd_fnv1a64(RECD_FNV1A64_INIT, "user_id\x1fu42", 11) == 0xa4fd31ee7755d284ULL);
    /* hashing continued in pieces equals hashing the whole */
    uint64_t h = recd_fnv1a64(RECD_FNV1A64_INIT, "user_id", 7);
    h = recd_fnv1a64(h, "\x1f", 1);
    assert_true(recd_fnv1a64(h, "u42", 3) == 0xa4fd31ee7755d284ULL);
    assert_int_equal(bucket("user_id", "u42", 100000), 68100);

    double age_b[] = {18, 25, 35, 45, 50, 56};
    recd_feature_t age = {
        .name = "age", .bucketized = 1, .boundaries = age_b, .nboundaries = 6, .buckets = 16};
    assert_int_equal(recd_feature_bucketize(&age, 31), 2);
    assert_int_equal(bucket("age", "2", 16), 1);
    /* bisect right: a value equal to a boundary counts it */
    assert_int_equal(recd_feature_bucketize(&age, 17.999), 0);
    assert_int_equal(recd_feature_bucketize(&age, 18), 1);
    assert_int_equal(recd_feature_bucketize(&age, 25), 2);
    assert_int_equal(recd_feature_bucketize(&age, 56), 6);
    assert_int_equal(recd_feature_bucketize(&age, 1e9), 6);
    assert_int_equal(recd_feature_bucketize(&age, -5), 0);

    double hour_b[] = {6, 9, 12, 14, 17, 20, 23};
    recd_feature_t hour = {
        .name = "hour", .bucketized = 1, .boundaries = hour_b, .nboundaries = 7, .buckets = 16};
    assert_int_equal(recd_feature_bucketize(&hour, 21), 6);
    assert_int_equal(bucket("hour", "6", 16), 2);

    assert_int_equal(bucket("gender", "", 8), 5);
    assert_int_equal(bucket("genres", "Comedy", 64), 57);
    assert_int_equal(recd_feature_bucket("agexgenres", 10,
                                         "2\x1f"
                                         "Comedy",
                                         8, 10000),
                     3285);
    /* the field name is part of the key */
    assert_true(bucket("a", "bc", 1000003) != bucket("ab", "c", 1000003));
}

/* ---- overlay ----------------------------------------------------------------------------------
 */

static void vec_fill(float *v, float base)
{
    for (int i = 0; i < DIM; i++)
        v[i] = base + (float)i;
}

static void test_overlay_put_delete_find(void **state)
{
    fixture_t *f = *state;
    recd_bundle_t *b = load_ok(f, NULL);
    recd_err_t err = {0};
    float v1[DIM], v2[DIM], v3[DIM];
    vec_fill(v1, 1);
    vec_fill(v2, 100);
    vec_fill(v3, 1000);
    int created = -1;

    recd_overlay_t *o0 = recd_overlay_acquire(b);
    assert_int_equal(o0->n_added, 0);
    assert_int_equal(recd_overlay_find(o0, "new1", 4), -1);

    /* new id */
    assert_int_equal(recd_overlay_put(b, "new1", v1, NULL, &created, &err), 0);
    assert_int_equal(created, 1);
    /* same id again: replaced, not created */
    assert_int_equal(recd_overlay_put(b, "new1", v2, NULL, &created, &err), 0);
    assert_int_equal(created, 0);
    assert_int_equal(recd_overlay_put(b, "new2", v3, NULL, &created, &err), 0);
    assert_int_equal(created, 1);
    /* a base id: replaced (its bundle row is shadowed) */
    assert_int_equal(recd_overlay_put(b, "i3", v1, NULL, &created, &err), 0);
    assert_int_equal(created, 0);

    recd_overlay_t *o1 = recd_overlay_acquire(b);
    assert_int_equal(o1->n_added, 3);
    int64_t s1 = recd_overlay_find(o1, "new1", 4), s2 = recd_overlay_find(o1, "new2", 4);
    int64_t s3 = recd_overlay_find(o1, "i3", 2);
    assert_true(s1 >= 0 && s2 >= 0 && s3 >= 0);
    assert_memory_equal(o1->added_vecs + s1 * DIM, v2, sizeof v2);
    assert_memory_equal(o1->added_vecs + s2 * DIM, v3, sizeof v3);
    assert_memory_equal(o1->added_vecs + s3 * DIM, v1, sizeof v1);
    assert_string_equal(o1->added_ids[s1], "new1");
    assert_true(recd_overlay_deleted(o1, 3));
    assert_false(recd_overlay_deleted(o1, 4));
    int64_t bi, sl;
    assert_true(recd_overlay_item_known(b, o1, "i3", 2, &bi, &sl));
    assert_int_equal(bi, -1); /* served from the overlay now */
    assert_int_equal(sl, s3);
    assert_true(recd_overlay_item_known(b, o1, "i4", 2, &bi, &sl));
    assert_int_equal(bi, 4);
    assert_int_equal(sl, -1);
    assert_false(recd_overlay_item_known(b, o1, "nope", 4, &bi, &sl));

    /* the first snapshot did not change */
    assert_int_equal(o0->n_added, 0);
    assert_int_equal(recd_overlay_find(o0, "new1", 4), -1);
    assert_false(recd_overlay_deleted(o0, 3));
    assert_true(recd_overlay_item_known(b, o0, "i3", 2, &bi, &sl));
    assert_int_equal(bi, 3);

    /* delete a live item that is not the last: the others keep their vectors */
    assert_int_equal(recd_overlay_delete(b, "new1", &err), 0);
    /* delete a plain base item */
    assert_int_equal(recd_overlay_delete(b, "i7", &err), 0);
    /* delete a replaced base item: gone from both */
    assert_int_equal(recd_overlay_delete(b, "i3", &err), 0);
    /* unknown, and already deleted */
    assert_int_equal(recd_overlay_delete(b, "nope", &err), RECD_ENOENT);
    assert_int_equal(recd_overlay_delete(b, "i7", &err), RECD_ENOENT);
    assert_int_equal(recd_overlay_delete(b, "new1", &err), RECD_ENOENT);

    recd_overlay_t *o2 = recd_overlay_acquire(b);
    assert_int_equal(o2->n_added, 1);
    assert_int_equal(recd_overlay_find(o2, "new1", 4), -1);
    assert_int_equal(recd_overlay_find(o2, "i3", 2), -1);
    int64_t t2 = recd_overlay_find(o2, "new2", 4);
    assert_true(t2 >= 0);
    assert_memory_equal(o2->added_vecs + t2 * DIM, v3, sizeof v3);
    assert_false(recd_overlay_item_known(b, o2, "i7", 2, NULL, NULL));
    assert_false(recd_overlay_item_known(b, o2, "i3", 2, NULL, NULL));
    assert_int_equal(o2->n_deleted, 2);
    /* o1 still sees its own world */
    assert_int_equal(o1->n_added, 3);
    assert_true(recd_overlay_item_known(b, o1, "i7", 2, NULL, NULL));
    assert_memory_equal(o1->added_vecs + s1 * DIM, v2, sizeof v2);

    /* a deleted base id comes back through put, created */
    assert_int_equal(recd_overlay_put(b, "i7", v1, NULL, &created, &err), 0);
    assert_int_equal(created, 1);

    recd_overlay_release(o0);
    recd_overlay_release(o1);
    recd_overlay_release(o2);
    recd_bundle_unref(b);
}

static void test_overlay_many_items(void **state)
{
    /* enough live items to force several rehashes */
    fixture_t *f = *state;
    recd_bundle_t *b = load_ok(f, NULL);
    recd_err_t err = {0};
    float v[DIM];
    char id[32];
    for (int i = 0; i < 300; i++) {
        vec_fill(v, (float)i);
        snprintf(id, sizeof id, "live-%d", i);
        int created = 0;
        assert_int_equal(recd_overlay_put(b, id, v, NULL, &created, &err), 0);
        assert_int_equal(created, 1);
    }
    for (int i = 0; i < 300; i += 3) {
        snprintf(id, sizeof id, "live-%d", i);
        assert_int_equal(recd_overlay_delete(b, id, &err), 0);
    }
    recd_overlay_t *o = recd_overlay_acquire(b);
    assert_int_equal(o->n_added, 200);
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "live-%d", i);
        int64_t s = recd_overlay_find(o, id, strlen(id));
        if (i % 3 == 0) {
            assert_int_equal(s, -1);
        } else {
            assert_true(s >= 0);
            assert_true(o->added_vecs[s * DIM] == (float)i);
            assert_true(o->added_vecs[s * DIM + DIM - 1] == (float)i + DIM - 1);
        }
    }
    recd_overlay_release(o);
    recd_bundle_unref(b);
}

/* ---- candidate generation over bundle + overlay ---------------------------------------------- */

static int has_item(const recd_bundle_t *b, const recd_overlay_t *o, const recd_cand_result_t *r,
                    const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(recd_candgen_id(b, o, &r->items[i]), id) == 0)
            return 1;
    return 0;
}

static void test_nearest_sees_overlay(void **state)
{
    fixture_t *f = *state;
    recd_bundle_t *b = load_ok(f, NULL);
    recd_err_t err = {0};
    recd_arena_t a;
    recd_arena_init(&a, 1 << 16);
    const float *q = b->item_emb->data + 3 * DIM; /* item i3 */

    /* exact reference: inner products over all base items except i3 */
    float best = -INFINITY;
    int besti = -1;
    for (int i = 0; i < N_ITEMS; i++) {
        if (i == 3)
            continue;
        float s = recd_nn_dot(DIM, q, b->item_emb->data + i * DIM);
        if (s > best)
            best = s, besti = i;
    }
    recd_overlay_t *o = recd_overlay_acquire(b);
    recd_cand_result_t r;
    assert_int_equal(recd_candgen_nearest(b, o, q, 5, 3, -1, &a, &r, &err), 0);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.items[0].index, besti);
    assert_false(has_item(b, o, &r, "i3"));
    for (size_t i = 1; i < r.n; i++)
        assert_true(r.items[i - 1].retrieval >= r.items[i].retrieval);
    recd_overlay_release(o);

    /* a live item pointing along q with a large norm comes first */
    float big[DIM];
    for (int i = 0; i < DIM; i++)
        big[i] = q[i] * 100.0f;
    int created;
    assert_int_equal(recd_overlay_put(b, "boost", big, NULL, &created, &err), 0);
    assert_int_equal(recd_overlay_delete(b, "i0", &err), 0);
    char bestid[16];
    snprintf(bestid, sizeof bestid, "i%d", besti);
    assert_int_equal(recd_overlay_delete(b, bestid, &err), 0);
    o = recd_overlay_acquire(b);
    recd_arena_reset(&a);
    assert_int_equal(recd_candgen_nearest(b, o, q, N_ITEMS, 3, -1, &a, &r, &err), 0);
    assert_string_equal(recd_candgen_id(b, o, &r.items[0]), "boost");
    assert_false(has_item(b, o, &r, "i0"));
    assert_false(has_item(b, o, &r, bestid));
    assert_false(has_item(b, o, &r, "i3"));
    /* every remaining item: 20 base - i3 - i0 - best + boost */
    assert_int_equal(r.n, N_ITEMS - 3 + 1);
    recd_overlay_release(o);
    recd_arena_free(&a);
    recd_bundle_unref(b);
}

/* ---- the content model --------------------------------------------------------------- */

/* Reference forward pass in double, straight from models/FORMAT.md. */
static void content_reference(const recd_bundle_t *b, const uint64_t *genres, size_t ng,
                              uint64_t year, double *out)
{
    const float *eg = recd_bundle_tensor(b, "content.emb.genres")->data;
    const float *ey = recd_bundle_tensor(b, "content.emb.year")->data;
    const float *w0 = recd_bundle_tensor(b, "content.0.w")->data;
    const float *b0 = recd_bundle_tensor(b, "content.0.b")->data;
    const float *w1 = recd_bundle_tensor(b, "content.1.w")->data;
    const float *b1 = recd_bundle_tensor(b, "content.1.b")->data;
    double x[2 * CEMB] = {0}, h[CHID];
    for (size_t k = 0; k < CEMB; k++) {
        for (size_t i = 0; i < ng; i++)
            x[k] += eg[genres[i] * CEMB + k] / (double)ng;
        x[CEMB + k] = ey[year * CEMB + k];
    }
    for (size_t j = 0; j < CHID; j++) {
        h[j] = b0[j];
        for (size_t i = 0; i < 2 * CEMB; i++)
            h[j] += x[i] * w0[i * CHID + j];
        h[j] = h[j] > 0 ? h[j] : 0;
    }
    for (size_t j = 0; j < DIM; j++) {
        out[j] = b1[j];
        for (size_t i = 0; i < CHID; i++)
            out[j] += h[i] * w1[i * DIM + j];
    }
}

static void test_content_loads_and_embeds(void **state)
{
    fixture_t *f = *state;
    recd_bundle_t *b = load_ok(f, NULL);
    const recd_content_t *c = b->content;
    assert_non_null(c);
    assert_int_equal(c->embed_dim, CEMB);
    assert_int_equal(c->nfields, 2);
    assert_string_equal(b->features[c->fields[0].feature].name, "genres");
    assert_string_equal(b->features[c->fields[1].feature].name, "year");
    assert_int_equal(c->nlayers, 2);
    assert_true(c->layers[0].relu && !c->layers[1].relu);
    assert_int_equal(recd_content_scratch_floats(b), 2 * DIM); /* widest: the output */

    /* genres Comedy|War, year 1994 (bucket index 6) */
    uint64_t g[2] = {bucket("genres", "Comedy", 64), bucket("genres", "War", 64)};
    uint64_t y = bucket("year", "6", 32);
    const char *gt[2] = {"Comedy", "War"}, *yt[1] = {"6"};
    uint32_t gl[2] = {6, 3}, yl[1] = {1};
    recd_field_buckets_t fb[5] = {{0}};
    size_t gi = (size_t)c->fields[0].feature, yi = (size_t)c->fields[1].feature;
    fb[gi] = (recd_field_buckets_t){g, 2, gt, gl};
    fb[yi] = (recd_field_buckets_t){&y, 1, yt, yl};
    float out[DIM], scratch[2 * DIM];
    double want[DIM];
    recd_err_t err = {0};
    assert_int_equal(recd_content_embed(b, fb, out, scratch, &err), 0);
    content_reference(b, g, 2, y, want);
    for (size_t j = 0; j < DIM; j++)
        assert_float_equal(out[j], want[j], 1e-5 * (1 + fabs(want[j])));

    /* a missing field (n == 0) hashes as "" */
    fb[yi] = (recd_field_buckets_t){0};
    assert_true(recd_content_value_missing(&fb[yi]));
    assert_false(recd_content_value_missing(&fb[gi]));
    assert_int_equal(recd_content_embed(b, fb, out, scratch, &err), 0);
    content_reference(b, g, 2, bucket("year", "", 32), want);
    for (size_t j = 0; j < DIM; j++)
        assert_float_equal(out[j], want[j], 1e-5 * (1 + fabs(want[j])));
    /* "" values count as missing */
    const char *et[1] = {""};
    uint32_t el[1] = {0};
    uint64_t eb = bucket("genres", "", 64);
    recd_field_buckets_t empty = {&eb, 1, et, el};
    assert_true(recd_content_value_missing(&empty));

    /* a bucket outside the table is refused, not read */
    uint64_t wild = 64;
    fb[gi] = (recd_field_buckets_t){&wild, 1, NULL, NULL};
    assert_int_equal(recd_content_embed(b, fb, out, scratch, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "genres"));
    recd_bundle_unref(b);
}

static void test_no_content_model(void **state)
{
    fixture_t *f = *state;
    recd_bundle_t *b = load_ok(f, NULL);
    assert_null(b->content);
    assert_int_equal(recd_content_scratch_floats(b), 0);
    float out[DIM];
    recd_err_t err = {0};
    recd_field_buckets_t fb[4] = {{0}};
    assert_int_equal(recd_content_embed(b, fb, out, NULL, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "no content model"));
    recd_bundle_unref(b);
}

static void test_content_overflow(void **state)
{
    /* finite weights (the loader accepts them) whose product overflows */
    fixture_t *f = *state;
    poke_float(f, tensor_offset(f, "content.0.b"), 3.0e38f);
    for (size_t j = 0; j < DIM; j++)
        poke_float(f, tensor_offset(f, "content.1.w") + (json_int_t)(4 * j), 3.0e38f);
    reseal(f);
    recd_bundle_t *b = load_ok(f, NULL);
    recd_field_buckets_t fb[5] = {{0}};
    float out[DIM], scratch[2 * DIM];
    recd_err_t err = {0};
    assert_int_equal(recd_content_embed(b, fb, out, scratch, &err), RECD_ERANGE);
    assert_non_null(strstr(err.msg, "overflowed"));
    recd_bundle_unref(b);
}

/* Edit the content section with a JSON path update and expect failure. */
static void content_edit(const fixture_t *f, const char *layer_or_field, size_t i, const char *key,
                         json_t *value)
{
    json_t *m = manifest(f);
    json_t *c = json_object_get(m, "content");
    json_t *target = layer_or_field ? json_array_get(json_object_get(c, layer_or_field), i) : c;
    assert_non_null(target);
    if (value)
        json_object_set_new(target, key, value);
    else
        json_object_del(target, key);
    save_manifest(f, m);
    json_decref(m);
}

static void test_content_bad_field(void **state)
{
    fixture_t *f = *state;
    content_edit(f, "fields", 1, "name", json_string("nope"));
    expect_fail(f, "content.fields[1].name", "no field", "nope", NULL);
    content_edit(f, "fields", 1, "name", json_string("age"));
    expect_fail(f, "content.fields[1].name", "user field", NULL);
    content_edit(f, "fields", 1, "name", json_string("hour"));
    expect_fail(f, "content.fields[1].name", "context field", NULL);
    content_edit(f, "fields", 1, "name", json_string("genres"));
    expect_fail(f, "content.fields[1].name", "duplicate", NULL);
    /* an item field reading the id column */
    json_t *m = manifest(f);
    json_array_append_new(json_object_get(json_object_get(m, "features"), "fields"),
                          json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", "item_id", "source",
                                    "item", "type", "categorical", "column", "id", "buckets", 64));
    save_manifest(f, m);
    json_decref(m);
    content_edit(f, "fields", 1, "name", json_string("item_id"));
    expect_fail(f, "content.fields[1].name", "item id", NULL);
    /* back to year: loads again */
    content_edit(f, "fields", 1, "name", json_string("year"));
    recd_bundle_unref(load_ok(f, NULL));
}

static void test_content_bad_tensors(void **state)
{
    fixture_t *f = *state;
    content_edit(f, "fields", 0, "tensor", json_string("content.emb.nope"));
    expect_fail(f, "content.fields[0].tensor", "content.emb.nope", "not in the tensor table", NULL);
    content_edit(f, "fields", 0, "tensor", json_string("content.emb.year"));
    expect_fail(f, "content.emb.year", "shape [32, 3], expected [64, 3]", NULL);
    content_edit(f, "fields", 0, "tensor", json_string("content.emb.genres"));
    content_edit(f, "layers", 1, "w", json_string("content.0.w"));
    expect_fail(f, "content.layers[1].w", "content.0.w", "shape", NULL);
    content_edit(f, "layers", 1, "w", json_string("content.1.w"));
    content_edit(f, "layers", 0, "b", NULL);
    expect_fail(f, "content.layers[0].b", "missing", NULL);
}

static void test_content_bad_layers(void **state)
{
    fixture_t *f = *state;
    content_edit(f, "layers", 1, "in", json_integer(CHID + 1));
    expect_fail(f, "content.layers[1].in", "expected 5", NULL);
    content_edit(f, "layers", 1, "in", json_integer(CHID));
    content_edit(f, "layers", 0, "in", json_integer(2 * CEMB + 1));
    expect_fail(f, "content.layers[0].in", "embed_dim 3 x 2 fields", NULL);
    content_edit(f, "layers", 0, "in", json_integer(2 * CEMB));
    content_edit(f, "layers", 0, "activation", json_string("sigmoid"));
    expect_fail(f, "content.layers[0].activation", "sigmoid", NULL);
    content_edit(f, "layers", 0, "activation", json_string("relu"));
    content_edit(f, NULL, 0, "output", json_string("cand.hist_emb"));
    expect_fail(f, "content.output", "cand.item_emb", NULL);
    content_edit(f, NULL, 0, "output", json_string("cand.item_emb"));
    content_edit(f, NULL, 0, "type", json_string("gbdt"));
    expect_fail(f, "content.type", "gbdt", NULL);
    content_edit(f, NULL, 0, "type", json_string("mlp"));
    /* the last layer must give candidate.dim */
    json_t *m = manifest(f);
    json_array_remove(json_object_get(json_object_get(m, "content"), "layers"), 1);
    save_manifest(f, m);
    json_decref(m);
    expect_fail(f, "content.layers", "last layer gives 5", "candidate.dim 8", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_bundle_loads, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_no_index_file_builds, setup_noindex, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_mismatch, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_items_checksum_mismatch, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_tensors, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_tensors_resealed, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_tower_chain_mismatch, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_tower_weight_shape_mismatch, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_tower_output_not_dim, setup_noindex, teardown),
        cmocka_unit_test_setup_teardown(test_nan_value, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_inf_value, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_item_id, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_misaligned_offset, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_tensor_out_of_bounds, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_overlapping_tensors, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_missing_tensor, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_format, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_version_directory_mismatch, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_items_too_few_rows, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_items_too_many_rows, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_missing_items_file, setup_good, teardown),
        cmocka_unit_test(test_feature_hash_vectors),
        cmocka_unit_test_setup_teardown(test_overlay_put_delete_find, setup_good, teardown),
        cmocka_unit_test_setup_teardown(test_overlay_many_items, setup_noindex, teardown),
        cmocka_unit_test_setup_teardown(test_nearest_sees_overlay, setup_noindex, teardown),
        cmocka_unit_test_setup_teardown(test_item_emb_rows_mismatch, setup_extra_item_row,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_index_wrong_dimension, setup_bad_index, teardown),
        cmocka_unit_test_setup_teardown(test_content_loads_and_embeds, setup_content, teardown),
        cmocka_unit_test_setup_teardown(test_no_content_model, setup_noindex, teardown),
        cmocka_unit_test_setup_teardown(test_content_overflow, setup_content, teardown),
        cmocka_unit_test_setup_teardown(test_content_bad_field, setup_content, teardown),
        cmocka_unit_test_setup_teardown(test_content_bad_tensors, setup_content, teardown),
        cmocka_unit_test_setup_teardown(test_content_bad_layers, setup_content, teardown),
    };
    recd_nn_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
