/*
 * cairn add: stage files, chunking them into the store.
 *
 * The ingest pipeline is the hot path of the whole tool (SPEC §9: at least
 * half of b3sum's throughput while compressing, bounded memory). One thread
 * cuts chunks: tensors in fixed pieces from each tensor's start
 * (store/layout.h), everything else with FastCDC over a window it reads.
 * Each chunk gets one of a fixed ring of job slots (a tensor piece is read
 * straight into it by the worker: see read_piece()) and is handed to the
 * worker pool, which hashes it, asks the store whether it is new and, if
 * so, encodes it and computes its pack entry's check. The reading thread
 * retires jobs in submission order and appends new chunks to the pack
 * writer (its own alone: no lock), so packs hold a file's chunks in file
 * order and checkout reads them sequentially.
 *
 * The whole-file digest (what b3sum prints) is computed by the workers too,
 * not by the reading thread: the chunks of a file tile it in submission
 * order, so right after hashing chunk i for its id, while its bytes are
 * still in cache, a worker feeds them to the file hasher if chunk i is next
 * in line (and then any later chunks already hashed). One worker at a time
 * holds the file hasher; a slot is retired only once it has been fed.
 *
 * Memory is the window, the ring and the pack writer's buffers: about
 * 28 MiB + 2 x slots x 1 MiB, whatever the file size.
 *
 * Unchanged files are not read at all: a stat cache keyed by path (size,
 * mtime, ctime, inode, device) maps to the file object made last time. An
 * entry is only trusted for a file whose mtime is at least a second older
 * than the moment we started reading it, so a write in the same timestamp
 * tick cannot go unnoticed ("racy git"); a racy entry is still recorded, as
 * the delta base for the next version at that path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo/repo_internal.h"
#include "store/chunker.h"
#include "store/layout.h"
#include "util/fs.h"
#include "util/text.h"
#include "util/hash.h"
#include "util/pool.h"

#define WINDOW_SIZE        ((size_t)8 << 20)
#define SLOTS_PER_THREAD   4
#define ZSTD_LEVEL_DEFAULT 3

struct job {
    struct pipeline *pl;
    unsigned char *raw;
    size_t len, cap;
    struct cairn_chunk_hint hint;
    cairn_oid base;
    /* results */
    cairn_oid id;
    int is_new;
    int codec;
    int has_enc_base;
    cairn_oid enc_base;
    struct cairn_buf enc;
    uint8_t check[CAIRN_STORE_CHECK_LEN]; /* the pack entry's check, computed here */
    int error;
    char errmsg[256];
    uint64_t file_off; /* where raw[0] is in the file */
    size_t to_read;    /* the last to_read bytes of raw are for the worker to read */
    uint64_t seq;      /* submission number: the slot is jobs[seq % nslots] */
    int id_hashed;     /* the chunk id is computed (so its bytes are in cache) */
    int done;
};

struct pipeline {
    struct cairn_repo *repo;
    struct cairn_store *store;
    struct cairn_store_writer *w;
    struct cairn_pool *pool;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *jobs;
    unsigned nslots, head, count;
    struct cairn_codec_ctx **ctxs;
    unsigned nctx, ctx_cap;
    int level;
    struct cairn_cdc cdc;
    unsigned char *window;
    int fd;           /* the file being ingested, for the workers' reads */
    const char *path; /* and its name, for their errors */
    struct cairn_add_stats *stats;
    const struct cairn_add_opts *opts;
    uint64_t progress_done, progress_total;
    /*
     * PLANE states (cairn_chunk_hint) of the latest tensors, one per region in
     * a ring one longer than the job ring: the jobs in flight span at most
     * nslots regions, so a state is never reset under a job still using it.
     */
    int *plane_states;
    uint64_t regions;  /* regions started, to index plane_states */
    int *region_state; /* the current region's, or NULL outside tensors */
    /* The file digest, fed in submission order (under mu, but fed unlocked by fh_busy's holder). */
    struct cairn_hasher fhasher;
    uint64_t fh_next;  /* seq of the next job to feed */
    uint64_t next_seq; /* seq of the next job to submit */
    int fh_busy;
};

/*
 * Feed the file hasher every job that is next in line and has its id
 * hashed. Called with pl->mu held; drops it while hashing. Whoever finds the
 * hasher free and the next job ready does the work, so no job waits for a
 * particular worker (see the top of the file).
 */
