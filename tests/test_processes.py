"""Acceptance 5 and 6: processes, threads and exit statuses.

The test programs say who they are (pid, ppid, argv) on stderr; superv's
summary.json must say the same of every process, each process must have its
<pid>.log, and the bytes each thread moved must add up to its process's totals.
Then exit statuses: the target's (128+N for signal N), 126/127 when it cannot
be run, 125 for superv's own usage errors.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Run, assert_reports_complete

CHILD_BYTES, GRANDCHILD_BYTES = 70000, 50000  # as in proc_tree.c


def who_lines(stderr: bytes) -> list[dict]:
    """The `who=ROLE pid=P ppid=Q argv=A|B` lines the programs print."""
    found = []
    for m in re.finditer(rb"^who=(\S+) pid=(\d+) ppid=(\d+) argv=(.*)$", stderr, re.M):
        found.append({"role": m[1].decode(), "pid": int(m[2]), "ppid": int(m[3]), "argv": m[4].decode().split("|")})
    return found


def by_pid(run: Run) -> dict[int, dict]:
    return {p["pid"]: p for p in run.processes()}


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


@pytest.mark.parametrize("how", ["child-signal", "child-silent-signal", "thread-child-silent-signal"])
def test_a_child_killed_by_a_signal_is_recorded(prog, superv, how):
    """A child that says hello then kills itself with SIGKILL; one that
    kills itself before any traced call (its parent reaps it before making
    one); and that one forked by a second thread, which makes no call
    after, so that only the main thread's wait can find it (in the second
    thread's list of children): all are processes of the run, killed by
    SIGKILL (137), and each wait4 record names the child it reaped."""
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
    waits = [e for e in run.events if e["type"] == "call" and e["syscall"] == "wait4"]
    assert [e["result"] for e in waits] == [child["pid"]], waits


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




@pytest.mark.skipif(subprocess.run(["unshare", "-Urpf", "true"], capture_output=True).returncode != 0,
                    reason="needs user and pid namespaces (unshare -Urpf)")
def test_pidfs_is_told_from_pid_1_of_a_namespace_too():
    """Whether a pidfd names its process once reaped (pidfs) decides what
    the fast path may take in; superv as pid 1 of a namespace (a
    container's init), with no parent to open a pidfd of, must tell it
    as well as anywhere."""
    from superv import kernel

    inside = subprocess.run(["unshare", "-Urpf", "--mount-proc", sys.executable, "-c",
                             "import os; from superv import kernel; print(os.getpid(), kernel.PIDFD_INODES)"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert inside == ["1", str(kernel.PIDFD_INODES)]
