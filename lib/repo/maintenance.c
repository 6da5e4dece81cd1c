/*
 * fsck and gc of a repository.
 *
 * Both start from the roots: every version's tree and every staged file.
 * fsck walks from them to every file object and chunk and checks each is
 * present and sound (the store's own verify decodes and hashes every chunk
 * of every pack); it also recomputes every version id from its record.
 * gc collects the same set and asks the store to drop everything else.
 *
 * repair (fsck --repair) fixes the store (lib/store: rebuilt indexes, corrupt
 * chunks dropped, damaged files moved aside) and then says which versions
 * still lack chunks: those cannot be restored until their files are added
 * again or pulled from a remote.
 *
 * gc and repair hold the repository lock exclusively, so no add, commit or
 * checkout runs during them; they wait, and run after.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/oidset.h"
#include "repo/repo_internal.h"
#include "util/hash.h"

struct walk {
    struct cairn_repo *repo;
    struct cairn_oidset seen; /* file objects and trees already walked */
    struct cairn_oidset live; /* everything reachable */
    cairn_report_fn report;   /* fsck: report problems; gc: NULL (errors abort) */
    void *payload;
    int problems;
    int error;
};

static void problem(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct walk *w, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    w->problems++;
    if (w->report)
        w->report(msg, w->payload);
}

/* Walk one file object: mark it and its chunks live; check presence when fsck. */
static int walk_file(struct walk *w, const cairn_oid *file, const char *where)
{
    struct cairn_file_object f;
    char hex[CAIRN_OID_HEXSZ + 1];
    int error;

    if ((error = cairn_oidset_add(&w->live, file)) < 0)
        return error;
    if ((error = cairn_oidset_add(&w->seen, file)) <= 0)
        return error;
    error = cairn__repo_load_file(w->repo, file, &f);
    if (error < 0) {
        if (!w->report)
            return error;
        problem(w, "%s: file object %.12s: %s", where, cairn_oid_fmt(hex, file),
                cairn_error_last());
        return 0;
    }
    for (size_t i = 0; i < f.nchunks; i++) {
        if ((error = cairn_oidset_add(&w->live, &f.chunks[i].id)) < 0)
            break;
        if (w->report && error == 1 && cairn_store_has(w->repo->store, &f.chunks[i].id) != 1)
            problem(w, "%s: chunk %.12s is missing", where, cairn_oid_fmt(hex, &f.chunks[i].id));
        error = 0;
    }
    cairn_file_object_release(&f);
    return error;
}

static int walk_version(const struct cairn_version *v, void *payload)
{
    struct walk *w = payload;
    struct cairn_tree tree = { 0 };
    char where[128], hex[CAIRN_OID_HEXSZ + 1];
    int error;

    snprintf(where, sizeof(where), "%s@v%d", v->model, v->number);
    if (w->report) {
        /* The id must be the hash of the stored record, and the record must name the tree. */
        char *record = NULL;
        if (cairn_registry_version_record(w->repo->registry, &v->id, &record) == 0) {
            cairn_oid id;
            json_t *j;
            cairn_hash(&id, record, strlen(record));
            if (cairn_oid_cmp(&id, &v->id))
                problem(w, "%s: version record does not hash to its id", where);
            j = json_loads(record, 0, NULL);
            if (!j || !json_is_string(json_object_get(j, "tree")) ||
                strcmp(json_string_value(json_object_get(j, "tree")), cairn_oid_fmt(hex, &v->tree)))
                problem(w, "%s: version record names another tree", where);
            json_decref(j);
            free(record);
        } else {
            problem(w, "%s: version record missing", where);
        }
    }
    if ((error = cairn_oidset_add(&w->live, &v->tree)) < 0)
        return error;
    if ((error = cairn_oidset_add(&w->seen, &v->tree)) == 0)
        return 0;
    error = cairn_repo_read_tree(w->repo, &v->tree, &tree);
    if (error < 0) {
        if (!w->report)
            return error;
        problem(w, "%s: tree %.12s: %s", where, cairn_oid_fmt(hex, &v->tree), cairn_error_last());
        return 0;
    }
    for (size_t i = 0; i < tree.n && !error; i++) {
        char at[512];
        snprintf(at, sizeof(at), "%s:%.256s", where, tree.entries[i].path);
        error = walk_file(w, &tree.entries[i].file, at);
    }
    cairn_tree_release(&tree);
    return error;
}

static int walk_stage(const struct cairn_stage_entry *e, void *payload)
{
    char where[300];
    snprintf(where, sizeof(where), "staged %.256s", e->path);
    return walk_file(payload, &e->file, where);
}

/*
 * The roots, read from the registry before the store's index is loaded: a
 * writer makes chunks durable in the store before it commits rows that
 * reference them, so an index loaded after the rows were read has every
 * chunk they need, even while other processes keep adding.
 */
struct roots {
    struct cairn_version *v;
    size_t nv, capv;
    struct cairn_stage_entry *s;
    size_t ns, caps;
};

