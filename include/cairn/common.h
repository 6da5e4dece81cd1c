/*
 * Common definitions for libcairn: error codes, the per-thread error slot and
 * object ids.
 *
 * Error handling follows libgit2: every fallible function returns 0 (or a
 * non-negative count) on success and a negative CAIRN_E* code on failure,
 * after recording a one-line, lowercase message with cairn_error_set(). The
 * caller that finally handles the error (the CLI, at the top) prints
 * cairn_error_last() once. The library never prints and never exits.
 */
#ifndef CAIRN_COMMON_H
#define CAIRN_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum cairn_error_code {
    CAIRN_OK = 0,
    CAIRN_ERROR = -1,      /* generic runtime failure (I/O, out of memory, ...) */
    CAIRN_ENOTFOUND = -3,  /* a named thing does not exist */
    CAIRN_EEXISTS = -4,    /* it exists already and may not be replaced */
    CAIRN_EAMBIGUOUS = -5, /* a prefix or name matches more than one thing */
    CAIRN_EINVALID = -6,   /* bad input from the user: names, refs, options, files */
    CAIRN_ECORRUPT = -7,   /* stored data failed verification */
    CAIRN_ELOCKED = -8,    /* another process holds a lock we may not wait for */
    CAIRN_ECHECK = -9,     /* a check ran and failed (gate, fsck, verify) */
    CAIRN_ENOMEM = -10,    /* an allocation failed or a size limit was hit */
};

/*
 * Record an error message for this thread and return `code`, so callers can
 * write `return cairn_error_set(CAIRN_EINVALID, "bad name '%s'", n);`.
 */
int cairn_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As cairn_error_set(), appending ": " and strerror(errno) (errno is kept). */
int cairn_error_set_errno(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the current message with "PREFIX: " (for adding context on the way up). */
void cairn_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Replace every `from` in the current message by `to`, keeping its code: a
 * temporary path by the name the user knows. Returns 1 if `from` occurred.
 */
int cairn_error_replace(const char *from, const char *to);

/* The last message set on this thread ("unknown error" if none). Valid until the next set. */
const char *cairn_error_last(void);

/* The code passed to the last cairn_error_set() on this thread. */
int cairn_error_last_code(void);

void cairn_error_clear(void);

/*
 * Warnings: things the library recovers from but a user should hear about
 * (a damaged header that falls back to generic chunking). The library hands
 * them to this callback; by default they are dropped. Thread-safe to call;
 * set the handler once at start-up.
 */
typedef void (*cairn_warn_fn)(const char *msg, void *payload);
void cairn_set_warn_handler(cairn_warn_fn fn, void *payload);
void cairn_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A 32-byte BLAKE3-256 digest: chunk ids, file digests, object and version ids. */
#define CAIRN_OID_RAWSZ 32
#define CAIRN_OID_HEXSZ 64
typedef struct cairn_oid {
    uint8_t id[CAIRN_OID_RAWSZ];
} cairn_oid;

#ifdef __cplusplus
}
#endif

#endif
