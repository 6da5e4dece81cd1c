/*
 * Datasets: validation against a YAML schema and drift between two versions
 * (issue #8). A dataset is a CSV/TSV file with a header row, or a directory
 * whose *.csv and *.tsv files (searched recursively, in byte order of their
 * paths) are read one after another as one table. Every function streams the
 * rows once in bounded memory; see docs/data.md for the formats, the
 * statistics and their limits.
 *
 * Reports are plain structs the caller reads and prints, and serialise to a
 * stable JSON document (for --json and for storing with the version). All
 * functions are thread-compatible: distinct objects may be used from
 * distinct threads; a schema may be shared read-only.
 */
#ifndef CAIRN_DATA_H
#define CAIRN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- schema ---------------------------------------------------------- */

enum cairn_data_type {
    CAIRN_DATA_STRING,
    CAIRN_DATA_INT,
    CAIRN_DATA_FLOAT,
    CAIRN_DATA_BOOL,
    CAIRN_DATA_CATEGORY,
};

/* "string", "int", "float", "bool", "category". */
const char *cairn_data_type_name(enum cairn_data_type t);

struct cairn_data_schema;

/*
 * Parse a schema (YAML, format in docs/data.md). A mistake - unknown key,
 * wrong type, bad regex, empty range - fails with CAIRN_EINVALID and the
 * message "NAME:LINE:COL: what". `name` is used in messages. On success the
 * caller owns `*out` and frees it with cairn_data_schema_free().
 */
int cairn_data_schema_parse(struct cairn_data_schema **out, const char *name, const void *data,
                            size_t len);
int cairn_data_schema_load(struct cairn_data_schema **out, const char *path);
void cairn_data_schema_free(struct cairn_data_schema *schema);

/* ---- validation ------------------------------------------------------ */

#define CAIRN_DATA_MAX_EXAMPLES 5

/* A place in the dataset: index into cairn_data_report.files and a physical line. */
struct cairn_data_example {
    size_t file;
    uint64_t line;
};

/*
 * One rule of the schema as checked. Rules: "present" (column in every
 * file's header), "parse" (the file is well-formed CSV; `message` says where
 * it is not), "type", "required", "range", "values", "regex", "unique",
 * "null_rate", "rows", "class_share".
 */
struct cairn_data_check {
    char *column; /* NULL for dataset-level rules (rows, parse) */
    const char *rule;
    char *expect;     /* the rule in words: "float", "[0, 16]", "<= 0.05" */
    char *observed;   /* aggregate rules: what was seen ("0.12"); else NULL */
    char *message;    /* extra explanation (parse errors, class details) or NULL */
    uint64_t checked; /* values (or files, for present/parse) checked */
    uint64_t failed;  /* values that broke the rule */
    bool passed;
    size_t nexamples;
    struct cairn_data_example examples[CAIRN_DATA_MAX_EXAMPLES];
};

struct cairn_data_report {
    bool passed;
    uint64_t rows; /* data rows read (headers excluded) */
    size_t nfiles;
    char **files; /* paths as found, for examples */
    size_t nchecks;
    struct cairn_data_check *checks;
    size_t nnotes;
    char **notes; /* things a reader should know ("'id' uniqueness checked by hash") */
};

/*
 * Validate the file or directory at `path` against `schema`. Returns 0 when
 * the validation ran - whether or not the data passed; see `(*out)->passed` -
 * and a negative CAIRN_E* code when it could not (no such path, no CSV file
 * in a directory, I/O error, out of memory). A malformed CSV file is a failed
 * "parse" check (with the line number in its message), not an error; rows
 * read before the damage are still checked. The caller owns `*out`.
 */
int cairn_data_validate(struct cairn_data_report **out, const char *path,
                        const struct cairn_data_schema *schema);

/* Serialise to JSON (format in docs/data.md); `*out` is a malloc'd string the caller frees. */
int cairn_data_report_json(char **out, const struct cairn_data_report *report);
void cairn_data_report_free(struct cairn_data_report *report);

/* ---- drift ----------------------------------------------------------- */

/*
 * When a column counts as drifted. A value below zero disables that test.
 * Numeric columns: psi > psi, or (KS p-value < ks_pvalue and KS statistic
 * > ks_statistic). Categorical columns: psi > psi, or (chi-square p-value <
 * chi2_pvalue and Cramer's V > cramers_v). Requiring both significance and
 * size keeps large samples from flagging immaterial differences.
 */
