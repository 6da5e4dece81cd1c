/*
 * cairn data validate|drift: dataset checks (issue #8). A dataset REF is
 * checked out into a temporary directory, verified like any checkout, then
 * read by lib/data; an argument containing '/' is read directly as a file or
 * directory path (refs never contain '/'). Exit 3 when validation fails or
 * drift exceeds the thresholds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/data.h"
#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "serve/http.h"
#include "serve_api.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/yaml.h"

const char cmd_data_summary[] = "validate a dataset against a schema, or measure drift";
const char cmd_data_help[] =
    "A dataset is a CSV/TSV file with a header row, or a directory of them.\n"
    "REF names a dataset version; an argument containing '/' is read as a path.\n"
    "\n"
    "validate  checks every row against the YAML schema (types, required,\n"
    "          ranges, allowed values, regexes, uniqueness, null rates, row\n"
    "          count, label class balance) and prints each failed rule with its\n"
    "          count and example lines. Exit 3 when a rule fails.\n"
    "drift     compares REF2 against the reference REF1 per column: PSI and the\n"
    "          Kolmogorov-Smirnov test for numbers, PSI and chi-square for\n"
    "          categories. Exit 3 when a column drifts beyond the thresholds\n"
    "          (defaults psi 0.2, ks-statistic 0.1 with ks-pvalue 0.01,\n"
    "          cramers-v 0.1 with chi2-pvalue 0.01; a negative value disables).\n"
    "          With --live MODEL instead of REF2, the current side is the window\n"
    "          of inputs `cairn serve` keeps for MODEL (token from CAIRN_TOKEN,\n"
    "          read role).\n"
    "\n"
    "The --thresholds file is YAML with psi, ks_statistic, ks_pvalue,\n"
    "chi2_pvalue, cramers_v and ignore: [columns]; the flags override it.\n"
    "See docs/data.md for the schema format and the statistics.\n";

struct dataset {
    char *path; /* what lib/data reads */
    char *tmp;  /* checkout directory to delete, or NULL */
};

static void dataset_release(struct dataset *d)
{
    if (d->tmp)
        cairn_fs_rm_rf(d->tmp);
    free(d->tmp);
    free(d->path);
    d->tmp = d->path = NULL;
}

/* Resolve REF (checked out into a temporary directory) or a path. */
static int dataset_get(struct dataset *d, struct cairn_repo **repo, const char *arg)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    int rc;

    memset(d, 0, sizeof(*d));
    if (strchr(arg, '/')) {
        if (!(d->path = strdup(arg)))
            return cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
        return 0;
    }
    if (!*repo && (rc = cli_open_repo(repo)) != 0)
        return rc;
    if ((rc = cairn_fs_mkdtemp(&b, NULL, "cairn-data")) < 0) {
        cairn_buf_release(&b);
        return cli_fail(rc);
    }
    d->tmp = cairn_buf_detach(&b, NULL);
    if (!(d->path = strdup(d->tmp)))
        return cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
    if ((rc = cairn_repo_checkout(*repo, arg, d->tmp, NULL, NULL)) < 0)
        return cli_fail(rc);
    return 0;
}

/* Show a path relative to the checkout it came from. */
static const char *shown(const struct dataset *d, const char *path)
{
    size_t n = strlen(d->path);
    if (d->tmp && strncmp(path, d->path, n) == 0 && path[n] == '/')
        return path + n + 1;
    return path;
}

/*
 * Store the verdict on the dataset version (what `data: validated` gate
 * checks read) and audit it, in one transaction.
 */
static int record_validation(struct cairn_repo *repo, const char *ref, const char *schema_path,
                             const struct cairn_data_report *rep)
{
    struct cairn_registry *r = cairn_repo_registry(repo);
    struct cairn_version v;
    char *json = NULL, subject[96], details[256], hex[CAIRN_OID_HEXSZ + 1];
    int error;

    if ((error = cairn_repo_resolve(repo, ref, &v)) < 0)
        return error;
    if ((error = cairn_data_report_json(&json, rep)) < 0)
        goto done;
    snprintf(subject, sizeof(subject), "%s@v%d", v.model, v.number);
    snprintf(details, sizeof(details), "{\"id\":\"%s\",\"passed\":%s}", cairn_oid_fmt(hex, &v.id),
             rep->passed ? "true" : "false");
    if ((error = cairn_registry_begin(r)) < 0)
        goto done;
    if ((error = cairn_registry_data_validation_add(r, &v.id, schema_path, rep->passed, json,
                                                    cairn_repo_user(repo))) < 0 ||
        (error = cairn_registry_audit_append(r, cairn_repo_user(repo), "data-validate", subject,
                                             details)) < 0) {
        cairn_registry_rollback(r);
        goto done;
    }
    error = cairn_registry_commit(r);
done:
    free(json);
    cairn_version_release(&v);
    return error;
}

