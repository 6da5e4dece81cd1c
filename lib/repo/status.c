/*
 * cairn status: what is staged, what changed on disk, what is untracked.
 *
 * A file whose stat data matches the stat cache entry for the content it is
 * compared against is taken as unchanged without being read (SPEC §4); any
 * other file is hashed. "Tracked" means: in the latest version of some
 * model. Untracked files are found by walking the working directory,
 * skipping .cairn, .git and the patterns in .cairnignore (fnmatch, one per
 * line, '#' comments).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo/repo_internal.h"
#include "util/hash.h"
#include "util/fs.h"

struct known {
    char *path;
    char *model;
    cairn_oid digest;
    uint64_t size;
    int staged;
};

struct st_state {
    struct cairn_repo *repo;
    struct known *k;
    size_t n, cap;
    char **ignores;
    size_t nignores;
};

static int known_add(struct st_state *s, const char *path, const char *model,
                     const cairn_oid *digest, uint64_t size, int staged)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->k[i].path, path)) {
            if (staged && !s->k[i].staged) { /* the stage wins over the last version */
                free(s->k[i].model);
                s->k[i].model = strdup(model);
                s->k[i].digest = *digest;
                s->k[i].size = size;
                s->k[i].staged = 1;
            }
            return 0;
        }
    }
    if (CAIRN_ARRAY_GROW(s->k, s->cap, s->n) < 0)
        return CAIRN_ENOMEM;
    s->k[s->n].path = strdup(path);
    s->k[s->n].model = strdup(model);
    s->k[s->n].digest = *digest;
    s->k[s->n].size = size;
    s->k[s->n].staged = staged;
    if (!s->k[s->n].path || !s->k[s->n].model)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    s->n++;
    return 0;
}

static int on_stage(const struct cairn_stage_entry *e, void *payload)
{
    return known_add(payload, e->path, e->model, &e->digest, e->size, 1);
}

static int on_model(const struct cairn_model_info *m, void *payload)
{
    struct st_state *s = payload;
    struct cairn_version v;
    struct cairn_tree t = { 0 };
    int error;
    if (cairn_registry_version_latest(s->repo->registry, m->name, &v) < 0)
        return 0;
    error = cairn_repo_read_tree(s->repo, &v.tree, &t);
    cairn_version_release(&v);
    if (error < 0)
        return error;
    for (size_t i = 0; i < t.n && !error; i++)
        error =
            known_add(s, t.entries[i].path, m->name, &t.entries[i].digest, t.entries[i].size, 0);
    cairn_tree_release(&t);
    return error;
}

int cairn__hash_fd(int fd, const char *path, cairn_oid *out)
{
    /*
     * On the heap, not static _Thread_local: a 1 MiB TLS block is zeroed for
     * every thread the process starts, `cairn add`'s workers included.
     */
    const size_t bufsz = (size_t)1 << 20;
    struct cairn_hasher h;
    unsigned char *buf = malloc(bufsz);
    if (!buf)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    cairn_hasher_init(&h);
    for (;;) {
        ssize_t n = cairn_fs_read_full(fd, buf, bufsz);
        if (n < 0) {
            free(buf);
            cairn_error_prefix("cannot read '%s'", path);
            return (int)n;
        }
        if (n == 0)
            break;
        cairn_hasher_update(&h, buf, (size_t)n);
    }
    free(buf);
    cairn_hasher_final(&h, out);
    return 0;
}

static int hash_file(const char *path, cairn_oid *out)
{
    int error, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", path);
    error = cairn__hash_fd(fd, path, out);
    close(fd);
    return error;
}

