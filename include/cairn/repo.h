/*
 * A cairn repository: a working directory with a .cairn/ folder holding the
 * chunk store (.cairn/store), the registry (.cairn/cairn.db, SQLite in WAL
 * mode), the config (.cairn/config) and a lock file.
 *
 * Versions are immutable snapshots of staged files plus params, metrics and
 * lineage. Files are chunked (tensor-aware where the format is known),
 * deduplicated and compressed into the store; a version points to a tree
 * object (sorted paths) whose entries point to file objects (chunk lists).
 * See docs/design.md and docs/formats.md.
 *
 * Concurrency: one struct cairn_repo per thread. Processes coordinate with
 * .cairn/lock: everything but gc holds it shared while it works, gc holds it
 * exclusively; metadata changes are single SQLite transactions, so readers
 * never see half a version.
 */
#ifndef CAIRN_REPO_H
#define CAIRN_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"

struct cairn_repo;
struct cairn_store;
struct cairn_registry;

typedef void (*cairn_progress_fn)(unsigned long long done, unsigned long long total, void *payload);

/* Create DIR/.cairn (DIR is created if missing). CAIRN_EEXISTS if already one. */
int cairn_repo_init(const char *dir);

/*
 * Open the repository containing `start` (NULL: the current directory),
 * walking up like git. CAIRN_ENOTFOUND with "not a cairn repository" if none.
 */
int cairn_repo_open(struct cairn_repo **out, const char *start);
void cairn_repo_free(struct cairn_repo *repo);

const char *cairn_repo_workdir(const struct cairn_repo *repo);
const char *cairn_repo_cairndir(const struct cairn_repo *repo);
struct cairn_store *cairn_repo_store(struct cairn_repo *repo);
struct cairn_registry *cairn_repo_registry(struct cairn_repo *repo);

/* The user recorded as actor and author: $CAIRN_USER, else the login name. */
const char *cairn_repo_user(const struct cairn_repo *repo);

/* ---- names and refs ------------------------------------------------- */

/* 0 if `name` matches [a-z0-9][a-z0-9._-]{0,63}, else CAIRN_EINVALID saying what is allowed. */
int cairn_name_valid(const char *name, const char *what);

/* A resolved version: the registry's view of one version. */
struct cairn_version {
    cairn_oid id;
    char model[65];
    char kind[16]; /* "model" or "dataset" */
    int number;
    cairn_oid tree;
    int has_parent;
    cairn_oid parent;
    long long time_ns;
    char *message, *author, *host, *code_commit; /* owned; released by cairn_version_release */
    int code_dirty;                              /* -1 unknown */
    uint64_t raw_size;                           /* sum of file sizes */
    uint64_t stored_new;                         /* bytes this version added to the store */
    uint64_t nfiles;
};
void cairn_version_release(struct cairn_version *v);

/*
 * Resolve REF (SPEC §2): NAME (latest), NAME@vN, NAME@ALIAS, NAME@TAG, or a
 * hex id prefix of at least 7 digits. CAIRN_ENOTFOUND, CAIRN_EAMBIGUOUS or
 * CAIRN_EINVALID with a message that names the ref.
 */
int cairn_repo_resolve(struct cairn_repo *repo, const char *ref, struct cairn_version *out);

/* ---- staging -------------------------------------------------------- */

struct cairn_add_opts {
    const char *model;          /* stage for this model; NULL: the default stage */
    cairn_progress_fn progress; /* bytes read of bytes to read */
    void *progress_payload;
};

struct cairn_add_stats {
    uint64_t files;           /* files staged */
    uint64_t files_unchanged; /* taken from the stat cache without reading */
    uint64_t bytes_read;      /* bytes hashed */
    uint64_t bytes_total;     /* total size of the files staged */
    uint64_t bytes_stored;    /* new bytes written to the store */
    uint64_t chunks_new, chunks_dedup;
};

/* Stage files or directories (recursively), paths relative to the cwd. */
int cairn_repo_add(struct cairn_repo *repo, const char *const *paths, size_t npaths,
                   const struct cairn_add_opts *opts, struct cairn_add_stats *out);

enum cairn_status_kind {
    CAIRN_STATUS_STAGED,    /* staged and unchanged on disk since */
    CAIRN_STATUS_MODIFIED,  /* staged or committed, changed on disk since */
    CAIRN_STATUS_DELETED,   /* staged or committed, gone from disk */
    CAIRN_STATUS_UNTRACKED, /* neither staged nor in any model's latest version */
};
struct cairn_status_entry {
    enum cairn_status_kind kind;
    const char *path;
    const char *model; /* stage or model it belongs to ("" default stage) */
    uint64_t size;
};
typedef int (*cairn_status_fn)(const struct cairn_status_entry *e, void *payload);
int cairn_repo_status(struct cairn_repo *repo, cairn_status_fn cb, void *payload);

