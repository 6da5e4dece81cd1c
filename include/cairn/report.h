/*
 * Release history and delivery metrics of a model (`cairn report`).
 *
 * cairn_report_load() reads what the registry already keeps — versions,
 * their latest gate result, the alias history and the audit log's promote,
 * rollout and rollback events — into a struct cairn_report, and
 * cairn_report_compute() derives the delivery metrics from it. The second
 * step is pure arithmetic on the structure, so tests can fill one by hand.
 *
 * Definitions (docs/registry.md, "Delivery report"), all against one alias
 * (production by default):
 *   change       a `promote` to the alias, or a rollout started on it
 *   deployment   a change that moved the alias to its version (a promote,
 *                forced or not, or a rollout that ended promoted)
 *   failed       a forced promote, a rollout rolled back or aborted, or a
 *                change undone later by `cairn rollback`
 *   lead time    first time a version reached the alias minus its commit time
 *   restore      from the rollout's first breach (`rollout.breach`, a failed
 *                analysis) to the rollback that put 100% of traffic back on
 *                stable; for a change with no breach (a forced promote, an
 *                abort, an undo by `cairn rollback`) from the moment it took
 *                traffic (promote or rollout start)
 *   window       from the model's first commit to `now`, in whole days (at
 *                least one), over which deployment frequency is counted
 * Not thread-safe; one report per caller.
 */
#ifndef CAIRN_REPORT_H
#define CAIRN_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"

struct cairn_registry;

/* One version of the model. gate: -1 never gated, 0 latest gate failed, 1 passed. */
struct cairn_report_version {
    int number;
    cairn_oid id;
    int64_t time_ns;
    char *message; /* owned */
    int gate;
    char *gate_policy; /* owned, NULL if never gated */
    int64_t live_ns;   /* first time the version reached the alias, 0 never */
};

/* One entry of the alias history (any alias of the model). from 0: none. */
struct cairn_report_move {
    int64_t time_ns;
    char alias[65];
    int from, to;
    char *author; /* owned */
    char *reason; /* owned, may be NULL */
};

enum cairn_change_kind { CAIRN_CHANGE_PROMOTE, CAIRN_CHANGE_ROLLOUT };

/* One change of the alias; outcome: promoted, forced, rolled_back, aborted, concluded, running. */
struct cairn_report_change {
    enum cairn_change_kind kind;
    int64_t time_ns; /* the promote, or the rollout's start */
    int64_t end_ns;  /* when the outcome was reached (= time_ns for a promote), 0 running */
    int version;     /* the version it moved to (or tried to) */
    char strategy[16];
    char outcome[16];
    int deployed;        /* it moved the alias to its version */
    int failed;          /* counted by the change failure rate */
    int64_t restored_ns; /* the rollback that ended it, 0 none */
    int64_t breach_ns;   /* the rollout's first failed analysis, 0 none */
    char *reason;        /* owned, may be NULL: --reason of a forced promote, or why it ended */
};

struct cairn_report_day {
    int64_t day; /* days since 1970-01-01 UTC */
    int changes, failed;
};

struct cairn_report_metrics {
    int days;               /* length of the window */
    int deployments;        /* changes that reached the alias */
    double deploys_per_day; /* deployments / days */
    int lead_count;         /* versions with a lead time */
    double lead_median_s;   /* -1 if none */
    int changes, failed;
    double change_failure_rate; /* failed / changes, -1 if no change */
    int restores;
    double restore_median_s;          /* -1 if none */
    struct cairn_report_day *per_day; /* owned, ndays entries, oldest first */
    size_t ndays;
};

struct cairn_report {
    char model[65];
    char alias[65];
    int64_t from_ns, to_ns; /* the window */
    struct cairn_report_version *versions;
    size_t nversions;
    struct cairn_report_move *moves;
    size_t nmoves;
    struct cairn_report_change *changes;
    size_t nchanges;
    struct cairn_report_metrics m;
};

/*
 * Read model NAME's history against ALIAS up to now_ns and compute its
 * metrics. Returns 0, CAIRN_ENOTFOUND if no such model, or another negative
 * code. On success the caller owns *out and frees it with cairn_report_release().
 */
int cairn_report_load(struct cairn_report *out, struct cairn_registry *r, const char *name,
                      const char *alias, int64_t now_ns);

/*
 * (Re)compute out->m from versions and changes (window from the first
 * version's commit, or from the first change, to to_ns). Returns 0 or
 * CAIRN_ENOMEM.
 */
int cairn_report_compute(struct cairn_report *rep);

/* Where time to restore starts for change `c`: its first breach, else its start. */
int64_t cairn_report_restore_from(const struct cairn_report_change *c);

/* Median of n values (sorted in place); -1 when n is 0. */
double cairn_report_median(double *v, size_t n);

/* Free what a report owns; accepts NULL. */
void cairn_report_release(struct cairn_report *rep);

#endif
