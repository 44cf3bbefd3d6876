/* HTTP handlers: health, readiness, stats, metrics and the admin API. */
#include "recd/api.h"

#include "api_int.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/ab.h"
#include "recd/abrt.h"
#include "recd/conf.h"
#include "recd/stats.h"

static _Atomic int ready;
static _Atomic(const char *) not_ready_reason = "start-up has not completed";
static recd_api_hooks_t hooks;

void recd_api_set_ready(int r)
{
    atomic_store(&ready, r);
}
void recd_api_set_not_ready_reason(const char *why)
{
    atomic_store(&not_ready_reason, why);
}
int recd_api_is_ready(void)
{
    return atomic_load(&ready);
}

static int h_healthz(recd_http_req_t *r, void *arg)
{
    (void)arg;
    static const char body[] = "{\"status\":\"ok\"}";
    recd_http_respond(r, 200, "application/json", body, sizeof body - 1);
    return 0;
}

static int h_readyz(recd_http_req_t *r, void *arg)
{
    (void)arg;
    if (!recd_api_is_ready()) {
        recd_http_respond_error(r, 503, "not_ready", NULL, "%s", atomic_load(&not_ready_reason));
        return 0;
    }
    char why[400];
    if (recd_api_events_failed(why, sizeof why)) {
        recd_http_respond_error(r, 503, "not_ready", NULL, "%s", why);
        return 0;
    }
    static const char body[] = "{\"status\":\"ready\"}";
    recd_http_respond(r, 200, "application/json", body, sizeof body - 1);
    return 0;
}

static int h_stats(recd_http_req_t *r, void *arg)
{
    (void)arg;
    char *s = recd_stats_render_json();
    if (!s) {
        recd_http_respond_error(r, 500, "internal", NULL, "cannot render stats");
        return 0;
    }
    recd_http_respond(r, 200, "application/json", s, strlen(s));
    free(s);
    return 0;
}

static int h_metrics(recd_http_req_t *r, void *arg)
{
    (void)arg;
    char *s = recd_stats_render_prometheus();
    if (!s) {
        recd_http_respond_error(r, 500, "internal", NULL, "cannot render metrics");
        return 0;
    }
    recd_http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", s, strlen(s));
    free(s);
    return 0;
}

static int get_config(recd_http_req_t *r)
{
    char *s = recd_conf_dump_json(recd_conf_current());
    if (!s) {
        recd_http_respond_error(r, 500, "internal", NULL, "cannot render the configuration");
        return 0;
    }
    recd_http_respond(r, 200, "application/json", s, strlen(s));
    free(s);
    return 0;
}

/* Flatten {"http": {"max_body_bytes": 5}} and {"http.max_body_bytes": 5}
 * into "key=value" overrides, checking each key and JSON type. Returns 0,
 * or -1 after answering 422. */
static int flatten(recd_http_req_t *r, json_t *obj, const char *prefix, char ***sets, size_t *n)
{
    const char *name;
    json_t *v;
    json_object_foreach (obj, name, v) {
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", name);
        const recd_conf_key_t *k = recd_conf_key_find(path);
        if (!k && json_is_object(v)) {
            if (flatten(r, v, path, sets, n) < 0)
                return -1;
            continue;
        }
        if (!k) {
            recd_http_respond_error(r, 422, "invalid_config", path, "%s: unknown key", path);
            return -1;
        }
        if (!k->reloadable) {
            recd_http_respond_error(r, 422, "not_reloadable", path,
                                    "%s cannot change at run time; restart to apply it", path);
            return -1;
        }
        char val[4200];
        char *jtext = NULL;
        if (k->type == RECD_CONF_T_JSON) {
            /* validated by the config loader with the failing field's path */
            jtext = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
            if (!jtext) {
                recd_http_respond_error(r, 500, "internal", NULL, "out of memory");
                return -1;
            }
        } else if (k->type == RECD_CONF_T_INT && json_is_integer(v))
            snprintf(val, sizeof val, "%lld", (long long)json_integer_value(v));
        else if (k->type == RECD_CONF_T_BOOL && json_is_boolean(v))
            snprintf(val, sizeof val, "%s", json_is_true(v) ? "true" : "false");
        else if (k->type != RECD_CONF_T_INT && k->type != RECD_CONF_T_BOOL && json_is_string(v) &&
                 json_string_length(v) < 4096 &&
                 strlen(json_string_value(v)) == json_string_length(v))
            snprintf(val, sizeof val, "%s", json_string_value(v));
        else {
            recd_http_respond_error(r, 422, "invalid_config", path, "%s: expected %s", path,
                                    k->type == RECD_CONF_T_INT    ? "an integer"
                                    : k->type == RECD_CONF_T_BOOL ? "a boolean"
                                                                  : "a string");
            return -1;
        }
        const char *vs = jtext ? jtext : val;
        size_t len = strlen(path) + 1 + strlen(vs) + 1;
        char *kv = recd_arena_alloc(recd_http_req_arena(r), len);
        char **ns = kv ? recd_arena_alloc(recd_http_req_arena(r), (*n + 1) * sizeof *ns) : NULL;
        if (!ns) {
            free(jtext);
            recd_http_respond_error(r, 500, "internal", NULL, "out of memory");
            return -1;
        }
        snprintf(kv, len, "%s=%s", path, vs);
        free(jtext);
        if (*n)
            memcpy(ns, *sets, *n * sizeof *ns);
        ns[(*n)++] = kv;
        *sets = ns;
    }
    return 0;
}

