/*
 * The SQLite back end of the registry (include/cairn/registry.h). This is the
 * only file that includes sqlite3.h.
 *
 * The database runs in WAL mode with synchronous=FULL, so a committed
 * transaction survives a power cut and readers never block the writer.
 * Writers serialise on BEGIN IMMEDIATE with a 30 s busy timeout, which is
 * how several cairn processes committing at once take turns. Version ids,
 * file and tree ids are stored as 32-byte blobs; versions also keep their hex
 * id so prefix lookups are an index range scan.
 */
#include <assert.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cairn/registry.h"
#include "registry/sqlite_internal.h"
#include "cairn/repo.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define SCHEMA_VERSION 1

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS models("
    "  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, kind TEXT NOT NULL,"
    "  created_ns INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS versions("
    "  id BLOB PRIMARY KEY, hex TEXT UNIQUE NOT NULL,"
    "  model_id INTEGER NOT NULL REFERENCES models(id), number INTEGER NOT NULL,"
    "  tree BLOB NOT NULL, parent BLOB, message TEXT NOT NULL, author TEXT NOT NULL,"
    "  host TEXT NOT NULL, time_ns INTEGER NOT NULL, code_commit TEXT, code_dirty INTEGER,"
    "  raw_size INTEGER NOT NULL, stored_new INTEGER NOT NULL, nfiles INTEGER NOT NULL,"
    "  record TEXT NOT NULL, UNIQUE(model_id, number));"
    "CREATE TABLE IF NOT EXISTS params("
    "  version BLOB NOT NULL, key TEXT NOT NULL, type INTEGER NOT NULL, num REAL, str TEXT,"
    "  PRIMARY KEY(version, key));"
    "CREATE TABLE IF NOT EXISTS metrics("
    "  version BLOB NOT NULL, key TEXT NOT NULL, type INTEGER NOT NULL, num REAL, str TEXT,"
    "  source TEXT NOT NULL, time_ns INTEGER NOT NULL, PRIMARY KEY(version, key));"
    "CREATE TABLE IF NOT EXISTS lineage("
    "  version BLOB NOT NULL, kind TEXT NOT NULL, target BLOB NOT NULL, detail TEXT);"
    "CREATE INDEX IF NOT EXISTS lineage_version ON lineage(version);"
    "CREATE INDEX IF NOT EXISTS lineage_target ON lineage(target);"
    "CREATE TABLE IF NOT EXISTS tags("
    "  model_id INTEGER NOT NULL, name TEXT NOT NULL, version BLOB NOT NULL,"
    "  author TEXT NOT NULL, time_ns INTEGER NOT NULL, PRIMARY KEY(model_id, name));"
    "CREATE TABLE IF NOT EXISTS aliases("
    "  model_id INTEGER NOT NULL, name TEXT NOT NULL, version BLOB NOT NULL,"
    "  PRIMARY KEY(model_id, name));"
    "CREATE TABLE IF NOT EXISTS alias_history("
    "  id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL, name TEXT NOT NULL,"
    "  old_version BLOB, new_version BLOB, author TEXT NOT NULL, time_ns INTEGER NOT NULL,"
    "  reason TEXT);"
    "CREATE TABLE IF NOT EXISTS stage("
    "  model TEXT NOT NULL, path TEXT NOT NULL, file BLOB NOT NULL, digest BLOB NOT NULL,"
    "  size INTEGER NOT NULL, mode INTEGER NOT NULL, PRIMARY KEY(model, path));"
    "CREATE TABLE IF NOT EXISTS statcache("
    "  path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    "  ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, dev INTEGER NOT NULL,"
    "  file BLOB NOT NULL, digest BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS audit("
    "  seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, actor TEXT NOT NULL,"
    "  action TEXT NOT NULL, subject TEXT NOT NULL, details TEXT NOT NULL,"
    "  prev BLOB NOT NULL, hash BLOB NOT NULL);";

int cairn__reg_error(struct cairn_registry *r, int code, const char *what)
{
    return cairn_error_set(code, "%s: %s", what, sqlite3_errmsg(r->db));
}

int cairn__reg_exec(struct cairn_registry *r, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int e = cairn_error_set(CAIRN_ERROR, "registry '%s': %s", r->path, msg ? msg : "error");
        sqlite3_free(msg);
        return e;
    }
    return 0;
}

int cairn__reg_prepare(struct cairn_registry *r, sqlite3_stmt **st, const char *sql)
{
    if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK)
        return cairn__reg_error(r, CAIRN_ERROR, "registry query failed");
    return 0;
}

int cairn__reg_step(struct cairn_registry *r, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_CONSTRAINT)
        return cairn__reg_error(r, CAIRN_EEXISTS, "registry constraint");
    return cairn__reg_error(
        r, rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB ? CAIRN_ECORRUPT : CAIRN_ERROR,
        "registry write failed");
}

void cairn__reg_bind_oid(sqlite3_stmt *st, int i, const cairn_oid *id)
{
    sqlite3_bind_blob(st, i, id->id, CAIRN_OID_RAWSZ, SQLITE_TRANSIENT);
}

