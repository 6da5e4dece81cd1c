/*
 * Fuzz target for OIP v2 inference bodies (lib/serve/oip.c): decode any
 * bytes; whatever decodes is encoded back as a response, so both directions
 * see hostile ids, names and numbers. Must not crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cairn/common.h"
#include "serve/oip.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_oip_request r;
    struct cairn_buf out = CAIRN_BUF_INIT;

    if (cairn_oip_decode_infer(&r, (const char *)data, size, 1 << 16) == 0 && r.cols) {
        size_t *labels = calloc(r.rows ? r.rows : 1, sizeof(size_t));
        if (labels) {
            /* Treat the input as probabilities of `cols` classes. */
            cairn_oip_encode_infer(&out, "m", "v1", r.id, r.data, labels, r.rows, r.cols, NULL);
            free(labels);
        }
    } else {
        cairn_oip_encode_error(&out, cairn_error_last());
    }
    cairn_oip_request_release(&r);
    cairn_buf_release(&out);
    cairn_error_clear();
    return 0;
}
