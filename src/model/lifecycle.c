/* Model lifecycle manager (include/recd/lifecycle.h). First cut: the
 * interface links; the commands report "not implemented yet". */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "recd/lifecycle.h"

int recd_lc_start(const recd_lc_opts_t *o, recd_err_t *err)
{
    (void)o;
    return recd_err_set(err, RECD_ERR, "model lifecycle: not implemented yet");
}

void recd_lc_stop(void) {}

static int not_yet(recd_lc_done_fn done, void *ctx)
{
    if (done) {
        recd_lc_result_t r = {0};
        r.rc = RECD_ERR;
        snprintf(r.msg, sizeof r.msg, "model lifecycle: not implemented yet");
        done(ctx, &r);
    }
    return 0;
}

int recd_lc_rescan(const char *name, recd_lc_done_fn done, void *ctx)
{
    (void)name;
    return not_yet(done, ctx);
}

int recd_lc_load(const char *name, int64_t version, int pin, recd_lc_done_fn done, void *ctx)
{
    (void)name;
    (void)version;
    (void)pin;
    return not_yet(done, ctx);
}

int recd_lc_unpin(const char *name, recd_lc_done_fn done, void *ctx)
{
    (void)name;
    return not_yet(done, ctx);
}

int recd_lc_rollback(const char *name, recd_lc_done_fn done, void *ctx)
{
    (void)name;
    return not_yet(done, ctx);
}

json_t *recd_lc_status_json(void)
{
    return json_pack("{s:{},s:b,s:i}", "models", "watching", 0, "queue", 0);
}

void recd_lc_status_prom(char **buf, size_t *len, size_t *cap)
{
    (void)buf;
    (void)len;
    (void)cap;
}
