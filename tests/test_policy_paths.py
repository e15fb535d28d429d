"""`path` rules on opens: superv walks the path as the program would, decides
on the file it reaches and opens that very file for the program (ADDFD).
Each run is compared with the same program's native run."""

from __future__ import annotations

import errno
import os
import socket
import threading
import sys


from conftest import POLICIES, native, policy_events, policy_option

# Every open walked and opened by superv, and logged with the file it reached.
EVERY_PATH = 'version: 1\nrules:\n  - {name: every-path, syscalls: ["@file"], path: ["/**"], action: log}\n'


def test_superv_opens_every_kind_of_path_as_the_kernel_would(prog, superv, tmp_path):
    """Symlinks (absolute, relative, chains, loops, dangling with O_CREAT),
    '..' above the root, dirfds, trailing slashes, O_EXCL, O_TMPFILE, the
    umask, /proc/self and /proc/thread-self (the program's, not superv's),
    /dev/fd, procfs links, a FIFO whose writer is a traced child, and openat2
    with each RESOLVE_ flag: the same outcome, flags and modes as natively."""
    for name in ("native", "superv"):
        (tmp_path / name).mkdir()
    natively = native([prog("open_cases"), tmp_path / "native"])
    assert natively.returncode == 0, natively.stderr
    run = superv([prog("open_cases"), tmp_path / "superv"], options=policy_option(tmp_path, EVERY_PATH))
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines() == natively.stdout.decode().splitlines()
    assert b"proc-self: mine" in run.stdout and b"fifo: ok" in run.stdout
    # superv made the opens: each record names the file it decided on.
    opened = [e for e in run.events if e.get("syscall") in ("open", "openat", "openat2", "creat")]
    made = [e for e in opened if e.get("file", "").startswith("/")]  # not pipe:[N] reopened
    assert len(made) > 40
    assert all(e["policy"] == {"rule": "every-path", "action": "log"} for e in made)
    dangling = next(e for e in made if e["path"] == "dangling")
    assert dangling["file"] == str(tmp_path / "superv" / "made-by-dangling") and dangling["result"] >= 0
    mine = next(e for e in made if e["path"] == "/proc/self/status")
    assert mine["file"] == f"/proc/{mine['pid']}/status"


def test_readonly_lets_busybox_read_and_refuses_a_write_outside(superv, tmp_path):
    """Acceptance 3: static busybox under readonly.yaml: cat of a file works,
    a write under /tmp works, a write elsewhere (/var/tmp) fails with EACCES
    and creates nothing, and /dev/stdout (a pipe, not a file) stays writable."""
    from conftest import busybox

    readable = tmp_path / "readable.txt"
    readable.write_text("some text\n")
    outside = f"/var/tmp/superv-readonly-{os.getpid()}"
    script = (f"cat {readable}; echo inside > {tmp_path}/written; echo outside > {outside}; echo status=$?; "
              "echo to-stdout > /dev/stdout")
    program = [busybox(), "sh", "-c", script]
    natively = native(program)
    assert natively.stdout == b"some text\nstatus=0\nto-stdout\n"
    os.unlink(outside)
    run = superv(program, options=("--policy", str(POLICIES / "readonly.yaml")))
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"some text\nstatus=1\nto-stdout\n"
    assert b"Permission denied" in run.stderr
    assert not os.path.exists(outside)
    assert (tmp_path / "written").read_text() == "inside\n"
    [denied] = policy_events(run)
    assert (denied["policy"], denied["result"], denied["file"]) == (
        {"rule": "read-only-elsewhere", "action": "deny"}, -errno.EACCES, outside)


def test_a_symlink_into_a_denied_place_is_decided_on_its_target(superv, tmp_path):
    """The decision is on the file the open reaches, not the name given."""
    link = tmp_path / "innocent"
    link.symlink_to("/etc/hostname")
    program = [sys.executable, "-c", f"open({str(link)!r}, 'a')"]
    run = superv(program, options=("--policy", str(POLICIES / "readonly.yaml")))
    assert run.returncode == 1 and b"PermissionError" in run.stderr
    [denied] = policy_events(run)
    assert (denied["path"], denied["file"]) == (str(link), "/etc/hostname")


