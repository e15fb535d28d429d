#include "sig_common.h"

/*
 * sig_block TRANSPORT SOURCE HANDLER
 *
 * The main thread blocks in read() (pipe) or recv() (unix or tcp stream
 * socket) while no data is there; a signal arrives; its handler prints
 * "handler SIG" and tells the writer (a child process) to send the data:
 * a 1000-byte message, then REST bytes, then EOF.  Every call's result is
 * printed (count or errno name), so a native run and a supervised one can be
 * compared line for line.
 *
 *   TRANSPORT  pipe | unix | tcp
 *   SOURCE     alarm    SIGALRM from alarm(1)
 *              child    SIGUSR1 from the writer process, once we sleep in the read
 *              thread   SIGUSR1 kill()ed to the process by a second thread
 *                       (which blocks it), once we sleep in the read
 *              outside  SIGUSR1 sent by the test (pid on stderr)
 *              stop     SIGSTOP then SIGCONT sent by the test; HANDLER is
 *                       then about SIGCONT, and with "none" the writer sends
 *                       the data as soon as it sees us stopped (it says so on
 *                       stderr; the test sends SIGCONT after that)
 *   HANDLER    restart (SA_RESTART) | norestart | none (stop only)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define MESSAGE 1000
#define REST 300000

static int ack_w = -1;
static int use_recv;
static char main_task[64];
static volatile int main_done;

static void on_signal(int sig)
{
    int saved = errno;
    const char *m = sig == SIGALRM ? "handler SIGALRM\n"
                  : sig == SIGUSR1 ? "handler SIGUSR1\n"
                  : sig == SIGCONT ? "handler SIGCONT\n" : "handler ?\n";
    ssize_t unused = write(1, m, strlen(m));
    unused = write(ack_w, "x", 1);
    (void)unused;
    errno = saved;
}

static ssize_t take(int fd, void *buf, size_t n)
{
    return use_recv ? recv(fd, buf, n, 0) : read(fd, buf, n);
}

static void report(const char *what, ssize_t r, int err)
{
    if (r >= 0)
        say("%s = %zd\n", what, r);
    else
        say("%s = -1 %s\n", what, errname(err));
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            say("writer: write = -1 %s\n", errname(errno));
            return -1;
        }
        p += w;
        n -= w;
    }
    return 0;
}

static void *signal_from_thread(void *arg)
{
    (void)arg;
    if (wait_in_syscall(main_task, SYS_read, SYS_recvfrom) < 0)
        say("thread: the main thread never blocked\n");
    kill(getpid(), SIGUSR1);
    /* Stay: the process must still have two threads when the signal is handled. */
    while (!main_done)
        sleep_ms(1);
    return NULL;
}

static void make_channel(const char *transport, int *rfd, int *wfd)
{
    int fds[2];
    if (!strcmp(transport, "pipe")) {
        if (pipe(fds) < 0)
            exit(90);
    } else if (!strcmp(transport, "unix")) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
            exit(90);
        use_recv = 1;
    } else if (!strcmp(transport, "tcp")) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        int l = socket(AF_INET, SOCK_STREAM, 0);
        if (l < 0 || bind(l, (void *)&a, sizeof a) < 0 || listen(l, 1) < 0 || getsockname(l, (void *)&a, &len) < 0)
            exit(90);
        fds[1] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fds[1], (void *)&a, sizeof a) < 0)
            exit(90);
        fds[0] = accept(l, NULL, NULL);
        if (fds[0] < 0)
            exit(90);
        close(l);
        use_recv = 1;
    } else {
        exit(91);
    }
    *rfd = fds[0];
    *wfd = fds[1];
}

