/*
 * Admin API of the model lifecycle and the embedded trainer (DESIGN §2),
 * admin listener only:
 *
 *   GET  /admin/models                  recd_lc_status_json() as it is
 *   POST /admin/models/{name}/load      {"version": N, "pin": bool}; pin defaults to true
 *   POST /admin/models/{name}/pin       {"version": N}: load and pin
 *   POST /admin/models/{name}/unpin     drop the pin; the newest valid version serves
 *   POST /admin/models/{name}/rollback  serve (and pin) the previous valid version
 *   POST /admin/models/{name}/rescan    look for new versions of one model
 *   POST /admin/rescan                  look for new versions of every model
 *   POST /admin/train                   start a training cycle now (hooks.train)
 *
 * The admin listener runs on the main thread's loop, which also handles
 * signals, so no handler here may wait for a load. A lifecycle command is
 * queued for the manager thread (recd_lc_*) and the handler returns
 * RECD_HTTP_ASYNC; the completion callback runs on the manager thread and
 * posts a closure back to the request's loop (recd_http_server_post), which
 * answers the request there and logs the outcome. The request stays valid
 * until it is answered, even when its client has gone (server.c keeps it).
 *
 * Bodies are strict: a JSON object with only the fields named above (an
 * unknown field is a 400 naming it), or no body at all where every field
 * is optional; no query parameters. Every action is logged with its
 * outcome and the request id.
 */
#include "recd/api.h"

#include "api_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/core.h"
#include "recd/lifecycle.h"
#include "recd/model.h"

typedef enum {
    ACT_LOAD,
    ACT_PIN,
    ACT_UNPIN,
    ACT_ROLLBACK,
    ACT_RESCAN,
} action_t;

static const char *const ACT_NAMES[] = {"load", "pin", "unpin", "rollback", "rescan"};

/* One queued lifecycle command, from the handler to the answer. */
typedef struct admin_op {
    recd_http_req_t *r;
    recd_http_server_t *srv;
    unsigned worker;
    action_t act;
    int has_name;
    char name[64];
    int64_t want; /* load/pin: the version asked for */
    int pin;      /* load/pin: pin it */
    uint64_t t0_us;
    recd_lc_result_t res;
} admin_op_t;

/* ---- logging and errors --------------------------------------------------------------------- */

/* "load default 3", "rollback default", "rescan (every model)" for logs. */
static const char *what(char *buf, size_t cap, const char *act, const char *name, int64_t ver)
{
    if (!name)
        snprintf(buf, cap, "%s (every model)", act);
    else if (ver > 0)
        snprintf(buf, cap, "%s %s version %" PRId64, act, name, ver);
    else
        snprintf(buf, cap, "%s %s", act, name);
    return buf;
}

/* Answer an error and log the refusal (warn) with the request id. */
static void __attribute__((format(printf, 6, 7)))
refuse(recd_http_req_t *r, const char *subject, int status, const char *code, const char *field,
       const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    recd_log_write(RECD_LOG_WARN, recd_http_req_id(r), "admin: %s refused: %d %s: %s", subject,
                   status, code, msg);
    recd_http_respond_error(r, status, code, field, "%s", msg);
}

/* ---- bodies --------------------------------------------------------------------------------- */

/* The request body as a JSON object whose keys are all in `allowed`
 * (NULL-terminated). *out = NULL when the body is empty and empty_ok.
 * Returns 0, or -1 after answering (and logging) the error. */
static int body_object(recd_http_req_t *r, const char *subject, const char *const *allowed,
                       int empty_ok, json_t **out)
{
    *out = NULL;
    size_t len = 0;
    const char *b = recd_http_req_body(r, &len);
    size_t sp = 0;
    while (b && sp < len && (b[sp] == ' ' || b[sp] == '\t' || b[sp] == '\r' || b[sp] == '\n'))
        sp++;
    if (!b || sp == len) {
        if (empty_ok)
            return 0;
        refuse(r, subject, 400, "bad_request", "body",
               "expected a JSON object body, got an empty body");
        return -1;
    }
    json_t *j = recd_http_req_json(r); /* answers 400/415 itself */
    if (!j) {
        recd_log_write(RECD_LOG_WARN, recd_http_req_id(r),
                       "admin: %s refused: the body is not valid JSON", subject);
        return -1;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        refuse(r, subject, 400, "bad_request", "body", "expected a JSON object body");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach (j, key, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i]) {
            char shown[80];
            snprintf(shown, sizeof shown, "%s", key);
            json_decref(j);
            refuse(r, subject, 400, "bad_request", shown, "unknown field \"%s\"", shown);
            return -1;
        }
    }
    *out = j;
    return 0;
}

