"""Coalescing repeated refusals and denials (pure, FakeClock)."""

from __future__ import annotations

from seatd.model import Holder, Refused, Repeated
from seatd.repeats import Repeats
from tests.fakes import FakeClock

HOLDER = Holder("AA", "AA name", "PC-1", "10.0.0.5", "15")


def refused(clock: FakeClock) -> Refused:
    return Refused(HOLDER, "all connections in use", 2, 2, clock.wall())


def test_the_first_refusal_of_a_window_is_journaled_at_once() -> None:
    """A source's first refusal is returned for the journal immediately."""
    clock = FakeClock()
    repeats = Repeats(window=60)
    first = refused(clock)
    assert repeats.observe("10.0.0.5", first, clock.monotonic()) == [first]


def test_repeats_within_a_window_become_one_entry_with_their_count() -> None:
    """1,000 repeats within the window journal nothing until it closes, then one entry
    counting them, from the first repeat to the last."""
    clock = FakeClock()
    repeats = Repeats(window=60)
    repeats.observe("10.0.0.5", refused(clock), clock.monotonic())
    clock.advance(1)
    since = clock.wall()
    for _ in range(1000):
        assert repeats.observe("10.0.0.5", refused(clock), clock.monotonic()) == []
        clock.advance(0.05)
    assert repeats.flush(clock.monotonic()) == []  # the window is still open
    clock.advance(10)
    [summary] = repeats.flush(clock.monotonic())
    assert isinstance(summary, Repeated)
    assert (summary.count, summary.since) == (1000, since)
    assert repeats.open_windows == 0


def test_the_next_refusal_after_a_window_closes_it_and_opens_another() -> None:
    """After the window, the next refusal brings the summary and is journaled itself."""
    clock = FakeClock()
    repeats = Repeats(window=60)
    repeats.observe("10.0.0.5", refused(clock), clock.monotonic())
    repeats.observe("10.0.0.5", refused(clock), clock.monotonic())
    clock.advance(61)
    later = refused(clock)
    out = repeats.observe("10.0.0.5", later, clock.monotonic())
    assert [type(e) for e in out] == [Repeated, Refused]
    assert out[1] is later


def test_sources_have_their_own_windows() -> None:
    """Another source's first refusal is journaled at once, whatever the first one does."""
    clock = FakeClock()
    repeats = Repeats(window=60)
    repeats.observe("10.0.0.5", refused(clock), clock.monotonic())
    assert len(repeats.observe("10.0.0.6", refused(clock), clock.monotonic())) == 1


def test_a_window_without_repeats_closes_without_an_entry() -> None:
    """A single refusal needs no summary."""
    clock = FakeClock()
    repeats = Repeats(window=60)
    repeats.observe("10.0.0.5", refused(clock), clock.monotonic())
    clock.advance(60)
    assert repeats.flush(clock.monotonic()) == []


def test_shutdown_flushes_every_open_window() -> None:
    """At shutdown the counts of windows still open are journaled too."""
    clock = FakeClock()
    repeats = Repeats(window=60)
    for _ in range(3):
        repeats.observe("10.0.0.5", refused(clock), clock.monotonic())
    [summary] = repeats.flush(clock.monotonic(), everything=True)
    assert summary.count == 2


def test_too_many_sources_close_the_oldest_window_early() -> None:
    """Past max_sources open windows the oldest closes (with its count): memory is bounded."""
    clock = FakeClock()
    repeats = Repeats(window=60, max_sources=2)
    repeats.observe("a", refused(clock), clock.monotonic())
    repeats.observe("a", refused(clock), clock.monotonic())
    repeats.observe("b", refused(clock), clock.monotonic())
    out = repeats.observe("c", refused(clock), clock.monotonic())
    assert [type(e) for e in out] == [Refused, Repeated]
    assert repeats.open_windows == 2
