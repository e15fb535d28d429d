"""Acceptance 2 and 3: superv's books are exact, for static programs too.

Every workload in tests/progs/exact_io.c does all of its I/O itself (both
ends of each pipe or socket live in its own process tree) and prints its own
books: per fd, the bytes its calls moved, every call's raw result, a hash of
the bytes received and sent.  Each test runs the workload natively and under
superv and checks that

- the workload behaves the same under superv: the same bytes (hashes), the
  same counts, the same errors, the same exit statuses as natively;
- superv's summary.json, events.jsonl and <pid>.log agree with the
  workload's own books, call by call, for every fd it reports.

Static builds (ours with -static, and Debian's busybox-static) must be traced
exactly like dynamic ones.
"""

from __future__ import annotations

import errno
import hashlib
import re
import socket
import signal
import subprocess

import attrs
import pytest

from conftest import busybox, finish, free_port, start_superv, wait_for

BUILDS = pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
CHILD_OK = 23  # exact_io's children exit with it when their own checks passed
GIB = 1 << 30

IN_KINDS = {"read", "recv", "recvfrom", "recvmsg", "readv", "pread64", "preadv", "preadv2", "recvmmsg"}
TITLES = {"net": "Network", "pipe": "Pipe", "disk": "Disk", "tty": "Terminal", "device": "Device", "other": "Other"}
ERRNO_FIELDS = {"eagain": -errno.EAGAIN, "epipe": -errno.EPIPE, "econnreset": -errno.ECONNRESET}
# What the dynamic loader reads before main(): not the workload's.
LOADER = re.compile(r"^file .*(/ld\.so\.cache|\.so(\.\d+)*)$")
MASK = (1 << 64) - 1
FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


# -- the workload's own books ----------------------------------------------------


@attrs.define
class Books:
    """What exact_io printed: FD, CHILD and INFO lines."""

    root_pid: int = 0
    fds: dict = attrs.Factory(dict)  # label -> fields
    children: dict = attrs.Factory(dict)  # label -> {"pid", "status"}
    info: dict = attrs.Factory(dict)


def parse_books(stdout: bytes) -> Books:
    books = Books()
    for line in stdout.decode().splitlines():
        tag, _, rest = line.partition(" ")
        fields = dict(item.split("=", 1) for item in rest.split())
        if tag == "START":
            books.root_pid = int(fields["pid"])
        elif tag == "FD":
            label = fields.pop("label")
            assert label not in books.fds, f"two FD lines for {label}"
            for key in ("pid", "fd", "in", "out", "calls", "zero", "errors", *ERRNO_FIELDS):
                fields[key] = int(fields[key])
            fields["kinds"] = {} if fields["kinds"] == "-" else {
                name: (int(calls), int(nbytes))
                for name, calls, nbytes in (k.split(":") for k in fields["kinds"].split(","))
            }
            fields["results"] = None if fields["results"] == "-" else [int(r) for r in fields["results"].split(",")]
            books.fds[label] = fields
        elif tag == "CHILD":
            books.children[fields["label"]] = {"pid": int(fields["pid"]), "status": int(fields["status"])}
        elif tag == "INFO":
            books.info.update(fields)
        else:
            raise AssertionError(f"unexpected output line: {line!r}")
    assert books.root_pid, "no START line"
    return books


def results_hash(results: list[int]) -> str:
    """exact_io's rhash: FNV-1a over the raw 64-bit results."""
    h = FNV_OFFSET
    for r in results:
        h = ((h ^ (r & MASK)) * FNV_PRIME) & MASK
    return f"{h:016x}"


# Fields that must be the same natively and under superv, whatever the
# scheduling: the bytes (counts and hashes), the errors and the fd numbers.
# How the bytes were split into calls may differ unless the workload is
# deterministic.
ALWAYS_SAME = ("fd", "in", "out", "eagain", "epipe", "econnreset", "errors", "hin", "hout")
SAME_WHEN_DETERMINISTIC = ALWAYS_SAME + ("calls", "zero", "rhash", "kinds", "results")


def compare_with_native(native: Books, traced: Books, deterministic: bool, loose: dict | None = None) -> None:
    """loose: label -> fields that depend on scheduling for that fd."""
    assert sorted(traced.fds) == sorted(native.fds)
    for label, own in native.fds.items():
        fields = [f for f in (SAME_WHEN_DETERMINISTIC if deterministic else ALWAYS_SAME)
                  if f not in (loose or {}).get(label, ())]
        expected = {k: own[k] for k in fields}
        got = {k: traced.fds[label][k] for k in fields}
        assert got == expected, f"{label}: under superv the workload saw other results than natively"
    assert {k: c["status"] for k, c in traced.children.items()} == {k: c["status"] for k, c in native.children.items()}
    assert traced.info == native.info


# -- superv's books ----------------------------------------------------------------


@attrs.define
class Lifetime:
    """One fd of one process from its first use (an "fd" event) on."""

    pid: int
    fd: int
    classified: dict | None
    calls: list = attrs.Factory(list)


