/*
 * Routing choice, analysis windows and verdicts, and the feedback join
 * (rollout.h). Pure logic on plain structs, so tests/unit/serve can drive
 * every decision without a socket.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "serve/rollout.h"

uint64_t cairn_rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* FNV-1a, then a splitmix finaliser so nearby keys spread over the range. */
static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL, s;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 0x100000001b3ULL;
    s = h;
    return cairn_rand_next(&s);
}

int cairn_route_pick(int weight_bp, const char *key, size_t keylen, uint64_t *rng)
{
    uint64_t draw;
    if (weight_bp <= 0)
        return 0;
    if (weight_bp >= 10000)
        return 1;
    draw = keylen ? key_hash(key, keylen) : cairn_rand_next(rng);
    return (int)(draw % 10000) < weight_bp;
}

size_t cairn_cookie_find(const char **out, const char *cookie, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = cookie;
    while (p && *p) {
        const char *end;
        while (*p == ' ' || *p == ';')
            p++;
        end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        if ((size_t)(end - p) > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
            *out = p + nlen + 1;
            return (size_t)(end - *out);
        }
        p = end;
    }
    return 0;
}

/* ---- windows ----------------------------------------------------------- */

static unsigned lat_bucket(uint64_t us)
{
    unsigned msb, sub, b;
    if (us < 4)
        return (unsigned)us;
    msb = 63u - (unsigned)__builtin_clzll(us);
    sub = (unsigned)(us >> (msb - 2)) & 3u;
    b = msb * 4 + sub - 4;
    return b < CAIRN_LAT_FINE ? b : CAIRN_LAT_FINE - 1;
}

/* The upper bound in microseconds of bucket b (inverse of lat_bucket). */
static double lat_upper_us(unsigned b)
{
    unsigned msb, sub;
    if (b < 4)
        return (double)b + 1;
    msb = (b + 4) / 4;
    sub = (b + 4) % 4;
    return (double)((4ULL + sub + 1) << (msb - 2));
}

void cairn_window_add(struct cairn_window *w, int status, uint64_t latency_us)
{
    w->requests++;
    if (status >= 500 || status <= 0)
        w->errors++;
    w->lat[lat_bucket(latency_us)]++;
}

double cairn_window_quantile_ms(const struct cairn_window *w, double q)
{
    uint64_t total = 0, need, seen = 0;
    for (unsigned i = 0; i < CAIRN_LAT_FINE; i++)
        total += w->lat[i];
    if (!total)
        return 0;
    need = (uint64_t)(q * (double)total + 0.999999);
    if (need < 1)
        need = 1;
    for (unsigned i = 0; i < CAIRN_LAT_FINE; i++) {
        seen += w->lat[i];
        if (seen >= need)
            return lat_upper_us(i) / 1000.0;
    }
    return lat_upper_us(CAIRN_LAT_FINE - 1) / 1000.0;
}

/* ---- analysis ---------------------------------------------------------- */

struct report {
    char *p;
    size_t cap, len;
};

static void say(struct report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct report *r, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!r->cap || r->len + 1 >= r->cap)
        return;
    if (r->len) {
        r->p[r->len++] = ';';
        if (r->len + 1 < r->cap)
            r->p[r->len++] = ' ';
        r->p[r->len] = '\0';
    }
    va_start(ap, fmt);
    n = vsnprintf(r->p + r->len, r->cap - r->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        r->len = r->len + (size_t)n < r->cap ? r->len + (size_t)n : r->cap - 1;
}

enum cairn_verdict cairn_analyse(const struct cairn_plan *plan, const struct cairn_window *cand,
                                 const struct cairn_window *stable, char *report, size_t cap)
{
    struct report rep = { report, cap, 0 };
    int failed = 0, waiting = 0;

    if (cap)
        report[0] = '\0';
    if (cand->requests < plan->min_requests || cand->requests == 0) {
        say(&rep, "waiting: %llu of %llu requests", (unsigned long long)cand->requests,
            (unsigned long long)plan->min_requests);
        return CAIRN_VERDICT_WAIT;
    }
    for (size_t i = 0; i < plan->nchecks; i++) {
        const struct cairn_plan_check *c = &plan->checks[i];
        const char *name = cairn_metric_name(c->metric);
        double v = 0, sv = 0;
        int have_stable = 0;

        switch (c->metric) {
        case CAIRN_METRIC_ERROR_RATE:
            v = (double)cand->errors / (double)cand->requests;
            break;
        case CAIRN_METRIC_LATENCY_P99:
            v = cairn_window_quantile_ms(cand, 0.99);
            if (stable && stable->requests >= 10) {
                sv = cairn_window_quantile_ms(stable, 0.99);
                have_stable = 1;
            }
            break;
        case CAIRN_METRIC_ACCURACY:
            if (cand->labels < plan->min_labels) {
                say(&rep, "accuracy waiting: %llu of %llu labels", (unsigned long long)cand->labels,
                    (unsigned long long)plan->min_labels);
                waiting = 1;
                continue;
            }
            v = (double)cand->correct / (double)cand->labels;
            if (stable && stable->labels >= plan->min_labels) {
                sv = (double)stable->correct / (double)stable->labels;
                have_stable = 1;
            }
            break;
        case CAIRN_METRIC_SHADOW_AGREEMENT:
            if (cand->shadow_compared < plan->min_requests || !cand->shadow_compared) {
                say(&rep, "shadow_agreement waiting: %llu of %llu compared",
                    (unsigned long long)cand->shadow_compared,
                    (unsigned long long)plan->min_requests);
                waiting = 1;
                continue;
            }
            v = (double)cand->shadow_agreed / (double)cand->shadow_compared;
            break;
        }
        if (c->has_max && v > c->max) {
            say(&rep, "%s %.4g > max %.4g", name, v, c->max);
            failed = 1;
        } else if (c->has_min && v < c->min) {
            say(&rep, "%s %.4g < min %.4g", name, v, c->min);
            failed = 1;
        } else if (c->has_ratio && have_stable && sv > 0 && v / sv > c->max_ratio_to_stable) {
            say(&rep, "%s %.4g is %.3gx stable's %.4g > max_ratio_to_stable %.3g", name, v, v / sv,
                sv, c->max_ratio_to_stable);
            failed = 1;
        } else if (c->has_drop && have_stable && sv - v > c->max_drop_vs_stable) {
            say(&rep, "%s %.4g is %.4g below stable's %.4g > max_drop_vs_stable %.4g", name, v,
                sv - v, sv, c->max_drop_vs_stable);
            failed = 1;
        } else {
            say(&rep, "%s %.4g ok", name, v);
        }
    }
    say(&rep, "%llu requests", (unsigned long long)cand->requests);
    if (failed)
        return CAIRN_VERDICT_FAIL;
    return waiting ? CAIRN_VERDICT_WAIT : CAIRN_VERDICT_PASS;
}

