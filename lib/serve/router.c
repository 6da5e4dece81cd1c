/*
 * The `cairn serve` daemon (router.h): data plane, upstreams and their
 * child processes, the rollout engine, feedback, the control API and
 * /metrics, all on one libuv loop.
 *
 * Hot path (POST /v2/models/NAME/infer): find the model (a short list), draw
 * the version (rollout.h), forward on a pooled keep-alive connection, and on
 * the answer count it, remember its argmax for feedback and copy it back with
 * X-Cairn-Version and X-Request-Id. Per request that is one small context
 * taken from a free list and no other allocation in the router.
 *
 * Upstreams are versions in use: the stable one, a candidate during a
 * rollout, and the previous stable kept warm after a promotion or rollback
 * for an instant way back. Each is either bound to a URL by the config or a
 * `cairn serve-model` child that is started, watched (its "serving ... on
 * ADDR" line, then /v2/health/ready) and restarted when it dies. An upstream
 * dropped from use is retired: its child gets SIGTERM (serve-model answers
 * what is under way first) and the struct is freed once no request and no
 * handle refers to it.
 *
 * Registry writes (rollout state, alias moves, audit events) and reads the
 * control API needs (refs, aliases, tokens) run as jobs on the thread pool,
 * one at a time in submission order, each with its own repository handle.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cairn/serve.h"
#include "serve/http.h"
#include "serve/limits.h"
#include "serve/livewin.h"
#include "serve/metrics.h"
#include "serve/oip.h"
#include "serve/plan.h"
#include "serve/rollout.h"
#include "serve/router.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/yaml.h"

#define MAX_MODELS       64
#define MAX_BINDS        32
#define TOKEN_CACHE      64
#define TOKEN_TTL_MS     5000
#define READY_POLL_MS    50
#define DEFAULT_FEEDBACK 65536
#define KILL_GRACE_MS    5000
#define DRIFT_REFRESH_MS 2000

struct router;
struct model;

struct vstats {
    struct cairn_status_counts codes;
    struct cairn_prom_hist hist;
    struct cairn_window total; /* since the upstream came into use */
    uint64_t upstream_errors;  /* unreachable: no HTTP answer */
};

struct upstream {
    struct router *r;
    struct model *m;
    cairn_oid id;
    int number;
    char label[80]; /* "model@vN" */
    char addr[80];  /* "HOST:PORT"; "" until known */
    int bound, ready, retired, refs, restarts, polling;
    int down;           /* taken out of rotation by failed health probes */
    int probe_fails;    /* failed probes in a row */
    uint64_t probe_due; /* loop time of the next probe of a ready (or down) upstream */
    /* child */
    uv_process_t proc;
    uv_pipe_t pipe;
    uv_timer_t timer;
    int proc_open, pipe_open, timer_open, pid;
    char line[512];
    size_t linelen;
    int got_addr;
    struct vstats st;
    struct cairn_window win; /* the analysis window */
};

enum phase {
    PH_NONE,
    PH_RUNNING,
    PH_PAUSED,
    PH_PROMOTED,
    PH_ROLLED_BACK,
    PH_ABORTED,
    PH_CONCLUDED
};
static const char *const phase_names[] = { "none",        "running", "paused",   "promoted",
                                           "rolled_back", "aborted", "concluded" };

struct model {
    struct router *r;
    uint32_t index;
    char name[65];
    char alias[65];
    struct upstream *stable, *candidate, *previous;
    int weight_bp;
    int shadow; /* mirror to the candidate */
    /* rollout */
    enum phase phase;
    struct cairn_plan plan;
    char *plan_text;
    int step, failures, step_passed;
    uint64_t step_base_ms, step_started; /* elapsed before the last (re)start; loop time */
    long long started_ns;
    char report[512]; /* the last analysis */
    char *reason;
    char *forced;  /* started past the release check: the reason given, else NULL */
    char *policy;  /* the policy the release check requires (rollout start --policy), else NULL */
    int promoting; /* a promotion job is under way: the rollout waits for its answer */
    uv_timer_t tick;
    int tick_open;
    struct job *state_save; /* queued, not started, the model's last save, of the state alone */
    /* live drift: the input window; the reference dataset from the config */
    struct cairn_livewin *inputs;
    char reference[256];
    /* config */
    int nbinds;
    int bind_number[MAX_BINDS];
    char bind_addr[MAX_BINDS][80];
    /* the file serve-model children serve (--file): for every version, or per version */
    char file[256];
    int nfiles;
    int file_number[MAX_BINDS];
    char file_path[MAX_BINDS][256];
};

struct token_entry {
    cairn_oid hash;
    struct cairn_token_info info; /* role CAIRN_ROLE_NONE: not a token */
    uint64_t expires;
};

struct job;

struct router {
    uv_loop_t *loop;
    const struct cairn_router_opts *o;
    struct cairn_http_server *server, *control;
    struct cairn_http_client *client;
    uv_signal_t sigint, sigterm;
    uv_timer_t kill_timer;
    int stopping;
    struct model *models[MAX_MODELS];
    size_t nmodels;
    struct cairn_feedback *feedback;
    uint64_t rng;
    uint64_t timeout_ms;
    char default_alias[65];
    struct token_entry tokens[TOKEN_CACHE];
    size_t token_next;
    struct job *jobs_head, *jobs_tail;
    int job_running;
    size_t njobs; /* queued or running */
    struct fwd *free_fwd;
    uint64_t feedback_unknown;
    uint64_t inflight; /* client requests of the data plane not answered yet */
    /* limits and health checks (config `limits:`, `health:`, `connect_timeout:`) */
    struct cairn_http_server_opts sopts;
    struct cairn_http_client_opts copts;
    uint64_t health_interval_ms, health_timeout_ms;
    int health_failures;
    size_t mirror_bytes, mirror_cap; /* shadow copies of request bodies held */
    uint64_t mirror_skipped;
    uv_timer_t drain_timer;
    uint64_t drain_started;
    uv_timer_t drift_timer; /* live drift PSI refresh */
};

static void logf_(struct router *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct router *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (!r->o->log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->o->log(msg, r->o->arg);
}

/* ======================================================================
 * Config
 * ====================================================================== */

struct config {
    char listen[128], control[128];
    uint64_t timeout_ms;
    size_t feedback_size;
    char alias[65];
    struct model *models[MAX_MODELS];
    size_t nmodels;
};

static int bind_addr_from_url(char *out, size_t cap, const struct cairn_yaml_node *n)
{
    struct sockaddr_storage ss;
    const char *url, *p, *slash;
    int error;
    if ((error = cairn_yaml_str(&url, n)) < 0)
        return error;
    if (strncmp(url, "http://", 7))
        return cairn_yaml_error(n->doc, n, "expected an http://HOST:PORT URL");
    p = url + 7;
    slash = strchr(p, '/');
    if ((slash && strcmp(slash, "/")) || (size_t)(slash ? slash - p : (long)strlen(p)) >= cap)
        return cairn_yaml_error(n->doc, n, "expected an http://HOST:PORT URL without a path");
    snprintf(out, cap, "%.*s", (int)(slash ? slash - p : (long)strlen(p)), p);
    if (cairn_http_parse_addr(&ss, out) < 0)
        return cairn_yaml_error(n->doc, n, "bad address '%s' (a numeric HOST:PORT)", out);
    return 0;
}

/* The string at `key` of `map`, if present, into out (cut to cap - 1 bytes). */
static int copy_str(char *out, size_t cap, const struct cairn_yaml_node *map, const char *key)
{
    const struct cairn_yaml_node *v = cairn_yaml_map_get(map, key);
    const char *s;
    int error;
    if (!v)
        return 0;
    if ((error = cairn_yaml_str(&s, v)) < 0)
        return error;
    snprintf(out, cap, "%s", s);
    return 0;
}

/* A config key naming a version, "v3"; 0 if it is not one. */
static int version_key(const char *k)
{
    char *end;
    long num = k[0] == 'v' ? strtol(k + 1, &end, 10) : 0;
    return k[0] == 'v' && num >= 1 && !*end && num <= 1000000000 ? (int)num : 0;
}

/* A `file:` value: a relative path inside the version, as serve-model --file takes. */
static int file_from_node(char *out, size_t cap, const struct cairn_yaml_node *n)
{
    const char *s;
    int error;
    if ((error = cairn_yaml_str(&s, n)) < 0)
        return error;
    if (strlen(s) >= cap || cairn_fs_path_valid(s) < 0) {
        cairn_error_clear();
        return cairn_yaml_error(n->doc, n,
                                "file must be a relative path inside the version, such as "
                                "'m/model.safetensors'");
    }
    snprintf(out, cap, "%s", s);
    return 0;
}

/*
 * A map from version keys ("v3") to values, the `files:` and `bind:` of a
 * model: appends each entry's number to numbers[] and its value, parsed by
 * `parse` into a slot of `stride` bytes, to values, after *count entries.
 */
static int version_map(const struct cairn_yaml_node *b, const char *key, const char *plural,
                       int *numbers, char *values, size_t stride, int *count,
                       int (*parse)(char *out, size_t cap, const struct cairn_yaml_node *n))
{
    int error;
    if ((error = cairn_yaml_expect(b, CAIRN_YAML_MAP)) < 0)
        return error;
    for (size_t j = 0; j < b->count; j++) {
        int num = version_key(b->keys[j]->str);
        if (!num)
            return cairn_yaml_error(b->doc, b->keys[j], "%s keys are version numbers such as 'v3'",
                                    key);
        if (*count >= MAX_BINDS)
            return cairn_yaml_error(b->doc, b->keys[j], "more than %d %s", MAX_BINDS, plural);
        if ((error = parse(values + (size_t)*count * stride, stride, b->items[j])) < 0)
            return error;
        numbers[(*count)++] = num;
    }
    return 0;
}

/*
 * Defaults of what `limits:`, `health:` and `connect_timeout:` set: the HTTP
 * server's caps (http.h) with 64 MiB bodies, probes every second that fail
 * after 1 s, two failures in a row take an upstream out of rotation.
 */
static void router_defaults(struct router *r)
{
    cairn_http_server_opts_init(&r->sopts);
    r->sopts.max_body = 64u << 20;
    cairn_http_client_opts_init(&r->copts);
    r->health_interval_ms = 1000;
    r->health_timeout_ms = 1000;
    r->health_failures = 2;
}

/* A byte count: an integer, or one with a KiB, MiB or GiB suffix ("256MiB"). */
static int yaml_bytes(size_t *out, const struct cairn_yaml_node *n)
{
    const char *s;
    char *end;
    unsigned long long v;
    int shift = 0, error;
    if ((error = cairn_yaml_str(&s, n)) < 0)
        return error;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (!strcmp(end, "KiB"))
        shift = 10;
    else if (!strcmp(end, "MiB"))
        shift = 20;
    else if (!strcmp(end, "GiB"))
        shift = 30;
    else if (*end)
        end = NULL;
    if (!end || end == s || *s == '-' || errno || v > (1ULL << 40) >> shift)
        return cairn_yaml_error(n->doc, n,
                                "expected a byte count up to 1TiB such as 65536 or "
                                "'64MiB' (suffixes KiB, MiB, GiB)");
    *out = (size_t)(v << shift);
    return 0;
}

/* An integer in lo..hi at `key` of `map`, if present. */
static int yaml_count(size_t *out, const struct cairn_yaml_node *map, const char *key, long long lo,
                      long long hi)
{
    const struct cairn_yaml_node *v = cairn_yaml_map_get(map, key);
    long long n;
    int error;
    if (!v)
        return 0;
    if ((error = cairn_yaml_int(&n, v)) < 0)
        return error;
    if (n < lo || n > hi)
        return cairn_yaml_error(v->doc, v, "%s must be from %lld to %lld", key, lo, hi);
    *out = (size_t)n;
    return 0;
}

/* A duration at `key` of `map`, if present, of at least 1 ms. */
static int yaml_ms(uint64_t *out, const struct cairn_yaml_node *map, const char *key)
{
    const struct cairn_yaml_node *v = cairn_yaml_map_get(map, key);
    int error;
    if (!v)
        return 0;
    if ((error = cairn_yaml_duration_ms(out, v)) < 0)
        return error;
    if (!*out)
        return cairn_yaml_error(v->doc, v, "%s must be at least 1ms", key);
    return 0;
}

/* `limits:` (what clients may make the daemon hold) and `health:` (probes). */
static int config_limits(struct router *r, const struct cairn_yaml_node *root)
{
    static const char *const lkeys[] = {
        "connections", "client_connections", "buffered",     "client_buffered",
        "body",        "header_timeout",     "body_timeout", "idle_timeout",
        NULL
    };
    static const char *const hkeys[] = { "interval", "timeout", "failures", NULL };
    struct cairn_http_server_opts *o = &r->sopts;
    const struct cairn_yaml_node *l = cairn_yaml_map_get(root, "limits"),
                                 *h = cairn_yaml_map_get(root, "health"), *v;
    size_t n = 0;
    int error;

    if ((v = cairn_yaml_map_get(root, "connect_timeout")) &&
        (error = yaml_ms(&r->copts.connect_timeout_ms, root, "connect_timeout")) < 0)
        return error;
    if (l) {
        if ((error = cairn_yaml_expect(l, CAIRN_YAML_MAP)) < 0 ||
            (error = cairn_yaml_check_keys(l, lkeys)) < 0 ||
            (error = yaml_count(&o->max_conns, l, "connections", 1, 65536)) < 0 ||
            (error = yaml_count(&o->max_client_conns, l, "client_connections", 0, 65536)) < 0 ||
            (error = yaml_ms(&o->header_timeout_ms, l, "header_timeout")) < 0 ||
            (error = yaml_ms(&o->body_timeout_ms, l, "body_timeout")) < 0 ||
            (error = yaml_ms(&o->idle_timeout_ms, l, "idle_timeout")) < 0)
            return error;
        if ((v = cairn_yaml_map_get(l, "buffered")) &&
            (error = yaml_bytes(&o->max_buffered, v)) < 0)
            return error;
        if ((v = cairn_yaml_map_get(l, "client_buffered")) &&
            (error = yaml_bytes(&o->max_client_buffered, v)) < 0)
            return error;
        if ((v = cairn_yaml_map_get(l, "body")) && (error = yaml_bytes(&o->max_body, v)) < 0)
            return error;
        if (!o->max_body || o->max_body > (1u << 30))
            return cairn_yaml_error(l->doc, v ? v : l, "body must be from 1 byte to 1GiB");
        /* One request at the body limit must fit every budget, or it could never pass. */
        if ((o->max_buffered && o->max_buffered < o->max_body) ||
            (o->max_client_buffered && o->max_client_buffered < o->max_body))
            return cairn_yaml_error(l->doc, l,
                                    "buffered and client_buffered must be at least body (%zu "
                                    "bytes), or 0 for no cap",
                                    o->max_body);
    }
    if (h) {
        if ((error = cairn_yaml_expect(h, CAIRN_YAML_MAP)) < 0 ||
            (error = cairn_yaml_check_keys(h, hkeys)) < 0 ||
            (error = yaml_ms(&r->health_interval_ms, h, "interval")) < 0 ||
            (error = yaml_ms(&r->health_timeout_ms, h, "timeout")) < 0 ||
            (error = yaml_count(&n, h, "failures", 1, 100)) < 0)
            return error;
        if (n)
            r->health_failures = (int)n;
    }
    return 0;
}

static struct model *model_alloc(struct router *r, const char *name)
{
    struct model *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->r = r;
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->alias, sizeof(m->alias), "%s", r->default_alias);
    if (cairn_livewin_new(&m->inputs, r->loop, name, r->o->log, r->o->arg) < 0) {
        free(m);
        return NULL;
    }
    return m;
}

