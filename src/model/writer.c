/*
 * Bundle writer: produces a recd-bundle/1 directory (models/FORMAT.md) and
 * publishes it atomically.
 *
 * Everything goes into <models_dir>/<name>/.tmp-<version>/ first. tensors.bin
 * is streamed as tensors arrive (each at the next 64-byte boundary, the gap
 * zero-filled), so a generator never holds the whole file in memory. Commit
 * checksums every file, writes manifest.json, fsyncs the files and the
 * directory, renames the directory to <version>/ without replacing anything
 * (renameat2 RENAME_NOREPLACE), then fsyncs <name>/ so the rename itself is
 * durable. A reader therefore sees either no <version>/ or a complete one.
 *
 * A writer is used by one thread at a time; different writers share nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recd/model.h"

typedef struct wtensor {
    char *name;
    int ndim;
    int64_t shape[2];
    uint64_t offset; /* bytes into tensors.bin */
} wtensor_t;

struct recd_bundle_writer {
    char *name_dir;  /* <models_dir>/<name> */
    char *tmp_dir;   /* <name_dir>/.tmp-<version> */
    char *final_dir; /* <name_dir>/<version> */
    int64_t version;
    int tensors_fd; /* tensors.bin, open for writing */
    uint64_t pos;   /* bytes written to tensors.bin */
    wtensor_t *tensors;
    size_t ntensors, cap;
    char path_buf[4096]; /* recd_bundle_writer_path result */
};

