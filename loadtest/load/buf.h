/*
 * recd-load: a growable byte buffer and the escapers the request builder
 * needs (JSON string literals, URL path segments).
 */
#ifndef RECD_LOAD_BUF_H
#define RECD_LOAD_BUF_H

#include <stddef.h>
#include <stdint.h>

/* A NUL-terminated growable buffer. A zeroed struct is an empty buffer. On
 * out-of-memory the buffer keeps its old contents and sets `oom`; callers
 * check it once after building. */
typedef struct lg_buf {
    char *p;
    size_t len, cap;
    int oom;
} lg_buf_t;

/* Make room for n more bytes (plus the NUL); 0 or -1 (oom set). */
int lg_buf_reserve(lg_buf_t *b, size_t n);
/* Append n bytes / a C string / one character. */
void lg_buf_add(lg_buf_t *b, const void *data, size_t n);
void lg_buf_adds(lg_buf_t *b, const char *s);
void lg_buf_addc(lg_buf_t *b, char c);
/* Append printf-formatted text. */
void lg_buf_printf(lg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append an unsigned / signed decimal integer. */
void lg_buf_addu(lg_buf_t *b, uint64_t v);
void lg_buf_addi(lg_buf_t *b, int64_t v);
/* Append s as a JSON string literal, quotes included (", \ and control
 * characters escaped; other bytes, UTF-8 included, copied). */
void lg_buf_add_json_str(lg_buf_t *b, const char *s);
/* Append s percent-encoded for one URL path segment or query value: RFC
 * 3986 unreserved characters as they are, every other byte as %XX. */
void lg_buf_add_url(lg_buf_t *b, const char *s);
/* Empty the buffer, keeping its memory. */
void lg_buf_reset(lg_buf_t *b);
/* Release the memory; the buffer is empty and reusable afterwards. */
void lg_buf_free(lg_buf_t *b);
/* Hand the contents to the caller (malloc'ed, NUL-terminated; never NULL
 * unless out of memory) and leave the buffer empty. */
char *lg_buf_take(lg_buf_t *b, size_t *len);

#endif
