"""Performing the target's data calls in the supervisor, so that the result
the target gets is the kernel's own answer and the bytes are the bytes moved.

The recipe is kernel-facts §2.2.  The supervisor works on a duplicate of the
target's fd (pidfd_getfd: the same open file description), never changes its
flags, and never blocks: every step is non-blocking (RWF_NOWAIT, MSG_DONTWAIT,
SPLICE_F_NONBLOCK).  An Operation that cannot go on says what it waits for;
the engine parks it and calls attempt() again when the fd is ready.

Reads never consume more than they delivered: pipes are peeked with tee(),
stream sockets with MSG_PEEK, files are read and rewound by what was not
delivered; only then is exactly the delivered count consumed.  Datagrams are
taken whole, as the kernel takes them even when the copy to the caller fails.
Writes read the target's buffer once, and write (and record) those very bytes.
"""

from __future__ import annotations

import errno
import mmap
import os
import select
import socket
import struct

import attrs

from . import _kernel, kernel
from .classify import IoMode
from .kernel import ERESTARTSYS
from .ledger import Leg

# Plain ints: socket.MSG_* are IntFlag members, and flag arithmetic on
# those costs microseconds per call.
CHUNK = 1 << 20  # the most bytes moved in one step: bounds the memory of a call
SPLICE_F_NONBLOCK = 2
F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032
FIONREAD = 0x541B
RWF_NOWAIT = 0x08
MSG_PEEK = int(socket.MSG_PEEK)
MSG_TRUNC = int(socket.MSG_TRUNC)
MSG_DONTWAIT = int(socket.MSG_DONTWAIT)
MSG_WAITALL = int(socket.MSG_WAITALL)
MSG_NOSIGNAL = int(socket.MSG_NOSIGNAL)
MSG_OOB = int(socket.MSG_OOB)
MSG_ERRQUEUE = 0x2000
MSG_CMSG_CLOEXEC = 0x40000000
MSG_WAITFORONE = 0x10000
CONTROL_LIMIT = 1 << 20  # larger control buffers than this exceed optmem_max anyway
NAME_ROOM = 128  # sizeof(struct sockaddr_storage)
PIPE_BUF = 4096


class Scratch:
    """Buffers the operations share; used under the engine's lock only."""

    def __init__(self) -> None:
        self.pipe_r, self.pipe_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            _fcntl(self.pipe_w, F_SETPIPE_SZ, CHUNK)
        except OSError:
            pass  # a lower pipe-max-size: peeks are then as large as the pipe
        self.pipe_size = _fcntl(self.pipe_w, F_GETPIPE_SZ, 0)
        self.pipe_view = memoryview(bytearray(self.pipe_size))
        # Page-aligned, so that reads of O_DIRECT files are accepted.
        self.buffer = mmap.mmap(-1, CHUNK)
        self.view = memoryview(self.buffer)


    def take(self, count: int) -> tuple[bytes, int]:
        """One read of up to `count` bytes from the scratch pipe, and how many
        bytes were left behind in it; it is left empty, since stale bytes
        there would reach the next peek of any pipe."""
        try:
            got = os.readv(self.pipe_r, [self.pipe_view[:count]])
        except BlockingIOError:
            got = 0
        data = bytes(self.pipe_view[:got])
        left = 0
        try:
            while n := os.readv(self.pipe_r, [self.pipe_view]):
                left += n
        except BlockingIOError:
            pass
        return data, left


def _fcntl(fd: int, cmd: int, arg: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, cmd, arg)


@attrs.define
class OpenFd:
    """The target's fd as the supervisor holds it for one call."""

    fd: int  # the number in the target
    dup: int  # the supervisor's copy
    mode: IoMode
    flags: int  # F_GETFL of the shared file description
    identity: tuple[int, int]

    @property
    def nonblocking(self) -> bool:
        return bool(self.flags & os.O_NONBLOCK)

    @property
    def access(self) -> int:
        return self.flags & os.O_ACCMODE


@attrs.define
class Caller:
    """The thread whose call is being performed."""

    tid: int
    tgid: int
    nid: int  # the notification, for ADDFD
    listener: kernel.Listener


def poll_now(fd: int, events: int) -> int:
    """The events of `events` (and POLLERR/POLLHUP) the fd has right now."""
    poller = select.poll()
    poller.register(fd, events)
    return sum(ready for _, ready in poller.poll(0))


def socket_option(fd: int, name: int) -> int:
    """An int SOL_SOCKET option of a socket superv holds (SO_ERROR reads,
    and so clears, the error, as the kernel's own connect() does)."""
    with socket.socket(fileno=os.dup(fd)) as s:
        return s.getsockopt(socket.SOL_SOCKET, name)


