/*
 * The s3://bucket/prefix remote: S3's REST API over libcurl, signed with
 * SigV4 (sigv4.c), for AWS and S3-compatible servers (Swift's s3api, MinIO,
 * Ceph).
 *
 * Every operation becomes one or more `struct req`s run by one engine
 * (run()) on a libcurl multi handle: up to `concurrency` requests in flight,
 * retries with exponential backoff and jitter on timeouts, dropped
 * connections, 5xx, 429 and RequestTimeout, each attempt freshly signed.
 * The multi handle lives as long as the remote, so connections are reused
 * across operations.
 *
 * Memory stays bounded whatever the object size: request bodies are read
 * from the caller's fd with pread in the read callback, responses with data
 * go straight to the caller's sink, and only XML answers (bounded at 16 MiB,
 * paged by the server) are buffered. Every body is hashed before it is sent
 * (SHA-256 for x-amz-content-sha256, MD5 for Content-MD5 so the server
 * rejects a body damaged on the way); that costs one extra read of each
 * part, from the page cache in practice. We never send UNSIGNED-PAYLOAD.
 *
 * Big files go up as multipart uploads. An interrupted upload is left on
 * the server on purpose: the next put_file of the same key finds it with
 * ListMultipartUploads, asks ListParts what arrived, and sends only parts
 * whose size or MD5 ETag differ. Completion is checked with a HEAD.
 *
 * Errors name their cause: the server's <Code> and <Message> for 403 (wrong
 * credentials, SignatureDoesNotMatch), NoSuchBucket, RequestTimeTooSkewed
 * (clock skew), the endpoint that could not be reached. Secrets never appear
 * in a message.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* No type-checking macros: they would call the functions, not the pointers below. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cairn/common.h"
#include "remote/backend.h"
#include "remote/s3.h"
#include "remote/sigv4.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define XML_LIMIT     ((size_t)16 << 20)
#define ERRBODY_LIMIT ((size_t)64 << 10)
#define HASH_BLOCK    ((size_t)256 << 10)
#define MAX_PARTS     10000
#define MIN_PART      ((uint64_t)5 << 20)

/* ---- XML, INI and endpoint parsing (s3.h) ---------------------------------------------- */

int cairn__s3_xml_next(const char **body, size_t *body_len, const char *xml, size_t len,
                       const char *tag, size_t *pos)
{
    size_t tlen = strlen(tag);
    size_t i = *pos;

    while (i < len) {
        const char *lt = memchr(xml + i, '<', len - i);
        size_t at, start;
        if (!lt)
            break;
        at = (size_t)(lt - xml);
        i = at + 1;
        if (len - at < tlen + 2 || memcmp(xml + at + 1, tag, tlen) != 0)
            continue;
        start = at + 1 + tlen;
        if (xml[start] == '/' && start + 1 < len && xml[start + 1] == '>') {
            *body = xml + start;
            *body_len = 0;
            *pos = start + 2;
            return 1;
        }
        if (xml[start] != '>')
            continue;
        start++;
        /* Find "</tag>". */
        for (size_t j = start; j + tlen + 3 <= len; j++) {
            const char *c = memchr(xml + j, '<', len - j);
            if (!c)
                break;
            j = (size_t)(c - xml);
            if (j + tlen + 3 <= len && xml[j + 1] == '/' && memcmp(xml + j + 2, tag, tlen) == 0 &&
                xml[j + 2 + tlen] == '>') {
                *body = xml + start;
                *body_len = j - start;
                *pos = j + tlen + 3;
                return 1;
            }
        }
        break;
    }
    *pos = len;
    return 0;
}

static int put_utf8(struct cairn_buf *out, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return CAIRN_EINVALID;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return cairn_buf_put(out, u, n);
}

static int xml_decode(struct cairn_buf *out, const char *s, size_t len)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {
        { "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' }, { "quot;", '"' }, { "apos;", '\'' }
    };
    int error = 0;

    if ((error = cairn_buf_grow(out, len)) < 0)
        return error;
    for (size_t i = 0; i < len && error == 0; i++) {
        size_t rest = len - i - 1, k;
        if (s[i] != '&') {
            error = cairn_buf_putc(out, s[i]);
            continue;
        }
        for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
            size_t n = strlen(ents[k].name);
            if (rest >= n && memcmp(s + i + 1, ents[k].name, n) == 0) {
                error = cairn_buf_putc(out, ents[k].c);
                i += n;
                break;
            }
        }
        if (k < sizeof(ents) / sizeof(ents[0]))
            continue;
        if (rest >= 3 && s[i + 1] == '#') {
            int hex = s[i + 2] == 'x' || s[i + 2] == 'X';
            size_t j = i + 2 + (size_t)hex;
            unsigned long cp = 0;
            size_t digits = 0;
            for (; j < len && s[j] != ';' && digits < 8; j++, digits++) {
                int d = s[j] >= '0' && s[j] <= '9'          ? s[j] - '0'
                        : hex && s[j] >= 'a' && s[j] <= 'f' ? s[j] - 'a' + 10
                        : hex && s[j] >= 'A' && s[j] <= 'F' ? s[j] - 'A' + 10
                                                            : -1;
                if (d < 0)
                    break;
                cp = cp * (hex ? 16 : 10) + (unsigned long)d;
            }
            if (digits > 0 && j < len && s[j] == ';') {
                if ((error = put_utf8(out, cp)) < 0)
                    return cairn_error_set(CAIRN_EINVALID, "bad character reference in response");
                i = j;
                continue;
            }
        }
        return cairn_error_set(CAIRN_EINVALID, "bad entity in response");
    }
    return error;
}

int cairn__s3_xml_text(struct cairn_buf *out, const char *xml, size_t len, const char *tag)
{
    const char *body;
    size_t blen, pos = 0;
    int error;
    if (!cairn__s3_xml_next(&body, &blen, xml, len, tag, &pos))
        return 0;
    if ((error = xml_decode(out, body, blen)) < 0)
        return error;
    return cairn_buf_puts(out, "") < 0 ? CAIRN_ENOMEM : 1;
}

static size_t trim_span(const char **s, size_t len)
{
    while (len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        len--;
    }
    while (len > 0 && ((*s)[len - 1] == ' ' || (*s)[len - 1] == '\t' || (*s)[len - 1] == '\r'))
        len--;
    return len;
}

int cairn__s3_ini_get(struct cairn_buf *out, const char *text, size_t len, const char *section,
                      const char *key)
{
    int in_section = 0;
    size_t pos = 0;

    while (pos < len) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        pos += llen + (nl ? 1 : 0);
        llen = trim_span(&line, llen);
        if (llen == 0 || line[0] == '#' || line[0] == ';')
            continue;
        if (line[0] == '[') {
            const char *name = line + 1;
            size_t nlen;
            if (line[llen - 1] != ']' || llen < 2) {
                in_section = 0;
                continue;
            }
            nlen = trim_span(&name, llen - 2);
            in_section = nlen == strlen(section) && memcmp(name, section, nlen) == 0;
            continue;
        }
        if (!in_section)
            continue;
        const char *eq = memchr(line, '=', llen);
        if (!eq)
            continue;
        const char *k = line, *v = eq + 1;
        size_t klen = trim_span(&k, (size_t)(eq - line));
        size_t vlen = trim_span(&v, llen - (size_t)(eq - line) - 1);
        if (klen == strlen(key) && memcmp(k, key, klen) == 0) {
            int error = cairn_buf_put(out, v, vlen);
            if (error == 0)
                error = cairn_buf_puts(out, "");
            return error < 0 ? error : 1;
        }
    }
    return 0;
}

