/* threads.h: the thread pool that every heavy kernel shares.
 *
 * Created once, reused by every op. I2V_THREADS sets the count (default: all cores).
 * parallel_for runs task(arg, i, thread) for i in [0, ntasks) on the pool and returns when all are done;
 * thread is in [0, threads_count()) and indexes per-thread buffers. The assignment of tasks to threads
 * is a fixed function of (ntasks, thread count), so results are identical run to run: thread t runs the
 * contiguous range [ntasks*t/T, ntasks*(t+1)/T) with T = min(threads_count(), ntasks), and the caller is
 * thread 0. A parallel_for called from inside a task runs serially on that thread, passing its index.
 * Calls from several outside threads are serialised. threads_set must not be called from inside a task.
 */
#ifndef I2V_THREADS_H
#define I2V_THREADS_H

int threads_count(void);
void threads_set(int n);
void parallel_for(int ntasks, void (*task)(void *arg, int i, int thread), void *arg);
/* 1 while the calling thread runs a pool task (a nested parallel_for then runs serially). */
int threads_in_task(void);
/* Stops and joins the worker threads (run at exit; a later parallel_for starts them again). */
void threads_shutdown(void);

#endif
