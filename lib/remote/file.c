/*
 * The file:// remote: objects are files under one directory (a local disk,
 * an NFS mount), with the same semantics as S3. A put writes a temporary
 * file named ".cairn-tmp.*" next to the target, fsyncs it, renames it into
 * place and fsyncs the directory, so a reader or a crash sees the old object
 * or the new one, never a torn one; listings skip the temporary names. Reads
 * use pread through a fixed 1 MiB buffer, so memory does not depend on
 * object size. Listing walks the tree and sorts the keys it gathered (S3
 * order), so it holds every matching key name in memory at once.
 *
 * A writer killed between creating a temp file and renaming it leaves the
 * temp file behind. The first put of each session (so: push, never pull)
 * sweeps the tree once and removes temp files not modified for an hour;
 * a live writer touches its file as it writes, so only one stalled for
 * that long can lose it (its rename then fails and the push is retried).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn/common.h"
#include "remote/backend.h"
#include "util/buf.h"
#include "util/fs.h"

#define IO_BLOCK   ((size_t)1 << 20)
#define TMP_PREFIX ".cairn-tmp."
#define TMP_GRACE  3600 /* seconds since a temp file's last write before a sweep removes it */

struct file_remote {
    struct cairn_remote base;
    char *root;
    int swept; /* set (atomically) by the first put */
};

/* Remove the temp files below `path` last modified before `cutoff`; best effort. */
static void sweep_dir(struct cairn_buf *path, time_t cutoff, int depth)
{
    size_t base = path->len;
    struct dirent *de;
    DIR *d;

    if (depth > 64 || !(d = opendir(path->ptr)))
        return;
    while ((de = readdir(d))) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        path->len = base;
        if (cairn_buf_printf(path, "/%s", de->d_name) < 0)
            break;
        if (lstat(path->ptr, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode))
            sweep_dir(path, cutoff, depth + 1);
        else if (S_ISREG(st.st_mode) && !strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) &&
                 st.st_mtime < cutoff)
            unlink(path->ptr);
    }
    closedir(d);
    path->len = base;
    path->ptr[base] = '\0';
}

static void sweep_once(struct file_remote *f)
{
    struct cairn_buf path = CAIRN_BUF_INIT;
    if (__atomic_exchange_n(&f->swept, 1, __ATOMIC_ACQ_REL))
        return;
    if (cairn_buf_puts(&path, f->root) == 0)
        sweep_dir(&path, time(NULL) - TMP_GRACE, 0);
    cairn_buf_release(&path);
    cairn_error_clear();
}

static int object_path(struct cairn_buf *out, struct file_remote *f, const char *key)
{
    return cairn_fs_join(out, f->root, key);
}

/* Create the temp file beside `path` (making the parent directories). */
static int open_temp(int *fd_out, struct cairn_buf *tmp, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    int error;

    cairn_buf_clear(tmp);
    if ((error = cairn_buf_put(tmp, path, dlen)) < 0)
        return error;
    if (dlen > 0 && (error = cairn_fs_mkdir_p(tmp->ptr)) < 0)
        return error;
    if ((error = cairn_buf_puts(tmp, "/" TMP_PREFIX "XXXXXX")) < 0)
        return error;
    *fd_out = mkostemp(tmp->ptr, O_CLOEXEC);
    if (*fd_out < 0)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", tmp->ptr);
    return 0;
}

/* fsync, close, set the mode, rename over `path` and fsync its directory. */
static int commit_temp(int fd, const char *tmp, const char *path)
{
    int error = 0;
    if (fchmod(fd, 0644) < 0 || fsync(fd) < 0)
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot write '%s'", tmp);
    if (close(fd) < 0 && error == 0)
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot write '%s'", tmp);
    if (error == 0 && rename(tmp, path) < 0)
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot rename '%s'", tmp);
    if (error == 0)
        error = cairn_fs_fsync_parent(path);
    if (error < 0)
        unlink(tmp);
    return error;
}

static int file_put_buf(struct cairn_remote *r, const char *key, const void *data, size_t len)
{
    struct file_remote *f = (struct file_remote *)r;
    struct cairn_buf path = CAIRN_BUF_INIT, tmp = CAIRN_BUF_INIT;
    int fd = -1, error;

    if ((error = object_path(&path, f, key)) < 0)
        goto done;
    sweep_once(f);
    if ((error = open_temp(&fd, &tmp, path.ptr)) < 0)
        goto done;
    if ((error = cairn_fs_write_all(fd, data, len)) < 0) {
        close(fd);
        unlink(tmp.ptr);
        goto done;
    }
    error = commit_temp(fd, tmp.ptr, path.ptr);
    if (error == 0)
        cairn__remote_count(r, len, 0);
done:
    cairn_buf_release(&path);
    cairn_buf_release(&tmp);
    return error;
}

