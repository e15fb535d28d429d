"""The supervisor proper: receives notifications, answers them, follows
processes, and keeps blocked calls waiting without holding up the others.

Two threads share this state under one lock:
- the receiver blocks in SECCOMP_IOCTL_NOTIF_RECV and handles each call;
  a data call that would block is parked;
- the waiter sleeps in epoll on the parked calls' fds and the processes'
  pidfds, retries parked calls when their fd is ready, and every TICK checks
  them for signals (kernel-facts §2.2 steps 5-6), timeouts and death.
"""

from __future__ import annotations

import array
import collections
import errno
import fcntl
import json
import os
import select
import signal
import socket
import stat
import struct
import termios
import threading
import time

import attrs

from . import _fastpath as fastpath
from . import _kernel, kernel, pathwalk, procfs, reports, syscalls
from .classify import Classification, FdClass, FdFacts, IoMode, SocketFacts, classify, format_sockaddr, socket_detail
from .datacalls import Builder, Immediate, Passthrough
from .emulate import AcceptOp, Caller, ConnectOp, OpenFd, Operation, Scratch, WriteOp
from .kernel import ERESTARTSYS, Listener, Notification
from .ledger import Counters, Leg
from .recorder import Recorder
from .syscalls import Handling, as_int

TICK = 0.010  # how often parked calls are checked for signals (kernel-facts Q12: 10 ms)
PTRACE_WAIT_MS = 200
AT_RANDOM = 25
CLOSE_RANGE_CLOEXEC = 4
CLONE_THREAD = 0x10000
CLONE_FILES = 0x400
# Sent to the receiver thread to interrupt its blocking RECV; the main thread
# installs a handler for it (see cli), so the ioctl fails with EINTR.
WAKE_SIGNAL = signal.SIGUSR2
ALL_FDS = (0, 1 << 20)
F_OWNER_EX = struct.Struct("=ii")  # type, pid
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2
# The fast path (native/fastpath.c) takes the common data calls on fds whose
# classification is cached there.  SUPERV_FASTPATH=0 leaves every call to the
# Python engine, which is the reference (for debugging and for comparison).
FASTPATH = os.environ.get("SUPERV_FASTPATH", "1") != "0"
FAST_MODES = {
    IoMode.PIPE: fastpath.M_PIPE,
    IoMode.STREAM: fastpath.M_STREAM,
    IoMode.DATAGRAM: fastpath.M_DATAGRAM,
    IoMode.FILE: fastpath.M_FILE,
    IoMode.MEMORY_DEVICE: fastpath.M_MEMDEV,
    IoMode.PASSTHROUGH: fastpath.M_PASSTHROUGH,  # recorded without a result, run by the kernel
}
SPARE_COUNTERS = 128  # kept ready for the fds the fast path classifies
FAST_LAYOUTS = {
    syscalls.Layout.BUF: fastpath.L_BUF,
    syscalls.Layout.BUF_AT: fastpath.L_BUF_AT,
    syscalls.Layout.IOV: fastpath.L_IOV,
    syscalls.Layout.IOV_AT: fastpath.L_IOV_AT,
    syscalls.Layout.SOCK: fastpath.L_SOCK,
    syscalls.Layout.MSG: fastpath.L_MSG,
}


# A data call's direction, as policies name it.
INET_DETAILS = frozenset({"tcp", "tcp6", "udp", "udp6"})  # the socket details with addresses and ports
POLICY_DIRECTION = {syscalls.Direction.IN: "recv", syscalls.Direction.OUT: "send"}

FAST_LIFECYCLE = {
    "close": fastpath.L_CLOSE,
    "exit": fastpath.L_EXIT,
    "exit_group": fastpath.L_EXIT_GROUP,
    "shutdown": fastpath.L_SHUTDOWN,
    # calls that make fds, by where their arguments are (pending_call)
    "open": fastpath.L_OPEN_PATH0,
    "creat": fastpath.L_OPEN_PATH0,
    "openat": fastpath.L_OPEN_PATH1,
    "socket": fastpath.L_SOCKET,
    "accept": fastpath.L_ACCEPT,
    "accept4": fastpath.L_ACCEPT,
    "pipe": fastpath.L_PIPE,
    "pipe2": fastpath.L_PIPE,
    "socketpair": fastpath.L_SOCKETPAIR,
    "dup": fastpath.L_DUP,
    "fcntl": fastpath.L_FCNTL_DUPFD,  # F_DUPFD, F_DUPFD_CLOEXEC
    "dup2": fastpath.L_DUP2,
    "dup3": fastpath.L_DUP2,
    "connect": fastpath.L_CONNECT,  # IPv4 addresses; the others are formatted here
    # forks that make no thread, waits of a process without threads whose
    # children are all known: the child's pid is learnt the same way
    "fork": fastpath.L_SPAWN,
    "vfork": fastpath.L_SPAWN,
    "clone": fastpath.L_SPAWN,
    "wait4": fastpath.L_REAP,
    "waitid": fastpath.L_REAP,
}


def fast_path_table(lifecycle_names=FAST_LIFECYCLE.keys(), decided_on_address=frozenset()) -> list[tuple]:
    """The calls the fast path may take, from the one syscall table:
    (nr, layout, inward, kind index, kind index without an address, name,
    whether it may take the call with an address).
    The lifecycle calls in lifecycle_names it records and lets run, as
    on_fd_close, on_exit, on_socket_op and on_fd_new would, and tells Python
    what its view must learn (take_notes).  A datagram's sender address,
    which recvfrom and recvmsg return, decides nothing; the address of a
    send in decided_on_address does (a policy rule looks at it): Python
    decides on each."""
    rows = [(syscalls.BY_NAME[name].nr, layout, False, 0, 0, name, False) for name, layout in FAST_LIFECYCLE.items()
            if name in lifecycle_names]
    for s in syscalls.TABLE:
        if s.layout in FAST_LAYOUTS:
            inward = s.direction is syscalls.Direction.IN
            without_address = ("recv" if inward else "send") if s.layout is syscalls.Layout.SOCK else s.name
            rows.append((s.nr, FAST_LAYOUTS[s.layout], inward, syscalls.KIND_INDEX[s.name],
                         syscalls.KIND_INDEX[without_address], s.name, inward or s.name not in decided_on_address))
    return rows


class StaleProcess(Exception):
    """A notification from a pid whose earlier process we still held."""


@attrs.define(eq=False)
class Process:
    pid: int
    pidfd: int
    identity: int  # with the pid, names this process across pid reuse (kernel.process_identity)
    fds: dict[int, Classification] = attrs.Factory(dict)  # the classification cache
    # The parent's view at fork, adopted at an fd's first use if the file is
    # still the same: most inherited fds are never used by the child.
    inherited: dict[int, Classification] = attrs.Factory(dict)
    # Sockets connected or bound since they were classified: classified afresh at their next use.
    endpoints_changed: set[int] = attrs.Factory(set)
    tids: set[int] = attrs.Factory(set)
    exec_attempt: "ExecAttempt | None" = None
    exit_code: int | None = None
    launching: bool = False  # still superv's launcher: its own calls are not the target's
    # Other tasks share its fd table (threads, CLONE_FILES), or its parent's
    # did: the fast path leaves its calls that make fds to Python.
    shares_fds: bool = False
    # It made a thread, or a clone3 (whose flags another thread can change):
    # its children may be any thread's (see _children_of).
    threaded: bool = False
    # A wait reaped it before the waiter saw it end: no zombie is left to
    # tell from a new process of the same pid.
    reaped: bool = False


@attrs.define(eq=False)
class Task:
    tid: int
    process: Process
    outcome: "PendingOutcome | None" = None
    exec_decision: "tuple[frozenset[str], str] | None" = None  # for on_exec: (allowed images, rule)
    # The rule that let its data call through, counted where the call is
    # served: on_data, or else the fast path counts it itself.
    data_decided_by: str | None = None


@attrs.define
class UnixSocketFile:
    """The file a unix socket address names (see _unix_socket_file)."""

    path: str | None  # for the decision: the file reached, "@name" (abstract), or None
    used: bytes  # the struct sockaddr superv connects, sends or binds to
    reached: "pathwalk.Reached | None" = None  # what `used` holds open; for bind, the directory
    error: int = 0  # errno the program's own call would meet
    umask: int = 0o022  # the program's, for a bind's socket file

    def close(self) -> None:
        if self.reached is not None:
            self.reached.close()
            self.reached = None


@attrs.define
class PendingOutcome:
    """A continued lifecycle call whose result is learnt at the thread's next
    call, when the kernel has run it: the new fds in the fd table, the pair
    written to pipe()'s array, a socket's peer after connect()."""

    seq: int
    syscall: syscalls.Syscall
    fields: dict
    expected_fd: int | None = None  # the number the new fd gets (the picture), checked after the call
    pair_address: int = 0
    # pipe()'s array before the call, and which of the fds it named were open
    pair_before: tuple[tuple[int, int], frozenset[int]] | None = None
    spawned_before: frozenset[int] | None = None  # children, or threads for CLONE_THREAD
    new_thread: bool = False


@attrs.frozen
class ExecAttempt:
    tid: int
    path: str
    argv: list[str]
    image: bytes  # fingerprint of the running image (auxv and AT_RANDOM bytes)
    # What /proc/PID/exe may be once it ran, when a policy decided on its
    # path (the kernel reads the path again: a thread may have changed it).
    allowed_images: frozenset[str] | None = None
    decided_by: str | None = None  # the rule, for the event of a mismatch


@attrs.define(eq=False)
class Parked:
    notification: Notification
    task: Task
    op: Operation
    seq: int
    syscall: syscalls.Syscall
    kind: str
    key: object
    registered_fd: int | None = None
    restart_pending: float | None = None  # when a process-wide signal was first seen
    finished: bool = False


