/*
 * Tensor-level diff of one file between two versions (cairn diff --tensors).
 *
 * Which tensors were added, removed or changed comes from the file objects
 * alone: a tensor is unchanged when dtype, shape and every chunk id match.
 * For a changed tensor of the same dtype and shape the figures users ask
 * for - how many elements differ, and by how much at most - need the bytes,
 * so both tensors are decoded chunk by chunk from the store and compared in
 * step. Memory stays at one chunk per side (tensor pieces are 1 MiB) however
 * large the tensor; chunks with the same id at the same place are skipped
 * without decoding, so a tensor with one retrained piece costs one piece.
 *
 * Elements are compared bitwise (so -0.0 against 0.0 differs, and a NaN
 * against the same NaN does not); float types (F16, BF16, F32, F64) also get
 * the largest absolute difference as a double, where a NaN against anything
 * else counts as an infinite difference. Quantised GGML types are compared
 * per block, the smallest unit that decodes on its own.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "repo/repo_internal.h"
#include "store/layout.h"
#include "util/hash.h"

static void entry_of(struct cairn_tensor_entry *t, const struct cairn_file_region *r)
{
    const struct cairn_dtype_info *di = cairn_dtype_info(r->dtype);

    memset(t, 0, sizeof(*t));
    t->name = r->name ? r->name : "";
    t->dtype = di ? di->name : "?";
    t->rank = r->rank;
    memcpy(t->shape, r->shape, sizeof(t->shape));
    t->offset = r->offset;
    t->bytes = r->len;
    t->chunks = r->nchunks;
    t->chunk_ids = NULL; /* the callback gets no ids: they live in two objects */
}

static int same_shape(const struct cairn_file_region *a, const struct cairn_file_region *b)
{
    if (a->rank != b->rank)
        return 0;
    for (unsigned d = 0; d < a->rank && d < 8; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

static int same_chunks(const struct cairn_file_object *fa, const struct cairn_file_region *a,
                       const struct cairn_file_object *fb, const struct cairn_file_region *b)
{
    if (a->nchunks != b->nchunks)
        return 0;
    for (uint64_t i = 0; i < a->nchunks; i++)
        if (cairn_oid_cmp(&fa->chunks[a->first_chunk + i].id, &fb->chunks[b->first_chunk + i].id) ||
            fa->chunks[a->first_chunk + i].len != fb->chunks[b->first_chunk + i].len)
            return 0;
    return 1;
}

static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static double half_to_double(uint16_t h)
{
    int e = (h >> 10) & 0x1f;
    double m = h & 0x3ff, v;

    if (e == 0x1f)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -24);
    else
        v = ldexp(m + 1024.0, e - 25);
    return h & 0x8000 ? -v : v;
}

/* Element `p` of float dtype as a double. */
static double to_double(int dtype, const unsigned char *p)
{
    uint32_t u;
    uint64_t w = 0;
    float f;
    double d;

    switch (dtype) {
    case CAIRN_DT_F16:
        return half_to_double(get_u16(p));
    case CAIRN_DT_BF16:
        u = (uint32_t)get_u16(p) << 16;
        memcpy(&f, &u, 4);
        return f;
    case CAIRN_DT_F32:
        u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&f, &u, 4);
        return f;
    default: /* CAIRN_DT_F64 */
        for (int i = 7; i >= 0; i--)
            w = w << 8 | p[i];
        memcpy(&d, &w, 8);
        return d;
    }
}

static int is_float(int dtype)
{
    return dtype == CAIRN_DT_F16 || dtype == CAIRN_DT_BF16 || dtype == CAIRN_DT_F32 ||
           dtype == CAIRN_DT_F64;
}

/* One side of the comparison: the chunk under the cursor, decoded. */
struct cursor {
    const struct cairn_file_object *f;
    const struct cairn_file_region *r;
    uint64_t next;       /* index of the next chunk of the region to load */
    uint64_t start, end; /* tensor-relative byte range held in buf */
    struct cairn_buf buf;
};

