/*
 * Fuzz the parsers of the s3:// remote that read outside bytes: S3 XML
 * answers (listing entries, error codes, upload ids), ~/.aws INI files,
 * endpoints and query strings given to the SigV4 canonicaliser. None may
 * crash, read out of bounds, leak or grow past its buffer's limit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "remote/s3.h"
#include "remote/sigv4.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const tags[] = { "Contents", "Key",  "Size", "Code",       "Message",
                                        "UploadId", "Part", "ETag", "IsTruncated" };
    const char *xml = (const char *)data;
    struct cairn_buf b;
    const char *body;
    size_t blen, pos = 0;
    char *s, *host, *scheme;

    cairn_buf_init(&b, 1 << 16);
    while (cairn__s3_xml_next(&body, &blen, xml, size, "Contents", &pos)) {
        cairn_buf_clear(&b);
        cairn__s3_xml_text(&b, body, blen, "Key");
        cairn_buf_clear(&b);
        cairn__s3_xml_text(&b, body, blen, "Size");
    }
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        cairn_buf_clear(&b);
        cairn__s3_xml_text(&b, xml, size, tags[i]);
    }
    cairn_buf_clear(&b);
    cairn__s3_ini_get(&b, xml, size, "default", "aws_secret_access_key");
    cairn_buf_release(&b);

    if (!(s = malloc(size + 1)))
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    cairn_buf_init(&b, 1 << 16);
    cairn_sigv4_canonical_query(&b, s);
    cairn_buf_release(&b);
    if (cairn__s3_parse_endpoint(&scheme, &host, s) == 0) {
        free(scheme);
        free(host);
    }
    free(s);
    cairn_error_clear();
    return 0;
}
