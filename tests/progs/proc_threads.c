/*
 * proc_threads PAIRS: 2*PAIRS threads doing I/O at once.  Pair j has a pipe;
 * its writer thread writes 20000 + 1000*j bytes in pieces of varied sizes,
 * its reader thread reads to EOF.  All threads start together (a barrier).
 * At the end the main thread prints one line per thread:
 *     tid=T role=writer|reader pair=J in=BYTES out=BYTES
 * and then "main tid=T" (its only I/O is this output).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_PAIRS 256

struct worker {
    int pair, fd, writer;
    pid_t tid;
    long in, out;
    pthread_t thread;
};

static struct worker workers[2 * MAX_PAIRS];
static pthread_barrier_t start;

static long pair_bytes(int j)
{
    return 20000 + 1000L * j;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    w->tid = (pid_t)syscall(SYS_gettid);
    pthread_barrier_wait(&start);
    char buf[4096];
    if (w->writer) {
        memset(buf, 'a' + w->pair % 26, sizeof buf);
        long left = pair_bytes(w->pair), k = 0;
        while (left > 0) {
            long piece = 100 + (k++ * 37 + w->pair * 11) % 4000;
            if (piece > left)
                piece = left;
            ssize_t n = write(w->fd, buf, piece);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                exit(96);
            w->out += n;
            left -= n;
        }
        close(w->fd);
    } else {
        for (;;) {
            ssize_t n = read(w->fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                exit(91);
            if (n == 0)
                break;
            w->in += n;
        }
        close(w->fd);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int pairs = argc > 1 ? atoi(argv[1]) : 25;
    if (pairs < 1 || pairs > MAX_PAIRS)
        return 92;
    pthread_barrier_init(&start, NULL, 2 * pairs);
    for (int j = 0; j < pairs; j++) {
        int p[2];
        if (pipe(p) < 0)
            return 90;
        workers[2 * j] = (struct worker){.pair = j, .fd = p[1], .writer = 1};
        workers[2 * j + 1] = (struct worker){.pair = j, .fd = p[0], .writer = 0};
    }
    for (int i = 0; i < 2 * pairs; i++)
        if (pthread_create(&workers[i].thread, NULL, work, &workers[i]))
            return 93;
    for (int i = 0; i < 2 * pairs; i++)
        pthread_join(workers[i].thread, NULL);
    char line[128];
    for (int i = 0; i < 2 * pairs; i++) {
        struct worker *w = &workers[i];
        int n = snprintf(line, sizeof line, "tid=%d role=%s pair=%d in=%ld out=%ld\n", w->tid,
                         w->writer ? "writer" : "reader", w->pair, w->in, w->out);
        if (write(1, line, n) != n)
            return 97;
    }
    int n = snprintf(line, sizeof line, "main tid=%ld\n", (long)syscall(SYS_gettid));
    if (write(1, line, n) != n)
        return 97;
    return 0;
}
