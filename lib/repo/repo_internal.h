/*
 * What the files of lib/repo share and nobody else sees: the repository
 * struct and the lock helpers.
 */
#ifndef CAIRN_REPO_INTERNAL_H
#define CAIRN_REPO_INTERNAL_H

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cairn/store.h"
#include "repo/object.h"
#include "util/buf.h"

struct cairn_repo {
    char *workdir;  /* absolute, no trailing slash */
    char *cairndir; /* workdir/.cairn */
    char *user;
    struct cairn_store *store;
    struct cairn_registry *registry;
    int lock_fd;    /* -1 when not held */
    int lock_depth; /* nested holders in this process */
    int lock_exclusive;
};

/*
 * Take the repository lock: shared for everything but gc, exclusive for gc.
 * Nested calls in one process are counted; the mode of the outermost wins.
 */
int cairn__repo_lock(struct cairn_repo *repo, int exclusive);
void cairn__repo_unlock(struct cairn_repo *repo);

/* Read and decode objects from the store. */
int cairn__repo_load_file(struct cairn_repo *repo, const cairn_oid *id,
                          struct cairn_file_object *out);

/* Map a path given by the user (relative to the cwd) to a repository path. */
int cairn__repo_relpath(struct cairn_repo *repo, struct cairn_buf *out, const char *abs_path);

/*
 * Ingest every file under `dir` (anywhere on disk, not staged, no stat
 * cache) into the store and describe them as a tree, paths relative to
 * `dir`. Used to commit derived versions (quantize, prune) and pulls.
 */
int cairn__repo_ingest_dir(struct cairn_repo *repo, const char *dir, struct cairn_tree *out,
                           struct cairn_add_stats *stats);

/* BLAKE3 of everything readable from `fd` (`path` names it in errors). */
int cairn__hash_fd(int fd, const char *path, cairn_oid *out);

/*
 * 1 if the stat cache says the workdir file `rel`, whose lstat is `st`, has
 * content `digest` without reading it (same size, mtime, ctime, inode); 0
 * when it cannot tell.
 */
struct stat;
int cairn__statcache_unchanged(struct cairn_repo *repo, const char *rel, const struct stat *st,
                               const cairn_oid *digest);

/* Load a flat JSON or YAML object of numbers, strings and booleans (params, metrics). */
int cairn__load_kv_file(struct cairn_values *out, const char *path, const char *what);

#endif
