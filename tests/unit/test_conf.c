/*
 * Unit tests for src/conf: the key table, defaults, JSON and --set parsing,
 * bounds and type errors, cross-key validation, load/reload, listen address
 * parsing, the redacted dump and publish/current.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "recd/conf.h"

/* ---- helpers ----------------------------------------------------------------- */

static int64_t *int_field(recd_conf_t *c, const recd_conf_key_t *k)
{
    return (int64_t *)(void *)((char *)c + k->offset);
}

static int *bool_field(recd_conf_t *c, const recd_conf_key_t *k)
{
    return (int *)(void *)((char *)c + k->offset);
}

static char **str_field(recd_conf_t *c, const recd_conf_key_t *k)
{
    return (char **)(void *)((char *)c + k->offset);
}

static int is_string_type(recd_conf_type_t t)
{
    return t == RECD_CONF_T_STRING || t == RECD_CONF_T_ENUM || t == RECD_CONF_T_LISTEN ||
           t == RECD_CONF_T_PATH || t == RECD_CONF_T_JSON;
}

/* Does any error line contain every one of the given substrings? */
static int errs_have(const recd_conf_errors_t *e, const char *a, const char *b)
{
    for (size_t i = 0; i < e->n; i++) {
        if (strstr(e->lines[i], a) && (!b || strstr(e->lines[i], b)))
            return 1;
    }
    return 0;
}

static void dump_errs(const recd_conf_errors_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        print_message("  conf error: %s\n", e->lines[i]);
}

/* Apply JSON text, expecting exactly `want` errors. */
static void apply_expect(recd_conf_t *c, const char *json, int want, recd_conf_errors_t *e)
{
    int n = recd_conf_apply_json_text(c, json, strlen(json), "test", e);
    if (n != want || (size_t)n != e->n) {
        print_message("json: %s\n", json);
        dump_errs(e);
    }
    assert_int_equal(n, want);
    assert_int_equal(e->n, (size_t)want);
}

/* Build {"a":{"b":VALUE}} for dotted path a.b (any depth). */
static void nested_json(char *out, size_t cap, const char *path, const char *value)
{
    char seg[128];
    size_t o = 0, depth = 0;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        memcpy(seg, p, n);
        seg[n] = '\0';
        o += (size_t)snprintf(out + o, cap - o, "{\"%s\": ", seg);
        depth++;
        if (!dot)
            break;
        p = dot + 1;
    }
    o += (size_t)snprintf(out + o, cap - o, "%s", value);
    while (depth--)
        o += (size_t)snprintf(out + o, cap - o, "}");
}

static const recd_conf_key_t *must_find(const char *path)
{
    const recd_conf_key_t *k = recd_conf_key_find(path);
    if (!k)
        print_message("missing key %s\n", path);
    assert_non_null(k);
    return k;
}

/* ---- the table ---------------------------------------------------------------- */

static void test_table_sane(void **state)
{
    size_t n = 0;
    const recd_conf_key_t *keys = recd_conf_keys(&n);
    assert_non_null(keys);
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        const recd_conf_key_t *k = &keys[i];
        assert_non_null(k->path);
        assert_true(k->path[0] != '\0');
        assert_non_null(k->doc);
        assert_true(strlen(k->doc) > 3);
        assert_true(k->offset < sizeof(recd_conf_t));
        for (const char *p = k->path; *p; p++)
            assert_true(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' ||
                        *p == '.');
        switch (k->type) {
        case RECD_CONF_T_INT:
            if (!(k->min <= k->def_int && k->def_int <= k->max))
                print_message("bad bounds %s\n", k->path);
            assert_true(k->min <= k->def_int);
            assert_true(k->def_int <= k->max);
            assert_true(k->offset % sizeof(int64_t) == 0);
            break;
        case RECD_CONF_T_BOOL: assert_true(k->def_int == 0 || k->def_int == 1); break;
        case RECD_CONF_T_ENUM: {
            assert_non_null(k->enum_values);
            assert_non_null(k->def_str);
            int found = 0;
            for (const char *const *v = k->enum_values; *v; v++)
                found |= strcmp(*v, k->def_str) == 0;
            assert_true(found);
            break;
        }
        default:
            assert_true(is_string_type(k->type));
            assert_non_null(k->def_str);
            break;
        }
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(keys[j].path, k->path);
            assert_int_not_equal(keys[j].offset, k->offset);
        }
        assert_ptr_equal(recd_conf_key_find(k->path), k);
    }
    assert_null(recd_conf_key_find("nope"));
    assert_null(recd_conf_key_find("http"));
    assert_null(recd_conf_key_find("http."));
    assert_null(recd_conf_key_find(""));
    assert_null(recd_conf_key_find("HTTP.WORKERS"));
}

