/*
 * SQL of `cairn serve` (include/cairn/serve.h): tokens, rollouts and alias
 * moves. The tables are created on first use, so a repository made before
 * serving existed gains them without a schema bump; columns added later
 * (added_columns[]) are added to an older table the same way. Token scopes
 * are rows of their own table, so a token from before scopes has none and
 * keeps every model. All of this is rare
 * (a token lookup per new token, a write per rollout step), so statements
 * are prepared per call.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cairn/serve.h"
#include "registry/sqlite_internal.h"
#include "util/fs.h"
#include "util/hash.h"

static const char serve_schema[] =
    "CREATE TABLE IF NOT EXISTS api_tokens("
    "  hash BLOB PRIMARY KEY, name TEXT UNIQUE NOT NULL, role INTEGER NOT NULL,"
    "  author TEXT NOT NULL, time_ns INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS rollouts("
    "  model TEXT PRIMARY KEY, alias TEXT NOT NULL, stable BLOB NOT NULL,"
    "  candidate BLOB NOT NULL, plan TEXT NOT NULL, phase TEXT NOT NULL,"
    "  step INTEGER NOT NULL, step_elapsed_ms INTEGER NOT NULL, failures INTEGER NOT NULL,"
    "  step_passed INTEGER NOT NULL, started_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL,"
    "  reason TEXT);"
    "CREATE TABLE IF NOT EXISTS api_token_models("
    "  hash BLOB NOT NULL, model TEXT NOT NULL, PRIMARY KEY(hash, model));";

/*
 * Columns added after their table was first made: a registry from before
 * gains them here, with NULL in the old rows.
 */
static const struct {
    const char *table, *column, *decl;
} added_columns[] = {
    { "rollouts", "forced", "TEXT" }, /* forced rollout starts (release check) */
    { "rollouts", "policy", "TEXT" }, /* rollout start --policy */
};

static int add_column(struct cairn_registry *r, const char *table, const char *column,
                      const char *decl)
{
    sqlite3_stmt *st = NULL;
    char sql[160];
    int error;
    if ((error = cairn__reg_query(r, &st, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?", "tt",
                                  table, column)) < 0)
        return error;
    error = cairn__reg_row(r, st);
    sqlite3_finalize(st);
    if (error != CAIRN_ENOTFOUND)
        return error;
    snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", table, column, decl);
    if ((error = cairn__reg_exec(r, sql)) < 0) {
        /* Another process may have added it between the look and the change. */
        if (cairn__reg_query(r, &st, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?", "tt",
                             table, column) == 0 &&
            cairn__reg_row(r, st) == 0) {
            cairn_error_clear();
            error = 0;
        }
        sqlite3_finalize(st);
    }
    return error;
}

static int schema(struct cairn_registry *r)
{
    int error = cairn__reg_exec(r, serve_schema);
    for (size_t i = 0; !error && i < sizeof(added_columns) / sizeof(added_columns[0]); i++)
        error =
            add_column(r, added_columns[i].table, added_columns[i].column, added_columns[i].decl);
    return error;
}

static const char *const role_names[] = { "none", "read", "write", "promote", "admin" };

enum cairn_role cairn_role_parse(const char *s)
{
    for (int i = 1; i <= CAIRN_ROLE_ADMIN; i++)
        if (s && !strcmp(s, role_names[i]))
            return (enum cairn_role)i;
    return CAIRN_ROLE_NONE;
}

const char *cairn_role_name(enum cairn_role role)
{
    return role >= CAIRN_ROLE_NONE && role <= CAIRN_ROLE_ADMIN ? role_names[role] : "none";
}

/* ---- tokens ---------------------------------------------------------- */