void cairn__reg_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_args(sqlite3_stmt *st, const char *args, va_list ap)
{
    for (int i = 1; args && *args; args++, i++) {
        switch (*args) {
        case 't':
            cairn__reg_bind_text(st, i, va_arg(ap, const char *));
            break;
        case 'o': {
            const cairn_oid *id = va_arg(ap, const cairn_oid *);
            if (id)
                cairn__reg_bind_oid(st, i, id);
            else
                sqlite3_bind_null(st, i);
            break;
        }
        case 'i':
            sqlite3_bind_int(st, i, va_arg(ap, int));
            break;
        case 'I':
            sqlite3_bind_int64(st, i, va_arg(ap, long long));
            break;
        case 'd':
            sqlite3_bind_double(st, i, va_arg(ap, double));
            break;
        default:
            assert(!"unknown bind letter");
        }
    }
}

int cairn__reg_query(struct cairn_registry *r, sqlite3_stmt **st, const char *sql, const char *args,
                     ...)
{
    va_list ap;
    int error;
    if ((error = cairn__reg_prepare(r, st, sql)) < 0)
        return error;
    va_start(ap, args);
    bind_args(*st, args, ap);
    va_end(ap);
    return 0;
}

void cairn__reg_rebind(sqlite3_stmt *st, const char *args, ...)
{
    va_list ap;
    sqlite3_reset(st);
    va_start(ap, args);
    bind_args(st, args, ap);
    va_end(ap);
}

int cairn__reg_run(struct cairn_registry *r, const char *sql, const char *args, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    int error;
    if ((error = cairn__reg_prepare(r, &st, sql)) < 0)
        return error;
    va_start(ap, args);
    bind_args(st, args, ap);
    va_end(ap);
    error = cairn__reg_step(r, st);
    sqlite3_finalize(st);
    return error;
}

int cairn__reg_next(struct cairn_registry *r, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return cairn__reg_error(r, CAIRN_ERROR, "registry read failed");
}

int cairn__reg_row(struct cairn_registry *r, sqlite3_stmt *st)
{
    int error = cairn__reg_next(r, st);
    return error > 0 ? 0 : error == 0 ? CAIRN_ENOTFOUND : error;
}

const char *cairn__reg_column_text(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? (const char *)s : "";
}

int cairn__reg_column_oid(sqlite3_stmt *st, int i, cairn_oid *out)
{
    const void *p = sqlite3_column_blob(st, i);
    if (!p || sqlite3_column_bytes(st, i) != CAIRN_OID_RAWSZ) {
        memset(out, 0, sizeof(*out));
        return 0;
    }
    memcpy(out->id, p, CAIRN_OID_RAWSZ);
    return 1;
}

char *cairn__reg_column_strdup(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? strdup((const char *)s) : NULL;
}