/* ---- commit --------------------------------------------------------- */

struct cairn_commit_opts {
    const char *model;   /* required */
    const char *message; /* required */
    const char *kind;    /* "model" (default) or "dataset"; must match an existing model */
    const char *params_file, *metrics_file; /* flat JSON or YAML objects; may be NULL */
    const char *const *data_refs;           /* datasets used */
    size_t ndata;
    const char *parent_ref;  /* NULL: the model's latest version */
    const char *code_commit; /* NULL: detect from git in the workdir */
    /*
     * Commit the files under this directory (anywhere on disk) instead of a
     * stage; the stages are left alone. Used for derived versions.
     */
    const char *from_dir;
    /* An extra lineage edge "derived" to this version, with a detail such as
     * "quantize int8". */
    const char *derived_from_ref;
    const char *derived_detail;
};
int cairn_repo_commit(struct cairn_repo *repo, const struct cairn_commit_opts *opts,
                      struct cairn_version *out);

/* ---- reading versions ----------------------------------------------- */

struct cairn_tree_entry {
    char *path;
    uint32_t mode;
    uint64_t size;
    cairn_oid file;   /* file object (chunk list) */
    cairn_oid digest; /* BLAKE3 of the content, as b3sum prints it */
};
struct cairn_tree {
    struct cairn_tree_entry *entries;
    size_t n;
};
int cairn_repo_read_tree(struct cairn_repo *repo, const cairn_oid *tree, struct cairn_tree *out);
void cairn_tree_release(struct cairn_tree *t);

/* The tensors of one file of a version, as the chunker recorded them. */
struct cairn_tensor_entry {
    const char *name;
    const char *dtype; /* "F32", "BF16", "Q4_0", ... */
    unsigned rank;
    uint64_t shape[8];
    uint64_t offset, bytes; /* where the tensor's data lies in the file */
    uint64_t chunks;
    const cairn_oid *chunk_ids; /* `chunks` ids, valid during the callback */
};
typedef int (*cairn_tensor_fn)(const struct cairn_tensor_entry *t, void *payload);
/* Call `cb` for each tensor of the file in file order (none for a non-tensor file). */
int cairn_repo_tensors(struct cairn_repo *repo, const struct cairn_tree_entry *e,
                       cairn_tensor_fn cb, void *payload);

/*
 * How one tensor differs between two versions of a file. `before` and `after`
 * (NULL when the tensor was added or removed) are valid during the callback
 * only, with chunk_ids NULL. When `measured` is 1 (a changed tensor of the
 * same dtype and shape, and the caller asked for figures): `elements` is
 * the element count (blocks for GGML quantised types), `differ` how many of
 * them differ bitwise, and for F16, BF16, F32 and F64 (`has_max_abs`)
 * `max_abs` is the largest |before - after| as a double (a NaN against anything
 * else counts as infinite).
 */
enum cairn_tensor_change_kind {
    CAIRN_TENSOR_ADDED = 1,
    CAIRN_TENSOR_REMOVED,
    CAIRN_TENSOR_CHANGED,
};
struct cairn_tensor_change {
    int change; /* enum cairn_tensor_change_kind */
    const struct cairn_tensor_entry *before, *after;
    int measured;
    uint64_t elements, differ;
    int has_max_abs;
    double max_abs;
};
typedef int (*cairn_tensor_change_fn)(const struct cairn_tensor_change *c, void *payload);
/*
 * Compare the tensors of file `a` (older) and `b` (newer): `cb` is called
 * for each tensor removed or changed, in a's file order, then for each tensor
 * added, in b's. Unchanged tensors (same dtype, shape and chunks) are not
 * reported. With `measure` set, changed tensors are decoded chunk by chunk
 * from the store and compared (memory: one chunk per side); otherwise only
 * the file objects are read. A non-zero return from `cb` stops the walk and
 * is returned. Errors: negative CAIRN_E* (CAIRN_ECORRUPT for damaged data).
 */
int cairn_repo_tensor_diff(struct cairn_repo *repo, const struct cairn_tree_entry *a,
                           const struct cairn_tree_entry *b, int measure, cairn_tensor_change_fn cb,
                           void *payload);

