/*
 * recd-load: what a run measured, and its two renderings: the JSON report
 * (keys fixed by the recd-load contract) and the human-readable table.
 *
 * Latency is measured from each request's intended send time (so queueing
 * in the generator or at the server counts: no coordinated omission),
 * service time from the request's first byte written to the end of its
 * response. Both go into recd's log-linear histogram (recd/stats.h);
 * reported percentiles are recd_hist_quantile()'s: the upper edge of the
 * bucket, clamped to the maximum.
 */
#ifndef RECD_LOAD_REPORT_H
#define RECD_LOAD_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "recd/stats.h"

#include "scenario.h"

/* How a scheduled request ended. */
typedef enum {
    LG_OUT_RESPONSE = 0,   /* a complete response (any status) */
    LG_OUT_TIMEOUT = 1,    /* no complete response within --timeout-ms of sending */
    LG_OUT_CONN_ERROR = 2, /* connect failed, or the connection broke mid-request */
    LG_OUT_NOT_SENT = 3    /* still queued for a connection when sending stopped */
} lg_outcome_t;

#define LG_STATUS_MAX 600

typedef struct lg_ep_stats {
    uint64_t scheduled, completed, ok, timeouts, conn_errors, not_sent, events_sent;
    uint64_t status[LG_STATUS_MAX];
    recd_hist_t latency;
} lg_ep_stats_t;

typedef struct lg_report {
    /* the run's description (borrowed strings) */
    const char *version, *target, *scenario, *arrival;
    const char *bundle_dir, *bundle_name;
    long long bundle_version;
    uint64_t bundle_items;
    uint64_t seed;
    unsigned connections_max;
    uint64_t connections_opened;
    double offered_rps;
    int in_mix[LG_EP_COUNT];
    int dry_run;
    /* measurements (warmup excluded) */
    double first_t_s, last_t_s; /* intended times of the first and last measured request */
    double duration_s;          /* set by the caller before rendering */
    uint64_t max_lag_us;
    lg_ep_stats_t ep[LG_EP_COUNT];
    recd_hist_t latency, service;
} lg_report_t;

/* A zeroed report on the heap (histograms are large), or NULL. */
lg_report_t *lg_report_new(void);
void lg_report_free(lg_report_t *r);
/* A measured request of endpoint ep was scheduled at t_s (seconds from the
 * schedule's start). */
void lg_report_scheduled(lg_report_t *r, int ep, double t_s);
/* How a measured request ended: status for LG_OUT_RESPONSE, latency from
 * intended send time and service time in microseconds (service only for
 * responses), nevents the events it carried. */
void lg_report_outcome(lg_report_t *r, int ep, lg_outcome_t out, int status, uint64_t latency_us,
                       uint64_t service_us, uint32_t nevents);
/* The schedule's achieved rate: (scheduled - 1) / (last - first intended
 * time); 0 with fewer than two requests. */
double lg_report_scheduled_rps(const lg_report_t *r);
/* The JSON report (new reference). */
json_t *lg_report_json(const lg_report_t *r);
/* The table, with the warning line when the generator fell behind. */
void lg_report_table(const lg_report_t *r, FILE *f);

#endif
