/* Bump allocator for request-scoped memory (nginx pools, simplified). */
#include "recd/core.h"

#include <stdlib.h>
#include <string.h>

struct recd_arena_chunk {
    recd_arena_chunk_t *next;
    size_t cap;  /* usable bytes in data */
    size_t used; /* bytes handed out */
    _Alignas(16) unsigned char data[];
};

void recd_arena_init(recd_arena_t *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 4096;
    a->used = 0;
}

void *recd_arena_alloc(recd_arena_t *a, size_t n)
{
    size_t need = (n + 15u) & ~(size_t)15u;
    if (need < n)
        return NULL;
    recd_arena_chunk_t *c = a->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > a->chunk_size ? need : a->chunk_size;
        recd_arena_chunk_t *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->cap = cap;
        nc->used = 0;
        nc->next = c;
        a->head = c = nc;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used += need;
    return p;
}

char *recd_arena_strndup(recd_arena_t *a, const char *s, size_t n)
{
    char *p = recd_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void recd_arena_reset(recd_arena_t *a)
{
    recd_arena_chunk_t *c = a->head;
    if (!c)
        return;
    /* keep the oldest chunk (the last in the list): it is the usual size */
    while (c->next) {
        recd_arena_chunk_t *n = c->next;
        free(c);
        c = n;
    }
    c->used = 0;
    a->head = c;
    a->used = 0;
}

void recd_arena_free(recd_arena_t *a)
{
    recd_arena_chunk_t *c = a->head;
    while (c) {
        recd_arena_chunk_t *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->used = 0;
}
