/* recd-load: growable buffer and escapers (see buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lg_buf_reserve(lg_buf_t *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void lg_buf_add(lg_buf_t *b, const void *data, size_t n)
{
    if (lg_buf_reserve(b, n) < 0)
        return;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void lg_buf_adds(lg_buf_t *b, const char *s)
{
    lg_buf_add(b, s, strlen(s));
}

void lg_buf_addc(lg_buf_t *b, char c)
{
    lg_buf_add(b, &c, 1);
}

void lg_buf_printf(lg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || lg_buf_reserve(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void lg_buf_addu(lg_buf_t *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    lg_buf_add(b, tmp + i, sizeof tmp - i);
}

void lg_buf_addi(lg_buf_t *b, int64_t v)
{
    if (v < 0) {
        lg_buf_addc(b, '-');
        lg_buf_addu(b, (uint64_t)0 - (uint64_t)v);
    } else {
        lg_buf_addu(b, (uint64_t)v);
    }
}

void lg_buf_add_json_str(lg_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    lg_buf_addc(b, '"');
    const char *run = s;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c >= 0x20 && *c != '"' && *c != '\\')
            continue;
        lg_buf_add(b, run, (size_t)((const char *)c - run));
        run = (const char *)c + 1;
        switch (*c) {
        case '"': lg_buf_add(b, "\\\"", 2); break;
        case '\\': lg_buf_add(b, "\\\\", 2); break;
        case '\n': lg_buf_add(b, "\\n", 2); break;
        case '\t': lg_buf_add(b, "\\t", 2); break;
        case '\r': lg_buf_add(b, "\\r", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15]};
            lg_buf_add(b, u, 6);
        }
        }
    }
    lg_buf_adds(b, run);
    lg_buf_addc(b, '"');
}

void lg_buf_add_url(lg_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~') {
            lg_buf_addc(b, (char)*c);
        } else {
            char e[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            lg_buf_add(b, e, 3);
        }
    }
}

void lg_buf_reset(lg_buf_t *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void lg_buf_free(lg_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

char *lg_buf_take(lg_buf_t *b, size_t *len)
{
    if (lg_buf_reserve(b, 0) < 0) {
        lg_buf_free(b);
        return NULL;
    }
    char *p = b->p;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}