/* Refuse any query parameter (none of these endpoints takes one). */
static int no_query(recd_http_req_t *r, const char *subject)
{
    static const char *const none[] = {NULL};
    const char *q = recd_http_req_query_unknown(r, none);
    if (!q)
        return 0;
    char shown[80];
    snprintf(shown, sizeof shown, "%s", q);
    refuse(r, subject, 400, "bad_request", shown, "unknown query parameter \"%s\"", shown);
    return -1;
}

/* ---- completion ----------------------------------------------------------------------------- */

/* Runs on the request's loop: answer and log the outcome. */
static void op_finish(void *arg)
{
    admin_op_t *op = arg;
    recd_http_req_t *r = op->r;
    const recd_lc_result_t *res = &op->res;
    const char *act = ACT_NAMES[op->act];
    char subj[160];
    what(subj, sizeof subj, act, op->has_name ? op->name : NULL,
         op->act == ACT_LOAD || op->act == ACT_PIN ? op->want : 0);
    double ms = (double)(recd_time_mono_us() - op->t0_us) / 1000.0;
    const char *msg = res->msg[0] ? res->msg : (res->rc == 0 ? "done" : "failed");

    if (res->rc == 0) {
        if (op->has_name)
            recd_log_write(RECD_LOG_INFO, recd_http_req_id(r),
                           "admin: %s: ok in %.1f ms; serving version %" PRId64 " (was %" PRId64
                           "): %s",
                           subj, ms, res->version, res->previous, msg);
        else
            recd_log_write(RECD_LOG_INFO, recd_http_req_id(r), "admin: %s: ok in %.1f ms: %s", subj,
                           ms, msg);
        json_t *o = json_object();
        json_object_set_new(o, "action", json_string(act));
        json_object_set_new(o, "model", op->has_name ? json_string(op->name) : json_null());
        if (op->has_name) {
            json_object_set_new(o, "version", json_integer((json_int_t)res->version));
            json_object_set_new(o, "previous", json_integer((json_int_t)res->previous));
            if (op->act != ACT_RESCAN)
                json_object_set_new(
                    o, "pinned",
                    json_boolean(op->act == ACT_ROLLBACK ||
                                 ((op->act == ACT_LOAD || op->act == ACT_PIN) && op->pin)));
        }
        json_object_set_new(o, "message", json_string(msg));
        recd_http_respond_json(r, 200, o);
        free(op);
        return;
    }

    int status;
    const char *code, *field = NULL;
    /* ENOENT names what was missing: the model itself (it went away after
     * the command was queued; the manager's message says so), else the
     * version asked for, or a version to roll back to */
    int no_model = res->rc == RECD_ENOENT && strncmp(msg, "no model named", 14) == 0;
    if (no_model) {
        status = 404;
        code = "unknown_model";
        field = "model";
    } else if (res->rc == RECD_ENOENT && op->act == ACT_ROLLBACK) {
        status = 404;
        code = "no_previous_version";
    } else if (res->rc == RECD_ENOENT && (op->act == ACT_LOAD || op->act == ACT_PIN)) {
        status = 404;
        code = "unknown_version";
        field = "version";
    } else if (res->rc == RECD_ENOENT) {
        status = 404;
        code = "unknown_model";
        field = "model";
    } else if (res->rc == RECD_EAGAIN) {
        status = 503;
        code = "busy";
    } else {
        status = 422;
        code = "load_failed";
    }
    recd_log_write(RECD_LOG_WARN, recd_http_req_id(r), "admin: %s: failed in %.1f ms: %d %s: %s",
                   subj, ms, status, code, msg);
    recd_http_respond_error(r, status, code, field, "%s", msg);
    free(op);
}

/* Runs on the manager thread (or inside the recd_lc_* call): hand the
 * outcome to the request's loop. */
