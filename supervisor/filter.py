"""The BPF program the launcher installs, generated from the syscall table.

libseccomp (through pyseccomp) writes the program: it checks the
architecture first, so an i386 `int 0x80` or an x32 number (nr with bit 30
set) ends in SECCOMP_RET_KILL_PROCESS before any rule is looked at
(kernel-facts Q9).  Every syscall in the table goes to the supervisor, but
for those a policy denies outright; all others run in the kernel untouched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from . import syscalls


def _import_pyseccomp():
    """pyseccomp finds libc and libseccomp with ctypes.util.find_library,
    which runs `ldconfig -p` for each: 13 ms of superv's 90 ms start-up.
    Their sonames are the libraries' ABI, so they are tried first; the
    search is the fallback."""
    search = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        soname = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}.get(name)
        if soname is not None:
            try:
                ctypes.CDLL(soname)
                return soname
            except OSError:
                pass
        return search(name)

    ctypes.util.find_library = find_library
    try:
        import pyseccomp
    finally:
        ctypes.util.find_library = search
    return pyseccomp


pyseccomp = _import_pyseccomp()


PIDFD_THREAD = os.O_EXCL  # pidfd_open() of any thread, not only a leader (6.9)
LOW_32 = 0xFFFFFFFF  # pid_t arguments: an int in a 64-bit register


def build(kernel_rules=(), guards=(), supervisor: tuple[int, int] | None = None,
          on_demand=()) -> pyseccomp.SyscallFilter:
    """kernel_rules: a policy's calls denied or killed outright
    (policy.kernel_plan), decided here instead of in the supervisor.
    guards: its `target: supervisor` rules, compiled against supervisor =
    (superv's pid, its process group).  on_demand: the names of the calls
    it has traced besides the table's (policy.traced_on_demand)."""
    bpf = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    bpf.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)
    in_kernel = set()
    for rule in kernel_rules:
        bpf.add_rule(_action(rule), rule.syscall)
        in_kernel.add(rule.syscall)
    for rule in guards:
        _guard(bpf, rule, *supervisor)
    for name in sorted(on_demand):
        bpf.add_rule(pyseccomp.NOTIFY, name)
    for call in syscalls.TABLE:
        if call.name in in_kernel:
            continue
        if call.name == "fcntl":
            # fcntl is common (F_GETFL, F_SETFD...); only the duplicating
            # commands change which files the fd numbers name.
            for command in syscalls.FCNTL_TRACED_COMMANDS:
                bpf.add_rule(pyseccomp.NOTIFY, call.nr, pyseccomp.Arg(1, pyseccomp.EQ, command))
        else:
            bpf.add_rule(pyseccomp.NOTIFY, call.nr)
    return bpf


def _action(rule) -> int:
    return pyseccomp.KILL_PROCESS if rule.action == "kill" else pyseccomp.ERRNO(rule.errno)


def _guard(bpf: pyseccomp.SyscallFilter, rule, pid: int, pgid: int) -> None:
    """Every way a guarded call can reach superv, as comparisons of its pid
    arguments: registers, so there is nothing for another thread to change.
    A thread of superv has a tid of its own: tkill, and pidfd_open with
    PIDFD_THREAD, go to the supervisor, which knows its threads."""
    action = _action(rule)

    def pid_is(index: int, value: int) -> pyseccomp.Arg:
        return pyseccomp.Arg(index, pyseccomp.MASKED_EQ, LOW_32, value & LOW_32)

    for name in sorted(rule.syscalls):
        if name == "kill":  # superv; the process group it shares with the program; everyone
            for target in (pid, 0, -1, -pgid):
                bpf.add_rule(action, name, pid_is(0, target))
        elif name in ("tgkill", "rt_tgsigqueueinfo", "rt_sigqueueinfo"):
            bpf.add_rule(action, name, pid_is(0, pid))
        elif name == "pidfd_open":
            bpf.add_rule(action, name, pid_is(0, pid))
            bpf.add_rule(pyseccomp.NOTIFY, name, pyseccomp.Arg(1, pyseccomp.MASKED_EQ, PIDFD_THREAD, PIDFD_THREAD))
        elif name == "tkill":
            bpf.add_rule(pyseccomp.NOTIFY, name)
        elif name == "ioctl":  # the fd names a terminal: the supervisor asks whose
            bpf.add_rule(pyseccomp.NOTIFY, name, pyseccomp.Arg(1, pyseccomp.MASKED_EQ, LOW_32, syscalls.TIOCSIG))
        elif syscalls.BY_NAME[name].handling in (syscalls.Handling.FD_NEW, syscalls.Handling.PATH_CHANGE) and \
                name != "fcntl":
            continue  # superv's /proc/PID files: the supervisor decides on the file the path reaches
        elif name == "fcntl":  # SIGIO and SIGURG go to the owner
            for target in (pid, -pgid):
                bpf.add_rule(action, name, pyseccomp.Arg(1, pyseccomp.EQ, syscalls.F_SETOWN), pid_is(2, target))
            # F_SETOWN_EX's owner is in memory: the supervisor decides on its copy
            bpf.add_rule(pyseccomp.NOTIFY, name, pyseccomp.Arg(1, pyseccomp.EQ, syscalls.F_SETOWN_EX))


def program_fd(kernel_rules=(), guards=(), supervisor: tuple[int, int] | None = None, on_demand=()) -> int:
    """A memfd holding the program (an array of struct sock_filter, ready for
    seccomp(2)), positioned at its start, for the launcher to read."""
    fd = os.memfd_create("superv-filter", 0)
    with os.fdopen(os.dup(fd), "wb") as sink:
        build(kernel_rules, guards, supervisor, on_demand).export_bpf(sink)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