def socket_error_pending(fd: int) -> bool:
    """POLLERR: the socket holds an error.  After progress, the kernel
    returns the count and leaves the error for the next call; a further
    send or recv here would take (and clear) it."""
    return bool(poll_now(fd, select.POLLERR) & select.POLLERR)


def slice_iovs(iovs: list[tuple[int, int]], start: int, size: int) -> list[tuple[int, int]]:
    """The part of a scatter list covering bytes [start, start+size)."""
    out = []
    for base, length in iovs:
        if start >= length:
            start -= length
            continue
        take = min(length - start, size)
        out.append((base + start, take))
        size -= take
        start = 0
        if size == 0:
            break
    return out


# -- control messages (SCM_RIGHTS) -------------------------------------------------

_CMSG_HEADER = struct.Struct("=QiI")  # cmsg_len, cmsg_level, cmsg_type


def _cmsg_align(n: int) -> int:
    return (n + 7) & ~7


def control_messages(control: bytes):
    """(offset of data, level, type, data) for each cmsghdr in a control buffer."""
    offset = 0
    while offset + _CMSG_HEADER.size <= len(control):
        length, level, type_ = _CMSG_HEADER.unpack_from(control, offset)
        if length < _CMSG_HEADER.size or offset + length > len(control):
            break
        yield offset + _CMSG_HEADER.size, level, type_, control[offset + _CMSG_HEADER.size : offset + length]
        offset += _cmsg_align(length)


