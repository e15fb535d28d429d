"""Classification rules: what an fd is, from facts the kernel layer gathered.

Pure functions over plain data; kernel.py collects the FdFacts (readlink of
/proc/PID/fd/N, fstat and the socket options of a duplicate of the fd).
"""

from __future__ import annotations

import enum
import ipaddress
import socket
import stat
import struct

import attrs


class FdClass(enum.Enum):
    NET = "net"
    PIPE = "pipe"
    DISK = "disk"
    TTY = "tty"
    DEVICE = "device"
    OTHER = "other"

    @property
    def title(self) -> str:
        """The section name in the per-process log."""
        return _TITLES[self]

    @property
    def tag(self) -> str:
        """The four-character tag of a --trace line."""
        return _TAGS[self]


_TITLES = {
    FdClass.NET: "Network",
    FdClass.PIPE: "Pipe",
    FdClass.DISK: "Disk",
    FdClass.TTY: "Terminal",
    FdClass.DEVICE: "Device",
    FdClass.OTHER: "Other",
}
_TAGS = {
    FdClass.NET: " NET",
    FdClass.PIPE: "PIPE",
    FdClass.DISK: "DISK",
    FdClass.TTY: " TTY",
    FdClass.DEVICE: " DEV",
    FdClass.OTHER: " OTH",
}


class IoMode(enum.Enum):
    """How the supervisor performs a data call on this kind of file."""

    PIPE = "pipe"  # peek with tee, deliver, consume what was delivered
    STREAM = "stream"  # stream socket: peek with MSG_PEEK, deliver, consume
    DATAGRAM = "datagram"  # message socket: one recvmsg takes one whole message
    FILE = "file"  # seekable: read, deliver, rewind what was not delivered
    MEMORY_DEVICE = "memory_device"  # /dev/null, zero, urandom...: never block
    PASSTHROUGH = "passthrough"  # cannot be emulated faithfully: CONTINUE, exact=false


@attrs.frozen
class SocketFacts:
    family: int
    type: int
    protocol: int
    local: bytes  # raw struct sockaddr from getsockname
    remote: bytes | None  # from getpeername; None when not connected
    peer_inode: int | None = None  # a unix socket's other end (sock_diag)


@attrs.frozen
class FdFacts:
    link: str  # readlink /proc/PID/fd/N
    mode: int  # st_mode
    rdev: int  # st_rdev
    dev: int
    ino: int
    is_tty: bool
    socket: SocketFacts | None = None


@attrs.frozen
class Classification:
    fd_class: FdClass
    detail: str  # tcp, udp6, unix-stream, pipe, fifo, file, directory, tty, eventfd...
    io_mode: IoMode
    identity: tuple[int, int]  # (st_dev, st_ino): the same file, socket or pipe
    path: str | None = None
    local: str | None = None
    remote: str | None = None
    peer_inode: int | None = None  # the other end of a unix socket

    def describe(self) -> str:
        """One human line: 'tcp 127.0.0.1:5000 -> 127.0.0.1:43822' or 'file /etc/hosts'."""
        if self.fd_class is FdClass.NET:
            ends = self.local or "?"
            if self.remote:
                ends += f" -> {self.remote}"
            return f"{self.detail} {ends}"
        return f"{self.detail} {self.path}" if self.path else self.detail


# Character devices of the "mem" driver (major 1): null, zero, full, random,
# urandom, kmsg...  Reads and writes on them never wait.
MEM_MAJOR = 1
_TTY_MAJORS = {4, 5} | set(range(136, 144))


def classify(facts: FdFacts) -> Classification:
    kind = stat.S_IFMT(facts.mode)
    identity = (facts.dev, facts.ino)
    if facts.socket is not None:
        return _classify_socket(facts.socket, identity)
    if kind == stat.S_IFIFO:
        detail = "pipe" if facts.link.startswith("pipe:") else "fifo"
        return Classification(FdClass.PIPE, detail, IoMode.PIPE, identity, path=_path_of(facts.link))
    if kind in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFBLK):
        if facts.link.startswith("/memfd:"):
            return Classification(FdClass.OTHER, "memfd", IoMode.FILE, identity, path=facts.link)
        detail = {stat.S_IFREG: "file", stat.S_IFDIR: "directory", stat.S_IFBLK: "block-device"}[kind]
        return Classification(FdClass.DISK, detail, IoMode.FILE, identity, path=_path_of(facts.link))
    if kind == stat.S_IFCHR:
        major = facts.rdev >> 8 & 0xFFF
        if facts.is_tty or major in _TTY_MAJORS:
            return Classification(FdClass.TTY, "tty", IoMode.PASSTHROUGH, identity, path=facts.link)
        mode = IoMode.MEMORY_DEVICE if major == MEM_MAJOR else IoMode.PASSTHROUGH
        return Classification(FdClass.DEVICE, "char-device", mode, identity, path=facts.link)
    return Classification(FdClass.OTHER, _anon_kind(facts.link), IoMode.PASSTHROUGH, identity)


