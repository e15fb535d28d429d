"""Report formatting: the ntrace-style per-process log, summary.json, the
exit table and --trace lines.  Pure functions of the ledger and records."""

from __future__ import annotations

import errno
import json
import os
import signal

import orjson

from . import syscalls
from .classify import FdClass
from .ledger import ClassTotals, Ledger, ProcessStats

LOG_HEADER = "call,fd,pid,seq,time,size,recv_so_far,send_so_far"

# Sections always present in a log, as ntrace printed them; the others
# follow when a process used such fds.
ALWAYS_SHOWN = (FdClass.NET, FdClass.PIPE, FdClass.DISK)
SHOWN_WHEN_USED = (FdClass.TTY, FdClass.DEVICE, FdClass.OTHER)

EXTRA_KINDS = syscalls.CALL_KINDS[len(syscalls.NTRACE_KINDS):]


def format_time(wall: float) -> str:
    return f"{wall:.6f}"


def log_row(kind: str, fd: int, pid: int, seq: int, wall: float, size: int, recv: int, send: int) -> str:
    return f"{kind},{fd},{pid},{seq},{format_time(wall)},{size},{recv},{send}"


def _kind_line(name: str, totals) -> str:
    calls, nbytes = (totals.calls, totals.bytes) if totals else (0, 0)
    return f"{name:>9} : {calls} ({nbytes})"


def class_section(process: ProcessStats, fd_class: FdClass, totals: ClassTotals) -> list[str]:
    title = fd_class.title
    lines = [
        f"{title}:{fd.pid}:{fd.fd} ({fd.bytes_in},{fd.bytes_out})"
        for fd in process.fds
        if fd.fd_class is fd_class and fd.calls
    ]
    lines.append(f"{title} totals: ({totals.bytes_in}, {totals.bytes_out})")
    lines.extend(_kind_line(kind, totals.kinds.get(kind)) for kind in syscalls.NTRACE_KINDS)
    lines.extend(_kind_line(kind, totals.kinds[kind]) for kind in EXTRA_KINDS if kind in totals.kinds)
    return lines


def log_sections(process: ProcessStats) -> str:
    """Everything after the call rows in <pid>.log."""
    classes = process.classes
    shown = list(ALWAYS_SHOWN) + [c for c in SHOWN_WHEN_USED if c in classes]
    blocks = ["\n".join(class_section(process, c, classes.get(c, ClassTotals()))) for c in shown]
    return "\n" + "\n\n".join(blocks) + "\n"


# -- exit statuses -----------------------------------------------------------


def shell_status(wait_status: int | None) -> int | None:
    """A wait status as a shell reports it: the code, or 128+N for signal N."""
    if wait_status is None:
        return None
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def describe_status(wait_status: int | None) -> str:
    if wait_status is None:
        return "unknown"
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        core = " (core dumped)" if os.WCOREDUMP(wait_status) else ""
        return f"killed by {signal_name(sig)}{core}"
    return f"exited {os.WEXITSTATUS(wait_status)}"


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def errno_name(err: int) -> str:
    return errno.errorcode.get(err, str(err))


def format_result(result: int | None) -> str:
    if result is None:
        return "?"
    if result < 0:
        return f"-1 {errno_name(-result)} ({os.strerror(-result)})"
    return str(result)


# -- summary.json --------------------------------------------------------------


def _class_json(totals: ClassTotals) -> dict:
    return {
        "calls": totals.calls,
        "bytes_in": totals.bytes_in,
        "bytes_out": totals.bytes_out,
        "kinds": {k: {"calls": t.calls, "bytes": t.bytes} for k, t in totals.kinds.items()},
    }


def process_entry(p: ProcessStats) -> dict:
    """A process's entry in summary.json."""
    return {
        "pid": p.pid,
        "ppid": p.ppid,
        "log": f"{p.log_name}.log",
        "argv": p.argv,
        "execs": p.execs,
        "started": p.started,
        "ended": p.ended,
        "exit_status": shell_status(p.exit_status),
        "exit": describe_status(p.exit_status),
        "calls": p.calls,
        "inexact_calls": p.inexact_calls,
        "refused_calls": p.refused_calls,
        "classes": {c.value: _class_json(t) for c, t in p.classes.items()},
        "fds": [
            {
                "fd": fd.fd,
                "class": fd.fd_class.value,
                "detail": fd.classification.describe(),
                "calls": fd.calls,
                "bytes_in": fd.bytes_in,
                "bytes_out": fd.bytes_out,
            }
            for fd in p.fds
            if fd.calls
        ],
    }


