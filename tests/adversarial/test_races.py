"""Adversarial: a second thread rewrites what a call points at (an address,
a path, a symlink, a buffer) while superv checks it.  Each test shows the
race is won natively, then that under superv nothing forbidden gets
through and the records hold."""

from __future__ import annotations

import errno
import re
import signal
import socket
import sys
import threading

import pytest

from conftest import EXEC_ONLY_TRUE, LOCAL_ONLY, native, policy_events, policy_option, wait_for


def test_a_thread_rewriting_the_address_never_gets_a_denied_connection_through(prog, superv, tmp_path, listeners):
    """The address is read once: what the policy checked is what the kernel
    connects to.  Natively the flipping thread reaches 127.0.0.2 often."""
    with_rules = policy_option(tmp_path, LOCAL_ONLY)
    program = [prog("connect_flip"), str(listeners.port), "1000"]
    pattern = re.compile(rb"connected (\d+) refused (\d+) reached 127.0.0.2 (\d+)\n")
    natively = pattern.fullmatch(native(program).stdout)
    assert int(natively[3]) > 0, "the flipping must race natively for the test to mean anything"
    wait_for(lambda: listeners.accepted["127.0.0.2"] == int(natively[3]))  # the listener catches up
    run = superv(program, options=with_rules)
    assert run.returncode == 0, run.stderr
    connected, refused, forbidden = map(int, pattern.fullmatch(run.stdout).groups())
    wait_for(lambda: listeners.accepted["127.0.0.1"] >= int(natively[1]) - int(natively[3]) + connected)
    assert forbidden == 0 and listeners.accepted["127.0.0.2"] == int(natively[3])
    assert connected + refused == 1000 and connected > 0 and refused > 0


def test_a_thread_rewriting_a_sendto_address_never_gets_a_datagram_through(prog, superv, tmp_path):
    """The data path copies the address once, decides on it and sends to it."""
    with_rules = policy_option(tmp_path, (
        'version: 1\nrules:\n'
        '  - {name: local-only, syscalls: [sendto], addr: [127.0.0.1/32], action: allow}\n'
        '  - {name: elsewhere, syscalls: [sendto], family: udp, action: deny, errno: ECONNREFUSED}\n'
    ))
    receivers = {}
    for host in ("127.0.0.1", "127.0.0.2"):
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.bind((host, receivers["127.0.0.1"].getsockname()[1] if receivers else 0))
        r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        r.setblocking(False)
        receivers[host] = r

    def drain(host):
        n = 0
        while True:
            try:
                receivers[host].recv(16)
                n += 1
            except BlockingIOError:
                return n

    port = str(receivers["127.0.0.1"].getsockname()[1])
    program = [prog("connect_flip"), port, "1000", "sendto"]
    try:
        reached = 0
        for _ in range(5):  # a busy machine can leave the flipper without a CPU for a whole native run
            assert native(program).returncode == 0
            reached = drain("127.0.0.2")
            if reached:
                break
        assert reached > 0, "the flipping must race natively for the test to mean anything"
        drain("127.0.0.1")
        run = superv(program, options=with_rules)
        assert run.returncode == 0, run.stderr
        sent, refused = map(int, re.fullmatch(rb"sent (\d+) refused (\d+)\n", run.stdout).groups())
        assert sent > 0 and refused > 0 and sent + refused == 1000
        assert (drain("127.0.0.2"), drain("127.0.0.1")) == (0, sent)
    finally:
        for r in receivers.values():
            r.close()


def test_a_thread_rewriting_an_exec_path_never_gets_the_denied_program_to_run(prog, superv, tmp_path):
    """The kernel reads the path again after the supervisor decided: the new
    image is checked against the decision before its first traced call, and
    killed on a mismatch.  Natively the rewriting often runs /bin/echo."""
    with_rules = policy_option(tmp_path, EXEC_ONLY_TRUE)
    program = [prog("exec_flip"), "200"]
    assert b"FORBIDDEN-RAN" in native(program).stdout, "the flipping must race natively for the test to mean anything"
    run = superv(program, options=with_rules)
    assert run.returncode == 0, run.stderr
    assert b"FORBIDDEN-RAN" not in run.stdout
    ran, denied, killed = map(int, re.fullmatch(rb"true (\d+) denied (\d+) killed (\d+)\n", run.stdout).groups())
    assert ran + denied + killed == 200 and denied > 0
    kills = [e for e in policy_events(run) if e["policy"]["action"] == "kill"]
    assert len(kills) == killed and all(e["policy"]["rule"] == "only-true" for e in kills)


