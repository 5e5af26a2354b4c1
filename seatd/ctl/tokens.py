"""`seatctl token ...`: remote admin tokens."""

from __future__ import annotations

import json

import click
from seatclient.v1 import admin_pb2

from seatd import tables
from seatd.auth import ROLES
from seatd.ctl.app import TIMEOUT, Ctx, main
from seatd.ctl.fmt import dt, iso, spaced


@main.group()
def token() -> None:
    """Tokens for remote administration (owner or admin)."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True, help="Who or what the token is for.")
@click.pass_obj
def token_create(obj: Ctx, role: str, name: str) -> None:
    """Create a token; it is shown once and only its hash is kept."""
    with obj.admin() as admin:
        r = admin.CreateToken(admin_pb2.CreateTokenRequest(name=name, role=role), timeout=TIMEOUT)
    click.echo(r.token)
    click.echo(f"token {name!r} ({role}) created: copy it now, it cannot be shown again", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def token_list(obj: Ctx, as_json: bool) -> None:
    """Every token: name, role, who created it, revoked or not."""
    with obj.admin() as admin:
        r = admin.ListTokens(admin_pb2.ListTokensRequest(), timeout=TIMEOUT)
    rows = [
        {
            "name": t.name,
            "role": t.role,
            "created_by": t.created_by,
            "created_at": iso(dt(t.created_at)),
            "revoked_at": iso(dt(t.revoked_at)) if t.HasField("revoked_at") else None,
        }
        for t in r.tokens
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = tables.table(
        "Name",
        "Role",
        "Created by",
        tables.column("Created (UTC)", min_width=10),
        tables.column("Revoked", min_width=10),
        title="Admin tokens",
    )
    for row in rows:
        table.add_row(
            row["name"],
            row["role"],
            row["created_by"],
            spaced(str(row["created_at"])),
            spaced(str(row["revoked_at"])) if row["revoked_at"] else "-",
        )
    tables.show(table)


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(obj: Ctx, name: str) -> None:
    """Revoke a token at once."""
    with obj.admin() as admin:
        admin.RevokeToken(admin_pb2.RevokeTokenRequest(name=name), timeout=TIMEOUT)
    click.echo(f"token {name!r} revoked")
