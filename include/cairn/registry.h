/*
 * The registry: models, versions, params, metrics, lineage, tags, aliases
 * with history, the staging area, the stat cache and the hash-chained audit
 * log. All SQL lives behind this interface (lib/registry/); the embedded
 * back end is SQLite in WAL mode, and a PostgreSQL one can implement the
 * same functions without touching callers.
 *
 * Transactions: cairn_registry_begin() starts a write transaction (SQLite
 * BEGIN IMMEDIATE, waiting up to 30 s for other writers); everything done
 * until cairn_registry_commit() lands atomically. Read functions may be
 * called inside or outside a transaction.
 *
 * Strings returned in structs are owned by the struct and released by its
 * _release function. One struct cairn_registry per thread.
 */
#ifndef CAIRN_REGISTRY_H
#define CAIRN_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"
#include "cairn/values.h"

struct cairn_registry;
struct cairn_version;

int cairn_registry_open(struct cairn_registry **out, const char *path, int create);
void cairn_registry_free(struct cairn_registry *r);

int cairn_registry_begin(struct cairn_registry *r);
int cairn_registry_commit(struct cairn_registry *r);
void cairn_registry_rollback(struct cairn_registry *r);

/* Run the database's own integrity check; problems reported one per line. */
int cairn_registry_check(struct cairn_registry *r, void (*cb)(const char *, void *), void *payload);

/* ---- models ---------------------------------------------------------- */

struct cairn_model_info {
    int64_t id;
    char name[65];
    char kind[16];
    long long created_ns;
    int nversions;
};
int cairn_registry_model_get(struct cairn_registry *r, const char *name,
                             struct cairn_model_info *out);
/* Create the model if missing; CAIRN_EINVALID if it exists with another kind. */
int cairn_registry_model_ensure(struct cairn_registry *r, const char *name, const char *kind,
                                struct cairn_model_info *out);
typedef int (*cairn_model_fn)(const struct cairn_model_info *m, void *payload);
int cairn_registry_model_list(struct cairn_registry *r, cairn_model_fn cb, void *payload);

/* ---- versions -------------------------------------------------------- */

/*
 * Insert a version (the caller fills every field of `v` but `number`, which
 * is assigned here as the model's next number and written back), its
 * canonical record text, params, metrics, and lineage edges.
 */
struct cairn_lineage_edge {
    char kind[16]; /* "parent", "data", "derived" */
    cairn_oid target;
    char *detail; /* may be NULL */
};
int cairn_registry_version_insert(struct cairn_registry *r, struct cairn_version *v,
                                  const char *record, const struct cairn_values *params,
                                  const struct cairn_values *metrics,
                                  const struct cairn_lineage_edge *edges, size_t nedges);

int cairn_registry_version_get(struct cairn_registry *r, const cairn_oid *id,
                               struct cairn_version *out);
int cairn_registry_version_by_number(struct cairn_registry *r, const char *model, int number,
                                     struct cairn_version *out);
int cairn_registry_version_latest(struct cairn_registry *r, const char *model,
                                  struct cairn_version *out);
/* Resolve a hex prefix; CAIRN_EAMBIGUOUS if more than one version matches. */
int cairn_registry_version_prefix(struct cairn_registry *r, const char *hexprefix, cairn_oid *out);
/* The canonical record text the id was computed from (caller frees). */
int cairn_registry_version_record(struct cairn_registry *r, const cairn_oid *id, char **out);

typedef int (*cairn_version_fn)(const struct cairn_version *v, void *payload);
/* Versions of one model newest first (model NULL: every version); limit 0 = all. */
int cairn_registry_version_list(struct cairn_registry *r, const char *model, int limit,
                                cairn_version_fn cb, void *payload);

int cairn_registry_params(struct cairn_registry *r, const cairn_oid *v, struct cairn_values *out);
int cairn_registry_metrics(struct cairn_registry *r, const cairn_oid *v, struct cairn_values *out);
/*
 * The metrics a gate may use: those of the version's record (covered by its
 * id) and those measured in this repository. Annotations that arrived from
 * a remote (source CAIRN_METRICS_SOURCE_REMOTE) are not covered by the id
 * or a signature, so they are shown but never decide a check.
 */
#define CAIRN_METRICS_SOURCE_REMOTE "remote"
int cairn_registry_metrics_trusted(struct cairn_registry *r, const cairn_oid *v,
                                   struct cairn_values *out);
/* Record metrics measured later (eval --record); replaces same-named ones. */
int cairn_registry_metrics_set(struct cairn_registry *r, const cairn_oid *v,
                               const struct cairn_values *metrics, const char *source);

