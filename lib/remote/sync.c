/*
 * What push and pull share: opening a configured remote, listing keys,
 * reading small objects, and the remote's chunk index.
 *
 * The chunk index is the union of the remote's idx files. Each idx is
 * downloaded once and kept under .cairn/remotes/NAME/packs/ (packs are
 * immutable and named by the hash of their idx entries, so a cached idx
 * never goes stale); later pushes and pulls only list packs/ and fetch the
 * idx files they have not seen. Every idx is validated in full (magic,
 * trailer hash, sorted ids, entries inside the pack, name = hash of the
 * entry table) before any of its entries is believed.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/registry.h"
#include "cairn/remote.h"
#include "cairn/repo.h"
#include "remote/sync.h"
#include "util/fs.h"
#include "util/hash.h"

/* Largest idx we accept: far above what a 64 MiB pack needs. */
#define IDX_MAX ((size_t)400 << 20)

struct pick_only {
    char name[65];
    int count;
};

static int pick_cb(const struct cairn_remote_config *c, void *payload)
{
    struct pick_only *p = payload;
    if (p->count++ == 0)
        snprintf(p->name, sizeof(p->name), "%s", c->name);
    return 0;
}

int cairn__sync_open(struct cairn_remote **out, char **name_out, struct cairn_repo *repo,
                     const char *name, int create)
{
    struct cairn_registry *reg = cairn_repo_registry(repo);
    struct cairn_remote_config cfg;
    struct cairn_remote_opts o;
    struct pick_only p;
    int error;

    *out = NULL;
    if (name_out)
        *name_out = NULL;
    if (!name) {
        memset(&p, 0, sizeof(p));
        if ((error = cairn_registry_remote_list(reg, pick_cb, &p)) < 0)
            return error;
        if (p.count == 0)
            return cairn_error_set(CAIRN_ENOTFOUND,
                                   "no remote configured (add one with 'cairn remote add')");
        name = "origin";
        if (p.count == 1)
            name = p.name;
    }
    if ((error = cairn_registry_remote_get(reg, name, &cfg)) < 0) {
        if (error == CAIRN_ENOTFOUND && !strcmp(name, "origin"))
            cairn_error_set(CAIRN_ENOTFOUND,
                            "no remote 'origin' and several others: name the remote");
        return error;
    }
    if (create && !strncmp(cfg.url, "file://", 7)) {
        /* A file:// remote is created by its first push, like a bare directory. */
        char *scheme = NULL, *dir = NULL, *prefix = NULL;
        if ((error = cairn_remote_parse_url(&scheme, &dir, &prefix, cfg.url)) == 0)
            error = cairn_fs_mkdir_p(dir);
        free(scheme);
        free(dir);
        free(prefix);
        if (error < 0) {
            cairn_remote_config_release(&cfg);
            return error;
        }
    }
    memset(&o, 0, sizeof(o));
    o.endpoint = cfg.endpoint;
    o.region = cfg.region;
    o.path_style = cfg.path_style;
    o.concurrency = cfg.concurrency;
    error = cairn_remote_open(out, cfg.url, &o);
    if (!error && name_out && !(*name_out = strdup(cfg.name))) {
        cairn_remote_free(*out);
        *out = NULL;
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    cairn_remote_config_release(&cfg);
    return error;
}

int cairn_repo_remote_open(struct cairn_remote **out, char **name_out, struct cairn_repo *repo,
                           const char *name)
{
    return cairn__sync_open(out, name_out, repo, name, 0);
}

/* ---- keys and small objects ------------------------------------------- */

static int list_cb(void *payload, const char *key, uint64_t size)
{
    struct cairn__sync_keys *k = payload;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        char **nk = realloc(k->keys, cap * sizeof(*nk));
        uint64_t *ns;
        if (!nk)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory listing a remote");
        k->keys = nk;
        if (!(ns = realloc(k->sizes, cap * sizeof(*ns))))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory listing a remote");
        k->sizes = ns;
        k->cap = cap;
    }
    if (!(k->keys[k->n] = strdup(key)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory listing a remote");
    k->sizes[k->n++] = size;
    return 0;
}

int cairn__sync_list(struct cairn__sync_keys *out, struct cairn_remote *r, const char *prefix)
{
    memset(out, 0, sizeof(*out));
    return cairn_remote_list(r, prefix, list_cb, out);
}

void cairn__sync_keys_free(struct cairn__sync_keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->keys[i]);
    free(k->keys);
    free(k->sizes);
    memset(k, 0, sizeof(*k));
}

static int buf_sink(void *payload, const void *data, size_t len)
{
    return cairn_buf_put(payload, data, len);
}

int cairn__sync_get_small(struct cairn_remote *r, const char *key, struct cairn_buf *out)
{
    cairn_buf_clear(out);
    if (!out->limit || out->limit > CAIRN__SYNC_SMALL_MAX)
        out->limit = CAIRN__SYNC_SMALL_MAX;
    return cairn_remote_get_range(r, key, 0, CAIRN_REMOTE_TO_END, buf_sink, out);
}

int cairn__sync_dir(struct cairn_buf *out, struct cairn_repo *repo, const char *remote,
                    const char *sub)
{
    int error;
    cairn_buf_clear(out);
    if ((error = cairn_buf_printf(out, "%s/remotes/%s%s%s", cairn_repo_cairndir(repo), remote,
                                  sub ? "/" : "", sub ? sub : "")) < 0)
        return error;
    return cairn_fs_mkdir_p(out->ptr);
}

/* ---- the remote chunk index ------------------------------------------- */

static size_t oid_hash(const cairn_oid *id)
{
    return (size_t)cairn_get_u64le(id->id);
}

static int rindex_grow(struct cairn__rindex *ix)
{
    size_t ncap = ix->nslots ? ix->nslots * 2 : 1024;
    uint32_t *ns = calloc(ncap, sizeof(*ns));

    if (!ns)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory indexing a remote");
    for (size_t i = 0; i < ix->n; i++) {
        size_t j = oid_hash(&ix->entries[i].e.id) & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = (uint32_t)(i + 1);
    }
    free(ix->slots);
    ix->slots = ns;
    ix->nslots = ncap;
    return 0;
}

const struct cairn__rentry *cairn__rindex_find(const struct cairn__rindex *ix, const cairn_oid *id)
{
    size_t mask, j;

    if (!ix->nslots)
        return NULL;
    mask = ix->nslots - 1;
    for (j = oid_hash(id) & mask; ix->slots[j]; j = (j + 1) & mask) {
        const struct cairn__rentry *e = &ix->entries[ix->slots[j] - 1];
        if (!memcmp(e->e.id.id, id->id, CAIRN_OID_RAWSZ))
            return e;
    }
    return NULL;
}

int cairn__rindex_add_idx(struct cairn__rindex *ix, const cairn_oid *name, uint64_t pack_size,
                          const void *idx, uint32_t count)
{
    uint32_t pack;
    int error;

    if (ix->npacks == ix->packs_cap) {
        size_t cap = ix->packs_cap ? ix->packs_cap * 2 : 16;
        cairn_oid *np = realloc(ix->packs, cap * sizeof(*np));
        uint64_t *nsz;
        if (!np)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory indexing a remote");
        ix->packs = np;
        if (!(nsz = realloc(ix->pack_sizes, cap * sizeof(*nsz))))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory indexing a remote");
        ix->pack_sizes = nsz;
        ix->packs_cap = cap;
    }
    pack = (uint32_t)ix->npacks;
    ix->packs[pack] = *name;
    ix->pack_sizes[ix->npacks++] = pack_size;
    for (uint32_t i = 0; i < count; i++) {
        struct cairn__rentry re;
        size_t j, mask;

        cairn__idx_entry(&re.e, idx, i);
        re.pack = pack;
        if (cairn__rindex_find(ix, &re.e.id))
            continue; /* the first copy serves, as in the local store */
        if ((ix->n + 1) * 10 > ix->nslots * 7 && (error = rindex_grow(ix)) < 0)
            return error;
        if (CAIRN_ARRAY_GROW(ix->entries, ix->cap, ix->n) < 0)
            return CAIRN_ENOMEM;
        ix->entries[ix->n] = re;
        mask = ix->nslots - 1;
        for (j = oid_hash(&re.e.id) & mask; ix->slots[j]; j = (j + 1) & mask)
            ;
        ix->slots[j] = (uint32_t)(++ix->n);
    }
    return 0;
}

void cairn__rindex_release(struct cairn__rindex *ix)
{
    free(ix->entries);
    free(ix->slots);
    free(ix->packs);
    free(ix->pack_sizes);
    memset(ix, 0, sizeof(*ix));
}

/* Size of packs/pack-<name>.pack in the listing, or UINT64_MAX when it is not there. */
static uint64_t listed_pack_size(const struct cairn__sync_keys *k, const cairn_oid *name)
{
    char hex[CAIRN_OID_HEXSZ + 1], want[CAIRN_OID_HEXSZ + 32];
    snprintf(want, sizeof(want), "packs/pack-%s.pack", cairn_oid_fmt(hex, name));
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->keys[i], want))
            return k->sizes[i];
    return UINT64_MAX;
}