enum { VALIDATE_REF, VALIDATE_SCHEMA, VALIDATE_JSON };
static const struct cli_opt validate_opts[] = {
    [VALIDATE_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "the dataset version, or a path",
                       CLI_OPT_REQUIRED },
    [VALIDATE_SCHEMA] = { CLI_OPT_STRING, "schema", 0, "FILE", "the YAML schema",
                          CLI_OPT_REQUIRED },
    [VALIDATE_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "print the report as JSON (docs/data.md)",
                        0 },
    CLI_OPTS_END,
};

static int run_validate(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_data_schema *schema = NULL;
    struct cairn_data_report *rep = NULL;
    struct dataset d = { 0 };
    struct cli_parsed args;
    const char *schema_path, *ref;
    int json, rc = EXIT_OK, error;

    if ((rc = cli_opt_parse(&args, "data", validate_opts, argc, argv)) != 0)
        return rc;
    ref = args.v[VALIDATE_REF].str;
    schema_path = args.v[VALIDATE_SCHEMA].str;
    json = args.v[VALIDATE_JSON].count > 0;
    if ((error = cairn_data_schema_load(&schema, schema_path)) < 0) {
        rc = error == CAIRN_EINVALID ? (cli_fail(error), EXIT_USAGE) : cli_fail(error);
        goto done;
    }
    if ((rc = dataset_get(&d, &repo, ref)) != 0)
        goto done;
    if ((error = cairn_data_validate(&rep, d.path, schema)) < 0) {
        rc = cli_fail(error);
        goto done;
    }
    /* A dataset version (not a plain path) keeps its verdict for gates. */
    if (d.tmp && (error = record_validation(repo, ref, schema_path, rep)) < 0) {
        rc = cli_fail(error);
        goto done;
    }
    if (json) {
        char *s;
        for (size_t i = 0; i < rep->nfiles; i++) {
            const char *p = shown(&d, rep->files[i]);
            if (p != rep->files[i])
                memmove(rep->files[i], p, strlen(p) + 1);
        }
        if ((error = cairn_data_report_json(&s, rep)) < 0) {
            rc = cli_fail(error);
            goto done;
        }
        puts(s);
        free(s);
    } else {
        size_t nfailed = 0;
        for (size_t i = 0; i < rep->nchecks; i++)
            nfailed += !rep->checks[i].passed;
        printf("%s: %zu file%s, %llu rows, %zu checks: %s\n", ref, rep->nfiles,
               rep->nfiles == 1 ? "" : "s", (unsigned long long)rep->rows, rep->nchecks,
               rep->passed ? "passed" : "FAILED");
        if (nfailed)
            printf("\n%-20s %-12s %-24s %-14s %s\n", "COLUMN", "RULE", "EXPECTED", "FAILED",
                   "WHERE");
        for (size_t i = 0; i < rep->nchecks; i++) {
            const struct cairn_data_check *k = &rep->checks[i];
            char cnt[48];
            if (k->passed)
                continue;
            if (k->observed)
                snprintf(cnt, sizeof(cnt), "got %s", k->observed);
            else
                snprintf(cnt, sizeof(cnt), "%llu/%llu", (unsigned long long)k->failed,
                         (unsigned long long)k->checked);
            printf("%-20s %-12s %-24s %-14s", k->column ? k->column : "-", k->rule,
                   k->expect ? k->expect : "", cnt);
            for (size_t e = 0; e < k->nexamples; e++)
                printf("%s%s:%llu", e ? ", " : "", shown(&d, rep->files[k->examples[e].file]),
                       (unsigned long long)k->examples[e].line);
            if (k->message)
                printf("%s%s", k->nexamples ? "; " : "", k->message);
            putchar('\n');
        }
        for (size_t i = 0; i < rep->nnotes; i++)
            printf("note: %s\n", rep->notes[i]);
    }
    if (!rep->passed)
        rc = EXIT_CHECK;
done:
    cairn_data_report_free(rep);
    cairn_data_schema_free(schema);
    dataset_release(&d);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return rc;
}

static int parse_threshold(double *out, const char *opt, const char *v)
{
    double d;
    if (cairn_parse_double(&d, v) < 0)
        return cli_usage("data", "--%s wants a number, not '%s'", opt, v);
    *out = d;
    return 0;
}

