"""Adversarial: the program attacks superv itself (signals, ptrace, its
/proc files), or superv is killed under it."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from conftest import POLICIES, SUPERV, lines, native, policy_events, policy_of, wait_for


SIGNAL_PROBES = ["kill parent", "kill group", "kill everyone", "kill -pgid", "tgkill", "tkill", "rt_sigqueueinfo",
                 "pidfd_open", "F_SETOWN", "F_SETOWN_EX", "F_SETOWN_EX pgrp", "pidfd_send_signal /proc"]


def test_hardened_refuses_every_signal_aimed_at_superv(prog, superv):
    """Signal 0 probes every way to reach the parent (superv, under superv);
    then a real SIGKILL.  Natively the parent (pytest) is reachable; under
    hardened.yaml nothing reaches superv, which lives on to write its reports."""
    assert lines(native([prog("signal_superv")]).stdout) == {probe: "ok" for probe in SIGNAL_PROBES}
    run = superv([prog("signal_superv"), "attack"], options=("--policy", str(POLICIES / "hardened.yaml")))
    assert run.returncode == 0, run.stderr
    refused = {probe: "EPERM" for probe in [*SIGNAL_PROBES, "SIGKILL"]}
    refused["pidfd_send_signal /proc"] = "EACCES"  # superv's /proc/PID does not open
    assert lines(run.stdout) == refused
    assert run.summary["exit_status"] == 0
    guard = next(r for r in policy_of(run)["rules"] if r["rule"] == "leave-superv-alone")
    assert guard["in_kernel"] is True
    # tkill names a thread: the supervisor decided it, one refusal per thread of superv's
    tkills = [e for e in policy_events(run) if e["syscall"] == "tkill"]
    assert tkills and all(e["policy"]["rule"] == "leave-superv-alone" for e in tkills)


def test_without_hardened_the_program_can_kill_superv(prog, tmp_path):
    """What hardened.yaml is for: the program's parent is superv, and a plain
    kill() of it ends the supervision."""
    out = tmp_path / "out"
    done = subprocess.run([*SUPERV, "run", "-q", "-o", str(out), "--", str(prog("signal_superv")), "attack"],
                          capture_output=True, timeout=60)
    assert done.returncode == -9
    assert lines(done.stdout)["kill parent"] == "ok"


TERMINAL_SIGNAL = """\
import errno, fcntl, os, signal, sys, termios
master = int(sys.argv[1])
for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):  # all TIOCSIG can send
    signal.signal(sig, signal.SIG_IGN)  # the program is in the foreground group too
for sig in [signal.Signals[name] for name in sys.argv[2:]]:
    try:
        fcntl.ioctl(master, 0x40045436, sig)  # TIOCSIG
        print(signal.Signals(sig).name, "sent", flush=True)
    except OSError as e:
        print(signal.Signals(sig).name, errno.errorcode[e.errno], flush=True)
"""


def test_hardened_refuses_a_terminal_signal_aimed_at_superv(tmp_path):
    """ioctl(TIOCSIG) on the master of superv's controlling terminal would
    signal its foreground process group, superv's (SIGINT, SIGQUIT or
    SIGTSTP): refused under hardened.yaml, which then writes its reports."""
    import pty

    (tmp_path / "tiocsig.py").write_text(TERMINAL_SIGNAL)
    results = {}
    for name, options, signals in (("hardened", ("--policy", str(POLICIES / "hardened.yaml")),
                                    ("SIGINT", "SIGQUIT", "SIGTSTP")),
                                   ("none", (), ("SIGQUIT",))):
        master, slave = pty.openpty()

        def on_the_terminal(slave=slave):
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)  # superv's controlling terminal, its group in front

        out = tmp_path / name
        command = [*SUPERV, "run", "-q", "-o", str(out), *options, "--", sys.executable, tmp_path / "tiocsig.py",
                   str(master), *signals]
        done = subprocess.run([str(c) for c in command], stdin=slave, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, pass_fds=(master,), preexec_fn=on_the_terminal, timeout=60)
        os.close(slave)
        os.close(master)
        results[name] = done
    hardened, unguarded = results["hardened"], results["none"]
    assert hardened.returncode == 0, hardened.stderr
    assert hardened.stdout.decode().splitlines() == ["SIGINT EPERM", "SIGQUIT EPERM", "SIGTSTP EPERM"]
    summary = json.loads((tmp_path / "hardened" / "summary.json").read_text())
    guard = next(r for r in summary["policy"]["rules"] if r["rule"] == "leave-superv-alone")
    assert guard["calls"] == 3
    # Without the guard the signal reaches superv, which takes a terminal's
    # SIGQUIT, as its SIGINT, as the program's to handle (the program got
    # it too); a SIGTSTP would stop superv.
    assert unguarded.returncode == 0, unguarded.stderr
    assert unguarded.stdout.decode().splitlines() == ["SIGQUIT sent"]
    summary = json.loads((tmp_path / "none" / "summary.json").read_text())
    assert (summary["signals_received"], summary["signals_forwarded"]) == (1, 0)


OWN_SIGNALS = """\
import fcntl, os, signal, struct
r, w = os.pipe()
fcntl.fcntl(r, 15, struct.pack("=ii", 1, os.getpid()))  # F_SETOWN_EX, F_OWNER_PID
print("owner", struct.unpack("=ii", fcntl.fcntl(r, 16, bytes(8)))[1] == os.getpid())  # F_GETOWN_EX
master, slave = os.openpty()
print("tiocsig", fcntl.ioctl(master, 0x40045436, signal.SIGINT))  # no foreground group: nobody
"""


def test_hardened_leaves_the_programs_own_signal_plumbing_alone(superv):
    """F_SETOWN_EX to itself and TIOCSIG on a pty of its own: as natively,
    made by the supervisor on its copies."""
    program = [sys.executable, "-c", OWN_SIGNALS]
    assert native(program).stdout == b"owner True\ntiocsig 0\n"
    run = superv(program, options=("--policy", str(POLICIES / "hardened.yaml")))
    assert (run.returncode, run.stdout) == (0, b"owner True\ntiocsig 0\n"), run.stderr
    made = [(e["syscall"], e.get("cmd"), e["result"]) for e in run.events if e.get("cmd")]
    assert made == [("fcntl", "F_SETOWN_EX", 0), ("ioctl", "TIOCSIG", 0)]


PTRACE_PARENT = """\
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_SEIZE = 0x4206
result = libc.ptrace(PTRACE_SEIZE, os.getppid(), None, None)  # the tracer's exit detaches it
print("ptrace of superv:", "seized" if result == 0 else os.strerror(ctypes.get_errno()))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="as root, Yama lets a program ptrace its parent")
def test_hardened_refuses_ptrace_of_superv(superv):
    """Run by root, a program can seize superv with ptrace natively (and
    from there do anything); hardened.yaml denies ptrace in the kernel."""
    program = [sys.executable, "-c", PTRACE_PARENT]
    unguarded = superv(program)
    assert unguarded.stdout == b"ptrace of superv: seized\n"
    hardened = superv(program, options=("--policy", str(POLICIES / "hardened.yaml")))
    assert hardened.returncode == 0, hardened.stderr
    assert hardened.stdout == b"ptrace of superv: Operation not permitted\n"


