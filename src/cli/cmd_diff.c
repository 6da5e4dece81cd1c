/* cairn diff REF1 REF2: what changed between two versions. */
#include <getopt.h>
#include <jansson.h>
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
    "              changed (a tensor changed when any of its chunks did)\n"
    "  --json      machine-readable (see docs/cli-json.md)\n";

struct tlist {
    struct cairn_tensor_entry *t;
    cairn_oid *digest; /* BLAKE3 over the tensor's chunk ids: equal iff unchanged */
    char **names;
    size_t n, cap;
};

static int collect_tensor(const struct cairn_tensor_entry *t, void *payload)
{
    struct tlist *l = payload;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        void *a = realloc(l->t, cap * sizeof(*l->t)), *b, *c;
        if (!a)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        l->t = a;
        if (!(b = realloc(l->digest, cap * sizeof(*l->digest))))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        l->digest = b;
        if (!(c = realloc(l->names, cap * sizeof(*l->names))))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        l->names = c;
        l->cap = cap;
    }
    l->t[l->n] = *t;
    l->names[l->n] = strdup(t->name);
    l->t[l->n].name = l->names[l->n];
    l->t[l->n].chunk_ids = NULL;
    cairn_hash(&l->digest[l->n], t->chunk_ids, t->chunks * sizeof(cairn_oid));
    l->n++;
    return 0;
}

static void tlist_release(struct tlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->t);
    free(l->digest);
}

static const struct cairn_tensor_entry *tfind(const struct tlist *l, const char *name, size_t *idx)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->t[i].name, name)) {
            *idx = i;
            return &l->t[i];
        }
    return NULL;
}

static void tensor_diff(struct cairn_repo *repo, const struct cairn_tree_entry *a,
                        const struct cairn_tree_entry *b, json_t *out)
{
    struct tlist la = { 0 }, lb = { 0 };
    size_t j;
    cairn_repo_tensors(repo, a, collect_tensor, &la);
    cairn_repo_tensors(repo, b, collect_tensor, &lb);
    for (size_t i = 0; i < la.n; i++) {
        const struct cairn_tensor_entry *t = tfind(&lb, la.t[i].name, &j);
        const char *what =
            !t ? "removed"
            : (strcmp(t->dtype, la.t[i].dtype) || cairn_oid_cmp(&la.digest[i], &lb.digest[j]))
                ? "changed"
                : NULL;
        if (!what)
            continue;
        if (out) {
            json_t *o = json_object();
            json_object_set_new(o, "tensor", json_string(la.t[i].name));
            json_object_set_new(o, "change", json_string(what));
            json_object_set_new(o, "dtype", json_string(t ? t->dtype : la.t[i].dtype));
            json_array_append_new(out, o);
        } else {
            printf("    %s tensor %s (%s)\n", what, la.t[i].name, t ? t->dtype : la.t[i].dtype);
        }
    }
    for (size_t i = 0; i < lb.n; i++) {
        if (tfind(&la, lb.t[i].name, &j))
            continue;
        if (out) {
            json_t *o = json_object();
            json_object_set_new(o, "tensor", json_string(lb.t[i].name));
            json_object_set_new(o, "change", json_string("added"));
            json_object_set_new(o, "dtype", json_string(lb.t[i].dtype));
            json_array_append_new(out, o);
        } else {
            printf("    added tensor %s (%s)\n", lb.t[i].name, lb.t[i].dtype);
        }
    }
    tlist_release(&la);
    tlist_release(&lb);
}

static void kv_diff(const char *what, const struct cairn_kv_list *a, const struct cairn_kv_list *b,
                    json_t *out)
{
    char va[128], vb[128];
    for (size_t i = 0; i < a->n; i++) {
        const struct cairn_kv *x = &a->items[i], *y = cairn_kv_list_get(b, x->key);
        cairn_kv_format(x, va, sizeof(va));
        if (y)
            cairn_kv_format(y, vb, sizeof(vb));
        if (y && !strcmp(va, vb) && x->type == y->type)
            continue;
        if (out) {
            json_t *o = json_object();
            json_object_set_new(o, "old", json_string(va));
            json_object_set_new(o, "new", y ? json_string(vb) : json_null());
            if (x->type == CAIRN_VALUE_NUMBER && y && y->type == CAIRN_VALUE_NUMBER)
                json_object_set_new(o, "delta", json_real(y->num - x->num));
            json_object_set_new(out, x->key, o);
        } else if (y && x->type == CAIRN_VALUE_NUMBER && y->type == CAIRN_VALUE_NUMBER) {
            printf("  %s %-24s %s -> %s (%+.6g)\n", what, x->key, va, vb, y->num - x->num);
        } else {
            printf("  %s %-24s %s -> %s\n", what, x->key, va, y ? vb : "(none)");
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        if (cairn_kv_list_get(a, b->items[i].key))
            continue;
        cairn_kv_format(&b->items[i], vb, sizeof(vb));
        if (out) {
            json_t *o = json_object();
            json_object_set_new(o, "old", json_null());
            json_object_set_new(o, "new", json_string(vb));
            json_object_set_new(out, b->items[i].key, o);
        } else {
            printf("  %s %-24s (none) -> %s\n", what, b->items[i].key, vb);
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
    struct cairn_kv_list pa = { 0 }, pb = { 0 }, ma = { 0 }, mb = { 0 };
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
        printf("diff %s@v%d (%s) -> %s@v%d (%s)\n", va.model, va.number, cli_short_id(sa, &va.id),
               vb.model, vb.number, cli_short_id(sb, &vb.id));
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
                printf("  %-8s %s", what, e->path);
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
            printf("  code     %s -> %s\n", va.code_commit ? va.code_commit : "(none)",
                   vb.code_commit ? vb.code_commit : "(none)");
    }
done:
    cairn_kv_list_release(&pa);
    cairn_kv_list_release(&pb);
    cairn_kv_list_release(&ma);
    cairn_kv_list_release(&mb);
    cairn_tree_release(&ta);
    cairn_tree_release(&tb);
    cairn_version_release(&va);
    cairn_version_release(&vb);
    cairn_repo_free(repo);
    return error < 0 ? cli_fail(error) : EXIT_OK;
}
