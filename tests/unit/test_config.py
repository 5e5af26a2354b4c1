"""Configuration: defaults, file, flags, and bounds named by key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seatd import config
from seatd.arbiter import TakeoverPolicy
from seatd.errors import ConfigError


def test_defaults_follow_the_design() -> None:
    """With nothing set, the lease timings are DESIGN.md section 6's."""
    c = config.build({})
    assert (
        c.lease.ttl,
        c.lease.keepalive_interval,
        c.lease.reattach_grace,
        c.lease.restart_grace,
        c.reaper.tick,
    ) == (30, 10, 10, 30, 1)
    assert c.server.max_pending_requests > 3_000


def test_flags_override_the_file(tmp_path: Path) -> None:
    """A flag wins over the file, which wins over the default."""
    f = tmp_path / "seatd.toml"
    f.write_text('[lease]\nttl = 60\nkeepalive_interval = 20\n[policy]\ntakeover = "same-user"\n')
    c = config.load(f, {"lease": {"ttl": 50}})
    assert (c.lease.ttl, c.lease.keepalive_interval) == (50, 20)
    assert c.policy.takeover is TakeoverPolicy.SAME_USER


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"lease": {"ttl": 0}}, "lease.ttl"),
        ({"lease": {"ttl": "long"}}, "lease.ttl"),
        ({"lease": {"tll": 3}}, "lease.tll"),
        ({"leases": {}}, "[leases]"),
        ({"policy": {"takeover": "everyone"}}, "policy.takeover"),
        ({"dev": {"seats": 1.5}}, "dev.seats"),
        ({"lease": {"keepalive_interval": 20}}, "lease.keepalive_interval"),
    ],
)
def test_bad_values_name_the_key(overrides: dict[str, dict[str, object]], named: str) -> None:
    """Each bad setting is refused with a message naming its key."""
    with pytest.raises(ConfigError, match=re.escape(named)):
        config.build(overrides)


def test_invalid_toml_is_refused_with_the_file_name(tmp_path: Path) -> None:
    """A file that is not TOML is named in the error."""
    f = tmp_path / "bad.toml"
    f.write_text("[lease\nttl=")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        config.load(f, {})


def test_render_round_trips(tmp_path: Path) -> None:
    """The printed effective config loads back to the same config."""
    c = config.build({"lease": {"ttl": 40}, "server": {"admin_socket_mode": "0600"}})
    f = tmp_path / "out.toml"
    f.write_text(config.render(c))
    assert config.load(f, {}) == c


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:7117", True),
        ("localhost:7117", True),
        ("[::1]:7117", True),
        ("0.0.0.0:7117", False),
        ("192.168.1.10:7117", False),
        ("[::]:7117", False),
    ],
)
def test_plaintext_warning_is_for_non_loopback_addresses(address: str, loopback: bool) -> None:
    """Plaintext workstations are fine on loopback only; elsewhere the daemon warns."""
    from seatd.server import is_loopback

    assert is_loopback(address) is loopback


def test_remote_admin_requires_tls() -> None:
    """admin.listen without a certificate is refused: remote admin is TLS only."""
    with pytest.raises(ConfigError, match=r"admin\.listen needs"):
        config.build({"admin": {"listen": "0.0.0.0:7118"}})


def test_admin_identities_must_name_roles() -> None:
    """A certificate mapped to an unknown role is refused, naming the roles."""
    with pytest.raises(ConfigError, match="owner, buyer, admin, viewer"):
        config.build({"admin": {"identities": {"alice": "superuser"}}})


def test_log_lines_carry_their_syslog_priority(capsys: pytest.CaptureFixture[str]) -> None:
    """With the prefix on, a warning starts with <4> and an info line with <6>."""
    import structlog

    from seatd.log import LogConfig, configure

    configure(LogConfig(syslog_prefix="yes"))
    try:
        log = structlog.get_logger("seatd")
        log.warning("seat.test_warning", n=1)
        log.info("seat.test_info")
        lines = capsys.readouterr().err.splitlines()
    finally:
        structlog.reset_defaults()  # not bound to this test's captured stderr
    assert lines[0].startswith("<4>") and "event=seat.test_warning" in lines[0]
    assert lines[1].startswith("<6>")


