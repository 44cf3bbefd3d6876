/*
 * Unit tests for src/events/evrec.c: every validation rule of
 * recd_evrec_from_json (with the field it reports), the event log payload
 * (exact text of the documented example, key order, escaping, the size
 * bound of recd_evrec_encoded_max, exact round trips of value through
 * %.17g) and recd_evrec_decode's errors and tolerance of unknown keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "recd/core.h"
#include "recd/dataset.h"
#include "recd/evrec.h"

#define NOW ((int64_t)1764201600) /* the "server clock" of these tests */

/* ---- helpers ------------------------------------------------------------------ */

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("test JSON does not parse: %s: %s", je.text, text);
    return j;
}

/* A valid click event as a JSON object the caller may modify. */
static json_t *base_event(void)
{
    return parse("{\"user_id\":\"u1\",\"item_id\":\"i1\",\"type\":\"click\"}");
}

/* recd_evrec_from_json on o must fail naming field, with want in the message. */
static void expect_bad_obj(const json_t *o, int64_t now, const char *field, const char *want)
{
    recd_evrec_t ev;
    char got[128];
    recd_err_t err = {0};
    memset(got, 'X', sizeof got);
    got[sizeof got - 1] = '\0';
    int rc = recd_evrec_from_json(o, now, &ev, got, sizeof got, &err);
    if (rc != RECD_EINVAL) {
        char *s = o ? json_dumps(o, JSON_ENCODE_ANY) : NULL;
        fail_msg("accepted (rc %d): %s", rc, s ? s : "(null)");
    }
    assert_int_equal(err.code, RECD_EINVAL);
    if (strcmp(got, field) != 0)
        fail_msg("field \"%s\", want \"%s\" (%s)", got, field, err.msg);
    if (!strstr(err.msg, want))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
}

static void expect_bad(const char *text, const char *field, const char *want)
{
    json_t *o = parse(text);
    expect_bad_obj(o, NOW, field, want);
    json_decref(o);
}

/* base_event() with key set to v (stolen), or removed when v is NULL. */
static json_t *with(const char *key, json_t *v)
{
    json_t *o = base_event();
    if (v)
        json_object_set_new(o, key, v);
    else
        json_object_del(o, key);
    return o;
}

static void expect_bad_with(const char *key, json_t *v, const char *field, const char *want)
{
    json_t *o = with(key, v);
    expect_bad_obj(o, NOW, field, want);
    json_decref(o);
}

static void expect_ok_obj(const json_t *o, int64_t now, recd_evrec_t *ev)
{
    char field[64] = "";
    recd_err_t err = {0};
    int rc = recd_evrec_from_json(o, now, ev, field, sizeof field, &err);
    if (rc != 0) {
        char *s = json_dumps(o, JSON_ENCODE_ANY);
        fail_msg("refused %s: field %s: %s", s ? s : "?", field, err.msg);
    }
}

static void expect_ok_with(const char *key, json_t *v)
{
    json_t *o = with(key, v);
    recd_evrec_t ev;
    expect_ok_obj(o, NOW, &ev);
    json_decref(o);
}

