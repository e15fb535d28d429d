/*
 * superv._fastpath: the hot path of the supervisor.
 *
 * run() is the receiver loop.  For the common data calls on an fd whose
 * classification Python has cached here (read, write, pread64, pwrite64,
 * readv, writev, recv, send on pipes, sockets, files, memory devices) it
 * does RECV -> emulate -> record -> SEND itself, without the GIL.  Every
 * other notification (a cache miss, a lifecycle call, a call that would
 * block, an unusual flag) goes to the Python handler unchanged, and Python
 * stays the reference implementation of everything.
 *
 * The calls that make fds (open, socket, accept, pipe...), and connect, when
 * no policy rule names them, are recorded here too: the new number is
 * predicted from a picture of the process's open fds and learnt at the
 * thread's next call (pending_call, settle_pending), as Python's on_fd_new
 * does.  So are forks that make no thread, and waits whose children Python
 * knows: the child's pid is learnt from the thread's children, as Python's
 * on_spawn and on_reap learn it.
 *
 * The emulation follows supervisor/emulate.py step for step (kernel-facts
 * §2.2): a pipe is peeked with tee() and only what reached the caller is
 * consumed, a stream socket with MSG_PEEK, a file is read and rewound by
 * what was not delivered; writes read the caller's buffer once.
 *
 * A call that would block is parked, not answered: it waits in an epoll set
 * for its fd and is tried again when ready, while every other call goes on;
 * close, exit and exit_group are recorded here and passed to Python as
 * notes.  While the receiver is away (in Python, or waiting for the lock)
 * the catcher thread receives in its place, because a call is interruptible
 * by signals until its notification is received.
 *
 * A write it began and cannot finish without waiting is parked with the
 * bytes it read (begun_t), and finished from them; Python finishes it when
 * the socket has a send timeout, whose deadline Python keeps.
 *
 * The engine's wake-up signal (WAKE_SIGNAL, no SA_RESTART) can reach our
 * threads at any moment, and some calls look for a pending signal even when
 * told not to wait (tee and splice do before SPLICE_F_NONBLOCK).  An EINTR of
 * ours is never the caller's result: each call on a caller's fd, or on our
 * scratch pipe, is made again (TEMP_FAILURE_RETRY).
 *
 * State shared with Python (processes, tasks, cached fds, counters, the
 * events and log-row buffers) is guarded by one recursive mutex, `lock`;
 * Python takes it through the module's `lock` object, releasing the GIL
 * while it waits, so neither side can deadlock the other.  The <pid>.log
 * files are written by a log writer thread, outside the lock.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)            /* the largest call the fast path takes */
#define TASK_SIZE_MAX ((1ULL << 47) - 4096)
#define MAX_NR 512
#define MAX_KINDS 40
#define FAST_IOV_MAX 64
#define HASH_BUCKETS 4096
#define CHILDREN_MAX 64            /* a fork or wait by a thread with more children is Python's */
#define EVENTS_BUFFER (256 * 1024)
#define ROWS_BUFFER (64 * 1024)
#define SPLICE_F_NONBLOCK_ 2
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x08
#endif

/* How a call's arguments describe its buffer (syscalls.Layout, fast ones). */
enum { L_NONE = 0, L_BUF, L_BUF_AT, L_IOV, L_IOV_AT, L_SOCK, L_MSG, L_CLOSE, L_EXIT, L_EXIT_GROUP, L_SHUTDOWN,
       /* calls that make fds (see pending_call), by where their arguments are */
       L_OPEN_PATH0, L_OPEN_PATH1, L_SOCKET, L_ACCEPT, L_PIPE, L_SOCKETPAIR,
       L_DUP, L_FCNTL_DUPFD, /* the lowest free number (at or above fcntl's base) */
       L_DUP2,               /* dup2, dup3: the number asked for */
       /* calls whose result is learnt the same way, that make none */
       L_CONNECT,
       L_SPAWN, /* fork, vfork, clone: the child's pid */
       L_REAP }; /* wait4, waitid: the reaped child's pid */
/* How the fd is performed on (classify.IoMode, fast ones). */
enum { M_NONE = 0, M_PIPE, M_STREAM, M_DATAGRAM, M_FILE, M_MEMDEV,
       M_PASSTHROUGH }; /* not emulated: recorded without a result, run by the kernel */

typedef struct {
    uint8_t layout;
    uint8_t inward;           /* bytes flow into the caller */
    int8_t kind;              /* index of the call kind */
    int8_t kind_noaddr;       /* recvfrom/sendto without address: recv/send */
    uint8_t addressed;        /* it may take the call with an address (datagrams) */
    char name[24];
} call_spec;

/* ---- counters: one fd lifetime's totals, shared with Python ------------- */

typedef struct {
    PyObject_HEAD
    unsigned long long calls, bytes_in, bytes_out;
    unsigned long long kind_calls[MAX_KINDS], kind_bytes[MAX_KINDS];
} Counters;

/* ---- the state ------------------------------------------------------------ */

typedef struct fd_entry {
    unsigned long long key;      /* names the channel: a pipe, a socket's (local, remote) */
    unsigned long long peer_key; /* the channel its bytes reach; 0 when not known */
    int refs;                 /* the fd table's, and each parked call's */
    int registered;           /* dup is in parked_epoll */
    struct parked *waiter;    /* the parked call that dup's registration serves */
    int dup;                  /* the supervisor's copy of the caller's fd */
    uint8_t mode;
    uint8_t is_net;
    uint8_t discards_by_trunc; /* TCP: MSG_TRUNC drops bytes without copying them */
    uint8_t reads_wait;        /* its last read had to wait: park the next one at once */
    char tag[8];              /* " NET", for --trace */
    char *fragment;           /* "class":"net","detail":"..." */
    Py_ssize_t fragment_len;
    Counters *counters;       /* owned reference */
    int16_t rule_of_kind[MAX_KINDS]; /* the policy rule deciding each call kind: index+1, 0 the default */
    unsigned long long since; /* classified here, at the call with that number; 0: by Python */
} fd_entry;

typedef struct proc {
    int pid;
    int pidfd;                /* Python's, valid while the process is known */
    unsigned long long next_seq;
    unsigned long long inexact; /* calls run by the kernel, without a known result */
    int slow;                 /* every call to Python (the launcher; an exec to settle) */
    fd_entry **fds;
    int nfds;
    /* superv's picture of its open fd numbers, so that a new fd's number is
     * known without listing them all (quadratic with thousands of fds).
     * Untraced calls make fds too (eventfd, epoll...): a number is checked
     * with pidfd_getfd before it is trusted. */
    int picture_known;
    uint64_t *open_bits;
    /* Of those, the fds a call of the fast path made that Python has not
     * classified since: the fast path may classify them (classify_here). */
    uint64_t *fresh_bits;
    int open_words;
    /* Its fd table is shared (threads, CLONE_FILES): calls of two tasks can
     * make fds at once, and a predicted number could name either's. */
    int shares_fds;
    /* It has threads (or made a clone3): its children are every thread's,
     * and no one listing has them all. */
    int threaded;
    /* A fast wait reaped it: its tasks are gone, and none is added again
     * (its pid may be another process's already). */
    int reaped;
    char *rows;               /* network rows of <pid>.log not yet written */
    size_t rows_len, rows_room;
    char *log_path;           /* NULL until Python takes in a child admitted here */
    char *argv_json;          /* its argv, for its children's "fork" events */
    int log_started;
    struct proc *next;
} proc;

/* A call that makes fds (or a connect), let run by the kernel: its result
 * is learnt at the thread's next call (settle_pending), as Python's
 * PendingOutcome. */
typedef struct {
    unsigned long long seq;
    const char *name;
    int layout;
    int expected;             /* one fd: the number it will get; connect's socket */
    int source;               /* dup2, dup3: the fd whose file the new number must get */
    unsigned long long pair_at;
    int before[2];            /* the array before the call, and which of them were open */
    uint8_t open_before[2];
    int nchildren;            /* fork, wait: the thread's children before the call */
    int children[CHILDREN_MAX];
    size_t fields_len;
    char fields[];            /* the record's members after "result", each with its comma */
} pending_t;

typedef struct task {
    int tid;
    proc *p;
    int slow;                 /* its next call to Python (a result to learn) */
    pending_t *pending;       /* a call the fast path let run, to settle at the next */
    struct task *next;
} task;

static pthread_mutex_t lock;
static proc *procs[HASH_BUCKETS];
static task *tasks[HASH_BUCKETS];
static call_spec specs[MAX_NR];
static int listener = -1, events_fd = -1, trace_fd = -1;
static PyObject *handler;
static volatile int stopping;
static char *events_buf;
static size_t events_len;
static int scratch_r = -1, scratch_w = -1, devnull = -1;
static size_t scratch_size;
static char *buffer;          /* CHUNK bytes, page-aligned (O_DIRECT files) */
static char *junk;            /* where consumed bytes go */
static unsigned long long fast_calls, slow_calls;

static void drop_entry(fd_entry *e);
static void forget_fd(proc *p, int fd);
static void drop_all_fds(proc *p);
static void forget_tasks_of(proc *p);

static unsigned bucket(int key) { return (unsigned)key * 2654435761u % HASH_BUCKETS; }

static proc *find_proc(int pid)
{
    for (proc *p = procs[bucket(pid)]; p; p = p->next)
        if (p->pid == pid)
            return p;
    return NULL;
}

static task *find_task(int tid)
{
    for (task *t = tasks[bucket(tid)]; t; t = t->next)
        if (t->tid == tid)
            return t;
    return NULL;
}

/* Processes whose end Python has recorded and whose reaping nobody has
 * seen yet (engine's `ended`), with their identity (pidfd inode): a wait
 * whose children are all known or ended is the fast path's (L_REAP). */
typedef struct ended_proc {
    int pid;
    unsigned long long identity;
    struct ended_proc *next;
} ended_proc;
static ended_proc *ended[HASH_BUCKETS];

static ended_proc **ended_slot(int pid)
{
    ended_proc **at = &ended[bucket(pid)];
    while (*at && (*at)->pid != pid)
        at = &(*at)->next;
    return at;
}

static void ended_add(int pid, unsigned long long identity)
{
    ended_proc **at = ended_slot(pid), *e = *at;
    if (!e) {
        if (!(e = calloc(1, sizeof *e)))
            return; /* its waits go to Python */
        e->pid = pid;
        *at = e;
    }
    e->identity = identity;
}

static void ended_remove(int pid)
{
    ended_proc **at = ended_slot(pid), *e = *at;
    if (e) {
        *at = e->next;
        free(e);
    }
}

static void take_lock(void);

/* A reference gone; the last one closes our copy of the caller's fd.  A
 * parked call keeps it open, as a blocked call keeps its file natively. */
static fd_entry *graveyard; /* entries whose counters await a thread with the GIL */

static int parked_epoll = -1;

static void entry_release(fd_entry *e)
{
    if (!e || --e->refs > 0)
        return;
    if (e->registered)
        epoll_ctl(parked_epoll, EPOLL_CTL_DEL, e->dup, NULL);
    if (e->dup >= 0)
        close(e->dup);
    e->dup = -1;
    free(e->fragment);
    e->fragment = NULL;
    if (PyGILState_Check()) {
        Py_XDECREF(e->counters);
        free(e);
    } else {
        /* A Python refcount is only touched with the GIL. */
        e->fragment_len = (Py_ssize_t)(uintptr_t)graveyard;
        graveyard = e;
    }
}

/* Free what entry_release left for a thread with the GIL (which holds it). */
static void bury(void)
{
    take_lock();
    while (graveyard) {
        fd_entry *e = graveyard;
        graveyard = (fd_entry *)(uintptr_t)e->fragment_len;
        Py_XDECREF(e->counters);
        free(e);
    }
    pthread_mutex_unlock(&lock);
}

/* ---- the picture of a process's fd numbers ------------------------------------ */

/* Room for at least `words` words of bits, the new ones clear. */
static int picture_grow(proc *p, int words)
{
    if (words <= p->open_words)
        return 0;
    if (words < 2 * p->open_words)
        words = 2 * p->open_words;
    uint64_t *grown = realloc(p->open_bits, (size_t)words * sizeof *grown);
    if (!grown)
        return -1;
    memset(grown + p->open_words, 0, (size_t)(words - p->open_words) * sizeof *grown);
    p->open_bits = grown;
    uint64_t *fresh = realloc(p->fresh_bits, (size_t)words * sizeof *fresh);
    if (!fresh)
        return -1;
    memset(fresh + p->open_words, 0, (size_t)(words - p->open_words) * sizeof *fresh);
    p->fresh_bits = fresh;
    p->open_words = words;
    return 0;
}

static int picture_add(proc *p, int fd)
{
    if (fd < 0)
        return 0;
    if (picture_grow(p, fd / 64 + 1) < 0)
        return -1;
    p->open_bits[fd / 64] |= 1ULL << (fd % 64);
    return 0;
}

static void picture_remove(proc *p, long long first, long long last)
{
    if (first < 0)
        first = 0;
    if (last >= (long long)p->open_words * 64)
        last = (long long)p->open_words * 64 - 1;
    for (long long fd = first; fd <= last; fd++)
        if (fd % 64 == 0 && fd + 63 <= last)
            p->open_bits[fd / 64] = p->fresh_bits[fd / 64] = 0, fd += 63;
        else
            p->open_bits[fd / 64] &= ~(1ULL << (fd % 64)), p->fresh_bits[fd / 64] &= ~(1ULL << (fd % 64));
}

static void picture_forget(proc *p)
{
    p->picture_known = 0;
    if (p->open_bits) {
        memset(p->open_bits, 0, (size_t)p->open_words * sizeof *p->open_bits);
        memset(p->fresh_bits, 0, (size_t)p->open_words * sizeof *p->fresh_bits);
    }
}

static int is_fresh(const proc *p, int fd)
{
    return fd >= 0 && fd / 64 < p->open_words && (p->fresh_bits[fd / 64] >> (fd % 64) & 1);
}

static void fresh_clear(proc *p, int fd)
{
    if (fd >= 0 && fd / 64 < p->open_words)
        p->fresh_bits[fd / 64] &= ~(1ULL << (fd % 64));
}

/* The number the kernel gives the next fd at base or above: the lowest free. */
static int picture_free_from(const proc *p, int base)
{
    int fd = base < 0 ? 0 : base;
    while (fd / 64 < p->open_words) {
        uint64_t taken = p->open_bits[fd / 64] | ((1ULL << (fd % 64)) - 1);
        if (taken != ~0ULL)
            return fd / 64 * 64 + __builtin_ctzll(~taken);
        fd = (fd / 64 + 1) * 64;
    }
    return fd;
}

/* superv's copy of the process's fd (the same open file), or -1. */
static int copy_of(const proc *p, int fd)
{
    return (int)syscall(SYS_pidfd_getfd, p->pidfd, fd, 0);
}

/* 1 when the process has this fd open (O_PATH fds excepted) with a file a
 * call of this layout makes: a socket for socket and accept, not an anon
 * inode (eventfd, epoll...) for an open, any file for L_NONE.  (An untraced
 * call may take a predicted number before the thread's next call.)  0 when
 * not, -1 when it cannot be told (the process is gone). */
static int process_has_fd(const proc *p, int fd, int layout)
{
    int copy = copy_of(p, fd);
    if (copy < 0)
        return errno == EBADF ? 0 : -1;
    if (layout == L_NONE) {
        close(copy);
        return 1;
    }
    struct stat st;
    int rc = fstat(copy, &st);
    close(copy);
    if (rc < 0)
        return -1;
    if (layout == L_SOCKET || layout == L_ACCEPT)
        return S_ISSOCK(st.st_mode);
    if (layout == L_DUP || layout == L_FCNTL_DUPFD)
        return 1; /* a copy of an eventfd is an anonymous inode too */
    return (st.st_mode & S_IFMT) != 0;
}

/* pipe, pipe2, socketpair: two fds, written to an array. */
static int makes_pair(int layout) { return layout == L_PIPE || layout == L_SOCKETPAIR; }

/* The picture, from /proc/PID/fd; -1 when it cannot be listed. */
static int picture_list(proc *p)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", p->pid);
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -1;
    picture_forget(p);
    char entries[8192];
    long got;
    while ((got = syscall(SYS_getdents64, dir, entries, sizeof entries)) > 0)
        for (long at = 0; at < got;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(entries + at);
            if (d->name[0] >= '0' && d->name[0] <= '9')
                picture_add(p, atoi(d->name));
            at += d->reclen;
        }
    close(dir);
    if (got < 0)
        return -1;
    p->picture_known = 1;
    return 0;
}

/* The processes a thread forked and has not reaped, zombies included
 * (procfs.children): how many, the first `room` of them in `out`; -1 when
 * they cannot be read. */
static int thread_children(int pid, int tid, int *out, int room)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got < 0)
        return -1;
    if (got == sizeof text - 1)
        return room + 1; /* more than we keep */
    text[got] = 0;
    int count = 0;
    for (char *at = text, *end; *at; at = end) {
        long child = strtol(at, &end, 10);
        if (end == at)
            break;
        if (count < room)
            out[count] = (int)child;
        count++;
    }
    return count;
}

static int holds_pid(const int *pids, int count, int pid)
{
    for (int i = 0; i < count; i++)
        if (pids[i] == pid)
            return 1;
    return 0;
}

static int spawn_noted(int child);

/* 1 when Python knows each of these children, or will even once they are
 * reaped (engine.on_reap takes them in before the wait for that): each is
 * a known process, one whose end was recorded (the very one), or one a
 * note tells of with a pidfd, which outlives the reaping. */
static int children_known(const int *children, int count)
{
    for (int i = 0; i < count; i++) {
        if (find_proc(children[i]) || spawn_noted(children[i]))
            continue;
        ended_proc *e = *ended_slot(children[i]);
        if (!e)
            return 0;
        int pidfd = (int)syscall(SYS_pidfd_open, children[i], 0);
        struct stat st;
        int same = pidfd >= 0 && fstat(pidfd, &st) == 0 && st.st_ino == e->identity;
        if (pidfd >= 0)
            close(pidfd);
        if (!same)
            return 0;
    }
    return 1;
}

/* ---- output: events.jsonl, <pid>.log rows, --trace ------------------------- */

/* The first error writing each output (a full disk): 0, or its errno.
 * The run goes on; that output is written no more, and what it holds stays
 * whole lines.  output_errors() tells Python, which says so at the end. */
static int events_error, trace_error, rows_error;

/* All of data (whole lines), or what fits of it: on an error a file is cut
 * back to the end of the last whole line written, the errno is kept in
 * *error, and later writes are skipped. */
static int write_all(int fd, const char *data, size_t len, int *error)
{
    if (*error)
        return -1;
    off_t start = lseek(fd, 0, SEEK_CUR); /* -1 for a pipe or a terminal */
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *error = n < 0 ? errno : EIO;
            size_t whole = done;
            while (whole && data[whole - 1] != '\n')
                whole--;
            if (start >= 0 && ftruncate(fd, start + (off_t)whole) < 0)
                start = -1;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

static void events_flush(void)
{
    if (events_len && events_fd >= 0)
        write_all(events_fd, events_buf, events_len, &events_error);
    events_len = 0;
}

static void events_add(const char *line, size_t len)
{
    if (events_len + len + 1 > EVENTS_BUFFER)
        events_flush();
    if (len + 1 > EVENTS_BUFFER) {
        if (write_all(events_fd, line, len, &events_error) == 0)
            write_all(events_fd, "\n", 1, &events_error);
        return;
    }
    memcpy(events_buf + events_len, line, len);
    events_len += len;
    events_buf[events_len++] = '\n';
}

static const char LOG_HEADER[] = "call,fd,pid,seq,time,size,recv_so_far,send_so_far\n";

/* ---- the log writer: <pid>.log files are written by a thread of their own ----
 * Creating a small file costs ~400 us on our disks, and a process's rows are
 * written when it ends (or 64 KiB of them are due), under the lock: the
 * receiver would wait each time.  rows_flush hands the rows over instead,
 * in order, and the writer thread writes them without the lock or the GIL.
 * rows_drain waits until all handed over are written. */

typedef struct log_write {
    char *path;
    char *rows;
    size_t len;
    int create; /* the first write: truncate, and the header first */
    struct log_write *next;
} log_write;

static log_write *writes_head, **writes_tail = &writes_head;
static int writes_busy; /* the writer holds one it has not finished */
static int writer_running;
static pthread_t writer;
static pthread_mutex_t writes_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t writes_cond = PTHREAD_COND_INITIALIZER;   /* a write was handed over */
static pthread_cond_t writes_done = PTHREAD_COND_INITIALIZER;   /* the queue went empty */

static void log_write_out(const log_write *w)
{
    if (__atomic_load_n(&rows_error, __ATOMIC_SEQ_CST))
        return; /* written no more: dropped */
    int error = 0;
    int fd = open(w->path, O_WRONLY | O_CREAT | O_CLOEXEC | (w->create ? O_TRUNC : O_APPEND), 0644);
    if (fd < 0) {
        error = errno;
    } else {
        if (w->create)
            write_all(fd, LOG_HEADER, sizeof LOG_HEADER - 1, &error);
        write_all(fd, w->rows, w->len, &error);
        close(fd);
    }
    if (error)
        __atomic_store_n(&rows_error, error, __ATOMIC_SEQ_CST);
}

static void *writer_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&writes_mutex);
    for (;;) {
        while (!writes_head)
            pthread_cond_wait(&writes_cond, &writes_mutex);
        log_write *w = writes_head;
        writes_head = w->next;
        if (!writes_head)
            writes_tail = &writes_head;
        writes_busy = 1;
        pthread_mutex_unlock(&writes_mutex);
        log_write_out(w);
        free(w->path);
        free(w->rows);
        free(w);
        pthread_mutex_lock(&writes_mutex);
        writes_busy = 0;
        if (!writes_head)
            pthread_cond_broadcast(&writes_done);
    }
    return NULL;
}