int cairn__rindex_load(struct cairn__rindex *ix, struct cairn_remote *r, const char *cache_dir)
{
    struct cairn__sync_keys keys;
    struct cairn_buf idx = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
    int error;

    memset(ix, 0, sizeof(*ix));
    if ((error = cairn__sync_list(&keys, r, "packs/")) < 0)
        goto done;
    cairn_buf_init(&idx, IDX_MAX);
    for (size_t i = 0; i < keys.n; i++) {
        const char *base = keys.keys[i] + strlen("packs/");
        uint64_t pack_size, recorded;
        cairn_oid name, computed;
        uint32_t count;
        int cached = 0;

        if (strchr(base, '/') || !cairn__pack_parse_name(&name, base, "idx"))
            continue;
        if ((pack_size = listed_pack_size(&keys, &name)) == UINT64_MAX)
            continue; /* an idx without its pack: not ours to judge, skip */
        if ((error = cairn_fs_join(&path, cache_dir, base)) < 0)
            goto done;
        cairn_buf_clear(&idx);
        if (access(path.ptr, F_OK) == 0 && cairn_fs_read_file(&idx, path.ptr, IDX_MAX) == 0)
            cached = 1;
        cairn_error_clear();
        if (!cached) {
            cairn_buf_clear(&idx);
            if ((error = cairn_remote_get_range(r, keys.keys[i], 0, CAIRN_REMOTE_TO_END, buf_sink,
                                                &idx)) < 0)
                goto done;
        }
        if ((error = cairn__idx_validate(&count, &recorded, &computed, idx.ptr, idx.len,
                                         pack_size)) < 0 ||
            cairn_oid_cmp(&computed, &name) != 0) {
            if (cached) {
                /* A damaged cache entry: forget it and read the remote's. */
                unlink(path.ptr);
                cairn_error_clear();
                i--;
                continue;
            }
            if (error == 0)
                cairn_error_set(CAIRN_ECORRUPT, "does not match its name");
            cairn_error_prefix("remote object '%s' is corrupt", keys.keys[i]);
            error = CAIRN_ECORRUPT;
            goto done;
        }
        if (!cached && (error = cairn_fs_write_atomic(path.ptr, idx.ptr, idx.len, 0644)) < 0)
            goto done;
        if ((error = cairn__rindex_add_idx(ix, &name, pack_size, idx.ptr, count)) < 0)
            goto done;
    }
done:
    cairn__sync_keys_free(&keys);
    cairn_buf_release(&idx);
    cairn_buf_release(&path);
    if (error < 0)
        cairn__rindex_release(ix);
    return error;
}

