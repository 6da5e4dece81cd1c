/*
 * A small fixed-size worker pool with a bounded job queue. Used by the ingest
 * pipeline to hash and compress chunks on every core while one thread reads
 * and one writes. cairn_pool_submit() blocks when the queue is full, which is
 * what keeps memory bounded whatever the input size.
 */
#ifndef CAIRN_UTIL_POOL_H
#define CAIRN_UTIL_POOL_H

#include <stddef.h>

struct cairn_pool;

typedef void (*cairn_job_fn)(void *arg);

/* nthreads 0 means one per online CPU. queue_cap bounds queued jobs. */
int cairn_pool_new(struct cairn_pool **out, unsigned nthreads, unsigned queue_cap);
/* Queue a job; blocks while the queue is full. */
int cairn_pool_submit(struct cairn_pool *p, cairn_job_fn fn, void *arg);
/* Wait until every submitted job has finished. */
void cairn_pool_wait(struct cairn_pool *p);
unsigned cairn_pool_threads(const struct cairn_pool *p);
/* Finish queued jobs, stop the workers, free. Accepts NULL. */
void cairn_pool_free(struct cairn_pool *p);

/* Number of online CPUs, at least 1 (CAIRN_THREADS overrides). */
unsigned cairn_ncpus(void);

#endif
