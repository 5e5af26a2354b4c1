"""Seat policy as data: groups of users and workstations, the rules on each, idle reclaim.

Pure, like the arbiter: no I/O, no clock, no logging. The `[policy]` part of the config is
parsed here (`parse`, errors name the key) into a frozen `Policy` value; the arbiter holds one
and asks it, for each grant, whether a rule forbids it (`Tally.refusal`). A reload replaces
the value; sessions already granted are never ended by a new policy (an admin sees what now
breaks a rule with `seatctl policy check`).

Membership: a holder belongs to the FIRST group, in the order of the config file, that names
its user code, matches its hostname (shell patterns, case-insensitive) or holds its IP address;
a holder no group names belongs to no group (the rules then are only the cap and max_per_user).

Rules, checked in this order, each naming itself in the refusal (`Rule`):
1. `exclude = true`: the group takes no seat at all (never worth waiting for);
2. `max_per_user = N`: one user code holds at most N seats (0: unlimited);
3. `max = N`: the group never holds more than N seats;
4. `reserve = N`: N seats only this group may take. A grant to anyone else must leave at least
   as many free seats (under the cap) as the other groups' reservations not in use.
`priority = N` orders the wait queue (higher first, first come first served within one).

Invariants (each with a test): the cap is never exceeded by a grant; a grant never leaves fewer
free seats than the unused reservations; a group's `max` and `max_per_user` are never exceeded
by a grant. A reload that lowers a bound under the live count evicts no one; grants are refused
until the count falls under it.
"""

from __future__ import annotations

import enum
import fnmatch
import ipaddress
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from seatclient.contract import Reason

from seatd.errors import ConfigError, PolicyExcluded, PolicyRefused
from seatd.model import Holder

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Bounds for each group's numbers and the idle timings (seconds).
MAX_GROUPS = 1000
MAX_SEATS = 100_000
PRIORITY_RANGE = (-1000, 1000)
IDLE_RECLAIM_RANGE = (1.0, 7 * 86400.0)
IDLE_WARN_RANGE = (0.0, 3600.0)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$")
_UNIT = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1.0}

# Who idle reclaim is journaled as, on an eviction.
POLICY_ACTOR = "policy"


class TakeoverPolicy(enum.Enum):
    """Who may take a seat over at capacity by evicting a live session."""

    ANYONE = "anyone"
    SAME_USER = "same-user"
    ADMIN_ONLY = "admin-only"


class Rule(enum.Enum):
    """The rule that decided a refusal; its value is the config key that states it."""

    EXCLUDE = "exclude"
    PER_USER = "max_per_user"
    MAX = "max"
    RESERVE = "reserve"

    @property
    def reason(self) -> str:
        return _REASON[self]


_REASON = {
    Rule.EXCLUDE: Reason.POLICY_EXCLUDED,
    Rule.PER_USER: Reason.POLICY_PER_USER,
    Rule.MAX: Reason.POLICY_MAX,
    Rule.RESERVE: Reason.POLICY_RESERVED,
}


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    users: frozenset[str] = frozenset()
    # Shell patterns (fnmatch), lower-cased: hostnames are case-insensitive.
    hosts: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()
    reserve: int = 0
    max: int | None = None
    exclude: bool = False
    priority: int = 0

    def matches(self, holder: Holder, address: _Address | None = None) -> bool:
        """Whether the holder is a member; `address`: its IP, parsed once by the caller."""
        if holder.user_code in self.users:
            return True
        if self.hosts and holder.hostname:
            host = holder.hostname.lower()
            if any(fnmatch.fnmatchcase(host, pattern) for pattern in self.hosts):
                return True
        if self.networks:
            address = address if address is not None else _address(holder.ip)
            if address is not None and any(address in net for net in self.networks):
                return True
        return False

    @property
    def rules(self) -> int:
        """How many rules this group states (for `policy show` and the bench)."""
        return (self.reserve > 0) + (self.max is not None) + self.exclude + (self.priority != 0)


@dataclass(frozen=True, slots=True)
class IdleConfig:
    # Reclaim a seat idle this long (seconds); 0 turns idle reclaim off (the default).
    reclaim_after: float = 0.0
    # Warn the workstation this long before the eviction.
    warn_before: float = 120.0
    # Reclaim only when someone waits for a seat (otherwise idle seats are freed anyway).
    only_when_waiting: bool = True

    @property
    def enabled(self) -> bool:
        return self.reclaim_after > 0


