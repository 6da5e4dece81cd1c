/* cairn keygen: create an ed25519 signing key pair, optionally trusted by this repository. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/gate.h"
#include "cairn/repo.h"
#include "cli.h"
#include "util/buf.h"
#include "util/fs.h"

const char cmd_keygen_summary[] = "create an ed25519 key pair for signing versions";
const char cmd_keygen_help[] =
    "usage: cairn keygen [--key PATH] [--trust]\n"
    "\n"
    "Create a signing key pair: the secret key at PATH (mode 0600) and the\n"
    "public key beside it (PATH with .key replaced by .pub, mode 0644).\n"
    "Existing key files are never overwritten. PATH defaults to\n"
    "$CAIRN_SIGNING_KEY, else $XDG_CONFIG_HOME/cairn/signing.key (or\n"
    "~/.config/cairn/signing.key).\n"
    "\n"
    "  --key PATH   where to write the secret key\n"
    "  --trust      also add the public key to this repository's trusted keys\n"
    "               (.cairn/trusted_keys/KEYID.pub), so 'cairn verify' and\n"
    "               'signature: required' gates accept its signatures\n"
    "\n"
    "Prints the key id (the first 16 hex digits of the BLAKE3 of the public key).\n";

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
    const char *key_opt = NULL;
    char *text = NULL;
    bool trust = false;
    int error = 0, rc = EXIT_OK;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--key") && i + 1 < argc)
            key_opt = argv[++i];
        else if (!strncmp(argv[i], "--key=", 6))
            key_opt = argv[i] + 6;
        else if (!strcmp(argv[i], "--trust"))
            trust = true;
        else
            return cli_usage("keygen", "unknown argument '%s'", argv[i]);
    }
    if (key_opt && !*key_opt)
        return cli_usage("keygen", "--key needs a path");
    /* Open the repository first: --trust outside one should fail before any key is made. */
    if (trust && (rc = cli_open_repo(&repo)) != 0)
        return rc;
    if ((error = cli_signing_key_path(&sec, key_opt)) < 0 ||
        (error = public_path(&pub, sec.ptr)) < 0 || (error = parent_dir(sec.ptr)) < 0 ||
        (error = cairn_keygen(&key, sec.ptr, pub.ptr)) < 0)
        goto done;
    printf("key id:      %s\nsecret key:  %s\npublic key:  %s\n", key.id, sec.ptr, pub.ptr);
    if (trust) {
        if ((error = cairn_buf_printf(&trusted, "%s/" CAIRN_TRUSTED_KEYS_DIR,
                                      cairn_repo_cairndir(repo))) < 0 ||
            (error = cairn_fs_mkdir_p(trusted.ptr)) < 0 ||
            (error = cairn_buf_printf(&trusted, "/%s.pub", key.id)) < 0 ||
            (error = cairn_pubkey_format(&text, &key)) < 0 ||
            (error = cairn_fs_write_atomic(trusted.ptr, text, strlen(text), 0644)) < 0)
            goto done;
        printf("trusted:     %s\n", trusted.ptr);
    }
done:
    free(text);
    cairn_buf_release(&sec);
    cairn_buf_release(&pub);
    cairn_buf_release(&trusted);
    cairn_repo_free(repo);
    return error < 0 ? cli_fail(error) : rc;
}
