/* Buffered line reader for the trainer's text inputs (datasets and
 * MovieLens files): lines are returned in place, NUL-terminated, without
 * their line end; a last line without one is accepted. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define LINES_MAX (64u << 20)

int tf_lines_open(tf_lines_t *r, const char *path, int text, recd_err_t *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->text = text;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return recd_err_set(err, errno == ENOENT ? RECD_ENOENT : RECD_EIO, "%s: %s", path,
                            strerror(errno));
    r->cap = 1 << 20;
    if (!(r->buf = malloc(r->cap))) {
        close(r->fd);
        r->fd = -1;
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    return 0;
}

void tf_lines_close(tf_lines_t *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

int tf_lines_next(tf_lines_t *r, char **line, size_t *n, recd_err_t *err)
{
    for (;;) {
        char *nl = r->pos < r->len ? memchr(r->buf + r->pos, '\n', r->len - r->pos) : NULL;
        if (nl || (r->eof && r->pos < r->len)) {
            char *s = r->buf + r->pos;
            size_t len = nl ? (size_t)(nl - s) : r->len - r->pos;
            r->pos += len + (nl ? 1 : 0);
            r->line++;
            if (r->text) {
                if (len && s[len - 1] == '\r')
                    len--;
                s[len] = '\0';
                if (r->line == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
                    s += 3;
                    len -= 3;
                }
            } else {
                s[len] = '\0'; /* the '\n', or the byte kept free at the end */
                if (memchr(s, '\0', len))
                    return recd_err_set(err, RECD_EINVAL, "%s:%zu: NUL byte in the line",
                                        r->path, r->line);
            }
            *line = s;
            *n = len;
            return 1;
        }
        if (r->eof)
            return 0;
        if (r->pos > 0) {
            memmove(r->buf, r->buf + r->pos, r->len - r->pos);
            r->len -= r->pos;
            r->pos = 0;
        }
        if (r->len + 1 >= r->cap) {
            if (r->cap >= LINES_MAX)
                return recd_err_set(err, RECD_EINVAL, "%s:%zu: line longer than %u MiB",
                                    r->path, r->line + 1, LINES_MAX >> 20);
            char *nb = realloc(r->buf, r->cap * 2);
            if (!nb)
                return recd_err_set(err, RECD_ENOMEM, "out of memory");
            r->buf = nb;
            r->cap *= 2;
        }
        ssize_t got = read(r->fd, r->buf + r->len, r->cap - 1 - r->len);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return recd_err_set(err, RECD_EIO, "%s: read: %s", r->path, strerror(errno));
        }
        if (got == 0)
            r->eof = 1;
        r->len += (size_t)got;
    }
}