static int file_put_file(struct cairn_remote *r, const char *key, int in, uint64_t off,
                         uint64_t len)
{
    struct file_remote *f = (struct file_remote *)r;
    struct cairn_buf path = CAIRN_BUF_INIT, tmp = CAIRN_BUF_INIT;
    char *block = NULL;
    int fd = -1, error;
    uint64_t done_bytes = 0;

    if (!(block = malloc(IO_BLOCK))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = object_path(&path, f, key)) < 0)
        goto done;
    sweep_once(f);
    if ((error = open_temp(&fd, &tmp, path.ptr)) < 0)
        goto done;
    while (done_bytes < len) {
        size_t want = len - done_bytes < IO_BLOCK ? (size_t)(len - done_bytes) : IO_BLOCK;
        ssize_t n = cairn_fs_pread_full(in, block, want, (off_t)(off + done_bytes));
        if (n < 0) {
            error = (int)n;
            break;
        }
        if ((size_t)n < want) {
            error = cairn_error_set(CAIRN_EINVALID, "source for '%s' ends before %llu bytes", key,
                                    (unsigned long long)len);
            break;
        }
        if ((error = cairn_fs_write_all(fd, block, want)) < 0)
            break;
        done_bytes += want;
    }
    if (error < 0) {
        close(fd);
        unlink(tmp.ptr);
        goto done;
    }
    if ((error = commit_temp(fd, tmp.ptr, path.ptr)) == 0)
        cairn__remote_count(r, len, 0);
done:
    free(block);
    cairn_buf_release(&path);
    cairn_buf_release(&tmp);
    return error;
}

static int open_object(int *fd_out, uint64_t *size_out, struct file_remote *f, const char *key)
{
    struct cairn_buf path = CAIRN_BUF_INIT;
    struct stat st;
    int error;

    *fd_out = -1;
    if ((error = object_path(&path, f, key)) < 0)
        goto done;
    *fd_out = open(path.ptr, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd_out < 0) {
        error =
            errno == ENOENT || errno == ENOTDIR
                ? cairn_error_set(CAIRN_ENOTFOUND, "object '%s' not found in '%s'", key, f->root)
                : cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", path.ptr);
        goto done;
    }
    if (fstat(*fd_out, &st) < 0 || !S_ISREG(st.st_mode)) {
        error = cairn_error_set(CAIRN_ENOTFOUND, "object '%s' not found in '%s'", key, f->root);
        close(*fd_out);
        *fd_out = -1;
        goto done;
    }
    *size_out = (uint64_t)st.st_size;
done:
    cairn_buf_release(&path);
    return error;
}