static void op_done(void *ctx, const recd_lc_result_t *res)
{
    admin_op_t *op = ctx;
    op->res = *res;
    if (recd_http_server_post(op->srv, op->worker, op_finish, op) < 0) {
        /* cannot happen short of running out of memory: the request stays
         * unanswered until its connection goes */
        recd_log_error("admin: %s %s finished (%s) but its answer cannot be posted back to "
                       "the admin loop",
                       ACT_NAMES[op->act], op->has_name ? op->name : "(every model)", res->msg);
        free(op);
    }
}

/* Queue op's command. Returns RECD_HTTP_ASYNC, or 0 after answering. */
static int op_queue(admin_op_t *op, const char *subj)
{
    recd_http_req_t *r = op->r;
    const char *name = op->has_name ? op->name : NULL;
    int rc;
    switch (op->act) {
    case ACT_LOAD:
    case ACT_PIN: rc = recd_lc_load(name, op->want, op->pin, op_done, op); break;
    case ACT_UNPIN: rc = recd_lc_unpin(name, op_done, op); break;
    case ACT_ROLLBACK: rc = recd_lc_rollback(name, op_done, op); break;
    default: rc = recd_lc_rescan(name, op_done, op); break;
    }
    if (rc == 0) {
        recd_log_write(RECD_LOG_DEBUG, recd_http_req_id(r), "admin: %s: queued", subj);
        return RECD_HTTP_ASYNC; /* op now belongs to the completion */
    }
    /* the manager refuses a name it neither serves nor has configured */
    if (rc == RECD_EINVAL)
        refuse(r, subj, 404, "unknown_model", "model", "no model named \"%s\" is managed",
               name ? name : "");
    else
        refuse(r, subj, 503, "busy", NULL, "the model manager cannot take the command now (%s)",
               rc == RECD_ENOMEM ? "out of memory" : "stopped");
    free(op); /* name points into it */
    return 0;
}

/* A command for the manager on behalf of r (answered 503 when out of
 * memory: then NULL). */
static admin_op_t *op_new(recd_http_req_t *r, const char *subj, action_t act)
{
    admin_op_t *op = calloc(1, sizeof *op);
    if (!op) {
        refuse(r, subj, 503, "busy", NULL, "out of memory");
        return NULL;
    }
    op->r = r;
    op->srv = recd_http_req_server(r);
    op->worker = recd_http_req_worker(r);
    op->act = act;
    op->t0_us = recd_time_mono_us();
    return op;
}

/* ---- handlers ------------------------------------------------------------------------------- */

int recd_api_h_admin_models(recd_http_req_t *r, void *arg)
{
    (void)arg;
    if (no_query(r, "list models") < 0)
        return 0;
    json_t *st = recd_lc_status_json();
    if (!st) {
        refuse(r, "list models", 500, "internal", NULL, "cannot render the model status");
        return 0;
    }
    recd_log_write(RECD_LOG_DEBUG, recd_http_req_id(r), "admin: list models: ok");
    recd_http_respond_json(r, 200, st);
    return 0;
}

