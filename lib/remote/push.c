/*
 * cairn push: send versions and exactly the chunks the remote lacks.
 *
 * Order of work, so that an interrupted push leaves the remote consistent
 * and a re-run sends only what is missing:
 *
 *   1. learn what the remote has from its idx files (cached locally);
 *   2. list the chunks the versions need (tree, file objects, data chunks,
 *      delta bases) in a fixed order, and keep those the remote lacks;
 *   3. copy their encoded bytes (no re-encoding) into new packs under
 *      .cairn/remotes/NAME/outgoing/ - the same chunks in the same order
 *      give the same pack name, so a re-run after a failure uploads the same
 *      object and the transport's multipart resume skips finished parts;
 *   4. upload each pack, then its idx: the idx is the commit point, a pack
 *      without one is invisible to readers;
 *   5. then version records, signatures, tags, and last aliases (per-writer
 *      immutable entries; docs/remotes.md, "Layout of a remote").
 *
 * Memory: one chunk's encoded bytes plus the pack writer's buffer; the
 * packs themselves are streamed from disk by the transport.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/registry.h"
#include "cairn/remote.h"
#include "cairn/store.h"
#include "remote/sync.h"
#include "repo/object.h"
#include "repo/oidset.h"
#include "repo/repo_internal.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/values.h"

/* Packs uploaded per batch: bounds open files, gives the progress bar steps. */
#define PACKS_PER_BATCH 4

struct pver {
    cairn_oid id, tree;
    long long time_ns;
    char model[65];
};

struct push {
    struct cairn_repo *repo;
    struct cairn_store *store;
    struct cairn_registry *reg;
    struct cairn_remote *r;
    char *name;
    const struct cairn_push_opts *o;
    struct cairn_push_stats *st;
    struct cairn__rindex rix;
    struct pver *vers;
    size_t nvers, vcap;
    struct cairn_oidset vset;
    cairn_oid *need;
    size_t nneed, needcap;
    struct cairn_oidset needset;
    struct cairn__sync_keys remote_versions;
};