@pytest.mark.parametrize("mode", ["buffer", "symlink"])
def test_a_path_changed_after_the_check_never_reaches_a_denied_file(prog, superv, tmp_path, mode):
    """Acceptance 2: a second thread flips the path string (buffer) or a
    symlink in it (symlink) between an allowed and a denied file, 1000 opens
    for writing: natively many reach the denied file; under superv none does,
    and not one byte is written to it."""
    for where in ("ok", "no"):
        (tmp_path / where).mkdir()
        (tmp_path / where / "file").write_bytes(b"")
    program = [prog("open_flip"), tmp_path, "1000", mode]
    pattern = re.compile(rb"opened (\d+) refused (\d+) reached-forbidden (\d+)\n")
    natively = pattern.fullmatch(native(program).stdout)
    assert int(natively[3]) > 0, "the flipping must race natively for the test to mean anything"
    assert (tmp_path / "no" / "file").stat().st_size == int(natively[3])
    for where in ("ok", "no"):
        (tmp_path / where / "file").write_bytes(b"")
    with_rules = policy_option(tmp_path, (
        "version: 1\nrules:\n"
        f'  - {{name: only-ok, syscalls: ["@file"], direction: send, path: ["{tmp_path}/ok/**"], action: allow}}\n'
        '  - {name: nowhere-else, syscalls: ["@file"], direction: send, action: deny}\n'
    ))
    run = superv(program, options=with_rules)
    assert run.returncode == 0, run.stderr
    opened, refused, forbidden = map(int, pattern.fullmatch(run.stdout).groups())
    assert forbidden == 0 and (tmp_path / "no" / "file").stat().st_size == 0
    assert opened + refused == 1000 and opened > 0 and refused > 0
    assert (tmp_path / "ok" / "file").stat().st_size == opened
    denials = [e for e in policy_events(run) if e["policy"]["action"] == "deny"]
    assert denials and all(e["policy"]["rule"] == "nowhere-else" and e["result"] == -errno.EPERM for e in denials)
    assert {e["file"] for e in denials} == {str(tmp_path / "no" / "file")}


UNIX_FLIP = """\
import os, socket, sys, threading, time
ok, secret, link = sys.argv[1:4]
done = False
def flip():
    while not done:
        for target, temporary in ((secret, link + ".a"), (ok, link + ".b")):
            try:
                os.symlink(target, temporary)
                os.rename(temporary, link)
            except OSError:
                pass
threading.Thread(target=flip).start()
connected = refused = 0
for i in range(1000):
    if i % 50 == 0:
        time.sleep(0)  # lets the flipper run on one CPU too: see open_flip.c
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(link)
        connected += 1
    except OSError:
        refused += 1
    s.close()
done = True
print("connected", connected, "refused", refused)
"""


def test_a_symlink_flipped_after_the_check_never_connects_to_a_denied_socket(superv, tmp_path):
    """A second thread points a symlink at an allowed and a denied socket in
    turn during 1000 connects: natively some reach the denied socket; under
    superv none does (the socket file is pinned when decided on)."""
    accepted = {"ok": 0, "secret": 0}
    listeners = {}
    for where in accepted:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(tmp_path / f"{where}.sock"))
        listener.listen(128)
        listeners[where] = listener

    def serve(where):
        while True:
            try:
                listeners[where].accept()[0].close()
            except OSError:
                return
            accepted[where] += 1

    for where in listeners:
        threading.Thread(target=serve, args=(where,), daemon=True).start()
    (tmp_path / "flip.py").write_text(UNIX_FLIP)
    program = [sys.executable, tmp_path / "flip.py", tmp_path / "ok.sock", tmp_path / "secret.sock",
               tmp_path / "link"]
    try:
        natively = native(program)
        assert natively.returncode == 0, natively.stderr
        connected_natively = int(natively.stdout.split()[1])
        wait_for(lambda: sum(accepted.values()) == connected_natively)  # the listeners catch up
        secret_natively = accepted["secret"]
        assert secret_natively > 0, "the flipping must race natively for the test to mean anything"
        run = superv(program, options=policy_option(tmp_path, (
            "version: 1\nrules:\n"
            f"  - {{name: no-secret, syscalls: [connect], path: [{tmp_path}/secret.sock], action: deny}}\n"
        )))
        assert run.returncode == 0, run.stderr
        connected, refused = map(int, run.stdout.split()[1::2])
        assert connected + refused == 1000 and connected > 0 and refused > 0
        wait_for(lambda: sum(accepted.values()) == connected_natively + connected)
        assert accepted["secret"] == secret_natively
    finally:
        for listener in listeners.values():
            listener.close()


