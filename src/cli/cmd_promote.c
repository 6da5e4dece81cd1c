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
#include "print.h"
#include "util/hash.h"

const char cmd_promote_summary[] = "move an alias to a version that passed its gate";
const char cmd_promote_help[] =
    "usage: cairn promote REF --to ALIAS [--policy FILE] [--force --reason TEXT] [--json]\n"
    "\n"
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
    "  --to ALIAS      the alias to move (required)\n"
    "  --policy FILE   require this policy, and store it as the alias's policy\n"
    "                  when the promotion succeeds\n"
    "  --force         promote without a passed gate; needs --reason, and the\n"
    "                  audit log records forced=true with the reason\n"
    "  --reason TEXT   why (kept in the alias history and the audit log)\n"
    "  --json          print the outcome as JSON (see docs/cli-json.md)\n"
    "\n"
    "Exit status: 0 promoted, 3 refused (no passed gate), 2 usage (no policy\n"
    "for the alias, bad names), 1 runtime errors.\n";

int cmd_promote(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_promote_opts po;
    struct cairn_promote_result res;
    struct cairn_version v;
    const char *ref = NULL;
    char sid[16];
    int json = 0, error = 0, rc = EXIT_OK, have_v = 0;

    memset(&po, 0, sizeof(po));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--force"))
            po.force = 1;
        else if (!strcmp(a, "--to") && i + 1 < argc)
            po.alias = argv[++i];
        else if (!strncmp(a, "--to=", 5))
            po.alias = a + 5;
        else if (!strcmp(a, "--policy") && i + 1 < argc)
            po.policy = argv[++i];
        else if (!strncmp(a, "--policy=", 9))
            po.policy = a + 9;
        else if (!strcmp(a, "--reason") && i + 1 < argc)
            po.reason = argv[++i];
        else if (!strncmp(a, "--reason=", 9))
            po.reason = a + 9;
        else if (a[0] == '-')
            return cli_usage("promote", "unknown option '%s'", a);
        else if (!ref)
            ref = a;
        else
            return cli_usage("promote", "too many arguments");
    }
    if (!ref)
        return cli_usage("promote", "which version? give a REF");
    if (!po.alias)
        return cli_usage("promote", "give the alias to move with --to ALIAS");
    if (po.force && (!po.reason || !*po.reason))
        return cli_usage("promote", "--force needs --reason TEXT");
    if (po.reason && !*po.reason)
        return cli_usage("promote", "--reason needs a text");
    if (cairn_name_valid(po.alias, "alias") < 0)
        return cli_fail(CAIRN_EINVALID);
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
    return error < 0 ? cli_fail(error) : rc;
}
