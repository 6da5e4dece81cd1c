/*
 * Fuzz target for the objects a remote sends besides packs (lib/remote/
 * sync.c): version objects (versions/ID.json, whose record must hash to
 * ID) and alias entries (aliases/M/A/SEQ-WRITER.json). The first byte picks
 * the parser and, for alias entries, one of a few keys (well-formed, jumping,
 * malformed); the rest is the body. Whatever a parser accepts must hold what
 * the rule promises: a version's record hashes to its id and names a valid
 * model; an alias entry has a number >= 1 and names the model of its key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/repo.h"
#include "remote/sync.h"
#include "util/hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const alias_keys[] = {
    "aliases/m/prod/0000000000000001-0123456789abcdef.json",
    "aliases/m/prod/0000000000000002-ffffffffffffffff.json",
    "aliases/m/prod/9999999999999999-0000000000000000.json",
    "aliases/m/prod/10000000000000000-0000000000000000.json",
    "aliases/m/prod/x.json",
    "aliases/m/prod/0000000000000001-0123456789ABCDEF.json",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        /* A version object under the key its record would hash to. */
        struct cairn__remote_version v;
        char key[128], hex[CAIRN_OID_HEXSZ + 1];
        cairn_oid id;
        json_t *o = json_loadb((const char *)data + 1, size - 1, 0, NULL);
        const char *rec = json_string_value(json_object_get(o, "record"));
        if (rec)
            cairn_hash(&id, rec, strlen(rec));
        else
            memset(&id, data[0], sizeof(id));
        json_decref(o);
        snprintf(key, sizeof(key), "versions/%s.json", cairn_oid_fmt(hex, &id));
        if (cairn__sync_version_parse(&v, key, data + 1, size - 1) == 0) {
            cairn_oid got;
            const char *r = json_string_value(json_object_get(v.obj, "record"));
            if (!r)
                abort();
            cairn_hash(&got, r, strlen(r));
            if (cairn_oid_cmp(&got, &v.id) || cairn_name_valid(v.model, "model") < 0 ||
                v.number < 0 || v.number > CAIRN__SYNC_NUMBER_MAX)
                abort();
            json_decref(v.obj);
            json_decref(v.rec);
        }
        cairn_error_clear();
    } else {
        struct cairn__alias_head h;
        const char *key = alias_keys[(data[0] >> 1) % (sizeof(alias_keys) / sizeof(*alias_keys))];
        if (cairn__sync_alias_parse(&h, key, "m", "prod", (const char *)data + 1, size - 1) == 0) {
            if (!h.found || h.seq < 1 || h.seq != cairn__sync_alias_seq(key, "aliases/m/prod/") ||
                strcmp(h.key, key))
                abort();
        }
        cairn_error_clear();
    }
    return 0;
}
