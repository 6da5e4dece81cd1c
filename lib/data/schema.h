/*
 * The parsed form of a dataset schema (include/cairn/data.h), shared by
 * validate.c and drift.c. Parsing is in schema.c; the struct is read-only
 * once built, so one schema may serve several threads.
 */
#ifndef CAIRN_DATA_SCHEMA_H
#define CAIRN_DATA_SCHEMA_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cairn/data.h"
#include "util/buf.h"

struct cairn__column_rule {
    char *name;
    int line, col; /* of the column's key in the schema */
    enum cairn_data_type type;
    bool required;
    bool has_range;
    double min, max;
    char **values; /* allowed values as written; NULL when any value goes */
    size_t nvalues;
    double *numvalues; /* int/float columns: the allowed values as numbers, sorted */
    bool has_null_rate;
    double max_null_rate;
    bool unique;
    bool has_regex;
    char *regex_src;
    regex_t regex;
};

struct cairn_data_schema {
    char *name;
    struct cairn__column_rule *cols;
    size_t ncols;
    bool has_rows_min, has_rows_max;
    uint64_t rows_min, rows_max;
    ssize_t label; /* index into cols of the label column, or -1 */
    double min_class_share;
    char **nulls; /* field texts that mean "no value"; default just "" */
    size_t nnulls;
};

/* Index of the column rule called `name` (len bytes), or -1. */
ssize_t cairn__schema_find(const struct cairn_data_schema *s, const char *name, size_t len);

/* Whether `v` (len bytes) is one of the schema's null spellings. */
bool cairn__schema_is_null(const struct cairn_data_schema *s, const char *v, size_t len);

/*
 * Value parsers used by validation and drift: the whole text must be the
 * number (C locale, no spaces). Return 0 or -1.
 */
int cairn__parse_int(long long *out, const char *s, size_t len);
int cairn__parse_float(double *out, const char *s, size_t len);
/* true/false, yes/no, 1/0, t/f, y/n in any case. */
int cairn__parse_bool(bool *out, const char *s, size_t len);

/* A fast, well-mixed 64-bit hash of a byte string (not flood-resistant; never 0). */
uint64_t cairn__hash64(const void *data, size_t len);

/*
 * A bounded map from byte strings to a 64-bit counter, for allowed values,
 * class counts and category histograms. Keys are copied into an arena.
 * Entries come back in insertion order (index 0 .. n-1).
 */
struct cairn__strmap {
    uint32_t *slots; /* entry index + 1, 0 = empty */
    size_t nslots;
    struct cairn__strmap_entry {
        uint64_t hash;
        size_t off, len;
        uint64_t count;
    } * entries;
    size_t n, cap;
    size_t max_entries;
    struct cairn_buf keys;
};

/* `max_entries` and `max_bytes` (of key text) bound the map; 0 means 1M and 64 MiB. */
void cairn__strmap_init(struct cairn__strmap *m, size_t max_entries, size_t max_bytes);
void cairn__strmap_release(struct cairn__strmap *m);
/* Index of `key`, or -1. */
ssize_t cairn__strmap_find(const struct cairn__strmap *m, const char *key, size_t len);
/*
 * Find or insert `key`; sets *index_out and *inserted_out. Returns 0, or
 * CAIRN_ENOMEM (no message set) when a bound would be passed: the caller
 * decides what that means.
 */
int cairn__strmap_add(struct cairn__strmap *m, size_t *index_out, bool *inserted_out,
                      const char *key, size_t len);
/* The text of entry i (NUL-terminated). */
static inline const char *cairn__strmap_key(const struct cairn__strmap *m, size_t i)
{
    return m->keys.ptr + m->entries[i].off;
}

/*
 * The dataset files at `path`: the path itself when it is a file, else every
 * *.csv / *.tsv below it (recursively, symlinked directories not followed)
 * sorted by path. Fails with CAIRN_ENOTFOUND when there is none. The caller
 * frees each string and the array.
 */
int cairn__data_files(char ***out, size_t *nout, const char *path);

#endif
