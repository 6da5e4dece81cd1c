/*
 * Internals shared by the gate module: the parsed policy and the table of
 * check kinds.
 *
 * A check kind is one row of cairn__check_kinds[] (gate.c): the key that
 * selects it in a policy entry ("metric", "signature", "data"), every key an
 * entry of that kind may use, and four functions - parse the entry, evaluate
 * it against a version, give its canonical JSON (for the policy digest) and
 * free what parse allocated. Adding a kind is writing those four functions
 * and adding the row; the policy reader and the evaluator need no change.
 */
#ifndef CAIRN_GATE_POLICY_H
#define CAIRN_GATE_POLICY_H

#include <jansson.h>

#include "cairn/gate.h"
#include "util/yaml.h"

struct cairn_check_kind;

struct cairn_check {
    const struct cairn_check_kind *kind;
    int line, col; /* of the entry in the policy file */
    void *priv;    /* owned by the kind: set by parse, freed by release */
};

struct cairn_check_kind {
    const char *key;
    const char *const *keys; /* NULL-terminated; includes `key` */
    /*
     * Parse the entry `map` (a mapping already known to contain `key`).
     * Errors: CAIRN_EINVALID via cairn_yaml_error(), so they carry line:col.
     */
    int (*parse)(struct cairn_check *out, const struct cairn_yaml_node *map);
    /*
     * Fill `out` (zeroed, with kind/line/col already set). Return negative
     * only when out of memory; a failed fact lookup is verdict ERROR.
     */
    int (*evaluate)(struct cairn_check_result *out, const struct cairn_check *check,
                    const struct cairn_gate_ctx *ctx, const char *version);
    /* A new JSON object of the check's parameters, without "kind". */
    json_t *(*to_json)(const struct cairn_check *check);
    void (*release)(struct cairn_check *check);
};

/* NULL-terminated; defined in gate.c. */
extern const struct cairn_check_kind *const cairn__check_kinds[];

struct cairn_policy {
    char *name;
    struct cairn_check *checks;
    size_t count;
};

/* Set `*out` to a malloc'd copy of the printf result; CAIRN_ENOMEM on failure. */
int cairn__strdupf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Short human form of a number ("0.900", "50", "1.25e-07") into buf (>= 32 bytes). */
const char *cairn__fmt_number(char *buf, size_t cap, double v);

#endif
