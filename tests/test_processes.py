"""Acceptance 5 and 6: processes, threads and exit statuses.

The test programs say who they are (pid, ppid, argv) on stderr; superv's
summary.json must say the same of every process, each process must have its
<pid>.log, and the bytes each thread moved must add up to its process's totals.
Then exit statuses: the target's (128+N for signal N), 126/127 when it cannot
be run, 125 for superv's own usage errors.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SUPERV, Run, parse_log, wait_for

IN_CALLS = {"read", "readv", "pread64", "preadv", "preadv2", "recvfrom", "recvmsg", "recvmmsg"}
OUT_CALLS = {"write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg", "sendmmsg"}
CHILD_BYTES, GRANDCHILD_BYTES = 70000, 50000  # as in proc_tree.c


def who_lines(stderr: bytes) -> list[dict]:
    """The `who=ROLE pid=P ppid=Q argv=A|B` lines the programs print."""
    found = []
    for m in re.finditer(rb"^who=(\S+) pid=(\d+) ppid=(\d+) argv=(.*)$", stderr, re.M):
        found.append({"role": m[1].decode(), "pid": int(m[2]), "ppid": int(m[3]), "argv": m[4].decode().split("|")})
    return found


def by_pid(run: Run) -> dict[int, dict]:
    return {p["pid"]: p for p in run.processes()}


def assert_reports_complete(run: Run) -> dict:
    """summary.json parses, every events.jsonl line is JSON, every process has
    its log, and each log's sections agree with summary.json."""
    summary = json.loads((run.out / "summary.json").read_text())
    lines = (run.out / "events.jsonl").read_text().splitlines()
    assert lines
    for line in lines:
        json.loads(line)
    assert summary["processes"]
    for p in summary["processes"]:
        log = parse_log((run.out / f"{p['pid']}.log").read_text())
        titles = {"net": "Network", "pipe": "Pipe", "disk": "Disk"}
        for cls, title in titles.items():
            totals = p["classes"].get(cls, {"bytes_in": 0, "bytes_out": 0})
            assert log.sections[title].totals == (totals["bytes_in"], totals["bytes_out"]), (p["pid"], title)
    return summary


def assert_matches_who(run: Run, who: list[dict]) -> None:
    """Every process that said who it is is in summary.json with that ppid and argv."""
    processes = by_pid(run)
    for w in who:
        assert w["pid"] in processes, f"{w} missing from {sorted(processes)}"
        p = processes[w["pid"]]
        assert p["ppid"] == w["ppid"], (w, p["ppid"])
        assert p["argv"] == w["argv"], (w, p["argv"])


def fd_entry(process: dict, fd: int, fd_class: str) -> dict:
    found = [f for f in process["fds"] if f["fd"] == fd and f["class"] == fd_class]
    assert len(found) == 1, process["fds"]
    return found[0]


# -- fork, vfork, posix_spawn ---------------------------------------------------------------


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_fork_tree(prog, superv, static):
    """root -> child -> grandchild; the two descendants write into one pipe,
    the root reads it all."""
    path = str(prog("proc_tree", static=static))
    run = superv([path, "fork"])
    assert run.returncode == 0, run.stderr.decode()
    m = re.fullmatch(rb"root read (\d+) \(pipe r=(\d+) w=(\d+)\) child status 0\n", run.stdout)
    assert m, run.stdout
    assert int(m[1]) == CHILD_BYTES + GRANDCHILD_BYTES
    r, w = int(m[2]), int(m[3])

    who = {x["role"]: x for x in who_lines(run.stderr)}
    assert set(who) == {"root", "child", "grandchild"}
    assert who["child"]["ppid"] == who["root"]["pid"]
    assert who["grandchild"]["ppid"] == who["child"]["pid"]
    summary = assert_reports_complete(run)
    assert_matches_who(run, list(who.values()))
    assert len(summary["processes"]) == 3
    assert summary["exit_status"] == 0
    assert all(p["exit_status"] == 0 for p in summary["processes"])

    processes = by_pid(run)
    root, child, grandchild = (processes[who[k]["pid"]] for k in ("root", "child", "grandchild"))
    assert root["argv"] == [path, "fork"] and root["execs"] == [[path, "fork"]]
    assert child["execs"] == [] and grandchild["execs"] == []
    assert fd_entry(root, r, "pipe")["bytes_in"] == CHILD_BYTES + GRANDCHILD_BYTES
    assert fd_entry(child, w, "pipe")["bytes_out"] == CHILD_BYTES
    assert fd_entry(grandchild, w, "pipe")["bytes_out"] == GRANDCHILD_BYTES
    # fork events name the parent.
    forks = {e["pid"]: e["ppid"] for e in run.events if e["type"] == "fork"}
    assert forks == {child["pid"]: root["pid"], grandchild["pid"]: child["pid"]}


