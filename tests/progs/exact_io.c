/* exact_io: I/O workloads that keep their own books, for tests/test_exact.py.
 *
 * Every workload does all of its I/O itself (both ends live inside this
 * process tree: fork, threads, socketpairs, loopback sockets) and, at the
 * end, prints one line per fd it used:
 *
 *   FD label=L pid=P fd=N in=B out=B calls=C eagain=E epipe=E econnreset=E
 *      zero=Z errors=E hin=H hout=H rhash=R kinds=read:C:B,... results=r1,r2,...
 *
 * in/out are the bytes its calls moved (the sum of their positive results),
 * calls counts every data syscall on the fd (failed ones too), hin/hout are
 * hashes of the bytes received/sent (chunking does not change them), rhash
 * is a hash of the sequence of raw results (-errno for failures, as superv's
 * events.jsonl records them), results lists them when there are at most
 * MAXRES.  Children exit with CHILD_OK; their parent prints
 *   CHILD label=L pid=P status=S    (S as a shell shows it)
 * Other facts: INFO key=value ...   Self-check failures: FAIL ... on stderr,
 * and the exit status is 1.
 *
 * Usage: exact_io MODE [ARGS]; see main().
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXRES 64
#define CHILD_OK 23

enum { K_READ, K_WRITE, K_RECV, K_SEND, K_RECVFROM, K_SENDTO, K_RECVMSG, K_SENDMSG,
       K_READV, K_WRITEV, K_PREAD64, K_PWRITE64, K_PREADV, K_PWRITEV, NK };
static const char *kind_names[NK] = {"read", "write", "recv", "send", "recvfrom", "sendto", "recvmsg",
                                     "sendmsg", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev"};

static int failures;

static void fail(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    fprintf(stderr, "FAIL [%d] %.*s", (int)getpid(), n, line);
    failures++;
}

/* -- a streaming hash: the same value however the bytes are chunked -------- */

struct hash {
    uint64_t h, n, carry;
};

#define HASH_INIT {0xcbf29ce484222325ULL, 0, 0}
#define PRIME 0x100000001b3ULL

static inline void mix(struct hash *s, uint64_t w) {
    s->h = (((s->h << 27) | (s->h >> 37)) ^ w) * PRIME;
}

static void hash_bytes(struct hash *s, const unsigned char *p, size_t len) {
    while (len && (s->n & 7)) {
        s->carry |= (uint64_t)*p++ << (8 * (s->n & 7));
        len--;
        if ((++s->n & 7) == 0) {
            mix(s, s->carry);
            s->carry = 0;
        }
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        mix(s, w);
        p += 8;
        len -= 8;
        s->n += 8;
    }
    while (len) {
        s->carry |= (uint64_t)*p++ << (8 * (s->n & 7));
        len--;
        if ((++s->n & 7) == 0) {
            mix(s, s->carry);
            s->carry = 0;
        }
    }
}

static uint64_t hash_final(const struct hash *s) {
    struct hash t = *s;
    if (t.n & 7) mix(&t, t.carry);
    mix(&t, t.n);
    return t.h ^ (t.h >> 31);
}

static void hash_iov(struct hash *s, const struct iovec *iov, int cnt, size_t len) {
    for (int i = 0; i < cnt && len; i++) {
        size_t take = iov[i].iov_len < len ? iov[i].iov_len : len;
        hash_bytes(s, iov[i].iov_base, take);
        len -= take;
    }
}

/* -- per-fd books ----------------------------------------------------------- */

struct fdstat {
    const char *label;
    int fd;
    long long in, out;
    long calls, eagain, epipe, econnreset, zero, errors;
    struct hash hin, hout;
    uint64_t rhash;
    long kcalls[NK];
    long long kbytes[NK];
    int nres;
    long long res[MAXRES];
};

static void fdstat_init(struct fdstat *s, const char *label, int fd) {
    struct hash h = HASH_INIT;
    memset(s, 0, sizeof *s);
    s->label = label;
    s->fd = fd;
    s->hin = h;
    s->hout = h;
    s->rhash = 0xcbf29ce484222325ULL;
}

/* Count one call; r is the libc return value, errno intact on failure. */
/* inward: 1 bytes came in, 0 went out, PEEKED: returned but not taken
 * (MSG_PEEK), which superv counts as a call that moved no bytes. */
#define PEEKED 2
static void note(struct fdstat *s, int kind, ssize_t r, int inward) {
    int e = errno;
    long long v = r < 0 ? -(long long)e : (long long)r;
    s->calls++;
    s->kcalls[kind]++;
    s->rhash = (s->rhash ^ (uint64_t)v) * PRIME;
    if (s->nres < MAXRES) s->res[s->nres] = v;
    s->nres++;
    if (r < 0) {
        if (e == EAGAIN) s->eagain++;
        else if (e == EPIPE) s->epipe++;
        else if (e == ECONNRESET) s->econnreset++;
        else s->errors++;
    } else if (r == 0) {
        s->zero++;
    } else if (inward != PEEKED) {
        s->kbytes[kind] += r;
        if (inward) s->in += r;
        else s->out += r;
    }
    errno = e;
}

static ssize_t t_read(struct fdstat *s, void *buf, size_t n) {
    ssize_t r = read(s->fd, buf, n);
    note(s, K_READ, r, 1);
    if (r > 0) hash_bytes(&s->hin, buf, r);
    return r;
}

static ssize_t t_write(struct fdstat *s, const void *buf, size_t n) {
    ssize_t r = write(s->fd, buf, n);
    note(s, K_WRITE, r, 0);
    if (r > 0) hash_bytes(&s->hout, buf, r);
    return r;
}

static ssize_t t_recv(struct fdstat *s, void *buf, size_t n, int flags) {
    ssize_t r = recv(s->fd, buf, n, flags);
    note(s, K_RECV, r, flags & MSG_PEEK ? PEEKED : 1);
    if (r > 0) hash_bytes(&s->hin, buf, r < (ssize_t)n ? r : (ssize_t)n);
    return r;
}

static ssize_t t_send(struct fdstat *s, const void *buf, size_t n, int flags) {
    ssize_t r = send(s->fd, buf, n, flags);
    note(s, K_SEND, r, 0);
    if (r > 0) hash_bytes(&s->hout, buf, r);
    return r;
}

static ssize_t t_recvfrom(struct fdstat *s, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al) {
    ssize_t r = recvfrom(s->fd, buf, n, flags, a, al);
    note(s, K_RECVFROM, r, flags & MSG_PEEK ? PEEKED : 1);
    if (r > 0) hash_bytes(&s->hin, buf, r < (ssize_t)n ? r : (ssize_t)n);
    return r;
}

static ssize_t t_sendto(struct fdstat *s, const void *buf, size_t n, int flags, const struct sockaddr *a,
                        socklen_t al) {
    ssize_t r = sendto(s->fd, buf, n, flags, a, al);
    note(s, K_SENDTO, r, 0);
    if (r > 0) hash_bytes(&s->hout, buf, r);
    return r;
}

static ssize_t t_recvmsg(struct fdstat *s, struct msghdr *m, int flags) {
    ssize_t r = recvmsg(s->fd, m, flags);
    note(s, K_RECVMSG, r, flags & MSG_PEEK ? PEEKED : 1);
    if (r > 0) hash_iov(&s->hin, m->msg_iov, m->msg_iovlen, r);
    return r;
}

static ssize_t t_sendmsg(struct fdstat *s, const struct msghdr *m, int flags) {
    ssize_t r = sendmsg(s->fd, m, flags);
    note(s, K_SENDMSG, r, 0);
    if (r > 0) hash_iov(&s->hout, m->msg_iov, m->msg_iovlen, r);
    return r;
}

static ssize_t t_readv(struct fdstat *s, const struct iovec *iov, int cnt) {
    ssize_t r = readv(s->fd, iov, cnt);
    note(s, K_READV, r, 1);
    if (r > 0) hash_iov(&s->hin, iov, cnt, r);
    return r;
}

