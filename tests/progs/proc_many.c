/*
 * proc_many N: N children at once, each writing one line into a pipe the
 * parent reads; the parent then reaps them one wait4 at a time, with every
 * child a zombie by then.  SIGCHLD keeps its default action (no handler):
 * nothing interrupts a call here.
 *
 * Prints "lines L reaped R bad B" and exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int p[2];
    if (pipe(p) < 0)
        return 90;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 91;
        if (pid == 0) {
            char line[16];
            snprintf(line, sizeof line, "child %05d\n", i); /* 12 bytes: one write, atomic */
            close(p[0]);
            _exit(write(p[1], line, 12) == 12 ? 0 : 1);
        }
    }
    close(p[1]);
    char buf[4096];
    long bytes = 0;
    for (;;) {
        ssize_t got = read(p[0], buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        bytes += got;
    }
    int reaped = 0, bad = 0, status;
    while (wait4(-1, &status, 0, NULL) > 0) {
        reaped++;
        bad += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    printf("lines %ld reaped %d bad %d\n", bytes / 12, reaped, bad);
    return 0;
}
