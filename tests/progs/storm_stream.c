/* storm_stream restart|norestart MIB: MIB MiB through a pipe and through a
 * unix stream socket at once, each written by one thread and read by
 * another, 64 KiB blocking calls, while SIGUSR1 arrives (sent from outside;
 * the handler counts it, with or without SA_RESTART).  An interrupted call
 * is resumed where it stopped.  Prints, on stdout,
 *   "pipe N bytes checksum X" and "socket N bytes checksum Y",
 *   "odd errnos K" (any errno but EINTR, among them 512-516, which must
 *   never reach a program),
 * and "pid P" then "signals handled S" on stderr. */
#include "sig_common.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#define CHUNK 65536

static long long total;
static atomic_long handled, odd;

static void on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

struct channel {
    int in, out;
    long long moved;
    uint64_t checksum;
};

static void *writer(void *arg)
{
    struct channel *c = arg;
    static __thread unsigned char buf[CHUNK];
    for (long long done = 0; done < total;) {
        size_t want = total - done < CHUNK ? (size_t)(total - done) : CHUNK;
        for (size_t i = 0; i < want; i++)
            buf[i] = pattern((long)(done + (long long)i), c->out);
        size_t off = 0;
        while (off < want) {
            ssize_t n = write(c->out, buf + off, want - off);
            if (n < 0) {
                if (errno != EINTR)
                    atomic_fetch_add(&odd, 1);
                if (errno != EINTR && errno != EAGAIN)
                    return NULL;
                continue;
            }
            off += (size_t)n;
        }
        done += (long long)want;
    }
    close(c->out);
    return NULL;
}

static void *reader(void *arg)
{
    struct channel *c = arg;
    static __thread unsigned char buf[CHUNK];
    uint64_t h = 1469598103934665603ull;
    for (;;) {
        ssize_t n = read(c->in, buf, CHUNK);
        if (n < 0) {
            if (errno != EINTR)
                atomic_fetch_add(&odd, 1);
            if (errno != EINTR && errno != EAGAIN)
                break;
            continue;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
        c->moved += n;
    }
    c->checksum = h;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = strcmp(argv[1], "restart") == 0 ? SA_RESTART : 0;
    sigaction(SIGUSR1, &sa, NULL);
    total = atoll(argv[2]) << 20;
    int p[2], s[2];
    if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) < 0)
        return 1;
    struct channel pipe_channel = {p[0], p[1], 0, 0}, socket_channel = {s[0], s[1], 0, 0};
    dprintf(2, "pid %d\n", getpid());
    pthread_t t[4];
    pthread_create(&t[0], NULL, reader, &pipe_channel);
    pthread_create(&t[1], NULL, writer, &pipe_channel);
    pthread_create(&t[2], NULL, reader, &socket_channel);
    pthread_create(&t[3], NULL, writer, &socket_channel);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    say("pipe %lld bytes checksum %016llx\n", pipe_channel.moved, (unsigned long long)pipe_channel.checksum);
    say("socket %lld bytes checksum %016llx\n", socket_channel.moved, (unsigned long long)socket_channel.checksum);
    say("odd errnos %ld\n", atomic_load(&odd));
    dprintf(2, "signals handled %ld\n", atomic_load(&handled));
    return 0;
}