/* Field name of a "key: message" error line, copied into buf. */
static const char *err_field(const char *msg, char *buf, size_t cap)
{
    const char *colon = strchr(msg, ':');
    size_t n = colon ? (size_t)(colon - msg) : 0;
    if (n == 0 || n >= cap || memchr(msg, ' ', n))
        return NULL;
    memcpy(buf, msg, n);
    buf[n] = '\0';
    return buf;
}

static int h_admin_config(recd_http_req_t *r, void *arg)
{
    (void)arg;
    if (recd_http_req_method(r) != RECD_HTTP_PUT)
        return get_config(r);
    json_t *j = recd_http_req_json(r);
    if (!j)
        return 0;
    if (!json_is_object(j)) {
        json_decref(j);
        recd_http_respond_error(r, 400, "bad_request", "body", "expected a JSON object of keys");
        return 0;
    }
    char **sets = NULL;
    size_t n = 0;
    int rc = flatten(r, j, "", &sets, &n);
    json_decref(j);
    if (rc < 0)
        return 0;
    if (n == 0) {
        recd_http_respond_error(r, 400, "bad_request", "body", "no keys given");
        return 0;
    }
    recd_err_t err;
    if (!hooks.set_config || hooks.set_config(hooks.arg, (const char *const *)sets, n, &err) < 0) {
        char fb[128];
        recd_http_respond_error(r, 422, "invalid_config", err_field(err.msg, fb, sizeof fb), "%s",
                                hooks.set_config ? err.msg : "not supported");
        return 0;
    }
    return get_config(r);
}

/* GET|PUT /admin/experiments: the live A/B definitions (with bucket
 * ranges); PUT replaces them, like a config reload of `experiments` (a
 * later SIGHUP re-reads the file's experiments). */