def test_a_child_uses_its_parents_view_of_an_inherited_fd_only_if_it_is_the_same_file(prog, superv):
    """The first child writes into the pipe it inherited: it keeps the
    parent's classification (an fd event marked inherited).  The second puts
    /dev/null on that number first: classified afresh, and no pipe entry."""
    run = superv([str(prog("proc_tree")), "inherit"])
    assert run.returncode == 0, run.stderr.decode()
    m = re.fullmatch(rb"inherit read (\d+) w=(\d+)\n", run.stdout)
    assert m, run.stdout
    assert int(m[1]) == 1000 + 2000
    w = int(m[2])
    summary = assert_reports_complete(run)
    root = next(p for p in summary["processes"] if p["ppid"] not in by_pid(run))
    first, second = sorted((p for p in summary["processes"] if p is not root), key=lambda p: p["pid"])
    assert fd_entry(root, w, "pipe")["bytes_out"] == 1000
    assert fd_entry(first, w, "pipe")["bytes_out"] == 2000
    assert [f["class"] for f in second["fds"] if f["fd"] == w] == ["device"]
    assert fd_entry(second, w, "device")["bytes_out"] == 3000
    fd_events = {(e["pid"], e["fd"]): e for e in run.events if e["type"] == "fd"}
    assert fd_events[(first["pid"], w)]["inherited"] is True
    assert fd_events[(second["pid"], w)]["inherited"] is False
    assert fd_events[(second["pid"], w)]["path"] == "/dev/null"


@pytest.mark.parametrize("mode", ["vfork", "spawn"])
def test_vfork_or_posix_spawn_then_exec(prog, superv, mode):
    """vfork() + execv(), and posix_spawn() (clone with CLONE_VFORK): the child
    is recorded with its parent and its argv after the exec."""
    path = str(prog("proc_tree"))
    run = superv([path, mode])
    assert run.returncode == 0, run.stderr.decode()
    m = re.fullmatch(rb"%s child (\d+) status 0\n" % mode.encode(), run.stdout)
    assert m, run.stdout
    who = {x["role"]: x for x in who_lines(run.stderr)}
    role = mode + "ed"
    assert set(who) == {"root", role}
    assert who[role]["pid"] == int(m[1])
    summary = assert_reports_complete(run)
    assert_matches_who(run, list(who.values()))
    assert len(summary["processes"]) == 2
    child = by_pid(run)[who[role]["pid"]]
    assert child["ppid"] == who["root"]["pid"]
    assert child["argv"] == [path, "info", role]
    assert child["execs"] == [[path, "info", role]]
    assert child["exit_status"] == 0
    execs = [e for e in run.events if e["type"] == "exec" and e["pid"] == child["pid"]]
    assert [e["argv"] for e in execs] == [[path, "info", role]]


def test_exec_chain_keeps_the_pid(prog, superv):
    """A program that execs itself three times: one process, four execs in order."""
    path = str(prog("proc_tree"))
    run = superv([path, "execchain", "3"])
    assert run.returncode == 0, run.stderr.decode()
    who = who_lines(run.stderr)
    assert [w["argv"] for w in who] == [[path, "execchain", str(n)] for n in (3, 2, 1, 0)]
    assert len({w["pid"] for w in who}) == 1
    summary = assert_reports_complete(run)
    assert len(summary["processes"]) == 1
    p = summary["processes"][0]
    assert p["pid"] == who[0]["pid"] and p["ppid"] == who[0]["ppid"]
    assert p["argv"] == [path, "execchain", "0"]
    assert p["execs"] == [[path, "execchain", str(n)] for n in (3, 2, 1, 0)]
    assert [e["argv"] for e in run.events if e["type"] == "exec"] == p["execs"]


# -- exec chains through a shell --------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes((i * 7 + i // 300) & 0xFF for i in range(123457)))
    return path


