/*
 * Event records (src/events/evrec.c), both directions:
 *
 * (a) the bytes as a log payload: recd_evrec_decode never crashes, and when
 *     it accepts them, encoding the record and decoding that again gives the
 *     same fields; a second encoding is byte-identical to the first (the
 *     payload format is a fixed point after one pass).
 * (b) the bytes as JSON (\u0000 allowed, so embedded NULs reach the
 *     validator): an object is validated as one POST /v1/events element, and
 *     so is every element of an "events" array in it. An accepted event obeys
 *     every documented bound and survives encode -> decode unchanged (with
 *     attributions, forced and recv_ms filled in the way the server does).
 *
 * Everything is freed (LeakSanitizer checks that).
 */
#include <math.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "recd/dataset.h"
#include "recd/evrec.h"

#define NOW ((int64_t)1764201600)

static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* The fields a payload stores are equal. value compares with ==: a -0.0
 * from a request is written as 0 and read back as +0.0. */
static void check_same(const recd_evrec_t *a, const recd_evrec_t *b)
{
    FUZZ_CHECK(a->ts == b->ts);
    FUZZ_CHECK(a->user_len == b->user_len && memcmp(a->user_id, b->user_id, a->user_len) == 0);
    FUZZ_CHECK(a->item_len == b->item_len && memcmp(a->item_id, b->item_id, a->item_len) == 0);
    FUZZ_CHECK(b->user_id[b->user_len] == '\0' && b->item_id[b->item_len] == '\0');
    FUZZ_CHECK(a->type == b->type);
    FUZZ_CHECK(a->value == b->value);
    FUZZ_CHECK(str_eq(a->request_id, b->request_id));
    FUZZ_CHECK(a->n_ab == b->n_ab);
    for (size_t i = 0; i < a->n_ab; i++) {
        FUZZ_CHECK(str_eq(a->ab[i].experiment, b->ab[i].experiment));
        FUZZ_CHECK(str_eq(a->ab[i].variant, b->ab[i].variant));
    }
    FUZZ_CHECK(!!a->forced == !!b->forced);
    FUZZ_CHECK(a->recv_ms == b->recv_ms);
}

/* A decoded record is one the encoder can write. */
static void check_decoded(const recd_evrec_t *ev)
{
    FUZZ_CHECK(recd_evrec_valid_id(ev->user_id, ev->user_len));
    FUZZ_CHECK(recd_evrec_valid_id(ev->item_id, ev->item_len));
    FUZZ_CHECK(ev->type >= 0 && ev->type < RECD_EV_NTYPES);
    FUZZ_CHECK(isfinite(ev->value));
    FUZZ_CHECK(ev->n_ab <= RECD_EVREC_MAX_AB);
    for (size_t i = 0; i < ev->n_ab; i++)
        FUZZ_CHECK(ev->ab[i].experiment != NULL && ev->ab[i].variant != NULL);
    FUZZ_CHECK(ev->forced == 0 || ev->forced == 1);
}

/* Encode into an exactly sized buffer; the caller frees. */
static char *encode(const recd_evrec_t *ev, size_t *len)
{
    size_t cap = recd_evrec_encoded_max(ev);
    char *buf = malloc(cap);
    FUZZ_CHECK(buf != NULL);
    size_t n = recd_evrec_encode(ev, buf, cap);
    FUZZ_CHECK(n < cap);
    FUZZ_CHECK(strlen(buf) == n);
    FUZZ_CHECK(n >= 2 && buf[0] == '{' && buf[n - 1] == '}');
    *len = n;
    return buf;
}

/* encode(ev) decodes to the same fields and re-encodes to the same bytes. */
static void check_roundtrip(const recd_evrec_t *ev)
{
    size_t n1, n2;
    char *p1 = encode(ev, &n1);
    recd_evrec_t back;
    json_t *hold = NULL;
    recd_err_t err = {0};
    int rc = recd_evrec_decode(p1, n1, &back, &hold, &err);
    if (rc != 0)
        fprintf(stderr, "re-decode of %s: %s\n", p1, err.msg);
    FUZZ_CHECK(rc == 0 && hold != NULL);
    check_decoded(&back);
    check_same(ev, &back);
    char *p2 = encode(&back, &n2);
    if (n1 != n2 || memcmp(p1, p2, n1) != 0)
        fprintf(stderr, "encodings differ:\n  %s\n  %s\n", p1, p2);
    FUZZ_CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0);
    /* the fast decoder takes every encoding without escapes (integers of up
     * to 18 digits), and agrees */
    static char fbuf[1 << 16];
    recd_evrec_t fast;
    if (!memchr(p1, '\\', n1) && n1 + 16 <= sizeof fbuf) {
        FUZZ_CHECK(recd_evrec_decode_fast(p1, n1, &fast, fbuf, sizeof fbuf) == 0);
        check_same(&back, &fast);
    }
    free(p2);
    json_decref(hold);
    free(p1);
}