struct cairn_drift_thresholds {
    double psi;          /* default 0.2 */
    double ks_statistic; /* default 0.1 */
    double ks_pvalue;    /* default 0.01 */
    double chi2_pvalue;  /* default 0.01 */
    double cramers_v;    /* default 0.1 */
    char **ignore;       /* column names not compared; owned, see _release */
    size_t nignore;
};

void cairn_drift_thresholds_init(struct cairn_drift_thresholds *t);
/*
 * Override fields from a YAML file (keys psi, ks_statistic, ks_pvalue,
 * chi2_pvalue, cramers_v, ignore); errors name file, line and column.
 */
int cairn_drift_thresholds_load(struct cairn_drift_thresholds *t, const char *path);
int cairn_drift_thresholds_parse(struct cairn_drift_thresholds *t, const char *name,
                                 const void *data, size_t len);
void cairn_drift_thresholds_release(struct cairn_drift_thresholds *t);

enum cairn_drift_kind {
    CAIRN_DRIFT_NUMERIC,
    CAIRN_DRIFT_CATEGORICAL,
    CAIRN_DRIFT_MISSING, /* the column is in only one of the two datasets: counts as drift */
    CAIRN_DRIFT_SKIPPED, /* not compared (ignored, empty, or too many distinct strings) */
};

struct cairn_drift_column {
    char *name;
    enum cairn_drift_kind kind;
    uint64_t count_ref, count_cur; /* non-null values seen */
    uint64_t nulls_ref, nulls_cur;
    double psi;
    double statistic; /* KS D (numeric) or chi-square (categorical) */
    double pvalue;
    double cramers_v; /* categorical only */
    unsigned df;      /* chi-square degrees of freedom */
    bool drifted;
    char *reason; /* why drifted or skipped, else NULL */
};

struct cairn_drift_report {
    bool drifted;
    uint64_t rows_ref, rows_cur;
    struct cairn_drift_thresholds thresholds; /* as applied (ignore list not copied) */
    size_t ncolumns;
    struct cairn_drift_column *columns;
    size_t nnotes;
    char **notes;
};

/*
 * Compare dataset `cur` against reference `ref` (files or directories).
 * Columns are numeric when the schema says int or float, or - without a
 * schema (`schema` may be NULL) - when every non-null reference value parses
 * as a number; everything else is categorical. Returns 0 when the
 * comparison ran (see `(*out)->drifted`), a negative code otherwise (a
 * malformed CSV is an error here). The caller owns `*out`.
 */
int cairn_data_drift(struct cairn_drift_report **out, const char *ref, const char *cur,
                     const struct cairn_drift_thresholds *thresholds,
                     const struct cairn_data_schema *schema);
int cairn_drift_report_json(char **out, const struct cairn_drift_report *report);
void cairn_drift_report_free(struct cairn_drift_report *report);

/* ---- live drift ------------------------------------------------------ */

/*
 * The column names of the dataset at `path`: the header of its first file
 * (in the order cairn_data_drift reads them). The caller frees them with
 * cairn_data_columns_free(). CAIRN_ENOTFOUND when there is no header row.
 */
int cairn_data_columns(char ***out, size_t *nout, const char *path);
void cairn_data_columns_free(char **cols, size_t n);

/*
 * The numeric columns of a dataset as sorted samples, the reference side of
 * live drift (docs/data.md): every column whose non-empty values all parse as
 * numbers, in header order, except `skip_column` (the label; may be NULL).
 * Each keeps at most 100,000 values (Algorithm R seeded from the column
 * name); NaN is left out. Read once, in bounded memory. The caller owns
 * `*out`; it is read-only afterwards and may be shared between threads.
 */
struct cairn_data_sample {
    size_t ncols;
    char **names;
    double **values; /* values[i]: counts[i] numbers, ascending */
    size_t *counts;
    uint64_t rows;
};

int cairn_data_numeric_sample(struct cairn_data_sample **out, const char *path,
                              const char *skip_column);
void cairn_data_sample_free(struct cairn_data_sample *s);

#ifdef __cplusplus
}
#endif

#endif