/* Hand a write of text (malloc'd: the writer frees it) to path over to the
 * writer thread, after those before it. */
static void log_write_queue(const char *path, char *text, size_t len, int create)
{
    log_write *w = calloc(1, sizeof *w);
    char *copy = strdup(path);
    pthread_mutex_lock(&writes_mutex);
    if (!writer_running)
        writer_running = pthread_create(&writer, NULL, writer_main, NULL) == 0;
    if (!w || !copy || !writer_running) {
        pthread_mutex_unlock(&writes_mutex);
        free(w);
        free(copy);
        free(text);
        __atomic_store_n(&rows_error, ENOMEM, __ATOMIC_SEQ_CST);
        return;
    }
    w->path = copy;
    w->rows = text;
    w->len = len;
    w->create = create;
    *writes_tail = w;
    writes_tail = &w->next;
    pthread_cond_signal(&writes_cond);
    pthread_mutex_unlock(&writes_mutex);
}

static void rows_flush(proc *p)
{
    if (!p->log_path || (!p->rows_len && p->log_started))
        return;
    if (__atomic_load_n(&rows_error, __ATOMIC_SEQ_CST)) { /* written no more: drop them */
        p->rows_len = 0;
        return;
    }
    /* Handed over, cut to its rows (the buffer is 64 KiB): a writer behind a
     * fork storm must not hold 64 KiB for each process that ended. */
    char *rows = p->rows_len ? realloc(p->rows, p->rows_len) : NULL;
    if (!rows) {
        free(p->rows);
        if (p->rows_len)
            __atomic_store_n(&rows_error, ENOMEM, __ATOMIC_SEQ_CST);
    }
    log_write_queue(p->log_path, rows, rows ? p->rows_len : 0, !p->log_started);
    p->rows = NULL;
    p->rows_len = p->rows_room = 0;
    p->log_started = 1;
}

/* Wait until every handed-over write is written (the GIL let go by the caller). */
static void rows_drain(void)
{
    pthread_mutex_lock(&writes_mutex);
    while (writes_head || writes_busy)
        pthread_cond_wait(&writes_done, &writes_mutex);
    pthread_mutex_unlock(&writes_mutex);
}

static void rows_add(proc *p, const char *row, size_t len)
{
    if (len + 1 > ROWS_BUFFER)
        return;
    if (p->rows_len && p->rows_len + len + 1 > p->rows_room)
        rows_flush(p); /* which hands the buffer over */
    if (p->rows_len + len + 1 > p->rows_room) { /* no log yet (admit): they wait in memory */
        size_t room = p->rows_room ? 2 * p->rows_room : ROWS_BUFFER;
        char *grown = realloc(p->rows, room);
        if (!grown)
            return;
        p->rows = grown;
        p->rows_room = room;
    }
    memcpy(p->rows + p->rows_len, row, len);
    p->rows_len += len;
    p->rows[p->rows_len++] = '\n';
}

static double clock_seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The kind names, set by init(): the record's "kind" and the counters' index. */
static char kind_names[MAX_KINDS][24];

/* ---- one call, decoded --------------------------------------------------------- */

typedef struct {
    struct seccomp_notif n;
    const call_spec *spec;
    int pid, tid, fd, kind, sock_flags, nremote;
    fd_entry *e;              /* a reference, while the call is parked */
    size_t count;
    long long offset;         /* -1: the file's own position */
    struct iovec remote[FAST_IOV_MAX];
    /* sendto's address, read once; recvfrom's: where the sender's goes,
     * its room, and where its length goes (0: no address) */
    struct sockaddr_storage name;
    socklen_t name_len;
    int name_room;
    unsigned long long name_at, namelen_at;
    unsigned long long header_at; /* recvmsg's struct msghdr, where msg_flags and msg_controllen go */
} call_t;

/* A write the fast path began: the bytes written, and the rest of what was
 * read from the caller, sent as it is (reading the caller's memory again
 * would let another thread change the call under way).  The fast path
 * finishes it, parked; Python does when the socket has a send timeout. */
typedef struct {
    size_t done;
    char *rest; /* malloc'd; NULL when nothing is left over */
    size_t rest_len;
} begun_t;

typedef struct parked {
    call_t c;
    begun_t begun;            /* a write partly done (rest != NULL) */
    int wait_fd;              /* a dup registered (one-shot) in parked_epoll */
    int speculative;          /* parked without an attempt (see fast_handle) */
    unsigned long long turn;  /* the receiver loop's turn when it parked */
    struct parked *next;
} parked;

static parked *parked_list;     /* in arrival order */
static int parked_count;
static unsigned long long loop_turn; /* the receiver loop's turns */

/* Calls to give to Python once the lock is let go; each thread has its own. */
#define HANDOFF_MAX 256
typedef struct {
    struct {
        struct seccomp_notif n;
        begun_t begun;
    } items[HANDOFF_MAX];
    int count;
} handoffs_t;

/* ---- records ----------------------------------------------------------------- */

/* Records are formatted by hand: printf's float conversion was a sixth of
 * the supervisor's time (perf, pipe ping-pong). */
typedef struct {
    char *at, *end;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->at + n <= o->end) {
        memcpy(o->at, s, n);
        o->at += n;
    }
}
#define PUT(o, literal) put(o, literal, sizeof(literal) - 1)

static void put_str(out_t *o, const char *s) { put(o, s, strlen(s)); }

/* A JSON string of text that needs no escaping; null when it is empty. */
static void put_text_or_null(out_t *o, const char *text)
{
    if (!*text) {
        PUT(o, "null");
        return;
    }
    PUT(o, "\"");
    put_str(o, text);
    PUT(o, "\"");
}

static void put_u64(out_t *o, unsigned long long v)
{
    char digits[24];
    int i = sizeof digits;
    do
        digits[--i] = (char)('0' + v % 10);
    while (v /= 10);
    put(o, digits + i, sizeof digits - (size_t)i);
}

static void put_i64(out_t *o, long long v)
{
    if (v < 0) {
        PUT(o, "-");
        put_u64(o, (unsigned long long)-(v + 1) + 1);
    } else {
        put_u64(o, (unsigned long long)v);
    }
}

/* seconds.fraction with `digits` digits (6: microseconds, 9: nanoseconds) */
static void put_time(out_t *o, const struct timespec *ts, int digits)
{
    put_u64(o, (unsigned long long)ts->tv_sec);
    char frac[9];
    long v = digits == 6 ? ts->tv_nsec / 1000 : ts->tv_nsec;
    for (int i = digits - 1; i >= 0; i--, v /= 10)
        frac[i] = (char)('0' + v % 10);
    PUT(o, ".");
    put(o, frac, (size_t)digits);
}

/* An event's first members, as recorder._event writes them: {"schema":1,
 * "type":..,"seq":.. (null when seq < 0),"mono":..,"wall":..,"pid":..  The
 * wall time, for the caller's other uses. */
static struct timespec put_envelope(out_t *o, const char *type, long long seq, int pid)
{
    struct timespec wall, mono;
    clock_gettime(CLOCK_REALTIME, &wall);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    PUT(o, "{\"schema\":1,\"type\":\"");
    put_str(o, type);
    PUT(o, "\",\"seq\":");
    if (seq < 0)
        PUT(o, "null");
    else
        put_i64(o, seq);
    PUT(o, ",\"mono\":");
    put_time(o, &mono, 9);
    PUT(o, ",\"wall\":");
    put_time(o, &wall, 6);
    PUT(o, ",\"pid\":");
    put_i64(o, pid);
    return wall;
}

/* ---- the calls each policy rule decided, for summary.json ----------------
 * Python tells, per cached fd and call kind, which rule decides the call (it
 * serves an fd here only when that decision is allow or log); lifecycle
 * calls are taken here only when no rule names them: the default's. */
#define RULES_MAX 1024
static unsigned long long rule_calls[RULES_MAX + 1]; /* [0]: the default */
static int counting_rules;

/* How a recorded call ended: with its result, interrupted by a signal (no
 * result), or run by the kernel (no result known: exact false). */
enum outcome { DONE, INTERRUPTED, UNKNOWN };

static void record(proc *p, const call_t *c, long long result, unsigned long long moved, enum outcome outcome)
{
    int interrupted = outcome == INTERRUPTED, known = outcome == DONE;
    fd_entry *e = c->e;
    Counters *k = e->counters;
    unsigned long long seq = p->next_seq++;
    if (counting_rules)
        rule_calls[e->rule_of_kind[c->kind]]++;
    k->calls++;
    k->kind_calls[c->kind]++;
    k->kind_bytes[c->kind] += moved;
    if (c->spec->inward)
        k->bytes_in += moved;
    else
        k->bytes_out += moved;
    char line[1024];
    out_t o = {line, line + sizeof line - 1};
    struct timespec wall = put_envelope(&o, "call", (long long)seq, p->pid);
    PUT(&o, ",\"syscall\":\"");
    put_str(&o, c->spec->name);
    PUT(&o, "\",\"kind\":\"");
    put_str(&o, kind_names[c->kind]);
    PUT(&o, "\",\"tid\":");
    put_i64(&o, c->tid);
    PUT(&o, ",\"fd\":");
    put_i64(&o, c->fd);
    PUT(&o, ",");
    put(&o, e->fragment, (size_t)e->fragment_len);
    PUT(&o, ",\"result\":");
    if (!known)
        PUT(&o, "null");
    else
        put_i64(&o, result);
    if (outcome == UNKNOWN)
        PUT(&o, ",\"exact\":false,\"fd_in\":");
    else
        PUT(&o, ",\"exact\":true,\"fd_in\":");
    put_u64(&o, k->bytes_in);
    PUT(&o, ",\"fd_out\":");
    put_u64(&o, k->bytes_out);
    if (c->spec->layout == L_SOCK || c->spec->layout == L_MSG) {
        PUT(&o, ",\"flags\":");
        put_i64(&o, c->sock_flags);
    }
    if (interrupted)
        PUT(&o, ",\"interrupted\":true");
    PUT(&o, "}");
    events_add(line, (size_t)(o.at - line));

    if (e->is_net && known) {
        char row[192];
        out_t r = {row, row + sizeof row};
        put_str(&r, kind_names[c->kind]);
        PUT(&r, ",");
        put_i64(&r, c->fd);
        PUT(&r, ",");
        put_i64(&r, p->pid);
        PUT(&r, ",");
        put_u64(&r, seq);
        PUT(&r, ",");
        put_time(&r, &wall, 6);
        PUT(&r, ",");
        put_i64(&r, result);
        PUT(&r, ",");
        put_u64(&r, k->bytes_in);
        PUT(&r, ",");
        put_u64(&r, k->bytes_out);
        rows_add(p, row, (size_t)(r.at - row));
    }
    if (trace_fd >= 0) {
        /* the call as reports.call_text writes it, whichever side served it */
        char call[96], tl[256];
        if (c->spec->layout == L_BUF || c->spec->layout == L_BUF_AT)
            snprintf(call, sizeof call, "%s(%d, %zu)", c->spec->name, c->fd, c->count);
        else if (c->spec->layout == L_SOCK)
            snprintf(call, sizeof call, "%s(%d, %zu, 0x%x)", c->spec->name, c->fd, c->count, c->sock_flags);
        else
            snprintf(call, sizeof call, "%s(%d, ...)", c->spec->name, c->fd);
        int m;
        if (!known)
            m = snprintf(tl, sizeof tl, "[%d] [%s] %s = ?%s\n", p->pid, e->tag, call,
                         interrupted ? " (interrupted by a signal)" : "");
        else if (result < 0)
            m = snprintf(tl, sizeof tl, "[%d] [%s] %s = -1 %s (%s)\n", p->pid, e->tag, call,
                         strerrorname_np((int)-result) ? strerrorname_np((int)-result) : "?", strerror((int)-result));
        else
            m = snprintf(tl, sizeof tl, "[%d] [%s] %s = %lld\n", p->pid, e->tag, call, result);
        if (m > 0 && m < (int)sizeof tl)
            write_all(trace_fd, tl, (size_t)m, &trace_error);
    }
}

static void answer(const struct seccomp_notif *n, long long result)
{
    struct seccomp_notif_resp r;
    memset(&r, 0, sizeof r);
    r.id = n->id;
    if (result < 0)
        r.error = (int)result;
    else
        r.val = result;
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

/* ---- emulation ------------------------------------------------------------- */

/* What an attempt can say besides an answer. */
#define WOULD_BLOCK (LLONG_MIN + 1) /* nothing done: wait, or EAGAIN for a non-blocking caller */
#define BEGUN (LLONG_MIN + 2)       /* a write partly done: wait for room for the rest (begun_t) */
#define TO_PYTHON LLONG_MIN         /* nothing done: Python's to do */

static ssize_t deliver(pid_t tid, const char *data, size_t len, const struct iovec *remote, int nremote)
{
    if (!len)
        return 0;
    struct iovec local = {.iov_base = (void *)data, .iov_len = len};
    struct iovec trimmed[FAST_IOV_MAX];
    int used = 0;
    size_t room = len;
    for (int i = 0; i < nremote && room; i++) {
        trimmed[used] = remote[i];
        if (trimmed[used].iov_len > room)
            trimmed[used].iov_len = room;
        room -= trimmed[used].iov_len;
        used++;
    }
    ssize_t n = process_vm_writev(tid, &local, 1, trimmed, used, 0);
    return n < 0 ? 0 : n;
}

/* `size` bytes of the caller's memory at `address`, whole or not at all */
static int read_caller(pid_t tid, unsigned long long address, void *into, size_t size)
{
    struct iovec local = {into, size}, remote = {(void *)(uintptr_t)address, size};
    return process_vm_readv(tid, &local, 1, &remote, 1, 0) == (ssize_t)size;
}

static int write_caller(pid_t tid, unsigned long long address, const void *from, size_t size)
{
    struct iovec local = {(void *)from, size}, remote = {(void *)(uintptr_t)address, size};
    return process_vm_writev(tid, &local, 1, &remote, 1, 0) == (ssize_t)size;
}

/* recvfrom: the sender's address, cut to the caller's room, and its whole
 * length, as the kernel's move_addr_to_user writes them */
static int return_address(const call_t *c, const struct sockaddr_storage *from, socklen_t len)
{
    size_t room = (size_t)c->name_room, n = len < room ? len : room;
    uint32_t whole = len;
    return (!n || write_caller(c->tid, c->name_at, from, n)) && write_caller(c->tid, c->namelen_at, &whole, sizeof whole);
}

/* recvmsg: msg_flags, and msg_controllen (no control data: 0), as the
 * kernel's ____sys_recvmsg writes them after the data */
static int return_header(const call_t *c, int msg_flags)
{
    uint32_t flags = (uint32_t)msg_flags;
    unsigned long long controllen = 0;
    return write_caller(c->tid, c->header_at + 48, &flags, sizeof flags) &&
           write_caller(c->tid, c->header_at + 40, &controllen, sizeof controllen);
}

/* A socket receive on our duplicate, with the sender's address when `from`
 * is given, and the message flags the kernel set */
static ssize_t socket_receive(int fd, size_t len, int flags, struct sockaddr_storage *from, socklen_t *from_len,
                              int *msg_flags)
{
    struct iovec v = {buffer, len};
    struct msghdr m = {.msg_name = from, .msg_namelen = from ? sizeof *from : 0, .msg_iov = &v, .msg_iovlen = 1};
    ssize_t got = TEMP_FAILURE_RETRY(recvmsg(fd, &m, flags));
    if (from_len)
        *from_len = m.msg_namelen;
    *msg_flags = m.msg_flags;
    return got;
}

/* Take `len` peeked bytes out of the caller's channel, without copying them
 * where the kernel allows: splice to /dev/null for a pipe (which only spoils
 * RWF_NOWAIT on the read end, and our reads tee), MSG_TRUNC for TCP. */
static void consume(const fd_entry *e, size_t len)
{
    while (len) {
        ssize_t n;
        if (e->mode == M_PIPE && len >= 4096) /* a small copy is cheaper than a splice */
            n = TEMP_FAILURE_RETRY(splice(e->dup, NULL, devnull, NULL, len, SPLICE_F_NONBLOCK_));
        else if (e->mode == M_PIPE)
            n = TEMP_FAILURE_RETRY(read(e->dup, junk, len));
        else if (e->discards_by_trunc)
            n = TEMP_FAILURE_RETRY(recv(e->dup, NULL, len, MSG_TRUNC | MSG_DONTWAIT));
        else
            n = TEMP_FAILURE_RETRY(recv(e->dup, junk, len, MSG_DONTWAIT));
        if (n <= 0)
            return;
        len -= (size_t)n;
    }
}

/* The scratch pipe after a tee(): one read of up to `want`, the rest drained.
 * *left says how many bytes were left behind (a packet-mode tail shows there). */
static ssize_t scratch_take(size_t want, size_t teed, size_t *left)
{
    ssize_t got = TEMP_FAILURE_RETRY(read(scratch_r, buffer, want));
    if (got < 0)
        got = 0;
    *left = 0;
    if ((size_t)got == teed)
        return got; /* it is empty: no drain needed */
    for (;;) {
        ssize_t n = TEMP_FAILURE_RETRY(read(scratch_r, junk, CHUNK));
        if (n <= 0)
            break;
        *left += (size_t)n;
    }
    return got;
}

static long long fast_read(const call_t *c)
{
    fd_entry *e = c->e;
    ssize_t got, done;
    switch (e->mode) {
    case M_PIPE: {
        size_t want = c->count < scratch_size - 1 ? c->count : scratch_size - 1;
        ssize_t teed = TEMP_FAILURE_RETRY(tee(e->dup, scratch_w, want + 1, SPLICE_F_NONBLOCK_));
        if (teed < 0)
            return errno == EAGAIN ? WOULD_BLOCK : -errno;
        if (teed == 0)
            return 0; /* no writer left: end of file */
        size_t left, expect = (size_t)teed < want ? (size_t)teed : want;
        got = scratch_take(expect, (size_t)teed, &left);
        if ((size_t)got < expect || (size_t)got + left < (size_t)teed)
            return TO_PYTHON; /* packet-mode buffers: Python reads them one at a time */
        done = deliver(c->tid, buffer, (size_t)got, c->remote, c->nremote);
        consume(e, (size_t)done);
        return done ? done : -EFAULT;
    }
    case M_STREAM: {
        int msg_flags;
        got = socket_receive(e->dup, c->count, MSG_PEEK | MSG_DONTWAIT, NULL, NULL, &msg_flags);
        if (got < 0)
            return errno == EAGAIN ? WOULD_BLOCK : -errno;
        done = deliver(c->tid, buffer, (size_t)got, c->remote, c->nremote);
        if (done < got)
            return TO_PYTHON; /* a fault: the kernel takes whole chunks (emulate's peek_shaped) */
        if (!(c->sock_flags & MSG_PEEK))
            consume(e, (size_t)done);
        return c->header_at && !return_header(c, msg_flags) ? -EFAULT : done;
    }
    case M_DATAGRAM: {
        if (c->count > 256 * 1024)
            return TO_PYTHON;
        struct sockaddr_storage from;
        socklen_t from_len;
        int msg_flags;
        got = socket_receive(e->dup, c->count, (c->sock_flags & MSG_PEEK) | MSG_DONTWAIT, c->namelen_at ? &from : NULL,
                             &from_len, &msg_flags);
        if (got < 0)
            return errno == EAGAIN ? WOULD_BLOCK : -errno;
        done = deliver(c->tid, buffer, (size_t)got, c->remote, c->nremote);
        /* taken whole, as the kernel takes it, whatever faults */
        if (done < got || (c->namelen_at && !return_address(c, &from, from_len)) ||
            (c->header_at && !return_header(c, msg_flags)))
            return -EFAULT;
        return got;
    }
    case M_FILE:
        got = c->offset < 0 ? TEMP_FAILURE_RETRY(read(e->dup, buffer, c->count))
                            : TEMP_FAILURE_RETRY(pread(e->dup, buffer, c->count, c->offset));
        if (got < 0)
            return errno == EAGAIN ? TO_PYTHON : -errno;
        done = deliver(c->tid, buffer, (size_t)got, c->remote, c->nremote);
        if (c->offset < 0 && done < got)
            lseek(e->dup, done - got, SEEK_CUR);
        return done || !got ? done : -EFAULT;
    case M_MEMDEV:
        got = TEMP_FAILURE_RETRY(read(e->dup, buffer, c->count));
        if (got < 0)
            return errno == EAGAIN ? TO_PYTHON : -errno;
        done = deliver(c->tid, buffer, (size_t)got, c->remote, c->nremote);
        return done || !got ? done : -EFAULT;
    }
    return TO_PYTHON;
}

/* A write to a pipe that refuses RWF_NOWAIT (the kernel takes FMODE_NOWAIT
 * off a pipe that was ever spliced): with POLLOUT, one free slot takes a
 * write of PIPE_BUF bytes without waiting. */
static ssize_t pipe_write_polled(int fd, const char *data, size_t len)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, 0) != 1) {
        errno = EAGAIN;
        return -1;
    }
    return TEMP_FAILURE_RETRY(write(fd, data, len < PIPE_BUF ? len : PIPE_BUF));
}

