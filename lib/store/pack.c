/*
 * Pack and idx encoding, validation and the buffered pack writer; see
 * pack.h for the contract and docs/formats.md for the layout.
 *
 * Parsers here read bytes from disk (or a fuzzer): every length is checked
 * against the bytes present and against CAIRN__CHUNK_MAX before use, and
 * nothing allocates according to a length read from input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/common.h"
#include "store/codec.h"
#include "store/pack.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define WRITE_BUF_SIZE ((size_t)2 << 20)

int cairn__gc_stop_after;
uint64_t cairn__pack_target = CAIRN__PACK_TARGET;

size_t cairn__entry_header_write(uint8_t *out, const struct cairn__pack_entry *e)
{
    cairn_put_u32le(out, CAIRN__ENTRY_MARKER);
    memcpy(out + 4, e->id.id, CAIRN_OID_RAWSZ);
    out[36] = e->codec;
    out[37] = e->flags;
    out[38] = out[39] = 0;
    cairn_put_u64le(out + 40, e->raw_len);
    cairn_put_u64le(out + 48, e->stored_len);
    if (e->flags & CAIRN__PACK_F_BASE) {
        memcpy(out + 56, e->base.id, CAIRN_OID_RAWSZ);
        return CAIRN__ENTRY_HDR_MAX;
    }
    return CAIRN__ENTRY_HDR_LEN;
}

static int check_lengths(const struct cairn__pack_entry *e)
{
    if (e->raw_len > CAIRN__CHUNK_MAX || e->stored_len > CAIRN__CHUNK_MAX)
        return cairn_error_set(CAIRN_ECORRUPT, "entry length out of range");
    if (e->codec == CAIRN_CODEC_RAW && e->stored_len != e->raw_len)
        return cairn_error_set(CAIRN_ECORRUPT, "raw entry with stored length %llu != %llu",
                               (unsigned long long)e->stored_len, (unsigned long long)e->raw_len);
    if (e->flags & ~CAIRN__PACK_F_BASE)
        return cairn_error_set(CAIRN_ECORRUPT, "unknown entry flags 0x%02x", e->flags);
    return 0;
}

int cairn__entry_header_parse(struct cairn__pack_entry *out, const void *buf, size_t len,
                              uint64_t offset)
{
    const uint8_t *p = buf;

    memset(out, 0, sizeof(*out));
    if (len < CAIRN__ENTRY_HDR_LEN)
        return cairn_error_set(CAIRN_ECORRUPT, "truncated entry header");
    if (cairn_get_u32le(p) != CAIRN__ENTRY_MARKER)
        return cairn_error_set(CAIRN_ECORRUPT, "bad entry marker");
    memcpy(out->id.id, p + 4, CAIRN_OID_RAWSZ);
    out->codec = p[36];
    out->flags = p[37];
    if (p[38] || p[39])
        return cairn_error_set(CAIRN_ECORRUPT, "nonzero reserved bytes in entry header");
    out->raw_len = cairn_get_u64le(p + 40);
    out->stored_len = cairn_get_u64le(p + 48);
    out->offset = offset;
    if (check_lengths(out) < 0)
        return CAIRN_ECORRUPT;
    if (out->flags & CAIRN__PACK_F_BASE) {
        if (len < CAIRN__ENTRY_HDR_MAX)
            return cairn_error_set(CAIRN_ECORRUPT, "truncated entry header");
        memcpy(out->base.id, p + 56, CAIRN_OID_RAWSZ);
    }
    return 0;
}

void cairn__entry_check_compute(uint8_t *out16, const void *hdr, size_t hdr_len, const void *data,
                                size_t data_len)
{
    struct cairn_hasher h;
    cairn_oid full;

    cairn_hasher_init(&h);
    cairn_hasher_update(&h, hdr, hdr_len);
    cairn_hasher_update(&h, data, data_len);
    cairn_hasher_final(&h, &full);
    memcpy(out16, full.id, CAIRN__ENTRY_CHECK_LEN);
}

int cairn__entry_check_verify(const void *check16, const void *hdr, size_t hdr_len,
                              const void *data, size_t data_len)
{
    uint8_t want[CAIRN__ENTRY_CHECK_LEN];

    cairn__entry_check_compute(want, hdr, hdr_len, data, data_len);
    if (memcmp(want, check16, CAIRN__ENTRY_CHECK_LEN) != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "entry check mismatch");
    return 0;
}

void cairn__idx_entry(struct cairn__pack_entry *out, const void *idx, uint32_t i)
{
    const uint8_t *p = (const uint8_t *)idx + CAIRN__IDX_HDR_LEN + (size_t)i * CAIRN__IDX_ENTRY_LEN;

    memcpy(out->id.id, p, CAIRN_OID_RAWSZ);
    out->offset = cairn_get_u64le(p + 32);
    out->stored_len = cairn_get_u64le(p + 40);
    out->raw_len = cairn_get_u64le(p + 48);
    out->codec = p[56];
    out->flags = p[57];
    memcpy(out->base.id, p + 64, CAIRN_OID_RAWSZ);
}

static void idx_entry_write(uint8_t *p, const struct cairn__pack_entry *e)
{
    memcpy(p, e->id.id, CAIRN_OID_RAWSZ);
    cairn_put_u64le(p + 32, e->offset);
    cairn_put_u64le(p + 40, e->stored_len);
    cairn_put_u64le(p + 48, e->raw_len);
    p[56] = e->codec;
    p[57] = e->flags;
    memset(p + 58, 0, 6);
    if (e->flags & CAIRN__PACK_F_BASE)
        memcpy(p + 64, e->base.id, CAIRN_OID_RAWSZ);
    else
        memset(p + 64, 0, CAIRN_OID_RAWSZ);
}

int cairn__idx_validate(uint32_t *count_out, uint64_t *pack_size_out, cairn_oid *name_out,
                        const void *data, size_t len, uint64_t pack_size)
{
    const uint8_t *p = data;
    static const uint8_t zero[CAIRN_OID_RAWSZ];
    uint64_t recorded, count;
    cairn_oid h;

    if (len < CAIRN__IDX_HDR_LEN + CAIRN__IDX_TRAILER_LEN)
        return cairn_error_set(CAIRN_ECORRUPT, "index too short (%zu bytes)", len);
    if (memcmp(p, CAIRN__IDX_MAGIC, 8) != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "bad index magic");
    count = cairn_get_u32le(p + 8);
    if (cairn_get_u32le(p + 12) != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "nonzero reserved field in index header");
    recorded = cairn_get_u64le(p + 16);
    if ((len - CAIRN__IDX_HDR_LEN - CAIRN__IDX_TRAILER_LEN) / CAIRN__IDX_ENTRY_LEN != count ||
        (len - CAIRN__IDX_HDR_LEN - CAIRN__IDX_TRAILER_LEN) % CAIRN__IDX_ENTRY_LEN != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "index size %zu does not match its %llu entries",
                               len, (unsigned long long)count);
    cairn_hash(&h, p, len - CAIRN__IDX_TRAILER_LEN);
    if (memcmp(h.id, p + len - CAIRN__IDX_TRAILER_LEN, CAIRN__IDX_TRAILER_LEN) != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "index checksum mismatch");
    if (pack_size != UINT64_MAX && recorded != pack_size)
        return cairn_error_set(CAIRN_ECORRUPT, "pack is %llu bytes, index expects %llu",
                               (unsigned long long)pack_size, (unsigned long long)recorded);
    if (recorded < CAIRN__PACK_HDR_LEN)
        return cairn_error_set(CAIRN_ECORRUPT, "index records a pack of %llu bytes",
                               (unsigned long long)recorded);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *q = p + CAIRN__IDX_HDR_LEN + (size_t)i * CAIRN__IDX_ENTRY_LEN;
        struct cairn__pack_entry e;

        cairn__idx_entry(&e, p, i);
        if (i > 0 && memcmp(q - CAIRN__IDX_ENTRY_LEN, q, CAIRN_OID_RAWSZ) >= 0)
            return cairn_error_set(CAIRN_ECORRUPT, "index entries not sorted at %u", i);
        if (q[58] | q[59] | q[60] | q[61] | q[62] | q[63])
            return cairn_error_set(CAIRN_ECORRUPT, "nonzero reserved bytes in index entry %u", i);
        if (check_lengths(&e) < 0) {
            cairn_error_prefix("index entry %u", i);
            return CAIRN_ECORRUPT;
        }
        if (!(e.flags & CAIRN__PACK_F_BASE) && memcmp(e.base.id, zero, CAIRN_OID_RAWSZ) != 0)
            return cairn_error_set(CAIRN_ECORRUPT, "index entry %u has a base but no base flag", i);
        if (e.offset < CAIRN__PACK_HDR_LEN || e.offset > recorded ||
            cairn__entry_total_len(&e) > recorded - e.offset)
            return cairn_error_set(CAIRN_ECORRUPT, "index entry %u lies outside the pack", i);
    }
    cairn_hash(name_out, p + CAIRN__IDX_HDR_LEN, (size_t)count * CAIRN__IDX_ENTRY_LEN);
    *count_out = (uint32_t)count;
    *pack_size_out = recorded;
    return 0;
}

long cairn__idx_find(const void *idx, uint32_t count, const cairn_oid *id)
{
    const uint8_t *base = (const uint8_t *)idx + CAIRN__IDX_HDR_LEN;
    size_t lo = 0, hi = count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(base + mid * CAIRN__IDX_ENTRY_LEN, id->id, CAIRN_OID_RAWSZ);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int cairn__pack_filename(struct cairn_buf *out, const char *packs_dir, const cairn_oid *name,
                         const char *suffix)
{
    char hex[CAIRN_OID_HEXSZ + 1];

    cairn_buf_clear(out);
    return cairn_buf_printf(out, "%s/pack-%s.%s", packs_dir, cairn_oid_fmt(hex, name), suffix);
}

int cairn__pack_is_temp_name(const char *name)
{
    return strncmp(name, "tmp-", 4) == 0 || strstr(name, ".tmp.") != NULL;
}

int cairn__pack_parse_name(cairn_oid *out, const char *name, const char *suffix)
{
    size_t slen = strlen(suffix);
    char hex[CAIRN_OID_HEXSZ + 1];

    if (strncmp(name, "pack-", 5) != 0 || strlen(name) != 5 + CAIRN_OID_HEXSZ + 1 + slen)
        return 0;
    if (name[5 + CAIRN_OID_HEXSZ] != '.' || strcmp(name + 5 + CAIRN_OID_HEXSZ + 1, suffix) != 0)
        return 0;
    memcpy(hex, name + 5, CAIRN_OID_HEXSZ);
    hex[CAIRN_OID_HEXSZ] = '\0';
    for (int i = 0; i < CAIRN_OID_HEXSZ; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return 0;
    return cairn_oid_parse(out, hex) == 0;
}

/* Create "tmp-<pid>-<n>.<suffix>" with O_EXCL; retries past stale names. */
static int create_temp(int *fd_out, char **path_out, const char *dir, const char *suffix)
{
    static atomic_uint counter;
    struct cairn_buf path = CAIRN_BUF_INIT;
    int error = 0, fd = -1;

    for (int tries = 0; tries < 100; tries++) {
        cairn_buf_clear(&path);
        if ((error = cairn_buf_printf(
                 &path, "%s/tmp-%d-%u-%llx.%s", dir, (int)getpid(), atomic_fetch_add(&counter, 1),
                 (unsigned long long)cairn_time_now_ns() & 0xffffff, suffix)) < 0)
            goto done;
        fd = open(path.ptr, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", path.ptr);
        goto done;
    }
    *fd_out = fd;
    *path_out = cairn_buf_detach(&path, NULL);
done:
    cairn_buf_release(&path);
    return error;
}

void cairn__pack_writer_init(struct cairn__pack_writer *w)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
}

