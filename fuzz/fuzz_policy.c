/*
 * Fuzz target for the gate policy reader (YAML into checks) and the
 * evaluator behind it: the input is a whole policy file. A policy that
 * parses must give canonical JSON and a digest, evaluate against a fixed
 * fake context, and its result must survive a JSON round trip unchanged.
 * A broken invariant traps; nothing is printed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/gate.h"

static int fake_metric(const struct cairn_gate_ctx *ctx, const char *version, const char *name,
                       double *value, bool *found)
{
    (void)ctx;
    (void)version;
    /* Some names exist, some do not, deterministically. */
    *found = strlen(name) % 3 != 0;
    *value = (double)(strlen(name) % 7) / 7.0;
    return 0;
}

static int fake_alias(const struct cairn_gate_ctx *ctx, const char *alias, const char *name,
                      double *value, bool *alias_found, bool *found)
{
    (void)ctx;
    *alias_found = strlen(alias) % 2 == 0;
    *found = strlen(name) % 2 == 0;
    *value = 0.5;
    return 0;
}

static int fake_sig(const struct cairn_gate_ctx *ctx, const char *version,
                    enum cairn_sig_status *status, char **detail)
{
    (void)ctx;
    (void)version;
    (void)detail;
    *status = CAIRN_SIG_UNTRUSTED;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_gate_ctx ctx = { NULL, fake_metric, fake_alias, fake_sig, NULL };
    struct cairn_policy *p = NULL;
    struct cairn_gate_result *r = NULL, *back = NULL;
    char *json = NULL, *json2 = NULL;
    cairn_oid d1, d2;

    if (cairn_policy_parse(&p, "fuzz.yaml", data, size) < 0)
        return 0;
    if (cairn_policy_count(p) == 0)
        __builtin_trap();
    if (cairn_policy_digest(&d1, p) < 0 || cairn_policy_digest(&d2, p) < 0 ||
        memcmp(&d1, &d2, sizeof(d1)) != 0)
        __builtin_trap();
    if (cairn_gate_evaluate(&r, p, &ctx, "0123456789abcdef") == 0) {
        if (r->count != cairn_policy_count(p))
            __builtin_trap();
        if (cairn_gate_result_to_json(&json, r) == 0) {
            if (cairn_gate_result_from_json(&back, json, strlen(json)) != 0 ||
                cairn_gate_result_to_json(&json2, back) != 0 || strcmp(json, json2) != 0)
                __builtin_trap();
        }
    }
    free(json);
    free(json2);
    cairn_gate_result_free(back);
    cairn_gate_result_free(r);
    cairn_policy_free(p);
    return 0;
}
