/*
 * Fuzz the dataset loader (recd_dataset_load, src/train/dataset.c).
 *
 * Input: the files of one dataset directory, separated by the byte 0x1e
 * (ASCII "record separator"), in this order:
 *
 *   meta.json 0x1e items.tsv 0x1e users.tsv 0x1e events.tsv
 *             0x1e truth/user_factors.tsv 0x1e truth/item_factors.tsv
 *
 * A part that is present (even empty) becomes that file; the files after
 * the last part are absent; bytes after a sixth separator are ignored.
 * In the meta.json part, the two-byte tokens "$U", "$I" and "$E" are
 * replaced by the number of data lines of users.tsv, items.tsv and
 * events.tsv (lines after the header, a last line without '\n' counted),
 * so the counts can agree with the files without the fuzzer having to
 * count, and a load gets past the count check to sorting and truth.
 *
 * The files are rewritten for every input in one private directory (made
 * once per process with mkdtemp under $TMPDIR or /tmp, removed at exit);
 * no fsync. On success the result is checked: ids found at their rows,
 * the first event's user and item found, events within the tables and in
 * canonical order, truth arrays present and finite when announced; on
 * failure, a negative code with a message. Everything is freed
 * (LeakSanitizer checks that). FUZZ_VERBOSE=1 prints each input's outcome
 * (to check seeds).
 */
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "recd/dataset.h"

#define SEP 0x1e
#define NFILES 6

static const char *const FILES[NFILES] = {"meta.json",
                                          "items.tsv",
                                          "users.tsv",
                                          "events.tsv",
                                          "truth/user_factors.tsv",
                                          "truth/item_factors.tsv"};

static char g_dir[256];
static char g_path[NFILES][300];

static void cleanup(void)
{
    for (int i = 0; i < NFILES; i++)
        unlink(g_path[i]);
    char truth[300];
    snprintf(truth, sizeof truth, "%s/truth", g_dir);
    rmdir(truth);
    rmdir(g_dir);
}

static void setup(void)
{
    if (g_dir[0])
        return;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 150)
        tmp = "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/recd-fuzz-dataset-XXXXXX", tmp);
    if (!mkdtemp(g_dir)) {
        perror("fuzz_dataset: mkdtemp");
        abort();
    }
    char truth[300];
    snprintf(truth, sizeof truth, "%s/truth", g_dir);
    if (mkdir(truth, 0700) != 0) {
        perror("fuzz_dataset: mkdir truth");
        abort();
    }
    for (int i = 0; i < NFILES; i++)
        snprintf(g_path[i], sizeof g_path[i], "%s/%s", g_dir, FILES[i]);
    atexit(cleanup);
}

/* Lines after the header, as the loader counts them. */
static size_t data_lines(const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += p[i] == '\n';
    if (p[n - 1] != '\n')
        lines++;
    return lines - 1;
}

/* meta.json with $U / $I / $E replaced; *out is malloc'd. */
static size_t expand_meta(const uint8_t *p, size_t n, const size_t counts[3], uint8_t **out)
{
    uint8_t *o = malloc(n * 10 + 1); /* a 2-byte token becomes at most 20 digits */
    FUZZ_CHECK(o != NULL);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int k = -1;
        if (p[i] == '$' && i + 1 < n)
            k = p[i + 1] == 'U' ? 0 : p[i + 1] == 'I' ? 1 : p[i + 1] == 'E' ? 2 : -1;
        if (k >= 0) {
            len += (size_t)sprintf((char *)o + len, "%zu", counts[k]);
            i++;
        } else {
            o[len++] = p[i];
        }
    }
    *out = o;
    return len;
}

static void check_table(const recd_dataset_t *ds, const recd_table_t *t, int user)
{
    FUZZ_CHECK(t->ncols >= 1 && t->names != NULL);
    FUZZ_CHECK(strcmp(t->names[0], "id") == 0);
    FUZZ_CHECK(t->nrows == 0 || t->cells != NULL);
    /* a few rows: the first, the last and some in between */
    size_t step = t->nrows > 8 ? t->nrows / 8 : 1;
    for (size_t r = 0; r < t->nrows; r += step) {
        const char *id = t->cells[r * t->ncols];
        FUZZ_CHECK(id != NULL && id[0] != '\0');
        for (size_t c = 0; c < t->ncols; c++)
            FUZZ_CHECK(t->cells[r * t->ncols + c] != NULL);
        int64_t got = user ? recd_dataset_user_row(ds, id) : recd_dataset_item_row(ds, id);
        FUZZ_CHECK(got == (int64_t)r);
    }
    if (t->nrows) {
        size_t r = t->nrows - 1;
        const char *id = t->cells[r * t->ncols];
        int64_t got = user ? recd_dataset_user_row(ds, id) : recd_dataset_item_row(ds, id);
        FUZZ_CHECK(got == (int64_t)r);
    }
    /* ids are non-empty, so "" is never found */
    FUZZ_CHECK((user ? recd_dataset_user_row(ds, "") : recd_dataset_item_row(ds, "")) == -1);
}