@dataclass(frozen=True)
class Policy:
    takeover: TakeoverPolicy = TakeoverPolicy.ANYONE
    # Seats one user code may hold at once; 0 means unlimited.
    max_per_user: int = 0
    groups: tuple[Group, ...] = ()
    idle: IdleConfig = field(default_factory=IdleConfig)

    def __post_init__(self) -> None:
        # The holder -> group answers so far (not a field: not part of the value): a site
        # has a bounded set of workstations, and a grant then costs one dict lookup, not a
        # pattern match per group.
        object.__setattr__(self, "_memo", {})
        object.__setattr__(self, "_reserving", tuple(g for g in self.groups if g.reserve > 0))

    def group_of(self, holder: Holder) -> Group | None:
        """The first group (config order) the holder belongs to, or None."""
        if not self.groups:
            return None
        key = (holder.user_code, holder.hostname, holder.ip)
        memo: dict[tuple[str, str, str], Group | None] = self._memo  # type: ignore[attr-defined]
        try:
            return memo[key]
        except KeyError:
            pass
        address = _address(holder.ip)
        found = next((g for g in self.groups if g.matches(holder, address)), None)
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = found
        return found

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    def priority_of(self, holder: Holder) -> int:
        group = self.group_of(holder)
        return group.priority if group is not None else 0

    @property
    def rules(self) -> int:
        return sum(g.rules for g in self.groups) + (self.max_per_user > 0) + self.idle.enabled

    @property
    def reserving(self) -> tuple[Group, ...]:
        """The groups with a reservation (computed once: asked on every grant)."""
        found: tuple[Group, ...] = self._reserving  # type: ignore[attr-defined]
        return found


# Distinct (user, host, ip) answers remembered: far more workstations than any site has.
_MEMO_LIMIT = 65_536


def _address(ip: str) -> _Address | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# Shared empty values for the common case of a grant that frees no seat (never mutated).
_NONE: dict[str, tuple[Group, int]] = {}
_NOBODY: Counter[str] = Counter()


class Tally:
    """Live seats counted per group and per user code under one policy, kept by the arbiter
    as it grants and ends sessions, with the reserved seats not in use kept as a running
    total: checking a grant costs O(1), whatever the number of groups and sessions."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.by_group: Counter[str] = Counter()
        self.by_user: Counter[str] = Counter()
        # Seats the groups have reserved and do not use: sum of max(0, reserve - held).
        self.unused = sum(g.reserve for g in policy.reserving)

    def add(self, group: Group | None, user_code: str) -> None:
        if group is not None:
            held = self.by_group[group.name]
            if held < group.reserve:
                self.unused -= 1
            self.by_group[group.name] = held + 1
        self.by_user[user_code] += 1

    def remove(self, group: Group | None, user_code: str) -> None:
        if group is not None:
            held = self.by_group[group.name] - 1
            if held < group.reserve:
                self.unused += 1
            if held:
                self.by_group[group.name] = held
            else:
                del self.by_group[group.name]
        held = self.by_user[user_code] - 1
        if held:
            self.by_user[user_code] = held
        else:
            del self.by_user[user_code]

    def refusal(
        self,
        holder: Holder,
        *,
        cap: int | None,
        in_use: int,
        freed: Iterable[tuple[Group | None, str]] = (),
    ) -> PolicyRefused | None:
        """The rule that forbids granting a seat to `holder` now, or None. `freed`: sessions
        (group, user code) ended by the same decision (a takeover's victim)."""
        policy = self.policy
        group = policy.group_of(holder)
        if group is None and not policy.max_per_user and not policy.reserving:
            return None
        # Nearly every grant frees nobody: the sessions a takeover ends are counted apart.
        gone_groups: dict[str, tuple[Group, int]] = _NONE
        gone_users: Counter[str] = _NOBODY
        if freed:
            gone_groups, gone_users = {}, Counter()
            for g, user in freed:
                if g is not None:
                    gone_groups[g.name] = (g, gone_groups.get(g.name, (g, 0))[1] + 1)
                gone_users[user] += 1

        def held(g: Group) -> int:
            gone = gone_groups.get(g.name)
            return self.by_group[g.name] - (gone[1] if gone else 0)

        if group is not None and group.exclude:
            return PolicyExcluded(
                Rule.EXCLUDE.reason,
                group.name,
                f"group {group.name} may not take a seat on this server (exclude = true)",
            )
        if policy.max_per_user:
            mine = self.by_user[holder.user_code] - gone_users[holder.user_code]
            if mine >= policy.max_per_user:
                return PolicyRefused(
                    Rule.PER_USER.value,
                    Rule.PER_USER.reason,
                    group.name if group is not None else "",
                    f"user {holder.user_code} already holds {_seats(mine)}, the most one "
                    f"person may hold (max_per_user = {policy.max_per_user}): close one first",
                )
        if group is not None and group.max is not None and held(group) >= group.max:
            return PolicyRefused(
                Rule.MAX.value,
                Rule.MAX.reason,
                group.name,
                f"group {group.name} is at its max of {group.max}",
            )
        if cap is None or not policy.reserving:
            return None
        free = cap - in_use + sum(gone_users.values())
        if free <= 0:
            return None  # the cap refuses it (SEATS_EXHAUSTED), with the sessions to offer
        # Unused reservations once the freed sessions are gone, less the holder's own group's.
        unused = self.unused
        for g, k in gone_groups.values():
            now_held = self.by_group[g.name]
            unused += max(0, g.reserve - (now_held - k)) - max(0, g.reserve - now_held)
        if group is not None:
            unused -= max(0, group.reserve - held(group))
        if free > unused:
            return None
        owed = [
            (g, max(0, g.reserve - held(g)))
            for g in policy.reserving
            if group is None or g.name != group.name
        ]
        holders = [(g, n) for g, n in owed if n]
        named = " and ".join(
            f"{_seats(n)} {'is' if n == 1 else 'are'} reserved for {g.name}" for g, n in holders
        )
        return PolicyRefused(
            Rule.RESERVE.value,
            Rule.RESERVE.reason,
            holders[0][0].name,
            f"{named}: the {_seats(free)} still free {'is' if free == 1 else 'are'} theirs",
        )


def _seats(n: int) -> str:
    return f"{n} seat" if n == 1 else f"{n} seats"


# -- the [policy] section --------------------------------------------------------------------


def duration(name: str, value: Any) -> float:
    """Seconds from a number or a string such as "90s", "30m", "1.5h"."""
    if isinstance(value, bool):
        raise ConfigError(f'{name}: expected a duration such as "30m", got {value!r}')
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT[match.group(2)]
    raise ConfigError(f'{name}: expected a duration such as "90s", "30m" or "1h", got {value!r}')


def _bounded(name: str, value: float, low: float, high: float) -> float:
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low:g} and {high:g}, got {value:g}")
    return value


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected a whole number, got {value!r}")
    return int(_bounded(name, value, low, high))