/* Whether a header line is "f0,f1,...,fN-1": the daemon knew no feature names. */
static size_t numbered_columns(const char *line, size_t len)
{
    size_t n = 0, i = 0;
    while (i < len) {
        char want[32];
        int w = snprintf(want, sizeof(want), "f%zu", n);
        if (len - i < (size_t)w || memcmp(line + i, want, (size_t)w))
            return 0;
        i += (size_t)w;
        n++;
        if (i < len && line[i++] != ',')
            return 0;
    }
    return n;
}

static int put_csv_name(struct cairn_buf *b, const char *s)
{
    if (*s && !strpbrk(s, ",\"\r\n"))
        return cairn_buf_puts(b, s);
    cairn_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"')
            cairn_buf_putc(b, '"');
        cairn_buf_putc(b, *s);
    }
    return cairn_buf_putc(b, '"');
}

/*
 * Fetch MODEL's input window from the daemon into a temporary CSV file. When
 * the daemon numbered the columns (f0..fN-1), name them after the
 * reference's columns but the label, in order, if there are as many.
 */
static int live_get(struct dataset *d, uint64_t *rows, const char *server, const char *model,
                    const struct dataset *ref, const char *label)
{
    const char *token = getenv("CAIRN_TOKEN"), *nl, *h;
    struct cairn_http_result res;
    struct cairn_buf url = CAIRN_BUF_INIT, hdr = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
    char **cols = NULL;
    size_t ncols = 0, n, srvlen = strlen(server);
    int rc = EXIT_OK, error;

    memset(d, 0, sizeof(*d));
    cairn_http_result_init(&res);
    if (cairn_name_valid(model, "model name") < 0)
        return cli_usage("data", "%s", cairn_error_last());
    if (strncmp(server, "http://", 7))
        return cli_usage("data", "server '%s' is not an http:// URL", server);
    if (token && strlen(token) > 400)
        return cli_usage("data", "CAIRN_TOKEN is too long");
    while (srvlen > 7 && server[srvlen - 1] == '/')
        srvlen--;
    cairn_buf_printf(&url, "%.*s/api/v1/models/%s/inputs", (int)srvlen, server, model);
    if (token && *token)
        cairn_buf_printf(&hdr, "Authorization: Bearer %s\r\n", token);
    if (!url.ptr || (token && *token && !hdr.ptr)) {
        rc = cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
        goto done;
    }
    if ((error = cairn_http_request_sync(&res, url.ptr, "GET", hdr.ptr, NULL, 0, 60000)) < 0) {
        cli_error("cannot reach cairn serve at %s: %s", server, cairn_error_last());
        rc = EXIT_RUNTIME;
        goto done;
    }
    if (res.status != 200) {
        cairn_buf_putc(&res.body, '\0');
        cli_error("cannot read the inputs of '%s' (HTTP %d): %s%s", model, res.status,
                  res.body.ptr ? res.body.ptr : "",
                  res.status == 401 && !(token && *token) ? " (set CAIRN_TOKEN)" : "");
        rc = EXIT_RUNTIME;
        goto done;
    }
    h = cairn_http_result_header(&res, "X-Cairn-Window-Rows");
    *rows = h ? strtoull(h, NULL, 10) : 0;
    if (!*rows || !res.body.len) {
        cli_error("no inputs of '%s' sampled yet: send it some inference requests", model);
        rc = EXIT_RUNTIME;
        goto done;
    }
    nl = memchr(res.body.ptr, '\n', res.body.len);
    n = numbered_columns(res.body.ptr, nl ? (size_t)(nl - res.body.ptr) : res.body.len);
    if (n && nl && cairn_data_columns(&cols, &ncols, ref->path) == 0) {
        size_t kept = 0;
        for (size_t i = 0; i < ncols; i++)
            kept += strcmp(cols[i], label) != 0;
        if (kept == n) {
            size_t k = 0;
            for (size_t i = 0; i < ncols; i++) {
                if (!strcmp(cols[i], label))
                    continue;
                if (k++)
                    cairn_buf_putc(&out, ',');
                put_csv_name(&out, cols[i]);
            }
            cairn_buf_put(&out, nl, res.body.len - (size_t)(nl - res.body.ptr));
        }
    }
    cairn_error_clear();
    /* url is reused for the temporary path */
    if ((error = cairn_fs_mkdtemp(&url, NULL, "cairn-live")) < 0) {
        rc = cli_fail(error);
        goto done;
    }
    d->tmp = strdup(url.ptr);
    cairn_buf_puts(&url, "/window.csv");
    if (!d->tmp || !(d->path = strdup(url.ptr))) {
        rc = cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
        goto done;
    }
    if ((error = cairn_fs_write_atomic(d->path, out.len ? out.ptr : res.body.ptr,
                                       out.len ? out.len : res.body.len, 0600)) < 0)
        rc = cli_fail(error);
done:
    cairn_data_columns_free(cols, ncols);
    cairn_http_result_release(&res);
    cairn_buf_release(&url);
    cairn_buf_release(&hdr);
    cairn_buf_release(&out);
    return rc;
}

