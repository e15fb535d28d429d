/* policy_calls MODE [FILE]: calls that policies decide on, each printed as
 * "name: result" (a count, or an errno name), so that a run under a policy
 * can be compared with a native one.
 *   kernel  ptrace(PTRACE_TRACEME), unshare(CLONE_NEWUTS), personality query
 *   net     socket(AF_INET, SOCK_STREAM), socket(AF_INET, SOCK_DGRAM),
 *           then a unix socketpair carrying 5 bytes
 *   disk    open FILE for writing and write 5 bytes to it, then 5 bytes
 *           through a pipe
 *   bulk    send FILE MiB (a number) through a unix socketpair, 64 KiB a
 *           call, to a child that reads them: "sent N" or "sent N then ERR" */
#include "sig_common.h" /* first: it defines _GNU_SOURCE */

#include <sched.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>

static void show(const char *name, long rc)
{
    if (rc < 0)
        say("%s: %s\n", name, errname(errno));
    else
        say("%s: %ld\n", name, rc);
}

static void through(int in, int out, const char *name)
{
    char buf[8];
    long w = write(out, "hello", 5);
    long r = read(in, buf, sizeof buf);
    show(name, w == 5 && r == 5 ? r : -1);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "kernel")) {
        show("ptrace", ptrace(PTRACE_TRACEME, 0, NULL, NULL));
        show("unshare", unshare(CLONE_NEWUTS));
        show("personality", personality(0xffffffff) < 0 ? -1 : 0);
    } else if (!strcmp(mode, "net")) {
        show("socket tcp", socket(AF_INET, SOCK_STREAM, 0));
        show("socket udp", socket(AF_INET, SOCK_DGRAM, 0));
        int sv[2];
        show("socketpair unix", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
        through(sv[1], sv[0], "unix bytes");
    } else if (!strcmp(mode, "disk") && argc > 2) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        show("open", fd);
        show("write file", write(fd, "hello", 5));
        int p[2];
        show("pipe", pipe(p));
        through(p[0], p[1], "pipe bytes");
    } else if (!strcmp(mode, "bulk") && argc > 2) {
        static char chunk[65536];
        long total = atol(argv[2]) << 20, sent = 0;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
            return 1;
        pid_t reader = fork();
        if (reader == 0) {
            close(sv[0]);
            while (read(sv[1], chunk, sizeof chunk) > 0)
                ;
            _exit(0);
        }
        close(sv[1]);
        while (sent < total) {
            long n = write(sv[0], chunk, sizeof chunk);
            if (n < 0) {
                say("sent %ld then %s\n", sent, errname(errno));
                break;
            }
            sent += n;
        }
        if (sent >= total)
            say("sent %ld\n", sent);
        close(sv[0]);
        waitpid(reader, NULL, 0);
    } else {
        say("usage: policy_calls kernel|net|disk [FILE]|bulk MIB\n");
        return 2;
    }
    return 0;
}
