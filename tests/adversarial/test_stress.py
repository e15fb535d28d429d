"""Adversarial: processes and threads that come and go under load (reused
pids, a thousand children, hundreds of threads, ten thousand fds, a kill
or an exit in the middle of a call).  superv must neither hang nor lose or
misattribute a record."""

from __future__ import annotations

import concurrent.futures
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from conftest import (IN_CALLS, OUT_CALLS, SUPERV, Run, assert_reports_complete, native, policy_option,
                      superv_command)
from superv.engine import WAKE_SIGNAL

SYS_TGKILL = 234  # x86_64


@pytest.mark.parametrize("pairs", [25, 250], ids=["50-threads", "500-threads"])
def test_threads_doing_io_at_once(prog, superv, pairs):
    """`pairs` writer and reader threads on as many pipes, started together:
    each thread's recorded bytes are what it moved, and they add up to the
    totals."""
    run = superv([prog("proc_threads"), str(pairs)])
    assert run.returncode == 0, run.stderr.decode()
    rows = re.findall(rb"^tid=(\d+) role=(\w+) pair=(\d+) in=(\d+) out=(\d+)$", run.stdout, re.M)
    assert len(rows) == 2 * pairs
    main_tid = int(re.search(rb"^main tid=(\d+)$", run.stdout, re.M)[1])
    threads = {int(t): (int(i), int(o)) for t, _, _, i, o in rows}
    assert len(threads) == 2 * pairs and main_tid not in threads
    for _tid, role, pair, i, o in rows:
        expected = 20000 + 1000 * int(pair)
        assert (int(i), int(o)) == ((expected, 0) if role == b"reader" else (0, expected))

    summary = assert_reports_complete(run)
    (process,) = summary["processes"]
    assert process["pid"] == main_tid
    recorded: dict[int, list[int]] = {}
    for e in run.events:
        if e["type"] != "call" or "exact" not in e or e["syscall"] not in IN_CALLS | OUT_CALLS:
            continue
        assert e["exact"], e
        if e["class"] not in ("pipe", "net"):
            continue  # the dynamic loader's reads of libraries
        totals = recorded.setdefault(e["tid"], [0, 0])
        if e["result"] is not None and e["result"] > 0:
            totals[0 if e["syscall"] in IN_CALLS else 1] += e["result"]
    # Each worker thread: exactly what it says it moved.
    for tid, (i, o) in threads.items():
        assert recorded.get(tid) == [i, o], tid
    # The main thread: only its report on stdout.
    assert recorded.get(main_tid) == [0, len(run.stdout)]
    assert set(recorded) == set(threads) | {main_tid}
    # And the threads add up to the process's totals.
    pipe = process["classes"]["pipe"]
    assert pipe["bytes_in"] == sum(i for i, _ in threads.values())
    assert pipe["bytes_out"] == sum(o for _, o in threads.values()) + len(run.stdout)
    assert sum(v[0] for v in recorded.values()) == pipe["bytes_in"]
    assert sum(v[1] for v in recorded.values()) == pipe["bytes_out"]


def test_a_thousand_processes_each_writing_then_reaped_as_zombies(prog, superv):
    """1000 children at once, each writing one 12-byte line into a pipe the
    parent reads; then 1000 wait4 calls with every child a zombie.  Each is
    a process of its own in the reports, with its bytes.  (Each wait used to
    read /proc for every zombie again: a million reads, minutes.)"""
    run = superv([str(prog("proc_many")), "1000"])
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.decode().split() == ["lines", "1000", "reaped", "1000", "bad", "0"]
    summary = assert_reports_complete(run)
    root, *children = summary["processes"]
    assert len(children) == 1000
    assert {c["ppid"] for c in children} == {root["pid"]}
    assert [c["classes"]["pipe"]["bytes_out"] for c in children] == [12] * 1000
    assert root["classes"]["pipe"]["bytes_in"] == 12000