/* ---- aliases ------------------------------------------------------------ */

int cairn__sync_version_parse(struct cairn__remote_version *out, const char *key, const void *data,
                              size_t len)
{
    const char *slash = strrchr(key, '/'), *record, *model, *tree, *kind;
    char idhex[CAIRN_OID_HEXSZ + 1];
    json_t *num;
    cairn_oid got;

    memset(out, 0, sizeof(*out));
    if (!slash || strlen(slash + 1) != CAIRN_OID_HEXSZ + 5 ||
        strcmp(slash + 1 + CAIRN_OID_HEXSZ, ".json"))
        goto bad;
    memcpy(idhex, slash + 1, CAIRN_OID_HEXSZ);
    idhex[CAIRN_OID_HEXSZ] = '\0';
    if (cairn_oid_parse(&out->id, idhex) < 0)
        goto bad;
    out->obj = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    record = json_string_value(json_object_get(out->obj, "record"));
    if (record)
        cairn_hash(&got, record, strlen(record));
    if (!record || cairn_oid_cmp(&got, &out->id) != 0) {
        json_decref(out->obj);
        memset(out, 0, sizeof(*out));
        return cairn_error_set(CAIRN_ECORRUPT,
                               "remote object '%s' is corrupt: its record does not hash to its id",
                               key);
    }
    out->rec = json_loads(record, JSON_REJECT_DUPLICATES, NULL);
    model = json_string_value(json_object_get(out->rec, "model"));
    tree = json_string_value(json_object_get(out->rec, "tree"));
    kind = json_string_value(json_object_get(out->rec, "kind"));
    if (!json_is_object(out->rec) || !model || cairn_name_valid(model, "model name") < 0 || !tree ||
        cairn_oid_parse(&out->tree, tree) < 0 ||
        !json_is_integer(json_object_get(out->rec, "time_ns")) ||
        (kind && strcmp(kind, "model") && strcmp(kind, "dataset")))
        goto bad;
    snprintf(out->model, sizeof(out->model), "%s", model);
    out->time_ns = (long long)json_integer_value(json_object_get(out->rec, "time_ns"));
    num = json_object_get(out->obj, "number");
    if (json_is_integer(num) && json_integer_value(num) > 0 &&
        json_integer_value(num) <= CAIRN__SYNC_NUMBER_MAX)
        out->number = (int)json_integer_value(num);
    return 0;
bad:
    json_decref(out->obj);
    json_decref(out->rec);
    memset(out, 0, sizeof(*out));
    cairn_error_clear();
    return cairn_error_set(CAIRN_ECORRUPT, "remote object '%s': malformed record", key);
}

