/*
 * bench_rank: ranking throughput on one core - candidates scored per second
 * by recd_rank_score for DeepFM and Wide&Deep, at 100, 300 and 1000
 * candidates per request, with the ranker MLP [256,128,64] and
 * [400,400,400], field embeddings K = 16 (bundles from the project's
 * generator, 20k items, in a temporary directory).
 *
 * Next to each row: the achieved GFLOP/s of the MLP (multiply-adds x 2 of
 * the work the ranker actually does: the user/context part of layer 0 once
 * per request, the item part and the remaining layers per candidate) and
 * the GFLOP/s of the bare BLAS calls for the same shapes in the same run
 * (one sgemv for the user part, one sgemm per layer over all candidates,
 * one sgemv for the output), OpenBLAS pinned to one thread (recd_nn_init).
 * The goal: the ranker reaches at least half of the BLAS rate.
 *
 *   bench_rank [--seconds 0.8] [--items 20000]
 */
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>

#include "recd/core.h"
#include "recd/model.h"
#include "recd/nn.h"
#include "recd/rank.h"
#include "recd/train.h"

static double seconds = 0.8; /* timing per measurement */
static size_t n_items = 20000;

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

static float *rand_vec(size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((double)(rnd() >> 11) / 9007199254740992.0 - 0.5);
    return v;
}

/* A request's user/context values, hashed like the API does. */
typedef struct request {
    uint64_t bk[32];
    char txt[32][32];
    const char *tp[32];
    uint32_t tl[32];
    recd_field_buckets_t fb[32];
} request_t;

static void make_request(const recd_bundle_t *b, request_t *r)
{
    static const struct {
        const char *f, *s;
        double num;
    } U[] = {{"user_id", "u42", 0},       {"age", NULL, 31},       {"gender", "F", 0},
             {"occupation", "writer", 0}, {"device", "mobile", 0}, {"hour", NULL, 21}};
    memset(r, 0, sizeof *r);
    for (size_t f = 0; f < b->nfeatures && f < 32; f++) {
        const recd_feature_t *F = &b->features[f];
        if (F->source == RECD_SRC_ITEM)
            continue;
        for (size_t j = 0; j < sizeof U / sizeof U[0]; j++)
            if (strcmp(U[j].f, F->name) == 0) {
                if (U[j].s)
                    snprintf(r->txt[f], sizeof r->txt[f], "%s", U[j].s);
                else
                    snprintf(r->txt[f], sizeof r->txt[f], "%zu",
                             recd_feature_bucketize(F, U[j].num));
            }
        r->tp[f] = r->txt[f];
        r->tl[f] = (uint32_t)strlen(r->txt[f]);
        r->bk[f] = recd_feature_bucket(F->name, strlen(F->name), r->txt[f], r->tl[f], F->buckets);
        r->fb[f] = (recd_field_buckets_t){&r->bk[f], 1, &r->tp[f], &r->tl[f]};
    }
}

/* Shapes of the ranker's MLP, from the manifest. */
typedef struct shapes {
    size_t k, nu, ni; /* embed dim, user/context and item fields */
    size_t h[8], nh;  /* hidden widths */
} shapes_t;

static void get_shapes(const recd_bundle_t *b, shapes_t *s)
{
    json_t *r = json_object_get(b->manifest, "ranker");
    json_t *fs = json_object_get(r, "fields"), *mlp = json_object_get(r, "mlp");
    memset(s, 0, sizeof *s);
    s->k = (size_t)json_integer_value(json_object_get(r, "embed_dim"));
    for (size_t i = 0; i < json_array_size(fs); i++) {
        const char *nm = json_string_value(json_object_get(json_array_get(fs, i), "name"));
        for (size_t f = 0; f < b->nfeatures; f++)
            if (strcmp(b->features[f].name, nm) == 0) {
                if (b->features[f].source == RECD_SRC_ITEM)
                    s->ni++;
                else
                    s->nu++;
            }
    }
    for (size_t i = 0; i < json_array_size(mlp) && i < 8; i++)
        s->h[s->nh++] = (size_t)json_integer_value(json_object_get(json_array_get(mlp, i), "out"));
}

