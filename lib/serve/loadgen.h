/*
 * The load generator behind `cairn loadgen` (issue #9): OIP v2 inference
 * requests for the rows of a labelled CSV table, one row per request,
 * cycling, at a fixed rate for a fixed time, with the true labels posted to
 * a feedback endpoint after a delay, as the demo and the rollout tests need
 * to drive `cairn serve` with live accuracy.
 *
 * Pacing is open-loop: request i is due at start + i / rate whatever the
 * server does, so a slow server sees the same offered load (a closed loop
 * would back off and hide the slowness). When `concurrency` requests are
 * already in flight a due request is not sent and counts as skipped.
 *
 * Memory is bounded: the table (capped at 2^28 values), a fixed pool of
 * request slots, a ring of at most max_pending_feedback labels waiting for
 * their delay (beyond it labels are dropped and counted), a log-bucket
 * latency histogram per served version (2% resolution, about 4 KiB), at
 * most 32 versions.
 *
 * cairn_loadgen_run() blocks the calling thread on a private libuv loop and
 * prints nothing. Total run time is at most the duration plus the larger of
 * the request timeout and the feedback delay, plus a second.
 */
#ifndef CAIRN_SERVE_LOADGEN_H
#define CAIRN_SERVE_LOADGEN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAIRN_LOADGEN_MAX_VERSIONS 32
#define CAIRN_LOADGEN_MAX_STATUSES 16

struct cairn_loadgen_opts {
    const char *url;             /* "http://HOST:PORT" (with `model`) or a /v2/models/NAME URL */
    const char *model;           /* may be NULL with a /v2/models/NAME URL */
    const char *data_path;       /* CSV/TSV file or directory (lib/serve/oipclient.h) */
    const char *label_column;    /* NULL: "label" */
    const char *input_name;      /* NULL: "input" */
    double rate;                 /* requests per second, 0 < rate <= 100000 */
    double duration_s;           /* 0 < duration <= 86400 */
    bool feedback;               /* post labels after feedback_delay_s */
    double feedback_delay_s;     /* 0 .. 3600 */
    const char *feedback_url;    /* NULL: the URL's origin + /api/v1/feedback */
    const char *token;           /* sent as "Authorization: Bearer TOKEN" with feedback; or NULL */
    const char *sticky_header;   /* header carrying a client key "user-K", or NULL */
    size_t sticky_keys;          /* distinct keys K = request number mod this; 0: 100 */
    size_t concurrency;          /* requests in flight at most; 0: 256 */
    uint64_t timeout_ms;         /* per request; 0: 10000 */
    size_t max_pending_feedback; /* 0: 65536 */
    bool match_index;            /* compare labels with the `label` index (as eval) */
    volatile sig_atomic_t *stop; /* non-zero stops early (a signal handler may set it); or NULL */
};

void cairn_loadgen_opts_init(struct cairn_loadgen_opts *o);

struct cairn_loadgen_status {
    int status; /* HTTP status; 0: no answer (connect failure, reset, timeout) */
    uint64_t count;
};

/* Figures for one served version ("" for requests that got no answer). */
struct cairn_loadgen_version {
    char *version;     /* X-Cairn-Version, else the answer's model_version, else "unknown" */
    uint64_t requests; /* answers (and failures) attributed to this version */
    uint64_t ok;       /* 200 answers with a parsable prediction */
    size_t nstatus;
    struct cairn_loadgen_status status[CAIRN_LOADGEN_MAX_STATUSES]; /* non-200 outcomes */
    uint64_t bad_body;                     /* 200 answers without a usable prediction */
    uint64_t correct;                      /* ok answers whose prediction equals the row's label */
    double accuracy;                       /* correct / ok; 0 when ok is 0 */
    double latency_p50_ms, latency_p99_ms; /* over every answer of this version */
    uint32_t hist[1024];                   /* latency buckets (internal) */
};

struct cairn_loadgen_report {
    char *url;          /* infer URL */
    char *feedback_url; /* or NULL */
    double rate, duration_s, elapsed_s;
    uint64_t scheduled; /* requests that fell due */
    uint64_t sent;
    uint64_t skipped;   /* due while `concurrency` were in flight */
    uint64_t answered;  /* any HTTP answer */
    uint64_t no_answer; /* transport failures */
    uint64_t fb_queued, fb_sent, fb_ok, fb_failed, fb_dropped, fb_unsent, fb_no_id;
    char *fb_first_error;  /* or NULL */
    uint64_t sticky_split; /* sticky keys answered by more than one version */
    size_t nversions;
    struct cairn_loadgen_version *versions;
};

/*
 * Run the load. Returns 0 when it ran (failed requests are counted, not
 * errors) or a negative code for a bad option or URL (CAIRN_EINVALID), a
 * dataset error, or out of memory. `*out` is a new report freed with
 * cairn_loadgen_report_free().
 */
int cairn_loadgen_run(struct cairn_loadgen_report **out, const struct cairn_loadgen_opts *opts);
void cairn_loadgen_report_free(struct cairn_loadgen_report *r);

/* The report as JSON (docs/eval.md, "loadgen"); *out malloc'd, owned by the caller. */
int cairn_loadgen_report_json(char **out, const struct cairn_loadgen_report *r);

/* Internal, for tests: histogram bucket of a latency and a bucket's representative value. */
size_t cairn__loadgen_bucket(double ms);
double cairn__loadgen_bucket_ms(size_t b);

#endif
