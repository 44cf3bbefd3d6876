/*
 * MovieLens importer (include/recd/dataset.h): ml-100k, ml-1m and
 * ml-latest[-small] into a recd dataset.
 *
 * Files are streamed line by line (ml-latest has 33M ratings), so memory is
 * the dataset itself. Every line is checked; a malformed one is reported as
 * "path:line: reason" and skipped, or, in strict mode, ends the import.
 * Text that is not valid UTF-8 is taken as ISO-8859-1 (ml-100k and ml-1m are
 * Latin-1) and converted, so titles like "Misérables" come out right either
 * way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "recd/dataset.h"

#define REPORT_MAX 1000 /* messages printed before the rest are only counted */
#define MAX_FIELDS 32

/* ---- layouts ------------------------------------------------------------------------------- */

typedef struct layout_files {
    const char *ratings, *items, *users, *tags;
} layout_files_t;

static const layout_files_t FILES[] = {
    [RECD_ML_100K] = {"u.data", "u.item", "u.user", NULL},
    [RECD_ML_1M] = {"ratings.dat", "movies.dat", "users.dat", NULL},
    [RECD_ML_LATEST] = {"ratings.csv", "movies.csv", NULL, "tags.csv"},
};

const char *recd_ml_layout_name(recd_ml_layout_t l)
{
    switch (l) {
    case RECD_ML_AUTO: return "auto";
    case RECD_ML_100K: return "ml-100k";
    case RECD_ML_1M: return "ml-1m";
    case RECD_ML_LATEST: return "ml-latest";
    }
    return NULL;
}

int recd_ml_layout_parse(const char *s)
{
    if (strcmp(s, "auto") == 0)
        return RECD_ML_AUTO;
    if (strcmp(s, "ml-100k") == 0)
        return RECD_ML_100K;
    if (strcmp(s, "ml-1m") == 0)
        return RECD_ML_1M;
    if (strcmp(s, "ml-latest") == 0 || strcmp(s, "ml-latest-small") == 0)
        return RECD_ML_LATEST;
    return -1;
}

/* The 19 flags of u.item, in the order of u.genre. */
static const char *const GENRES_100K[19] = {
    "unknown",     "Action", "Adventure", "Animation", "Children's", "Comedy",  "Crime",
    "Documentary", "Drama",  "Fantasy",   "Film-Noir", "Horror",     "Musical", "Mystery",
    "Romance",     "Sci-Fi", "Thriller",  "War",       "Western"};


/* ---- growable string ------------------------------------------------------------------------ */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf_t;

static void sb_reset(sbuf_t *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_putc(sbuf_t *b, char c)
{
    sb_put(b, &c, 1);
}

static const char *sb_str(sbuf_t *b)
{
    return b->s ? b->s : "";
}

/* ---- text helpers ------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static int utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* Append s as UTF-8 text fit for a cell: kept when it is valid UTF-8,
 * otherwise read as ISO-8859-1; tab, CR and LF become spaces. */
static void put_text(sbuf_t *b, const char *s, size_t n)
{
    int latin1 = !utf8_valid(s, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t' || c == '\r' || c == '\n') {
            sb_putc(b, ' ');
        } else if (latin1 && c >= 0x80) {
            char u[2] = {(char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f))};
            sb_put(b, u, 2);
        } else {
            sb_putc(b, (char)c);
        }
    }
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_space((*s)[*n - 1]))
        (*n)--;
}

static int all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 18)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Split "Title (1995)" into title and year. Also "(1994-1998)",
 * "(2006–2007)" (en dash) and "(2010- )" (the first year counts). Without
 * a trailing year the title is kept whole and the year is empty. */
