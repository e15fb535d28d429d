"""Acceptance 4: signals reach a target blocked in an emulated call as they
would natively.

Each program prints what every call returned (a count or an errno name) and
when its handlers ran; the same program is run natively and under superv, at
the same time, and the two outputs must be identical: EINTR or a transparent
restart, the data complete afterwards, no byte lost, and never errno 512-516
(the kernel's restart codes) seen by the program.  Then Ctrl-C: SIGINT sent
to superv, or typed on a terminal, while the target waits in a read.

Runs happen in the background with stdout/stderr in files; a watchdog fails a
test early, naming the stuck task, when a run hangs or when a target thread
sits in a ptrace stop (state 't'), which nothing but superv could have caused.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import re
import select
import signal
import subprocess
import termios
import time
from pathlib import Path

import pytest

from conftest import Run, parse_log, superv_command, wait_for

HANG = 30.0  # seconds; a normal run here takes 1-2 s
TRACE_STOPPED = 2.0  # a target task in ptrace stop this long was left there (superv waits 0.2 s)
SYS_READ, SYS_RECVFROM = 0, 45  # x86_64: glibc's recv() is recvfrom
MESSAGE, REST = 1000, 300000  # what sig_block's writer sends


# -- running in the background, natively or under superv ---------------------------------


def _stat_fields(path: str) -> list[str]:
    with open(path) as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on


def _status_field(path: str, key: str) -> str:
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    return "?"


def session_tasks(sid: int) -> list[dict]:
    """Every task of every process in session sid (ours are in their own)."""
    tasks = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = _stat_fields(f"/proc/{name}/stat")
            if int(fields[3]) != sid:
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")[:-1]
            for tid in os.listdir(f"/proc/{name}/task"):
                base = f"/proc/{name}/task/{tid}"
                state = _stat_fields(f"{base}/stat")[0]
                try:
                    with open(f"{base}/syscall") as f:
                        nr = f.read().split(" ")[0].strip()
                except OSError:
                    nr = "?"
                tasks.append({
                    "pid": int(name), "tid": int(tid), "state": state, "syscall": nr,
                    "tracer": _status_field(f"{base}/status", "TracerPid"),
                    "argv": [a.decode(errors="replace") for a in argv],
                })
        except (OSError, ValueError, IndexError):
            continue
    return tasks


def describe_tasks(tasks: list[dict]) -> str:
    return "\n".join(
        f"  pid {t['pid']} tid {t['tid']} state {t['state']} syscall {t['syscall']} "
        f"TracerPid {t['tracer']} {' '.join(t['argv'])[:80]}"
        for t in tasks
    )


class Background:
    """One run in its own session: `program` natively, or `superv run -- program`."""

    def __init__(self, tmp_path: Path, name: str, program: list, under_superv: bool, options=(),
                 allow_trace_stop: bool = False, **popen):
        self.name = name
        self.allow_trace_stop = allow_trace_stop
        self.under_superv = under_superv
        self.out = tmp_path / name
        self.stdout_path = tmp_path / f"{name}.stdout"
        self.stderr_path = tmp_path / f"{name}.stderr"
        argv = superv_command(program, out=self.out, options=options) if under_superv else [str(p) for p in program]
        popen.setdefault("stdin", subprocess.DEVNULL)
        with open(self.stdout_path, "wb") as so, open(self.stderr_path, "wb") as se:
            popen.setdefault("stdout", so)
            popen.setdefault("stderr", se)
            self.proc = subprocess.Popen(argv, start_new_session=True, **popen)
        self.started = time.monotonic()
        self._trace_stopped_since: float | None = None

    def stdout(self) -> bytes:
        return self.stdout_path.read_bytes()

    def stderr(self) -> bytes:
        return self.stderr_path.read_bytes()

    def target_pid(self, pattern: bytes = rb"^pid (\d+)$", source: str = "stderr") -> int:
        """The target's pid, as the program printed it."""

        def found():
            text = self.stderr() if source == "stderr" else self.stdout()
            m = re.search(pattern, text, re.M)
            if m:
                return int(m[1])
            self.check()
            return None

        return wait_for(found, timeout=HANG)

    def check(self) -> None:
        """Fail now if the run is hung: past HANG, or a task left in ptrace stop."""
        if self.proc.poll() is not None:
            return
        tasks = session_tasks(self.proc.pid)
        now = time.monotonic()
        stopped = [t for t in tasks if t["state"] == "t"]
        if stopped:
            self._trace_stopped_since = self._trace_stopped_since or now
        else:
            self._trace_stopped_since = None
        why = None
        if (not self.allow_trace_stop and self._trace_stopped_since is not None
                and now - self._trace_stopped_since > TRACE_STOPPED):
            why = f"a target thread stayed in ptrace stop (state t) for {TRACE_STOPPED} s"
        elif now - self.started > HANG:
            why = f"still running after {HANG} s"
        if why:
            self.kill()
            pytest.fail(f"{self.name}: {why}; tasks were:\n{describe_tasks(tasks)}\n"
                        f"stdout so far: {self.stdout()!r}", pytrace=False)

    def finish(self) -> Run:
        while self.proc.poll() is None:
            self.check()
            try:
                self.proc.wait(0.05)
            except subprocess.TimeoutExpired:
                pass
        return Run(self.proc.returncode, self.stdout(), self.stderr(), self.out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


@pytest.fixture
def background(tmp_path):
    """background(name, program, under_superv, ...) -> Background; all killed at the end."""
    started: list[Background] = []

    def _start(name, program, under_superv, **kwargs):
        b = Background(tmp_path, name, program, under_superv, **kwargs)
        started.append(b)
        return b

    yield _start
    for b in started:
        b.kill()


def pid_state(pid: int) -> str:
    return _stat_fields(f"/proc/{pid}/stat")[0]


def wait_blocked(pid: int, run: Background, syscalls=(SYS_READ, SYS_RECVFROM)) -> None:
    """Until the task sleeps in one of syscalls (natively, or waiting for superv)."""

    def blocked():
        run.check()
        try:
            with open(f"/proc/{pid}/syscall") as f:
                nr = f.read().split(" ")[0]
            return nr.isdigit() and int(nr) in syscalls and pid_state(pid) in "SD"
        except OSError:
            return False

    wait_for(blocked, timeout=HANG)


def send(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def assert_reports_complete(run: Run) -> dict:
    """summary.json parses, every events.jsonl line is JSON, every process has its log."""
    summary = json.loads((run.out / "summary.json").read_text())
    lines = (run.out / "events.jsonl").read_text().splitlines()
    assert lines, "events.jsonl is empty"
    for line in lines:
        json.loads(line)
    assert summary["processes"]
    for p in summary["processes"]:
        parse_log((run.out / f"{p['pid']}.log").read_text())
    return summary


def data_calls(run: Run) -> list[dict]:
    return [e for e in run.events if e["type"] == "call" and "exact" in e]


# -- a single-threaded reader, one signal --------------------------------------------------


def expected_block_output(transport: str, source: str, handler: str) -> str:
    signame = {"alarm": "SIGALRM", "stop": "SIGCONT"}.get(source, "SIGUSR1")
    lines = [f"start {transport} {source} {handler}"]
    if handler != "none":
        lines.append(f"handler {signame}")
    if handler == "norestart":
        lines += ["read1 = -1 EINTR", f"read2 = {MESSAGE}"]
    else:
        lines.append(f"read1 = {MESSAGE}")
    lines += ["message ok", f"rest {REST} bytes intact", "writer exited 0"]
    return "\n".join(lines) + "\n"


def drive(run: Background, source: str, handler: str) -> None:
    """The test's part for the signals sent from outside the program."""
    if source not in ("outside", "stop"):
        return
    pid = run.target_pid()
    wait_blocked(pid, run)
    if source == "outside":
        send(pid, signal.SIGUSR1)
        return
    send(pid, signal.SIGSTOP)

    def stopped():
        run.check()
        return pid_state(pid) in "Tt"

    wait_for(stopped, timeout=HANG)
    if handler == "none":
        # The writer sends while the reader is stopped: keep it stopped until then.
        wait_for(lambda: b"writer saw the stop" in run.stderr() or run.check(), timeout=HANG)
    send(pid, signal.SIGCONT)


def run_block_both(prog, background, transport, source, handler) -> tuple[Run, Run]:
    program = [prog("sig_block"), transport, source, handler]
    native = background("native", program, under_superv=False)
    supervised = background("superv", program, under_superv=True)
    for run in (native, supervised):
        drive(run, source, handler)
    return native.finish(), supervised.finish()


def check_block_reports(run: Run, transport: str) -> None:
    """The 301000 bytes went through the writer's fd and arrived at the reader's."""
    summary = assert_reports_complete(run)
    assert summary["exit_status"] == 0
    fd_class = "pipe" if transport == "pipe" else "net"
    root = next(p for p in summary["processes"] if p["ppid"] not in {q["pid"] for q in summary["processes"]})
    writer = next(p for p in summary["processes"] if p["ppid"] == root["pid"])
    reader_fds = [f for f in root["fds"] if f["class"] == fd_class and f["bytes_in"]]
    writer_fds = [f for f in writer["fds"] if f["class"] == fd_class and f["bytes_out"] > 2]
    assert [f["bytes_in"] for f in reader_fds] == [MESSAGE + REST], root["fds"]
    assert [f["bytes_out"] for f in writer_fds] == [MESSAGE + REST], writer["fds"]
    # Every byte-moving call on the channel was exact, and none gave the program
    # a byte count other than what the ledger holds.
    channel = [e for e in data_calls(run) if e["pid"] == root["pid"] and e["fd"] == reader_fds[0]["fd"]
               and e["class"] == fd_class]
    assert all(e["exact"] for e in channel)
    assert sum(e["result"] for e in channel if e["result"] is not None and e["result"] > 0) == MESSAGE + REST
    # A call the signal interrupted is recorded as such, never with a
    # kernel-internal restart code.
    assert all(e.get("interrupted") for e in channel if e["result"] is None)
    assert not [e for e in data_calls(run) if e["result"] is not None and -516 <= e["result"] <= -512]


TRANSPORTS = ["pipe", "unix", "tcp"]


@pytest.mark.parametrize("handler", ["restart", "norestart"])
@pytest.mark.parametrize("source", ["alarm", "child", "outside", "thread"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_blocked_reader_gets_a_signal_as_natively(prog, background, transport, source, handler):
    """read() on a pipe / recv() on a unix or tcp socket, blocked with no data;
    SIGALRM from alarm(), or SIGUSR1 from another process, from the test, or
    kill()ed to the (two-threaded) process by its other thread."""
    native, supervised = run_block_both(prog, background, transport, source, handler)
    assert native.returncode == 0, native.stderr
    assert native.stdout.decode() == expected_block_output(transport, source, handler)
    assert supervised.returncode == 0, supervised.stderr.decode()
    assert supervised.stdout.decode() == native.stdout.decode()
    check_block_reports(supervised, transport)


@pytest.mark.parametrize("handler", ["none", "restart", "norestart"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stop_and_continue_a_blocked_reader(prog, background, transport, handler):
    """SIGSTOP then SIGCONT from outside.  Without a SIGCONT handler the read
    goes on invisibly (the writer sends while the reader is stopped); with one,
    the handler runs and the read restarts (SA_RESTART) or fails with EINTR."""
    native, supervised = run_block_both(prog, background, transport, "stop", handler)
    assert native.returncode == 0, native.stderr
    assert native.stdout.decode() == expected_block_output(transport, "stop", handler)
    assert supervised.returncode == 0, supervised.stderr.decode()
    assert supervised.stdout.decode() == native.stdout.decode()
    check_block_reports(supervised, transport)


@pytest.mark.parametrize("handler", ["restart", "norestart"])
@pytest.mark.parametrize("case", ["full", "partial"])
@pytest.mark.parametrize("transport", ["pipe", "unix"])
def test_blocked_writer_gets_a_signal_as_natively(prog, background, transport, case, handler):
    """write() on a pipe / send() on a unix socket, blocked because the
    channel is full; SIGUSR1 from the reading process.  Having written nothing
    the call restarts or fails with EINTR; having written part, it returns that
    count either way.  Then everything arrives, in order."""
    program = [prog("sig_write"), transport, case, handler]
    native = background("native", program, under_superv=False).finish()
    supervised = background("superv", program, under_superv=True).finish()
    assert native.returncode == 0, native.stderr
    lines = native.stdout.decode()
    assert "handler SIGUSR1\n" in lines
    if case == "full":
        assert ("write1 = -1 EINTR\nwrite2 = 1000\n" if handler == "norestart" else "write1 = 1000\n") in lines
    else:
        written = int(re.search(r"^write1 = (\d+)$", lines, re.M)[1])
        assert 0 < written < 1000000
    total = int(re.search(r"^wrote (\d+) in all$", lines, re.M)[1])
    assert f"reader got {total} bytes intact\n" in lines
    assert supervised.returncode == 0, supervised.stderr.decode()
    assert supervised.stdout.decode() == lines

    summary = assert_reports_complete(supervised)
    fd_class = "pipe" if transport == "pipe" else "net"
    root = next(p for p in summary["processes"] if p["ppid"] not in {q["pid"] for q in summary["processes"]})
    reader = next(p for p in summary["processes"] if p["ppid"] == root["pid"])
    assert [f["bytes_out"] for f in root["fds"] if f["class"] == fd_class and f["bytes_out"] > 2] == [total]
    assert [f["bytes_in"] for f in reader["fds"] if f["class"] == fd_class and f["bytes_in"] > 2] == [total]


# -- many threads, process-directed signals -------------------------------------------------

READERS, SPINNERS, PIECES = 6, 2, 150


def channel_bytes(index: int) -> int:
    return sum(1 + (k * 977 + index * 131) % 3000 for k in range(PIECES))


def signal_storm(run: Background) -> None:
    """SIGUSR1 to the target every millisecond until it ends (through a pidfd:
    never to a recycled pid)."""
    pid = run.target_pid()
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            run.check()
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGUSR1)
            except ProcessLookupError:
                return
            if select.select([pidfd], [], [], 0.001)[0]:
                return
    finally:
        os.close(pidfd)


@pytest.mark.parametrize("source", ["self", "child", "outside"])
@pytest.mark.parametrize("handler", ["restart", "norestart"])
def test_process_directed_signals_with_many_threads(prog, background, handler, source):
    """Six threads read (pipes: read(), unix sockets: recv()) and six write in
    small pieces, two spin; SIGUSR1 to the whole process every millisecond.
    No call ever returns errno 512-516, with SA_RESTART none fails at all, and
    every byte arrives in order."""
    program = [prog("sig_threads"), handler, source, READERS, SPINNERS]
    runs = []
    for name, under_superv in (("native", False), ("superv", True)):
        run = background(name, program, under_superv=under_superv)
        if source == "outside":
            signal_storm(run)
        runs.append(run)
    native, supervised = runs
    native_run, superv_run = native.finish(), supervised.finish()

    expected = "".join(
        f"channel {i} ({'recv' if i % 2 else 'read'}): wrote {channel_bytes(i)} read {channel_bytes(i)} "
        f"of {channel_bytes(i)} intact\n"
        for i in range(READERS)
    ) + "all ok\n"
    assert native_run.returncode == 0, native_run.stdout.decode()
    assert native_run.stdout.decode() == expected
    assert superv_run.stdout.decode() == native_run.stdout.decode()
    assert superv_run.returncode == 0, superv_run.stderr.decode()
    handled = re.search(rb"signals handled (\d+)", superv_run.stderr)
    assert handled and int(handled[1]) > 0, superv_run.stderr

    summary = assert_reports_complete(superv_run)
    root = next(p for p in summary["processes"] if p["pid"] == supervised.target_pid())
    pipes = sum(channel_bytes(i) for i in range(0, READERS, 2))
    sockets = sum(channel_bytes(i) for i in range(1, READERS, 2))
    assert (root["classes"]["pipe"]["bytes_in"], root["classes"]["pipe"]["bytes_out"]) == (pipes, pipes)
    assert (root["classes"]["net"]["bytes_in"], root["classes"]["net"]["bytes_out"]) == (sockets, sockets)


UNRECEIVED_ROUNDS = 3000


def test_calls_that_cannot_be_interrupted_rarely_are_while_the_supervisor_is_busy(prog, tmp_path):
    """pipe2() and a read of /dev/zero never fail with EINTR natively.  Under
    a seccomp supervisor a call stays interruptible until its notification is
    received, so a SIGUSR1 storm (1 kHz, no SA_RESTART) while the receiver is
    busy with another thread's socket()+close() in Python would fail them.
    The catcher receives while the receiver is away; the residual, calls
    that wait for a thread to be scheduled, was 0.1-0.3% of calls on 2 CPUs
    (3% without the catcher's stay in RECV, 14% with one receiver alone).
    The bound here is 2%."""
    program = [prog("sig_unreceived"), str(UNRECEIVED_ROUNDS)]
    calls = 2 * UNRECEIVED_ROUNDS + 2  # and the set-up's open() and pthread_create(), tried again on EINTR
    pattern = re.compile(rb"^eintr (\d+) of (\d+) calls, signals (\d+)$")
    native = subprocess.run(program, capture_output=True, timeout=HANG)
    assert native.returncode == 0
    eintr, counted, _ = map(int, pattern.match(native.stdout.strip()).groups())
    assert (eintr, counted) == (0, calls)

    out = tmp_path / "out"
    supervised = subprocess.run(superv_command(program, out=out), capture_output=True, timeout=HANG)
    assert supervised.returncode == 0, supervised.stderr.decode()
    eintr, counted, signals = map(int, pattern.match(supervised.stdout.strip()).groups())
    assert calls <= counted <= calls + eintr
    assert signals > 100, "the storm must overlap the calls for the test to mean anything"
    assert eintr <= calls // 50, supervised.stdout.decode()


# -- Ctrl-C ---------------------------------------------------------------------------------


def start_waiting(prog, background, mode: str) -> tuple[Background, int]:
    run = background("superv", [prog("sig_wait"), mode], under_superv=True)
    pid = run.target_pid(rb"^ready (\d+)$", source="stdout")
    wait_blocked(pid, run, (SYS_READ,))
    return run, pid


def test_sigint_to_superv_ends_the_blocked_target(prog, background):
    """kill -INT superv: the target dies of SIGINT, as it would; superv exits
    130; its child sees EOF and exits 0; the reports are complete."""
    run, pid = start_waiting(prog, background, "default")
    send(run.proc.pid, signal.SIGINT)
    result = run.finish()
    assert result.returncode == 130, result.stderr.decode()
    summary = assert_reports_complete(result)
    assert summary["exit_status"] == 130
    assert summary["signals_forwarded"] == 1
    root = next(p for p in summary["processes"] if p["pid"] == pid)
    assert root["exit_status"] == 130 and "SIGINT" in root["exit"]
    child = next(p for p in summary["processes"] if p["ppid"] == pid)
    assert child["exit_status"] == 0
    assert b"child: parent gone (read = 0)" in result.stdout
    assert [e["signal"] for e in result.events if e["type"] == "signal"] == ["SIGINT"]
    assert {e["pid"] for e in result.events if e["type"] == "exit"} == {pid, child["pid"]}


def test_sigint_to_superv_runs_the_targets_handler(prog, background):
    """A target that handles SIGINT: its read fails with EINTR, it handles the
    signal once, exits 3, and superv exits 3."""
    run, pid = start_waiting(prog, background, "handle")
    send(run.proc.pid, signal.SIGINT)
    result = run.finish()
    assert result.returncode == 3, result.stderr.decode()
    assert b"read = -1 EINTR after 1 SIGINT\n" in result.stdout
    summary = assert_reports_complete(result)
    assert summary["exit_status"] == 3
    assert next(p for p in summary["processes"] if p["pid"] == pid)["exit_status"] == 3


def test_a_second_signal_kills_every_traced_process(prog, background):
    """A target that ignores SIGINT: the first SIGINT is forwarded and changes
    nothing; a second signal (SIGTERM) SIGKILLs every traced process."""
    run, pid = start_waiting(prog, background, "ignore")
    send(run.proc.pid, signal.SIGINT)
    # The forwarding is on record (events are flushed at each heartbeat) before the second signal.
    wait_for(lambda: b'"type":"signal"' in (run.out / "events.jsonl").read_bytes() or run.proc.poll() is not None,
             timeout=HANG)
    assert run.proc.poll() is None, "superv ended on the first SIGINT although the target ignores it"
    send(run.proc.pid, signal.SIGTERM)
    result = run.finish()
    assert result.returncode == 137, result.stderr.decode()
    summary = assert_reports_complete(result)
    assert summary["exit_status"] == 137
    # Both signals reached superv; the first was passed on, the second killed everything.
    assert (summary["signals_received"], summary["signals_forwarded"]) == (2, 1)
    assert sorted(p["exit_status"] for p in summary["processes"]) == [137, 137]


def ends_within(proc: subprocess.Popen, seconds: float) -> bool:
    try:
        proc.wait(seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def test_sigint_ends_a_run_after_a_thread_got_a_process_signal(prog, background):
    """A second thread sleeps in read() and takes a SIGUSR1 sent to the process
    (its handler runs; SA_RESTART: the read goes on).  Then SIGINT to superv:
    the target dies of it and superv exits 130 with complete reports.  (Should
    it not end, a second and third SIGINT are sent, to see what they do.)"""
    program = [prog("sig_wait"), "thread"]
    native = background("native", program, under_superv=False)
    run = background("superv", program, under_superv=True, allow_trace_stop=True)
    pid = run.target_pid(rb"^ready (\d+)$", source="stdout")
    for r, target in ((native, native.proc.pid), (run, pid)):
        tid = int(wait_for(lambda r=r: re.search(rb"^reader (\d+)$", r.stdout(), re.M), timeout=HANG)[1])
        wait_blocked(tid, r, (SYS_READ,))
        send(target, signal.SIGUSR1)
    wait_for(lambda: b"handler SIGUSR1" in native.stdout(), timeout=HANG)
    deadline, stopped_since = time.monotonic() + 3, None
    while b"handler SIGUSR1" not in run.stdout() and time.monotonic() < deadline:
        if any(t["state"] == "t" for t in session_tasks(run.proc.pid)):
            stopped_since = stopped_since or time.monotonic()
            if time.monotonic() - stopped_since > 0.5:
                break  # left in ptrace stop: see whether Ctrl-C still ends the run
        time.sleep(0.02)
    handled = b"handler SIGUSR1" in run.stdout()
    send(native.proc.pid, signal.SIGINT)
    send(run.proc.pid, signal.SIGINT)
    assert native.finish().returncode == -signal.SIGINT
    ended = None  # which SIGINT ended superv
    for n in (1, 2, 3):
        if n > 1:
            send(run.proc.pid, signal.SIGINT)  # the second kills every traced process, the third ends the run
        if ends_within(run.proc, 3):
            ended = n
            break
    if ended is None:
        tasks = describe_tasks(session_tasks(run.proc.pid))
        run.kill()
        pytest.fail(f"superv did not end after three SIGINTs (the SIGUSR1 handler ran: {handled}); "
                    f"tasks:\n{tasks}", pytrace=False)
    result = run.finish()
    summary = assert_reports_complete(result)  # in every case
    assert handled and ended == 1, (
        f"the SIGUSR1 handler ran under superv: {handled}; superv ended on SIGINT number {ended}, "
        f"exit status {result.returncode}; the target: {summary['processes'][0]['exit']}")
    assert result.returncode == 130, result.stderr.decode()
    assert summary["exit_status"] == 130


def run_on_a_terminal(argv: list, timeout: float = HANG) -> tuple[int, str]:
    """Run argv as the foreground job of a new pty; type ^C once the program
    has printed "ready PID" and PID sleeps in read(); (status, output)."""
    master, slave = pty.openpty()

    def controlling_tty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([str(a) for a in argv], stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=controlling_tty)
    os.close(slave)
    output = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    break  # every holder of the slave is gone
                if not chunk:
                    break
                output += chunk
            m = re.search(rb"ready (\d+)", output)
            if m and not sent:
                pid = int(m[1])
                try:
                    with open(f"/proc/{pid}/syscall") as f:
                        blocked = f.read().split(" ")[0] == str(SYS_READ) and pid_state(pid) in "SD"
                except OSError:
                    blocked = False
                if blocked:
                    os.write(master, b"\x03")
                    sent = True
        else:
            pytest.fail(f"{argv}: hung on the terminal; output {output!r}\n"
                        f"{describe_tasks(session_tasks(proc.pid))}", pytrace=False)
        status = proc.wait(timeout=timeout)
        status = 128 - status if status < 0 else status  # as a shell reports it
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    assert sent, f"never saw the program waiting: {output!r}"
    return status, output.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.parametrize("mode, status", [("default", 130), ("handle", 3)])
def test_ctrl_c_on_a_terminal(prog, tmp_path, mode, status):
    """^C typed on superv's terminal reaches superv and the target together:
    superv must not forward a second SIGINT; the result is the native one."""
    program = [str(prog("sig_wait")), mode]
    native_status, native_output = run_on_a_terminal(program)
    out = tmp_path / "out"
    superv_status, superv_output = run_on_a_terminal(superv_command(program, out=out))
    assert native_status == status
    assert superv_status == native_status
    # The child's line is left out: natively the program leads the session, so
    # its exit hangs up the terminal and SIGHUP kills the child; under superv,
    # superv leads it and waits for the child.
    def strip(text):
        return re.sub(r"ready \d+", "ready PID", re.sub(r"child: .*\n", "", text))

    assert strip(superv_output) == strip(native_output)
    if mode == "handle":
        assert "read = -1 EINTR after 1 SIGINT" in native_output
    summary = assert_reports_complete(Run(superv_status, b"", b"", out))
    assert summary["exit_status"] == status


def test_ctrl_c_on_a_terminal_is_not_recorded_as_forwarded(prog, tmp_path):
    """superv leaves a terminal's SIGINT alone (the target got it too): its
    reports must not say it forwarded one."""
    out = tmp_path / "out"
    status, _ = run_on_a_terminal(superv_command([prog("sig_wait"), "default"], out=out))
    assert status == 130
    run = Run(status, b"", b"", out)
    summary = assert_reports_complete(run)
    assert summary["signals_forwarded"] == 0, [e for e in run.events if e["type"] == "signal"]


STORM_MIB = 256


@pytest.mark.parametrize("handler", ["restart", "norestart"])
def test_a_signal_storm_over_a_256_mib_stream(prog, background, handler):
    """256 MiB through a pipe and 256 MiB through a unix socket, 64 KiB
    blocking reads and writes in four threads, under SIGUSR1 every
    millisecond: the same checksums as natively, no errno but EINTR (never
    512-516), and the bytes recorded are the bytes moved."""
    program = [prog("storm_stream"), handler, str(STORM_MIB)]
    finished = {}
    for name, under_superv in (("native", False), ("superv", True)):
        run = background(name, program, under_superv=under_superv)
        signal_storm(run)
        finished[name] = run.finish()
    native_run, superv_run = finished["native"], finished["superv"]
    size = STORM_MIB << 20
    assert native_run.returncode == 0, native_run.stderr.decode()
    assert native_run.stdout.decode().splitlines()[2] == "odd errnos 0"
    assert superv_run.returncode == 0, superv_run.stderr.decode()
    assert superv_run.stdout == native_run.stdout
    handled = re.search(rb"signals handled (\d+)", superv_run.stderr)
    assert handled and int(handled[1]) > 100, superv_run.stderr
    summary = assert_reports_complete(superv_run)
    (process,) = summary["processes"]
    assert (process["classes"]["pipe"]["bytes_in"], process["classes"]["pipe"]["bytes_out"]) == (size, size)
    assert (process["classes"]["net"]["bytes_in"], process["classes"]["net"]["bytes_out"]) == (size, size)
