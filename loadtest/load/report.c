/* recd-load: the report (see report.h). */
#include "report.h"

#include <stdlib.h>
#include <string.h>

lg_report_t *lg_report_new(void)
{
    return calloc(1, sizeof(lg_report_t));
}

void lg_report_free(lg_report_t *r)
{
    free(r);
}

void lg_report_scheduled(lg_report_t *r, int ep, double t_s)
{
    uint64_t total = 0;
    for (int e = 0; e < LG_EP_COUNT; e++)
        total += r->ep[e].scheduled;
    if (total == 0)
        r->first_t_s = t_s;
    r->last_t_s = t_s;
    r->ep[ep].scheduled++;
}

void lg_report_outcome(lg_report_t *r, int ep, lg_outcome_t out, int status, uint64_t latency_us,
                       uint64_t service_us, uint32_t nevents)
{
    lg_ep_stats_t *e = &r->ep[ep];
    switch (out) {
    case LG_OUT_RESPONSE:
        e->completed++;
        if (status >= 0 && status < LG_STATUS_MAX)
            e->status[status]++;
        if (status >= 200 && status < 300) {
            e->ok++;
            e->events_sent += nevents;
        }
        recd_hist_record(&e->latency, latency_us);
        recd_hist_record(&r->latency, latency_us);
        recd_hist_record(&r->service, service_us);
        break;
    case LG_OUT_TIMEOUT: e->timeouts++; break;
    case LG_OUT_CONN_ERROR: e->conn_errors++; break;
    case LG_OUT_NOT_SENT:
        e->not_sent++;
        e->timeouts++;
        break;
    }
}

double lg_report_scheduled_rps(const lg_report_t *r)
{
    uint64_t n = 0;
    for (int e = 0; e < LG_EP_COUNT; e++)
        n += r->ep[e].scheduled;
    double span = r->last_t_s - r->first_t_s;
    return n >= 2 && span > 0 ? (double)(n - 1) / span : 0.0;
}

/* ---- JSON ----------------------------------------------------------------------- */

static json_t *hist_json(const recd_hist_t *h)
{
    recd_hist_snap_t *s = calloc(1, sizeof *s);
    if (!s)
        return json_null();
    recd_hist_merge(s, h);
    json_t *o = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:f,s:I}", "p50", (json_int_t)recd_hist_quantile(s, 0.5), "p90",
        (json_int_t)recd_hist_quantile(s, 0.9), "p99", (json_int_t)recd_hist_quantile(s, 0.99),
        "p999", (json_int_t)recd_hist_quantile(s, 0.999), "max", (json_int_t)s->max_us, "mean",
        s->count ? (double)s->sum_us / (double)s->count : 0.0, "count", (json_int_t)s->count);
    free(s);
    return o;
}

static json_t *status_json(const uint64_t *status)
{
    json_t *o = json_object();
    for (int c = 0; c < LG_STATUS_MAX; c++) {
        if (!status[c])
            continue;
        char k[8];
        snprintf(k, sizeof k, "%d", c);
        json_object_set_new(o, k, json_integer((json_int_t)status[c]));
    }
    return o;
}

typedef struct totals {
    uint64_t scheduled, completed, ok, timeouts, conn_errors, not_sent;
    uint64_t status[LG_STATUS_MAX];
} totals_t;

static void sum(const lg_report_t *r, totals_t *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < LG_EP_COUNT; i++) {
        const lg_ep_stats_t *e = &r->ep[i];
        t->scheduled += e->scheduled;
        t->completed += e->completed;
        t->ok += e->ok;
        t->timeouts += e->timeouts;
        t->conn_errors += e->conn_errors;
        t->not_sent += e->not_sent;
        for (int c = 0; c < LG_STATUS_MAX; c++)
            t->status[c] += e->status[c];
    }
}

