/*
 * cairn eval REF --cmd 'COMMAND' [--data REF] [--record] [--timeout S]: run
 * the user's evaluation command against a version checked out into a
 * temporary directory (and a dataset version into another), read the flat
 * JSON object of metrics it prints, show them, and with --record store
 * them on the version. Any failure of the command - timeout, non-zero
 * exit, a signal, output that is not such an object - records nothing.
 * With --endpoint URL instead of --cmd, the dataset's rows go to an OIP v2
 * server and the metrics come from lib/gate/evalendpoint.c (docs/eval.md);
 * a failed request means the figures are partial, so nothing is recorded.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/evalep.h"
#include "cairn/gate.h"
#include "cairn/release.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define DEFAULT_TIMEOUT_S 3600

const char cmd_eval_summary[] = "run an evaluation command on a version; record its metrics";
const char cmd_eval_help[] =
    "Two forms: 'cairn eval REF --cmd COMMAND [--data REF]' runs a command of\n"
    "yours; 'cairn eval REF --endpoint URL --data REF' scores a served model.\n"
    "\n"
    "With --cmd, check out version REF into a temporary directory (and the\n"
    "dataset version --data REF into another), then run COMMAND with /bin/sh in\n"
    "the current directory with these variables set:\n"
    "\n"
    "  CAIRN_MODEL_DIR   the version's files\n"
    "  CAIRN_DATA_DIR    the dataset's files (only with --data)\n"
    "  CAIRN_MODEL_REF   NAME@vN of the version;  CAIRN_VERSION_ID its id\n"
    "\n"
    "The command prints one flat JSON object of metrics on stdout, e.g.\n"
    "{\"accuracy\": 0.91, \"latency_p99_ms\": 12.5}; its stderr is passed through.\n"
    "A timeout, a non-zero exit, a crash, or output that is not such an object\n"
    "is an error (exit 1) and nothing is recorded. The temporary directories\n"
    "are removed afterwards.\n"
    "\n"
    "With --endpoint, the dataset's CSV rows (a label column, every other column a\n"
    "feature; docs/eval.md) are sent to the Open Inference Protocol v2 server at\n"
    "URL (http://HOST:PORT, the model being REF's name, or .../v2/models/NAME) and\n"
    "scored: accuracy, precision/recall/F1 (macro and f1_class_K), latency\n"
    "p50/p95/p99, throughput; --json adds the confusion matrix as \"report\". If any\n"
    "request fails the figures are shown but not recorded (exit 1). --perturb\n"
    "gaussian:S also scores inputs with N(0, S * std) noise per feature\n"
    "(robust_accuracy).\n";

enum {
    EVAL_REF,
    EVAL_CMD,
    EVAL_DATA,
    EVAL_RECORD,
    EVAL_TIMEOUT,
    EVAL_JSON,
    EVAL_ENDPOINT,
    EVAL_PERTURB,
    EVAL_BATCH,
    EVAL_CONCURRENCY,
    EVAL_LABEL
};
const struct cli_opt cmd_eval_opts[] = {
    [EVAL_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "the version to evaluate", CLI_OPT_REQUIRED },
    [EVAL_CMD] = { CLI_OPT_STRING, "cmd", 0, "COMMAND", "the evaluation command", 0 },
    [EVAL_DATA] = { CLI_OPT_STRING, "data", 0, "REF",
                    "a dataset version to check out for the command", 0 },
    [EVAL_RECORD] = { CLI_OPT_FLAG, "record", 0, NULL,
                      "store the metrics on the version (source \"eval\")", 0 },
    [EVAL_TIMEOUT] = { CLI_OPT_STRING, "timeout", 0, "SECONDS",
                       "kill the command after this long (default 3600; 0: none)", 0 },
    [EVAL_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                    "print {\"ref\",\"id\",\"metrics\",\"recorded\",\"elapsed\"}", 0 },
    [EVAL_ENDPOINT] = { CLI_OPT_STRING, "endpoint", 0, "URL", "the OIP v2 server", 0 },
    [EVAL_PERTURB] = { CLI_OPT_STRING, "perturb", 0, "gaussian:S",
                       "also score inputs with gaussian noise (robust_accuracy)", 0 },
    [EVAL_BATCH] = { CLI_OPT_STRING, "batch", 0, "N", "rows per request (default 32)", 0 },
    [EVAL_CONCURRENCY] = { CLI_OPT_STRING, "concurrency", 0, "N", "requests in flight (default 4)",
                           0 },
    [EVAL_LABEL] = { CLI_OPT_STRING, "label-column", 0, "C", "the label column (default: label)",
                     0 },
    CLI_OPTS_END,
};

/* A version checked out into a private temporary directory. */
static int checkout_tmp(char **dir, struct cairn_repo *repo, const struct cairn_version *v,
                        const char *what)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    struct cairn_checkout_opts co;
    char hex[CAIRN_OID_HEXSZ + 1];
    struct cli_progress *pb;
    int error;

    memset(&co, 0, sizeof(co));
    *dir = NULL;
    char prefix[64];

    snprintf(prefix, sizeof(prefix), "cairn-eval-%s", what);
    if ((error = cairn_fs_mkdtemp(&b, NULL, prefix)) < 0)
        goto done;
    *dir = cairn_buf_detach(&b, NULL);
    pb = cli_progress_start(what, 0);
    co.progress = cli_progress_cb;
    co.progress_payload = pb;
    error = cairn_repo_checkout(repo, cairn_oid_fmt(hex, &v->id), *dir, &co, NULL);
    cli_progress_finish(pb);
