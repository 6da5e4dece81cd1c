/*
 * cairn rollback NAME [--alias ALIAS] [--to REF]: send an alias back to its
 * previous version (or to REF) at once. With a `cairn serve` running, the
 * daemon does it (ending a rollout under way, or switching traffic to the
 * version, kept warm when it was the previous one); with none, the alias is
 * moved in the registry. Either way the alias history and the audit log
 * record it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cairn/serve.h"
#include "cli.h"
#include "serve_api.h"
#include "util/hash.h"

const char cmd_rollback_summary[] = "move an alias back to its previous version now";
const char cmd_rollback_help[] =
    "usage: cairn rollback NAME [--alias ALIAS] [--to REF [--force --reason TEXT]]\n"
    "                      [--server URL]\n"
    "\n"
    "Move ALIAS (default production) of model NAME back to the version it\n"
    "pointed at before, or to REF. If cairn serve runs (at --server, else\n"
    "$CAIRN_SERVER, else http://127.0.0.1:8080) it switches all traffic at once,\n"
    "ending any rollout under way; otherwise the alias moves in the registry.\n"
    "\n"
    "Going back needs a token with the write role (CAIRN_TOKEN) when the daemon\n"
    "runs. --to REF moves the alias to a version of your choosing: like cairn\n"
    "promote, REF must have passed the gate of the alias's policy, and the\n"
    "daemon wants the promote role.\n"
    "\n"
    "  --force        with --to: without a passed gate (promote role); needs\n"
    "                 --reason, and the audit log records forced=true\n"
    "  --reason TEXT  why (with --force)\n"
    "\n"
    "Exit status: 0 done, 3 refused by the release check, 2 usage, 1 other.\n";

static int offline(const char *name, const char *alias, const char *to, const char *reason)
{
    struct cairn_repo *repo = NULL;
    struct cairn_registry *reg;
    struct cairn_version v;
    struct cairn_release_check chk;
    char hex[CAIRN_OID_HEXSZ + 1], *details = NULL;
    int rc, error, have = 0, forced = 0, in_tx = 0;

    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    reg = cairn_repo_registry(repo);
    if (to) {
        if ((error = cairn_repo_resolve(repo, to, &v)) < 0)
            goto done;
        have = 1;
        if (strcmp(v.model, name)) {
            error = cairn_error_set(CAIRN_EINVALID, "'%s' is not a version of '%s'", to, name);
            goto done;
        }
    } else {
        cairn_oid prev;
        if ((error = cairn_registry_serve_alias_previous(reg, name, alias, &prev)) < 0 ||
            (error = cairn_registry_version_get(reg, &prev, &v)) < 0)
            goto done;
        have = 1;
    }
    {
        char buf[256];
        snprintf(buf, sizeof(buf), "{\"to\":\"%s@v%d\",\"id\":\"%s\",\"daemon\":false}", name,
                 v.number, cairn_oid_fmt(hex, &v.id));
        if (!(details = strdup(buf))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
    }
    if ((error = cairn_registry_begin(reg)) < 0)
        goto done;
    in_tx = 1;
    /* A version of one's choosing passes the release check, in the transaction that moves it. */
    if (to) {
        error = cairn_repo_release_check(&chk, repo, &v, alias, NULL, "roll back");
        forced = error < 0;
        if (error < 0 && !(reason && cairn_release_check_forcible(error))) {
            cairn_release_check_release(&chk);
            goto done;
        }
        cairn_error_clear();
        error = cairn_release_check_annotate(&details, &chk, forced, forced ? reason : NULL);
        cairn_release_check_release(&chk);
        if (error < 0)
            goto done;
    }
    if ((error = cairn_registry_serve_alias_move(reg, name, alias, &v.id, cairn_repo_user(repo),
                                                 "rollback", "rollback", details)) < 0 ||
        (error = cairn_registry_commit(reg)) < 0)
        goto done;
    in_tx = 0;
    if (forced)
        fprintf(stderr, "cairn: warning: forced past the gate: %s\n", reason);
    printf("%s@%s -> %s@v%d (no cairn serve running; moved in the registry)\n", name, alias, name,
           v.number);
done:
    if (in_tx)
        cairn_registry_rollback(reg);
    free(details);
    if (have)
        cairn_version_release(&v);
    cairn_repo_free(repo);
    return error < 0 ? cli_fail(error) : EXIT_OK;
}

int cmd_rollback(int argc, char **argv)
{
    static const struct option opts[] = {
        { "alias", required_argument, NULL, 'a' },  { "to", required_argument, NULL, 't' },
        { "server", required_argument, NULL, 's' }, { "force", no_argument, NULL, 'f' },
        { "reason", required_argument, NULL, 'r' }, { NULL, 0, NULL, 0 }
    };
    const char *alias = "production", *to = NULL, *server = NULL, *name, *reason = NULL;
    json_t *body, *answer = NULL;
    char *s;
    int c, rc, unreachable = 0, force = 0;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            alias = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 's':
            server = optarg;
            break;
        case 'f':
            force = 1;
            break;
        case 'r':
            reason = optarg;
            break;
        default:
            return cli_usage("rollback", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage("rollback", "give one model NAME");
    name = argv[optind];
    if (force && !to)
        return cli_usage("rollback", "--force goes with --to REF (going back needs no gate)");
    if (force && (!reason || !*reason))
        return cli_usage("rollback", "--force needs --reason TEXT");
    if (reason && !force)
        return cli_usage("rollback", "--reason goes with --force");
    if (cairn_name_valid(name, "model name") < 0 || cairn_name_valid(alias, "alias") < 0)
        return cli_fail(CAIRN_EINVALID);
    body = json_object();
    json_object_set_new(body, "model", json_string(name));
    json_object_set_new(body, "alias", json_string(alias));
    if (to)
        json_object_set_new(body, "to", json_string(to));
    if (force) {
        json_object_set_new(body, "force", json_true());
        json_object_set_new(body, "reason", json_string(reason));
    }
    s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    rc = cli_api_call((void **)&answer, cli_api_server(server), "POST", "/rollback", s,
                      &unreachable);
    free(s);
    if (unreachable)
        return offline(name, alias, to, force ? reason : NULL);
    if (rc != EXIT_OK)
        return rc;
    printf("%s@%s -> %s\n", name, alias,
           json_string_value(json_object_get(json_object_get(answer, "stable"), "version")));
    json_decref(answer);
    return EXIT_OK;
}