int cairn__s3_parse_endpoint(char **scheme_out, char **host_out, const char *endpoint)
{
    const char *host;
    size_t hlen;

    *scheme_out = *host_out = NULL;
    if (strncmp(endpoint, "http://", 7) == 0) {
        host = endpoint + 7;
        *scheme_out = strdup("http");
    } else if (strncmp(endpoint, "https://", 8) == 0) {
        host = endpoint + 8;
        *scheme_out = strdup("https");
    } else {
        return cairn_error_set(CAIRN_EINVALID,
                               "invalid endpoint '%s' (use http://host:port or https://host)",
                               endpoint);
    }
    hlen = strlen(host);
    while (hlen > 0 && host[hlen - 1] == '/')
        hlen--;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= ' ' || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\') {
            free(*scheme_out);
            *scheme_out = NULL;
            return cairn_error_set(CAIRN_EINVALID,
                                   "invalid endpoint '%s' (use http://host:port or https://host)",
                                   endpoint);
        }
    }
    if (hlen == 0 || hlen > 255) {
        free(*scheme_out);
        *scheme_out = NULL;
        return cairn_error_set(CAIRN_EINVALID, "invalid endpoint '%s' (no host)", endpoint);
    }
    if (!*scheme_out || !(*host_out = strndup(host, hlen))) {
        free(*scheme_out);
        *scheme_out = NULL;
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- the remote ------------------------------------------------------------------------- */

struct s3_remote {
    struct cairn_remote base;
    char *bucket;
    char *prefix;   /* "" or ending in '/' */
    char *scheme;   /* "http" or "https" */
    char *host;     /* Host header value: endpoint host or bucket.host */
    char *endpoint; /* scheme://endpoint-host, for messages */
    int path_style;
    char *region;
    char *access_key, *secret_key, *token;
    CURLM *multi;
    struct cairn_remote_opts o;
};

enum body_kind { BODY_NONE, BODY_MEM, BODY_FD };

struct req {
    struct s3_remote *s3;
    const char *method;
    struct cairn_buf path;  /* encoded, as on the wire */
    struct cairn_buf query; /* raw, as on the wire, or empty */
    const char *what;       /* the key or bucket, for messages */
    /* request body */
    enum body_kind body;
    const char *mem;
    int fd;
    uint64_t off, len, pos;
    int hashed;
    char sha256[65];
    char md5_b64[32];
    char md5_hex[33];
    /* response data to a sink (GET object) */
    cairn_remote_sink_fn sink;
    void *payload;
    uint64_t roff, rlen, got;
    uint64_t astart; /* first byte this attempt asked for */
    int sink_error;
    /* response */
    struct cairn_buf resp;
    long status;
    char etag[96];
    /* engine */
    size_t index; /* the caller's index (batch item, part number) */
    int attempts;
    double not_before;
    int done;
    int result;
    char errbuf[CURL_ERROR_SIZE];
    char errmsg[512];
    CURL *easy;
    struct curl_slist *headers;
};

/*
 * libcurl is loaded with dlopen() the first time an s3:// remote is opened,
 * as lib/model/blas.c does for OpenBLAS: linked eagerly, it and the ~25
 * libraries it needs (TLS, Kerberos, LDAP, ...) were mapped and relocated by
 * every command, a third of a cold `cairn add` of an unchanged file. Every
 * curl call in this file goes through this table, filled once by curl_init();
 * none is made before cairn__s3_open() has loaded it.
 */
static struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *e);
    void (*easy_reset)(CURL *e);
    CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode rc);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *m);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_perform)(CURLM *m, int *running);
    CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd *fds, unsigned nfds, int timeout_ms,
                            int *numfds);
    CURLMsg *(*multi_info_read)(CURLM *m, int *left);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
} curlfn;

/* curl.h defines these three as macros (pass-through without type checks). */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init         curlfn.global_init
#define curl_easy_init           curlfn.easy_init
#define curl_easy_cleanup        curlfn.easy_cleanup
#define curl_easy_reset          curlfn.easy_reset
#define curl_easy_setopt         curlfn.easy_setopt
#define curl_easy_getinfo        curlfn.easy_getinfo
#define curl_easy_strerror       curlfn.easy_strerror
#define curl_multi_init          curlfn.multi_init
#define curl_multi_cleanup       curlfn.multi_cleanup
#define curl_multi_setopt        curlfn.multi_setopt
#define curl_multi_add_handle    curlfn.multi_add_handle
#define curl_multi_remove_handle curlfn.multi_remove_handle
#define curl_multi_perform       curlfn.multi_perform
#define curl_multi_poll          curlfn.multi_poll
#define curl_multi_info_read     curlfn.multi_info_read
#define curl_slist_append        curlfn.slist_append
#define curl_slist_free_all      curlfn.slist_free_all

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ready;
static char curl_load_error[256];

static void curl_init(void)
{
    static const struct {
        const char *name;
        size_t off;
    } syms[] = {
#define SYM(f) { "curl_" #f, offsetof(__typeof__(curlfn), f) }
        SYM(global_init),    SYM(easy_init),    SYM(easy_cleanup),     SYM(easy_reset),
        SYM(easy_setopt),    SYM(easy_getinfo), SYM(easy_strerror),    SYM(multi_init),
        SYM(multi_cleanup),  SYM(multi_setopt), SYM(multi_add_handle), SYM(multi_remove_handle),
        SYM(multi_perform),  SYM(multi_poll),   SYM(multi_info_read),  SYM(slist_append),
        SYM(slist_free_all),
#undef SYM
    };
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);

    if (!h) {
        const char *e = dlerror();
        snprintf(curl_load_error, sizeof(curl_load_error), "%s", e ? e : "not found");
        return;
    }
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f) {
            snprintf(curl_load_error, sizeof(curl_load_error), "no %s in libcurl.so.4",
                     syms[i].name);
            return;
        }
        memcpy((char *)&curlfn + syms[i].off, &f, sizeof(f));
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(curl_load_error, sizeof(curl_load_error), "curl_global_init failed");
        return;
    }
    curl_ready = 1;
}

static void req_init(struct req *q, struct s3_remote *s3, const char *method, const char *what)
{
    memset(q, 0, sizeof(*q));
    q->s3 = s3;
    q->method = method;
    q->what = what;
    q->fd = -1;
    q->rlen = CAIRN_REMOTE_TO_END;
    cairn_buf_init(&q->resp, ERRBODY_LIMIT);
}

static void req_release(struct req *q)
{
    if (q->easy) {
        curl_multi_remove_handle(q->s3->multi, q->easy);
        curl_easy_cleanup(q->easy);
        q->easy = NULL;
    }
    curl_slist_free_all(q->headers);
    q->headers = NULL;
    cairn_buf_release(&q->path);
    cairn_buf_release(&q->query);
    cairn_buf_release(&q->resp);
}

/* The wire path for `key` (relative to the remote prefix; NULL for the bucket itself). */
static int req_set_key(struct req *q, const char *key, int with_prefix)
{
    struct s3_remote *s3 = q->s3;
    int error = 0;
    cairn_buf_clear(&q->path);
    if (s3->path_style) {
        error = cairn_buf_printf(&q->path, "/%s", s3->bucket);
        if (error == 0 && key)
            error = cairn_buf_putc(&q->path, '/');
    } else {
        error = cairn_buf_putc(&q->path, '/');
    }
    if (error == 0 && key && with_prefix)
        error = cairn_sigv4_uri_encode(&q->path, s3->prefix, strlen(s3->prefix), true);
    if (error == 0 && key)
        error = cairn_sigv4_uri_encode(&q->path, key, strlen(key), true);
    return error;
}

/* Append "&name=value" (value encoded) to the query. */
static int req_add_query(struct req *q, const char *name, const char *value)
{
    int error = cairn_buf_printf(&q->query, "%s%s", q->query.len ? "&" : "", name);
    if (error == 0 && value) {
        error = cairn_buf_putc(&q->query, '=');
        if (error == 0)
            error = cairn_sigv4_uri_encode(&q->query, value, strlen(value), false);
    }
    return error;
}

