/*
 * cairn checkout: write a version's files, verified, at disk speed.
 *
 * Every chunk is read through cairn_store_get(), which decodes it and checks
 * its BLAKE3 before a byte reaches the file; the worker pool fetches chunks
 * in parallel and writes them with pwrite at their offsets, so order does
 * not matter and both cores decode. Each file is written to a temp name in
 * its target directory and renamed into place only when every chunk landed,
 * so a corrupt store or a kill never leaves a wrong or partial file under
 * the real name.
 *
 * Paths come from the manifest, which may come from a remote: each is
 * validated (relative, no '..'), and every directory on the way is opened
 * with O_NOFOLLOW from the target down, so a symlink planted in the target
 * cannot redirect a write outside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo/repo_internal.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/pool.h"

#define BATCH_BYTES ((uint64_t)4 << 20)

struct co_state;

struct co_job {
    struct co_state *s;
    int fd;
    const struct cairn_file_chunk *chunks;
    size_t n;
    struct cairn_buf buf;
};

struct co_state {
    struct cairn_repo *repo;
    struct cairn_pool *pool;
    pthread_mutex_t mu;
    int error;
    char errmsg[512];
    uint64_t done_bytes, total_bytes;
    const struct cairn_checkout_opts *opts;
    struct co_job *jobs;
    unsigned njobs;
    mode_t umask;
};

/*
 * The process umask, read without changing it where /proc allows: umask(2)
 * can only be read by setting it, and another thread creating a file in
 * between would get the wrong mode.
 */
static mode_t current_umask(void)
{
    char line[128];
    unsigned m;
    mode_t old;
    FILE *f = fopen("/proc/self/status", "re");
    if (f) {
        while (fgets(line, sizeof(line), f)) {
            if (sscanf(line, "Umask: %o", &m) == 1) {
                fclose(f);
                return (mode_t)m & 0777;
            }
        }
        fclose(f);
    }
    old = umask(022);
    umask(old);
    return old;
}

static void co_run(void *arg)
{
    struct co_job *j = arg;
    struct co_state *s = j->s;
    int error = 0;
    uint64_t bytes = 0;

    pthread_mutex_lock(&s->mu);
    error = s->error;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < j->n && !error; i++) {
        const struct cairn_file_chunk *c = &j->chunks[i];
        cairn_buf_clear(&j->buf);
        if ((error = cairn_store_get(s->repo->store, &c->id, &j->buf)) < 0)
            break;
        if (j->buf.len != c->len) {
            error = cairn_error_set(CAIRN_ECORRUPT, "chunk has %zu bytes, manifest says %u",
                                    j->buf.len, c->len);
            break;
        }
        error = cairn_fs_pwrite_all(j->fd, j->buf.ptr, j->buf.len, (off_t)c->offset);
        bytes += c->len;
    }
    pthread_mutex_lock(&s->mu);
    if (error < 0 && !s->error) {
        s->error = error;
        snprintf(s->errmsg, sizeof(s->errmsg), "%s", cairn_error_last());
    }
    s->done_bytes += bytes;
    pthread_mutex_unlock(&s->mu);
}

/*
 * Open each directory of `rel`'s parent below `rootfd` without following
 * links, creating missing ones if `create`; without it, returns 1 (and no
 * fd) when a directory on the way is not there.
 */
static int open_parent(int rootfd, const char *rel, int create, int *dirfd_out,
                       const char **base_out)
{
    char part[4097];
    const char *p = rel, *slash;
    int fd = dup(rootfd);

    if (fd < 0)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot open target directory");
    while ((slash = strchr(p, '/')) != NULL) {
        size_t n = (size_t)(slash - p);
        int next;
        memcpy(part, p, n);
        part[n] = '\0';
        if (create && mkdirat(fd, part, 0777) < 0 && errno != EEXIST) {
            int e = cairn_error_set_errno(CAIRN_ERROR, "cannot create directory for '%s'", rel);
            close(fd);
            return e;
        }
        next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        if (next < 0 && !create)
            return 1;
        if (next < 0)
            return cairn_error_set_errno(CAIRN_ERROR,
                                         "cannot enter directory for '%s' (a symlink or file in"
                                         " the way?)",
                                         rel);
        fd = next;
        p = slash + 1;
    }
    *dirfd_out = fd;
    *base_out = p;
    return 0;
}

