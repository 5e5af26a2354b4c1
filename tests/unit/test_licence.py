"""Licences: the signed file, the rules by the day, and trusted time. Fake clocks only."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seatd.entitlement import Edition, Mode, Status
from seatd.errors import LicenceRefusesGrant, LicenceRejected, SeatsNotPurchased
from seatd.licence import rules
from seatd.licence.book import LicenceBook
from seatd.licence.rules import ClockChange, LicenceConfig, TrustedTime
from seatd.licence.signing import BEGIN, END, generate, sign, verify
from tests.fakes import FakeClock
from tests.licences import BASE_ID, VENDOR, licence, signed, trusted

KEYS = trusted(VENDOR)


def envelope(text: str) -> dict[str, str]:
    body = "".join(text.split(BEGIN)[1].split(END)[0].split())
    return json.loads(base64.b64decode(body))  # type: ignore[no-any-return]


def rewrap(env: dict[str, str]) -> str:
    body = base64.b64encode(json.dumps(env).encode()).decode()
    return f"{BEGIN}\n{body}\n{END}\n"


def test_signed_licence_verifies_to_the_same_licence() -> None:
    """A file made by `sign` verifies back to exactly the licence that was signed."""
    assert verify(signed(), KEYS) == licence()


@pytest.mark.parametrize("part", ["payload", "sig"])
def test_flipping_any_byte_of_payload_or_signature_is_refused(part: str) -> None:
    """Flip any single byte of the payload or the signature: the signature no longer checks."""
    env = envelope(signed())
    raw = base64.b64decode(env[part])
    for i in range(len(raw)):
        tampered = bytearray(raw)
        tampered[i] ^= 0x20
        with pytest.raises(LicenceRejected) as refused:
            verify(rewrap({**env, part: base64.b64encode(bytes(tampered)).decode()}), KEYS)
        assert refused.value.reason == "LICENCE_BAD_SIGNATURE"


def test_seats_edited_in_the_payload_are_refused() -> None:
    """The classic forgery, 2 seats made 200, does not verify."""
    env = envelope(signed())
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["seats"] = 200
    forged = {**env, "payload": base64.b64encode(json.dumps(payload).encode()).decode()}
    with pytest.raises(LicenceRejected, match="altered"):
        verify(rewrap(forged), KEYS)


def test_unknown_key_is_refused_with_its_id() -> None:
    """A licence signed by a key the daemon does not trust names that key."""
    other = generate("vendor-z")
    with pytest.raises(LicenceRejected) as refused:
        verify(sign(licence(), other), KEYS)
    assert refused.value.reason == "LICENCE_UNKNOWN_KEY"
    assert "vendor-z" in refused.value.message


def test_key_rotation_trusts_old_and_new_licences() -> None:
    """With both keys trusted, licences from the old and the new key verify."""
    new = generate("vendor-b")
    both = trusted(VENDOR, new)
    assert verify(signed(), both).serial == "L-TEST-1"
    assert verify(sign(licence(serial="L-NEW"), new), both).serial == "L-NEW"


def test_a_signature_for_another_purpose_does_not_verify() -> None:
    """The signature covers a domain prefix: the key signing the bare payload is not enough."""
    env = envelope(signed())
    payload = base64.b64decode(env["payload"])
    bare = VENDOR.private.sign(payload)
    with pytest.raises(LicenceRejected, match="altered"):
        verify(rewrap({**env, "sig": base64.b64encode(bare).decode()}), KEYS)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "LICENCE_MALFORMED"),
        ("hello", "LICENCE_MALFORMED"),
        (f"{BEGIN}\n!!!\n{END}", "LICENCE_MALFORMED"),
        (f"{BEGIN}\n{base64.b64encode(b'[1,2]').decode()}\n{END}", "LICENCE_MALFORMED"),
    ],
)
def test_garbage_is_refused_as_malformed(text: str, reason: str) -> None:
    """Text that is no licence file is refused as malformed, not a crash."""
    with pytest.raises(LicenceRejected) as refused:
        verify(text, KEYS)
    assert refused.value.reason == reason


@given(st.binary(max_size=600))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    """Any byte string is refused with LicenceRejected, never another exception."""
    with pytest.raises(LicenceRejected):
        verify(data, KEYS)


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_random_mutations_of_a_valid_file_are_refused(data: st.DataObject) -> None:
    """Any mutation of a valid file's content (flip, insert or delete a byte) is refused, and
    never crashes. Whitespace is not content: copy and paste may add or drop it."""
    original = signed().encode()
    raw = bytearray(original)
    start = raw.index(b"\n") + 1
    end = raw.rindex(b"\n-----END")
    i = data.draw(st.integers(min_value=start, max_value=end - 1))
    how = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    if how == "flip":
        raw[i] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]))
    elif how == "insert":
        raw.insert(i, data.draw(st.integers(0, 255)))
    else:
        del raw[i]

    def content(b: bytes) -> bytes:
        return b"".join(b.split())

    if content(bytes(raw)) == content(original):
        return
    with pytest.raises(LicenceRejected):
        verify(bytes(raw), KEYS)


def test_payload_with_wrong_types_is_refused_precisely() -> None:
    """A signed payload with a field of the wrong type names the field."""
    from seatd.licence.document import parse_payload

    good = licence().to_payload()
    for field, value, words in [
        ("seats", "2", "seats"),
        ("seats", 0, "seats"),
        ("edition", "GOLD", "edition"),
        ("valid_until", "31/12", "valid_until"),
        ("base_id", "123", "base_id"),
    ]:
        with pytest.raises(LicenceRejected, match=words):
            parse_payload(json.dumps({**good, field: value}).encode())


# -- the rules by the day ---------------------------------------------------------------------


def test_no_licence_is_free_standard_without_cap() -> None:
    """With no licence: Standard/Local, status free, no cap, no Enterprise features."""
    view = rules.assess(None, None, date(2026, 6, 1), 14, BASE_ID)
    assert (view.edition, view.mode, view.status, view.seat_cap, view.features) == (
        Edition.STANDARD,
        Mode.LOCAL,
        Status.FREE,
        None,
        (),
    )


@pytest.mark.parametrize(
    ("edition", "mode", "capped"),
    [
        (Edition.STANDARD, Mode.LOCAL, False),
        (Edition.STANDARD, Mode.CLOUD, True),
        (Edition.ENTERPRISE, Mode.LOCAL, True),
        (Edition.ENTERPRISE, Mode.CLOUD, True),
    ],
)
def test_which_licences_carry_a_cap(edition: Edition, mode: Mode, capped: bool) -> None:
    """Standard/Local is uncapped; Standard/Cloud and every Enterprise licence carry a cap."""
    view = rules.assess(licence(edition=edition, mode=mode), None, date(2026, 6, 1), 14, BASE_ID)
    assert (view.seat_cap == 2) is capped and (view.seat_cap is None) is not capped


@pytest.mark.parametrize(
    ("today", "status", "grace_left"),
    [
        (date(2026, 12, 31), Status.VALID, 0),
        (date(2027, 1, 1), Status.GRACE, 13),
        (date(2027, 1, 14), Status.GRACE, 0),
        (date(2027, 1, 15), Status.EXPIRED, 0),
    ],
)
def test_status_at_the_day_boundaries(today: date, status: Status, grace_left: int) -> None:
    """Valid through the renewal day; then 14 days of grace; then expired."""
    view = rules.assess(licence(), None, today, 14, BASE_ID)
    assert (view.status, view.grace_days_left) == (status, grace_left)


def test_active_seats_cap_the_grants() -> None:
    """The cap is the active seats, never more than purchased."""
    assert rules.assess(licence(seats=5), 3, date(2026, 6, 1), 14, BASE_ID).seat_cap == 3
    assert rules.assess(licence(seats=5), 9, date(2026, 6, 1), 14, BASE_ID).seat_cap == 5


@pytest.mark.parametrize(
    ("changes", "today", "reason"),
    [
        ({"base_id": "11111111111111111"}, date(2026, 6, 1), "LICENCE_WRONG_BASE"),
        ({"valid_until": date(2025, 12, 1)}, date(2026, 6, 1), "LICENCE_BAD_DATES"),
        ({"valid_from": date(2026, 7, 1)}, date(2026, 6, 1), "LICENCE_NOT_YET_VALID"),
        ({}, date(2027, 2, 1), "LICENCE_EXPIRED"),
    ],
)
def test_what_cannot_be_installed(changes: dict[str, object], today: date, reason: str) -> None:
    """Another base, dates that make no sense, not yet valid, long expired: refused precisely."""
    with pytest.raises(LicenceRejected) as refused:
        rules.check_installable(licence(**changes), BASE_ID, today, 14)
    assert refused.value.reason == reason


# -- no rollback to an older licence -----------------------------------------------------------

NEWER = licence(serial="L-NEW", seats=3, issued_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
OLDER = licence(serial="L-OLD", seats=10, issued_at=datetime(2026, 1, 1, 8, 0, tzinfo=UTC))


def test_a_licence_issued_before_the_newest_is_refused() -> None:
    """An older licence (more seats, say) cannot replace one issued after it."""
    with pytest.raises(LicenceRejected, match="cannot be rolled back") as refused:
        rules.Lineage.of(NEWER).check(OLDER)
    assert refused.value.reason == "LICENCE_SUPERSEDED"


def test_licences_issued_in_the_same_second_are_ordered_by_serial() -> None:
    """Same issue time: the lower serial is the older one."""
    same = licence(serial="L-A", issued_at=NEWER.issued_at)
    with pytest.raises(LicenceRejected):
        rules.Lineage.of(NEWER).check(same)
    rules.Lineage.of(same).check(NEWER)
    rules.Lineage.of(NEWER).check(NEWER)


def test_a_replacement_may_be_older_and_what_it_replaced_never_returns() -> None:
    """A licence naming the newest in `replaces` goes in; the replaced serial is then refused."""
    replacement = licence(serial="L-FIX", issued_at=OLDER.issued_at, replaces=("L-NEW",))
    lineage = rules.Lineage.of(NEWER)
    lineage.check(replacement)
    after = lineage.after(replacement)
    with pytest.raises(LicenceRejected, match="was replaced"):
        after.check(NEWER)
    assert rules.Lineage.from_json(after.to_json()) == after


def test_replaces_is_signed_and_parsed() -> None:
    """`replaces` travels in the signed payload; a licence without it signs as before."""
    text = sign(licence(replaces=("L-NEW", "L-OTHER")), VENDOR)
    assert verify(text, KEYS).replaces == ("L-NEW", "L-OTHER")
    assert "replaces" not in licence().to_payload()


# -- trusted time -----------------------------------------------------------------------------

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_clock_set_back_is_detected_once_and_time_keeps_going() -> None:
    """A wall clock an hour behind is a rollback, reported once; trusted time carries on."""
    tt = TrustedTime(T0, mono=0.0, tolerance=300)
    first = tt.observe(T0 + timedelta(seconds=60), 60.0)
    assert (first.now, first.change) == (T0 + timedelta(seconds=60), None)
    back = tt.observe(T0 - timedelta(hours=1), 120.0)
    assert (back.now, back.change) == (T0 + timedelta(seconds=120), ClockChange.ROLLED_BACK)
    still = tt.observe(T0 - timedelta(hours=1), 180.0)
    assert (still.now, still.change) == (T0 + timedelta(seconds=180), None)


def test_small_drift_within_tolerance_is_not_a_rollback() -> None:
    """A clock a few seconds behind (NTP correction) is not reported."""
    tt = TrustedTime(T0, mono=0.0, tolerance=300)
    assert tt.observe(T0 - timedelta(seconds=100), 0.0).change is None


def test_restart_floor_catches_a_clock_set_back_while_stopped() -> None:
    """The last time seen before a restart is a floor: a clock behind it is a rollback."""
    tt = TrustedTime(floor=T0, mono=5.0, tolerance=300)
    reading = tt.observe(T0 - timedelta(days=2), 5.0)
    assert (reading.now, reading.change) == (T0, ClockChange.ROLLED_BACK)


def test_a_clock_set_ahead_mid_run_is_found_and_not_believed() -> None:
    """200 days ahead within a run: reported once, the time in use carries on, the floor too."""
    tt = TrustedTime(T0, mono=0.0, tolerance=300)
    tt.observe(T0, 0.0)
    ahead = tt.observe(T0 + timedelta(days=200, seconds=60), 60.0)
    assert (ahead.now, ahead.floor, ahead.change) == (
        T0 + timedelta(seconds=60),
        T0 + timedelta(seconds=60),
        ClockChange.JUMPED_AHEAD,
    )
    assert tt.observe(T0 + timedelta(days=200, seconds=120), 120.0).change is None
    back = tt.observe(T0 + timedelta(seconds=180), 180.0)
    assert (back.now, back.change, tt.jumped) == (T0 + timedelta(seconds=180), None, False)


def test_a_clock_ahead_at_start_is_used_but_never_raises_the_floor() -> None:
    """After a restart a clock far ahead is believed (downtime looks the same), but the floor
    only follows the monotonic clock, so nothing of it remains once corrected."""
    tt = TrustedTime(T0, mono=0.0, tolerance=300)
    first = tt.observe(T0 + timedelta(days=200), 0.0)
    assert (first.now, first.floor, first.change) == (T0 + timedelta(days=200), T0, None)
    later = tt.observe(T0 + timedelta(days=200, seconds=3600), 3600.0)
    assert later.floor == T0 + timedelta(seconds=3600)
    corrected = tt.observe(T0 + timedelta(seconds=3660), 3660.0)
    assert (corrected.now, corrected.change) == (T0 + timedelta(seconds=3660), None)


def test_signed_cloud_time_finds_a_clock_ahead_since_the_start() -> None:
    """Once the cloud's signed time is in, a wall clock far ahead of it is set ahead."""
    tt = TrustedTime(T0, mono=0.0, tolerance=300)
    tt.observe(T0 + timedelta(days=200), 0.0)
    tt.signed(T0 + timedelta(days=1), 10.0)
    reading = tt.observe(T0 + timedelta(days=200, seconds=20), 20.0)
    assert (reading.now, reading.change) == (
        T0 + timedelta(days=1, seconds=10),
        ClockChange.JUMPED_AHEAD,
    )


