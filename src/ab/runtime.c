/*
 * A/B runtime (include/recd/abrt.h): the live experiment set as immutable
 * snapshots, a permanent table of counter slots keyed by (experiment,
 * variant) name, the request-id -> variants table used to attribute events,
 * and the /stats and /metrics renderers.
 *
 * Memory ordering. Only the main thread writes snapshots and slots. A slot's
 * names and counter rows are written before its index entry is stored with
 * release and before any snapshot that refers to it is published with a
 * release store of `live`; readers load both with acquire, so whatever they
 * reach through them is fully written. Counter rows have one writer each
 * (the stats thread that owns the index), as in include/recd/stats.h.
 */
#include "recd/abrt.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/dataset.h"
#include "recd/stats.h"

#define SLOTS_MAX 1024u             /* (experiment, variant) pairs ever published */
#define SLOT_INDEX (2u * SLOTS_MAX) /* open-addressing index, at most half full */
#define RT_WAYS 4u                  /* request table: ways per set */
#define RT_SETS 16384u              /* RT_WAYS * RT_SETS = 65536 remembered requests */
#define RT_LOCKS 64u                /* mutexes, each guarding RT_SETS / RT_LOCKS sets */

/* One thread's counters for one slot (cache-line aligned: no false sharing
 * between the writers of neighbouring rows). */
typedef struct slot_row {
    _Alignas(64) _Atomic uint64_t requests;
    _Atomic uint64_t forced_requests;
    _Atomic uint64_t impressions, clicks;
    _Atomic uint64_t forced_impressions, forced_clicks;
    recd_hist_t latency; /* non-forced requests only */
} slot_row_t;

typedef struct slot {
    char exp[RECD_AB_NAME_MAX + 1];
    char var[RECD_AB_NAME_MAX + 1];
    slot_row_t *rows; /* nthreads + 1 (the last is RECD_ABRT_REPLAY) */
} slot_t;

/* One published experiment set. */
typedef struct snap {
    recd_ab_set_t set;                      /* deep copy */
    uint32_t (*slot)[RECD_AB_MAX_VARIANTS]; /* slot of each variant, set.n rows */
    struct snap *older;                     /* list of all snapshots, newest first */
} snap_t;

/* Request-id table: set-associative, FIFO replacement within a set. */
typedef struct rt_entry {
    uint64_t hash; /* 0 = empty */
    uint16_t slot[RECD_EVREC_MAX_AB];
    uint8_t n, forced;
} rt_entry_t;

typedef struct rt_set {
    rt_entry_t way[RT_WAYS];
    unsigned next; /* way to overwrite next */
} rt_set_t;

static struct {
    int inited;
    unsigned nthreads; /* request threads; rows per slot = nthreads + 1 */
    slot_t *slots;     /* SLOTS_MAX */
    _Atomic uint32_t nslots;
    _Atomic uint32_t index[SLOT_INDEX]; /* slot + 1; 0 = empty */
    _Atomic(snap_t *) live;
    snap_t *snaps; /* every snapshot, newest first (main thread only) */
    rt_set_t *rt;  /* RT_SETS */
    pthread_mutex_t locks[RT_LOCKS];
} g;

/* ---- helpers --------------------------------------------------------------- */

