/*
 * Object-store transport for remotes: one interface, two backends
 * (file:///path and s3://bucket/prefix), chosen from the URL. push, pull
 * and clone sit above this and decide which objects to move; this layer
 * only moves named objects ("keys", relative to the remote's prefix)
 * reliably, in parallel and with bounded memory.
 *
 * Keys are '/'-separated relative paths checked by cairn_fs_path_valid()
 * (no leading '/', no '.' or '..' components), at most 1024 bytes.
 *
 * Objects are immutable by convention: S3-compatible stores such as Swift do
 * not implement conditional create (If-None-Match: *), so mutable state
 * (refs) must be written as per-writer immutable objects whose names carry
 * the writer and a sequence number, and readers list the prefix and pick
 * the newest (docs/remotes.md).
 *
 * Thread safety: a struct cairn_remote is used by one thread at a time;
 * parallelism comes from cairn_remote_batch() and from multipart uploads,
 * which run many transfers at once on the calling thread. The byte counters
 * may be read from any thread.
 */
#ifndef CAIRN_REMOTE_BACKEND_H
#define CAIRN_REMOTE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAIRN_REMOTE_KEY_MAX             1024
#define CAIRN_REMOTE_DEFAULT_CONCURRENCY 8
#define CAIRN_REMOTE_DEFAULT_PART_SIZE   ((uint64_t)16 << 20)
#define CAIRN_REMOTE_DEFAULT_THRESHOLD   ((uint64_t)64 << 20)
/* Read to the end of the object in cairn_remote_get_range(). */
#define CAIRN_REMOTE_TO_END UINT64_MAX

struct cairn_remote;

/*
 * Options; a zeroed struct (or NULL) means defaults. Strings are copied.
 * For S3, anything left NULL comes from the environment:
 * endpoint from CAIRN_S3_ENDPOINT or AWS_ENDPOINT_URL (else AWS,
 * https://s3.REGION.amazonaws.com), region from AWS_REGION,
 * AWS_DEFAULT_REGION or the profile's ~/.aws/config (else us-east-1),
 * credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN or the AWS_PROFILE (else "default") section of
 * AWS_SHARED_CREDENTIALS_FILE (else ~/.aws/credentials).
 */
struct cairn_remote_opts {
    const char *endpoint; /* "http://127.0.0.1:8080", "https://s3.example.com" */
    const char *region;
    const char *profile;
    int path_style;     /* 0 auto (path style for a custom endpoint), 1 path, -1 virtual host */
    int concurrency;    /* parallel transfers; 0 = CAIRN_REMOTE_DEFAULT_CONCURRENCY */
    uint64_t part_size; /* multipart part size; 0 = 16 MiB (S3 needs >= 5 MiB) */
    uint64_t multipart_threshold; /* put_file above this goes multipart; 0 = 64 MiB */
    int max_retries;              /* per request on 5xx, 429, timeouts; 0 = 5, -1 = none */
    long timeout_s;               /* abort a transfer stalled this long; 0 = 60 */
};

/*
 * Open the remote named by `url` ("file:///abs/path" or
 * "s3://bucket[/prefix]"). Nothing is contacted yet. Any other URL is
 * CAIRN_EINVALID with a message saying what is allowed; an S3 remote without
 * credentials is CAIRN_EINVALID too. Free with cairn_remote_free().
 */
int cairn_remote_open(struct cairn_remote **out, const char *url,
                      const struct cairn_remote_opts *opts);
void cairn_remote_free(struct cairn_remote *r);

/* The URL it was opened with (without secrets; we never put them there). */
const char *cairn_remote_url(const struct cairn_remote *r);

/*
 * Store `len` bytes as `key`, replacing any object of that name; the object
 * appears whole or not at all.
 */
int cairn_remote_put_buf(struct cairn_remote *r, const char *key, const void *data, size_t len);

/*
 * Store bytes [off, off+len) of file descriptor `fd` as `key`, streaming
 * (pread; the fd's offset is untouched). Above the multipart threshold S3
 * uses a multipart upload of part_size parts sent in parallel; when an
 * earlier upload of the same key was interrupted, parts already on the
 * server with the right size and MD5 ETag are kept, not sent again.
 */
int cairn_remote_put_file(struct cairn_remote *r, const char *key, int fd, uint64_t off,
                          uint64_t len);

/*
 * Receive object bytes. Called with consecutive pieces; return 0 to go on,
 * negative (a CAIRN_E* code, after cairn_error_set) to abort the transfer.
 */
typedef int (*cairn_remote_sink_fn)(void *payload, const void *data, size_t len);

/*
 * Read `len` bytes at `off` of `key` (CAIRN_REMOTE_TO_END for the rest) into
 * `sink`. CAIRN_ENOTFOUND if the object is absent; CAIRN_ECORRUPT if it is
 * shorter than asked or the server sends a different length. A transfer
 * that breaks is retried from the first byte not yet delivered, so the sink
 * sees every byte exactly once.
 */
int cairn_remote_get_range(struct cairn_remote *r, const char *key, uint64_t off, uint64_t len,
                           cairn_remote_sink_fn sink, void *payload);

