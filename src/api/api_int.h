/* Private to src/api: handlers defined outside api.c. */
#ifndef RECD_API_INT_H
#define RECD_API_INT_H

#include "recd/http.h"

int recd_api_h_recommend(recd_http_req_t *r, void *arg); /* GET|POST /v1/recommend */
int recd_api_h_score(recd_http_req_t *r, void *arg);     /* POST /v1/score */
int recd_api_h_similar(recd_http_req_t *r, void *arg);   /* GET /v1/similar/{item_id} */
int recd_api_h_items(recd_http_req_t *r, void *arg);     /* PUT|DELETE /v1/items/{item_id} */
int recd_api_h_events(recd_http_req_t *r, void *arg);    /* POST /v1/events */

/* Admin API of the model lifecycle and the trainer (admin_models.c); admin
 * listener only. Lifecycle commands answer asynchronously: the handler
 * queues the command and returns RECD_HTTP_ASYNC, the answer is posted
 * back to the request's loop when the manager thread is done. */
/* GET /admin/models: recd_lc_status_json() as it is. */
int recd_api_h_admin_models(recd_http_req_t *r, void *arg);
/* POST /admin/models/{name}/load|pin|unpin|rollback|rescan (the verb is
 * the last path segment). */
int recd_api_h_admin_model_cmd(recd_http_req_t *r, void *arg);
/* POST /admin/rescan: look for new versions of every model. */
int recd_api_h_admin_rescan(recd_http_req_t *r, void *arg);
/* POST /admin/train: arg is the const recd_api_hooks_t * whose train hook
 * starts a cycle (202; 409 while one runs; 404 without a trainer). */
int recd_api_h_admin_train(recd_http_req_t *r, void *arg);

#endif
