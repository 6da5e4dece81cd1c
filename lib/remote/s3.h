/*
 * Internals of the s3:// backend (s3.c) that are worth testing on their own:
 * the tolerant XML field extractor used on S3 responses, the INI reader for
 * ~/.aws/credentials and ~/.aws/config, and endpoint parsing. All of them
 * take untrusted bytes and must survive any input (fuzz/fuzz_s3_xml.c).
 * Not part of the public API; the backend itself is reached through
 * backend.h.
 */
#ifndef CAIRN_REMOTE_S3_H
#define CAIRN_REMOTE_S3_H

#include <stddef.h>

#include "util/buf.h"

/*
 * Find the next element <tag>...</tag> (or <tag/>) in xml[*pos, len).
 * On success returns 1, points `*body`/`*body_len` at the raw content
 * between the tags and moves `*pos` past the closing tag; returns 0 when
 * there is none. No allocation; nesting of the same tag is not supported
 * (S3 does not nest a tag in itself).
 */
int cairn__s3_xml_next(const char **body, size_t *body_len, const char *xml, size_t len,
                       const char *tag, size_t *pos);

/*
 * The text of the first <tag> in xml[0, len), entities decoded (&amp; &lt;
 * &gt; &quot; &apos; &#N; &#xN;), appended to `out`. Returns 1 found, 0 not
 * found, or a negative code (bad entity: CAIRN_EINVALID; `out`'s limit hit:
 * CAIRN_ENOMEM).
 */
int cairn__s3_xml_text(struct cairn_buf *out, const char *xml, size_t len, const char *tag);

/*
 * The value of `key` in [section] of an INI text (the AWS credentials and
 * config format: "key = value" lines, '#' and ';' comments, whitespace
 * trimmed). Appends to `out`; returns 1 found, 0 not found, negative on
 * error. Sections are compared exactly ("profile dev" in ~/.aws/config).
 */
int cairn__s3_ini_get(struct cairn_buf *out, const char *text, size_t len, const char *section,
                      const char *key);

/*
 * Split an endpoint "http[s]://host[:port][/]" into a scheme ("http" or
 * "https") and "host[:port]" (the Host header value). Heap strings the
 * caller frees. Anything else is CAIRN_EINVALID.
 */
int cairn__s3_parse_endpoint(char **scheme_out, char **host_out, const char *endpoint);

#endif
