/*
 * The repository configuration file, .cairn/config: a small git-style INI
 * file of sections, optional quoted subsections and `key = value` lines.
 *
 *     # cairn repository configuration
 *     [core]
 *         format = 1
 *     [alias "production"]
 *         policy = gates/production.yaml
 *
 * Section and key names are [A-Za-z0-9._-] and compared case-insensitively
 * (stored as written); subsections are case-sensitive and may not contain
 * '"', '\\' or a newline. Values run to the end of the line, surrounding
 * blanks trimmed; a value may be double-quoted to keep blanks or a '#'.
 * Comments start with '#' or ';' at the start of a line. A key given twice
 * in one section: the last one wins.
 *
 * The file is kept as its lines, so cairn_config_set() changes one line (or
 * adds one) and cairn_config_write() leaves comments and layout alone. A
 * struct cairn_config is not locked; one per thread.
 */
#ifndef CAIRN_CONFIG_H
#define CAIRN_CONFIG_H

#include <stddef.h>

#include "cairn/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CAIRN_CONFIG_MAX_BYTES ((size_t)1 << 20)

struct cairn_config;

/*
 * Parse `len` bytes of config text. A line that is neither blank, comment,
 * section header nor `key = value` fails with CAIRN_EINVALID and
 * "NAME:LINE: message" (`name` names the input in messages). *out is a new
 * config freed with cairn_config_free().
 */
int cairn_config_parse(struct cairn_config **out, const char *name, const char *data, size_t len);

/* Load `path` (at most CAIRN_CONFIG_MAX_BYTES); a missing file is an empty config. */
int cairn_config_load(struct cairn_config **out, const char *path);

void cairn_config_free(struct cairn_config *c); /* accepts NULL */

/*
 * The value of `key` in [section] (subsection NULL) or [section "subsection"],
 * or NULL when unset. Valid until the config is changed or freed.
 */
const char *cairn_config_get(const struct cairn_config *c, const char *section,
                             const char *subsection, const char *key);

/*
 * Set `key` (replacing the last line that sets it, or adding a line at the
 * end of the section, or adding the section at the end of the file).
 * CAIRN_EINVALID for a bad section, subsection, key or a value with a
 * newline.
 */
int cairn_config_set(struct cairn_config *c, const char *section, const char *subsection,
                     const char *key, const char *value);

/* The file text; *out is malloc'd and owned by the caller. */
int cairn_config_format(char **out, const struct cairn_config *c);

/* Write the file atomically (temp file, fsync, rename). */
int cairn_config_write(const struct cairn_config *c, const char *path);

#ifdef __cplusplus
}
#endif

#endif
