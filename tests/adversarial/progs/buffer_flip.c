/*
 * buffer_flip [pipe|socket] N: N writev calls of two pieces of a buffer into
 * a pipe (or a unix stream socket), while a second thread keeps rewriting
 * the bytes and the lengths in the iovec array.  A reader process counts
 * what arrives.  Whatever the writer's memory held when it was read, every
 * byte a call said it wrote must arrive, and no other.
 *
 * Prints "written W" (the sum of the calls' results) from the writer and
 * "received R" from the reader; exits 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE 65536

static char buf[SIZE];
static struct iovec iov[2];
static volatile int done;

static void *flip(void *unused)
{
    for (unsigned long i = 0; !done; i++) {
        memset(buf, i & 1 ? 'a' : 'b', SIZE);
        iov[0].iov_len = i & 1 ? 1000 : 30000;
        iov[1].iov_len = i & 2 ? 7 : 20000;
    }
    return unused;
}

int main(int argc, char **argv)
{
    int socket_mode = argc > 1 && strcmp(argv[1], "socket") == 0;
    long n = argc > 2 ? atol(argv[2]) : 20000;
    int fds[2];
    if (socket_mode ? socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : pipe(fds))
        return 90;
    pid_t reader = fork();
    if (reader == 0) {
        close(fds[1]);
        static char in[SIZE];
        long long received = 0;
        ssize_t got;
        while ((got = read(fds[0], in, sizeof in)) > 0)
            received += got;
        printf("received %lld\n", received);
        return 0;
    }
    close(fds[0]);
    iov[0] = (struct iovec){buf, 1000};
    iov[1] = (struct iovec){buf + 32768, 7};
    pthread_t flipper;
    pthread_create(&flipper, NULL, flip, NULL);
    long long written = 0;
    for (long i = 0; i < n; i++) {
        ssize_t w = writev(fds[1], iov, 2);
        if (w < 0)
            return 91;
        written += w;
    }
    done = 1;
    pthread_join(flipper, NULL);
    close(fds[1]);
    int status;
    waitpid(reader, &status, 0);
    printf("written %lld\n", written);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 92;
}
