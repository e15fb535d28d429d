"""fds the fast path classifies itself: the pipes and the TCP, UDP and
unix sockets that calls it took made (pipe, socket, accept), at their first
data call, where that call was a trip to Python.  What it writes (the
"fd" events, the calls' class and detail, the per-fd totals) must be what
the Python engine (SUPERV_FASTPATH=0, the reference) writes, record for
record; the fds it leaves to Python (a UDP socket its first send binds)
too."""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest

VOLATILE = {"mono", "wall", "pid", "tid", "inode", "peer_inode"}  # differ from run to run
LOOP = 100  # as in classified_fds.c


def without_ports(value):
    """Ports the kernel chose differ from run to run, and so does the unix
    listener's name, which holds the program's pid."""
    if not isinstance(value, str):
        return value
    return re.sub(r"(\]|\d):\d+", r"\1:PORT", re.sub(r"classified-\d+", "classified-PID", value))


def stable(event: dict) -> dict:
    return {k: without_ports(v) for k, v in event.items() if k not in VOLATILE}


MADE = {"pipe", "pipe2", "socket", "accept", "accept4", "connect"}  # calls whose records name no pid


def by_process(run) -> list[list[dict]]:
    """Each process's fd events, data calls and calls that make fds (and
    connect: its address), in order; processes in the order they started."""
    kept: dict[int, list[dict]] = {p["pid"]: [] for p in run.processes()}
    for e in run.events:
        if e["type"] == "fd" or e["type"] == "call" and ("fd_in" in e or e["syscall"] in MADE):
            kept[e["pid"]].append(stable(e))
    return list(kept.values())


def fd_totals(run) -> list[list[dict]]:
    return [[stable(fd) for fd in p["fds"]] for p in run.processes()]


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_the_fast_path_classifies_fds_as_the_python_engine_does(prog, superv, static):
    program = [prog("classified_fds", static=static)]
    fast = superv(program, env=dict(os.environ, SUPERV_FASTPATH="1"))
    python = superv(program, env=dict(os.environ, SUPERV_FASTPATH="0"))
    for run in (fast, python):
        assert run.returncode == 0, run.stderr.decode()
        assert sorted(run.stdout.splitlines()) == sorted(fast.stdout.splitlines())

    # What the program saw, in the records, with the class and detail of the fd.
    main = by_process(fast)[0]
    said = [int(n) for n in re.findall(rb"^(?:[a-z]+) (-?\d+)$", fast.stdout, re.M)]
    calls = [e for e in main if "fd_in" in e and e["fd"] > 2 and e["class"] != "disk"]  # not the loader's
    assert [e["result"] for e in calls[:len(said)]] == said
    details = [e["detail"] for e in calls[:len(said)]]
    assert details[:16] == ["pipe", "pipe", *["tcp 127.0.0.1:PORT -> 127.0.0.1:PORT"] * 4,
                            "udp 127.0.0.1:PORT", "udp 127.0.0.1:PORT", "udp 127.0.0.1:PORT -> 127.0.0.1:PORT",
                            "udp 127.0.0.1:PORT", "udp 0.0.0.0:PORT", "udp 127.0.0.1:PORT", "udp 0.0.0.0:PORT",
                            "udp 127.0.0.1:PORT", *["unix-stream unnamed -> unnamed"] * 2]
    if b"no ipv6" not in fast.stdout:  # ::1 is there
        assert details[16:20] == ["tcp6 [::1]:PORT -> [::1]:PORT"] * 4

    # A unix socket's peer is the socket at the other end: one of the run's.
    fd_events = [e for e in fast.events if e["type"] == "fd"]
    unix = [e for e in fd_events if e["detail"].startswith("unix")]
    assert len(unix) > 2 * LOOP and {e["peer_inode"] for e in unix} <= {e["inode"] for e in fd_events}

    # Record for record, and fd for fd, the Python engine's.
    assert by_process(fast) == by_process(python)
    assert fd_totals(fast) == fd_totals(python)
    child, *loop_children = [p for p in fast.processes() if p["ppid"] == fast.processes()[0]["pid"]]
    assert len(loop_children) == LOOP
    assert [(fd["class"], fd["bytes_out"]) for fd in child["fds"] if fd["fd"] > 2 and fd["bytes_out"]] == [("pipe", 14)]
    assert len([e for e in main if e["type"] == "fd"]) > 4 * LOOP
    # Each process's count of calls, in summary.json, is its records' (the
    # entries of ended processes are made as they end: Recorder.close_log).
    records = Counter(e["pid"] for e in fast.events if e["type"] == "call")
    assert [p["calls"] for p in fast.processes()] == [records[p["pid"]] for p in fast.processes()]

    # The loops' LOOP pipes, LOOP connections and LOOP children: none of
    # their fds' first calls went to Python, nor a child's first call (the
    # fast path took it in, with its fds as they were at the fork); the
    # pipes' listen() did, and Python learnt then what the fast path did
    # (the pipe's making and its classification of the write end) without
    # dropping that end's view: the second write on it was not Python's
    # either.
    # (The IPv6 connections too, when the machine has ::1.)
    answered = fast.summary["calls_answered"]
    assert answered["slow"] < LOOP + LOOP // 2 and answered["fast"] > 6 * LOOP
    assert python.summary["calls_answered"]["fast"] == 0