/* A string of n copies of c. */
static char *rep(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Every field stored in the log is equal (value bit for bit). */
static void assert_same_record(const recd_evrec_t *a, const recd_evrec_t *b)
{
    assert_int_equal(a->ts, b->ts);
    assert_int_equal(a->user_len, b->user_len);
    assert_memory_equal(a->user_id, b->user_id, a->user_len);
    assert_int_equal(b->user_id[b->user_len], '\0');
    assert_int_equal(a->item_len, b->item_len);
    assert_memory_equal(a->item_id, b->item_id, a->item_len);
    assert_int_equal(b->item_id[b->item_len], '\0');
    assert_int_equal(a->type, b->type);
    assert_memory_equal(&a->value, &b->value, sizeof a->value);
    assert_true(str_eq(a->request_id, b->request_id));
    assert_int_equal(a->n_ab, b->n_ab);
    for (size_t i = 0; i < a->n_ab; i++) {
        assert_string_equal(a->ab[i].experiment, b->ab[i].experiment);
        assert_string_equal(a->ab[i].variant, b->ab[i].variant);
    }
    assert_int_equal(!!a->forced, !!b->forced);
    assert_int_equal(a->recv_ms, b->recv_ms);
}

/* Encode ev into an exactly sized heap buffer (so ASan sees any overrun),
 * check the length against the bound; the caller frees. */
static char *encode(const recd_evrec_t *ev, size_t *len)
{
    size_t cap = recd_evrec_encoded_max(ev);
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n = recd_evrec_encode(ev, buf, cap);
    assert_true(n + 1 <= cap);
    assert_int_equal(strlen(buf), n);
    *len = n;
    return buf;
}

/* The payload is one JSON object, its keys in the documented order, the
 * optional ones present exactly when ev has them. */
static void assert_payload_shape(const recd_evrec_t *ev, const char *buf, size_t len)
{
    static const char *const order[] = {"ts",         "user_id", "item_id", "type",   "value",
                                        "request_id", "ab",      "forced",  "recv_ms"};
    int want[9] = {
        1, 1, 1, 1, 1, ev->request_id != NULL, ev->n_ab > 0, !!ev->forced, ev->recv_ms != 0};
    assert_null(memchr(buf, '\n', len));
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        fail_msg("payload is not JSON (%s): %s", je.text, buf);
    assert_true(json_is_object(j));
    size_t k = 0, seen = 0;
    const char *key;
    json_t *v;
    json_object_foreach (j, key, v) {
        while (k < 9 && strcmp(order[k], key) != 0)
            k++;
        if (k == 9)
            fail_msg("key \"%s\" out of order or unknown in %s", key, buf);
        assert_true(want[k]);
        seen++;
        k++;
    }
    size_t nwant = 0;
    for (size_t i = 0; i < 9; i++)
        nwant += (size_t)want[i];
    assert_int_equal(seen, nwant);
    json_decref(j);
}

/* encode -> shape -> decode -> same fields. */
static void roundtrip(const recd_evrec_t *ev)
{
    size_t len;
    char *buf = encode(ev, &len);
    assert_payload_shape(ev, buf, len);
    recd_evrec_t back;
    json_t *hold = NULL;
    recd_err_t err = {0};
    if (recd_evrec_decode(buf, len, &back, &hold, &err) != 0)
        fail_msg("decode of %s: %s", buf, err.msg);
    assert_non_null(hold);
    assert_same_record(ev, &back);
    json_decref(hold);
    free(buf);
}

static void ev_init(recd_evrec_t *ev, const char *user, const char *item, int type, double value)
{
    memset(ev, 0, sizeof *ev);
    ev->ts = NOW;
    ev->user_id = user;
    ev->user_len = strlen(user);
    ev->item_id = item;
    ev->item_len = strlen(item);
    ev->type = type;
    ev->value = value;
}

/* ---- recd_evrec_from_json ------------------------------------------------------ */

static void test_from_json_minimal(void **state)
{
    (void)state;
    json_t *o = base_event();
    recd_evrec_t ev;
    memset(&ev, 0x5a, sizeof ev);
    expect_ok_obj(o, NOW, &ev);
    assert_int_equal(ev.ts, NOW);
    assert_string_equal(ev.user_id, "u1");
    assert_int_equal(ev.user_len, 2);
    assert_string_equal(ev.item_id, "i1");
    assert_int_equal(ev.item_len, 2);
    assert_int_equal(ev.type, RECD_EV_CLICK);
    assert_true(ev.value == 1.0);
    assert_null(ev.request_id);
    assert_null(ev.hint_experiment);
    assert_null(ev.hint_variant);
    assert_int_equal(ev.n_ab, 0);
    assert_int_equal(ev.forced, 0);
    assert_int_equal(ev.recv_ms, 0);
    /* strings are borrowed from the request */
    assert_ptr_equal(ev.user_id, json_string_value(json_object_get(o, "user_id")));
    json_decref(o);
}

static void test_from_json_full(void **state)
{
    (void)state;
    json_t *o = parse("{\"user_id\":\"user \\\"42\\\"\",\"item_id\":\"m\\u00e9lange\","
                      "\"type\":\"watch\",\"value\":310.5,\"ts\":1764200000,"
                      "\"request_id\":\"r-17\",\"experiment\":\"ranker-test\","
                      "\"variant\":\"deep_fm.v2\"}");
    recd_evrec_t ev;
    expect_ok_obj(o, NOW, &ev);
    assert_int_equal(ev.ts, 1764200000);
    assert_string_equal(ev.user_id, "user \"42\"");
    assert_int_equal(ev.user_len, 9);
    assert_string_equal(ev.item_id, "m\xc3\xa9lange");
    assert_int_equal(ev.item_len, 8);
    assert_int_equal(ev.type, RECD_EV_WATCH);
    assert_true(ev.value == 310.5);
    assert_string_equal(ev.request_id, "r-17");
    assert_string_equal(ev.hint_experiment, "ranker-test");
    assert_string_equal(ev.hint_variant, "deep_fm.v2");
    assert_int_equal(ev.n_ab, 0);
    json_decref(o);
}

static void test_ids_required(void **state)
{
    (void)state;
    static const char *const keys[] = {"user_id", "item_id"};
    for (int k = 0; k < 2; k++) {
        const char *key = keys[k];
        char want[64];
        snprintf(want, sizeof want, "%s is required", key);
        expect_bad_with(key, NULL, key, want);
        snprintf(want, sizeof want, "%s must be a string", key);
        expect_bad_with(key, json_integer(42), key, want);
        expect_bad_with(key, json_null(), key, want);
        expect_bad_with(key, json_true(), key, want);
        expect_bad_with(key, json_array(), key, want);
        expect_bad_with(key, json_object(), key, want);
    }
    /* user_id is checked before item_id and the rest */
    expect_bad("{\"type\":\"nope\"}", "user_id", "user_id is required");
    expect_bad("{\"user_id\":\"u\",\"type\":\"nope\"}", "item_id", "item_id is required");
}

static void test_ids_length(void **state)
{
    (void)state;
    static const char *const keys[] = {"user_id", "item_id"};
    for (int k = 0; k < 2; k++) {
        const char *key = keys[k];
        char want[64];
        snprintf(want, sizeof want, "%s must be 1..256 bytes", key);
        expect_bad_with(key, json_string(""), key, want);
        char *s = rep('a', 256);
        json_t *o = with(key, json_string(s));
        recd_evrec_t ev;
        expect_ok_obj(o, NOW, &ev);
        assert_int_equal(k ? ev.item_len : ev.user_len, 256);
        json_decref(o);
        free(s);
        s = rep('a', 257);
        expect_bad_with(key, json_string(s), key, want);
        free(s);
        expect_ok_with(key, json_string("a"));
        /* the limit is in bytes: 128 two-byte characters fit, 129 do not */
        char u[2 * 129 + 1];
        for (int i = 0; i < 129; i++)
            memcpy(u + 2 * i, "\xc3\xa9", 2);
        u[2 * 128] = '\0';
        expect_ok_with(key, json_string(u));
        u[2 * 128] = '\xc3';
        u[2 * 129] = '\0';
        expect_bad_with(key, json_string(u), key, want);
    }
}

static void test_ids_control_chars(void **state)
{
    (void)state;
    static const char *const keys[] = {"user_id", "item_id"};
    for (int k = 0; k < 2; k++) {
        const char *key = keys[k];
        for (int c = 1; c < 0x20; c++) {
            char s[4] = {'a', (char)c, 'b', '\0'};
            expect_bad_with(key, json_string(s), key, "without control characters");
        }
        expect_bad_with(key, json_string("a\x7f"), key, "without control characters");
        /* an embedded NUL (only possible through \u0000 in the request) */
        expect_bad_with(key, json_stringn("a\0b", 3), key, "without control characters");
        expect_bad_with(key, json_stringn("\0", 1), key, "without control characters");
        /* space, ~, non-ASCII are fine */
        expect_ok_with(key, json_string(" "));
        expect_ok_with(key, json_string("a b~!\"\\/"));
        expect_ok_with(key, json_string("\xe2\x82\xac\xf0\x9f\x8e\xac")); /* euro, clapper */
        expect_ok_with(key, json_string("\xc2\x80")); /* U+0080: byte 0xc2 0x80 */
    }
}

static void test_valid_id(void **state)
{
    (void)state;
    assert_false(recd_evrec_valid_id(NULL, 0));
    assert_false(recd_evrec_valid_id(NULL, 3));
    assert_false(recd_evrec_valid_id("", 0));
    assert_true(recd_evrec_valid_id("a", 1));
    char buf[RECD_EVREC_ID_MAX + 2];
    memset(buf, 'x', sizeof buf);
    assert_true(recd_evrec_valid_id(buf, RECD_EVREC_ID_MAX));
    assert_false(recd_evrec_valid_id(buf, RECD_EVREC_ID_MAX + 1));
    for (int c = 0; c < 256; c++) {
        buf[5] = (char)c;
        int want = !(c < 0x20 || c == 0x7f);
        if (recd_evrec_valid_id(buf, 10) != want)
            fail_msg("byte 0x%02x: valid_id %d", c, !want);
    }
}

static void test_type(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int type;
    } names[] = {{"impression", RECD_EV_IMPRESSION},
                 {"click", RECD_EV_CLICK},
                 {"watch", RECD_EV_WATCH},
                 {"rating", RECD_EV_RATING},
                 {"purchase", RECD_EV_PURCHASE}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        json_t *o = with("type", json_string(names[i].name));
        json_object_set_new(o, "value", json_real(3.5));
        recd_evrec_t ev;
        expect_ok_obj(o, NOW, &ev);
        assert_int_equal(ev.type, names[i].type);
        assert_true(ev.value == 3.5);
        json_decref(o);
    }
    const char *want = "type must be one of impression, click, watch, rating, purchase";
    expect_bad_with("type", NULL, "type", "type is required");
    expect_bad_with("type", json_string(""), "type", want);
    expect_bad_with("type", json_string("Click"), "type", want);
    expect_bad_with("type", json_string("clicks"), "type", want);
    expect_bad_with("type", json_string("clic"), "type", want);
    expect_bad_with("type", json_string(" click"), "type", want);
    expect_bad_with("type", json_stringn("click\0", 6), "type", want);
    expect_bad_with("type", json_integer(1), "type", want);
    expect_bad_with("type", json_null(), "type", want);
    expect_bad_with("type", json_array(), "type", want);
}

