"""The BPF program the launcher installs, generated from the syscall table.

libseccomp (through pyseccomp) writes the program: it checks the
architecture first, so an i386 `int 0x80` or an x32 number (nr with bit 30
set) ends in SECCOMP_RET_KILL_PROCESS before any rule is looked at
(kernel-facts Q9).  Every syscall in the table goes to the supervisor, but
for those a policy denies outright; all others run in the kernel untouched.
"""

from __future__ import annotations

import os

import pyseccomp

from . import syscalls


def build(kernel_rules=()) -> pyseccomp.SyscallFilter:
    """kernel_rules: a policy's calls denied or killed outright
    (policy.kernel_plan), decided here instead of in the supervisor."""
    bpf = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    bpf.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)
    in_kernel = set()
    for rule in kernel_rules:
        bpf.add_rule(pyseccomp.KILL_PROCESS if rule.action == "kill" else pyseccomp.ERRNO(rule.errno), rule.syscall)
        in_kernel.add(rule.syscall)
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


def program_fd(kernel_rules=()) -> int:
    """A memfd holding the program (an array of struct sock_filter, ready for
    seccomp(2)), positioned at its start, for the launcher to read."""
    fd = os.memfd_create("superv-filter", 0)
    with os.fdopen(os.dup(fd), "wb") as sink:
        build(kernel_rules).export_bpf(sink)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
