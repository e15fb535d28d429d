"""Classification of every fd class, endpoints included, and the records
that cannot be exact (a tty, an eventfd) marked and counted as such."""

import os
import pty
import subprocess
import sys

from conftest import SUPERV


def fds_by_name(stdout: bytes) -> dict:
    return {name: int(fd) for name, fd in (line.split() for line in stdout.decode().splitlines())}


def test_every_class_is_told_apart(prog, superv, tmp_path):
    run = superv([prog("classes"), tmp_path / "data.bin"])
    assert run.returncode == 0, run.stderr
    named = fds_by_name(run.stdout)
    (process,) = run.processes()
    fds = {fd["fd"]: fd for fd in process["fds"]}

    def check(name, cls, detail_start, bytes_in, bytes_out):
        fd = fds[named[name]]
        assert fd["class"] == cls and fd["detail"].startswith(detail_start), (name, fd)
        assert (fd["bytes_in"], fd["bytes_out"]) == (bytes_in, bytes_out), (name, fd)
        return fd

    client = check("tcp-client", "net", "tcp 127.0.0.1:", 0, 101)
    server = check("tcp-server", "net", "tcp 127.0.0.1:", 101, 0)
    # Both ends of one loopback connection: each one's local is the other's remote.
    c_local, c_remote = client["detail"][4:].split(" -> ")
    s_local, s_remote = server["detail"][4:].split(" -> ")
    assert (c_local, c_remote) == (s_remote, s_local)
    check("udp", "net", "udp 127.0.0.1:", 102, 102)
    check("unix-dgram-out", "net", "unix-dgram", 0, 103)
    check("unix-dgram-in", "net", "unix-dgram", 103, 0)
    check("pipe-out", "pipe", "pipe", 0, 104)
    check("pipe-in", "pipe", "pipe", 104, 0)
    # A named FIFO is a pipe too, with its path (anonymous pipes are told
    # from it by pipefs's device, not by a readlink).
    fifo = check("fifo", "pipe", f"fifo {tmp_path / 'data.bin.fifo'}", 107, 107)
    assert fifo["calls"] == 2
    pipe_events = {e["fd"]: e for e in run.events if e["type"] == "fd" and e["class"] == "pipe"}
    assert pipe_events[named["pipe-in"]]["path"] is None
    assert pipe_events[named["fifo"]]["path"] == str(tmp_path / "data.bin.fifo")
    disk = check("disk", "disk", f"file {tmp_path / 'data.bin'}", 105, 105)
    assert disk["calls"] == 2
    check("devnull", "device", "char-device /dev/null", 0, 106)
    eventfd = check("eventfd", "other", "eventfd", 0, 0)  # let through: bytes not known
    assert eventfd["calls"] == 2
    assert process["inexact_calls"] == 2 and run.summary["inexact_calls"] == 2
    inexact = [e for e in run.events if e["type"] == "call" and e.get("exact") is False]
    assert [(e["syscall"], e["class"], e["result"]) for e in inexact] == [("write", "other", None), ("read", "other", None)]
    connections = {c["proto"] for c in run.summary["connections"]}
    assert {"tcp", "udp", "unix-dgram"} <= connections
    # The two ends of the unix socketpair name each other (sock_diag).
    fd_events = {e["fd"]: e for e in run.events if e["type"] == "fd" and e["class"] == "net"}
    out_end, in_end = fd_events[named["unix-dgram-out"]], fd_events[named["unix-dgram-in"]]
    assert (out_end["peer_inode"], in_end["peer_inode"]) == (in_end["inode"], out_end["inode"])


def test_tty_output_goes_through_unchanged_and_is_marked_inexact(prog, tmp_path):
    """A tty is let through (job control belongs to the program's own calls):
    the output reaches the terminal, and the records say they are not exact."""
    main, sub = pty.openpty()
    proc = subprocess.Popen([*SUPERV, "run", "-q", "-o", str(tmp_path / "o"), "--", prog("classes"),
                             tmp_path / "x.bin"], stdin=sub, stdout=sub, stderr=subprocess.PIPE)
    os.close(sub)
    output = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        output += chunk
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    os.close(main)
    lines = output.decode().replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("tcp-client ") and lines[-1].startswith("eventfd ")
    import json

    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    (process,) = summary["processes"]
    tty = [fd for fd in process["fds"] if fd["class"] == "tty"]
    assert [fd["fd"] for fd in tty] == [1]
    assert tty[0]["calls"] == len(lines)
    assert process["inexact_calls"] == 2 + len(lines)


SCM_RIGHTS_PROGRAM = """\
import os, socket
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
a, b = socket.socketpair()
r, w = os.pipe()
pid = os.fork()
if pid == 0:  # the child passes its TCP socket and the pipe's read end
    tcp = socket.create_connection(server.getsockname())
    os.write(w, b"through the pipe")
    socket.send_fds(a, [b"fds"], [tcp.fileno(), r])
    os._exit(0)
os.close(r)
os.close(w)
connection, _ = server.accept()
message, (tcp_fd, pipe_fd), _, _ = socket.recv_fds(b, 16, 2)
connection.sendall(b"over tcp")
print(tcp_fd, pipe_fd, os.read(pipe_fd, 100).decode(), socket.socket(fileno=tcp_fd).recv(100).decode())
os.waitpid(pid, 0)
"""


def test_fds_passed_over_scm_rights_are_classified_in_the_receiver(superv):
    """A TCP socket and a pipe end received with SCM_RIGHTS are, in the
    receiver, the net and pipe fds they are, with the bytes read on them."""
    program = [sys.executable, "-c", SCM_RIGHTS_PROGRAM]
    natively = subprocess.run(program, capture_output=True, timeout=60)
    run = superv(program)
    assert run.returncode == 0, run.stderr
    tcp_fd, pipe_fd, *words = run.stdout.decode().split()
    assert words == natively.stdout.decode().split()[2:] == ["through", "the", "pipe", "over", "tcp"]
    receiver = next(p for p in run.processes() if p["ppid"] not in {q["pid"] for q in run.processes()})
    fds = {fd["fd"]: fd for fd in receiver["fds"]}
    tcp = fds[int(tcp_fd)]
    assert (tcp["class"], tcp["detail"].split()[0], tcp["bytes_in"]) == ("net", "tcp", 8)
    assert (fds[int(pipe_fd)]["class"], fds[int(pipe_fd)]["bytes_in"]) == ("pipe", 16)