/* Every field of recd_conf_t has exactly one key at its offset. */
static void test_table_covers_struct(void **state)
{
    static const size_t offs[] = {
        offsetof(recd_conf_t, http_listen),
        offsetof(recd_conf_t, http_workers),
        offsetof(recd_conf_t, http_backlog),
        offsetof(recd_conf_t, http_max_header_bytes),
        offsetof(recd_conf_t, http_max_headers),
        offsetof(recd_conf_t, http_max_body_bytes),
        offsetof(recd_conf_t, http_read_timeout_ms),
        offsetof(recd_conf_t, http_write_timeout_ms),
        offsetof(recd_conf_t, http_header_deadline_ms),
        offsetof(recd_conf_t, http_keepalive_timeout_ms),
        offsetof(recd_conf_t, http_max_connections),
        offsetof(recd_conf_t, http_max_inflight_per_worker),
        offsetof(recd_conf_t, http_max_json_depth),
        offsetof(recd_conf_t, http_retry_after_s),
        offsetof(recd_conf_t, admin_listen),
        offsetof(recd_conf_t, admin_token),
        offsetof(recd_conf_t, admin_token_file),
        offsetof(recd_conf_t, tls_cert),
        offsetof(recd_conf_t, tls_key),
        offsetof(recd_conf_t, log_level),
        offsetof(recd_conf_t, log_file),
        offsetof(recd_conf_t, log_access),
        offsetof(recd_conf_t, data_dir),
        offsetof(recd_conf_t, models_dir),
        offsetof(recd_conf_t, shutdown_deadline_ms),
        offsetof(recd_conf_t, shutdown_delay_ms),
        offsetof(recd_conf_t, models_serve),
        offsetof(recd_conf_t, models_default),
        offsetof(recd_conf_t, ann_factory),
        offsetof(recd_conf_t, ann_nprobe),
        offsetof(recd_conf_t, ann_ef_search),
        offsetof(recd_conf_t, ann_use_index_file),
        offsetof(recd_conf_t, candgen_candidates),
        offsetof(recd_conf_t, candgen_max_history),
        offsetof(recd_conf_t, rank_max_items),
        offsetof(recd_conf_t, events_enabled),
        offsetof(recd_conf_t, events_fsync),
        offsetof(recd_conf_t, events_interval_ms),
        offsetof(recd_conf_t, events_segment_bytes),
        offsetof(recd_conf_t, events_retain_bytes),
        offsetof(recd_conf_t, events_retain_age_s),
        offsetof(recd_conf_t, events_queue_bytes),
        offsetof(recd_conf_t, events_max_batch),
        offsetof(recd_conf_t, events_skip_corrupt),
        offsetof(recd_conf_t, history_max_users),
        offsetof(recd_conf_t, history_max_items),
        offsetof(recd_conf_t, history_watch_min_s),
        offsetof(recd_conf_t, history_rating_min),
        offsetof(recd_conf_t, history_replay_bytes),
        offsetof(recd_conf_t, history_replay_window_s),
        offsetof(recd_conf_t, experiments),
        offsetof(recd_conf_t, models_keep_versions),
        offsetof(recd_conf_t, models_watch),
        offsetof(recd_conf_t, models_retry_initial_ms),
        offsetof(recd_conf_t, models_retry_max_ms),
        offsetof(recd_conf_t, models_headroom_mb),
        offsetof(recd_conf_t, models_loader_nice),
        offsetof(recd_conf_t, models_warmup_rounds),
        offsetof(recd_conf_t, trainer_enabled),
        offsetof(recd_conf_t, trainer_model),
        offsetof(recd_conf_t, trainer_interval_s),
        offsetof(recd_conf_t, trainer_min_new_events),
        offsetof(recd_conf_t, trainer_holdout_pct),
        offsetof(recd_conf_t, trainer_tolerance_bp),
        offsetof(recd_conf_t, trainer_nice),
        offsetof(recd_conf_t, trainer_max_memory_mb),
        offsetof(recd_conf_t, trainer_epochs),
        offsetof(recd_conf_t, trainer_max_events),
    };
    size_t n = 0;
    const recd_conf_key_t *keys = recd_conf_keys(&n);
    assert_int_equal(n, sizeof offs / sizeof offs[0]);
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        int hits = 0;
        for (size_t j = 0; j < n; j++)
            hits += keys[j].offset == offs[i];
        assert_int_equal(hits, 1);
    }
    /* Spot-check the names and types of a few keys. */
    assert_int_equal(must_find("http.listen")->offset, offsetof(recd_conf_t, http_listen));
    assert_int_equal(must_find("http.listen")->type, RECD_CONF_T_LISTEN);
    assert_int_equal(must_find("http.workers")->offset, offsetof(recd_conf_t, http_workers));
    assert_int_equal(must_find("http.max_body_bytes")->offset,
                     offsetof(recd_conf_t, http_max_body_bytes));
    assert_int_equal(must_find("admin.token")->offset, offsetof(recd_conf_t, admin_token));
    assert_int_equal(must_find("log.level")->type, RECD_CONF_T_ENUM);
    assert_int_equal(must_find("log.access")->type, RECD_CONF_T_BOOL);
    assert_int_equal(must_find("shutdown_deadline_ms")->offset,
                     offsetof(recd_conf_t, shutdown_deadline_ms));
    assert_int_equal(must_find("tls.cert")->offset, offsetof(recd_conf_t, tls_cert));
    assert_int_equal(must_find("tls.key")->offset, offsetof(recd_conf_t, tls_key));
}

/* ---- defaults ----------------------------------------------------------------- */

static void test_defaults(void **state)
{
    recd_conf_t *c = recd_conf_new_defaults();
    assert_non_null(c);
    assert_int_equal(c->http_max_body_bytes, 1048576);
    assert_int_equal(c->http_max_header_bytes, 16384);
    assert_int_equal(c->http_header_deadline_ms, 10000);
    assert_int_equal(c->http_workers, 0);
    assert_int_equal(c->http_max_json_depth, 32);
    assert_int_equal(c->shutdown_deadline_ms, 10000);
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->admin_listen, "127.0.0.1:8081");
    assert_string_equal(c->http_listen, "0.0.0.0:8080");
    assert_string_equal(c->admin_token, "");
    assert_string_equal(c->tls_cert, "");
    assert_string_equal(c->tls_key, "");
    assert_string_equal(c->log_file, "");

    /* Every field equals its table default. */
    size_t n;
    const recd_conf_key_t *keys = recd_conf_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const recd_conf_key_t *k = &keys[i];
        if (k->type == RECD_CONF_T_INT)
            assert_int_equal(*int_field(c, k), k->def_int);
        else if (k->type == RECD_CONF_T_BOOL)
            assert_int_equal(*bool_field(c, k), k->def_int);
        else {
            assert_non_null(*str_field(c, k));
            assert_string_equal(*str_field(c, k), k->def_str);
        }
    }

    /* Defaults validate. */
    recd_conf_errors_t e = {0};
    assert_int_equal(recd_conf_validate(c, &e), 0);
    recd_conf_errors_free(&e);

    /* dup is deep. */
    recd_conf_t *d = recd_conf_dup(c);
    assert_non_null(d);
    assert_ptr_not_equal(d->http_listen, c->http_listen);
    assert_string_equal(d->http_listen, c->http_listen);
    assert_int_equal(d->http_max_body_bytes, c->http_max_body_bytes);
    recd_conf_free(c);
    assert_string_equal(d->log_level, "info");
    recd_conf_free(d);
    recd_conf_free(NULL);
}

