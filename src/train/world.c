/*
 * Synthetic world (include/recd/dataset.h, recd_dataset_synth): a
 * latent-factor model of users, items and feedback that a recommender can
 * learn and a test can check against.
 *
 *  - Topics: n_topics random unit directions in R^K.
 *  - Items: v_i = topic direction + noise. Popularity: a Zipf(zipf) law
 *    over a random permutation of the items, p_i ~ rank^-zipf, and a bias
 *    b_i proportional to -zipf * log(rank), centred.
 *  - Users: taste x_u = a mixture of 1-3 topics + noise, unit length; the
 *    stored factor is u = x_u / TAU so that the choice logit is u.v + b_i.
 *    Taste drifts: u_t = u + DRIFT/TAU * (t / T) * w_u.
 *  - Content follows the factors: genres from the topic (1-2 primary genres,
 *    sometimes one more), year from one factor, titles from a per-topic
 *    vocabulary, tags from a per-topic tag list; user age, gender and
 *    occupation from factors and topics.
 *  - Choice: a user considers M items drawn by popularity (mixed with a
 *    uniform share so the tail is seen) and picks by softmax of the logit
 *    (the multinomial logit of discrete choice, McFadden 1974). Slates
 *    take the top S of the logits perturbed by Gumbel noise, which is
 *    sampling without replacement from the same softmax (the Gumbel-top-k
 *    trick, Kool et al., ICML 2019).
 *  - Explicit: the picked item is rated round-half(3 + R_SCALE * (a -
 *    R_CENTER) + user offset + noise) clipped to 0.5..5, a = x_t.v.
 *  - Implicit: sessions of 5-10 impressions; a click with probability
 *    sigmoid(CLICK_A * a + CLICK_B * b_i + device - position + offset), a
 *    watch after most clicks with log-normal seconds whose mean grows with
 *    a, and sometimes a purchase.
 *
 * Every user has its own PRNG stream, so a user's events do not depend on
 * the others'. xoshiro256** (Blackman and Vigna) seeded through splitmix64
 * (Steele et al.), from recd/core.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "recd/core.h"
#include "recd/dataset.h"

#define TAU 0.25           /* softmax temperature folded into the user factors */
#define ITEM_NOISE 0.6     /* item factor noise (norm) around its topic */
#define USER_NOISE 0.4     /* user taste noise (norm) before normalising */
#define DRIFT 0.3          /* taste drift over the whole span (norm) */
#define BIAS_W 0.3         /* popularity bias per unit of -zipf * log(rank) */
#define UNIFORM_SHARE 0.25 /* share of candidates drawn uniformly */
#define M_PICK 48          /* items considered for one explicit choice */
#define M_SLATE 48         /* candidates a session's slate is drawn from */
#define MIN_EVENTS 5       /* events per user at least (when n_events allows) */
#define ACTIVITY_SIGMA 1.0 /* log-normal spread of events per user */

#define R_SCALE 2.0   /* rating per unit of affinity */
#define R_CENTER 0.25 /* affinity of a "3" */
#define R_NOISE 0.6   /* rating noise */

#define CLICK_A 2.5        /* click log-odds per unit of affinity */
#define CLICK_B 0.3        /* click log-odds per unit of popularity bias */
#define CLICK_OFFSET -3.4  /* sets the overall CTR (about 10%) */
#define CLICK_POS 0.08     /* click log-odds lost per slate position */
#define WATCH_P 0.9        /* a click leads to a watch */
#define WATCH_MEDIAN 420.0 /* seconds at affinity 0 */
#define WATCH_A 1.2        /* log seconds per unit of affinity */
#define WATCH_NOISE 0.5    /* log seconds noise */
#define BUY_OFFSET -3.5    /* purchase log-odds after a watch, plus 2 a */

/* ---- PRNG -------------------------------------------------------------------------------- */

/* The shared xoshiro256** (recd/core.h): stream S_* of the seed per purpose,
 * bounded draws by recd_rng_below_fast (one draw each), normals by
 * Marsaglia's polar method (recd_rng_gauss). */

/* Standard Gumbel. */
static double rng_gumbel(recd_rng_t *r)
{
    return -log(-log(recd_rng_open(r)));
}

enum {
    S_TOPICS = 1, /* topic directions, genres, vocabularies */
    S_ITEMS,      /* item factors and content */
    S_POP,        /* popularity permutation */
    S_USERS,      /* user tastes and demographics */
    S_ACTIVITY,   /* events per user */
    S_EVENTS,     /* + user index: a user's events */
};

