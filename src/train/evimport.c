/*
 * Event-log importer (include/recd/dataset.h): the records of recd's durable
 * event log (include/recd/events.h frames them, include/recd/evrec.h defines
 * each payload) into a recd dataset, optionally on top of a base dataset
 * whose tables (with their feature columns) and events are kept.
 *
 * The log is read with the lock-free reader, so a running recd may keep
 * appending meanwhile; a record being written shows up as a torn tail and is
 * left out. A payload that does not decode is reported with its log offset
 * and skipped; damage to the framing is an error unless skip_corrupt.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "recd/dataset.h"
#include "recd/events.h"
#include "recd/evrec.h"

#define REPORT_MAX 1000 /* messages printed before the rest are only counted */

typedef struct evimp {
    const char *dir;
    recd_dataset_t *ds;
    const char **ucells, **icells; /* scratch rows: id then NULL (empty) cells */
    FILE *warn;
    size_t reported, unreported;
    recd_import_stats_t st;
    recd_err_t *err;
} evimp_t;

static void say(evimp_t *im, uint64_t offset, const char *why)
{
    im->st.skipped++;
    if (!im->warn)
        return;
    if (im->reported < REPORT_MAX) {
        fprintf(im->warn, "%s: record at log offset %llu: %s; skipped\n", im->dir,
                (unsigned long long)offset, why);
        im->reported++;
    } else {
        im->unreported++;
    }
}

/* Row of id in the users (user != 0) or items table, added with empty
 * feature cells when missing; negative RECD_E* on failure. */
static int64_t row_of(evimp_t *im, int user, const char *id)
{
    recd_dataset_t *ds = im->ds;
    int64_t r = user ? recd_dataset_user_row(ds, id) : recd_dataset_item_row(ds, id);
    if (r >= 0)
        return r;
    const char **cells = user ? im->ucells : im->icells;
    cells[0] = id;
    r = user ? recd_dataset_add_user(ds, cells, im->err)
             : recd_dataset_add_item(ds, cells, im->err);
    if (r >= 0 && !user)
        im->st.added_items++;
    return r;
}

static int on_record(void *ctx, uint64_t offset, const void *payload, uint32_t len)
{
    evimp_t *im = ctx;
    recd_evrec_t ev;
    json_t *hold = NULL;
    recd_err_t derr = {0};
    im->st.lines++;
    if (recd_evrec_decode(payload, len, &ev, &hold, &derr) != 0) {
        say(im, offset, derr.msg);
        return 0;
    }
    /* the dataset's value: the rating or the seconds watched, 0 otherwise
     * (docs/DATASET.md); it is stored as a 32-bit float */
    double v = ev.type == RECD_EV_RATING || ev.type == RECD_EV_WATCH ? ev.value : 0.0;
    if (!isfinite((float)v)) {
        char why[128];
        snprintf(why, sizeof why, "value %g does not fit a 32-bit float", v);
        say(im, offset, why);
        json_decref(hold);
        return 0;
    }
    int64_t u = row_of(im, 1, ev.user_id), i = u >= 0 ? row_of(im, 0, ev.item_id) : u;
    int rc = i < 0 ? (int)i
                   : recd_dataset_add_event(im->ds, (uint32_t)u, (uint32_t)i, ev.ts,
                                            (recd_ev_type_t)ev.type, (float)v, NULL, im->err);
    json_decref(hold);
    return rc;
}

/* A new dataset with base's columns, rows and events (truth is not carried
 * over: new rows would have none), or with id columns only. */
