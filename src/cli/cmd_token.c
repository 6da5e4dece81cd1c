/*
 * cairn token create --role R [--name N] [--model NAME...]: make a bearer
 * token for the control API of `cairn serve`, optionally limited to models. The token is printed
 * once; the registry keeps only its BLAKE3 hash, so a lost token cannot be recovered, only
 * replaced.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "cairn/repo.h"
#include "cairn/serve.h"
#include "cli.h"
#include "util/hash.h"

const char cmd_token_summary[] = "create bearer tokens for the serve control API";
const char cmd_token_help[] =
    "usage: cairn token create --role ROLE [--name NAME] [--model NAME]...\n"
    "\n"
    "Create a token for the control API of 'cairn serve' and print it once on\n"
    "stdout; only its BLAKE3 hash is stored. Roles, each including the ones\n"
    "before it:\n"
    "\n"
    "  read     rollout status, models, inputs\n"
    "  write    feedback; rollout start with an analysis; pause, resume, abort;\n"
    "           rollback to the stable version\n"
    "  promote  rollout promote; rollout start of a plan without analysis;\n"
    "           rollback --to REF; --force past the release check\n"
    "  admin    everything\n"
    "\n"
    "(the table is in docs/serving.md)\n"
    "\n"
    "  --name NAME    a name for the audit log (default token-HASHPREFIX)\n"
    "  --model NAME   limit the token to this model's control API (repeat for\n"
    "                 more, at most 16); others answer 403. Default: every model\n"
    "\n"
    "Use it with CAIRN_TOKEN=... cairn rollout ..., or an\n"
    "'Authorization: Bearer TOKEN' header.\n";

int cmd_token(int argc, char **argv)
{
    static const struct option opts[] = { { "role", required_argument, NULL, 'r' },
                                          { "name", required_argument, NULL, 'n' },
                                          { "model", required_argument, NULL, 'm' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_repo *repo = NULL;
    enum cairn_role role = CAIRN_ROLE_NONE;
    const char *role_s = NULL, *name = NULL, *models[CAIRN_TOKEN_MAX_MODELS];
    size_t nmodels = 0;
    unsigned char raw[32];
    char token[80], hex[CAIRN_OID_HEXSZ + 1], defname[32];
    cairn_oid h;
    int c, rc, error;

    if (argc < 2 || strcmp(argv[1], "create"))
        return cli_usage("token",
                         argc < 2 ? "which subcommand? (create)"
                                  : "unknown subcommand '%s' (expected create)",
                         argv[argc < 2 ? 0 : 1]);
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            role_s = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'm':
            if (nmodels == CAIRN_TOKEN_MAX_MODELS)
                return cli_usage("token", "at most %d --model options", CAIRN_TOKEN_MAX_MODELS);
            if (cairn_name_valid(optarg, "model name") < 0)
                return cli_fail(CAIRN_EINVALID);
            models[nmodels++] = optarg;
            break;
        default:
            return cli_usage("token", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage("token", "unexpected argument '%s'", argv[optind]);
    if (!role_s)
        return cli_usage("token", "give a role: --role read|write|promote|admin");
    if ((role = cairn_role_parse(role_s)) == CAIRN_ROLE_NONE)
        return cli_usage("token", "unknown role '%s' (expected read, write, promote or admin)",
                         role_s);
    if (name && cairn_name_valid(name, "token name") < 0)
        return cli_fail(CAIRN_EINVALID);
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        cli_error("cannot read random bytes for the token");
        return EXIT_RUNTIME;
    }
    memcpy(token, "cairn_", 6);
    cairn_hex_encode(token + 6, raw, sizeof(raw));
    cairn_hash(&h, token, strlen(token));
    if (!name) {
        cairn_oid_fmt(hex, &h);
        snprintf(defname, sizeof(defname), "token-%.12s", hex);
        name = defname;
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    error = cairn_registry_token_add(cairn_repo_registry(repo), &h, name, role, models, nmodels,
                                     cairn_repo_user(repo));
    cairn_repo_free(repo);
    if (error < 0)
        return cli_fail(error);
    printf("%s\n", token);
    fprintf(stderr, "created token '%s' with role %s", name, cairn_role_name(role));
    for (size_t i = 0; i < nmodels; i++)
        fprintf(stderr, "%s%s",
                i              ? ", "
                : nmodels == 1 ? " limited to model "
                               : " limited to models ",
                models[i]);
    fprintf(stderr, "; it is shown only now\n");
    return EXIT_OK;
}
