/*
 * File-system helpers; see fs.h. Every write that must survive a crash goes
 * through cairn_fs_write_atomic() or follows the same pattern by hand.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn/common.h"
#include "util/fs.h"
#include "util/text.h"

int cairn_fs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cairn_error_set_errno(CAIRN_ERROR, "write failed");
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int cairn_fs_pwrite_all(int fd, const void *data, size_t len, off_t off)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cairn_error_set_errno(CAIRN_ERROR, "write failed");
        }
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t cairn_fs_read_full(int fd, void *data, size_t len)
{
    char *p = data;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cairn_error_set_errno(CAIRN_ERROR, "read failed");
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

ssize_t cairn_fs_pread_full(int fd, void *data, size_t len, off_t off)
{
    char *p = data;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, p + got, len - got, off + (off_t)got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cairn_error_set_errno(CAIRN_ERROR, "read failed");
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int cairn_fs_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot open directory '%s'", dir);
    if (fsync(fd) < 0 && errno != EINVAL) {
        int e = cairn_error_set_errno(CAIRN_ERROR, "cannot fsync directory '%s'", dir);
        close(fd);
        return e;
    }
    close(fd);
    return 0;
}

int cairn_fs_fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        return cairn_fs_fsync_dir(".");
    if ((size_t)(slash - path) >= sizeof(dir))
        return cairn_error_set(CAIRN_EINVALID, "path too long '%s'", path);
    if (slash == path)
        return cairn_fs_fsync_dir("/");
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    return cairn_fs_fsync_dir(dir);
}

int cairn_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    int fd, error = 0;
    static _Thread_local unsigned counter;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%u", path, (int)getpid(), counter++) >=
        (int)sizeof(tmp))
        return cairn_error_set(CAIRN_EINVALID, "path too long '%s'", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", tmp);
    if ((error = cairn_fs_write_all(fd, data, len)) < 0)
        goto fail;
    if (fsync(fd) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot fsync '%s'", tmp);
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot close '%s'", tmp);
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot rename '%s' to '%s'", tmp, path);
        goto fail;
    }
    return cairn_fs_fsync_parent(path);
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return error;
}

int cairn_fs_read_file(struct cairn_buf *out, const char *path, size_t limit)
{
    struct stat st;
    int fd, error = 0;
    char tmp[65536];

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cairn_error_set_errno(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_ERROR,
                                     "cannot open '%s'", path);
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return cairn_error_set(CAIRN_EINVALID, "'%s' is a directory", path);
    }
    for (;;) {
        ssize_t n = cairn_fs_read_full(fd, tmp, sizeof(tmp));
        if (n < 0) {
            error = cairn_error_set_errno(CAIRN_ERROR, "cannot read '%s'", path);
            break;
        }
        if (n == 0)
            break;
        if (out->len + (size_t)n > limit) {
            error = cairn_error_set(CAIRN_EINVALID, "'%s' is larger than %zu bytes", path, limit);
            break;
        }
        if ((error = cairn_buf_put(out, tmp, (size_t)n)) < 0)
            break;
    }
    close(fd);
    if (!error && !out->ptr)
        error = cairn_buf_put(out, "", 0);
    return error;
}

int cairn_fs_mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(tmp))
        return cairn_error_set(CAIRN_EINVALID, "bad directory path '%s'", path);
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0777) < 0 && errno != EEXIST)
            return cairn_error_set_errno(CAIRN_ERROR, "cannot create directory '%s'", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0777) < 0 && errno != EEXIST)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot create directory '%s'", tmp);
    return 0;
}

static int rm_rf_at(int parent, const char *name)
{
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : cairn_error_set_errno(CAIRN_ERROR, "cannot stat '%s'", name);
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d;
        struct dirent *e;
        int error = 0;
        if (fd < 0)
            return cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", name);
        d = fdopendir(fd);
        if (!d) {
            close(fd);
            return cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", name);
        }
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            if ((error = rm_rf_at(dirfd(d), e->d_name)) < 0)
                break;
        }
        closedir(d);
        if (error < 0)
            return error;
        if (unlinkat(parent, name, AT_REMOVEDIR) < 0)
            return cairn_error_set_errno(CAIRN_ERROR, "cannot remove '%s'", name);
        return 0;
    }
    if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot remove '%s'", name);
    return 0;
}

int cairn_fs_rm_rf(const char *path)
{
    return rm_rf_at(AT_FDCWD, path);
}

int cairn_fs_join(struct cairn_buf *out, const char *a, const char *b)
{
    size_t la = strlen(a);
    int error;
    cairn_buf_clear(out);
    if ((error = cairn_buf_put(out, a, la)) < 0)
        return error;
    if (la && a[la - 1] != '/' && (error = cairn_buf_putc(out, '/')) < 0)
        return error;
    return cairn_buf_puts(out, b);
}

static int reserved_component(const char *c, size_t n)
{
    static const char *const names[] = { ".cairn", ".git" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (n == strlen(names[i]) && !strncasecmp(c, names[i], n))
            return 1;
    return 0;
}

bool cairn_fs_reserved_name(const char *name)
{
    return reserved_component(name, strlen(name));
}

int cairn_fs_path_valid(const char *path)
{
    size_t len = strlen(path);
    const char *p = path;
    char q[160];

    if (len == 0)
        return cairn_error_set(CAIRN_EINVALID, "empty path");
    if (len > CAIRN_PATH_MAX)
        return cairn_error_set(CAIRN_EINVALID, "path '%s' is longer than %d bytes",
                               cairn_text_quote(q, sizeof(q), path), CAIRN_PATH_MAX);
    if (!cairn_utf8_valid(path, len))
        return cairn_error_set(CAIRN_EINVALID, "path '%s' is not valid UTF-8",
                               cairn_text_quote(q, sizeof(q), path));
    if (cairn_text_has_control(path, len))
        return cairn_error_set(CAIRN_EINVALID, "path '%s' has a control character",
                               cairn_text_quote(q, sizeof(q), path));
    if (path[0] == '/')
        return cairn_error_set(CAIRN_EINVALID, "absolute path '%s' not allowed",
                               cairn_text_quote(q, sizeof(q), path));
    if (strchr(path, '\\'))
        return cairn_error_set(CAIRN_EINVALID, "backslash in path '%s' not allowed",
                               cairn_text_quote(q, sizeof(q), path));
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return cairn_error_set(CAIRN_EINVALID, "path '%s' has an empty, '.' or '..' component",
                                   cairn_text_quote(q, sizeof(q), path));
        if (n > CAIRN_PATH_COMPONENT_MAX)
            return cairn_error_set(CAIRN_EINVALID, "path '%s' has a component longer than %d bytes",
                                   cairn_text_quote(q, sizeof(q), path), CAIRN_PATH_COMPONENT_MAX);
        if (reserved_component(p, n))
            return cairn_error_set(CAIRN_EINVALID, "path '%s' has a reserved component '%.*s'",
                                   cairn_text_quote(q, sizeof(q), path), (int)n, p);
        p += n;
        if (*p == '/')
            p++;
        if (slash && !*p)
            return cairn_error_set(CAIRN_EINVALID, "path '%s' ends with '/'",
                                   cairn_text_quote(q, sizeof(q), path));
    }
    return 0;
}

int cairn_fs_lock(int *fd_out, const char *path, int exclusive, int nowait)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int op = (exclusive ? LOCK_EX : LOCK_SH) | (nowait ? LOCK_NB : 0);
    if (fd < 0)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot open lock file '%s'", path);
    while (flock(fd, op) < 0) {
        if (errno == EINTR)
            continue;
        int code = errno == EWOULDBLOCK ? CAIRN_ELOCKED : CAIRN_ERROR;
        cairn_error_set_errno(code, "cannot lock '%s'", path);
        close(fd);
        return code;
    }
    *fd_out = fd;
    return 0;
}

void cairn_fs_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

double cairn_time_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long cairn_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void cairn_fs_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

int cairn_fs_list_dir(char ***names_out, size_t *n_out, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int error = 0;

    if (!d)
        return cairn_error_set_errno(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_ERROR,
                                     "cannot open directory '%s'", dir);
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            char **p = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*names));
            if (!p) {
                error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
                break;
            }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (error < 0) {
        cairn_fs_names_free(names, n);
        return error;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), name_cmp);
    *names_out = names;
    *n_out = n;
    return 0;
}

int cairn_fs_mkdtemp(struct cairn_buf *out, const char *base, const char *prefix)
{
    int error;

    if (!base || !*base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    cairn_buf_clear(out);
    if ((error = cairn_buf_printf(out, "%s/%s-XXXXXX", base, prefix)) < 0)
        return error;
    if (!mkdtemp(out->ptr))
        return cairn_error_set_errno(CAIRN_ERROR, "cannot create a directory in '%s'", base);
    return 0;
}