unsigned long long cairn__sync_alias_seq(const char *key, const char *prefix)
{
    size_t pl = strlen(prefix);
    const char *name = key + pl;
    unsigned long long seq = 0;

    if (strncmp(key, prefix, pl) || strlen(name) != 16 + 1 + 16 + 5 || name[16] != '-' ||
        strcmp(name + 33, ".json"))
        return 0;
    for (int i = 0; i < 16; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        seq = seq * 10 + (unsigned)(name[i] - '0');
    }
    for (int i = 17; i < 33; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    return seq;
}

int cairn__sync_alias_parse(struct cairn__alias_head *out, const char *key, const char *model,
                            const char *alias, const char *json, size_t len)
{
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    const char *v = root ? json_string_value(json_object_get(root, "version")) : NULL;
    const char *m = root ? json_string_value(json_object_get(root, "model")) : NULL;
    const char *a = root ? json_string_value(json_object_get(root, "alias")) : NULL;
    json_t *prev = root ? json_object_get(root, "prev") : NULL;
    const char *slash = strrchr(key, '/');
    char prefix[CAIRN_REMOTE_KEY_MAX + 1];
    int error = 0;

    memset(out, 0, sizeof(*out));
    if (!slash || strlen(key) > CAIRN_REMOTE_KEY_MAX)
        goto bad;
    snprintf(prefix, sizeof(prefix), "%.*s", (int)(slash + 1 - key), key);
    if (!v || cairn_oid_parse(&out->version, v) < 0 ||
        !(out->seq = cairn__sync_alias_seq(key, prefix)))
        goto bad;
    if ((model && (!m || strcmp(m, model))) || (alias && (!a || strcmp(a, alias))))
        goto bad;
    if (json_is_string(prev)) {
        const char *pk = json_string_value(prev);
        if (strlen(pk) > CAIRN_REMOTE_KEY_MAX)
            goto bad;
        snprintf(out->prev, sizeof(out->prev), "%s", pk);
    } else if (prev && !json_is_null(prev)) {
        goto bad;
    }
    snprintf(out->key, sizeof(out->key), "%s", key);
    out->found = 1;
    goto done;
bad:
    memset(out, 0, sizeof(*out));
    error = cairn_error_set(CAIRN_ECORRUPT, "remote alias entry '%s' is malformed", key);
done:
    json_decref(root);
    return error;
}

struct alias_cand {
    const char *key;
    unsigned long long seq;
    int bad;
};

/* End of the unbroken run 1, 2, 3, ... over the candidates not marked bad. */
static unsigned long long run_end(const struct alias_cand *c, size_t n)
{
    unsigned long long top = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].bad || c[i].seq <= top)
            continue;
        if (c[i].seq != top + 1)
            break; /* sorted by key, so by number: a gap ends the run */
        top = c[i].seq;
    }
    return top;
}