static int socket_error_pending(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLERR};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

static int caller_blocks(const call_t *c);

/* Send `len` bytes of `data` on c's fd without waiting; `before` bytes of the
 * call went out already.  *sent: how many of these went.  The call's result
 * once it is over, or WOULD_BLOCK while the fd has no room. */
static long long send_rest(const call_t *c, const char *data, size_t len, size_t before, size_t *sent,
                           int *sigpipe)
{
    fd_entry *e = c->e;
    *sent = 0;
    for (;;) {
        size_t done = before + *sent;
        ssize_t n;
        if (done && e->mode == M_STREAM && socket_error_pending(e->dup))
            return (long long)done; /* the error stays for the caller's next call */
        switch (e->mode) {
        case M_PIPE: {
            struct iovec v = {.iov_base = (char *)data + *sent, .iov_len = len - *sent};
            n = TEMP_FAILURE_RETRY(pwritev2(e->dup, &v, 1, -1, RWF_NOWAIT));
            if (n < 0 && errno == EOPNOTSUPP)
                n = pipe_write_polled(e->dup, data + *sent, len - *sent);
            break;
        }
        case M_STREAM:
        case M_DATAGRAM:
            n = TEMP_FAILURE_RETRY(sendto(e->dup, data + *sent, len - *sent,
                                          c->sock_flags | MSG_DONTWAIT | MSG_NOSIGNAL,
                                          c->name_len ? (const struct sockaddr *)&c->name : NULL, c->name_len));
            break;
        case M_FILE:
            n = c->offset < 0 ? TEMP_FAILURE_RETRY(write(e->dup, data + *sent, len - *sent))
                              : TEMP_FAILURE_RETRY(
                                    pwrite(e->dup, data + *sent, len - *sent, c->offset + (long long)done));
            break;
        default:
            n = TEMP_FAILURE_RETRY(write(e->dup, data + *sent, len - *sent));
        }
        if (n < 0) {
            if (errno == EAGAIN)
                return WOULD_BLOCK;
            /* A pipe signals whatever went before; a socket only when
             * nothing did (sk_stream_error, unix_stream_sendmsg). */
            if (errno == EPIPE && !(c->sock_flags & MSG_NOSIGNAL) && (e->mode == M_PIPE || !done))
                *sigpipe = 1;
            return done ? (long long)done : -errno;
        }
        *sent += (size_t)n;
        if (e->mode == M_DATAGRAM || *sent == len || n == 0)
            return (long long)(before + *sent);
    }
}

/* Writes: the caller's bytes are read once.  A short write whose caller
 * blocks returns BEGUN with *begun: what is written, and the rest, which is
 * sent from there (resume_write) once the fd has room. */
static long long fast_write(const call_t *c, int *sigpipe, begun_t *begun)
{
    fd_entry *e = c->e;
    struct iovec local = {.iov_base = buffer, .iov_len = c->count};
    ssize_t got = process_vm_readv(c->tid, &local, 1, c->remote, c->nremote, 0);
    if (got <= 0)
        return -EFAULT;
    if (e->mode == M_DATAGRAM && (size_t)got < c->count)
        return -EFAULT;
    if (e->mode == M_STREAM && (size_t)got < c->count)
        return TO_PYTHON; /* a fault: a stream sends whole chunks (emulate.WriteOp, faults_after) */
    size_t sent;
    long long result = send_rest(c, buffer, (size_t)got, 0, &sent, sigpipe);
    if (result != WOULD_BLOCK || !sent || !caller_blocks(c))
        return result == WOULD_BLOCK && sent ? (long long)sent : result;
    begun->rest_len = (size_t)got - sent;
    begun->rest = malloc(begun->rest_len);
    if (!begun->rest)
        return (long long)sent; /* no memory to go on with: a short write */
    memcpy(begun->rest, buffer + sent, begun->rest_len);
    begun->done = sent;
    return BEGUN;
}

/* A begun write, parked: the rest of the bytes read at its start, never the
 * caller's memory again.  WOULD_BLOCK while the fd has no room. */
static long long resume_write(const call_t *c, begun_t *begun, int *sigpipe)
{
    size_t sent;
    long long result = send_rest(c, begun->rest, begun->rest_len, begun->done, &sent, sigpipe);
    memmove(begun->rest, begun->rest + sent, begun->rest_len - sent);
    begun->rest_len -= sent;
    begun->done += sent;
    return result;
}

static long long attempt(const call_t *c, int *sigpipe, begun_t *begun)
{
    return c->spec->inward ? fast_read(c) : fast_write(c, sigpipe, begun);
}

/* ---- decoding, with the kernel's own checks ------------------------------------ */

/* A datagram's address, sendto's or sendmsg's: read once, the very bytes
 * it is sent to.  0 when the length is bad (Python answers EINVAL). */
static int name_to_send(pid_t tid, unsigned long long at, int len, call_t *c)
{
    if (len < 0 || (size_t)len > sizeof c->name || !read_caller(tid, at, &c->name, (size_t)len))
        return 0;
    c->name_len = (socklen_t)len;
    return 1;
}

/* Where recvfrom's or recvmsg's sender address goes, its room, and where
 * its whole length goes. */
static int name_to_return(unsigned long long at, int room, unsigned long long len_at, call_t *c)
{
    if (room < 0)
        return 0;
    c->name_room = room;
    c->name_at = at;
    c->namelen_at = len_at;
    return 1;
}

/* recvfrom/sendto's address.  0 when the arguments are bad: Python
 * answers those (EINVAL, EFAULT) as the kernel does. */
static int decode_address(pid_t tid, const call_spec *spec, const unsigned long long *a, call_t *c)
{
    if (!spec->inward)
        return name_to_send(tid, a[4], (int)a[5], c);
    int32_t room;
    return a[5] && read_caller(tid, a[5], &room, sizeof room) && name_to_return(a[4], room, a[5], c);
}

/* The caller's iovec array: c->remote, c->nremote and c->count. */
static int decode_iovecs(pid_t tid, unsigned long long at, unsigned long long vlen, call_t *c)
{
    if (vlen == 0 || vlen > FAST_IOV_MAX || !read_caller(tid, at, c->remote, vlen * sizeof(struct iovec)))
        return 0;
    c->count = 0;
    for (unsigned long long i = 0; i < vlen; i++) {
        uintptr_t base = (uintptr_t)c->remote[i].iov_base;
        if ((ssize_t)c->remote[i].iov_len < 0 || base + c->remote[i].iov_len > TASK_SIZE_MAX)
            return 0;
        c->count += c->remote[i].iov_len;
    }
    c->nremote = (int)vlen;
    return c->count && c->count <= CHUNK;
}

/* recv/send flags the fast path knows (any other is Python's), on a
 * socket; MSG_NOSIGNAL and MSG_CMSG_CLOEXEC change no receive without
 * control data, but programs pass them */
static int socket_call(const call_spec *spec, int flags, call_t *c)
{
    int allowed = spec->inward ? (MSG_DONTWAIT | MSG_PEEK | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)
                               : (MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE);
    c->sock_flags = flags;
    return !(flags & ~allowed) && (c->e->mode == M_STREAM || c->e->mode == M_DATAGRAM);
}

/* sendmsg/recvmsg without control data.  A name: as for sendto/recvfrom. */
static int decode_message(pid_t tid, const call_spec *spec, const unsigned long long *a, call_t *c)
{
    struct {
        unsigned long long name;
        uint32_t namelen, pad;
        unsigned long long iov, iovlen, control, controllen;
    } h;
    if (!read_caller(tid, a[1], &h, sizeof h) || h.controllen || !socket_call(spec, (int)a[2], c) ||
        !decode_iovecs(tid, h.iov, h.iovlen, c))
        return 0;
    if (spec->inward)
        c->header_at = a[1];
    if (!h.name || (!spec->inward && !h.namelen))
        return 1;
    if (!spec->addressed || c->e->mode != M_DATAGRAM)
        return 0;
    return spec->inward ? name_to_return(h.name, (int)h.namelen, a[1] + 8, c)
                        : name_to_send(tid, h.name, (int)h.namelen, c);
}

/* Fill c from the notification; 0 when the call is not one for the fast path. */
static int decode(const struct seccomp_notif *n, const call_spec *spec, task *t, call_t *c)
{
    proc *p = t->p;
    const unsigned long long *a = n->data.args;
    int fd = (int)a[0];
    if (fd < 0 || fd >= p->nfds || !p->fds[fd])
        return 0;
    c->n = *n;
    c->spec = spec;
    c->pid = p->pid;
    c->tid = t->tid;
    c->fd = fd;
    c->e = p->fds[fd];
    c->kind = spec->kind;
    c->sock_flags = 0;
    c->offset = -1;
    c->nremote = 1;
    c->name_len = 0;
    c->name_at = c->namelen_at = c->header_at = 0;
    switch (spec->layout) {
    case L_BUF:
    case L_BUF_AT:
    case L_SOCK:
        c->count = (size_t)a[2];
        if (c->count == 0 || c->count > CHUNK || a[1] + c->count > TASK_SIZE_MAX || a[1] + c->count < a[1])
            return 0;
        c->remote[0].iov_base = (void *)(uintptr_t)a[1];
        c->remote[0].iov_len = c->count;
        if (spec->layout == L_BUF_AT) {
            c->offset = (long long)a[3];
            if (c->offset < 0 || c->e->mode != M_FILE)
                return 0;
        }
        if (spec->layout == L_SOCK) {
            if (!socket_call(spec, (int)a[3], c))
                return 0;
            c->kind = a[4] ? spec->kind : spec->kind_noaddr;
            if (a[4] && (!spec->addressed || c->e->mode != M_DATAGRAM || !decode_address(t->tid, spec, a, c)))
                return 0;
        }
        return 1;
    case L_IOV:
        return decode_iovecs(t->tid, a[1], a[2], c);
    case L_IOV_AT: /* preadv, pwritev: on x86-64 the whole offset is in pos_l */
        c->offset = (long long)a[3];
        return c->offset >= 0 && c->e->mode == M_FILE && decode_iovecs(t->tid, a[1], a[2], c);
    case L_MSG:
        return decode_message(t->tid, spec, a, c);
    }
    return 0;
}

/* ---- budgets: the bytes a policy lets the run move, per class and direction ----
 * Every call the fast path completes spends from the budgets it matches; a
 * call that a spent budget must stop (deny, kill) goes to Python, which
 * applies the action.  So a budget is overrun by at most the call that
 * crossed it. */
#define BUDGETS_MAX 16
typedef struct {
    char tag[8];        /* the class's --trace tag; "" for any class */
    int inward;
    int stops;          /* deny or kill: calls stop once it is spent */
    unsigned long long limit, total;
} budget_t;
static budget_t budgets[BUDGETS_MAX];
static int nbudgets;

static int budget_matches(const budget_t *b, const fd_entry *e, int inward)
{
    return b->inward == inward && (!b->tag[0] || !strcmp(b->tag, e->tag));
}

static int over_budget(const fd_entry *e, int inward)
{
    for (int i = 0; i < nbudgets; i++)
        if (budgets[i].stops && budgets[i].total >= budgets[i].limit && budget_matches(&budgets[i], e, inward))
            return 1;
    return 0;
}

static void spend(const fd_entry *e, int inward, unsigned long long moved)
{
    for (int i = 0; i < nbudgets; i++)
        if (budget_matches(&budgets[i], e, inward))
            budgets[i].total += moved;
}

static void finish(proc *p, const call_t *c, long long result, int sigpipe)
{
    /* a peek returns bytes but moves none: the totals count bytes moved */
    unsigned long long moved = result > 0 && !(c->sock_flags & MSG_PEEK) ? (unsigned long long)result : 0;
    record(p, c, result, moved, DONE);
    if (nbudgets && moved)
        spend(c->e, c->spec->inward, moved);
    if (sigpipe)
        syscall(SYS_tgkill, p->pid, c->tid, SIGPIPE);
    answer(&c->n, result);
    fast_calls++;
}

/* Python will take this call, once the lock is let go.  Callers check
 * handoffs_full() first, so there is always room. */
static void hand_off(handoffs_t *h, const struct seccomp_notif *n, begun_t begun)
{
    h->items[h->count].n = *n;
    h->items[h->count].begun = begun;
    h->count++;
}

/* The Python form of a handed-off call: ((id, tid, nr, arch, ip, args), done, rest). */
static PyObject *handoff_args(const struct seccomp_notif *n, const begun_t *begun)
{
    return Py_BuildValue("((KIiIK(KKKKKK))ny#)", (unsigned long long)n->id, n->pid, n->data.nr, n->data.arch,
                         (unsigned long long)n->data.instruction_pointer, (unsigned long long)n->data.args[0],
                         (unsigned long long)n->data.args[1], (unsigned long long)n->data.args[2],
                         (unsigned long long)n->data.args[3], (unsigned long long)n->data.args[4],
                         (unsigned long long)n->data.args[5], (Py_ssize_t)begun->done,
                         begun->rest ? begun->rest : "", (Py_ssize_t)begun->rest_len);
}

static int handoffs_full(const handoffs_t *h) { return h->count >= HANDOFF_MAX - 1; }

/* ---- parked calls: waiting without a thread per call ------------------------------ */

#define LISTENER_TAG ((void *)1) /* the listener's entry in parked_epoll */

/* A would-block on a blocking fd waits here: a socket with a receive or send
 * timeout is left to Python, which keeps deadlines. */
static int socket_has_timeout(const call_t *c)
{
    if (c->e->mode != M_STREAM && c->e->mode != M_DATAGRAM)
        return 0;
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    getsockopt(c->e->dup, SOL_SOCKET, c->spec->inward ? SO_RCVTIMEO : SO_SNDTIMEO, &tv, &len);
    return tv.tv_sec || tv.tv_usec;
}

static int caller_blocks(const call_t *c)
{
    if (c->sock_flags & MSG_DONTWAIT)
        return 0;
    int flags = fcntl(c->e->dup, F_GETFL);
    return flags >= 0 && !(flags & O_NONBLOCK);
}

/* A parked call waits on its fd's cached duplicate, registered once in
 * parked_epoll and re-armed (one-shot) with one epoll_ctl per park.  A
 * second call parked on the same fd meanwhile gets a dup of its own. */
static int arm(int fd, int registered, parked *pk)
{
    struct epoll_event ev = {.events = (pk->c.spec->inward ? EPOLLIN : EPOLLOUT) | EPOLLONESHOT, .data.ptr = pk};
    return epoll_ctl(parked_epoll, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
}

/* `begun`, when given, is the parked call's from then on. */
static int park(const call_t *c, int speculative, const begun_t *begun)
{
    parked *pk = calloc(1, sizeof *pk);
    if (!pk)
        return -1;
    pk->c = *c;
    if (begun)
        pk->begun = *begun;
    pk->speculative = speculative;
    pk->turn = loop_turn;
    fd_entry *e = c->e;
    if (!e->waiter) {
        if (arm(e->dup, e->registered, pk) < 0) {
            free(pk);
            return -1;
        }
        e->registered = 1;
        e->waiter = pk;
        pk->wait_fd = e->dup;
    } else {
        pk->wait_fd = dup(e->dup);
        if (pk->wait_fd < 0 || arm(pk->wait_fd, 0, pk) < 0) {
            if (pk->wait_fd >= 0)
                close(pk->wait_fd);
            free(pk);
            return -1;
        }
    }
    e->refs++;
    parked **tail = &parked_list;
    while (*tail)
        tail = &(*tail)->next;
    *tail = pk;
    parked_count++; /* the waiter's steady tick looks at it: no wake-up per park */
    return 0;
}

static void unpark(parked *pk)
{
    for (parked **pp = &parked_list; *pp; pp = &(*pp)->next)
        if (*pp == pk) {
            *pp = pk->next;
            break;
        }
    parked_count--;
    fd_entry *e = pk->c.e;
    if (e->waiter == pk) {
        /* The entry's registration stays, disarmed once it fired; if it
         * fires for this call after all, still_parked() sees it is gone. */
        e->waiter = NULL;
    } else {
        /* Closing our dup alone would not leave the epoll set: the
         * registration belongs to the open file, which the caller holds. */
        epoll_ctl(parked_epoll, EPOLL_CTL_DEL, pk->wait_fd, NULL);
        close(pk->wait_fd);
    }
    entry_release(e);
    free(pk->begun.rest);
    free(pk);
}

/* epoll_wait ran without the lock: the call may have been answered or
 * forgotten (its process exited) since. */
static int still_parked(const void *candidate)
{
    for (parked *pk = parked_list; pk; pk = pk->next)
        if (pk == candidate)
            return 1;
    return 0;
}

/* Try a parked call again; 1 when it left the parked list.  `polled`: the
 * receiver's epoll_wait found it ready. */
static int retry(parked *pk, handoffs_t *h, int polled)
{
    task *t = find_task(pk->c.tid);
    proc *p = t ? t->p : NULL;
    if (!p || p->pid != pk->c.pid) {
        unpark(pk); /* the thread is gone: nothing to answer */
        return 1;
    }
    int sigpipe = 0;
    long long result = pk->begun.rest ? resume_write(&pk->c, &pk->begun, &sigpipe)
                                      : attempt(&pk->c, &sigpipe, &pk->begun);
    if (result == WOULD_BLOCK || result == BEGUN) {
        arm(pk->wait_fd, 1, pk);
        return 0;
    }
    if (pk->speculative && polled && pk->turn + 1 == loop_turn)
        pk->c.e->reads_wait = 0; /* ready at the first look: it need not have parked */
    if (result == TO_PYTHON)
        hand_off(h, &pk->c.n, (begun_t){0});
    else
        finish(p, &pk->c, result, sigpipe);
    unpark(pk);
    return 1;
}

/* Retry the parked calls among epoll's events (the listener shares the set:
 * 1 when it was among them).  A call already gone is skipped; one that
 * finds the hand-offs full is re-armed, and served next time.  `polled`: as
 * for retry. */
static int serve_events(const struct epoll_event *events, int ready, handoffs_t *h, int polled)
{
    int listener_ready = 0;
    for (int i = 0; i < ready; i++) {
        parked *pk = events[i].data.ptr;
        if (pk == LISTENER_TAG)
            listener_ready = 1;
        else if (!still_parked(pk))
            continue;
        else if (handoffs_full(h))
            arm(pk->wait_fd, 1, pk);
        else
            retry(pk, h, polled);
    }
    return listener_ready;
}

/* Serve the parked calls whose fds are ready now.  The receiver calls it
 * after every call that moved bytes: a traced writer wakes a traced reader
 * with no thread in between (a cross-CPU wake-up costs 30-90x a call). */
static void serve_ready(handoffs_t *h)
{
    if (!parked_count)
        return;
    struct epoll_event events[64];
    serve_events(events, epoll_wait(parked_epoll, events, 64, 0), h, 0);
}

static void drop_parked_of(int pid, int tid)
{
    for (parked *pk = parked_list, *next; pk; pk = next) {
        next = pk->next;
        if (pk->c.pid == pid && (tid < 0 || pk->c.tid == tid))
            unpark(pk);
    }
}

/* The signal masks a parked caller has now (/proc/<tid>/status). */
static int task_signals(int tid, unsigned long long *pending, unsigned long long *shared,
                        unsigned long long *blocked, int *threads)
{
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%d/status", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = 0;
    char *at;
    *threads = (at = strstr(text, "\nThreads:")) ? atoi(at + 9) : 1;
    *pending = (at = strstr(text, "\nSigPnd:")) ? strtoull(at + 8, NULL, 16) : 0;
    *shared = (at = strstr(text, "\nShdPnd:")) ? strtoull(at + 8, NULL, 16) : 0;
    *blocked = (at = strstr(text, "\nSigBlk:")) ? strtoull(at + 8, NULL, 16) : 0;
    return 0;
}

/* Every TICK while calls are parked (kernel-facts §2.2 steps 5-6): a caller
 * killed meanwhile is forgotten; a deliverable signal is let in with
 * -ERESTARTSYS (the handler runs; the call restarts or fails with EINTR, as
 * natively).  When the thread cannot be shown to hold the signal (one sent
 * to a multi-threaded process), Python takes the call: it has the ptrace way. */
static void tick_parked(handoffs_t *h)
{
    for (parked *pk = parked_list, *next; pk && !handoffs_full(h); pk = next) {
        next = pk->next;
        __u64 id = pk->c.n.id;
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0) {
            unpark(pk);
            continue;
        }
        unsigned long long pending, shared, blocked;
        int threads;
        if (task_signals(pk->c.tid, &pending, &shared, &blocked, &threads) < 0)
            continue;
        if (!((pending | shared) & ~blocked)) {
            /* A shutdown(SHUT_WR) of a unix stream socket ends a blocked
             * send natively, and shows in no poll event: look again. */
            if (!pk->c.spec->inward && pk->c.e->mode == M_STREAM)
                retry(pk, h, 0);
            continue;
        }
        proc *p = find_proc(pk->c.pid);
        if (pk->begun.rest) {
            /* as the kernel does: what went out stands, and is the result */
            if (p)
                finish(p, &pk->c, (long long)pk->begun.done, 0);
            else
                answer(&pk->c.n, (long long)pk->begun.done);
        } else if ((pending & ~blocked) || threads == 1) {
            if (p)
                record(p, &pk->c, 0, 0, INTERRUPTED);
            answer(&pk->c.n, -512 /* ERESTARTSYS */);
        } else {
            hand_off(h, &pk->c.n, (begun_t){0});
        }
        unpark(pk);
    }
}