def lifetimes(events: list[dict]) -> dict:
    """(pid, fd) -> [Lifetime, ...] in order, with their data-call events."""
    found: dict = {}
    for e in events:
        if e["type"] == "fd":
            found.setdefault((e["pid"], e["fd"]), []).append(Lifetime(e["pid"], e["fd"], e))
        elif e["type"] == "call" and "exact" in e and e.get("fd") is not None:
            # sendfile, splice...: one view of the call per fd, with its totals
            legs = [{**e, **leg} for leg in e["fds"]] if "fds" in e else [e]
            for leg in legs:
                spans = found.setdefault((e["pid"], leg["fd"]), [])
                if not spans:
                    spans.append(Lifetime(e["pid"], leg["fd"], None))
                spans[-1].calls.append(leg)
    return found


class Record:
    """superv's outputs for one run, read once."""

    def __init__(self, run):
        self.run = run
        self.summary = run.summary
        self.events = run.events
        self.processes = {p["pid"]: p for p in self.summary["processes"]}
        self.lifetimes = lifetimes(self.events)
        self._logs: dict = {}

    def log(self, pid: int):
        if pid not in self._logs:
            self._logs[pid] = self.run.log(pid)
        return self._logs[pid]

    def fd_entry(self, pid: int, fd: int) -> dict:
        """The summary's entry for the last lifetime of fd in pid; the
        earlier ones may only be the dynamic loader's."""
        entries = [f for f in self.processes[pid]["fds"] if f["fd"] == fd]
        assert entries, f"no summary entry for pid {pid} fd {fd}"
        for earlier in entries[:-1]:
            assert LOADER.match(earlier["detail"]), f"pid {pid} fd {fd} has several lifetimes: {entries}"
        return entries[-1]


def check_books(run, books: Books, classes: dict, *, status: int = 0, pending: dict | None = None) -> Record:
    """superv's records against the workload's own books.

    classes: label -> the fd class superv must give it.  pending: label ->
    results of calls the workload made after printing its books (it died)."""
    assert run.returncode == status, run.stderr.decode()
    record = Record(run)
    summary = record.summary
    assert summary["exit_status"] == status
    assert summary["inexact_calls"] == 0 and summary["refused_calls"] == 0
    assert not [e for e in record.events if e["type"] == "superv_error"]
    assert record.processes[books.root_pid]["exit_status"] == status
    assert sorted(books.fds) == sorted(classes), "the test names a class for every fd the workload reports"

    for label, own in books.fds.items():
        pid, fd = own["pid"], own["fd"]
        where = f"{label} (pid {pid} fd {fd})"
        extra = (pending or {}).get(label, [])
        own_results = None if own["results"] is None else own["results"] + extra
        assert all(r < 0 for r in extra)  # calls that failed, moving nothing
        assert pid in record.processes, f"{where}: no such process in summary.json"
        entry = record.fd_entry(pid, fd)
        assert entry["class"] == classes[label], where
        assert (entry["bytes_in"], entry["bytes_out"]) == (own["in"], own["out"]), where
        assert entry["calls"] == own["calls"] + len(extra), where

        span = record.lifetimes[(pid, fd)][-1]
        calls = span.calls
        assert len(calls) == own["calls"] + len(extra), where
        assert all(c["exact"] is True for c in calls), f"{where}: inexact calls"
        assert all(c["class"] == classes[label] for c in calls), where
        results = [c["result"] for c in calls]
        if own_results is not None:
            assert results == own_results, f"{where}: superv recorded other results than the workload got"
        assert results_hash(results[: own["calls"]]) == own["rhash"], f"{where}: results differ"
        # Bytes per kind from the running totals: a call moved what they grew
        # by (a MSG_PEEK returns bytes but moves none).
        kinds: dict = {}
        before = 0
        for c in calls[: own["calls"]]:
            calls_bytes = kinds.setdefault(c["kind"], [0, 0])
            calls_bytes[0] += 1
            calls_bytes[1] += c["fd_in"] + c["fd_out"] - before
            before = c["fd_in"] + c["fd_out"]
        assert {k: tuple(v) for k, v in kinds.items()} == own["kinds"], f"{where}: call kinds differ"
        for name, value in ERRNO_FIELDS.items():
            assert results[: own["calls"]].count(value) == own[name], f"{where}: {name}"

        # Running totals after each call: a failed call (EAGAIN, EPIPE...) moves
        # nothing, and neither does a MSG_PEEK.
        moved_in = moved_out = 0
        for c in calls:
            if c.get("flags", 0) & socket.MSG_PEEK:
                pass
            elif c["kind"] in IN_KINDS:
                moved_in += max(c["result"], 0)
            else:
                moved_out += max(c["result"], 0)
            assert (c["fd_in"], c["fd_out"]) == (moved_in, moved_out), f"{where}: running totals at seq {c['seq']}"

        # The ntrace-style log: the fd's line in its class section, and for
        # network fds one row per call with the running totals.
        log = record.log(pid)
        section = log.sections[TITLES[entry["class"]]]
        assert section.fds[fd] == (entry["bytes_in"], entry["bytes_out"]), where
        if entry["class"] == "net":
            rows = [r for r in log.rows if r.fd == fd and r.seq >= calls[0]["seq"]]
            assert [r.seq for r in rows] == [c["seq"] for c in calls], where
            assert [(r.call, r.recv_so_far, r.send_so_far) for r in rows] == [
                (c["kind"], c["fd_in"], c["fd_out"]) for c in calls
            ], where
            assert [r.size for r in rows if r.size >= 0] == [c["result"] for c in calls if c["result"] >= 0], where

    for label, child in books.children.items():
        assert child["pid"] in record.processes, f"child {label} not followed"
        assert record.processes[child["pid"]]["exit_status"] == child["status"], label
        assert record.processes[child["pid"]]["ppid"] == books.root_pid, label
    return record


