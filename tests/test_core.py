"""The sans-IO core: classification rules, accounting, report formatting,
the syscall table and the kernel-feature check, as plain functions."""

import os
import socket
import stat
import struct

import pyseccomp
import pytest

from superv import features, reports, syscalls
from superv.classify import Classification, FdClass, FdFacts, IoMode, SocketFacts, classify, format_sockaddr
from superv.emulate import control_messages, slice_iovs
from superv.ledger import Leg, Ledger

# The 2010 article's 14230.log, after its two call rows.
ARTICLE_14230_SECTIONS = """
Network:14230:7 (2048,0)
Network totals: (2048, 0)
     read : 2 (2048)
     recv : 0 (0)
 recvfrom : 0 (0)
  recvmsg : 0 (0)
    write : 0 (0)
     send : 0 (0)
   sendto : 0 (0)
  sendmsg : 0 (0)

Pipe:14230:9 (0,2048)
Pipe totals: (0, 2048)
     read : 0 (0)
     recv : 0 (0)
 recvfrom : 0 (0)
  recvmsg : 0 (0)
    write : 1 (2048)
     send : 0 (0)
   sendto : 0 (0)
  sendmsg : 0 (0)

Disk totals: (0, 0)
     read : 0 (0)
     recv : 0 (0)
 recvfrom : 0 (0)
  recvmsg : 0 (0)
    write : 0 (0)
     send : 0 (0)
   sendto : 0 (0)
  sendmsg : 0 (0)
"""

TCP = Classification(FdClass.NET, "tcp", IoMode.STREAM, (8, 1001), local="127.0.0.1:41477", remote="127.0.0.1:36412")
PIPE = Classification(FdClass.PIPE, "pipe", IoMode.PIPE, (12, 2002))


def article_child_ledger() -> Ledger:
    ledger = Ledger()
    ledger.process_started(14230, 14228, ["./read_example"], 0.0)
    ledger.fd_opened(14230, 7, TCP)
    ledger.fd_opened(14230, 9, PIPE)
    ledger.data_call(14230, "read", [Leg(7, "in", 2048)], True)
    ledger.data_call(14230, "write", [Leg(9, "out", 2048)], True)
    ledger.data_call(14230, "read", [Leg(7, "in", 0)], True)
    return ledger


def test_log_sections_reproduce_the_article():
    ledger = article_child_ledger()
    assert reports.log_sections(ledger.processes[14230]) == ARTICLE_14230_SECTIONS


def test_log_row_format():
    assert reports.log_row("read", 7, 14230, 0, 1291401018.139170, 2048, 2048, 0) == \
        "read,7,14230,0,1291401018.139170,2048,2048,0"


def test_extra_kinds_follow_the_eight_and_other_classes_appear_when_used():
    ledger = article_child_ledger()
    tty = Classification(FdClass.TTY, "tty", IoMode.PASSTHROUGH, (5, 3), path="/dev/pts/0")
    ledger.fd_opened(14230, 1, tty)
    ledger.data_call(14230, "writev", [Leg(1, "out", 0)], False)
    ledger.data_call(14230, "sendfile", [Leg(7, "in", 10), Leg(9, "out", 10)], True)
    text = reports.log_sections(ledger.processes[14230])
    network = text.split("\n\n")[0]
    assert network.splitlines()[-1] == " sendfile : 1 (10)"
    assert "Terminal totals: (0, 0)" in text and "   writev : 1 (0)" in text
    assert "Device totals" not in text and "Other totals" not in text
    assert ledger.processes[14230].inexact_calls == 1


def test_connections_count_bytes_across_processes():
    ledger = Ledger()
    ledger.process_started(1, 0, ["server"], 0.0)
    ledger.process_started(2, 1, ["server"], 0.0)
    ledger.fd_opened(1, 4, TCP)
    ledger.fd_opened(2, 4, TCP)  # inherited over fork: the same socket
    ledger.data_call(2, "read", [Leg(4, "in", 100)], True)
    ledger.data_call(1, "write", [Leg(4, "out", 7)], True)
    (connection,) = ledger.connections()
    # The processes that moved its bytes, in the order they started.
    assert (connection.bytes_in, connection.bytes_out, connection.pids) == (100, 7, [1, 2])
    assert ledger.processes[1].classes[FdClass.NET].bytes_out == 7


