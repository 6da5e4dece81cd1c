/*
 * cairn serve-model REF [--listen ADDR]: check a version out into a private
 * temporary directory and serve it with the reference MLP backend (OIP v2)
 * until SIGINT/SIGTERM; --dir serves a plain directory instead (tests,
 * quick experiments). The temporary checkout is removed on the way out.
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/repo.h"
#include "cli.h"
#include "model/mlp.h"
#include "serve/http.h"
#include "serve/serve_model.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

const char cmd_serve_model_summary[] = "serve a version with the reference MLP backend (OIP v2)";
const char cmd_serve_model_help[] =
    "usage: cairn serve-model (REF | --dir DIR [--name NAME]) [--file PATH] [--listen ADDR]\n"
    "                         [--fail-rate F] [--latency-ms N] [--wrong-rate F] [--seed N]\n"
    "\n"
    "Serve an MLP classifier stored as safetensors (docs/serve-model.md) with the\n"
    "Open Inference Protocol v2: GET /v2/health/live, /v2/health/ready,\n"
    "/v2/models/NAME and POST /v2/models/NAME/infer. REF is checked out into a\n"
    "temporary directory first. Runs until interrupted (SIGINT or SIGTERM).\n"
    "\n"
    "  --listen ADDR     HOST:PORT, [V6]:PORT or :PORT (default 127.0.0.1:8081;\n"
    "                    port 0 picks a free one, printed on start)\n"
    "  --dir DIR         serve the model files in DIR instead of a version\n"
    "  --name NAME       model name to serve DIR under (default: model)\n"
    "  --file PATH       the safetensors file to serve, relative to the version\n"
    "                    (or DIR); default: model.safetensors at the top, else\n"
    "                    the only *.safetensors file anywhere in it\n"
    "\n"
    "Fault injection, for rollout tests:\n"
    "  --fail-rate F     answer this share (0..1) of infer requests with 500\n"
    "  --latency-ms N    add N ms before every infer answer\n"
    "  --wrong-rate F    give this share (0..1) of rows a wrong argmax\n"
    "  --seed N          seed of the fault draws (default 0)\n"
    "\n"
    "The model is loaded and checked (every weight finite) before listening:\n"
    "a model that cannot be served exits 1 without a 'serving' line.\n";

static const char *listen_addr;

static void on_listening(int port, void *arg)
{
    const char **what = arg;
    const char *colon = strrchr(listen_addr, ':');
    fprintf(stderr, "serving %s (version %s) on %.*s:%d\n", what[0], what[1],
            (int)(colon - listen_addr), listen_addr, port);
    fflush(stderr);
}

/*
 * Started by `cairn serve` (CAIRN_SERVE_PARENT=PID): die with it. The kernel
 * sends SIGKILL when the parent exits, even by kill -9; a parent that died
 * before the prctl is caught by comparing getppid() with the PID it gave.
 */
static int die_with_parent(void)
{
    const char *s = getenv("CAIRN_SERVE_PARENT");
    char *end;
    long pid;
    if (!s)
        return 0;
    pid = strtol(s, &end, 10);
    if (!*s || *end || pid <= 1)
        return cairn_error_set(CAIRN_EINVALID, "CAIRN_SERVE_PARENT '%s' is not a process id", s);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot tie serve-model to its parent");
    if ((long)getppid() != pid)
        return cairn_error_set(CAIRN_ERROR,
                               "cairn serve (pid %ld) exited before serve-model started", pid);
    return 0;
}

static int parse_rate(double *out, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= 0 && v <= 1))
        return -1;
    *out = v;
    return 0;
}

