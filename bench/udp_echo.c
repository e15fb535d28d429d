/* udp_echo SIZE ROUNDS: a client process sends SIZE-byte datagrams to a
 * server process on 127.0.0.1, which sends each back to its sender, ROUNDS
 * times; neither socket is connected: every call names its address
 * (sendto/recvfrom), as UDP servers and DNS clients do. */
#include "common.h"

/* one counted datagram each way, with the address */
static void counted_sendto(int s, const char *buf, size_t n, const struct sockaddr_in *to)
{
    shared->slot[me].calls++;
    if (sendto(s, buf, n, 0, (const struct sockaddr *)to, sizeof *to) != (ssize_t)n)
        die("sendto");
}

static void counted_recvfrom(int s, char *buf, size_t n, struct sockaddr_in *from)
{
    socklen_t len = sizeof *from;
    shared->slot[me].calls++;
    if (recvfrom(s, buf, n, 0, (struct sockaddr *)from, &len) != (ssize_t)n || len != sizeof *from)
        die("recvfrom");
}

static int udp_bound(struct sockaddr_in *addr)
{
    socklen_t len = sizeof *addr;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)addr, sizeof *addr) < 0 ||
        getsockname(s, (struct sockaddr *)addr, &len) < 0)
        die("udp socket");
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    size_t size = (size_t)arg_long(argv, 1, "SIZE ROUNDS");
    long rounds = arg_long(argv, 2, "SIZE ROUNDS");
    struct sockaddr_in server, client, peer;
    char *buf = buffer(size ? size : 1);
    shared_init();
    if (size == 0 || size > 65507)
        die("size");
    int s = udp_bound(&server);
    pid_t child = fork_as(1);
    if (child == 0) {
        int c = udp_bound(&client);
        for (long i = 0; i < rounds; i++) {
            stamp(buf, size, i);
            counted_sendto(c, buf, size, &server);
            counted_recvfrom(c, buf, size, &peer);
            add_sum(buf, size);
        }
        _exit(0);
    }
    for (long i = 0; i < rounds; i++) {
        counted_recvfrom(s, buf, size, &peer);
        counted_sendto(s, buf, size, &peer);
    }
    wait_child(child);
    report(rounds, (long long)rounds * (long long)size * 2);
    return 0;
}