def _facts(mode, link, sock=None, rdev=0, tty=False):
    return FdFacts(link=link, mode=mode, rdev=rdev, dev=1, ino=2, is_tty=tty, socket=sock)


def _inet(port, addr=b"\x7f\x00\x00\x01"):
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + addr + b"\0" * 8


@pytest.mark.parametrize(
    "facts, fd_class, detail, io_mode",
    [
        (_facts(stat.S_IFSOCK, "socket:[9]", SocketFacts(socket.AF_INET, socket.SOCK_STREAM, 6, _inet(80), _inet(5000))),
         FdClass.NET, "tcp", IoMode.STREAM),
        (_facts(stat.S_IFSOCK, "socket:[9]", SocketFacts(socket.AF_INET6, socket.SOCK_DGRAM, 17, b"\n\0" + b"\0" * 26, None)),
         FdClass.NET, "udp6", IoMode.DATAGRAM),
        (_facts(stat.S_IFSOCK, "socket:[9]", SocketFacts(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, b"\1\0", None)),
         FdClass.NET, "unix-seqpacket", IoMode.DATAGRAM),
        (_facts(stat.S_IFSOCK, "socket:[9]", SocketFacts(socket.AF_INET, socket.SOCK_DGRAM, 1, _inet(0), None)),
         FdClass.NET, "raw", IoMode.DATAGRAM),
        (_facts(stat.S_IFSOCK, "socket:[9]",
                SocketFacts(socket.AF_NETLINK, socket.SOCK_RAW, 0, struct.pack("=HHII", 16, 0, 0, 0), None)),
         FdClass.NET, "netlink", IoMode.PASSTHROUGH),
        (_facts(stat.S_IFSOCK, "socket:[9]",
                SocketFacts(socket.AF_NETLINK, socket.SOCK_RAW, 0, struct.pack("=HHII", 16, 0, 77, 0), None)),
         FdClass.NET, "netlink", IoMode.DATAGRAM),
        (_facts(stat.S_IFIFO, "pipe:[7]"), FdClass.PIPE, "pipe", IoMode.PIPE),
        (_facts(stat.S_IFIFO, "/tmp/fifo"), FdClass.PIPE, "fifo", IoMode.PIPE),
        (_facts(stat.S_IFREG, "/etc/hosts"), FdClass.DISK, "file", IoMode.FILE),
        (_facts(stat.S_IFDIR, "/etc"), FdClass.DISK, "directory", IoMode.FILE),
        (_facts(stat.S_IFBLK, "/dev/vda"), FdClass.DISK, "block-device", IoMode.FILE),
        (_facts(stat.S_IFCHR, "/dev/pts/3", rdev=os.makedev(136, 3), tty=True), FdClass.TTY, "tty", IoMode.PASSTHROUGH),
        (_facts(stat.S_IFCHR, "/dev/null", rdev=os.makedev(1, 3)), FdClass.DEVICE, "char-device", IoMode.MEMORY_DEVICE),
        (_facts(stat.S_IFCHR, "/dev/input/event0", rdev=os.makedev(13, 64)), FdClass.DEVICE, "char-device",
         IoMode.PASSTHROUGH),
        (_facts(0, "anon_inode:[eventfd]"), FdClass.OTHER, "eventfd", IoMode.PASSTHROUGH),
        (_facts(0, "anon_inode:inotify"), FdClass.OTHER, "inotify", IoMode.PASSTHROUGH),
        (_facts(stat.S_IFREG, "/memfd:buf (deleted)"), FdClass.OTHER, "memfd", IoMode.FILE),
    ],
)
def test_classification_rules(facts, fd_class, detail, io_mode):
    c = classify(facts)
    assert (c.fd_class, c.detail, c.io_mode) == (fd_class, detail, io_mode)


def test_tcp_classification_carries_endpoints():
    c = classify(_facts(stat.S_IFSOCK, "socket:[9]",
                        SocketFacts(socket.AF_INET, socket.SOCK_STREAM, 6, _inet(80), _inet(5000))))
    assert c.describe() == "tcp 127.0.0.1:80 -> 127.0.0.1:5000"