int cairn__statcache_unchanged(struct cairn_repo *repo, const char *rel, const struct stat *st,
                               const cairn_oid *digest)
{
    struct cairn_stat_entry c;
    return cairn_registry_statcache_get(repo->registry, rel, &c) == 0 &&
           c.size == (uint64_t)st->st_size &&
           c.mtime_ns == (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec &&
           c.ctime_ns == (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec &&
           c.ino == (uint64_t)st->st_ino && !cairn_oid_cmp(&c.digest, digest);
}

/* 1 if the file on disk still has `digest`, 0 if it changed. */
static int unchanged(struct st_state *s, const char *rel, const char *abs, const struct stat *st,
                     const struct known *k)
{
    cairn_oid d;
    if ((uint64_t)st->st_size != k->size)
        return 0;
    if (cairn__statcache_unchanged(s->repo, rel, st, &k->digest))
        return 1;
    if (hash_file(abs, &d) < 0)
        return 0;
    return !cairn_oid_cmp(&d, &k->digest);
}

static int ignored(struct st_state *s, const char *rel, const char *name)
{
    for (size_t i = 0; i < s->nignores; i++)
        if (fnmatch(s->ignores[i], rel, FNM_PATHNAME) == 0 || fnmatch(s->ignores[i], name, 0) == 0)
            return 1;
    return 0;
}

static int known_cmp(const void *a, const void *b)
{
    return strcmp(((const struct known *)a)->path, ((const struct known *)b)->path);
}

static int walk_untracked(struct st_state *s, const char *rel, cairn_status_fn cb, void *payload)
{
    struct cairn_buf abs = CAIRN_BUF_INIT, child = CAIRN_BUF_INIT;
    char **names = NULL;
    size_t n = 0;
    int error = 0;

    if ((error = cairn_fs_join(&abs, s->repo->workdir, rel)) < 0)
        goto done;
    if ((error = cairn_fs_list_dir(&names, &n, *rel ? abs.ptr : s->repo->workdir)) < 0)
        goto done;
    for (size_t i = 0; i < n && !error; i++) {
        struct stat st;
        struct cairn_buf full = CAIRN_BUF_INIT;
        if (cairn_fs_reserved_name(names[i]))
            continue;
        cairn_buf_clear(&child);
        error = *rel ? cairn_buf_printf(&child, "%s/%s", rel, names[i])
                     : cairn_buf_puts(&child, names[i]);
        if (!error)
            error = cairn_fs_join(&full, s->repo->workdir, child.ptr);
        if (!error && lstat(full.ptr, &st) == 0 && !ignored(s, child.ptr, names[i])) {
            if (S_ISDIR(st.st_mode)) {
                error = walk_untracked(s, child.ptr, cb, payload);
            } else if (S_ISREG(st.st_mode)) {
                struct known key = { .path = child.ptr };
                if (!s->n || !bsearch(&key, s->k, s->n, sizeof(key), known_cmp)) {
                    struct cairn_status_entry se = { CAIRN_STATUS_UNTRACKED, child.ptr, "",
                                                     (uint64_t)st.st_size };
                    error = cb(&se, payload);
                }
            }
        }
        cairn_buf_release(&full);
    }
done:
    cairn_fs_names_free(names, n);
    cairn_buf_release(&abs);
    cairn_buf_release(&child);
    return error;
}

static void load_ignores(struct st_state *s)
{
    struct cairn_buf p = CAIRN_BUF_INIT, data = CAIRN_BUF_INIT;
    if (cairn_fs_join(&p, s->repo->workdir, ".cairnignore") == 0 &&
        cairn_fs_read_file(&data, p.ptr, 1 << 20) == 0) {
        char *line = data.ptr, *next;
        for (; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            while (*line == ' ' || *line == '\t')
                line++;
            size_t len = strlen(line);
            while (len && (line[len - 1] == ' ' || line[len - 1] == '\r' || line[len - 1] == '/'))
                line[--len] = '\0';
            if (!*line || *line == '#')
                continue;
            char **np = realloc(s->ignores, (s->nignores + 1) * sizeof(*np));
            if (!np)
                break;
            s->ignores = np;
            if ((s->ignores[s->nignores] = strdup(line)))
                s->nignores++;
        }
    }
    cairn_error_clear();
    cairn_buf_release(&p);
    cairn_buf_release(&data);
}

int cairn_repo_status(struct cairn_repo *repo, cairn_status_fn cb, void *payload)
{
    struct st_state s;
    struct cairn_buf abs = CAIRN_BUF_INIT;
    int error;

    memset(&s, 0, sizeof(s));
    s.repo = repo;
    load_ignores(&s);
    if ((error = cairn_registry_stage_list(repo->registry, NULL, on_stage, &s)) < 0)
        goto done;
    if ((error = cairn_registry_model_list(repo->registry, on_model, &s)) < 0)
        goto done;
    if (s.n > 1)
        qsort(s.k, s.n, sizeof(*s.k), known_cmp);
    for (size_t i = 0; i < s.n && !error; i++) {
        struct known *k = &s.k[i];
        struct stat st;
        struct cairn_status_entry se = { CAIRN_STATUS_STAGED, k->path, k->model, k->size };
        if ((error = cairn_fs_join(&abs, repo->workdir, k->path)) < 0)
            break;
        if (lstat(abs.ptr, &st) < 0 || !S_ISREG(st.st_mode)) {
            se.kind = CAIRN_STATUS_DELETED;
            error = cb(&se, payload);
        } else if (!unchanged(&s, k->path, abs.ptr, &st, k)) {
            se.kind = CAIRN_STATUS_MODIFIED;
            se.size = (uint64_t)st.st_size;
            error = cb(&se, payload);
        } else if (k->staged) {
            error = cb(&se, payload);
        }
    }
    if (!error)
        error = walk_untracked(&s, "", cb, payload);
done:
    for (size_t i = 0; i < s.n; i++) {
        free(s.k[i].path);
        free(s.k[i].model);
    }
    free(s.k);
    for (size_t i = 0; i < s.nignores; i++)
        free(s.ignores[i]);
    free(s.ignores);
    cairn_buf_release(&abs);
    return error;
}
