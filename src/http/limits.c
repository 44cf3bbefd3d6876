/* Limit arithmetic: pure, overflow-safe checks used by the server. */
#include <stdint.h>

#include "recd/http.h"

int recd_http_parse_content_length(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 19)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) /* 19 digits fit in uint64_t without wrap */
        return -1;
    *out = (int64_t)v;
    return 0;
}

int recd_http_parse_chunk_size(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 16)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = (v << 4) | (uint64_t)d;
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = v;
    return 0;
}

int recd_http_body_exceeds(int64_t have, uint64_t add, int64_t max)
{
    if (have < 0 || max < 0 || have > max)
        return 1;
    return add > (uint64_t)(max - have);
}

int recd_http_inflight_admit(uint64_t inflight, int64_t max_inflight)
{
    return max_inflight > 0 && inflight < (uint64_t)max_inflight;
}

int recd_http_conn_admit(uint64_t open, int64_t max_connections)
{
    return max_connections > 0 && open < (uint64_t)max_connections;
}

uint64_t recd_http_deadline_left_ms(uint64_t start_us, uint64_t now_us, int64_t deadline_ms)
{
    if (deadline_ms <= 0)
        return 0;
    uint64_t span =
        (uint64_t)deadline_ms > UINT64_MAX / 1000u ? UINT64_MAX : (uint64_t)deadline_ms * 1000u;
    uint64_t end = start_us > UINT64_MAX - span ? UINT64_MAX : start_us + span;
    if (now_us >= end)
        return 0;
    return (end - now_us + 999u) / 1000u;
}
