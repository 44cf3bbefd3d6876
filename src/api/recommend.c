/* /v1/recommend, /v1/similar and live items: request validation, feature
 * hashing of request values (BUNDLE.md) and the response documents. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "recd/candgen.h"
#include "recd/conf.h"
#include "recd/abrt.h"
#include "recd/api.h"
#include "recd/model.h"
#include "recd/nn.h"
#include "recd/rank.h"
#include "recd/stats.h"

#define MAX_ID_BYTES 256
#define MAX_EXCLUDE 10000

static recd_stats_thread_t *thread_stats(recd_http_req_t *r)
{
    return recd_stats_thread(recd_http_req_worker(r));
}

/* An error answered to the client: status, code, field, message. */
typedef struct apierr {
    int status;
    const char *code;
    char field[128];
    char msg[320];
} apierr_t;

__attribute__((format(printf, 5, 6))) static int aerr(apierr_t *e, int status, const char *code,
                                                      const char *field, const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static void send_aerr(recd_http_req_t *r, const apierr_t *e)
{
    recd_http_respond_error(r, e->status, e->code, e->field[0] ? e->field : NULL, "%s", e->msg);
}

static int valid_item_id(const char *s, size_t n)
{
    if (n == 0 || n > MAX_ID_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* ---- feature hashing of request values (BUNDLE.md "text(v)") ------------------ */

/* Text of one scalar value; returns length or -1 with e filled. */
static int value_text(const recd_feature_t *f, json_t *v, const char *where, char *buf, size_t cap,
                      const char **text, apierr_t *e)
{
    if (!v || json_is_null(v)) {
        *text = "";
        return 0;
    }
    if (f->bucketized) {
        if (!json_is_number(v))
            return aerr(e, 400, "bad_request", where, "%s must be a number", f->name);
        double x = json_number_value(v);
        if (!isfinite(x))
            return aerr(e, 400, "bad_request", where, "%s must be finite", f->name);
        int n = snprintf(buf, cap, "%zu", recd_feature_bucketize(f, x));
        *text = buf;
        return n;
    }
    if (json_is_string(v)) {
        *text = json_string_value(v);
        return (int)json_string_length(v);
    }
    if (json_is_integer(v)) {
        int n = snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
        *text = buf;
        return n;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (!isfinite(x) || x != floor(x))
            return aerr(e, 400, "bad_request", where, "%s takes a string or an integer", f->name);
        /* an integral float is its exact integer in decimal (1e16 ->
         * "10000000000000000"; -0.0 -> "0") */
        int n = x == 0 ? snprintf(buf, cap, "0") : snprintf(buf, cap, "%.0f", x);
        *text = buf;
        return n;
    }
    return aerr(e, 400, "bad_request", where, "%s takes a string or an integer", f->name);
}

/* Buckets of field f for value v (may be NULL = missing). */
static int field_buckets(const recd_feature_t *f, json_t *v, const char *where, recd_arena_t *a,
                         recd_field_buckets_t *out, apierr_t *e)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (json_is_array(v) && !f->multi_valued)
        return aerr(e, 400, "bad_request", where, "%s takes a single value", f->name);
    if (n == 0)
        n = 1; /* an empty list counts as one empty value */
    uint64_t *b = recd_arena_alloc(a, n * sizeof *b);
    const char **texts = recd_arena_alloc(a, n * sizeof *texts);
    uint32_t *tlen = recd_arena_alloc(a, n * sizeof *tlen);
    if (!b || !texts || !tlen)
        return aerr(e, 500, "internal", NULL, "out of memory");
    size_t nl = strlen(f->name);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_is_array(v) ? json_array_get(v, i) : v;
        if (json_is_array(x))
            return aerr(e, 400, "bad_request", where, "%s: nested lists are not allowed", f->name);
        char buf[400]; /* %.0f of a double needs up to 309 digits */
        const char *t = "";
        int tl = value_text(f, x, where, buf, sizeof buf, &t, e);
        if (tl < 0)
            return -1;
        b[i] = recd_feature_bucket(f->name, nl, t, (size_t)tl, f->buckets);
        /* the text outlives buf: Wide&Deep crosses hash it again */
        texts[i] = recd_arena_strndup(a, t, (size_t)tl);
        tlen[i] = (uint32_t)tl;
        if (!texts[i])
            return aerr(e, 500, "internal", NULL, "out of memory");
    }
    out->b = b;
    out->n = n;
    out->t = texts;
    out->tlen = tlen;
    return 0;
}

/* Buckets for every user and context field of the bundle. */
static recd_field_buckets_t *request_fields(const recd_bundle_t *b, const char *user_id,
                                            json_t *features, json_t *context, recd_arena_t *a,
                                            apierr_t *e)
{
    recd_field_buckets_t *fb = recd_arena_alloc(a, (b->nfeatures + 1) * sizeof *fb);
    if (!fb) {
        aerr(e, 500, "internal", NULL, "out of memory");
        return NULL;
    }
    memset(fb, 0, (b->nfeatures + 1) * sizeof *fb);
    for (size_t i = 0; i < b->nfeatures; i++) {
        const recd_feature_t *f = &b->features[i];
        if (f->source == RECD_SRC_ITEM)
            continue;
        char where[160];
        json_t *v;
        json_t *uid = NULL;
        if (f->source == RECD_SRC_USER && strcmp(f->name, "user_id") == 0) {
            uid = json_string(user_id);
            v = uid;
            snprintf(where, sizeof where, "user_id");
        } else if (f->source == RECD_SRC_USER) {
            v = features ? json_object_get(features, f->name) : NULL;
            snprintf(where, sizeof where, "features.%s", f->name);
        } else {
            v = context ? json_object_get(context, f->name) : NULL;
            snprintf(where, sizeof where, "context.%s", f->name);
        }
        int rc = field_buckets(f, v, where, a, &fb[i], e);
        json_decref(uid);
        if (rc < 0)
            return NULL;
    }
    return fb;
}

/* ---- request parsing -------------------------------------------------------------- */

typedef struct rec_req {
    const char *user_id;
    int64_t k, candidates;
    json_t *history, *exclude, *features, *context;
    const char *model;
    int include_seen, explain;
    int rank; /* run the ranking stage (default 1; "rank": false = retrieval order) */
    /* which of those the client set (an A/B variant overrides only the rest) */
    int has_model, has_candidates, has_rank;
    int output; /* RECD_RANK_OUTPUT_* (a variant's score formula) */
} rec_req_t;

static int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, apierr_t *e)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return aerr(e, 400, "bad_request", key, "%s must be an integer", key);
    int64_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return aerr(e, 400, "bad_request", key, "%s must be %lld..%lld", key, (long long)lo,
                    (long long)hi);
    *out = x;
    return 0;
}