/* Give the collected calls to Python, in order (the lock not held, no GIL). */
static int run_handoffs(handoffs_t *h)
{
    int failed = 0;
    if (graveyard && !h->count) {
        PyGILState_STATE g = PyGILState_Ensure();
        bury();
        PyGILState_Release(g);
    }
    for (int i = 0; i < h->count; i++) {
        begun_t *begun = &h->items[i].begun;
        if (!failed) {
            PyGILState_STATE g = PyGILState_Ensure();
            bury();
            PyObject *call = handoff_args(&h->items[i].n, begun);
            PyObject *r = call ? PyObject_CallObject(handler, call) : NULL;
            Py_XDECREF(call);
            if (r)
                Py_DECREF(r);
            else
                failed = 1;
            PyGILState_Release(g);
            slow_calls++;
        }
        free(begun->rest);
    }
    h->count = 0;
    return failed ? -1 : 0;
}

/* After a call on e moved bytes, the parked calls it can have made ready
 * are the opposite ones on its peer channel: a write readies the peer's
 * readers, a read frees room for the peer's writers.  When every parked
 * call's channel is known they are retried directly; otherwise epoll says. */
static void serve_peers(const call_t *done, handoffs_t *h)
{
    if (!parked_count)
        return;
    unsigned long long peer = done->e->peer_key;
    int unknown = !peer;
    for (parked *pk = parked_list; pk && !unknown; pk = pk->next)
        unknown = !pk->c.e->key;
    if (unknown) {
        serve_ready(h);
        return;
    }
    for (parked *pk = parked_list, *next; pk && !handoffs_full(h); pk = next) {
        next = pk->next;
        if (pk->c.e->key == peer && pk->c.spec->inward != done->spec->inward)
            retry(pk, h, 0);
    }
}

/* ---- lifecycle calls that need nothing from Python at once ------------------------- */

/* What the fast path did that Python's view must learn; Python takes the
 * notes (take_notes) before it next looks at a process. */
enum { NOTE_CLOSE = 1, NOTE_EXIT_GROUP, NOTE_THREAD_EXIT, NOTE_FD_MADE, NOTE_CONNECTED, NOTE_SPAWNED, NOTE_REAPED,
       NOTE_CLASSIFIED, NOTE_ADMITTED };

/* NOTE_CLASSIFIED: what classify_here saw of the fd, for Python's own rules
 * (classify.classify) to give Python's view of it, and the fd's counters. */
typedef struct {
    Counters *counters;       /* a reference for Python */
    unsigned mode;            /* the fstat of our copy */
    unsigned long long dev, ino, rdev;
    int family, type, protocol; /* a socket's; family 0 for a pipe */
    struct sockaddr_storage local, remote;
    socklen_t local_len, remote_len;
    int connected;
    unsigned peer_inode;      /* a unix socket's other end; 0 when none */
} classified_t;

typedef struct {
    int what, pid, tid, value;
    unsigned long long seq;
    int pidfd;                /* NOTE_SPAWNED: the child's, for Python to keep; else -1 */
    classified_t *facts;      /* NOTE_CLASSIFIED's, malloc'd; else NULL */
} note_t;
static note_t *notes;
static size_t notes_len, notes_cap;

static int add_note_with_pidfd(int what, int pid, int tid, int value, unsigned long long seq, int pidfd)
{
    if (notes_len == notes_cap) {
        size_t cap = notes_cap ? notes_cap * 2 : 256;
        note_t *grown = realloc(notes, cap * sizeof *grown);
        if (!grown)
            return 0;
        notes = grown;
        notes_cap = cap;
    }
    notes[notes_len++] = (note_t){what, pid, tid, value, seq, pidfd, NULL};
    return 1;
}

static int add_note(int what, int pid, int tid, int value, unsigned long long seq)
{
    return add_note_with_pidfd(what, pid, tid, value, seq, -1);
}

/* The NOTE_SPAWNED of child not yet taken, or NULL. */
static note_t *spawn_note(int child)
{
    for (size_t i = 0; i < notes_len; i++)
        if (notes[i].what == NOTE_SPAWNED && notes[i].value == child)
            return &notes[i];
    return NULL;
}

static int spawn_noted(int child) { return spawn_note(child) != NULL; }

/* A lifecycle call's record, up to its result: {"schema":1,...,"result": */
static void put_call_head(out_t *o, int pid, int tid, const char *name, unsigned long long seq)
{
    put_envelope(o, "call", (long long)seq, pid);
    PUT(o, ",\"syscall\":\"");
    put_str(o, name);
    PUT(o, "\",\"kind\":\"");
    put_str(o, name);
    PUT(o, "\",\"tid\":");
    put_i64(o, tid);
    PUT(o, ",\"result\":");
}

static void record_lifecycle(proc *p, task *t, const char *name, const char *field, long long value,
                             unsigned long long seq)
{
    if (counting_rules)
        rule_calls[0]++;
    char line[512];
    out_t o = {line, line + sizeof line - 1};
    put_call_head(&o, p->pid, t->tid, name, seq);
    PUT(&o, "null,\"");
    put_str(&o, field);
    PUT(&o, "\":");
    put_i64(&o, value);
    PUT(&o, "}");
    events_add(line, (size_t)(o.at - line));
    if (trace_fd >= 0) {
        char tl[128];
        int m = snprintf(tl, sizeof tl, "[%d] %s(%lld) = ?\n", p->pid, name, value);
        if (m > 0 && m < (int)sizeof tl)
            write_all(trace_fd, tl, (size_t)m, &trace_error);
    }
}

static void let_through(const struct seccomp_notif *n)
{
    struct seccomp_notif_resp r;
    memset(&r, 0, sizeof r);
    r.id = n->id;
    r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

/* close, exit, exit_group, shutdown: recorded, our copies dropped, run by the kernel. */
static int lifecycle(const struct seccomp_notif *n, const call_spec *spec, task *t)
{
    proc *p = t->p;
    int arg = (int)n->data.args[0];
    unsigned long long seq = p->next_seq++;
    switch (spec->layout) {
    case L_CLOSE:
        forget_fd(p, arg); /* our copy goes before the close takes effect: the peer sees EOF */
        picture_remove(p, arg, arg);
        record_lifecycle(p, t, "close", "fd", arg, seq);
        add_note(NOTE_CLOSE, p->pid, t->tid, arg, seq);
        break;
    case L_EXIT_GROUP:
        /* Its fds close as it exits, and its other threads' waits end. */
        drop_parked_of(p->pid, -1);
        drop_all_fds(p);
        record_lifecycle(p, t, "exit_group", "code", arg & 0xff, seq);
        add_note(NOTE_EXIT_GROUP, p->pid, t->tid, arg & 0xff, seq);
        break;
    case L_EXIT:
        record_lifecycle(p, t, "exit", "code", arg & 0xff, seq);
        add_note(NOTE_THREAD_EXIT, p->pid, t->tid, arg & 0xff, seq);
        break;
    case L_SHUTDOWN:
        /* The endpoints stay as they are: nothing for Python to learn. */
        record_lifecycle(p, t, "shutdown", "fd", arg, seq);
        break;
    }
    let_through(n);
    fast_calls++;
    return 1;
}

/* ---- calls that make fds, without Python ------------------------------------------
 * socket, accept, open, pipe...: the record's fields are read here, the new
 * fd's number predicted from the picture, and the call let run.  At the
 * thread's next call the result is learnt (settle_pending), as Python's
 * _settle_outcome learns it, and Python is told (NOTE_FD_MADE) that the
 * number names a new file.  connect goes the same way: its result is
 * whether the socket has a peer at that next call.  Anything unusual stays
 * Python's. */

#define FIELDS_MAX (2 * 4096 + 256)

/* ,"path":"..." for a path of printable ASCII; 0 for any other (Python's
 * surrogateescape rules apply), or one that cannot be read whole. */
static int put_path(out_t *o, pid_t tid, unsigned long long address)
{
    char path[4096];
    size_t len = 0;
    if (!address)
        return 0;
    for (;;) {
        if (len == sizeof path)
            return 0; /* longer than Python reads */
        size_t room = 4096 - (address + len) % 4096;
        if (room > sizeof path - len)
            room = sizeof path - len;
        struct iovec local = {path + len, room}, remote = {(void *)(uintptr_t)(address + len), room};
        ssize_t got = process_vm_readv(tid, &local, 1, &remote, 1, 0);
        if (got <= 0)
            return 0;
        char *end = memchr(path + len, 0, (size_t)got);
        if (end) {
            len = (size_t)(end - path);
            break;
        }
        len += (size_t)got;
        if ((size_t)got < room)
            return 0;
    }
    PUT(o, ",\"path\":\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)path[i];
        if (ch < 0x20 || ch > 0x7e)
            return 0;
        if (ch == '"' || ch == '\\')
            PUT(o, "\\");
        put(o, path + i, 1);
    }
    PUT(o, "\"");
    return 1;
}

/* classify.format_sockaddr's "1.2.3.4:80" or "[::1]:80"; 0 for an address
 * Python's ipaddress writes otherwise than inet_ntop (an IPv4 address in an
 * IPv6 one: ::ffff:1.2.3.4 is ::ffff:102:304 there), or with a scope. */
static int format_inet(char *out, size_t size, const struct sockaddr_storage *a)
{
    char host[INET6_ADDRSTRLEN];
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)a;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%u", host, (unsigned)ntohs(in->sin_port));
        return 1;
    }
    const struct sockaddr_in6 *in6 = (const void *)a;
    static const uint8_t zeros[10];
    const uint8_t *b = in6->sin6_addr.s6_addr;
    int embeds_ipv4 = !memcmp(b, zeros, 10) && ((b[10] == 0xff && b[11] == 0xff) || (!b[10] && !b[11] &&
                      (b[12] || b[13] || b[14] || b[15] > 1)));
    if (embeds_ipv4 || in6->sin6_scope_id || !inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host))
        return 0;
    snprintf(out, size, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
    return 1;
}

static unsigned inet_port(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET ? ((const struct sockaddr_in *)(const void *)a)->sin_port
                                   : ((const struct sockaddr_in6 *)(const void *)a)->sin6_port;
}

/* classify.format_sockaddr's name of a unix socket: "unnamed", a path, or
 * "@" and an abstract name; 0 for one with bytes JSON or UTF-8 decoding
 * would change (Python formats those). */
static int format_unix(char *out, size_t size, const struct sockaddr_storage *a, socklen_t len)
{
    const struct sockaddr_un *un = (const void *)a;
    size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
    const char *name = un->sun_path;
    if (!n) {
        snprintf(out, size, "unnamed");
        return 1;
    }
    int abstract = name[0] == 0;
    if (!abstract)
        n = strnlen(name, n);
    if (n + 2 > size)
        return 0;
    for (size_t i = abstract; i < n; i++)
        if (name[i] < 0x20 || name[i] > 0x7e || name[i] == '"' || name[i] == '\\')
            return 0;
    out[0] = '@';
    memcpy(out + abstract, name + abstract, n - abstract);
    out[n] = 0;
    return 1;
}

/* classify.format_sockaddr's text of len bytes of a sockaddr, for the
 * families it is written here for; 0 for the others, and for what
 * format_inet or format_unix leaves to Python. */
static int format_sockaddr(char *out, size_t size, const struct sockaddr_storage *a, socklen_t len)
{
    if (a->ss_family == AF_UNIX)
        return format_unix(out, size, a, len);
    if (a->ss_family == AF_INET) /* from 16 bytes on; 8 to 15 are Python's */
        return len >= sizeof(struct sockaddr_in) && format_inet(out, size, a);
    /* an AF_INET6 address from 24 bytes on */
    return a->ss_family == AF_INET6 && len >= 24 && format_inet(out, size, a);
}

/* ,"address":"1.2.3.4:80" (or "[::1]:80", or a unix socket's name) for the
 * sockaddr of a connect, read as Python reads it (addrlen bytes, at most
 * 128) and formatted as classify.format_sockaddr does; 0 for any other, or
 * one format_inet or format_unix leaves to Python. */
static int put_socket_address(out_t *o, pid_t tid, unsigned long long address, unsigned long long addrlen)
{
    struct sockaddr_storage a;
    memset(&a, 0, sizeof a);
    size_t size = (addrlen & 0xFFFFFFFF) < sizeof a ? (size_t)(addrlen & 0xFFFFFFFF) : sizeof a;
    if (!address || size < sizeof(sa_family_t) || !read_caller(tid, address, &a, size))
        return 0;
    char text[128];
    if (!format_sockaddr(text, sizeof text, &a, (socklen_t)size))
        return 0;
    PUT(o, ",\"address\":\"");
    put_str(o, text);
    PUT(o, "\"");
    return 1;
}

/* 1 when the socket has a peer (connect's settle, as engine._connect_outcome). */
static int socket_has_peer(const proc *p, int fd)
{
    int copy = copy_of(p, fd);
    if (copy < 0)
        return 0;
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int connected = getpeername(copy, (struct sockaddr *)&peer, &len) == 0;
    close(copy);
    return connected;
}

/* 1 when two of the process's fds hold the same file (dup2's settle, as
 * engine._same_file). */
static int same_file(const proc *p, int fd_a, int fd_b)
{
    struct stat a, b;
    int copy_a = copy_of(p, fd_a);
    if (copy_a < 0)
        return 0;
    int copy_b = copy_of(p, fd_b);
    int same = copy_b >= 0 && fstat(copy_a, &a) == 0 && fstat(copy_b, &b) == 0 && a.st_dev == b.st_dev &&
               a.st_ino == b.st_ino;
    close(copy_a);
    if (copy_b >= 0)
        close(copy_b);
    return same;
}

/* Threads whose fork may not have settled yet: admit() looks for a child's parent there. */
#define SPAWNING_MAX 64
static struct { int pid, tid; } spawning[SPAWNING_MAX]; /* threads whose fork may still be pending */
static int nspawning;

static void spawning_add(int pid, int tid)
{
    for (int i = 0; i < nspawning; i++)
        if (spawning[i].tid == tid)
            return;
    if (nspawning < SPAWNING_MAX)
        spawning[nspawning].pid = pid, spawning[nspawning].tid = tid, nspawning++;
}

static int pending_call(const struct seccomp_notif *n, const call_spec *spec, task *t)
{
    proc *p = t->p;
    const unsigned long long *a = n->data.args;
    if (trace_fd >= 0)
        return 0; /* --trace shows the arguments */
    int picks_number = spec->layout < L_DUP2;
    if ((!p->picture_known || p->shares_fds) && picks_number)
        return 0; /* Python lists the fds once; threads' new numbers are not told apart */
    if (spec->layout == L_FCNTL_DUPFD && a[1] != 0 /* F_DUPFD */ && a[1] != 1030 /* F_DUPFD_CLOEXEC */)
        return 0; /* traced for a policy's guard (F_SETOWN_EX) */
    char fields[FIELDS_MAX];
    out_t o = {fields, fields + sizeof fields};
    unsigned long long pair_at = spec->layout == L_PIPE ? a[0] : a[3];
    switch (spec->layout) {
    case L_OPEN_PATH0:
    case L_OPEN_PATH1:
        if (!put_path(&o, (pid_t)n->pid, a[spec->layout == L_OPEN_PATH0 ? 0 : 1]))
            return 0;
        break;
    case L_ACCEPT:
    case L_DUP:
    case L_FCNTL_DUPFD:
        PUT(&o, ",\"fd\":");
        put_i64(&o, (int)a[0]);
        break;
    case L_DUP2:
        PUT(&o, ",\"fd\":");
        put_i64(&o, (int)a[0]);
        PUT(&o, ",\"newfd\":");
        put_i64(&o, (int)a[1]);
        break;
    case L_CONNECT:
        if (!put_socket_address(&o, (pid_t)n->pid, a[1], a[2]))
            return 0;
        PUT(&o, ",\"fd\":");
        put_i64(&o, (int)a[0]);
        break;
    case L_SPAWN: {
        unsigned long long flags = strcmp(spec->name, "clone") ? 0 : a[0];
        if (flags & (CLONE_THREAD | CLONE_FILES))
            return 0; /* Python shares the fd view before the new task can make an fd */
        char hex[24];
        snprintf(hex, sizeof hex, "0x%llx", flags);
        PUT(&o, ",\"flags\":\"");
        put_str(&o, hex);
        PUT(&o, "\"");
        break;
    }
    case L_REAP:
        if (p->threaded)
            return 0; /* its children are every thread's */
        PUT(&o, ",\"id\":");
        put_i64(&o, (int)a[strcmp(spec->name, "wait4") ? 1 : 0]);
        break;
    case L_SOCKETPAIR:
    case L_SOCKET:
        PUT(&o, ",\"domain\":");
        put_u64(&o, a[0]);
        PUT(&o, ",\"socket_type\":");
        put_u64(&o, a[1] & 0xF);
        PUT(&o, ",\"protocol\":");
        put_u64(&o, a[2]);
        break;
    }
    size_t len = (size_t)(o.at - fields);
    pending_t *pd = calloc(1, sizeof *pd + len);
    if (!pd)
        return 0;
    if (makes_pair(spec->layout)) {
        if (!read_caller((pid_t)n->pid, pair_at, pd->before, sizeof pd->before))
            goto python;
        for (int i = 0; i < 2; i++) {
            int open = process_has_fd(p, pd->before[i], L_NONE);
            if (open < 0)
                goto python;
            pd->open_before[i] = (uint8_t)open;
        }
    } else if (spec->layout == L_CONNECT) {
        pd->expected = (int)a[0];
        forget_fd(p, pd->expected); /* its endpoints change: classified afresh */
    } else if (spec->layout == L_DUP2) {
        pd->source = (int)a[0];
        pd->expected = (int)a[1];
    } else if (spec->layout == L_SPAWN || spec->layout == L_REAP) {
        pd->nchildren = thread_children(p->pid, (int)n->pid, pd->children, CHILDREN_MAX);
        if (pd->nchildren < 0 || pd->nchildren > CHILDREN_MAX)
            goto python;
        if (spec->layout == L_REAP && !children_known(pd->children, pd->nchildren))
            goto python; /* Python takes them in before the wait can reap them */
    } else {
        int base = spec->layout == L_FCNTL_DUPFD && (int)a[2] > 0 ? (int)a[2] : 0;
        pd->expected = picture_free_from(p, base);
        int open = process_has_fd(p, pd->expected, L_NONE);
        if (open > 0)
            picture_forget(p); /* an fd made by a call superv does not see: Python lists them again */
        if (open != 0)
            goto python;
    }
    pd->layout = spec->layout;
    pd->pair_at = pair_at;
    pd->name = spec->name;
    pd->seq = p->next_seq++;
    pd->fields_len = len;
    memcpy(pd->fields, fields, len);
    t->pending = pd;
    if (spec->layout == L_SPAWN)
        spawning_add(p->pid, t->tid);
    if (spec->layout == L_DUP2 && pd->source != pd->expected && pd->expected >= 0) {
        forget_fd(p, pd->expected); /* newfd is closed by the call, as Python's on_fd_replace drops it */
        add_note(NOTE_CLOSE, p->pid, t->tid, pd->expected, pd->seq);
    }
    if (counting_rules)
        rule_calls[0]++;
    let_through(n);
    fast_calls++;
    return 1;
python:
    free(pd);
    return 0;
}