static ssize_t t_writev(struct fdstat *s, const struct iovec *iov, int cnt) {
    ssize_t r = writev(s->fd, iov, cnt);
    note(s, K_WRITEV, r, 0);
    if (r > 0) hash_iov(&s->hout, iov, cnt, r);
    return r;
}

static ssize_t t_preadv(struct fdstat *s, const struct iovec *iov, int cnt, off_t off) {
    ssize_t r = preadv(s->fd, iov, cnt, off);
    note(s, K_PREADV, r, 1);
    if (r > 0) hash_iov(&s->hin, iov, cnt, r);
    return r;
}

static ssize_t t_pwritev(struct fdstat *s, const struct iovec *iov, int cnt, off_t off) {
    ssize_t r = pwritev(s->fd, iov, cnt, off);
    note(s, K_PWRITEV, r, 0);
    if (r > 0) hash_iov(&s->hout, iov, cnt, r);
    return r;
}

static ssize_t t_pread(struct fdstat *s, void *buf, size_t n, off_t off) {
    ssize_t r = pread(s->fd, buf, n, off);
    note(s, K_PREAD64, r, 1);
    if (r > 0) hash_bytes(&s->hin, buf, r);
    return r;
}

static ssize_t t_pwrite(struct fdstat *s, const void *buf, size_t n, off_t off) {
    ssize_t r = pwrite(s->fd, buf, n, off);
    note(s, K_PWRITE64, r, 0);
    if (r > 0) hash_bytes(&s->hout, buf, r);
    return r;
}

/* Write all n bytes with write(2), retrying short writes. */
static int t_write_all(struct fdstat *s, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t r = t_write(s, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            fail("%s: write: %s", s->label, strerror(errno));
            return -1;
        }
        p += r;
        n -= r;
    }
    return 0;
}

/* -- output ----------------------------------------------------------------- */

static void out_line(const char *line, size_t n) {
    while (n) {
        ssize_t r = write(1, line, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            _exit(99);
        }
        line += r;
        n -= r;
    }
}

static void say(const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    out_line(line, n);
}

static void report(const struct fdstat *s) {
    char line[4000];
    int n = snprintf(line, sizeof line,
                     "FD label=%s pid=%d fd=%d in=%lld out=%lld calls=%ld eagain=%ld epipe=%ld econnreset=%ld "
                     "zero=%ld errors=%ld hin=%016llx hout=%016llx rhash=%016llx kinds=",
                     s->label, (int)getpid(), s->fd, s->in, s->out, s->calls, s->eagain, s->epipe, s->econnreset,
                     s->zero, s->errors, (unsigned long long)hash_final(&s->hin),
                     (unsigned long long)hash_final(&s->hout), (unsigned long long)s->rhash);
    int first = 1;
    for (int k = 0; k < NK; k++) {
        if (!s->kcalls[k]) continue;
        n += snprintf(line + n, sizeof line - n, "%s%s:%ld:%lld", first ? "" : ",", kind_names[k], s->kcalls[k],
                      s->kbytes[k]);
        first = 0;
    }
    if (first) n += snprintf(line + n, sizeof line - n, "-");
    n += snprintf(line + n, sizeof line - n, " results=");
    if (s->nres == 0 || s->nres > MAXRES) {
        n += snprintf(line + n, sizeof line - n, "-");
    } else {
        for (int i = 0; i < s->nres; i++) n += snprintf(line + n, sizeof line - n, "%s%lld", i ? "," : "", s->res[i]);
    }
    line[n++] = '\n';
    out_line(line, n);
}

static int shell_status(int st) {
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

static void reap(const char *label, pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            fail("waitpid %s: %s", label, strerror(errno));
            return;
        }
    }
    say("CHILD label=%s pid=%d status=%d", label, (int)pid, shell_status(st));
    if (shell_status(st) != CHILD_OK) fail("child %s: status %d", label, shell_status(st));
}

static pid_t spawn(void) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    return pid;
}

static void child_exit(void) {
    fflush(stderr);
    _exit(failures ? 1 : CHILD_OK);
}

/* -- data ------------------------------------------------------------------- */

static void fill(unsigned char *p, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p[i] = (unsigned char)((x * 0x2545f4914f6cdd1dULL) >> 56);
    }
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    return p;
}

static int check(int ok, const char *what) {
    if (!ok) fail("%s", what);
    return ok;
}

/* -- sockets ---------------------------------------------------------------- */

static int tcp_listener(struct sockaddr_in *addr) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 8) ||
        getsockname(s, (struct sockaddr *)&a, &al)) {
        perror("tcp listener");
        exit(2);
    }
    *addr = a;
    return s;
}

static int tcp_connect(const struct sockaddr_in *addr) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (const struct sockaddr *)addr, sizeof *addr)) {
        perror("tcp connect");
        exit(2);
    }
    return s;
}

static int xaccept(int ls, int flags) {
    int c;
    while ((c = accept4(ls, NULL, NULL, flags)) < 0 && errno == EINTR) {
    }
    if (c < 0) {
        perror("accept");
        exit(2);
    }
    return c;
}

static int udp_socket(struct sockaddr_in *addr, int type_flags) {
    int s = socket(AF_INET, SOCK_DGRAM | type_flags, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &al)) {
        perror("udp socket");
        exit(2);
    }
    *addr = a;
    return s;
}

static void xsocketpair(int type, int sv[2]) {
    if (socketpair(AF_UNIX, type, 0, sv)) {
        perror("socketpair");
        exit(2);
    }
}

/* Close fd but keep its number taken (by /dev/null), so that no later fd of
 * this process gets it: one number, one fd lifetime, one line in superv's
 * per-fd report. */
static void retire(int fd) {
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, fd) < 0) {
        perror("retire");
        exit(2);
    }
    close(null);
}

static void xpipe(int p[2], int flags) {
    if (pipe2(p, flags)) {
        perror("pipe2");
        exit(2);
    }
}

/* -- pingpong ROUNDS: two pipes, a forked echo child ------------------------ */

static size_t pingpong_size(int i) {
    return i % 10 == 9 ? 70001 : 1000 + (size_t)(i * 337) % 2500;
}

static int mode_pingpong(int rounds) {
    int a[2], b[2];
    xpipe(a, 0);
    xpipe(b, 0);
    pid_t child = spawn();
    if (child == 0) {
        close(a[1]);
        close(b[0]);
        struct fdstat rx, tx;
        fdstat_init(&rx, "child.rx", a[0]);
        fdstat_init(&tx, "child.tx", b[1]);
        unsigned char buf[777];
        for (;;) {
            ssize_t n = t_read(&rx, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) fail("child read: %s", strerror(errno));
            if (n <= 0) break;
            if (t_write_all(&tx, buf, n)) break;
        }
        close(b[1]);
        report(&rx);
        report(&tx);
        child_exit();
    }
    close(a[0]);
    close(b[1]);
    struct fdstat tx, rx;
    fdstat_init(&tx, "parent.tx", a[1]);
    fdstat_init(&rx, "parent.rx", b[0]);
    unsigned char *msg = xmalloc(70001), *back = xmalloc(70001);
    for (int i = 0; i < rounds; i++) {
        size_t size = pingpong_size(i);
        fill(msg, size, i + 1);
        if (i % 2) {
            size_t first = size / 3;
            struct iovec iov[2] = {{msg, first}, {msg + first, size - first}};
            ssize_t r = t_writev(&tx, iov, 2);
            if (r < 0) {
                fail("writev: %s", strerror(errno));
                break;
            }
            if ((size_t)r < size && t_write_all(&tx, msg + r, size - r)) break;
        } else if (t_write_all(&tx, msg, size)) {
            break;
        }
        size_t got = 0;
        while (got < size) {
            size_t want = size - got < 1000 ? size - got : 1000;
            ssize_t n = t_read(&rx, back + got, want);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                fail("parent read: %zd %s", n, strerror(errno));
                break;
            }
            got += n;
        }
        check(got == size && memcmp(msg, back, size) == 0, "echo differs");
    }
    close(a[1]);
    ssize_t n = t_read(&rx, back, 1000);
    check(n == 0, "no EOF after the child closed");
    reap("child", child);
    report(&tx);
    report(&rx);
    return failures ? 1 : 0;
}