static int keys_has(const struct cairn__sync_keys *k, const char *key)
{
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(k->keys[mid], key);
        if (!c)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* ---- which versions ----------------------------------------------------- */

static int add_version(struct push *p, const struct cairn_version *v)
{
    int error = cairn_oidset_add(&p->vset, &v->id);
    if (error <= 0)
        return error;
    if (CAIRN_ARRAY_GROW(p->vers, p->vcap, p->nvers) < 0)
        return CAIRN_ENOMEM;
    p->vers[p->nvers].id = v->id;
    p->vers[p->nvers].tree = v->tree;
    p->vers[p->nvers].time_ns = v->time_ns;
    snprintf(p->vers[p->nvers].model, sizeof(p->vers[p->nvers].model), "%s", v->model);
    p->nvers++;
    return 0;
}

static int add_version_cb(const struct cairn_version *v, void *payload)
{
    return add_version(payload, v);
}

static int pver_cmp(const void *a, const void *b)
{
    const struct pver *x = a, *y = b;
    if (x->time_ns != y->time_ns)
        return x->time_ns < y->time_ns ? -1 : 1;
    return cairn_oid_cmp(&x->id, &y->id);
}

static int select_versions(struct push *p)
{
    int error = 0;

    if (!p->o->nrefs) {
        error = cairn_registry_version_list(p->reg, NULL, 0, add_version_cb, p);
    } else {
        for (size_t i = 0; i < p->o->nrefs && !error; i++) {
            const char *ref = p->o->refs[i];
            struct cairn_model_info m;
            struct cairn_version v;

            if (!strchr(ref, '@') && cairn_registry_model_get(p->reg, ref, &m) == 0) {
                error = cairn_registry_version_list(p->reg, ref, 0, add_version_cb, p);
                continue;
            }
            cairn_error_clear();
            if ((error = cairn_repo_resolve(p->repo, ref, &v)) < 0)
                break;
            error = add_version(p, &v);
            cairn_version_release(&v);
        }
    }
    if (!error && p->nvers)
        qsort(p->vers, p->nvers, sizeof(*p->vers), pver_cmp);
    p->st->versions = p->nvers;
    return error;
}

/* ---- which chunks ------------------------------------------------------- */

static int need_append(struct push *p, const cairn_oid *id)
{
    if (CAIRN_ARRAY_GROW(p->need, p->needcap, p->nneed) < 0)
        return CAIRN_ENOMEM;
    p->need[p->nneed++] = *id;
    return 0;
}

/* Add `id` and, before it, its delta bases (a base must reach the remote first). */
static int need_chunk(struct push *p, const cairn_oid *id, const struct pver *v, int depth)
{
    struct cairn_chunk_info info;
    char hex[CAIRN_OID_HEXSZ + 1], vhex[CAIRN_OID_HEXSZ + 1];
    int error;

    if ((error = cairn_oidset_add(&p->needset, id)) <= 0)
        return error;
    if (cairn__rindex_find(&p->rix, id))
        return need_append(p, id); /* on the remote already: its bases are too */
    if ((error = cairn_store_info(p->store, id, &info)) < 0) {
        if (error == CAIRN_ENOTFOUND)
            return cairn_error_set(CAIRN_ENOTFOUND,
                                   "chunk %.12s of %s version %.12s is neither here nor on the"
                                   " remote (pulled with --include?)",
                                   cairn_oid_fmt(hex, id), v->model, cairn_oid_fmt(vhex, &v->id));
        return error;
    }
    if (info.has_base) {
        if (depth > CAIRN_STORE_MAX_CHAIN)
            return cairn_error_set(CAIRN_ECORRUPT, "delta chain of chunk %.12s is too long",
                                   cairn_oid_fmt(hex, id));
        if ((error = need_chunk(p, &info.base, v, depth + 1)) < 0)
            return error;
    }
    return need_append(p, id);
}

static int collect_chunks(struct push *p)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error = 0;

    for (size_t i = 0; i < p->nvers && !error; i++) {
        const struct pver *v = &p->vers[i];
        struct cairn_tree tree = { 0 };

        if ((error = need_chunk(p, &v->tree, v, 0)) < 0)
            break;
        if (cairn__rindex_find(&p->rix, &v->tree) && cairn_store_has(p->store, &v->tree) != 1)
            continue;
        if ((error = cairn_repo_read_tree(p->repo, &v->tree, &tree)) < 0)
            break;
        for (size_t k = 0; k < tree.n && !error; k++) {
            struct cairn_file_object f;
            const cairn_oid *fid = &tree.entries[k].file;

            if ((error = need_chunk(p, fid, v, 0)) < 0)
                break;
            if (cairn_store_has(p->store, fid) != 1)
                continue; /* on the remote only (partial pull): so are its chunks */
            cairn_buf_clear(&b);
            if ((error = cairn_store_get(p->store, fid, &b)) < 0 ||
                (error = cairn_file_object_decode(&f, b.ptr, b.len)) < 0)
                break;
            for (size_t c = 0; c < f.nchunks && !error; c++)
                error = need_chunk(p, &f.chunks[c].id, v, 0);
            cairn_file_object_release(&f);
        }
        cairn_tree_release(&tree);
    }
    cairn_buf_release(&b);
    p->st->chunks_needed = p->nneed;
    return error;
}

/* ---- packs -------------------------------------------------------------- */