BIND_FLIP = """\
import os, socket, sys, threading, time
os.chdir(sys.argv[1])
done = False
def flip():
    while not done:
        for target, temporary in (("../secret", "ok/dir.a"), ("real", "ok/dir.b")):
            try:
                os.symlink(target, temporary)
                os.rename(temporary, "ok/dir")
            except OSError:
                pass
threading.Thread(target=flip).start()
bound = refused = 0
for i in range(1000):
    if i % 50 == 0:
        time.sleep(0)  # lets the flipper run on one CPU too: see open_flip.c
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(f"ok/dir/s{i}.sock")
        bound += 1
    except OSError:
        refused += 1
    s.close()
done = True
print("bound", bound, "refused", refused)
"""


def test_a_bind_whose_path_changes_after_the_check_kills_the_process(superv, tmp_path):
    """A second thread points a directory symlink at an allowed and a denied
    directory in turn during 1000 binds.  Natively hundreds of socket files
    land in the denied one.  Under superv a bind is made under the program's
    own name, then checked: one that landed elsewhere than decided kills the
    process at once, so at most that one socket file is left there."""
    for run_name in ("native", "superv"):
        for where in ("ok/real", "secret"):
            (tmp_path / run_name / where).mkdir(parents=True)
        (tmp_path / run_name / "ok" / "dir").symlink_to("real")
    (tmp_path / "flip.py").write_text(BIND_FLIP)
    natively = native([sys.executable, tmp_path / "flip.py", tmp_path / "native"])
    assert natively.returncode == 0, natively.stderr
    assert len(list((tmp_path / "native" / "secret").iterdir())) > 0, "the flipping must race natively"
    run = superv([sys.executable, tmp_path / "flip.py", tmp_path / "superv"], options=policy_option(tmp_path, (
        "version: 1\nrules:\n"
        f"  - {{name: sockets-here, syscalls: [bind], path: [{tmp_path}/superv/ok/**], action: allow}}\n"
        "  - {name: nowhere-else, syscalls: [bind], family: unix, action: deny, errno: EACCES}\n"
    )))
    stray = list((tmp_path / "superv" / "secret").iterdir())
    kills = [e for e in policy_events(run) if e["policy"]["action"] == "kill"]
    assert len(stray) == len(kills) <= 1
    if kills:
        assert run.returncode == -signal.SIGKILL or run.returncode == 137
        assert kills[0]["syscall"] == "bind" and kills[0]["policy"]["rule"] == "sockets-here"
    else:
        bound, refused = map(int, run.stdout.split()[1::2])
        assert bound + refused == 1000 and refused > 0


@pytest.mark.parametrize("mode", ["pipe", "socket"])
def test_a_thread_rewriting_a_write_buffer_and_its_lengths_loses_no_byte(prog, superv, mode):
    """A second thread rewrites the bytes and the iovec lengths of writev
    calls in flight.  superv reads the array and the bytes once and writes
    its copy: the counts it records are the bytes that arrived, each call's
    result is a sum of lengths the array really held, and no byte is lost."""
    program = [prog("buffer_flip"), mode, "20000"]
    sums = {a + b for a in (1000, 30000) for b in (7, 20000)}  # the lengths the flipper writes
    natively = dict(line.split() for line in native(program).stdout.decode().splitlines())
    assert natively["written"] == natively["received"]
    run = superv(program)
    assert run.returncode == 0, run.stderr
    said = dict(line.split() for line in run.stdout.decode().splitlines())
    assert said["written"] == said["received"]
    writer, reader = run.processes()
    fd_class = "pipe" if mode == "pipe" else "net"  # stdout, a pipe too, takes only write() calls
    assert writer["classes"][fd_class]["kinds"]["writev"]["bytes"] == int(said["written"])
    assert reader["classes"][fd_class]["kinds"]["read"]["bytes"] == int(said["received"])
    writes = [e for e in run.events if e["type"] == "call" and e["syscall"] == "writev"]
    assert len(writes) == 20000 and {e["result"] for e in writes} <= sums
