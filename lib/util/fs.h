/*
 * File-system helpers with the durability rules of SPEC §4: a file that is
 * written is written whole or not at all (temp file with O_EXCL, write,
 * fsync, rename, fsync of the directory), and every read of outside data is
 * bounded.
 */
#ifndef CAIRN_UTIL_FS_H
#define CAIRN_UTIL_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/buf.h"

/* Write `len` bytes to `path` atomically and durably with the given mode. */
int cairn_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Read a whole file of at most `limit` bytes into `out` (appending). */
int cairn_fs_read_file(struct cairn_buf *out, const char *path, size_t limit);

/* write()/pwrite()/read() loops that handle short transfers and EINTR. */
int cairn_fs_write_all(int fd, const void *data, size_t len);
int cairn_fs_pwrite_all(int fd, const void *data, size_t len, off_t off);
/* Returns bytes read (short only at end of file) or a negative error. */
ssize_t cairn_fs_read_full(int fd, void *data, size_t len);
ssize_t cairn_fs_pread_full(int fd, void *data, size_t len, off_t off);

/* fsync the directory that contains `path` (or `path` itself if a directory). */
int cairn_fs_fsync_dir(const char *dir);
int cairn_fs_fsync_parent(const char *path);

/* mkdir -p with mode 0777 & ~umask; existing directories are fine. */
int cairn_fs_mkdir_p(const char *path);

/* Recursive delete of a directory tree (no symlink following). */
int cairn_fs_rm_rf(const char *path);

/*
 * The names in directory `dir`, sorted bytewise, without "." and "..".
 * `*names_out` is an array of `*n_out` strings; free it with
 * cairn_fs_names_free().
 */
int cairn_fs_list_dir(char ***names_out, size_t *n_out, const char *dir);
void cairn_fs_names_free(char **names, size_t n);

/*
 * Create a fresh private directory "BASE/PREFIX-XXXXXX" with mkdtemp; BASE
 * NULL or empty means $TMPDIR, else /tmp. Its path replaces the contents of
 * `out`; `prefix` must not point into `out`.
 */
int cairn_fs_mkdtemp(struct cairn_buf *out, const char *base, const char *prefix);

/* Join two path parts with one '/', into a caller-owned buffer. */
int cairn_fs_join(struct cairn_buf *out, const char *a, const char *b);

/* Limits of a manifest path and of each of its components. */
#define CAIRN_PATH_MAX           4096
#define CAIRN_PATH_COMPONENT_MAX 255

/*
 * Validate a manifest path, the one rule for every path that reaches the
 * disk from a manifest, a remote or a client (docs/remotes.md, "What a
 * remote may send"): relative, '/'-separated, well-formed UTF-8 without
 * control characters; no empty, '.' or '..' components, no backslash;
 * no component named .cairn or .git in any letter case (a version must not
 * write into the repository or a git checkout); at most CAIRN_PATH_MAX
 * bytes, components at most CAIRN_PATH_COMPONENT_MAX. Returns 0 or
 * CAIRN_EINVALID with a message naming the path, quoted for a terminal.
 */
int cairn_fs_path_valid(const char *path);

/* Whether a file name is one of the reserved components above (.cairn, .git, any case). */
bool cairn_fs_reserved_name(const char *name);

/*
 * Advisory locks on a lock file (flock). `exclusive` false takes a shared
 * lock. Blocks until granted unless `nowait`, then CAIRN_ELOCKED. The lock is
 * released by cairn_fs_unlock() or when the process dies (kill -9 safe).
 */
int cairn_fs_lock(int *fd_out, const char *path, int exclusive, int nowait);
void cairn_fs_unlock(int fd);

/* Monotonic and wall-clock time helpers. */
double cairn_time_monotonic(void); /* seconds */
long long cairn_time_now_ns(void); /* CLOCK_REALTIME, nanoseconds since epoch */

#endif