/* ---- JSON application ------------------------------------------------------------ */

static void test_apply_json_nested(void **state)
{
    recd_conf_t *c = recd_conf_new_defaults();
    recd_conf_errors_t e = {0};
    apply_expect(c,
                 "{\"http\": {\"workers\": 3, \"max_body_bytes\": 2048, \"listen\": "
                 "\"127.0.0.1:9000\"},\n \"log\": {\"level\": \"debug\", \"access\": false},\n"
                 " \"admin\": {\"token\": \"abc\"}, \"shutdown_deadline_ms\": 2500}",
                 0, &e);
    assert_int_equal(c->http_workers, 3);
    assert_int_equal(c->http_max_body_bytes, 2048);
    assert_string_equal(c->http_listen, "127.0.0.1:9000");
    assert_string_equal(c->log_level, "debug");
    assert_int_equal(c->log_access, 0);
    assert_string_equal(c->admin_token, "abc");
    assert_int_equal(c->shutdown_deadline_ms, 2500);
    /* untouched keys keep their defaults */
    assert_int_equal(c->http_max_header_bytes, 16384);
    /* an empty object is fine */
    apply_expect(c, "{}", 0, &e);
    apply_expect(c, "{\"http\": {}}", 0, &e);
    assert_int_equal(c->http_workers, 3);
    recd_conf_errors_free(&e);
    recd_conf_free(c);
}

static void test_apply_json_partial(void **state)
{
    /* Good values are applied even when others fail; count is returned. */
    recd_conf_t *c = recd_conf_new_defaults();
    recd_conf_errors_t e = {0};
    apply_expect(c, "{\"http\": {\"workers\": 7, \"lisen\": 1, \"backlog\": \"x\"}}", 2, &e);
    assert_int_equal(c->http_workers, 7);
    assert_true(errs_have(&e, "http.lisen", NULL));
    assert_true(errs_have(&e, "http.backlog", NULL));
    recd_conf_errors_free(&e);
    assert_int_equal(e.n, 0);
    recd_conf_free(c);
}

/* For every INT key: min and max accepted, min-1 and max+1 rejected naming
 * the key, via JSON and via --set. */
static void test_int_bounds_all_keys(void **state)
{
    size_t n;
    const recd_conf_key_t *keys = recd_conf_keys(&n);
    char json[512], val[64], kv[256];
    int checked = 0;
    for (size_t i = 0; i < n; i++) {
        const recd_conf_key_t *k = &keys[i];
        if (k->type != RECD_CONF_T_INT)
            continue;
        checked++;
        recd_conf_t *c = recd_conf_new_defaults();
        recd_conf_errors_t e = {0};

        snprintf(val, sizeof val, "%" PRId64, k->min);
        nested_json(json, sizeof json, k->path, val);
        apply_expect(c, json, 0, &e);
        assert_int_equal(*int_field(c, k), k->min);

        snprintf(val, sizeof val, "%" PRId64, k->max);
        nested_json(json, sizeof json, k->path, val);
        apply_expect(c, json, 0, &e);
        assert_int_equal(*int_field(c, k), k->max);

        if (k->min > INT64_MIN) {
            snprintf(val, sizeof val, "%" PRId64, k->min - 1);
            nested_json(json, sizeof json, k->path, val);
            apply_expect(c, json, 1, &e);
            assert_true(errs_have(&e, k->path, NULL));
            assert_int_equal(*int_field(c, k), k->max); /* unchanged */
            recd_conf_errors_free(&e);

            snprintf(kv, sizeof kv, "%s=%" PRId64, k->path, k->min - 1);
            assert_int_equal(recd_conf_apply_set(c, kv, &e), 1);
            assert_true(errs_have(&e, k->path, NULL));
            recd_conf_errors_free(&e);
        }
        if (k->max < INT64_MAX) {
            snprintf(val, sizeof val, "%" PRId64, k->max + 1);
            nested_json(json, sizeof json, k->path, val);
            apply_expect(c, json, 1, &e);
            assert_true(errs_have(&e, k->path, NULL));
            recd_conf_errors_free(&e);

            snprintf(kv, sizeof kv, "%s=%" PRId64, k->path, k->max + 1);
            assert_int_equal(recd_conf_apply_set(c, kv, &e), 1);
            assert_true(errs_have(&e, k->path, NULL));
            recd_conf_errors_free(&e);
        }
        snprintf(kv, sizeof kv, "%s=%" PRId64, k->path, k->min);
        assert_int_equal(recd_conf_apply_set(c, kv, &e), 0);
        assert_int_equal(*int_field(c, k), k->min);
        snprintf(kv, sizeof kv, "%s=%" PRId64, k->path, k->max);
        assert_int_equal(recd_conf_apply_set(c, kv, &e), 0);
        assert_int_equal(*int_field(c, k), k->max);

        /* Far outside int64 at all. */
        nested_json(json, sizeof json, k->path, "99999999999999999999999");
        int got = recd_conf_apply_json_text(c, json, strlen(json), "t", &e);
        assert_true(got >= 1);
        recd_conf_errors_free(&e);
        snprintf(kv, sizeof kv, "%s=99999999999999999999999", k->path);
        assert_int_equal(recd_conf_apply_set(c, kv, &e), 1);
        assert_true(errs_have(&e, k->path, NULL));
        recd_conf_errors_free(&e);
        recd_conf_free(c);
    }
    assert_true(checked >= 10);
}

static void test_specific_bounds(void **state)
{
    /* A few bounds that follow from what the keys mean. */
    const recd_conf_key_t *k = must_find("http.max_json_depth");
    assert_true(k->min >= 1);
    k = must_find("http.max_body_bytes");
    assert_true(k->min >= 0);
    k = must_find("http.workers");
    assert_int_equal(k->min, 0);
    k = must_find("http.max_header_bytes");
    assert_true(k->min >= 64);
    k = must_find("http.max_headers");
    assert_true(k->min >= 1);
    assert_true(k->max <= 256); /* RECD_HTTP_MAX_HEADERS_HARD */
}

