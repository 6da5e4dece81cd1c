/*
 * cairn lineage REF [--json | --dot]: where a version came from, upward:
 * its parents, the datasets it used and what it was derived from, each
 * with its own lineage, as a tree, as nested JSON, or as a Graphviz graph.
 *
 * Versions are content-addressed, so the graph has no cycles; shared
 * ancestors are expanded once (later mentions say "see above") and the
 * walk stops at MAX_NODES so a huge history cannot flood the terminal.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"
#include "util/buf.h"
#include "util/hash.h"

#define MAX_NODES 10000

const char cmd_lineage_summary[] = "show where a version came from: parents, datasets";
const char cmd_lineage_help[] =
    "Show the lineage of version REF upward as a tree: its parent version, the\n"
    "datasets it was trained or evaluated on (commit --data), versions it was\n"
    "derived from (quantize, prune), each with author, host, time and code\n"
    "commit (marked dirty when the working tree had changes), and their own\n"
    "lineage in turn. A version reached twice is expanded once. --json and --dot\n"
    "cannot be combined. Draw the --dot graph with\n"
    "'cairn lineage m --dot | dot -Tsvg > m.svg'.\n";

enum { LINEAGE_REF, LINEAGE_JSON, LINEAGE_DOT };
const struct cli_opt cmd_lineage_opts[] = {
    [LINEAGE_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "the version", CLI_OPT_REQUIRED },
    [LINEAGE_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "nested JSON (see docs/cli-json.md)", 0 },
    [LINEAGE_DOT] = { CLI_OPT_FLAG, "dot", 0, NULL, "a Graphviz digraph (see above)", 0 },
    CLI_OPTS_END,
};

struct edge {
    char kind[16];
    cairn_oid target;
    char *detail;
};

struct edges {
    struct edge *v;
    size_t n, cap;
};

struct walk {
    struct cairn_repo *repo;
    cairn_oid *seen;
    size_t nseen, cap;
    int truncated;
};

static int collect_edge(const struct cairn_lineage_edge *e, void *payload)
{
    struct edges *l = payload;
    if (CAIRN_ARRAY_GROW(l->v, l->cap, l->n) < 0)
        return CAIRN_ENOMEM;
    memset(&l->v[l->n], 0, sizeof(l->v[0]));
    snprintf(l->v[l->n].kind, sizeof(l->v[0].kind), "%s", e->kind);
    l->v[l->n].target = e->target;
    if (e->detail && !(l->v[l->n].detail = strdup(e->detail)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    l->n++;
    return 0;
}

static void edges_release(struct edges *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].detail);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* 1 if `id` was visited already, else remember it and return 0. */
static int seen(struct walk *w, const cairn_oid *id)
{
    for (size_t i = 0; i < w->nseen; i++)
        if (!cairn_oid_cmp(&w->seen[i], id))
            return 1;
    if (w->nseen >= MAX_NODES) {
        w->truncated = 1;
        return 1;
    }
    if (CAIRN_ARRAY_GROW(w->seen, w->cap, w->nseen) < 0)
        return 1;
    w->seen[w->nseen++] = *id;
    return 0;
}

static void label(char *buf, size_t cap, const struct cairn_version *v)
{
    char when[64], sid[16];
    int n = snprintf(buf, cap, "%s@v%d (%s) %s by %s@%s", cli_esc(v->model), v->number,
                     cli_short_id(sid, &v->id), cli_fmt_time(when, sizeof(when), v->time_ns),
                     cli_esc(v->author), cli_esc(v->host));
    if (v->code_commit && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, ", code %.12s%s", cli_esc(v->code_commit),
                 v->code_dirty > 0 ? " (dirty)" : "");
}

static int walk_text(struct walk *w, const cairn_oid *id, const char *prefix, int depth)
{
    struct cairn_registry *r = cairn_repo_registry(w->repo);
    struct edges l = { 0 };
    int error;

    if ((error = cairn_registry_lineage(r, id, collect_edge, &l)) < 0)
        goto done;
    for (size_t i = 0; i < l.n && !error; i++) {
        struct cairn_version t;
        char line[512], sub[1024], sid[16];
        int last = i + 1 == l.n, dup, n;
        if (cairn_registry_version_get(r, &l.v[i].target, &t) < 0) {
            cairn_error_clear();
            printf("%s%s %-7s %s (not in this repository)\n", prefix, last ? "└──" : "├──",
                   l.v[i].kind, cli_short_id(sid, &l.v[i].target));
            continue;
        }
        dup = seen(w, &t.id);
        label(line, sizeof(line), &t);
        printf("%s%s %-7s %s%s%s%s\n", prefix, last ? "└──" : "├──", cli_esc(l.v[i].kind), line,
               l.v[i].detail ? " " : "", cli_esc(l.v[i].detail), dup ? " (see above)" : "");
        n = snprintf(sub, sizeof(sub), "%s%s", prefix, last ? "    " : "│   ");
        /* A tree deeper than the indent buffer stops there rather than misdraw. */
        if (!dup && depth < 256 && n > 0 && (size_t)n < sizeof(sub))
            error = walk_text(w, &t.id, sub, depth + 1);
        cairn_version_release(&t);
    }
done:
    edges_release(&l);
    return error;
}