static int file_get(struct cairn_remote *r, const char *key, uint64_t off, uint64_t len,
                    cairn_remote_sink_fn sink, void *payload)
{
    struct file_remote *f = (struct file_remote *)r;
    char *block = NULL;
    uint64_t size = 0, pos;
    int fd = -1, error;

    if ((error = open_object(&fd, &size, f, key)) < 0)
        goto done;
    if (len == CAIRN_REMOTE_TO_END)
        len = off <= size ? size - off : 0;
    if (off > size || len > size - off) {
        error = cairn_error_set(
            CAIRN_ECORRUPT, "object '%s' is %llu bytes, shorter than the %llu+%llu asked", key,
            (unsigned long long)size, (unsigned long long)off, (unsigned long long)len);
        goto done;
    }
    if (!(block = malloc(IO_BLOCK))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (pos = 0; pos < len;) {
        size_t want = len - pos < IO_BLOCK ? (size_t)(len - pos) : IO_BLOCK;
        ssize_t n = cairn_fs_pread_full(fd, block, want, (off_t)(off + pos));
        if (n < 0) {
            error = (int)n;
            goto done;
        }
        if ((size_t)n < want) {
            error = cairn_error_set(CAIRN_ECORRUPT, "object '%s' shrank while reading", key);
            goto done;
        }
        if ((error = sink(payload, block, want)) < 0)
            goto done;
        cairn__remote_count(r, 0, want);
        pos += want;
    }
done:
    free(block);
    if (fd >= 0)
        close(fd);
    return error;
}

static int file_head(struct cairn_remote *r, uint64_t *size_out, const char *key)
{
    int fd = -1, error = open_object(&fd, size_out, (struct file_remote *)r, key);
    if (fd >= 0)
        close(fd);
    return error;
}

static int file_del(struct cairn_remote *r, const char *key)
{
    struct file_remote *f = (struct file_remote *)r;
    struct cairn_buf path = CAIRN_BUF_INIT;
    int error;

    if ((error = object_path(&path, f, key)) < 0)
        goto done;
    if (unlink(path.ptr) < 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            error = cairn_error_set_errno(CAIRN_ERROR, "cannot delete '%s'", path.ptr);
        goto done;
    }
    error = cairn_fs_fsync_parent(path.ptr);
done:
    cairn_buf_release(&path);
    return error;
}

struct entry {
    char *key;
    uint64_t size;
};

struct walk {
    struct entry *v;
    size_t n, cap;
    const char *prefix;
    size_t plen;
};

static int walk_add(struct walk *w, const char *key, uint64_t size)
{
    if (CAIRN_ARRAY_GROW(w->v, w->cap, w->n) < 0)
        return CAIRN_ENOMEM;
    if (!(w->v[w->n].key = strdup(key)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    w->v[w->n++].size = size;
    return 0;
}

/*
 * Recurse into root/rel. Only directories that can hold keys with the
 * prefix are entered, so listing "chunks/ab" does not read the whole tree.
 */
static int walk_dir(struct walk *w, struct cairn_buf *path, size_t rootlen, int depth)
{
    DIR *d = NULL;
    struct dirent *de;
    int error = 0;
    size_t base = path->len;

    if (depth > 64)
        return cairn_error_set(CAIRN_EINVALID, "directory tree too deep at '%s'", path->ptr);
    if (!(d = opendir(path->ptr))) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return cairn_error_set_errno(CAIRN_ERROR, "cannot list '%s'", path->ptr);
    }
    while ((de = readdir(d))) {
        struct stat st;
        const char *rel;
        size_t rlen, cmp;
        if (de->d_name[0] == '.' &&
            (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
             strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0))
            continue;
        path->len = base;
        if ((error = cairn_buf_printf(path, "/%s", de->d_name)) < 0)
            break;
        rel = path->ptr + rootlen + 1;
        rlen = strlen(rel);
        if (lstat(path->ptr, &st) < 0)
            continue;
        cmp = rlen < w->plen ? rlen : w->plen;
        if (S_ISDIR(st.st_mode)) {
            /* Enter if "rel/" can still start with the prefix. */
            if (strncmp(rel, w->prefix, cmp) != 0)
                continue;
            if (rlen < w->plen && w->prefix[rlen] != '/')
                continue;
            if ((error = walk_dir(w, path, rootlen, depth + 1)) < 0)
                break;
        } else if (S_ISREG(st.st_mode)) {
            if (rlen >= w->plen && strncmp(rel, w->prefix, w->plen) == 0 &&
                (error = walk_add(w, rel, (uint64_t)st.st_size)) < 0)
                break;
        }
    }
    closedir(d);
    path->len = base;
    path->ptr[base] = 0;
    return error;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

static int file_list(struct cairn_remote *r, const char *prefix, cairn_remote_list_fn fn,
                     void *payload)
{
    struct file_remote *f = (struct file_remote *)r;
    struct walk w = { NULL, 0, 0, prefix, strlen(prefix) };
    struct cairn_buf path = CAIRN_BUF_INIT;
    int error;

    if ((error = cairn_buf_puts(&path, f->root)) < 0)
        goto done;
    if ((error = walk_dir(&w, &path, strlen(f->root), 0)) < 0)
        goto done;
    if (w.n > 1)
        qsort(w.v, w.n, sizeof(*w.v), entry_cmp);
    for (size_t i = 0; i < w.n; i++) {
        if ((error = fn(payload, w.v[i].key, w.v[i].size)) < 0)
            goto done;
    }
done:
    for (size_t i = 0; i < w.n; i++)
        free(w.v[i].key);
    free(w.v);
    cairn_buf_release(&path);
    return error;
}

static void file_free(struct cairn_remote *r)
{
    struct file_remote *f = (struct file_remote *)r;
    free(f->root);
    free(f);
}

static const struct cairn__remote_ops file_ops = {
    file_put_buf, file_put_file, file_get, file_head, file_list, file_del, NULL, file_free,
};

int cairn__remote_file_open(struct cairn_remote **out, const char *dir)
{
    struct file_remote *f = calloc(1, sizeof(*f));
    struct stat st;

    *out = NULL;
    if (!f || !(f->root = strdup(dir))) {
        free(f);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    f->base.ops = &file_ops;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        int error = cairn_error_set(CAIRN_ENOTFOUND, "remote directory '%s' does not exist", dir);
        file_free(&f->base);
        return error;
    }
    *out = &f->base;
    return 0;
}
