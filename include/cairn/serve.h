/*
 * Registry state of `cairn serve`: API tokens with roles, rollouts (so a
 * restarted daemon resumes where it was) and alias moves made by rollouts
 * and rollbacks (kept in the alias history and audited).
 *
 * The SQL lives in lib/registry/sqlite_serve.c; its tables are created on
 * first use. All functions follow registry.h: 0 or a negative CAIRN_E*
 * code, one struct cairn_registry per thread, strings in structs owned by
 * the struct and released by its _release function.
 */
#ifndef CAIRN_SERVE_H
#define CAIRN_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"

struct cairn_registry;

/* ---- tokens ---------------------------------------------------------- */

/* Roles, each including the ones below it. */
enum cairn_role {
    CAIRN_ROLE_NONE = 0,
    CAIRN_ROLE_READ = 1,
    CAIRN_ROLE_WRITE = 2,
    CAIRN_ROLE_PROMOTE = 3,
    CAIRN_ROLE_ADMIN = 4,
};
/* "read", "write", "promote", "admin" -> role; CAIRN_ROLE_NONE for anything else. */
enum cairn_role cairn_role_parse(const char *s);
/* The role's name ("none" for CAIRN_ROLE_NONE). */
const char *cairn_role_name(enum cairn_role role);

#define CAIRN_TOKEN_MAX_MODELS 16

/* A stored token: its role, name, and the models it is limited to. */
struct cairn_token_info {
    enum cairn_role role;
    char name[65];
    size_t nmodels; /* 0: every model */
    char models[CAIRN_TOKEN_MAX_MODELS][65];
};

/*
 * Store a token by the BLAKE3 hash of its text (the text itself is never
 * stored) with a name, a role and the `nmodels` models it is limited to (0:
 * every model; at most CAIRN_TOKEN_MAX_MODELS valid model names, which need
 * not exist yet), audited as "token.create". CAIRN_EEXISTS if a token of
 * that name exists.
 */
int cairn_registry_token_add(struct cairn_registry *r, const cairn_oid *hash, const char *name,
                             enum cairn_role role, const char *const *models, size_t nmodels,
                             const char *actor);
/*
 * Look a token hash up into *out. CAIRN_ENOTFOUND for an unknown token.
 * Tokens stored before scopes existed have no models: every model.
 */
int cairn_registry_token_find(struct cairn_registry *r, const cairn_oid *hash,
                              struct cairn_token_info *out);

/* ---- rollouts -------------------------------------------------------- */

/*
 * One rollout per model. `phase` is "running", "paused", "promoted",
 * "rolled_back", "aborted" or "concluded" (an A/B or shadow test that ran
 * its course and waits for a decision). `step_elapsed_ms` is the time spent
 * in the current step so far, so a restart resumes the pause where it was.
 */
struct cairn_rollout_state {
    char model[65];
    char alias[65];
    cairn_oid stable, candidate;
    char *plan; /* the plan's YAML text; owned */
    char phase[16];
    int step;
    int64_t step_elapsed_ms;
    int failures;
    int step_passed; /* an analysis passed during the current step */
    long long started_ns, updated_ns;
    char *reason; /* why it ended (figures of a failed analysis); owned, may be NULL */
    char *forced; /* started past the release check: the reason given; owned, NULL if not */
    char *policy; /* the policy the release check requires instead of the alias's (rollout
                     start --policy); owned, NULL: the alias's */
};
void cairn_rollout_state_release(struct cairn_rollout_state *s);

/* Insert or replace the rollout of s->model. */
int cairn_registry_rollout_put(struct cairn_registry *r, const struct cairn_rollout_state *s);
/* The rollout of `model`; CAIRN_ENOTFOUND if it never had one. `out` is filled on success. */
int cairn_registry_rollout_get(struct cairn_registry *r, const char *model,
                               struct cairn_rollout_state *out);
typedef int (*cairn_rollout_fn)(const struct cairn_rollout_state *s, void *payload);
/* Every stored rollout, by model name. */
int cairn_registry_rollout_list(struct cairn_registry *r, cairn_rollout_fn cb, void *payload);

/* ---- alias moves ------------------------------------------------------ */

/*
 * Point `alias` of `model` at version `to`, appending to the alias history
 * (with `reason`) and to the audit log (action `action`, details
 * `details_json` or NULL), in one transaction of its own. The version must
 * belong to the model (CAIRN_EINVALID otherwise).
 */
int cairn_registry_serve_alias_move(struct cairn_registry *r, const char *model, const char *alias,
                                    const cairn_oid *to, const char *actor, const char *action,
                                    const char *reason, const char *details_json);
/*
 * The version `alias` pointed at before its current target: the old version
 * of the latest history entry. CAIRN_ENOTFOUND when there is none.
 */
int cairn_registry_serve_alias_previous(struct cairn_registry *r, const char *model,
                                        const char *alias, cairn_oid *out);

#endif
