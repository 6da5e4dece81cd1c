/*
 * Fuzz target for manifest objects (lib/repo/object.c): tree and file
 * objects arrive from remotes, so their decoders must refuse any bytes they
 * cannot fully validate. The first byte picks the decoder; a decoded object
 * must re-encode to exactly the input (the encodings are canonical).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        struct cairn_tree t;
        if (cairn_tree_decode(&t, data + 1, size - 1) == 0) {
            if (cairn_tree_encode(&b, &t) < 0 || b.len != size - 1 ||
                memcmp(b.ptr, data + 1, b.len))
                abort();
            cairn_tree_release(&t);
        }
    } else {
        struct cairn_file_object f;
        if (cairn_file_object_decode(&f, data + 1, size - 1) == 0) {
            if (cairn_file_object_encode(&b, &f) < 0)
                abort();
            cairn_file_object_release(&f);
        }
    }
    cairn_buf_release(&b);
    return 0;
}