/* Copy the missing chunks into packs under `outdir`; returns their names. */
static int write_packs(struct push *p, const char *outdir)
{
    struct cairn_store *out = NULL;
    struct cairn_store_writer *w = NULL;
    struct cairn_buf enc = CAIRN_BUF_INIT;
    int error;

    if ((error = cairn_fs_rm_rf(outdir)) < 0 || (error = cairn_store_init(outdir)) < 0 ||
        (error = cairn_store_open(&out, outdir)) < 0)
        goto done;
    cairn_buf_init(&enc, (size_t)CAIRN__CHUNK_MAX + 1);
    for (size_t i = 0; i < p->nneed; i++) {
        struct cairn_chunk_info info;
        const cairn_oid *id = &p->need[i];

        if (cairn__rindex_find(&p->rix, id))
            continue;
        if (!w && (error = cairn_store_writer_new(&w, out)) < 0)
            goto done;
        if ((error = cairn_store_read_encoded(p->store, id, &info, &enc)) < 0 ||
            (error = cairn_store_writer_add(w, id, info.codec, info.has_base ? &info.base : NULL,
                                            info.raw_len, enc.ptr, enc.len)) < 0)
            goto done;
        p->st->chunks_sent++;
        /* One pack per writer: commit at the rotation size so names stay stable. */
        if (cairn_store_writer_bytes(w) >= cairn__pack_target) {
            if ((error = cairn_store_writer_commit(w)) < 0)
                goto done;
            cairn_store_writer_free(w);
            w = NULL;
        }
    }
    if (w)
        error = cairn_store_writer_commit(w);
done:
    cairn_store_writer_free(w);
    cairn_store_free(out);
    cairn_buf_release(&enc);
    return error;
}

struct outpack {
    cairn_oid name;
    uint64_t size;
};

static int outpack_cmp(const void *a, const void *b)
{
    return cairn_oid_cmp(&((const struct outpack *)a)->name, &((const struct outpack *)b)->name);
}

static int list_outgoing(struct outpack **out, size_t *n_out, const char *packs_dir)
{
    DIR *d = opendir(packs_dir);
    struct dirent *de;
    struct outpack *v = NULL;
    size_t n = 0, cap = 0;
    int error = 0;

    *out = NULL;
    *n_out = 0;
    if (!d)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot open directory '%s'", packs_dir);
    while ((de = readdir(d))) {
        struct cairn_buf path = CAIRN_BUF_INIT;
        struct stat stt;
        cairn_oid name;

        if (!cairn__pack_parse_name(&name, de->d_name, "pack"))
            continue;
        if ((error = CAIRN_ARRAY_GROW(v, cap, n)) < 0)
            break;
        if ((error = cairn_fs_join(&path, packs_dir, de->d_name)) == 0 && stat(path.ptr, &stt) < 0)
            error = cairn_error_set_errno(CAIRN_ERROR, "cannot stat '%s'", path.ptr);
        cairn_buf_release(&path);
        if (error < 0)
            break;
        v[n].name = name;
        v[n++].size = (uint64_t)stt.st_size;
    }
    closedir(d);
    if (error < 0) {
        free(v);
        return error;
    }
    if (n)
        qsort(v, n, sizeof(*v), outpack_cmp);
    *out = v;
    *n_out = n;
    return 0;
}