/* -- tcpecho ROUNDS: TCP over 127.0.0.1, client and server threads ---------- */

static struct fdstat server_conn;
static int listen_fd;

static void *echo_server(void *arg) {
    (void)arg;
    unsigned char buf[777];
    for (;;) {
        ssize_t n = t_read(&server_conn, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("server read: %s", strerror(errno));
        if (n <= 0) break;
        if (t_write_all(&server_conn, buf, n)) break;
    }
    close(server_conn.fd);
    return NULL;
}

static int mode_tcpecho(int rounds) {
    struct sockaddr_in addr;
    listen_fd = tcp_listener(&addr);
    int s = tcp_connect(&addr);
    int c = xaccept(listen_fd, 0);
    int one = 1; /* no Nagle: small echoes go out at once */
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fdstat_init(&server_conn, "server.conn", c);
    pthread_t thread;
    if (pthread_create(&thread, NULL, echo_server, NULL)) {
        fail("pthread_create");
        return 1;
    }
    struct fdstat cli;
    fdstat_init(&cli, "client.conn", s);
    unsigned char *msg = xmalloc(70001), *back = xmalloc(70001);
    for (int i = 0; i < rounds; i++) {
        size_t size = i % 10 == 4 ? 70001 : 1 + (size_t)(i * 1013) % 4000;
        fill(msg, size, 1000 + i);
        size_t sent = 0;
        while (sent < size) {
            ssize_t r;
            if (i % 3 == 0) {
                r = t_send(&cli, msg + sent, size - sent, 0);
            } else if (i % 3 == 1) {
                size_t left = size - sent, first = left / 2;
                struct iovec iov[2] = {{msg + sent, first}, {msg + sent + first, left - first}};
                struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
                r = t_sendmsg(&cli, &m, 0);
            } else {
                r = t_write(&cli, msg + sent, size - sent);
            }
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                fail("client send: %s", strerror(errno));
                break;
            }
            sent += r;
        }
        size_t got = 0;
        for (int j = 0; got < size; j++) {
            size_t want = size - got < 1000 ? size - got : 1000;
            ssize_t n;
            if (j % 3 == 0) {
                n = t_recv(&cli, back + got, want, 0);
            } else if (j % 3 == 1) {
                struct sockaddr_in from;
                socklen_t fl = sizeof from;
                n = t_recvfrom(&cli, back + got, want, 0, (struct sockaddr *)&from, &fl);
            } else {
                struct iovec iov[2] = {{back + got, want / 2}, {back + got + want / 2, want - want / 2}};
                struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
                n = t_recvmsg(&cli, &m, 0);
            }
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                fail("client recv: %zd %s", n, strerror(errno));
                break;
            }
            got += n;
        }
        check(got == size && memcmp(msg, back, size) == 0, "tcp echo differs");
    }
    shutdown(s, SHUT_WR);
    ssize_t n = t_recv(&cli, back, 1000, 0);
    check(n == 0, "no EOF from the server");
    pthread_join(thread, NULL);
    close(s);
    report(&cli);
    report(&server_conn);
    return failures ? 1 : 0;
}

/* -- stream TOTAL WSIZE RSIZE: one TCP connection, a forked writer ---------- */

#define PATTERN (1 << 17)

static int mode_stream(long long total, size_t wsize, size_t rsize) {
    struct sockaddr_in addr;
    int ls = tcp_listener(&addr);
    pid_t child = spawn();
    if (child == 0) {
        close(ls);
        int s = tcp_connect(&addr);
        struct fdstat tx;
        fdstat_init(&tx, "writer", s);
        unsigned char *pattern = xmalloc(PATTERN + wsize);
        fill(pattern, PATTERN + wsize, 77);
        long long sent = 0;
        for (long long i = 0; sent < total; i++) {
            size_t n = total - sent < (long long)wsize ? (size_t)(total - sent) : wsize;
            if (t_write_all(&tx, pattern + (size_t)(i * 4099) % PATTERN, n)) break;
            sent += n;
        }
        close(s);
        report(&tx);
        child_exit();
    }
    int c = xaccept(ls, 0);
    struct fdstat rx;
    fdstat_init(&rx, "reader", c);
    unsigned char *buf = xmalloc(rsize);
    for (;;) {
        ssize_t n = t_read(&rx, buf, rsize);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("reader: %s", strerror(errno));
        if (n <= 0) break;
    }
    close(c);
    reap("writer", child);
    check(rx.in == total, "reader got a different count");
    report(&rx);
    return failures ? 1 : 0;
}

/* -- udp ROUNDS: a connected socket and a forked recvfrom/sendto echo ------- */

static int mode_udp(int rounds) {
    struct sockaddr_in pa, ca;
    int p = udp_socket(&pa, 0), e = udp_socket(&ca, 0);
    pid_t child = spawn();
    if (child == 0) {
        close(p);
        struct fdstat st;
        fdstat_init(&st, "child.udp", e);
        unsigned char buf[777];
        for (int i = 0; i < rounds; i++) {
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            ssize_t n = t_recvfrom(&st, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
            if (n < 0) {
                fail("child recvfrom: %s", strerror(errno));
                break;
            }
            check(fl == sizeof from && from.sin_port == pa.sin_port, "recvfrom: wrong sender");
            if (t_sendto(&st, buf, n, 0, (struct sockaddr *)&from, fl) != n) fail("sendto: %s", strerror(errno));
        }
        report(&st);
        child_exit();
    }
    close(e);
    if (connect(p, (struct sockaddr *)&ca, sizeof ca)) {
        perror("udp connect");
        return 2;
    }
    struct fdstat st;
    fdstat_init(&st, "parent.udp", p);
    unsigned char msg[1500], back[2000];
    for (int i = 0; i < rounds; i++) {
        size_t size = (size_t)(i * 611) % 1500;
        fill(msg, size, 500 + i);
        if (t_send(&st, msg, size, 0) != (ssize_t)size) fail("send: %s", strerror(errno));
        ssize_t n = t_recv(&st, back, sizeof back, 0);
        size_t expect = size < 777 ? size : 777;
        check(n == (ssize_t)expect && memcmp(msg, back, expect) == 0, "udp echo differs");
    }
    ssize_t n = t_recv(&st, back, sizeof back, MSG_DONTWAIT);
    check(n < 0 && errno == EAGAIN, "MSG_DONTWAIT recv on an empty socket did not fail with EAGAIN");
    reap("child", child);
    report(&st);
    return failures ? 1 : 0;
}

/* -- unixdgram ROUNDS: socketpair(SOCK_DGRAM), sendmsg/recvmsg with iovecs -- */

static int mode_unixdgram(int rounds) {
    int sv[2];
    xsocketpair(SOCK_DGRAM, sv);
    pid_t child = spawn();
    if (child == 0) {
        close(sv[0]);
        struct fdstat st;
        fdstat_init(&st, "child.unix", sv[1]);
        unsigned char buf[1277];
        long truncated = 0;
        for (int i = 0; i < rounds; i++) {
            struct iovec iov[2] = {{buf, 500}, {buf + 500, 777}};
            struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
            ssize_t n = t_recvmsg(&st, &m, 0);
            if (n < 0) {
                fail("child recvmsg: %s", strerror(errno));
                break;
            }
            if (m.msg_flags & MSG_TRUNC) truncated++;
            if (t_write(&st, buf, n) != n) fail("child write: %s", strerror(errno));
        }
        say("INFO child_truncated=%ld", truncated);
        report(&st);
        child_exit();
    }
    close(sv[1]);
    struct fdstat st;
    fdstat_init(&st, "parent.unix", sv[0]);
    unsigned char msg[3000], back[4000];
    for (int i = 0; i < rounds; i++) {
        size_t size = (size_t)(i * 911) % 3000;
        fill(msg, size, 900 + i);
        size_t one = size < 100 ? size : 100, two = size - one < 333 ? size - one : 333;
        struct iovec iov[3] = {{msg, one}, {msg + one, two}, {msg + one + two, size - one - two}};
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = 3};
        if (t_sendmsg(&st, &m, 0) != (ssize_t)size) fail("sendmsg: %s", strerror(errno));
        ssize_t n = t_read(&st, back, sizeof back);
        size_t expect = size < 1277 ? size : 1277;
        check(n == (ssize_t)expect && memcmp(msg, back, expect) == 0, "unix datagram echo differs");
    }
    ssize_t n = t_recv(&st, back, 10, MSG_DONTWAIT);
    check(n < 0 && errno == EAGAIN, "MSG_DONTWAIT recv did not fail with EAGAIN");
    reap("child", child);
    report(&st);
    return failures ? 1 : 0;
}

