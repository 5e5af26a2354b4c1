"""The pages' templates, rendered with views of real admin answers, per language and role."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from seatclient.v1 import admin_pb2, types_pb2

from seatd.auth import ROLES, TABLE
from seatd.licence import detail
from seatd.usage import Day
from seatd.web import chart, templating, views

NOW = datetime(2025, 12, 31, 15, 16, 47, tzinfo=UTC)


def ts(dt: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(dt)
    return t


def may_for(role: str) -> Any:
    return lambda action: role in TABLE[action]


def render(name: str, role: str = "owner", lang: str = "en", **values: Any) -> str:
    return templating.page(
        lang,
        name,
        now=NOW,
        path="/",
        user="web:token:alice",
        role=role,
        csrf_token="CSRF123",
        may=may_for(role),
        **values,
    )


def listed() -> admin_pb2.ListSessionsResponse:
    r = admin_pb2.ListSessionsResponse(in_use=2, seat_cap=2, server_time=ts(NOW))
    for sid, code, started in ((240, "AA", 291), (241, "BB", 297)):
        r.sessions.add(
            id=sid,
            user_code=code,
            user_name=f"{code} {code}",
            hostname="ICS01-PC",
            ip="192.168.1.148",
            started_at=ts(NOW - timedelta(seconds=started)),
            last_seen_at=ts(NOW),
        ).duration.seconds = started
    return r


def sessions_values(**extra: Any) -> dict[str, Any]:
    return {
        **views.sessions(listed()),
        "queue": [],
        "default_reason": views.DEFAULT_REASON,
        "page": "sessions",
        **extra,
    }


def licence_detail() -> types_pb2.LicenceDetail:
    d = types_pb2.LicenceDetail(in_use=2)
    s = d.summary
    s.edition, s.mode, s.period = types_pb2.EDITION_ENTERPRISE, types_pb2.MODE_LOCAL, 3
    s.status = types_pb2.LICENCE_STATUS_VALID
    s.seat_cap, s.seats_purchased, s.days_left, s.auto_renew = 2, 3, 41, True
    s.base_id, s.serial = "82520020025896075", "SER-1"
    s.valid_until.CopyFrom(ts(NOW + timedelta(days=41)))
    d.licensee.company, d.licensee.city = "ICS Informatique", "Paris"
    d.cloud_url, d.failed_syncs, d.last_sync_error = "https://cloud", 2, "connection refused"
    d.last_sync.CopyFrom(ts(NOW - timedelta(hours=7)))
    return d


def overview(role: str, lang: str = "en") -> str:
    lic = detail.fields(licence_detail())
    return render("overview.html", role, lang, lic=lic, place=detail.place(lic), page="overview")


@pytest.mark.parametrize("role", ROLES)
def test_the_disconnect_control_shows_only_for_roles_that_may_evict(role: str) -> None:
    """Owner and admin see a Disconnect button per session and the dialog; others none."""
    html = render("sessions.html", role, **sessions_values())
    assert ('data-evict="240"' in html) is (role in TABLE["Evict"])
    assert ('id="evict-dialog"' in html) is (role in TABLE["Evict"])
    assert "ICS01-PC" in html


@pytest.mark.parametrize("role", ROLES)
def test_licence_controls_follow_the_role_table(role: str) -> None:
    """Sync/import/clear for operators, active seats/order for purchasers, nothing for viewers."""
    html = overview(role)
    shown = {
        "SyncLicence": 'action="/licence/sync"' in html,
        "ImportLicence": 'action="/licence/import"' in html,
        "ClearLicence": 'action="/licence/clear"' in html,
        "SetActiveSeats": 'action="/licence/seats"' in html,
        "OrderSeats": 'action="/licence/quote"' in html,
    }
    assert shown == {action: role in TABLE[action] for action in shown}


def test_the_overview_shows_what_seatctl_licence_show_has() -> None:
    """Num ID, company, edition, mode, period, seats, renewal date, days left, auto-renew, sync."""
    html = overview("owner")
    for text in (
        "82520020025896075",
        "ICS Informatique",
        "ENTERPRISE",
        "LOCAL",
        "ANNUAL",
        'id="seats-active">2<',
        "41 days left",
        "Feb 10, 2026",
        "connection refused",
        "Dec 31, 2025, ",
    ):
        assert text in html, text


def test_the_french_overview_has_french_words_and_dates() -> None:
    """In French: ENTREPRISE, ANNUEL, "10 févr. 2026", "jours restants"."""
    html = overview("owner", "fr")
    for text in ("ENTREPRISE", "ANNUEL", "10 févr. 2026", "41 jours restants", 'lang="fr"'):
        assert text in html, text


def test_the_seeds_reason_is_prefilled_and_editable() -> None:
    """The disconnect dialog's reason field holds the default reason, as a text input."""
    html = render("sessions.html", "admin", **sessions_values())
    assert 'name="reason" type="text" maxlength="200" value="Connection limit exceeded"' in html


