/*
 * Aliases and their history in the SQLite back end (registry.h). An alias
 * is one row of `aliases` (model, name -> version); every change also adds
 * a row to `alias_history` with the version before and after, who made it,
 * when and why, so "what was production last Tuesday" always has an
 * answer. Both tables are created by the core schema in sqlite.c.
 *
 * Setting is rare (a release step); listing and history are read by
 * humans, so none of this is on a hot path. Callers hold the write
 * transaction and append the audit event in it.
 */
#include <stdio.h>
#include <string.h>

#include "cairn/registry.h"
#include "registry/sqlite_internal.h"
#include "util/fs.h"
#include "util/hash.h"

int cairn_registry_alias_set(struct cairn_registry *r, const char *model, const char *alias,
                             const cairn_oid *version, const char *author, const char *reason)
{
    struct cairn_model_info m;
    cairn_oid old;
    int error, has_old;

    if ((error = cairn_registry_model_get(r, model, &m)) < 0)
        return error;
    error = cairn_registry_alias_get(r, model, alias, &old);
    if (error < 0 && error != CAIRN_ENOTFOUND)
        return error;
    has_old = error == 0;
    cairn_error_clear();
    if (has_old && !cairn_oid_cmp(&old, version))
        return 0;
    if ((error = cairn__reg_run(r,
                                "INSERT OR REPLACE INTO aliases(model_id, name, version)"
                                " VALUES(?, ?, ?)",
                                "Ito", (long long)m.id, alias, version)) < 0 ||
        (error = cairn__reg_run(r,
                                "INSERT INTO alias_history(model_id, name, old_version,"
                                " new_version, author, time_ns, reason)"
                                " VALUES(?, ?, ?, ?, ?, ?, ?)",
                                "ItootIt", (long long)m.id, alias, has_old ? &old : NULL, version,
                                author, cairn_time_now_ns(), reason)) < 0)
        return error;
    return 1;
}

int cairn_registry_alias_list(struct cairn_registry *r, const char *model, cairn_alias_fn cb,
                              void *payload)
{
    sqlite3_stmt *st = NULL;
    int error;

    if ((error = cairn__reg_query(
             r, &st,
             "SELECT m.name, a.name, a.version, v.number, h.time_ns, h.author"
             " FROM aliases a JOIN models m ON m.id = a.model_id"
             " LEFT JOIN versions v ON v.id = a.version"
             " LEFT JOIN alias_history h ON h.id = (SELECT max(id) FROM alias_history"
             "   WHERE model_id = a.model_id AND name = a.name)"
             " WHERE ?1 IS NULL OR m.name = ?1 ORDER BY m.name, a.name",
             "t", model)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_alias_entry e;
        memset(&e, 0, sizeof(e));
        e.model = (const char *)sqlite3_column_text(st, 0);
        e.alias = (const char *)sqlite3_column_text(st, 1);
        cairn__reg_column_oid(st, 2, &e.version);
        e.number = sqlite3_column_int(st, 3);
        e.set_ns = sqlite3_column_int64(st, 4);
        e.set_by = cairn__reg_column_text(st, 5);
        if ((error = cb(&e, payload)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_alias_history(struct cairn_registry *r, const char *model, const char *alias,
                                 cairn_alias_event_fn cb, void *payload)
{
    struct cairn_model_info m;
    sqlite3_stmt *st = NULL;
    int error;

    if ((error = cairn_registry_model_get(r, model, &m)) < 0)
        return error;
    if ((error = cairn__reg_query(r, &st,
                                  "SELECT h.id, h.old_version, ov.number, h.new_version,"
                                  " nv.number, h.author, h.reason, h.time_ns"
                                  " FROM alias_history h"
                                  " LEFT JOIN versions ov ON ov.id = h.old_version"
                                  " LEFT JOIN versions nv ON nv.id = h.new_version"
                                  " WHERE h.model_id = ? AND h.name = ? ORDER BY h.id",
                                  "It", (long long)m.id, alias)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_alias_event e;
        memset(&e, 0, sizeof(e));
        e.seq = sqlite3_column_int64(st, 0);
        e.model = m.name;
        e.alias = alias;
        e.has_old = cairn__reg_column_oid(st, 1, &e.old_version);
        e.old_number = sqlite3_column_int(st, 2);
        cairn__reg_column_oid(st, 3, &e.new_version);
        e.new_number = sqlite3_column_int(st, 4);
        e.author = cairn__reg_column_text(st, 5);
        e.reason = (const char *)sqlite3_column_text(st, 6);
        e.time_ns = sqlite3_column_int64(st, 7);
        if ((error = cb(&e, payload)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}
