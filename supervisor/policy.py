"""Policies: the YAML file a user writes, checked and turned into rules, and
the decision for one call.

Sans-IO: `parse(text, source)` gives a Policy or raises PolicyError naming
file:line:column; `decide(policy, call)` gives the action of the first rule
that matches a call's facts; `kernel_plan(policy)` tells which rules can be
compiled into the BPF filter (a syscall denied outright, whatever its
arguments) and which need the supervisor.  docs/policy.md describes the
format for users.
"""

from __future__ import annotations

import difflib
import errno as errno_module
import ipaddress
import re

import attrs
import pyseccomp
import yaml

from . import syscalls
from .classify import FdClass

ACTIONS = ("allow", "log", "deny", "kill")
CLASSES = tuple(c.value for c in FdClass)
# The socket details classification gives, and "unix" for any unix socket.
FAMILIES = ("tcp", "tcp6", "udp", "udp6", "unix", "unix-stream", "unix-dgram", "unix-seqpacket", "netlink", "raw",
            "other")
DIRECTIONS = ("send", "recv")

_BY_HANDLING = {h: frozenset(s.name for s in syscalls.TABLE if s.handling is h) for h in syscalls.Handling}
OPENS = frozenset({"open", "openat", "openat2", "creat"})
PATH_CHANGES = frozenset(s.name for s in syscalls.PATH_CHANGES)
GROUPS: dict[str, frozenset[str]] = {
    "@io": _BY_HANDLING[syscalls.Handling.DATA],
    "@net": frozenset({"socket", "socketpair", "accept", "accept4", "connect", "bind", "listen", "shutdown",
                       "recvfrom", "sendto", "recvmsg", "sendmsg", "recvmmsg", "sendmmsg"}),
    "@file": OPENS | PATH_CHANGES,
    "@exec": _BY_HANDLING[syscalls.Handling.EXEC],
    "@process": _BY_HANDLING[syscalls.Handling.SPAWN] | _BY_HANDLING[syscalls.Handling.EXIT]
    | _BY_HANDLING[syscalls.Handling.REAP],
}
TRACED = frozenset(s.name for s in syscalls.TABLE)

# superv's launcher makes these calls after it installed the filter (it
# stops itself, then execs the target): they are never denied in the kernel.
# The traced ones go to the supervisor, which knows the launcher from the
# target; a rule denying an untraced one outright is refused.
LAUNCHER_TRACED = frozenset({"close", "execve", "execveat", "write", "exit", "exit_group"})
LAUNCHER_UNTRACED = frozenset({"getpid", "gettid", "tgkill", "kill", "rt_sigprocmask", "rt_sigreturn"})

TOP_KEYS = ("version", "default", "rules", "budgets")
RULE_KEYS = ("name", "syscalls", "class", "family", "addr", "port", "path", "direction", "target", "action", "errno")
BUDGET_KEYS = ("name", "class", "direction", "bytes", "action", "errno")
# The keys that make a rule depend on the call's arguments or fd.
CONDITION_KEYS = ("class", "family", "addr", "port", "path", "direction", "target")
# The calls a `target: supervisor` rule can guard: every way a program can
# aim a signal at superv (kill to its pid, its process group or everyone;
# a thread of it; a pidfd of it; F_SETOWN for SIGIO/SIGURG), and the opens
# of its /proc/PID files (mem, fd/N, environ...).
GUARDED = frozenset(s.name for s in syscalls.ON_DEMAND) | {"fcntl"} | GROUPS["@file"]

_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SIZE = re.compile(r"\s*(\d+)\s*([a-zA-Z]*)\s*")


class PolicyError(Exception):
    """A mistake in a policy file, where it is (1-based line and column)."""

    def __init__(self, source: str, line: int, column: int, message: str):
        super().__init__(f"{source}:{line}:{column}: {message}")
        self.source, self.line, self.column, self.message = source, line, column, message


