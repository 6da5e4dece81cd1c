/*
 * The registry's side of remotes: the configured remotes (name, URL and
 * the non-secret transport options), remote-tracking aliases (what an
 * alias of a remote pointed to when we last talked to it, the
 * `origin/production` of git), and renumbering a pulled version.
 *
 * Credentials are never stored here: the transport reads them from the
 * environment or ~/.aws when a remote is opened (docs/remotes.md).
 *
 * Tables are created on first use (CREATE TABLE IF NOT EXISTS), so opening
 * a registry costs nothing extra for commands that never touch remotes.
 * These calls are rare (once per push, pull or `remote` command).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/registry.h"
#include "registry/sqlite_internal.h"

static const char remote_schema[] =
    "CREATE TABLE IF NOT EXISTS remotes("
    "  name TEXT PRIMARY KEY, url TEXT NOT NULL, endpoint TEXT, region TEXT,"
    "  path_style INTEGER NOT NULL DEFAULT 0, concurrency INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS remote_aliases("
    "  remote TEXT NOT NULL, model TEXT NOT NULL, alias TEXT NOT NULL, version BLOB NOT NULL,"
    "  key TEXT NOT NULL, PRIMARY KEY(remote, model, alias));";

static int ensure_schema(struct cairn_registry *r)
{
    return cairn__reg_exec(r, remote_schema);
}

void cairn_remote_config_release(struct cairn_remote_config *c)
{
    if (!c)
        return;
    free(c->url);
    free(c->endpoint);
    free(c->region);
    c->url = c->endpoint = c->region = NULL;
}

int cairn_registry_remote_add(struct cairn_registry *r, const struct cairn_remote_config *c)
{
    int error;

    if ((error = ensure_schema(r)) < 0)
        return error;
    error = cairn__reg_run(r,
                           "INSERT INTO remotes(name, url, endpoint, region, path_style,"
                           " concurrency) VALUES(?,?,?,?,?,?)",
                           "ttttii", c->name, c->url, c->endpoint, c->region, c->path_style,
                           c->concurrency);
    if (error == CAIRN_EEXISTS)
        return cairn_error_set(CAIRN_EEXISTS, "remote '%s' exists already", c->name);
    return error;
}

static int config_from_row(sqlite3_stmt *st, struct cairn_remote_config *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", (const char *)sqlite3_column_text(st, 0));
    out->url = cairn__reg_column_strdup(st, 1);
    out->endpoint = cairn__reg_column_strdup(st, 2);
    out->region = cairn__reg_column_strdup(st, 3);
    out->path_style = sqlite3_column_int(st, 4);
    out->concurrency = sqlite3_column_int(st, 5);
    if (!out->url) {
        cairn_remote_config_release(out);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    return 0;
}

#define REMOTE_COLS "SELECT name, url, endpoint, region, path_style, concurrency FROM remotes"

int cairn_registry_remote_get(struct cairn_registry *r, const char *name,
                              struct cairn_remote_config *out)
{
    sqlite3_stmt *st = NULL;
    int error;

    if ((error = ensure_schema(r)) < 0 ||
        (error = cairn__reg_query(r, &st, REMOTE_COLS " WHERE name = ?", "t", name)) < 0)
        return error;
    if ((error = cairn__reg_row(r, st)) == 0)
        error = config_from_row(st, out);
    else if (error == CAIRN_ENOTFOUND)
        cairn_error_set(error, "no remote '%s' (see 'cairn remote list')", name);
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_remote_list(struct cairn_registry *r, cairn_remote_config_fn cb, void *payload)
{
    sqlite3_stmt *st = NULL;
    int error;

    if ((error = ensure_schema(r)) < 0 ||
        (error = cairn__reg_query(r, &st, REMOTE_COLS " ORDER BY name", NULL)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_remote_config c;
        if ((error = config_from_row(st, &c)) < 0)
            break;
        error = cb(&c, payload);
        cairn_remote_config_release(&c);
        if (error)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_remote_remove(struct cairn_registry *r, const char *name)
{
    int error;

    if ((error = ensure_schema(r)) < 0 ||
        (error = cairn__reg_run(r, "DELETE FROM remotes WHERE name = ?", "t", name)) < 0)
        return error;
    if (sqlite3_changes(r->db) == 0)
        return cairn_error_set(CAIRN_ENOTFOUND, "no remote '%s' (see 'cairn remote list')", name);
    return cairn__reg_run(r, "DELETE FROM remote_aliases WHERE remote = ?", "t", name);
}

int cairn_registry_tracking_set(struct cairn_registry *r, const char *remote, const char *model,
                                const char *alias, const cairn_oid *version, const char *key)
{
    int error;

    if ((error = ensure_schema(r)) < 0)
        return error;
    return cairn__reg_run(r,
                          "INSERT OR REPLACE INTO remote_aliases(remote, model, alias,"
                          " version, key) VALUES(?,?,?,?,?)",
                          "tttot", remote, model, alias, version, key);
}

int cairn_registry_tracking_list(struct cairn_registry *r, const char *remote, cairn_tracking_fn cb,
                                 void *payload)
{
    sqlite3_stmt *st = NULL;
    int error;

    if ((error = ensure_schema(r)) < 0 ||
        (error = cairn__reg_query(r, &st,
                                  "SELECT remote, model, alias, version, key FROM remote_aliases"
                                  " WHERE ?1 IS NULL OR remote = ?1"
                                  " ORDER BY remote, model, alias",
                                  "t", remote)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_tracking_ref t;
        t.remote = (const char *)sqlite3_column_text(st, 0);
        t.model = (const char *)sqlite3_column_text(st, 1);
        t.alias = (const char *)sqlite3_column_text(st, 2);
        cairn__reg_column_oid(st, 3, &t.version);
        t.key = (const char *)sqlite3_column_text(st, 4);
        if ((error = cb(&t, payload)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_version_renumber(struct cairn_registry *r, const cairn_oid *id, int number)
{
    int error = cairn__reg_run(r, "UPDATE versions SET number = ? WHERE id = ?", "io", number, id);
    if (error == CAIRN_EEXISTS)
        return cairn_error_set(CAIRN_EEXISTS, "version number v%d is taken", number);
    if (!error && sqlite3_changes(r->db) == 0)
        return cairn_error_set(CAIRN_ENOTFOUND, "no such version to renumber");
    return error;
}