static void test_value(void **state)
{
    (void)state;
    recd_evrec_t ev;
    /* required for watch and rating */
    expect_bad("{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"watch\"}", "value",
               "value (seconds watched) is required for watch");
    expect_bad("{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"rating\"}", "value",
               "value (the rating) is required for rating");
    /* 1 by default for the others */
    static const char *const dflt[] = {"impression", "click", "purchase"};
    for (int i = 0; i < 3; i++) {
        json_t *o = with("type", json_string(dflt[i]));
        expect_ok_obj(o, NOW, &ev);
        assert_true(ev.value == 1.0);
        json_decref(o);
    }
    /* range */
    const char *range = "value must be a finite number in 0..1e9";
    expect_bad_with("value", json_integer(-1), "value", range);
    expect_bad_with("value", json_real(-1e-300), "value", range);
    expect_bad_with("value", json_real(1e9 + 0.5), "value", range);
    expect_bad_with("value", json_integer(1000000001), "value", range);
    expect_bad_with("value", json_real(1e308), "value", range);
    expect_bad("{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"watch\",\"value\":1e308}", "value",
               range);
    expect_bad("{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"watch\","
               "\"value\":9223372036854775807}",
               "value", range);
    /* NaN and infinities cannot be written in JSON: jansson refuses them */
    assert_null(json_real(NAN));
    assert_null(json_real(INFINITY));
    static const double ok[] = {0.0, 1e-300, 0.1, 310.5, 1e9};
    for (int i = 0; i < 5; i++) {
        json_t *o = with("type", json_string("watch"));
        json_object_set_new(o, "value", json_real(ok[i]));
        expect_ok_obj(o, NOW, &ev);
        assert_true(ev.value == ok[i]);
        json_decref(o);
    }
    json_t *o = with("value", json_integer(1000000000));
    expect_ok_obj(o, NOW, &ev);
    assert_true(ev.value == 1e9);
    json_decref(o);
    /* types */
    const char *num = "value must be a number";
    expect_bad_with("value", json_string("5"), "value", num);
    expect_bad_with("value", json_true(), "value", num);
    expect_bad_with("value", json_null(), "value", num);
    expect_bad_with("value", json_array(), "value", num);
    expect_bad_with("value", json_object(), "value", num);
    /* a rating is at most 10; other types are not */
    static const char *const rating_ok[] = {"0", "4.5", "10", "10.0"};
    for (int i = 0; i < 4; i++) {
        char t[160];
        snprintf(t, sizeof t,
                 "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"rating\",\"value\":%s}",
                 rating_ok[i]);
        json_t *r = parse(t);
        expect_ok_obj(r, NOW, &ev);
        assert_int_equal(ev.type, RECD_EV_RATING);
        json_decref(r);
    }
    expect_bad("{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"rating\",\"value\":10.000001}",
               "value", "a rating must be in 0..10");
    expect_bad("{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"rating\",\"value\":11}", "value",
               "a rating must be in 0..10");
    expect_bad("{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"rating\",\"value\":-1}", "value",
               range);
    static const char *const big_ok[] = {"watch", "click", "purchase", "impression"};
    for (int i = 0; i < 4; i++) {
        json_t *r = with("type", json_string(big_ok[i]));
        json_object_set_new(r, "value", json_integer(11));
        expect_ok_obj(r, NOW, &ev);
        assert_true(ev.value == 11.0);
        json_decref(r);
    }
}