static int get_bool(json_t *o, const char *key, int *out, apierr_t *e)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return aerr(e, 400, "bad_request", key, "%s must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int get_id_list(json_t *o, const char *key, size_t max, json_t **out, apierr_t *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return aerr(e, 400, "bad_request", key, "%s must be an array of item ids", key);
    if (json_array_size(v) > max)
        return aerr(e, 400, "bad_request", key, "%s has %zu ids; at most %zu are accepted", key,
                    json_array_size(v), max);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_string(x)) {
            char f[64];
            snprintf(f, sizeof f, "%s[%zu]", key, i);
            return aerr(e, 400, "bad_request", f, "%s must be a string", f);
        }
    }
    *out = v;
    return 0;
}

static int parse_rec(json_t *j, rec_req_t *q, apierr_t *e)
{
    static const char *const known[] = {
        "user_id", "k",     "candidates", "history",      "features", "context",
        "exclude", "model", "explain",    "include_seen", "rank",     NULL};
    if (!json_is_object(j))
        return aerr(e, 400, "bad_request", "body", "expected a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach (j, key, v) {
        int ok = 0;
        for (const char *const *k = known; *k; k++)
            ok |= strcmp(*k, key) == 0;
        if (!ok)
            return aerr(e, 400, "bad_request", key, "unknown field \"%s\"", key);
    }
    json_t *uid = json_object_get(j, "user_id");
    if (!uid)
        return aerr(e, 400, "bad_request", "user_id", "user_id is required");
    if (!json_is_string(uid) || json_string_length(uid) == 0 ||
        json_string_length(uid) > MAX_ID_BYTES ||
        strlen(json_string_value(uid)) != json_string_length(uid))
        return aerr(e, 400, "bad_request", "user_id", "user_id must be a string of 1..%d bytes",
                    MAX_ID_BYTES);
    q->user_id = json_string_value(uid);
    const recd_conf_t *cf = recd_conf_current();
    q->k = 10;
    if (get_int(j, "k", 1, 1000, &q->k, e) < 0)
        return -1;
    q->candidates = cf->candgen_candidates > q->k ? cf->candgen_candidates : q->k;
    if (get_int(j, "candidates", q->k, 10000, &q->candidates, e) < 0)
        return -1;
    if (get_id_list(j, "history", (size_t)cf->candgen_max_history, &q->history, e) < 0 ||
        get_id_list(j, "exclude", MAX_EXCLUDE, &q->exclude, e) < 0 ||
        get_bool(j, "include_seen", &q->include_seen, e) < 0 ||
        get_bool(j, "explain", &q->explain, e) < 0)
        return -1;
    q->rank = 1;
    if (get_bool(j, "rank", &q->rank, e) < 0)
        return -1;
    q->has_candidates = json_object_get(j, "candidates") != NULL;
    q->has_rank = json_object_get(j, "rank") != NULL;
    q->has_model = json_object_get(j, "model") != NULL;
    q->output = RECD_RANK_OUTPUT_BUNDLE;
    static const char *const objs[] = {"features", "context"};
    for (int i = 0; i < 2; i++) {
        json_t *o = json_object_get(j, objs[i]);
        if (o && !json_is_object(o) && !json_is_null(o))
            return aerr(e, 400, "bad_request", objs[i], "%s must be an object", objs[i]);
        if (i == 0)
            q->features = json_is_object(o) ? o : NULL;
        else
            q->context = json_is_object(o) ? o : NULL;
    }
    json_t *m = json_object_get(j, "model");
    if (m && (!json_is_string(m) || !json_string_length(m)))
        return aerr(e, 400, "bad_request", "model", "model must be a non-empty string");
    q->model = m ? json_string_value(m) : cf->models_default;
    return 0;
}

/* GET /v1/recommend?user_id=..&k=..: the same fields from the query string
 * (history and exclude comma-separated). */
