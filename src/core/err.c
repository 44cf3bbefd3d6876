/* Error messages and small process helpers. */
#include "recd/core.h"

#include <stdio.h>
#include <string.h>

int recd_err_set(recd_err_t *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

uint64_t recd_proc_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    return (uint64_t)resident * 4096u;
}

uint64_t recd_fnv1a64(uint64_t h, const void *data, size_t len)
{
    /* FNV-1a, 64-bit (Fowler, Noll, Vo): xor the byte, then multiply. */
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