static void test_ts(void **state)
{
    (void)state;
    recd_evrec_t ev;
    /* missing: the server clock */
    json_t *o = base_event();
    expect_ok_obj(o, NOW, &ev);
    assert_int_equal(ev.ts, NOW);
    expect_ok_obj(o, 12345, &ev);
    assert_int_equal(ev.ts, 12345);
    json_decref(o);
    const char *integer = "ts must be an integer (unix seconds)";
    expect_bad_with("ts", json_integer(-1), "ts", "ts must be >= 0");
    expect_bad_with("ts", json_integer(INT64_MIN), "ts", "ts must be >= 0");
    expect_bad_with("ts", json_real(1.5), "ts", integer);
    expect_bad_with("ts", json_real(1764201600.0), "ts", integer);
    expect_bad("{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"ts\":1e9}", "ts",
               integer);
    expect_bad_with("ts", json_string("1764201600"), "ts", integer);
    expect_bad_with("ts", json_null(), "ts", integer);
    expect_bad_with("ts", json_true(), "ts", integer);
    /* a day ahead of the server clock at most */
    const char *future = "more than a day ahead of the server clock";
    expect_bad_with("ts", json_integer(NOW + RECD_EVREC_FUTURE_S + 1), "ts", future);
    expect_bad_with("ts", json_integer(INT64_MAX), "ts", future);
    expect_bad_with("ts", json_integer(NOW * 1000), "ts", future); /* milliseconds by mistake */
    static const int64_t ok[] = {
        0, 1, NOW - 365 * 86400, NOW, NOW + RECD_EVREC_FUTURE_S - 1, NOW + RECD_EVREC_FUTURE_S};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        o = with("ts", json_integer(ok[i]));
        expect_ok_obj(o, NOW, &ev);
        assert_int_equal(ev.ts, ok[i]);
        json_decref(o);
    }
    /* the limit moves with now_s */
    o = with("ts", json_integer(NOW + RECD_EVREC_FUTURE_S));
    expect_bad_obj(o, NOW - 1, "ts", future);
    json_decref(o);
}

static void test_request_id(void **state)
{
    (void)state;
    recd_evrec_t ev;
    const char *want = "request_id must be 1..128 printable ASCII characters";
    expect_bad_with("request_id", json_string(""), "request_id", want);
    char *s = rep('r', 128);
    json_t *o = with("request_id", json_string(s));
    expect_ok_obj(o, NOW, &ev);
    assert_string_equal(ev.request_id, s);
    json_decref(o);
    free(s);
    s = rep('r', 129);
    expect_bad_with("request_id", json_string(s), "request_id", want);
    free(s);
    expect_bad_with("request_id", json_string("a b"), "request_id", want);
    expect_bad_with("request_id", json_string(" "), "request_id", want);
    expect_bad_with("request_id", json_string("a\tb"), "request_id", want);
    expect_bad_with("request_id", json_string("a\x01"), "request_id", want);
    expect_bad_with("request_id", json_string("a\x7f"), "request_id", want);
    expect_bad_with("request_id", json_string("r\xc3\xa9"), "request_id", want);
    expect_bad_with("request_id", json_stringn("r\0x", 3), "request_id", want);
    expect_bad_with("request_id", json_integer(17), "request_id", "request_id must be a string");
    expect_bad_with("request_id", json_null(), "request_id", "request_id must be a string");
    /* every printable ASCII character is allowed */
    char all[0x7f - 0x21 + 1];
    for (int c = 0x21; c < 0x7f; c++)
        all[c - 0x21] = (char)c;
    all[sizeof all - 1] = '\0';
    o = with("request_id", json_string(all));
    expect_ok_obj(o, NOW, &ev);
    assert_string_equal(ev.request_id, all);
    json_decref(o);
}

static void test_experiment_hints(void **state)
{
    (void)state;
    recd_evrec_t ev;
    const char *names = "1..64 characters of [A-Za-z0-9_.-]";
    static const char *const keys[] = {"experiment", "variant"};
    for (int k = 0; k < 2; k++) {
        const char *key = keys[k];
        const char *other = k ? "experiment" : "variant";
        char want[128];
        snprintf(want, sizeof want, "%s must be %s", key, names);
        static const char *const bad[] = {"",     "a b",  "a/b", "a:b", "caf\xc3\xa9",
                                          "a\tb", "a\"b", "\x7f"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            json_t *o = with(key, json_string(bad[i]));
            json_object_set_new(o, other, json_string("ok"));
            expect_bad_obj(o, NOW, key, want);
            json_decref(o);
        }
        char *s = rep('n', 65);
        json_t *o = with(key, json_string(s));
        json_object_set_new(o, other, json_string("ok"));
        expect_bad_obj(o, NOW, key, want);
        json_decref(o);
        s[64] = '\0';
        o = with(key, json_string(s));
        json_object_set_new(o, other, json_string("ok"));
        expect_ok_obj(o, NOW, &ev);
        assert_string_equal(k ? ev.hint_variant : ev.hint_experiment, s);
        json_decref(o);
        free(s);
        o = with(key, json_stringn("ab\0c", 4));
        json_object_set_new(o, other, json_string("ok"));
        expect_bad_obj(o, NOW, key, want);
        json_decref(o);
        snprintf(want, sizeof want, "%s must be a string", key);
        o = with(key, json_integer(1));
        json_object_set_new(o, other, json_string("ok"));
        expect_bad_obj(o, NOW, key, want);
        json_decref(o);
    }
    json_t *o = with("experiment", json_string("Exp_1.b-2"));
    json_object_set_new(o, "variant", json_string("A-z_09."));
    expect_ok_obj(o, NOW, &ev);
    assert_string_equal(ev.hint_experiment, "Exp_1.b-2");
    assert_string_equal(ev.hint_variant, "A-z_09.");
    assert_int_equal(ev.n_ab, 0); /* hints are not attributions */
    json_decref(o);
    /* an experiment hint needs a variant; a variant alone is kept */
    expect_bad_with("experiment", json_string("e"), "variant", "experiment needs variant");
    o = with("variant", json_string("b"));
    expect_ok_obj(o, NOW, &ev);
    assert_null(ev.hint_experiment);
    assert_string_equal(ev.hint_variant, "b");
    json_decref(o);
}

static void test_unknown_key(void **state)
{
    (void)state;
    expect_bad_with("extra", json_integer(1), "extra", "unknown field \"extra\"");
    expect_bad_with("User_id", json_string("u"), "User_id", "unknown field \"User_id\"");
    expect_bad_with("ab", json_object(), "ab", "unknown field \"ab\"");
    expect_bad_with("forced", json_true(), "forced", "unknown field \"forced\"");
    expect_bad_with("recv_ms", json_integer(1), "recv_ms", "unknown field \"recv_ms\"");
    /* reported before anything else is looked at */
    expect_bad("{\"zz\":1}", "zz", "unknown field \"zz\"");
    /* a long key: the message holds its start, field what fits in cap */
    char *k = rep('k', 300);
    json_t *o = with(k, json_null());
    recd_evrec_t ev;
    char field[8];
    recd_err_t err = {0};
    assert_int_equal(recd_evrec_from_json(o, NOW, &ev, field, sizeof field, &err), RECD_EINVAL);
    assert_string_equal(field, "kkkkkkk");
    k[100] = '\0';
    char want[160];
    snprintf(want, sizeof want, "unknown field \"%s\"", k);
    assert_string_equal(err.msg, want);
    json_decref(o);
    free(k);
}

