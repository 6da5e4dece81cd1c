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
};

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

/* Open (creating) each directory of `rel`'s parent below `rootfd` without following links. */
static int open_parent(int rootfd, const char *rel, int *dirfd_out, const char **base_out)
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
        if (mkdirat(fd, part, 0777) < 0 && errno != EEXIST) {
            int e = cairn_error_set_errno(CAIRN_ERROR, "cannot create directory for '%s'", rel);
            close(fd);
            return e;
        }
        next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
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
    if ((error = open_parent(rootfd, e->path, &dirfd, &base)) < 0)
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
    if (fchmod(fd, e->mode & 0777) < 0 || close(fd) < 0) {
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