def _strings(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{name}: expected a list of non-empty strings, got {value!r}")
    return [v.strip() for v in value]


def _unknown(name: str, values: Mapping[str, Any], known: Iterable[str]) -> None:
    extra = sorted(set(values) - set(known))
    if extra:
        raise ConfigError(f"unknown key {name}.{extra[0]}; known: {', '.join(sorted(known))}")


_GROUP_KEYS = ("users", "hosts", "networks", "reserve", "max", "exclude", "priority")
_IDLE_KEYS = ("reclaim_after", "warn_before", "only_when_waiting")
_POLICY_KEYS = ("takeover", "max_per_user", "groups", "idle")


def _group(name: str, values: Any) -> Group:
    where = f"policy.groups.{name}"
    if not _NAME.match(name):
        raise ConfigError(
            f"{where}: a group name is letters, digits, '_', '.', '-' (at most 64), "
            "starting with a letter or digit"
        )
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a table ([{where}])")
    _unknown(where, values, _GROUP_KEYS)
    networks: list[Network] = []
    for text in _strings(f"{where}.networks", values.get("networks", [])):
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigError(
                f'{where}.networks: {text!r} is not an IP network such as "10.0.5.0/24"'
            ) from None
    users = frozenset(_strings(f"{where}.users", values.get("users", [])))
    hosts = tuple(h.lower() for h in _strings(f"{where}.hosts", values.get("hosts", [])))
    if not (users or hosts or networks):
        raise ConfigError(f"{where}: names no members: give users, hosts or networks")
    exclude = values.get("exclude", False)
    if not isinstance(exclude, bool):
        raise ConfigError(f"{where}.exclude: expected true or false, got {exclude!r}")
    group = Group(
        name=name,
        users=users,
        hosts=hosts,
        networks=tuple(networks),
        reserve=_whole(f"{where}.reserve", values.get("reserve", 0), 0, MAX_SEATS),
        max=(_whole(f"{where}.max", values["max"], 0, MAX_SEATS) if "max" in values else None),
        exclude=exclude,
        priority=_whole(f"{where}.priority", values.get("priority", 0), *PRIORITY_RANGE),
    )
    if group.exclude and (group.reserve or group.max is not None):
        raise ConfigError(f"{where}: an excluded group can have no reserve or max")
    if group.max is not None and group.reserve > group.max:
        raise ConfigError(
            f"{where}: reserve ({group.reserve}) is more than max ({group.max}): "
            "the group could never use its reservation"
        )
    return group


def _idle(values: Any) -> IdleConfig:
    if not isinstance(values, Mapping):
        raise ConfigError("policy.idle: expected a table ([policy.idle])")
    _unknown("policy.idle", values, _IDLE_KEYS)
    default = IdleConfig()
    reclaim = duration("policy.idle.reclaim_after", values.get("reclaim_after", 0))
    if reclaim:
        _bounded("policy.idle.reclaim_after", reclaim, *IDLE_RECLAIM_RANGE)
    warn = _bounded(
        "policy.idle.warn_before",
        duration("policy.idle.warn_before", values.get("warn_before", default.warn_before)),
        *IDLE_WARN_RANGE,
    )
    if reclaim and warn >= reclaim:
        raise ConfigError(
            f"policy.idle.warn_before ({warn:g} s) must be shorter than "
            f"policy.idle.reclaim_after ({reclaim:g} s)"
        )
    only = values.get("only_when_waiting", default.only_when_waiting)
    if not isinstance(only, bool):
        raise ConfigError(f"policy.idle.only_when_waiting: expected true or false, got {only!r}")
    return IdleConfig(reclaim, warn, only)


def parse(values: Mapping[str, Any]) -> Policy:
    """The `[policy]` table as a Policy; ConfigError names the key at fault."""
    _unknown("policy", values, _POLICY_KEYS)
    takeover = values.get("takeover", TakeoverPolicy.ANYONE.value)
    if isinstance(takeover, TakeoverPolicy):
        takeover = takeover.value
    try:
        takeover_policy = TakeoverPolicy(takeover)
    except ValueError:
        allowed = ", ".join(repr(p.value) for p in TakeoverPolicy)
        raise ConfigError(f"policy.takeover: expected one of {allowed}, got {takeover!r}") from None
    groups_table = values.get("groups", {})
    if not isinstance(groups_table, Mapping):
        raise ConfigError("policy.groups: expected tables such as [policy.groups.accounting]")
    if len(groups_table) > MAX_GROUPS:
        raise ConfigError(f"policy.groups: at most {MAX_GROUPS} groups")
    groups = tuple(_group(name, table) for name, table in groups_table.items())
    return Policy(
        takeover=takeover_policy,
        max_per_user=_whole("policy.max_per_user", values.get("max_per_user", 0), 0, MAX_SEATS),
        groups=groups,
        idle=_idle(values.get("idle", {})),
    )


def parse_text(text: str) -> Policy:
    """A policy from TOML text: a config file with a [policy] section, or the section's
    contents alone (`seatctl policy check FILE`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    table = data.get("policy", data)
    if not isinstance(table, Mapping):
        raise ConfigError("policy: expected a [policy] table")
    return parse(table)


def render(policy: Policy) -> list[str]:
    """The policy as TOML lines (the `[policy]` part of `seatd check-config`)."""
    lines = [
        "[policy]",
        f'takeover = "{policy.takeover.value}"',
        f"max_per_user = {policy.max_per_user}",
        "",
        "[policy.idle]",
        f"reclaim_after = {policy.idle.reclaim_after:g}",
        f"warn_before = {policy.idle.warn_before:g}",
        f"only_when_waiting = {str(policy.idle.only_when_waiting).lower()}",
        "",
    ]
    for g in policy.groups:
        lines.append(f"[policy.groups.{g.name}]")
        if g.users:
            lines.append(f"users = [{', '.join(_q(u) for u in sorted(g.users))}]")
        if g.hosts:
            lines.append(f"hosts = [{', '.join(_q(h) for h in g.hosts)}]")
        if g.networks:
            lines.append(f"networks = [{', '.join(_q(str(n)) for n in g.networks)}]")
        if g.reserve:
            lines.append(f"reserve = {g.reserve}")
        if g.max is not None:
            lines.append(f"max = {g.max}")
        if g.exclude:
            lines.append("exclude = true")
        if g.priority:
            lines.append(f"priority = {g.priority}")
        lines.append("")
    return lines


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