/* Hash the body (SHA-256 and MD5) once, reading an fd range in blocks. */
static int req_hash_body(struct req *q)
{
    EVP_MD_CTX *sha = NULL, *md5 = NULL;
    unsigned char d[32], m[16];
    unsigned int dl = 0, ml = 0;
    char *block = NULL;
    int error = 0;

    if (q->hashed)
        return 0;
    if (q->body == BODY_NONE) {
        memcpy(q->sha256, CAIRN_SIGV4_EMPTY_SHA256, 65);
        q->hashed = 1;
        return 0;
    }
    sha = EVP_MD_CTX_new();
    md5 = EVP_MD_CTX_new();
    if (!sha || !md5 || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL) ||
        !EVP_DigestInit_ex(md5, EVP_md5(), NULL)) {
        error = cairn_error_set(CAIRN_ERROR, "cannot initialise SHA-256/MD5");
        goto done;
    }
    if (q->body == BODY_MEM) {
        EVP_DigestUpdate(sha, q->mem, (size_t)q->len);
        EVP_DigestUpdate(md5, q->mem, (size_t)q->len);
    } else {
        if (!(block = malloc(HASH_BLOCK))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        for (uint64_t p = 0; p < q->len;) {
            size_t want = q->len - p < HASH_BLOCK ? (size_t)(q->len - p) : HASH_BLOCK;
            ssize_t n = cairn_fs_pread_full(q->fd, block, want, (off_t)(q->off + p));
            if (n < 0) {
                error = (int)n;
                goto done;
            }
            if ((size_t)n < want) {
                error = cairn_error_set(CAIRN_EINVALID, "source for '%s' ends before %llu bytes",
                                        q->what, (unsigned long long)(q->off + q->len));
                goto done;
            }
            EVP_DigestUpdate(sha, block, want);
            EVP_DigestUpdate(md5, block, want);
            p += want;
        }
    }
    EVP_DigestFinal_ex(sha, d, &dl);
    EVP_DigestFinal_ex(md5, m, &ml);
    cairn_hex_encode(q->sha256, d, 32);
    cairn_hex_encode(q->md5_hex, m, 16);
    EVP_EncodeBlock((unsigned char *)q->md5_b64, m, 16);
    q->hashed = 1;
done:
    free(block);
    EVP_MD_CTX_free(sha);
    EVP_MD_CTX_free(md5);
    return error;
}

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *ud)
{
    struct req *q = ud;
    size_t want = size * nmemb;
    if (q->len - q->pos < want)
        want = (size_t)(q->len - q->pos);
    if (want == 0)
        return 0;
    if (q->body == BODY_MEM) {
        memcpy(buf, q->mem + q->pos, want);
    } else {
        ssize_t n = cairn_fs_pread_full(q->fd, buf, want, (off_t)(q->off + q->pos));
        if (n != (ssize_t)want) {
            snprintf(q->errmsg, sizeof(q->errmsg), "cannot read the source of '%s'", q->what);
            return CURL_READFUNC_ABORT;
        }
    }
    q->pos += want;
    return want;
}

static int seek_cb(void *ud, curl_off_t offset, int origin)
{
    struct req *q = ud;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > q->len)
        return CURL_SEEKFUNC_CANTSEEK;
    q->pos = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct req *q = ud;
    size_t n = size * nmemb;
    long status = 0;

    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
    if (q->sink && status / 100 == 2) {
        if (status == 200 && q->astart > 0) {
            q->sink_error = cairn_error_set(
                CAIRN_ECORRUPT, "server ignored the byte range asked for '%s'", q->what);
            return 0;
        }
        if (q->rlen != CAIRN_REMOTE_TO_END && n > q->rlen - q->got) {
            q->sink_error = cairn_error_set(
                CAIRN_ECORRUPT, "server sent more of '%s' than the range asked", q->what);
            return 0;
        }
        if ((q->sink_error = q->sink(q->payload, data, n)) < 0)
            return 0;
        q->got += n;
        cairn__remote_count(&q->s3->base, 0, n);
        return n;
    }
    if (cairn_buf_put(&q->resp, data, n) < 0) {
        q->sink_error = cairn_error_set(CAIRN_ENOMEM, "response for '%s' too large", q->what);
        return 0;
    }
    return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct req *q = ud;
    size_t n = size * nmemb;
    if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
        const char *v = data + 5;
        size_t vlen = trim_span(&v, n - 5);
        while (vlen > 0 && (v[vlen - 1] == '\n' || v[vlen - 1] == '\r'))
            vlen--;
        if (vlen < sizeof(q->etag)) {
            memcpy(q->etag, v, vlen);
            q->etag[vlen] = 0;
        }
    }
    return n;
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    struct curl_slist *l;
    int error = cairn_buf_printf(&b, "%s: %s", name, value);
    if (error == 0) {
        if (!(l = curl_slist_append(*list, b.ptr)))
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        else
            *list = l;
    }
    if (b.ptr)
        OPENSSL_cleanse(b.ptr, b.len);
    cairn_buf_release(&b);
    return error;
}

/* Sign and build the easy handle for one attempt of `q`. */
static int req_prepare(struct req *q)
{
    struct s3_remote *s3 = q->s3;
    struct cairn_sigv4_header h[8];
    struct cairn_buf auth = CAIRN_BUF_INIT, url = CAIRN_BUF_INIT;
    char date[17], range[64];
    size_t nh = 0;
    int error;

    if ((error = req_hash_body(q)) < 0)
        goto done;
    q->pos = 0;
    q->status = 0;
    q->etag[0] = 0;
    q->errbuf[0] = 0;
    q->sink_error = 0;
    q->astart = q->roff + q->got;
    cairn_buf_clear(&q->resp);
    cairn_sigv4_amz_date(date, time(NULL));
    h[nh++] = (struct cairn_sigv4_header){ "host", s3->host };
    h[nh++] = (struct cairn_sigv4_header){ "x-amz-content-sha256", q->sha256 };
    h[nh++] = (struct cairn_sigv4_header){ "x-amz-date", date };
    if (s3->token)
        h[nh++] = (struct cairn_sigv4_header){ "x-amz-security-token", s3->token };
    if (q->body != BODY_NONE)
        h[nh++] = (struct cairn_sigv4_header){ "content-md5", q->md5_b64 };
    if (q->sink && (q->roff + q->got > 0 || q->rlen != CAIRN_REMOTE_TO_END)) {
        uint64_t start = q->roff + q->got;
        if (q->rlen == CAIRN_REMOTE_TO_END)
            snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)start);
        else
            snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)start,
                     (unsigned long long)(q->roff + q->rlen - 1));
        h[nh++] = (struct cairn_sigv4_header){ "range", range };
    }
    struct cairn_sigv4_key key = { s3->access_key, s3->secret_key, s3->region, "s3", date };
    struct cairn_sigv4_request sreq = { q->method, q->path.ptr, q->query.ptr, h, nh, q->sha256 };
    if ((error = cairn_sigv4_authorization(&auth, &key, &sreq)) < 0)
        goto done;

    curl_slist_free_all(q->headers);
    q->headers = NULL;
    for (size_t i = 0; i < nh && error == 0; i++)
        error = add_header(&q->headers, h[i].name, h[i].value);
    if (error == 0)
        error = add_header(&q->headers, "Authorization", auth.ptr);
    if (error == 0 && strcmp(q->method, "POST") == 0)
        error = add_header(&q->headers, "Content-Type", "application/xml");
    if (error < 0)
        goto done;
    if ((error = cairn_buf_printf(&url, "%s://%s%s%s%s", s3->scheme, s3->host, q->path.ptr,
                                  q->query.len ? "?" : "", q->query.len ? q->query.ptr : "")) < 0)
        goto done;

    if (!q->easy && !(q->easy = curl_easy_init())) {
        error = cairn_error_set(CAIRN_ENOMEM, "cannot create a curl handle");
        goto done;
    }
    CURL *e = q->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url.ptr);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, s3->o.timeout_s);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, q);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
    curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS, 2000L);
    if (strcmp(q->method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->len);
    } else if (strcmp(q->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
    } else if (strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(q->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
    }
    if (q->body != BODY_NONE) {
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, q);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, q);
    }
    if (curl_multi_add_handle(s3->multi, e) != CURLM_OK)
        error = cairn_error_set(CAIRN_ERROR, "cannot start a transfer");
