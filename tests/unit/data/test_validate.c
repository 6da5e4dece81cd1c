/*
 * Unit tests for lib/data/schema.c and lib/data/validate.c: every schema
 * mistake reported with its line and column, and the exact failure counts
 * and example lines of a validation over a small hand-made dataset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/data.h"
#include "data/schema.h"
#include "util/fs.h"

static void schema_error(const char *text, const char *msg)
{
    struct cairn_data_schema *s = (void *)1;
    int r = cairn_data_schema_parse(&s, "s.yaml", text, strlen(text));
    if (r != CAIRN_EINVALID)
        fail_msg("schema '%s': got %d", text, r);
    assert_null(s);
    if (!strstr(cairn_error_last(), msg))
        fail_msg("message '%s' lacks '%s'", cairn_error_last(), msg);
}

static void test_schema_ok(void **state)
{
    (void)state;
    const char *text =
        "columns:\n"
        "  pixel_0: {type: float, range: [0, 16], max_null_rate: 0.0}\n"
        "  label:   {type: category, values: [0,1,2,3,4,5,6,7,8,9], required: true}\n"
        "  id:      {type: int, unique: true, values: [3, 1, 2]}\n"
        "  name:    {type: string, regex: '^[a-z]+$'}\n"
        "rows: {min: 100, max: 1000000}\n"
        "label: {column: label, min_class_share: 0.05}\n"
        "nulls: ['', NA]\n";
    struct cairn_data_schema *s;
    assert_int_equal(cairn_data_schema_parse(&s, "s.yaml", text, strlen(text)), 0);
    assert_int_equal(s->ncols, 4);
    assert_string_equal(s->cols[0].name, "pixel_0");
    assert_int_equal(s->cols[0].type, CAIRN_DATA_FLOAT);
    assert_true(s->cols[0].has_range && s->cols[0].min == 0 && s->cols[0].max == 16);
    assert_true(s->cols[0].has_null_rate && s->cols[0].max_null_rate == 0);
    assert_int_equal(s->cols[1].nvalues, 10);
    assert_true(s->cols[1].required);
    assert_null(s->cols[1].numvalues);
    assert_true(s->cols[2].unique);
    assert_true(s->cols[2].numvalues[0] == 1 && s->cols[2].numvalues[2] == 3);
    assert_true(s->cols[3].has_regex);
    assert_int_equal(s->cols[3].line, 5);
    assert_int_equal(s->cols[3].col, 3);
    assert_true(s->has_rows_min && s->rows_min == 100 && s->rows_max == 1000000);
    assert_int_equal(s->label, 1);
    assert_true(s->min_class_share == 0.05);
    assert_int_equal(s->nnulls, 2);
    assert_true(cairn__schema_is_null(s, "NA", 2));
    assert_true(cairn__schema_is_null(s, "", 0));
    assert_false(cairn__schema_is_null(s, "N", 1));
    cairn_data_schema_free(s);
    cairn_data_schema_free(NULL);
}

static void test_schema_errors(void **state)
{
    (void)state;
    schema_error("", "s.yaml: empty schema");
    schema_error("- a\n", "s.yaml:1:1: expected a mapping");
    schema_error("rows: {min: 1}\n", "schema needs a 'columns' mapping");
    schema_error("columns: {}\n", "s.yaml:1:10: 'columns' is empty");
    schema_error("columns:\n  a: {type: float}\nbogus: 1\n", "s.yaml:3:1: unknown key 'bogus'");
    schema_error("columns:\n  a: {type: float, rnage: [0, 1]}\n",
                 "s.yaml:2:20: unknown key 'rnage'");
    schema_error("columns:\n  a: {type: double}\n", "s.yaml:2:13: unknown type 'double'");
    schema_error("columns:\n  a: {required: true}\n", "s.yaml:2:3: column 'a' needs a type");
    schema_error("columns:\n  a: float\n", "s.yaml:2:6: expected a mapping");
    schema_error("columns:\n  a: {type: float, range: [0]}\n",
                 "s.yaml:2:27: range is [min, max], found 1 items");
    schema_error("columns:\n  a: {type: float, range: [2, 1]}\n", "empty range");
    schema_error("columns:\n  a: {type: float, range: [0, x]}\n", "s.yaml:2:31: expected a number");
    schema_error("columns:\n  a: {type: string, range: [0, 1]}\n", "range needs an int or float");
    schema_error("columns:\n  a: {type: int, regex: 'x'}\n", "regex needs a string");
    schema_error("columns:\n  a: {type: string, regex: '(['}\n", "s.yaml:2:28: bad regex '(['");
    /* Regexes whose compilation would take gigabytes (fuzz_schema's finding). */
    schema_error("columns:\n  a: {type: string, regex: '^[a-z]++++++++++$'}\n", "too complex");
    schema_error("columns:\n  a: {type: string, regex: 'a{1000}'}\n", "too complex");
    schema_error("columns:\n  a: {type: string, regex: 'a{99999999999999999999999}'}\n",
                 "too complex");
    schema_error("columns:\n  a: {type: string, regex: '((((a+)+)+)+)+'}\n", "too complex");
    schema_error("columns:\n  a: {type: string, regex: '(ab){50}'}\n", "too complex");
    {
        /* Ordinary patterns still pass, brackets with quantifier characters included. */
        struct cairn_data_schema *ok = NULL;
        const char *t = "columns:\n  a: {type: string, regex: '^[+*?{]+(-[a-z]{2,8})*\\.x{3}$'}\n";
        assert_int_equal(cairn_data_schema_parse(&ok, "s.yaml", t, strlen(t)), 0);
        cairn_data_schema_free(ok);
    }
    schema_error("columns:\n  a: {type: int, values: [1, x]}\n", "s.yaml:2:30: expected a number");
    schema_error("columns:\n  a: {type: int, values: []}\n", "values is empty");
    schema_error("columns:\n  a: {type: int, required: maybe}\n",
                 "s.yaml:2:28: expected true or false");
    schema_error("columns:\n  a: {type: int, max_null_rate: 2}\n",
                 "expected a rate between 0 and 1");
    schema_error("columns:\n  a: {type: int}\nlabel: {column: b}\n",
                 "s.yaml:3:17: label column 'b' is not in 'columns'");
    schema_error("columns:\n  a: {type: int}\nrows: {min: -1}\n", "s.yaml:3:13: expected a count");
    schema_error("columns:\n  a: {type: int}\nrows: {min: 5, max: 4}\n", "rows: min is above max");
    schema_error("columns:\n  a: {type: int}\n  a: {type: int}\n", "s.yaml:3:3:");
    schema_error("columns: [\n", "s.yaml:");
}