int cairn__pack_writer_open(struct cairn__pack_writer *w, const char *packs_dir)
{
    int error;

    if (!w->buf) {
        if (!(w->buf = malloc(WRITE_BUF_SIZE)))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory allocating a pack buffer");
        w->buf_cap = WRITE_BUF_SIZE;
    }
    if ((error = create_temp(&w->fd, &w->tmp_path, packs_dir, "pack")) < 0)
        return error;
    memcpy(w->buf, CAIRN__PACK_MAGIC, CAIRN__PACK_HDR_LEN);
    w->buf_len = CAIRN__PACK_HDR_LEN;
    w->size = CAIRN__PACK_HDR_LEN;
    w->count = 0;
    return 0;
}

static int wbuf_flush(struct cairn__pack_writer *w)
{
    int error = 0;

    if (w->buf_len) {
        if ((error = cairn_fs_write_all(w->fd, w->buf, w->buf_len)) < 0)
            cairn_error_prefix("cannot write '%s'", w->tmp_path);
        w->buf_len = 0;
    }
    return error;
}

/* Copy into the buffer; big pieces bypass it so they are copied once, by the kernel. */
static int wbuf_put(struct cairn__pack_writer *w, const void *p, size_t n)
{
    int error;

    /* Flush before a bypass too: the big piece must land after what is buffered. */
    if ((n > w->buf_cap - w->buf_len || n >= w->buf_cap / 2) && (error = wbuf_flush(w)) < 0)
        return error;
    if (n >= w->buf_cap / 2) {
        if ((error = cairn_fs_write_all(w->fd, p, n)) < 0)
            cairn_error_prefix("cannot write '%s'", w->tmp_path);
        return error;
    }
    memcpy(w->buf + w->buf_len, p, n);
    w->buf_len += n;
    return 0;
}

