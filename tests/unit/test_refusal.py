"""What a refusal lists: bounded in count and bytes, oldest first, as much as is disclosed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from seatclient.cli import sessions_table
from seatclient.events import SessionInfo

from seatd import config
from seatd.errors import ConfigError
from seatd.model import Holder, Session
from seatd.transport.refusal import BUDGET, MOST_LISTED, Disclosure, listed

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def session(i: int, text: str = "x") -> Session:
    holder = Holder(text * 64, text * 128, text * 255, "10.0.0.9", text * 64)
    return Session(i, holder, f"k{i}", "t" * 32, NOW, NOW, 0.0, 30.0)


def test_dialog_lists_the_oldest_fifty_without_ip() -> None:
    """The default lists at most 50 sessions, oldest first, with no IP; it shows the client
    version and when each was last seen."""
    shown = listed([session(i) for i in range(300, 0, -1)], NOW, Disclosure.DIALOG)
    assert [s.id for s in shown] == list(range(1, len(shown) + 1))
    assert len(shown) <= MOST_LISTED
    assert all(s.ip == "" and s.client_version == "x" * 64 for s in shown)
    assert all(s.HasField("last_seen_at") for s in shown)


def test_longest_names_stay_within_the_byte_budget() -> None:
    """Sessions whose texts are all at their limits in 4-byte characters still fit the budget,
    and at least one is listed."""
    shown = listed([session(i, "\U0001f600") for i in range(1, 1001)], NOW, Disclosure.FULL)
    assert 1 <= len(shown) < MOST_LISTED
    assert sum(s.ByteSize() + 4 for s in shown) <= BUDGET


def test_count_lists_nothing_and_full_adds_the_ip() -> None:
    """`count` lists no session; `full` shows the IP address."""
    sessions = [session(1)]
    assert listed(sessions, NOW, Disclosure.COUNT) == []
    assert [s.ip for s in listed(sessions, NOW, Disclosure.FULL)] == ["10.0.0.9"]


def test_refusal_disclosure_setting_names_its_choices() -> None:
    """server.refusal_disclosure takes count, dialog or full, and refuses anything else."""
    built = config.build({"server": {"refusal_disclosure": "count"}})
    assert built.server.refusal_disclosure is Disclosure.COUNT
    assert config.Config().server.refusal_disclosure is Disclosure.DIALOG
    with pytest.raises(ConfigError, match="'count', 'dialog', 'full'"):
        config.build({"server": {"refusal_disclosure": "everything"}})


def test_table_says_how_many_more_and_shows_ip_only_when_disclosed() -> None:
    """The `seat hold` table ends with "and N more", and has an IP column only with IPs."""
    info = SessionInfo(7, "AA", "Anne", "PC-1", "", NOW, 65.0)
    table = sessions_table([info], unlisted=949)
    assert table.splitlines()[0].split() == [
        "ID",
        "USER",
        "NAME",
        "COMPUTER",
        "STARTED",
        "(UTC)",
        "DURATION",
    ]
    assert table.splitlines()[-1] == "and 949 more"
    with_ip = sessions_table([SessionInfo(7, "AA", "Anne", "PC-1", "10.0.0.9", NOW, 65.0)])
    assert "IP" in with_ip.splitlines()[0].split() and "10.0.0.9" in with_ip
    assert sessions_table([], unlisted=3) == ""