static json_t *query_to_json(recd_http_req_t *r, apierr_t *e)
{
    /* unknown parameters are refused, as unknown fields of the POST body are */
    static const char *const allowed[] = {
        "user_id", "k", "candidates", "history", "exclude", "model", "include_seen", "rank", NULL};
    const char *bad = recd_http_req_query_unknown(r, allowed);
    if (bad) {
        aerr(e, 400, "bad_request", bad, "unknown query parameter \"%s\"", bad);
        return NULL;
    }
    json_t *j = json_object();
    static const char *const ints[] = {"k", "candidates"};
    const char *v;
    if ((v = recd_http_req_query(r, "user_id")))
        json_object_set_new(j, "user_id", json_string(v));
    for (int i = 0; i < 2; i++) {
        if (!(v = recd_http_req_query(r, ints[i])))
            continue;
        char *end;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end) {
            json_decref(j);
            aerr(e, 400, "bad_request", ints[i], "%s must be an integer", ints[i]);
            return NULL;
        }
        json_object_set_new(j, ints[i], json_integer(x));
    }
    static const char *const lists[] = {"history", "exclude"};
    for (int i = 0; i < 2; i++) {
        if (!(v = recd_http_req_query(r, lists[i])))
            continue;
        json_t *a = json_array();
        const char *p = v;
        while (*p) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            if (n)
                json_array_append_new(a, json_stringn(p, n));
            p += n + (c != NULL);
        }
        json_object_set_new(j, lists[i], a);
    }
    if ((v = recd_http_req_query(r, "model")))
        json_object_set_new(j, "model", json_string(v));
    static const char *const bools[] = {"include_seen", "rank"};
    for (int i = 0; i < 2; i++) {
        if (!(v = recd_http_req_query(r, bools[i])))
            continue;
        if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0")) {
            json_decref(j);
            aerr(e, 400, "bad_request", bools[i], "%s must be true or false", bools[i]);
            return NULL;
        }
        json_object_set_new(j, bools[i], json_boolean(!strcmp(v, "true") || !strcmp(v, "1")));
    }
    return j;
}

static recd_bundle_t *acquire_model(const char *name, apierr_t *e)
{
    recd_bundle_t *b = recd_model_acquire(name);
    /* Before the first versions are served (start-up) a missing model is
     * not yet known to be unknown: 503 + Retry-After, so a proxy retries
     * another replica instead of passing a 404 on to the client. */
    if (!b && !recd_api_is_ready())
        aerr(e, 503, "not_ready", "model", "recd is starting: model \"%s\" is not loaded yet",
             name);
    else if (!b)
        aerr(e, 404, "unknown_model", "model", "no model named \"%s\" is being served", name);
    return b;
}

static json_t *model_json(const recd_bundle_t *b)
{
    return json_pack("{s:s,s:I}", "name", b->name, "version", (json_int_t)b->version);
}

/* Run a recommendation for a parsed request; answers the client. */
/* What recommend and score share: the model, a catalog snapshot, the
 * resolved history and bans, and the hashed user/context fields. */
typedef struct prep {
    recd_bundle_t *b;
    recd_overlay_t *o;
    recd_cand_request_t rq;
    size_t unknown;
    const char *history_source; /* "request", "store" or "none" */
} prep_t;

static void prep_release(prep_t *p)
{
    if (p->o)
        recd_overlay_release(p->o);
    if (p->b)
        recd_model_release(p->b);
}

static int prepare(recd_http_req_t *r, const rec_req_t *q, prep_t *p, apierr_t *e)
{
    memset(p, 0, sizeof *p);
    recd_arena_t *a = recd_http_req_arena(r);
    if (!(p->b = acquire_model(q->model, e)))
        return -1;
    recd_bundle_t *b = p->b;
    p->o = recd_overlay_acquire(b);
    /* without "history" in the request, the user's recent positives from
     * the history store (fed by /v1/events) */
    recd_history_item_t *stored = NULL;
    size_t nstored = 0;
    recd_history_t *hs = q->history ? NULL : recd_api_history();
    if (hs) {
        const recd_conf_t *cf = recd_conf_current();
        size_t cap =
            (size_t)(cf->history_max_items < cf->candgen_max_history ? cf->history_max_items
                                                                     : cf->candgen_max_history);
        stored = recd_arena_alloc(a, cap * sizeof *stored);
        recd_err_t herr;
        int got = stored
                      ? recd_history_get(hs, q->user_id, strlen(q->user_id), stored, cap, a, &herr)
                      : RECD_ENOMEM;
        if (got < 0)
            return aerr(e, 500, "internal", NULL, "history store: %s",
                        got == RECD_ENOMEM ? "out of memory" : herr.msg);
        nstored = (size_t)got;
    }
    p->history_source = q->history ? "request" : nstored ? "store" : "none";
    size_t nh = q->history ? json_array_size(q->history) : nstored;
    size_t nx = q->exclude ? json_array_size(q->exclude) : 0;
    int64_t *hist = recd_arena_alloc(a, (nh + 1) * sizeof *hist);
    int64_t *ban_base = recd_arena_alloc(a, (nh + nx + 1) * sizeof *ban_base);
    int64_t *ban_live = recd_arena_alloc(a, (nh + nx + 1) * sizeof *ban_live);
    if (!hist || !ban_base || !ban_live)
        return aerr(e, 500, "internal", NULL, "out of memory");
    recd_cand_request_t *rq = &p->rq;
    for (size_t pass = 0; pass < 2; pass++) {
        json_t *list = pass == 0 ? q->history : q->exclude;
        size_t n = pass == 0 ? nh : nx;
        for (size_t i = 0; i < n; i++) {
            const char *id;
            size_t idlen;
            if (pass == 0 && !list) {
                id = stored[i].id;
                idlen = stored[i].len;
            } else {
                json_t *s = json_array_get(list, i);
                id = json_string_value(s);
                idlen = json_string_length(s);
            }
            int64_t base, slot;
            if (!recd_overlay_item_known(b, p->o, id, idlen, &base, &slot)) {
                p->unknown++;
                continue;
            }
            if (pass == 0) {
                /* a live item that replaced a bundle row keeps that row's
                 * history embedding: PUT changes its retrieval vector only */
                int64_t h = base >= 0 ? base : recd_bundle_item_index(b, id, idlen);
                if (h >= 0)
                    hist[rq->nhistory++] = h;
            }
            if (pass == 1 || !q->include_seen) {
                if (base >= 0)
                    ban_base[rq->nban_base++] = base;
                else
                    ban_live[rq->nban_live++] = slot;
            }
        }
    }
    rq->history = hist;
    rq->ban_base = ban_base;
    rq->ban_live = ban_live;
    rq->candidates = (size_t)q->candidates;
    rq->fields = request_fields(b, q->user_id, q->features, q->context, a, e);
    return rq->fields ? 0 : -1;
}

