"""Domain values -> protobuf messages: the hand-made conversions agree with protobuf's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from seatd.transport import convert

# A day from either end, so that no zone offset moves a value off the calendar.
DAY = timedelta(days=1)
ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


# hypothesis takes naive bounds; the zone is applied to each value below.
CALENDAR = st.datetimes(datetime.min + DAY, datetime.max - DAY)  # noqa: DTZ901


@given(CALENDAR, ZONES)
def test_timestamp_is_what_from_datetime_gives(when: datetime, zone: timezone | None) -> None:
    """Any datetime, naive (UTC) or in any zone, converts as Timestamp.FromDatetime does."""
    when = when.replace(tzinfo=zone)
    expected = Timestamp()
    expected.FromDatetime(when)
    assert convert.timestamp(when) == expected
