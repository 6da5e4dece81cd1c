/*
 * Fuzz target for the dataset schema parser (lib/data/schema.c) and the
 * drift thresholds parser (lib/data/drift.c): any bytes as YAML. Errors are
 * expected; crashes, leaks and unbounded work are not.
 */
#include <stddef.h>
#include <stdint.h>

#include "cairn/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_data_schema *s = NULL;
    struct cairn_drift_thresholds t;

    if (cairn_data_schema_parse(&s, "fuzz.yaml", data, size) == 0)
        cairn_data_schema_free(s);
    cairn_drift_thresholds_init(&t);
    (void)cairn_drift_thresholds_parse(&t, "fuzz.yaml", data, size);
    cairn_drift_thresholds_release(&t);
    return 0;
}
