/*
 * Fuzz the configuration path: defaults + JSON text + validate + dump +
 * reload merge, and the same bytes as one --set override and as a listen
 * address. Everything is freed (LeakSanitizer checks that).
 */
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "recd/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    recd_conf_t *c = recd_conf_new_defaults();
    recd_conf_t *d = recd_conf_new_defaults();
    char *str = malloc(size + 1);
    if (!c || !d || !str)
        goto out;
    memcpy(str, data, size);
    str[size] = '\0';

    recd_conf_errors_t e = {0};
    int n = recd_conf_apply_json_text(c, str, size, "fuzz", &e);
    FUZZ_CHECK(n >= 0 && (size_t)n == e.n);
    for (size_t i = 0; i < e.n; i++)
        FUZZ_CHECK(e.lines[i] != NULL && e.lines[i][0] != '\0');
    int v = recd_conf_validate(c, &e);
    FUZZ_CHECK(v >= 0 && e.n == (size_t)n + (size_t)v);
    recd_conf_errors_free(&e);

    char *dump = recd_conf_dump_json(c);
    FUZZ_CHECK(dump != NULL);
    json_error_t je;
    json_t *j = json_loads(dump, 0, &je);
    FUZZ_CHECK(j != NULL);
    json_decref(j);
    free(dump);

    /* every INT value is within its bounds after application */
    size_t nk;
    const recd_conf_key_t *keys = recd_conf_keys(&nk);
    for (size_t i = 0; i < nk; i++) {
        if (keys[i].type == RECD_CONF_T_INT) {
            int64_t x = *(const int64_t *)(const void *)((const char *)c + keys[i].offset);
            FUZZ_CHECK(x >= keys[i].min && x <= keys[i].max);
        }
    }

    recd_conf_errors_t ign = {0};
    recd_conf_t *m = recd_conf_merge_reload(d, c, &ign);
    FUZZ_CHECK(m != NULL);
    recd_conf_errors_free(&ign);
    recd_conf_free(m);

    if (size < 512) {
        recd_conf_errors_t e2 = {0};
        int s = recd_conf_apply_set(d, str, &e2);
        FUZZ_CHECK((s == 0 || s == 1) && e2.n == (size_t)s);
        recd_conf_errors_free(&e2);

        struct sockaddr_storage ss;
        unsigned sslen = 0;
        recd_err_t err;
        if (recd_conf_parse_listen(str, &ss, &sslen, &err) == 0) {
            FUZZ_CHECK(sslen > 0 && sslen <= sizeof ss);
            (void)recd_conf_listen_is_loopback(&ss);
        }
    }
out:
    recd_conf_free(c);
    recd_conf_free(d);
    free(str);
    return 0;
}
