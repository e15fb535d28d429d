"""Does this kernel have what superv needs?  Decided from what the kernel
says of itself, before anything is started."""

from __future__ import annotations

import re

# (feature, first Linux release with it, why superv needs it)
REQUIRED = (
    ("seccomp user notification (SECCOMP_RET_USER_NOTIF)", (5, 0), "the supervisor receives every traced call"),
    ("SECCOMP_USER_NOTIF_FLAG_CONTINUE", (5, 5), "lifecycle calls run in the kernel"),
    ("pidfd_getfd", (5, 6), "the supervisor works on the target's own files"),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", (5, 19), "signals must not lose or duplicate emulated bytes"),
)


def release_version(release: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def missing_features(release: str, actions_avail: str | None) -> list[str]:
    """Names of the required features this kernel lacks, oldest first."""
    missing = []
    if actions_avail is not None and "user_notif" not in actions_avail.split():
        missing.append(REQUIRED[0][0])
    version = release_version(release)
    for name, since, _ in REQUIRED:
        if version < since and name not in missing:
            missing.append(name)
    return missing


def refusal(release: str, missing: list[str]) -> str:
    """One line naming every missing feature, the release that brought it, and why it matters."""
    why = {name: (since, reason) for name, since, reason in REQUIRED}
    parts = [f"{name} (Linux {why[name][0][0]}.{why[name][0][1]}+: {why[name][1]})" for name in missing]
    return f"superv: this kernel ({release}) lacks {'; '.join(parts)}; superv cannot run here"


def check_running_kernel() -> str | None:
    """The refusal line for this machine, or None when it has everything."""
    import platform

    try:
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            actions = f.read()
    except OSError:
        actions = ""
    missing = missing_features(platform.release(), actions)
    return refusal(platform.release(), missing) if missing else None
