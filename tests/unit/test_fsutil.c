/*
 * Unit tests for the helpers shared across modules: recd_remove_tree and
 * recd_fsync_dir (src/core/fsutil.c), recd_model_list_versions
 * (src/model/registry.c) and recd_model_name_ok (src/model/writer.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recd/core.h"
#include "recd/model.h"

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/recd-fsutil-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return strdup(tmpl);
}

static void touch(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("x\n", f);
    fclose(f);
}

static void mkdir_in(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(mkdir(p, 0755), 0);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_remove_tree(void **state)
{
    (void)state;
    char *d = make_tmpdir();
    char *keep = make_tmpdir(); /* a link's target outside the tree */
    touch(keep, "precious");
    char p[1024], q[1024];
    mkdir_in(d, "a");
    snprintf(p, sizeof p, "%s/a", d);
    mkdir_in(p, "b");
    snprintf(q, sizeof q, "%s/a/b", d);
    touch(q, "f");
    touch(d, "g");
    snprintf(p, sizeof p, "%s/link", d);
    assert_int_equal(symlink(keep, p), 0);
    assert_int_equal(recd_remove_tree(d), 0);
    assert_false(exists(d));
    /* the link went, not what it pointed to */
    snprintf(p, sizeof p, "%s/precious", keep);
    assert_true(exists(p));
    /* nothing there: nothing to do */
    assert_int_equal(recd_remove_tree(d), 0);
    /* a plain file */
    assert_int_equal(recd_remove_tree(p), 0);
    assert_false(exists(p));
    assert_int_equal(recd_remove_tree(keep), 0);
    assert_false(exists(keep));
    /* a path through a file cannot be looked at */
    assert_int_equal(recd_remove_tree("/dev/null/x"), -1);
    assert_int_equal(errno, ENOTDIR);
    free(d);
    free(keep);
}

static void test_fsync_dir(void **state)
{
    (void)state;
    char *d = make_tmpdir();
    assert_int_equal(recd_fsync_dir(d), 0);
    touch(d, "f");
    char p[1024];
    snprintf(p, sizeof p, "%s/f", d);
    assert_int_equal(recd_fsync_dir(p), -1); /* not a directory */
    assert_int_equal(errno, ENOTDIR);
    snprintf(p, sizeof p, "%s/missing", d);
    assert_int_equal(recd_fsync_dir(p), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(recd_remove_tree(d), 0);
    free(d);
}

static void test_list_versions(void **state)
{
    (void)state;
    char *d = make_tmpdir();
    const char *dirs[] = {
        "3", "12", "1", "7", "007", "-2", ".tmp-40", "abc", "99999999999999999999"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        mkdir_in(d, dirs[i]);
    touch(d, "20"); /* a file with a version's name */
    int64_t v[16];
    /* every version name, highest first */
    size_t n = recd_model_list_versions(d, v, 16, 0);
    assert_int_equal(n, 5);
    assert_int_equal(v[0], 20);
    assert_int_equal(v[1], 12);
    assert_int_equal(v[2], 7);
    assert_int_equal(v[3], 3);
    assert_int_equal(v[4], 1);
    /* only directories */
    n = recd_model_list_versions(d, v, 16, 1);
    assert_int_equal(n, 4);
    assert_int_equal(v[0], 12);
    assert_int_equal(v[3], 1);
    /* a short buffer keeps the highest, whatever order the directory has */
    n = recd_model_list_versions(d, v, 2, 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0], 20);
    assert_int_equal(v[1], 12);
    n = recd_model_list_versions(d, v, 1, 1);
    assert_int_equal(n, 1);
    assert_int_equal(v[0], 12);
    assert_int_equal(recd_model_list_versions(d, v, 0, 0), 0);
    /* an unreadable directory has none */
    char p[1024];
    snprintf(p, sizeof p, "%s/missing", d);
    assert_int_equal(recd_model_list_versions(p, v, 16, 0), 0);
    assert_int_equal(recd_remove_tree(d), 0);
    free(d);
}

static void test_model_name_ok(void **state)
{
    (void)state;
    assert_true(recd_model_name_ok("default"));
    assert_true(recd_model_name_ok("A-b_c.9"));
    assert_true(recd_model_name_ok("x."));
    assert_false(recd_model_name_ok(NULL));
    assert_false(recd_model_name_ok(""));
    assert_false(recd_model_name_ok(".hidden"));
    assert_false(recd_model_name_ok(".."));
    assert_false(recd_model_name_ok("a/b"));
    assert_false(recd_model_name_ok("a b"));
    assert_false(recd_model_name_ok("caf\xc3\xa9"));
    char name[80];
    memset(name, 'm', sizeof name);
    name[63] = '\0';
    assert_true(recd_model_name_ok(name)); /* 63 characters */
    name[63] = 'm';
    name[64] = '\0';
    assert_false(recd_model_name_ok(name)); /* 64 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remove_tree),
        cmocka_unit_test(test_fsync_dir),
        cmocka_unit_test(test_list_versions),
        cmocka_unit_test(test_model_name_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
