/*
 * The decisions of the router and the rollout engine, kept apart from the
 * event loop so they can be tested alone: which version a request goes to,
 * the per-version window of figures the analysis reads, the verdict of one
 * analysis, and the join of feedback labels to the answers served.
 *
 * Everything here runs on the loop thread of `cairn serve` and is not
 * thread-safe; nothing allocates on the per-request path.
 */
#ifndef CAIRN_SERVE_ROLLOUT_H
#define CAIRN_SERVE_ROLLOUT_H

#include <stddef.h>
#include <stdint.h>

#include "serve/plan.h"

/* ---- choosing a version ------------------------------------------------ */

/* splitmix64 step: the router's per-request random draw. */
uint64_t cairn_rand_next(uint64_t *state);

/*
 * 1 if a request goes to the candidate, 0 for the stable version.
 * `weight_bp` is the candidate share in basis points (0..10000). With a
 * sticky key (`key`, `keylen` > 0) the choice is a hash of the key, so the
 * same key always lands on the same side for a given weight (and stays
 * there as the weight grows: a key on the candidate at 5% is still there at
 * 25%). Without one, the draw comes from `rng`.
 */
int cairn_route_pick(int weight_bp, const char *key, size_t keylen, uint64_t *rng);

/*
 * The sticky key of a request: the value of header `name` (sticky ==
 * CAIRN_STICKY_HEADER) or of cookie `name` in the Cookie header value
 * `cookie` (CAIRN_STICKY_COOKIE). Returns the key length and sets *out, or
 * 0 when the request has none.
 */
size_t cairn_cookie_find(const char **out, const char *cookie, const char *name);

/* ---- windows of figures ------------------------------------------------ */

/* Latency buckets for quantiles: 4 per power of two of microseconds. */
#define CAIRN_LAT_FINE 112

struct cairn_window {
    uint64_t requests, errors; /* errors: 5xx answers and unreachable upstreams */
    uint64_t lat[CAIRN_LAT_FINE];
    uint64_t labels, correct;                /* feedback joined to this version's answers */
    uint64_t shadow_compared, shadow_agreed; /* shadow: answers compared with stable's */
};

void cairn_window_add(struct cairn_window *w, int status, uint64_t latency_us);
/* The q-quantile (0..1) of latency in milliseconds (upper bound of its bucket); 0 if empty. */
double cairn_window_quantile_ms(const struct cairn_window *w, double q);

/* ---- analysis ---------------------------------------------------------- */

enum cairn_verdict {
    CAIRN_VERDICT_WAIT, /* not enough data to judge every check yet */
    CAIRN_VERDICT_PASS,
    CAIRN_VERDICT_FAIL,
};

/*
 * Judge the candidate's window against the plan's checks, comparing with
 * the stable version's window where a check asks (ratio, drop). Nothing is
 * judged below plan->min_requests candidate requests, and accuracy not below
 * plan->min_labels labels. A failed check fails at once; otherwise a check
 * that cannot be judged yet gives WAIT. `report` receives the figures and
 * the verdict of each check as one line of text ("error_rate 0.5 > max 0.01;
 * ..."), `cap` bytes with the NUL.
 */
enum cairn_verdict cairn_analyse(const struct cairn_plan *plan, const struct cairn_window *cand,
                                 const struct cairn_window *stable, char *report, size_t cap);

/* ---- feedback ---------------------------------------------------------- */

#define CAIRN_FEEDBACK_ID_MAX 47 /* longer request ids are not remembered */

/*
 * The last `cap` answers served (request id -> model, version, argmax), in a
 * ring with a hash index; the oldest is forgotten when a new one comes.
 * Memory is about 80 bytes per entry.
 */
struct cairn_feedback;

int cairn_feedback_new(struct cairn_feedback **out, size_t cap);
void cairn_feedback_free(struct cairn_feedback *fb);

/* Remember an answer (a repeated id replaces nothing: both are kept, the newer wins). */
void cairn_feedback_record(struct cairn_feedback *fb, const char *id, size_t idlen, uint32_t model,
                           int32_t version, int32_t label);

/*
 * Join a label to the answer served for `id`: sets model, version and
 * whether the served argmax equals `label`. CAIRN_ENOTFOUND if the id is
 * unknown or forgotten, CAIRN_EEXISTS if it was labelled already (each
 * answer counts once). Sets no error message (callers word their own).
 */
int cairn_feedback_join(struct cairn_feedback *fb, const char *id, size_t idlen, int32_t label,
                        uint32_t *model, int32_t *version, int *correct);

/*
 * The model of the answer remembered for `id`, without joining anything
 * (so a caller can refuse a label before it counts). CAIRN_ENOTFOUND if
 * the id is unknown or forgotten; sets no error message.
 */
int cairn_feedback_model(const struct cairn_feedback *fb, const char *id, size_t idlen,
                         uint32_t *model);

#endif
