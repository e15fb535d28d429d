/* Moves known byte counts through a socketpair and a pipe across a fork, and
 * prints who it ran as and what it moved, for the unprivileged-run test. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int sv[2], p[2];
    char buf[4096];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || pipe(p) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        memset(buf, 'a', sizeof buf);
        close(sv[0]);
        long left = 5000;
        while (left > 0) {
            ssize_t n = write(sv[1], buf, left < 1234 ? (size_t)left : 1234);
            if (n <= 0)
                _exit(2);
            left -= n;
        }
        _exit(0);
    }
    close(sv[1]);
    long got = 0;
    ssize_t n;
    while ((n = read(sv[0], buf, sizeof buf)) > 0) {
        got += n;
        write(p[1], buf, (size_t)n);
    }
    close(p[1]);
    long piped = 0;
    while ((n = read(p[0], buf, sizeof buf)) > 0)
        piped += n;
    int status;
    waitpid(child, &status, 0);
    printf("uid=%d pid=%d socket_in=%ld pipe_out=%ld pipe_in=%ld\n", (int)getuid(), (int)getpid(), got, got, piped);
    return WEXITSTATUS(status);
}