def test_ten_thousand_fds_in_one_process(tmp_path):
    """5000 pipes, every end used once, then 5000 opens, started with a
    soft fd limit of 1024: superv raises its own limit (it holds a copy of
    each fd), the program keeps its own, and every call is recorded with
    its fd (learnt without listing 15,000 fds at each call)."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 10100:
        pytest.skip(f"the hard fd limit ({hard}) is below 10,100")
    out = tmp_path / "out"
    done = subprocess.run([*SUPERV, "run", "-q", "-o", str(out), "--", sys.executable, "-c", TEN_THOUSAND_FDS],
                          capture_output=True, timeout=300,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard)))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == ["soft limit 1024", "fds 10000 bytes 50000", "reopened True"]
    assert b"internal error" not in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    pipes = summary["processes"][0]["classes"]["pipe"]
    assert (pipes["bytes_in"], pipes["bytes_out"]) == (50000, 50000 + len(done.stdout))  # stdout is a pipe too
    assert pipes["kinds"]["read"]["calls"] == 5000
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    opens = [e["result"] for e in events if e.get("syscall") == "openat" and e.get("path") == "/dev/null"]
    assert len(opens) == 5001 and len(set(opens[:5000])) == 5000 and opens[5000] == opens[100]


EXEC_FROM_A_THREAD = """\
import os, threading, time
r, w = os.pipe()
os.write(w, b"before exec\\n")
print(os.read(r, 100).decode().strip(), flush=True)
def other():
    os.execv("/bin/sh", ["sh", "-c", "echo after exec from a thread; echo data | cat"])
threading.Thread(target=other).start()
time.sleep(30)
print("not reached")
"""


def test_execve_from_a_thread_that_is_not_the_leader(superv):
    """The kernel ends the other threads and the exec'ing one takes the
    process's pid: superv follows, records the exec and the new image's I/O."""
    run = superv([sys.executable, "-c", EXEC_FROM_A_THREAD])
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"before exec\nafter exec from a thread\ndata\n"
    root = run.processes()[0]
    assert root["execs"][-1] == ["sh", "-c", "echo after exec from a thread; echo data | cat"]
    assert root["exit"] == "exited 0"
    assert root["classes"]["pipe"]["bytes_in"] == len(b"before exec\n")


def test_a_target_killed_in_the_middle_of_a_waiting_read(superv):
    """SIGKILL to a child whose read superv is making (parked, waiting for
    data): the child dies as natively, and superv lets go of its copy of
    the pipe's read end, so that the writer gets EPIPE as natively."""
    program = [sys.executable, "-c", KILLED_IN_A_READ]
    assert subprocess.run(program, capture_output=True, timeout=60).stdout == b"EPIPE: no reader left\n"
    run = superv(program)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"EPIPE: no reader left\n"
    child = next(p for p in run.processes() if p["ppid"] == run.processes()[0]["pid"])
    assert child["exit"].startswith("killed by SIGKILL")


def test_threads_exit_while_another_threads_read_waits(superv):
    """Twenty threads start, write and exit while a read of another thread
    is parked in superv: the read gets its data when it comes, and every
    thread's write is recorded."""
    run = superv([sys.executable, "-c", THREADS_LEAVING])
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"quitter leaves\n" * 20 + b"late data\n"
    root = run.processes()[0]
    pipes = root["classes"]["pipe"]
    assert pipes["bytes_in"] == len(b"late data")
    assert pipes["bytes_out"] == len(b"late data") + len(run.stdout)  # stdout is a pipe too


KILLED_IN_A_READ = """\
import os, signal, time
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(r, 10)  # waits: nothing is ever written
    os._exit(0)
os.close(r)
time.sleep(0.5)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
try:
    os.write(w, b"x")
    print("write went through")
except BrokenPipeError:
    print("EPIPE: no reader left")
"""


TEN_THOUSAND_FDS = """\
import os, resource
print("soft limit", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
pipes = [os.pipe() for _ in range(5000)]
for r, w in pipes:
    os.write(w, b"0123456789")
print("fds", 2 * len(pipes), "bytes", sum(len(os.read(r, 100)) for r, w in pipes))
nulls = [os.open("/dev/null", os.O_RDONLY) for _ in range(5000)]
os.close(nulls[100])
print("reopened", os.open("/dev/null", os.O_RDONLY) == nulls[100])
"""


THREADS_LEAVING = """\
import os, threading, time
r, w = os.pipe()
got = []
reader = threading.Thread(target=lambda: got.append(os.read(r, 100)))
reader.start()
time.sleep(0.3)  # its read now waits in superv
for _ in range(20):
    quitter = threading.Thread(target=lambda: os.write(1, b"quitter leaves\\n"))
    quitter.start()
    quitter.join()
os.write(w, b"late data")
reader.join()
print(got[0].decode())
"""