done:
    cairn_buf_release(&b);
    return error;
}

static void print_metrics(const struct cairn_values *m)
{
    for (size_t i = 0; i < m->count; i++) {
        const struct cairn_value *x = &m->items[i];
        if (x->type == CAIRN_VALUE_NUMBER)
            printf("  %-24s %.6g\n", x->name, x->number);
        else if (x->type == CAIRN_VALUE_BOOL)
            printf("  %-24s %s\n", x->name, x->boolean ? "true" : "false");
        else
            printf("  %-24s %s\n", x->name, x->string);
    }
}

/* The numeric options of both forms; EXIT_OK or a usage error. */
static int eval_opts(struct cairn_evalep_opts *ep, long *timeout, const struct cli_parsed *a)
{
    long n;

    if (a->v[EVAL_TIMEOUT].count && (*timeout = cli_parse_count(a->v[EVAL_TIMEOUT].str)) < 0)
        return cli_usage("eval", "--timeout takes whole seconds, not '%s'", a->v[EVAL_TIMEOUT].str);
    if (a->v[EVAL_PERTURB].count &&
        cairn_evalep_parse_perturb(&ep->perturb_sigma, a->v[EVAL_PERTURB].str) < 0)
        return cli_usage("eval", "%s", cairn_error_last());
    for (int k = EVAL_BATCH; k <= EVAL_CONCURRENCY; k++) {
        if (!a->v[k].count)
            continue;
        if ((n = cli_parse_count(a->v[k].str)) <= 0)
            return cli_usage("eval", "--%s takes a whole number above 0", cmd_eval_opts[k].name);
        *(k == EVAL_BATCH ? &ep->batch_size : &ep->concurrency) = (size_t)n;
    }
    if (a->v[EVAL_LABEL].count)
        ep->label_column = a->v[EVAL_LABEL].str;
    return EXIT_OK;
}

