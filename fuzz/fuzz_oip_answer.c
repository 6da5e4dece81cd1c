/*
 * Fuzz target for the client side of OIP v2 (lib/serve/oipclient.c): the
 * answers `cairn eval --endpoint` and `cairn loadgen` read from servers we
 * do not control. The first byte picks the expected row count (1..4) and
 * the match mode; the rest is the answer body. Also canonicalises the body
 * as a label. Must not crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "serve/oipclient.h"
#include "util/buf.h"

static int on_pred(size_t row, const char *label, void *arg)
{
    size_t *n = arg;
    (void)row;
    *n += strlen(label);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_buf ver = CAIRN_BUF_INIT, canon = CAIRN_BUF_INIT;
    size_t total = 0;

    if (size < 1)
        return 0;
    cairn_oip_parse_predictions((const char *)data + 1, size - 1, 1 + data[0] % 4,
                                data[0] & 0x80 ? CAIRN_OIP_MATCH_INDEX : CAIRN_OIP_MATCH_AUTO,
                                on_pred, &total, &ver);
    if (size - 1 < 64)
        cairn_oip_label_canon(&canon, (const char *)data + 1, size - 1);
    cairn_buf_release(&ver);
    cairn_buf_release(&canon);
    cairn_error_clear();
    return 0;
}
