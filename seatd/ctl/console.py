"""`seatctl console`: a one-time link that opens the web console."""

from __future__ import annotations

import click
from seatclient.v1 import admin_pb2

from seatd.ctl.app import TIMEOUT, Ctx, main
from seatd.ctl.fmt import dt, iso


@main.command()
@click.pass_obj
def console(obj: Ctx) -> None:
    """Print a link that opens the web console logged in as you: it works once, for about a
    minute. The URL is the last line, alone, for scripts."""
    with obj.admin() as admin:
        r = admin.CreateConsoleLink(admin_pb2.CreateConsoleLinkRequest(), timeout=TIMEOUT)
    click.echo(
        f"open this within a minute (until {iso(dt(r.expires_at))}); it works once:", err=True
    )
    click.echo(r.url)
