/*
 * Text from outside: UTF-8 validation and a quoting that makes any byte
 * string safe to put in a one-line message or on a terminal. Names and paths
 * come from files, remotes and clients; printed raw, a newline forges a line
 * and an escape sequence rewrites the screen.
 */
#ifndef CAIRN_UTIL_TEXT_H
#define CAIRN_UTIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Length (1-4) of the well-formed UTF-8 sequence at the start of `s` (at
 * most `n` bytes), or 0 when there is none: overlong forms, surrogates and
 * code points above U+10FFFF are not well formed.
 */
size_t cairn_utf8_seq_len(const unsigned char *s, size_t n);

/* Whether `s` (`n` bytes) is well-formed UTF-8 without NUL. */
bool cairn_utf8_valid(const char *s, size_t n);

/*
 * Whether `s` holds a C0 control byte (1-31), DEL, a C1 control (U+0080-
 * U+009F) or a bidirectional override, isolate or line separator (U+202A-
 * U+202E, U+2066-U+2069, U+2028-U+2029), which can make a name read as
 * another on screen.
 */
bool cairn_text_has_control(const char *s, size_t n);

/*
 * Write `s` into `out` (`cap` bytes, always NUL-terminated when cap > 0)
 * with control characters and bytes that are not UTF-8 written as \xNN and
 * a backslash as \\, so that what is printed is one line of visible text
 * that tells different strings apart. A result that does not fit ends in
 * "...". Returns `out`.
 */
const char *cairn_text_quote(char *out, size_t cap, const char *s);

/*
 * The same quoting, whole, into `out` (replacing its content, NUL-
 * terminated); with `keep_newlines`, '\n' is kept (multi-line messages).
 * 0 or CAIRN_ENOMEM.
 */
struct cairn_buf;
int cairn_text_quote_buf(struct cairn_buf *out, const char *s, bool keep_newlines);

#endif
