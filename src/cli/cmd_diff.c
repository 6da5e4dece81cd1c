/* cairn diff REF1 REF2: what changed between two versions. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "print.h"
#include "util/hash.h"

const char cmd_diff_summary[] = "compare two versions: files, tensors, params, metrics, lineage";
const char cmd_diff_help[] =
    "usage: cairn diff REF1 REF2 [--tensors] [--json]\n"
    "\n"
    "Compare two versions: files added, removed and changed (by BLAKE3 digest),\n"
    "params and metrics that differ, and lineage (parent, datasets, code).\n"
    "\n"
    "  --tensors   for changed tensor files, list tensors added, removed and\n"
    "              changed (a tensor changed when any of its chunks did); for a\n"
    "              changed tensor of the same dtype and shape, the fraction of\n"
    "              elements that differ bitwise and, for float types, the\n"
    "              largest absolute difference (read piece by piece)\n"
    "  --json      machine-readable (see docs/cli-json.md)\n";

static void shape_str(char *buf, size_t cap, const struct cairn_tensor_entry *t)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (unsigned d = 0; d < t->rank && d < 8 && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", d ? "," : "",
                              (unsigned long long)t->shape[d]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

static json_t *shape_json(const struct cairn_tensor_entry *t)
{
    json_t *a = json_array();
    for (unsigned d = 0; d < t->rank && d < 8; d++)
        json_array_append_new(a, json_integer((json_int_t)t->shape[d]));
    return a;
}

/* 1 when a changed tensor's dtype or shape changed too. */
static int retyped(const struct cairn_tensor_change *c)
{
    return c->before && c->after &&
           (strcmp(c->before->dtype, c->after->dtype) || c->before->rank != c->after->rank ||
            memcmp(c->before->shape, c->after->shape, sizeof(c->before->shape)));
}

static int print_change(const struct cairn_tensor_change *c, void *payload)
{
    static const char *const kinds[] = { "", "added", "removed", "changed" };
    const struct cairn_tensor_entry *t = c->after ? c->after : c->before;
    const char *what = kinds[c->change >= 1 && c->change <= 3 ? c->change : 0];
    json_t *out = payload;
    char sa[160], sb[160];

    if (out) {
        json_t *o = json_object();
        json_object_set_new(o, "tensor", json_string(t->name));
        json_object_set_new(o, "change", json_string(what));
        json_object_set_new(o, "dtype", json_string(t->dtype));
        json_object_set_new(o, "shape", shape_json(t));
        if (retyped(c)) {
            json_object_set_new(o, "old_dtype", json_string(c->before->dtype));
            json_object_set_new(o, "old_shape", shape_json(c->before));
        }
        if (c->measured) {
            json_object_set_new(o, "elements", json_integer((json_int_t)c->elements));
            json_object_set_new(o, "differ", json_integer((json_int_t)c->differ));
            json_object_set_new(o, "differ_fraction",
                                json_real(c->elements ? (double)c->differ / c->elements : 0));
            json_object_set_new(o, "max_abs_diff",
                                c->has_max_abs && isfinite(c->max_abs) ? json_real(c->max_abs)
                                : c->has_max_abs                       ? json_string("inf")
                                                                       : json_null());
        }
        json_array_append_new(out, o);
        return 0;
    }
    shape_str(sa, sizeof(sa), t);
    printf("    %s tensor %s (%s %s)", what, cli_esc(t->name), cli_esc(t->dtype), sa);
    if (retyped(c)) {
        shape_str(sb, sizeof(sb), c->before);
        printf(" was %s %s", cli_esc(c->before->dtype), sb);
    }
    if (c->measured) {
        printf(": %.4g%% of %llu elements differ",
               c->elements ? 100.0 * c->differ / c->elements : 0.0,
               (unsigned long long)c->elements);
        if (c->has_max_abs)
            printf(", max |diff| %.6g", c->max_abs);
    }
    printf("\n");
    return 0;
}

