/* signal_superv [attack]: every way a program can aim a signal at its
 * parent (under superv, superv itself), probed with signal 0 (which checks
 * and delivers nothing) and printed as "name: result":
 *   kill parent, kill group (0), kill everyone (-1), kill -pgid, tgkill,
 *   tkill of each of the parent's threads, rt_sigqueueinfo, pidfd_open,
 *   fcntl(F_SETOWN) and F_SETOWN_EX (its pid, its process group),
 *   pidfd_send_signal through an fd of its /proc/PID directory.
 * With "attack", it then sends SIGKILL to the parent. */
#include "sig_common.h"

#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>

static void show(const char *name, long rc)
{
    if (rc < 0)
        say("%s: %s\n", name, errname(errno));
    else
        say("%s: ok\n", name);
}

int main(int argc, char **argv)
{
    pid_t parent = getppid();
    show("kill parent", kill(parent, 0));
    show("kill group", kill(0, 0));
    show("kill everyone", kill(-1, 0));
    show("kill -pgid", kill(-getpgid(parent), 0));
    show("tgkill", syscall(SYS_tgkill, parent, parent, 0));
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", parent);
    DIR *tasks = opendir(dir);
    long denied = 0, threads = 0;
    for (struct dirent *d; tasks && (d = readdir(tasks));) {
        if (d->d_name[0] == '.')
            continue;
        threads++;
        if (syscall(SYS_tkill, atoi(d->d_name), 0) < 0 && errno == EPERM)
            denied++;
    }
    say("tkill: %s\n", threads && denied == threads ? "EPERM" : denied ? "some EPERM" : "ok");
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_code = SI_QUEUE;
    show("rt_sigqueueinfo", syscall(SYS_rt_sigqueueinfo, parent, 0, &info));
    long pidfd = syscall(SYS_pidfd_open, parent, 0);
    show("pidfd_open", pidfd);
    int p[2];
    if (pipe(p) == 0) {
        show("F_SETOWN", fcntl(p[0], F_SETOWN, parent));
        struct f_owner_ex owner = {F_OWNER_PID, parent};
        show("F_SETOWN_EX", fcntl(p[0], F_SETOWN_EX, &owner));
        struct f_owner_ex group = {F_OWNER_PGRP, getpgid(parent)};
        show("F_SETOWN_EX pgrp", fcntl(p[0], F_SETOWN_EX, &group));
    }
    /* a /proc/PID directory's fd is a pidfd for pidfd_send_signal */
    char proc_dir[64];
    snprintf(proc_dir, sizeof proc_dir, "/proc/%d", parent);
    int dir_fd = open(proc_dir, O_RDONLY | O_DIRECTORY);
    show("pidfd_send_signal /proc", dir_fd < 0 ? dir_fd : syscall(SYS_pidfd_send_signal, dir_fd, 0, NULL, 0));
    if (argc > 1 && !strcmp(argv[1], "attack"))
        show("SIGKILL", kill(parent, SIGKILL));
    return 0;
}