/* ev_line: the first data line of events.tsv (up to the end of the part),
 * or NULL. */
static void check_dataset(const recd_dataset_t *ds, const uint8_t *ev_line, size_t ev_len)
{
    FUZZ_CHECK(ds->source != NULL);
    FUZZ_CHECK(ds->implicit == 0 || ds->implicit == 1);
    check_table(ds, &ds->items, 0);
    check_table(ds, &ds->users, 1);
    FUZZ_CHECK(ds->nctx == 0 || (ds->ctx_names != NULL && (ds->nevents == 0 || ds->ctx)));
    for (size_t e = 0; e < ds->nevents; e++) {
        const recd_event_t *ev = &ds->events[e];
        FUZZ_CHECK(ev->user < ds->users.nrows && ev->item < ds->items.nrows);
        FUZZ_CHECK(ev->type < RECD_EV_NTYPES);
        FUZZ_CHECK(isfinite(ev->value));
        if (e) {
            const recd_event_t *pv = &ds->events[e - 1];
            FUZZ_CHECK(pv->ts < ev->ts ||
                       (pv->ts == ev->ts &&
                        (pv->user < ev->user || (pv->user == ev->user && pv->item <= ev->item))));
        }
        for (size_t c = 0; c < ds->nctx; c++)
            FUZZ_CHECK(ds->ctx[e * ds->nctx + c] != NULL);
    }
    if (ds->nfactors) {
        FUZZ_CHECK(ds->user_factors != NULL && ds->item_factors != NULL);
        float sum = 0;
        for (size_t i = 0; i < ds->users.nrows * ds->nfactors; i++)
            sum += ds->user_factors[i] * 0.0f;
        for (size_t i = 0; i < ds->items.nrows * ds->nfactors; i++)
            sum += ds->item_factors[i] * 0.0f;
        if (ds->item_bias)
            for (size_t i = 0; i < ds->items.nrows; i++)
                sum += ds->item_bias[i] * 0.0f;
        FUZZ_CHECK(sum == 0.0f); /* every value is finite */
    }
    /* the user and item of the first line of events.tsv are known ids */
    if (ev_line) {
        char id[2][64];
        size_t k = 0, o = 0;
        for (size_t i = 0; i < ev_len && ev_line[i] != '\n' && k < 2; i++) {
            if (ev_line[i] == '\t') {
                id[k++][o] = '\0';
                o = 0;
            } else if (o < sizeof id[0] - 1) {
                id[k][o++] = (char)ev_line[i];
            } else {
                return; /* a long id: skip the probe */
            }
        }
        if (k == 2) {
            FUZZ_CHECK(recd_dataset_user_row(ds, id[0]) >= 0);
            FUZZ_CHECK(recd_dataset_item_row(ds, id[1]) >= 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    const uint8_t *part[NFILES] = {0};
    size_t plen[NFILES] = {0};
    int nparts = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && nparts < NFILES; i++) {
        if (i == size || data[i] == SEP) {
            part[nparts] = data + start;
            plen[nparts] = i - start;
            nparts++;
            start = i + 1;
        }
    }
    for (int i = 0; i < NFILES; i++) {
        if (i >= nparts) {
            unlink(g_path[i]);
        } else if (i == 0) {
            size_t counts[3] = {data_lines(part[2], plen[2]), data_lines(part[1], plen[1]),
                                data_lines(part[3], plen[3])};
            uint8_t *meta;
            size_t n = expand_meta(part[0], plen[0], counts, &meta);
            fuzz_write_file(g_path[0], meta, n);
            free(meta);
        } else {
            fuzz_write_file(g_path[i], part[i], plen[i]);
        }
    }

    recd_dataset_t *ds = (recd_dataset_t *)1;
    recd_err_t err = {0};
    int rc = recd_dataset_load(g_dir, &ds, &err);
    if (fuzz_verbose())
        fprintf(stderr, "%s: %s\n", rc == 0 ? "ok" : "error", rc == 0 ? "" : err.msg);
    if (rc == 0) {
        FUZZ_CHECK(ds != NULL);
        const uint8_t *ev = NULL;
        size_t evn = 0;
        if (nparts > 3) {
            const uint8_t *nl = memchr(part[3], '\n', plen[3]);
            if (nl) {
                ev = nl + 1;
                evn = plen[3] - (size_t)(ev - part[3]);
            }
        }
        check_dataset(ds, ev, evn);
        recd_dataset_free(ds);
    } else {
        FUZZ_CHECK(rc < 0 && ds == NULL);
        FUZZ_CHECK(err.code == rc && err.msg[0] != '\0');
    }
    return 0;
}
