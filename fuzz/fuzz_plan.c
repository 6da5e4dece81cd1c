/*
 * Fuzz target for the rollout plan parser (lib/serve/plan.c): the input is
 * a whole plan file. A plan that parses must hold the invariants the engine
 * relies on (steps 1..32 with weights 1..100 that never go down, at most 16
 * checks, an interval from 100 ms, failure_limit >= 1); a broken one traps.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "serve/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_plan p;
    if (cairn_plan_parse(&p, "fuzz", (const char *)data, size) < 0)
        return 0;
    if (p.nsteps < 1 || p.nsteps > CAIRN_PLAN_MAX_STEPS || p.nchecks > CAIRN_PLAN_MAX_CHECKS ||
        p.interval_ms < 100 || p.failure_limit < 1 || p.min_labels < 1)
        abort();
    for (size_t i = 0; i < p.nsteps; i++) {
        if (p.steps[i].weight < 1 || p.steps[i].weight > 100)
            abort();
        if (i && p.steps[i].weight < p.steps[i - 1].weight)
            abort();
    }
    return 0;
}