typedef int (*cairn_edge_fn)(const struct cairn_lineage_edge *e, void *payload);
int cairn_registry_lineage(struct cairn_registry *r, const cairn_oid *v, cairn_edge_fn cb,
                           void *payload);

/* ---- tags and aliases ------------------------------------------------ */

int cairn_registry_tag_get(struct cairn_registry *r, const char *model, const char *tag,
                           cairn_oid *out);
/* CAIRN_EEXISTS if the tag exists (tags are immutable). */
int cairn_registry_tag_add(struct cairn_registry *r, const char *model, const char *tag,
                           const cairn_oid *v, const char *author);
typedef int (*cairn_tag_fn)(const char *tag, const cairn_oid *v, void *payload);
int cairn_registry_tag_list(struct cairn_registry *r, const cairn_oid *v, cairn_tag_fn cb,
                            void *payload);

int cairn_registry_alias_get(struct cairn_registry *r, const char *model, const char *alias,
                             cairn_oid *out);

/*
 * Aliases with history (lib/registry/sqlite_alias.c). Point `alias` of
 * `model` at `version` (which the caller has checked belongs to the model)
 * and append a history row (old version, new version, author, time,
 * reason; reason may be NULL). Returns 1 when the alias changed, 0 when it
 * already pointed there (nothing is written). Call inside a transaction
 * and append the audit event in the same one.
 */
int cairn_registry_alias_set(struct cairn_registry *r, const char *model, const char *alias,
                             const cairn_oid *version, const char *author, const char *reason);

/* One alias as it stands; strings valid during the callback only. */
struct cairn_alias_entry {
    const char *model, *alias;
    cairn_oid version;
    int number;       /* the version's vN */
    long long set_ns; /* time of the last change (0 if no history row) */
    const char *set_by;
};
typedef int (*cairn_alias_fn)(const struct cairn_alias_entry *e, void *payload);
/* Aliases of `model` (NULL: of every model), by model then alias name. */
int cairn_registry_alias_list(struct cairn_registry *r, const char *model, cairn_alias_fn cb,
                              void *payload);

/* One change of an alias; has_old is 0 for the first setting. */
struct cairn_alias_event {
    int64_t seq;
    const char *model, *alias;
    int has_old;
    cairn_oid old_version;
    int old_number;
    cairn_oid new_version;
    int new_number;
    const char *author, *reason; /* reason may be NULL */
    long long time_ns;
};
typedef int (*cairn_alias_event_fn)(const struct cairn_alias_event *e, void *payload);
/* Every change of one alias, oldest first. CAIRN_ENOTFOUND if the model is unknown. */
int cairn_registry_alias_history(struct cairn_registry *r, const char *model, const char *alias,
                                 cairn_alias_event_fn cb, void *payload);

/* ---- gate results and dataset validations (sqlite_gate.c) ------------ */

/* A stored gate evaluation. Strings owned; release with cairn_gate_record_release. */
struct cairn_gate_record {
    int64_t id;
    cairn_oid version;
    cairn_oid policy;  /* cairn_policy_digest() of the policy evaluated */
    char *policy_name; /* the path it was read from, as given */
    int passed;        /* 1 only when every check passed */
    char *result;      /* cairn_gate_result_to_json() text */
    long long time_ns;
    char *actor;
};
void cairn_gate_record_release(struct cairn_gate_record *g);
/* Store a result (the id is assigned and written back into rec->id). */
int cairn_registry_gate_add(struct cairn_registry *r, struct cairn_gate_record *rec);
/*
 * The latest result for `version` and `policy` (NULL: any policy).
 * CAIRN_ENOTFOUND (with a message) when there is none.
 */
int cairn_registry_gate_latest(struct cairn_registry *r, const cairn_oid *version,
                               const cairn_oid *policy, struct cairn_gate_record *out);
typedef int (*cairn_gate_record_fn)(const struct cairn_gate_record *g, void *payload);
/* Every stored result of `version`, oldest first. */
int cairn_registry_gate_list(struct cairn_registry *r, const cairn_oid *version,
                             cairn_gate_record_fn cb, void *payload);

/*
 * Validation results of dataset versions (`cairn data validate` records
 * them; `data: validated` gate checks read them). `schema` names the schema
 * file; `report` is JSON text or NULL.
 */
int cairn_registry_data_validation_add(struct cairn_registry *r, const cairn_oid *dataset,
                                       const char *schema, int passed, const char *report,
                                       const char *actor);
/* The latest result for a dataset version: *passed 0/1. CAIRN_ENOTFOUND if never validated. */
int cairn_registry_data_validation_latest(struct cairn_registry *r, const cairn_oid *dataset,
                                          int *passed, long long *time_ns);

/* ---- remotes (sqlite_remote.c) ---------------------------------------- */