UNIX_CLIENT = """\
import errno, os, socket, sys
os.chdir(sys.argv[1])
for name in ("ok/sock", "secret/sock", "ok/link", "ok/missing", "ok/plain", "/proc/self/cwd/ok/sock", "@abstract"):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect("\\0superv-test-abstract" if name == "@abstract" else name)
        print(name, "connected", s.recv(16).decode(), s.getpeername() == os.path.abspath("ok/sock"))
    except OSError as e:
        print(name, errno.errorcode[e.errno])
    s.close()
"""


def test_a_unix_socket_path_is_decided_on_the_socket_file_it_reaches(superv, tmp_path):
    """path on connect: the socket file is found as the program's connect
    would find it (relative to its working directory, through symlinks and
    /proc/self), pinned, decided on, and connected to through the pin."""
    listeners = []
    for where in ("ok", "secret"):
        (tmp_path / where).mkdir()
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(tmp_path / where / "sock"))
        listener.listen(8)
        listeners.append(listener)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0superv-test-abstract")
    abstract.listen(8)
    listeners.append(abstract)
    (tmp_path / "ok" / "link").symlink_to(tmp_path / "secret" / "sock")
    (tmp_path / "ok" / "plain").write_text("not a socket\n")

    def serve(listener):
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.sendall(b"hi")
            connection.close()

    for listener in listeners:
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
    (tmp_path / "client.py").write_text(UNIX_CLIENT)
    program = [sys.executable, tmp_path / "client.py", tmp_path]
    try:
        natively = native(program)
        run = superv(program, options=policy_option(tmp_path, (
            "version: 1\nrules:\n"
            f"  - {{name: no-secrets, syscalls: [connect], path: [{tmp_path}/secret/**], action: deny, "
            "errno: EACCES}\n"
        )))
    finally:
        for listener in listeners:
            listener.close()
    assert run.returncode == 0, run.stderr
    expected = natively.stdout.decode().replace("secret/sock connected hi False", "secret/sock EACCES") \
        .replace("ok/link connected hi False", "ok/link EACCES")
    assert natively.stdout.decode().count("connected") == 5
    assert run.stdout.decode() == expected
    assert "ok/sock connected hi True" in expected and "ok/missing ENOENT" in expected
    assert "ok/plain ECONNREFUSED" in expected and "@abstract connected hi False" in expected
    denials = policy_events(run)
    assert [(e["address"], e["policy"]["rule"]) for e in denials] == [
        ("secret/sock", "no-secrets"), ("ok/link", "no-secrets")]


DATAGRAM_CLIENT = """\
import errno, os, socket, sys
os.chdir(sys.argv[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for name in ("ok.dgram", "secret.dgram", "link.dgram", "missing.dgram"):
    try:
        print(name, s.sendto(name.encode(), name))
    except OSError as e:
        print(name, errno.errorcode[e.errno])
"""


def test_a_datagram_to_a_unix_socket_path_is_decided_on_the_socket_file(superv, tmp_path):
    """path on sendto: the destination socket file is found (relative to
    the program's working directory, through symlinks), pinned and decided
    on; the datagram goes through the pin, and the receiver sees the
    sender's own (unnamed) address, as natively."""
    receivers = {}
    for where in ("ok", "secret"):
        receivers[where] = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receivers[where].bind(str(tmp_path / f"{where}.dgram"))
        receivers[where].setblocking(False)
    (tmp_path / "link.dgram").symlink_to(tmp_path / "secret.dgram")
    (tmp_path / "client.py").write_text(DATAGRAM_CLIENT)
    program = [sys.executable, tmp_path / "client.py", tmp_path]

    def drain(where):
        got = []
        while True:
            try:
                got.append(receivers[where].recvfrom(64))
            except BlockingIOError:
                return got

    try:
        natively = native(program)
        assert natively.stdout.decode().splitlines() == [
            "ok.dgram 8", "secret.dgram 12", "link.dgram 10", "missing.dgram ENOENT"]
        assert [data for data, _ in drain("secret")] == [b"secret.dgram", b"link.dgram"]
        drain("ok")
        run = superv(program, options=policy_option(tmp_path, (
            "version: 1\nrules:\n"
            f"  - {{name: no-secret, syscalls: [sendto], path: [{tmp_path}/secret.dgram], action: deny, "
            "errno: EACCES}\n"
        )))
        assert run.returncode == 0, run.stderr
        assert run.stdout.decode().splitlines() == [
            "ok.dgram 8", "secret.dgram EACCES", "link.dgram EACCES", "missing.dgram ENOENT"]
        assert drain("ok") == [(b"ok.dgram", None)] and drain("secret") == []
    finally:
        for receiver in receivers.values():
            receiver.close()
    assert [(e["address"], e["policy"]["rule"]) for e in policy_events(run)] == [
        ("secret.dgram", "no-secret"), ("link.dgram", "no-secret")]


