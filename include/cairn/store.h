/*
 * The chunk store: content-addressed, compressed, append-only.
 *
 * Chunks are addressed by the BLAKE3-256 of their raw bytes. Each chunk is
 * stored once, encoded with the codec that made it smallest, inside an
 * append-only pack file; a per-pack index maps id -> (offset, lengths, codec,
 * delta base). Manifests (file and tree objects) are stored as chunks too, so
 * a remote needs to know nothing but chunks and packs.
 *
 * Layout under the store directory (normally .cairn/store):
 *   packs/pack-<hex>.pack   chunk data, self-describing (fsck can scan it)
 *   packs/pack-<hex>.idx    sorted index of one pack; written last, so a pack
 *                           without an idx is an interrupted write (ignored,
 *                           removed by gc)
 * See docs/formats.md for the byte layout.
 *
 * Concurrency: a struct cairn_store is used by one thread for writing, but
 * cairn_store_has/get/encode may be called from many threads at once after
 * cairn_store_load_index(). Processes coordinate through the repository lock
 * (lib/repo): writers and readers hold it shared, gc holds it exclusive.
 */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"

struct cairn_buf;

enum cairn_codec {
    CAIRN_CODEC_RAW = 0,      /* stored as is */
    CAIRN_CODEC_ZSTD = 1,     /* zstd frame */
    CAIRN_CODEC_BGZSTD = 2,   /* byte planes of elem_size-wide values, then zstd */
    CAIRN_CODEC_XORDELTA = 3, /* XOR against a base chunk, byte planes, zstd */
    CAIRN_CODEC_PLANE = 4,    /* byte planes, each rANS-coded with one byte of context */
};

/* What the chunker knows about a chunk; codecs may use it to do better. */
struct cairn_chunk_hint {
    unsigned elem_size;    /* bytes per element (2 for fp16/bf16, 4 for fp32); 0 unknown */
    const cairn_oid *base; /* same tensor, same offset, in the parent version; NULL if none */
    /*
     * Shared by the chunks of one tensor (NULL: none), zeroed before its
     * first: what the PLANE codec's estimate said on the chunks encoded so
     * far. Once it has declined two and taken none, the tensor's later
     * chunks skip the estimate; pieces of one tensor have one distribution,
     * and the estimate was a tenth of ingest's CPU on weights it declines.
     */
    int *plane_state;
};

struct cairn_chunk_info {
    uint64_t raw_len;
    uint64_t stored_len;
    int codec;
    int has_base;
    cairn_oid base;
};

/* Longest chain of XOR deltas a chunk may sit on; the encoder never builds longer ones. */
#define CAIRN_STORE_MAX_CHAIN 8

struct cairn_store;
struct cairn_store_writer;
struct cairn_codec_ctx;

/* Create the directories of an empty store. Idempotent. */
int cairn_store_init(const char *dir);
int cairn_store_open(struct cairn_store **out, const char *dir);
void cairn_store_free(struct cairn_store *s);

/* Read every pack index into memory (done lazily by the calls below). */
int cairn_store_load_index(struct cairn_store *s);

/* 1 if present, 0 if not, negative on error. */
int cairn_store_has(struct cairn_store *s, const cairn_oid *id);
int cairn_store_info(struct cairn_store *s, const cairn_oid *id, struct cairn_chunk_info *out);

/*
 * Append the raw bytes of chunk `id` to `out`, decoding and verifying that
 * their BLAKE3 is `id` (CAIRN_ECORRUPT otherwise; `out` is then left as it
 * was). Thread-safe.
 */
int cairn_store_get(struct cairn_store *s, const cairn_oid *id, struct cairn_buf *out);

/*
 * Read chunk `id` as stored (encoded, not decoded) into `out` (replacing its
 * content), with its codec, lengths and delta base in `*info` (may be NULL).
 * The entry's header and check are verified, so the bytes are exactly what
 * was written; copying them into another pack with cairn_store_writer_add()
 * moves a chunk without re-encoding it (push). Thread-safe.
 */
int cairn_store_read_encoded(struct cairn_store *s, const cairn_oid *id,
                             struct cairn_chunk_info *info, struct cairn_buf *out);

/*
 * Check encoded bytes received from elsewhere (pull) before they are added:
 * decode them (a delta against `base`, which must be in this store) and
 * verify that the BLAKE3 of the result is `id`. `base` is NULL or zero for
 * codecs without one. 0, or CAIRN_ECORRUPT with the reason. Thread-safe.
 */
int cairn_store_check_encoded(struct cairn_store *s, const cairn_oid *id, int codec,
                              const cairn_oid *base, uint64_t raw_len, const void *enc,
                              size_t enc_len);

/*
 * Per-thread encoder state (zstd contexts, scratch buffers). Encoding picks
 * the smallest of the codecs that apply; `level` is the zstd level.
 */
int cairn_codec_ctx_new(struct cairn_codec_ctx **out, int level);
void cairn_codec_ctx_free(struct cairn_codec_ctx *ctx);
int cairn_store_encode(struct cairn_store *s, struct cairn_codec_ctx *ctx, const void *raw,
                       size_t len, const struct cairn_chunk_hint *hint, struct cairn_buf *out,
                       int *codec_out, cairn_oid *base_out);