/* A configured remote: never a credential, only where and how to connect. */
struct cairn_remote_config {
    char name[65];
    char *url;       /* file:///path or s3://bucket/prefix */
    char *endpoint;  /* NULL: from the environment */
    char *region;    /* NULL: from the environment */
    int path_style;  /* 0 auto, 1 path, -1 virtual host */
    int concurrency; /* 0: the transport's default */
};
void cairn_remote_config_release(struct cairn_remote_config *c);
/* CAIRN_EEXISTS if a remote of that name exists. */
int cairn_registry_remote_add(struct cairn_registry *r, const struct cairn_remote_config *c);
/* CAIRN_ENOTFOUND (with a message) if there is no such remote. */
int cairn_registry_remote_get(struct cairn_registry *r, const char *name,
                              struct cairn_remote_config *out);
/* Removes the remote and its remote-tracking aliases; CAIRN_ENOTFOUND if absent. */
int cairn_registry_remote_remove(struct cairn_registry *r, const char *name);
typedef int (*cairn_remote_config_fn)(const struct cairn_remote_config *c, void *payload);
/* Remotes by name; the struct is valid during the callback only. */
int cairn_registry_remote_list(struct cairn_registry *r, cairn_remote_config_fn cb, void *payload);

/*
 * Remote-tracking aliases: where `alias` of `model` stood on `remote` when
 * we last pushed or pulled, and the remote object (`key`) that said so.
 */
struct cairn_tracking_ref {
    const char *remote, *model, *alias, *key;
    cairn_oid version;
};
int cairn_registry_tracking_set(struct cairn_registry *r, const char *remote, const char *model,
                                const char *alias, const cairn_oid *version, const char *key);
typedef int (*cairn_tracking_fn)(const struct cairn_tracking_ref *t, void *payload);
/* Every tracking alias of `remote` (NULL: of every remote), by remote, model, alias. */
int cairn_registry_tracking_list(struct cairn_registry *r, const char *remote, cairn_tracking_fn cb,
                                 void *payload);

/* Give version `id` the number `number`; CAIRN_EEXISTS if the model uses it already. */
int cairn_registry_version_renumber(struct cairn_registry *r, const cairn_oid *id, int number);

/* ---- staging area and stat cache ------------------------------------- */

struct cairn_stage_entry {
    char *model; /* "" for the default stage */
    char *path;
    cairn_oid file, digest;
    uint64_t size;
    uint32_t mode;
};
int cairn_registry_stage_put(struct cairn_registry *r, const struct cairn_stage_entry *e);
typedef int (*cairn_stage_fn)(const struct cairn_stage_entry *e, void *payload);
/* model NULL: every stage. */
int cairn_registry_stage_list(struct cairn_registry *r, const char *model, cairn_stage_fn cb,
                              void *payload);
int cairn_registry_stage_clear(struct cairn_registry *r, const char *model);
/* The staged entry for `path` in `model`'s stage (file, digest, size, mode; not model/path). */
int cairn_registry_stage_get(struct cairn_registry *r, const char *model, const char *path,
                             struct cairn_stage_entry *out);

struct cairn_stat_entry {
    uint64_t size;
    int64_t mtime_ns, ctime_ns;
    uint64_t ino, dev;
    cairn_oid file, digest;
};
int cairn_registry_statcache_get(struct cairn_registry *r, const char *path,
                                 struct cairn_stat_entry *out);
int cairn_registry_statcache_put(struct cairn_registry *r, const char *path,
                                 const struct cairn_stat_entry *e);
/* Forget every stat cache entry: the next add reads every file (fsck --repair). */
int cairn_registry_statcache_clear(struct cairn_registry *r);

/* ---- audit log ------------------------------------------------------- */

struct cairn_audit_entry {
    int64_t seq;
    long long time_ns;
    char *actor, *action, *subject, *details; /* details: JSON text */
    cairn_oid prev, hash;
};
/*
 * Append an event. Its hash is BLAKE3(prev hash || canonical encoding of the
 * event), so editing or deleting any row breaks every later link. Must be
 * called inside a transaction so the event lands with the change it records.
 */
int cairn_registry_audit_append(struct cairn_registry *r, const char *actor, const char *action,
                                const char *subject, const char *details_json);
typedef int (*cairn_audit_fn)(const struct cairn_audit_entry *e, void *payload);
int cairn_registry_audit_list(struct cairn_registry *r, cairn_audit_fn cb, void *payload);
/*
 * Recompute the chain. Returns 0 when intact; CAIRN_ECHECK naming the first
 * bad entry (and its seq in *bad_seq) otherwise.
 */
int cairn_registry_audit_verify(struct cairn_registry *r, int64_t *bad_seq);

#endif
