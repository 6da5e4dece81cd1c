/*
 * The chunk store: index loading, thread-safe reads, the writer, fsck (verify),
 * gc and stats. See include/cairn/store.h for the contract, pack.h for the
 * formats.
 *
 * The in-memory index is one open-addressing hash table keyed by chunk id
 * (ids are BLAKE3 output, so their first 8 bytes are a perfect hash), built
 * from every valid pack-*.idx at first use. Common operations are has/get
 * (many threads, ingest dedup and checkout) and the writer's add (one
 * thread); rare ones are writer commit (adds packs under the write lock),
 * verify and gc (gc runs alone: the caller holds the repository lock
 * exclusively).
 *
 * A read copies the slot out under the read lock and then does its I/O
 * unlocked: pack structs are never freed while the store is open (gc, which
 * deletes packs, resets the index only when it runs alone), and pack file
 * descriptors are opened once, lazily, and kept.
 *
 * Cost of a get: one pread straight into the caller's buffer for RAW
 * chunks, or one pread into a per-thread scratch buffer plus one decode into
 * the caller's buffer; then one BLAKE3 pass. No allocation once the thread's
 * buffers are warm.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/store.h"
#include "store/codec.h"
#include "store/pack.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

/* Longest delta chain a read follows; the encoder never builds longer ones. */
#define MAX_CHAIN CAIRN_STORE_MAX_CHAIN
#define EMPTY     UINT32_MAX
#define NO_BASE   UINT32_MAX
/* Largest idx we read: 2^22 entries of 96 bytes, far above a 64 MiB pack's. */
#define IDX_LIMIT ((size_t)400 << 20)
/* Per-thread read buffers above this are released after use. */
#define TLS_KEEP ((size_t)16 << 20)

struct pack {
    char *path; /* .../packs/pack-<hex>.pack */
    char *idx_path;
    cairn_oid name;
    uint64_t size;
    uint32_t count; /* entries in its idx */
    atomic_int fd;  /* -1 until the first read */
};

struct slot {
    cairn_oid id;
    uint64_t offset, stored_len, raw_len;
    uint32_t pack; /* EMPTY for a free slot */
    uint32_t base; /* index into bases, or NO_BASE */
    uint8_t codec, flags, mark;
};

struct cairn_store {
    char *dir, *packs_dir;
    pthread_rwlock_t lock; /* guards everything below except pack fds */
    pthread_mutex_t fd_lock;
    int loaded;
    struct pack **packs;
    size_t npacks, packs_cap;
    struct slot *slots;
    size_t nslots, count; /* nslots is 0 or a power of two */
    cairn_oid *bases;
    size_t nbases, bases_cap;
};

/* Ids added by one writer (open addressing; `used` marks taken slots). */
struct idset {
    cairn_oid *ids;
    uint8_t *used;
    size_t n, cap;
};

struct cairn_store_writer {
    struct cairn_store *s;
    struct cairn__pack_writer pw;
    struct cairn__pack_pending *pending;
    size_t npending, pending_cap;
    struct idset set;
    struct cairn_codec_ctx *ctx; /* for put(), created on first use */
    struct cairn_buf enc;
    uint64_t bytes;
    int skip_index;       /* gc's writer: dedup only against itself */
    cairn_oid *published; /* names of the packs committed so far (gc needs them) */
    size_t npublished, published_cap;
};

static const char *short_hex(char *buf, const cairn_oid *id)
{
    cairn_hex_encode(buf, id->id, 6);
    return buf;
}

/* ---- the index table ---------------------------------------------------- */

static size_t slot_hash(const cairn_oid *id)
{
    return (size_t)cairn_get_u64le(id->id);
}

static struct slot *table_find(const struct cairn_store *s, const cairn_oid *id)
{
    size_t mask, i;

    if (!s->nslots)
        return NULL;
    mask = s->nslots - 1;
    for (i = slot_hash(id) & mask;; i = (i + 1) & mask) {
        struct slot *sl = &s->slots[i];
        if (sl->pack == EMPTY)
            return NULL;
        if (memcmp(sl->id.id, id->id, CAIRN_OID_RAWSZ) == 0)
            return sl;
    }
}

static int table_grow(struct cairn_store *s)
{
    size_t ncap = s->nslots ? s->nslots * 2 : 4096;
    struct slot *n = malloc(ncap * sizeof(*n));

    if (!n)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory growing the chunk index");
    for (size_t i = 0; i < ncap; i++)
        n[i].pack = EMPTY;
    for (size_t i = 0; i < s->nslots; i++) {
        struct slot *o = &s->slots[i];
        size_t j;
        if (o->pack == EMPTY)
            continue;
        for (j = slot_hash(&o->id) & (ncap - 1); n[j].pack != EMPTY; j = (j + 1) & (ncap - 1))
            ;
        n[j] = *o;
    }
    free(s->slots);
    s->slots = n;
    s->nslots = ncap;
    return 0;
}

/* Insert one idx entry; the first copy of an id wins, later duplicates are ignored. */
static int table_insert(struct cairn_store *s, const struct cairn__pack_entry *e, uint32_t pack)
{
    struct slot *sl;
    size_t i, mask;
    int error;

    if ((s->count + 1) * 10 > s->nslots * 7 && (error = table_grow(s)) < 0)
        return error;
    mask = s->nslots - 1;
    for (i = slot_hash(&e->id) & mask; s->slots[i].pack != EMPTY; i = (i + 1) & mask)
        if (memcmp(s->slots[i].id.id, e->id.id, CAIRN_OID_RAWSZ) == 0)
            return 0;
    sl = &s->slots[i];
    sl->base = NO_BASE;
    if (e->flags & CAIRN__PACK_F_BASE) {
        if (CAIRN_ARRAY_GROW(s->bases, s->bases_cap, s->nbases) < 0)
            return CAIRN_ENOMEM;
        s->bases[s->nbases] = e->base;
        sl->base = (uint32_t)s->nbases++;
    }
    sl->id = e->id;
    sl->offset = e->offset;
    sl->stored_len = e->stored_len;
    sl->raw_len = e->raw_len;
    sl->codec = e->codec;
    sl->flags = e->flags;
    sl->mark = 0;
    sl->pack = pack;
    s->count++;
    return 0;
}