static void feed_file_hasher(struct pipeline *pl)
{
    while (!pl->fh_busy && pl->fh_next < pl->next_seq) {
        struct job *k = &pl->jobs[pl->fh_next % pl->nslots];
        if (!k->id_hashed)
            break;
        pl->fh_busy = 1;
        pthread_mutex_unlock(&pl->mu);
        cairn_hasher_update(&pl->fhasher, k->raw, k->len);
        pthread_mutex_lock(&pl->mu);
        pl->fh_busy = 0;
        pl->fh_next++;
        pthread_cond_broadcast(&pl->cv);
    }
}

/*
 * Read the rest of a tensor piece from the file, on the worker: the reading
 * thread only schedules pieces, so the copies out of the page cache run on
 * every core instead of on the one thread that also appends to the pack.
 */
static int read_piece(struct job *j)
{
    const struct pipeline *pl = j->pl;
    size_t have = j->len - j->to_read;
    ssize_t n =
        cairn_fs_pread_full(pl->fd, j->raw + have, j->len - have, (off_t)(j->file_off + have));

    if (n < 0) {
        cairn_error_prefix("cannot read '%s'", pl->path);
        return (int)n;
    }
    if ((size_t)n < j->len - have)
        return cairn_error_set(CAIRN_ERROR, "'%s' shrank while it was being read", pl->path);
    return 0;
}