static recd_dataset_t *start(const char *dir, const recd_dataset_t *base, recd_err_t *err)
{
    static const char *const ID[] = {"id"};
    char source[1024];
    if (!base) {
        snprintf(source, sizeof source, "recd event log: %s", dir);
        return recd_dataset_new(source, 1, ID, 1, ID, 1, NULL, 0, err);
    }
    snprintf(source, sizeof source, "recd event log: %s, on top of: %s", dir,
             base->source ? base->source : "");
    recd_dataset_t *ds =
        recd_dataset_new(source, base->implicit, (const char *const *)base->items.names,
                         base->items.ncols, (const char *const *)base->users.names,
                         base->users.ncols, (const char *const *)base->ctx_names, base->nctx, err);
    if (!ds)
        return NULL;
    int rc = 0;
    for (size_t r = 0; rc == 0 && r < base->items.nrows; r++)
        if (recd_dataset_add_item(
                ds, (const char *const *)base->items.cells + r * base->items.ncols, err) < 0)
            rc = -1;
    for (size_t r = 0; rc == 0 && r < base->users.nrows; r++)
        if (recd_dataset_add_user(
                ds, (const char *const *)base->users.cells + r * base->users.ncols, err) < 0)
            rc = -1;
    if (rc == 0)
        rc = recd_dataset_reserve_events(ds, base->nevents, err);
    /* rows were added in the base's order, so row indices carry over */
    for (size_t e = 0; rc == 0 && e < base->nevents; e++) {
        const recd_event_t *x = &base->events[e];
        rc = recd_dataset_add_event(
            ds, x->user, x->item, x->ts, (recd_ev_type_t)x->type, x->value,
            base->nctx ? (const char *const *)base->ctx + e * base->nctx : NULL, err);
    }
    if (rc != 0) {
        recd_dataset_free(ds);
        return NULL;
    }
    return ds;
}

int recd_dataset_import_events(const char *dir, const recd_dataset_t *base, int skip_corrupt,
                               FILE *warn, recd_dataset_t **out, recd_import_stats_t *st,
                               recd_err_t *err)
{
    if (out)
        *out = NULL;
    if (st)
        memset(st, 0, sizeof *st);
    if (!dir || !*dir || !out)
        return recd_err_set(err, RECD_EINVAL, "event import: no log directory");
    evimp_t im;
    memset(&im, 0, sizeof im);
    im.dir = dir;
    im.warn = warn;
    im.err = err;
    im.ds = start(dir, base, err);
    if (!im.ds)
        return err && err->code < 0 ? err->code : RECD_ENOMEM;
    im.ucells = calloc(im.ds->users.ncols, sizeof *im.ucells);
    im.icells = calloc(im.ds->items.ncols, sizeof *im.icells);
    int rc = 0;
    if (!im.ucells || !im.icells)
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
    recd_evlog_iter_stats_t ist;
    memset(&ist, 0, sizeof ist);
    if (rc == 0)
        rc = recd_evlog_iterate(dir, 0, 0, skip_corrupt, on_record, &im, &ist, err);
    if (rc == 0 && warn) {
        if (im.unreported)
            fprintf(warn, "%s: %zu more undecodable records not shown\n", dir, im.unreported);
        if (ist.corrupt_regions)
            fprintf(warn, "%s: skipped %llu damaged region%s (%llu bytes) of the log\n", dir,
                    (unsigned long long)ist.corrupt_regions, ist.corrupt_regions == 1 ? "" : "s",
                    (unsigned long long)ist.corrupt_bytes);
        if (ist.tail_bytes)
            fprintf(warn,
                    "%s: left out a torn tail of %llu bytes at the end of the last segment (an "
                    "append cut short by a crash, or one in progress)\n",
                    dir, (unsigned long long)ist.tail_bytes);
    }
    if (rc == 0) {
        size_t n = im.ds->nevents, ratings = 0;
        for (size_t e = 0; e < n; e++)
            ratings += im.ds->events[e].type == RECD_EV_RATING;
        /* explicit only when every event is a rating; with no events at
         * all, the base's kind, else implicit (what a live log mostly is) */
        im.ds->implicit = n ? ratings != n : base ? base->implicit : 1;
        rc = recd_dataset_sort_events(im.ds, err);
    }
    free(im.ucells);
    free(im.icells);
    if (st)
        *st = im.st;
    if (rc != 0) {
        recd_dataset_free(im.ds);
        /* a callback failure returns the callback's (negative) code */
        return rc < 0 ? rc : RECD_ERR;
    }
    *out = im.ds;
    return 0;
}
