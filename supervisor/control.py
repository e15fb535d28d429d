"""The run's control loop, in trio: it waits for the root process to end,
then for every traced process, and writes a heartbeat meanwhile.

A module of its own so that cli imports trio (~80 ms) only once the
program runs; the receiver and the waiter threads do not need it.
"""

from __future__ import annotations

import os

import trio

from .engine import Supervisor


def run(supervisor: Supervisor, pid: int, pidfd: int, threads, interval: float) -> int | None:
    """The root's wait status (None when the run was abandoned first)."""
    return trio.run(_control, supervisor, pid, pidfd, threads, interval)


async def _control(supervisor: Supervisor, pid: int, pidfd: int, threads, interval: float) -> int | None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_heartbeat, supervisor, interval)
        wait_status = None
        while wait_status is None:
            with trio.move_on_after(0.5):
                await trio.lowlevel.wait_readable(pidfd)
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped:
                wait_status = status
            elif supervisor.stopping:
                break  # abandoned (a third signal): report what we have
        os.close(pidfd)
        with supervisor.lock:
            supervisor.root_status = wait_status
        # The run ends when no traced process is left, not when the first one exits.
        for t in threads:
            await trio.to_thread.run_sync(t.join)
        nursery.cancel_scope.cancel()
    return wait_status


async def _heartbeat(supervisor: Supervisor, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        with supervisor.lock:
            supervisor.apply_notes()
            supervisor.recorder.heartbeat()