/* -- disk PATH: write, overwrite, read back to EOF, pread past EOF ---------- */

#define DISK_SIZE 40211

/* -- vecat PATH: preadv and pwritev at offsets ------------------------------- */

static int mode_vecat(const char *path) {
    unsigned char data[9000], back[9000];
    fill(data, sizeof data, 47);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror("open");
        return 2;
    }
    struct fdstat st;
    fdstat_init(&st, "file", fd);
    for (int i = 0; i < 20; i++) {
        size_t a = 1 + (size_t)(i * 131) % 300, b = 1 + (size_t)(i * 577) % 4000;
        struct iovec out[2] = {{data + i, a}, {data + i + a, b}};
        check(t_pwritev(&st, out, 2, (off_t)i * 400) == (ssize_t)(a + b), "pwritev");
        struct iovec in[2] = {{back, b}, {back + b, a}};
        check(t_preadv(&st, in, 2, (off_t)i * 400) == (ssize_t)(a + b) && memcmp(back, data + i, a + b) == 0,
              "preadv: not what pwritev wrote");
    }
    check(lseek(fd, 0, SEEK_CUR) == 0, "the file's own position moved");
    off_t size = lseek(fd, 0, SEEK_END);
    lseek(fd, 0, SEEK_SET);
    struct iovec one = {back, 100};
    check(t_preadv(&st, &one, 1, size - 40) == 40, "preadv across the end");
    check(t_preadv(&st, &one, 1, size + 10) == 0, "preadv past the end");
    check(t_preadv(&st, &one, 1, -1) < 0 && errno == EINVAL, "preadv at -1: no EINVAL");
    int p[2];
    xpipe(p, 0);
    struct fdstat sp;
    fdstat_init(&sp, "pipe", p[1]);
    struct iovec ten = {data, 10};
    check(t_pwritev(&sp, &ten, 1, 0) < 0 && errno == ESPIPE, "pwritev on a pipe: no ESPIPE");
    report(&st);
    report(&sp);
    return failures ? 1 : 0;
}

static int mode_disk(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        return 2;
    }
    struct fdstat st;
    fdstat_init(&st, "disk", fd);
    unsigned char *image = xmalloc(65536), *patch = xmalloc(123), *buf = xmalloc(65536);
    fill(image, 65536, 4242);
    fill(patch, 123, 99);
    for (int i = 0; i < 37; i++)
        if (t_write(&st, image + i * 1000, 1000) != 1000) fail("disk write");
    struct iovec wv[3] = {{image + 37000, 10}, {image + 37010, 200}, {image + 37210, 3001}};
    if (t_writev(&st, wv, 3) != 3211) fail("disk writev");
    if (t_pwrite(&st, patch, 123, 5) != 123) fail("disk pwrite");
    memcpy(image + 5, patch, 123);
    struct hash expect = HASH_INIT, got = HASH_INIT;
    hash_bytes(&expect, image, DISK_SIZE);
    lseek(fd, 0, SEEK_SET);
    long long total = 0;
    for (;;) {
        ssize_t n = t_read(&st, buf, 777);
        if (n <= 0) {
            check(n == 0, "disk read failed");
            break;
        }
        hash_bytes(&got, buf, n);
        total += n;
    }
    check(total == DISK_SIZE, "read back a different size");
    check(hash_final(&got) == hash_final(&expect), "read back different bytes");
    check(t_pread(&st, buf, 4096, 1000) == 4096 && memcmp(buf, image + 1000, 4096) == 0, "pread");
    check(t_pread(&st, buf, 4096, 40000) == DISK_SIZE - 40000, "pread at the end: not short");
    check(t_pread(&st, buf, 4096, 50000) == 0, "pread past the end");
    lseek(fd, 39000, SEEK_SET);
    struct iovec rv[2] = {{buf, 500}, {buf + 500, 1000}};
    check(t_readv(&st, rv, 2) == DISK_SIZE - 39000, "readv at the end: not short");
    check(t_readv(&st, rv, 2) == 0, "readv at EOF");
    struct stat sb;
    fstat(fd, &sb);
    close(fd);
    say("INFO size=%lld content=%016llx", (long long)sb.st_size, (unsigned long long)hash_final(&expect));
    report(&st);
    return failures ? 1 : 0;
}

/* -- eof: short reads at EOF on a pipe and on stream sockets ---------------- */

static int mode_eof(void) {
    unsigned char data[2500], buf[2500];
    fill(data, sizeof data, 7);
    int p[2];
    xpipe(p, 0);
    struct fdstat r, w;
    fdstat_init(&r, "pipe.r", p[0]);
    fdstat_init(&w, "pipe.w", p[1]);
    check(t_read(&r, buf, 0) == 0, "read of 0 bytes");
    check(t_write(&w, data, sizeof data) == sizeof data, "pipe write");
    retire(p[1]);
    while (t_read(&r, buf, 777) > 0) {
    }
    check(t_read(&r, buf, 777) == 0, "pipe read after EOF");

    int sv[2];
    xsocketpair(SOCK_STREAM, sv);
    struct fdstat sa, sb;
    fdstat_init(&sa, "unix.w", sv[0]);
    fdstat_init(&sb, "unix.r", sv[1]);
    check(t_send(&sa, data, sizeof data, 0) == sizeof data, "unix send");
    shutdown(sv[0], SHUT_WR);
    while (t_recv(&sb, buf, 777, 0) > 0) {
    }
    check(t_read(&sb, buf, 777) == 0, "unix read after EOF");

    int tv[2];
    xsocketpair(SOCK_STREAM, tv);
    struct fdstat ta, tb;
    fdstat_init(&ta, "waitall.w", tv[0]);
    fdstat_init(&tb, "waitall.r", tv[1]);
    check(t_write(&ta, data, sizeof data) == sizeof data, "unix write");
    shutdown(tv[0], SHUT_WR);
    check(t_recv(&tb, buf, 2000, MSG_WAITALL) == 2000, "MSG_WAITALL recv");
    check(t_recv(&tb, buf, 2000, MSG_WAITALL) == 500, "MSG_WAITALL recv at EOF: not short");
    check(t_recv(&tb, buf, 2000, MSG_WAITALL) == 0, "MSG_WAITALL recv after EOF");

    report(&r);
    report(&w);
    report(&sa);
    report(&sb);
    report(&ta);
    report(&tb);
    return failures ? 1 : 0;
}

/* -- nonblock: EAGAIN on empty and on full nonblocking fds ------------------ */

