"""`make bench`: the same I/O workloads natively, under strace and under superv.

Each workload (bench/*.c, built into build/bench/) does its I/O between two of
its own processes and prints its result and how many read/write/send/recv
calls it made.  Every workload runs RUNS rounds of native, strace, superv
(interleaved, in that order); the table gives medians.  Ratios are taken per
round and their median reported.  Overhead per call, in µs, is
(median wall - median native wall) / median calls of that tool's runs; the
"-startup" columns also take off the same difference measured on the
`startup` row (the pipe program doing no round trip: process, loader and
tool start-up, report writing), so that they show the cost of the calls alone.

A run counts only when it is correct: exit status 0, the same result line as
the native run, and for superv a summary.json with exit 0, no inexact or
refused call, and at least as many recorded data calls as the program counted
(plus at most a few: the loader's reads and the final printf).

superv's reports are written to disk as a user's would be, each run into a
directory of its own that is kept until the bench ends (run_once says why).

Every run goes through build/bench/measure (bench/measure.c), which forks
the command, takes the wall time from fork to wait4, and ru_maxrss from that
wait4.  superv's peak RSS is that ru_maxrss for the superv process: the
maximum over superv itself and every descendant reaped under it, i.e. the
workload's processes too.  Those stay around 1.5 MiB (the native runs'
ru_maxrss, given in the notes), so the figure is superv's own.  (Spawning
straight from Python would not do: the child's ru_maxrss would start at this
Python process's peak, which execve records.)

This is a report: nothing here asserts a timing.  Exit status 1 when a run
failed its correctness check (the table marks the workload FAILED).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "bench"
BUILD = REPO / "build" / "bench"
RESULTS = SOURCES / "results"
CC = os.environ.get("CC", "cc")
CFLAGS = ["-O2", "-Wall"]
STRACE = shutil.which("strace") or "/usr/bin/strace"
SUPERV = [sys.executable, "-m", "superv"]
RUNS = 5
TIMEOUT = 300  # seconds a single run may take before it is killed and marked FAILED
BUSY_LOAD = 0.5  # 1-minute load average at the start above which a warning is printed
BUSY_SHARE = 0.05  # share of the CPUs used by other processes above which the report says so
HUNG = -1  # Run.status of a run killed after TIMEOUT
EXTRA_RECORDED_CALLS = 16  # data calls superv may see beyond the program's own count


@dataclass(frozen=True)
class Workload:
    name: str
    program: str  # bench/<program>.c
    args: tuple[str, ...]  # "{tmp}" is replaced by a scratch directory
    quick: bool = False  # in the --quick set (the ones the issue requires)
    policy: str | None = None  # superv runs with --policy policies/<policy>


WORKLOADS = (
    Workload("startup", "pingpong", ("64", "0"), quick=True),
    Workload("pipe-pingpong-64", "pingpong", ("64", "50000"), quick=True),
    Workload("pipe-pingpong-64k", "pingpong", ("65536", "10000")),
    Workload("tcp-echo-64", "tcp_echo", ("64", "50000"), quick=True),
    Workload("tcp-echo-64k", "tcp_echo", ("65536", "10000")),
    Workload("udp-echo-64", "udp_echo", ("64", "50000")),  # sendto/recvfrom naming addresses
    Workload("stream-64", "stream", ("64", "100000")),
    Workload("stream-64k", "stream", ("65536", "20000"), quick=True),
    Workload("disk-64", "disk", ("64", "100000", "{tmp}/disk.dat")),
    Workload("disk-64k", "disk", ("65536", "5000", "{tmp}/disk.dat")),
    Workload("seed-3000", "seed_loop", ("3000", "2048")),
    # The cost of a policy: these rows against the same workload's without one.
    Workload("pipe-pingpong-64 audit.yaml", "pingpong", ("64", "50000"), policy="audit.yaml"),
    Workload("tcp-echo-64 net.yaml", "tcp_echo", ("64", "50000"), policy="net.yaml"),
)
STARTUP = "startup"
TOOLS = ("native", "strace", "superv")


def data_syscalls() -> str:
    """The calls superv emulates, from its own table: strace traces the same set."""
    from superv import syscalls

    return ",".join(s.name for s in syscalls.TABLE if s.handling is syscalls.Handling.DATA)


STRACE_SET = data_syscalls()


@dataclass
class Run:
    wall: float
    status: int  # shell-style: exit code, or 128+signal
    maxrss_kib: int
    stdout: str
    stderr: str
    summary: dict | None = None


@dataclass
class Result:
    workload: Workload
    runs: dict[str, list[Run]] = field(default_factory=lambda: {t: [] for t in TOOLS})
    failure: str | None = None


# -- building -------------------------------------------------------------------


def build(program: str) -> Path:
    source, target = SOURCES / f"{program}.c", BUILD / program
    newest = max(source.stat().st_mtime, (SOURCES / "common.h").stat().st_mtime)
    if not target.exists() or target.stat().st_mtime < newest:
        BUILD.mkdir(parents=True, exist_ok=True)
        subprocess.run([CC, *CFLAGS, "-o", str(target), str(source)], check=True)
    return target


# -- running --------------------------------------------------------------------


def command(tool: str, argv: list[str], out_dir: str, policy: str | None = None) -> list[str]:
    if tool == "native":
        return argv
    if tool == "strace":
        return [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", f"trace={STRACE_SET}", *argv]
    with_policy = ["--policy", str(REPO / "policies" / policy)] if policy else []
    return [*SUPERV, "run", "-q", "-o", out_dir, *with_policy, "--", *argv]


def timed_run(argv: list[str], scratch: str, cpus: set[int] | None = None) -> Run:
    """Runs argv under build/bench/measure (wall time, ru_maxrss) in its own
    session, stdout and stderr into files; kills the session after TIMEOUT.
    cpus: the only CPUs it may use (None: any)."""
    files = {name: os.path.join(scratch, name) for name in ("stdout", "stderr", "measured")}
    Path(files["measured"]).unlink(missing_ok=True)
    with open(files["stdout"], "w") as out, open(files["stderr"], "w") as err:
        proc = subprocess.Popen([str(build("measure")), files["measured"], *argv], stdout=out, stderr=err,
                                start_new_session=True,
                                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        try:
            code = proc.wait(TIMEOUT)
            status = code if code >= 0 else 128 - code
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = HUNG
    measured = Path(files["measured"])
    wall, maxrss = measured.read_text().split() if measured.exists() else (TIMEOUT, 0)
    return Run(float(wall), status, int(maxrss), Path(files["stdout"]).read_text(errors="replace"),
               Path(files["stderr"]).read_text(errors="replace"))


def run_once(tool: str, argv: list[str], scratch: str, policy: str | None = None) -> Run:
    """A superv run writes into a directory of its own, kept (all but its
    events.jsonl, the large file) until the bench ends.  Deleted after each
    run, the thousands of <pid>.log of a seed run made the next run's file
    creations slow on an ext4 without a journal (it skips recently deleted
    inodes one by one): a cost of the bench, not of superv."""
    out_dir = tempfile.mkdtemp(prefix="superv-out-", dir=scratch) if tool == "superv" else os.devnull
    run = timed_run(command(tool, argv, out_dir, policy), scratch)
    if tool == "superv":
        try:
            run.summary = json.loads(Path(out_dir, "summary.json").read_text())
        except (OSError, ValueError):
            run.summary = None
        Path(out_dir, "events.jsonl").unlink(missing_ok=True)
    return run


# -- checking -------------------------------------------------------------------


def result_line(run: Run) -> str | None:
    return next((line for line in run.stdout.splitlines() if line.startswith("result: ")), None)


def calls(run: Run) -> int:
    line = next((line for line in run.stdout.splitlines() if line.startswith("calls: ")), "calls: 0")
    return int(line.split()[1])


def check(tool: str, run: Run, reference: str | None) -> str | None:
    """Why the run is not a correct one, or None."""
    if run.status == HUNG:
        return f"{tool} hung: killed after {TIMEOUT} s"
    if run.status != 0:
        return f"{tool} exited {run.status}: {run.stderr.strip()[-500:]}"
    if result_line(run) is None or result_line(run) != reference:
        return f"{tool} printed {result_line(run)!r}, native printed {reference!r}"
    if tool != "superv":
        return None
    s = run.summary
    if s is None:
        return "superv wrote no readable summary.json"
    if s.get("exit_status") != 0 or s.get("inexact_calls") or s.get("refused_calls"):
        return (f"superv summary: exit_status {s.get('exit_status')}, inexact_calls {s.get('inexact_calls')}, "
                f"refused_calls {s.get('refused_calls')}")
    recorded = sum(c["calls"] for c in s.get("classes", {}).values())
    if not calls(run) <= recorded <= calls(run) + EXTRA_RECORDED_CALLS:
        return f"superv recorded {recorded} data calls, the program counted {calls(run)}"
    return None


# -- measuring ------------------------------------------------------------------


def measure_workload(workload: Workload, runs: int, scratch: str) -> Result:
    argv = [str(build(workload.program)), *(a.replace("{tmp}", scratch) for a in workload.args)]
    result = Result(workload)
    reference = None
    for round_no in range(runs):
        times = []
        for tool in TOOLS:
            run = run_once(tool, argv, scratch, workload.policy)
            if tool == "native" and reference is None:
                reference = result_line(run)
            problem = check(tool, run, reference)
            if problem:
                result.failure = f"round {round_no + 1}: {problem}"
                shown = command(tool, [a.replace(scratch, "/tmp") for a in argv], "/tmp/superv-bench-out",
                                workload.policy)
                log(f"  FAILED {result.failure}\n  reproduce: {shlex.join(shown)}")
                return result
            result.runs[tool].append(run)
            times.append(f"{tool} {run.wall:.3f}s")
        log(f"  round {round_no + 1}/{runs}: " + ", ".join(times))
    return result


# -- reporting ------------------------------------------------------------------


@dataclass
class Row:
    name: str
    calls: int
    wall: dict[str, float]  # tool -> median seconds
    superv_vs_native: float
    superv_vs_strace: float
    per_call: dict[str, float | None]  # tool -> µs
    per_call_net: dict[str, float | None]  # tool -> µs, start-up difference taken off
    superv_rss_mib: float


def median_ratio(a: list[Run], b: list[Run]) -> float:
    return statistics.median(x.wall / y.wall for x, y in zip(a, b))


def summarize(result: Result, startup: Row | None) -> Row:
    r = result.runs
    wall = {t: statistics.median(run.wall for run in r[t]) for t in TOOLS}
    n = {t: statistics.median(calls(run) for run in r[t]) for t in TOOLS}
    per_call, per_call_net = {}, {}
    for tool in ("strace", "superv"):
        extra = wall[tool] - wall["native"]
        per_call[tool] = extra / n[tool] * 1e6 if n[tool] else None
        if startup is not None and n[tool]:
            per_call_net[tool] = (extra - (startup.wall[tool] - startup.wall["native"])) / n[tool] * 1e6
        else:
            per_call_net[tool] = None
    return Row(
        result.workload.name,
        int(n["native"]),
        wall,
        median_ratio(r["superv"], r["native"]),
        median_ratio(r["superv"], r["strace"]),
        per_call,
        per_call_net,
        max(run.maxrss_kib for run in r["superv"]) / 1024,
    )


HEADER = ("workload", "calls", "native s", "strace s", "superv s", "superv/native", "superv/strace",
          "µs/call strace", "µs/call superv", "µs/call strace -startup", "µs/call superv -startup",
          "superv peak RSS MiB")


def cells(row: Row) -> list[str]:
    def us(v):
        return "-" if v is None else f"{v:.1f}"

    return [row.name, str(row.calls), *(f"{row.wall[t]:.3f}" for t in TOOLS),
            f"{row.superv_vs_native:.2f}", f"{row.superv_vs_strace:.2f}",
            us(row.per_call["strace"]), us(row.per_call["superv"]),
            us(row.per_call_net["strace"]), us(row.per_call_net["superv"]), f"{row.superv_rss_mib:.1f}"]


def failed_cells(result: Result) -> list[str]:
    return [result.workload.name, "FAILED", *["-"] * (len(HEADER) - 2)]


def text_table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [list(HEADER), *lines]) for i in range(len(HEADER))]

    def fmt(line):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))

    return "\n".join([fmt(list(HEADER)), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def markdown_table(lines: list[list[str]]) -> str:
    rows = [list(HEADER), ["---"] + ["---:"] * (len(HEADER) - 1), *lines]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_seconds() -> tuple[float, float]:
    """(user+nice+system seconds of all CPUs, of this process and its reaped children)."""
    user, nice, system = (int(v) for v in Path("/proc/stat").read_text().split()[1:4])
    own = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return (user + nice + system) / os.sysconf("SC_CLK_TCK"), sum(r.ru_utime + r.ru_stime for r in own)


def foreign_cpu(before: tuple[float, float], elapsed: float) -> float:
    """The share of the machine's CPUs that other processes used since `before` (roughly)."""
    total, own = (b - a for a, b in zip(before, cpu_seconds()))
    return max(0.0, total - own) / (elapsed * os.cpu_count())


