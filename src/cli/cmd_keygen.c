/* cairn keygen: create an ed25519 signing key pair, optionally trusted by this repository. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/gate.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "util/buf.h"
#include "util/fs.h"

const char cmd_keygen_summary[] = "create an ed25519 key pair for signing versions";
const char cmd_keygen_help[] =
    "Create a signing key pair: the secret key at PATH (mode 0600) and the\n"
    "public key beside it (PATH with .key replaced by .pub, mode 0644).\n"
    "Existing key files are never overwritten. PATH defaults to\n"
    "$CAIRN_SIGNING_KEY, else $XDG_CONFIG_HOME/cairn/signing.key (or\n"
    "~/.config/cairn/signing.key).\n"
    "\n"
    "--trust adds the public key to this repository's trusted keys\n"
    "(.cairn/trusted_keys/KEYID.pub), so that 'cairn verify' and 'signature:\n"
    "required' gates accept its signatures.\n"
    "\n"
    "Prints the key id (the first 16 hex digits of the BLAKE3 of the public key).\n";

enum { KEYGEN_KEY, KEYGEN_TRUST, KEYGEN_JSON };
const struct cli_opt cmd_keygen_opts[] = {
    [KEYGEN_KEY] = { CLI_OPT_STRING, "key", 0, "PATH", "where to write the secret key", 0 },
    [KEYGEN_TRUST] = { CLI_OPT_FLAG, "trust", 0, NULL,
                       "also add the public key to this repository's trusted keys", 0 },
    [KEYGEN_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                      "print {\"key_id\",\"secret_key\",\"public_key\",\"trusted\"}", 0 },
    CLI_OPTS_END,
};

/* The default secret key path, shared with sign (declared in cli.h is not ours to edit). */
int cli_signing_key_path(struct cairn_buf *out, const char *opt);

int cli_signing_key_path(struct cairn_buf *out, const char *opt)
{
    const char *env = getenv("CAIRN_SIGNING_KEY"), *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");

    cairn_buf_clear(out);
    if (opt)
        return cairn_buf_puts(out, opt);
    if (env && *env)
        return cairn_buf_puts(out, env);
    if (xdg && *xdg)
        return cairn_buf_printf(out, "%s/cairn/signing.key", xdg);
    if (home && *home)
        return cairn_buf_printf(out, "%s/.config/cairn/signing.key", home);
    return cairn_error_set(CAIRN_EINVALID,
                           "no key path: set HOME or CAIRN_SIGNING_KEY, or "
                           "pass --key");
}

static int public_path(struct cairn_buf *out, const char *secret)
{
    size_t n = strlen(secret);
    cairn_buf_clear(out);
    if (n > 4 && strcmp(secret + n - 4, ".key") == 0)
        return cairn_buf_printf(out, "%.*s.pub", (int)(n - 4), secret);
    return cairn_buf_printf(out, "%s.pub", secret);
}

static int parent_dir(const char *path)
{
    struct cairn_buf dir = CAIRN_BUF_INIT;
    const char *slash = strrchr(path, '/');
    int error = 0;
    if (slash && slash != path) {
        if ((error = cairn_buf_put(&dir, path, (size_t)(slash - path))) == 0)
            error = cairn_fs_mkdir_p(dir.ptr);
    }
    cairn_buf_release(&dir);
    return error;
}

int cmd_keygen(int argc, char **argv)
{
    struct cairn_buf sec = CAIRN_BUF_INIT, pub = CAIRN_BUF_INIT, trusted = CAIRN_BUF_INIT;
    struct cairn_repo *repo = NULL;
    struct cairn_pubkey key;
    struct cli_parsed args;
    const char *key_opt;
    char *text = NULL;
    bool trust, json;
    int error = 0, rc;

    if ((rc = cli_opt_parse(&args, "keygen", cmd_keygen_opts, argc, argv)) != 0)
        return rc;
    key_opt = args.v[KEYGEN_KEY].str;
    trust = args.v[KEYGEN_TRUST].count > 0;
    json = args.v[KEYGEN_JSON].count > 0;
    if (key_opt && !*key_opt) {
        rc = cli_usage("keygen", "--key needs a path");
        goto done;
    }
    /* Open the repository first: --trust outside one should fail before any key is made. */
    if (trust && (rc = cli_open_repo(&repo)) != 0)
        goto done;
    if ((error = cli_signing_key_path(&sec, key_opt)) < 0 ||
        (error = public_path(&pub, sec.ptr)) < 0 || (error = parent_dir(sec.ptr)) < 0 ||
        (error = cairn_keygen(&key, sec.ptr, pub.ptr)) < 0)
        goto done;
    if (!json)
        printf("key id:      %s\nsecret key:  %s\npublic key:  %s\n", key.id, sec.ptr, pub.ptr);
    if (trust) {
        if ((error = cairn_buf_printf(&trusted, "%s/" CAIRN_TRUSTED_KEYS_DIR,
                                      cairn_repo_cairndir(repo))) < 0 ||
            (error = cairn_fs_mkdir_p(trusted.ptr)) < 0 ||
            (error = cairn_buf_printf(&trusted, "/%s.pub", key.id)) < 0 ||
            (error = cairn_pubkey_format(&text, &key)) < 0 ||
            (error = cairn_fs_write_atomic(trusted.ptr, text, strlen(text), 0644)) < 0)
            goto done;
        if (!json)
            printf("trusted:     %s\n", trusted.ptr);
    }
    if (json)
        cli_print_json(json_pack("{s:s, s:s, s:s, s:o}", "key_id", key.id, "secret_key", sec.ptr,
                                 "public_key", pub.ptr, "trusted",
                                 trust ? json_string(trusted.ptr) : json_null()));
done:
    free(text);
    cairn_buf_release(&sec);
    cairn_buf_release(&pub);
    cairn_buf_release(&trusted);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return error < 0 ? cli_fail(error) : rc;
}
