"""Kernel plumbing in Python spelling: the seccomp listener, target memory,
descriptors of the target, and the facts classification needs.

Thin on purpose: each function does one kernel thing.  Decisions live in
classify, ledger, emulate and engine.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct

import attrs

from . import _kernel, procfs
from .classify import FdFacts, SocketFacts

SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
SECCOMP_ADDFD_FLAG_SETFD = 1
SECCOMP_ADDFD_FLAG_SEND = 2
AUDIT_ARCH_X86_64 = 0xC000003E

# The highest user address + 1 on x86_64 with 4-level paging: the kernel's
# access_ok() refuses a buffer that reaches past it with EFAULT, before any I/O.
TASK_SIZE_MAX = (1 << 47) - 4096
# The most one read or write moves (INT_MAX rounded down to a page).
MAX_RW_COUNT = 0x7FFFF000
UIO_MAXIOV = 1024

ERESTARTSYS = 512


@attrs.frozen
class Notification:
    id: int
    tid: int
    nr: int
    arch: int
    ip: int
    args: tuple[int, int, int, int, int, int]


class TargetGone(Exception):
    """The notification is no longer valid: the task died or was killed."""


class Listener:
    def __init__(self, fd: int):
        self.fd = fd

    def receive(self) -> Notification:
        nid, tid, nr, arch, ip, args = _kernel.notif_recv(self.fd)
        return Notification(nid, tid, nr, arch, ip, args)

    def answer(self, nid: int, value: int) -> bool:
        """Return value >= 0, or -errno.  False when the task is gone."""
        try:
            if value < 0:
                _kernel.notif_send(self.fd, nid, 0, value, 0)
            else:
                _kernel.notif_send(self.fd, nid, value, 0, 0)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False
            raise
        return True

    def let_through(self, nid: int) -> bool:
        """SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel runs the call itself."""
        try:
            _kernel.notif_send(self.fd, nid, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False
            raise
        return True

    def still_waiting(self, nid: int) -> bool:
        return _kernel.notif_id_valid(self.fd, nid)

    def install_fd(self, nid: int, local_fd: int, cloexec: bool) -> int:
        """Put a copy of local_fd into the notifying task; returns its number there."""
        return _kernel.notif_addfd(self.fd, nid, local_fd, 0, os.O_CLOEXEC if cloexec else 0, 0)

    def install_fd_as_answer(self, nid: int, local_fd: int, cloexec: bool) -> int | None:
        """Put a copy of local_fd into the notifying task and answer its call
        with the new number, in one step (SECCOMP_ADDFD_FLAG_SEND).  None
        when the task is gone; OSError(EMFILE...) when it cannot take it."""
        try:
            return _kernel.notif_addfd(self.fd, nid, local_fd, 0, os.O_CLOEXEC if cloexec else 0,
                                       SECCOMP_ADDFD_FLAG_SEND)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            raise

    def set_sync_wakeup(self) -> bool:
        return _kernel.notif_set_sync_wakeup(self.fd)

    def close(self) -> None:
        os.close(self.fd)


# -- target memory ----------------------------------------------------------------


def access_ok(address: int, size: int) -> bool:
    return size == 0 or (address + size <= TASK_SIZE_MAX and address + size >= address)


def read_memory(tid: int, address: int, size: int) -> bytes:
    """Exactly size bytes, or OSError(EFAULT)."""
    if size == 0:
        return b""
    data = _kernel.vm_read(tid, [(address, size)])
    if len(data) != size:
        raise OSError(errno.EFAULT, "short read of target memory")
    return data


def write_memory(tid: int, address: int, data: bytes) -> None:
    if data and _kernel.vm_write(tid, [(address, len(data))], data) != len(data):
        raise OSError(errno.EFAULT, "short write to target memory")


def read_u32(tid: int, address: int) -> int:
    return struct.unpack("=I", read_memory(tid, address, 4))[0]


def read_u64(tid: int, address: int) -> int:
    return struct.unpack("=Q", read_memory(tid, address, 8))[0]


def read_i64(tid: int, address: int) -> int:
    return struct.unpack("=q", read_memory(tid, address, 8))[0]


def write_u32(tid: int, address: int, value: int) -> None:
    write_memory(tid, address, struct.pack("=I", value))


def write_i64(tid: int, address: int, value: int) -> None:
    write_memory(tid, address, struct.pack("=q", value))


def read_string(tid: int, address: int, limit: int = 4096) -> bytes:
    """A NUL-terminated string, read a page at a time so that a string ending
    just before an unmapped page is still read."""
    out = b""
    while len(out) < limit:
        room = 4096 - (address + len(out)) % 4096
        chunk = _kernel.vm_read(tid, [(address + len(out), room)])
        end = chunk.find(b"\0")
        if end >= 0:
            return out + chunk[:end]
        out += chunk
        if len(chunk) < room:
            break
    return out[:limit]


def read_string_array(tid: int, address: int, limit: int = 256) -> list[str]:
    """argv-style: pointers up to a NULL pointer."""
    items = []
    while address and len(items) < limit:
        pointer = read_u64(tid, address + 8 * len(items))
        if pointer == 0:
            break
        items.append(read_string(tid, pointer).decode("utf-8", "surrogateescape"))
    return items


def read_iovecs(tid: int, address: int, count: int) -> list[tuple[int, int]]:
    raw = read_memory(tid, address, 16 * count)
    return [struct.unpack_from("=QQ", raw, 16 * i) for i in range(count)]


# -- the target's descriptors ---------------------------------------------------------


def duplicate_fd(pidfd: int, fd: int) -> int:
    """A copy, in the supervisor, of the target's fd: the same open file description."""
    return _kernel.pidfd_getfd(pidfd, fd)


