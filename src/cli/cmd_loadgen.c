/*
 * cairn loadgen: open-loop OIP v2 traffic for the rows of a labelled CSV,
 * with the labels posted to a feedback endpoint after a delay (issue #9).
 * The work is in lib/serve/loadgen.c; this file parses options, stops early
 * on SIGINT/SIGTERM, and prints the summary per served version.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "opt.h"
#include "serve/loadgen.h"

const char cmd_loadgen_summary[] = "send OIP v2 traffic at a set rate, with delayed labels";
const char cmd_loadgen_help[] =
    "Send one OIP v2 inference request per row of the dataset (cycling through\n"
    "the rows) to POST /v2/models/NAME/infer at a fixed rate for a fixed time,\n"
    "open-loop: requests go out on schedule whatever the server does. Each\n"
    "answer's X-Cairn-Version and X-Request-Id are read; with --feedback-delay\n"
    "the row's label is posted as {\"request_id\": ID, \"label\": L} that many\n"
    "seconds later (with Authorization: Bearer $CAIRN_TOKEN when that is set).\n"
    "A request due while --concurrency requests are in flight is skipped and\n"
    "counted. Prints requests, errors by status, latency p50/p99 and accuracy\n"
    "against the labels per served version (docs/eval.md).\n";

enum {
    LG_URL,
    LG_MODEL,
    LG_DATA,
    LG_LABEL,
    LG_RATE,
    LG_DURATION,
    LG_FB_DELAY,
    LG_FB_URL,
    LG_STICKY,
    LG_CONCURRENCY,
    LG_JSON
};
const struct cli_opt cmd_loadgen_opts[] = {
    [LG_URL] = { CLI_OPT_STRING, "url", 0, "URL",
                 "http://HOST:PORT (with --model) or .../v2/models/NAME", CLI_OPT_REQUIRED },
    [LG_MODEL] = { CLI_OPT_STRING, "model", 0, "NAME", "model name", 0 },
    [LG_DATA] = { CLI_OPT_STRING, "data", 0, "PATH",
                  "CSV/TSV file or directory with a label column", CLI_OPT_REQUIRED },
    [LG_LABEL] = { CLI_OPT_STRING, "label-column", 0, "C", "label column name (default: label)",
                   0 },
    [LG_RATE] = { CLI_OPT_STRING, "rate", 0, "R", "requests per second", CLI_OPT_REQUIRED },
    [LG_DURATION] = { CLI_OPT_STRING, "duration", 0, "S",
                      "seconds to send for; the run then stops by itself", CLI_OPT_REQUIRED },
    [LG_FB_DELAY] = { CLI_OPT_STRING, "feedback-delay", 0, "S",
                      "post each label S seconds after its answer", 0 },
    [LG_FB_URL] = { CLI_OPT_STRING, "feedback-url", 0, "URL",
                    "where to post (default: URL's host + /api/v1/feedback)", 0 },
    [LG_STICKY] = { CLI_OPT_STRING, "sticky-header", 0, "H",
                    "send header H: user-K, K cycling over 100 keys", 0 },
    [LG_CONCURRENCY] = { CLI_OPT_STRING, "concurrency", 0, "N",
                         "requests in flight at most (default 256)", 0 },
    [LG_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "print the report as JSON", 0 },
    CLI_OPTS_END,
};

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

/* The options into `o`; EXIT_OK or a usage error. */
static int loadgen_opts(struct cairn_loadgen_opts *o, const struct cli_parsed *a)
{
    long n;

    o->url = a->v[LG_URL].str;
    o->model = a->v[LG_MODEL].str;
    o->data_path = a->v[LG_DATA].str;
    if (a->v[LG_LABEL].count)
        o->label_column = a->v[LG_LABEL].str;
    if (parse_seconds(&o->rate, a->v[LG_RATE].str) < 0 || o->rate <= 0)
        return cli_usage("loadgen", "--rate takes a number above 0");
    if (parse_seconds(&o->duration_s, a->v[LG_DURATION].str) < 0 || o->duration_s <= 0)
        return cli_usage("loadgen", "--duration takes seconds above 0");
    if (a->v[LG_FB_DELAY].count) {
        if (parse_seconds(&o->feedback_delay_s, a->v[LG_FB_DELAY].str) < 0)
            return cli_usage("loadgen", "--feedback-delay takes seconds");
        o->feedback = true;
    }
    if (a->v[LG_FB_URL].count) {
        o->feedback_url = a->v[LG_FB_URL].str;
        o->feedback = true;
    }
    o->sticky_header = a->v[LG_STICKY].str;
    if (a->v[LG_CONCURRENCY].count) {
        if ((n = cli_parse_count(a->v[LG_CONCURRENCY].str)) <= 0)
            return cli_usage("loadgen", "--concurrency takes a whole number above 0");
        o->concurrency = (size_t)n;
    }
    return EXIT_OK;
}

int cmd_loadgen(int argc, char **argv)
{
    struct cairn_loadgen_opts o;
    struct cairn_loadgen_report *r = NULL;
    struct sigaction sa, old_int, old_term;
    struct cli_parsed args;
    bool json;
    const char *token;
    int error, rc;

    cairn_loadgen_opts_init(&o);
    if ((rc = cli_opt_parse(&args, "loadgen", cmd_loadgen_opts, argc, argv)) != 0)
        return rc;
    json = args.v[LG_JSON].count > 0;
    if ((rc = loadgen_opts(&o, &args)) != 0)
        goto done;
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
    if (error < 0) {
        rc = cli_fail(error);
    } else if (json) {
        char *s = NULL;
        json_error_t jerr;
        if ((error = cairn_loadgen_report_json(&s, r)) < 0)
            rc = cli_fail(error);
        else
            cli_print_json(json_loads(s, 0, &jerr));
        free(s);
    } else {
        print_report(r);
    }
    cairn_loadgen_report_free(r);
done:
    cli_parsed_release(&args);
    return rc;
}
