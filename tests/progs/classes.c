/* Touches one fd of every class superv tells apart, moving known byte
 * counts, and prints "name fd" for each so the test can match them:
 * tcp, udp, unix-dgram, pipe, named FIFO, disk file, /dev/null, eventfd,
 * and stdout (a tty when the test gives it one). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void say(const char *name, int fd)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%s %d\n", name, fd);
    write(1, line, (size_t)n); /* stdout: the tty case */
}

int main(int argc, char **argv)
{
    char buf[512];
    memset(buf, 'c', sizeof buf);
    const char *file = argc > 1 ? argv[1] : "/tmp/superv-classes.bin";

    /* tcp: a loopback connection to ourselves */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 1);
    getsockname(l, (struct sockaddr *)&a, &len);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, sizeof a);
    int s = accept(l, NULL, NULL);
    send(c, buf, 101, 0);
    recv(s, buf, sizeof buf, 0);
    say("tcp-client", c);
    say("tcp-server", s);

    /* udp to ourselves */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    len = sizeof ua;
    bind(u, (struct sockaddr *)&ua, sizeof ua);
    getsockname(u, (struct sockaddr *)&ua, &len);
    sendto(u, buf, 102, 0, (struct sockaddr *)&ua, sizeof ua);
    recvfrom(u, buf, sizeof buf, 0, NULL, NULL);
    say("udp", u);

    /* unix datagrams */
    int d[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, d);
    send(d[0], buf, 103, 0);
    recv(d[1], buf, sizeof buf, 0);
    say("unix-dgram-out", d[0]);
    say("unix-dgram-in", d[1]);

    /* pipe */
    int p[2];
    pipe(p);
    write(p[1], buf, 104);
    read(p[0], buf, sizeof buf);
    say("pipe-out", p[1]);
    say("pipe-in", p[0]);

    /* a named FIFO beside the file, both ends on one fd (O_RDWR never waits) */
    char fifo[4096];
    snprintf(fifo, sizeof fifo, "%s.fifo", file);
    unlink(fifo);
    mkfifo(fifo, 0600);
    int ff = open(fifo, O_RDWR);
    write(ff, buf, 107);
    read(ff, buf, sizeof buf);
    say("fifo", ff);
    unlink(fifo);

    /* disk */
    int f = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
    write(f, buf, 105);
    pread(f, buf, sizeof buf, 0);
    say("disk", f);

    /* a memory device */
    int null = open("/dev/null", O_WRONLY);
    write(null, buf, 106);
    say("devnull", null);

    /* other: eventfd, which superv lets the kernel do (not exact) */
    int e = eventfd(0, 0);
    uint64_t one = 1;
    write(e, &one, sizeof one);
    read(e, &one, sizeof one);
    say("eventfd", e);
    unlink(file);
    return 0;
}
