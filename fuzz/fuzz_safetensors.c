/*
 * Fuzz target for the safetensors reader: the input is a whole file. It is
 * parsed as is, through the layout (whose regions must cover the file
 * exactly), and a header that parses is written back out and must parse
 * again to the same tensors. A broken invariant traps; nothing is printed.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/layout.h"
#include "store/safetensors.h"
#include "util/buf.h"

static void check_cover(const struct cairn_layout *l, uint64_t size)
{
    uint64_t pos = 0;
    for (size_t i = 0; i < l->count; i++) {
        if (l->regions[i].offset != pos || l->regions[i].len == 0)
            __builtin_trap();
        pos += l->regions[i].len;
    }
    if (pos != size)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_tensor_table t, back;
    struct cairn_layout l;
    struct cairn_buf b = CAIRN_BUF_INIT;

    if (cairn_safetensors_parse(&t, data, size, size) == 0) {
        if (cairn_safetensors_serialize(&b, &t) == 0) {
            uint64_t total = t.count ? t.tensors[t.count - 1].end : t.data_start;
            if (cairn_safetensors_parse(&back, b.ptr, b.len, total) != 0 || back.count != t.count)
                __builtin_trap();
            for (size_t i = 0; i < t.count; i++)
                if (strcmp(back.tensors[i].name, t.tensors[i].name) ||
                    back.tensors[i].start != t.tensors[i].start ||
                    back.tensors[i].end != t.tensors[i].end)
                    __builtin_trap();
            cairn_tensor_table_release(&back);
        }
    }
    cairn_tensor_table_release(&t);
    cairn_buf_release(&b);

    if (cairn_layout_from_prefix(&l, "fuzz.safetensors", data, size, size) == 0) {
        check_cover(&l, size);
        cairn_layout_release(&l);
    }
    return 0;
}
