/* JSON helpers shared by commands; see print.c. */
#ifndef CAIRN_CLI_PRINT_H
#define CAIRN_CLI_PRINT_H

#include <jansson.h>

#include "cairn/registry.h"
#include "cairn/repo.h"

json_t *cli_oid_json(const cairn_oid *id);
/* A version as JSON; `full` adds params and the tree id. */
json_t *cli_version_json(struct cairn_repo *repo, const struct cairn_version *v, int full);

#endif