static void test_not_object(void **state)
{
    (void)state;
    const char *want = "an event must be a JSON object";
    static const char *const texts[] = {"[]",  "[{\"user_id\":\"u\"}]", "\"click\"", "1", "null",
                                        "true"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        expect_bad(texts[i], "", want);
    expect_bad_obj(NULL, NOW, "", want);
    /* an empty object is an object: the first missing key is named */
    expect_bad("{}", "user_id", "user_id is required");
}

/* ---- payload -------------------------------------------------------------------- */

static void test_payload_documented_example(void **state)
{
    (void)state;
    recd_evrec_t ev;
    ev_init(&ev, "u42", "i42", RECD_EV_CLICK, 1);
    ev.ts = 1764201600;
    ev.request_id = "r-17";
    ev.n_ab = 1;
    ev.ab[0].experiment = "ranker-test";
    ev.ab[0].variant = "deepfm";
    ev.forced = 1;
    ev.recv_ms = 1764201600123LL;
    size_t len;
    char *buf = encode(&ev, &len);
    assert_string_equal(buf, "{\"ts\":1764201600,\"user_id\":\"u42\",\"item_id\":\"i42\","
                             "\"type\":\"click\",\"value\":1,\"request_id\":\"r-17\","
                             "\"ab\":{\"ranker-test\":\"deepfm\"},\"forced\":true,"
                             "\"recv_ms\":1764201600123}");
    free(buf);
    roundtrip(&ev);
    /* optional keys omitted */
    ev_init(&ev, "u", "i", RECD_EV_WATCH, 310.5);
    ev.ts = 5;
    buf = encode(&ev, &len);
    assert_string_equal(buf, "{\"ts\":5,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"watch\","
                             "\"value\":310.5}");
    free(buf);
    /* two attributions, in order */
    ev.n_ab = 2;
    ev.ab[0] = (recd_evrec_ab_t){"e2", "b"};
    ev.ab[1] = (recd_evrec_ab_t){"e1", "a"};
    buf = encode(&ev, &len);
    assert_string_equal(buf, "{\"ts\":5,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"watch\","
                             "\"value\":310.5,\"ab\":{\"e2\":\"b\",\"e1\":\"a\"}}");
    free(buf);
}

static void test_payload_escaping(void **state)
{
    (void)state;
    recd_evrec_t ev;
    ev_init(&ev, "a\"b\\c/d", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\xac", RECD_EV_PURCHASE, 2);
    ev.request_id = "q\"\\\x01\x1f\x7f";
    size_t len;
    char *buf = encode(&ev, &len);
    assert_non_null(strstr(buf, "\"user_id\":\"a\\\"b\\\\c/d\""));
    assert_non_null(strstr(buf, "\"item_id\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\xac\""));
    assert_non_null(strstr(buf, "\"request_id\":\"q\\\"\\\\\\u0001\\u001f\\u007f\""));
    /* no raw control byte reaches the payload */
    for (size_t i = 0; i < len; i++)
        assert_false((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f);
    free(buf);
    roundtrip(&ev);
}

static void test_roundtrip_many(void **state)
{
    (void)state;
    static const char *const users[] = {"u1",
                                        "u\"quoted\"",
                                        "back\\slash\\",
                                        "\\\"",
                                        "caf\xc3\xa9",
                                        "\xe4\xb8\xad\xe6\x96\x87",
                                        "\xf0\x9f\x98\x80 emoji",
                                        "sp ace",
                                        "{\"json\":[1]}",
                                        "~",
                                        "/slash/",
                                        "\\u0041"};
    static const char *const reqids[] = {NULL, "r-1", "req\"id\\x", "~!@#$%^&*()_+", "0"};
    static const double values[] = {0, 1, 0.1, 310.5, 1e9, 4.5, 1.0 / 3, 2.5e-7, 123456.789};
    static const char *const abpairs[] = {"e1",   "a",    "ranker-test", "deepfm",   "x.y_z", "B-2",
                                          "e\"q", "v\\b", "e5",          "\xc3\xa9", "e6",    "six",
                                          "e7",   "7",    "e8",          "eight"};
    size_t nu = sizeof users / sizeof users[0];
    size_t count = 0;
    for (size_t i = 0; i < 300; i++) {
        recd_evrec_t ev;
        ev_init(&ev, users[i % nu], users[(i * 7 + 3) % nu], (int)(i % RECD_EV_NTYPES),
                values[i % (sizeof values / sizeof values[0])]);
        ev.ts = (int64_t)(i * 1000003) - 5000;
        if (i % 41 == 0)
            ev.ts = i % 2 ? INT64_MAX : INT64_MIN;
        ev.request_id = reqids[i % (sizeof reqids / sizeof reqids[0])];
        ev.n_ab = i % (RECD_EVREC_MAX_AB + 1);
        for (size_t k = 0; k < ev.n_ab; k++) {
            ev.ab[k].experiment = abpairs[2 * k];
            ev.ab[k].variant = abpairs[2 * k + 1];
        }
        ev.forced = (i / 3) % 2;
        ev.recv_ms = i % 5 == 0 ? 0 : NOW * 1000 + (int64_t)i;
        if (i % 43 == 0)
            ev.recv_ms = i % 2 ? INT64_MAX : -1;
        roundtrip(&ev);
        count++;
    }
    assert_int_equal(count, 300);
}

/* The largest payload: every string byte one the encoder expands to six
 * (\u00XX), eight attributions, the longest numbers and all optional keys. */
static void test_encoded_max_worst_case(void **state)
{
    (void)state;
    char *uid = rep('\x01', RECD_EVREC_ID_MAX);
    char *iid = rep('\x1f', RECD_EVREC_ID_MAX);
    char *rid = rep('\x7f', RECD_EVREC_REQID_MAX);
    char *names[RECD_EVREC_MAX_AB];
    for (int k = 0; k < RECD_EVREC_MAX_AB; k++) {
        names[k] = rep('\x02', RECD_EVREC_NAME_MAX);
        names[k][0] = (char)(0x03 + k); /* distinct keys */
    }
    recd_evrec_t ev;
    ev_init(&ev, uid, iid, RECD_EV_IMPRESSION, -DBL_MAX);
    ev.ts = INT64_MIN;
    ev.request_id = rid;
    ev.n_ab = RECD_EVREC_MAX_AB;
    for (int k = 0; k < RECD_EVREC_MAX_AB; k++)
        ev.ab[k] = (recd_evrec_ab_t){names[k], names[k]};
    ev.forced = 1;
    ev.recv_ms = INT64_MIN;
    size_t len;
    char *buf = encode(&ev, &len); /* asserts len < recd_evrec_encoded_max */
    size_t strings = 6 * (2 * RECD_EVREC_ID_MAX + RECD_EVREC_REQID_MAX +
                          2 * RECD_EVREC_MAX_AB * RECD_EVREC_NAME_MAX);
    assert_true(len > strings);
    assert_true(len < recd_evrec_encoded_max(&ev));
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    assert_non_null(j); /* valid JSON even though the decoder refuses the ids */
    assert_string_equal(json_string_value(json_object_get(j, "user_id")), uid);
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), rid);
    json_decref(j);
    free(buf);
    /* the same with printable strings (no escapes) */
    memset(uid, 'u', RECD_EVREC_ID_MAX);
    memset(iid, 'i', RECD_EVREC_ID_MAX);
    memset(rid, 'r', RECD_EVREC_REQID_MAX);
    for (int k = 0; k < RECD_EVREC_MAX_AB; k++) {
        memset(names[k], 'n', RECD_EVREC_NAME_MAX);
        names[k][0] = (char)('a' + k);
    }
    roundtrip(&ev);
    /* smallest values */
    ev_init(&ev, "u", "i", RECD_EV_RATING, DBL_TRUE_MIN);
    roundtrip(&ev);
    free(uid);
    free(iid);
    free(rid);
    for (int k = 0; k < RECD_EVREC_MAX_AB; k++)
        free(names[k]);
}

static void test_value_exact(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *text; /* as printed, or NULL when not checked */
    } cases[] = {
        {0.1, "0.10000000000000001"},
        {1e9, "1000000000"},
        {310.5, "310.5"},
        {0, "0"},
        {1, "1"},
        {4.5, "4.5"},
        {0.30000000000000004, "0.30000000000000004"},
        {1.0 / 3, "0.33333333333333331"},
        {2.5e-7, "2.4999999999999999e-07"},
        {999999999.99999988, NULL},
        {DBL_MIN, NULL},
        {DBL_TRUE_MIN, NULL},
        {DBL_MAX, NULL},
        {9007199254740993.0, NULL},
        {1e-300, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        recd_evrec_t ev;
        ev_init(&ev, "u", "i", RECD_EV_WATCH, cases[i].v);
        size_t len;
        char *buf = encode(&ev, &len);
        if (cases[i].text) {
            char want[64];
            snprintf(want, sizeof want, "\"value\":%s}", cases[i].text);
            if (!strstr(buf, want))
                fail_msg("%s lacks %s", buf, want);
        }
        free(buf);
        roundtrip(&ev); /* bit-exact value */
    }
    /* and nextafter neighbours of a few values */
    static const double around[] = {0.1, 1.0, 310.5, 1e9, 7.0 / 3};
    for (size_t i = 0; i < 5; i++) {
        recd_evrec_t ev;
        ev_init(&ev, "u", "i", RECD_EV_WATCH, nextafter(around[i], 0));
        roundtrip(&ev);
        ev.value = nextafter(around[i], DBL_MAX);
        roundtrip(&ev);
    }
}

/* -0 is a valid value (it is >= 0) but JSON readers take "-0" for the
 * integer 0: the payload says 0, so re-encoding a decoded record gives the
 * same bytes (found by fuzz_evrec). */
static void test_value_negative_zero(void **state)
{
    (void)state;
    json_t *o = parse("{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"watch\",\"value\":-0.0}");
    recd_evrec_t ev;
    expect_ok_obj(o, NOW, &ev);
    assert_true(ev.value == 0.0);
    size_t len;
    char *buf = encode(&ev, &len);
    assert_non_null(strstr(buf, "\"value\":0}"));
    json_t *hold = NULL;
    recd_err_t err = {0};
    recd_evrec_t back;
    assert_int_equal(recd_evrec_decode(buf, len, &back, &hold, &err), 0);
    assert_true(back.value == 0.0 && !signbit(back.value));
    json_decref(hold);
    free(buf);
    json_decref(o);
    /* a payload holding -0.0 decodes and re-encodes as 0 */
    const char *t =
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"watch\",\"value\":-0.0}";
    assert_int_equal(recd_evrec_decode(t, strlen(t), &ev, &hold, &err), 0);
    buf = encode(&ev, &len);
    assert_string_equal(
        buf, "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"watch\",\"value\":0}");
    free(buf);
    json_decref(hold);
}

/* A request event, validated, attributed and stamped as the server does,
 * comes back from the log unchanged. */
static void test_request_to_log(void **state)
{
    (void)state;
    json_t *o = parse("{\"user_id\":\"u \\\"7\\\" \\\\ \\u00fc\",\"item_id\":\"m/1\","
                      "\"type\":\"rating\",\"value\":4.5,\"ts\":1764200000,"
                      "\"request_id\":\"r-9\",\"experiment\":\"e\",\"variant\":\"b\"}");
    recd_evrec_t ev;
    expect_ok_obj(o, NOW, &ev);
    ev.n_ab = 1;
    ev.ab[0] = (recd_evrec_ab_t){ev.hint_experiment, ev.hint_variant};
    ev.forced = 1;
    ev.recv_ms = NOW * 1000 + 17;
    roundtrip(&ev);
    /* the hints themselves are not stored */
    size_t len;
    char *buf = encode(&ev, &len);
    assert_null(strstr(buf, "experiment"));
    assert_null(strstr(buf, "variant"));
    free(buf);
    json_decref(o);
}

/* ---- recd_evrec_decode ------------------------------------------------------------ */

static const char VALID[] = "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\","
                            "\"value\":1,\"request_id\":\"r\",\"ab\":{\"e\":\"a\"},"
                            "\"forced\":true,\"recv_ms\":1000}";

/* Decode exactly len bytes of a heap copy of text. */
static int decode_text(const char *text, size_t len, recd_evrec_t *ev, json_t **hold,
                       recd_err_t *err)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, text, len);
    int rc = recd_evrec_decode(p, len, ev, hold, err);
    free(p);
    return rc;
}