static int cursor_load(struct cairn_repo *repo, struct cursor *c)
{
    const struct cairn_file_chunk *ch = &c->f->chunks[c->r->first_chunk + c->next];
    int error;

    cairn_buf_clear(&c->buf);
    if ((error = cairn_store_get(repo->store, &ch->id, &c->buf)) < 0)
        return error;
    if (c->buf.len != ch->len)
        return cairn_error_set(CAIRN_ECORRUPT, "chunk of tensor '%s' has %zu bytes, expected %u",
                               c->r->name ? c->r->name : "", c->buf.len, ch->len);
    c->start = c->end;
    c->end += ch->len;
    c->next++;
    return 0;
}

/* Skip the chunk under the cursor without reading it. */
static void cursor_skip(struct cursor *c)
{
    c->start = c->end;
    c->end += c->f->chunks[c->r->first_chunk + c->next].len;
    c->next++;
}

static int measure(struct cairn_repo *repo, struct cairn_tensor_change *out,
                   const struct cairn_file_object *fa, const struct cairn_file_region *ra,
                   const struct cairn_file_object *fb, const struct cairn_file_region *rb)
{
    const struct cairn_dtype_info *di = cairn_dtype_info(ra->dtype);
    struct cursor a = { fa, ra, 0, 0, 0, CAIRN_BUF_INIT }, b = { fb, rb, 0, 0, 0, CAIRN_BUF_INIT };
    const int flt = is_float(ra->dtype);
    unsigned unit;
    uint64_t pos = 0; /* bytes of the tensor compared so far */
    int error = 0;

    if (!di || di->block_bytes == 0)
        return cairn_error_set(CAIRN_ECORRUPT, "tensor '%s' has an unknown dtype",
                               ra->name ? ra->name : "");
    unit = di->block_bytes;
    out->elements = ra->len / unit;
    out->has_max_abs = flt;
    cairn_buf_init(&a.buf, (size_t)1 << 30);
    cairn_buf_init(&b.buf, (size_t)1 << 30);
    while (pos < ra->len) {
        /* Advance each side to the chunk holding `pos`; the same chunk at the
         * same place on both sides is equal and is skipped unread. */
        if (a.end <= pos && b.end <= pos && a.next < ra->nchunks && b.next < rb->nchunks) {
            const struct cairn_file_chunk *ca = &fa->chunks[ra->first_chunk + a.next];
            const struct cairn_file_chunk *cb = &fb->chunks[rb->first_chunk + b.next];
            if (a.end == b.end && ca->len == cb->len && !cairn_oid_cmp(&ca->id, &cb->id)) {
                cursor_skip(&a);
                cursor_skip(&b);
                pos = a.end;
                continue;
            }
        }
        while (a.end <= pos && a.next < ra->nchunks)
            if ((error = cursor_load(repo, &a)) < 0)
                goto done;
        while (b.end <= pos && b.next < rb->nchunks)
            if ((error = cursor_load(repo, &b)) < 0)
                goto done;
        if (a.end <= pos || b.end <= pos || a.start > pos || b.start > pos) {
            error = cairn_error_set(CAIRN_ECORRUPT, "chunks of tensor '%s' do not cover it",
                                    ra->name ? ra->name : "");
            goto done;
        }
        {
            uint64_t stop = a.end < b.end ? a.end : b.end;
            const unsigned char *pa = (const unsigned char *)a.buf.ptr + (pos - a.start);
            const unsigned char *pb = (const unsigned char *)b.buf.ptr + (pos - b.start);
            if ((stop - pos) % unit || (pos % unit)) {
                error = cairn_error_set(CAIRN_ECORRUPT, "chunks of tensor '%s' split its elements",
                                        ra->name ? ra->name : "");
                goto done;
            }
            for (uint64_t off = 0; off < stop - pos; off += unit) {
                double d;
                if (!memcmp(pa + off, pb + off, unit))
                    continue;
                out->differ++;
                if (!flt)
                    continue;
                d = fabs(to_double(ra->dtype, pa + off) - to_double(ra->dtype, pb + off));
                if (isnan(d))
                    d = INFINITY;
                if (d > out->max_abs)
                    out->max_abs = d;
            }
            pos = stop;
        }
    }
done:
    cairn_buf_release(&a.buf);
    cairn_buf_release(&b.buf);
    return error;
}