json_t *lg_report_json(const lg_report_t *r)
{
    totals_t *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    sum(r, t);
    double d = r->duration_s;
    json_t *o = json_object();
    json_object_set_new(o, "tool", json_string("recd-load"));
    json_object_set_new(o, "version", json_string(r->version ? r->version : "unknown"));
    json_object_set_new(o, "target", r->target ? json_string(r->target) : json_null());
    json_object_set_new(o, "scenario", json_string(r->scenario ? r->scenario : ""));
    json_object_set_new(o, "bundle",
                        json_pack("{s:s,s:s,s:I,s:I}", "dir", r->bundle_dir ? r->bundle_dir : "",
                                  "name", r->bundle_name ? r->bundle_name : "", "version",
                                  (json_int_t)r->bundle_version, "items",
                                  (json_int_t)r->bundle_items));
    json_object_set_new(o, "arrival", json_string(r->arrival ? r->arrival : ""));
    json_object_set_new(o, "seed", json_integer((json_int_t)r->seed));
    json_object_set_new(o, "connections_max", json_integer(r->connections_max));
    json_object_set_new(o, "connections_opened", json_integer((json_int_t)r->connections_opened));
    json_object_set_new(o, "offered_rps", json_real(r->offered_rps));
    json_object_set_new(o, "scheduled_rps", json_real(lg_report_scheduled_rps(r)));
    json_object_set_new(o, "duration_s", json_real(d));
    json_object_set_new(
        o, "requests",
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "scheduled", (json_int_t)t->scheduled,
                  "sent", (json_int_t)(t->scheduled - t->not_sent), "completed",
                  (json_int_t)t->completed, "ok", (json_int_t)t->ok, "http_errors",
                  (json_int_t)(t->completed - t->ok), "timeouts", (json_int_t)t->timeouts,
                  "conn_errors", (json_int_t)t->conn_errors, "not_sent", (json_int_t)t->not_sent));
    if (r->dry_run) {
        /* nothing was sent: no "sent" for the schedule-only run */
        json_object_set_new(json_object_get(o, "requests"), "sent", json_integer(0));
    }
    json_object_set_new(o, "throughput_rps", json_real(d > 0 ? (double)t->completed / d : 0.0));
    json_object_set_new(o, "ok_rps", json_real(d > 0 ? (double)t->ok / d : 0.0));
    json_object_set_new(o, "latency_us", hist_json(&r->latency));
    json_object_set_new(o, "service_us", hist_json(&r->service));
    json_object_set_new(o, "max_lag_us", json_integer((json_int_t)r->max_lag_us));
    json_object_set_new(o, "status", status_json(t->status));
    json_t *eps = json_object();
    for (int i = 0; i < LG_EP_COUNT; i++) {
        if (!r->in_mix[i])
            continue;
        const lg_ep_stats_t *e = &r->ep[i];
        json_t *x = json_pack("{s:I,s:I,s:I,s:I,s:o,s:o}", "scheduled", (json_int_t)e->scheduled,
                              "completed", (json_int_t)e->completed, "ok", (json_int_t)e->ok,
                              "timeouts", (json_int_t)e->timeouts, "status", status_json(e->status),
                              "latency_us", hist_json(&e->latency));
        if (i == LG_EP_EVENTS)
            json_object_set_new(x, "events_sent", json_integer((json_int_t)e->events_sent));
        json_object_set_new(eps, lg_ep_names[i], x);
    }
    json_object_set_new(o, "endpoints", eps);
    free(t);
    return o;
}

/* ---- table ---------------------------------------------------------------------- */

static void hist_cols(FILE *f, const recd_hist_t *h)
{
    recd_hist_snap_t *s = calloc(1, sizeof *s);
    if (!s)
        return;
    recd_hist_merge(s, h);
    static const double qs[4] = {0.5, 0.9, 0.99, 0.999};
    for (int i = 0; i < 4; i++)
        fprintf(f, " %9.2f", (double)recd_hist_quantile(s, qs[i]) / 1000.0);
    fprintf(f, " %9.2f\n", (double)s->max_us / 1000.0);
    free(s);
}