# -- running a workload both ways --------------------------------------------------------


def run_native(program: list, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in program], capture_output=True, timeout=timeout)


def native_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def both_ways(prog, superv, static: bool, args: list, *, status: int = 0, timeout: float = 120, files=None):
    """Run exact_io natively then under superv: (native books, superv run, traced books).
    files: (native's, superv's), each run's own file, given as its last argument."""
    program = [prog("exact_io", static=static), *args]
    native = run_native([*program, files[0]] if files else program, timeout)
    assert native_status(native.returncode) == status, native.stderr.decode()
    assert b"FAIL" not in native.stderr, native.stderr.decode()
    run = superv([*program, files[1]] if files else program, timeout=timeout)
    assert b"FAIL" not in run.stderr, run.stderr.decode()
    assert run.returncode == status, run.stderr.decode()
    return parse_books(native.stdout), run, parse_books(run.stdout)


def exact(prog, superv, static, args, classes, *, deterministic: bool, status: int = 0, pending=None,
          loose=None, timeout: float = 120, files=None):
    native, run, traced = both_ways(prog, superv, static, args, status=status, timeout=timeout, files=files)
    compare_with_native(native, traced, deterministic, loose)
    record = check_books(run, traced, classes, status=status, pending=pending)
    for child in traced.children.values():
        assert child["status"] == CHILD_OK
    return native, traced, record


# -- acceptance 3: exactness, workload by workload -----------------------------------------


@BUILDS
def test_pipe_pingpong(prog, superv, static):
    """Two pipes and a forked echo child; every tenth message (70001 bytes)
    is larger than a pipe, so both ends block in turn."""
    classes = {"parent.tx": "pipe", "parent.rx": "pipe", "child.rx": "pipe", "child.tx": "pipe"}
    native, traced, record = exact(prog, superv, static, ["pingpong", "60"], classes, deterministic=False)
    own = traced.fds
    total = own["parent.tx"]["out"]
    assert total == sum(70001 if i % 10 == 9 else 1000 + i * 337 % 2500 for i in range(60))
    assert own["child.rx"]["in"] == own["child.tx"]["out"] == own["parent.rx"]["in"] == total
    assert own["parent.rx"]["hin"] == own["parent.tx"]["hout"] == own["child.rx"]["hin"]
    # writev and read as the workload called them
    assert set(own["parent.tx"]["kinds"]) == {"write", "writev"}
    assert record.processes[traced.root_pid]["classes"]["pipe"]["kinds"]["writev"] == {
        "calls": own["parent.tx"]["kinds"]["writev"][0], "bytes": own["parent.tx"]["kinds"]["writev"][1]}


@BUILDS
def test_tcp_echo_between_threads(prog, superv, static):
    """A TCP echo over 127.0.0.1 between two threads of one process: send,
    sendmsg and write out; recv, recvfrom and recvmsg back."""
    classes = {"client.conn": "net", "server.conn": "net"}
    native, traced, record = exact(prog, superv, static, ["tcpecho", "40"], classes, deterministic=False)
    client, server = traced.fds["client.conn"], traced.fds["server.conn"]
    assert client["out"] == client["in"] == server["in"] == server["out"]
    assert set(client["kinds"]) == {"send", "sendmsg", "write", "recv", "recvfrom", "recvmsg"}
    tcp = [c for c in record.summary["connections"] if c["proto"] == "tcp"]
    assert sorted((c["bytes_in"], c["bytes_out"]) for c in tcp) == [(client["in"], client["out"])] * 2
    assert all(c["pids"] == [traced.root_pid] for c in tcp)


@BUILDS
def test_one_gib_loopback_stream(prog, superv, static):
    """1 GiB over one TCP connection on 127.0.0.1: 64 KiB writes, 77777-byte reads."""
    classes = {"writer": "net", "reader": "net"}
    native, traced, record = exact(prog, superv, static, ["stream", GIB, 65536, 77777], classes,
                                   deterministic=False, timeout=240)
    writer, reader = traced.fds["writer"], traced.fds["reader"]
    assert writer["out"] == reader["in"] == GIB
    assert writer["calls"] == GIB // 65536
    assert reader["hin"] == writer["hout"] == native.fds["reader"]["hin"]
    by_remote = {c["local"]: c for c in record.summary["connections"] if c["proto"] == "tcp"}
    assert len(by_remote) == 2
    assert sorted((c["bytes_in"], c["bytes_out"]) for c in by_remote.values()) == [(0, GIB), (GIB, 0)]
    for c in by_remote.values():
        assert c["local"].startswith("127.0.0.1:") and c["remote"].startswith("127.0.0.1:")
        assert c["remote"] in by_remote  # the two ends of one connection
    assert record.summary["classes"]["net"]["bytes_in"] == record.summary["classes"]["net"]["bytes_out"] == GIB


