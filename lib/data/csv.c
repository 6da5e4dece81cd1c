/*
 * The streaming CSV reader (see csv.h for the dialect and the contract).
 *
 * Speed comes from the common case: a record on one line with no '"'. There
 * the reader finds the line end with memchr, checks the line for '"' with
 * memchr, validates UTF-8 eight bytes at a time (ASCII is one AND per word)
 * and splits at delimiters with memchr; fields are slices of the read
 * buffer, NUL-terminated in place by overwriting the delimiter once the
 * record is complete. Only a line holding a quote takes the byte-level state
 * machine, and only a quoted field with a '""' escape is copied (to a
 * scratch buffer).
 *
 * Buffering: unconsumed input lives in buf[start, end). When a record does
 * not end inside the buffer, the partial record is moved to the front, the
 * buffer is refilled (doubling up to max_record when the record alone fills
 * it) and the record is parsed again from its start. Parsing never modifies
 * the buffer, so a restart is always safe; the cost of a restart is the
 * partial record, which the doubling keeps linear overall.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "data/csv.h"
#include "util/buf.h"

struct slot {
    size_t off;
    size_t len;
    bool scratch;
};

struct cairn_csv {
    int fd;
    bool own_fd;
    const unsigned char *mem; /* memory input instead of fd */
    size_t mem_len, mem_pos;
    char *name;
    char delim;
    size_t max_field, max_record, max_fields, read_size;

    char *buf; /* cap bytes; data in [start, end), end < cap so buf[end] is writable */
    size_t cap;
    size_t start, end;
    bool eof;
    bool bom_done;
    int failed;

    size_t partial;      /* start of the field in progress when parse ran out of data */
    size_t rec_end;      /* offset just past the record (and its terminator) */
    size_t rec_newlines; /* '\n' bytes inside [start, rec_end) */

    uint64_t line, next_line, records, consumed;
    size_t expect;

    struct slot *slots;
    struct cairn_csv_field *fields;
    size_t nslots, slots_cap;
    struct cairn_buf scratch;
};

enum { P_MORE = 0, P_DONE = 1, P_EMPTY = 2 };

static const uint64_t ONES = 0x0101010101010101ULL;
static const uint64_t HIGHS = 0x8080808080808080ULL;

