/* recd: the recommendation serving daemon. Command line, configuration,
 * signals, systemd notification and the main loop. */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <pthread.h>
#include <jansson.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recd/ab.h"
#include "recd/abrt.h"
#include "recd/api.h"
#include "recd/candgen.h"
#include "recd/conf.h"
#include "recd/core.h"
#include "recd/http.h"
#include "recd/lifecycle.h"
#include "recd/model.h"
#include "recd/nn.h"
#include "recd/online.h"
#include "recd/rank.h"
#include "recd/stats.h"

typedef struct daemon_state {
    const char *conf_file; /* NULL = defaults only */
    const char **sets;     /* --set overrides, re-applied on reload */
    size_t nsets;
    struct event_base *base;
    recd_http_server_t *srv;
    struct event *sig_term, *sig_int, *sig_hup, *sig_usr1;
    struct event *watchdog_ev;
    struct event *drain_ev;
    struct event *delay_ev;  /* shutdown_delay_ms, then start_drain */
    struct event *loaded_ev; /* the model manager reports a change */
    int lc_started;
    _Atomic int models_missing; /* set by the model manager before loaded_ev */
    int models_ready;           /* main thread: readiness was announced */
    int models_reported;        /* main thread: the initial load was reported */
    uint64_t drain_started_us;
    int stopping;
    recd_evlog_t *evlog;
    recd_history_t *history;
    char events_dir[4096];
    int trainer_started;
    _Atomic uint64_t reloads, reload_failures;
} daemon_state_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: recd [-c FILE] [--set key=value ...] [--check-config]\n"
               "            [--version] [--help] [--help-config]\n"
               "\n"
               "  -c, --config FILE   JSON configuration (default: built-in defaults)\n"
               "  --set key=value     override one configuration key (repeatable)\n"
               "  --check-config      validate the configuration, print errors, exit 0 or 1\n"
               "  --version           print the version and exit\n"
               "  --help              print this help and exit\n"
               "  --help-config       print every configuration key as a Markdown table\n");
}

static void help_config(void)
{
    size_t n;
    const recd_conf_key_t *k = recd_conf_keys(&n);
    printf("| key | type | default | range | reload | meaning |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        const char *type = k[i].type == RECD_CONF_T_INT      ? "int"
                           : k[i].type == RECD_CONF_T_BOOL   ? "bool"
                           : k[i].type == RECD_CONF_T_ENUM   ? "enum"
                           : k[i].type == RECD_CONF_T_LISTEN ? "address"
                           : k[i].type == RECD_CONF_T_PATH   ? "path"
                           : k[i].type == RECD_CONF_T_JSON   ? "JSON"
                                                             : "string";
        char def[96], range[64] = "";
        if (k[i].type == RECD_CONF_T_INT) {
            snprintf(def, sizeof def, "%lld", (long long)k[i].def_int);
            snprintf(range, sizeof range, "%lld..%lld", (long long)k[i].min, (long long)k[i].max);
        } else if (k[i].type == RECD_CONF_T_BOOL) {
            snprintf(def, sizeof def, "%s", k[i].def_int ? "true" : "false");
        } else {
            snprintf(def, sizeof def, "\"%s\"", k[i].def_str);
        }
        printf("| `%s` | %s | `%s` | %s | %s | %s |\n", k[i].path, type, def, range,
               k[i].reloadable ? "yes" : "no", k[i].doc);
    }
}