static int upload_packs(struct push *p, const char *outdir, const char *cache_dir)
{
    struct cairn_buf packs_dir = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT, idx = CAIRN_BUF_INIT;
    struct outpack *packs = NULL;
    size_t npacks = 0;
    uint64_t total = 0, done_bytes = 0;
    int error;

    if ((error = cairn_fs_join(&packs_dir, outdir, "packs")) < 0 ||
        (error = list_outgoing(&packs, &npacks, packs_dir.ptr)) < 0)
        goto done;
    for (size_t i = 0; i < npacks; i++)
        total += packs[i].size;
    if (p->o->progress)
        p->o->progress(0, total, p->o->progress_payload);
    for (size_t g = 0; g < npacks; g += PACKS_PER_BATCH) {
        struct cairn_remote_xfer x[PACKS_PER_BATCH];
        char keys[PACKS_PER_BATCH][2][CAIRN_OID_HEXSZ + 32];
        size_t n = npacks - g < PACKS_PER_BATCH ? npacks - g : PACKS_PER_BATCH;

        memset(x, 0, sizeof(x));
        for (size_t i = 0; i < n; i++) {
            char hex[CAIRN_OID_HEXSZ + 1];
            cairn_oid_fmt(hex, &packs[g + i].name);
            snprintf(keys[i][0], sizeof(keys[i][0]), "packs/pack-%s.pack", hex);
            snprintf(keys[i][1], sizeof(keys[i][1]), "packs/pack-%s.idx", hex);
            x[i].fd = -1;
        }
        /*
         * A pack a failed run finished uploading (its idx did not follow) is
         * there whole: pack names hash their entries, so same name and size
         * is the same pack. Unfinished multipart uploads resume in the
         * transport.
         */
        for (size_t i = 0; i < n; i++) {
            x[i].op = CAIRN_REMOTE_HEAD;
            x[i].key = keys[i][0];
        }
        cairn_remote_batch(p->r, x, n);
        cairn_error_clear();
        for (size_t i = 0; i < n && !error; i++) {
            int have = x[i].result == 0 && x[i].size == packs[g + i].size;
            memset(&x[i], 0, sizeof(x[i]));
            x[i].fd = -1;
            if (have) {
                x[i].op = CAIRN_REMOTE_HEAD; /* already there: just check again */
                x[i].key = keys[i][0];
                continue;
            }
            if ((error = cairn_fs_join(&path, packs_dir.ptr, keys[i][0] + 6)) < 0)
                break;
            x[i].op = CAIRN_REMOTE_PUT_FILE;
            x[i].key = keys[i][0];
            x[i].len = packs[g + i].size;
            if ((x[i].fd = open(path.ptr, O_RDONLY | O_CLOEXEC)) < 0)
                error = cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", path.ptr);
        }
        if (!error)
            error = cairn_remote_batch(p->r, x, n);
        for (size_t i = 0; i < n; i++)
            if (x[i].fd >= 0)
                close(x[i].fd);
        if (error < 0)
            goto done;
        /* Packs are all there: now their idx files, which make them visible. */
        for (size_t i = 0; i < n; i++) {
            if ((error = cairn_fs_join(&path, packs_dir.ptr, keys[i][1] + 6)) < 0)
                goto done;
            if ((error = cairn_fs_read_file(&idx, path.ptr, (size_t)400 << 20)) < 0 ||
                (error = cairn_remote_put_buf(p->r, keys[i][1], idx.ptr, idx.len)) < 0)
                goto done;
            cairn_buf_clear(&idx);
            {
                struct cairn_buf cpath = CAIRN_BUF_INIT;
                if ((error = cairn_fs_join(&cpath, cache_dir, keys[i][1] + 6)) == 0 &&
                    rename(path.ptr, cpath.ptr) < 0)
                    error = cairn_error_set_errno(CAIRN_ERROR, "cannot rename '%s'", path.ptr);
                cairn_buf_release(&cpath);
                if (error < 0)
                    goto done;
            }
            if ((error = cairn_fs_join(&path, packs_dir.ptr, keys[i][0] + 6)) < 0)
                goto done;
            unlink(path.ptr);
            p->st->packs_sent++;
            p->st->pack_bytes += packs[g + i].size;
            done_bytes += packs[g + i].size;
        }
        if (p->o->progress)
            p->o->progress(done_bytes, total, p->o->progress_payload);
    }
done:
    free(packs);
    cairn_buf_release(&packs_dir);
    cairn_buf_release(&path);
    cairn_buf_release(&idx);
    return error;
}

/* ---- version records ---------------------------------------------------- */

static int edge_cb(const struct cairn_lineage_edge *e, void *payload)
{
    char hex[CAIRN_OID_HEXSZ + 1];
    json_t *j = json_object();
    json_object_set_new(j, "kind", json_string(e->kind));
    json_object_set_new(j, "target", json_string(cairn_oid_fmt(hex, &e->target)));
    if (e->detail)
        json_object_set_new(j, "detail", json_string(e->detail));
    return json_array_append_new(payload, j) < 0 ? cairn_error_set(CAIRN_ENOMEM, "out of memory")
                                                 : 0;
}

