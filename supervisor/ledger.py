"""The accounting of a run: plain data, updated by plain method calls.

Totals are kept per fd (per process, per descriptor lifetime), per class and
call kind, per process, and per connection (a socket, named by its inode,
whichever processes moved its bytes).  Nothing here touches the kernel.
"""

from __future__ import annotations

import attrs

from .classify import Classification, FdClass


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


@attrs.define
class FdStats:
    """One descriptor of one process, from its first use to its close."""

    pid: int
    fd: int
    classification: Classification
    bytes_in: int = 0
    bytes_out: int = 0
    calls: int = 0
    open: bool = True

    @property
    def fd_class(self) -> FdClass:
        return self.classification.fd_class


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
    exit_code: int | None = None  # the code given to exit_group, when one was
    ended: float | None = None
    execs: list[list[str]] = attrs.Factory(list)
    next_seq: int = 0
    inexact_calls: int = 0
    refused_calls: int = 0
    fds: list[FdStats] = attrs.Factory(list)  # every fd lifetime, in order of first use
    open_fds: dict[int, FdStats] = attrs.Factory(dict)
    classes: dict[FdClass, ClassTotals] = attrs.Factory(dict)

    def take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq


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
    connections: dict[tuple[int, int], Connection] = attrs.Factory(dict)

    # -- processes ---------------------------------------------------------

    def process_started(self, pid: int, ppid: int, argv: list[str], when: float) -> ProcessStats:
        """A new process; a pid used before in the run keeps the old record."""
        earlier = sum(1 for p in self.history if p.pid == pid)
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

    def fd_opened(self, pid: int, fd: int, classification: Classification) -> FdStats:
        """Start the lifetime of fd in pid (its first use, or inherited)."""
        stats = self.processes[pid]
        self.fd_closed(pid, fd)
        fd_stats = FdStats(pid=pid, fd=fd, classification=classification)
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
        for leg in legs:
            fd_stats = stats.open_fds[leg.fd]
            fd_stats.calls += 1
            class_totals = stats.classes.setdefault(fd_stats.fd_class, ClassTotals())
            class_totals.calls += 1
            kind_totals = class_totals.kinds.setdefault(kind, KindTotals())
            kind_totals.calls += 1
            kind_totals.bytes += leg.nbytes
            if leg.direction == "in":
                fd_stats.bytes_in += leg.nbytes
                class_totals.bytes_in += leg.nbytes
            else:
                fd_stats.bytes_out += leg.nbytes
                class_totals.bytes_out += leg.nbytes
            if fd_stats.fd_class is FdClass.NET:
                self._count_connection(pid, fd_stats, leg)
            totals.append(LegTotals(leg.fd, fd_stats, fd_stats.bytes_in, fd_stats.bytes_out))
        return totals

    def refused_call(self, pid: int) -> None:
        self.processes[pid].refused_calls += 1

    def _count_connection(self, pid: int, fd_stats: FdStats, leg: Leg) -> None:
        c = fd_stats.classification
        connection = self.connections.get(c.identity)
        if connection is None:
            connection = Connection(inode=c.identity[1], detail=c.detail, local=c.local, remote=c.remote)
            self.connections[c.identity] = connection
        # Endpoints fill in as the socket binds and connects.
        connection.local = c.local or connection.local
        connection.remote = c.remote or connection.remote
        if leg.direction == "in":
            connection.bytes_in += leg.nbytes
        else:
            connection.bytes_out += leg.nbytes
        if leg.nbytes and pid not in connection.pids:
            connection.pids.append(pid)
