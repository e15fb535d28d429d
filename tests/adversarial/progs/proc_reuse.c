/*
 * proc_reuse N: N short-lived children, up to 4 alive at once.  Child i
 * writes i % 7 + 1 bytes into a pipe and exits with i % 200.  Run where
 * pids wrap quickly (a pid namespace with a low pid_max), the same pids
 * come back again and again while superv follows them.
 *
 * Prints "children N bytes B pids P bad X": P distinct pids were used,
 * X children exited otherwise than expected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define ALIVE 4
#define PID_LIMIT 4194304

static int reap(const int *expected, int *bad)
{
    int status;
    pid_t pid;
    while ((pid = wait4(-1, &status, 0, NULL)) < 0 && errno == EINTR)
        ;
    if (pid < 0)
        return -1;
    *bad += !WIFEXITED(status) || WEXITSTATUS(status) != expected[pid];
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3000;
    static int expected[PID_LIMIT];
    static char seen[PID_LIMIT];
    int p[2], alive = 0, bad = 0, pids = 0;
    if (pipe(p) < 0)
        return 90;
    for (int i = 0; i < n; i++) {
        if (alive == ALIVE) {
            if (reap(expected, &bad) < 0)
                return 92;
            alive--;
        }
        pid_t pid = fork();
        if (pid < 0)
            return 91;
        if (pid == 0) {
            close(p[0]);
            _exit(write(p[1], "abcdefg", i % 7 + 1) == i % 7 + 1 ? i % 200 : 255);
        }
        expected[pid] = i % 200;
        pids += !seen[pid];
        seen[pid] = 1;
        alive++;
    }
    while (alive-- > 0)
        if (reap(expected, &bad) < 0)
            return 92;
    close(p[1]);
    char buf[4096];
    long bytes = 0;
    ssize_t got;
    while ((got = read(p[0], buf, sizeof buf)) > 0 || (got < 0 && errno == EINTR))
        bytes += got > 0 ? got : 0;
    printf("children %d bytes %ld pids %d bad %d\n", n, bytes, pids, bad);
    return 0;
}