/* The remote's version object: the canonical record verbatim plus registry-only fields. */
static int version_object(struct push *p, const cairn_oid *id, char **out)
{
    struct cairn_version v;
    struct cairn_values params = { 0 }, metrics = { 0 };
    char *record = NULL, hex[CAIRN_OID_HEXSZ + 1];
    json_t *o = NULL, *edges = json_array();
    int error;

    *out = NULL;
    if ((error = cairn_registry_version_get(p->reg, id, &v)) < 0)
        goto done_noversion;
    if ((error = cairn_registry_version_record(p->reg, id, &record)) < 0 ||
        (error = cairn_registry_params(p->reg, id, &params)) < 0 ||
        (error = cairn_registry_metrics(p->reg, id, &metrics)) < 0 ||
        (error = cairn_registry_lineage(p->reg, id, edge_cb, edges)) < 0)
        goto done;
    o = json_object();
    json_object_set_new(o, "format", json_integer(1));
    json_object_set_new(o, "id", json_string(cairn_oid_fmt(hex, id)));
    json_object_set_new(o, "record", json_string(record));
    json_object_set_new(o, "model", json_string(v.model));
    json_object_set_new(o, "kind", json_string(v.kind));
    json_object_set_new(o, "number", json_integer(v.number));
    json_object_set_new(o, "size", json_integer((json_int_t)v.raw_size));
    json_object_set_new(o, "files", json_integer((json_int_t)v.nfiles));
    json_object_set_new(o, "stored_new", json_integer((json_int_t)v.stored_new));
    json_object_set_new(o, "params", cairn__values_json(&params));
    json_object_set_new(o, "metrics", cairn__values_json(&metrics));
    json_object_set_new(o, "lineage", edges);
    edges = NULL;
    if (!(*out = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17))))
        error = cairn_error_set(CAIRN_ENOMEM, "cannot encode a version object");
done:
    cairn_version_release(&v);
done_noversion:
    json_decref(o);
    json_decref(edges);
    free(record);
    cairn_values_release(&params);
    cairn_values_release(&metrics);
    return error;
}

static int push_versions(struct push *p)
{
    struct cairn_remote_xfer *x = NULL;
    char **bodies = NULL, (*keys)[CAIRN_OID_HEXSZ + 32] = NULL;
    size_t n = 0;
    int error = 0;

    if (!p->nvers)
        return 0;
    x = calloc(p->nvers, sizeof(*x));
    bodies = calloc(p->nvers, sizeof(*bodies));
    keys = calloc(p->nvers, sizeof(*keys));
    if (!x || !bodies || !keys) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < p->nvers; i++) {
        char hex[CAIRN_OID_HEXSZ + 1];
        snprintf(keys[n], sizeof(keys[n]), "versions/%s.json", cairn_oid_fmt(hex, &p->vers[i].id));
        if (keys_has(&p->remote_versions, keys[n]))
            continue;
        if ((error = version_object(p, &p->vers[i].id, &bodies[n])) < 0)
            goto done;
        x[n].op = CAIRN_REMOTE_PUT_BUF;
        x[n].key = keys[n];
        x[n].data = bodies[n];
        x[n].len = strlen(bodies[n]);
        n++;
    }
    if (n && (error = cairn_remote_batch(p->r, x, n)) < 0)
        goto done;
    p->st->versions_sent = n;
done:
    for (size_t i = 0; bodies && i < p->nvers; i++)
        free(bodies[i]);
    free(bodies);
    free(keys);
    free(x);
    return error;
}

/* ---- signatures and tags ------------------------------------------------ */

