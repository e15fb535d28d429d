"""`superv run --policy`: what the kernel denies, what the supervisor denies,
kills or logs, what it leaves alone, and what it refuses to run with.  Each
run is compared with the same program's native run."""

from __future__ import annotations

import errno
import json
import re
import socket
import subprocess
import sys

import pytest

from conftest import (EXEC_ONLY_TRUE, LOCAL_ONLY, POLICIES, SUPERV, finish, lines, native,
                      policy_events, policy_of, policy_option, start_superv)


def test_hardened_denies_its_calls_in_the_kernel(prog, superv):
    program = [prog("policy_calls"), "kernel"]
    natively = lines(native(program).stdout)
    assert (natively["ptrace"], natively["personality"]) == ("0", "0")  # unshare needs root
    run = superv(program, options=("--policy", str(POLICIES / "hardened.yaml")))
    assert run.returncode == 0, run.stderr
    assert lines(run.stdout) == {"ptrace": "EPERM", "unshare": "EPERM", "personality": "EPERM"}
    # Decided by the BPF filter: the supervisor never saw them.
    assert policy_events(run) == []
    rules = {r["rule"]: r for r in policy_of(run)["rules"]}
    assert rules["no-debugging"] == {"rule": "no-debugging", "line": 20, "action": "deny", "calls": None,
                                     "in_kernel": True}


def test_no_net_refuses_inet_sockets_and_lets_unix_ones_work(prog, superv):
    program = [prog("policy_calls"), "net"]
    assert lines(native(program).stdout) == {"socket tcp": "3", "socket udp": "4", "socketpair unix": "0",
                                             "unix bytes": "5"}
    run = superv(program, options=("--policy", str(POLICIES / "no-net.yaml")))
    assert run.returncode == 0, run.stderr
    assert lines(run.stdout) == {"socket tcp": "EACCES", "socket udp": "EACCES", "socketpair unix": "0",
                                 "unix bytes": "5"}
    denied = policy_events(run)
    assert [(e["syscall"], e["result"], e["policy"]) for e in denied] == [
        ("socket", -13, {"rule": "no-network", "action": "deny"})] * 2
    assert policy_of(run)["rules"] == [{"rule": "no-network", "line": 6, "action": "deny", "calls": 2,
                                        "in_kernel": False}]
    # the unix socket's bytes are recorded as usual
    root = run.processes()[0]
    assert (root["classes"]["net"]["bytes_in"], root["classes"]["net"]["bytes_out"]) == (5, 5)


DISK_AND_UDP = """\
version: 1
rules:
  - name: no-disk-writes
    syscalls: [write, pwrite64, writev]
    class: disk
    action: deny
    errno: EROFS
  - name: no-udp
    syscalls: [socket]
    family: udp
    action: kill
"""


def test_a_data_call_denied_by_fd_class_while_other_fds_go_on(prog, superv, tmp_path):
    with_rules = policy_option(tmp_path, DISK_AND_UDP)
    target = tmp_path / "file"
    run = superv([prog("policy_calls"), "disk", target], options=with_rules)
    assert run.returncode == 0, run.stderr
    assert lines(run.stdout) == {"open": "3", "write file": "EROFS", "pipe": "0", "pipe bytes": "5"}
    assert target.read_bytes() == b""  # created by the open, never written
    assert [(e["syscall"], e["result"], e["policy"]["rule"]) for e in policy_events(run)] == [
        ("write", -30, "no-disk-writes")]
    # the pipe's calls went on, recorded exactly (stdout is a pipe too)
    root = run.processes()[0]
    assert (root["classes"]["pipe"]["bytes_in"], root["classes"]["pipe"]["bytes_out"]) == (5, 5 + len(run.stdout))


def test_kill_stops_the_process_at_the_call_and_names_the_rule(prog, superv, tmp_path):
    with_rules = policy_option(tmp_path, DISK_AND_UDP)
    run = superv([prog("policy_calls"), "net"], options=with_rules)
    assert run.returncode == 137
    assert lines(run.stdout) == {"socket tcp": "3"}  # and nothing after the udp socket
    killed = policy_events(run)
    assert [(e["syscall"], e["result"], e["policy"]) for e in killed] == [
        ("socket", None, {"rule": "no-udp", "action": "kill"})]
    assert run.summary["exit"] == "killed by SIGKILL"
    assert {r["rule"]: r["calls"] for r in policy_of(run)["rules"]} == {"no-disk-writes": 0, "no-udp": 1}