static void test_parsers(void **state)
{
    (void)state;
    long long i;
    double d;
    bool b;
    assert_int_equal(cairn__parse_int(&i, "-42", 3), 0);
    assert_true(i == -42);
    assert_int_equal(cairn__parse_int(&i, "9223372036854775807", 19), 0);
    assert_int_equal(cairn__parse_int(&i, "-9223372036854775808", 20), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(cairn__parse_int(&i, "9223372036854775808", 19), -1);
    assert_int_equal(cairn__parse_int(&i, "1.0", 3), -1);
    assert_int_equal(cairn__parse_int(&i, "-", 1), -1);
    assert_int_equal(cairn__parse_int(&i, "", 0), -1);
    assert_int_equal(cairn__parse_float(&d, "1.5e3", 5), 0);
    assert_true(d == 1500);
    assert_int_equal(cairn__parse_float(&d, "-inf", 4), 0);
    assert_int_equal(cairn__parse_float(&d, "NaN", 3), 0);
    assert_int_equal(cairn__parse_float(&d, "1,5", 3), -1);
    assert_int_equal(cairn__parse_float(&d, " 1", 2), -1);
    assert_int_equal(cairn__parse_float(&d, "0x10", 4), -1);
    assert_int_equal(cairn__parse_bool(&b, "Yes", 3), 0);
    assert_true(b);
    assert_int_equal(cairn__parse_bool(&b, "0", 1), 0);
    assert_false(b);
    assert_int_equal(cairn__parse_bool(&b, "2", 1), -1);
}

static void test_strmap(void **state)
{
    (void)state;
    struct cairn__strmap m;
    size_t idx;
    bool ins;
    char key[16];
    cairn__strmap_init(&m, 1000, 0);
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(cairn__strmap_add(&m, &idx, &ins, key, (size_t)n), 0);
        assert_true(ins);
        assert_int_equal(idx, i);
    }
    assert_int_equal(cairn__strmap_add(&m, &idx, &ins, "k7", 2), 0);
    assert_false(ins);
    assert_int_equal(idx, 7);
    assert_int_equal(cairn__strmap_find(&m, "k999", 4), 999);
    assert_int_equal(cairn__strmap_find(&m, "k1000", 5), -1);
    assert_string_equal(cairn__strmap_key(&m, 123), "k123");
    assert_int_equal(cairn__strmap_add(&m, &idx, &ins, "new", 3), CAIRN_ENOMEM);
    cairn__strmap_release(&m);
}

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    assert_non_null(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
}