done:
    if (auth.ptr)
        OPENSSL_cleanse(auth.ptr, auth.len);
    cairn_buf_release(&auth);
    cairn_buf_release(&url);
    return error;
}

/* Keep server text printable and short before it goes into a message. */
static void clean_text(char *s)
{
    size_t n = 0;
    for (char *p = s; *p && n < 300; p++, n++) {
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = ' ';
    }
    s[n] = 0;
}

/* Fill q->result and q->errmsg from a non-2xx answer. */
static void req_http_error(struct req *q)
{
    struct s3_remote *s3 = q->s3;
    struct cairn_buf code = CAIRN_BUF_INIT, msg = CAIRN_BUF_INIT;
    char cnone[1] = "", mnone[1] = "";
    char *c = cnone, *m = mnone;
    int result = CAIRN_ERROR;

    cairn_buf_init(&code, 256);
    cairn_buf_init(&msg, 1024);
    if (q->resp.len > 0) {
        if (cairn__s3_xml_text(&code, q->resp.ptr, q->resp.len, "Code") > 0)
            c = code.ptr;
        if (cairn__s3_xml_text(&msg, q->resp.ptr, q->resp.len, "Message") > 0)
            m = msg.ptr;
    }
    clean_text(c);
    clean_text(m);
    if (strcmp(c, "NoSuchBucket") == 0) {
        result = CAIRN_ENOTFOUND;
        snprintf(q->errmsg, sizeof(q->errmsg), "bucket '%s' does not exist at '%s'", s3->bucket,
                 s3->endpoint);
    } else if (q->status == 404) {
        result = CAIRN_ENOTFOUND;
        snprintf(q->errmsg, sizeof(q->errmsg), "object '%s' not found in 's3://%s/%s'%s%s", q->what,
                 s3->bucket, s3->prefix, *c ? ": " : "", c);
    } else if (strcmp(c, "RequestTimeTooSkewed") == 0) {
        snprintf(q->errmsg, sizeof(q->errmsg),
                 "clock skew: '%s' rejected the request time (%s: %s); fix this machine's clock",
                 s3->endpoint, c, m);
    } else if (q->status == 403 || q->status == 401) {
        snprintf(q->errmsg, sizeof(q->errmsg),
                 "access denied by '%s' for %s '%s' (HTTP %ld%s%s%s%s); check the credentials "
                 "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the bucket policy",
                 s3->endpoint, q->method, q->what, q->status, *c ? " " : "", c, *m ? ": " : "", m);
    } else if (q->status == 416) {
        result = CAIRN_ECORRUPT;
        snprintf(q->errmsg, sizeof(q->errmsg), "object '%s' is shorter than the range asked",
                 q->what);
    } else if (strcmp(c, "BadDigest") == 0 || strcmp(c, "InvalidDigest") == 0 ||
               strcmp(c, "XAmzContentSHA256Mismatch") == 0) {
        result = CAIRN_ECORRUPT;
        snprintf(q->errmsg, sizeof(q->errmsg), "'%s' rejected the data of '%s' as damaged (%s: %s)",
                 s3->endpoint, q->what, c, m);
    } else {
        snprintf(q->errmsg, sizeof(q->errmsg), "%s '%s' failed at '%s': HTTP %ld%s%s%s%s",
                 q->method, q->what, s3->endpoint, q->status, *c ? " " : "", c, *m ? ": " : "", m);
    }
    q->result = result;
    cairn_buf_release(&code);
    cairn_buf_release(&msg);
}

static int curl_retriable(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

static int http_retriable(struct req *q)
{
    if (q->status >= 500 || q->status == 429)
        return 1;
    if (q->status == 400 && q->resp.len > 0 &&
        (memmem(q->resp.ptr, q->resp.len, "<Code>RequestTimeout</Code>", 27) ||
         memmem(q->resp.ptr, q->resp.len, "<Code>SlowDown</Code>", 21)))
        return 1;
    return 0;
}

static void schedule_retry(struct req *q)
{
    double delay = 0.2 * (double)(1u << (q->attempts < 6 ? q->attempts : 6));
    if (delay > 8)
        delay = 8;
    delay *= 0.5 + 0.5 * ((double)(rand() % 1000) / 1000.0);
    q->not_before = cairn_time_monotonic() + delay;
}

/* An attempt ended: decide between done and retry. */
static void req_finish(struct req *q, CURLcode rc)
{
    struct s3_remote *s3 = q->s3;
    int retry = 0;

    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &q->status);
    curl_multi_remove_handle(s3->multi, q->easy);
    q->attempts++;
    if (q->sink_error < 0) {
        q->result = q->sink_error;
        snprintf(q->errmsg, sizeof(q->errmsg), "%s", cairn_error_last());
    } else if (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_READ_ERROR) {
        q->result = CAIRN_ERROR;
        if (!q->errmsg[0])
            snprintf(q->errmsg, sizeof(q->errmsg), "cannot read the source of '%s'", q->what);
    } else if (rc != CURLE_OK) {
        retry = curl_retriable(rc);
        q->result = CAIRN_ERROR;
        if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
            rc == CURLE_COULDNT_RESOLVE_PROXY)
            snprintf(q->errmsg, sizeof(q->errmsg), "cannot reach '%s': %s", s3->endpoint,
                     q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc));
        else
            snprintf(q->errmsg, sizeof(q->errmsg), "%s '%s' at '%s' failed: %s", q->method, q->what,
                     s3->endpoint, q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc));
    } else if (q->status / 100 != 2) {
        retry = http_retriable(q);
        req_http_error(q);
    } else if (q->sink && q->rlen != CAIRN_REMOTE_TO_END && q->got != q->rlen) {
        q->result = CAIRN_ECORRUPT;
        snprintf(q->errmsg, sizeof(q->errmsg),
                 "object '%s' is shorter than the range asked (%llu of %llu bytes)", q->what,
                 (unsigned long long)q->got, (unsigned long long)q->rlen);
    } else {
        q->result = 0;
        q->errmsg[0] = 0;
    }
    if (retry && q->attempts <= s3->o.max_retries) {
        schedule_retry(q);
        return;
    }
    q->done = 1;
    if (q->result == 0 && strcmp(q->method, "PUT") == 0) /* object data, not XML */
        cairn__remote_count(&s3->base, q->len, 0);
}

/*
 * Run `n` requests to completion, at most `concurrency` at once, starting
 * them in array order; retries wait out their backoff first. Each request
 * gets its own result; returns the first failure's code (message in the
 * slot).
 */