static int included(const struct cairn_checkout_opts *opts, const char *path)
{
    if (!opts || !opts->ninclude)
        return 1;
    for (size_t i = 0; i < opts->ninclude; i++) {
        const char *g = opts->include[i];
        size_t n = strlen(g);
        if (fnmatch(g, path, FNM_PATHNAME) == 0)
            return 1;
        /* "dir" or "dir/" selects everything below it. */
        if (n && !strncmp(path, g, g[n - 1] == '/' ? n - 1 : n) &&
            path[g[n - 1] == '/' ? n - 1 : n] == '/')
            return 1;
    }
    return 0;
}

/*
 * Overwrite protection (git's "your local changes would be overwritten"): a
 * regular file in the way may be replaced only if nothing is lost, that is
 * when its content is REF's own or a content the repository keeps for that
 * path (staged, or in any version). Anything else, whether a tracked file
 * edited since (status: modified) or an untracked file, stops the checkout
 * before a byte is written, unless --force. The kept set is read only when
 * some file in the way differs from REF's content, so a checkout into an
 * empty or up-to-date directory pays one stat (and, outside the stat cache,
 * one read) per file.
 */
struct kept_entry {
    char *path;
    cairn_oid digest;
    uint64_t size;
};

struct kept {
    struct cairn_repo *repo;
    struct kept_entry *e;
    size_t n, cap;
    int loaded;
};

