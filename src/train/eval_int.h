/* Evaluation internals shared by fit.c (a model in memory) and eval.c (a
 * published bundle). */
#ifndef RECD_TRAIN_EVAL_INT_H
#define RECD_TRAIN_EVAL_INT_H

#include "internal.h"

struct json_t;

/* A model under evaluation. score: scores of `items` (dataset item rows;
 * NULL = every item, n = N) for user u with history hist[nh]. rank_prob:
 * the ranker's probabilities for examples (NULL when there is no ranker). */
typedef struct tf_scorer {
    void *ctx;
    void (*score)(void *ctx, uint32_t u, const uint32_t *hist, size_t nh, const uint32_t *items,
                  size_t n, float *out);
    int (*rank_prob)(void *ctx, const tf_rex_t *ex, size_t n, float *p, recd_err_t *err);
} tf_scorer_t;

typedef struct tf_metrics {
    double hr10, ndcg10, recall20, ndcg20;
    double rank_hr10, rank_ndcg10;
    double auc, logloss, auc_seen, logloss_seen, auc_unseen, logloss_unseen;
    double cold_recall20;
    size_t n_test_users, n_rank_test, n_seen, n_unseen, n_cold_users;
} tf_metrics_t;

/* Every metric of the header comment of eval.c for one model. ex[nex]: all
 * ranker examples (the test part is picked by time). */
int tf_evaluate(const recd_dataset_t *ds, const tf_split_t *sp, const tf_rex_t *ex, size_t nex,
                const tf_scorer_t *sc, size_t max_len, tf_metrics_t *m, recd_err_t *err);
/* The same for a published bundle, scored through the serving code
 * (src/candgen's user tower, src/rank's network when b has a ranker
 * attached; a dataset item the bundle lacks scores -inf). Items and users
 * are matched by id; user fields come from ds's users.tsv columns and
 * context fields from its events, hashed with the bundle's own schema. */
struct recd_bundle;
int tf_eval_bundle(struct recd_bundle *b, const recd_dataset_t *ds, const tf_split_t *sp,
                   const tf_rex_t *ex, size_t nex, size_t max_len, tf_metrics_t *m,
                   recd_err_t *err);
/* Is a ranker example part of the ranker's training data under sp? */
int tf_rex_trains(const tf_split_t *sp, const tf_rex_t *x);
struct json_t *tf_metrics_json(const tf_metrics_t *m);
void tf_table_header(FILE *f);
void tf_table_row(FILE *f, const char *name, const tf_metrics_t *m);

#endif
