/*
 * The reference inference backend behind `cairn serve-model`: load one MLP
 * classifier from a version directory and serve it with the Open Inference
 * Protocol v2 over HTTP/1.1 until SIGINT or SIGTERM.
 *
 * Routes: GET /v2/health/live, GET /v2/health/ready (the model is loaded,
 * with every weight checked finite, before the server listens),
 * GET /v2, GET /v2/models/NAME[/versions/V] (metadata), GET
 * /v2/models/NAME[/versions/V]/ready, POST /v2/models/NAME[/versions/V]/infer.
 * Errors are JSON {"error": "..."}: 400 for bad JSON, shapes or feature
 * counts, 404 for an unknown model or route, 405 for a wrong method, 422
 * when inputs so large that the output overflows (no NaN or Inf is ever
 * sent: JSON has none).
 *
 * Inference runs on the loop thread (one sgemm per layer per batch), which
 * is right for the small classifiers this backend exists for (SPEC §6:
 * examples and tests); real deployments bind Triton, KServe or vLLM.
 */
#ifndef CAIRN_SERVE_SERVE_MODEL_H
#define CAIRN_SERVE_SERVE_MODEL_H

#include <stddef.h>
#include <stdint.h>

struct cairn_serve_model_opts {
    /* Fault injection for rollout tests; all off by default. */
    double error_rate;         /* share of infer requests answered 500, 0..1 */
    uint64_t extra_latency_ms; /* added before every infer answer (on a timer, not a sleep) */
    double wrong_rate;         /* share of rows whose argmax is replaced by another class, 0..1 */
    uint64_t seed;             /* for the fault draws; same seed, same faults */
    const char *version;       /* version id reported in metadata and answers; NULL: "1" */
    size_t max_body;           /* request body cap (413 beyond); 0: 16 MiB */
    size_t max_rows;           /* rows per request (400 beyond); 0: 65536 */
    /* The safetensors file, relative to model_dir; NULL: the one cairn_mlp_find() picks. */
    const char *model_file;
    /* Called once listening, with the bound port (useful with port 0). May be NULL. */
    void (*on_listening)(int port, void *arg);
    void *arg;
};

void cairn_serve_model_opts_init(struct cairn_serve_model_opts *o);

/*
 * Serve the model in `model_dir` (see cairn_mlp_load_dir()) under
 * `model_name` on `listen` ("HOST:PORT", see cairn_http_parse_addr()) until
 * the process gets SIGINT or SIGTERM; then stop accepting, answer what is
 * under way and return 0. Returns a negative code if it cannot listen, the
 * options are out of range (CAIRN_EINVALID) or the model fails to load (the
 * loader's code and message; then on_listening is never called, nothing
 * listened). Prints nothing. Installs SIGINT/SIGTERM
 * handlers on its own loop for its lifetime; call from one thread at a time.
 */
int cairn_serve_model_run(const char *model_dir, const char *model_name, const char *listen,
                          const struct cairn_serve_model_opts *opts);

#endif
