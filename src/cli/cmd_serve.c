/*
 * cairn serve [--config FILE] [--listen ADDR] [--control-listen ADDR]: run
 * the router daemon (lib/serve/router.h) for the repository until SIGINT or
 * SIGTERM, logging its events on stderr.
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/repo.h"
#include "cli.h"
#include "serve/router.h"

const char cmd_serve_summary[] = "route traffic to model versions and run rollouts";
const char cmd_serve_help[] =
    "usage: cairn serve [--config FILE] [--listen ADDR] [--control-listen ADDR]\n"
    "\n"
    "Serve every model of the repository that has a 'production' alias (or the\n"
    "alias the config names) with the Open Inference Protocol v2, routing each\n"
    "request to the stable version or, during a rollout, to the candidate by the\n"
    "rollout's weights. By default each version in use runs as a child\n"
    "'cairn serve-model' process; the config can bind versions to URLs instead.\n"
    "See docs/serving.md.\n"
    "\n"
    "  --config FILE          serve config (YAML): listen, control_listen, timeout,\n"
    "                         alias, feedback_size, models: {NAME: {alias, bind}}\n"
    "  --listen ADDR          data plane, control API and /metrics\n"
    "                         (default 127.0.0.1:8080)\n"
    "  --control-listen ADDR  serve the control API /api/v1 on its own listener\n"
    "                         (then not on --listen)\n"
    "\n"
    "Routes: POST /v2/models/NAME/infer, GET /v2/models/NAME[/ready],\n"
    "GET /v2/health/live|ready, GET /metrics, /api/v1/... (bearer token).\n";

static void on_log(const char *msg, void *arg)
{
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    (void)arg;
    localtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
    fprintf(stderr, "%s %s\n", ts, msg);
    fflush(stderr);
}

static void on_listening(int port, void *arg)
{
    const char *listen = arg;
    const char *colon = strrchr(listen, ':');
    fprintf(stderr, "cairn serve listening on %.*s:%d\n", (int)(colon - listen), listen, port);
    fflush(stderr);
}

#ifdef CAIRN_TEST_HOOKS
/*
 * Crash tests (tests/e2e/t4003-serve-crash.bats): CAIRN_TEST_CRASH_AT=POINT
 * ends the daemon with _exit(9) at that instant of a registry write, as a
 * power cut would. Only in builds with the tests (meson -Dtests=true).
 */
static const char *crash_at;

static void on_crash_point(const char *point, void *arg)
{
    (void)arg;
    if (crash_at && !strcmp(crash_at, point))
        _exit(9);
}
#endif

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
                                          { "listen", required_argument, NULL, 'l' },
                                          { "control-listen", required_argument, NULL, 'C' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_router_opts ro;
    struct cairn_repo *repo = NULL;
    char exe[PATH_MAX], *workdir = NULL;
    ssize_t n;
    int c, rc, error;

    memset(&ro, 0, sizeof(ro));
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            ro.config_path = optarg;
            break;
        case 'l':
            ro.listen = optarg;
            break;
        case 'C':
            ro.control_listen = optarg;
            break;
        default:
            return cli_usage("serve", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage("serve", "unexpected argument '%s'", argv[optind]);
    if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0) {
        cli_error("cannot find the cairn executable: /proc/self/exe unreadable");
        return EXIT_RUNTIME;
    }
    exe[n] = '\0';
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    workdir = strdup(cairn_repo_workdir(repo));
    cairn_repo_free(repo);
    if (!workdir) {
        cli_error("out of memory");
        return EXIT_RUNTIME;
    }
    signal(SIGPIPE, SIG_IGN);
    ro.workdir = workdir;
    ro.exe = exe;
    ro.log = on_log;
    ro.on_listening = on_listening;
#ifdef CAIRN_TEST_HOOKS
    if ((crash_at = getenv("CAIRN_TEST_CRASH_AT")) && *crash_at)
        ro.crash_point = on_crash_point;
#endif
    ro.arg = (void *)(ro.listen ? ro.listen : "127.0.0.1:8080");
    error = cairn_router_run(&ro);
    free(workdir);
    return error < 0 ? cli_fail(error) : EXIT_OK;
}