int cmd_serve_model(int argc, char **argv)
{
    static const struct option opts[] = { { "listen", required_argument, NULL, 'l' },
                                          { "dir", required_argument, NULL, 'd' },
                                          { "name", required_argument, NULL, 'n' },
                                          { "file", required_argument, NULL, 'F' },
                                          { "fail-rate", required_argument, NULL, 'f' },
                                          { "latency-ms", required_argument, NULL, 'L' },
                                          { "wrong-rate", required_argument, NULL, 'w' },
                                          { "seed", required_argument, NULL, 's' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_serve_model_opts so;
    struct sockaddr_storage ss;
    struct cairn_version v;
    struct cairn_repo *repo = NULL;
    const char *dir = NULL, *name = NULL, *file = NULL, *what[2];
    struct cairn_buf found = CAIRN_BUF_INIT;
    char tmp[PATH_MAX] = "", hex[CAIRN_OID_HEXSZ + 1];
    long n;
    int c, error = 0, rc = EXIT_OK, have_version = 0;

    if ((error = die_with_parent()) < 0)
        return cli_fail(error);
    cairn_serve_model_opts_init(&so);
    listen_addr = "127.0.0.1:8081";
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen_addr = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'F':
            file = optarg;
            break;
        case 'f':
            if (parse_rate(&so.error_rate, optarg) < 0)
                return cli_usage("serve-model", "--fail-rate takes a number from 0 to 1");
            break;
        case 'w':
            if (parse_rate(&so.wrong_rate, optarg) < 0)
                return cli_usage("serve-model", "--wrong-rate takes a number from 0 to 1");
            break;
        case 'L':
            if ((n = cli_parse_count(optarg)) < 0)
                return cli_usage("serve-model", "--latency-ms takes a whole number");
            so.extra_latency_ms = (uint64_t)n;
            break;
        case 's':
            if ((n = cli_parse_count(optarg)) < 0)
                return cli_usage("serve-model", "--seed takes a whole number");
            so.seed = (uint64_t)n;
            break;
        default:
            return cli_usage("serve-model", "unknown option or missing value '%s'",
                             argv[optind - 1]);
        }
    }
    if (dir ? optind != argc : optind != argc - 1)
        return cli_usage("serve-model", dir              ? "give either REF or --dir, not both"
                                        : optind >= argc ? "which version? give a REF or --dir DIR"
                                                         : "too many arguments");
    if (!dir && name)
        return cli_usage("serve-model", "--name only goes with --dir (a REF names its model)");
    if (cairn_http_parse_addr(&ss, listen_addr) < 0)
        return cli_usage("serve-model", "%s", cairn_error_last());
    if (name && (error = cairn_name_valid(name, "model name")) < 0)
        return cli_fail(error);
    if (file && cairn_fs_path_valid(file) < 0)
        return cli_usage("serve-model",
                         "--file takes a relative path inside the version, "
                         "such as m/model.safetensors");
    if (!dir) {
        if ((rc = cli_open_repo(&repo)) != 0)
            return rc;
        if ((error = cairn_repo_resolve(repo, argv[optind], &v)) < 0)
            goto done;
        have_version = 1;
        {
            struct cairn_buf b = CAIRN_BUF_INIT;
            error = cairn_fs_mkdtemp(&b, NULL, "cairn-serve");
            if (!error && b.len >= sizeof(tmp))
                error = cairn_error_set(CAIRN_EINVALID, "temporary path too long");
            if (!error)
                memcpy(tmp, b.ptr, b.len + 1);
            cairn_buf_release(&b);
            if (error < 0)
                goto done;
        }
        if ((error = cairn_repo_checkout(repo, argv[optind], tmp, NULL, NULL)) < 0)
            goto done;
        cairn_repo_free(repo);
        repo = NULL;
        dir = tmp;
        name = v.model;
        cairn_oid_fmt(hex, &v.id);
        so.version = hex;
    }
    /* Pick the file now, so a version without one (or with several) fails at once. */
    if (file) {
        struct stat st;
        if ((error = cairn_fs_join(&found, dir, file)) < 0)
            goto done;
        if (stat(found.ptr, &st) < 0 || !S_ISREG(st.st_mode)) {
            error = cairn_error_set(CAIRN_ENOTFOUND, "no file '%s' in %s '%s'", file,
                                    have_version ? "version" : "directory",
                                    have_version ? argv[optind] : dir);
            goto done;
        }
        so.model_file = file;
    } else if ((error = cairn_mlp_find(&found, dir)) < 0) {
        if (error == CAIRN_EINVALID) {
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s", cairn_error_last());
            cairn_error_set(error, "%s; pick one with --file PATH", msg);
        }
        goto done;
    } else {
        so.model_file = found.ptr;
    }
    what[0] = name ? name : "model";
    what[1] = so.version ? so.version : "1";
    so.on_listening = on_listening;
    so.arg = what;
    /* From here a failure is the model's (it cannot be loaded), not the command line's. */
    if ((error = cairn_serve_model_run(dir, what[0], listen_addr, &so)) < 0)
        rc = EXIT_RUNTIME;
done:
    if (error < 0 && tmp[0]) {
        /* Name the version and the path inside it, not the temporary checkout. */
        char slash[PATH_MAX + 1];
        snprintf(slash, sizeof(slash), "%s/", tmp);
        if (cairn_error_replace(slash, ""))
            cairn_error_prefix("version %s", argv[optind]);
        else
            cairn_error_replace(tmp, argv[optind]);
    }
    if (tmp[0])
        cairn_fs_rm_rf(tmp);
    cairn_buf_release(&found);
    if (have_version)
        cairn_version_release(&v);
    cairn_repo_free(repo);
    if (error < 0 && rc == EXIT_RUNTIME) {
        cli_error("%s", cairn_error_last());
        return rc;
    }
    return error < 0 ? cli_fail(error) : rc;
}