int cairn_registry_token_add(struct cairn_registry *r, const cairn_oid *hash, const char *name,
                             enum cairn_role role, const char *const *models, size_t nmodels,
                             const char *actor)
{
    json_t *d;
    char *details = NULL;
    int error, own_tx = !r->in_tx;

    if (role <= CAIRN_ROLE_NONE || role > CAIRN_ROLE_ADMIN)
        return cairn_error_set(CAIRN_EINVALID, "unknown role %d", (int)role);
    if (nmodels > CAIRN_TOKEN_MAX_MODELS)
        return cairn_error_set(CAIRN_EINVALID, "a token may name at most %d models",
                               CAIRN_TOKEN_MAX_MODELS);
    for (size_t i = 0; i < nmodels; i++)
        if ((error = cairn_name_valid(models[i], "model name")) < 0)
            return error;
    if ((error = schema(r)) < 0)
        return error;
    if (own_tx && (error = cairn_registry_begin(r)) < 0)
        return error;
    if ((error = cairn__reg_run(r,
                                "INSERT INTO api_tokens(hash, name, role, author, time_ns)"
                                " VALUES(?, ?, ?, ?, ?)",
                                "otitI", hash, name, (int)role, actor, cairn_time_now_ns())) < 0) {
        if (error == CAIRN_EEXISTS)
            cairn_error_set(error, "a token named '%s' exists", name);
        return cairn__reg_end(r, own_tx, error);
    }
    d = json_object();
    json_object_set_new(d, "name", json_string(name));
    json_object_set_new(d, "role", json_string(cairn_role_name(role)));
    if (nmodels) {
        json_t *a = json_array();
        for (size_t i = 0; i < nmodels; i++)
            json_array_append_new(a, json_string(models[i]));
        json_object_set_new(d, "models", a);
    }
    for (size_t i = 0; !error && i < nmodels; i++)
        error =
            cairn__reg_run(r, "INSERT OR IGNORE INTO api_token_models(hash, model) VALUES(?, ?)",
                           "ot", hash, models[i]);
    if (!error && !(details = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS)))
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    json_decref(d);
    if (!error)
        error = cairn_registry_audit_append(r, actor, "token.create", name, details);
    free(details);
    return cairn__reg_end(r, own_tx, error);
}

