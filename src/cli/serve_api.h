/*
 * The command-line side of the `cairn serve` control API: one blocking
 * JSON request to the daemon, for `cairn rollout` and `cairn rollback`.
 * The address comes from --server or CAIRN_SERVER (default
 * http://127.0.0.1:8080), the bearer token from CAIRN_TOKEN.
 */
#ifndef CAIRN_CLI_SERVE_API_H
#define CAIRN_CLI_SERVE_API_H

/*
 * Send `method` `path` (under /api/v1) with `body` (JSON text or NULL) and
 * parse the answer. Returns 0 and sets *out (a jansson json_t *, caller
 * decrefs) for a 2xx answer; prints the daemon's error and returns the exit
 * code otherwise (3 for a refusal by the release check: a 409 naming a
 * policy; 2 for a 400; else 1). With `unreachable` non-NULL, a daemon that cannot be
 * reached sets *unreachable = 1 and returns EXIT_RUNTIME without printing.
 */
int cli_api_call(void **out, const char *server, const char *method, const char *path,
                 const char *body, int *unreachable);

/* The server address to use: `opt` if set, else $CAIRN_SERVER, else the default. */
const char *cli_api_server(const char *opt);

#endif