def test_a_first_start_takes_the_wall_clock_as_its_floor() -> None:
    """With no history at all, the first reading is the floor a later set-back is found by."""
    tt = TrustedTime(datetime(1970, 1, 1, tzinfo=UTC), mono=0.0, tolerance=300, first_start=True)
    assert tt.observe(T0, 0.0).floor == T0
    assert tt.observe(T0 - timedelta(days=3), 60.0).change is ClockChange.ROLLED_BACK


def test_a_clock_within_the_slack_raises_the_floor() -> None:
    """A wall reading a few seconds ahead of the carried floor is proven enough to keep."""
    tt = TrustedTime(T0, mono=0.0, tolerance=300)
    assert tt.observe(T0 + timedelta(seconds=5), 0.0).floor == T0 + timedelta(seconds=5)


def test_book_uses_trusted_time_for_licence_dates() -> None:
    """Setting the clock back into the validity period does not revive an expired licence."""
    clock = FakeClock(start=datetime(2027, 2, 1, tzinfo=UTC))
    book = LicenceBook(
        base_id=BASE_ID,
        config=LicenceConfig(),
        trusted=KEYS,
        clock=clock,
        text=signed(),
        last_seen=datetime(2027, 2, 1, tzinfo=UTC),
    )
    assert isinstance(book.grant_refusal(), LicenceRefusesGrant)
    clock.set_wall_back(60 * 86400)
    assert book.view().status is Status.EXPIRED
    assert book.observe().change is ClockChange.ROLLED_BACK