int cairn_registry_token_find(struct cairn_registry *r, const cairn_oid *hash,
                              struct cairn_token_info *out)
{
    sqlite3_stmt *st = NULL;
    int error;
    memset(out, 0, sizeof(*out));
    if ((error = schema(r)) < 0 ||
        (error = cairn__reg_query(r, &st, "SELECT role, name FROM api_tokens WHERE hash = ?", "o",
                                  hash)) < 0)
        return error;
    if ((error = cairn__reg_row(r, st)) == 0) {
        int role = sqlite3_column_int(st, 0);
        out->role = role >= CAIRN_ROLE_READ && role <= CAIRN_ROLE_ADMIN ? (enum cairn_role)role
                                                                        : CAIRN_ROLE_NONE;
        snprintf(out->name, sizeof(out->name), "%s", cairn__reg_column_text(st, 1));
    } else if (error == CAIRN_ENOTFOUND) {
        cairn_error_set(error, "unknown token");
    }
    sqlite3_finalize(st);
    if (error < 0 ||
        (error = cairn__reg_query(
             r, &st, "SELECT model FROM api_token_models WHERE hash = ? ORDER BY model", "o",
             hash)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        if (out->nmodels == CAIRN_TOKEN_MAX_MODELS) {
            /* More than a token may hold: refuse it rather than widen it. */
            out->role = CAIRN_ROLE_NONE;
            break;
        }
        snprintf(out->models[out->nmodels++], sizeof(out->models[0]), "%s",
                 cairn__reg_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return error < 0 ? error : 0;
}

/* ---- rollouts -------------------------------------------------------- */

void cairn_rollout_state_release(struct cairn_rollout_state *s)
{
    if (!s)
        return;
    free(s->plan);
    free(s->reason);
    free(s->forced);
    free(s->policy);
    s->plan = s->reason = s->forced = s->policy = NULL;
}

int cairn_registry_rollout_put(struct cairn_registry *r, const struct cairn_rollout_state *s)
{
    int error;
    if ((error = schema(r)) < 0)
        return error;
    return cairn__reg_run(
        r,
        "INSERT OR REPLACE INTO rollouts(model, alias, stable, candidate, plan, phase, step,"
        " step_elapsed_ms, failures, step_passed, started_ns, updated_ns, reason, forced, policy)"
        " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "ttoottiIiiIIttt", s->model, s->alias, &s->stable, &s->candidate, s->plan ? s->plan : "",
        s->phase, s->step, (long long)s->step_elapsed_ms, s->failures, s->step_passed,
        (long long)s->started_ns, (long long)(s->updated_ns ? s->updated_ns : cairn_time_now_ns()),
        s->reason, s->forced, s->policy);
}

#define ROLLOUT_COLUMNS                                                                     \
    "SELECT model, alias, stable, candidate, plan, phase, step, step_elapsed_ms, failures," \
    " step_passed, started_ns, updated_ns, reason, forced, policy FROM rollouts"

static int read_row(sqlite3_stmt *st, struct cairn_rollout_state *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->model, sizeof(out->model), "%s", cairn__reg_column_text(st, 0));
    snprintf(out->alias, sizeof(out->alias), "%s", cairn__reg_column_text(st, 1));
    cairn__reg_column_oid(st, 2, &out->stable);
    cairn__reg_column_oid(st, 3, &out->candidate);
    snprintf(out->phase, sizeof(out->phase), "%s", cairn__reg_column_text(st, 5));
    out->step = sqlite3_column_int(st, 6);
    out->step_elapsed_ms = sqlite3_column_int64(st, 7);
    out->failures = sqlite3_column_int(st, 8);
    out->step_passed = sqlite3_column_int(st, 9);
    out->started_ns = sqlite3_column_int64(st, 10);
    out->updated_ns = sqlite3_column_int64(st, 11);
    out->plan = cairn__reg_column_strdup(st, 4);
    out->reason = cairn__reg_column_strdup(st, 12);
    out->forced = cairn__reg_column_strdup(st, 13);
    out->policy = cairn__reg_column_strdup(st, 14);
    if (!out->plan) {
        cairn_rollout_state_release(out);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    return 0;
}

int cairn_registry_rollout_get(struct cairn_registry *r, const char *model,
                               struct cairn_rollout_state *out)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = schema(r)) < 0 ||
        (error = cairn__reg_query(r, &st, ROLLOUT_COLUMNS " WHERE model = ?", "t", model)) < 0)
        return error;
    if ((error = cairn__reg_row(r, st)) == 0)
        error = read_row(st, out);
    else if (error == CAIRN_ENOTFOUND)
        cairn_error_set(error, "'%s' has no rollout", model);
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_rollout_list(struct cairn_registry *r, cairn_rollout_fn cb, void *payload)
{
    sqlite3_stmt *st = NULL;
    struct cairn_rollout_state s;
    int error;
    if ((error = schema(r)) < 0 ||
        (error = cairn__reg_query(r, &st, ROLLOUT_COLUMNS " ORDER BY model", NULL)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        if ((error = read_row(st, &s)) < 0)
            break;
        error = cb(&s, payload);
        cairn_rollout_state_release(&s);
        if (error != 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

/* ---- alias moves ------------------------------------------------------ */

int cairn_registry_serve_alias_move(struct cairn_registry *r, const char *model, const char *alias,
                                    const cairn_oid *to, const char *actor, const char *action,
                                    const char *reason, const char *details_json)
{
    struct cairn_model_info m;
    sqlite3_stmt *st = NULL;
    char subject[140];
    int error, own_tx = !r->in_tx, belongs = 0;

    if (own_tx && (error = cairn_registry_begin(r)) < 0)
        return error;
    if ((error = cairn_registry_model_get(r, model, &m)) < 0 ||
        (error = cairn__reg_query(r, &st, "SELECT 1 FROM versions WHERE id = ? AND model_id = ?",
                                  "oI", to, (long long)m.id)) < 0)
        return cairn__reg_end(r, own_tx, error);
    belongs = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (!belongs)
        return cairn__reg_end(r, own_tx,
                              cairn_error_set(CAIRN_EINVALID, "version is not one of '%s'", model));
    /* The registry's alias setter keeps the history; the audit event lands beside it. */
    if ((error = cairn_registry_alias_set(r, model, alias, to, actor, reason)) >= 0) {
        snprintf(subject, sizeof(subject), "%s@%s", model, alias);
        error = cairn_registry_audit_append(r, actor, action, subject,
                                            details_json ? details_json : "{}");
    }
    return cairn__reg_end(r, own_tx, error);
}

int cairn_registry_serve_alias_previous(struct cairn_registry *r, const char *model,
                                        const char *alias, cairn_oid *out)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st,
                                  "SELECT h.old_version FROM alias_history h"
                                  " JOIN models m ON m.id = h.model_id"
                                  " WHERE m.name = ? AND h.name = ? ORDER BY h.id DESC LIMIT 1",
                                  "tt", model, alias)) < 0)
        return error;
    if ((error = cairn__reg_row(r, st)) == 0 && !cairn__reg_column_oid(st, 0, out))
        error = CAIRN_ENOTFOUND;
    if (error == CAIRN_ENOTFOUND)
        cairn_error_set(error, "'%s@%s' has no previous version", model, alias);
    sqlite3_finalize(st);
    return error;
}
