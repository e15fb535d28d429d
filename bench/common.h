/*
 * Shared by the bench workloads: I/O helpers that count every read/write/
 * send/recv call they make, and a result line.
 *
 * Every process of a workload adds its calls to its own slot of a shared
 * anonymous mapping (no syscall per count, no cache line shared between
 * processes that run at once); the first process prints the total after
 * waiting for the others.  The loader's reads and the final printf are not
 * counted.
 *
 * Output, two lines:
 *   result: ROUNDS BYTES SUM    deterministic: the harness compares it with
 *                               the native run's (SUM = sum of the bytes the
 *                               receiving side got)
 *   calls: N                    may vary a little (partial reads of big
 *                               messages); used for the per-call overhead
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS 4

struct shared {
    struct {
        long calls;
        unsigned long sum;
    } __attribute__((aligned(64))) slot[SLOTS];
};

static struct shared *shared;
static int me; /* this process's slot */

static inline void die(const char *what)
{
    perror(what);
    exit(1);
}

static inline void shared_init(void)
{
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        die("mmap");
}

/* fork; the child takes slot `slot` */
static inline pid_t fork_as(int slot)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0)
        me = slot;
    return pid;
}

static inline void wait_child(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child %d failed (status %#x)\n", (int)pid, status);
        exit(1);
    }
}

/* One counted call: read/write for pipes and files, recv/send for sockets. */
static inline ssize_t counted_in(int fd, char *buf, size_t n, int sock)
{
    shared->slot[me].calls++;
    ssize_t r = sock ? recv(fd, buf, n, 0) : read(fd, buf, n);
    if (r < 0)
        die(sock ? "recv" : "read");
    return r;
}

static inline void counted_out_all(int fd, const char *buf, size_t n, int sock)
{
    while (n > 0) {
        shared->slot[me].calls++;
        ssize_t r = sock ? send(fd, buf, n, 0) : write(fd, buf, n);
        if (r <= 0)
            die(sock ? "send" : "write");
        buf += r;
        n -= (size_t)r;
    }
}

/* reads exactly n bytes (several calls if they come in pieces) */
static inline void counted_in_all(int fd, char *buf, size_t n, int sock)
{
    while (n > 0) {
        ssize_t r = counted_in(fd, buf, n, sock);
        if (r == 0) {
            fprintf(stderr, "unexpected end of data\n");
            exit(1);
        }
        buf += r;
        n -= (size_t)r;
    }
}

static inline void add_sum(const char *buf, size_t n)
{
    unsigned long s = 0;
    for (size_t i = 0; i < n; i++)
        s += (unsigned char)buf[i];
    shared->slot[me].sum += s;
}

/* a message whose bytes change with its round, so that stale or misplaced data shows in the sum */
static inline void stamp(char *buf, size_t n, long round)
{
    buf[0] = (char)(round & 0x7f);
    buf[n / 2] = (char)((round >> 7) & 0x7f);
    buf[n - 1] = (char)((round >> 14) & 0x7f);
}

static inline char *buffer(size_t n)
{
    char *b = malloc(n);
    if (!b)
        die("malloc");
    memset(b, 'x', n);
    return b;
}

static inline void report(long rounds, long long bytes)
{
    long calls = 0;
    unsigned long sum = 0;
    for (int i = 0; i < SLOTS; i++) {
        calls += shared->slot[i].calls;
        sum += shared->slot[i].sum;
    }
    printf("result: %ld %lld %lu\ncalls: %ld\n", rounds, bytes, sum, calls);
}

static inline long arg_long(char **argv, int i, const char *usage)
{
    char *end;
    long v = argv[i] ? strtol(argv[i], &end, 10) : -1;
    if (!argv[i] || *end || v < 0) {
        fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        exit(64);
    }
    return v;
}

/* a TCP listener on 127.0.0.1 with a free port */
static inline int tcp_listener(struct sockaddr_in *addr)
{
    socklen_t len = sizeof *addr;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)addr, sizeof *addr) < 0 || listen(s, 128) < 0 ||
        getsockname(s, (struct sockaddr *)addr, &len) < 0)
        die("listener");
    return s;
}

static inline int tcp_connect(const struct sockaddr_in *addr)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (s < 0 || connect(s, (const struct sockaddr *)addr, sizeof *addr) < 0)
        die("connect");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return s;
}

static inline int tcp_accept(int listener)
{
    int c = accept(listener, NULL, NULL), one = 1;
    if (c < 0)
        die("accept");
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}
