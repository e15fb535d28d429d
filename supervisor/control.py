"""The run's control loop, in trio: it waits for the root process to end,
then for every traced process, and writes a heartbeat meanwhile.

trio takes ~50 ms to import, a third of a short command's whole run under
superv: a run that is over within its first heartbeat interval (at most
QUICK_RUN) is waited for with a plain poll and never imports it.  The
receiver and the waiter threads do not need it either.
"""

from __future__ import annotations

import os
import select
import time

from .engine import Supervisor

QUICK_RUN = 0.1  # seconds


def run(supervisor: Supervisor, pid: int, pidfd: int, threads, interval: float) -> int | None:
    """The root's wait status (None when the run was abandoned first)."""
    wait_status = _quick_run(supervisor, pid, pidfd, threads, min(QUICK_RUN, interval))
    if wait_status is not None and not any(t.is_alive() for t in threads):
        return wait_status
    import trio

    return trio.run(_control, supervisor, pid, pidfd, threads, interval, wait_status)


def _quick_run(supervisor: Supervisor, pid: int, pidfd: int, threads, within: float) -> int | None:
    """The root's wait status if it ended within `within` seconds, once the
    threads are done too or that time is up; else None."""
    deadline = time.monotonic() + within
    if not select.select([pidfd], [], [], within)[0]:
        return None
    reaped, status = os.waitpid(pid, os.WNOHANG)
    if not reaped:
        return None
    _root_ended(supervisor, pidfd, status)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return status


def _root_ended(supervisor: Supervisor, pidfd: int, wait_status: int | None) -> None:
    os.close(pidfd)
    with supervisor.lock:
        supervisor.root_status = wait_status


async def _control(supervisor: Supervisor, pid: int, pidfd: int, threads, interval: float,
                   wait_status: int | None) -> int | None:
    """wait_status: the root's, when it was reaped already (_quick_run)."""
    import trio

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_heartbeat, supervisor, interval)
        if wait_status is None:
            wait_status = await _wait_for_root(supervisor, pid, pidfd)
            _root_ended(supervisor, pidfd, wait_status)
        # The run ends when no traced process is left, not when the first one exits.
        for t in threads:
            await trio.to_thread.run_sync(t.join)
        nursery.cancel_scope.cancel()
    return wait_status


async def _wait_for_root(supervisor: Supervisor, pid: int, pidfd: int) -> int | None:
    """Its wait status; None when the run was abandoned first (a third signal)."""
    import trio

    while True:
        with trio.move_on_after(0.5):
            await trio.lowlevel.wait_readable(pidfd)
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return status
        if supervisor.stopping:
            return None


async def _heartbeat(supervisor: Supervisor, interval: float) -> None:
    import trio

    while True:
        await trio.sleep(interval)
        with supervisor.lock:
            supervisor.apply_notes()
            supervisor.recorder.heartbeat()
