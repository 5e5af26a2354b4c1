"""The web console in-process: its aiohttp app over a real service (LMDB in tmp_path, fake
clock), driven by aiohttp's test client. Shared by the web API and page tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from seatd.actions import AdminActions
from seatd.auth import ROLES
from seatd.cloudsync import CloudSync
from seatd.service import SEATD, SeatService
from seatd.web.app import build_app
from seatd.web.config import WebConfig
from tests.fakes import FakeClock


@asynccontextmanager
async def web_client(
    service: SeatService,
    clock: FakeClock,
    config: WebConfig | None = None,
    cloud: CloudSync | None = None,
    *,
    secure: bool = False,
    own_origin: bool = True,
) -> AsyncIterator[TestClient[Any, Any]]:
    """A client of the console; it sends the console's own Origin on every request, as a
    browser on the console's pages does (`own_origin=False`: no Origin at all)."""
    app = build_app(AdminActions(service, cloud), config or WebConfig(), clock, secure=secure)
    server = TestServer(app)
    await server.start_server()
    sent = {"Origin": str(server.make_url("/").origin())} if own_origin else {}
    async with TestClient(server, headers=sent) as client:
        yield client


def own_origin(client: TestClient[Any, Any]) -> dict[str, str]:
    """The Origin header of a request sent by one of the console's own pages."""
    return {"Origin": str(client.make_url("/").origin())}


async def tokens(service: SeatService) -> dict[str, str]:
    """An admin token per role, named after it."""
    return {role: await service.create_token(role, role, actor=SEATD) for role in ROLES}


async def login(client: TestClient[Any, Any], token: str) -> str:
    """Log the client's browser in with `token`; return the login's CSRF token."""
    answer = await client.post(
        "/login", data={"token": token}, headers=own_origin(client), allow_redirects=False
    )
    assert answer.status == 303, await answer.text()
    me = await client.get("/api/v1/me")
    assert me.status == 200
    csrf = (await me.json())["csrf_token"]
    assert isinstance(csrf, str)
    return csrf
