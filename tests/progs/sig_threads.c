#include "sig_common.h"

/*
 * sig_threads HANDLER SOURCE READERS SPINNERS
 *
 * READERS threads each read one channel until EOF (even ones: read() on a
 * pipe; odd ones: recv() on a unix stream socket) while as many writer
 * threads feed them in small pieces with pauses, so that the readers sleep
 * in their calls again and again; SPINNERS threads spin.  Meanwhile SIGUSR1
 * is sent to the process (process-directed) many times:
 *
 *   SOURCE  self     a thread calls kill(getpid(), SIGUSR1) every ms
 *           child    a child process calls kill(getppid(), SIGUSR1) every ms
 *           outside  the test sends it (our pid is on stderr)
 *   HANDLER restart (SA_RESTART) | norestart
 *
 * stdout is deterministic: each reader's byte count and whether the data is
 * intact, each writer's count, then any errno that was not expected (EINTR
 * is expected only without SA_RESTART).  Counts of EINTR go to stderr.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define MAX_READERS 16
#define PIECES 150

static int restart;
static int nreaders;
static atomic_int readers_left;
static atomic_long handled;
static volatile int stop_spinning;

struct channel {
    int index;
    int rfd, wfd;
    int use_recv;
    long expected, got, written;
    int intact;
    long eintr;
    char unexpected[256];
};

static struct channel channels[MAX_READERS];

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

static void note_unexpected(struct channel *c, const char *who, int err)
{
    size_t len = strlen(c->unexpected);
    if (len < sizeof c->unexpected - 40)
        snprintf(c->unexpected + len, sizeof c->unexpected - len, " %s:%s(%d)", who, errname(err), err);
}

static long piece_size(int channel, int k)
{
    return 1 + (k * 977 + channel * 131) % 3000;
}

static void *reader(void *arg)
{
    struct channel *c = arg;
    static __thread unsigned char buf[4096];
    for (;;) {
        ssize_t r = c->use_recv ? recv(c->rfd, buf, sizeof buf, 0) : read(c->rfd, buf, sizeof buf);
        if (r < 0) {
            int err = errno;
            if (err == EINTR && !restart) {
                c->eintr++;
                continue;
            }
            note_unexpected(c, c->use_recv ? "recv" : "read", err);
            if (err == EINTR || (err >= 512 && err <= 516))
                continue;
            break;
        }
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern(c->got + i, c->index))
                c->intact = 0;
        c->got += r;
    }
    atomic_fetch_sub(&readers_left, 1);
    return NULL;
}

static void *writer(void *arg)
{
    struct channel *c = arg;
    static __thread unsigned char buf[3000];
    long off = 0;
    for (int k = 0; k < PIECES; k++) {
        long n = piece_size(c->index, k);
        for (long i = 0; i < n; i++)
            buf[i] = pattern(off + i, c->index);
        long done = 0;
        while (done < n) {
            ssize_t w = c->use_recv ? send(c->wfd, buf + done, n - done, 0) : write(c->wfd, buf + done, n - done);
            if (w < 0) {
                int err = errno;
                if (!(err == EINTR && !restart))
                    note_unexpected(c, c->use_recv ? "send" : "write", err);
                if (err == EINTR || (err >= 512 && err <= 516))
                    continue;
                goto out;
            }
            done += w;
        }
        off += n;
        c->written += n;
        if (k % 3 == 0)
            sleep_ms(1);
    }
out:
    close(c->wfd);
    return NULL;
}

static void *spinner(void *arg)
{
    (void)arg;
    volatile unsigned long x = 0;
    while (!stop_spinning)
        x++;
    return NULL;
}

static void *signaller(void *arg)
{
    (void)arg;
    while (atomic_load(&readers_left) > 0) {
        kill(getpid(), SIGUSR1);
        sleep_ms(1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 92;
    restart = !strcmp(argv[1], "restart");
    const char *source = argv[2];
    nreaders = atoi(argv[3]);
    int nspinners = atoi(argv[4]);
    if (nreaders < 1 || nreaders > MAX_READERS)
        return 92;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGUSR1, &sa, NULL);

    /* Before the channels exist, so that the child holds none of their ends.
     * It starts once the set-up is done: under a supervisor a call waiting
     * to be received can fail with EINTR (a kernel limit, kernel-facts 2d),
     * and the set-up's calls (pipe, the pid line) have no retry. */
    pid_t child = -1;
    int go[2] = {-1, -1};
    if (!strcmp(source, "child")) {
        pid_t parent = getpid();
        if (pipe(go) < 0)
            return 90;
        child = fork();
        if (child == 0) {
            char b;
            close(go[1]);
            while (read(go[0], &b, 1) < 0 && errno == EINTR)
                ;
            for (;;) {
                if (kill(parent, SIGUSR1) < 0)
                    _exit(0);
                sleep_ms(1);
            }
        }
    }
    for (int i = 0; i < nreaders; i++) {
        struct channel *c = &channels[i];
        int fds[2];
        c->index = i;
        c->intact = 1;
        c->use_recv = i % 2;
        if (c->use_recv ? socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : pipe(fds))
            return 90;
        c->rfd = fds[0];
        c->wfd = fds[1];
        for (int k = 0; k < PIECES; k++)
            c->expected += piece_size(i, k);
    }
    atomic_store(&readers_left, nreaders);

    fprintf(stderr, "pid %d\n", getpid());
    if (child > 0) {
        close(go[0]);
        close(go[1]); /* the storm begins */
    }

    pthread_t readers[MAX_READERS], writers[MAX_READERS], spinners[16], sig_thread;
    for (int i = 0; i < nreaders; i++)
        pthread_create(&readers[i], NULL, reader, &channels[i]);
    for (int i = 0; i < nspinners && i < 16; i++)
        pthread_create(&spinners[i], NULL, spinner, NULL);
    if (!strcmp(source, "self"))
        pthread_create(&sig_thread, NULL, signaller, NULL);
    /* Let the readers sleep in their first calls before any data comes. */
    sleep_ms(50);
    for (int i = 0; i < nreaders; i++)
        pthread_create(&writers[i], NULL, writer, &channels[i]);

    for (int i = 0; i < nreaders; i++) {
        pthread_join(writers[i], NULL);
        pthread_join(readers[i], NULL);
    }
    stop_spinning = 1;
    for (int i = 0; i < nspinners && i < 16; i++)
        pthread_join(spinners[i], NULL);
    if (!strcmp(source, "self"))
        pthread_join(sig_thread, NULL);
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }

    int all_ok = 1;
    long eintr = 0;
    for (int i = 0; i < nreaders; i++) {
        struct channel *c = &channels[i];
        int ok = c->got == c->expected && c->written == c->expected && c->intact;
        all_ok &= ok && !c->unexpected[0];
        eintr += c->eintr;
        say("channel %d (%s): wrote %ld read %ld of %ld %s\n", i, c->use_recv ? "recv" : "read",
            c->written, c->got, c->expected, c->intact ? "intact" : "CORRUPT");
        if (c->unexpected[0])
            say("channel %d unexpected errors:%s\n", i, c->unexpected);
    }
    say("%s\n", all_ok ? "all ok" : "FAILED");
    fprintf(stderr, "signals handled %ld, EINTR seen %ld\n", atomic_load(&handled), eintr);
    return all_ok ? 0 : 1;
}