static int push_signatures(struct push *p)
{
    struct cairn__sync_keys have;
    struct cairn_buf dir = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT, body = CAIRN_BUF_INIT;
    int error;

    if ((error = cairn__sync_list(&have, p->r, "signatures/")) < 0)
        return error;
    for (size_t i = 0; i < p->nvers && !error; i++) {
        char hex[CAIRN_OID_HEXSZ + 1], key[CAIRN_REMOTE_KEY_MAX + 1];
        struct dirent *de;
        DIR *d;

        cairn_buf_clear(&dir);
        if ((error = cairn_buf_printf(&dir, "%s/signatures/%s", cairn_repo_cairndir(p->repo),
                                      cairn_oid_fmt(hex, &p->vers[i].id))) < 0)
            break;
        if (!(d = opendir(dir.ptr)))
            continue;
        while (!error && (de = readdir(d))) {
            size_t len = strlen(de->d_name);
            if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".sig"))
                continue;
            snprintf(key, sizeof(key), "signatures/%s/%s", hex, de->d_name);
            if (keys_has(&have, key) || cairn__remote_key_valid(key) < 0) {
                cairn_error_clear();
                continue;
            }
            if ((error = cairn_fs_join(&path, dir.ptr, de->d_name)) < 0 ||
                (error = cairn_fs_read_file(&body, path.ptr, (size_t)1 << 20)) < 0 ||
                (error = cairn_remote_put_buf(p->r, key, body.ptr, body.len)) < 0)
                break;
            cairn_buf_clear(&body);
            p->st->signatures_sent++;
        }
        closedir(d);
    }
    cairn__sync_keys_free(&have);
    cairn_buf_release(&dir);
    cairn_buf_release(&path);
    cairn_buf_release(&body);
    return error;
}

struct tag_ctx {
    struct push *p;
    const struct pver *v;
    struct cairn__sync_keys *have;
};

static int tag_cb(const char *tag, const cairn_oid *v, void *payload)
{
    struct tag_ctx *t = payload;
    char key[CAIRN_REMOTE_KEY_MAX + 1], hex[CAIRN_OID_HEXSZ + 1], *body;
    json_t *o;
    int error;

    snprintf(key, sizeof(key), "tags/%s/%s.json", t->v->model, tag);
    if (keys_has(t->have, key))
        return 0;
    o = json_object();
    json_object_set_new(o, "model", json_string(t->v->model));
    json_object_set_new(o, "tag", json_string(tag));
    json_object_set_new(o, "version", json_string(cairn_oid_fmt(hex, v)));
    body = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    if (!body)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    error = cairn_remote_put_buf(t->p->r, key, body, strlen(body));
    free(body);
    if (!error)
        t->p->st->tags_sent++;
    return error;
}

static int push_tags(struct push *p)
{
    struct cairn__sync_keys have;
    int error;

    if ((error = cairn__sync_list(&have, p->r, "tags/")) < 0)
        return error;
    for (size_t i = 0; i < p->nvers && !error; i++) {
        struct tag_ctx t = { p, &p->vers[i], &have };
        error = cairn_registry_tag_list(p->reg, &p->vers[i].id, tag_cb, &t);
    }
    cairn__sync_keys_free(&have);
    return error;
}

/* ---- aliases ------------------------------------------------------------ */

struct lalias {
    char model[65], alias[65];
    cairn_oid version;
    int tracked;
    char tkey[CAIRN_REMOTE_KEY_MAX + 1];
};

struct alias_list {
    struct lalias *v;
    size_t n, cap;
};

static int alias_cb(const struct cairn_alias_entry *e, void *payload)
{
    struct alias_list *l = payload;
    if (CAIRN_ARRAY_GROW(l->v, l->cap, l->n) < 0)
        return CAIRN_ENOMEM;
    memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
    snprintf(l->v[l->n].model, sizeof(l->v[l->n].model), "%s", e->model);
    snprintf(l->v[l->n].alias, sizeof(l->v[l->n].alias), "%s", e->alias);
    l->v[l->n++].version = e->version;
    return 0;
}

static int tracking_cb(const struct cairn_tracking_ref *t, void *payload)
{
    struct alias_list *l = payload;
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->v[i].model, t->model) && !strcmp(l->v[i].alias, t->alias)) {
            l->v[i].tracked = 1;
            snprintf(l->v[i].tkey, sizeof(l->v[i].tkey), "%s", t->key);
        }
    }
    return 0;
}

/* The keys under aliases/MODEL/ALIAS/ (the prefix, into `prefix`). */
static int alias_list(struct cairn__sync_keys *out, char prefix[200], struct push *p,
                      const char *model, const char *alias)
{
    snprintf(prefix, 200, "aliases/%s/%s/", model, alias);
    return cairn__sync_list(out, p->r, prefix);
}

