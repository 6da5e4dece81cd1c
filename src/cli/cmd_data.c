/*
 * cairn data validate|drift: dataset checks (issue #8). A dataset REF is
 * checked out into a temporary directory, verified like any checkout, then
 * read by lib/data; an argument containing '/' is read directly as a file or
 * directory path (refs never contain '/'). Exit 3 when validation fails or
 * drift exceeds the thresholds.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/data.h"
#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/yaml.h"

const char cmd_data_summary[] = "validate a dataset against a schema, or measure drift";
const char cmd_data_help[] =
    "usage: cairn data validate REF --schema FILE [--json]\n"
    "       cairn data drift REF1 REF2 [--thresholds FILE] [--schema FILE] [--psi X]\n"
    "                        [--ks-statistic X] [--ks-pvalue X] [--chi2-pvalue X]\n"
    "                        [--cramers-v X] [--json]\n"
    "\n"
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
    "\n"
    "  --schema FILE      the YAML schema (drift: optional, fixes column types)\n"
    "  --thresholds FILE  YAML with psi, ks_statistic, ks_pvalue, chi2_pvalue,\n"
    "                     cramers_v, ignore: [columns]; flags override it\n"
    "  --json             print the report as JSON (docs/data.md)\n"
    "\n"
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
    const char *tmpdir = getenv("TMPDIR");
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
    if (cairn_buf_printf(&b, "%s/cairn-data-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp") < 0)
        return cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
    if (!mkdtemp(b.ptr)) {
        rc = cli_fail(cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", b.ptr));
        cairn_buf_release(&b);
        return rc;
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

static int run_validate(int argc, char **argv)
{
    static const struct option opts[] = { { "schema", required_argument, NULL, 's' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_repo *repo = NULL;
    struct cairn_data_schema *schema = NULL;
    struct cairn_data_report *rep = NULL;
    struct dataset d = { 0 };
    const char *schema_path = NULL;
    int c, json = 0, rc = EXIT_OK, error;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 's')
            schema_path = optarg;
        else if (c == 'j')
            json = 1;
        else
            return cli_usage("data", "unknown option or missing value '%s'", argv[optind - 1]);
    }
    if (optind != argc - 1)
        return cli_usage("data",
                         optind >= argc ? "which dataset? give a REF" : "too many arguments");
    if (!schema_path)
        return cli_usage("data", "validate needs --schema FILE");
    if ((error = cairn_data_schema_load(&schema, schema_path)) < 0) {
        rc = error == CAIRN_EINVALID ? (cli_fail(error), EXIT_USAGE) : cli_fail(error);
        goto done;
    }
    if ((rc = dataset_get(&d, &repo, argv[optind])) != 0)
        goto done;
    if ((error = cairn_data_validate(&rep, d.path, schema)) < 0) {
        rc = cli_fail(error);
        goto done;
    }
    /* A dataset version (not a plain path) keeps its verdict for gates. */
    if (d.tmp && (error = record_validation(repo, argv[optind], schema_path, rep)) < 0) {
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
        printf("%s: %zu file%s, %llu rows, %zu checks: %s\n", argv[optind], rep->nfiles,
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

static int run_drift(int argc, char **argv)
{
    static const struct option opts[] = { { "schema", required_argument, NULL, 's' },
                                          { "thresholds", required_argument, NULL, 't' },
                                          { "psi", required_argument, NULL, 'p' },
                                          { "ks-statistic", required_argument, NULL, 'k' },
                                          { "ks-pvalue", required_argument, NULL, 'K' },
                                          { "chi2-pvalue", required_argument, NULL, 'c' },
                                          { "cramers-v", required_argument, NULL, 'v' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_repo *repo = NULL;
    struct cairn_data_schema *schema = NULL;
    struct cairn_drift_report *rep = NULL;
    struct cairn_drift_thresholds t;
    struct dataset a = { 0 }, b = { 0 };
    const char *schema_path = NULL, *thr_path = NULL;
    const char *flag_val[5] = { NULL };
    static const char *const flag_name[5] = { "psi", "ks-statistic", "ks-pvalue", "chi2-pvalue",
                                              "cramers-v" };
    int c, json = 0, rc = EXIT_OK, error;

    cairn_drift_thresholds_init(&t);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            schema_path = optarg;
            break;
        case 't':
            thr_path = optarg;
            break;
        case 'p':
            flag_val[0] = optarg;
            break;
        case 'k':
            flag_val[1] = optarg;
            break;
        case 'K':
            flag_val[2] = optarg;
            break;
        case 'c':
            flag_val[3] = optarg;
            break;
        case 'v':
            flag_val[4] = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            return cli_usage("data", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage("data", "drift compares two datasets: give REF1 REF2");
    if (thr_path && (error = cairn_drift_thresholds_load(&t, thr_path)) < 0) {
        rc = error == CAIRN_EINVALID ? (cli_fail(error), EXIT_USAGE) : cli_fail(error);
        goto done;
    }
    {
        double *fields[5] = { &t.psi, &t.ks_statistic, &t.ks_pvalue, &t.chi2_pvalue, &t.cramers_v };
        for (int i = 0; i < 5; i++)
            if (flag_val[i] && (rc = parse_threshold(fields[i], flag_name[i], flag_val[i])) != 0)
                goto done;
    }
    if (schema_path && (error = cairn_data_schema_load(&schema, schema_path)) < 0) {
        rc = error == CAIRN_EINVALID ? (cli_fail(error), EXIT_USAGE) : cli_fail(error);
        goto done;
    }
    if ((rc = dataset_get(&a, &repo, argv[optind])) != 0 ||
        (rc = dataset_get(&b, &repo, argv[optind + 1])) != 0)
        goto done;
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
        printf("%s -> %s: %llu -> %llu rows: %s\n\n", argv[optind], argv[optind + 1],
               (unsigned long long)rep->rows_ref, (unsigned long long)rep->rows_cur,
               rep->drifted ? "DRIFT" : "no drift");
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
    if (rep->drifted)
        rc = EXIT_CHECK;
done:
    cairn_drift_report_free(rep);
    cairn_data_schema_free(schema);
    cairn_drift_thresholds_release(&t);
    dataset_release(&a);
    dataset_release(&b);
    cairn_repo_free(repo);
    return rc;
}

int cmd_data(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage("data", "give a subcommand: validate or drift");
    if (strcmp(argv[1], "validate") == 0)
        return run_validate(argc - 1, argv + 1);
    if (strcmp(argv[1], "drift") == 0)
        return run_drift(argc - 1, argv + 1);
    return cli_usage("data", "unknown subcommand '%s' (expected validate or drift)", argv[1]);
}
