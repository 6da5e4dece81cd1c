/*
 * Pack and idx encoding, validation and the buffered pack writer; see
 * pack.h for the contract and docs/formats.md for the layout.
 *
 * Parsers here read bytes from disk (or a fuzzer): every length is checked
 * against the bytes present and against CAIRN__CHUNK_MAX before use, and
 * nothing allocates according to a length read from input.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/common.h"
#include "store/codec.h"
#include "store/pack.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/pool.h"

/* One buffer filling plus FLUSH_BUFS spares per writer. A multiple of DIRECT_ALIGN. */
#define WRITE_BUF_SIZE ((size_t)4 << 20)
/* O_DIRECT wants aligned memory, offsets and lengths; 4096 covers every common device. */
#define DIRECT_ALIGN ((size_t)4096)

int cairn__gc_stop_after;
uint64_t cairn__pack_target = CAIRN__PACK_TARGET;

size_t cairn__entry_header_write(uint8_t *out, const struct cairn__pack_entry *e)
{
    cairn_put_u32le(out, CAIRN__ENTRY_MARKER);
    memcpy(out + 4, e->id.id, CAIRN_OID_RAWSZ);
    out[36] = e->codec;
    out[37] = e->flags;
    out[38] = out[39] = 0;
    cairn_put_u64le(out + 40, e->raw_len);
    cairn_put_u64le(out + 48, e->stored_len);
    if (e->flags & CAIRN__PACK_F_BASE) {
        memcpy(out + 56, e->base.id, CAIRN_OID_RAWSZ);
        return CAIRN__ENTRY_HDR_MAX;
    }
    return CAIRN__ENTRY_HDR_LEN;
}

static int check_lengths(const struct cairn__pack_entry *e)
{
    if (e->raw_len > CAIRN__CHUNK_MAX || e->stored_len > CAIRN__CHUNK_MAX)
        return cairn_error_set(CAIRN_ECORRUPT, "entry length out of range");
    if (e->codec == CAIRN_CODEC_RAW && e->stored_len != e->raw_len)
        return cairn_error_set(CAIRN_ECORRUPT, "raw entry with stored length %llu != %llu",
                               (unsigned long long)e->stored_len, (unsigned long long)e->raw_len);
    if (e->flags & ~CAIRN__PACK_F_BASE)
        return cairn_error_set(CAIRN_ECORRUPT, "unknown entry flags 0x%02x", e->flags);
    return 0;
}

int cairn__entry_header_parse(struct cairn__pack_entry *out, const void *buf, size_t len,
                              uint64_t offset)
{
    const uint8_t *p = buf;

    memset(out, 0, sizeof(*out));
    if (len < CAIRN__ENTRY_HDR_LEN)
        return cairn_error_set(CAIRN_ECORRUPT, "truncated entry header");
    if (cairn_get_u32le(p) != CAIRN__ENTRY_MARKER)
        return cairn_error_set(CAIRN_ECORRUPT, "bad entry marker");
    memcpy(out->id.id, p + 4, CAIRN_OID_RAWSZ);
    out->codec = p[36];
    out->flags = p[37];
    if (p[38] || p[39])
        return cairn_error_set(CAIRN_ECORRUPT, "nonzero reserved bytes in entry header");
    out->raw_len = cairn_get_u64le(p + 40);
    out->stored_len = cairn_get_u64le(p + 48);
    out->offset = offset;
    if (check_lengths(out) < 0)
        return CAIRN_ECORRUPT;
    if (out->flags & CAIRN__PACK_F_BASE) {
        if (len < CAIRN__ENTRY_HDR_MAX)
            return cairn_error_set(CAIRN_ECORRUPT, "truncated entry header");
        memcpy(out->base.id, p + 56, CAIRN_OID_RAWSZ);
    }
    return 0;
}

void cairn__entry_check_compute(uint8_t *out16, const void *hdr, size_t hdr_len, const void *data,
                                size_t data_len)
{
    struct cairn_hasher h;
    cairn_oid full;

    cairn_hasher_init(&h);
    cairn_hasher_update(&h, hdr, hdr_len);
    cairn_hasher_update(&h, data, data_len);
    cairn_hasher_final(&h, &full);
    memcpy(out16, full.id, CAIRN__ENTRY_CHECK_LEN);
}

