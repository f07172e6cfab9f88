/* threads.c: the thread pool every heavy kernel shares (see threads.h for its contract).
 *
 * What it is not: a general scheduler. Tasks are split into fixed contiguous shares, so results never
 * depend on which OS thread ran what.
 */
#include "kernels/threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "kernels/simd.h"   /* simd_pause */

/* ==================================================================================================== */
/* thread pool                                                                                           */
/* ==================================================================================================== */

/* Workers are created once (and more when threads_set asks for more) and wait for jobs. A job is
 * published by bumping `job`, one 64-bit word holding a generation number and the count of threads
 * taking part, so a worker reads both consistently. Thread t (0 is the caller) runs the contiguous range
 * [ntasks*t/T, ntasks*(t+1)/T): a fixed function of (ntasks, T). Each share is claimed before it runs;
 * the caller, once done with its own, runs any share whose worker has not started yet (descheduled on a
 * loaded machine, or asleep), passing that share's index t: the tasks, their thread indices and so the
 * results are the same, only the OS thread differs.
 * Waiting (a worker for its next job, the caller for the workers) first spins, because jobs often come
 * back to back and waking a sleeping thread costs tens of microseconds; then yields the core, so that a
 * thread it waits for, or another process, can run on a loaded machine; then sleeps on a condition
 * variable. The phases are bounded by time, not by counts: under a hypervisor one `pause` can take 80 ns
 * instead of 10. */
enum { POOL_MAX = 1024 };
static const double POOL_SPIN = 20e-6;          /* seconds of busy spinning before yielding */
static const double POOL_WAIT_WORKER = 200e-6;  /* seconds a worker spins and yields for its next job */
static const double POOL_WAIT_CALLER = 2e-3;    /* seconds the caller spins and yields for the workers */

static struct {
    pthread_once_t once;
    pthread_mutex_t call;      /* one parallel_for at a time */
    pthread_mutex_t lock;      /* guards the sleeps below */
    pthread_cond_t wake, done;
    atomic_int nthreads;       /* threads_count() */
    int nworkers;              /* worker threads started (ids 1..nworkers) */
    pthread_t threads[POOL_MAX];   /* their handles, joined by threads_shutdown */
    atomic_int stop;           /* set by threads_shutdown: workers return */
    _Atomic unsigned long long job;   /* generation << 16 | participants */
    atomic_int pending;        /* shares 1..T-1 of the current job not finished yet */
    _Atomic unsigned long long claim[POOL_MAX];  /* the last job word whose share t was claimed */
    void (*task)(void *, int, int);
    void *arg;
    int ntasks;
} pool = {.once = PTHREAD_ONCE_INIT};

static _Thread_local int tl_thread;    /* this thread's index in the pool: 0 for callers */
static _Thread_local int tl_in_task;   /* set while running pool tasks: nested parallel_for runs serially */

int threads_in_task(void) { return tl_in_task; }

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A bounded wait: spin at first, then yield; backoff_step returns 0 once `limit` seconds have passed. */
typedef struct Backoff {
    double start, elapsed, limit;
    unsigned steps;
} Backoff;

static Backoff backoff_begin(double limit) {
    Backoff b = {seconds_now(), 0, limit, 0};
    return b;
}

static int backoff_step(Backoff *b) {
    if (b->elapsed >= b->limit) return 0;
    if (b->elapsed < POOL_SPIN)
        simd_pause();
    else
        sched_yield();
    if (++b->steps % 16 == 0) b->elapsed = seconds_now() - b->start;
    return 1;
}

static void run_share(int t, int nthreads, void (*task)(void *, int, int), void *arg, int ntasks) {
    int lo = (int)((long long)ntasks * t / nthreads), hi = (int)((long long)ntasks * (t + 1) / nthreads);
    for (int i = lo; i < hi; i++) task(arg, i, t);
}

/* Share t of `job`: returns 1 to exactly one claimant. Job words only grow, so a claim left over from
 * an older job never blocks a newer one, and a late worker cannot take a share of a job already done. */
static int claim_share(int t, unsigned long long job) {
    unsigned long long old = atomic_load(&pool.claim[t]);
    while (old < job)
        if (atomic_compare_exchange_weak(&pool.claim[t], &old, job)) return 1;
    return 0;
}

static void finish_share(void) {
    if (atomic_fetch_sub(&pool.pending, 1) == 1) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_signal(&pool.done);
        pthread_mutex_unlock(&pool.lock);
    }
}

/* What a new worker needs: its index and the job word at its creation (it may first run after the job
 * that made it was published, and must still take part in that job). */
typedef struct WorkerStart {
    int id;
    unsigned long long seen;
} WorkerStart;