/* Score candidates with the bundle's ranker (when it has one) and order
 * them: scores[i] for c[i], order[] best first. Without a ranker the score
 * is the retrieval score and the order is the retrieval order. */
typedef struct ranked {
    const recd_candidate_t *c;
    float score;
    size_t pos; /* retrieval position: tie-break */
} ranked_t;

static int cmp_ranked(const void *x, const void *y)
{
    const ranked_t *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int rank_all(const prep_t *p, const recd_candidate_t *c, size_t n, recd_arena_t *a,
                    int use_ranker, int output, int explain, ranked_t **out,
                    recd_rank_explain_t **ex, uint64_t *rank_us, apierr_t *e)
{
    uint64_t t0 = recd_time_mono_us();
    ranked_t *rk = recd_arena_alloc(a, (n ? n : 1) * sizeof *rk);
    float *sc = recd_arena_alloc(a, (n ? n : 1) * sizeof *sc);
    *ex = NULL;
    if (!rk || !sc)
        return aerr(e, 500, "internal", NULL, "out of memory");
    const recd_ranker_t *rr = use_ranker ? recd_rank_of(p->b) : NULL;
    if (rr && n) {
        if (explain && !(*ex = recd_arena_alloc(a, n * sizeof **ex)))
            return aerr(e, 500, "internal", NULL, "out of memory");
        recd_err_t err;
        if (recd_rank_score_as(rr, p->b, p->o, p->rq.fields, c, n, a, output, sc, *ex, &err) < 0)
            return aerr(e, 500, "internal", NULL, "ranking failed: %s", err.msg);
    }
    for (size_t i = 0; i < n; i++)
        rk[i] = (ranked_t){&c[i], rr ? sc[i] : c[i].retrieval, i};
    if (rr)
        qsort(rk, n, sizeof *rk, cmp_ranked);
    *out = rk;
    *rank_us = recd_time_mono_us() - t0;
    return 0;
}

static json_t *item_json(const prep_t *p, const ranked_t *x, const recd_rank_explain_t *ex,
                         const recd_candidate_t *base)
{
    json_t *it = json_pack("{s:s,s:f,s:f}", "id", recd_candgen_id(p->b, p->o, x->c), "score",
                           (double)x->score, "retrieval_score", (double)x->c->retrieval);
    if (ex) {
        const recd_rank_explain_t *z = &ex[x->c - base];
        json_object_set_new(it, "explain",
                            json_pack("{s:f,s:f,s:f,s:f,s:f}", "bias", (double)z->bias,
                                      "first_order", (double)z->first_order, "second_order",
                                      (double)z->second_order, "deep", (double)z->deep, "logit",
                                      (double)z->logit));
    }
    return it;
}

static json_t *pick_json(const recd_abrt_pick_t *k)
{
    json_t *o = json_pack("{s:s,s:s}", "name", k->exp->name, "variant", k->variant->name);
    if (k->forced)
        json_object_set_new(o, "forced", json_true());
    return o;
}

/* Run a recommendation for a parsed request; answers the client. ab: the
 * request's A/B assignment (overrides already applied to q), or NULL. */
static void recommend(recd_http_req_t *r, rec_req_t *q, const recd_abrt_assignment_t *ab)
{
    uint64_t t0 = recd_time_mono_us();
    apierr_t e;
    recd_arena_t *a = recd_http_req_arena(r);
    prep_t p;
    recd_cand_result_t res;
    recd_err_t err;
    ranked_t *rk;
    recd_rank_explain_t *ex;
    uint64_t rank_us = 0;
    if (prepare(r, q, &p, &e) < 0)
        goto fail;
    if (recd_candgen_retrieve(p.b, p.o, &p.rq, a, &res, &err) < 0) {
        aerr(&e, 500, "internal", NULL, "retrieval failed: %s", err.msg);
        goto fail;
    }
    if (rank_all(&p, res.items, res.n, a, q->rank, q->output, q->explain, &rk, &ex, &rank_us, &e) <
        0)
        goto fail;
    recd_stats_thread_t *st = thread_stats(r);
    if (p.unknown)
        recd_stats_add(&st->unknown_items, p.unknown);
    if (res.fallback_popular)
        recd_stats_add(&st->fallback_popular, 1);
    if (!res.fallback_popular) {
        recd_hist_record(&st->stages[RECD_STAGE_TOWER], res.tower_us);
        recd_hist_record(&st->stages[RECD_STAGE_ANN], res.ann_us);
    }
    if (q->rank && recd_rank_of(p.b))
        recd_hist_record(&st->stages[RECD_STAGE_RANK], rank_us);
    size_t k = res.n < (size_t)q->k ? res.n : (size_t)q->k;
    json_t *items = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(items, item_json(&p, &rk[i], ex, res.items));
    json_t *resp = json_pack("{s:s,s:s,s:o,s:o}", "request_id", recd_http_req_id(r), "user_id",
                             q->user_id, "model", model_json(p.b), "items", items);
    if (res.fallback_popular)
        json_object_set_new(resp, "fallback", json_string("popular"));
    if (p.unknown)
        json_object_set_new(resp, "unknown_items", json_integer((json_int_t)p.unknown));
    if (ab && ab->n) {
        json_object_set_new(resp, "experiment", pick_json(&ab->picks[0]));
        if (ab->n > 1) {
            json_t *all = json_array();
            for (size_t i = 0; i < ab->n; i++)
                json_array_append_new(all, pick_json(&ab->picks[i]));
            json_object_set_new(resp, "experiments", all);
        }
        if (ab->version && ab->version != p.b->version)
            json_object_set_new(resp, "pinned_version_unavailable",
                                json_integer((json_int_t)ab->version));
        recd_http_resp_header(r, "X-Recd-Variant", ab->picks[0].variant->name);
    }
    if (q->explain) {
        char idx[64];
        const recd_ranker_t *rr = recd_rank_of(p.b);
        json_object_set_new(resp, "explain",
                            json_pack("{s:I,s:I,s:I,s:s,s:s}", "known_history",
                                      (json_int_t)p.rq.nhistory, "candidates_retrieved",
                                      (json_int_t)res.n, "live_items", (json_int_t)p.o->n_added,
                                      "index",
                                      recd_ann_spec_factory(&p.b->ann_spec, idx, sizeof idx),
                                      "ranker", rr && q->rank ? recd_rank_type(rr) : "none"));
        json_object_set_new(json_object_get(resp, "explain"), "history_source",
                            json_string(p.history_source));
    }
    json_object_set_new(
        resp, "timing_us",
        json_pack("{s:I,s:I,s:I,s:I,s:I}", "candidates", (json_int_t)(res.tower_us + res.ann_us),
                  "tower", (json_int_t)res.tower_us, "ann", (json_int_t)res.ann_us, "rank",
                  (json_int_t)rank_us, "total", (json_int_t)(recd_time_mono_us() - t0)));
    prep_release(&p);
    if (ab && ab->n) { /* before the response: r is gone after it */
        const char *rid = recd_http_req_id(r);
        recd_abrt_remember(rid, strlen(rid), ab);
        recd_abrt_record_request(recd_http_req_worker(r), ab, recd_time_mono_us() - t0);
    }
    recd_http_respond_json(r, 200, resp);
    return;
fail:
    prep_release(&p);
    send_aerr(r, &e);
}

/* The request's A/B assignment with its overrides applied to q (settings
 * the client gave explicitly win). *out NULL when no experiment is live.
 * Returns -1 with e filled for a bad X-Recd-Variant. */
static int assign_ab(recd_http_req_t *r, rec_req_t *q, recd_abrt_assignment_t **out, apierr_t *e)
{
    *out = NULL;
    const char *forced = recd_http_req_header(r, "X-Recd-Variant");
    if (!forced && recd_abrt_count() == 0)
        return 0;
    recd_abrt_assignment_t *ab = recd_arena_alloc(recd_http_req_arena(r), sizeof *ab);
    if (!ab)
        return aerr(e, 500, "internal", NULL, "out of memory");
    recd_err_t err;
    if (recd_abrt_assign(q->user_id, strlen(q->user_id), forced, ab, &err) < 0)
        return aerr(e, 400, "bad_request", "header:X-Recd-Variant",
                    "X-Recd-Variant: no live experiment has a variant named \"%.64s\"", forced);
    if (ab->model && !q->has_model)
        q->model = ab->model;
    if (ab->candidates > 0 && !q->has_candidates)
        q->candidates = ab->candidates > q->k ? ab->candidates : q->k;
    if (ab->rank >= 0 && !q->has_rank)
        q->rank = ab->rank;
    if (ab->score == RECD_AB_SCORE_PCTR)
        q->output = RECD_RANK_OUTPUT_SIGMOID;
    else if (ab->score == RECD_AB_SCORE_WATCH_TIME)
        q->output = RECD_RANK_OUTPUT_EXP;
    *out = ab;
    return 0;
}

int recd_api_h_recommend(recd_http_req_t *r, void *arg)
{
    (void)arg;
    apierr_t e;
    json_t *j;
    if (recd_http_req_method(r) == RECD_HTTP_POST) {
        j = recd_http_req_json(r);
        if (!j)
            return 0; /* answered */
    } else if (!(j = query_to_json(r, &e))) {
        send_aerr(r, &e);
        return 0;
    }
    rec_req_t q;
    memset(&q, 0, sizeof q);
    recd_abrt_assignment_t *ab;
    if (parse_rec(j, &q, &e) < 0 || assign_ab(r, &q, &ab, &e) < 0) {
        json_decref(j);
        send_aerr(r, &e);
        return 0;
    }
    recommend(r, &q, ab);
    json_decref(j);
    return 0;
}

/* ---- POST /v1/score ------------------------------------------------------------------- */

int recd_api_h_score(recd_http_req_t *r, void *arg)
{
    (void)arg;
    uint64_t t0 = recd_time_mono_us();
    apierr_t e;
    json_t *j = recd_http_req_json(r);
    if (!j)
        return 0;
    json_t *items = json_is_object(j) ? json_object_get(j, "items") : NULL;
    size_t cap = (size_t)recd_conf_current()->rank_max_items;
    if (json_is_object(j)) {
        /* parse_rec knows every field but "items"; check it, then hide it */
        if (!items) {
            json_decref(j);
            recd_http_respond_error(r, 400, "bad_request", "items", "items is required");
            return 0;
        }
        if (!json_is_array(items) || json_array_size(items) == 0 || json_array_size(items) > cap) {
            json_decref(j);
            recd_http_respond_error(r, 400, "bad_request", "items",
                                    "items must be a non-empty array of at most %zu item ids", cap);
            return 0;
        }
        for (size_t i = 0; i < json_array_size(items); i++) {
            if (!json_is_string(json_array_get(items, i))) {
                json_decref(j);
                char f[48];
                snprintf(f, sizeof f, "items[%zu]", i);
                recd_http_respond_error(r, 400, "bad_request", f, "%s must be a string", f);
                return 0;
            }
        }
        json_incref(items);
        json_object_del(j, "items");
        json_t *k = json_object_get(j, "k");
        json_t *c = json_object_get(j, "candidates");
        if (k || c) {
            json_decref(items);
            json_decref(j);
            recd_http_respond_error(r, 400, "bad_request", k ? "k" : "candidates",
                                    "/v1/score scores the given items; %s does not apply",
                                    k ? "k" : "candidates");
            return 0;
        }
    }
    rec_req_t q;
    memset(&q, 0, sizeof q);
    if (parse_rec(j, &q, &e) < 0) {
        json_decref(items);
        json_decref(j);
        send_aerr(r, &e);
        return 0;
    }
    recd_arena_t *a = recd_http_req_arena(r);
    prep_t p;
    json_t *unknown = json_array();
    size_t n = json_array_size(items);
    recd_candidate_t *c = recd_arena_alloc(a, n * sizeof *c);
    float *scratch = NULL, *u = NULL;
    ranked_t *rk;
    recd_rank_explain_t *ex;
    uint64_t rank_us = 0;
    size_t nc = 0;
    if (prepare(r, &q, &p, &e) < 0)
        goto fail;
    scratch = recd_arena_alloc(a, recd_candgen_scratch(p.b) * sizeof(float));
    u = recd_arena_alloc(a, p.b->dim * sizeof(float));
    if (!c || !scratch || !u) {
        aerr(&e, 500, "internal", NULL, "out of memory");
        goto fail;
    }
    /* retrieval_score = u . v from the candidate model, as /v1/recommend */
    recd_candgen_user_vector(p.b, &p.rq, scratch, u);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(items, i);
        int64_t base, slot;
        if (!recd_overlay_item_known(p.b, p.o, json_string_value(s), json_string_length(s), &base,
                                     &slot)) {
            json_array_append(unknown, s);
            continue;
        }
        const float *v = base >= 0 ? p.b->item_emb->data + (size_t)base * p.b->dim
                                   : p.o->added_vecs + (size_t)slot * p.b->dim;
        c[nc++] = (recd_candidate_t){base, base >= 0 ? -1 : slot, recd_nn_dot(p.b->dim, u, v)};
    }
    if (rank_all(&p, c, nc, a, q.rank, RECD_RANK_OUTPUT_BUNDLE, q.explain, &rk, &ex, &rank_us, &e) <
        0)
        goto fail;
    if (!q.rank || !recd_rank_of(p.b)) {
        /* no ranker: order by the retrieval score */
        for (size_t i = 0; i < nc; i++)
            rk[i].score = rk[i].c->retrieval;
        qsort(rk, nc, sizeof *rk, cmp_ranked);
    }
    json_t *out = json_array();
    for (size_t i = 0; i < nc; i++)
        json_array_append_new(out, item_json(&p, &rk[i], ex, c));
    json_t *resp = json_pack("{s:s,s:s,s:o,s:o,s:o}", "request_id", recd_http_req_id(r), "user_id",
                             q.user_id, "model", model_json(p.b), "items", out, "unknown", unknown);
    unknown = NULL;
    json_object_set_new(resp, "timing_us",
                        json_pack("{s:I,s:I}", "rank", (json_int_t)rank_us, "total",
                                  (json_int_t)(recd_time_mono_us() - t0)));
    prep_release(&p);
    json_decref(items);
    json_decref(j);
    recd_http_respond_json(r, 200, resp);
    return 0;
fail:
    prep_release(&p);
    json_decref(unknown);
    json_decref(items);
    json_decref(j);
    send_aerr(r, &e);
    return 0;
}

