/* stream SIZE COUNT: a client process sends COUNT messages of SIZE bytes
 * one way over TCP on 127.0.0.1 and closes; the server process recv()s with
 * a SIZE-byte buffer until the end of the stream. */
#include "common.h"

int main(int argc, char **argv)
{
    (void)argc;
    size_t size = (size_t)arg_long(argv, 1, "SIZE COUNT");
    long count = arg_long(argv, 2, "SIZE COUNT");
    struct sockaddr_in addr;
    char *buf = buffer(size ? size : 1);
    shared_init();
    if (size == 0)
        die("size");
    int listener = tcp_listener(&addr);
    pid_t client = fork_as(1);
    if (client == 0) {
        close(listener);
        int s = tcp_connect(&addr);
        for (long i = 0; i < count; i++) {
            stamp(buf, size, i);
            counted_out_all(s, buf, size, 1);
        }
        close(s);
        _exit(0);
    }
    int c = tcp_accept(listener);
    long long bytes = 0;
    ssize_t n;
    while ((n = counted_in(c, buf, size, 1)) > 0) {
        add_sum(buf, (size_t)n);
        bytes += n;
    }
    wait_child(client);
    report(count, bytes);
    return 0;
}