static void job_run(void *arg)
{
    struct job *j = arg;
    struct pipeline *pl = j->pl;
    struct cairn_codec_ctx *ctx = NULL;
    int has = 0, error = 0;

    if (j->to_read)
        error = read_piece(j);
    if (!error)
        cairn_hash(&j->id, j->raw, j->len);
    pthread_mutex_lock(&pl->mu);
    j->id_hashed = 1; /* fed even after an error, so the jobs behind it retire */
    feed_file_hasher(pl);
    if (!error)
        has = cairn_store_has(pl->store, &j->id);
    if (has == 0 && !error && pl->nctx > 0)
        ctx = pl->ctxs[--pl->nctx];
    pthread_mutex_unlock(&pl->mu);

    if (!error && has < 0) {
        error = has;
    } else if (!error && has == 0) {
        if (!ctx)
            error = cairn_codec_ctx_new(&ctx, pl->level);
        if (!error) {
            cairn_buf_clear(&j->enc);
            memset(&j->enc_base, 0, sizeof(j->enc_base));
            error = cairn_store_encode(pl->store, ctx, j->raw, j->len, &j->hint, &j->enc, &j->codec,
                                       &j->enc_base);
            j->has_enc_base = !cairn_oid_is_zero(&j->enc_base);
            if (!error)
                cairn_store_entry_check(j->check, &j->id, j->codec,
                                        j->has_enc_base ? &j->enc_base : NULL, j->len, j->enc.ptr,
                                        j->enc.len);
        }
    }
    if (error < 0)
        snprintf(j->errmsg, sizeof(j->errmsg), "%s", cairn_error_last());

    pthread_mutex_lock(&pl->mu);
    if (ctx) {
        if (pl->nctx < pl->ctx_cap)
            pl->ctxs[pl->nctx++] = ctx;
        else
            cairn_codec_ctx_free(ctx);
    }
    j->is_new = has == 0;
    j->error = error;
    j->done = 1;
    pthread_cond_broadcast(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
}

/* Wait for the oldest job, write it if new, and record it in the file object. */
static int retire_one(struct pipeline *pl, struct cairn_file_object *f)
{
    struct job *j = &pl->jobs[pl->head];
    int error;

    pthread_mutex_lock(&pl->mu);
    while (!j->done || pl->fh_next <= j->seq)
        pthread_cond_wait(&pl->cv, &pl->mu);
    pthread_mutex_unlock(&pl->mu);
    pl->head = (pl->head + 1) % pl->nslots;
    pl->count--;

    if (j->error < 0)
        return cairn_error_set(j->error, "%s", j->errmsg);
    if (j->is_new) {
        error = cairn_store_writer_add_checked(pl->w, &j->id, j->codec,
                                               j->has_enc_base ? &j->enc_base : NULL, j->len,
                                               j->enc.ptr, j->enc.len, j->check);
        if (error < 0)
            return error;
        pl->stats->chunks_new++;
    } else {
        pl->stats->chunks_dedup++;
    }
    return cairn_file_object_add_chunk(f, &j->id, (uint32_t)j->len);
}

static int retire_all(struct pipeline *pl, struct cairn_file_object *f)
{
    int error = 0;
    while (pl->count && !error)
        error = retire_one(pl, f);
    return error;
}

/*
 * Drain in-flight jobs after an error, so no worker touches freed slots.
 * Every job is fed to the file hasher before its worker finishes (the last
 * to find its predecessors fed does it), so when all are done none is fed.
 */
static void drain(struct pipeline *pl)
{
    pthread_mutex_lock(&pl->mu);
    while (pl->count) {
        struct job *j = &pl->jobs[pl->head];
        while (!j->done || pl->fh_next <= j->seq)
            pthread_cond_wait(&pl->cv, &pl->mu);
        pl->head = (pl->head + 1) % pl->nslots;
        pl->count--;
    }
    pthread_mutex_unlock(&pl->mu);
}

/* The next free job slot, with room for `len` bytes (retiring the oldest job if the ring is full).
 */
static int job_claim(struct pipeline *pl, struct cairn_file_object *f, size_t len, struct job **out)
{
    struct job *j = NULL;
    int error;

    if (pl->count == pl->nslots && (error = retire_one(pl, f)) < 0)
        return error;
    j = &pl->jobs[(pl->head + pl->count) % pl->nslots];
    if (j->cap < len) {
        unsigned char *p = realloc(j->raw, len);
        if (!p)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        j->raw = p;
        j->cap = len;
    }
    j->to_read = 0;
    *out = j;
    return 0;
}

/* Hand the claimed job j, holding its `len` bytes, to the workers. */
static int job_start(struct pipeline *pl, struct job *j, size_t len, unsigned elem_size,
                     const cairn_oid *base)
{
    j->len = len;
    j->hint.elem_size = elem_size;
    j->hint.plane_state = pl->region_state;
    if (base) {
        j->base = *base;
        j->hint.base = &j->base;
    } else {
        j->hint.base = NULL;
    }
    j->error = 0;
    pthread_mutex_lock(&pl->mu);
    j->done = 0;
    j->id_hashed = 0;
    j->seq = pl->next_seq++;
    pthread_mutex_unlock(&pl->mu);
    pl->count++;
    return cairn_pool_submit(pl->pool, job_run, j);
}

static int submit(struct pipeline *pl, struct cairn_file_object *f, const unsigned char *data,
                  size_t len, unsigned elem_size, const cairn_oid *base)
{
    struct job *j = NULL;
    int error;

    if ((error = job_claim(pl, f, len, &j)) < 0)
        return error;
    memcpy(j->raw, data, len);
    return job_start(pl, j, len, elem_size, base);
}

static int pipeline_init(struct pipeline *pl, struct cairn_repo *repo,
                         const struct cairn_add_opts *opts, struct cairn_add_stats *stats)
{
    /*
     * One worker more than cores (unless CAIRN_THREADS says): workers wait
     * at times (for the file hasher, a free slot) and the reading thread and
     * the pack writer's threads block on the device; the spare keeps the
     * cores busy meanwhile. 2 GiB on two cores: 2.38 s with two, 2.13 with three.
     */
    unsigned threads = getenv("CAIRN_THREADS") ? cairn_ncpus() : cairn_ncpus() + 1;
    int error;

    memset(pl, 0, sizeof(*pl));
    pl->repo = repo;
    pl->store = repo->store;
    pl->opts = opts;
    pl->stats = stats;
    pl->level = ZSTD_LEVEL_DEFAULT;
    {
        const char *lv = getenv("CAIRN_ZSTD_LEVEL");
        if (lv && *lv)
            pl->level = atoi(lv);
    }
    pthread_mutex_init(&pl->mu, NULL);
    pthread_cond_init(&pl->cv, NULL);
    cairn_cdc_init(&pl->cdc, CAIRN_CDC_MIN_DEFAULT, CAIRN_CDC_AVG_DEFAULT, CAIRN_CDC_MAX_DEFAULT);
    pl->nslots = threads * SLOTS_PER_THREAD;
    pl->ctx_cap = threads + 1;
    pl->jobs = calloc(pl->nslots, sizeof(*pl->jobs));
    pl->ctxs = calloc(pl->ctx_cap, sizeof(*pl->ctxs));
    pl->window = malloc(WINDOW_SIZE);
    pl->plane_states = calloc(pl->nslots + 1, sizeof(*pl->plane_states));
    if (!pl->jobs || !pl->ctxs || !pl->window || !pl->plane_states)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    for (unsigned i = 0; i < pl->nslots; i++) {
        pl->jobs[i].pl = pl;
        cairn_buf_init(&pl->jobs[i].enc, 64 << 20);
    }
    if ((error = cairn_store_load_index(repo->store)) < 0)
        return error;
    if ((error = cairn_store_writer_new(&pl->w, repo->store)) < 0)
        return error;
    return cairn_pool_new(&pl->pool, threads, pl->nslots);
}

static void pipeline_release(struct pipeline *pl)
{
    if (pl->pool) {
        drain(pl);
        cairn_pool_free(pl->pool);
    }
    cairn_store_writer_free(pl->w);
    for (unsigned i = 0; pl->jobs && i < pl->nslots; i++) {
        free(pl->jobs[i].raw);
        cairn_buf_release(&pl->jobs[i].enc);
    }
    for (unsigned i = 0; i < pl->nctx; i++)
        cairn_codec_ctx_free(pl->ctxs[i]);
    free(pl->jobs);
    free(pl->ctxs);
    free(pl->window);
    free(pl->plane_states);
    pthread_mutex_destroy(&pl->mu);
    pthread_cond_destroy(&pl->cv);
}

/*
 * The sliding read window: bytes [win_off, win_off + win_len) of the file
 * are in pl->window. fill() makes sure at least `need` bytes from `pos` are
 * there (or everything up to `limit`, the end of the current region).
 */
struct reader {
    int fd;
    const char *path;
    uint64_t size;
    uint64_t win_off;
    size_t win_len;
};

/* Count `n` bytes read from the file and report progress. */
static void note_read(struct pipeline *pl, size_t n)
{
    pl->stats->bytes_read += (uint64_t)n;
    pl->progress_done += (uint64_t)n;
    if (pl->opts && pl->opts->progress)
        pl->opts->progress(pl->progress_done, pl->progress_total, pl->opts->progress_payload);
}

static int fill(struct pipeline *pl, struct reader *rd, uint64_t pos, size_t need, uint64_t limit)
{
    uint64_t want_end = pos + need < limit ? pos + need : limit;
    if (rd->win_off + rd->win_len >= want_end)
        return 0;
    /* Slide what is still needed to the front, then read sequentially. */
    if (pos > rd->win_off) {
        size_t drop = (size_t)(pos - rd->win_off);
        memmove(pl->window, pl->window + drop, rd->win_len - drop);
        rd->win_off = pos;
        rd->win_len -= drop;
    }
    while (rd->win_off + rd->win_len < want_end) {
        uint64_t file_end = rd->win_off + rd->win_len;
        size_t room = WINDOW_SIZE - rd->win_len;
        ssize_t n;
        if (room > rd->size - file_end)
            room = (size_t)(rd->size - file_end);
        if (room == 0)
            break;
        n = pread(rd->fd, pl->window + rd->win_len, room, (off_t)file_end);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cairn_error_set_errno(CAIRN_ERROR, "cannot read '%s'", rd->path);
        }
        if (n == 0)
            return cairn_error_set(CAIRN_ERROR, "'%s' shrank while it was being read", rd->path);
        rd->win_len += (size_t)n;
        note_read(pl, (size_t)n);
    }
    return 0;
}

