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
};

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
/* 1 and the id if the column holds a 32-byte blob, else 0 and a zero id. */
int cairn__reg_column_oid(sqlite3_stmt *st, int i, cairn_oid *out);
/* strdup of a text column, NULL for NULL. */
char *cairn__reg_column_strdup(sqlite3_stmt *st, int i);

/* Tables of gate results and dataset validations (sqlite_gate.c). */
int cairn__reg_schema_gate(struct cairn_registry *r);

#endif