static void *worker_main(void *p) {
    WorkerStart start = *(WorkerStart *)p;
    free(p);
    int id = start.id;
    unsigned long long seen = start.seen;
    tl_thread = id;
    tl_in_task = 1;
    int busy = 0;  /* took part in the last job: more are likely to follow, so spin before sleeping */
    for (;;) {
        unsigned long long job;
        Backoff wait = backoff_begin(busy ? POOL_WAIT_WORKER : 0);
        while ((job = atomic_load_explicit(&pool.job, memory_order_acquire)) == seen && !atomic_load(&pool.stop) &&
               backoff_step(&wait)) {}
        if (job == seen) {
            pthread_mutex_lock(&pool.lock);
            while ((job = atomic_load(&pool.job)) == seen && !atomic_load(&pool.stop))
                pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
        }
        if (atomic_load(&pool.stop)) return NULL;
        seen = job;
        int participants = (int)(job & 0xffff);
        busy = id < participants;
        if (!busy || !claim_share(id, job)) continue;
        run_share(id, participants, pool.task, pool.arg, pool.ntasks);
        finish_share();
    }
    return NULL;
}

/* Called with pool.call held. */
static void start_workers(int nthreads) {
    for (int id = pool.nworkers + 1; id < nthreads; id++) {
        WorkerStart *start = xmalloc(sizeof *start);
        start->id = id;
        start->seen = atomic_load(&pool.job);
        int rc = pthread_create(&pool.threads[id], NULL, worker_main, start);
        I2V_ASSERT(rc == 0, "cannot create worker thread %d of %d (error %d)", id, nthreads, rc);
        pool.nworkers = id;
    }
}

/* At exit the workers are stopped and joined, so the process ends with no thread of its own running (and
 * tools such as valgrind see every thread's memory returned). */
static void pool_init(void) {
    atexit(threads_shutdown);
    pthread_mutex_init(&pool.call, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("I2V_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end || v < 1 || v > POOL_MAX)
            fprintf(stderr, "i2v: I2V_THREADS='%s' is not a thread count in 1..%d; using %ld (all cores)\n",
                    env, POOL_MAX, n);
        else
            n = v;
    }
    atomic_store(&pool.nthreads, n < 1 ? 1 : n > POOL_MAX ? POOL_MAX : (int)n);
}

void threads_shutdown(void) {
    pthread_once(&pool.once, pool_init);
    if (tl_in_task || pthread_mutex_trylock(&pool.call)) return;   /* a job is running: leave the workers be */
    pthread_mutex_lock(&pool.lock);
    atomic_store(&pool.stop, 1);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int id = 1; id <= pool.nworkers; id++) pthread_join(pool.threads[id], NULL);
    pool.nworkers = 0;
    atomic_store(&pool.stop, 0);
    pthread_mutex_unlock(&pool.call);
}

int threads_count(void) {
    pthread_once(&pool.once, pool_init);
    return atomic_load(&pool.nthreads);
}

void threads_set(int n) {
    pthread_once(&pool.once, pool_init);
    I2V_ASSERT(n >= 1 && n <= POOL_MAX, "threads_set(%d): the count must be in 1..%d", n, POOL_MAX);
    I2V_ASSERT(!tl_in_task, "threads_set called from inside a parallel_for task");
    pthread_mutex_lock(&pool.call);
    atomic_store(&pool.nthreads, n);
    pthread_mutex_unlock(&pool.call);
}

void parallel_for(int ntasks, void (*task)(void *arg, int i, int thread), void *arg) {
    if (ntasks <= 0) return;
    if (tl_in_task) {  /* nested: this thread runs everything, under its own index */
        for (int i = 0; i < ntasks; i++) task(arg, i, tl_thread);
        return;
    }
    pthread_once(&pool.once, pool_init);
    pthread_mutex_lock(&pool.call);
    int T = atomic_load(&pool.nthreads);
    if (T > ntasks) T = ntasks;
    tl_in_task = 1;
    if (T == 1) {
        run_share(0, 1, task, arg, ntasks);
    } else {
        start_workers(T);
        pool.task = task;
        pool.arg = arg;
        pool.ntasks = ntasks;
        atomic_store(&pool.pending, T - 1);
        pthread_mutex_lock(&pool.lock);
        unsigned long long job = ((atomic_load(&pool.job) >> 16) + 1) << 16 | (unsigned long long)T;
        atomic_store_explicit(&pool.job, job, memory_order_release);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
        run_share(0, T, task, arg, ntasks);
        for (int t = 1; t < T; t++)
            if (claim_share(t, job)) {  /* its worker has not started: run the share here, as thread t */
                tl_thread = t;
                run_share(t, T, task, arg, ntasks);
                tl_thread = 0;
                finish_share();
            }
        Backoff wait = backoff_begin(POOL_WAIT_CALLER);
        while (atomic_load(&pool.pending) != 0 && backoff_step(&wait)) {}
        if (atomic_load(&pool.pending) != 0) {
            pthread_mutex_lock(&pool.lock);
            while (atomic_load(&pool.pending) != 0) pthread_cond_wait(&pool.done, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    tl_in_task = 0;
    pthread_mutex_unlock(&pool.call);
}
