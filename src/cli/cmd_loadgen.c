/*
 * cairn loadgen: open-loop OIP v2 traffic for the rows of a labelled CSV,
 * with the labels posted to a feedback endpoint after a delay (issue #9).
 * The work is in lib/serve/loadgen.c; this file parses options, stops early
 * on SIGINT/SIGTERM, and prints the summary per served version.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "serve/loadgen.h"

const char cmd_loadgen_summary[] = "send OIP v2 traffic at a set rate, with delayed labels";
const char cmd_loadgen_help[] =
    "usage: cairn loadgen --url URL [--model NAME] --data FILE.csv --rate R --duration S\n"
    "                     [--feedback-delay S] [--feedback-url URL] [--sticky-header H]\n"
    "                     [--concurrency N] [--label-column C] [--json]\n"
    "\n"
    "Send one OIP v2 inference request per row of the dataset (cycling through\n"
    "the rows) to POST /v2/models/NAME/infer at a fixed rate for a fixed time,\n"
    "open-loop: requests go out on schedule whatever the server does. Each\n"
    "answer's X-Cairn-Version and X-Request-Id are read; with --feedback-delay\n"
    "the row's label is posted as {\"request_id\": ID, \"label\": L} that many\n"
    "seconds later. Prints requests, errors by status, latency p50/p99 and\n"
    "accuracy against the labels per served version (docs/eval.md).\n"
    "\n"
    "  --url URL           http://HOST:PORT (with --model) or .../v2/models/NAME\n"
    "  --model NAME        model name\n"
    "  --data PATH         CSV/TSV file or directory with a label column\n"
    "  --label-column C    label column name (default: label)\n"
    "  --rate R            requests per second\n"
    "  --duration S        seconds to send for; the run then stops by itself\n"
    "  --feedback-delay S  post each label S seconds after its answer\n"
    "  --feedback-url URL  where to post (default: URL's host + /api/v1/feedback);\n"
    "                      Authorization: Bearer $CAIRN_TOKEN when that is set\n"
    "  --sticky-header H   send header H: user-K, K cycling over 100 keys\n"
    "  --concurrency N     requests in flight at most (default 256); a request due\n"
    "                      while N are in flight is skipped and counted\n"
    "  --json              print the report as JSON\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int parse_seconds(double *out, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= 0))
        return -1;
    *out = v;
    return 0;
}

static void print_report(const struct cairn_loadgen_report *r)
{
    printf("%-16s %8s %8s %8s %10s %10s %9s  %s\n", "VERSION", "REQUESTS", "OK", "ERRORS", "P50_MS",
           "P99_MS", "ACCURACY", "ERRORS_BY_STATUS");
    for (size_t i = 0; i < r->nversions; i++) {
        const struct cairn_loadgen_version *v = &r->versions[i];
        char errs[256] = "";
        size_t n = 0;
        uint64_t nerr = v->requests - v->ok;
        for (size_t j = 0; j < v->nstatus && n < sizeof(errs); j++) {
            int w;
            if (v->status[j].status)
                w = snprintf(errs + n, sizeof(errs) - n, "%s%d:%llu", n ? " " : "",
                             v->status[j].status, (unsigned long long)v->status[j].count);
            else
                w = snprintf(errs + n, sizeof(errs) - n, "%sno-answer:%llu", n ? " " : "",
                             (unsigned long long)v->status[j].count);
            n += (size_t)(w > 0 ? w : 0);
        }
        if (v->bad_body && n < sizeof(errs))
            snprintf(errs + n, sizeof(errs) - n, "%sbad-body:%llu", n ? " " : "",
                     (unsigned long long)v->bad_body);
        printf("%-16.16s %8llu %8llu %8llu %10.2f %10.2f %9.4f  %s\n",
               *v->version ? v->version : "(no answer)", (unsigned long long)v->requests,
               (unsigned long long)v->ok, (unsigned long long)nerr, v->latency_p50_ms,
               v->latency_p99_ms, v->accuracy, errs[0] ? errs : "-");
    }
    printf("sent %llu of %llu scheduled in %.1f s (%llu skipped, %llu without answer)\n",
           (unsigned long long)r->sent, (unsigned long long)r->scheduled, r->elapsed_s,
           (unsigned long long)r->skipped, (unsigned long long)r->no_answer);
    if (r->feedback_url)
        printf(
            "feedback to %s: %llu sent, %llu ok, %llu failed, %llu dropped, %llu unsent, "
            "%llu answers without X-Request-Id\n",
            r->feedback_url, (unsigned long long)r->fb_sent, (unsigned long long)r->fb_ok,
            (unsigned long long)r->fb_failed, (unsigned long long)r->fb_dropped,
            (unsigned long long)r->fb_unsent, (unsigned long long)r->fb_no_id);
    if (r->fb_first_error)
        printf("first feedback error: %s\n", r->fb_first_error);
}

int cmd_loadgen(int argc, char **argv)
{
    static const struct option opts[] = { { "url", required_argument, NULL, 'u' },
                                          { "model", required_argument, NULL, 'm' },
                                          { "data", required_argument, NULL, 'd' },
                                          { "label-column", required_argument, NULL, 'c' },
                                          { "rate", required_argument, NULL, 'r' },
                                          { "duration", required_argument, NULL, 'D' },
                                          { "feedback-delay", required_argument, NULL, 'f' },
                                          { "feedback-url", required_argument, NULL, 'F' },
                                          { "sticky-header", required_argument, NULL, 's' },
                                          { "concurrency", required_argument, NULL, 'n' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_loadgen_opts o;
    struct cairn_loadgen_report *r = NULL;
    struct sigaction sa, old_int, old_term;
    bool json = false, have_rate = false, have_duration = false;
    const char *token;
    long n;
    int c, error;

    cairn_loadgen_opts_init(&o);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            o.url = optarg;
            break;
        case 'm':
            o.model = optarg;
            break;
        case 'd':
            o.data_path = optarg;
            break;
        case 'c':
            o.label_column = optarg;
            break;
        case 'r':
            if (parse_seconds(&o.rate, optarg) < 0 || o.rate <= 0)
                return cli_usage("loadgen", "--rate takes a number above 0");
            have_rate = true;
            break;
        case 'D':
            if (parse_seconds(&o.duration_s, optarg) < 0 || o.duration_s <= 0)
                return cli_usage("loadgen", "--duration takes seconds above 0");
            have_duration = true;
            break;
        case 'f':
            if (parse_seconds(&o.feedback_delay_s, optarg) < 0)
                return cli_usage("loadgen", "--feedback-delay takes seconds");
            o.feedback = true;
            break;
        case 'F':
            o.feedback_url = optarg;
            o.feedback = true;
            break;
        case 's':
            o.sticky_header = optarg;
            break;
        case 'n':
            if ((n = cli_parse_count(optarg)) <= 0)
                return cli_usage("loadgen", "--concurrency takes a whole number above 0");
            o.concurrency = (size_t)n;
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_usage("loadgen", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage("loadgen", "unexpected argument '%s'", argv[optind]);
    if (!o.url || !o.data_path || !have_rate || !have_duration)
        return cli_usage("loadgen", "--url, --data, --rate and --duration are required");
    token = getenv("CAIRN_TOKEN");
    if (token && *token)
        o.token = token;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    o.stop = &stop_flag;
    error = cairn_loadgen_run(&r, &o);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (error < 0)
        return cli_fail(error);
    if (json) {
        char *s = NULL;
        json_error_t jerr;
        if ((error = cairn_loadgen_report_json(&s, r)) < 0) {
            cairn_loadgen_report_free(r);
            return cli_fail(error);
        }
        cli_print_json(json_loads(s, 0, &jerr));
        free(s);
    } else {
        print_report(r);
    }
    cairn_loadgen_report_free(r);
    return EXIT_OK;
}
