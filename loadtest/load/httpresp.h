/*
 * recd-load: a minimal HTTP/1.1 response head parser for the client. It
 * reads the status line and the three headers that decide how the body is
 * framed and whether the connection stays open: Content-Length,
 * Transfer-Encoding and Connection. recd always sends Content-Length; a
 * response without one is read until the server closes.
 */
#ifndef RECD_LOAD_HTTPRESP_H
#define RECD_LOAD_HTTPRESP_H

#include <stddef.h>
#include <stdint.h>

typedef struct lg_resp_head {
    int status;             /* 100..599 */
    int64_t content_length; /* -1 when absent */
    int chunked;            /* Transfer-Encoding: chunked (not supported by the client) */
    int close;              /* the server closes after this response */
} lg_resp_head_t;

/* Largest response head the client accepts. */
#define LG_RESP_HEAD_MAX 16384

/* Parse a response head: p[0..len) is the status line through the empty
 * line that ends the headers ("\r\n\r\n" included). 0, or -1 with a reason
 * in *why (a static string) for a malformed head. */
int lg_resp_parse_head(const char *p, size_t len, lg_resp_head_t *h, const char **why);

#endif
