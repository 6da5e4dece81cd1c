/*
 * Release steps (include/cairn/release.h): alias moves, gate results,
 * recorded metrics and promotion, each one registry transaction carrying
 * its audit event; plus alias policies in .cairn/config and the
 * `data: validated` gate fact.
 *
 * Promotion never runs a gate itself: it asks the registry for the latest
 * stored result of this version under this policy digest, so what was
 * checked is exactly what a reviewer can read back with `cairn gate`'s
 * stored results, and a policy edited after the gate ran (another digest)
 * does not count.
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/config.h"
#include "cairn/release.h"
#include "repo/repo_internal.h"
#include "util/hash.h"

/* Compact JSON text of `o` (consumed); NULL when out of memory. */
static char *json_text(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    return s;
}

static json_t *oid_json(const cairn_oid *id)
{
    char hex[CAIRN_OID_HEXSZ + 1];
    return json_string(cairn_oid_fmt(hex, id));
}

/* Run `fn` between begin and commit; roll back when it fails. */
static int in_transaction(struct cairn_repo *repo, int (*fn)(struct cairn_repo *, void *),
                          void *payload)
{
    struct cairn_registry *r = repo->registry;
    int error;
    if ((error = cairn_registry_begin(r)) < 0)
        return error;
    error = fn(repo, payload);
    if (error < 0)
        cairn_registry_rollback(r);
    else {
        int c = cairn_registry_commit(r);
        if (c < 0)
            error = c;
    }
    return error;
}

int cairn_repo_alias_valid(struct cairn_repo *repo, const char *model, const char *alias)
{
    cairn_oid t;
    int error;
    if ((error = cairn_name_valid(alias, "alias")) < 0)
        return error;
    if (alias[0] == 'v' && alias[1] >= '0' && alias[1] <= '9')
        return cairn_error_set(CAIRN_EINVALID, "alias '%s' looks like a version number", alias);
    error = cairn_registry_tag_get(repo->registry, model, alias, &t);
    if (error == 0)
        return cairn_error_set(CAIRN_EINVALID, "'%s' is already a tag of '%s'", alias, model);
    cairn_error_clear();
    return error == CAIRN_ENOTFOUND ? 0 : error;
}

/* ---- alias set ------------------------------------------------------ */

struct alias_job {
    const struct cairn_version *v;
    const char *alias, *reason, *action;
    json_t *extra; /* more audit details (borrowed), or NULL */
    int has_old;
    cairn_oid old;
    int moved;
};

