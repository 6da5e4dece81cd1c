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
#include "print.h"
#include "util/hash.h"

const char cmd_alias_summary[] = "set, list and show the history of aliases (NAME@ALIAS)";
const char cmd_alias_help[] =
    "usage: cairn alias set NAME ALIAS REF [--reason TEXT] [--json]\n"
    "       cairn alias list [NAME] [--json]\n"
    "       cairn alias history NAME ALIAS [--json]\n"
    "\n"
    "An alias is a mutable name for one version of a model (production,\n"
    "staging, champion); NAME@ALIAS resolves to it wherever a REF is taken.\n"
    "Every change is kept in the alias history with who made it, when, the\n"
    "version before and after, and the reason, and is written to the audit log.\n"
    "\n"
    "  set       point ALIAS of model NAME at REF (a version of NAME). Aliases\n"
    "            guarded by a gate should be moved with 'cairn promote'.\n"
    "  list      aliases of NAME (or of every model) and where they point\n"
    "  history   every change of NAME@ALIAS, oldest first\n"
    "\n"
    "  --reason TEXT   why (kept in the history and the audit log)\n"
    "  --json          machine-readable (see docs/cli-json.md)\n";

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

static int alias_set(struct cairn_repo *repo, char **args, int nargs, const char *reason, int json)
{
    struct cairn_version v;
    cairn_oid old;
    int error, has_old, moved;
    char sid[16];

    if (nargs != 3)
        return cli_usage("alias", "alias set takes NAME ALIAS REF");
    if (cairn_name_valid(args[0], "model name") < 0 ||
        cairn_repo_alias_valid(repo, args[0], args[1]) < 0)
        return cli_fail(CAIRN_EINVALID);
    if ((error = cairn_repo_resolve(repo, args[2], &v)) < 0)
        return cli_fail(error);
    if (strcmp(v.model, args[0])) {
        cli_error("'%s' is a version of '%s', not of '%s'", args[2], v.model, args[0]);
        cairn_version_release(&v);
        return EXIT_USAGE;
    }
    has_old = cairn_registry_alias_get(cairn_repo_registry(repo), v.model, args[1], &old) == 0;
    cairn_error_clear();
    if ((moved = cairn_repo_alias_set(repo, &v, args[1], reason)) < 0) {
        cairn_version_release(&v);
        return cli_fail(moved);
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(v.model));
        json_object_set_new(o, "alias", json_string(args[1]));
        json_object_set_new(o, "id", cli_oid_json(&v.id));
        json_object_set_new(o, "version", json_integer(v.number));
        json_object_set_new(o, "from", has_old ? cli_oid_json(&old) : json_null());
        json_object_set_new(o, "changed", json_boolean(moved));
        cli_print_json(o);
    } else if (moved) {
        printf("%s@%s -> %s@v%d (%s)\n", v.model, args[1], v.model, v.number,
               cli_short_id(sid, &v.id));
    } else {
        printf("%s@%s already points to %s@v%d\n", v.model, args[1], v.model, v.number);
    }
    cairn_version_release(&v);
    return EXIT_OK;
}

int cmd_alias(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_model_info m;
    struct list_ctx ctx = { NULL, 0 };
    const char *reason = NULL, *sub;
    char *args[8];
    int nargs = 0, json = 0, rc, error = 0;

    if (argc < 2)
        return cli_usage("alias", "give a subcommand: set, list or history");
    sub = argv[1];
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--reason") && i + 1 < argc)
            reason = argv[++i];
        else if (!strncmp(argv[i], "--reason=", 9))
            reason = argv[i] + 9;
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage("alias", "unknown option '%s'", argv[i]);
        else if (nargs < 8)
            args[nargs++] = argv[i];
        else
            return cli_usage("alias", "too many arguments");
    }
    if (strcmp(sub, "set") && strcmp(sub, "list") && strcmp(sub, "history"))
        return cli_usage("alias", "unknown subcommand '%s' (use set, list or history)", sub);
    if (reason && strcmp(sub, "set"))
        return cli_usage("alias", "--reason is only for 'alias set'");
    if (!strcmp(sub, "list") && nargs > 1)
        return cli_usage("alias", "alias list takes at most a model NAME");
    if (!strcmp(sub, "history") && nargs != 2)
        return cli_usage("alias", "alias history takes NAME ALIAS");
    if (reason && !*reason)
        return cli_usage("alias", "--reason needs a text");
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    if (!strcmp(sub, "set")) {
        rc = alias_set(repo, args, nargs, reason, json);
        goto done;
    }
    if (nargs >= 1 &&
        (error = cairn_registry_model_get(cairn_repo_registry(repo), args[0], &m)) < 0)
        goto done;
    if (json)
        ctx.arr = json_array();
    if (!strcmp(sub, "list")) {
        error = cairn_registry_alias_list(cairn_repo_registry(repo), nargs ? args[0] : NULL,
                                          list_one, &ctx);
        if (!error && !json && !ctx.n)
            printf("no aliases\n");
    } else {
        if ((error = cairn_name_valid(args[1], "alias")) < 0)
            goto done;
        error = cairn_registry_alias_history(cairn_repo_registry(repo), args[0], args[1],
                                             history_one, &ctx);
        if (!error && !ctx.n) {
            error = cairn_error_set(CAIRN_ENOTFOUND, "'%s' has no alias '%s'", args[0], args[1]);
        }
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
