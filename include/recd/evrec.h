/*
 * recd event records: validation of one feedback event from POST /v1/events
 * (DESIGN §2) and the payload format of one record of the event log
 * (include/recd/events.h frames it; this file defines what is inside).
 *
 * ---- payload -------------------------------------------------------------
 * One record holds one event as a compact JSON object (UTF-8, no newline),
 * keys always in this order, optional ones omitted when absent:
 *
 *   {"ts":1764201600,"user_id":"u42","item_id":"i42","type":"click",
 *    "value":1,"request_id":"r-17","ab":{"ranker-test":"deepfm"},
 *    "forced":true,"recv_ms":1764201600123}
 *
 *   ts          event time, unix seconds (the client's, or the receive time)
 *   user_id     1..256 bytes, no control characters
 *   item_id     1..256 bytes, no control characters
 *   type        impression | click | watch | rating | purchase
 *   value       finite, >= 0: seconds watched, stars, or 1 (the default)
 *   request_id  the /v1/recommend request the event answers (optional)
 *   ab          experiment -> variant the server attributed the event to
 *   forced      the variant came from an X-Recd-Variant (QA) request
 *   recv_ms     when recd accepted it, unix milliseconds
 *
 * JSON keeps the log readable with standard tools (recdctl events dump
 * prints payloads as they are), extensible (readers ignore keys they do not
 * know) and independent of struct layout; an event costs about 150 bytes.
 */
#ifndef RECD_EVREC_H
#define RECD_EVREC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "recd/core.h"

#define RECD_EVREC_ID_MAX 256      /* user_id, item_id bytes */
#define RECD_EVREC_REQID_MAX 128   /* request_id bytes */
#define RECD_EVREC_NAME_MAX 64     /* experiment / variant name bytes */
#define RECD_EVREC_MAX_AB 8        /* attributions stored per event */
#define RECD_EVREC_VALUE_MAX 1e9   /* largest value accepted */
#define RECD_EVREC_RATING_MAX 10.0 /* largest rating accepted */
#define RECD_EVREC_FUTURE_S 86400  /* ts may lead the server clock by this much */

typedef struct recd_evrec_ab {
    const char *experiment;
    const char *variant;
} recd_evrec_ab_t;

/* One event. Strings are NUL-terminated and borrowed (from the request's
 * JSON, or from the decoded payload's JSON held by the caller). */
typedef struct recd_evrec {
    int64_t ts; /* unix seconds */
    const char *user_id;
    size_t user_len;
    const char *item_id;
    size_t item_len;
    int type;               /* recd_ev_type_t (include/recd/dataset.h) */
    double value;           /* >= 0, finite */
    const char *request_id; /* NULL when absent */
    /* hints from the client (validated names, NULL when absent); the server
     * resolves them into ab[] and does not store them */
    const char *hint_experiment;
    const char *hint_variant;
    size_t n_ab;
    recd_evrec_ab_t ab[RECD_EVREC_MAX_AB];
    int forced;
    int64_t recv_ms; /* 0 when unknown */
} recd_evrec_t;

/* Validate one element of the request's "events" array into *ev (strings
 * borrowed from o). now_s is the server's clock (unix seconds): ts defaults
 * to it, and a ts more than RECD_EVREC_FUTURE_S ahead is refused. Accepted
 * keys: user_id, item_id, type, value, ts, request_id, experiment, variant.
 * On a bad event returns RECD_EINVAL with err->msg a sentence and field
 * (cap bytes) the offending key relative to the event ("type", "value",
 * or "" when the event itself is not an object). */
int recd_evrec_from_json(const json_t *o, int64_t now_s, recd_evrec_t *ev, char *field, size_t cap,
                         recd_err_t *err);

/* Bytes recd_evrec_encode needs for ev at most (including a NUL). */
size_t recd_evrec_encoded_max(const recd_evrec_t *ev);

/* Write ev's payload (the format above, NUL-terminated) into buf of cap
 * bytes (cap >= recd_evrec_encoded_max(ev)). Returns its length without the
 * NUL. */
size_t recd_evrec_encode(const recd_evrec_t *ev, char *buf, size_t cap);

/* Parse a payload into *ev. Strings point into *hold, a JSON value the
 * caller releases with json_decref once done with ev. Keys the reader does
 * not know are ignored; a missing or malformed known key is RECD_EINVAL
 * naming it. */
int recd_evrec_decode(const void *payload, size_t len, recd_evrec_t *ev, json_t **hold,
                      recd_err_t *err);

/* A fast decoder for payloads exactly as recd_evrec_encode writes them
 * (keys in order, strings without escapes): strings are copied,
 * NUL-terminated, into buf (cap bytes; len + 16 is always enough). Returns
 * 0 with *ev filled, or 1 when the payload is not in that exact shape (or
 * buf is too small): the caller then uses recd_evrec_decode, which accepts
 * every valid payload. Never fails otherwise; 1 is not an error. Agrees
 * with recd_evrec_decode on every payload it accepts (fuzzed). */
int recd_evrec_decode_fast(const void *payload, size_t len, recd_evrec_t *ev, char *buf,
                           size_t cap);

/* Whether s (n bytes) is a valid user or item id: 1..RECD_EVREC_ID_MAX
 * bytes, none of them a control character (< 0x20 or 0x7f). */
int recd_evrec_valid_id(const char *s, size_t n);

#endif
