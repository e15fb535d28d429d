/* made_fds DIR: the calls that make fds (open, openat, creat, socket,
 * socketpair, pipe, pipe2, accept, accept4, dup, dup2, dup3, fcntl's
 * F_DUPFD), and connect, whose results
 * superv learns at the thread's next call, succeeding and failing, on
 * numbers superv's picture knows and on ones it cannot (an untraced
 * eventfd, dup2 to a high number), then from four threads at once.
 *
 * Prints one line per call of the main thread, in order: "CALL RESULT",
 * RESULT the new fd (0 for the pairs), or -1 when the call failed; then
 * the sum of the numbers a loop of opens got, and "thread TID FD" for each
 * open of the threads. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define THREADS 4
#define OPENS 200
#define LOOP 300

static const char *dir;
static int opened[THREADS][OPENS];
static pid_t tids[THREADS];

static int said(const char *call, long result)
{
    printf("%s %ld\n", call, result < 0 ? -1L : result);
    return (int)result;
}

static const char *in_dir(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void *opener(void *arg)
{
    long i = (long)arg;
    tids[i] = (pid_t)syscall(SYS_gettid);
    for (int k = 0; k < OPENS; k++) {
        opened[i][k] = open("/dev/null", O_RDONLY);
        if (k % 3 == 2) /* keep some, so that the numbers climb and interleave */
            close(opened[i][k - 1]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: made_fds DIR\n");
        return 2;
    }
    dir = argv[1];
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);

    int a = said("open-create", open(in_dir("a"), O_CREAT | O_WRONLY, 0600));
    said("open-missing", open(in_dir("missing/x"), O_RDONLY));
    said("openat-cwd", syscall(SYS_openat, AT_FDCWD, in_dir("a"), O_RDONLY));
    int d = said("open-dir", open(dir, O_RDONLY | O_DIRECTORY));
    said("openat-dirfd", openat(d, "a", O_RDONLY));
    said("openat-badfd", openat(9999, "a", O_RDONLY));
    said("creat", creat(in_dir("b"), 0600));
    said("open-quote", open(in_dir("q\"uote\\back"), O_CREAT | O_WRONLY, 0600));
    said("open-utf8", open(in_dir("\xc3\xa9t\xc3\xa9"), O_CREAT | O_WRONLY, 0600));
    said("open-latin1", open(in_dir("\xe9t\xe9"), O_CREAT | O_WRONLY, 0600));
    said("open-efault", syscall(SYS_open, (char *)8, O_RDONLY));

    said("socket-tcp", socket(AF_INET, SOCK_STREAM, 0));
    said("socket-unix", socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    said("socket-bad", socket(12345, SOCK_STREAM, 0));
    int sv[2], p[2] = {0, 1};
    if (said("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) == 0)
        printf("fds %d %d\n", sv[0], sv[1]);
    if (said("pipe", syscall(SYS_pipe, p)) == 0)
        printf("fds %d %d\n", p[0], p[1]);
    said("pipe2-efault", syscall(SYS_pipe2, (int *)8, 0));
    int unwritten[2] = {0, 1}; /* open fds: a failed pipe2 leaves them */
    said("pipe2-einval", pipe2(unwritten, 0x7fff0000));
    if (said("pipe2", pipe2(p, O_CLOEXEC)) == 0)
        printf("fds %d %d\n", p[0], p[1]);

    int listener = said("socket-listener", socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 4) < 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &len) < 0)
        return 1;
    int client = said("socket-client", socket(AF_INET, SOCK_STREAM, 0));
    if (said("connect", connect(client, (struct sockaddr *)&addr, sizeof addr)) < 0)
        return 1;
    said("accept", accept(listener, NULL, NULL));

    /* connect, failing: refused (a port just closed), a bad fd, a short
     * address, an unreadable one, and a unix path (formatted by Python). */
    struct sockaddr_in closed = addr;
    int gone = said("socket-gone", socket(AF_INET, SOCK_STREAM, 0));
    closed.sin_port = 0;
    len = sizeof closed;
    if (bind(gone, (struct sockaddr *)&closed, sizeof closed) < 0 ||
        getsockname(gone, (struct sockaddr *)&closed, &len) < 0)
        return 1;
    close(gone);
    int refused = said("socket-refused", socket(AF_INET, SOCK_STREAM, 0));
    said("connect-refused", connect(refused, (struct sockaddr *)&closed, sizeof closed));
    said("connect-badfd", connect(9999, (struct sockaddr *)&addr, sizeof addr));
    said("connect-short", connect(refused, (struct sockaddr *)&addr, 4));
    said("connect-efault", connect(refused, (struct sockaddr *)8, sizeof addr));
    struct sockaddr_un nowhere = {.sun_family = AF_UNIX};
    snprintf(nowhere.sun_path, sizeof nowhere.sun_path, "%s", in_dir("no-socket"));
    int unix_client = said("socket-unix-client", socket(AF_UNIX, SOCK_STREAM, 0));
    said("connect-unix", connect(unix_client, (struct sockaddr *)&nowhere, sizeof nowhere));
    fcntl(listener, F_SETFL, O_NONBLOCK);
    said("accept4-empty", accept4(listener, NULL, NULL, SOCK_NONBLOCK));

    /* dup, fcntl(F_DUPFD), dup2, dup3: onto a free number, onto an open one
     * whose pipe was used (classified), onto itself, from a bad fd. */
    said("dup", dup(listener));
    said("fcntl-dupfd-40", fcntl(listener, F_DUPFD, 40));
    said("fcntl-dupfd-cloexec", fcntl(listener, F_DUPFD_CLOEXEC, 0));
    said("fcntl-dupfd-negative", fcntl(listener, F_DUPFD, -1));
    said("dup-badfd", dup(9999));
    said("dup2-free", dup2(listener, 60));
    if (write(p[1], "x", 1) != 1)
        return 1;
    said("dup2-onto-used-pipe", dup2(listener, p[1]));
    said("dup2-itself", dup2(listener, listener));
    said("dup2-badfd", dup2(9999, 61));
    said("dup3-cloexec", dup3(listener, 62, O_CLOEXEC));
    said("dup3-itself", dup3(listener, listener, 0));
    said("dup2-negative", dup2(listener, -1));

    /* Numbers superv's picture cannot know: an fd made by an untraced call,
     * and a gap below. */
    int untraced = eventfd(0, 0);
    printf("untraced eventfd %d\n", untraced);
    said("open-after-eventfd", open("/dev/null", O_RDONLY));
    close(a);
    said("open-reuses-lowest", open("/dev/null", O_RDONLY));
    said("dup2-300", dup2(d, 300));
    close(d);
    said("open-below-300", open("/dev/null", O_RDONLY));
    said("open-again", open("/dev/null", O_RDONLY));

    int loop_sum = 0;
    for (int k = 0; k < LOOP; k++) {
        int fd = open("/dev/zero", O_RDONLY);
        loop_sum += fd;
        close(fd);
    }
    printf("loop of %d opens %d\n", LOOP, loop_sum);

    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, opener, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < OPENS; k++)
            printf("thread %d %d\n", tids[i], opened[i][k]);
    return 0;
}