/* Of the numbers open now, the lowest not in `before` (the picture until
 * now) nor `skip`: the new fd, when the predicted number was not it. */
static int new_in_listing(proc *p, const uint64_t *before, int before_words, int skip)
{
    for (int w = 0; w < p->open_words; w++) {
        uint64_t fresh = p->open_bits[w] & ~(w < before_words ? before[w] : 0);
        for (; fresh; fresh &= fresh - 1) {
            int fd = w * 64 + __builtin_ctzll(fresh);
            if (fd != skip)
                return fd;
        }
    }
    return -1;
}

/* A fork child's picture as it was at the fork: its parent's, taken when the
 * fork settled (at the parent's next call, before that call can close
 * anything).  The child gets it when Python takes it in (picture_copy),
 * which can come after the parent closed its ends of a pipe, say.  A child
 * taken in before that gets its parent's picture as it is, the same. */
typedef struct forked_picture {
    int child, words;
    struct forked_picture *next;
    uint64_t bits[]; /* the open words, then the fresh words */
} forked_picture;
#define FORKED_PICTURES_MAX 256
static forked_picture *forked_pictures; /* the newest first */

static forked_picture *forked_picture_take(int child)
{
    for (forked_picture **at = &forked_pictures; *at; at = &(*at)->next)
        if ((*at)->child == child) {
            forked_picture *found = *at;
            *at = found->next;
            return found;
        }
    return NULL;
}

static void forked_picture_keep(const proc *parent, int child)
{
    if (!parent->picture_known)
        return;
    int count = 0;
    for (forked_picture **at = &forked_pictures; *at; at = &(*at)->next)
        if (++count >= FORKED_PICTURES_MAX) { /* children never taken in: the oldest go */
            forked_picture *old = *at;
            *at = NULL;
            while (old) {
                forked_picture *next = old->next;
                free(old);
                old = next;
            }
            break;
        }
    size_t size = (size_t)parent->open_words * sizeof(uint64_t);
    forked_picture *f = malloc(sizeof *f + 2 * size);
    if (!f)
        return;
    f->child = child;
    f->words = parent->open_words;
    if (size) {
        memcpy(f->bits, parent->open_bits, size);
        memcpy(f->bits + parent->open_words, parent->fresh_bits, size);
    }
    f->next = forked_pictures;
    forked_pictures = f;
}

/* A fork child's picture: its parent's at the fork.  -1 out of memory. */
static int picture_inherit(proc *child, const proc *parent)
{
    forked_picture *at_fork = forked_picture_take(child->pid);
    picture_forget(child);
    if (!at_fork && !parent->picture_known)
        return 0;
    int words = at_fork ? at_fork->words : parent->open_words;
    if (picture_grow(child, words) < 0) {
        free(at_fork);
        return -1;
    }
    size_t size = (size_t)words * sizeof(uint64_t);
    if (words) {
        memcpy(child->open_bits, at_fork ? at_fork->bits : parent->open_bits, size);
        memcpy(child->fresh_bits, at_fork ? at_fork->bits + words : parent->fresh_bits, size);
    }
    free(at_fork);
    child->picture_known = 1;
    return 0;
}

/* fork, wait: the child made is the one among the thread's children after
 * the call and not before; the one reaped, before and not after (as
 * engine._spawn_outcome and _settle_outcome); -1 when there is none.
 * Python takes a new child in (NOTE_SPAWNED, with a pidfd opened now: by
 * the time Python reads the note, the child may be reaped and its pid
 * another process's), and lets a reaped one go (NOTE_REAPED). */
static int spawned_or_reaped(const task *t, const pending_t *pd)
{
    proc *p = t->p;
    int now[CHILDREN_MAX], child = -1;
    int count = thread_children(p->pid, t->tid, now, CHILDREN_MAX);
    if (count < 0 || count > CHILDREN_MAX)
        return -1;
    int spawn = pd->layout == L_SPAWN;
    const int *after = spawn ? now : pd->children, *before = spawn ? pd->children : now;
    int nafter = spawn ? count : pd->nchildren, nbefore = spawn ? pd->nchildren : count;
    for (int i = 0; i < nafter; i++)
        if (!holds_pid(before, nbefore, after[i])) {
            if (child < 0 || after[i] < child)
                child = after[i];
            if (!spawn) {
                ended_remove(after[i]);
                free(forked_picture_take(after[i]));
                /* A new process can take its pid before Python lets it go:
                 * its calls must not reach this one's tasks. */
                proc *reaped = find_proc(after[i]);
                if (reaped) {
                    reaped->reaped = 1;
                    forget_tasks_of(reaped);
                }
                add_note(NOTE_REAPED, p->pid, t->tid, after[i], pd->seq);
            }
        }
    if (spawn && child > 0 && !find_proc(child)) {
        int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
        if (pidfd >= 0 && !add_note_with_pidfd(NOTE_SPAWNED, p->pid, t->tid, child, pd->seq, pidfd))
            close(pidfd);
        forked_picture_keep(p, child);
    }
    return child;
}

/* Learn what the call did (thread_gone: it never called again, and no one
 * can tell), record it, and tell Python of the new fds. */
static void settle_pending(task *t, int thread_gone)
{
    pending_t *pd = t->pending;
    proc *p = t->p;
    t->pending = NULL;
    int made[2], nmade = 0, connected = 0, replaced = 0, child = -1;
    if (thread_gone) {
    } else if (pd->layout == L_SPAWN || pd->layout == L_REAP) {
        child = spawned_or_reaped(t, pd);
    } else if (pd->layout == L_CONNECT) {
        connected = socket_has_peer(p, pd->expected);
    } else if (pd->layout == L_DUP2) {
        /* dup3 with newfd == oldfd fails (EINVAL); the number was dropped at the call */
        if (!(pd->source == pd->expected && !strcmp(pd->name, "dup3")) && same_file(p, pd->source, pd->expected)) {
            picture_add(p, pd->expected);
            replaced = 1;
        }
    } else if (makes_pair(pd->layout)) {
        int pair[2];
        if (read_caller(t->tid, pd->pair_at, pair, sizeof pair)) {
            /* The kernel writes the array only on success, with fds that
             * were not open before: unchanged, and naming fds open before,
             * it was not written. */
            int named_open_before = 0;
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++)
                    named_open_before |= pd->open_before[j] && pair[i] == pd->before[j];
            int written = pair[0] != pd->before[0] || pair[1] != pd->before[1] || !named_open_before;
            if (written && process_has_fd(p, pair[0], L_NONE) == 1 && process_has_fd(p, pair[1], L_NONE) == 1) {
                made[0] = pair[0], made[1] = pair[1];
                nmade = 2;
            }
        }
    } else if (process_has_fd(p, pd->expected, pd->layout) == 1) {
        made[nmade++] = pd->expected;
    } else { /* failed, or another thread took that number: ask /proc */
        int known = p->picture_known, words = p->open_words;
        uint64_t *before = known && words ? malloc((size_t)words * sizeof *before) : NULL;
        if (before)
            memcpy(before, p->open_bits, (size_t)words * sizeof *before);
        int any_known = 0;
        for (int w = 0; before && w < words; w++)
            any_known |= before[w] != 0;
        if (picture_list(p) == 0 && any_known) { /* without a picture, any fd could be new */
            int fd = new_in_listing(p, before, words, pd->expected);
            if (fd >= 0)
                made[nmade++] = fd;
        }
        free(before);
    }
    for (int i = 0; i < nmade; i++) {
        forget_fd(p, made[i]); /* a number reused: classified afresh */
        if (picture_add(p, made[i]) == 0)
            p->fresh_bits[made[i] / 64] |= 1ULL << (made[i] % 64);
        add_note(NOTE_FD_MADE, p->pid, t->tid, made[i], pd->seq);
    }
    if (pd->layout == L_CONNECT) /* over: a view made while it ran is stale */
        add_note(NOTE_CONNECTED, p->pid, t->tid, pd->expected, pd->seq);
    char line[FIELDS_MAX + 512];
    out_t o = {line, line + sizeof line - 1};
    put_call_head(&o, p->pid, t->tid, pd->name, pd->seq);
    if (nmade)
        put_i64(&o, makes_pair(pd->layout) ? 0 : made[0]);
    else if (replaced)
        put_i64(&o, pd->expected);
    else if (connected)
        PUT(&o, "0");
    else if (child > 0)
        put_i64(&o, child);
    else
        PUT(&o, "null");
    put(&o, pd->fields, pd->fields_len);
    if (nmade == 2) {
        PUT(&o, ",\"fds\":[");
        put_i64(&o, made[0]);
        PUT(&o, ",");
        put_i64(&o, made[1]);
        PUT(&o, "]");
    } else if (!nmade && !connected && !replaced && child < 0) {
        /* a connect in progress or failed, a wait that reaped nothing, a
         * failed fork: they tell nothing (see _settle_outcome) */
        if (thread_gone || pd->layout >= L_CONNECT)
            PUT(&o, ",\"outcome\":\"unknown\"");
        else
            PUT(&o, ",\"outcome\":\"failed\"");
    }
    PUT(&o, "}");
    events_add(line, (size_t)(o.at - line));
    free(pd);
}

/* ---- classifying an fd here -------------------------------------------------------
 * A pipe, or a TCP, UDP or unix socket, that a call of the fast path made
 * (accept, pipe, socket...) is classified here at its first data call, as
 * classify.py would, when no policy and no --trace needs Python's view first:
 * that first call was a trip to Python for every connection and every pipe
 * (four of the five trips of a round of the seed scenario).  The "fd" event
 * is written here, in its place before the call's record; Python learns the
 * rest from the note (NOTE_CLASSIFIED: the facts, which classify.classify
 * turns into the same classification, and the counters).  Only for fds
 * Python has no view of (fresh_bits), in a process without threads: another
 * thread's call could change the fd meanwhile (a connect). */

static int bookkeeping_here;
static dev_t pipefs_device;
#define SPARE_COUNTERS_MAX 256
/* Counters Python made for fds classified here (a Python object is made
 * with the GIL); each holds two references: the entry's and the note's. */
static Counters *spare_counters[SPARE_COUNTERS_MAX];
static int spare_count;

/* The name of a channel, as engine._channel_keys gives it: FNV-1a of its text. */
static unsigned long long channel_key(const char *text)
{
    unsigned long long h = 14695981039346656037ULL;
    for (; *text; text++)
        h = (h ^ (unsigned char)*text) * 1099511628211ULL;
    return h ? h : 1;
}

/* p's view of fd becomes e, made from these (it takes the reference to
 * counters, and dup); NULL when out of memory (nothing taken). */
static fd_entry *entry_install(proc *p, int fd, int dup, int mode, int is_net, const char *tag, const char *fragment,
                               Py_ssize_t fragment_len, Counters *counters, unsigned long long key,
                               unsigned long long peer_key, int tcp, const int16_t *rule_of_kind)
{
    if (fd >= p->nfds) {
        int size = p->nfds ? p->nfds : 64;
        while (size <= fd)
            size *= 2;
        fd_entry **grown = realloc(p->fds, sizeof *grown * (size_t)size);
        if (!grown)
            return NULL;
        memset(grown + p->nfds, 0, sizeof *grown * (size_t)(size - p->nfds));
        p->fds = grown;
        p->nfds = size;
    }
    fd_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->fragment = malloc((size_t)fragment_len))) {
        free(e);
        return NULL;
    }
    memcpy(e->fragment, fragment, (size_t)fragment_len);
    e->fragment_len = fragment_len;
    memcpy(e->rule_of_kind, rule_of_kind, sizeof e->rule_of_kind);
    e->refs = 1;
    e->key = key;
    e->peer_key = peer_key;
    e->discards_by_trunc = (uint8_t)tcp;
    e->dup = dup;
    e->mode = (uint8_t)mode;
    e->is_net = (uint8_t)is_net;
    snprintf(e->tag, sizeof e->tag, "%s", tag);
    e->counters = counters;
    drop_entry(p->fds[fd]);
    p->fds[fd] = e;
    return e;
}

/* A unix socket's other end, by inode, as kernel.unix_peer_inode asks
 * sock_diag for it; 0 when it has none. */
static unsigned unix_peer_inode(unsigned inode)
{
    int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (s < 0)
        return 0;
    struct {
        struct nlmsghdr header;
        struct unix_diag_req request;
    } ask = {.header = {.nlmsg_len = sizeof ask, .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST,
                        .nlmsg_seq = 1},
             .request = {.sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_ino = inode,
                         .udiag_show = UDIAG_SHOW_PEER, .udiag_cookie = {~0u, ~0u}}};
    char reply[8192];
    ssize_t got = -1;
    if (send(s, &ask, sizeof ask, 0) == (ssize_t)sizeof ask)
        got = TEMP_FAILURE_RETRY(recv(s, reply, sizeof reply, 0));
    close(s);
    const struct nlmsghdr *h = (const void *)reply;
    if (got < (ssize_t)(NLMSG_HDRLEN + sizeof(struct unix_diag_msg)) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
        h->nlmsg_len > (size_t)got)
        return 0;
    size_t at = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct unix_diag_msg));
    while (at + 4 <= h->nlmsg_len) {
        unsigned short size, kind;
        memcpy(&size, reply + at, 2);
        memcpy(&kind, reply + at + 2, 2);
        if (size < 4)
            break;
        if (kind == UNIX_DIAG_PEER && size >= 8 && at + 8 <= h->nlmsg_len) {
            unsigned peer;
            memcpy(&peer, reply + at + 4, 4);
            return peer;
        }
        at += (size + 3u) & ~3u;
    }
    return 0;
}

/* The facts classify.classify needs, for the kinds classified here; 0 when
 * the fd is of another kind, or a socket whose ends may still change
 * (engine._endpoints_incomplete). */
static int classify_facts(int dup, classified_t *f)
{
    struct stat st;
    if (fstat(dup, &st) < 0)
        return 0;
    f->mode = st.st_mode;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->rdev = st.st_rdev;
    if (S_ISFIFO(st.st_mode) && st.st_dev == pipefs_device)
        return 1;
    if (!S_ISSOCK(st.st_mode))
        return 0;
    socklen_t len = sizeof(int);
    if (getsockopt(dup, SOL_SOCKET, SO_DOMAIN, &f->family, &len) < 0 ||
        getsockopt(dup, SOL_SOCKET, SO_TYPE, &f->type, &len) < 0 ||
        getsockopt(dup, SOL_SOCKET, SO_PROTOCOL, &f->protocol, &len) < 0)
        return 0;
    f->local_len = sizeof f->local;
    f->remote_len = sizeof f->remote;
    if (getsockname(dup, (struct sockaddr *)&f->local, &f->local_len) < 0 || f->local_len > sizeof f->local)
        return 0;
    f->connected = getpeername(dup, (struct sockaddr *)&f->remote, &f->remote_len) == 0 &&
                   f->remote_len <= sizeof f->remote;
    if (f->family == AF_UNIX) {
        if (f->protocol != 0 || (f->type != SOCK_STREAM && f->type != SOCK_DGRAM && f->type != SOCK_SEQPACKET))
            return 0;
        f->peer_inode = unix_peer_inode((unsigned)f->ino);
        return f->connected || f->type != SOCK_STREAM;
    }
    if (f->family != AF_INET && f->family != AF_INET6)
        return 0;
    if (!(f->type == SOCK_STREAM && f->protocol == IPPROTO_TCP) && !(f->type == SOCK_DGRAM && f->protocol == IPPROTO_UDP))
        return 0;
    socklen_t inet_len = f->family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (f->local_len != inet_len || (f->connected && f->remote_len != inet_len))
        return 0;
    return inet_port(&f->local) != 0 && (f->connected || f->type == SOCK_DGRAM);
}

/* p's view of fd, classified here; NULL when it is Python's to classify. */
static fd_entry *classify_here(proc *p, int fd)
{
    if (!bookkeeping_here || trace_fd >= 0 || !spare_count || p->threaded || p->shares_fds || !is_fresh(p, fd))
        return NULL;
    int dup = copy_of(p, fd);
    if (dup < 0)
        return NULL;
    classified_t *f = calloc(1, sizeof *f);
    if (!f || !classify_facts(dup, f))
        goto python;
    char local[128] = "", remote[128] = "", detail[300], key_text[300], peer_text[300];
    const char *name = f->family == AF_UNIX ? (f->type == SOCK_STREAM ? "unix-stream" : f->type == SOCK_DGRAM ? "unix-dgram"
                                                                                                     : "unix-seqpacket")
                       : f->family == AF_INET6 ? (f->type == SOCK_DGRAM ? "udp6" : "tcp6")
                                               : (f->type == SOCK_DGRAM ? "udp" : "tcp");
    unsigned long long key = 0, peer_key = 0;
    int mode;
    if (!f->family) {
        mode = M_PIPE;
        snprintf(detail, sizeof detail, "pipe");
        snprintf(key_text, sizeof key_text, "pipe|%llu|%llu", f->dev, f->ino);
        key = peer_key = channel_key(key_text);
    } else {
        mode = f->type == SOCK_STREAM ? M_STREAM : M_DATAGRAM;
        if (!format_sockaddr(local, sizeof local, &f->local, f->local_len) ||
            (f->connected && !format_sockaddr(remote, sizeof remote, &f->remote, f->remote_len)))
            goto python;
        if (f->connected)
            snprintf(detail, sizeof detail, "%s %s -> %s", name, local, remote);
        else
            snprintf(detail, sizeof detail, "%s %s", name, local);
        /* engine._channel_keys: a unix socket by its and its peer's inode,
         * an inet one by its ends; 0 when not known */
        if (f->family == AF_UNIX && f->peer_inode) {
            snprintf(key_text, sizeof key_text, "unix|%llu", f->ino);
            snprintf(peer_text, sizeof peer_text, "unix|%u", f->peer_inode);
            key = channel_key(key_text);
            peer_key = channel_key(peer_text);
        } else if (f->family != AF_UNIX && f->connected) {
            snprintf(key_text, sizeof key_text, "%s|%s|%s", name, local, remote);
            snprintf(peer_text, sizeof peer_text, "%s|%s|%s", name, remote, local);
            key = channel_key(key_text);
            peer_key = channel_key(peer_text);
        }
    }
    char fragment[256];
    int fragment_len = snprintf(fragment, sizeof fragment, "\"class\":\"%s\",\"detail\":\"%s\"",
                                f->family ? "net" : "pipe", detail);
    static const int16_t no_rules[MAX_KINDS];
    Counters *counters = spare_counters[spare_count - 1];
    fd_entry *e = NULL;
    int tcp = (f->family == AF_INET || f->family == AF_INET6) && f->type == SOCK_STREAM;
    if (add_note(NOTE_CLASSIFIED, p->pid, p->pid, fd, p->next_seq) &&
        !(e = entry_install(p, fd, dup, mode, f->family != 0, f->family ? " NET" : "PIPE", fragment, fragment_len,
                            counters, key, peer_key, tcp, no_rules)))
        notes_len--;
    if (!e)
        goto python;
    spare_count--;
    e->since = p->next_seq;
    fresh_clear(p, fd);
    unsigned long long inode = f->ino, peer_inode = f->peer_inode;
    f->counters = counters;
    notes[notes_len - 1].facts = f;

    /* the "fd" event, as recorder.fd_classified writes it */
    char line[512];
    out_t o = {line, line + sizeof line - 1};
    put_envelope(&o, "fd", -1, p->pid);
    PUT(&o, ",\"fd\":");
    put_i64(&o, fd);
    PUT(&o, ",");
    put(&o, fragment, (size_t)fragment_len);
    PUT(&o, ",\"local\":");
    put_text_or_null(&o, local);
    PUT(&o, ",\"remote\":");
    put_text_or_null(&o, remote);
    PUT(&o, ",\"path\":null,\"inode\":");
    put_u64(&o, inode);
    if (peer_inode) {
        PUT(&o, ",\"peer_inode\":");
        put_u64(&o, peer_inode);
        PUT(&o, ",\"inherited\":false}");
    } else {
        PUT(&o, ",\"peer_inode\":null,\"inherited\":false}");
    }
    events_add(line, (size_t)(o.at - line));
    return e;
python:
    free(f);
    close(dup);
    return NULL;
}

