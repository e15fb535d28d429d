"""`pip install .` into a fresh virtual environment gives a working superv on
PATH, the launcher compiled at install time included."""

import json
import subprocess
import sys
import venv

from conftest import REPO


def test_pip_install_gives_a_working_superv(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = subprocess.run([env_dir / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
                         capture_output=True, timeout=600)
    assert pip.returncode == 0, pip.stderr.decode()[-2000:]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    package = env_dir / "lib" / version / "site-packages" / "superv"
    assert (package / "superv-launch").stat().st_mode & 0o111
    assert (package / "superv-watchdog").stat().st_mode & 0o111
    assert list(package.glob("_kernel*.so"))

    out = tmp_path / "out"
    run = subprocess.run([env_dir / "bin" / "superv", "run", "-q", "-o", out, "--", "/bin/echo", "installed"],
                         capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout == b"installed\n"
    summary = json.loads((out / "summary.json").read_text())
    (process,) = summary["processes"]
    assert process["argv"] == ["/bin/echo", "installed"]
    written = [fd for fd in process["fds"] if fd["fd"] == 1]
    assert written and written[0]["bytes_out"] == len(b"installed\n")
