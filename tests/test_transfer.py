"""splice, tee, vmsplice, sendfile and copy_file_range: the same results and
data as natively, recorded on both fds; and a pipe the program spliced (which
the kernel then refuses RWF_NOWAIT on) still takes plain writes and reads."""

import subprocess

import pytest


@pytest.mark.parametrize("fast", ["1", "0"], ids=["fast-path", "python"])
def test_transfer_calls_as_natively(prog, superv, tmp_path, fast):
    import os

    program = prog("transfer")
    native = subprocess.run([program, tmp_path / "native.bin"], capture_output=True, timeout=30)
    env = dict(os.environ, SUPERV_FASTPATH=fast)
    run = superv([program, tmp_path / "traced.bin"], env=env)
    assert run.returncode == native.returncode == 0
    assert run.stdout.decode() == native.stdout.decode()
    lines = run.stdout.decode().splitlines()
    assert "splice file->pipe 1234 off 1334" in lines
    assert "write p 5 write q 5" in lines and "read p 5 read q 5" in lines
    (process,) = run.processes()
    kinds = {}
    for cls in process["classes"].values():
        for kind, totals in cls["kinds"].items():
            kinds.setdefault(kind, [0, 0])
            kinds[kind][0] += totals["calls"]
            kinds[kind][1] += totals["bytes"]
    # Each transfer counts on both of its fds: bytes in on one, out on the other.
    assert kinds["splice"] == [4, 2 * (1234 + 1234)]
    assert kinds["tee"] == [2, 2 * 1000]
    assert kinds["sendfile"] == [4, 2 * (2500 + 300)]
    assert kinds["copy_file_range"] == [2, 2 * 4000]
    assert kinds["vmsplice"] == [2, 777 + 500]
    splices = [e for e in run.events if e["type"] == "call" and e["syscall"] == "splice"]
    assert [e["result"] for e in splices] == [1234, 1234, -9]
