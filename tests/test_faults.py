"""Bad buffers and bad arguments fail under superv with the errno they fail
with natively, and a read that fails consumes nothing."""

import subprocess

import pytest


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_bad_buffers_and_arguments_fail_as_natively(prog, superv, static):
    program = prog("faults", static=static)
    native = subprocess.run([program], capture_output=True, timeout=30)
    run = superv([program])
    assert run.returncode == native.returncode == 0
    assert run.stdout.decode() == native.stdout.decode()
    lines = run.stdout.decode().splitlines()
    assert "pipe read into a read-only page = -1 EFAULT" in lines
    assert "pipe read, all still there = 10" in lines and "data 0123456789" in lines
    assert "recv, all still there = 6" in lines
    assert "readv of 1025 vectors = -1 EINVAL" in lines
    # A count of 2^31 or more is capped, and stops at the end of the mapping.
    assert "write of 2^31 bytes from two pages = 8192" in lines
    assert "read of 2^32+5 bytes into two pages = 8192" in lines
    # A unix stream send fails by skb: all of the first, or the skbs before the fault.
    assert "unix send of 2^31 bytes from two pages = -1 EFAULT" in lines
    assert "unix send of 2^31 bytes, 50000 readable = 36544" in lines
    assert "unix recv of 1 MiB into two pages = -1 EFAULT" in lines and "unix recv, all still there = 50000" in lines
    # The failed calls are recorded with their errno and moved nothing.
    (process,) = run.processes()
    pipe_in = sum(f["bytes_in"] for f in process["fds"] if f["class"] == "pipe")
    assert pipe_in == 10 + 3 * 8192  # the first read, then read, read and readv of the two pages
    calls = [e for e in run.events if e["type"] == "call" and "fd_in" in e]
    efaults = [i for i, e in enumerate(calls) if e["result"] == -14]
    assert len(efaults) >= 8
    for i in efaults:  # the fd's totals did not move
        before = [e for e in calls[:i] if (e["fd"], e["class"]) == (calls[i]["fd"], calls[i]["class"])]
        moved_before = (before[-1]["fd_in"], before[-1]["fd_out"]) if before else (0, 0)
        assert (calls[i]["fd_in"], calls[i]["fd_out"]) == moved_before, calls[i]


def test_unix_stream_sends_stop_at_the_last_whole_skb_before_a_fault():
    """The rule the emulation applies (measured natively, see faults.c)."""
    from superv.emulate import unix_stream_sent

    default = 212992  # SO_SNDBUF of a fresh unix socket
    assert [unix_stream_sent(n, default) for n in (8192, 36543, 36544, 50000, 73088, 100000)] == \
        [0, 0, 36544, 36544, 73088, 73088]
    assert unix_stream_sent(5000, 8192) == 4032  # a small send buffer makes smaller skbs
