/*
 * Canonical encodings of file and tree objects; see object.h. Decoders take
 * bytes from the store (already BLAKE3-verified) or from a remote, and treat
 * them as hostile anyway: every count is bounded before anything is
 * allocated from it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/object.h"
#include "store/layout.h"
#include "util/fs.h"

void cairn_file_object_release(struct cairn_file_object *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nregions; i++)
        free(f->regions[i].name);
    free(f->regions);
    free(f->chunks);
    memset(f, 0, sizeof(*f));
}

int cairn_file_object_add_chunk(struct cairn_file_object *f, const cairn_oid *id, uint32_t len)
{
    int error = CAIRN_ARRAY_GROW(f->chunks, f->chunks_cap, f->nchunks);
    if (error < 0)
        return error;
    f->chunks[f->nchunks].id = *id;
    f->chunks[f->nchunks].len = len;
    f->chunks[f->nchunks].offset =
        f->nchunks ? f->chunks[f->nchunks - 1].offset + f->chunks[f->nchunks - 1].len : 0;
    f->nchunks++;
    return 0;
}

int cairn_file_object_add_region(struct cairn_file_object *f, const struct cairn_file_region *r)
{
    int error = CAIRN_ARRAY_GROW(f->regions, f->regions_cap, f->nregions);
    char *name = NULL;
    if (error < 0)
        return error;
    if (r->name && !(name = strdup(r->name)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    f->regions[f->nregions] = *r;
    f->regions[f->nregions].name = name;
    f->nregions++;
    return 0;
}

const struct cairn_file_region *cairn_file_object_region(const struct cairn_file_object *f,
                                                         const char *name)
{
    for (size_t i = 0; i < f->nregions; i++)
        if (f->regions[i].name && !strcmp(f->regions[i].name, name))
            return &f->regions[i];
    return NULL;
}

static int put_str(struct cairn_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    int error = cairn_buf_put_varint(b, n);
    return error ? error : cairn_buf_put(b, s ? s : "", n);
}

int cairn_file_object_encode(struct cairn_buf *out, const struct cairn_file_object *f)
{
    int error = cairn_buf_put(out, CAIRN_FILE_MAGIC, 8);
    if (!error)
        error = cairn_buf_put_varint(out, f->size);
    if (!error)
        error = cairn_buf_put(out, f->digest.id, CAIRN_OID_RAWSZ);
    if (!error)
        error = cairn_buf_put_varint(out, (uint64_t)f->format);
    if (!error)
        error = cairn_buf_put_varint(out, f->nregions);
    for (size_t i = 0; i < f->nregions && !error; i++) {
        const struct cairn_file_region *r = &f->regions[i];
        if ((error = cairn_buf_put_varint(out, (uint64_t)r->kind)) < 0 ||
            (error = put_str(out, r->name)) < 0 ||
            (error = cairn_buf_put_varint(out, (uint64_t)r->dtype)) < 0 ||
            (error = cairn_buf_put_varint(out, r->group)) < 0 ||
            (error = cairn_buf_put_varint(out, r->offset)) < 0 ||
            (error = cairn_buf_put_varint(out, r->len)) < 0 ||
            (error = cairn_buf_put_varint(out, r->first_chunk)) < 0 ||
            (error = cairn_buf_put_varint(out, r->nchunks)) < 0)
            break;
        error = cairn_buf_put_varint(out, r->rank);
        for (unsigned d = 0; d < r->rank && d < 8 && !error; d++)
            error = cairn_buf_put_varint(out, r->shape[d]);
    }
    if (!error)
        error = cairn_buf_put_varint(out, f->nchunks);
    for (size_t i = 0; i < f->nchunks && !error; i++) {
        if (!(error = cairn_buf_put(out, f->chunks[i].id.id, CAIRN_OID_RAWSZ)))
            error = cairn_buf_put_varint(out, f->chunks[i].len);
    }
    return error;
}

static int bad(const char *what)
{
    return cairn_error_set(CAIRN_ECORRUPT, "damaged manifest: %s", what);
}

int cairn_file_object_decode(struct cairn_file_object *out, const void *data, size_t len)
{
    struct cairn_reader r;
    const void *p;
    uint64_t v, nregions, nchunks, total = 0;
    int error = 0;

    memset(out, 0, sizeof(*out));
    cairn_reader_init(&r, data, len);
    if (cairn_reader_bytes(&r, &p, 8) < 0 || memcmp(p, CAIRN_FILE_MAGIC, 8))
        return bad("not a file object");
    if (cairn_reader_varint(&r, &out->size) < 0 || cairn_reader_bytes(&r, &p, CAIRN_OID_RAWSZ) < 0)
        return bad("truncated file object");
    memcpy(out->digest.id, p, CAIRN_OID_RAWSZ);
    if (cairn_reader_varint(&r, &v) < 0 || v > 16)
        return bad("bad format");
    out->format = (int)v;
    if (cairn_reader_varint(&r, &nregions) < 0 || nregions > CAIRN_OBJECT_MAX_CHUNKS ||
        nregions > len)
        return bad("bad region count");
    for (uint64_t i = 0; i < nregions; i++) {
        struct cairn_file_region reg;
        uint64_t kind, nlen, dtype, group;
        memset(&reg, 0, sizeof(reg));
        if (cairn_reader_varint(&r, &kind) < 0 || kind > 1 || cairn_reader_varint(&r, &nlen) < 0 ||
            nlen > CAIRN_TENSOR_NAME_MAX || cairn_reader_bytes(&r, &p, nlen) < 0) {
            error = bad("truncated region");
            goto fail;
        }
        if (nlen) {
            if (memchr(p, 0, nlen) || !(reg.name = strndup(p, nlen))) {
                error = bad("bad region name");
                goto fail;
            }
        }
        if (cairn_reader_varint(&r, &dtype) < 0 || dtype > 1024 ||
            cairn_reader_varint(&r, &group) < 0 || group > 64 ||
            cairn_reader_varint(&r, &reg.offset) < 0 || cairn_reader_varint(&r, &reg.len) < 0 ||
            cairn_reader_varint(&r, &reg.first_chunk) < 0 ||
            cairn_reader_varint(&r, &reg.nchunks) < 0 || cairn_reader_varint(&r, &v) < 0 || v > 8) {
            free(reg.name);
            error = bad("truncated region");
            goto fail;
        }
        reg.rank = (unsigned)v;
        for (unsigned d = 0; d < reg.rank; d++) {
            if (cairn_reader_varint(&r, &reg.shape[d]) < 0) {
                free(reg.name);
                error = bad("truncated region shape");
                goto fail;
            }
        }
        reg.kind = (int)kind;
        reg.dtype = (int)dtype;
        reg.group = (unsigned)group;
        error = cairn_file_object_add_region(out, &reg);
        free(reg.name);
        if (error < 0)
            goto fail;
    }
    if (cairn_reader_varint(&r, &nchunks) < 0 || nchunks > CAIRN_OBJECT_MAX_CHUNKS ||
        nchunks > len / (CAIRN_OID_RAWSZ + 1)) {
        error = bad("bad chunk count");
        goto fail;
    }
    for (uint64_t i = 0; i < nchunks; i++) {
        cairn_oid id;
        if (cairn_reader_bytes(&r, &p, CAIRN_OID_RAWSZ) < 0 || cairn_reader_varint(&r, &v) < 0 ||
            v == 0 || v > UINT32_MAX) {
            error = bad("truncated chunk list");
            goto fail;
        }
        memcpy(id.id, p, CAIRN_OID_RAWSZ);
        total += v;
        if ((error = cairn_file_object_add_chunk(out, &id, (uint32_t)v)) < 0)
            goto fail;
    }
    if (r.pos != len) {
        error = bad("trailing bytes");
        goto fail;
    }
    if (total != out->size) {
        error = bad("chunk lengths do not add up to the file size");
        goto fail;
    }
    /* Regions must tile the file and point at whole, existing chunk runs. */
    {
        uint64_t off = 0, next_chunk = 0;
        for (size_t i = 0; i < out->nregions; i++) {
            const struct cairn_file_region *g = &out->regions[i];
            uint64_t sum = 0;
            if (g->offset != off || g->first_chunk != next_chunk || g->nchunks > nchunks ||
                g->first_chunk > nchunks - g->nchunks) {
                error = bad("regions do not tile the file");
                goto fail;
            }
            for (uint64_t c = 0; c < g->nchunks; c++)
                sum += out->chunks[g->first_chunk + c].len;
            if (sum != g->len) {
                error = bad("region length does not match its chunks");
                goto fail;
            }
            off += g->len;
            next_chunk += g->nchunks;
        }
        if (out->nregions && (off != out->size || next_chunk != nchunks)) {
            error = bad("regions do not cover the file");
            goto fail;
        }
    }
    return 0;