static int mode_nonblock(void) {
    unsigned char *data = xmalloc(200000), *buf = xmalloc(200000);
    fill(data, 200000, 3);
    int p[2];
    xpipe(p, O_NONBLOCK);
    struct fdstat r, w;
    fdstat_init(&r, "nbpipe.r", p[0]);
    fdstat_init(&w, "nbpipe.w", p[1]);
    check(t_read(&r, buf, 777) < 0 && errno == EAGAIN, "empty nonblocking pipe: no EAGAIN");
    for (int i = 0; i < 1000 && t_write(&w, data, 1000) > 0; i++) {
    }
    check(errno == EAGAIN, "full pipe: no EAGAIN");
    t_write(&w, data, 5000);
    while (t_read(&r, buf, 777) > 0) {
    }
    check(errno == EAGAIN, "drained pipe: no EAGAIN");
    check(r.in == w.out, "pipe: read back a different count");
    check(hash_final(&r.hin) == hash_final(&w.hout), "pipe: read back different bytes");

    int sv[2];
    xsocketpair(SOCK_STREAM | SOCK_NONBLOCK, sv);
    struct fdstat sa, sb;
    fdstat_init(&sa, "nbunix.a", sv[0]);
    fdstat_init(&sb, "nbunix.b", sv[1]);
    check(t_recv(&sb, buf, 777, 0) < 0 && errno == EAGAIN, "empty nonblocking socket: no EAGAIN");
    check(t_send(&sa, data, 3000, 0) == 3000, "send 3000");
    while (t_recv(&sb, buf, 777, 0) > 0) {
    }
    check(errno == EAGAIN, "drained socket: no EAGAIN");
    /* Fill the socket until EAGAIN, partial sends included, then drain it. */
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    for (int i = 0; i < 1000 && t_send(&sa, data, 100000, 0) > 0; i++) {
    }
    check(errno == EAGAIN, "full socket: no EAGAIN");
    while (t_read(&sb, buf, 4093) > 0) {
    }
    check(errno == EAGAIN, "drained socket: no EAGAIN");
    check(sb.in == sa.out, "socket: read back a different count");

    int bv[2];
    xsocketpair(SOCK_STREAM, bv);
    struct fdstat dw;
    fdstat_init(&dw, "dontwait", bv[0]);
    check(t_recv(&dw, buf, 100, MSG_DONTWAIT) < 0 && errno == EAGAIN, "MSG_DONTWAIT: no EAGAIN");

    struct sockaddr_in ua;
    int u = udp_socket(&ua, SOCK_NONBLOCK);
    struct fdstat us;
    fdstat_init(&us, "nbudp", u);
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    check(t_recvfrom(&us, buf, 777, 0, (struct sockaddr *)&from, &fl) < 0 && errno == EAGAIN, "udp: no EAGAIN");
    check(t_sendto(&us, data, 1234, 0, (struct sockaddr *)&ua, sizeof ua) == 1234, "udp sendto self");
    fl = sizeof from;
    check(t_recvfrom(&us, buf, 777, 0, (struct sockaddr *)&from, &fl) == 777, "udp: truncated datagram");
    check(t_recvfrom(&us, buf, 777, 0, (struct sockaddr *)&from, &fl) < 0 && errno == EAGAIN, "udp: no EAGAIN");

    struct sockaddr_in addr;
    int ls = tcp_listener(&addr);
    int c = tcp_connect(&addr);
    int a = xaccept(ls, SOCK_NONBLOCK);
    struct fdstat tc, ta;
    fdstat_init(&tc, "nbtcp.client", c);
    fdstat_init(&ta, "nbtcp.accepted", a);
    check(t_read(&ta, buf, 777) < 0 && errno == EAGAIN, "tcp: no EAGAIN");
    check(t_write(&tc, data, 1234) == 1234, "tcp write");
    struct pollfd pfd = {.fd = a, .events = POLLIN};
    poll(&pfd, 1, 5000);
    while (t_read(&ta, buf, 777) > 0) {
    }
    check(errno == EAGAIN, "tcp drained: no EAGAIN");

    report(&r);
    report(&w);
    report(&sa);
    report(&sb);
    report(&dw);
    report(&us);
    report(&tc);
    report(&ta);
    return failures ? 1 : 0;
}

/* -- epipe: writes whose reader is gone, SIGPIPE ignored -------------------- */

static int mode_epipe(void) {
    signal(SIGPIPE, SIG_IGN);
    unsigned char data[1000], buf[1000];
    fill(data, sizeof data, 11);
    int p[2];
    xpipe(p, 0);
    struct fdstat w;
    fdstat_init(&w, "pipe.w", p[1]);
    check(t_write(&w, data, 1000) == 1000, "pipe write");
    retire(p[0]);
    check(t_write(&w, data, 1000) < 0 && errno == EPIPE, "pipe: no EPIPE");
    struct iovec iov[2] = {{data, 10}, {data + 10, 20}};
    check(t_writev(&w, iov, 2) < 0 && errno == EPIPE, "pipe writev: no EPIPE");

    int sv[2];
    xsocketpair(SOCK_STREAM, sv);
    struct fdstat s;
    fdstat_init(&s, "unix.w", sv[0]);
    check(t_send(&s, data, 333, 0) == 333, "unix send");
    retire(sv[1]); /* unread data: the peer's next read fails with ECONNRESET */
    check(t_recv(&s, buf, 100, 0) < 0 && errno == ECONNRESET, "unix: no ECONNRESET");
    check(t_recv(&s, buf, 100, 0) == 0, "unix: no EOF after ECONNRESET");
    check(t_send(&s, data, 100, 0) < 0 && errno == EPIPE, "unix send: no EPIPE");
    check(t_write(&s, data, 100) < 0 && errno == EPIPE, "unix write: no EPIPE");
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    check(t_sendmsg(&s, &m, 0) < 0 && errno == EPIPE, "unix sendmsg: no EPIPE");

    report(&w);
    report(&s);
    return failures ? 1 : 0;
}

/* -- sigpipe: MSG_NOSIGNAL survives, then a plain write dies of SIGPIPE ----- */

static int mode_sigpipe(void) {
    signal(SIGPIPE, SIG_DFL);
    unsigned char data[100];
    fill(data, sizeof data, 13);
    int sv[2];
    xsocketpair(SOCK_STREAM, sv);
    retire(sv[1]);
    struct fdstat s;
    fdstat_init(&s, "nosignal", sv[0]);
    check(t_send(&s, data, 100, MSG_NOSIGNAL) < 0 && errno == EPIPE, "MSG_NOSIGNAL: no EPIPE");
    int p[2];
    xpipe(p, 0);
    struct fdstat w;
    fdstat_init(&w, "doomed", p[1]);
    check(t_write(&w, data, 100) == 100, "pipe write");
    retire(p[0]);
    report(&s);
    report(&w);
    say("INFO dying=1");
    t_write(&w, data, 100); /* SIGPIPE: the process ends here */
    say("INFO survived=1");
    return 3;
}

/* -- reset: a TCP peer closes with unread data while we wait in read -------- */

static int mode_reset(void) {
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in addr;
    int ls = tcp_listener(&addr);
    int sync[2];
    xpipe(sync, 0);
    pid_t child = spawn();
    if (child == 0) {
        close(ls);
        close(sync[0]);
        int s = tcp_connect(&addr);
        struct fdstat st;
        fdstat_init(&st, "client", s);
        unsigned char data[1000], buf[1000];
        fill(data, sizeof data, 17);
        for (int i = 0; i < 30; i++) t_write_all(&st, data, 1000);
        if (write(sync[1], "w", 1) != 1) fail("sync write");
        ssize_t n = t_read(&st, buf, sizeof buf); /* waits until the peer resets */
        check(n < 0 && errno == ECONNRESET, "client: read did not fail with ECONNRESET");
        t_read(&st, buf, sizeof buf);
        t_write(&st, data, 100);
        report(&st);
        child_exit();
    }
    close(sync[1]);
    int c = xaccept(ls, 0);
    struct fdstat st;
    fdstat_init(&st, "server", c);
    char byte;
    if (read(sync[0], &byte, 1) != 1) fail("sync read");
    unsigned char buf[777];
    long got = 0;
    while (got < 7777) {
        ssize_t n = t_read(&st, buf, 7777 - got < 777 ? 7777 - got : 777);
        if (n <= 0) {
            fail("server read: %zd %s", n, strerror(errno));
            break;
        }
        got += n;
    }
    close(c); /* 30000 - 7777 bytes unread: the kernel sends a reset */
    reap("client", child);
    report(&st);
    return failures ? 1 : 0;
}

/* -- shortclose: the writer stops mid-stream and closes (FIN) --------------- */

