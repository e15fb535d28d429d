"""The calls that make fds (open, openat, creat, socket, socketpair, pipe,
pipe2, accept, accept4, dup, dup2, dup3, fcntl's F_DUPFD), and connect.  The fast path records them itself: it
predicts the new number from its picture of the process's fds and learns
the result at the thread's next call (connect's: whether the socket has a
peer).  Its records must be those of the Python engine
(SUPERV_FASTPATH=0, the reference), record for record, and both must say
what the program saw, including when the picture is wrong (an fd made by an
untraced call, a gap below a high number)."""

from __future__ import annotations

import os
import re
import shutil

import pytest

MADE = {"open", "openat", "creat", "socket", "socketpair", "pipe", "pipe2", "accept", "accept4",
        "dup", "fcntl", "dup2", "dup3", "connect"}
VOLATILE = {"mono", "wall", "pid", "tid"}  # differ from run to run


def made_records(run, tid: int | None = None) -> list[dict]:
    """The records of the calls that make fds, of one thread, in order."""
    return [e for e in run.events if e["type"] == "call" and e["syscall"] in MADE and
            (tid is None or e["tid"] == tid)]


def stable(record: dict) -> dict:
    """A record without what differs from run to run: times, ids, and the
    port the kernel chose for the listener."""
    kept = {k: v for k, v in record.items() if k not in VOLATILE}
    if str(kept.get("address", "")).startswith("127.0.0.1:"):
        kept["address"] = "127.0.0.1:PORT"
    return kept


def run_made_fds(prog, superv, tmp_path, static: bool, fast: str):
    folder = tmp_path / "files"  # the same paths in both runs
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    env = dict(os.environ, SUPERV_FASTPATH=fast)
    run = superv([prog("made_fds", static=static), folder], env=env)
    assert run.returncode == 0, run.stderr.decode()
    return run


def said_results(stdout: bytes) -> list[int | None]:
    """The program's own results, one per main-thread call: the fd, 0 for a
    pair, None for a failure."""
    results = []
    for m in re.finditer(rb"^[a-z0-9-]+ (-?\d+)$", stdout, re.M):
        value = int(m[1])
        results.append(None if value < 0 else value)
    return results


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_the_fast_path_records_made_fds_as_the_python_engine_does(prog, superv, tmp_path, static):
    fast = run_made_fds(prog, superv, tmp_path, static, "1")
    python = run_made_fds(prog, superv, tmp_path, static, "0")
    (process,) = fast.processes()
    main = made_records(fast, process["pid"])
    main_python = made_records(python, python.processes()[0]["pid"])
    # The program's own calls: the dynamic loader's opens come first, the loop's last.
    ours = [e for e in main if not str(e.get("path", "")).startswith(("/etc/", "/lib", "/usr/", "/dev/zero"))]

    # What the program saw, call by call (the pairs' fds too).
    said = said_results(fast.stdout)
    assert [e["result"] for e in ours] == said
    assert [e["fds"] for e in ours if "fds" in e] == \
        [[int(a), int(b)] for a, b in re.findall(rb"^fds (\d+) (\d+)$", fast.stdout, re.M)]
    # A failed connect tells nothing more than one still in progress.
    assert all(e.get("outcome") == ("unknown" if e["syscall"] == "connect" else "failed")
               for e in ours if e["result"] is None)
    connects = {e.get("address"): e for e in ours if e["syscall"] == "connect"}
    assert [e["result"] for e in ours if e["syscall"] == "connect"] == [0, None, None, None, None, None]
    assert connects[None]["fd"] == connects["family-2"]["fd"]  # unreadable, and 4 bytes of AF_INET
    assert any(str(a).endswith("/no-socket") for a in connects)
    by_path = {e["path"].rsplit("/", 1)[-1]: e for e in ours if "path" in e}
    assert by_path['q"uote\\back']["result"] is not None
    assert by_path["\udce9t\udce9"]["result"] is not None  # Latin-1: Python's surrogateescape
    assert by_path["été"]["result"] is not None

    # Record for record, the Python engine's, in both runs the same program.
    strip = [stable(e) for e in main]
    strip_python = [stable(e) for e in main_python]
    assert len(strip) == len(strip_python) > 300
    assert strip == strip_python
    assert said_results(python.stdout) == said

    assert sum(e["syscall"] == "connect" for e in strip) == 6
    dups = [(e["syscall"], e.get("newfd"), e["result"]) for e in ours if e["syscall"].startswith(("dup", "fcntl"))]
    assert [d[2] is None for d in dups] == [False, False, False, True, True, False, False, False, True, False, True,
                                            True, False]
    assert [d for d in dups if d[0] == "dup3"][1][2] is None  # onto itself: EINVAL, though the fd is open

    # A loop of opens, in a process of one thread: the fast path took each
    # open and close, where the Python engine answered none of them.
    loop = [e for e in main if e.get("path") == "/dev/zero"]
    (loop_sum,) = re.findall(rb"^loop of 300 opens (\d+)$", fast.stdout, re.M)
    assert len(loop) == 300 and sum(e["result"] for e in loop) == int(loop_sum)
    assert fast.summary["calls_answered"]["fast"] >= 600
    assert python.summary["calls_answered"]["fast"] == 0

    # Threads share the fd table, so their opens are left to the Python
    # engine, which learns each result at the thread's next call: every
    # open is recorded.  (Which thread got which number is not told apart
    # when two opens run at once: see SECURITY.md.)
    for run in (fast, python):
        threads = [e for e in made_records(run) if e["tid"] != run.processes()[0]["pid"]]
        assert len(re.findall(rb"^thread \d+ \d+$", run.stdout, re.M)) == len(threads) == 800