static int run(struct s3_remote *s3, struct req **qs, size_t n)
{
    size_t fresh = 0, active = 0, ndone = 0, nretry = 0;
    int error = 0;

    for (size_t i = 0; i < n; i++) {
        qs[i]->done = 0;
        qs[i]->not_before = 0;
    }
    while (ndone < n) {
        double now = cairn_time_monotonic(), wake = now + 1.0;
        int still = 0, finished = 0, left;
        CURLMsg *msg;

        /* Retries whose backoff is over first, then requests never started. */
        for (size_t i = 0; nretry > 0 && i < fresh && active < (size_t)s3->o.concurrency; i++) {
            struct req *q = qs[i];
            if (q->done || q->not_before <= 0)
                continue;
            if (q->not_before > now) {
                wake = q->not_before < wake ? q->not_before : wake;
                continue;
            }
            nretry--;
            q->not_before = 0;
            if (req_prepare(q) == 0) {
                active++;
                continue;
            }
            q->result = cairn_error_last_code();
            snprintf(q->errmsg, sizeof(q->errmsg), "%s", cairn_error_last());
            q->done = 1;
            ndone++;
        }
        while (fresh < n && active < (size_t)s3->o.concurrency) {
            struct req *q = qs[fresh++];
            if (req_prepare(q) == 0) {
                active++;
                continue;
            }
            q->result = cairn_error_last_code();
            snprintf(q->errmsg, sizeof(q->errmsg), "%s", cairn_error_last());
            q->done = 1;
            ndone++;
        }
        if (ndone == n)
            break;
        if (curl_multi_perform(s3->multi, &still) != CURLM_OK) {
            error = cairn_error_set(CAIRN_ERROR, "curl multi interface failed");
            break;
        }
        while ((msg = curl_multi_info_read(s3->multi, &left))) {
            struct req *q = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
            req_finish(q, msg->data.result);
            active--;
            finished = 1;
            if (q->done)
                ndone++;
            else
                nretry++;
        }
        if (finished)
            continue;
        int ms = (int)((wake - cairn_time_monotonic()) * 1000);
        curl_multi_poll(s3->multi, NULL, 0, ms < 1 ? 1 : ms > 1000 ? 1000 : ms, NULL);
    }
    if (error < 0) {
        for (size_t i = 0; i < n; i++) {
            if (qs[i]->easy)
                curl_multi_remove_handle(s3->multi, qs[i]->easy);
        }
        return error;
    }
    for (size_t i = 0; i < n; i++) {
        if (qs[i]->result < 0)
            return cairn_error_set(qs[i]->result, "%s", qs[i]->errmsg);
    }
    return 0;
}

static int run1(struct req *q)
{
    return run(q->s3, &q, 1);
}

/* ---- single-object operations ------------------------------------------------------------ */

static int s3_put_buf(struct cairn_remote *r, const char *key, const void *data, size_t len)
{
    struct s3_remote *s3 = (struct s3_remote *)r;
    struct req q;
    int error;
    req_init(&q, s3, "PUT", key);
    if ((error = req_set_key(&q, key, 1)) == 0) {
        q.body = BODY_MEM;
        q.mem = data;
        q.len = len;
        error = run1(&q);
    }
    req_release(&q);
    return error;
}

static int put_single(struct s3_remote *s3, const char *key, int fd, uint64_t off, uint64_t len)
{
    struct req q;
    int error;
    req_init(&q, s3, "PUT", key);
    if ((error = req_set_key(&q, key, 1)) == 0) {
        q.body = BODY_FD;
        q.fd = fd;
        q.off = off;
        q.len = len;
        error = run1(&q);
    }
    req_release(&q);
    return error;
}

static int s3_head(struct cairn_remote *r, uint64_t *size_out, const char *key)
{
    struct s3_remote *s3 = (struct s3_remote *)r;
    struct req q;
    int error;
    req_init(&q, s3, "HEAD", key);
    if ((error = req_set_key(&q, key, 1)) == 0 && (error = run1(&q)) == 0) {
        curl_off_t cl = -1;
        curl_easy_getinfo(q.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl < 0)
            error = cairn_error_set(CAIRN_ERROR, "'%s' sent no size for '%s'", s3->endpoint, key);
        else
            *size_out = (uint64_t)cl;
    }
    req_release(&q);
    return error;
}

static int s3_get(struct cairn_remote *r, const char *key, uint64_t off, uint64_t len,
                  cairn_remote_sink_fn sink, void *payload)
{
    struct s3_remote *s3 = (struct s3_remote *)r;
    struct req q;
    int error;

    if (len == 0) {
        /* An empty range cannot be asked for; check the object is long enough instead. */
        uint64_t size = 0;
        if ((error = s3_head(r, &size, key)) == 0 && size < off)
            error =
                cairn_error_set(CAIRN_ECORRUPT, "object '%s' is shorter than the range asked", key);
        return error;
    }
    req_init(&q, s3, "GET", key);
    if ((error = req_set_key(&q, key, 1)) == 0) {
        q.sink = sink;
        q.payload = payload;
        q.roff = off;
        q.rlen = len;
        error = run1(&q);
    }
    req_release(&q);
    return error;
}

static int s3_del(struct cairn_remote *r, const char *key)
{
    struct s3_remote *s3 = (struct s3_remote *)r;
    struct req q;
    int error;
    req_init(&q, s3, "DELETE", key);
    if ((error = req_set_key(&q, key, 1)) == 0) {
        error = run1(&q);
        if (error == CAIRN_ENOTFOUND && q.status == 404 &&
            !memmem(q.resp.ptr ? q.resp.ptr : "", q.resp.len, "NoSuchBucket", 12)) {
            cairn_error_clear();
            error = 0;
        }
    }
    req_release(&q);
    return error;
}

/* Does the XML answer carry an <Error> (S3 may answer 200 and fail, e.g. CompleteMultipartUpload)?
 */
static int body_error(struct req *q)
{
    const char *b;
    size_t bl, pos = 0;
    if (q->resp.len && cairn__s3_xml_next(&b, &bl, q->resp.ptr, q->resp.len, "Error", &pos)) {
        q->status = 500;
        req_http_error(q);
        return cairn_error_set(q->result, "%s", q->errmsg);
    }
    return 0;
}

static int s3_list(struct cairn_remote *r, const char *prefix, cairn_remote_list_fn fn,
                   void *payload)
{
    struct s3_remote *s3 = (struct s3_remote *)r;
    struct cairn_buf full = CAIRN_BUF_INIT, token = CAIRN_BUF_INIT, key = CAIRN_BUF_INIT,
                     num = CAIRN_BUF_INIT;
    size_t plen = strlen(s3->prefix);
    int error, more = 1;

    if ((error = cairn_buf_printf(&full, "%s%s", s3->prefix, prefix)) < 0)
        goto done;
    while (more && error == 0) {
        struct req q;
        const char *c;
        size_t clen, pos = 0;

        req_init(&q, s3, "GET", *prefix ? prefix : s3->bucket);
        q.resp.limit = XML_LIMIT;
        if ((error = req_set_key(&q, NULL, 0)) == 0 &&
            (error = req_add_query(&q, "list-type", "2")) == 0 &&
            (error = req_add_query(&q, "prefix", full.ptr)) == 0 &&
            (token.len == 0 || (error = req_add_query(&q, "continuation-token", token.ptr)) == 0))
            error = run1(&q);
        if (error == 0)
            error = body_error(&q);
        while (error == 0 &&
               cairn__s3_xml_next(&c, &clen, q.resp.ptr, q.resp.len, "Contents", &pos)) {
            uint64_t size = 0;
            char *end = NULL;
            cairn_buf_clear(&key);
            cairn_buf_clear(&num);
            if ((error = cairn__s3_xml_text(&key, c, clen, "Key")) <= 0 ||
                (error = cairn__s3_xml_text(&num, c, clen, "Size")) <= 0) {
                error =
                    cairn_error_set(CAIRN_ECORRUPT, "malformed listing from '%s'", s3->endpoint);
                break;
            }
            errno = 0;
            size = strtoull(num.ptr, &end, 10);
            if (errno || !end || *end || end == num.ptr || key.len < plen ||
                memcmp(key.ptr, s3->prefix, plen) != 0 || strlen(key.ptr) != key.len) {
                error =
                    cairn_error_set(CAIRN_ECORRUPT, "malformed listing from '%s'", s3->endpoint);
                break;
            }
            if (cairn__remote_key_valid(key.ptr + plen) < 0) {
                cairn_warn("skipping remote object with an invalid name '%s'", key.ptr);
                error = 0;
                continue;
            }
            if ((error = fn(payload, key.ptr + plen, size)) > 0)
                error = 0;
        }
        if (error == 0) {
            cairn_buf_clear(&num);
            cairn_buf_clear(&token);
            more = cairn__s3_xml_text(&num, q.resp.ptr, q.resp.len, "IsTruncated") > 0 &&
                   strcmp(num.ptr, "true") == 0;
            if (more &&
                cairn__s3_xml_text(&token, q.resp.ptr, q.resp.len, "NextContinuationToken") <= 0) {
                error = cairn_error_set(CAIRN_ECORRUPT,
                                        "truncated listing from '%s' without a continuation token",
                                        s3->endpoint);
            }
        }
        req_release(&q);
    }
done:
    cairn_buf_release(&full);
    cairn_buf_release(&token);
    cairn_buf_release(&key);
    cairn_buf_release(&num);
    return error < 0 ? error : 0;
}