@BUILDS
def test_udp(prog, superv, static):
    """UDP ping-pong: a connected socket (send/recv) and a forked echo that
    uses recvfrom/sendto with a 777-byte buffer, so larger datagrams arrive
    truncated; the first datagram is empty.  Then EAGAIN with MSG_DONTWAIT."""
    classes = {"parent.udp": "net", "child.udp": "net"}
    native, traced, record = exact(prog, superv, static, ["udp", "50"], classes, deterministic=True)
    sizes = [i * 611 % 1500 for i in range(50)]
    parent, child = traced.fds["parent.udp"], traced.fds["child.udp"]
    assert parent["out"] == sum(sizes)
    assert child["in"] == child["out"] == parent["in"] == sum(min(s, 777) for s in sizes)
    assert parent["results"] is None or parent["results"][-1] == -errno.EAGAIN
    assert parent["eagain"] == 1 and parent["zero"] == 2
    assert parent["kinds"] == {"send": (50, sum(sizes)), "recv": (51, parent["in"])}
    assert set(child["kinds"]) == {"recvfrom", "sendto"}


@BUILDS
def test_unix_datagrams(prog, superv, static):
    """socketpair(SOCK_DGRAM): sendmsg from three iovecs, recvmsg into two
    (1277 bytes: the larger datagrams are truncated), an empty datagram."""
    classes = {"parent.unix": "net", "child.unix": "net"}
    native, traced, record = exact(prog, superv, static, ["unixdgram", "50"], classes, deterministic=True)
    sizes = [i * 911 % 3000 for i in range(50)]
    parent, child = traced.fds["parent.unix"], traced.fds["child.unix"]
    assert parent["out"] == sum(sizes)
    assert child["in"] == child["out"] == parent["in"] == sum(min(s, 1277) for s in sizes)
    assert int(traced.info["child_truncated"]) == sum(s > 1277 for s in sizes)
    assert parent["kinds"]["sendmsg"] == (50, sum(sizes))
    assert child["kinds"]["recvmsg"] == (50, child["in"])


@BUILDS
def test_disk_write_and_read_back(prog, superv, tmp_path, static):
    """write, writev, pwrite64, then read back to EOF in 777-byte reads
    (a short read, then 0), pread64 across and past the end, readv at EOF."""
    native_file, traced_file = tmp_path / "native.bin", tmp_path / "traced.bin"
    _, mine, record = exact(prog, superv, static, ["disk"], {"disk": "disk"}, deterministic=True,
                            files=(native_file, traced_file))
    assert traced_file.read_bytes() == native_file.read_bytes()
    assert traced_file.stat().st_size == int(mine.info["size"]) == 40211
    disk = mine.fds["disk"]
    assert disk["out"] == 37 * 1000 + 3211 + 123
    assert disk["in"] == 40211 + 4096 + 211 + 1211
    assert disk["kinds"] == {"write": (37, 37000), "writev": (1, 3211), "pwrite64": (1, 123),
                             "read": (53, 40211), "pread64": (3, 4096 + 211), "readv": (2, 1211)}
    reads = [c["result"] for c in record.lifetimes[(mine.root_pid, disk["fd"])][-1].calls if c["kind"] == "read"]
    assert reads == [777] * 51 + [40211 - 51 * 777, 0]
    assert record.fd_entry(mine.root_pid, disk["fd"])["detail"] == f"file {traced_file}"


@BUILDS
def test_short_reads_at_eof(prog, superv, static):
    """2500 bytes then EOF, read 777 at a time: 777, 777, 777, 169, 0 -- on a
    pipe and on a unix stream socket; MSG_WAITALL gets 2000, then a short 500."""
    classes = {"pipe.r": "pipe", "pipe.w": "pipe", "unix.w": "net", "unix.r": "net",
               "waitall.w": "net", "waitall.r": "net"}
    native, traced, record = exact(prog, superv, static, ["eof"], classes, deterministic=True)
    own = traced.fds
    assert own["pipe.r"]["results"] == [0, 777, 777, 777, 169, 0, 0]
    assert own["unix.r"]["results"] == [777, 777, 777, 169, 0, 0]
    assert own["waitall.r"]["results"] == [2000, 500, 0]
    for w, r in (("pipe.w", "pipe.r"), ("unix.w", "unix.r"), ("waitall.w", "waitall.r")):
        assert own[w]["out"] == own[r]["in"] == 2500
        assert own[w]["hout"] == own[r]["hin"]


@BUILDS
def test_nonblocking_reads_hit_eagain(prog, superv, static):
    """EAGAIN on empty nonblocking pipes and sockets (pipe2 O_NONBLOCK,
    SOCK_NONBLOCK, MSG_DONTWAIT, accept4 SOCK_NONBLOCK, UDP), and on full
    ones (a pipe filled with 1000-byte writes, a socket with a 4 KiB SO_SNDBUF
    filled with 100000-byte sends that go through partly)."""
    classes = {"nbpipe.r": "pipe", "nbpipe.w": "pipe", "nbunix.a": "net", "nbunix.b": "net",
               "dontwait": "net", "nbudp": "net", "nbtcp.client": "net", "nbtcp.accepted": "net"}
    native, traced, record = exact(prog, superv, static, ["nonblock"], classes, deterministic=True)
    own = traced.fds
    assert own["nbpipe.r"]["eagain"] == 2 and own["nbpipe.w"]["eagain"] >= 1
    assert own["nbpipe.r"]["in"] == own["nbpipe.w"]["out"] > 60000
    assert own["nbunix.b"]["results"][:6] == [-errno.EAGAIN, 777, 777, 777, 3000 - 3 * 777, -errno.EAGAIN]
    assert own["nbunix.b"]["results"][-1] == -errno.EAGAIN
    assert own["dontwait"]["results"] == [-errno.EAGAIN]
    assert own["nbudp"]["results"] == [-errno.EAGAIN, 1234, 777, -errno.EAGAIN]
    assert own["nbtcp.accepted"]["results"] == [-errno.EAGAIN, 777, 1234 - 777, -errno.EAGAIN]
    # A partial send to the full socket is recorded with what it moved.
    sends = own["nbunix.a"]["results"]
    assert sends[-1] == -errno.EAGAIN and any(0 < r < 100000 for r in sends[1:])