static void split_title(const char *s, size_t n, const char **title, size_t *tlen, char year[5])
{
    year[0] = '\0';
    trim(&s, &n);
    *title = s;
    *tlen = n;
    if (n < 6 || s[n - 1] != ')')
        return;
    const char *open = NULL;
    for (size_t i = n - 1; i-- > 0;)
        if (s[i] == '(') {
            open = s + i;
            break;
        }
    if (!open)
        return;
    const char *p = open + 1, *end = s + n - 1;
    if (end - p < 4 || !all_digits(p, 4))
        return;
    const char *q = p + 4;
    while (q < end && *q == ' ')
        q++;
    if (q < end) {
        if (*q == '-')
            q++;
        else if (end - q >= 3 && memcmp(q, "\xe2\x80\x93", 3) == 0)
            q += 3;
        else
            return;
        while (q < end && *q == ' ')
            q++;
        if (end - q == 4 && all_digits(q, 4))
            q += 4;
        while (q < end && *q == ' ')
            q++;
        if (q != end)
            return;
    }
    memcpy(year, p, 4);
    year[4] = '\0';
    const char *t = s;
    size_t tl = (size_t)(open - s);
    trim(&t, &tl);
    *title = t;
    *tlen = tl;
}

/* A genre as recd spells it, or NULL to drop it. */
static const char *genre_name(const char *s, size_t n, char *buf, size_t cap)
{
    trim(&s, &n);
    if (n == 0 || (n == 7 && memcmp(s, "unknown", 7) == 0) ||
        (n == 18 && memcmp(s, "(no genres listed)", 18) == 0))
        return NULL;
    if (n == 10 && memcmp(s, "Children's", 10) == 0)
        return "Children";
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* Append a '|'-joined list entry; genres are never duplicated. */
static void add_genre(sbuf_t *b, const char *g)
{
    size_t gl = strlen(g);
    for (const char *p = sb_str(b); *p;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == gl && memcmp(p, g, l) == 0)
            return;
        p += l + (bar ? 1 : 0);
    }
    if (b->len)
        sb_putc(b, '|');
    put_text(b, g, gl);
}

/* ---- field splitting ---------------------------------------------------------------------- */

typedef struct field {
    const char *s;
    size_t n;
} field_t;

/* Split at every occurrence of sep (1 or more bytes); returns the number
 * of fields (only the first cap stored). */
static size_t split(const char *s, size_t n, const char *sep, field_t *f, size_t cap)
{
    size_t sl = strlen(sep), nf = 0;
    const char *p = s, *end = s + n;
    for (;;) {
        const char *q = p;
        while (q < end && !(q + sl <= end && memcmp(q, sep, sl) == 0))
            q++;
        if (nf < cap) {
            f[nf].s = p;
            f[nf].n = (size_t)(q - p);
        }
        nf++;
        if (q >= end)
            break;
        p = q + sl;
    }
    return nf;
}

/* One RFC 4180 record: fields may be quoted ("a, b" and "say ""hi""") and a
 * quoted field may run over several lines. Field text goes to c->buf. */
typedef struct csvrec {
    sbuf_t buf;
    size_t off[MAX_FIELDS], len[MAX_FIELDS];
    size_t nf;
    size_t line; /* first line of the record */
} csvrec_t;