/*
 * Submit bytes [pos, pos + len) of the file, read straight into a job slot
 * by the worker that takes it rather than through the window: a tensor
 * piece is a fixed size known in advance, so neither the copy from the
 * window to the slot nor the read itself need run on this thread, which
 * retires and appends every chunk and is ingest's busiest. What the window
 * already holds from pos on is copied; the window is then empty at
 * pos + len, and fill() reads on from there.
 */
static int submit_direct(struct pipeline *pl, struct cairn_file_object *f, struct reader *rd,
                         uint64_t pos, size_t len, unsigned elem_size, const cairn_oid *base)
{
    uint64_t win_end = rd->win_off + rd->win_len;
    size_t have = 0;
    struct job *j = NULL;
    int error;

    if ((error = job_claim(pl, f, len, &j)) < 0)
        return error;
    if (pos < win_end) {
        have = (size_t)(win_end - pos);
        memcpy(j->raw, pl->window + (pos - rd->win_off), have);
    }
    j->file_off = pos;
    j->to_read = len - have;
    note_read(pl, len - have);
    rd->win_off = pos + len;
    rd->win_len = 0;
    return job_start(pl, j, len, elem_size, base);
}

/* The parent's chunk for piece `piece` of tensor `name`, if shapes match. */
static const cairn_oid *base_piece(const struct cairn_file_object *base,
                                   const struct cairn_region *reg, uint64_t piece)
{
    const struct cairn_file_region *br;
    if (!base || !reg->tensor || !reg->tensor->name)
        return NULL;
    br = cairn_file_object_region(base, reg->tensor->name);
    if (!br || br->kind != CAIRN_REGION_TENSOR || br->dtype != reg->tensor->dtype ||
        br->len != reg->len || piece >= br->nchunks)
        return NULL;
    return &base->chunks[br->first_chunk + piece].id;
}

