"""Every field of every request, checked before a servicer runs.

One rule per field (`RULES`, keyed by the message's full name and the field's proto name):
text length and characters, number ranges, durations and timestamps inside what the daemon
can represent, choices. A request that breaks one is INVALID_ARGUMENT naming the field as the
proto does (`evict_reason`, `filter.since`), so nothing out of range reaches the service to
surface later as NOT_FOUND or INTERNAL. A field without a rule is a test failure
(tests/unit/test_validate.py): a new field cannot skip this.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from seatd.auth import ROLES
from seatd.errors import InvalidArgument
from seatd.model import TEXT_LIMITS, check_text
from seatd.service import MAX_WAIT

# Session ids and journal sequence numbers are counted from 1 and stored as unsigned 64-bit
# keys; anything above the signed range is no id the daemon ever gave out.
MAX_ID = 2**63 - 1
# Far above any site; keeps prices and seat arithmetic in ordinary numbers.
MAX_SEATS = 100_000
# A lease token is 32 characters (secrets.token_urlsafe(24)); allow room, not megabytes.
TOKEN_LIMIT = 128
# A signed licence file is a few kilobytes.
LICENCE_LIMIT = 64 * 1024
# A policy file: a thousand groups of a few lines each.
POLICY_LIMIT = 256 * 1024
# Journal entry kinds in one filter.
MAX_KINDS = 32
# What google.protobuf.Timestamp can hold: 0001-01-01 to 9999-12-31 (UTC).
_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)


@dataclass(frozen=True, slots=True)
class Text:
    limit: int
    required: bool = False
    # Licence files span lines; every other field is one line without control characters.
    multiline: bool = False


@dataclass(frozen=True, slots=True)
class Choice:
    allowed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Number:
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class Seconds:
    """A google.protobuf.Duration between `low` and `high` seconds, when present."""

    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Time:
    """A google.protobuf.Timestamp the calendar can hold, when present."""


@dataclass(frozen=True, slots=True)
class Nested:
    """A message of ours, checked field by field when present."""


@dataclass(frozen=True, slots=True)
class Each:
    """A repeated field: at most `most` values, each following `rule`."""

    rule: Text
    most: int


Rule = Text | Choice | Number | Seconds | Time | Nested | Each


def _text(name: str, *, required: bool = False) -> Text:
    return Text(TEXT_LIMITS[name], required=required)


REQUIRED_ID = Number(1, MAX_ID)
OPTIONAL_ID = Number(0, MAX_ID)
TOKEN = Text(TOKEN_LIMIT, required=True)
SEATS = Number(1, MAX_SEATS)

RULES: dict[str, Rule] = {
    # SeatService
    "seatd.v1.AcquireRequest.user_code": _text("user_code", required=True),
    "seatd.v1.AcquireRequest.user_name": _text("user_name"),
    "seatd.v1.AcquireRequest.hostname": _text("hostname"),
    "seatd.v1.AcquireRequest.client_version": _text("client_version"),
    "seatd.v1.AcquireRequest.idempotency_key": _text("idempotency_key", required=True),
    "seatd.v1.AcquireRequest.evict_session_id": OPTIONAL_ID,
    "seatd.v1.AcquireRequest.evict_reason": _text("reason"),
    "seatd.v1.AcquireRequest.wait": Seconds(0.0, MAX_WAIT),
    "seatd.v1.WaitForSeatRequest.acquire": Nested(),
    "seatd.v1.KeepaliveRequest.attach": Nested(),
    "seatd.v1.KeepaliveRequest.ping": Nested(),
    "seatd.v1.Attach.session_id": REQUIRED_ID,
    "seatd.v1.Attach.lease_token": TOKEN,
    "seatd.v1.Ping.seq": Number(0, 2**64 - 1),
    "seatd.v1.Ping.idle": Seconds(0.0, 366 * 86400.0),
    "seatd.v1.CheckPolicyRequest.toml": Text(POLICY_LIMIT, required=True, multiline=True),
    "seatd.v1.ReleaseRequest.session_id": REQUIRED_ID,
    "seatd.v1.ReleaseRequest.lease_token": TOKEN,
    # AdminService
    "seatd.v1.EvictRequest.session_id": REQUIRED_ID,
    "seatd.v1.EvictRequest.reason": _text("reason"),
    "seatd.v1.CreateTokenRequest.name": _text("by", required=True),
    "seatd.v1.CreateTokenRequest.role": Choice(ROLES),
    "seatd.v1.RevokeTokenRequest.name": _text("by", required=True),
    "seatd.v1.ImportLicenceRequest.licence_text": Text(
        LICENCE_LIMIT, required=True, multiline=True
    ),
    # The one-time code from the vendor (seatd-cloud subscribe / registration-code).
    "seatd.v1.RegisterInstallationRequest.registration_code": Text(100, required=True),
    "seatd.v1.SetActiveSeatsRequest.seats": SEATS,
    "seatd.v1.OrderSeatsRequest.seats": SEATS,
    # A flag: false or true, nothing else to check.
    "seatd.v1.OrderSeatsRequest.quote_only": Number(0, 1),
    "seatd.v1.ReadJournalRequest.after_seq": OPTIONAL_ID,
    # 0 means the default page (100).
    "seatd.v1.ReadJournalRequest.limit": Number(0, 1000),
    "seatd.v1.ReadJournalRequest.filter": Nested(),
    "seatd.v1.WatchJournalRequest.after_seq": OPTIONAL_ID,
    "seatd.v1.WatchJournalRequest.filter": Nested(),
    "seatd.v1.JournalFilter.since": Time(),
    "seatd.v1.JournalFilter.until": Time(),
    "seatd.v1.JournalFilter.user_code": _text("user_code"),
    "seatd.v1.JournalFilter.session_id": OPTIONAL_ID,
    "seatd.v1.JournalFilter.kinds": Each(Text(64, required=True), MAX_KINDS),
}


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
M = TypeVar("M", bound=Message)


def validated(
    method: Callable[Concatenate[S, M, P], Awaitable[R]],
) -> Callable[Concatenate[S, M, P], Awaitable[R]]:
    """Check the request's fields before the servicer method runs."""

    @functools.wraps(method)
    async def wrapper(self: S, request: M, /, *args: P.args, **kwargs: P.kwargs) -> R:
        check(request)
        return await method(self, request, *args, **kwargs)

    return wrapper


