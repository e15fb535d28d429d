"""Where records go: events.jsonl (streamed), the per-process logs, --trace.

The engine calls these methods under its lock; they keep the ledger and
write the outputs.  Lines are written whole, in batches, so a run that is
killed leaves only complete JSON lines behind.
"""

from __future__ import annotations

import errno
import json
import os
import time

from . import _fastpath as fastpath
from . import reports
from .classify import Classification, FdClass
from .ledger import Leg, Ledger, LegTotals, ProcessStats
from .syscalls import Layout, Syscall, as_int

SOCKET_LAYOUTS = (Layout.SOCK, Layout.MSG, Layout.MMSG)

SCHEMA = 1
ENVELOPE = frozenset(("schema", "type", "seq", "mono", "wall", "pid"))  # keys every event has
FRAGMENTS_KEPT = 4096  # fd_fragment's cache


def _socket_flags(syscall: Syscall, args: tuple) -> int | None:
    """The MSG_* flags of a socket call, worth keeping: MSG_PEEK returns
    bytes it does not move, MSG_TRUNC may return more than it copied."""
    if "flags" in syscall.args and syscall.layout in SOCKET_LAYOUTS:
        return as_int(syscall.arg("flags", args))
    return None


class Recorder:
    def __init__(self, out_dir: str, trace=None):
        self.out_dir = out_dir
        self.ledger = Ledger()
        # One writer for events.jsonl, shared with the fast path so that the
        # lines of both stay whole (native/fastpath.c batches them).
        self.events_fd = os.open(
            os.path.join(out_dir, "events.jsonl"), os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
        )
        self.trace = trace  # a text stream, or None
        self.logs_written = False  # by write_logs: close_log comes too late
        fastpath.set_output(self.events_fd, trace.fileno() if trace is not None else -1)
        self._heartbeat_seen: dict[tuple[int, int], tuple[int, int]] = {}
        # What could not be written (a full disk): name -> the error.  The
        # run goes on; cli says so at the end.
        self.errors: dict[str, str] = {}
        self.logged: dict[int, dict] = {}  # tid -> the policy hit its next call record carries
        self._fragments: dict[int, tuple[Classification, str]] = {}

    # -- low level ------------------------------------------------------------

    def _event(self, event_type: str, pid: int, seq: int | None = None, **fields) -> None:
        if event_type == "call" and fields.get("tid") in self.logged and "policy" not in fields:
            fields["policy"] = self.logged.pop(fields["tid"])
        record = {"schema": SCHEMA, "type": event_type, "seq": seq, "mono": time.monotonic(), "wall": time.time(), "pid": pid}
        if not ENVELOPE.isdisjoint(fields):
            raise ValueError(f"event fields {sorted(fields.keys() & ENVELOPE)} would overwrite the envelope")
        record.update(fields)
        fastpath.emit(reports.compact_json(record))

    def note(self, pid: int, text: str) -> None:
        if self.trace is not None:
            self._trace_line(reports.trace_note(pid, text))

    def _trace_call(self, pid: int, fd_class: FdClass | None, call: str, result: int | None) -> None:
        if self.trace is not None:
            self._trace_line(reports.trace_call(pid, fd_class, call, result))

    def _trace_line(self, line: str) -> None:
        if self.trace is None:
            return
        try:
            self.trace.write(line + "\n")
            self.trace.flush()
        except OSError as e:  # the run goes on without --trace
            self.errors["--trace"] = e.strerror
            self.trace = None
            fastpath.set_output(self.events_fd, -1)

    # -- processes ---------------------------------------------------------------

    def process_started(self, pid: int, ppid: int, argv: list[str], parent_known: bool, event: bool = True) -> str:
        """Returns the path of the process's log.  event: False when the
        fast path wrote it (engine._take_in_child)."""
        stats = self.ledger.process_started(pid, ppid, argv, time.time())
        if event:
            self._event("fork" if parent_known else "process", pid, ppid=ppid, argv=argv)
        if self.trace is not None:
            self.note(pid, f"process {pid} started, parent {ppid}: {' '.join(argv)}")
        return self.log_path(stats.log_name)

    def process_exec(self, pid: int, tid: int, path: str, argv: list[str]) -> None:
        self.ledger.process_exec(pid, argv)
        self._event("exec", pid, tid=tid, path=path, argv=argv)
        self.note(pid, f"exec {path} {argv}")

    def exec_failed(self, pid: int, tid: int, path: str) -> None:
        self._event("exec_failed", pid, tid=tid, path=path)
        self.note(pid, f"exec {path} failed")

    def process_ended(self, pid: int, wait_status: int | None) -> None:
        self.ledger.process_ended(pid, wait_status, time.time())
        described = reports.describe_status(wait_status)
        self._event("exit", pid, status=reports.shell_status(wait_status), exit=described)
        self.note(pid, f"exit: {described}")

    # -- descriptors ----------------------------------------------------------------

    def fd_classified(self, pid: int, fd: int, c: Classification, inherited: bool = False) -> None:
        self.ledger.fd_opened(pid, fd, c)
        detail = c.describe()
        self._event(
            "fd",
            pid,
            fd=fd,
            **{"class": c.fd_class.value},
            detail=detail,
            local=c.local,
            remote=c.remote,
            path=c.path,
            inode=c.identity[1],
            peer_inode=c.peer_inode,
            inherited=inherited,
        )
        if self.trace is not None:
            self.note(pid, f"fd {fd} {'inherited' if inherited else 'classified'}: {c.fd_class.value} ({detail})")

    def fd_reclassified(self, pid: int, fd: int, c: Classification) -> None:
        self.ledger.fd_reclassified(pid, fd, c)
        self._event("fd_update", pid, fd=fd, detail=c.describe(), local=c.local, remote=c.remote)

    def fd_closed(self, pid: int, fd: int, seq: int | None) -> None:
        stats = self.ledger.fd_closed(pid, fd)
        if stats is not None:
            self._event(
                "fd_closed", pid, seq, fd=fd, **{"class": stats.fd_class.value}, bytes_in=stats.bytes_in, bytes_out=stats.bytes_out
            )
            if self.trace is not None:
                self.note(pid, f"fd {fd} closed ({stats.fd_class.value}: in {stats.bytes_in}, out {stats.bytes_out})")

    # -- calls ------------------------------------------------------------------------

    def data_call(
        self,
        pid: int,
        tid: int,
        seq: int,
        syscall: Syscall,
        args: tuple,
        kind: str,
        legs: list[Leg] | None,
        result: int | None,
        exact: bool,
        interrupted: bool = False,
    ) -> None:
        """legs is None when the call failed before any fd was known (EBADF);
        an interrupted call (a signal, then EINTR or a restart) has no result."""
        wall = time.time()
        totals: list[LegTotals] = self.ledger.data_call(pid, kind, legs, exact) if legs else []
        first = totals[0].stats if totals else None
        flags = _socket_flags(syscall, args)
        if len(totals) == 1 and result is not None:
            # The common case, formatted by hand: json.dumps costs more than
            # the rest of the record (class and detail are encoded once per fd).
            line = (
                f'{{"schema":{SCHEMA},"type":"call","seq":{seq},"mono":{time.monotonic()!r},"wall":{wall!r},'
                f'"pid":{pid},"syscall":"{syscall.name}","kind":"{kind}","tid":{tid},"fd":{totals[0].fd},'
                f'{self.fd_fragment(first.classification)},"result":{result},"exact":{"true" if exact else "false"},'
                f'"fd_in":{first.bytes_in},"fd_out":{first.bytes_out}'
                + ("" if flags is None else f',"flags":{flags}')
                + ("}" if tid not in self.logged else f',"policy":{json.dumps(self.logged.pop(tid), separators=(",", ":"))}}}')
            )
            fastpath.emit(line)
        else:
            record = {
                "syscall": syscall.name,
                "kind": kind,
                "tid": tid,
                "fd": totals[0].fd if totals else None,
                "class": first.fd_class.value if first else None,
                "detail": first.classification.describe() if first else None,
                "result": result,
                "exact": exact,
            }
            if totals:
                record["fd_in"] = totals[0].bytes_in
                record["fd_out"] = totals[0].bytes_out
            if flags is not None:
                record["flags"] = flags
            if interrupted:
                record["interrupted"] = True
            if len(totals) > 1:
                record["fds"] = [
                    {"fd": t.fd, "class": t.stats.fd_class.value, "fd_in": t.bytes_in, "fd_out": t.bytes_out}
                    for t in totals
                ]
            self._event("call", pid, seq, **record)
        if self.trace is not None:
            self._trace_call(pid, first.fd_class if first else None, reports.call_text(syscall, args), result)
        for t in totals:
            if t.stats.fd_class is FdClass.NET and result is not None:
                fastpath.add_row(pid, reports.log_row(kind, t.fd, pid, seq, wall, result, t.bytes_in, t.bytes_out))

    def fd_fragment(self, c: Classification) -> str:
        """An fd's class and detail as JSON members, encoded once per
        classification.  The cache is emptied when full: a server classifies
        each connection, and kept for good they grew without end."""
        key = id(c)
        fragment = self._fragments.get(key)
        if fragment is None or fragment[0] is not c:
            if len(self._fragments) >= FRAGMENTS_KEPT:
                self._fragments.clear()
            text = f'"class":"{c.fd_class.value}","detail":{reports.compact_json(c.describe())}'
            fragment = (c, text)
            self._fragments[key] = fragment
        return fragment[1]

    def other_call(self, pid: int, tid: int, seq: int, syscall: str, call_text: str | None, result: int | None,
                   **fields) -> None:
        """call_text: the call as --trace shows it; None, its name and fields
        (made only when there is a trace)."""
        self._event("call", pid, seq, syscall=syscall, kind=syscall, tid=tid, result=result, **fields)
        if self.trace is not None:
            self._trace_call(pid, None, call_text or reports.lifecycle_text(syscall, fields), result)

    def policy_hit(self, pid: int, tid: int, seq: int | None, syscall: str, rule: str, action: str,
                   result: int | None = None, **fields) -> None:
        """A call a policy rule matched: its record carries "policy" (log: the
        call's usual record, made next; deny and kill: a record made here)."""
        if action == "log":
            self.mark_next_call(tid, rule, action)  # the call is recorded as usual
            return
        self._event("call", pid, seq, syscall=syscall, kind=syscall, tid=tid, result=result, **fields,
                    policy={"rule": rule, "action": action})
        self._trace_call(pid, None, f"{syscall}(...)", result)
        where = f" ({fields['file'] if 'file' in fields else fields['path']})" if "path" in fields else ""
        self.note(pid, f"{syscall}{where} {'denied' if action == 'deny' else 'killed the process'}: "
                       f"policy rule {rule}")

    def mark_next_call(self, tid: int, rule: str, action: str) -> None:
        """The next call record of this thread carries this policy hit."""
        self.logged[tid] = {"rule": rule, "action": action}

    def budget_spent(self, pid: int, name: str, fd_class: str | None, direction: str, limit: int, spent: int,
                     action: str) -> None:
        self._event("budget", pid, budget=name, **{"class": fd_class}, direction=direction, limit=limit,
                    spent=spent, action=action)
        self.note(pid, f"{name} spent: {spent} bytes {direction} of {limit} ({action})")

    def refused_call(self, pid: int, tid: int, seq: int, syscall: str, result: int) -> None:
        self.ledger.refused_call(pid)
        self._event("call", pid, seq, syscall=syscall, kind=syscall, tid=tid, result=result, refused=True)
        self._trace_call(pid, None, f"{syscall}(...)", result)
        self.note(pid, f"{syscall} refused: it would move data the supervisor cannot see")

    def internal_error(self, pid: int, where: str, error: BaseException, outcome: str = "") -> None:
        self._event("superv_error", pid, where=where, error=repr(error))
        import sys

        print(f"superv: internal error in {where}: {error!r}" + (f" ({outcome})" if outcome else ""),
              file=sys.stderr)

    def signal_received(self, pid: int, sig: int, forwarded: bool) -> None:
        """A signal sent to superv: passed on to the target, or (a terminal's
        Ctrl-C, which the target's process group got too) only noted."""
        name = reports.signal_name(sig)
        self._event("signal", pid, signal=name, forwarded=forwarded)
        self.note(pid, f"forwarded {name}" if forwarded else f"{name} from the terminal (the target got it too)")

    def log_path(self, log_name: str) -> str:
        return f"{self.out_dir}/{log_name}.log"  # os.path.join took 5 us of a fork's 60

    # -- periodic and final ------------------------------------------------------------------

    def heartbeat(self) -> None:
        """A sample of every open fd that moved bytes since the last one."""
        for p in self.ledger.processes.values():
            for fd in p.open_fds.values():
                key = (p.pid, fd.fd)
                now = (fd.bytes_in, fd.bytes_out)
                if fd.calls and self._heartbeat_seen.get(key) != now:
                    self._heartbeat_seen[key] = now
                    self._event("sample", p.pid, fd=fd.fd, **{"class": fd.fd_class.value}, fd_in=now[0], fd_out=now[1])
        fastpath.flush()

    def close_log(self, process: ProcessStats, sections: str, entry: dict) -> None:
        """An ended process's log gets its sections (reports.log_sections,
        made without the lock) during the run, not at its end: the log
        writer appends them after its rows, handed over when the fast path
        let the process go.  Its totals change no more, nor its summary.json
        entry (reports.process_entry, kept).  (Under the lock.)"""
        if not self.logs_written:
            fastpath.append_log(self.log_path(process.log_name), sections)
            process.summary_entry = entry

    def write_logs(self) -> None:
        """Each process's log: the rows the run wrote (or just the header),
        then the sections.  A log that does not fit keeps what it had."""
        self.logs_written = True
        fastpath.flush_rows()  # a failure stays in output_errors
        for process in self.ledger.history:
            if process.summary_entry is not None:  # closed already (close_log)
                continue
            path = self.log_path(process.log_name)
            try:
                with open(path, "a") as f:
                    had = f.tell()
                    try:
                        f.write((reports.LOG_HEADER + "\n" if had == 0 else "") + reports.log_sections(process))
                        f.flush()
                    except OSError:
                        f.truncate(had)
                        raise
            except OSError as e:
                self.errors[os.path.basename(path)] = e.strerror
                if len(self.errors) > 20:
                    break  # a full disk: the rest would fail alike

    def write_summary(self, run: dict) -> None:
        """summary.json whole, or not at all (written aside, then renamed).
        On a full disk the summary matters most: the end of events.jsonl
        (whole lines) makes room for it."""
        path = os.path.join(self.out_dir, "summary.json")
        text = reports.summary_text(reports.summary(self.ledger, run))
        for attempt in range(2):
            try:
                with open(path + ".partial", "w") as f:
                    f.write(text)
                os.replace(path + ".partial", path)
                return
            except OSError as e:
                error = e
                try:
                    os.unlink(path + ".partial")
                except OSError:
                    pass
            if error.errno != errno.ENOSPC or attempt or not self._events_give_room(len(text.encode()) + 8192):
                break
        self.errors["summary.json"] = error.strerror

    def _events_give_room(self, size: int) -> bool:
        """Cut events.jsonl's last lines (at least size bytes) for the summary."""
        fastpath.flush()
        try:
            end = os.lseek(self.events_fd, 0, os.SEEK_END)
            if end == 0:
                return False
            keep = max(end - size, 0)
            if keep:
                tail = os.pread(self.events_fd, min(keep, 1 << 20), max(keep - (1 << 20), 0))
                cut = tail.rfind(b"\n")
                keep = max(keep - (1 << 20), 0) + cut + 1 if cut >= 0 else 0
            os.ftruncate(self.events_fd, keep)
        except OSError:
            return False
        self.errors["events.jsonl"] = f"{os.strerror(errno.ENOSPC)}, then cut to {keep} bytes for summary.json"
        return True

    def output_errors(self) -> dict[str, str]:
        """Every output that could not be written whole, and why."""
        names = {"events": "events.jsonl", "trace": "--trace", "logs": "the network rows of the logs"}
        errors = {names[k]: os.strerror(v) for k, v in fastpath.output_errors().items()}
        return errors | self.errors

    def close(self) -> None:
        fastpath.flush()
        os.close(self.events_fd)
