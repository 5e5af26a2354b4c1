"""`seatctl policy`: the seat policy in force, and a dry run of a new one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from seatclient.v1 import admin_pb2

from seatd import tables
from seatd.ctl.app import TIMEOUT, Ctx, main


def _seconds(d: Any) -> float:
    return float(d.seconds + d.nanos / 1e9)


def _minutes(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def policy_json(p: admin_pb2.GetPolicyResponse) -> dict[str, Any]:
    return {
        "takeover": p.takeover,
        "max_per_user": p.max_per_user or None,
        "seat_cap": p.seat_cap if p.HasField("seat_cap") else None,
        "in_use": p.in_use,
        "unused_reserve": p.unused_reserve,
        "rules": p.rules,
        "idle": {
            "reclaim_after_seconds": _seconds(p.idle.reclaim_after) or None,
            "warn_before_seconds": _seconds(p.idle.warn_before),
            "only_when_waiting": p.idle.only_when_waiting,
        },
        "groups": [
            {
                "name": g.name,
                "users": list(g.users),
                "hosts": list(g.hosts),
                "networks": list(g.networks),
                "in_use": g.in_use,
                "reserve": g.reserve,
                "max": g.max if g.HasField("max") else None,
                "exclude": g.exclude,
                "priority": g.priority,
            }
            for g in p.groups
        ],
    }


def _members(g: admin_pb2.PolicyGroup) -> str:
    parts = []
    if g.users:
        parts.append("users " + ", ".join(g.users))
    if g.hosts:
        parts.append("hosts " + ", ".join(g.hosts))
    if g.networks:
        parts.append("networks " + ", ".join(g.networks))
    return "; ".join(parts)


def print_policy(p: admin_pb2.GetPolicyResponse, title: str) -> None:
    cap = p.seat_cap if p.HasField("seat_cap") else "unlimited"
    idle = p.idle
    reclaim = _seconds(idle.reclaim_after)
    summary = tables.grid()
    summary.add_row("Seats", f"{p.in_use} in use of {cap}; {p.unused_reserve} reserved, unused")
    summary.add_row("Takeover", p.takeover)
    summary.add_row(
        "Per user",
        f"at most {p.max_per_user} seat{'s' if p.max_per_user != 1 else ''}"
        if p.max_per_user
        else "unlimited",
    )
    summary.add_row(
        "Idle reclaim",
        (
            f"after {_minutes(reclaim)} idle, warned {_minutes(_seconds(idle.warn_before))} "
            + ("before, when someone waits" if idle.only_when_waiting else "before, always")
        )
        if reclaim
        else "off",
    )
    table = tables.table(
        "Group",
        tables.column("Members", min_width=20),
        tables.column("In use", justify="right", no_wrap=True),
        tables.column("Reserved", justify="right", no_wrap=True),
        tables.column("Max", justify="right", no_wrap=True),
        tables.column("Priority", justify="right", no_wrap=True),
        title=f"{title}: {len(p.groups)} groups, {p.rules} rules",
    )
    for g in p.groups:
        # Hostname patterns may hold brackets ("ws-[0-9]*"), which rich would read as markup.
        table.add_row(
            escape(g.name),
            escape(_members(g)),
            str(g.in_use),
            "excluded" if g.exclude else str(g.reserve),
            "-" if g.exclude else (str(g.max) if g.HasField("max") else "none"),
            str(g.priority),
        )
    tables.show(summary, table)


@main.group()
def policy() -> None:
    """The seat policy: groups, reservations, maxima, priorities, idle reclaim."""


@policy.command("show")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.pass_obj
def policy_show(obj: Ctx, as_json: bool) -> None:
    """The rules in force, with each group's seats in use, reserved and max."""
    with obj.admin() as admin:
        p = admin.GetPolicy(admin_pb2.GetPolicyRequest(), timeout=TIMEOUT)
    if as_json:
        click.echo(json.dumps(policy_json(p), indent=2))
        return
    print_policy(p, "Seat policy in force")


@policy.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.pass_obj
def policy_check(obj: Ctx, file: Path, as_json: bool) -> None:
    """Dry run: FILE's policy (a config file, or a [policy] table) against the live
    sessions. Shows which sessions it would now refuse; changes nothing."""
    with obj.admin() as admin:
        r = admin.CheckPolicy(admin_pb2.CheckPolicyRequest(toml=file.read_text()), timeout=TIMEOUT)
    breaches = [
        {
            "session_id": b.session.id,
            "user_code": b.session.user_code,
            "hostname": b.session.hostname,
            "group": b.group,
            "reason": b.reason,
            "rule": b.rule,
            "message": b.message,
        }
        for b in r.breaches
    ]
    if as_json:
        click.echo(json.dumps({"policy": policy_json(r.policy), "breaches": breaches}, indent=2))
        return
    print_policy(r.policy, f"{file} (not applied)")
    if not breaches:
        click.echo("No live session breaks this policy: applying it refuses no one seated now.")
        return
    table = tables.table(
        tables.column("Id", justify="right", no_wrap=True),
        "User / computer",
        tables.column("Would be refused", min_width=30),
        title=f"{len(breaches)} live {'session breaks' if len(breaches) == 1 else 'sessions break'}"
        " this policy (they keep their seat: a reload ends no session)",
    )
    for b in r.breaches:
        table.add_row(
            str(b.session.id),
            f"{b.session.user_code}\n{b.session.hostname}",
            f"{b.message} ({b.reason})",
        )
    tables.show(table)
