"""The accounting of a run: plain data, updated by plain method calls.

Each fd lifetime (one descriptor of one process, from first use to close)
has a Counters block: calls, bytes in and out, and calls and bytes per call
kind.  The fast path (native/fastpath.c) counts into the same blocks, so
they are the one source of every total.  Totals per class and kind, per
process, and per connection (a socket, named by its inode, whichever
processes moved its bytes) are sums over them, taken when asked for.
Nothing here touches the kernel.
"""

from __future__ import annotations

import attrs

from ._fastpath import Counters
from .classify import Classification, FdClass
from .syscalls import CALL_KINDS, KIND_INDEX


@attrs.define
class KindTotals:
    calls: int = 0
    bytes: int = 0


@attrs.define
class ClassTotals:
    bytes_in: int = 0
    bytes_out: int = 0
    calls: int = 0
    kinds: dict[str, KindTotals] = attrs.Factory(dict)


@attrs.define(eq=False)
class FdStats:
    """One descriptor of one process, from its first use to its close."""

    pid: int
    fd: int
    classification: Classification
    counters: Counters = attrs.Factory(Counters)
    open: bool = True

    @property
    def fd_class(self) -> FdClass:
        return self.classification.fd_class

    @property
    def calls(self) -> int:
        return self.counters.calls

    @property
    def bytes_in(self) -> int:
        return self.counters.bytes_in

    @property
    def bytes_out(self) -> int:
        return self.counters.bytes_out

    def kinds(self) -> dict[str, KindTotals]:
        return {CALL_KINDS[i]: KindTotals(calls, nbytes) for i, (calls, nbytes) in self.counters.kinds().items()}


@attrs.define
class Connection:
    """A socket, whichever processes held it."""

    inode: int
    detail: str
    local: str | None
    remote: str | None
    bytes_in: int = 0
    bytes_out: int = 0
    pids: list[int] = attrs.Factory(list)  # processes that moved its bytes, in order


@attrs.define
class ProcessStats:
    pid: int
    ppid: int
    argv: list[str]
    started: float  # wall time
    log_name: str  # "<pid>", or "<pid>-<n>" for the n-th process of a reused pid
    exit_status: int | None = None  # a wait status
    ended: float | None = None
    execs: list[list[str]] = attrs.Factory(list)
    calls: int = 0  # traced calls, the seq numbers given out (set at the end)
    inexact_calls: int = 0
    refused_calls: int = 0
    fds: list[FdStats] = attrs.Factory(list)  # every fd lifetime, in order of first use
    open_fds: dict[int, FdStats] = attrs.Factory(dict)
    # Recorder.close_log's, once it ended: its log's sections are written
    # (handed to the log writer), and its summary.json entry made.
    summary_entry: dict | None = None
    # An ended process's totals no longer change, and three reports ask for them.
    _ended_classes: dict[FdClass, ClassTotals] | None = attrs.field(default=None, init=False, repr=False)

    @property
    def classes(self) -> dict[FdClass, ClassTotals]:
        """Totals per class and call kind, summed over the fd lifetimes."""
        if self._ended_classes is not None:
            return self._ended_classes
        totals: dict[FdClass, ClassTotals] = {}
        for fd in self.fds:
            if not fd.calls:
                continue
            t = totals.setdefault(fd.fd_class, ClassTotals())
            t.calls += fd.calls
            t.bytes_in += fd.bytes_in
            t.bytes_out += fd.bytes_out
            for kind, k in fd.kinds().items():
                into = t.kinds.setdefault(kind, KindTotals())
                into.calls += k.calls
                into.bytes += k.bytes
        if self.ended is not None:
            self._ended_classes = totals
        return totals


@attrs.frozen
class Leg:
    """One fd's part in a data call: sendfile has two, read has one."""

    fd: int
    direction: str  # "in" or "out"
    nbytes: int


@attrs.frozen
class LegTotals:
    """An fd's running totals right after a call, for the record."""

    fd: int
    stats: FdStats
    bytes_in: int
    bytes_out: int


