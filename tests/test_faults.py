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


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_tcp_sends_from_a_buffer_that_faults_send_whole_chunks_as_natively(prog, superv, static):
    """A TCP send copies page fragments of the sending thread and drops the
    one that faults.  superv sends from a buffer that faults where the
    caller's does, from one thread of its own: for a single-threaded
    program, whose thread's fragments went the same way, the same counts."""
    program = prog("tcp_fault", static=static)
    native = subprocess.run([program], capture_output=True, timeout=30)
    run = superv([program])
    assert run.returncode == native.returncode == 0
    assert run.stdout.decode() == native.stdout.decode()
    lines = run.stdout.decode().splitlines()
    results = [line.split(" = ")[1] for line in lines if line.startswith("send,")]
    readable = [int(line.split()[1]) for line in lines if line.startswith("send,")]
    assert "-1 EFAULT" in results and any(r.isdigit() for r in results)
    for r, n in zip(results, readable):
        assert r == "-1 EFAULT" or 0 < int(r) < n  # never the chunk with the fault
    sent = sum(int(r) for r in results if r.isdigit())
    assert lines[-1] == f"received {sent}, sent {sent}"
    sends = [e for e in run.events if e["type"] == "call" and e["syscall"] == "sendto"]
    assert [e["result"] for e in sends] == [-14 if r == "-1 EFAULT" else int(r) for r in results]
    assert sends[-1]["fd_out"] == sent
