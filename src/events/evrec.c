/* Event records: request validation and the log payload (include/recd/evrec.h). */
#include "recd/evrec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/dataset.h"

int recd_evrec_valid_id(const char *s, size_t n)
{
    if (!s || n == 0 || n > RECD_EVREC_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > RECD_EVREC_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int bad(char *field, size_t cap, const char *key, recd_err_t *err, const char *msg)
{
    snprintf(field, cap, "%s", key);
    return recd_err_set(err, RECD_EINVAL, "%s", msg);
}

/* A string member that passes check, or absent (NULL) when optional. */
static int get_str(const json_t *o, const char *key, int required,
                   int (*check)(const char *, size_t), const char *what, const char **out,
                   size_t *len, char *field, size_t cap, recd_err_t *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (len)
        *len = 0;
    if (!v) {
        if (!required)
            return 0;
        char m[160];
        snprintf(m, sizeof m, "%s is required", key);
        return bad(field, cap, key, err, m);
    }
    if (!json_is_string(v)) {
        char m[160];
        snprintf(m, sizeof m, "%s must be a string", key);
        return bad(field, cap, key, err, m);
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n || !check(s, n)) {
        char m[200];
        snprintf(m, sizeof m, "%s must be %s", key, what);
        return bad(field, cap, key, err, m);
    }
    *out = s;
    if (len)
        *len = n;
    return 0;
}

static int valid_reqid(const char *s, size_t n)
{
    if (n == 0 || n > RECD_EVREC_REQID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

int recd_evrec_from_json(const json_t *o, int64_t now_s, recd_evrec_t *ev, char *field, size_t cap,
                         recd_err_t *err)
{
    static const char *const known[] = {"user_id", "item_id",    "type",       "value",
                                        "ts",      "request_id", "experiment", "variant"};
    memset(ev, 0, sizeof *ev);
    if (!json_is_object(o))
        return bad(field, cap, "", err, "an event must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach ((json_t *)o, key, val) {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(known[k], key) != 0)
            k++;
        if (k == sizeof known / sizeof known[0]) {
            char m[200];
            snprintf(m, sizeof m, "unknown field \"%.100s\"", key);
            return bad(field, cap, key, err, m);
        }
    }
    const char *idwhat = "1..256 bytes without control characters";
    if (get_str(o, "user_id", 1, recd_evrec_valid_id, idwhat, &ev->user_id, &ev->user_len, field,
                cap, err) < 0 ||
        get_str(o, "item_id", 1, recd_evrec_valid_id, idwhat, &ev->item_id, &ev->item_len, field,
                cap, err) < 0)
        return RECD_EINVAL;
    json_t *t = json_object_get(o, "type");
    if (!t)
        return bad(field, cap, "type", err, "type is required");
    int type =
        json_is_string(t) ? recd_ev_type_parse(json_string_value(t), json_string_length(t)) : -1;
    if (type < 0)
        return bad(field, cap, "type", err,
                   "type must be one of impression, click, watch, rating, purchase");
    ev->type = type;
    json_t *v = json_object_get(o, "value");
    if (!v) {
        if (type == RECD_EV_WATCH)
            return bad(field, cap, "value", err, "value (seconds watched) is required for watch");
        if (type == RECD_EV_RATING)
            return bad(field, cap, "value", err, "value (the rating) is required for rating");
        ev->value = 1.0;
    } else {
        if (!json_is_number(v))
            return bad(field, cap, "value", err, "value must be a number");
        double x = json_number_value(v);
        if (!isfinite(x) || x < 0 || x > RECD_EVREC_VALUE_MAX)
            return bad(field, cap, "value", err, "value must be a finite number in 0..1e9");
        if (type == RECD_EV_RATING && x > RECD_EVREC_RATING_MAX)
            return bad(field, cap, "value", err, "a rating must be in 0..10");
        ev->value = x;
    }
    json_t *ts = json_object_get(o, "ts");
    if (!ts) {
        ev->ts = now_s;
    } else {
        if (!json_is_integer(ts))
            return bad(field, cap, "ts", err, "ts must be an integer (unix seconds)");
        json_int_t x = json_integer_value(ts);
        if (x < 0)
            return bad(field, cap, "ts", err, "ts must be >= 0 (unix seconds)");
        if (x > now_s + RECD_EVREC_FUTURE_S)
            return bad(field, cap, "ts", err,
                       "ts is more than a day ahead of the server clock (unix seconds expected)");
        ev->ts = (int64_t)x;
    }
    if (get_str(o, "request_id", 0, valid_reqid, "1..128 printable ASCII characters",
                &ev->request_id, NULL, field, cap, err) < 0 ||
        get_str(o, "experiment", 0, valid_name, "1..64 characters of [A-Za-z0-9_.-]",
                &ev->hint_experiment, NULL, field, cap, err) < 0 ||
        get_str(o, "variant", 0, valid_name, "1..64 characters of [A-Za-z0-9_.-]",
                &ev->hint_variant, NULL, field, cap, err) < 0)
        return RECD_EINVAL;
    if (ev->hint_experiment && !ev->hint_variant)
        return bad(field, cap, "variant", err, "experiment needs variant");
    return 0;
}

/* ---- payload ------------------------------------------------------------------ */

/* Escaped JSON string (with quotes) of s[0..n) into p; returns bytes
 * written. Worst case 6 bytes per input byte plus 2. */
static size_t put_str(char *p, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *q = p;
    *q++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *q++ = '\\';
            *q++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            *q++ = '\\';
            *q++ = 'u';
            *q++ = '0';
            *q++ = '0';
            *q++ = hex[c >> 4];
            *q++ = hex[c & 15];
        } else {
            *q++ = (char)c;
        }
    }
    *q++ = '"';
    return (size_t)(q - p);
}

size_t recd_evrec_encoded_max(const recd_evrec_t *ev)
{
    size_t n = 256 + 6 * (ev->user_len + ev->item_len);
    if (ev->request_id)
        n += 16 + 6 * strlen(ev->request_id);
    for (size_t i = 0; i < ev->n_ab; i++)
        n += 8 + 6 * (strlen(ev->ab[i].experiment) + strlen(ev->ab[i].variant));
    return n;
}

size_t recd_evrec_encode(const recd_evrec_t *ev, char *buf, size_t cap)
{
    (void)cap; /* the caller sized buf with recd_evrec_encoded_max */
    char *p = buf;
    p += sprintf(p, "{\"ts\":%lld,\"user_id\":", (long long)ev->ts);
    p += put_str(p, ev->user_id, ev->user_len);
    p += sprintf(p, ",\"item_id\":");
    p += put_str(p, ev->item_id, ev->item_len);
    /* %.17g prints every double so that strtod gives it back exactly; -0
     * (which JSON readers take for the integer 0) is written as 0, so
     * decoding a payload and encoding it again gives the same bytes */
    double value = ev->value == 0 ? 0.0 : ev->value;
    p += sprintf(p, ",\"type\":\"%s\",\"value\":%.17g", recd_ev_type_name((recd_ev_type_t)ev->type),
                 value);
    if (ev->request_id) {
        p += sprintf(p, ",\"request_id\":");
        p += put_str(p, ev->request_id, strlen(ev->request_id));
    }
    if (ev->n_ab) {
        p += sprintf(p, ",\"ab\":{");
        for (size_t i = 0; i < ev->n_ab; i++) {
            if (i)
                *p++ = ',';
            p += put_str(p, ev->ab[i].experiment, strlen(ev->ab[i].experiment));
            *p++ = ':';
            p += put_str(p, ev->ab[i].variant, strlen(ev->ab[i].variant));
        }
        *p++ = '}';
    }
    if (ev->forced)
        p += sprintf(p, ",\"forced\":true");
    if (ev->recv_ms)
        p += sprintf(p, ",\"recv_ms\":%lld", (long long)ev->recv_ms);
    *p++ = '}';
    *p = '\0';
    return (size_t)(p - buf);
}

int recd_evrec_decode(const void *payload, size_t len, recd_evrec_t *ev, json_t **hold,
                      recd_err_t *err)
{
    memset(ev, 0, sizeof *ev);
    *hold = NULL;
    json_error_t je;
    json_t *o = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return recd_err_set(err, RECD_EINVAL, "payload is not JSON: %s (column %d)", je.text,
                            je.column);
    if (!json_is_object(o)) {
        json_decref(o);
        return recd_err_set(err, RECD_EINVAL, "payload is not a JSON object");
    }
    const char *bad_key = NULL;
    json_t *ts = json_object_get(o, "ts"), *u = json_object_get(o, "user_id"),
           *it = json_object_get(o, "item_id"), *t = json_object_get(o, "type"),
           *v = json_object_get(o, "value"), *rid = json_object_get(o, "request_id"),
           *ab = json_object_get(o, "ab"), *fo = json_object_get(o, "forced"),
           *rm = json_object_get(o, "recv_ms");
    int type = t && json_is_string(t)
                   ? recd_ev_type_parse(json_string_value(t), json_string_length(t))
                   : -1;
    if (!json_is_integer(ts))
        bad_key = "ts";
    else if (!json_is_string(u) ||
             !recd_evrec_valid_id(json_string_value(u), json_string_length(u)))
        bad_key = "user_id";
    else if (!json_is_string(it) ||
             !recd_evrec_valid_id(json_string_value(it), json_string_length(it)))
        bad_key = "item_id";
    else if (type < 0)
        bad_key = "type";
    else if (!json_is_number(v) || !isfinite(json_number_value(v)))
        bad_key = "value";
    else if (rid && !json_is_string(rid))
        bad_key = "request_id";
    else if (ab && !json_is_object(ab))
        bad_key = "ab";
    else if (fo && !json_is_boolean(fo))
        bad_key = "forced";
    else if (rm && !json_is_integer(rm))
        bad_key = "recv_ms";
    if (bad_key) {
        json_decref(o);
        return recd_err_set(err, RECD_EINVAL, "payload: %s is missing or malformed", bad_key);
    }
    ev->ts = (int64_t)json_integer_value(ts);
    ev->user_id = json_string_value(u);
    ev->user_len = json_string_length(u);
    ev->item_id = json_string_value(it);
    ev->item_len = json_string_length(it);
    ev->type = type;
    ev->value = json_number_value(v);
    ev->request_id = rid ? json_string_value(rid) : NULL;
    if (ab) {
        const char *k;
        json_t *x;
        json_object_foreach (ab, k, x) {
            if (!json_is_string(x) || ev->n_ab == RECD_EVREC_MAX_AB)
                continue;
            ev->ab[ev->n_ab].experiment = k;
            ev->ab[ev->n_ab].variant = json_string_value(x);
            ev->n_ab++;
        }
    }
    ev->forced = fo ? json_is_true(fo) : 0;
    ev->recv_ms = rm ? (int64_t)json_integer_value(rm) : 0;
    *hold = o;
    return 0;
}

/* ---- fast path for recd's own payloads ------------------------------------------ */

typedef struct fcur {
    const char *p, *end;
    char *out, *oend;
} fcur_t;

static int f_lit(fcur_t *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return -1;
    c->p += n;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4 || (size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F))
        return 0;
    return n;
}

/* A string without escapes or control bytes (valid UTF-8), copied
 * NUL-terminated into the output buffer. */
static int f_str(fcur_t *c, const char **s, size_t *len)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    const char *b = ++c->p;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '\\' || ch < 0x20)
            return -1;
        if (ch >= 0x80) {
            size_t n = utf8_seq((const unsigned char *)c->p, (const unsigned char *)c->end);
            if (!n)
                return -1;
            c->p += n;
            continue;
        }
        c->p++;
    }
    if (c->p >= c->end)
        return -1;
    size_t n = (size_t)(c->p - b);
    c->p++;
    if ((size_t)(c->oend - c->out) < n + 1)
        return -1;
    memcpy(c->out, b, n);
    c->out[n] = '\0';
    *s = c->out;
    if (len)
        *len = n;
    c->out += n + 1;
    return 0;
}

