/* JSON helpers shared by commands; see print.c. */
#ifndef CAIRN_CLI_PRINT_H
#define CAIRN_CLI_PRINT_H

#include <jansson.h>

#include "cairn/registry.h"
#include "cairn/repo.h"

json_t *cli_oid_json(const cairn_oid *id);
/* A version as JSON; `full` adds params and the tree id. */
json_t *cli_version_json(struct cairn_repo *repo, const struct cairn_version *v, int full);

/*
 * Quote a name from a file, a manifest or a remote (path, tensor name,
 * message...) for human output, as git quotes paths: control characters
 * (C0, DEL, C1), bidirectional overrides and bytes that are not valid UTF-8
 * print as \xNN, a backslash as \\; valid UTF-8 is kept. The result lives
 * until eight more calls (a ring of buffers), so one printf may use several.
 * cli_esc_text keeps newlines (multi-line messages). JSON output never uses
 * these: jansson escapes exactly.
 */
const char *cli_esc(const char *s);
const char *cli_esc_text(const char *s);

#endif