/* ---- vocabularies --------------------------------------------------------------------------- */


#define NOCC 21
#define OCC_K12 10
#define OCC_RETIRED 13

static const char *const DEVICES[] = {"mobile", "desktop", "tablet", "tv"};
#define NDEV 4
static const double DEVICE_SHARE[NDEV] = {0.5, 0.25, 0.1, 0.15}; /* primary devices */
static const double DEVICE_CLICK[NDEV] = {0.0, 0.2, -0.1, -0.3}; /* click log-odds */
static const double DEVICE_WATCH[NDEV] = {-0.3, 0.0, 0.1, 0.5};  /* log watch seconds */

static const char *const COMMON_WORDS[] = {
    "The",   "Night", "Return", "Last", "City",  "Love",   "Man",    "Day",  "Dark",
    "Story", "Time",  "World",  "Life", "Home",  "Blue",   "Red",    "Lost", "House",
    "Road",  "King",  "Girl",   "War",  "Heart", "Summer", "Secret", "Game", "River"};
#define NCOMMON (sizeof COMMON_WORDS / sizeof COMMON_WORDS[0])

#define VOCAB 24 /* title words per topic */
#define NTAGS 8  /* tags per topic */
#define WORD_MAX 12

/* A pronounceable token of 2-3 syllables into buf (>= WORD_MAX bytes). */
static void make_word(recd_rng_t *r, char *buf, int capital)
{
    static const char C[] = "bcdfghjklmnprstvz";
    static const char V[] = "aeiou";
    int syl = 2 + (int)recd_rng_below_fast(r, 2), n = 0;
    for (int s = 0; s < syl; s++) {
        buf[n++] = C[recd_rng_below_fast(r, sizeof C - 1)];
        buf[n++] = V[recd_rng_below_fast(r, sizeof V - 1)];
    }
    if (recd_rng_below_fast(r, 2))
        buf[n++] = C[recd_rng_below_fast(r, sizeof C - 1)];
    buf[n] = '\0';
    if (capital)
        buf[0] = (char)(buf[0] - 'a' + 'A');
}

/* ---- the world --------------------------------------------------------------------------------
 */

typedef struct topic {
    double *dir; /* [K], unit */
    int genre[2], ngenres;
    int occupation;
    char words[VOCAB][WORD_MAX];
    char tags[NTAGS][WORD_MAX];
} topic_t;

typedef struct world {
    const recd_world_opts_t *o;
    size_t K, T, U, I;
    topic_t *topics;
    double *dirs;      /* [T * K] */
    float *v;          /* [I * K] item factors (truth) */
    float *b;          /* [I] item bias (truth) */
    float *u;          /* [U * K] user factors at t = 0 (truth, scaled by 1/TAU) */
    float *w;          /* [U * K] drift directions */
    uint32_t *utopic;  /* [U] the user's main topic */
    float *uoffset;    /* [U] rating offset */
    uint8_t *udevice;  /* [U] primary device */
    double *alias_p;   /* [I] alias method (Walker; Vose's construction) */
    uint32_t *alias_a; /* [I] */
    uint32_t *counts;  /* [U] events per user */
} world_t;

static float quant(double x)
{
    return (float)(round(x * 10000.0) / 10000.0) + 0.0f; /* never -0: files keep "0" */
}

static void unit_vector(recd_rng_t *r, double *v, size_t k)
{
    double n2;
    do {
        n2 = 0;
        for (size_t j = 0; j < k; j++) {
            v[j] = recd_rng_gauss(r);
            n2 += v[j] * v[j];
        }
    } while (n2 < 1e-12);
    double inv = 1.0 / sqrt(n2);
    for (size_t j = 0; j < k; j++)
        v[j] *= inv;
}

static int make_topics(world_t *w)
{
    recd_rng_t r;
    recd_rng_seed_stream(&r, w->o->seed, S_TOPICS);
    w->topics = calloc(w->T, sizeof *w->topics);
    w->dirs = malloc(w->T * w->K * sizeof *w->dirs);
    if (!w->topics || !w->dirs)
        return -1;
    for (size_t t = 0; t < w->T; t++) {
        topic_t *tp = &w->topics[t];
        tp->dir = w->dirs + t * w->K;
        unit_vector(&r, tp->dir, w->K);
        tp->genre[0] = (int)recd_rng_below_fast(&r, TF_NGENRES);
        tp->ngenres = 1;
        if (recd_rng_unit(&r) < 0.6) {
            int g = (int)recd_rng_below_fast(&r, TF_NGENRES - 1);
            tp->genre[1] = g >= tp->genre[0] ? g + 1 : g;
            tp->ngenres = 2;
        }
        tp->occupation = (int)recd_rng_below_fast(&r, NOCC);
        for (int k = 0; k < VOCAB; k++)
            make_word(&r, tp->words[k], 1);
        for (int k = 0; k < NTAGS; k++)
            make_word(&r, tp->tags[k], 0);
    }
    return 0;
}