static int mode_shortclose(void) {
    struct sockaddr_in addr;
    int ls = tcp_listener(&addr);
    pid_t child = spawn();
    if (child == 0) {
        close(ls);
        int s = tcp_connect(&addr);
        struct fdstat st;
        fdstat_init(&st, "reader", s);
        unsigned char buf[20000];
        /* MSG_WAITALL waits across several of the writer's writes. */
        check(t_recv(&st, buf, 2500, MSG_WAITALL) == 2500, "MSG_WAITALL recv");
        /* Expects 20000 bytes, gets 5000: a short MSG_WAITALL read at the FIN. */
        ssize_t n = t_recv(&st, buf, 20000, MSG_WAITALL);
        check(n == 5000 - 2500, "MSG_WAITALL recv at FIN: not short");
        check(t_read(&st, buf, 777) == 0, "no EOF");
        close(s);
        report(&st);
        child_exit();
    }
    int c = xaccept(ls, 0);
    struct fdstat st;
    fdstat_init(&st, "writer", c);
    unsigned char data[5000];
    fill(data, sizeof data, 19);
    for (int i = 0; i < 5; i++) {
        t_write_all(&st, data + i * 1000, 1000);
        usleep(3000);
    }
    close(c);
    reap("reader", child);
    report(&st);
    return failures ? 1 : 0;
}

/* -- midwrite: a writer waits in a big write; its reader goes away ----------- */

static int mode_midwrite(void) {
    signal(SIGPIPE, SIG_IGN);
    size_t big = 4 << 20;
    unsigned char *data = xmalloc(big), buf[777];
    fill(data, big, 23);
    struct sockaddr_in addr;
    int ls = tcp_listener(&addr);
    pid_t child = spawn();
    if (child == 0) {
        /* The reader: small buffers, 7777 bytes read, then close with
         * unread data (a reset) while the writer waits in send. */
        close(ls);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int small = 65536;
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        if (connect(s, (struct sockaddr *)&addr, sizeof addr)) {
            perror("connect");
            _exit(2);
        }
        struct fdstat st;
        fdstat_init(&st, "tcp.reader", s);
        usleep(50000); /* the writer fills the buffers and waits: every read gets 777 */
        long got = 0;
        while (got < 7777) {
            ssize_t n = t_read(&st, buf, 7777 - got < 777 ? 7777 - got : 777);
            if (n <= 0) break;
            got += n;
        }
        check(got == 7777, "tcp reader: short");
        usleep(50000);
        close(s);
        report(&st);
        child_exit();
    }
    int c = xaccept(ls, 0);
    int small = 65536;
    setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct fdstat tw;
    fdstat_init(&tw, "tcp.writer", c);
    ssize_t n = t_send(&tw, data, big, 0); /* partly sent when the reset comes */
    check(n >= 7777 && n < (ssize_t)big, "tcp writer: the big send was not partial");
    t_send(&tw, data, 100, 0); /* the pending error */
    t_send(&tw, data, 100, 0);
    t_recv(&tw, buf, 100, 0);
    reap("tcp.reader", child);

    int p[2];
    xpipe(p, 0);
    child = spawn();
    if (child == 0) {
        close(p[1]);
        struct fdstat pr;
        fdstat_init(&pr, "pipe.reader", p[0]);
        usleep(50000); /* the writer fills the pipe and waits: every read gets 777 */
        long got = 0;
        while (got < 7000) {
            ssize_t r = t_read(&pr, buf, 777);
            if (r <= 0) break;
            got += r;
        }
        usleep(50000);
        close(p[0]);
        report(&pr);
        child_exit();
    }
    close(p[0]);
    struct fdstat pw;
    fdstat_init(&pw, "pipe.writer", p[1]);
    n = t_write(&pw, data, 200000); /* partly written when the reader goes */
    check(n >= 7000 && n < 200000, "pipe writer: the big write was not partial");
    t_write(&pw, data, 100);
    reap("pipe.reader", child);
    report(&tw);
    report(&pw);
    return failures ? 1 : 0;
}

/* -- midread: a reader waits in recv(MSG_WAITALL); its peer resets ---------- */

static int mode_midread(void) {
    unsigned char data[5000], buf[100000];
    fill(data, sizeof data, 31);
    struct sockaddr_in addr;
    int ls = tcp_listener(&addr);
    int sync[2];
    xpipe(sync, 0);
    pid_t child = spawn();
    if (child == 0) {
        /* The peer: 5000 bytes, then close with the reader's 10 bytes unread. */
        close(ls);
        close(sync[1]);
        int s = tcp_connect(&addr);
        struct fdstat st;
        fdstat_init(&st, "peer", s);
        char byte;
        if (read(sync[0], &byte, 1) != 1) fail("sync read");
        usleep(30000); /* the reader is waiting in recv by now */
        t_write_all(&st, data, sizeof data);
        usleep(30000);
        close(s);
        report(&st);
        child_exit();
    }
    close(sync[0]);
    int c = xaccept(ls, 0);
    struct fdstat st;
    fdstat_init(&st, "reader", c);
    check(t_write(&st, "0123456789", 10) == 10, "reader write");
    if (write(sync[1], "r", 1) != 1) fail("sync write");
    /* 5000 bytes come, then the reset: the call returns what it has; the
     * reset is the next call's answer; then EOF. */
    ssize_t n = t_recv(&st, buf, sizeof buf, MSG_WAITALL);
    check(n == 5000 && memcmp(buf, data, 5000) == 0, "MSG_WAITALL recv: not the 5000 bytes");
    t_recv(&st, buf, sizeof buf, MSG_WAITALL);
    t_recv(&st, buf, sizeof buf, MSG_WAITALL);
    reap("peer", child);
    report(&st);
    return failures ? 1 : 0;
}

/* -- packetpipe: a pipe in packet mode (O_DIRECT), then an ordinary one ------ */

static int mode_packetpipe(void) {
    unsigned char data[1500], buf[1500];
    int p[2];
    xpipe(p, O_DIRECT);
    struct fdstat w, r;
    fdstat_init(&w, "packet.w", p[1]);
    fdstat_init(&r, "packet.r", p[0]);
    /* Each read takes one packet; what does not fit in 777 bytes is lost. */
    for (int i = 0; i < 20; i++) {
        size_t size = 1 + (size_t)(i * 389) % 1500;
        fill(data, size, 300 + i);
        check(t_write(&w, data, size) == (ssize_t)size, "packet write");
        if (i % 2 == 0) continue; /* two packets queued, then two reads */
        size_t before = 1 + (size_t)((i - 1) * 389) % 1500;
        unsigned char first[1500];
        fill(first, before, 300 + i - 1);
        size_t want = before < 777 ? before : 777;
        ssize_t n = t_read(&r, buf, 777);
        if (n != (ssize_t)want || memcmp(buf, first, want))
            fail("packet %d (%zu bytes): read %zd, expected %zu%s", i - 1, before, n, want,
                 n == (ssize_t)want ? " but other bytes" : "");
        want = size < 777 ? size : 777;
        n = t_read(&r, buf, 777);
        if (n != (ssize_t)want || memcmp(buf, data, want))
            fail("packet %d (%zu bytes): read %zd, expected %zu%s", i, size, n, want,
                 n == (ssize_t)want ? " but other bytes" : "");
    }
    /* An ordinary pipe afterwards must be unaffected. */
    int q[2];
    xpipe(q, 0);
    struct fdstat qw, qr;
    fdstat_init(&qw, "plain.w", q[1]);
    fdstat_init(&qr, "plain.r", q[0]);
    fill(data, 1500, 7);
    check(t_write(&qw, data, 1500) == 1500, "plain write");
    ssize_t n = t_read(&qr, buf, 1500);
    if (n != 1500 || memcmp(buf, data, 1500))
        fail("ordinary pipe after the packet pipe: wrote 1500 bytes, read %zd%s", n,
             n == 1500 ? " other bytes" : "");
    report(&w);
    report(&r);
    report(&qw);
    report(&qr);
    return failures ? 1 : 0;
}

/* -- udpaddr: datagrams that name their addresses ---------------------------
 * sendto to an address, recvfrom of the sender's (cut to the room the
 * caller gives, its whole length returned), sendto's bad address lengths;
 * an unbound sender (bound by its first send); then the bound socket is
 * connected, connected elsewhere and disconnected, which changes its ends. */