static int ingest_fd(struct pipeline *pl, int fd, const char *path, uint64_t size,
                     const struct cairn_file_object *base, cairn_oid *file_out,
                     cairn_oid *digest_out)
{
    struct cairn_layout layout;
    struct cairn_file_object f;
    struct reader rd;
    struct cairn_buf enc = CAIRN_BUF_INIT;
    uint64_t submitted = 0;
    int error;

    memset(&f, 0, sizeof(f));
    memset(&rd, 0, sizeof(rd));
    if ((error = cairn_layout_detect(&layout, path, fd, size)) < 0)
        return error;
    rd.fd = fd;
    rd.path = path;
    rd.size = size;
    pl->fd = fd;
    pl->path = path;
    /* No job is in flight between files, so nobody holds the hasher. */
    cairn_hasher_init(&pl->fhasher);
    f.size = size;
    f.format = layout.format;

    for (size_t i = 0; i < layout.count && !error; i++) {
        const struct cairn_region *reg = &layout.regions[i];
        struct cairn_file_region fr;
        uint64_t pos = reg->offset, end = reg->offset + reg->len, piece_no = 0;
        size_t piece = reg->kind == CAIRN_REGION_TENSOR ? cairn_layout_piece_size(reg) : 0;

        memset(&fr, 0, sizeof(fr));
        fr.kind = reg->kind;
        fr.name = reg->tensor ? reg->tensor->name : NULL;
        fr.dtype = reg->tensor ? reg->tensor->dtype : 0;
        fr.group = reg->group;
        fr.offset = reg->offset;
        fr.len = reg->len;
        fr.first_chunk = submitted;
        pl->region_state = NULL;
        if (piece) {
            pl->region_state = &pl->plane_states[pl->regions++ % (pl->nslots + 1)];
            *pl->region_state = 0;
        }
        if (reg->tensor) {
            fr.rank = reg->tensor->rank > 8 ? 8 : reg->tensor->rank;
            memcpy(fr.shape, reg->tensor->shape, fr.rank * sizeof(fr.shape[0]));
        }
        while (pos < end && !error) {
            size_t n, need = piece ? piece : pl->cdc.max;
            if (piece && rd.win_off + rd.win_len < pos + (need < end - pos ? need : end - pos)) {
                /* A tensor piece the window does not hold whole: read it into its slot. */
                n = need < end - pos ? need : (size_t)(end - pos);
                error =
                    submit_direct(pl, &f, &rd, pos, n, reg->group, base_piece(base, reg, piece_no));
                pos += n;
                piece_no++;
                submitted++;
                continue;
            }
            if ((error = fill(pl, &rd, pos, need, end)) < 0)
                break;
            {
                const unsigned char *p = pl->window + (pos - rd.win_off);
                size_t avail = (size_t)(rd.win_off + rd.win_len - pos);
                if (avail > end - pos)
                    avail = (size_t)(end - pos);
                if (piece)
                    n = avail < piece ? avail : piece;
                else
                    n = cairn_cdc_next(&pl->cdc, p, avail, pos + avail == end);
                if (n == 0 || n > avail) {
                    error = cairn_error_set(CAIRN_ERROR, "chunker made no progress in '%s'", path);
                    break;
                }
                error = submit(pl, &f, p, n, reg->group, base_piece(base, reg, piece_no));
            }
            pos += n;
            piece_no++;
            submitted++;
        }
        fr.nchunks = submitted - fr.first_chunk;
        if (!error)
            error = cairn_file_object_add_region(&f, &fr);
    }
    if (!error)
        error = retire_all(pl, &f);
    else
        drain(pl);
    if (!error && rd.win_off + rd.win_len != size)
        error = cairn_error_set(CAIRN_ERROR, "'%s' changed size while it was being read", path);
    if (!error) {
        cairn_hasher_final(&pl->fhasher, &f.digest);
        if (!(error = cairn_file_object_encode(&enc, &f)))
            error = cairn_store_writer_put(pl->w, enc.ptr, enc.len, file_out);
        *digest_out = f.digest;
    }
    cairn_buf_release(&enc);
    cairn_file_object_release(&f);
    cairn_layout_release(&layout);
    return error;
}

/* ---- walking the arguments ------------------------------------------- */

struct staged {
    char *path;
    struct cairn_stage_entry e;
    struct cairn_stat_entry st;
    int cache; /* record st in the stat cache */
};

struct add_state {
    struct cairn_repo *repo;
    const char *root; /* ingesting a directory outside the working tree: paths relative to it */
    struct pipeline pl;
    struct staged *files;
    size_t n, cap;
    uint64_t total;
};

static int collect(struct add_state *s, const char *abs, const struct stat *st);

static const char *special_type(mode_t m)
{
    return S_ISFIFO(m)   ? "named pipe (FIFO)"
           : S_ISSOCK(m) ? "socket"
           : S_ISCHR(m)  ? "character device"
           : S_ISBLK(m)  ? "block device"
                         : "special file";
}