/* ---- feedback ---------------------------------------------------------- */

struct fb_entry {
    char id[CAIRN_FEEDBACK_ID_MAX + 1];
    uint32_t hash;
    uint32_t model;
    int32_t version;
    int32_t label;
    uint8_t used, labelled;
};

struct cairn_feedback {
    struct fb_entry *ring;
    size_t cap, next;
    uint32_t *table; /* ring index + 1; 0 empty; linear probing */
    size_t tmask;
};

static uint32_t id_hash(const char *id, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)id[i]) * 16777619u;
    return h;
}

int cairn_feedback_new(struct cairn_feedback **out, size_t cap)
{
    struct cairn_feedback *fb = calloc(1, sizeof(*fb));
    size_t t = 16;
    if (cap < 1)
        cap = 1;
    while (t < cap * 2)
        t <<= 1;
    if (!fb || !(fb->ring = calloc(cap, sizeof(*fb->ring))) ||
        !(fb->table = calloc(t, sizeof(*fb->table)))) {
        cairn_feedback_free(fb);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    fb->cap = cap;
    fb->tmask = t - 1;
    *out = fb;
    return 0;
}

void cairn_feedback_free(struct cairn_feedback *fb)
{
    if (!fb)
        return;
    free(fb->ring);
    free(fb->table);
    free(fb);
}

/* Remove table slot `i` (backward-shift deletion keeps probe chains whole). */
static void table_delete(struct cairn_feedback *fb, size_t i)
{
    size_t j = i;
    fb->table[i] = 0;
    for (;;) {
        size_t home;
        j = (j + 1) & fb->tmask;
        if (!fb->table[j])
            return;
        home = fb->ring[fb->table[j] - 1].hash & fb->tmask;
        /* Move j back to i if its home is not cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            fb->table[i] = fb->table[j];
            fb->table[j] = 0;
            i = j;
        }
    }
}

static size_t table_find(const struct cairn_feedback *fb, const char *id, size_t len, uint32_t h,
                         int *found)
{
    size_t i = h & fb->tmask;
    *found = 0;
    while (fb->table[i]) {
        const struct fb_entry *e = &fb->ring[fb->table[i] - 1];
        if (e->hash == h && strlen(e->id) == len && !memcmp(e->id, id, len)) {
            *found = 1;
            return i;
        }
        i = (i + 1) & fb->tmask;
    }
    return i;
}

void cairn_feedback_record(struct cairn_feedback *fb, const char *id, size_t idlen, uint32_t model,
                           int32_t version, int32_t label)
{
    struct fb_entry *e = &fb->ring[fb->next];
    size_t slot;
    int found;

    if (!idlen || idlen > CAIRN_FEEDBACK_ID_MAX)
        return;
    if (e->used) {
        slot = table_find(fb, e->id, strlen(e->id), e->hash, &found);
        if (found && fb->table[slot] - 1 == fb->next)
            table_delete(fb, slot);
    }
    memcpy(e->id, id, idlen);
    e->id[idlen] = '\0';
    e->hash = id_hash(id, idlen);
    e->model = model;
    e->version = version;
    e->label = label;
    e->used = 1;
    e->labelled = 0;
    slot = table_find(fb, id, idlen, e->hash, &found);
    fb->table[slot] = (uint32_t)fb->next + 1;
    fb->next = (fb->next + 1) % fb->cap;
}

/* The remembered prediction for request id `id`, or NULL. */
static struct fb_entry *feedback_entry(const struct cairn_feedback *fb, const char *id,
                                       size_t idlen)
{
    size_t slot;
    int found;
    if (!idlen || idlen > CAIRN_FEEDBACK_ID_MAX)
        return NULL;
    slot = table_find(fb, id, idlen, id_hash(id, idlen), &found);
    return found ? &fb->ring[fb->table[slot] - 1] : NULL;
}

int cairn_feedback_join(struct cairn_feedback *fb, const char *id, size_t idlen, int32_t label,
                        uint32_t *model, int32_t *version, int *correct)
{
    struct fb_entry *e = feedback_entry(fb, id, idlen);
    if (!e)
        return CAIRN_ENOTFOUND;
    if (e->labelled)
        return CAIRN_EEXISTS;
    e->labelled = 1;
    *model = e->model;
    *version = e->version;
    *correct = e->label == label;
    return 0;
}

int cairn_feedback_model(const struct cairn_feedback *fb, const char *id, size_t idlen,
                         uint32_t *model)
{
    const struct fb_entry *e = feedback_entry(fb, id, idlen);
    if (!e)
        return CAIRN_ENOTFOUND;
    *model = e->model;
    return 0;
}