/* ---- /v1/similar/{item_id} ----------------------------------------------------------- */

static int query_int(recd_http_req_t *r, const char *name, int64_t def, int64_t lo, int64_t hi,
                     int64_t *out, apierr_t *e)
{
    const char *v = recd_http_req_query(r, name);
    *out = def;
    if (!v)
        return 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        return aerr(e, 400, "bad_request", name, "%s must be an integer %lld..%lld", name,
                    (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

int recd_api_h_similar(recd_http_req_t *r, void *arg)
{
    (void)arg;
    apierr_t e;
    const char *id = recd_http_req_param(r, "item_id");
    int64_t k;
    if (query_int(r, "k", 10, 1, 1000, &k, &e) < 0) {
        send_aerr(r, &e);
        return 0;
    }
    const char *model = recd_http_req_query(r, "model");
    recd_bundle_t *b = acquire_model(model ? model : recd_conf_current()->models_default, &e);
    if (!b) {
        send_aerr(r, &e);
        return 0;
    }
    recd_overlay_t *o = recd_overlay_acquire(b);
    int64_t base, slot;
    if (!recd_overlay_item_known(b, o, id, strlen(id), &base, &slot)) {
        recd_overlay_release(o);
        recd_model_release(b);
        recd_http_respond_error(r, 404, "unknown_item", "item_id", "no item \"%s\" in model %s", id,
                                b->name);
        return 0;
    }
    const float *v = base >= 0 ? b->item_emb->data + (size_t)base * b->dim
                               : o->added_vecs + (size_t)slot * b->dim;
    recd_cand_result_t res;
    recd_err_t err;
    if (recd_candgen_nearest(b, o, v, (size_t)k, base, slot, recd_http_req_arena(r), &res, &err) <
        0) {
        recd_overlay_release(o);
        recd_model_release(b);
        recd_http_respond_error(r, 500, "internal", NULL, "search failed: %s", err.msg);
        return 0;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < res.n; i++)
        json_array_append_new(items,
                              json_pack("{s:s,s:f}", "id", recd_candgen_id(b, o, &res.items[i]),
                                        "score", (double)res.items[i].retrieval));
    json_t *resp = json_pack("{s:s,s:s,s:o,s:o}", "request_id", recd_http_req_id(r), "item_id", id,
                             "model", model_json(b), "items", items);
    recd_overlay_release(o);
    recd_model_release(b);
    recd_http_respond_json(r, 200, resp);
    return 0;
}

/* ---- PUT/DELETE /v1/items/{item_id} ------------------------------------------------------ */

/* The content model's vector for a PUT without "embedding" into vec[b->dim]
 * from the item's hashed features ifs; 422 when no content field has a
 * value or the model's output is not finite. */
static int content_embedding(recd_http_req_t *r, const recd_bundle_t *b,
                             const recd_field_buckets_t *ifs, float *vec, apierr_t *e)
{
    const recd_content_t *c = b->content;
    int given = 0;
    for (size_t i = 0; i < c->nfields && !given; i++)
        given = !recd_content_value_missing(&ifs[c->fields[i].feature]);
    if (!given) {
        char names[256];
        size_t p = 0;
        names[0] = '\0';
        for (size_t i = 0; i < c->nfields && p < sizeof names; i++)
            p += (size_t)snprintf(names + p, sizeof names - p, "%s%s", i ? ", " : "",
                                  b->features[c->fields[i].feature].name);
        return aerr(e, 422, "content_features_required", "features",
                    "give \"embedding\" or a value for at least one of the content model's "
                    "features: %s",
                    names);
    }
    float *scratch =
        recd_arena_alloc(recd_http_req_arena(r), recd_content_scratch_floats(b) * sizeof *scratch);
    if (!scratch)
        return aerr(e, 500, "internal", NULL, "out of memory");
    recd_err_t err;
    int rc = recd_content_embed(b, ifs, vec, scratch, &err);
    if (rc == RECD_ERANGE) {
        recd_log_write(RECD_LOG_WARN, recd_http_req_id(r), "model %s version %lld: %s", b->name,
                       (long long)b->version, err.msg);
        return aerr(e, 422, "content_embedding_invalid", "features",
                    "%s for these features; give \"embedding\"", err.msg);
    }
    if (rc < 0)
        return aerr(e, 500, "internal", NULL, "content model: %s", err.msg);
    return 0;
}

int recd_api_h_items(recd_http_req_t *r, void *arg)
{
    (void)arg;
    apierr_t e;
    const char *id = recd_http_req_param(r, "item_id");
    if (!valid_item_id(id, strlen(id))) {
        recd_http_respond_error(r, 400, "bad_request", "item_id",
                                "item ids are 1..%d bytes without control characters",
                                MAX_ID_BYTES);
        return 0;
    }
    const char *model = recd_http_req_query(r, "model");
    json_t *j = NULL;
    if (recd_http_req_method(r) == RECD_HTTP_PUT) {
        j = recd_http_req_json(r);
        if (!j)
            return 0;
        if (!json_is_object(j)) {
            json_decref(j);
            recd_http_respond_error(r, 400, "bad_request", "body", "expected a JSON object");
            return 0;
        }
        const char *key;
        json_t *v;
        json_object_foreach (j, key, v) {
            if (strcmp(key, "features") && strcmp(key, "embedding") && strcmp(key, "model")) {
                recd_http_respond_error(r, 400, "bad_request", key, "unknown field \"%s\"", key);
                json_decref(j);
                return 0;
            }
        }
        json_t *f = json_object_get(j, "features");
        if (f && !json_is_object(f)) {
            json_decref(j);
            recd_http_respond_error(r, 400, "bad_request", "features",
                                    "features must be an object");
            return 0;
        }
        json_t *m = json_object_get(j, "model");
        if (m && !json_is_string(m)) {
            json_decref(j);
            recd_http_respond_error(r, 400, "bad_request", "model", "model must be a string");
            return 0;
        }
        if (m)
            model = json_string_value(m);
    }
    recd_bundle_t *b = acquire_model(model ? model : recd_conf_current()->models_default, &e);
    if (!b) {
        json_decref(j);
        send_aerr(r, &e);
        return 0;
    }
    recd_err_t err;
    if (recd_http_req_method(r) == RECD_HTTP_DELETE) {
        int rc = recd_overlay_delete(b, id, &err);
        json_t *resp =
            rc == 0 ? json_pack("{s:s,s:o,s:b}", "id", id, "model", model_json(b), "deleted", 1)
                    : NULL;
        recd_model_release(b);
        if (rc == RECD_ENOENT)
            recd_http_respond_error(r, 404, "unknown_item", "item_id", "no item \"%s\"", id);
        else if (rc < 0)
            recd_http_respond_error(r, 500, "internal", NULL, "%s", err.msg);
        else
            recd_http_respond_json(r, 200, resp);
        return 0;
    }
    json_t *emb = json_object_get(j, "embedding");
    if (json_is_null(emb))
        emb = NULL; /* null is absent, as for feature values */
    if (!emb && !b->content) {
        recd_http_respond_error(r, 422, "embedding_required", "embedding",
                                "model %s version %lld has no content model to derive an "
                                "embedding from features; give \"embedding\" (%zu numbers)",
                                b->name, (long long)b->version, b->dim);
        recd_model_release(b);
        json_decref(j);
        return 0;
    }
    size_t dim = b->dim;
    float *vec = recd_arena_alloc(recd_http_req_arena(r), dim * sizeof *vec);
    if (!vec) {
        recd_model_release(b);
        json_decref(j);
        recd_http_respond_error(r, 500, "internal", NULL, "out of memory");
        return 0;
    }
    int bad = emb && (!json_is_array(emb) || json_array_size(emb) != dim);
    for (size_t i = 0; emb && !bad && i < dim; i++) {
        json_t *x = json_array_get(emb, i);
        bad = !json_is_number(x) || !isfinite(json_number_value(x)) ||
              fabs(json_number_value(x)) > 3.0e38;
        if (!bad)
            vec[i] = (float)json_number_value(x);
    }
    if (bad) {
        recd_model_release(b);
        json_decref(j);
        recd_http_respond_error(r, 400, "bad_request", "embedding",
                                "embedding must be an array of %zu finite numbers", dim);
        return 0;
    }
    /* item features are hashed once here, never per request */
    json_t *feats = json_object_get(j, "features");
    recd_field_buckets_t *ifs =
        recd_arena_alloc(recd_http_req_arena(r), (b->nfeatures + 1) * sizeof *ifs);
    if (!ifs) {
        recd_model_release(b);
        json_decref(j);
        recd_http_respond_error(r, 500, "internal", NULL, "out of memory");
        return 0;
    }
    memset(ifs, 0, (b->nfeatures + 1) * sizeof *ifs);
    const char *fkey;
    json_t *fval;
    json_object_foreach (feats, fkey, fval) {
        size_t fi = 0;
        while (fi < b->nfeatures && (b->features[fi].source != RECD_SRC_ITEM ||
                                     strcmp(b->features[fi].name, fkey) != 0 ||
                                     strcmp(b->features[fi].column, "id") == 0))
            fi++;
        char where[160];
        snprintf(where, sizeof where, "features.%s", fkey);
        if (fi == b->nfeatures) {
            /* answer before json_decref: fkey belongs to j */
            recd_http_respond_error(r, 400, "bad_request", where,
                                    "%s is not an item feature of this model", fkey);
            recd_model_release(b);
            json_decref(j);
            return 0;
        }
        if (field_buckets(&b->features[fi], fval, where, recd_http_req_arena(r), &ifs[fi], &e) <
            0) {
            recd_model_release(b);
            json_decref(j);
            send_aerr(r, &e);
            return 0;
        }
    }
    /* no embedding: the content model derives one from the features
     * (absent content fields hash as ""), provided at least one content
     * field carries a value - an item described by nothing would get the
     * same made-up vector as every other such item */
    if (!emb && content_embedding(r, b, ifs, vec, &e) < 0) {
        recd_model_release(b);
        json_decref(j);
        send_aerr(r, &e);
        return 0;
    }
    int created = 0;
    int rc = recd_overlay_put(b, id, vec, ifs, &created, &err);
    json_t *resp = rc == 0 ? json_pack("{s:s,s:o,s:b,s:s}", "id", id, "model", model_json(b),
                                       "created", created, "embedding", emb ? "given" : "content")
                           : NULL;
    recd_model_release(b);
    json_decref(j);
    if (rc < 0)
        recd_http_respond_error(r, 500, "internal", NULL, "%s", err.msg);
    else
        recd_http_respond_json(r, created ? 201 : 200, resp);
    return 0;
}
