/* made_procs: the calls that make and reap processes (fork, vfork, clone,
 * wait4, waitid), whose results superv learns at the thread's next call:
 * children that call, children that never make a traced call (killed, or
 * crashed), a child's own child handed to us (CLONE_PARENT), waits that
 * reap nothing (WNOHANG, WNOWAIT, no child), children the kernel reaps
 * (SIGCHLD ignored), then a loop, then the same from a process with a
 * second thread.
 *
 * Prints one line per call of the main thread, in order: "CALL RESULT",
 * RESULT the pid it returned, or -1; and "status PID STATUS" for each
 * child reaped, STATUS the raw wait status. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOOP 200

static long said(const char *call, long result)
{
    printf("%s %ld\n", call, result < 0 ? -1L : result);
    fflush(stdout);
    return result;
}

static void reaped(const char *call, pid_t pid, int status)
{
    said(call, pid);
    if (pid > 0)
        printf("status %d %d\n", pid, status);
    fflush(stdout); /* before a fork copies the buffer */
}

static void wait_for(pid_t pid)
{
    int status = 0;
    pid_t got = (pid_t)syscall(SYS_wait4, pid, &status, 0, NULL);
    reaped("wait4", got, status);
}

/* A child that dies without a traced call of its own. */
static void crash(void)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    *(volatile int *)0 = 0;
    _exit(99); /* not reached */
}

static void *idle_thread(void *unused)
{
    (void)unused;
    pause();
    return NULL;
}

static void forks_and_waits(int rounds)
{
    pid_t child = (pid_t)syscall(SYS_fork);
    if (child == 0)
        _exit(3);
    said("fork", child);
    wait_for(child);

    child = vfork(); /* glibc's: a child returning from syscall() would pull the frame from under the parent */
    if (child == 0)
        syscall(SYS_exit_group, 4); /* touches nothing of the parent's */
    said("vfork", child);
    wait_for(child);

    child = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
    if (child == 0)
        _exit(5);
    said("clone", child);
    wait_for(child);

    /* killed before it made any traced call */
    child = (pid_t)syscall(SYS_fork);
    if (child == 0)
        for (;;)
            pause();
    said("fork", child);
    kill(child, SIGKILL);
    wait_for(child);

    /* a child running: WNOHANG reaps nothing; WNOWAIT leaves its zombie */
    int pipefd[2];
    if (pipe(pipefd) < 0)
        exit(1);
    child = (pid_t)syscall(SYS_fork);
    if (child == 0) {
        char c;
        close(pipefd[1]);
        _exit(read(pipefd[0], &c, 1) == 0 ? 6 : 7);
    }
    said("fork", child);
    close(pipefd[0]);
    int status = 0;
    pid_t got = (pid_t)syscall(SYS_wait4, child, &status, WNOHANG, NULL);
    reaped("wait4", got, status);
    close(pipefd[1]); /* the child reads EOF and exits */
    siginfo_t info = {0};
    said("waitid", syscall(SYS_waitid, P_PID, child, &info, WEXITED | WNOWAIT, NULL));
    wait_for(child);
    wait_for(-1); /* no child left: ECHILD */

    /* a child's own child, made ours by CLONE_PARENT, crashes before any traced call */
    child = (pid_t)syscall(SYS_fork);
    if (child == 0) {
        if (syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0) == 0)
            crash();
        _exit(8);
    }
    said("fork", child);
    wait_for(child);
    wait_for(-1); /* the grandchild */

    /* SIGCHLD ignored: children are reaped as they exit, and a wait fails once none is left */
    signal(SIGCHLD, SIG_IGN);
    if (pipe(pipefd) < 0)
        exit(1);
    child = (pid_t)syscall(SYS_fork);
    if (child == 0) { /* it lives until after the parent's next call, which learns the fork's result */
        char c;
        close(pipefd[1]);
        _exit(read(pipefd[0], &c, 1) == 0 ? 9 : 10);
    }
    said("fork", child);
    close(pipefd[0]);
    close(pipefd[1]);
    int status_unused;
    /* Printed apart: superv cannot tell the kernel's reaping from the
     * wait's, and names the child gone meanwhile as its result. */
    said("wait4-sigchld-ignored", syscall(SYS_wait4, -1, &status_unused, 0, NULL));
    signal(SIGCHLD, SIG_DFL);

    for (int i = 0; i < rounds; i++) {
        child = (pid_t)syscall(SYS_fork);
        if (child == 0)
            _exit(i & 0x7f);
        said("fork", child);
        wait_for(child);
    }
}

int main(void)
{
    forks_and_waits(LOOP);
    /* A second thread: the children are every thread's (Python's). */
    pthread_t thread;
    if (pthread_create(&thread, NULL, idle_thread, NULL) != 0)
        return 1;
    forks_and_waits(10);
    return 0;
}