class Supervisor:
    def __init__(self, listener: Listener, recorder: Recorder, root_pid: int, root_argv: list[str],
                 policy=None, watchdog: socket.socket | None = None):
        self.listener = listener
        self.watchdog = watchdog  # superv-watchdog's socket: it gets a pidfd of each process (launch.start_watchdog)
        self.recorder = recorder
        self.root_pid = root_pid
        self.policy = policy  # a policy.Policy, or None: record only
        self.policy_hits: collections.Counter[str] = collections.Counter()  # rule label -> calls
        self.budgets_spent: set[int] = set()  # indexes of the budgets reported spent
        self.own_credentials: procfs.Credentials | None = None  # superv's, for the opens it makes
        if policy is not None:
            fastpath.count_rules(len(policy.rules))
        if policy is not None and policy.budgets:
            fastpath.set_budgets([(FdClass(b.fd_class).tag if b.fd_class else "", b.direction == "recv", b.limit,
                                   b.action in ("deny", "kill")) for b in policy.budgets])
        self.lock = fastpath.lock  # recursive; shared with the fast path
        self.scratch = Scratch()
        self.processes: dict[int, Process] = {}
        self.tasks: dict[int, Task] = {}
        self.epoll = select.epoll()
        self.wakeup = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.epoll.register(self.wakeup, select.EPOLLIN)
        self.queues: dict[object, collections.deque[Parked]] = {}
        self.parked_by_fd: dict[int, Parked] = {}
        self.pidfds: dict[int, Process] = {}
        self.ended: dict[int, int] = {}  # pid -> identity of the process that exited with it
        self.receiving = True
        self.fast_bookkeeping = False  # it classifies fds and takes fork children in (set when it starts)
        self.stopping = False
        self.root_status: int | None = None  # set by whoever reaps the root
        self.receiver_ident: int | None = None
        self.fast_lifecycle: frozenset[str] = frozenset()  # the lifecycle calls the fast path takes
        self.sync_wakeup = listener.set_sync_wakeup()
        self.handlers = {
            Handling.DATA: self.on_data,
            Handling.FD_NEW: self.on_fd_new,
            Handling.FD_REPLACE: self.on_fd_replace,
            Handling.FD_CLOSE: self.on_fd_close,
            Handling.SOCKET_OP: self.on_socket_op,
            Handling.EXEC: self.on_exec,
            Handling.SPAWN: self.on_spawn,
            Handling.EXIT: self.on_exit,
            Handling.REAP: self.on_reap,
            Handling.REFUSED: self.on_refused,
            Handling.SIGNAL: self.on_signal_call,
            Handling.PATH_CHANGE: self.on_path_change,
        }
        # Until its execve the root is superv's launcher: show what it will run.
        self.root = self._start_process(root_pid, launching=True, argv=root_argv)

    # ------------------------------------------------------------------ receiver

    def receive_forever(self) -> None:
        """Runs in its own thread until no traced task is left (or stop()).
        The loop itself is native (fastpath.run): it answers the calls it
        can and hands every other notification to on_notification."""
        self.receiver_ident = threading.get_ident()
        try:
            lifecycle = FAST_LIFECYCLE.keys() if FASTPATH else ()
            decided_on_address = frozenset()
            if self.policy is not None:
                from . import policy  # only with --policy: YAML and all

                lifecycle = [name for name in lifecycle if policy.leaves_alone(self.policy, name)]
                decided_on_address = frozenset(
                    name for name in policy.ADDRESS_IN_MESSAGE
                    if policy.reads_address(self.policy, name) or policy.reads_path(self.policy, name))
            self.fast_lifecycle = frozenset(lifecycle)
            fastpath.init(self.listener.fd, self.on_notification, fast_path_table(lifecycle, decided_on_address),
                          syscalls.CALL_KINDS)
            # A policy's rules, and --trace's notes on fds and processes, are Python's.
            self.fast_bookkeeping = FASTPATH and self.policy is None and self.recorder.trace is None
            # A child taken in late needs an identity its pidfd gives even once reaped.
            fastpath.set_bookkeeping(self.fast_bookkeeping, self.fast_bookkeeping and kernel.PIDFD_INODES)
            with self.lock:
                self._spare_counters()
            fastpath.run()
        except BaseException as error:  # a dead receiver must not leave the run hanging
            self.recorder.internal_error(self.root_pid, "receiver", error)
        finally:
            with self.lock:
                self.receiving = False
                self.receiver_ident = None  # its pthread_t may be reused by another thread
            self._poke_waiter()

    def on_notification(self, raw: tuple, progress: int, rest: bytes) -> None:
        """A notification the fast path left to Python; `progress` bytes of
        a write it began are already written, and `rest` are the others it
        read from the caller."""
        nid, tid, nr, arch, ip, args = raw
        with self.lock:
            try:
                self.apply_notes()
                self.handle(Notification(nid, tid, nr, arch, ip, args), progress=progress, rest=rest)
            except Exception as error:
                self._after_bug(nid, nr, self.root_pid, "handle", error)

    def apply_notes(self) -> None:
        """Learn the lifecycle calls the fast path took since (under the lock).
        A view a note drops is older than the note; an fd the fast path
        classified since (NOTE_CLASSIFIED, later in the list) stays."""
        if self.fast_bookkeeping:
            self._spare_counters()
        for what, pid, tid, value, seq, pidfd, facts in fastpath.take_notes():
            process = self.processes.get(pid)
            if what == fastpath.NOTE_SPAWNED:  # these are of the child, whether or not the parent is still known
                self._take_in_child(value, pid, pidfd)
            elif what == fastpath.NOTE_ADMITTED:
                self._take_in_child(value, pid, pidfd, admitted=True)
            elif what == fastpath.NOTE_REAPED:
                self._reaped(value)
            elif process is None:
                continue
            elif what == fastpath.NOTE_CLASSIFIED:
                self._adopt_classified(process, value, facts)
            elif what == fastpath.NOTE_CLOSE:
                self._drop_fd(process, value, seq, noted_at=seq)
            elif what == fastpath.NOTE_FD_MADE:
                self._forget_fd_view(process, value, noted_at=seq)  # a number reused: classified afresh
            elif what == fastpath.NOTE_CONNECTED:
                self._endpoints_change(process, value, noted_at=seq)
            elif what == fastpath.NOTE_EXIT_GROUP:
                process.exit_code = value
            elif what == fastpath.NOTE_THREAD_EXIT:
                self._forget_task(tid)

    def handle(self, n: Notification, retried: bool = False, progress: int = 0, rest: bytes = b"") -> None:
        spec = syscalls.BY_NR.get(n.nr)
        task = self._task_for(n.tid)
        if spec is None or task is None:
            self.listener.let_through(n.id)
            return
        process = task.process
        settled = task.outcome is not None
        if settled:
            self._settle_outcome(task)
        if process.exec_attempt is not None and not self._settle_exec(task):
            return  # killed: it ran an image its policy did not allow
        if process.launching:  # superv's launcher: its close() and execve() are not the target's
            if spec.handling is Handling.EXEC:
                self.on_exec(n, spec, task, None)
            else:
                self.listener.let_through(n.id)
            return
        try:
            if settled and spec.name in self.fast_lifecycle and self._offer_again(n):
                return  # it came to Python only for the result of the thread's call before
            if not progress and self.policy is not None and self._apply_policy(n, spec, task):
                return
            if self.policy is not None and self.policy.budgets and spec.handling is Handling.DATA and \
                    self._stop_at_budget(n, spec, task):
                return
            if not progress and self._to_fast_path(n, spec, process):
                task.data_decided_by = None  # the fast path counted it
                return
            seq = fastpath.take_seq(process.pid)
            if progress:
                self.on_data(n, spec, task, seq, progress=progress, rest=rest)
            else:
                self.handlers[spec.handling](n, spec, task, seq)
        except StaleProcess:
            # The pid was reused before the old process's exit was handled:
            # finish the old one, then this call belongs to a new process.
            self.process_exited(process, self._final_status(process))
            if not retried:
                self.handle(n, retried=True)
            else:
                self.listener.let_through(n.id)
        except Exception as error:  # a bug must not leave the target hanging
            self._after_bug(n.id, n.nr, process.pid, spec.name, error)

    def _after_bug(self, nid: int, nr: int, pid: int, where: str, error: Exception) -> None:
        """A bug must not leave the target hanging, nor, under a policy, let
        an unchecked call through: it fails with EPERM instead (but an exit,
        which cannot fail, and has nothing to check)."""
        spec = syscalls.BY_NR.get(nr)
        if self.policy is None or spec is not None and spec.handling is Handling.EXIT:
            self.recorder.internal_error(pid, where, error, "the call was let through")
            self.listener.let_through(nid)
        else:
            self.recorder.internal_error(pid, where, error, "the call failed with EPERM")
            self.listener.answer(nid, -errno.EPERM)

    # ------------------------------------------------------------------ processes

    def _task_for(self, tid: int) -> Task | None:
        task = self.tasks.get(tid)
        if task is not None:
            return task
        try:
            status = procfs.task_status(tid)
        except OSError:
            return None
        return self._add_task(tid, status.tgid, status.ppid)

    def _take_in_child(self, pid: int, ppid: int, pidfd: int = -1, admitted: bool = False) -> None:
        """A child process listed in its parent's /proc children: its main
        thread's tid is its pid, and its parent is known, so its status is
        not read (a /proc/PID/status read costs more than the rest).  Nor is
        its cmdline: not yet seen, it has made no traced call, so no execve,
        and its argv is its parent's.  pidfd: one opened when it was listed
        (the fast path's note), ours to keep or close.  admitted: the fast
        path took it in at its first call (admit), with that pidfd, and
        wrote its "fork" event."""
        if not admitted and (pid in self.tasks or pid in self.processes):
            if pidfd >= 0:  # seen already: it called
                os.close(pidfd)
            return
        argv = list(self.recorder.ledger.processes[ppid].argv)
        if self._add_task(pid, pid, ppid, argv=argv, pidfd=pidfd, admitted=admitted) is None and admitted:
            fastpath.remove_process(pid)  # gone already; its pidfd is closed

    def _add_task(self, tid: int, pid: int, ppid: int, argv: list[str] | None = None,
                  pidfd: int = -1, admitted: bool = False) -> Task | None:
        process = self.processes.get(pid)
        if process is None:
            process = self._start_process(pid, ppid=ppid, argv=argv, pidfd=pidfd, admitted=admitted)
            if process is None:
                return None
        task = Task(tid, process)
        self.tasks[tid] = task
        process.tids.add(tid)
        if tid != pid:
            self._mark_threaded(process)
        fastpath.add_task(tid, process.pid)
        return task

    def _start_process(self, pid: int, ppid: int | None = None, launching: bool = False,
                       argv: list[str] | None = None, pidfd: int = -1, admitted: bool = False) -> Process | None:
        try:
            if pidfd < 0:
                pidfd = os.pidfd_open(pid)
        except OSError:
            return None
        try:
            identity = kernel.process_identity(pid, pidfd)
            if self.ended.get(pid) == identity:
                raise ProcessLookupError  # a zombie we already saw exit, not a new process
            argv = argv or procfs.cmdline(pid)
            if ppid is None:
                ppid = procfs.task_status(pid).ppid
        except OSError:
            os.close(pidfd)
            return None
        if self.watchdog is not None:
            try:
                socket.send_fds(self.watchdog, [b"p"], [pidfd])
            except OSError as e:  # the watchdog died: say so once, go on
                self.recorder.internal_error(pid, "watchdog", e, "processes may outlive superv")
                self.watchdog = None
        process = Process(pid, pidfd, identity, launching=launching)
        self.processes[pid] = process
        self.pidfds[pidfd] = process
        self.epoll.register(pidfd, select.EPOLLIN)
        parent = self.processes.get(ppid)
        if not argv and parent is not None:
            # A zombie's cmdline is empty; a fork child had its parent's argv.
            argv = list(self.recorder.ledger.processes[parent.pid].argv)
        log_path = self.recorder.process_started(pid, ppid, argv, parent_known=parent is not None,
                                                 event=not admitted)
        fastpath.add_process(pid, pidfd, launching, log_path, reports.compact_json(argv))
        if parent is not None and parent is not process:
            self._inherit_fds(process, parent, admitted)
            if parent.shares_fds:  # CLONE_FILES is not told from here; a fork child only loses speed
                self._share_fds(process)
        return process

    @staticmethod
    def _share_fds(process: Process) -> None:
        process.shares_fds = True
        fastpath.set_fds_shared(process.pid)

    @staticmethod
    def _mark_threaded(process: Process) -> None:
        process.threaded = True
        fastpath.set_threaded(process.pid)

    def _reaped(self, child: int) -> None:
        """A wait reaped it: it is gone, whether or not the waiter saw it end
        yet, and its pid is free for a new process."""
        if child in self.processes:
            self.processes[child].reaped = True
            self._let_go_of(self.processes[child])
        self.ended.pop(child, None)
        fastpath.forget_ended(child)

    def _inherit_fds(self, child: Process, parent: Process, admitted: bool = False) -> None:
        """A fork child starts with its parent's view of its fds (see open_fd)."""
        child.inherited = {fd: c for fd, c in {**parent.inherited, **parent.fds}.items()
                           if fd not in parent.endpoints_changed}
        fastpath.picture_copy(child.pid, parent.pid, list(child.inherited), admitted)

    def _adopt_inherited(self, process: Process, fd: int, identity: tuple[int, int]) -> Classification | None:
        """The parent's classification of this fd, if it names the same file."""
        c = process.inherited.pop(fd, None)
        if c is None or c.identity != identity:
            return None
        process.fds[fd] = c
        self.recorder.fd_classified(process.pid, fd, c, inherited=True)
        return c

    def process_exited(self, process: Process, status: int | None) -> None:
        """Its pidfd became readable: every thread is gone.  status: its
        wait status (_final_status)."""
        for tid in list(process.tids):
            self._forget_task(tid)
        self._let_go_of(process)
        if not process.reaped:
            self.ended[process.pid] = process.identity
        stats = self.recorder.ledger.processes[process.pid]
        stats.calls, inexact = fastpath.process_counts(process.pid)
        stats.inexact_calls += inexact
        # Its identity lets the fast path take the wait that reaps it (L_REAP).
        fastpath.remove_process(process.pid, process.identity if kernel.PIDFD_INODES and not process.reaped else 0)
        self.epoll.unregister(process.pidfd)
        del self.pidfds[process.pidfd]
        os.close(process.pidfd)
        if self.processes.get(process.pid) is process:
            del self.processes[process.pid]
        self.recorder.process_ended(process.pid, status)

    def _let_go_of(self, process: Process) -> None:
        """The process's fds are closed (it ended, or its exit_group is under
        way): superv's copies go too, or its pipes and sockets would stay open
        behind it (the peer would see no EOF, a writer no EPIPE), and so do
        its parked calls."""
        for parked in [p for q in self.queues.values() for p in q if p.task.process is process]:
            self._abandon(parked)
        fastpath.drop_parked(process.pid)
        fastpath.drop_fds(process.pid, *ALL_FDS)

    def _exit_statuses(self, events) -> dict[Process, int | None]:
        """The wait statuses of the processes whose pidfds are among the
        events, read before the waiter takes the lock: a zombie's first
        /proc/PID/stat read costs 25 us, the instant of a reaping retries,
        and the receiver serves calls meanwhile.  A process the receiver
        let go of in between (its pidfd closed) is left out."""
        statuses = {}
        for process in filter(None, (self.pidfds.get(fd) for fd, _ in events)):
            try:
                statuses[process] = self._final_status(process)
            except OSError:
                pass
        return statuses

    def _final_status(self, process: Process) -> int | None:
        """The wait status: from the pidfd once reaped, from /proc while
        unreaped; the two may both miss for the instant of the reaping."""
        if process.pid == self.root_pid and self.root_status is not None:
            return self.root_status
        for _ in range(50):
            status = _kernel.pidfd_exit_status(process.pidfd)
            if status is None:
                status = procfs.zombie_wait_status(process.pid)
            if status is not None:
                return status
            time.sleep(0.0005)
        return None if process.exit_code is None else process.exit_code << 8

    def _forget_task(self, tid: int) -> None:
        task = self.tasks.pop(tid, None)
        if task is None:
            return
        task.process.tids.discard(tid)
        fastpath.remove_task(tid)
        outcome = task.outcome
        if outcome is not None:  # the thread never called again: no way to learn the result
            outcome.fields["outcome"] = "unknown"
            self.recorder.other_call(task.process.pid, tid, outcome.seq, outcome.syscall.name,
                                     None, None, **outcome.fields)

    # ------------------------------------------------------------------ descriptors

    def open_fd(self, process: Process, fd: int) -> OpenFd:
        """The target's fd for one call: a duplicate, classified (cached)."""
        try:
            dup = kernel.duplicate_fd(process.pidfd, fd)
        except OSError as e:
            if e.errno == errno.ESRCH:  # our pidfd names a process that is gone
                raise StaleProcess() from None
            raise Immediate(-e.errno) from None
        try:
            st = os.fstat(dup)
            identity = (st.st_dev, st.st_ino)
            c = process.fds.get(fd) or self._adopt_inherited(process, fd, identity)
            if c is None or c.identity != identity or fd in process.endpoints_changed or _endpoints_incomplete(c):
                c = self._classify(process, fd, dup, previous=c, st=st)
            flags = fcntl.fcntl(dup, fcntl.F_GETFL)
            self._offer_to_fast_path(process, fd, dup, c)
        except BaseException:
            os.close(dup)
            raise
        return OpenFd(fd, dup, c.io_mode, flags, identity)

    def _to_fast_path(self, n: Notification, spec, process: Process) -> bool:
        """A data call on an fd the fast path does not know yet: classify it
        here, then let the fast path take this very call (and park it, if it
        must wait).  True when it did."""
        if not FASTPATH or spec.layout not in FAST_LAYOUTS:
            return False
        fd = as_int(n.args[0])
        if fd < 0 or fastpath.is_cached(process.pid, fd):
            return False  # it declined the call for another reason
        try:
            dup = self.open_fd(process, fd).dup
        except (Immediate, StaleProcess):
            return False
        os.close(dup)
        if not fastpath.is_cached(process.pid, fd):
            return False
        return self._offer_again(n)

    def _offer_again(self, n: Notification) -> bool:
        """Let the fast path take this notification after all; True when it
        did.  The calls it hands back (writes it began) are finished here."""
        taken, handed_back = fastpath.handle_again((n.id, n.tid, n.nr, n.arch, n.ip, n.args))
        for (nid, tid, nr, arch, ip, args), progress, rest in handed_back:
            self.handle(Notification(nid, tid, nr, arch, ip, args), progress=progress, rest=rest)
        return taken

    def _offer_to_fast_path(self, process: Process, fd: int, dup: int, c: Classification) -> None:
        """Let the fast path take this fd's next calls, with its own copy."""
        if not FASTPATH or c.io_mode not in FAST_MODES or _endpoints_incomplete(c):
            return
        fragment = self.recorder.fd_fragment(c)
        rules = b""
        if self.policy is not None:
            hit, rules = self._policy_on_data_calls(c)
            if hit is False:
                return
            if hit is not None:  # every data call on it is logged by one rule
                fragment += f',"policy":{json.dumps(hit, separators=(",", ":"))}'
        if fastpath.is_cached(process.pid, fd):
            return
        stats = self.recorder.ledger.open_fd(process.pid, fd)
        key, peer_key = _channel_keys(c)
        fastpath.cache_fd(process.pid, fd, os.dup(dup), FAST_MODES[c.io_mode], c.fd_class is FdClass.NET,
                          c.fd_class.tag, fragment, stats.counters, key, peer_key, c.detail in ("tcp", "tcp6"),
                          rules)

    def _classify(self, process: Process, fd: int, dup: int, previous: Classification | None,
                  st: os.stat_result | None = None) -> Classification:
        c = classify(kernel.fd_facts(process.pid, fd, dup, st))
        process.fds[fd] = c
        fastpath.seen_by_python(process.pid, fd)
        process.endpoints_changed.discard(fd)
        if previous is not None and previous.identity == c.identity:
            if previous != c:
                self.recorder.fd_reclassified(process.pid, fd, c)
        else:
            self.recorder.fd_classified(process.pid, fd, c)
        return c

    def _adopt_classified(self, process: Process, fd: int, facts: tuple) -> None:
        """An fd the fast path classified at its first call (classify_here):
        Python's view of it, by Python's own rules from the facts the fast
        path saw, and the counters the fast path counts it in.  Its "fd"
        event is written already."""
        counters, mode, rdev, dev, ino, family, type_, protocol, local, remote, peer_inode = facts
        if family:
            link, socket_facts = f"socket:[{ino}]", SocketFacts(family, type_, protocol, local, remote, peer_inode or None)
        else:
            link, socket_facts = f"pipe:[{ino}]", None
        c = classify(FdFacts(link, mode, rdev, dev, ino, False, socket_facts))
        process.fds[fd] = c
        process.inherited.pop(fd, None)
        process.endpoints_changed.discard(fd)
        self.recorder.ledger.fd_opened(process.pid, fd, c, counters)

    def _spare_counters(self) -> None:
        """Counters for the fds the fast path classifies (it cannot make a
        Python object); the waiter's rounds keep some ready."""
        spare = fastpath.spare_counters()
        if spare < SPARE_COUNTERS // 2:
            fastpath.add_counters([Counters() for _ in range(SPARE_COUNTERS - spare)])

    def _forget_fd_view(self, process: Process, fd: int, noted_at: int = -1) -> None:
        """A new file on this number: whatever was cached for it is stale.
        noted_at: the number of the call whose note says so (see apply_notes)."""
        process.inherited.pop(fd, None)
        if fd in process.fds:
            self._drop_fd(process, fd, None, noted_at)
        else:
            fastpath.drop_fds(process.pid, fd, fd, noted_at)

    def _drop_fd(self, process: Process, fd: int, seq: int | None, noted_at: int = -1) -> None:
        fastpath.drop_fds(process.pid, fd, fd, noted_at)
        process.inherited.pop(fd, None)
        process.endpoints_changed.discard(fd)
        if process.fds.pop(fd, None) is not None:
            self.recorder.fd_closed(process.pid, fd, seq)

    @staticmethod
    def _endpoints_change(process: Process, fd: int, noted_at: int = -1) -> None:
        """connect, bind: the socket's ends change, when the call begins (no
        fast path for it meanwhile) and again once it is over (a view made
        in between is stale).  Classified afresh at its next use."""
        fastpath.drop_fds(process.pid, fd, fd, noted_at)
        process.inherited.pop(fd, None)
        if fd in process.fds:
            process.endpoints_changed.add(fd)

    # ------------------------------------------------------------------ policy

    def _apply_policy(self, n: Notification, spec, task: Task) -> bool:
        """The policy's decision on a call Python sees.  True when it took the
        call: denied (answered with the errno; the call never runs) or killed
        (SIGKILL to the process; the call stays unanswered and dies with it)."""
        from . import policy

        if spec.name in policy.ADDRESS_IN_MESSAGE and policy.reads_address(self.policy, spec.name):
            return False  # decided in on_data, on the copy of the address the send will use
        if spec.name in policy.OPEN_CHECKED and policy.reads_path(self.policy, spec.name) and \
                self._open_checked(n, spec, task):
            return True  # else no path can change the decision, taken below on the other facts
        if spec.handling is Handling.PATH_CHANGE:
            return False  # decided and made in on_path_change, on the files its paths reach
        if spec.name == "fcntl" and as_int(n.args[1]) == syscalls.F_SETOWN_EX:
            self._set_owner(n, spec, task)  # traced only for a guard
            return True
        if spec.name == "ioctl":
            self._terminal_signal(n, spec, task)  # TIOCSIG, traced only for a guard
            return True
        if spec.name in ("accept", "accept4") and policy.reads_address(self.policy, spec.name) and \
                self._inet_socket(task.process, as_int(spec.arg("fd", n.args))):
            self._accept(n, spec, task)  # decided on the peer, in _accepted
            return True
        # connect's address is read once, decided on, and connected to by the
        # supervisor itself: the program cannot change it in between.
        fd_class = self._classification_for_policy(task.process, as_int(n.args[0])) \
            if spec.name in ("connect", "bind") else None
        inet = fd_class is not None and fd_class.detail in INET_DETAILS
        unix = fd_class is not None and fd_class.detail.startswith("unix")
        checked = inet and policy.reads_address(self.policy, spec.name) or \
            unix and spec.name in policy.PATH_CHECKED and policy.reads_path(self.policy, spec.name)
        address = self._read_sockaddr(n, spec) if checked else None
        if isinstance(address, int):  # the address cannot be read: as the kernel would say
            self.recorder.other_call(task.process.pid, n.tid, fastpath.take_seq(task.process.pid), spec.name,
                                     f"{spec.name}({as_int(spec.arg('fd', n.args))}, ?)", address)
            self.listener.answer(n.id, address)
            return True
        exec_path = None
        if spec.handling is Handling.EXEC and policy.reads_path(self.policy, spec.name):
            exec_path = self._exec_path(n, spec, task.process)
            if exec_path is None:
                return False  # unreadable: the kernel fails it alike (EFAULT, ENOENT)
        facts = self._call_facts(n, spec, task, address)
        if exec_path is not None:
            facts = attrs.evolve(facts, path=exec_path)
        socket_file = None
        if unix and address is not None:
            socket_file = self._unix_socket_file(n, task, address, binding=spec.name == "bind")
            facts = attrs.evolve(facts, path=socket_file.path)
        decision = policy.decide(self.policy, facts)
        label = decision.label
        pid = task.process.pid
        if exec_path is not None and decision.action in ("allow", "log"):
            # The kernel reads the path again: what runs is checked once it runs.
            task.exec_decision = (_images_of(exec_path), label)
        if spec.handling is Handling.DATA and decision.action in ("allow", "log"):
            task.data_decided_by = label
        else:
            self.policy_hits[label] += 1
        if decision.action in ("allow", "log"):
            if decision.action == "log":
                self.recorder.mark_next_call(n.tid, label, "log")
            if address is None:
                return False
            if socket_file is not None and socket_file.error:
                socket_file.close()
                fields = {"fd": as_int(n.args[0]), "address": format_sockaddr(address)}
                self.recorder.other_call(pid, n.tid, fastpath.take_seq(pid), spec.name, None,
                                         -socket_file.error, **fields)
                self.listener.answer(n.id, -socket_file.error)
            elif spec.name == "bind":
                self._bind(n, spec, task, address, socket_file, label)
            else:
                self._connect(n, spec, task, address, socket_file)
            return True
        fields = None
        if address is not None:  # what was decided on
            fields = {"fd": as_int(n.args[0]), "address": format_sockaddr(address)}
        if socket_file is not None:
            fields["file"] = socket_file.path
            socket_file.close()
        self._refuse(n, spec, task, fastpath.take_seq(pid), decision.action, decision.errno, label, fields)
        return True

    def _set_owner(self, n: Notification, spec, task: Task) -> None:
        """fcntl(F_SETOWN_EX): decided on the supervisor's copy of its struct
        f_owner_ex (a signal owner of superv's is refused), and made on the
        supervisor's duplicate of the fd with that copy."""
        from . import policy

        pid, fd = task.process.pid, as_int(n.args[0])
        seq = fastpath.take_seq(pid)
        fields = {"fd": fd, "cmd": "F_SETOWN_EX"}
        try:
            owner = kernel.read_memory(n.tid, n.args[2], F_OWNER_EX.size)
        except OSError:
            result = -errno.EFAULT
        else:
            kind, target = F_OWNER_EX.unpack(owner)
            fields.update(owner_type=kind, owner=target)
            ours = {F_OWNER_TID: self._supervisor_ids(), F_OWNER_PID: {os.getpid()}, F_OWNER_PGRP: {os.getpgrp()}}
            facts = policy.CallFacts(spec.name, at_supervisor=target in ours.get(kind, set()))
            if self._refused(n, spec, task, seq, fields, policy.decide(self.policy, facts)):
                return
            result = self._acting_for(n.tid, pid, creates=False)  # the owner keeps the setter's credentials
            if result >= 0:
                try:
                    dup = kernel.duplicate_fd(task.process.pidfd, fd)
                except OSError:
                    result = -errno.EBADF
                else:
                    try:
                        fcntl.fcntl(dup, syscalls.F_SETOWN_EX, owner)
                        result = 0
                    except OSError as e:
                        result = -e.errno
                    finally:
                        os.close(dup)
        self.recorder.other_call(pid, n.tid, seq, spec.name, None, result, **fields)
        self.listener.answer(n.id, result)

    def _terminal_signal(self, n: Notification, spec, task: Task) -> None:
        """ioctl(TIOCSIG) on a pty master signals its terminal's foreground
        process group: refused when that group is superv's.  Made on the
        supervisor's duplicate of the fd it decided on."""
        from . import policy

        pid, fd, sig = task.process.pid, as_int(n.args[0]), as_int(n.args[2])
        seq = fastpath.take_seq(pid)
        fields = {"fd": fd, "cmd": "TIOCSIG", "sig": sig}
        try:
            dup = kernel.duplicate_fd(task.process.pidfd, fd)
        except OSError:
            self.recorder.other_call(pid, n.tid, seq, spec.name, None, -errno.EBADF, **fields)
            self.listener.answer(n.id, -errno.EBADF)
            return
        try:
            try:
                foreground = struct.unpack("=i", fcntl.ioctl(dup, termios.TIOCGPGRP, bytes(4)))[0]
            except OSError:
                foreground = None  # not a terminal: TIOCSIG fails below as it would natively
            facts = policy.CallFacts(spec.name, at_supervisor=foreground == os.getpgrp())
            if self._refused(n, spec, task, seq, fields, policy.decide(self.policy, facts)):
                return
            try:
                fcntl.ioctl(dup, syscalls.TIOCSIG, sig)
                result = 0
            except OSError as e:
                result = -e.errno
        finally:
            os.close(dup)
        self.recorder.other_call(pid, n.tid, seq, spec.name, None, result, **fields)
        self.listener.answer(n.id, result)

    def _unix_socket_file(self, n: Notification, task: Task, address: bytes, binding: bool = False) -> UnixSocketFile:
        """The file a unix socket address names, found as the program's own
        call would find it (pathwalk).  connect and sends use another
        address, /proc/self/fd/N of the pinned socket file; a bind keeps the
        program's (its socket's name) and is checked once made (_bind).  An
        abstract or unnamed address is used as it is."""
        if len(address) <= 2 or address[2] == 0:
            return UnixSocketFile(format_sockaddr(address), address)
        request = pathwalk.OpenRequest(pathwalk.AT_FDCWD, address[2:].split(b"\0", 1)[0], 0, 0)
        try:
            reached = pathwalk.reach(n.tid, task.process.pid, task.process.pidfd, request)
        except OSError as e:
            return UnixSocketFile(pathwalk.lexical_path(n.tid, request), address, error=e.errno)
        if binding:
            umask = self._acting_for(n.tid, task.process.pid, creates=True)
            error = errno.EADDRINUSE if reached.pinned is not None else max(-umask, 0)
            return UnixSocketFile(reached.path, address, reached, error, max(umask, 0))
        used = address[:2] + f"/proc/self/fd/{reached.pinned}".encode() + b"\0"
        if reached.pinned is None:
            error = errno.ENOENT
        elif not stat.S_ISSOCK(os.fstat(reached.pinned).st_mode):
            error = errno.ECONNREFUSED
        else:
            error = max(-self._acting_for(n.tid, task.process.pid, creates=False), 0)
        return UnixSocketFile(reached.path, used, reached, error)

    def _open_checked(self, n: Notification, spec, task: Task) -> bool:
        """An open whose path some rule reads: the supervisor walks the path
        as the program would, decides on the file it reaches, opens that
        very file and installs it in the program (ADDFD|SEND).  False when
        no path can change the decision: the kernel then opens as usual."""
        from . import policy

        request = _open_request(n, spec)
        writing = isinstance(request, pathwalk.OpenRequest) and pathwalk.writes(request.flags)
        facts = policy.CallFacts(spec.name, direction="send" if writing else "recv")
        # open/openat/creat keep their flags in registers, which the program
        # cannot change; openat2's are in memory, read once here.
        if spec.name != "openat2" and not policy.path_matters(self.policy, facts):
            return False
        seq = fastpath.take_seq(task.process.pid)
        if isinstance(request, int):  # the arguments cannot be read: as the kernel would say
            self._open_answered(n, spec, task, seq, {}, request)
            return True
        fields = {"path": os.fsdecode(request.path)}
        for _ in range(3):  # a file to create that appears meanwhile: walk again
            try:
                self._open_walked(n, spec, task, seq, fields, request, facts)
                return True
            except pathwalk.Replaced:
                continue
        self._open_answered(n, spec, task, seq, fields, -errno.EAGAIN)
        return True

    def _open_walked(self, n: Notification, spec, task: Task, seq: int, fields: dict, request, facts) -> None:
        """One walk, decision and open, the call answered; pathwalk.Replaced
        to walk again."""
        from . import policy

        process = task.process
        try:
            reached = pathwalk.reach(n.tid, process.pid, process.pidfd, request)
        except OSError as e:  # the program's own open would fail in the lookup
            lexical = pathwalk.lexical_path(n.tid, request)
            decision = policy.decide(self.policy, attrs.evolve(facts, path=lexical, fd_class=FdClass.DISK.value))
            if not self._refused(n, spec, task, seq, fields, decision):
                self._open_answered(n, spec, task, seq, fields, -e.errno)
            return
        try:
            fields["file"] = reached.path
            facts = self._reached_facts(facts, reached, opening=True)
            if self._refused(n, spec, task, seq, fields, policy.decide(self.policy, facts)):
                return
            refusal = self._open_refusal(n.tid, reached, process.pid, facts.at_supervisor,
                                         creates=bool(request.flags & (os.O_CREAT | pathwalk.O_TMPFILE)))
            if refusal:
                self._open_answered(n, spec, task, seq, fields, -refusal)
            elif request.flags & os.O_PATH:
                self._open_path_only(n, spec, task, seq, fields)
            elif pathwalk.blocks_on_open(reached, request.flags):
                # A FIFO waits for its other end, maybe a traced process: not here.
                waiting, reached = reached, None
                threading.Thread(target=self._open_fifo, args=(n, spec, task, seq, fields, waiting, request),
                                 name="superv-fifo-open", daemon=True).start()
            else:
                self._open_and_install(n, spec, task, seq, fields, reached, request)
        finally:
            if reached is not None:
                reached.close()

    def _reached_facts(self, facts, reached: pathwalk.Reached, opening: bool):
        """A call's facts with the file its path reached: its path, its class
        (disk for one yet to be made), and whether it is superv's own /proc
        file.  An open of superv's /proc directories below /proc/PID is not:
        they only list names (/proc/PID itself is, a pidfd for
        pidfd_send_signal); a change made to one is."""
        file = pathwalk.file_facts(reached)
        proc_pid = pathwalk.proc_pid(reached)
        at_supervisor = proc_pid is not None and proc_pid in self._supervisor_ids() and not (
            opening and file is not None and stat.S_ISDIR(file.mode) and reached.path != f"/proc/{proc_pid}")
        return attrs.evolve(facts, path=reached.path, at_supervisor=at_supervisor,
                            fd_class=classify(file).fd_class.value if file else FdClass.DISK.value)

    def _open_path_only(self, n: Notification, spec, task: Task, seq: int, fields: dict) -> None:
        """O_PATH: ADDFD cannot install such a file (the kernel's fget()
        refuses it), so the kernel opens it again.  An O_PATH fd reads and
        writes nothing; opening through it (/proc/self/fd/N, openat) is
        another open, walked and decided afresh.  openat2's flags are in
        memory, where they could become a write after this check: refused."""
        if spec.name == "openat2":
            self.recorder.note(task.process.pid, "openat2 with O_PATH refused: its flags could change after the "
                                                 "check (use openat)")
            self._open_answered(n, spec, task, seq, fields, -errno.EACCES)
            return
        outcome = PendingOutcome(seq, spec, dict(fields))
        try:
            outcome.expected_fd = self._next_fd(task.process, 0)
        except OSError:
            pass
        self._expect(task, outcome)
        self.listener.let_through(n.id)

    def _refused(self, n: Notification, spec, task: Task, seq: int, fields: dict, decision) -> bool:
        """For a call the supervisor makes itself: refuse it when the decision
        says so (True), mark a logged one, count it either way."""
        self.policy_hits[decision.label] += 1
        if decision.action == "log":
            self.recorder.mark_next_call(n.tid, decision.label, "log")
        elif decision.action in ("deny", "kill"):
            self._refuse(n, spec, task, seq, decision.action, decision.errno, decision.label, fields)
            return True
        return False

    def _open_refusal(self, tid: int, reached, pid: int, at_supervisor: bool, creates: bool) -> int:
        """An errno when superv must not make this open for the program: it
        would open it with rights the program does not have.  Sets the
        umask of a creation."""
        if at_supervisor or pathwalk.procfs_needs_attach(reached, pid):
            return errno.EACCES
        umask = self._acting_for(tid, pid, creates)
        if umask < 0:
            return -umask
        reached.umask = umask
        return 0

    def _acting_for(self, tid: int, pid: int, creates: bool) -> int:
        """Before superv makes a file system call for the program with its
        own credentials: the program's umask (0o022 when nothing is
        created), or -EACCES when their credentials differ (noted)."""
        if self.own_credentials is None:
            self.own_credentials = attrs.evolve(procfs.credentials("thread-self"), umask=0)
        # Without capabilities superv's user cannot have changed its
        # program's credentials (no_new_privs: no set-user-ID either).
        privileged = int(self.own_credentials.capabilities, 16) != 0
        if not (privileged or creates):
            return 0o022
        try:
            theirs = procfs.credentials(tid)
        except OSError:
            return -errno.ESRCH
        if privileged and attrs.evolve(theirs, umask=0) != self.own_credentials:
            self.recorder.note(pid, f"refused: the program's credentials ({theirs.uids}) are not superv's, "
                                    "which would make the call")
            return -errno.EACCES
        return theirs.umask

    def _open_and_install(self, n: Notification, spec, task: Task, seq: int, fields: dict, reached,
                          request) -> None:
        """Open the reached file and install it in the program.  The install
        and the record are made under the lock: the program, released by
        the install, has its next call served after its open is recorded."""
        try:
            ours = pathwalk.open_reached(reached, request.flags, request.mode)
        except OSError as e:
            ours, result = None, -e.errno
        with self.lock:
            if ours is not None:
                try:
                    result = self.listener.install_fd_as_answer(n.id, ours, bool(request.flags & os.O_CLOEXEC))
                except OSError as e:  # EMFILE: the program's own fd limit
                    result = -e.errno
                finally:
                    os.close(ours)
            self._open_answered(n, spec, task, seq, fields, result, installed=ours is not None)

    def _open_fifo(self, n: Notification, spec, task: Task, seq: int, fields: dict, reached, request) -> None:
        """A thread's work: open a FIFO, which waits for its other end."""
        try:
            self._open_and_install(n, spec, task, seq, fields, reached, request)
        finally:
            reached.close()

    def _open_answered(self, n: Notification, spec, task: Task, seq: int, fields: dict, result: int | None,
                       installed: bool = False) -> None:
        """Record a checked open (answering it, unless ADDFD|SEND already did)."""
        process = task.process
        if result is None:
            return  # the program died meanwhile
        if not installed or result < 0:
            self.listener.answer(n.id, result)
        if result >= 0:
            self._forget_fd_view(process, result)
            self._fd_made(process, result)
        self.recorder.other_call(process.pid, n.tid, seq, spec.name, None, result, **fields)

    @staticmethod
    def _supervisor_ids() -> set[int]:
        """superv's pid and its threads' ids."""
        return procfs.thread_ids("self")

    def _refuse(self, n: Notification, spec, task: Task, seq: int, action: str, error: int | None,
                label: str, fields: dict | None = None) -> None:
        """deny: answered with -error, the call never runs; kill: SIGKILL to
        the process, the call stays unanswered and dies with it.  fields:
        what the record says of the call's arguments."""
        pid = task.process.pid
        if action == "deny":
            self.recorder.policy_hit(pid, n.tid, seq, spec.name, label, "deny", result=-error, **(fields or {}))
            self.listener.answer(n.id, -error)
            return
        self.recorder.policy_hit(pid, n.tid, seq, spec.name, label, "kill", **(fields or {}))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _budget_matches(self, budget, fd_class: str | None, direction: str | None) -> bool:
        return budget.direction == direction and budget.fd_class in (None, fd_class)

    def _stop_at_budget(self, n: Notification, spec, task: Task) -> bool:
        """A data call that a spent deny/kill budget stops.  True when stopped."""
        direction = POLICY_DIRECTION.get(spec.direction)
        c = self._classification_for_policy(task.process, as_int(n.args[0]))
        fd_class = c.fd_class.value if c is not None else None
        for budget, spent in zip(self.policy.budgets, self.report_spent_budgets()):
            if budget.action in ("deny", "kill") and spent >= budget.limit and \
                    self._budget_matches(budget, fd_class, direction):
                self.policy_hits[budget.label] += 1
                self._refuse(n, spec, task, fastpath.take_seq(task.process.pid), budget.action, budget.errno,
                             budget.label)
                return True
        return False

    def _spend(self, process: Process, legs) -> None:
        """What a call Python made moved, spent from the budgets it matches."""
        for leg in legs:
            c = process.fds.get(leg.fd)
            if c is None or leg.nbytes <= 0:
                continue
            direction = POLICY_DIRECTION[syscalls.Direction(leg.direction)]
            for index, budget in enumerate(self.policy.budgets):
                if self._budget_matches(budget, c.fd_class.value, direction):
                    fastpath.budget_spend(index, leg.nbytes)

    def report_spent_budgets(self) -> list[int]:
        """A "budget" event, once, for each budget the run has spent; returns
        the bytes spent, per budget."""
        totals = fastpath.budget_totals()
        for index, (budget, spent) in enumerate(zip(self.policy.budgets, totals)):
            if spent >= budget.limit and index not in self.budgets_spent:
                self.budgets_spent.add(index)
                self.recorder.budget_spent(self.root_pid, budget.label, budget.fd_class, budget.direction,
                                           budget.limit, spent, budget.action)
        return totals

    def _decide_send(self, n: Notification, spec, task: Task, op: Operation):
        """A send decided on the address it will use, our copy (or the
        socket's remote end without one): (the Decision when it refuses,
        else None; the errno the program's own send would meet, else 0).
        A unix socket path is found and pinned as for connect, and the send
        goes through the pin.  A logged send's record carries the hit."""
        from . import policy

        address = op.sink.name if isinstance(op, WriteOp) else None
        facts = self._call_facts(n, spec, task, address)
        error, pinned_address = 0, None
        if address is not None and len(address) > 2 and address[2] != 0 and \
                struct.unpack_from("=H", address)[0] == socket.AF_UNIX and policy.reads_path(self.policy, spec.name):
            socket_file = self._unix_socket_file(n, task, address)
            facts, error = attrs.evolve(facts, path=socket_file.path), socket_file.error
            pinned_address = socket_file.used
            if socket_file.reached is not None:  # the op holds the pin until it is done
                op.local_fds += [fd for fd in (socket_file.reached.parent, socket_file.reached.pinned) if fd is not None]
        decision = policy.decide(self.policy, facts)
        self.policy_hits[decision.label] += 1
        if decision.action == "log":
            self.recorder.mark_next_call(n.tid, decision.label, "log")
        if decision.action in ("deny", "kill"):
            return decision, 0
        if pinned_address is not None and not error:
            op.sink.name = pinned_address
        return None, error

    def _policy_on_message(self, n: Notification, spec, task: Task, part: Operation) -> int | None:
        """One message of a sendmmsg: -errno stops the call before it, which
        then returns the count of those sent (kill: the process dies first)."""
        refused, error = self._decide_send(n, spec, task, part)
        if refused is None:
            return -error if error else None
        self.recorder.mark_next_call(n.tid, refused.label, refused.action)
        if refused.action == "kill":
            self._send_signal(n.tid, task.process.pid, signal.SIGKILL)
            return -errno.EPERM  # never seen: the process dies
        return -refused.errno

    def _policy_on_send(self, n: Notification, spec, task: Task, seq: int, op: Operation) -> bool:
        """sendto/sendmsg: True when refused or failed (answered here)."""
        refused, error = self._decide_send(n, spec, task, op)
        if refused is None and not error:
            return False
        op.release()
        if refused is not None:
            fields = {"address": format_sockaddr(op.sink.name)} if isinstance(op, WriteOp) and op.sink.name else None
            self._refuse(n, spec, task, seq, refused.action, refused.errno, refused.label, fields)
            return True
        kind = syscalls.call_kind(spec, n.args)
        self.recorder.data_call(task.process.pid, n.tid, seq, spec, n.args, kind, None, -error, True)
        self.listener.answer(n.id, -error)
        return True

    def _call_facts(self, n: Notification, spec, task: Task, address: bytes | None = None):
        """What a decision looks at: the call, its direction, the fd it names
        (classified here if new) or, for socket(), the kind of socket its
        arguments ask for; and the address, when the supervisor read its own
        copy (connect), else the fd's remote end."""
        from . import policy

        if spec.handling is Handling.SIGNAL:  # tkill, pidfd_open(PIDFD_THREAD): a tid, maybe one of ours
            return policy.CallFacts(spec.name, at_supervisor=as_int(n.args[0]) in self._supervisor_ids())
        direction = POLICY_DIRECTION.get(spec.direction)
        if "flags" in spec.args and spec.name in ("open", "openat") or spec.name == "creat":
            writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
            direction = "send" if spec.name == "creat" or spec.arg("flags", n.args) & writing else "recv"
        if spec.name in ("socket", "socketpair"):
            domain, kind, protocol = (as_int(v) for v in n.args[:3])
            family = socket_detail(SocketFacts(domain, kind & 0xF, protocol, b"", None))
            return policy.CallFacts(spec.name, FdClass.NET.value, family, direction=direction)
        if "fd" not in spec.args or spec.handling is Handling.FD_CLOSE:
            c = None
        else:
            c = self._classification_for_policy(task.process, as_int(spec.arg("fd", n.args)))
        if c is None:
            return policy.CallFacts(spec.name, direction=direction)
        return _fd_facts(spec.name, direction, c, format_sockaddr(address) if address is not None else c.remote)

    @staticmethod
    def _exec_path(n: Notification, spec, process: Process) -> str | None:
        """The supervisor's copy of an exec's path, made absolute against the
        program's working directory (or execveat's directory fd)."""
        try:
            path = kernel.read_string(n.tid, spec.arg("path", n.args)).decode("utf-8", "surrogateescape")
            if not path.startswith("/"):
                dirfd = as_int(spec.arg("dirfd", n.args)) if "dirfd" in spec.args else -100  # AT_FDCWD
                base = procfs.fd_link(process.pid, dirfd) if dirfd != -100 else os.readlink(f"/proc/{process.pid}/cwd")
                path = os.path.join(base, path)
        except OSError:
            return None
        return os.path.normpath(path)

    def _inet_socket(self, process: Process, fd: int) -> bool:
        c = self._classification_for_policy(process, fd)
        return c is not None and c.detail in INET_DETAILS

    @staticmethod
    def _read_sockaddr(n: Notification, spec) -> bytes | int:
        """The supervisor's copy of a call's struct sockaddr, or -errno as the
        kernel's move_addr_to_kernel() would give it."""
        length = as_int(spec.arg("addrlen", n.args))
        if length < 0 or length > 128:  # sizeof(struct sockaddr_storage)
            return -errno.EINVAL
        try:
            return kernel.read_memory(n.tid, spec.arg("addr", n.args), length)
        except OSError:
            return -errno.EFAULT

    def _bind(self, n: Notification, spec, task: Task, address: bytes, socket_file: UnixSocketFile | None = None,
              decided_by: str = "default") -> None:
        """bind() made here on the program's socket, with our copy: it never
        waits.  A unix socket path is bound from the program's working
        directory, with its umask, under the program's own name; the file
        it made must then be the one decided on, in the directory held since
        the decision, or the process is killed (a path changed meanwhile)."""
        process = task.process
        fd = as_int(spec.arg("fd", n.args))
        seq = fastpath.take_seq(process.pid)
        self._endpoints_change(process, fd)
        fields = {"fd": fd, "address": format_sockaddr(address)}
        in_file_system = socket_file is not None and socket_file.reached is not None
        try:
            dup = kernel.duplicate_fd(process.pidfd, fd)
        except OSError as e:  # EBADF: not an fd of the program's
            result = -e.errno
        else:
            try:
                if not in_file_system:
                    result = _kernel.bind_raw(dup, address)
                else:
                    fields["file"] = socket_file.path
                    cwd = os.open(f"/proc/{n.tid}/cwd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                    try:
                        result = _kernel.bind_as(dup, address, cwd, socket_file.umask)
                    finally:
                        os.close(cwd)
                    if result == 0 and not _bound_in(dup, socket_file.reached):
                        self.recorder.note(process.pid, f"bind made {fields['address']} elsewhere than "
                                                        f"{socket_file.path}, which was decided on")
                        self._refuse(n, spec, task, seq, "kill", None, decided_by, fields)
                        return
            finally:
                os.close(dup)
                if socket_file is not None:
                    socket_file.close()
        self._endpoints_change(process, fd)
        self.recorder.other_call(process.pid, n.tid, seq, spec.name, None, result, **fields)
        self.listener.answer(n.id, result)

    def _connect(self, n: Notification, spec, task: Task, address: bytes, socket_file=None) -> None:
        """connect() made here on the program's socket, with our copy (a unix
        socket: to the file it names, socket_file)."""
        process = task.process
        fd = as_int(spec.arg("fd", n.args))
        seq = fastpath.take_seq(process.pid)
        self._endpoints_change(process, fd)
        try:
            opened = self.open_fd(process, fd)
        except Immediate as answer:
            if socket_file is not None:
                socket_file.close()
            self.recorder.other_call(process.pid, n.tid, seq, spec.name, f"connect({fd}, ?)", answer.value, fd=fd)
            self.listener.answer(n.id, answer.value)
            return
        op = ConnectOp(opened, address, socket_file)
        self._run(Parked(n, task, op, seq, spec, spec.name, op.order_key()))

    def _accept(self, n: Notification, spec, task: Task) -> None:
        """accept() made here on the program's listening socket: the peer is
        decided on before the program sees the connection."""
        process = task.process
        fd = as_int(spec.arg("fd", n.args))
        seq = fastpath.take_seq(process.pid)
        flags = spec.arg("flags", n.args) & 0xFFFFFFFF if "flags" in spec.args else 0
        try:
            if flags & ~(socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC):
                raise Immediate(-errno.EINVAL)
            opened = self.open_fd(process, fd)
        except Immediate as answer:
            self.recorder.other_call(process.pid, n.tid, seq, spec.name, f"{spec.name}({fd}, ...)", answer.value,
                                     fd=fd)
            self.listener.answer(n.id, answer.value)
            return
        op = AcceptOp(opened, flags)
        self._run(Parked(n, task, op, seq, spec, spec.name, op.order_key()))

    def _accepted(self, parked: Parked, result: int, interrupted: bool) -> None:
        """An accept made here is over: decide on the peer, then give the
        program the connection (the peer's address where it asked, then the
        socket, with ADDFD|SEND), or refuse it (the connection is closed)."""
        from . import policy

        op, n, task, spec = parked.op, parked.notification, parked.task, parked.syscall
        pid = task.process.pid
        fields = {"fd": op.fd.fd}
        if result < 0:
            self.recorder.other_call(pid, n.tid, parked.seq, spec.name, None,
                                     None if interrupted else result, **fields,
                                     **({"interrupted": True} if interrupted else {}))
            self.listener.answer(n.id, result)
            return
        connection = result
        try:
            fields["address"] = format_sockaddr(op.peer)
            decision = policy.decide(self.policy, self._call_facts(n, spec, task, op.peer))
            if self._refused(n, spec, task, parked.seq, fields, decision):
                return
            result = _give_peer_address(n, spec, op.peer)
            if result == 0:
                try:
                    result = self.listener.install_fd_as_answer(n.id, connection, bool(op.flags & os.O_CLOEXEC))
                except OSError as e:  # EMFILE: the program's own fd limit
                    result = -e.errno
                if result is None:
                    return  # the program died meanwhile
            if result < 0:
                self.listener.answer(n.id, result)
            else:
                self._forget_fd_view(task.process, result)
                self._fd_made(task.process, result)
            self.recorder.other_call(pid, n.tid, parked.seq, spec.name, None, result, **fields)
        finally:
            os.close(connection)

    def _classification_for_policy(self, process: Process, fd: int) -> Classification | None:
        if fd < 0:
            return None
        c = process.fds.get(fd)
        if c is not None:
            return c
        try:
            os.close(self.open_fd(process, fd).dup)
        except (Immediate, StaleProcess):
            return None  # a bad fd: the call fails by itself
        return process.fds.get(fd)

    def _policy_on_data_calls(self, c: Classification) -> tuple[dict | bool | None, bytes]:
        """The fast path does not consult the policy: it may take an fd's data
        calls when the policy allows every one of them (None), or logs every
        one by the same rule (the hit its records carry); False otherwise.
        With it, the rule deciding each call kind, for the counts (an array
        of int16 by syscalls.KIND_INDEX: 0 the default, else rule index + 1)."""
        from . import policy

        outcomes = set()
        rules = array.array("h", bytes(2 * len(syscalls.CALL_KINDS)))
        for s in syscalls.TABLE:
            if s.layout in FAST_LAYOUTS:
                decision = policy.decide(self.policy, _fd_facts(s.name, POLICY_DIRECTION[s.direction], c, c.remote))
                outcomes.add(None if decision.action == "allow" else (decision.action, decision.label))
                for kind in (s.name, "recv" if s.direction is syscalls.Direction.IN else "send"):
                    if kind == s.name or s.layout is syscalls.Layout.SOCK:
                        rules[syscalls.KIND_INDEX[kind]] = policy.rule_index(self.policy, decision)
        if len(outcomes) != 1:
            return False, b""
        [outcome] = outcomes
        if outcome is None:
            return None, rules.tobytes()
        action, label = outcome
        return ({"rule": label, "action": "log"} if action == "log" else False), rules.tobytes()

    def rule_counts(self) -> collections.Counter[str]:
        """The calls each rule (by label) and the default decided, in Python
        and in the fast path."""
        counts = collections.Counter(self.policy_hits)
        labels = ["default"] + [rule.label for rule in self.policy.rules]
        for label, calls in zip(labels, fastpath.rule_totals()):
            counts[label] += calls
        return counts

    # ------------------------------------------------------------------ data calls

    def on_data(self, n: Notification, spec, task: Task, seq: int, progress: int = 0, rest: bytes = b"") -> None:
        if task.data_decided_by is not None:
            self.policy_hits[task.data_decided_by] += 1
            task.data_decided_by = None
        process = task.process
        kind = syscalls.call_kind(spec, n.args)
        caller = Caller(n.tid, process.pid, n.id, self.listener)
        builder = Builder(spec, n.args, caller, process.pidfd, lambda fd: self.open_fd(process, fd), self.scratch)
        try:
            op = builder.build()
        except Immediate as answer:
            # Begun by the fast path, then its fd or arguments went bad: what was written stands.
            value = progress or answer.value
            legs = None
            fd = as_int(n.args[0])
            if value != -errno.EBADF and fd in process.fds:
                legs = [Leg(fd, "in" if spec.direction is syscalls.Direction.IN else "out", max(value, 0))]
            self.recorder.data_call(process.pid, n.tid, seq, spec, n.args, kind, legs, value, True)
            self.listener.answer(n.id, value)
            return
        except Passthrough as passthrough:
            direction = "in" if spec.direction is syscalls.Direction.IN else "out"
            legs = [Leg(fd, direction, 0) for fd in passthrough.fds]
            self.recorder.data_call(process.pid, n.tid, seq, spec, n.args, kind, legs, None, False)
            self.listener.let_through(n.id)
            return
        if self.policy is not None and spec.name in ("sendto", "sendmsg") and self._policy_on_send(n, spec, task, seq, op):
            return
        if self.policy is not None and spec.name == "sendmmsg":
            op.check = lambda part: self._policy_on_message(n, spec, task, part)
        if progress:
            op.already_written(progress, rest)  # the fast path began this write
        parked = Parked(n, task, op, seq, spec, kind, op.order_key())
        queue = self.queues.get(parked.key)
        if op.blocking and queue:
            queue.append(parked)  # a blocked call on the same file came first
            self._arm_timeout(op)
            self._poke_waiter()
            return
        self._run(parked)

    def _run(self, parked: Parked) -> bool:
        """Attempt; complete or (re)park.  True when completed."""
        result = parked.op.attempt()
        if result is None:
            self._park(parked)
            return False
        self._complete(parked, result)
        return True

    def _complete(self, parked: Parked, result: int) -> None:
        op, n = parked.op, parked.notification
        parked.finished = True
        self._unpark(parked)
        if op.sigpipe:
            self._send_signal(n.tid, parked.task.process.pid, signal.SIGPIPE)
        op.release()  # before the answer: the target may close the fd next
        # A restart code is not what the program sees: it gets EINTR, or the
        # call runs again (SA_RESTART) as a new notification, recorded then.
        interrupted = -516 <= result <= -ERESTARTSYS
        if isinstance(op, AcceptOp):
            self._accepted(parked, result, interrupted)
            return
        if isinstance(op, ConnectOp):
            self._endpoints_change(parked.task.process, op.fd.fd)
            fields = {"fd": op.fd.fd, "address": format_sockaddr(op.address)}
            if op.socket_file is not None:
                fields["file"] = op.socket_file.path
            self.recorder.other_call(parked.task.process.pid, n.tid, parked.seq, parked.syscall.name,
                                     reports.lifecycle_text(parked.syscall.name, fields), None if interrupted else result,
                                     **fields, **({"interrupted": True} if interrupted else {}))
        else:
            legs = op.legs(result)
            self.recorder.data_call(
                parked.task.process.pid, n.tid, parked.seq, parked.syscall, n.args, parked.kind,
                legs, None if interrupted else result, True, interrupted=interrupted,
            )
            if self.policy is not None and self.policy.budgets and not interrupted:
                self._spend(parked.task.process, legs)
        self.listener.answer(n.id, result)

    def _send_signal(self, tid: int, tgid: int, sig: int) -> None:
        try:
            _kernel.tgkill(tgid, tid, sig)
        except OSError:
            pass

    # ------------------------------------------------------------------ parking

    def _park(self, parked: Parked) -> None:
        queue = self.queues.setdefault(parked.key, collections.deque())
        if parked not in queue:
            queue.append(parked)
            if parked.op.deadline is None:
                self._arm_timeout(parked.op)
        fd, events = parked.op.wait
        if parked.registered_fd is not None and parked.registered_fd != fd:
            self._unregister(parked)
        if parked.registered_fd is None:
            self.epoll.register(fd, events | select.EPOLLONESHOT)
            parked.registered_fd = fd
            self.parked_by_fd[fd] = parked
        else:
            self.epoll.modify(fd, events | select.EPOLLONESHOT)
        self._poke_waiter()

    def _arm_timeout(self, op: Operation) -> None:
        option = op.timeout_option()
        if option is None or option[0].mode not in (IoMode.STREAM, IoMode.DATAGRAM):
            return
        f, name = option
        s = socket.socket(fileno=f.dup)
        try:
            raw = s.getsockopt(socket.SOL_SOCKET, name, 16)
        finally:
            s.detach()
        seconds, microseconds = struct.unpack("=qq", raw)
        if seconds or microseconds:
            op.timeout_set = True
            op.deadline = time.monotonic() + seconds + microseconds / 1e6

    def _unregister(self, parked: Parked) -> None:
        if parked.registered_fd is not None:
            try:
                self.epoll.unregister(parked.registered_fd)
            except OSError:
                pass
            self.parked_by_fd.pop(parked.registered_fd, None)
            parked.registered_fd = None

    def _unpark(self, parked: Parked) -> None:
        self._unregister(parked)
        queue = self.queues.get(parked.key)
        if queue and parked in queue:
            was_head = queue[0] is parked
            queue.remove(parked)
            if not queue:
                del self.queues[parked.key]
            elif was_head:
                self._advance(parked.key)

    def _advance(self, key) -> None:
        """The head of a queue left: let the next call try."""
        queue = self.queues.get(key)
        if queue:
            head = queue[0]
            if head.registered_fd is None:
                self._run(head)

    def _poke_waiter(self) -> None:
        os.eventfd_write(self.wakeup, 1)

    def wait_forever(self) -> None:
        """Runs in its own thread: readiness, signals, deadlines, exits."""
        last_tick = time.monotonic()
        # Read without the lock, as _serve takes it only for work: each time
        # the receiver found the lock taken, the catcher stayed in RECV for
        # 2 ms, and every call in them was served there.
        while not self.stopping and (self.receiving or self.pidfds):
            # A steady tick: calls the fast path parks need it, and a wake-up
            # per park would cost more (a cross-CPU wake-up per call).
            events = self.epoll.poll(TICK)
            try:
                last_tick = self._serve(events, last_tick)
            except Exception as error:  # keep serving the other calls
                self.recorder.internal_error(self.root_pid, "waiter", error)

    def _serve(self, events, last_tick: float) -> float:
        """One round of the waiter: ready fds, exited processes, the tick."""
        if not events and not fastpath.notes_waiting() and not (
                (self.queues or fastpath.needs_tick()) and time.monotonic() - last_tick >= TICK):
            return last_tick  # an idle round
        statuses = self._exit_statuses(events)
        ended = []
        with self.lock:
            self.apply_notes()
            for fd, _ in events:
                if fd == self.wakeup:
                    try:
                        os.eventfd_read(self.wakeup)
                    except BlockingIOError:
                        pass
                elif fd in self.pidfds:
                    process = self.pidfds[fd]
                    self.process_exited(process, statuses[process] if process in statuses else self._final_status(process))
                    ended.append(self.recorder.ledger.processes[process.pid])
                elif fd in self.parked_by_fd:
                    parked = self.parked_by_fd.pop(fd)
                    parked.registered_fd = None
                    try:
                        self.epoll.unregister(fd)
                    except OSError:
                        pass
                    if not parked.finished and self._is_head(parked):
                        self._run(parked)
            now = time.monotonic()
            if (self.queues or fastpath.needs_tick()) and now - last_tick >= TICK:
                last_tick = now
                fastpath.tick()
                self._check_parked(now)
        if ended:  # without the lock: the calls go on meanwhile
            reported = [(stats, reports.log_sections(stats), reports.process_entry(stats)) for stats in ended]
            with self.lock:
                for stats, sections, entry in reported:
                    self.recorder.close_log(stats, sections, entry)
        return last_tick

    def _abandon(self, parked: Parked) -> None:
        """The caller died while its call waited: nothing to answer."""
        if not parked.finished:
            parked.finished = True
            self._unpark(parked)
            parked.op.release()

    def _is_head(self, parked: Parked) -> bool:
        queue = self.queues.get(parked.key)
        return bool(queue) and queue[0] is parked

    def _check_parked(self, now: float) -> None:
        for parked in [p for q in self.queues.values() for p in q]:
            if parked.finished:
                continue
            n = parked.notification
            if not self.listener.still_waiting(n.id):
                self._abandon(parked)  # the task was killed
                continue
            op = parked.op
            if op.deadline is not None and now >= op.deadline:
                self._complete(parked, op.timed_out())
                continue
            try:
                status = procfs.task_status(n.tid)
            except OSError:
                continue
            if status.deliverable:
                self._deliver_signal(parked, status, now)
            elif isinstance(op, WriteOp) and op.fd.mode is IoMode.STREAM and self._is_head(parked):
                # A shutdown(SHUT_WR) of a unix stream socket ends a blocked
                # send natively, and shows in no poll event: look again.
                self._run(parked)

    def _deliver_signal(self, parked: Parked, status: procfs.TaskStatus, now: float) -> None:
        """Answer so that the kernel delivers the pending signal: the handler
        runs, and the call restarts or fails with EINTR as it would natively."""
        answer = parked.op.interrupted()
        restart_code = -516 <= answer <= -ERESTARTSYS
        # A restart code reaches user space as errno 512 unless the thread has
        # TIF_SIGPENDING: certain for a signal sent to this thread, or to a
        # process with one thread (kernel-facts §2.2 step 6).
        certain = status.pending & ~status.blocked or status.threads == 1
        if not restart_code or certain:
            self._complete(parked, answer)
            return
        # A signal for a multi-threaded process: PTRACE_INTERRUPT sets
        # TIF_SIGPENDING on this thread; if another thread takes the signal,
        # the call is restarted, invisibly, as natively it goes on waiting.
        tid = parked.notification.tid
        try:
            _kernel.ptrace_interrupt(tid)
        except OSError:
            # Already traced by a debugger: wait until the signal has stayed
            # pending long enough that this thread must be the one chosen.
            if parked.restart_pending is None:
                parked.restart_pending = now
            elif now - parked.restart_pending > 0.05:
                self._complete(parked, answer)
            return
        self._complete(parked, answer)
        if not _kernel.ptrace_release(tid, PTRACE_WAIT_MS) and os.path.exists(f"/proc/{tid}"):
            self.recorder.internal_error(parked.task.process.pid, "ptrace_release",
                                         RuntimeError(f"thread {tid} not detached"))

    # ------------------------------------------------------------------ lifecycle

    def on_fd_new(self, n: Notification, spec, task: Task, seq: int) -> None:
        fields = _lifecycle_fields(spec, n, task)
        outcome = PendingOutcome(seq, spec, fields)
        try:
            if spec.name in ("pipe", "pipe2", "socketpair"):
                # Two lookups, not a listing of every fd: a program with
                # thousands of fds makes pipes at the speed of one with ten.
                outcome.pair_address = spec.arg("fds" if spec.name != "socketpair" else "sv", n.args)
                before = struct.unpack("=ii", kernel.read_memory(n.tid, outcome.pair_address, 8))
                outcome.pair_before = (before, frozenset(fd for fd in before if kernel.has_fd(task.process.pidfd, fd)))
            else:
                base = as_int(n.args[2]) if spec.name == "fcntl" else 0  # F_DUPFD's lowest number
                outcome.expected_fd = self._next_fd(task.process, max(base, 0))
        except OSError:
            pass
        self._expect(task, outcome)
        self.listener.let_through(n.id)

    def _next_fd(self, process: Process, base: int) -> int:
        """The number the kernel will give the next new fd (at base or
        above), found without listing every fd when superv's picture holds."""
        for _ in range(2):
            fd = fastpath.picture_free_from(process.pid, base)
            if fd < 0:
                fastpath.picture_set(process.pid, procfs.fd_numbers(process.pid))
                fd = fastpath.picture_free_from(process.pid, base)
            if not kernel.has_fd(process.pidfd, fd):
                return fd
            fastpath.picture_forget(process.pid)  # an fd made by a call superv does not see: list them again
        return fd

    def on_fd_replace(self, n: Notification, spec, task: Task, seq: int) -> None:
        old, new = as_int(spec.arg("fd", n.args)), as_int(spec.arg("newfd", n.args))
        if old != new and new >= 0:
            self._drop_fd(task.process, new, seq)
        self._expect(task, PendingOutcome(seq, spec, {"fd": old, "newfd": new}))
        self.listener.let_through(n.id)

    def _expect(self, task: Task, outcome: PendingOutcome) -> None:
        """Learn this call's result at the thread's next call, which must
        therefore come to Python, not the fast path."""
        task.outcome = outcome
        fastpath.set_task_slow(task.tid, True)

    def _settle_outcome(self, task: Task) -> None:
        """Record a continued lifecycle call with what it turned out to do."""
        outcome, task.outcome = task.outcome, None
        fastpath.set_task_slow(task.tid, False)
        spec, fields, pid = outcome.syscall, outcome.fields, task.process.pid
        result = None
        try:
            if outcome.pair_address:
                pair = list(struct.unpack("=ii", kernel.read_memory(task.tid, outcome.pair_address, 8)))
                # The kernel writes the array only on success, with fds that
                # were not open before: unchanged, and naming fds open before,
                # it was not written.
                before, open_before = outcome.pair_before or ((), frozenset())
                written = tuple(pair) != before or not set(pair) & open_before
                if outcome.pair_before is not None and written and \
                        all(kernel.has_fd(task.process.pidfd, fd) for fd in pair):
                    result, fields["fds"] = 0, pair
                    for fd in pair:
                        self._forget_fd_view(task.process, fd)
                        self._fd_made(task.process, fd)
            elif spec.handling is Handling.FD_REPLACE:
                dup3_onto_itself = spec.name == "dup3" and fields["fd"] == fields["newfd"]  # EINVAL
                if not dup3_onto_itself and _same_file(pid, fields["fd"], fields["newfd"]):
                    result = fields["newfd"]
                    self._fd_made(task.process, result)
            elif spec.name == "connect":
                self._endpoints_change(task.process, fields["fd"])
                result = self._connect_outcome(task.process, fields["fd"])
            elif spec.handling is Handling.SPAWN:
                result = self._spawn_outcome(task, outcome)
            elif spec.handling is Handling.REAP and outcome.spawned_before is not None:
                gone = sorted(outcome.spawned_before - self._children_of(task.process))
                result = gone[0] if gone else None
                for child in gone:  # before the waiter may have seen it end, and before this call
                    self._reaped(child)
            elif outcome.expected_fd is not None:
                if _holds_new_file(task.process, outcome.expected_fd, spec.name):
                    result = outcome.expected_fd
                else:  # failed, or another thread took that number: ask /proc
                    known = set(fastpath.picture(pid) or ())
                    listed = set(procfs.fd_numbers(pid))
                    fastpath.picture_set(pid, listed)  # the truth, for the next new fd too
                    new = sorted(listed - known - {outcome.expected_fd})
                    result = new[0] if new and known else None  # without a picture, any fd could be new
                if result is not None:
                    self._forget_fd_view(task.process, result)  # a number reused: classify it afresh
                    self._fd_made(task.process, result)
        except OSError:
            pass
        if result is None:
            # A new fd that is not in the table means the call failed; a
            # child already reaped, or a connect in progress, tells nothing.
            fields["outcome"] = "failed" if spec.handling in (Handling.FD_NEW, Handling.FD_REPLACE) else "unknown"
        self.recorder.other_call(pid, task.tid, outcome.seq, spec.name, None, result, **fields)

    @staticmethod
    def _fd_made(process: Process, fd: int) -> None:
        fastpath.picture_add(process.pid, fd)

    def _spawn_outcome(self, task: Task, outcome: PendingOutcome) -> int | None:
        """The new child's pid (or thread's tid).  A child is taken in now,
        so that one that dies before any traced call still has its record."""
        if outcome.spawned_before is None:
            return None
        pid = task.process.pid
        now = procfs.thread_ids(pid) if outcome.new_thread else procfs.children(pid, task.tid)
        new = sorted(now - outcome.spawned_before)
        if not new:
            return None
        if not outcome.new_thread:
            self._take_in_child(new[0], pid)
        return new[0]

    def _connect_outcome(self, process: Process, fd: int) -> int | None:
        """0 once the socket has a peer; None while in progress or failed
        (SO_ERROR would tell, but reading it clears it for the program)."""
        dup = kernel.duplicate_fd(process.pidfd, fd)
        try:
            remote = _kernel.socket_facts(dup)[4]
        finally:
            os.close(dup)
        return 0 if remote else None

    def on_fd_close(self, n: Notification, spec, task: Task, seq: int) -> None:
        process = task.process
        if spec.name == "close":
            fd = as_int(n.args[0])
            self._drop_fd(process, fd, seq)
            fastpath.picture_remove(process.pid, fd, fd)
            text, fields = f"close({fd})", {"fd": fd}
        else:
            first, last, flags = n.args[0] & 0xFFFFFFFF, n.args[1] & 0xFFFFFFFF, n.args[2]
            if not flags & CLOSE_RANGE_CLOEXEC:
                fastpath.picture_remove(process.pid, first, last)
                fastpath.drop_fds(process.pid, first, last)
                for fd in [fd for fd in {*process.fds, *process.inherited} if first <= fd <= last]:
                    self._drop_fd(process, fd, seq)
            text, fields = f"close_range({first}, {last}, {flags:#x})", {"first": first, "last": last}
        self.recorder.other_call(process.pid, n.tid, seq, spec.name, text, None, **fields)
        self.listener.let_through(n.id)

    def on_socket_op(self, n: Notification, spec, task: Task, seq: int) -> None:
        fields = _lifecycle_fields(spec, n, task)
        if spec.name != "shutdown":
            self._endpoints_change(task.process, fields["fd"])
        if spec.name == "connect":
            self._expect(task, PendingOutcome(seq, spec, fields))
        else:
            # shutdown as the fast path writes it, which takes it most of the time
            text = f"shutdown({fields['fd']})" if spec.name == "shutdown" else None
            self.recorder.other_call(task.process.pid, n.tid, seq, spec.name, text, None, **fields)
        self.listener.let_through(n.id)

    def on_spawn(self, n: Notification, spec, task: Task, seq: int) -> None:
        """Let it run; at the caller's next call, the new pid (or tid) is the result."""
        pid = task.process.pid
        outcome = PendingOutcome(seq, spec, {})
        flags = None
        try:
            flags = spec.arg("flags", n.args) if spec.name == "clone" else 0
            if spec.name == "clone3":
                flags = kernel.read_u64(n.tid, spec.arg("args", n.args))
            outcome.new_thread = bool(flags & CLONE_THREAD)
            if flags & (CLONE_THREAD | CLONE_FILES):
                self._share_fds(task.process)  # before the new task can make an fd
            outcome.fields["flags"] = f"{flags:#x}"
            outcome.spawned_before = frozenset(
                procfs.thread_ids(pid) if outcome.new_thread else procfs.children(pid, n.tid)
            )
        except OSError:
            pass
        # clone3's flags are in memory: another thread may change them after
        # this read, and make a thread of what was read as a fork.
        if flags is None or flags & CLONE_THREAD or spec.name == "clone3":
            self._mark_threaded(task.process)
        self._expect(task, outcome)
        self.listener.let_through(n.id)

    @staticmethod
    def _children_of(process: Process) -> set[int]:
        """Its children, zombies included.  Those of a process that never
        made a thread are its main thread's: the listing of its threads
        (8 us on our VMs, at each wait and its settle) is spared."""
        if process.threaded:
            return procfs.all_children(process.pid)
        return procfs.children(process.pid, process.pid)

    def on_reap(self, n: Notification, spec, task: Task, seq: int) -> None:
        """A child that died before any traced call of its own is only seen
        here, while it is a zombie: take it in before the wait reaps it.
        The reaped pid is the result, learnt at the next call."""
        pid = task.process.pid
        outcome = PendingOutcome(seq, spec, {"id": as_int(n.args[0] if spec.name == "wait4" else n.args[1])})
        try:
            children = self._children_of(task.process)
            outcome.spawned_before = frozenset(children)
            # A zombie seen exiting stays in `ended` until a wait reaps it:
            # not read again at each wait (1000 zombies made it quadratic).
            for child in children - self.processes.keys() - self.ended.keys():
                self._take_in_child(child, pid)
        except OSError:
            pass
        self._expect(task, outcome)
        self.listener.let_through(n.id)

    def on_exit(self, n: Notification, spec, task: Task, seq: int) -> None:
        code = n.args[0] & 0xFF
        if spec.name == "exit_group":
            task.process.exit_code = code
            # Its fds close as it exits: our copies must not keep pipes and
            # sockets open behind it (the peer would never see EOF), nor may
            # its other threads' parked calls, which exit_group ends.
            self._let_go_of(task.process)
        self.recorder.other_call(task.process.pid, n.tid, seq, spec.name, f"{spec.name}({code})", None, code=code)
        if spec.name == "exit":
            self._forget_task(n.tid)
        self.listener.let_through(n.id)

    def on_signal_call(self, n: Notification, spec, task: Task, seq: int) -> None:
        """A guarded call the policy let go (it aims at no thread of superv's)."""
        fields = {name: as_int(value) for name, value in zip(spec.args, n.args) if name in ("tid", "pid", "sig")}
        self.recorder.other_call(task.process.pid, n.tid, seq, spec.name, None, None, **fields)
        self.listener.let_through(n.id)

    def on_path_change(self, n: Notification, spec, task: Task, seq: int) -> None:
        """unlink, rename, mkdir, chmod...: each path is walked as the
        program's own call would walk it (pathwalk), decided on the file it
        reaches or would make, and the call is made by superv relative to the
        directories held since, so that what was decided on is what changes."""
        from . import policy

        a = dict(zip(spec.args, n.args))
        flags = as_int(a.get("flags", 0))
        pid = task.process.pid
        fields: dict = {}
        reached: list[pathwalk.Reached] = []
        try:
            for role in ("path", "oldpath", "newpath"):
                if role not in a:
                    continue
                dirfd_arg = {"path": "dirfd", "oldpath": "olddirfd", "newpath": "newdirfd"}[role]
                dirfd = as_int(a[dirfd_arg]) if dirfd_arg in a else pathwalk.AT_FDCWD
                follow = spec.name in syscalls.FOLLOWS_LAST and not flags & syscalls.AT_SYMLINK_NOFOLLOW or \
                    role == "oldpath" and spec.name == "linkat" and flags & syscalls.AT_SYMLINK_FOLLOW
                try:
                    raw = kernel.read_string(n.tid, a[role], limit=pathwalk.PATH_MAX)
                except OSError:
                    raise _Failed(errno.EFAULT) from None
                fields[role] = os.fsdecode(raw)
                request = pathwalk.OpenRequest(dirfd, raw, 0 if follow else os.O_NOFOLLOW, 0)
                try:
                    reached.append(pathwalk.reach(n.tid, pid, task.process.pidfd, request))
                except OSError as e:  # the program's own call fails in the lookup, unless refused first
                    lexical = pathwalk.lexical_path(n.tid, request)
                    facts = policy.CallFacts(spec.name, FdClass.DISK.value, path=lexical, direction="send")
                    if self._refused(n, spec, task, seq, fields, policy.decide(self.policy, facts)):
                        return
                    raise _Failed(e.errno) from None
            fields["files"] = [r.path for r in reached]
            for r in reached:
                facts = self._reached_facts(policy.CallFacts(spec.name, direction="send"), r, opening=False)
                if self._refused(n, spec, task, seq, fields, policy.decide(self.policy, facts)):
                    return
            umask = self._acting_for(n.tid, pid, creates=spec.name in ("mkdir", "mkdirat", "mknod", "mknodat"))
            if umask < 0:
                raise _Failed(-umask)
            try:
                target = kernel.read_string(n.tid, a["target"]) if "target" in a else None
            except OSError:
                raise _Failed(errno.EFAULT) from None
            result = _change_path(spec.name, a, flags, reached, umask, target)
        except _Failed as failure:
            result = -failure.errno
        finally:
            for r in reached:
                r.close()
        self.recorder.other_call(pid, n.tid, seq, spec.name, None, result, **fields)
        self.listener.answer(n.id, result)

    def on_refused(self, n: Notification, spec, task: Task, seq: int) -> None:
        self.recorder.refused_call(task.process.pid, n.tid, seq, spec.name, -errno.ENOSYS)
        self.listener.answer(n.id, -errno.ENOSYS)

    def on_exec(self, n: Notification, spec, task: Task, seq: int) -> None:
        process = task.process
        tid = n.tid
        try:
            path = kernel.read_string(tid, spec.arg("path", n.args)).decode("utf-8", "surrogateescape")
            argv = kernel.read_string_array(tid, spec.arg("argv", n.args))
            image = _image_fingerprint(tid)
        except OSError:
            self.listener.let_through(n.id)
            return
        allowed, rule = task.exec_decision or (None, None)
        task.exec_decision = None
        process.exec_attempt = ExecAttempt(tid, path, argv, image, allowed, rule)
        # Until it is settled, this process's calls come to Python; the fast
        # path's copies of its fds go now, as close-on-exec ones must close.
        fastpath.set_process_slow(process.pid, True)
        fastpath.drop_fds(process.pid, *ALL_FDS)
        if not process.launching:
            self.recorder.other_call(process.pid, tid, seq, spec.name, f"{spec.name}({path!r}, {argv})", None,
                                     path=path, argv=argv)
        self.listener.let_through(n.id)

    def _settle_exec(self, task: Task) -> bool:
        """Did the pending execve replace the image?  Asked at the process's
        next call: a new image has a new auxv and new AT_RANDOM bytes.
        False when the new image is not the one a policy allowed: the
        process is killed."""
        process = task.process
        attempt = process.exec_attempt
        try:
            image = _image_fingerprint(task.tid)
        except OSError:
            return True
        if image == attempt.image:
            if task.tid == attempt.tid:
                process.exec_attempt = None  # it returned: the exec failed
                fastpath.set_process_slow(process.pid, process.launching)
                if not process.launching:
                    self.recorder.exec_failed(process.pid, task.tid, attempt.path)
            return True
        process.exec_attempt = None
        if attempt.allowed_images is not None and _running_image(process.pid) not in attempt.allowed_images:
            self.recorder.policy_hit(process.pid, task.tid, fastpath.take_seq(process.pid), "execve",
                                     attempt.decided_by, "kill")
            self._send_signal(task.tid, process.pid, signal.SIGKILL)
            return False
        fastpath.set_process_slow(process.pid, False)
        # The exec'ing thread now has the process's pid; the others are gone.
        for tid in list(process.tids):
            if tid != task.tid:
                self._forget_task(tid)
        was_launching = process.launching
        process.launching = False
        fastpath.picture_forget(process.pid)  # close-on-exec fds are gone
        self.recorder.process_exec(process.pid, task.tid, attempt.path, attempt.argv)
        fastpath.set_argv(process.pid, reports.compact_json(attempt.argv))
        if was_launching:
            return True
        for fd, c in list(process.fds.items()):
            try:
                st = os.stat(f"/proc/{process.pid}/fd/{fd}")
                still_there = (st.st_dev, st.st_ino) == c.identity
            except OSError:
                still_there = False
            if not still_there:
                self._drop_fd(process, fd, None)
        return True

    # ------------------------------------------------------------------ end

    def stop(self) -> None:
        """End the run now: both threads return, whatever is still traced."""
        with self.lock:
            self.stopping = True
        fastpath.stop()
        self._poke_waiter()
        receiver = self.receiver_ident  # without the lock: a wedged holder must not stop stop()
        if receiver is not None:
            try:
                signal.pthread_kill(receiver, WAKE_SIGNAL)
            except (ProcessLookupError, OSError):
                pass

    def release_all(self) -> None:
        """After the run: give back whatever is still held."""
        with self.lock:
            self.apply_notes()
            fastpath.drop_parked()
            for parked in [p for q in self.queues.values() for p in q]:
                self._abandon(parked)
            self.queues.clear()


def _fd_facts(syscall: str, direction: str | None, c: Classification, endpoint: str | None):
    """A call's facts on a classified fd; endpoint: the address it reaches."""
    from . import policy

    host, port = policy.address_and_port(endpoint)
    family = c.detail if c.fd_class is FdClass.NET else None
    return policy.CallFacts(syscall, c.fd_class.value, family, host, port, direction=direction)


def _images_of(path: str) -> frozenset[str]:
    """What /proc/PID/exe may say after an exec of path: the file itself,
    or for a #! script, its interpreter."""
    images = {os.path.realpath(path)}
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return frozenset(images)
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].split()
        if words:
            images.add(os.path.realpath(os.fsdecode(words[0])))
    return frozenset(images)


