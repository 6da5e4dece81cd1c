/*
 * Derived versions: what `cairn quantize` and `cairn prune` share. The
 * source version is checked out into a private scratch directory, every
 * `*.safetensors` and `*.gguf` file is run through cairn_transform_file() into a second
 * directory, the other files are moved across unchanged, and the second
 * directory is committed with `from_dir`, parent = source and a "derived"
 * lineage edge. The contract is in include/cairn/model.h.
 *
 * Layout of the scratch directory (one mkdtemp, removed on every path):
 *   src/          the checkout of the source
 *   out/          the new version's files
 *   params.json   the params of the new version
 *   metrics.json  {"size_bytes": N}
 *
 * Cost: one verified checkout of the source plus one streaming pass per
 * tensor file (memory bounded by the largest tensor, see transform.c); other
 * files are renamed, not copied, since both directories are on one file
 * system. The stages of the repository are not touched.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn/model.h"
#include "cairn/registry.h"
#include "cairn/repo.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/values.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcmp(s + n - m, suffix);
}

static int is_tensor_file(const char *path)
{
    return ends_with(path, ".safetensors") || ends_with(path, ".gguf");
}

/* "quantize int8", "prune magnitude-structured 0.5": the lineage edge's detail. */
static int detail_of(struct cairn_buf *out, const struct cairn_transform_opts *o)
{
    static const char *const to[] = { "", "fp16", "bf16", "int8" };
    if (o->op == CAIRN_TRANSFORM_QUANTIZE)
        return cairn_buf_printf(out, "quantize %s", to[o->target]);
    return cairn_buf_printf(out, "prune magnitude-%s %g",
                            o->structured ? "structured" : "unstructured", o->sparsity);
}

static int check_opts(const struct cairn_derive_opts *opts)
{
    const struct cairn_transform_opts *o = &opts->transform;
    if (!opts->ref || !*opts->ref)
        return cairn_error_set(CAIRN_EINVALID, "no version to derive from");
    if (o->op == CAIRN_TRANSFORM_QUANTIZE) {
        if (o->target < CAIRN_QUANT_FP16 || o->target > CAIRN_QUANT_INT8)
            return cairn_error_set(CAIRN_EINVALID,
                                   "unknown quantisation target (use fp16, bf16 or int8)");
        return 0;
    }
    if (o->op == CAIRN_TRANSFORM_PRUNE) {
        /* 0 would change nothing and 1 would zero every weight: neither is a model. */
        if (!(o->sparsity > 0.0 && o->sparsity < 1.0))
            return cairn_error_set(CAIRN_EINVALID,
                                   "sparsity %g is outside (0, 1): give a share strictly "
                                   "between 0 and 1",
                                   o->sparsity);
        return 0;
    }
    return cairn_error_set(CAIRN_EINVALID, "unknown model transform %d", o->op);
}