static void test_wrong_types(void **state)
{
    static const struct {
        const char *json, *key;
    } cases[] = {
        {"{\"http\": {\"workers\": \"4\"}}", "http.workers"},
        {"{\"http\": {\"workers\": 1.5}}", "http.workers"},
        {"{\"http\": {\"workers\": true}}", "http.workers"},
        {"{\"http\": {\"workers\": null}}", "http.workers"},
        {"{\"http\": {\"workers\": [1]}}", "http.workers"},
        {"{\"http\": {\"workers\": {}}}", "http.workers"},
        {"{\"http\": {\"workers\": {\"x\": 1}}}", "http.workers"},
        {"{\"log\": {\"level\": 5}}", "log.level"},
        {"{\"http\": {\"listen\": 8080}}", "http.listen"},
        {"{\"admin\": {\"token\": 12}}", "admin.token"},
        {"{\"log\": {\"file\": {}}}", "log.file"},
        {"{\"log\": {\"access\": \"yes\"}}", "log.access"},
        {"{\"log\": {\"access\": 2}}", "log.access"},
        {"{\"shutdown_deadline_ms\": \"10\"}", "shutdown_deadline_ms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        recd_conf_t *c = recd_conf_new_defaults();
        recd_conf_errors_t e = {0};
        apply_expect(c, cases[i].json, 1, &e);
        if (!errs_have(&e, cases[i].key, NULL)) {
            print_message("case %zu: %s\n", i, cases[i].json);
            dump_errs(&e);
        }
        assert_true(errs_have(&e, cases[i].key, NULL));
        recd_conf_errors_free(&e);
        recd_conf_free(c);
    }
    /* defaults untouched after a rejected value */
    recd_conf_t *c = recd_conf_new_defaults();
    recd_conf_errors_t e = {0};
    apply_expect(c, "{\"http\": {\"workers\": \"4\"}, \"log\": {\"level\": 5}}", 2, &e);
    assert_int_equal(c->http_workers, 0);
    assert_string_equal(c->log_level, "info");
    recd_conf_errors_free(&e);
    recd_conf_free(c);
}

static void test_unknown_keys(void **state)
{
    recd_conf_t *c = recd_conf_new_defaults();
    recd_conf_errors_t e = {0};

    apply_expect(c, "{\"http\": {\"lisen\": 1}}", 1, &e);
    assert_true(errs_have(&e, "http.lisen", NULL));
    recd_conf_errors_free(&e);

    apply_expect(c, "{\"nokey\": 1}", 1, &e);
    assert_true(errs_have(&e, "nokey", NULL));
    recd_conf_errors_free(&e);

    apply_expect(c, "{\"http\": {\"tls\": {\"cert\": \"x\"}}}", 1, &e);
    assert_true(errs_have(&e, "http.tls", NULL));
    recd_conf_errors_free(&e);

    /* A leaf where an object is expected. */
    apply_expect(c, "{\"http\": 5}", 1, &e);
    assert_true(errs_have(&e, "http", NULL));
    recd_conf_errors_free(&e);
    apply_expect(c, "{\"log\": \"debug\"}", 1, &e);
    assert_true(errs_have(&e, "log", NULL));
    recd_conf_errors_free(&e);

    /* The top level must be an object. */
    int got = recd_conf_apply_json_text(c, "[1,2]", 5, "t", &e);
    assert_true(got >= 1);
    recd_conf_errors_free(&e);
    got = recd_conf_apply_json_text(c, "5", 1, "t", &e);
    assert_true(got >= 1);
    recd_conf_errors_free(&e);
    recd_conf_free(c);
}

static void test_malformed_json(void **state)
{
    static const char *const docs[] = {
        "{\n  \"http\": {\n    \"workers\": ,\n  }\n}",
        "{\"http\": {\"workers\": 1}",
        "",
        "{\n\n\n   x}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        recd_conf_t *c = recd_conf_new_defaults();
        recd_conf_errors_t e = {0};
        int got = recd_conf_apply_json_text(c, docs[i], strlen(docs[i]), "my.json", &e);
        if (got < 1) {
            print_message("accepted malformed doc %zu\n", i);
        }
        assert_true(got >= 1);
        assert_int_equal(e.n, (size_t)got);

        /* Independent position from jansson itself. */
        json_error_t je;
        json_t *j = json_loadb(docs[i], strlen(docs[i]), JSON_REJECT_DUPLICATES, &je);
        assert_null(j);
        char line[32], col[32];
        snprintf(line, sizeof line, "%d", je.line);
        snprintf(col, sizeof col, "%d", je.column);
        int ok = 0;
        for (size_t l = 0; l < e.n; l++) {
            const char *s = e.lines[l];
            const char *pl = strstr(s, "line");
            if (pl && strstr(pl, line) && strstr(s, col) && strstr(s, "col"))
                ok = 1;
        }
        if (!ok) {
            print_message("doc %zu: jansson says line %d column %d\n", i, je.line, je.column);
            dump_errs(&e);
        }
        assert_true(ok);
        recd_conf_errors_free(&e);
        recd_conf_free(c);
    }
}

/* A key given twice is almost always a mistake (the second silently wins
 * otherwise); reject it like jansson's JSON_REJECT_DUPLICATES does. */
static void test_duplicate_keys(void **state)
{
    recd_conf_t *c = recd_conf_new_defaults();
    recd_conf_errors_t e = {0};
    const char *doc = "{\"http\": {\"workers\": 1, \"workers\": 2}}";
    int got = recd_conf_apply_json_text(c, doc, strlen(doc), "t", &e);
    if (got < 1)
        print_message("duplicate key accepted, workers=%lld\n", (long long)c->http_workers);
    assert_true(got >= 1);
    recd_conf_errors_free(&e);
    recd_conf_free(c);
}

/* ---- --set --------------------------------------------------------------------------- */

/* experiments: a JSON-typed key, validated as a whole A/B definition from
 * the file and from --set, stored compactly, dumped as JSON, reloadable. */
static void test_experiments_key(void **state)
{
    (void)state;
    const recd_conf_key_t *k = recd_conf_key_find("experiments");
    assert_non_null(k);
    assert_int_equal(k->type, RECD_CONF_T_JSON);
    assert_true(k->reloadable);
    recd_conf_t *c = recd_conf_new_defaults();
    assert_string_equal(c->experiments, "[]");
    recd_conf_errors_t e = {0};
    const char *good = "{\"experiments\": [{\"name\": \"t\", \"salt\": \"s1\", \"variants\": "
                       "[{\"name\": \"a\", \"weight\": 50}, {\"name\": \"b\", \"weight\": 50, "
                       "\"rank\": false}]}]}";
    assert_int_equal(recd_conf_apply_json_text(c, good, strlen(good), "t", &e), 0);
    assert_non_null(strstr(c->experiments, "\"salt\":\"s1\""));
    assert_null(strchr(c->experiments, '\n'));
    /* errors name the offending field's path */
    const char *bad = "{\"experiments\": [{\"name\": \"t\", \"salt\": \"s\", \"variants\": "
                      "[{\"name\": \"a\", \"weight\": \"x\"}]}]}";
    assert_int_equal(recd_conf_apply_json_text(c, bad, strlen(bad), "t", &e), 1);
    assert_non_null(strstr(e.lines[0], "experiments[0].variants[0].weight"));
    assert_non_null(strstr(c->experiments, "\"s1\"")); /* unchanged */
    const char *obj = "{\"experiments\": {\"name\": \"t\"}}";
    assert_int_equal(recd_conf_apply_json_text(c, obj, strlen(obj), "t", &e), 1);
    assert_non_null(strstr(e.lines[1], "experiments: expected a JSON array"));
    assert_int_equal(recd_conf_apply_set(c, "experiments=[{", &e), 1);
    assert_non_null(strstr(e.lines[2], "experiments: not JSON"));
    assert_int_equal(recd_conf_apply_set(c, "experiments=null", &e), 0);
    assert_string_equal(c->experiments, "[]");
    assert_int_equal(
        recd_conf_apply_set(c, "experiments=[{\"name\":\"x\",\"salt\":\"y\",\"variants\":[]}]", &e),
        1);
    assert_non_null(strstr(e.lines[3], "experiments[0].variants"));
    char *dump = recd_conf_dump_json(c);
    assert_non_null(strstr(dump, "\"experiments\": []"));
    free(dump);
    recd_conf_errors_free(&e);
    recd_conf_free(c);
}

static void test_apply_set(void **state)
{
    recd_conf_t *c = recd_conf_new_defaults();
    recd_conf_errors_t e = {0};

    assert_int_equal(recd_conf_apply_set(c, "http.workers=4", &e), 0);
    assert_int_equal(c->http_workers, 4);
    assert_int_equal(e.n, 0);

    static const char *const bad[] = {
        "http.workers=abc", "http.workers=",   "http.workers=4x", "http.workers=0x10",
        "http.workers=1.5", "http.workers= 4", "http.workers=-",  "http.workers=+",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (recd_conf_apply_set(c, bad[i], &e) != 1)
            print_message("accepted %s\n", bad[i]);
        assert_int_equal(e.n, 1);
        assert_true(errs_have(&e, "http.workers", NULL));
        recd_conf_errors_free(&e);
        assert_int_equal(c->http_workers, 4);
    }

    assert_int_equal(recd_conf_apply_set(c, "nokey=1", &e), 1);
    assert_true(errs_have(&e, "nokey", NULL));
    recd_conf_errors_free(&e);
    assert_int_equal(recd_conf_apply_set(c, "noequals", &e), 1);
    assert_int_equal(e.n, 1);
    recd_conf_errors_free(&e);
    assert_int_equal(recd_conf_apply_set(c, "=1", &e), 1);
    recd_conf_errors_free(&e);
    assert_int_equal(recd_conf_apply_set(c, "", &e), 1);
    recd_conf_errors_free(&e);
    /* A section is not a key. */
    assert_int_equal(recd_conf_apply_set(c, "http=1", &e), 1);
    recd_conf_errors_free(&e);

    /* Strings are verbatim: everything after the first '='. */
    assert_int_equal(recd_conf_apply_set(c, "data_dir=/tmp/a=b c", &e), 0);
    assert_string_equal(c->data_dir, "/tmp/a=b c");
    assert_int_equal(recd_conf_apply_set(c, "admin.token=", &e), 0);
    assert_string_equal(c->admin_token, "");
    assert_int_equal(recd_conf_apply_set(c, "admin.token=t0k=n", &e), 0);
    assert_string_equal(c->admin_token, "t0k=n");

    /* Enum. */
    assert_int_equal(recd_conf_apply_set(c, "log.level=debug", &e), 0);
    assert_string_equal(c->log_level, "debug");
    assert_int_equal(recd_conf_apply_set(c, "log.level=verbose", &e), 1);
    assert_true(errs_have(&e, "log.level", NULL));
    recd_conf_errors_free(&e);
    assert_string_equal(c->log_level, "debug");
    assert_int_equal(recd_conf_apply_set(c, "log.level=", &e), 1);
    recd_conf_errors_free(&e);

    /* Listen addresses are checked at apply time. */
    assert_int_equal(recd_conf_apply_set(c, "http.listen=127.0.0.1:0", &e), 0);
    assert_string_equal(c->http_listen, "127.0.0.1:0");
    assert_int_equal(recd_conf_apply_set(c, "http.listen=127.0.0.1", &e), 1);
    assert_true(errs_have(&e, "http.listen", NULL));
    recd_conf_errors_free(&e);
    assert_string_equal(c->http_listen, "127.0.0.1:0");
    /* "" disables the admin listener */
    assert_int_equal(recd_conf_apply_set(c, "admin.listen=", &e), 0);
    assert_string_equal(c->admin_listen, "");
    recd_conf_free(c);
}

static void test_booleans(void **state)
{
    recd_conf_t *c = recd_conf_new_defaults();
    recd_conf_errors_t e = {0};
    static const struct {
        const char *v;
        int want;
    } ok[] = {{"true", 1}, {"false", 0}, {"1", 1}, {"0", 0}, {"true", 1}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char kv[64];
        snprintf(kv, sizeof kv, "log.access=%s", ok[i].v);
        assert_int_equal(recd_conf_apply_set(c, kv, &e), 0);
        assert_int_equal(c->log_access, ok[i].want);
    }
    static const char *const bad[] = {"log.access=yes", "log.access=2",
                                      "log.access=", "log.access=TRUEX", "log.access=-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(recd_conf_apply_set(c, bad[i], &e), 1);
        assert_true(errs_have(&e, "log.access", NULL));
        recd_conf_errors_free(&e);
        assert_int_equal(c->log_access, 1);
    }
    apply_expect(c, "{\"log\": {\"access\": false}}", 0, &e);
    assert_int_equal(c->log_access, 0);
    apply_expect(c, "{\"log\": {\"access\": true}}", 0, &e);
    assert_int_equal(c->log_access, 1);
    recd_conf_free(c);
}

static void test_enum_json(void **state)
{
    recd_conf_t *c = recd_conf_new_defaults();
    recd_conf_errors_t e = {0};
    apply_expect(c, "{\"log\": {\"level\": \"verbose\"}}", 1, &e);
    assert_true(errs_have(&e, "log.level", NULL));
    recd_conf_errors_free(&e);
    assert_string_equal(c->log_level, "info");
    static const char *const lv[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < 4; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"log\": {\"level\": \"%s\"}}", lv[i]);
        apply_expect(c, json, 0, &e);
        assert_string_equal(c->log_level, lv[i]);
    }
    recd_conf_free(c);
}

