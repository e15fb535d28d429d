"""Starting the target under the filter and taking its listener.

The launcher (native/launcher.c) installs the filter, stops itself, and
waits; the supervisor, its parent, takes the listener from it with
pidfd_getfd and continues it (kernel-facts §4).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import stat

from . import filter as bpf
from .kernel import Listener, duplicate_fd

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "superv-launch")
WATCHDOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "superv-watchdog")
LISTENER_LINK = "anon_inode:seccomp notify"
EXIT_SUPERV_FAILURE = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127


class LaunchError(Exception):
    """The target could not be started; carries the exit status and the line to print."""

    def __init__(self, status: int, message: str | None):
        super().__init__(message)
        self.status = status
        self.message = message


def resolve_program(name: str, path_env: str | None = None) -> str:
    """The file execvp would run for name; LaunchError(127 or 126) if none."""
    if "/" in name:
        return _check_executable(name, name)
    denied = None
    for directory in (path_env if path_env is not None else os.environ.get("PATH", "/usr/bin:/bin")).split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(candidate, os.X_OK):
            return candidate
        denied = denied or candidate
    if denied:
        raise LaunchError(EXIT_NOT_EXECUTABLE, f"superv: {name}: Permission denied")
    raise LaunchError(EXIT_NOT_FOUND, f"superv: {name}: command not found")


def _check_executable(name: str, path: str) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise LaunchError(EXIT_NOT_FOUND, f"superv: {name}: No such file or directory")
    except OSError as e:
        raise LaunchError(EXIT_NOT_EXECUTABLE, f"superv: {name}: {e.strerror}")
    if stat.S_ISDIR(st.st_mode):
        raise LaunchError(EXIT_NOT_EXECUTABLE, f"superv: {name}: Is a directory")
    if not os.access(path, os.X_OK):
        raise LaunchError(EXIT_NOT_EXECUTABLE, f"superv: {name}: Permission denied")
    return path


def start_watchdog() -> tuple[socket.socket, int]:
    """Start superv-watchdog (native/watchdog.c), untraced: (its socket, its
    pid).  Give it a pidfd of each traced process through the socket; when
    superv exits, however it exits, the watchdog kills what is left of them."""
    if not os.access(WATCHDOG, os.X_OK):
        raise LaunchError(EXIT_SUPERV_FAILURE, f"superv: the watchdog {WATCHDOG} is missing; reinstall superv")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        os.set_inheritable(theirs.fileno(), True)
        pid = os.posix_spawn(WATCHDOG, [WATCHDOG, str(theirs.fileno())], os.environ, setsigmask=())
    except OSError as e:
        ours.close()
        raise LaunchError(EXIT_SUPERV_FAILURE, f"superv: cannot start the watchdog: {e.strerror}") from None
    finally:
        theirs.close()
    return ours, pid


def end_watchdog(watchdog: socket.socket, pid: int) -> None:
    """At the end of a run: the watchdog sees the socket close, kills what
    may be left (nothing, after a normal end), and is reaped here."""
    exited = os.pidfd_open(pid)  # readable once it has exited: no polling interval added to every run
    watchdog.close()
    try:
        select.select([exited], [], [], 2.0)
    finally:
        os.close(exited)
    os.waitpid(pid, os.WNOHANG)


def start(path: str, argv: list[str], kernel_rules=(), guards=(), on_demand=()) -> tuple[int, int, Listener]:
    """Spawn the launcher; returns (pid, pidfd, listener) with the target on its way.
    kernel_rules: what a policy denies outright (policy.kernel_plan); guards:
    its rules against signals aimed at superv (policy.guards); on_demand: the
    calls it has traced (policy.traced_on_demand)."""
    if not os.access(LAUNCHER, os.X_OK):
        raise LaunchError(EXIT_SUPERV_FAILURE, f"superv: the launcher {LAUNCHER} is missing; reinstall superv")
    program = bpf.program_fd(kernel_rules, guards, (os.getpid(), os.getpgrp()), on_demand)
    try:
        pid = os.posix_spawn(
            LAUNCHER,
            [LAUNCHER, str(program), str(os.getpid()), path, *argv],
            os.environ,
            setsigmask=(),
            # Python ignores these; the target gets the defaults, as from a shell.
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    finally:
        os.close(program)
    pidfd = os.pidfd_open(pid)
    _, status = os.waitpid(pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        os.close(pidfd)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else EXIT_SUPERV_FAILURE
        # The launcher printed why.
        raise LaunchError(code, None)
    listener = Listener(duplicate_fd(pidfd, _listener_fd_number(pid)))
    os.kill(pid, signal.SIGCONT)
    return pid, pidfd, listener


def _listener_fd_number(pid: int) -> int:
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") == LISTENER_LINK:
                return int(name)
        except OSError:
            continue
    raise LaunchError(EXIT_SUPERV_FAILURE, "superv: the launcher stopped without a seccomp listener")
