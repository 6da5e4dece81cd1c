/* The id set of oidset.h. Grows at 50% load, so probes stay short. */
#include <stdlib.h>
#include <string.h>

#include "repo/oidset.h"
#include "util/buf.h"

static size_t slot_of(const cairn_oid *id, size_t cap)
{
    return (size_t)cairn_get_u64le(id->id) & (cap - 1);
}

static int rehash(struct cairn_oidset *s, size_t cap)
{
    cairn_oid *slots = malloc(cap * sizeof(*slots));
    unsigned char *used = calloc(cap, 1);
    if (!slots || !used) {
        free(slots);
        free(used);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->cap; i++) {
        size_t j;
        if (!s->used[i])
            continue;
        for (j = slot_of(&s->slots[i], cap); used[j]; j = (j + 1) & (cap - 1))
            ;
        used[j] = 1;
        slots[j] = s->slots[i];
    }
    free(s->slots);
    free(s->used);
    s->slots = slots;
    s->used = used;
    s->cap = cap;
    return 0;
}

int cairn_oidset_add(struct cairn_oidset *s, const cairn_oid *id)
{
    size_t i;
    int error;
    if ((s->n + 1) * 2 > s->cap && (error = rehash(s, s->cap ? s->cap * 2 : 1024)) < 0)
        return error;
    for (i = slot_of(id, s->cap); s->used[i]; i = (i + 1) & (s->cap - 1))
        if (!memcmp(s->slots[i].id, id->id, CAIRN_OID_RAWSZ))
            return 0;
    s->used[i] = 1;
    s->slots[i] = *id;
    s->n++;
    return 1;
}

int cairn_oidset_has(const struct cairn_oidset *s, const cairn_oid *id)
{
    if (!s->cap)
        return 0;
    for (size_t i = slot_of(id, s->cap); s->used[i]; i = (i + 1) & (s->cap - 1))
        if (!memcmp(s->slots[i].id, id->id, CAIRN_OID_RAWSZ))
            return 1;
    return 0;
}

void cairn_oidset_release(struct cairn_oidset *s)
{
    if (!s)
        return;
    free(s->slots);
    free(s->used);
    memset(s, 0, sizeof(*s));
}
