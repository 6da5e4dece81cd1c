/*
 * Shared by the SQLite back end's files (lib/registry/sqlite*.c): the
 * registry struct and statement helpers. Nothing outside lib/registry
 * includes this, or sqlite3.h.
 *
 * Each subsystem (versions, aliases, gates, rollouts...) may keep its SQL in
 * its own sqlite_NAME.c; tables are created with CREATE TABLE IF NOT EXISTS
 * in cairn__reg_schema_NAME() called from cairn_registry_open().
 */
#ifndef CAIRN_REGISTRY_SQLITE_INTERNAL_H
#define CAIRN_REGISTRY_SQLITE_INTERNAL_H

#include <sqlite3.h>

#include "cairn/common.h"

struct cairn_registry {
    sqlite3 *db;
    char *path;
    int in_tx;
    /* The newest audit entry this connection appended and has not yet seen
     * committed; 0 when none (audit_head.c). */
    int64_t head_seq;
    cairn_oid head_hash;
};

/*
 * The audit head file (audit_head.c): install the commit and rollback hooks
 * that pin the newest committed audit entry; note an appended entry; read
 * the pinned entry (1 with seq and hash, 0 when there is no head file).
 */
void cairn__reg_audit_head_hooks(struct cairn_registry *r);
void cairn__reg_audit_head_note(struct cairn_registry *r, int64_t seq, const cairn_oid *hash);
int cairn__reg_audit_head_get(struct cairn_registry *r, int64_t *seq, cairn_oid *hash);

/* Set the error from sqlite's message: "WHAT: MESSAGE". Returns code. */
int cairn__reg_error(struct cairn_registry *r, int code, const char *what);
/* Run one or more statements without results. */
int cairn__reg_exec(struct cairn_registry *r, const char *sql);
int cairn__reg_prepare(struct cairn_registry *r, sqlite3_stmt **st, const char *sql);
/* Step a statement that returns no rows (or ignore the row); maps constraint errors to
 * CAIRN_EEXISTS. */
int cairn__reg_step(struct cairn_registry *r, sqlite3_stmt *st);
void cairn__reg_bind_oid(sqlite3_stmt *st, int i, const cairn_oid *id);
void cairn__reg_bind_text(sqlite3_stmt *st, int i, const char *s);

/*
 * Statements in three calls, so that each query reads as what it asks:
 *
 *     if ((error = cairn__reg_query(r, &st, "SELECT a, b FROM t WHERE k = ?", "t", key)) < 0)
 *         return error;
 *     while ((error = cairn__reg_next(r, st)) > 0)
 *         ... sqlite3_column_*(st, ...) ...
 *     sqlite3_finalize(st);
 *
 * `args` binds one argument per letter, to parameters 1, 2, ... in order:
 *   t  const char *        (NULL binds SQL NULL)
 *   o  const cairn_oid *   (NULL binds SQL NULL)
 *   i  int
 *   I  long long           (cast int64_t / uint64_t values)
 *   d  double
 */
int cairn__reg_query(struct cairn_registry *r, sqlite3_stmt **st, const char *sql, const char *args,
                     ...);
/* Reset `st` and bind `args` anew (for a statement run once per item). */
void cairn__reg_rebind(sqlite3_stmt *st, const char *args, ...);
/* Prepare, bind, step once and finalize a statement without rows (INSERT, UPDATE, DELETE);
 * constraint errors are CAIRN_EEXISTS, as cairn__reg_step. */
int cairn__reg_run(struct cairn_registry *r, const char *sql, const char *args, ...);
/* Step to the next row: 1 when a row is ready, 0 after the last, < 0 on error (set). */
int cairn__reg_next(struct cairn_registry *r, sqlite3_stmt *st);
/* Step to the single row of a lookup: 0 when it is ready, CAIRN_ENOTFOUND (no message set:
 * the caller says what was missing) when there is none, < 0 on error. */
int cairn__reg_row(struct cairn_registry *r, sqlite3_stmt *st);

/* End a write that began its own transaction when `own_tx` (no caller held one): commit when
 * `error` >= 0, else roll back. Returns `error`, or the commit's error. */
int cairn__reg_end(struct cairn_registry *r, int own_tx, int error);

/* 1 and the id if the column holds a 32-byte blob, else 0 and a zero id. */
int cairn__reg_column_oid(sqlite3_stmt *st, int i, cairn_oid *out);
/* strdup of a text column, NULL for NULL. */
char *cairn__reg_column_strdup(sqlite3_stmt *st, int i);
/* A text column, "" for NULL; valid until the next step, reset or finalize. */
const char *cairn__reg_column_text(sqlite3_stmt *st, int i);

/* Tables of gate results and dataset validations (sqlite_gate.c). */
int cairn__reg_schema_gate(struct cairn_registry *r);

#endif
