"""The request rules: one per field, each family refusing what it must and naming the field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from seatclient.v1 import admin_pb2, seat_pb2

from seatd.errors import InvalidArgument
from seatd.transport import validate


def fields_reached(message: Descriptor) -> Iterator[str]:
    """Every field of `message` and of the seatd messages inside it."""
    for field in message.fields:
        yield f"{message.full_name}.{field.name}"
        inner = field.message_type
        if inner is not None and inner.full_name.startswith("seatd."):
            yield from fields_reached(inner)


def request_fields() -> set[str]:
    found: set[str] = set()
    for module, name in ((seat_pb2, "SeatService"), (admin_pb2, "AdminService")):
        for method in module.DESCRIPTOR.services_by_name[name].methods:
            found.update(fields_reached(method.input_type))
    return found


def test_every_field_of_every_request_has_a_rule() -> None:
    """Each field any SeatService or AdminService request can carry has exactly one rule."""
    assert request_fields() == set(validate.RULES)


def refused_field(message: object) -> str:
    with pytest.raises(InvalidArgument) as refused:
        validate.check(message)  # type: ignore[arg-type]
    return refused.value.field


def test_text_rule_bounds_length_and_characters() -> None:
    """Text is refused when required and blank, too long, or holding control characters."""
    assert refused_field(admin_pb2.EvictRequest(session_id=1, reason="r" * 257)) == "reason"
    assert refused_field(admin_pb2.EvictRequest(session_id=1, reason="a\tb")) == "reason"
    assert refused_field(admin_pb2.RevokeTokenRequest(name="  ")) == "name"
    validate.check(admin_pb2.EvictRequest(session_id=1, reason="r" * 256))


def test_number_rule_bounds_ids_and_seats() -> None:
    """Ids start at 1 and stay in the signed 64-bit range; seats run from 1 to 100,000."""
    assert refused_field(seat_pb2.ReleaseRequest(lease_token="t")) == "session_id"
    assert refused_field(admin_pb2.SetActiveSeatsRequest(seats=100_001)) == "seats"
    validate.check(seat_pb2.ReleaseRequest(session_id=2**63 - 1, lease_token="t"))
    validate.check(admin_pb2.SetActiveSeatsRequest(seats=100_000))


@pytest.mark.parametrize(
    "wait",
    [
        Duration(seconds=10**15),
        Duration(seconds=-1),
        Duration(seconds=3601),
        Duration(seconds=1, nanos=-1),
        Duration(nanos=1_000_000_000),
    ],
    ids=["1e15", "negative", "above an hour", "mixed signs", "nanos overflow"],
)
def test_duration_rule_refuses_what_no_wait_can_be(wait: Duration) -> None:
    """A wait out of 0..3600 s, or not a valid Duration at all, is refused as `wait`."""
    request = seat_pb2.AcquireRequest(user_code="AA", idempotency_key="k")
    request.wait.CopyFrom(wait)
    assert refused_field(request) == "wait"


def test_timestamp_rule_refuses_dates_outside_the_calendar() -> None:
    """A filter date beyond year 9999 is refused with its path `filter.since`."""
    request = admin_pb2.ReadJournalRequest(
        filter=admin_pb2.JournalFilter(since=Timestamp(seconds=253_402_300_800))
    )
    assert refused_field(request) == "filter.since"


def test_choice_rule_names_the_roles() -> None:
    """A role outside the role table is refused, listing the roles."""
    with pytest.raises(InvalidArgument, match="owner, buyer, admin, viewer"):
        validate.check(admin_pb2.CreateTokenRequest(name="ci", role="root"))


def test_repeated_rule_bounds_count_and_each_value() -> None:
    """A kinds filter holds at most 32 kinds, each a non-blank short word."""
    many = admin_pb2.JournalFilter(kinds=[f"k{i}" for i in range(33)])
    blank = admin_pb2.JournalFilter(kinds=["granted", ""])
    assert refused_field(admin_pb2.ReadJournalRequest(filter=many)) == "filter.kinds"
    assert refused_field(admin_pb2.ReadJournalRequest(filter=blank)) == "filter.kinds"