PID_MAX = 400  # the lowest pid_max the kernel takes is 301; pids then cycle through 300..399


@pytest.mark.skipif(subprocess.run(["unshare", "-Urpf", "true"], capture_output=True).returncode != 0,
                    reason="needs user and pid namespaces (unshare -Urpf)")
def test_reused_pids_are_each_a_process_of_their_own(prog, tmp_path):
    """3000 short-lived children in a pid namespace whose pid_max is 400:
    about 100 pids serve them all, each some thirty times.  Every child is a
    process of its own in the reports, with its own exit status and bytes;
    none is merged with an earlier holder of its pid."""
    out = tmp_path / "out"
    inside = (f"echo {PID_MAX} > /proc/sys/kernel/pid_max && "
              f"exec {' '.join(SUPERV)} run -q -o {out} -- {prog('proc_reuse')} 3000")
    run = subprocess.run(["unshare", "-Urpf", "--mount-proc", "sh", "-c", inside], capture_output=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr.decode()
    children, total, pids, bad = map(int, re.fullmatch(rb"children (\d+) bytes (\d+) pids (\d+) bad (\d+)\n",
                                                        run.stdout).groups())
    assert (children, bad) == (3000, 0)
    assert pids < 400, "the pids must come back for the test to mean anything"
    summary = json.loads((out / "summary.json").read_text())
    root, *records = summary["processes"]
    assert len(records) == 3000 and {r["ppid"] for r in records} == {root["pid"]}
    assert len({r["pid"] for r in records}) == pids
    # Child i exits with i % 200 after writing i % 7 + 1 bytes: each record
    # carries one child's pair, and together they are all the children's.
    recorded = Counter((r["exit_status"], r["classes"]["pipe"]["bytes_out"]) for r in records)
    assert recorded == Counter((i % 200, i % 7 + 1) for i in range(3000))
    assert root["classes"]["pipe"]["bytes_in"] == total == sum(i % 7 + 1 for i in range(3000))
    assert len(set(r["log"] for r in records)) == 3000  # a log each, none overwritten


def _signal_every_thread(pid: int, signum: int, until: threading.Event) -> int:
    """tgkill(pid, tid, signum) to each of pid's threads, again and again, once
    pid has a handler for signum; how many were sent."""
    libc = ctypes.CDLL(None, use_errno=True)
    caught = 1 << (signum - 1)
    sent = 0
    while not until.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                handled = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
            if handled & caught:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    sent += libc.syscall(SYS_TGKILL, pid, int(tid), signum) == 0
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.0002)
    return sent


def test_wake_ups_at_any_moment_change_nothing_the_program_sees(prog, tmp_path):
    """The engine wakes its own threads with WAKE_SIGNAL (no SA_RESTART), and
    one can land anywhere: in the ADDFD|SEND that installs a checked open's
    file (interrupted, the kernel marked the call answered and the program's
    open returned 0), or in a tee() on the program's pipe (it gave EINTR,
    which went to the program's read).  Flooded with wake-ups, superv must
    still give the program the results it gets natively."""
    target = tmp_path / "file"
    target.write_bytes(b"")
    rounds = 2000
    program = [prog("steady_io"), target, str(rounds)]
    assert native(program).stdout == f"opens {rounds} pipe {rounds} socket {rounds}\n".encode()
    target.write_bytes(b"")
    options = policy_option(tmp_path, (
        "version: 1\nrules:\n"
        f'  - {{name: here, syscalls: ["@file"], direction: send, path: ["{tmp_path}/**"], action: allow}}\n'
        '  - {name: nowhere-else, syscalls: ["@file"], direction: send, action: deny}\n'
    ))
    out = tmp_path / "out"
    superv = subprocess.Popen(superv_command(program, out=out, options=options),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    until = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        flood = pool.submit(_signal_every_thread, superv.pid, WAKE_SIGNAL, until)
        try:
            stdout, stderr = superv.communicate(timeout=120)
        finally:
            until.set()
            if superv.poll() is None:
                os.killpg(superv.pid, signal.SIGKILL)
    assert superv.returncode == 0, stderr.decode()
    assert flood.result() > 1000, "the wake-ups must reach superv while the program runs"
    assert stdout == f"opens {rounds} pipe {rounds} socket {rounds}\n".encode()
    assert target.read_bytes() == b"x" * rounds
    assert_reports_complete(Run(superv.returncode, stdout, stderr, out))
