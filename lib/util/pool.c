/*
 * Worker pool; see pool.h. One mutex and two condition variables: jobs are
 * few and large (a chunk of tens of KiB to MiB each), so lock traffic is
 * negligible next to hashing and compression.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "cairn/common.h"
#include "util/pool.h"

struct job {
    cairn_job_fn fn;
    void *arg;
};

struct cairn_pool {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full, idle;
    struct job *queue;
    unsigned cap, head, count, running;
    unsigned nthreads;
    int stopping;
    pthread_t *threads;
};

static void *worker(void *arg)
{
    struct cairn_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->count && !p->stopping)
            pthread_cond_wait(&p->not_empty, &p->lock);
        if (!p->count && p->stopping)
            break;
        struct job j = p->queue[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->running++;
        pthread_cond_signal(&p->not_full);
        pthread_mutex_unlock(&p->lock);
        j.fn(j.arg);
        pthread_mutex_lock(&p->lock);
        p->running--;
        if (!p->count && !p->running)
            pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

unsigned cairn_ncpus(void)
{
    const char *env = getenv("CAIRN_THREADS");
    long n;
    if (env && (n = strtol(env, NULL, 10)) > 0 && n <= 256)
        return (unsigned)n;
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int cairn_pool_new(struct cairn_pool **out, unsigned nthreads, unsigned queue_cap)
{
    struct cairn_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if (!nthreads)
        nthreads = cairn_ncpus();
    if (!queue_cap)
        queue_cap = 1;
    p->cap = queue_cap;
    p->queue = calloc(queue_cap, sizeof(*p->queue));
    p->threads = calloc(nthreads, sizeof(*p->threads));
    if (!p->queue || !p->threads) {
        free(p->queue);
        free(p->threads);
        free(p);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->not_empty, NULL);
    pthread_cond_init(&p->not_full, NULL);
    pthread_cond_init(&p->idle, NULL);
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            p->nthreads = i;
            cairn_pool_free(p);
            return cairn_error_set(CAIRN_ERROR, "cannot start worker thread");
        }
        p->nthreads = i + 1;
    }
    *out = p;
    return 0;
}

int cairn_pool_submit(struct cairn_pool *p, cairn_job_fn fn, void *arg)
{
    pthread_mutex_lock(&p->lock);
    while (p->count == p->cap)
        pthread_cond_wait(&p->not_full, &p->lock);
    p->queue[(p->head + p->count) % p->cap] = (struct job){ fn, arg };
    p->count++;
    pthread_cond_signal(&p->not_empty);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void cairn_pool_wait(struct cairn_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->count || p->running)
        pthread_cond_wait(&p->idle, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

unsigned cairn_pool_threads(const struct cairn_pool *p)
{
    return p->nthreads;
}

void cairn_pool_free(struct cairn_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->not_empty);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->not_empty);
    pthread_cond_destroy(&p->not_full);
    pthread_cond_destroy(&p->idle);
    free(p->queue);
    free(p->threads);
    free(p);
}