/* Tensor changes of one file; a failure is reported and the diff goes on. */
static void tensor_diff(struct cairn_repo *repo, const struct cairn_tree_entry *a,
                        const struct cairn_tree_entry *b, json_t *out)
{
    int error = cairn_repo_tensor_diff(repo, a, b, 1, print_change, out);
    if (error < 0)
        fprintf(stderr, "cairn: warning: cannot compare the tensors of '%s': %s\n",
                cli_esc(b->path), cli_esc(cairn_error_last()));
}

static void kv_diff(const char *what, const struct cairn_values *a, const struct cairn_values *b,
                    json_t *out)
{
    char va[128], vb[128];
    for (size_t i = 0; i < a->count; i++) {
        const struct cairn_value *x = &a->items[i], *y = cairn_values_get(b, x->name);
        cairn_value_format(x, va, sizeof(va));
        if (y)
            cairn_value_format(y, vb, sizeof(vb));
        if (y && !strcmp(va, vb) && x->type == y->type)
            continue;
        if (out) {
            json_t *o = json_object();
            json_object_set_new(o, "old", json_string(va));
            json_object_set_new(o, "new", y ? json_string(vb) : json_null());
            if (x->type == CAIRN_VALUE_NUMBER && y && y->type == CAIRN_VALUE_NUMBER)
                json_object_set_new(o, "delta", json_real(y->number - x->number));
            json_object_set_new(out, x->name, o);
        } else if (y && x->type == CAIRN_VALUE_NUMBER && y->type == CAIRN_VALUE_NUMBER) {
            printf("  %s %-24s %s -> %s (%+.6g)\n", what, cli_esc(x->name), cli_esc(va),
                   cli_esc(vb), y->number - x->number);
        } else {
            printf("  %s %-24s %s -> %s\n", what, cli_esc(x->name), cli_esc(va),
                   y ? cli_esc(vb) : "(none)");
        }
    }
    for (size_t i = 0; i < b->count; i++) {
        if (cairn_values_get(a, b->items[i].name))
            continue;
        cairn_value_format(&b->items[i], vb, sizeof(vb));
        if (out) {
            json_t *o = json_object();
            json_object_set_new(o, "old", json_null());
            json_object_set_new(o, "new", json_string(vb));
            json_object_set_new(out, b->items[i].name, o);
        } else {
            printf("  %s %-24s (none) -> %s\n", what, cli_esc(b->items[i].name), cli_esc(vb));
        }
    }
}