int cairn_registry_open(struct cairn_registry **out, const char *path, int create)
{
    struct cairn_registry *r = calloc(1, sizeof(*r));
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    int error = 0;
    sqlite3_stmt *st = NULL;

    if (!r || !(r->path = strdup(path))) {
        free(r);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    /*
     * The registry holds remote settings, tokens' hashes and the audit log:
     * readable by its owner only. SQLite would create the file 0644 (less
     * the umask) and gives the -wal and -shm files the database's mode, so
     * create it empty with 0600 first; an existing file keeps its mode.
     */
    if (create) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            error = cairn_error_set_errno(CAIRN_ERROR, "cannot create registry '%s'", path);
            goto done;
        }
        close(fd);
    }
    if (sqlite3_open_v2(path, &r->db, flags, NULL) != SQLITE_OK) {
        error = cairn_error_set(CAIRN_ERROR, "cannot open registry '%s': %s", path,
                                r->db ? sqlite3_errmsg(r->db) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(r->db, 30000);
    sqlite3_extended_result_codes(r->db, 0);
    cairn__reg_audit_head_hooks(r);
    /* journal_mode=WAL fails with SQLITE_NOTADB on a damaged file: say so. */
    if ((error = cairn__reg_exec(r,
                                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                 "PRAGMA foreign_keys=ON;")) < 0) {
        error = cairn_error_set(CAIRN_ECORRUPT, "registry '%s' is damaged or not a database: %s",
                                path, sqlite3_errmsg(r->db));
        goto done;
    }
    if (create) {
        if ((error = cairn__reg_exec(r, "BEGIN IMMEDIATE")) < 0 ||
            (error = cairn__reg_exec(r, schema)) < 0 || (error = cairn__reg_schema_gate(r)) < 0)
            goto done;
        if ((error = cairn__reg_prepare(
                 r, &st, "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', ?)")) < 0)
            goto done;
        sqlite3_bind_int(st, 1, SCHEMA_VERSION);
        if ((error = cairn__reg_step(r, st)) < 0 || (error = cairn__reg_exec(r, "COMMIT")) < 0)
            goto done;
    } else {
        if ((error = cairn__reg_prepare(r, &st, "SELECT value FROM meta WHERE key = 'schema'")) <
            0) {
            error = cairn_error_set(CAIRN_ECORRUPT, "registry '%s' is damaged: %s", path,
                                    sqlite3_errmsg(r->db));
            goto done;
        }
        if (sqlite3_step(st) != SQLITE_ROW) {
            error = cairn_error_set(CAIRN_ECORRUPT, "registry '%s' has no schema version", path);
            goto done;
        }
        if (sqlite3_column_int(st, 0) > SCHEMA_VERSION) {
            error =
                cairn_error_set(CAIRN_ERROR, "registry '%s' was written by a newer cairn", path);
            goto done;
        }
        /* Tables added by later modules are created on open. */
        if ((error = cairn__reg_exec(r, schema)) < 0 || (error = cairn__reg_schema_gate(r)) < 0)
            goto done;
    }
done:
    sqlite3_finalize(st);
    if (error < 0) {
        if (r->db && create)
            sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        cairn_registry_free(r);
        return error;
    }
    *out = r;
    return 0;
}

void cairn_registry_free(struct cairn_registry *r)
{
    if (!r)
        return;
    if (r->in_tx)
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(r->db);
    free(r->path);
    free(r);
}

int cairn_registry_begin(struct cairn_registry *r)
{
    int error = cairn__reg_exec(r, "BEGIN IMMEDIATE");
    if (!error)
        r->in_tx = 1;
    return error;
}

int cairn_registry_commit(struct cairn_registry *r)
{
    int error = cairn__reg_exec(r, "COMMIT");
    if (error < 0) {
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    }
    r->in_tx = 0;
    return error;
}

void cairn_registry_rollback(struct cairn_registry *r)
{
    if (r->in_tx)
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    r->in_tx = 0;
}

int cairn__reg_end(struct cairn_registry *r, int own_tx, int error)
{
    if (!own_tx)
        return error;
    if (error < 0) {
        cairn_registry_rollback(r);
        return error;
    }
    return cairn_registry_commit(r);
}

int cairn_registry_check(struct cairn_registry *r, void (*cb)(const char *, void *), void *payload)
{
    sqlite3_stmt *st = NULL;
    int problems = 0, rc;
    if (cairn__reg_prepare(r, &st, "PRAGMA integrity_check") < 0)
        return CAIRN_ECORRUPT;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        if (s && strcmp(s, "ok")) {
            char msg[512];
            snprintf(msg, sizeof(msg), "registry: %s", s);
            cb(msg, payload);
            problems++;
        }
    }
    if (rc != SQLITE_DONE) {
        char msg[512];
        snprintf(msg, sizeof(msg), "registry: integrity check failed: %s", sqlite3_errmsg(r->db));
        cb(msg, payload);
        problems++;
    }
    sqlite3_finalize(st);
    return problems;
}

/* ---- params and metrics --------------------------------------------- */

static int kv_insert(struct cairn_registry *r, const char *sql, const cairn_oid *v,
                     const struct cairn_values *l, const char *source)
{
    sqlite3_stmt *st = NULL;
    int error = 0;
    if (!l || !l->count)
        return 0;
    if ((error = cairn__reg_prepare(r, &st, sql)) < 0)
        return error;
    for (size_t i = 0; i < l->count && !error; i++) {
        const struct cairn_value *kv = &l->items[i];
        int is_str = kv->type == CAIRN_VALUE_STRING;
        cairn__reg_rebind(st, "otidt", v, kv->name, (int)kv->type,
                          kv->type == CAIRN_VALUE_BOOL ? (double)kv->boolean : kv->number,
                          is_str ? kv->string : NULL);
        if (is_str)
            sqlite3_bind_null(st, 4);
        if (source) {
            cairn__reg_bind_text(st, 6, source);
            sqlite3_bind_int64(st, 7, cairn_time_now_ns());
        }
        error = cairn__reg_step(r, st);
    }
    sqlite3_finalize(st);
    return error;
}