def _path_of(link: str) -> str | None:
    return None if link.startswith(("pipe:", "socket:", "anon_inode:")) else link


def _anon_kind(link: str) -> str:
    """'anon_inode:[eventfd]' -> 'eventfd'; 'anon_inode:inotify' -> 'inotify'."""
    if link.startswith("anon_inode:"):
        return link[len("anon_inode:") :].strip("[]") or "anon"
    return link or "unknown"


_INET_DETAIL = {
    (socket.AF_INET, socket.SOCK_STREAM): "tcp",
    (socket.AF_INET6, socket.SOCK_STREAM): "tcp6",
    (socket.AF_INET, socket.SOCK_DGRAM): "udp",
    (socket.AF_INET6, socket.SOCK_DGRAM): "udp6",
}
_UNIX_DETAIL = {
    socket.SOCK_STREAM: "unix-stream",
    socket.SOCK_DGRAM: "unix-dgram",
    socket.SOCK_SEQPACKET: "unix-seqpacket",
}
_ICMP_PROTOCOLS = {1, 58}  # ping sockets are SOCK_DGRAM, but not UDP


def socket_detail(s: SocketFacts) -> str:
    if s.family == socket.AF_UNIX:
        return _UNIX_DETAIL.get(s.type, "other")
    if s.family == socket.AF_NETLINK:
        return "netlink"
    if s.type == socket.SOCK_RAW or s.family == socket.AF_PACKET:
        return "raw"
    if s.protocol in _ICMP_PROTOCOLS:
        return "raw"
    return _INET_DETAIL.get((s.family, s.type), "other")


def _classify_socket(s: SocketFacts, identity: tuple[int, int]) -> Classification:
    detail = socket_detail(s)
    if s.type == socket.SOCK_STREAM:
        mode = IoMode.STREAM
    elif s.family == socket.AF_NETLINK and netlink_port(s.local) == 0:
        # An unbound netlink socket binds itself on its first send, to the
        # sender's pid: sent from the supervisor it would take superv's pid.
        mode = IoMode.PASSTHROUGH
    else:
        mode = IoMode.DATAGRAM
    return Classification(
        FdClass.NET,
        detail,
        mode,
        identity,
        local=format_sockaddr(s.local),
        remote=format_sockaddr(s.remote) if s.remote else None,
        peer_inode=s.peer_inode,
    )


def netlink_port(raw: bytes) -> int | None:
    if len(raw) >= 8 and struct.unpack_from("=H", raw)[0] == socket.AF_NETLINK:
        return struct.unpack_from("=I", raw, 4)[0]
    return None


def format_sockaddr(raw: bytes | None) -> str | None:
    """A struct sockaddr as people write it: 1.2.3.4:80, [::1]:80, /path, @abstract."""
    if not raw or len(raw) < 2:
        return None
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack_from("!H", raw, 2)[0]
        return f"{socket.inet_ntop(socket.AF_INET, raw[4:8])}:{port}"  # 10x ipaddress's time
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack_from("!H", raw, 2)[0]
        address = ipaddress.IPv6Address(raw[8:24])
        scope = struct.unpack_from("=I", raw, 24)[0] if len(raw) >= 28 else 0
        host = f"{address}%{scope}" if scope else str(address)
        return f"[{host}]:{port}"
    if family == socket.AF_UNIX:
        path = raw[2:]
        if not path:
            return "unnamed"
        if path[0] == 0:
            return "@" + path[1:].decode("utf-8", "backslashreplace")
        return path.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
    if family == socket.AF_NETLINK and len(raw) >= 12:
        port, groups = struct.unpack_from("=II", raw, 4)
        return f"netlink:{port}/{groups:#x}"
    return f"family-{family}"
