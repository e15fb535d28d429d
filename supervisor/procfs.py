"""Everything superv reads from /proc, one small function per fact.

Callers pass the pid or tid the kernel gave them; /proc/<tid>/... answers for
threads too, although readdir of /proc does not list them.  Errors are the
OSError of the read (ESRCH/ENOENT when the task is gone): callers decide.
"""

from __future__ import annotations

import os

import attrs


@attrs.frozen
class TaskStatus:
    """The fields of /proc/<tid>/status that superv uses."""

    tid: int
    tgid: int
    ppid: int
    threads: int
    pending: int  # SigPnd: signals sent to this thread
    shared_pending: int  # ShdPnd: signals sent to the whole process
    blocked: int  # SigBlk
    ignored: int  # SigIgn
    state: str  # the letter: R, S, D, T, Z...

    @property
    def deliverable(self) -> int:
        """Pending signals this thread does not block."""
        return (self.pending | self.shared_pending) & ~self.blocked


def _read_text(path: str) -> str:
    # os.open and os.read: a file object costs more than the read itself (2 us of 3.5).
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 65536)]
        while chunks[-1]:  # a long children list, a long cmdline
            chunks.append(os.read(fd, 65536))
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


@attrs.frozen
class Credentials:
    """What the kernel checks a task's file access with (/proc/<tid>/status)."""

    uids: str  # real, effective, saved, file system
    gids: str
    groups: str
    capabilities: str  # CapEff
    umask: int


def _status_fields(tid: int | str, keys: tuple[str, ...]) -> dict[str, str]:
    """Only the lines asked for: splitting all ~60 cost twice the read."""
    text = "\n" + _read_text(f"/proc/{tid}/status")
    fields = {}
    for key in keys:
        start = text.index(f"\n{key}:") + len(key) + 2
        fields[key] = text[start : text.index("\n", start)].strip()
    return fields


_CREDENTIAL_KEYS = ("Uid", "Gid", "Groups", "CapEff", "Umask")
_TASK_KEYS = ("Pid", "Tgid", "PPid", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "State")


def credentials(tid: int | str) -> Credentials:
    """tid, or "thread-self" for the calling thread of superv."""
    fields = _status_fields(tid, _CREDENTIAL_KEYS)
    return Credentials(fields["Uid"], fields["Gid"], fields["Groups"], fields["CapEff"], int(fields["Umask"], 8))


def task_status(tid: int) -> TaskStatus:
    fields = _status_fields(tid, _TASK_KEYS)
    return TaskStatus(
        tid=int(fields["Pid"]),
        tgid=int(fields["Tgid"]),
        ppid=int(fields["PPid"]),
        threads=int(fields["Threads"]),
        pending=int(fields["SigPnd"], 16),
        shared_pending=int(fields["ShdPnd"], 16),
        blocked=int(fields["SigBlk"], 16),
        ignored=int(fields["SigIgn"], 16),
        state=fields["State"][:1],
    )


def cmdline(pid: int) -> list[str]:
    """argv; [] for a zombie or a kernel thread."""
    raw = _read_text(f"/proc/{pid}/cmdline")
    if not raw:
        return []
    return raw.split("\0")[:-1] if raw.endswith("\0") else raw.split("\0")


def start_time(pid: int) -> int:
    """When the process started, in clock ticks after boot (field 22 of
    stat): with the pid, it names one process even across pid reuse."""
    stat = _read_text(f"/proc/{pid}/stat")
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def fd_link(pid: int | str, fd: int) -> str:
    """What /proc/<pid>/fd/<fd> points at: a path, socket:[ino], pipe:[ino], anon_inode:...
    (pid "self": an fd of superv's own)."""
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def fd_numbers(pid: int) -> list[int]:
    return sorted(int(name) for name in os.listdir(f"/proc/{pid}/fd"))


def auxv(pid: int) -> bytes:
    with open(f"/proc/{pid}/auxv", "rb") as f:
        return f.read()


def zombie_wait_status(pid: int) -> int | None:
    """The wait status a dead, unreaped process will report (field 52 of stat), else None."""
    try:
        stat = _read_text(f"/proc/{pid}/stat")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] not in ("Z", "X") or len(fields) < 50:
        return None
    return int(fields[49])


def cwd(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/cwd")


def signal_number_set(mask: int) -> list[int]:
    """Signal numbers in a /proc signal mask (bit n-1 is signal n)."""
    return [bit + 1 for bit in range(64) if mask >> bit & 1]


def children(pid: int, tid: int) -> set[int]:
    """Processes forked by this thread (CONFIG_PROC_CHILDREN)."""
    return {int(x) for x in _read_text(f"/proc/{pid}/task/{tid}/children").split()}


def all_children(pid: int) -> set[int]:
    """Children of every thread of a process, zombies included."""
    found: set[int] = set()
    for tid in thread_ids(pid):
        try:
            found |= children(pid, tid)
        except OSError:
            pass  # the thread exited meanwhile
    return found


def thread_ids(pid: int | str) -> set[int]:
    return {int(name) for name in os.listdir(f"/proc/{pid}/task")}