static int name_ok(const char *s, size_t cap)
{
    size_t len = strnlen(s, cap);
    if (len == 0 || len >= cap)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* splitmix64's finaliser: spreads FNV's bits over the low ones used as
 * table indexes. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t pair_hash(const char *exp, const char *var)
{
    uint64_t h = recd_fnv1a64(RECD_FNV1A64_INIT, exp, strlen(exp));
    h = recd_fnv1a64(h, "", 1); /* the NUL separates the names */
    return mix64(recd_fnv1a64(h, var, strlen(var)));
}

/* Slot of (exp, var), or -1. Any thread. */
static int64_t slot_find(const char *exp, const char *var)
{
    uint64_t h = pair_hash(exp, var);
    for (uint32_t i = 0; i < SLOT_INDEX; i++) {
        uint32_t v =
            atomic_load_explicit(&g.index[(h + i) & (SLOT_INDEX - 1)], memory_order_acquire);
        if (v == 0)
            return -1;
        const slot_t *s = &g.slots[v - 1];
        if (strcmp(s->exp, exp) == 0 && strcmp(s->var, var) == 0)
            return v - 1;
    }
    return -1;
}

/* Insert a fully written slot into the index (main thread). */
static void slot_index_add(uint32_t slot)
{
    uint64_t h = pair_hash(g.slots[slot].exp, g.slots[slot].var);
    for (uint32_t i = 0; i < SLOT_INDEX; i++) {
        _Atomic uint32_t *e = &g.index[(h + i) & (SLOT_INDEX - 1)];
        if (atomic_load_explicit(e, memory_order_relaxed) == 0) {
            atomic_store_explicit(e, slot + 1, memory_order_release);
            return;
        }
    }
}

/* The counter row of thread in slot, or NULL for an index that has none
 * (out of range: the count is dropped rather than given a second writer). */
static slot_row_t *row(uint32_t slot, unsigned thread)
{
    if (slot >= atomic_load_explicit(&g.nslots, memory_order_acquire))
        return NULL;
    unsigned r;
    if (thread == RECD_ABRT_REPLAY)
        r = g.nthreads;
    else if (thread < g.nthreads)
        r = thread;
    else
        return NULL;
    return &g.slots[slot].rows[r];
}

static const snap_t *live(void)
{
    return atomic_load_explicit(&g.live, memory_order_acquire);
}

static void snap_free(snap_t *s)
{
    recd_ab_set_free(&s->set);
    free(s->slot);
    free(s);
}

/* ---- init / shutdown ----------------------------------------------------- */

int recd_abrt_init(unsigned nthreads, recd_err_t *err)
{
    if (g.inited)
        recd_abrt_shutdown();
    g.slots = calloc(SLOTS_MAX, sizeof *g.slots);
    g.rt = calloc(RT_SETS, sizeof *g.rt);
    if (!g.slots || !g.rt) {
        free(g.slots);
        free(g.rt);
        g.slots = NULL;
        g.rt = NULL;
        return recd_err_set(err, RECD_ENOMEM, "ab runtime: out of memory");
    }
    for (unsigned i = 0; i < RT_LOCKS; i++)
        pthread_mutex_init(&g.locks[i], NULL);
    g.nthreads = nthreads;
    atomic_store(&g.nslots, 0);
    for (uint32_t i = 0; i < SLOT_INDEX; i++)
        atomic_store(&g.index[i], 0);
    atomic_store(&g.live, NULL);
    g.snaps = NULL;
    g.inited = 1;
    return 0;
}

void recd_abrt_shutdown(void)
{
    if (!g.inited)
        return;
    atomic_store(&g.live, NULL);
    while (g.snaps) {
        snap_t *o = g.snaps->older;
        snap_free(g.snaps);
        g.snaps = o;
    }
    uint32_t n = atomic_load(&g.nslots);
    for (uint32_t i = 0; i < n; i++)
        free(g.slots[i].rows);
    free(g.slots);
    g.slots = NULL;
    atomic_store(&g.nslots, 0);
    for (uint32_t i = 0; i < SLOT_INDEX; i++)
        atomic_store(&g.index[i], 0);
    for (unsigned i = 0; i < RT_LOCKS; i++)
        pthread_mutex_destroy(&g.locks[i]);
    free(g.rt);
    g.rt = NULL;
    g.nthreads = 0;
    g.inited = 0;
}

/* ---- set ------------------------------------------------------------------- */

/* Structural checks on a caller-built set (recd_ab_set_parse output passes
 * them): the slot table and the renderers rely on them. */
static int check_set(const recd_ab_set_t *set, recd_err_t *err)
{
    if (set->n > RECD_AB_MAX_EXPERIMENTS)
        return recd_err_set(err, RECD_EINVAL, "experiments: more than %d", RECD_AB_MAX_EXPERIMENTS);
    if (set->n && !set->exps)
        return recd_err_set(err, RECD_EINVAL, "experiments: missing array");
    for (size_t e = 0; e < set->n; e++) {
        const recd_ab_exp_t *x = &set->exps[e];
        if (!name_ok(x->name, sizeof x->name))
            return recd_err_set(err, RECD_EINVAL, "experiments[%zu].name: invalid", e);
        if (x->salt_len == 0 || x->salt_len > RECD_AB_SALT_MAX ||
            strnlen(x->salt, sizeof x->salt) != x->salt_len)
            return recd_err_set(err, RECD_EINVAL, "experiments[%zu].salt: invalid", e);
        for (size_t i = 0; i < x->salt_len; i++)
            if (x->salt[i] < 0x20 || x->salt[i] > 0x7e)
                return recd_err_set(err, RECD_EINVAL, "experiments[%zu].salt: not printable ASCII",
                                    e);
        if (x->n_variants < 1 || x->n_variants > RECD_AB_MAX_VARIANTS)
            return recd_err_set(err, RECD_EINVAL, "experiments[%zu].variants: must be 1..%d", e,
                                RECD_AB_MAX_VARIANTS);
        for (size_t k = 0; k < e; k++)
            if (strcmp(set->exps[k].name, x->name) == 0)
                return recd_err_set(err, RECD_EINVAL,
                                    "experiments[%zu].name: duplicate experiment name", e);
        uint32_t prev_hi = 0;
        for (size_t v = 0; v < x->n_variants; v++) {
            const recd_ab_variant_t *var = &x->variants[v];
            if (!name_ok(var->name, sizeof var->name))
                return recd_err_set(err, RECD_EINVAL,
                                    "experiments[%zu].variants[%zu].name: invalid", e, v);
            if (var->model[0] && !name_ok(var->model, sizeof var->model))
                return recd_err_set(err, RECD_EINVAL,
                                    "experiments[%zu].variants[%zu].model: invalid", e, v);
            for (size_t k = 0; k < v; k++)
                if (strcmp(x->variants[k].name, var->name) == 0)
                    return recd_err_set(err, RECD_EINVAL,
                                        "experiments[%zu].variants[%zu].name: duplicate", e, v);
            if (var->bucket_lo != prev_hi || var->bucket_hi < var->bucket_lo ||
                var->bucket_hi > RECD_AB_BUCKETS)
                return recd_err_set(err, RECD_EINVAL,
                                    "experiments[%zu].variants[%zu]: bad bucket range (call "
                                    "recd_ab_exp_layout)",
                                    e, v);
            prev_hi = var->bucket_hi;
        }
        if (prev_hi != RECD_AB_BUCKETS)
            return recd_err_set(err, RECD_EINVAL,
                                "experiments[%zu]: buckets do not cover 0..%u (call "
                                "recd_ab_exp_layout)",
                                e, RECD_AB_BUCKETS);
    }
    return 0;
}

int recd_abrt_set(const recd_ab_set_t *set, recd_err_t *err)
{
    static const recd_ab_set_t none = {0, NULL};
    if (!g.inited)
        return recd_err_set(err, RECD_EINVAL, "ab runtime: recd_abrt_init not called");
    if (!set)
        set = &none;
    int rc = check_set(set, err);
    if (rc)
        return rc;
    size_t n = set->n;
    snap_t *s = calloc(1, sizeof *s);
    if (!s)
        return recd_err_set(err, RECD_ENOMEM, "ab runtime: out of memory");
    if (n) {
        s->set.exps = malloc(n * sizeof *s->set.exps);
        s->slot = malloc(n * sizeof *s->slot);
        if (!s->set.exps || !s->slot) {
            snap_free(s);
            return recd_err_set(err, RECD_ENOMEM, "ab runtime: out of memory");
        }
        memcpy(s->set.exps, set->exps, n * sizeof *s->set.exps);
        s->set.n = n;
    }

    /* Existing pairs keep their slot; new ones take the next free ones
     * (names are unique within the set, so no pair is counted twice). */
    uint32_t base = atomic_load_explicit(&g.nslots, memory_order_relaxed);
    uint32_t fresh = 0;
    for (size_t e = 0; e < n; e++) {
        const recd_ab_exp_t *x = &s->set.exps[e];
        for (size_t v = 0; v < x->n_variants; v++) {
            int64_t k = slot_find(x->name, x->variants[v].name);
            if (k >= 0) {
                s->slot[e][v] = (uint32_t)k;
            } else if (base + fresh < SLOTS_MAX) {
                s->slot[e][v] = base + fresh++;
            } else {
                snap_free(s);
                return recd_err_set(err, RECD_ERANGE,
                                    "experiments: more than %u (experiment, variant) pairs "
                                    "published since start (a restart clears them)",
                                    SLOTS_MAX);
            }
        }
    }

    /* Counters for the new slots, all allocated before any is published. */
    size_t nrows = (size_t)g.nthreads + 1;
    for (uint32_t i = 0; i < fresh; i++) {
        void *p = NULL;
        if (posix_memalign(&p, 64, nrows * sizeof(slot_row_t)) != 0) {
            for (uint32_t k = 0; k < i; k++) {
                free(g.slots[base + k].rows);
                g.slots[base + k].rows = NULL;
            }
            snap_free(s);
            return recd_err_set(err, RECD_ENOMEM, "ab runtime: out of memory");
        }
        memset(p, 0, nrows * sizeof(slot_row_t));
        g.slots[base + i].rows = p;
    }
    for (size_t e = 0; e < n; e++) {
        const recd_ab_exp_t *x = &s->set.exps[e];
        for (size_t v = 0; v < x->n_variants; v++) {
            uint32_t k = s->slot[e][v];
            if (k < base)
                continue;
            snprintf(g.slots[k].exp, sizeof g.slots[k].exp, "%s", x->name);
            snprintf(g.slots[k].var, sizeof g.slots[k].var, "%s", x->variants[v].name);
        }
    }
    for (uint32_t i = 0; i < fresh; i++)
        slot_index_add(base + i);
    atomic_store_explicit(&g.nslots, base + fresh, memory_order_release);

    s->older = g.snaps;
    g.snaps = s;
    atomic_store_explicit(&g.live, s, memory_order_release);
    return 0;
}

size_t recd_abrt_count(void)
{
    const snap_t *s = live();
    return s ? s->set.n : 0;
}

/* ---- assignment ------------------------------------------------------------ */

int recd_abrt_assign(const char *user, size_t ulen, const char *forced, recd_abrt_assignment_t *out,
                     recd_err_t *err)
{
    const snap_t *s = live();
    size_t n = s ? s->set.n : 0;
    size_t flen = forced ? strlen(forced) : 0;
    int found = 0;
    if (!user) {
        user = "";
        ulen = 0;
    }
    out->n = n;
    out->model = NULL;
    out->version = 0;
    out->candidates = 0;
    out->rank = -1;
    out->score = RECD_AB_SCORE_DEFAULT;
    for (size_t e = 0; e < n; e++) {
        const recd_ab_exp_t *x = &s->set.exps[e];
        recd_abrt_pick_t *p = &out->picks[e];
        int idx = forced ? recd_ab_variant_by_name(x, forced, flen) : -1;
        p->forced = idx >= 0;
        found |= p->forced;
        if (idx < 0)
            idx = (int)recd_ab_assign(x, user, ulen);
        p->exp = x;
        p->variant = &x->variants[idx];
        p->slot = s->slot[e][idx];
        /* later experiments win; a model and its pinned version go together */
        const recd_ab_variant_t *v = p->variant;
        if (v->model[0]) {
            out->model = v->model;
            out->version = v->version;
        }
        if (v->candidates)
            out->candidates = v->candidates;
        if (v->rank >= 0)
            out->rank = v->rank;
        if (v->score != RECD_AB_SCORE_DEFAULT)
            out->score = v->score;
    }
    if (forced && !found)
        return recd_err_set(err, RECD_ENOENT,
                            "X-Recd-Variant: no live experiment has a variant named \"%.64s\"",
                            forced);
    return 0;
}

void recd_abrt_record_request(unsigned thread, const recd_abrt_assignment_t *a, uint64_t latency_us)
{
    if (!a)
        return;
    size_t n = a->n < RECD_AB_MAX_EXPERIMENTS ? a->n : RECD_AB_MAX_EXPERIMENTS;
    for (size_t i = 0; i < n; i++) {
        slot_row_t *r = row(a->picks[i].slot, thread);
        if (!r)
            continue;
        if (a->picks[i].forced) {
            recd_stats_add(&r->forced_requests, 1);
        } else {
            recd_stats_add(&r->requests, 1);
            recd_hist_record(&r->latency, latency_us);
        }
    }
}

/* ---- request-id table ------------------------------------------------------ */

static uint64_t reqid_hash(const char *id, size_t len)
{
    uint64_t h = mix64(recd_fnv1a64(RECD_FNV1A64_INIT, id, len));
    return h ? h : 1;
}

void recd_abrt_remember(const char *request_id, size_t len, const recd_abrt_assignment_t *a)
{
    if (!g.rt || !request_id || !a)
        return;
    rt_entry_t ent = {.hash = reqid_hash(request_id, len)};
    for (size_t i = 0; i < a->n && ent.n < RECD_EVREC_MAX_AB; i++) {
        ent.slot[ent.n++] = (uint16_t)a->picks[i].slot;
        if (a->picks[i].forced)
            ent.forced = 1;
    }
    uint32_t si = (uint32_t)(ent.hash & (RT_SETS - 1));
    rt_set_t *set = &g.rt[si];
    pthread_mutex_t *m = &g.locks[si % RT_LOCKS];
    pthread_mutex_lock(m);
    unsigned w;
    for (w = 0; w < RT_WAYS; w++)
        if (set->way[w].hash == ent.hash)
            break;
    if (w == RT_WAYS) { /* not there: replace the oldest of the set */
        w = set->next;
        set->next = (set->next + 1) % RT_WAYS;
    }
    set->way[w] = ent;
    pthread_mutex_unlock(m);
}

/* Copy the entry for request_id into *out; 1 when found. */
static int rt_lookup(const char *request_id, rt_entry_t *out)
{
    if (!g.rt || !request_id)
        return 0;
    uint64_t h = reqid_hash(request_id, strlen(request_id));
    uint32_t si = (uint32_t)(h & (RT_SETS - 1));
    const rt_set_t *set = &g.rt[si];
    pthread_mutex_t *m = &g.locks[si % RT_LOCKS];
    int found = 0;
    pthread_mutex_lock(m);
    for (unsigned w = 0; w < RT_WAYS; w++)
        if (set->way[w].hash == h) {
            *out = set->way[w];
            found = 1;
            break;
        }
    pthread_mutex_unlock(m);
    return found;
}

void recd_abrt_attribute(recd_evrec_t *ev)
{
    ev->n_ab = 0;
    ev->forced = 0;
    rt_entry_t ent;
    if (rt_lookup(ev->request_id, &ent)) {
        uint32_t ns = atomic_load_explicit(&g.nslots, memory_order_acquire);
        for (unsigned i = 0; i < ent.n; i++) {
            if (ent.slot[i] >= ns)
                continue;
            const slot_t *sl = &g.slots[ent.slot[i]];
            ev->ab[ev->n_ab].experiment = sl->exp;
            ev->ab[ev->n_ab].variant = sl->var;
            ev->n_ab++;
        }
        ev->forced = ent.forced;
        return;
    }
    const snap_t *s = live();
    size_t n = s ? s->set.n : 0;
    if (ev->hint_variant) {
        size_t vlen = strlen(ev->hint_variant);
        for (size_t e = 0; e < n && ev->n_ab < RECD_EVREC_MAX_AB; e++) {
            const recd_ab_exp_t *x = &s->set.exps[e];
            if (ev->hint_experiment && strcmp(ev->hint_experiment, x->name) != 0)
                continue;
            int v = recd_ab_variant_by_name(x, ev->hint_variant, vlen);
            if (v < 0)
                continue;
            ev->ab[ev->n_ab].experiment = x->name;
            ev->ab[ev->n_ab].variant = x->variants[v].name;
            ev->n_ab++;
        }
        if (ev->n_ab)
            return;
    }
    /* no usable hint: where the user is assigned now */
    if (!ev->user_id)
        return;
    size_t ulen = ev->user_len ? ev->user_len : strlen(ev->user_id);
    for (size_t e = 0; e < n && ev->n_ab < RECD_EVREC_MAX_AB; e++) {
        const recd_ab_exp_t *x = &s->set.exps[e];
        ev->ab[ev->n_ab].experiment = x->name;
        ev->ab[ev->n_ab].variant = x->variants[recd_ab_assign(x, ev->user_id, ulen)].name;
        ev->n_ab++;
    }
}

void recd_abrt_count_event(unsigned thread, const recd_evrec_t *ev)
{
    if (!g.inited || (ev->type != RECD_EV_IMPRESSION && ev->type != RECD_EV_CLICK))
        return;
    size_t n = ev->n_ab < RECD_EVREC_MAX_AB ? ev->n_ab : RECD_EVREC_MAX_AB;
    for (size_t i = 0; i < n; i++) {
        if (!ev->ab[i].experiment || !ev->ab[i].variant)
            continue;
        int64_t k = slot_find(ev->ab[i].experiment, ev->ab[i].variant);
        slot_row_t *r = k >= 0 ? row((uint32_t)k, thread) : NULL;
        if (!r)
            continue;
        if (ev->type == RECD_EV_IMPRESSION)
            recd_stats_add(ev->forced ? &r->forced_impressions : &r->impressions, 1);
        else
            recd_stats_add(ev->forced ? &r->forced_clicks : &r->clicks, 1);
    }
}

/* ---- readout ----------------------------------------------------------------- */

typedef struct sums {
    uint64_t requests, impressions, clicks;
    uint64_t forced_requests, forced_impressions, forced_clicks;
} sums_t;

/* Merge every thread's counters of slot into *s and, when h is not NULL,
 * its latency histogram into *h (both zeroed here). */
static void slot_sum(uint32_t slot, sums_t *s, recd_hist_snap_t *h)
{
    memset(s, 0, sizeof *s);
    if (h)
        memset(h, 0, sizeof *h);
    const slot_row_t *rows = g.slots[slot].rows;
    for (unsigned t = 0; t <= g.nthreads; t++) {
        const slot_row_t *r = &rows[t];
        s->requests += recd_stats_get(&r->requests);
        s->impressions += recd_stats_get(&r->impressions);
        s->clicks += recd_stats_get(&r->clicks);
        s->forced_requests += recd_stats_get(&r->forced_requests);
        s->forced_impressions += recd_stats_get(&r->forced_impressions);
        s->forced_clicks += recd_stats_get(&r->forced_clicks);
        if (h)
            recd_hist_merge(h, &r->latency);
    }
}

/* Non-forced sums of every variant of experiment e of s, and the readout
 * over them (control = variants[0]). */
static void exp_readout(const snap_t *s, size_t e, sums_t *sums, recd_ab_readout_t *ro)
{
    uint64_t imp[RECD_AB_MAX_VARIANTS], clk[RECD_AB_MAX_VARIANTS];
    size_t nv = s->set.exps[e].n_variants;
    for (size_t v = 0; v < nv; v++) {
        slot_sum(s->slot[e][v], &sums[v], NULL);
        imp[v] = sums[v].impressions;
        clk[v] = sums[v].clicks;
    }
    recd_ab_readout(imp, clk, nv, ro);
}

static json_t *num_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

json_t *recd_abrt_stats_json(void)
{
    json_t *arr = json_array();
    const snap_t *s = live();
    recd_hist_snap_t *h = malloc(sizeof *h);
    for (size_t e = 0; h && s && e < s->set.n; e++) {
        const recd_ab_exp_t *x = &s->set.exps[e];
        sums_t sums[RECD_AB_MAX_VARIANTS];
        recd_ab_readout_t ro[RECD_AB_MAX_VARIANTS];
        exp_readout(s, e, sums, ro);
        json_t *vars = json_array();
        for (size_t v = 0; v < x->n_variants; v++) {
            const recd_ab_variant_t *var = &x->variants[v];
            sums_t lat_sums;
            slot_sum(s->slot[e][v], &lat_sums, h);
            json_t *lat =
                json_pack("{s:I,s:I,s:I,s:I,s:I}", "p50", (json_int_t)recd_hist_quantile(h, 0.5),
                          "p90", (json_int_t)recd_hist_quantile(h, 0.9), "p99",
                          (json_int_t)recd_hist_quantile(h, 0.99), "p999",
                          (json_int_t)recd_hist_quantile(h, 0.999), "max", (json_int_t)h->max_us);
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(var->name));
            json_object_set_new(o, "weight", json_integer(var->weight));
            json_object_set_new(
                o, "buckets",
                json_pack("[I,I]", (json_int_t)var->bucket_lo, (json_int_t)var->bucket_hi));
            json_object_set_new(o, "requests", json_integer((json_int_t)sums[v].requests));
            json_object_set_new(o, "latency_us", lat);
            json_object_set_new(o, "impressions", json_integer((json_int_t)ro[v].impressions));
            json_object_set_new(o, "clicks", json_integer((json_int_t)ro[v].clicks));
            json_object_set_new(o, "ctr", num_or_null(ro[v].ctr));
            json_t *ci = json_array();
            json_array_append_new(ci, num_or_null(ro[v].ci_lo));
            json_array_append_new(ci, num_or_null(ro[v].ci_hi));
            json_object_set_new(o, "ctr_ci95", ci);
            json_object_set_new(o, "lift", num_or_null(ro[v].lift));
            json_object_set_new(o, "z", num_or_null(ro[v].z));
            json_object_set_new(o, "p_value", num_or_null(ro[v].p_value));
            json_object_set_new(o, "forced",
                                json_pack("{s:I,s:I,s:I}", "requests",
                                          (json_int_t)sums[v].forced_requests, "impressions",
                                          (json_int_t)sums[v].forced_impressions, "clicks",
                                          (json_int_t)sums[v].forced_clicks));
            json_array_append_new(vars, o);
        }
        json_t *xo = json_object();
        json_object_set_new(xo, "name", json_string(x->name));
        json_object_set_new(xo, "salt", json_string(x->salt));
        json_object_set_new(xo, "variants", vars);
        json_array_append_new(arr, xo);
    }
    free(h);
    json_t *out = json_object();
    json_object_set_new(out, "experiments", arr);
    return out;
}