static int config_load(struct router *r, struct config *c, const char *path)
{
    static const char *const top[] = {
        "listen", "control_listen", "timeout", "feedback_size",   "alias",
        "models", "limits",         "health",  "connect_timeout", NULL
    };
    static const char *const mkeys[] = { "alias", "bind", "reference", "file", "files", NULL };
    struct cairn_yaml_doc *doc = NULL;
    const struct cairn_yaml_node *root, *v;
    const char *s;
    int error = 0;

    if ((error = cairn_yaml_load_file(&doc, path, NULL)) < 0)
        return error;
    if (!(root = cairn_yaml_root(doc)))
        goto done;
    if ((error = cairn_yaml_expect(root, CAIRN_YAML_MAP)) < 0 ||
        (error = cairn_yaml_check_keys(root, top)) < 0)
        goto done;
    if ((error = copy_str(c->listen, sizeof(c->listen), root, "listen")) < 0 ||
        (error = copy_str(c->control, sizeof(c->control), root, "control_listen")) < 0)
        goto done;
    if ((v = cairn_yaml_map_get(root, "timeout")) &&
        (error = cairn_yaml_duration_ms(&c->timeout_ms, v)) < 0)
        goto done;
    if ((error = config_limits(r, root)) < 0)
        goto done;
    if ((v = cairn_yaml_map_get(root, "feedback_size"))) {
        long long n;
        if ((error = cairn_yaml_int(&n, v)) < 0)
            goto done;
        if (n < 1 || n > (1 << 24)) {
            error = cairn_yaml_error(doc, v, "feedback_size must be from 1 to 16777216");
            goto done;
        }
        c->feedback_size = (size_t)n;
    }
    if ((v = cairn_yaml_map_get(root, "alias"))) {
        if ((error = cairn_yaml_str(&s, v)) < 0)
            goto done;
        if (cairn_name_valid(s, "alias") < 0) {
            error = cairn_yaml_error(doc, v, "%s", cairn_error_last());
            goto done;
        }
        snprintf(c->alias, sizeof(c->alias), "%s", s);
        snprintf(r->default_alias, sizeof(r->default_alias), "%s", s);
    }
    if ((v = cairn_yaml_map_get(root, "models"))) {
        if ((error = cairn_yaml_expect(v, CAIRN_YAML_MAP)) < 0)
            goto done;
        for (size_t i = 0; i < v->count; i++) {
            const struct cairn_yaml_node *mn = v->items[i], *b, *a;
            struct model *m;
            if (c->nmodels >= MAX_MODELS) {
                error = cairn_yaml_error(doc, v->keys[i], "more than %d models", MAX_MODELS);
                goto done;
            }
            if (cairn_name_valid(v->keys[i]->str, "model name") < 0) {
                error = cairn_yaml_error(doc, v->keys[i], "%s", cairn_error_last());
                goto done;
            }
            if (!(m = model_alloc(r, v->keys[i]->str))) {
                error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
                goto done;
            }
            c->models[c->nmodels++] = m;
            if (cairn_yaml_is_null(mn))
                continue;
            if ((error = cairn_yaml_expect(mn, CAIRN_YAML_MAP)) < 0 ||
                (error = cairn_yaml_check_keys(mn, mkeys)) < 0)
                goto done;
            if ((error = copy_str(m->alias, sizeof(m->alias), mn, "alias")) < 0)
                goto done;
            if ((a = cairn_yaml_map_get(mn, "reference"))) {
                if ((error = cairn_yaml_str(&s, a)) < 0)
                    goto done;
                if (!*s || strlen(s) >= sizeof(m->reference)) {
                    error = cairn_yaml_error(doc, a, "reference must be a dataset REF or path");
                    goto done;
                }
                snprintf(m->reference, sizeof(m->reference), "%s", s);
            }
            if ((a = cairn_yaml_map_get(mn, "file")) &&
                (error = file_from_node(m->file, sizeof(m->file), a)) < 0)
                goto done;
            if ((b = cairn_yaml_map_get(mn, "files")) &&
                (error = version_map(b, "files", "files", m->file_number, m->file_path[0],
                                     sizeof(m->file_path[0]), &m->nfiles, file_from_node)) < 0)
                goto done;
            if ((b = cairn_yaml_map_get(mn, "bind")) &&
                (error = version_map(b, "bind", "binds", m->bind_number, m->bind_addr[0],
                                     sizeof(m->bind_addr[0]), &m->nbinds, bind_addr_from_url)) < 0)
                goto done;
        }
    }
done:
    cairn_yaml_doc_free(doc);
    return error;
}

/* ======================================================================
 * Upstreams
 * ====================================================================== */

static void upstream_spawn(struct upstream *u);
static void model_save(struct model *m, const char *action, const char *details);

static void upstream_maybe_free(struct upstream *u)
{
    if (u->retired && u->refs == 0 && !u->proc_open && !u->pipe_open && !u->timer_open)
        free(u);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct upstream *u = h->data;
    u->timer_open = 0;
    upstream_maybe_free(u);
}

static void on_pipe_closed(uv_handle_t *h)
{
    struct upstream *u = h->data;
    u->pipe_open = 0;
    upstream_maybe_free(u);
}

static void on_proc_closed(uv_handle_t *h)
{
    struct upstream *u = h->data;
    u->proc_open = 0;
    upstream_maybe_free(u);
}

static void upstream_unref(struct upstream *u)
{
    u->refs--;
    upstream_maybe_free(u);
}

/*
 * A health probe's answer. A starting upstream enters rotation at its first
 * 200; a ready one leaves it after health_failures failed probes in a row
 * (no 200 within health_timeout_ms: a hung process answers nothing), and
 * the requests it holds are failed at once, so they are retried on the
 * stable version or answered 502 instead of waiting for their timeout. It
 * comes back at its next 200.
 */
static void on_ready_reply(int error, const struct cairn_http_resp *resp, void *arg)
{
    struct upstream *u = arg;
    struct router *r = u->r;
    u->polling = 0;
    if (u->retired || r->stopping) {
        upstream_unref(u);
        return;
    }
    if (!error && resp->status == 200) {
        u->probe_fails = 0;
        if (!u->ready) {
            u->ready = 1;
            u->restarts = 0;
            if (u->down)
                logf_(r, "%s back in rotation: it answers its health probe again", u->label);
            else
                logf_(r, "%s ready on %s", u->label, u->addr);
            u->down = 0;
        }
    } else if (u->ready && ++u->probe_fails >= r->health_failures) {
        u->ready = 0;
        u->down = 1;
        logf_(r, "%s out of rotation: %d health probes in a row failed (%s)", u->label,
              u->probe_fails, error ? cairn_error_last() : cairn_http_reason(resp->status));
        if (r->client)
            cairn_http_client_abort(r->client, u->addr, "upstream out of rotation");
    }
    upstream_unref(u);
}

/* Every READY_POLL_MS: start a missing child, probe a starting upstream, or every
 * health_interval_ms a ready or down one. */
static void on_upstream_timer(uv_timer_t *t)
{
    struct upstream *u = t->data;
    struct router *r = u->r;
    uint64_t now;
    if (u->retired || r->stopping || !r->client)
        return;
    if (!u->bound && !u->proc_open && !u->pipe_open) {
        u->down = 0; /* a new child starts afresh */
        u->probe_fails = 0;
        upstream_spawn(u);
        return;
    }
    if (!u->addr[0] || u->polling)
        return;
    now = uv_now(r->loop);
    if ((u->ready || u->down) && now < u->probe_due)
        return;
    u->probe_due = now + r->health_interval_ms;
    u->polling = 1;
    u->refs++;
    if (cairn_http_client_probe(r->client, u->addr, "/v2/health/ready", r->health_timeout_ms,
                                on_ready_reply, u) < 0) {
        u->polling = 0;
        u->refs--;
    }
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
    struct upstream *u = p->data;
    u->ready = 0;
    u->addr[0] = '\0';
    u->got_addr = 0;
    u->pid = 0;
    uv_close((uv_handle_t *)p, on_proc_closed);
    if (u->pipe_open && !uv_is_closing((uv_handle_t *)&u->pipe))
        uv_close((uv_handle_t *)&u->pipe, on_pipe_closed);
    if (u->retired || u->r->stopping)
        return;
    u->restarts++;
    logf_(u->r, "%s: serve-model exited (status %lld, signal %d); restarting", u->label,
          (long long)status, sig);
    /* Back off up to 5 s so a child that cannot start does not spin. */
    uv_timer_start(&u->timer, on_upstream_timer,
                   (uint64_t)(u->restarts < 25 ? u->restarts : 25) * 200, READY_POLL_MS);
}

static void on_pipe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct upstream *u = h->data;
    (void)suggested;
    if (u->linelen >= sizeof(u->line) - 1)
        u->linelen = 0;
    buf->base = u->line + u->linelen;
    buf->len = sizeof(u->line) - 1 - u->linelen;
}

/* The child prints "serving NAME (version ID) on HOST:PORT" once it listens. */
static void on_pipe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct upstream *u = s->data;
    char *nl;
    (void)buf;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_pipe_closed);
        return;
    }
    u->linelen += (size_t)n;
    u->line[u->linelen] = '\0';
    while ((nl = strchr(u->line, '\n'))) {
        *nl = '\0';
        if (!u->got_addr && !strncmp(u->line, "serving ", 8)) {
            const char *on = strstr(u->line, " on ");
            if (on) {
                snprintf(u->addr, sizeof(u->addr), "%s", on + 4);
                u->got_addr = 1;
            }
        } else if (u->line[0]) {
            logf_(u->r, "%s: %s", u->label, u->line);
        }
        memmove(u->line, nl + 1, u->linelen - (size_t)(nl + 1 - u->line) + 1);
        u->linelen -= (size_t)(nl + 1 - u->line);
    }
}

/* The file the config names for this version (files: vN, else file:), or NULL. */
static const char *upstream_file(const struct upstream *u)
{
    const struct model *m = u->m;
    for (int i = 0; i < m->nfiles; i++)
        if (m->file_number[i] == u->number)
            return m->file_path[i];
    return m->file[0] ? m->file : NULL;
}

extern char **environ;

/*
 * Our environment plus CAIRN_SERVE_PARENT=PID for a serve-model child, which
 * then asks the kernel to SIGKILL it when this process dies (cmd_serve_model.c):
 * a daemon killed with -9 leaves no orphan that a restart would double. NULL
 * when out of memory; free the array and its last entry.
 */
static char **child_env(void)
{
    size_t n = 0, k = 0;
    char **env;
    while (environ[n])
        n++;
    if (!(env = malloc((n + 2) * sizeof(*env))))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "CAIRN_SERVE_PARENT=", 19))
            env[k++] = environ[i];
    if (!(env[k] = malloc(40))) {
        free(env);
        return NULL;
    }
    snprintf(env[k], 40, "CAIRN_SERVE_PARENT=%ld", (long)getpid());
    env[k + 1] = NULL;
    return env;
}

static void child_env_free(char **env)
{
    size_t n = 0;
    if (!env)
        return;
    while (env[n])
        n++;
    if (n)
        free(env[n - 1]);
    free(env);
}

static void upstream_spawn(struct upstream *u)
{
    struct router *r = u->r;
    uv_process_options_t po;
    uv_stdio_container_t io[3];
    char ref[100];
    const char *file = upstream_file(u);
    char *args[] = { (char *)r->o->exe, "serve-model", ref,  "--listen",
                     "127.0.0.1:0",     NULL,          NULL, NULL };
    int rc;

    snprintf(ref, sizeof(ref), "%s@v%d", u->m->name, u->number);
    if (file) {
        args[5] = "--file";
        args[6] = (char *)file;
    }
    memset(&po, 0, sizeof(po));
    memset(io, 0, sizeof(io));
    uv_pipe_init(r->loop, &u->pipe, 0);
    u->pipe.data = u;
    u->pipe_open = 1;
    u->linelen = 0;
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_IGNORE;
    io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[2].data.stream = (uv_stream_t *)&u->pipe;
    po.file = r->o->exe;
    po.args = args;
    po.cwd = r->o->workdir;
    po.env = child_env(); /* NULL: the child inherits ours and only lacks the parent check */
    po.exit_cb = on_child_exit;
    po.stdio = io;
    po.stdio_count = 3;
    u->proc.data = u;
    rc = uv_spawn(r->loop, &u->proc, &po);
    child_env_free(po.env);
    if (rc < 0) {
        logf_(r, "%s: cannot start serve-model: %s", u->label, uv_strerror(rc));
        uv_close((uv_handle_t *)&u->proc, NULL);
        uv_close((uv_handle_t *)&u->pipe, on_pipe_closed);
        u->restarts++;
        uv_timer_start(&u->timer, on_upstream_timer,
                       (uint64_t)(u->restarts < 25 ? u->restarts : 25) * 200, READY_POLL_MS);
        return;
    }
    u->proc_open = 1;
    u->pid = u->proc.pid;
    uv_read_start((uv_stream_t *)&u->pipe, on_pipe_alloc, on_pipe_read);
    uv_timer_start(&u->timer, on_upstream_timer, READY_POLL_MS, READY_POLL_MS);
    logf_(r, "%s: started serve-model (pid %d)%s%s", u->label, u->pid, file ? " serving " : "",
          file ? file : "");
}

static struct upstream *upstream_new(struct model *m, const cairn_oid *id, int number)
{
    struct upstream *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->r = m->r;
    u->m = m;
    u->id = *id;
    u->number = number;
    snprintf(u->label, sizeof(u->label), "%s@v%d", m->name, number);
    uv_timer_init(m->r->loop, &u->timer);
    u->timer.data = u;
    u->timer_open = 1;
    for (int i = 0; i < m->nbinds; i++) {
        if (m->bind_number[i] == number) {
            snprintf(u->addr, sizeof(u->addr), "%s", m->bind_addr[i]);
            u->bound = 1;
        }
    }
    if (u->bound) {
        /* A bound upstream is someone else's: poll it ready, never start it. */
        uv_timer_start(&u->timer, on_upstream_timer, 0, READY_POLL_MS);
        logf_(m->r, "%s bound to %s", u->label, u->addr);
    } else {
        upstream_spawn(u);
    }
    return u;
}

static void upstream_retire(struct upstream *u)
{
    if (!u || u->retired)
        return;
    u->retired = 1;
    u->ready = 0;
    if (u->timer_open && !uv_is_closing((uv_handle_t *)&u->timer))
        uv_close((uv_handle_t *)&u->timer, on_timer_closed);
    if (u->proc_open)
        uv_process_kill(&u->proc, SIGTERM);
    upstream_maybe_free(u);
}

/* ======================================================================
 * Registry jobs
 * ====================================================================== */

struct job {
    uv_work_t w;
    struct router *r;
    struct job *next;
    struct model *m; /* for model_save_ex(): whose state_save it may be */
    int (*work)(struct job *j, struct cairn_repo *repo);
    void (*done)(struct job *j);
    int error;
    char msg[512];
    /* inputs and outputs, by job kind */
    char model[65], alias[65], actor[80], action[40];
    char ref[256];
    char *details;
    struct cairn_rollout_state st;
    int save_state, move_alias;
    cairn_oid oid, oid2;
    int num, num2;
    struct cairn_http_req *req;
    char *plan_text;
    struct cairn_plan plan;
    struct cairn_token_info tok; /* the token's, or the one looked up */
    int status;                  /* HTTP status for an error, when status_of() would not do */
    int force, forced;           /* force asked for (with reason); used past the release check */
    char *reason;
    char *policy; /* the policy required instead of the alias's, or NULL */
    struct cairn_release_check chk;
};

static void job_next(struct router *r);

static void job_work(uv_work_t *w)
{
    struct job *j = w->data;
    struct cairn_repo *repo = NULL;
    if (!j->work)
        return; /* an answer waiting for the jobs before it (respond_json) */
    if ((j->error = cairn_repo_open(&repo, j->r->o->workdir)) == 0)
        j->error = j->work(j, repo);
    if (j->error < 0)
        snprintf(j->msg, sizeof(j->msg), "%s", cairn_error_last());
    cairn_repo_free(repo);
}

static void job_after(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct router *r = j->r;
    (void)status;
    if (j->done)
        j->done(j);
    if (j->error < 0 && !j->done)
        logf_(r, "registry: %s", j->msg);
    free(j->details);
    free(j->plan_text);
    free(j->reason);
    free(j->policy);
    cairn_release_check_release(&j->chk);
    cairn_rollout_state_release(&j->st);
    free(j);
    r->job_running = 0;
    r->njobs--;
    job_next(r);
}

static void job_next(struct router *r)
{
    struct job *j = r->jobs_head;
    if (r->job_running || !j)
        return;
    r->jobs_head = j->next;
    if (!r->jobs_head)
        r->jobs_tail = NULL;
    r->job_running = 1;
    if (j->m && j->m->state_save == j)
        j->m->state_save = NULL; /* it runs: a later save is a job of its own */
    j->w.data = j;
    if (!r->o->workdir) {
        /* A router made by cairn__router_new() has no registry: every job fails at once. */
        j->error = cairn_error_set(CAIRN_ENOTFOUND, "no registry");
        snprintf(j->msg, sizeof(j->msg), "%s", cairn_error_last());
        job_after(&j->w, 0);
        return;
    }
    if (uv_queue_work(r->loop, &j->w, job_work, job_after) < 0) {
        j->error = cairn_error_set(CAIRN_ERROR, "cannot queue registry work");
        snprintf(j->msg, sizeof(j->msg), "%s", cairn_error_last());
        job_after(&j->w, 0);
    }
}

static struct job *job_new(struct router *r, int (*work)(struct job *, struct cairn_repo *),
                           void (*done)(struct job *))
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->r = r;
    j->work = work;
    j->done = done;
    return j;
}

static void job_submit(struct job *j)
{
    struct router *r = j->r;
    if (r->jobs_tail)
        r->jobs_tail->next = j;
    else
        r->jobs_head = j;
    r->jobs_tail = j;
    r->njobs++;
    job_next(r);
}

/* The test hook of cairn_router_opts.crash_point, if set. */
static void crash_point(const struct router *r, const char *point)
{
    if (r->o->crash_point)
        r->o->crash_point(point, r->o->arg);
}

/*
 * Move an alias, save state and append an audit event in one transaction:
 * a crash leaves all of them or none, so a restart never resumes a rollout
 * whose promotion already moved the alias (load_rollout() reconciles the
 * rows an older daemon may have left apart).
 */
