/* Private to src/model. */
#ifndef RECD_MODEL_INT_H
#define RECD_MODEL_INT_H

#include "recd/model.h"

/* An empty overlay snapshot for a bundle of n_items_base items. */
recd_overlay_t *recd_overlay_new_empty(size_t n_items_base);

#endif
