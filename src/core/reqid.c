/* Request ids: unique per process, unpredictable across processes. */
#include "recd/core.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* splitmix64 finaliser (Steele, Lea, Flood 2014): a bijection on 64 bits. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void recd_reqid_init(recd_reqid_gen_t *g, uint64_t seed, unsigned worker)
{
    if (seed == 0) {
        if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32));
        }
    }
    g->seed = seed;
    g->worker = (uint64_t)(worker & 0xffffu);
    g->seq = 0;
}

void recd_reqid_next(recd_reqid_gen_t *g, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t in = (g->worker << 48) | (g->seq & 0xffffffffffffULL);
    g->seq++;
    /* xor with a constant seed keeps the map a bijection for a fixed seed */
    uint64_t v = mix64(in ^ g->seed);
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[v & 0xf];
        v >>= 4;
    }
    out[16] = '\0';
}

int recd_reqid_valid(const char *s, size_t len)
{
    if (len == 0 || len > RECD_REQID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}