fail:
    cairn_file_object_release(out);
    return error;
}

int cairn_tree_add(struct cairn_tree *t, size_t *cap, const char *path, uint32_t mode,
                   uint64_t size, const cairn_oid *file, const cairn_oid *digest)
{
    struct cairn_tree_entry *e;
    int error = cairn_array_grow(&t->entries, cap, t->n, sizeof(*t->entries));
    if (error < 0)
        return error;
    e = &t->entries[t->n];
    if (!(e->path = strdup(path)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    e->mode = mode;
    e->size = size;
    e->file = *file;
    e->digest = *digest;
    t->n++;
    return 0;
}

void cairn_tree_release(struct cairn_tree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->entries[i].path);
    free(t->entries);
    t->entries = NULL;
    t->n = 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cairn_tree_entry *)a)->path,
                  ((const struct cairn_tree_entry *)b)->path);
}

int cairn_tree_sort(struct cairn_tree *t)
{
    if (t->n > 1)
        qsort(t->entries, t->n, sizeof(*t->entries), entry_cmp);
    for (size_t i = 1; i < t->n; i++)
        if (!strcmp(t->entries[i - 1].path, t->entries[i].path))
            return cairn_error_set(CAIRN_EINVALID, "path '%s' appears twice", t->entries[i].path);
    return 0;
}

