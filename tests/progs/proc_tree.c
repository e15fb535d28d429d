/*
 * proc_tree MODE [ARGS]: processes for the fork / vfork / exec tests.  Every
 * process says who it is on stderr, in one write:
 *     who=ROLE pid=P ppid=Q argv=A|B|C
 *
 *   fork           root -> child -> grandchild; the child and grandchild
 *                  write CHILD_BYTES and GRANDCHILD_BYTES into one pipe, the
 *                  root reads it to EOF and prints "root read N (pipe r=R w=W)"
 *   vfork          vfork() + execv(self, info vforked)
 *   spawn          posix_spawn(self, info spawned)
 *   execchain N    execv(self, execchain N-1) until 0
 *   inherit        the root writes INHERIT_BYTES[0] into a pipe, then forks
 *                  two children: the first writes INHERIT_BYTES[1] into the
 *                  inherited pipe; the second closes it, opens /dev/null on
 *                  the same number and writes INHERIT_BYTES[2] there.  The
 *                  root reads the pipe to EOF: "inherit read N w=W"
 *   info NAME [cat] say who; with cat, copy stdin to stdout
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_BYTES 70000
#define GRANDCHILD_BYTES 50000
static const long INHERIT_BYTES[] = {1000, 2000, 3000};

extern char **environ;

static void say_to(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say_to(int fd, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 1)
        n = sizeof line - 1;
    if (write(fd, line, n) != n)
        exit(97);
}

static void who(const char *role, int argc, char **argv)
{
    char joined[512] = "";
    for (int i = 0; i < argc; i++) {
        if (i)
            strncat(joined, "|", sizeof joined - strlen(joined) - 1);
        strncat(joined, argv[i], sizeof joined - strlen(joined) - 1);
    }
    say_to(2, "who=%s pid=%d ppid=%d argv=%s\n", role, getpid(), getppid(), joined);
}

static void write_all(int fd, long n)
{
    static char buf[8192];
    memset(buf, 'x', sizeof buf);
    while (n > 0) {
        ssize_t w = write(fd, buf, n < (long)sizeof buf ? n : (long)sizeof buf);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            exit(96);
        n -= w;
    }
}

static int wait_status(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 92;
    const char *mode = argv[1];

    if (!strcmp(mode, "info")) {
        who(argc > 2 ? argv[2] : "info", argc, argv);
        if (argc > 3 && !strcmp(argv[3], "cat")) {
            char buf[4096];
            ssize_t r;
            while ((r = read(0, buf, sizeof buf)) > 0)
                if (write(1, buf, r) != r)
                    return 96;
        }
        return 0;
    }

    if (!strcmp(mode, "execchain")) {
        int n = argc > 2 ? atoi(argv[2]) : 0;
        who("chain", argc, argv);
        if (n <= 0)
            return 0;
        char next[16];
        snprintf(next, sizeof next, "%d", n - 1);
        char *args[] = {argv[0], "execchain", next, NULL};
        execv("/proc/self/exe", args);
        return 95;
    }

    if (!strcmp(mode, "fork")) {
        who("root", argc, argv);
        int p[2];
        if (pipe(p) < 0)
            return 90;
        pid_t child = fork();
        if (child < 0)
            return 90;
        if (child == 0) {
            close(p[0]);
            who("child", argc, argv);
            pid_t grandchild = fork();
            if (grandchild < 0)
                _exit(90);
            if (grandchild == 0) {
                who("grandchild", argc, argv);
                write_all(p[1], GRANDCHILD_BYTES);
                _exit(0);
            }
            write_all(p[1], CHILD_BYTES);
            close(p[1]);
            _exit(wait_status(grandchild));
        }
        close(p[1]);
        long total = 0;
        char buf[4096];
        ssize_t r;
        while ((r = read(p[0], buf, sizeof buf)) != 0) {
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return 91;
            total += r;
        }
        int status = wait_status(child);
        say_to(1, "root read %ld (pipe r=%d w=%d) child status %d\n", total, p[0], p[1], status);
        return 0;
    }

    if (!strcmp(mode, "inherit")) {
        int p[2];
        if (pipe(p) < 0)
            return 90;
        write_all(p[1], INHERIT_BYTES[0]);
        pid_t first = fork();
        if (first == 0) {
            close(p[0]);
            write_all(p[1], INHERIT_BYTES[1]);
            _exit(0);
        }
        pid_t second = fork();
        if (second == 0) {
            close(p[1]);
            if (open("/dev/null", O_WRONLY) != p[1])
                _exit(89);
            close(p[0]);
            write_all(p[1], INHERIT_BYTES[2]);
            _exit(0);
        }
        if (first < 0 || second < 0)
            return 90;
        close(p[1]);
        long total = 0;
        char buf[4096];
        ssize_t r;
        while ((r = read(p[0], buf, sizeof buf)) > 0)
            total += r;
        if (wait_status(first) || wait_status(second))
            return 88;
        say_to(1, "inherit read %ld w=%d\n", total, p[1]);
        return 0;
    }

    if (!strcmp(mode, "vfork")) {
        who("root", argc, argv);
        pid_t child = vfork();
        if (child < 0)
            return 90;
        if (child == 0) {
            char *args[] = {argv[0], "info", "vforked", NULL};
            execv("/proc/self/exe", args);
            _exit(95);
        }
        say_to(1, "vfork child %d status %d\n", child, wait_status(child));
        return 0;
    }

    if (!strcmp(mode, "spawn")) {
        who("root", argc, argv);
        pid_t child;
        char *args[] = {argv[0], "info", "spawned", NULL};
        int err = posix_spawn(&child, "/proc/self/exe", NULL, NULL, args, environ);
        if (err)
            return 95;
        say_to(1, "spawn child %d status %d\n", child, wait_status(child));
        return 0;
    }
    return 92;
}