static int mode_udpaddr(void) {
    unsigned char data[1500], buf[1500];
    fill(data, sizeof data, 43);
    struct sockaddr_in a_addr, b_addr, c_addr;
    int a = udp_socket(&a_addr, 0), b = udp_socket(&b_addr, 0), c = udp_socket(&c_addr, 0);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct fdstat sa, sb, sc, su;
    fdstat_init(&sa, "a", a);
    fdstat_init(&sb, "b", b);
    fdstat_init(&sc, "c", c);
    fdstat_init(&su, "unbound", u);
    for (int i = 0; i < 40; i++) {
        size_t n = 1 + (size_t)(i * 97) % 1400;
        check(t_sendto(&sa, data + i, n, 0, (struct sockaddr *)&b_addr, sizeof b_addr) == (ssize_t)n, "sendto");
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        memset(&from, 0, sizeof from);
        check(t_recvfrom(&sb, buf, sizeof buf, 0, (struct sockaddr *)&from, &len) == (ssize_t)n &&
                  memcmp(buf, data + i, n) == 0, "recvfrom");
        check(len == sizeof from && from.sin_port == a_addr.sin_port && from.sin_addr.s_addr == a_addr.sin_addr.s_addr,
              "recvfrom: not the sender's address");
    }
    /* Less room than the address: cut to it; the whole length comes back. */
    unsigned char raw[sizeof(struct sockaddr_in)];
    for (socklen_t room = 0; room <= 6; room += 6) {
        check(t_sendto(&sa, data, 10, 0, (struct sockaddr *)&b_addr, sizeof b_addr) == 10, "sendto 10");
        memset(raw, 0xEE, sizeof raw);
        socklen_t len = room;
        check(t_recvfrom(&sb, buf, sizeof buf, 0, (struct sockaddr *)raw, &len) == 10, "recvfrom, little room");
        check(len == sizeof a_addr && memcmp(raw, &a_addr, room) == 0 && raw[room] == 0xEE,
              "recvfrom: the address not cut to its room");
    }
    /* Bad lengths fail before anything is sent; so does an unreadable address. */
    check(t_sendto(&sa, data, 10, 0, (struct sockaddr *)&b_addr, (socklen_t)-1) < 0 && errno == EINVAL, "len -1");
    check(t_sendto(&sa, data, 10, 0, (struct sockaddr *)&b_addr, 200) < 0 && errno == EINVAL, "len 200");
    check(t_sendto(&sa, data, 10, 0, (struct sockaddr *)8, sizeof b_addr) < 0 && errno == EFAULT, "address at 8");
    /* recvfrom: an address length it cannot read, or a negative one, fails
     * the call only once the datagram is taken, as move_addr_to_user does. */
    struct sockaddr_in ignored;
    socklen_t negative = (socklen_t)-1;
    check(t_sendto(&sa, data, 11, 0, (struct sockaddr *)&b_addr, sizeof b_addr) == 11, "sendto 11");
    check(t_recvfrom(&sb, buf, sizeof buf, 0, (struct sockaddr *)&ignored, NULL) < 0 && errno == EFAULT,
          "recvfrom, no length: no EFAULT");
    check(t_sendto(&sa, data, 12, 0, (struct sockaddr *)&b_addr, sizeof b_addr) == 12, "sendto 12");
    check(t_recvfrom(&sb, buf, sizeof buf, 0, (struct sockaddr *)&ignored, &negative) < 0 && errno == EINVAL,
          "recvfrom, length -1: no EINVAL");
    check(t_recv(&sb, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno == EAGAIN, "recvfrom: a failed call left its datagram");
    /* Not bound: its first send binds it. */
    for (int i = 0; i < 3; i++) {
        check(t_sendto(&su, data, 20, 0, (struct sockaddr *)&b_addr, sizeof b_addr) == 20, "unbound sendto");
        check(t_recv(&sb, buf, sizeof buf, 0) == 20, "from the unbound");
    }
    /* sendmsg to an address, from two pieces; recvmsg of the sender's, into
     * two; a datagram longer than the buffer says MSG_TRUNC. */
    struct iovec out[2] = {{data, 100}, {data + 100, 150}};
    struct msghdr m = {.msg_name = &b_addr, .msg_namelen = sizeof b_addr, .msg_iov = out, .msg_iovlen = 2};
    for (int i = 0; i < 2; i++)
        check(t_sendmsg(&sa, &m, 0) == 250, "sendmsg to b");
    struct sockaddr_in from;
    memset(&from, 0, sizeof from);
    struct iovec in[2] = {{buf, 50}, {buf + 50, 1000}};
    struct msghdr r = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = in, .msg_iovlen = 2,
                       .msg_flags = 0x5555};
    check(t_recvmsg(&sb, &r, 0) == 250 && memcmp(buf, data, 250) == 0, "recvmsg");
    check(r.msg_namelen == sizeof from && from.sin_port == a_addr.sin_port && r.msg_flags == 0 &&
              r.msg_controllen == 0, "recvmsg: not the sender, or other flags");
    struct iovec small = {buf, 100};
    struct msghdr t = {.msg_iov = &small, .msg_iovlen = 1};
    check(t_recvmsg(&sb, &t, 0) == 100 && t.msg_flags == MSG_TRUNC, "recvmsg: no MSG_TRUNC");
    /* A msg_namelen longer than a sockaddr_storage is cut to one; a negative one is refused. */
    struct {
        struct sockaddr_in to;
        char pad[200];
    } roomy;
    memset(&roomy, 0, sizeof roomy);
    roomy.to = b_addr;
    struct msghdr wide = {.msg_name = &roomy, .msg_namelen = 200, .msg_iov = out, .msg_iovlen = 1};
    check(t_sendmsg(&sa, &wide, 0) == 100 && t_recv(&sb, buf, sizeof buf, 0) == 100, "sendmsg, msg_namelen 200");
    wide.msg_namelen = (socklen_t)-1;
    check(t_sendmsg(&sa, &wide, 0) < 0 && errno == EINVAL, "sendmsg, msg_namelen -1: no EINVAL");
    /* Connected to b, then to c, then disconnected: where each send goes. */
    check(connect(a, (struct sockaddr *)&b_addr, sizeof b_addr) == 0, "connect to b");
    /* MSG_NOSIGNAL changes nothing on a receive, but programs pass it */
    check(t_send(&sa, data, 30, 0) == 30 && t_recv(&sb, buf, sizeof buf, MSG_NOSIGNAL) == 30, "connected to b");
    check(connect(a, (struct sockaddr *)&c_addr, sizeof c_addr) == 0, "connect to c");
    check(t_send(&sa, data, 31, 0) == 31 && t_recv(&sc, buf, sizeof buf, 0) == 31, "connected to c");
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    check(connect(a, &unspec, sizeof unspec) == 0, "disconnect");
    check(t_send(&sa, data, 32, 0) < 0 && errno == EDESTADDRREQ, "disconnected: no EDESTADDRREQ");
    check(t_sendto(&sa, data, 33, 0, (struct sockaddr *)&b_addr, sizeof b_addr) == 33 &&
              t_recv(&sb, buf, sizeof buf, 0) == 33, "disconnected, sendto b");
    report(&sa);
    report(&sb);
    report(&sc);
    report(&su);
    return failures ? 1 : 0;
}

/* -- sendtimeout: SO_SNDTIMEO on a stream nobody reads yet ----------------- */

static int mode_sendtimeout(void) {
    static unsigned char data[1000000], buf[65536];
    fill(data, sizeof data, 41);
    int sv[2];
    xsocketpair(SOCK_STREAM, sv);
    struct fdstat sw, sr;
    fdstat_init(&sw, "writer", sv[0]);
    fdstat_init(&sr, "reader", sv[1]);
    struct timeval tv = {0, 50000};
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    /* It fills the socket, waits 50 ms for room, and returns what went out. */
    ssize_t n = t_send(&sw, data, sizeof data, 0);
    check(n > 0 && n < (ssize_t)sizeof data, "the send was not partial");
    check(t_send(&sw, data, 100, 0) < 0 && errno == EAGAIN, "a send with no room: no EAGAIN");
    long got = 0;
    while (got < n) {
        size_t want = n - got < (long)sizeof buf ? (size_t)(n - got) : sizeof buf;
        ssize_t r = t_recv(&sr, buf, want, 0);
        if (r <= 0)
            break;
        check(memcmp(buf, data + got, (size_t)r) == 0, "reader: other bytes than were sent");
        got += r;
    }
    check(got == n, "reader: not all that was sent");
    report(&sw);
    report(&sr);
    return failures ? 1 : 0;
}