static int kept_add(struct kept *k, const char *path, const cairn_oid *digest, uint64_t size)
{
    int error = CAIRN_ARRAY_GROW(k->e, k->cap, k->n);
    if (error < 0)
        return error;
    if (!(k->e[k->n].path = strdup(path)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    k->e[k->n].digest = *digest;
    k->e[k->n].size = size;
    k->n++;
    return 0;
}

static int kept_on_stage(const struct cairn_stage_entry *e, void *payload)
{
    return kept_add(payload, e->path, &e->digest, e->size);
}

static int kept_on_version(const struct cairn_version *v, void *payload)
{
    struct kept *k = payload;
    struct cairn_tree t = { 0 };
    int error = cairn_repo_read_tree(k->repo, &v->tree, &t);
    for (size_t i = 0; i < t.n && !error; i++)
        error = kept_add(k, t.entries[i].path, &t.entries[i].digest, t.entries[i].size);
    cairn_tree_release(&t);
    return error;
}

static void kept_release(struct kept *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->e[i].path);
    free(k->e);
}

/*
 * 1 if the regular file `base` in `dirfd` (repository path `rel`, lstat `st`)
 * holds REF's content for it or content the repository keeps, 0 if not.
 */
static int in_the_way_kept(struct kept *k, int in_workdir, int dirfd, const char *base,
                           const char *rel, const struct stat *st, const struct cairn_tree_entry *e)
{
    cairn_oid d;
    int error, fd, hashed = 0;

    if ((uint64_t)st->st_size == e->size && in_workdir &&
        cairn__statcache_unchanged(k->repo, rel, st, &e->digest))
        return 1;
    for (size_t i = 0; i <= k->n; i++) {
        const cairn_oid *want = i ? &k->e[i - 1].digest : &e->digest;
        if (i && strcmp(k->e[i - 1].path, rel))
            continue;
        if ((uint64_t)st->st_size != (i ? k->e[i - 1].size : e->size))
            goto next;
        if (!hashed) {
            if ((fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", rel);
            error = cairn__hash_fd(fd, rel, &d);
            close(fd);
            if (error < 0)
                return error;
            hashed = 1;
        }
        if (!cairn_oid_cmp(&d, want))
            return 1;
next:
        if (!i && !k->loaded) {
            k->loaded = 1;
            if ((error = cairn_registry_stage_list(k->repo->registry, NULL, kept_on_stage, k)) <
                    0 ||
                (error = cairn_registry_version_list(k->repo->registry, NULL, 0, kept_on_version,
                                                     k)) < 0)
                return error;
        }
    }
    return 0;
}

static int check_in_the_way(struct co_state *s, int rootfd, int in_workdir,
                            const struct cairn_tree *tree)
{
    struct kept k = { .repo = s->repo };
    struct cairn_buf names = CAIRN_BUF_INIT;
    size_t n = 0;
    int error = 0;

    for (size_t i = 0; i < tree->n && !error; i++) {
        const struct cairn_tree_entry *e = &tree->entries[i];
        const char *base;
        struct stat st;
        int dirfd, r;
        if (!included(s->opts, e->path))
            continue;
        if ((r = open_parent(rootfd, e->path, 0, &dirfd, &base)) != 0) {
            error = r < 0 ? r : 0;
            continue;
        }
        if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            (r = in_the_way_kept(&k, in_workdir, dirfd, base, e->path, &st, e)) == 0) {
            if (n++ < 3)
                error = cairn_buf_printf(&names, "%s'%s'", n > 1 ? ", " : "", e->path);
        } else if (r < 0) {
            error = r;
        }
        close(dirfd);
    }
    if (!error && n)
        error = cairn_error_set(CAIRN_EEXISTS,
                                "checkout would overwrite %zu file%s with content the repository"
                                " does not keep: %s%s; add them, move them away, or use --force"
                                " to overwrite",
                                n, n == 1 ? "" : "s", names.ptr, n > 3 ? " and more" : "");
    cairn_buf_release(&names);
    kept_release(&k);
    return error;
}

static int checkout_file(struct co_state *s, int rootfd, const struct cairn_tree_entry *e)
{
    struct cairn_file_object f;
    char tmpname[300] = "";
    const char *base = NULL;
    int dirfd = -1, fd = -1, error;
    struct stat st;
    size_t i;
    unsigned njobs = 0;

    memset(&f, 0, sizeof(f));
    if ((error = cairn_fs_path_valid(e->path)) < 0)
        return error;
    if ((error = cairn__repo_load_file(s->repo, &e->file, &f)) < 0)
        goto done;
    if (f.size != e->size || cairn_oid_cmp(&f.digest, &e->digest)) {
        error = cairn_error_set(CAIRN_ECORRUPT, "manifest of '%s' does not match its tree entry",
                                e->path);
        goto done;
    }
    if ((error = open_parent(rootfd, e->path, 1, &dirfd, &base)) < 0)
        goto done;
    if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) {
            error = cairn_error_set(CAIRN_EINVALID, "'%s' is a directory in the target", e->path);
            goto done;
        }
        if (!(s->opts && s->opts->force) && !S_ISREG(st.st_mode)) {
            error = cairn_error_set(CAIRN_EINVALID,
                                    "'%s' exists and is not a regular file; use"
                                    " --force",
                                    e->path);
            goto done;
        }
    }
    snprintf(tmpname, sizeof(tmpname), ".%.200s.cairn-tmp.%d", base, (int)getpid());
    fd = openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                e->mode & 0777);
    if (fd < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", e->path);
        goto done;
    }
    if (f.size && ftruncate(fd, (off_t)f.size) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot size '%s'", e->path);
        goto done;
    }
    /* Hand out batches of about 4 MiB of chunks to the workers. */
    for (i = 0; i < f.nchunks;) {
        size_t start = i;
        uint64_t bytes = 0;
        struct co_job *j;
        while (i < f.nchunks && (bytes < BATCH_BYTES || i == start))
            bytes += f.chunks[i++].len;
        if (njobs == s->njobs) {
            cairn_pool_wait(s->pool);
            njobs = 0;
            if (s->opts && s->opts->progress)
                s->opts->progress(s->done_bytes, s->total_bytes, s->opts->progress_payload);
        }
        j = &s->jobs[njobs++];
        j->s = s;
        j->fd = fd;
        j->chunks = &f.chunks[start];
        j->n = i - start;
        cairn_pool_submit(s->pool, co_run, j);
        if (s->error)
            break;
    }
    cairn_pool_wait(s->pool);
    if (s->error) {
        error = cairn_error_set(s->error, "cannot check out '%s': %s", e->path, s->errmsg);
        goto done;
    }
    /* Like git: 0644 or 0755 from the tree, narrowed by the umask, never widened. */
    if (fchmod(fd, e->mode & 0777 & ~s->umask) < 0 || close(fd) < 0) {
        fd = -1;
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot finish '%s'", e->path);
        goto done;
    }
    fd = -1;
    if (renameat(dirfd, tmpname, dirfd, base) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot rename into '%s'", e->path);
        goto done;
    }
    tmpname[0] = '\0';