static void writer(int wfd, int ack_r, const char *source, const char *handler)
{
    pid_t parent = getppid();
    char parent_dir[64];
    snprintf(parent_dir, sizeof parent_dir, "/proc/%d", parent);
    if (!strcmp(source, "child")) {
        if (wait_in_syscall(parent_dir, SYS_read, SYS_recvfrom) < 0)
            say("writer: the parent never blocked\n");
        kill(parent, SIGUSR1);
    }
    if (!strcmp(source, "stop") && !strcmp(handler, "none")) {
        /* No handler to tell us: send while the parent is stopped. */
        if (wait_state(parent_dir, "Tt") < 0)
            say("writer: the parent never stopped\n");
        else
            fprintf(stderr, "writer saw the stop\n"); /* the test continues us then */
    } else {
        char c;
        ssize_t r;
        while ((r = read(ack_r, &c, 1)) < 0 && errno == EINTR)
            ;
        if (r != 1)
            say("writer: ack read = %zd\n", r);
    }
    static unsigned char data[MESSAGE + REST];
    for (long i = 0; i < MESSAGE + REST; i++)
        data[i] = pattern(i, 0);
    if (write_all(wfd, data, MESSAGE) < 0)
        _exit(1);
    /* Let the message be read on its own before the rest comes. */
    char c;
    ssize_t r;
    while ((r = read(ack_r, &c, 1)) < 0 && errno == EINTR)
        ;
    for (long off = MESSAGE; off < MESSAGE + REST; off += 8192) {
        long n = MESSAGE + REST - off < 8192 ? MESSAGE + REST - off : 8192;
        if (write_all(wfd, data + off, n) < 0)
            _exit(1);
    }
    close(wfd);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 92;
    const char *transport = argv[1], *source = argv[2], *handler = argv[3];
    int rfd, wfd, ack[2];
    make_channel(transport, &rfd, &wfd);
    if (pipe(ack) < 0)
        return 90;
    ack_w = ack[1];
    snprintf(main_task, sizeof main_task, "/proc/%d/task/%ld", getpid(), (long)syscall(SYS_gettid));

    int sig = !strcmp(source, "alarm") ? SIGALRM : !strcmp(source, "stop") ? SIGCONT : SIGUSR1;
    if (strcmp(handler, "none")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = !strcmp(handler, "restart") ? SA_RESTART : 0;
        sigaction(sig, &sa, NULL);
    }

    pid_t child = fork();
    if (child < 0)
        return 90;
    if (child == 0) {
        close(rfd);
        close(ack[1]);
        writer(wfd, ack[0], source, handler);
    }
    close(wfd);
    close(ack[0]);

    pthread_t helper;
    if (!strcmp(source, "thread")) {
        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &block, NULL);
        pthread_create(&helper, NULL, signal_from_thread, NULL);
        pthread_sigmask(SIG_UNBLOCK, &block, NULL);
    }

    fprintf(stderr, "pid %d\n", getpid());
    say("start %s %s %s\n", transport, source, handler);
    if (!strcmp(source, "alarm"))
        alarm(1);

    static unsigned char buf[65536];
    ssize_t r = take(rfd, buf, 4096);
    int err = errno;
    report("read1", r, err);
    if (r < 0 && err == EINTR) {
        r = take(rfd, buf, 4096);
        err = errno;
        report("read2", r, err);
    }
    int ok = r == MESSAGE;
    for (long i = 0; ok && i < MESSAGE; i++)
        ok = buf[i] == pattern(i, 0);
    say("message %s\n", ok ? "ok" : "WRONG");
    if (write(ack_w, "y", 1) != 1)
        say("ack write failed\n");

    long total = 0;
    int intact = 1;
    for (;;) {
        r = take(rfd, buf, sizeof buf);
        if (r < 0) {
            say("rest: read = -1 %s\n", errname(errno));
            if (errno == EINTR)
                continue;
            break;
        }
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern(MESSAGE + total + i, 0))
                intact = 0;
        total += r;
    }
    say("rest %ld bytes %s\n", total, intact ? "intact" : "CORRUPT");
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    say("writer %s %d\n", WIFEXITED(status) ? "exited" : "killed", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    if (!strcmp(source, "thread")) {
        main_done = 1;
        pthread_join(helper, NULL);
    }
    return 0;
}