int cmd_diff(int argc, char **argv)
{
    static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
                                          { "tensors", no_argument, NULL, 't' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_repo *repo = NULL;
    struct cairn_registry *r;
    struct cairn_version va, vb;
    struct cairn_tree ta = { 0 }, tb = { 0 };
    struct cairn_values pa = { 0 }, pb = { 0 }, ma = { 0 }, mb = { 0 };
    int c, json = 0, tensors = 0, error, rc;
    size_t i = 0, j = 0;
    json_t *jo = NULL, *jfiles = NULL;
    char sa[16], sb[16];

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j')
            json = 1;
        else if (c == 't')
            tensors = 1;
        else
            return cli_usage("diff", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind != argc - 2)
        return cli_usage("diff", "give two versions: REF1 REF2");
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    r = cairn_repo_registry(repo);
    memset(&va, 0, sizeof(va));
    memset(&vb, 0, sizeof(vb));
    if ((error = cairn_repo_resolve(repo, argv[optind], &va)) < 0 ||
        (error = cairn_repo_resolve(repo, argv[optind + 1], &vb)) < 0 ||
        (error = cairn_repo_read_tree(repo, &va.tree, &ta)) < 0 ||
        (error = cairn_repo_read_tree(repo, &vb.tree, &tb)) < 0)
        goto done;
    cairn_registry_params(r, &va.id, &pa);
    cairn_registry_params(r, &vb.id, &pb);
    cairn_registry_metrics(r, &va.id, &ma);
    cairn_registry_metrics(r, &vb.id, &mb);
    if (json) {
        jo = json_object();
        jfiles = json_array();
        json_object_set_new(jo, "from", cli_version_json(repo, &va, 0));
        json_object_set_new(jo, "to", cli_version_json(repo, &vb, 0));
    } else {
        printf("diff %s@v%d (%s) -> %s@v%d (%s)\n", cli_esc(va.model), va.number,
               cli_short_id(sa, &va.id), cli_esc(vb.model), vb.number, cli_short_id(sb, &vb.id));
    }
    /* Both trees are sorted by path: merge. */
    while (i < ta.n || j < tb.n) {
        int cmp = i >= ta.n ? 1 : j >= tb.n ? -1 : strcmp(ta.entries[i].path, tb.entries[j].path);
        const struct cairn_tree_entry *ea = cmp <= 0 ? &ta.entries[i] : NULL;
        const struct cairn_tree_entry *eb = cmp >= 0 ? &tb.entries[j] : NULL;
        const char *what = !ea                                       ? "added"
                           : !eb                                     ? "removed"
                           : cairn_oid_cmp(&ea->digest, &eb->digest) ? "changed"
                                                                     : NULL;
        if (what) {
            const struct cairn_tree_entry *e = eb ? eb : ea;
            if (json) {
                json_t *o = json_object();
                json_object_set_new(o, "path", json_string(e->path));
                json_object_set_new(o, "change", json_string(what));
                json_object_set_new(o, "old_size",
                                    ea ? json_integer((json_int_t)ea->size) : json_null());
                json_object_set_new(o, "new_size",
                                    eb ? json_integer((json_int_t)eb->size) : json_null());
                if (tensors && ea && eb) {
                    json_t *t = json_array();
                    tensor_diff(repo, ea, eb, t);
                    json_object_set_new(o, "tensors", t);
                }
                json_array_append_new(jfiles, o);
            } else {
                char s1[32], s2[32];
                printf("  %-8s %s", what, cli_esc(e->path));
                if (ea && eb)
                    printf(" (%s -> %s)", cli_fmt_bytes(s1, sizeof(s1), ea->size),
                           cli_fmt_bytes(s2, sizeof(s2), eb->size));
                printf("\n");
                if (tensors && ea && eb)
                    tensor_diff(repo, ea, eb, NULL);
            }
        }
        if (cmp <= 0)
            i++;
        if (cmp >= 0)
            j++;
    }
    if (json) {
        json_t *jp = json_object(), *jm = json_object(), *jl = json_object();
        json_object_set_new(jo, "files", jfiles);
        kv_diff("param", &pa, &pb, jp);
        kv_diff("metric", &ma, &mb, jm);
        json_object_set_new(jo, "params", jp);
        json_object_set_new(jo, "metrics", jm);
        json_object_set_new(
            jl, "same_parent",
            json_boolean(va.has_parent == vb.has_parent && !cairn_oid_cmp(&va.parent, &vb.parent)));
        json_object_set_new(jl, "old_code",
                            va.code_commit ? json_string(va.code_commit) : json_null());
        json_object_set_new(jl, "new_code",
                            vb.code_commit ? json_string(vb.code_commit) : json_null());
        json_object_set_new(jo, "lineage", jl);
        cli_print_json(jo);
    } else {
        kv_diff("param ", &pa, &pb, NULL);
        kv_diff("metric", &ma, &mb, NULL);
        if ((va.code_commit || vb.code_commit) &&
            (!va.code_commit || !vb.code_commit || strcmp(va.code_commit, vb.code_commit)))
            printf("  code     %s -> %s\n", va.code_commit ? cli_esc(va.code_commit) : "(none)",
                   vb.code_commit ? cli_esc(vb.code_commit) : "(none)");
    }
done:
    cairn_values_release(&pa);
    cairn_values_release(&pb);
    cairn_values_release(&ma);
    cairn_values_release(&mb);
    cairn_tree_release(&ta);
    cairn_tree_release(&tb);
    cairn_version_release(&va);
    cairn_version_release(&vb);
    cairn_repo_free(repo);
    return error < 0 ? cli_fail(error) : EXIT_OK;
}