static int work_save(struct job *j, struct cairn_repo *repo)
{
    struct cairn_registry *reg = cairn_repo_registry(repo);
    int error;
    if ((error = cairn_registry_begin(reg)) < 0)
        return error;
    if (j->move_alias) {
        error = cairn_registry_serve_alias_move(reg, j->model, j->alias, &j->oid, j->actor,
                                                j->action, j->action, j->details);
        crash_point(j->r, "after-alias-move");
    }
    if (!error && j->save_state) {
        error = cairn_registry_rollout_put(reg, &j->st);
        if (j->move_alias)
            crash_point(j->r, "after-state-save");
    }
    if (!error && !j->move_alias && j->action[0]) {
        char subject[140];
        snprintf(subject, sizeof(subject), "%s@%s", j->model, j->alias);
        error = cairn_registry_audit_append(reg, j->actor, j->action, subject,
                                            j->details ? j->details : "{}");
    }
    if (error < 0) {
        cairn_registry_rollback(reg);
        return error;
    }
    return cairn_registry_commit(reg);
}

/* ======================================================================
 * Models and the rollout engine
 * ====================================================================== */

static struct model *model_find(struct router *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->nmodels; i++) {
        struct model *m = r->models[i];
        if (strlen(m->name) == len && !memcmp(m->name, name, len))
            return m;
    }
    return NULL;
}

static int rollout_active(const struct model *m)
{
    return m->candidate && (m->phase == PH_RUNNING || m->phase == PH_PAUSED);
}

static uint64_t step_elapsed(const struct model *m)
{
    uint64_t e = m->step_base_ms;
    if (m->phase == PH_RUNNING)
        e += uv_now(m->r->loop) - m->step_started;
    return e;
}

static void set_reason(struct model *m, const char *reason)
{
    free(m->reason);
    m->reason = reason ? strdup(reason) : NULL;
}

static void apply_step_weight(struct model *m)
{
    const struct cairn_plan_step *s = &m->plan.steps[m->step < (int)m->plan.nsteps ? m->step : 0];
    m->shadow = m->plan.strategy == CAIRN_STRATEGY_SHADOW && m->phase == PH_RUNNING;
    m->weight_bp = m->plan.strategy == CAIRN_STRATEGY_SHADOW ? 0 : s->weight * 100;
    if (m->phase != PH_RUNNING && m->phase != PH_PAUSED)
        m->weight_bp = 0;
}

/* JSON text of the figures of one upstream's window, for audit details. */
static void figures_json(struct cairn_buf *b, const struct upstream *u,
                         const struct cairn_window *w)
{
    cairn_buf_printf(b, "{\"version\":\"%s\",\"requests\":%llu,\"errors\":%llu", u->label,
                     (unsigned long long)w->requests, (unsigned long long)w->errors);
    if (w->requests)
        cairn_buf_printf(b, ",\"error_rate\":%.6g,\"latency_p99_ms\":%.6g",
                         (double)w->errors / (double)w->requests,
                         cairn_window_quantile_ms(w, 0.99));
    if (w->labels)
        cairn_buf_printf(b, ",\"labels\":%llu,\"accuracy\":%.6g", (unsigned long long)w->labels,
                         (double)w->correct / (double)w->labels);
    if (w->shadow_compared)
        cairn_buf_printf(b, ",\"shadow_agreement\":%.6g",
                         (double)w->shadow_agreed / (double)w->shadow_compared);
    cairn_buf_putc(b, '}');
}

static char *details_json(struct model *m, const char *why, const struct cairn_window *cw,
                          const struct cairn_window *sw)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, "{\"strategy\":");
    cairn_json_put_string(&b, cairn_strategy_name(m->plan.strategy));
    cairn_buf_printf(&b, ",\"step\":%d,\"weight\":%d", m->step, m->weight_bp / 100);
    if (why) {
        cairn_buf_puts(&b, ",\"reason\":");
        cairn_json_put_string(&b, why);
    }
    if (m->candidate) {
        cairn_buf_puts(&b, ",\"candidate\":");
        figures_json(&b, m->candidate, cw ? cw : &m->candidate->st.total);
    }
    if (m->stable) {
        cairn_buf_puts(&b, ",\"stable\":");
        figures_json(&b, m->stable, sw ? sw : &m->stable->st.total);
    }
    cairn_buf_putc(&b, '}');
    return cairn_buf_detach(&b, NULL);
}

/*
 * Audit details of a failed analysis (`rollout.breach`): when it was
 * judged, which failure it is of how many allowed, and the figures of both
 * windows. `cairn report` measures time to restore from the first breach.
 */
static char *breach_json(struct model *m, const struct cairn_window *cw,
                         const struct cairn_window *sw)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    char *base = details_json(m, m->report, cw, sw);
    if (!base)
        return NULL;
    cairn_buf_printf(&b, "{\"time_ns\":%lld,\"failures\":%d,\"failure_limit\":%d,",
                     cairn_time_now_ns(), m->failures, m->plan.failure_limit);
    cairn_buf_puts(&b, base + 1);
    free(base);
    return cairn_buf_detach(&b, NULL);
}

static void fill_state(struct model *m, struct cairn_rollout_state *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->model, sizeof(s->model), "%s", m->name);
    snprintf(s->alias, sizeof(s->alias), "%s", m->alias);
    if (m->stable)
        s->stable = m->stable->id;
    if (m->candidate)
        s->candidate = m->candidate->id;
    s->plan = m->plan_text ? strdup(m->plan_text) : strdup("");
    snprintf(s->phase, sizeof(s->phase), "%s", phase_names[m->phase]);
    s->step = m->step;
    s->step_elapsed_ms = (int64_t)step_elapsed(m);
    s->failures = m->failures;
    s->step_passed = m->step_passed;
    s->started_ns = m->started_ns;
    s->updated_ns = cairn_time_now_ns();
    s->reason = m->reason ? strdup(m->reason) : NULL;
    s->forced = m->forced ? strdup(m->forced) : NULL;
    s->policy = m->policy ? strdup(m->policy) : NULL;
}

/*
 * Persist the model's rollout state, with an audit event when `action` is
 * set. Takes ownership of `details`.
 */
static void model_save_ex(struct model *m, const char *actor, const char *action, char *details,
                          int move_alias, const cairn_oid *to)
{
    int state_only = !action && !details && !move_alias;
    struct job *j;
    /*
     * Every analysis saves the state: while the model's last save, of the
     * state alone, waits for its turn, it takes the newer state instead,
     * so a registry slower than the ticks does not grow the queue (nor
     * delay the answers behind it, see respond_json()).
     */
    if (state_only && m->state_save) {
        cairn_rollout_state_release(&m->state_save->st);
        if ((m->state_save->save_state = m->plan_text != NULL))
            fill_state(m, &m->state_save->st);
        return;
    }
    if (!(j = job_new(m->r, work_save, NULL))) {
        free(details);
        logf_(m->r, "%s: out of memory saving rollout state", m->name);
        return;
    }
    snprintf(j->model, sizeof(j->model), "%s", m->name);
    snprintf(j->alias, sizeof(j->alias), "%s", m->alias);
    snprintf(j->actor, sizeof(j->actor), "%s", actor ? actor : "cairn-serve");
    snprintf(j->action, sizeof(j->action), "%s", action ? action : "");
    j->details = details;
    j->save_state = m->plan_text != NULL;
    if (j->save_state)
        fill_state(m, &j->st);
    if (move_alias) {
        j->move_alias = 1;
        j->oid = *to;
    }
    j->m = m;
    m->state_save = state_only ? j : NULL;
    job_submit(j);
}

static void model_save(struct model *m, const char *action, const char *details)
{
    model_save_ex(m, NULL, action, details ? strdup(details) : NULL, 0, NULL);
}

static void reset_windows(struct model *m)
{
    if (m->candidate)
        memset(&m->candidate->win, 0, sizeof(m->candidate->win));
    if (m->stable)
        memset(&m->stable->win, 0, sizeof(m->stable->win));
}

static void tick_stop(struct model *m)
{
    if (m->tick_open)
        uv_timer_stop(&m->tick);
}

/* End a rollout with all traffic on the stable version. */
static void rollout_back(struct model *m, enum phase phase, const char *actor, const char *action,
                         const char *why, const struct cairn_window *cw,
                         const struct cairn_window *sw)
{
    char *details;
    m->step_base_ms = step_elapsed(m);
    m->phase = phase;
    m->weight_bp = 0;
    m->shadow = 0;
    set_reason(m, why);
    tick_stop(m);
    details = details_json(m, why, cw, sw);
    logf_(m->r, "%s: %s (%s)", m->name, phase_names[phase], why ? why : "manual");
    model_save_ex(m, actor, action, details, 0, NULL);
    /*
     * The candidate is stopped: serve-model answers what it has under way,
     * and a request that still fails on it is retried on the stable version.
     */
    upstream_retire(m->candidate);
    m->candidate = NULL;
}

/*
 * Promotion moves the alias, so it passes the release check again, inside
 * the transaction that moves the alias and saves the state: a gate re-run
 * (and failed) since the start stops it, and a crash leaves either both or
 * neither. The candidate was checked (or forced) at the start; a forced
 * rollout stays forced, and is audited so.
 */
static int work_promote(struct job *j, struct cairn_repo *repo)
{
    struct cairn_registry *reg = cairn_repo_registry(repo);
    struct cairn_version v;
    int error;

    if ((error = cairn_registry_version_get(reg, &j->oid, &v)) < 0)
        return error;
    if ((error = cairn_registry_begin(reg)) < 0)
        goto done;
    error = cairn_repo_release_check(&j->chk, repo, &v, j->alias, j->policy, "promote");
    if (error < 0 && (!j->force || !cairn_release_check_forcible(error))) {
        j->status = error == CAIRN_ECHECK ? 409 : 0;
        goto rollback;
    }
    cairn_error_clear();
    j->forced = error < 0;
    if ((error = cairn_release_check_annotate(&j->details, &j->chk, j->forced, NULL)) < 0 ||
        (error =
             cairn_registry_serve_alias_move(reg, j->model, j->alias, &j->oid, j->actor,
                                             "rollout.promote", "rollout.promote", j->details)) < 0)
        goto rollback;
    crash_point(j->r, "after-alias-move");
    if ((error = cairn_registry_rollout_put(reg, &j->st)) < 0)
        goto rollback;
    crash_point(j->r, "after-state-save");
    error = cairn_registry_commit(reg);
    goto done;
rollback:
    cairn_registry_rollback(reg);
done:
    cairn_version_release(&v);
    return error;
}

static void tick_start(struct model *m);
static void json_error(struct cairn_http_req *req, int status, const char *extra_headers,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void respond_json(struct cairn_http_req *req, int status, json_t *j);
static json_t *model_json(struct model *m);
static void api_refusal(struct job *j);

/*
 * The candidate becomes stable once the registry says the alias moved.
 * Refused, an automatic promotion rolls the rollout back (the gate says
 * the candidate may not be production); a manual one is answered with the
 * refusal and the rollout goes on.
 */
static void done_promote(struct job *j)
{
    struct model *m = model_find(j->r, j->model, strlen(j->model));
    struct upstream *c;
    c = m ? m->candidate : NULL;
    if (m)
        m->promoting = 0;
    if (!c || cairn_oid_cmp(&c->id, &j->oid)) { /* cannot happen: actions wait for the answer */
        if (j->req)
            json_error(j->req, 409, NULL, "'%s' has no rollout to promote", j->model);
        return;
    }
    if (j->error < 0) {
        logf_(m->r, "%s: promotion of %s refused: %s", m->name, c->label, j->msg);
        if (j->req) {
            api_refusal(j);
            if (m->phase == PH_RUNNING || m->phase == PH_PAUSED)
                tick_start(m);
        } else {
            rollout_back(m, PH_ROLLED_BACK, NULL, "rollout.rollback", j->msg, NULL, NULL);
        }
        return;
    }
    m->step_base_ms = step_elapsed(m);
    m->phase = PH_PROMOTED;
    tick_stop(m);
    set_reason(m, j->st.reason);
    logf_(m->r, "%s: promoted %s to %s%s", m->name, c->label, m->alias,
          j->forced ? " (forced)" : "");
    upstream_retire(m->previous);
    m->previous = m->stable;
    m->stable = c;
    m->candidate = NULL;
    m->weight_bp = 0;
    m->shadow = 0;
    if (j->req)
        respond_json(j->req, 200, model_json(m));
}

/* Ask the registry to promote the candidate; `req` (or NULL) is answered when it did. */
static void rollout_promote(struct model *m, const char *actor, const char *why,
                            struct cairn_http_req *req)
{
    struct upstream *c = m->candidate;
    struct job *j;
    if (!c || m->promoting)
        return;
    if (!(j = job_new(m->r, work_promote, done_promote))) {
        logf_(m->r, "%s: out of memory promoting %s", m->name, c->label);
        if (req)
            json_error(req, 503, NULL, "out of memory");
        return;
    }
    snprintf(j->model, sizeof(j->model), "%s", m->name);
    snprintf(j->alias, sizeof(j->alias), "%s", m->alias);
    snprintf(j->actor, sizeof(j->actor), "%s", actor ? actor : "cairn-serve");
    j->oid = c->id;
    j->req = req;
    j->force = m->forced != NULL;
    j->policy = m->policy ? strdup(m->policy) : NULL;
    j->details = details_json(m, why, NULL, NULL);
    fill_state(m, &j->st);
    snprintf(j->st.phase, sizeof(j->st.phase), "%s", phase_names[PH_PROMOTED]);
    j->st.stable = c->id;
    memset(&j->st.candidate, 0, sizeof(j->st.candidate));
    free(j->st.reason);
    j->st.reason = why ? strdup(why) : NULL;
    j->save_state = 1;
    m->promoting = 1;
    tick_stop(m);
    job_submit(j);
}

static void rollout_conclude(struct model *m)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    const struct cairn_window *cw = &m->candidate->st.total, *sw = &m->stable->st.total;
    cairn_buf_printf(&b, "%s ended: candidate %s ", cairn_strategy_name(m->plan.strategy),
                     m->candidate->label);
    figures_json(&b, m->candidate, cw);
    cairn_buf_printf(&b, ", stable %s ", m->stable->label);
    figures_json(&b, m->stable, sw);
    m->step_base_ms = step_elapsed(m);
    m->phase = PH_CONCLUDED;
    m->weight_bp = 0;
    m->shadow = 0;
    tick_stop(m);
    set_reason(m, b.ptr);
    logf_(m->r, "%s: %s", m->name, b.ptr);
    model_save(m, "rollout.conclude", NULL);
    cairn_buf_release(&b);
}

static void on_tick(uv_timer_t *t)
{
    struct model *m = t->data;
    struct upstream *c = m->candidate, *s = m->stable;
    struct cairn_window cw, sw;
    enum cairn_verdict v;

    if (!c || !s || m->promoting || (m->phase != PH_RUNNING && m->phase != PH_PAUSED))
        return;
    v = cairn_analyse(&m->plan, &c->win, &s->win, m->report, sizeof(m->report));
    cw = c->win;
    sw = s->win;
    if (v != CAIRN_VERDICT_WAIT)
        reset_windows(m);
    if (v == CAIRN_VERDICT_FAIL) {
        m->failures++;
        logf_(m->r, "%s: analysis failed (%d of %d): %s", m->name, m->failures,
              m->plan.failure_limit, m->report);
        /* Audited before the rollback or pause it may cause: jobs run in order. */
        model_save_ex(m, NULL, "rollout.breach", breach_json(m, &cw, &sw), 0, NULL);
        if (m->failures >= m->plan.failure_limit) {
            if (m->plan.on_failure_pause) {
                m->step_base_ms = step_elapsed(m);
                m->phase = PH_PAUSED;
                set_reason(m, m->report);
                model_save_ex(m, NULL, "rollout.pause", details_json(m, m->report, &cw, &sw), 0,
                              NULL);
            } else {
                rollout_back(m, PH_ROLLED_BACK, NULL, "rollout.rollback", m->report, &cw, &sw);
            }
            return;
        }
    } else if (v == CAIRN_VERDICT_PASS) {
        m->step_passed = 1;
    }
    if (m->phase != PH_RUNNING) {
        model_save(m, NULL, NULL);
        return;
    }
    if (m->plan.strategy == CAIRN_STRATEGY_AB || m->plan.strategy == CAIRN_STRATEGY_SHADOW) {
        uint64_t seen = c->st.total.requests;
        if ((m->plan.test_samples && seen >= m->plan.test_samples) ||
            (m->plan.test_duration_ms && step_elapsed(m) >= m->plan.test_duration_ms)) {
            rollout_conclude(m);
            return;
        }
    } else if ((m->plan.nchecks == 0 || m->step_passed) &&
               step_elapsed(m) >= m->plan.steps[m->step].pause_ms) {
        if (m->step + 1 >= (int)m->plan.nsteps) {
            rollout_promote(m, NULL, m->report, NULL);
            return;
        }
        m->step++;
        m->step_passed = 0;
        m->step_base_ms = 0;
        m->step_started = uv_now(m->r->loop);
        apply_step_weight(m);
        logf_(m->r, "%s: step %d, %s at %d%%", m->name, m->step + 1, c->label, m->weight_bp / 100);
        model_save_ex(m, NULL, "rollout.step", details_json(m, NULL, NULL, NULL), 0, NULL);
        return;
    }
    model_save(m, NULL, NULL);
}