@BUILDS
def test_writes_to_a_closed_reader_fail_with_epipe(prog, superv, static):
    """SIGPIPE ignored: write and writev to a pipe with no reader give EPIPE;
    a unix socket whose peer closed with unread data gives ECONNRESET, then
    EOF, then EPIPE for send, write and sendmsg."""
    classes = {"pipe.w": "pipe", "unix.w": "net"}
    native, traced, record = exact(prog, superv, static, ["epipe"], classes, deterministic=True)
    assert traced.fds["pipe.w"]["results"] == [1000, -errno.EPIPE, -errno.EPIPE]
    assert traced.fds["unix.w"]["results"] == [333, -errno.ECONNRESET, 0, -errno.EPIPE, -errno.EPIPE, -errno.EPIPE]


@BUILDS
def test_sigpipe_kills_as_natively(prog, superv, static):
    """With SIGPIPE at its default, send(MSG_NOSIGNAL) just fails with EPIPE,
    and a write to a pipe without reader kills the program: status 141."""
    classes = {"nosignal": "net", "doomed": "pipe"}
    status = 128 + signal.SIGPIPE
    native, traced, record = exact(prog, superv, static, ["sigpipe"], classes, deterministic=True, status=status,
                                   pending={"doomed": [-errno.EPIPE]})
    assert "survived" not in traced.info
    assert record.processes[traced.root_pid]["exit"] == "killed by SIGPIPE"


@BUILDS
def test_a_shutdown_ends_a_blocked_send_as_natively(prog, superv, static):
    """Another thread shuts the sending side while a send waits for room (1
    MiB: the fast path's; 4 MiB: Python's).  As natively, the send returns
    what went out without SIGPIPE (a socket signals only when nothing went),
    and the next send fails with EPIPE and signals.  A unix stream socket
    shows such a shutdown in no poll event: the parked send must look again."""
    labels = ("unix.1m", "tcp.1m", "unix.4m", "tcp.4m")
    classes = dict.fromkeys(labels, "net")
    native, traced, record = exact(prog, superv, static, ["shutwrite"], classes, deterministic=False,
                                   loose=dict.fromkeys(labels, ("out", "hout")), timeout=60)
    for label in labels:
        assert traced.info[f"{label}.partial_sigpipes"] == "0" and traced.info[f"{label}.sigpipes"] == "1"
        assert traced.fds[label]["epipe"] == 1


@BUILDS
def test_tcp_peer_resets_mid_stream(prog, superv, static):
    """The server reads 7777 of the 30000 bytes sent and closes: the client,
    waiting in read, gets ECONNRESET, then 0, then EPIPE on write."""
    classes = {"client": "net", "server": "net"}
    native, traced, record = exact(prog, superv, static, ["reset"], classes, deterministic=True)
    client, server = traced.fds["client"], traced.fds["server"]
    assert server["in"] == 7777 and client["out"] == 30000
    assert client["results"][-3:] == native.fds["client"]["results"][-3:]
    assert client["econnreset"] == 1


@BUILDS
def test_tcp_peer_closes_mid_stream(prog, superv, static):
    """The writer sends 5000 bytes in five writes, 3 ms apart, and closes; the
    reader waits for 2500 with MSG_WAITALL, then asks 20000 and gets a short
    2500 at the FIN, then 0."""
    classes = {"reader": "net", "writer": "net"}
    native, traced, record = exact(prog, superv, static, ["shortclose"], classes, deterministic=True)
    assert traced.fds["reader"]["results"] == [2500, 2500, 0]
    assert traced.fds["writer"]["results"] == [1000] * 5


@BUILDS
def test_writer_waiting_when_its_reader_goes(prog, superv, static):
    """A peer that goes away while the writer waits in a big write.  TCP:
    the reader (64 KiB SO_RCVBUF) reads 7777 bytes and closes with data
    unread; the writer's 4 MiB send returns what went out, the next send the
    reset (ECONNRESET), then EPIPE, and recv 0.  Pipe: the reader reads 7770
    bytes and exits; the 200000-byte write returns what went in, then EPIPE."""
    classes = {"tcp.reader": "net", "tcp.writer": "net", "pipe.reader": "pipe", "pipe.writer": "pipe"}
    partial = ("out", "hout", "rhash", "results", "kinds")  # how much went before the peer left
    native, traced, record = exact(prog, superv, static, ["midwrite"], classes, deterministic=True,
                                   loose={"tcp.writer": partial, "pipe.writer": partial})
    assert native.fds["tcp.writer"]["results"][1:] == [-errno.ECONNRESET, -errno.EPIPE, 0]
    assert traced.fds["tcp.writer"]["results"][1:] == native.fds["tcp.writer"]["results"][1:]
    assert traced.fds["pipe.writer"]["results"][1:] == native.fds["pipe.writer"]["results"][1:] == [-errno.EPIPE]
    for writer in ("tcp.writer", "pipe.writer"):
        assert 7000 < traced.fds[writer]["results"][0] == traced.fds[writer]["out"]


