"""Opening a file for the traced program, the way the program's own open
would, so that a path rule is decided on the very file that is opened.

The supervisor walks the path one component at a time from the program's
root, working directory or dirfd, holding each directory open (O_PATH) as it
reaches it, then pins the file itself (O_PATH|O_NOFOLLOW).  The decision is
taken on the pinned file's path and the open is a reopen of that pin, so
nothing the program changes after the check (the path string, a component
swapped for a symlink, a file renamed into place) changes what it gets: at
worst the open fails, never does it reach another file.

What the kernel would resolve as the program, and superv must not resolve as
itself:
- /proc/self and /proc/thread-self name the program, not superv;
- the other procfs links (/proc/PID/fd/N, cwd, root, exe, ns/...) name a
  pid: the kernel follows them for us ("jumps");
- the program's root (chroot) and working directory are its own.

This is kernel plumbing: every function here makes the calls; the decision
itself is policy.decide on the path it reports.
"""

from __future__ import annotations

import collections
import functools
import errno
import os
import stat

import attrs

from . import kernel, procfs
from .classify import FdFacts

AT_FDCWD = -100
OPEN_HOW_SIZE = 24  # struct open_how: flags, mode, resolve
PATH_MAX = 4096
NAME_MAX = 255
MAXSYMLINKS = 40
PROC_ROOT_INO = 1

# openat2's how.resolve (linux/openat2.h)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
RESOLVE_CACHED = 0x20
RESOLVE_ALL = 0x3F

O_TMPFILE = 0o20000000 | os.O_DIRECTORY
# What openat2 accepts in how.flags (the kernel's VALID_OPEN_FLAGS), and in
# how.flags with O_PATH.
VALID_OPEN_FLAGS = (os.O_ACCMODE | os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_APPEND
                    | os.O_NONBLOCK | os.O_SYNC | os.O_DSYNC | 0o20000 | os.O_DIRECT | 0o100000
                    | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NOATIME | os.O_CLOEXEC | os.O_PATH | O_TMPFILE)
O_PATH_FLAGS = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_PATH | os.O_CLOEXEC
_PIN = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

# Files in /proc/PID whose open asks for ptrace *attach* rights: Yama lets
# superv (every traced process's ancestor) open them where the program
# itself could not, so they are never opened for another process's pid.
PROC_ATTACH_FILES = frozenset({"mem", "stack", "syscall", "personality"})


@attrs.frozen
class OpenRequest:
    """What an open call asks, from the supervisor's copies of its arguments."""

    dirfd: int  # AT_FDCWD, or an fd of the program's
    path: bytes
    flags: int
    mode: int
    resolve: int = 0  # openat2's RESOLVE_* flags


def open_how_error(flags: int, mode: int, resolve: int) -> int:
    """The errno openat2 gives for this struct open_how before any lookup, or 0."""
    if flags & ~VALID_OPEN_FLAGS or resolve & ~RESOLVE_ALL or mode & ~0o7777:
        return errno.EINVAL
    if mode and not flags & (os.O_CREAT | O_TMPFILE):
        return errno.EINVAL
    if flags & os.O_PATH and flags & ~O_PATH_FLAGS:
        return errno.EINVAL
    if resolve & RESOLVE_BENEATH and resolve & RESOLVE_IN_ROOT:
        return errno.EINVAL
    if resolve & RESOLVE_CACHED and flags & (os.O_CREAT | os.O_TRUNC | O_TMPFILE):
        return errno.EAGAIN
    return 0


def writes(flags: int) -> bool:
    """An open that can change the file: the policy's `direction: send`."""
    if flags & os.O_PATH:
        return False
    return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))


@attrs.define
class Reached:
    """The file a path leads to, held by the supervisor.

    pinned: an O_PATH fd of the file itself, or None when it does not exist
    (yet): then parent/name say where an O_CREAT would make it.  path: its
    absolute path, as superv sees the file system."""

    parent: int
    name: bytes
    pinned: int | None
    path: str
    must_be_dir: bool  # the program's path ended with a slash
    umask: int = 0o022  # the program's, for what the open creates

    def close(self) -> None:
        for fd in {self.parent, self.pinned} - {None}:
            os.close(fd)


