/*
 * Manifest objects: how a version's files are described in the store.
 *
 * A tree object lists a version's files (sorted by path); each entry points
 * to a file object, which lists the file's chunks in order and the regions
 * (tensors, opaque bytes) the chunker cut it into. Both are stored as chunks
 * of their own, so a remote needs to know nothing but chunks. Encodings are
 * canonical (one byte string per value), so equal manifests dedup and ids
 * are stable. Byte layout: docs/formats.md.
 */
#ifndef CAIRN_REPO_OBJECT_H
#define CAIRN_REPO_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"
#include "cairn/repo.h"
#include "util/buf.h"

#define CAIRN_FILE_MAGIC "CAIRNF01"
#define CAIRN_TREE_MAGIC "CAIRNT01"
/* Decoders refuse manifests larger than this: 2^24 chunks is > 1 TiB of file. */
#define CAIRN_OBJECT_MAX_CHUNKS  ((uint64_t)1 << 24)
#define CAIRN_OBJECT_MAX_ENTRIES ((uint64_t)1 << 22)

struct cairn_file_chunk {
    cairn_oid id;
    uint64_t offset; /* in the file; derived on decode, not stored */
    uint32_t len;
};

/* A region as recorded in a file object (tensor name copied, not a pointer). */
struct cairn_file_region {
    int kind; /* enum cairn_region_kind */
    char *name;
    int dtype;
    unsigned group;
    uint64_t offset, len;
    uint64_t first_chunk, nchunks;
    unsigned rank; /* tensor shape, as the file lists it */
    uint64_t shape[8];
};

struct cairn_file_object {
    uint64_t size;
    cairn_oid digest;
    int format; /* enum cairn_tensor_format */
    struct cairn_file_chunk *chunks;
    size_t nchunks, chunks_cap;
    struct cairn_file_region *regions;
    size_t nregions, regions_cap;
};

void cairn_file_object_release(struct cairn_file_object *f);
int cairn_file_object_add_chunk(struct cairn_file_object *f, const cairn_oid *id, uint32_t len);
int cairn_file_object_add_region(struct cairn_file_object *f, const struct cairn_file_region *r);
int cairn_file_object_encode(struct cairn_buf *out, const struct cairn_file_object *f);
/* Validates everything: counts, lengths summing to size, regions in order. */
int cairn_file_object_decode(struct cairn_file_object *out, const void *data, size_t len);
const struct cairn_file_region *cairn_file_object_region(const struct cairn_file_object *f,
                                                         const char *name);

int cairn_tree_encode(struct cairn_buf *out, const struct cairn_tree *t);
/* Validates paths (cairn_fs_path_valid), order and uniqueness. */
int cairn_tree_decode(struct cairn_tree *out, const void *data, size_t len);
/* Sort entries by path and reject duplicates. */
int cairn_tree_sort(struct cairn_tree *t);
int cairn_tree_add(struct cairn_tree *t, size_t *cap, const char *path, uint32_t mode,
                   uint64_t size, const cairn_oid *file, const cairn_oid *digest);
const struct cairn_tree_entry *cairn_tree_find(const struct cairn_tree *t, const char *path);

#endif
