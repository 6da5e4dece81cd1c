/*
 * `cairn serve`: the traffic router, rollout engine, control API and
 * Prometheus endpoint in one libuv event loop (SPEC §6, docs/serving.md).
 *
 * One thread runs the loop: requests, upstream answers, child processes,
 * analysis timers. The registry is only touched off the loop, by jobs run
 * one after another on the libuv thread pool (each opens its own repository
 * handle), so a slow disk never stalls a request; the loop reads the
 * registry synchronously only at start-up, before it serves anything.
 */
#ifndef CAIRN_SERVE_ROUTER_H
#define CAIRN_SERVE_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct cairn_router_opts {
    const char *workdir;        /* the repository's working directory (required) */
    const char *config_path;    /* serve config YAML, or NULL */
    const char *listen;         /* NULL: the config's, else 127.0.0.1:8080 */
    const char *control_listen; /* NULL: the config's, else the control API shares `listen` */
    const char *exe;            /* the cairn binary, for serve-model children (required) */
    /* Called once listening, with the data-plane port. May be NULL. */
    void (*on_listening)(int port, void *arg);
    /* Events worth a line in the daemon's log (children, steps, verdicts). May be NULL. */
    void (*log)(const char *msg, void *arg);
    /*
     * Crash tests only: called on a worker thread at named instants of the
     * registry write that moves an alias ("after-alias-move", then
     * "after-state-save"), where a test build's `cairn serve` may _exit()
     * (CAIRN_TEST_CRASH_AT). May be NULL.
     */
    void (*crash_point)(const char *point, void *arg);
    void *arg;
};

/*
 * Run until SIGINT or SIGTERM: then stop accepting, answer what is under
 * way, stop the children, save rollout state and return 0. Returns a
 * negative code (message set) if the config is invalid, the registry cannot
 * be read or a listener cannot bind. Installs its own signal handlers for
 * its lifetime; call from one thread at a time.
 */
int cairn_router_run(const struct cairn_router_opts *opts);

/*
 * For tests and fuzzing only (fuzz/fuzz_router.c, fuzz/fuzz_serveconf.c).
 *
 * cairn__router_new() makes a router on `loop` with no registry, no
 * children and no listener: models "m" (canary at 50%, sticky header
 * X-User), "s" (shadow, sticky cookie uid) and "p" (no rollout), every
 * version bound to `upstream` ("HOST:PORT") and taken as ready. Registry
 * jobs (token look-ups, rollout start, promotion, rollback) fail at once
 * with "no registry", so a promotion is refused; tokens[i] (NULL to skip) is accepted with role
 * read, write, promote, admin for i = 0..3. Feed it requests by passing cairn__router_handle and
 * the router to cairn_http_server_new(). To end: cairn__router_stop(), run the loop until it
 * returns (shut the servers down first), then cairn__router_free() (accepts NULL).
 *
 * cairn__router_config_check() parses the serve config file at `path` as
 * cairn_router_run() would and frees it: 0 or CAIRN_EINVALID with
 * "FILE:LINE:COL".
 */
struct router;
struct cairn_http_req;
int cairn__router_new(struct router **out, uv_loop_t *loop, const char *upstream,
                      const char *const tokens[4]);
void cairn__router_handle(struct cairn_http_req *req, void *router);
void cairn__router_stop(struct router *r);
void cairn__router_free(struct router *r);
int cairn__router_config_check(const char *path);

#endif