/* ---- validation ------------------------------------------------------------------------ */

static void test_validate(void **state)
{
    recd_conf_errors_t e = {0};
    recd_conf_t *c;

    /* tls.cert without tls.key (and vice versa) */
    c = recd_conf_new_defaults();
    assert_int_equal(recd_conf_apply_set(c, "tls.cert=/etc/ssl/cert.pem", &e), 0);
    assert_true(recd_conf_validate(c, &e) >= 1);
    assert_true(errs_have(&e, "tls.", NULL));
    recd_conf_errors_free(&e);
    recd_conf_free(c);

    c = recd_conf_new_defaults();
    assert_int_equal(recd_conf_apply_set(c, "tls.key=/etc/ssl/key.pem", &e), 0);
    assert_true(recd_conf_validate(c, &e) >= 1);
    assert_true(errs_have(&e, "tls.", NULL));
    recd_conf_errors_free(&e);
    recd_conf_free(c);

    /* admin on a non-loopback address without a token */
    c = recd_conf_new_defaults();
    assert_int_equal(recd_conf_apply_set(c, "admin.listen=0.0.0.0:9001", &e), 0);
    assert_true(recd_conf_validate(c, &e) >= 1);
    assert_true(errs_have(&e, "admin", NULL));
    recd_conf_errors_free(&e);
    /* ... with a token it is fine */
    assert_int_equal(recd_conf_apply_set(c, "admin.token=sekrit", &e), 0);
    assert_int_equal(recd_conf_validate(c, &e), 0);
    recd_conf_free(c);

    /* admin on loopback without a token is fine; disabled admin is fine */
    c = recd_conf_new_defaults();
    assert_int_equal(recd_conf_apply_set(c, "admin.listen=127.0.0.9:9001", &e), 0);
    assert_int_equal(recd_conf_validate(c, &e), 0);
    assert_int_equal(recd_conf_apply_set(c, "admin.listen=", &e), 0);
    assert_int_equal(recd_conf_validate(c, &e), 0);
    recd_conf_free(c);

    /* the same address for both listeners */
    c = recd_conf_new_defaults();
    assert_int_equal(recd_conf_apply_set(c, "http.listen=127.0.0.1:9005", &e), 0);
    assert_int_equal(recd_conf_apply_set(c, "admin.listen=127.0.0.1:9005", &e), 0);
    assert_true(recd_conf_validate(c, &e) >= 1);
    assert_true(errs_have(&e, "listen", NULL));
    recd_conf_errors_free(&e);
    recd_conf_free(c);

    /* a wildcard public address overlaps a loopback admin on the same port
     * (SO_REUSEPORT would let both bind); different ports do not */
    c = recd_conf_new_defaults();
    assert_int_equal(recd_conf_apply_set(c, "http.listen=0.0.0.0:9006", &e), 0);
    assert_int_equal(recd_conf_apply_set(c, "admin.listen=127.0.0.1:9006", &e), 0);
    assert_true(recd_conf_validate(c, &e) >= 1);
    assert_true(errs_have(&e, "admin.listen", NULL));
    recd_conf_errors_free(&e);
    assert_int_equal(recd_conf_apply_set(c, "admin.listen=127.0.0.1:9007", &e), 0);
    assert_int_equal(recd_conf_validate(c, &e), 0);
    /* two different specific hosts on one port are distinct sockets */
    assert_int_equal(recd_conf_apply_set(c, "http.listen=127.0.0.2:9007", &e), 0);
    assert_int_equal(recd_conf_validate(c, &e), 0);
    recd_conf_free(c);
}

