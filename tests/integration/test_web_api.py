"""The JSON API: every documented route, for every role, answers what the OpenAPI document
says (checked by openapi-core against the real answers) and what the role table allows."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from seatd.auth import ROLES, TABLE
from seatd.service import SEATD, AcquireRequest, SeatService
from seatd.web import openapi
from seatd.web.config import WebConfig
from seatd.web.request import ACTIONS
from tests.fakes import FakeClock
from tests.integration.conftest import stop_service
from tests.integration.test_licence_service import licensed
from tests.licences import signed
from tests.web import login, tokens, web_client

SPEC = OpenAPI.from_dict(openapi.document())

# The admin action whose role decides each documented operation (None: anyone logged in).
DECIDED_BY: dict[str, str | None] = {
    "Me": None,
    "Usage": "ReadJournal",
    "ExportJournal": "ReadJournal",
    "Events": "WatchJournal",
    "QuoteSeats": "OrderSeats",
}

# A request each operation accepts: path parameters, query, JSON body.
SAMPLES: dict[str, tuple[dict[str, str], dict[str, str], dict[str, Any] | None]] = {
    "Evict": ({"session_id": "1"}, {}, {"reason": "Connection limit exceeded"}),
    "ImportLicence": ({}, {}, {"licence_text": "not a licence"}),
    "SetActiveSeats": ({}, {}, {"seats": 1}),
    "OrderSeats": ({}, {}, {"seats": 1}),
    "QuoteSeats": ({}, {}, {"seats": 1}),
    "CreateToken": ({}, {}, {"name": "new-token", "role": "viewer"}),
    "RevokeToken": ({"name": "viewer"}, {}, None),
    "ReadJournal": ({}, {"kind": "granted", "since": "7d", "limit": "10"}, None),
    "Usage": ({}, {"days": "7"}, None),
    "ExportJournal": ({}, {"format": "csv"}, None),
}


def operations() -> list[tuple[str, str, str]]:
    """(method, path template, operationId) of every documented operation but the stream."""
    return [
        (method.upper(), path, op["operationId"])
        for path, item in openapi.document()["paths"].items()
        for method, op in item.items()
        if op["operationId"] != "Events"
    ]


async def call(
    client: TestClient[Any, Any], token: str, method: str, template: str, op: str
) -> tuple[int, bytes, str]:
    """Send the operation's sample request; check the answer against the document."""
    params, query, body = SAMPLES.get(op, ({}, {}, None))
    path = template.format(**params)
    data = json.dumps(body).encode() if body is not None else None
    answer = await client.request(
        method,
        path,
        params=query,
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    raw = await answer.read()
    SPEC.validate_response(
        MockRequest("http://localhost", method, path, args=query, data=data),
        MockResponse(raw, answer.status, content_type=answer.content_type),
    )
    return answer.status, raw, answer.content_type


async def holding(service: SeatService) -> None:
    await service.acquire(AcquireRequest("BB", "Bruno B", "pc-1", "1.0", "k1", "10.0.0.1"))


@pytest.mark.parametrize("role", ROLES)
async def test_every_route_answers_as_documented_for_every_role(
    role: str, service: SeatService, clock: FakeClock
) -> None:
    """Each documented route, called with a token of `role`, answers a status and a body the
    document describes; exactly the roles the table allows get past PERMISSION_DENIED."""
    held = await tokens(service)
    async with web_client(service, clock) as client:
        for method, template, op in operations():
            await holding(service)
            status, raw, _ = await call(client, held[role], method, template, op)
            action = DECIDED_BY.get(op, op)
            allowed = action is None or role in TABLE[action]
            if allowed:
                assert status != 403, (op, raw)
            else:
                assert status == 403, (op, raw)
                assert json.loads(raw)["error"]["reason"] == "PERMISSION_DENIED"


async def test_reads_answer_200_with_their_documented_bodies(
    service: SeatService, clock: FakeClock
) -> None:
    """For the owner every read route succeeds (not only an error body that validates)."""
    held = await tokens(service)
    await holding(service)
    async with web_client(service, clock) as client:
        for method, template, op in operations():
            if method == "GET":
                status, raw, _ = await call(client, held["owner"], method, template, op)
                assert status == 200, (op, raw)


async def test_evict_through_the_api_ends_the_session_with_the_reason(
    service: SeatService, clock: FakeClock
) -> None:
    """POST /sessions/{id}/evict ends the session; the journal has the token and the reason."""
    held = await tokens(service)
    await holding(service)
    async with web_client(service, clock) as client:
        status, raw, _ = await call(
            client, held["admin"], "POST", "/api/v1/sessions/{session_id}/evict", "Evict"
        )
        assert status == 200, raw
        assert json.loads(raw)["ended"]["reason"] == "Connection limit exceeded"
        journal = await client.get(
            "/api/v1/journal",
            params={"kind": "evicted"},
            headers={"Authorization": f"Bearer {held['viewer']}"},
        )
        [entry] = (await journal.json())["entries"]
        assert (entry["actor"], entry["reason"]) == ("token:admin", "Connection limit exceeded")


async def browser_evict(client: TestClient[Any, Any], token: str, reason: str) -> int:
    """Log the browser in with `token` and evict session 1 as its page's script would."""
    csrf = await login(client, token)
    answer = await client.post(
        "/api/v1/sessions/1/evict", json={"reason": reason}, headers={"X-CSRF-Token": csrf}
    )
    return answer.status


async def test_browser_evict_is_journaled_as_the_web_user(
    service: SeatService, clock: FakeClock
) -> None:
    """An eviction from a logged-in browser names the web login as the actor."""
    held = await tokens(service)
    await holding(service)
    async with web_client(service, clock) as client:
        assert await browser_evict(client, held["admin"], "lunch") == 200
        entries = (await (await client.get("/api/v1/journal?kind=evicted")).json())["entries"]
        assert [(e["actor"], e["reason"]) for e in entries] == [("web:token:admin", "lunch")]


async def test_forged_post_by_a_viewer_is_refused(service: SeatService, clock: FakeClock) -> None:
    """A viewer's browser sending an evict with a valid CSRF token is still refused by role,
    and the session stays."""
    held = await tokens(service)
    await holding(service)
    async with web_client(service, clock) as client:
        assert await browser_evict(client, held["viewer"], "x") == 403
        assert service.arbiter.in_use == 1


async def test_errors_carry_the_grpc_reason(service: SeatService, clock: FakeClock) -> None:
    """Evicting a session that does not exist is 404 with the same reason gRPC gives."""
    held = await tokens(service)
    async with web_client(service, clock) as client:
        answer = await client.post(
            "/api/v1/sessions/42/evict",
            json={},
            headers={"Authorization": f"Bearer {held['owner']}"},
        )
        assert answer.status == 404
        error = (await answer.json())["error"]
        assert (error["code"], error["reason"]) == ("NOT_FOUND", "SESSION_NOT_FOUND")
        assert error["metadata"] == {"session_id": "42"}


async def test_malformed_body_is_invalid_argument(service: SeatService, clock: FakeClock) -> None:
    """A body that is not the action's message (unknown field, wrong type) is 400."""
    held = await tokens(service)
    async with web_client(service, clock) as client:
        for body in ('{"seats": "many"}', '{"nope": 1}', "[1]", "{"):
            answer = await client.post(
                "/api/v1/licence/active-seats",
                data=body,
                headers={"Authorization": f"Bearer {held['owner']}"},
            )
            assert answer.status == 400, body
            assert (await answer.json())["error"]["reason"] == "INVALID_ARGUMENT"


async def test_the_document_is_served_without_login(service: SeatService, clock: FakeClock) -> None:
    """/api/v1/openapi.json is public and is the document the tests check against."""
    async with web_client(service, clock) as client:
        answer = await client.get("/api/v1/openapi.json")
        assert answer.status == 200
        assert await answer.json() == json.loads(json.dumps(openapi.document()))


async def _next_event(answer: Any) -> dict[str, Any]:
    """The next `event: journal` of a server-sent-events answer, as {id, data}."""
    event: dict[str, Any] = {}
    async with asyncio.timeout(10):
        while True:
            line = (await answer.content.readline()).decode().rstrip("\n")
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and "data" in event:
                return event


async def test_live_feed_pushes_each_journal_entry_as_it_commits(
    service: SeatService, clock: FakeClock
) -> None:
    """/api/v1/events starts at the journal's head and sends a grant as it commits."""
    held = await tokens(service)
    async with web_client(service, clock) as client:
        answer = await client.get(
            "/api/v1/events", headers={"Authorization": f"Bearer {held['viewer']}"}
        )
        assert answer.status == 200
        assert answer.content_type == "text/event-stream"
        await holding(service)
        event = await _next_event(answer)
        assert event["data"]["kind"] == "granted"
        assert event["data"]["user_code"] == "BB"
        answer.close()


async def test_live_feed_resumes_after_last_event_id(
    service: SeatService, clock: FakeClock
) -> None:
    """A feed reopened with Last-Event-ID sends what committed after that entry."""
    held = await tokens(service)
    await holding(service)
    async with web_client(service, clock) as client:
        answer = await client.get(
            "/api/v1/events",
            headers={"Authorization": f"Bearer {held['viewer']}", "Last-Event-ID": "0"},
        )
        kinds = [(await _next_event(answer))["data"]["kind"] for _ in range(5)]
        answer.close()
    assert kinds == ["token_created"] * 4 + ["granted"]


async def test_live_feeds_are_bounded(service: SeatService, clock: FakeClock) -> None:
    """Past max_event_streams open feeds, another is refused with 429 and a retry hint."""
    held = await tokens(service)
    headers = {"Authorization": f"Bearer {held['viewer']}"}
    async with web_client(service, clock, WebConfig(max_event_streams=2)) as client:
        first = await client.get("/api/v1/events", headers=headers)
        second = await client.get("/api/v1/events", headers=headers)
        third = await client.get("/api/v1/events", headers=headers)
        assert (first.status, second.status, third.status) == (200, 200, 429)
        assert (await third.json())["error"]["reason"] == "TOO_MANY_CALLS"
        assert "Retry-After" in third.headers
        first.close()
        second.close()


async def test_sessions_list_the_wait_queue_with_positions(
    service: SeatService, clock: FakeClock
) -> None:
    """GET /sessions shows who waits for a seat, in the order they will be served."""
    held = await tokens(service)
    for n in (1, 2):
        await service.acquire(AcquireRequest(f"U{n}", "u", "pc", "1.0", f"k{n}", "10.0.0.1"))
    waiting = [
        asyncio.create_task(
            service.acquire(
                AcquireRequest(f"W{n}", "w", f"pc-w{n}", "1.0", f"w{n}", "10.0.0.2", wait=60)
            )
        )
        for n in (1, 2)
    ]
    for _ in range(100):
        if len(service.queue) == 2:
            break
        await asyncio.sleep(0.01)
    async with web_client(service, clock) as client:
        answer = await client.get(
            "/api/v1/sessions", headers={"Authorization": f"Bearer {held['viewer']}"}
        )
        body = await answer.json()
    assert [(q["position"], q["user_code"]) for q in body["queue"]] == [(1, "W1"), (2, "W2")]
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_the_wait_queue_says_since_when_each_waits(
    service: SeatService, clock: FakeClock
) -> None:
    """GET /sessions gives each waiter the time it joined the queue and how long it has
    waited, as the OpenAPI document describes them."""
    held = await tokens(service)
    for n in (1, 2):
        await service.acquire(AcquireRequest(f"U{n}", "u", "pc", "1.0", f"k{n}", "10.0.0.1"))
    waiting: list[asyncio.Task[object]] = []
    for n, then in ((1, 20.0), (2, 10.0)):
        waiting.append(
            asyncio.create_task(
                service.acquire(
                    AcquireRequest(f"W{n}", "w", f"pc-w{n}", "1.0", f"w{n}", "10.0.0.2", wait=600)
                )
            )
        )
        for _ in range(500):
            if len(service.queue) == n:
                break
            await asyncio.sleep(0.01)
        clock.advance(then)
    try:
        async with web_client(service, clock) as client:
            status, raw, _ = await call(client, held["viewer"], "GET", "/api/v1/sessions", "x")
        assert status == 200, raw
        queue = json.loads(raw)["queue"]
        assert [(q["user_code"], q["waited"]) for q in queue] == [("W1", "30s"), ("W2", "10s")]
        assert queue[0]["queued_at"] == "2026-01-05T09:00:00Z"
        assert queue[1]["queued_at"] == "2026-01-05T09:00:20Z"
    finally:
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)