@attrs.frozen
class AddrMatch:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    negated: bool


@attrs.frozen
class PathMatch:
    pattern: str
    regex: re.Pattern
    negated: bool


@attrs.frozen
class Rule:
    name: str | None
    line: int
    action: str
    errno: int | None  # for deny
    syscalls: frozenset[str] | None = None  # None: any traced call
    classes: frozenset[str] | None = None
    families: frozenset[str] | None = None
    addrs: tuple[AddrMatch, ...] = ()
    ports: tuple[tuple[int, int], ...] = ()
    paths: tuple[PathMatch, ...] = ()
    direction: str | None = None
    target: str | None = None  # "supervisor": the call would signal superv

    @property
    def label(self) -> str:
        return self.name or f"rule at line {self.line}"

    @property
    def unconditional(self) -> bool:
        """Matches on the syscall alone: the kernel can decide it."""
        return not (self.classes or self.families or self.addrs or self.ports or self.paths or self.direction
                    or self.target)


@attrs.frozen
class Budget:
    name: str | None
    line: int
    fd_class: str | None
    direction: str
    limit: int  # bytes
    action: str
    errno: int | None

    @property
    def label(self) -> str:
        return self.name or f"budget at line {self.line}"


@attrs.frozen
class Policy:
    source: str
    version: int
    default: str
    rules: tuple[Rule, ...]
    budgets: tuple[Budget, ...]


@attrs.frozen
class CallFacts:
    """What the supervisor knows of one call when it decides."""

    syscall: str
    fd_class: str | None = None
    family: str | None = None  # a socket detail: tcp, udp6, unix-stream...
    address: str | None = None  # the call's address if it has one, else the fd's remote end
    port: int | None = None
    path: str | None = None  # absolute
    # send | recv; for open calls, send when the file is opened for writing
    # (O_WRONLY, O_RDWR, O_CREAT or O_TRUNC)
    direction: str | None = None
    at_supervisor: bool = False  # a signal call that would reach superv


@attrs.frozen
class Decision:
    action: str
    rule: Rule | None  # None: the policy's default
    errno: int | None

    @property
    def label(self) -> str:
        return self.rule.label if self.rule is not None else "default"


# -- deciding ----------------------------------------------------------------------


def decide(policy: Policy, call: CallFacts) -> Decision:
    """The first rule that matches wins, `target: supervisor` rules before
    all others (the kernel applies them first); a call no rule matches gets
    the default."""
    for rule in guards(policy) + tuple(r for r in policy.rules if r.target is None):
        if matches(rule, call):
            return Decision(rule.action, rule, rule.errno)
    return Decision(policy.default, None, errno_module.EPERM if policy.default == "deny" else None)


def matches(rule: Rule, call: CallFacts) -> bool:
    if rule.syscalls is not None and call.syscall not in rule.syscalls:
        return False
    if rule.target is not None and not call.at_supervisor:
        return False
    if rule.syscalls is None and call.syscall not in TRACED:
        return False
    if rule.classes is not None and call.fd_class not in rule.classes:
        return False
    if rule.families is not None and not _family_matches(rule.families, call.family):
        return False
    if rule.direction is not None and call.direction != rule.direction:
        return False
    if rule.addrs and not _listed(rule.addrs, call.address, _in_network):
        return False
    if rule.ports and (call.port is None or not any(lo <= call.port <= hi for lo, hi in rule.ports)):
        return False
    if rule.paths and not _listed(rule.paths, call.path, lambda m, p: bool(m.regex.fullmatch(p))):
        return False
    return True


def _family_matches(families: frozenset[str], family: str | None) -> bool:
    if family is None:
        return False
    return family in families or ("unix" in families and family.startswith("unix-"))


def _listed(entries, value, hit) -> bool:
    """In a list with negations: in some plain entry (or there is none), and in no '!' entry."""
    if value is None:
        return False
    plain = [e for e in entries if not e.negated]
    if plain and not any(hit(e, value) for e in plain):
        return False
    return not any(hit(e, value) for e in entries if e.negated)


