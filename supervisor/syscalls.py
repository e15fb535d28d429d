"""The one table of the syscalls superv traces, as strace keeps its tables.

Every other module asks this table what a syscall is: its number, the names of
its arguments, which way its bytes flow, and how the supervisor handles it.
Only x86_64 numbers appear: the filter kills any other ABI before it runs.
"""

from __future__ import annotations

import enum

import attrs


class Direction(enum.Enum):
    """Which way a data call moves bytes, seen from the traced program."""

    IN = "in"  # from the fd into the program (read, recv)
    OUT = "out"  # from the program out through the fd (write, send)
    THROUGH = "through"  # from one fd to another (sendfile, splice)


class Handling(enum.Enum):
    """How the supervisor answers a call."""

    DATA = "data"  # emulated: the supervisor moves the bytes itself
    FD_NEW = "fd_new"  # creates descriptors
    FD_REPLACE = "fd_replace"  # puts a descriptor on a chosen number
    FD_CLOSE = "fd_close"
    SOCKET_OP = "socket_op"  # connect, bind, listen, shutdown
    EXEC = "exec"
    SPAWN = "spawn"  # fork, vfork, clone, clone3
    EXIT = "exit"
    REAP = "reap"  # wait4, waitid: children are taken in before they are reaped
    REFUSED = "refused"  # always fails with ENOSYS: it would bypass the supervisor
    SIGNAL = "signal"  # sends a signal: traced only when a policy guards the supervisor
    PATH_CHANGE = "path_change"  # changes the file system by path: traced on a policy's demand, made by superv


class Layout(enum.Enum):
    """How a data call's arguments describe its buffers."""

    BUF = "buf"  # fd, buf, count
    BUF_AT = "buf_at"  # fd, buf, count, offset
    IOV = "iov"  # fd, iov, iovcnt
    IOV_AT = "iov_at"  # fd, iov, iovcnt, offset (low, high)
    IOV_AT_FLAGS = "iov_at_flags"  # fd, iov, iovcnt, offset (low, high), RWF_* flags
    SOCK = "sock"  # fd, buf, len, flags, addr, addrlen
    MSG = "msg"  # fd, msghdr, flags
    MMSG = "mmsg"  # fd, mmsghdr array, vlen, flags[, timeout]
    SENDFILE = "sendfile"  # out_fd, in_fd, offset pointer, count
    SPLICE = "splice"  # fd_in, off_in, fd_out, off_out, len, flags
    TEE = "tee"  # fd_in, fd_out, len, flags
    VMSPLICE = "vmsplice"  # fd, iov, nr_segs, flags: direction from the pipe end
    COPY_RANGE = "copy_range"  # fd_in, off_in, fd_out, off_out, len, flags


@attrs.frozen
class Syscall:
    name: str
    nr: int
    args: tuple[str, ...]
    handling: Handling
    direction: Direction | None = None
    layout: Layout | None = None

    def arg(self, name: str, values: tuple[int, ...]) -> int:
        """The raw value of the named argument in a notification's args."""
        return values[self.args.index(name)]


def _data(name, nr, args, direction, layout):
    return Syscall(name, nr, args, Handling.DATA, direction, layout)


IN, OUT, THROUGH = Direction.IN, Direction.OUT, Direction.THROUGH
L = Layout