/*
 * The head of the alias on the remote (cairn__sync_alias_head; `prefer` is
 * the entry we wrote or saw last, which wins a tie).
 */
static int alias_head(struct cairn__alias_head *out, struct push *p, const char *model,
                      const char *alias, const char *prefer)
{
    struct cairn__sync_keys k;
    char prefix[200];
    int error;

    if ((error = alias_list(&k, prefix, p, model, alias)) < 0)
        return error;
    error = cairn__sync_alias_head(out, p->r, p->name, model, alias, k.keys, k.n, prefer);
    cairn__sync_keys_free(&k);
    return error;
}

/* How many entries of the alias other than `mine` carry number `seq`. */
static int alias_rivals(size_t *out, struct push *p, const char *model, const char *alias,
                        unsigned long long seq, const char *mine)
{
    struct cairn__sync_keys k;
    char prefix[200];
    int error;

    *out = 0;
    if ((error = alias_list(&k, prefix, p, model, alias)) < 0)
        return error;
    for (size_t i = 0; i < k.n; i++)
        if (cairn__sync_alias_seq(k.keys[i], prefix) == seq && strcmp(k.keys[i], mine))
            (*out)++;
    cairn__sync_keys_free(&k);
    return 0;
}

static int version_on_remote(struct push *p, const cairn_oid *id)
{
    char hex[CAIRN_OID_HEXSZ + 1], key[CAIRN_OID_HEXSZ + 32];
    snprintf(key, sizeof(key), "versions/%s.json", cairn_oid_fmt(hex, id));
    return cairn_oidset_has(&p->vset, id) || keys_has(&p->remote_versions, key);
}

static int push_aliases(struct push *p, char *first_reject, size_t cap)
{
    struct alias_list l = { 0 };
    uint8_t rnd[8];
    char writer[17];
    int error;

    if ((error = cairn_registry_alias_list(p->reg, NULL, alias_cb, &l)) < 0 ||
        (error = cairn_registry_tracking_list(p->reg, p->name, tracking_cb, &l)) < 0)
        goto done;
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot get random bytes");
        goto done;
    }
    cairn_hex_encode(writer, rnd, sizeof(rnd));
    for (size_t i = 0; i < l.n && !error; i++) {
        struct lalias *a = &l.v[i];
        struct cairn__alias_head head;
        char key[CAIRN_REMOTE_KEY_MAX + 1], hex[CAIRN_OID_HEXSZ + 1], *body;
        size_t rivals;
        json_t *o;

        if (!version_on_remote(p, &a->version))
            continue;
        if ((error = alias_head(&head, p, a->model, a->alias, a->tracked ? a->tkey : NULL)) < 0)
            break;
        if (head.found && !cairn_oid_cmp(&head.version, &a->version)) {
            error = cairn_registry_tracking_set(p->reg, p->name, a->model, a->alias, &head.version,
                                                head.key);
            continue;
        }
        if (head.found && !p->o->force && (!a->tracked || strcmp(a->tkey, head.key))) {
            char hh[CAIRN_OID_HEXSZ + 1];
            p->st->aliases_rejected++;
            cairn_warn(
                "alias '%s@%s' was changed on '%s' by someone else (now %.12s); pull"
                " first or push --force",
                a->model, a->alias, p->name, cairn_oid_fmt(hh, &head.version));
            if (!*first_reject)
                snprintf(first_reject, cap,
                         "alias '%s@%s' was changed on '%s' (now %.12s): pull first or push"
                         " --force",
                         a->model, a->alias, p->name, hh);
            continue;
        }
        snprintf(key, sizeof(key), "aliases/%s/%s/%016llu-%s.json", a->model, a->alias,
                 head.found ? head.seq + 1 : 1ULL, writer);
        o = json_object();
        json_object_set_new(o, "model", json_string(a->model));
        json_object_set_new(o, "alias", json_string(a->alias));
        json_object_set_new(o, "version", json_string(cairn_oid_fmt(hex, &a->version)));
        json_object_set_new(o, "prev", head.found ? json_string(head.key) : json_null());
        json_object_set_new(o, "author", json_string(cairn_repo_user(p->repo)));
        json_object_set_new(o, "time_ns", json_integer(cairn_time_now_ns()));
        body = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
        json_decref(o);
        if (!body) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            break;
        }
        error = cairn_remote_put_buf(p->r, key, body, strlen(body));
        free(body);
        if (error < 0 ||
            (error = alias_rivals(&rivals, p, a->model, a->alias, head.seq + 1, key)) < 0)
            break;
        if (rivals) {
            /*
             * Another writer took the same step. Whoever lists after both
             * entries exist backs off, so at most one of two racing pushes
             * succeeds (the other listed before this entry existed): ours is
             * removed and the push fails. If both back off, neither counts.
             */
            p->st->aliases_rejected++;
            if ((error = cairn_remote_delete(p->r, key)) < 0)
                break;
            cairn_warn("alias '%s@%s' was moved on '%s' at the same time by someone else", a->model,
                       a->alias, p->name);
            if (!*first_reject)
                snprintf(first_reject, cap,
                         "alias '%s@%s' was moved on '%s' concurrently: pull and push again",
                         a->model, a->alias, p->name);
            continue;
        }
        error = cairn_registry_tracking_set(p->reg, p->name, a->model, a->alias, &a->version, key);
        p->st->aliases_sent++;
    }