static void expect_decode_bad(const char *text, const char *want)
{
    recd_evrec_t ev;
    json_t *hold = (json_t *)&ev; /* must be reset to NULL */
    recd_err_t err = {0};
    int rc = decode_text(text, strlen(text), &ev, &hold, &err);
    if (rc != RECD_EINVAL)
        fail_msg("decoded (rc %d): %s", rc, text);
    assert_null(hold);
    assert_int_equal(err.code, RECD_EINVAL);
    if (!strstr(err.msg, want))
        fail_msg("message \"%s\" lacks \"%s\" for %s", err.msg, want, text);
}

/* VALID with key replaced by raw JSON text repl (NULL: removed). */
static void expect_decode_bad_key(const char *key, const char *repl)
{
    json_t *j = parse(VALID);
    if (repl)
        json_object_set_new(j, key, parse(repl));
    else
        json_object_del(j, key);
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(text);
    char want[96];
    snprintf(want, sizeof want, "payload: %s is missing or malformed", key);
    expect_decode_bad(text, want);
    free(text);
    json_decref(j);
}

static void test_decode_valid(void **state)
{
    (void)state;
    recd_evrec_t ev;
    json_t *hold = NULL;
    recd_err_t err = {0};
    assert_int_equal(decode_text(VALID, strlen(VALID), &ev, &hold, &err), 0);
    assert_non_null(hold);
    assert_int_equal(ev.ts, 1);
    assert_string_equal(ev.user_id, "u");
    assert_int_equal(ev.user_len, 1);
    assert_string_equal(ev.item_id, "i");
    assert_int_equal(ev.type, RECD_EV_CLICK);
    assert_true(ev.value == 1.0);
    assert_string_equal(ev.request_id, "r");
    assert_int_equal(ev.n_ab, 1);
    assert_string_equal(ev.ab[0].experiment, "e");
    assert_string_equal(ev.ab[0].variant, "a");
    assert_int_equal(ev.forced, 1);
    assert_int_equal(ev.recv_ms, 1000);
    assert_null(ev.hint_experiment);
    assert_null(ev.hint_variant);
    json_decref(hold);
    /* only len bytes are read: a valid prefix of a longer buffer */
    char buf[sizeof VALID + 8];
    memset(buf, ' ', sizeof buf);
    memcpy(buf, VALID, sizeof VALID - 1);
    memcpy(buf + sizeof VALID - 1, "garbage!", 8);
    assert_int_equal(recd_evrec_decode(buf, sizeof VALID - 1, &ev, &hold, &err), 0);
    json_decref(hold);
    assert_int_equal(recd_evrec_decode(buf, sizeof buf, &ev, &hold, &err), RECD_EINVAL);
    assert_null(hold);
    /* forced false and recv_ms 0 read as absent */
    const char *t = "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"watch\","
                    "\"value\":2.5,\"forced\":false,\"recv_ms\":0}";
    assert_int_equal(decode_text(t, strlen(t), &ev, &hold, &err), 0);
    assert_int_equal(ev.forced, 0);
    assert_int_equal(ev.recv_ms, 0);
    assert_null(ev.request_id);
    assert_int_equal(ev.n_ab, 0);
    assert_true(ev.value == 2.5);
    json_decref(hold);
}