static void tick_start(struct model *m)
{
    if (!m->tick_open) {
        uv_timer_init(m->r->loop, &m->tick);
        m->tick.data = m;
        m->tick_open = 1;
    }
    uv_timer_start(&m->tick, on_tick, m->plan.interval_ms, m->plan.interval_ms);
}

static struct model *model_add(struct router *r, struct model *m)
{
    if (r->nmodels >= MAX_MODELS)
        return NULL;
    m->index = (uint32_t)r->nmodels;
    r->models[r->nmodels++] = m;
    return m;
}

/* ======================================================================
 * Data plane
 * ====================================================================== */

struct shadow_pair {
    int refs;
    int32_t stable_label, cand_label; /* -1: no answer */
    struct upstream *cand;
};

struct fwd {
    struct fwd *next_free;
    struct router *r;
    struct cairn_http_req *req;
    struct model *m;
    struct upstream *u;
    uint64_t t0;
    int retried, infer;
    struct shadow_pair *sp;
    size_t mirrored; /* body bytes a shadow copy holds (r->mirror_bytes) */
    char rid[64];
    size_t ridlen;
    char path[160];
};

static void json_error(struct cairn_http_req *req, int status, const char *extra_headers,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void json_error(struct cairn_http_req *req, int status, const char *extra_headers,
                       const char *fmt, ...)
{
    char msg[512];
    struct cairn_buf b = CAIRN_BUF_INIT;
    struct cairn_http_response resp;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cairn_buf_puts(&b, "{\"error\":");
    cairn_json_put_string(&b, msg);
    cairn_buf_puts(&b, "}");
    memset(&resp, 0, sizeof(resp));
    resp.status = status;
    resp.content_type = "application/json";
    resp.headers = extra_headers;
    resp.body = b.ptr;
    resp.body_len = b.len;
    cairn_http_respond(req, &resp);
    cairn_buf_release(&b);
}

/* The argmax of the answer's first row: the first number of the "label" output's data. */
static int32_t find_label(const char *body, size_t len)
{
    const char *p = memmem(body, len, "\"label\"", 7), *end = body + len;
    char *e;
    long v;
    if (!p || !(p = memmem(p, (size_t)(end - p), "\"data\"", 6)))
        return -1;
    p += 6;
    while (p < end && (*p == ' ' || *p == ':' || *p == '[' || *p == '\n' || *p == '\t'))
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    v = strtol(p, &e, 10);
    return v >= 0 && v < (1L << 30) ? (int32_t)v : -1;
}

static struct fwd *fwd_get(struct router *r)
{
    struct fwd *f = r->free_fwd;
    r->inflight++;
    if (f) {
        r->free_fwd = f->next_free;
        return f;
    }
    if (!(f = malloc(sizeof(*f))))
        r->inflight--;
    return f;
}

static void fwd_put(struct router *r, struct fwd *f)
{
    r->inflight--;
    f->next_free = r->free_fwd;
    r->free_fwd = f;
}

static void shadow_done(struct shadow_pair *sp)
{
    if (--sp->refs > 0)
        return;
    if (sp->stable_label >= 0 && sp->cand_label >= 0 && !sp->cand->retired) {
        int agree = sp->stable_label == sp->cand_label;
        sp->cand->win.shadow_compared++;
        sp->cand->win.shadow_agreed += (uint64_t)agree;
        sp->cand->st.total.shadow_compared++;
        sp->cand->st.total.shadow_agreed += (uint64_t)agree;
    }
    upstream_unref(sp->cand);
    free(sp);
}

/* A request drawn for an upstream out of rotation: one of its errors (unreachable), with no
 * latency, since none was measured. */
static void record_diverted(struct upstream *u)
{
    u->st.total.requests++;
    u->st.total.errors++;
    u->win.requests++;
    u->win.errors++;
    u->st.upstream_errors++;
}

static void record(struct upstream *u, int status, uint64_t us)
{
    cairn_status_counts_add(&u->st.codes, status > 0 ? status : 502);
    cairn_prom_hist_add(&u->st.hist, us);
    cairn_window_add(&u->st.total, status, us);
    cairn_window_add(&u->win, status, us);
    if (status <= 0)
        u->st.upstream_errors++;
}

/*
 * Headers for the upstream: "Content-Type: application/json\r\nX-Request-Id:
 * RID\r\n" in `out` (at least 128 bytes). The Content-Type line is 32 bytes,
 * so out + 32 is the request id alone. memcpy, not snprintf: this runs for
 * every request and printf would be the costliest thing on the proxy path.
 */
#define CT_JSON_LINE "Content-Type: application/json\r\n"
static const char *upstream_headers(char *out, const struct fwd *f)
{
    static const char head[] = CT_JSON_LINE "X-Request-Id: ";
    memcpy(out, head, sizeof(head) - 1);
    memcpy(out + sizeof(head) - 1, f->rid, f->ridlen);
    memcpy(out + sizeof(head) - 1 + f->ridlen, "\r\n", 3);
    return out;
}

/* "X-Cairn-Version: LABEL\r\nX-Request-Id: RID\r\n" in `out` (at least 192 bytes). */
static const char *answer_headers(char *out, const char *label, const struct fwd *f)
{
    size_t n = strlen(label);
    char *p = out;
    memcpy(p, "X-Cairn-Version: ", 17);
    p += 17;
    memcpy(p, label, n);
    p += n;
    memcpy(p, "\r\nX-Request-Id: ", 16);
    p += 16;
    memcpy(p, f->rid, f->ridlen);
    p += f->ridlen;
    memcpy(p, "\r\n", 3);
    return out;
}

static void on_shadow_reply(int error, const struct cairn_http_resp *resp, void *arg)
{
    struct fwd *f = arg;
    struct upstream *u = f->u;
    uint64_t us = (uv_hrtime() - f->t0) / 1000;
    if (!u->retired) {
        record(u, error ? 0 : resp->status, us);
        if (!error && resp->status == 200)
            f->sp->cand_label = find_label(resp->body, resp->body_len);
    }
    shadow_done(f->sp);
    upstream_unref(u);
    f->r->mirror_bytes -= f->mirrored;
    fwd_put(f->r, f);
}

/*
 * Send a copy of the request to the shadow candidate. The copy outlives the
 * client's request, so it is held under its own cap (a quarter of the
 * buffered-bytes budget); past it the request is simply not mirrored.
 */
static void mirror(struct router *r, struct fwd *orig, struct upstream *c)
{
    struct fwd *f;
    struct shadow_pair *sp;
    char hdr[160];
    size_t len = orig->req->body_len;
    if (!r->client)
        return;
    if (len > r->mirror_cap - r->mirror_bytes) {
        r->mirror_skipped++;
        return;
    }
    if (!(sp = calloc(1, sizeof(*sp))) || !(f = fwd_get(r))) {
        free(sp);
        return;
    }
    sp->refs = 2;
    sp->stable_label = sp->cand_label = -1;
    sp->cand = c;
    c->refs++;
    *f = *orig;
    f->u = c;
    f->req = NULL;
    f->sp = sp;
    f->mirrored = len;
    r->mirror_bytes += len;
    upstream_headers(hdr, f);
    c->refs++;
    if (cairn_http_client_request(r->client, c->addr, "POST", f->path, hdr, orig->req->body,
                                  orig->req->body_len, r->timeout_ms, on_shadow_reply, f) < 0) {
        r->mirror_bytes -= len;
        c->refs--;
        sp->refs = 1;
        shadow_done(sp);
        fwd_put(r, f);
        return;
    }
    orig->sp = sp;
}

static void on_upstream_reply(int error, const struct cairn_http_resp *resp, void *arg);

static int forward(struct fwd *f, struct upstream *u)
{
    struct router *r = f->r;
    char hdr[160];
    f->u = u;
    if (!r->client)
        return -1;
    u->refs++;
    upstream_headers(hdr, f);
    /* The body is the server's until the request is answered, after this callback: no copy. */
    if (cairn_http_client_request_borrowed(r->client, u->addr, f->req->method, f->path,
                                           f->infer ? hdr : hdr + sizeof(CT_JSON_LINE) - 1,
                                           f->req->body, f->req->body_len, r->timeout_ms,
                                           on_upstream_reply, f) < 0) {
        u->refs--;
        return -1;
    }
    return 0;
}

static struct upstream *fallback(struct model *m, struct upstream * not )
{
    if (m->stable && m->stable != not &&m->stable->ready)
        return m->stable;
    if (m->previous && m->previous != not &&m->previous->ready)
        return m->previous;
    return NULL;
}

static void on_upstream_reply(int error, const struct cairn_http_resp *resp, void *arg)
{
    struct fwd *f = arg;
    struct router *r = f->r;
    struct upstream *u = f->u;
    struct model *m = f->m;
    uint64_t us = (uv_hrtime() - f->t0) / 1000;
    char hdr[256];
    struct cairn_http_response out;

    record(u, error ? 0 : resp->status, us);
    if (error) {
        struct upstream *s = fallback(m, u);
        /* A candidate that cannot be reached: once more, on the stable version. */
        if (!f->retried && s && u != m->stable) {
            f->retried = 1;
            if (f->sp) {
                shadow_done(f->sp);
                f->sp = NULL;
            }
            upstream_unref(u);
            if (forward(f, s) == 0)
                return;
            u = NULL;
        }
        snprintf(hdr, sizeof(hdr), "X-Cairn-Version: %s\r\nX-Request-Id: %s\r\n",
                 u ? u->label : m->name, f->rid);
        json_error(f->req, 502, hdr, "upstream %s failed: %s", u ? u->label : m->name,
                   error == CAIRN_ENOMEM ? "answer too large" : "unreachable or timed out");
        goto done;
    }
    if (f->infer && resp->status == 200) {
        int32_t label = find_label(resp->body, resp->body_len);
        if (label >= 0)
            cairn_feedback_record(r->feedback, f->rid, f->ridlen, m->index, u->number, label);
        if (f->sp)
            f->sp->stable_label = label;
    }
    answer_headers(hdr, u->label, f);
    memset(&out, 0, sizeof(out));
    out.status = resp->status;
    out.content_type = cairn_http_header_find(resp->headers, resp->nheaders, "Content-Type");
    out.headers = hdr;
    out.body = resp->body;
    out.body_len = resp->body_len;
    cairn_http_respond(f->req, &out);
done:
    if (f->sp)
        shadow_done(f->sp);
    if (u)
        upstream_unref(u);
    fwd_put(r, f);
}

static void make_request_id(struct router *r, struct fwd *f, const struct cairn_http_req *req)
{
    static const char hex[] = "0123456789abcdef";
    const char *given = cairn_http_header_find(req->headers, req->nheaders, "X-Request-Id");
    if (given) {
        size_t n = strlen(given), i;
        for (i = 0; i < n && i < sizeof(f->rid) - 1; i++)
            if ((unsigned char)given[i] <= ' ' || given[i] == 127)
                break;
        if (i == n && n > 0 && n < sizeof(f->rid)) {
            memcpy(f->rid, given, n + 1);
            f->ridlen = n;
            return;
        }
    }
    {
        uint64_t a = cairn_rand_next(&r->rng), b = cairn_rand_next(&r->rng);
        for (int i = 0; i < 16; i++) {
            f->rid[i] = hex[(a >> (i * 4)) & 15];
            f->rid[16 + i] = hex[(b >> (i * 4)) & 15];
        }
        f->rid[32] = '\0';
        f->ridlen = 32;
    }
}

static void handle_model(struct router *r, struct cairn_http_req *req, const char *rest)
{
    const char *slash = strchr(rest, '/');
    size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);
    struct model *m = model_find(r, rest, nlen);
    struct upstream *u;
    struct fwd *f;
    size_t plen;
    int infer = slash && !strcmp(slash, "/infer");

    if (!m) {
        json_error(req, 404, NULL, "unknown model '%.*s'", (int)(nlen < 64 ? nlen : 64), rest);
        return;
    }
    if (slash && !infer && strcmp(slash, "/ready")) {
        json_error(req, 404, NULL, "no route %s", req->path);
        return;
    }
    if (infer ? strcmp(req->method, "POST") : strcmp(req->method, "GET")) {
        json_error(req, 405, NULL, "use %s for %s", infer ? "POST" : "GET", req->path);
        return;
    }
    if (!(f = fwd_get(r))) {
        json_error(req, 503, NULL, "out of memory");
        return;
    }
    f->r = r;
    f->req = req;
    f->m = m;
    f->t0 = uv_hrtime();
    f->retried = 0;
    f->infer = infer;
    f->sp = NULL;
    f->mirrored = 0;
    plen = strlen(req->path);
    plen = plen < sizeof(f->path) ? plen : sizeof(f->path) - 1; /* as snprintf would cut it */
    memcpy(f->path, req->path, plen);
    f->path[plen] = '\0';
    make_request_id(r, f, req);

    u = m->stable;
    if (m->candidate && m->weight_bp > 0 && (m->candidate->ready || m->candidate->down)) {
        const char *key = NULL;
        size_t keylen = 0;
        if (m->plan.sticky == CAIRN_STICKY_HEADER) {
            key = cairn_http_header_find(req->headers, req->nheaders, m->plan.sticky_name);
            keylen = key ? strlen(key) : 0;
        } else if (m->plan.sticky == CAIRN_STICKY_COOKIE) {
            const char *c = cairn_http_header_find(req->headers, req->nheaders, "Cookie");
            keylen = c ? cairn_cookie_find(&key, c, m->plan.sticky_name) : 0;
        }
        if (cairn_route_pick(m->weight_bp, key, keylen, &r->rng))
            u = m->candidate;
        /* Its share of a candidate out of rotation goes to stable and counts as its failure. */
        if (u == m->candidate && u->down)
            record_diverted(u);
    }
    if (!u || !u->ready)
        u = fallback(m, u);
    if (!u) {
        char hdr[256];
        snprintf(hdr, sizeof(hdr), "X-Cairn-Version: %s\r\nX-Request-Id: %s\r\nRetry-After: 1\r\n",
                 m->name, f->rid);
        json_error(req, 503, hdr, "no version of '%s' is ready", m->name);
        fwd_put(r, f);
        return;
    }
    if (infer && m->shadow && m->candidate && m->candidate->ready && u != m->candidate)
        mirror(r, f, m->candidate);
    if (forward(f, u) < 0) {
        char hdr[256];
        snprintf(hdr, sizeof(hdr), "X-Cairn-Version: %s\r\nX-Request-Id: %s\r\n", u->label, f->rid);
        if (f->sp)
            shadow_done(f->sp);
        json_error(req, 502, hdr, "cannot reach %s", u->label);
        fwd_put(r, f);
        return;
    }
    /* After forwarding, so the upstream works while we look; the body lives until answered. */
    if (infer)
        cairn_livewin_sample(m->inputs, req->body, req->body_len);
}

/* ======================================================================
 * Control API
 * ====================================================================== */

static void respond_json_now(struct cairn_http_req *req, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) {
        cairn_http_respond_simple(req, 500, "application/json", "{\"error\":\"out of memory\"}",
                                  25);
        return;
    }
    cairn_http_respond_simple(req, status, "application/json", s, strlen(s));
    free(s);
}

static void done_answer(struct job *j)
{
    cairn_http_respond_simple(j->req, j->num, "application/json", j->details, strlen(j->details));
}

/*
 * Answer with a rollout's state once the registry holds it: the JSON is
 * taken now and sent when the registry jobs queued before (the saves of
 * every change it shows) have run, since jobs run in order. So a client
 * that reads the alias or the audit log after an answer sees what the
 * answer said. `req->userdata` is the router (cairn_http_server_new()).
 */
static void respond_json(struct cairn_http_req *req, int status, json_t *j)
{
    struct job *b = job_new(req->userdata, NULL, done_answer);
    if (b)
        b->details = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!b || !b->details) {
        free(b);
        json_error(req, 503, NULL, "out of memory");
        return;
    }
    b->req = req;
    b->num = status;
    job_submit(b);
}

static json_t *window_json(const struct upstream *u, const struct cairn_window *w)
{
    json_t *o = json_object();
    char hex[CAIRN_OID_HEXSZ + 1];
    json_object_set_new(o, "version", json_string(u->label));
    json_object_set_new(o, "id", json_string(cairn_oid_fmt(hex, &u->id)));
    json_object_set_new(o, "ready", json_boolean(u->ready));
    json_object_set_new(o, "upstream", json_string(u->addr));
    json_object_set_new(o, "bound", json_boolean(u->bound));
    json_object_set_new(o, "pid", json_integer(u->pid));
    json_object_set_new(o, "requests", json_integer((json_int_t)w->requests));
    json_object_set_new(o, "errors", json_integer((json_int_t)w->errors));
    json_object_set_new(o, "error_rate",
                        w->requests ? json_real((double)w->errors / (double)w->requests)
                                    : json_null());
    json_object_set_new(o, "latency_p99_ms",
                        w->requests ? json_real(cairn_window_quantile_ms(w, 0.99)) : json_null());
    json_object_set_new(o, "labels", json_integer((json_int_t)w->labels));
    json_object_set_new(
        o, "accuracy", w->labels ? json_real((double)w->correct / (double)w->labels) : json_null());
    json_object_set_new(o, "shadow_compared", json_integer((json_int_t)w->shadow_compared));
    json_object_set_new(o, "shadow_agreement",
                        w->shadow_compared
                            ? json_real((double)w->shadow_agreed / (double)w->shadow_compared)
                            : json_null());
    return o;
}

