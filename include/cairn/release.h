/*
 * Release steps on a repository: moving aliases, recording gate results and
 * measured metrics, promoting a version to an alias behind its gate, and
 * the `data: validated` fact for gates. Each mutating call is one registry
 * transaction that also appends its audit event, so the log and the state
 * it describes never disagree.
 *
 * An alias's gate policy lives in the repository config (.cairn/config):
 *
 *     [alias "production"]
 *         policy = gates/production.yaml
 *
 * with the path relative to the repository root. Nothing here prints or
 * exits; one struct cairn_repo per thread as everywhere.
 */
#ifndef CAIRN_RELEASE_H
#define CAIRN_RELEASE_H

#include "cairn/common.h"
#include "cairn/gate.h"
#include "cairn/registry.h"
#include "cairn/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * 0 if `alias` may name versions of `model`: a valid name, not shaped like a
 * version number (vN), and not already a tag of the model. Else
 * CAIRN_EINVALID saying why.
 */
int cairn_repo_alias_valid(struct cairn_repo *repo, const char *model, const char *alias);

/*
 * Point v->model's `alias` at version `v`, keep the change in the alias
 * history with `reason` (may be NULL) and audit it as action "alias".
 * Returns 1 when the alias moved, 0 when it already pointed at `v`.
 */
int cairn_repo_alias_set(struct cairn_repo *repo, const struct cairn_version *v, const char *alias,
                         const char *reason);

/*
 * Store a gate result for its version and audit it as action "gate".
 * `policy_name` is the policy path as the user gave it. The stored id is
 * written to *id_out when not NULL.
 */
int cairn_repo_gate_record(struct cairn_repo *repo, const struct cairn_version *v,
                           const struct cairn_gate_result *result, const char *policy_name,
                           int64_t *id_out);

/*
 * Record metrics measured after the commit (eval --record) on `v`,
 * replacing same-named ones, and audit it as action "metrics". `source`
 * says where they came from ("eval").
 */
int cairn_repo_metrics_record(struct cairn_repo *repo, const struct cairn_version *v,
                              const struct cairn_values *m, const char *source);

/* ---- alias policies ----------------------------------------------------- */

/*
 * The policy path configured for `alias` ([alias "NAME"] policy), relative
 * to the repository root, in *out (malloc'd); CAIRN_ENOTFOUND with a
 * message saying how to set one when there is none.
 */
int cairn_repo_alias_policy(char **out, struct cairn_repo *repo, const char *alias);

/*
 * Store `path` as the policy of `alias` in the config. A path inside the
 * working tree is stored relative to the repository root; one outside it
 * is stored absolute. `path` is relative to the current directory.
 */
int cairn_repo_alias_policy_set(struct cairn_repo *repo, const char *alias, const char *path);

/* Make a config-relative policy path usable from the cwd (malloc'd). */
int cairn_repo_policy_path(char **out, struct cairn_repo *repo, const char *stored);

/*
 * The release rule (cairn_repo_release_check() and its struct) is declared
 * in cairn/repo.h, so that `cairn serve` can apply it without the gate
 * types; it is implemented beside promotion, in lib/repo/release.c.
 */

/* ---- promotion ---------------------------------------------------------- */

struct cairn_promote_opts {
    const char *alias;  /* required */
    const char *policy; /* the policy file to require (path usable from the cwd); NULL: the
                           alias's configured policy */
    int force;          /* skip the gate requirement; needs a reason */
    const char *reason; /* required with force; kept in history and audit */
};

struct cairn_promote_result {
    int moved;        /* 0 when the alias already pointed at the version */
    int forced;       /* promoted by --force over a missing or failed gate */
    int have_gate;    /* a gate result was found */
    int64_t gate_id;  /* that result's id */
    int gate_passed;  /* and whether it passed */
    cairn_oid policy; /* digest of the policy required (zero if none could be read) */
    int has_old;      /* the alias pointed at another version before */
    cairn_oid old_version;
};

/*
 * Move `opts->alias` of v->model to `v` if cairn_repo_release_check() allows
 * it: the latest gate result for `v` and the alias's policy (by digest) passed. Refuses with
 * CAIRN_ECHECK when there is no such result or it failed, and CAIRN_EINVALID when the alias has no
 * policy, unless `force` (with a reason), in which case the audit event ("promote") records
 * forced=true and the reason.
 */
int cairn_repo_promote(struct cairn_promote_result *out, struct cairn_repo *repo,
                       const struct cairn_version *v, const struct cairn_promote_opts *opts);

/* ---- gate facts --------------------------------------------------------- */

/*
 * Whether the datasets of `v` passed validation: every "data" edge of its
 * lineage (or `v` itself when it is a dataset) must have a latest stored
 * validation that passed. No dataset at all is not validated. *detail
 * (malloc'd) names the first dataset that is not, or how many passed.
 */
int cairn_repo_data_validated(struct cairn_repo *repo, const cairn_oid *v, bool *ok, char **detail);

/*
 * cairn_gate_repo_ctx_init() plus the data_validated fact above: the
 * context `gate`, `promote` and rollouts evaluate policies with.
 */
void cairn_repo_gate_ctx_init(struct cairn_gate_repo_ctx *out, struct cairn_repo *repo,
                              const char *model);

#ifdef __cplusplus
}
#endif

#endif
