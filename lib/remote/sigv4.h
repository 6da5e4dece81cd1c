/*
 * AWS Signature Version 4, as pure functions: no clock, no network, no
 * globals, so every step can be checked against AWS's published vectors.
 *
 * We sign ourselves (OpenSSL HMAC-SHA256) instead of using libcurl's
 * CURLOPT_AWS_SIGV4, because libcurl 7.88 neither adds x-amz-content-sha256,
 * sorts the query, encodes '/' in query values nor turns a bare `?uploads`
 * into `uploads=` (SPEC §7), and S3 rejects such requests.
 *
 * The caller hands over the request exactly as it goes on the wire: the
 * path already URI-encoded (S3 does not normalise or double-encode it: use
 * cairn_sigv4_uri_encode() with keep_slash on each key), the query as it
 * appears after '?' (it is decoded and re-encoded canonically here), every
 * header it wants signed, and the hex SHA-256 of the payload (or
 * "UNSIGNED-PAYLOAD", which S3 accepts over HTTPS only).
 *
 * All functions are thread-safe; outputs go to caller-owned buffers.
 */
#ifndef CAIRN_REMOTE_SIGV4_H
#define CAIRN_REMOTE_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/buf.h"

#define CAIRN_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define CAIRN_SIGV4_UNSIGNED     "UNSIGNED-PAYLOAD"

struct cairn_sigv4_header {
    const char *name;  /* any case; lowercased for signing */
    const char *value; /* trimmed and inner runs of spaces collapsed for signing */
};

struct cairn_sigv4_request {
    const char *method;                       /* "GET", "PUT", ... */
    const char *path;                         /* encoded absolute path, e.g. "/bucket/a%20b" */
    const char *query;                        /* raw query without '?', or NULL/"" */
    const struct cairn_sigv4_header *headers; /* must include host and x-amz-date */
    size_t nheaders;
    const char *payload_hash; /* 64 hex digits or CAIRN_SIGV4_UNSIGNED */
};

struct cairn_sigv4_key {
    const char *access_key;
    const char *secret_key;
    const char *region;   /* "us-east-1" */
    const char *service;  /* "s3" */
    const char *amz_date; /* "YYYYMMDDTHHMMSSZ", the value of x-amz-date */
};

/*
 * Percent-encode `len` bytes of `s` the SigV4 way: everything but the
 * unreserved set A-Z a-z 0-9 - . _ ~ becomes %XX (uppercase hex); '/' is
 * kept when `keep_slash` (object key in a path), encoded otherwise (query
 * names and values). Appends to `out`.
 */
int cairn_sigv4_uri_encode(struct cairn_buf *out, const char *s, size_t len, bool keep_slash);

/*
 * The canonical query string: split on '&', each name and value
 * percent-decoded then re-encoded, a bare name becoming "name=", sorted by
 * encoded name then value. Appends to `out`. Malformed %-escapes are
 * CAIRN_EINVALID.
 */
int cairn_sigv4_canonical_query(struct cairn_buf *out, const char *query);

/* Appends "name1;name2;..." (lowercased, sorted, duplicates once) to `out`. */
int cairn_sigv4_signed_headers(struct cairn_buf *out, const struct cairn_sigv4_request *req);

/* The canonical request, the string to sign and the signature (64 hex digits). */
int cairn_sigv4_canonical_request(struct cairn_buf *out, const struct cairn_sigv4_request *req);
int cairn_sigv4_string_to_sign(struct cairn_buf *out, const struct cairn_sigv4_key *key,
                               const struct cairn_sigv4_request *req);
int cairn_sigv4_signature(char out[65], const struct cairn_sigv4_key *key,
                          const struct cairn_sigv4_request *req);

/*
 * The whole Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=..., Signature=...". Appends to `out`.
 */
int cairn_sigv4_authorization(struct cairn_buf *out, const struct cairn_sigv4_key *key,
                              const struct cairn_sigv4_request *req);

/* Format `t` (UTC) as the x-amz-date value "YYYYMMDDTHHMMSSZ"; `out` holds 17 bytes. */
void cairn_sigv4_amz_date(char out[17], time_t t);

/* Lowercase hex SHA-256 of a byte range; `out` holds 65 bytes. */
void cairn_sigv4_sha256_hex(char out[65], const void *data, size_t len);

#endif
