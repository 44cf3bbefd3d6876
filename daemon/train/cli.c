/* recd-train: option parsing helpers shared by the commands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- option parsing helpers -------------------------------------------------------- */

/* Parse a decimal integer in [lo, hi]; prints the error itself. */
int parse_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi,
                     long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "recd-train %s: %s: '%s' is not an integer in %lld..%lld\n", cmd, opt, s,
                lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Parse "256" or "256,128,64" into sizes[]. */
int parse_sizes(const char *cmd, const char *opt, const char *s, size_t *sizes, size_t cap,
                       size_t *n)
{
    char buf[256];
    if (strlen(s) >= sizeof buf) {
        fprintf(stderr, "recd-train %s: %s: too long\n", cmd, opt);
        return -1;
    }
    strcpy(buf, s);
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long long v;
        if (*n == cap) {
            fprintf(stderr, "recd-train %s: %s: at most %zu sizes\n", cmd, opt, cap);
            return -1;
        }
        if (parse_int(cmd, opt, tok, 1, 65536, &v) != 0)
            return -1;
        sizes[(*n)++] = (size_t)v;
    }
    if (*n == 0) {
        fprintf(stderr, "recd-train %s: %s: expected comma-separated sizes\n", cmd, opt);
        return -1;
    }
    return 0;
}

int parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                 double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "recd-train %s: %s: '%s' is not a number in %g..%g\n", cmd, opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}
