/* open_cases DIR: open calls with every kind of path the kernel resolves
 * specially, made in a fresh tree under DIR.  One line per case: the errno
 * name, or "ok" and what the opened fd is (the first line of a file, a
 * directory's name, the type of anything else, its open flags, the mode of
 * a created file).  Run natively and under a policy that makes superv walk
 * and open every path itself: the two outputs must be the same. */
#include "sig_common.h"

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static char dir[1024];

static void put(const char *where, const char *text)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, where);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        exit(2);
    close(fd);
}

static void at(const char *where, char *path)
{
    snprintf(path, 2048, "%s/%s", dir, where);
}

/* What an fd is, in words that do not change from run to run. */
static void describe(const char *name, int fd)
{
    if (fd < 0) {
        say("%s: %s\n", name, errname(errno));
        return;
    }
    struct stat st;
    fstat(fd, &st);
    int flags = fcntl(fd, F_GETFL) & ~O_LARGEFILE;
    int cloexec = fcntl(fd, F_GETFD) & FD_CLOEXEC;
    char what[256] = "";
    if (S_ISREG(st.st_mode) && !(flags & O_PATH) && (flags & O_ACCMODE) != O_WRONLY) {
        ssize_t n = pread(fd, what, sizeof what - 1, 0);
        what[n > 0 ? n : 0] = 0;
        what[strcspn(what, "\n")] = 0;
    } else if (S_ISDIR(st.st_mode)) {
        char link[64], target[1024];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        snprintf(what, sizeof what, "dir %.200s", strncmp(target, dir, strlen(dir)) ? target : target + strlen(dir));
    } else {
        snprintf(what, sizeof what, "%s", S_ISFIFO(st.st_mode) ? "fifo-or-pipe" : S_ISCHR(st.st_mode) ? "chr"
                 : S_ISLNK(st.st_mode) ? "symlink" : S_ISSOCK(st.st_mode) ? "socket" : "other");
    }
    say("%s: ok %s flags=%o cloexec=%d mode=%o size=%ld\n", name, what, flags, cloexec, st.st_mode & 07777,
        S_ISREG(st.st_mode) ? (long)st.st_size : -1L);
    close(fd);
}