PROC_OF_PARENT = """\
import os
parent = os.getppid()
for label, name in (("mem", "mem"), ("environ", "environ"), ("status", "status"), ("thread-mem", f"task/{parent}/mem")):
    try:
        os.close(os.open(f"/proc/{parent}/{name}", os.O_RDWR if name.endswith("mem") else os.O_RDONLY))
        print(label, "opened")
    except OSError as e:
        print(label, os.strerror(e.errno))
"""


def test_hardened_refuses_opens_of_supervs_proc_files(superv):
    """The program's parent is superv: under hardened.yaml none of its /proc
    files opens, and the summary counts the refusals under the rule."""
    run = superv([sys.executable, "-c", PROC_OF_PARENT], options=("--policy", str(POLICIES / "hardened.yaml")))
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines() == [
        "mem Permission denied", "environ Permission denied", "status Permission denied",
        "thread-mem Permission denied"]
    denials = policy_events(run)
    assert [e["policy"]["rule"] for e in denials] == ["leave-superv-proc-alone"] * 4
    assert all(e["file"].startswith("/proc/") for e in denials)


@pytest.mark.skipif(os.geteuid() != 0, reason="what root can do")
def test_without_hardened_a_root_program_can_open_supervs_memory(superv):
    """Why hardened.yaml guards /proc: natively, a program run by root opens
    its parent's (superv's) memory for writing."""
    run = superv([sys.executable, "-c", PROC_OF_PARENT])
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines()[0] == "mem opened"


def test_a_killed_superv_takes_every_traced_process_with_it(tmp_path):
    """SIGKILL to superv alone: its watchdog kills what it traced (the
    shell, and the sleep in the background that makes no traced call and
    would run on unchecked), so that no process keeps running without a
    supervisor."""
    proc = subprocess.Popen([*SUPERV, "run", "-q", "-o", str(tmp_path / "out"), "--", "sh", "-c",
                             "sleep 1000 & echo $$ $!; wait"], stdout=subprocess.PIPE, start_new_session=True)
    shell, sleeper = map(int, proc.stdout.readline().split())
    # the sleep has started and sleeps (a traced call that superv's death
    # cut short would end it anyway, with ENOSYS)
    wait_for(lambda: "nanosleep" in Path(f"/proc/{sleeper}/wchan").read_text())
    assert _running(shell)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: not _running(shell) and not _running(sleeper))


def test_a_killed_superv_leaves_complete_event_lines(prog, tmp_path):
    """events.jsonl is streamed in whole lines: SIGKILL superv in the middle
    of a run and every line it wrote is valid JSON, the calls so far in it."""
    import json
    import signal
    import time

    out = tmp_path / "o"
    proc = subprocess.Popen([*SUPERV, "run", "-q", "-o", str(out), "--interval", "0.1", "--",
                             prog("slow_stream"), "40", "50"], start_new_session=True)
    events = out / "events.jsonl"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not events.exists() or b'"type":"sample"' not in events.read_bytes()):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    text = events.read_text()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    reads = [e for e in lines if e["type"] == "call" and e["syscall"] == "read" and e["class"] == "pipe"]
    assert reads and any(e["type"] == "sample" for e in lines)


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
