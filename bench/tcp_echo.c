/* tcp_echo SIZE ROUNDS: a client process sends SIZE bytes over TCP on
 * 127.0.0.1 and the server process sends them back, ROUNDS times
 * (send/recv, TCP_NODELAY on both ends). */
#include "common.h"

int main(int argc, char **argv)
{
    (void)argc;
    size_t size = (size_t)arg_long(argv, 1, "SIZE ROUNDS");
    long rounds = arg_long(argv, 2, "SIZE ROUNDS");
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
        for (long i = 0; i < rounds; i++) {
            stamp(buf, size, i);
            counted_out_all(s, buf, size, 1);
            counted_in_all(s, buf, size, 1);
            add_sum(buf, size);
        }
        _exit(0);
    }
    int c = tcp_accept(listener);
    for (long i = 0; i < rounds; i++) {
        counted_in_all(c, buf, size, 1);
        counted_out_all(c, buf, size, 1);
    }
    wait_child(client);
    report(rounds, (long long)rounds * (long long)size * 2);
    return 0;
}
