/*
 * AWS Signature Version 4 signing (see sigv4.h). Called once per HTTP
 * request, so it favours clarity over speed: a few small allocations per
 * signature are nothing next to a network round trip. The secret never
 * leaves this file except as the derived HMAC chain, and intermediate keys
 * are wiped before returning.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cairn/common.h"
#include "remote/sigv4.h"
#include "util/hash.h"

#define MAX_SIGNED_HEADERS 64

static int unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int cairn_sigv4_uri_encode(struct cairn_buf *out, const char *s, size_t len, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    int error = 0;
    for (size_t i = 0; i < len && error == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && (unreserved(c) || (keep_slash && c == '/'))) {
            error = cairn_buf_putc(out, (char)c);
        } else {
            char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
            error = cairn_buf_put(out, esc, 3);
        }
    }
    return error;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode %XX escapes of s[0..len) into `out`; '+' stays '+' (S3 semantics). */
static int percent_decode(struct cairn_buf *out, const char *s, size_t len)
{
    int error = 0;
    for (size_t i = 0; i < len && error == 0; i++) {
        if (s[i] != '%') {
            error = cairn_buf_putc(out, s[i]);
            continue;
        }
        if (i + 2 >= len)
            return cairn_error_set(CAIRN_EINVALID, "bad escape in query '%.*s'", (int)len, s);
        int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
        if (hi < 0 || lo < 0)
            return cairn_error_set(CAIRN_EINVALID, "bad escape in query '%.*s'", (int)len, s);
        error = cairn_buf_putc(out, (char)(hi << 4 | lo));
        i += 2;
    }
    return error;
}

struct qparam {
    char *name;
    char *value;
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Decode then canonically encode s[0..len) into a new string in `*out`. */
static int recode(char **out, const char *s, size_t len)
{
    struct cairn_buf raw = CAIRN_BUF_INIT, enc = CAIRN_BUF_INIT;
    int error;
    if ((error = percent_decode(&raw, s, len)) < 0)
        goto done;
    if ((error = cairn_sigv4_uri_encode(&enc, raw.ptr ? raw.ptr : "", raw.len, false)) < 0)
        goto done;
    if ((error = cairn_buf_puts(&enc, "")) < 0)
        goto done;
    *out = cairn_buf_detach(&enc, NULL);
done:
    cairn_buf_release(&raw);
    cairn_buf_release(&enc);
    return error;
}

int cairn_sigv4_canonical_query(struct cairn_buf *out, const char *query)
{
    struct qparam *params = NULL;
    size_t n = 0, cap = 1;
    int error = 0;

    if (!query || !*query)
        return 0;
    for (const char *p = query; *p; p++)
        cap += *p == '&';
    if (!(params = calloc(cap, sizeof(*params))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    for (const char *p = query; *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        if (len > 0) {
            if ((error = recode(&params[n].name, p, nlen)) < 0)
                goto done;
            if ((error = recode(&params[n].value, eq ? eq + 1 : "", eq ? len - nlen - 1 : 0)) < 0) {
                n++;
                goto done;
            }
            n++;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    qsort(params, n, sizeof(*params), qparam_cmp);
    for (size_t i = 0; i < n && error == 0; i++)
        error = cairn_buf_printf(out, "%s%s=%s", i ? "&" : "", params[i].name, params[i].value);
done:
    for (size_t i = 0; i < n; i++) {
        free(params[i].name);
        free(params[i].value);
    }
    free(params);
    return error;
}

struct hdr {
    char name[128];
    const char *value;
    size_t order;
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Lowercased copies of the header names, sorted (stable for duplicates). */
static int sorted_headers(struct hdr *out, const struct cairn_sigv4_request *req)
{
    if (req->nheaders > MAX_SIGNED_HEADERS)
        return cairn_error_set(CAIRN_EINVALID, "too many headers to sign (%zu)", req->nheaders);
    for (size_t i = 0; i < req->nheaders; i++) {
        size_t len = strlen(req->headers[i].name);
        if (len == 0 || len >= sizeof(out[i].name))
            return cairn_error_set(CAIRN_EINVALID, "bad header name '%s'", req->headers[i].name);
        for (size_t j = 0; j <= len; j++)
            out[i].name[j] = (char)tolower((unsigned char)req->headers[i].name[j]);
        out[i].value = req->headers[i].value ? req->headers[i].value : "";
        out[i].order = i;
    }
    qsort(out, req->nheaders, sizeof(*out), hdr_cmp);
    return 0;
}

/* Trim the value and collapse inner runs of spaces and tabs to one space. */
static int put_trimmed(struct cairn_buf *out, const char *v)
{
    int error = 0, space = 0, any = 0;
    for (; *v && error == 0; v++) {
        if (*v == ' ' || *v == '\t') {
            space = any;
            continue;
        }
        if (space)
            error = cairn_buf_putc(out, ' ');
        if (error == 0)
            error = cairn_buf_putc(out, *v);
        space = 0;
        any = 1;
    }
    return error;
}

static int put_signed_headers(struct cairn_buf *out, const struct hdr *h, size_t n)
{
    int error = 0;
    for (size_t i = 0; i < n && error == 0; i++) {
        if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0)
            continue;
        error = cairn_buf_printf(out, "%s%s", i ? ";" : "", h[i].name);
    }
    return error;
}

int cairn_sigv4_signed_headers(struct cairn_buf *out, const struct cairn_sigv4_request *req)
{
    struct hdr h[MAX_SIGNED_HEADERS];
    int error;
    if ((error = sorted_headers(h, req)) < 0)
        return error;
    return put_signed_headers(out, h, req->nheaders);
}

int cairn_sigv4_canonical_request(struct cairn_buf *out, const struct cairn_sigv4_request *req)
{
    struct hdr h[MAX_SIGNED_HEADERS];
    int error;

    if ((error = sorted_headers(h, req)) < 0)
        return error;
    if ((error = cairn_buf_printf(out, "%s\n%s\n", req->method,
                                  req->path && *req->path ? req->path : "/")) < 0)
        return error;
    if ((error = cairn_sigv4_canonical_query(out, req->query)) < 0)
        return error;
    if ((error = cairn_buf_putc(out, '\n')) < 0)
        return error;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0) {
            /* Duplicates: one line, values in order, comma-separated. */
            if ((error = cairn_buf_putc(out, ',')) < 0)
                return error;
        } else if ((error = cairn_buf_printf(out, "%s%s:", i ? "\n" : "", h[i].name)) < 0) {
            return error;
        }
        if ((error = put_trimmed(out, h[i].value)) < 0)
            return error;
    }
    if ((error = cairn_buf_puts(out, "\n\n")) < 0)
        return error;
    if ((error = put_signed_headers(out, h, req->nheaders)) < 0)
        return error;
    return cairn_buf_printf(out, "\n%s", req->payload_hash);
}

void cairn_sigv4_sha256_hex(char out[65], const void *data, size_t len)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    cairn_hex_encode(out, md, sizeof(md));
}

static int scope(struct cairn_buf *out, const struct cairn_sigv4_key *key)
{
    if (!key->amz_date || strlen(key->amz_date) != 16)
        return cairn_error_set(CAIRN_EINVALID, "bad x-amz-date '%s'",
                               key->amz_date ? key->amz_date : "");
    return cairn_buf_printf(out, "%.8s/%s/%s/aws4_request", key->amz_date, key->region,
                            key->service);
}

int cairn_sigv4_string_to_sign(struct cairn_buf *out, const struct cairn_sigv4_key *key,
                               const struct cairn_sigv4_request *req)
{
    struct cairn_buf creq = CAIRN_BUF_INIT;
    char hash[65];
    int error;

    if ((error = cairn_sigv4_canonical_request(&creq, req)) < 0)
        goto done;
    cairn_sigv4_sha256_hex(hash, creq.ptr, creq.len);
    if ((error = cairn_buf_printf(out, "AWS4-HMAC-SHA256\n%s\n", key->amz_date)) < 0)
        goto done;
    if ((error = scope(out, key)) < 0)
        goto done;
    error = cairn_buf_printf(out, "\n%s", hash);
done:
    cairn_buf_release(&creq);
    return error;
}

static void hmac(unsigned char out[32], const void *k, size_t klen, const void *d, size_t dlen)
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), k, (int)klen, d, dlen, out, &len);
}