@BUILDS
def test_reader_waiting_when_its_peer_resets(prog, superv, static):
    """recv(MSG_WAITALL, 100000) waits; the peer sends 5000 bytes and closes
    with data unread (a reset): the call returns the 5000, the next one the
    reset (ECONNRESET), then 0."""
    classes = {"reader": "net", "peer": "net"}
    native, traced, record = exact(prog, superv, static, ["midread"], classes, deterministic=True)
    assert native.fds["reader"]["results"] == [10, 5000, -errno.ECONNRESET, 0]
    assert traced.fds["reader"]["results"] == native.fds["reader"]["results"]


@BUILDS
def test_packet_mode_pipe(prog, superv, static):
    """pipe2(O_DIRECT): each read takes one packet (at most 777 of it, the
    rest is dropped); an ordinary pipe used afterwards is unaffected."""
    classes = {"packet.w": "pipe", "packet.r": "pipe", "plain.w": "pipe", "plain.r": "pipe"}
    native, traced, record = exact(prog, superv, static, ["packetpipe"], classes, deterministic=True)
    sizes = [1 + i * 389 % 1500 for i in range(20)]
    assert traced.fds["packet.r"]["results"] == [min(s, 777) for s in sizes]
    assert traced.fds["plain.r"]["results"] == [1500]


@BUILDS
def test_peek_trunc_and_receive_timeout(prog, superv, static):
    """MSG_PEEK on a stream (the bytes come again) and on UDP: the result is
    recorded, but a peek moves no bytes, so the totals do not count it;
    MSG_TRUNC returns a datagram's full length (1234) though 100 bytes were
    copied, and the whole datagram left the socket: counted as its result;
    SO_RCVTIMEO ends a blocking receive with EAGAIN."""
    classes = {"stream.w": "net", "stream.r": "net", "udp": "net"}
    native, traced, record = exact(prog, superv, static, ["recvflags"], classes, deterministic=True)
    assert traced.fds["stream.r"]["results"] == [1000, 777, 1723, 1723, -errno.EAGAIN]
    assert traced.fds["udp"]["results"] == [1234, 99, 100, 1234, 50, -errno.EAGAIN]


@BUILDS
def test_preadv_and_pwritev_at_offsets(prog, superv, tmp_path, static):
    """pwritev from two pieces at twenty offsets, each read back with preadv
    into two; the file's own position never moves; preadv across and past
    the end (a short read, then 0), at -1 (EINVAL); pwritev on a pipe
    (ESPIPE)."""
    native_file, traced_file = tmp_path / "native.bin", tmp_path / "traced.bin"
    _, mine, _ = exact(prog, superv, static, ["vecat"], {"file": "disk", "pipe": "pipe"},
                       deterministic=True, files=(native_file, traced_file))
    assert mine.fds["file"]["results"][-3:] == [40, 0, -errno.EINVAL]
    assert mine.fds["pipe"]["results"] == [-errno.ESPIPE]
    assert traced_file.read_bytes() == native_file.read_bytes()


@BUILDS
def test_datagrams_that_name_their_addresses(prog, superv, static):
    """sendto an address and recvfrom the sender's, as UDP servers do: the
    address comes back cut to the caller's room with its whole length; bad
    address lengths fail with EINVAL, an unreadable address with EFAULT
    (recvfrom's only after taking the datagram, as natively); an unbound
    socket is bound by its first send.  sendmsg and recvmsg with
    addresses and two iovecs each; msg_flags says MSG_TRUNC; a msg_namelen
    of 200 is cut to a sockaddr_storage, and -1 is refused (EINVAL), as
    natively.  Connected to b, then to c, then disconnected, socket a's
    records say where it sent each time."""
    classes = {"a": "net", "b": "net", "c": "net", "unbound": "net"}
    native, traced, record = exact(prog, superv, static, ["udpaddr"], classes, deterministic=True)
    assert traced.fds["a"]["results"][-15:] == [10, 10, -errno.EINVAL, -errno.EINVAL, -errno.EFAULT, 11, 12,
                                                250, 250, 100, -errno.EINVAL, 30, 31, -errno.EDESTADDRREQ, 33]
    assert -errno.EFAULT in traced.fds["b"]["results"] and -errno.EINVAL in traced.fds["b"]["results"]
    a, b, c = (traced.fds[label] for label in "abc")
    b_end, c_end = (record.lifetimes[(f["pid"], f["fd"])][-1].calls[0]["detail"].split()[1] for f in (b, c))
    remotes = [e["detail"].partition(" -> ")[2] or None for e in record.lifetimes[(a["pid"], a["fd"])][-1].calls]
    assert remotes == [None] * 51 + [b_end, c_end, None, None]


@BUILDS
def test_a_send_timeout_ends_a_partial_send_as_natively(prog, superv, static):
    """SO_SNDTIMEO on a unix stream nobody reads yet: a 1 MB send fills it,
    waits 50 ms for room and returns the part that went out; the next send,
    with no room at all, fails with EAGAIN.  Then the reader takes exactly
    that part, intact."""
    classes = {"writer": "net", "reader": "net"}
    split = ("in", "out", "hin", "hout", "calls", "rhash", "results", "kinds")  # how much the socket held
    native, traced, record = exact(prog, superv, static, ["sendtimeout"], classes, deterministic=True,
                                   loose={"writer": split, "reader": split})
    for books in (native, traced):
        sent, refused = books.fds["writer"]["results"]
        assert 0 < sent < 1000000 and refused == -errno.EAGAIN
        assert books.fds["writer"]["out"] == books.fds["reader"]["in"] == sent


