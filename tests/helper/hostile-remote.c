/*
 * cairn-hostile-remote: turns an honest file:// remote into a hostile one,
 * for the tests of what a remote may send (docs/remotes.md, "What a remote
 * may send"). cairn itself never writes what this writes; a crafted remote
 * can, with valid packs, idx files and records, so the tests need the same.
 *
 *   retree REPO REMOTE_DIR ID FROM=TO[:MODE]...
 *       A new version on the remote: version ID's record with its tree
 *       replaced by one in which the file at FROM is named TO (raw bytes,
 *       any path) and optionally has MODE (octal). The tree goes into a new
 *       pack and idx (valid: built by the store writer) in REMOTE_DIR/packs/,
 *       the record into REMOTE_DIR/versions/NEWID.json, hashed correctly.
 *       REPO is the repository that pushed ID (its store has the old tree).
 *       Prints NEWID.
 *
 * Escapes in TO: \n, \t, \e and \xNN, so a test can name control bytes.
 * Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "cairn/store.h"
#include "repo/object.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

static int die(const char *what)
{
    const char *why = cairn_error_last();
    fprintf(stderr, "cairn-hostile-remote: %s%s%s\n", what, why && *why ? ": " : "",
            why ? why : "");
    return 1;
}

/* Undo the escapes of TO in place. */
static void unescape(char *s)
{
    char *o = s;
    while (*s) {
        if (*s != '\\' || !s[1]) {
            *o++ = *s++;
            continue;
        }
        s++;
        switch (*s) {
        case 'n':
            *o++ = '\n', s++;
            break;
        case 't':
            *o++ = '\t', s++;
            break;
        case 'e':
            *o++ = '\033', s++;
            break;
        case 'x': {
            char hex[3] = { s[1], s[1] ? s[2] : 0, 0 };
            *o++ = (char)strtoul(hex, NULL, 16);
            s += 3;
            break;
        }
        default:
            *o++ = *s++;
        }
    }
    *o = '\0';
}

static int retree(int argc, char **argv)
{
    const char *repo = argv[2], *remote = argv[3], *id = argv[4];
    struct cairn_buf path = CAIRN_BUF_INIT, raw = CAIRN_BUF_INIT, enc = CAIRN_BUF_INIT,
                     tmp = CAIRN_BUF_INIT;
    struct cairn_store *old = NULL, *fresh = NULL;
    struct cairn_store_writer *w = NULL;
    struct cairn_tree tree;
    json_t *obj = NULL, *rec = NULL;
    char hex[CAIRN_OID_HEXSZ + 1], *record = NULL, *body = NULL;
    cairn_oid tree_id, new_tree, new_id;
    int rc = 1;

    memset(&tree, 0, sizeof(tree));
    if (cairn_buf_printf(&path, "%s/versions/%s.json", remote, id) < 0 ||
        !(obj = json_load_file(path.ptr, 0, NULL)) ||
        !(rec = json_loads(json_string_value(json_object_get(obj, "record")), 0, NULL)) ||
        cairn_oid_parse(&tree_id, json_string_value(json_object_get(rec, "tree"))) < 0) {
        rc = die("cannot read the version object");
        goto done;
    }
    cairn_buf_clear(&path);
    if (cairn_buf_printf(&path, "%s/.cairn/store", repo) < 0 ||
        cairn_store_open(&old, path.ptr) < 0 || cairn_store_get(old, &tree_id, &raw) < 0 ||
        cairn_tree_decode(&tree, raw.ptr, raw.len) < 0) {
        rc = die("cannot read the old tree");
        goto done;
    }
    for (int i = 5; i < argc; i++) {
        char *from = argv[i], *to = strchr(from, '='), *mode;
        size_t j;
        if (!to) {
            fprintf(stderr, "cairn-hostile-remote: '%s' is not FROM=TO\n", from);
            rc = 2;
            goto done;
        }
        *to++ = '\0';
        if ((mode = strrchr(to, ':')) && mode[1] >= '0' && mode[1] <= '7')
            *mode++ = '\0';
        else
            mode = NULL;
        unescape(to);
        for (j = 0; j < tree.n && strcmp(tree.entries[j].path, from); j++)
            ;
        if (j == tree.n) {
            fprintf(stderr, "cairn-hostile-remote: no file '%s' in version %s\n", from, id);
            goto done;
        }
        free(tree.entries[j].path);
        tree.entries[j].path = strdup(to);
        if (mode)
            tree.entries[j].mode = (uint32_t)strtoul(mode, NULL, 8);
    }
    if (cairn_tree_sort(&tree) < 0 || cairn_tree_encode(&enc, &tree) < 0) {
        rc = die("cannot encode the new tree");
        goto done;
    }
    /* A fresh store makes a pack and idx holding just the new tree. */
    if (cairn_fs_mkdtemp(&tmp, NULL, "hostile") < 0 || cairn_store_init(tmp.ptr) < 0 ||
        cairn_store_open(&fresh, tmp.ptr) < 0 || cairn_store_writer_new(&w, fresh) < 0 ||
        cairn_store_writer_put(w, enc.ptr, enc.len, &new_tree) < 0 ||
        cairn_store_writer_commit(w) < 0) {
        rc = die("cannot write the new tree");
        goto done;
    }
    cairn_buf_clear(&path);
    cairn_buf_printf(&path, "cp %s/packs/pack-* %s/packs/", tmp.ptr, remote);
    if (system(path.ptr) != 0) {
        fprintf(stderr, "cairn-hostile-remote: cannot copy the pack\n");
        goto done;
    }
    json_object_set_new(rec, "tree", json_string(cairn_oid_fmt(hex, &new_tree)));
    record = json_dumps(rec, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII |
                                 JSON_REAL_PRECISION(17));
    cairn_hash(&new_id, record, strlen(record));
    json_object_set_new(obj, "record", json_string(record));
    json_object_set_new(obj, "id", json_string(cairn_oid_fmt(hex, &new_id)));
    body = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17));
    cairn_buf_clear(&path);
    cairn_buf_printf(&path, "%s/versions/%s.json", remote, hex);
    if (cairn_fs_write_atomic(path.ptr, body, strlen(body), 0644) < 0) {
        rc = die("cannot write the version object");
        goto done;
    }
    printf("%s\n", hex);
    rc = 0;
done:
    if (tmp.ptr)
        cairn_fs_rm_rf(tmp.ptr);
    cairn_store_writer_free(w);
    cairn_store_free(fresh);
    cairn_store_free(old);
    cairn_tree_release(&tree);
    json_decref(obj);
    json_decref(rec);
    free(record);
    free(body);
    cairn_buf_release(&path);
    cairn_buf_release(&raw);
    cairn_buf_release(&enc);
    cairn_buf_release(&tmp);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && !strcmp(argv[1], "retree"))
        return retree(argc, argv);
    fprintf(stderr, "usage: cairn-hostile-remote retree REPO REMOTE_DIR ID FROM=TO[:MODE]...\n");
    return 2;
}