/* ---- multipart upload -------------------------------------------------------------------- */

struct part {
    uint64_t size; /* remote size (resume), 0 if absent */
    char etag[40]; /* remote or new ETag, quotes stripped */
};

static void strip_quotes(char *out, size_t cap, const char *in, size_t len)
{
    if (len >= 2 && in[0] == '"' && in[len - 1] == '"') {
        in++;
        len -= 2;
    }
    if (len >= cap)
        len = cap - 1;
    memcpy(out, in, len);
    out[len] = 0;
}

/* The id of an unfinished upload of `key` (the newest), or "" if none. */
static int find_upload(struct s3_remote *s3, struct cairn_buf *id_out, const char *key,
                       const char *full)
{
    struct cairn_buf k = CAIRN_BUF_INIT, id = CAIRN_BUF_INIT;
    struct req q;
    const char *u;
    size_t ulen, pos = 0;
    int error;

    req_init(&q, s3, "GET", key);
    q.resp.limit = XML_LIMIT;
    if ((error = req_set_key(&q, NULL, 0)) == 0 &&
        (error = req_add_query(&q, "uploads", NULL)) == 0 &&
        (error = req_add_query(&q, "prefix", full)) == 0)
        error = run1(&q);
    while (error == 0 && cairn__s3_xml_next(&u, &ulen, q.resp.ptr, q.resp.len, "Upload", &pos)) {
        cairn_buf_clear(&k);
        cairn_buf_clear(&id);
        if (cairn__s3_xml_text(&k, u, ulen, "Key") > 0 && strcmp(k.ptr, full) == 0 &&
            cairn__s3_xml_text(&id, u, ulen, "UploadId") > 0 && id.len > 0) {
            cairn_buf_clear(id_out);
            error = cairn_buf_puts(id_out, id.ptr);
        }
    }
    req_release(&q);
    cairn_buf_release(&k);
    cairn_buf_release(&id);
    return error;
}

/* Fill parts[] with what the server already has of upload `id`. */
static int list_parts(struct s3_remote *s3, struct part *parts, size_t nparts, const char *key,
                      const char *id)
{
    struct cairn_buf t = CAIRN_BUF_INIT, marker = CAIRN_BUF_INIT;
    int error = 0, more = 1;

    while (more && error == 0) {
        struct req q;
        const char *p;
        size_t plen, pos = 0;
        req_init(&q, s3, "GET", key);
        q.resp.limit = XML_LIMIT;
        if ((error = req_set_key(&q, key, 1)) == 0 &&
            (error = req_add_query(&q, "uploadId", id)) == 0 &&
            (marker.len == 0 || (error = req_add_query(&q, "part-number-marker", marker.ptr)) == 0))
            error = run1(&q);
        while (error == 0 && cairn__s3_xml_next(&p, &plen, q.resp.ptr, q.resp.len, "Part", &pos)) {
            unsigned long long num, size;
            char *end;
            cairn_buf_clear(&t);
            if (cairn__s3_xml_text(&t, p, plen, "PartNumber") <= 0)
                continue;
            num = strtoull(t.ptr, &end, 10);
            if (*end || num < 1 || num > nparts)
                continue;
            cairn_buf_clear(&t);
            if (cairn__s3_xml_text(&t, p, plen, "Size") <= 0)
                continue;
            size = strtoull(t.ptr, &end, 10);
            if (*end)
                continue;
            cairn_buf_clear(&t);
            if (cairn__s3_xml_text(&t, p, plen, "ETag") <= 0)
                continue;
            parts[num - 1].size = size;
            strip_quotes(parts[num - 1].etag, sizeof(parts[num - 1].etag), t.ptr, t.len);
        }
        if (error == 0) {
            cairn_buf_clear(&t);
            more = cairn__s3_xml_text(&t, q.resp.ptr, q.resp.len, "IsTruncated") > 0 &&
                   strcmp(t.ptr, "true") == 0;
            cairn_buf_clear(&marker);
            if (more &&
                cairn__s3_xml_text(&marker, q.resp.ptr, q.resp.len, "NextPartNumberMarker") <= 0)
                more = 0;
        }
        req_release(&q);
    }
    cairn_buf_release(&t);
    cairn_buf_release(&marker);
    return error;
}

static int md5_range(char out[33], int fd, uint64_t off, uint64_t len, const char *what)
{
    struct req q;
    int error;
    memset(&q, 0, sizeof(q));
    q.body = BODY_FD;
    q.fd = fd;
    q.off = off;
    q.len = len;
    q.what = what;
    if ((error = req_hash_body(&q)) == 0)
        memcpy(out, q.md5_hex, 33);
    return error;
}