static void test_decode_errors(void **state)
{
    (void)state;
    expect_decode_bad("", "payload is not JSON");
    expect_decode_bad("not json", "payload is not JSON");
    expect_decode_bad("{\"ts\":1", "payload is not JSON");
    expect_decode_bad("\"a string\"", "payload is not JSON");
    expect_decode_bad("42", "payload is not JSON");
    expect_decode_bad("{\"ts\":1,\"ts\":2}", "payload is not JSON"); /* duplicate key */
    expect_decode_bad("{\"u\":\"a\\u0000b\"}", "payload is not JSON");
    expect_decode_bad("{\"u\":\"\xff\"}", "payload is not JSON"); /* not UTF-8 */
    expect_decode_bad("[]", "payload is not a JSON object");
    expect_decode_bad("[{\"ts\":1}]", "payload is not a JSON object");
    expect_decode_bad("{}", "payload: ts is missing or malformed");
    /* each required key missing, then malformed */
    static const char *const required[] = {"ts", "user_id", "item_id", "type", "value"};
    for (int i = 0; i < 5; i++)
        expect_decode_bad_key(required[i], NULL);
    expect_decode_bad_key("ts", "\"1\"");
    expect_decode_bad_key("ts", "1.5");
    expect_decode_bad_key("ts", "null");
    static const char *const bad_ids[] = {"1",           "\"\"", "\"a\\u0001\"",
                                          "\"\\u007f\"", "null", "[\"u\"]"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        expect_decode_bad_key("user_id", bad_ids[i]);
        expect_decode_bad_key("item_id", bad_ids[i]);
    }
    char *longid = rep('x', RECD_EVREC_ID_MAX + 3);
    longid[0] = '"';
    longid[RECD_EVREC_ID_MAX + 2] = '"'; /* 257 x between the quotes */
    expect_decode_bad_key("user_id", longid);
    expect_decode_bad_key("item_id", longid);
    free(longid);
    expect_decode_bad_key("type", "\"Click\"");
    expect_decode_bad_key("type", "\"\"");
    expect_decode_bad_key("type", "4");
    expect_decode_bad_key("value", "\"1\"");
    expect_decode_bad_key("value", "null");
    expect_decode_bad_key("value", "true");
    expect_decode_bad_key("request_id", "17");
    expect_decode_bad_key("request_id", "null");
    expect_decode_bad_key("ab", "[]");
    expect_decode_bad_key("ab", "\"e:a\"");
    expect_decode_bad_key("forced", "1");
    expect_decode_bad_key("forced", "\"true\"");
    expect_decode_bad_key("forced", "null");
    expect_decode_bad_key("recv_ms", "1.5");
    expect_decode_bad_key("recv_ms", "\"1000\"");
    /* a value the JSON number grammar allows but a double cannot hold */
    expect_decode_bad("{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\","
                      "\"value\":1e999}",
                      "payload is not JSON");
}