static void print_drift(const struct cairn_drift_report *rep, const char *a, const char *b)
{
    printf("%s -> %s: %llu -> %llu rows: %s\n\n", a, b, (unsigned long long)rep->rows_ref,
           (unsigned long long)rep->rows_cur, rep->drifted ? "DRIFT" : "no drift");
    printf("%-20s %-12s %9s %5s %10s %10s  %s\n", "COLUMN", "KIND", "PSI", "TEST", "STATISTIC",
           "P-VALUE", "VERDICT");
    for (size_t i = 0; i < rep->ncolumns; i++) {
        const struct cairn_drift_column *k = &rep->columns[i];
        const char *verdict = k->drifted ? "DRIFT" : "ok";
        if (k->kind == CAIRN_DRIFT_NUMERIC || k->kind == CAIRN_DRIFT_CATEGORICAL)
            printf("%-20s %-12s %9.4f %5s %10.4g %10.3g  %s", k->name,
                   k->kind == CAIRN_DRIFT_NUMERIC ? "numeric" : "categorical", k->psi,
                   k->kind == CAIRN_DRIFT_NUMERIC ? "ks" : "chi2", k->statistic, k->pvalue,
                   verdict);
        else
            printf("%-20s %-12s %9s %5s %10s %10s  %s", k->name,
                   k->kind == CAIRN_DRIFT_MISSING ? "missing" : "skipped", "-", "-", "-", "-",
                   k->drifted ? "DRIFT" : "skipped");
        if (k->reason)
            printf(" (%s)", k->reason);
        putchar('\n');
    }
    for (size_t i = 0; i < rep->nnotes; i++)
        printf("note: %s\n", rep->notes[i]);
}

enum {
    DRIFT_REF1,
    DRIFT_REF2,
    DRIFT_THRESHOLDS,
    DRIFT_SCHEMA,
    DRIFT_PSI, /* the five thresholds in the order of struct cairn_drift_thresholds */
    DRIFT_KS_STATISTIC,
    DRIFT_KS_PVALUE,
    DRIFT_CHI2_PVALUE,
    DRIFT_CRAMERS_V,
    DRIFT_LIVE,
    DRIFT_SERVER,
    DRIFT_LABEL,
    DRIFT_JSON
};
static const struct cli_opt drift_opts[] = {
    [DRIFT_REF1] = { CLI_OPT_ARG, "REF1", 0, NULL, "the reference dataset", CLI_OPT_REQUIRED },
    [DRIFT_REF2] = { CLI_OPT_ARG, "REF2", 0, NULL, "the current dataset (not with --live)", 0 },
    [DRIFT_THRESHOLDS] = { CLI_OPT_STRING, "thresholds", 0, "FILE",
                           "YAML thresholds; the flags below override it", 0 },
    [DRIFT_SCHEMA] = { CLI_OPT_STRING, "schema", 0, "FILE",
                       "a YAML schema (optional, fixes column types)", 0 },
    [DRIFT_PSI] = { CLI_OPT_STRING, "psi", 0, "X", "population stability index threshold", 0 },
    [DRIFT_KS_STATISTIC] = { CLI_OPT_STRING, "ks-statistic", 0, "X",
                             "Kolmogorov-Smirnov statistic threshold", 0 },
    [DRIFT_KS_PVALUE] = { CLI_OPT_STRING, "ks-pvalue", 0, "X", "Kolmogorov-Smirnov p-value", 0 },
    [DRIFT_CHI2_PVALUE] = { CLI_OPT_STRING, "chi2-pvalue", 0, "X", "chi-square p-value", 0 },
    [DRIFT_CRAMERS_V] = { CLI_OPT_STRING, "cramers-v", 0, "X", "Cramer's V threshold", 0 },
    [DRIFT_LIVE] = { CLI_OPT_STRING, "live", 0, "MODEL",
                     "compare with the live input window of MODEL", 0 },
    [DRIFT_SERVER] = { CLI_OPT_STRING, "server", 0, "URL",
                       "the daemon (default $CAIRN_SERVER, else http://127.0.0.1:8080)", 0 },
    [DRIFT_LABEL] = { CLI_OPT_STRING, "label-column", 0, "C",
                      "the reference's label, not an input (default label)", 0 },
    [DRIFT_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "print the report as JSON (docs/data.md)", 0 },
    CLI_OPTS_END,
};

