"""`seatd`: the daemon's command line."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click
import structlog
import uvloop

from seatd import __version__, daemon, integrity
from seatd import config as config_mod
from seatd import store as store_mod
from seatd.clock import SystemClock
from seatd.errors import ConfigError, StateError, StorageFailed, StoreDamaged
from seatd.log import configure

log = structlog.get_logger("seatd")

# EX_DATAERR: restarting cannot mend a damaged or missing seat table, so the unit's
# RestartPreventExitStatus= stops systemd from looping on it.
EXIT_STORE_DAMAGED = 65


def _overrides(**flags: Any) -> dict[str, dict[str, Any]]:
    where = {
        "listen": ("server", "listen"),
        "admin_socket": ("server", "admin_socket"),
        "state_dir": ("store", "state_dir"),
        "lease_ttl": ("lease", "ttl"),
        "keepalive_interval": ("lease", "keepalive_interval"),
        "reattach_grace": ("lease", "reattach_grace"),
        "restart_grace": ("lease", "restart_grace"),
        "lease_grace": ("lease", "grace"),
        "reaper_tick": ("reaper", "tick"),
        "takeover": ("policy", "takeover"),
        "dev_seats": ("dev", "seats"),
        "trusted_key": ("licence", "trusted_keys"),
        "grace_days": ("licence", "grace_days"),
        "wall_clock_offset": ("dev", "wall_clock_offset"),
        "cloud_url": ("cloud", "url"),
        "sync_interval": ("cloud", "interval"),
        "cloud_ca": ("cloud", "ca_file"),
        "metrics_listen": ("metrics", "listen"),
        "web_listen": ("web", "listen"),
        "etcd": ("cluster", "etcd"),
        "advertise": ("cluster", "advertise"),
        "name": ("cluster", "name"),
        "site": ("cluster", "site"),
    }
    out: dict[str, dict[str, Any]] = {}
    for flag, value in flags.items():
        if value is not None and value != ():
            section, key = where[flag]
            out.setdefault(section, {})[key] = value
    return out


def _config_options(fn: Any) -> Any:
    opts = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path),
            help=f"TOML config file (default {config_mod.DEFAULT_CONFIG_PATH} if present).",
        ),
        click.option("--listen", help="HOST:PORT for workstations (default 127.0.0.1:7117)."),
        click.option("--state-dir", type=click.Path(path_type=Path), help="LMDB state directory."),
        click.option("--admin-socket", type=click.Path(path_type=Path), help="Admin unix socket."),
        click.option("--lease-ttl", type=float, help="Lease TTL in seconds (default 30)."),
        click.option("--keepalive-interval", type=float, help="Keepalive interval (default 10)."),
        click.option(
            "--reattach-grace", type=float, help="Seconds a dropped stream keeps its seat."
        ),
        click.option(
            "--restart-grace", type=float, help="Extra seconds after a restart (default 30)."
        ),
        click.option("--lease-grace", type=float, help="Server grace after the lease deadline."),
        click.option("--reaper-tick", type=float, help="Seconds between reaper passes."),
        click.option(
            "--takeover",
            type=click.Choice(["anyone", "same-user", "admin-only"]),
            help="Who may take a seat over at capacity.",
        ),
        click.option(
            "--dev-seats",
            type=int,
            help="FOR DEVELOPMENT ONLY: cap the seats at N without a licence.",
        ),
        click.option(
            "--trusted-key",
            multiple=True,
            type=click.Path(path_type=Path),
            help="Vendor public key trusted to sign licences (repeatable).",
        ),
        click.option("--grace-days", type=int, help="Days of grace after the renewal date."),
        click.option("--cloud-url", help="HOST:PORT of the vendor's cloud endpoint (sync)."),
        click.option("--sync-interval", type=float, help="Seconds between syncs (6 h)."),
        click.option("--cloud-ca", help="CA certificate file for TLS to the cloud."),
        click.option("--metrics-listen", help='HOST:PORT for /metrics ("" to disable).'),
        click.option("--etcd", help="etcd URL[,URL...]: run as one instance of a cluster."),
        click.option("--advertise", help="HOST:PORT workstations reach this instance on."),
        click.option("--name", help="This instance's name in the cluster (default: host name)."),
        click.option("--site", help="The site's key prefix in etcd (default: default)."),
        click.option(
            "--web-listen", help='HOST:PORT for the web console and JSON API ("" to disable).'
        ),
        click.option(
            "--wall-clock-offset",
            type=float,
            hidden=True,
            help="FOR TESTS ONLY: shift the wall clock by this many seconds.",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _reload(config_file: Path | None, flags: dict[str, Any]) -> config_mod.Config:
    """The config again, from the same file and flags (SIGHUP)."""
    if config_file is None and config_mod.DEFAULT_CONFIG_PATH.exists():
        config_file = config_mod.DEFAULT_CONFIG_PATH
    return config_mod.load(config_file, _overrides(**flags))


def _load(config_file: Path | None, flags: dict[str, Any]) -> config_mod.Config:
    if config_file is None and config_mod.DEFAULT_CONFIG_PATH.exists():
        config_file = config_mod.DEFAULT_CONFIG_PATH
    try:
        return config_mod.load(config_file, _overrides(**flags))
    except ConfigError as exc:
        raise click.ClickException(f"bad configuration: {exc}") from None


@click.group()
@click.version_option(__version__, prog_name="seatd")
def main() -> None:
    """seatd: seat arbitration for software sold per concurrent connection."""


@main.command()
@_config_options
def serve(config_file: Path | None, **flags: Any) -> None:
    """Run the daemon until SIGTERM or SIGINT."""
    configure()
    config = _load(config_file, flags)
    configure(config.log)
    daemon.collect_in_large_batches()
    try:
        uvloop.run(daemon.run(config, SystemClock(), lambda: _reload(config_file, flags)))
    except StateError as exc:
        log.error("daemon.cannot_start", error=str(exc))
        click.echo(f"seatd: cannot start: {exc}", err=True)
        sys.exit(EXIT_STORE_DAMAGED if isinstance(exc, StoreDamaged) else 1)


@main.command()
@click.option("--config", "config_file", type=click.Path(path_type=Path))
@click.option("--state-dir", type=click.Path(path_type=Path), help="LMDB state directory.")
def init(config_file: Path | None, state_dir: Path | None) -> None:
    """Create a new seat table (a new site) where there is none. Never replaces one."""
    config = _load(config_file, {"state_dir": state_dir})
    try:
        store = store_mod.open_store(config.store, create=True)
    except StateError as exc:
        raise click.ClickException(str(exc)) from None
    base_id = store.load().base_id
    store.close()
    if store.created:
        click.echo(f"created a new seat table in {config.store.state_dir}: base id {base_id}")
    else:
        click.echo(
            f"{config.store.state_dir} already holds a seat table (base id {base_id}): "
            "nothing changed"
        )


@main.command("check-config")
@_config_options
def check_config(config_file: Path | None, **flags: Any) -> None:
    """Validate the configuration and print the effective settings."""
    click.echo(config_mod.render(_load(config_file, flags)), nl=False)


@main.command()
@click.argument("backup", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--config", "config_file", type=click.Path(path_type=Path))
@click.option("--state-dir", type=click.Path(path_type=Path), help="LMDB state directory.")
@click.option("--check", is_flag=True, help="Only verify the backup; change nothing.")
def restore(backup: Path, config_file: Path | None, state_dir: Path | None, check: bool) -> None:
    """Replace the daemon's state with a backup, once it verifies. Refuses while the daemon
    runs."""
    try:
        if check:
            report = integrity.check_backup(backup)
            click.echo(f"{backup} is a usable seat table backup: {report.summary()}")
            return
        config = _load(config_file, {"state_dir": state_dir})
        target = config.store.state_dir
        # Under sudo, the admin who ran it rather than "root".
        by = os.environ.get("SUDO_USER") or getpass.getuser()
        report = store_mod.restore(backup, target, SystemClock().wall(), by)
    except StateError as exc:
        if "another seatd" in str(exc):
            raise click.ClickException(
                f"{exc}: stop it first (systemctl stop seatd), then restore"
            ) from None
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"restored {backup} into {target}: {report.summary()}; the previous state is kept "
        "beside it; the daemon journals the restore when it next starts"
    )


@main.command()
@click.option("--config", "config_file", type=click.Path(path_type=Path))
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    help="The LMDB state directory to copy from (with --to-etcd).",
)
@click.option("--to-etcd", metavar="URL[,URL...]", help="Copy the LMDB state into etcd.")
@click.option(
    "--to-lmdb",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Copy the site from etcd (--etcd) into a new LMDB state directory.",
)
@click.option("--etcd", metavar="URL[,URL...]", help="The etcd cluster to copy from.")
@click.option("--site", default="default", show_default=True, help="The site's name in etcd.")
@click.option("--etcd-ca", type=click.Path(path_type=Path), help="CA of the etcd members.")
@click.option("--etcd-cert", type=click.Path(path_type=Path), help="Client certificate.")
@click.option("--etcd-key", type=click.Path(path_type=Path), help="Client certificate's key.")
def migrate(
    config_file: Path | None,
    state_dir: Path | None,
    to_etcd: str | None,
    to_lmdb: Path | None,
    etcd: str | None,
    site: str,
    etcd_ca: Path | None,
    etcd_cert: Path | None,
    etcd_key: Path | None,
) -> None:
    """Move the seat table between LMDB and etcd, with the daemon stopped: sessions (ids and
    tokens), the journal and its chain, licence, tokens and kept endings. The target must
    be empty; the source is left as it was."""
    from seatd.store import migrate as moving
    from seatd.store.etcd import EtcdConfig

    if (to_etcd is None) == (to_lmdb is None):
        raise click.UsageError("give one of --to-etcd URL[,URL...] or --to-lmdb DIR")
    urls = to_etcd if to_etcd is not None else etcd
    if urls is None:
        raise click.UsageError("--to-lmdb copies from etcd: give --etcd URL[,URL...]")
    try:
        cluster = EtcdConfig(
            tuple(u.strip() for u in urls.split(",") if u.strip()),
            site=site,
            ca=etcd_ca,
            cert=etcd_cert,
            key=etcd_key,
        )
        if to_lmdb is not None:
            moved = moving.to_lmdb(cluster, to_lmdb)
            where = f"{to_lmdb}"
        else:
            source = _load(config_file, {"state_dir": state_dir}).store.state_dir
            moved = moving.to_etcd(source, cluster)
            where = f"etcd site {site!r} ({cluster.prefix.decode()})"
    except (StateError, ConfigError, StorageFailed) as exc:
        raise click.ClickException(str(getattr(exc, "message", exc))) from None
    click.echo(f"migrated {moved.summary()} into {where}; the journal verifies there")