static void test_decode_tolerant(void **state)
{
    (void)state;
    recd_evrec_t ev;
    json_t *hold = NULL;
    recd_err_t err = {0};
    /* unknown keys anywhere, in any order */
    const char *t = "{\"future\":{\"x\":[1,2,{}]},\"value\":3,\"type\":\"purchase\",\"zz\":null,"
                    "\"item_id\":\"i\",\"user_id\":\"u\",\"ts\":-5,\"experiment\":\"e\"}";
    assert_int_equal(decode_text(t, strlen(t), &ev, &hold, &err), 0);
    assert_int_equal(ev.ts, -5);
    assert_int_equal(ev.type, RECD_EV_PURCHASE);
    assert_true(ev.value == 3.0);
    assert_null(ev.hint_experiment);
    json_decref(hold);
    /* ab: non-string variants are skipped, at most RECD_EVREC_MAX_AB kept */
    t = "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1,"
        "\"ab\":{\"e0\":\"a\",\"bad\":1,\"e1\":\"b\",\"e2\":\"c\",\"e3\":\"d\",\"e4\":\"e\","
        "\"e5\":\"f\",\"e6\":\"g\",\"e7\":\"h\",\"e8\":\"i\",\"e9\":\"j\"}}";
    assert_int_equal(decode_text(t, strlen(t), &ev, &hold, &err), 0);
    assert_int_equal(ev.n_ab, RECD_EVREC_MAX_AB);
    for (int k = 0; k < RECD_EVREC_MAX_AB; k++) {
        char e[8], v[2] = {(char)('a' + k), '\0'};
        snprintf(e, sizeof e, "e%d", k);
        assert_string_equal(ev.ab[k].experiment, e);
        assert_string_equal(ev.ab[k].variant, v);
    }
    json_decref(hold);
    /* empty ab */
    t = "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1,\"ab\":{}}";
    assert_int_equal(decode_text(t, strlen(t), &ev, &hold, &err), 0);
    assert_int_equal(ev.n_ab, 0);
    json_decref(hold);
}

/* The fast decoder: takes recd's own payloads with the same fields as
 * recd_evrec_decode, and declines (1) every other shape so the caller falls
 * back; it never accepts what jansson refuses. */
static void test_decode_fast(void **state)
{
    (void)state;
    static const char *const take[] = {
        "{\"ts\":1764201600,\"user_id\":\"u42\",\"item_id\":\"i42\",\"type\":\"click\",\"value\":"
        "1}",
        "{\"ts\":-5,\"user_id\":\"\xc3\xa9t\xc3\xa9\",\"item_id\":\"i\",\"type\":\"watch\","
        "\"value\":310.5,\"request_id\":\"r-1\",\"ab\":{\"e1\":\"a\",\"e2\":\"b\"},\"forced\":true,"
        "\"recv_ms\":1764201600123}",
        "{\"ts\":0,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"rating\",\"value\":4.5e0,"
        "\"ab\":{}}",
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"impression\","
        "\"value\":123456789012345678}",
        /* an underflow is a value for jansson too (only overflow is refused) */
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"watch\","
        "\"value\":9.9999999999999991e-309}",
    };
    static const char *const decline[] = {
        /* escapes, key order, unknown keys, spaces: valid JSON, other shape */
        "{\"ts\":1,\"user_id\":\"u\\\"q\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1}",
        "{\"user_id\":\"u\",\"ts\":1,\"item_id\":\"i\",\"type\":\"click\",\"value\":1}",
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1,\"x\":1}",
        "{\"ts\": 1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1}",
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1,"
        "\"forced\":false}",
        /* not valid for jansson either */
        "{\"ts\":01,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1}",
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1.}",
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1e999}",
        "{\"ts\":1,\"user_id\":\"\xc0\xaf\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1}",
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1,"
        "\"ab\":{\"e\":\"a\",\"e\":\"b\"}}",
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"clack\",\"value\":1}",
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":1} ",
        "{\"ts\":1,\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\",\"value\":"
        "1234567890123456789}",
    };
    char buf[512];
    for (size_t i = 0; i < sizeof take / sizeof take[0]; i++) {
        recd_evrec_t fast, slow;
        json_t *hold;
        recd_err_t err;
        size_t n = strlen(take[i]);
        assert_int_equal(recd_evrec_decode_fast(take[i], n, &fast, buf, sizeof buf), 0);
        assert_int_equal(recd_evrec_decode(take[i], n, &slow, &hold, &err), 0);
        assert_int_equal(fast.ts, slow.ts);
        assert_string_equal(fast.user_id, slow.user_id);
        assert_int_equal(fast.user_len, slow.user_len);
        assert_string_equal(fast.item_id, slow.item_id);
        assert_int_equal(fast.type, slow.type);
        assert_true(fast.value == slow.value);
        assert_true((fast.request_id == NULL) == (slow.request_id == NULL));
        if (fast.request_id)
            assert_string_equal(fast.request_id, slow.request_id);
        assert_int_equal(fast.n_ab, slow.n_ab);
        for (size_t k = 0; k < fast.n_ab; k++) {
            assert_string_equal(fast.ab[k].experiment, slow.ab[k].experiment);
            assert_string_equal(fast.ab[k].variant, slow.ab[k].variant);
        }
        assert_int_equal(fast.forced, slow.forced);
        assert_int_equal(fast.recv_ms, slow.recv_ms);
        json_decref(hold);
        /* a buffer too small is a decline, not an overflow */
        assert_int_equal(recd_evrec_decode_fast(take[i], n, &fast, buf, 4), 1);
    }
    for (size_t i = 0; i < sizeof decline / sizeof decline[0]; i++) {
        recd_evrec_t ev;
        assert_int_equal(
            recd_evrec_decode_fast(decline[i], strlen(decline[i]), &ev, buf, sizeof buf), 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_json_minimal),
        cmocka_unit_test(test_from_json_full),
        cmocka_unit_test(test_ids_required),
        cmocka_unit_test(test_ids_length),
        cmocka_unit_test(test_ids_control_chars),
        cmocka_unit_test(test_valid_id),
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_ts),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_experiment_hints),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_payload_documented_example),
        cmocka_unit_test(test_payload_escaping),
        cmocka_unit_test(test_roundtrip_many),
        cmocka_unit_test(test_encoded_max_worst_case),
        cmocka_unit_test(test_value_exact),
        cmocka_unit_test(test_value_negative_zero),
        cmocka_unit_test(test_request_to_log),
        cmocka_unit_test(test_decode_valid),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_tolerant),
        cmocka_unit_test(test_decode_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
