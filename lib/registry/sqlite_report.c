/*
 * The delivery report of a model (include/cairn/report.h): its versions with
 * their latest gate result, the alias history, and the changes of one alias
 * replayed from the audit log — `promote`, `rollout.start` and how each
 * rollout ended (`rollout.promote`, `rollout.rollback`, `rollout.abort`,
 * `rollout.conclude`), and `rollback` (offline or through the daemon).
 * A rollout's first `rollout.breach` (a failed analysis) marks when it went
 * wrong: time to restore runs from there, not from the rollout's start.
 *
 * The rollouts table keeps only the latest rollout of a model, so the audit
 * log, which keeps every event in order, is the source of the history. The
 * metrics are computed afterwards from the structure alone
 * (cairn_report_compute), which the unit tests drive directly. Reports are
 * rare (one per `cairn report`); statements are prepared per call and the
 * whole history is held in memory (a few hundred bytes per event).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "cairn/registry.h"
#include "cairn/report.h"
#include "registry/sqlite_internal.h"

#define NS_PER_S   1000000000LL
#define NS_PER_DAY (86400LL * NS_PER_S)

void cairn_report_release(struct cairn_report *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->nversions; i++) {
        free(rep->versions[i].message);
        free(rep->versions[i].gate_policy);
    }
    for (size_t i = 0; i < rep->nmoves; i++) {
        free(rep->moves[i].author);
        free(rep->moves[i].reason);
    }
    for (size_t i = 0; i < rep->nchanges; i++)
        free(rep->changes[i].reason);
    free(rep->versions);
    free(rep->moves);
    free(rep->changes);
    free(rep->m.per_day);
    memset(rep, 0, sizeof(*rep));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double cairn_report_median(double *v, size_t n)
{
    if (n == 0)
        return -1;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int64_t day_of(int64_t ns)
{
    return ns >= 0 ? ns / NS_PER_DAY : -((-ns + NS_PER_DAY - 1) / NS_PER_DAY);
}

int64_t cairn_report_restore_from(const struct cairn_report_change *c)
{
    return c->breach_ns ? c->breach_ns : c->time_ns;
}

int cairn_report_compute(struct cairn_report *rep)
{
    struct cairn_report_metrics *m = &rep->m;
    size_t n = rep->nversions > rep->nchanges ? rep->nversions : rep->nchanges;
    double *vals = malloc((n ? n : 1) * sizeof(*vals));
    size_t k;
    int64_t from = 0, span;

    if (!vals)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    free(m->per_day);
    memset(m, 0, sizeof(*m));

    /* The window: first commit (or first change) to to_ns, whole days, at least one. */
    for (size_t i = 0; i < rep->nversions; i++)
        if (!from || rep->versions[i].time_ns < from)
            from = rep->versions[i].time_ns;
    for (size_t i = 0; i < rep->nchanges; i++)
        if (!from || rep->changes[i].time_ns < from)
            from = rep->changes[i].time_ns;
    if (!from || from > rep->to_ns)
        from = rep->to_ns;
    rep->from_ns = from;
    span = rep->to_ns - from;
    m->days = (int)((span + NS_PER_DAY - 1) / NS_PER_DAY);
    if (m->days < 1)
        m->days = 1;

    /* Lead time per version that reached the alias. */
    k = 0;
    for (size_t i = 0; i < rep->nversions; i++) {
        const struct cairn_report_version *v = &rep->versions[i];
        if (v->live_ns && v->live_ns >= v->time_ns)
            vals[k++] = (double)(v->live_ns - v->time_ns) / NS_PER_S;
    }
    m->lead_count = (int)k;
    m->lead_median_s = cairn_report_median(vals, k);

    /* Changes, failures, restores, and the same per UTC day. */
    k = 0;
    for (size_t i = 0; i < rep->nchanges; i++) {
        const struct cairn_report_change *c = &rep->changes[i];
        int64_t d = day_of(c->time_ns);
        struct cairn_report_day *day = NULL;
        m->changes++;
        m->deployments += c->deployed != 0;
        m->failed += c->failed != 0;
        if (c->failed && c->restored_ns && c->restored_ns >= cairn_report_restore_from(c))
            vals[k++] = (double)(c->restored_ns - cairn_report_restore_from(c)) / NS_PER_S;
        for (size_t j = 0; j < m->ndays; j++)
            if (m->per_day[j].day == d)
                day = &m->per_day[j];
        if (!day) {
            struct cairn_report_day *p = realloc(m->per_day, (m->ndays + 1) * sizeof(*p));
            size_t at;
            if (!p) {
                free(vals);
                return cairn_error_set(CAIRN_ENOMEM, "out of memory");
            }
            m->per_day = p;
            /* Keep days sorted, oldest first, whatever order the changes came in. */
            for (at = m->ndays; at > 0 && p[at - 1].day > d; at--)
                p[at] = p[at - 1];
            day = &p[at];
            memset(day, 0, sizeof(*day));
            day->day = d;
            m->ndays++;
        }
        day->changes++;
        day->failed += c->failed != 0;
    }
    m->restores = (int)k;
    m->restore_median_s = cairn_report_median(vals, k);
    m->deploys_per_day = (double)m->deployments / m->days;
    m->change_failure_rate = m->changes ? (double)m->failed / m->changes : -1;
    free(vals);
    return 0;
}