def test_sh_pipeline_of_real_programs(superv, data_file):
    """/bin/sh -c 'cat FILE | wc -c': sh forks two children that exec cat and wc."""
    size = data_file.stat().st_size
    command = f"cat {data_file} | wc -c"
    run = superv(["/bin/sh", "-c", command])
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout == f"{size}\n".encode()
    summary = assert_reports_complete(run)
    sh = run.process(argv0_endswith="sh")
    cat = run.process(argv0_endswith="cat")
    wc = run.process(argv0_endswith="wc")
    assert len(summary["processes"]) == 3
    assert sh["argv"] == ["/bin/sh", "-c", command]
    assert cat["argv"] == ["cat", str(data_file)] and cat["execs"] == [["cat", str(data_file)]]
    assert wc["argv"] == ["wc", "-c"] and wc["execs"] == [["wc", "-c"]]
    assert cat["ppid"] == sh["pid"] and wc["ppid"] == sh["pid"]
    assert all(p["exit_status"] == 0 for p in summary["processes"])
    # The file's bytes: read by cat from the file, through the pipe, into wc.
    file_fds = [f for f in cat["fds"] if f["class"] == "disk" and str(data_file) in f["detail"]]
    assert [f["bytes_in"] for f in file_fds] == [size]
    assert cat["classes"]["pipe"]["bytes_out"] == size
    assert wc["classes"]["pipe"]["bytes_in"] == size
    assert fd_entry(wc, 1, "pipe")["bytes_out"] == len(run.stdout)


def test_sh_pipeline_of_programs_that_say_who_they_are(prog, superv, data_file):
    """sh -c 'P first < FILE | P second | P third': pids, ppids and argv after
    exec as the programs see them; the bytes through every stage."""
    path = str(prog("proc_tree"))
    size = data_file.stat().st_size
    command = f"{path} info first cat < {data_file} | {path} info second cat | {path} info third cat"
    run = superv(["/bin/sh", "-c", command])
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout == data_file.read_bytes()
    who = {w["role"]: w for w in who_lines(run.stderr)}
    assert set(who) == {"first", "second", "third"}
    summary = assert_reports_complete(run)
    assert_matches_who(run, list(who.values()))
    sh = run.process(argv0_endswith="sh")
    assert len(summary["processes"]) == 4
    processes = by_pid(run)
    for role in who:
        p = processes[who[role]["pid"]]
        assert p["ppid"] == sh["pid"]
        assert p["execs"] == [[path, "info", role, "cat"]]
        assert p["exit_status"] == 0
    first, second, third = (processes[who[r]["pid"]] for r in ("first", "second", "third"))
    assert fd_entry(first, 0, "disk")["bytes_in"] == size
    assert fd_entry(first, 1, "pipe")["bytes_out"] == size
    assert (fd_entry(second, 0, "pipe")["bytes_in"], fd_entry(second, 1, "pipe")["bytes_out"]) == (size, size)
    assert (fd_entry(third, 0, "pipe")["bytes_in"], fd_entry(third, 1, "pipe")["bytes_out"]) == (size, size)


def test_sh_exec_replaces_the_shell(prog, superv):
    """sh -c 'exec P info solo': one process, the shell's then the program's argv."""
    path = str(prog("proc_tree"))
    command = f"exec {path} info solo"
    run = superv(["/bin/sh", "-c", command])
    assert run.returncode == 0, run.stderr.decode()
    (who,) = who_lines(run.stderr)
    summary = assert_reports_complete(run)
    assert len(summary["processes"]) == 1
    p = summary["processes"][0]
    assert (p["pid"], p["ppid"]) == (who["pid"], who["ppid"])
    assert p["argv"] == [path, "info", "solo"] == who["argv"]
    assert p["execs"] == [["/bin/sh", "-c", command], [path, "info", "solo"]]


# -- 50 threads at once ---------------------------------------------------------------------

PAIRS = 25