/* The version field: a JSON integer >= 1. Returns 0 or -1 after answering. */
static int get_version(recd_http_req_t *r, const char *subj, json_t *body, int64_t *out)
{
    json_t *v = body ? json_object_get(body, "version") : NULL;
    if (!v) {
        refuse(r, subj, 400, "bad_request", "version", "version is required");
        return -1;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        refuse(r, subj, 400, "bad_request", "version",
               "version must be a positive integer (a version directory name)");
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int recd_api_h_admin_model_cmd(recd_http_req_t *r, void *arg)
{
    (void)arg;
    const char *path = recd_http_req_path(r);
    const char *slash = strrchr(path, '/');
    const char *verb = slash ? slash + 1 : "";
    const char *name = recd_http_req_param(r, "name");
    action_t act;
    if (strcmp(verb, "load") == 0)
        act = ACT_LOAD;
    else if (strcmp(verb, "pin") == 0)
        act = ACT_PIN;
    else if (strcmp(verb, "unpin") == 0)
        act = ACT_UNPIN;
    else if (strcmp(verb, "rollback") == 0)
        act = ACT_ROLLBACK;
    else if (strcmp(verb, "rescan") == 0)
        act = ACT_RESCAN;
    else {
        recd_http_respond_error(r, 404, "not_found", "path", "no such endpoint: %s", path);
        return 0;
    }
    char subj[160];
    /* the name goes into log lines only once it is known to be harmless */
    int good_name = recd_model_name_ok(name);
    what(subj, sizeof subj, ACT_NAMES[act], good_name ? name : "(invalid name)", 0);
    if (no_query(r, subj) < 0)
        return 0;
    if (!good_name) {
        refuse(r, subj, 404, "unknown_model", "model",
               "not a model name: a model name is 1..63 characters of A-Z a-z 0-9 . _ - "
               "and does not start with '.'");
        return 0;
    }

    static const char *const load_fields[] = {"version", "pin", NULL};
    static const char *const pin_fields[] = {"version", NULL};
    static const char *const no_fields[] = {NULL};
    json_t *body = NULL;
    int64_t want = 0;
    int pin = 1;
    if (act == ACT_LOAD || act == ACT_PIN) {
        if (body_object(r, subj, act == ACT_LOAD ? load_fields : pin_fields, 0, &body) < 0)
            return 0;
        int bad = get_version(r, subj, body, &want) < 0;
        json_t *p = bad ? NULL : json_object_get(body, "pin");
        if (p && !json_is_boolean(p)) {
            refuse(r, subj, 400, "bad_request", "pin", "pin must be true or false");
            bad = 1;
        } else if (p) {
            pin = json_is_true(p);
        }
        json_decref(body);
        if (bad)
            return 0;
        what(subj, sizeof subj, ACT_NAMES[act], name, want);
    } else {
        if (body_object(r, subj, no_fields, 1, &body) < 0)
            return 0;
        json_decref(body);
    }
    admin_op_t *op = op_new(r, subj, act);
    if (!op)
        return 0;
    op->has_name = 1;
    snprintf(op->name, sizeof op->name, "%s", name);
    op->want = want;
    op->pin = pin;
    return op_queue(op, subj);
}

int recd_api_h_admin_rescan(recd_http_req_t *r, void *arg)
{
    (void)arg;
    const char *subj = "rescan (every model)";
    static const char *const no_fields[] = {NULL};
    json_t *body = NULL;
    if (no_query(r, subj) < 0 || body_object(r, subj, no_fields, 1, &body) < 0)
        return 0;
    json_decref(body);
    admin_op_t *op = op_new(r, subj, ACT_RESCAN);
    if (!op)
        return 0;
    return op_queue(op, subj);
}

int recd_api_h_admin_train(recd_http_req_t *r, void *arg)
{
    const recd_api_hooks_t *h = arg;
    const char *subj = "train";
    static const char *const no_fields[] = {NULL};
    json_t *body = NULL;
    if (no_query(r, subj) < 0 || body_object(r, subj, no_fields, 1, &body) < 0)
        return 0;
    json_decref(body);
    recd_err_t err = {0};
    int rc = h && h->train ? h->train(h->arg, &err) : RECD_ENOENT;
    if (rc < 0 && rc != RECD_EAGAIN && rc != RECD_ENOENT &&
        (err.code == RECD_EAGAIN || err.code == RECD_ENOENT))
        rc = err.code; /* a hook that returns -1 and says why in err */
    if (rc == 0) {
        recd_log_write(RECD_LOG_INFO, recd_http_req_id(r),
                       "admin: train: ok, a training cycle was started");
        recd_http_respond_json(r, 202, json_pack("{s:b}", "started", 1));
        return 0;
    }
    if (rc == RECD_EAGAIN)
        refuse(r, subj, 409, "training_in_progress", NULL, "%s",
               err.msg[0] ? err.msg : "a training cycle is already running");
    else if (rc == RECD_ENOENT)
        refuse(r, subj, 404, "trainer_disabled", NULL, "%s",
               h && h->train && err.msg[0] ? err.msg
                                           : "the embedded trainer is disabled (trainer.enabled)");
    else
        refuse(r, subj, 503, "train_failed", NULL, "%s",
               err.msg[0] ? err.msg : "the training cycle could not be started");
    return 0;
}
