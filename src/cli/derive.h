/*
 * What `cairn quantize` and `cairn prune` share in the front end: run
 * cairn_model_derive() on an open repository and print the result as a table
 * or as JSON. The commands only parse their options.
 */
#ifndef CAIRN_CLI_DERIVE_H
#define CAIRN_CLI_DERIVE_H

#include "cairn/model.h"

/*
 * Derive a version of REF with `t`; `message` may be NULL (the library's
 * default). Prints the result on stdout, an error on stderr, and returns the
 * exit status.
 */
int cli_derive_run(const char *ref, const struct cairn_transform_opts *t, const char *message,
                   int json);

#endif
