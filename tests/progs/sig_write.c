#include "sig_common.h"

/*
 * sig_write TRANSPORT CASE HANDLER: a writer blocked in write() (pipe) or
 * send() (unix stream socket) gets SIGUSR1 from its reader process.
 *
 *   CASE full     the channel is filled first (non-blocking writes until
 *                 EAGAIN), then write(1000) blocks having written nothing:
 *                 restarted (SA_RESTART) or EINTR
 *   CASE partial  write(1000000) into the empty channel blocks once the
 *                 channel is full: the signal makes it return the count
 *                 written so far, with or without SA_RESTART
 *   HANDLER       restart | norestart
 *
 * The reader sends the signal once the writer sleeps in exactly that call
 * (its fd and count, from /proc/PID/syscall), waits for the handler's word,
 * then reads everything to EOF and checks it.  The writer finishes what it
 * meant to write.  Every result is printed.
 */
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define BIG 1000000
#define SMALL 1000

static int ack_w = -1;
static int use_send;

static void on_usr1(int sig)
{
    (void)sig;
    int saved = errno;
    ssize_t unused = write(1, "handler SIGUSR1\n", 16);
    unused = write(ack_w, "x", 1);
    (void)unused;
    errno = saved;
}

static ssize_t put(int fd, const void *buf, size_t n)
{
    return use_send ? send(fd, buf, n, 0) : write(fd, buf, n);
}

/* Until the task sleeps in syscall nr(fd, _, count). */
static int wait_in_call(const char *task_dir, long nr, int fd, size_t count)
{
    char path[128], text[256];
    snprintf(path, sizeof path, "%s/syscall", task_dir);
    for (int i = 0; i < 20000; i++) {
        int f = open(path, O_RDONLY);
        if (f >= 0) {
            ssize_t n = read(f, text, sizeof text - 1);
            close(f);
            if (n > 0) {
                text[n] = 0;
                unsigned long got_nr, got_fd, buf, got_count;
                if (sscanf(text, "%lu %lx %lx %lx", &got_nr, &got_fd, &buf, &got_count) == 4 &&
                    got_nr == (unsigned long)nr && got_fd == (unsigned long)fd && got_count == count &&
                    strchr("SD", state_of(task_dir)))
                    return 0;
            }
        }
        sleep_ms(1);
    }
    return -1;
}

static unsigned char data[BIG + (1 << 22)];

int main(int argc, char **argv)
{
    if (argc != 4)
        return 92;
    const char *transport = argv[1], *which = argv[2], *handler = argv[3];
    int fds[2], ack[2];
    if (!strcmp(transport, "unix")) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
            return 90;
        use_send = 1;
    } else if (pipe(fds) < 0) {
        return 90;
    }
    if (pipe(ack) < 0)
        return 90;
    ack_w = ack[1];
    for (long i = 0; i < (long)sizeof data; i++)
        data[i] = pattern(i, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = !strcmp(handler, "restart") ? SA_RESTART : 0;
    sigaction(SIGUSR1, &sa, NULL);

    int full = !strcmp(which, "full");
    size_t count = full ? SMALL : BIG;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0)
        return 90;
    if (child == 0) {
        close(fds[1]);
        close(ack[1]);
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d", parent);
        if (wait_in_call(dir, use_send ? SYS_sendto : SYS_write, fds[1], count) < 0)
            say("reader: the writer never blocked\n");
        kill(parent, SIGUSR1);
        char c;
        ssize_t r;
        while ((r = read(ack[0], &c, 1)) < 0 && errno == EINTR)
            ;
        static unsigned char buf[65536];
        long total = 0;
        int intact = 1;
        while ((r = read(fds[0], buf, sizeof buf)) != 0) {
            if (r < 0) {
                say("reader: read = -1 %s\n", errname(errno));
                if (errno == EINTR)
                    continue;
                break;
            }
            for (ssize_t i = 0; i < r; i++)
                if (buf[i] != pattern(total + i, 0))
                    intact = 0;
            total += r;
        }
        say("reader got %ld bytes %s\n", total, intact ? "intact" : "CORRUPT");
        _exit(0);
    }
    close(fds[0]);
    close(ack[0]);
    int wfd = fds[1];

    long offset = 0;
    if (full) {
        fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK);
        for (;;) {
            ssize_t w = put(wfd, data + offset, 4096);
            if (w < 0)
                break;
            offset += w;
        }
        int err = errno;
        fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) & ~O_NONBLOCK);
        say("prefilled %ld, then %s\n", offset, errname(err));
    }
    say("start %s %s %s\n", transport, which, handler);
    ssize_t w = put(wfd, data + offset, count);
    int err = errno;
    if (w >= 0)
        say("write1 = %zd\n", w);
    else
        say("write1 = -1 %s\n", errname(err));
    if (w < 0 && err == EINTR) {
        w = put(wfd, data + offset, count);
        err = errno;
        if (w >= 0)
            say("write2 = %zd\n", w);
        else
            say("write2 = -1 %s\n", errname(err));
    }
    size_t done = w > 0 ? (size_t)w : 0;
    offset += done;
    while (done < count) {
        ssize_t more = put(wfd, data + offset, count - done);
        if (more < 0) {
            say("rest: write = -1 %s\n", errname(errno));
            if (errno == EINTR)
                continue;
            break;
        }
        done += more;
        offset += more;
    }
    say("wrote %ld in all\n", offset);
    close(wfd);
    int status;
    waitpid(child, &status, 0);
    say("reader %s %d\n", WIFEXITED(status) ? "exited" : "killed", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return 0;
}
