/*
 * The audit head: the newest audit entry's number and hash, pinned in a
 * file beside the database (`audit-head` in the directory of cairn.db).
 *
 * Why: the hash chain finds an edited or removed row anywhere but at the
 * end. Deleting the newest rows leaves a shorter chain that is still
 * perfectly linked, so the log alone cannot tell. The head file is a second
 * witness that SQL on the database does not touch: `audit --verify` fails
 * when the database no longer holds the pinned entry, or holds a different
 * one under its number. (Whoever can rewrite both files can still rewrite
 * history; a copy of the head kept elsewhere — a remote, a ticket — pins it
 * against that too. docs/registry.md, "The audit log".)
 *
 * When: sqlite3_wal_hook() runs after every commit of a write transaction
 * in WAL mode, whichever code path committed it, so an entry appended in
 * any transaction is pinned once it is durable, never before: a crash
 * between the two leaves the head behind the log, which verifies. A
 * rolled-back transaction forgets what it appended (the rollback hook).
 * Installing a WAL hook replaces SQLite's automatic checkpoint, so the hook
 * checkpoints itself at the same threshold (1000 frames).
 *
 * Concurrent writers serialise the update on `audit-head.lock` and only
 * ever move the head forward, so the file never goes back to an older
 * entry. A failure to write it is a warning, not an error: the change it
 * records is already committed.
 */
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/sqlite_internal.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define HEAD_MAGIC        "cairn-audit-head v1"
#define CHECKPOINT_FRAMES 1000

/* `<dir of the database>/audit-head` (or `.lock`); 0 with out empty for an in-memory db. */
static int head_path(struct cairn_buf *out, const struct cairn_registry *r, const char *suffix)
{
    char *copy;
    int error;

    cairn_buf_clear(out);
    if (!r->path || !*r->path || !strcmp(r->path, ":memory:"))
        return 0;
    if (!(copy = strdup(r->path)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    error = cairn_buf_printf(out, "%s/audit-head%s", dirname(copy), suffix);
    free(copy);
    return error;
}

/* Read the head file: 1 with seq and hash, 0 when there is none. */
static int head_read(const char *path, int64_t *seq, cairn_oid *hash)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    char hex[CAIRN_OID_HEXSZ + 1];
    long long n;
    int error;

    error = cairn_fs_read_file(&b, path, 4096);
    if (error == CAIRN_ENOTFOUND) {
        cairn_error_clear();
        return 0;
    }
    if (error < 0)
        return error;
    if (sscanf(b.ptr, HEAD_MAGIC "\nseq %lld\nhash %64s\n", &n, hex) != 2 || n < 1 ||
        cairn_oid_parse(hash, hex) < 0)
        error = cairn_error_set(CAIRN_ECORRUPT, "audit head '%s' is damaged", path);
    else
        *seq = n, error = 1;
    cairn_buf_release(&b);
    return error;
}

static int head_write(struct cairn_registry *r, int64_t seq, const cairn_oid *hash)
{
    struct cairn_buf path = CAIRN_BUF_INIT, lock = CAIRN_BUF_INIT, body = CAIRN_BUF_INIT;
    char hex[CAIRN_OID_HEXSZ + 1];
    int64_t cur = 0;
    cairn_oid cur_hash;
    int fd = -1, error;

    if ((error = head_path(&path, r, "")) < 0 || !path.len ||
        (error = head_path(&lock, r, ".lock")) < 0 ||
        (error = cairn_fs_lock(&fd, lock.ptr, 1, 0)) < 0)
        goto done;
    /* A damaged head is replaced: the database is the record, the head a witness. */
    if (head_read(path.ptr, &cur, &cur_hash) < 0)
        cairn_error_clear(), cur = 0;
    if (cur >= seq)
        goto done;
    if ((error = cairn_buf_printf(&body, HEAD_MAGIC "\nseq %" PRId64 "\nhash %s\n", seq,
                                  cairn_oid_fmt(hex, hash))) < 0)
        goto done;
    error = cairn_fs_write_atomic(path.ptr, body.ptr, body.len, 0644);
done:
    if (fd >= 0)
        cairn_fs_unlock(fd);
    cairn_buf_release(&path);
    cairn_buf_release(&lock);
    cairn_buf_release(&body);
    return error;
}

static int on_wal_commit(void *payload, sqlite3 *db, const char *name, int frames)
{
    struct cairn_registry *r = payload;

    if (r->head_seq) {
        int64_t seq = r->head_seq;
        r->head_seq = 0;
        if (head_write(r, seq, &r->head_hash) < 0)
            cairn_warn("cannot record the audit head (audit entry %" PRId64 "): %s", seq,
                       cairn_error_last());
    }
    if (frames >= CHECKPOINT_FRAMES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

static void on_rollback(void *payload)
{
    ((struct cairn_registry *)payload)->head_seq = 0;
}

void cairn__reg_audit_head_hooks(struct cairn_registry *r)
{
    sqlite3_wal_hook(r->db, on_wal_commit, r);
    sqlite3_rollback_hook(r->db, on_rollback, r);
}

void cairn__reg_audit_head_note(struct cairn_registry *r, int64_t seq, const cairn_oid *hash)
{
    if (seq > r->head_seq) {
        r->head_seq = seq;
        r->head_hash = *hash;
    }
}

int cairn__reg_audit_head_get(struct cairn_registry *r, int64_t *seq, cairn_oid *hash)
{
    struct cairn_buf path = CAIRN_BUF_INIT;
    int error;

    if ((error = head_path(&path, r, "")) < 0)
        return error;
    error = path.len ? head_read(path.ptr, seq, hash) : 0;
    cairn_buf_release(&path);
    return error;
}
