"""The seat policy the bench measures against no policy: 20 groups stating 50 rules, every
kind of membership (user codes, hostname patterns, networks), none refusing the bench's
own workstations, so both runs do the same acquires and releases."""

from __future__ import annotations

GROUPS = 20


def policy_toml() -> str:
    """A [policy] of 20 groups: each reserves one seat and has a max (40 rules), nine
    have a priority, plus max_per_user (50); the bench's loopback workstations fall in the
    last group."""
    lines = ["[policy]", "max_per_user = 100", ""]
    for i in range(GROUPS):
        lines.append(f"[policy.groups.g{i:02d}]")
        if i == GROUPS - 1:
            lines.append('networks = ["127.0.0.0/8", "::1/128"]')
        else:
            lines.append(f'users = ["U{i}A", "U{i}B", "U{i}C"]')
            lines.append(f'hosts = ["ws-{i}-*", "acc{i}.*"]')
            lines.append(f'networks = ["10.{i}.0.0/16"]')
        lines.append("reserve = 1")
        lines.append("max = 10000")
        if i % 2 and i < GROUPS - 1:
            lines.append(f"priority = {i}")
        lines.append("")
    return "\n".join(lines)
