/*
 * JSON forms of library objects shared by several commands (log, show,
 * commit), and the quoting of names for human output. The schemas are
 * documented in docs/cli-json.md; keep them stable.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "print.h"
#include "util/hash.h"
#include "util/values.h"

json_t *cli_oid_json(const cairn_oid *id)
{
    char hex[CAIRN_OID_HEXSZ + 1];
    return json_string(cairn_oid_fmt(hex, id));
}

json_t *cli_version_json(struct cairn_repo *repo, const struct cairn_version *v, int full)
{
    struct cairn_registry *r = cairn_repo_registry(repo);
    json_t *o = json_object();
    char when[64];

    json_object_set_new(o, "id", cli_oid_json(&v->id));
    json_object_set_new(o, "model", json_string(v->model));
    json_object_set_new(o, "kind", json_string(v->kind));
    json_object_set_new(o, "number", json_integer(v->number));
    json_object_set_new(o, "ref", json_sprintf("%s@v%d", v->model, v->number));
    json_object_set_new(o, "time_ns", json_integer(v->time_ns));
    json_object_set_new(o, "time", json_string(cli_fmt_time(when, sizeof(when), v->time_ns)));
    json_object_set_new(o, "author", json_string(v->author));
    json_object_set_new(o, "host", json_string(v->host));
    json_object_set_new(o, "message", json_string(v->message));
    json_object_set_new(o, "parent", v->has_parent ? cli_oid_json(&v->parent) : json_null());
    json_object_set_new(o, "code_commit",
                        v->code_commit ? json_string(v->code_commit) : json_null());
    json_object_set_new(o, "code_dirty",
                        v->code_dirty < 0 ? json_null() : json_boolean(v->code_dirty));
    json_object_set_new(o, "files", json_integer((json_int_t)v->nfiles));
    json_object_set_new(o, "raw_bytes", json_integer((json_int_t)v->raw_size));
    json_object_set_new(o, "stored_bytes", json_integer((json_int_t)v->stored_new));
    {
        struct cairn_values m = { 0 };
        if (cairn_registry_metrics(r, &v->id, &m) == 0)
            json_object_set_new(o, "metrics", cairn__values_json(&m));
        cairn_values_release(&m);
    }
    if (full) {
        struct cairn_values p = { 0 };
        if (cairn_registry_params(r, &v->id, &p) == 0)
            json_object_set_new(o, "params", cairn__values_json(&p));
        cairn_values_release(&p);
        json_object_set_new(o, "tree", cli_oid_json(&v->tree));
    }
    return o;
}

/*
 * Length of the valid, shortest-form UTF-8 sequence of 2 to 4 bytes at `s`
 * (no surrogates, at most U+10FFFF) with its code point in *cp, or 0.
 */
static size_t utf8_seq(const unsigned char *s, uint32_t *cp)
{
    size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    uint32_t c = s[0] & (0x7f >> n);
    if (!n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10ffff ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* C1 controls, and the bidirectional overrides that can make a name read as another. */
static int cp_hidden(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029;
}

/*
 * A ring of buffers, so that one printf can quote several names; each is
 * reused eight calls later. The CLI prints from one thread.
 */
#define ESC_RING 8

static const char *escape(const char *s, int keep_newlines)
{
    static struct {
        char *p;
        size_t cap;
    } ring[ESC_RING];
    static unsigned next;
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s), need = len * 4 + 1, o = 0;
    unsigned k = next++ % ESC_RING;
    char *out;

    if (need > ring[k].cap) {
        char *p = realloc(ring[k].p, need);
        if (!p)
            return "(name too long to print)";
        ring[k].p = p;
        ring[k].cap = need;
    }
    out = ring[k].p;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = u[i] >= 0x80 ? utf8_seq(u + i, &cp) : 0;
        if (n && !cp_hidden(cp)) {
            memcpy(out + o, u + i, n);
            o += n;
            i += n;
            continue;
        }
        for (size_t j = 0; j < (n ? n : 1); j++, i++) {
            unsigned char c = u[i];
            if (c == '\\') {
                out[o++] = '\\';
                out[o++] = '\\';
            } else if ((c < 0x20 && !(keep_newlines && c == '\n')) || c >= 0x7f) {
                o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
            } else {
                out[o++] = (char)c;
            }
        }
    }
    out[o] = '\0';
    return out;
}

const char *cli_esc(const char *s)
{
    return s ? escape(s, 0) : "";
}

const char *cli_esc_text(const char *s)
{
    return s ? escape(s, 1) : "";
}