/* -- shutwrite: another thread shuts the sending side of a blocked send ------
 * Natively the send ends with what went out and no SIGPIPE (a socket signals
 * only when nothing went); the next send fails with EPIPE and signals.  A
 * unix stream socket shows such a shutdown in no poll event.  1 MiB sends
 * are the fast path's, 4 MiB ones Python's. */

static volatile sig_atomic_t sigpipes;
static void count_sigpipe(int sig) { (void)sig; sigpipes++; }

static void *shut_later(void *fd) {
    usleep(100000); /* the send is waiting by then */
    shutdown(*(int *)fd, SHUT_WR);
    return NULL;
}

static void shutwrite_case(const char *label, int w, size_t size) {
    static unsigned char data[4 << 20];
    fill(data, size, 43);
    struct fdstat s;
    fdstat_init(&s, label, w);
    pthread_t thread;
    if (pthread_create(&thread, NULL, shut_later, &w))
        fail("pthread_create");
    int before = sigpipes;
    ssize_t n = t_write(&s, data, size);
    check(n > 0 && n < (ssize_t)size, "the send was not partial");
    say("INFO %s.partial_sigpipes=%d", label, sigpipes - before);
    check(t_write(&s, data, 100) < 0 && errno == EPIPE, "after the shutdown: no EPIPE");
    say("INFO %s.sigpipes=%d", label, sigpipes - before);
    pthread_join(thread, NULL);
    report(&s);
}

static int mode_shutwrite(void) {
    struct sigaction sa = {.sa_handler = count_sigpipe};
    sigaction(SIGPIPE, &sa, NULL);
    const size_t sizes[] = {1 << 20, 4 << 20};
    const char *unix_labels[] = {"unix.1m", "unix.4m"}, *tcp_labels[] = {"tcp.1m", "tcp.4m"};
    for (int i = 0; i < 2; i++) {
        int sv[2];
        xsocketpair(SOCK_STREAM, sv);
        shutwrite_case(unix_labels[i], sv[0], sizes[i]);
        struct sockaddr_in addr;
        int ls = tcp_listener(&addr);
        int small = 65536; /* loopback's buffers would take 1 MiB whole */
        setsockopt(ls, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        int c = tcp_connect(&addr);
        setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        xaccept(ls, 0); /* never read: the send fills the buffers and waits */
        shutwrite_case(tcp_labels[i], c, sizes[i]);
    }
    /* each fd stays open to the end: one lifetime per number in the records */
    return failures ? 1 : 0;
}

/* -- recvflags: MSG_PEEK, MSG_TRUNC, a receive timeout ----------------------- */

static int mode_recvflags(void) {
    unsigned char data[3000], buf[3000], again[3000];
    fill(data, sizeof data, 29);
    int sv[2];
    xsocketpair(SOCK_STREAM, sv);
    struct fdstat sw, sr;
    fdstat_init(&sw, "stream.w", sv[0]);
    fdstat_init(&sr, "stream.r", sv[1]);
    check(t_send(&sw, data, 2500, 0) == 2500, "stream send");
    /* A peek delivers bytes without taking them: the next read gets them again. */
    check(t_recv(&sr, buf, 1000, MSG_PEEK) == 1000, "peek 1000");
    check(t_recv(&sr, again, 777, 0) == 777 && memcmp(buf, again, 777) == 0, "read after peek");
    check(t_recv(&sr, buf, 3000, MSG_PEEK | MSG_DONTWAIT) == 2500 - 777, "peek the rest");
    check(t_recv(&sr, buf, 3000, MSG_DONTWAIT) == 2500 - 777 && memcmp(buf, data + 777, 2500 - 777) == 0,
          "read the rest");

    struct sockaddr_in ua;
    int u = udp_socket(&ua, 0);
    struct fdstat us;
    fdstat_init(&us, "udp", u);
    check(t_sendto(&us, data, 1234, 0, (struct sockaddr *)&ua, sizeof ua) == 1234, "udp sendto 1234");
    check(t_sendto(&us, data + 1, 99, 0, (struct sockaddr *)&ua, sizeof ua) == 99, "udp sendto 99");
    check(t_recv(&us, buf, 100, MSG_PEEK) == 100, "udp peek: the first datagram, truncated");
    /* MSG_TRUNC: the datagram's real length, though 100 bytes were copied. */
    check(t_recv(&us, buf, 100, MSG_TRUNC) == 1234 && memcmp(buf, data, 100) == 0, "udp MSG_TRUNC");
    check(t_recv(&us, buf, 50, 0) == 50 && memcmp(buf, data + 1, 50) == 0, "udp: the second, truncated");
    /* SO_RCVTIMEO: a blocking receive on an empty socket ends with EAGAIN. */
    struct timeval tv = {0, 30000};
    setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    check(t_recv(&us, buf, 100, 0) < 0 && errno == EAGAIN, "SO_RCVTIMEO: no EAGAIN");
    setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    check(t_read(&sr, buf, 100) < 0 && errno == EAGAIN, "SO_RCVTIMEO on a stream: no EAGAIN");
    report(&sw);
    report(&sr);
    report(&us);
    return failures ? 1 : 0;
}

/* -- exitcode N: a little I/O, then exit N ---------------------------------- */

static int mode_exitcode(int code) {
    int p[2];
    xpipe(p, 0);
    struct fdstat w, r;
    fdstat_init(&w, "w", p[1]);
    fdstat_init(&r, "r", p[0]);
    unsigned char buf[321];
    fill(buf, sizeof buf, 5);
    t_write(&w, buf, sizeof buf);
    t_read(&r, buf, 1000);
    report(&w);
    report(&r);
    return code;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: exact_io MODE [ARGS]\n");
        return 2;
    }
    const char *mode = argv[1];
    const char *arg = argc > 2 ? argv[2] : "0";
    say("START mode=%s pid=%d", mode, (int)getpid());
    if (!strcmp(mode, "pingpong")) return mode_pingpong(atoi(arg));
    if (!strcmp(mode, "tcpecho")) return mode_tcpecho(atoi(arg));
    if (!strcmp(mode, "stream"))
        return mode_stream(atoll(arg), argc > 3 ? (size_t)atol(argv[3]) : 65536,
                           argc > 4 ? (size_t)atol(argv[4]) : 77777);
    if (!strcmp(mode, "udp")) return mode_udp(atoi(arg));
    if (!strcmp(mode, "unixdgram")) return mode_unixdgram(atoi(arg));
    if (!strcmp(mode, "disk")) return mode_disk(arg);
    if (!strcmp(mode, "vecat")) return mode_vecat(arg);
    if (!strcmp(mode, "eof")) return mode_eof();
    if (!strcmp(mode, "nonblock")) return mode_nonblock();
    if (!strcmp(mode, "epipe")) return mode_epipe();
    if (!strcmp(mode, "sigpipe")) return mode_sigpipe();
    if (!strcmp(mode, "reset")) return mode_reset();
    if (!strcmp(mode, "shortclose")) return mode_shortclose();
    if (!strcmp(mode, "midwrite")) return mode_midwrite();
    if (!strcmp(mode, "packetpipe")) return mode_packetpipe();
    if (!strcmp(mode, "midread")) return mode_midread();
    if (!strcmp(mode, "recvflags")) return mode_recvflags();
    if (!strcmp(mode, "sendtimeout")) return mode_sendtimeout();
    if (!strcmp(mode, "udpaddr")) return mode_udpaddr();
    if (!strcmp(mode, "shutwrite")) return mode_shutwrite();
    if (!strcmp(mode, "exitcode")) return mode_exitcode(atoi(arg));
    fprintf(stderr, "exact_io: unknown mode %s\n", mode);
    return 2;
}
