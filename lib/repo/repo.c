/*
 * Opening, creating and locking repositories; name validation.
 *
 * A repository is found by walking up from the start directory until a
 * directory holding .cairn/ is found, like git. Opening is cheap: the store
 * reads its pack indexes only when a command first needs them.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo/repo_internal.h"
#include "store/layout.h"
#include "util/fs.h"

int cairn_name_valid(const char *name, const char *what)
{
    size_t n = strlen(name);
    int ok = n >= 1 && n <= 64 &&
             ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9'));
    for (size_t i = 1; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    }
    if (!ok)
        return cairn_error_set(CAIRN_EINVALID,
                               "invalid %s '%s': use 1-64 of a-z 0-9 . _ - starting with a letter"
                               " or digit",
                               what, name);
    return 0;
}

int cairn_repo_init(const char *dir)
{
    struct cairn_buf path = CAIRN_BUF_INIT, p2 = CAIRN_BUF_INIT;
    struct cairn_registry *reg = NULL;
    struct stat st;
    int error;

    if ((error = cairn_fs_mkdir_p(dir)) < 0)
        goto done;
    if ((error = cairn_fs_join(&path, dir, ".cairn")) < 0)
        goto done;
    if (stat(path.ptr, &st) == 0) {
        error = cairn_error_set(CAIRN_EEXISTS, "'%s' is already a cairn repository", dir);
        goto done;
    }
    /* Build in a temp dir and rename, so a half-made .cairn never exists. */
    if ((error = cairn_buf_printf(&p2, "%s.init.%d", path.ptr, (int)getpid())) < 0)
        goto done;
    if (mkdir(p2.ptr, 0777) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", p2.ptr);
        goto done;
    }
    {
        struct cairn_buf sub = CAIRN_BUF_INIT;
        static const char config[] =
            "# cairn repository configuration\n"
            "[core]\n"
            "\tformat = 1\n";
        if (!(error = cairn_fs_join(&sub, p2.ptr, "store")))
            error = cairn_store_init(sub.ptr);
        if (!error && !(error = cairn_fs_join(&sub, p2.ptr, "config")))
            error = cairn_fs_write_atomic(sub.ptr, config, sizeof(config) - 1, 0644);
        if (!error && !(error = cairn_fs_join(&sub, p2.ptr, "cairn.db")))
            error = cairn_registry_open(&reg, sub.ptr, 1);
        cairn_registry_free(reg);
        cairn_buf_release(&sub);
        if (error < 0) {
            cairn_fs_rm_rf(p2.ptr);
            goto done;
        }
    }
    if (rename(p2.ptr, path.ptr) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", path.ptr);
        cairn_fs_rm_rf(p2.ptr);
        goto done;
    }
    error = cairn_fs_fsync_dir(dir);
done:
    cairn_buf_release(&path);
    cairn_buf_release(&p2);
    return error;
}

static char *find_root(const char *start)
{
    char cur[PATH_MAX];
    struct stat st;

    if (!realpath(start, cur))
        return NULL;
    for (;;) {
        char probe[PATH_MAX + 8];
        char *slash;
        snprintf(probe, sizeof(probe), "%s/.cairn", strcmp(cur, "/") ? cur : "");
        if (stat(probe, &st) == 0 && S_ISDIR(st.st_mode))
            return strdup(cur);
        if (!strcmp(cur, "/"))
            return NULL;
        slash = strrchr(cur, '/');
        if (slash == cur)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
}

static char *current_user(void)
{
    const char *u = getenv("CAIRN_USER");
    struct passwd *pw;
    if (u && *u)
        return strdup(u);
    if ((pw = getpwuid(getuid())) && pw->pw_name)
        return strdup(pw->pw_name);
    if ((u = getenv("USER")) && *u)
        return strdup(u);
    return strdup("unknown");
}

int cairn_repo_open(struct cairn_repo **out, const char *start)
{
    struct cairn_repo *repo = calloc(1, sizeof(*repo));
    struct cairn_buf p = CAIRN_BUF_INIT;
    int error = 0;

    if (!repo)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    repo->lock_fd = -1;
    if (!start)
        start = ".";
    if (access(start, F_OK) < 0) {
        error = cairn_error_set_errno(CAIRN_ENOTFOUND, "cannot open '%s'", start);
        goto done;
    }
    if (!(repo->workdir = find_root(start))) {
        error = cairn_error_set(CAIRN_ENOTFOUND,
                                "not a cairn repository (or any parent up to /): '%s'; run"
                                " 'cairn init' first",
                                start);
        goto done;
    }
    if ((error = cairn_fs_join(&p, repo->workdir, ".cairn")) < 0)
        goto done;
    repo->cairndir = cairn_buf_detach(&p, NULL);
    if (!(repo->user = current_user())) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = cairn_fs_join(&p, repo->cairndir, "store")) < 0 ||
        (error = cairn_store_open(&repo->store, p.ptr)) < 0)
        goto done;
    if ((error = cairn_fs_join(&p, repo->cairndir, "cairn.db")) < 0)
        goto done;
    if (access(p.ptr, F_OK) < 0) {
        error = cairn_error_set(CAIRN_ECORRUPT, "registry '%s' is missing", p.ptr);
        goto done;
    }
    if ((error = cairn_registry_open(&repo->registry, p.ptr, 0)) < 0)
        goto done;