async def test_licence_upload_changes_the_cap(tmp_path: Path) -> None:
    """A licence file uploaded as a form (multipart, field `licence`) is installed: the seat
    cap becomes its seats; the licence history names the web user."""
    clock = FakeClock(start=datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    service = await licensed(tmp_path, clock)
    try:
        held = await tokens(service)
        async with web_client(service, clock) as client:
            csrf = await login(client, held["admin"])
            form = aiohttp.FormData()
            form.add_field("csrf_token", csrf)
            form.add_field("licence", signed(seats=7).encode(), filename="acme.lic")
            answer = await client.post("/api/v1/licence/import", data=form)
            assert answer.status == 200, await answer.text()
            assert (await answer.json())["licence"]["summary"]["seat_cap"] == 7
            sessions = await (await client.get("/api/v1/sessions")).json()
            assert sessions["seat_cap"] == 7
            history = await (await client.get("/api/v1/licence/history")).json()
            assert history["entries"][-1]["by"] == "web:token:admin"
    finally:
        stop_service(service)
        service.store.close()


async def test_live_feed_ends_when_its_token_is_revoked(
    service: SeatService, clock: FakeClock
) -> None:
    """A feed opened with a token stops once the token is revoked: nothing more is sent."""
    held = await tokens(service)
    async with web_client(service, clock) as client:
        answer = await client.get(
            "/api/v1/events", headers={"Authorization": f"Bearer {held['viewer']}"}
        )
        await service.revoke_token("viewer", actor=SEATD)
        await holding(service)
        async with asyncio.timeout(10):
            rest = await answer.content.read()
        assert b"granted" not in rest


async def test_a_defect_is_500_and_the_console_serves_on(
    service: SeatService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception in a handler is a logged 500 with the error body; the next
    request is served."""
    held = await tokens(service)
    headers = {"Authorization": f"Bearer {held['viewer']}"}
    async with web_client(service, clock) as client:
        actions = client.server.app[ACTIONS]  # type: ignore[index]

        async def broken(*args: Any) -> None:
            raise RuntimeError("a defect")

        monkeypatch.setattr(actions, "ListSessions", broken)
        answer = await client.get("/api/v1/sessions", headers=headers)
        assert answer.status == 500
        assert (await answer.json())["error"]["message"] == "internal error; see the seatd log"
        monkeypatch.undo()
        assert (await client.get("/api/v1/sessions", headers=headers)).status == 200