static int kv_load(struct cairn_registry *r, const char *sql, const cairn_oid *v,
                   struct cairn_values *out)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st, sql, "o", v)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_value kv = { 0 };
        kv.name = (char *)cairn__reg_column_text(st, 0);
        kv.type = (enum cairn_value_type)sqlite3_column_int(st, 1);
        kv.number = sqlite3_column_double(st, 2);
        kv.string = (char *)sqlite3_column_text(st, 3);
        kv.boolean = kv.number != 0;
        if ((error = cairn_values_set(out, &kv)) < 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_params(struct cairn_registry *r, const cairn_oid *v, struct cairn_values *out)
{
    return kv_load(r, "SELECT key, type, num, str FROM params WHERE version = ? ORDER BY key", v,
                   out);
}

int cairn_registry_metrics(struct cairn_registry *r, const cairn_oid *v, struct cairn_values *out)
{
    return kv_load(r, "SELECT key, type, num, str FROM metrics WHERE version = ? ORDER BY key", v,
                   out);
}

int cairn_registry_metrics_trusted(struct cairn_registry *r, const cairn_oid *v,
                                   struct cairn_values *out)
{
    return kv_load(r,
                   "SELECT key, type, num, str FROM metrics WHERE version = ? AND source <> "
                   "'" CAIRN_METRICS_SOURCE_REMOTE "' ORDER BY key",
                   v, out);
}

int cairn_registry_metrics_set(struct cairn_registry *r, const cairn_oid *v,
                               const struct cairn_values *metrics, const char *source)
{
    return kv_insert(r,
                     "INSERT OR REPLACE INTO metrics(version, key, type, num, str, source, time_ns)"
                     " VALUES(?, ?, ?, ?, ?, ?, ?)",
                     v, metrics, source);
}

/* ---- models ---------------------------------------------------------- */

static void model_from_row(sqlite3_stmt *st, struct cairn_model_info *out)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    snprintf(out->name, sizeof(out->name), "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(out->kind, sizeof(out->kind), "%s", (const char *)sqlite3_column_text(st, 2));
    out->created_ns = sqlite3_column_int64(st, 3);
    out->nversions = sqlite3_column_int(st, 4);
}

#define MODEL_COLS                               \
    "SELECT m.id, m.name, m.kind, m.created_ns," \
    " (SELECT count(*) FROM versions v WHERE v.model_id = m.id) FROM models m"

int cairn_registry_model_get(struct cairn_registry *r, const char *name,
                             struct cairn_model_info *out)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st, MODEL_COLS " WHERE m.name = ?", "t", name)) < 0)
        return error;
    if ((error = cairn__reg_row(r, st)) == 0)
        model_from_row(st, out);
    else if (error == CAIRN_ENOTFOUND)
        cairn_error_set(error, "no model named '%s'", name);
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_model_ensure(struct cairn_registry *r, const char *name, const char *kind,
                                struct cairn_model_info *out)
{
    int error = cairn_registry_model_get(r, name, out);
    if (error == 0) {
        if (strcmp(out->kind, kind))
            return cairn_error_set(CAIRN_EINVALID, "'%s' is a %s, not a %s", name, out->kind, kind);
        return 0;
    }
    if (error != CAIRN_ENOTFOUND)
        return error;
    if ((error = cairn__reg_run(r, "INSERT INTO models(name, kind, created_ns) VALUES(?, ?, ?)",
                                "ttI", name, kind, cairn_time_now_ns())) < 0)
        return error;
    return cairn_registry_model_get(r, name, out);
}

