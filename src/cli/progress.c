/*
 * The progress bar of long commands (SPEC §3): bytes, rate and ETA on stderr,
 * redrawn at most ten times a second, only when stderr is a terminal unless
 * --progress/--no-progress says otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

struct cli_progress {
    char what[64];
    unsigned long long total, done;
    double start, last_draw;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int enabled(void)
{
    if (cli_g.progress >= 0)
        return cli_g.progress;
    return isatty(STDERR_FILENO);
}

struct cli_progress *cli_progress_start(const char *what, unsigned long long total)
{
    struct cli_progress *p;
    if (!enabled() || !(p = calloc(1, sizeof(*p))))
        return NULL;
    snprintf(p->what, sizeof(p->what), "%s", what);
    p->total = total;
    p->start = now();
    return p;
}

static void draw(struct cli_progress *p, int final)
{
    char done[24], total[24], rate[24];
    double el = now() - p->start;
    double r = el > 0 ? (double)p->done / el : 0;
    int pct = p->total ? (int)(100.0 * (double)p->done / (double)p->total) : 100;
    int width = 24, fill = pct * width / 100;
    char bar[32];

    if (pct > 100)
        pct = 100, fill = width;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(width - fill));
    bar[width] = '\0';
    cli_fmt_bytes(done, sizeof(done), p->done);
    cli_fmt_bytes(total, sizeof(total), p->total);
    cli_fmt_bytes(rate, sizeof(rate), (unsigned long long)r);
    if (final)
        fprintf(stderr, "\r%-10s [%s] %3d%% %s/%s %s/s in %.1fs\033[K\n", p->what, bar, pct, done,
                total, rate, el);
    else {
        double eta = r > 0 && p->total > p->done ? (double)(p->total - p->done) / r : 0;
        fprintf(stderr, "\r%-10s [%s] %3d%% %s/%s %s/s ETA %.0fs\033[K", p->what, bar, pct, done,
                total, rate, eta);
    }
    fflush(stderr);
}

void cli_progress_update(struct cli_progress *p, unsigned long long done)
{
    double t;
    if (!p)
        return;
    p->done = done;
    t = now();
    if (t - p->last_draw >= 0.1) {
        p->last_draw = t;
        draw(p, 0);
    }
}

void cli_progress_finish(struct cli_progress *p)
{
    if (!p)
        return;
    draw(p, 1);
    free(p);
}

void cli_progress_cb(unsigned long long done, unsigned long long total, void *payload)
{
    struct cli_progress *p = payload;
    if (!p)
        return;
    p->total = total;
    cli_progress_update(p, done);
}
