/*
 * JSON (jansson) forms of typed values (include/cairn/values.h), for the
 * library and the CLI: version records, remote manifests, --json output.
 * Kept out of the public header so it needs no jansson.
 */
#ifndef CAIRN_UTIL_VALUES_H
#define CAIRN_UTIL_VALUES_H

#include <jansson.h>

#include "cairn/values.h"

/* A new JSON value for `v` (real, string or boolean); NULL when out of memory. */
json_t *cairn__value_json(const struct cairn_value *v);
/* A new JSON object of the set in set order (NULL `set`: an empty object); NULL on ENOMEM. */
json_t *cairn__values_json(const struct cairn_values *set);

#endif
