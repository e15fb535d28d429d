/*
 * sig_unreceived ROUNDS: calls that natively never fail with EINTR, made
 * while a SIGUSR1 handler without SA_RESTART runs every millisecond.
 *
 * Under a seccomp supervisor, a call is interruptible until the supervisor
 * has received its notification (kernel-facts 2d): a supervisor that is
 * slow to receive, because it is busy with another thread's call, turns the
 * signal into EINTR where natively there is none.  Thread "busy" keeps the
 * supervisor busy with calls it handles in Python (socket + close); the main
 * thread makes calls it answers at once (pipe2, read of /dev/zero, close).
 * A child sends SIGUSR1 to the process every millisecond.
 *
 * Prints "eintr N of M calls, signals S" and exits 0; natively N is 0.
 * M counts the rounds' calls plus the set-up's open and thread creation.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "sig_common.h"

static atomic_int done;
static atomic_long signals;
static atomic_long eintr;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals, 1);
}

static void count(long rc)
{
    if (rc < 0 && errno == EINTR)
        atomic_fetch_add(&eintr, 1);
}

static void *busy(void *arg)
{
    (void)arg;
    while (!atomic_load(&done)) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        count(s);
        if (s >= 0)
            close(s);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 2000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART */
    sigaction(SIGUSR1, &sa, NULL);

    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        for (;;) {
            if (kill(parent, SIGUSR1) < 0)
                _exit(0);
            sleep_ms(1);
        }
    }
    /* open and clone are interruptible as well: counted, and tried again */
    long calls = 0;
    int zero;
    do {
        zero = open("/dev/zero", O_RDONLY);
        count(zero);
        calls++;
    } while (zero < 0 && errno == EINTR);
    if (zero < 0)
        return 90;
    pthread_t thread;
    int failed;
    while ((failed = pthread_create(&thread, NULL, busy, NULL)) == EINTR)
        atomic_fetch_add(&eintr, 1), calls++;
    if (failed)
        return 91;
    calls++;
    char buf[64];
    for (long i = 0; i < rounds; i++) {
        int p[2];
        long rc = pipe2(p, 0);
        count(rc);
        if (rc == 0) {
            close(p[0]);
            close(p[1]);
        }
        count(read(zero, buf, sizeof buf));
        calls += 2;
    }
    atomic_store(&done, 1);
    pthread_join(thread, NULL);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    say("eintr %ld of %ld calls, signals %ld\n", atomic_load(&eintr), calls, atomic_load(&signals));
    return 0;
}