static int run_drift(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_data_schema *schema = NULL;
    struct cairn_drift_report *rep = NULL;
    const char *live, *server, *label, *ref1, *ref2;
    char live_name[96];
    uint64_t live_rows = 0;
    struct cairn_drift_thresholds t;
    struct dataset a = { 0 }, b = { 0 };
    struct cli_parsed args;
    const char *schema_path, *thr_path;
    int json, rc = EXIT_OK, error;

    cairn_drift_thresholds_init(&t);
    if ((rc = cli_opt_parse(&args, "data", drift_opts, argc, argv)) != 0)
        goto done;
    ref1 = args.v[DRIFT_REF1].str;
    ref2 = args.v[DRIFT_REF2].str;
    schema_path = args.v[DRIFT_SCHEMA].str;
    thr_path = args.v[DRIFT_THRESHOLDS].str;
    live = args.v[DRIFT_LIVE].str;
    server = args.v[DRIFT_SERVER].str;
    label = args.v[DRIFT_LABEL].count ? args.v[DRIFT_LABEL].str : "label";
    json = args.v[DRIFT_JSON].count > 0;
    if (live && ref2)
        rc = cli_usage("data", "drift --live compares one dataset with the window: give REF");
    else if (!live && !ref2)
        rc = cli_usage("data", "drift compares two datasets: give REF1 REF2");
    else if (!live && (server || args.v[DRIFT_LABEL].count))
        rc = cli_usage("data", "--server and --label-column go with --live MODEL");
    if (rc)
        goto done;
    if (thr_path && (error = cairn_drift_thresholds_load(&t, thr_path)) < 0) {
        rc = error == CAIRN_EINVALID ? (cli_fail(error), EXIT_USAGE) : cli_fail(error);
        goto done;
    }
    {
        double *fields[5] = { &t.psi, &t.ks_statistic, &t.ks_pvalue, &t.chi2_pvalue, &t.cramers_v };
        for (int i = 0; i < 5; i++)
            if (args.v[DRIFT_PSI + i].count &&
                (rc = parse_threshold(fields[i], drift_opts[DRIFT_PSI + i].name,
                                      args.v[DRIFT_PSI + i].str)) != 0)
                goto done;
    }
    if (schema_path && (error = cairn_data_schema_load(&schema, schema_path)) < 0) {
        rc = error == CAIRN_EINVALID ? (cli_fail(error), EXIT_USAGE) : cli_fail(error);
        goto done;
    }
    if ((rc = dataset_get(&a, &repo, ref1)) != 0)
        goto done;
    if (live) {
        /* The label is an answer, not an input: the window never has it. */
        char **ig = realloc(t.ignore, (t.nignore + 1) * sizeof(*ig));
        if (!ig || !(ig[t.nignore] = strdup(label))) {
            if (ig)
                t.ignore = ig;
            rc = cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
            goto done;
        }
        t.ignore = ig;
        t.nignore++;
        if ((rc = live_get(&b, &live_rows, cli_api_server(server), live, &a, label)) != 0)
            goto done;
        snprintf(live_name, sizeof(live_name), "%s (live)", live);
    } else if ((rc = dataset_get(&b, &repo, ref2)) != 0) {
        goto done;
    }
    if ((error = cairn_data_drift(&rep, a.path, b.path, &t, schema)) < 0) {
        rc = cli_fail(error);
        goto done;
    }
    if (json) {
        char *s;
        if ((error = cairn_drift_report_json(&s, rep)) < 0) {
            rc = cli_fail(error);
            goto done;
        }
        puts(s);
        free(s);
    } else {
        print_drift(rep, ref1, live ? live_name : ref2);
    }
    if (rep->drifted)
        rc = EXIT_CHECK;
done:
    cairn_drift_report_free(rep);
    cairn_data_schema_free(schema);
    cairn_drift_thresholds_release(&t);
    dataset_release(&a);
    dataset_release(&b);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return rc;
}

const struct cli_subcommand cmd_data_subs[] = {
    { "validate", run_validate, "check a dataset against a schema", validate_opts },
    { "drift", run_drift, "compare a dataset with a reference, or with live inputs", drift_opts },
    CLI_SUBCOMMANDS_END,
};

int cmd_data(int argc, char **argv)
{
    return cli_subcommand_run("data", cmd_data_subs, argc, argv);
}
