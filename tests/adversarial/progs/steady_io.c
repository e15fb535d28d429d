/*
 * steady_io FILE N: plain I/O whose every result is known in advance.
 *   opens:  N times, open FILE for appending (a fd above 2), write one byte,
 *           close;
 *   pipe:   N 64-byte messages to a child over a pipe, each echoed back over
 *           another;
 *   socket: the same over a socketpair.
 * No signal is sent to the program, so no call may fail with EINTR.  The
 * first result that is not the expected one is printed to stderr and the
 * program exits 3.  Prints "opens N pipe N socket N".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE 64

static void fail(const char *what, long i, long got)
{
    fprintf(stderr, "%s %ld: got %ld (%s)\n", what, i, got, got < 0 ? strerror(errno) : "unexpected");
    exit(3);
}

static void exactly(const char *what, long i, ssize_t got, size_t want)
{
    if (got != (ssize_t)want)
        fail(what, i, got);
}

static void message(char *m, long i)
{
    memset(m, 'a' + (int)(i % 26), SIZE);
    memcpy(m, &i, sizeof i);
}

/* The child echoes what it reads until end of file. */
static void echo(int in, int out)
{
    char m[SIZE];
    for (long i = 0;; i++) {
        ssize_t got = read(in, m, SIZE);
        if (got == 0)
            _exit(0);
        exactly("child read", i, got, SIZE);
        exactly("child write", i, write(out, m, SIZE), SIZE);
    }
}

/* N round trips: to[1] and from[0] are ours, the child has the other ends. */
static void round_trips(const char *what, long n, int to[2], int from[2])
{
    pid_t child = fork();
    if (child < 0)
        fail("fork", 0, -1);
    if (child == 0) {
        close(to[1]);
        close(from[0]);
        echo(to[0], from[1]);
    }
    close(to[0]);
    close(from[1]);
    char sent[SIZE], back[SIZE];
    for (long i = 0; i < n; i++) {
        message(sent, i);
        exactly(what, i, write(to[1], sent, SIZE), SIZE);
        exactly(what, i, read(from[0], back, SIZE), SIZE);
        if (memcmp(sent, back, SIZE) != 0)
            fail(what, i, SIZE);
    }
    close(to[1]);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("child", 0, status);
    close(from[0]);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    long n = atol(argv[2]);
    for (long i = 0; i < n; i++) {
        int fd = open(argv[1], O_WRONLY | O_APPEND);
        if (fd < 3)
            fail("open", i, fd);
        exactly("write", i, write(fd, "x", 1), 1);
        if (close(fd) != 0)
            fail("close", i, -1);
    }
    int to[2], from[2];
    if (pipe(to) || pipe(from))
        fail("pipe", 0, -1);
    round_trips("pipe", n, to, from);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, to) || socketpair(AF_UNIX, SOCK_STREAM, 0, from))
        fail("socketpair", 0, -1);
    round_trips("socket", n, to, from);
    printf("opens %ld pipe %ld socket %ld\n", n, n, n);
    return 0;
}
