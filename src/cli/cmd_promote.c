/*
 * cairn promote REF --to ALIAS [--policy FILE] [--force --reason TEXT]: move
 * an alias to a version only if the version passed the alias's gate.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cairn/release.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"
#include "util/hash.h"

const char cmd_promote_summary[] = "move an alias to a version that passed its gate";
const char cmd_promote_help[] =
    "Point ALIAS of REF's model at REF, if the latest stored gate result for\n"
    "REF under the alias's policy passed (run 'cairn gate REF --policy FILE'\n"
    "first). The alias's policy is set in .cairn/config:\n"
    "\n"
    "    [alias \"production\"]\n"
    "        policy = gates/production.yaml\n"
    "\n"
    "(relative to the repository root). The policy is matched by digest, so a\n"
    "gate run against an older text of the file does not count. The change is\n"
    "kept in the alias history and the audit log.\n"
    "\n"
    "--policy FILE is stored as the alias's policy when the promotion\n"
    "succeeds. --force needs --reason, and the audit log records forced=true\n"
    "with the reason.\n"
    "\n"
    "Exit status: 0 promoted, 3 refused (no passed gate), 2 usage (no policy\n"
    "for the alias, bad names), 1 runtime errors.\n";

enum { PROMOTE_REF, PROMOTE_TO, PROMOTE_POLICY, PROMOTE_FORCE, PROMOTE_REASON, PROMOTE_JSON };
const struct cli_opt cmd_promote_opts[] = {
    [PROMOTE_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "the version to promote", CLI_OPT_REQUIRED },
    [PROMOTE_TO] = { CLI_OPT_STRING, "to", 0, "ALIAS", "the alias to move (required)",
                     CLI_OPT_REQUIRED },
    [PROMOTE_POLICY] = { CLI_OPT_STRING, "policy", 0, "FILE", "require this policy", 0 },
    [PROMOTE_FORCE] = { CLI_OPT_FLAG, "force", 0, NULL,
                        "promote without a passed gate (needs --reason)", 0 },
    [PROMOTE_REASON] = { CLI_OPT_STRING, "reason", 0, "TEXT",
                         "why (kept in the alias history and the audit log)", 0 },
    [PROMOTE_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                       "print the outcome as JSON (see docs/cli-json.md)", 0 },
    CLI_OPTS_END,
};

int cmd_promote(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_promote_opts po;
    struct cairn_promote_result res;
    struct cairn_version v;
    const char *ref = NULL;
    struct cli_parsed args;
    char sid[16];
    int json, error = 0, rc = EXIT_OK, have_v = 0;

    memset(&po, 0, sizeof(po));
    if ((rc = cli_opt_parse(&args, "promote", cmd_promote_opts, argc, argv)) != 0)
        return rc;
    ref = args.v[PROMOTE_REF].str;
    po.alias = args.v[PROMOTE_TO].str;
    po.policy = args.v[PROMOTE_POLICY].str;
    po.force = args.v[PROMOTE_FORCE].count > 0;
    po.reason = args.v[PROMOTE_REASON].str;
    json = args.v[PROMOTE_JSON].count > 0;
    if (po.force && (!po.reason || !*po.reason))
        rc = cli_usage("promote", "--force needs --reason TEXT");
    else if (po.reason && !*po.reason)
        rc = cli_usage("promote", "--reason needs a text");
    if (rc)
        goto done;
    if (cairn_name_valid(po.alias, "alias") < 0) {
        rc = cli_fail(CAIRN_EINVALID);
        goto done;
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    if ((error = cairn_repo_resolve(repo, ref, &v)) < 0)
        goto done;
    have_v = 1;
    if ((error = cairn_repo_promote(&res, repo, &v, &po)) < 0)
        goto done;
    if (po.policy && (error = cairn_repo_alias_policy_set(repo, po.alias, po.policy)) < 0) {
        cairn_error_prefix("promoted, but could not store the alias's policy");
        goto done;
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(v.model));
        json_object_set_new(o, "alias", json_string(po.alias));
        json_object_set_new(o, "id", cli_oid_json(&v.id));
        json_object_set_new(o, "version", json_integer(v.number));
        json_object_set_new(o, "from", res.has_old ? cli_oid_json(&res.old_version) : json_null());
        json_object_set_new(o, "changed", json_boolean(res.moved));
        json_object_set_new(o, "forced", json_boolean(res.forced));
        json_object_set_new(o, "gate", res.have_gate ? json_integer(res.gate_id) : json_null());
        json_object_set_new(o, "reason", po.reason ? json_string(po.reason) : json_null());
        cli_print_json(o);
    } else {
        if (res.forced)
            fprintf(stderr, "cairn: warning: forced past the gate: %s\n", po.reason);
        if (res.moved)
            printf("promoted %s@v%d (%s) to %s@%s%s\n", v.model, v.number, cli_short_id(sid, &v.id),
                   v.model, po.alias, res.forced ? " (forced)" : "");
        else
            printf("%s@%s already points to %s@v%d\n", v.model, po.alias, v.model, v.number);
    }
done:
    if (have_v)
        cairn_version_release(&v);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return error < 0 ? cli_fail(error) : rc;
}
