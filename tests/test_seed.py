"""Acceptance 1: ntrace's seed scenario, byte for byte in its report format.

The server (examples/seed.c) accepts one connection and forks a child that
reads the socket into a 2048-byte buffer and writes what it got into a pipe;
the parent reads the pipe.  A client outside superv sends 2048 bytes.
"""

import subprocess

import pytest

from conftest import REPO, finish, free_port, start_superv


def build_seed(static: bool):
    target = REPO / "build" / ("seed-static" if static else "seed")
    source = REPO / "examples" / "seed.c"
    if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
        target.parent.mkdir(exist_ok=True)
        subprocess.run(["cc", "-O2", "-Wall", *(["-static"] if static else []), "-o", str(target), str(source)],
                       check=True)
    return target


def run_seed(tmp_path, static: bool, mode: str):
    seed = build_seed(static)
    port = free_port()
    args = [seed, "serve", port] + ([mode] if mode == "recv" else [])
    proc, out = start_superv(args, tmp_path)
    client = subprocess.run([str(seed), "send", str(port), "2048"], timeout=30)
    run = finish(proc, out)
    assert client.returncode == 0
    assert run.returncode == 0, run.stderr.decode()
    return run


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
@pytest.mark.parametrize("mode", ["read", "recv"])
def test_seed_scenario(tmp_path, static, mode):
    run = run_seed(tmp_path, static, mode)
    processes = run.processes()
    assert len(processes) == 2
    parent = next(p for p in processes if p["argv"][1:2] == ["serve"] and p["pid"] != p.get("child"))
    child = next(p for p in processes if p["ppid"] == parent["pid"])
    assert parent["exit_status"] == 0 and child["exit_status"] == 0

    child_log = run.log(child["pid"])
    # Two network reads: 2048, then 0 at EOF; recv_so_far 2048 after each.
    assert [(r.call, r.size, r.recv_so_far, r.send_so_far) for r in child_log.rows] == [
        (mode, 2048, 2048, 0),
        (mode, 0, 2048, 0),
    ]
    assert all(r.pid == child["pid"] for r in child_log.rows)
    assert child_log.rows[0].seq < child_log.rows[1].seq
    net = child_log.sections["Network"]
    assert list(net.fds.values()) == [(2048, 0)]
    assert net.totals == (2048, 0)
    assert net.kinds[mode] == (2, 2048)
    pipe = child_log.sections["Pipe"]
    assert pipe.totals == (0, 2048)
    assert pipe.kinds["write"] == (1, 2048)
    # The eight ntrace kinds, in ntrace's order, in every section.
    for section in child_log.sections.values():
        assert list(section.kinds)[:8] == ["read", "recv", "recvfrom", "recvmsg", "write", "send", "sendto", "sendmsg"]
    assert list(child_log.sections)[:3] == ["Network", "Pipe", "Disk"]

    parent_log = run.log(parent["pid"])
    assert parent_log.rows == []
    assert parent_log.sections["Pipe"].kinds["read"] == (2, 2048)
    assert parent_log.sections["Pipe"].totals == (2048, 0)
    assert parent_log.sections["Network"].totals == (0, 0)

    # One connection: accepted by the parent, read by the child.
    tcp = [c for c in run.summary["connections"] if c["proto"] == "tcp" and c["bytes_in"]]
    assert len(tcp) == 1
    assert tcp[0]["bytes_in"] == 2048 and tcp[0]["pids"] == [child["pid"]]
    assert tcp[0]["local"].startswith("127.0.0.1:")
