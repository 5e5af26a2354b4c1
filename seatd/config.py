"""One configuration, assembled from the components' own frozen dataclasses.

Each component keeps its settings and defaults next to its code (`LeaseTerms` in the
arbiter, `StoreConfig` in the store, ...). This module knows their bounds, reads the TOML
file (`tomllib`), applies command-line overrides and refuses any value out of bounds with a
message naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seatd import policy as policy_mod
from seatd.arbiter import LeaseTerms
from seatd.auth import ROLES, AdminConfig
from seatd.cloudsync import CloudConfig
from seatd.cluster.config import ClusterConfig
from seatd.errors import ConfigError
from seatd.licence.rules import LicenceConfig
from seatd.log import LEVELS, LogConfig
from seatd.metrics import MetricsConfig
from seatd.policy import Policy
from seatd.reaper import ReaperConfig
from seatd.repeats import RefusalConfig
from seatd.retention import JournalConfig
from seatd.server import ServerConfig, is_loopback
from seatd.store import StoreConfig
from seatd.waitqueue import QueueConfig
from seatd.web.config import WebConfig

DEFAULT_CONFIG_PATH = Path("/etc/seatd/seatd.toml")


@dataclass(frozen=True, slots=True)
class DevConfig:
    # A seat cap for development and tests only; 0 means none. Never use in production.
    seats: int = 0
    # Shift the daemon's wall clock by this many seconds, to test a clock set back.
    wall_clock_offset: float = 0.0


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    lease: LeaseTerms = field(default_factory=LeaseTerms)
    reaper: ReaperConfig = field(default_factory=ReaperConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    # The seat policy (takeover, groups and their rules, idle reclaim): `seatd.policy`.
    policy: Policy = field(default_factory=Policy)
    refusals: RefusalConfig = field(default_factory=RefusalConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    licence: LicenceConfig = field(default_factory=LicenceConfig)
    cloud: CloudConfig = field(default_factory=CloudConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    web: WebConfig = field(default_factory=WebConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    dev: DevConfig = field(default_factory=DevConfig)


# (low, high) inclusive, per "section.key".
BOUNDS: dict[str, tuple[float, float]] = {
    "server.max_pending_requests": (1_000, 1_000_000),
    "server.max_connections": (16, 1_000_000),
    "server.max_calls_per_peer": (0, 1_000_000),
    "server.handshake_timeout": (1.0, 300.0),
    "server.idle_timeout": (10.0, 86400.0),
    "server.admin_socket_mode": (0o600, 0o777),
    "lease.ttl": (1.0, 3600.0),
    "lease.keepalive_interval": (0.2, 600.0),
    "lease.grace": (0.0, 600.0),
    "lease.reattach_grace": (0.5, 3600.0),
    "lease.restart_grace": (0.0, 3600.0),
    "reaper.tick": (0.05, 60.0),
    "store.map_size": (1 << 20, 1 << 40),
    "store.reserve": (0.02, 0.5),
    "dev.seats": (0, 100_000),
    "queue.max_waiting": (0, 1_000_000),
    "queue.max_waiting_per_peer": (0, 1_000_000),
    "queue.max_held": (0, 1_000_000),
    "dev.wall_clock_offset": (-10 * 365 * 86400, 10 * 365 * 86400),
    "licence.grace_days": (0, 365),
    "licence.rollback_tolerance": (0.0, 86400.0),
    "licence.check_interval": (1.0, 3600.0),
    "journal.retention_days": (0, 36500),
    "journal.max_entries": (1_000, 100_000_000),
    "journal.check_interval": (1.0, 86400.0),
    "refusals.window": (1.0, 3600.0),
    "refusals.burst": (1, 10_000),
    "refusals.per_second": (0.01, 1000.0),
    "web.idle_timeout": (60.0, 86400.0),
    "web.max_age": (300.0, 7 * 86400.0),
    "web.max_logins": (1, 10_000),
    "web.console_link_ttl": (5.0, 600.0),
    "web.max_event_streams": (1, 1000),
    "cloud.interval": (10.0, 7 * 86400.0),
    "cloud.jitter": (0.0, 0.5),
    "cloud.retry": (1.0, 86400.0),
    "cloud.timeout": (1.0, 300.0),
    "cluster.lease_ttl": (2, 60),
    "cluster.max_txn_ops": (64, 1_000_000),
    "cluster.quota_bytes": (1 << 24, 1 << 43),
}


def _coerce(name: str, current: Any, value: Any) -> Any:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return value
    if isinstance(current, dict):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and v in ROLES for k, v in value.items()
        ):
            raise ConfigError(f"{name}: expected a table of names to roles ({', '.join(ROLES)})")
        return dict(value)
    if isinstance(current, tuple):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str | Path) for v in value):
            raise ConfigError(f"{name}: expected a list of paths, got {value!r}")
        return tuple(Path(v) for v in value)
    if isinstance(current, enum.Enum):
        kind = type(current)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(repr(p.value) for p in kind)
            raise ConfigError(f"{name}: expected one of {allowed}, got {value!r}") from None
    if isinstance(current, Path):
        if not isinstance(value, str | Path) or not str(value):
            raise ConfigError(f"{name}: expected a path, got {value!r}")
        return Path(value)
    if isinstance(current, int) and name.endswith("_mode"):
        try:
            return int(value, 8) if isinstance(value, str) else int(value)
        except ValueError:
            raise ConfigError(f'{name}: expected an octal mode such as "0660"') from None
    if isinstance(current, float | int):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        if isinstance(current, int) and not isinstance(current, bool) and value != int(value):
            raise ConfigError(f"{name}: expected a whole number, got {value!r}")
        return type(current)(value)
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{name}: cannot be set")


def build(overrides: Mapping[str, Mapping[str, Any]]) -> Config:
    """Apply `{section: {key: value}}` to the defaults, checking names, types and bounds."""
    config = Config()
    sections = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    for section, values in overrides.items():
        if section not in sections:
            raise ConfigError(f"unknown section [{section}]; known: {', '.join(sections)}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{section}] must be a table")
        if section == "policy":
            # Groups are named tables, not fixed keys: the policy parses itself.
            sections[section] = policy_mod.parse(values)
            continue
        current = sections[section]
        known = {f.name for f in dataclasses.fields(current)}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            name = f"{section}.{key}"
            if key not in known:
                raise ConfigError(f"unknown key {name}; known: {', '.join(sorted(known))}")
            coerced = _coerce(name, getattr(current, key), value)
            if name in CHOICES and coerced not in CHOICES[name]:
                allowed = ", ".join(repr(c) for c in CHOICES[name])
                raise ConfigError(f"{name}: expected one of {allowed}, got {value!r}")
            if name in BOUNDS:
                low, high = BOUNDS[name]
                if not low <= coerced <= high:
                    raise ConfigError(
                        f"{name}: must be between {low:g} and {high:g}, got {value!r}"
                    )
            changes[key] = coerced
        sections[section] = dataclasses.replace(current, **changes)
    config = _derive(Config(**sections), overrides)
    _check_together(config)
    return config


# Timings that follow another unless set explicitly: "section.key" -> (source key, factor).
# Their defaults are the factor times the source's default (keepalive 10 s for a 30 s TTL),
# so `--lease-ttl 3` alone gives a consistent lease instead of a refusal.
DERIVED: dict[str, tuple[str, float]] = {
    "lease.keepalive_interval": ("ttl", 1 / 3),
    "lease.reattach_grace": ("ttl", 1 / 3),
}


def _derive(config: Config, explicit: Mapping[str, Mapping[str, Any]]) -> Config:
    """Set each derived timing the file and flags left unset from its source, within bounds."""
    for name, (source, factor) in DERIVED.items():
        section, key = name.split(".")
        if key in explicit.get(section, {}):
            continue
        current = getattr(config, section)
        low, high = BOUNDS[name]
        value = min(max(getattr(current, source) * factor, low), high)
        config = dataclasses.replace(
            config, **{section: dataclasses.replace(current, **{key: value})}
        )
    return config


CHOICES = {
    "log.format": ("keyvalue", "json"),
    "log.level": tuple(LEVELS),
    "log.syslog_prefix": ("auto", "yes", "no"),
}


def _check_together(config: Config) -> None:
    config.cluster.check()
    admin = config.admin
    if admin.listen and not (admin.tls_cert and admin.tls_key):
        raise ConfigError(
            "admin.listen needs admin.tls_cert and admin.tls_key: remote "
            "administration is only served over TLS"
        )
    web = config.web
    if bool(web.tls_cert) != bool(web.tls_key):
        raise ConfigError("web.tls_cert and web.tls_key go together")
    if web.client_ca and not web.tls_cert:
        raise ConfigError("web.client_ca needs web.tls_cert and web.tls_key")
    host, _, port = web.listen.rpartition(":")
    if web.listen and not (host and port.isdigit()):
        raise ConfigError(
            f"web.listen: expected HOST:PORT such as 127.0.0.1:7118, got {web.listen!r}"
        )
    if web.listen and not web.tls_cert and not web.allow_plaintext and not is_loopback(web.listen):
        raise ConfigError(
            f"web.listen ({web.listen}) is reachable from other hosts without TLS: admin tokens "
            "and login cookies would cross the network in clear. Set web.tls_cert and "
            "web.tls_key, listen on 127.0.0.1, or set web.allow_plaintext = true if a TLS "
            "proxy on this host is in front of it"
        )
    server = config.server
    if bool(server.tls_cert) != bool(server.tls_key):
        raise ConfigError("server.tls_cert and server.tls_key go together")
    lease = config.lease
    if lease.keepalive_interval * 2 > lease.ttl:
        raise ConfigError(
            f"lease.keepalive_interval ({lease.keepalive_interval:g} s) must be at most half of "
            f"lease.ttl ({lease.ttl:g} s), so one lost ping never costs a seat; "
            "leave it unset to use a third of the TTL"
        )
    if lease.reattach_grace > lease.ttl + lease.grace:
        raise ConfigError(
            f"lease.reattach_grace ({lease.reattach_grace:g} s) must not exceed lease.ttl + "
            f"lease.grace ({lease.ttl + lease.grace:g} s); leave it unset to use a third of the TTL"
        )


def load(path: Path | None, overrides: Mapping[str, Mapping[str, Any]]) -> Config:
    """Defaults, then the TOML file (if any), then `overrides` (the command line)."""
    merged: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(
                f"cannot read the config file {path}: {exc.strerror or exc}; the daemon's "
                "user must be able to read it (e.g. owner root, group seatd-admin, mode 0640)"
            ) from None
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{section}: expected a [{section}] table")
            merged[section] = dict(values)
    for section, values in overrides.items():
        merged.setdefault(section, {}).update(values)
    return build(merged)


def render(config: Config) -> str:
    """The effective configuration as TOML."""
    lines: list[str] = []
    for f in dataclasses.fields(config):
        if f.name == "policy":
            lines.extend(policy_mod.render(config.policy))
            continue
        lines.append(f"[{f.name}]")
        for sub in dataclasses.fields(getattr(config, f.name)):
            value = getattr(getattr(config, f.name), sub.name)
            if isinstance(value, enum.Enum):
                value = value.value
            if isinstance(value, dict):
                inner = ", ".join(f"{k!r} = {v!r}" for k, v in value.items())
                lines.append(f"{sub.name} = {{{inner}}}".replace("'", '"'))
                continue
            if isinstance(value, tuple):
                lines.append(f"{sub.name} = [{', '.join(repr(str(v)) for v in value)}]")
                continue
            if sub.name.endswith("_mode"):
                lines.append(f'{sub.name} = "{value:04o}"')
            elif isinstance(value, bool):
                lines.append(f"{sub.name} = {str(value).lower()}")
            elif isinstance(value, str | Path):
                lines.append(f'{sub.name} = "{value}"')
            else:
                lines.append(f"{sub.name} = {value}")
        lines.append("")
    return "\n".join(lines)
