"""The command line around a run: options, --trace, the heartbeat, the exit
table, the default report folder, and superv's own failures (exit 125)."""

import json
import os
import re
import subprocess

import pytest

from conftest import SUPERV


def test_trace_to_a_file_shows_classified_calls_and_lifecycle(prog, superv, tmp_path):
    trace = tmp_path / "trace.txt"
    run = superv([prog("unpriv_io")], options=(f"--trace={trace}",))
    assert run.returncode == 0
    lines = trace.read_text().splitlines()
    parent = int(re.search(rb"pid=(\d+)", run.stdout)[1])
    child = next(p["pid"] for p in run.processes() if p["ppid"] == parent)
    # The seed's format: [pid] [ NET] read(fd, size) = result
    reads = [line for line in lines if line.startswith(f"[{parent}] [ NET] read(")]
    assert reads and all(re.fullmatch(rf"\[{parent}\] \[ NET\] read\(\d+, 4096\) = \d+", line) for line in reads)
    assert sum(int(line.rsplit("= ", 1)[1]) for line in reads) == 5000
    assert any(re.fullmatch(rf"\[{child}\] \[ NET\] write\(\d+, 1234\) = 1234", line) for line in lines)
    assert any(re.fullmatch(rf"\[{parent}\] \[PIPE\] write\(\d+, \d+\) = \d+", line) for line in lines)
    assert any(f"[{parent}]  fd" in line and "classified: net (unix-stream" in line for line in lines)
    assert any(line.startswith(f"[{child}]  process {child} started, parent {parent}") for line in lines)
    assert any(line.startswith(f"[{parent}]  exec ") for line in lines)
    assert any(line == f"[{child}]  exit: exited 0" for line in lines)
    assert any(re.fullmatch(rf"\[{parent}\] socketpair\(.*\) = 0", line) for line in lines)
    assert run.stderr == b""  # -q, and the trace went to the file


@pytest.mark.parametrize("mode", ["udpaddr", "vecat"])
def test_a_data_call_is_traced_alike_by_the_fast_path_and_by_python(prog, superv, tmp_path, mode):
    """The same program traced with the fast path and without it
    (SUPERV_FASTPATH=0, every call served by Python): each data call's
    line is the same (recvfrom with its flags, readv and recvmsg with no
    count), whichever side served it."""
    program = [prog("exact_io"), mode, tmp_path / "file.bin"]

    def data_lines(name, fast):
        trace = tmp_path / f"{name}.txt"
        run = superv(program, options=(f"--trace={trace}",), name=name,
                     env={**os.environ, "SUPERV_FASTPATH": "1" if fast else "0"})
        assert run.returncode == 0, run.stderr
        calls = run.summary["calls_answered"]
        assert (calls["fast"] > 0) == fast
        return [re.sub(r"^\[\d+\] ", "", line) for line in trace.read_text().splitlines()
                if re.match(r"\[\d+\] \[[ A-Z]{4}\] ", line)]

    served_here = data_lines("fast", True)
    assert served_here and served_here == data_lines("python", False)


def test_trace_on_stderr_and_exit_table(prog, tmp_path):
    done = subprocess.run([*SUPERV, "run", "-o", str(tmp_path / "o"), "--trace", "--", prog("unpriv_io")],
                          capture_output=True, timeout=60)
    assert done.returncode == 0
    err = done.stderr.decode()
    assert re.search(r"^\[\d+\] \[ NET\] read\(\d+, 4096\) = \d+$", err, re.M)
    table = err[re.search(r"^pid +class", err, re.M).start():].splitlines()
    assert re.fullmatch(r"pid +class +calls +bytes in +bytes out", table[0])
    assert any(re.fullmatch(r"\d+ +net +\d+ +5000 +0", row) for row in table[1:])
    assert f"superv: reports in {tmp_path / 'o'}" in err


def test_quiet_prints_nothing_of_its_own(prog, superv):
    run = superv([prog("unpriv_io")])
    assert run.returncode == 0 and run.stderr == b""


def test_default_report_folder_is_named_by_time_and_program(prog, tmp_path):
    done = subprocess.run([*SUPERV, "run", "-q", "--", prog("unpriv_io")], cwd=tmp_path, capture_output=True,
                          timeout=60)
    assert done.returncode == 0
    (folder,) = os.listdir(tmp_path / "superv-out")
    assert re.fullmatch(r"\d{8}-\d{6}-unpriv_io", folder)
    assert (tmp_path / "superv-out" / folder / "summary.json").exists()


def test_heartbeat_samples_active_fds(prog, superv):
    run = superv([prog("slow_stream"), "12", "50"], options=("--interval", "0.1"))
    assert run.returncode == 0
    writer = next(p for p in run.processes() if p["ppid"] != os.getpid() and p["classes"].get("pipe", {}).get("bytes_out"))
    samples = [e for e in run.events if e["type"] == "sample" and e["pid"] == writer["pid"]]
    assert len(samples) >= 3
    outs = [s["fd_out"] for s in samples]
    assert outs == sorted(outs) and outs[0] < outs[-1] <= 1200
    assert all(s["class"] == "pipe" and s["fd_in"] == 0 for s in samples)
    # Samples cover open fds; the final count is in the fd's close (or exit).
    assert writer["classes"]["pipe"]["bytes_out"] == 1200


