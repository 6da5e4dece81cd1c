/*
 * UTF-8 checks and terminal-safe quoting; see text.h. Used on every name
 * and path that crosses a trust boundary (remote objects, manifests, HTTP
 * requests) before it is accepted or printed.
 */
#include <stdio.h>
#include <string.h>

#include "util/buf.h"
#include "util/text.h"

size_t cairn_utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp, min;

    if (n == 0)
        return 0;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool cairn_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    while (n) {
        size_t len = cairn_utf8_seq_len(p, n);
        if (!len || !p[0])
            return false;
        p += len;
        n -= len;
    }
    return true;
}

/*
 * Characters that must not reach a terminal as they are: C0 controls, DEL,
 * C1 controls (U+0080-U+009F), and the bidirectional overrides, isolates
 * and line separators that can make one name read as another (U+202A-
 * U+202E, U+2066-U+2069, U+2028, U+2029). `p` starts a well-formed
 * sequence of `len` bytes.
 */
static bool is_control(const unsigned char *p, size_t len)
{
    unsigned cp;

    if (len == 1)
        return p[0] < 0x20 || p[0] == 0x7f;
    if (len == 2)
        return p[0] == 0xc2 && p[1] < 0xa0;
    if (len != 3 || p[0] != 0xe2)
        return false;
    cp = 0x2000 | ((unsigned)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
    return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
           cp == 0x2029;
}

bool cairn_text_has_control(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    while (n) {
        size_t len = cairn_utf8_seq_len(p, n);
        if (!len)
            len = 1;
        else if (is_control(p, len))
            return true;
        p += len;
        n -= len;
    }
    return false;
}

/* The quoted form of the character at `p` into `piece`; sets its source length. */
static size_t quote_one(char piece[8], size_t *src_len, const unsigned char *p, size_t n,
                        bool keep_newlines)
{
    size_t len = cairn_utf8_seq_len(p, n);

    if (len && p[0] && p[0] != '\\' && (!is_control(p, len) || (keep_newlines && p[0] == '\n'))) {
        memcpy(piece, p, len);
        *src_len = len;
        return len;
    }
    /* Every byte of a control or of a malformed sequence, one at a time. */
    *src_len = 1;
    if (p[0] == '\\') {
        memcpy(piece, "\\\\", 2);
        return 2;
    }
    snprintf(piece, 8, "\\x%02x", p[0]);
    return 4;
}

int cairn_text_quote_buf(struct cairn_buf *out, const char *s, bool keep_newlines)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), len;
    char piece[8];
    int error = 0;

    cairn_buf_clear(out);
    while (n && !error) {
        size_t need = quote_one(piece, &len, p, n, keep_newlines);
        error = cairn_buf_put(out, piece, need);
        p += len;
        n -= len;
    }
    return error ? error : cairn_buf_put(out, "", 0);
}

const char *cairn_text_quote(char *out, size_t cap, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), total = 0, o = 0, room, len;
    char piece[8];

    if (cap == 0)
        return out;
    for (const unsigned char *q = p; q < p + n; q += len)
        total += quote_one(piece, &len, q, (size_t)(p + n - q), false);
    room = cap - 1;
    if (total > room)
        room = room >= 3 ? room - 3 : 0; /* leave space for "..." */
    while (n) {
        size_t need = quote_one(piece, &len, p, n, false);
        if (o + need > room)
            break;
        memcpy(out + o, piece, need);
        o += need;
        p += len;
        n -= len;
    }
    if (n && cap >= 4) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}