const struct cairn_tree_entry *cairn_tree_find(const struct cairn_tree *t, const char *path)
{
    struct cairn_tree_entry key = { .path = (char *)path };
    if (!t->n)
        return NULL;
    return bsearch(&key, t->entries, t->n, sizeof(key), entry_cmp);
}

int cairn_tree_encode(struct cairn_buf *out, const struct cairn_tree *t)
{
    int error = cairn_buf_put(out, CAIRN_TREE_MAGIC, 8);
    if (!error)
        error = cairn_buf_put_varint(out, t->n);
    for (size_t i = 0; i < t->n && !error; i++) {
        const struct cairn_tree_entry *e = &t->entries[i];
        if ((error = put_str(out, e->path)) < 0 ||
            (error = cairn_buf_put_varint(out, e->mode)) < 0 ||
            (error = cairn_buf_put_varint(out, e->size)) < 0 ||
            (error = cairn_buf_put(out, e->file.id, CAIRN_OID_RAWSZ)) < 0)
            break;
        error = cairn_buf_put(out, e->digest.id, CAIRN_OID_RAWSZ);
    }
    return error;
}

int cairn_tree_decode(struct cairn_tree *out, const void *data, size_t len)
{
    struct cairn_reader r;
    const void *p;
    uint64_t n, plen, mode, size;
    size_t cap = 0;
    int error = 0;

    memset(out, 0, sizeof(*out));
    cairn_reader_init(&r, data, len);
    if (cairn_reader_bytes(&r, &p, 8) < 0 || memcmp(p, CAIRN_TREE_MAGIC, 8))
        return bad("not a tree object");
    if (cairn_reader_varint(&r, &n) < 0 || n > CAIRN_OBJECT_MAX_ENTRIES || n > len)
        return bad("bad entry count");
    for (uint64_t i = 0; i < n; i++) {
        char *path;
        cairn_oid file, digest;
        if (cairn_reader_varint(&r, &plen) < 0 || plen == 0 || plen > CAIRN_PATH_MAX ||
            cairn_reader_bytes(&r, &p, plen) < 0) {
            error = bad("truncated tree entry");
            goto fail;
        }
        if (memchr(p, 0, plen) || !(path = strndup(p, plen))) {
            error = bad("bad path");
            goto fail;
        }
        if (cairn_fs_path_valid(path) < 0) {
            char why[512];
            snprintf(why, sizeof(why), "%s", cairn_error_last());
            error = cairn_error_set(CAIRN_ECORRUPT, "unsafe path in manifest: %s", why);
            free(path);
            goto fail;
        }
        if (cairn_reader_varint(&r, &mode) < 0 || mode > 07777 ||
            cairn_reader_varint(&r, &size) < 0 || cairn_reader_bytes(&r, &p, CAIRN_OID_RAWSZ) < 0) {
            free(path);
            error = bad("truncated tree entry");
            goto fail;
        }
        memcpy(file.id, p, CAIRN_OID_RAWSZ);
        if (cairn_reader_bytes(&r, &p, CAIRN_OID_RAWSZ) < 0) {
            free(path);
            error = bad("truncated tree entry");
            goto fail;
        }
        memcpy(digest.id, p, CAIRN_OID_RAWSZ);
        if (mode != 0644 && mode != 0755) { /* regular files only: no setuid, no 0777 */
            error = cairn_error_set(CAIRN_ECORRUPT, "damaged manifest: mode %llo of '%s'",
                                    (unsigned long long)mode, path);
            free(path);
            goto fail;
        }
        error = cairn_tree_add(out, &cap, path, (uint32_t)mode, size, &file, &digest);
        free(path);
        if (error < 0)
            goto fail;
        if (i > 0 && strcmp(out->entries[i - 1].path, out->entries[i].path) >= 0) {
            error = bad("entries not sorted or duplicated");
            goto fail;
        }
    }
    if (r.pos != len) {
        error = bad("trailing bytes");
        goto fail;
    }
    return 0;
fail:
    cairn_tree_release(out);
    return error;
}
