"""The filter's hard edges: other ABIs die before they run, io_uring is
refused with ENOSYS and counted (kernel-facts Q9, Q10)."""

import signal
import subprocess

import pytest

SIGSYS_STATUS = 128 + signal.SIGSYS


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_i386_int80_is_killed_before_it_writes(prog, superv, static):
    program = prog("filter_escape", static=static)
    native = subprocess.run([program, "int80"], capture_output=True)
    assert native.returncode == 0 and native.stdout == b"i386 write\n"  # the bypass is real natively

    run = superv([program, "int80"])
    assert run.returncode == SIGSYS_STATUS
    assert run.stdout == b""
    assert run.summary["processes"][0]["exit"].startswith("killed by SIGSYS")


def test_x32_syscall_number_is_killed(prog, superv):
    run = superv([prog("filter_escape"), "x32"])
    assert run.returncode == SIGSYS_STATUS
    assert b"x32" not in run.stdout


def test_io_uring_fails_with_enosys_and_is_counted(prog, superv):
    program = prog("filter_escape")
    run = superv([program, "io_uring"])
    assert run.returncode == 0
    assert run.stdout == b"io_uring_setup -1 ENOSYS\n"
    assert run.summary["refused_calls"] == 1
    refused = [e for e in run.events if e["type"] == "call" and e.get("refused")]
    assert [(e["syscall"], e["result"]) for e in refused] == [("io_uring_setup", -38)]


def test_legacy_aio_fails_with_enosys_and_is_counted(prog, superv, tmp_path):
    """io_submit writes a file with no write() call: natively the bytes land
    unseen; under superv io_setup fails (ENOSYS) and the summary counts it."""
    program = prog("filter_escape")
    natively = subprocess.run([program, "aio", tmp_path / "native.txt"], capture_output=True)
    assert natively.stdout == b"io_setup 0 ok\nio_submit 1 moved 10\n"
    assert (tmp_path / "native.txt").read_bytes() == b"aio write\n"  # the bypass is real natively
    run = superv([program, "aio", tmp_path / "superv.txt"])
    assert run.returncode == 0
    assert run.stdout == b"io_setup -1 ENOSYS\n"
    assert not (tmp_path / "superv.txt").exists()
    assert run.summary["refused_calls"] == 1
    refused = [e for e in run.events if e["type"] == "call" and e.get("refused")]
    assert [(e["syscall"], e["result"]) for e in refused] == [("io_setup", -38)]
