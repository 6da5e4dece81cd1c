/*
 * Pack and pack-index formats (docs/formats.md, "Packs"): the byte layout,
 * parsers that survive any input, and the buffered pack writer.
 *
 * A pack is append-only and self-describing: every entry carries its id,
 * codec, lengths, optional delta base and a check over its own bytes, so
 * fsck can scan a pack and tell a damaged entry without trusting the idx.
 * The idx is the sorted, fixed-width table the store loads at open.
 *
 * The writer writes a pack under a temp name (O_EXCL) through a 2 MiB
 * buffer, so a 64 KiB chunk costs a memcpy and no syscall; finishing it
 * fsyncs the pack and writes its idx, still under temp names; publishing
 * renames the pack, then the idx. The caller fsyncs the directory once for
 * all the packs it publishes. Everything here is used by one thread at a
 * time; nothing is shared.
 */
#ifndef CAIRN_STORE_PACK_H
#define CAIRN_STORE_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"
#include "util/buf.h"

#define CAIRN__PACK_MAGIC      "CAIRNPK\001"
#define CAIRN__IDX_MAGIC       "CAIRNIX\001"
#define CAIRN__PACK_HDR_LEN    8
#define CAIRN__ENTRY_MARKER    0x31544e45u /* "ENT1" little-endian */
#define CAIRN__ENTRY_HDR_LEN   56          /* without the base id */
#define CAIRN__ENTRY_HDR_MAX   88          /* with it */
#define CAIRN__ENTRY_CHECK_LEN 16          /* BLAKE3 of the entry bytes, truncated */
#define CAIRN__IDX_HDR_LEN     24
#define CAIRN__IDX_ENTRY_LEN   96
#define CAIRN__IDX_TRAILER_LEN 32
#define CAIRN__PACK_F_BASE     0x01

/* Rotate to a new pack once this many bytes are written. */
#define CAIRN__PACK_TARGET ((uint64_t)64 << 20)
/* Largest raw chunk the store accepts (manifests of huge models included). */
#define CAIRN__CHUNK_MAX ((uint64_t)256 << 20)

struct cairn__pack_entry {
    cairn_oid id;
    cairn_oid base;  /* all zero unless flags & CAIRN__PACK_F_BASE */
    uint64_t offset; /* of the entry marker in the pack */
    uint64_t raw_len, stored_len;
    uint8_t codec, flags;
};

/* Entry header size for these flags (56 or 88). */
static inline size_t cairn__entry_hdr_len(uint8_t flags)
{
    return (flags & CAIRN__PACK_F_BASE) ? CAIRN__ENTRY_HDR_MAX : CAIRN__ENTRY_HDR_LEN;
}

/* Total size of an entry on disk: header, stored bytes, check. */
static inline uint64_t cairn__entry_total_len(const struct cairn__pack_entry *e)
{
    return cairn__entry_hdr_len(e->flags) + e->stored_len + CAIRN__ENTRY_CHECK_LEN;
}

/* Serialise an entry header into `out` (CAIRN__ENTRY_HDR_MAX bytes); returns its length. */
size_t cairn__entry_header_write(uint8_t *out, const struct cairn__pack_entry *e);

/*
 * Parse an entry header from buf[0..len). `offset` (where buf starts in the
 * pack) is stored in out->offset. CAIRN_ECORRUPT when the marker, flags,
 * reserved bytes or lengths are wrong or buf is too short for the header.
 * Lengths are bounded by CAIRN__CHUNK_MAX, RAW entries must have
 * stored_len == raw_len.
 */
int cairn__entry_header_parse(struct cairn__pack_entry *out, const void *buf, size_t len,
                              uint64_t offset);

/*
 * Compute (check != NULL: compare, else write into `out16`) the entry check
 * over header and data. Returns 0, or CAIRN_ECORRUPT on a mismatch.
 */
void cairn__entry_check_compute(uint8_t *out16, const void *hdr, size_t hdr_len, const void *data,
                                size_t data_len);
int cairn__entry_check_verify(const void *check16, const void *hdr, size_t hdr_len,
                              const void *data, size_t data_len);

