"""Policies: the format's errors (message, line, column), the decision for a
call, what compiles into the kernel, the bundled policies, and
`superv policy check|show` as a user runs them."""

from __future__ import annotations

import errno
import subprocess
import textwrap

import hypothesis
import hypothesis.strategies as st
import pytest
import yaml

from conftest import REPO, SUPERV
from superv import policy
from superv.policy import CallFacts, PolicyError

POLICIES = sorted((REPO / "policies").glob("*.yaml"))


def parse(text: str) -> policy.Policy:
    return policy.parse(textwrap.dedent(text), "p.yaml")


def error_of(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse(text)
    return caught.value


# -- errors: what was wrong, and where ---------------------------------------------------

RULE = """\
version: 1
rules:
  - name: r
    syscalls: [connect]
{}
"""

ERRORS = [
    # (policy text, line, column, what the message must say)
    (RULE.format("    adr: [127.0.0.1]\n    action: deny"), 5, 5, "unknown key `adr` in a rule; did you mean `addr`?"),
    ("version: 1\ndefualt: allow\n", 2, 1, "unknown key `defualt` in the policy; did you mean `default`?"),
    (RULE.format("    addr: [10.0.0.300/8]\n    action: deny"), 5, 12, "bad CIDR `10.0.0.300/8`"),
    (RULE.format("    addr: [\"!10.0.0.1/8\"]\n    action: deny"), 5, 12,
     "bad CIDR `10.0.0.1/8`: host bits set (did you mean 10.0.0.0/8?)"),
    ("version: 1\nrules:\n  - syscalls: [conect]\n    action: deny\n", 3, 16, "unknown syscall `conect`; did you mean `connect`?"),
    ("version: 1\nrules:\n  - syscalls: [\"@netz\"]\n    action: deny\n", 3, 16, "unknown syscall group `@netz`"),
    ("version: 1\nrules:\n  - syscalls: [@net]\n    action: deny\n", 3, 16, 'a group name needs quotes: "@net"'),
    (RULE.format("    action: deny\n    errno: ECONREFUSED"), 6, 12, "unknown errno name `ECONREFUSED`; did you mean `ECONNREFUSED`?"),
    (RULE.format("    action: allow\n    errno: EPERM"), 6, 5, "`errno` only goes with `action: deny`, not allow"),
    (RULE.format("    port: [80, 70000]\n    action: deny"), 5, 16, "port 70000 out of range 0-65535"),
    (RULE.format("    port: [http]\n    action: deny"), 5, 12, "bad port `http`: expected a number or a range like 8000-8100"),
    (RULE.format("    port: 90-80\n    action: deny"), 5, 11, "empty port range `90-80`: 90 > 80"),
    (RULE.format("    action: denny"), 5, 13, "unknown action `denny`: expected allow | log | deny | kill; did you mean `deny`?"),
    (RULE.format("    class: netw\n    action: deny"), 5, 12, "unknown class `netw`"),
    (RULE.format("    family: tcp4\n    action: deny"), 5, 13, "unknown family `tcp4`"),
    (RULE.format("    path: [\"etc/**\"]\n    action: deny"), 5, 12, "path pattern `etc/**` must start with / (absolute) or ./"),
    (RULE.format("    direction: out\n    action: deny"), 5, 16, "unknown direction `out`: expected send | recv"),
    (RULE.format("    class: net"), 3, 5, "a rule needs an `action`"),
    ("version: 1\nrules:\n  - name: a\n    action: log\n  - name: a\n    action: deny\n", 5, 11,
     "duplicate rule name 'a' (first at line 3)"),
    ("version: 1\nrules:\n  - syscalls: [ptrace]\n    path: [/proc/**]\n    action: deny\n", 4, 5,
     "`path` needs calls the supervisor sees; ptrace can only be allowed, denied or killed outright"),
    ("version: 1\nbudgets:\n  - {class: net, direction: send, bytes: 10, action: kill}\n", 3, 42,
     "`bytes: 10` needs a unit: one of b, kb, mb, gb, kib, mib, gib (e.g. 10MiB)"),
    ("version: 1\nbudgets:\n  - {class: net, direction: send, bytes: 10XB, action: kill}\n", 3, 42, "`bytes: 10XB` needs a unit"),
    ("version: 1\nbudgets:\n  - {class: net, bytes: 1MiB, action: kill}\n", 3, 5, "a budget needs `direction`"),
    (RULE.format("    addr: []\n    action: deny"), 5, 11, "empty list: leave the key out to match anything"),
    ("version: 1\nrules:\n  - {syscalls: [read], target: supervisor, action: deny}\n", 3, 16,
     "`target: supervisor` guards fcntl, ioctl, kill, pidfd_open, rt_sigqueueinfo, rt_tgsigqueueinfo, tgkill, tkill "
     "and the @file calls"),
    ("version: 1\nrules:\n  - {syscalls: [kill], target: supervisor, action: log}\n", 3, 24,
     "`target: supervisor` goes alone, with action deny or kill"),
    ("version: 2\n", 1, 10, "unknown version 2: this superv reads version 1"),
    ("version: 010\n", 1, 10, "unknown version 8"),  # YAML 1.1 reads 010 as octal
    ("default: allow\n", 1, 1, "missing `version: 1`"),
    ("version: one\n", 1, 10, "expected a whole number, not 'one'"),
    ("- version: 1\n", 1, 1, "the policy must be a mapping"),
    ("", 1, 1, "empty policy"),
    ("version: 1\nversion: 1\n", 2, 1, "`version` given twice in the policy"),
    ("version: 1\nrules: {action: deny}\n", 2, 8, "`rules` must be a list"),
    ("version: 1\nrules:\n  - action: deny\n   name: x\n", 4, 4, "not valid YAML"),
]


@pytest.mark.parametrize("text, line, column, message", ERRORS, ids=[e[3][:40] for e in ERRORS])
def test_a_mistake_is_named_with_its_line_and_column(text, line, column, message):
    error = error_of(text)
    assert (error.line, error.column) == (line, column), str(error)
    assert message in error.message
    assert str(error).startswith(f"p.yaml:{line}:{column}: ")


def test_check_refuses_a_bad_policy_with_exit_125_and_the_place(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULE.format("    adr: [127.0.0.1]\n    action: deny"))
    done = subprocess.run([*SUPERV, "policy", "check", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 125
    assert done.stderr == f"superv: {bad}:5:5: unknown key `adr` in a rule; did you mean `addr`?\n"
    assert done.stdout == ""


def test_check_refuses_a_missing_file_and_a_missing_argument(tmp_path):
    missing = subprocess.run([*SUPERV, "policy", "check", str(tmp_path / "none.yaml")], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 125
    assert "cannot read policy" in missing.stderr and "No such file or directory" in missing.stderr
    no_file = subprocess.run([*SUPERV, "policy", "check"], capture_output=True, text=True, timeout=60)
    assert no_file.returncode == 125
    assert "usage: superv policy check|show FILE" in no_file.stderr


# -- the bundled policies -------------------------------------------------------------------


def test_there_are_the_five_bundled_policies():
    assert [p.name for p in POLICIES] == ["audit.yaml", "hardened.yaml", "net.yaml", "no-net.yaml", "readonly.yaml"]


@pytest.mark.parametrize("path", POLICIES, ids=[p.name for p in POLICIES])
def test_each_bundled_policy_passes_check_and_says_what_it_is_for(path):
    done = subprocess.run([*SUPERV, "policy", "check", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: ok (")
    assert path.read_text().startswith(f"# {path.name}: ")


def bundled(name: str, cwd: str = "/home/user/work") -> policy.Policy:
    return policy.with_working_directory(policy.load(str(REPO / "policies" / name)), cwd)


def test_audit_logs_every_traced_call_and_denies_nothing():
    audit = bundled("audit.yaml")
    for call in (CallFacts("connect", "net", "tcp", "8.8.8.8", 443), CallFacts("write", "disk", direction="send")):
        assert policy.decide(audit, call).action == "log"


def test_net_allows_loopback_and_dns_and_refuses_the_rest():
    net = bundled("net.yaml")
    decide = lambda *args: policy.decide(net, CallFacts(*args))  # noqa: E731
    assert decide("connect", "net", "tcp", "127.0.0.1", 8000).action == "allow"
    assert decide("connect", "net", "tcp6", "::1", 8000).action == "allow"
    assert decide("sendto", "net", "udp", "10.0.0.53", 53).rule.name == "dns"
    outside = decide("connect", "net", "tcp", "93.184.216.34", 443)
    assert (outside.action, outside.errno, outside.rule.name) == ("deny", errno.ECONNREFUSED, "outside")
    # an IPv6 socket reaching an IPv4 address is judged by its IPv4 address
    assert decide("connect", "net", "tcp6", "::ffff:93.184.216.34", 443).action == "deny"
    assert decide("connect", "net", "tcp6", "::ffff:127.0.0.1", 443).action == "allow"
    assert decide("connect", "net", "unix-stream", None, None).action == "allow"


def test_no_net_refuses_every_socket_but_unix_ones():
    no_net = bundled("no-net.yaml")
    assert policy.decide(no_net, CallFacts("socket", family="tcp")).errno == errno.EACCES
    assert policy.decide(no_net, CallFacts("socket", family="netlink")).action == "deny"
    assert policy.decide(no_net, CallFacts("socket", family="unix-dgram")).action == "allow"
    assert policy.decide(no_net, CallFacts("write", "pipe", direction="send")).action == "allow"


def test_readonly_allows_writes_only_in_tmp_and_the_working_directory():
    readonly = bundled("readonly.yaml", cwd="/home/user/work")
    def opening(path, direction, fd_class="disk"):
        return policy.decide(readonly, CallFacts("openat", fd_class, path=path, direction=direction))

    assert opening("/etc/passwd", "recv").action == "allow"
    assert (opening("/etc/passwd", "send").action, opening("/etc/passwd", "send").errno) == ("deny", errno.EACCES)
    assert opening("/tmp/a/b/c", "send").action == "allow"
    assert opening("/home/user/work/out/x.txt", "send").action == "allow"
    assert opening("/home/user/workshop/x.txt", "send").action == "deny"
    assert opening("/dev/null", "send", "device").action == "allow"
    assert opening("/dev/sda", "send", "device").action == "deny"
    # /dev/stdout reopened: a pipe or a terminal is no file to protect
    assert opening("pipe:[4242]", "send", "pipe").action == "allow"
    assert opening("/dev/pts/3", "send", "tty").action == "allow"


def test_the_path_matters_only_where_a_rule_reading_it_could_decide():
    readonly = bundled("readonly.yaml", cwd="/home/user/work")
    assert policy.path_matters(readonly, CallFacts("openat", direction="send"))
    assert not policy.path_matters(readonly, CallFacts("openat", direction="recv"))  # the kernel opens it
    hardened = bundled("hardened.yaml")
    assert policy.path_matters(hardened, CallFacts("openat", direction="recv"))  # is it superv's /proc?
    assert not policy.path_matters(bundled("net.yaml"), CallFacts("openat", direction="send"))


def test_hardened_denies_its_calls_in_the_kernel():
    in_kernel, in_supervisor = policy.kernel_plan(bundled("hardened.yaml"))
    assert in_supervisor == ()
    denied = {k.syscall: k.errno for k in in_kernel}
    assert {"ptrace", "process_vm_readv", "process_vm_writev", "bpf", "perf_event_open", "kexec_load", "mount",
            "umount2", "keyctl", "add_key", "unshare", "setns", "userfaultfd", "personality"} <= denied.keys()
    assert set(denied.values()) == {errno.EPERM}


def test_show_prints_what_goes_into_the_kernel_and_what_stays():
    done = subprocess.run([*SUPERV, "policy", "show", str(REPO / "policies" / "net.yaml")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    kernel, supervisor = lines.index(next(x for x in lines if x.startswith("In the kernel"))), lines.index(
        next(x for x in lines if x.startswith("In the supervisor")))
    assert lines[kernel + 1] == "  nothing"
    assert lines[supervisor + 3] == "  outside: deny ECONNREFUSED (connect, sendmsg, sendto; family tcp,tcp6,udp,udp6)"
    assert lines[-1] == "Traced calls no rule matches: allow"


# -- deciding ----------------------------------------------------------------------------


def test_the_first_matching_rule_wins_and_the_default_catches_the_rest():
    p = parse("""\
        version: 1
        default: log
        rules:
          - {name: first, syscalls: [connect], port: "8000-8100", action: allow}
          - {name: second, syscalls: [connect], action: deny}
        """)
    assert policy.decide(p, CallFacts("connect", "net", "tcp", "1.2.3.4", 8050)).rule.name == "first"
    assert policy.decide(p, CallFacts("connect", "net", "tcp", "1.2.3.4", 8101)).rule.name == "second"
    rest = policy.decide(p, CallFacts("read", "pipe", direction="recv"))
    assert (rest.action, rest.rule) == ("log", None)


def test_lists_with_negations_and_globs():
    p = parse("""\
        version: 1
        rules:
          - {name: etc, syscalls: ["@file"], path: ["/etc/**", "!/etc/hosts", "!/etc/*.d/**"], action: deny}
          - {name: outside, syscalls: [connect], addr: ["10.0.0.0/8", "!10.1.0.0/16"], action: kill}
          - {name: unix, syscalls: [connect], family: unix, action: log}
        """)
    rule_for = lambda **facts: getattr(policy.decide(p, CallFacts(**facts)).rule, "name", None)  # noqa: E731
    assert rule_for(syscall="open", path="/etc/ssl/certs/x") == "etc"
    assert rule_for(syscall="open", path="/etc/hosts") is None
    assert rule_for(syscall="open", path="/etc/apt.conf.d/x") is None  # apt.conf.d is *.d
    assert rule_for(syscall="open", path="/etc/a/b.d/x") == "etc"  # * stays within one directory
    assert rule_for(syscall="open", path="/etcetera") is None
    assert rule_for(syscall="connect", address="10.2.3.4", port=1) == "outside"
    assert rule_for(syscall="connect", address="10.1.3.4", port=1) is None
    assert rule_for(syscall="connect", family="unix-stream") == "unix"
    assert rule_for(syscall="connect", family="tcp", address=None) is None  # no address: addr cannot match


def test_deny_errno_defaults_to_eacces_for_paths_and_eperm_otherwise():
    p = parse("""\
        version: 1
        rules:
          - {syscalls: [openat], path: ["/secret/**"], action: deny}
          - {syscalls: [connect], action: deny}
        """)
    assert [r.errno for r in p.rules] == [errno.EACCES, errno.EPERM]


def test_an_outright_deny_after_a_conditional_rule_on_the_same_call_stays_in_the_supervisor():
    p = parse("""\
        version: 1
        rules:
          - {name: local, syscalls: [connect], addr: [127.0.0.1], action: allow}
          - {name: no-connect, syscalls: [connect, ptrace], action: deny}
        """)
    in_kernel, in_supervisor = policy.kernel_plan(p)
    assert [(k.syscall, k.rule.name) for k in in_kernel] == [("ptrace", "no-connect")]
    assert [r.name for r in in_supervisor] == ["local", "no-connect"]


def test_sizes_take_decimal_and_binary_units():
    assert [policy.parse_size(s) for s in ("10MiB", "10 MB", "1kib", "7b", "10", "1TB")] == [
        10 * 2**20, 10**7, 1024, 7, None, None]


# -- nothing but PolicyError, whatever the input ------------------------------------------


def _mutations():
    texts = [p.read_text() for p in POLICIES]
    return st.builds(
        lambda text, at, cut, insert: text[:at % (len(text) + 1)] + insert + text[at % (len(text) + 1) + cut:],
        st.sampled_from(texts),
        st.integers(0, 10_000),
        st.integers(0, 40),
        st.text(alphabet=st.sampled_from(list("ab:-[]{}!@*/.,\"' \n\t0123456789#&|>%")), max_size=12),
    )


def _yaml_values():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                        st.text(max_size=20), st.sampled_from(list(policy.RULE_KEYS) + ["@net", "10.0.0.0/8", "1MiB"]))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(policy.RULE_KEYS + policy.TOP_KEYS), st.text(max_size=8)), inner,
                        max_size=5)), max_leaves=20)


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(st.one_of(_mutations(), st.text(max_size=200),
                            _yaml_values().map(lambda v: yaml.safe_dump({"version": 1, "rules": [v]}))))
def test_random_and_mutated_policies_never_raise_anything_but_a_policy_error(text):
    try:
        policy.parse(text, "fuzz.yaml")
    except PolicyError as e:
        assert e.line >= 1 and e.column >= 1 and e.message


def test_what_superv_s_launcher_needs_is_never_denied_in_the_kernel():
    """The launcher closes its copy of the listener and execs the target after
    the filter is in place: close and execve denials go to the supervisor
    (which knows the launcher), and an outright denial of an untraced call it
    makes is refused."""
    p = parse("version: 1\nrules:\n  - {name: quiet, syscalls: [close, execve, ptrace], action: deny}\n")
    in_kernel, in_supervisor = policy.kernel_plan(p)
    assert [k.syscall for k in in_kernel] == ["ptrace"]
    assert [r.name for r in in_supervisor] == ["quiet"]
    assert "would stop superv's launcher" in error_of(
        "version: 1\nrules:\n  - {syscalls: [rt_sigprocmask], action: kill}\n").message