/* ---- small file helpers ------------------------------------------------------------ */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync a file or directory by path. */
static int fsync_path(const char *path, recd_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return recd_err_set(err, RECD_EIO, "%s: cannot open for fsync: %s", path, strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return recd_err_set(err, RECD_EIO, "%s: fsync: %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

/* mkdir that treats an existing directory as success; *created tells
 * whether this call made it. */
static int ensure_dir(const char *path, int *created, recd_err_t *err)
{
    *created = 0;
    if (mkdir(path, 0755) == 0) {
        *created = 1;
        return 0;
    }
    if (errno != EEXIST)
        return recd_err_set(err, RECD_EIO, "%s: cannot create directory: %s", path,
                            strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return recd_err_set(err, RECD_EIO, "%s: exists and is not a directory", path);
    return 0;
}

/* mkdir -p; fsyncs the parent of every directory it creates so the new
 * entries survive a crash. */
static int mkdir_parents(const char *path, recd_err_t *err)
{
    char *p = strdup(path);
    if (!p)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    int rc = 0;
    size_t len = strlen(p);
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        if (p[i - 1] == '/')
            continue;
        char saved = p[i];
        p[i] = '\0';
        int created;
        rc = ensure_dir(p, &created, err);
        if (rc == 0 && created) {
            char *slash = strrchr(p, '/');
            if (slash && slash != p) {
                *slash = '\0';
                rc = fsync_path(p, err);
                *slash = '/';
            } else {
                rc = fsync_path(slash ? "/" : ".", err);
            }
        }
        p[i] = saved;
    }
    free(p);
    return rc;
}

/* A model name is one path component that the manifest, the registry and
 * URLs can all carry unchanged. */
int recd_model_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static void writer_free(recd_bundle_writer_t *w)
{
    if (!w)
        return;
    if (w->tensors_fd >= 0)
        close(w->tensors_fd);
    for (size_t i = 0; i < w->ntensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w->name_dir);
    free(w->tmp_dir);
    free(w->final_dir);
    free(w);
}

/* ---- API --------------------------------------------------------------------------- */

recd_bundle_writer_t *recd_bundle_writer_new(const char *models_dir, const char *name,
                                             int64_t version, recd_err_t *err)
{
    if (!models_dir || !*models_dir) {
        recd_err_set(err, RECD_EINVAL, "bundle writer: empty models directory");
        return NULL;
    }
    if (!recd_model_name_ok(name)) {
        recd_err_set(err, RECD_EINVAL,
                     "bundle writer: model name '%s' must be 1-63 characters of [A-Za-z0-9._-] "
                     "not starting with '.'",
                     name ? name : "");
        return NULL;
    }
    if (version < 1) {
        recd_err_set(err, RECD_EINVAL, "bundle writer: version %lld must be a positive integer",
                     (long long)version);
        return NULL;
    }
    recd_bundle_writer_t *w = calloc(1, sizeof *w);
    if (!w) {
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        return NULL;
    }
    w->tensors_fd = -1;
    w->version = version;
    w->name_dir = xasprintf("%s/%s", models_dir, name);
    w->tmp_dir = xasprintf("%s/%s/.tmp-%lld", models_dir, name, (long long)version);
    w->final_dir = xasprintf("%s/%s/%lld", models_dir, name, (long long)version);
    if (!w->name_dir || !w->tmp_dir || !w->final_dir) {
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto fail;
    }
    if (mkdir_parents(w->name_dir, err) != 0)
        goto fail;
    struct stat st;
    if (lstat(w->final_dir, &st) == 0) {
        recd_err_set(err, RECD_EINVAL, "%s: version already exists (bundles are immutable)",
                     w->final_dir);
        goto fail;
    }
    if (errno != ENOENT) {
        recd_err_set(err, RECD_EIO, "%s: %s", w->final_dir, strerror(errno));
        goto fail;
    }
    /* A leftover .tmp-<version> is the debris of a writer that died before
     * commit; nothing can read it, so it is replaced. */
    if (recd_remove_tree(w->tmp_dir) != 0) {
        recd_err_set(err, RECD_EIO, "%s: cannot remove stale directory: %s", w->tmp_dir,
                     strerror(errno));
        goto fail;
    }
    if (mkdir(w->tmp_dir, 0755) != 0) {
        recd_err_set(err, RECD_EIO, "%s: cannot create directory: %s", w->tmp_dir, strerror(errno));
        goto fail;
    }
    const char *tpath = recd_bundle_writer_path(w, "tensors.bin");
    w->tensors_fd = open(tpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->tensors_fd < 0) {
        recd_err_set(err, RECD_EIO, "%s: cannot create: %s", tpath, strerror(errno));
        recd_remove_tree(w->tmp_dir);
        goto fail;
    }
    return w;
fail:
    writer_free(w);
    return NULL;
}

const char *recd_bundle_writer_path(recd_bundle_writer_t *w, const char *file)
{
    int n = snprintf(w->path_buf, sizeof w->path_buf, "%s/%s", w->tmp_dir, file);
    return n < 0 || (size_t)n >= sizeof w->path_buf ? NULL : w->path_buf;
}

int recd_bundle_writer_tensor(recd_bundle_writer_t *w, const char *name, const float *data,
                              int ndim, const int64_t *shape, recd_err_t *err)
{
    if (!name || !*name)
        return recd_err_set(err, RECD_EINVAL, "tensor: empty name");
    if (ndim != 1 && ndim != 2)
        return recd_err_set(err, RECD_EINVAL, "tensor %s: %d dimensions (1 or 2 allowed)", name,
                            ndim);
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > ((int64_t)1 << 40))
            return recd_err_set(err, RECD_EINVAL, "tensor %s: dimension %d is %lld", name, i,
                                (long long)shape[i]);
        count *= (uint64_t)shape[i];
    }
    if (count > (((uint64_t)1) << 40))
        return recd_err_set(err, RECD_ERANGE, "tensor %s: %llu elements is too many", name,
                            (unsigned long long)count);
    for (size_t i = 0; i < w->ntensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return recd_err_set(err, RECD_EINVAL, "tensor %s: written twice", name);
    /* The loader rejects NaN/Inf; refusing them here names the culprit at
     * the source instead. */
    for (uint64_t i = 0; i < count; i++)
        if (!isfinite(data[i]))
            return recd_err_set(err, RECD_EINVAL, "tensor %s: element %llu is not finite", name,
                                (unsigned long long)i);
    if (w->ntensors == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 32;
        wtensor_t *t = realloc(w->tensors, cap * sizeof *t);
        if (!t)
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
        w->tensors = t;
        w->cap = cap;
    }
    char *dup = strdup(name);
    if (!dup)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");

    const char *tpath = recd_bundle_writer_path(w, "tensors.bin");
    static const char zeros[RECD_TENSOR_ALIGN];
    uint64_t off = (w->pos + RECD_TENSOR_ALIGN - 1) / RECD_TENSOR_ALIGN * RECD_TENSOR_ALIGN;
    if (off > w->pos && write_all(w->tensors_fd, zeros, (size_t)(off - w->pos)) != 0)
        goto io_fail;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    /* The format is little-endian float32: swap through a small buffer. */
    for (uint64_t i = 0; i < count;) {
        uint32_t buf[1024];
        size_t m = count - i < 1024 ? (size_t)(count - i) : 1024;
        memcpy(buf, data + i, m * 4);
        for (size_t j = 0; j < m; j++)
            buf[j] = __builtin_bswap32(buf[j]);
        if (write_all(w->tensors_fd, buf, m * 4) != 0)
            goto io_fail;
        i += m;
    }
#else
    if (write_all(w->tensors_fd, data, (size_t)count * sizeof(float)) != 0)
        goto io_fail;
#endif
    wtensor_t *t = &w->tensors[w->ntensors++];
    t->name = dup;
    t->ndim = ndim;
    t->shape[0] = shape[0];
    t->shape[1] = ndim == 2 ? shape[1] : 1;
    t->offset = off;
    w->pos = off + count * sizeof(float);
    return 0;
io_fail:
    free(dup);
    return recd_err_set(err, RECD_EIO, "%s: write error (tensor %s): %s", tpath, name,
                        strerror(errno));
}

/* Write a whole file in the temporary directory and fsync it. */
static int write_file(recd_bundle_writer_t *w, const char *file, const void *data, size_t len,
                      recd_err_t *err)
{
    const char *path = recd_bundle_writer_path(w, file);
    if (!path)
        return recd_err_set(err, RECD_EINVAL, "%s/%s: path too long", w->tmp_dir, file);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return recd_err_set(err, RECD_EIO, "%s: cannot create: %s", path, strerror(errno));
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return recd_err_set(err, RECD_EIO, "%s: write error: %s", path, strerror(e));
    }
    if (close(fd) != 0)
        return recd_err_set(err, RECD_EIO, "%s: close: %s", path, strerror(errno));
    return 0;
}

int recd_bundle_writer_items(recd_bundle_writer_t *w, const char *tsv, size_t len, recd_err_t *err)
{
    return write_file(w, "items.tsv", tsv, len, err);
}

/* SHA-256 (lowercase hex) and size of a file; fsyncs it on the way, since
 * every file of the bundle must be durable before the rename. */
static int hash_and_sync(const char *path, char hex[65], uint64_t *bytes, recd_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return recd_err_set(err, RECD_EIO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    int rc = 0;
    if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = recd_err_set(err, RECD_ENOMEM, "%s: cannot start SHA-256", path);
        goto out;
    }
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = recd_err_set(err, RECD_EIO, "%s: read error: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            rc = recd_err_set(err, RECD_ERR, "%s: SHA-256 update failed", path);
            goto out;
        }
        total += (uint64_t)n;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        rc = recd_err_set(err, RECD_ERR, "%s: SHA-256 final failed", path);
        goto out;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    *bytes = total;
    if (fsync(fd) != 0)
        rc = recd_err_set(err, RECD_EIO, "%s: fsync: %s", path, strerror(errno));
out:
    free(buf);
    EVP_MD_CTX_free(ctx);
    close(fd);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* {file: {sha256, bytes}} for every regular file in the temporary directory
 * except manifest.json, in name order. */
static json_t *files_table(recd_bundle_writer_t *w, recd_err_t *err)
{
    DIR *d = opendir(w->tmp_dir);
    if (!d) {
        recd_err_set(err, RECD_EIO, "%s: cannot open directory: %s", w->tmp_dir, strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    json_t *files = NULL;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "manifest.json") == 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                goto oom;
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name)))
            goto oom;
        n++;
    }
    if (errno != 0) {
        recd_err_set(err, RECD_EIO, "%s: readdir: %s", w->tmp_dir, strerror(errno));
        goto out;
    }
    qsort(names, n, sizeof *names, cmp_str);
    files = json_object();
    if (!files)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *path = recd_bundle_writer_path(w, names[i]);
        struct stat st;
        if (!path || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            recd_err_set(err, RECD_EINVAL, "%s/%s: not a regular file (a bundle is flat)",
                         w->tmp_dir, names[i]);
            goto fail;
        }
        char hex[65];
        uint64_t bytes = 0;
        if (hash_and_sync(path, hex, &bytes, err) != 0)
            goto fail;
        json_t *info = json_pack("{s:s, s:I}", "sha256", hex, "bytes", (json_int_t)bytes);
        if (!info || json_object_set_new(files, names[i], info) != 0)
            goto oom;
    }
    goto out;