int cairn__pack_writer_append(struct cairn__pack_writer *w, const struct cairn__pack_entry *e,
                              const void *data)
{
    uint8_t hdr[CAIRN__ENTRY_HDR_MAX], check[CAIRN__ENTRY_CHECK_LEN];
    struct cairn__pack_entry *slot;
    size_t hdr_len;
    int error;

    if (w->fd < 0)
        return cairn_error_set(CAIRN_ERROR, "pack writer is not open");
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        struct cairn__pack_entry *n = realloc(w->entries, cap * sizeof(*n));
        if (!n)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory growing a pack index");
        w->entries = n;
        w->cap = cap;
    }
    hdr_len = cairn__entry_header_write(hdr, e);
    cairn__entry_check_compute(check, hdr, hdr_len, data, e->stored_len);
    if ((error = wbuf_put(w, hdr, hdr_len)) < 0 || (error = wbuf_put(w, data, e->stored_len)) < 0 ||
        (error = wbuf_put(w, check, sizeof(check))) < 0)
        return error;
    slot = &w->entries[w->count++];
    *slot = *e;
    if (!(e->flags & CAIRN__PACK_F_BASE))
        memset(&slot->base, 0, sizeof(slot->base));
    slot->offset = w->size;
    w->size += hdr_len + e->stored_len + CAIRN__ENTRY_CHECK_LEN;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return memcmp(((const struct cairn__pack_entry *)a)->id.id,
                  ((const struct cairn__pack_entry *)b)->id.id, CAIRN_OID_RAWSZ);
}