int cairn__entry_check_verify(const void *check16, const void *hdr, size_t hdr_len,
                              const void *data, size_t data_len)
{
    uint8_t want[CAIRN__ENTRY_CHECK_LEN];

    cairn__entry_check_compute(want, hdr, hdr_len, data, data_len);
    if (memcmp(want, check16, CAIRN__ENTRY_CHECK_LEN) != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "entry check mismatch");
    return 0;
}

void cairn__idx_entry(struct cairn__pack_entry *out, const void *idx, uint32_t i)
{
    const uint8_t *p = (const uint8_t *)idx + CAIRN__IDX_HDR_LEN + (size_t)i * CAIRN__IDX_ENTRY_LEN;

    memcpy(out->id.id, p, CAIRN_OID_RAWSZ);
    out->offset = cairn_get_u64le(p + 32);
    out->stored_len = cairn_get_u64le(p + 40);
    out->raw_len = cairn_get_u64le(p + 48);
    out->codec = p[56];
    out->flags = p[57];
    memcpy(out->base.id, p + 64, CAIRN_OID_RAWSZ);
}

static void idx_entry_write(uint8_t *p, const struct cairn__pack_entry *e)
{
    memcpy(p, e->id.id, CAIRN_OID_RAWSZ);
    cairn_put_u64le(p + 32, e->offset);
    cairn_put_u64le(p + 40, e->stored_len);
    cairn_put_u64le(p + 48, e->raw_len);
    p[56] = e->codec;
    p[57] = e->flags;
    memset(p + 58, 0, 6);
    if (e->flags & CAIRN__PACK_F_BASE)
        memcpy(p + 64, e->base.id, CAIRN_OID_RAWSZ);
    else
        memset(p + 64, 0, CAIRN_OID_RAWSZ);
}

int cairn__idx_validate(uint32_t *count_out, uint64_t *pack_size_out, cairn_oid *name_out,
                        const void *data, size_t len, uint64_t pack_size)
{
    const uint8_t *p = data;
    static const uint8_t zero[CAIRN_OID_RAWSZ];
    uint64_t recorded, count;
    cairn_oid h;

    if (len < CAIRN__IDX_HDR_LEN + CAIRN__IDX_TRAILER_LEN)
        return cairn_error_set(CAIRN_ECORRUPT, "index too short (%zu bytes)", len);
    if (memcmp(p, CAIRN__IDX_MAGIC, 8) != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "bad index magic");
    count = cairn_get_u32le(p + 8);
    if (cairn_get_u32le(p + 12) != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "nonzero reserved field in index header");
    recorded = cairn_get_u64le(p + 16);
    if ((len - CAIRN__IDX_HDR_LEN - CAIRN__IDX_TRAILER_LEN) / CAIRN__IDX_ENTRY_LEN != count ||
        (len - CAIRN__IDX_HDR_LEN - CAIRN__IDX_TRAILER_LEN) % CAIRN__IDX_ENTRY_LEN != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "index size %zu does not match its %llu entries",
                               len, (unsigned long long)count);
    cairn_hash(&h, p, len - CAIRN__IDX_TRAILER_LEN);
    if (memcmp(h.id, p + len - CAIRN__IDX_TRAILER_LEN, CAIRN__IDX_TRAILER_LEN) != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "index checksum mismatch");
    if (pack_size != UINT64_MAX && recorded != pack_size)
        return cairn_error_set(CAIRN_ECORRUPT, "pack is %llu bytes, index expects %llu",
                               (unsigned long long)pack_size, (unsigned long long)recorded);
    if (recorded < CAIRN__PACK_HDR_LEN)
        return cairn_error_set(CAIRN_ECORRUPT, "index records a pack of %llu bytes",
                               (unsigned long long)recorded);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *q = p + CAIRN__IDX_HDR_LEN + (size_t)i * CAIRN__IDX_ENTRY_LEN;
        struct cairn__pack_entry e;

        cairn__idx_entry(&e, p, i);
        if (i > 0 && memcmp(q - CAIRN__IDX_ENTRY_LEN, q, CAIRN_OID_RAWSZ) >= 0)
            return cairn_error_set(CAIRN_ECORRUPT, "index entries not sorted at %u", i);
        if (q[58] | q[59] | q[60] | q[61] | q[62] | q[63])
            return cairn_error_set(CAIRN_ECORRUPT, "nonzero reserved bytes in index entry %u", i);
        if (check_lengths(&e) < 0) {
            cairn_error_prefix("index entry %u", i);
            return CAIRN_ECORRUPT;
        }
        if (!(e.flags & CAIRN__PACK_F_BASE) && memcmp(e.base.id, zero, CAIRN_OID_RAWSZ) != 0)
            return cairn_error_set(CAIRN_ECORRUPT, "index entry %u has a base but no base flag", i);
        if (e.offset < CAIRN__PACK_HDR_LEN || e.offset > recorded ||
            cairn__entry_total_len(&e) > recorded - e.offset)
            return cairn_error_set(CAIRN_ECORRUPT, "index entry %u lies outside the pack", i);
    }
    cairn_hash(name_out, p + CAIRN__IDX_HDR_LEN, (size_t)count * CAIRN__IDX_ENTRY_LEN);
    *count_out = (uint32_t)count;
    *pack_size_out = recorded;
    return 0;
}