def test_audit_logs_every_traced_call_and_changes_nothing(prog, superv, tmp_path):
    program = [prog("policy_calls"), "disk", tmp_path / "native"]
    expected = native(program)
    run = superv([prog("policy_calls"), "disk", tmp_path / "audited"], options=("--policy", str(POLICIES / "audit.yaml")))
    assert (run.returncode, run.stdout) == (expected.returncode, expected.stdout)
    assert (tmp_path / "audited").read_bytes() == (tmp_path / "native").read_bytes() == b"hello"
    calls = [e for e in run.events if e["type"] == "call"]
    # every call record carries the hit, whether Python or the fast path made it
    assert len(calls) > 10
    assert all(e["policy"] == {"rule": "default", "action": "log"} for e in calls)
    assert {"openat", "write", "read", "pipe2", "exit_group"} <= {e["syscall"] for e in calls}
    assert run.summary["calls_answered"]["fast"] > 0
    assert policy_of(run)["default_calls"] == len(calls)  # counted by Python and the fast path alike


CLIENT = """\
import errno, socket, sys
port = int(sys.argv[1])
for host in ("127.0.0.1", "127.0.0.2"):
    s = socket.socket()
    try:
        s.connect((host, port))
        s.sendall(b"ping")
        print(host, s.recv(16).decode())
    except OSError as e:
        print(host, errno.errorcode[e.errno])
    s.close()
s = socket.socket()
s.setblocking(False)
print("non-blocking", errno.errorcode[s.connect_ex(("127.0.0.1", port))])
"""


def test_connect_is_decided_on_the_address_and_made_by_the_supervisor(superv, tmp_path, listeners):
    with_rules = policy_option(tmp_path, LOCAL_ONLY)
    client = tmp_path / "client.py"
    client.write_text(CLIENT)
    program = [sys.executable, client, str(listeners.port)]
    assert native(program).stdout.decode().splitlines() == ["127.0.0.1 pong", "127.0.0.2 pong", "non-blocking EINPROGRESS"]
    before = dict(listeners.accepted)
    run = superv(program, options=with_rules)
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines() == ["127.0.0.1 pong", "127.0.0.2 ECONNREFUSED", "non-blocking EINPROGRESS"]
    assert listeners.accepted["127.0.0.2"] == before["127.0.0.2"]
    connects = [e for e in run.events if e.get("syscall") == "connect"]
    assert [(e["result"], e.get("address"), e.get("policy")) for e in connects] == [
        (0, f"127.0.0.1:{listeners.port}", None),
        (-errno.ECONNREFUSED, f"127.0.0.2:{listeners.port}", {"rule": "elsewhere", "action": "deny"}),
        (-errno.EINPROGRESS, f"127.0.0.1:{listeners.port}", None),
    ]