/* (a) */
static void fuzz_decode(const uint8_t *data, size_t size)
{
    recd_evrec_t ev;
    json_t *hold = (json_t *)&ev; /* must be overwritten */
    recd_err_t err = {0};
    int rc = recd_evrec_decode(data, size, &ev, &hold, &err);
    if (fuzz_verbose())
        fprintf(stderr, "decode: %s\n", rc == 0 ? "ok" : err.msg);
    /* (a') the fast decoder accepts only what jansson accepts, with the
     * same fields */
    static char fbuf[1 << 16];
    recd_evrec_t fast;
    int frc = recd_evrec_decode_fast(data, size, &fast, fbuf, sizeof fbuf);
    FUZZ_CHECK(frc == 0 || frc == 1);
    if (frc == 0) {
        if (rc != 0)
            fprintf(stderr, "fast decoder accepted what jansson refused: %s\n", err.msg);
        FUZZ_CHECK(rc == 0);
        check_same(&ev, &fast);
    }
    if (rc != 0) {
        FUZZ_CHECK(rc == RECD_EINVAL && err.code == RECD_EINVAL);
        FUZZ_CHECK(hold == NULL && err.msg[0] != '\0');
        return;
    }
    FUZZ_CHECK(hold != NULL);
    check_decoded(&ev);
    check_roundtrip(&ev);
    json_decref(hold);
}

static int printable_ascii(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RECD_EVREC_REQID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= RECD_EVREC_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_.-") == n;
}

/* (b) one element; salt varies the server-side fields. */
static void fuzz_element(const json_t *o, unsigned salt)
{
    recd_evrec_t ev;
    char field[64];
    recd_err_t err = {0};
    memset(field, 'X', sizeof field);
    int rc = recd_evrec_from_json(o, NOW, &ev, field, sizeof field, &err);
    if (fuzz_verbose())
        fprintf(stderr, "event: %.63s%s%s\n", rc == 0 ? "ok" : field, rc == 0 ? "" : ": ",
                rc == 0 ? "" : err.msg);
    if (rc != 0) {
        FUZZ_CHECK(rc == RECD_EINVAL && err.code == RECD_EINVAL && err.msg[0] != '\0');
        FUZZ_CHECK(memchr(field, '\0', sizeof field) != NULL);
        /* the field names a key of the event (a missing required one, or
         * one present; long unknown keys are cut to fit), or is "" when the
         * event is not an object */
        if (!json_is_object(o))
            FUZZ_CHECK(field[0] == '\0');
        else if (strlen(field) < sizeof field - 1)
            FUZZ_CHECK(json_object_get(o, field) || strcmp(field, "user_id") == 0 ||
                       strcmp(field, "item_id") == 0 || strcmp(field, "type") == 0 ||
                       strcmp(field, "value") == 0 || strcmp(field, "variant") == 0);
        return;
    }
    FUZZ_CHECK(json_is_object(o));
    FUZZ_CHECK(recd_evrec_valid_id(ev.user_id, ev.user_len) && strlen(ev.user_id) == ev.user_len);
    FUZZ_CHECK(recd_evrec_valid_id(ev.item_id, ev.item_len) && strlen(ev.item_id) == ev.item_len);
    FUZZ_CHECK(ev.type >= 0 && ev.type < RECD_EV_NTYPES);
    FUZZ_CHECK(isfinite(ev.value) && ev.value >= 0 && ev.value <= RECD_EVREC_VALUE_MAX);
    FUZZ_CHECK(ev.type != RECD_EV_RATING || ev.value <= RECD_EVREC_RATING_MAX);
    FUZZ_CHECK(json_object_get(o, "value") || ev.value == 1.0);
    FUZZ_CHECK(ev.ts >= 0 && ev.ts <= NOW + RECD_EVREC_FUTURE_S);
    FUZZ_CHECK(json_object_get(o, "ts") || ev.ts == NOW);
    FUZZ_CHECK(!ev.request_id || printable_ascii(ev.request_id));
    FUZZ_CHECK(!ev.hint_experiment || name_ok(ev.hint_experiment));
    FUZZ_CHECK(!ev.hint_variant || name_ok(ev.hint_variant));
    FUZZ_CHECK(!ev.hint_experiment || ev.hint_variant);
    FUZZ_CHECK(ev.n_ab == 0 && ev.forced == 0 && ev.recv_ms == 0);
    check_roundtrip(&ev);
    /* as the server stores it: the hint as an attribution (plus a fixed
     * one, so there can be two), forced, recv_ms */
    if (ev.hint_experiment) {
        ev.ab[ev.n_ab++] = (recd_evrec_ab_t){ev.hint_experiment, ev.hint_variant};
        if (strcmp(ev.hint_experiment, "zz-fuzz") != 0 && (salt & 1))
            ev.ab[ev.n_ab++] = (recd_evrec_ab_t){"zz-fuzz", "b"};
    }
    ev.forced = (salt >> 1) & 1;
    ev.recv_ms = (salt & 4) ? NOW * 1000 + (int64_t)salt : 0;
    check_roundtrip(&ev);
}

/* (b) */
static void fuzz_request(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!j)
        return;
    unsigned salt = size > 0 ? data[size - 1] : 0;
    if (json_is_object(j)) {
        fuzz_element(j, salt);
        json_t *list = json_object_get(j, "events");
        if (json_is_array(list)) {
            size_t i;
            json_t *e;
            json_array_foreach (list, i, e) {
                if (i == 64)
                    break;
                fuzz_element(e, salt + (unsigned)i);
            }
        }
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size);
    fuzz_request(data, size);
    return 0;
}
