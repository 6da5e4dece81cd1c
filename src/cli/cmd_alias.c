/*
 * cairn alias set|list|history: mutable names for versions of a model, with
 * every change kept (who, when, from which version to which, why).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/release.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"
#include "util/hash.h"

const char cmd_alias_summary[] = "set, list and show the history of aliases (NAME@ALIAS)";
const char cmd_alias_help[] =
    "An alias is a mutable name for one version of a model (production,\n"
    "staging, champion); NAME@ALIAS resolves to it wherever a REF is taken.\n"
    "Every change is kept in the alias history with who made it, when, the\n"
    "version before and after, and the reason, and is written to the audit log.\n"
    "Aliases guarded by a gate should be moved with 'cairn promote'.\n";

struct list_ctx {
    json_t *arr;
    int n;
};

static int list_one(const struct cairn_alias_entry *e, void *payload)
{
    struct list_ctx *c = payload;
    char sid[16], when[64];
    if (c->arr) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(e->model));
        json_object_set_new(o, "alias", json_string(e->alias));
        json_object_set_new(o, "id", cli_oid_json(&e->version));
        json_object_set_new(o, "version", json_integer(e->number));
        json_object_set_new(o, "ref", json_sprintf("%s@v%d", e->model, e->number));
        json_object_set_new(o, "set_by", json_string(e->set_by));
        json_object_set_new(o, "set_ns", json_integer(e->set_ns));
        json_array_append_new(c->arr, o);
    } else {
        if (!c->n)
            printf("%-24s %-16s %-8s %-12s %-19s %s\n", "MODEL", "ALIAS", "VERSION", "ID", "SINCE",
                   "BY");
        printf("%-24s %-16s v%-7d %-12s %-19s %s\n", cli_esc(e->model), cli_esc(e->alias),
               e->number, cli_short_id(sid, &e->version),
               e->set_ns ? cli_fmt_time(when, sizeof(when), e->set_ns) : "-", cli_esc(e->set_by));
    }
    c->n++;
    return 0;
}

static int history_one(const struct cairn_alias_event *e, void *payload)
{
    struct list_ctx *c = payload;
    char when[64], from[32] = "-", to[32];
    if (e->has_old)
        snprintf(from, sizeof(from), "v%d", e->old_number);
    snprintf(to, sizeof(to), "v%d", e->new_number);
    if (c->arr) {
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer(e->seq));
        json_object_set_new(o, "time_ns", json_integer(e->time_ns));
        json_object_set_new(o, "time", json_string(cli_fmt_time(when, sizeof(when), e->time_ns)));
        json_object_set_new(o, "author", json_string(e->author));
        json_object_set_new(o, "from", e->has_old ? cli_oid_json(&e->old_version) : json_null());
        json_object_set_new(o, "from_version",
                            e->has_old ? json_integer(e->old_number) : json_null());
        json_object_set_new(o, "to", cli_oid_json(&e->new_version));
        json_object_set_new(o, "to_version", json_integer(e->new_number));
        json_object_set_new(o, "reason", e->reason ? json_string(e->reason) : json_null());
        json_array_append_new(c->arr, o);
    } else {
        if (!c->n)
            printf("%-19s %-16s %-6s %-6s %s\n", "TIME", "BY", "FROM", "TO", "REASON");
        printf("%-19s %-16s %-6s %-6s %s\n", cli_fmt_time(when, sizeof(when), e->time_ns),
               cli_esc(e->author), from, to, cli_esc(e->reason));
    }
    c->n++;
    return 0;
}

enum { SET_NAME, SET_ALIAS, SET_REF, SET_REASON, SET_JSON };
static const struct cli_opt set_opts[] = {
    [SET_NAME] = { CLI_OPT_ARG, "NAME", 0, NULL, "the model", CLI_OPT_REQUIRED },
    [SET_ALIAS] = { CLI_OPT_ARG, "ALIAS", 0, NULL, "the alias to point", CLI_OPT_REQUIRED },
    [SET_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "a version of NAME", CLI_OPT_REQUIRED },
    [SET_REASON] = { CLI_OPT_STRING, "reason", 0, "TEXT",
                     "why (kept in the history and the audit log)", 0 },
    [SET_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "machine-readable (see docs/cli-json.md)", 0 },
    CLI_OPTS_END,
};

enum { LIST_NAME, LIST_JSON };
static const struct cli_opt list_opts[] = {
    [LIST_NAME] = { CLI_OPT_ARG, "NAME", 0, NULL, "only this model's aliases", 0 },
    [LIST_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "machine-readable (see docs/cli-json.md)", 0 },
    CLI_OPTS_END,
};

enum { HISTORY_NAME, HISTORY_ALIAS, HISTORY_JSON };
static const struct cli_opt history_opts[] = {
    [HISTORY_NAME] = { CLI_OPT_ARG, "NAME", 0, NULL, "the model", CLI_OPT_REQUIRED },
    [HISTORY_ALIAS] = { CLI_OPT_ARG, "ALIAS", 0, NULL, "the alias", CLI_OPT_REQUIRED },
    [HISTORY_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "machine-readable (see docs/cli-json.md)",
                       0 },
    CLI_OPTS_END,
};

static int alias_set(int argc, char **argv);
static int alias_list(int argc, char **argv);
static int alias_history(int argc, char **argv);

const struct cli_subcommand cmd_alias_subs[] = {
    { "set", alias_set, "point ALIAS of model NAME at REF (a version of NAME)", set_opts },
    { "list", alias_list, "aliases of NAME (or of every model) and where they point", list_opts },
    { "history", alias_history, "every change of NAME@ALIAS, oldest first", history_opts },
    CLI_SUBCOMMANDS_END,
};

static int alias_set(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cli_parsed a;
    struct cairn_version v;
    const char *name, *alias, *ref, *reason;
    cairn_oid old;
    int error = 0, rc, has_old, moved, have_v = 0;
    char sid[16];

    if ((rc = cli_opt_parse(&a, "alias", set_opts, argc, argv)) != 0)
        return rc;
    name = a.v[SET_NAME].str;
    alias = a.v[SET_ALIAS].str;
    ref = a.v[SET_REF].str;
    reason = a.v[SET_REASON].str;
    if (reason && !*reason) {
        rc = cli_usage("alias", "--reason needs a text");
        goto done;
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    if (cairn_name_valid(name, "model name") < 0 || cairn_repo_alias_valid(repo, name, alias) < 0) {
        error = CAIRN_EINVALID;
        goto done;
    }
    if ((error = cairn_repo_resolve(repo, ref, &v)) < 0)
        goto done;
    have_v = 1;
    if (strcmp(v.model, name)) {
        cli_error("'%s' is a version of '%s', not of '%s'", ref, v.model, name);
        rc = EXIT_USAGE;
        goto done;
    }
    has_old = cairn_registry_alias_get(cairn_repo_registry(repo), v.model, alias, &old) == 0;
    cairn_error_clear();
    if ((moved = cairn_repo_alias_set(repo, &v, alias, reason)) < 0) {
        error = moved;
        goto done;
    }
    if (a.v[SET_JSON].count) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(v.model));
        json_object_set_new(o, "alias", json_string(alias));
        json_object_set_new(o, "id", cli_oid_json(&v.id));
        json_object_set_new(o, "version", json_integer(v.number));
        json_object_set_new(o, "from", has_old ? cli_oid_json(&old) : json_null());
        json_object_set_new(o, "changed", json_boolean(moved));
        cli_print_json(o);
    } else if (moved) {
        printf("%s@%s -> %s@v%d (%s)\n", v.model, alias, v.model, v.number,
               cli_short_id(sid, &v.id));
    } else {
        printf("%s@%s already points to %s@v%d\n", v.model, alias, v.model, v.number);
    }
done:
    if (have_v)
        cairn_version_release(&v);
    cairn_repo_free(repo);
    cli_parsed_release(&a);
    return error < 0 ? cli_fail(error) : rc;
}

/*
 * list and history: the aliases of NAME (every model's without one), or
 * every change of NAME@ALIAS, as a table or a JSON array.
 */