static const struct cairn_data_check *find(const struct cairn_data_report *r, const char *col,
                                           const char *rule)
{
    for (size_t i = 0; i < r->nchecks; i++) {
        const struct cairn_data_check *c = &r->checks[i];
        if (strcmp(c->rule, rule) == 0 &&
            ((!col && !c->column) || (col && c->column && strcmp(col, c->column) == 0)))
            return c;
    }
    fail_msg("no check %s/%s", col ? col : "-", rule);
    return NULL;
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-test-data-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    return cairn_fs_rm_rf(tmpdir);
}

static void test_validate_counts(void **state)
{
    (void)state;
    const char *schema_text =
        "columns:\n"
        "  x:     {type: float, range: [0, 16], max_null_rate: 0.2}\n"
        "  label: {type: category, values: [a, b, c], required: true}\n"
        "  id:    {type: int, unique: true}\n"
        "  name:  {type: string, regex: '^[a-z]+$'}\n"
        "  flag:  {type: bool}\n"
        "rows: {min: 10}\n"
        "label: {column: label, min_class_share: 0.2}\n";
    /* Line numbers:   1 header, then data on lines 2..9. */
    write_file("d.csv",
               "id,x,label,name,flag,extra\n"
               "1,0.5,a,abc,true,z\n"           /* 2 ok */
               "2,17,b,abc,false,z\n"           /* 3 range */
               "3,,a,Abc,yes,z\n"               /* 4 null x, regex */
               "3,x1,a,abc,maybe,z\n"           /* 5 dup id, type x, type flag */
               "4,-1,,abc,0,z\n"                /* 6 range, required label */
               "5,nan,d,abc,1,z\n"              /* 7 range (nan), values */
               "\"6\",\"2\",\"a\",\"Q1\",t,z\n" /* 8 regex, quoted */
               "3,1,b,abc,f,z\n");              /* 9 dup id */
    struct cairn_data_schema *s;
    struct cairn_data_report *r;
    char path[256];
    assert_int_equal(cairn_data_schema_parse(&s, "s.yaml", schema_text, strlen(schema_text)), 0);
    snprintf(path, sizeof(path), "%s/d.csv", tmpdir);
    assert_int_equal(cairn_data_validate(&r, path, s), 0);
    assert_false(r->passed);
    assert_int_equal(r->rows, 8);
    assert_int_equal(r->nfiles, 1);

    const struct cairn_data_check *c = find(r, "x", "range");
    assert_int_equal(c->failed, 3);
    assert_int_equal(c->checked, 6);
    assert_int_equal(c->nexamples, 3);
    assert_int_equal(c->examples[0].line, 3);
    assert_int_equal(c->examples[1].line, 6);
    assert_int_equal(c->examples[2].line, 7);
    c = find(r, "x", "type");
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->examples[0].line, 5);
    c = find(r, "x", "null_rate");
    assert_true(c->passed); /* 1 of 8 */
    assert_string_equal(c->observed, "0.125");
    c = find(r, "label", "required");
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->examples[0].line, 6);
    c = find(r, "label", "values");
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->examples[0].line, 7);
    c = find(r, "id", "unique");
    assert_int_equal(c->failed, 2);
    assert_int_equal(c->examples[0].line, 5);
    assert_int_equal(c->examples[1].line, 9);
    c = find(r, "name", "regex");
    assert_int_equal(c->failed, 2);
    assert_int_equal(c->examples[0].line, 4);
    assert_int_equal(c->examples[1].line, 8);
    c = find(r, "flag", "type");
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->examples[0].line, 5);
    c = find(r, NULL, "rows");
    assert_false(c->passed);
    assert_string_equal(c->observed, "8");
    /* labels: a a a a b d? no: d fails values but still counts as a class. */
    c = find(r, "label", "class_share");
    assert_false(c->passed);
    assert_non_null(strstr(c->message, "'c' 0"));
    c = find(r, "id", "present");
    assert_true(c->passed);
    c = find(r, NULL, "parse");
    assert_true(c->passed);

    char *json;
    assert_int_equal(cairn_data_report_json(&json, r), 0);
    assert_non_null(strstr(json, "\"rule\": \"range\""));
    assert_non_null(strstr(json, "\"line\": 3"));
    free(json);
    cairn_data_report_free(r);
    cairn_data_schema_free(s);
}

