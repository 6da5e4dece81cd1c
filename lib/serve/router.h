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

#endif