def test_book_refuses_active_seats_above_purchased() -> None:
    """More active seats than purchased says to order more; the free licence has no cap."""
    clock = FakeClock(start=datetime(2026, 6, 1, tzinfo=UTC))
    book = LicenceBook(
        base_id=BASE_ID, config=LicenceConfig(), trusted=KEYS, clock=clock, text=signed()
    )
    with pytest.raises(SeatsNotPurchased, match="order 1 more"):
        book.check_active(3)
    assert book.check_active(1) == 2
    free = LicenceBook(base_id=BASE_ID, config=LicenceConfig(), trusted=KEYS, clock=clock)
    with pytest.raises(SeatsNotPurchased, match="no seat cap"):
        free.check_active(1)


def test_book_keeps_a_later_licence_until_its_start_date() -> None:
    """A licence starting after today is sorted as kept-for-later and is due on its day."""
    clock = FakeClock(start=datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    book = LicenceBook(
        base_id=BASE_ID, config=LicenceConfig(), trusted=KEYS, clock=clock, text=signed()
    )
    text = signed(serial="L-TEST-2", valid_from=date(2027, 1, 1), valid_until=date(2027, 12, 31))
    later, kept = book.check_any(text)
    assert kept is True
    book.staged(later, text)
    assert book.due() is None
    clock.advance(3600)
    assert book.due() == text
    book.installed(later)
    assert (book.licence, book.next, book.due()) == (later, None, None)


def test_a_licence_for_later_must_be_for_this_base() -> None:
    """A later licence for another base id is refused like an import would be."""
    clock = FakeClock(start=datetime(2026, 6, 1, tzinfo=UTC))
    book = LicenceBook(base_id=BASE_ID, config=LicenceConfig(), trusted=KEYS, clock=clock)
    other = signed(base_id="11111111111111111", valid_from=date(2027, 1, 1))
    with pytest.raises(LicenceRejected, match="base id 11111111111111111"):
        book.check_any(other)


def test_book_view_is_computed_again_only_when_its_inputs_change() -> None:
    """The same view object while licence, active seats and date hold; a new one after each."""
    clock = FakeClock(start=datetime(2026, 6, 1, 12, tzinfo=UTC))
    book = LicenceBook(
        base_id=BASE_ID, config=LicenceConfig(), trusted=KEYS, clock=clock, text=signed()
    )
    first = book.view()
    assert book.view() is first
    book.active = 1
    lowered = book.view()
    assert (lowered is not first, lowered.seat_cap) == (True, 1)
    clock.advance(86400)
    next_day = book.view()
    assert (next_day is not lowered, next_day.days_left) == (True, lowered.days_left - 1)
    book.cleared()
    assert book.view().status is Status.FREE