long cairn__idx_find(const void *idx, uint32_t count, const cairn_oid *id)
{
    const uint8_t *base = (const uint8_t *)idx + CAIRN__IDX_HDR_LEN;
    size_t lo = 0, hi = count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(base + mid * CAIRN__IDX_ENTRY_LEN, id->id, CAIRN_OID_RAWSZ);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int cairn__pack_filename(struct cairn_buf *out, const char *packs_dir, const cairn_oid *name,
                         const char *suffix)
{
    char hex[CAIRN_OID_HEXSZ + 1];

    cairn_buf_clear(out);
    return cairn_buf_printf(out, "%s/pack-%s.%s", packs_dir, cairn_oid_fmt(hex, name), suffix);
}

int cairn__pack_is_temp_name(const char *name)
{
    return strncmp(name, "tmp-", 4) == 0 || strstr(name, ".tmp.") != NULL;
}

int cairn__pack_parse_name(cairn_oid *out, const char *name, const char *suffix)
{
    size_t slen = strlen(suffix);
    char hex[CAIRN_OID_HEXSZ + 1];

    if (strncmp(name, "pack-", 5) != 0 || strlen(name) != 5 + CAIRN_OID_HEXSZ + 1 + slen)
        return 0;
    if (name[5 + CAIRN_OID_HEXSZ] != '.' || strcmp(name + 5 + CAIRN_OID_HEXSZ + 1, suffix) != 0)
        return 0;
    memcpy(hex, name + 5, CAIRN_OID_HEXSZ);
    hex[CAIRN_OID_HEXSZ] = '\0';
    for (int i = 0; i < CAIRN_OID_HEXSZ; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return 0;
    return cairn_oid_parse(out, hex) == 0;
}

/*
 * Create "tmp-<pid>-<n>.<suffix>" with O_EXCL; retries past stale names.
 * With `*direct` set, asks for O_DIRECT and clears `*direct` when the file
 * system refuses it (tmpfs).
 */
static int create_temp(int *fd_out, char **path_out, const char *dir, const char *suffix,
                       int *direct)
{
    static atomic_uint counter;
    struct cairn_buf path = CAIRN_BUF_INIT;
    int error = 0, fd = -1;

    for (int tries = 0; tries < 100; tries++) {
        cairn_buf_clear(&path);
        if ((error = cairn_buf_printf(
                 &path, "%s/tmp-%d-%u-%llx.%s", dir, (int)getpid(), atomic_fetch_add(&counter, 1),
                 (unsigned long long)cairn_time_now_ns() & 0xffffff, suffix)) < 0)
            goto done;
        fd = open(path.ptr, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (*direct ? O_DIRECT : 0),
                  0444);
        if (fd < 0 && errno == EINVAL && *direct) {
            *direct = 0;
            tries--;
            continue;
        }
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", path.ptr);
        goto done;
    }
    *fd_out = fd;
    *path_out = cairn_buf_detach(&path, NULL);
done:
    cairn_buf_release(&path);
    return error;
}

/*
 * The flusher: FLUSH_THREADS helper threads that write full buffers, each
 * at the file offset it was queued with, while the caller fills another;
 * two writes in flight kept the device busier than one. FLUSH_BUFS spares
 * let the caller run that many buffers ahead of the device, so a slow
 * write (the device stalls now and then, and shares its bandwidth with the
 * syncer and the reads) does not stop ingest at once. Errors are kept as an
 * errno and reported by the caller's next call, since error messages are
 * per thread.
 */
#define FLUSH_BUFS    4
#define FLUSH_THREADS 2

struct cairn__pack_flusher {
    pthread_t threads[FLUSH_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned started;
    int stop;
    int fd;
    int direct;   /* fd has O_DIRECT; atomic: either thread may clear it, to the same end */
    uint64_t off; /* file offset of the next buffer queued */
    unsigned char *spare[FLUSH_BUFS];
    unsigned nspare;
    struct {
        unsigned char *buf;
        size_t len;
        uint64_t off;
    } queue[FLUSH_BUFS]; /* full buffers, oldest first, each with its file offset */
    unsigned head, count;
    unsigned busy; /* threads writing a buffer they took off the queue */
    int err;       /* errno of a failed write, sticky until the next open */
};

/* Write all of p at `off`; turns O_DIRECT off for good if the file system refuses it. */
static int flusher_write(struct cairn__pack_flusher *fl, const unsigned char *p, size_t len,
                         uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fl->fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EINVAL && __atomic_load_n(&fl->direct, __ATOMIC_RELAXED)) {
            int flags = fcntl(fl->fd, F_GETFL);
            if (flags < 0 || fcntl(fl->fd, F_SETFL, flags & ~O_DIRECT) < 0)
                return errno;
            __atomic_store_n(&fl->direct, 0, __ATOMIC_RELAXED);
            continue;
        }
        if (n < 0)
            return errno;
        if (n == 0)
            return EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static void *flusher_main(void *arg)
{
    struct cairn__pack_flusher *fl = arg;

    pthread_mutex_lock(&fl->mu);
    for (;;) {
        while (!fl->count && !fl->stop)
            pthread_cond_wait(&fl->cv, &fl->mu);
        if (!fl->count)
            break;
        unsigned char *buf = fl->queue[fl->head].buf;
        size_t len = fl->queue[fl->head].len;
        uint64_t off = fl->queue[fl->head].off;
        int err = fl->err;
        fl->head = (fl->head + 1) % FLUSH_BUFS;
        fl->count--;
        fl->busy++;
        pthread_mutex_unlock(&fl->mu);
        if (!err)
            err = flusher_write(fl, buf, len, off);
        pthread_mutex_lock(&fl->mu);
        if (err && !fl->err)
            fl->err = err;
        fl->spare[fl->nspare++] = buf;
        fl->busy--;
        pthread_cond_broadcast(&fl->cv);
    }
    pthread_mutex_unlock(&fl->mu);
    return NULL;
}

/* Wait until the flusher is idle; returns its error for `w`'s pack, if any. */
static int flusher_wait(struct cairn__pack_writer *w)
{
    struct cairn__pack_flusher *fl = w->fl;
    int err;

    pthread_mutex_lock(&fl->mu);
    while (fl->count || fl->busy)
        pthread_cond_wait(&fl->cv, &fl->mu);
    err = fl->err;
    pthread_mutex_unlock(&fl->mu);
    if (err) {
        errno = err;
        return cairn_error_set_errno(CAIRN_ERROR, "cannot write '%s'", w->tmp_path);
    }
    return 0;
}

static void flusher_free(struct cairn__pack_flusher *fl)
{
    if (!fl)
        return;
    if (fl->started) {
        pthread_mutex_lock(&fl->mu);
        fl->stop = 1;
        pthread_cond_broadcast(&fl->cv);
        pthread_mutex_unlock(&fl->mu);
        for (unsigned i = 0; i < fl->started; i++)
            pthread_join(fl->threads[i], NULL);
    }
    pthread_mutex_destroy(&fl->mu);
    pthread_cond_destroy(&fl->cv);
    for (unsigned i = 0; i < fl->nspare; i++)
        free(fl->spare[i]);
    free(fl);
}

static int flusher_new(struct cairn__pack_flusher **out)
{
    struct cairn__pack_flusher *fl = calloc(1, sizeof(*fl));

    if (!fl)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory allocating a pack buffer");
    for (; fl->nspare < FLUSH_BUFS; fl->nspare++) {
        if (!(fl->spare[fl->nspare] = aligned_alloc(DIRECT_ALIGN, WRITE_BUF_SIZE))) {
            while (fl->nspare)
                free(fl->spare[--fl->nspare]);
            free(fl);
            return cairn_error_set(CAIRN_ENOMEM, "out of memory allocating a pack buffer");
        }
    }
    pthread_mutex_init(&fl->mu, NULL);
    pthread_cond_init(&fl->cv, NULL);
    fl->fd = -1;
    *out = fl;
    return 0;
}

void cairn__pack_writer_init(struct cairn__pack_writer *w)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
}

int cairn__pack_writer_open(struct cairn__pack_writer *w, const char *packs_dir)
{
    int error, direct = !getenv("CAIRN_NO_DIRECT_IO");

    if (!w->buf) {
        if (!(w->buf = aligned_alloc(DIRECT_ALIGN, WRITE_BUF_SIZE)))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory allocating a pack buffer");
        w->buf_cap = WRITE_BUF_SIZE;
    }
    if (!w->fl && (error = flusher_new(&w->fl)) < 0)
        return error;
    if ((error = create_temp(&w->fd, &w->tmp_path, packs_dir, "pack", &direct)) < 0)
        return error;
    /* The flusher is idle here: open follows init, finish or release. */
    w->fl->fd = w->fd;
    w->fl->direct = direct;
    w->fl->off = 0;
    w->fl->err = 0;
    memcpy(w->buf, CAIRN__PACK_MAGIC, CAIRN__PACK_HDR_LEN);
    w->buf_len = CAIRN__PACK_HDR_LEN;
    w->size = CAIRN__PACK_HDR_LEN;
    w->count = 0;
    return 0;
}

/* Queue the full buffer for the flusher and take a spare, waiting for one if all are queued. */
static int wbuf_handoff(struct cairn__pack_writer *w)
{
    struct cairn__pack_flusher *fl = w->fl;
    unsigned char *spare;
    int error, err;

    while (fl->started < FLUSH_THREADS) {
        if ((error = pthread_create(&fl->threads[fl->started], NULL, flusher_main, fl)) != 0) {
            errno = error;
            return cairn_error_set_errno(CAIRN_ERROR, "cannot start a pack writer thread");
        }
        fl->started++;
    }
    pthread_mutex_lock(&fl->mu);
    while (!fl->nspare)
        pthread_cond_wait(&fl->cv, &fl->mu);
    spare = fl->spare[--fl->nspare];
    fl->queue[(fl->head + fl->count) % FLUSH_BUFS].buf = w->buf;
    fl->queue[(fl->head + fl->count) % FLUSH_BUFS].len = w->buf_len;
    fl->queue[(fl->head + fl->count) % FLUSH_BUFS].off = fl->off;
    fl->off += w->buf_len;
    fl->count++;
    err = fl->err;
    pthread_cond_broadcast(&fl->cv);
    pthread_mutex_unlock(&fl->mu);
    w->buf = spare;
    w->buf_len = 0;
    if (err) {
        errno = err;
        return cairn_error_set_errno(CAIRN_ERROR, "cannot write '%s'", w->tmp_path);
    }
    return 0;
}

/*
 * Write what is buffered, in this thread, once the flusher is idle: whole
 * blocks as they are, the last partial block through the page cache (O_DIRECT
 * cannot write it). The caller fsyncs.
 */
static int wbuf_flush_tail(struct cairn__pack_writer *w)
{
    struct cairn__pack_flusher *fl = w->fl;
    size_t whole = w->buf_len & ~(DIRECT_ALIGN - 1);
    int error, err = 0;

    if ((error = flusher_wait(w)) < 0)
        return error;
    if (whole)
        err = flusher_write(fl, w->buf, whole, fl->off);
    if (!err && whole < w->buf_len && fl->direct) {
        int flags = fcntl(fl->fd, F_GETFL);
        if (flags < 0 || fcntl(fl->fd, F_SETFL, flags & ~O_DIRECT) < 0)
            err = errno;
        else
            fl->direct = 0;
    }
    if (!err)
        err = flusher_write(fl, w->buf + whole, w->buf_len - whole, fl->off + whole);
    fl->off += w->buf_len;
    w->buf_len = 0;
    if (err) {
        fl->err = err;
        errno = err;
        return cairn_error_set_errno(CAIRN_ERROR, "cannot write '%s'", w->tmp_path);
    }
    return 0;
}

/* Copy into the buffer, handing each full one to the flusher. */
static int wbuf_put(struct cairn__pack_writer *w, const void *p_, size_t n)
{
    const unsigned char *p = p_;
    int error;

    while (n > 0) {
        size_t room = w->buf_cap - w->buf_len, k = n < room ? n : room;
        memcpy(w->buf + w->buf_len, p, k);
        w->buf_len += k;
        p += k;
        n -= k;
        if (w->buf_len == w->buf_cap && (error = wbuf_handoff(w)) < 0)
            return error;
    }
    return 0;
}

int cairn__pack_writer_append(struct cairn__pack_writer *w, const struct cairn__pack_entry *e,
                              const void *data, const uint8_t *given_check)
{
    uint8_t hdr[CAIRN__ENTRY_HDR_MAX], check[CAIRN__ENTRY_CHECK_LEN];
    struct cairn__pack_entry *slot;
    size_t hdr_len;
    int error;

    if (w->fd < 0)
        return cairn_error_set(CAIRN_ERROR, "pack writer is not open");
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        struct cairn__pack_entry *n = realloc(w->entries, cap * sizeof(*n));
        if (!n)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory growing a pack index");
        w->entries = n;
        w->cap = cap;
    }
    hdr_len = cairn__entry_header_write(hdr, e);
    if (given_check)
        memcpy(check, given_check, sizeof(check));
    else
        cairn__entry_check_compute(check, hdr, hdr_len, data, e->stored_len);
    if ((error = wbuf_put(w, hdr, hdr_len)) < 0 || (error = wbuf_put(w, data, e->stored_len)) < 0 ||
        (error = wbuf_put(w, check, sizeof(check))) < 0)
        return error;
    slot = &w->entries[w->count++];
    *slot = *e;
    if (!(e->flags & CAIRN__PACK_F_BASE))
        memset(&slot->base, 0, sizeof(slot->base));
    slot->offset = w->size;
    w->size += hdr_len + e->stored_len + CAIRN__ENTRY_CHECK_LEN;
    return 0;
}

/*
 * The syncer: a one-thread pool (util/pool.h) that fsyncs and closes
 * finished packs and their idx files, so that rotating to the next pack
 * does not stop ingest for the device. An fsync took 20-70 ms here, which
 * over a 2 GiB add was 1.4 s of the reading thread's 3 s, with every worker
 * waiting on it. Nothing is published before cairn__pack_writer_sync() has
 * seen every queued fsync succeed, so the crash-safety rule is unchanged: a
 * pack is durable before its name appears.
 */
#define SYNC_QUEUE 64

struct sync_job {
    int fd;
    int *err; /* the writer's sync_err: errno of the first failed fsync */
};

static void sync_run(void *arg)
{
    struct sync_job *job = arg;
    int err = fsync(job->fd) < 0 ? errno : 0;
    int none = 0;

    close(job->fd);
    if (err)
        __atomic_compare_exchange_n(job->err, &none, err, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    free(job);
}

/* Queue fd to be fsynced and closed; it is closed whatever happens. */
static int syncer_push(struct cairn__pack_writer *w, int fd)
{
    struct sync_job *job = malloc(sizeof(*job));
    int error;

    if (!job) {
        close(fd);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory queueing a pack fsync");
    }
    if (!w->sy && (error = cairn_pool_new(&w->sy, 1, SYNC_QUEUE)) < 0) {
        close(fd);
        free(job);
        return error;
    }
    job->fd = fd;
    job->err = &w->sync_err;
    return cairn_pool_submit(w->sy, sync_run, job);
}

int cairn__pack_writer_sync(struct cairn__pack_writer *w)
{
    int err;

    if (w->sy)
        cairn_pool_wait(w->sy);
    if ((err = __atomic_load_n(&w->sync_err, __ATOMIC_RELAXED))) {
        errno = err;
        return cairn_error_set_errno(CAIRN_ERROR, "cannot fsync a finished pack");
    }
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return memcmp(((const struct cairn__pack_entry *)a)->id.id,
                  ((const struct cairn__pack_entry *)b)->id.id, CAIRN_OID_RAWSZ);
}

int cairn__pack_writer_finish(struct cairn__pack_writer *w, struct cairn__pack_pending *out,
                              const char *packs_dir)
{
    struct cairn_buf idx = CAIRN_BUF_INIT;
    cairn_oid trailer;
    int error, idx_fd = -1, no_direct = 0;

    memset(out, 0, sizeof(*out));
    if ((error = wbuf_flush_tail(w)) < 0)
        goto done;
    qsort(w->entries, w->count, sizeof(*w->entries), entry_cmp);
    if (w->count > UINT32_MAX) {
        error = cairn_error_set(CAIRN_ERROR, "too many chunks in one pack");
        goto done;
    }
    cairn_buf_init(&idx, (size_t)-1 >> 1);
    if ((error = cairn_buf_grow(&idx, CAIRN__IDX_HDR_LEN + w->count * CAIRN__IDX_ENTRY_LEN +
                                          CAIRN__IDX_TRAILER_LEN)) < 0)
        goto done;
    memcpy(idx.ptr, CAIRN__IDX_MAGIC, 8);
    cairn_put_u32le(idx.ptr + 8, (uint32_t)w->count);
    cairn_put_u32le(idx.ptr + 12, 0);
    cairn_put_u64le(idx.ptr + 16, w->size);
    for (size_t i = 0; i < w->count; i++)
        idx_entry_write((uint8_t *)idx.ptr + CAIRN__IDX_HDR_LEN + i * CAIRN__IDX_ENTRY_LEN,
                        &w->entries[i]);
    idx.len = CAIRN__IDX_HDR_LEN + w->count * CAIRN__IDX_ENTRY_LEN;
    cairn_hash(&out->name, idx.ptr + CAIRN__IDX_HDR_LEN, w->count * CAIRN__IDX_ENTRY_LEN);
    cairn_hash(&trailer, idx.ptr, idx.len);
    if ((error = cairn_buf_put(&idx, trailer.id, CAIRN_OID_RAWSZ)) < 0)
        goto done;
    if ((error = create_temp(&idx_fd, &out->tmp_idx, packs_dir, "idx", &no_direct)) < 0)
        goto done;
    if ((error = cairn_fs_write_all(idx_fd, idx.ptr, idx.len)) < 0) {
        cairn_error_prefix("cannot write '%s'", out->tmp_idx);
        goto done;
    }
    /*
     * Both files are fsynced and closed by the syncer; cairn__pack_writer_sync()
     * waits for it. Queued before the pack changes hands, so that a failure
     * here leaves the temp pack the writer's, for release() to remove.
     */
    error = syncer_push(w, idx_fd);
    idx_fd = -1;
    if (error < 0)
        goto done;
    error = syncer_push(w, w->fd);
    w->fd = -1;
    if (error < 0)
        goto done;
    out->tmp_pack = w->tmp_path;
    w->tmp_path = NULL;
    out->size = w->size;
    out->entries = w->entries;
    out->count = w->count;
    w->entries = NULL;
    w->count = w->cap = 0;
done:
    if (idx_fd >= 0)
        close(idx_fd);
    if (error < 0) {
        if (out->tmp_idx)
            unlink(out->tmp_idx);
        free(out->tmp_idx);
        out->tmp_idx = NULL;
    }
    cairn_buf_release(&idx);
    return error;
}

void cairn__pack_writer_release(struct cairn__pack_writer *w)
{
    if (!w)
        return;
    flusher_free(w->fl);    /* first: it may be writing to fd */
    cairn_pool_free(w->sy); /* runs what is queued: fsyncs of temp files about to go */
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp_path)
        unlink(w->tmp_path);
    free(w->tmp_path);
    free(w->buf);
    free(w->entries);
    cairn__pack_writer_init(w);
}

int cairn__pack_pending_publish(struct cairn__pack_pending *p, const char *packs_dir)
{
    struct cairn_buf path = CAIRN_BUF_INIT;
    int error;

    if ((error = cairn__pack_filename(&path, packs_dir, &p->name, "pack")) < 0)
        goto done;
    if (rename(p->tmp_pack, path.ptr) < 0) {
        error =
            cairn_error_set_errno(CAIRN_ERROR, "cannot rename '%s' to '%s'", p->tmp_pack, path.ptr);
        goto done;
    }
    free(p->tmp_pack);
    p->tmp_pack = NULL;
    if ((error = cairn__pack_filename(&path, packs_dir, &p->name, "idx")) < 0)
        goto done;
    if (rename(p->tmp_idx, path.ptr) < 0) {
        error =
            cairn_error_set_errno(CAIRN_ERROR, "cannot rename '%s' to '%s'", p->tmp_idx, path.ptr);
        goto done;
    }
    free(p->tmp_idx);
    p->tmp_idx = NULL;
done:
    cairn_buf_release(&path);
    return error;
}

void cairn__pack_pending_release(struct cairn__pack_pending *p)
{
    if (!p)
        return;
    if (p->tmp_pack)
        unlink(p->tmp_pack);
    if (p->tmp_idx)
        unlink(p->tmp_idx);
    free(p->tmp_pack);
    free(p->tmp_idx);
    free(p->entries);
    memset(p, 0, sizeof(*p));
}
