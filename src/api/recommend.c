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
#include "recd/model.h"
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
static int value_text(const recd_feature_t *f, json_t *v, const char *where, char *buf,
                      size_t cap, const char **text, apierr_t *e)
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
        if (!isfinite(x) || x != floor(x) || fabs(x) > 9e15)
            return aerr(e, 400, "bad_request", where, "%s takes a string or an integer", f->name);
        int n = snprintf(buf, cap, "%lld", (long long)x);
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
    if (!b)
        return aerr(e, 500, "internal", NULL, "out of memory");
    size_t nl = strlen(f->name);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_is_array(v) ? json_array_get(v, i) : v;
        if (json_is_array(x))
            return aerr(e, 400, "bad_request", where, "%s: nested lists are not allowed", f->name);
        char buf[64];
        const char *t = "";
        int tl = value_text(f, x, where, buf, sizeof buf, &t, e);
        if (tl < 0)
            return -1;
        b[i] = recd_feature_bucket(f->name, nl, t, (size_t)tl, f->buckets);
    }
    out->b = b;
    out->n = n;
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
} rec_req_t;

static int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   apierr_t *e)
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
    static const char *const known[] = {"user_id", "k", "candidates", "history", "features",
                                        "context", "exclude", "model", "explain", "include_seen",
                                        NULL};
    if (!json_is_object(j))
        return aerr(e, 400, "bad_request", "body", "expected a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
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
    static const char *const allowed[] = {"user_id", "k", "candidates", "history", "exclude",
                                          "model", "include_seen", NULL};
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
    if ((v = recd_http_req_query(r, "include_seen"))) {
        if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0")) {
            json_decref(j);
            aerr(e, 400, "bad_request", "include_seen", "include_seen must be true or false");
            return NULL;
        }
        json_object_set_new(j, "include_seen", json_boolean(!strcmp(v, "true") || !strcmp(v, "1")));
    }
    return j;
}

static recd_bundle_t *acquire_model(const char *name, apierr_t *e)
{
    recd_bundle_t *b = recd_model_acquire(name);
    if (!b)
        aerr(e, 404, "unknown_model", "model", "no model named \"%s\" is being served", name);
    return b;
}

static json_t *model_json(const recd_bundle_t *b)
{
    return json_pack("{s:s,s:I}", "name", b->name, "version", (json_int_t)b->version);
}

/* Run a recommendation for a parsed request; answers the client. */
static void recommend(recd_http_req_t *r, rec_req_t *q)
{
    uint64_t t0 = recd_time_mono_us();
    apierr_t e;
    recd_arena_t *a = recd_http_req_arena(r);
    recd_bundle_t *b = acquire_model(q->model, &e);
    if (!b) {
        send_aerr(r, &e);
        return;
    }
    recd_overlay_t *o = recd_overlay_acquire(b);
    size_t nh = q->history ? json_array_size(q->history) : 0;
    size_t nx = q->exclude ? json_array_size(q->exclude) : 0;
    int64_t *hist = recd_arena_alloc(a, (nh + 1) * sizeof *hist);
    int64_t *ban_base = recd_arena_alloc(a, (nh + nx + 1) * sizeof *ban_base);
    int64_t *ban_live = recd_arena_alloc(a, (nh + nx + 1) * sizeof *ban_live);
    recd_cand_request_t rq = {0};
    size_t unknown = 0;
    json_t *resp = NULL;
    if (!hist || !ban_base || !ban_live) {
        aerr(&e, 500, "internal", NULL, "out of memory");
        goto fail;
    }
    for (size_t pass = 0; pass < 2; pass++) {
        json_t *list = pass == 0 ? q->history : q->exclude;
        size_t n = pass == 0 ? nh : nx;
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array_get(list, i);
            int64_t base, slot;
            if (!recd_overlay_item_known(b, o, json_string_value(s), json_string_length(s), &base,
                                         &slot)) {
                unknown++;
                continue;
            }
            if (pass == 0) {
                /* a live item that replaced a bundle row keeps that row's
                 * history embedding: PUT changes its retrieval vector only */
                int64_t h = base >= 0 ? base
                                      : recd_bundle_item_index(b, json_string_value(s),
                                                               json_string_length(s));
                if (h >= 0)
                    hist[rq.nhistory++] = h;
            }
            if (pass == 1 || !q->include_seen) {
                if (base >= 0)
                    ban_base[rq.nban_base++] = base;
                else
                    ban_live[rq.nban_live++] = slot;
            }
        }
    }
    rq.history = hist;
    rq.ban_base = ban_base;
    rq.ban_live = ban_live;
    rq.candidates = (size_t)q->candidates;
    rq.fields = request_fields(b, q->user_id, q->features, q->context, a, &e);
    if (!rq.fields)
        goto fail;
    recd_cand_result_t res;
    recd_err_t err;
    if (recd_candgen_retrieve(b, o, &rq, a, &res, &err) < 0) {
        aerr(&e, 500, "internal", NULL, "retrieval failed: %s", err.msg);
        goto fail;
    }
    recd_stats_thread_t *st = thread_stats(r);
    if (unknown)
        recd_stats_add(&st->unknown_items, unknown);
    if (res.fallback_popular)
        recd_stats_add(&st->fallback_popular, 1);
    /* until a ranker lands, the order is the retrieval order */
    size_t k = res.n < (size_t)q->k ? res.n : (size_t)q->k;
    json_t *items = json_array();
    for (size_t i = 0; i < k; i++) {
        const recd_candidate_t *c = &res.items[i];
        json_array_append_new(items, json_pack("{s:s,s:f,s:f}", "id", recd_candgen_id(b, o, c),
                                               "score", (double)c->retrieval, "retrieval_score",
                                               (double)c->retrieval));
    }
    uint64_t total = recd_time_mono_us() - t0;
    resp = json_pack("{s:s,s:s,s:o,s:o}", "request_id", recd_http_req_id(r), "user_id",
                     q->user_id, "model", model_json(b), "items", items);
    if (res.fallback_popular)
        json_object_set_new(resp, "fallback", json_string("popular"));
    if (unknown)
        json_object_set_new(resp, "unknown_items", json_integer((json_int_t)unknown));
    if (q->explain) {
        char idx[64];
        json_object_set_new(
            resp, "explain",
            json_pack("{s:I,s:I,s:I,s:s}", "known_history", (json_int_t)rq.nhistory,
                      "candidates_retrieved", (json_int_t)res.n, "live_items",
                      (json_int_t)o->n_added, "index",
                      recd_ann_spec_factory(&b->ann_spec, idx, sizeof idx)));
    }
    json_object_set_new(resp, "timing_us",
                        json_pack("{s:I,s:I,s:I,s:I}", "candidates",
                                  (json_int_t)(res.tower_us + res.ann_us), "tower",
                                  (json_int_t)res.tower_us, "ann", (json_int_t)res.ann_us, "total",
                                  (json_int_t)total));
    recd_overlay_release(o);
    recd_model_release(b);
    recd_http_respond_json(r, 200, resp);
    return;