def file_facts(reached: Reached) -> FdFacts | None:
    """What classification needs of the reached file; None when it is yet
    to be created."""
    if reached.pinned is None:
        return None
    st = os.fstat(reached.pinned)
    return FdFacts(reached.path, st.st_mode, st.st_rdev, st.st_dev, st.st_ino, is_tty=False)


class _Walk:
    """One walk of one path; raises OSError with the errno the program's own
    open would have met."""

    def __init__(self, tid: int, tgid: int, pidfd: int, request: OpenRequest):
        self.tid, self.tgid, self.pidfd, self.request = tid, tgid, pidfd, request
        self.resolve = request.resolve
        self.hops = 0
        self.depth = 0  # directories below the start, for RESOLVE_BENEATH / IN_ROOT
        self.root: int | None = None
        self.here: int | None = None

    def run(self) -> Reached:
        request = self.request
        if not request.path:
            raise OSError(errno.ENOENT, "empty path")
        if len(request.path) >= PATH_MAX:
            raise OSError(errno.ENAMETOOLONG, "path too long")
        try:
            return self._walk()
        finally:  # what the walk still holds; a Reached owns its own fds
            for fd in {self.root, self.here} - {None}:
                os.close(fd)

    def _walk(self) -> Reached:
        path, resolve = self.request.path, self.resolve
        absolute = path.startswith(b"/")
        if absolute and resolve & RESOLVE_BENEATH:
            raise OSError(errno.EXDEV, "absolute path beneath a directory")
        if resolve & RESOLVE_IN_ROOT:
            self.root = self._start()
        else:
            self.root = os.open(f"/proc/{self.tid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.here = os.dup(self.root) if absolute or resolve & RESOLVE_IN_ROOT else self._start()
        must_be_dir = path.endswith(b"/")
        pending = collections.deque(p for p in path.split(b"/") if p)
        if not pending:  # "/"
            return self._reached(b".", must_be_dir=True)
        # O_CREAT|O_EXCL never follows a last symlink: it fails with EEXIST.
        flags = self.request.flags
        follow_last = must_be_dir or not (flags & os.O_NOFOLLOW or flags & os.O_CREAT and flags & os.O_EXCL)
        while pending:
            part = pending.popleft()
            last = not pending
            if part == b".":
                if last:
                    return self._reached(b".", must_be_dir=True)
                continue
            if part == b"..":
                self._up()
                if last:
                    return self._reached(b".", must_be_dir=True)
                continue
            if len(part) > NAME_MAX:
                raise OSError(errno.ENAMETOOLONG, "name too long")
            try:
                st = os.stat(part, dir_fd=self.here, follow_symlinks=False)
            except FileNotFoundError:
                if last:
                    return self._reached(part, must_be_dir)
                raise
            if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                jumped = self._follow(part, pending)
                if jumped is not None:  # a procfs link: the kernel has taken us there
                    if last:
                        return self._reached_jump(jumped, must_be_dir)
                    self._enter(jumped)
                elif not pending:  # the link's text was "/" or the like: its directory
                    return self._reached(b".", must_be_dir=True)
                continue
            if last:
                return self._reached(part, must_be_dir)
            if not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, "not a directory")
            self._enter(os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.here))
            self.depth += 1
        raise AssertionError("unreachable: the loop returns at the last component")

    def _start(self) -> int:
        """The directory a relative path starts from, opened here."""
        dirfd = self.request.dirfd
        if dirfd == AT_FDCWD:
            return os.open(f"/proc/{self.tid}/cwd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = kernel.duplicate_fd(self.pidfd, dirfd)
        except OSError:
            raise OSError(errno.EBADF, "bad dirfd") from None
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.ENOTDIR, "dirfd is not a directory")
        return fd

    def _enter(self, fd: int) -> None:
        """Make fd (a directory reached from here) the current directory."""
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            os.close(fd)
            raise OSError(errno.ENOTDIR, "not a directory")
        if self.resolve & RESOLVE_NO_XDEV and st.st_dev != os.fstat(self.here).st_dev:
            os.close(fd)
            raise OSError(errno.EXDEV, "crosses a mount")
        os.close(self.here)
        self.here = fd

    def _up(self) -> None:
        """'..': never above the program's root (nor, beneath, its start)."""
        if self.resolve & RESOLVE_BENEATH and self.depth == 0:
            raise OSError(errno.EXDEV, "'..' above the starting directory")
        if kernel.file_identity(self.here) == kernel.file_identity(self.root):
            return
        self._enter(os.open(b"..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.here))
        self.depth = max(self.depth - 1, 0)

    def _follow(self, name: bytes, pending: collections.deque) -> int | None:
        """Follow the symlink `name` in the current directory: its text goes
        in front of the pending components; a procfs link is followed by the
        kernel instead, and its target (an O_PATH fd) is returned."""
        self.hops += 1
        if self.hops > MAXSYMLINKS or self.resolve & RESOLVE_NO_SYMLINKS:
            raise OSError(errno.ELOOP, "too many symlinks")
        here = os.fstat(self.here)
        in_procfs = here.st_dev == _proc_dev()
        if in_procfs and here.st_ino == PROC_ROOT_INO and name in (b"self", b"thread-self"):
            text = str(self.tgid).encode() if name == b"self" else f"{self.tgid}/task/{self.tid}".encode()
        elif in_procfs and here.st_ino != PROC_ROOT_INO:
            if self.resolve & (RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH | RESOLVE_IN_ROOT):
                raise OSError(errno.ELOOP if self.resolve & RESOLVE_NO_MAGICLINKS else errno.EXDEV, "magic link")
            return os.open(name, os.O_PATH | os.O_CLOEXEC, dir_fd=self.here)
        else:
            text = os.readlink(name, dir_fd=self.here)
        if text.startswith(b"/"):
            if self.resolve & RESOLVE_BENEATH:
                raise OSError(errno.EXDEV, "absolute symlink beneath a directory")
            os.close(self.here)
            self.here = os.dup(self.root)
            self.depth = 0
        pending.extendleft(reversed([p for p in text.split(b"/") if p]))
        return None

    def _reached(self, name: bytes, must_be_dir: bool) -> Reached:
        try:
            pinned = os.open(name, _PIN, dir_fd=self.here)
        except FileNotFoundError:
            pinned = None
        try:
            if pinned is not None:
                path = procfs.fd_link("self", pinned)
            else:
                path = os.path.join(procfs.fd_link("self", self.here), os.fsdecode(name))
        except BaseException:
            if pinned is not None:
                os.close(pinned)
            raise
        parent, self.here = self.here, None
        return Reached(parent, name, pinned, path, must_be_dir)

    def _reached_jump(self, jumped: int, must_be_dir: bool) -> Reached:
        try:
            path = procfs.fd_link("self", jumped)
        except BaseException:
            os.close(jumped)
            raise
        parent, self.here = self.here, None
        return Reached(parent, b"", jumped, path, must_be_dir)


@functools.cache
def _proc_dev() -> int:
    return os.stat("/proc").st_dev


def reach(tid: int, tgid: int, pidfd: int, request: OpenRequest) -> Reached:
    """Walk the program's path as its own open would; OSError(errno) where
    the program's open would fail during the lookup."""
    return _Walk(tid, tgid, pidfd, request).run()


def lexical_path(tid: int, request: OpenRequest) -> str | None:
    """The path made absolute without following anything: what a rule is
    matched against when the walk itself fails."""
    path = os.fsdecode(request.path)
    if not path.startswith("/"):
        try:
            base = procfs.cwd(tid) if request.dirfd == AT_FDCWD else procfs.fd_link(tid, request.dirfd)
        except OSError:
            return None
        path = os.path.join(base, path)
    return os.path.normpath(path)


def proc_pid(reached: Reached) -> int | None:
    """The pid of a /proc/PID/... file reached in procfs, else None."""
    parts = reached.path.split("/")
    if len(parts) < 3 or parts[1] != "proc" or not parts[2].isdigit():
        return None
    if reached.pinned is None or os.fstat(reached.pinned).st_dev != _proc_dev():
        return None
    return int(parts[2])


def procfs_needs_attach(reached: Reached, tgid: int) -> bool:
    """Another process's /proc/PID file that asks for ptrace attach rights."""
    pid = proc_pid(reached)
    return pid is not None and pid != tgid and reached.path.rsplit("/", 1)[-1] in PROC_ATTACH_FILES


class Replaced(Exception):
    """The file to create appeared after the walk: walk again."""


def open_reached(reached: Reached, flags: int, mode: int) -> int:
    """Open the reached file with the program's flags: a reopen of the pin,
    or a creation relative to the held directory.  Returns our fd (close-on-
    exec here; the program's copy gets its own O_CLOEXEC from ADDFD).  The
    flags the program will see with F_GETFL are its own: nothing is added
    that the kernel keeps in the file."""
    flags |= os.O_CLOEXEC
    if reached.must_be_dir and flags & os.O_CREAT:
        raise OSError(errno.EISDIR, "a directory")
    if reached.pinned is None:
        if reached.must_be_dir or not flags & os.O_CREAT:
            raise OSError(errno.ENOENT, "no such file")
        # O_EXCL (which the file does not keep): whatever was put there since
        # the walk, a symlink included, fails the creation instead of being
        # opened.  O_NONBLOCK: a FIFO put there cannot make superv wait.
        try:
            made = with_umask(reached.umask, lambda: os.open(
                reached.name, flags | os.O_EXCL | os.O_NONBLOCK, mode, dir_fd=reached.parent))
        except FileExistsError:
            if flags & os.O_EXCL:
                raise
            raise Replaced() from None
        if not flags & os.O_NONBLOCK:
            os.set_blocking(made, True)
        return made
    pinned = os.fstat(reached.pinned)
    if flags & os.O_CREAT and flags & os.O_EXCL:
        raise OSError(errno.EEXIST, "exists")
    if stat.S_ISLNK(pinned.st_mode):  # the program asked not to follow it
        raise OSError(errno.ELOOP, "symlink")
    if (reached.must_be_dir or flags & os.O_DIRECTORY) and not stat.S_ISDIR(pinned.st_mode):
        raise OSError(errno.ENOTDIR, "not a directory")
    # The pin is the file that was decided on: open exactly it.  Its magic
    # link must be followed, whatever O_NOFOLLOW the program gave.
    reopen = lambda: os.open(f"/proc/self/fd/{reached.pinned}", flags & ~os.O_NOFOLLOW, mode)  # noqa: E731
    return with_umask(reached.umask, reopen) if flags & O_TMPFILE == O_TMPFILE else reopen()


def with_umask(umask: int, maker):
    """The program's umask applies to what superv creates for it (a file, a
    directory, a device node).  umask is per-process: superv's own files are
    all created before the program starts or after it ends, so the swap
    cannot catch one of them.  (A unix socket's bind sets its own, in a
    thread of its own: _kernel.bind_as.)"""
    saved = os.umask(umask)
    try:
        return maker()
    finally:
        os.umask(saved)


def blocks_on_open(reached: Reached, flags: int) -> bool:
    """Opening a FIFO without O_NONBLOCK waits for the other end."""
    if reached.pinned is None or flags & (os.O_NONBLOCK | os.O_PATH):
        return False
    return stat.S_ISFIFO(os.fstat(reached.pinned).st_mode)