/* Everything the Prometheus text needs of one live variant. */
typedef struct prom_var {
    const char *exp, *var;
    sums_t sums;
    recd_ab_readout_t ro;
    uint64_t prom[RECD_PROM_NBUCKETS]; /* per bucket, not cumulative */
    uint64_t count, sum_us;
} prom_var_t;

static void family(char **b, size_t *l, size_t *c, const char *name, const char *type,
                   const char *help)
{
    recd_stats_bufprintf(b, l, c, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One gauge family over all variants; samples whose value is NaN left out. */
static void gauge(char **b, size_t *l, size_t *c, const char *name, const char *help,
                  const prom_var_t *pv, size_t n, size_t off)
{
    family(b, l, c, name, "gauge", help);
    for (size_t i = 0; i < n; i++) {
        double x = *(const double *)((const char *)&pv[i].ro + off);
        if (isfinite(x))
            recd_stats_bufprintf(b, l, c, "%s{experiment=\"%s\",variant=\"%s\"} %.15g\n", name,
                                 pv[i].exp, pv[i].var, x);
    }
}

void recd_abrt_stats_prom(char **buf, size_t *len, size_t *cap)
{
    const snap_t *s = live();
    if (!s || s->set.n == 0)
        return;
    size_t n = 0;
    for (size_t e = 0; e < s->set.n; e++)
        n += s->set.exps[e].n_variants;
    prom_var_t *pv = calloc(n, sizeof *pv);
    recd_hist_snap_t *h = malloc(sizeof *h);
    if (!pv || !h) {
        free(pv);
        free(h);
        return;
    }
    size_t i = 0;
    for (size_t e = 0; e < s->set.n; e++) {
        const recd_ab_exp_t *x = &s->set.exps[e];
        sums_t sums[RECD_AB_MAX_VARIANTS];
        recd_ab_readout_t ro[RECD_AB_MAX_VARIANTS];
        exp_readout(s, e, sums, ro);
        for (size_t v = 0; v < x->n_variants; v++, i++) {
            sums_t unused;
            slot_sum(s->slot[e][v], &unused, h);
            pv[i].exp = x->name;
            pv[i].var = x->variants[v].name;
            pv[i].sums = sums[v];
            pv[i].ro = ro[v];
            memcpy(pv[i].prom, h->prom, sizeof pv[i].prom);
            pv[i].count = h->count;
            pv[i].sum_us = h->sum_us;
        }
    }
    free(h);

#define LBL "{experiment=\"%s\",variant=\"%s\""
    static const struct {
        const char *name, *help;
        size_t plain, forced;
    } counters[] = {
        {"recd_ab_requests_total",
         "Requests answered per A/B variant (forced=\"1\": chosen by X-Recd-Variant).",
         offsetof(sums_t, requests), offsetof(sums_t, forced_requests)},
        {"recd_ab_impressions_total", "Impression events attributed to each A/B variant.",
         offsetof(sums_t, impressions), offsetof(sums_t, forced_impressions)},
        {"recd_ab_clicks_total", "Click events attributed to each A/B variant.",
         offsetof(sums_t, clicks), offsetof(sums_t, forced_clicks)},
    };
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        family(buf, len, cap, counters[c].name, "counter", counters[c].help);
        for (i = 0; i < n; i++) {
            const char *base = (const char *)&pv[i].sums;
            uint64_t a = *(const uint64_t *)(base + counters[c].plain);
            uint64_t f = *(const uint64_t *)(base + counters[c].forced);
            recd_stats_bufprintf(buf, len, cap, "%s" LBL ",forced=\"0\"} %llu\n", counters[c].name,
                                 pv[i].exp, pv[i].var, (unsigned long long)a);
            recd_stats_bufprintf(buf, len, cap, "%s" LBL ",forced=\"1\"} %llu\n", counters[c].name,
                                 pv[i].exp, pv[i].var, (unsigned long long)f);
        }
    }

    const char *hn = "recd_ab_request_duration_seconds";
    family(buf, len, cap, hn, "histogram",
           "Latency of the requests assigned to each A/B variant (forced ones left out).");
    for (i = 0; i < n; i++) {
        uint64_t cum = 0;
        for (unsigned b = 0; b < RECD_PROM_NBUCKETS; b++) {
            cum += pv[i].prom[b];
            recd_stats_bufprintf(buf, len, cap, "%s_bucket" LBL ",le=\"%g\"} %llu\n", hn, pv[i].exp,
                                 pv[i].var, recd_prom_bounds_s[b], (unsigned long long)cum);
        }
        /* the count is read after the buckets: keep +Inf >= every bucket */
        uint64_t count = pv[i].count < cum ? cum : pv[i].count;
        recd_stats_bufprintf(buf, len, cap, "%s_bucket" LBL ",le=\"+Inf\"} %llu\n", hn, pv[i].exp,
                             pv[i].var, (unsigned long long)count);
        recd_stats_bufprintf(buf, len, cap, "%s_sum" LBL "} %.6f\n", hn, pv[i].exp, pv[i].var,
                             (double)pv[i].sum_us / 1e6);
        recd_stats_bufprintf(buf, len, cap, "%s_count" LBL "} %llu\n", hn, pv[i].exp, pv[i].var,
                             (unsigned long long)count);
    }
#undef LBL

    gauge(buf, len, cap, "recd_ab_ctr", "Click-through rate (clicks / impressions) per variant.",
          pv, n, offsetof(recd_ab_readout_t, ctr));
    gauge(buf, len, cap, "recd_ab_ctr_ci95_lower",
          "Lower end of the Wilson 95% interval of the CTR.", pv, n,
          offsetof(recd_ab_readout_t, ci_lo));
    gauge(buf, len, cap, "recd_ab_ctr_ci95_upper",
          "Upper end of the Wilson 95% interval of the CTR.", pv, n,
          offsetof(recd_ab_readout_t, ci_hi));
    gauge(buf, len, cap, "recd_ab_lift",
          "Relative CTR lift over the experiment's control (first) variant.", pv, n,
          offsetof(recd_ab_readout_t, lift));
    gauge(buf, len, cap, "recd_ab_p_value",
          "Two-sided p-value of the two-proportion z-test against the control variant.", pv, n,
          offsetof(recd_ab_readout_t, p_value));
    free(pv);
}

/* ---- definitions -------------------------------------------------------------- */

json_t *recd_abrt_defs_json(void)
{
    json_t *arr = json_array();
    const snap_t *s = live();
    for (size_t e = 0; s && e < s->set.n; e++) {
        const recd_ab_exp_t *x = &s->set.exps[e];
        json_t *vars = json_array();
        for (size_t v = 0; v < x->n_variants; v++) {
            const recd_ab_variant_t *var = &x->variants[v];
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(var->name));
            json_object_set_new(o, "weight", json_integer(var->weight));
            if (var->model[0])
                json_object_set_new(o, "model", json_string(var->model));
            if (var->version)
                json_object_set_new(o, "version", json_integer(var->version));
            if (var->candidates)
                json_object_set_new(o, "candidates", json_integer(var->candidates));
            if (var->rank >= 0)
                json_object_set_new(o, "rank", json_boolean(var->rank));
            if (var->score == RECD_AB_SCORE_PCTR)
                json_object_set_new(o, "score", json_string("pctr"));
            else if (var->score == RECD_AB_SCORE_WATCH_TIME)
                json_object_set_new(o, "score", json_string("watch_time"));
            json_object_set_new(
                o, "buckets",
                json_pack("[I,I]", (json_int_t)var->bucket_lo, (json_int_t)var->bucket_hi));
            json_array_append_new(vars, o);
        }
        json_t *xo = json_object();
        json_object_set_new(xo, "name", json_string(x->name));
        json_object_set_new(xo, "salt", json_string(x->salt));
        json_object_set_new(xo, "variants", vars);
        json_array_append_new(arr, xo);
    }
    return arr;
}