/* Read the admin token: admin.token, or the first line of admin.token_file. */
static int load_token(const recd_conf_t *c, char *out, size_t cap, recd_err_t *err)
{
    out[0] = '\0';
    if (*c->admin_token) {
        snprintf(out, cap, "%s", c->admin_token);
        return 0;
    }
    if (!*c->admin_token_file)
        return 0;
    FILE *f = fopen(c->admin_token_file, "re");
    if (!f)
        return recd_err_set(err, RECD_EIO, "admin.token_file: cannot open '%s': %s",
                            c->admin_token_file, strerror(errno));
    if (!fgets(out, (int)cap, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    if (!*out)
        return recd_err_set(err, RECD_EINVAL, "admin.token_file: '%s' is empty",
                            c->admin_token_file);
    return 0;
}

static void print_errors(const recd_conf_errors_t *e, const char *prefix)
{
    for (size_t i = 0; i < e->n; i++)
        fprintf(stderr, "recd: %s%s\n", prefix, e->lines[i]);
}

/* ---- reload ------------------------------------------------------------------ */

/* Publish the experiments of c (already validated by the config loader)
 * as the live A/B set. */
static int apply_experiments(const recd_conf_t *c, recd_err_t *err)
{
    json_error_t je;
    json_t *j = json_loads(c->experiments, JSON_DECODE_ANY, &je);
    if (!j)
        return recd_err_set(err, RECD_EINVAL, "experiments: %s", je.text);
    recd_ab_set_t set;
    int rc = recd_ab_set_parse(j, "experiments", &set, err);
    json_decref(j);
    if (rc < 0)
        return rc;
    rc = recd_abrt_set(&set, err);
    if (rc == 0 && set.n)
        recd_log_info("A/B: %zu experiment(s) live", set.n);
    recd_ab_set_free(&set);
    return rc;
}

/* Apply side effects of a new snapshot and publish it. Nothing changes
 * when any step fails. */
static int install_conf(daemon_state_t *d, recd_conf_t *next, recd_err_t *err)
{
    char token[512];
    if (load_token(next, token, sizeof token, err) < 0)
        return -1;
    const recd_conf_t *cur = recd_conf_current();
    if (strcmp(cur->log_file, next->log_file) != 0 && recd_log_open(next->log_file, err) < 0)
        return -1;
    /* the last step that can fail: experiments change only with the rest */
    if (strcmp(cur->experiments, next->experiments) != 0 && apply_experiments(next, err) < 0)
        return -1;
    recd_log_set_level((recd_log_level_t)recd_log_level_parse(next->log_level));
    if (d->srv)
        recd_http_server_set_admin_token(d->srv, token);
    recd_conf_publish(next);
    return 0;
}

static int do_reload(void *arg, recd_err_t *err)
{
    daemon_state_t *d = arg;
    recd_sd_notify("RELOADING=1\nSTATUS=reloading configuration");
    recd_conf_errors_t errs = {0};
    recd_conf_t *next = recd_conf_load(d->conf_file, d->sets, d->nsets, &errs);
    int rc = 0;
    if (!next) {
        for (size_t i = 0; i < errs.n; i++)
            recd_log_error("config reload failed: %s", errs.lines[i]);
        recd_err_set(err, RECD_EINVAL, "%s", errs.n ? errs.lines[0] : "invalid configuration");
        rc = -1;
    } else {
        recd_conf_errors_t ignored = {0};
        recd_conf_t *merged = recd_conf_merge_reload(recd_conf_current(), next, &ignored);
        recd_conf_free(next);
        for (size_t i = 0; i < ignored.n; i++)
            recd_log_warn("config reload: %s", ignored.lines[i]);
        recd_conf_errors_free(&ignored);
        if (!merged) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
        } else if (install_conf(d, merged, err) < 0) {
            recd_log_error("config reload failed: %s", err->msg);
            recd_conf_free(merged);
            rc = -1;
        }
    }
    recd_conf_errors_free(&errs);
    if (rc == 0) {
        atomic_fetch_add(&d->reloads, 1);
        recd_log_info("configuration reloaded from %s", d->conf_file ? d->conf_file : "defaults");
    } else {
        atomic_fetch_add(&d->reload_failures, 1);
        recd_log_error("config reload failed; keeping the running configuration");
    }
    recd_sd_notify("READY=1\nSTATUS=serving");
    return rc;
}

static int do_set_config(void *arg, const char *const *sets, size_t n, recd_err_t *err)
{
    daemon_state_t *d = arg;
    recd_conf_t *next = recd_conf_dup(recd_conf_current());
    if (!next)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    recd_conf_errors_t errs = {0};
    int nerr = 0;
    for (size_t i = 0; i < n; i++)
        nerr += recd_conf_apply_set(next, sets[i], &errs);
    if (!nerr)
        nerr += recd_conf_validate(next, &errs);
    if (nerr) {
        recd_err_set(err, RECD_EINVAL, "%s", errs.lines[0]);
        recd_conf_errors_free(&errs);
        recd_conf_free(next);
        return -1;
    }
    recd_conf_errors_free(&errs);
    if (install_conf(d, next, err) < 0) {
        recd_conf_free(next);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        recd_log_info("config changed at run time: %s", sets[i]);
    return 0;
}

/* ---- stats section --------------------------------------------------------------- */

static json_t *conf_stats_json(void *arg)
{
    daemon_state_t *d = arg;
    return json_pack("{s:I,s:I}", "reloads", (json_int_t)atomic_load(&d->reloads),
                     "reload_failures", (json_int_t)atomic_load(&d->reload_failures));
}

static void conf_stats_prom(void *arg, char **buf, size_t *len, size_t *cap)
{
    daemon_state_t *d = arg;
    recd_stats_bufprintf(buf, len, cap,
                         "# HELP recd_config_reloads_total Configuration reloads by result.\n"
                         "# TYPE recd_config_reloads_total counter\n"
                         "recd_config_reloads_total{result=\"ok\"} %llu\n"
                         "recd_config_reloads_total{result=\"error\"} %llu\n",
                         (unsigned long long)atomic_load(&d->reloads),
                         (unsigned long long)atomic_load(&d->reload_failures));
}

/* ---- models ---------------------------------------------------------------------------- */

/* The model manager (src/model/lifecycle.c) loads every configured model
 * on its own thread, then keeps watching for new versions. Listeners are
 * already open, so /healthz answers and /readyz says 503 meanwhile. It
 * reports the initial load and every later swap or failed load here, on
 * its thread: hand that to the main loop. */
static void on_models_changed(void *ctx, int initial_done, int missing)
{
    daemon_state_t *d = ctx;
    if (!initial_done)
        return;
    atomic_store(&d->models_missing, missing);
    event_active(d->loaded_ev, EV_READ, 0);
}

static void on_models_loaded(evutil_socket_t fd, short what, void *arg)
{
    daemon_state_t *d = arg;
    (void)fd;
    (void)what;
    int missing = atomic_load(&d->models_missing);
    if (d->stopping || d->models_ready)
        return;
    if (missing) {
        if (!d->models_reported) {
            recd_api_set_not_ready_reason(
                "a configured model has no valid version; see /stats models");
            recd_log_error("%d model(s) could not be loaded; /readyz stays 503 until they are "
                           "(see /stats models)",
                           missing);
            recd_sd_notifyf("READY=1\nSTATUS=%d model(s) failed to load; not ready", missing);
        }
        d->models_reported = 1;
        return;
    }
    d->models_reported = 1;
    d->models_ready = 1;
    recd_api_set_ready(1);
    recd_log_info("all models loaded; ready");
    recd_sd_notifyf("READY=1\nSTATUS=serving on port %d", recd_http_server_port(d->srv, 0));
}

static int start_models(daemon_state_t *d, recd_err_t *err)
{
    const recd_conf_t *c = recd_conf_current();
    char state[4200];
    snprintf(state, sizeof state, "%s/models.json", c->data_dir);
    recd_lc_opts_t o = {
        .models_dir = c->models_dir,
        .names = c->models_serve,
        .model = {c->ann_factory, (int)c->ann_nprobe, (int)c->ann_ef_search, c->ann_use_index_file,
                  recd_rank_attach},
        .state_file = state,
        .watch = c->models_watch,
        .loader_nice = (int)c->models_loader_nice,
        .on_change = on_models_changed,
        .ctx = d,
    };
    if (recd_lc_start(&o, err) < 0)
        return -1;
    d->lc_started = 1;
    return 0;
}

/* ---- signals and shutdown ------------------------------------------------------------ */

static void drain_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    daemon_state_t *d = arg;
    (void)fd;
    (void)what;
    uint64_t open = recd_http_server_open_conns(d->srv);
    uint64_t waited_ms = (recd_time_mono_us() - d->drain_started_us) / 1000;
    int64_t deadline = recd_conf_current()->shutdown_deadline_ms;
    if (open == 0) {
        recd_log_info("all connections closed after %llu ms", (unsigned long long)waited_ms);
        event_base_loopexit(d->base, NULL);
        return;
    }
    if ((int64_t)waited_ms >= deadline) {
        recd_log_warn("shutdown deadline (%lld ms) passed; closing %llu connection(s)",
                      (long long)deadline, (unsigned long long)open);
        event_base_loopexit(d->base, NULL);
        return;
    }
    struct timeval tv = {0, 20000};
    evtimer_add(d->drain_ev, &tv);
}

/* Stop accepting and wait (drain_poll_cb) for the open connections. */
static void start_drain(evutil_socket_t fd, short what, void *arg)
{
    daemon_state_t *d = arg;
    (void)fd;
    (void)what;
    recd_sd_notify("STOPPING=1\nSTATUS=draining connections");
    recd_log_info("no longer accepting; draining in-flight requests");
    recd_http_server_drain(d->srv);
    d->drain_started_us = recd_time_mono_us();
    drain_poll_cb(-1, 0, d);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    daemon_state_t *d = arg;
    (void)what;
    if (d->stopping) {
        recd_log_warn("second %s: stopping now", sig == SIGINT ? "SIGINT" : "SIGTERM");
        event_base_loopexit(d->base, NULL);
        return;
    }
    d->stopping = 1;
    recd_api_set_not_ready_reason("shutting down");
    recd_api_set_ready(0);
    int64_t delay = recd_conf_current()->shutdown_delay_ms;
    if (delay > 0) {
        /* Pre-stop delay: /readyz already says 503, so an active health
         * check (HAProxy, Kubernetes) takes the replica out while it still
         * answers everything it is sent; only then stop accepting. */
        recd_sd_notify("STOPPING=1\nSTATUS=shutdown delay: /readyz 503, still serving");
        recd_log_info("%s received: /readyz now 503; serving for %lld ms more "
                      "(shutdown_delay_ms), then draining",
                      sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)delay);
        struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
        evtimer_add(d->delay_ev, &tv);
        return;
    }
    start_drain(-1, 0, d);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    recd_err_t err;
    recd_log_info("SIGHUP received: reloading configuration and rescanning models_dir");
    do_reload(arg, &err);
    int rc = recd_lc_rescan(NULL, NULL, NULL);
    if (rc != 0)
        recd_log_warn("SIGHUP: model rescan not queued (%s)",
                      rc == RECD_ENOMEM ? "out of memory" : "model manager not running");
}