/* ---- taking a fork child in here ----------------------------------------------------
 * A child a fork of the fast path made, whose first call comes before Python
 * took it in, was a trip to Python for each process (the take-in, then the
 * call).  admit() takes it in here: its one task, its picture (its parent's
 * at the fork), its "fork" event; Python takes it in from NOTE_ADMITTED at
 * its next round, with the pidfd opened here (the NOTE_SPAWNED's, when its
 * parent's next call came first), and gives it its log: its rows wait in
 * memory until then.  The parent is the thread whose fork is settled in a
 * NOTE_SPAWNED, or one whose fork is pending (spawning) and that lists it
 * among its children. */

/* The process whose pending fork made child (a pid); NULL when none. */
static proc *spawning_parent_of(int child)
{
    for (int i = 0; i < nspawning;) {
        task *t = find_task(spawning[i].tid);
        if (!t || !t->pending || t->pending->layout != L_SPAWN || t->p->pid != spawning[i].pid) {
            spawning[i] = spawning[--nspawning]; /* settled, or gone */
            continue;
        }
        int children[CHILDREN_MAX];
        int count = thread_children(t->p->pid, t->tid, children, CHILDREN_MAX);
        if (count > 0 && count <= CHILDREN_MAX && holds_pid(children, count, child))
            return t->p;
        i++;
    }
    return NULL;
}

static void free_proc(proc *p)
{
    free(p->open_bits);
    free(p->fresh_bits);
    free(p->fds);
    free(p->rows);
    free(p->log_path);
    free(p->argv_json);
    free(p);
}

/* The task of a fork child's first call (tid: its pid), taken in here; NULL
 * when it is Python's to take in. */
static int admits_children;

static task *admit(int child)
{
    if (!admits_children || trace_fd >= 0)
        return NULL;
    note_t *spawned = spawn_note(child);
    proc *parent = spawned ? find_proc(spawned->pid) : spawning_parent_of(child);
    if (!parent || parent->slow || !parent->argv_json || find_proc(child))
        return NULL; /* a process Python has not let go of yet had its pid: Python tells them apart */
    proc *p = calloc(1, sizeof *p);
    task *t = calloc(1, sizeof *t);
    if (p)
        p->pid = child;
    if (!p || !t || !(p->argv_json = strdup(parent->argv_json)) || picture_inherit(p, parent) < 0) {
        free(t);
        if (p)
            free_proc(p);
        return NULL;
    }
    p->shares_fds = parent->shares_fds; /* as engine._start_process marks it */
    if (spawned) {
        p->pidfd = spawned->pidfd;
        spawned->what = NOTE_ADMITTED;
    } else {
        p->pidfd = (int)syscall(SYS_pidfd_open, child, 0);
        if (p->pidfd < 0 || !add_note_with_pidfd(NOTE_ADMITTED, parent->pid, parent->pid, child, 0, p->pidfd)) {
            if (p->pidfd >= 0)
                close(p->pidfd);
            free(t);
            free_proc(p);
            return NULL;
        }
    }
    p->next = procs[bucket(child)];
    procs[bucket(child)] = p;
    t->tid = child;
    t->p = p;
    t->next = tasks[bucket(child)];
    tasks[bucket(child)] = t;

    /* the "fork" event, as recorder.process_started writes it */
    size_t room = strlen(p->argv_json) + 256;
    char *line = malloc(room);
    if (line) {
        out_t o = {line, line + room - 1};
        put_envelope(&o, "fork", -1, child);
        PUT(&o, ",\"ppid\":");
        put_i64(&o, parent->pid);
        PUT(&o, ",\"argv\":");
        put_str(&o, p->argv_json);
        PUT(&o, "}");
        events_add(line, (size_t)(o.at - line));
        free(line);
    }
    return t;
}

/* ---- the fast path proper ------------------------------------------------------- */

/* A call on an fd that cannot be emulated faithfully (a terminal, an
 * eventfd...): counted and recorded without a result, then run by the
 * kernel, as Python's Passthrough is. */
static void pass_through(proc *p, const call_t *c)
{
    record(p, c, 0, 0, UNKNOWN);
    p->inexact++;
    let_through(&c->n);
    fast_calls++;
}

/* 1 when the call was answered or parked here; 0 when it is Python's. */
static int fast_handle(const struct seccomp_notif *n, handoffs_t *h)
{
    if (n->data.nr < 0 || n->data.nr >= MAX_NR || specs[n->data.nr].layout == L_NONE)
        return 0;
    const call_spec *spec = &specs[n->data.nr];
    task *t = find_task((int)n->pid);
    if (!t)
        t = admit((int)n->pid);
    if (!t || t->slow || t->p->slow)
        return 0;
    if (spec->layout >= L_OPEN_PATH0)
        return pending_call(n, spec, t);
    if (spec->layout >= L_CLOSE)
        return lifecycle(n, spec, t);
    int fd = (int)n->data.args[0];
    if (fd >= 0 && (fd >= t->p->nfds || !t->p->fds[fd]))
        classify_here(t->p, fd);
    call_t c;
    if (!decode(n, spec, t, &c))
        return 0;
    if (nbudgets && over_budget(c.e, spec->inward))
        return 0;
    if (c.e->mode == M_PASSTHROUGH) {
        pass_through(t->p, &c);
        return 1;
    }
    int sigpipe = 0;
    begun_t begun = {0};
    /* Reads on a channel whose last read had to wait will likely wait again
     * (a ping-pong): park without the doomed attempt.  If bytes are there
     * after all, the re-armed registration is ready at once and the loop's
     * next epoll_wait serves it. */
    if (spec->inward && c.e->reads_wait && c.e->mode != M_FILE && c.e->mode != M_MEMDEV && caller_blocks(&c) &&
        !socket_has_timeout(&c) && park(&c, 1, NULL) == 0)
        return 1;
    long long result = attempt(&c, &sigpipe, &begun);
    if (spec->inward && result != WOULD_BLOCK)
        c.e->reads_wait = 0;
    if (result == WOULD_BLOCK) {
        if (!caller_blocks(&c))
            result = -EAGAIN;
        else if (socket_has_timeout(&c) || park(&c, 0, NULL) < 0)
            return 0;
        else {
            c.e->reads_wait |= spec->inward;
            return 1;
        }
    }
    if (result == TO_PYTHON)
        return 0;
    if (result == BEGUN) {
        /* Python keeps the deadline of a socket's send timeout */
        if (socket_has_timeout(&c) || park(&c, 0, &begun) < 0)
            hand_off(h, n, begun);
        serve_peers(&c, h);
        return 1;
    }
    finish(t->p, &c, result, sigpipe);
    if (result > 0 && !(c.sock_flags & MSG_PEEK))
        serve_peers(&c, h);
    return 1;
}

/* A call just received, under the lock: the thread's call before it settled
 * first (before anything else sees its fds), then the fast path's if it
 * takes it, else Python's (handed off). */
static void serve_received(const struct seccomp_notif *n, handoffs_t *h)
{
    task *caller = find_task((int)n->pid);
    if (caller && caller->pending)
        settle_pending(caller, 0);
    if (!fast_handle(n, h))
        hand_off(h, n, (begun_t){0});
}

/* ---- the receiver and the catcher ------------------------------------------------
 * A call is interruptible until its notification is received (kernel-facts
 * 2d): a signal then fails it with EINTR, or ERESTART* with SA_RESTART, even
 * a call that natively cannot be interrupted (pipe2, fork, close, a read of
 * /dev/zero).  dash's SIGCHLD handler has no SA_RESTART, so its pipe() and
 * fork() failed ("Cannot fork") whenever they waited for a busy supervisor.
 *
 * So once the receiver goes away (to Python, or to wait for the lock), the
 * catcher thread receives in its place and queues what it receives, and goes
 * on doing so until the receiver has kept away from Python for CATCHER_QUIET:
 * the receiver, meanwhile, takes its calls from the queue (woken by an
 * eventfd), never from RECV, so only one thread is ever in RECV.  The catcher
 * never takes the GIL, nor waits for the lock: under load, while the
 * receiver waits for them, it keeps the kernel's queue empty.  Being woken at
 * each absence came too late (a wake-up across CPUs takes tens of
 * microseconds, kernel-facts §8c), hence the stay; where allowed it also runs
 * with a real-time priority.  Calls the fast path serves alone never wake it.
 *
 * During the stay the receiver is mostly idle, and handing each call over
 * would cost one more wake-up across CPUs per call (a loop of calls that all
 * go to Python took 16 us a call instead of 6).  So when the lock is free the
 * catcher serves a call itself, as the receiver would (catcher_serves): only
 * what needs Python, or a call it parked, wakes the receiver. */

#define QUEUE_MAX 4096
#define CATCHER_QUIET 0.002 /* seconds */
#define LOCK_SPIN 0.00002    /* seconds */

static pthread_t receiver, catcher;
static int catcher_running;
static volatile int catcher_on;      /* it receives: the receiver takes the queue */
static volatile int receiver_out;    /* in Python, or waiting for the lock */
static volatile double receiver_back; /* when it last came back (CLOCK_MONOTONIC) */
static double recv_after_poll_since;  /* RECV entered on POLLIN: it can still block */
static int queued_fd = -1;            /* an eventfd: calls were queued, or the catcher stopped */
static pthread_mutex_t catcher_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t catcher_cond = PTHREAD_COND_INITIALIZER;
static struct seccomp_notif queued[QUEUE_MAX]; /* a ring, under queue_mutex */
static int queued_head, queued_count;
static pthread_mutex_t queue_mutex = PTHREAD_MUTEX_INITIALIZER;
static handoffs_t catcher_handoffs; /* calls the catcher served that need Python, under lock */

static int listener_hung_up(void)
{
    struct pollfd p = {.fd = listener, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

static int receive(struct seccomp_notif *n)
{
    memset(n, 0, sizeof *n);
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, n);
}

static int take_queued(struct seccomp_notif *n)
{
    if (!__atomic_load_n(&queued_count, __ATOMIC_SEQ_CST))
        return 0;
    pthread_mutex_lock(&queue_mutex);
    int any = queued_count > 0;
    if (any) {
        *n = queued[queued_head];
        queued_head = (queued_head + 1) % QUEUE_MAX;
        queued_count--;
    }
    pthread_mutex_unlock(&queue_mutex);
    return any;
}

static void signal_queued(void)
{
    uint64_t one = 1;
    if (write(queued_fd, &one, sizeof one) < 0)
        one = 0; /* the counter is full: the receiver is awake anyway */
}

/* Serve a call the catcher received, if the lock is free, as the receiver's
 * loop would; 0 when it did not (the receiver takes it from the queue).
 * *wake: the receiver has work (calls for Python, or a call parked, whose
 * fd its wait must watch). */
static int catcher_serves(const struct seccomp_notif *n, int *wake)
{
    if (pthread_mutex_trylock(&lock) != 0)
        return 0;
    if (handoffs_full(&catcher_handoffs)) {
        pthread_mutex_unlock(&lock);
        return 0;
    }
    int handed = catcher_handoffs.count, was_parked = parked_count;
    serve_received(n, &catcher_handoffs);
    *wake = catcher_handoffs.count > handed || parked_count > was_parked;
    pthread_mutex_unlock(&lock);
    return 1;
}

static void *catcher_main(void *unused)
{
    (void)unused;
    /* Where allowed (CAP_SYS_NICE, RLIMIT_RTPRIO), it runs before the busy
     * program's processes: it only receives, and sleeps in poll or RECV. */
    struct sched_param realtime = {.sched_priority = 1};
    pthread_setschedparam(pthread_self(), SCHED_FIFO, &realtime);
    for (;;) {
        pthread_mutex_lock(&catcher_mutex);
        while (!catcher_on && !stopping)
            pthread_cond_wait(&catcher_cond, &catcher_mutex);
        pthread_mutex_unlock(&catcher_mutex);
        if (stopping)
            break;
        struct pollfd p = {.fd = listener, .events = POLLIN};
        int ready = poll(&p, 1, (int)(CATCHER_QUIET * 1000));
        int quiet = !receiver_out && clock_seconds(CLOCK_MONOTONIC) - receiver_back > CATCHER_QUIET;
        if (ready <= 0 || !(p.revents & POLLIN)) {
            if (quiet) { /* the receiver takes RECV again */
                catcher_on = 0;
                signal_queued();
            }
            continue;
        }
        if (__atomic_load_n(&queued_count, __ATOMIC_RELAXED) >= QUEUE_MAX) {
            usleep(1000);
            continue;
        }
        struct seccomp_notif n;
        if (receive(&n) < 0) /* it vanished: its task was killed, or a signal took it back */
            continue;
        int wake = 0;
        if (!catcher_serves(&n, &wake)) {
            pthread_mutex_lock(&queue_mutex);
            queued[(queued_head + queued_count) % QUEUE_MAX] = n;
            queued_count++;
            pthread_mutex_unlock(&queue_mutex);
            wake = 1;
        }
        if (quiet) { /* after this call, which waited: the receiver takes RECV again */
            catcher_on = 0;
            wake = 1;
        }
        if (wake)
            signal_queued();
    }
    return NULL;
}

/* The receiver goes away: the catcher takes RECV over.  Even with one task
 * known: a child just forked calls before superv knows it. */
static void receiver_away(void)
{
    receiver_out = 1;
    if (!catcher_running || catcher_on)
        return;
    pthread_mutex_lock(&catcher_mutex);
    catcher_on = 1;
    pthread_cond_signal(&catcher_cond);
    pthread_mutex_unlock(&catcher_mutex);
}

static void receiver_returns(void)
{
    receiver_back = clock_seconds(CLOCK_MONOTONIC);
    receiver_out = 0;
}

static void catcher_start(void)
{
    queued_head = queued_count = 0;
    catcher_on = 0;
    receiver_out = 0;
    if (queued_fd < 0)
        queued_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    catcher_running = queued_fd >= 0 && pthread_create(&catcher, NULL, catcher_main, NULL) == 0;
}

/* The end of the run (stopping is set). */
static void catcher_stop(void)
{
    if (!catcher_running)
        return;
    /* Its RECV entered on POLLIN waits if that call vanished (a signal took
     * it back): WAKE_SIGNAL, again until it is gone. */
    for (;;) {
        pthread_mutex_lock(&catcher_mutex);
        pthread_cond_signal(&catcher_cond);
        pthread_mutex_unlock(&catcher_mutex);
        pthread_kill(catcher, SIGUSR2);
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 10000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
        if (pthread_timedjoin_np(catcher, NULL, &deadline) == 0)
            break;
    }
    catcher_running = 0;
    catcher_on = 0;
}

/* The lock, for the receiver: the catcher receives while it waits.  Its
 * other holders (the waiter's tick, the heartbeat, the catcher) mostly keep
 * it some microseconds: spinning that long costs less than the catcher's
 * wake-up.  And a wait for the lock does not start a stay of the catcher
 * (only trips to Python come in runs): before, the waiter's tick every 10
 * ms put every call of the next 2 ms through the catcher. */
static void receiver_lock(void)
{
    double until = clock_seconds(CLOCK_MONOTONIC) + LOCK_SPIN;
    do {
        if (pthread_mutex_trylock(&lock) == 0)
            return;
        __builtin_ia32_pause();
    } while (clock_seconds(CLOCK_MONOTONIC) < until);
    double back = receiver_back;
    receiver_away();
    pthread_mutex_lock(&lock);
    receiver_returns();
    receiver_back = back;
}

/* The receiver takes the calls for Python that the catcher served (h is empty). */
static void take_catcher_handoffs(handoffs_t *h)
{
    if (!__atomic_load_n(&catcher_handoffs.count, __ATOMIC_SEQ_CST))
        return;
    receiver_lock();
    memcpy(h->items, catcher_handoffs.items, sizeof h->items[0] * (size_t)catcher_handoffs.count);
    h->count = catcher_handoffs.count;
    catcher_handoffs.count = 0;
    pthread_mutex_unlock(&lock);
}

/* Python's turn, for the receiver: the catcher receives meanwhile. */
static int receiver_handoffs(handoffs_t *h)
{
    if (!h->count)
        return run_handoffs(h);
    receiver_away();
    int rc = run_handoffs(h);
    receiver_returns();
    return rc;
}

/* The listener in parked_epoll: the receiver's own wait needs it there; its
 * wait for the catcher's queue must not have it, or a notification the
 * catcher had not yet taken made that wait return at once, again and again
 * (the receiver spun in poll while the catcher served: 2x the CPU time). */
static int listener_watched;

static void watch_listener(int on)
{
    if (on == listener_watched)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = LISTENER_TAG};
    epoll_ctl(parked_epoll, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listener, &ev);
    listener_watched = on;
}

/* While the catcher receives: wait for its queue, and for the parked calls. */
static void wait_for_queue(handoffs_t *h)
{
    watch_listener(0);
    struct pollfd p[2] = {{.fd = queued_fd, .events = POLLIN}, {.fd = parked_epoll, .events = POLLIN}};
    if (poll(p, parked_count ? 2 : 1, -1) <= 0)
        return;
    uint64_t count;
    if ((p[0].revents & POLLIN) && read(queued_fd, &count, sizeof count) < 0)
        count = 0;
    if (!(p[1].revents & POLLIN))
        return;
    struct epoll_event events[64];
    int ready = epoll_wait(parked_epoll, events, 64, 0);
    receiver_lock();
    serve_events(events, ready, h, 1); /* the listener is the catcher's: not in the set */
    pthread_mutex_unlock(&lock);
}

/* The receiver waits on the catcher's queue while the catcher receives; in
 * a plain RECV while nothing is parked; and otherwise in epoll on the
 * listener and the parked calls' fds together: one thread serves both, so
 * no other thread is woken for a call. */
static PyObject *f_run(PyObject *self, PyObject *noargs)
{
    int failed = 0;
    static handoffs_t h; /* the receiver's (one receiver thread) */
    receiver = pthread_self();
    catcher_start();
    Py_BEGIN_ALLOW_THREADS
    while (!stopping && !failed) {
        struct seccomp_notif n;
        int rc;
        loop_turn++;
        take_catcher_handoffs(&h);
        if (h.count) {
            failed = receiver_handoffs(&h) < 0;
            continue;
        }
        if (take_queued(&n)) {
            rc = 0;
        } else if (catcher_on) {
            wait_for_queue(&h);
            failed = receiver_handoffs(&h) < 0;
            continue;
        } else if (parked_count) {
            watch_listener(1);
            struct epoll_event events[64];
            int ready = epoll_wait(parked_epoll, events, 64, -1);
            receiver_lock();
            int notification = serve_events(events, ready, &h, 1);
            pthread_mutex_unlock(&lock);
            failed = receiver_handoffs(&h) < 0;
            if (!notification || catcher_on || __atomic_load_n(&queued_count, __ATOMIC_SEQ_CST))
                continue; /* the catcher receives now */
            /* A notification can vanish between POLLIN and RECV (its task
             * was killed): the waiter's tick interrupts a RECV that waits. */
            recv_after_poll_since = clock_seconds(CLOCK_MONOTONIC);
            rc = receive(&n);
            recv_after_poll_since = 0;
        } else {
            rc = receive(&n);
        }
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOENT && !listener_hung_up())
                continue; /* the notification vanished: its task was killed */
            break;
        }
        receiver_lock();
        serve_received(&n, &h);
        pthread_mutex_unlock(&lock);
        failed = receiver_handoffs(&h) < 0;
    }
    stopping = 1;
    catcher_stop();
    Py_END_ALLOW_THREADS
    watch_listener(0);
    if (failed)
        return NULL; /* the handler's exception: the engine reports it */
    Py_RETURN_NONE;
}

static handoffs_t waiter_handoffs; /* the Python waiter's (one waiter thread) */

/* tick(): every TICK while calls are parked, from the Python waiter. */
static PyObject *f_tick(PyObject *self, PyObject *noargs)
{
    int failed;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&lock);
    tick_parked(&waiter_handoffs);
    double since = recv_after_poll_since;
    if (since && clock_seconds(CLOCK_MONOTONIC) - since > 0.02)
        pthread_kill(receiver, SIGUSR2); /* the engine's WAKE_SIGNAL: back to epoll */
    pthread_mutex_unlock(&lock);
    failed = run_handoffs(&waiter_handoffs) < 0;
    Py_END_ALLOW_THREADS
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *f_needs_tick(PyObject *self, PyObject *noargs)
{
    return PyBool_FromLong(parked_count || recv_after_poll_since);
}

