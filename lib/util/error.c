/*
 * The per-thread error slot (libgit2's git_error_set/git_error_last) and the
 * warning hook. Messages are bounded; a longer one is cut, never overflowed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cairn/common.h"

#define ERRMSG_MAX 1024

static _Thread_local char errmsg[ERRMSG_MAX];
static _Thread_local int errcode;

static cairn_warn_fn warn_fn;
static void *warn_payload;

/*
 * Formats into a local buffer first: an argument may be cairn_error_last()
 * itself (wrapping the previous message), and vsnprintf with overlapping
 * source and destination is undefined (it garbled "unsafe path" messages).
 */
static void vset(const char *fmt, va_list ap, const char *suffix)
{
    char tmp[ERRMSG_MAX];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    if (n < 0)
        tmp[n = 0] = '\0';
    if (suffix && (size_t)n < sizeof(tmp))
        snprintf(tmp + n, sizeof(tmp) - (size_t)n, ": %s", suffix);
    memcpy(errmsg, tmp, strlen(tmp) + 1);
}

int cairn_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(fmt, ap, NULL);
    va_end(ap);
    errcode = code;
    return code;
}

int cairn_error_set_errno(int code, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vset(fmt, ap, strerror(saved));
    va_end(ap);
    errcode = code;
    errno = saved;
    return code;
}

void cairn_error_prefix(const char *fmt, ...)
{
    char prefix[ERRMSG_MAX], old[ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, errmsg, sizeof(old));
    int n = snprintf(errmsg, sizeof(errmsg), "%.*s: ", (int)sizeof(errmsg) / 2, prefix);
    snprintf(errmsg + n, sizeof(errmsg) - (size_t)n, "%.*s", (int)sizeof(errmsg) / 2 - 4, old);
}

int cairn_error_replace(const char *from, const char *to)
{
    char out[ERRMSG_MAX];
    size_t n = 0, flen = strlen(from), tlen = strlen(to);
    const char *p = errmsg, *hit;
    int found = 0;
    if (!flen)
        return 0;
    while ((hit = strstr(p, from)) && n + (size_t)(hit - p) + tlen < sizeof(out)) {
        memcpy(out + n, p, (size_t)(hit - p));
        n += (size_t)(hit - p);
        memcpy(out + n, to, tlen);
        n += tlen;
        p = hit + flen;
        found = 1;
    }
    snprintf(out + n, sizeof(out) - n, "%s", p);
    memcpy(errmsg, out, sizeof(errmsg));
    return found;
}

const char *cairn_error_last(void)
{
    return errmsg[0] ? errmsg : "unknown error";
}

int cairn_error_last_code(void)
{
    return errcode;
}

void cairn_error_clear(void)
{
    errmsg[0] = '\0';
    errcode = 0;
}

void cairn_set_warn_handler(cairn_warn_fn fn, void *payload)
{
    warn_fn = fn;
    warn_payload = payload;
}

void cairn_warn(const char *fmt, ...)
{
    char msg[ERRMSG_MAX];
    va_list ap;
    if (!warn_fn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    warn_fn(msg, warn_payload);
}
