/* Run work(context, part, parts) for part = 0 .. parts-1 on that many threads, the caller's
 * among them, and wait for all.  Plain OS threads (pthreads, or Windows threads), created per
 * call: only used for updates large enough that thread start-up is small beside them.  If a
 * thread cannot be started, the caller runs its part itself. */
#ifndef FASTGD_PARALLEL_H
#define FASTGD_PARALLEL_H

#include <stddef.h>

typedef void (*fastgd_work)(void *context, Py_ssize_t part, Py_ssize_t parts);

typedef struct {
    fastgd_work work;
    void *context;
    Py_ssize_t part, parts;
} fastgd_job;

#define FASTGD_MAX_THREADS 64

#ifdef _WIN32
#include <windows.h>
static DWORD WINAPI fastgd_thread_main(LPVOID argument) {
    fastgd_job *job = (fastgd_job *)argument;
    job->work(job->context, job->part, job->parts);
    return 0;
}
#else
#include <pthread.h>
static void *fastgd_thread_main(void *argument) {
    fastgd_job *job = (fastgd_job *)argument;
    job->work(job->context, job->part, job->parts);
    return NULL;
}
#endif

static void fastgd_run_parallel(fastgd_work work, void *context, Py_ssize_t parts) {
    fastgd_job jobs[FASTGD_MAX_THREADS];
    int started[FASTGD_MAX_THREADS];
#ifdef _WIN32
    HANDLE threads[FASTGD_MAX_THREADS];
#else
    pthread_t threads[FASTGD_MAX_THREADS];
#endif
    Py_ssize_t i;
    if (parts > FASTGD_MAX_THREADS) parts = FASTGD_MAX_THREADS;
    for (i = 1; i < parts; i++) {
        jobs[i].work = work; jobs[i].context = context; jobs[i].part = i; jobs[i].parts = parts;
#ifdef _WIN32
        threads[i] = CreateThread(NULL, 0, fastgd_thread_main, &jobs[i], 0, NULL);
        started[i] = threads[i] != NULL;
#else
        started[i] = pthread_create(&threads[i], NULL, fastgd_thread_main, &jobs[i]) == 0;
#endif
    }
    work(context, 0, parts);
    for (i = 1; i < parts; i++) {
        if (!started[i]) {
            work(context, i, parts);
            continue;
        }
#ifdef _WIN32
        WaitForSingleObject(threads[i], INFINITE);
        CloseHandle(threads[i]);
#else
        pthread_join(threads[i], NULL);
#endif
    }
}

#endif
