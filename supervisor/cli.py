"""superv's command line: `superv run [options] -- PROG [ARGS...]`.

Exit status: the target's (128+N when a signal killed it); 127 when PROG is
not found, 126 when it cannot be executed; 125 for superv's own failures
(a bad option, a kernel without what superv needs, an unwritable --out).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import resource
import re
import signal
import sys
import threading
import time

from . import __version__, _kernel, control, features, launch, reports
from . import _fastpath as fastpath
from .engine import WAKE_SIGNAL, Supervisor
from .recorder import Recorder

EXIT_SUPERV_FAILURE = 125
# SIGQUIT too: a terminal's ^\ (or one typed into it by the program with
# TIOCSTI) must not end superv without its reports.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP)
SI_KERNEL = 0x80  # si_code of a signal the terminal sent to the whole process group


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> Parser:
    parser = Parser(prog="superv", description="See and control what a program does with the network, pipes and disk.")
    parser.add_argument("--version", action="version", version=f"superv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    run = commands.add_parser(
        "run",
        help="run a program and record its I/O",
        usage="superv run [options] -- PROG [ARGS...]",
        description="Run PROG under the supervisor; record every I/O call with the bytes it moved.",
    )
    run.add_argument("-o", "--out", metavar="DIR", help="report folder (default: a new folder under superv-out/)")
    run.add_argument(
        "--trace",
        metavar="FILE",
        nargs="?",
        const="-",
        help="live debug channel: each call as it happens, on stderr, or into FILE with --trace=FILE",
    )
    run.add_argument("--interval", type=_positive_float, default=1.0, metavar="SECONDS",
                     help="seconds between heartbeat samples in events.jsonl (default 1)")
    run.add_argument("--policy", metavar="FILE", help="enforce this YAML policy (docs/policy.md)")
    run.add_argument("-q", "--quiet", action="store_true", help="no table on stderr at exit")
    run.add_argument("program", nargs=argparse.REMAINDER, help="the program and its arguments")
    policy_parser = commands.add_parser("policy", help="check or show a policy file",
                                        description="Check a policy file, or show what it compiles to.")
    policy_commands = policy_parser.add_subparsers(dest="policy_command", required=True, parser_class=Parser)
    policy_commands.add_parser("check", help="validate FILE without running anything").add_argument("file")
    policy_commands.add_parser(
        "show", help="what goes into the kernel's filter and what stays in the supervisor"
    ).add_argument("file")
    return parser


def policy_command(options) -> int:
    """`superv policy check|show FILE`: 0 when the policy is good, 125 with
    file:line:column and what was expected when it is not."""
    from . import policy  # YAML and all: ~18 ms that a plain `superv run` does not need

    try:
        loaded = policy.load(options.file)
    except OSError as e:
        print(f"superv: cannot read policy {options.file}: {e.strerror}", file=sys.stderr)
        return EXIT_SUPERV_FAILURE
    except policy.PolicyError as e:
        print(f"superv: {e}", file=sys.stderr)
        return EXIT_SUPERV_FAILURE
    if options.policy_command == "show":
        print(policy.describe(loaded))
    else:
        print(f"{options.file}: ok ({policy.summary(loaded)})")
    return 0


def load_policy(path: str):
    """The policy to enforce, with its ./ patterns under the working directory;
    LaunchError (125) naming what is wrong, before anything runs."""
    from . import policy

    try:
        loaded = policy.load(path)
    except OSError as e:
        raise launch.LaunchError(EXIT_SUPERV_FAILURE, f"superv: cannot read policy {path}: {e.strerror}")
    except policy.PolicyError as e:
        raise launch.LaunchError(EXIT_SUPERV_FAILURE, f"superv: {e}")
    return policy.with_working_directory(loaded, os.getcwd())


def policy_summary(enforced, in_kernel: set[str], hits, budgets_spent: list[int]) -> dict:
    """summary.json's "policy": per rule, its action and the calls it
    decided (for allow and log, let through; for deny and kill, stopped).
    null where nobody counts: the kernel's filter (the rules labelled
    in_kernel, unless the supervisor decided some of their calls)."""

    def counted(label):
        return None if label in in_kernel and not hits.get(label) else hits.get(label, 0)

    rules = [{"rule": r.label, "line": r.line, "action": r.action, "calls": counted(r.label),
              "in_kernel": r.label in in_kernel} for r in enforced.rules]
    summary = {"file": enforced.source, "default": enforced.default,
               "default_calls": counted("default"), "rules": rules}
    if enforced.budgets:
        summary["budgets"] = [
            {"budget": b.label, "line": b.line, "class": b.fd_class, "direction": b.direction, "limit": b.limit,
             "spent": spent, "over": spent >= b.limit, "action": b.action, "calls": hits.get(b.label, 0)}
            for b, spent in zip(enforced.budgets, budgets_spent)
        ]
    return summary


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _split_trace_option(argv: list[str]) -> list[str]:
    """`--trace` alone means stderr; only `--trace=FILE` names a file, so that
    `superv run --trace prog` does not take prog for the file."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        out.append("--trace=-" if arg == "--trace" else arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    try:
        options = build_parser().parse_args(_split_trace_option(args_in))
        if options.command == "policy":
            return policy_command(options)
        program = options.program
        if program and program[0] == "--":
            program = program[1:]
        if not program:
            raise UsageError("no program given: superv run [options] -- PROG [ARGS...]")
    except UsageError as e:
        usage = ("superv policy check|show FILE; see superv policy --help" if args_in[:1] == ["policy"]
                 else "superv run [options] -- PROG [ARGS...]; see superv run --help")
        print(f"superv: {e} (usage: {usage})", file=sys.stderr)
        return EXIT_SUPERV_FAILURE
    status = run(options, program, args_in)
    sys.stdout.flush()
    return status


