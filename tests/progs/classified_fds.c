/* classified_fds: fds made by calls the fast path takes (pipe, socket,
 * accept), first used by a data call.  The fast path classifies pipes and
 * TCP, UDP and unix sockets itself; the others, and sockets whose ends may
 * still change, are Python's.
 *
 * In order: a pipe; a TCP connection (both ends); a UDP socket bound, then
 * sending unconnected; a UDP socket connected; a UDP socket never bound (its
 * first send binds it); a unix socketpair; a TCP socket over IPv6, when the
 * machine has ::1; a pipe made before a fork, whose ends the parent closes
 * and uses before the child writes; then LOOP pipes, each used once each
 * way, then, after a call that is Python's, again; LOOP connections, each
 * used once each way (and LOOP more over IPv6, with ::1); LOOP unix
 * socketpairs, stream and seqpacket, and LOOP unix connections to an
 * abstract name; and LOOP children, each writing into a pipe made
 * before its fork (its first call, before superv's Python knows it).
 *
 * Prints "CALL RESULT" for each data call of the first part, and the sums
 * of the loops. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOOP 100

static long said(const char *call, long result)
{
    printf("%s %ld\n", call, result);
    fflush(stdout); /* before a fork copies the buffer */
    return result;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int tcp_listener(int family, struct sockaddr_storage *addr, socklen_t *len)
{
    int l = socket(family, SOCK_STREAM, 0);
    if (l < 0)
        return -1;
    memset(addr, 0, sizeof *addr);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)addr;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        *len = sizeof *a;
    }
    if (bind(l, (struct sockaddr *)addr, *len) < 0 || listen(l, LOOP + 8) < 0 ||
        getsockname(l, (struct sockaddr *)addr, len) < 0) {
        close(l);
        return -1;
    }
    return l;
}

/* A connection to the listener: both ends, each used once each way. */
static long connection(int l, const struct sockaddr_storage *addr, socklen_t len, int print)
{
    char buf[64];
    int c = socket(((const struct sockaddr *)addr)->sa_family, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (const struct sockaddr *)addr, len) < 0)
        die("connect");
    int s = accept(l, NULL, NULL);
    if (s < 0)
        die("accept");
    long sum = 0;
    sum += print ? said("send", send(c, "hello", 5, 0)) : send(c, "hello", 5, 0);
    sum += print ? said("recv", recv(s, buf, sizeof buf, 0)) : recv(s, buf, sizeof buf, 0);
    sum += print ? said("write", write(s, "world!", 6)) : write(s, "world!", 6);
    sum += print ? said("read", read(c, buf, sizeof buf)) : read(c, buf, sizeof buf);
    close(c);
    close(s);
    return sum;
}

/* A pipe, used once each way; then, if l >= 0, a call that is Python's
 * (listen: superv learns then what the fast path did), and once more. */
static long pipe_once(int print, int l)
{
    int p[2];
    char buf[16];
    if (pipe(p) < 0)
        die("pipe");
    long sum = print ? said("write", write(p[1], "abc", 3)) : write(p[1], "abc", 3);
    if (l >= 0 && listen(l, LOOP + 8) < 0)
        die("listen");
    sum += print ? said("read", read(p[0], buf, sizeof buf)) : read(p[0], buf, sizeof buf);
    if (l >= 0) {
        sum += write(p[1], "de", 2);
        sum += read(p[0], buf, sizeof buf);
    }
    close(p[0]);
    close(p[1]);
    return sum;
}

