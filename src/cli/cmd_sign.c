/* cairn sign REF: sign a version id with the user's ed25519 key. */
#include <jansson.h>
#include <stdio.h>

#include "cairn/gate.h"
#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "util/buf.h"
#include "util/hash.h"

const char cmd_sign_summary[] = "sign a version with your ed25519 key";
const char cmd_sign_help[] =
    "Sign the version REF. The signature covers the version id, which commits\n"
    "to every file and chunk of the version, so it vouches for the whole\n"
    "model. It is stored in .cairn/signatures/ and the key use is written to\n"
    "the audit log. Signing again with the same key replaces the signature.\n"
    "\n"
    "A signature counts for 'cairn verify' and 'signature: required' gates only\n"
    "when its public key is in .cairn/trusted_keys/ (see 'cairn keygen --trust').\n"
    "With --json, status is what 'cairn verify' now says of the version: valid,\n"
    "missing, untrusted or invalid.\n";

enum { SIGN_REF, SIGN_KEY, SIGN_JSON };
const struct cli_opt cmd_sign_opts[] = {
    [SIGN_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "the version to sign", CLI_OPT_REQUIRED },
    [SIGN_KEY] = { CLI_OPT_STRING, "key", 0, "PATH",
                   "secret key to use (default as for 'cairn keygen')", 0 },
    [SIGN_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                    "print {\"model\",\"version\",\"id\",\"key\",\"status\"}", 0 },
    CLI_OPTS_END,
};

int cli_signing_key_path(struct cairn_buf *out, const char *opt);

int cmd_sign(int argc, char **argv)
{
    struct cairn_buf keypath = CAIRN_BUF_INIT;
    struct cairn_repo *repo = NULL;
    struct cairn_registry *r;
    struct cairn_seckey sk;
    struct cairn_signature sig;
    struct cairn_version v;
    struct cli_parsed args;
    bool have_v = false, have_key = false, have_st;
    enum cairn_sig_status st;
    int error = 0, rc;
    char sid[16], hex[CAIRN_OID_HEXSZ + 1];

    if ((rc = cli_opt_parse(&args, "sign", cmd_sign_opts, argc, argv)) != 0)
        return rc;
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    r = cairn_repo_registry(repo);
    if ((error = cairn_repo_resolve(repo, args.v[SIGN_REF].str, &v)) < 0)
        goto done;
    have_v = true;
    if ((error = cli_signing_key_path(&keypath, args.v[SIGN_KEY].str)) < 0 ||
        (error = cairn_seckey_load(&sk, keypath.ptr)) < 0)
        goto done;
    have_key = true;
    if ((error = cairn_sign_version(&sig, &sk, &v.id)) < 0 ||
        (error = cairn_verify_version(&sig, &sk.pub, &v.id)) < 0 ||
        (error = cairn_signature_store(cairn_repo_cairndir(repo), &v.id, &sig)) < 0)
        goto done;
    if ((error = cairn_registry_begin(r)) < 0)
        goto done;
    {
        char subject[160], details[256];
        snprintf(subject, sizeof(subject), "%s@v%d", v.model, v.number);
        snprintf(details, sizeof(details), "{\"id\":\"%s\",\"key\":\"%s\"}",
                 cairn_oid_fmt(hex, &v.id), sig.key_id);
        error = cairn_registry_audit_append(r, cairn_repo_user(repo), "sign", subject, details);
    }
    if (error < 0) {
        cairn_registry_rollback(r);
        goto done;
    }
    if ((error = cairn_registry_commit(r)) < 0)
        goto done;
    /* The signature is stored: a failure to read the status back is not the signing's. */
    if (!(have_st = cairn_signature_status(&st, NULL, cairn_repo_cairndir(repo), &v.id) == 0))
        cairn_error_clear();
    if (args.v[SIGN_JSON].count)
        cli_print_json(json_pack("{s:s, s:i, s:s, s:s, s:o}", "model", v.model, "version", v.number,
                                 "id", cairn_oid_fmt(hex, &v.id), "key", sig.key_id, "status",
                                 have_st ? json_string(cairn_sig_status_name(st)) : json_null()));
    else
        printf("signed %s@v%d (%s) with key %s\n", v.model, v.number, cli_short_id(sid, &v.id),
               sig.key_id);
    if (have_st && st != CAIRN_SIG_VALID)
        fprintf(stderr,
                "cairn: note: key %s is not trusted by this repository; add its .pub "
                "to .cairn/" CAIRN_TRUSTED_KEYS_DIR "/ for 'cairn verify' to accept it\n",
                sig.key_id);
done:
    if (have_key)
        cairn_seckey_release(&sk);
    if (have_v)
        cairn_version_release(&v);
    cairn_buf_release(&keypath);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return error < 0 ? cli_fail(error) : rc;
}