done:
    free(l.v);
    return error;
}

/* ---- the whole push ----------------------------------------------------- */

int cairn_push(struct cairn_repo *repo, const struct cairn_push_opts *opts,
               struct cairn_push_stats *out)
{
    struct push p;
    struct cairn_buf cache = CAIRN_BUF_INIT, outdir = CAIRN_BUF_INIT;
    char reject[512] = "";
    int error, locked = 0;
    uint64_t received;

    memset(&p, 0, sizeof(p));
    memset(out, 0, sizeof(*out));
    p.repo = repo;
    p.store = cairn_repo_store(repo);
    p.reg = cairn_repo_registry(repo);
    p.o = opts;
    p.st = out;
    if ((error = cairn__sync_open(&p.r, &p.name, repo, opts->remote, 1)) < 0)
        goto done;
    if ((error = cairn__repo_lock(repo, 0)) < 0)
        goto done;
    locked = 1;
    if ((error = cairn__sync_dir(&cache, repo, p.name, "packs")) < 0 ||
        (error = cairn__sync_dir(&outdir, repo, p.name, "outgoing")) < 0)
        goto done;
    if ((error = select_versions(&p)) < 0 ||
        (error = cairn__rindex_load(&p.rix, p.r, cache.ptr)) < 0 ||
        (error = collect_chunks(&p)) < 0 || (error = write_packs(&p, outdir.ptr)) < 0 ||
        (error = upload_packs(&p, outdir.ptr, cache.ptr)) < 0)
        goto done;
    if ((error = cairn__sync_list(&p.remote_versions, p.r, "versions/")) < 0 ||
        (error = push_versions(&p)) < 0 || (error = push_signatures(&p)) < 0 ||
        (error = push_tags(&p)) < 0 || (error = push_aliases(&p, reject, sizeof(reject))) < 0)
        goto done;
    cairn_fs_rm_rf(outdir.ptr);
    if (*reject)
        error = cairn_error_set(CAIRN_EEXISTS, "%s", reject);
done:
    if (p.r)
        cairn_remote_stats(p.r, &out->bytes_sent, &received);
    if (locked)
        cairn__repo_unlock(repo);
    cairn__rindex_release(&p.rix);
    cairn__sync_keys_free(&p.remote_versions);
    cairn_oidset_release(&p.vset);
    cairn_oidset_release(&p.needset);
    free(p.vers);
    free(p.need);
    free(p.name);
    cairn_remote_free(p.r);
    cairn_buf_release(&cache);
    cairn_buf_release(&outdir);
    return error;
}
