"""The console's pages over a real service (LMDB in tmp_path, fake clock): every page for
every role, every form for every role (refused server-side as in gRPC), and what they show."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from seatd import journal
from seatd.auth import ROLES, TABLE
from seatd.service import AcquireRequest, SeatService
from tests.fakes import FakeClock
from tests.web import login, tokens, web_client

PAGES = {
    "/": "GetLicence",
    "/sessions": "ListSessions",
    "/sessions/live": "ListSessions",
    "/journal": "ReadJournal",
    "/usage": "ReadJournal",
    "/history": "LicenceHistory",
    "/tokens": "ListTokens",
}


def seat_request(user: str, **kw: Any) -> AcquireRequest:
    return AcquireRequest(
        user_code=user,
        user_name=f"{user} name",
        hostname="ICS01-PC",
        client_version="15",
        idempotency_key=f"key-{user}",
        ip="192.168.1.148",
        **kw,
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "action"), PAGES.items())
async def test_each_page_opens_for_the_roles_that_may_read_it(
    service: SeatService, clock: FakeClock, role: str, path: str, action: str
) -> None:
    """A page answers 200 to a role the table lets read it, and 403 to any other."""
    token = (await tokens(service))[role]
    async with web_client(service, clock) as client:
        await login(client, token)
        answer = await client.get(path)
        assert answer.status == (200 if role in TABLE[action] else 403), await answer.text()


FORMS: list[tuple[str, str, dict[str, str]]] = [
    ("/sessions/{sid}/evict", "Evict", {"reason": "Lunch"}),
    ("/licence/clear", "ClearLicence", {}),
    ("/licence/seats", "SetActiveSeats", {"seats": "1"}),
    ("/tokens/viewer/revoke", "RevokeToken", {}),
    ("/tokens", "CreateToken", {"name": "new", "role": "viewer"}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "action", "fields"), FORMS)
async def test_each_form_is_refused_to_roles_the_table_does_not_allow(
    service: SeatService,
    clock: FakeClock,
    role: str,
    path: str,
    action: str,
    fields: dict[str, str],
) -> None:
    """A form posted by a role without the action is refused 403 (whatever the page showed)
    and journaled as denied; an allowed role gets past authorization."""
    token = (await tokens(service))[role]
    held = await service.acquire(seat_request("AA"))
    async with web_client(service, clock) as client:
        csrf = await login(client, token)
        answer = await client.post(
            path.format(sid=held.session.id),
            data={"csrf_token": csrf, **fields},
            allow_redirects=False,
        )
        if role in TABLE[action]:
            # Allowed: done (303), or refused by the domain for its own reason (this test
            # daemon manages no licence: 503), never for the role.
            assert answer.status != 403, await answer.text()
        else:
            assert answer.status == 403
    if role not in TABLE[action] and action == "Evict":
        assert [s.id for s in service.arbiter.sessions()] == [held.session.id]


async def test_a_disconnect_from_the_page_ends_the_session_with_its_reason(
    service: SeatService, clock: FakeClock
) -> None:
    """The disconnect form evicts with the typed reason, journaled with the web user as actor,
    and the page comes back saying so."""
    token = (await tokens(service))["admin"]
    held = await service.acquire(seat_request("AA"))
    async with web_client(service, clock) as client:
        csrf = await login(client, token)
        answer = await client.post(
            f"/sessions/{held.session.id}/evict",
            data={"csrf_token": csrf, "reason": "Dépassement connexions autorisées"},
        )
        assert answer.status == 200
        assert "The session was disconnected" in await answer.text()
    assert service.arbiter.sessions() == []
    entries = service.store.read_journal(0, 100, journal.Filter())[0]
    evicted = [e for _, _, e in entries if e["kind"] == "evicted"]
    assert evicted[0]["reason"] == "Dépassement connexions autorisées"
    assert evicted[0]["actor"].endswith("admin")


async def test_the_sessions_page_lists_the_wait_queue_with_positions(
    service: SeatService, clock: FakeClock
) -> None:
    """With the seats taken, the waiters show in the order they will be served."""
    token = (await tokens(service))["viewer"]
    await service.acquire(seat_request("AA"))
    await service.acquire(seat_request("BB"))
    first = asyncio.create_task(service.acquire(seat_request("W1", wait=30)))
    await asyncio.sleep(0)
    second = asyncio.create_task(service.acquire(seat_request("W2", wait=30)))
    await asyncio.sleep(0)
    try:
        async with web_client(service, clock) as client:
            await login(client, token)
            html = await (await client.get("/sessions")).text()
        assert 'id="queue-body"' in html
        assert html.index(">W1<") < html.index(">W2<")
        assert "2 waiting" in html
    finally:
        first.cancel()
        second.cancel()
        await asyncio.gather(first, second, return_exceptions=True)


async def test_the_page_speaks_the_browsers_language(
    service: SeatService, clock: FakeClock
) -> None:
    """Accept-Language: fr gives the French page; ?lang=en switches and is remembered."""
    token = (await tokens(service))["viewer"]
    async with web_client(service, clock) as client:
        await login(client, token)
        french = await client.get("/sessions", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
        assert "Sessions ouvertes" in await french.text()
        chosen = await client.get("/sessions?lang=en", headers={"Accept-Language": "fr"})
        assert "Open sessions" in await chosen.text()
        again = await client.get("/sessions", headers={"Accept-Language": "fr"})
        assert "Open sessions" in await again.text()


async def test_the_login_page_is_french_for_a_french_browser(
    service: SeatService, clock: FakeClock
) -> None:
    """Before any login, the login page already follows Accept-Language."""
    async with web_client(service, clock) as client:
        page = await client.get("/login", headers={"Accept-Language": "fr"})
        assert "Connexion à seatd" in await page.text()


async def test_the_usage_page_draws_the_chart_without_javascript(
    service: SeatService, clock: FakeClock
) -> None:
    """The usage page carries its chart as inline SVG, with today's peak as a bar."""
    token = (await tokens(service))["viewer"]
    await service.acquire(seat_request("AA"))
    # Held for a minute, so it counts in today's peak.
    clock.advance(60)
    async with web_client(service, clock) as client:
        await login(client, token)
        html = await (await client.get("/usage?days=7")).text()
    assert html.count("<svg") == 1 and 'class="cap"' in html
    assert "peak 1 in use" in html


async def test_a_new_token_is_shown_once_and_never_cached(
    service: SeatService, clock: FakeClock
) -> None:
    """The created token is in the answer (not cacheable) and not on the page afterwards."""
    token = (await tokens(service))["admin"]
    async with web_client(service, clock) as client:
        csrf = await login(client, token)
        made = await client.post(
            "/tokens", data={"csrf_token": csrf, "name": "erp", "role": "viewer"}
        )
        html = await made.text()
        assert made.headers["Cache-Control"] == "no-store"
        assert 'id="new-token"' in html and "sdt_" in html
        later = await (await client.get("/tokens")).text()
        assert "sdt_" not in later and ">erp<" in later


async def test_without_javascript_the_disconnect_form_is_a_page(
    service: SeatService, clock: FakeClock
) -> None:
    """The Disconnect link opens a page with the session and the default reason prefilled."""
    token = (await tokens(service))["admin"]
    held = await service.acquire(seat_request("AA"))
    async with web_client(service, clock) as client:
        await login(client, token)
        html = await (await client.get(f"/sessions/evict/{held.session.id}")).text()
    assert f'action="/sessions/{held.session.id}/evict"' in html
    assert 'value="Connection limit exceeded"' in html and "AA name" in html
