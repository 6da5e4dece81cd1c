/*
 * Growable byte buffers with a size limit (curl's dynbuf). Anything sized by
 * outside input goes through here, so a hostile length fails with
 * CAIRN_ENOMEM instead of allocating what it asks.
 *
 * The buffer owns `ptr`; it is always NUL-terminated (ptr[len] == 0) once
 * anything was added, so text can be used as a C string. A zeroed struct
 * (CAIRN_BUF_INIT) is an empty buffer with the default limit.
 */
#ifndef CAIRN_UTIL_BUF_H
#define CAIRN_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define CAIRN_BUF_DEFAULT_LIMIT ((size_t)1 << 30) /* 1 GiB */

struct cairn_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t limit; /* 0 means CAIRN_BUF_DEFAULT_LIMIT */
};

/* Braced macro bodies: clang-format 14 would split this one over four lines. */
/* clang-format off */
#define CAIRN_BUF_INIT { NULL, 0, 0, 0 }
/* clang-format on */

void cairn_buf_init(struct cairn_buf *b, size_t limit);
/* Free the storage; the buffer is empty and reusable afterwards. Accepts NULL. */
void cairn_buf_release(struct cairn_buf *b);
/* Make room for `extra` more bytes. */
int cairn_buf_grow(struct cairn_buf *b, size_t extra);
int cairn_buf_put(struct cairn_buf *b, const void *data, size_t len);
int cairn_buf_puts(struct cairn_buf *b, const char *s);
int cairn_buf_putc(struct cairn_buf *b, char c);
int cairn_buf_printf(struct cairn_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int cairn_buf_vprintf(struct cairn_buf *b, const char *fmt, va_list ap);
void cairn_buf_clear(struct cairn_buf *b);
/* Hand the storage to the caller, who now owns it and must free() it. */
char *cairn_buf_detach(struct cairn_buf *b, size_t *len_out);
/* A new string formatted as printf would; the caller frees it. NULL when out of memory. */
char *cairn_buf_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * 1 if the `n` bytes at `data` are strict UTF-8 (no overlongs, surrogates or
 * code points past U+10FFFF) without NUL, else 0. Used for names that must
 * survive JSON (tensor names, keys, repository paths).
 */
int cairn_utf8_valid(const void *data, size_t n);

/*
 * Growable arrays: make room for element `n` (0-based) of the array *ptr of
 * *cap elements of `size` bytes, doubling from 16 so appends are amortised
 * O(1). Nothing changes when there is room already, or on failure
 * (CAIRN_ENOMEM, message set; also when the size would overflow). Use the
 * macro, which takes the array and its capacity as lvalues:
 *
 *     if ((error = CAIRN_ARRAY_GROW(l->items, l->cap, l->n)) < 0)
 *         return error;
 *     l->items[l->n++] = x;
 */
int cairn_array_grow(void *ptr, size_t *cap, size_t n, size_t size);
#define CAIRN_ARRAY_GROW(arr, cap, n) cairn_array_grow(&(arr), &(cap), (n), sizeof(*(arr)))

/* Little-endian and varint encoders for on-disk formats. */
int cairn_buf_put_u32le(struct cairn_buf *b, uint32_t v);
int cairn_buf_put_u64le(struct cairn_buf *b, uint64_t v);
int cairn_buf_put_varint(struct cairn_buf *b, uint64_t v);

/*
 * A bounds-checked reader over a byte range; every get fails (returns -1 and
 * sets `err`) rather than read past the end.
 */
struct cairn_reader {
    const unsigned char *p;
    size_t len;
    size_t pos;
    int err;
};
void cairn_reader_init(struct cairn_reader *r, const void *data, size_t len);
int cairn_reader_u8(struct cairn_reader *r, uint8_t *out);
int cairn_reader_u32le(struct cairn_reader *r, uint32_t *out);
int cairn_reader_u64le(struct cairn_reader *r, uint64_t *out);
int cairn_reader_varint(struct cairn_reader *r, uint64_t *out);
/* Point `*out` at the next `n` bytes without copying. */
int cairn_reader_bytes(struct cairn_reader *r, const void **out, size_t n);

static inline uint32_t cairn_get_u32le(const void *p)
{
    const unsigned char *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t cairn_get_u64le(const void *p)
{
    const unsigned char *b = p;
    return (uint64_t)cairn_get_u32le(b) | (uint64_t)cairn_get_u32le(b + 4) << 32;
}
static inline void cairn_put_u32le(void *p, uint32_t v)
{
    unsigned char *b = p;
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
    b[2] = (unsigned char)(v >> 16);
    b[3] = (unsigned char)(v >> 24);
}
static inline void cairn_put_u64le(void *p, uint64_t v)
{
    cairn_put_u32le(p, (uint32_t)v);
    cairn_put_u32le((unsigned char *)p + 4, (uint32_t)(v >> 32));
}

#endif