# One step per field: given the request, raise InvalidArgument if that field breaks its rule.
Step = Callable[[Message], None]


def check(message: Message, prefix: str = "") -> None:
    """Raise InvalidArgument for the first field of `message` that breaks its rule."""
    for step in _plan(message.DESCRIPTOR, prefix):
        step(message)


@functools.cache
def _plan(descriptor: Descriptor, prefix: str) -> tuple[Step, ...]:
    # Built once per message type (and path): the field's name as reported, its rule and the
    # family's check are decided here, so a request costs one call per field and no lookups
    # or string formatting. Every field has a rule (the unit test sees to it).
    return tuple(
        _step(field, RULES[f"{descriptor.full_name}.{field.name}"], f"{prefix}{field.name}")
        for field in descriptor.fields
    )


def _step(field: FieldDescriptor, rule: Rule, name: str) -> Step:
    attr = field.name
    if field.message_type is not None and not field.is_repeated:
        inner = _message_check(field.message_type, rule, name)

        def present(message: Message) -> None:
            if message.HasField(attr):
                inner(getattr(message, attr))

        return present
    value_check = _value_check(rule, name)
    return lambda message: value_check(getattr(message, attr))


def _message_check(kind: Descriptor, rule: Rule, name: str) -> Callable[[Any], None]:
    if isinstance(rule, Nested):
        inner = f"{name}."
        return lambda value: check(value, inner)
    if isinstance(rule, Seconds) and kind.full_name == Duration.DESCRIPTOR.full_name:
        return lambda value: _check_duration(name, rule, value)
    if isinstance(rule, Time) and kind.full_name == Timestamp.DESCRIPTOR.full_name:
        return lambda value: _check_timestamp(name, value)
    raise AssertionError(f"rule {rule} does not fit the message field {name}")


def _value_check(rule: Rule, name: str) -> Callable[[Any], None]:
    if isinstance(rule, Text):
        if rule.required:
            return lambda value: _check_text(name, rule, value)

        def optional(value: str) -> None:
            if value:  # the usual case for an optional field: nothing to look at
                _check_text(name, rule, value)

        return optional
    if isinstance(rule, Choice):

        def choice(value: object) -> None:
            if value not in rule.allowed:
                raise InvalidArgument(name, f"must be one of {', '.join(rule.allowed)}")

        return choice
    if isinstance(rule, Number):
        low, high = rule.low, rule.high

        def number(value: int) -> None:
            if not low <= value <= high:
                raise InvalidArgument(name, f"must be between {low} and {high}")

        return number
    if isinstance(rule, Each):
        each = rule

        def values(value: Iterable[object]) -> None:
            items = list(value)
            if len(items) > each.most:
                raise InvalidArgument(name, f"holds more than {each.most} values")
            for item in items:
                _check_text(name, each.rule, str(item))

        return values
    raise AssertionError(f"rule {rule} does not fit the field {name}")


def _check_text(name: str, rule: Text, value: str) -> None:
    if not rule.multiline:
        check_text(name, value, required=rule.required, limit=rule.limit)
        return
    if rule.required and not value.strip():
        raise InvalidArgument(name, "is required")
    if len(value) > rule.limit:
        raise InvalidArgument(name, f"is longer than {rule.limit} characters")


def _check_duration(name: str, rule: Seconds, value: Duration) -> None:
    # Checked on the raw fields: converting first is what overflowed (wait = 1e15 s).
    if abs(value.nanos) >= 1_000_000_000 or value.seconds * value.nanos < 0:
        raise InvalidArgument(name, "is not a valid duration")
    seconds = value.seconds + value.nanos / 1e9
    if not rule.low <= seconds <= rule.high:
        raise InvalidArgument(name, f"must be between {rule.low:g} and {rule.high:g} seconds")


def _check_timestamp(name: str, value: Timestamp) -> None:
    low, high = _TIMESTAMP_SECONDS
    if not (low <= value.seconds <= high and 0 <= value.nanos < 1_000_000_000):
        raise InvalidArgument(name, "must be a date between the years 1 and 9999")
