/*
 * Flat sets of named, typed values: the params and metrics of a version
 * (registry.h), the metrics an eval command prints and a gate reads
 * (gate.h), the --params/--metrics files of `commit`. One type for all of
 * them, so a set moves from a file to the registry to a gate unchanged.
 *
 * Values come from outside (a user's script or file, a remote), so names
 * are checked against a small alphabet, numbers must be finite and sizes
 * are capped. Implemented in lib/util/values.c. Nothing here is locked: one
 * set per thread.
 */
#ifndef CAIRN_VALUES_H
#define CAIRN_VALUES_H

#include <stdbool.h>
#include <stddef.h>

#include "cairn/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CAIRN_VALUES_MAX_BYTES ((size_t)1 << 20) /* input size cap */
#define CAIRN_VALUES_MAX_COUNT 4096              /* entries */
#define CAIRN_VALUE_NAME_MAX   128
#define CAIRN_VALUE_STRING_MAX 4096 /* bytes of one string value */

/* The numbers are stored in the registry (params.type, metrics.type): never renumber. */
enum cairn_value_type { CAIRN_VALUE_NUMBER = 0, CAIRN_VALUE_STRING = 1, CAIRN_VALUE_BOOL = 2 };

struct cairn_value {
    char *name;
    enum cairn_value_type type;
    double number; /* CAIRN_VALUE_NUMBER: always finite */
    char *string;  /* CAIRN_VALUE_STRING: NUL-free UTF-8 */
    bool boolean;  /* CAIRN_VALUE_BOOL */
};

/* A flat set in input order; names are unique. Caller-owned: _init/_release. */
struct cairn_values {
    struct cairn_value *items;
    size_t count;
    size_t cap;
};

void cairn_values_init(struct cairn_values *m);
void cairn_values_release(struct cairn_values *m); /* accepts NULL */

/* 1 when `name` matches [A-Za-z0-9_.:-]{1,128}, else 0. */
int cairn_value_name_valid(const char *name);

/*
 * Parse a flat JSON object ({"accuracy": 0.91, "note": "x", "ok": true}) of
 * at most CAIRN_VALUES_MAX_BYTES. Nested values, null, duplicate keys, bad
 * names, non-finite or out-of-range numbers fail with CAIRN_EINVALID and a
 * message starting "SOURCE:LINE:COL:" or "SOURCE:" (`source` names the input
 * in messages, e.g. a path or "command output"). Entries are appended to
 * `out`, which must be initialised; on failure `out` is left empty.
 */
int cairn_values_parse_json(struct cairn_values *out, const char *source, const void *data,
                            size_t len);

/*
 * The same for a YAML mapping of the same flat shape. Plain scalars are
 * booleans (true/false) or numbers when they look like one, else strings;
 * quoted scalars are always strings.
 */
int cairn_values_parse_yaml(struct cairn_values *out, const char *source, const void *data,
                            size_t len);

/*
 * Load a metrics or params file: YAML when the name ends in .yaml or .yml,
 * JSON otherwise.
 */
int cairn_values_load_file(struct cairn_values *out, const char *path);

/* The entry called `name`, or NULL. */
const struct cairn_value *cairn_values_get(const struct cairn_values *m, const char *name);

/*
 * Add or replace one entry (name validated; the strings are copied). Used to
 * build sets by hand, e.g. from registry rows.
 */
int cairn_values_set_number(struct cairn_values *m, const char *name, double v);
int cairn_values_set_string(struct cairn_values *m, const char *name, const char *v);
int cairn_values_set_bool(struct cairn_values *m, const char *name, bool v);
/* Add or replace a copy of `v` (by its type, as the three above). */
int cairn_values_set(struct cairn_values *m, const struct cairn_value *v);

/* Format a value for humans ("0.9123", "true", "adam") into buf; returns buf. */
const char *cairn_value_format(const struct cairn_value *v, char *buf, size_t cap);

/* Compact JSON object in set order; *out is malloc'd and owned by the caller. */
int cairn_values_to_json(char **out, const struct cairn_values *m);

#ifdef __cplusplus
}
#endif

#endif
