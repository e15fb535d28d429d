/* seed_loop ROUNDS BYTES: the seed scenario (examples/seed.c), ROUNDS times
 * in one run.  A client process connects ROUNDS times to 127.0.0.1 and sends
 * BYTES each time; the server accept()s, forks a child that read()s the
 * socket 2048 bytes at a time and write()s what it got into a pipe, and
 * reads the pipe until the child closes it.
 *
 * The client waits for the end of each connection (shutdown, then one recv
 * that returns 0 once the server side is closed) before the next connect:
 * a client running ahead would fill the listen backlog, and the dropped SYNs
 * would cost a 1 s retransmission each. */
#include "common.h"

static void client(const struct sockaddr_in *addr, long rounds, size_t bytes)
{
    char chunk[2048];
    memset(chunk, 'x', sizeof chunk);
    for (long i = 0; i < rounds; i++) {
        int s = tcp_connect(addr);
        for (size_t left = bytes; left > 0;) {
            size_t n = left < sizeof chunk ? left : sizeof chunk;
            stamp(chunk, n, i);
            counted_out_all(s, chunk, n, 1);
            left -= n;
        }
        shutdown(s, SHUT_WR);
        if (counted_in(s, chunk, sizeof chunk, 1) != 0) {
            fprintf(stderr, "client: data from the server\n");
            exit(1);
        }
        close(s);
    }
}

/* the seed's child: from the net into the pipe */
static void read_client(int sock, int pipe_out)
{
    char buf[2048];
    ssize_t n;
    while ((n = counted_in(sock, buf, sizeof buf, 0)) > 0)
        counted_out_all(pipe_out, buf, (size_t)n, 0);
}

int main(int argc, char **argv)
{
    (void)argc;
    long rounds = arg_long(argv, 1, "ROUNDS BYTES");
    size_t bytes = (size_t)arg_long(argv, 2, "ROUNDS BYTES");
    struct sockaddr_in addr;
    char buf[2048];
    shared_init();
    int listener = tcp_listener(&addr);
    pid_t sender = fork_as(1);
    if (sender == 0) {
        close(listener);
        client(&addr, rounds, bytes);
        _exit(0);
    }
    long long total = 0;
    for (long i = 0; i < rounds; i++) {
        int c = tcp_accept(listener), p[2];
        if (pipe(p) < 0)
            die("pipe");
        pid_t child = fork_as(2);
        if (child == 0) {
            close(p[0]);
            read_client(c, p[1]);
            _exit(0);
        }
        close(p[1]);
        close(c);
        ssize_t n;
        while ((n = counted_in(p[0], buf, sizeof buf, 0)) > 0) {
            add_sum(buf, (size_t)n);
            total += n;
        }
        close(p[0]);
        wait_child(child);
    }
    wait_child(sender);
    report(rounds, total);
    return 0;
}