static json_t *model_json(struct model *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(m->name));
    json_object_set_new(o, "alias", json_string(m->alias));
    json_object_set_new(o, "phase", json_string(phase_names[m->phase]));
    json_object_set_new(o, "strategy",
                        m->plan_text ? json_string(cairn_strategy_name(m->plan.strategy))
                                     : json_null());
    json_object_set_new(o, "step", json_integer(m->step + 1));
    json_object_set_new(o, "steps", json_integer((json_int_t)m->plan.nsteps));
    json_object_set_new(o, "weight", json_real(m->weight_bp / 100.0));
    json_object_set_new(o, "shadow", json_boolean(m->shadow));
    json_object_set_new(o, "failures", json_integer(m->failures));
    json_object_set_new(o, "step_elapsed_ms", json_integer((json_int_t)step_elapsed(m)));
    json_object_set_new(o, "last_analysis", json_string(m->report));
    json_object_set_new(o, "reason", m->reason ? json_string(m->reason) : json_null());
    json_object_set_new(o, "forced", m->forced ? json_string(m->forced) : json_null());
    json_object_set_new(o, "stable",
                        m->stable ? window_json(m->stable, &m->stable->st.total) : json_null());
    json_object_set_new(o, "candidate",
                        m->candidate ? window_json(m->candidate, &m->candidate->st.total)
                                     : json_null());
    json_object_set_new(o, "previous",
                        m->previous ? window_json(m->previous, &m->previous->st.total)
                                    : json_null());
    return o;
}

struct api_ctx {
    const struct cairn_token_info *tok; /* valid during api_dispatch() only */
    char actor[80];
};

/* ---- roles ---- */

/*
 * The role each control-API action needs: the one place roles are decided
 * (the table of docs/serving.md, "Roles"). A request is sorted into its
 * action by api_dispatch(), or, when its body decides, by api_start() and
 * api_rollback(): a rollout whose plan would promote with no analysis check
 * (canary or bluegreen with `checks: []`) needs promote, as does moving an
 * alias to a version of one's choosing (rollback --to) and any request
 * past the release check (force).
 */
enum api_action {
    ACT_READ,
    ACT_FEEDBACK,
    ACT_START,
    ACT_START_UNANALYSED,
    ACT_PAUSE,
    ACT_RESUME,
    ACT_ABORT,
    ACT_PROMOTE,
    ACT_ROLLBACK,
    ACT_ROLLBACK_TO,
    ACT_FORCE,
    ACT_POLICY,
};

static const struct {
    const char *what;
    enum cairn_role role;
} api_roles[] = {
    [ACT_READ] = { "reading rollouts and models", CAIRN_ROLE_READ },
    [ACT_FEEDBACK] = { "feedback", CAIRN_ROLE_WRITE },
    [ACT_START] = { "rollout start", CAIRN_ROLE_WRITE },
    [ACT_START_UNANALYSED] = { "a rollout whose plan promotes without analysis checks",
                               CAIRN_ROLE_PROMOTE },
    [ACT_PAUSE] = { "rollout pause", CAIRN_ROLE_WRITE },
    [ACT_RESUME] = { "rollout resume", CAIRN_ROLE_WRITE },
    [ACT_ABORT] = { "rollout abort", CAIRN_ROLE_WRITE },
    [ACT_PROMOTE] = { "rollout promote", CAIRN_ROLE_PROMOTE },
    [ACT_ROLLBACK] = { "rollback to the stable version", CAIRN_ROLE_WRITE },
    [ACT_ROLLBACK_TO] = { "rollback to a chosen version (--to)", CAIRN_ROLE_PROMOTE },
    [ACT_FORCE] = { "force past the release check", CAIRN_ROLE_PROMOTE },
    [ACT_POLICY] = { "choosing the policy of the release check", CAIRN_ROLE_PROMOTE },
};

/* 1 if the token has the role `a` needs; else answers 403 naming both and returns 0. */
static int api_allow(struct cairn_http_req *req, const struct api_ctx *ctx, enum api_action a)
{
    if (ctx->tok->role >= api_roles[a].role)
        return 1;
    json_error(req, 403, NULL, "%s needs the %s role; the token has %s", api_roles[a].what,
               cairn_role_name(api_roles[a].role), cairn_role_name(ctx->tok->role));
    return 0;
}

/* Whether a token limited to models (cairn token create --model) may act on `name`. */
static int scope_allows(const struct cairn_token_info *t, const char *name, size_t len)
{
    if (!t->nmodels)
        return 1;
    for (size_t i = 0; i < t->nmodels; i++)
        if (strlen(t->models[i]) == len && !memcmp(t->models[i], name, len))
            return 1;
    return 0;
}

/* "token 'T' is limited to models 'a', 'b', not 'NAME'" in out. */
static void scope_message(struct cairn_buf *out, const struct cairn_token_info *t, const char *name,
                          size_t len)
{
    cairn_buf_printf(out, "token '%s' is limited to model%s ", t->name, t->nmodels == 1 ? "" : "s");
    for (size_t i = 0; i < t->nmodels; i++)
        cairn_buf_printf(out, "%s'%s'", i ? ", " : "", t->models[i]);
    cairn_buf_printf(out, ", not '%.*s'", (int)(len < 64 ? len : 64), name);
}

/* 1 if the token may act on model `name`; else answers 403 naming its models and returns 0. */
static int scope_check(struct cairn_http_req *req, const struct cairn_token_info *t,
                       const char *name, size_t len)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    if (scope_allows(t, name, len))
        return 1;
    scope_message(&b, t, name, len);
    json_error(req, 403, NULL, "%s", b.ptr ? b.ptr : "out of memory");
    cairn_buf_release(&b);
    return 0;
}

static int status_of(int error);

/*
 * Answer a failed job: its message, with the status it chose or status_of()'s.
 * A refusal by the release check (409) also names the policy and the gate.
 */
static void api_refusal(struct job *j)
{
    json_t *o;
    if (j->status != 409 || !j->chk.policy_name) {
        json_error(j->req, j->status ? j->status : status_of(j->error), NULL, "%s", j->msg);
        return;
    }
    o = json_object();
    json_object_set_new(o, "error", json_string(j->msg));
    json_object_set_new(o, "policy", json_string(j->chk.policy_name));
    json_object_set_new(o, "gate", j->chk.have_gate ? json_integer(j->chk.gate_id) : json_null());
    json_object_set_new(o, "gate_passed",
                        j->chk.have_gate ? json_boolean(j->chk.gate_passed) : json_null());
    respond_json(j->req, 409, o);
}

/*
 * A REF from a request body: 0 and *out, or answers 400 saying what is wrong
 * (missing, not a string, too long, not a reference) and returns -1.
 */
static int body_ref(const char **out, struct cairn_http_req *req, json_t *body, const char *key,
                    int required)
{
    static const char form[] =
        "MODEL, MODEL@vN, MODEL@ALIAS, MODEL@TAG or a version id of at "
        "least 7 hex digits";
    json_t *v = json_object_get(body, key);
    const char *ref = json_string_value(v);
    size_t n = ref ? strlen(ref) : 0;
    *out = NULL;
    if (!v && !required)
        return 0;
    if (!v) {
        json_error(req, 400, NULL, "'%s' is required: %s", key, form);
        return -1;
    }
    if (!ref) {
        json_error(req, 400, NULL, "'%s' must be a string: %s", key, form);
        return -1;
    }
    if (n >= 256) {
        json_error(req, 400, NULL, "'%s' is too long (%zu bytes, at most 255): %s", key, n, form);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)ref[i] <= ' ' || ref[i] == 127) {
            json_error(req, 400, NULL, "'%s' is not a valid reference: %s", key, form);
            return -1;
        }
    }
    if (!n) {
        json_error(req, 400, NULL, "'%s' is empty: %s", key, form);
        return -1;
    }
    *out = ref;
    return 0;
}

/*
 * `force` and `reason` of a request body: *force 1 when force is true. A
 * force without a reason answers 400 and returns -1.
 */
static int body_force(int *force, const char **reason, struct cairn_http_req *req, json_t *body)
{
    json_t *f = json_object_get(body, "force"), *why = json_object_get(body, "reason");
    *force = json_is_true(f);
    *reason = json_string_value(why);
    if ((f && !json_is_boolean(f)) || (why && !*reason)) {
        json_error(req, 400, NULL, "'force' is true or false and 'reason' a string");
        return -1;
    }
    if (*force && (!*reason || !**reason || strlen(*reason) > 1000)) {
        json_error(req, 400, NULL, "force needs a 'reason' (1 to 1000 bytes)");
        return -1;
    }
    return 0;
}

/* ---- rollout start ---- */

/*
 * Resolve the candidate and the stable version, and apply the release
 * check before any traffic moves: the candidate must have passed the gate
 * of the alias's policy, unless forced (with a reason, promote role).
 */
static int work_start(struct job *j, struct cairn_repo *repo)
{
    struct cairn_registry *reg = cairn_repo_registry(repo);
    struct cairn_version v, s;
    int error;
    if ((error = cairn_repo_resolve(repo, j->ref, &v)) < 0)
        return error;
    snprintf(j->model, sizeof(j->model), "%s", v.model);
    j->oid = v.id;
    j->num = v.number;
    if (!scope_allows(&j->tok, j->model, strlen(j->model))) {
        struct cairn_buf b = CAIRN_BUF_INIT;
        scope_message(&b, &j->tok, j->model, strlen(j->model));
        j->status = 403;
        error = cairn_error_set(CAIRN_EINVALID, "%s", b.ptr ? b.ptr : "out of memory");
        cairn_buf_release(&b);
        goto done;
    }
    if ((error = cairn_registry_alias_get(reg, j->model, j->alias, &j->oid2)) < 0) {
        cairn_error_prefix("cannot roll out without a stable version (set the alias first)");
        goto done;
    }
    if ((error = cairn_registry_version_get(reg, &j->oid2, &s)) < 0)
        goto done;
    j->num2 = s.number;
    cairn_version_release(&s);
    if (!cairn_oid_cmp(&j->oid, &j->oid2)) {
        error =
            cairn_error_set(CAIRN_EINVALID, "'%s' is already %s@%s", j->ref, j->model, j->alias);
        goto done;
    }
    error = cairn_repo_release_check(&j->chk, repo, &v, j->alias, j->policy, "roll out");
    if (error < 0 && j->force && cairn_release_check_forcible(error)) {
        cairn_error_clear();
        j->forced = 1;
        error = 0;
    } else if (error == CAIRN_ECHECK) {
        j->status = 409;
    }
done:
    cairn_version_release(&v);
    return error;
}

static struct model *model_get_or_add(struct router *r, const char *name, const char *alias)
{
    struct model *m = model_find(r, name, strlen(name));
    if (m)
        return m;
    if (!(m = model_alloc(r, name)))
        return NULL;
    snprintf(m->alias, sizeof(m->alias), "%s", alias);
    if (!model_add(r, m)) {
        cairn_livewin_free(m->inputs);
        free(m);
        return NULL;
    }
    return m;
}

static void start_rollout(struct model *m, struct upstream *cand, const struct cairn_plan *plan,
                          char *plan_text)
{
    m->candidate = cand;
    m->plan = *plan;
    free(m->plan_text);
    m->plan_text = plan_text;
    m->phase = PH_RUNNING;
    m->step = 0;
    m->failures = 0;
    m->step_passed = 0;
    m->step_base_ms = 0;
    m->step_started = uv_now(m->r->loop);
    m->report[0] = '\0';
    set_reason(m, NULL);
    free(m->forced);
    free(m->policy);
    m->forced = m->policy = NULL;
    reset_windows(m);
    apply_step_weight(m);
    tick_start(m);
}

static int status_of(int error)
{
    switch (error) {
    case CAIRN_ENOTFOUND:
        return 404;
    case CAIRN_EINVALID:
    case CAIRN_EAMBIGUOUS:
        return 400;
    case CAIRN_EEXISTS:
    case CAIRN_ECHECK:
        return 409;
    default:
        return 500;
    }
}

static struct upstream *use_version(struct model *m, const cairn_oid *id, int number)
{
    if (m->previous && !cairn_oid_cmp(&m->previous->id, id)) {
        struct upstream *u = m->previous;
        m->previous = NULL;
        return u;
    }
    return upstream_new(m, id, number);
}

static void done_start(struct job *j)
{
    struct router *r = j->r;
    struct model *m;
    struct upstream *cand;
    char *details;
    if (j->error < 0) {
        api_refusal(j);
        return;
    }
    if (!(m = model_get_or_add(r, j->model, j->alias))) {
        json_error(j->req, 503, NULL, "too many models");
        return;
    }
    if (rollout_active(m) || m->promoting) {
        json_error(j->req, 409, NULL, "'%s' has a rollout under way (%s %s)", m->name,
                   phase_names[m->phase], m->candidate ? m->candidate->label : "");
        return;
    }
    snprintf(m->alias, sizeof(m->alias), "%s", j->alias);
    if (!m->stable || cairn_oid_cmp(&m->stable->id, &j->oid2)) {
        struct upstream *s = use_version(m, &j->oid2, j->num2);
        if (!s) {
            json_error(j->req, 503, NULL, "out of memory");
            return;
        }
        upstream_retire(m->stable);
        m->stable = s;
    }
    if (!(cand = use_version(m, &j->oid, j->num))) {
        json_error(j->req, 503, NULL, "out of memory");
        return;
    }
    start_rollout(m, cand, &j->plan, j->plan_text);
    j->plan_text = NULL;
    m->started_ns = cairn_time_now_ns();
    if (j->forced)
        m->forced = strdup(j->reason);
    m->policy = j->policy;
    j->policy = NULL;
    logf_(r, "%s: rollout of %s to %s started (%s)%s", m->name, cand->label, m->alias,
          cairn_strategy_name(m->plan.strategy),
          j->forced ? ", forced past the release check" : "");
    /* Audited as promote audits: forced, policy, policy_name, gate, and the reason if forced. */
    details = details_json(m, NULL, NULL, NULL);
    if (cairn_release_check_annotate(&details, &j->chk, j->forced, j->forced ? j->reason : NULL) <
        0)
        logf_(r, "%s: %s", m->name, cairn_error_last());
    model_save_ex(m, j->actor, "rollout.start", details, 0, NULL);
    respond_json(j->req, 201, model_json(m));
}

static void api_start(struct router *r, struct cairn_http_req *req, const struct api_ctx *ctx)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    const char *ref, *alias, *plan_text, *reason, *policy;
    struct job *j;
    int error, force;

    if (!body || !json_is_object(body)) {
        json_decref(body);
        json_error(req, 400, NULL, "expected a JSON object {\"ref\", \"alias\", \"plan\"}");
        return;
    }
    alias = json_string_value(json_object_get(body, "alias"));
    plan_text = json_string_value(json_object_get(body, "plan"));
    policy = json_string_value(json_object_get(body, "policy"));
    if (body_ref(&ref, req, body, "ref", 1) < 0 || body_force(&force, &reason, req, body) < 0) {
        json_decref(body);
        return;
    }
    if (json_object_get(body, "policy") && (!policy || policy[0] != '/' || strlen(policy) > 4000)) {
        json_error(req, 400, NULL, "'policy' is the absolute path of a policy file");
        json_decref(body);
        return;
    }
    if (policy && !api_allow(req, ctx, ACT_POLICY)) {
        json_decref(body);
        return;
    }
    if (!alias)
        alias = r->default_alias;
    if (cairn_name_valid(alias, "alias") < 0) {
        json_decref(body);
        json_error(req, 400, NULL, "%s", cairn_error_last());
        return;
    }
    if (!(j = job_new(r, work_start, done_start))) {
        json_decref(body);
        json_error(req, 503, NULL, "out of memory");
        return;
    }
    if (plan_text && *plan_text) {
        const char *pname = json_string_value(json_object_get(body, "plan_name"));
        if ((error = cairn_plan_parse(&j->plan, pname ? pname : "plan", plan_text,
                                      strlen(plan_text))) < 0) {
            json_decref(body);
            free(j);
            json_error(req, 400, NULL, "%s", cairn_error_last());
            return;
        }
        j->plan_text = strdup(plan_text);
    } else {
        cairn_plan_default(&j->plan);
        j->plan_text = strdup("");
    }
    /* The plan decides the role: one that promotes with nothing judged is a promotion. */
    if ((!j->plan.nchecks &&
         (j->plan.strategy == CAIRN_STRATEGY_CANARY ||
          j->plan.strategy == CAIRN_STRATEGY_BLUEGREEN) &&
         !api_allow(req, ctx, ACT_START_UNANALYSED)) ||
        (force && !api_allow(req, ctx, ACT_FORCE))) {
        json_decref(body);
        free(j->plan_text);
        free(j);
        return;
    }
    snprintf(j->ref, sizeof(j->ref), "%s", ref);
    snprintf(j->alias, sizeof(j->alias), "%s", alias);
    snprintf(j->actor, sizeof(j->actor), "%s", ctx->actor);
    j->tok = *ctx->tok;
    j->force = force;
    j->reason = reason ? strdup(reason) : NULL;
    j->policy = policy ? strdup(policy) : NULL;
    j->req = req;
    json_decref(body);
    if (!j->plan_text || (reason && !j->reason) || (policy && !j->policy)) {
        free(j->plan_text);
        free(j->reason);
        free(j->policy);
        free(j);
        json_error(req, 503, NULL, "out of memory");
        return;
    }
    job_submit(j);
}

