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
#include "util/buf.h"
#include "util/text.h"
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
 * A ring of buffers, so that one printf can quote several names; each is
 * reused eight calls later. The CLI prints from one thread.
 */
#define ESC_RING 8

static const char *escape(const char *s, int keep_newlines)
{
    static struct cairn_buf ring[ESC_RING];
    static unsigned next;
    struct cairn_buf *b = &ring[next++ % ESC_RING];

    if (cairn_text_quote_buf(b, s, keep_newlines) < 0)
        return "(name too long to print)";
    return b->ptr ? b->ptr : "";
}

const char *cli_esc(const char *s)
{
    return s ? escape(s, 0) : "";
}

const char *cli_esc_text(const char *s)
{
    return s ? escape(s, 1) : "";
}