def has_fd(pidfd: int, fd: int) -> bool:
    """Is fd open in the process?  A copy taken and dropped: about 1 us,
    against 2-4 for a lookup of /proc/PID/fd/N."""
    if fd < 0:
        return False
    try:
        os.close(duplicate_fd(pidfd, fd))
    except OSError:
        return False
    return True


# -- processes ------------------------------------------------------------------------


def _pidfds_have_own_inodes() -> bool:
    """pidfs (Linux 6.9): a process's pidfds carry an inode number of its
    own, never given to another process until reboot.  Before it, every
    pidfd was the one anonymous inode, an eventfd's.  (Told from our own
    pidfd alone: superv may be pid 1 of a namespace, with no parent to open.)"""
    try:
        pidfd = os.pidfd_open(os.getpid())
    except OSError:
        return False
    anonymous = os.eventfd(0, os.EFD_CLOEXEC)
    try:
        return os.fstat(pidfd).st_dev != os.fstat(anonymous).st_dev
    finally:
        os.close(pidfd)
        os.close(anonymous)


PIDFD_INODES = _pidfds_have_own_inodes()


def process_identity(pid: int, pidfd: int) -> int:
    """With the pid, names one process across pid reuse: the pidfd's inode
    (1 us), else the start time in /proc/PID/stat (10-30 us)."""
    return os.fstat(pidfd).st_ino if PIDFD_INODES else procfs.start_time(pid)


def _pipefs_device() -> int:
    """Every pipe made by pipe(2) lives on the one pipefs: this device.  A
    named FIFO lives on the file system of its path."""
    r, w = os.pipe()
    try:
        return os.fstat(r).st_dev
    finally:
        os.close(r)
        os.close(w)


PIPEFS_DEVICE = _pipefs_device()


def fd_facts(pid: int, fd: int, dup: int, st: os.stat_result | None = None) -> FdFacts:
    """st: the dup's fstat, if the caller has it.  The link of a socket or a
    pipe is what the readlink would say (sockfs and pipefs name them so),
    without the readlink (5-8 us)."""
    st = st or os.fstat(dup)
    socket_facts = None
    if stat.S_ISFIFO(st.st_mode) and st.st_dev == PIPEFS_DEVICE:
        link = f"pipe:[{st.st_ino}]"
    elif not stat.S_ISSOCK(st.st_mode):
        try:
            link = procfs.fd_link(pid, fd)
        except OSError:
            link = ""
    else:
        link = f"socket:[{st.st_ino}]"
        family, type_, protocol, local, remote = _kernel.socket_facts(dup)
        peer = None
        if family == socket.AF_UNIX:
            try:
                peer = unix_peer_inode(st.st_ino)
            except OSError:
                pass
        socket_facts = SocketFacts(family, type_, protocol, local, remote, peer)
    is_tty = stat.S_ISCHR(st.st_mode) and os.isatty(dup)
    return FdFacts(link, st.st_mode, st.st_rdev, st.st_dev, st.st_ino, is_tty, socket_facts)


NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
UDIAG_SHOW_VFS = 0x2
UDIAG_SHOW_PEER = 0x4
UNIX_DIAG_VFS = 1
UNIX_DIAG_PEER = 2
_UNIX_DIAG_REQ = struct.Struct("=BBHIIIII")  # family, protocol, pad, states, ino, show, cookie[2]
_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid


def _unix_diag(inode: int, show: int) -> dict[int, bytes]:
    """sock_diag's attributes of one unix socket, by its inode (~3 us)."""
    request = _UNIX_DIAG_REQ.pack(socket.AF_UNIX, 0, 0, 0xFFFFFFFF, inode, show, 0xFFFFFFFF, 0xFFFFFFFF)
    header = _NLMSG.pack(_NLMSG.size + len(request), SOCK_DIAG_BY_FAMILY, 1, 1, 0)  # NLM_F_REQUEST
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG) as s:
        s.send(header + request)
        reply = s.recv(8192)
    length, kind, _, _, _ = _NLMSG.unpack_from(reply)
    attributes: dict[int, bytes] = {}
    if kind != SOCK_DIAG_BY_FAMILY:
        return attributes
    offset = _NLMSG.size + 16  # struct unix_diag_msg
    while offset + 4 <= length:
        size, attr = struct.unpack_from("=HH", reply, offset)
        if size < 4:
            break
        attributes[attr] = reply[offset + 4 : offset + size]
        offset += (size + 3) & ~3
    return attributes


def unix_peer_inode(inode: int) -> int | None:
    """The inode of the unix socket at the other end."""
    peer = _unix_diag(inode, UDIAG_SHOW_PEER).get(UNIX_DIAG_PEER)
    return struct.unpack_from("=I", peer)[0] or None if peer and len(peer) >= 4 else None


def unix_bound_file(inode: int) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file a unix socket is bound to, if any."""
    vfs = _unix_diag(inode, UDIAG_SHOW_VFS).get(UNIX_DIAG_VFS)
    if not vfs or len(vfs) < 8:
        return None
    ino, dev = struct.unpack_from("=II", vfs)
    return os.makedev(dev >> 20, dev & 0xFFFFF), ino  # the kernel's dev_t, as stat spells it


def file_identity(dup: int) -> tuple[int, int]:
    st = os.fstat(dup)
    return (st.st_dev, st.st_ino)
