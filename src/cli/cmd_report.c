/*
 * cairn report [NAME] [--alias ALIAS] [--json]: the release history of a
 * model (versions with their gate results, the alias history, every change
 * of the alias and how it ended) and its delivery metrics. The library
 * (lib/registry/sqlite_report.c) reads and computes; this file only prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cairn/report.h"
#include "cli.h"
#include "opt.h"
#include "util/fs.h"
#include "util/hash.h"

const char cmd_report_summary[] = "release history and delivery metrics of a model";
const char cmd_report_help[] =
    "For model NAME (or every model), print:\n"
    "  versions   each version, when it was committed, its latest gate result\n"
    "             and when it first reached ALIAS (its lead time)\n"
    "  aliases    the history of every alias of the model\n"
    "  changes    every promote to ALIAS and every rollout on it, and how it ended\n"
    "             (promoted, forced, rolled_back, aborted, concluded, running)\n"
    "  metrics    deployment frequency (deployments per day over the window from\n"
    "             the first commit), lead time from commit to ALIAS (median),\n"
    "             change failure rate (forced promotes and rollouts rolled back,\n"
    "             aborted or undone by `cairn rollback`, over all changes), time\n"
    "             to restore (from a rollout's first breach, the analysis that\n"
    "             failed, else from the change taking traffic, to the rollback;\n"
    "             median), and the success rate of changes per day\n";

enum { REPORT_NAME, REPORT_ALIAS, REPORT_JSON };
const struct cli_opt cmd_report_opts[] = {
    [REPORT_NAME] = { CLI_OPT_ARG, "NAME", 0, NULL, "the model (default: every model)", 0 },
    [REPORT_ALIAS] = { CLI_OPT_STRING, "alias", 0, "ALIAS",
                       "the alias deliveries go to (default production)", 0 },
    [REPORT_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                      "{\"alias\", \"models\": [report...]} (docs/cli-json.md)", 0 },
    CLI_OPTS_END,
};

static const char *fmt_dur(char *buf, size_t cap, double s)
{
    if (s < 0)
        snprintf(buf, cap, "-");
    else if (s < 120)
        snprintf(buf, cap, "%.1fs", s);
    else if (s < 7200)
        snprintf(buf, cap, "%.1fm", s / 60);
    else if (s < 172800)
        snprintf(buf, cap, "%.1fh", s / 3600);
    else
        snprintf(buf, cap, "%.1fd", s / 86400);
    return buf;
}

static const char *fmt_day(char *buf, size_t cap, int64_t day)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d", &tm);
    return buf;
}

static const char *fmt_num(char *buf, size_t cap, int n)
{
    if (n > 0)
        snprintf(buf, cap, "v%d", n);
    else
        snprintf(buf, cap, "-");
    return buf;
}

static json_t *num_or_null(double v)
{
    return v < 0 ? json_null() : json_real(v);
}

static json_t *time_json(int64_t ns)
{
    char when[64];
    return ns ? json_string(cli_fmt_time(when, sizeof(when), ns)) : json_null();
}

static json_t *report_json(const struct cairn_report *r)
{
    json_t *o = json_object(), *vs = json_array(), *mv = json_array(), *ch = json_array(),
           *m = json_object(), *days = json_array();
    json_object_set_new(o, "model", json_string(r->model));
    json_object_set_new(o, "alias", json_string(r->alias));
    json_object_set_new(o, "from", time_json(r->from_ns));
    json_object_set_new(o, "to", time_json(r->to_ns));
    for (size_t i = 0; i < r->nversions; i++) {
        const struct cairn_report_version *v = &r->versions[i];
        json_t *e = json_object();
        char hex[CAIRN_OID_HEXSZ + 1];
        json_object_set_new(e, "version", json_integer(v->number));
        json_object_set_new(e, "id", json_string(cairn_oid_fmt(hex, &v->id)));
        json_object_set_new(e, "committed", time_json(v->time_ns));
        json_object_set_new(e, "time_ns", json_integer(v->time_ns));
        json_object_set_new(e, "message", json_string(v->message ? v->message : ""));
        json_object_set_new(e, "gate",
                            v->gate < 0 ? json_null()
                            : v->gate   ? json_string("pass")
                                        : json_string("fail"));
        json_object_set_new(e, "gate_policy",
                            v->gate_policy ? json_string(v->gate_policy) : json_null());
        json_object_set_new(e, "live", time_json(v->live_ns));
        json_object_set_new(e, "lead_time_s",
                            v->live_ns ? json_real((double)(v->live_ns - v->time_ns) / 1e9)
                                       : json_null());
        json_array_append_new(vs, e);
    }
    for (size_t i = 0; i < r->nmoves; i++) {
        const struct cairn_report_move *a = &r->moves[i];
        json_t *e = json_object();
        json_object_set_new(e, "time", time_json(a->time_ns));
        json_object_set_new(e, "time_ns", json_integer(a->time_ns));
        json_object_set_new(e, "alias", json_string(a->alias));
        json_object_set_new(e, "from", a->from ? json_integer(a->from) : json_null());
        json_object_set_new(e, "to", a->to ? json_integer(a->to) : json_null());
        json_object_set_new(e, "author", json_string(a->author ? a->author : ""));
        json_object_set_new(e, "reason", a->reason ? json_string(a->reason) : json_null());
        json_array_append_new(mv, e);
    }
    for (size_t i = 0; i < r->nchanges; i++) {
        const struct cairn_report_change *c = &r->changes[i];
        json_t *e = json_object();
        json_object_set_new(e, "time", time_json(c->time_ns));
        json_object_set_new(e, "time_ns", json_integer(c->time_ns));
        json_object_set_new(e, "kind",
                            json_string(c->kind == CAIRN_CHANGE_ROLLOUT ? "rollout" : "promote"));
        json_object_set_new(e, "strategy", json_string(c->strategy));
        json_object_set_new(e, "version", json_integer(c->version));
        json_object_set_new(e, "outcome", json_string(c->outcome));
        json_object_set_new(e, "deployed", json_boolean(c->deployed));
        json_object_set_new(e, "failed", json_boolean(c->failed));
        json_object_set_new(e, "duration_s",
                            c->end_ns ? json_real((double)(c->end_ns - c->time_ns) / 1e9)
                                      : json_null());
        json_object_set_new(e, "breach", time_json(c->breach_ns));
        json_object_set_new(e, "breach_ns",
                            c->breach_ns ? json_integer(c->breach_ns) : json_null());
        json_object_set_new(
            e, "restore_s",
            c->restored_ns
                ? json_real((double)(c->restored_ns - cairn_report_restore_from(c)) / 1e9)
                : json_null());
        json_object_set_new(e, "reason", c->reason ? json_string(c->reason) : json_null());
        json_array_append_new(ch, e);
    }
    json_object_set_new(m, "window_days", json_integer(r->m.days));
    json_object_set_new(m, "deployments", json_integer(r->m.deployments));
    json_object_set_new(m, "deployment_frequency_per_day", json_real(r->m.deploys_per_day));
    json_object_set_new(m, "lead_time_count", json_integer(r->m.lead_count));
    json_object_set_new(m, "lead_time_median_s", num_or_null(r->m.lead_median_s));
    json_object_set_new(m, "changes", json_integer(r->m.changes));
    json_object_set_new(m, "failed_changes", json_integer(r->m.failed));
    json_object_set_new(m, "change_failure_rate", num_or_null(r->m.change_failure_rate));
    json_object_set_new(m, "restores", json_integer(r->m.restores));
    json_object_set_new(m, "time_to_restore_median_s", num_or_null(r->m.restore_median_s));
    for (size_t i = 0; i < r->m.ndays; i++) {
        const struct cairn_report_day *d = &r->m.per_day[i];
        json_t *e = json_object();
        char day[32];
        json_object_set_new(e, "day", json_string(fmt_day(day, sizeof(day), d->day)));
        json_object_set_new(e, "changes", json_integer(d->changes));
        json_object_set_new(e, "failed", json_integer(d->failed));
        json_object_set_new(e, "success_rate",
                            json_real((double)(d->changes - d->failed) / d->changes));
        json_array_append_new(days, e);
    }
    json_object_set_new(m, "per_day", days);
    json_object_set_new(o, "versions", vs);
    json_object_set_new(o, "alias_history", mv);
    json_object_set_new(o, "changes", ch);
    json_object_set_new(o, "metrics", m);
    return o;
}

static void print_report(const struct cairn_report *r)
{
    char a[64], b[64], c[64], d[64];
    printf("report %s (deliveries to @%s)\n", r->model, r->alias);

    printf("\nversions\n  %-7s %-12s %-19s %-5s %-19s %8s  %s\n", "VERSION", "ID", "COMMITTED",
           "GATE", "LIVE", "LEAD", "MESSAGE");
    for (size_t i = 0; i < r->nversions; i++) {
        const struct cairn_report_version *v = &r->versions[i];
        char sid[16];
        snprintf(d, sizeof(d), "v%d", v->number);
        printf("  %-7s %-12s %-19s %-5s %-19s %8s  %s\n", d, cli_short_id(sid, &v->id),
               cli_fmt_time(a, sizeof(a), v->time_ns),
               v->gate < 0 ? "-"
               : v->gate   ? "pass"
                           : "fail",
               v->live_ns ? cli_fmt_time(b, sizeof(b), v->live_ns) : "-",
               fmt_dur(c, sizeof(c), v->live_ns ? (double)(v->live_ns - v->time_ns) / 1e9 : -1),
               v->message ? v->message : "");
    }

    printf("\nalias history\n  %-19s %-12s %-5s %-5s %-12s %s\n", "TIME", "ALIAS", "FROM", "TO",
           "AUTHOR", "REASON");
    for (size_t i = 0; i < r->nmoves; i++) {
        const struct cairn_report_move *m = &r->moves[i];
        printf("  %-19s %-12s %-5s %-5s %-12s %s\n", cli_fmt_time(a, sizeof(a), m->time_ns),
               m->alias, fmt_num(b, sizeof(b), m->from), fmt_num(c, sizeof(c), m->to),
               m->author ? m->author : "", m->reason ? m->reason : "");
    }

    printf("\nchanges to @%s\n  %-19s %-7s %-8s %-11s %8s %8s  %s\n", r->alias, "TIME", "VERSION",
           "HOW", "OUTCOME", "TOOK", "RESTORE", "REASON");
    for (size_t i = 0; i < r->nchanges; i++) {
        const struct cairn_report_change *ch = &r->changes[i];
        char e[64], reason[72];
        snprintf(reason, sizeof(reason), "%s", ch->reason ? ch->reason : "");
        printf("  %-19s %-7s %-8s %-11s %8s %8s  %s\n", cli_fmt_time(a, sizeof(a), ch->time_ns),
               fmt_num(b, sizeof(b), ch->version), ch->strategy, ch->outcome,
               fmt_dur(c, sizeof(c), ch->end_ns ? (double)(ch->end_ns - ch->time_ns) / 1e9 : -1),
               fmt_dur(e, sizeof(e),
                       ch->restored_ns
                           ? (double)(ch->restored_ns - cairn_report_restore_from(ch)) / 1e9
                           : -1),
               reason);
    }

    printf("\ndelivery metrics (window %d day%s)\n", r->m.days, r->m.days == 1 ? "" : "s");
    printf("  %-28s %.2f per day (%d deployment%s)\n", "deployment frequency", r->m.deploys_per_day,
           r->m.deployments, r->m.deployments == 1 ? "" : "s");
    {
        char label[96];
        snprintf(label, sizeof(label), "lead time to @%s", r->alias);
        printf("  %-28s %s median over %d version%s\n", label,
               fmt_dur(a, sizeof(a), r->m.lead_median_s), r->m.lead_count,
               r->m.lead_count == 1 ? "" : "s");
    }
    if (r->m.changes)
        printf("  %-28s %.2f (%d of %d changes)\n", "change failure rate", r->m.change_failure_rate,
               r->m.failed, r->m.changes);
    else
        printf("  %-28s - (no change)\n", "change failure rate");
    printf("  %-28s %s median over %d restore%s\n", "time to restore",
           fmt_dur(a, sizeof(a), r->m.restore_median_s), r->m.restores,
           r->m.restores == 1 ? "" : "s");
    printf("\ndeployment success rate per day\n  %-10s %7s %6s %8s\n", "DAY", "CHANGES", "FAILED",
           "SUCCESS");
    for (size_t i = 0; i < r->m.ndays; i++) {
        const struct cairn_report_day *dd = &r->m.per_day[i];
        printf("  %-10s %7d %6d %7.0f%%\n", fmt_day(a, sizeof(a), dd->day), dd->changes, dd->failed,
               100.0 * (dd->changes - dd->failed) / dd->changes);
    }
}

struct report_state {
    struct cairn_registry *reg;
    const char *alias;
    int json, count;
    json_t *arr;
    long long now;
};

static int one(struct report_state *s, const char *name)
{
    struct cairn_report r;
    int error;
    if ((error = cairn_report_load(&r, s->reg, name, s->alias, s->now)) < 0)
        return error;
    if (s->json) {
        json_array_append_new(s->arr, report_json(&r));
    } else {
        if (s->count)
            printf("\n");
        print_report(&r);
    }
    s->count++;
    cairn_report_release(&r);
    return 0;
}

static int each_model(const struct cairn_model_info *m, void *payload)
{
    if (strcmp(m->kind, "model"))
        return 0;
    return one(payload, m->name);
}

int cmd_report(int argc, char **argv)
{
    struct report_state s;
    struct cairn_repo *repo = NULL;
    struct cli_parsed args;
    const char *name;
    int rc, error;

    memset(&s, 0, sizeof(s));
    if ((rc = cli_opt_parse(&args, "report", cmd_report_opts, argc, argv)) != 0)
        return rc;
    name = args.v[REPORT_NAME].str;
    s.alias = args.v[REPORT_ALIAS].str ? args.v[REPORT_ALIAS].str : "production";
    s.json = args.v[REPORT_JSON].count > 0;
    cli_parsed_release(&args);
    if ((name && cairn_name_valid(name, "model name") < 0) ||
        cairn_name_valid(s.alias, "alias") < 0)
        return cli_fail(CAIRN_EINVALID);
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    s.reg = cairn_repo_registry(repo);
    s.now = cairn_time_now_ns();
    s.arr = json_array();
    error = name ? one(&s, name) : cairn_registry_model_list(s.reg, each_model, &s);
    if (error == 0 && s.json) {
        json_t *o = json_object();
        json_object_set_new(o, "alias", json_string(s.alias));
        json_object_set_new(o, "models", s.arr);
        s.arr = NULL;
        cli_print_json(o);
    } else if (error == 0 && !name && !s.count) {
        printf("no models\n");
    }
    json_decref(s.arr);
    cairn_repo_free(repo);
    return error < 0 ? cli_fail(error) : EXIT_OK;
}
