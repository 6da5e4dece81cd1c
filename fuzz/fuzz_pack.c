/*
 * Fuzz target for the pack formats (lib/store/pack.c): the input is fed both
 * as a whole idx file and as one pack entry (header, stored bytes, check),
 * which is then decoded with the codec it names. Invariants that must hold
 * for a validated idx (every id found at its own position by the binary
 * search) trap when broken; nothing is printed, nothing leaks (the one codec
 * context is reused across runs).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "store/codec.h"
#include "store/pack.h"

/* Decode at most this much per input, so the fuzzer explores instead of allocating. */
#define FUZZ_RAW_MAX ((uint64_t)1 << 20)

static void fuzz_idx(const uint8_t *data, size_t size)
{
    uint32_t count;
    uint64_t pack_size;
    cairn_oid name;

    if (cairn__idx_validate(&count, &pack_size, &name, data, size, UINT64_MAX) != 0)
        return;
    for (uint32_t i = 0; i < count; i++) {
        struct cairn__pack_entry e;
        cairn__idx_entry(&e, data, i);
        if (cairn__idx_find(data, count, &e.id) != (long)i)
            __builtin_trap();
        if (e.offset + cairn__entry_total_len(&e) > pack_size)
            __builtin_trap();
    }
    /* The same bytes against a pack of another size must be refused. */
    if (cairn__idx_validate(&count, &pack_size, &name, data, size, pack_size + 1) == 0)
        __builtin_trap();
}

static void fuzz_entry(const uint8_t *data, size_t size)
{
    static struct cairn_codec_ctx *ctx;
    struct cairn__pack_entry e;
    struct cairn_codec_args args = { 0, NULL, 0 };
    uint8_t *raw, *base = NULL;
    size_t hl;

    if (cairn__entry_header_parse(&e, data, size, 0) != 0)
        return;
    hl = cairn__entry_hdr_len(e.flags);
    if (e.stored_len + CAIRN__ENTRY_CHECK_LEN > size - hl)
        return;
    (void)cairn__entry_check_verify(data + hl + e.stored_len, data, hl, data + hl, e.stored_len);
    if (e.raw_len > FUZZ_RAW_MAX)
        return;
    if (!ctx && cairn_codec_ctx_new(&ctx, 0) != 0)
        return;
    if (!(raw = malloc(e.raw_len + 1)))
        return;
    if (e.flags & CAIRN__PACK_F_BASE) {
        /* Any base will do: decoding must survive whatever it is given. */
        if (!(base = calloc(e.raw_len + 1, 1))) {
            free(raw);
            return;
        }
        args.base = base;
        args.base_len = e.raw_len;
    }
    (void)cairn__codec_decode(ctx, e.codec, raw, e.raw_len, data + hl, e.stored_len, &args);
    free(base);
    free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_idx(data, size);
    fuzz_entry(data, size);
    cairn_error_clear();
    return 0;
}