/* Walker's alias table over q_i = (1 - UNIFORM_SHARE) p_i + UNIFORM_SHARE / I. */
static int make_popularity(world_t *w)
{
    size_t I = w->I;
    uint32_t *rank = malloc(I * sizeof *rank);
    double *q = malloc(I * sizeof *q);
    uint32_t *small = malloc(I * sizeof *small), *large = malloc(I * sizeof *large);
    w->alias_p = malloc(I * sizeof *w->alias_p);
    w->alias_a = malloc(I * sizeof *w->alias_a);
    w->b = malloc(I * sizeof *w->b);
    int rc = -1;
    if (!rank || !q || !small || !large || !w->alias_p || !w->alias_a || !w->b)
        goto out;
    recd_rng_t r;
    recd_rng_seed_stream(&r, w->o->seed, S_POP);
    for (size_t i = 0; i < I; i++)
        rank[i] = (uint32_t)i;
    for (size_t i = I; i > 1; i--) { /* Fisher-Yates */
        uint32_t j = recd_rng_below_fast(&r, (uint32_t)i);
        uint32_t t = rank[i - 1];
        rank[i - 1] = rank[j];
        rank[j] = t;
    }
    double z = w->o->zipf, sum = 0, mean_log = 0;
    for (size_t i = 0; i < I; i++) {
        double lr = log((double)rank[i] + 1.0);
        q[i] = exp(-z * lr);
        sum += q[i];
        mean_log += lr;
    }
    mean_log /= (double)I;
    for (size_t i = 0; i < I; i++) {
        q[i] = (1.0 - UNIFORM_SHARE) * q[i] / sum + UNIFORM_SHARE / (double)I;
        w->b[i] = quant(-BIAS_W * z * (log((double)rank[i] + 1.0) - mean_log));
    }
    /* Vose: scale to mean 1, pair small with large */
    size_t ns = 0, nl = 0;
    for (size_t i = 0; i < I; i++) {
        q[i] *= (double)I;
        if (q[i] < 1.0)
            small[ns++] = (uint32_t)i;
        else
            large[nl++] = (uint32_t)i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[nl - 1];
        w->alias_p[s] = q[s];
        w->alias_a[s] = l;
        q[l] = (q[l] + q[s]) - 1.0;
        if (q[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl) {
        uint32_t l = large[--nl];
        w->alias_p[l] = 1.0;
        w->alias_a[l] = l;
    }
    while (ns) {
        uint32_t s = small[--ns];
        w->alias_p[s] = 1.0;
        w->alias_a[s] = s;
    }
    rc = 0;
out:
    free(rank);
    free(q);
    free(small);
    free(large);
    return rc;
}

/* n popularity draws into cand[]; their factor rows are prefetched so
 * that the cache misses of a whole candidate set overlap (with 100k items
 * the factors do not fit in cache, and waiting for each row in turn made
 * generation memory-latency bound). */
static void draw_candidates(const world_t *w, recd_rng_t *r, uint32_t *cand, size_t n)
{
    size_t row = w->K * sizeof(float);
    uint32_t frac[M_SLATE > M_PICK ? M_SLATE : M_PICK];
    /* the alias method in two passes, for the same reason */
    for (size_t j = 0; j < n; j++) {
        uint64_t x = recd_rng_next(r);
        cand[j] = (uint32_t)(((x >> 32) * (uint64_t)w->I) >> 32);
        frac[j] = (uint32_t)x;
        __builtin_prefetch(w->alias_p + cand[j]);
        __builtin_prefetch(w->alias_a + cand[j]);
    }
    for (size_t j = 0; j < n; j++)
        if (!((double)frac[j] * 0x1.0p-32 < w->alias_p[cand[j]]))
            cand[j] = w->alias_a[cand[j]];
    for (size_t j = 0; j < n; j++) {
        const char *p = (const char *)(w->v + (size_t)cand[j] * w->K);
        for (size_t off = 0; off < row; off += 64)
            __builtin_prefetch(p + off);
        __builtin_prefetch(p + row - 1);
        __builtin_prefetch(w->b + cand[j]);
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Items: factors and content rows. */
static int make_items(world_t *w, recd_dataset_t *ds, recd_err_t *err)
{
    size_t K = w->K;
    recd_rng_t r;
    recd_rng_seed_stream(&r, w->o->seed, S_ITEMS);
    w->v = malloc(w->I * K * sizeof *w->v);
    if (!w->v)
        return recd_err_set(err, RECD_ENOMEM, "out of memory (item factors)");
    double sk = sqrt((double)K);
    for (size_t i = 0; i < w->I; i++) {
        const topic_t *tp = &w->topics[recd_rng_below_fast(&r, (uint32_t)w->T)];
        for (size_t j = 0; j < K; j++)
            w->v[i * K + j] = quant(tp->dir[j] + ITEM_NOISE * recd_rng_gauss(&r) / sk);
        /* genres: the topic's, sometimes one more, in the list's order */
        int g[3], ng = 0;
        for (int k = 0; k < tp->ngenres; k++)
            g[ng++] = tp->genre[k];
        if (recd_rng_unit(&r) < 0.15) {
            int x = (int)recd_rng_below_fast(&r, TF_NGENRES);
            int dup = 0;
            for (int k = 0; k < ng; k++)
                dup |= g[k] == x;
            if (!dup)
                g[ng++] = x;
        }
        qsort(g, (size_t)ng, sizeof *g, cmp_int);
        char genres[128] = "";
        for (int k = 0; k < ng; k++) {
            if (k)
                strcat(genres, "|");
            strcat(genres, tf_genres[g[k]]);
        }
        /* year: factor 1, plus noise */
        double yz = w->v[i * K + 1 % K] * sk;
        long year = lround(1992.0 + 14.0 * yz + 8.0 * recd_rng_gauss(&r));
        year = year < 1930 ? 1930 : year > 2020 ? 2020 : year;
        /* title: 2-4 words, mostly the topic's */
        char title[4 * (WORD_MAX + 1)] = "";
        int nw = 2 + (int)recd_rng_below_fast(&r, 3);
        for (int k = 0; k < nw; k++) {
            if (k)
                strcat(title, " ");
            strcat(title, recd_rng_unit(&r) < 0.75
                              ? tp->words[recd_rng_below_fast(&r, VOCAB)]
                              : COMMON_WORDS[recd_rng_below_fast(&r, NCOMMON)]);
        }
        /* tags: 0-3 distinct of the topic's */
        double u = recd_rng_unit(&r);
        int nt = u < 0.3 ? 0 : u < 0.6 ? 1 : u < 0.85 ? 2 : 3;
        int picked[3];
        char tags[3 * (WORD_MAX + 1)] = "";
        for (int k = 0; k < nt; k++) {
            int x, dup;
            do {
                x = (int)recd_rng_below_fast(&r, NTAGS);
                dup = 0;
                for (int m = 0; m < k; m++)
                    dup |= picked[m] == x;
            } while (dup);
            picked[k] = x;
            if (k)
                strcat(tags, "|");
            strcat(tags, tp->tags[x]);
        }
        char id[32], ys[16];
        snprintf(id, sizeof id, "i%zu", i);
        snprintf(ys, sizeof ys, "%ld", year);
        const char *cells[5] = {id, title, genres, ys, tags};
        int64_t row = recd_dataset_add_item(ds, cells, err);
        if (row < 0)
            return (int)row;
    }
    return 0;
}

static double sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

/* Users: tastes, drift, demographics. */
static int make_users(world_t *w, recd_dataset_t *ds, recd_err_t *err)
{
    size_t K = w->K;
    recd_rng_t r;
    recd_rng_seed_stream(&r, w->o->seed, S_USERS);
    w->u = malloc(w->U * K * sizeof *w->u);
    w->w = malloc(w->U * K * sizeof *w->w);
    w->utopic = malloc(w->U * sizeof *w->utopic);
    w->uoffset = malloc(w->U * sizeof *w->uoffset);
    w->udevice = malloc(w->U);
    double *x = malloc(K * sizeof *x);
    if (!w->u || !w->w || !w->utopic || !w->uoffset || !w->udevice || !x) {
        free(x);
        return recd_err_set(err, RECD_ENOMEM, "out of memory (users)");
    }
    double sk = sqrt((double)K);
    for (size_t u = 0; u < w->U; u++) {
        /* taste: 1-3 topics with random weights, the first the largest */
        int nt = 1 + (int)recd_rng_below_fast(&r, 3);
        uint32_t tops[3];
        double wt[3], wsum = 0;
        for (int k = 0; k < nt; k++) {
            tops[k] = recd_rng_below_fast(&r, (uint32_t)w->T);
            wt[k] = 0.2 + recd_rng_unit(&r);
            wsum += wt[k];
        }
        int main_k = 0;
        for (int k = 1; k < nt; k++)
            if (wt[k] > wt[main_k])
                main_k = k;
        w->utopic[u] = tops[main_k];
        double n2 = 0;
        for (size_t j = 0; j < K; j++) {
            double s = 0;
            for (int k = 0; k < nt; k++)
                s += wt[k] / wsum * w->topics[tops[k]].dir[j];
            x[j] = s + USER_NOISE * recd_rng_gauss(&r) / sk;
            n2 += x[j] * x[j];
        }
        double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0;
        for (size_t j = 0; j < K; j++) {
            x[j] *= inv;
            w->u[u * K + j] = quant(x[j] / TAU);
            w->w[u * K + j] = (float)(recd_rng_gauss(&r) / sk);
        }
        w->uoffset[u] = (float)(0.3 * recd_rng_gauss(&r));
        double d = recd_rng_unit(&r), acc = 0;
        w->udevice[u] = NDEV - 1;
        for (int k = 0; k < NDEV; k++) {
            acc += DEVICE_SHARE[k];
            if (d < acc) {
                w->udevice[u] = (uint8_t)k;
                break;
            }
        }
        /* demographics from taste: age from factor 0, gender from factor 2 */
        long age = lround(35.0 + 12.0 * x[0] * sk + 8.0 * recd_rng_gauss(&r));
        age = age < 13 ? 13 : age > 70 ? 70 : age;
        const char *gender = recd_rng_unit(&r) < sigmoid(1.2 * x[2 % K] * sk) ? "M" : "F";
        int occ;
        double o = recd_rng_unit(&r);
        if (age < 18 && o < 0.8)
            occ = OCC_K12;
        else if (age >= 65 && o < 0.7)
            occ = OCC_RETIRED;
        else if (recd_rng_unit(&r) < 0.5)
            occ = w->topics[w->utopic[u]].occupation;
        else
            occ = (int)recd_rng_below_fast(&r, NOCC);
        char id[32], as[16];
        snprintf(id, sizeof id, "u%zu", u);
        snprintf(as, sizeof as, "%ld", age);
        const char *cells[4] = {id, as, gender, tf_occupations[occ]};
        int64_t row = recd_dataset_add_user(ds, cells, err);
        if (row < 0) {
            free(x);
            return (int)row;
        }
    }
    free(x);
    return 0;
}

/* Events per user: MIN_EVENTS plus a log-normal share of the rest, rounded
 * so that the total is exactly n_events (before the explicit cap). */
static int make_activity(world_t *w)
{
    size_t U = w->U, E = w->o->n_events;
    w->counts = malloc(U * sizeof *w->counts);
    double *wt = malloc(U * sizeof *wt);
    if (!w->counts || !wt) {
        free(wt);
        return -1;
    }
    recd_rng_t r;
    recd_rng_seed_stream(&r, w->o->seed, S_ACTIVITY);
    size_t minc = E / U < MIN_EVENTS ? E / U : MIN_EVENTS;
    double sum = 0;
    for (size_t u = 0; u < U; u++) {
        wt[u] = exp(ACTIVITY_SIGMA * recd_rng_gauss(&r));
        sum += wt[u];
    }
    double rest = (double)(E - minc * U), acc = 0;
    size_t given = 0;
    size_t cap = w->o->implicit ? SIZE_MAX : (w->I / 2 > 0 ? w->I / 2 : 1);
    for (size_t u = 0; u < U; u++) {
        acc += wt[u];
        size_t upto = (size_t)llround(rest * acc / sum);
        size_t c = minc + (upto - given);
        given = upto;
        w->counts[u] = (uint32_t)(c < cap ? c : cap);
    }
    free(wt);
    return 0;
}

static void world_free(world_t *w)
{
    free(w->topics);
    free(w->dirs);
    free(w->v);
    free(w->b);
    free(w->u);
    free(w->w);
    free(w->utopic);
    free(w->uoffset);
    free(w->udevice);
    free(w->alias_p);
    free(w->alias_a);
    free(w->counts);
}

/* ---- events -----------------------------------------------------------------------------------
 */

typedef struct scratch {
    int64_t *times; /* a user's interaction / session times */
    size_t times_cap;
    uint32_t *set;   /* items a user rated (open addressing, item + 1) */
    size_t set_cap;  /* allocated slots */
    size_t set_size; /* slots in use for this user (a power of two) */
    double *ut;      /* [K] taste at t */
    uint32_t cand[M_SLATE > M_PICK ? M_SLATE : M_PICK];
    double logit[M_SLATE > M_PICK ? M_SLATE : M_PICK];
} scratch_t;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int set_has(const scratch_t *s, uint32_t item)
{
    size_t mask = s->set_size - 1;
    for (size_t p = (item * 0x9e3779b1u) & mask;; p = (p + 1) & mask) {
        if (s->set[p] == 0)
            return 0;
        if (s->set[p] == item + 1)
            return 1;
    }
}

static void set_add(scratch_t *s, uint32_t item)
{
    size_t mask = s->set_size - 1;
    size_t p = (item * 0x9e3779b1u) & mask;
    while (s->set[p] != 0 && s->set[p] != item + 1)
        p = (p + 1) & mask;
    s->set[p] = item + 1;
}

static double dot(const double *a, const float *b, size_t k)
{
    double s = 0;
    for (size_t j = 0; j < k; j++)
        s += a[j] * b[j];
    return s;
}

/* Taste of user u at time frac of the span (0..1). */
static void taste_at(const world_t *w, size_t u, double frac, double *ut)
{
    size_t K = w->K;
    double d = DRIFT / TAU * frac;
    for (size_t j = 0; j < K; j++)
        ut[j] = (double)w->u[u * K + j] + d * (double)w->w[u * K + j];
}

/* Interaction (or session) times of user u: uniform over its window. */
static int user_times(const world_t *w, recd_rng_t *r, scratch_t *s, size_t n, int64_t span)
{
    if (n > s->times_cap) {
        int64_t *t = realloc(s->times, n * sizeof *t);
        if (!t)
            return -1;
        s->times = t;
        s->times_cap = n;
    }
    double len = (double)span * (0.05 + 0.95 * recd_rng_unit(r));
    double start = recd_rng_unit(r) * ((double)span - len);
    for (size_t k = 0; k < n; k++)
        s->times[k] = (int64_t)(start + recd_rng_unit(r) * len);
    qsort(s->times, n, sizeof *s->times, cmp_i64);
    return 0;
}

static int user_explicit(const world_t *w, recd_dataset_t *ds, size_t u, scratch_t *s, int64_t span,
                         recd_err_t *err)
{
    size_t n = w->counts[u], K = w->K;
    if (!n)
        return 0;
    recd_rng_t r;
    recd_rng_seed_stream(&r, w->o->seed, (uint64_t)S_EVENTS + u);
    if (user_times(w, &r, s, n, span) != 0)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    size_t need = 64;
    while (need < 2 * n)
        need *= 2;
    if (need > s->set_cap) {
        free(s->set);
        s->set_cap = need;
        if (!(s->set = malloc(need * sizeof *s->set)))
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    s->set_size = need; /* only what this user needs is cleared */
    memset(s->set, 0, need * sizeof *s->set);
    for (size_t k = 0; k < n; k++) {
        int64_t t = s->times[k];
        taste_at(w, u, (double)t / (double)span, s->ut);
        /* M_PICK draws, less the items already rated (again, a few times,
         * when a heavy rater has seen all of them) */
        size_t m = 0;
        for (int batch = 0; batch < 4 && m == 0; batch++) {
            draw_candidates(w, &r, s->cand, M_PICK);
            for (size_t j = 0; j < M_PICK; j++)
                if (!set_has(s, s->cand[j]))
                    s->cand[m++] = s->cand[j];
        }
        if (!m)
            continue;
        for (size_t j = 0; j < m; j++)
            s->logit[j] = dot(s->ut, w->v + (size_t)s->cand[j] * K, K) + w->b[s->cand[j]];
        double mx = s->logit[0];
        for (size_t j = 1; j < m; j++)
            if (s->logit[j] > mx)
                mx = s->logit[j];
        double tot = 0;
        for (size_t j = 0; j < m; j++) {
            s->logit[j] = exp(s->logit[j] - mx);
            tot += s->logit[j];
        }
        double pick = recd_rng_unit(&r) * tot;
        size_t j = 0;
        while (j + 1 < m && pick >= s->logit[j]) {
            pick -= s->logit[j];
            j++;
        }
        uint32_t it = s->cand[j];
        set_add(s, it);
        double a = TAU * dot(s->ut, w->v + (size_t)it * K, K);
        double raw = 3.0 + R_SCALE * (a - R_CENTER) + w->uoffset[u] + 0.2 * w->b[it] +
                     R_NOISE * recd_rng_gauss(&r);
        double rating = floor(raw * 2.0 + 0.5) / 2.0;
        rating = rating < 0.5 ? 0.5 : rating > 5.0 ? 5.0 : rating;
        int rc = recd_dataset_add_event(ds, (uint32_t)u, it, RECD_WORLD_T0 + t, RECD_EV_RATING,
                                        (float)rating, NULL, err);
        if (rc)
            return rc;
    }
    return 0;
}

#define EVENTS_PER_SESSION 9.0 /* about: 7.5 impressions, 0.75 clicks, 0.7 watches */

static int user_implicit(const world_t *w, recd_dataset_t *ds, size_t u, scratch_t *s, int64_t span,
                         recd_err_t *err)
{
    size_t budget = w->counts[u], K = w->K;
    if (!budget)
        return 0;
    recd_rng_t r;
    recd_rng_seed_stream(&r, w->o->seed, (uint64_t)S_EVENTS + u);
    /* sessions until the budget is met on average (at least one) */
    size_t nsess = (size_t)llround((double)budget / EVENTS_PER_SESSION);
    if (nsess < 1)
        nsess = 1;
    if (user_times(w, &r, s, nsess, span) != 0)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    for (size_t k = 0; k < nsess; k++) {
        int64_t t = s->times[k];
        taste_at(w, u, (double)t / (double)span, s->ut);
        int dev = recd_rng_unit(&r) < 0.7 ? w->udevice[u] : (int)recd_rng_below_fast(&r, NDEV);
        const char *ctx[1] = {DEVICES[dev]};
        int slate = 5 + (int)recd_rng_below_fast(&r, 6);
        /* Gumbel-top-k over M_SLATE popularity-drawn candidates */
        draw_candidates(w, &r, s->cand, M_SLATE);
        for (size_t j = 0; j < M_SLATE; j++) {
            uint32_t it = s->cand[j];
            s->logit[j] = dot(s->ut, w->v + (size_t)it * K, K) + w->b[it] + rng_gumbel(&r);
        }
        for (int pos = 0; pos < slate; pos++) {
            size_t best = M_SLATE;
            for (size_t j = 0; j < M_SLATE; j++)
                if (s->logit[j] > -INFINITY && (best == M_SLATE || s->logit[j] > s->logit[best]))
                    best = j;
            if (best == M_SLATE)
                break;
            uint32_t it = s->cand[best];
            for (size_t j = 0; j < M_SLATE; j++) /* the item once per slate */
                if (s->cand[j] == it)
                    s->logit[j] = -INFINITY;
            int64_t ts = RECD_WORLD_T0 + t;
            int rc =
                recd_dataset_add_event(ds, (uint32_t)u, it, ts, RECD_EV_IMPRESSION, 0.0f, ctx, err);
            if (rc)
                return rc;
            double a = TAU * dot(s->ut, w->v + (size_t)it * K, K);
            double pc = sigmoid(CLICK_A * a + CLICK_B * w->b[it] + DEVICE_CLICK[dev] -
                                CLICK_POS * pos + CLICK_OFFSET);
            if (recd_rng_unit(&r) >= pc)
                continue;
            int64_t tc = ts + 5 + 15 * pos + (int64_t)recd_rng_below_fast(&r, 30);
            if ((rc = recd_dataset_add_event(ds, (uint32_t)u, it, tc, RECD_EV_CLICK, 0.0f, ctx,
                                             err)))
                return rc;
            if (recd_rng_unit(&r) >= WATCH_P)
                continue;
            double secs = exp(log(WATCH_MEDIAN) + WATCH_A * a + DEVICE_WATCH[dev] +
                              WATCH_NOISE * recd_rng_gauss(&r));
            secs = secs < 5 ? 5 : secs > 14400 ? 14400 : secs;
            long whole = lround(secs);
            int64_t tw = tc + whole;
            if ((rc = recd_dataset_add_event(ds, (uint32_t)u, it, tw, RECD_EV_WATCH, (float)whole,
                                             ctx, err)))
                return rc;
            if (recd_rng_unit(&r) < sigmoid(BUY_OFFSET + 2.0 * a) &&
                (rc = recd_dataset_add_event(ds, (uint32_t)u, it,
                                             tw + 1 + (int64_t)recd_rng_below_fast(&r, 300),
                                             RECD_EV_PURCHASE, 0.0f, ctx, err)))
                return rc;
        }
    }
    return 0;
}

/* ---- entry points ------------------------------------------------------------------------------
 */

void recd_world_defaults(recd_world_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->n_users = 5000;
    o->n_items = 20000;
    o->n_events = 200000;
    o->n_factors = 16;
    o->n_topics = 24;
    o->implicit = 1;
    o->zipf = 1.0;
    o->days = 180;
    o->seed = 1;
}

static int validate(const recd_world_opts_t *o, recd_err_t *err)
{
    if (o->n_users < 1 || o->n_users > 10000000)
        return recd_err_set(err, RECD_EINVAL, "users: %zu is not in 1..10000000", o->n_users);
    if (o->n_items < 1 || o->n_items > 10000000)
        return recd_err_set(err, RECD_EINVAL, "items: %zu is not in 1..10000000", o->n_items);
    if (o->n_events < 1 || o->n_events > 100000000)
        return recd_err_set(err, RECD_EINVAL, "events: %zu is not in 1..100000000", o->n_events);
    if (o->n_factors < 2 || o->n_factors > 256)
        return recd_err_set(err, RECD_EINVAL, "factors: %zu is not in 2..256", o->n_factors);
    if (o->n_topics < 1 || o->n_topics > 10000)
        return recd_err_set(err, RECD_EINVAL, "topics: %zu is not in 1..10000", o->n_topics);
    if (!(o->zipf >= 0.0 && o->zipf <= 5.0))
        return recd_err_set(err, RECD_EINVAL, "zipf: %g is not in 0..5", o->zipf);
    if (o->days < 1 || o->days > 3650)
        return recd_err_set(err, RECD_EINVAL, "days: %d is not in 1..3650", o->days);
    if (o->implicit != 0 && o->implicit != 1)
        return recd_err_set(err, RECD_EINVAL, "implicit: must be 0 or 1");
    return 0;
}

int recd_dataset_synth(const recd_world_opts_t *o, recd_dataset_t **out, recd_err_t *err)
{
    *out = NULL;
    int rc = validate(o, err);
    if (rc)
        return rc;
    world_t w;
    memset(&w, 0, sizeof w);
    w.o = o;
    w.K = o->n_factors;
    w.T = o->n_topics;
    w.U = o->n_users;
    w.I = o->n_items;
    static const char *const ITEM_COLS[] = {"id", "title", "genres", "year", "tags"};
    static const char *const USER_COLS[] = {"id", "age", "gender", "occupation"};
    static const char *const CTX[] = {"device"};
    char source[256];
    snprintf(source, sizeof source,
             "synth: users=%zu items=%zu events=%zu factors=%zu topics=%zu kind=%s zipf=%g "
             "days=%d seed=%llu",
             o->n_users, o->n_items, o->n_events, o->n_factors, o->n_topics,
             o->implicit ? "implicit" : "explicit", o->zipf, o->days, (unsigned long long)o->seed);
    recd_dataset_t *ds = recd_dataset_new(source, o->implicit, ITEM_COLS, 5, USER_COLS, 4, CTX,
                                          o->implicit ? 1 : 0, err);
    scratch_t s;
    memset(&s, 0, sizeof s);
    if (!ds)
        return err ? err->code : RECD_ENOMEM;
    if (make_topics(&w) != 0 || make_popularity(&w) != 0) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (topics, popularity)");
        goto fail;
    }
    if ((rc = make_items(&w, ds, err)) || (rc = make_users(&w, ds, err)))
        goto fail;
    if (make_activity(&w) != 0 || !(s.ut = malloc(w.K * sizeof *s.ut))) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (activity)");
        goto fail;
    }
    if ((rc = recd_dataset_reserve_events(ds, o->n_events + o->n_events / 8 + 64, err)))
        goto fail;
    int64_t span = (int64_t)o->days * 86400;
    for (size_t u = 0; u < w.U; u++) {
        rc = o->implicit ? user_implicit(&w, ds, u, &s, span, err)
                         : user_explicit(&w, ds, u, &s, span, err);
        if (rc)
            goto fail;
    }
    if ((rc = recd_dataset_sort_events(ds, err)))
        goto fail;
    /* the truth: ownership moves to the dataset */
    recd_dataset_set_truth(ds, w.K, w.u, w.v, w.b);
    w.u = w.v = w.b = NULL;
    world_free(&w);
    free(s.times);
    free(s.set);
    free(s.ut);
    *out = ds;
    return 0;
fail:
    world_free(&w);
    free(s.times);
    free(s.set);
    free(s.ut);
    recd_dataset_free(ds);
    return rc;
}