size_t cairn_utf8_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path: no high bit and no zero byte in the next eight. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & HIGHS) || ((w - ONES) & ~w & HIGHS))
                break;
            i += 8;
        }
        if (i >= len)
            break;
        unsigned char b = s[i];
        if (b > 0 && b < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (b >= 0xc2 && b <= 0xdf) {
            n = 2;
        } else if (b >= 0xe0 && b <= 0xef) {
            n = 3;
            if (b == 0xe0)
                lo = 0xa0; /* overlong */
            else if (b == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (b >= 0xf0 && b <= 0xf4) {
            n = 4;
            if (b == 0xf0)
                lo = 0x90; /* overlong */
            else if (b == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return i; /* NUL, stray continuation byte, 0xc0/0xc1, 0xf5.. */
        }
        if (i + n > len || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
        i += n;
    }
    return len;
}

static bool name_is_tsv(const char *name)
{
    size_t n = strlen(name);
    return n >= 4 && strcasecmp(name + n - 4, ".tsv") == 0;
}

static int csv_new(struct cairn_csv **out, const char *name, const struct cairn_csv_opts *opts)
{
    struct cairn_csv_opts o = { 0 };
    struct cairn_csv *c = NULL;
    int error = 0;

    *out = NULL;
    if (opts)
        o = *opts;
    if (o.delim == 0)
        o.delim = name_is_tsv(name) ? '\t' : ',';
    if (o.delim == '\n' || o.delim == '\r' || o.delim == '"' || (unsigned char)o.delim >= 0x80) {
        error = cairn_error_set(CAIRN_EINVALID, "invalid CSV delimiter 0x%02x",
                                (unsigned)(unsigned char)o.delim);
        goto done;
    }
    if (!o.max_field)
        o.max_field = CAIRN_CSV_DEFAULT_MAX_FIELD;
    if (!o.max_record)
        o.max_record = CAIRN_CSV_DEFAULT_MAX_RECORD;
    if (!o.max_fields)
        o.max_fields = CAIRN_CSV_DEFAULT_MAX_FIELDS;
    if (!o.read_size)
        o.read_size = CAIRN_CSV_READ_SIZE;
    if (o.read_size > o.max_record)
        o.read_size = o.max_record;

    if (!(c = calloc(1, sizeof(*c))) || !(c->name = strdup(name))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    c->fd = -1;
    c->delim = o.delim;
    c->max_field = o.max_field;
    c->max_record = o.max_record;
    c->max_fields = o.max_fields;
    c->read_size = o.read_size;
    c->cap = o.read_size + 1;
    c->next_line = 1;
    cairn_buf_init(&c->scratch, o.max_record + o.max_fields + 1);
    if (!(c->buf = malloc(c->cap))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    *out = c;
    c = NULL;
done:
    cairn_csv_free(c);
    return error;
}

int cairn_csv_new_fd(struct cairn_csv **out, int fd, const char *name,
                     const struct cairn_csv_opts *opts)
{
    int error = csv_new(out, name, opts);
    if (error == 0) {
        (*out)->fd = fd;
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    return error;
}

int cairn_csv_open(struct cairn_csv **out, const char *path, const struct cairn_csv_opts *opts)
{
    int fd, error;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cairn_error_set_errno(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_ERROR,
                                     "cannot open '%s'", path);
    if ((error = cairn_csv_new_fd(out, fd, path, opts)) < 0) {
        close(fd);
        return error;
    }
    (*out)->own_fd = true;
    return 0;
}

int cairn_csv_new_mem(struct cairn_csv **out, const void *data, size_t len, const char *name,
                      const struct cairn_csv_opts *opts)
{
    int error = csv_new(out, name, opts);
    if (error == 0) {
        (*out)->mem = data ? data : (const unsigned char *)"";
        (*out)->mem_len = data ? len : 0;
    }
    return error;
}

void cairn_csv_free(struct cairn_csv *c)
{
    if (!c)
        return;
    if (c->own_fd && c->fd >= 0)
        close(c->fd);
    free(c->name);
    free(c->buf);
    free(c->slots);
    free(c->fields);
    cairn_buf_release(&c->scratch);
    free(c);
}

uint64_t cairn_csv_line(const struct cairn_csv *c)
{
    return c->line;
}

uint64_t cairn_csv_records(const struct cairn_csv *c)
{
    return c->records;
}

uint64_t cairn_csv_bytes(const struct cairn_csv *c)
{
    return c->consumed;
}

char cairn_csv_delim(const struct cairn_csv *c)
{
    return c->delim;
}

/* Move the unconsumed bytes to the front, grow if full, read more or set eof. */
static int fill(struct cairn_csv *c)
{
    size_t room;

    if (c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->partial -= c->partial >= c->start ? c->start : c->partial;
        c->start = 0;
    }
    if (c->end + 1 >= c->cap) {
        size_t ncap;
        char *nbuf;
        if (c->cap - 1 >= c->max_record)
            return cairn_error_set(CAIRN_ENOMEM, "%s:%llu: record larger than %zu bytes", c->name,
                                   (unsigned long long)c->next_line, c->max_record);
        ncap = (c->cap - 1) * 2;
        if (ncap > c->max_record)
            ncap = c->max_record;
        if (!(nbuf = realloc(c->buf, ncap + 1)))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        c->buf = nbuf;
        c->cap = ncap + 1;
    }
    /* Read at least as much as the partial record we hold, so that re-parsing
     * it after each refill stays linear in the record size. */
    room = c->cap - 1 - c->end;
    if (room > c->read_size && room > c->end)
        room = c->read_size > c->end ? c->read_size : c->end;
    if (c->mem) {
        size_t n = c->mem_len - c->mem_pos;
        if (n > room)
            n = room;
        memcpy(c->buf + c->end, c->mem + c->mem_pos, n);
        c->mem_pos += n;
        c->end += n;
        if (n == 0)
            c->eof = true;
        return 0;
    }
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->end, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cairn_error_set_errno(CAIRN_ERROR, "cannot read '%s'", c->name);
        if (n == 0)
            c->eof = true;
        c->end += (size_t)n;
        return 0;
    }
}

static int add_slot(struct cairn_csv *c, size_t off, size_t len, bool scratch)
{
    if (c->nslots == c->slots_cap) {
        size_t ncap = c->slots_cap ? c->slots_cap * 2 : 64;
        struct slot *ns;
        struct cairn_csv_field *nf;
        if (c->nslots >= c->max_fields)
            return cairn_error_set(CAIRN_ENOMEM, "%s:%llu: record has more than %zu fields",
                                   c->name, (unsigned long long)c->next_line, c->max_fields);
        if (ncap > c->max_fields)
            ncap = c->max_fields;
        if (!(ns = realloc(c->slots, ncap * sizeof(*ns))))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        c->slots = ns;
        if (!(nf = realloc(c->fields, ncap * sizeof(*nf))))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        c->fields = nf;
        c->slots_cap = ncap;
    }
    if (len > c->max_field)
        return cairn_error_set(CAIRN_ENOMEM, "%s:%llu: field %zu larger than %zu bytes", c->name,
                               (unsigned long long)c->next_line, c->nslots + 1, c->max_field);
    c->slots[c->nslots].off = off;
    c->slots[c->nslots].len = len;
    c->slots[c->nslots].scratch = scratch;
    c->nslots++;
    return 0;
}

/* Copy quoted content with '""' collapsed into the scratch buffer, NUL-terminated. */
static int unescape(struct cairn_csv *c, const char *s, const char *e)
{
    size_t off = c->scratch.len;
    int error;
    if ((error = cairn_buf_grow(&c->scratch, (size_t)(e - s) + 1)) < 0)
        return error;
    char *w = c->scratch.ptr + off;
    while (s < e) {
        const char *q = memchr(s, '"', (size_t)(e - s));
        size_t n = q ? (size_t)(q - s) + 1 : (size_t)(e - s);
        memcpy(w, s, n);
        w += n;
        s += n + (q ? 1 : 0); /* skip the second quote of the pair */
    }
    *w = '\0';
    error = add_slot(c, off, (size_t)(w - (c->scratch.ptr + off)), true);
    c->scratch.len = (size_t)(w - c->scratch.ptr) + 1;
    return error;
}

static uint64_t count_newlines(const char *s, const char *e)
{
    uint64_t n = 0;
    while (s < e && (s = memchr(s, '\n', (size_t)(e - s))) != NULL) {
        n++;
        s++;
    }
    return n;
}

static int utf8_error(struct cairn_csv *c, const char *rec, size_t bad)
{
    uint64_t line = c->next_line + count_newlines(rec, rec + bad);
    const char *ls = rec + bad;
    while (ls > rec && ls[-1] != '\n')
        ls--;
    if (rec[bad] == '\0')
        return cairn_error_set(CAIRN_EINVALID, "%s:%llu: NUL byte at column %zu", c->name,
                               (unsigned long long)line, (size_t)(rec + bad - ls) + 1);
    return cairn_error_set(CAIRN_EINVALID, "%s:%llu: invalid UTF-8 at column %zu", c->name,
                           (unsigned long long)line, (size_t)(rec + bad - ls) + 1);
}

/* The byte-level state machine for records that contain a quote. */
static int parse_quoted(struct cairn_csv *c)
{
    const char *buf = c->buf, *p = buf + c->start, *end = buf + c->end;
    const char delim = c->delim;
    const char *q = p;
    int error;

    for (;;) {
        c->partial = (size_t)(q - buf);
        if (q < end && *q == '"') {
            const char *cs = q + 1, *r = cs, *close;
            bool escaped = false;
            for (;;) {
                const char *x = memchr(r, '"', (size_t)(end - r));
                if (!x) {
                    if (c->eof)
                        return cairn_error_set(
                            CAIRN_EINVALID, "%s:%llu: unterminated quoted field", c->name,
                            (unsigned long long)(c->next_line + count_newlines(p, q)));
                    return P_MORE;
                }
                if (x + 1 == end && !c->eof)
                    return P_MORE;
                if (x + 1 < end && x[1] == '"') {
                    escaped = true;
                    r = x + 2;
                    continue;
                }
                close = x;
                break;
            }
            if ((size_t)(close - cs) > c->max_field)
                return cairn_error_set(CAIRN_ENOMEM, "%s:%llu: field %zu larger than %zu bytes",
                                       c->name, (unsigned long long)c->next_line, c->nslots + 1,
                                       c->max_field);
            if (escaped)
                error = unescape(c, cs, close);
            else
                error = add_slot(c, (size_t)(cs - buf), (size_t)(close - cs), false);
            if (error < 0)
                return error;
            q = close + 1;
            if (q == end) { /* eof: the check above returned P_MORE otherwise */
                c->rec_end = c->end;
                break;
            }
            if (*q == delim) {
                q++;
                continue;
            }
            if (*q == '\n') {
                c->rec_end = (size_t)(q + 1 - buf);
                break;
            }
            if (*q == '\r') {
                if (q + 1 == end && !c->eof)
                    return P_MORE;
                if (q + 1 == end || q[1] == '\n') {
                    c->rec_end = (size_t)(q + 1 == end ? q + 1 - buf : q + 2 - buf);
                    break;
                }
            }
            return cairn_error_set(
                CAIRN_EINVALID,
                "%s:%llu: unexpected character after closing quote of field "
                "%zu",
                c->name, (unsigned long long)(c->next_line + count_newlines(p, q)), c->nslots);
        } else {
            const char *r = q;
            while (r < end && *r != delim && *r != '\n')
                r++;
            if (r == end && !c->eof)
                return P_MORE;
            if (r == end || *r == '\n') {
                const char *fe = r;
                if (fe > q && fe[-1] == '\r')
                    fe--;
                if ((error = add_slot(c, (size_t)(q - buf), (size_t)(fe - q), false)) < 0)
                    return error;
                c->rec_end = r == end ? c->end : (size_t)(r + 1 - buf);
                break;
            }
            if ((error = add_slot(c, (size_t)(q - buf), (size_t)(r - q), false)) < 0)
                return error;
            q = r + 1;
        }
    }
    c->rec_newlines = count_newlines(p, buf + c->rec_end);
    {
        size_t n = c->rec_end - c->start;
        size_t bad = cairn_utf8_check(p, n);
        if (bad < n)
            return utf8_error(c, p, bad);
    }
    return P_DONE;
}

/* Parse the record at c->start: P_DONE, P_EMPTY (blank line), P_MORE or an error. */
static int parse(struct cairn_csv *c)
{
    const char *buf = c->buf, *p = buf + c->start, *end = buf + c->end;
    const char *nl, *le, *fe, *f;
    int error;

    c->nslots = 0;
    c->scratch.len = 0;
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl) {
        le = nl;
    } else if (c->eof) {
        le = end;
    } else {
        const char *d;
        if (memchr(p, '"', (size_t)(end - p)))
            return parse_quoted(c);
        d = memrchr(p, c->delim, (size_t)(end - p));
        c->partial = d ? (size_t)(d + 1 - buf) : c->start;
        return P_MORE;
    }
    if (memchr(p, '"', (size_t)(le - p)))
        return parse_quoted(c);

    fe = le;
    if (fe > p && fe[-1] == '\r')
        fe--;
    c->rec_end = nl ? (size_t)(nl + 1 - buf) : c->end;
    c->rec_newlines = nl ? 1 : 0;
    if (fe == p)
        return P_EMPTY;
    {
        size_t n = (size_t)(fe - p);
        size_t bad = cairn_utf8_check(p, n);
        if (bad < n)
            return utf8_error(c, p, bad);
    }
    f = p;
    for (;;) {
        const char *d = memchr(f, c->delim, (size_t)(fe - f));
        if (!d)
            d = fe;
        if (c->nslots < c->slots_cap && (size_t)(d - f) <= c->max_field) {
            struct slot *s = &c->slots[c->nslots++];
            s->off = (size_t)(f - buf);
            s->len = (size_t)(d - f);
            s->scratch = false;
        } else if ((error = add_slot(c, (size_t)(f - buf), (size_t)(d - f), false)) < 0) {
            return error;
        }
        if (d == fe)
            break;
        f = d + 1;
    }
    return P_DONE;
}

int cairn_csv_next(struct cairn_csv *c, const struct cairn_csv_field **fields_out,
                   size_t *nfields_out)
{
    int r = 0;

    *fields_out = NULL;
    *nfields_out = 0;
    if (c->failed)
        return c->failed;
    for (;;) {
        if (!c->bom_done) {
            if (c->end - c->start < 3 && !c->eof) {
                if ((r = fill(c)) < 0)
                    goto done;
                continue;
            }
            if (c->end - c->start >= 3 && memcmp(c->buf + c->start, "\xef\xbb\xbf", 3) == 0) {
                c->start += 3;
                c->consumed += 3;
            }
            c->bom_done = true;
        }
        if (c->start == c->end && c->eof) {
            r = 0;
            goto done;
        }
        r = parse(c);
        if (r < 0)
            goto done;
        if (r == P_MORE) {
            if (c->end - c->partial > c->max_field) {
                r = cairn_error_set(CAIRN_ENOMEM, "%s:%llu: field larger than %zu bytes", c->name,
                                    (unsigned long long)c->next_line, c->max_field);
                goto done;
            }
            if ((r = fill(c)) < 0)
                goto done;
            continue;
        }
        c->consumed += c->rec_end - c->start;
        if (r == P_EMPTY) {
            c->start = c->rec_end;
            c->next_line += c->rec_newlines;
            continue;
        }
        break;
    }

    c->line = c->next_line;
    if (c->expect == 0) {
        c->expect = c->nslots;
    } else if (c->nslots != c->expect) {
        r = cairn_error_set(CAIRN_EINVALID, "%s:%llu: record has %zu field%s, header has %zu",
                            c->name, (unsigned long long)c->line, c->nslots,
                            c->nslots == 1 ? "" : "s", c->expect);
        goto done;
    }
    for (size_t i = 0; i < c->nslots; i++) {
        const struct slot *s = &c->slots[i];
        if (s->scratch) {
            c->fields[i].ptr = c->scratch.ptr + s->off;
        } else {
            c->buf[s->off + s->len] = '\0';
            c->fields[i].ptr = c->buf + s->off;
        }
        c->fields[i].len = s->len;
    }
    c->start = c->rec_end;
    c->next_line += c->rec_newlines;
    c->records++;
    *fields_out = c->fields;
    *nfields_out = c->nslots;
    r = 1;
done:
    if (r < 0)
        c->failed = r;
    return r;
}