def test_fifty_threads_doing_io_at_once(prog, superv):
    """25 writer and 25 reader threads on 25 pipes, started together: each
    thread's recorded bytes are what it moved, and they add up to the totals."""
    run = superv([prog("proc_threads"), str(PAIRS)])
    assert run.returncode == 0, run.stderr.decode()
    rows = re.findall(rb"^tid=(\d+) role=(\w+) pair=(\d+) in=(\d+) out=(\d+)$", run.stdout, re.M)
    assert len(rows) == 2 * PAIRS
    main_tid = int(re.search(rb"^main tid=(\d+)$", run.stdout, re.M)[1])
    threads = {int(t): (int(i), int(o)) for t, _, _, i, o in rows}
    assert len(threads) == 2 * PAIRS and main_tid not in threads
    for _tid, role, pair, i, o in rows:
        expected = 20000 + 1000 * int(pair)
        assert (int(i), int(o)) == ((expected, 0) if role == b"reader" else (0, expected))

    summary = assert_reports_complete(run)
    (process,) = summary["processes"]
    assert process["pid"] == main_tid
    recorded: dict[int, list[int]] = {}
    for e in run.events:
        if e["type"] != "call" or "exact" not in e or e["syscall"] not in IN_CALLS | OUT_CALLS:
            continue
        assert e["exact"], e
        if e["class"] not in ("pipe", "net"):
            continue  # the dynamic loader's reads of libraries
        totals = recorded.setdefault(e["tid"], [0, 0])
        if e["result"] is not None and e["result"] > 0:
            totals[0 if e["syscall"] in IN_CALLS else 1] += e["result"]
    # Each worker thread: exactly what it says it moved.
    for tid, (i, o) in threads.items():
        assert recorded.get(tid) == [i, o], tid
    # The main thread: only its report on stdout.
    assert recorded.get(main_tid) == [0, len(run.stdout)]
    assert set(recorded) == set(threads) | {main_tid}
    # And the threads add up to the process's totals.
    pipe = process["classes"]["pipe"]
    assert pipe["bytes_in"] == sum(i for i, _ in threads.values())
    assert pipe["bytes_out"] == sum(o for _, o in threads.values()) + len(run.stdout)
    assert sum(v[0] for v in recorded.values()) == pipe["bytes_in"]
    assert sum(v[1] for v in recorded.values()) == pipe["bytes_out"]


# -- exit statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize("args, status, text", [
    (["code", "0"], 0, "exited 0"),
    (["code", "3"], 3, "exited 3"),
    (["signal", "9"], 137, "killed by SIGKILL"),
    (["segv"], 139, "killed by SIGSEGV"),
    (["signal", "15"], 143, "killed by SIGTERM"),
], ids=["0", "3", "sigkill", "sigsegv", "sigterm"])
def test_exit_status_is_the_targets(prog, superv, args, status, text):
    path = str(prog("proc_exit"))
    run = superv([path, *args])
    assert run.returncode == status, run.stderr.decode()
    assert run.stdout == b"started\n"
    assert run.stderr == b""
    summary = assert_reports_complete(run)
    assert summary["exit_status"] == status
    (p,) = summary["processes"]
    assert p["exit_status"] == status
    assert p["exit"].startswith(text), p["exit"]
    assert p["argv"] == [path, *args]
    exits = [e for e in run.events if e["type"] == "exit"]
    assert [(e["pid"], e["status"]) for e in exits] == [(p["pid"], status)]


@pytest.mark.parametrize("how", ["child-signal", "child-silent-signal"])
def test_a_child_killed_by_a_signal_is_recorded(prog, superv, how):
    """A child that says hello then kills itself with SIGKILL; and one that
    kills itself before any traced call (its parent reaps it before making
    one): both are processes of the run, killed by SIGKILL (137)."""
    run = superv([prog("proc_exit"), how, "9"])
    assert run.returncode == 0, run.stderr.decode()
    m = re.search(rb"^child (\d+) killed by 9$", run.stdout, re.M)
    assert m, run.stdout
    assert (b"child here\n" in run.stdout) == (how == "child-signal")
    summary = assert_reports_complete(run)
    assert summary["exit_status"] == 0
    processes = by_pid(run)
    assert int(m[1]) in processes, f"child {int(m[1])} missing: {[p['pid'] for p in summary['processes']]}"
    child = processes[int(m[1])]
    assert child["exit_status"] == 137 and child["exit"].startswith("killed by SIGKILL")
    assert (run.out / f"{child['pid']}.log").exists()


def assert_refused(run: Run, status: int, message: str) -> None:
    assert run.returncode == status, (run.returncode, run.stderr)
    assert run.stderr.decode() == message + "\n"
    assert run.stdout == b""


def test_not_executable_file_is_126(superv, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o644)
    assert_refused(superv([script]), 126, f"superv: {script}: Permission denied")