def test_sockaddr_formats():
    six = struct.pack("=H", socket.AF_INET6) + struct.pack("!H", 443) + b"\0" * 4 + socket.inet_pton(
        socket.AF_INET6, "fe80::1") + struct.pack("=I", 2)
    assert format_sockaddr(six) == "[fe80::1%2]:443"
    assert format_sockaddr(_inet(53, b"\x08\x08\x08\x08")) == "8.8.8.8:53"
    assert format_sockaddr(struct.pack("=H", 1) + b"/run/x.sock\0") == "/run/x.sock"
    assert format_sockaddr(struct.pack("=H", 1) + b"\0abstract") == "@abstract"
    assert format_sockaddr(struct.pack("=H", 1)) == "unnamed"
    assert format_sockaddr(struct.pack("=HHII", 16, 0, 42, 1)) == "netlink:42/0x1"
    assert format_sockaddr(b"") is None


def test_every_table_number_is_libseccomps():
    for call in syscalls.TABLE:
        assert pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, call.name) == call.nr, call.name


def test_data_calls_have_a_layout_and_names_are_unique():
    known = syscalls.TABLE + syscalls.ON_DEMAND + syscalls.PATH_CHANGES
    assert len(syscalls.BY_NAME) == len(known) == len(syscalls.BY_NR)
    for call in known:
        assert (call.handling is syscalls.Handling.DATA) == (call.layout is not None), call.name
        # the numbers are libseccomp's for x86_64
        assert pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, call.name) == call.nr, call.name


def test_call_kinds_follow_libc():
    recvfrom, sendto = syscalls.BY_NAME["recvfrom"], syscalls.BY_NAME["sendto"]
    assert syscalls.call_kind(recvfrom, (3, 0x1000, 10, 0, 0, 0)) == "recv"
    assert syscalls.call_kind(recvfrom, (3, 0x1000, 10, 0, 0x2000, 0x3000)) == "recvfrom"
    assert syscalls.call_kind(sendto, (3, 0x1000, 10, 0, 0, 0)) == "send"
    assert syscalls.call_kind(syscalls.BY_NAME["read"], (3, 0, 0)) == "read"


def test_statuses_read_as_a_shell_reads_them():
    assert reports.shell_status(3 << 8) == 3
    assert reports.shell_status(9) == 137
    assert reports.describe_status(0x8B) == "killed by SIGSEGV (core dumped)"
    assert reports.describe_status(None) == "unknown"
    assert reports.shell_status(None) is None


def test_kernel_features():
    assert features.missing_features("6.18.44", "kill_process errno user_notif allow") == []
    assert features.missing_features("5.15.0", "user_notif") == ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    missing = features.missing_features("6.1.0", "kill_process errno allow")
    assert missing == ["seccomp user notification (SECCOMP_RET_USER_NOTIF)"]
    line = features.refusal("5.4.0", features.missing_features("5.4.0", "user_notif"))
    assert line.startswith("superv: this kernel (5.4.0) lacks SECCOMP_USER_NOTIF_FLAG_CONTINUE (Linux 5.5+")
    assert "WAIT_KILLABLE_RECV (Linux 5.19+" in line and "\n" not in line


def test_slice_iovs():
    iovs = [(1000, 10), (2000, 5), (3000, 20)]
    assert slice_iovs(iovs, 0, 35) == iovs
    assert slice_iovs(iovs, 8, 4) == [(1008, 2), (2000, 2)]
    assert slice_iovs(iovs, 15, 100) == [(3000, 20)]
    assert slice_iovs(iovs, 35, 1) == []


def test_control_message_parsing():
    rights = struct.pack("=QiI", 16 + 8, socket.SOL_SOCKET, socket.SCM_RIGHTS) + struct.pack("=ii", 5, 6)
    creds = struct.pack("=QiI", 16 + 12, socket.SOL_SOCKET, socket.SCM_CREDENTIALS) + struct.pack("=iII", 1, 2, 3)
    buffer = rights + creds + b"\0" * 4  # padded to 8
    parsed = list(control_messages(buffer))
    assert [(level, type_, data) for _, level, type_, data in parsed] == [
        (socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("=ii", 5, 6)),
        (socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack("=iII", 1, 2, 3)),
    ]


def test_envelope_keys_cannot_be_overwritten(tmp_path):
    from superv.recorder import Recorder

    recorder = Recorder(str(tmp_path))
    with pytest.raises(ValueError):
        recorder._event("call", 1, 0, type=1)
    recorder.close()