/* MLP floating-point operations of one request of n candidates. */
static double mlp_flops(const shapes_t *s, size_t n)
{
    double user = (double)(s->k * s->nu * s->h[0]);
    double per = (double)(s->k * s->ni * s->h[0]);
    for (size_t l = 1; l < s->nh; l++)
        per += (double)(s->h[l - 1] * s->h[l]);
    per += (double)s->h[s->nh - 1];
    return 2.0 * (user + (double)n * per);
}

/* The bare BLAS calls of one request: GFLOP/s. */
static double blas_rate(const shapes_t *s, size_t n)
{
    size_t ku = s->k * s->nu, ki = s->k * s->ni, widest = ki;
    for (size_t l = 0; l < s->nh; l++)
        widest = s->h[l] > widest ? s->h[l] : widest;
    float *xu = rand_vec(ku), *u0 = rand_vec(s->h[0]), *wu = rand_vec(ku * s->h[0]);
    float *xi = rand_vec(n * ki), *wi = rand_vec(ki * s->h[0]), *out = rand_vec(widest);
    float *w[8], *x = rand_vec(n * widest), *y = rand_vec(n * widest), *o = rand_vec(n);
    for (size_t l = 1; l < s->nh; l++)
        w[l] = rand_vec(s->h[l - 1] * s->h[l]);
    size_t reps = 0;
    uint64_t t0 = recd_time_mono_ns(), t;
    do {
        for (int r = 0; r < 10; r++) {
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)ku, (int)s->h[0], 1.0f, wu, (int)s->h[0],
                        xu, 1, 0.0f, u0, 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)s->h[0], (int)ki,
                        1.0f, xi, (int)ki, wi, (int)s->h[0], 0.0f, x, (int)s->h[0]);
            for (size_t l = 1; l < s->nh; l++) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)s->h[l],
                            (int)s->h[l - 1], 1.0f, x, (int)s->h[l - 1], w[l], (int)s->h[l], 0.0f,
                            y, (int)s->h[l]);
                float *tmp = x;
                x = y;
                y = tmp;
            }
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)s->h[s->nh - 1], 1.0f, x,
                        (int)s->h[s->nh - 1], out, 1, 0.0f, o, 1);
        }
        reps += 10;
        t = recd_time_mono_ns();
    } while ((double)(t - t0) < seconds * 1e9);
    for (size_t l = 1; l < s->nh; l++)
        free(w[l]);
    free(xu), free(u0), free(wu), free(xi), free(wi), free(out), free(x), free(y), free(o);
    return mlp_flops(s, n) * (double)reps / (double)(t - t0);
}

