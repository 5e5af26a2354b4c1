"""`seatctl journal`: reading, following, verifying and exporting the journal."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import grpc
from seatclient.contract import Reason
from seatclient.errors import detail_of
from seatclient.v1 import admin_pb2, admin_pb2_grpc

from seatd import tables
from seatd.clock import SystemClock
from seatd.ctl.app import TIMEOUT, Ctx, main
from seatd.ctl.fmt import spaced

_RELATIVE = {"m": 60, "h": 3600, "d": 86400}
# Seconds `--follow` looks for the daemon (over a cluster's targets: the next leader) once its
# stream is lost: a restart or a failover takes a few seconds.
FIND_DAEMON_FOR = 60.0
# Seconds between two looks.
LOOK_EVERY = 0.5


def parse_when(value: str, now: datetime) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a span back from now: 30m, 24h, 7d."""
    text = value.strip()
    if text[:-1].isdigit() and text[-1:] in _RELATIVE:
        return now - timedelta(seconds=int(text[:-1]) * _RELATIVE[text[-1]])
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use an ISO date or time (2026-11-22, 2026-11-22T08:00) or 30m, 24h, 7d"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def entry_json(e: admin_pb2.JournalEntry) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(e.json)
    out: dict[str, Any] = {
        "seq": e.seq,
        "at": stored.get("at"),
        "kind": e.kind,
        "session_id": e.session_id or None,
        "user_code": e.user_code or None,
        "actor": e.actor,
    }
    if "reason" in stored:
        out["reason"] = stored["reason"]
    skip = {"prev", "hash"}
    out.update({k: v for k, v in stored.items() if k not in out and k not in skip})
    return out


def _actor(j: dict[str, Any]) -> str:
    """The actor, with what was only claimed marked as such."""
    if j.get("claimed_user"):
        return f"{j['actor']} ({j['claimed_user']}, claimed)"
    if j.get("by_claimed"):
        return f"{j['actor']} (claimed)"
    return str(j["actor"])


def _detail(j: dict[str, Any]) -> str:
    if j.get("repeated"):
        return f"{j.get('reason') or j['kind']} (x{j['repeated']} more since {j.get('since')})"
    if j.get("reason"):
        return str(j["reason"])
    for key in ("serial", "detail"):
        if j.get(key):
            return str(j[key])
    if j["kind"] == "active_seats_changed":
        return f"{j.get('old')} -> {j.get('new')}"
    return ""


def _journal_filter(
    since: str | None,
    until: str | None,
    user: str | None,
    session: int | None,
    kinds: tuple[str, ...],
) -> admin_pb2.JournalFilter:
    now = SystemClock().wall()
    f = admin_pb2.JournalFilter(user_code=user or "", session_id=session or 0, kinds=list(kinds))
    if since:
        f.since.FromDatetime(parse_when(since, now))
    if until:
        f.until.FromDatetime(parse_when(until, now))
    return f


@main.group(invoke_without_command=True)
@click.option("--follow", "-f", is_flag=True, help="Keep printing entries as they are written.")
@click.option("--since", help="ISO date or time, or 30m / 24h / 7d back from now.")
@click.option("--until", help="ISO date or time, or 30m / 24h / 7d back from now.")
@click.option("--user", help="Only this user code.")
@click.option("--session", type=int, help="Only this session id.")
@click.option("--kind", "kinds", multiple=True, help="Only this kind (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def journal(
    ctx: click.Context,
    follow: bool,
    since: str | None,
    until: str | None,
    user: str | None,
    session: int | None,
    kinds: tuple[str, ...],
    as_json: bool,
) -> None:
    """The session journal: who got, lost or was refused a seat, who evicted whom and why."""
    if ctx.invoked_subcommand is not None:
        return
    obj: Ctx = ctx.obj
    keep = _journal_filter(since, until, user, session, kinds)
    table = (
        None
        if as_json
        else tables.table(
            tables.column("Seq", justify="right", no_wrap=True),
            tables.column("When (UTC)", min_width=10, max_width=10),
            "Kind",
            tables.column("Session", justify="right"),
            "User",
            "By",
            "Reason / detail",
            title="Session journal",
        )
    )

    def show(entry: admin_pb2.JournalEntry) -> None:
        j = entry_json(entry)
        if table is None:
            click.echo(json.dumps(j, ensure_ascii=False))
        else:
            table.add_row(
                str(j["seq"]),
                spaced(str(j["at"])),
                j["kind"],
                str(j["session_id"] or ""),
                j["user_code"] or "",
                _actor(j),
                _detail(j),
            )

    with obj.admin() as admin:
        after = read(admin, 0, keep, show)
        if table is not None:
            tables.show(table)
        if not follow:
            return

        def line(entry: admin_pb2.JournalEntry) -> None:
            j = entry_json(entry)
            if as_json:
                click.echo(json.dumps(j, ensure_ascii=False))
            else:
                click.echo(
                    f"{j['seq']:>6}  {j['at']}  {j['kind']:<20} "
                    f"{j['session_id'] or '':>6}  {j['user_code'] or '':<8} "
                    f"{_actor(j):<12} {_detail(j)}"
                )

        try:
            watch(admin, after, keep, line)
        except KeyboardInterrupt:
            return


