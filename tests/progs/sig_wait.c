#include "sig_common.h"

/*
 * sig_wait MODE: the target of the Ctrl-C tests.
 *
 * Forks a child that blocks SIGINT and reads a pipe only the parent writes
 * to (so it sees EOF, prints "child: parent gone" and exits 0 once the
 * parent is gone).  The parent prints "ready PID" and blocks in read() on a
 * pipe nobody writes to.
 *
 *   MODE default  SIGINT as inherited (default: it kills)
 *        handle   a SIGINT handler without SA_RESTART; the read fails with
 *                 EINTR; the parent waits 300 ms for any duplicate, prints
 *                 how many SIGINTs it handled, and exits 3
 *        ignore   SIGINT ignored: only SIGKILL ends it
 *        thread   the read is made by a second thread, which has a SIGUSR1
 *                 handler (SA_RESTART) that prints "handler SIGUSR1"; the
 *                 main thread blocks SIGUSR1 and waits for it; prints
 *                 "reader TID"; SIGINT as inherited
 */
#include <pthread.h>
#include <sys/syscall.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

static atomic_int sigints;

static int never_r = -1;

static void on_usr1(int sig)
{
    (void)sig;
    ssize_t unused = write(1, "handler SIGUSR1\n", 16);
    (void)unused;
}

static void *thread_reader(void *arg)
{
    (void)arg;
    say("reader %ld\n", (long)syscall(SYS_gettid));
    char c;
    ssize_t r = read(never_r, &c, 1);
    say("thread read = %zd%s%s\n", r, r < 0 ? " " : "", r < 0 ? errname(errno) : "");
    return NULL;
}

static void on_sigint(int sig)
{
    (void)sig;
    atomic_fetch_add(&sigints, 1);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 92;
    const char *mode = argv[1];
    int keep[2], never[2];
    if (pipe(keep) < 0 || pipe(never) < 0)
        return 90;
    pid_t child = fork();
    if (child < 0)
        return 90;
    if (child == 0) {
        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigprocmask(SIG_BLOCK, &block, NULL);
        close(keep[1]);
        close(never[0]);
        close(never[1]);
        char c;
        ssize_t r;
        while ((r = read(keep[0], &c, 1)) < 0 && errno == EINTR)
            ;
        say("child: parent gone (read = %zd)\n", r);
        _exit(0);
    }
    close(keep[0]);
    if (!strcmp(mode, "handle")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigaction(SIGINT, &sa, NULL);
    } else if (!strcmp(mode, "ignore")) {
        signal(SIGINT, SIG_IGN);
    }
    if (!strcmp(mode, "thread")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGUSR1, &sa, NULL);
        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        never_r = never[0];
        pthread_t reader;
        pthread_create(&reader, NULL, thread_reader, NULL);
        pthread_sigmask(SIG_BLOCK, &block, NULL);
        say("ready %d\n", getpid());
        pthread_join(reader, NULL);
        return 0;
    }
    say("ready %d\n", getpid());
    char c;
    ssize_t r = read(never[0], &c, 1);
    if (r < 0) {
        int err = errno;
        sleep_ms(300);
        say("read = -1 %s after %d SIGINT\n", errname(err), atomic_load(&sigints));
        return 3;
    }
    say("read = %zd\n", r);
    return 0;
}