BINDING_CLIENT = """\
import errno, os, socket, stat, sys
os.chdir(sys.argv[1])
os.umask(0o077)
for name in ("ok/a.sock", sys.argv[1] + "/secret/b.sock", "ok/link/c.sock", "ok/a.sock", "\\0abstract-superv-test"):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(name)
        mode = oct(stat.S_IMODE(os.stat(name).st_mode)) if name[0] != "\\0" else "-"
        print(name.replace(sys.argv[1], "DIR").strip("\\0"), "bound", s.getsockname() in (name, name.encode()), mode)
    except OSError as e:
        print(name.replace(sys.argv[1], "DIR").strip("\\0"), errno.errorcode[e.errno])
"""


def test_a_unix_socket_bind_is_decided_on_where_its_file_would_be_made(superv, tmp_path):
    """path on bind: decided on the file the bind would make (through the
    program's cwd and symlinks); made from the program's working directory
    with its umask, under the very name it gave (getsockname as natively)."""
    for run_name in ("native", "superv"):
        (tmp_path / run_name / "ok").mkdir(parents=True)
        (tmp_path / run_name / "secret").mkdir()
        (tmp_path / run_name / "ok" / "link").symlink_to("../secret")
    (tmp_path / "client.py").write_text(BINDING_CLIENT)
    natively = native([sys.executable, tmp_path / "client.py", tmp_path / "native"])
    assert natively.stdout.decode().splitlines() == [
        "ok/a.sock bound True 0o700", "DIR/secret/b.sock bound True 0o700", "ok/link/c.sock bound True 0o700",
        "ok/a.sock EADDRINUSE", "abstract-superv-test bound True -"]
    run = superv([sys.executable, tmp_path / "client.py", tmp_path / "superv"], options=policy_option(tmp_path, (
        "version: 1\nrules:\n"
        f"  - {{name: sockets-here, syscalls: [bind], path: [{tmp_path}/superv/ok/**], action: allow}}\n"
        "  - {name: no-sockets-elsewhere, syscalls: [bind], path: ['/**'], action: deny, errno: EACCES}\n"
    )))
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines() == [
        "ok/a.sock bound True 0o700", "DIR/secret/b.sock EACCES", "ok/link/c.sock EACCES",
        "ok/a.sock EADDRINUSE", "abstract-superv-test bound True -"]
    assert sorted(p.name for p in (tmp_path / "superv" / "secret").iterdir()) == []
    denials = policy_events(run)
    assert [e["file"] for e in denials] == [f"{tmp_path}/superv/secret/b.sock", f"{tmp_path}/superv/secret/c.sock"]


