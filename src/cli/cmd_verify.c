/* cairn verify REF: check a version's signatures against the trusted keys. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cairn/gate.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "util/hash.h"

const char cmd_verify_summary[] = "check that a version is signed by a trusted key";
const char cmd_verify_help[] =
    "Check the signatures of version REF against the public keys in\n"
    ".cairn/trusted_keys/. Exits 0 when a trusted key's signature verifies,\n"
    "and 3 when the version is not signed, is signed only by untrusted keys,\n"
    "or has a signature by a trusted key that does not verify (a damaged or\n"
    "forged signature fails the check even next to a good one).\n"
    "With --json, status is valid, missing, untrusted or invalid.\n";

enum { VERIFY_REF, VERIFY_JSON };
const struct cli_opt cmd_verify_opts[] = {
    [VERIFY_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "the version to check", CLI_OPT_REQUIRED },
    [VERIFY_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                      "print {\"model\",\"version\",\"id\",\"status\",\"detail\"}", 0 },
    CLI_OPTS_END,
};

int cmd_verify(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_version v;
    enum cairn_sig_status st = CAIRN_SIG_MISSING;
    struct cli_parsed args;
    bool json, have_v = false;
    char *detail = NULL;
    int error = 0, rc;
    char sid[16], hex[CAIRN_OID_HEXSZ + 1];

    if ((rc = cli_opt_parse(&args, "verify", cmd_verify_opts, argc, argv)) != 0)
        return rc;
    json = args.v[VERIFY_JSON].count > 0;
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    if ((error = cairn_repo_resolve(repo, args.v[VERIFY_REF].str, &v)) < 0)
        goto done;
    have_v = true;
    if ((error = cairn_signature_status(&st, &detail, cairn_repo_cairndir(repo), &v.id)) < 0)
        goto done;
    if (json) {
        json_t *j = json_pack("{s:s, s:i, s:s, s:s, s:o}", "model", v.model, "version", v.number,
                              "id", cairn_oid_fmt(hex, &v.id), "status", cairn_sig_status_name(st),
                              "detail", detail ? json_string(detail) : json_null());
        cli_print_json(j);
    } else if (st == CAIRN_SIG_VALID) {
        printf("%s@v%d (%s): signature valid, %s (trusted)\n", v.model, v.number,
               cli_short_id(sid, &v.id), detail ? detail : "");
    } else {
        const char *what = st == CAIRN_SIG_MISSING     ? "not signed"
                           : st == CAIRN_SIG_UNTRUSTED ? "signed only by untrusted keys"
                                                       : "has a signature that does not verify";
        cli_error("%s@v%d (%s) %s%s%s", v.model, v.number, cli_short_id(sid, &v.id), what,
                  detail ? ": " : "", detail ? detail : "");
    }
done:
    free(detail);
    if (have_v)
        cairn_version_release(&v);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    if (error < 0)
        return cli_fail(error);
    if (rc)
        return rc;
    return st == CAIRN_SIG_VALID ? EXIT_OK : EXIT_CHECK;
}
