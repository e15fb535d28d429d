/*
 * superv-watchdog: when superv dies, the processes it traced die too.
 *
 *   superv-watchdog SOCKET_FD
 *
 * Without a supervisor, every traced call of a traced process fails with
 * ENOSYS (kernel-facts Q11) and the process runs on, unrecorded and
 * unchecked.  superv starts this watchdog first, untraced, and sends it a
 * pidfd of each process it takes in (SCM_RIGHTS over SOCKET_FD, a unix
 * socket), taken in batches.  It lets go of a pidfd once its process has
 * exited.
 * When the socket reaches end of file (superv has exited, however it
 * exited), it SIGKILLs every process it still holds, and their children
 * superv had not seen yet, until none is left: a fork fails by then (fork
 * is traced), so the tree cannot grow.  After a normal end none is left.
 *
 * Signals from a terminal (^C, ^\) are superv's and the program's, not its
 * own: it ignores them, and leaves superv's process group.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_FDS_PER_MESSAGE 64

static int epoll_fd;

/* The number after `key` in a /proc file of "Key:\tvalue" lines; -1 if none. */
static int number_after(const char *path, const char *key)
{
    char line[256];
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int value = -1;
    size_t len = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, len))
            value = atoi(line + len);
    fclose(f);
    return value;
}

/* The pid a pidfd holds; -1 once the process is gone. */
static int pidfd_pid(int pidfd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    return number_after(path, "Pid:");
}

static void hold(int pidfd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = pidfd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, pidfd, &ev) < 0)
        close(pidfd);
}

/* Take every pidfd superv has sent so far; 0 at end of file (superv is
 * gone, or done). */
static int receive_all(int sock)
{
    for (;;) {
        char data[1];
        char control[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_MESSAGE)];
        struct iovec iov = {data, sizeof data};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
        ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                int *fds = (int *)CMSG_DATA(c);
                for (int i = 0; i < count; i++)
                    hold(fds[i]);
            }
        if (n == 0)
            return 0;
    }
}

/* The process pid's parent; -1 if gone. */
static int parent_of(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    return number_after(path, "PPid:");
}

/* SIGKILL every descendant of pid, deepest first (a child outliving its
 * parent would be reparented out of reach).  Each child is pinned with a
 * pidfd and checked to still be pid's child before it is signalled, so a
 * reused pid is never hit.  Returns how many were signalled. */
static int kill_descendants(int pid, int depth)
{
    int killed = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *tasks = opendir(path);
    for (struct dirent *t; tasks && depth < 64 && (t = readdir(tasks));) {
        if (t->d_name[0] == '.')
            continue;
        char children_path[320];
        snprintf(children_path, sizeof children_path, "/proc/%d/task/%s/children", pid, t->d_name);
        FILE *f = fopen(children_path, "r");
        int child;
        while (f && fscanf(f, "%d", &child) == 1) {
            int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
            if (pidfd < 0)
                continue;
            if (parent_of(child) == pid) {
                killed += kill_descendants(child, depth + 1);
                killed += syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0;
            }
            close(pidfd);
        }
        if (f)
            fclose(f);
    }
    if (tasks)
        closedir(tasks);
    return killed;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int sock = atoi(argv[1]);
    setpgid(0, 0);
    struct rlimit fds; /* a pidfd per live traced process: as many as it takes */
    if (getrlimit(RLIMIT_NOFILE, &fds) == 0) {
        fds.rlim_cur = fds.rlim_max;
        setrlimit(RLIMIT_NOFILE, &fds);
    }
    for (int sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD)
            signal(sig, SIG_IGN);
    /* The socket wakes the watchdog when superv closes it (EPOLLRDHUP), not
     * for each pidfd: those are taken in batches, every 100 ms, so that a
     * run making many processes does not pay a wake-up for each.  One not
     * taken yet when superv dies is found as a child of one taken. */
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.fd = sock};
    if (epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, sock, &ev) < 0)
        return 1;
    int running = 1;
    while (running) {
        struct epoll_event events[64];
        int n = epoll_wait(epoll_fd, events, 64, 100);
        int closed = 0;
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == sock) {
                closed = 1;
            } else { /* its process exited */
                epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
            }
        }
        running = receive_all(sock) && !closed;
        if (n < 0 && errno != EINTR)
            break;
    }
    /* superv is gone: the pidfds still held are live processes, or were a
     * moment ago.  Kill them with their children until none is left. */
    for (int round = 0; round < 100; round++) {
        int killed = 0;
        DIR *fds = opendir("/proc/self/fd");
        for (struct dirent *d; fds && (d = readdir(fds));) {
            int fd = atoi(d->d_name);
            if (d->d_name[0] == '.' || fd <= 2 || fd == sock || fd == epoll_fd || fd == dirfd(fds))
                continue;
            int pid = pidfd_pid(fd);
            if (pid > 0) {
                killed += kill_descendants(pid, 0);
                killed += syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) == 0;
            }
        }
        if (fds)
            closedir(fds);
        if (!killed)
            break;
        usleep(1000);
    }
    return 0;
}
