/*
 * cairn rollout start|status|pause|resume|promote|abort: drive rollouts in a
 * running `cairn serve` through its control API (src/cli/serve_api.h).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cairn/repo.h"
#include "cli.h"
#include "serve/plan.h"
#include "serve_api.h"
#include "util/buf.h"
#include "util/fs.h"

const char cmd_rollout_summary[] = "start, watch and steer rollouts in cairn serve";
const char cmd_rollout_help[] =
    "usage: cairn rollout start REF --alias ALIAS [--plan FILE] [--policy FILE]\n"
    "                           [--force --reason TEXT] [--server URL] [--json]\n"
    "       cairn rollout status [NAME] [--server URL] [--json]\n"
    "       cairn rollout pause|resume|promote|abort NAME [--server URL] [--json]\n"
    "\n"
    "start      move ALIAS of REF's model to REF progressively, by the plan\n"
    "           (docs/serving.md; default: canary 10%, 50%, 100%). REF must have\n"
    "           passed the gate of ALIAS's policy, as for cairn promote\n"
    "status     phase, step, weights and live figures per version\n"
    "pause      stop advancing (analysis and automatic rollback go on)\n"
    "resume     advance again\n"
    "promote    move the alias to the candidate now (needs the promote role)\n"
    "abort      send all traffic back to the stable version now\n"
    "\n"
    "  --policy FILE require a passed gate of this policy instead of the alias's\n"
    "                (promote role; the daemon must be able to read FILE)\n"
    "  --force       start without a passed gate (promote role); needs --reason,\n"
    "                and the audit log records forced=true with the reason\n"
    "  --reason TEXT why (with --force)\n"
    "  --server URL  the daemon (default $CAIRN_SERVER, else http://127.0.0.1:8080)\n"
    "  --json        print the daemon's JSON answer\n"
    "\n"
    "The bearer token comes from CAIRN_TOKEN (see cairn token create).\n"
    "Exit status: 0 done, 3 refused by the release check (no passed gate),\n"
    "2 usage, 1 other errors (refused roles included).\n";

static void print_version(const char *what, json_t *v)
{
    json_t *acc = json_object_get(v, "accuracy"), *er = json_object_get(v, "error_rate"),
           *p99 = json_object_get(v, "latency_p99_ms"),
           *sh = json_object_get(v, "shadow_agreement");
    if (!json_is_object(v))
        return;
    printf("%-10s %-20s %-9s %8lld req", what, json_string_value(json_object_get(v, "version")),
           json_is_true(json_object_get(v, "ready")) ? "ready" : "not-ready",
           (long long)json_integer_value(json_object_get(v, "requests")));
    if (json_is_number(er))
        printf("  errors %.4f", json_number_value(er));
    if (json_is_number(p99))
        printf("  p99 %.3f ms", json_number_value(p99));
    if (json_is_number(acc))
        printf("  accuracy %.4f (%lld labels)", json_number_value(acc),
               (long long)json_integer_value(json_object_get(v, "labels")));
    if (json_is_number(sh))
        printf("  shadow agreement %.4f", json_number_value(sh));
    printf("\n");
}

static void print_status(json_t *m)
{
    json_t *strategy = json_object_get(m, "strategy");
    const char *reason = json_string_value(json_object_get(m, "reason"));
    const char *last = json_string_value(json_object_get(m, "last_analysis"));
    printf("%s@%s: %s", json_string_value(json_object_get(m, "model")),
           json_string_value(json_object_get(m, "alias")),
           json_string_value(json_object_get(m, "phase")));
    if (json_is_string(strategy))
        printf(", %s step %lld of %lld, candidate weight %g%%", json_string_value(strategy),
               (long long)json_integer_value(json_object_get(m, "step")),
               (long long)json_integer_value(json_object_get(m, "steps")),
               json_number_value(json_object_get(m, "weight")));
    printf("\n");
    print_version("stable", json_object_get(m, "stable"));
    print_version("candidate", json_object_get(m, "candidate"));
    print_version("previous", json_object_get(m, "previous"));
    if (last && *last)
        printf("last analysis: %s\n", last);
    if (reason && *reason)
        printf("reason: %s\n", reason);
    if (json_is_string(json_object_get(m, "forced")))
        printf("forced past the release check: %s\n",
               json_string_value(json_object_get(m, "forced")));
}

int cmd_rollout(int argc, char **argv)
{
    static const struct option opts[] = {
        { "alias", required_argument, NULL, 'a' },  { "plan", required_argument, NULL, 'p' },
        { "server", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
        { "force", no_argument, NULL, 'f' },        { "reason", required_argument, NULL, 'r' },
        { "policy", required_argument, NULL, 'P' }, { NULL, 0, NULL, 0 }
    };
    const char *sub, *alias = NULL, *plan = NULL, *server = NULL, *reason = NULL, *policy = NULL;
    char path[200], policy_real[PATH_MAX];
    int c, json_out = 0, rc, force = 0;
    void *answer = NULL;

    if (argc < 2)
        return cli_usage("rollout",
                         "which subcommand? (start, status, pause, resume, promote, "
                         "abort)");
    sub = argv[1];
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            alias = optarg;
            break;
        case 'p':
            plan = optarg;
            break;
        case 's':
            server = optarg;
            break;
        case 'j':
            json_out = 1;
            break;
        case 'f':
            force = 1;
            break;
        case 'r':
            reason = optarg;
            break;
        case 'P':
            policy = optarg;
            break;
        default:
            return cli_usage("rollout", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    server = cli_api_server(server);
    if (!strcmp(sub, "start")) {
        json_t *body;
        struct cairn_buf fb = CAIRN_BUF_INIT;
        char *text = NULL, *s;
        size_t len = 0;
        struct cairn_plan p;
        int error;
        if (optind != argc - 1)
            return cli_usage("rollout", "rollout start takes one REF");
        if (!alias)
            return cli_usage("rollout", "give the alias to roll out: --alias ALIAS");
        if (force && (!reason || !*reason))
            return cli_usage("rollout", "--force needs --reason TEXT");
        if (reason && !force)
            return cli_usage("rollout", "--reason goes with --force");
        /* The daemon may run elsewhere in the tree: send the file's absolute path. */
        if (policy && !realpath(policy, policy_real)) {
            cli_error("cannot open '%s': %s", policy, strerror(errno));
            return EXIT_USAGE;
        }
        if (cairn_name_valid(alias, "alias") < 0)
            return cli_fail(CAIRN_EINVALID);
        if (plan) {
            if ((error = cairn_fs_read_file(&fb, plan, 64 << 10)) < 0)
                return cli_fail(error);
            text = cairn_buf_detach(&fb, &len);
            if (!text)
                text = calloc(1, 1);
            /* Check it here too, so mistakes show with the file's name. */
            if ((error = cairn_plan_parse(&p, plan, text, len)) < 0) {
                free(text);
                return cli_fail(error);
            }
        }
        body = json_object();
        json_object_set_new(body, "ref", json_string(argv[optind]));
        json_object_set_new(body, "alias", json_string(alias));
        if (policy)
            json_object_set_new(body, "policy", json_string(policy_real));
        if (force) {
            json_object_set_new(body, "force", json_true());
            json_object_set_new(body, "reason", json_string(reason));
        }
        if (text) {
            json_object_set_new(body, "plan", json_stringn(text, len));
            json_object_set_new(body, "plan_name", json_string(plan));
        }
        free(text);
        s = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        rc = cli_api_call(&answer, server, "POST", "/rollouts", s, NULL);
        free(s);
    } else if (force || reason || policy) {
        return cli_usage("rollout", "--force, --reason and --policy go with rollout start");
    } else if (!strcmp(sub, "status")) {
        if (optind < argc - 1)
            return cli_usage("rollout", "rollout status takes at most one NAME");
        if (optind == argc - 1) {
            if (cairn_name_valid(argv[optind], "model name") < 0)
                return cli_fail(CAIRN_EINVALID);
            snprintf(path, sizeof(path), "/rollouts/%s", argv[optind]);
        } else {
            snprintf(path, sizeof(path), "/rollouts");
        }
        rc = cli_api_call(&answer, server, "GET", path, NULL, NULL);
    } else if (!strcmp(sub, "pause") || !strcmp(sub, "resume") || !strcmp(sub, "promote") ||
               !strcmp(sub, "abort")) {
        if (optind != argc - 1)
            return cli_usage("rollout", "rollout %s takes one model NAME", sub);
        if (cairn_name_valid(argv[optind], "model name") < 0)
            return cli_fail(CAIRN_EINVALID);
        snprintf(path, sizeof(path), "/rollouts/%s/%s", argv[optind], sub);
        rc = cli_api_call(&answer, server, "POST", path, "{}", NULL);
    } else {
        return cli_usage("rollout", "unknown subcommand '%s'", sub);
    }
    if (rc != EXIT_OK)
        return rc;
    if (json_out) {
        cli_print_json(answer);
    } else if (json_is_array((json_t *)answer)) {
        size_t i;
        json_t *m;
        json_array_foreach((json_t *)answer, i, m) print_status(m);
        json_decref(answer);
    } else {
        print_status(answer);
        json_decref(answer);
    }
    return EXIT_OK;
}