def summary(ledger: Ledger, run: dict) -> dict:
    processes = []
    class_totals: dict[str, dict] = {}
    for p in ledger.history:
        classes = p.classes
        # An ended process's entry was made when its log was closed (Recorder.close_log).
        processes.append(p.summary_entry or process_entry(p))
        for c, t in classes.items():
            agg = class_totals.setdefault(c.value, {"calls": 0, "bytes_in": 0, "bytes_out": 0})
            agg["calls"] += t.calls
            agg["bytes_in"] += t.bytes_in
            agg["bytes_out"] += t.bytes_out
    connections = [
        {
            "inode": c.inode,
            "proto": c.detail,
            "local": c.local,
            "remote": c.remote,
            "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out,
            "pids": c.pids,
        }
        for c in ledger.connections()
    ]
    return {
        "schema": 1,
        **run,
        "inexact_calls": sum(p.inexact_calls for p in ledger.history),
        "refused_calls": sum(p.refused_calls for p in ledger.history),
        "classes": class_totals,
        "processes": processes,
        "connections": connections,
    }


# -- the table on stderr at exit -------------------------------------------------


def compact_json(value) -> str:
    """JSON with no spaces: an event line, a summary.json entry.  orjson
    takes a tenth of json.dumps's time (a record per lifecycle call; 3000
    processes' entries took 160 ms); what it refuses, a lone surrogate from
    an undecodable path or an int past 64 bits, json takes."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"))


def summary_text(summary: dict) -> str:
    """summary.json's text: the top level, and each list of records or table
    under it, one entry per line, every entry compact (no spaces).  (json's indent= runs in pure
    Python: with thousands of processes it took a second.)"""

    def member(key, value) -> str:
        if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
            return f"  {json.dumps(key)}: [\n" + ",\n".join(f"    {compact_json(v)}" for v in value) + "\n  ]"
        if isinstance(value, dict) and value:
            inner = ",\n".join(f"    {json.dumps(k)}: {compact_json(v)}" for k, v in value.items())
            return f"  {json.dumps(key)}: {{\n{inner}\n  }}"
        return f"  {json.dumps(key)}: {compact_json(value)}"

    return "{\n" + ",\n".join(member(k, v) for k, v in summary.items()) + "\n}\n"


def exit_table(ledger: Ledger) -> str:
    rows = [("pid", "class", "calls", "bytes in", "bytes out")]
    for p in ledger.history:
        classes = p.classes
        for c in FdClass:
            t = classes.get(c)
            if t is not None:
                rows.append((str(p.pid), c.value, str(t.calls), str(t.bytes_in), str(t.bytes_out)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.rjust(w) if i > 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


# -- --trace ------------------------------------------------------------------------


def trace_call(pid: int, fd_class: FdClass | None, call: str, result: int | None) -> str:
    tag = f"[{fd_class.tag}] " if fd_class else ""
    return f"[{pid}] {tag}{call} = {format_result(result)}"


def lifecycle_text(name: str, fields: dict) -> str:
    """A lifecycle call as --trace shows it: connect(fd=3, address='127.0.0.1:80')."""
    inner = ", ".join(f"{k}={v!r}" for k, v in fields.items())
    return f"{name}({inner})"


def trace_note(pid: int, text: str) -> str:
    return f"[{pid}]  {text}"


def call_text(syscall: syscalls.Syscall, args) -> str:
    """strace-like: read(7, 2048) names the fd and the size asked."""
    a = dict(zip(syscall.args, args))
    layout = syscall.layout
    if layout in (syscalls.Layout.BUF, syscalls.Layout.BUF_AT):
        return f"{syscall.name}({syscalls.as_int(a['fd'])}, {a['count']})"
    if layout in (syscalls.Layout.SOCK,):
        return f"{syscall.name}({syscalls.as_int(a['fd'])}, {a['len']}, {syscalls.as_int(a['flags']):#x})"
    if layout in (syscalls.Layout.SENDFILE,):
        return f"{syscall.name}({syscalls.as_int(a['out_fd'])}, {syscalls.as_int(a['in_fd'])}, {a['count']})"
    if layout in (syscalls.Layout.SPLICE, syscalls.Layout.TEE, syscalls.Layout.COPY_RANGE):
        return f"{syscall.name}({syscalls.as_int(a['fd_in'])}, {syscalls.as_int(a['fd_out'])}, {a['len']})"
    if "fd" in a:
        return f"{syscall.name}({syscalls.as_int(a['fd'])}, ...)"
    return f"{syscall.name}(...)"
