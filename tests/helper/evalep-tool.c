/*
 * cairn-evalep-tool: the library behind `cairn eval --endpoint`
 * (include/cairn/evalep.h) from the shell, for tests/e2e/t4100 until the
 * command carries the flag, and for poking at a server by hand.
 *
 *   cairn-evalep-tool --url URL [--model NAME] --data PATH [--batch N]
 *       [--concurrency N] [--perturb gaussian:S] [--seed N]
 *       [--label-column C] [--match-index] [--report]
 *
 * Prints the flat metrics JSON (or, with --report, the whole report) on
 * stdout; on failure prints "cairn-evalep-tool: MESSAGE" and exits 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/evalep.h"
#include "cairn/gate.h"

static int fail(int error)
{
    fprintf(stderr, "cairn-evalep-tool: %s\n", cairn_error_last());
    (void)error;
    return 1;
}

static long count(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (!*s || *end || v < 0) ? -1 : v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = { { "url", required_argument, NULL, 'u' },
                                          { "model", required_argument, NULL, 'm' },
                                          { "data", required_argument, NULL, 'd' },
                                          { "batch", required_argument, NULL, 'b' },
                                          { "concurrency", required_argument, NULL, 'c' },
                                          { "perturb", required_argument, NULL, 'p' },
                                          { "seed", required_argument, NULL, 's' },
                                          { "label-column", required_argument, NULL, 'l' },
                                          { "match-index", no_argument, NULL, 'i' },
                                          { "report", no_argument, NULL, 'r' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_evalep_opts o;
    struct cairn_evalep_result *res = NULL;
    struct cairn_values m;
    const char *url = NULL, *data = NULL;
    char *json = NULL;
    int c, error, report = 0;
    long n;

    cairn_evalep_opts_init(&o);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'm':
            o.model = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'b':
        case 'c':
        case 's':
            if ((n = count(optarg)) < 0) {
                fprintf(stderr, "cairn-evalep-tool: bad number '%s'\n", optarg);
                return 2;
            }
            if (c == 'b')
                o.batch_size = (size_t)n;
            else if (c == 'c')
                o.concurrency = (size_t)n;
            else
                o.seed = (uint64_t)n;
            break;
        case 'p':
            if ((error = cairn_evalep_parse_perturb(&o.perturb_sigma, optarg)) < 0)
                return fail(error);
            break;
        case 'l':
            o.label_column = optarg;
            break;
        case 'i':
            o.match_index = true;
            break;
        case 'r':
            report = 1;
            break;
        default:
            fprintf(stderr,
                    "usage: cairn-evalep-tool --url URL [--model NAME] --data PATH "
                    "[--batch N] [--concurrency N] [--perturb gaussian:S] [--seed N] "
                    "[--label-column C] [--match-index] [--report]\n");
            return 2;
        }
    }
    if (!url || !data) {
        fprintf(stderr, "cairn-evalep-tool: --url and --data are required\n");
        return 2;
    }
    if ((error = cairn_evalep_run(&res, data, url, &o)) < 0)
        return fail(error);
    cairn_values_init(&m);
    if (report)
        error = cairn_evalep_result_json(&json, res);
    else if ((error = cairn_evalep_result_metrics(&m, res)) == 0)
        error = cairn_values_to_json(&json, &m);
    cairn_values_release(&m);
    cairn_evalep_result_free(res);
    if (error < 0)
        return fail(error);
    printf("%s\n", json);
    free(json);
    return 0;
}