/* As cairn_remote_get_range(), writing to `fd` at `fd_off` (pwrite). */
int cairn_remote_get_to_fd(struct cairn_remote *r, const char *key, uint64_t off, uint64_t len,
                           int fd, uint64_t fd_off);

/* Size of `key` into `*size_out`; CAIRN_ENOTFOUND when absent. */
int cairn_remote_head(struct cairn_remote *r, uint64_t *size_out, const char *key);

/*
 * Call `fn` for every key that starts with `prefix` ("" for all), in
 * lexicographic byte order, with its size. A negative return from `fn`
 * stops the listing and is returned. S3 pages with ListObjectsV2
 * continuation tokens, so memory does not grow with the number of keys.
 */
typedef int (*cairn_remote_list_fn)(void *payload, const char *key, uint64_t size);
int cairn_remote_list(struct cairn_remote *r, const char *prefix, cairn_remote_list_fn fn,
                      void *payload);

/* Delete `key`; deleting an absent key succeeds. */
int cairn_remote_delete(struct cairn_remote *r, const char *key);

/* One transfer of a batch. The caller fills the inputs; the batch fills the outputs. */
enum cairn_remote_op {
    CAIRN_REMOTE_PUT_BUF,  /* data, len */
    CAIRN_REMOTE_PUT_FILE, /* fd, off, len */
    CAIRN_REMOTE_GET_FD,   /* off, len (or CAIRN_REMOTE_TO_END), fd, fd_off */
    CAIRN_REMOTE_HEAD,     /* result in size */
    CAIRN_REMOTE_DELETE,
};

struct cairn_remote_xfer {
    enum cairn_remote_op op;
    const char *key;
    const void *data;
    int fd;
    uint64_t off, len, fd_off;
    /* outputs */
    int result;      /* 0 or a CAIRN_E* code */
    uint64_t size;   /* HEAD: object size; GET_FD: bytes written */
    char error[512]; /* the message when result < 0 */
};

/*
 * Run `n` transfers, up to `concurrency` at a time, and wait for all of
 * them. Every transfer runs even if others fail. Returns 0 when all
 * succeeded, else the code of the first failure in array order (whose
 * message is also left in the thread's error slot). A HEAD of an absent
 * key counts as a failure (CAIRN_ENOTFOUND) so callers can tell.
 */
int cairn_remote_batch(struct cairn_remote *r, struct cairn_remote_xfer *xfers, size_t n);

/* Bytes of object data sent and received since open (payload, not HTTP overhead). */
void cairn_remote_stats(const struct cairn_remote *r, uint64_t *sent_out, uint64_t *received_out);

/*
 * Parse a remote URL without opening it. `*scheme_out` is "file" or "s3";
 * `*a_out` is the directory (file) or bucket (s3); `*b_out` the prefix ("" or
 * ending in '/'; always "" for file). Heap strings the caller frees. Bucket
 * names follow S3's rules: 3-63 of [a-z0-9.-], starting and ending with a
 * letter or digit. Anything else is CAIRN_EINVALID.
 */
int cairn_remote_parse_url(char **scheme_out, char **a_out, char **b_out, const char *url);

/*
 * For the backends only (backend.c, file.c, s3.c): the vtable and the
 * common head of every remote. backend.c validates keys and ranges before
 * calling an op, so the ops may assume valid input.
 */
struct cairn__remote_ops {
    int (*put_buf)(struct cairn_remote *r, const char *key, const void *data, size_t len);
    int (*put_file)(struct cairn_remote *r, const char *key, int fd, uint64_t off, uint64_t len);
    int (*get)(struct cairn_remote *r, const char *key, uint64_t off, uint64_t len,
               cairn_remote_sink_fn sink, void *payload);
    int (*head)(struct cairn_remote *r, uint64_t *size_out, const char *key);
    int (*list)(struct cairn_remote *r, const char *prefix, cairn_remote_list_fn fn, void *payload);
    int (*del)(struct cairn_remote *r, const char *key);
    /* NULL: backend.c runs the transfers one after the other. */
    int (*batch)(struct cairn_remote *r, struct cairn_remote_xfer *xfers, size_t n);
    void (*free)(struct cairn_remote *r);
};

struct cairn_remote {
    const struct cairn__remote_ops *ops;
    char *url;
    struct cairn_remote_opts opts; /* defaults filled in; string fields not kept (NULL) */
    uint64_t sent, received;       /* updated with __atomic builtins */
};

int cairn__remote_file_open(struct cairn_remote **out, const char *dir);
int cairn__remote_s3_open(struct cairn_remote **out, const char *bucket, const char *prefix,
                          const struct cairn_remote_opts *opts);
/* Count payload bytes (thread-safe). */
void cairn__remote_count(struct cairn_remote *r, uint64_t sent, uint64_t received);
/* Run one batch transfer through the single-object ops, filling result/error. */
void cairn__remote_xfer_run(struct cairn_remote *r, struct cairn_remote_xfer *x);
/* Check a key: cairn_fs_path_valid() and at most CAIRN_REMOTE_KEY_MAX bytes. */
int cairn__remote_key_valid(const char *key);

#endif
