/*
 * The remote transport front: parses remote URLs, fills in option defaults,
 * validates every key and range once, and dispatches to the backend's
 * vtable (file.c, s3.c). Backends with no parallel batch get a sequential
 * one here. Callers see only backend.h's functions; nothing here touches the
 * network or the disk itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "remote/backend.h"
#include "util/fs.h"

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static int bucket_valid(const char *b, size_t n)
{
    if (n < 3 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return 0;
        if (c == '.' && i > 0 && b[i - 1] == '.')
            return 0;
    }
    return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

static int bad_url(const char *url, const char *why)
{
    return cairn_error_set(CAIRN_EINVALID,
                           "invalid remote url '%s': %s (use file:///path or s3://bucket/prefix)",
                           url, why);
}

int cairn_remote_parse_url(char **scheme_out, char **a_out, char **b_out, const char *url)
{
    char *scheme = NULL, *a = NULL, *b = NULL;
    int error = 0;

    *scheme_out = *a_out = *b_out = NULL;
    if (!url)
        return cairn_error_set(CAIRN_EINVALID, "missing remote url");
    if (strncmp(url, "file://", 7) == 0) {
        const char *path = url + 7;
        size_t n = strlen(path);
        if (path[0] != '/') {
            error = bad_url(url, "a file url needs an absolute path, file:///dir");
            goto done;
        }
        while (n > 1 && path[n - 1] == '/')
            n--;
        if (n > 4000) {
            error = bad_url(url, "path too long");
            goto done;
        }
        scheme = dupn("file", 4);
        a = dupn(path, n);
        b = dupn("", 0);
    } else if (strncmp(url, "s3://", 5) == 0) {
        const char *bucket = url + 5, *slash = strchr(bucket, '/');
        size_t blen = slash ? (size_t)(slash - bucket) : strlen(bucket);
        const char *prefix = slash ? slash + 1 : "";
        size_t plen = strlen(prefix);
        if (!bucket_valid(bucket, blen)) {
            error = bad_url(url,
                            "bucket names are 3-63 of a-z 0-9 . - starting and ending "
                            "with a letter or digit");
            goto done;
        }
        while (plen > 0 && prefix[plen - 1] == '/')
            plen--;
        scheme = dupn("s3", 2);
        a = dupn(bucket, blen);
        b = malloc(plen + 2);
        if (b && plen > 0) {
            memcpy(b, prefix, plen);
            b[plen] = 0;
            if (plen > 512 || cairn_fs_path_valid(b) < 0) {
                error = bad_url(url, "bad prefix");
                goto done;
            }
            b[plen] = '/';
            b[plen + 1] = 0;
        } else if (b) {
            b[0] = 0;
        }
    } else {
        error = bad_url(url, "unknown scheme");
        goto done;
    }
    if (!scheme || !a || !b) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    *scheme_out = scheme;
    *a_out = a;
    *b_out = b;
    scheme = a = b = NULL;
done:
    free(scheme);
    free(a);
    free(b);
    return error;
}

int cairn_remote_open(struct cairn_remote **out, const char *url,
                      const struct cairn_remote_opts *opts)
{
    struct cairn_remote_opts o = { 0 };
    struct cairn_remote *r = NULL;
    char *scheme = NULL, *a = NULL, *b = NULL;
    int error;

    *out = NULL;
    if (opts)
        o = *opts;
    if (o.concurrency < 0 || o.concurrency > 256) {
        error = cairn_error_set(CAIRN_EINVALID, "concurrency %d out of range 1-256", o.concurrency);
        goto done;
    }
    if (o.concurrency == 0)
        o.concurrency = CAIRN_REMOTE_DEFAULT_CONCURRENCY;
    if (o.part_size == 0)
        o.part_size = CAIRN_REMOTE_DEFAULT_PART_SIZE;
    if (o.part_size > ((uint64_t)5 << 30)) {
        error = cairn_error_set(CAIRN_EINVALID, "part size above 5 GiB");
        goto done;
    }
    if (o.multipart_threshold == 0)
        o.multipart_threshold = CAIRN_REMOTE_DEFAULT_THRESHOLD;
    if (o.max_retries == 0)
        o.max_retries = 5;
    if (o.max_retries < 0)
        o.max_retries = 0;
    if (o.timeout_s <= 0)
        o.timeout_s = 60;
    if ((error = cairn_remote_parse_url(&scheme, &a, &b, url)) < 0)
        goto done;
    if (strcmp(scheme, "file") == 0)
        error = cairn__remote_file_open(&r, a);
    else
        error = cairn__remote_s3_open(&r, a, b, &o);
    if (error < 0)
        goto done;
    o.endpoint = o.region = o.profile = NULL;
    r->opts = o;
    if (!(r->url = strdup(url))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    *out = r;
    r = NULL;
done:
    cairn_remote_free(r);
    free(scheme);
    free(a);
    free(b);
    return error;
}

void cairn_remote_free(struct cairn_remote *r)
{
    if (!r)
        return;
    free(r->url);
    r->ops->free(r);
}

const char *cairn_remote_url(const struct cairn_remote *r)
{
    return r->url;
}

int cairn__remote_key_valid(const char *key)
{
    if (!key || !*key)
        return cairn_error_set(CAIRN_EINVALID, "empty object key");
    if (strlen(key) > CAIRN_REMOTE_KEY_MAX)
        return cairn_error_set(CAIRN_EINVALID, "object key too long '%.64s...'", key);
    if (cairn_fs_path_valid(key) < 0)
        return cairn_error_set(CAIRN_EINVALID, "invalid object key '%s'", key);
    return 0;
}

void cairn__remote_count(struct cairn_remote *r, uint64_t sent, uint64_t received)
{
    if (sent)
        __atomic_add_fetch(&r->sent, sent, __ATOMIC_RELAXED);
    if (received)
        __atomic_add_fetch(&r->received, received, __ATOMIC_RELAXED);
}

void cairn_remote_stats(const struct cairn_remote *r, uint64_t *sent_out, uint64_t *received_out)
{
    if (sent_out)
        *sent_out = __atomic_load_n(&r->sent, __ATOMIC_RELAXED);
    if (received_out)
        *received_out = __atomic_load_n(&r->received, __ATOMIC_RELAXED);
}

int cairn_remote_put_buf(struct cairn_remote *r, const char *key, const void *data, size_t len)
{
    int error;
    if ((error = cairn__remote_key_valid(key)) < 0)
        return error;
    return r->ops->put_buf(r, key, data, len);
}

static int range_valid(uint64_t off, uint64_t len)
{
    if (len != CAIRN_REMOTE_TO_END && (off > INT64_MAX || len > INT64_MAX - off))
        return cairn_error_set(CAIRN_EINVALID, "range %llu+%llu out of bounds",
                               (unsigned long long)off, (unsigned long long)len);
    if (off > INT64_MAX)
        return cairn_error_set(CAIRN_EINVALID, "offset %llu out of bounds",
                               (unsigned long long)off);
    return 0;
}

int cairn_remote_put_file(struct cairn_remote *r, const char *key, int fd, uint64_t off,
                          uint64_t len)
{
    int error;
    if ((error = cairn__remote_key_valid(key)) < 0)
        return error;
    if (len == CAIRN_REMOTE_TO_END)
        return cairn_error_set(CAIRN_EINVALID, "upload of '%s' needs a length", key);
    if ((error = range_valid(off, len)) < 0)
        return error;
    if (fd < 0)
        return cairn_error_set(CAIRN_EINVALID, "bad file descriptor for '%s'", key);
    return r->ops->put_file(r, key, fd, off, len);
}

int cairn_remote_get_range(struct cairn_remote *r, const char *key, uint64_t off, uint64_t len,
                           cairn_remote_sink_fn sink, void *payload)
{
    int error;
    if ((error = cairn__remote_key_valid(key)) < 0)
        return error;
    if ((error = range_valid(off, len)) < 0)
        return error;
    return r->ops->get(r, key, off, len, sink, payload);
}

struct fd_sink {
    int fd;
    uint64_t off;
    uint64_t written;
};

static int fd_sink_write(void *payload, const void *data, size_t len)
{
    struct fd_sink *s = payload;
    int error = cairn_fs_pwrite_all(s->fd, data, len, (off_t)(s->off + s->written));
    if (error == 0)
        s->written += len;
    return error;
}

static int get_to_fd(struct cairn_remote *r, uint64_t *written_out, const char *key, uint64_t off,
                     uint64_t len, int fd, uint64_t fd_off)
{
    struct fd_sink s = { fd, fd_off, 0 };
    int error;
    if (fd < 0 || fd_off > INT64_MAX)
        return cairn_error_set(CAIRN_EINVALID, "bad output for '%s'", key);
    error = cairn_remote_get_range(r, key, off, len, fd_sink_write, &s);
    if (written_out)
        *written_out = s.written;
    return error;
}

int cairn_remote_get_to_fd(struct cairn_remote *r, const char *key, uint64_t off, uint64_t len,
                           int fd, uint64_t fd_off)
{
    return get_to_fd(r, NULL, key, off, len, fd, fd_off);
}

int cairn_remote_head(struct cairn_remote *r, uint64_t *size_out, const char *key)
{
    int error;
    *size_out = 0;
    if ((error = cairn__remote_key_valid(key)) < 0)
        return error;
    return r->ops->head(r, size_out, key);
}

int cairn_remote_list(struct cairn_remote *r, const char *prefix, cairn_remote_list_fn fn,
                      void *payload)
{
    if (!prefix)
        prefix = "";
    if (prefix[0] == '/' || strlen(prefix) > CAIRN_REMOTE_KEY_MAX)
        return cairn_error_set(CAIRN_EINVALID, "invalid list prefix '%s'", prefix);
    return r->ops->list(r, prefix, fn, payload);
}

int cairn_remote_delete(struct cairn_remote *r, const char *key)
{
    int error;
    if ((error = cairn__remote_key_valid(key)) < 0)
        return error;
    return r->ops->del(r, key);
}

void cairn__remote_xfer_run(struct cairn_remote *r, struct cairn_remote_xfer *x)
{
    int error = CAIRN_EINVALID;
    x->size = 0;
    switch (x->op) {
    case CAIRN_REMOTE_PUT_BUF:
        error = cairn_remote_put_buf(r, x->key, x->data, (size_t)x->len);
        break;
    case CAIRN_REMOTE_PUT_FILE:
        error = cairn_remote_put_file(r, x->key, x->fd, x->off, x->len);
        break;
    case CAIRN_REMOTE_GET_FD:
        error = get_to_fd(r, &x->size, x->key, x->off, x->len, x->fd, x->fd_off);
        break;
    case CAIRN_REMOTE_HEAD:
        error = cairn_remote_head(r, &x->size, x->key);
        break;
    case CAIRN_REMOTE_DELETE:
        error = cairn_remote_delete(r, x->key);
        break;
    default:
        cairn_error_set(CAIRN_EINVALID, "unknown transfer type %d", (int)x->op);
    }
    x->result = error < 0 ? error : 0;
    x->error[0] = 0;
    if (error < 0)
        snprintf(x->error, sizeof(x->error), "%s", cairn_error_last());
}

int cairn_remote_batch(struct cairn_remote *r, struct cairn_remote_xfer *xfers, size_t n)
{
    if (r->ops->batch) {
        r->ops->batch(r, xfers, n);
    } else {
        for (size_t i = 0; i < n; i++)
            cairn__remote_xfer_run(r, &xfers[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (xfers[i].result < 0)
            return cairn_error_set(xfers[i].result, "%s", xfers[i].error);
    }
    return 0;
}
