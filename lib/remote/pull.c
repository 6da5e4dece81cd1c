/*
 * cairn pull: fetch version records, then only the chunks the selected
 * versions (and --include paths) need, with ranged reads from the remote's
 * packs.
 *
 * Work goes in three waves - trees, then the file objects of the selected
 * paths, then their data chunks - because each wave's ids are only known
 * once the previous one is decoded. Within a wave, chunks are grouped by
 * remote pack and sorted by offset; neighbours closer than RANGE_GAP are
 * coalesced into one ranged GET of at most RANGE_SPAN bytes, and ranges
 * run in parallel through cairn_remote_batch() into an unlinked temp file
 * of at most BATCH_BYTES (bounded disk and memory). Each entry is then
 * checked (header against the idx, entry check, decode, BLAKE3) before it
 * is handed to the store writer; a delta waits for a later round until its
 * base is stored, so it can be decoded. A chunk that fails aborts the pull
 * with CAIRN_ECORRUPT naming the remote object; the uncommitted writer
 * removes its temp pack, so nothing unverified lands.
 *
 * Versions are inserted last, in one transaction, from their canonical
 * records (the id recomputed from each record first).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "util/text.h"
#include "cairn/gate.h"

#define RANGE_GAP   ((uint64_t)64 << 10)
#define RANGE_SPAN  ((uint64_t)32 << 20)
#define BATCH_BYTES ((uint64_t)256 << 20)
#define BATCH_MAX   256

struct rver {
    cairn_oid id, tree;
    char model[65];
    int number; /* the remote's */
    long long time_ns;
    int local, selected;
    json_t *obj, *rec; /* owned */
};

struct pull {
    struct cairn_repo *repo;
    struct cairn_store *store;
    struct cairn_registry *reg;
    struct cairn_remote *r;
    char *name;
    const struct cairn_pull_opts *o;
    struct cairn_pull_stats *st;
    struct cairn__rindex rix;
    struct rver *vers;
    size_t nvers;
    char *tmpdir;
    uint64_t fetched_bytes;
};

/* ---- records ------------------------------------------------------------ */