/* ---- loading ------------------------------------------------------------ */

static struct cairn_report_version *version_by_number(struct cairn_report *rep, int number)
{
    for (size_t i = 0; i < rep->nversions; i++)
        if (rep->versions[i].number == number)
            return &rep->versions[i];
    return NULL;
}

static int load_versions(struct cairn_report *rep, struct cairn_registry *r, int64_t model_id)
{
    sqlite3_stmt *st = NULL, *g = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st,
                                  "SELECT number, id, time_ns, message FROM versions"
                                  " WHERE model_id = ? ORDER BY number",
                                  "I", (long long)model_id)) < 0 ||
        (error = cairn__reg_prepare(r, &g,
                                    "SELECT passed, policy_name FROM gate_results"
                                    " WHERE version = ? ORDER BY id DESC LIMIT 1")) < 0)
        goto done;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_report_version *p = realloc(rep->versions, (rep->nversions + 1) * sizeof(*p)),
                                    *v;
        if (!p) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        rep->versions = p;
        v = &p[rep->nversions++];
        memset(v, 0, sizeof(*v));
        v->number = sqlite3_column_int(st, 0);
        cairn__reg_column_oid(st, 1, &v->id);
        v->time_ns = sqlite3_column_int64(st, 2);
        v->message = cairn__reg_column_strdup(st, 3);
        v->gate = -1;
        cairn__reg_rebind(g, "o", &v->id);
        if (sqlite3_step(g) == SQLITE_ROW) {
            v->gate = sqlite3_column_int(g, 0) != 0;
            v->gate_policy = cairn__reg_column_strdup(g, 1);
        }
    }
done:
    sqlite3_finalize(st);
    sqlite3_finalize(g);
    return error;
}

static int number_of(sqlite3_stmt *q, const cairn_oid *id, int have)
{
    int n = 0;
    if (!have)
        return 0;
    cairn__reg_rebind(q, "o", id);
    if (sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int(q, 0);
    return n;
}

static int load_moves(struct cairn_report *rep, struct cairn_registry *r, int64_t model_id)
{
    sqlite3_stmt *st = NULL, *q = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st,
                                  "SELECT time_ns, name, old_version, new_version, author, reason"
                                  " FROM alias_history WHERE model_id = ? ORDER BY id",
                                  "I", (long long)model_id)) < 0 ||
        (error = cairn__reg_prepare(r, &q, "SELECT number FROM versions WHERE id = ?")) < 0)
        goto done;
    while ((error = cairn__reg_next(r, st)) > 0) {
        struct cairn_report_move *p = realloc(rep->moves, (rep->nmoves + 1) * sizeof(*p)), *mv;
        cairn_oid id;
        const char *name = (const char *)sqlite3_column_text(st, 1);
        if (!p) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        rep->moves = p;
        mv = &p[rep->nmoves++];
        memset(mv, 0, sizeof(*mv));
        mv->time_ns = sqlite3_column_int64(st, 0);
        snprintf(mv->alias, sizeof(mv->alias), "%s", name ? name : "");
        mv->from = number_of(q, &id, cairn__reg_column_oid(st, 2, &id));
        mv->to = number_of(q, &id, cairn__reg_column_oid(st, 3, &id));
        mv->author = cairn__reg_column_strdup(st, 4);
        mv->reason = cairn__reg_column_strdup(st, 5);
    }
done:
    sqlite3_finalize(st);
    sqlite3_finalize(q);
    return error;
}

/* "digits@v12" -> 12; 0 if it is not that shape. */
static int label_number(const char *label)
{
    const char *at = label ? strrchr(label, '@') : NULL;
    return at && at[1] == 'v' ? atoi(at + 2) : 0;
}

static struct cairn_report_change *change_add(struct cairn_report *rep)
{
    struct cairn_report_change *p = realloc(rep->changes, (rep->nchanges + 1) * sizeof(*p));
    if (!p)
        return NULL;
    rep->changes = p;
    memset(&p[rep->nchanges], 0, sizeof(*p));
    return &p[rep->nchanges++];
}

static void went_live(struct cairn_report *rep, int number, int64_t t)
{
    struct cairn_report_version *v = version_by_number(rep, number);
    if (v && !v->live_ns)
        v->live_ns = t;
}