/* ---- manual rollback ---- */

/*
 * Move the alias back to its previous version, or to `ref`: a version of
 * one's choosing passes the release check (unless forced) in the
 * transaction that moves the alias.
 */
static int work_rollback(struct job *j, struct cairn_repo *repo)
{
    struct cairn_registry *reg = cairn_repo_registry(repo);
    struct cairn_version v;
    char hex[CAIRN_OID_HEXSZ + 1];
    int error;
    if (j->ref[0]) {
        if ((error = cairn_repo_resolve(repo, j->ref, &v)) < 0)
            return error;
        if (strcmp(v.model, j->model)) {
            cairn_version_release(&v);
            return cairn_error_set(CAIRN_EINVALID, "'%s' is not a version of '%s'", j->ref,
                                   j->model);
        }
    } else {
        cairn_oid prev;
        if ((error = cairn_registry_serve_alias_previous(reg, j->model, j->alias, &prev)) < 0 ||
            (error = cairn_registry_version_get(reg, &prev, &v)) < 0)
            return error;
    }
    j->oid = v.id;
    j->num = v.number;
    if ((error = cairn_registry_begin(reg)) < 0)
        goto done;
    if (j->ref[0]) {
        error = cairn_repo_release_check(&j->chk, repo, &v, j->alias, NULL, "roll back");
        if (error < 0 && (!j->force || !cairn_release_check_forcible(error))) {
            j->status = error == CAIRN_ECHECK ? 409 : 0;
            goto rollback;
        }
        cairn_error_clear();
        j->forced = error < 0;
        error = 0;
    }
    {
        json_t *d = json_object();
        char to[80];
        snprintf(to, sizeof(to), "%s@v%d", j->model, j->num);
        json_object_set_new(d, "to", json_string(to));
        json_object_set_new(d, "id", json_string(cairn_oid_fmt(hex, &j->oid)));
        if (!(j->details = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS)))
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        json_decref(d);
    }
    if (error < 0 ||
        (j->ref[0] && (error = cairn_release_check_annotate(&j->details, &j->chk, j->forced,
                                                            j->forced ? j->reason : NULL)) < 0) ||
        (error = cairn_registry_serve_alias_move(reg, j->model, j->alias, &j->oid, j->actor,
                                                 "rollback", "rollback", j->details)) < 0)
        goto rollback;
    error = cairn_registry_commit(reg);
    goto done;
rollback:
    cairn_registry_rollback(reg);
done:
    cairn_version_release(&v);
    return error;
}

static void done_rollback(struct job *j)
{
    struct model *m;
    struct upstream *u;
    if (j->error < 0) {
        api_refusal(j);
        return;
    }
    m = model_get_or_add(j->r, j->model, j->alias);
    if (!m) {
        json_error(j->req, 503, NULL, "too many models");
        return;
    }
    if (!m->stable || cairn_oid_cmp(&m->stable->id, &j->oid)) {
        if (!(u = use_version(m, &j->oid, j->num))) {
            json_error(j->req, 503, NULL, "out of memory");
            return;
        }
        /* The version rolled back from stays warm as the previous one. */
        upstream_retire(m->previous);
        m->previous = m->stable;
        m->stable = u;
    }
    logf_(j->r, "%s: rolled %s back to %s%s", m->name, m->alias, m->stable->label,
          j->forced ? " (forced past the release check)" : "");
    respond_json(j->req, 200, model_json(m));
}

/*
 * Back to the stable version (write role): end the rollout under way, or
 * move the alias to its previous version. To a version of one's choosing
 * (`to`, promote role): through the release check, as a promotion.
 */
static void api_rollback(struct router *r, struct cairn_http_req *req, const struct api_ctx *ctx)
{
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    const char *name = json_string_value(json_object_get(body, "model"));
    const char *alias = json_string_value(json_object_get(body, "alias"));
    const char *to, *reason;
    struct model *m;
    struct job *j;
    int force;

    if (!name || cairn_name_valid(name, "model name") < 0) {
        json_decref(body);
        json_error(req, 400, NULL, "expected {\"model\": NAME, \"alias\"?: ALIAS, \"to\"?: REF}");
        return;
    }
    if (body_ref(&to, req, body, "to", 0) < 0 || body_force(&force, &reason, req, body) < 0 ||
        (to && !api_allow(req, ctx, ACT_ROLLBACK_TO)) ||
        (force && !api_allow(req, ctx, ACT_FORCE)) ||
        !scope_check(req, ctx->tok, name, strlen(name))) {
        json_decref(body);
        return;
    }
    if (alias && cairn_name_valid(alias, "alias") < 0) {
        json_decref(body);
        json_error(req, 400, NULL, "%s", cairn_error_last());
        return;
    }
    m = model_find(r, name, strlen(name));
    if (!alias)
        alias = m ? m->alias : r->default_alias;
    if (m && m->promoting) {
        json_decref(body);
        json_error(req, 409, NULL, "'%s' is being promoted; try again", m->name);
        return;
    }
    /* During a rollout, rolling back means ending it: the alias never moved. */
    if (m && rollout_active(m) && !to && !strcmp(alias, m->alias)) {
        rollout_back(m, PH_ROLLED_BACK, ctx->actor, "rollout.rollback", "manual rollback", NULL,
                     NULL);
        json_decref(body);
        respond_json(req, 200, model_json(m));
        return;
    }
    if (!(j = job_new(r, work_rollback, done_rollback))) {
        json_decref(body);
        json_error(req, 503, NULL, "out of memory");
        return;
    }
    snprintf(j->model, sizeof(j->model), "%s", name);
    snprintf(j->alias, sizeof(j->alias), "%s", alias);
    snprintf(j->ref, sizeof(j->ref), "%s", to ? to : "");
    snprintf(j->actor, sizeof(j->actor), "%s", ctx->actor);
    j->force = force;
    j->reason = reason ? strdup(reason) : NULL;
    j->req = req;
    json_decref(body);
    if (m && rollout_active(m))
        rollout_back(m, PH_ABORTED, ctx->actor, "rollout.abort", "rollback", NULL, NULL);
    job_submit(j);
}

/* ---- feedback ---- */

/*
 * Labels of answers of a model the token is not limited to are refused
 * (counted, not joined): they would steer that model's analysis.
 */
static void api_feedback(struct router *r, struct cairn_http_req *req, const struct api_ctx *ctx)
{
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    json_t *items, *one;
    size_t i, joined = 0, unknown = 0, repeated = 0, refused = 0;
    json_t *out;

    if (!body) {
        json_error(req, 400, NULL, "expected JSON {\"request_id\": ID, \"label\": N} or a list");
        return;
    }
    if (json_is_array(body)) {
        items = body;
    } else {
        items = json_array();
        json_array_append(items, body);
    }
    json_array_foreach(items, i, one)
    {
        const char *id = json_string_value(json_object_get(one, "request_id"));
        json_t *lab = json_object_get(one, "label");
        long long label = -1;
        uint32_t mi;
        int32_t vnum;
        int correct, rc;
        if (json_is_integer(lab))
            label = json_integer_value(lab);
        else if (json_is_string(lab))
            label = strtoll(json_string_value(lab), NULL, 10);
        if (!id || label < 0 || label > INT32_MAX) {
            json_error(req, 400, NULL,
                       "each feedback needs \"request_id\" (string) and \"label\" (class index)");
            goto done;
        }
        if (ctx->tok->nmodels && cairn_feedback_model(r->feedback, id, strlen(id), &mi) == 0 &&
            (mi >= r->nmodels ||
             !scope_allows(ctx->tok, r->models[mi]->name, strlen(r->models[mi]->name)))) {
            refused++;
            continue;
        }
        rc = cairn_feedback_join(r->feedback, id, strlen(id), (int32_t)label, &mi, &vnum, &correct);
        if (rc == CAIRN_ENOTFOUND) {
            unknown++;
            r->feedback_unknown++;
            continue;
        }
        if (rc == CAIRN_EEXISTS) {
            repeated++;
            continue;
        }
        joined++;
        if (mi < r->nmodels) {
            struct model *m = r->models[mi];
            struct upstream *cands[3] = { m->stable, m->candidate, m->previous };
            for (int k = 0; k < 3; k++) {
                struct upstream *u = cands[k];
                if (u && u->number == vnum) {
                    u->win.labels++;
                    u->win.correct += (uint64_t)correct;
                    u->st.total.labels++;
                    u->st.total.correct += (uint64_t)correct;
                    break;
                }
            }
        }
    }
    out = json_object();
    json_object_set_new(out, "joined", json_integer((json_int_t)joined));
    json_object_set_new(out, "unknown", json_integer((json_int_t)unknown));
    json_object_set_new(out, "repeated", json_integer((json_int_t)repeated));
    if (ctx->tok->nmodels)
        json_object_set_new(out, "refused", json_integer((json_int_t)refused));
    respond_json_now(req, 200, out); /* feedback changes nothing in the registry */
done:
    if (items != body)
        json_decref(items);
    json_decref(body);
}

/* ---- live inputs ---- */

/* GET /models/NAME/inputs: the input window as CSV, its row count in X-Cairn-Window-Rows. */
static void api_inputs(struct router *r, struct cairn_http_req *req, const char *name, size_t len)
{
    struct model *m = model_find(r, name, len);
    struct cairn_buf b = CAIRN_BUF_INIT;
    struct cairn_http_response resp;
    char hdr[128];

    if (!m) {
        json_error(req, 404, NULL, "unknown model '%.*s'", (int)(len < 64 ? len : 64), name);
        return;
    }
    if (cairn_livewin_csv(&b, m->inputs) < 0) {
        cairn_buf_release(&b);
        json_error(req, 500, NULL, "out of memory");
        return;
    }
    snprintf(hdr, sizeof(hdr), "X-Cairn-Window-Rows: %zu\r\nX-Cairn-Window-Seen: %llu\r\n",
             cairn_livewin_rows(m->inputs), (unsigned long long)cairn_livewin_seen(m->inputs));
    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    resp.content_type = "text/csv; charset=utf-8";
    resp.headers = hdr;
    resp.body = b.ptr ? b.ptr : "";
    resp.body_len = b.len;
    resp.body_free = b.ptr ? free : NULL;
    cairn_http_respond(req, &resp);
}

/* ---- dispatch ---- */

/* The rollout actions by name, and the role each needs (api_roles). */
static const struct {
    const char *name;
    enum api_action act;
} rollout_actions[] = {
    { "pause", ACT_PAUSE },
    { "resume", ACT_RESUME },
    { "promote", ACT_PROMOTE },
    { "abort", ACT_ABORT },
};

/* GET: everything needs the read role; a token limited to models sees only those. */
static void api_get(struct router *r, struct cairn_http_req *req, const struct api_ctx *ctx,
                    const char *p)
{
    struct model *m;
    size_t n = strlen(p);
    if (!api_allow(req, ctx, ACT_READ))
        return;
    if (!strcmp(p, "/rollouts") || !strcmp(p, "/models")) {
        json_t *a = json_array();
        for (size_t i = 0; i < r->nmodels; i++)
            if (scope_allows(ctx->tok, r->models[i]->name, strlen(r->models[i]->name)))
                json_array_append_new(a, model_json(r->models[i]));
        respond_json(req, 200, a);
    } else if (!strncmp(p, "/models/", 8) && n > 15 && !strcmp(p + n - 7, "/inputs")) {
        if (scope_check(req, ctx->tok, p + 8, n - 15))
            api_inputs(r, req, p + 8, n - 15);
    } else if (!strncmp(p, "/rollouts/", 10) && !strchr(p + 10, '/')) {
        if (!scope_check(req, ctx->tok, p + 10, n - 10))
            return;
        if (!(m = model_find(r, p + 10, n - 10)))
            json_error(req, 404, NULL, "unknown model '%.64s'", p + 10);
        else
            respond_json(req, 200, model_json(m));
    } else {
        json_error(req, 404, NULL, "no route %s %s", req->method, req->path);
    }
}

/* POST /rollouts/NAME/ACTION. */
static void api_action(struct router *r, struct cairn_http_req *req, const struct api_ctx *ctx,
                       const char *name, size_t len, const char *action)
{
    struct model *m;
    enum api_action act = ACT_READ;
    int found = 0;
    for (size_t i = 0; i < sizeof(rollout_actions) / sizeof(rollout_actions[0]); i++)
        if (!strcmp(action, rollout_actions[i].name)) {
            act = rollout_actions[i].act;
            found = 1;
        }
    if (!found) {
        json_error(req, 404, NULL, "unknown action '%.32s'", action);
        return;
    }
    if (!api_allow(req, ctx, act) || !scope_check(req, ctx->tok, name, len))
        return;
    if (!(m = model_find(r, name, len))) {
        json_error(req, 404, NULL, "unknown model '%.*s'", (int)(len < 64 ? len : 64), name);
        return;
    }
    if (m->promoting) {
        json_error(req, 409, NULL, "'%s' is being promoted; try again", m->name);
        return;
    }
    switch (act) {
    case ACT_PAUSE:
        if (m->phase != PH_RUNNING) {
            json_error(req, 409, NULL, "'%s' has no running rollout", m->name);
            return;
        }
        m->step_base_ms = step_elapsed(m);
        m->phase = PH_PAUSED;
        model_save_ex(m, ctx->actor, "rollout.pause", NULL, 0, NULL);
        break;
    case ACT_RESUME:
        if (m->phase != PH_PAUSED || !m->candidate) {
            json_error(req, 409, NULL, "'%s' has no paused rollout", m->name);
            return;
        }
        m->phase = PH_RUNNING;
        m->failures = 0;
        m->step_started = uv_now(r->loop);
        apply_step_weight(m);
        tick_start(m);
        model_save_ex(m, ctx->actor, "rollout.resume", NULL, 0, NULL);
        break;
    case ACT_PROMOTE:
        if (!m->candidate || (!rollout_active(m) && m->phase != PH_CONCLUDED)) {
            json_error(req, 409, NULL, "'%s' has no rollout to promote", m->name);
            return;
        }
        rollout_promote(m, ctx->actor, "manual promotion", req);
        return; /* answered once the registry moved the alias */
    default:    /* ACT_ABORT */
        if (!rollout_active(m)) {
            json_error(req, 409, NULL, "'%s' has no rollout under way", m->name);
            return;
        }
        rollout_back(m, PH_ABORTED, ctx->actor, "rollout.abort", "aborted", NULL, NULL);
        break;
    }
    respond_json(req, 200, model_json(m));
}

static void api_dispatch(struct router *r, struct cairn_http_req *req, const struct api_ctx *ctx)
{
    const char *p = req->path + 7; /* after "/api/v1" */
    const char *slash;

    if (!strcmp(req->method, "GET")) {
        api_get(r, req, ctx, p);
    } else if (strcmp(req->method, "POST")) {
        json_error(req, 404, NULL, "no route %s %s", req->method, req->path);
    } else if (!strcmp(p, "/rollouts")) {
        if (api_allow(req, ctx, ACT_START)) /* more when the plan or force says so */
            api_start(r, req, ctx);
    } else if (!strncmp(p, "/rollouts/", 10) && (slash = strchr(p + 10, '/'))) {
        api_action(r, req, ctx, p + 10, (size_t)(slash - (p + 10)), slash + 1);
    } else if (!strcmp(p, "/rollback")) {
        if (api_allow(req, ctx, ACT_ROLLBACK)) /* more with "to" or force */
            api_rollback(r, req, ctx);
    } else if (!strcmp(p, "/feedback")) {
        if (api_allow(req, ctx, ACT_FEEDBACK))
            api_feedback(r, req, ctx);
    } else {
        json_error(req, 404, NULL, "no route %s %s", req->method, req->path);
    }
}

static void done_token(struct job *j)
{
    struct router *r = j->r;
    struct token_entry *t = &r->tokens[r->token_next];
    struct api_ctx ctx;
    r->token_next = (r->token_next + 1) % TOKEN_CACHE;
    t->hash = j->oid;
    if (j->error < 0)
        memset(&t->info, 0, sizeof(t->info));
    else
        t->info = j->tok;
    t->expires = uv_now(r->loop) + TOKEN_TTL_MS;
    if (j->error < 0 && j->error != CAIRN_ENOTFOUND) {
        json_error(j->req, 500, NULL, "%s", j->msg);
        return;
    }
    if (t->info.role == CAIRN_ROLE_NONE) {
        json_error(j->req, 401, "WWW-Authenticate: Bearer\r\n", "invalid token");
        return;
    }
    ctx.tok = &t->info;
    snprintf(ctx.actor, sizeof(ctx.actor), "token:%s", t->info.name);
    api_dispatch(r, j->req, &ctx);
}

static int work_token(struct job *j, struct cairn_repo *repo)
{
    return cairn_registry_token_find(cairn_repo_registry(repo), &j->oid, &j->tok);
}

