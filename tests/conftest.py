"""Shared test harness: build the C programs under tests/progs (and the
adversarial ones under tests/adversarial/progs), run superv for real, and
read back what it wrote (summary.json, events.jsonl, <pid>.log).

Nothing here fakes the kernel: every test runs real processes under the real
seccomp filter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs
import pytest

REPO = Path(__file__).resolve().parents[1]
PROGS_SRC = REPO / "tests" / "progs"
ADVERSARIAL_SRC = REPO / "tests" / "adversarial" / "progs"
PROGS_BUILD = REPO / "build" / "progs"
SUPERV = [sys.executable, "-m", "superv"]


# -- building test programs -----------------------------------------------------


def build_prog(name: str, static: bool = False) -> Path:
    """Compile tests/progs/<name>.c or tests/adversarial/progs/<name>.c (once;
    again when it or a header in tests/progs changes)."""
    source = next((d / f"{name}.c" for d in (PROGS_SRC, ADVERSARIAL_SRC) if (d / f"{name}.c").exists()),
                  PROGS_SRC / f"{name}.c")
    target = PROGS_BUILD / (f"{name}-static" if static else name)
    newest = max(path.stat().st_mtime for path in [source, *PROGS_SRC.glob("*.h")])
    if not target.exists() or target.stat().st_mtime < newest:
        PROGS_BUILD.mkdir(parents=True, exist_ok=True)
        command = ["cc", "-O2", "-Wall", "-pthread", f"-I{PROGS_SRC}", "-o", str(target), str(source)]
        if static:
            command.insert(1, "-static")
        subprocess.run(command, check=True)
    return target


@pytest.fixture(scope="session")
def prog():
    """prog("pingpong") -> path of the dynamic build; prog("pingpong", static=True)."""
    return build_prog


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- reading superv's reports ------------------------------------------------------


@attrs.frozen
class LogRow:
    call: str
    fd: int
    pid: int
    seq: int
    time: float
    size: int
    recv_so_far: int
    send_so_far: int


@attrs.frozen
class LogSection:
    title: str  # Network, Pipe, Disk, Terminal, Device, Other
    fds: dict  # fd -> (in, out); a reused fd number keeps its last line
    fd_lines: list  # (pid, fd, in, out) in order
    totals: tuple  # (in, out)
    kinds: dict  # kind -> (calls, bytes), in file order


@attrs.frozen
class ParsedLog:
    text: str
    rows: list
    sections: dict  # title -> LogSection


_FD_LINE = re.compile(r"^(\w+):(\d+):(\d+) \((\d+),(\d+)\)$")
_TOTALS = re.compile(r"^(\w+) totals: \((\d+), (\d+)\)$")
_KIND = re.compile(r"^ *(\w+) : (\d+) \((\d+)\)$")
LOG_HEADER = "call,fd,pid,seq,time,size,recv_so_far,send_so_far"


def parse_log(text: str) -> ParsedLog:
    """Parse a <pid>.log strictly: any line of another shape fails the test."""
    lines = text.split("\n")
    assert lines[0] == LOG_HEADER, f"bad header: {lines[0]!r}"
    assert text.endswith("\n")
    rows, i = [], 1
    while i < len(lines) and lines[i]:
        call, fd, pid, seq, stamp, size, rcv, snd = lines[i].split(",")
        assert re.fullmatch(r"\d+\.\d{6}", stamp), stamp
        rows.append(LogRow(call, int(fd), int(pid), int(seq), float(stamp), int(size), int(rcv), int(snd)))
        i += 1
    sections = {}
    blocks = "\n".join(lines[i:]).strip("\n").split("\n\n")
    for block in blocks:
        fd_lines, kinds, totals, title = [], {}, None, None
        for line in block.split("\n"):
            if m := _FD_LINE.match(line):
                fd_lines.append((int(m[2]), int(m[3]), int(m[4]), int(m[5])))
                title = m[1]
            elif m := _TOTALS.match(line):
                title, totals = m[1], (int(m[2]), int(m[3]))
            elif m := _KIND.match(line):
                assert line.index(":") == 10, f"misaligned kind row: {line!r}"
                kinds[m[1]] = (int(m[2]), int(m[3]))
            else:
                raise AssertionError(f"unexpected log line: {line!r}")
        assert totals is not None, block
        assert title not in sections, f"section {title} twice"
        fds = {fd: (i_, o) for _, fd, i_, o in fd_lines}
        sections[title] = LogSection(title, fds, fd_lines, totals, kinds)
    return ParsedLog(text, rows, sections)


@attrs.define
class Run:
    returncode: int
    stdout: bytes
    stderr: bytes
    out: Path

    @property
    def summary(self) -> dict:
        return json.loads((self.out / "summary.json").read_text())

    @property
    def events(self) -> list[dict]:
        return [json.loads(line) for line in (self.out / "events.jsonl").read_text().splitlines()]

    def log(self, pid: int) -> ParsedLog:
        return parse_log((self.out / f"{pid}.log").read_text())

    def processes(self) -> list[dict]:
        return self.summary["processes"]

    def process(self, *, argv0_endswith: str | None = None, argv_contains: str | None = None) -> dict:
        """The one process matching; fails when none or several match."""
        found = [
            p for p in self.processes()
            if (argv0_endswith is None or (p["argv"] and p["argv"][0].endswith(argv0_endswith)))
            and (argv_contains is None or argv_contains in p["argv"])
        ]
        assert len(found) == 1, f"{len(found)} processes match: {[p['argv'] for p in self.processes()]}"
        return found[0]


def superv_command(program: list, *, out: Path, options: tuple = ()) -> list[str]:
    return [*SUPERV, "run", "-q", "-o", str(out), *options, "--", *map(str, program)]


def run_superv(program: list, tmp_path: Path, *, options: tuple = (), timeout: float = 120,
               input: bytes | None = None, env: dict | None = None, name: str = "out") -> Run:
    """Run `superv run -q -o DIR [options] -- program` to completion."""
    out = tmp_path / name
    # A session of its own, so that a run that times out is killed whole
    # (superv and every process it traces), not left behind.
    proc = subprocess.Popen(superv_command(program, out=out, options=options), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return Run(proc.returncode, stdout, stderr, out)


def start_superv(program: list, tmp_path: Path, *, options: tuple = (), name: str = "out", **popen) -> tuple:
    """Start superv in the background: (Popen, out folder)."""
    out = tmp_path / name
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    proc = subprocess.Popen(superv_command(program, out=out, options=options), **popen)
    return proc, out


def finish(proc: subprocess.Popen, out: Path, timeout: float = 120) -> Run:
    stdout, stderr = proc.communicate(timeout=timeout)
    return Run(proc.returncode, stdout, stderr, out)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


@pytest.fixture
def superv(tmp_path):
    """superv(program, options=(), ...) -> Run, with a fresh output folder per call."""
    counter = iter(range(1000))

    def _run(program, **kwargs):
        kwargs.setdefault("name", f"out{next(counter)}")
        return run_superv(program, tmp_path, **kwargs)

    return _run


def busybox() -> Path:
    """Debian's busybox-static, unpacked under build/ (apt-get download; no root needed)."""
    target = REPO / "build" / "busybox-static" / "bin" / "busybox"
    if target.exists():
        return target
    found = shutil.which("busybox")
    work = REPO / "build" / "busybox-deb"
    work.mkdir(parents=True, exist_ok=True)
    download = ["apt-get", "download", "busybox-static"]
    if subprocess.run(download, cwd=work, capture_output=True).returncode != 0 and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)  # no package lists yet
    subprocess.run(download, cwd=work, check=True, capture_output=True)
    deb = next(work.glob("busybox-static_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(REPO / "build" / "busybox-static")], check=True)
    assert target.exists(), f"no busybox in {deb} (a system one: {found})"
    return target


# -- shared by several test files ----------------------------------------------------


IN_CALLS = {"read", "readv", "pread64", "preadv", "preadv2", "recvfrom", "recvmsg", "recvmmsg"}


OUT_CALLS = {"write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg", "sendmmsg"}


def assert_reports_complete(run: Run) -> dict:
    """summary.json parses, every events.jsonl line is JSON, every process has
    its log, and each log's sections agree with summary.json."""
    summary = json.loads((run.out / "summary.json").read_text())
    lines = (run.out / "events.jsonl").read_text().splitlines()
    assert lines
    for line in lines:
        json.loads(line)
    assert summary["processes"]
    for p in summary["processes"]:
        log = parse_log((run.out / f"{p['pid']}.log").read_text())
        titles = {"net": "Network", "pipe": "Pipe", "disk": "Disk"}
        for cls, title in titles.items():
            totals = p["classes"].get(cls, {"bytes_in": 0, "bytes_out": 0})
            assert log.sections[title].totals == (totals["bytes_in"], totals["bytes_out"]), (p["pid"], title)
    return summary


def native(program: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(p) for p in program], capture_output=True, timeout=60, **kwargs)


def policy_option(tmp_path, text: str) -> tuple[str, str]:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return ("--policy", str(path))


def policy_events(run) -> list[dict]:
    return [e for e in run.events if "policy" in e]


LOCAL_ONLY = """\
version: 1
rules:
  - {name: local-only, syscalls: [connect], family: [tcp, udp], addr: [127.0.0.1/32], action: allow}
  - {name: elsewhere, syscalls: [connect], family: [tcp, tcp6, udp, udp6], action: deny, errno: ECONNREFUSED}
"""


class Listeners:
    """TCP listeners on 127.0.0.1 and 127.0.0.2 (one port), counting accepts."""

    def __init__(self):
        self.port = free_port()
        self.accepted = {"127.0.0.1": 0, "127.0.0.2": 0}
        self.sockets = []
        for host in self.accepted:
            srv = socket.socket()
            srv.bind((host, self.port))
            srv.listen(4096)
            self.sockets.append(srv)
            threading.Thread(target=self._serve, args=(srv, host), daemon=True).start()

    def _serve(self, srv, host):
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            self.accepted[host] += 1
            try:
                if conn.recv(16):
                    conn.sendall(b"pong")
            except OSError:
                pass
            conn.close()

    def close(self):
        for srv in self.sockets:
            srv.shutdown(socket.SHUT_RDWR)
            srv.close()


@pytest.fixture
def listeners():
    ls = Listeners()
    yield ls
    ls.close()


EXEC_ONLY_TRUE = """\
version: 1
rules:
  - {name: only-true, syscalls: ["@exec"], path: [/bin/true, /usr/bin/true], action: allow}
  - {name: no-other-exec, syscalls: ["@exec"], action: deny, errno: EACCES}
"""


def lines(output: bytes) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.decode().splitlines())


def policy_of(run: Run) -> dict:
    return run.summary["policy"]


POLICIES = REPO / "policies"  # the bundled policies
