/*
 * Shared by push.c and pull.c: the layout of a remote (object keys), the
 * remote's chunk index built from its idx files (cached under
 * .cairn/remotes/NAME/packs/), and small helpers. Not for other modules.
 */
#ifndef CAIRN_REMOTE_SYNC_H
#define CAIRN_REMOTE_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

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
 * A version object on a remote, versions/ID.json: the canonical record
 * verbatim (`record`, whose BLAKE3 must be ID) plus registry-only fields.
 * Parsing checks that the record hashes to the id in the key, that the
 * record is a JSON object with a valid model name, a tree id, an integer
 * time and a known kind, and bounds the remote's number (a number outside
 * 1..CAIRN__SYNC_NUMBER_MAX becomes 0: the version takes the next free one).
 * CAIRN_ECORRUPT naming the key otherwise. The caller owns obj and rec.
 */
#define CAIRN__SYNC_NUMBER_MAX 1000000000
struct cairn__remote_version {
    cairn_oid id, tree;
    char model[65];
    int number;
    long long time_ns;
    json_t *obj, *rec;
};
int cairn__sync_version_parse(struct cairn__remote_version *out, const char *key, const void *data,
                              size_t len);

/*
 * Alias entries on a remote: aliases/MODEL/ALIAS/SEQ-WRITER.json, SEQ 16
 * decimal digits, WRITER 16 lowercase hex digits, the body
 * {"model","alias","version","prev",...}. The rule (docs/remotes.md, "What
 * a remote may send"): an entry counts only when its name has that form,
 * its body names the same model and alias as its key, and its sequence
 * number continues an unbroken run that starts at 1 - each entry's `prev`
 * is an entry of the run one below it. Entries past a gap are ignored, so
 * no entry can jump the sequence (and freeze the alias for every writer).
 * The head is the highest entry of the run; when several share its
 * number (two writers raced), the last in byte order, unless `prefer`
 * names one of them.
 */
struct cairn__alias_head {
    int found;
    int tied; /* other entries share the head's number */
    char key[CAIRN_REMOTE_KEY_MAX + 1];
    char prev[CAIRN_REMOTE_KEY_MAX + 1]; /* "" for the first entry */
    unsigned long long seq;
    cairn_oid version;
};

/* SEQ of an entry key under `prefix` (aliases/M/A/), or 0 when the name is not of the form. */
unsigned long long cairn__sync_alias_seq(const char *key, const char *prefix);

/*
 * Parse one entry: its key's form, its body's version, model and alias
 * (when `model`/`alias` are not NULL they must match) and prev.
 * CAIRN_ECORRUPT naming the key when anything is off.
 */
int cairn__sync_alias_parse(struct cairn__alias_head *out, const char *key, const char *model,
                            const char *alias, const char *json, size_t len);

/*
 * The head of alias MODEL@ALIAS given the keys listed under its prefix
 * (`keys`, `n`, in byte order). Reads the bodies it needs from `r`.
 * Entries that break the rule are skipped with a warning naming `remote`.
 * `out->found` 0 when no entry counts.
 */
int cairn__sync_alias_head(struct cairn__alias_head *out, struct cairn_remote *r,
                           const char *remote, const char *model, const char *alias,
                           char *const *keys, size_t n, const char *prefer);

/*
 * Whether `head` descends from the entry `ancestor` (a key of the same
 * alias): walks prev links down from `head`, at most to the ancestor's
 * number. *out false when the chain reaches below it without meeting it.
 */
int cairn__sync_alias_descends(bool *out, struct cairn_remote *r, const char *model,
                               const char *alias, const struct cairn__alias_head *head,
                               const char *ancestor);

#endif