def default_out_dir(program: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(program)) or "prog"
    base = os.path.join("superv-out", f"{stamp}-{name}")
    candidate, n = base, 1
    while os.path.exists(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def prepare_out_dir(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".superv-write-test")
        with open(probe, "w"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise launch.LaunchError(EXIT_SUPERV_FAILURE, f"superv: cannot write reports to {path}: {e.strerror}")
    return path


def open_trace(target: str | None):
    if target is None:
        return None
    if target == "-":
        return sys.stderr
    try:
        return open(target, "w", buffering=1)
    except OSError as e:
        raise launch.LaunchError(EXIT_SUPERV_FAILURE, f"superv: cannot write the trace to {target}: {e.strerror}")


def run(options, program: list[str], superv_argv: list[str]) -> int:
    refusal = features.check_running_kernel()
    if refusal:
        print(refusal, file=sys.stderr)
        return EXIT_SUPERV_FAILURE
    try:
        enforced = load_policy(options.policy) if options.policy else None
        path = launch.resolve_program(program[0])
        out_dir = prepare_out_dir(options.out or default_out_dir(program[0]))
        trace = open_trace(options.trace)
    except launch.LaunchError as e:
        print(e.message, file=sys.stderr)
        return e.status

    # Block the signals superv forwards before any thread starts: the
    # signal thread takes them with sigwaitinfo, which tells a terminal's
    # Ctrl-C (the target got it too) from a kill aimed at superv alone.
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    # stop() interrupts the receiver's blocking RECV with this signal: a
    # handler (without SA_RESTART) makes the ioctl fail with EINTR.
    _kernel.set_interrupt_handler(WAKE_SIGNAL)
    recorder = Recorder(out_dir, trace)
    started = time.time()
    kernel_rules, guards, on_demand = (), (), ()
    if enforced is not None:
        from . import policy

        kernel_rules, guards = policy.kernel_plan(enforced)[0], policy.guards(enforced)
        on_demand = policy.traced_on_demand(enforced)
    try:
        watchdog, watchdog_pid = launch.start_watchdog()
    except launch.LaunchError as e:
        print(e.message, file=sys.stderr)
        recorder.close()
        return e.status
    try:
        pid, pidfd, listener = launch.start(path, program, kernel_rules, guards, on_demand)
    except launch.LaunchError as e:
        if e.message:
            print(e.message, file=sys.stderr)
        launch.end_watchdog(watchdog, watchdog_pid)
        recorder.close()
        return e.status
    # superv holds a copy of each fd the program uses: as many as the
    # program may open, and more.  The program, spawned already, keeps its
    # own limits.
    _, most = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (most, most))

    supervisor = Supervisor(listener, recorder, pid, program, enforced, watchdog)
    if not supervisor.sync_wakeup:
        recorder.note(pid, "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is not offered by this kernel: every call pays a cross-CPU wake-up")
    else:
        recorder.note(pid, "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP on")
    # The objects of start-up (modules, classes, the policy) live to the end:
    # the collector need not walk them again at each full collection.
    gc.freeze()
    threads = [
        threading.Thread(target=supervisor.receive_forever, name="superv-receiver", daemon=True),
        threading.Thread(target=supervisor.wait_forever, name="superv-waiter", daemon=True),
    ]
    for t in threads:
        t.start()
    forwarder = SignalForwarder(supervisor, pid)
    threading.Thread(target=forwarder.run, name="superv-signals", daemon=True).start()

    wait_status = None
    lost: dict[str, str] = {}  # outputs that could not be written whole
    try:
        wait_status = control.run(supervisor, pid, pidfd, threads, options.interval)
    finally:
        # The reports make thousands of objects that live until exit: the
        # collector's full passes over the run's objects would be wasted.
        gc.disable()
        supervisor.stop()
        supervisor.release_all()
        launch.end_watchdog(watchdog, watchdog_pid)
        with supervisor.lock:
            recorder.heartbeat()
            run_info = {
                "superv": __version__,
                "command": ["superv", *superv_argv],
                "program": program,
                "path": path,
                "out": os.path.abspath(out_dir),
                "started": started,
                "ended": time.time(),
                "exit_status": reports.shell_status(wait_status),
                "exit": reports.describe_status(wait_status),
                "kernel": platform.release(),
                "sync_wakeup": supervisor.sync_wakeup,
                "calls_answered": fastpath.stats(),
                "signals_received": forwarder.received,
                "signals_forwarded": forwarder.forwarded,
            }
            if enforced is not None:
                spent = supervisor.report_spent_budgets() if enforced.budgets else []
                in_kernel = {k.rule.label for k in kernel_rules} | {g.label for g in guards}
                run_info["policy"] = policy_summary(enforced, in_kernel, supervisor.rule_counts(), spent)
            recorder.write_logs()
            recorder.write_summary(run_info)
            recorder.close()
            if not options.quiet:
                print(reports.exit_table(recorder.ledger), file=sys.stderr)
                print(f"superv: reports in {out_dir}", file=sys.stderr)
            lost = recorder.output_errors()
        if trace not in (None, sys.stderr):
            try:
                trace.close()
            except OSError as e:
                lost.setdefault("--trace", e.strerror)
    status = reports.shell_status(wait_status)
    if lost:
        # The program ran to its end; what it did is not all written down.
        what = "; ".join(f"{name}: {error}" for name, error in lost.items())
        print(f"superv: the reports in {out_dir} are incomplete ({what}); what was written is whole. "
              f"The program {reports.describe_status(wait_status)}.", file=sys.stderr)
        return EXIT_SUPERV_FAILURE
    return EXIT_SUPERV_FAILURE if status is None else status


class SignalForwarder:
    """SIGINT, SIGQUIT, SIGTERM and SIGHUP sent to superv go to the target; a second
    one kills every traced process; a third ends the run at once, whatever
    is left, so that a stuck run can always end with its reports."""

    def __init__(self, supervisor: Supervisor, root_pid: int):
        self.supervisor = supervisor
        self.root_pid = root_pid
        self.received = 0
        self.forwarded = 0

    def run(self) -> None:
        while True:
            info = signal.sigwaitinfo(FORWARDED_SIGNALS)
            self.received += 1
            if self.received == 1:
                # A terminal's Ctrl-C reached the whole process group already.
                from_terminal = info.si_code == SI_KERNEL
                if not from_terminal:
                    _kill(self.root_pid, info.si_signo)
                    self.forwarded += 1
                with self.supervisor.lock:
                    self.supervisor.recorder.signal_received(self.root_pid, info.si_signo, forwarded=not from_terminal)
            elif self.received == 2:
                with self.supervisor.lock:
                    pids = list(self.supervisor.processes)
                for pid in pids:
                    _kill(pid, signal.SIGKILL)
            else:
                self.supervisor.stop()


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
