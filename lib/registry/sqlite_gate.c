/*
 * Gate results and dataset validation results in the SQLite back end
 * (registry.h). A gate result is stored whole (the JSON of every check)
 * next to the columns promote asks about: version, policy digest, passed.
 * Results are never updated or deleted; "the latest result" is the row
 * with the highest id, so a later failing run supersedes an earlier pass.
 *
 * Dataset validations are recorded by `cairn data validate` and read by
 * `data: validated` gate checks; they follow the same append-only rule.
 *
 * The tables are created by cairn__reg_schema_gate() from
 * cairn_registry_open(), so registries made before them gain them on open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/registry.h"
#include "registry/sqlite_internal.h"
#include "util/fs.h"
#include "util/hash.h"

static const char gate_schema[] =
    "CREATE TABLE IF NOT EXISTS gate_results("
    "  id INTEGER PRIMARY KEY, version BLOB NOT NULL, policy BLOB NOT NULL,"
    "  policy_name TEXT NOT NULL, passed INTEGER NOT NULL, result TEXT NOT NULL,"
    "  time_ns INTEGER NOT NULL, actor TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS gate_results_version ON gate_results(version, policy);"
    "CREATE TABLE IF NOT EXISTS data_validations("
    "  id INTEGER PRIMARY KEY, dataset BLOB NOT NULL, schema TEXT NOT NULL,"
    "  passed INTEGER NOT NULL, report TEXT, time_ns INTEGER NOT NULL, actor TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS data_validations_dataset ON data_validations(dataset);";

int cairn__reg_schema_gate(struct cairn_registry *r)
{
    return cairn__reg_exec(r, gate_schema);
}

void cairn_gate_record_release(struct cairn_gate_record *g)
{
    if (!g)
        return;
    free(g->policy_name);
    free(g->result);
    free(g->actor);
    g->policy_name = g->result = g->actor = NULL;
}

int cairn_registry_gate_add(struct cairn_registry *r, struct cairn_gate_record *rec)
{
    int error;

    if (!rec->time_ns)
        rec->time_ns = cairn_time_now_ns();
    if ((error = cairn__reg_run(r,
                                "INSERT INTO gate_results(version, policy, policy_name,"
                                " passed, result, time_ns, actor)"
                                " VALUES(?, ?, ?, ?, ?, ?, ?)",
                                "ootitIt", &rec->version, &rec->policy,
                                rec->policy_name ? rec->policy_name : "", rec->passed ? 1 : 0,
                                rec->result ? rec->result : "{}", (long long)rec->time_ns,
                                rec->actor ? rec->actor : "")) < 0)
        return error;
    rec->id = sqlite3_last_insert_rowid(r->db);
    return 0;
}

static int gate_from_row(sqlite3_stmt *st, struct cairn_gate_record *out)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    cairn__reg_column_oid(st, 1, &out->version);
    cairn__reg_column_oid(st, 2, &out->policy);
    out->passed = sqlite3_column_int(st, 4);
    out->time_ns = sqlite3_column_int64(st, 6);
    out->policy_name = cairn__reg_column_strdup(st, 3);
    out->result = cairn__reg_column_strdup(st, 5);
    out->actor = cairn__reg_column_strdup(st, 7);
    if (!out->policy_name || !out->result || !out->actor) {
        cairn_gate_record_release(out);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    return 0;
}

#define GATE_COLUMNS "id, version, policy, policy_name, passed, result, time_ns, actor"

int cairn_registry_gate_latest(struct cairn_registry *r, const cairn_oid *version,
                               const cairn_oid *policy, struct cairn_gate_record *out)
{
    sqlite3_stmt *st = NULL;
    char hex[CAIRN_OID_HEXSZ + 1];
    int error;

    if ((error = cairn__reg_query(r, &st,
                                  "SELECT " GATE_COLUMNS " FROM gate_results"
                                  " WHERE version = ?1 AND (?2 IS NULL OR policy = ?2)"
                                  " ORDER BY id DESC LIMIT 1",
                                  "oo", version, policy)) < 0)
        return error;
    if ((error = cairn__reg_row(r, st)) == 0)
        error = gate_from_row(st, out);
    else if (error == CAIRN_ENOTFOUND)
        cairn_error_set(error, "no gate result for version '%.12s'%s", cairn_oid_fmt(hex, version),
                        policy ? " and this policy" : "");
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_gate_list(struct cairn_registry *r, const cairn_oid *version,
                             cairn_gate_record_fn cb, void *payload)
{
    sqlite3_stmt *st = NULL;
    int error;

    if ((error = cairn__reg_query(r, &st,
                                  "SELECT " GATE_COLUMNS " FROM gate_results"
                                  " WHERE version = ? ORDER BY id",
                                  "o", version)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_gate_record g;
        if ((error = gate_from_row(st, &g)) < 0)
            break;
        error = cb(&g, payload);
        cairn_gate_record_release(&g);
        if (error != 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_data_validation_add(struct cairn_registry *r, const cairn_oid *dataset,
                                       const char *schema, int passed, const char *report,
                                       const char *actor)
{
    return cairn__reg_run(r,
                          "INSERT INTO data_validations(dataset, schema, passed,"
                          " report, time_ns, actor) VALUES(?, ?, ?, ?, ?, ?)",
                          "otitIt", dataset, schema ? schema : "", passed ? 1 : 0, report,
                          cairn_time_now_ns(), actor ? actor : "");
}

int cairn_registry_data_validation_latest(struct cairn_registry *r, const cairn_oid *dataset,
                                          int *passed, long long *time_ns)
{
    sqlite3_stmt *st = NULL;
    char hex[CAIRN_OID_HEXSZ + 1];
    int error;

    if ((error = cairn__reg_query(r, &st,
                                  "SELECT passed, time_ns FROM data_validations"
                                  " WHERE dataset = ? ORDER BY id DESC LIMIT 1",
                                  "o", dataset)) < 0)
        return error;
    if ((error = cairn__reg_row(r, st)) == 0) {
        if (passed)
            *passed = sqlite3_column_int(st, 0);
        if (time_ns)
            *time_ns = sqlite3_column_int64(st, 1);
    } else if (error == CAIRN_ENOTFOUND) {
        cairn_error_set(error, "dataset version '%.12s' was never validated",
                        cairn_oid_fmt(hex, dataset));
    }
    sqlite3_finalize(st);
    return error;
}
