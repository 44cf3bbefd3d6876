/*
 * recd-load: a scenario file (loadtest/scenarios/NAME.json): which endpoints
 * in which proportions, and how users, items, histories, events and
 * features are drawn. This module checks the JSON's structure; the parts
 * that depend on the bundle (feature names) are checked by reqgen.
 *
 * Every error names the JSON path at fault:
 *   scenario mix.recommend: weight must be an integer >= 0
 */
#ifndef RECD_LOAD_SCENARIO_H
#define RECD_LOAD_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Endpoints, in report order. healthz (GET /healthz) is an addition to the
 * four API endpoints, for measuring the generator itself. */
enum { LG_EP_RECOMMEND, LG_EP_SCORE, LG_EP_SIMILAR, LG_EP_EVENTS, LG_EP_HEALTHZ, LG_EP_COUNT };
extern const char *const lg_ep_names[LG_EP_COUNT];

/* Event types of POST /v1/events. */
enum { LG_EV_IMPRESSION, LG_EV_CLICK, LG_EV_WATCH, LG_EV_RATING, LG_EV_PURCHASE, LG_EV_COUNT };
extern const char *const lg_event_types[LG_EV_COUNT];

typedef struct lg_scenario {
    char *name;
    char *bundle;              /* path as written (NULL when absent) */
    int in_mix[LG_EP_COUNT];   /* named in "mix" */
    uint32_t mix[LG_EP_COUNT]; /* weights */
    struct {
        uint32_t count;
        char *prefix;
        double zipf_s, cold_pct;
    } users;
    struct {
        double zipf_s;
        int by_popularity; /* "popularity" (else "shuffle") */
    } items;
    struct {
        double send_pct, median, sigma;
        uint32_t max;
    } history;
    uint32_t rec_k, rec_candidates;
    uint32_t score_items;
    uint32_t similar_k;
    uint32_t ev_batch;
    uint32_t ev_types[LG_EV_COUNT];
    json_t *features; /* object or NULL: field name → list or {"min","max"} */
    json_t *context;  /* the same for context fields */
} lg_scenario_t;

/* Exit statuses shared by the modules and main. */
enum { LG_EXIT_OK = 0, LG_EXIT_RUNTIME = 1, LG_EXIT_USAGE = 2 };

/* Read a scenario from a parsed JSON document. default_name is used when
 * the document has no "name". 0, or -1 with "scenario PATH: message" in
 * err. s needs lg_scenario_free() either way. */
int lg_scenario_from_json(lg_scenario_t *s, json_t *root, const char *default_name, char *err,
                          size_t errlen);
/* Read the scenario file at path (its name defaults to the file's base name
 * without ".json"). LG_EXIT_OK, LG_EXIT_USAGE when the file cannot be
 * opened, LG_EXIT_RUNTIME for a JSON syntax or scenario error; err holds
 * the message. */
int lg_scenario_load(lg_scenario_t *s, const char *path, char *err, size_t errlen);
struct lg_bundle;
/* Load the scenario's bundle, or override (--bundle) when it is not NULL.
 * LG_EXIT_OK; LG_EXIT_RUNTIME with "scenario bundle: ..." (missing or
 * unusable); LG_EXIT_USAGE with "--bundle: ..." when the override is
 * unusable. b needs lg_bundle_free() either way. */
int lg_scenario_bundle(const lg_scenario_t *s, const char *override, struct lg_bundle *b, char *err,
                       size_t errlen);
/* Release everything; s is zeroed. */
void lg_scenario_free(lg_scenario_t *s);

#endif
