/*
 * proc_exit HOW [N]: end in a chosen way.
 *   code N         exit(N)
 *   signal N       kill(getpid(), N) with N's default action
 *   segv           a write through a null pointer
 *   child-signal N a child says "child here" then kills itself with N; the
 *                  parent prints its status and exits 0
 *   child-silent-signal N   the same, but the child makes no call before it
 *                  kills itself (kill() is not traced)
 *   thread-child-silent-signal N   the same child, forked by a second thread,
 *                  which makes no call afterwards: the main thread reaps it
 * Core dumps are turned off (RLIMIT_CORE 0) so that a crash ends at once.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void silent_child(int n)
{
    signal(n, SIG_DFL);
    kill(getpid(), n);
    pause();
    _exit(94);
}

static int signal_number;
static volatile pid_t forked; /* by the second thread; it spins after, making no call */

static void *fork_and_spin(void *unused)
{
    (void)unused;
    pid_t child = fork();
    if (child == 0)
        silent_child(signal_number);
    __atomic_store_n(&forked, child, __ATOMIC_SEQ_CST);
    for (;;)
        __builtin_ia32_pause(); /* until the main thread's exit ends it */
    return NULL;
}

static void report_child(pid_t child)
{
    int status;
    waitpid(child, &status, 0);
    printf("child %d %s %d\n", child, WIFSIGNALED(status) ? "killed by" : "exited",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

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
            silent_child(n);
        }
        report_child(child);
        return 0;
    }
    if (!strcmp(how, "thread-child-silent-signal")) {
        fflush(stdout);
        signal_number = n;
        pthread_t thread;
        if (pthread_create(&thread, NULL, fork_and_spin, NULL) != 0)
            return 93;
        while (!__atomic_load_n(&forked, __ATOMIC_SEQ_CST))
            __builtin_ia32_pause();
        report_child(forked);
        fflush(stdout);
        _exit(0);
    }
    return 92;
}