static int collect_dir(struct add_state *s, const char *abs)
{
    struct cairn_buf child = CAIRN_BUF_INIT;
    char **names = NULL;
    size_t n = 0;
    int error = cairn_fs_list_dir(&names, &n, abs);

    if (error < 0)
        return error;
    for (size_t i = 0; i < n && !error; i++) {
        struct stat cst;
        if (cairn_fs_reserved_name(names[i]))
            continue;
        if ((error = cairn_fs_join(&child, abs, names[i])) < 0)
            break;
        if (lstat(child.ptr, &cst) < 0) {
            error = cairn_error_set_errno(CAIRN_ERROR, "cannot stat '%s'", child.ptr);
            break;
        }
        if (S_ISLNK(cst.st_mode)) {
            cairn_warn("skipping symbolic link '%s'", child.ptr);
            continue;
        }
        if (!S_ISREG(cst.st_mode) && !S_ISDIR(cst.st_mode)) {
            cairn_warn("skipping %s '%s'", special_type(cst.st_mode), child.ptr);
            continue;
        }
        error = collect(s, child.ptr, &cst);
    }
    cairn_fs_names_free(names, n);
    cairn_buf_release(&child);
    return error;
}

static int collect(struct add_state *s, const char *abs, const struct stat *st)
{
    struct cairn_buf rel = CAIRN_BUF_INIT;
    struct staged *f;
    int error;

    if (S_ISDIR(st->st_mode))
        return collect_dir(s, abs);
    if (!S_ISREG(st->st_mode))
        return cairn_error_set(CAIRN_EINVALID, "'%s' is not a regular file", abs);
    if (s->root) {
        size_t n = strlen(s->root);
        if (strncmp(abs, s->root, n) || abs[n] != '/') {
            error = cairn_error_set(CAIRN_EINVALID, "'%s' is outside '%s'", abs, s->root);
            goto done;
        }
        error = cairn_buf_puts(&rel, abs + n + 1);
    } else {
        error = cairn__repo_relpath(s->repo, &rel, abs);
    }
    if (error < 0)
        goto done;
    /*
     * Paths are stored and sent as UTF-8 (JSON, remotes): a name in another
     * encoding would lose its "path" in --json output and be refused by a
     * remote, so it is refused here, before anything is stored.
     */
    if (!cairn_utf8_valid(rel.ptr, rel.len)) {
        error = cairn_error_set(CAIRN_EINVALID,
                                "'%s' is not a valid UTF-8 file name; rename it (cairn stores paths"
                                " as UTF-8)",
                                rel.ptr);
        goto done;
    }
    if ((error = cairn_fs_path_valid(rel.ptr)) < 0)
        goto done;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->files[i].path, rel.ptr))
            goto done; /* named twice */
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct staged *p = realloc(s->files, cap * sizeof(*p));
        if (!p) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        s->files = p;
        s->cap = cap;
    }
    f = &s->files[s->n];
    memset(f, 0, sizeof(*f));
    f->path = cairn_buf_detach(&rel, NULL);
    f->e.path = f->path;
    f->e.size = (uint64_t)st->st_size;
    f->e.mode = (st->st_mode & 0111) ? 0755 : 0644; /* the only two modes a tree holds */
    f->st.size = (uint64_t)st->st_size;
    f->st.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    f->st.ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
    f->st.ino = (uint64_t)st->st_ino;
    f->st.dev = (uint64_t)st->st_dev;
    s->total += (uint64_t)st->st_size;
    s->n++;
done:
    cairn_buf_release(&rel);
    return error;
}