def test_every_form_that_changes_something_carries_the_csrf_token() -> None:
    """Each POST form on the owner's pages has the login's CSRF token."""
    pages = [
        overview("owner"),
        render("sessions.html", "owner", **sessions_values()),
        render("tokens.html", "owner", tokens=[], roles=ROLES, new_token=None, page="tokens"),
    ]
    for html in pages:
        forms = html.count('method="post"')
        assert forms and html.count('name="csrf_token" value="CSRF123"') == forms


def waiters() -> list[dict[str, Any]]:
    """Two workstations waiting: CC for 45 s, DD for 30 s."""
    r = admin_pb2.ListSessionsResponse()
    for position, code, waited in ((1, "CC", 45), (2, "DD", 30)):
        w = r.queue.add(position=position, user_code=code, user_name=code[0], hostname="PC3")
        w.queued_at.CopyFrom(ts(NOW - timedelta(seconds=waited)))
        w.waited.seconds = waited
    return views.queue(r)


def test_the_wait_queue_lists_positions() -> None:
    """Waiters appear with their position, in order."""
    html = render("sessions.html", "viewer", **sessions_values(queue=waiters()))
    assert html.index(">CC<") < html.index(">DD<")
    assert "2 waiting" in html


def test_the_wait_queue_says_since_when_each_waits() -> None:
    """Each waiter's row has when it joined the queue, local and UTC, and how long it has
    waited, in a cell the page's script ticks (data-since, as the sessions' durations)."""
    html = render("sessions.html", "viewer", **sessions_values(queue=waiters()))
    since = NOW - timedelta(seconds=45)
    for text in (
        "Waiting since (local)",
        "Waiting since (UTC)",
        f'<time datetime="{since.isoformat()}">',
        f'data-since="{int(since.timestamp())}">0:00:45<',
        "3:16:02",
    ):
        assert text in html, text


def test_the_french_wait_queue_says_since_when_in_french() -> None:
    """In French the queue's columns read "En attente depuis", with French dates."""
    html = render("sessions.html", "viewer", "fr", **sessions_values(queue=waiters()))
    for text in ("En attente depuis (heure locale)", "En attente depuis (UTC)", "31 déc. 2025"):
        assert text in html, text


def test_the_usage_page_draws_its_chart_as_inline_svg() -> None:
    """The chart is markup in the page (no script needed), with its cap line and a table."""
    first = date(2025, 12, 1)
    days = [Day(first + timedelta(days=i), i % 3, 1.0, i % 2, 0) for i in range(30)]
    values = {
        "chart": chart.layout(days, 2),
        "peak": 2,
        "refused": 15,
        "usage_days": days,
        "days": 30,
        "periods": (7, 30, 90, 365),
        "page": "usage",
    }
    html = render("usage.html", "viewer", **values)
    assert "<svg" in html and 'class="cap"' in html and "cap 2" in html
    assert html.count("<rect") == 30 + 15


def test_a_viewer_sees_no_tokens_page_in_the_menu() -> None:
    """Managing tokens is for operators: the viewer's menu has no Tokens entry."""
    assert 'href="/tokens"' not in render("history.html", "viewer", history=[], page="history")
    assert 'href="/tokens"' in render("history.html", "admin", history=[], page="history")


def test_text_from_the_journal_is_escaped() -> None:
    """A reason typed by someone is shown as text, never as markup."""
    entry = admin_pb2.JournalEntry(
        seq=1,
        at=ts(NOW),
        kind="evicted",
        actor="web:token:x",
        json='{"reason": "<script>alert(1)</script>"}',
    )
    html = render(
        "journal.html",
        "viewer",
        entries=[views.journal_entry(entry)],
        kinds=["evicted"],
        filters={"user": "", "session": "", "kind": "", "since": "", "until": ""},
        verify=None,
        more=None,
        page="journal",
    )
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