int cairn_sigv4_signature(char out[65], const struct cairn_sigv4_key *key,
                          const struct cairn_sigv4_request *req)
{
    struct cairn_buf sts = CAIRN_BUF_INIT, k0 = CAIRN_BUF_INIT;
    unsigned char kdate[32], kregion[32], kservice[32], ksign[32], sig[32];
    int error;

    if ((error = cairn_sigv4_string_to_sign(&sts, key, req)) < 0)
        goto done;
    if ((error = cairn_buf_printf(&k0, "AWS4%s", key->secret_key)) < 0)
        goto done;
    hmac(kdate, k0.ptr, k0.len, key->amz_date, 8);
    hmac(kregion, kdate, 32, key->region, strlen(key->region));
    hmac(kservice, kregion, 32, key->service, strlen(key->service));
    hmac(ksign, kservice, 32, "aws4_request", 12);
    hmac(sig, ksign, 32, sts.ptr, sts.len);
    cairn_hex_encode(out, sig, sizeof(sig));
done:
    if (k0.ptr)
        OPENSSL_cleanse(k0.ptr, k0.len);
    OPENSSL_cleanse(kdate, sizeof(kdate));
    OPENSSL_cleanse(kregion, sizeof(kregion));
    OPENSSL_cleanse(kservice, sizeof(kservice));
    OPENSSL_cleanse(ksign, sizeof(ksign));
    cairn_buf_release(&k0);
    cairn_buf_release(&sts);
    return error;
}

int cairn_sigv4_authorization(struct cairn_buf *out, const struct cairn_sigv4_key *key,
                              const struct cairn_sigv4_request *req)
{
    char sig[65];
    int error;

    if ((error = cairn_sigv4_signature(sig, key, req)) < 0)
        return error;
    if ((error = cairn_buf_printf(out, "AWS4-HMAC-SHA256 Credential=%s/", key->access_key)) < 0)
        return error;
    if ((error = scope(out, key)) < 0)
        return error;
    if ((error = cairn_buf_puts(out, ", SignedHeaders=")) < 0)
        return error;
    if ((error = cairn_sigv4_signed_headers(out, req)) < 0)
        return error;
    return cairn_buf_printf(out, ", Signature=%s", sig);
}

void cairn_sigv4_amz_date(char out[17], time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