/* Make an absolute path without resolving a final symlink. */
static int absolute(struct cairn_buf *out, const char *arg)
{
    char dir[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(arg, '/');
    const char *base;
    size_t dlen;

    cairn_buf_clear(out);
    if (slash && slash[1] == '\0') {
        /* "dir/": resolve it whole. */
        if (!realpath(arg, real))
            return cairn_error_set_errno(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_ERROR,
                                         "cannot open '%s'", arg);
        return cairn_buf_puts(out, real);
    }
    if (slash) {
        dlen = (size_t)(slash - arg);
        if (dlen >= sizeof(dir))
            return cairn_error_set(CAIRN_EINVALID, "path too long '%s'", arg);
        memcpy(dir, arg, dlen);
        dir[dlen ? dlen : 1] = '\0';
        if (!dlen)
            dir[0] = '/';
        base = slash + 1;
    } else {
        dir[0] = '.';
        dir[1] = '\0';
        base = arg;
    }
    if (!realpath(dir, real))
        return cairn_error_set_errno(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_ERROR,
                                     "cannot open '%s'", arg);
    if (!strcmp(base, ".") || !strcmp(base, "..")) {
        char joined[PATH_MAX + 4];
        snprintf(joined, sizeof(joined), "%s/%s", real, base);
        if (!realpath(joined, real))
            return cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", arg);
        return cairn_buf_puts(out, real);
    }
    if (!strcmp(real, "/"))
        return cairn_buf_printf(out, "/%s", base);
    return cairn_buf_printf(out, "%s/%s", real, base);
}

static int add_one(struct add_state *s, struct staged *f)
{
    struct cairn_repo *repo = s->repo;
    struct cairn_stat_entry cached;
    struct cairn_file_object base_obj, *base = NULL;
    struct cairn_buf abs = CAIRN_BUF_INIT;
    struct stat st2;
    int fd = -1, error, have_cache;
    long long start_ns = cairn_time_now_ns();

    memset(&base_obj, 0, sizeof(base_obj));
    /* The stat cache describes the working tree only. */
    have_cache = !s->root && cairn_registry_statcache_get(repo->registry, f->path, &cached) == 0;
    if (have_cache && cached.size == f->st.size && cached.mtime_ns == f->st.mtime_ns &&
        cached.ctime_ns == f->st.ctime_ns && cached.ino == f->st.ino && cached.dev == f->st.dev &&
        cairn_store_has(repo->store, &cached.file) == 1) {
        f->e.file = cached.file;
        f->e.digest = cached.digest;
        s->pl.stats->files_unchanged++;
        s->pl.progress_total -= f->st.size;
        return 0;
    }
    /* What was at this path last time is the natural delta base. */
    if (have_cache && cairn_store_has(repo->store, &cached.file) == 1 &&
        cairn__repo_load_file(repo, &cached.file, &base_obj) == 0)
        base = &base_obj;

    if ((error = cairn_fs_join(&abs, s->root ? s->root : repo->workdir, f->path)) < 0)
        goto done;
    fd = open(abs.ptr, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", f->path);
        goto done;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if ((error = ingest_fd(&s->pl, fd, f->path, f->st.size, base, &f->e.file, &f->e.digest)) < 0)
        goto done;
    f->st.file = f->e.file;
    f->st.digest = f->e.digest;
    /*
     * Record what we read if the file did not change while we read it: it is
     * the delta base of the next version at this path. A file modified less
     * than a second before we started is "racy" (a write in the same
     * timestamp tick could follow unseen), so its entry gets an mtime that
     * never matches: it is never trusted to skip a read, only used as a base.
     */
    if (fstat(fd, &st2) == 0 && (uint64_t)st2.st_size == f->st.size &&
        (int64_t)st2.st_mtim.tv_sec * 1000000000LL + st2.st_mtim.tv_nsec == f->st.mtime_ns) {
        f->cache = 1;
        if (f->st.mtime_ns >= start_ns - 1000000000LL)
            f->st.mtime_ns = -1;
    }
done:
    if (fd >= 0)
        close(fd);
    cairn_file_object_release(&base_obj);
    cairn_buf_release(&abs);
    return error;
}

/* Chunk every collected file into the store and make the chunks durable. */
static int ingest_all(struct add_state *s, const struct cairn_add_opts *opts,
                      struct cairn_add_stats *stats)
{
    int error = pipeline_init(&s->pl, s->repo, opts, stats);
    if (error < 0)
        return error;
    s->pl.progress_total = s->total;
    for (size_t i = 0; i < s->n && !error; i++)
        error = add_one(s, &s->files[i]);
    if (error < 0)
        return error;
    stats->bytes_stored = cairn_store_writer_bytes(s->pl.w);
    return cairn_store_writer_commit(s->pl.w);
}

int cairn_repo_add(struct cairn_repo *repo, const char *const *paths, size_t npaths,
                   const struct cairn_add_opts *opts, struct cairn_add_stats *out)
{
    struct add_state s;
    struct cairn_add_stats stats;
    struct cairn_buf abs = CAIRN_BUF_INIT;
    const char *model = opts && opts->model ? opts->model : "";
    int error = 0, locked = 0;

    memset(&s, 0, sizeof(s));
    memset(&stats, 0, sizeof(stats));
    s.repo = repo;
    if (!npaths)
        return cairn_error_set(CAIRN_EINVALID, "nothing to add");
    if (*model && (error = cairn_name_valid(model, "model name")) < 0)
        return error;

    for (size_t i = 0; i < npaths && !error; i++) {
        struct stat st;
        if ((error = absolute(&abs, paths[i])) < 0)
            break;
        if (lstat(abs.ptr, &st) < 0) {
            error = cairn_error_set_errno(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_ERROR,
                                          "cannot open '%s'", paths[i]);
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            error = cairn_error_set(CAIRN_EINVALID, "'%s' is a symbolic link; add its target",
                                    paths[i]);
            break;
        }
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
            error = cairn_error_set(CAIRN_EINVALID, "'%s' is not a regular file or directory",
                                    paths[i]);
            break;
        }
        {
            struct cairn_buf rel = CAIRN_BUF_INIT;
            error = cairn__repo_relpath(repo, &rel, abs.ptr);
            if (!error && (!strcmp(rel.ptr, ".cairn") || !strncmp(rel.ptr, ".cairn/", 7)))
                error = cairn_error_set(CAIRN_EINVALID, "'%s' is inside .cairn", paths[i]);
            cairn_buf_release(&rel);
            if (error < 0)
                break;
        }
        error = collect(&s, abs.ptr, &st);
    }
    if (error < 0)
        goto done;

    if ((error = cairn__repo_lock(repo, 0)) < 0)
        goto done;
    locked = 1;
    /* Chunks first, durably; only then the stage that references them. */
    if ((error = ingest_all(&s, opts, &stats)) < 0)
        goto done;
    /* Nothing new to record (every file unchanged and staged as is): no write at all. */
    {
        size_t same = 0;
        for (size_t i = 0; i < s.n; i++) {
            struct cairn_stage_entry cur;
            if (!s.files[i].cache &&
                cairn_registry_stage_get(repo->registry, model, s.files[i].path, &cur) == 0 &&
                !cairn_oid_cmp(&cur.file, &s.files[i].e.file) && cur.mode == s.files[i].e.mode)
                same++;
        }
        cairn_error_clear();
        if (same == s.n) {
            stats.files = s.n;
            stats.bytes_total = s.total;
            goto done;
        }
    }
    if ((error = cairn_registry_begin(repo->registry)) < 0)
        goto done;
    for (size_t i = 0; i < s.n && !error; i++) {
        s.files[i].e.model = (char *)model;
        error = cairn_registry_stage_put(repo->registry, &s.files[i].e);
        if (!error && s.files[i].cache)
            error = cairn_registry_statcache_put(repo->registry, s.files[i].path, &s.files[i].st);
    }
    if (error < 0) {
        cairn_registry_rollback(repo->registry);
        goto done;
    }
    if ((error = cairn_registry_commit(repo->registry)) < 0)
        goto done;
    stats.files = s.n;
    stats.bytes_total = s.total;
done:
    pipeline_release(&s.pl);
    if (locked)
        cairn__repo_unlock(repo);
    for (size_t i = 0; i < s.n; i++)
        free(s.files[i].path);
    free(s.files);
    cairn_buf_release(&abs);
    if (out)
        *out = stats;
    return error;
}

int cairn__repo_ingest_dir(struct cairn_repo *repo, const char *dir, struct cairn_tree *out,
                           struct cairn_add_stats *stats_out)
{
    struct add_state s;
    struct cairn_add_stats stats;
    struct stat st;
    char *root = NULL;
    size_t cap = 0;
    int error = 0, locked = 0;

    memset(&s, 0, sizeof(s));
    memset(&stats, 0, sizeof(stats));
    memset(out, 0, sizeof(*out));
    s.repo = repo;
    if (!(root = realpath(dir, NULL)))
        return cairn_error_set_errno(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_ERROR,
                                     "cannot open '%s'", dir);
    s.root = root;
    if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
        error = cairn_error_set(CAIRN_EINVALID, "'%s' is not a directory", dir);
        goto done;
    }
    if ((error = collect_dir(&s, root)) < 0)
        goto done;
    if (!s.n) {
        error = cairn_error_set(CAIRN_EINVALID, "'%s' holds no files", dir);
        goto done;
    }
    if ((error = cairn__repo_lock(repo, 0)) < 0)
        goto done;
    locked = 1;
    if ((error = ingest_all(&s, NULL, &stats)) < 0)
        goto done;
    for (size_t i = 0; i < s.n && !error; i++)
        error = cairn_tree_add(out, &cap, s.files[i].path, s.files[i].e.mode, s.files[i].e.size,
                               &s.files[i].e.file, &s.files[i].e.digest);
    if (!error)
        error = cairn_tree_sort(out);
    stats.files = s.n;
    stats.bytes_total = s.total;
done:
    pipeline_release(&s.pl);
    if (locked)
        cairn__repo_unlock(repo);
    for (size_t i = 0; i < s.n; i++)
        free(s.files[i].path);
    free(s.files);
    free(root);
    if (error < 0)
        cairn_tree_release(out);
    if (stats_out)
        *stats_out = stats;
    return error;
}
