/*
 * Growable, size-limited byte buffers and a bounds-checked reader; see buf.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "util/buf.h"

void cairn_buf_init(struct cairn_buf *b, size_t limit)
{
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->limit = limit;
}

void cairn_buf_release(struct cairn_buf *b)
{
    if (!b)
        return;
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

int cairn_buf_grow(struct cairn_buf *b, size_t extra)
{
    size_t limit = b->limit ? b->limit : CAIRN_BUF_DEFAULT_LIMIT;
    size_t need, cap;
    char *p;

    if (extra > limit || b->len > limit - extra)
        return cairn_error_set(CAIRN_ENOMEM, "buffer would exceed its limit of %zu bytes", limit);
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > limit + 1)
        cap = limit + 1;
    p = realloc(b->ptr, cap);
    if (!p)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory allocating %zu bytes", cap);
    b->ptr = p;
    b->cap = cap;
    return 0;
}

int cairn_buf_put(struct cairn_buf *b, const void *data, size_t len)
{
    int error;
    if ((error = cairn_buf_grow(b, len)) < 0)
        return error;
    if (len)
        memcpy(b->ptr + b->len, data, len);
    b->len += len;
    b->ptr[b->len] = '\0';
    return 0;
}

int cairn_buf_puts(struct cairn_buf *b, const char *s)
{
    return cairn_buf_put(b, s, strlen(s));
}

int cairn_buf_putc(struct cairn_buf *b, char c)
{
    return cairn_buf_put(b, &c, 1);
}

int cairn_buf_vprintf(struct cairn_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    int n, error;

    va_copy(cp, ap);
    n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return cairn_error_set(CAIRN_ERROR, "bad format string");
    if ((error = cairn_buf_grow(b, (size_t)n)) < 0)
        return error;
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int cairn_buf_printf(struct cairn_buf *b, const char *fmt, ...)
{
    va_list ap;
    int error;
    va_start(ap, fmt);
    error = cairn_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return error;
}

void cairn_buf_clear(struct cairn_buf *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

char *cairn_buf_detach(struct cairn_buf *b, size_t *len_out)
{
    char *p = b->ptr;
    if (len_out)
        *len_out = b->len;
    if (!p)
        p = calloc(1, 1);
    b->ptr = NULL;
    b->len = b->cap = 0;
    return p;
}

int cairn_buf_put_u32le(struct cairn_buf *b, uint32_t v)
{
    unsigned char tmp[4];
    cairn_put_u32le(tmp, v);
    return cairn_buf_put(b, tmp, 4);
}

int cairn_buf_put_u64le(struct cairn_buf *b, uint64_t v)
{
    unsigned char tmp[8];
    cairn_put_u64le(tmp, v);
    return cairn_buf_put(b, tmp, 8);
}

int cairn_buf_put_varint(struct cairn_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return cairn_buf_put(b, tmp, n);
}

void cairn_reader_init(struct cairn_reader *r, const void *data, size_t len)
{
    r->p = data;
    r->len = len;
    r->pos = 0;
    r->err = 0;
}

static int short_read(struct cairn_reader *r)
{
    r->err = 1;
    return -1;
}

int cairn_reader_u8(struct cairn_reader *r, uint8_t *out)
{
    if (r->err || r->len - r->pos < 1)
        return short_read(r);
    *out = r->p[r->pos++];
    return 0;
}

int cairn_reader_u32le(struct cairn_reader *r, uint32_t *out)
{
    if (r->err || r->len - r->pos < 4)
        return short_read(r);
    *out = cairn_get_u32le(r->p + r->pos);
    r->pos += 4;
    return 0;
}

int cairn_reader_u64le(struct cairn_reader *r, uint64_t *out)
{
    if (r->err || r->len - r->pos < 8)
        return short_read(r);
    *out = cairn_get_u64le(r->p + r->pos);
    r->pos += 8;
    return 0;
}

int cairn_reader_varint(struct cairn_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t c;
        if (cairn_reader_u8(r, &c) < 0)
            return -1;
        /* Canonical only: no bits past 64, no trailing zero group. */
        if ((shift == 63 && c > 1) || (shift > 0 && c == 0))
            return short_read(r);
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return short_read(r);
}

int cairn_reader_bytes(struct cairn_reader *r, const void **out, size_t n)
{
    if (r->err || r->len - r->pos < n)
        return short_read(r);
    *out = r->p + r->pos;
    r->pos += n;
    return 0;
}

char *cairn_buf_strdupf(const char *fmt, ...)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = cairn_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (r < 0) {
        cairn_buf_release(&b);
        return NULL;
    }
    return cairn_buf_detach(&b, NULL);
}

int cairn_array_grow(void *ptr, size_t *cap, size_t n, size_t size)
{
    void *items, *grown;
    size_t c;

    if (n < *cap)
        return 0;
    c = *cap ? *cap : 16;
    while (c <= n) {
        if (c > SIZE_MAX / 2 / size)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory (array of %zu)", n);
        c *= 2;
    }
    /* `ptr` is the address of any object pointer: copy it, as the types differ. */
    memcpy(&items, ptr, sizeof(items));
    if (!(grown = realloc(items, c * size)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    memcpy(ptr, &grown, sizeof(grown));
    *cap = c;
    return 0;
}

int cairn_utf8_valid(const void *data, size_t n)
{
    const unsigned char *s = data;
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        uint32_t cp;
        size_t k;
        if (b == 0)
            return 0;
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf) {
            k = 1, cp = b & 0x1f;
        } else if (b >= 0xe0 && b <= 0xef) {
            k = 2, cp = b & 0x0f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            k = 3, cp = b & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += k + 1;
    }
    return 1;
}