def _rights(control: bytes):
    for data_at, level, type_, data in control_messages(control):
        if level == socket.SOL_SOCKET and type_ == socket.SCM_RIGHTS:
            yield data_at, list(struct.unpack(f"={len(data) // 4}i", data[: len(data) // 4 * 4]))


def close_received_fds(control: bytes) -> None:
    for _, fds in _rights(control):
        for fd in fds:
            os.close(fd)


def install_received_fds(control: bytes, caller: Caller, cloexec: bool) -> tuple[bytes, list[int]]:
    """Move fds that arrived in the supervisor into the target; rewrite their
    numbers in the control buffer.  Returns the buffer and the new numbers."""
    buffer = bytearray(control)
    installed = []
    for data_at, fds in _rights(control):
        numbers = []
        for fd in fds:
            try:
                numbers.append(caller.listener.install_fd(caller.nid, fd, cloexec))
            finally:
                os.close(fd)
        installed.extend(numbers)
        struct.pack_into(f"={len(numbers)}i", buffer, data_at, *numbers)
    return bytes(buffer), installed


def translate_sent_fds(control: bytes, pidfd: int) -> tuple[bytes, list[int]]:
    """The target's SCM_RIGHTS fd numbers replaced by supervisor copies of
    the same files, to be closed by the caller after sendmsg."""
    buffer = bytearray(control)
    copies: list[int] = []
    try:
        for data_at, fds in _rights(control):
            local = [kernel.duplicate_fd(pidfd, fd) for fd in fds]
            copies.extend(local)
            struct.pack_into(f"={len(local)}i", buffer, data_at, *local)
    except OSError:
        for fd in copies:
            os.close(fd)
        raise
    return bytes(buffer), copies


# -- where a received message's address and control data go -----------------------


@attrs.define
class MessageReturn:
    """Where recvfrom/recvmsg write the sender's address, control data and flags."""

    name_address: int = 0
    name_room: int = 0
    namelen_address: int = 0  # recvfrom: the socklen_t; recvmsg: msg_namelen
    control_address: int = 0
    control_room: int = 0
    controllen_address: int = 0  # msg_controllen (size_t)
    flags_address: int = 0  # msg_flags
    cloexec_fds: bool = False
    # recvfrom's address length could not be read, or is negative: the
    # kernel fails the call with this errno once the data is taken.
    error_after: int = 0

    # filled in by the first receive
    name: bytes | None = None
    full_namelen: int = 0
    control: bytes = b""
    msg_flags: int = 0

    def receive_name_room(self) -> int:
        return NAME_ROOM if self.namelen_address else 0

    def write_back(self, tid: int) -> None:
        if self.namelen_address:
            if self.name_address and self.name:
                kernel.write_memory(tid, self.name_address, self.name[: min(self.name_room, len(self.name))])
            kernel.write_u32(tid, self.namelen_address, self.full_namelen)
        if self.controllen_address:
            kernel.write_memory(tid, self.control_address, self.control)
            kernel.write_memory(tid, self.controllen_address, struct.pack("=Q", len(self.control)))
        if self.flags_address:
            kernel.write_u32(tid, self.flags_address, self.msg_flags & 0xFFFFFFFF)


# -- the operations ----------------------------------------------------------------


class Operation:
    """One data call in progress.  attempt() returns the answer (count or
    -errno), or None after setting self.wait when the engine should wait."""

    blocking: bool = True
    wait: tuple[int, int] | None = None  # (supervisor fd, poll events)
    deadline: float | None = None  # monotonic; SO_RCVTIMEO / SO_SNDTIMEO
    timeout_set: bool = False
    progress: int = 0
    sigpipe: bool = False  # deliver SIGPIPE to the caller with the answer

    def attempt(self) -> int | None:
        raise NotImplementedError  # every subclass defines it

    def interrupted(self) -> int:
        """The answer when a signal must be delivered to the waiting caller.
        Progress made is reported, as the kernel does; otherwise the call is
        restarted or fails with EINTR exactly as a native one would."""
        if self.progress:
            return self.progress
        # sock_intr_errno(): a socket with a timeout gives EINTR even under SA_RESTART.
        return -errno.EINTR if self.timeout_set else -ERESTARTSYS

    def timed_out(self) -> int:
        return self.progress or -errno.EAGAIN

    def legs(self, result: int) -> list[Leg]:
        raise NotImplementedError  # every subclass defines it

    def order_key(self):
        """Blocking calls with the same key are served in arrival order."""
        raise NotImplementedError  # every subclass defines it

    def timeout_option(self) -> tuple[OpenFd, int] | None:
        """The socket and option (SO_RCVTIMEO/SO_SNDTIMEO) bounding a wait."""
        return None

    def release(self) -> None:
        """Close every supervisor copy of the target's fds."""

    def _would_block(self, fd: OpenFd, events: int) -> int | None:
        if not self.blocking:
            return self.progress or -errno.EAGAIN
        self.wait = (fd.dup, events)
        return None


class Source:
    """Reads from a target fd without consuming more than is taken."""

    def __init__(self, fd: OpenFd, scratch: Scratch, *, offset=None, rwf=0, sock_flags=0, reply=None):
        self.fd = fd
        self.scratch = scratch
        self.offset = offset  # None: the shared file position
        self.rwf = rwf
        self.sock_flags = sock_flags & ~(MSG_DONTWAIT | MSG_WAITALL)
        self.reply: MessageReturn | None = reply
        self.peek_only = bool(sock_flags & MSG_PEEK)
        self._peeked_control = False
        self.packets = False  # a packet-mode pipe (pipe2 O_DIRECT), seen by peek()

    @property
    def whole_messages(self) -> bool:
        """Datagrams, packet-mode pipes (a read takes one packet), and the
        stream-socket reads that are not plain byte reads (urgent data, the
        error queue, discarding with MSG_TRUNC)."""
        mode = self.fd.mode
        if mode is IoMode.PIPE:
            return self.packets
        return mode is IoMode.DATAGRAM or bool(self.sock_flags & (MSG_OOB | MSG_ERRQUEUE | MSG_TRUNC))

    def peek(self, want: int) -> bytes:
        """Up to want bytes without consuming them (files: consumed, and
        rewound by consume()).  b"" at end of file; BlockingIOError when
        nothing is there yet."""
        mode = self.fd.mode
        if mode is IoMode.PIPE:
            return self._peek_pipe(want)
        if mode is IoMode.STREAM:
            return self._receive(want, self.sock_flags | MSG_PEEK)
        view = self.scratch.view[: min(want, CHUNK)]
        if mode is IoMode.FILE:
            position = -1 if self.offset is None else self.offset
            got = os.preadv(self.fd.dup, [view], position, self.rwf)
        else:  # a memory device: nothing to give back
            got = os.readv(self.fd.dup, [view])
        return bytes(view[:got])

    def _peek_pipe(self, want: int) -> bytes:
        """tee() into the scratch pipe, then read it back.  Packet-mode
        buffers keep their flag through tee(): a read of the copy stops at
        the packet's end or drops the packet's tail, which a plain pipe
        never does.  Packet mode is only visible on the pipe's write end
        (O_DIRECT), so this is how the reader learns it."""
        want = min(want, self.scratch.pipe_size - 1)
        got = _kernel.tee(self.fd.dup, self.scratch.pipe_w, want + 1, SPLICE_F_NONBLOCK)
        if got == 0:
            return b""
        data, left = self.scratch.take(min(want, got))
        if len(data) < min(want, got) or len(data) + left < got:
            self.packets = True
            raise PacketPipe()
        return data

    def consume(self, taken: int, peeked: int) -> None:
        """Make exactly `taken` of the `peeked` bytes gone from the source."""
        mode = self.fd.mode
        if self.peek_only:
            if mode is IoMode.FILE and self.offset is None and peeked:
                os.lseek(self.fd.dup, -peeked, os.SEEK_CUR)
            return
        if mode is IoMode.PIPE:
            # A read, not splice() to /dev/null: splicing from a pipe takes
            # FMODE_NOWAIT off it for good (RWF_NOWAIT then fails with
            # EOPNOTSUPP, for the program too), measured on 6.18.
            left = taken
            while left:
                moved = os.readv(self.fd.dup, [self.scratch.view[: min(left, CHUNK)]])
                if moved <= 0:
                    break
                left -= moved
        elif mode is IoMode.STREAM:
            left = taken
            while left:
                n, _, _, control, _, _ = _kernel.recvmsg(
                    self.fd.dup, left, MSG_DONTWAIT, 0, self.reply.control_room if self.reply else 0
                )
                close_received_fds(control)
                if n <= 0:
                    break
                left -= n
        elif mode is IoMode.FILE:
            if self.offset is None:
                if taken < peeked:
                    os.lseek(self.fd.dup, taken - peeked, os.SEEK_CUR)
            else:
                self.offset += taken

    def receive_whole(self, want: int) -> tuple[int, bytes]:
        """One message, consumed whatever happens next (as the kernel does)."""
        if self.fd.mode is IoMode.PIPE:
            view = self.scratch.view[: min(want, CHUNK)]
            try:
                got = os.preadv(self.fd.dup, [view], -1, RWF_NOWAIT)
            except OSError as e:
                if e.errno != errno.EOPNOTSUPP:
                    raise
                # A pipe that was spliced refuses RWF_NOWAIT: look first.
                if not poll_now(self.fd.dup, select.POLLIN):
                    raise BlockingIOError(errno.EAGAIN, "pipe empty") from None
                got = os.readv(self.fd.dup, [view])
            return got, bytes(view[:got])
        size = want
        if want > 256 * 1024:
            # Learn the message's length first rather than allocate `want`.
            n, *_ = _kernel.recvmsg(self.fd.dup, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT, 0)
            size = min(want, n)
        data = self._receive(size, self.sock_flags, keep_length=True)
        return self._last_length, data

    def _receive(self, size: int, flags: int, keep_length: bool = False) -> bytes:
        reply = self.reply
        name_room = reply.receive_name_room() if reply else 0
        control_room = reply.control_room if reply else 0
        n, data, name, control, msg_flags, full_namelen = _kernel.recvmsg(
            self.fd.dup, size, flags | MSG_DONTWAIT, name_room, control_room
        )
        self._last_length = n
        if reply is not None and not self._peeked_control:
            reply.name = name
            reply.full_namelen = full_namelen
            reply.control = control  # translated when the call completes
            reply.msg_flags = msg_flags
            self._peeked_control = bool(n or control)
        else:
            close_received_fds(control)
        if reply is not None:
            reply.msg_flags = (reply.msg_flags & ~MSG_TRUNC) | (msg_flags & MSG_TRUNC)
        return data


class PacketPipe(Exception):
    """The pipe holds packets: read it one packet at a time."""


class Sink:
    """Writes to a target fd without ever blocking."""

    def __init__(self, fd: OpenFd, *, offset=None, rwf=0, sock_flags=0, name=None, control=None):
        self.fd = fd
        self.offset = offset
        self.rwf = rwf
        self.sock_flags = sock_flags
        self.name = name
        self.control = control

    def send(self, data, faults_after: bool = False) -> int:
        """faults_after: a stream socket's data, from a buffer that faults right after it."""
        mode = self.fd.mode
        if mode is IoMode.PIPE:
            try:
                return os.pwritev(self.fd.dup, [data], -1, RWF_NOWAIT | self.rwf)
            except OSError as e:
                if e.errno != errno.EOPNOTSUPP:
                    raise
            # The kernel takes FMODE_NOWAIT off a pipe that was ever spliced:
            # with POLLOUT, one free slot takes PIPE_BUF bytes without waiting.
            if not poll_now(self.fd.dup, select.POLLOUT):
                raise BlockingIOError(errno.EAGAIN, "pipe full")
            return os.write(self.fd.dup, data[:PIPE_BUF])
        if mode in (IoMode.STREAM, IoMode.DATAGRAM):
            control, self.control = self.control, None  # only with the first piece
            return _kernel.sendmsg(
                self.fd.dup, data, self.sock_flags | MSG_DONTWAIT | MSG_NOSIGNAL, self.name, control, faults_after
            )
        if mode is IoMode.FILE and (self.offset is not None or self.rwf):
            position = -1 if self.offset is None else self.offset
            n = os.pwritev(self.fd.dup, [data], position, self.rwf)
            if self.offset is not None:
                self.offset += n
            return n
        return os.write(self.fd.dup, data)


class ReadOp(Operation):
    """read, readv, pread64, preadv, preadv2, recvfrom, recvmsg; vmsplice from a pipe."""

    def __init__(self, caller: Caller, fd: OpenFd, iovs, total: int, source: Source, blocking: bool,
                 wait_all: bool = False, owns_dup: bool = True):
        self.caller = caller
        self.fd = fd
        self.iovs = iovs
        self.total = total
        self.source = source
        self.blocking = blocking and fd.mode not in (IoMode.FILE, IoMode.MEMORY_DEVICE)
        self.wait_all = wait_all  # MSG_WAITALL: a stream read waits for all it asked
        self.owns_dup = owns_dup
        self.installed_fds: list[int] = []

    def attempt(self) -> int | None:
        self.wait = None
        try:
            if self.source.whole_messages:
                result = self._take_message()
            else:
                result = self._take_bytes()
        except OSError as e:
            result = self.progress or -e.errno
        if result is not None and result >= 0 and self.source.reply is not None:
            result = self._finish_reply(result)
        return result

    def _take_bytes(self) -> int | None:
        if self.total == 0:
            return 0
        while self.progress < self.total:
            if self.progress and self.fd.mode is IoMode.STREAM and socket_error_pending(self.fd.dup):
                return self.progress
            want = min(self.total - self.progress, CHUNK)
            try:
                data = self.source.peek(want)
            except PacketPipe:
                return self.progress or self._take_message()
            except BlockingIOError:
                if self.progress and not self.wait_all:
                    return self.progress
                return self._would_block(self.fd, select.POLLIN)
            if not data:
                return self.progress
            delivered = self._deliver(data)
            if delivered < len(data) and self.fd.mode is IoMode.STREAM:
                # The kernel copies a stream's data a chunk (an skb) at a
                # time, and a chunk that faults is not taken: ask it, on a
                # buffer that faults where the caller's does.
                delivered = max(0, min(delivered, _kernel.peek_shaped(self.fd.dup, delivered, want)))
            self.source.consume(delivered, len(data))
            self.progress += delivered
            if delivered < len(data):
                return self.progress or -errno.EFAULT
            if self.source.peek_only or (len(data) < want and not self.wait_all):
                return self.progress
        return self.progress

    def _take_message(self) -> int | None:
        try:
            length, data = self.source.receive_whole(self.total)
        except BlockingIOError:
            return self._would_block(self.fd, select.POLLIN)
        if self._deliver(data) < len(data):
            return -errno.EFAULT
        return length

    def _deliver(self, data: bytes) -> int:
        if not data:
            return 0
        try:
            return _kernel.vm_write(self.caller.tid, slice_iovs(self.iovs, self.progress, len(data)), data)
        except OSError:
            return 0

    def _finish_reply(self, result: int) -> int:
        reply = self.source.reply
        if reply.error_after:
            return -reply.error_after
        if reply.control:
            reply.control, self.installed_fds = install_received_fds(reply.control, self.caller, reply.cloexec_fds)
        try:
            reply.write_back(self.caller.tid)
        except OSError:
            return -errno.EFAULT
        return result

    def legs(self, result: int) -> list[Leg]:
        # A peek returns bytes but moves none: the totals count bytes moved.
        moved = 0 if self.source.peek_only else max(result, 0)
        return [Leg(self.fd.fd, "in", moved)]

    def order_key(self):
        return (self.fd.identity, "in")

    def timeout_option(self):
        return (self.fd, socket.SO_RCVTIMEO)

    def release(self) -> None:
        if self.owns_dup:
            os.close(self.fd.dup)


class WriteOp(Operation):
    """write, writev, pwrite64, pwritev, pwritev2, sendto, sendmsg; vmsplice into a pipe."""

    def __init__(self, caller: Caller, fd: OpenFd, iovs, total: int, sink: Sink, blocking: bool,
                 local_fds: list[int] | None = None, signals_epipe: bool = True, owns_dup: bool = True):
        self.caller = caller
        self.fd = fd
        self.iovs = iovs
        self.total = total
        self.sink = sink
        self.blocking = blocking and fd.mode not in (IoMode.FILE, IoMode.MEMORY_DEVICE)
        self.owns_dup = owns_dup
        self.local_fds = local_fds or []  # SCM_RIGHTS copies to close
        self.signals_epipe = signals_epipe
        self.taken = 0  # bytes read from the target so far
        self.pending = memoryview(b"")
        self.source_fault = False
        self.started = False

    def attempt(self) -> int | None:
        self.wait = None
        datagram = self.fd.mode is IoMode.DATAGRAM
        while True:
            if not self.pending:
                if self.taken >= self.total and (self.started or not datagram):
                    return self.progress
                want = self.total - self.taken if datagram else min(self.total - self.taken, CHUNK)
                try:
                    data = _kernel.vm_read(self.caller.tid, slice_iovs(self.iovs, self.taken, want)) if want else b""
                except OSError:
                    data = b""
                if want and not data:
                    return self.progress or -errno.EFAULT
                if datagram and len(data) < want:
                    return -errno.EFAULT
                self.taken += len(data)
                self.source_fault = len(data) < want
                self.pending = memoryview(data)
            if self.progress and self.fd.mode is IoMode.STREAM and socket_error_pending(self.fd.dup):
                return self.progress
            try:
                # A stream socket copies whole chunks and drops the one that
                # faults: sent from a buffer that faults where the caller's
                # did, the kernel says how much goes.
                written = self.sink.send(self.pending, faults_after=self.source_fault and self.fd.mode is IoMode.STREAM)
            except BlockingIOError:
                return self._would_block(self.fd, select.POLLOUT)
            except OSError as e:
                # A pipe signals whatever went before; a socket only when
                # nothing did (sk_stream_error, unix_stream_sendmsg).
                if e.errno == errno.EPIPE and self.signals_epipe and (
                        self.fd.mode is IoMode.PIPE or not self.progress):
                    self.sigpipe = True
                return self.progress or -e.errno
            self.started = True
            self.progress += written
            self.pending = self.pending[written:]
            if datagram:
                return written
            if self.source_fault and not self.pending:
                return self.progress
            if written == 0 and self.pending:
                return self.progress

    def already_written(self, count: int, rest: bytes) -> None:
        """The first `count` bytes went out before this op took over, which
        read `rest` too: the call is those bytes, whatever the caller's
        memory holds now."""
        self.progress = count
        self.taken = self.total = count + len(rest)
        self.pending = memoryview(rest)
        self.started = True

    def legs(self, result: int) -> list[Leg]:
        return [Leg(self.fd.fd, "out", max(result, 0))]

    def order_key(self):
        return (self.fd.identity, "out")

    def timeout_option(self):
        return (self.fd, socket.SO_SNDTIMEO)

    def release(self) -> None:
        if self.owns_dup:
            os.close(self.fd.dup)
        for fd in self.local_fds:
            os.close(fd)
        self.local_fds = []


class ConnectOp(Operation):
    """connect() made by the supervisor with its own copy of the address, so
    that the address a policy checked is the one the kernel gets.  It never
    blocks: the handshake is started at once and waited for (POLLOUT) as a
    blocking connect waits, interruptible and bounded by SO_SNDTIMEO alike."""

    def __init__(self, fd: OpenFd, address: bytes, socket_file=None):
        self.fd = fd
        self.address = address  # the program's
        # A unix socket path: the file superv found for it, which it
        # connects to instead (its .used address), held open until done.
        self.socket_file = socket_file
        self.blocking = not fd.nonblocking
        self.started = False

    def attempt(self) -> int | None:
        if self.started:  # POLLOUT: the handshake is over
            err = socket_option(self.fd.dup, socket.SO_ERROR)
            return -err if err else 0
        self.started = True
        used = self.address if self.socket_file is None else self.socket_file.used
        result = _kernel.connect_nowait(self.fd.dup, used)
        # A blocking connect waits where a non-blocking one says EINPROGRESS;
        # restarted after a signal, it waits again (EALREADY without waiting).
        if result in (-errno.EINPROGRESS, -errno.EALREADY) and self.blocking:
            self.wait = (self.fd.dup, select.POLLOUT)
            return None
        return result

    def timed_out(self) -> int:
        return -errno.EINPROGRESS  # inet_stream_connect() when SO_SNDTIMEO runs out

    def legs(self, result: int) -> list[Leg]:
        return []

    def order_key(self):
        return (self.fd.identity, "connect")

    def timeout_option(self):
        return (self.fd, socket.SO_SNDTIMEO)

    def release(self) -> None:
        os.close(self.fd.dup)
        if self.socket_file is not None:
            self.socket_file.close()


class AcceptOp(Operation):
    """accept() made by the supervisor on the program's listening socket, so
    that a policy decides on the peer before the program sees it.  It never
    blocks: a blocking accept waits (POLLIN) as natively, interruptible and
    bounded by SO_RCVTIMEO alike.  attempt() gives the new socket, here."""

    def __init__(self, fd: OpenFd, flags: int):
        self.fd = fd
        self.flags = flags  # accept4's SOCK_NONBLOCK / SOCK_CLOEXEC
        self.blocking = not fd.nonblocking
        self.peer = b""  # the accepted socket's raw struct sockaddr

    def attempt(self) -> int | None:
        result = _kernel.accept_nowait(self.fd.dup, self.flags)
        if result == -errno.EAGAIN:
            return self._would_block(self.fd, select.POLLIN)
        if isinstance(result, int):
            return result
        made, self.peer = result
        return made

    def legs(self, result: int) -> list[Leg]:
        return []

    def order_key(self):
        return (self.fd.identity, "accept")

    def timeout_option(self):
        return (self.fd, socket.SO_RCVTIMEO)

    def release(self) -> None:
        os.close(self.fd.dup)


class TwoFdOp(Operation):
    """A call moving bytes from one target fd (src) to another (dst)."""

    src: OpenFd
    dst: OpenFd

    def legs(self, result: int) -> list[Leg]:
        n = max(result, 0)
        return [Leg(self.src.fd, "in", n), Leg(self.dst.fd, "out", n)]

    def order_key(self):
        return (self.dst.identity, "out")

    def release(self) -> None:
        os.close(self.src.dup)
        os.close(self.dst.dup)


class TransferOp(TwoFdOp):
    """sendfile: bytes from one target fd to another, through the supervisor,
    never consuming from the source more than the sink took."""

    def __init__(self, caller: Caller, src: OpenFd, source: Source, dst: OpenFd, sink: Sink, count: int,
                 blocking: bool, offset_address: int = 0):
        self.caller = caller
        self.src = src
        self.source = source
        self.dst = dst
        self.sink = sink
        self.count = count
        self.blocking = blocking
        self.offset_address = offset_address

    def attempt(self) -> int | None:
        self.wait = None
        result = self._move()
        if result is not None and result >= 0 and self.offset_address:
            try:
                kernel.write_i64(self.caller.tid, self.offset_address, self.source.offset)
            except OSError:
                return -errno.EFAULT
        return result

    def _move(self) -> int | None:
        while self.progress < self.count:
            want = min(self.count - self.progress, CHUNK)
            try:
                data = self.source.peek(want)
            except BlockingIOError:
                return self.progress or self._would_block(self.src, select.POLLIN)
            except OSError as e:
                return self.progress or -e.errno
            if not data:
                return self.progress
            try:
                written = self.sink.send(data)
            except BlockingIOError:
                self.source.consume(0, len(data))
                if not self.blocking and self.progress:
                    return self.progress
                return self._would_block(self.dst, select.POLLOUT)
            except OSError as e:
                self.source.consume(0, len(data))
                if e.errno == errno.EPIPE:
                    self.sigpipe = True
                return self.progress or -e.errno
            self.source.consume(written, len(data))
            self.progress += written
        return self.progress


def _pipe_is_empty(fd: int) -> bool:
    import fcntl

    count = bytearray(4)
    fcntl.ioctl(fd, FIONREAD, count)
    return struct.unpack("=i", count)[0] == 0


class SpliceOp(TwoFdOp):
    """splice and tee: the supervisor makes the same call on its copies of the
    two fds, with SPLICE_F_NONBLOCK, so the result is the kernel's own."""

    def __init__(self, caller: Caller, src: OpenFd, dst: OpenFd, count: int, flags: int, blocking: bool,
                 is_tee: bool, off_in_address: int = 0, off_out_address: int = 0):
        self.caller = caller
        self.src = src
        self.dst = dst
        self.count = count
        self.flags = flags
        self.blocking = blocking
        self.is_tee = is_tee
        self.off_in_address = off_in_address
        self.off_out_address = off_out_address
        self.off_in = kernel.read_i64(caller.tid, off_in_address) if off_in_address else None
        self.off_out = kernel.read_i64(caller.tid, off_out_address) if off_out_address else None

    def attempt(self) -> int | None:
        self.wait = None
        # A socket source is read with the socket's own blocking mode, which
        # SPLICE_F_NONBLOCK does not change: look before splicing.
        if self.src.mode in (IoMode.STREAM, IoMode.DATAGRAM) and not poll_now(self.src.dup, select.POLLIN):
            return self._would_block(self.src, select.POLLIN)
        try:
            if self.is_tee:
                n = _kernel.tee(self.src.dup, self.dst.dup, self.count, self.flags | SPLICE_F_NONBLOCK)
            else:
                n = os.splice(self.src.dup, self.dst.dup, self.count, offset_src=self.off_in,
                              offset_dst=self.off_out, flags=self.flags | SPLICE_F_NONBLOCK)
        except BlockingIOError:
            if self.src.mode is IoMode.PIPE and _pipe_is_empty(self.src.dup):
                return self._would_block(self.src, select.POLLIN)
            return self._would_block(self.dst, select.POLLOUT)
        except OSError as e:
            if e.errno == errno.EPIPE:
                self.sigpipe = True
            return -e.errno
        return self._advance_offsets(n)

    def _advance_offsets(self, n: int) -> int:
        """Write the moved-on offsets back, as the kernel does for off_in/off_out."""
        try:
            if self.off_in_address:
                kernel.write_i64(self.caller.tid, self.off_in_address, self.off_in + n)
            if self.off_out_address:
                kernel.write_i64(self.caller.tid, self.off_out_address, self.off_out + n)
        except OSError:
            return -errno.EFAULT
        return n


class CopyRangeOp(SpliceOp):
    """copy_file_range: files only, so it never waits."""

    def attempt(self) -> int | None:
        try:
            n = os.copy_file_range(self.src.dup, self.dst.dup, self.count, self.off_in, self.off_out)
        except OSError as e:
            return -e.errno
        return self._advance_offsets(n)


MMSGHDR_SIZE = 64  # struct mmsghdr: a msghdr (56 bytes) and msg_len, padded


class MultiMessageOp(Operation):
    """recvmmsg and sendmmsg: one ReadOp or WriteOp per message, in turn."""

    def __init__(self, fd: OpenFd, vlen: int, make_part, msgvec: int, caller: Caller, blocking: bool,
                 wait_for_one: bool, receiving: bool, timeout: float | None = None):
        self.fd = fd
        self.vlen = vlen
        self.make_part = make_part  # index -> ReadOp or WriteOp (not owning the dup)
        self.msgvec = msgvec
        self.caller = caller
        self.blocking = blocking
        self.wait_for_one = wait_for_one
        self.receiving = receiving
        self.timeout = timeout
        self.done = 0
        self.moved = 0
        self.part = None
        self.started = None
        # check(part) -> -errno to stop before this message (a policy on its
        # address), or None; the messages before it are sent, as the kernel
        # returns the count of those sent before an error.
        self.check = None

    def attempt(self) -> int | None:
        import time

        self.wait = None
        if self.started is None:
            self.started = time.monotonic()
        while self.done < self.vlen:
            if self.part is None:
                try:
                    self.part = self.make_part(self.done)
                except OSError as e:
                    return self.done or -e.errno
                refusal = self.check(self.part) if self.check is not None else None
                if refusal is not None:
                    self.part.release()
                    self.part = None
                    return self.done or refusal
                self.part.blocking = self.blocking and not (self.done and self.wait_for_one)
            result = self.part.attempt()
            if result is None:
                self.wait = self.part.wait
                return None
            if self.part.sigpipe:
                self.sigpipe = True
            self.part.release()
            self.part = None
            if result < 0:
                if self.done and result == -errno.EAGAIN:
                    return self.done
                return self.done or result
            try:
                kernel.write_u32(self.caller.tid, self.msgvec + MMSGHDR_SIZE * self.done + 56, result)
            except OSError:
                return self.done or -errno.EFAULT
            self.done += 1
            self.moved += result
            self.progress = self.done
            if self.timeout is not None and time.monotonic() - self.started > self.timeout:
                break
        return self.done

    def legs(self, result: int) -> list[Leg]:
        return [Leg(self.fd.fd, "in" if self.receiving else "out", self.moved)]

    def order_key(self):
        return (self.fd.identity, "in" if self.receiving else "out")

    def timeout_option(self):
        return (self.fd, socket.SO_RCVTIMEO if self.receiving else socket.SO_SNDTIMEO)

    def release(self) -> None:
        if self.part is not None:
            self.part.release()
            self.part = None
        os.close(self.fd.dup)