static void handle_api(struct router *r, struct cairn_http_req *req)
{
    const char *auth = cairn_http_header_find(req->headers, req->nheaders, "Authorization");
    cairn_oid h;
    struct job *j;
    uint64_t now = uv_now(r->loop);

    if (!auth || strncasecmp(auth, "Bearer ", 7) || !auth[7]) {
        json_error(req, 401, "WWW-Authenticate: Bearer\r\n", "a bearer token is required");
        return;
    }
    cairn_hash(&h, auth + 7, strlen(auth + 7));
    for (size_t i = 0; i < TOKEN_CACHE; i++) {
        struct token_entry *t = &r->tokens[i];
        if (t->expires > now && !cairn_oid_cmp(&t->hash, &h)) {
            struct api_ctx ctx;
            if (t->info.role == CAIRN_ROLE_NONE) {
                json_error(req, 401, "WWW-Authenticate: Bearer\r\n", "invalid token");
                return;
            }
            ctx.tok = &t->info;
            snprintf(ctx.actor, sizeof(ctx.actor), "token:%s", t->info.name);
            api_dispatch(r, req, &ctx);
            return;
        }
    }
    if (!(j = job_new(r, work_token, done_token))) {
        json_error(req, 503, NULL, "out of memory");
        return;
    }
    j->oid = h;
    j->req = req;
    job_submit(j);
}

/* ======================================================================
 * /metrics
 * ====================================================================== */

static void metrics_labels(char *out, size_t cap, const struct model *m, const struct upstream *u)
{
    char mn[140];
    cairn_prom_escape(mn, sizeof(mn), m->name);
    snprintf(out, cap, "model=\"%s\",version=\"v%d\",role=\"%s\"", mn, u->number,
             u == m->stable      ? "stable"
             : u == m->candidate ? "candidate"
                                 : "previous");
}

/* The data-plane listener's accounting (limits.h) and the shadow copies held. */
static void metrics_limits(struct cairn_buf *b, const struct router *r)
{
    static const char *const lim[] = { "", "global", "client" };
    struct cairn_limits_stats st;
    char lab[64];
    memset(&st, 0, sizeof(st));
    if (r->server)
        cairn_limits_stats(cairn_http_server_limits(r->server), &st);
    cairn_prom_family(b, "cairn_http_connections", "gauge", "Client connections open.");
    cairn_prom_sample(b, "cairn_http_connections", "", (double)st.conns);
    cairn_prom_family(b, "cairn_http_buffered_bytes", "gauge",
                      "Bytes buffered for clients (bodies, pipelined input, queued answers).");
    cairn_prom_sample(b, "cairn_http_buffered_bytes", "", (double)st.bytes);
    cairn_prom_family(
        b, "cairn_http_refused_total", "counter",
        "Connections and requests refused by a cap (limit global: 503, client: 429).");
    for (int i = 1; i < 3; i++) {
        snprintf(lab, sizeof(lab), "what=\"connection\",limit=\"%s\"", lim[i]);
        cairn_prom_sample(b, "cairn_http_refused_total", lab, (double)st.refused_conns[i]);
        snprintf(lab, sizeof(lab), "what=\"bytes\",limit=\"%s\"", lim[i]);
        cairn_prom_sample(b, "cairn_http_refused_total", lab, (double)st.refused_bytes[i]);
    }
    cairn_prom_family(b, "cairn_shadow_skipped_total", "counter",
                      "Requests not mirrored because shadow copies were at their cap.");
    cairn_prom_sample(b, "cairn_shadow_skipped_total", "", (double)r->mirror_skipped);
}

static void handle_metrics(struct router *r, struct cairn_http_req *req)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    char lab[256], lab2[300];
    struct cairn_http_response resp;

    cairn_prom_family(&b, "cairn_requests_total", "counter",
                      "Requests answered per model and version, by HTTP status.");
    for (size_t i = 0; i < r->nmodels; i++) {
        struct model *m = r->models[i];
        struct upstream *us[3] = { m->stable, m->candidate, m->previous };
        for (int k = 0; k < 3; k++) {
            if (!us[k])
                continue;
            metrics_labels(lab, sizeof(lab), m, us[k]);
            for (int s = 0; s < CAIRN_STATUS_SLOTS; s++) {
                if (s && !us[k]->st.codes.code[s])
                    continue;
                if (!s && !us[k]->st.codes.n[0])
                    continue;
                snprintf(lab2, sizeof(lab2), "%s,code=\"%s%d\"", lab, s ? "" : "other",
                         s ? us[k]->st.codes.code[s] : 0);
                if (!s)
                    snprintf(lab2, sizeof(lab2), "%s,code=\"other\"", lab);
                cairn_prom_sample(&b, "cairn_requests_total", lab2, (double)us[k]->st.codes.n[s]);
            }
        }
    }
    cairn_prom_family(&b, "cairn_request_duration_seconds", "histogram",
                      "Time from routing a request to its upstream answer.");
    for (size_t i = 0; i < r->nmodels; i++) {
        struct model *m = r->models[i];
        struct upstream *us[3] = { m->stable, m->candidate, m->previous };
        for (int k = 0; k < 3; k++) {
            if (!us[k])
                continue;
            metrics_labels(lab, sizeof(lab), m, us[k]);
            cairn_prom_hist_render(&b, "cairn_request_duration_seconds", lab, &us[k]->st.hist);
        }
    }
    cairn_prom_family(&b, "cairn_upstream_errors_total", "counter",
                      "Requests whose upstream could not be reached or timed out.");
    cairn_prom_family(&b, "cairn_traffic_weight", "gauge",
                      "Share of the model's traffic the version receives (0..1).");
    cairn_prom_family(&b, "cairn_upstream_ready", "gauge",
                      "1 when the version's upstream is ready.");
    cairn_prom_family(&b, "cairn_live_accuracy", "gauge",
                      "Share of feedback labels that matched the answer served.");
    cairn_prom_family(&b, "cairn_feedback_labels_total", "counter",
                      "Feedback labels joined to answers of the version.");
    cairn_prom_family(&b, "cairn_shadow_agreement", "gauge",
                      "Share of mirrored requests where the candidate's argmax equals stable's.");
    for (size_t i = 0; i < r->nmodels; i++) {
        struct model *m = r->models[i];
        struct upstream *us[3] = { m->stable, m->candidate, m->previous };
        for (int k = 0; k < 3; k++) {
            const struct upstream *u = us[k];
            double w;
            if (!u)
                continue;
            metrics_labels(lab, sizeof(lab), m, u);
            w = u == m->candidate ? m->weight_bp / 10000.0
                : u == m->stable  ? 1.0 - (m->candidate ? m->weight_bp / 10000.0 : 0)
                                  : 0;
            cairn_prom_sample(&b, "cairn_upstream_errors_total", lab,
                              (double)u->st.upstream_errors);
            cairn_prom_sample(&b, "cairn_traffic_weight", lab, w);
            cairn_prom_sample(&b, "cairn_upstream_ready", lab, u->ready);
            if (u->st.total.labels)
                cairn_prom_sample(&b, "cairn_live_accuracy", lab,
                                  (double)u->st.total.correct / (double)u->st.total.labels);
            cairn_prom_sample(&b, "cairn_feedback_labels_total", lab, (double)u->st.total.labels);
            if (u->st.total.shadow_compared)
                cairn_prom_sample(&b, "cairn_shadow_agreement", lab,
                                  (double)u->st.total.shadow_agreed /
                                      (double)u->st.total.shadow_compared);
        }
    }
    cairn_prom_family(&b, "cairn_rollout_phase", "gauge",
                      "1 for the phase the model's rollout is in, 0 for the others.");
    for (size_t i = 0; i < r->nmodels; i++) {
        char mn[140];
        cairn_prom_escape(mn, sizeof(mn), r->models[i]->name);
        for (int p = 0; p < 7; p++) {
            snprintf(lab, sizeof(lab), "model=\"%s\",phase=\"%s\"", mn, phase_names[p]);
            cairn_prom_sample(&b, "cairn_rollout_phase", lab, (int)r->models[i]->phase == p);
        }
    }
    cairn_prom_family(&b, "cairn_rollout_step", "gauge", "Current step of the rollout (1-based).");
    for (size_t i = 0; i < r->nmodels; i++) {
        char mn[140];
        cairn_prom_escape(mn, sizeof(mn), r->models[i]->name);
        snprintf(lab, sizeof(lab), "model=\"%s\"", mn);
        cairn_prom_sample(&b, "cairn_rollout_step", lab, r->models[i]->step + 1);
    }
    cairn_prom_family(&b, "cairn_feedback_unknown_total", "counter",
                      "Feedback for request ids not (or no longer) remembered.");
    cairn_prom_sample(&b, "cairn_feedback_unknown_total", "", (double)r->feedback_unknown);
    metrics_limits(&b, r);
    cairn_prom_family(
        &b, "cairn_registry_jobs", "gauge",
        "Registry jobs (saves, lookups, answers waiting for them) queued or running.");
    cairn_prom_sample(&b, "cairn_registry_jobs", "", (double)r->njobs);
    cairn_prom_family(&b, "cairn_input_window_rows", "gauge",
                      "Input rows held in the model's live drift window.");
    for (size_t i = 0; i < r->nmodels; i++) {
        char mn[140];
        cairn_prom_escape(mn, sizeof(mn), r->models[i]->name);
        snprintf(lab, sizeof(lab), "model=\"%s\"", mn);
        cairn_prom_sample(&b, "cairn_input_window_rows", lab,
                          (double)cairn_livewin_rows(r->models[i]->inputs));
    }
    cairn_prom_family(&b, "cairn_input_drift_psi", "gauge",
                      "PSI of the input window against the model's reference, per feature.");
    for (size_t i = 0; i < r->nmodels; i++) {
        char mn[140];
        cairn_prom_escape(mn, sizeof(mn), r->models[i]->name);
        cairn_livewin_prom_psi(&b, r->models[i]->inputs, mn);
    }
    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp.body = b.ptr ? b.ptr : "";
    resp.body_len = b.len;
    resp.body_free = b.ptr ? free : NULL;
    cairn_http_respond(req, &resp);
}

/* ======================================================================
 * Request entry points
 * ====================================================================== */

static void handle_health(struct router *r, struct cairn_http_req *req, int ready)
{
    if (ready) {
        for (size_t i = 0; i < r->nmodels; i++) {
            struct model *m = r->models[i];
            if (!m->stable || !m->stable->ready) {
                json_error(req, 503, NULL, "'%s' is not ready", m->name);
                return;
            }
        }
        cairn_http_respond_simple(req, 200, "application/json", "{\"ready\":true}", 14);
        return;
    }
    cairn_http_respond_simple(req, 200, "application/json", "{\"live\":true}", 13);
}

static void on_request_common(struct cairn_http_req *req, struct router *r, int control_here,
                              int data_here)
{
    const char *p = req->path;
    if (data_here && !strncmp(p, "/v2/models/", 11)) {
        handle_model(r, req, p + 11);
    } else if (control_here && !strncmp(p, "/api/v1/", 8)) {
        handle_api(r, req);
    } else if (!strcmp(p, "/metrics")) {
        handle_metrics(r, req);
    } else if (!strcmp(p, "/v2/health/live")) {
        handle_health(r, req, 0);
    } else if (!strcmp(p, "/v2/health/ready")) {
        handle_health(r, req, 1);
    } else {
        json_error(req, 404, NULL, "no route %s", p);
    }
}

static void on_request(struct cairn_http_req *req, void *userdata)
{
    struct router *r = userdata;
    on_request_common(req, r, r->control == NULL, 1);
}

static void on_control_request(struct cairn_http_req *req, void *userdata)
{
    on_request_common(req, userdata, 1, 0);
}

/* ======================================================================
 * Start-up and shutdown
 * ====================================================================== */

/* Live drift: recompute PSI of changed windows on the thread pool. */
static void on_drift_timer(uv_timer_t *t)
{
    struct router *r = t->data;
    for (size_t i = 0; i < r->nmodels; i++)
        cairn_livewin_refresh(r->models[i]->inputs);
}

struct rollout_end {
    char model[65];
    int promoted;
    char why[256];
};

struct load_ctx {
    struct router *r;
    struct cairn_repo *repo;
    int error;
    /* rollouts that ended while the daemon was down (reconcile_rollout()) */
    struct rollout_end ends[MAX_MODELS];
    size_t nends;
};

static int version_number(struct cairn_repo *repo, const cairn_oid *id, int *out)
{
    struct cairn_version v;
    int error = cairn_registry_version_get(cairn_repo_registry(repo), id, &v);
    if (error < 0)
        return error;
    *out = v.number;
    cairn_version_release(&v);
    return 0;
}

/*
 * Store that a rollout ended while the daemon was down (`phase`, `why`),
 * audited as `action`, in one transaction. Start-up is the only caller.
 */
static int rollout_end_stored(struct cairn_repo *repo, const struct cairn_rollout_state *s,
                              const char *phase, const char *action, const char *why)
{
    struct cairn_registry *reg = cairn_repo_registry(repo);
    struct cairn_rollout_state st = *s; /* borrows s->plan */
    struct cairn_buf details = CAIRN_BUF_INIT;
    char subject[140];
    int error;

    snprintf(st.phase, sizeof(st.phase), "%s", phase);
    st.reason = (char *)why;
    st.updated_ns = 0;
    snprintf(subject, sizeof(subject), "%s@%s", s->model, s->alias);
    if ((error = cairn_buf_puts(&details, "{\"reason\":")) < 0 ||
        (error = cairn_json_put_string(&details, why)) < 0 ||
        (error = cairn_buf_putc(&details, '}')) < 0 || (error = cairn_registry_begin(reg)) < 0)
        goto done;
    if ((error = cairn_registry_rollout_put(reg, &st)) < 0 ||
        (error = cairn_registry_audit_append(reg, "cairn-serve", action, subject, details.ptr)) < 0)
        cairn_registry_rollback(reg);
    else
        error = cairn_registry_commit(reg);
done:
    cairn_buf_release(&details);
    return error;
}

/*
 * The registry's alias is the truth: a stored rollout whose alias points at
 * its candidate was promoted (the daemon stopped before it could record
 * that), one whose alias points at a third version was overtaken (someone
 * moved the alias meanwhile). Either is finished, not resumed: returns 1
 * and queues the end for end_rollouts(), which stores it once the listing
 * is over. Returns 0 to resume.
 */
static int reconcile_rollout(struct load_ctx *lc, const struct cairn_rollout_state *s)
{
    struct rollout_end *e;
    cairn_oid cur;
    int num = 0;

    if (cairn_registry_alias_get(cairn_repo_registry(lc->repo), s->model, s->alias, &cur) < 0) {
        cairn_error_clear();
        return 0;
    }
    if (!cairn_oid_cmp(&cur, &s->stable) || lc->nends >= MAX_MODELS)
        return 0;
    if (version_number(lc->repo, &cur, &num) < 0)
        cairn_error_clear();
    e = &lc->ends[lc->nends++];
    snprintf(e->model, sizeof(e->model), "%s", s->model);
    e->promoted = !cairn_oid_cmp(&cur, &s->candidate);
    snprintf(e->why, sizeof(e->why), "%s@%s already pointed at %s@v%d when serve started", s->model,
             s->alias, s->model, num);
    return 1;
}

/* Store the ends reconcile_rollout() found. */
static int end_rollouts(struct load_ctx *lc)
{
    for (size_t i = 0; i < lc->nends; i++) {
        const struct rollout_end *e = &lc->ends[i];
        struct cairn_rollout_state s;
        struct model *m;
        int error;
        if ((error = cairn_registry_rollout_get(cairn_repo_registry(lc->repo), e->model, &s)) ==
            0) {
            error = rollout_end_stored(lc->repo, &s, e->promoted ? "promoted" : "aborted",
                                       e->promoted ? "rollout.promote" : "rollout.abort", e->why);
            cairn_rollout_state_release(&s);
        }
        if (error < 0) {
            cairn_error_prefix("cannot end the rollout of '%s'", e->model);
            return error;
        }
        logf_(lc->r, "%s: rollout %s: %s", e->model, e->promoted ? "promoted" : "aborted", e->why);
        if ((m = model_find(lc->r, e->model, strlen(e->model))) && !m->candidate) {
            m->phase = e->promoted ? PH_PROMOTED : PH_ABORTED;
            set_reason(m, e->why);
        }
    }
    return 0;
}