int cairn_registry_model_list(struct cairn_registry *r, cairn_model_fn cb, void *payload)
{
    sqlite3_stmt *st = NULL;
    int error;
    struct cairn_model_info m;
    if ((error = cairn__reg_query(r, &st, MODEL_COLS " ORDER BY m.name", NULL)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        model_from_row(st, &m);
        if ((error = cb(&m, payload)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

/* ---- versions -------------------------------------------------------- */

#define VERSION_COLS                                                                           \
    "SELECT v.id, m.name, m.kind, v.number, v.tree, v.parent, v.time_ns, v.message, v.author," \
    " v.host, v.code_commit, v.code_dirty, v.raw_size, v.stored_new, v.nfiles"                 \
    " FROM versions v JOIN models m ON m.id = v.model_id"

static int version_from_row(sqlite3_stmt *st, struct cairn_version *out)
{
    memset(out, 0, sizeof(*out));
    cairn__reg_column_oid(st, 0, &out->id);
    snprintf(out->model, sizeof(out->model), "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(out->kind, sizeof(out->kind), "%s", (const char *)sqlite3_column_text(st, 2));
    out->number = sqlite3_column_int(st, 3);
    cairn__reg_column_oid(st, 4, &out->tree);
    out->has_parent = cairn__reg_column_oid(st, 5, &out->parent);
    out->time_ns = sqlite3_column_int64(st, 6);
    out->message = cairn__reg_column_strdup(st, 7);
    out->author = cairn__reg_column_strdup(st, 8);
    out->host = cairn__reg_column_strdup(st, 9);
    out->code_commit = cairn__reg_column_strdup(st, 10);
    out->code_dirty = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 11);
    out->raw_size = (uint64_t)sqlite3_column_int64(st, 12);
    out->stored_new = (uint64_t)sqlite3_column_int64(st, 13);
    out->nfiles = (uint64_t)sqlite3_column_int64(st, 14);
    if (!out->message || !out->author || !out->host) {
        cairn_version_release(out);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    return 0;
}

void cairn_version_release(struct cairn_version *v)
{
    if (!v)
        return;
    free(v->message);
    free(v->author);
    free(v->host);
    free(v->code_commit);
    v->message = v->author = v->host = v->code_commit = NULL;
}

static int version_query_one(struct cairn_registry *r, sqlite3_stmt *st, struct cairn_version *out,
                             const char *what)
{
    int error = cairn__reg_row(r, st);
    if (error == 0)
        error = version_from_row(st, out);
    else if (error == CAIRN_ENOTFOUND)
        cairn_error_set(error, "%s", what);
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_version_insert(struct cairn_registry *r, struct cairn_version *v,
                                  const char *record, const struct cairn_values *params,
                                  const struct cairn_values *metrics,
                                  const struct cairn_lineage_edge *edges, size_t nedges)
{
    struct cairn_model_info m;
    sqlite3_stmt *st = NULL;
    char hex[CAIRN_OID_HEXSZ + 1];
    int error, number = 1;

    if ((error = cairn_registry_model_ensure(r, v->model, v->kind, &m)) < 0)
        return error;
    if ((error = cairn__reg_query(
             r, &st, "SELECT coalesce(max(number), 0) + 1 FROM versions WHERE model_id = ?", "I",
             (long long)m.id)) < 0)
        return error;
    if (sqlite3_step(st) == SQLITE_ROW)
        number = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;

    if ((error = cairn__reg_query(
             r, &st,
             "INSERT INTO versions(id, hex, model_id, number, tree, parent, message,"
             " author, host, time_ns, code_commit, code_dirty, raw_size, stored_new,"
             " nfiles, record) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
             "otIiootttItiIIIt", &v->id, cairn_oid_fmt(hex, &v->id), (long long)m.id, number,
             &v->tree, v->has_parent ? &v->parent : NULL, v->message, v->author, v->host,
             (long long)v->time_ns, v->code_commit, v->code_dirty, (long long)v->raw_size,
             (long long)v->stored_new, (long long)v->nfiles, record)) < 0)
        return error;
    if (v->code_dirty < 0)
        sqlite3_bind_null(st, 12);
    error = cairn__reg_step(r, st);
    sqlite3_finalize(st);
    st = NULL;
    if (error == CAIRN_EEXISTS)
        return cairn_error_set(CAIRN_EEXISTS, "version %s exists already", hex);
    if (error < 0)
        return error;
    v->number = number;

    if ((error = kv_insert(r, "INSERT INTO params(version, key, type, num, str) VALUES(?,?,?,?,?)",
                           &v->id, params, NULL)) < 0)
        return error;
    if ((error = kv_insert(r,
                           "INSERT INTO metrics(version, key, type, num, str, source, time_ns)"
                           " VALUES(?,?,?,?,?,?,?)",
                           &v->id, metrics, "commit")) < 0)
        return error;
    if (!nedges)
        return 0;
    if ((error = cairn__reg_prepare(
             r, &st, "INSERT INTO lineage(version, kind, target, detail) VALUES(?,?,?,?)")) < 0)
        return error;
    for (size_t i = 0; i < nedges && !error; i++) {
        cairn__reg_rebind(st, "otot", &v->id, edges[i].kind, &edges[i].target, edges[i].detail);
        error = cairn__reg_step(r, st);
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_version_get(struct cairn_registry *r, const cairn_oid *id,
                               struct cairn_version *out)
{
    sqlite3_stmt *st = NULL;
    char hex[CAIRN_OID_HEXSZ + 1], what[128];
    int error;
    if ((error = cairn__reg_query(r, &st, VERSION_COLS " WHERE v.id = ?", "o", id)) < 0)
        return error;
    snprintf(what, sizeof(what), "no version %.12s", cairn_oid_fmt(hex, id));
    return version_query_one(r, st, out, what);
}

int cairn_registry_version_by_number(struct cairn_registry *r, const char *model, int number,
                                     struct cairn_version *out)
{
    sqlite3_stmt *st = NULL;
    char what[160];
    int error;
    if ((error = cairn__reg_query(r, &st, VERSION_COLS " WHERE m.name = ? AND v.number = ?", "ti",
                                  model, number)) < 0)
        return error;
    snprintf(what, sizeof(what), "'%s' has no version v%d", model, number);
    return version_query_one(r, st, out, what);
}

int cairn_registry_version_latest(struct cairn_registry *r, const char *model,
                                  struct cairn_version *out)
{
    sqlite3_stmt *st = NULL;
    char what[160];
    int error;
    if ((error = cairn__reg_query(r, &st,
                                  VERSION_COLS " WHERE m.name = ? ORDER BY v.number DESC LIMIT 1",
                                  "t", model)) < 0)
        return error;
    snprintf(what, sizeof(what), "no model named '%s'", model);
    return version_query_one(r, st, out, what);
}

int cairn_registry_version_prefix(struct cairn_registry *r, const char *hexprefix, cairn_oid *out)
{
    sqlite3_stmt *st = NULL;
    char hi[CAIRN_OID_HEXSZ + 2];
    int error, n = 0;
    size_t len = strlen(hexprefix);

    if (len > CAIRN_OID_HEXSZ)
        return cairn_error_set(CAIRN_EINVALID, "'%s' is longer than a version id", hexprefix);
    /* Every id with the prefix sorts in [prefix, prefix + "g"). */
    snprintf(hi, sizeof(hi), "%sg", hexprefix);
    if ((error =
             cairn__reg_query(r, &st, "SELECT id FROM versions WHERE hex >= ? AND hex < ? LIMIT 2",
                              "tt", hexprefix, hi)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        if (n++ == 0)
            cairn__reg_column_oid(st, 0, out);
    }
    sqlite3_finalize(st);
    if (error < 0)
        return error;
    if (n == 0)
        return cairn_error_set(CAIRN_ENOTFOUND, "no version matches '%s'", hexprefix);
    if (n > 1)
        return cairn_error_set(CAIRN_EAMBIGUOUS,
                               "'%s' matches more than one version; give more digits", hexprefix);
    return 0;
}

int cairn_registry_version_record(struct cairn_registry *r, const cairn_oid *id, char **out)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st, "SELECT record FROM versions WHERE id = ?", "o", id)) < 0)
        return error;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = cairn__reg_column_strdup(st, 0);
    else
        error = cairn_error_set(CAIRN_ENOTFOUND, "no such version");
    sqlite3_finalize(st);
    if (!error && !*out)
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    return error;
}

int cairn_registry_version_list(struct cairn_registry *r, const char *model, int limit,
                                cairn_version_fn cb, void *payload)
{
    sqlite3_stmt *st = NULL;
    struct cairn_version v;
    int error;
    const char *sql = model ? VERSION_COLS " WHERE m.name = ?1 ORDER BY v.number DESC LIMIT ?2"
                            : VERSION_COLS
                          " ORDER BY v.time_ns DESC, m.name, v.number DESC LIMIT ?2";
    if ((error = cairn__reg_query(r, &st, sql, "ti", model, limit > 0 ? limit : -1)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        if ((error = version_from_row(st, &v)) < 0)
            break;
        error = cb(&v, payload);
        cairn_version_release(&v);
        if (error)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_lineage(struct cairn_registry *r, const cairn_oid *v, cairn_edge_fn cb,
                           void *payload)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(
             r, &st, "SELECT kind, target, detail FROM lineage WHERE version = ? ORDER BY rowid",
             "o", v)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_lineage_edge e;
        memset(&e, 0, sizeof(e));
        snprintf(e.kind, sizeof(e.kind), "%s", (const char *)sqlite3_column_text(st, 0));
        cairn__reg_column_oid(st, 1, &e.target);
        e.detail = (char *)sqlite3_column_text(st, 2);
        if ((error = cb(&e, payload)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

/* ---- tags and aliases ------------------------------------------------ */

static int lookup_model_ref(struct cairn_registry *r, const char *sql, const char *model,
                            const char *name, cairn_oid *out)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st, sql, "tt", model, name)) < 0)
        return error;
    if ((error = cairn__reg_row(r, st)) == 0)
        cairn__reg_column_oid(st, 0, out);
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_tag_get(struct cairn_registry *r, const char *model, const char *tag,
                           cairn_oid *out)
{
    int error = lookup_model_ref(r,
                                 "SELECT t.version FROM tags t JOIN models m ON m.id = t.model_id"
                                 " WHERE m.name = ? AND t.name = ?",
                                 model, tag, out);
    if (error == CAIRN_ENOTFOUND)
        cairn_error_set(error, "'%s' has no tag '%s'", model, tag);
    return error;
}

int cairn_registry_alias_get(struct cairn_registry *r, const char *model, const char *alias,
                             cairn_oid *out)
{
    int error =
        lookup_model_ref(r,
                         "SELECT a.version FROM aliases a JOIN models m ON m.id = a.model_id"
                         " WHERE m.name = ? AND a.name = ?",
                         model, alias, out);
    if (error == CAIRN_ENOTFOUND)
        cairn_error_set(error, "'%s' has no alias '%s'", model, alias);
    return error;
}

int cairn_registry_tag_add(struct cairn_registry *r, const char *model, const char *tag,
                           const cairn_oid *v, const char *author)
{
    struct cairn_model_info m;
    cairn_oid existing;
    int error;
    if ((error = cairn_registry_model_get(r, model, &m)) < 0)
        return error;
    if (cairn_registry_tag_get(r, model, tag, &existing) == 0) {
        if (!cairn_oid_cmp(&existing, v))
            return cairn_error_set(CAIRN_EEXISTS, "tag '%s@%s' exists already", model, tag);
        return cairn_error_set(CAIRN_EEXISTS,
                               "tag '%s@%s' exists and points to another version;"
                               " tags are immutable",
                               model, tag);
    }
    return cairn__reg_run(r,
                          "INSERT INTO tags(model_id, name, version, author, time_ns)"
                          " VALUES(?,?,?,?,?)",
                          "ItotI", (long long)m.id, tag, v, author, cairn_time_now_ns());
}

int cairn_registry_tag_list(struct cairn_registry *r, const cairn_oid *v, cairn_tag_fn cb,
                            void *payload)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(
             r, &st, "SELECT name, version FROM tags WHERE version = ? ORDER BY name", "o", v)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        cairn_oid id;
        cairn__reg_column_oid(st, 1, &id);
        if ((error = cb((const char *)sqlite3_column_text(st, 0), &id, payload)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

/* ---- stage and stat cache -------------------------------------------- */

int cairn_registry_stage_put(struct cairn_registry *r, const struct cairn_stage_entry *e)
{
    return cairn__reg_run(r,
                          "INSERT OR REPLACE INTO stage(model, path, file, digest, size, mode)"
                          " VALUES(?,?,?,?,?,?)",
                          "ttooIi", e->model ? e->model : "", e->path, &e->file, &e->digest,
                          (long long)e->size, (int)e->mode);
}

int cairn_registry_stage_list(struct cairn_registry *r, const char *model, cairn_stage_fn cb,
                              void *payload)
{
    sqlite3_stmt *st = NULL;
    int error;
    const char *sql =
        model ? "SELECT model, path, file, digest, size, mode FROM stage WHERE model = ?"
                " ORDER BY path"
              : "SELECT model, path, file, digest, size, mode FROM stage ORDER BY model, path";
    if ((error = cairn__reg_query(r, &st, sql, model ? "t" : NULL, model)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_stage_entry e;
        e.model = (char *)sqlite3_column_text(st, 0);
        e.path = (char *)sqlite3_column_text(st, 1);
        cairn__reg_column_oid(st, 2, &e.file);
        cairn__reg_column_oid(st, 3, &e.digest);
        e.size = (uint64_t)sqlite3_column_int64(st, 4);
        e.mode = (uint32_t)sqlite3_column_int(st, 5);
        if ((error = cb(&e, payload)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_stage_clear(struct cairn_registry *r, const char *model)
{
    return cairn__reg_run(r, "DELETE FROM stage WHERE model = ?", "t", model ? model : "");
}

int cairn_registry_stage_get(struct cairn_registry *r, const char *model, const char *path,
                             struct cairn_stage_entry *out)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st,
                                  "SELECT file, digest, size, mode FROM stage"
                                  " WHERE model = ? AND path = ?",
                                  "tt", model ? model : "", path)) < 0)
        return error;
    if ((error = cairn__reg_row(r, st)) == 0) {
        memset(out, 0, sizeof(*out));
        cairn__reg_column_oid(st, 0, &out->file);
        cairn__reg_column_oid(st, 1, &out->digest);
        out->size = (uint64_t)sqlite3_column_int64(st, 2);
        out->mode = (uint32_t)sqlite3_column_int(st, 3);
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_statcache_get(struct cairn_registry *r, const char *path,
                                 struct cairn_stat_entry *out)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st,
                                  "SELECT size, mtime_ns, ctime_ns, ino, dev, file, digest"
                                  " FROM statcache WHERE path = ?",
                                  "t", path)) < 0)
        return error;
    if ((error = cairn__reg_row(r, st)) == 0) {
        out->size = (uint64_t)sqlite3_column_int64(st, 0);
        out->mtime_ns = sqlite3_column_int64(st, 1);
        out->ctime_ns = sqlite3_column_int64(st, 2);
        out->ino = (uint64_t)sqlite3_column_int64(st, 3);
        out->dev = (uint64_t)sqlite3_column_int64(st, 4);
        cairn__reg_column_oid(st, 5, &out->file);
        cairn__reg_column_oid(st, 6, &out->digest);
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_statcache_put(struct cairn_registry *r, const char *path,
                                 const struct cairn_stat_entry *e)
{
    return cairn__reg_run(r,
                          "INSERT OR REPLACE INTO statcache(path, size, mtime_ns, ctime_ns,"
                          " ino, dev, file, digest) VALUES(?,?,?,?,?,?,?,?)",
                          "tIIIIIoo", path, (long long)e->size, (long long)e->mtime_ns,
                          (long long)e->ctime_ns, (long long)e->ino, (long long)e->dev, &e->file,
                          &e->digest);
}

int cairn_registry_statcache_clear(struct cairn_registry *r)
{
    return cairn__reg_run(r, "DELETE FROM statcache", NULL);
}

/* ---- audit ----------------------------------------------------------- */

/*
 * The hashed form of an event: every field length-prefixed, so no two
 * different events encode the same. hash = BLAKE3(prev || encoding).
 */
static int audit_hash(cairn_oid *out, const cairn_oid *prev, int64_t seq, long long time_ns,
                      const char *actor, const char *action, const char *subject,
                      const char *details)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    const char *fields[] = { actor, action, subject, details };
    int error = cairn_buf_put(&b, "cairn-audit-v1", 15);
    if (!error)
        error = cairn_buf_put(&b, prev->id, CAIRN_OID_RAWSZ);
    if (!error)
        error = cairn_buf_put_u64le(&b, (uint64_t)seq);
    if (!error)
        error = cairn_buf_put_u64le(&b, (uint64_t)time_ns);
    for (int i = 0; i < 4 && !error; i++) {
        size_t n = strlen(fields[i]);
        if (!(error = cairn_buf_put_varint(&b, n)))
            error = cairn_buf_put(&b, fields[i], n);
    }
    if (!error)
        cairn_hash(out, b.ptr, b.len);
    cairn_buf_release(&b);
    return error;
}

int cairn_registry_audit_append(struct cairn_registry *r, const char *actor, const char *action,
                                const char *subject, const char *details_json)
{
    sqlite3_stmt *st = NULL;
    cairn_oid prev, hash, saved_hash;
    int64_t seq = 1, saved_seq;
    long long now = cairn_time_now_ns();
    int error;

    memset(&prev, 0, sizeof(prev));
    if (!details_json)
        details_json = "{}";
    if ((error = cairn__reg_query(r, &st, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                                  NULL)) < 0)
        return error;
    if (sqlite3_step(st) == SQLITE_ROW) {
        seq = sqlite3_column_int64(st, 0) + 1;
        cairn__reg_column_oid(st, 1, &prev);
    }
    sqlite3_finalize(st);
    if ((error = audit_hash(&hash, &prev, seq, now, actor, action, subject, details_json)) < 0)
        return error;
    /* Noted before the insert: outside a transaction the insert commits, and
     * the commit hook pins the head, inside the call. */
    saved_seq = r->head_seq;
    saved_hash = r->head_hash;
    cairn__reg_audit_head_note(r, seq, &hash);
    error = cairn__reg_run(r,
                           "INSERT INTO audit(seq, time_ns, actor, action, subject, details,"
                           " prev, hash) VALUES(?,?,?,?,?,?,?,?)",
                           "IIttttoo", (long long)seq, now, actor, action, subject, details_json,
                           &prev, &hash);
    if (error < 0) {
        r->head_seq = saved_seq;
        r->head_hash = saved_hash;
    }
    return error;
}

static int audit_each(struct cairn_registry *r, cairn_audit_fn cb, void *payload)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st,
                                  "SELECT seq, time_ns, actor, action, subject, details, prev, hash"
                                  " FROM audit ORDER BY seq",
                                  NULL)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_audit_entry e;
        e.seq = sqlite3_column_int64(st, 0);
        e.time_ns = sqlite3_column_int64(st, 1);
        e.actor = (char *)cairn__reg_column_text(st, 2);
        e.action = (char *)cairn__reg_column_text(st, 3);
        e.subject = (char *)cairn__reg_column_text(st, 4);
        e.details = (char *)cairn__reg_column_text(st, 5);
        cairn__reg_column_oid(st, 6, &e.prev);
        cairn__reg_column_oid(st, 7, &e.hash);
        if ((error = cb(&e, payload)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_registry_audit_list(struct cairn_registry *r, cairn_audit_fn cb, void *payload)
{
    return audit_each(r, cb, payload);
}

struct verify_state {
    cairn_oid prev;
    int64_t expect_seq;
    int64_t bad;
    char why[160];
    int64_t head_seq; /* the pinned head (0: none) and the hash found under its number */
    cairn_oid head_found;
    int head_seen;
};

static int verify_one(const struct cairn_audit_entry *e, void *payload)
{
    struct verify_state *s = payload;
    cairn_oid h;
    if (e->seq != s->expect_seq) {
        snprintf(s->why, sizeof(s->why), "entry %lld is missing", (long long)s->expect_seq);
        s->bad = s->expect_seq;
        return 1;
    }
    if (cairn_oid_cmp(&e->prev, &s->prev)) {
        snprintf(s->why, sizeof(s->why), "entry %lld does not link to the entry before it",
                 (long long)e->seq);
        s->bad = e->seq;
        return 1;
    }
    if (audit_hash(&h, &e->prev, e->seq, e->time_ns, e->actor, e->action, e->subject, e->details) <
        0)
        return -1;
    if (cairn_oid_cmp(&h, &e->hash)) {
        snprintf(s->why, sizeof(s->why), "entry %lld was modified (hash mismatch)",
                 (long long)e->seq);
        s->bad = e->seq;
        return 1;
    }
    if (e->seq == s->head_seq) {
        s->head_found = e->hash;
        s->head_seen = 1;
    }
    s->prev = e->hash;
    s->expect_seq++;
    return 0;
}

int cairn_registry_audit_verify(struct cairn_registry *r, int64_t *bad_seq)
{
    struct verify_state s;
    int error;
    cairn_oid head;
    memset(&s, 0, sizeof(s));
    s.expect_seq = 1;
    if ((error = cairn__reg_audit_head_get(r, &s.head_seq, &head)) < 0)
        return error;
    error = audit_each(r, verify_one, &s);
    if (error < 0)
        return error;
    /* The chain is whole; it must still reach the pinned head, unchanged. */
    if (!error && s.head_seq && !s.head_seen) {
        snprintf(s.why, sizeof(s.why),
                 "entries %lld to %lld are missing (the audit head pins entry %lld)",
                 (long long)s.expect_seq, (long long)s.head_seq, (long long)s.head_seq);
        s.bad = s.expect_seq;
        error = 1;
    } else if (!error && s.head_seq && cairn_oid_cmp(&s.head_found, &head)) {
        snprintf(s.why, sizeof(s.why),
                 "entry %lld is not the one the audit head pins (history was rewritten)",
                 (long long)s.head_seq);
        s.bad = s.head_seq;
        error = 1;
    }
    if (error > 0) {
        if (bad_seq)
            *bad_seq = s.bad;
        return cairn_error_set(CAIRN_ECHECK, "audit log broken: %s", s.why);
    }
    return 0;
}