@BUILDS
def test_exit_status_is_the_programs(prog, superv, static):
    classes = {"w": "pipe", "r": "pipe"}
    exact(prog, superv, static, ["exitcode", "7"], classes, deterministic=True, status=7)


# -- acceptance 2: static builds are traced like dynamic ones ---------------------------------


def normalized_books(record: Record) -> list:
    """Per process, in order: its exit status and every fd lifetime that
    moved data, minus the loader's and stdout (its lines carry pids); port
    numbers left out of the details."""
    out = []
    for p in record.summary["processes"]:
        fds = [
            (f["fd"], f["class"], re.sub(r":\d+\b", ":PORT", f["detail"]), f["calls"], f["bytes_in"], f["bytes_out"])
            for f in p["fds"]
            if not LOADER.match(f["detail"]) and f["fd"] != 1
        ]
        out.append((p["exit_status"], fds))
    return out


@pytest.mark.parametrize("args", [["disk", "{path}"], ["eof"], ["nonblock"], ["epipe"], ["udp", "30"],
                                  ["unixdgram", "30"], ["reset"], ["shortclose"], ["recvflags"]],
                         ids=lambda a: a[0])
def test_static_and_dynamic_builds_record_the_same(prog, superv, tmp_path, args):
    """The same deterministic workload, built dynamic and static: superv
    records the same fds, calls and bytes (the loader's reads aside)."""
    path = tmp_path / "disk.bin"  # the same path both times: it is in the fd's detail
    args = [a.format(path=path) for a in args]
    records = []
    for static in (False, True):
        run = superv([prog("exact_io", static=static), *args])
        assert run.returncode == 0, run.stderr.decode()
        records.append(Record(run))
    dynamic, static_ = records
    assert normalized_books(static_) == normalized_books(dynamic)
    loader = [f for p in static_.summary["processes"] for f in p["fds"] if LOADER.match(f["detail"])]
    assert loader == []  # nothing is loaded at run time by a static program
    assert [f for p in dynamic.summary["processes"] for f in p["fds"] if LOADER.match(f["detail"])], \
        "the dynamic build's loader reads libc: superv should have seen it"


# -- acceptance 2: Debian's busybox-static ---------------------------------------------------------


def sample_file(path, size: int = 123457) -> bytes:
    data = hashlib.shake_256(b"superv exact").digest(size)
    path.write_bytes(data)
    return data


def only_process(run) -> dict:
    processes = run.summary["processes"]
    assert len(processes) == 1, [p["argv"] for p in processes]
    return processes[0]


def fds_by_number(process: dict) -> dict:
    """fd number -> the summary entry of its last lifetime."""
    return {f["fd"]: f for f in process["fds"]}


def assert_all_exact(run) -> None:
    assert run.summary["inexact_calls"] == 0
    calls = [e for e in run.events if e["type"] == "call" and "exact" in e]
    assert calls and all(e["exact"] for e in calls)


def fd_calls(run, pid: int, fd: int) -> list[dict]:
    """Data calls on the last lifetime of fd in pid."""
    return lifetimes(run.events)[(pid, fd)][-1].calls


@pytest.mark.parametrize("cat", ["busybox", "coreutils"])
def test_cat_of_a_file_into_a_pipe(superv, tmp_path, cat):
    """busybox cat (static; it uses sendfile) and coreutils cat (dynamic):
    the same disk bytes in and pipe bytes out, the file's size."""
    data = sample_file(tmp_path / "in.bin")
    program = [busybox(), "cat", tmp_path / "in.bin"] if cat == "busybox" else ["/bin/cat", tmp_path / "in.bin"]
    native = run_native(program)
    run = superv(program)
    assert run.returncode == native.returncode == 0
    assert run.stdout == native.stdout == data
    assert_all_exact(run)
    process = only_process(run)
    by_fd = fds_by_number(process)
    assert by_fd[1]["class"] == "pipe" and (by_fd[1]["bytes_in"], by_fd[1]["bytes_out"]) == (0, len(data))
    disk = [f for f in by_fd.values() if f["detail"] == f"file {tmp_path / 'in.bin'}"]
    assert len(disk) == 1 and (disk[0]["bytes_in"], disk[0]["bytes_out"]) == (len(data), 0)
    assert process["classes"]["pipe"]["bytes_out"] == len(data)
    kinds = process["classes"]["pipe"]["kinds"]
    assert sum(k["bytes"] for k in kinds.values()) == len(data)
    # Call by call, the results add up: no call counted twice or missed.
    assert sum(max(c["result"], 0) for c in fd_calls(run, process["pid"], 1)) == len(data)
    assert fd_calls(run, process["pid"], disk[0]["fd"])[-1]["result"] == 0  # EOF ends it


def test_busybox_wc_counts_a_pipe(superv):
    """busybox wc -c reading its stdin, a pipe."""
    data = hashlib.shake_256(b"wc").digest(98765)
    native = subprocess.run([busybox(), "wc", "-c"], input=data, capture_output=True, timeout=60)
    run = superv([busybox(), "wc", "-c"], input=data)
    assert run.returncode == native.returncode == 0
    assert run.stdout == native.stdout == b"98765\n"
    assert_all_exact(run)
    by_fd = fds_by_number(only_process(run))
    assert (by_fd[0]["class"], by_fd[0]["bytes_in"], by_fd[0]["bytes_out"]) == ("pipe", len(data), 0)
    assert (by_fd[1]["class"], by_fd[1]["bytes_in"], by_fd[1]["bytes_out"]) == ("pipe", 0, len(b"98765\n"))