static int h_admin_experiments(recd_http_req_t *r, void *arg)
{
    (void)arg;
    if (recd_http_req_method(r) == RECD_HTTP_PUT) {
        json_t *j = recd_http_req_json(r);
        if (!j)
            return 0;
        json_t *list = j;
        if (json_is_object(j)) {
            const char *key;
            json_t *v;
            json_object_foreach (j, key, v) {
                if (strcmp(key, "experiments") != 0) {
                    recd_http_respond_error(r, 400, "bad_request", key, "unknown field \"%s\"",
                                            key);
                    json_decref(j);
                    return 0;
                }
            }
            list = json_object_get(j, "experiments");
        }
        if (!list || (!json_is_array(list) && !json_is_null(list))) {
            recd_http_respond_error(r, 400, "bad_request", "experiments",
                                    "expected {\"experiments\": [...]} or an array of experiments");
            json_decref(j);
            return 0;
        }
        recd_ab_set_t set;
        recd_err_t err;
        char fb[128];
        if (recd_ab_set_parse(list, "experiments", &set, &err) < 0) {
            recd_http_respond_error(r, 400, "bad_request", err_field(err.msg, fb, sizeof fb), "%s",
                                    err.msg);
            json_decref(j);
            return 0;
        }
        recd_ab_set_free(&set);
        char *text = json_dumps(list, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        json_decref(j);
        size_t len = text ? strlen(text) + sizeof "experiments=" : 0;
        char *kv = text ? recd_arena_alloc(recd_http_req_arena(r), len) : NULL;
        if (!kv) {
            free(text);
            recd_http_respond_error(r, 500, "internal", NULL, "out of memory");
            return 0;
        }
        snprintf(kv, len, "experiments=%s", text);
        free(text);
        const char *sets[1] = {kv};
        if (!hooks.set_config || hooks.set_config(hooks.arg, sets, 1, &err) < 0) {
            recd_http_respond_error(r, 422, "invalid_config", err_field(err.msg, fb, sizeof fb),
                                    "%s", hooks.set_config ? err.msg : "not supported");
            return 0;
        }
    }
    recd_http_respond_json(r, 200, json_pack("{s:o}", "experiments", recd_abrt_defs_json()));
    return 0;
}

static int h_admin_reload(recd_http_req_t *r, void *arg)
{
    (void)arg;
    recd_err_t err;
    if (!hooks.reload || hooks.reload(hooks.arg, &err) < 0) {
        char fb[128];
        recd_http_respond_error(r, 422, "invalid_config", err_field(err.msg, fb, sizeof fb), "%s",
                                hooks.reload ? err.msg : "not supported");
        return 0;
    }
    recd_http_respond_json(r, 200, json_pack("{s:b}", "reloaded", 1));
    return 0;
}

static const recd_http_route_t routes[] = {
    {RECD_HTTP_GET, "/healthz", RECD_ROUTE_BOTH, h_healthz, NULL, 0},
    {RECD_HTTP_GET, "/readyz", RECD_ROUTE_BOTH, h_readyz, NULL, 0},
    {RECD_HTTP_GET, "/stats", RECD_ROUTE_BOTH, h_stats, NULL, 0},
    {RECD_HTTP_GET, "/metrics", RECD_ROUTE_BOTH, h_metrics, NULL, 0},
    {RECD_HTTP_GET | RECD_HTTP_PUT, "/admin/config", RECD_ROUTE_ADMIN | RECD_ROUTE_JSON_BODY,
     h_admin_config, NULL, 0},
    {RECD_HTTP_POST, "/admin/reload", RECD_ROUTE_ADMIN, h_admin_reload, NULL, 0},
    {RECD_HTTP_GET | RECD_HTTP_PUT, "/admin/experiments", RECD_ROUTE_ADMIN | RECD_ROUTE_JSON_BODY,
     h_admin_experiments, NULL, 0},
    {RECD_HTTP_GET, "/admin/models", RECD_ROUTE_ADMIN, recd_api_h_admin_models, NULL, 0},
    {RECD_HTTP_POST, "/admin/models/{name}/load", RECD_ROUTE_ADMIN | RECD_ROUTE_JSON_BODY,
     recd_api_h_admin_model_cmd, NULL, 0},
    {RECD_HTTP_POST, "/admin/models/{name}/pin", RECD_ROUTE_ADMIN | RECD_ROUTE_JSON_BODY,
     recd_api_h_admin_model_cmd, NULL, 0},
    {RECD_HTTP_POST, "/admin/models/{name}/unpin", RECD_ROUTE_ADMIN | RECD_ROUTE_JSON_BODY,
     recd_api_h_admin_model_cmd, NULL, 0},
    {RECD_HTTP_POST, "/admin/models/{name}/rollback", RECD_ROUTE_ADMIN | RECD_ROUTE_JSON_BODY,
     recd_api_h_admin_model_cmd, NULL, 0},
    {RECD_HTTP_POST, "/admin/models/{name}/rescan", RECD_ROUTE_ADMIN | RECD_ROUTE_JSON_BODY,
     recd_api_h_admin_model_cmd, NULL, 0},
    {RECD_HTTP_POST, "/admin/rescan", RECD_ROUTE_ADMIN | RECD_ROUTE_JSON_BODY,
     recd_api_h_admin_rescan, NULL, 0},
    {RECD_HTTP_POST, "/admin/train", RECD_ROUTE_ADMIN | RECD_ROUTE_JSON_BODY,
     recd_api_h_admin_train, &hooks, 0},
    {RECD_HTTP_GET | RECD_HTTP_POST, "/v1/recommend", RECD_ROUTE_JSON_BODY, recd_api_h_recommend,
     NULL, 0},
    {RECD_HTTP_POST, "/v1/score", RECD_ROUTE_JSON_BODY, recd_api_h_score, NULL, 0},
    {RECD_HTTP_GET, "/v1/similar/{item_id}", 0, recd_api_h_similar, NULL, 0},
    {RECD_HTTP_PUT | RECD_HTTP_DELETE, "/v1/items/{item_id}", RECD_ROUTE_JSON_BODY,
     recd_api_h_items, NULL, 0},
    {RECD_HTTP_POST, "/v1/events", RECD_ROUTE_JSON_BODY, recd_api_h_events, NULL, 0},
};

const recd_http_route_t *recd_api_routes(size_t *n, const recd_api_hooks_t *h)
{
    if (h)
        hooks = *h;
    *n = sizeof routes / sizeof routes[0];
    return routes;
}
