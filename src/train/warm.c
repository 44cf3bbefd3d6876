/* Warm start: parameters taken from a published bundle by tensor name
 * (internal.h, tf_warm_t). */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "recd/model.h"

static void note_missed(tf_warm_t *wm, const char *name)
{
    size_t n = strlen(wm->missed);
    if (n + strlen(name) + 8 >= sizeof wm->missed) {
        if (n + 4 < sizeof wm->missed && (n < 3 || strcmp(wm->missed + n - 3, "...") != 0))
            snprintf(wm->missed + n, sizeof wm->missed - n, "%s...", n ? ", " : "");
        return;
    }
    snprintf(wm->missed + n, sizeof wm->missed - n, "%s%s", n ? ", " : "", name);
}

int tf_warm_copy(tf_warm_t *wm, const char *name, float *w, size_t rows, size_t cols, int item_rows)
{
    if (!wm || !wm->b)
        return 0;
    wm->offered++;
    const recd_bundle_t *b = wm->b;
    const recd_tensor_t *t = recd_bundle_tensor(b, name);
    int ok = 0;
    if (t && item_rows) {
        /* rows are items: [bundle items, cols] copied by id */
        size_t tcols = t->ndim == 2 ? (size_t)t->shape[1] : 1;
        if (tcols == cols && (size_t)t->shape[0] == b->n_items && wm->item_map &&
            wm->n_items == rows) {
            for (size_t r = 0; r < rows; r++) {
                int64_t x = wm->item_map[r];
                if (x >= 0 && (size_t)x < b->n_items)
                    memcpy(w + r * cols, t->data + (size_t)x * cols, cols * sizeof *w);
            }
            ok = 1;
        }
    } else if (t && t->count == rows * cols &&
               (t->ndim == 1 || ((size_t)t->shape[0] == rows && (size_t)t->shape[1] == cols))) {
        memcpy(w, t->data, rows * cols * sizeof *w);
        ok = 1;
    }
    if (ok)
        wm->copied++;
    else
        note_missed(wm, name);
    return ok;
}