def test_fd_fragments_are_encoded_once_and_their_cache_stays_bounded(tmp_path):
    """A server classifies every connection: the encoded class and detail
    of each must not be kept for the whole run."""
    from superv.recorder import FRAGMENTS_KEPT, Recorder

    recorder = Recorder(str(tmp_path))
    first = recorder.fd_fragment(TCP)
    assert first == '"class":"net","detail":"tcp 127.0.0.1:41477 -> 127.0.0.1:36412"'
    assert recorder.fd_fragment(TCP) is first
    connections = [
        Classification(FdClass.NET, "tcp", IoMode.STREAM, (8, port), local="10.0.0.1:80", remote=f"10.0.0.2:{port}")
        for port in range(1, 3 * FRAGMENTS_KEPT)
    ]
    for c in connections:
        assert recorder.fd_fragment(c).endswith(f'"detail":"tcp 10.0.0.1:80 -> 10.0.0.2:{c.identity[1]}"')
    assert len(recorder._fragments) <= FRAGMENTS_KEPT
    assert recorder.fd_fragment(TCP) == first
    recorder.close()


def test_channel_keys_pair_the_two_ends():
    from superv.engine import _channel_keys

    a = Classification(FdClass.NET, "tcp", IoMode.STREAM, (8, 1), local="127.0.0.1:5", remote="127.0.0.1:9")
    b = Classification(FdClass.NET, "tcp", IoMode.STREAM, (8, 2), local="127.0.0.1:9", remote="127.0.0.1:5")
    assert _channel_keys(a)[1] == _channel_keys(b)[0] and _channel_keys(b)[1] == _channel_keys(a)[0]
    u = Classification(FdClass.NET, "unix-stream", IoMode.STREAM, (8, 3), peer_inode=4)
    v = Classification(FdClass.NET, "unix-stream", IoMode.STREAM, (8, 4), peer_inode=3)
    assert _channel_keys(u)[1] == _channel_keys(v)[0]
    assert _channel_keys(PIPE)[0] == _channel_keys(PIPE)[1] != 0
    unconnected = Classification(FdClass.NET, "udp", IoMode.DATAGRAM, (8, 5), local="0.0.0.0:53")
    assert _channel_keys(unconnected) == (0, 0)


def test_the_picture_of_fd_numbers_gives_the_number_the_kernel_gives_next():
    from superv import _fastpath as fastpath

    parent, child = 2**30 + 1, 2**30 + 2  # above any pid_max: no process of the run
    with fastpath.lock:
        for pid in (parent, child):
            fastpath.add_process(pid, -1, False, "/nonexistent/log", "[]")
        try:
            assert fastpath.picture(parent) is None and fastpath.picture_free_from(parent, 0) == -1
            fastpath.picture_set(parent, [0, 1, 2])
            assert fastpath.picture_free_from(parent, 0) == 3
            fastpath.picture_add(parent, 3)
            fastpath.picture_add(parent, 4)
            fastpath.picture_remove(parent, 1, 1)
            assert fastpath.picture_free_from(parent, 0) == 1  # the lowest free number, as the kernel picks
            fastpath.picture_add(parent, 1)
            assert fastpath.picture_free_from(parent, 0) == 5
            assert fastpath.picture_free_from(parent, 10) == 10  # F_DUPFD's lowest number
            fastpath.picture_set(parent, range(200))  # across several words of the bitmap
            assert fastpath.picture_free_from(parent, 0) == 200 and fastpath.picture_free_from(parent, 64) == 200
            fastpath.picture_remove(parent, 64, 127)
            assert fastpath.picture_free_from(parent, 0) == 64 and fastpath.picture_free_from(parent, 130) == 200
            fastpath.picture_copy(child, parent, [])
            fastpath.picture_add(child, 64)
            assert fastpath.picture_free_from(child, 0) == 65 and fastpath.picture_free_from(parent, 0) == 64
            fastpath.picture_remove(parent, 0, 2**32 - 1)  # close_range(0, ~0U)
            assert fastpath.picture(parent) == [] and fastpath.picture_free_from(parent, 0) == 0
            assert len(fastpath.picture(child)) == 200 - 64 + 1
            fastpath.picture_forget(child)
            assert fastpath.picture(child) is None
        finally:
            for pid in (parent, child):
                fastpath.remove_process(pid)
