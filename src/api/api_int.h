/* Private to src/api: handlers defined outside api.c. */
#ifndef RECD_API_INT_H
#define RECD_API_INT_H

#include "recd/http.h"

int recd_api_h_recommend(recd_http_req_t *r, void *arg); /* GET|POST /v1/recommend */
int recd_api_h_score(recd_http_req_t *r, void *arg);     /* POST /v1/score */
int recd_api_h_similar(recd_http_req_t *r, void *arg);   /* GET /v1/similar/{item_id} */
int recd_api_h_items(recd_http_req_t *r, void *arg);     /* PUT|DELETE /v1/items/{item_id} */
int recd_api_h_events(recd_http_req_t *r, void *arg);    /* POST /v1/events */

#endif
