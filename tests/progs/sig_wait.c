/* Helpers, repeated in each sig_*.c (build_prog rebuilds on the .c only): whole-line output,
 * errno names, a data pattern, and waiting until a task sleeps in a syscall. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One write(2) per line, so lines from several processes never mix. */
__attribute__((unused)) static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 1)
        n = sizeof line - 1;
    int off = 0;
    while (off < n) {
        ssize_t w = write(1, line + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += w;
    }
}

__attribute__((unused)) static const char *errname(int e)
{
    static __thread char other[32];
    const char *name = strerrorname_np(e);
    if (name)
        return name;
    snprintf(other, sizeof other, "errno%d", e);
    return other;
}

__attribute__((unused)) static unsigned char pattern(long offset, int stream)
{
    return (unsigned char)((offset * 31 + offset / 251 + stream * 17 + 7) & 0xff);
}

__attribute__((unused)) static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The syscall number a task sleeps in (/proc/.../syscall), -1 if running. */
__attribute__((unused)) static long syscall_of(const char *task_dir)
{
    char path[128], text[256];
    snprintf(path, sizeof path, "%s/syscall", task_dir);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -2;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return -2;
    text[n] = 0;
    if (text[0] < '0' || text[0] > '9')
        return -1;
    return strtol(text, NULL, 10);
}

__attribute__((unused)) static char state_of(const char *task_dir)
{
    char path[128], text[512];
    snprintf(path, sizeof path, "%s/stat", task_dir);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = 0;
    char *p = strrchr(text, ')');
    return p && p[1] && p[2] ? p[2] : 0;
}

/* Wait (up to 20 s) until the task sleeps in syscall nr (or nr2). */
__attribute__((unused)) static int wait_in_syscall(const char *task_dir, long nr, long nr2)
{
    for (int i = 0; i < 20000; i++) {
        long s = syscall_of(task_dir);
        char st = state_of(task_dir);
        if ((s == nr || s == nr2) && (st == 'S' || st == 'D'))
            return 0;
        sleep_ms(1);
    }
    return -1;
}

__attribute__((unused)) static int wait_state(const char *task_dir, const char *states)
{
    for (int i = 0; i < 20000; i++) {
        char st = state_of(task_dir);
        if (st && strchr(states, st))
            return 0;
        sleep_ms(1);
    }
    return -1;
}

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