static int load_rollout(const struct cairn_rollout_state *s, void *payload)
{
    struct load_ctx *lc = payload;
    struct router *r = lc->r;
    struct model *m;
    int active = !strcmp(s->phase, "running") || !strcmp(s->phase, "paused");
    int sn, cn;
    struct cairn_plan plan;

    if (!active)
        return 0;
    if (reconcile_rollout(lc, s))
        return 0;
    if (version_number(lc->repo, &s->stable, &sn) < 0 ||
        version_number(lc->repo, &s->candidate, &cn) < 0) {
        logf_(r, "%s: cannot resume rollout: %s", s->model, cairn_error_last());
        return 0;
    }
    if (s->plan[0]) {
        if (cairn_plan_parse(&plan, "stored plan", s->plan, strlen(s->plan)) < 0) {
            logf_(r, "%s: cannot resume rollout: %s", s->model, cairn_error_last());
            return 0;
        }
    } else {
        cairn_plan_default(&plan);
    }
    if (!(m = model_get_or_add(r, s->model, s->alias)))
        return 0;
    snprintf(m->alias, sizeof(m->alias), "%s", s->alias);
    if (m->stable && cairn_oid_cmp(&m->stable->id, &s->stable)) {
        upstream_retire(m->stable);
        m->stable = NULL;
    }
    if (!m->stable && !(m->stable = upstream_new(m, &s->stable, sn)))
        return lc->error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    start_rollout(m, upstream_new(m, &s->candidate, cn), &plan, strdup(s->plan));
    if (!m->candidate || !m->plan_text)
        return lc->error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    m->step = s->step < (int)plan.nsteps ? s->step : (int)plan.nsteps - 1;
    m->failures = s->failures;
    m->step_passed = s->step_passed;
    m->step_base_ms = (uint64_t)(s->step_elapsed_ms > 0 ? s->step_elapsed_ms : 0);
    m->started_ns = s->started_ns;
    m->forced = s->forced ? strdup(s->forced) : NULL;
    m->policy = s->policy ? strdup(s->policy) : NULL;
    if (!strcmp(s->phase, "paused"))
        m->phase = PH_PAUSED;
    apply_step_weight(m);
    logf_(r, "%s: resumed rollout of %s at step %d (%s)", m->name, m->candidate->label, m->step + 1,
          s->phase);
    return 0;
}

static int load_model(const struct cairn_model_info *mi, void *payload)
{
    struct load_ctx *lc = payload;
    struct router *r = lc->r;
    struct model *m = model_find(r, mi->name, strlen(mi->name));
    cairn_oid id;
    int num;
    if (strcmp(mi->kind, "model"))
        return 0;
    if (cairn_registry_alias_get(cairn_repo_registry(lc->repo), mi->name,
                                 m ? m->alias : r->default_alias, &id) < 0) {
        cairn_error_clear();
        if (m)
            logf_(r, "%s: no alias '%s' yet; serving it once a rollout or rollback sets one",
                  m->name, m->alias);
        return 0;
    }
    if (version_number(lc->repo, &id, &num) < 0)
        return 0;
    if (!m && !(m = model_get_or_add(r, mi->name, r->default_alias)))
        return 0;
    if (!m->stable && !(m->stable = upstream_new(m, &id, num)))
        return lc->error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    return 0;
}

static void on_kill_timer(uv_timer_t *t)
{
    struct router *r = t->data;
    for (size_t i = 0; i < r->nmodels; i++) {
        struct model *m = r->models[i];
        struct upstream *us[3] = { m->stable, m->candidate, m->previous };
        for (int k = 0; k < 3; k++)
            if (us[k] && us[k]->proc_open)
                uv_process_kill(&us[k]->proc, SIGKILL);
    }
}

/*
 * Free the upstream client once the requests under way have their answers
 * (or after 10 s), so a graceful stop answers them from their upstreams.
 */
static void on_drain_timer(uv_timer_t *t)
{
    struct router *r = t->data;
    if (r->inflight > 0 && uv_now(r->loop) - r->drain_started < 10000)
        return;
    uv_close((uv_handle_t *)t, NULL);
    cairn_http_client_free(r->client);
    r->client = NULL;
}

static void on_signal(uv_signal_t *s, int sig)
{
    struct router *r = s->data;
    (void)sig;
    if (r->stopping)
        return;
    r->stopping = 1;
    logf_(r, "stopping");
    uv_signal_stop(&r->sigint);
    uv_signal_stop(&r->sigterm);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    cairn_http_server_shutdown(r->server);
    cairn_http_server_shutdown(r->control);
    r->server = r->control = NULL;
    for (size_t i = 0; i < r->nmodels; i++) {
        struct model *m = r->models[i];
        if (m->tick_open) {
            uv_close((uv_handle_t *)&m->tick, NULL);
            m->tick_open = 0;
        }
        struct upstream *us[3] = { m->stable, m->candidate, m->previous };
        for (int k = 0; k < 3; k++) {
            struct upstream *u = us[k];
            if (!u)
                continue;
            if (u->timer_open && !uv_is_closing((uv_handle_t *)&u->timer)) {
                uv_timer_stop(&u->timer);
                uv_close((uv_handle_t *)&u->timer, on_timer_closed);
            }
            if (u->proc_open)
                uv_process_kill(&u->proc, SIGTERM);
        }
    }
    uv_timer_start(&r->kill_timer, on_kill_timer, KILL_GRACE_MS, 0);
    uv_unref((uv_handle_t *)&r->kill_timer);
    uv_timer_init(r->loop, &r->drain_timer);
    r->drain_timer.data = r;
    r->drain_started = uv_now(r->loop);
    uv_timer_start(&r->drain_timer, on_drain_timer, 0, 20);
}

/* After the loop ended: record where each rollout stood, off the request path. */
static void final_save(struct router *r)
{
    struct cairn_repo *repo = NULL;
    if (cairn_repo_open(&repo, r->o->workdir) < 0) {
        logf_(r, "cannot save rollout state: %s", cairn_error_last());
        return;
    }
    for (size_t i = 0; i < r->nmodels; i++) {
        struct model *m = r->models[i];
        struct cairn_rollout_state s;
        if (!m->plan_text || !rollout_active(m))
            continue;
        fill_state(m, &s);
        if (cairn_registry_rollout_put(cairn_repo_registry(repo), &s) < 0)
            logf_(r, "%s: cannot save rollout state: %s", m->name, cairn_error_last());
        cairn_rollout_state_release(&s);
    }
    cairn_repo_free(repo);
}

static void free_models(struct router *r)
{
    for (size_t i = 0; i < r->nmodels; i++) {
        struct model *m = r->models[i];
        free(m->stable);
        free(m->candidate);
        free(m->previous);
        free(m->plan_text);
        free(m->reason);
        free(m->forced);
        free(m->policy);
        cairn_livewin_free(m->inputs);
        free(m);
    }
    r->nmodels = 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int cairn_router_run(const struct cairn_router_opts *o)
{
    struct router r;
    struct config cfg;
    struct cairn_repo *repo = NULL;
    struct load_ctx lc;
    struct cairn_http_server_opts so;
    uv_loop_t loop;
    const char *listen, *control;
    int error = 0, loop_ok = 0;
    uint64_t seed;

    memset(&r, 0, sizeof(r));
    memset(&cfg, 0, sizeof(cfg));
    r.o = o;
    r.loop = &loop;
    r.timeout_ms = 30000;
    router_defaults(&r);
    snprintf(r.default_alias, sizeof(r.default_alias), "production");
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = (uint64_t)uv_hrtime();
    r.rng = seed;
    if ((error = uv_loop_init(&loop)) < 0)
        return cairn_error_set(CAIRN_ERROR, "cannot start the event loop: %s", uv_strerror(error));
    loop_ok = 1;
    if (o->config_path && (error = config_load(&r, &cfg, o->config_path)) < 0)
        goto done;
    if (cfg.timeout_ms)
        r.timeout_ms = cfg.timeout_ms;
    for (size_t i = 0; i < cfg.nmodels; i++) {
        model_add(&r, cfg.models[i]);
        cfg.models[i] = NULL;
    }
    if ((error = cairn_feedback_new(&r.feedback,
                                    cfg.feedback_size ? cfg.feedback_size : DEFAULT_FEEDBACK)) < 0)
        goto done;
    if ((error = cairn_http_client_new(&r.client, &loop, &r.copts)) < 0)
        goto done;
    uv_timer_init(&loop, &r.kill_timer);
    r.kill_timer.data = &r;

    /* Start-up reads the registry synchronously: nothing is served yet. */
    if ((error = cairn_repo_open(&repo, o->workdir)) < 0)
        goto done;
    memset(&lc, 0, sizeof(lc));
    lc.r = &r;
    lc.repo = repo;
    if ((error = cairn_registry_model_list(cairn_repo_registry(repo), load_model, &lc)) < 0 ||
        (error = lc.error) < 0)
        goto done;
    if ((error = cairn_registry_rollout_list(cairn_repo_registry(repo), load_rollout, &lc)) < 0 ||
        (error = lc.error) < 0 || (error = end_rollouts(&lc)) < 0)
        goto done;
    cairn_repo_free(repo);
    repo = NULL;

    listen = o->listen ? o->listen : cfg.listen[0] ? cfg.listen : "127.0.0.1:8080";
    control = o->control_listen ? o->control_listen : cfg.control[0] ? cfg.control : NULL;
    so = r.sopts;
    r.mirror_cap = so.max_buffered ? so.max_buffered / 4 : SIZE_MAX;
    if ((error = cairn_http_server_new(&r.server, &loop, listen, &so, on_request, &r)) < 0)
        goto done;
    if (control && (error = cairn_http_server_new(&r.control, &loop, control, &so,
                                                  on_control_request, &r)) < 0)
        goto done;
    uv_signal_init(&loop, &r.sigint);
    uv_signal_init(&loop, &r.sigterm);
    r.sigint.data = r.sigterm.data = &r;
    uv_signal_start(&r.sigint, on_signal, SIGINT);
    uv_signal_start(&r.sigterm, on_signal, SIGTERM);
    for (size_t i = 0; i < r.nmodels; i++)
        logf_(&r, "%s: serving %s as %s", r.models[i]->name,
              r.models[i]->stable ? r.models[i]->stable->label : "(nothing yet)",
              r.models[i]->alias);
    /* References are checked out on the thread pool, not on the loop. */
    for (size_t i = 0; i < r.nmodels; i++)
        if (r.models[i]->reference[0] &&
            cairn_livewin_set_reference(r.models[i]->inputs, o->workdir, r.models[i]->reference,
                                        "label") < 0)
            logf_(&r, "%s: %s", r.models[i]->name, cairn_error_last());
    uv_timer_init(&loop, &r.drift_timer);
    r.drift_timer.data = &r;
    uv_timer_start(&r.drift_timer, on_drift_timer, DRIFT_REFRESH_MS, DRIFT_REFRESH_MS);
    uv_unref((uv_handle_t *)&r.drift_timer);
    if (o->on_listening)
        o->on_listening(cairn_http_server_port(r.server), o->arg);
    uv_run(&loop, UV_RUN_DEFAULT);
    final_save(&r);
done:
    cairn_repo_free(repo);
    for (size_t i = 0; i < cfg.nmodels; i++) {
        if (cfg.models[i])
            cairn_livewin_free(cfg.models[i]->inputs);
        free(cfg.models[i]);
    }
    if (error < 0 && loop_ok) {
        /* Failed before serving: close whatever opened, let the loop drain. */
        cairn_http_server_shutdown(r.server);
        cairn_http_client_free(r.client);
        r.stopping = 1;
        for (size_t i = 0; i < r.nmodels; i++) {
            struct model *m = r.models[i];
            struct upstream *us[3] = { m->stable, m->candidate, m->previous };
            for (int k = 0; k < 3; k++)
                if (us[k] && us[k]->proc_open)
                    uv_process_kill(&us[k]->proc, SIGTERM);
        }
        uv_walk(&loop, close_walk, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    } else if (loop_ok) {
        uv_walk(&loop, close_walk, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    free_models(&r);
    cairn_feedback_free(r.feedback);
    while (r.free_fwd) {
        struct fwd *f = r.free_fwd;
        r.free_fwd = f->next_free;
        free(f);
    }
    if (loop_ok)
        uv_loop_close(&loop);
    return error;
}

/* ======================================================================
 * Test and fuzz hooks (router.h)
 * ====================================================================== */

struct hooked {
    struct router r; /* first: a struct router * is a struct hooked * */
    struct cairn_router_opts o;
};

/* Plans of the hook's models: the analysis never runs while a fuzz input does. */
static const char hook_canary[] =
    "strategy: canary\n"
    "steps: [{weight: 50, pause: 1h}, {weight: 100}]\n"
    "analysis: {interval: 1h, min_requests: 1,\n"
    "  checks: [{metric: error_rate, max: 0.5}]}\n"
    "sticky: {header: X-User}\n";
static const char hook_shadow[] =
    "strategy: shadow\n"
    "analysis: {interval: 1h, checks: [{metric: error_rate, max: 0.05}]}\n"
    "sticky: {cookie: uid}\n"
    "shadow: {samples: 1000}\n";

static int hook_model(struct router *r, const char *name, const char *addr, const char *plan_text)
{
    struct model *m = model_alloc(r, name);
    struct cairn_plan plan;
    cairn_oid id[2];
    if (!m)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if (!model_add(r, m)) {
        free(m);
        return cairn_error_set(CAIRN_ENOMEM, "too many models");
    }
    for (int i = 0; i < 3; i++) {
        snprintf(m->bind_addr[i], sizeof(m->bind_addr[i]), "%s", addr);
        m->bind_number[i] = i + 1;
    }
    m->nbinds = 3;
    for (int i = 0; i < 2; i++) {
        char v[80];
        int n = snprintf(v, sizeof(v), "%s@v%d", name, i + 1);
        cairn_hash(&id[i], v, (size_t)n);
    }
    if (!(m->stable = upstream_new(m, &id[0], 1)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    m->stable->ready = 1;
    if (!plan_text)
        return 0;
    if (cairn_plan_parse(&plan, name, plan_text, strlen(plan_text)) < 0)
        return CAIRN_EINVALID;
    start_rollout(m, upstream_new(m, &id[1], 2), &plan, strdup(plan_text));
    if (!m->candidate || !m->plan_text)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    m->candidate->ready = 1;
    return 0;
}

int cairn__router_new(struct router **out, uv_loop_t *loop, const char *upstream,
                      const char *const tokens[4])
{
    struct hooked *h = calloc(1, sizeof(*h));
    struct router *r;
    int error = 0;

    *out = NULL;
    if (!h)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    r = &h->r;
    r->o = &h->o; /* workdir NULL: no registry, see job_next() */
    r->loop = loop;
    r->timeout_ms = 1000;
    r->rng = 1;
    router_defaults(r);
    r->mirror_cap = SIZE_MAX;
    snprintf(r->default_alias, sizeof(r->default_alias), "production");
    for (int i = 0; i < 4; i++) {
        if (!tokens[i])
            continue;
        cairn_hash(&r->tokens[i].hash, tokens[i], strlen(tokens[i]));
        r->tokens[i].info.role = (enum cairn_role)(CAIRN_ROLE_READ + i);
        snprintf(r->tokens[i].info.name, sizeof(r->tokens[i].info.name), "%s",
                 cairn_role_name(i + 1));
        r->tokens[i].expires = UINT64_MAX;
    }
    r->token_next = 4;
    if ((error = cairn_feedback_new(&r->feedback, 64)) < 0 ||
        (error = cairn_http_client_new(&r->client, loop, NULL)) < 0 ||
        (error = hook_model(r, "m", upstream, hook_canary)) < 0 ||
        (error = hook_model(r, "s", upstream, hook_shadow)) < 0 ||
        (error = hook_model(r, "p", upstream, NULL)) < 0) {
        cairn__router_stop(r);
        uv_run(loop, UV_RUN_DEFAULT);
        cairn__router_free(r);
        return error;
    }
    *out = r;
    return 0;
}

void cairn__router_handle(struct cairn_http_req *req, void *router)
{
    on_request(req, router);
}

void cairn__router_stop(struct router *r)
{
    r->stopping = 1;
    for (size_t i = 0; i < r->nmodels; i++) {
        struct model *m = r->models[i];
        struct upstream *us[3] = { m->stable, m->candidate, m->previous };
        if (m->tick_open) {
            uv_close((uv_handle_t *)&m->tick, NULL);
            m->tick_open = 0;
        }
        for (int k = 0; k < 3; k++)
            if (us[k] && us[k]->timer_open && !uv_is_closing((uv_handle_t *)&us[k]->timer))
                uv_close((uv_handle_t *)&us[k]->timer, on_timer_closed);
    }
    if (r->client) {
        uv_timer_init(r->loop, &r->drain_timer);
        r->drain_timer.data = r;
        r->drain_started = uv_now(r->loop);
        uv_timer_start(&r->drain_timer, on_drain_timer, 0, 20);
    }
}

void cairn__router_free(struct router *r)
{
    if (!r)
        return;
    free_models(r);
    cairn_feedback_free(r->feedback);
    while (r->free_fwd) {
        struct fwd *f = r->free_fwd;
        r->free_fwd = f->next_free;
        free(f);
    }
    free((struct hooked *)r);
}

int cairn__router_config_check(const char *path)
{
    struct cairn_router_opts o;
    struct router r;
    struct config cfg;
    uv_loop_t loop;
    int error;

    memset(&o, 0, sizeof(o));
    memset(&r, 0, sizeof(r));
    memset(&cfg, 0, sizeof(cfg));
    if (uv_loop_init(&loop) < 0)
        return cairn_error_set(CAIRN_ERROR, "cannot start the event loop");
    r.o = &o;
    r.loop = &loop;
    snprintf(r.default_alias, sizeof(r.default_alias), "production");
    router_defaults(&r);
    error = config_load(&r, &cfg, path);
    for (size_t i = 0; i < cfg.nmodels; i++)
        if (cfg.models[i])
            model_add(&r, cfg.models[i]);
    free_models(&r);
    uv_walk(&loop, close_walk, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return error;
}
