/*
 * cairn remote add|list|remove: configure the remotes push and pull talk
 * to. Only the URL and non-secret options are stored (in the registry);
 * credentials come from the environment when a remote is used.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "remote/backend.h"

const char cmd_remote_summary[] = "add, list or remove remotes (file:// and s3://)";
const char cmd_remote_help[] =
    "usage: cairn remote add NAME URL [--endpoint URL] [--region R] [--path-style]\n"
    "                        [--virtual-host] [--concurrency N]\n"
    "       cairn remote list [--json]\n"
    "       cairn remote remove NAME\n"
    "\n"
    "URL is file:///abs/path or s3://bucket[/prefix]. For S3, credentials are\n"
    "read when the remote is used, from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
    "AWS_SESSION_TOKEN or an ~/.aws/credentials profile (AWS_PROFILE); they are\n"
    "never stored in the repository. The endpoint and region default to\n"
    "CAIRN_S3_ENDPOINT / AWS_ENDPOINT_URL and AWS_REGION when not given here.\n"
    "A URL or endpoint with credentials in it (http://KEY:SECRET@host) is\n"
    "refused; one stored by an older cairn is listed with them as ***.\n"
    "\n"
    "  --endpoint URL     S3-compatible endpoint (http://127.0.0.1:8080)\n"
    "  --region R         S3 region (default us-east-1)\n"
    "  --path-style       address the bucket in the path (default with --endpoint)\n"
    "  --virtual-host     address the bucket in the host name\n"
    "  --concurrency N    parallel transfers (default 8)\n"
    "  --json             (list) machine-readable output\n";

/* URL with any userinfo replaced by "***", in buf (entries stored before it was refused). */
static const char *redacted(char *buf, size_t cap, const char *url)
{
    const char *at = cli_url_userinfo(url);
    if (!at)
        return url;
    snprintf(buf, cap, "%.*s***%s", (int)(strstr(url, "://") + 3 - url), url, at);
    return buf;
}

static int remote_add(int argc, char **argv)
{
    static const struct option opts[] = {
        { "endpoint", required_argument, NULL, 'e' },    { "region", required_argument, NULL, 'r' },
        { "path-style", no_argument, NULL, 'p' },        { "virtual-host", no_argument, NULL, 'v' },
        { "concurrency", required_argument, NULL, 'c' }, { NULL, 0, NULL, 0 }
    };
    struct cairn_remote_config cfg;
    struct cairn_repo *repo = NULL;
    char *scheme = NULL, *a = NULL, *b = NULL;
    int c, rc, error;
    long n;

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
        case 'v':
            cfg.path_style = -1;
            break;
        case 'c':
            if ((n = cli_parse_count(optarg)) < 1 || n > 256)
                return cli_usage("remote", "--concurrency takes a number from 1 to 256");
            cfg.concurrency = (int)n;
            break;
        default:
            return cli_usage("remote", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage("remote", "give a name and a URL: remote add NAME URL");
    if (cairn_name_valid(argv[optind], "remote name") < 0)
        return cli_fail(CAIRN_EINVALID);
    if (cfg.endpoint && strncmp(cfg.endpoint, "http://", 7) && strncmp(cfg.endpoint, "https://", 8))
        return cli_usage("remote", "--endpoint takes an http:// or https:// URL");
    if ((cfg.endpoint && cli_url_userinfo(cfg.endpoint)) || cli_url_userinfo(argv[optind + 1]))
        return cli_usage("remote", "%s", cli_url_userinfo_refusal);
    if ((error = cairn_remote_parse_url(&scheme, &a, &b, argv[optind + 1])) < 0)
        return cli_fail(error);
    free(scheme);
    free(a);
    free(b);
    snprintf(cfg.name, sizeof(cfg.name), "%s", argv[optind]);
    cfg.url = argv[optind + 1];
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    error = cairn_registry_remote_add(cairn_repo_registry(repo), &cfg);
    cairn_repo_free(repo);
    if (error < 0)
        return cli_fail(error);
    printf("added remote '%s' (%s)\n", cfg.name, cfg.url);
    return EXIT_OK;
}

static int list_cb(const struct cairn_remote_config *c, void *payload)
{
    json_t *arr = payload;
    char ub[2048], eb[2048];
    const char *url = redacted(ub, sizeof(ub), c->url);
    const char *endpoint = c->endpoint ? redacted(eb, sizeof(eb), c->endpoint) : NULL;
    if (arr) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(c->name));
        json_object_set_new(o, "url", json_string(url));
        json_object_set_new(o, "endpoint", endpoint ? json_string(endpoint) : json_null());
        json_object_set_new(o, "region", c->region ? json_string(c->region) : json_null());
        json_object_set_new(o, "path_style",
                            json_string(c->path_style > 0   ? "path"
                                        : c->path_style < 0 ? "virtual-host"
                                                            : "auto"));
        json_object_set_new(o, "concurrency", json_integer(c->concurrency));
        json_array_append_new(arr, o);
    } else {
        printf("%-16s %s", c->name, url);
        if (endpoint)
            printf("  endpoint=%s", endpoint);
        if (c->region)
            printf("  region=%s", c->region);
        if (c->concurrency)
            printf("  concurrency=%d", c->concurrency);
        putchar('\n');
    }
    return 0;
}

static int remote_list(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    json_t *arr = NULL;
    int rc, error;

    if (argc == 2 && !strcmp(argv[1], "--json"))
        arr = json_array();
    else if (argc != 1)
        return cli_usage("remote", "remote list takes only --json");
    if ((rc = cli_open_repo(&repo)) != 0) {
        json_decref(arr);
        return rc;
    }
    error = cairn_registry_remote_list(cairn_repo_registry(repo), list_cb, arr);
    cairn_repo_free(repo);
    if (error < 0) {
        json_decref(arr);
        return cli_fail(error);
    }
    if (arr)
        cli_print_json(arr);
    return EXIT_OK;
}

static int remote_remove(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_registry *r;
    int rc, error;

    if (argc != 2 || argv[1][0] == '-')
        return cli_usage("remote", "give the name of the remote to remove");
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    r = cairn_repo_registry(repo);
    if ((error = cairn_registry_begin(r)) == 0) {
        if ((error = cairn_registry_remote_remove(r, argv[1])) < 0)
            cairn_registry_rollback(r);
        else
            error = cairn_registry_commit(r);
    }
    cairn_repo_free(repo);
    if (error < 0)
        return cli_fail(error);
    printf("removed remote '%s'\n", argv[1]);
    return EXIT_OK;
}

int cmd_remote(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage("remote", "give a subcommand: add, list or remove");
    if (!strcmp(argv[1], "add"))
        return remote_add(argc - 1, argv + 1);
    if (!strcmp(argv[1], "list"))
        return remote_list(argc - 1, argv + 1);
    if (!strcmp(argv[1], "remove") || !strcmp(argv[1], "rm"))
        return remote_remove(argc - 1, argv + 1);
    return cli_usage("remote", "unknown subcommand '%s'", argv[1]);
}