done:
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0) {
        if (error < 0 && tmpname[0])
            unlinkat(dirfd, tmpname, 0);
        close(dirfd);
    }
    cairn_file_object_release(&f);
    return error;
}

int cairn_repo_checkout(struct cairn_repo *repo, const char *ref, const char *target,
                        const struct cairn_checkout_opts *opts, struct cairn_checkout_stats *out)
{
    struct cairn_version v;
    struct cairn_tree tree = { 0 };
    struct co_state s;
    int rootfd = -1, error, locked = 0;
    uint64_t files = 0;

    memset(&s, 0, sizeof(s));
    memset(&v, 0, sizeof(v));
    pthread_mutex_init(&s.mu, NULL);
    s.repo = repo;
    s.opts = opts;
    s.umask = current_umask();
    if ((error = cairn_repo_resolve(repo, ref, &v)) < 0)
        goto done;
    if ((error = cairn__repo_lock(repo, 0)) < 0)
        goto done;
    locked = 1;
    if ((error = cairn_repo_read_tree(repo, &v.tree, &tree)) < 0)
        goto done;
    if ((error = cairn_fs_mkdir_p(target)) < 0)
        goto done;
    rootfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", target);
        goto done;
    }
    if (!(opts && opts->force)) {
        struct stat a, b;
        int in_workdir = fstat(rootfd, &a) == 0 && stat(repo->workdir, &b) == 0 &&
                         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
        if ((error = check_in_the_way(&s, rootfd, in_workdir, &tree)) < 0)
            goto done;
    }
    for (size_t i = 0; i < tree.n; i++)
        if (included(opts, tree.entries[i].path))
            s.total_bytes += tree.entries[i].size;
    if (opts && opts->ninclude && s.total_bytes == 0) {
        int any = 0;
        for (size_t i = 0; i < tree.n && !any; i++)
            any = included(opts, tree.entries[i].path);
        if (!any) {
            error = cairn_error_set(CAIRN_ENOTFOUND, "no file of '%s' matches --include", ref);
            goto done;
        }
    }
    s.njobs = cairn_ncpus() * 2;
    if (!(s.jobs = calloc(s.njobs, sizeof(*s.jobs)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (unsigned i = 0; i < s.njobs; i++)
        cairn_buf_init(&s.jobs[i].buf, 256 << 20);
    if ((error = cairn_store_load_index(repo->store)) < 0 ||
        (error = cairn_pool_new(&s.pool, 0, s.njobs)) < 0)
        goto done;
    for (size_t i = 0; i < tree.n && !error; i++) {
        if (!included(opts, tree.entries[i].path))
            continue;
        error = checkout_file(&s, rootfd, &tree.entries[i]);
        files++;
    }
    if (!error && opts && opts->progress)
        opts->progress(s.done_bytes, s.total_bytes, opts->progress_payload);
    if (out) {
        out->files = files;
        out->bytes = s.done_bytes;
    }
done:
    cairn_pool_free(s.pool);
    for (unsigned i = 0; s.jobs && i < s.njobs; i++)
        cairn_buf_release(&s.jobs[i].buf);
    free(s.jobs);
    if (rootfd >= 0)
        close(rootfd);
    if (locked)
        cairn__repo_unlock(repo);
    cairn_tree_release(&tree);
    cairn_version_release(&v);
    pthread_mutex_destroy(&s.mu);
    return error;
}