@attrs.define
class Ledger:
    processes: dict[int, ProcessStats] = attrs.Factory(dict)  # the process now holding each pid
    history: list[ProcessStats] = attrs.Factory(list)  # every process of the run, in start order
    starts: dict[int, int] = attrs.Factory(dict)  # pid -> processes that have held it

    # -- processes ---------------------------------------------------------

    def process_started(self, pid: int, ppid: int, argv: list[str], when: float) -> ProcessStats:
        """A new process; a pid used before in the run keeps the old record."""
        earlier = self.starts.get(pid, 0)
        self.starts[pid] = earlier + 1
        log_name = f"{pid}-{earlier + 1}" if earlier else str(pid)
        stats = ProcessStats(pid=pid, ppid=ppid, argv=argv, started=when, log_name=log_name)
        self.processes[pid] = stats
        self.history.append(stats)
        return stats

    def process_exec(self, pid: int, argv: list[str]) -> None:
        stats = self.processes[pid]
        stats.execs.append(argv)
        stats.argv = argv

    def process_ended(self, pid: int, wait_status: int | None, when: float) -> None:
        stats = self.processes[pid]
        stats.exit_status = wait_status
        stats.ended = when
        for fd_stats in stats.open_fds.values():
            fd_stats.open = False
        stats.open_fds.clear()

    # -- descriptors -------------------------------------------------------

    def fd_opened(self, pid: int, fd: int, classification: Classification,
                  counters: Counters | None = None) -> FdStats:
        """Start the lifetime of fd in pid (its first use, or inherited).
        counters: the ones the fast path counts it in already."""
        stats = self.processes[pid]
        self.fd_closed(pid, fd)
        fd_stats = FdStats(pid=pid, fd=fd, classification=classification, counters=counters if counters is not None else Counters())
        stats.fds.append(fd_stats)
        stats.open_fds[fd] = fd_stats
        return fd_stats

    def fd_reclassified(self, pid: int, fd: int, classification: Classification) -> None:
        """Same file, fresher facts (a socket that got its peer)."""
        self.processes[pid].open_fds[fd].classification = classification

    def fd_closed(self, pid: int, fd: int) -> FdStats | None:
        fd_stats = self.processes[pid].open_fds.pop(fd, None)
        if fd_stats is not None:
            fd_stats.open = False
        return fd_stats

    def open_fd(self, pid: int, fd: int) -> FdStats | None:
        return self.processes[pid].open_fds.get(fd)

    # -- calls -------------------------------------------------------------

    def data_call(self, pid: int, kind: str, legs: list[Leg], exact: bool) -> list[LegTotals]:
        """Count one data call; legs with nbytes 0 still count the call."""
        stats = self.processes[pid]
        if not exact:
            stats.inexact_calls += 1
        totals = []
        index = KIND_INDEX[kind]
        for leg in legs:
            fd_stats = stats.open_fds[leg.fd]
            bytes_in, bytes_out = fd_stats.counters.add(index, leg.direction == "in", leg.nbytes)
            totals.append(LegTotals(leg.fd, fd_stats, bytes_in, bytes_out))
        return totals

    def refused_call(self, pid: int) -> None:
        self.processes[pid].refused_calls += 1

    # -- connections ---------------------------------------------------------

    def connections(self) -> list[Connection]:
        """Every socket that moved bytes, by inode, with the processes that moved them."""
        found: dict[tuple[int, int], Connection] = {}
        for process in self.history:
            for fd in process.fds:
                c = fd.classification
                if fd.fd_class is not FdClass.NET or not fd.calls:
                    continue
                connection = found.get(c.identity)
                if connection is None:
                    connection = found[c.identity] = Connection(c.identity[1], c.detail, c.local, c.remote)
                connection.local = c.local or connection.local
                connection.remote = c.remote or connection.remote
                connection.bytes_in += fd.bytes_in
                connection.bytes_out += fd.bytes_out
                if (fd.bytes_in or fd.bytes_out) and process.pid not in connection.pids:
                    connection.pids.append(process.pid)
        return list(found.values())