WAKEUP_PROBE_ROUNDS = 20000


def round_trip(scratch: str, pinned: bool) -> str:
    """A native pipe round trip (pingpong 64), µs, median of 3: both
    processes free to use any CPU, or both pinned to the first one.  On a
    VM the first moves with the cost of a wake-up across CPUs (an IPI, a
    halted vCPU), which every tool's wall time here depends on."""
    cpus = {min(os.sched_getaffinity(0))} if pinned else None
    runs = [timed_run([str(build("pingpong")), "64", str(WAKEUP_PROBE_ROUNDS)], scratch, cpus) for _ in range(3)]
    if any(run.status != 0 for run in runs):
        return "failed"
    return f"{statistics.median(run.wall for run in runs) / WAKEUP_PROBE_ROUNDS * 1e6:.1f} µs"


def wakeup_probe(scratch: str) -> str:
    return f"{round_trip(scratch, False)} across CPUs, {round_trip(scratch, True)} on one CPU"


def environment(results: list[Result], load_before: str, foreign: float, probes: tuple[str, str]) -> dict[str, str]:
    sync = next((run.summary.get("sync_wakeup") for res in results for run in res.runs["superv"] if run.summary),
                None)
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpus": f"{os.cpu_count()} (usable by this process: {len(os.sched_getaffinity(0))})",
        "superv SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP": {True: "yes", False: "no", None: "unknown"}[sync],
        "strace": _first_line([STRACE, "-V"]),
        "cc": _first_line([CC, "--version"]),
        "python (superv)": platform.python_version(),
        "git": _first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
        "load average (1, 5, 15 min) before / after": f"{load_before} / {load_average()}",
        "CPU used by other processes during the bench": f"{foreign:.0%} of {os.cpu_count()} CPUs"
        + (" (timings skewed)" if foreign > BUSY_SHARE else ""),
        "native pipe round trip (pingpong 64), before / after the bench": " / ".join(probes),
    }