def test_directory_is_126(superv, tmp_path):
    assert_refused(superv([tmp_path]), 126, f"superv: {tmp_path}: Is a directory")


def test_command_not_found_is_127(superv):
    assert_refused(superv(["superv-no-such-command-4711"]), 127,
                   "superv: superv-no-such-command-4711: command not found")


def test_missing_path_is_127(superv, tmp_path):
    missing = tmp_path / "nothing-here"
    assert_refused(superv([missing]), 127, f"superv: {missing}: No such file or directory")


def test_found_on_path_but_not_executable_is_126(superv, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "superv-test-tool"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o644)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    assert_refused(superv(["superv-test-tool"], env=env), 126, "superv: superv-test-tool: Permission denied")


def test_an_executable_script_runs(superv, tmp_path):
    """The success path next to the refusals: the same script, executable."""
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hello\nexit 4\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    run = superv([script])
    assert run.returncode == 4
    assert run.stdout == b"hello\n"
    summary = assert_reports_complete(run)
    assert summary["exit_status"] == 4


@pytest.mark.parametrize("options, mentions", [
    (["--bogus"], "--bogus"),
    (["--interval", "0"], "--interval"),
    (["--interval", "soon"], "--interval"),
], ids=["unknown-option", "zero-interval", "bad-interval"])
def test_bad_option_is_125_with_one_clear_line(superv, tmp_path, options, mentions):
    run = superv(["/bin/true"], options=tuple(options))
    assert run.returncode == 125
    lines = run.stderr.decode().splitlines()
    assert lines, "nothing on stderr"
    assert lines[0].startswith("superv: ") and mentions in lines[0], lines
    # At most a usage hint after it; never a traceback.
    assert len(lines) <= 2, lines
    assert "Traceback" not in run.stderr.decode()
    assert not (run.out / "summary.json").exists()


def test_no_program_is_125(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "superv", "run", "-q", "-o", str(tmp_path / "out")],
                          capture_output=True, timeout=60)
    assert proc.returncode == 125
    first = proc.stderr.decode().splitlines()[0]
    assert first.startswith("superv: ") and "program" in first
    assert "Traceback" not in proc.stderr.decode()


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_a_killed_superv_takes_every_traced_process_with_it(tmp_path):
    """SIGKILL to superv alone: its watchdog kills what it traced (the
    shell, and the sleep in the background that makes no traced call and
    would run on unchecked), so that no process keeps running without a
    supervisor."""
    proc = subprocess.Popen([*SUPERV, "run", "-q", "-o", str(tmp_path / "out"), "--", "sh", "-c",
                             "sleep 1000 & echo $$ $!; wait"], stdout=subprocess.PIPE, start_new_session=True)
    shell, sleeper = map(int, proc.stdout.readline().split())
    # the sleep has started and sleeps (a traced call that superv's death
    # cut short would end it anyway, with ENOSYS)
    wait_for(lambda: "nanosleep" in Path(f"/proc/{sleeper}/wchan").read_text())
    assert _running(shell)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: not _running(shell) and not _running(sleeper))


TEN_THOUSAND_FDS = """\
import os, resource
print("soft limit", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
pipes = [os.pipe() for _ in range(5000)]
for r, w in pipes:
    os.write(w, b"0123456789")
print("fds", 2 * len(pipes), "bytes", sum(len(os.read(r, 100)) for r, w in pipes))
nulls = [os.open("/dev/null", os.O_RDONLY) for _ in range(5000)]
os.close(nulls[100])
print("reopened", os.open("/dev/null", os.O_RDONLY) == nulls[100])
"""