def test_log_format_is_checked() -> None:
    """An unknown log format is refused, naming the allowed ones."""
    with pytest.raises(ConfigError, match="'keyvalue', 'json'"):
        config.build({"log": {"format": "xml"}})


def test_the_example_config_documents_every_setting_at_its_default(tmp_path: Path) -> None:
    """deploy/seatd.toml, every "# key = value" line uncommented, loads to the defaults, and
    lists every setting there is."""
    import dataclasses
    import re as regex

    example = Path(__file__).resolve().parents[2] / "deploy" / "seatd.toml"
    setting = regex.compile(r"^# ([a-z_]+ = .*?)(\s+#.*)?$")
    lines, seen, section = [], set(), ""
    for line in example.read_text().splitlines():
        if line.startswith("[") and "." not in line:
            section = line.strip("[]")
            lines.append(line)
        elif (m := setting.match(line)) and not line.startswith('# "'):
            key = m.group(1).split(" = ")[0]
            if f"{section}.{key}" not in seen:
                seen.add(f"{section}.{key}")
                lines.append(m.group(1).replace('["/etc/seatd/vendor.pub"]', "[]"))
    uncommented = tmp_path / "all.toml"
    uncommented.write_text("\n".join(lines) + "\n")
    assert config.load(uncommented, {}) == config.Config()
    everything = {
        f"{f.name}.{sub.name}"
        for f in dataclasses.fields(config.Config())
        for sub in dataclasses.fields(getattr(config.Config(), f.name))
    }
    assert seen == everything


def test_a_ttl_alone_derives_the_keepalive_and_the_reattach_grace() -> None:
    """`--lease-ttl 3` alone is a consistent lease: keepalive and reattach grace are TTL / 3."""
    c = config.build({"lease": {"ttl": 3}})
    assert (c.lease.keepalive_interval, c.lease.reattach_grace) == (1, 1)


def test_a_ttl_in_the_file_derives_the_keepalive_too(tmp_path: Path) -> None:
    """A TTL set in the config file, keepalive left unset, derives the keepalive from it."""
    f = tmp_path / "seatd.toml"
    f.write_text("[lease]\nttl = 6\n")
    assert config.load(f, {}).lease.keepalive_interval == 2


def test_derived_timings_stay_within_their_bounds() -> None:
    """A long TTL derives a keepalive no longer than its upper bound."""
    c = config.build({"lease": {"ttl": 3600}})
    assert c.lease.keepalive_interval == config.BOUNDS["lease.keepalive_interval"][1]


def test_an_explicit_keepalive_contradicting_the_ttl_is_refused(tmp_path: Path) -> None:
    """A keepalive set in the file that the TTL flag makes too long is refused, naming both."""
    f = tmp_path / "seatd.toml"
    f.write_text("[lease]\nkeepalive_interval = 10\n")
    named = r"lease\.keepalive_interval \(10 s\).*lease\.ttl \(3 s\)"
    with pytest.raises(ConfigError, match=named):
        config.load(f, {"lease": {"ttl": 3}})


def test_an_explicit_reattach_grace_contradicting_the_ttl_is_refused() -> None:
    """A reattach grace set beyond TTL + grace is refused, naming the key."""
    with pytest.raises(ConfigError, match=r"lease\.reattach_grace \(10 s\)"):
        config.build({"lease": {"ttl": 3, "reattach_grace": 10}})


def test_a_config_path_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    """An unreadable config file (here a directory) is a ConfigError saying who must read it."""
    with pytest.raises(ConfigError, match=r"cannot read the config file .*must be able to read"):
        config.load(tmp_path, {})
