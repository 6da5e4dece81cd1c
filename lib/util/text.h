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

/* Whether `s` (`n` bytes) is well-formed UTF-8. */
bool cairn_utf8_valid(const char *s, size_t n);

/* Whether `s` holds a C0 control byte (1-31), DEL or a C1 control (U+0080-U+009F). */
bool cairn_text_has_control(const char *s, size_t n);

/*
 * Write `s` into `out` (`cap` bytes, always NUL-terminated when cap > 0)
 * with control characters and bytes that are not UTF-8 written as \xNN and
 * a backslash as \\, so that what is printed is one line of visible text
 * that tells different strings apart. A result that does not fit ends in
 * "...". Returns `out`.
 */
const char *cairn_text_quote(char *out, size_t cap, const char *s);

#endif
