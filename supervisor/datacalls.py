"""From a data call's raw arguments to the Operation that performs it.

The checks here are the kernel's own, in its order, so that a bad call fails
with the errno it would natively fail with (EBADF, EFAULT, EINVAL...)
without anything being moved.
"""

from __future__ import annotations

import errno
import os
import struct

from . import kernel
from .classify import IoMode
from .emulate import (
    CONTROL_LIMIT,
    MMSGHDR_SIZE,
    MSG_CMSG_CLOEXEC,
    MSG_DONTWAIT,
    MSG_NOSIGNAL,
    MSG_WAITALL,
    MSG_WAITFORONE,
    NAME_ROOM,
    RWF_NOWAIT,
    SPLICE_F_NONBLOCK,
    Caller,
    CopyRangeOp,
    MessageReturn,
    MultiMessageOp,
    OpenFd,
    Operation,
    ReadOp,
    Scratch,
    Sink,
    Source,
    SpliceOp,
    TransferOp,
    WriteOp,
    translate_sent_fds,
)
from .kernel import MAX_RW_COUNT, UIO_MAXIOV, access_ok
from .syscalls import Direction, Layout, Syscall, as_int, as_ssize

O_PATH = 0o10000000
MSGHDR = struct.Struct("=QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
SOCKET_MODES = (IoMode.STREAM, IoMode.DATAGRAM)


class Immediate(Exception):
    """The call is answered at once with this value, nothing moved."""

    def __init__(self, value: int):
        super().__init__(value)
        self.value = value


class Passthrough(Exception):
    """The fd cannot be emulated faithfully: let the kernel run the call."""

    def __init__(self, fds: list[int]):
        super().__init__(fds)
        self.fds = fds


class Builder:
    """Makes Operations for one notification."""

    def __init__(self, syscall: Syscall, args, caller: Caller, pidfd: int, open_fd, scratch: Scratch):
        self.syscall = syscall
        self.args = args
        self.caller = caller
        self.pidfd = pidfd
        self.open_fd = open_fd  # target fd number -> OpenFd; raises Immediate(-EBADF)
        self.scratch = scratch
        self._opened: list[OpenFd] = []

    def arg(self, name: str) -> int:
        return self.syscall.arg(name, self.args)

    def build(self) -> Operation:
        try:
            return _BUILDERS[self.syscall.layout](self)
        except BaseException:
            for f in self._opened:
                os.close(f.dup)
            raise

    # -- helpers -----------------------------------------------------------------

    def fd(self, name: str = "fd", *, passthrough_ok: bool = False) -> OpenFd:
        number = as_int(self.arg(name))
        if number < 0:
            raise Immediate(-errno.EBADF)
        f = self.open_fd(number)
        self._opened.append(f)
        if f.flags & O_PATH:
            raise Immediate(-errno.EBADF)
        if f.mode is IoMode.PASSTHROUGH and not passthrough_ok:
            raise Passthrough([number])
        return f

    def socket_fd(self) -> OpenFd:
        f = self.fd()
        if f.mode not in SOCKET_MODES:
            raise Immediate(-errno.ENOTSOCK)
        return f

    def check_access(self, f: OpenFd, direction: Direction) -> None:
        if direction is Direction.IN and f.access == os.O_WRONLY:
            raise Immediate(-errno.EBADF)
        if direction is Direction.OUT and f.access == os.O_RDONLY:
            raise Immediate(-errno.EBADF)

    def single_buffer(self, address: int, count: int, socket_call: bool = False) -> tuple[list[tuple[int, int]], int]:
        """vfs_read/vfs_write check the whole buffer, then the count; socket
        calls cap the count first (import_ubuf), then check what is left."""
        if socket_call:
            count = min(count, MAX_RW_COUNT)
        if not access_ok(address, count):
            raise Immediate(-errno.EFAULT)
        if as_ssize(count) < 0:
            raise Immediate(-errno.EINVAL)
        count = min(count, MAX_RW_COUNT)
        return [(address, count)], count

    def iovec_array(self, address: int, count: int, too_many: int) -> tuple[list[tuple[int, int]], int]:
        if count > UIO_MAXIOV:
            raise Immediate(-too_many)
        try:
            raw = kernel.read_iovecs(self.caller.tid, address, count) if count else []
        except OSError:
            raise Immediate(-errno.EFAULT)
        iovs, total = [], 0
        for base, length in raw:
            if as_ssize(length) < 0:
                raise Immediate(-errno.EINVAL)
            length = min(length, MAX_RW_COUNT - total)  # the kernel truncates past MAX_RW_COUNT
            if not access_ok(base, length):
                raise Immediate(-errno.EFAULT)
            iovs.append((base, length))
            total += length
        return iovs, total

    def read_u32(self, address: int) -> int:
        try:
            return kernel.read_u32(self.caller.tid, address)
        except OSError:
            raise Immediate(-errno.EFAULT)

    def read_bytes(self, address: int, size: int) -> bytes:
        try:
            return kernel.read_memory(self.caller.tid, address, size)
        except OSError:
            raise Immediate(-errno.EFAULT)

    def transfer_op(self, f: OpenFd, direction: Direction, iovs, total, *, offset=None, rwf=0,
                    sock_flags=0, reply=None, name=None, control=None, local_fds=None, owns_dup=True):
        blocking = not (f.nonblocking or rwf & RWF_NOWAIT or sock_flags & MSG_DONTWAIT)
        if direction is Direction.IN:
            source = Source(f, self.scratch, offset=offset, rwf=rwf, sock_flags=sock_flags, reply=reply)
            return ReadOp(self.caller, f, iovs, total, source, blocking,
                          wait_all=bool(sock_flags & MSG_WAITALL), owns_dup=owns_dup)
        sink = Sink(f, offset=offset, rwf=rwf, sock_flags=sock_flags, name=name, control=control)
        return WriteOp(self.caller, f, iovs, total, sink, blocking, local_fds=local_fds,
                       signals_epipe=not sock_flags & MSG_NOSIGNAL, owns_dup=owns_dup)

    def message(self, f: OpenFd, header_address: int, flags: int, direction: Direction, owns_dup=True):
        """A ReadOp or WriteOp for one struct msghdr."""
        raw = self.read_bytes(header_address, MSGHDR.size)
        name, namelen, iov, iovlen, control, controllen, _ = MSGHDR.unpack(raw)
        # As the kernel's __copy_msghdr: no name, no length; a negative one
        # is refused; a longer one than a sockaddr_storage is cut to it.
        if name and as_int(namelen) < 0:
            raise Immediate(-errno.EINVAL)
        iovs, total = self.iovec_array(iov, iovlen, errno.EMSGSIZE)
        if direction is Direction.IN:
            reply = MessageReturn(
                name_address=name,
                name_room=namelen if name else 0,
                namelen_address=header_address + 8 if name else 0,
                control_address=control,
                control_room=min(controllen, CONTROL_LIMIT) if control else 0,
                controllen_address=header_address + 40,
                flags_address=header_address + 48,
                cloexec_fds=bool(flags & MSG_CMSG_CLOEXEC),
            )
            return self.transfer_op(f, direction, iovs, total, sock_flags=flags & ~MSG_CMSG_CLOEXEC,
                                    reply=reply, owns_dup=owns_dup)
        name_bytes = self.read_bytes(name, min(namelen, NAME_ROOM)) if name and namelen else None
        if controllen > CONTROL_LIMIT:
            raise Immediate(-errno.ENOBUFS)
        control_bytes = self.read_bytes(control, controllen) if control and controllen else None
        local_fds: list[int] = []
        if control_bytes:
            try:
                control_bytes, local_fds = translate_sent_fds(control_bytes, self.pidfd)
            except OSError as e:
                raise Immediate(-e.errno)
        return self.transfer_op(f, direction, iovs, total, sock_flags=flags, name=name_bytes,
                                control=control_bytes, local_fds=local_fds, owns_dup=owns_dup)


def _rw(b: Builder) -> Operation:
    """read/write and their vector and positioned forms."""
    layout, direction = b.syscall.layout, b.syscall.direction
    f = b.fd()
    b.check_access(f, direction)
    offset, rwf = None, 0
    if layout in (Layout.BUF, Layout.BUF_AT):
        iovs, total = b.single_buffer(b.arg("buf"), b.arg("count"))
    else:
        iovs, total = b.iovec_array(b.arg("iov"), b.arg("iovcnt"), errno.EINVAL)
    if layout is Layout.BUF_AT:
        offset = as_ssize(b.arg("offset"))
    elif layout in (Layout.IOV_AT, Layout.IOV_AT_FLAGS):
        offset = as_ssize(b.arg("pos_l"))
    if layout is Layout.IOV_AT_FLAGS:
        rwf = as_int(b.arg("flags"))
        if offset == -1:
            offset = None  # preadv2/pwritev2: the file's own position
    if offset is not None:
        if offset < 0:
            raise Immediate(-errno.EINVAL)
        if f.mode in (IoMode.PIPE, *SOCKET_MODES):
            raise Immediate(-errno.ESPIPE)
        if f.mode is IoMode.MEMORY_DEVICE:
            offset = None  # these devices ignore the position
    return b.transfer_op(f, direction, iovs, total, offset=offset, rwf=rwf)


def _sock(b: Builder) -> Operation:
    """recvfrom and sendto (libc's recv and send)."""
    f = b.socket_fd()
    direction = b.syscall.direction
    flags = as_int(b.arg("flags"))
    iovs, total = b.single_buffer(b.arg("buf"), b.arg("len"), socket_call=True)
    address, addrlen = b.arg("addr"), b.arg("addrlen")
    if direction is Direction.IN:
        reply = None
        if address:
            # As the kernel's move_addr_to_user: after the data is taken.
            try:
                room = as_int(b.read_u32(addrlen)) if addrlen else None
            except Immediate:
                room = None
            if room is None or room < 0:
                reply = MessageReturn(error_after=errno.EFAULT if room is None else errno.EINVAL)
            else:
                reply = MessageReturn(name_address=address, name_room=room, namelen_address=addrlen)
        return b.transfer_op(f, direction, iovs, total, sock_flags=flags, reply=reply)
    name = None
    if address:
        size = as_int(addrlen)
        if size < 0 or size > NAME_ROOM:
            raise Immediate(-errno.EINVAL)
        name = b.read_bytes(address, size)
    return b.transfer_op(f, direction, iovs, total, sock_flags=flags, name=name)


def _msg(b: Builder) -> Operation:
    f = b.socket_fd()
    return b.message(f, b.arg("msg"), as_int(b.arg("flags")), b.syscall.direction)


def _mmsg(b: Builder) -> Operation:
    f = b.socket_fd()
    receiving = b.syscall.direction is Direction.IN
    flags = as_int(b.arg("flags"))
    vlen = min(b.arg("vlen") & 0xFFFFFFFF, UIO_MAXIOV)
    msgvec = b.arg("msgvec")
    timeout = None
    if receiving and b.arg("timeout"):
        raw = b.read_bytes(b.arg("timeout"), 16)
        seconds, nanoseconds = struct.unpack("=qq", raw)
        timeout = seconds + nanoseconds / 1e9
    part_flags = flags & ~MSG_WAITFORONE

    def make_part(index: int):
        return b.message(f, msgvec + MMSGHDR_SIZE * index, part_flags, b.syscall.direction, owns_dup=False)

    blocking = not (f.nonblocking or flags & MSG_DONTWAIT)
    return MultiMessageOp(f, vlen, make_part, msgvec, b.caller, blocking,
                          wait_for_one=bool(flags & MSG_WAITFORONE), receiving=receiving, timeout=timeout)


def _sendfile(b: Builder) -> Operation:
    dst = b.fd("out_fd")
    src = b.fd("in_fd")
    b.check_access(src, Direction.IN)
    b.check_access(dst, Direction.OUT)
    count = min(b.arg("count"), MAX_RW_COUNT)
    offset_address = b.arg("offset")
    offset = None
    if offset_address:
        try:
            offset = kernel.read_i64(b.caller.tid, offset_address)
        except OSError:
            raise Immediate(-errno.EFAULT)
        if offset < 0:
            raise Immediate(-errno.EINVAL)
        if src.mode is not IoMode.FILE:
            raise Immediate(-errno.ESPIPE)
    source = Source(src, b.scratch, offset=offset)
    sink = Sink(dst)
    return TransferOp(b.caller, src, source, dst, sink, count, blocking=not dst.nonblocking,
                      offset_address=offset_address)


def _splice(b: Builder) -> Operation:
    src = b.fd("fd_in")
    dst = b.fd("fd_out")
    flags = as_int(b.arg("flags"))
    count = min(b.arg("len"), MAX_RW_COUNT)
    is_tee = b.syscall.layout is Layout.TEE
    blocking = not (flags & SPLICE_F_NONBLOCK or src.nonblocking or dst.nonblocking)
    try:
        if is_tee:
            return SpliceOp(b.caller, src, dst, count, flags, blocking, is_tee=True)
        return SpliceOp(b.caller, src, dst, count, flags, blocking, is_tee=False,
                        off_in_address=b.arg("off_in"), off_out_address=b.arg("off_out"))
    except OSError:
        raise Immediate(-errno.EFAULT)


def _copy_range(b: Builder) -> Operation:
    src = b.fd("fd_in")
    dst = b.fd("fd_out")
    if as_int(b.arg("flags")):
        raise Immediate(-errno.EINVAL)
    count = min(b.arg("len"), MAX_RW_COUNT)
    try:
        return CopyRangeOp(b.caller, src, dst, count, 0, False, is_tee=False,
                           off_in_address=b.arg("off_in"), off_out_address=b.arg("off_out"))
    except OSError:
        raise Immediate(-errno.EFAULT)


def _vmsplice(b: Builder) -> Operation:
    f = b.fd()
    if f.mode is not IoMode.PIPE:
        raise Immediate(-errno.EBADF)
    flags = as_int(b.arg("flags"))
    iovs, total = b.iovec_array(b.arg("iov"), b.arg("nr_segs"), errno.EINVAL)
    # Into the pipe when the fd can write to it, out of it otherwise (fs/splice.c).
    direction = Direction.IN if f.access == os.O_RDONLY else Direction.OUT
    blocking_flags = MSG_DONTWAIT if flags & SPLICE_F_NONBLOCK else 0
    return b.transfer_op(f, direction, iovs, total, sock_flags=blocking_flags)


_BUILDERS = {
    Layout.BUF: _rw,
    Layout.BUF_AT: _rw,
    Layout.IOV: _rw,
    Layout.IOV_AT: _rw,
    Layout.IOV_AT_FLAGS: _rw,
    Layout.SOCK: _sock,
    Layout.MSG: _msg,
    Layout.MMSG: _mmsg,
    Layout.SENDFILE: _sendfile,
    Layout.SPLICE: _splice,
    Layout.TEE: _splice,
    Layout.COPY_RANGE: _copy_range,
    Layout.VMSPLICE: _vmsplice,
}