int cairn__pack_writer_finish(struct cairn__pack_writer *w, struct cairn__pack_pending *out,
                              const char *packs_dir)
{
    struct cairn_buf idx = CAIRN_BUF_INIT;
    cairn_oid trailer;
    int error, idx_fd = -1;

    memset(out, 0, sizeof(*out));
    if ((error = wbuf_flush(w)) < 0)
        goto done;
    if (fsync(w->fd) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot fsync '%s'", w->tmp_path);
        goto done;
    }
    qsort(w->entries, w->count, sizeof(*w->entries), entry_cmp);
    if (w->count > UINT32_MAX) {
        error = cairn_error_set(CAIRN_ERROR, "too many chunks in one pack");
        goto done;
    }
    cairn_buf_init(&idx, (size_t)-1 >> 1);
    if ((error = cairn_buf_grow(&idx, CAIRN__IDX_HDR_LEN + w->count * CAIRN__IDX_ENTRY_LEN +
                                          CAIRN__IDX_TRAILER_LEN)) < 0)
        goto done;
    memcpy(idx.ptr, CAIRN__IDX_MAGIC, 8);
    cairn_put_u32le(idx.ptr + 8, (uint32_t)w->count);
    cairn_put_u32le(idx.ptr + 12, 0);
    cairn_put_u64le(idx.ptr + 16, w->size);
    for (size_t i = 0; i < w->count; i++)
        idx_entry_write((uint8_t *)idx.ptr + CAIRN__IDX_HDR_LEN + i * CAIRN__IDX_ENTRY_LEN,
                        &w->entries[i]);
    idx.len = CAIRN__IDX_HDR_LEN + w->count * CAIRN__IDX_ENTRY_LEN;
    cairn_hash(&out->name, idx.ptr + CAIRN__IDX_HDR_LEN, w->count * CAIRN__IDX_ENTRY_LEN);
    cairn_hash(&trailer, idx.ptr, idx.len);
    if ((error = cairn_buf_put(&idx, trailer.id, CAIRN_OID_RAWSZ)) < 0)
        goto done;
    if ((error = create_temp(&idx_fd, &out->tmp_idx, packs_dir, "idx")) < 0)
        goto done;
    if ((error = cairn_fs_write_all(idx_fd, idx.ptr, idx.len)) < 0) {
        cairn_error_prefix("cannot write '%s'", out->tmp_idx);
        goto done;
    }
    if (fsync(idx_fd) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot fsync '%s'", out->tmp_idx);
        goto done;
    }
    out->tmp_pack = w->tmp_path;
    w->tmp_path = NULL;
    out->size = w->size;
    out->entries = w->entries;
    out->count = w->count;
    w->entries = NULL;
    w->count = w->cap = 0;
done:
    if (idx_fd >= 0)
        close(idx_fd);
    if (error < 0) {
        if (out->tmp_idx)
            unlink(out->tmp_idx);
        free(out->tmp_idx);
        out->tmp_idx = NULL;
    } else {
        close(w->fd);
        w->fd = -1;
    }
    cairn_buf_release(&idx);
    return error;
}