static int load_versions(struct pull *p)
{
    struct cairn__sync_keys k;
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error;

    if ((error = cairn__sync_list(&k, p->r, "versions/")) < 0)
        return error;
    if (k.n && !(p->vers = calloc(k.n, sizeof(*p->vers)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < k.n; i++) {
        const char *key = k.keys[i], *hex = key + strlen("versions/");
        struct rver *v = &p->vers[p->nvers];
        struct cairn__remote_version rv;
        struct cairn_version lv;

        if (strlen(hex) != CAIRN_OID_HEXSZ + 5 || strcmp(hex + CAIRN_OID_HEXSZ, ".json"))
            continue; /* not a version object; the rest of the listing is */
        if ((error = cairn__sync_get_small(p->r, key, &b)) < 0)
            goto done;
        if ((error = cairn__sync_version_parse(&rv, key, b.ptr, b.len)) < 0)
            goto done;
        v->id = rv.id;
        v->tree = rv.tree;
        snprintf(v->model, sizeof(v->model), "%s", rv.model);
        v->number = rv.number;
        v->time_ns = rv.time_ns;
        v->obj = rv.obj;
        v->rec = rv.rec;
        if (cairn_registry_version_get(p->reg, &v->id, &lv) == 0) {
            v->local = 1;
            cairn_version_release(&lv);
        }
        cairn_error_clear();
        p->nvers++;
    }
done:
    cairn__sync_keys_free(&k);
    cairn_buf_release(&b);
    return error;
}

/* A remote tag or alias of `model`: tags/M/T.json first, then aliases/M/A/. */
static int remote_name(cairn_oid *out, struct pull *p, const char *model, const char *name)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    struct cairn__sync_keys k;
    struct cairn__alias_head h;
    char key[CAIRN_REMOTE_KEY_MAX + 1];
    int error;

    if ((error = cairn_name_valid(model, "model name")) < 0 ||
        (error = cairn_name_valid(name, "alias or tag name")) < 0)
        return error;
    snprintf(key, sizeof(key), "tags/%s/%s.json", model, name);
    if ((error = cairn__sync_get_small(p->r, key, &b)) == 0) {
        json_t *o = json_loadb(b.ptr, b.len, 0, NULL);
        const char *v = o ? json_string_value(json_object_get(o, "version")) : NULL;
        error = v && cairn_oid_parse(out, v) == 0
                    ? 0
                    : cairn_error_set(CAIRN_ECORRUPT, "remote object '%s' is malformed", key);
        json_decref(o);
        goto done;
    }
    if (error != CAIRN_ENOTFOUND)
        goto done;
    snprintf(key, sizeof(key), "aliases/%s/%s/", model, name);
    if ((error = cairn__sync_list(&k, p->r, key)) < 0)
        goto done;
    error = cairn__sync_alias_head(&h, p->r, p->name, model, name, k.keys, k.n, NULL);
    if (!error && !h.found)
        error =
            cairn_error_set(CAIRN_ENOTFOUND, "'%s@%s' is not on remote '%s'", model, name, p->name);
    if (!error)
        *out = h.version;
    cairn__sync_keys_free(&k);
done:
    cairn_buf_release(&b);
    return error;
}

static int select_versions(struct pull *p)
{
    int error = 0;

    for (size_t i = 0; i < p->nvers; i++)
        p->vers[i].selected = p->o->nrefs == 0;
    for (size_t r = 0; r < p->o->nrefs && !error; r++) {
        const char *ref = p->o->refs[r], *at = strchr(ref, '@');
        size_t hits = 0;

        if (at) {
            char model[65];
            cairn_oid id;
            size_t ml = (size_t)(at - ref);
            if (ml == 0 || ml >= sizeof(model))
                return cairn_error_set(CAIRN_EINVALID, "invalid reference '%s'", ref);
            memcpy(model, ref, ml);
            model[ml] = '\0';
            if (at[1] == 'v' && at[2] >= '0' && at[2] <= '9') {
                int n = atoi(at + 2);
                for (size_t i = 0; i < p->nvers; i++)
                    if (!strcmp(p->vers[i].model, model) && p->vers[i].number == n)
                        p->vers[i].selected = 1, hits++;
            } else {
                if ((error = remote_name(&id, p, model, at + 1)) < 0)
                    break;
                for (size_t i = 0; i < p->nvers; i++)
                    if (!cairn_oid_cmp(&p->vers[i].id, &id) && !strcmp(p->vers[i].model, model))
                        p->vers[i].selected = 1, hits++;
                if (!hits)
                    return cairn_error_set(CAIRN_ECORRUPT,
                                           "'%s' on remote '%s' names a version that is not one"
                                           " of model '%s'",
                                           ref, p->name, model);
            }
        } else {
            size_t len = strlen(ref);
            for (size_t i = 0; i < p->nvers; i++)
                if (!strcmp(p->vers[i].model, ref))
                    p->vers[i].selected = 1, hits++;
            if (!hits && len >= 7 && len <= CAIRN_OID_HEXSZ) {
                size_t match = 0, which = 0;
                for (size_t i = 0; i < p->nvers; i++) {
                    char hex[CAIRN_OID_HEXSZ + 1];
                    if (!strncmp(cairn_oid_fmt(hex, &p->vers[i].id), ref, len))
                        match++, which = i;
                }
                if (match > 1)
                    return cairn_error_set(CAIRN_EAMBIGUOUS,
                                           "'%s' matches several versions on '%s'", ref, p->name);
                if (match)
                    p->vers[which].selected = 1, hits++;
            }
        }
        if (!hits)
            error = cairn_error_set(CAIRN_ENOTFOUND, "'%s' is not on remote '%s'", ref, p->name);
    }
    for (size_t i = 0; i < p->nvers; i++)
        p->st->versions += p->vers[i].selected;
    return error;
}

/* ---- chunks ------------------------------------------------------------- */

struct want {
    const struct cairn__rentry *e;
    uint64_t tmp_off; /* where its bytes land in the batch file */
};

static int want_cmp(const void *a, const void *b)
{
    const struct cairn__rentry *x = ((const struct want *)a)->e, *y = ((const struct want *)b)->e;
    if (x->pack != y->pack)
        return x->pack < y->pack ? -1 : 1;
    return x->e.offset < y->e.offset ? -1 : x->e.offset > y->e.offset;
}

static void pack_key(char *out, size_t cap, const struct pull *p, uint32_t pack)
{
    char hex[CAIRN_OID_HEXSZ + 1];
    snprintf(out, cap, "packs/pack-%s.pack", cairn_oid_fmt(hex, &p->rix.packs[pack]));
}

/* Check one entry read back from the batch file and add it to the writer. */
static int take_entry(struct pull *p, struct cairn_store_writer *w, int fd, const struct want *wt,
                      struct cairn_buf *buf)
{
    const struct cairn__pack_entry *ie = &wt->e->e;
    struct cairn__pack_entry e;
    size_t hl = cairn__entry_hdr_len(ie->flags);
    uint64_t total = cairn__entry_total_len(ie);
    const uint8_t *b;
    char key[CAIRN_OID_HEXSZ + 32], hex[CAIRN_OID_HEXSZ + 1];
    ssize_t n;
    int error;

    pack_key(key, sizeof(key), p, wt->e->pack);
    cairn_buf_clear(buf);
    if ((error = cairn_buf_grow(buf, total)) < 0)
        return error;
    n = cairn_fs_pread_full(fd, buf->ptr, total, (off_t)wt->tmp_off);
    if (n < 0)
        return (int)n;
    b = (const uint8_t *)buf->ptr;
    if ((uint64_t)n != total || cairn__entry_header_parse(&e, b, hl, ie->offset) < 0 ||
        cairn_oid_cmp(&e.id, &ie->id) || e.flags != ie->flags || e.codec != ie->codec ||
        e.raw_len != ie->raw_len || e.stored_len != ie->stored_len ||
        cairn_oid_cmp(&e.base, &ie->base))
        return cairn_error_set(CAIRN_ECORRUPT,
                               "remote object '%s' is corrupt: entry of chunk %.12s at offset %llu"
                               " does not match its index",
                               key, cairn_oid_fmt(hex, &ie->id), (unsigned long long)ie->offset);
    if (cairn__entry_check_verify(b + hl + e.stored_len, b, hl, b + hl, e.stored_len) < 0 ||
        (error = cairn_store_check_encoded(p->store, &e.id, e.codec,
                                           (e.flags & CAIRN__PACK_F_BASE) ? &e.base : NULL,
                                           e.raw_len, b + hl, e.stored_len)) < 0) {
        if (error == 0 || error == CAIRN_ECORRUPT) {
            cairn_error_clear();
            return cairn_error_set(CAIRN_ECORRUPT,
                                   "remote object '%s' is corrupt: chunk %.12s at offset %llu"
                                   " fails verification",
                                   key, cairn_oid_fmt(hex, &ie->id),
                                   (unsigned long long)ie->offset);
        }
        return error;
    }
    return cairn_store_writer_add(w, &e.id, e.codec,
                                  (e.flags & CAIRN__PACK_F_BASE) ? &e.base : NULL, e.raw_len,
                                  b + hl, e.stored_len);
}

/* Fetch wants[0..n) (sorted) in ranged GETs through one temp file, then check and store them. */
static int fetch_batch(struct pull *p, struct cairn_store_writer *w, struct want *wants, size_t n,
                       uint64_t total_bytes)
{
    struct cairn_remote_xfer *x = NULL;
    char(*keys)[CAIRN_OID_HEXSZ + 32] = NULL;
    struct cairn_buf path = CAIRN_BUF_INIT, buf = CAIRN_BUF_INIT;
    size_t nx = 0, i = 0;
    uint64_t fpos = 0;
    int fd = -1, error;

    if (!(x = calloc(n, sizeof(*x))) || !(keys = calloc(n, sizeof(*keys)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = cairn_buf_printf(&path, "%s/fetch-XXXXXX", p->tmpdir)) < 0)
        goto done;
    if ((fd = mkstemp(path.ptr)) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot create a temp file in '%s'", p->tmpdir);
        goto done;
    }
    unlink(path.ptr);
    while (i < n) {
        const struct cairn__rentry *first = wants[i].e;
        uint64_t start = first->e.offset, end = start + cairn__entry_total_len(&first->e);
        size_t j = i + 1;

        wants[i].tmp_off = fpos;
        while (j < n && wants[j].e->pack == first->pack) {
            uint64_t s = wants[j].e->e.offset, e2 = s + cairn__entry_total_len(&wants[j].e->e);
            if (s < end || s - end > RANGE_GAP || e2 - start > RANGE_SPAN)
                break;
            wants[j].tmp_off = fpos + (s - start);
            end = e2;
            j++;
        }
        pack_key(keys[nx], sizeof(keys[nx]), p, first->pack);
        x[nx].op = CAIRN_REMOTE_GET_FD;
        x[nx].key = keys[nx];
        x[nx].off = start;
        x[nx].len = end - start;
        x[nx].fd = fd;
        x[nx].fd_off = fpos;
        fpos += end - start;
        nx++;
        i = j;
    }
    if ((error = cairn_remote_batch(p->r, x, nx)) < 0) {
        if (error == CAIRN_ENOTFOUND || error == CAIRN_ECORRUPT) {
            char why[400];
            snprintf(why, sizeof(why), "%s", cairn_error_last());
            error = cairn_error_set(CAIRN_ECORRUPT, "remote pack unreadable: %s", why);
        }
        goto done;
    }
    p->st->ranges += nx;
    p->fetched_bytes += fpos;
    if (p->o->progress)
        p->o->progress(p->fetched_bytes, total_bytes, p->o->progress_payload);
    cairn_buf_init(&buf, (size_t)CAIRN__CHUNK_MAX + 256);
    for (i = 0; i < n; i++) {
        if ((error = take_entry(p, w, fd, &wants[i], &buf)) < 0)
            goto done;
        p->st->chunks_fetched++;
    }
done:
    if (fd >= 0)
        close(fd);
    free(x);
    free(keys);
    cairn_buf_release(&path);
    cairn_buf_release(&buf);
    return error;
}

/* Make every chunk of ids[0..n) local, fetching what is missing (bases included). */
static int fetch_chunks(struct pull *p, const cairn_oid *ids, size_t n)
{
    struct cairn_oidset seen = { 0 };
    struct want *todo = NULL, *ready = NULL;
    size_t ntodo = 0, cap = 0;
    uint64_t total = 0;
    int error = 0;

    for (size_t i = 0; i < n && !error; i++) {
        const cairn_oid *id = &ids[i];
        for (int depth = 0; id && depth <= CAIRN_STORE_MAX_CHAIN + 1; depth++) {
            const struct cairn__rentry *re;
            char hex[CAIRN_OID_HEXSZ + 1];

            if ((error = cairn_oidset_add(&seen, id)) <= 0)
                break;
            if ((error = cairn_store_has(p->store, id)) != 0)
                break;
            if (!(re = cairn__rindex_find(&p->rix, id))) {
                error = cairn_error_set(CAIRN_ENOTFOUND, "chunk %.12s is not on remote '%s'",
                                        cairn_oid_fmt(hex, id), p->name);
                break;
            }
            if ((error = CAIRN_ARRAY_GROW(todo, cap, ntodo)) < 0)
                break;
            todo[ntodo].e = re;
            todo[ntodo++].tmp_off = 0;
            total += cairn__entry_total_len(&re->e);
            id = (re->e.flags & CAIRN__PACK_F_BASE) ? &re->e.base : NULL;
        }
        if (error > 0)
            error = 0;
    }
    if (error < 0)
        goto done;
    if (ntodo && !(ready = malloc(ntodo * sizeof(*ready)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    /* Rounds: a delta goes once its base is stored, so it can be decoded on arrival. */
    while (ntodo) {
        struct cairn_store_writer *w = NULL;
        size_t nready = 0, keep = 0;

        for (size_t i = 0; i < ntodo; i++) {
            const struct cairn__pack_entry *e = &todo[i].e->e;
            if (!(e->flags & CAIRN__PACK_F_BASE) || cairn_store_has(p->store, &e->base) == 1)
                ready[nready++] = todo[i];
            else
                todo[keep++] = todo[i];
        }
        ntodo = keep;
        if (!nready) {
            char hex[CAIRN_OID_HEXSZ + 1];
            error = cairn_error_set(CAIRN_ECORRUPT, "delta base %.12s is missing on remote '%s'",
                                    cairn_oid_fmt(hex, &todo[0].e->e.base), p->name);
            goto done;
        }
        qsort(ready, nready, sizeof(*ready), want_cmp);
        if ((error = cairn_store_writer_new(&w, p->store)) < 0)
            goto done;
        for (size_t i = 0; i < nready && !error;) {
            uint64_t bytes = 0;
            size_t j = i;
            while (j < nready && j - i < BATCH_MAX && bytes < BATCH_BYTES)
                bytes += cairn__entry_total_len(&ready[j++].e->e);
            error = fetch_batch(p, w, ready + i, j - i, total);
            i = j;
        }
        if (!error)
            error = cairn_store_writer_commit(w);
        cairn_store_writer_free(w);
        if (error < 0)
            goto done;
    }
done:
    free(todo);
    free(ready);
    cairn_oidset_release(&seen);
    return error;
}

static int included(const struct cairn_pull_opts *o, const char *path)
{
    if (!o->ninclude)
        return 1;
    for (size_t i = 0; i < o->ninclude; i++) {
        const char *g = o->include[i];
        size_t n = strlen(g), k = n && g[n - 1] == '/' ? n - 1 : n;
        if (fnmatch(g, path, FNM_PATHNAME) == 0)
            return 1;
        if (n && !strncmp(path, g, k) && path[k] == '/')
            return 1;
    }
    return 0;
}

struct idvec {
    cairn_oid *v;
    size_t n, cap;
};

static int idvec_add(struct idvec *iv, const cairn_oid *id)
{
    if (CAIRN_ARRAY_GROW(iv->v, iv->cap, iv->n) < 0)
        return CAIRN_ENOMEM;
    iv->v[iv->n++] = *id;
    return 0;
}

static int fetch_content(struct pull *p)
{
    struct idvec trees = { 0 }, files = { 0 }, chunks = { 0 };
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error = 0;

    for (size_t i = 0; i < p->nvers && !error; i++)
        if (p->vers[i].selected)
            error = idvec_add(&trees, &p->vers[i].tree);
    if (error < 0 || (error = fetch_chunks(p, trees.v, trees.n)) < 0)
        goto done;
    for (size_t i = 0; i < trees.n && !error; i++) {
        struct cairn_tree t = { 0 };
        if ((error = cairn_repo_read_tree(p->repo, &trees.v[i], &t)) < 0)
            break;
        for (size_t k = 0; k < t.n && !error; k++)
            if (included(p->o, t.entries[k].path))
                error = idvec_add(&files, &t.entries[k].file);
        cairn_tree_release(&t);
    }
    if (error < 0 || (error = fetch_chunks(p, files.v, files.n)) < 0)
        goto done;
    for (size_t i = 0; i < files.n && !error; i++) {
        struct cairn_file_object f;
        cairn_buf_clear(&b);
        if ((error = cairn_store_get(p->store, &files.v[i], &b)) < 0 ||
            (error = cairn_file_object_decode(&f, b.ptr, b.len)) < 0)
            break;
        for (size_t c = 0; c < f.nchunks && !error; c++)
            error = idvec_add(&chunks, &f.chunks[c].id);
        cairn_file_object_release(&f);
    }
    if (!error)
        error = fetch_chunks(p, chunks.v, chunks.n);
done:
    free(trees.v);
    free(files.v);
    free(chunks.v);
    cairn_buf_release(&b);
    return error;
}

/* ---- inserting versions ------------------------------------------------- */

static int kv_from_json(struct cairn_values *out, json_t *o)
{
    const char *k;
    json_t *v;
    int error = 0;

    if (!o || json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return cairn_error_set(CAIRN_ECORRUPT, "malformed params or metrics in a record");
    json_object_foreach(o, k, v)
    {
        if (json_is_number(v))
            error = cairn_values_set_number(out, k, json_number_value(v));
        else if (json_is_string(v))
            error = cairn_values_set_string(out, k, json_string_value(v));
        else if (json_is_boolean(v))
            error = cairn_values_set_bool(out, k, json_is_true(v));
        if (error < 0)
            return error;
    }
    return 0;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int insert_version(struct pull *p, struct rver *rv)
{
    struct cairn_version v, taken;
    struct cairn_values params = { 0 }, metrics = { 0 }, later = { 0 };
    struct cairn_lineage_edge edges[66];
    size_t nedges = 0;
    json_t *rec = rv->rec, *data = json_object_get(rec, "data"), *parent, *derived, *dirty;
    const char *record = jstr(rv->obj, "record");
    char hex[CAIRN_OID_HEXSZ + 1], subject[160], details[256];
    int error;

    memset(&v, 0, sizeof(v));
    memset(edges, 0, sizeof(edges));
    v.id = rv->id;
    v.tree = rv->tree;
    snprintf(v.model, sizeof(v.model), "%s", rv->model);
    snprintf(v.kind, sizeof(v.kind), "%s", jstr(rec, "kind") ? jstr(rec, "kind") : "model");
    if (strcmp(v.kind, "model") && strcmp(v.kind, "dataset"))
        return cairn_error_set(CAIRN_ECORRUPT, "remote version %.12s has an unknown kind",
                               cairn_oid_fmt(hex, &rv->id));
    parent = json_object_get(rec, "parent");
    if (json_is_string(parent)) {
        if (cairn_oid_parse(&v.parent, json_string_value(parent)) < 0)
            return cairn_error_set(CAIRN_ECORRUPT, "remote version %.12s: bad parent",
                                   cairn_oid_fmt(hex, &rv->id));
        v.has_parent = 1;
        snprintf(edges[nedges].kind, sizeof(edges[nedges].kind), "parent");
        edges[nedges++].target = v.parent;
    }
    for (size_t i = 0; json_is_array(data) && i < json_array_size(data) && nedges < 64; i++) {
        const char *d = json_string_value(json_array_get(data, i));
        if (!d || cairn_oid_parse(&edges[nedges].target, d) < 0)
            return cairn_error_set(CAIRN_ECORRUPT, "remote version %.12s: bad data reference",
                                   cairn_oid_fmt(hex, &rv->id));
        snprintf(edges[nedges++].kind, sizeof(edges[0].kind), "data");
    }
    derived = json_object_get(rec, "derived");
    if (json_is_object(derived) && jstr(derived, "from") &&
        cairn_oid_parse(&edges[nedges].target, jstr(derived, "from")) == 0) {
        snprintf(edges[nedges].kind, sizeof(edges[0].kind), "derived");
        edges[nedges++].detail = (char *)jstr(derived, "how");
    }
    v.time_ns = rv->time_ns;
    v.message = (char *)(jstr(rec, "message") ? jstr(rec, "message") : "");
    v.author = (char *)(jstr(rec, "author") ? jstr(rec, "author") : "");
    v.host = (char *)(jstr(rec, "host") ? jstr(rec, "host") : "");
    v.code_commit = (char *)jstr(rec, "code_commit");
    dirty = json_object_get(rec, "code_dirty");
    v.code_dirty = json_is_boolean(dirty) ? json_is_true(dirty) : -1;
    v.raw_size = (uint64_t)json_integer_value(json_object_get(rec, "size"));
    v.nfiles = (uint64_t)json_integer_value(json_object_get(rec, "files"));
    v.stored_new = (uint64_t)json_integer_value(json_object_get(rv->obj, "stored_new"));
    if ((error = kv_from_json(&params, json_object_get(rec, "params"))) < 0 ||
        (error = kv_from_json(&metrics, json_object_get(rec, "metrics"))) < 0 ||
        (error = kv_from_json(&later, json_object_get(rv->obj, "metrics"))) < 0)
        goto done;
    if ((error = cairn_registry_version_insert(p->reg, &v, record, &params, &metrics, edges,
                                               nedges)) < 0)
        goto done;
    if (rv->number > 0 && rv->number != v.number) {
        error = cairn_registry_version_by_number(p->reg, v.model, rv->number, &taken);
        if (error == CAIRN_ENOTFOUND) {
            cairn_error_clear();
            if ((error = cairn_registry_version_renumber(p->reg, &v.id, rv->number)) < 0)
                goto done;
            v.number = rv->number;
        } else if (error == 0) {
            cairn_version_release(&taken);
            cairn_warn("%s@v%d is another version here: remote version %.12s is %s@v%d", v.model,
                       rv->number, cairn_oid_fmt(hex, &v.id), v.model, v.number);
        } else {
            goto done;
        }
    }
    /*
     * Metrics recorded after commit (eval --record) travel as annotations.
     * Nothing covers them, so they are kept as the remote's and never used
     * by a gate (cairn_registry_metrics_trusted).
     */
    {
        struct cairn_values extra = { 0 };
        for (size_t i = 0; i < later.count && !error; i++)
            if (!cairn_values_get(&metrics, later.items[i].name))
                error = cairn_values_set(&extra, &later.items[i]);
        if (!error && extra.count)
            error = cairn_registry_metrics_set(p->reg, &v.id, &extra, CAIRN_METRICS_SOURCE_REMOTE);
        cairn_values_release(&extra);
        if (error < 0)
            goto done;
    }
    snprintf(subject, sizeof(subject), "%s@v%d", v.model, v.number);
    snprintf(details, sizeof(details), "{\"id\":\"%s\",\"remote\":\"%s\"}",
             cairn_oid_fmt(hex, &v.id), p->name);
    error = cairn_registry_audit_append(p->reg, cairn_repo_user(p->repo), "pull", subject, details);
    p->st->versions_new++;
done:
    cairn_values_release(&params);
    cairn_values_release(&metrics);
    cairn_values_release(&later);
    return error;
}

static int rver_cmp(const void *a, const void *b)
{
    const struct rver *x = a, *y = b;
    if (x->time_ns != y->time_ns)
        return x->time_ns < y->time_ns ? -1 : 1;
    return cairn_oid_cmp(&x->id, &y->id);
}

static int insert_versions(struct pull *p)
{
    int error;

    qsort(p->vers, p->nvers, sizeof(*p->vers), rver_cmp);
    if ((error = cairn_registry_begin(p->reg)) < 0)
        return error;
    for (size_t i = 0; i < p->nvers && !error; i++)
        if (p->vers[i].selected && !p->vers[i].local)
            error = insert_version(p, &p->vers[i]);
    if (error < 0) {
        cairn_registry_rollback(p->reg);
        return error;
    }
    return cairn_registry_commit(p->reg);
}

/* ---- signatures, tags, aliases ----------------------------------------- */

static const struct rver *find_selected(const struct pull *p, const cairn_oid *id)
{
    for (size_t i = 0; i < p->nvers; i++)
        if (p->vers[i].selected && !cairn_oid_cmp(&p->vers[i].id, id))
            return &p->vers[i];
    return NULL;
}

/* KEYID.sig, KEYID the 16 lowercase hex digits of a key id. */
static int signature_name(const char *name)
{
    if (strlen(name) != CAIRN_KEY_ID_HEXSZ + 4 || strcmp(name + CAIRN_KEY_ID_HEXSZ, ".sig"))
        return 0;
    for (int i = 0; i < CAIRN_KEY_ID_HEXSZ; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    return 1;
}

static int pull_signatures(struct pull *p)
{
    struct cairn__sync_keys k;
    struct cairn_buf b = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
    int error;

    if ((error = cairn__sync_list(&k, p->r, "signatures/")) < 0)
        return error;
    for (size_t i = 0; i < k.n && !error; i++) {
        const char *rest = k.keys[i] + strlen("signatures/"), *slash = strchr(rest, '/');
        char hex[CAIRN_OID_HEXSZ + 1];
        cairn_oid id;

        if (!slash || slash - rest != CAIRN_OID_HEXSZ || !signature_name(slash + 1))
            continue;
        memcpy(hex, rest, CAIRN_OID_HEXSZ);
        hex[CAIRN_OID_HEXSZ] = '\0';
        if (cairn_oid_parse(&id, hex) < 0 || !find_selected(p, &id))
            continue;
        cairn_buf_clear(&path);
        if ((error = cairn_buf_printf(&path, "%s/%s", cairn_repo_cairndir(p->repo), k.keys[i])) < 0)
            break;
        if (access(path.ptr, F_OK) == 0)
            continue;
        if ((error = cairn__sync_get_small(p->r, k.keys[i], &b)) < 0)
            break;
        {
            char *dir = strdup(path.ptr), *s = dir ? strrchr(dir, '/') : NULL;
            if (!s) {
                free(dir);
                error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
                break;
            }
            *s = '\0';
            error = cairn_fs_mkdir_p(dir);
            free(dir);
        }
        if (!error && (error = cairn_fs_write_atomic(path.ptr, b.ptr, b.len, 0644)) == 0)
            p->st->signatures_new++;
    }
    cairn__sync_keys_free(&k);
    cairn_buf_release(&b);
    cairn_buf_release(&path);
    return error;
}

/*
 * Whether a remote key's model and alias or tag are names the CLI accepts;
 * a key that is not is skipped with a warning (it could never be named
 * here, and may be crafted to confuse a listing or a terminal).
 */
static int names_valid(struct pull *p, const char *key, const char *model, const char *name)
{
    char q[CAIRN_REMOTE_KEY_MAX + 1];
    if (cairn_name_valid(model, "model name") == 0 && cairn_name_valid(name, "name") == 0)
        return 1;
    cairn_warn("ignoring '%s' on '%s': %s", cairn_text_quote(q, sizeof(q), key), p->name,
               cairn_error_last());
    cairn_error_clear();
    return 0;
}

static int pull_tags(struct pull *p)
{
    struct cairn__sync_keys k;
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error;

    if ((error = cairn__sync_list(&k, p->r, "tags/")) < 0)
        return error;
    for (size_t i = 0; i < k.n && !error; i++) {
        char model[65], tag[65];
        const char *rest = k.keys[i] + 5, *slash = strchr(rest, '/');
        size_t ml = slash ? (size_t)(slash - rest) : 0, tl;
        struct cairn_version lv;
        json_t *o;
        const char *vs;
        cairn_oid id, have;

        if (!slash || ml >= sizeof(model) || (tl = strlen(slash + 1)) < 6 ||
            tl - 5 >= sizeof(tag) || strcmp(slash + 1 + tl - 5, ".json"))
            continue;
        memcpy(model, rest, ml);
        model[ml] = '\0';
        memcpy(tag, slash + 1, tl - 5);
        tag[tl - 5] = '\0';
        if (!names_valid(p, k.keys[i], model, tag))
            continue;
        if (cairn_registry_tag_get(p->reg, model, tag, &have) == 0)
            continue;
        cairn_error_clear();
        if ((error = cairn__sync_get_small(p->r, k.keys[i], &b)) < 0)
            break;
        o = json_loadb(b.ptr, b.len, JSON_REJECT_DUPLICATES, NULL);
        vs = o ? jstr(o, "version") : NULL;
        if (o && ((jstr(o, "model") && strcmp(jstr(o, "model"), model)) ||
                  (jstr(o, "tag") && strcmp(jstr(o, "tag"), tag))))
            vs = NULL; /* a body that names another model or tag than its key */
        if (vs && cairn_oid_parse(&id, vs) == 0 &&
            cairn_registry_version_get(p->reg, &id, &lv) == 0) {
            if (!strcmp(lv.model, model) &&
                (error = cairn_registry_tag_add(p->reg, model, tag, &id,
                                                cairn_repo_user(p->repo))) == 0)
                p->st->tags_new++;
            cairn_version_release(&lv);
        }
        cairn_error_clear();
        json_decref(o);
    }
    cairn__sync_keys_free(&k);
    cairn_buf_release(&b);
    return error;
}

struct track {
    char model[65], alias[65];
    char key[CAIRN_REMOTE_KEY_MAX + 1];
    cairn_oid version;
};
struct tracks {
    struct track *v;
    size_t n, cap;
};

static int track_cb(const struct cairn_tracking_ref *t, void *payload)
{
    struct tracks *l = payload;
    if (CAIRN_ARRAY_GROW(l->v, l->cap, l->n) < 0)
        return CAIRN_ENOMEM;
    snprintf(l->v[l->n].model, sizeof(l->v[0].model), "%s", t->model);
    snprintf(l->v[l->n].alias, sizeof(l->v[0].alias), "%s", t->alias);
    snprintf(l->v[l->n].key, sizeof(l->v[0].key), "%s", t->key ? t->key : "");
    l->v[l->n++].version = t->version;
    return 0;
}

/* The model of version `id`: here, or in the remote's version objects. */
static int version_model(const struct pull *p, const cairn_oid *id, char out[65])
{
    struct cairn_version lv;
    if (cairn_registry_version_get(p->reg, id, &lv) == 0) {
        snprintf(out, 65, "%s", lv.model);
        cairn_version_release(&lv);
        return 1;
    }
    cairn_error_clear();
    for (size_t i = 0; i < p->nvers; i++)
        if (!cairn_oid_cmp(&p->vers[i].id, id)) {
            snprintf(out, 65, "%s", p->vers[i].model);
            return 1;
        }
    return 0;
}

/*
 * Move the local alias to the remote's head when that is a fast-forward:
 * the local alias is unset, or it is still where the remote had it when we
 * last pushed or pulled and the remote's head descends from that entry.
 * Anything else (a rewritten history, two writers racing on one number)
 * leaves the local alias and says so.
 */
static int apply_alias(struct pull *p, const struct tracks *old, const char *model,
                       const char *alias, const struct cairn__alias_head *h)
{
    const struct track *t = NULL;
    struct cairn_version lv;
    cairn_oid local;
    char hex[CAIRN_OID_HEXSZ + 1], reason[128], subject[160], details[200], owner[65];
    int error, have_local;
    bool descends = true;

    if (!version_model(p, &h->version, owner)) {
        cairn_warn(
            "ignoring alias '%s@%s' on '%s': it names version %.12s, which the remote"
            " does not have",
            model, alias, p->name, cairn_oid_fmt(hex, &h->version));
        return 0;
    }
    if (strcmp(owner, model)) {
        cairn_warn("ignoring alias '%s@%s' on '%s': it names a version of model '%s'", model, alias,
                   p->name, owner);
        return 0;
    }
    for (size_t i = 0; i < old->n; i++)
        if (!strcmp(old->v[i].model, model) && !strcmp(old->v[i].alias, alias))
            t = &old->v[i];
    if (t && *t->key && strcmp(t->key, h->key) &&
        (error = cairn__sync_alias_descends(&descends, p->r, model, alias, h, t->key)) < 0)
        return error;
    if ((error = cairn_registry_tracking_set(p->reg, p->name, model, alias, &h->version, h->key)) <
        0)
        return error;
    if (cairn_registry_version_get(p->reg, &h->version, &lv) < 0) {
        cairn_error_clear();
        return 0; /* not pulled: only the tracking alias moves */
    }
    have_local = cairn_registry_alias_get(p->reg, model, alias, &local) == 0;
    cairn_error_clear();
    if (have_local && !cairn_oid_cmp(&local, &h->version))
        goto done;
    if (have_local && !(t && !cairn_oid_cmp(&local, &t->version))) {
        cairn_warn("alias '%s@%s' differs from '%s/%s' (%s@v%d); left as it is", model, alias,
                   p->name, alias, model, lv.number);
        goto done;
    }
    if (have_local && (!descends || h->tied)) {
        cairn_warn(
            "alias '%s@%s' on '%s' (%s@v%d) does not follow from what was last seen there"
            " (%s); left as it is",
            model, alias, p->name, model, lv.number,
            h->tied ? "two writers moved it at once" : "its history was rewritten");
        goto done;
    }
    snprintf(reason, sizeof(reason), "pull from '%s'", p->name);
    if ((error = cairn_registry_begin(p->reg)) < 0)
        goto done;
    if ((error = cairn_registry_alias_set(p->reg, model, alias, &h->version,
                                          cairn_repo_user(p->repo), reason)) >= 0) {
        snprintf(subject, sizeof(subject), "%s@%s", model, alias);
        snprintf(details, sizeof(details), "{\"id\":\"%s\",\"remote\":\"%s\"}",
                 cairn_oid_fmt(hex, &h->version), p->name);
        error = cairn_registry_audit_append(p->reg, cairn_repo_user(p->repo), "alias", subject,
                                            details);
    }
    if (error < 0) {
        cairn_registry_rollback(p->reg);
        goto done;
    }
    if ((error = cairn_registry_commit(p->reg)) == 0)
        p->st->aliases_updated++;
done:
    cairn_version_release(&lv);
    return error;
}

static int pull_aliases(struct pull *p)
{
    struct cairn__sync_keys k;
    struct tracks old = { 0 };
    int error;

    if ((error = cairn_registry_tracking_list(p->reg, p->name, track_cb, &old)) < 0)
        return error;
    if ((error = cairn__sync_list(&k, p->r, "aliases/")) < 0)
        goto done;
    for (size_t i = 0, end; i < k.n && !error; i = end) {
        /* aliases/MODEL/ALIAS/SEQ-WRITER.json, grouped by MODEL/ALIAS/. */
        const char *rest = k.keys[i] + 8, *s1 = strchr(rest, '/'),
                   *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
        char model[65], alias[65];
        struct cairn__alias_head h;
        size_t gl;

        if (!s1 || !s2 || (size_t)(s1 - rest) >= sizeof(model) ||
            (size_t)(s2 - s1 - 1) >= sizeof(alias)) {
            end = i + 1;
            continue;
        }
        gl = (size_t)(s2 + 1 - k.keys[i]);
        for (end = i + 1; end < k.n && !strncmp(k.keys[end], k.keys[i], gl); end++)
            ;
        memcpy(model, rest, (size_t)(s1 - rest));
        model[s1 - rest] = '\0';
        memcpy(alias, s1 + 1, (size_t)(s2 - s1 - 1));
        alias[s2 - s1 - 1] = '\0';
        if (!names_valid(p, k.keys[i], model, alias))
            continue;
        {
            const char *prefer = NULL;
            for (size_t j = 0; j < old.n; j++)
                if (!strcmp(old.v[j].model, model) && !strcmp(old.v[j].alias, alias))
                    prefer = old.v[j].key;
            error = cairn__sync_alias_head(&h, p->r, p->name, model, alias, k.keys + i, end - i,
                                           prefer);
        }
        if (!error && h.found)
            error = apply_alias(p, &old, model, alias, &h);
    }
    cairn__sync_keys_free(&k);
done:
    free(old.v);
    return error;
}

/* ---- the whole pull ----------------------------------------------------- */

int cairn_pull(struct cairn_repo *repo, const struct cairn_pull_opts *opts,
               struct cairn_pull_stats *out)
{
    struct pull p;
    struct cairn_buf cache = CAIRN_BUF_INIT, tmp = CAIRN_BUF_INIT;
    uint64_t sent;
    int error, locked = 0;

    memset(&p, 0, sizeof(p));
    memset(out, 0, sizeof(*out));
    p.repo = repo;
    p.store = cairn_repo_store(repo);
    p.reg = cairn_repo_registry(repo);
    p.o = opts;
    p.st = out;
    if ((error = cairn_repo_remote_open(&p.r, &p.name, repo, opts->remote)) < 0)
        goto done;
    if ((error = cairn__repo_lock(repo, 0)) < 0)
        goto done;
    locked = 1;
    if ((error = cairn__sync_dir(&cache, repo, p.name, "packs")) < 0 ||
        (error = cairn__sync_dir(&tmp, repo, p.name, "tmp")) < 0)
        goto done;
    p.tmpdir = tmp.ptr;
    if ((error = load_versions(&p)) < 0 || (error = select_versions(&p)) < 0 ||
        (error = cairn__rindex_load(&p.rix, p.r, cache.ptr)) < 0 ||
        (error = fetch_content(&p)) < 0 || (error = insert_versions(&p)) < 0 ||
        (error = pull_signatures(&p)) < 0 || (error = pull_tags(&p)) < 0 ||
        (error = pull_aliases(&p)) < 0)
        goto done;
done:
    if (p.r)
        cairn_remote_stats(p.r, &sent, &out->bytes_received);
    if (locked)
        cairn__repo_unlock(repo);
    for (size_t i = 0; i < p.nvers; i++) {
        json_decref(p.vers[i].obj);
        json_decref(p.vers[i].rec);
    }
    free(p.vers);
    cairn__rindex_release(&p.rix);
    free(p.name);
    cairn_remote_free(p.r);
    cairn_buf_release(&cache);
    cairn_buf_release(&tmp);
    return error;
}
