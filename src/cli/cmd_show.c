/* cairn show REF [--tensors] [--json]: one version in full. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "print.h"
#include "util/hash.h"

const char cmd_show_summary[] = "show a version: files, lineage, params, metrics";
const char cmd_show_help[] =
    "usage: cairn show REF [--tensors] [--json]\n"
    "\n"
    "Show one version: id, author, time, message, parent, code commit, datasets,\n"
    "tags, files (size and BLAKE3 digest, as b3sum prints it), params, metrics,\n"
    "and its size against what it added to the store.\n"
    "\n"
    "REF is NAME (latest), NAME@vN, NAME@ALIAS, NAME@TAG, NAME@REMOTE/ALIAS (the\n"
    "alias as the last push or pull saw it on REMOTE) or an id prefix.\n"
    "\n"
    "  --tensors   list the tensors of each tensor file: name, dtype, shape, bytes\n"
    "  --json      machine-readable (see docs/cli-json.md); raw_bytes is the size of\n"
    "              the version's files, stored_bytes the stored (compressed,\n"
    "              deduplicated) size of the chunks it does not share with its\n"
    "              parent version: what this version added to the store\n";

struct show_ctx {
    struct cairn_repo *repo;
    json_t *arr;
    int json;
};

static int print_edge(const struct cairn_lineage_edge *e, void *payload)
{
    struct show_ctx *c = payload;
    struct cairn_version t;
    char sid[16], ref[96] = "?";
    if (cairn_registry_version_get(cairn_repo_registry(c->repo), &e->target, &t) == 0) {
        snprintf(ref, sizeof(ref), "%s@v%d", t.model, t.number);
        cairn_version_release(&t);
    }
    if (c->json) {
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(e->kind));
        json_object_set_new(o, "id", cli_oid_json(&e->target));
        json_object_set_new(o, "ref", json_string(ref));
        if (e->detail)
            json_object_set_new(o, "detail", json_string(e->detail));
        json_array_append_new(c->arr, o);
    } else {
        printf("%-9s%s (%s)%s%s\n", cli_esc(e->kind), cli_esc(ref), cli_short_id(sid, &e->target),
               e->detail ? " " : "", cli_esc(e->detail));
    }
    return 0;
}

static int print_tag(const char *tag, const cairn_oid *v, void *payload)
{
    struct show_ctx *c = payload;
    (void)v;
    if (c->json)
        json_array_append_new(c->arr, json_string(tag));
    else
        printf(" %s", cli_esc(tag));
    return 0;
}

struct tensor_print {
    json_t *arr;
};

static int print_tensor(const struct cairn_tensor_entry *t, void *payload)
{
    struct tensor_print *tp = payload;
    char shape[160] = "[", sz[32];
    size_t n = 1;
    for (unsigned d = 0; d < t->rank && n < sizeof(shape); d++)
        n += (size_t)snprintf(shape + n, sizeof(shape) - n, "%s%llu", d ? ", " : "",
                              (unsigned long long)t->shape[d]);
    if (n < sizeof(shape) - 1)
        snprintf(shape + n, sizeof(shape) - n, "]");
    if (tp->arr) {
        json_t *o = json_object(), *sh = json_array();
        for (unsigned d = 0; d < t->rank; d++)
            json_array_append_new(sh, json_integer((json_int_t)t->shape[d]));
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "dtype", json_string(t->dtype));
        json_object_set_new(o, "shape", sh);
        json_object_set_new(o, "bytes", json_integer((json_int_t)t->bytes));
        json_object_set_new(o, "chunks", json_integer((json_int_t)t->chunks));
        json_array_append_new(tp->arr, o);
    } else {
        printf("      %-40s %-6s %-20s %10s\n", cli_esc(t->name), cli_esc(t->dtype), shape,
               cli_fmt_bytes(sz, sizeof(sz), t->bytes));
    }
    return 0;
}

static json_t *tensors_of(struct cairn_repo *repo, const struct cairn_tree_entry *e, int json)
{
    struct tensor_print tp = { json ? json_array() : NULL };
    cairn_repo_tensors(repo, e, print_tensor, &tp);
    return tp.arr;
}

int cmd_show(int argc, char **argv)
{
    static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
                                          { "tensors", no_argument, NULL, 't' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_repo *repo = NULL;
    struct cairn_registry *r;
    struct cairn_version v;
    struct cairn_tree tree = { 0 };
    struct show_ctx ctx = { 0 };
    int c, json = 0, tensors = 0, error, rc;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j')
            json = 1;
        else if (c == 't')
            tensors = 1;
        else
            return cli_usage("show", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind != argc - 1)
        return cli_usage("show",
                         optind >= argc ? "which version? give a REF" : "too many arguments");
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    r = cairn_repo_registry(repo);
    if ((error = cairn_repo_resolve(repo, argv[optind], &v)) < 0 ||
        (error = cairn_repo_read_tree(repo, &v.tree, &tree)) < 0) {
        cairn_repo_free(repo);
        return cli_fail(error);
    }
    ctx.repo = repo;
    ctx.json = json;
    if (json) {
        json_t *o = cli_version_json(repo, &v, 1), *files = json_array();
        ctx.arr = json_array();
        cairn_registry_lineage(r, &v.id, print_edge, &ctx);
        json_object_set_new(o, "lineage", ctx.arr);
        ctx.arr = json_array();
        cairn_registry_tag_list(r, &v.id, print_tag, &ctx);
        json_object_set_new(o, "tags", ctx.arr);
        for (size_t i = 0; i < tree.n; i++) {
            json_t *f = json_object();
            json_object_set_new(f, "path", json_string(tree.entries[i].path));
            json_object_set_new(f, "size", json_integer((json_int_t)tree.entries[i].size));
            json_object_set_new(f, "mode", json_sprintf("%o", tree.entries[i].mode));
            json_object_set_new(f, "blake3", cli_oid_json(&tree.entries[i].digest));
            if (tensors)
                json_object_set_new(f, "tensors", tensors_of(repo, &tree.entries[i], 1));
            json_array_append_new(files, f);
        }
        json_object_set_new(o, "file_list", files);
        cli_print_json(o);
    } else {
        char when[64], a[32], b[32], val[256];
        struct cairn_values kv = { 0 };
        printf("version  %s@v%d (%s)\n", cli_esc(v.model), v.number, cli_esc(v.kind));
        printf("id       %s\n", (cairn_oid_fmt(val, &v.id), val));
        printf("date     %s\n", cli_fmt_time(when, sizeof(when), v.time_ns));
        printf("author   %s@%s\n", cli_esc(v.author), cli_esc(v.host));
        if (v.code_commit)
            printf("code     %s%s\n", cli_esc(v.code_commit), v.code_dirty > 0 ? " (dirty)" : "");
        cairn_registry_lineage(r, &v.id, print_edge, &ctx);
        printf("tags    ");
        cairn_registry_tag_list(r, &v.id, print_tag, &ctx);
        printf("\nsize     %s in %llu file%s, %s added to the store\n",
               cli_fmt_bytes(a, sizeof(a), v.raw_size), (unsigned long long)v.nfiles,
               v.nfiles == 1 ? "" : "s", cli_fmt_bytes(b, sizeof(b), v.stored_new));
        printf("message  %s\n\nfiles:\n", cli_esc_text(v.message));
        for (size_t i = 0; i < tree.n; i++) {
            char hex[CAIRN_OID_HEXSZ + 1];
            printf("  %10s  %.16s  %s\n", cli_fmt_bytes(a, sizeof(a), tree.entries[i].size),
                   cairn_oid_fmt(hex, &tree.entries[i].digest), cli_esc(tree.entries[i].path));
            if (tensors)
                tensors_of(repo, &tree.entries[i], 0);
        }
        if (cairn_registry_params(r, &v.id, &kv) == 0 && kv.count) {
            printf("\nparams:\n");
            for (size_t i = 0; i < kv.count; i++)
                printf("  %-24s %s\n", cli_esc(kv.items[i].name),
                       cli_esc(cairn_value_format(&kv.items[i], val, sizeof(val))));
        }
        cairn_values_release(&kv);
        if (cairn_registry_metrics(r, &v.id, &kv) == 0 && kv.count) {
            printf("\nmetrics:\n");
            for (size_t i = 0; i < kv.count; i++)
                printf("  %-24s %s\n", cli_esc(kv.items[i].name),
                       cli_esc(cairn_value_format(&kv.items[i], val, sizeof(val))));
        }
        cairn_values_release(&kv);
    }
    cairn_tree_release(&tree);
    cairn_version_release(&v);
    cairn_repo_free(repo);
    return EXIT_OK;
}
