/*
 * Fuzz target for the PLANE codec (lib/store/codec_plane.c). The first two
 * bytes give a raw length (little-endian, up to 64 KiB) and the rest is a
 * stored encoding: decoding it must fail cleanly or give exactly that many
 * bytes, never read or write out of bounds. Then the whole input is taken as
 * data and round-tripped, forced through the coder, as values of width
 * 1 + input[0] % 8: what comes back must be the input. A broken invariant
 * traps; nothing is printed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "store/codec.h"
#include "store/codec_plane.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cairn_codec_ctx *ctx;
    struct cairn_buf enc = CAIRN_BUF_INIT;
    unsigned char *dst;
    size_t raw_len;
    int r;

    if (!ctx && cairn_codec_ctx_new(&ctx, 3) < 0)
        __builtin_trap();
    if (size >= 2) {
        raw_len = (size_t)data[0] | (size_t)data[1] << 8;
        /* One guard byte past the end: it must stay untouched. */
        if (!(dst = malloc(raw_len + 1)))
            return 0;
        dst[raw_len] = 0x5a;
        r = cairn__plane_decode(ctx, dst, raw_len, data + 2, size - 2);
        if ((r != 0 && r != CAIRN_ECORRUPT && r != CAIRN_ENOMEM) || dst[raw_len] != 0x5a)
            __builtin_trap();
        free(dst);
    }

    if (size == 0)
        return 0;
    r = cairn__plane_encode(ctx, &enc, data, size, 1 + data[0] % 8, 3 * size + 4096, 1, NULL);
    if (r < 0)
        __builtin_trap();
    if (r == 0) {
        if (!(dst = malloc(size)))
            __builtin_trap();
        if (cairn__plane_decode(ctx, dst, size, enc.ptr, enc.len) != 0 || memcmp(dst, data, size))
            __builtin_trap();
        free(dst);
    }
    cairn_buf_release(&enc);
    return 0;
}
