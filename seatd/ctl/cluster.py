"""`seatctl cluster status`: the cluster's instances and etcd's members, read from etcd."""

from __future__ import annotations

import json
from pathlib import Path

import click
import grpc

from seatd.cluster import status
from seatd.ctl.app import main
from seatd.errors import ConfigError


@main.group()
def cluster() -> None:
    """Cluster mode: the seatd instances over etcd, and etcd's members."""


@cluster.command("status")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="seatd.toml")
@click.option("--etcd", help="etcd URL[,URL...] (default: [cluster] etcd of the config).")
@click.option("--site", help="The site (default: [cluster] site of the config).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
def cluster_status(
    config_file: Path | None, etcd: str | None, site: str | None, as_json: bool
) -> None:
    """Each instance (name, address, leader or standby, last heartbeat) and etcd's members
    with their health, read from etcd (it works while no instance leads)."""
    try:
        found = status.report(config_file, etcd, site)
    except (ConfigError, grpc.RpcError) as exc:
        raise click.ClickException(f"cannot read the cluster's status: {exc}") from None
    click.echo(json.dumps(found, indent=2) if as_json else status.render(found))