def test_ten_thousand_fds_in_one_process(tmp_path):
    """5000 pipes, every end used once, then 5000 opens, started with a
    soft fd limit of 1024: superv raises its own limit (it holds a copy of
    each fd), the program keeps its own, and every call is recorded with
    its fd (learnt without listing 15,000 fds at each call)."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 10100:
        pytest.skip(f"the hard fd limit ({hard}) is below 10,100")
    out = tmp_path / "out"
    done = subprocess.run([*SUPERV, "run", "-q", "-o", str(out), "--", sys.executable, "-c", TEN_THOUSAND_FDS],
                          capture_output=True, timeout=300,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard)))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == ["soft limit 1024", "fds 10000 bytes 50000", "reopened True"]
    assert b"internal error" not in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    pipes = summary["processes"][0]["classes"]["pipe"]
    assert (pipes["bytes_in"], pipes["bytes_out"]) == (50000, 50000 + len(done.stdout))  # stdout is a pipe too
    assert pipes["kinds"]["read"]["calls"] == 5000
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    opens = [e["result"] for e in events if e.get("syscall") == "openat" and e.get("path") == "/dev/null"]
    assert len(opens) == 5001 and len(set(opens[:5000])) == 5000 and opens[5000] == opens[100]


def test_a_thousand_processes_each_writing_then_reaped_as_zombies(prog, superv):
    """1000 children at once, each writing one 12-byte line into a pipe the
    parent reads; then 1000 wait4 calls with every child a zombie.  Each is
    a process of its own in the reports, with its bytes.  (Each wait used to
    read /proc for every zombie again: a million reads, minutes.)"""
    run = superv([str(prog("proc_many")), "1000"])
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.decode().split() == ["lines", "1000", "reaped", "1000", "bad", "0"]
    summary = assert_reports_complete(run)
    root, *children = summary["processes"]
    assert len(children) == 1000
    assert {c["ppid"] for c in children} == {root["pid"]}
    assert [c["classes"]["pipe"]["bytes_out"] for c in children] == [12] * 1000
    assert root["classes"]["pipe"]["bytes_in"] == 12000


EXEC_FROM_A_THREAD = """\
import os, threading, time
r, w = os.pipe()
os.write(w, b"before exec\\n")
print(os.read(r, 100).decode().strip(), flush=True)
def other():
    os.execv("/bin/sh", ["sh", "-c", "echo after exec from a thread; echo data | cat"])
threading.Thread(target=other).start()
time.sleep(30)
print("not reached")
"""


def test_execve_from_a_thread_that_is_not_the_leader(superv):
    """The kernel ends the other threads and the exec'ing one takes the
    process's pid: superv follows, records the exec and the new image's I/O."""
    run = superv([sys.executable, "-c", EXEC_FROM_A_THREAD])
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"before exec\nafter exec from a thread\ndata\n"
    root = run.processes()[0]
    assert root["execs"][-1] == ["sh", "-c", "echo after exec from a thread; echo data | cat"]
    assert root["exit"] == "exited 0"
    assert root["classes"]["pipe"]["bytes_in"] == len(b"before exec\n")


KILLED_IN_A_READ = """\
import os, signal, time
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(r, 10)  # waits: nothing is ever written
    os._exit(0)
os.close(r)
time.sleep(0.5)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
try:
    os.write(w, b"x")
    print("write went through")
except BrokenPipeError:
    print("EPIPE: no reader left")
"""


def test_a_target_killed_in_the_middle_of_a_waiting_read(superv):
    """SIGKILL to a child whose read superv is making (parked, waiting for
    data): the child dies as natively, and superv lets go of its copy of
    the pipe's read end, so that the writer gets EPIPE as natively."""
    program = [sys.executable, "-c", KILLED_IN_A_READ]
    assert subprocess.run(program, capture_output=True, timeout=60).stdout == b"EPIPE: no reader left\n"
    run = superv(program)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"EPIPE: no reader left\n"
    child = next(p for p in run.processes() if p["ppid"] == run.processes()[0]["pid"])
    assert child["exit"].startswith("killed by SIGKILL")


THREADS_LEAVING = """\
import os, threading, time
r, w = os.pipe()
got = []
reader = threading.Thread(target=lambda: got.append(os.read(r, 100)))
reader.start()
time.sleep(0.3)  # its read now waits in superv
for _ in range(20):
    quitter = threading.Thread(target=lambda: os.write(1, b"quitter leaves\\n"))
    quitter.start()
    quitter.join()
os.write(w, b"late data")
reader.join()
print(got[0].decode())
"""


def test_threads_exit_while_another_threads_read_waits(superv):
    """Twenty threads start, write and exit while a read of another thread
    is parked in superv: the read gets its data when it comes, and every
    thread's write is recorded."""
    run = superv([sys.executable, "-c", THREADS_LEAVING])
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"quitter leaves\n" * 20 + b"late data\n"
    root = run.processes()[0]
    pipes = root["classes"]["pipe"]
    assert pipes["bytes_in"] == len(b"late data")
    assert pipes["bytes_out"] == len(b"late data") + len(run.stdout)  # stdout is a pipe too
