/* Helpers shared by the sig_* test programs: whole-line output, errno
 * names, a data pattern, and waiting until a task sleeps in a syscall. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One write(2) per line, so lines from several processes never mix. */
__attribute__((unused)) static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 1)
        n = sizeof line - 1;
    int off = 0;
    while (off < n) {
        ssize_t w = write(1, line + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += w;
    }
}

__attribute__((unused)) static const char *errname(int e)
{
    static __thread char other[32];
    const char *name = strerrorname_np(e);
    if (name)
        return name;
    snprintf(other, sizeof other, "errno%d", e);
    return other;
}

__attribute__((unused)) static unsigned char pattern(long offset, int stream)
{
    return (unsigned char)((offset * 31 + offset / 251 + stream * 17 + 7) & 0xff);
}

__attribute__((unused)) static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The syscall number a task sleeps in (/proc/.../syscall), -1 if running. */
__attribute__((unused)) static long syscall_of(const char *task_dir)
{
    char path[128], text[256];
    snprintf(path, sizeof path, "%s/syscall", task_dir);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -2;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return -2;
    text[n] = 0;
    if (text[0] < '0' || text[0] > '9')
        return -1;
    return strtol(text, NULL, 10);
}

__attribute__((unused)) static char state_of(const char *task_dir)
{
    char path[128], text[512];
    snprintf(path, sizeof path, "%s/stat", task_dir);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = 0;
    char *p = strrchr(text, ')');
    return p && p[1] && p[2] ? p[2] : 0;
}

/* Wait (up to 20 s) until the task sleeps in syscall nr (or nr2). */
__attribute__((unused)) static int wait_in_syscall(const char *task_dir, long nr, long nr2)
{
    for (int i = 0; i < 20000; i++) {
        long s = syscall_of(task_dir);
        char st = state_of(task_dir);
        if ((s == nr || s == nr2) && (st == 'S' || st == 'D'))
            return 0;
        sleep_ms(1);
    }
    return -1;
}

__attribute__((unused)) static int wait_state(const char *task_dir, const char *states)
{
    for (int i = 0; i < 20000; i++) {
        char st = state_of(task_dir);
        if (st && strchr(states, st))
            return 0;
        sleep_ms(1);
    }
    return -1;
}