fail:
    recd_overlay_release(o);
    recd_model_release(b);
    send_aerr(r, &e);
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
    if (parse_rec(j, &q, &e) < 0) {
        json_decref(j);
        send_aerr(r, &e);
        return 0;
    }
    recommend(r, &q);
    json_decref(j);
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
        recd_http_respond_error(r, 404, "unknown_item", "item_id", "no item \"%s\" in model %s",
                                id, b->name);
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
        json_array_append_new(items, json_pack("{s:s,s:f}", "id", recd_candgen_id(b, o, &res.items[i]),
                                               "score", (double)res.items[i].retrieval));
    json_t *resp = json_pack("{s:s,s:s,s:o,s:o}", "request_id", recd_http_req_id(r), "item_id", id,
                             "model", model_json(b), "items", items);
    recd_overlay_release(o);
    recd_model_release(b);
    recd_http_respond_json(r, 200, resp);
    return 0;
}

/* ---- PUT/DELETE /v1/items/{item_id} ------------------------------------------------------ */

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
        json_object_foreach(j, key, v)
        {
            if (strcmp(key, "features") && strcmp(key, "embedding") && strcmp(key, "model")) {
                recd_http_respond_error(r, 400, "bad_request", key, "unknown field \"%s\"", key);
                json_decref(j);
                return 0;
            }
        }
        json_t *f = json_object_get(j, "features");
        if (f && !json_is_object(f)) {
            json_decref(j);
            recd_http_respond_error(r, 400, "bad_request", "features", "features must be an object");
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
        json_t *resp = rc == 0 ? json_pack("{s:s,s:o,s:b}", "id", id, "model", model_json(b),
                                           "deleted", 1)
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
    if (!emb) {
        size_t dim = b->dim;
        recd_model_release(b);
        json_decref(j);
        recd_http_respond_error(r, 422, "embedding_required", "embedding",
                                "this model has no content model to derive an embedding from "
                                "features yet; give \"embedding\" (%zu numbers)",
                                dim);
        return 0;
    }
    size_t dim = b->dim;
    float *vec = recd_arena_alloc(recd_http_req_arena(r), dim * sizeof *vec);
    int bad = !json_is_array(emb) || json_array_size(emb) != dim || !vec;
    for (size_t i = 0; !bad && i < dim; i++) {
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
    int created = 0;
    int rc = recd_overlay_put(b, id, vec, &created, &err);
    json_t *resp = rc == 0 ? json_pack("{s:s,s:o,s:b}", "id", id, "model", model_json(b),
                                       "created", created)
                           : NULL;
    recd_model_release(b);
    json_decref(j);
    if (rc < 0)
        recd_http_respond_error(r, 500, "internal", NULL, "%s", err.msg);
    else
        recd_http_respond_json(r, created ? 201 : 200, resp);
    return 0;
}