static void test_validate_dir_missing_and_broken(void **state)
{
    (void)state;
    const char *schema_text =
        "columns:\n"
        "  a: {type: int, required: true}\n"
        "  b: {type: int}\n";
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
    assert_int_equal(mkdir(sub, 0777), 0);
    write_file("sub/1.csv", "a,b\n1,2\n3,4\n");
    write_file("sub/2.tsv", "a\n5\n");                 /* b missing from the header */
    write_file("sub/3.csv", "b,a\n1,2\n3,4,5\n6,7\n"); /* ragged at line 3 */
    write_file("sub/notes.txt", "not data\n");
    struct cairn_data_schema *s;
    struct cairn_data_report *r;
    assert_int_equal(cairn_data_schema_parse(&s, "s.yaml", schema_text, strlen(schema_text)), 0);
    assert_int_equal(cairn_data_validate(&r, sub, s), 0);
    assert_false(r->passed);
    assert_int_equal(r->nfiles, 3);
    assert_non_null(strstr(r->files[1], "2.tsv"));
    assert_int_equal(r->rows, 4);
    const struct cairn_data_check *c = find(r, "b", "present");
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->checked, 3);
    assert_int_equal(c->examples[0].file, 1);
    assert_int_equal(c->examples[0].line, 1);
    c = find(r, NULL, "parse");
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->checked, 3);
    assert_non_null(strstr(c->message, "3.csv:3: record has 3 fields, header has 2"));
    c = find(r, "a", "type");
    assert_int_equal(c->checked, 4);
    assert_int_equal(c->failed, 0);
    cairn_data_report_free(r);

    assert_int_equal(cairn_data_validate(&r, "/nonexistent/dir", s), CAIRN_ENOTFOUND);
    assert_null(r);
    char empty[128];
    snprintf(empty, sizeof(empty), "%s/empty", tmpdir);
    assert_int_equal(mkdir(empty, 0777), 0);
    assert_int_equal(cairn_data_validate(&r, empty, s), CAIRN_ENOTFOUND);
    assert_non_null(strstr(cairn_error_last(), "no .csv or .tsv file"));
    cairn_data_schema_free(s);
}

static void test_validate_pass_and_unique_many(void **state)
{
    (void)state;
    const char *schema_text =
        "columns:\n"
        "  id: {type: int, unique: true, range: [0, 100000]}\n"
        "rows: {min: 1, max: 100000}\n"
        "nulls: [NA]\n";
    char path[256];
    FILE *f;
    snprintf(path, sizeof(path), "%s/many.csv", tmpdir);
    assert_non_null(f = fopen(path, "w"));
    fputs("id\n", f);
    for (int i = 0; i < 50000; i++)
        fprintf(f, "%d\n", i);
    fclose(f);
    struct cairn_data_schema *s;
    struct cairn_data_report *r;
    assert_int_equal(cairn_data_schema_parse(&s, "s.yaml", schema_text, strlen(schema_text)), 0);
    assert_int_equal(cairn_data_validate(&r, path, s), 0);
    assert_true(r->passed);
    assert_int_equal(r->rows, 50000);
    assert_int_equal(find(r, "id", "unique")->checked, 50000);
    cairn_data_report_free(r);
    cairn_data_schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_ok),
        cmocka_unit_test(test_schema_errors),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_validate_counts),
        cmocka_unit_test(test_validate_dir_missing_and_broken),
        cmocka_unit_test(test_validate_pass_and_unique_many),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
