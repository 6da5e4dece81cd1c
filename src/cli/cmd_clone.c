/* cairn clone URL [DIR]: a new repository with URL as 'origin' and everything pulled. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn/registry.h"
#include "cairn/remote.h"
#include "cairn/repo.h"
#include "cli.h"
#include "remote/backend.h"
#include "util/fs.h"

const char cmd_clone_summary[] = "copy a remote into a new repository";
const char cmd_clone_help[] =
    "usage: cairn clone URL [DIR] [--endpoint URL] [--region R] [--path-style]\n"
    "                   [--concurrency N] [--json]\n"
    "\n"
    "Create DIR (default: the last component of URL), add URL as remote\n"
    "'origin' with the given options (see 'cairn remote --help') and pull\n"
    "every version. Any version can then be checked out with no other source.\n";

int cli_pull_print(const struct cairn_pull_stats *st, int json, double seconds);

/*
 * What a failed clone removes so that a retry starts clean: the highest
 * directory of DIR's path that did not exist (clone created it and
 * everything below), or, when DIR existed, only the .cairn made in it;
 * nothing that was there before is touched.
 */
static int clone_undo_path(char *out, size_t cap, const char *dir)
{
    struct stat st;
    char parent[4096];
    out[0] = '\0';
    if (lstat(dir, &st) == 0)
        return !S_ISDIR(st.st_mode) || snprintf(out, cap, "%s/.cairn", dir) < (int)cap ? 0 : -1;
    if (snprintf(out, cap, "%s", dir) >= (int)cap)
        return -1;
    for (;;) {
        size_t len = strlen(out);
        char *slash;
        while (len > 1 && out[len - 1] == '/')
            out[--len] = '\0';
        snprintf(parent, sizeof(parent), "%s", out);
        if (!(slash = strrchr(parent, '/')))
            return 0; /* a relative single component: the cwd exists */
        if (slash == parent)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (lstat(parent, &st) == 0 || errno != ENOENT)
            return 0;
        snprintf(out, cap, "%s", parent);
    }
}

static int clone_fail(int error, const char *undo)
{
    int rc = cli_fail(error);
    if (*undo && cairn_fs_rm_rf(undo) < 0)
        cli_error("cannot remove '%s': %s", undo, cairn_error_last());
    return rc;
}

int cmd_clone(int argc, char **argv)
{
    static const struct option opts[] = { { "endpoint", required_argument, NULL, 'e' },
                                          { "region", required_argument, NULL, 'r' },
                                          { "path-style", no_argument, NULL, 'p' },
                                          { "concurrency", required_argument, NULL, 'c' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_remote_config cfg;
    struct cairn_pull_opts po = { 0 };
    struct cairn_pull_stats st;
    struct cairn_repo *repo = NULL;
    struct cli_progress *pb;
    char *scheme = NULL, *a = NULL, *b = NULL, dir[4096], undo[4096] = "";
    int c, json = 0, error;
    long n;
    double t0;

    memset(&cfg, 0, sizeof(cfg));
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            cfg.endpoint = optarg;
            break;
        case 'r':
            cfg.region = optarg;
            break;
        case 'p':
            cfg.path_style = 1;
            break;
        case 'c':
            if ((n = cli_parse_count(optarg)) < 1 || n > 256)
                return cli_usage("clone", "--concurrency takes a number from 1 to 256");
            cfg.concurrency = (int)n;
            break;
        case 'j':
            json = 1;
            break;
        default:
            return cli_usage("clone", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind < 1 || argc - optind > 2)
        return cli_usage("clone", "give a URL and optionally a directory");
    if ((cfg.endpoint && cli_url_userinfo(cfg.endpoint)) || cli_url_userinfo(argv[optind]))
        return cli_usage("clone", "%s", cli_url_userinfo_refusal);
    if ((error = cairn_remote_parse_url(&scheme, &a, &b, argv[optind])) < 0)
        return cli_fail(error);
    if (argc - optind == 2) {
        snprintf(dir, sizeof(dir), "%s", argv[optind + 1]);
    } else {
        /* The last path component of the URL, like git. */
        const char *src = *b ? b : a;
        size_t len = strlen(src);
        while (len && src[len - 1] == '/')
            len--;
        {
            const char *start = src + len;
            while (start > src && start[-1] != '/')
                start--;
            snprintf(dir, sizeof(dir), "%.*s", (int)(src + len - start), start);
        }
    }
    free(scheme);
    free(a);
    free(b);
    if (!*dir)
        return cli_usage("clone", "cannot tell a directory name from the URL: give DIR");
    if (clone_undo_path(undo, sizeof(undo), dir) < 0)
        return cli_usage("clone", "directory name too long");
    if ((error = cairn_repo_init(dir)) < 0) {
        if (error == CAIRN_EEXISTS)
            undo[0] = '\0'; /* a repository that was there */
        return clone_fail(error, undo);
    }
    if ((error = cairn_repo_open(&repo, dir)) < 0)
        return clone_fail(error, undo);
    snprintf(cfg.name, sizeof(cfg.name), "origin");
    cfg.url = argv[optind];
    if ((error = cairn_registry_remote_add(cairn_repo_registry(repo), &cfg)) < 0) {
        cairn_repo_free(repo);
        return clone_fail(error, undo);
    }
    po.remote = "origin";
    pb = cli_progress_start("clone", 0);
    po.progress = cli_progress_cb;
    po.progress_payload = pb;
    t0 = cli_now();
    error = cairn_pull(repo, &po, &st);
    cli_progress_finish(pb);
    cairn_repo_free(repo);
    if (error < 0)
        return clone_fail(error, undo);
    if (!json)
        printf("cloned '%s' into '%s'\n", argv[optind], dir);
    return cli_pull_print(&st, json, cli_now() - t0);
}