static int alias_job_run(struct cairn_repo *repo, void *payload)
{
    struct alias_job *j = payload;
    struct cairn_registry *r = repo->registry;
    char subject[160], *details = NULL;
    json_t *d;
    int error;

    error = cairn_registry_alias_get(r, j->v->model, j->alias, &j->old);
    if (error < 0 && error != CAIRN_ENOTFOUND)
        return error;
    j->has_old = error == 0;
    cairn_error_clear();
    if ((error = cairn_registry_alias_set(r, j->v->model, j->alias, &j->v->id, repo->user,
                                          j->reason)) <= 0)
        return error;
    j->moved = 1;
    d = j->extra ? json_deep_copy(j->extra) : json_object();
    json_object_set_new(d, "alias", json_string(j->alias));
    json_object_set_new(d, "id", oid_json(&j->v->id));
    json_object_set_new(d, "version", json_integer(j->v->number));
    json_object_set_new(d, "from", j->has_old ? oid_json(&j->old) : json_null());
    json_object_set_new(d, "reason", j->reason ? json_string(j->reason) : json_null());
    if (!(details = json_text(d)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    snprintf(subject, sizeof(subject), "%s@%s", j->v->model, j->alias);
    error = cairn_registry_audit_append(r, repo->user, j->action, subject, details);
    free(details);
    return error;
}

int cairn_repo_alias_set(struct cairn_repo *repo, const struct cairn_version *v, const char *alias,
                         const char *reason)
{
    struct alias_job j;
    int error;
    memset(&j, 0, sizeof(j));
    j.v = v;
    j.alias = alias;
    j.reason = reason;
    j.action = "alias";
    if ((error = cairn_repo_alias_valid(repo, v->model, alias)) < 0)
        return error;
    if ((error = in_transaction(repo, alias_job_run, &j)) < 0)
        return error;
    return j.moved;
}

/* ---- gate results and metrics ---------------------------------------- */

struct gate_job {
    const struct cairn_version *v;
    const struct cairn_gate_result *result;
    const char *policy_name;
    int64_t id;
};

static int gate_job_run(struct cairn_repo *repo, void *payload)
{
    struct gate_job *j = payload;
    struct cairn_gate_record rec;
    char subject[160], *details = NULL;
    json_t *d;
    int error;

    memset(&rec, 0, sizeof(rec));
    rec.version = j->v->id;
    rec.policy = j->result->policy;
    rec.policy_name = (char *)j->policy_name;
    rec.passed = j->result->verdict == CAIRN_VERDICT_PASS;
    rec.actor = repo->user;
    if ((error = cairn_gate_result_to_json(&rec.result, j->result)) < 0)
        return error;
    error = cairn_registry_gate_add(repo->registry, &rec);
    free(rec.result);
    if (error < 0)
        return error;
    j->id = rec.id;
    d = json_object();
    json_object_set_new(d, "id", oid_json(&j->v->id));
    json_object_set_new(d, "policy", oid_json(&j->result->policy));
    json_object_set_new(d, "policy_name", json_string(j->policy_name));
    json_object_set_new(d, "verdict", json_string(cairn_verdict_name(j->result->verdict)));
    json_object_set_new(d, "gate", json_integer(rec.id));
    if (!(details = json_text(d)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    snprintf(subject, sizeof(subject), "%s@v%d", j->v->model, j->v->number);
    error = cairn_registry_audit_append(repo->registry, repo->user, "gate", subject, details);
    free(details);
    return error;
}

int cairn_repo_gate_record(struct cairn_repo *repo, const struct cairn_version *v,
                           const struct cairn_gate_result *result, const char *policy_name,
                           int64_t *id_out)
{
    struct gate_job j = { v, result, policy_name, 0 };
    int error = in_transaction(repo, gate_job_run, &j);
    if (!error && id_out)
        *id_out = j.id;
    return error;
}

struct metrics_job {
    const struct cairn_version *v;
    const struct cairn_values *m;
    const char *source;
};

static int metrics_job_run(struct cairn_repo *repo, void *payload)
{
    struct metrics_job *j = payload;
    char subject[160], *details = NULL, *values = NULL;
    int error;

    if ((error = cairn_registry_metrics_set(repo->registry, &j->v->id, j->m, j->source)) < 0 ||
        (error = cairn_values_to_json(&values, j->m)) < 0)
        goto done;
    {
        json_t *d = json_object();
        json_object_set_new(d, "id", oid_json(&j->v->id));
        json_object_set_new(d, "source", json_string(j->source));
        json_object_set_new(d, "metrics", json_loads(values, 0, NULL));
        if (!(details = json_text(d))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
    }
    snprintf(subject, sizeof(subject), "%s@v%d", j->v->model, j->v->number);
    error = cairn_registry_audit_append(repo->registry, repo->user, "metrics", subject, details);
done:
    free(values);
    free(details);
    return error;
}

int cairn_repo_metrics_record(struct cairn_repo *repo, const struct cairn_version *v,
                              const struct cairn_values *m, const char *source)
{
    struct metrics_job j = { v, m, source };
    if (!m->count)
        return cairn_error_set(CAIRN_EINVALID, "no metrics to record");
    return in_transaction(repo, metrics_job_run, &j);
}

/* ---- alias policies -------------------------------------------------- */

static int config_path(struct cairn_buf *out, struct cairn_repo *repo)
{
    return cairn_buf_printf(out, "%s/config", repo->cairndir);
}

int cairn_repo_alias_policy(char **out, struct cairn_repo *repo, const char *alias)
{
    struct cairn_buf path = CAIRN_BUF_INIT;
    struct cairn_config *c = NULL;
    const char *v;
    int error;

    *out = NULL;
    if ((error = config_path(&path, repo)) < 0 || (error = cairn_config_load(&c, path.ptr)) < 0)
        goto done;
    v = cairn_config_get(c, "alias", alias, "policy");
    if (!v || !*v) {
        error = cairn_error_set(CAIRN_ENOTFOUND,
                                "alias '%s' has no gate policy (give --policy FILE, or set"
                                " [alias \"%s\"] policy in .cairn/config)",
                                alias, alias);
        goto done;
    }
    if (!(*out = strdup(v)))
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
done:
    cairn_config_free(c);
    cairn_buf_release(&path);
    return error;
}

int cairn_repo_alias_policy_set(struct cairn_repo *repo, const char *alias, const char *path)
{
    struct cairn_buf cpath = CAIRN_BUF_INIT;
    struct cairn_config *c = NULL;
    char real[PATH_MAX];
    const char *stored = real;
    size_t n = strlen(repo->workdir);
    int error;

    if (!realpath(path, real)) {
        error = cairn_error_set_errno(CAIRN_EINVALID, "cannot open '%s'", path);
        goto done;
    }
    if (!strncmp(real, repo->workdir, n) && real[n] == '/')
        stored = real + n + 1;
    if ((error = config_path(&cpath, repo)) < 0 || (error = cairn_config_load(&c, cpath.ptr)) < 0 ||
        (error = cairn_config_set(c, "alias", alias, "policy", stored)) < 0 ||
        (error = cairn_config_write(c, cpath.ptr)) < 0)
        goto done;
done:
    cairn_config_free(c);
    cairn_buf_release(&cpath);
    return error;
}

int cairn_repo_policy_path(char **out, struct cairn_repo *repo, const char *stored)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error = stored[0] == '/' ? cairn_buf_puts(&b, stored)
                                 : cairn_buf_printf(&b, "%s/%s", repo->workdir, stored);
    if (!error)
        *out = cairn_buf_detach(&b, NULL);
    cairn_buf_release(&b);
    return error;
}

/* ---- promotion ------------------------------------------------------- */

void cairn_release_check_release(struct cairn_release_check *c)
{
    if (!c)
        return;
    free(c->policy_name);
    c->policy_name = NULL;
}

/* The policy to require: `given`, else the alias's configured one (usable from the cwd). */
static int check_policy_path(char **out, struct cairn_repo *repo, const char *given,
                             const char *alias)
{
    char *stored = NULL;
    int error;
    *out = NULL;
    if (given)
        return (*out = strdup(given)) ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if ((error = cairn_repo_alias_policy(&stored, repo, alias)) == CAIRN_ENOTFOUND)
        error = CAIRN_EINVALID; /* the message says how to set one */
    if (!error)
        error = cairn_repo_policy_path(out, repo, stored);
    free(stored);
    return error;
}

int cairn_repo_release_check(struct cairn_release_check *out, struct cairn_repo *repo,
                             const struct cairn_version *v, const char *alias, const char *policy,
                             const char *doing)
{
    struct cairn_policy *p = NULL;
    struct cairn_gate_record g;
    char hex[CAIRN_OID_HEXSZ + 1];
    const char *path;
    int error;

    memset(out, 0, sizeof(*out));
    memset(&g, 0, sizeof(g));
    if ((error = check_policy_path(&out->policy_name, repo, policy, alias)) < 0) {
        if (error == CAIRN_EINVALID)
            cairn_error_prefix("refusing to %s %s@v%d to '%s'", doing, v->model, v->number, alias);
        goto done;
    }
    path = out->policy_name;
    if ((error = cairn_policy_load_file(&p, path)) < 0 ||
        (error = cairn_policy_digest(&out->policy, p)) < 0)
        goto done;
    error = cairn_registry_gate_latest(repo->registry, &v->id, &out->policy, &g);
    if (error == CAIRN_ENOTFOUND) {
        error = cairn_error_set(CAIRN_ECHECK,
                                "refusing to %s %s@v%d to '%s': it has no gate result for"
                                " policy '%s' (run 'cairn gate %s@v%d --policy %s')",
                                doing, v->model, v->number, alias, path, v->model, v->number, path);
        goto done;
    }
    if (error < 0)
        goto done;
    out->have_gate = 1;
    out->gate_id = g.id;
    out->gate_passed = g.passed;
    if (!g.passed)
        error = cairn_error_set(CAIRN_ECHECK,
                                "refusing to %s %s@v%d to '%s': its latest gate for policy"
                                " '%s' (%.12s) failed",
                                doing, v->model, v->number, alias, path,
                                cairn_oid_fmt(hex, &out->policy));
done:
    cairn_gate_record_release(&g);
    cairn_policy_free(p);
    return error;
}

int cairn_release_check_forcible(int error)
{
    return error == CAIRN_ECHECK || error == CAIRN_EINVALID || error == CAIRN_ENOTFOUND;
}

static json_t *check_json(const struct cairn_release_check *c, int forced)
{
    json_t *o = json_object();
    json_object_set_new(o, "forced", json_boolean(forced));
    json_object_set_new(o, "policy",
                        cairn_oid_is_zero(&c->policy) ? json_null() : oid_json(&c->policy));
    json_object_set_new(o, "policy_name",
                        c->policy_name ? json_string(c->policy_name) : json_null());
    json_object_set_new(o, "gate", c->have_gate ? json_integer(c->gate_id) : json_null());
    return o;
}

int cairn_release_check_annotate(char **details, const struct cairn_release_check *c, int forced,
                                 const char *reason)
{
    json_t *d = *details ? json_loads(*details, 0, NULL) : json_object(), *x;
    char *text;
    if (!json_is_object(d)) {
        json_decref(d);
        return cairn_error_set(CAIRN_EINVALID, "audit details are not a JSON object");
    }
    x = check_json(c, forced);
    json_object_update(d, x);
    json_decref(x);
    if (reason)
        json_object_set_new(d, "reason", json_string(reason));
    if (!(text = json_text(d)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    free(*details);
    *details = text;
    return 0;
}

struct promote_job {
    struct cairn_promote_result *res;
    const struct cairn_version *v;
    const struct cairn_promote_opts *opts;
};

/*
 * The gate lookup runs inside the write transaction, so no gate result can
 * land between the check and the move of the alias.
 */
static int promote_job_run(struct cairn_repo *repo, void *payload)
{
    struct promote_job *j = payload;
    struct cairn_promote_result *out = j->res;
    struct cairn_release_check chk;
    struct alias_job a;
    int check, error;

    check = cairn_repo_release_check(&chk, repo, j->v, j->opts->alias, j->opts->policy, "promote");
    out->policy = chk.policy;
    out->have_gate = chk.have_gate;
    out->gate_id = chk.gate_id;
    out->gate_passed = chk.gate_passed;
    if (check < 0 && (!j->opts->force || !cairn_release_check_forcible(check))) {
        cairn_release_check_release(&chk);
        return check; /* a runtime failure is not something --force overrides */
    }
    cairn_error_clear();
    out->forced = check < 0;
    memset(&a, 0, sizeof(a));
    a.v = j->v;
    a.alias = j->opts->alias;
    a.reason = j->opts->reason;
    a.action = "promote";
    a.extra = check_json(&chk, out->forced);
    error = alias_job_run(repo, &a);
    json_decref(a.extra);
    cairn_release_check_release(&chk);
    out->moved = a.moved;
    out->has_old = a.has_old;
    out->old_version = a.old;
    return error;
}

int cairn_repo_promote(struct cairn_promote_result *out, struct cairn_repo *repo,
                       const struct cairn_version *v, const struct cairn_promote_opts *opts)
{
    struct promote_job j;
    int error;

    memset(out, 0, sizeof(*out));
    if (opts->force && (!opts->reason || !*opts->reason))
        return cairn_error_set(CAIRN_EINVALID, "--force needs --reason TEXT");
    if ((error = cairn_repo_alias_valid(repo, v->model, opts->alias)) < 0)
        return error;
    j.res = out;
    j.v = v;
    j.opts = opts;
    return in_transaction(repo, promote_job_run, &j);
}

/* ---- data: validated ------------------------------------------------- */

struct data_scan {
    struct cairn_registry *r;
    int total, passed;
    cairn_oid bad;
    int bad_state; /* 0 none, 1 never validated, 2 failed */
    int error;
};

static int data_edge(const struct cairn_lineage_edge *e, void *payload)
{
    struct data_scan *s = payload;
    int passed = 0, error;
    if (strcmp(e->kind, "data"))
        return 0;
    s->total++;
    error = cairn_registry_data_validation_latest(s->r, &e->target, &passed, NULL);
    if (error == CAIRN_ENOTFOUND) {
        cairn_error_clear();
        if (!s->bad_state) {
            s->bad_state = 1;
            s->bad = e->target;
        }
        return 0;
    }
    if (error < 0)
        return error;
    if (passed)
        s->passed++;
    else if (!s->bad_state) {
        s->bad_state = 2;
        s->bad = e->target;
    }
    return 0;
}

int cairn_repo_data_validated(struct cairn_repo *repo, const cairn_oid *v, bool *ok, char **detail)
{
    struct data_scan s;
    struct cairn_version dv, self;
    struct cairn_buf b = CAIRN_BUF_INIT;
    char hex[CAIRN_OID_HEXSZ + 1];
    int error;

    memset(&s, 0, sizeof(s));
    memset(&self, 0, sizeof(self));
    s.r = repo->registry;
    *ok = false;
    if (detail)
        *detail = NULL;
    if ((error = cairn_registry_version_get(repo->registry, v, &self)) < 0)
        goto done;
    if (!strcmp(self.kind, "dataset")) {
        struct cairn_lineage_edge e;
        memset(&e, 0, sizeof(e));
        snprintf(e.kind, sizeof(e.kind), "data");
        e.target = *v;
        error = data_edge(&e, &s);
    } else {
        error = cairn_registry_lineage(repo->registry, v, data_edge, &s);
    }
    if (error < 0)
        goto done;
    if (!s.total) {
        error = cairn_buf_puts(&b, "no dataset in the version's lineage");
    } else if (s.bad_state) {
        if (cairn_registry_version_get(repo->registry, &s.bad, &dv) == 0) {
            error = cairn_buf_printf(&b, "dataset %s@v%d %s", dv.model, dv.number,
                                     s.bad_state == 1 ? "was never validated"
                                                      : "failed its latest validation");
            cairn_version_release(&dv);
        } else {
            cairn_error_clear();
            error = cairn_buf_printf(&b, "dataset %.12s %s", cairn_oid_fmt(hex, &s.bad),
                                     s.bad_state == 1 ? "was never validated"
                                                      : "failed its latest validation");
        }
    } else {
        *ok = true;
        error = cairn_buf_printf(&b, "%d dataset%s validated", s.total, s.total == 1 ? "" : "s");
    }
    if (!error && detail)
        *detail = cairn_buf_detach(&b, NULL);
done:
    cairn_version_release(&self);
    cairn_buf_release(&b);
    return error;
}

static int ctx_data_validated(const struct cairn_gate_ctx *ctx, const char *version, bool *ok,
                              char **detail)
{
    const struct cairn_gate_repo_ctx *x = ctx->payload;
    cairn_oid id;
    int error;
    if ((error = cairn_oid_parse(&id, version)) < 0)
        return error;
    return cairn_repo_data_validated(x->repo, &id, ok, detail);
}

void cairn_repo_gate_ctx_init(struct cairn_gate_repo_ctx *out, struct cairn_repo *repo,
                              const char *model)
{
    cairn_gate_repo_ctx_init(out, repo, model);
    out->ctx.data_validated = ctx_data_validated;
}