static void on_usr1(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    recd_err_t err;
    const char *path = recd_conf_current()->log_file;
    if (!*path)
        return;
    if (recd_log_open(path, &err) < 0)
        recd_log_error("SIGUSR1: %s", err.msg);
    else
        recd_log_info("SIGUSR1: reopened log file %s", path);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    daemon_state_t *d = arg;
    (void)fd;
    (void)what;
    if (recd_http_server_workers_alive(d->srv))
        recd_sd_notify("WATCHDOG=1");
    else
        recd_log_warn("watchdog: a worker loop did not answer; withholding WATCHDOG=1");
}

/* ---- events, history, experiments ------------------------------------------------------ */

static json_t *ab_stats_json(void *arg)
{
    (void)arg;
    return recd_abrt_stats_json();
}

static void ab_stats_prom(void *arg, char **buf, size_t *len, size_t *cap)
{
    (void)arg;
    recd_abrt_stats_prom(buf, len, cap);
}

/* mkdir -p */
static int make_dirs(const char *path, recd_err_t *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return recd_err_set(err, RECD_EINVAL, "path too long: %s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
                return recd_err_set(err, RECD_EIO, "cannot create %s: %s", tmp, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    return 0;
}

/* The history store, then (events.enabled) the event log under
 * data_dir/events with its recovery, then the history replay. */
static int open_events(daemon_state_t *d, const recd_conf_t *c, unsigned nthreads, recd_err_t *err)
{
    d->history =
        recd_history_new((uint64_t)c->history_max_users, (uint32_t)c->history_max_items, err);
    if (!d->history)
        return -1;
    if (recd_api_events_init(nthreads, d->history, err) < 0)
        return -1;
    if (!c->events_enabled) {
        recd_log_info("event ingest disabled (events.enabled = false)");
        return 0;
    }
    if (snprintf(d->events_dir, sizeof d->events_dir, "%s/events", c->data_dir) >=
        (int)sizeof d->events_dir)
        return recd_err_set(err, RECD_EINVAL, "data_dir: path too long");
    if (make_dirs(c->data_dir, err) < 0) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return recd_err_set(err, RECD_EIO, "data_dir: %s", msg);
    }
    recd_evlog_opts_t o;
    recd_evlog_opts_default(&o);
    o.fsync = (recd_evlog_fsync_t)recd_evlog_fsync_parse(c->events_fsync);
    o.interval_ms = (uint32_t)c->events_interval_ms;
    o.segment_bytes = (uint64_t)c->events_segment_bytes;
    o.retain_bytes = (uint64_t)c->events_retain_bytes;
    o.retain_age_s = (uint64_t)c->events_retain_age_s;
    o.queue_bytes = (uint64_t)c->events_queue_bytes;
    o.skip_corrupt = c->events_skip_corrupt;
    o.on_ack = recd_api_events_on_ack;
    uint64_t t0 = recd_time_mono_us();
    int rc = recd_evlog_open(d->events_dir, &o, &d->evlog, err);
    if (rc == RECD_EAGAIN)
        return recd_err_set(err, RECD_EAGAIN,
                            "event log %s is locked by another process (another recd with the "
                            "same data_dir?)",
                            d->events_dir);
    if (rc < 0) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return recd_err_set(err, rc, "cannot open the event log: %s%s", msg,
                            rc == RECD_EIO && strstr(msg, "corrupt")
                                ? " (inspect with `recdctl events verify`; set "
                                  "events.skip_corrupt=true to start anyway, skipping the damage)"
                                : "");
    }
    recd_evlog_stats_t st;
    recd_evlog_stats(d->evlog, &st);
    recd_log_info("event log %s: %llu segment(s), %llu bytes, fsync %s, opened in %.1f ms",
                  d->events_dir, (unsigned long long)st.segments, (unsigned long long)st.bytes,
                  c->events_fsync, (double)(recd_time_mono_us() - t0) / 1000.0);
    if (st.recovered_truncated_bytes)
        recd_log_warn("event log recovery cut a torn tail of %llu bytes (an interrupted write)",
                      (unsigned long long)st.recovered_truncated_bytes);
    if (st.recovered_corrupt_regions)
        recd_log_warn("event log: skipping %llu corrupt region(s), %llu bytes "
                      "(events.skip_corrupt)",
                      (unsigned long long)st.recovered_corrupt_regions,
                      (unsigned long long)st.recovered_corrupt_bytes);
    uint64_t from = st.first_offset;
    if ((uint64_t)c->history_replay_bytes < st.next_offset - st.first_offset)
        from = st.next_offset - (uint64_t)c->history_replay_bytes;
    rc = recd_api_events_replay(d->events_dir, from, st.next_offset, err);
    if (rc < 0) {
        /* older segments are read here first: damage there stops start-up too */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return recd_err_set(err, rc, "cannot replay the event log into the history store: %s%s",
                            msg,
                            rc == RECD_EIO ? " (inspect with `recdctl events verify`; set "
                                             "events.skip_corrupt=true to start anyway, skipping "
                                             "the damage)"
                                           : "");
    }
    recd_history_stats_t hs;
    recd_history_stats(d->history, &hs);
    recd_log_info("history rebuilt from the event log: %llu user(s), %llu item(s)",
                  (unsigned long long)hs.users, (unsigned long long)hs.items);
    recd_api_events_set_log(d->evlog, d->events_dir);
    return 0;
}

