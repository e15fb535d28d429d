/*
 * measure RESULT PROG [ARGS...]: runs PROG, waits for it, and writes
 * "WALL_SECONDS MAXRSS_KIB" into the file RESULT; exits with PROG's status
 * (128+N when signal N killed it).
 *
 * WALL_SECONDS spans fork to wait4 (CLOCK_MONOTONIC).  MAXRSS_KIB is
 * ru_maxrss from wait4: the peak RSS of PROG and of every descendant it
 * reaped.  bench/run.py starts every run through this program rather than
 * directly: a process that Python spawns inherits the Python process's peak
 * RSS in its ru_maxrss (execve records the peak of the memory it leaves, and
 * posix_spawn's child runs in Python's), whereas this program's is ~1 MiB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: measure RESULT PROG [ARGS...]\n");
        return 125;
    }
    double start = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("measure: fork");
        return 125;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    int status;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) < 0) {
        perror("measure: wait4");
        return 125;
    }
    double wall = now() - start;
    FILE *out = fopen(argv[1], "w");
    if (!out || fprintf(out, "%.6f %ld\n", wall, usage.ru_maxrss) < 0 || fclose(out) != 0) {
        perror(argv[1]);
        return 125;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