TABLE: tuple[Syscall, ...] = (
    # Data calls: emulated, so the byte counts are the kernel's own results.
    _data("read", 0, ("fd", "buf", "count"), IN, L.BUF),
    _data("write", 1, ("fd", "buf", "count"), OUT, L.BUF),
    _data("pread64", 17, ("fd", "buf", "count", "offset"), IN, L.BUF_AT),
    _data("pwrite64", 18, ("fd", "buf", "count", "offset"), OUT, L.BUF_AT),
    _data("readv", 19, ("fd", "iov", "iovcnt"), IN, L.IOV),
    _data("writev", 20, ("fd", "iov", "iovcnt"), OUT, L.IOV),
    _data("preadv", 295, ("fd", "iov", "iovcnt", "pos_l", "pos_h"), IN, L.IOV_AT),
    _data("pwritev", 296, ("fd", "iov", "iovcnt", "pos_l", "pos_h"), OUT, L.IOV_AT),
    _data("preadv2", 327, ("fd", "iov", "iovcnt", "pos_l", "pos_h", "flags"), IN, L.IOV_AT_FLAGS),
    _data("pwritev2", 328, ("fd", "iov", "iovcnt", "pos_l", "pos_h", "flags"), OUT, L.IOV_AT_FLAGS),
    _data("recvfrom", 45, ("fd", "buf", "len", "flags", "addr", "addrlen"), IN, L.SOCK),
    _data("sendto", 44, ("fd", "buf", "len", "flags", "addr", "addrlen"), OUT, L.SOCK),
    _data("recvmsg", 47, ("fd", "msg", "flags"), IN, L.MSG),
    _data("sendmsg", 46, ("fd", "msg", "flags"), OUT, L.MSG),
    _data("recvmmsg", 299, ("fd", "msgvec", "vlen", "flags", "timeout"), IN, L.MMSG),
    _data("sendmmsg", 307, ("fd", "msgvec", "vlen", "flags"), OUT, L.MMSG),
    _data("sendfile", 40, ("out_fd", "in_fd", "offset", "count"), THROUGH, L.SENDFILE),
    _data("splice", 275, ("fd_in", "off_in", "fd_out", "off_out", "len", "flags"), THROUGH, L.SPLICE),
    _data("tee", 276, ("fd_in", "fd_out", "len", "flags"), THROUGH, L.TEE),
    _data("vmsplice", 278, ("fd", "iov", "nr_segs", "flags"), None, L.VMSPLICE),
    _data(
        "copy_file_range", 326, ("fd_in", "off_in", "fd_out", "off_out", "len", "flags"), THROUGH, L.COPY_RANGE
    ),
    # Descriptor lifecycle.
    Syscall("socket", 41, ("domain", "type", "protocol"), Handling.FD_NEW),
    Syscall("socketpair", 53, ("domain", "type", "protocol", "sv"), Handling.FD_NEW),
    Syscall("accept", 43, ("fd", "addr", "addrlen"), Handling.FD_NEW),
    Syscall("accept4", 288, ("fd", "addr", "addrlen", "flags"), Handling.FD_NEW),
    Syscall("pipe", 22, ("fds",), Handling.FD_NEW),
    Syscall("pipe2", 293, ("fds", "flags"), Handling.FD_NEW),
    Syscall("open", 2, ("path", "flags", "mode"), Handling.FD_NEW),
    Syscall("openat", 257, ("dirfd", "path", "flags", "mode"), Handling.FD_NEW),
    Syscall("openat2", 437, ("dirfd", "path", "how", "size"), Handling.FD_NEW),
    Syscall("creat", 85, ("path", "mode"), Handling.FD_NEW),
    Syscall("dup", 32, ("fd",), Handling.FD_NEW),
    # The filter passes only F_DUPFD and F_DUPFD_CLOEXEC (see FCNTL_TRACED_COMMANDS).
    Syscall("fcntl", 72, ("fd", "cmd", "arg"), Handling.FD_NEW),
    Syscall("dup2", 33, ("fd", "newfd"), Handling.FD_REPLACE),
    Syscall("dup3", 292, ("fd", "newfd", "flags"), Handling.FD_REPLACE),
    Syscall("close", 3, ("fd",), Handling.FD_CLOSE),
    Syscall("close_range", 436, ("first", "last", "flags"), Handling.FD_CLOSE),
    Syscall("connect", 42, ("fd", "addr", "addrlen"), Handling.SOCKET_OP),
    Syscall("bind", 49, ("fd", "addr", "addrlen"), Handling.SOCKET_OP),
    Syscall("listen", 50, ("fd", "backlog"), Handling.SOCKET_OP),
    Syscall("shutdown", 48, ("fd", "how"), Handling.SOCKET_OP),
    # Processes.
    Syscall("execve", 59, ("path", "argv", "envp"), Handling.EXEC),
    Syscall("execveat", 322, ("dirfd", "path", "argv", "envp", "flags"), Handling.EXEC),
    Syscall("fork", 57, (), Handling.SPAWN),
    Syscall("vfork", 58, (), Handling.SPAWN),
    Syscall("clone", 56, ("flags", "stack", "parent_tid", "child_tid", "tls"), Handling.SPAWN),
    Syscall("clone3", 435, ("args", "size"), Handling.SPAWN),
    Syscall("exit", 60, ("status",), Handling.EXIT),
    Syscall("exit_group", 231, ("status",), Handling.EXIT),
    Syscall("wait4", 61, ("pid", "status", "options", "rusage"), Handling.REAP),
    Syscall("waitid", 247, ("idtype", "id", "infop", "options", "rusage"), Handling.REAP),
    # io_uring moves data and opens files with no syscall per operation
    # (kernel-facts Q10): it would make the record a lie.
    Syscall("io_uring_setup", 425, ("entries", "params"), Handling.REFUSED),
    Syscall("io_uring_enter", 426, ("fd", "to_submit", "min_complete", "flags", "sig", "sigsz"), Handling.REFUSED),
    Syscall("io_uring_register", 427, ("fd", "opcode", "arg", "nr_args"), Handling.REFUSED),
    # Legacy AIO alike: io_submit reads and writes files with no read or write call.
    Syscall("io_setup", 206, ("nr_events", "ctx"), Handling.REFUSED),
    Syscall("io_submit", 209, ("ctx", "nr", "iocbs"), Handling.REFUSED),
)

# Traced only on a policy's demand (a rule with `target: supervisor`): the
# calls that could signal superv itself.
ON_DEMAND: tuple[Syscall, ...] = (
    Syscall("kill", 62, ("pid", "sig"), Handling.SIGNAL),
    Syscall("tkill", 200, ("tid", "sig"), Handling.SIGNAL),
    Syscall("tgkill", 234, ("tgid", "tid", "sig"), Handling.SIGNAL),
    Syscall("rt_sigqueueinfo", 129, ("pid", "sig", "info"), Handling.SIGNAL),
    Syscall("rt_tgsigqueueinfo", 297, ("tgid", "tid", "sig", "info"), Handling.SIGNAL),
    Syscall("pidfd_open", 434, ("pid", "flags"), Handling.SIGNAL),
    # ioctl(TIOCSIG) on a pty master: signals the terminal's foreground group
    Syscall("ioctl", 16, ("fd", "cmd", "arg"), Handling.SIGNAL),
)