static PyObject *f_stop(PyObject *self, PyObject *noargs)
{
    stopping = 1;
    Py_RETURN_NONE;
}

/* ---- the lock, as a Python context manager ---------------------------------- */

typedef struct {
    PyObject_HEAD
} LockObject;

/* Take the lock from Python: without the GIL while waiting, so that the
 * thread holding the lock can get the GIL it may need to let it go. */
static void take_lock(void)
{
    if (pthread_mutex_trylock(&lock) != 0) {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&lock);
        Py_END_ALLOW_THREADS
    }
}

static PyObject *lock_enter(PyObject *self, PyObject *noargs)
{
    take_lock();
    Py_INCREF(self);
    return self;
}

static PyObject *lock_exit(PyObject *self, PyObject *args)
{
    pthread_mutex_unlock(&lock);
    Py_RETURN_FALSE;
}

static PyMethodDef lock_methods[] = {
    {"__enter__", lock_enter, METH_NOARGS, NULL},
    {"__exit__", lock_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LockType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "superv._fastpath.Lock",
    .tp_basicsize = sizeof(LockObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The supervisor's state lock (recursive); waiting releases the GIL.",
    .tp_methods = lock_methods,
    .tp_new = PyType_GenericNew,
};

/* ---- Counters ------------------------------------------------------------------- */

static PyObject *counters_add(Counters *self, PyObject *args)
{
    int kind, inward;
    unsigned long long nbytes;
    if (!PyArg_ParseTuple(args, "ipK", &kind, &inward, &nbytes))
        return NULL;
    if (kind < 0 || kind >= MAX_KINDS) {
        PyErr_SetString(PyExc_ValueError, "kind index out of range");
        return NULL;
    }
    take_lock();
    self->calls++;
    self->kind_calls[kind]++;
    self->kind_bytes[kind] += nbytes;
    if (inward)
        self->bytes_in += nbytes;
    else
        self->bytes_out += nbytes;
    unsigned long long in = self->bytes_in, out = self->bytes_out;
    pthread_mutex_unlock(&lock);
    return Py_BuildValue("(KK)", in, out);
}

static PyObject *counters_kinds(Counters *self, PyObject *noargs)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    for (int i = 0; i < MAX_KINDS; i++) {
        if (!self->kind_calls[i])
            continue;
        PyObject *k = PyLong_FromLong(i);
        PyObject *v = Py_BuildValue("(KK)", self->kind_calls[i], self->kind_bytes[i]);
        if (!k || !v || PyDict_SetItem(d, k, v) < 0) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    return d;
}

static PyMethodDef counters_methods[] = {
    {"add", (PyCFunction)counters_add, METH_VARARGS,
     "add(kind_index, inward, nbytes) -> (bytes_in, bytes_out): count one call"},
    {"kinds", (PyCFunction)counters_kinds, METH_NOARGS, "kinds() -> {kind_index: (calls, bytes)}"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef counters_members[] = {
    {"calls", T_ULONGLONG, offsetof(Counters, calls), READONLY, NULL},
    {"bytes_in", T_ULONGLONG, offsetof(Counters, bytes_in), READONLY, NULL},
    {"bytes_out", T_ULONGLONG, offsetof(Counters, bytes_out), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject CountersType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "superv._fastpath.Counters",
    .tp_basicsize = sizeof(Counters),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One fd lifetime's totals, kept by the fast path and by Python alike.",
    .tp_methods = counters_methods,
    .tp_members = counters_members,
    .tp_new = PyType_GenericNew,
};

/* ---- the state, from Python (callers hold `lock`) ---------------------------- */

static void drop_entry(fd_entry *e) { entry_release(e); }

/* superv's view of fd in p goes, and its copy with it (once no parked call holds it). */
static void forget_fd(proc *p, int fd)
{
    if (fd >= 0 && fd < p->nfds) {
        drop_entry(p->fds[fd]);
        p->fds[fd] = NULL;
    }
}

static void drop_all_fds(proc *p)
{
    for (int i = 0; i < p->nfds; i++)
        forget_fd(p, i);
}

static int ensure_buffers(void)
{
    if (buffer)
        return 0;
    buffer = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    junk = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    events_buf = malloc(EVENTS_BUFFER);
    int fds[2];
    if (buffer == MAP_FAILED || junk == MAP_FAILED || !events_buf || pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    scratch_r = fds[0];
    scratch_w = fds[1];
    fcntl(scratch_w, F_SETPIPE_SZ, CHUNK);
    scratch_size = (size_t)fcntl(scratch_w, F_GETPIPE_SZ);
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    parked_epoll = epoll_create1(EPOLL_CLOEXEC);
    return parked_epoll < 0 ? -1 : 0;
}

/* set_output(events_fd, trace_fd): where records go (trace_fd -1: no --trace). */
static PyObject *f_set_output(PyObject *self, PyObject *args)
{
    if (!PyArg_ParseTuple(args, "ii", &events_fd, &trace_fd))
        return NULL;
    if (ensure_buffers() < 0)
        return PyErr_NoMemory();
    events_len = 0;
    Py_RETURN_NONE;
}

/* set_budgets([(tag or "", inward, limit, stops)]) */
static PyObject *f_set_budgets(PyObject *self, PyObject *arg)
{
    PyObject *fast = PySequence_Fast(arg, "budgets must be a sequence");
    if (!fast)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast);
    if (count > BUDGETS_MAX) {
        Py_DECREF(fast);
        return PyErr_Format(PyExc_ValueError, "at most %d budgets", BUDGETS_MAX);
    }
    budget_t parsed[BUDGETS_MAX];
    memset(parsed, 0, sizeof parsed);
    for (Py_ssize_t i = 0; i < count; i++) {
        const char *tag;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "spKp", &tag, &parsed[i].inward, &parsed[i].limit,
                              &parsed[i].stops)) {
            Py_DECREF(fast);
            return NULL;
        }
        snprintf(parsed[i].tag, sizeof parsed[i].tag, "%s", tag);
    }
    Py_DECREF(fast);
    pthread_mutex_lock(&lock);
    memcpy(budgets, parsed, sizeof budgets);
    nbudgets = (int)count;
    pthread_mutex_unlock(&lock);
    Py_RETURN_NONE;
}

/* budget_spend(index, bytes): what Python moved (callers hold `lock`). */
static PyObject *f_budget_spend(PyObject *self, PyObject *args)
{
    int index;
    unsigned long long moved;
    if (!PyArg_ParseTuple(args, "iK", &index, &moved))
        return NULL;
    if (index < 0 || index >= nbudgets)
        return PyErr_Format(PyExc_IndexError, "no budget %d", index);
    budgets[index].total += moved;
    Py_RETURN_NONE;
}

/* count_rules(n): count the calls of n rules and the default from now on. */
static PyObject *f_count_rules(PyObject *self, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0 || n > RULES_MAX)
        return PyErr_Format(PyExc_ValueError, "at most %d rules", RULES_MAX);
    memset(rule_calls, 0, sizeof rule_calls);
    counting_rules = (int)n + 1;
    Py_RETURN_NONE;
}

/* rule_totals() -> [the default's calls, rule 0's, rule 1's...] taken here */
static PyObject *f_rule_totals(PyObject *self, PyObject *noargs)
{
    PyObject *totals = PyList_New(counting_rules);
    for (int i = 0; totals && i < counting_rules; i++)
        PyList_SET_ITEM(totals, i, PyLong_FromUnsignedLongLong(rule_calls[i]));
    return totals;
}

static PyObject *f_budget_totals(PyObject *self, PyObject *noargs)
{
    PyObject *totals = PyList_New(nbudgets);
    for (int i = 0; totals && i < nbudgets; i++)
        PyList_SET_ITEM(totals, i, PyLong_FromUnsignedLongLong(budgets[i].total));
    return totals;
}

static PyObject *f_init(PyObject *self, PyObject *args)
{
    PyObject *table, *kinds, *callback;
    if (!PyArg_ParseTuple(args, "iOOO", &listener, &callback, &table, &kinds))
        return NULL;
    Py_XDECREF(handler);
    Py_INCREF(callback);
    handler = callback;
    stopping = 0;
    memset(specs, 0, sizeof specs);
    /* table: [(nr, layout, inward, kind, kind_without_address, name, addressed)] */
    PyObject *fast = PySequence_Fast(table, "table must be a sequence");
    if (!fast)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
        int nr, layout, inward, kind, kind_noaddr, addressed;
        const char *name;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "iiiiisp", &nr, &layout, &inward, &kind,
                              &kind_noaddr, &name, &addressed)) {
            Py_DECREF(fast);
            return NULL;
        }
        if (nr < 0 || nr >= MAX_NR || kind < 0 || kind >= MAX_KINDS || kind_noaddr < 0 || kind_noaddr >= MAX_KINDS)
            continue;
        specs[nr] = (call_spec){.layout = (uint8_t)layout, .inward = (uint8_t)inward, .kind = (int8_t)kind,
                                .kind_noaddr = (int8_t)kind_noaddr, .addressed = (uint8_t)addressed};
        snprintf(specs[nr].name, sizeof specs[nr].name, "%s", name);
    }
    Py_DECREF(fast);
    PyObject *names = PySequence_Fast(kinds, "kinds must be a sequence");
    if (!names)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(names) && i < MAX_KINDS; i++)
        snprintf(kind_names[i], sizeof kind_names[i], "%s", PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(names, i)));
    Py_DECREF(names);
    if (ensure_buffers() < 0)
        return PyErr_NoMemory();
    int ends[2];
    struct stat st;
    if (pipe2(ends, O_CLOEXEC) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (fstat(ends[0], &st) == 0)
        pipefs_device = st.st_dev;
    close(ends[0]);
    close(ends[1]);
    Py_RETURN_NONE;
}

static PyObject *f_add_process(PyObject *self, PyObject *args)
{
    int pid, pidfd, slow;
    const char *log_path, *argv_json;
    if (!PyArg_ParseTuple(args, "iipss", &pid, &pidfd, &slow, &log_path, &argv_json))
        return NULL;
    proc *p = find_proc(pid);
    if (p && !p->log_path && p->pidfd == pidfd) { /* admitted here: Python takes it in */
        if (!(p->log_path = strdup(log_path)))
            return PyErr_NoMemory();
        p->slow = slow;
        if (p->rows_len)
            rows_flush(p);
        Py_RETURN_NONE;
    }
    p = calloc(1, sizeof *p);
    if (!p || !(p->log_path = strdup(log_path)) || !(p->argv_json = strdup(argv_json))) {
        if (p)
            free_proc(p);
        return PyErr_NoMemory();
    }
    p->pid = pid;
    p->pidfd = pidfd;
    p->slow = slow;
    p->next = procs[bucket(pid)];
    procs[bucket(pid)] = p;
    Py_RETURN_NONE;
}

static PyObject *f_set_argv(PyObject *self, PyObject *args)
{
    int pid;
    const char *argv_json;
    if (!PyArg_ParseTuple(args, "is", &pid, &argv_json))
        return NULL;
    proc *p = find_proc(pid);
    char *copy = strdup(argv_json);
    if (!copy)
        return PyErr_NoMemory();
    if (p) {
        free(p->argv_json);
        p->argv_json = copy;
    } else {
        free(copy);
    }
    Py_RETURN_NONE;
}

static void free_task(task *t)
{
    if (t->pending) /* it never called again: no way to learn the result */
        settle_pending(t, 1);
    free(t);
}

/* Its tasks are gone (one bucket to look in, without threads). */
static void forget_tasks_of(proc *p)
{
    int first = p->threaded ? 0 : (int)bucket(p->pid), last = p->threaded ? HASH_BUCKETS - 1 : first;
    for (int b = first; b <= last; b++)
        for (task **tt = &tasks[b]; *tt;) {
            if ((*tt)->p == p) {
                task *gone = *tt;
                *tt = gone->next;
                free_task(gone);
            } else
                tt = &(*tt)->next;
        }
}

static void unlink_proc(proc *p)
{
    for (proc **pp = &procs[bucket(p->pid)]; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

/* The process is gone: its cached fds are dropped, its rows written out.
 * With its identity, it is ended until a wait reaps it (ended_add). */
static PyObject *f_remove_process(PyObject *self, PyObject *args)
{
    int pid;
    unsigned long long identity = 0;
    if (!PyArg_ParseTuple(args, "i|K", &pid, &identity))
        return NULL;
    if (identity)
        ended_add(pid, identity);
    proc *p = find_proc(pid);
    if (!p)
        Py_RETURN_NONE;
    drop_parked_of(pid, -1);
    forget_tasks_of(p);
    drop_all_fds(p);
    rows_flush(p);
    unlink_proc(p);
    free_proc(p);
    Py_RETURN_NONE;
}

static PyObject *f_set_process_slow(PyObject *self, PyObject *args)
{
    int pid, slow;
    if (!PyArg_ParseTuple(args, "ip", &pid, &slow))
        return NULL;
    proc *p = find_proc(pid);
    if (p)
        p->slow = slow;
    Py_RETURN_NONE;
}

static PyObject *f_set_fds_shared(PyObject *self, PyObject *args)
{
    int pid;
    if (!PyArg_ParseTuple(args, "i", &pid))
        return NULL;
    proc *p = find_proc(pid);
    if (p)
        p->shares_fds = 1;
    Py_RETURN_NONE;
}

static PyObject *f_set_threaded(PyObject *self, PyObject *args)
{
    int pid;
    if (!PyArg_ParseTuple(args, "i", &pid))
        return NULL;
    proc *p = find_proc(pid);
    if (p)
        p->threaded = 1;
    Py_RETURN_NONE;
}

static PyObject *f_forget_ended(PyObject *self, PyObject *args)
{
    int pid;
    if (!PyArg_ParseTuple(args, "i", &pid))
        return NULL;
    ended_remove(pid);
    Py_RETURN_NONE;
}

static PyObject *f_add_task(PyObject *self, PyObject *args)
{
    int tid, pid;
    if (!PyArg_ParseTuple(args, "ii", &tid, &pid))
        return NULL;
    proc *p = find_proc(pid);
    if (!p || p->reaped || find_task(tid))
        Py_RETURN_NONE;
    task *t = calloc(1, sizeof *t);
    if (!t)
        return PyErr_NoMemory();
    t->tid = tid;
    t->p = p;
    t->next = tasks[bucket(tid)];
    tasks[bucket(tid)] = t;
    Py_RETURN_NONE;
}

static PyObject *f_remove_task(PyObject *self, PyObject *args)
{
    int tid;
    if (!PyArg_ParseTuple(args, "i", &tid))
        return NULL;
    for (task **tt = &tasks[bucket(tid)]; *tt; tt = &(*tt)->next)
        if ((*tt)->tid == tid) {
            task *gone = *tt;
            drop_parked_of(gone->p->pid, tid);
            *tt = gone->next;
            free_task(gone);
            break;
        }
    Py_RETURN_NONE;
}

static PyObject *f_set_task_slow(PyObject *self, PyObject *args)
{
    int tid, slow;
    if (!PyArg_ParseTuple(args, "ip", &tid, &slow))
        return NULL;
    task *t = find_task(tid);
    if (t)
        t->slow = slow;
    Py_RETURN_NONE;
}

/* The picture of a process's fd numbers (see proc), from Python. */

static PyObject *f_picture_set(PyObject *self, PyObject *args)
{
    int pid;
    PyObject *numbers;
    if (!PyArg_ParseTuple(args, "iO", &pid, &numbers))
        return NULL;
    proc *p = find_proc(pid);
    PyObject *fast = PySequence_Fast(numbers, "numbers must be a sequence");
    if (!fast)
        return NULL;
    if (p) {
        picture_forget(p);
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
            long fd = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
            if ((fd == -1 && PyErr_Occurred()) || fd > INT_MAX || picture_add(p, (int)fd) < 0) {
                Py_DECREF(fast);
                return PyErr_Occurred() ? NULL : PyErr_NoMemory();
            }
        }
        p->picture_known = 1;
    }
    Py_DECREF(fast);
    Py_RETURN_NONE;
}

static PyObject *f_picture_forget(PyObject *self, PyObject *args)
{
    int pid;
    if (!PyArg_ParseTuple(args, "i", &pid))
        return NULL;
    proc *p = find_proc(pid);
    if (p)
        picture_forget(p);
    Py_RETURN_NONE;
}

/* free_from(pid, base): the number the next fd gets at base or above; -1
 * when there is no picture. */
static PyObject *f_picture_free_from(PyObject *self, PyObject *args)
{
    int pid, base;
    if (!PyArg_ParseTuple(args, "ii", &pid, &base))
        return NULL;
    proc *p = find_proc(pid);
    return PyLong_FromLong(p && p->picture_known ? picture_free_from(p, base) : -1);
}

static PyObject *f_picture_add(PyObject *self, PyObject *args)
{
    int pid, fd;
    if (!PyArg_ParseTuple(args, "ii", &pid, &fd))
        return NULL;
    proc *p = find_proc(pid);
    if (p && p->picture_known && picture_add(p, fd) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *f_picture_remove(PyObject *self, PyObject *args)
{
    int pid;
    long long first, last;
    if (!PyArg_ParseTuple(args, "iLL", &pid, &first, &last))
        return NULL;
    proc *p = find_proc(pid);
    if (p)
        picture_remove(p, first, last);
    Py_RETURN_NONE;
}

/* picture(pid): the numbers it holds, or None when there is no picture. */
static PyObject *f_picture(PyObject *self, PyObject *args)
{
    int pid;
    if (!PyArg_ParseTuple(args, "i", &pid))
        return NULL;
    proc *p = find_proc(pid);
    if (!p || !p->picture_known)
        Py_RETURN_NONE;
    PyObject *numbers = PyList_New(0);
    for (int w = 0; numbers && w < p->open_words; w++)
        for (uint64_t bits = p->open_bits[w]; bits; bits &= bits - 1) {
            PyObject *fd = PyLong_FromLong(w * 64 + __builtin_ctzll(bits));
            if (!fd || PyList_Append(numbers, fd) < 0) {
                Py_XDECREF(fd);
                Py_CLEAR(numbers);
                break;
            }
            Py_DECREF(fd);
        }
    return numbers;
}

/* A fork child's picture starts as its parent's. */
static PyObject *f_picture_copy(PyObject *self, PyObject *args)
{
    int child_pid, parent_pid, admitted = 0;
    PyObject *seen;
    if (!PyArg_ParseTuple(args, "iiO|p", &child_pid, &parent_pid, &seen, &admitted))
        return NULL;
    proc *child = find_proc(child_pid), *parent = find_proc(parent_pid);
    if (!child || !parent || child == parent) {
        free(forked_picture_take(child_pid));
        Py_RETURN_NONE;
    }
    if (!admitted && picture_inherit(child, parent) < 0) /* admitted: admit() gave it */
        return PyErr_NoMemory();
    /* the fds Python gave the child its parent's view of (engine._inherit_fds) */
    PyObject *fast = PySequence_Fast(seen, "seen must be a sequence");
    if (!fast)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++)
        fresh_clear(child, (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i)));
    Py_DECREF(fast);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *f_take_seq(PyObject *self, PyObject *args)
{
    int pid;
    if (!PyArg_ParseTuple(args, "i", &pid))
        return NULL;
    proc *p = find_proc(pid);
    if (!p) {
        PyErr_Format(PyExc_KeyError, "no process %d", pid);
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(p->next_seq++);
}

static PyObject *f_process_counts(PyObject *self, PyObject *args)
{
    int pid;
    if (!PyArg_ParseTuple(args, "i", &pid))
        return NULL;
    proc *p = find_proc(pid);
    return Py_BuildValue("(KK)", p ? p->next_seq : 0, p ? p->inexact : 0);
}

/* cache_fd(pid, fd, dup, mode, is_net, tag, fragment, counters, key, peer_key, tcp, rules): takes the
 * dup.  rules: bytes, the deciding rule of each call kind (index+1; 0 the default), or b"". */
static PyObject *f_cache_fd(PyObject *self, PyObject *args)
{
    int pid, fd, dup, mode, is_net;
    const char *tag;
    const char *fragment;
    Py_ssize_t fragment_len;
    PyObject *counters;
    unsigned long long key, peer_key;
    int tcp;
    Py_buffer rules;
    if (!PyArg_ParseTuple(args, "iiiipss#O!KKpy*", &pid, &fd, &dup, &mode, &is_net, &tag, &fragment,
                          &fragment_len, &CountersType, &counters, &key, &peer_key, &tcp, &rules))
        return NULL;
    int16_t rule_of_kind[MAX_KINDS] = {0};
    Py_ssize_t nrules = rules.len / (Py_ssize_t)sizeof(int16_t);
    memcpy(rule_of_kind, rules.buf, (size_t)(nrules < MAX_KINDS ? nrules : MAX_KINDS) * sizeof(int16_t));
    PyBuffer_Release(&rules);
    for (int i = 0; i < MAX_KINDS; i++)
        if (rule_of_kind[i] < 0 || rule_of_kind[i] > RULES_MAX) {
            close(dup);
            return PyErr_Format(PyExc_ValueError, "rule index %d out of range", rule_of_kind[i]);
        }
    proc *p = find_proc(pid);
    if (!p || fd < 0 || fd > (1 << 20)) {
        close(dup);
        Py_RETURN_FALSE;
    }
    Py_INCREF(counters);
    if (!entry_install(p, fd, dup, mode, is_net, tag, fragment, fragment_len, (Counters *)counters, key, peer_key,
                       tcp, rule_of_kind)) {
        Py_DECREF(counters);
        close(dup);
        return PyErr_NoMemory();
    }
    Py_RETURN_TRUE;
}

static PyObject *f_is_cached(PyObject *self, PyObject *args)
{
    int pid, fd;
    if (!PyArg_ParseTuple(args, "ii", &pid, &fd))
        return NULL;
    proc *p = find_proc(pid);
    if (p && fd >= 0 && fd < p->nfds && p->fds[fd])
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* drop_fds(pid, first, last): forget (and close our copies of) fds in [first, last]. */
static PyObject *f_drop_fds(PyObject *self, PyObject *args)
{
    int pid;
    long long first, last, noted_at = -1;
    if (!PyArg_ParseTuple(args, "iLL|L", &pid, &first, &last, &noted_at))
        return NULL;
    proc *p = find_proc(pid);
    if (p)
        for (long long fd = first < 0 ? 0 : first; fd <= last && fd < p->nfds; fd++) {
            const fd_entry *e = p->fds[fd];
            /* a note's view change is older than an fd classified here since */
            if (!(e && e->since && noted_at >= 0 && e->since > (unsigned long long)noted_at))
                forget_fd(p, (int)fd);
        }
    Py_RETURN_NONE;
}

static PyObject *f_set_bookkeeping(PyObject *self, PyObject *args)
{
    if (!PyArg_ParseTuple(args, "pp", &bookkeeping_here, &admits_children))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *f_add_counters(PyObject *self, PyObject *args)
{
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list))
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list) && spare_count < SPARE_COUNTERS_MAX; i++) {
        PyObject *counters = PyList_GET_ITEM(list, i);
        if (!PyObject_TypeCheck(counters, &CountersType))
            return PyErr_Format(PyExc_TypeError, "a Counters is needed, not %R", counters);
        Py_INCREF(counters); /* the entry's */
        Py_INCREF(counters); /* the note's */
        spare_counters[spare_count++] = (Counters *)counters;
    }
    Py_RETURN_NONE;
}

static PyObject *f_spare_counters(PyObject *self, PyObject *noargs)
{
    return PyLong_FromLong(spare_count);
}

static PyObject *f_channel_key(PyObject *self, PyObject *args)
{
    const char *text;
    if (!PyArg_ParseTuple(args, "s", &text))
        return NULL;
    return PyLong_FromUnsignedLongLong(channel_key(text));
}

static PyObject *f_seen_by_python(PyObject *self, PyObject *args)
{
    int pid, fd;
    if (!PyArg_ParseTuple(args, "ii", &pid, &fd))
        return NULL;
    proc *p = find_proc(pid);
    if (p)
        fresh_clear(p, fd);
    Py_RETURN_NONE;
}

static PyObject *f_emit(PyObject *self, PyObject *args)
{
    const char *line;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "s#", &line, &len))
        return NULL;
    events_add(line, (size_t)len);
    Py_RETURN_NONE;
}