static int root_version(const struct cairn_version *v, void *payload)
{
    struct roots *r = payload;
    if (CAIRN_ARRAY_GROW(r->v, r->capv, r->nv) < 0)
        return CAIRN_ENOMEM;
    r->v[r->nv] = *v;
    r->v[r->nv].message = r->v[r->nv].author = r->v[r->nv].host = r->v[r->nv].code_commit = NULL;
    r->nv++;
    return 0;
}

static int root_stage(const struct cairn_stage_entry *e, void *payload)
{
    struct roots *r = payload;
    if (CAIRN_ARRAY_GROW(r->s, r->caps, r->ns) < 0)
        return CAIRN_ENOMEM;
    r->s[r->ns] = *e;
    r->s[r->ns].model = NULL;
    if (!(r->s[r->ns].path = strdup(e->path)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    r->ns++;
    return 0;
}

static void roots_release(struct roots *r)
{
    for (size_t i = 0; i < r->ns; i++)
        free(r->s[i].path);
    free(r->s);
    free(r->v);
}

static int walk_all(struct walk *w)
{
    struct roots r = { 0 };
    int error = cairn_registry_version_list(w->repo->registry, NULL, 0, root_version, &r);
    if (!error)
        error = cairn_registry_stage_list(w->repo->registry, NULL, root_stage, &r);
    if (!error && (error = cairn_store_load_index(w->repo->store)) < 0 && w->report) {
        problem(w, "store index: %s", cairn_error_last());
        error = 0;
    }
    for (size_t i = 0; i < r.nv && !error; i++)
        error = walk_version(&r.v[i], w);
    for (size_t i = 0; i < r.ns && !error; i++)
        error = walk_stage(&r.s[i], w);
    roots_release(&r);
    return error;
}

static void store_problem(const char *msg, void *payload)
{
    struct walk *w = payload;
    problem(w, "%s", msg);
}

static void registry_problem(const char *msg, void *payload)
{
    store_problem(msg, payload);
}

int cairn_repo_fsck(struct cairn_repo *repo, cairn_report_fn cb, void *payload)
{
    struct walk w;
    int error, n;
    int64_t bad;

    memset(&w, 0, sizeof(w));
    w.repo = repo;
    w.report = cb;
    w.payload = payload;
    if ((error = cairn__repo_lock(repo, 0)) < 0)
        return error;
    cairn_registry_check(repo->registry, registry_problem, &w);
    if ((error = walk_all(&w)) < 0)
        goto done;
    n = cairn_store_verify(repo->store, store_problem, &w);
    if (n < 0) {
        error = n;
        goto done;
    }
    if (cairn_registry_audit_verify(repo->registry, &bad) < 0)
        problem(&w, "%s", cairn_error_last());
done:
    cairn__repo_unlock(repo);
    cairn_oidset_release(&w.seen);
    cairn_oidset_release(&w.live);
    return error < 0 ? error : w.problems;
}

/* ---- repair ------------------------------------------------------------- */

struct salvage {
    struct cairn_repo *repo;
    cairn_report_fn lost;
    void *payload;
    uint64_t nlost;
};

/* 1 when chunk `id` and every delta base under it are in the store. */
static int chunk_restorable(struct cairn_store *s, const cairn_oid *id)
{
    struct cairn_chunk_info info;
    cairn_oid at = *id;

    for (int depth = 0; depth <= CAIRN_STORE_MAX_CHAIN; depth++) {
        if (cairn_store_info(s, &at, &info) < 0) {
            cairn_error_clear();
            return 0;
        }
        if (!info.has_base)
            return 1;
        at = info.base;
    }
    return 0;
}

/* How many chunks of file object `file` cannot be read; -1 when the object itself cannot. */
static long file_missing(struct salvage *sv, const cairn_oid *file)
{
    struct cairn_file_object f;
    long missing = 0;

    if (!chunk_restorable(sv->repo->store, file) || cairn__repo_load_file(sv->repo, file, &f) < 0) {
        cairn_error_clear();
        return -1;
    }
    for (size_t i = 0; i < f.nchunks; i++)
        missing += !chunk_restorable(sv->repo->store, &f.chunks[i].id);
    cairn_file_object_release(&f);
    return missing;
}

static void say_lost(struct salvage *sv, const char *what, const char *path, long missing)
{
    char msg[700];
    if (missing < 0)
        snprintf(msg, sizeof(msg), "%s: '%s': its file object is missing", what, path);
    else
        snprintf(msg, sizeof(msg), "%s: '%s': %ld chunk%s missing", what, path, missing,
                 missing == 1 ? "" : "s");
    if (sv->lost)
        sv->lost(msg, sv->payload);
}

static int salvage_version(const struct cairn_version *v, void *payload)
{
    struct salvage *sv = payload;
    struct cairn_tree tree = { 0 };
    char what[128];
    int bad = 0;

    snprintf(what, sizeof(what), "%s@v%d", v->model, v->number);
    if (!chunk_restorable(sv->repo->store, &v->tree) ||
        cairn_repo_read_tree(sv->repo, &v->tree, &tree) < 0) {
        char msg[200];
        cairn_error_clear();
        snprintf(msg, sizeof(msg), "%s: its tree is missing", what);
        if (sv->lost)
            sv->lost(msg, sv->payload);
        sv->nlost++;
        return 0;
    }
    for (size_t i = 0; i < tree.n; i++) {
        long missing = file_missing(sv, &tree.entries[i].file);
        if (missing != 0) {
            say_lost(sv, what, tree.entries[i].path, missing);
            bad = 1;
        }
    }
    sv->nlost += bad;
    cairn_tree_release(&tree);
    return 0;
}

static int salvage_stage(const struct cairn_stage_entry *e, void *payload)
{
    struct salvage *sv = payload;
    long missing = file_missing(sv, &e->file);
    if (missing != 0) {
        say_lost(sv, "staged", e->path, missing);
        sv->nlost++;
    }
    return 0;
}

int cairn_repo_repair(struct cairn_repo *repo, cairn_report_fn action, cairn_report_fn lost,
                      void *payload, struct cairn_repo_repair_stats *out)
{
    struct cairn_store_repair_stats st;
    struct salvage sv = { repo, lost, payload, 0 };
    int error, changes, clear;

    memset(out, 0, sizeof(*out));
    if ((error = cairn__repo_lock(repo, 1)) < 0)
        return error;
    if ((error = changes = cairn_store_repair(repo->store, action, payload, &st)) < 0)
        goto done;
    out->packs_written = st.packs_written;
    out->chunks_dropped = st.chunks_dropped;
    out->files_moved = st.files_moved;
    if ((error = cairn_registry_version_list(repo->registry, NULL, 0, salvage_version, &sv)) < 0 ||
        (error = cairn_registry_stage_list(repo->registry, NULL, salvage_stage, &sv)) < 0)
        goto done;
    out->lost = sv.nlost;
    /*
     * A file with missing chunks must be read again by add, not skipped by
     * the stat cache. Cleared whenever anything is lost, not only when this
     * run dropped chunks, so a repair killed before here is finished by the
     * next one.
     */
    clear = sv.nlost > 0 || st.chunks_dropped > 0;
    if (changes > 0 || clear) {
        char details[256];
        snprintf(details, sizeof(details),
                 "{\"packs_written\":%llu,\"chunks_dropped\":%llu,\"files_moved\":%llu,"
                 "\"lost\":%llu}",
                 (unsigned long long)st.packs_written, (unsigned long long)st.chunks_dropped,
                 (unsigned long long)st.files_moved, (unsigned long long)sv.nlost);
        if ((error = cairn_registry_begin(repo->registry)) < 0)
            goto done;
        if ((clear && (error = cairn_registry_statcache_clear(repo->registry)) < 0) ||
            (changes > 0 &&
             (error = cairn_registry_audit_append(repo->registry, repo->user, "fsck.repair",
                                                  "store", details)) < 0)) {
            cairn_registry_rollback(repo->registry);
            goto done;
        }
        if ((error = cairn_registry_commit(repo->registry)) < 0)
            goto done;
        if (clear && action)
            action("cleared the stat cache: the next 'cairn add' reads every file again", payload);
    }
done:
    cairn__repo_unlock(repo);
    return error < 0 ? error : (int)sv.nlost;
}

static int is_live(const cairn_oid *id, void *payload)
{
    return cairn_oidset_has(payload, id);
}

int cairn_repo_gc(struct cairn_repo *repo, int dry_run, struct cairn_repo_gc_stats *out)
{
    struct walk w;
    struct cairn_gc_stats st;
    int error;

    memset(&w, 0, sizeof(w));
    memset(&st, 0, sizeof(st));
    w.repo = repo;
    if ((error = cairn__repo_lock(repo, 1)) < 0)
        return error;
    if ((error = walk_all(&w)) < 0) {
        cairn_error_prefix("gc refused, the repository needs 'cairn fsck'");
        goto done;
    }
    if ((error = cairn_store_gc(repo->store, is_live, &w.live, dry_run, &st)) < 0)
        goto done;
    if (out) {
        out->chunks_kept = st.chunks_kept;
        out->chunks_removed = st.chunks_removed;
        out->bytes_before = st.bytes_before;
        out->bytes_after = st.bytes_after;
        out->packs_removed = st.packs_removed;
    }
    if (!dry_run && st.chunks_removed) {
        char details[256];
        snprintf(details, sizeof(details),
                 "{\"chunks_removed\":%llu,\"bytes_before\":%llu,\"bytes_after\":%llu}",
                 (unsigned long long)st.chunks_removed, (unsigned long long)st.bytes_before,
                 (unsigned long long)st.bytes_after);
        if ((error = cairn_registry_begin(repo->registry)) < 0)
            goto done;
        if ((error = cairn_registry_audit_append(repo->registry, repo->user, "gc", "store",
                                                 details)) < 0) {
            cairn_registry_rollback(repo->registry);
            goto done;
        }
        error = cairn_registry_commit(repo->registry);
    }
done:
    cairn__repo_unlock(repo);
    cairn_oidset_release(&w.seen);
    cairn_oidset_release(&w.live);
    return error;
}