int main(void)
{
    char buf[64];
    struct sockaddr_storage addr;
    socklen_t len;

    pipe_once(1, -1);

    int l = tcp_listener(AF_INET, &addr, &len);
    if (l < 0)
        die("listener");
    connection(l, &addr, len, 1);

    /* UDP: bound, unconnected (sendto names the peer) */
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in at_a, at_b;
    socklen_t alen = sizeof at_a;
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    if (a < 0 || b < 0 || bind(a, (struct sockaddr *)&any, sizeof any) < 0 ||
        bind(b, (struct sockaddr *)&any, sizeof any) < 0 || getsockname(a, (struct sockaddr *)&at_a, &alen) < 0 ||
        getsockname(b, (struct sockaddr *)&at_b, &alen) < 0)
        die("udp");
    said("sendto", sendto(a, "ping", 4, 0, (struct sockaddr *)&at_b, sizeof at_b));
    said("recvfrom", recvfrom(b, buf, sizeof buf, 0, NULL, NULL));
    /* UDP: connected */
    if (connect(b, (struct sockaddr *)&at_a, sizeof at_a) < 0)
        die("udp connect");
    said("send", send(b, "pong", 4, 0));
    said("recv", recv(a, buf, sizeof buf, 0));
    /* UDP: never bound; its first send binds it */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    said("sendto", sendto(u, "auto", 4, 0, (struct sockaddr *)&at_a, sizeof at_a));
    said("recv", recv(a, buf, sizeof buf, 0));
    said("sendto", sendto(u, "again", 5, 0, (struct sockaddr *)&at_a, sizeof at_a));
    said("recv", recv(a, buf, sizeof buf, 0));
    close(a);
    close(b);
    close(u);

    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0)
        die("socketpair");
    said("write", write(pair[0], "unix", 4));
    said("read", read(pair[1], buf, sizeof buf));
    close(pair[0]);
    close(pair[1]);

    struct sockaddr_storage addr6;
    socklen_t len6;
    int l6 = tcp_listener(AF_INET6, &addr6, &len6);
    if (l6 >= 0) {
        connection(l6, &addr6, len6, 1);
    } else {
        printf("no ipv6\n");
    }

    /* a pipe the child inherits, whose ends the parent closes or uses first */
    int p[2];
    if (pipe(p) < 0)
        die("pipe");
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        close(p[0]);
        usleep(50000);
        said("child write", write(p[1], "from the child", 14));
        _exit(0);
    }
    close(p[1]);
    said("parent read", read(p[0], buf, sizeof buf));
    said("parent read", read(p[0], buf, sizeof buf));
    close(p[0]);
    waitpid(child, NULL, 0);

    long pipes = 0, connections = 0;
    for (int i = 0; i < LOOP; i++)
        pipes += pipe_once(0, l);
    for (int i = 0; i < LOOP; i++)
        connections += connection(l, &addr, len, 0);
    for (int i = 0; l6 >= 0 && i < LOOP; i++)
        connections += connection(l6, &addr6, len6, 0);
    long pairs = 0;
    for (int i = 0; i < LOOP; i++) {
        int u[2];
        if (socketpair(AF_UNIX, i % 2 ? SOCK_SEQPACKET : SOCK_STREAM, 0, u) < 0)
            die("socketpair");
        pairs += write(u[0], "unix", 4);
        pairs += read(u[1], buf, sizeof buf);
        close(u[0]);
        close(u[1]);
    }
    /* unix connections to an abstract name */
    struct sockaddr_un ua = {.sun_family = AF_UNIX};
    int name_len = snprintf(ua.sun_path + 1, sizeof ua.sun_path - 1, "superv-classified-%d", (int)getpid());
    socklen_t ua_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + name_len);
    int ul = socket(AF_UNIX, SOCK_STREAM, 0);
    if (ul < 0 || bind(ul, (struct sockaddr *)&ua, ua_len) < 0 || listen(ul, LOOP + 8) < 0)
        die("unix listener");
    for (int i = 0; i < LOOP; i++) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&ua, ua_len) < 0)
            die("unix connect");
        int s = accept(ul, NULL, NULL);
        if (s < 0)
            die("unix accept");
        pairs += write(c, "u", 1);
        pairs += read(s, buf, sizeof buf);
        close(c);
        close(s);
    }
    close(ul);
    long children = 0;
    for (int i = 0; i < LOOP; i++) {
        int q[2];
        if (pipe(q) < 0)
            die("pipe");
        pid_t c = fork();
        if (c == 0)
            _exit(write(q[1], "x", 1) == 1 ? 0 : 1);
        close(q[1]);
        children += read(q[0], buf, sizeof buf);
        close(q[0]);
        waitpid(c, NULL, 0);
    }
    printf("loop of %d pipes %ld\nloop of %d connections %ld\nloop of %d socketpairs %ld\nloop of %d children %ld\n",
           LOOP, pipes, LOOP, connections, LOOP, pairs, LOOP, children);
    close(l);
    if (l6 >= 0)
        close(l6);
    return 0;
}