int cairn__sync_alias_head(struct cairn__alias_head *out, struct cairn_remote *r,
                           const char *remote, const char *model, const char *alias,
                           char *const *keys, size_t n, const char *prefer)
{
    struct alias_cand *c = n ? calloc(n, sizeof(*c)) : NULL;
    struct cairn_buf b = CAIRN_BUF_INIT;
    char prefix[CAIRN_REMOTE_KEY_MAX + 1];
    size_t nc = 0;
    int error = 0, warned_gap = 0;

    memset(out, 0, sizeof(*out));
    if (n && !c)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    snprintf(prefix, sizeof(prefix), "aliases/%s/%s/", model, alias);
    for (size_t i = 0; i < n; i++) {
        unsigned long long seq = cairn__sync_alias_seq(keys[i], prefix);
        if (!seq) {
            cairn_warn("ignoring '%s' on '%s': not an alias entry name", keys[i], remote);
            continue;
        }
        c[nc].key = keys[i];
        c[nc++].seq = seq;
    }
    /* Try the head of the run; an entry that breaks the rule is dropped and the run recomputed. */
    for (;;) {
        unsigned long long top = run_end(c, nc);
        struct cairn__alias_head h;
        size_t pick = nc, ties = 0;

        if (!top)
            break;
        for (size_t i = 0; i < nc; i++) {
            if (c[i].bad || c[i].seq != top)
                continue;
            ties++;
            if (pick == nc || !(prefer && !strcmp(c[pick].key, prefer)))
                pick = i;
        }
        if (!warned_gap) {
            for (size_t i = 0; i < nc; i++)
                if (!c[i].bad && c[i].seq > top + 1) {
                    cairn_warn(
                        "ignoring alias entry '%s' on '%s': its sequence number jumps"
                        " past %llu",
                        c[i].key, remote, top);
                    warned_gap = 1;
                    break;
                }
        }
        if ((error = cairn__sync_get_small(r, c[pick].key, &b)) == CAIRN_ENOTFOUND) {
            cairn_error_clear(); /* removed since the listing (a writer that lost a race) */
            c[pick].bad = 1;
            continue;
        }
        if (error < 0)
            break;
        error = cairn__sync_alias_parse(&h, c[pick].key, model, alias, b.ptr, b.len);
        if (error == 0) {
            /* prev must be an entry one below, or nothing for the first. */
            int prev_ok = top == 1 ? !*h.prev : 0;
            for (size_t i = 0; i < nc && !prev_ok; i++)
                prev_ok = !c[i].bad && c[i].seq == top - 1 && !strcmp(c[i].key, h.prev);
            if (prev_ok) {
                *out = h;
                out->tied = ties > 1;
                break;
            }
            cairn_error_set(CAIRN_ECORRUPT, "its prev is not an entry one below it");
        }
        cairn_warn("ignoring alias entry '%s' on '%s': %s", c[pick].key, remote,
                   cairn_error_last());
        cairn_error_clear();
        error = 0;
        c[pick].bad = 1;
    }
    free(c);
    cairn_buf_release(&b);
    return error;
}

int cairn__sync_alias_descends(bool *out, struct cairn_remote *r, const char *model,
                               const char *alias, const struct cairn__alias_head *head,
                               const char *ancestor)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    struct cairn__alias_head cur = *head;
    char prefix[CAIRN_REMOTE_KEY_MAX + 1];
    unsigned long long floor;
    int error = 0;

    *out = false;
    snprintf(prefix, sizeof(prefix), "aliases/%s/%s/", model, alias);
    floor = cairn__sync_alias_seq(ancestor, prefix);
    while (floor && cur.seq > floor && *cur.prev) {
        char key[CAIRN_REMOTE_KEY_MAX + 1];
        if (cairn__sync_alias_seq(cur.prev, prefix) != cur.seq - 1)
            break;
        snprintf(key, sizeof(key), "%s", cur.prev);
        if ((error = cairn__sync_get_small(r, key, &b)) < 0 ||
            (error = cairn__sync_alias_parse(&cur, key, model, alias, b.ptr, b.len)) < 0)
            break;
    }
    if (!error)
        *out = floor && !strcmp(cur.key, ancestor);
    if (error == CAIRN_ENOTFOUND || error == CAIRN_ECORRUPT) {
        cairn_error_clear(); /* a broken chain does not descend */
        error = 0;
    }
    cairn_buf_release(&b);
    return error;
}
