/*
 * A streaming CSV/TSV reader: a pull API over a file descriptor (or a byte
 * range) that hands out one record at a time as (pointer, length) slices into
 * an internal buffer, so a file of any size is read in bounded memory.
 *
 * Dialect: RFC 4180. Fields are separated by a one-byte delimiter (',' by
 * default, '\t' for a path ending in ".tsv", or explicit); records end with
 * LF or CRLF; a field that starts with '"' is quoted and may hold the
 * delimiter, newlines and '"' written as '""'. A '"' inside an unquoted field
 * is data. A UTF-8 byte-order mark at the start of the input is skipped.
 * Lines that are completely empty are skipped (they still count for line
 * numbers). Every record must have as many fields as the first one (the
 * header), and all bytes must be valid UTF-8 without NUL.
 *
 * Errors are CAIRN_EINVALID with a message "NAME:LINE: what", LINE being the
 * physical line (1-based) where the offending record starts (or, for invalid
 * UTF-8, the line of the bad byte). Sizes: a field larger than max_field or a
 * record larger than max_record fails with CAIRN_ENOMEM; memory use is at most
 * about 2 * max_record plus the field array.
 *
 * A reader is not thread-safe; use one per thread.
 */
#ifndef CAIRN_DATA_CSV_H
#define CAIRN_DATA_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"

#define CAIRN_CSV_DEFAULT_MAX_FIELD  ((size_t)16 << 20) /* 16 MiB */
#define CAIRN_CSV_DEFAULT_MAX_RECORD ((size_t)64 << 20) /* 64 MiB */
#define CAIRN_CSV_DEFAULT_MAX_FIELDS 65536
#define CAIRN_CSV_READ_SIZE          ((size_t)1 << 20) /* initial buffer and read size */

struct cairn_csv_opts {
    char delim;        /* 0: from the name (".tsv" → tab, anything else → ',') */
    size_t max_field;  /* 0: CAIRN_CSV_DEFAULT_MAX_FIELD */
    size_t max_record; /* 0: CAIRN_CSV_DEFAULT_MAX_RECORD (raw bytes of one record) */
    size_t max_fields; /* 0: CAIRN_CSV_DEFAULT_MAX_FIELDS (fields per record) */
    size_t read_size;  /* 0: CAIRN_CSV_READ_SIZE; tests use tiny values to hit refills */
};

/*
 * One field of the current record. `ptr[len]` is always a NUL byte, so a
 * field can be passed to C string functions (fields never contain NUL).
 */
struct cairn_csv_field {
    const char *ptr;
    size_t len;
};

struct cairn_csv;

/*
 * Open `path` for reading. `opts` may be NULL for defaults. The reader owns
 * the descriptor and closes it in cairn_csv_free().
 */
int cairn_csv_open(struct cairn_csv **out, const char *path, const struct cairn_csv_opts *opts);

/*
 * Read from an open descriptor; `name` is used in messages and for the
 * delimiter choice. The caller keeps ownership of `fd`.
 */
int cairn_csv_new_fd(struct cairn_csv **out, int fd, const char *name,
                     const struct cairn_csv_opts *opts);

/* Read from memory; the bytes are copied as they are consumed. The caller keeps `data`. */
int cairn_csv_new_mem(struct cairn_csv **out, const void *data, size_t len, const char *name,
                      const struct cairn_csv_opts *opts);

/*
 * Read the next record. On success returns 1 and points `*fields_out` at an
 * array of `*nfields_out` fields valid until the next call or free; returns 0
 * at the end of input (and keeps returning 0); returns a negative CAIRN_E*
 * code on error, after which the reader must not be used further.
 */
int cairn_csv_next(struct cairn_csv *c, const struct cairn_csv_field **fields_out,
                   size_t *nfields_out);

/* The physical line (1-based) where the record last returned started. */
uint64_t cairn_csv_line(const struct cairn_csv *c);

/* Records returned so far, the header included. */
uint64_t cairn_csv_records(const struct cairn_csv *c);

/* Bytes consumed from the input so far. */
uint64_t cairn_csv_bytes(const struct cairn_csv *c);

/* The delimiter in use. */
char cairn_csv_delim(const struct cairn_csv *c);

/* Closes the descriptor if the reader opened it. Accepts NULL. */
void cairn_csv_free(struct cairn_csv *c);

/*
 * Check that [s, s+len) is well-formed UTF-8 (no overlong forms, surrogates
 * or code points above U+10FFFF) without NUL bytes. Returns the length when
 * valid, else the offset of the first bad byte.
 */
size_t cairn_utf8_check(const char *s, size_t len);

#endif