def _in_network(match: AddrMatch, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    # ::ffff:10.0.0.1 from an IPv6 socket reaches 10.0.0.1: IPv4 rules apply to it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip in match.network


# -- what the kernel can decide -----------------------------------------------------


@attrs.frozen
class KernelRule:
    syscall: str
    action: str  # deny | kill
    errno: int | None
    rule: Rule


def kernel_plan(policy: Policy) -> tuple[tuple[KernelRule, ...], tuple[Rule, ...]]:
    """(what goes into the BPF filter, the rules the supervisor applies).

    A syscall goes into the filter when the first rule that could match it
    denies or kills it outright: no earlier rule can then apply to it."""
    in_kernel: list[KernelRule] = []
    in_supervisor: list[Rule] = []
    decided: set[str] = set()  # syscalls an earlier rule may match
    for rule in policy.rules:
        if rule.target is not None:
            continue  # guards: see filter.build
        names = rule.syscalls if rule.syscalls is not None else TRACED
        compiled = set()
        if rule.unconditional and rule.action in ("deny", "kill"):
            compiled = names - decided - LAUNCHER_TRACED
            in_kernel.extend(KernelRule(name, rule.action, rule.errno, rule) for name in sorted(compiled))
        if names - compiled:
            in_supervisor.append(rule)
        decided |= names
    return tuple(in_kernel), tuple(in_supervisor)


def guards(policy: Policy) -> tuple[Rule, ...]:
    """The `target: supervisor` rules.  filter.build compiles them into the
    kernel's filter (the pid arguments compared with superv's); only tkill
    and a per-thread pidfd_open, which name one of superv's threads, are
    decided by the supervisor."""
    return tuple(r for r in policy.rules if r.target is not None)


def traced_on_demand(policy: Policy) -> frozenset[str]:
    """The calls superv traces only for this policy: the path changes
    (unlink, rename, mkdir...) its rules name, but for those the kernel's
    filter denies outright."""
    named = frozenset().union(*(rule.syscalls for rule in policy.rules if rule.syscalls is not None))
    in_kernel = {k.syscall for k in kernel_plan(policy)[0]}
    return (named & PATH_CHANGES) - in_kernel


def leaves_alone(policy: Policy, syscall: str) -> bool:
    """No rule names this call and the default allows it: each such call is
    the default's, whatever its arguments."""
    if policy.default != "allow":
        return False
    return not any(syscall in (rule.syscalls if rule.syscalls is not None else TRACED) for rule in policy.rules)


def rule_index(policy: Policy, decision: Decision) -> int:
    """0 for the default, else the deciding rule's place in the file + 1."""
    return 0 if decision.rule is None else policy.rules.index(decision.rule) + 1


def _reads_path(rule: Rule, syscall: str) -> bool:
    """The rule looks at the file this call names (a guard: whether it is superv's /proc/PID)."""
    if rule.syscalls is not None and syscall not in rule.syscalls:
        return False
    return bool(rule.paths) or (rule.target is not None and syscall in OPEN_CHECKED | PATH_CHANGES)


def reads_path(policy: Policy, syscall: str) -> bool:
    """Some rule looks at the path this call passes."""
    return any(_reads_path(rule, syscall) for rule in policy.rules)


def path_matters(policy: Policy, call: CallFacts) -> bool:
    """Could the call's path change its decision?  Only if a rule that reads
    the path would match the call's other facts before a rule that does
    not read it decides the call."""
    for rule in guards(policy) + tuple(r for r in policy.rules if r.target is None):
        if _reads_path(rule, call.syscall):
            if matches(attrs.evolve(rule, paths=(), target=None), call):
                return True
        elif matches(rule, call):
            return False
    return False


def reads_address(policy: Policy, syscall: str) -> bool:
    """Some rule looks at the address this call passes."""
    return any(
        (rule.addrs or rule.ports) and (rule.syscalls is None or syscall in rule.syscalls) for rule in policy.rules
    )


# Execs whose path is decided on a copy, and whose new image is checked
# against the decision before it makes a traced call (killed on a mismatch).
EXEC_CHECKED = frozenset({"execve", "execveat"})
# Opens whose path is walked and decided by the supervisor, which then opens
# that very file for the program (pathwalk).
OPEN_CHECKED = OPENS
# Sends whose address the data path copies once and sends to itself.
ADDRESS_IN_MESSAGE = frozenset({"sendto", "sendmsg", "sendmmsg"})
# Every call whose path a rule can decide: the socket file a unix connect,
# send or bind names is found as an open's file is (bind: then checked).
PATH_CHECKED = EXEC_CHECKED | OPEN_CHECKED | PATH_CHANGES | {"connect", "bind"} | ADDRESS_IN_MESSAGE


def address_and_port(endpoint: str | None) -> tuple[str | None, int | None]:
    """'1.2.3.4:80' or '[::1]:80' (classify's spelling) -> ('1.2.3.4', 80); else (None, None)."""
    if not endpoint:
        return None, None
    m = re.fullmatch(r"\[([^\]%]+)(?:%[^\]]*)?\]:(\d+)|([\d.]+):(\d+)", endpoint)
    if not m:
        return None, None
    return (m[1], int(m[2])) if m[1] else (m[3], int(m[4]))


# -- parsing -------------------------------------------------------------------------


def load(path: str) -> Policy:
    with open(path, encoding="utf-8") as f:
        return parse(f.read(), path)


def parse(text: str, source: str = "<policy>") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = e.problem or e.context
        if "'@'" in str(problem):
            problem += ' (a group name needs quotes: "@net")'
        raise PolicyError(source, line, column, f"not valid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise PolicyError(source, 1, 1, f"not valid YAML: {e}") from None
    return _Reader(source).policy(root)


def parse_size(text: str) -> int | None:
    """'10MiB' -> 10485760; None without a unit or with an unknown one."""
    m = _SIZE.fullmatch(text)
    if not m or m[2].lower() not in _UNITS:
        return None
    return int(m[1]) * _UNITS[m[2].lower()]


class _Reader:
    """Walks the YAML node tree, which keeps each value's position."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, node: yaml.Node, message: str) -> PolicyError:
        return PolicyError(self.source, node.start_mark.line + 1, node.start_mark.column + 1, message)

    # -- the document

    def policy(self, root: yaml.Node | None) -> Policy:
        if root is None:
            raise PolicyError(self.source, 1, 1, "empty policy: expected a mapping with `version: 1`")
        top = self.mapping(root, TOP_KEYS, "the policy")
        if "version" not in top:
            raise self.fail(root, "missing `version: 1`")
        version = self.integer(top["version"][1])
        if version != 1:
            raise self.fail(top["version"][1], f"unknown version {version}: this superv reads version 1")
        default = self.choice(top["default"][1], ACTIONS, "action") if "default" in top else "allow"
        rules: list[Rule] = []
        first_line: dict[str, int] = {}
        for node in self.sequence(top["rules"][1], "rules") if "rules" in top else ():
            rule = self.rule(node, first_line)
            rules.append(rule)
            if rule.name is not None:
                first_line[rule.name] = rule.line
        budgets = (
            tuple(self.budget(n) for n in self.sequence(top["budgets"][1], "budgets")) if "budgets" in top else ()
        )
        return Policy(self.source, version, default, tuple(rules), budgets)

    def rule(self, node: yaml.Node, first_line: dict[str, int]) -> Rule:
        keys = self.mapping(node, RULE_KEYS, "a rule")
        if "action" not in keys:
            raise self.fail(node, "a rule needs an `action`: " + " | ".join(ACTIONS))
        action = self.choice(keys["action"][1], ACTIONS, "action")
        name = self.text(keys["name"][1]) if "name" in keys else None
        if name in first_line:
            raise self.fail(keys["name"][1], f"duplicate rule name {name!r} (first at line {first_line[name]})")
        names = self.syscall_names(keys["syscalls"][1]) if "syscalls" in keys else None
        fields = dict(
            classes=self.choices(keys["class"][1], CLASSES, "class") if "class" in keys else None,
            families=self.choices(keys["family"][1], FAMILIES, "family") if "family" in keys else None,
            addrs=tuple(self.address(n) for n in self.items(keys["addr"][1])) if "addr" in keys else (),
            ports=tuple(self.port_range(n) for n in self.items(keys["port"][1])) if "port" in keys else (),
            paths=tuple(self.path(n) for n in self.items(keys["path"][1])) if "path" in keys else (),
            direction=self.choice(keys["direction"][1], DIRECTIONS, "direction") if "direction" in keys else None,
        )
        conditions = [k for k in CONDITION_KEYS if k in keys]
        if "target" in keys:
            fields["target"] = self.choice(keys["target"][1], ("supervisor",), "target")
            if names is None or not names <= GUARDED:
                where = keys["syscalls"][1] if "syscalls" in keys else keys["target"][0]
                signals = ", ".join(sorted(GUARDED - GROUPS["@file"]))
                raise self.fail(where, f"`target: supervisor` guards {signals} and the @file calls: list the ones "
                                "to guard in `syscalls`")
            if conditions != ["target"] or action not in ("deny", "kill"):
                raise self.fail(keys["target"][0], "`target: supervisor` goes alone, with action deny or kill")
        elif conditions and names is not None:
            unseen = sorted(names - TRACED - PATH_CHANGES)
            if unseen:
                raise self.fail(
                    keys[conditions[0]][0],
                    f"`{conditions[0]}` needs calls the supervisor sees; {', '.join(unseen)} "
                    "can only be allowed, denied or killed outright",
                )
        if names is not None and not conditions and action in ("deny", "kill") and names & LAUNCHER_UNTRACED:
            raise self.fail(
                keys["syscalls"][1],
                f"denying {', '.join(sorted(names & LAUNCHER_UNTRACED))} outright would stop superv's launcher",
            )
        errno = self.errno(keys, action, default_eacces="path" in keys)
        return Rule(name, node.start_mark.line + 1, action, errno, names, **fields)

    def budget(self, node: yaml.Node) -> Budget:
        keys = self.mapping(node, BUDGET_KEYS, "a budget")
        for required in ("direction", "bytes", "action"):
            if required not in keys:
                raise self.fail(node, f"a budget needs `{required}`")
        action = self.choice(keys["action"][1], ("log", "deny", "kill"), "budget action")
        size_node = keys["bytes"][1]
        size_text = self.text(size_node)
        limit = parse_size(size_text)
        if limit is None:
            raise self.fail(size_node, f"`bytes: {size_text}` needs a unit: one of {', '.join(_UNITS)} (e.g. 10MiB)")
        return Budget(
            self.text(keys["name"][1]) if "name" in keys else None,
            node.start_mark.line + 1,
            self.choice(keys["class"][1], CLASSES, "class") if "class" in keys else None,
            self.choice(keys["direction"][1], DIRECTIONS, "direction"),
            limit,
            action,
            self.errno(keys, action, default_eacces=False),
        )

    # -- values

    def mapping(self, node: yaml.Node, allowed: tuple[str, ...], what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping of {', '.join(allowed)}")
        keys: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.text(key_node)
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else f"; expected one of {', '.join(allowed)}"
                raise self.fail(key_node, f"unknown key `{key}` in {what}{hint}")
            if key in keys:
                raise self.fail(key_node, f"`{key}` given twice in {what}")
            keys[key] = (key_node, value_node)
        return keys

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"`{what}` must be a list")
        return node.value

    def items(self, node: yaml.Node) -> list[yaml.Node]:
        """A list, or one value standing for a list of one.  Never empty: an
        empty list would silently mean "no condition"."""
        if isinstance(node, yaml.SequenceNode):
            if not node.value:
                raise self.fail(node, "empty list: leave the key out to match anything")
            return node.value
        return [node]

    def text(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.fail(node, "expected a single value")
        return str(node.value)

    def integer(self, node: yaml.Node) -> int:
        value = self.text(node)
        try:
            if node.tag == "tag:yaml.org,2002:int":
                return yaml.SafeLoader("").construct_yaml_int(node)
        except ValueError:
            pass
        raise self.fail(node, f"expected a whole number, not {value!r}")

    def choice(self, node: yaml.Node, allowed: tuple[str, ...], what: str) -> str:
        value = self.text(node)
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise self.fail(node, f"unknown {what} `{value}`: expected {' | '.join(allowed)}{hint}")
        return value

    def choices(self, node: yaml.Node, allowed: tuple[str, ...], what: str) -> frozenset[str]:
        return frozenset(self.choice(n, allowed, what) for n in self.items(node))

    def syscall_names(self, node: yaml.Node) -> frozenset[str]:
        names: set[str] = set()
        for item in self.items(node):
            name = self.text(item)
            if name.startswith("@"):
                if name not in GROUPS:
                    raise self.fail(item, f"unknown syscall group `{name}`: expected one of {', '.join(GROUPS)}")
                names |= GROUPS[name]
            elif name in TRACED or pyseccomp.resolve_syscall(0, name) >= 0:
                names.add(name)
            else:
                close = difflib.get_close_matches(name, sorted(TRACED), n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                raise self.fail(item, f"unknown syscall `{name}`{hint}")
        return frozenset(names)

    def address(self, node: yaml.Node) -> AddrMatch:
        value = self.text(node).strip()
        negated = value.startswith("!")
        text = value[1:].strip() if negated else value
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as e:
            if "host bits set" in str(e):
                fixed = ipaddress.ip_network(text, strict=False)
                raise self.fail(node, f"bad CIDR `{text}`: host bits set (did you mean {fixed}?)") from None
            raise self.fail(node, f"bad CIDR `{text}`: expected an address or address/prefix, "
                            "like 127.0.0.0/8 or ::1") from None
        return AddrMatch(network, negated)

    def port_range(self, node: yaml.Node) -> tuple[int, int]:
        value = self.text(node).strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", value)
        if not m:
            raise self.fail(node, f"bad port `{value}`: expected a number or a range like 8000-8100")
        lo, hi = int(m[1]), int(m[2] or m[1])
        for port in (lo, hi):
            if port > 65535:
                raise self.fail(node, f"port {port} out of range 0-65535")
        if lo > hi:
            raise self.fail(node, f"empty port range `{value}`: {lo} > {hi}")
        return lo, hi

    def path(self, node: yaml.Node) -> PathMatch:
        value = self.text(node).strip()
        negated = value.startswith("!")
        pattern = value[1:].strip() if negated else value
        if not pattern.startswith(("/", "./")):
            raise self.fail(node, f"path pattern `{pattern}` must start with / (absolute) or ./ (the working "
                            "directory superv was started in)")
        return PathMatch(pattern, glob_regex(pattern), negated)

    def errno(self, keys: dict, action: str, default_eacces: bool) -> int | None:
        if "errno" in keys:
            node = keys["errno"][1]
            if action != "deny":
                raise self.fail(keys["errno"][0], f"`errno` only goes with `action: deny`, not {action}")
            name = self.text(node)
            value = getattr(errno_module, name, None) if name.isupper() else None
            if not isinstance(value, int):
                close = difflib.get_close_matches(name.upper(), errno_module.errorcode.values(), n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                raise self.fail(node, f"unknown errno name `{name}`{hint}")
            return value
        if action == "deny":
            return errno_module.EACCES if default_eacces else errno_module.EPERM
        return None


def with_working_directory(policy: Policy, cwd: str) -> Policy:
    """The policy with its ./ path patterns made absolute under cwd."""

    def resolve(m: PathMatch) -> PathMatch:
        if not m.pattern.startswith("./"):
            return m
        pattern = cwd.rstrip("/") + m.pattern[1:]
        return PathMatch(pattern, glob_regex(pattern), m.negated)

    rules = tuple(attrs.evolve(r, paths=tuple(resolve(m) for m in r.paths)) for r in policy.rules)
    return attrs.evolve(policy, rules=rules)


def glob_regex(pattern: str) -> re.Pattern:
    """`**` spans directories, `*` and `?` stay within one; [...] and [!...] as in a shell."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and pattern.find("]", i + 2) > 0:
            end = pattern.find("]", i + 2)
            members = pattern[i + 1 : end]
            if members.startswith("!"):
                members = "^" + members[1:]
            out.append("[" + members.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


# -- showing -------------------------------------------------------------------------


def describe(policy: Policy) -> str:
    """What `superv policy show` prints: what goes into the kernel, what stays
    in the supervisor, the budgets and the default."""
    in_kernel, in_supervisor = kernel_plan(policy)
    lines = [f"{policy.source}: version {policy.version}, {summary(policy)}"]
    lines.append("In the kernel (compiled into the BPF filter; no cost at run time):")
    lines += [f"  {k.syscall:<20} {_action_text(k.action, k.errno):<22} {k.rule.label}" for k in in_kernel] or ["  nothing"]
    if guards(policy):
        lines.append("Guarding superv (in the kernel's filter, before every other rule):")
        lines += [f"  {r.label}: {_action_text(r.action, r.errno)} ({', '.join(sorted(r.syscalls))} aimed at superv)"
                  for r in guards(policy)]
    lines.append("In the supervisor (first match wins, in this order):")
    lines += [f"  {r.label}: {_action_text(r.action, r.errno)} {_conditions_text(r)}" for r in in_supervisor] or ["  nothing"]
    if policy.budgets:
        lines.append("Budgets (bytes moved per run):")
        for b in policy.budgets:
            what = f"{b.fd_class or 'any class'} {b.direction}"
            lines.append(f"  {b.label}: {what} over {b.limit} bytes -> "
                         f"{_action_text(b.action, b.errno)}")
    lines.append(f"Traced calls no rule matches: {policy.default}")
    return "\n".join(lines)


def summary(policy: Policy) -> str:
    """'3 rules, 1 budget'"""
    rules, budgets = len(policy.rules), len(policy.budgets)
    return f"{rules} rule{'' if rules == 1 else 's'}, {budgets} budget{'' if budgets == 1 else 's'}"


def _action_text(action: str, errno: int | None) -> str:
    return f"deny {errno_module.errorcode.get(errno, errno)}" if action == "deny" else action


def _conditions_text(rule: Rule) -> str:
    parts = [", ".join(sorted(rule.syscalls)) if rule.syscalls is not None else "any traced call"]
    if rule.classes:
        parts.append("class " + ",".join(sorted(rule.classes)))
    if rule.families:
        parts.append("family " + ",".join(sorted(rule.families)))
    if rule.direction:
        parts.append("direction " + rule.direction)
    if rule.addrs:
        parts.append("addr " + ",".join(("!" if a.negated else "") + str(a.network) for a in rule.addrs))
    if rule.ports:
        parts.append("port " + ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in rule.ports))
    if rule.paths:
        parts.append("path " + ",".join(("!" if p.negated else "") + p.pattern for p in rule.paths))
    return "(" + "; ".join(parts) + ")"
