"""Acceptance 7: superv works for an ordinary user.

As root, the test drops to uid/gid 65534 (nobody) with setpriv and runs a
staged copy of superv (package, dependencies and launcher) with a Python that
user can execute; as a non-root user it runs superv as it is.
"""

import importlib
import importlib.metadata
import json
import re
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import SUPERV

NOBODY = 65534


def _runtime_distributions() -> list[importlib.metadata.Distribution]:
    """The installed distributions superv needs at run time (not superv)."""
    found, seen, todo = [], set(), ["superv"]
    while todo:
        for requirement in importlib.metadata.distribution(todo.pop()).requires or []:
            if "extra ==" in requirement:
                continue
            name = re.match(r"[A-Za-z0-9_.-]+", requirement)[0].lower()
            if name in seen:
                continue
            seen.add(name)
            try:  # a requirement for other platforms (cffi on Windows) is not installed
                found.append(importlib.metadata.distribution(name))
            except importlib.metadata.PackageNotFoundError:
                continue
            todo.append(name)
    return found


def _accessible_python() -> str:
    """A python3 of our version that uid 65534 can run (the venv's may live under /root)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/{version}", f"/usr/local/bin/{version}", sys.executable):
        probe = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", candidate, "-c", "print(1)"],
            capture_output=True,
        )
        if probe.returncode == 0:
            return candidate
    raise AssertionError(f"no {version} that uid {NOBODY} can execute")


def _stage(root: Path) -> Path:
    """Copy superv and the files of its dependencies where any user can read them."""
    site = root / "site"
    site.mkdir()
    shutil.copytree(Path(importlib.import_module("superv").__file__).parent, site / "superv",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for dist in _runtime_distributions():
        for file in dist.files or []:
            if file.parts[0] in ("..", "bin") or "__pycache__" in file.parts:
                continue
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.locate_file(file), target)
    return site


@pytest.fixture
def public_dir():
    path = Path(tempfile.mkdtemp(prefix="superv-unpriv-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _ordinary_superv(public_dir: Path, out: Path) -> list[str]:
    """The start of a `superv run -o OUT` command line for an ordinary user
    (as root: nobody, with a staged copy of superv that nobody can read)."""
    if os.geteuid() != 0:
        return [*SUPERV, "run", "-q", "-o", str(out)]
    site = _stage(public_dir)
    for path in public_dir.rglob("*"):
        path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    out.mkdir()
    os.chown(out, NOBODY, NOBODY)
    return [*AS_NOBODY, "env", f"PYTHONPATH={site}", f"HOME={public_dir}",
            _accessible_python(), "-m", "superv", "run", "-q", "-o", str(out)]


def test_runs_as_ordinary_user(prog, public_dir):
    program = public_dir / "unpriv_io"
    shutil.copy2(prog("unpriv_io"), program)
    out = public_dir / "out"
    command = [*_ordinary_superv(public_dir, out), "--", str(program)]
    expected_uid = NOBODY if os.geteuid() == 0 else os.getuid()
    done = subprocess.run(command, capture_output=True, timeout=120, cwd=public_dir)
    assert done.returncode == 0, done.stderr.decode()
    fields = dict(item.split("=") for item in done.stdout.decode().split())
    assert int(fields["uid"]) == expected_uid
    assert fields["socket_in"] == "5000" and fields["pipe_in"] == "5000"

    summary = json.loads((out / "summary.json").read_text())
    parent = next(p for p in summary["processes"] if p["pid"] == int(fields["pid"]))
    child = next(p for p in summary["processes"] if p["ppid"] == parent["pid"])
    assert parent["classes"]["net"]["bytes_in"] == 5000
    # The internal pipe carried 5000 bytes each way; stdout (fd 1, a pipe to
    # this test) carried the report line.
    pipe_fds = {fd["fd"]: fd for fd in parent["fds"] if fd["class"] == "pipe"}
    assert pipe_fds.pop(1)["bytes_out"] == len(done.stdout)
    assert sorted((fd["bytes_in"], fd["bytes_out"]) for fd in pipe_fds.values()) == [(0, 5000), (5000, 0)]
    assert child["classes"]["net"]["bytes_out"] == 5000
    assert child["classes"]["net"]["kinds"]["write"] == {"calls": 5, "bytes": 5000}
    assert summary["inexact_calls"] == 0


def test_unprivileged_user_cannot_write_reports_to_root_folder(public_dir):
    """A failure path for the ordinary user: an unwritable --out gives 125 and one line."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a folder the test user cannot write")
    site = _stage(public_dir)
    for path in public_dir.rglob("*"):
        path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    locked = public_dir / "locked"
    locked.mkdir(mode=0o755)
    done = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env", f"PYTHONPATH={site}",
         _accessible_python(), "-m", "superv", "run", "-o", str(locked / "out"), "--", "/bin/true"],
        capture_output=True, timeout=60,
    )
    assert done.returncode == 125
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "cannot write reports" in lines[0] and str(locked / "out") in lines[0]


def test_an_ordinary_user_gets_the_opens_it_would_get_natively(prog, public_dir):
    """Under a path policy superv makes every open itself: for an ordinary
    user, permissions (a directory it cannot search) and /proc/self are
    still the program's, as open_cases shows against its native run."""
    program = public_dir / "open_cases"
    shutil.copy2(prog("open_cases"), program)
    policy = public_dir / "every-path.yaml"
    policy.write_text('version: 1\nrules:\n  - {name: every-path, syscalls: ["@file"], path: ["/**"], '
                      'action: log}\n')
    command = [*_ordinary_superv(public_dir, public_dir / "out"), "--policy", str(policy), "--", str(program)]
    drop = AS_NOBODY if os.geteuid() == 0 else []
    for name in ("native", "superv"):
        (public_dir / name).mkdir()
        if drop:
            os.chown(public_dir / name, NOBODY, NOBODY)
    natively = subprocess.run([*drop, str(program), str(public_dir / "native")], capture_output=True, timeout=60)
    assert natively.returncode == 0, natively.stderr
    assert b"search-denied: EACCES" in natively.stdout
    done = subprocess.run([*command, str(public_dir / "superv")], capture_output=True, timeout=120, cwd=public_dir)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == natively.stdout.decode().splitlines()


def test_an_ordinary_user_gets_the_path_changes_it_would_get_natively(public_dir):
    """unlink, rename, mkdir, chmod... made by superv for an ordinary user:
    the same outcomes as its native run (superv acts with the same rights)."""
    from test_policy_paths import PATH_CHANGES

    script = public_dir / "changes.py"
    script.write_text(PATH_CHANGES)
    policy = public_dir / "every-path.yaml"
    policy.write_text('version: 1\nrules:\n  - {name: every-path, syscalls: ["@file"], path: ["/**"], '
                      'action: log}\n')
    python = _accessible_python() if os.geteuid() == 0 else sys.executable
    command = [*_ordinary_superv(public_dir, public_dir / "out"), "--policy", str(policy), "--", python, str(script)]
    drop = AS_NOBODY if os.geteuid() == 0 else []
    for name in ("native", "superv"):
        (public_dir / name).mkdir()
        if drop:
            os.chown(public_dir / name, NOBODY, NOBODY)
    natively = subprocess.run([*drop, python, str(script), str(public_dir / "native")], capture_output=True,
                              timeout=60)
    assert natively.returncode == 0, natively.stderr
    done = subprocess.run([*command, str(public_dir / "superv")], capture_output=True, timeout=120, cwd=public_dir)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == natively.stdout.decode().splitlines()