static int add_pack(uint32_t *out, struct cairn_store *s, const cairn_oid *name, uint64_t size,
                    uint32_t count)
{
    struct cairn_buf path = CAIRN_BUF_INIT, idx_path = CAIRN_BUF_INIT;
    struct pack *p = NULL;
    int error;

    if (s->npacks == s->packs_cap) {
        size_t cap = s->packs_cap ? s->packs_cap * 2 : 16;
        struct pack **n = realloc(s->packs, cap * sizeof(*n));
        if (!n) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory adding a pack");
            goto done;
        }
        s->packs = n;
        s->packs_cap = cap;
    }
    if ((error = cairn__pack_filename(&path, s->packs_dir, name, "pack")) < 0 ||
        (error = cairn__pack_filename(&idx_path, s->packs_dir, name, "idx")) < 0)
        goto done;
    if (!(p = calloc(1, sizeof(*p)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory adding a pack");
        goto done;
    }
    p->path = cairn_buf_detach(&path, NULL);
    p->idx_path = cairn_buf_detach(&idx_path, NULL);
    p->name = *name;
    p->size = size;
    p->count = count;
    atomic_init(&p->fd, -1);
    *out = (uint32_t)s->npacks;
    s->packs[s->npacks++] = p;
    p = NULL;
done:
    cairn_buf_release(&path);
    cairn_buf_release(&idx_path);
    return error;
}

static void pack_free(struct pack *p)
{
    int fd;

    if (!p)
        return;
    fd = atomic_load(&p->fd);
    if (fd >= 0)
        close(fd);
    free(p->path);
    free(p->idx_path);
    free(p);
}

/* Forget the whole in-memory index (gc, which runs alone, then reloads lazily). */
static void index_reset(struct cairn_store *s)
{
    for (size_t i = 0; i < s->npacks; i++)
        pack_free(s->packs[i]);
    free(s->packs);
    free(s->slots);
    free(s->bases);
    s->packs = NULL;
    s->slots = NULL;
    s->bases = NULL;
    s->npacks = s->packs_cap = s->nslots = s->count = s->nbases = s->bases_cap = 0;
    s->loaded = 0;
}

static int pack_fd(struct cairn_store *s, struct pack *p)
{
    int fd = atomic_load(&p->fd);

    if (fd >= 0)
        return fd;
    pthread_mutex_lock(&s->fd_lock);
    fd = atomic_load(&p->fd);
    if (fd < 0) {
        fd = open(p->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            fd = cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", p->path);
        else
            atomic_store(&p->fd, fd);
    }
    pthread_mutex_unlock(&s->fd_lock);
    return fd;
}

static int read_idx(struct cairn_buf *out, const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot stat '%s'", path);
    if ((uint64_t)st.st_size > IDX_LIMIT)
        return cairn_error_set(CAIRN_ECORRUPT, "index '%s' is too large", path);
    return cairn_fs_read_file(out, path, IDX_LIMIT);
}

/*
 * Read and fully validate one pack's idx, returning its bytes in `idx`,
 * with the pack's size. Errors name the file.
 */
static int open_pair(struct cairn_buf *idx, uint32_t *count, uint64_t *pack_size,
                     const char *pack_path, const char *idx_path, const cairn_oid *name)
{
    struct stat st;
    cairn_oid computed;
    int error;

    cairn_buf_clear(idx);
    if (stat(pack_path, &st) < 0)
        return cairn_error_set_errno(CAIRN_ENOTFOUND, "cannot stat '%s'", pack_path);
    if ((error = read_idx(idx, idx_path)) < 0)
        return error;
    if ((error = cairn__idx_validate(count, pack_size, &computed, idx->ptr, idx->len,
                                     (uint64_t)st.st_size)) < 0) {
        cairn_error_prefix("index '%s' is damaged", idx_path);
        return error;
    }
    if (cairn_oid_cmp(&computed, name) != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "index '%s' does not match its name", idx_path);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Sorted list of file names in the packs directory. */
static int list_packs_dir(char ***out, size_t *n_out, const char *packs_dir)
{
    DIR *d = opendir(packs_dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int error = 0;

    if (!d)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot open directory '%s'", packs_dir);
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (!nn) {
                error = cairn_error_set(CAIRN_ENOMEM, "out of memory listing '%s'", packs_dir);
                goto done;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory listing '%s'", packs_dir);
            goto done;
        }
        n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
done:
    closedir(d);
    if (error < 0) {
        free_names(names, n);
        return error;
    }
    *out = names;
    *n_out = n;
    return 0;
}

static int has_name(char **names, size_t n, const char *name)
{
    return bsearch(&name, names, n, sizeof(*names), name_cmp) != NULL;
}

/* Load every valid idx not loaded yet. Called with the write lock held. */
static int load_locked(struct cairn_store *s)
{
    struct cairn_buf idx = CAIRN_BUF_INIT, pack_path = CAIRN_BUF_INIT;
    char **names = NULL;
    size_t n = 0;
    int error;

    if ((error = list_packs_dir(&names, &n, s->packs_dir)) < 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        cairn_oid name;
        uint32_t count, pidx;
        uint64_t size;
        int seen = 0;

        if (!cairn__pack_parse_name(&name, names[i], "idx"))
            continue;
        for (size_t k = 0; k < s->npacks && !seen; k++)
            seen = cairn_oid_cmp(&s->packs[k]->name, &name) == 0;
        if (seen)
            continue;
        if ((error = cairn__pack_filename(&pack_path, s->packs_dir, &name, "pack")) < 0)
            goto done;
        {
            struct cairn_buf idx_path = CAIRN_BUF_INIT;
            if ((error = cairn_fs_join(&idx_path, s->packs_dir, names[i])) == 0)
                error = open_pair(&idx, &count, &size, pack_path.ptr, idx_path.ptr, &name);
            cairn_buf_release(&idx_path);
        }
        if (error == CAIRN_ENOMEM)
            goto done;
        if (error < 0) {
            /* Its chunks are missing; verify reports the pack. */
            cairn_warn("ignoring pack index: %s", cairn_error_last());
            cairn_error_clear();
            error = 0;
            continue;
        }
        if ((error = add_pack(&pidx, s, &name, size, count)) < 0)
            goto done;
        for (uint32_t k = 0; k < count; k++) {
            struct cairn__pack_entry e;
            cairn__idx_entry(&e, idx.ptr, k);
            if ((error = table_insert(s, &e, pidx)) < 0)
                goto done;
        }
    }
    s->loaded = 1;
done:
    free_names(names, n);
    cairn_buf_release(&idx);
    cairn_buf_release(&pack_path);
    return error;
}

static int ensure_loaded(struct cairn_store *s)
{
    int loaded, error = 0;

    pthread_rwlock_rdlock(&s->lock);
    loaded = s->loaded;
    pthread_rwlock_unlock(&s->lock);
    if (loaded)
        return 0;
    pthread_rwlock_wrlock(&s->lock);
    if (!s->loaded)
        error = load_locked(s);
    pthread_rwlock_unlock(&s->lock);
    return error;
}

/* ---- open, close -------------------------------------------------------- */

int cairn_store_init(const char *dir)
{
    struct cairn_buf path = CAIRN_BUF_INIT;
    int error;

    if ((error = cairn_fs_join(&path, dir, "packs")) < 0)
        goto done;
    error = cairn_fs_mkdir_p(path.ptr);
done:
    cairn_buf_release(&path);
    return error;
}

int cairn_store_open(struct cairn_store **out, const char *dir)
{
    struct cairn_store *s = NULL;
    struct cairn_buf path = CAIRN_BUF_INIT;
    struct stat st;
    int error;

    *out = NULL;
    if ((error = cairn_fs_join(&path, dir, "packs")) < 0)
        goto done;
    if (stat(path.ptr, &st) < 0 || !S_ISDIR(st.st_mode)) {
        error = cairn_error_set(CAIRN_ENOTFOUND, "no chunk store at '%s'", dir);
        goto done;
    }
    if (!(s = calloc(1, sizeof(*s))) || !(s->dir = strdup(dir))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory opening a store");
        goto done;
    }
    s->packs_dir = cairn_buf_detach(&path, NULL);
    pthread_rwlock_init(&s->lock, NULL);
    pthread_mutex_init(&s->fd_lock, NULL);
    *out = s;
    s = NULL;
done:
    if (s) {
        free(s->dir);
        free(s);
    }
    cairn_buf_release(&path);
    return error;
}

void cairn_store_free(struct cairn_store *s)
{
    if (!s)
        return;
    index_reset(s);
    pthread_rwlock_destroy(&s->lock);
    pthread_mutex_destroy(&s->fd_lock);
    free(s->dir);
    free(s->packs_dir);
    free(s);
}

int cairn_store_load_index(struct cairn_store *s)
{
    int error;

    pthread_rwlock_wrlock(&s->lock);
    error = load_locked(s);
    pthread_rwlock_unlock(&s->lock);
    return error;
}

/* ---- reads -------------------------------------------------------------- */

/* A read's view of one chunk, copied out of the table under the lock. */
struct loc {
    struct slot sl;
    cairn_oid base;
    struct pack *pack;
};

static int lookup(struct loc *out, struct cairn_store *s, const cairn_oid *id)
{
    struct slot *sl;
    int error;

    if ((error = ensure_loaded(s)) < 0)
        return error;
    pthread_rwlock_rdlock(&s->lock);
    sl = table_find(s, id);
    if (sl) {
        out->sl = *sl;
        out->pack = s->packs[sl->pack];
        if (sl->base != NO_BASE)
            out->base = s->bases[sl->base];
        else
            memset(&out->base, 0, sizeof(out->base));
    }
    pthread_rwlock_unlock(&s->lock);
    return sl ? 1 : 0;
}

int cairn_store_has(struct cairn_store *s, const cairn_oid *id)
{
    struct loc l;
    return lookup(&l, s, id);
}

int cairn_store_info(struct cairn_store *s, const cairn_oid *id, struct cairn_chunk_info *out)
{
    struct loc l;
    char hex[13];
    int r = lookup(&l, s, id);

    if (r < 0)
        return r;
    if (r == 0)
        return cairn_error_set(CAIRN_ENOTFOUND, "chunk %s not found", short_hex(hex, id));
    out->raw_len = l.sl.raw_len;
    out->stored_len = l.sl.stored_len;
    out->codec = l.sl.codec;
    out->has_base = (l.sl.flags & CAIRN__PACK_F_BASE) != 0;
    out->base = l.base;
    return 0;
}

/* Per-thread read state, freed when the thread exits. */
struct tls_state {
    struct cairn_codec_ctx *ctx;
    struct cairn_buf stored[MAX_CHAIN + 1];
    struct cairn_buf base[MAX_CHAIN + 1];
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_key_ok;

static void tls_destroy(void *p)
{
    struct tls_state *t = p;

    if (!t)
        return;
    cairn_codec_ctx_free(t->ctx);
    for (int i = 0; i <= MAX_CHAIN; i++) {
        cairn_buf_release(&t->stored[i]);
        cairn_buf_release(&t->base[i]);
    }
    free(t);
}

static void tls_make_key(void)
{
    tls_key_ok = pthread_key_create(&tls_key, tls_destroy) == 0;
}

static struct tls_state *tls_get(void)
{
    struct tls_state *t;

    pthread_once(&tls_once, tls_make_key);
    if (!tls_key_ok) {
        cairn_error_set(CAIRN_ERROR, "cannot create thread-local read state");
        return NULL;
    }
    if ((t = pthread_getspecific(tls_key)))
        return t;
    if (!(t = calloc(1, sizeof(*t)))) {
        cairn_error_set(CAIRN_ENOMEM, "out of memory allocating read state");
        return NULL;
    }
    if (cairn_codec_ctx_new(&t->ctx, 0) < 0) {
        free(t);
        return NULL;
    }
    for (int i = 0; i <= MAX_CHAIN; i++) {
        cairn_buf_init(&t->stored[i], (size_t)CAIRN__CHUNK_MAX + 1);
        cairn_buf_init(&t->base[i], (size_t)CAIRN__CHUNK_MAX + 1);
    }
    if (pthread_setspecific(tls_key, t) != 0) {
        tls_destroy(t);
        cairn_error_set(CAIRN_ERROR, "cannot set thread-local read state");
        return NULL;
    }
    return t;
}

static void tls_trim(struct tls_state *t)
{
    for (int i = 0; i <= MAX_CHAIN; i++) {
        if (t->stored[i].cap > TLS_KEEP)
            cairn_buf_release(&t->stored[i]);
        if (t->base[i].cap > TLS_KEEP)
            cairn_buf_release(&t->base[i]);
    }
}

static int corrupt(const cairn_oid *id, const struct pack *p, const char *why)
{
    char hex[13];
    const char *slash = strrchr(p->path, '/');

    return cairn_error_set(CAIRN_ECORRUPT, "chunk %s in '%s' is corrupt: %s", short_hex(hex, id),
                           slash ? slash + 1 : p->path, why);
}

/* Same, keeping the current error message as the reason. */
static int corrupt_last(const cairn_oid *id, const struct pack *p)
{
    char why[256];

    snprintf(why, sizeof(why), "%s", cairn_error_last());
    return corrupt(id, p, why);
}

static int get_at(struct cairn_store *s, struct tls_state *t, const cairn_oid *id,
                  struct cairn_buf *out, int depth)
{
    struct loc l;
    struct cairn_codec_args args = { 0, NULL, 0 };
    unsigned char *dst;
    uint64_t data_off;
    cairn_oid got;
    char hex[13];
    ssize_t n;
    int fd, error;

    if ((error = lookup(&l, s, id)) < 0)
        return error;
    if (error == 0)
        return cairn_error_set(CAIRN_ENOTFOUND, "chunk %s not found", short_hex(hex, id));
    if ((fd = pack_fd(s, l.pack)) < 0)
        return fd;
    if ((error = cairn_buf_grow(out, l.sl.raw_len)) < 0)
        return error;
    dst = (unsigned char *)out->ptr + out->len;
    data_off = l.sl.offset + cairn__entry_hdr_len(l.sl.flags);
    if (l.sl.codec == CAIRN_CODEC_RAW) {
        n = cairn_fs_pread_full(fd, dst, l.sl.raw_len, (off_t)data_off);
        if (n < 0) {
            error = (int)n;
            goto done;
        }
        if ((uint64_t)n != l.sl.raw_len) {
            error = corrupt(id, l.pack, "pack is truncated");
            goto done;
        }
    } else {
        struct cairn_buf *st = &t->stored[depth];

        cairn_buf_clear(st);
        if ((error = cairn_buf_grow(st, l.sl.stored_len)) < 0)
            goto done;
        n = cairn_fs_pread_full(fd, st->ptr, l.sl.stored_len, (off_t)data_off);
        if (n < 0) {
            error = (int)n;
            goto done;
        }
        if ((uint64_t)n != l.sl.stored_len) {
            error = corrupt(id, l.pack, "pack is truncated");
            goto done;
        }
        if (l.sl.flags & CAIRN__PACK_F_BASE) {
            struct cairn_buf *b = &t->base[depth];
            if (depth >= MAX_CHAIN) {
                error = corrupt(id, l.pack, "delta chain too long");
                goto done;
            }
            cairn_buf_clear(b);
            if ((error = get_at(s, t, &l.base, b, depth + 1)) < 0) {
                char bh[13];
                cairn_error_prefix("delta base %s of chunk %s", short_hex(bh, &l.base),
                                   short_hex(hex, id));
                if (error == CAIRN_ENOTFOUND)
                    error = CAIRN_ECORRUPT;
                goto done;
            }
            args.base = b->ptr;
            args.base_len = b->len;
        }
        if ((error = cairn__codec_decode(t->ctx, l.sl.codec, dst, l.sl.raw_len, st->ptr,
                                         l.sl.stored_len, &args)) < 0) {
            error = corrupt_last(id, l.pack);
            goto done;
        }
    }
    cairn_hash(&got, dst, l.sl.raw_len);
    if (cairn_oid_cmp(&got, id) != 0) {
        error = corrupt(id, l.pack, "hash mismatch");
        goto done;
    }
    out->len += l.sl.raw_len;
done:
    out->ptr[out->len] = '\0';
    return error;
}

int cairn_store_get(struct cairn_store *s, const cairn_oid *id, struct cairn_buf *out)
{
    struct tls_state *t = tls_get();
    int error;

    if (!t)
        return cairn_error_last_code();
    error = get_at(s, t, id, out, 0);
    tls_trim(t);
    return error;
}

int cairn_store_read_encoded(struct cairn_store *s, const cairn_oid *id,
                             struct cairn_chunk_info *info, struct cairn_buf *out)
{
    struct loc l;
    struct cairn__pack_entry e;
    uint8_t hdr[CAIRN__ENTRY_HDR_MAX], check[CAIRN__ENTRY_CHECK_LEN];
    size_t hl;
    char hex[13];
    ssize_t n;
    int fd, error;

    if ((error = lookup(&l, s, id)) < 0)
        return error;
    if (error == 0)
        return cairn_error_set(CAIRN_ENOTFOUND, "chunk %s not found", short_hex(hex, id));
    if ((fd = pack_fd(s, l.pack)) < 0)
        return fd;
    hl = cairn__entry_hdr_len(l.sl.flags);
    n = cairn_fs_pread_full(fd, hdr, hl, (off_t)l.sl.offset);
    if (n < 0)
        return (int)n;
    if ((size_t)n != hl || cairn__entry_header_parse(&e, hdr, hl, l.sl.offset) < 0 ||
        cairn_oid_cmp(&e.id, id) != 0 || e.stored_len != l.sl.stored_len ||
        e.raw_len != l.sl.raw_len || e.codec != l.sl.codec || e.flags != l.sl.flags)
        return corrupt(id, l.pack, "damaged entry header (run fsck)");
    cairn_buf_clear(out);
    if ((error = cairn_buf_grow(out, l.sl.stored_len)) < 0)
        return error;
    n = cairn_fs_pread_full(fd, out->ptr, l.sl.stored_len, (off_t)(l.sl.offset + hl));
    if (n < 0)
        return (int)n;
    if ((uint64_t)n != l.sl.stored_len ||
        cairn_fs_pread_full(fd, check, sizeof(check),
                            (off_t)(l.sl.offset + hl + l.sl.stored_len)) != (ssize_t)sizeof(check))
        return corrupt(id, l.pack, "pack is truncated");
    if (cairn__entry_check_verify(check, hdr, hl, out->ptr, l.sl.stored_len) < 0)
        return corrupt(id, l.pack, "damaged entry (run fsck)");
    out->len = l.sl.stored_len;
    out->ptr[out->len] = '\0';
    if (info) {
        info->raw_len = l.sl.raw_len;
        info->stored_len = l.sl.stored_len;
        info->codec = l.sl.codec;
        info->has_base = (l.sl.flags & CAIRN__PACK_F_BASE) != 0;
        info->base = l.base;
    }
    return 0;
}

int cairn_store_check_encoded(struct cairn_store *s, const cairn_oid *id, int codec,
                              const cairn_oid *base, uint64_t raw_len, const void *enc,
                              size_t enc_len)
{
    const struct cairn_codec_ops *ops = cairn__codec_ops(codec);
    struct cairn_codec_args args = { 0, NULL, 0 };
    struct tls_state *t;
    struct cairn_buf *dst;
    cairn_oid got;
    char hex[13], bh[13];
    int error;

    short_hex(hex, id);
    if (!ops)
        return cairn_error_set(CAIRN_ECORRUPT, "chunk %s: unknown codec %d", hex, codec);
    if (raw_len > CAIRN__CHUNK_MAX || enc_len > CAIRN__CHUNK_MAX)
        return cairn_error_set(CAIRN_ECORRUPT, "chunk %s: length out of range", hex);
    if (!!ops->uses_base != !!(base && !cairn_oid_is_zero(base)))
        return cairn_error_set(CAIRN_ECORRUPT, "chunk %s: delta base does not match its codec",
                               hex);
    if (codec == CAIRN_CODEC_RAW) {
        if (enc_len != raw_len)
            return cairn_error_set(CAIRN_ECORRUPT, "chunk %s: raw length mismatch", hex);
        cairn_hash(&got, enc, enc_len);
        if (cairn_oid_cmp(&got, id) != 0)
            return cairn_error_set(CAIRN_ECORRUPT, "chunk %s: hash mismatch", hex);
        return 0;
    }
    if (!(t = tls_get()))
        return cairn_error_last_code();
    if (ops->uses_base) {
        cairn_buf_clear(&t->base[0]);
        if ((error = get_at(s, t, base, &t->base[0], 1)) < 0) {
            cairn_error_prefix("delta base %s of chunk %s", short_hex(bh, base), hex);
            goto done;
        }
        args.base = t->base[0].ptr;
        args.base_len = t->base[0].len;
    }
    dst = &t->stored[0];
    cairn_buf_clear(dst);
    if ((error = cairn_buf_grow(dst, raw_len)) < 0)
        goto done;
    if ((error = cairn__codec_decode(t->ctx, codec, (unsigned char *)dst->ptr, raw_len, enc,
                                     enc_len, &args)) < 0) {
        cairn_error_prefix("chunk %s does not decode", hex);
        error = CAIRN_ECORRUPT;
        goto done;
    }
    cairn_hash(&got, dst->ptr, raw_len);
    if (cairn_oid_cmp(&got, id) != 0)
        error = cairn_error_set(CAIRN_ECORRUPT, "chunk %s: hash mismatch", hex);
done:
    tls_trim(t);
    return error;
}

/* Links from `id` down its delta chain (0: no base); -1 if longer than MAX_CHAIN. */
static int chain_depth(struct cairn_store *s, const cairn_oid *id)
{
    struct slot *sl;
    int depth = 0;

    pthread_rwlock_rdlock(&s->lock);
    sl = table_find(s, id);
    while (sl && sl->base != NO_BASE) {
        if (++depth > MAX_CHAIN) {
            depth = -1;
            break;
        }
        sl = table_find(s, &s->bases[sl->base]);
    }
    pthread_rwlock_unlock(&s->lock);
    return depth;
}

/*
 * A tensor's PLANE state (cairn_chunk_hint): declines counted in the low
 * bits, PLANE_TOOK added per chunk PLANE won. Chunks with a delta base are
 * not counted: the delta decides those. Two declines and no win skip it.
 */
#define PLANE_TOOK (1 << 16)

static int plane_state_skips(int st)
{
    return st < PLANE_TOOK && st >= 2;
}

int cairn_store_encode(struct cairn_store *s, struct cairn_codec_ctx *ctx, const void *raw,
                       size_t len, const struct cairn_chunk_hint *hint, struct cairn_buf *out,
                       int *codec_out, cairn_oid *base_out)
{
    struct cairn_codec_args args = { 0, NULL, 0 };
    int codec = CAIRN_CODEC_RAW, error, depth;
    const struct cairn_codec_ops *ops;

    if (hint)
        args.elem_size = hint->elem_size;
    /*
     * A delta needs the base's raw bytes, and a base whose own chain is at
     * the limit would make this chunk unreadable; any trouble with the base
     * just means no delta.
     */
    if (s && hint && hint->base && cairn_store_has(s, hint->base) == 1 &&
        (depth = chain_depth(s, hint->base)) >= 0 && depth < MAX_CHAIN) {
        cairn_buf_clear(&ctx->base);
        if (cairn_store_get(s, hint->base, &ctx->base) == 0) {
            args.base = ctx->base.ptr;
            args.base_len = ctx->base.len;
        } else {
            cairn_error_clear();
        }
    }
    if (hint && hint->plane_state)
        args.skip_plane = plane_state_skips(__atomic_load_n(hint->plane_state, __ATOMIC_RELAXED));
    if ((error = cairn__codec_encode_best(ctx, out, &codec, raw, len, &args)) < 0)
        return error;
    if (hint && hint->plane_state && !args.skip_plane && args.elem_size >= 2 && !args.base)
        __atomic_fetch_add(hint->plane_state, codec == CAIRN_CODEC_PLANE ? PLANE_TOOK : 1,
                           __ATOMIC_RELAXED);
    ops = cairn__codec_ops(codec);
    *codec_out = codec;
    if (base_out) {
        if (ops && ops->uses_base)
            *base_out = *hint->base;
        else
            memset(base_out, 0, sizeof(*base_out));
    }
    return 0;
}

/* ---- writer ------------------------------------------------------------- */

static int idset_has(const struct idset *set, const cairn_oid *id)
{
    size_t mask, i;

    if (!set->cap)
        return 0;
    mask = set->cap - 1;
    for (i = slot_hash(id) & mask; set->used[i]; i = (i + 1) & mask)
        if (memcmp(set->ids[i].id, id->id, CAIRN_OID_RAWSZ) == 0)
            return 1;
    return 0;
}

static void idset_place(cairn_oid *ids, uint8_t *used, size_t cap, const cairn_oid *id)
{
    size_t i;

    for (i = slot_hash(id) & (cap - 1); used[i]; i = (i + 1) & (cap - 1))
        ;
    used[i] = 1;
    ids[i] = *id;
}

static int idset_add(struct idset *set, const cairn_oid *id)
{
    if ((set->n + 1) * 10 > set->cap * 7) {
        size_t ncap = set->cap ? set->cap * 2 : 1024;
        cairn_oid *ids = malloc(ncap * sizeof(*ids));
        uint8_t *used = calloc(ncap, 1);
        if (!ids || !used) {
            free(ids);
            free(used);
            return cairn_error_set(CAIRN_ENOMEM, "out of memory growing a writer's id set");
        }
        for (size_t i = 0; i < set->cap; i++)
            if (set->used[i])
                idset_place(ids, used, ncap, &set->ids[i]);
        free(set->ids);
        free(set->used);
        set->ids = ids;
        set->used = used;
        set->cap = ncap;
    }
    idset_place(set->ids, set->used, set->cap, id);
    set->n++;
    return 0;
}

int cairn_store_writer_new(struct cairn_store_writer **out, struct cairn_store *s)
{
    struct cairn_store_writer *w = calloc(1, sizeof(*w));

    *out = NULL;
    if (!w)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory allocating a store writer");
    w->s = s;
    cairn__pack_writer_init(&w->pw);
    cairn_buf_init(&w->enc, (size_t)CAIRN__CHUNK_MAX + 1);
    *out = w;
    return 0;
}

void cairn_store_writer_free(struct cairn_store_writer *w)
{
    if (!w)
        return;
    cairn__pack_writer_release(&w->pw);
    for (size_t i = 0; i < w->npending; i++)
        cairn__pack_pending_release(&w->pending[i]);
    free(w->pending);
    free(w->published);
    free(w->set.ids);
    free(w->set.used);
    cairn_codec_ctx_free(w->ctx);
    cairn_buf_release(&w->enc);
    free(w);
}

uint64_t cairn_store_writer_bytes(const struct cairn_store_writer *w)
{
    return w->bytes;
}

/* Finish the open pack (if it holds anything) into the pending list. */
static int writer_finish_pack(struct cairn_store_writer *w)
{
    struct cairn__pack_pending p;
    int error;

    if (w->pw.fd < 0)
        return 0;
    if (w->pw.count == 0) {
        close(w->pw.fd);
        w->pw.fd = -1;
        unlink(w->pw.tmp_path);
        free(w->pw.tmp_path);
        w->pw.tmp_path = NULL;
        return 0;
    }
    if (CAIRN_ARRAY_GROW(w->pending, w->pending_cap, w->npending) < 0)
        return CAIRN_ENOMEM;
    if ((error = cairn__pack_writer_finish(&w->pw, &p, w->s->packs_dir)) < 0)
        return error;
    w->pending[w->npending++] = p;
    return 0;
}

_Static_assert(CAIRN_STORE_CHECK_LEN == CAIRN__ENTRY_CHECK_LEN, "entry check length");

/* The entry a chunk gets in a pack, before its offset is known. */
static void entry_of(struct cairn__pack_entry *e, const cairn_oid *id, int codec,
                     const cairn_oid *base, uint64_t raw_len, size_t enc_len)
{
    memset(e, 0, sizeof(*e));
    e->id = *id;
    e->codec = (uint8_t)codec;
    e->raw_len = raw_len;
    e->stored_len = enc_len;
    if (base && !cairn_oid_is_zero(base)) {
        e->flags |= CAIRN__PACK_F_BASE;
        e->base = *base;
    }
}

void cairn_store_entry_check(uint8_t out[CAIRN_STORE_CHECK_LEN], const cairn_oid *id, int codec,
                             const cairn_oid *base, uint64_t raw_len, const void *enc,
                             size_t enc_len)
{
    const struct cairn_codec_ops *ops = cairn__codec_ops(codec);
    struct cairn__pack_entry e;
    uint8_t hdr[CAIRN__ENTRY_HDR_MAX];

    entry_of(&e, id, codec, ops && ops->uses_base ? base : NULL, raw_len, enc_len);
    cairn__entry_check_compute(out, hdr, cairn__entry_header_write(hdr, &e), enc, enc_len);
}

static int writer_add(struct cairn_store_writer *w, const cairn_oid *id, int codec,
                      const cairn_oid *base, uint64_t raw_len, const void *enc, size_t enc_len,
                      const uint8_t *check)
{
    const struct cairn_codec_ops *ops = cairn__codec_ops(codec);
    struct cairn__pack_entry e;
    int error;

    if (!ops)
        return cairn_error_set(CAIRN_EINVALID, "unknown codec %d", codec);
    if (raw_len > CAIRN__CHUNK_MAX || enc_len > CAIRN__CHUNK_MAX)
        return cairn_error_set(CAIRN_EINVALID, "chunk of %llu bytes is too large",
                               (unsigned long long)raw_len);
    if (codec == CAIRN_CODEC_RAW && enc_len != raw_len)
        return cairn_error_set(CAIRN_EINVALID, "raw chunk with encoded length %zu != %llu", enc_len,
                               (unsigned long long)raw_len);
    if (ops->uses_base && (!base || cairn_oid_is_zero(base)))
        return cairn_error_set(CAIRN_EINVALID, "%s chunk without a base", ops->name);
    if (idset_has(&w->set, id))
        return 0;
    if (!w->skip_index && (error = cairn_store_has(w->s, id)) != 0)
        return error < 0 ? error : 0;
    if (w->pw.fd >= 0 && w->pw.size >= cairn__pack_target && (error = writer_finish_pack(w)) < 0)
        return error;
    if (w->pw.fd < 0) {
        if ((error = cairn__pack_writer_open(&w->pw, w->s->packs_dir)) < 0)
            return error;
        w->bytes += CAIRN__PACK_HDR_LEN;
    }
    entry_of(&e, id, codec, ops->uses_base ? base : NULL, raw_len, enc_len);
    if ((error = cairn__pack_writer_append(&w->pw, &e, enc, check)) < 0)
        return error;
    w->bytes += cairn__entry_total_len(&e);
    return idset_add(&w->set, id);
}

int cairn_store_writer_add(struct cairn_store_writer *w, const cairn_oid *id, int codec,
                           const cairn_oid *base, uint64_t raw_len, const void *enc, size_t enc_len)
{
    return writer_add(w, id, codec, base, raw_len, enc, enc_len, NULL);
}

int cairn_store_writer_add_checked(struct cairn_store_writer *w, const cairn_oid *id, int codec,
                                   const cairn_oid *base, uint64_t raw_len, const void *enc,
                                   size_t enc_len, const uint8_t check[CAIRN_STORE_CHECK_LEN])
{
    return writer_add(w, id, codec, base, raw_len, enc, enc_len, check);
}

int cairn_store_writer_put(struct cairn_store_writer *w, const void *data, size_t len,
                           cairn_oid *id_out)
{
    int codec, error;

    cairn_hash(id_out, data, len);
    if (idset_has(&w->set, id_out))
        return 0;
    if (!w->skip_index && (error = cairn_store_has(w->s, id_out)) != 0)
        return error < 0 ? error : 0;
    if (!w->ctx && (error = cairn_codec_ctx_new(&w->ctx, 0)) < 0)
        return error;
    cairn_buf_clear(&w->enc);
    if ((error = cairn__codec_encode_best(w->ctx, &w->enc, &codec, data, len, NULL)) < 0)
        return error;
    return cairn_store_writer_add(w, id_out, codec, NULL, len, w->enc.ptr, w->enc.len);
}

int cairn_store_writer_commit(struct cairn_store_writer *w)
{
    struct cairn_store *s = w->s;
    size_t published = 0;
    int error;

    if ((error = writer_finish_pack(w)) < 0)
        goto done;
    if (w->npublished + w->npending > w->published_cap) {
        size_t cap = w->npublished + w->npending + 8;
        cairn_oid *n = realloc(w->published, cap * sizeof(*n));
        if (!n) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory committing packs");
            goto done;
        }
        w->published = n;
        w->published_cap = cap;
    }
    /* The pending packs were fsynced in the background; all must have landed. */
    if (w->npending && (error = cairn__pack_writer_sync(&w->pw)) < 0)
        goto done;
    for (; published < w->npending; published++) {
        if ((error = cairn__pack_pending_publish(&w->pending[published], s->packs_dir)) < 0)
            goto done;
        w->published[w->npublished++] = w->pending[published].name;
    }
    if (w->npending && (error = cairn_fs_fsync_dir(s->packs_dir)) < 0)
        goto done;
done:
    /*
     * Whatever was published is on disk: make it visible to this process
     * too. If memory runs out here the chunks stay invisible until the store
     * is reopened (they are durable); the index cannot be rebuilt in place
     * while other threads may be reading through it.
     */
    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < published && s->loaded; i++) {
        struct cairn__pack_pending *p = &w->pending[i];
        uint32_t pidx;
        int err2 = add_pack(&pidx, s, &p->name, p->size, (uint32_t)p->count);
        for (size_t k = 0; err2 == 0 && k < p->count; k++)
            err2 = table_insert(s, &p->entries[k], pidx);
        if (err2 < 0) {
            if (error == 0)
                cairn_error_clear();
            break;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    for (size_t i = 0; i < published; i++)
        cairn__pack_pending_release(&w->pending[i]);
    if (published && published < w->npending)
        memmove(w->pending, w->pending + published,
                (w->npending - published) * sizeof(*w->pending));
    w->npending -= published;
    return error;
}

/* ---- verify (fsck) ------------------------------------------------------ */

struct verify {
    struct cairn_store *s;
    cairn_problem_fn problem, note;
    void *payload;
    int problems;
    struct cairn_codec_ctx *ctx;
    struct cairn_buf data, raw, base, msg;
};

static void report(struct verify *v, int is_problem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct verify *v, int is_problem, const char *fmt, ...)
{
    cairn_problem_fn fn = is_problem ? v->problem : v->note;
    va_list ap;

    if (is_problem)
        v->problems++;
    if (!fn)
        return;
    cairn_buf_clear(&v->msg);
    va_start(ap, fmt);
    if (cairn_buf_vprintf(&v->msg, fmt, ap) == 0)
        fn(v->msg.ptr, v->payload);
    va_end(ap);
}

/* Smallest idx offset above `pos`, to resume a scan after a damaged entry. */
static uint64_t next_offset(const void *idx, uint32_t count, uint64_t pos)
{
    uint64_t best = UINT64_MAX;

    for (uint32_t i = 0; i < count; i++) {
        struct cairn__pack_entry e;
        cairn__idx_entry(&e, idx, i);
        if (e.offset > pos && e.offset < best)
            best = e.offset;
    }
    return best;
}

/*
 * Decode an entry's stored bytes into `raw` (a delta against args->base)
 * and compare their BLAKE3 with its id: 1 when they match, 0 when they do
 * not, -1 when they do not decode, -2 when `raw` cannot grow (error set).
 */
static int decode_matches(struct cairn_codec_ctx *ctx, struct cairn_buf *raw,
                          const struct cairn__pack_entry *e, const void *stored,
                          const struct cairn_codec_args *args)
{
    cairn_oid got;

    cairn_buf_clear(raw);
    if (cairn_buf_grow(raw, e->raw_len) < 0)
        return -2;
    if (cairn__codec_decode(ctx, e->codec, raw->ptr, e->raw_len, stored, e->stored_len, args) < 0)
        return -1;
    cairn_hash(&got, raw->ptr, e->raw_len);
    return cairn_oid_cmp(&got, &e->id) == 0;
}

/* Decode and hash-check one entry read from a pack; reports what is wrong. */
static void verify_chunk(struct verify *v, const char *pname, const struct cairn__pack_entry *e,
                         const void *stored)
{
    struct cairn_codec_args args = { 0, NULL, 0 };
    char hex[13], bh[13];

    short_hex(hex, &e->id);
    if (e->flags & CAIRN__PACK_F_BASE) {
        short_hex(bh, &e->base);
        if (cairn_store_has(v->s, &e->base) != 1) {
            report(v, 1, "chunk %s in '%s': delta base %s is missing", hex, pname, bh);
            return;
        }
        cairn_buf_clear(&v->base);
        if (cairn_store_get(v->s, &e->base, &v->base) < 0) {
            report(v, 1, "chunk %s in '%s': delta base %s unreadable: %s", hex, pname, bh,
                   cairn_error_last());
            return;
        }
        args.base = v->base.ptr;
        args.base_len = v->base.len;
    }
    switch (decode_matches(v->ctx, &v->raw, e, stored, &args)) {
    case -2:
    case -1:
        report(v, 1, "chunk %s in '%s' does not decode: %s", hex, pname, cairn_error_last());
        break;
    case 0:
        report(v, 1, "chunk %s in '%s' is corrupt: hash mismatch", hex, pname);
        break;
    }
}

static int verify_pair(struct verify *v, const cairn_oid *name, const char *pname)
{
    struct cairn_buf idx = CAIRN_BUF_INIT, pack_path = CAIRN_BUF_INIT, idx_path = CAIRN_BUF_INIT;
    uint8_t hdr[CAIRN__ENTRY_HDR_MAX], *seen = NULL;
    uint64_t size, pos;
    uint32_t count;
    int fd = -1, error;
    ssize_t n;

    if ((error = cairn__pack_filename(&pack_path, v->s->packs_dir, name, "pack")) < 0 ||
        (error = cairn__pack_filename(&idx_path, v->s->packs_dir, name, "idx")) < 0)
        goto done;
    if ((error = open_pair(&idx, &count, &size, pack_path.ptr, idx_path.ptr, name)) < 0) {
        if (error == CAIRN_ENOMEM)
            goto done;
        report(v, 1, "%s", cairn_error_last());
        error = 0;
        goto done;
    }
    if (!(seen = calloc(count ? count : 1, 1))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory verifying '%s'", pname);
        goto done;
    }
    if ((fd = open(pack_path.ptr, O_RDONLY | O_CLOEXEC)) < 0) {
        report(v, 1, "cannot open '%s': %s", pname, strerror(errno));
        goto done;
    }
    n = cairn_fs_pread_full(fd, hdr, CAIRN__PACK_HDR_LEN, 0);
    if (n != CAIRN__PACK_HDR_LEN || memcmp(hdr, CAIRN__PACK_MAGIC, CAIRN__PACK_HDR_LEN) != 0) {
        report(v, 1, "'%s' is not a pack (bad magic)", pname);
        goto done;
    }
    for (pos = CAIRN__PACK_HDR_LEN; pos < size;) {
        struct cairn__pack_entry e, ie;
        size_t hl, want = size - pos < sizeof(hdr) ? (size_t)(size - pos) : sizeof(hdr);
        uint64_t total;
        long k;

        n = cairn_fs_pread_full(fd, hdr, want, (off_t)pos);
        if (n < 0 || (size_t)n != want || cairn__entry_header_parse(&e, hdr, want, pos) < 0) {
            report(v, 1, "'%s': damaged entry at offset %llu: %s", pname, (unsigned long long)pos,
                   n < 0 || (size_t)n != want ? "short read" : cairn_error_last());
            pos = next_offset(idx.ptr, count, pos);
            continue;
        }
        hl = cairn__entry_hdr_len(e.flags);
        total = cairn__entry_total_len(&e);
        if (total > size - pos) {
            report(v, 1, "'%s': entry at offset %llu runs past the end of the pack", pname,
                   (unsigned long long)pos);
            pos = next_offset(idx.ptr, count, pos);
            continue;
        }
        cairn_buf_clear(&v->data);
        if ((error = cairn_buf_grow(&v->data, e.stored_len + CAIRN__ENTRY_CHECK_LEN)) < 0)
            goto done;
        n = cairn_fs_pread_full(fd, v->data.ptr, e.stored_len + CAIRN__ENTRY_CHECK_LEN,
                                (off_t)(pos + hl));
        if (n < 0 || (uint64_t)n != e.stored_len + CAIRN__ENTRY_CHECK_LEN ||
            cairn__entry_check_verify(v->data.ptr + e.stored_len, hdr, hl, v->data.ptr,
                                      e.stored_len) < 0) {
            report(v, 1, "'%s': damaged entry at offset %llu (check mismatch)", pname,
                   (unsigned long long)pos);
            pos = next_offset(idx.ptr, count, pos);
            continue;
        }
        k = cairn__idx_find(idx.ptr, count, &e.id);
        if (k < 0) {
            char hex[13];
            report(v, 1, "chunk %s at offset %llu of '%s' is not in its index",
                   short_hex(hex, &e.id), (unsigned long long)pos, pname);
        } else {
            cairn__idx_entry(&ie, idx.ptr, (uint32_t)k);
            if (ie.offset != pos || ie.raw_len != e.raw_len || ie.stored_len != e.stored_len ||
                ie.codec != e.codec || ie.flags != e.flags ||
                cairn_oid_cmp(&ie.base, &e.base) != 0) {
                char hex[13];
                report(v, 1, "chunk %s in '%s': index and pack disagree", short_hex(hex, &e.id),
                       pname);
            } else {
                seen[k] = 1;
            }
        }
        verify_chunk(v, pname, &e, v->data.ptr);
        pos += total;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (!seen[i]) {
            struct cairn__pack_entry ie;
            char hex[13];
            cairn__idx_entry(&ie, idx.ptr, i);
            report(v, 1, "chunk %s listed in the index of '%s' is not readable from the pack",
                   short_hex(hex, &ie.id), pname);
        }
    }
done:
    if (fd >= 0)
        close(fd);
    free(seen);
    cairn_buf_release(&idx);
    cairn_buf_release(&pack_path);
    cairn_buf_release(&idx_path);
    return error;
}

int cairn_store_verify_ex(struct cairn_store *s, cairn_problem_fn problem, cairn_problem_fn note,
                          void *payload)
{
    struct verify v = { s,    problem,        note,           payload,        0,
                        NULL, CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT };
    char **names = NULL, want[5 + CAIRN_OID_HEXSZ + 6];
    size_t n = 0;
    int error;

    if ((error = ensure_loaded(s)) < 0 || (error = cairn_codec_ctx_new(&v.ctx, 0)) < 0 ||
        (error = list_packs_dir(&names, &n, s->packs_dir)) < 0)
        goto done;
    cairn_buf_init(&v.data, (size_t)CAIRN__CHUNK_MAX + 64);
    cairn_buf_init(&v.raw, (size_t)CAIRN__CHUNK_MAX + 1);
    cairn_buf_init(&v.base, (size_t)CAIRN__CHUNK_MAX + 1);
    for (size_t i = 0; i < n; i++) {
        const char *nm = names[i];
        char hex[CAIRN_OID_HEXSZ + 1];
        cairn_oid name;

        if (cairn__pack_is_temp_name(nm)) {
            report(&v, 0, "interrupted write: temporary file 'packs/%s'", nm);
        } else if (cairn__pack_parse_name(&name, nm, "pack")) {
            snprintf(want, sizeof(want), "pack-%s.idx", cairn_oid_fmt(hex, &name));
            if (!has_name(names, n, want))
                report(&v, 0, "interrupted write: pack 'packs/%s' has no index", nm);
            else if ((error = verify_pair(&v, &name, nm)) < 0)
                goto done;
        } else if (cairn__pack_parse_name(&name, nm, "idx")) {
            snprintf(want, sizeof(want), "pack-%s.pack", cairn_oid_fmt(hex, &name));
            if (!has_name(names, n, want))
                report(&v, 1, "index 'packs/%s' has no pack", nm);
        } else {
            report(&v, 0, "unknown file 'packs/%s'", nm);
        }
    }
    error = v.problems;
done:
    free_names(names, n);
    cairn_codec_ctx_free(v.ctx);
    cairn_buf_release(&v.data);
    cairn_buf_release(&v.raw);
    cairn_buf_release(&v.base);
    cairn_buf_release(&v.msg);
    return error;
}

int cairn_store_verify(struct cairn_store *s, cairn_problem_fn cb, void *payload)
{
    return cairn_store_verify_ex(s, cb, NULL, payload);
}

/* ---- repair (fsck --repair) --------------------------------------------- */

struct repair {
    struct cairn_store *s;
    cairn_problem_fn action;
    void *payload;
    struct cairn_store_repair_stats *st;
    struct cairn_codec_ctx *ctx;
    struct cairn_buf raw, base, msg, path, dest;
};

static void repair_say(struct repair *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void repair_say(struct repair *r, const char *fmt, ...)
{
    va_list ap;

    if (!r->action)
        return;
    cairn_buf_clear(&r->msg);
    va_start(ap, fmt);
    if (cairn_buf_vprintf(&r->msg, fmt, ap) == 0)
        r->action(r->msg.ptr, r->payload);
    va_end(ap);
}

/*
 * The entry at map[pos] when it is whole: header parses, it fits in the
 * file and its check verifies. Its bytes are then exactly what a writer
 * wrote, whatever the idx says.
 */
static int intact_entry(struct cairn__pack_entry *e, const uint8_t *map, uint64_t size,
                        uint64_t pos)
{
    uint64_t left = size - pos;
    size_t hl;

    if (left < CAIRN__ENTRY_HDR_LEN ||
        cairn__entry_header_parse(
            e, map + pos, left < CAIRN__ENTRY_HDR_MAX ? left : CAIRN__ENTRY_HDR_MAX, pos) < 0)
        return 0;
    hl = cairn__entry_hdr_len(e->flags);
    if (cairn__entry_total_len(e) > left)
        return 0;
    return cairn__entry_check_verify(map + pos + hl + e->stored_len, map + pos, hl, map + pos + hl,
                                     e->stored_len) == 0;
}

/*
 * 1 when the entry's chunk decodes to its id, 0 when it does not (the
 * entry is dropped), and 1 as well when it is a delta whose base cannot be
 * read now: its bytes are intact and a later add or pull may bring the
 * base back, so it is kept.
 */
static int chunk_sound(struct repair *r, const struct cairn__pack_entry *e, const uint8_t *stored)
{
    struct cairn_codec_args args = { 0, NULL, 0 };

    if (e->flags & CAIRN__PACK_F_BASE) {
        cairn_buf_clear(&r->base);
        if (cairn_store_get(r->s, &e->base, &r->base) < 0) {
            cairn_error_clear();
            return 1;
        }
        args.base = r->base.ptr;
        args.base_len = r->base.len;
    }
    switch (decode_matches(r->ctx, &r->raw, e, stored, &args)) {
    case 1:
        return 1;
    case -2:
        return -1; /* out of memory is no reason to drop a chunk */
    default:
        cairn_error_clear();
        return 0;
    }
}

/* Next offset after `pos` where an intact entry starts, or `size`. */
static uint64_t resync(struct cairn__pack_entry *e, const uint8_t *map, uint64_t size, uint64_t pos)
{
    static const uint8_t marker[4] = { 0x45, 0x4e, 0x54, 0x31 };

    for (pos++; pos + CAIRN__ENTRY_HDR_LEN <= size; pos++) {
        const uint8_t *hit = memmem(map + pos, size - pos, marker, sizeof(marker));
        if (!hit)
            break;
        pos = (uint64_t)(hit - map);
        if (intact_entry(e, map, size, pos))
            return pos;
    }
    return size;
}

/* Move packs/NAME to store/damaged/NAME (or NAME.1, NAME.2, ...), durably. */
static int quarantine(struct repair *r, const char *name)
{
    struct cairn_buf dir = CAIRN_BUF_INIT;
    struct stat st;
    int error;

    if ((error = cairn_fs_join(&dir, r->s->dir, "damaged")) < 0 ||
        (error = cairn_fs_mkdir_p(dir.ptr)) < 0 ||
        (error = cairn_fs_join(&r->dest, dir.ptr, name)) < 0 ||
        (error = cairn_fs_join(&r->path, r->s->packs_dir, name)) < 0)
        goto done;
    for (int i = 1; lstat(r->dest.ptr, &st) == 0; i++) {
        cairn_buf_clear(&r->dest);
        if ((error = cairn_buf_printf(&r->dest, "%s/%s.%d", dir.ptr, name, i)) < 0)
            goto done;
    }
    if (rename(r->path.ptr, r->dest.ptr) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot move '%s' to '%s'", r->path.ptr,
                                      r->dest.ptr);
        goto done;
    }
    if ((error = cairn_fs_fsync_dir(dir.ptr)) < 0 ||
        (error = cairn_fs_fsync_dir(r->s->packs_dir)) < 0)
        goto done;
    r->st->files_moved++;
    repair_say(r, "moved 'packs/%s' to '%s'", name, r->dest.ptr + strlen(r->s->dir) + 1);
done:
    cairn_buf_release(&dir);
    return error;
}

static int entry_only_id_cmp(const void *a, const void *b)
{
    return memcmp(((const struct cairn__pack_entry *)a)->id.id,
                  ((const struct cairn__pack_entry *)b)->id.id, CAIRN_OID_RAWSZ);
}

/* By id, then offset: the first copy of an id sorts first. */
static int entry_id_cmp(const void *a, const void *b)
{
    const struct cairn__pack_entry *x = a, *y = b;
    int c = entry_only_id_cmp(a, b);
    return c ? c : x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int entry_offset_cmp(const void *a, const void *b)
{
    const struct cairn__pack_entry *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * Repair one pack: scan it (the pack is self-describing, so this needs no
 * idx), keep the entries that are intact and decode to their id, and, if
 * that is not exactly what its idx lists, write them as a new pack (which
 * is the same pack, same name, when only the idx was lost) before the old
 * idx is removed and the old pack moved aside.
 */
static int repair_pack(struct repair *r, const cairn_oid *name, const char *pname)
{
    struct cairn_buf idx = CAIRN_BUF_INIT, pack_path = CAIRN_BUF_INIT, idx_path = CAIRN_BUF_INIT;
    struct cairn__pack_entry *keep = NULL, e;
    struct cairn_store_writer *w = NULL;
    size_t nkeep = 0, cap = 0, dropped = 0, damaged = 0;
    uint8_t *map = MAP_FAILED;
    uint64_t size = 0, pos, idx_size;
    uint32_t count = 0;
    int fd = -1, error, has_idx, same = 0, touched = 0;
    struct stat st;

    if ((error = cairn__pack_filename(&pack_path, r->s->packs_dir, name, "pack")) < 0 ||
        (error = cairn__pack_filename(&idx_path, r->s->packs_dir, name, "idx")) < 0)
        goto done;
    has_idx = open_pair(&idx, &count, &idx_size, pack_path.ptr, idx_path.ptr, name) == 0;
    cairn_error_clear();
    if ((fd = open(pack_path.ptr, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", pack_path.ptr);
        goto done;
    }
    size = (uint64_t)st.st_size;
    if (size > 0 && (map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot map '%s'", pack_path.ptr);
        goto done;
    }
    pos = CAIRN__PACK_HDR_LEN;
    if (size < CAIRN__PACK_HDR_LEN || memcmp(map, CAIRN__PACK_MAGIC, CAIRN__PACK_HDR_LEN) != 0) {
        damaged++;
        pos = size > 0 ? resync(&e, map, size, 0) : 0;
    }
    while (pos < size) {
        int sound;
        if (!intact_entry(&e, map, size, pos)) {
            damaged++;
            pos = resync(&e, map, size, pos);
            continue;
        }
        if ((sound = chunk_sound(r, &e, map + pos + cairn__entry_hdr_len(e.flags))) < 0) {
            error = sound;
            goto done;
        }
        if (!sound) {
            char hex[13];
            if (!has_idx) {
                dropped++;
                repair_say(r, "dropped corrupt chunk %s of '%s'", short_hex(hex, &e.id), pname);
            }
        } else {
            if ((error = CAIRN_ARRAY_GROW(keep, cap, nkeep)) < 0)
                goto done;
            keep[nkeep++] = e;
        }
        pos += cairn__entry_total_len(&e);
    }
    /*
     * With a valid idx, every entry it lists that was not found sound is a
     * chunk dropped; the pack needs no change when none is and nothing else
     * in it was damaged.
     */
    if (has_idx) {
        int moved = 0;
        if (nkeep)
            qsort(keep, nkeep, sizeof(*keep), entry_id_cmp);
        for (uint32_t i = 0; i < count; i++) {
            struct cairn__pack_entry ie;
            const struct cairn__pack_entry *k;
            char hex[13];
            cairn__idx_entry(&ie, idx.ptr, i);
            k = nkeep ? bsearch(&ie, keep, nkeep, sizeof(*keep), entry_only_id_cmp) : NULL;
            if (!k) {
                dropped++;
                repair_say(r, "dropped unreadable chunk %s of '%s'", short_hex(hex, &ie.id), pname);
            } else if (k->offset != ie.offset) {
                moved = 1;
            }
        }
        if (!damaged && !dropped && !moved && nkeep == count)
            goto done;
        if (nkeep)
            qsort(keep, nkeep, sizeof(*keep), entry_offset_cmp);
    }
    touched = 1;
    if (damaged)
        repair_say(r, "'%s': %zu damaged span%s skipped", pname, damaged, damaged == 1 ? "" : "s");
    r->st->chunks_dropped += dropped;
    if (nkeep) {
        /* Copy what is sound, in pack order: the same offsets give the same pack name. */
        if ((error = cairn_store_writer_new(&w, r->s)) < 0)
            goto done;
        w->skip_index = 1;
        for (size_t i = 0; i < nkeep; i++) {
            const struct cairn__pack_entry *k = &keep[i];
            if ((error = cairn_store_writer_add(w, &k->id, k->codec, &k->base, k->raw_len,
                                                map + k->offset + cairn__entry_hdr_len(k->flags),
                                                k->stored_len)) < 0)
                goto done;
        }
        pthread_rwlock_wrlock(&r->s->lock);
        r->s->loaded = 0; /* the new packs are not added: the index is reset below */
        pthread_rwlock_unlock(&r->s->lock);
        if ((error = cairn_store_writer_commit(w)) < 0)
            goto done;
        for (size_t i = 0; i < w->npublished; i++) {
            char hex[CAIRN_OID_HEXSZ + 1];
            if (cairn_oid_cmp(&w->published[i], name) == 0) {
                same = 1;
                repair_say(r, "rebuilt the index of 'packs/%s' (%zu chunk%s)", pname, nkeep,
                           nkeep == 1 ? "" : "s");
            } else {
                repair_say(r, "copied the sound chunks of 'packs/%s' to 'packs/pack-%s.pack'",
                           pname, cairn_oid_fmt(hex, &w->published[i]));
            }
        }
        r->st->packs_written += w->npublished;
    }
    if (same)
        goto done; /* the rewrite is the old pack, byte for byte: its idx is back */
    /* The new pack is durable: now the old idx goes (its chunks are served by the new one)... */
    if (has_idx || access(idx_path.ptr, F_OK) == 0) {
        const char *base = strrchr(idx_path.ptr, '/') + 1;
        if ((error = quarantine(r, base)) < 0)
            goto done;
    }
    /* ...and the old pack is moved aside, never deleted. */
    error = quarantine(r, pname);
done:
    if (touched) {
        /* Packs came and went: load the index afresh on next use (bases of later packs). */
        pthread_rwlock_wrlock(&r->s->lock);
        index_reset(r->s);
        pthread_rwlock_unlock(&r->s->lock);
    }
    if (map != MAP_FAILED)
        munmap(map, size);
    if (fd >= 0)
        close(fd);
    cairn_store_writer_free(w);
    free(keep);
    cairn_buf_release(&idx);
    cairn_buf_release(&pack_path);
    cairn_buf_release(&idx_path);
    return error;
}

int cairn_store_repair(struct cairn_store *s, cairn_problem_fn action, void *payload,
                       struct cairn_store_repair_stats *out)
{
    struct repair r;
    char **names = NULL, want[5 + CAIRN_OID_HEXSZ + 6];
    size_t n = 0;
    int error;

    memset(&r, 0, sizeof(r));
    memset(out, 0, sizeof(*out));
    r.s = s;
    r.action = action;
    r.payload = payload;
    r.st = out;
    cairn_buf_init(&r.raw, (size_t)CAIRN__CHUNK_MAX + 1);
    cairn_buf_init(&r.base, (size_t)CAIRN__CHUNK_MAX + 1);
    if ((error = ensure_loaded(s)) < 0 || (error = cairn_codec_ctx_new(&r.ctx, 0)) < 0 ||
        (error = list_packs_dir(&names, &n, s->packs_dir)) < 0)
        goto done;
    for (size_t i = 0; i < n && error >= 0; i++) {
        char hex[CAIRN_OID_HEXSZ + 1];
        cairn_oid name;

        if (cairn__pack_is_temp_name(names[i]))
            continue; /* interrupted writes: gc's to remove */
        if (cairn__pack_parse_name(&name, names[i], "pack")) {
            error = repair_pack(&r, &name, names[i]);
        } else if (cairn__pack_parse_name(&name, names[i], "idx")) {
            snprintf(want, sizeof(want), "pack-%s.pack", cairn_oid_fmt(hex, &name));
            if (!has_name(names, n, want))
                error = quarantine(&r, names[i]);
        }
    }
done:
    /* Packs came and went: load the index afresh on next use. */
    pthread_rwlock_wrlock(&s->lock);
    index_reset(s);
    pthread_rwlock_unlock(&s->lock);
    free_names(names, n);
    cairn_codec_ctx_free(r.ctx);
    cairn_buf_release(&r.raw);
    cairn_buf_release(&r.base);
    cairn_buf_release(&r.msg);
    cairn_buf_release(&r.path);
    cairn_buf_release(&r.dest);
    return error < 0 ? error : (int)(out->packs_written + out->files_moved + out->chunks_dropped);
}

/* ---- gc ----------------------------------------------------------------- */

/* Copy one entry's stored bytes, checked, from its pack into the gc writer. */
static int gc_copy(struct cairn_store *s, struct cairn_store_writer *w, const struct slot *sl,
                   struct cairn_buf *tmp)
{
    struct pack *p = s->packs[sl->pack];
    struct cairn__pack_entry e;
    size_t hl = cairn__entry_hdr_len(sl->flags);
    uint64_t total = hl + sl->stored_len + CAIRN__ENTRY_CHECK_LEN;
    const uint8_t *b;
    ssize_t n;
    int fd, error;

    if ((fd = pack_fd(s, p)) < 0)
        return fd;
    cairn_buf_clear(tmp);
    if ((error = cairn_buf_grow(tmp, total)) < 0)
        return error;
    b = (const uint8_t *)tmp->ptr;
    n = cairn_fs_pread_full(fd, tmp->ptr, total, (off_t)sl->offset);
    if (n < 0)
        return (int)n;
    if ((uint64_t)n != total)
        return corrupt(&sl->id, p, "pack is truncated");
    if (cairn__entry_header_parse(&e, b, hl, sl->offset) < 0 ||
        cairn_oid_cmp(&e.id, &sl->id) != 0 || e.stored_len != sl->stored_len ||
        e.raw_len != sl->raw_len || e.codec != sl->codec || e.flags != sl->flags ||
        cairn__entry_check_verify(b + hl + e.stored_len, b, hl, b + hl, e.stored_len) < 0)
        return corrupt(&sl->id, p, "damaged entry (run fsck)");
    return cairn_store_writer_add(w, &e.id, e.codec, &e.base, e.raw_len, b + hl, e.stored_len);
}

static void mark_chain(struct cairn_store *s, struct slot *sl)
{
    while (sl && !sl->mark) {
        sl->mark = 1;
        sl = sl->base != NO_BASE ? table_find(s, &s->bases[sl->base]) : NULL;
    }
}

static int unlink_path(const char *path)
{
    if (unlink(path) < 0 && errno != ENOENT)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot remove '%s'", path);
    return 0;
}

/*
 * Pack names are a hash of their idx entries, so gc rewriting the live part
 * of a pack can produce exactly a pack that already exists (say, left by an
 * earlier gc that was interrupted). Such a pack must not be deleted as old:
 * it is the new one.
 */
static int gc_doomed(const struct cairn_store *s, const struct cairn_store_writer *w,
                     const uint64_t *live, size_t p)
{
    if (live[p] == s->packs[p]->count)
        return 0;
    for (size_t i = 0; w && i < w->npublished; i++)
        if (cairn_oid_cmp(&w->published[i], &s->packs[p]->name) == 0)
            return 0;
    return 1;
}

static int gc_step_done(int step)
{
    if (cairn__gc_stop_after && cairn__gc_stop_after == step)
        return cairn_error_set(CAIRN_ERROR, "gc stopped after step %d (test hook)", step);
    return 0;
}

int cairn_store_gc(struct cairn_store *s, cairn_live_fn is_live, void *payload, int dry_run,
                   struct cairn_gc_stats *out)
{
    struct cairn_store_writer *w = NULL;
    struct cairn_buf tmp = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
    uint64_t *live = NULL, *live_bytes = NULL, copy_bytes = 0, stray_bytes = 0;
    char **names = NULL;
    size_t n = 0, npacks;
    int error;

    assert(is_live);
    memset(out, 0, sizeof(*out));
    if ((error = ensure_loaded(s)) < 0 || (error = list_packs_dir(&names, &n, s->packs_dir)) < 0)
        goto done;
    npacks = s->npacks;
    live = calloc(npacks + 1, sizeof(*live));
    live_bytes = calloc(npacks + 1, sizeof(*live_bytes));
    if (!live || !live_bytes) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory planning gc");
        goto done;
    }
    for (size_t i = 0; i < s->nslots; i++)
        s->slots[i].mark = 0;
    for (size_t i = 0; i < s->nslots; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->pack == EMPTY || sl->mark)
            continue;
        if ((error = is_live(&sl->id, payload)) < 0)
            goto done;
        if (error)
            mark_chain(s, sl);
        error = 0;
    }
    for (size_t i = 0; i < s->nslots; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->pack == EMPTY || !sl->mark)
            continue;
        live[sl->pack]++;
        live_bytes[sl->pack] +=
            cairn__entry_hdr_len(sl->flags) + sl->stored_len + CAIRN__ENTRY_CHECK_LEN;
        out->chunks_kept++;
    }
    /* Plan: what goes, what is rewritten. Sizes for the stats. */
    for (size_t p = 0; p < npacks; p++) {
        struct pack *pk = s->packs[p];
        out->bytes_before += pk->size;
        if (live[p] == pk->count)
            continue;
        out->chunks_removed += pk->count - live[p];
        out->packs_removed++;
        if (live[p])
            copy_bytes += live_bytes[p];
    }
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        cairn_oid name;
        char hex[CAIRN_OID_HEXSZ + 1], want[5 + CAIRN_OID_HEXSZ + 6];
        int stray = cairn__pack_is_temp_name(names[i]);

        if (!stray && cairn__pack_parse_name(&name, names[i], "pack")) {
            snprintf(want, sizeof(want), "pack-%s.idx", cairn_oid_fmt(hex, &name));
            stray = !has_name(names, n, want);
        }
        if (stray && (error = cairn_fs_join(&path, s->packs_dir, names[i])) == 0 &&
            stat(path.ptr, &st) == 0)
            stray_bytes += (uint64_t)st.st_size;
        if (error < 0)
            goto done;
    }
    /* Stray files (temp files, packs without idx) count before and are gone after. */
    out->bytes_before += stray_bytes;
    out->bytes_after = out->bytes_before - stray_bytes;
    for (size_t p = 0; p < npacks; p++)
        if (live[p] != s->packs[p]->count)
            out->bytes_after -= s->packs[p]->size;
    if (dry_run) {
        out->packs_written =
            copy_bytes ? (copy_bytes + cairn__pack_target - 1) / cairn__pack_target : 0;
        out->bytes_after += copy_bytes + out->packs_written * CAIRN__PACK_HDR_LEN;
        goto done;
    }

    /* 1. Copy the live chunks of partly dead packs into new, durable packs. */
    if (copy_bytes) {
        if ((error = cairn_store_writer_new(&w, s)) < 0)
            goto done;
        w->skip_index = 1;
        cairn_buf_init(&tmp, (size_t)CAIRN__CHUNK_MAX + 128);
        for (size_t i = 0; i < s->nslots; i++) {
            struct slot *sl = &s->slots[i];
            if (sl->pack == EMPTY || !sl->mark || live[sl->pack] == s->packs[sl->pack]->count)
                continue;
            if ((error = gc_copy(s, w, sl, &tmp)) < 0)
                goto done;
        }
        out->packs_written = w->npending + (w->pw.fd >= 0 && w->pw.count > 0);
        /* The new packs are not added to the index: it is rebuilt below. */
        s->loaded = 0;
        if ((error = cairn_store_writer_commit(w)) < 0)
            goto done;
        out->bytes_after += w->bytes;
    }
    if ((error = gc_step_done(1)) < 0)
        goto done;

    /* 2. Remove the idx of every dead or rewritten pack: its chunks are gone from view. */
    for (size_t p = 0; p < npacks; p++)
        if (gc_doomed(s, w, live, p) && (error = unlink_path(s->packs[p]->idx_path)) < 0)
            goto done;
    if ((error = cairn_fs_fsync_dir(s->packs_dir)) < 0 || (error = gc_step_done(2)) < 0)
        goto done;

    /* 3. Remove those packs, packs without an idx and temp files (all stale: we run alone). */
    for (size_t p = 0; p < npacks; p++)
        if (gc_doomed(s, w, live, p) && (error = unlink_path(s->packs[p]->path)) < 0)
            goto done;
    for (size_t i = 0; i < n; i++) {
        cairn_oid name;
        char hex[CAIRN_OID_HEXSZ + 1], want[5 + CAIRN_OID_HEXSZ + 6];
        int stray = cairn__pack_is_temp_name(names[i]);

        if (!stray && cairn__pack_parse_name(&name, names[i], "pack")) {
            snprintf(want, sizeof(want), "pack-%s.idx", cairn_oid_fmt(hex, &name));
            stray = !has_name(names, n, want);
            out->packs_removed += stray;
        }
        if (!stray)
            continue;
        if ((error = cairn_fs_join(&path, s->packs_dir, names[i])) < 0 ||
            (error = unlink_path(path.ptr)) < 0)
            goto done;
    }
    if ((error = cairn_fs_fsync_dir(s->packs_dir)) < 0)
        goto done;
done:
    if (!dry_run) {
        /* gc runs alone (exclusive repository lock): rebuild the index on next use. */
        pthread_rwlock_wrlock(&s->lock);
        index_reset(s);
        pthread_rwlock_unlock(&s->lock);
    }
    cairn_store_writer_free(w);
    free_names(names, n);
    free(live);
    free(live_bytes);
    cairn_buf_release(&tmp);
    cairn_buf_release(&path);
    return error;
}

/* ---- stats -------------------------------------------------------------- */

int cairn_store_stats(struct cairn_store *s, struct cairn_store_stats *out)
{
    int error;

    memset(out, 0, sizeof(*out));
    if ((error = ensure_loaded(s)) < 0)
        return error;
    pthread_rwlock_rdlock(&s->lock);
    out->chunks = s->count;
    out->packs = s->npacks;
    for (size_t i = 0; i < s->npacks; i++)
        out->stored_bytes += s->packs[i]->size;
    for (size_t i = 0; i < s->nslots; i++)
        if (s->slots[i].pack != EMPTY)
            out->raw_bytes += s->slots[i].raw_len;
    pthread_rwlock_unlock(&s->lock);
    return 0;
}