/* Tensor regions of one file object, sorted by name for lookups. */
struct by_name {
    const struct cairn_file_region **r;
    size_t n;
};

static int name_cmp(const void *x, const void *y)
{
    const struct cairn_file_region *const *a = x, *const *b = y;
    return strcmp((*a)->name ? (*a)->name : "", (*b)->name ? (*b)->name : "");
}

static int index_tensors(struct by_name *out, const struct cairn_file_object *f)
{
    out->n = 0;
    if (!(out->r = malloc((f->nregions ? f->nregions : 1) * sizeof(*out->r))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    for (size_t i = 0; i < f->nregions; i++)
        if (f->regions[i].kind == CAIRN_REGION_TENSOR)
            out->r[out->n++] = &f->regions[i];
    qsort(out->r, out->n, sizeof(*out->r), name_cmp);
    return 0;
}

static const struct cairn_file_region *find(const struct by_name *ix, const char *name)
{
    struct cairn_file_region key;
    const struct cairn_file_region *kp = &key, *const * hit;

    memset(&key, 0, sizeof(key));
    key.name = (char *)name;
    hit = bsearch(&kp, ix->r, ix->n, sizeof(*ix->r), name_cmp);
    return hit ? *hit : NULL;
}

int cairn_repo_tensor_diff(struct cairn_repo *repo, const struct cairn_tree_entry *a,
                           const struct cairn_tree_entry *b, int measure_changes,
                           cairn_tensor_change_fn cb, void *payload)
{
    struct cairn_file_object fa, fb;
    struct by_name ia = { NULL, 0 }, ib = { NULL, 0 };
    struct cairn_tensor_entry ta, tb;
    int error;

    memset(&fa, 0, sizeof(fa));
    memset(&fb, 0, sizeof(fb));
    if ((error = cairn__repo_load_file(repo, &a->file, &fa)) < 0 ||
        (error = cairn__repo_load_file(repo, &b->file, &fb)) < 0 ||
        (error = index_tensors(&ia, &fa)) < 0 || (error = index_tensors(&ib, &fb)) < 0)
        goto done;
    for (size_t i = 0; i < fa.nregions && !error; i++) {
        const struct cairn_file_region *ra = &fa.regions[i], *rb;
        struct cairn_tensor_change c;
        if (ra->kind != CAIRN_REGION_TENSOR)
            continue;
        memset(&c, 0, sizeof(c));
        entry_of(&ta, ra);
        c.before = &ta;
        rb = find(&ib, ta.name);
        if (!rb) {
            c.change = CAIRN_TENSOR_REMOVED;
            error = cb(&c, payload);
            continue;
        }
        if (rb->dtype == ra->dtype && same_shape(ra, rb) && rb->len == ra->len &&
            same_chunks(&fa, ra, &fb, rb))
            continue;
        entry_of(&tb, rb);
        c.after = &tb;
        c.change = CAIRN_TENSOR_CHANGED;
        if (measure_changes && rb->dtype == ra->dtype && same_shape(ra, rb) && rb->len == ra->len) {
            if ((error = measure(repo, &c, &fa, ra, &fb, rb)) < 0)
                break;
            c.measured = 1;
        }
        error = cb(&c, payload);
    }
    for (size_t i = 0; i < fb.nregions && !error; i++) {
        const struct cairn_file_region *rb = &fb.regions[i];
        struct cairn_tensor_change c;
        if (rb->kind != CAIRN_REGION_TENSOR || find(&ia, rb->name ? rb->name : ""))
            continue;
        memset(&c, 0, sizeof(c));
        entry_of(&tb, rb);
        c.after = &tb;
        c.change = CAIRN_TENSOR_ADDED;
        error = cb(&c, payload);
    }
done:
    free(ia.r);
    free(ib.r);
    cairn_file_object_release(&fa);
    cairn_file_object_release(&fb);
    return error;
}
