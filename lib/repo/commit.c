/*
 * cairn commit: turn a stage into an immutable version.
 *
 * Order of work, for crash safety: the tree object is written to the store
 * and made durable first; then one SQLite transaction inserts the version,
 * its params, metrics and lineage, clears the stage and appends the audit
 * event. A kill at any point leaves either no version (and an orphan tree
 * that gc removes) or the whole version.
 *
 * The version id is the BLAKE3 of a canonical JSON record (sorted keys, no
 * whitespace) that names the tree, the parent, the datasets, params and
 * commit-time metrics, the code commit, author, host, time and message. The
 * record is kept verbatim so anyone (a remote, fsck) can recompute the id.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "repo/oidset.h"
#include "repo/repo_internal.h"
#include "util/hash.h"
#include "util/fs.h"
#include "util/values.h"

extern char **environ;

/* Run argv with cwd `dir`, capture at most `cap` bytes of stdout. Exit status or -1. */
static int run_capture(const char *dir, char *const argv[], char *out, size_t cap)
{
    posix_spawn_file_actions_t fa;
    int pipefd[2], status = -1;
    pid_t pid;
    size_t got = 0;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    for (;;) {
        char tmp[4096];
        ssize_t n = read(pipefd[0], tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (got + 1 < cap) {
            size_t k = (size_t)n < cap - 1 - got ? (size_t)n : cap - 1 - got;
            memcpy(out + got, tmp, k);
            got += k;
        }
    }
    out[got] = '\0';
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The git commit of the working tree and whether it is dirty; quietly nothing if no git. */
static void detect_git(const char *workdir, char **commit, int *dirty)
{
    char out[4096];
    char *const rev[] = { "git", "rev-parse", "--verify", "-q", "HEAD", NULL };
    char *const st[] = { "git", "status", "--porcelain", "--untracked-files=no", NULL };
    size_t n;

    *commit = NULL;
    *dirty = -1;
    if (run_capture(workdir, rev, out, sizeof(out)) != 0)
        return;
    n = strcspn(out, "\r\n");
    out[n] = '\0';
    if (n < 7 || n > 64)
        return;
    *commit = strdup(out);
    if (run_capture(workdir, st, out, sizeof(out)) == 0)
        *dirty = out[0] != '\0';
}

static int valid_commit_sha(const char *s)
{
    size_t n = strlen(s);
    if (n < 7 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

struct stage_collect {
    struct cairn_tree tree;
    size_t cap;
    uint64_t raw;
};

static int stage_cb(const struct cairn_stage_entry *e, void *payload)
{
    struct stage_collect *c = payload;
    int error;
    /* The staging table is a file anyone can edit: its paths obey the manifest rule too. */
    if ((error = cairn_fs_path_valid(e->path)) < 0)
        return error;
    c->raw += e->size;
    return cairn_tree_add(&c->tree, &c->cap, e->path, e->mode, e->size, &e->file, &e->digest);
}

/* Add the chunks of every file of `tree` to `set`; with `sum`, add the stored size of new ones. */
static int chunk_set(struct cairn_repo *repo, const struct cairn_tree *tree,
                     struct cairn_oidset *set, const struct cairn_oidset *exclude, uint64_t *sum)
{
    int error = 0;
    for (size_t i = 0; i < tree->n && !error; i++) {
        struct cairn_file_object f;
        if ((error = cairn__repo_load_file(repo, &tree->entries[i].file, &f)) < 0)
            break;
        for (size_t c = 0; c < f.nchunks && !error; c++) {
            struct cairn_chunk_info info;
            if ((error = cairn_oidset_add(set, &f.chunks[c].id)) <= 0)
                continue;
            error = 0;
            if (sum && !(exclude && cairn_oidset_has(exclude, &f.chunks[c].id)) &&
                cairn_store_info(repo->store, &f.chunks[c].id, &info) == 0)
                *sum += info.stored_len;
        }
        cairn_file_object_release(&f);
    }
    return error;
}

/*
 * What this version costs in the store beyond its parent: the stored size
 * of every chunk the parent does not have. The users' view of dedup.
 */
static int stored_beyond_parent(struct cairn_repo *repo, const struct cairn_tree *tree,
                                const struct cairn_version *parent, uint64_t *out)
{
    struct cairn_oidset pset = { 0 }, mine = { 0 };
    struct cairn_tree ptree = { 0 };
    int error = 0;

    *out = 0;
    if (parent && (error = cairn_repo_read_tree(repo, &parent->tree, &ptree)) == 0)
        error = chunk_set(repo, &ptree, &pset, NULL, NULL);
    if (!error)
        error = chunk_set(repo, tree, &mine, &pset, out);
    cairn_tree_release(&ptree);
    cairn_oidset_release(&pset);
    cairn_oidset_release(&mine);
    return error;
}

static json_t *oid_json(const cairn_oid *id)
{
    char hex[CAIRN_OID_HEXSZ + 1];
    return json_string(cairn_oid_fmt(hex, id));
}

int cairn_repo_commit(struct cairn_repo *repo, const struct cairn_commit_opts *opts,
                      struct cairn_version *out)
{
    struct cairn_registry *r = repo->registry;
    struct stage_collect sc;
    struct cairn_values params = { 0 }, metrics = { 0 };
    struct cairn_version v, parent, derived, *datav = NULL;
    struct cairn_lineage_edge *edges = NULL;
    struct cairn_buf enc = CAIRN_BUF_INIT;
    struct cairn_store_writer *w = NULL;
    struct cairn_model_info minfo;
    const char *kind = opts->kind ? opts->kind : "model";
    const char *stage_model;
    char host[256], hex[CAIRN_OID_HEXSZ + 1];
    char *record = NULL, *git_commit = NULL;
    int git_dirty = -1, error, locked = 0, in_tx = 0, have_parent = 0, have_derived = 0;
    size_t nedges = 0, ndata = 0;
    json_t *rec = NULL, *jdata = NULL;

    memset(&sc, 0, sizeof(sc));
    memset(&v, 0, sizeof(v));
    memset(&parent, 0, sizeof(parent));
    memset(&derived, 0, sizeof(derived));
    if (!opts->model)
        return cairn_error_set(CAIRN_EINVALID, "commit needs a model name");
    if ((error = cairn_name_valid(opts->model, "model name")) < 0)
        return error;
    if (!opts->message || !*opts->message)
        return cairn_error_set(CAIRN_EINVALID, "commit needs a message (-m)");
    if (strcmp(kind, "model") && strcmp(kind, "dataset"))
        return cairn_error_set(CAIRN_EINVALID, "invalid kind '%s': use model or dataset", kind);
    if (opts->code_commit && !valid_commit_sha(opts->code_commit))
        return cairn_error_set(CAIRN_EINVALID,
                               "invalid code commit '%s': give 7-64 lowercase hex"
                               " digits",
                               opts->code_commit);
    if (opts->params_file &&
        (error = cairn__load_kv_file(&params, opts->params_file, "params")) < 0)
        goto done;
    if (opts->metrics_file &&
        (error = cairn__load_kv_file(&metrics, opts->metrics_file, "metrics")) < 0)
        goto done;
    if (cairn_registry_model_get(r, opts->model, &minfo) == 0 && strcmp(minfo.kind, kind)) {
        error = cairn_error_set(CAIRN_EINVALID, "'%s' is a %s; commit it with --kind %s",
                                opts->model, minfo.kind, minfo.kind);
        goto done;
    }

    /* Resolve every ref before taking the write lock. */
    if (opts->ndata) {
        datav = calloc(opts->ndata, sizeof(*datav));
        edges = calloc(opts->ndata + 2, sizeof(*edges));
        if (!datav || !edges) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
    } else if (!(edges = calloc(2, sizeof(*edges)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < opts->ndata; i++) {
        if ((error = cairn_repo_resolve(repo, opts->data_refs[i], &datav[i])) < 0)
            goto done;
        ndata++;
        if (strcmp(datav[i].kind, "dataset")) {
            error = cairn_error_set(CAIRN_EINVALID, "--data '%s' is a %s, not a dataset",
                                    opts->data_refs[i], datav[i].kind);
            goto done;
        }
    }
    if (opts->parent_ref) {
        if ((error = cairn_repo_resolve(repo, opts->parent_ref, &parent)) < 0)
            goto done;
        have_parent = 1;
    }
    if (opts->derived_from_ref) {
        if ((error = cairn_repo_resolve(repo, opts->derived_from_ref, &derived)) < 0)
            goto done;
        have_derived = 1;
    }
    if (opts->code_commit)
        git_commit = strdup(opts->code_commit);
    else
        detect_git(repo->workdir, &git_commit, &git_dirty);

    if ((error = cairn__repo_lock(repo, 0)) < 0)
        goto done;
    locked = 1;
    /*
     * A derived version's files come from a directory: ingest them under the
     * lock, so gc cannot drop the new chunks before the version lands.
     */
    if (opts->from_dir &&
        (error = cairn__repo_ingest_dir(repo, opts->from_dir, &sc.tree, NULL)) < 0)
        goto done;
    for (size_t i = 0; opts->from_dir && i < sc.tree.n; i++)
        sc.raw += sc.tree.entries[i].size;
    if ((error = cairn_registry_begin(r)) < 0)
        goto done;
    in_tx = 1;

    /* The model's own stage if it has one, else the default stage. */
    stage_model = opts->model;
    if (!opts->from_dir && (error = cairn_registry_stage_list(r, stage_model, stage_cb, &sc)) < 0)
        goto done;
    if (!opts->from_dir && !sc.tree.n) {
        stage_model = "";
        if ((error = cairn_registry_stage_list(r, stage_model, stage_cb, &sc)) < 0)
            goto done;
    }
    if (!sc.tree.n) {
        error = cairn_error_set(CAIRN_EINVALID, "nothing staged for '%s'; use 'cairn add' first",
                                opts->model);
        goto done;
    }
    if ((error = cairn_tree_sort(&sc.tree)) < 0 || (error = cairn_tree_encode(&enc, &sc.tree)) < 0)
        goto done;
    if ((error = cairn_store_writer_new(&w, repo->store)) < 0 ||
        (error = cairn_store_writer_put(w, enc.ptr, enc.len, &v.tree)) < 0)
        goto done;
    if ((error = cairn_store_writer_commit(w)) < 0)
        goto done;

    if (!have_parent) {
        error = cairn_registry_version_latest(r, opts->model, &parent);
        if (error == 0)
            have_parent = 1;
        else if (error != CAIRN_ENOTFOUND)
            goto done;
        error = 0;
    } else if (strcmp(parent.model, opts->model)) {
        /* A parent from another model is lineage, not history: fine, recorded as such. */
    }

    if ((error =
             stored_beyond_parent(repo, &sc.tree, have_parent ? &parent : NULL, &v.stored_new)) < 0)
        goto done;
    snprintf(v.model, sizeof(v.model), "%s", opts->model);
    snprintf(v.kind, sizeof(v.kind), "%s", kind);
    v.has_parent = have_parent;
    if (have_parent)
        v.parent = parent.id;
    v.time_ns = cairn_time_now_ns();
    if (gethostname(host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    v.raw_size = sc.raw;
    v.nfiles = sc.tree.n;
    v.code_dirty = git_dirty;

    /* The canonical record. */
    rec = json_object();
    jdata = json_array();
    for (size_t i = 0; i < ndata; i++)
        json_array_append_new(jdata, oid_json(&datav[i].id));
    json_object_set_new(rec, "format", json_integer(1));
    json_object_set_new(rec, "model", json_string(v.model));
    json_object_set_new(rec, "kind", json_string(kind));
    json_object_set_new(rec, "tree", oid_json(&v.tree));
    json_object_set_new(rec, "parent", have_parent ? oid_json(&v.parent) : json_null());
    json_object_set_new(rec, "data", jdata);
    if (have_derived) {
        json_t *d = json_object();
        json_object_set_new(d, "from", oid_json(&derived.id));
        json_object_set_new(d, "how",
                            json_string(opts->derived_detail ? opts->derived_detail : ""));
        json_object_set_new(rec, "derived", d);
    }
    json_object_set_new(rec, "params", cairn__values_json(&params));
    json_object_set_new(rec, "metrics", cairn__values_json(&metrics));
    json_object_set_new(rec, "code_commit", git_commit ? json_string(git_commit) : json_null());
    json_object_set_new(rec, "code_dirty", git_dirty < 0 ? json_null() : json_boolean(git_dirty));
    json_object_set_new(rec, "author", json_string(repo->user));
    json_object_set_new(rec, "host", json_string(host));
    json_object_set_new(rec, "time_ns", json_integer(v.time_ns));
    json_object_set_new(rec, "message", json_string(opts->message));
    json_object_set_new(rec, "size", json_integer((json_int_t)sc.raw));
    json_object_set_new(rec, "files", json_integer((json_int_t)sc.tree.n));
    if (!(record = json_dumps(rec, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII |
                                       JSON_REAL_PRECISION(17)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "cannot encode version record");
        goto done;
    }
    cairn_hash(&v.id, record, strlen(record));
    v.message = (char *)opts->message;
    v.author = repo->user;
    v.host = host;
    v.code_commit = git_commit;

    if (have_parent) {
        snprintf(edges[nedges].kind, sizeof(edges[nedges].kind), "parent");
        edges[nedges++].target = v.parent;
    }
    for (size_t i = 0; i < ndata; i++) {
        snprintf(edges[nedges].kind, sizeof(edges[nedges].kind), "data");
        edges[nedges++].target = datav[i].id;
    }
    if (have_derived) {
        snprintf(edges[nedges].kind, sizeof(edges[nedges].kind), "derived");
        edges[nedges].detail = (char *)opts->derived_detail;
        edges[nedges++].target = derived.id;
    }
    error = cairn_registry_version_insert(r, &v, record, &params, &metrics, edges, nedges);
    v.message = v.author = v.host = v.code_commit = NULL;
    if (error < 0)
        goto done;
    if (!opts->from_dir && (error = cairn_registry_stage_clear(r, stage_model)) < 0)
        goto done;
    {
        char subject[128], details[256];
        snprintf(subject, sizeof(subject), "%s@v%d", v.model, v.number);
        snprintf(details, sizeof(details), "{\"id\":\"%s\",\"files\":%zu,\"size\":%llu}",
                 cairn_oid_fmt(hex, &v.id), sc.tree.n, (unsigned long long)sc.raw);
        if ((error = cairn_registry_audit_append(r, repo->user, "commit", subject, details)) < 0)
            goto done;
    }
    if ((error = cairn_registry_commit(r)) < 0) {
        in_tx = 0;
        goto done;
    }
    in_tx = 0;
    if (out)
        error = cairn_registry_version_get(r, &v.id, out);
done:
    if (in_tx)
        cairn_registry_rollback(r);
    if (locked)
        cairn__repo_unlock(repo);
    cairn_store_writer_free(w);
    cairn_buf_release(&enc);
    cairn_tree_release(&sc.tree);
    cairn_values_release(&params);
    cairn_values_release(&metrics);
    cairn_version_release(&parent);
    cairn_version_release(&derived);
    for (size_t i = 0; i < ndata; i++)
        cairn_version_release(&datav[i]);
    free(datav);
    free(edges);
    free(record);
    free(git_commit);
    json_decref(rec);
    return error;
}
