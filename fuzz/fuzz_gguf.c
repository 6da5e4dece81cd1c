/*
 * Fuzz target for the GGUF reader: the input is a whole file. It is parsed
 * whole, from a half-length prefix (which must either ask for more or give
 * the same verdict as the whole), and through the layout, whose regions must
 * cover the file exactly. A broken invariant traps; nothing is printed.
 */
#include <stddef.h>
#include <stdint.h>

#include "store/gguf.h"
#include "store/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_tensor_table t, half;
    struct cairn_layout l;
    int whole, part;

    whole = cairn_gguf_parse(&t, data, size, size);
    part = cairn_gguf_parse(&half, data, size / 2, size);
    if (part != CAIRN_GGUF_MORE && part != whole)
        __builtin_trap();
    if (part == 0 && half.count != t.count)
        __builtin_trap();
    cairn_tensor_table_release(&half);
    cairn_tensor_table_release(&t);

    if (cairn_layout_from_prefix(&l, "fuzz.gguf", data, size, size) == 0) {
        uint64_t pos = 0;
        for (size_t i = 0; i < l.count; i++) {
            if (l.regions[i].offset != pos || l.regions[i].len == 0)
                __builtin_trap();
            pos += l.regions[i].len;
        }
        if (pos != size)
            __builtin_trap();
        cairn_layout_release(&l);
    }
    return 0;
}