static int write_json(const char *path, json_t *obj, const char *what)
{
    char *text = obj ? json_dumps(obj, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    int error;
    if (!text)
        return cairn_error_set(CAIRN_ENOMEM, "cannot encode the %s of the derived version", what);
    error = cairn_fs_write_atomic(path, text, strlen(text), 0644);
    free(text);
    return error;
}

/*
 * params.json: the source's params without its derived.* keys, then the
 * method. Numbers are written at 17 digits so they read back exactly.
 */
static int write_params(struct cairn_repo *repo, const char *path, const struct cairn_version *src,
                        const struct cairn_transform_opts *o)
{
    static const char *const to[] = { "", "fp16", "bf16", "int8" };
    struct cairn_values params = { 0 };
    struct cairn_buf from = CAIRN_BUF_INIT;
    json_t *obj = json_object();
    int error, bad = !obj;

    if ((error = cairn_registry_params(cairn_repo_registry(repo), &src->id, &params)) < 0)
        goto done;
    if ((error = cairn_buf_printf(&from, "%s@v%d", src->model, src->number)) < 0)
        goto done;
    for (size_t i = 0; i < params.count && !bad; i++)
        if (strncmp(params.items[i].name, "derived.", 8))
            bad |= json_object_set_new(obj, params.items[i].name,
                                       cairn__value_json(&params.items[i])) < 0;
    if (o->op == CAIRN_TRANSFORM_QUANTIZE) {
        bad |= json_object_set_new(obj, "derived.method", json_string("quantize")) < 0;
        bad |= json_object_set_new(obj, "derived.to", json_string(to[o->target])) < 0;
    } else {
        bad |= json_object_set_new(obj, "derived.method", json_string("prune")) < 0;
        bad |= json_object_set_new(obj, "derived.sparsity", json_real(o->sparsity)) < 0;
        bad |= json_object_set_new(obj, "derived.structured", json_boolean(o->structured)) < 0;
    }
    bad |= json_object_set_new(obj, "derived.from", json_string(from.ptr)) < 0;
    error = bad ? cairn_error_set(CAIRN_ENOMEM, "cannot build the params of the derived version")
                : write_json(path, obj, "params");
done:
    json_decref(obj);
    cairn_buf_release(&from);
    cairn_values_release(&params);
    return error;
}

static int write_metrics(const char *path, uint64_t size)
{
    json_t *obj = json_object();
    int error;
    if (!obj || json_object_set_new(obj, "size_bytes", json_integer((json_int_t)size)) < 0)
        error = cairn_error_set(CAIRN_ENOMEM, "cannot build the metrics of the derived version");
    else
        error = write_json(path, obj, "metrics");
    json_decref(obj);
    return error;
}

/* Collect the hex ids of the source's datasets (its "data" lineage edges). */
struct data_refs {
    char **ids;
    size_t n, cap;
};

static int data_edge_cb(const struct cairn_lineage_edge *e, void *payload)
{
    struct data_refs *d = payload;
    char hex[CAIRN_OID_HEXSZ + 1];
    if (strcmp(e->kind, "data"))
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        char **p = realloc(d->ids, cap * sizeof(*p));
        if (!p)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        d->ids = p;
        d->cap = cap;
    }
    if (!(d->ids[d->n] = strdup(cairn_oid_fmt(hex, &e->target))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    d->n++;
    return 0;
}

static void data_refs_release(struct data_refs *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->ids[i]);
    free(d->ids);
    memset(d, 0, sizeof(*d));
}

/* The parent directory of `path` (a file path) must exist before writing into it. */
static int mkdir_parent(const char *path)
{
    char *copy = strdup(path), *slash;
    int error = 0;
    if (!copy)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if ((slash = strrchr(copy, '/')) != NULL) {
        *slash = '\0';
        error = cairn_fs_mkdir_p(copy);
    }
    free(copy);
    return error;
}

/* Transform or carry over every file of the tree from src/ into out/. */
static int transform_tree(struct cairn_derive_result *out, const struct cairn_tree *tree,
                          const char *srcdir, const char *outdir,
                          const struct cairn_transform_opts *o)
{
    struct cairn_buf a = CAIRN_BUF_INIT, b = CAIRN_BUF_INIT;
    int error = 0;

    if (!(out->files = calloc(tree->n ? tree->n : 1, sizeof(*out->files))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    for (size_t i = 0; i < tree->n && !error; i++) {
        const char *path = tree->entries[i].path;
        struct stat st;
        cairn_buf_clear(&a);
        cairn_buf_clear(&b);
        if ((error = cairn_fs_join(&a, srcdir, path)) < 0 ||
            (error = cairn_fs_join(&b, outdir, path)) < 0 || (error = mkdir_parent(b.ptr)) < 0)
            break;
        if (is_tensor_file(path)) {
            struct cairn_derive_file *f = &out->files[out->nfiles];
            if (!(f->path = strdup(path))) {
                error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
                break;
            }
            out->nfiles++;
            if ((error = cairn_transform_file(&f->report, a.ptr, b.ptr, o)) < 0) {
                /*
                 * The file is stored data, not the user's argument: a damaged
                 * one is a runtime error, named by version and path, not by
                 * the scratch copy.
                 */
                if (cairn_error_replace(a.ptr, path))
                    cairn_error_prefix("version %s@v%d", out->source.model, out->source.number);
                else
                    cairn_error_prefix("version %s@v%d, '%s'", out->source.model,
                                       out->source.number, path);
                if (error == CAIRN_EINVALID) {
                    char msg[1024];
                    snprintf(msg, sizeof(msg), "%s", cairn_error_last());
                    error = cairn_error_set(CAIRN_ERROR, "%s", msg);
                }
                break;
            }
            if (f->report.max_abs_error > out->max_abs_error)
                out->max_abs_error = f->report.max_abs_error;
        } else {
            if (rename(a.ptr, b.ptr) < 0) {
                error =
                    cairn_error_set_errno(CAIRN_ERROR, "cannot move '%s' to '%s'", a.ptr, b.ptr);
                break;
            }
            out->copied++;
        }
        if (stat(b.ptr, &st) < 0) {
            error = cairn_error_set_errno(CAIRN_ERROR, "cannot stat '%s'", b.ptr);
            break;
        }
        out->raw_after += (uint64_t)st.st_size;
    }
    cairn_buf_release(&a);
    cairn_buf_release(&b);
    return error;
}

int cairn_model_derive(struct cairn_derive_result *out, struct cairn_repo *repo,
                       const struct cairn_derive_opts *opts)
{
    const char *tmp = opts->tmpdir;
    struct cairn_buf scratch = CAIRN_BUF_INIT, srcdir = CAIRN_BUF_INIT, outdir = CAIRN_BUF_INIT;
    struct cairn_buf params = CAIRN_BUF_INIT, metrics = CAIRN_BUF_INIT, msg = CAIRN_BUF_INIT;
    struct cairn_buf detail = CAIRN_BUF_INIT;
    struct cairn_checkout_opts co;
    struct cairn_commit_opts cm;
    struct cairn_tree tree = { 0 };
    struct data_refs data = { 0 };
    char hex[CAIRN_OID_HEXSZ + 1];
    size_t ntensor = 0;
    int error, have_scratch = 0;

    memset(out, 0, sizeof(*out));
    memset(&co, 0, sizeof(co));
    memset(&cm, 0, sizeof(cm));
    if ((error = check_opts(opts)) < 0)
        goto done;
    if ((error = cairn_repo_resolve(repo, opts->ref, &out->source)) < 0)
        goto done;
    if ((error = cairn_repo_read_tree(repo, &out->source.tree, &tree)) < 0)
        goto done;
    for (size_t i = 0; i < tree.n; i++) {
        ntensor += is_tensor_file(tree.entries[i].path);
        out->raw_before += tree.entries[i].size;
    }
    if (!ntensor) {
        error = cairn_error_set(
            CAIRN_EINVALID, "version %s@v%d has no *.safetensors or *.gguf file to %s",
            out->source.model, out->source.number,
            opts->transform.op == CAIRN_TRANSFORM_QUANTIZE ? "quantize" : "prune");
        goto done;
    }
    if ((error = detail_of(&detail, &opts->transform)) < 0)
        goto done;

    if ((error = cairn_fs_mkdtemp(&scratch, tmp, "cairn-derive")) < 0)
        goto done;
    have_scratch = 1;
    if ((error = cairn_fs_join(&srcdir, scratch.ptr, "src")) < 0 ||
        (error = cairn_fs_join(&outdir, scratch.ptr, "out")) < 0 ||
        (error = cairn_fs_join(&params, scratch.ptr, "params.json")) < 0 ||
        (error = cairn_fs_join(&metrics, scratch.ptr, "metrics.json")) < 0 ||
        (error = cairn_fs_mkdir_p(outdir.ptr)) < 0)
        goto done;

    co.progress = opts->progress;
    co.progress_payload = opts->progress_payload;
    if ((error = cairn_repo_checkout(repo, cairn_oid_fmt(hex, &out->source.id), srcdir.ptr, &co,
                                     NULL)) < 0)
        goto done;
    if ((error = transform_tree(out, &tree, srcdir.ptr, outdir.ptr, &opts->transform)) < 0)
        goto done;
    if ((error = write_params(repo, params.ptr, &out->source, &opts->transform)) < 0 ||
        (error = write_metrics(metrics.ptr, out->raw_after)) < 0)
        goto done;
    if ((error = cairn_registry_lineage(cairn_repo_registry(repo), &out->source.id, data_edge_cb,
                                        &data)) < 0)
        goto done;

    if (opts->message)
        error = cairn_buf_puts(&msg, opts->message);
    else if (opts->transform.op == CAIRN_TRANSFORM_QUANTIZE)
        error = cairn_buf_printf(&msg, "%s %s@v%d to %s", "quantize", out->source.model,
                                 out->source.number, detail.ptr + strlen("quantize "));
    else
        error = cairn_buf_printf(&msg, "prune %s@v%d to sparsity %g%s", out->source.model,
                                 out->source.number, opts->transform.sparsity,
                                 opts->transform.structured ? " (whole rows)" : "");
    if (error < 0)
        goto done;

    cm.model = out->source.model;
    cm.kind = out->source.kind;
    cm.message = msg.ptr;
    cm.params_file = params.ptr;
    cm.metrics_file = metrics.ptr;
    cm.data_refs = (const char *const *)data.ids;
    cm.ndata = data.n;
    cm.parent_ref = hex;
    cm.from_dir = outdir.ptr;
    cm.derived_from_ref = hex;
    cm.derived_detail = detail.ptr;
    if ((error = cairn_repo_commit(repo, &cm, &out->version)) < 0)
        goto done;
    out->detail = cairn_buf_detach(&detail, NULL);

done:
    if (have_scratch) {
        /* Keep the first error; a failed cleanup only leaves a directory in $TMPDIR. */
        char *saved = error < 0 ? strdup(cairn_error_last()) : NULL;
        cairn_fs_rm_rf(scratch.ptr);
        if (error < 0)
            cairn_error_set(error, "%s", saved ? saved : "cannot derive a version");
        free(saved);
    }
    data_refs_release(&data);
    cairn_tree_release(&tree);
    cairn_buf_release(&scratch);
    cairn_buf_release(&srcdir);
    cairn_buf_release(&outdir);
    cairn_buf_release(&params);
    cairn_buf_release(&metrics);
    cairn_buf_release(&msg);
    cairn_buf_release(&detail);
    return error;
}

void cairn_derive_result_release(struct cairn_derive_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nfiles; i++) {
        free(r->files[i].path);
        cairn_transform_report_release(&r->files[i].report);
    }
    free(r->files);
    free(r->detail);
    cairn_version_release(&r->source);
    cairn_version_release(&r->version);
    memset(r, 0, sizeof(*r));
}

static json_t *ref_json(const struct cairn_version *v)
{
    char hex[CAIRN_OID_HEXSZ + 1];
    json_t *o = json_object();
    if (o && (json_object_set_new(o, "id", json_string(cairn_oid_fmt(hex, &v->id))) < 0 ||
              json_object_set_new(o, "ref", json_sprintf("%s@v%d", v->model, v->number)) < 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int cairn_derive_result_json(struct cairn_buf *out, const struct cairn_derive_result *r)
{
    struct cairn_buf rep = CAIRN_BUF_INIT;
    char hex[CAIRN_OID_HEXSZ + 1], *text = NULL;
    json_t *root = json_object(), *files = json_array();
    int bad = !root || !files, error = 0;

    bad |= json_object_set_new(root, "source", ref_json(&r->source)) < 0;
    bad |= json_object_set_new(root, "id", json_string(cairn_oid_fmt(hex, &r->version.id))) < 0;
    bad |= json_object_set_new(root, "ref",
                               json_sprintf("%s@v%d", r->version.model, r->version.number)) < 0;
    bad |= json_object_set_new(root, "detail", json_string(r->detail ? r->detail : "")) < 0;
    bad |=
        json_object_set_new(root, "raw_bytes_before", json_integer((json_int_t)r->raw_before)) < 0;
    bad |= json_object_set_new(root, "raw_bytes_after", json_integer((json_int_t)r->raw_after)) < 0;
    bad |= json_object_set_new(
               root, "size_ratio",
               json_real(r->raw_before ? (double)r->raw_after / (double)r->raw_before : 1.0)) < 0;
    bad |= json_object_set_new(root, "stored_bytes_new",
                               json_integer((json_int_t)r->version.stored_new)) < 0;
    bad |= json_object_set_new(root, "copied_files", json_integer((json_int_t)r->copied)) < 0;
    bad |= json_object_set_new(root, "max_abs_error", json_real(r->max_abs_error)) < 0;
    for (size_t i = 0; i < r->nfiles && !bad; i++) {
        json_t *f = json_object(), *report;
        json_error_t jerr;
        cairn_buf_clear(&rep);
        if ((error = cairn_transform_report_json(&rep, &r->files[i].report)) < 0) {
            json_decref(f);
            goto done;
        }
        report = json_loads(rep.ptr, 0, &jerr);
        bad |= !f || !report || json_array_append_new(files, f) < 0;
        if (bad) {
            json_decref(f);
            json_decref(report);
            break;
        }
        bad |= json_object_set_new(f, "path", json_string(r->files[i].path)) < 0;
        bad |= json_object_set_new(f, "report", report) < 0;
    }
    bad |= json_object_set(root, "files", files) < 0;
    if (!bad && !(text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
        bad = 1;
    if (bad)
        error = cairn_error_set(CAIRN_ENOMEM, "cannot encode the derive result as JSON");
    else
        error = cairn_buf_puts(out, text);
done:
    free(text);
    cairn_buf_release(&rep);
    json_decref(files);
    json_decref(root);
    return error;
}
