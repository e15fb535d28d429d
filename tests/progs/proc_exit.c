/*
 * proc_exit HOW [N]: end in a chosen way.
 *   code N         exit(N)
 *   signal N       kill(getpid(), N) with N's default action
 *   segv           a write through a null pointer
 *   child-signal N a child says "child here" then kills itself with N; the
 *                  parent prints its status and exits 0
 *   child-silent-signal N   the same, but the child makes no call before it
 *                  kills itself (kill() is not traced)
 * Core dumps are turned off (RLIMIT_CORE 0) so that a crash ends at once.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    if (argc < 2)
        return 92;
    const char *how = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 0;
    if (write(1, "started\n", 8) != 8)
        return 97;
    if (!strcmp(how, "code"))
        exit(n);
    if (!strcmp(how, "signal")) {
        signal(n, SIG_DFL);
        kill(getpid(), n);
        pause();
        return 94;
    }
    if (!strcmp(how, "segv")) {
        signal(SIGSEGV, SIG_DFL);
        *(volatile int *)0 = 1;
        return 94;
    }
    if (!strcmp(how, "child-signal") || !strcmp(how, "child-silent-signal")) {
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            if (!strcmp(how, "child-signal") && write(1, "child here\n", 11) != 11)
                _exit(97);
            signal(n, SIG_DFL);
            kill(getpid(), n);
            pause();
            _exit(94);
        }
        int status;
        waitpid(child, &status, 0);
        printf("child %d %s %d\n", child, WIFSIGNALED(status) ? "killed by" : "exited",
               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        return 0;
    }
    return 92;
}