int cmd_eval(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_version v, d;
    struct cairn_values m;
    struct cairn_evalcmd_opts eo;
    struct cairn_buf env[4] = { CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT };
    const char *envp[5] = { NULL };
    const char *ref, *cmd, *data, *endpoint;
    struct cairn_evalep_opts ep;
    struct cairn_evalep_result *epr = NULL;
    char *report = NULL;
    struct cli_parsed args;
    char *model_dir = NULL, *data_dir = NULL, hex[CAIRN_OID_HEXSZ + 1], sid[16];
    int record, json, error = 0, rc = EXIT_OK, have_v = 0, have_d = 0, nenv = 0;
    long timeout = DEFAULT_TIMEOUT_S;
    double t0;

    cairn_values_init(&m);
    memset(&eo, 0, sizeof(eo));
    cairn_evalep_opts_init(&ep);
    if ((rc = cli_opt_parse(&args, "eval", cmd_eval_opts, argc, argv)) != 0)
        return rc;
    if ((rc = eval_opts(&ep, &timeout, &args)) != 0)
        goto done;
    ref = args.v[EVAL_REF].str;
    cmd = args.v[EVAL_CMD].str;
    data = args.v[EVAL_DATA].str;
    endpoint = args.v[EVAL_ENDPOINT].str;
    record = args.v[EVAL_RECORD].count > 0;
    json = args.v[EVAL_JSON].count > 0;
    if (endpoint && cmd)
        rc = cli_usage("eval", "give --cmd or --endpoint, not both");
    else if (endpoint && !data)
        rc = cli_usage("eval", "--endpoint needs the dataset: --data REF");
    else if (!endpoint && (!cmd || !*cmd))
        rc = cli_usage("eval", "give the evaluation command with --cmd 'COMMAND'");
    if (rc)
        goto done;
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    if ((error = cairn_repo_resolve(repo, ref, &v)) < 0)
        goto done;
    have_v = 1;
    if (data) {
        if ((error = cairn_repo_resolve(repo, data, &d)) < 0)
            goto done;
        have_d = 1;
    }
    if (endpoint) {
        /* The server holds the model: only the dataset is checked out. */
        if ((error = checkout_tmp(&data_dir, repo, &d, "data")) < 0)
            goto done;
        if (!strstr(endpoint, "/v2/models/"))
            ep.model = v.model;
        t0 = cli_now();
        if ((error = cairn_evalep_run(&epr, data_dir, endpoint, &ep)) < 0 ||
            (error = cairn_evalep_result_metrics(&m, epr)) < 0 ||
            (error = cairn_evalep_result_json(&report, epr)) < 0) {
            cli_error("eval of %s@v%d failed: %s; nothing recorded", v.model, v.number,
                      cairn_error_last());
            error = 0;
            rc = EXIT_RUNTIME;
            goto done;
        }
        if (epr->errors) {
            cli_error("%llu of %llu requests to '%s' failed (first: %s); nothing recorded",
                      (unsigned long long)epr->errors, (unsigned long long)epr->requests, epr->url,
                      epr->first_error ? epr->first_error : "?");
            record = 0;
            rc = EXIT_RUNTIME;
        }
        goto have_metrics;
    }
    if ((error = checkout_tmp(&model_dir, repo, &v, "model")) < 0)
        goto done;
    if (have_d && (error = checkout_tmp(&data_dir, repo, &d, "data")) < 0)
        goto done;
    if ((error = cairn_buf_printf(&env[nenv], "CAIRN_MODEL_DIR=%s", model_dir)) < 0)
        goto done;
    envp[nenv] = env[nenv].ptr;
    nenv++;
    if ((error = cairn_buf_printf(&env[nenv], "CAIRN_MODEL_REF=%s@v%d", v.model, v.number)) < 0)
        goto done;
    envp[nenv] = env[nenv].ptr;
    nenv++;
    if ((error = cairn_buf_printf(&env[nenv], "CAIRN_VERSION_ID=%s", cairn_oid_fmt(hex, &v.id))) <
        0)
        goto done;
    envp[nenv] = env[nenv].ptr;
    nenv++;
    if (data_dir) {
        if ((error = cairn_buf_printf(&env[nenv], "CAIRN_DATA_DIR=%s", data_dir)) < 0)
            goto done;
        envp[nenv] = env[nenv].ptr;
        nenv++;
    }
    eo.command = cmd;
    eo.env = envp;
    eo.timeout_ms = (uint64_t)timeout * 1000;
    t0 = cli_now();
    if ((error = cairn_evalcmd_metrics(&m, &eo)) < 0) {
        cli_error("eval of %s@v%d failed: %s; nothing recorded", v.model, v.number,
                  cairn_error_last());
        error = 0;
        rc = EXIT_RUNTIME;
        goto done;
    }
have_metrics:
    if (!m.count) {
        cli_error("eval of %s@v%d failed: the command printed an empty object; nothing recorded",
                  v.model, v.number);
        rc = EXIT_RUNTIME;
        goto done;
    }
    if (record && (error = cairn_repo_metrics_record(repo, &v, &m, "eval")) < 0)
        goto done;
    if (json) {
        char *text = NULL;
        json_t *o = json_object();
        json_object_set_new(o, "ref", json_sprintf("%s@v%d", v.model, v.number));
        json_object_set_new(o, "id", cli_oid_json(&v.id));
        json_object_set_new(o, "data",
                            have_d ? json_sprintf("%s@v%d", d.model, d.number) : json_null());
        if (cairn_values_to_json(&text, &m) == 0)
            json_object_set_new(o, "metrics", json_loads(text, 0, NULL));
        free(text);
        json_object_set_new(o, "recorded", json_boolean(record));
        if (report)
            json_object_set_new(o, "report", json_loads(report, 0, NULL));
        json_object_set_new(o, "elapsed", json_real(cli_now() - t0));
        cli_print_json(o);
    } else {
        char on[96] = "";
        if (have_d)
            snprintf(on, sizeof(on), " on %s@v%d", d.model, d.number);
        printf("eval %s@v%d (%s)%s: %zu metric%s in %.1fs\n", v.model, v.number,
               cli_short_id(sid, &v.id), on, m.count, m.count == 1 ? "" : "s", cli_now() - t0);
        print_metrics(&m);
        if (record)
            printf("recorded on %s@v%d\n", v.model, v.number);
    }
done:
    if (model_dir)
        cairn_fs_rm_rf(model_dir);
    if (data_dir)
        cairn_fs_rm_rf(data_dir);
    free(model_dir);
    free(data_dir);
    free(report);
    cairn_evalep_result_free(epr);
    for (int i = 0; i < 4; i++)
        cairn_buf_release(&env[i]);
    cairn_values_release(&m);
    if (have_d)
        cairn_version_release(&d);
    if (have_v)
        cairn_version_release(&v);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return error < 0 ? cli_fail(error) : rc;
}