static json_t *version_node(const struct cairn_version *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", cli_oid_json(&v->id));
    json_object_set_new(o, "ref", json_sprintf("%s@v%d", v->model, v->number));
    json_object_set_new(o, "model", json_string(v->model));
    json_object_set_new(o, "kind", json_string(v->kind));
    json_object_set_new(o, "number", json_integer(v->number));
    json_object_set_new(o, "author", json_string(v->author));
    json_object_set_new(o, "host", json_string(v->host));
    json_object_set_new(o, "time_ns", json_integer(v->time_ns));
    json_object_set_new(o, "code_commit",
                        v->code_commit ? json_string(v->code_commit) : json_null());
    json_object_set_new(o, "code_dirty",
                        v->code_dirty < 0 ? json_null() : json_boolean(v->code_dirty));
    return o;
}

static int walk_json(struct walk *w, const cairn_oid *id, json_t *node, int depth)
{
    struct cairn_registry *r = cairn_repo_registry(w->repo);
    struct edges l = { 0 };
    json_t *arr = json_array();
    int error;

    json_object_set_new(node, "inputs", arr);
    if ((error = cairn_registry_lineage(r, id, collect_edge, &l)) < 0)
        goto done;
    for (size_t i = 0; i < l.n && !error; i++) {
        struct cairn_version t;
        json_t *e = json_object(), *child;
        json_object_set_new(e, "kind", json_string(l.v[i].kind));
        json_object_set_new(e, "detail", l.v[i].detail ? json_string(l.v[i].detail) : json_null());
        json_array_append_new(arr, e);
        if (cairn_registry_version_get(r, &l.v[i].target, &t) < 0) {
            cairn_error_clear();
            child = json_object();
            json_object_set_new(child, "id", cli_oid_json(&l.v[i].target));
            json_object_set_new(child, "missing", json_true());
            json_object_set_new(e, "version", child);
            continue;
        }
        child = version_node(&t);
        json_object_set_new(e, "version", child);
        if (!seen(w, &t.id) && depth < 256)
            error = walk_json(w, &t.id, child, depth + 1);
        else
            json_object_set_new(child, "repeated", json_true());
        cairn_version_release(&t);
    }
done:
    edges_release(&l);
    return error;
}

static void dot_node(const cairn_oid *id, const char *text)
{
    char hex[CAIRN_OID_HEXSZ + 1];
    printf("  \"%s\" [label=\"", cairn_oid_fmt(hex, id));
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            putchar('\\');
        putchar(*p);
    }
    printf("\"];\n");
}

static int walk_dot(struct walk *w, const cairn_oid *id)
{
    struct cairn_registry *r = cairn_repo_registry(w->repo);
    struct edges l = { 0 };
    int error;

    if ((error = cairn_registry_lineage(r, id, collect_edge, &l)) < 0)
        goto done;
    for (size_t i = 0; i < l.n && !error; i++) {
        struct cairn_version t;
        char a[CAIRN_OID_HEXSZ + 1], b[CAIRN_OID_HEXSZ + 1], text[160];
        printf("  \"%s\" -> \"%s\" [label=\"%s\"];\n", cairn_oid_fmt(a, id),
               cairn_oid_fmt(b, &l.v[i].target), l.v[i].kind);
        if (seen(w, &l.v[i].target))
            continue;
        if (cairn_registry_version_get(r, &l.v[i].target, &t) < 0) {
            cairn_error_clear();
            dot_node(&l.v[i].target, "(not in this repository)");
            continue;
        }
        snprintf(text, sizeof(text), "%s@v%d\\n%s", t.model, t.number, t.kind);
        printf("  \"%s\" [label=\"%s\"%s];\n", b, text,
               strcmp(t.kind, "dataset") ? "" : " shape=cylinder");
        error = walk_dot(w, &t.id);
        cairn_version_release(&t);
    }
done:
    edges_release(&l);
    return error;
}

int cmd_lineage(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_version v;
    struct walk w;
    struct cli_parsed args;
    int json, dot, error = 0, rc, have_v = 0;

    memset(&w, 0, sizeof(w));
    if ((rc = cli_opt_parse(&args, "lineage", cmd_lineage_opts, argc, argv)) != 0)
        return rc;
    json = args.v[LINEAGE_JSON].count > 0;
    dot = args.v[LINEAGE_DOT].count > 0;
    if (json && dot) {
        rc = cli_usage("lineage", "--json and --dot cannot be combined");
        goto done;
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    w.repo = repo;
    if ((error = cairn_repo_resolve(repo, args.v[LINEAGE_REF].str, &v)) < 0)
        goto done;
    have_v = 1;
    seen(&w, &v.id);
    if (json) {
        json_t *root = version_node(&v);
        if ((error = walk_json(&w, &v.id, root, 0)) < 0) {
            json_decref(root);
            goto done;
        }
        cli_print_json(root);
    } else if (dot) {
        char text[160], hex[CAIRN_OID_HEXSZ + 1];
        printf("digraph lineage {\n  rankdir=BT;\n  node [shape=box];\n");
        snprintf(text, sizeof(text), "%s@v%d\\n%s", v.model, v.number, v.kind);
        printf("  \"%s\" [label=\"%s\" style=bold%s];\n", cairn_oid_fmt(hex, &v.id), text,
               strcmp(v.kind, "dataset") ? "" : " shape=cylinder");
        error = walk_dot(&w, &v.id);
        printf("}\n");
    } else {
        char line[512];
        label(line, sizeof(line), &v);
        printf("%s\n", line);
        error = walk_text(&w, &v.id, "", 0);
    }
    if (!error && w.truncated)
        fprintf(stderr, "cairn: note: lineage cut at %d versions\n", MAX_NODES);
done:
    if (have_v)
        cairn_version_release(&v);
    free(w.seen);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return error < 0 ? cli_fail(error) : rc;
}