static int alias_show(const char *name, const char *alias, int json)
{
    struct cairn_repo *repo = NULL;
    struct cairn_model_info m;
    struct list_ctx ctx = { NULL, 0 };
    int rc, error = 0;

    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    if (name && (error = cairn_registry_model_get(cairn_repo_registry(repo), name, &m)) < 0)
        goto done;
    if (json)
        ctx.arr = json_array();
    if (!alias) {
        error = cairn_registry_alias_list(cairn_repo_registry(repo), name, list_one, &ctx);
        if (!error && !json && !ctx.n)
            printf("no aliases\n");
    } else {
        if ((error = cairn_name_valid(alias, "alias")) < 0)
            goto done;
        error =
            cairn_registry_alias_history(cairn_repo_registry(repo), name, alias, history_one, &ctx);
        if (!error && !ctx.n)
            error = cairn_error_set(CAIRN_ENOTFOUND, "'%s' has no alias '%s'", name, alias);
    }
    if (!error && json) {
        cli_print_json(ctx.arr);
        ctx.arr = NULL;
    }
done:
    json_decref(ctx.arr);
    cairn_repo_free(repo);
    return error < 0 ? cli_fail(error) : rc;
}

static int alias_list(int argc, char **argv)
{
    struct cli_parsed a;
    int rc;
    if ((rc = cli_opt_parse(&a, "alias", list_opts, argc, argv)) != 0)
        return rc;
    rc = alias_show(a.v[LIST_NAME].str, NULL, a.v[LIST_JSON].count > 0);
    cli_parsed_release(&a);
    return rc;
}

static int alias_history(int argc, char **argv)
{
    struct cli_parsed a;
    int rc;
    if ((rc = cli_opt_parse(&a, "alias", history_opts, argc, argv)) != 0)
        return rc;
    rc = alias_show(a.v[HISTORY_NAME].str, a.v[HISTORY_ALIAS].str, a.v[HISTORY_JSON].count > 0);
    cli_parsed_release(&a);
    return rc;
}

int cmd_alias(int argc, char **argv)
{
    return cli_subcommand_run("alias", cmd_alias_subs, argc, argv);
}
