/*
 * Fuzz the MovieLens importer (recd_dataset_import_movielens,
 * src/train/import.c).
 *
 * Input: one mode byte, then up to three files separated by the byte 0x1e
 * (ASCII "record separator"):
 *
 *   mode  ratings 0x1e items 0x1e users-or-tags
 *
 * (mode & 0x3f) % 3 picks the layout and its file names: 0 ml-100k (u.data,
 * u.item, u.user), 1 ml-1m (ratings.dat, movies.dat, users.dat), 2
 * ml-latest (ratings.csv, movies.csv, tags.csv). Bit 0x80 passes
 * RECD_ML_AUTO instead of the layout (detection then sees only that
 * layout's files); bit 0x40 asks for strict mode (the first malformed line
 * fails the import), which is otherwise off. A part that is present (even
 * empty) becomes that file; the files after the last part are absent;
 * bytes after a third separator are ignored.
 *
 * The files are rewritten for every input in one private directory (made
 * once per process with mkdtemp under $TMPDIR or /tmp, removed at exit);
 * no fsync. The report goes to /dev/null (opened once). On success the
 * dataset is checked: every cell is UTF-8 without tab, CR or LF (what the
 * dataset format requires), ids are found at their rows, every event is a
 * rating of 0.5..5 in halves, in canonical order. Without strict mode only
 * a missing file, a wrong CSV header or an I/O or memory error may fail
 * the import. Everything is freed (LeakSanitizer checks that).
 * FUZZ_VERBOSE=1 prints each input's outcome (to check seeds).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "recd/dataset.h"

#define SEP 0x1e
#define NPARTS 3

static const char *const NAMES[3][NPARTS] = {
    {"u.data", "u.item", "u.user"},
    {"ratings.dat", "movies.dat", "users.dat"},
    {"ratings.csv", "movies.csv", "tags.csv"},
};
static const recd_ml_layout_t LAYOUTS[3] = {RECD_ML_100K, RECD_ML_1M, RECD_ML_LATEST};

static char g_dir[256];
static char g_path[3][NPARTS][300];
static FILE *g_null;

static void cleanup(void)
{
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < NPARTS; i++)
            unlink(g_path[l][i]);
    rmdir(g_dir);
    if (g_null)
        fclose(g_null);
}

static void setup(void)
{
    if (g_dir[0])
        return;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 150)
        tmp = "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/recd-fuzz-movielens-XXXXXX", tmp);
    if (!mkdtemp(g_dir)) {
        perror("fuzz_movielens: mkdtemp");
        abort();
    }
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < NPARTS; i++)
            snprintf(g_path[l][i], sizeof g_path[l][i], "%s/%s", g_dir, NAMES[l][i]);
    g_null = fopen("/dev/null", "w");
    if (!g_null) {
        perror("fuzz_movielens: /dev/null");
        abort();
    }
    atexit(cleanup);
}

/* Valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
static int utf8_ok(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s;
        size_t len;
        unsigned cp, min;
        if (c < 0x80) {
            s++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        for (size_t i = 1; i < len; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        s += len;
    }
    return 1;
}

static void check_table(const recd_dataset_t *ds, const recd_table_t *t, int user)
{
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            FUZZ_CHECK(s != NULL);
            FUZZ_CHECK(strpbrk(s, "\t\r\n") == NULL);
            FUZZ_CHECK(utf8_ok(s));
        }
        const char *id = t->cells[r * t->ncols];
        FUZZ_CHECK(id[0] >= '0' && id[0] <= '9'); /* MovieLens ids are numbers */
        int64_t got = user ? recd_dataset_user_row(ds, id) : recd_dataset_item_row(ds, id);
        FUZZ_CHECK(got == (int64_t)r);
    }
}

static void check_dataset(const recd_dataset_t *ds, const recd_import_stats_t *st,
                          recd_ml_layout_t layout)
{
    FUZZ_CHECK(ds->implicit == 0 && ds->nctx == 0 && ds->nfactors == 0);
    FUZZ_CHECK(st->layout == layout);
    FUZZ_CHECK(ds->items.ncols == 5);
    FUZZ_CHECK(ds->users.ncols == (layout == RECD_ML_LATEST ? 1u : 4u));
    FUZZ_CHECK(st->lines >= ds->nevents);
    FUZZ_CHECK(st->added_items <= ds->items.nrows);
    check_table(ds, &ds->items, 0);
    check_table(ds, &ds->users, 1);
    for (size_t e = 0; e < ds->nevents; e++) {
        const recd_event_t *ev = &ds->events[e];
        FUZZ_CHECK(ev->user < ds->users.nrows && ev->item < ds->items.nrows);
        FUZZ_CHECK(ev->type == RECD_EV_RATING);
        FUZZ_CHECK(ev->value >= 0.5f && ev->value <= 5.0f &&
                   ev->value * 2 == (float)(int)(ev->value * 2));
        FUZZ_CHECK(ev->ts >= 0);
        if (e) {
            const recd_event_t *pv = &ds->events[e - 1];
            FUZZ_CHECK(pv->ts < ev->ts ||
                       (pv->ts == ev->ts &&
                        (pv->user < ev->user || (pv->user == ev->user && pv->item <= ev->item))));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    setup();
    int l = (data[0] & 0x3f) % 3;
    recd_ml_layout_t layout = LAYOUTS[l];
    int strict = (data[0] & 0x40) != 0;
    data++;
    size--;
    const uint8_t *part[NPARTS] = {0};
    size_t plen[NPARTS] = {0};
    int nparts = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && nparts < NPARTS; i++) {
        if (i == size || data[i] == SEP) {
            part[nparts] = data + start;
            plen[nparts] = i - start;
            nparts++;
            start = i + 1;
        }
    }
    /* only this layout's files: auto-detection must not see stale ones */
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < NPARTS; i++)
            if (k == l && i < nparts)
                fuzz_write_file(g_path[k][i], part[i], plen[i]);
            else
                unlink(g_path[k][i]);

    recd_dataset_t *ds = (recd_dataset_t *)1;
    recd_import_stats_t st;
    recd_err_t err = {0};
    int rc = recd_dataset_import_movielens(g_dir, (data[-1] & 0x80) ? RECD_ML_AUTO : layout, strict,
                                           g_null, &ds, &st, &err);
    if (fuzz_verbose())
        fprintf(stderr, "%s: %s\n", rc == 0 ? "ok" : "error", rc == 0 ? "" : err.msg);
    if (rc == 0) {
        FUZZ_CHECK(ds != NULL);
        check_dataset(ds, &st, layout);
        recd_dataset_free(ds);
    } else {
        FUZZ_CHECK(rc < 0 && ds == NULL);
        FUZZ_CHECK(err.code == rc && err.msg[0] != '\0');
        /* without strict mode only a missing or unreadable file, a wrong
         * CSV header or running out of memory can fail the import */
        if (!strict)
            FUZZ_CHECK(rc == RECD_ENOENT || rc == RECD_EIO || rc == RECD_ENOMEM ||
                       (layout == RECD_ML_LATEST && rc == RECD_EINVAL &&
                        strstr(err.msg, "header is") != NULL));
    }
    return 0;
}