/* Ranker: candidates per second and GFLOP/s. */
static int rank_rate(const recd_bundle_t *b, const shapes_t *s, size_t n, double *cps,
                     double *gflops)
{
    const recd_ranker_t *rk = recd_rank_of(b);
    recd_overlay_t *o = recd_overlay_acquire((recd_bundle_t *)b);
    request_t rq;
    make_request(b, &rq);
    recd_candidate_t *c = malloc(n * sizeof *c);
    float *sc = malloc(n * sizeof *sc);
    for (size_t i = 0; i < n; i++)
        c[i] = (recd_candidate_t){(int64_t)(rnd() % b->n_items), -1, 0};
    recd_arena_t a;
    recd_arena_init(&a, 1 << 20);
    recd_err_t err = {0};
    size_t reps = 0;
    int rc = 0;
    for (int w = 0; w < 3 && rc == 0; w++) { /* warm-up */
        rc = recd_rank_score(rk, b, o, rq.fb, c, n, &a, sc, NULL, &err);
        recd_arena_reset(&a);
    }
    uint64_t t0 = recd_time_mono_ns(), t;
    do {
        for (int r = 0; r < 10 && rc == 0; r++) {
            rc = recd_rank_score(rk, b, o, rq.fb, c, n, &a, sc, NULL, &err);
            recd_arena_reset(&a);
        }
        reps += 10;
        t = recd_time_mono_ns();
    } while (rc == 0 && (double)(t - t0) < seconds * 1e9);
    if (rc != 0)
        fprintf(stderr, "bench_rank: score: %s\n", err.msg);
    double dt = (double)(t - t0) / 1e9;
    *cps = (double)(n * reps) / dt;
    *gflops = mlp_flops(s, n) * (double)reps / dt / 1e9;
    recd_arena_free(&a);
    free(c);
    free(sc);
    recd_overlay_release(o);
    return rc;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--items") == 0 && i + 1 < argc)
            n_items = (size_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_rank [--seconds 0.8] [--items 20000]\n");
            return 2;
        }
    }
    recd_nn_init();
    char root[] = "/tmp/recd-bench-rank-XXXXXX";
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    static const size_t hidden[][3] = {{256, 128, 64}, {400, 400, 400}};
    static const size_t ns[] = {100, 300, 1000};
    static const recd_ranker_kind_t kinds[] = {RECD_RANKER_DEEPFM, RECD_RANKER_WIDE_DEEP};
    int below = 0, rc = 0;
    printf("bench_rank: one core (OpenBLAS 1 thread), %zu items, K = 16, %.1f s per cell\n",
           n_items, seconds);
    printf("%-10s %-14s %6s %14s %10s %12s %12s %7s\n", "network", "mlp", "cands", "cands/s",
           "us/req", "rank GF/s", "BLAS GF/s", "ratio");
    for (size_t k = 0; k < 2 && rc == 0; k++)
        for (size_t h = 0; h < 2 && rc == 0; h++) {
            char name[32];
            snprintf(name, sizeof name, "m%zu%zu", k, h);
            recd_synth_opts_t o;
            recd_train_synth_defaults(&o);
            o.models_dir = root;
            o.name = name;
            o.n_items = n_items;
            o.rank_embed_dim = 16;
            o.nrank_hidden = 3;
            memcpy(o.rank_hidden, hidden[h], sizeof hidden[h]);
            o.ranker = kinds[k];
            o.index = "Flat";
            o.write_index_file = 0;
            recd_err_t err = {0};
            if (recd_train_synth_bundle(&o, &err) != 0) {
                fprintf(stderr, "bench_rank: synth: %s\n", err.msg);
                rc = 1;
                break;
            }
            char dir[128];
            snprintf(dir, sizeof dir, "%s/%s/1", root, name);
            recd_model_opts_t mo = {
                .ann_factory = "", .use_index_file = 1, .attach = recd_rank_attach};
            recd_bundle_t *b = recd_bundle_load(dir, &mo, &err);
            if (!b) {
                fprintf(stderr, "bench_rank: load: %s\n", err.msg);
                rc = 1;
                break;
            }
            shapes_t s;
            get_shapes(b, &s);
            char mlp[32];
            snprintf(mlp, sizeof mlp, "[%zu,%zu,%zu]", hidden[h][0], hidden[h][1], hidden[h][2]);
            for (size_t j = 0; j < sizeof ns / sizeof ns[0] && rc == 0; j++) {
                double cps, gf;
                rc = rank_rate(b, &s, ns[j], &cps, &gf);
                double bl = blas_rate(&s, ns[j]);
                below += gf < 0.5 * bl;
                printf("%-10s %-14s %6zu %14.0f %10.1f %12.2f %12.2f %7.2f\n",
                       recd_rank_type(recd_rank_of(b)), mlp, ns[j], cps, 1e6 * ns[j] / cps, gf, bl,
                       gf / bl);
                fflush(stdout);
            }
            recd_bundle_unref(b);
        }
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    if (rc == 0)
        printf("goal (ranker >= half the BLAS rate): %s\n",
               below ? "NOT met in every row" : "met in every row");
    return rc;
}
