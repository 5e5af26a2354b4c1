"""`seat`: hold a seat from a terminal, for workstation troubleshooting and demos.

Exit codes (part of the contract): 0 released on SIGINT/SIGTERM (or status reachable),
1 daemon unreachable, 2 at capacity (no wait, or the wait ran out), 3 evicted, 4 lease lost,
5 the licence allows no new connection (expired past its grace): renewing it is the way out,
not waiting for a seat, 6 the daemon refused for now to protect itself (rate limited, wait
queue full, storage full): retry after the delay it printed, 7 superseded: another
instance attached the same session and holds the seat now, 8 the site's seat policy
refused the seat (the line names the rule and its group: a group at its max, a seat reserved
for another group, one user's seats, an excluded group).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from seatclient.blocking import Seat, SeatClient
from seatclient.errors import (
    DaemonUnavailable,
    InvalidRequest,
    LicenceInvalid,
    PolicyRefused,
    SeatError,
    SeatsExhausted,
    ServerBusy,
)
from seatclient.events import (
    Draining,
    EvictedEvent,
    IdleWarning,
    LicenceChanged,
    SeatEvent,
    SeatState,
    SessionInfo,
    StateChanged,
)
from seatclient.v1 import types_pb2

TARGET_HELP = "HOST:PORT of the seat server (a cluster's instances: A:PORT,B:PORT)"
EXIT_OK, EXIT_UNREACHABLE, EXIT_FULL, EXIT_EVICTED, EXIT_LOST, EXIT_LICENCE = 0, 1, 2, 3, 4, 5
EXIT_BUSY, EXIT_SUPERSEDED, EXIT_POLICY = 6, 7, 8
# How a held seat can end on the daemon's word.
ENDINGS = {
    SeatState.EVICTED: EXIT_EVICTED,
    SeatState.LOST: EXIT_LOST,
    SeatState.SUPERSEDED: EXIT_SUPERSEDED,
}


def say(line: str) -> None:
    print(line, flush=True)


def describe(event: SeatEvent) -> str:
    if isinstance(event, EvictedEvent):
        return f"evicted: {event.reason} (by {event.by})"
    if isinstance(event, StateChanged) and event.new is SeatState.SUPERSEDED:
        return "state: superseded (another instance holds this session now; not reattaching)"
    if isinstance(event, StateChanged):
        return f"state: {event.new.value}"
    if isinstance(event, LicenceChanged):
        return f"licence changed: {licence_line(event.licence)}"
    if isinstance(event, IdleWarning):
        return f"idle warning{' withdrawn' if event.withdrawn else ''}: {event.reason}"
    if isinstance(event, Draining):
        return f"daemon restarting: reattaching in about {event.reattach_after:.0f} s"
    return str(event)


def licence_line(lic: types_pb2.LicenceSummary) -> str:
    edition = types_pb2.Edition.Name(lic.edition).removeprefix("EDITION_").lower()
    mode = types_pb2.Mode.Name(lic.mode).removeprefix("MODE_").lower()
    status = types_pb2.LicenceStatus.Name(lic.status).removeprefix("LICENCE_STATUS_").lower()
    seats = f"{lic.seat_cap} seats" if lic.HasField("seat_cap") else "unlimited seats"
    if lic.status == types_pb2.LICENCE_STATUS_GRACE:
        status = f"in grace ({lic.grace_days_left} days of grace left to renew)"
    return f"{edition}/{mode}, {status}, {seats}"


def sessions_table(sessions: Sequence[SessionInfo], unlisted: int = 0) -> str:
    """The sessions as a table; an IP column only when the daemon disclosed addresses, and a
    last line for those it did not list. Empty when it listed none (it disclosed a count)."""
    if not sessions:
        return ""
    with_ip = any(s.ip for s in sessions)
    ip = ("IP",) if with_ip else ()
    rows = [("ID", "USER", "NAME", "COMPUTER", *ip, "STARTED (UTC)", "DURATION")]
    for s in sessions:
        minutes, seconds = divmod(int(s.duration_seconds), 60)
        rows.append(
            (
                str(s.id),
                s.user_code,
                s.user_name,
                s.hostname,
                *((s.ip,) if with_ip else ()),
                s.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                f"{minutes:02d} m {seconds:02d} s",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if unlisted:
        lines.append(f"and {unlisted} more")
    return "\n".join(lines)


def status(args: argparse.Namespace) -> int:
    with SeatClient(args.target, timeout=args.timeout) as client:
        try:
            answer = client.licence()
        except DaemonUnavailable as exc:
            print(f"seat: {exc}", file=sys.stderr, flush=True)
            return EXIT_UNREACHABLE
    lic = answer.licence
    cap = str(lic.seat_cap) if lic.HasField("seat_cap") else "unlimited"
    say(f"seat server {args.target}: reachable")
    say(f"licence: {licence_line(lic)}")
    say(f"seats in use: {answer.in_use} of {cap}")
    return EXIT_OK


def refusal(exc: SeatError) -> tuple[int, str]:
    """The exit code and the line for an acquire refused other than at capacity."""
    if isinstance(exc, DaemonUnavailable):
        return EXIT_UNREACHABLE, f"seat: {exc}"
    if isinstance(exc, LicenceInvalid):
        return EXIT_LICENCE, f"seat: {exc}"
    if isinstance(exc, PolicyRefused):
        group = f" of group {exc.group}" if exc.group else ""
        return EXIT_POLICY, f"seat: refused by the seat policy (rule {exc.rule}{group}): {exc}"
    if isinstance(exc, ServerBusy):
        return EXIT_BUSY, f"seat: the seat server refused for now: {exc}"
    if isinstance(exc, InvalidRequest) and exc.field:
        return EXIT_FULL, f"seat: the request was refused ({exc.field}): {exc}"
    # No seat granted: takeover denied, a stale session to take over.
    return EXIT_FULL, f"seat: {exc}"


def hold(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def on_event(event: SeatEvent) -> None:
        say(describe(event))
        if isinstance(event, StateChanged) and event.new in ENDINGS:
            stop.set()

    with SeatClient(args.target, timeout=args.timeout) as client:
        try:
            seat = client.acquire(
                user_code=args.user,
                user_name=args.name,
                evict_session=args.evict,
                reason=args.reason,
                wait=args.wait,
                on_event=on_event,
                on_queued=lambda position: say(f"waiting for a seat: position {position}"),
            )
        except SeatsExhausted as full:
            say(str(full))
            if table := sessions_table(full.sessions, full.unlisted):
                say(table)
            if full.order_url:
                say(f"order one more connection: {full.order_url}")
            return EXIT_FULL
        except SeatError as exc:
            code, line = refusal(exc)
            print(line, file=sys.stderr, flush=True)
            return code
        say(f"holding session {seat.session_id}")
        if args.report_idle:
            # Each line typed is activity; the time since the last one is reported as idle.
            seat.touch()
            threading.Thread(target=_activity, args=(seat,), daemon=True).start()
        if seat.licence.status == types_pb2.LICENCE_STATUS_GRACE:
            say(f"licence: {licence_line(seat.licence)}")
        while not stop.wait(1.0):
            pass
        if seat.state in ENDINGS:
            return ENDINGS[seat.state]
        seat.release()
        say(f"released session {seat.session_id}")
        return EXIT_OK


def _activity(seat: Seat) -> None:
    for _ in sys.stdin:
        seat.touch()
        say("activity reported")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seat", description="Hold a seat of a seatd server.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("status", help="Is the seat server reachable? Licence and seats in use.")
    s.add_argument(
        "--target",
        required=True,
        help="HOST:PORT of the seat server; a cluster's instances comma-separated",
    )
    s.add_argument("--timeout", type=float, default=5.0, help=argparse.SUPPRESS)
    s.set_defaults(run=status)
    h = sub.add_parser("hold", help="Take a seat and hold it until Ctrl-C.")
    h.add_argument(
        "--target",
        required=True,
        help="HOST:PORT of the seat server; a cluster's instances comma-separated",
    )
    h.add_argument("--user", required=True, help="user code")
    h.add_argument("--name", default="", help="user name")
    h.add_argument("--wait", type=float, default=None, help="seconds to queue for a seat")
    h.add_argument("--evict", type=int, default=None, help="session id to take over")
    h.add_argument("--reason", default="", help="reason shown to the evicted user")
    h.add_argument(
        "--report-idle",
        action="store_true",
        help="report idle time for the seat policy's idle reclaim: each line typed on "
        "stdin is activity",
    )
    h.add_argument("--timeout", type=float, default=5.0, help=argparse.SUPPRESS)
    h.set_defaults(run=hold)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    sys.exit(args.run(args))