struct cairn_checkout_opts {
    const char *const *include; /* fnmatch globs on paths; none means all */
    size_t ninclude;
    int force; /* overwrite existing files that differ */
    cairn_progress_fn progress;
    void *progress_payload;
};
struct cairn_checkout_stats {
    uint64_t files, bytes;
};
/*
 * Write the files of REF under `target` (created if missing), verifying every
 * chunk; each file is written to a temp name and renamed into place only when
 * complete and verified, so no corrupted or partial file is left. Without
 * opts->force, a regular file in the way whose content the repository does
 * not keep (not REF's, not staged, in no version) fails the checkout with
 * CAIRN_EEXISTS before anything is written. Modes are applied under the umask.
 */
int cairn_repo_checkout(struct cairn_repo *repo, const char *ref, const char *target,
                        const struct cairn_checkout_opts *opts, struct cairn_checkout_stats *out);

/* ---- maintenance ---------------------------------------------------- */

typedef void (*cairn_report_fn)(const char *msg, void *payload);
/* Check store and registry; each problem reported; returns the count (>= 0) or an error. */
int cairn_repo_fsck(struct cairn_repo *repo, cairn_report_fn cb, void *payload);

/*
 * fsck --repair. Under the exclusive repository lock (as gc): repair the
 * store (cairn_store_repair: rebuild lost or damaged pack indexes from their
 * packs, drop corrupt chunks, move damaged files to .cairn/store/damaged/,
 * delete nothing); check that every version and staged file still has every
 * chunk it needs (delta bases included); when chunks were dropped or any are
 * missing, clear the stat cache so that the next `add` reads every file again
 * and stores them anew; append an `fsck.repair` audit event when the store
 * changed. `action` gets one line per change, `lost` one line per version or
 * staged file that cannot be restored (either may be NULL). Returns the
 * number of those, or < 0. Killed at any point, the next call finishes.
 */
struct cairn_repo_repair_stats {
    uint64_t packs_written, chunks_dropped, files_moved, lost;
};
int cairn_repo_repair(struct cairn_repo *repo, cairn_report_fn action, cairn_report_fn lost,
                      void *payload, struct cairn_repo_repair_stats *out);

struct cairn_repo_gc_stats {
    uint64_t chunks_kept, chunks_removed, bytes_before, bytes_after, packs_removed;
};
int cairn_repo_gc(struct cairn_repo *repo, int dry_run, struct cairn_repo_gc_stats *out);

/* ---- the release rule ---------------------------------------------------- */

/*
 * Only a version that passed its gate reaches an alias. cairn_repo_promote()
 * and the rollouts of `cairn serve` (start, and again when a rollout moves
 * the alias at its end) apply this one check.
 */
struct cairn_release_check {
    cairn_oid policy;  /* digest of the policy required (zero if none could be read) */
    char *policy_name; /* its path as used (owned; NULL when the alias has no policy) */
    int have_gate;     /* a gate result was found */
    int64_t gate_id;   /* that result's id */
    int gate_passed;   /* and whether it passed */
};
void cairn_release_check_release(struct cairn_release_check *c);

/*
 * Whether `v` may be moved to `alias` of its model: the latest stored gate
 * result for `v` under the required policy (matched by digest) must exist
 * and have passed. The policy is `policy` (a path usable from the cwd) or,
 * when NULL, the alias's configured one ([alias "NAME"] policy).
 * `doing` names the operation in messages ("promote", "roll out"): "refusing
 * to DOING model@vN to 'ALIAS': ...".
 *
 * Fills *out as far as it got (release it in every case). Returns 0 when the
 * gate passed; CAIRN_ECHECK when there is no result or it failed;
 * CAIRN_EINVALID when the alias has no policy; the policy file's own errors
 * (CAIRN_EINVALID, CAIRN_ENOTFOUND) when it cannot be read; other negative
 * codes for runtime failures. Call it inside the registry transaction that
 * moves the alias, so no gate result lands between the check and the move.
 */
int cairn_repo_release_check(struct cairn_release_check *out, struct cairn_repo *repo,
                             const struct cairn_version *v, const char *alias, const char *policy,
                             const char *doing);

/*
 * 1 if a failed release check may be overridden by force (with a reason):
 * a missing or failed gate, no policy, an unreadable policy. Runtime
 * failures (registry errors, out of memory) are not.
 */
int cairn_release_check_forcible(int error);

/*
 * Add the outcome of a check to the audit details `*details` (the text of
 * a JSON object, or NULL for an empty one): "forced", "policy",
 * "policy_name", "gate", and "reason" when `reason` is not NULL; the keys
 * `cairn promote` records. Replaces *details (malloc'd; the old text is
 * freed).
 */
int cairn_release_check_annotate(char **details, const struct cairn_release_check *c, int forced,
                                 const char *reason);

#endif
