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
#include "util/hash.h"

static const struct cairn_gate_repo_ctx *self(const struct cairn_gate_ctx *ctx)
{
    return ctx->payload;
}

/*
 * The numeric metric `name` of version `id`; *found false when absent.
 * Only trusted metrics count (cairn_registry_metrics_trusted): a remote's
 * unsigned annotations never pass or fail a check.
 */
static int number_of(const struct cairn_gate_repo_ctx *x, const cairn_oid *id, const char *name,
                     double *value, bool *found)
{
    struct cairn_values kv = { 0 };
    const struct cairn_value *e;
    int error;

    *found = false;
    if ((error = cairn_registry_metrics_trusted(cairn_repo_registry(x->repo), id, &kv)) < 0)
        goto done;
    if (!(e = cairn_values_get(&kv, name)))
        goto done;
    if (e->type != CAIRN_VALUE_NUMBER) {
        error = cairn_error_set(CAIRN_EINVALID, "metric '%s' is not a number", name);
        goto done;
    }
    *value = e->number;
    *found = true;
done:
    cairn_values_release(&kv);
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
    out->ctx.data_validated = NULL;
}
