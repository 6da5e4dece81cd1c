/*
 * Internals of the file-level model transforms (include/cairn/model.h),
 * shared with the unit tests: the rule that decides which tensors change.
 */
#ifndef CAIRN_MODEL_TRANSFORM_H
#define CAIRN_MODEL_TRANSFORM_H

#include "cairn/model.h"

/*
 * Why the tensor `name` of dtype `dtype` (enum cairn_dtype) and `rank`
 * dimensions is left as it is by the operation in `opts`, as a static
 * string ("bias", "normalisation parameter", "not a weight", "fewer than 2
 * dimensions", "not a float tensor", "dtype F64 not supported", "already
 * F16"), or NULL when it is to be transformed.
 */
const char *cairn__transform_skip_reason(const char *name, int dtype, unsigned rank,
                                         const struct cairn_transform_opts *opts);

#endif