def _running_image(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _holds_new_file(process: Process, fd: int, syscall: str) -> bool:
    """fd is open with a file this call makes: a socket for socket and accept,
    not an anon inode (eventfd, epoll...) for an open.  An untraced call may
    have taken the number before the thread's next call."""
    try:
        dup = kernel.duplicate_fd(process.pidfd, fd)
    except OSError:
        return False
    try:
        kind = stat.S_IFMT(os.fstat(dup).st_mode)
    finally:
        os.close(dup)
    if syscall in ("socket", "accept", "accept4"):
        return kind == stat.S_IFSOCK
    return kind != 0 or syscall not in ("open", "openat", "openat2", "creat")


def _channel_keys(c: Classification) -> tuple[int, int]:
    """Names for the fast path: the channel an fd's bytes go through, and the
    one they reach (a pipe is both; a TCP or UDP socket reaches the socket
    whose endpoints mirror its own, a unix socket its peer inode).  0 when
    not known (an unconnected socket)."""

    def name(*parts) -> int:
        return fastpath.channel_key("|".join(map(str, parts)))  # the fast path names them alike (classify_here)

    if c.io_mode is IoMode.PIPE:
        key = name("pipe", *c.identity)
        return key, key
    if c.detail in INET_DETAILS and c.local and c.remote:
        return name(c.detail, c.local, c.remote), name(c.detail, c.remote, c.local)
    if c.peer_inode:
        return name("unix", c.identity[1]), name("unix", c.peer_inode)
    return 0, 0


def _same_file(pid: int, fd_a: int, fd_b: int) -> bool:
    a, b = os.stat(f"/proc/{pid}/fd/{fd_a}"), os.stat(f"/proc/{pid}/fd/{fd_b}")
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _endpoints_incomplete(c: Classification) -> bool:
    """A socket whose ends may change unseen is looked at again on each
    use: one not yet bound (a send or a connect binds it) and, but for a
    datagram socket, one not yet connected.  A connect or a bind is seen
    (Supervisor._endpoints_change)."""
    if c.fd_class is not FdClass.NET or c.io_mode not in (IoMode.STREAM, IoMode.DATAGRAM, IoMode.PASSTHROUGH):
        return False
    if c.io_mode is IoMode.DATAGRAM:
        return c.local is None or c.local.endswith(":0")
    return c.remote is None or (c.local or "").endswith(":0")


def _image_fingerprint(tid: int) -> bytes:
    auxv = procfs.auxv(tid)
    for i in range(0, len(auxv) - 15, 16):
        key, value = struct.unpack_from("=QQ", auxv, i)
        if key == AT_RANDOM:
            return auxv + kernel.read_memory(tid, value, 16)
    return auxv


def _open_request(n: Notification, spec) -> pathwalk.OpenRequest | int:
    """The supervisor's copy of an open call's arguments, or -errno as the
    kernel would fail it before any lookup."""
    a = dict(zip(spec.args, n.args))
    dirfd = as_int(a["dirfd"]) if "dirfd" in a else pathwalk.AT_FDCWD
    resolve = 0
    try:
        path = kernel.read_string(n.tid, a["path"], limit=pathwalk.PATH_MAX)
        if spec.name == "creat":
            flags, mode = os.O_CREAT | os.O_WRONLY | os.O_TRUNC, a["mode"]
        elif spec.name == "openat2":
            size = a["size"]
            if size < pathwalk.OPEN_HOW_SIZE:
                return -errno.EINVAL
            if size > 4096:
                return -errno.E2BIG
            how = kernel.read_memory(n.tid, a["how"], size)
            if any(how[pathwalk.OPEN_HOW_SIZE:]):
                return -errno.E2BIG
            flags, mode, resolve = struct.unpack_from("=QQQ", how)
            if flags >> 32:
                return -errno.EINVAL
            error = pathwalk.open_how_error(flags, mode, resolve)
            if error:
                return -error
        else:
            flags, mode = a["flags"] & 0xFFFFFFFF, a["mode"]
    except OSError:
        return -errno.EFAULT
    if spec.name != "openat2":
        mode = mode & 0o7777 if flags & (os.O_CREAT | pathwalk.O_TMPFILE) else 0
    return pathwalk.OpenRequest(dirfd, path, flags, mode, resolve)


class _Failed(Exception):
    """A call that fails with this errno, as the kernel's own would."""

    def __init__(self, errno_value: int):
        super().__init__(errno_value)
        self.errno = errno_value


def _change_path(name: str, a: dict, flags: int, reached: list, umask: int, target: bytes | None) -> int:
    """Make a path change on the held directories and pinned files: 0 or -errno."""
    first = reached[0]
    for r in reached:
        if r.must_be_dir and r.pinned is not None and not stat.S_ISDIR(os.fstat(r.pinned).st_mode):
            return -errno.ENOTDIR
    pinned = f"/proc/self/fd/{first.pinned}"
    try:
        if name in ("unlink", "unlinkat", "rmdir"):
            if flags & ~syscalls.AT_REMOVEDIR:
                return -errno.EINVAL
            if name == "rmdir" or flags & syscalls.AT_REMOVEDIR:
                os.rmdir(first.name, dir_fd=first.parent)
            else:
                os.unlink(first.name, dir_fd=first.parent)
        elif name in ("mkdir", "mkdirat"):
            pathwalk.with_umask(umask, lambda: os.mkdir(first.name, a["mode"] & 0o7777, dir_fd=first.parent))
        elif name in ("mknod", "mknodat"):
            pathwalk.with_umask(umask, lambda: os.mknod(first.name, a["mode"] & 0xFFFFFFFF, a["dev"] & 0xFFFFFFFF,
                                                        dir_fd=first.parent))
        elif name in ("rename", "renameat", "renameat2"):
            old, new = reached
            return _kernel.renameat2(old.parent, old.name, new.parent, new.name, flags if name == "renameat2" else 0)
        elif name in ("link", "linkat"):
            old, new = reached
            if flags & ~(syscalls.AT_SYMLINK_FOLLOW | syscalls.AT_EMPTY_PATH):
                return -errno.EINVAL
            if flags & syscalls.AT_SYMLINK_FOLLOW:  # the file the symlink led to, pinned
                if old.pinned is None:
                    return -errno.ENOENT
                os.link(f"/proc/self/fd/{old.pinned}", new.name, dst_dir_fd=new.parent, follow_symlinks=True)
            else:
                os.link(old.name, new.name, src_dir_fd=old.parent, dst_dir_fd=new.parent, follow_symlinks=False)
        elif name in ("symlink", "symlinkat"):
            os.symlink(target, first.name, dir_fd=first.parent)
        elif first.pinned is None:
            return -errno.ENOENT
        elif name == "truncate":
            kind = os.fstat(first.pinned).st_mode
            if not stat.S_ISREG(kind):
                return -(errno.EISDIR if stat.S_ISDIR(kind) else errno.EINVAL)
            fd = os.open(pinned, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.ftruncate(fd, syscalls.as_ssize(a["length"]))
            finally:
                os.close(fd)
        elif name in ("chmod", "fchmodat"):
            os.chmod(pinned, a["mode"] & 0o7777)
        else:  # chown, lchown, fchownat: on the pinned file itself, a symlink included
            if flags & ~(syscalls.AT_SYMLINK_NOFOLLOW | syscalls.AT_EMPTY_PATH):
                return -errno.EINVAL
            return _kernel.fchownat(first.pinned, b"", as_int(a["owner"]), as_int(a["group"]), syscalls.AT_EMPTY_PATH)
    except OSError as e:
        return -e.errno
    return 0


def _bound_in(sock: int, reached: pathwalk.Reached) -> bool:
    """The unix socket is bound to the file named reached.name in the
    directory reached.parent holds."""
    bound = kernel.unix_bound_file(os.fstat(sock).st_ino)
    try:
        st = os.stat(reached.name, dir_fd=reached.parent, follow_symlinks=False)
    except OSError:
        return False
    return bound == (st.st_dev, st.st_ino)


def _give_peer_address(n: Notification, spec, peer: bytes) -> int:
    """Write an accepted peer's address where accept() asked for it, as the
    kernel does (truncated to the room given; the full length in addrlen):
    0, or -errno."""
    address, length_at = spec.arg("addr", n.args), spec.arg("addrlen", n.args)
    if not address:
        return 0
    try:
        room = as_int(kernel.read_u32(n.tid, length_at))
        if room < 0:
            return -errno.EINVAL
        kernel.write_memory(n.tid, address, peer[:room])
        kernel.write_u32(n.tid, length_at, len(peer))
    except OSError:
        return -errno.EFAULT
    return 0


def _lifecycle_fields(spec, n: Notification, task: Task) -> dict:
    """What a lifecycle call's arguments say, read from the target's memory."""
    a = dict(zip(spec.args, n.args))
    fields: dict = {}
    tid = n.tid
    try:
        if "path" in a and a["path"]:
            fields["path"] = kernel.read_string(tid, a["path"]).decode("utf-8", "surrogateescape")
        if "addr" in a and a["addr"] and spec.name in ("connect", "bind"):
            size = min(a["addrlen"] & 0xFFFFFFFF, 128)
            fields["address"] = format_sockaddr(kernel.read_memory(tid, a["addr"], size))
    except OSError:
        pass
    if "fd" in a:
        fields["fd"] = as_int(a["fd"])
    if spec.name in ("socket", "socketpair"):
        fields.update(domain=a["domain"], socket_type=a["type"] & 0xF, protocol=a["protocol"])
    return fields
