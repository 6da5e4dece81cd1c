/*
 * Remotes at the repository level: push, pull (and so clone) versions to and
 * from an object store, moving only the chunks the other side lacks.
 *
 * A remote holds immutable objects only (docs/remotes.md, "Layout of a
 * remote"): packs and their idx files in the local pack format, one JSON
 * object per version carrying its canonical record, tags, per-writer alias
 * entries and signatures. The transport underneath is lib/remote/backend.h.
 *
 * Remotes are configured in the registry (cairn_registry_remote_add); the
 * transport reads credentials from the environment when a remote is opened,
 * so nothing secret is ever stored or printed.
 *
 * Both calls hold the repository lock shared while they work, use one
 * thread (the transport runs transfers in parallel on it) and keep memory
 * bounded by the transport's concurrency and the largest chunk, not by the
 * size of what moves. Warnings (a version renumbered, an alias left alone)
 * go through cairn_warn().
 */
#ifndef CAIRN_REMOTE_H
#define CAIRN_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"
#include "cairn/repo.h"

struct cairn_remote;

/*
 * Open the configured remote `name` (NULL: "origin", else the only remote).
 * `*name_out` (may be NULL) receives the name used, a heap string.
 */
int cairn_repo_remote_open(struct cairn_remote **out, char **name_out, struct cairn_repo *repo,
                           const char *name);

struct cairn_push_opts {
    const char *remote;         /* NULL: "origin" or the only remote */
    const char *const *refs;    /* versions to push; NAME means every version of NAME */
    size_t nrefs;               /* 0: every version */
    int force;                  /* move aliases even over someone else's change */
    cairn_progress_fn progress; /* pack bytes uploaded of pack bytes to upload */
    void *progress_payload;
};

struct cairn_push_stats {
    uint64_t versions;      /* versions selected */
    uint64_t versions_sent; /* version records the remote did not have */
    uint64_t chunks_needed; /* chunks those versions need, bases included */
    uint64_t chunks_sent;   /* chunks the remote lacked */
    uint64_t packs_sent;    /* new packs uploaded */
    uint64_t pack_bytes;    /* their size */
    uint64_t bytes_sent;    /* object payload bytes sent, everything included */
    uint64_t tags_sent, aliases_sent, signatures_sent;
    uint64_t aliases_rejected; /* changed on the remote by someone else */
};

/*
 * Push versions (and their chunks, tags, aliases and signatures). A re-run
 * after an interruption sends only what is missing. Aliases changed on the
 * remote since we last saw them are not overwritten unless opts->force:
 * they are counted in aliases_rejected, and the call returns CAIRN_EEXISTS
 * naming the first one after everything else was pushed.
 */
int cairn_push(struct cairn_repo *repo, const struct cairn_push_opts *opts,
               struct cairn_push_stats *out);

struct cairn_pull_opts {
    const char *remote;         /* NULL: "origin" or the only remote */
    const char *const *refs;    /* NAME (every version), NAME@vN, NAME@TAG, NAME@ALIAS, id prefix */
    size_t nrefs;               /* 0: every version */
    const char *const *include; /* only these paths' chunks (globs as in checkout) */
    size_t ninclude;
    cairn_progress_fn progress; /* bytes received of bytes to fetch */
    void *progress_payload;
};

struct cairn_pull_stats {
    uint64_t versions;     /* versions selected */
    uint64_t versions_new; /* inserted into the registry */
    uint64_t chunks_fetched;
    uint64_t ranges; /* ranged reads after coalescing */
    uint64_t bytes_received;
    uint64_t tags_new, aliases_updated, signatures_new;
};

/*
 * Fetch version records, then only the chunks the selected versions (and
 * include paths) need, with ranged reads from the remote's packs. Every
 * record's id is recomputed and every chunk decoded and verified before it
 * is stored; a remote object that fails is CAIRN_ECORRUPT naming it, and
 * nothing unverified is written. Remote aliases become remote-tracking
 * aliases; a local alias follows when it was unset or still at the old
 * remote value.
 */
int cairn_pull(struct cairn_repo *repo, const struct cairn_pull_opts *opts,
               struct cairn_pull_stats *out);

#endif
