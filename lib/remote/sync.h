/*
 * Shared by push.c and pull.c: the layout of a remote (object keys), the
 * remote's chunk index built from its idx files (cached under
 * .cairn/remotes/NAME/packs/), and small helpers. Not for other modules.
 */
#ifndef CAIRN_REMOTE_SYNC_H
#define CAIRN_REMOTE_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"
#include "cairn/remote.h"
#include "remote/backend.h"
#include "store/pack.h"
#include "util/buf.h"

/* Largest small object (version record, tag, alias entry) we read. */
#define CAIRN__SYNC_SMALL_MAX ((size_t)16 << 20)

/* One chunk of the remote: where it sits in which remote pack. */
struct cairn__rentry {
    struct cairn__pack_entry e;
    uint32_t pack;
};

/* The remote's chunks, from every idx it lists (open addressing by id). */
struct cairn__rindex {
    struct cairn__rentry *entries;
    size_t n, cap;
    uint32_t *slots; /* index into entries + 1; 0 free */
    size_t nslots;
    cairn_oid *packs; /* pack names */
    uint64_t *pack_sizes;
    size_t npacks, packs_cap;
};

/*
 * List packs/ of the remote, read each idx (from the cache dir when there,
 * else downloaded, validated against its name and the pack's size, and
 * cached), and index every entry. A pack whose idx is missing is an
 * unfinished upload and ignored.
 */
int cairn__rindex_load(struct cairn__rindex *ix, struct cairn_remote *r, const char *cache_dir);
const struct cairn__rentry *cairn__rindex_find(const struct cairn__rindex *ix, const cairn_oid *id);
/* Add one idx file's entries (validated by the caller) for pack `name`. */
int cairn__rindex_add_idx(struct cairn__rindex *ix, const cairn_oid *name, uint64_t pack_size,
                          const void *idx, uint32_t count);
void cairn__rindex_release(struct cairn__rindex *ix);

/* cairn_repo_remote_open(); with `create`, a file:// remote's directory is made if missing. */
int cairn__sync_open(struct cairn_remote **out, char **name_out, struct cairn_repo *repo,
                     const char *name, int create);

/* Read a whole small object into `out` (at most CAIRN__SYNC_SMALL_MAX bytes). */
int cairn__sync_get_small(struct cairn_remote *r, const char *key, struct cairn_buf *out);

/* Every key under `prefix`, in order (heap strings; free with cairn__sync_keys_free). */
struct cairn__sync_keys {
    char **keys;
    uint64_t *sizes;
    size_t n, cap;
};
int cairn__sync_list(struct cairn__sync_keys *out, struct cairn_remote *r, const char *prefix);
void cairn__sync_keys_free(struct cairn__sync_keys *k);

/* .cairn/remotes/NAME/SUB (created). */
int cairn__sync_dir(struct cairn_buf *out, struct cairn_repo *repo, const char *remote,
                    const char *sub);

/*
 * The newest entry of an alias on the remote: entries are
 * aliases/MODEL/ALIAS/SEQ-WRITER.json (SEQ 16 digits); the last key in
 * byte order wins. `*found` 0 when the alias has no entry.
 */
struct cairn__alias_head {
    int found;
    char key[CAIRN_REMOTE_KEY_MAX + 1];
    unsigned long long seq;
    cairn_oid version;
};
int cairn__sync_alias_parse(struct cairn__alias_head *out, const char *key, const char *json,
                            size_t len);

#endif