void cairn__pack_writer_release(struct cairn__pack_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp_path)
        unlink(w->tmp_path);
    free(w->tmp_path);
    free(w->buf);
    free(w->entries);
    cairn__pack_writer_init(w);
}

int cairn__pack_pending_publish(struct cairn__pack_pending *p, const char *packs_dir)
{
    struct cairn_buf path = CAIRN_BUF_INIT;
    int error;

    if ((error = cairn__pack_filename(&path, packs_dir, &p->name, "pack")) < 0)
        goto done;
    if (rename(p->tmp_pack, path.ptr) < 0) {
        error =
            cairn_error_set_errno(CAIRN_ERROR, "cannot rename '%s' to '%s'", p->tmp_pack, path.ptr);
        goto done;
    }
    free(p->tmp_pack);
    p->tmp_pack = NULL;
    if ((error = cairn__pack_filename(&path, packs_dir, &p->name, "idx")) < 0)
        goto done;
    if (rename(p->tmp_idx, path.ptr) < 0) {
        error =
            cairn_error_set_errno(CAIRN_ERROR, "cannot rename '%s' to '%s'", p->tmp_idx, path.ptr);
        goto done;
    }
    free(p->tmp_idx);
    p->tmp_idx = NULL;
done:
    cairn_buf_release(&path);
    return error;
}

void cairn__pack_pending_release(struct cairn__pack_pending *p)
{
    if (!p)
        return;
    if (p->tmp_pack)
        unlink(p->tmp_pack);
    if (p->tmp_idx)
        unlink(p->tmp_idx);
    free(p->tmp_pack);
    free(p->tmp_idx);
    free(p->entries);
    memset(p, 0, sizeof(*p));
}