static int f_int(fcur_t *c, int64_t *v)
{
    const char *b = c->p;
    int neg = 0;
    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    uint64_t x = 0;
    const char *d = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (x > (UINT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*c->p - '0');
        c->p++;
    }
    if (c->p == d || (c->p - d > 1 && *d == '0') || x > (uint64_t)INT64_MAX ||
        (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')))
        return -1;
    (void)b;
    *v = neg ? -(int64_t)x : (int64_t)x;
    return 0;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number_text(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return 0;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

int recd_evrec_decode_fast(const void *payload, size_t len, recd_evrec_t *ev, char *buf, size_t cap)
{
    memset(ev, 0, sizeof *ev);
    fcur_t c = {payload, (const char *)payload + len, buf, buf + cap};
    const char *type;
    size_t tlen;
    if (f_lit(&c, "{\"ts\":") < 0 || f_int(&c, &ev->ts) < 0 || f_lit(&c, ",\"user_id\":") < 0 ||
        f_str(&c, &ev->user_id, &ev->user_len) < 0 || f_lit(&c, ",\"item_id\":") < 0 ||
        f_str(&c, &ev->item_id, &ev->item_len) < 0 || f_lit(&c, ",\"type\":") < 0 ||
        f_str(&c, &type, &tlen) < 0 || f_lit(&c, ",\"value\":") < 0)
        return 1;
    int t = recd_ev_type_parse(type, tlen);
    if (t < 0 || !recd_evrec_valid_id(ev->user_id, ev->user_len) ||
        !recd_evrec_valid_id(ev->item_id, ev->item_len))
        return 1;
    ev->type = t;
    /* the number: strtod needs a terminator, so copy its characters */
    char num[64];
    size_t k = 0;
    while (c.p < c.end && k < sizeof num - 1 &&
           ((*c.p >= '0' && *c.p <= '9') || *c.p == '-' || *c.p == '+' || *c.p == '.' ||
            *c.p == 'e' || *c.p == 'E'))
        num[k++] = *c.p++;
    num[k] = '\0';
    /* strict JSON number grammar; long integers are left to jansson, which
     * refuses those past int64 */
    if (!k || !json_number_text(num) || (k > 18 && !strpbrk(num, ".eE")))
        return 1; /* (18 digits always fit int64; int64 -> double rounds as strtod) */
    /* as jansson: an underflow (ERANGE with a tiny or zero result) is a
     * value, an overflow (infinite) is refused */
    char *endp;
    ev->value = strtod(num, &endp);
    if (*endp || !isfinite(ev->value))
        return 1;
    if (c.p < c.end && f_lit(&c, ",\"request_id\":") == 0 && f_str(&c, &ev->request_id, NULL) < 0)
        return 1;
    if (c.p < c.end && f_lit(&c, ",\"ab\":{") == 0) {
        if (c.p < c.end && *c.p == '}')
            c.p++;
        else
            for (;;) {
                const char *e, *v;
                if (f_str(&c, &e, NULL) < 0 || f_lit(&c, ":") < 0 || f_str(&c, &v, NULL) < 0)
                    return 1;
                for (size_t i = 0; i < ev->n_ab; i++)
                    if (strcmp(ev->ab[i].experiment, e) == 0)
                        return 1; /* a duplicate key: jansson refuses the payload */
                if (ev->n_ab == RECD_EVREC_MAX_AB)
                    return 1; /* more than the reader keeps: let jansson decide */
                ev->ab[ev->n_ab].experiment = e;
                ev->ab[ev->n_ab].variant = v;
                ev->n_ab++;
                if (f_lit(&c, ",") == 0)
                    continue;
                if (f_lit(&c, "}") < 0)
                    return 1;
                break;
            }
    }
    if (c.p < c.end && f_lit(&c, ",\"forced\":true") == 0)
        ev->forced = 1;
    if (c.p < c.end && f_lit(&c, ",\"recv_ms\":") == 0 && f_int(&c, &ev->recv_ms) < 0)
        return 1;
    if (f_lit(&c, "}") < 0 || c.p != c.end)
        return 1;
    return 0;
}