def _first_line(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def write_markdown(lines, results, env, runs, elapsed, argv) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = datetime.date.today().isoformat()
    path, n = RESULTS / f"{day}.md", 1
    while path.exists():
        n += 1
        path = RESULTS / f"{day}-{n}.md"
    native_rss = max((max(r.maxrss_kib for r in res.runs["native"]) for res in results if res.runs["native"]),
                     default=0)
    commands = []
    for res in results:
        w = res.workload
        prog = ["build/bench/" + w.program, *(a.replace("{tmp}", "TMP") for a in w.args)]
        commands.append(f"# {w.name}")
        commands += [shlex.join(command(t, prog, "TMP/superv-out", w.policy)).replace(sys.executable, "python")
                     .replace(str(REPO) + "/", "") for t in TOOLS]
    failures = [f"- {res.workload.name}: {res.failure}" for res in results if res.failure]
    text = f"""# superv benchmark, {day}

{markdown_table(lines)}

{RUNS_NOTE.format(runs=runs)}

## Machine and versions

{chr(10).join(f"- {k}: {v}" for k, v in env.items())}
- workloads' own peak RSS (native ru_maxrss, largest): {native_rss / 1024:.1f} MiB
- whole bench: {elapsed:.0f} s, `{shlex.join(argv)}`

## Failures

{chr(10).join(failures) or "none"}

## Commands

Built with `{shlex.join([CC, *CFLAGS, "-o", "build/bench/PROG", "bench/PROG.c"])}`.  Each command
below ran as `build/bench/measure RESULT-FILE COMMAND...`, in a session of
its own, from {REPO}; TMP is a scratch directory; `python` is
{sys.executable}.

```
{chr(10).join(commands)}
```
"""
    path.write_text(text)
    return path


RUNS_NOTE = """\
Medians of {runs} rounds per workload; each round runs native, strace, superv
one after the other.  Times are wall seconds of the whole process (fork to
wait4, taken by bench/measure.c).  superv/native and superv/strace are
medians of the per-round ratios.  µs/call = (median wall - median native
wall) / calls that tool's runs made; "-startup" also takes off the same
difference on the `startup` row (the pipe program with no round trip: tool
and process start-up, superv's reports).  calls = the program's own count of
read/write/send/recv calls (native runs' median).  superv peak RSS = largest
ru_maxrss from wait4 on the superv process (superv and the workload
processes it reaped; the latter stay small, see "workloads' own peak RSS"
below).  strace runs with `-f -qq -o /dev/null` and traces the data calls
superv emulates.  The native pipe round trip (under "Machine and versions")
tells the cost of a wake-up across CPUs: when it is far above the pinned
one, native and strace runs of the ping-pong workloads slow down with it,
and superv, whose sync wake-up keeps a call and its answer on one CPU, far
less."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="only " + ", ".join(w.name for w in WORKLOADS if w.quick))
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this workload (repeatable; the startup row is always run): "
                             + ", ".join(w.name for w in WORKLOADS))
    parser.add_argument("--runs", type=int, default=RUNS, help=f"rounds per workload (default {RUNS})")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    chosen = [w for w in WORKLOADS if (not args.quick or w.quick)
              and (not args.only or w.name in args.only or w.name == STARTUP)]
    unknown = set(args.only or ()) - {w.name for w in WORKLOADS}
    if unknown:
        parser.error(f"unknown workload {', '.join(sorted(unknown))}")

    load_before = load_average()
    if float(load_before.split()[0]) > BUSY_LOAD:
        log(f"bench: warning: load average {load_before} before the start; other work will skew the timings")
    results = []
    with tempfile.TemporaryDirectory(prefix="superv-bench-") as scratch:
        probe_before = wakeup_probe(scratch)
        started, cpu_before = time.perf_counter(), cpu_seconds()
        for tool in TOOLS:  # warm-up: page cache, Python's compiled modules
            run_once(tool, [str(build("pingpong")), "64", "0"], scratch)
        for w in chosen:
            log(f"{w.name}: {shlex.join([w.program, *w.args])}")
            results.append(measure_workload(w, args.runs, scratch))
        elapsed = time.perf_counter() - started
        foreign = foreign_cpu(cpu_before, elapsed)
        probes = (probe_before, wakeup_probe(scratch))

    startup = next((summarize(r, None) for r in results if r.workload.name == STARTUP and not r.failure), None)
    lines = [failed_cells(r) if r.failure else cells(summarize(r, startup)) for r in results]
    print(text_table(lines))
    env = environment(results, load_before, foreign, probes)
    for k, v in env.items():
        print(f"{k}: {v}")
    path = write_markdown(lines, results, env, args.runs, elapsed, ["python", "bench/run.py", *sys.argv[1:]])
    print(f"bench: {elapsed:.0f} s; report in {path.relative_to(REPO)}")
    return 1 if any(r.failure for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
