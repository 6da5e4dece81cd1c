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
    "usage: cairn rollback NAME [--alias ALIAS] [--to REF] [--server URL]\n"
    "\n"
    "Move ALIAS (default production) of model NAME back to the version it\n"
    "pointed at before, or to REF. If cairn serve runs (at --server, else\n"
    "$CAIRN_SERVER, else http://127.0.0.1:8080) it switches all traffic at once,\n"
    "ending any rollout under way; otherwise the alias moves in the registry.\n"
    "Needs a token with the promote role (CAIRN_TOKEN) when the daemon runs.\n";

static int offline(const char *name, const char *alias, const char *to)
{
    struct cairn_repo *repo = NULL;
    struct cairn_registry *reg;
    struct cairn_version v;
    char details[256], hex[CAIRN_OID_HEXSZ + 1];
    int rc, error, have = 0;

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
    snprintf(details, sizeof(details), "{\"to\":\"%s@v%d\",\"id\":\"%s\",\"daemon\":false}", name,
             v.number, cairn_oid_fmt(hex, &v.id));
    if ((error = cairn_registry_serve_alias_move(reg, name, alias, &v.id, cairn_repo_user(repo),
                                                 "rollback", "rollback", details)) < 0)
        goto done;
    printf("%s@%s -> %s@v%d (no cairn serve running; moved in the registry)\n", name, alias, name,
           v.number);
done:
    if (have)
        cairn_version_release(&v);
    cairn_repo_free(repo);
    return error < 0 ? cli_fail(error) : EXIT_OK;
}

int cmd_rollback(int argc, char **argv)
{
    static const struct option opts[] = { { "alias", required_argument, NULL, 'a' },
                                          { "to", required_argument, NULL, 't' },
                                          { "server", required_argument, NULL, 's' },
                                          { NULL, 0, NULL, 0 } };
    const char *alias = "production", *to = NULL, *server = NULL, *name;
    json_t *body, *answer = NULL;
    char *s;
    int c, rc, unreachable = 0;

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
        default:
            return cli_usage("rollback", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage("rollback", "give one model NAME");
    name = argv[optind];
    if (cairn_name_valid(name, "model name") < 0 || cairn_name_valid(alias, "alias") < 0)
        return cli_fail(CAIRN_EINVALID);
    body = json_object();
    json_object_set_new(body, "model", json_string(name));
    json_object_set_new(body, "alias", json_string(alias));
    if (to)
        json_object_set_new(body, "to", json_string(to));
    s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    rc = cli_api_call((void **)&answer, cli_api_server(server), "POST", "/rollback", s,
                      &unreachable);
    free(s);
    if (unreachable)
        return offline(name, alias, to);
    if (rc != EXIT_OK)
        return rc;
    printf("%s@%s -> %s\n", name, alias,
           json_string_value(json_object_get(json_object_get(answer, "stable"), "version")));
    json_decref(answer);
    return EXIT_OK;
}
