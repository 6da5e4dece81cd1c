/*
 * Fuzz target for the CSV reader (lib/data/csv.c): any bytes, read with a
 * small buffer and small caps so refills and limits are hit constantly. The
 * first byte picks the read size and the delimiter; every returned field is
 * touched so ASan sees a bad slice.
 */
#include <stddef.h>
#include <stdint.h>

#include "data/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_csv_opts o = { 0 };
    struct cairn_csv *c;
    const struct cairn_csv_field *f;
    size_t n;
    volatile unsigned sink = 0;

    if (size == 0)
        return 0;
    o.read_size = (size_t)(data[0] & 0x1f) + 1;
    o.delim = (data[0] & 0x20) ? '\t' : ',';
    o.max_field = 256;
    o.max_record = 1024;
    o.max_fields = 64;
    if (cairn_csv_new_mem(&c, data + 1, size - 1, "fuzz.csv", &o) < 0)
        return 0;
    while (cairn_csv_next(c, &f, &n) == 1) {
        for (size_t i = 0; i < n; i++) {
            if (f[i].len)
                sink += (unsigned char)f[i].ptr[0] + (unsigned char)f[i].ptr[f[i].len - 1];
            sink += (unsigned char)f[i].ptr[f[i].len]; /* the NUL terminator */
        }
    }
    cairn_csv_free(c);
    (void)sink;
    return 0;
}