# Traced only on a policy's demand (a rule naming them, as readonly.yaml's
# "@file"): the calls that change the file system by path other than opens.
# The supervisor decides on the files they reach and makes them itself.
PATH_CHANGES: tuple[Syscall, ...] = (
    Syscall("unlink", 87, ("path",), Handling.PATH_CHANGE),
    Syscall("unlinkat", 263, ("dirfd", "path", "flags"), Handling.PATH_CHANGE),
    Syscall("rmdir", 84, ("path",), Handling.PATH_CHANGE),
    Syscall("mkdir", 83, ("path", "mode"), Handling.PATH_CHANGE),
    Syscall("mkdirat", 258, ("dirfd", "path", "mode"), Handling.PATH_CHANGE),
    Syscall("mknod", 133, ("path", "mode", "dev"), Handling.PATH_CHANGE),
    Syscall("mknodat", 259, ("dirfd", "path", "mode", "dev"), Handling.PATH_CHANGE),
    Syscall("rename", 82, ("oldpath", "newpath"), Handling.PATH_CHANGE),
    Syscall("renameat", 264, ("olddirfd", "oldpath", "newdirfd", "newpath"), Handling.PATH_CHANGE),
    Syscall("renameat2", 316, ("olddirfd", "oldpath", "newdirfd", "newpath", "flags"), Handling.PATH_CHANGE),
    Syscall("link", 86, ("oldpath", "newpath"), Handling.PATH_CHANGE),
    Syscall("linkat", 265, ("olddirfd", "oldpath", "newdirfd", "newpath", "flags"), Handling.PATH_CHANGE),
    Syscall("symlink", 88, ("target", "newpath"), Handling.PATH_CHANGE),
    Syscall("symlinkat", 266, ("target", "newdirfd", "newpath"), Handling.PATH_CHANGE),
    Syscall("truncate", 76, ("path", "length"), Handling.PATH_CHANGE),
    Syscall("chmod", 90, ("path", "mode"), Handling.PATH_CHANGE),
    Syscall("fchmodat", 268, ("dirfd", "path", "mode"), Handling.PATH_CHANGE),
    Syscall("chown", 92, ("path", "owner", "group"), Handling.PATH_CHANGE),
    Syscall("lchown", 94, ("path", "owner", "group"), Handling.PATH_CHANGE),
    Syscall("fchownat", 260, ("dirfd", "path", "owner", "group", "flags"), Handling.PATH_CHANGE),
)

# Of PATH_CHANGES, those whose last path component, a symlink, is followed
# (fchownat: unless AT_SYMLINK_NOFOLLOW; linkat's old path: with AT_SYMLINK_FOLLOW).
FOLLOWS_LAST = frozenset({"truncate", "chmod", "fchmodat", "chown", "fchownat"})
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000

BY_NR: dict[int, Syscall] = {s.nr: s for s in TABLE + ON_DEMAND + PATH_CHANGES}
BY_NAME: dict[str, Syscall] = {s.name: s for s in TABLE + ON_DEMAND + PATH_CHANGES}

F_DUPFD = 0
F_DUPFD_CLOEXEC = 1030
FCNTL_TRACED_COMMANDS = (F_DUPFD, F_DUPFD_CLOEXEC)
# Commands that aim a signal: traced only for a policy guarding superv.
F_SETOWN = 8
F_SETOWN_EX = 15  # its owner is a struct f_owner_ex in memory
TIOCSIG = 0x40045436  # ioctl on a pty master: signals the terminal's foreground group

# The call kinds of ntrace's report, in its order; every other kind is named
# after its syscall and listed after these when it occurred.
NTRACE_KINDS = ("read", "recv", "recvfrom", "recvmsg", "write", "send", "sendto", "sendmsg")


# Every call kind, ntrace's first; its position is the kind's index in the
# per-fd counters (ledger.FdStats, native/fastpath.c).
CALL_KINDS: tuple[str, ...] = NTRACE_KINDS + tuple(
    s.name for s in TABLE if s.handling is Handling.DATA and s.name not in NTRACE_KINDS
)
KIND_INDEX: dict[str, int] = {kind: i for i, kind in enumerate(CALL_KINDS)}


def call_kind(syscall: Syscall, args: tuple[int, ...]) -> str:
    """The kind a call is reported under: libc's recv and send are recvfrom
    and sendto with no address, and ntrace counted them apart."""
    if syscall.layout is Layout.SOCK and syscall.arg("addr", args) == 0:
        return "recv" if syscall.direction is Direction.IN else "send"
    return syscall.name


def as_int(value: int) -> int:
    """A C int argument from the 64-bit register value."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def as_ssize(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value