static long openat2_(int dirfd, const char *path, unsigned long long flags, unsigned long long mode,
                     unsigned long long resolve)
{
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    char p[2048], q[2048];
    /* the tree */
    at("a", p), mkdir(p, 0755);
    at("a/b", p), mkdir(p, 0755);
    at("closed", p), mkdir(p, 0755);
    put("a/b/file", "a/b/file\n");
    put("top", "top\n");
    at("a/b/file", p), at("abs-link", q), symlink(p, q);
    at("rel-link", q), symlink("a/b/file", q);
    at("a/up-link", q), symlink("../top", q);
    at("chain1", q), symlink("chain2", q);
    at("chain2", q), symlink("rel-link", q);
    at("loop1", q), symlink("loop2", q);
    at("loop2", q), symlink("loop1", q);
    at("dangling", q), symlink("made-by-dangling", q);
    at("dir-link", q), symlink("a/b", q);
    at("proc-link", q), symlink("/proc/self/status", q);
    at("fifo", p), mkfifo(p, 0644);
    at("closed/inside", p), close(open(p, O_CREAT | O_WRONLY, 0600));
    at("closed", p), chmod(p, 0);
    umask(027);
    if (chdir(dir) != 0)
        return 2;
    int a = open("a", O_RDONLY | O_DIRECTORY);
    int file_fd = open("top", O_RDONLY);

    describe("relative", open("a/b/file", O_RDONLY));
    describe("absolute", open((at("a/b/file", p), p), O_RDONLY));
    describe("dot-dot", open("a/b/../../top", O_RDONLY));
    describe("root-dot-dot", open("/../../etc/../etc/hostname", O_RDONLY) >= 0 ? open("/../..", O_RDONLY) : -1);
    describe("dot", open(".", O_RDONLY));
    describe("dirfd", openat(a, "b/file", O_RDONLY));
    describe("dirfd-abs", openat(12345, (at("top", p), p), O_RDONLY));
    describe("bad-dirfd", openat(12345, "top", O_RDONLY));
    describe("file-dirfd", openat(file_fd, "x", O_RDONLY));
    describe("abs-link", open("abs-link", O_RDONLY));
    describe("rel-link", open("rel-link", O_RDWR));
    describe("chain", open("chain1", O_RDONLY));
    describe("up-link", open("a/up-link", O_RDONLY));
    describe("dir-link", open("dir-link/file", O_RDONLY));
    describe("loop", open("loop1", O_RDONLY));
    describe("nofollow", open("rel-link", O_RDONLY | O_NOFOLLOW));
    describe("nofollow-path", open("rel-link", O_PATH | O_NOFOLLOW));
    describe("path", open("top", O_PATH));
    describe("enoent", open("a/none", O_RDONLY));
    describe("enoent-dir", open("none/file", O_RDONLY));
    describe("enotdir", open("top/x", O_RDONLY));
    describe("trailing-slash-file", open("top/", O_RDONLY));
    describe("trailing-slash-dir", open("a/", O_RDONLY));
    describe("trailing-slash-creat", open("new/", O_WRONLY | O_CREAT, 0644));
    describe("directory-flag", open("top", O_RDONLY | O_DIRECTORY));
    describe("write-dir", open("a", O_WRONLY));
    describe("creat", open("made", O_WRONLY | O_CREAT, 0666));
    describe("creat-again", open("made", O_RDWR | O_CREAT | O_APPEND, 0600));
    describe("creat-excl", open("made", O_WRONLY | O_CREAT | O_EXCL, 0600));
    describe("excl-link", open("rel-link", O_WRONLY | O_CREAT | O_EXCL, 0600));
    describe("trunc", open("made", O_WRONLY | O_TRUNC | O_CLOEXEC));
    describe("creat-dangling", open("dangling", O_WRONLY | O_CREAT, 0640));
    describe("creat-syscall", (int)syscall(SYS_creat, "made-by-creat", 0777));
    describe("tmpfile", open("a", O_TMPFILE | O_RDWR, 0600));
    describe("search-denied", open("closed/inside", O_RDONLY));
    describe("long-name", open("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", O_RDONLY));
    describe("efault", open((char *)8, O_RDONLY));
    describe("empty", open("", O_RDONLY));
    describe("nonblock-fifo", open("fifo", O_RDONLY | O_NONBLOCK));
    /* procfs: the program's own, not superv's */
    int status = open("/proc/self/status", O_RDONLY), thread = open("/proc/thread-self/status", O_RDONLY);
    char text[4096];
    ssize_t n = read(status, text, sizeof text - 1);
    text[n > 0 ? n : 0] = 0;
    say("proc-self: %s\n", strstr(text, "\nPid:") && atoi(strstr(text, "\nPid:") + 5) == getpid() ? "mine" : "not mine");
    n = read(thread, text, sizeof text - 1);
    text[n > 0 ? n : 0] = 0;
    say("proc-thread-self: %s\n", strstr(text, "\nPid:") && atoi(strstr(text, "\nPid:") + 5) == gettid() ? "mine" : "not mine");
    n = pread(open("proc-link", O_RDONLY), text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = 0;
    say("proc-link: %s\n", strstr(text, "\nPid:") && atoi(strstr(text, "\nPid:") + 5) == getpid() ? "mine" : "not mine");
    describe("proc-fd", open("/proc/self/fd/3", O_RDONLY));  /* the directory a */
    describe("dev-fd", open((snprintf(q, sizeof q, "/dev/fd/%d", file_fd), q), O_RDONLY));
    describe("proc-cwd", open("/proc/self/cwd/top", O_RDONLY));
    describe("proc-net", open("/proc/net/unix", O_RDONLY) >= 0 ? open("/proc/self/net/unix", O_PATH) : -1);
    describe("proc-self-mem", open("/proc/self/mem", O_RDWR));
    int pipe_fds[2];
    if (pipe(pipe_fds) == 0) {
        snprintf(q, sizeof q, "/proc/self/fd/%d", pipe_fds[1]);
        int again = open(q, O_WRONLY);
        say("pipe-reopen: %s\n", again >= 0 && write(again, "p", 1) == 1 && read(pipe_fds[0], text, 1) == 1 ? "ok" : errname(errno));
    }
    /* a FIFO open waits for the other end, here a child */
    pid_t child = fork();
    if (child == 0) {
        int w = open("fifo", O_WRONLY);
        _exit(w >= 0 && write(w, "fifo\n", 5) == 5 ? 0 : 1);
    }
    describe("fifo", open("fifo", O_RDONLY));
    int wstatus;
    waitpid(child, &wstatus, 0);
    say("fifo-writer: %d\n", WEXITSTATUS(wstatus));
    /* openat2 */
    describe("openat2", (int)openat2_(AT_FDCWD, "a/b/file", O_RDONLY, 0, 0));
    describe("openat2-beneath", (int)openat2_(a, "b/file", O_RDONLY, 0, RESOLVE_BENEATH));
    describe("openat2-beneath-escape", (int)openat2_(a, "../top", O_RDONLY, 0, RESOLVE_BENEATH));
    describe("openat2-beneath-abs", (int)openat2_(a, "/etc/hostname", O_RDONLY, 0, RESOLVE_BENEATH));
    describe("openat2-in-root", (int)openat2_(a, "/b/file", O_RDONLY, 0, RESOLVE_IN_ROOT));
    describe("openat2-in-root-up", (int)openat2_(a, "../../b/file", O_RDONLY, 0, RESOLVE_IN_ROOT));
    describe("openat2-no-symlinks", (int)openat2_(AT_FDCWD, "rel-link", O_RDONLY, 0, RESOLVE_NO_SYMLINKS));
    describe("openat2-no-magic", (int)openat2_(AT_FDCWD, "/proc/self/cwd/top", O_RDONLY, 0, RESOLVE_NO_MAGICLINKS));
    describe("openat2-bad-flags", (int)openat2_(AT_FDCWD, "top", 1ULL << 40, 0, 0));
    describe("openat2-mode-without-creat", (int)openat2_(AT_FDCWD, "top", O_RDONLY, 0644, 0));
    describe("openat2-creat", (int)openat2_(AT_FDCWD, "made-by-openat2", O_WRONLY | O_CREAT, 0604, 0));
    struct open_how small = {0};
    describe("openat2-small", (int)syscall(SYS_openat2, AT_FDCWD, "top", &small, 8));
    return 0;
}
