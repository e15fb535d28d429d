"""Adversarial: ways around a syscall filter.  Other ABIs (i386 int 0x80,
x32 numbers) die before they run; io_uring (with or without SQPOLL) and
legacy AIO, which move bytes with no read or write call, are refused with
ENOSYS and counted (kernel-facts Q9, Q10)."""

import re
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


@pytest.mark.parametrize("call", ["open", "socketcall"])
def test_i386_open_and_socketcall_are_killed_before_they_run(prog, superv, tmp_path, call):
    """int 0x80 open would create the file, socketcall(SYS_SOCKET) would
    make a socket: natively both work; under superv the process dies first."""
    made = tmp_path / "made-by-i386-open"
    program = [prog("filter_escape"), *(["int80_open", made] if call == "open" else ["int80_socketcall"])]
    native = subprocess.run(program, capture_output=True)
    assert native.returncode == 0 and re.fullmatch(rb"i386 (open|socket) \d+\n", native.stdout), native.stdout
    if call == "open":
        assert made.exists()
        made.unlink()
    run = superv(program)
    assert run.returncode == SIGSYS_STATUS
    assert run.stdout == b"" and not made.exists()
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


@pytest.mark.parametrize("mode", ["plain", "sqpoll"])
def test_a_write_through_io_uring_never_happens(prog, superv, mode):
    """The write is a store into the ring (with SQPOLL a kernel thread takes
    it with no syscall at all): natively the line appears, unseen by any
    syscall filter; under superv the ring is never made."""
    program = [prog("filter_escape"), "io_uring_write", *(["sqpoll"] if mode == "sqpoll" else [])]
    setup = "io_uring_setup sqpoll" if mode == "sqpoll" else "io_uring_setup"
    natively = subprocess.run(program, capture_output=True, timeout=30)
    assert natively.stdout == f"{setup} 0 ok\nio_uring write\n".encode()
    run = superv(program)
    assert run.returncode == 0
    assert run.stdout == f"{setup} -1 ENOSYS\n".encode()
    refused = [e for e in run.events if e["type"] == "call" and e.get("refused")]
    assert [(e["syscall"], e["result"]) for e in refused] == [("io_uring_setup", -38)]
    assert run.summary["refused_calls"] == 1


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