done:
    cairn_buf_release(&p);
    if (error < 0) {
        cairn_repo_free(repo);
        return error;
    }
    *out = repo;
    return 0;
}

void cairn_repo_free(struct cairn_repo *repo)
{
    if (!repo)
        return;
    cairn_registry_free(repo->registry);
    cairn_store_free(repo->store);
    if (repo->lock_fd >= 0)
        cairn_fs_unlock(repo->lock_fd);
    free(repo->workdir);
    free(repo->cairndir);
    free(repo->user);
    free(repo);
}

const char *cairn_repo_workdir(const struct cairn_repo *repo)
{
    return repo->workdir;
}

const char *cairn_repo_cairndir(const struct cairn_repo *repo)
{
    return repo->cairndir;
}

struct cairn_store *cairn_repo_store(struct cairn_repo *repo)
{
    return repo->store;
}

struct cairn_registry *cairn_repo_registry(struct cairn_repo *repo)
{
    return repo->registry;
}

const char *cairn_repo_user(const struct cairn_repo *repo)
{
    return repo->user;
}

int cairn__repo_lock(struct cairn_repo *repo, int exclusive)
{
    struct cairn_buf p = CAIRN_BUF_INIT;
    int error;
    if (repo->lock_depth++ > 0)
        return 0;
    if ((error = cairn_fs_join(&p, repo->cairndir, "lock")) < 0 ||
        (error = cairn_fs_lock(&repo->lock_fd, p.ptr, exclusive, 0)) < 0) {
        repo->lock_depth = 0;
        repo->lock_fd = -1;
    }
    repo->lock_exclusive = exclusive;
    cairn_buf_release(&p);
    return error;
}

void cairn__repo_unlock(struct cairn_repo *repo)
{
    if (repo->lock_depth == 0 || --repo->lock_depth > 0)
        return;
    cairn_fs_unlock(repo->lock_fd);
    repo->lock_fd = -1;
}

int cairn__repo_load_file(struct cairn_repo *repo, const cairn_oid *id,
                          struct cairn_file_object *out)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error = cairn_store_get(repo->store, id, &b);
    if (!error)
        error = cairn_file_object_decode(out, b.ptr, b.len);
    cairn_buf_release(&b);
    return error;
}

int cairn_repo_read_tree(struct cairn_repo *repo, const cairn_oid *tree, struct cairn_tree *out)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error = cairn_store_get(repo->store, tree, &b);
    if (!error)
        error = cairn_tree_decode(out, b.ptr, b.len);
    cairn_buf_release(&b);
    return error;
}

int cairn__repo_relpath(struct cairn_repo *repo, struct cairn_buf *out, const char *abs_path)
{
    size_t n = strlen(repo->workdir);
    cairn_buf_clear(out);
    if (strncmp(abs_path, repo->workdir, n) || (abs_path[n] != '/' && abs_path[n] != '\0'))
        return cairn_error_set(CAIRN_EINVALID, "'%s' is outside the repository '%s'", abs_path,
                               repo->workdir);
    if (abs_path[n] == '\0')
        return cairn_buf_puts(out, "");
    return cairn_buf_puts(out, abs_path + n + 1);
}

int cairn_repo_tensors(struct cairn_repo *repo, const struct cairn_tree_entry *e,
                       cairn_tensor_fn cb, void *payload)
{
    struct cairn_file_object f;
    cairn_oid *ids = NULL;
    int error = cairn__repo_load_file(repo, &e->file, &f);
    if (error < 0)
        return error;
    for (size_t i = 0; i < f.nregions && !error; i++) {
        const struct cairn_file_region *r = &f.regions[i];
        const struct cairn_dtype_info *di = cairn_dtype_info(r->dtype);
        struct cairn_tensor_entry t;
        if (r->kind != CAIRN_REGION_TENSOR)
            continue;
        memset(&t, 0, sizeof(t));
        t.name = r->name ? r->name : "";
        t.dtype = di ? di->name : "?";
        t.rank = r->rank;
        memcpy(t.shape, r->shape, sizeof(t.shape));
        t.offset = r->offset;
        t.bytes = r->len;
        t.chunks = r->nchunks;
        free(ids);
        if (!(ids = malloc((r->nchunks ? r->nchunks : 1) * sizeof(*ids)))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            break;
        }
        for (uint64_t c = 0; c < r->nchunks; c++)
            ids[c] = f.chunks[r->first_chunk + c].id;
        t.chunk_ids = ids;
        error = cb(&t, payload);
    }
    free(ids);
    cairn_file_object_release(&f);
    return error;
}