def read(
    admin: admin_pb2_grpc.AdminServiceStub,
    after: int,
    keep: admin_pb2.JournalFilter,
    show: Callable[[admin_pb2.JournalEntry], None],
) -> int:
    """Show every entry after `after` that `keep` lets through, page by page; return the
    seq to go on after."""
    while True:
        page = admin.ReadJournal(
            admin_pb2.ReadJournalRequest(after_seq=after, limit=1000, filter=keep),
            timeout=TIMEOUT,
        )
        for entry in page.entries:
            show(entry)
        after = page.next_after_seq
        if not page.more:
            return after


def watch(
    admin: admin_pb2_grpc.AdminServiceStub,
    after: int,
    keep: admin_pb2.JournalFilter,
    show: Callable[[admin_pb2.JournalEntry], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Show each entry after `after` as it is written, for ever. A stream lost to a restart
    of the daemon, or over a cluster's targets to a failover or a step-down, is taken up
    again (at the next leader: `Following`): the entries written meanwhile are read first,
    which also proves a daemon answers again, then the stream reopens after the last one
    shown, so nothing is missed and nothing shown twice (the journal is kept across both:
    on disk, or in etcd). After FIND_DAEMON_FOR seconds with no daemon answering, the last
    error stands."""
    lost_at: float | None = None
    while True:
        try:
            if lost_at is not None:
                after = read(admin, after, keep, show)
                click.echo(f"(following the journal again after seq {after})", err=True)
                lost_at = None
            for update in admin.WatchJournal(
                admin_pb2.WatchJournalRequest(after_seq=after, filter=keep)
            ):
                show(update.entry)
                after = update.entry.seq
            why = "closed by the daemon"
        except grpc.RpcError as exc:
            if not _daemon_lost(exc):
                raise
            if lost_at is not None and clock() - lost_at > FIND_DAEMON_FOR:
                raise
            why = exc.code().name
        if lost_at is None:
            click.echo(
                f"(the journal stream ended after seq {after}: {why}; "
                "waiting for the daemon, or the cluster's next leader)",
                err=True,
            )
            lost_at = clock()
        sleep(LOOK_EVERY)


def _daemon_lost(exc: grpc.RpcError) -> bool:
    """The stream or a read ended because its daemon went, froze or stopped leading, not
    by an answer (a read that ran out of time changed nothing: it is asked again)."""
    reason = detail_of(exc).reason
    if reason:
        return bool(reason == Reason.NOT_LEADER)
    return exc.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )


@journal.command("verify")
@click.pass_obj
def journal_verify(obj: Ctx) -> None:
    """Check the hash chain; exit 1 naming the first broken entry."""
    with obj.admin() as admin:
        r = admin.VerifyJournal(admin_pb2.VerifyJournalRequest(), timeout=120)
    if r.intact:
        click.echo(f"journal intact: {r.entries} entries, chain verified up to seq {r.last_seq}")
        return
    click.echo(
        f"journal BROKEN at seq {r.first_broken_seq}: that entry (or the one before it) "
        "was altered or removed",
        err=True,
    )
    sys.exit(1)


@journal.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def journal_export(obj: Ctx, file: Path) -> None:
    """Write every entry as JSON lines, exactly as stored (hashes included)."""
    count, after = 0, 0
    with obj.admin() as admin, file.open("w", encoding="utf-8") as out:
        while True:
            page = admin.ReadJournal(
                admin_pb2.ReadJournalRequest(after_seq=after, limit=1000), timeout=TIMEOUT
            )
            for entry in page.entries:
                out.write(entry.json + "\n")
                count += 1
            after = page.next_after_seq
            if not page.more:
                break
    click.echo(f"exported {count} entries to {file}")


def _all_entries(admin: admin_pb2_grpc.AdminServiceStub) -> list[dict[str, Any]]:
    entries, after = [], 0
    while True:
        page = admin.ReadJournal(
            admin_pb2.ReadJournalRequest(after_seq=after, limit=1000), timeout=TIMEOUT
        )
        entries += [json.loads(e.json) for e in page.entries]
        after = page.next_after_seq
        if not page.more:
            return entries