/*
 * A writer appends chunks to new pack files (rotated at about 64 MiB). Until
 * cairn_store_writer_commit() returns, nothing it wrote is visible to other
 * processes; after, it is durable (packs and idx fsynced and renamed, the
 * directory fsynced). Freeing an uncommitted writer removes its temp files.
 */
int cairn_store_writer_new(struct cairn_store_writer **out, struct cairn_store *s);
/* Add an encoded chunk; a no-op if the id is already stored or added. */
int cairn_store_writer_add(struct cairn_store_writer *w, const cairn_oid *id, int codec,
                           const cairn_oid *base, uint64_t raw_len, const void *enc,
                           size_t enc_len);
/*
 * The same with the entry's 16-byte check (the BLAKE3 a pack stores after
 * the chunk's bytes) already computed by cairn_store_entry_check(): the add
 * pipeline computes it on its workers, where the encoded bytes are in cache,
 * instead of on the one thread that appends to the pack.
 */
#define CAIRN_STORE_CHECK_LEN 16
void cairn_store_entry_check(uint8_t out[CAIRN_STORE_CHECK_LEN], const cairn_oid *id, int codec,
                             const cairn_oid *base, uint64_t raw_len, const void *enc,
                             size_t enc_len);
int cairn_store_writer_add_checked(struct cairn_store_writer *w, const cairn_oid *id, int codec,
                                   const cairn_oid *base, uint64_t raw_len, const void *enc,
                                   size_t enc_len, const uint8_t check[CAIRN_STORE_CHECK_LEN]);
/* Hash, encode (zstd) and add a whole object such as a manifest. */
int cairn_store_writer_put(struct cairn_store_writer *w, const void *data, size_t len,
                           cairn_oid *id_out);
int cairn_store_writer_commit(struct cairn_store_writer *w);
void cairn_store_writer_free(struct cairn_store_writer *w);
/* Bytes written to packs by this writer so far (new stored bytes). */
uint64_t cairn_store_writer_bytes(const struct cairn_store_writer *w);

/*
 * fsck of the store: read every pack, check its structure against its idx,
 * decode every chunk and verify its BLAKE3, check every delta base exists.
 * Each problem is reported through `cb` (one line, lowercase); returns the
 * number of problems, or a negative error if the check itself could not run.
 */
typedef void (*cairn_problem_fn)(const char *msg, void *payload);
int cairn_store_verify(struct cairn_store *s, cairn_problem_fn cb, void *payload);
/*
 * As cairn_store_verify(), and also hands informational notes to `note`
 * (may be NULL): interrupted writes (temp files, a pack without its idx,
 * which a kill -9 leaves and gc removes) and unknown files. Notes are not
 * problems and are not counted.
 */
int cairn_store_verify_ex(struct cairn_store *s, cairn_problem_fn problem, cairn_problem_fn note,
                          void *payload);

/*
 * Repair what verify finds, keeping every chunk that can still be read. The
 * caller holds the repository lock exclusively (as for gc). Each pack is
 * scanned on its own (entries are self-describing, docs/formats.md), so a
 * missing or damaged idx is rebuilt; entries that are damaged, or decode to
 * bytes whose BLAKE3 is not their id, are left out, so the chunk is missing
 * and the next add stores it again. A delta whose base cannot be read is
 * kept: its bytes are intact. A pack that changes is written anew (temp
 * files, fsync, rename, directory fsync) before its old idx and pack are
 * moved to store/damaged/; nothing is deleted. An idx without a pack moves
 * there too. `action` (may be NULL) gets one line per change. Returns the
 * number of changes (0: nothing to repair), or < 0.
 */
struct cairn_store_repair_stats {
    uint64_t packs_written;  /* new packs, rebuilt indexes included */
    uint64_t chunks_dropped; /* corrupt or unreadable chunks left out */
    uint64_t files_moved;    /* packs and idx files moved to store/damaged/ */
};
int cairn_store_repair(struct cairn_store *s, cairn_problem_fn action, void *payload,
                       struct cairn_store_repair_stats *out);

/*
 * gc: keep the chunks `is_live` accepts (and, transitively, their delta
 * bases); rewrite packs that are partly dead, delete packs that are wholly
 * dead and interrupted temp files. Crash-safe: new packs are durable before
 * any old one is removed. Caller holds the repository lock exclusively.
 */
struct cairn_gc_stats {
    uint64_t chunks_kept, chunks_removed;
    uint64_t bytes_before, bytes_after;
    uint64_t packs_removed, packs_written;
};
typedef int (*cairn_live_fn)(const cairn_oid *id, void *payload); /* 1 live, 0 dead */
int cairn_store_gc(struct cairn_store *s, cairn_live_fn is_live, void *payload, int dry_run,
                   struct cairn_gc_stats *out);

struct cairn_store_stats {
    uint64_t chunks, packs, stored_bytes, raw_bytes;
};
int cairn_store_stats(struct cairn_store *s, struct cairn_store_stats *out);

#endif
