/*
 * cairn gate REF --policy FILE [--json]: evaluate a gate policy against a
 * version with facts from the repository (metrics, the metric of an alias
 * of the same model, signatures, dataset validations), print every check,
 * store the result with the version (what `promote` asks for), and exit 3
 * when a check failed.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/gate.h"
#include "cairn/release.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"
#include "util/hash.h"

const char cmd_gate_summary[] = "run a gate policy against a version and store the result";
const char cmd_gate_help[] =
    "Evaluate the checks of the YAML policy FILE against version REF and print\n"
    "each with its value, bound and verdict. Check kinds (docs/gates.md):\n"
    "\n"
    "  - metric: accuracy        min: 0.90   max: ...\n"
    "  - metric: accuracy        no_regression_vs: production   tolerance: 0.005\n"
    "  - signature: required     signed by a key in .cairn/trusted_keys/\n"
    "  - data: validated         every dataset of the version passed 'data validate'\n"
    "\n"
    "no_regression_vs compares with the version the alias of the same model\n"
    "points to now. With no baseline (the alias not set yet, as for a first\n"
    "release) it fails, unless the check says 'on_missing_baseline: pass';\n"
    "then it passes and its reason says the baseline was missing.\n"
    "\n"
    "The result is stored with the version under the policy's digest and\n"
    "written to the audit log; 'cairn promote' requires a stored pass for the\n"
    "alias's policy.\n"
    "\n"
    "Exit status: 0 every check passed, 3 a check failed, 1 a check could not\n"
    "be evaluated, 2 a malformed policy (the message names file:line:col).\n";

enum { GATE_REF, GATE_POLICY, GATE_JSON };
const struct cli_opt cmd_gate_opts[] = {
    [GATE_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "the version to check", CLI_OPT_REQUIRED },
    [GATE_POLICY] = { CLI_OPT_STRING, "policy", 0, "FILE", "the gate policy (required)",
                      CLI_OPT_REQUIRED },
    [GATE_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                    "the stored result JSON plus ref, policy_name and gate_id", 0 },
    CLI_OPTS_END,
};

static void print_result(const struct cairn_version *v, const struct cairn_gate_result *res,
                         const char *policy)
{
    char sid[16], phex[CAIRN_OID_HEXSZ + 1];
    printf("gate %s@v%d (%s) against %s (%.12s)\n", v->model, v->number, cli_short_id(sid, &v->id),
           policy, cairn_oid_fmt(phex, &res->policy));
    printf("  %-7s %-10s %-22s %-14s %s\n", "VERDICT", "CHECK", "SUBJECT", "VALUE", "BOUND");
    for (size_t i = 0; i < res->count; i++) {
        const struct cairn_check_result *c = &res->checks[i];
        printf("  %-7s %-10s %-22s %-14s %s\n", cairn_verdict_name(c->verdict), c->kind,
               c->metric ? c->metric : "-", c->value_text ? c->value_text : "-",
               c->bound ? c->bound : "-");
        if (c->reason)
            printf("          %s:%d:%d: %s\n", policy, c->line, c->col, c->reason);
    }
}

int cmd_gate(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_policy *p = NULL;
    struct cairn_gate_result *res = NULL;
    struct cairn_gate_repo_ctx ctx;
    struct cairn_version v;
    const char *ref = NULL, *policy = NULL;
    char hex[CAIRN_OID_HEXSZ + 1], *text = NULL;
    struct cli_parsed args;
    int json, error = 0, rc = EXIT_OK, have_v = 0;
    int64_t id = 0;

    if ((rc = cli_opt_parse(&args, "gate", cmd_gate_opts, argc, argv)) != 0)
        return rc;
    ref = args.v[GATE_REF].str;
    policy = args.v[GATE_POLICY].str;
    json = args.v[GATE_JSON].count > 0;
    if (!*policy) {
        rc = cli_usage("gate", "give the policy file with --policy FILE");
        goto done;
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    if ((error = cairn_policy_load_file(&p, policy)) < 0)
        goto done;
    if ((error = cairn_repo_resolve(repo, ref, &v)) < 0)
        goto done;
    have_v = 1;
    cairn_repo_gate_ctx_init(&ctx, repo, v.model);
    if ((error = cairn_gate_evaluate(&res, p, &ctx.ctx, cairn_oid_fmt(hex, &v.id))) < 0)
        goto done;
    if ((error = cairn_repo_gate_record(repo, &v, res, policy, &id)) < 0)
        goto done;
    if (json) {
        json_t *o;
        if ((error = cairn_gate_result_to_json(&text, res)) < 0)
            goto done;
        o = json_loads(text, 0, NULL);
        json_object_set_new(o, "ref", json_sprintf("%s@v%d", v.model, v.number));
        json_object_set_new(o, "policy_name", json_string(policy));
        json_object_set_new(o, "gate_id", json_integer(id));
        cli_print_json(o);
    } else {
        print_result(&v, res, policy);
    }
    if (res->verdict == CAIRN_VERDICT_PASS) {
        if (!json)
            printf("gate passed\n");
    } else if (res->verdict == CAIRN_VERDICT_FAIL) {
        cli_error("gate failed for %s@v%d", v.model, v.number);
        rc = EXIT_CHECK;
    } else {
        cli_error("gate could not evaluate every check for %s@v%d", v.model, v.number);
        rc = EXIT_RUNTIME;
    }
done:
    free(text);
    cairn_gate_result_free(res);
    cairn_policy_free(p);
    if (have_v)
        cairn_version_release(&v);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return error < 0 ? cli_fail(error) : rc;
}
