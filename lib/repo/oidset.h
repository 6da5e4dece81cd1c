/*
 * A set of object ids (open addressing, linear probing). Ids are BLAKE3
 * digests, so their first bytes are already uniformly distributed and serve
 * as the hash. Used by gc and fsck to collect what versions reference.
 */
#ifndef CAIRN_REPO_OIDSET_H
#define CAIRN_REPO_OIDSET_H

#include <stddef.h>

#include "cairn/common.h"

struct cairn_oidset {
    cairn_oid *slots;
    unsigned char *used;
    size_t cap, n;
};

/* Add `id`; returns 1 if it was new, 0 if present, negative on error. */
int cairn_oidset_add(struct cairn_oidset *s, const cairn_oid *id);
int cairn_oidset_has(const struct cairn_oidset *s, const cairn_oid *id);
void cairn_oidset_release(struct cairn_oidset *s);

#endif