/* 1: a record (bad = reason when malformed, else NULL); 0: EOF; < 0 error. */
static int csv_next(tf_lines_t *r, csvrec_t *c, const char **bad, recd_err_t *err)
{
    char *line;
    size_t n;
    int rc = tf_lines_next(r, &line, &n, err);
    if (rc <= 0)
        return rc;
    *bad = NULL;
    c->line = r->line;
    c->nf = 0;
    sb_reset(&c->buf);
    size_t i = 0;
    for (;;) {
        /* start of a field at line[i] */
        size_t start = c->buf.len;
        if (i < n && line[i] == '"') {
            i++;
            for (;;) {
                if (i >= n) { /* the quoted field continues on the next line */
                    sb_putc(&c->buf, '\n');
                    rc = tf_lines_next(r, &line, &n, err);
                    if (rc < 0)
                        return rc;
                    if (rc == 0) {
                        *bad = "unterminated quoted field";
                        return 1;
                    }
                    i = 0;
                    continue;
                }
                if (line[i] == '"') {
                    if (i + 1 < n && line[i + 1] == '"') {
                        sb_putc(&c->buf, '"');
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                size_t j = i;
                while (j < n && line[j] != '"')
                    j++;
                sb_put(&c->buf, line + i, j - i);
                i = j;
            }
            if (i < n && line[i] != ',' && !*bad)
                *bad = "text after a closing quote";
            while (i < n && line[i] != ',')
                i++;
        } else {
            size_t j = i;
            while (j < n && line[j] != ',')
                j++;
            sb_put(&c->buf, line + i, j - i);
            i = j;
        }
        if (c->nf < MAX_FIELDS) {
            c->off[c->nf] = start;
            c->len[c->nf] = c->buf.len - start;
        }
        c->nf++;
        if (i >= n)
            break;
        i++; /* the comma */
    }
    if (c->buf.oom)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    return 1;
}

static field_t csv_field(const csvrec_t *c, size_t k)
{
    field_t f = {sb_str((sbuf_t *)&c->buf) + c->off[k], c->len[k]};
    return f;
}

/* ---- the import ------------------------------------------------------------------------------ */

typedef struct imp {
    const char *dir;
    int strict;
    FILE *report;
    size_t reported, unreported;
    recd_import_stats_t st;
    recd_dataset_t *ds;
    recd_err_t *err;
    recd_ml_layout_t layout;
    sbuf_t a, b;     /* scratch */
    char **tags;     /* per item row: '|'-joined tags being collected */
    size_t tags_cap; /* rows tags[] can hold */
} imp_t;

static void say(imp_t *im, const char *msg)
{
    if (!im->report)
        return;
    if (im->reported < REPORT_MAX) {
        fprintf(im->report, "%s\n", msg);
        im->reported++;
    } else {
        im->unreported++;
    }
}

/* A malformed line: reported and skipped (returns 0), or in strict mode
 * the end of the import (returns RECD_EINVAL with err set). */
static int malformed(imp_t *im, const char *path, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int malformed(imp_t *im, const char *path, size_t line, const char *fmt, ...)
{
    char reason[400], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s:%zu: %s", path, line, reason);
    if (im->strict)
        return recd_err_set(im->err, RECD_EINVAL, "%s", msg);
    im->st.skipped++;
    say(im, msg);
    return 0;
}

static void note(imp_t *im, const char *path, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void note(imp_t *im, const char *path, size_t line, const char *fmt, ...)
{
    char reason[400], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s:%zu: %s", path, line, reason);
    say(im, msg);
}

/* A short, printable rendering of a field for messages. */
static const char *show(const field_t *f, char *buf, size_t cap)
{
    size_t n = f->n < cap - 4 ? f->n : cap - 4;
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        buf[o++] = (f->s[i] >= 0x20 && f->s[i] < 0x7f) ? f->s[i] : '?';
    if (n < f->n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int file_exists(const char *dir, const char *name)
{
    char *p = join(dir, name);
    struct stat st;
    int ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

/* Add an item row (id, title, genres, year) unless the id is taken. */
static int add_item(imp_t *im, const char *path, size_t line, const field_t *id, const char *title,
                    const char *genres, const char *year)
{
    char idbuf[32];
    memcpy(idbuf, id->s, id->n);
    idbuf[id->n] = '\0';
    if (recd_dataset_item_row(im->ds, idbuf) >= 0)
        return malformed(im, path, line, "duplicate movie id %s", idbuf);
    const char *cells[5] = {idbuf, title, genres, year, ""};
    int64_t r = recd_dataset_add_item(im->ds, cells, im->err);
    return r < 0 ? (int)r : 0;
}

/* ---- item files --------------------------------------------------------------------------- */

static int item_100k(imp_t *im, const char *path, size_t ln, const char *line, size_t n)
{
    field_t f[MAX_FIELDS];
    char sh[64];
    size_t nf = split(line, n, "|", f, MAX_FIELDS);
    if (nf != 24)
        return malformed(im, path, ln, "expected 24 '|'-separated fields, found %zu", nf);
    if (!all_digits(f[0].s, f[0].n))
        return malformed(im, path, ln, "movie id '%s' is not a number", show(&f[0], sh, sizeof sh));
    sbuf_t *g = &im->b;
    sb_reset(g);
    for (int k = 0; k < 19; k++) {
        const field_t *x = &f[5 + k];
        if (x->n != 1 || (x->s[0] != '0' && x->s[0] != '1'))
            return malformed(im, path, ln, "genre flag %d ('%s') is not 0 or 1", k + 1,
                             show(x, sh, sizeof sh));
        char buf[32];
        const char *name = genre_name(GENRES_100K[k], strlen(GENRES_100K[k]), buf, sizeof buf);
        if (x->s[0] == '1' && name)
            add_genre(g, name);
    }
    const char *t;
    size_t tl;
    char year[5];
    split_title(f[1].s, f[1].n, &t, &tl, year);
    /* the release date ("01-Jan-1995") wins over the title */
    const char *d = f[2].s;
    size_t dl = f[2].n;
    trim(&d, &dl);
    if (dl >= 4 && all_digits(d + dl - 4, 4) && (dl == 4 || d[dl - 5] == '-')) {
        memcpy(year, d + dl - 4, 4);
        year[4] = '\0';
    }
    sb_reset(&im->a);
    put_text(&im->a, t, tl);
    if (im->a.oom || g->oom)
        return recd_err_set(im->err, RECD_ENOMEM, "out of memory");
    return add_item(im, path, ln, &f[0], sb_str(&im->a), sb_str(g), year);
}

/* "id::title::genres" (title between the first and the last "::"). */
static int item_1m(imp_t *im, const char *path, size_t ln, const char *line, size_t n)
{
    char sh[64];
    const char *first = NULL, *last = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (line[i] == ':' && line[i + 1] == ':') {
            if (!first)
                first = line + i;
            last = line + i;
            i++;
        }
    if (!first || first == last)
        return malformed(im, path, ln, "expected MovieID::Title::Genres");
    field_t id = {line, (size_t)(first - line)};
    if (!all_digits(id.s, id.n))
        return malformed(im, path, ln, "movie id '%s' is not a number", show(&id, sh, sizeof sh));
    const char *t;
    size_t tl;
    char year[5];
    split_title(first + 2, (size_t)(last - first - 2), &t, &tl, year);
    field_t gf[64];
    size_t ng = split(last + 2, (size_t)(line + n - last - 2), "|", gf, 64);
    sb_reset(&im->b);
    for (size_t k = 0; k < ng && k < 64; k++) {
        char buf[128];
        const char *name = genre_name(gf[k].s, gf[k].n, buf, sizeof buf);
        if (name)
            add_genre(&im->b, name);
    }
    sb_reset(&im->a);
    put_text(&im->a, t, tl);
    if (im->a.oom || im->b.oom)
        return recd_err_set(im->err, RECD_ENOMEM, "out of memory");
    return add_item(im, path, ln, &id, sb_str(&im->a), sb_str(&im->b), year);
}

static int item_latest(imp_t *im, const char *path, const csvrec_t *c)
{
    char sh[64];
    if (c->nf != 3)
        return malformed(im, path, c->line, "expected 3 fields (movieId,title,genres), found %zu",
                         c->nf);
    field_t id = csv_field(c, 0), title = csv_field(c, 1), genres = csv_field(c, 2);
    if (!all_digits(id.s, id.n))
        return malformed(im, path, c->line, "movie id '%s' is not a number",
                         show(&id, sh, sizeof sh));
    const char *t;
    size_t tl;
    char year[5];
    split_title(title.s, title.n, &t, &tl, year);
    field_t gf[64];
    size_t ng = split(genres.s, genres.n, "|", gf, 64);
    sb_reset(&im->b);
    for (size_t k = 0; k < ng && k < 64; k++) {
        char buf[128];
        const char *name = genre_name(gf[k].s, gf[k].n, buf, sizeof buf);
        if (name)
            add_genre(&im->b, name);
    }
    sb_reset(&im->a);
    put_text(&im->a, t, tl);
    if (im->a.oom || im->b.oom)
        return recd_err_set(im->err, RECD_ENOMEM, "out of memory");
    return add_item(im, path, c->line, &id, sb_str(&im->a), sb_str(&im->b), year);
}

/* ---- user files ---------------------------------------------------------------------------- */

static int add_user(imp_t *im, const char *path, size_t ln, const field_t *id, const field_t *age,
                    const field_t *gender, const char *occupation)
{
    char sh[64], idb[32], ageb[32];
    if (!all_digits(id->s, id->n))
        return malformed(im, path, ln, "user id '%s' is not a number", show(id, sh, sizeof sh));
    if (!all_digits(age->s, age->n) || age->n > 3)
        return malformed(im, path, ln, "age '%s' is not a number", show(age, sh, sizeof sh));
    memcpy(idb, id->s, id->n);
    idb[id->n] = '\0';
    memcpy(ageb, age->s, age->n);
    ageb[age->n] = '\0';
    if (recd_dataset_user_row(im->ds, idb) >= 0)
        return malformed(im, path, ln, "duplicate user id %s", idb);
    const char *g = gender->s;
    size_t gl = gender->n;
    trim(&g, &gl);
    sb_reset(&im->a);
    put_text(&im->a, g, gl);
    sb_reset(&im->b);
    put_text(&im->b, occupation, strlen(occupation));
    if (im->a.oom || im->b.oom)
        return recd_err_set(im->err, RECD_ENOMEM, "out of memory");
    const char *cells[4] = {idb, ageb, sb_str(&im->a), sb_str(&im->b)};
    int64_t r = recd_dataset_add_user(im->ds, cells, im->err);
    return r < 0 ? (int)r : 0;
}

static int user_100k(imp_t *im, const char *path, size_t ln, const char *line, size_t n)
{
    field_t f[MAX_FIELDS];
    size_t nf = split(line, n, "|", f, MAX_FIELDS);
    if (nf != 5)
        return malformed(im, path, ln,
                         "expected 5 '|'-separated fields (user|age|gender|occupation|zip), "
                         "found %zu",
                         nf);
    char occ[128];
    const char *o = f[3].s;
    size_t ol = f[3].n;
    trim(&o, &ol);
    if (ol >= sizeof occ)
        ol = sizeof occ - 1;
    memcpy(occ, o, ol);
    occ[ol] = '\0';
    return add_user(im, path, ln, &f[0], &f[1], &f[2], occ);
}

static int user_1m(imp_t *im, const char *path, size_t ln, const char *line, size_t n)
{
    field_t f[MAX_FIELDS];
    char sh[64];
    size_t nf = split(line, n, "::", f, MAX_FIELDS);
    if (nf != 5)
        return malformed(im, path, ln,
                         "expected 5 '::'-separated fields "
                         "(UserID::Gender::Age::Occupation::Zip-code), found %zu",
                         nf);
    int code = f[3].n == 1 || f[3].n == 2 ? 0 : -1;
    for (size_t k = 0; code >= 0 && k < f[3].n; k++)
        code = f[3].s[k] >= '0' && f[3].s[k] <= '9' ? code * 10 + (f[3].s[k] - '0') : -1;
    if (code < 0 || code > 20)
        return malformed(im, path, ln, "occupation '%s' is not a code 0..20",
                         show(&f[3], sh, sizeof sh));
    return add_user(im, path, ln, &f[0], &f[2], &f[1], tf_occupations[code]);
}

/* ---- ratings ------------------------------------------------------------------------------ */

static int rating(imp_t *im, const char *path, size_t ln, const field_t *u, const field_t *i,
                  const field_t *r, const field_t *ts)
{
    char sh[64], ub[32], ib[32], rb[32], tb[32];
    if (!all_digits(u->s, u->n))
        return malformed(im, path, ln, "user id '%s' is not a number", show(u, sh, sizeof sh));
    if (!all_digits(i->s, i->n))
        return malformed(im, path, ln, "movie id '%s' is not a number", show(i, sh, sizeof sh));
    if (!all_digits(ts->s, ts->n))
        return malformed(im, path, ln, "timestamp '%s' is not a number", show(ts, sh, sizeof sh));
    if (r->n == 0 || r->n >= sizeof rb)
        return malformed(im, path, ln, "rating '%s' is not a number", show(r, sh, sizeof sh));
    memcpy(rb, r->s, r->n);
    rb[r->n] = '\0';
    char *end;
    double v = strtod(rb, &end);
    if (*end || end == rb || !(rb[0] >= '0' && rb[0] <= '9'))
        return malformed(im, path, ln, "rating '%s' is not a number", rb);
    if (!(v >= 0.5 && v <= 5.0) || v * 2 != (double)(int)(v * 2))
        return malformed(im, path, ln, "rating %s out of range (0.5..5 in steps of 0.5)", rb);
    memcpy(ub, u->s, u->n);
    ub[u->n] = '\0';
    memcpy(ib, i->s, i->n);
    ib[i->n] = '\0';
    memcpy(tb, ts->s, ts->n);
    tb[ts->n] = '\0';
    int64_t urow = recd_dataset_user_row(im->ds, ub);
    if (urow < 0) {
        const char *cells[4] = {ub, "", "", ""};
        if ((urow = recd_dataset_add_user(im->ds, cells, im->err)) < 0)
            return (int)urow;
    }
    int64_t irow = recd_dataset_item_row(im->ds, ib);
    if (irow < 0) {
        const char *cells[5] = {ib, "", "", "", ""};
        if ((irow = recd_dataset_add_item(im->ds, cells, im->err)) < 0)
            return (int)irow;
        im->st.added_items++;
        note(im, path, ln, "movie %s is not in the item file; added with empty columns", ib);
    }
    return recd_dataset_add_event(im->ds, (uint32_t)urow, (uint32_t)irow,
                                  (int64_t)strtoll(tb, NULL, 10), RECD_EV_RATING, (float)v, NULL,
                                  im->err);
}

static int rating_line(imp_t *im, const char *path, size_t ln, const char *line, size_t n)
{
    field_t f[MAX_FIELDS];
    size_t nf;
    if (im->layout == RECD_ML_100K) {
        nf = split(line, n, "\t", f, MAX_FIELDS);
        if (nf != 4)
            return malformed(im, path, ln,
                             "expected 4 tab-separated fields (user item rating timestamp), "
                             "found %zu",
                             nf);
    } else {
        nf = split(line, n, "::", f, MAX_FIELDS);
        if (nf != 4)
            return malformed(im, path, ln,
                             "expected 4 '::'-separated fields "
                             "(UserID::MovieID::Rating::Timestamp), found %zu",
                             nf);
    }
    return rating(im, path, ln, &f[0], &f[1], &f[2], &f[3]);
}

/* ---- tags (ml-latest) ---------------------------------------------------------------------- */

/* Add tag (already cleaned, non-empty) to item row's list unless present. */
static int add_tag(imp_t *im, size_t row, const char *tag, size_t tl)
{
    if (row >= im->tags_cap) {
        size_t cap = im->ds->items.nrows;
        char **t = realloc(im->tags, cap * sizeof *t);
        if (!t)
            return recd_err_set(im->err, RECD_ENOMEM, "out of memory");
        memset(t + im->tags_cap, 0, (cap - im->tags_cap) * sizeof *t);
        im->tags = t;
        im->tags_cap = cap;
    }
    char *cur = im->tags[row];
    size_t cl = cur ? strlen(cur) : 0;
    for (const char *p = cur; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == tl && memcmp(p, tag, l) == 0)
            return 0;
        p += l + (bar ? 1 : 0);
    }
    char *nt = realloc(cur, cl + tl + 2);
    if (!nt)
        return recd_err_set(im->err, RECD_ENOMEM, "out of memory");
    if (cl)
        nt[cl++] = '|';
    memcpy(nt + cl, tag, tl);
    nt[cl + tl] = '\0';
    im->tags[row] = nt;
    return 0;
}

static int tag_record(imp_t *im, const char *path, const csvrec_t *c)
{
    char sh[64];
    if (c->nf != 4)
        return malformed(im, path, c->line,
                         "expected 4 fields (userId,movieId,tag,timestamp), found %zu", c->nf);
    field_t mid = csv_field(c, 1), tag = csv_field(c, 2);
    if (!all_digits(mid.s, mid.n))
        return malformed(im, path, c->line, "movie id '%s' is not a number",
                         show(&mid, sh, sizeof sh));
    char ib[32];
    memcpy(ib, mid.s, mid.n);
    ib[mid.n] = '\0';
    int64_t row = recd_dataset_item_row(im->ds, ib);
    if (row < 0) {
        note(im, path, c->line, "movie %s is neither in movies.csv nor rated; tag ignored", ib);
        return 0;
    }
    /* '|' and tabs removed, UTF-8 (CR/LF become spaces), lowercase
     * (ASCII letters), trimmed */
    sb_reset(&im->a);
    for (size_t k = 0; k < tag.n; k++)
        if (tag.s[k] != '|' && tag.s[k] != '\t')
            sb_putc(&im->a, tag.s[k]);
    sb_reset(&im->b);
    put_text(&im->b, sb_str(&im->a), im->a.len);
    for (char *p = im->b.s; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (im->a.oom || im->b.oom)
        return recd_err_set(im->err, RECD_ENOMEM, "out of memory");
    const char *t = sb_str(&im->b);
    size_t tl = im->b.len;
    trim(&t, &tl);
    return tl ? add_tag(im, (size_t)row, t, tl) : 0;
}

/* ---- files ----------------------------------------------------------------------------------- */

typedef enum { F_ITEMS, F_USERS, F_RATINGS, F_TAGS } file_kind_t;

static const char *const CSV_HEADERS[] = {
    [F_ITEMS] = "movieId,title,genres",
    [F_USERS] = NULL,
    [F_RATINGS] = "userId,movieId,rating,timestamp",
    [F_TAGS] = "userId,movieId,tag,timestamp",
};

static int read_csv(imp_t *im, const char *path, file_kind_t kind)
{
    tf_lines_t r;
    int rc = tf_lines_open(&r, path, 1, im->err);
    if (rc)
        return rc;
    csvrec_t c;
    memset(&c, 0, sizeof c);
    const char *bad;
    int first = 1;
    while ((rc = csv_next(&r, &c, &bad, im->err)) == 1) {
        rc = 0;
        if (first) {
            first = 0;
            /* the header line; compared without the field quoting */
            char hdr[128];
            size_t o = 0;
            for (size_t k = 0; k < c.nf && k < MAX_FIELDS; k++) {
                field_t f = csv_field(&c, k);
                if (o + f.n + 2 >= sizeof hdr)
                    break;
                if (k)
                    hdr[o++] = ',';
                memcpy(hdr + o, f.s, f.n);
                o += f.n;
            }
            hdr[o] = '\0';
            if (strcmp(hdr, CSV_HEADERS[kind]) != 0) {
                rc = recd_err_set(im->err, RECD_EINVAL, "%s:%zu: header is '%s', expected '%s'",
                                  path, c.line, hdr, CSV_HEADERS[kind]);
                break;
            }
            continue;
        }
        if (kind == F_RATINGS)
            im->st.lines++;
        if (c.nf == 1 && c.len[0] == 0) {
            rc = malformed(im, path, c.line, "empty line");
        } else if (bad) {
            rc = malformed(im, path, c.line, "%s", bad);
        } else if (memchr(sb_str(&c.buf), '\0', c.buf.len)) {
            rc = malformed(im, path, c.line, "NUL byte in the line");
        } else if (kind == F_ITEMS) {
            rc = item_latest(im, path, &c);
        } else if (kind == F_TAGS) {
            rc = tag_record(im, path, &c);
        } else if (c.nf != 4) {
            rc = malformed(im, path, c.line,
                           "expected 4 fields (userId,movieId,rating,timestamp), found %zu", c.nf);
        } else {
            field_t f[4] = {csv_field(&c, 0), csv_field(&c, 1), csv_field(&c, 2), csv_field(&c, 3)};
            rc = rating(im, path, c.line, &f[0], &f[1], &f[2], &f[3]);
        }
        if (rc)
            break;
    }
    if (c.buf.oom && rc >= 0)
        rc = recd_err_set(im->err, RECD_ENOMEM, "out of memory");
    free(c.buf.s);
    tf_lines_close(&r);
    return rc < 0 ? rc : 0;
}

static int read_lines(imp_t *im, const char *path, file_kind_t kind)
{
    tf_lines_t r;
    int rc = tf_lines_open(&r, path, 1, im->err);
    if (rc)
        return rc;
    char *line;
    size_t n;
    while ((rc = tf_lines_next(&r, &line, &n, im->err)) == 1) {
        rc = 0;
        if (kind == F_RATINGS)
            im->st.lines++;
        if (n == 0)
            rc = malformed(im, path, r.line, "empty line");
        else if (strlen(line) != n)
            rc = malformed(im, path, r.line, "NUL byte in the line");
        else if (kind == F_RATINGS)
            rc = rating_line(im, path, r.line, line, n);
        else if (kind == F_ITEMS)
            rc = im->layout == RECD_ML_100K ? item_100k(im, path, r.line, line, n)
                                            : item_1m(im, path, r.line, line, n);
        else
            rc = im->layout == RECD_ML_100K ? user_100k(im, path, r.line, line, n)
                                            : user_1m(im, path, r.line, line, n);
        if (rc)
            break;
    }
    tf_lines_close(&r);
    return rc < 0 ? rc : 0;
}

static int read_file(imp_t *im, const char *name, file_kind_t kind, int required)
{
    if (!name)
        return 0;
    char *path = join(im->dir, name);
    if (!path)
        return recd_err_set(im->err, RECD_ENOMEM, "out of memory");
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0) {
        if (required || errno != ENOENT)
            rc = recd_err_set(im->err, errno == ENOENT ? RECD_ENOENT : RECD_EIO, "%s: %s", path,
                              strerror(errno));
    } else if (im->layout == RECD_ML_LATEST) {
        rc = read_csv(im, path, kind);
    } else {
        rc = read_lines(im, path, kind);
    }
    free(path);
    return rc;
}

int recd_dataset_import_movielens(const char *src_dir, recd_ml_layout_t layout, int strict,
                                  FILE *report, recd_dataset_t **out, recd_import_stats_t *st,
                                  recd_err_t *err)
{
    *out = NULL;
    if (st)
        memset(st, 0, sizeof *st);
    struct stat sst;
    if (!src_dir || stat(src_dir, &sst) != 0)
        return recd_err_set(err, RECD_ENOENT, "%s: %s", src_dir ? src_dir : "(null)",
                            src_dir ? strerror(errno) : "no directory");
    if (!S_ISDIR(sst.st_mode))
        return recd_err_set(err, RECD_EINVAL, "%s: not a directory", src_dir);
    if (layout == RECD_ML_AUTO) {
        if (file_exists(src_dir, "u.data"))
            layout = RECD_ML_100K;
        else if (file_exists(src_dir, "ratings.dat"))
            layout = RECD_ML_1M;
        else if (file_exists(src_dir, "ratings.csv"))
            layout = RECD_ML_LATEST;
        else
            return recd_err_set(err, RECD_ENOENT,
                                "%s: no MovieLens layout found (expected u.data, ratings.dat or "
                                "ratings.csv)",
                                src_dir);
    }
    if (layout != RECD_ML_100K && layout != RECD_ML_1M && layout != RECD_ML_LATEST)
        return recd_err_set(err, RECD_EINVAL, "unknown MovieLens layout %d", (int)layout);

    imp_t im;
    memset(&im, 0, sizeof im);
    im.dir = src_dir;
    im.strict = strict;
    im.report = report;
    im.err = err;
    im.layout = layout;
    im.st.layout = layout;
    static const char *const ITEM_COLS[] = {"id", "title", "genres", "year", "tags"};
    static const char *const USER_COLS[] = {"id", "age", "gender", "occupation"};
    char source[512];
    snprintf(source, sizeof source, "movielens %s: %s", recd_ml_layout_name(layout), src_dir);
    im.ds = recd_dataset_new(source, 0, ITEM_COLS, 5, USER_COLS, layout == RECD_ML_LATEST ? 1 : 4,
                             NULL, 0, err);
    if (!im.ds)
        return err ? err->code : RECD_ENOMEM;
    const layout_files_t *fl = &FILES[layout];
    int rc = read_file(&im, fl->items, F_ITEMS, 1);
    if (rc == 0)
        rc = read_file(&im, fl->users, F_USERS, 0);
    if (rc == 0)
        rc = read_file(&im, fl->ratings, F_RATINGS, 1);
    if (rc == 0)
        rc = read_file(&im, fl->tags, F_TAGS, 0);
    for (size_t r = 0; rc == 0 && r < im.tags_cap; r++)
        if (im.tags[r])
            rc = recd_dataset_set_cell(im.ds, &im.ds->items, r, 4, im.tags[r], err);
    if (rc == 0)
        rc = recd_dataset_sort_events(im.ds, err);
    if (im.unreported && report)
        fprintf(report, "%s: %zu more messages not shown\n", src_dir, im.unreported);
    for (size_t r = 0; r < im.tags_cap; r++)
        free(im.tags[r]);
    free(im.tags);
    free(im.a.s);
    free(im.b.s);
    if (st)
        *st = im.st;
    if (rc) {
        recd_dataset_free(im.ds);
        return rc;
    }
    *out = im.ds;
    return 0;
}