/* ---- load / reload --------------------------------------------------------------------- */

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/recd-test-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

static void test_load(void **state)
{
    recd_conf_errors_t e = {0};
    char *path = write_temp("{\"http\": {\"workers\": 2, \"backlog\": 77},\n"
                            " \"log\": {\"level\": \"warn\"}}\n");
    const char *sets[] = {"http.workers=3", "log.access=0"};
    recd_conf_t *c = recd_conf_load(path, sets, 2, &e);
    dump_errs(&e);
    assert_non_null(c);
    assert_int_equal(e.n, 0);
    assert_int_equal(c->http_workers, 3); /* set wins over the file */
    assert_int_equal(c->http_backlog, 77);
    assert_string_equal(c->log_level, "warn");
    assert_int_equal(c->log_access, 0);
    recd_conf_free(c);

    /* No file: defaults + sets */
    c = recd_conf_load(NULL, sets, 1, &e);
    assert_non_null(c);
    assert_int_equal(c->http_workers, 3);
    assert_string_equal(c->log_level, "info");
    recd_conf_free(c);
    c = recd_conf_load(NULL, NULL, 0, &e);
    assert_non_null(c);
    assert_int_equal(c->http_max_body_bytes, 1048576);
    recd_conf_free(c);

    /* A bad set fails the load. */
    const char *badsets[] = {"http.workers=3", "http.wrokers=1"};
    c = recd_conf_load(path, badsets, 2, &e);
    assert_null(c);
    assert_true(errs_have(&e, "http.wrokers", NULL));
    recd_conf_errors_free(&e);

    /* A validation failure fails the load. */
    const char *tlssets[] = {"tls.cert=/x.pem"};
    c = recd_conf_load(NULL, tlssets, 1, &e);
    assert_null(c);
    assert_true(e.n >= 1);
    recd_conf_errors_free(&e);
    unlink(path);
    free(path);

    /* A broken file fails the load and names line/column. */
    path = write_temp("{\"http\": {\n  \"workers\": 2,,\n}}");
    c = recd_conf_load(path, NULL, 0, &e);
    assert_null(c);
    assert_true(e.n >= 1);
    assert_true(errs_have(&e, "line", NULL));
    recd_conf_errors_free(&e);
    unlink(path);

    /* A missing file names the path. */
    c = recd_conf_load(path, NULL, 0, &e);
    assert_null(c);
    assert_true(errs_have(&e, path, NULL));
    recd_conf_errors_free(&e);
    free(path);

    /* apply_file on a file with an unknown key */
    path = write_temp("{\"admin\": {\"tokn\": \"x\"}}");
    c = recd_conf_new_defaults();
    assert_int_equal(recd_conf_apply_file(c, path, &e), 1);
    assert_true(errs_have(&e, "admin.tokn", NULL));
    recd_conf_errors_free(&e);
    recd_conf_free(c);
    unlink(path);
    free(path);
}

