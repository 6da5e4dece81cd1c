/*
 * BLAKE3 wrapper; see hash.h. Callers never include blake3.h, so the
 * dependency stays in one place.
 */
#include <string.h>

#include <blake3.h>

#include "util/hash.h"

_Static_assert(sizeof(blake3_hasher) <= sizeof(((struct cairn_hasher *)0)->state),
               "cairn_hasher too small for blake3_hasher");
_Static_assert(BLAKE3_OUT_LEN == CAIRN_OID_RAWSZ, "oid size");

void cairn_hasher_init(struct cairn_hasher *h)
{
    blake3_hasher_init((blake3_hasher *)h->state);
}

void cairn_hasher_update(struct cairn_hasher *h, const void *data, size_t len)
{
    blake3_hasher_update((blake3_hasher *)h->state, data, len);
}

void cairn_hasher_final(struct cairn_hasher *h, cairn_oid *out)
{
    blake3_hasher_finalize((blake3_hasher *)h->state, out->id, CAIRN_OID_RAWSZ);
}

void cairn_hash(cairn_oid *out, const void *data, size_t len)
{
    blake3_hasher h;
    blake3_hasher_init(&h);
    blake3_hasher_update(&h, data, len);
    blake3_hasher_finalize(&h, out->id, CAIRN_OID_RAWSZ);
}

static const char hexdigits[] = "0123456789abcdef";

void cairn_hex_encode(char *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hexdigits[p[i] >> 4];
        out[2 * i + 1] = hexdigits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cairn_hex_decode(void *out, const char *hex, size_t len)
{
    unsigned char *p = out;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(hex[2 * i]), lo;
        if (hi < 0)
            return -1;
        lo = hexval(hex[2 * i + 1]);
        if (lo < 0)
            return -1;
        p[i] = (unsigned char)(hi << 4 | lo);
    }
    return hex[2 * len] == '\0' ? 0 : -1;
}

char *cairn_oid_fmt(char *out, const cairn_oid *id)
{
    cairn_hex_encode(out, id->id, CAIRN_OID_RAWSZ);
    return out;
}

int cairn_oid_parse(cairn_oid *out, const char *hex)
{
    if (cairn_hex_decode(out->id, hex, CAIRN_OID_RAWSZ) < 0)
        return cairn_error_set(CAIRN_EINVALID, "'%s' is not a 64-digit hex id", hex);
    return 0;
}

int cairn_oid_cmp(const cairn_oid *a, const cairn_oid *b)
{
    return memcmp(a->id, b->id, CAIRN_OID_RAWSZ);
}

int cairn_oid_is_zero(const cairn_oid *id)
{
    static const cairn_oid zero;
    return memcmp(id->id, zero.id, CAIRN_OID_RAWSZ) == 0;
}
