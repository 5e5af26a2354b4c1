"""The error contract: every error the daemon can raise, through the daemon's encoder
(`seatd.transport.status.to_status`) and the library's decoder (`seatclient.errors`).

Adding a SeatdError without an example here fails `test_every_daemon_error_has_an_example`;
an example whose reason the library does not map fails `test_..._decodes_typed`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest
from seatclient import cli, contract
from seatclient import errors as client
from seatclient.v1 import types_pb2

from seatd import errors
from seatd.entitlement import LicenceView, Status
from seatd.model import Ending, EndKind, Holder, Session
from seatd.transport.status import to_status
from tests.fakes import FakeRpcError

ORDER_URL = "https://order.example/x"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOLDER = Holder("BB", "Bruno B", "ws-1", "10.0.0.5", "erp/1")
SESSION = Session(7, HOLDER, "k", "tok", NOW, NOW, 0.0, 30.0)


def ending(kind: EndKind) -> Ending:
    return Ending(SESSION, kind, "audit", "admin", NOW)


@dataclass(frozen=True)
class Case:
    error: errors.SeatdError
    expected: type[client.SeatError]
    # Fields of the decoded error, beyond its type and message.
    check: Callable[[client.SeatError], bool] = lambda e: True


def exhausted() -> errors.SeatsExhausted:
    refused = errors.SeatsExhausted(3, 3, [SESSION], 10.0, queue_position=2)
    refused.licence = LicenceView(status=Status.VALID, seat_cap=3, order_url=ORDER_URL)
    return refused


CASES: list[Case] = [
    Case(
        errors.InvalidArgument("user_code", "is required"),
        client.InvalidRequest,
        lambda e: isinstance(e, client.InvalidRequest) and e.field == "user_code",
    ),
    Case(
        exhausted(),
        client.SeatsExhausted,
        lambda e: (
            isinstance(e, client.SeatsExhausted)
            and (e.cap, e.in_use, e.retry_after, e.queue_position) == (3, 3, 10.0, 2)
            and [s.id for s in e.sessions] == [7]
            and e.order_url == ORDER_URL
            and (e.licence.seat_cap, e.licence.status) == (3, types_pb2.LICENCE_STATUS_VALID)
        ),
    ),
    Case(errors.SessionNotFound(9), client.LeaseLost),
    Case(errors.SessionEnded(ending(EndKind.RELEASED)), client.LeaseLost),
    Case(
        errors.SessionEnded(ending(EndKind.EXPIRED)),
        client.LeaseLost,
        lambda e: e.code == contract.Reason.SESSION_EXPIRED,
    ),
    Case(
        errors.SessionEnded(ending(EndKind.EVICTED)),
        client.Evicted,
        lambda e: isinstance(e, client.Evicted) and (e.reason, e.by) == ("audit", "admin"),
    ),
    Case(
        errors.TakeoverTargetGone(9),
        client.TakeoverTargetGone,
        lambda e: isinstance(e, client.TakeoverTargetGone) and e.session_id == 9,
    ),
    Case(errors.InvalidToken(7), client.LeaseLost),
    Case(errors.Superseded(7), client.Superseded),
    Case(
        errors.TakeoverDenied("same-user", "not yours"),
        client.TakeoverDenied,
        lambda e: isinstance(e, client.TakeoverDenied) and e.policy == "same-user",
    ),
    *(
        Case(
            errors.PolicyRefused(rule, reason, "interns", f"refused by {rule}"),
            client.PolicyRefused,
            lambda e, r=rule, c=reason: (
                isinstance(e, client.PolicyRefused)
                and (e.code, e.rule, e.group) == (c, r, "interns")
            ),
        )
        for rule, reason in (
            ("max", contract.Reason.POLICY_MAX),
            ("reserve", contract.Reason.POLICY_RESERVED),
            ("max_per_user", contract.Reason.POLICY_PER_USER),
        )
    ),
    Case(
        errors.PolicyExcluded(contract.Reason.POLICY_EXCLUDED, "guests", "no seat for guests"),
        client.PolicyRefused,
        lambda e: (
            isinstance(e, client.PolicyRefused) and (e.rule, e.group) == ("exclude", "guests")
        ),
    ),
    Case(errors.Unavailable("try later"), client.DaemonUnavailable),
    Case(errors.StorageFailed("disk full"), client.DaemonUnavailable),
    Case(errors.Fenced("a newer leader holds the fence"), client.DaemonUnavailable),
    Case(
        errors.StoreFull("95 % used", "raise store.map_size", 10.0),
        client.StoreFull,
        lambda e: isinstance(e, client.StoreFull) and e.retry_after == 10.0,
    ),
    Case(errors.Draining(), client.DaemonUnavailable),
    Case(
        errors.NotLeader("10.0.0.2:7117", "b", admin="10.0.0.2:7118"),
        client.NotLeader,
        lambda e: (
            isinstance(e, client.NotLeader)
            and (e.leader, e.name, e.admin) == ("10.0.0.2:7117", "b", "10.0.0.2:7118")
        ),
    ),
    Case(
        errors.RateLimited("10.0.0.5", 2.5),
        client.RateLimited,
        lambda e: isinstance(e, client.RateLimited) and e.retry_after == 2.5,
    ),
    Case(errors.LimitExceeded("QUEUE_FULL", "100 requests are already waiting"), client.QueueFull),
    *(
        Case(
            errors.LimitExceeded(reason, "a bound was reached", retry_after=10.0),
            client.LimitExceeded,
            lambda e: isinstance(e, client.LimitExceeded) and e.retry_after == 10.0,
        )
        for reason in ("PING_FLOOD", "KEEPALIVE_BACKLOG", "TOO_MANY_CALLS")
    ),
    Case(errors.LicenceRejected("LICENCE_BAD_SIGNATURE", "bad"), client.LicenceInvalid),
    Case(errors.LicenceRefusesGrant("the licence ended"), client.LicenceInvalid),
    Case(errors.SeatsNotPurchased("only 5 bought"), client.AdminRefused),
    Case(
        errors.NotAllowed("owners only", "owner"),
        client.AdminRefused,
        lambda e: e.metadata[contract.Meta.NEEDED_ROLE] == "owner",
    ),
    Case(errors.CloudFailed("no route"), client.AdminRefused),
    Case(errors.Unauthenticated("no token"), client.AdminRefused),
    Case(errors.DamagedRecord("journal", "42", "does not decode"), client.AdminRefused),
]


def daemon_errors() -> set[type[errors.SeatdError]]:
    return {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.SeatdError) and cls is not errors.SeatdError
    }


def test_every_daemon_error_has_an_example() -> None:
    """Each SeatdError class appears in CASES (so in the round trip below)."""
    missing = daemon_errors() - {type(c.error) for c in CASES}
    assert not missing, f"add a Case and a seatclient.errors.DECODERS entry for {missing}"


def test_every_contract_reason_has_a_decoder() -> None:
    """Each reason the contract names decodes through its own entry."""
    reasons = {v for k, v in vars(contract.Reason).items() if not k.startswith("_")}
    assert reasons <= set(client.DECODERS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{type(c.error).__name__}:{c.error.reason}")
def test_daemon_error_decodes_typed_with_its_fields(case: Case) -> None:
    """The status the daemon sends decodes into the expected typed error, fields included."""
    status = to_status(case.error, NOW)
    rpc = FakeRpcError(status.code, status.details, status.trailing_metadata)
    decoded = client.from_rpc_error(rpc, "seats.lan:7117")  # type: ignore[arg-type]
    assert type(decoded) is case.expected
    assert case.error.reason in client.DECODERS or case.error.reason.startswith(
        contract.LICENCE_PREFIX
    ), f"{case.error.reason} decodes only by its gRPC code"
    assert case.error.message in str(decoded)
    assert decoded.code == case.error.reason
    assert case.check(decoded)
    assert status.code is not grpc.StatusCode.INTERNAL


EXIT = {
    client.DaemonUnavailable: cli.EXIT_UNREACHABLE,
    client.LicenceInvalid: cli.EXIT_LICENCE,
    client.StoreFull: cli.EXIT_BUSY,
    client.RateLimited: cli.EXIT_BUSY,
    client.QueueFull: cli.EXIT_BUSY,
    client.LimitExceeded: cli.EXIT_BUSY,
    client.NotLeader: cli.EXIT_UNREACHABLE,
    client.PolicyRefused: cli.EXIT_POLICY,
}


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.expected is not client.SeatsExhausted],
    ids=lambda c: f"{type(c.error).__name__}:{c.error.reason}",
)
def test_seat_hold_prints_each_refusal_with_its_exit_code(case: Case) -> None:
    """`seat hold` prints the daemon's message and exits with the documented code."""
    status = to_status(case.error, NOW)
    rpc = FakeRpcError(status.code, status.details, status.trailing_metadata)
    code, line = cli.refusal(client.from_rpc_error(rpc, "seats.lan:7117"))  # type: ignore[arg-type]
    assert case.error.message in line
    assert code == EXIT.get(case.expected, cli.EXIT_FULL)