/* ---- embedded trainer ------------------------------------------------------------------- */

static int do_train(void *arg, recd_err_t *err)
{
    daemon_state_t *d = arg;
    if (!d->trainer_started)
        return recd_err_set(err, RECD_ENOENT,
                            "the embedded trainer is not running (trainer.enabled is false, or "
                            "events are disabled)");
    return recd_trainer_trigger(err);
}

static json_t *trainer_stats_json(void *arg)
{
    daemon_state_t *d = arg;
    if (!d->trainer_started)
        return json_pack("{s:b}", "enabled", 0);
    return recd_trainer_status_json();
}

/* The trainer retrains trainer.model (default: models.default) from the
 * event log; it needs the log. */
static int start_trainer(daemon_state_t *d, const recd_conf_t *c, recd_err_t *err)
{
    if (!c->trainer_enabled)
        return 0;
    if (!d->evlog) {
        recd_log_warn("trainer.enabled is set but events are disabled: the trainer has no "
                      "input and does not start");
        return 0;
    }
    recd_trainer_opts_t o = {d->events_dir, c->models_dir,
                             *c->trainer_model ? c->trainer_model : c->models_default};
    if (recd_trainer_start(&o, err) < 0)
        return -1;
    d->trainer_started = 1;
    recd_log_info("embedded trainer started for model %s", o.model);
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"check-config", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"help-config", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    static daemon_state_t d;
    int check_only = 0;
    d.sets = calloc((size_t)argc + 1, sizeof *d.sets);
    if (!d.sets)
        return 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': d.conf_file = optarg; break;
        case 's': d.sets[d.nsets++] = optarg; break;
        case 'k': check_only = 1; break;
        case 'V':
            printf("recd %s (git %s, %s)\n", RECD_VERSION, recd_build_git(), recd_build_compiler());
            free(d.sets);
            return 0;
        case 'h':
            usage(stdout);
            free(d.sets);
            return 0;
        case 'H':
            help_config();
            free(d.sets);
            return 0;
        default:
            usage(stderr);
            free(d.sets);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "recd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        free(d.sets);
        return 2;
    }

    recd_conf_errors_t errs = {0};
    recd_conf_t *cf = recd_conf_load(d.conf_file, d.sets, d.nsets, &errs);
    if (!cf) {
        print_errors(&errs, "config error: ");
        recd_conf_errors_free(&errs);
        free(d.sets);
        return 1;
    }
    char token[512];
    recd_err_t err;
    if (load_token(cf, token, sizeof token, &err) < 0) {
        fprintf(stderr, "recd: config error: %s\n", err.msg);
        recd_conf_free(cf);
        free(d.sets);
        return 1;
    }
    if (check_only) {
        if (*cf->tls_cert && access(cf->tls_cert, R_OK) != 0) {
            fprintf(stderr, "recd: config error: tls.cert: cannot read '%s': %s\n", cf->tls_cert,
                    strerror(errno));
            recd_conf_free(cf);
            free(d.sets);
            return 1;
        }
        if (*cf->tls_key && access(cf->tls_key, R_OK) != 0) {
            fprintf(stderr, "recd: config error: tls.key: cannot read '%s': %s\n", cf->tls_key,
                    strerror(errno));
            recd_conf_free(cf);
            free(d.sets);
            return 1;
        }
        printf("config ok: %s\n", d.conf_file ? d.conf_file : "(defaults)");
        recd_conf_free(cf);
        free(d.sets);
        return 0;
    }

    signal(SIGPIPE, SIG_IGN);
    /* past RLIMIT_FSIZE a write fails with EFBIG (the event log then stops
     * acknowledging, visibly) instead of the process being killed */
    signal(SIGXFSZ, SIG_IGN);
    /* glibc returns freed memory at the top of each thread's heap to the
     * kernel once it exceeds the trim threshold, and the next request
     * faults it back in: profiles of /healthz under load showed that page
     * fault churn. Keep up to 64 MiB of free heap per arena instead. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    /* Ranking scratch (hundreds of KiB per request) would otherwise be
     * mmap'd and unmapped per request, paying page faults every time. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    recd_log_set_level((recd_log_level_t)recd_log_level_parse(cf->log_level));
    if (recd_log_open(cf->log_file, &err) < 0) {
        fprintf(stderr, "recd: %s\n", err.msg);
        recd_conf_free(cf);
        free(d.sets);
        return 1;
    }
    unsigned workers = (unsigned)cf->http_workers;
    if (workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        workers = n > 0 ? (unsigned)n : 1;
    }
    recd_conf_publish(cf);
    recd_log_info("recd %s (git %s) starting: %u worker(s), config %s", RECD_VERSION,
                  recd_build_git(), workers, d.conf_file ? d.conf_file : "(defaults)");

    int rc = 1;
    if (evthread_use_pthreads() < 0 || recd_stats_init(workers + 1) < 0) {
        recd_log_error("cannot initialise threads/stats");
        goto out;
    }
    recd_stats_set_workers(workers);
    recd_nn_init();
    if (recd_model_registry_init(&err) < 0) {
        recd_log_error("%s", err.msg);
        goto out;
    }
    recd_stats_section_t sec = {"config", conf_stats_json, conf_stats_prom, &d};
    recd_stats_add_section(&sec);
    if (recd_abrt_init(workers + 1, &err) < 0 || apply_experiments(cf, &err) < 0) {
        recd_log_error("A/B experiments: %s", err.msg);
        goto out;
    }
    recd_stats_section_t absec = {"ab", ab_stats_json, ab_stats_prom, NULL};
    recd_stats_add_section(&absec);
    recd_stats_section_t trsec = {"trainer", trainer_stats_json, NULL, &d};
    recd_stats_add_section(&trsec);
    if (open_events(&d, cf, workers + 1, &err) < 0) {
        recd_log_error("%s", err.msg);
        goto out;
    }
    d.base = event_base_new();
    if (!d.base) {
        recd_log_error("event_base_new failed");
        goto out;
    }
    recd_api_hooks_t hooks = {do_reload, do_set_config, &d, do_train};
    size_t nroutes;
    const recd_http_route_t *routes = recd_api_routes(&nroutes, &hooks);
    recd_http_server_opts_t so = {routes, nroutes, workers};
    d.srv = recd_http_server_new(&so, d.base, &err);
    if (!d.srv) {
        recd_log_error("cannot start: %s", err.msg);
        goto out;
    }
    recd_http_server_set_admin_token(d.srv, token);
    memset(token, 0, sizeof token);
    recd_api_events_attach_server(d.srv);

    d.sig_term = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
    d.sig_int = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
    d.sig_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
    d.sig_usr1 = evsignal_new(d.base, SIGUSR1, on_usr1, &d);
    d.drain_ev = evtimer_new(d.base, drain_poll_cb, &d);
    d.delay_ev = evtimer_new(d.base, start_drain, &d);
    d.loaded_ev = event_new(d.base, -1, 0, on_models_loaded, &d);
    if (!d.loaded_ev || !d.sig_term || !d.sig_int || !d.sig_hup || !d.sig_usr1 || !d.drain_ev ||
        !d.delay_ev || evsignal_add(d.sig_term, NULL) < 0 || evsignal_add(d.sig_int, NULL) < 0 ||
        evsignal_add(d.sig_hup, NULL) < 0 || evsignal_add(d.sig_usr1, NULL) < 0) {
        recd_log_error("cannot install signal handlers");
        goto out;
    }
    if (recd_http_server_start(d.srv, &err) < 0) {
        recd_log_error("cannot start workers: %s", err.msg);
        goto out;
    }
    const recd_conf_t *c = recd_conf_current();
    recd_log_info("listening on %s://%s (port %d)", *c->tls_cert ? "https" : "http", c->http_listen,
                  recd_http_server_port(d.srv, 0));
    if (*c->admin_listen)
        recd_log_info("admin listening on http://%s (port %d)", c->admin_listen,
                      recd_http_server_port(d.srv, 1));
    uint64_t wd = recd_sd_watchdog_usec();
    if (wd) {
        d.watchdog_ev = event_new(d.base, -1, EV_PERSIST, watchdog_cb, &d);
        struct timeval tv = {(time_t)(wd / 2 / 1000000), (suseconds_t)(wd / 2 % 1000000)};
        if (d.watchdog_ev)
            event_add(d.watchdog_ev, &tv);
        recd_log_info("systemd watchdog: ping every %llu ms", (unsigned long long)(wd / 2000));
    }
    recd_api_set_not_ready_reason("models are loading");
    recd_sd_notifyf("STATUS=loading models\nMAINPID=%d", (int)getpid());
    if (start_models(&d, &err) < 0) {
        recd_log_error("%s", err.msg);
        goto out;
    }
    if (start_trainer(&d, recd_conf_current(), &err) < 0) {
        recd_log_error("trainer: %s", err.msg);
        goto out;
    }

    event_base_dispatch(d.base);
    rc = 0;
    recd_log_info("stopped");
out:
    if (d.trainer_started)
        recd_trainer_stop(); /* a cycle in progress is abandoned */
    if (d.lc_started) {
        recd_lc_stop(); /* a load in progress finishes first */
        /* its admin answer was posted to this loop: deliver it (the
         * closure would otherwise be dropped with the request) */
        if (d.base)
            event_base_loop(d.base, EVLOOP_NONBLOCK);
    }
    recd_api_events_detach_server();
    if (d.srv)
        recd_http_server_free(d.srv);
    if (d.evlog) {
        recd_evlog_close(d.evlog); /* writes and fsyncs what is queued */
        recd_log_info("event log closed");
    }
    recd_api_events_shutdown();
    recd_history_free(d.history);
    recd_abrt_shutdown();
    recd_model_registry_shutdown();
    if (d.watchdog_ev)
        event_free(d.watchdog_ev);
    struct event *evs[] = {d.sig_term, d.sig_int,  d.sig_hup,  d.sig_usr1,
                           d.drain_ev, d.delay_ev, d.loaded_ev};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    if (d.base)
        event_base_free(d.base);
    recd_stats_shutdown();
    recd_conf_shutdown();
    libevent_global_shutdown();
    free(d.sets);
    return rc;
}