PATH_CHANGES = """\
import errno, os, stat, sys
os.chdir(sys.argv[1])
os.umask(0o027)
def attempt(name, call):
    try:
        call()
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
def describe(path):
    try:
        st = os.lstat(path)
        return f"{stat.filemode(st.st_mode)} {st.st_size}"
    except OSError as e:
        return errno.errorcode[e.errno]
open("file", "w").write("content\\n")
os.symlink("file", "link")
dirfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
attempt("mkdir", lambda: os.mkdir("made", 0o777))
attempt("mkdir-again", lambda: os.mkdir("made"))
attempt("mkdir-slash", lambda: os.mkdir("made2/"))
attempt("mkdirat", lambda: os.mkdir("made3", 0o700, dir_fd=dirfd))
attempt("mkdir-missing-parent", lambda: os.mkdir("none/made"))
attempt("chmod-through-link", lambda: os.chmod("link", 0o600))
attempt("chown-through-link", lambda: os.chown("link", os.getuid(), -1))
attempt("lchown", lambda: os.lchown("link", os.getuid(), os.getgid()))
attempt("truncate", lambda: os.truncate("link", 3))
attempt("truncate-dir", lambda: os.truncate("made", 0))
attempt("link", lambda: os.link("file", "hard"))
attempt("link-of-symlink", lambda: os.link("link", "hard-to-link", follow_symlinks=False))
attempt("symlink", lambda: os.symlink("/nowhere/at/all", "dangling"))
attempt("rename", lambda: os.rename("hard", "made/moved"))
attempt("rename-over-dir", lambda: os.rename("file", "made"))
attempt("renameat", lambda: os.rename("made/moved", "back", src_dir_fd=dirfd, dst_dir_fd=dirfd))
attempt("unlink-symlink", lambda: os.unlink("link"))
attempt("unlink-dir", lambda: os.unlink("made"))
attempt("unlink-slash", lambda: os.unlink("file/"))
attempt("unlink-missing", lambda: os.unlink("missing"))
attempt("rmdir-full", lambda: os.rmdir("made"))
attempt("rmdir", lambda: os.rmdir("made2"))
attempt("unlinkat-dir", lambda: os.rmdir("made3", dir_fd=dirfd))
attempt("mkfifo", lambda: os.mkfifo("fifo", 0o666))
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
result = libc.symlink(ctypes.c_void_p(8), b"bad-target")  # a target pointer that points nowhere
print("symlink-bad-target", "ok" if result == 0 else errno.errorcode[ctypes.get_errno()])
for name in sorted(os.listdir(".")):
    print("left", name, describe(name))
"""


def test_path_changes_made_by_superv_are_the_programs_own(superv, tmp_path):
    """unlink, rmdir, mkdir, mknod, rename, link, symlink, truncate, chmod
    and chown, walked and made by superv (each symlink followed or not as
    the call does; the program's umask): the same outcomes and results as
    natively."""
    for run_name in ("native", "superv"):
        (tmp_path / run_name).mkdir()
    (tmp_path / "changes.py").write_text(PATH_CHANGES)
    natively = native([sys.executable, tmp_path / "changes.py", tmp_path / "native"])
    assert natively.returncode == 0, natively.stderr
    run = superv([sys.executable, tmp_path / "changes.py", tmp_path / "superv"],
                 options=policy_option(tmp_path, EVERY_PATH))
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines() == natively.stdout.decode().splitlines()
    made = {e["syscall"] for e in run.events if e.get("files")}
    assert {"mkdir", "unlink", "rmdir", "rename", "link", "symlink", "truncate", "chmod", "chown", "lchown"} <= made
    assert made & {"mknod", "mknodat"} and made & {"unlinkat", "mkdirat", "renameat", "linkat"}


def test_readonly_refuses_changes_outside_the_writable_places(superv, tmp_path):
    """readonly.yaml's "@file" covers unlink, rename, mkdir, chmod...: each
    fails with EACCES outside /tmp and the working directory."""
    outside = f"/var/tmp/superv-readonly-{os.getpid()}"
    os.mkdir(outside)
    try:
        (tmp_path / "inside").write_text("x")
        open(f"{outside}/file", "w").write("x")
        script = f"""
import errno, os
def attempt(name, call):
    try:
        call()
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
attempt("unlink outside", lambda: os.unlink("{outside}/file"))
attempt("chmod outside", lambda: os.chmod("{outside}/file", 0o777))
attempt("mkdir outside", lambda: os.mkdir("{outside}/dir"))
attempt("rename out", lambda: os.rename("{tmp_path}/inside", "{outside}/moved"))
attempt("symlink outside", lambda: os.symlink("/etc/passwd", "{outside}/link"))
attempt("rename inside", lambda: os.rename("{tmp_path}/inside", "{tmp_path}/renamed"))
attempt("mkdir inside", lambda: os.mkdir("{tmp_path}/dir"))
"""
        run = superv([sys.executable, "-c", script], options=("--policy", str(POLICIES / "readonly.yaml")))
        assert run.returncode == 0, run.stderr
        assert run.stdout.decode().splitlines() == [
            "unlink outside EACCES", "chmod outside EACCES", "mkdir outside EACCES", "rename out EACCES",
            "symlink outside EACCES", "rename inside ok", "mkdir inside ok"]
        assert sorted(os.listdir(outside)) == ["file"]
        assert oct(os.stat(f"{outside}/file").st_mode & 0o777) != "0o777"
    finally:
        for name in os.listdir(outside):
            os.unlink(f"{outside}/{name}")
        os.rmdir(outside)