static void test_merge_reload(void **state)
{
    recd_conf_t *cur = recd_conf_new_defaults();
    recd_conf_t *next = recd_conf_dup(cur);
    assert_non_null(next);
    size_t n;
    const recd_conf_key_t *keys = recd_conf_keys(&n);
    size_t nonreload_changed = 0;
    /* Change every INT and BOOL key to another in-range value. */
    for (size_t i = 0; i < n; i++) {
        const recd_conf_key_t *k = &keys[i];
        if (k->type == RECD_CONF_T_INT) {
            int64_t v = k->def_int < k->max ? k->def_int + 1 : k->def_int - 1;
            *int_field(next, k) = v;
            nonreload_changed += !k->reloadable;
        } else if (k->type == RECD_CONF_T_BOOL) {
            *bool_field(next, k) = !k->def_int;
            nonreload_changed += !k->reloadable;
        }
    }
    const recd_conf_key_t *kl = must_find("http.listen");
    const recd_conf_key_t *kv = must_find("log.level");
    assert_false(kl->reloadable); /* a listen address cannot change live */
    assert_true(kv->reloadable);  /* the log level can */
    free(next->http_listen);
    next->http_listen = strdup("127.0.0.1:9999");
    nonreload_changed++;
    free(next->log_level);
    next->log_level = strdup("debug");

    recd_conf_errors_t ign = {0};
    recd_conf_t *m = recd_conf_merge_reload(cur, next, &ign);
    assert_non_null(m);
    assert_ptr_not_equal(m, cur);
    assert_ptr_not_equal(m, next);
    assert_string_equal(m->http_listen, "0.0.0.0:8080");
    assert_string_equal(m->log_level, "debug");
    assert_true(errs_have(&ign, "http.listen", NULL));
    assert_false(errs_have(&ign, "log.level", NULL));
    for (size_t i = 0; i < n; i++) {
        const recd_conf_key_t *k = &keys[i];
        recd_conf_t *want = k->reloadable ? next : cur;
        if (k->type == RECD_CONF_T_INT)
            assert_int_equal(*int_field(m, k), *int_field(want, k));
        else if (k->type == RECD_CONF_T_BOOL)
            assert_int_equal(*bool_field(m, k), *bool_field(want, k));
        else
            assert_string_equal(*str_field(m, k), *str_field(want, k));
        if (!k->reloadable && (k->type == RECD_CONF_T_INT || k->type == RECD_CONF_T_BOOL))
            assert_true(errs_have(&ign, k->path, NULL));
    }
    assert_int_equal(ign.n, nonreload_changed);
    recd_conf_errors_free(&ign);
    /* the result is independent of its inputs */
    recd_conf_free(cur);
    recd_conf_free(next);
    assert_string_equal(m->log_level, "debug");
    recd_conf_free(m);

    /* identical snapshots: nothing ignored */
    cur = recd_conf_new_defaults();
    next = recd_conf_new_defaults();
    m = recd_conf_merge_reload(cur, next, &ign);
    assert_non_null(m);
    assert_int_equal(ign.n, 0);
    recd_conf_free(m);
    recd_conf_free(cur);
    recd_conf_free(next);
}

/* ---- listen addresses ------------------------------------------------------------------ */