static char *json_strdup(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

/* Apply one audit event on model@alias to the list of changes. */
static int replay(struct cairn_report *rep, const char *action, int64_t t, json_t *d)
{
    struct cairn_report_change *c, *open = NULL;
    for (size_t i = rep->nchanges; i-- > 0;)
        if (rep->changes[i].kind == CAIRN_CHANGE_ROLLOUT && !rep->changes[i].end_ns) {
            open = &rep->changes[i];
            break;
        }
    if (!strcmp(action, "promote")) {
        if (!(c = change_add(rep)))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        c->kind = CAIRN_CHANGE_PROMOTE;
        c->time_ns = c->end_ns = t;
        c->version = (int)json_integer_value(json_object_get(d, "version"));
        snprintf(c->strategy, sizeof(c->strategy), "promote");
        c->deployed = 1;
        c->failed = json_is_true(json_object_get(d, "forced"));
        snprintf(c->outcome, sizeof(c->outcome), "%s", c->failed ? "forced" : "promoted");
        c->reason = json_strdup(d, "reason");
        went_live(rep, c->version, t);
    } else if (!strcmp(action, "rollout.start")) {
        json_t *cand = json_object_get(d, "candidate");
        if (!(c = change_add(rep)))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        c->kind = CAIRN_CHANGE_ROLLOUT;
        c->time_ns = t;
        c->version = label_number(json_string_value(json_object_get(cand, "version")));
        snprintf(c->strategy, sizeof(c->strategy), "%s",
                 json_string_value(json_object_get(d, "strategy"))
                     ? json_string_value(json_object_get(d, "strategy"))
                     : "canary");
        snprintf(c->outcome, sizeof(c->outcome), "running");
    } else if (open && !strcmp(action, "rollout.breach")) {
        /* The first failed analysis; later ones (failure_limit > 1) add nothing. */
        if (!open->breach_ns)
            open->breach_ns = t;
    } else if (open && (!strcmp(action, "rollout.promote") || !strcmp(action, "rollout.rollback") ||
                        !strcmp(action, "rollout.abort") || !strcmp(action, "rollout.conclude"))) {
        const char *what = action + strlen("rollout.");
        open->end_ns = t;
        free(open->reason);
        open->reason = json_strdup(d, "reason");
        if (!strcmp(what, "promote")) {
            snprintf(open->outcome, sizeof(open->outcome), "promoted");
            open->deployed = 1;
            went_live(rep, open->version, t);
        } else if (!strcmp(what, "conclude")) {
            snprintf(open->outcome, sizeof(open->outcome), "concluded");
        } else {
            snprintf(open->outcome, sizeof(open->outcome), "%s",
                     !strcmp(what, "abort") ? "aborted" : "rolled_back");
            open->failed = 1;
            open->restored_ns = t;
        }
    } else if (!strcmp(action, "rollback")) {
        /* The latest deployed change not undone yet is the one this rollback undoes. */
        for (size_t i = rep->nchanges; i-- > 0;) {
            c = &rep->changes[i];
            if (c->deployed && !c->restored_ns) {
                c->failed = 1;
                c->restored_ns = t;
                break;
            }
        }
    }
    return 0;
}

static int load_changes(struct cairn_report *rep, struct cairn_registry *r, const char *subject)
{
    sqlite3_stmt *st = NULL;
    int error;
    if ((error = cairn__reg_query(r, &st,
                                  "SELECT action, time_ns, details FROM audit"
                                  " WHERE subject = ? ORDER BY seq",
                                  "t", subject)) < 0)
        return error;
    while ((error = cairn__reg_next(r, st)) > 0) {
        const char *action = (const char *)sqlite3_column_text(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 2);
        json_t *d = text ? json_loads(text, 0, NULL) : NULL;
        error = action ? replay(rep, action, sqlite3_column_int64(st, 1), d) : 0;
        json_decref(d);
        if (error < 0)
            break;
    }
    sqlite3_finalize(st);
    return error;
}

int cairn_report_load(struct cairn_report *out, struct cairn_registry *r, const char *name,
                      const char *alias, int64_t now_ns)
{
    struct cairn_model_info m;
    char subject[140];
    int error;

    memset(out, 0, sizeof(*out));
    if ((error = cairn_registry_model_get(r, name, &m)) < 0)
        return error;
    snprintf(out->model, sizeof(out->model), "%s", m.name);
    snprintf(out->alias, sizeof(out->alias), "%s", alias);
    out->to_ns = now_ns;
    snprintf(subject, sizeof(subject), "%s@%s", m.name, alias);
    if ((error = cairn__reg_schema_gate(r)) < 0 || (error = load_versions(out, r, m.id)) < 0 ||
        (error = load_moves(out, r, m.id)) < 0 || (error = load_changes(out, r, subject)) < 0 ||
        (error = cairn_report_compute(out)) < 0)
        cairn_report_release(out);
    return error;
}