oom:
    recd_err_set(err, RECD_ENOMEM, "out of memory");
fail:
    json_decref(files);
    files = NULL;
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return files;
}

static json_t *tensor_table(const recd_bundle_writer_t *w)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < w->ntensors; i++) {
        const wtensor_t *t = &w->tensors[i];
        json_t *shape = t->ndim == 2
                            ? json_pack("[I, I]", (json_int_t)t->shape[0], (json_int_t)t->shape[1])
                            : json_pack("[I]", (json_int_t)t->shape[0]);
        json_t *o = shape ? json_pack("{s:s, s:o, s:I}", "name", t->name, "shape", shape, "offset",
                                      (json_int_t)t->offset)
                          : NULL;
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

int recd_bundle_writer_commit(recd_bundle_writer_t *w, json_t *manifest, recd_err_t *err)
{
    int rc = 0;
    json_t *m = NULL;
    char *text = NULL;
    const char *tpath = recd_bundle_writer_path(w, "tensors.bin");
    if (!manifest || !json_is_object(manifest)) {
        rc = recd_err_set(err, RECD_EINVAL, "%s: manifest is not a JSON object", w->tmp_dir);
        goto fail;
    }
    if (fsync(w->tensors_fd) != 0 || close(w->tensors_fd) != 0) {
        w->tensors_fd = -1;
        rc = recd_err_set(err, RECD_EIO, "%s: fsync: %s", tpath, strerror(errno));
        goto fail;
    }
    w->tensors_fd = -1;
    struct stat st;
    if (stat(recd_bundle_writer_path(w, "items.tsv"), &st) != 0) {
        rc = recd_err_set(err, RECD_EINVAL, "%s/items.tsv: missing (call the items writer)",
                          w->tmp_dir);
        goto fail;
    }

    /* A shallow copy: the caller's object is left as it was. */
    m = json_copy(manifest);
    if (!m || json_object_set_new(m, "tensor_alignment", json_integer(RECD_TENSOR_ALIGN)) != 0 ||
        json_object_set_new(m, "tensors", tensor_table(w)) != 0) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
        goto fail;
    }
    json_t *files = files_table(w, err);
    if (!files) {
        rc = err ? err->code : RECD_ERR;
        goto fail;
    }
    if (json_object_set_new(m, "files", files) != 0) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
        goto fail;
    }
    text = json_dumps(m, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (!text) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
        goto fail;
    }
    size_t len = strlen(text);
    char *withnl = realloc(text, len + 2);
    if (!withnl) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
        goto fail;
    }
    text = withnl;
    text[len] = '\n';
    text[len + 1] = '\0';
    if ((rc = write_file(w, "manifest.json", text, len + 1, err)) != 0)
        goto fail;
    if ((rc = fsync_path(w->tmp_dir, err)) != 0)
        goto fail;

    /* Publish without ever replacing a version someone else published. */
    if (renameat2(AT_FDCWD, w->tmp_dir, AT_FDCWD, w->final_dir, RENAME_NOREPLACE) != 0) {
        int e = errno;
        if (e == EINVAL || e == ENOSYS) {
            /* The file system cannot do RENAME_NOREPLACE: check, then rename
             * (rename(2) would replace an empty directory, never a bundle). */
            if (lstat(w->final_dir, &st) == 0)
                e = EEXIST;
            else if (rename(w->tmp_dir, w->final_dir) == 0)
                e = 0;
            else
                e = errno;
        }
        if (e == EEXIST || e == ENOTEMPTY) {
            rc = recd_err_set(err, RECD_EINVAL,
                              "%s: version already exists (bundles are immutable)", w->final_dir);
            goto fail;
        }
        if (e != 0) {
            rc = recd_err_set(err, RECD_EIO, "rename %s -> %s: %s", w->tmp_dir, w->final_dir,
                              strerror(e));
            goto fail;
        }
    }
    rc = fsync_path(w->name_dir, err);
    json_decref(m);
    free(text);
    writer_free(w);
    return rc;
fail:
    json_decref(m);
    free(text);
    recd_bundle_writer_abort(w);
    return rc < 0 ? rc : RECD_ERR;
}

void recd_bundle_writer_abort(recd_bundle_writer_t *w)
{
    if (!w)
        return;
    if (w->tensors_fd >= 0) {
        close(w->tensors_fd);
        w->tensors_fd = -1;
    }
    recd_remove_tree(w->tmp_dir);
    writer_free(w);
}
