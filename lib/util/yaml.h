/*
 * A small YAML reader for cairn's configuration files (gate policies, rollout
 * plans, serve configs, dataset schemas, flat metric files). libyaml does the
 * scanning; this file turns its events into a tree of three node kinds -
 * mapping (keys kept in file order), sequence, scalar - each carrying the
 * 1-based line and column it started at, so every consumer can report a
 * mistake as "FILE:LINE:COL: message".
 *
 * The input is outside data: the reader enforces a nesting depth, a node
 * count and a byte size, rejects aliases (which would let a few bytes expand
 * into a huge tree), duplicate keys, non-scalar keys and multiple documents.
 * Every error, a hit limit included, is CAIRN_EINVALID with the
 * position in the message.
 *
 * A parsed document is immutable and may be read from several threads.
 */
#ifndef CAIRN_UTIL_YAML_H
#define CAIRN_UTIL_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cairn_yaml_type {
    CAIRN_YAML_SCALAR,
    CAIRN_YAML_SEQ,
    CAIRN_YAML_MAP,
};

struct cairn_yaml_doc;

struct cairn_yaml_node {
    enum cairn_yaml_type type;
    int line;                         /* 1-based */
    int col;                          /* 1-based */
    const struct cairn_yaml_doc *doc; /* for error messages */

    /* CAIRN_YAML_SCALAR: NUL-terminated text (may contain NUL if quoted; see len). */
    char *str;
    size_t len;
    bool quoted; /* written '...', "...", | or >: never a number, bool or null */

    /*
     * CAIRN_YAML_SEQ: items[0..count). CAIRN_YAML_MAP: keys[i] (always a
     * scalar) maps to items[i], in file order.
     */
    size_t count;
    struct cairn_yaml_node **items;
    struct cairn_yaml_node **keys;
    size_t cap;
};

struct cairn_yaml_limits {
    size_t max_depth; /* nesting of collections; 0 means 32 */
    size_t max_nodes; /* 0 means 10000 */
    size_t max_bytes; /* input size; 0 means 1 MiB */
};

/*
 * Parse `len` bytes. `name` (usually the file path) is copied and prefixes
 * every error message. `limits` may be NULL for the defaults. An empty
 * document gives a doc whose root is NULL. On success `*out` is a new
 * document the caller frees with cairn_yaml_doc_free().
 */
int cairn_yaml_parse(struct cairn_yaml_doc **out, const char *name, const void *data, size_t len,
                     const struct cairn_yaml_limits *limits);

/* Read and parse a file (bounded by limits->max_bytes). */
int cairn_yaml_load_file(struct cairn_yaml_doc **out, const char *path,
                         const struct cairn_yaml_limits *limits);

void cairn_yaml_doc_free(struct cairn_yaml_doc *doc);

/* The root node (NULL for an empty document) and the name given at parse time. */
const struct cairn_yaml_node *cairn_yaml_root(const struct cairn_yaml_doc *doc);
const char *cairn_yaml_name(const struct cairn_yaml_doc *doc);

/*
 * Set CAIRN_EINVALID with "NAME:LINE:COL: message" for `node` (or "NAME:
 * message" when node is NULL) and return CAIRN_EINVALID.
 */
int cairn_yaml_error(const struct cairn_yaml_doc *doc, const struct cairn_yaml_node *node,
                     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "mapping", "sequence", "scalar" - for messages. */
const char *cairn_yaml_type_name(enum cairn_yaml_type t);

/* Fail with "expected a mapping, found a sequence" unless `node` has type `t`. */
int cairn_yaml_expect(const struct cairn_yaml_node *node, enum cairn_yaml_type t);

/* The value for `key` in a mapping, or NULL (also when node is not a mapping). */
const struct cairn_yaml_node *cairn_yaml_map_get(const struct cairn_yaml_node *map,
                                                 const char *key);
/* The key node of `key` in a mapping (for positions), or NULL. */
const struct cairn_yaml_node *cairn_yaml_map_key(const struct cairn_yaml_node *map,
                                                 const char *key);

/*
 * Fail on the first key of `map` that is not in the NULL-terminated
 * `allowed` list: "NAME:L:C: unknown key 'x' (expected one of: a, b)", with
 * the position of the offending key.
 */
int cairn_yaml_check_keys(const struct cairn_yaml_node *map, const char *const *allowed);

/* A plain scalar "", "~", "null", "Null" or "NULL". */
bool cairn_yaml_is_null(const struct cairn_yaml_node *node);

/*
 * Scalar conversions. Each fails with CAIRN_EINVALID and the node's position
 * when the node is not a plain scalar of that type; quoted scalars are
 * strings, never numbers or booleans.
 *  - str: any scalar (quoted or not); *out points into the document.
 *  - double: a finite decimal or exponent number (no nan, no inf, no hex).
 *  - int: a decimal integer that fits in long long.
 *  - bool: true/false, yes/no, on/off (any case).
 *  - duration: a non-negative number with a unit, "500ms", "30s", "5m",
 *    "2h", "1d", "1.5s", or a sum "1m30s"; *out is milliseconds.
 */
int cairn_yaml_str(const char **out, const struct cairn_yaml_node *node);
int cairn_yaml_double(double *out, const struct cairn_yaml_node *node);
int cairn_yaml_int(long long *out, const struct cairn_yaml_node *node);
int cairn_yaml_bool(bool *out, const struct cairn_yaml_node *node);
int cairn_yaml_duration_ms(uint64_t *out, const struct cairn_yaml_node *node);

/*
 * The same conversions on plain text, without positions (for command-line
 * options such as --timeout 30s). Return 0 or CAIRN_EINVALID without
 * setting a message; callers word their own.
 */
int cairn_parse_double(double *out, const char *s);
int cairn_parse_duration_ms(uint64_t *out, const char *s);

#endif