/*
 * Validate a whole idx file held in memory: magic, lengths, trailer hash,
 * entries strictly sorted by id, known flags, zero reserved bytes, and every
 * entry inside a pack of `pack_size` bytes (UINT64_MAX: size unknown, skip
 * that check but still require the idx's recorded size to contain them).
 * Sets *count_out, *pack_size_out and the pack name id (BLAKE3 of the entry
 * table) in *name_out. CAIRN_ECORRUPT with a reason otherwise. Never
 * allocates.
 */
int cairn__idx_validate(uint32_t *count_out, uint64_t *pack_size_out, cairn_oid *name_out,
                        const void *data, size_t len, uint64_t pack_size);

/* Decode entry `i` of an idx that passed cairn__idx_validate(). */
void cairn__idx_entry(struct cairn__pack_entry *out, const void *idx, uint32_t i);

/* Binary search a validated idx for `id`; returns its index or -1. */
long cairn__idx_find(const void *idx, uint32_t count, const cairn_oid *id);

/* "pack-<hex>" plus suffix into `out` (PATH-sized). */
int cairn__pack_filename(struct cairn_buf *out, const char *packs_dir, const cairn_oid *name,
                         const char *suffix);

/* True for names the store writes as temp files ("tmp-*", "*.tmp.*"). */
int cairn__pack_is_temp_name(const char *name);

/* Parse "pack-<64 hex>.<suffix>"; returns 1 and sets *out when it matches. */
int cairn__pack_parse_name(cairn_oid *out, const char *name, const char *suffix);

/*
 * The pack writer. cairn__pack_writer_open() creates the temp pack and
 * writes the header; append() copies an entry into the buffer; finish()
 * flushes and writes the idx under a temp name, filling a pending pack, and
 * queues both files to be fsynced and closed by a helper thread; sync()
 * waits for those fsyncs and must succeed before a pending pack is
 * published. A writer can be reopened after finish. release() removes an
 * unfinished temp pack.
 *
 * Full buffers are written by a helper thread while the caller fills the
 * other one, with O_DIRECT where the file system accepts it: a pack is
 * written once and read back rarely, and copying it through the page cache
 * cost more CPU than everything else in `add` (docs/design.md). The last
 * partial block goes through the page cache; finish() fsyncs either way.
 */
struct cairn__pack_flusher;
struct cairn_pool;

struct cairn__pack_writer {
    int fd;
    char *tmp_path;
    unsigned char *buf; /* being filled; aligned for O_DIRECT */
    size_t buf_len, buf_cap;
    uint64_t size; /* pack bytes so far, including what is buffered */
    struct cairn__pack_entry *entries;
    size_t count, cap;
    struct cairn__pack_flusher *fl; /* the helper thread and its buffer; NULL until used */
    struct cairn_pool *sy;          /* fsyncs finished packs; NULL until the first finish */
    int sync_err;                   /* errno of the first fsync that failed, sticky */
};

struct cairn__pack_pending {
    char *tmp_pack, *tmp_idx;
    cairn_oid name;
    uint64_t size;
    struct cairn__pack_entry *entries; /* sorted by id; owned */
    size_t count;
};

void cairn__pack_writer_init(struct cairn__pack_writer *w);
int cairn__pack_writer_open(struct cairn__pack_writer *w, const char *packs_dir);
/* `check` is the entry's check if the caller computed it (cairn__entry_check_compute), or NULL. */
int cairn__pack_writer_append(struct cairn__pack_writer *w, const struct cairn__pack_entry *e,
                              const void *data, const uint8_t *check);
int cairn__pack_writer_finish(struct cairn__pack_writer *w, struct cairn__pack_pending *out,
                              const char *packs_dir);
/* Wait until every finished pack and idx is fsynced; the first failure, if any. */
int cairn__pack_writer_sync(struct cairn__pack_writer *w);
void cairn__pack_writer_release(struct cairn__pack_writer *w);

/*
 * Rename the pending pack, then its idx, into place under packs_dir. The
 * caller fsyncs packs_dir afterwards. On success the temp names are gone.
 */
int cairn__pack_pending_publish(struct cairn__pack_pending *p, const char *packs_dir);
/* Remove whatever temp files remain and free. Accepts a zeroed struct. */
void cairn__pack_pending_release(struct cairn__pack_pending *p);

/* Rotation size the store writer uses; CAIRN__PACK_TARGET, lowered by tests. */
extern uint64_t cairn__pack_target;

/* Test hook: make cairn_store_gc() stop with an error after step N (0 = off). */
extern int cairn__gc_stop_after;

#endif