def test_a_run_ends_with_its_last_process_not_with_the_root(superv, tmp_path):
    """The root exits at once (the control loop's quick wait sees it end),
    while its background child writes for 0.4 s more: superv waits for the
    child, samples its fd meanwhile, and exits with the root's status."""
    out = tmp_path / "late.txt"
    script = f"(for i in 1 2 3 4; do echo $i; sleep 0.1; done > {out}) & exit 3"
    run = superv(["/bin/sh", "-c", script], options=("--interval", "0.05"))
    assert run.returncode == 3, run.stderr.decode()
    assert out.read_text() == "1\n2\n3\n4\n"  # written whole before superv returned
    root = run.processes()[0]
    child = next(p for p in run.processes() if p["ppid"] == root["pid"] and p["classes"].get("disk"))
    assert root["exit_status"] == 3 and child["exit_status"] == 0
    assert child["classes"]["disk"]["bytes_out"] == 8
    assert child["ended"] - root["ended"] > 0.1  # it wrote for 0.4 s after the root ended
    assert any(e["type"] == "sample" and e["pid"] == child["pid"] for e in run.events)


def test_events_stream_has_the_documented_fields(prog, superv):
    run = superv([prog("unpriv_io")])
    events = run.events
    for e in events:
        assert e["schema"] == 1
        assert {"type", "seq", "mono", "wall", "pid"} <= set(e)
    calls = [e for e in events if e["type"] == "call" and e["kind"] == "read" and e["class"] == "net"]
    assert calls
    for e in calls:
        assert {"tid", "syscall", "fd", "detail", "result", "exact", "fd_in", "fd_out"} <= set(e)
        assert e["exact"] is True
    assert calls[-1]["fd_in"] == 5000
    # Per process, seq numbers are unique and start at 0.
    by_pid = {}
    for e in events:
        if e["type"] == "call":
            by_pid.setdefault(e["pid"], []).append(e["seq"])
    for seqs in by_pid.values():
        assert sorted(seqs) == list(range(len(seqs)))
    kinds = {e["type"] for e in events}
    assert {"process", "fork", "exec", "fd", "fd_closed", "call", "exit"} <= kinds


def test_unwritable_report_folder_is_refused_with_125(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = subprocess.run([*SUPERV, "run", "-o", str(blocker / "out"), "--", "/bin/true"], capture_output=True,
                          timeout=60)
    assert done.returncode == 125
    assert done.stderr.decode().strip() == f"superv: cannot write reports to {blocker / 'out'}: Not a directory"


def test_unwritable_trace_file_is_refused_with_125(tmp_path):
    done = subprocess.run([*SUPERV, "run", "-o", str(tmp_path / "o"), f"--trace={tmp_path}/no/such/dir/t",
                           "--", "/bin/true"], capture_output=True, timeout=60)
    assert done.returncode == 125
    assert "cannot write the trace" in done.stderr.decode()


def test_superv_under_superv_refuses_cleanly(superv, tmp_path):
    """A second listener in one filter chain is EBUSY (kernel-facts Q1e): the
    inner superv cannot install its filter and says so, with status 125."""
    inner = [*SUPERV, "run", "-q", "-o", str(tmp_path / "inner"), "--", "/bin/true"]
    run = superv(inner)
    assert run.returncode == 125
    assert b"cannot install the seccomp filter: Device or resource busy" in run.stderr
    assert json.loads((run.out / "summary.json").read_text())["exit_status"] == 125


def test_bad_interval_is_a_usage_error(tmp_path):
    done = subprocess.run([*SUPERV, "run", "--interval", "0", "--", "/bin/true"], capture_output=True, timeout=60)
    assert done.returncode == 125
    assert b"must be more than 0" in done.stderr


def test_shutdown_is_recorded_whichever_path_takes_it(prog, superv, tmp_path):
    """The first shutdown comes while socketpair's result is still to be
    learnt (Python takes it), the second on an fd the fast path serves: both
    give the same event and trace line, and the program sees each take effect."""
    trace = tmp_path / "trace.txt"
    run = superv([prog("shutdown_io")], options=(f"--trace={trace}",))
    assert run.returncode == 0, run.stdout
    first, second = map(int, re.fullmatch(rb"fds (\d+) (\d+)\n", run.stdout).groups())
    pid = run.processes()[0]["pid"]
    shutdowns = [e for e in run.events if e.get("syscall") == "shutdown"]
    assert [(e["pid"], e["fd"], e["result"]) for e in shutdowns] == [(pid, first, None), (pid, second, None)]
    lines = trace.read_text().splitlines()
    assert [line for line in lines if "shutdown(" in line] == [f"[{pid}] shutdown({first}) = ?",
                                                               f"[{pid}] shutdown({second}) = ?"]


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (root only: mounting needs it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_reports_on_a_full_disk_keep_what_fits_and_say_so(small_disk):
    """--out on a disk that fills up: the program runs to its end unharmed;
    events.jsonl keeps whole lines, summary.json is written whole (the end
    of events.jsonl makes room for it), and superv says what is missing,
    with status 125."""
    import json

    out = small_disk / "out"
    done = subprocess.run([*SUPERV, "run", "-q", "-o", str(out), f"--trace={small_disk / 'trace.txt'}", "--",
                           "sh", "-c", "seq 1 100000 | cat > /dev/null; echo done"], capture_output=True, timeout=120)
    assert done.stdout == b"done\n"
    assert done.returncode == 125
    message = done.stderr.decode()
    assert message.startswith(f"superv: the reports in {out} are incomplete (") and "No space left on device" in message
    assert message.rstrip().endswith("The program exited 0.")
    lines = (out / "events.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line) for line in lines)
    assert json.loads((out / "summary.json").read_text())["exit"] == "exited 0"