@pytest.mark.parametrize("text, message", [
    ("version: 1\nrules:\n  - {syscalls: [socket], action: denny}\n", ":3:34: unknown action `denny`"),
    ("version: 1\nrules:\n  - {syscalls: [tgkill], action: deny}\n", ":3:16: denying tgkill outright would stop"),
])
def test_a_bad_policy_is_refused_with_its_place(prog, tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    done = subprocess.run([*SUPERV, "run", "-o", str(tmp_path / "out"), "--policy", str(bad), "--",
                           str(prog("policy_calls")), "net"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 125
    assert done.stderr.startswith(f"superv: {bad}{message}"), done.stderr
    assert done.stdout == ""


def test_without_a_policy_nothing_is_decided(prog, superv):
    run = superv([prog("policy_calls"), "net"])
    assert run.returncode == 0
    assert "policy" not in run.summary
    assert policy_events(run) == []
    assert json.loads(json.dumps(lines(run.stdout)))["socket tcp"] == "3"


@pytest.mark.parametrize("first_rule", ["", '  - {syscalls: ["@file"], direction: recv, path: [/nowhere/**], '
                                             'action: log}\n'])
def test_opening_for_writing_is_a_send(prog, superv, tmp_path, first_rule):
    """direction on an open: its flags (a register, not memory) say whether
    the file is opened for writing.  A path rule that cannot match the open
    (first_rule) leaves the decision to the next rule."""
    with_rules = policy_option(tmp_path, (
        f'version: 1\nrules:\n{first_rule}  - {{name: no-new-files, syscalls: ["@file"], direction: send, '
        'action: deny, errno: EROFS}\n'
    ))
    target = tmp_path / "file"
    run = superv([prog("policy_calls"), "disk", target], options=with_rules)
    assert run.returncode == 0, run.stderr
    assert lines(run.stdout) == {"open": "EROFS", "write file": "EBADF", "pipe": "0", "pipe bytes": "5"}
    assert not target.exists()
    # the loader's own opens (read-only) were allowed
    assert [e["syscall"] for e in policy_events(run)] == ["openat"]


ALARMED_CONNECT = """\
import signal, socket, sys, time
class Alarm(Exception):
    pass
def on_alarm(*_):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)  # without SA_RESTART
port = int(sys.argv[1])
filler = socket.create_connection(("127.0.0.1", port))  # the listener's backlog is now full
s = socket.socket()
signal.setitimer(signal.ITIMER_REAL, 0.2)
started = time.monotonic()
try:
    s.connect(("127.0.0.1", port))
    print("connected")
except Alarm:
    print("interrupted after", "less than 1 s" if time.monotonic() - started < 1 else "more than 1 s")
"""


def test_a_blocking_connect_made_by_the_supervisor_is_interrupted_as_natively(superv, tmp_path):
    """Its SYN is dropped (a full backlog), so it waits; SIGALRM at 0.2 s
    interrupts it (EINTR, the handler runs) natively and under superv."""
    with_rules = policy_option(tmp_path, LOCAL_ONLY)
    script = tmp_path / "alarmed.py"
    script.write_text(ALARMED_CONNECT)
    # A listener of its own for each run: a backlog stays full after its client exits.
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        assert native([sys.executable, script, str(full.getsockname()[1])]).stdout == \
            b"interrupted after less than 1 s\n"
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        run = superv([sys.executable, script, str(full.getsockname()[1])], options=with_rules)
        assert run.returncode == 0, run.stderr
        assert run.stdout == b"interrupted after less than 1 s\n"
    connects = [e for e in run.events if e.get("syscall") == "connect"]
    assert [(e["result"], e.get("interrupted")) for e in connects] == [(0, None), (None, True)]


NET_CLIENT = """\
import errno, socket, sys, urllib.request
port = int(sys.argv[1])
body = urllib.request.urlopen(f"http://127.0.0.1:{port}/hello.txt", timeout=10).read()
print("fetch", body.decode().strip())
def outcome(call):
    try:
        return str(call())
    except OSError as e:
        return errno.errorcode[e.errno]
tcp = socket.socket()
tcp.settimeout(5)
print("tcp 192.0.2.1:80", outcome(lambda: tcp.connect(("192.0.2.1", 80))))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("udp 192.0.2.1:9", outcome(lambda: udp.sendto(b"x", ("192.0.2.1", 9))))
print("udp 192.0.2.1:53", outcome(lambda: udp.sendto(b"dns?", ("192.0.2.1", 53))))
print("udp 127.0.0.1:9", outcome(lambda: udp.sendto(b"x", ("127.0.0.1", 9))))
"""


def test_net_yaml_lets_loopback_and_dns_through_and_refuses_the_rest(superv, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "hello.txt").write_text("hello from http.server\n")
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                               str(tmp_path / "site"), "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        port = int(re.search(rb"port (\d+)", server.stdout.readline())[1])
        client = tmp_path / "client.py"
        client.write_text(NET_CLIENT)
        run = superv([sys.executable, client, str(port)], options=("--policy", str(POLICIES / "net.yaml")))
    finally:
        server.kill()
        server.wait()
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines() == [
        "fetch hello from http.server",
        "tcp 192.0.2.1:80 ECONNREFUSED",
        "udp 192.0.2.1:9 ECONNREFUSED",
        "udp 192.0.2.1:53 4",
        "udp 127.0.0.1:9 1",
    ]
    refused = [(e["syscall"], e["policy"]["rule"]) for e in policy_events(run)]
    assert refused == [("connect", "outside"), ("sendto", "outside")]
    # loopback: the fetch's connect and its request (a send on a socket whose
    # remote end is 127.0.0.1), and the datagram to 127.0.0.1:9
    assert {r["rule"]: r["calls"] for r in policy_of(run)["rules"]} == {"loopback": 3, "dns": 1, "outside": 2}


def test_static_busybox_wget_fails_cleanly_under_no_net(superv, tmp_path):
    """A static binary (no libc wrapper to hook): its socket() is refused and
    it says so, while natively it fetches the file."""
    from conftest import busybox

    (tmp_path / "page.txt").write_text("a page\n")
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                               str(tmp_path), "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        port = int(re.search(rb"port (\d+)", server.stdout.readline())[1])
        program = [busybox(), "wget", "-q", "-O", "-", f"http://127.0.0.1:{port}/page.txt"]
        assert native(program).stdout == b"a page\n"
        run = superv(program, options=("--policy", str(POLICIES / "no-net.yaml")))
    finally:
        server.kill()
        server.wait()
    assert (run.returncode, run.stdout) == (1, b"")
    assert b"wget: socket: Permission denied" in run.stderr
    assert [(e["syscall"], e["result"], e["policy"]["rule"]) for e in policy_events(run)] == [
        ("socket", -errno.EACCES, "no-network")]


@pytest.mark.parametrize("action, errno_name", [("kill", None), ("deny", "EDQUOT")])
def test_a_send_budget_stops_the_program_at_the_budget(prog, superv, tmp_path, action, errno_name):
    """20 MiB through a unix socket, 64 KiB a write, under a 10 MiB send
    budget: the write that would go past it is stopped (the one that reaches
    it exactly is the last to go), whether the fast path or Python serves it."""
    extra = f", errno: {errno_name}" if errno_name else ""
    with_rules = policy_option(tmp_path, (
        f"version: 1\nbudgets:\n  - {{name: send-cap, class: net, direction: send, bytes: 10MiB, "
        f"action: {action}{extra}}}\n"
    ))
    program = [prog("policy_calls"), "bulk", "20"]
    assert native(program).stdout == b"sent 20971520\n"
    run = superv(program, options=with_rules)
    limit = 10 << 20
    if action == "kill":
        assert (run.returncode, run.stdout) == (137, b"")
    else:
        assert (run.returncode, run.stdout) == (0, f"sent {limit} then EDQUOT\n".encode())
    [budget] = policy_of(run)["budgets"]
    assert budget == {"budget": "send-cap", "line": 3, "class": "net", "direction": "send", "limit": limit,
                      "spent": limit, "over": True, "action": action, "calls": 1}
    sender = next(p for p in run.processes() if p["pid"] == run.processes()[0]["pid"])
    assert sender["classes"]["net"]["bytes_out"] == limit  # recorded bytes = bytes moved
    [spent] = [e for e in run.events if e["type"] == "budget"]
    assert (spent["budget"], spent["spent"], spent["action"]) == ("send-cap", limit, action)
    [stopped] = policy_events(run)
    assert (stopped["syscall"], stopped["policy"]) == ("write", {"rule": "send-cap", "action": action})


def test_a_logged_exec_is_marked_on_its_own_record(superv, tmp_path):
    with_rules = policy_option(tmp_path, 'version: 1\nrules:\n  - {name: execs, syscalls: ["@exec"], action: log}\n')
    run = superv(["/bin/sh", "-c", "/bin/echo hi; /bin/true"], options=with_rules)
    assert (run.returncode, run.stdout) == (0, b"hi\n")
    marked = [(e["type"], e["syscall"], e["path"]) for e in run.events if "policy" in e]
    # the execve records of the shell's children; superv's launcher's exec of
    # /bin/sh is not the program's: not decided, not marked
    assert marked == [("call", "execve", "/bin/echo"), ("call", "execve", "/bin/true")]


BIND_CLIENT = """\
import errno, socket
for host in ("127.0.0.1", "0.0.0.0"):
    s = socket.socket()
    try:
        s.bind((host, 0))
        print(host, "bound", s.getsockname()[0])
    except OSError as e:
        print(host, errno.errorcode[e.errno])
"""


def test_bind_is_decided_on_the_address_and_made_by_the_supervisor(superv, tmp_path):
    with_rules = policy_option(tmp_path, (
        'version: 1\nrules:\n  - {name: loopback-only, syscalls: [bind], family: [tcp, udp], '
        'addr: ["!127.0.0.0/8"], action: deny, errno: EADDRNOTAVAIL}\n'
    ))
    client = tmp_path / "bind.py"
    client.write_text(BIND_CLIENT)
    assert native([sys.executable, client]).stdout == b"127.0.0.1 bound 127.0.0.1\n0.0.0.0 bound 0.0.0.0\n"
    run = superv([sys.executable, client], options=with_rules)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"127.0.0.1 bound 127.0.0.1\n0.0.0.0 EADDRNOTAVAIL\n"
    binds = [e for e in run.events if e.get("syscall") == "bind"]
    assert [(e["result"], e.get("address"), e.get("policy")) for e in binds] == [
        (0, "127.0.0.1:0", None), (-errno.EADDRNOTAVAIL, "0.0.0.0:0", {"rule": "loopback-only", "action": "deny"})]


def test_exec_paths_are_decided_and_what_runs_is_checked(superv, tmp_path):
    with_rules = policy_option(tmp_path, EXEC_ONLY_TRUE)
    run = superv(["/bin/sh", "-c", "/bin/true && echo true ran; /bin/echo hi; echo $?"], options=with_rules)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"true ran\n126\n"
    assert b"/bin/echo: Permission denied" in run.stderr
    assert [(e["syscall"], e["result"], e["policy"]["rule"]) for e in policy_events(run)] == [
        ("execve", -errno.EACCES, "no-other-exec")]


SENDMMSG_CLIENT = """\
import ctypes, ctypes.util, errno, socket, struct
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(("127.0.0.1", 0))
port = receiver.getsockname()[1]
def address(host, port):
    raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(host) + bytes(8)
    return ctypes.create_string_buffer(raw, 16)
names = [address("127.0.0.1", port), address("127.0.0.1", port), address("192.0.2.1", 9), address("127.0.0.1", port)]
data = ctypes.create_string_buffer(b"hello")
iov = iovec(ctypes.cast(data, ctypes.c_void_p), 5)
vec = (mmsghdr * 4)()
for i, name in enumerate(names):
    vec[i].hdr.name, vec[i].hdr.namelen = ctypes.cast(name, ctypes.c_void_p), 16
    vec[i].hdr.iov, vec[i].hdr.iovlen = ctypes.pointer(iov), 1
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for first, count in ((0, 4), (2, 2)):
    n = libc.sendmmsg(s.fileno(), ctypes.byref(vec, ctypes.sizeof(mmsghdr) * first), count, 0)
    print(n if n >= 0 else errno.errorcode[ctypes.get_errno()])
receiver.setblocking(False)
arrived = 0
try:
    while receiver.recv(16):
        arrived += 1
except BlockingIOError:
    pass
print("arrived", arrived)
"""


def test_sendmmsg_stops_at_the_first_message_to_a_denied_address(superv, tmp_path):
    """As the kernel does at an error: the messages before it are sent and
    counted; a call whose first message is refused fails."""
    with_rules = policy_option(tmp_path, (
        'version: 1\nrules:\n  - {name: local-only, syscalls: [sendmmsg], addr: ["!127.0.0.0/8"], '
        'action: deny, errno: ECONNREFUSED}\n'
    ))
    client = tmp_path / "mm.py"
    client.write_text(SENDMMSG_CLIENT)
    assert native([sys.executable, client]).stdout == b"4\n2\narrived 4\n"
    run = superv([sys.executable, client], options=with_rules)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"2\nECONNREFUSED\narrived 2\n"
    hits = [(e["result"], e["policy"]) for e in policy_events(run)]
    assert hits == [(2, {"rule": "local-only", "action": "deny"}),
                    (-errno.ECONNREFUSED, {"rule": "local-only", "action": "deny"})]


SENDTO_CLIENT = """\
import socket
receivers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
receivers[0].bind(("127.0.0.1", 0))
receivers[1].bind(("127.0.0.2", receivers[0].getsockname()[1]))
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.bind(("127.0.0.1", 0))
sent = refused = 0
for i in range(200):
    try:
        if i % 4 < 2:
            sender.sendto(b"x" * 64, receivers[i % 2].getsockname())
        else:
            sender.sendmsg([b"x" * 32, b"y" * 32], [], 0, receivers[i % 2].getsockname())
        sent += 1
    except PermissionError:
        refused += 1
arrived = []
for receiver in receivers:
    receiver.setblocking(False)
    n = 0
    try:
        while receiver.recv(64):
            n += 1
    except BlockingIOError:
        pass
    arrived.append(n)
print("sent", sent, "refused", refused, "arrived", *arrived)
"""


def test_a_rule_on_the_address_decides_each_datagram(superv, tmp_path):
    """A bound UDP socket whose calls the fast path serves: a rule on the
    address of sendto and sendmsg still decides every datagram on the
    address it names, and none reaches 127.0.0.2."""
    with_rules = policy_option(tmp_path, (
        'version: 1\nrules:\n'
        '  - {name: not-two, syscalls: [sendto, sendmsg], addr: [127.0.0.2/32], action: deny}\n'
    ))
    client = tmp_path / "sendto.py"
    client.write_text(SENDTO_CLIENT)
    assert native([sys.executable, client]).stdout == b"sent 200 refused 0 arrived 100 100\n"
    run = superv([sys.executable, client], options=with_rules)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"sent 100 refused 100 arrived 100 0\n"
    denials = [e for e in policy_events(run) if e["policy"]["action"] == "deny"]
    assert len(denials) == 100 and all(e["policy"]["rule"] == "not-two" for e in denials)


def test_the_summary_counts_every_call_each_rule_decided(superv, tmp_path):
    """An allow rule counts too, whether the fast path or Python served the
    call: the counts add up to the run's call records.  (Under audit.yaml
    the default, which logs, counts every call: see above.)"""
    with_rules = policy_option(tmp_path, (
        "version: 1\nrules:\n"
        "  - {name: pipe-io, syscalls: [read, write], class: pipe, action: allow}\n"
    ))
    run = superv(["sh", "-c", "seq 1 200000 | cat > /dev/null"], options=with_rules)
    assert run.returncode == 0, run.stderr
    assert run.summary["calls_answered"]["fast"] > 100  # most were served by the fast path
    calls = [e for e in run.events if e["type"] == "call"]
    pipe_io = [e for e in calls if e["syscall"] in ("read", "write") and e.get("class") == "pipe"]
    assert len(pipe_io) > 100
    summary = policy_of(run)
    assert summary["rules"][0]["calls"] == len(pipe_io)
    assert summary["default_calls"] == len(calls) - len(pipe_io)


ACCEPTING_SERVER = """\
import errno, socket, sys
server = socket.socket()
server.bind(("0.0.0.0", 0))
server.listen(8)
print("port", server.getsockname()[1], flush=True)
server.settimeout(0.2)  # non-blocking underneath: accept4 says EAGAIN
try:
    server.accept()
except TimeoutError:
    print("timed out", flush=True)
server.settimeout(None)
for _ in range(3):
    try:
        connection, (host, port) = server.accept()
    except OSError as e:
        print("accept", errno.errorcode[e.errno], flush=True)
        continue
    print("accepted", host, connection.recv(16).decode().strip(), connection.getpeername()[0], flush=True)
    connection.sendall(b"bye\\n")
    connection.close()
"""


def test_accept_is_decided_on_the_peer_before_the_program_sees_it(superv, tmp_path):
    """addr on accept: superv accepts on the program's listening socket,
    decides on the peer, and installs the connection (with the peer's
    address written where accept asked) or closes it and fails the call."""
    with_rules = policy_option(tmp_path, (
        "version: 1\nrules:\n"
        "  - {name: local-peers, syscalls: [accept, accept4], addr: [127.0.0.1/32], action: allow}\n"
        "  - {name: other-peers, syscalls: [accept, accept4], action: deny, errno: ECONNABORTED}\n"
    ))
    (tmp_path / "server.py").write_text(ACCEPTING_SERVER)
    proc, out = start_superv([sys.executable, tmp_path / "server.py"], tmp_path, options=with_rules)
    port = int(proc.stdout.readline().split()[1])
    assert proc.stdout.readline() == b"timed out\n"
    replies = []
    for source, line in (("127.0.0.1", b"one\n"), ("127.0.0.2", b"two\n"), ("127.0.0.1", b"three\n")):
        with socket.socket() as client:
            client.bind((source, 0))
            client.connect(("127.0.0.1", port))
            client.sendall(line)
            try:
                replies.append(client.recv(16))
            except ConnectionResetError:
                replies.append(b"reset")
    run = finish(proc, out)
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines() == [
        "accepted 127.0.0.1 one 127.0.0.1", "accept ECONNABORTED", "accepted 127.0.0.1 three 127.0.0.1"]
    assert replies[0] == replies[2] == b"bye\n" and replies[1] in (b"", b"reset")
    [refused] = policy_events(run)
    assert (refused["syscall"], refused["policy"]["rule"], refused["result"]) == (
        "accept4", "other-peers", -errno.ECONNABORTED)
    assert refused["address"].startswith("127.0.0.2:")
    rules = {r["rule"]: r["calls"] for r in policy_of(run)["rules"]}
    assert rules == {"local-peers": 2, "other-peers": 1}


