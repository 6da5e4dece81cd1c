/*
 * The registry-backed gate context (cairn_gate_repo_ctx_init in gate.h):
 * the glue between the evaluator's fact callbacks and the repository, kept
 * here so every command that evaluates a policy (gate, promote, rollout)
 * answers the same facts the same way. Only registry.h/repo.h calls; no SQL.
 */
#include <stdio.h>
#include <string.h>

#include "cairn/gate.h"
#include "cairn/registry.h"
#include "cairn/repo.h"
#include "util/buf.h"
#include "util/hash.h"

static const struct cairn_gate_repo_ctx *self(const struct cairn_gate_ctx *ctx)
{
    return ctx->payload;
}

/* The numeric metric `name` of version `id`; *found false when absent. */
static int number_of(const struct cairn_gate_repo_ctx *x, const cairn_oid *id, const char *name,
                     double *value, bool *found)
{
    struct cairn_kv_list kv = { 0 };
    const struct cairn_kv *e;
    int error;

    *found = false;
    if ((error = cairn_registry_metrics(cairn_repo_registry(x->repo), id, &kv)) < 0)
        goto done;
    if (!(e = cairn_kv_list_get(&kv, name)))
        goto done;
    if (e->type != CAIRN_VALUE_NUMBER) {
        error = cairn_error_set(CAIRN_EINVALID, "metric '%s' is not a number", name);
        goto done;
    }
    *value = e->num;
    *found = true;
done:
    cairn_kv_list_release(&kv);
    return error;
}

static int repo_metric(const struct cairn_gate_ctx *ctx, const char *version, const char *name,
                       double *value, bool *found)
{
    cairn_oid id;
    int error;
    if ((error = cairn_oid_parse(&id, version)) < 0)
        return error;
    return number_of(self(ctx), &id, name, value, found);
}

static int repo_alias_metric(const struct cairn_gate_ctx *ctx, const char *alias, const char *name,
                             double *value, bool *alias_found, bool *found)
{
    const struct cairn_gate_repo_ctx *x = self(ctx);
    cairn_oid id;
    int error;

    *alias_found = false;
    *found = false;
    error = cairn_registry_alias_get(cairn_repo_registry(x->repo), x->model, alias, &id);
    if (error == CAIRN_ENOTFOUND) {
        cairn_error_clear();
        return 0;
    }
    if (error < 0)
        return error;
    *alias_found = true;
    return number_of(x, &id, name, value, found);
}

static int repo_signature_status(const struct cairn_gate_ctx *ctx, const char *version,
                                 enum cairn_sig_status *status, char **detail)
{
    cairn_oid id;
    int error;
    if ((error = cairn_oid_parse(&id, version)) < 0)
        return error;
    return cairn_signature_status(status, detail, cairn_repo_cairndir(self(ctx)->repo), &id);
}

struct data_walk {
    struct cairn_registry *r;
    int datasets, passed;
    struct cairn_buf why;
};

static int check_dataset(const struct cairn_lineage_edge *e, void *payload)
{
    struct data_walk *w = payload;
    struct cairn_version d;
    char name[96] = "?";
    long long when;
    int ok = 0, error;

    if (strcmp(e->kind, "data"))
        return 0;
    w->datasets++;
    if (cairn_registry_version_get(w->r, &e->target, &d) == 0) {
        snprintf(name, sizeof(name), "%s@v%d", d.model, d.number);
        cairn_version_release(&d);
    }
    error = cairn_registry_data_validation_latest(w->r, &e->target, &ok, &when);
    if (error == CAIRN_ENOTFOUND) {
        cairn_error_clear();
        return cairn_buf_printf(&w->why, "%s%s never validated", w->why.len ? "; " : "", name);
    }
    if (error < 0)
        return error;
    if (ok) {
        w->passed++;
        return 0;
    }
    return cairn_buf_printf(&w->why, "%s%s failed its last validation", w->why.len ? "; " : "",
                            name);
}

/* Every dataset in the version's lineage must have a passing latest validation. */
static int repo_data_validated(const struct cairn_gate_ctx *ctx, const char *version, bool *ok,
                               char **detail)
{
    struct data_walk w = { 0 };
    cairn_oid id;
    int error;

    *ok = false;
    *detail = NULL;
    if ((error = cairn_oid_parse(&id, version)) < 0)
        return error;
    w.r = cairn_repo_registry(self(ctx)->repo);
    if ((error = cairn_registry_lineage(w.r, &id, check_dataset, &w)) < 0)
        goto done;
    if (!w.datasets)
        error = cairn_buf_puts(&w.why, "no dataset in the version's lineage (commit with --data)");
    else if (!w.why.len)
        error = cairn_buf_printf(&w.why, "%d dataset%s validated", w.datasets,
                                 w.datasets == 1 ? "" : "s");
    if (error < 0)
        goto done;
    *ok = w.datasets > 0 && w.passed == w.datasets;
    *detail = cairn_buf_detach(&w.why, NULL);
done:
    cairn_buf_release(&w.why);
    return error;
}

void cairn_gate_repo_ctx_init(struct cairn_gate_repo_ctx *out, struct cairn_repo *repo,
                              const char *model)
{
    memset(out, 0, sizeof(*out));
    out->repo = repo;
    snprintf(out->model, sizeof(out->model), "%s", model);
    out->ctx.payload = out;
    out->ctx.metric = repo_metric;
    out->ctx.alias_metric = repo_alias_metric;
    out->ctx.signature_status = repo_signature_status;
    out->ctx.data_validated = repo_data_validated;
}