def test_busybox_pipeline_in_busybox_sh(superv, tmp_path):
    """busybox sh runs busybox cat | busybox wc -c: each process's pipe bytes."""
    data = sample_file(tmp_path / "in.bin", 200003)
    bb = busybox()
    script = f"{bb} cat {tmp_path / 'in.bin'} | {bb} wc -c"
    native = run_native([bb, "sh", "-c", script])
    run = superv([bb, "sh", "-c", script])
    assert run.returncode == native.returncode == 0
    assert run.stdout == native.stdout == b"200003\n"
    assert_all_exact(run)
    cat = run.process(argv_contains="cat")
    wc = run.process(argv_contains="wc")
    cat_fds, wc_fds = fds_by_number(cat), fds_by_number(wc)
    assert (cat_fds[1]["class"], cat_fds[1]["bytes_out"]) == ("pipe", len(data))
    assert cat["classes"]["disk"]["bytes_in"] == len(data)
    assert (wc_fds[0]["class"], wc_fds[0]["bytes_in"]) == ("pipe", len(data))
    assert wc_fds[1]["bytes_out"] == len(b"200003\n")
    assert cat["exit_status"] == wc["exit_status"] == 0
    # One pipe between them: what cat wrote is what wc read.
    assert run.summary["classes"]["pipe"]["bytes_out"] == len(data) + len(b"200003\n")


def test_busybox_dd_with_odd_blocks(superv, tmp_path):
    """busybox dd bs=777: 158 full blocks and a short one, in and out."""
    data = sample_file(tmp_path / "in.bin")
    out = tmp_path / "out.bin"
    native = run_native([busybox(), "dd", f"if={tmp_path / 'in.bin'}", f"of={tmp_path / 'native.bin'}", "bs=777"])
    run = superv([busybox(), "dd", f"if={tmp_path / 'in.bin'}", f"of={out}", "bs=777"])
    assert run.returncode == native.returncode == 0
    assert out.read_bytes() == data
    records = f"{len(data) // 777}+1 records in\n{len(data) // 777}+1 records out\n".encode()
    assert run.stderr.startswith(records) and native.stderr.startswith(records)
    assert_all_exact(run)
    process = only_process(run)
    disk = {f["detail"]: f for f in process["fds"] if f["class"] == "disk" and not LOADER.match(f["detail"])}
    assert (disk[f"file {tmp_path / 'in.bin'}"]["bytes_in"], disk[f"file {out}"]["bytes_out"]) == (len(data),
                                                                                                   len(data))
    reads = [c["result"] for c in fd_calls(run, process["pid"], disk[f"file {tmp_path / 'in.bin'}"]["fd"])]
    assert reads == [777] * (len(data) // 777) + [len(data) % 777, 0]


def test_busybox_sha256sum(superv, tmp_path):
    data = sample_file(tmp_path / "in.bin", 1 << 20 | 12345)
    native = run_native([busybox(), "sha256sum", tmp_path / "in.bin"])
    run = superv([busybox(), "sha256sum", tmp_path / "in.bin"])
    assert run.returncode == native.returncode == 0
    assert run.stdout == native.stdout
    assert run.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    assert_all_exact(run)
    process = only_process(run)
    assert process["classes"]["disk"]["bytes_in"] == len(data)


def listening(port: int) -> bool:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def test_busybox_nc_over_loopback(superv, tmp_path):
    """Two busybox nc, each under its own superv: a file through TCP."""
    data = hashlib.shake_256(b"nc").digest(300001)
    port = free_port()
    received = tmp_path / "received.bin"
    with open(received, "wb") as sink:
        # The server's stdin stays open until the client is done: at its EOF
        # nc would shut the connection down.
        server, server_out = start_superv([busybox(), "nc", "-l", "-p", port], tmp_path, name="server",
                                          stdout=sink, stdin=subprocess.PIPE)
        try:
            wait_for(lambda: listening(port) or server.poll() is not None, timeout=20)
            client = superv([busybox(), "nc", "127.0.0.1", port], input=data, timeout=60)
            server_run = finish(server, server_out, timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
    for name, run in (("client", client), ("server", server_run)):
        assert run.returncode == 0, (name, run.returncode, run.stderr.decode(),
                                     [e for e in run.events if e["type"] in ("exit", "superv_error", "signal")][-5:])
    assert received.read_bytes() == data
    for run in (client, server_run):
        assert_all_exact(run)
    c, s = fds_by_number(only_process(client)), fds_by_number(only_process(server_run))
    assert (c[0]["class"], c[0]["bytes_in"]) == ("pipe", len(data))
    c_net = [f for f in c.values() if f["class"] == "net"]
    assert [(f["bytes_in"], f["bytes_out"]) for f in c_net] == [(0, len(data))]
    s_net = [f for f in s.values() if f["class"] == "net"]
    assert [(f["bytes_in"], f["bytes_out"]) for f in s_net] == [(len(data), 0)]
    assert (s[1]["class"], s[1]["bytes_out"]) == ("disk", len(data))
    assert client.summary["connections"][0]["bytes_out"] == len(data)
