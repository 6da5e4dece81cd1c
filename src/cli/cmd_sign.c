/* cairn sign REF: sign a version id with the user's ed25519 key. */
#include <stdio.h>
#include <string.h>

#include "cairn/gate.h"
#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "util/buf.h"
#include "util/hash.h"

const char cmd_sign_summary[] = "sign a version with your ed25519 key";
const char cmd_sign_help[] =
    "usage: cairn sign REF [--key PATH]\n"
    "\n"
    "Sign the version REF. The signature covers the version id, which commits\n"
    "to every file and chunk of the version, so it vouches for the whole\n"
    "model. It is stored in .cairn/signatures/ and the key use is written to\n"
    "the audit log. Signing again with the same key replaces the signature.\n"
    "\n"
    "  --key PATH   secret key to use (default as for 'cairn keygen')\n"
    "\n"
    "A signature counts for 'cairn verify' and 'signature: required' gates only\n"
    "when its public key is in .cairn/trusted_keys/ (see 'cairn keygen --trust').\n";

int cli_signing_key_path(struct cairn_buf *out, const char *opt);

int cmd_sign(int argc, char **argv)
{
    struct cairn_buf keypath = CAIRN_BUF_INIT;
    struct cairn_repo *repo = NULL;
    struct cairn_registry *r;
    struct cairn_seckey sk;
    struct cairn_signature sig;
    struct cairn_version v;
    const char *ref = NULL, *key_opt = NULL;
    bool have_v = false, have_key = false;
    enum cairn_sig_status st;
    int error = 0, rc;
    char sid[16];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--key") && i + 1 < argc)
            key_opt = argv[++i];
        else if (!strncmp(argv[i], "--key=", 6))
            key_opt = argv[i] + 6;
        else if (argv[i][0] == '-')
            return cli_usage("sign", "unknown option '%s'", argv[i]);
        else if (!ref)
            ref = argv[i];
        else
            return cli_usage("sign", "give one version to sign");
    }
    if (!ref)
        return cli_usage("sign", "give a version to sign: REF");
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    r = cairn_repo_registry(repo);
    if ((error = cairn_repo_resolve(repo, ref, &v)) < 0)
        goto done;
    have_v = true;
    if ((error = cli_signing_key_path(&keypath, key_opt)) < 0 ||
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
        char subject[160], details[256], hex[CAIRN_OID_HEXSZ + 1];
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
    printf("signed %s@v%d (%s) with key %s\n", v.model, v.number, cli_short_id(sid, &v.id),
           sig.key_id);
    if (cairn_signature_status(&st, NULL, cairn_repo_cairndir(repo), &v.id) == 0 &&
        st != CAIRN_SIG_VALID)
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
    return error < 0 ? cli_fail(error) : EXIT_OK;
}