static void test_parse_listen(void **state)
{
    struct sockaddr_storage ss;
    unsigned len = 0;
    recd_err_t err;

    memset(&ss, 0xee, sizeof ss);
    assert_int_equal(recd_conf_parse_listen("127.0.0.1:8080", &ss, &len, &err), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
    assert_int_equal(ntohs(s4->sin_port), 8080);
    assert_int_equal(ntohl(s4->sin_addr.s_addr), 0x7f000001);
    assert_true(recd_conf_listen_is_loopback(&ss));

    assert_int_equal(recd_conf_parse_listen("[::1]:8080", &ss, &len, &err), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
    assert_int_equal(ntohs(s6->sin6_port), 8080);
    assert_true(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
    assert_true(recd_conf_listen_is_loopback(&ss));

    assert_int_equal(recd_conf_parse_listen(":8080", &ss, &len, &err), 0);
    if (ss.ss_family == AF_INET) {
        assert_int_equal(ntohs(s4->sin_port), 8080);
        assert_int_equal(s4->sin_addr.s_addr, htonl(INADDR_ANY));
    } else {
        assert_int_equal(ss.ss_family, AF_INET6);
        assert_int_equal(ntohs(s6->sin6_port), 8080);
        assert_true(IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr));
    }
    assert_false(recd_conf_listen_is_loopback(&ss));

    assert_int_equal(recd_conf_parse_listen("127.0.0.5:1", &ss, &len, &err), 0);
    assert_true(recd_conf_listen_is_loopback(&ss));
    assert_int_equal(recd_conf_parse_listen("127.255.255.254:65535", &ss, &len, &err), 0);
    assert_int_equal(ntohs(s4->sin_port), 65535);
    assert_true(recd_conf_listen_is_loopback(&ss));
    assert_int_equal(recd_conf_parse_listen("0.0.0.0:0", &ss, &len, &err), 0);
    assert_false(recd_conf_listen_is_loopback(&ss));
    assert_int_equal(recd_conf_parse_listen("10.1.2.3:80", &ss, &len, &err), 0);
    assert_false(recd_conf_listen_is_loopback(&ss));
    assert_int_equal(recd_conf_parse_listen("128.0.0.1:80", &ss, &len, &err), 0);
    assert_false(recd_conf_listen_is_loopback(&ss));
    assert_int_equal(recd_conf_parse_listen("[::]:80", &ss, &len, &err), 0);
    assert_false(recd_conf_listen_is_loopback(&ss));
    assert_int_equal(recd_conf_parse_listen("[2001:db8::1]:443", &ss, &len, &err), 0);
    assert_false(recd_conf_listen_is_loopback(&ss));

    static const char *const bad[] = {
        "127.0.0.1",     "127.0.0.1:99999", "[::1",       "host:abc",      "",  "127.0.0.1:",
        "127.0.0.1:-1",  "127.0.0.1:65536", "[::1]",      "[::1]8080",     ":", "256.0.0.1:80",
        "127.0.0.1:80x", "127.0.0.1:+80",   "[zz::1]:80", "127.0.0.1: 80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        int rc = recd_conf_parse_listen(bad[i], &ss, &len, &err);
        if (rc != RECD_EINVAL)
            print_message("accepted listen address \"%s\"\n", bad[i]);
        assert_int_equal(rc, RECD_EINVAL);
        assert_true(err.msg[0] != '\0');
    }
    /* err may be NULL */
    assert_int_equal(recd_conf_parse_listen("nope", &ss, &len, NULL), RECD_EINVAL);
}

/* ---- dump ----------------------------------------------------------------------------------- */

/* Look a dotted path up in either nested or flat form. */
static json_t *dump_lookup(json_t *root, const char *path)
{
    json_t *flat = json_object_get(root, path);
    if (flat)
        return flat;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = root;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok;
         tok = strtok_r(NULL, ".", &save)) {
        if (!json_is_object(cur))
            return NULL;
        cur = json_object_get(cur, tok);
        if (!cur)
            return NULL;
    }
    return cur;
}

static void test_dump_json(void **state)
{
    recd_conf_t *c = recd_conf_new_defaults();
    recd_conf_errors_t e = {0};
    assert_int_equal(recd_conf_apply_set(c, "admin.token=s3cr3t-value", &e), 0);
    assert_int_equal(recd_conf_apply_set(c, "http.workers=5", &e), 0);
    assert_int_equal(recd_conf_apply_set(c, "log.access=1", &e), 0);
    char *text = recd_conf_dump_json(c);
    assert_non_null(text);
    assert_null(strstr(text, "s3cr3t"));
    assert_non_null(strstr(text, "<redacted>"));
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        print_message("dump is not JSON: %s\n%s\n", je.text, text);
    assert_non_null(root);
    json_t *v = dump_lookup(root, "admin.token");
    assert_non_null(v);
    assert_string_equal(json_string_value(v), "<redacted>");
    v = dump_lookup(root, "http.workers");
    assert_non_null(v);
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 5);
    v = dump_lookup(root, "http.listen");
    assert_non_null(v);
    assert_string_equal(json_string_value(v), "0.0.0.0:8080");
    v = dump_lookup(root, "log.access");
    assert_non_null(v);
    assert_true(json_is_true(v));
    /* every key is present */
    size_t n;
    const recd_conf_key_t *keys = recd_conf_keys(&n);
    for (size_t i = 0; i < n; i++) {
        if (!dump_lookup(root, keys[i].path))
            print_message("dump misses %s\n", keys[i].path);
        assert_non_null(dump_lookup(root, keys[i].path));
    }
    json_decref(root);
    free(text);
    recd_conf_free(c);
}

/* ---- publish / current ------------------------------------------------------------------------
 */

static void test_publish_current(void **state)
{
    recd_conf_t *a = recd_conf_new_defaults();
    recd_conf_t *b = recd_conf_new_defaults();
    recd_conf_errors_t e = {0};
    assert_int_equal(recd_conf_apply_set(b, "http.workers=9", &e), 0);
    recd_conf_publish(a);
    assert_ptr_equal(recd_conf_current(), a);
    assert_int_equal(recd_conf_current()->http_workers, 0);
    recd_conf_publish(b);
    assert_ptr_equal(recd_conf_current(), b);
    assert_int_equal(recd_conf_current()->http_workers, 9);
    /* the old snapshot stays readable until shutdown */
    assert_string_equal(a->log_level, "info");
    recd_conf_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_sane),         cmocka_unit_test(test_table_covers_struct),
        cmocka_unit_test(test_defaults),           cmocka_unit_test(test_apply_json_nested),
        cmocka_unit_test(test_apply_json_partial), cmocka_unit_test(test_int_bounds_all_keys),
        cmocka_unit_test(test_specific_bounds),    cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_unknown_keys),       cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_duplicate_keys),     cmocka_unit_test(test_apply_set),
        cmocka_unit_test(test_booleans),           cmocka_unit_test(test_enum_json),
        cmocka_unit_test(test_validate),           cmocka_unit_test(test_load),
        cmocka_unit_test(test_merge_reload),       cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_dump_json),          cmocka_unit_test(test_publish_current),
        cmocka_unit_test(test_experiments_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