static int put_multipart(struct s3_remote *s3, const char *key, int fd, uint64_t off, uint64_t len)
{
    struct cairn_buf full = CAIRN_BUF_INIT, id = CAIRN_BUF_INIT, xml = CAIRN_BUF_INIT,
                     num = CAIRN_BUF_INIT;
    uint64_t psize = s3->o.part_size;
    struct part *parts = NULL;
    struct req *reqs = NULL, **qs = NULL;
    size_t nparts, nsend = 0, skipped = 0;
    int error;

    if (psize < MIN_PART)
        psize = MIN_PART;
    if ((len + psize - 1) / psize > MAX_PARTS) /* S3 allows 10000 parts: grow them */
        psize = ((len + MAX_PARTS - 1) / MAX_PARTS + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
    nparts = (size_t)((len + psize - 1) / psize);
    if ((error = cairn_buf_printf(&full, "%s%s", s3->prefix, key)) < 0)
        goto done;
    if (!(parts = calloc(nparts, sizeof(*parts))) || !(reqs = calloc(nparts, sizeof(*reqs))) ||
        !(qs = calloc(nparts, sizeof(*qs)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }

    /* Resume an interrupted upload of this key, or start one. */
    if ((error = find_upload(s3, &id, key, full.ptr)) < 0)
        goto done;
    if (id.len > 0) {
        error = list_parts(s3, parts, nparts, key, id.ptr);
        if (error == CAIRN_ENOTFOUND) { /* completed or aborted meanwhile */
            cairn_buf_clear(&id);
            memset(parts, 0, nparts * sizeof(*parts));
            error = 0;
        }
        if (error < 0)
            goto done;
    }
    if (id.len == 0) {
        struct req q;
        req_init(&q, s3, "POST", key);
        q.resp.limit = XML_LIMIT;
        if ((error = req_set_key(&q, key, 1)) == 0 &&
            (error = req_add_query(&q, "uploads", NULL)) == 0 && (error = run1(&q)) == 0 &&
            (error = body_error(&q)) == 0 &&
            cairn__s3_xml_text(&id, q.resp.ptr, q.resp.len, "UploadId") <= 0)
            error = cairn_error_set(CAIRN_ERROR, "'%s' did not start an upload of '%s'",
                                    s3->endpoint, key);
        req_release(&q);
        if (error < 0)
            goto done;
    }

    for (size_t i = 0; i < nparts; i++) {
        uint64_t poff = off + i * psize, plen = i + 1 < nparts ? psize : len - i * psize;
        char md5[33];
        if (parts[i].size == plen && parts[i].etag[0]) {
            if ((error = md5_range(md5, fd, poff, plen, key)) < 0)
                goto done;
            if (strcmp(md5, parts[i].etag) == 0) {
                skipped++;
                continue;
            }
        }
        struct req *q = &reqs[nsend];
        req_init(q, s3, "PUT", key);
        cairn_buf_clear(&num);
        if ((error = cairn_buf_printf(&num, "%zu", i + 1)) < 0 ||
            (error = req_set_key(q, key, 1)) < 0 ||
            (error = req_add_query(q, "partNumber", num.ptr)) < 0 ||
            (error = req_add_query(q, "uploadId", id.ptr)) < 0) {
            nsend++;
            goto done;
        }
        q->body = BODY_FD;
        q->fd = fd;
        q->off = poff;
        q->len = plen;
        q->index = i;
        qs[nsend++] = q;
    }
    if (nsend > 0 && (error = run(s3, qs, nsend)) < 0) {
        cairn_error_prefix("upload of '%s' stopped with %zu of %zu parts sent; run again to resume",
                           key, skipped, nparts);
        goto done;
    }
    for (size_t i = 0; i < nsend; i++) {
        struct part *p = &parts[reqs[i].index];
        strip_quotes(p->etag, sizeof(p->etag), reqs[i].etag, strlen(reqs[i].etag));
        if (strcmp(p->etag, reqs[i].md5_hex) != 0) {
            error = cairn_error_set(CAIRN_ECORRUPT,
                                    "'%s' stored a part of '%s' with ETag '%s', not its MD5 '%s'",
                                    s3->endpoint, key, p->etag, reqs[i].md5_hex);
            goto done;
        }
    }

    /* Complete, then check the result really is the whole file. */
    cairn_buf_init(&xml, XML_LIMIT);
    error = cairn_buf_puts(&xml, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < nparts && error == 0; i++)
        error =
            cairn_buf_printf(&xml, "<Part><PartNumber>%zu</PartNumber><ETag>\"%s\"</ETag></Part>",
                             i + 1, parts[i].etag);
    if (error == 0)
        error = cairn_buf_puts(&xml, "</CompleteMultipartUpload>");
    if (error < 0)
        goto done;
    {
        struct req q;
        req_init(&q, s3, "POST", key);
        q.resp.limit = XML_LIMIT;
        if ((error = req_set_key(&q, key, 1)) == 0 &&
            (error = req_add_query(&q, "uploadId", id.ptr)) == 0) {
            q.body = BODY_MEM;
            q.mem = xml.ptr;
            q.len = xml.len;
            if ((error = run1(&q)) == 0)
                error = body_error(&q);
        }
        req_release(&q);
        if (error < 0)
            goto done;
    }
    {
        uint64_t size = 0;
        if ((error = s3_head(&s3->base, &size, key)) < 0)
            goto done;
        if (size != len)
            error = cairn_error_set(CAIRN_ECORRUPT,
                                    "remote object '%s' is %llu bytes after upload, not %llu", key,
                                    (unsigned long long)size, (unsigned long long)len);
    }
done:
    if (reqs) {
        for (size_t i = 0; i < nsend; i++)
            req_release(&reqs[i]);
    }
    free(reqs);
    free(qs);
    free(parts);
    cairn_buf_release(&full);
    cairn_buf_release(&id);
    cairn_buf_release(&xml);
    cairn_buf_release(&num);
    return error;
}

static int s3_put_file(struct cairn_remote *r, const char *key, int fd, uint64_t off, uint64_t len)
{
    struct s3_remote *s3 = (struct s3_remote *)r;
    /* One PUT carries at most 5 GiB, whatever the threshold says. */
    if ((len > s3->o.multipart_threshold && len > s3->o.part_size) || len > ((uint64_t)5 << 30))
        return put_multipart(s3, key, fd, off, len);
    return put_single(s3, key, fd, off, len);
}

/* ---- batch ------------------------------------------------------------------------------- */

struct fd_sink {
    int fd;
    uint64_t off;
    uint64_t *written;
};

static int batch_fd_sink(void *payload, const void *data, size_t len)
{
    struct fd_sink *s = payload;
    int error = cairn_fs_pwrite_all(s->fd, data, len, (off_t)(s->off + *s->written));
    if (error == 0)
        *s->written += len;
    return error;
}

/*
 * Can transfer `t` join the shared parallel run? Invalid ones are run alone
 * through backend.c, which reports the problem; big uploads run alone too,
 * with their parts in parallel.
 */
static int batch_simple(struct s3_remote *s3, const struct cairn_remote_xfer *t)
{
    int ranged = t->op == CAIRN_REMOTE_GET_FD || t->op == CAIRN_REMOTE_PUT_FILE;
    if (t->op > CAIRN_REMOTE_DELETE || !t->key || cairn__remote_key_valid(t->key) < 0)
        return 0;
    if (ranged && (t->fd < 0 || t->off > INT64_MAX || t->len == 0 ||
                   (t->len != CAIRN_REMOTE_TO_END && t->len > INT64_MAX - t->off)))
        return 0;
    if (t->op == CAIRN_REMOTE_GET_FD && t->fd_off > INT64_MAX)
        return 0;
    if (t->op == CAIRN_REMOTE_PUT_FILE &&
        (t->len == CAIRN_REMOTE_TO_END || t->len > ((uint64_t)5 << 30) ||
         (t->len > s3->o.multipart_threshold && t->len > s3->o.part_size)))
        return 0;
    return 1;
}

static int s3_batch(struct cairn_remote *r, struct cairn_remote_xfer *x, size_t n)
{
    static const char *const methods[] = { "PUT", "PUT", "GET", "HEAD", "DELETE" };
    struct s3_remote *s3 = (struct s3_remote *)r;
    struct req *reqs = NULL, **qs = NULL;
    struct fd_sink *sinks = NULL;
    char *alone = NULL;
    size_t nq = 0, cap = n ? n : 1;
    int error = 0;

    if (!(reqs = calloc(cap, sizeof(*reqs))) || !(qs = calloc(cap, sizeof(*qs))) ||
        !(sinks = calloc(cap, sizeof(*sinks))) || !(alone = calloc(cap, 1))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        struct cairn_remote_xfer *t = &x[i];
        struct req *q = &reqs[nq];
        t->result = 0;
        t->size = 0;
        t->error[0] = 0;
        if (!batch_simple(s3, t)) {
            alone[i] = 1;
            continue;
        }
        req_init(q, s3, methods[t->op], t->key);
        nq++;
        if ((error = req_set_key(q, t->key, 1)) < 0)
            goto done;
        q->index = i;
        if (t->op == CAIRN_REMOTE_PUT_BUF || t->op == CAIRN_REMOTE_PUT_FILE) {
            q->body = t->op == CAIRN_REMOTE_PUT_BUF ? BODY_MEM : BODY_FD;
            q->mem = t->data;
            q->fd = t->fd;
            q->off = t->off;
            q->len = t->len;
        } else if (t->op == CAIRN_REMOTE_GET_FD) {
            sinks[i] = (struct fd_sink){ t->fd, t->fd_off, &t->size };
            q->sink = batch_fd_sink;
            q->payload = &sinks[i];
            q->roff = t->off;
            q->rlen = t->len;
        }
        qs[nq - 1] = q;
    }
    run(s3, qs, nq);
    for (size_t j = 0; j < nq; j++) {
        struct req *q = qs[j];
        struct cairn_remote_xfer *t = &x[q->index];
        if (t->op == CAIRN_REMOTE_DELETE && q->result == CAIRN_ENOTFOUND &&
            !(q->resp.ptr && memmem(q->resp.ptr, q->resp.len, "NoSuchBucket", 12)))
            q->result = 0;
        t->result = q->result;
        if (q->result < 0) {
            snprintf(t->error, sizeof(t->error), "%s", q->errmsg);
        } else if (t->op == CAIRN_REMOTE_HEAD) {
            curl_off_t cl = -1;
            curl_easy_getinfo(q->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
            t->size = cl < 0 ? 0 : (uint64_t)cl;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (alone[i])
            cairn__remote_xfer_run(r, &x[i]);
    }
done:
    for (size_t j = 0; j < nq; j++)
        req_release(&reqs[j]);
    if (error < 0) {
        for (size_t i = 0; i < n; i++) {
            x[i].result = error;
            snprintf(x[i].error, sizeof(x[i].error), "%s", cairn_error_last());
        }
    }
    free(reqs);
    free(qs);
    free(sinks);
    free(alone);
    return error;
}

/* ---- open and credentials ---------------------------------------------------------------- */

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void s3_free(struct cairn_remote *r)
{
    struct s3_remote *s3 = (struct s3_remote *)r;
    if (s3->multi)
        curl_multi_cleanup(s3->multi);
    free(s3->bucket);
    free(s3->prefix);
    free(s3->scheme);
    free(s3->host);
    free(s3->endpoint);
    free(s3->region);
    free_secret(s3->access_key);
    free_secret(s3->secret_key);
    free_secret(s3->token);
    free(s3);
}

static const struct cairn__remote_ops s3_ops = {
    s3_put_buf, s3_put_file, s3_get, s3_head, s3_list, s3_del, s3_batch, s3_free,
};

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Read an AWS INI file ($VAR or ~/.aws/NAME) into `out`; a missing file is empty. */
static int read_aws_file(struct cairn_buf *out, const char *var, const char *name)
{
    struct cairn_buf path = CAIRN_BUF_INIT;
    const char *home = env("HOME");
    int error = 0;

    if (env(var))
        error = cairn_buf_puts(&path, env(var));
    else if (home)
        error = cairn_buf_printf(&path, "%s/.aws/%s", home, name);
    if (error == 0 && path.len > 0) {
        error = cairn_fs_read_file(out, path.ptr, (size_t)1 << 20);
        if (error < 0 && access(path.ptr, F_OK) < 0) {
            cairn_error_clear();
            error = 0;
        }
    }
    cairn_buf_release(&path);
    return error;
}

static char *ini_dup(const struct cairn_buf *file, const char *section, const char *key)
{
    struct cairn_buf v = CAIRN_BUF_INIT;
    char *s = NULL;
    if (file->len && cairn__s3_ini_get(&v, file->ptr, file->len, section, key) > 0 && v.len)
        s = strdup(v.ptr);
    if (v.ptr)
        OPENSSL_cleanse(v.ptr, v.len);
    cairn_buf_release(&v);
    return s;
}

static int load_credentials(struct s3_remote *s3, const struct cairn_remote_opts *o)
{
    struct cairn_buf creds = CAIRN_BUF_INIT, config = CAIRN_BUF_INIT, section = CAIRN_BUF_INIT;
    const char *profile = o->profile ? o->profile : env("AWS_PROFILE");
    int error = 0;

    if (!o->profile && env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
        s3->access_key = strdup(env("AWS_ACCESS_KEY_ID"));
        s3->secret_key = strdup(env("AWS_SECRET_ACCESS_KEY"));
        if (env("AWS_SESSION_TOKEN"))
            s3->token = strdup(env("AWS_SESSION_TOKEN"));
    }
    if (!profile)
        profile = "default";
    if ((error = read_aws_file(&creds, "AWS_SHARED_CREDENTIALS_FILE", "credentials")) < 0 ||
        (error = read_aws_file(&config, "AWS_CONFIG_FILE", "config")) < 0)
        goto done;
    if (!s3->access_key) {
        s3->access_key = ini_dup(&creds, profile, "aws_access_key_id");
        s3->secret_key = ini_dup(&creds, profile, "aws_secret_access_key");
        s3->token = ini_dup(&creds, profile, "aws_session_token");
    }
    if (!s3->access_key || !s3->secret_key) {
        error = cairn_error_set(CAIRN_EINVALID,
                                "no AWS credentials for 's3://%s': set AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY, or add profile '%s' to ~/.aws/credentials",
                                s3->bucket, profile);
        goto done;
    }
    if (o->region)
        s3->region = strdup(o->region);
    else if (env("AWS_REGION"))
        s3->region = strdup(env("AWS_REGION"));
    else if (env("AWS_DEFAULT_REGION"))
        s3->region = strdup(env("AWS_DEFAULT_REGION"));
    if (!s3->region) {
        if ((error = cairn_buf_printf(&section, strcmp(profile, "default") ? "profile %s" : "%s",
                                      profile)) < 0)
            goto done;
        s3->region = ini_dup(&config, section.ptr, "region");
    }
    if (!s3->region)
        s3->region = strdup("us-east-1");
    if (!s3->region || strlen(s3->region) > 64 || strchr(s3->region, '/'))
        error =
            cairn_error_set(CAIRN_EINVALID, "invalid region '%s'", s3->region ? s3->region : "");
done:
    if (creds.ptr)
        OPENSSL_cleanse(creds.ptr, creds.len);
    cairn_buf_release(&creds);
    cairn_buf_release(&config);
    cairn_buf_release(&section);
    return error;
}

int cairn__remote_s3_open(struct cairn_remote **out, const char *bucket, const char *prefix,
                          const struct cairn_remote_opts *opts)
{
    struct s3_remote *s3 = calloc(1, sizeof(*s3));
    struct cairn_buf ep = CAIRN_BUF_INIT;
    char *scheme = NULL, *host = NULL;
    const char *endpoint = opts->endpoint             ? opts->endpoint
                           : env("CAIRN_S3_ENDPOINT") ? env("CAIRN_S3_ENDPOINT")
                                                      : env("AWS_ENDPOINT_URL");
    int error = 0;

    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (!s3) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    s3->base.ops = &s3_ops;
    s3->o = *opts;
    s3->o.endpoint = s3->o.region = s3->o.profile = NULL;
    if (!curl_ready) {
        error = cairn_error_set(CAIRN_ERROR, "cannot load libcurl (install libcurl4): %s",
                                curl_load_error);
        goto done;
    }
    if (!(s3->bucket = strdup(bucket)) || !(s3->prefix = strdup(prefix))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = load_credentials(s3, opts)) < 0)
        goto done;
    if (!endpoint) {
        if ((error = cairn_buf_printf(&ep, "https://s3.%s.amazonaws.com", s3->region)) < 0)
            goto done;
        endpoint = ep.ptr;
    }
    if ((error = cairn__s3_parse_endpoint(&scheme, &host, endpoint)) < 0)
        goto done;
    /* Virtual-host style needs DNS for bucket.host: only AWS-like endpoints by default. */
    s3->path_style =
        opts->path_style > 0 || (opts->path_style == 0 && (ep.len == 0 || strchr(bucket, '.')));
    s3->scheme = scheme;
    scheme = NULL;
    s3->endpoint = NULL;
    cairn_buf_clear(&ep);
    if ((error = cairn_buf_printf(&ep, "%s://%s", s3->scheme, host)) < 0)
        goto done;
    s3->endpoint = cairn_buf_detach(&ep, NULL);
    if (s3->path_style) {
        s3->host = host;
        host = NULL;
    } else if ((error = cairn_buf_printf(&ep, "%s.%s", bucket, host)) < 0) {
        goto done;
    } else {
        s3->host = cairn_buf_detach(&ep, NULL);
    }
    if (!s3->access_key || !s3->secret_key || !s3->endpoint || !s3->host) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    if (!(s3->multi = curl_multi_init())) {
        error = cairn_error_set(CAIRN_ERROR, "cannot initialise libcurl");
        goto done;
    }
    curl_multi_setopt(s3->multi, CURLMOPT_MAXCONNECTS, (long)opts->concurrency + 2);
    *out = &s3->base;
    s3 = NULL;
done:
    if (s3)
        s3_free(&s3->base);
    free(scheme);
    free(host);
    cairn_buf_release(&ep);
    return error;
}