static void row(FILE *f, const char *name, uint64_t sent, uint64_t ok, uint64_t err,
                uint64_t timeouts, double rps, const recd_hist_t *h)
{
    fprintf(f, "%-10s %9llu %9llu %7llu %8llu %9.1f", name, (unsigned long long)sent,
            (unsigned long long)ok, (unsigned long long)err, (unsigned long long)timeouts, rps);
    hist_cols(f, h);
}

void lg_report_table(const lg_report_t *r, FILE *f)
{
    totals_t *t = malloc(sizeof *t);
    if (!t)
        return;
    sum(r, t);
    double d = r->duration_s;
    fprintf(f, "recd-load %s  target %s  scenario %s  bundle %s v%lld (%llu items)\n",
            r->version ? r->version : "", r->target ? r->target : "(dry run)",
            r->scenario ? r->scenario : "", r->bundle_name ? r->bundle_name : "", r->bundle_version,
            (unsigned long long)r->bundle_items);
    fprintf(f,
            "arrival %s  offered %.1f req/s  scheduled %.1f req/s  duration %.3f s  "
            "connections %llu opened (max %u)  seed %llu\n",
            r->arrival ? r->arrival : "", r->offered_rps, lg_report_scheduled_rps(r), d,
            (unsigned long long)r->connections_opened, r->connections_max,
            (unsigned long long)r->seed);
    if (r->dry_run) {
        fprintf(f, "\ndry run: nothing sent; requests scheduled:\n");
        for (int i = 0; i < LG_EP_COUNT; i++)
            if (r->in_mix[i])
                fprintf(f, "%-10s %9llu\n", lg_ep_names[i], (unsigned long long)r->ep[i].scheduled);
        fprintf(f, "%-10s %9llu\n", "total", (unsigned long long)t->scheduled);
        free(t);
        return;
    }
    fprintf(f, "\n%-10s %9s %9s %7s %8s %9s %9s %9s %9s %9s %9s\n", "endpoint", "sent", "ok", "err",
            "timeout", "rps", "p50", "p90", "p99", "p99.9", "max");
    for (int i = 0; i < LG_EP_COUNT; i++) {
        if (!r->in_mix[i])
            continue;
        const lg_ep_stats_t *e = &r->ep[i];
        uint64_t sent = e->scheduled - e->not_sent;
        row(f, lg_ep_names[i], sent, e->ok, e->completed - e->ok + e->conn_errors, e->timeouts,
            d > 0 ? (double)e->completed / d : 0.0, &e->latency);
    }
    uint64_t sent = t->scheduled - t->not_sent;
    row(f, "total", sent, t->ok, t->completed - t->ok + t->conn_errors, t->timeouts,
        d > 0 ? (double)t->completed / d : 0.0, &r->latency);
    fprintf(f, "%-10s %9s %9s %7s %8s %9s", "service", "", "", "", "", "");
    hist_cols(f, &r->service);
    fprintf(f, "(latencies in ms; latency from intended send time, service from write to "
               "response)\n");
    fprintf(f, "status:");
    int any = 0;
    for (int c = 0; c < LG_STATUS_MAX; c++) {
        if (t->status[c]) {
            fprintf(f, "%s %d %llu", any ? "," : "", c, (unsigned long long)t->status[c]);
            any = 1;
        }
    }
    fprintf(f, "%s\n", any ? "" : " none");
    if (r->in_mix[LG_EP_EVENTS])
        fprintf(f, "events accepted: %llu\n", (unsigned long long)r->ep[LG_EP_EVENTS].events_sent);
    if (t->conn_errors)
        fprintf(f, "connection errors: %llu\n", (unsigned long long)t->conn_errors);
    if (t->not_sent)
        fprintf(f, "not sent (all connections busy when sending stopped): %llu\n",
                (unsigned long long)t->not_sent);
    if (r->max_lag_us > 10000)
        fprintf(f,
                "warning: the generator fell %.0f ms behind its schedule; results understate "
                "the load\n",
                (double)r->max_lag_us / 1000.0);
    free(t);
}