static PyObject *f_flush(PyObject *self, PyObject *noargs)
{
    events_flush();
    Py_RETURN_NONE;
}

/* output_errors() -> {"events": errno, "trace": errno, "logs": errno}, the outputs that failed */
static PyObject *f_output_errors(PyObject *self, PyObject *noargs)
{
    PyObject *errors = PyDict_New();
    const char *names[] = {"events", "trace", "logs"};
    int values[] = {events_error, trace_error, rows_error};
    for (int i = 0; errors && i < 3; i++) {
        if (!values[i])
            continue;
        PyObject *v = PyLong_FromLong(values[i]);
        if (!v || PyDict_SetItemString(errors, names[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(errors);
            return NULL;
        }
        Py_DECREF(v);
    }
    return errors;
}

static PyObject *f_add_row(PyObject *self, PyObject *args)
{
    int pid;
    const char *row;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "is#", &pid, &row, &len))
        return NULL;
    proc *p = find_proc(pid);
    if (p)
        rows_add(p, row, (size_t)len);
    Py_RETURN_NONE;
}

/* flush_rows(): every process's rows written out (with the header, the
 * first time), and those of processes that ended before.  A failure stays
 * in output_errors' "logs". */
static PyObject *f_append_log(PyObject *self, PyObject *args)
{
    const char *path, *text;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "ss#", &path, &text, &len))
        return NULL;
    char *copy = malloc((size_t)len + 1);
    if (!copy)
        return PyErr_NoMemory();
    memcpy(copy, text, (size_t)len);
    log_write_queue(path, copy, (size_t)len, 0);
    Py_RETURN_NONE;
}

static PyObject *f_flush_rows(PyObject *self, PyObject *noargs)
{
    for (int b = 0; b < HASH_BUCKETS; b++)
        for (proc *p = procs[b]; p; p = p->next)
            rows_flush(p);
    Py_BEGIN_ALLOW_THREADS
    rows_drain();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* drop_parked([pid]): forget the parked calls (of one process; of all). */
static PyObject *f_drop_parked(PyObject *self, PyObject *args)
{
    int pid = -1;
    if (!PyArg_ParseTuple(args, "|i", &pid))
        return NULL;
    if (pid < 0) {
        while (parked_list)
            unpark(parked_list);
    } else {
        drop_parked_of(pid, -1);
    }
    Py_RETURN_NONE;
}

/* handle_again(raw) -> (taken, [(raw, done, rest)...]): Python classified the
 * fd of this notification just now; the fast path may take it after all.
 * Calls it handed over meanwhile (retried parked ones) come back to Python. */
static PyObject *f_handle_again(PyObject *self, PyObject *args)
{
    struct seccomp_notif n;
    memset(&n, 0, sizeof n);
    unsigned long long id, ip, a[6];
    unsigned int pid, arch;
    int nr;
    if (!PyArg_ParseTuple(args, "(KIiIK(KKKKKK))", &id, &pid, &nr, &arch, &ip, &a[0], &a[1], &a[2], &a[3], &a[4],
                          &a[5]))
        return NULL;
    n.id = id;
    n.pid = pid;
    n.data.nr = nr;
    n.data.arch = arch;
    n.data.instruction_pointer = ip;
    for (int i = 0; i < 6; i++)
        n.data.args[i] = a[i];
    static handoffs_t h; /* under the lock */
    take_lock();
    h.count = 0;
    int taken = fast_handle(&n, &h);
    PyObject *handed_back = PyList_New(h.count);
    for (int i = 0; i < h.count; i++) {
        PyObject *item = handed_back ? handoff_args(&h.items[i].n, &h.items[i].begun) : NULL;
        if (item)
            PyList_SET_ITEM(handed_back, i, item);
        else
            Py_CLEAR(handed_back);
        free(h.items[i].begun.rest);
    }
    h.count = 0;
    pthread_mutex_unlock(&lock);
    if (!handed_back)
        return NULL;
    return Py_BuildValue("(NN)", PyBool_FromLong(taken), handed_back);
}

/* take_notes() -> [(what, pid, tid, value, seq)]: what the fast path did since. */
static PyObject *f_take_notes(PyObject *self, PyObject *noargs)
{
    PyObject *list = PyList_New((Py_ssize_t)notes_len);
    if (!list)
        return NULL;
    for (size_t i = 0; i < notes_len; i++) {
        note_t *n = &notes[i];
        PyObject *facts;
        classified_t *f = n->facts;
        if (!f)
            facts = Py_NewRef(Py_None);
        else if (f->family)
            facts = Py_BuildValue("(NIKKKiiiy#NI)", (PyObject *)f->counters, f->mode, f->rdev, f->dev, f->ino,
                                  f->family, f->type, f->protocol, (const char *)&f->local, (Py_ssize_t)f->local_len,
                                  f->connected ? PyBytes_FromStringAndSize((const char *)&f->remote, f->remote_len)
                                               : Py_NewRef(Py_None),
                                  f->peer_inode);
        else
            facts = Py_BuildValue("(NIKKKiiiOOI)", (PyObject *)f->counters, f->mode, f->rdev, f->dev, f->ino, 0, 0,
                                  0, Py_None, Py_None, 0u);
        free(f);
        n->facts = NULL;
        PyObject *item = facts ? Py_BuildValue("(iiiiKiN)", n->what, n->pid, n->tid, n->value, n->seq, n->pidfd, facts)
                               : NULL;
        if (!item) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    notes_len = 0;
    return list;
}

/* Read without the lock: a stale answer only delays the notes to the next round. */
static PyObject *f_notes_waiting(PyObject *self, PyObject *noargs)
{
    return PyBool_FromLong(__atomic_load_n(&notes_len, __ATOMIC_RELAXED) != 0);
}

static PyObject *f_stats(PyObject *self, PyObject *noargs)
{
    return Py_BuildValue("{sKsK}", "fast", fast_calls, "slow", slow_calls);
}

static PyMethodDef methods[] = {
    {"set_output", f_set_output, METH_VARARGS, "set_output(events_fd, trace_fd): where records go"},
    {"set_budgets", f_set_budgets, METH_O,
     "set_budgets([(class tag or '', inward, limit, stops)]): a policy's budgets, spent from zero"},
    {"budget_spend", f_budget_spend, METH_VARARGS, "budget_spend(index, bytes): bytes Python moved"},
    {"budget_totals", f_budget_totals, METH_NOARGS, "budget_totals() -> bytes spent, per budget"},
    {"count_rules", f_count_rules, METH_O, "count_rules(n): count, from now on, the calls each of n rules decides"},
    {"rule_totals", f_rule_totals, METH_NOARGS,
     "rule_totals() -> calls decided here: [by the default, by rule 0, by rule 1...]"},
    {"init", f_init, METH_VARARGS,
     "init(listener, handler, table, kinds): set up before run()"},
    {"run", f_run, METH_NOARGS, "run(): the receiver loop, until no traced task is left or stop()"},
    {"stop", f_stop, METH_NOARGS, "stop(): run() returns at its next wake-up"},
    {"tick", f_tick, METH_NOARGS, "tick(): forget dead callers; let deliverable signals in"},
    {"needs_tick", f_needs_tick, METH_NOARGS, "needs_tick() -> calls are parked, or a RECV may wait"},
    {"drop_parked", f_drop_parked, METH_VARARGS,
     "drop_parked([pid]): forget the parked calls of a process, or all (end of run)"},
    {"add_process", f_add_process, METH_VARARGS,
     "add_process(pid, pidfd, slow, log_path, argv_json): pidfd stays open while the process is known; a "
     "child admitted here (NOTE_ADMITTED) is completed"},
    {"set_argv", f_set_argv, METH_VARARGS, "set_argv(pid, argv_json): its argv after an exec"},
    {"remove_process", f_remove_process, METH_VARARGS,
     "remove_process(pid[, identity]): drop its fds, write its rows; with its identity, ended until reaped"},
    {"forget_ended", f_forget_ended, METH_VARARGS, "forget_ended(pid): it was reaped"},
    {"set_process_slow", f_set_process_slow, METH_VARARGS, "set_process_slow(pid, slow)"},
    {"set_fds_shared", f_set_fds_shared, METH_VARARGS,
     "set_fds_shared(pid): other tasks share its fd table (threads, CLONE_FILES)"},
    {"set_threaded", f_set_threaded, METH_VARARGS, "set_threaded(pid): it has threads, or may have"},
    {"add_task", f_add_task, METH_VARARGS, "add_task(tid, pid)"},
    {"remove_task", f_remove_task, METH_VARARGS, "remove_task(tid)"},
    {"set_task_slow", f_set_task_slow, METH_VARARGS, "set_task_slow(tid, slow)"},
    {"picture_set", f_picture_set, METH_VARARGS, "picture_set(pid, numbers): its open fd numbers, listed"},
    {"picture_forget", f_picture_forget, METH_VARARGS, "picture_forget(pid): its fd numbers are not known"},
    {"picture_free_from", f_picture_free_from, METH_VARARGS,
     "picture_free_from(pid, base) -> the lowest number not open at base or above; -1 without a picture"},
    {"picture_add", f_picture_add, METH_VARARGS, "picture_add(pid, fd): a new fd"},
    {"picture_remove", f_picture_remove, METH_VARARGS, "picture_remove(pid, first, last): fds closed"},
    {"picture", f_picture, METH_VARARGS, "picture(pid) -> its open fd numbers as known, or None"},
    {"picture_copy", f_picture_copy, METH_VARARGS, "picture_copy(child, parent, inherited, admitted=False): a fork child's picture (admitted: it has it); "
     "Python has a view of the inherited fds"},
    {"take_seq", f_take_seq, METH_VARARGS, "take_seq(pid) -> the process's next call number"},
    {"process_counts", f_process_counts, METH_VARARGS,
     "process_counts(pid) -> (call numbers taken, calls here run by the kernel without a known result)"},
    {"cache_fd", f_cache_fd, METH_VARARGS,
     "cache_fd(pid, fd, dup, mode, is_net, tag, fragment, counters, key, peer_key, tcp, rules) -> bool: "
     "the fast path may take it; key names its channel, peer_key the one its bytes reach (0: unknown)"},
    {"is_cached", f_is_cached, METH_VARARGS, "is_cached(pid, fd) -> bool"},
    {"drop_fds", f_drop_fds, METH_VARARGS,
     "drop_fds(pid, first, last[, noted_at]): close our copies of those fds (but for those classified here after "
     "the call numbered noted_at)"},
    {"set_bookkeeping", f_set_bookkeeping, METH_VARARGS,
     "set_bookkeeping(classify, admit): classify the pipes and sockets the fast path made "
     "(NOTE_CLASSIFIED); take in the children its forks made (NOTE_ADMITTED)"},
    {"add_counters", f_add_counters, METH_VARARGS, "add_counters([Counters...]): for fds classified here"},
    {"spare_counters", f_spare_counters, METH_NOARGS, "spare_counters() -> how many add_counters gave are left"},
    {"channel_key", f_channel_key, METH_VARARGS, "channel_key(text) -> the number naming a channel"},
    {"seen_by_python", f_seen_by_python, METH_VARARGS,
     "seen_by_python(pid, fd): Python has a view of it, so the fast path does not classify it"},
    {"emit", f_emit, METH_VARARGS, "emit(line): append a line to events.jsonl"},
    {"flush", f_flush, METH_NOARGS, "flush(): write events.jsonl's pending lines"},
    {"output_errors", f_output_errors, METH_NOARGS,
     "output_errors() -> {output: errno}: events, trace or logs that could not be written (a full disk)"},
    {"add_row", f_add_row, METH_VARARGS, "add_row(pid, row): a network row of the process's log"},
    {"append_log", f_append_log, METH_VARARGS,
     "append_log(path, text): the log writer appends text, after the rows handed over before"},
    {"flush_rows", f_flush_rows, METH_NOARGS, "flush_rows(): write every log's rows out"},
    {"handle_again", f_handle_again, METH_VARARGS,
     "handle_again(raw) -> (taken, [(raw, done, rest)]): offer a notification to the fast path again"},
    {"notes_waiting", f_notes_waiting, METH_NOARGS, "notes_waiting() -> bool: take_notes() would return some"},
    {"take_notes", f_take_notes, METH_NOARGS,
     "take_notes() -> [(what, pid, tid, value, seq, pidfd)]: the lifecycle calls taken here since the last time;\n"
     "pidfd: NOTE_SPAWNED's, the caller's to close, else -1"},
    {"stats", f_stats, METH_NOARGS, "stats() -> {'fast': calls answered here, 'slow': calls given to Python}"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "superv._fastpath",
                                    "The supervisor's hot path: common data calls without Python.", -1, methods};

PyMODINIT_FUNC PyInit__fastpath(void)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&lock, &attr);
    if (PyType_Ready(&LockType) < 0 || PyType_Ready(&CountersType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    PyObject *the_lock = PyObject_CallObject((PyObject *)&LockType, NULL);
    Py_INCREF(&CountersType);
    if (!the_lock || PyModule_AddObject(m, "lock", the_lock) < 0 ||
        PyModule_AddObject(m, "Counters", (PyObject *)&CountersType) < 0 ||
        PyModule_AddIntConstant(m, "CHUNK", CHUNK) < 0 || PyModule_AddIntConstant(m, "L_BUF", L_BUF) < 0 ||
        PyModule_AddIntConstant(m, "L_BUF_AT", L_BUF_AT) < 0 || PyModule_AddIntConstant(m, "L_IOV", L_IOV) < 0 ||
        PyModule_AddIntConstant(m, "L_IOV_AT", L_IOV_AT) < 0 ||
        PyModule_AddIntConstant(m, "M_PASSTHROUGH", M_PASSTHROUGH) < 0 ||
        PyModule_AddIntConstant(m, "L_SOCK", L_SOCK) < 0 || PyModule_AddIntConstant(m, "L_MSG", L_MSG) < 0 ||
        PyModule_AddIntConstant(m, "M_PIPE", M_PIPE) < 0 ||
        PyModule_AddIntConstant(m, "L_CLOSE", L_CLOSE) < 0 || PyModule_AddIntConstant(m, "L_EXIT", L_EXIT) < 0 ||
        PyModule_AddIntConstant(m, "L_EXIT_GROUP", L_EXIT_GROUP) < 0 ||
        PyModule_AddIntConstant(m, "L_SHUTDOWN", L_SHUTDOWN) < 0 ||
        PyModule_AddIntConstant(m, "L_OPEN_PATH0", L_OPEN_PATH0) < 0 ||
        PyModule_AddIntConstant(m, "L_OPEN_PATH1", L_OPEN_PATH1) < 0 ||
        PyModule_AddIntConstant(m, "L_SOCKET", L_SOCKET) < 0 || PyModule_AddIntConstant(m, "L_ACCEPT", L_ACCEPT) < 0 ||
        PyModule_AddIntConstant(m, "L_PIPE", L_PIPE) < 0 ||
        PyModule_AddIntConstant(m, "L_SOCKETPAIR", L_SOCKETPAIR) < 0 ||
        PyModule_AddIntConstant(m, "L_CONNECT", L_CONNECT) < 0 ||
        PyModule_AddIntConstant(m, "L_DUP", L_DUP) < 0 ||
        PyModule_AddIntConstant(m, "L_FCNTL_DUPFD", L_FCNTL_DUPFD) < 0 ||
        PyModule_AddIntConstant(m, "L_DUP2", L_DUP2) < 0 ||
        PyModule_AddIntConstant(m, "L_SPAWN", L_SPAWN) < 0 || PyModule_AddIntConstant(m, "L_REAP", L_REAP) < 0 ||
        PyModule_AddIntConstant(m, "NOTE_SPAWNED", NOTE_SPAWNED) < 0 ||
        PyModule_AddIntConstant(m, "NOTE_REAPED", NOTE_REAPED) < 0 ||
        PyModule_AddIntConstant(m, "NOTE_CLASSIFIED", NOTE_CLASSIFIED) < 0 ||
        PyModule_AddIntConstant(m, "NOTE_ADMITTED", NOTE_ADMITTED) < 0 ||
        PyModule_AddIntConstant(m, "NOTE_FD_MADE", NOTE_FD_MADE) < 0 ||
        PyModule_AddIntConstant(m, "NOTE_CONNECTED", NOTE_CONNECTED) < 0 ||
        PyModule_AddIntConstant(m, "NOTE_CLOSE", NOTE_CLOSE) < 0 ||
        PyModule_AddIntConstant(m, "NOTE_EXIT_GROUP", NOTE_EXIT_GROUP) < 0 ||
        PyModule_AddIntConstant(m, "NOTE_THREAD_EXIT", NOTE_THREAD_EXIT) < 0 ||
        PyModule_AddIntConstant(m, "M_STREAM", M_STREAM) < 0 ||
        PyModule_AddIntConstant(m, "M_DATAGRAM", M_DATAGRAM) < 0 ||
        PyModule_AddIntConstant(m, "M_FILE", M_FILE) < 0 || PyModule_AddIntConstant(m, "M_MEMDEV", M_MEMDEV) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
