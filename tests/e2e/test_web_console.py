"""The web console in a real browser (headless chromium) against the real daemon, with real
workstations holding seats through the Python client. One daemon and one browser for the
module: each test logs in afresh (its own cookies) and waits on what the page shows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from seatclient import EvictedEvent, Seat, SeatClient, SeatEvent
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.e2e.browser import WIDTHS, Browser, browser_for
from tests.e2e.conftest import BIN, FAST, Daemon, wait_for

pytestmark = pytest.mark.e2e

FRENCH_DATE = re.compile(
    r"\b\d{1,2} (janv|févr|mars|avr|mai|juin|juil|août|sept|oct|nov|déc)\.? \d{4}\b"
)


def vendor(*args: str) -> None:
    out = subprocess.run(
        [str(BIN / "seatd-vendor"), *args], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("vendor")
    private, public = d / "vendor.key", d / "vendor.pub"
    vendor("keygen", "--out-private", str(private), "--out-public", str(public))
    return private, public


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]) -> Iterator[Daemon]:
    """The daemon with its web console on a free loopback port, in Paris time."""
    tmp = tmp_path_factory.mktemp("console")
    short = Path(tempfile.mkdtemp(prefix="seatd-", dir="/tmp"))
    daemon = Daemon(
        tmp / "state",
        short / "d.sock",
        tmp / "d",
        [*FAST, "--trusted-key", str(keys[1]), "--web-listen", "127.0.0.1:0"],
        env={"TZ": "Europe/Paris"},
    )
    try:
        yield daemon.start()
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture(scope="module")
def tokens(console: Daemon) -> dict[str, str]:
    """One admin token per role, made with seatctl as an administrator would."""
    made = {}
    for role in ("owner", "admin", "viewer"):
        out = console.ctl("token", "create", "--role", role, "--name", f"web-{role}")
        assert out.returncode == 0, out.stderr
        made[role] = out.stdout.strip()
    return made


@pytest.fixture(scope="module")
def browser(console: Daemon) -> Iterator[Browser]:
    yield from browser_for(console.web_url)


@pytest.fixture(scope="module")
def client(console: Daemon) -> Iterator[SeatClient]:
    with SeatClient(console.target, hostname="ICS01-PC") as c:
        yield c


def row(browser: Browser, session_id: int) -> bool:
    return bool(browser.all(f"#session-{session_id}"))


def test_a_token_logs_in_to_the_licence_screen(
    browser: Browser, console: Daemon, tokens: dict[str, str]
) -> None:
    """The login form takes an admin token and opens the licence screen with its Num ID."""
    shown = json.loads(console.ctl("licence", "show", "--json").stdout)
    browser.login(tokens["owner"])
    assert browser.find("h1").text == "Licence"
    assert shown["base_id"] in browser.text()


def test_a_seatctl_console_link_logs_in_once_and_leaves_no_trace(
    console: Daemon, client: SeatClient
) -> None:
    """The URL `seatctl console` prints opens the console logged in (the licence with its
    Num ID, the sessions with a workstation's seat), the one-time code is neither in the
    address bar nor a step back in the history, and a second browser is refused by a page
    saying what to do next."""
    shown = json.loads(console.ctl("licence", "show", "--json").stdout)
    out = console.ctl("console")
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip().splitlines()[-1]
    code = url.rsplit("/", 1)[-1]
    seat = client.acquire(user_code="LNK", user_name="Linked One")
    first, second = Browser(console.web_url), Browser(console.web_url)
    try:
        first.driver.get(url)
        first.wait(lambda: first.all("nav"), "the console's menu after opening the link")
        assert first.driver.current_url == f"{console.web_url}/"
        assert first.find("h1").text == "Licence"
        assert shown["base_id"] in first.text()
        assert "web:local-admin-socket" in first.text()
        first.get("/sessions")
        first.wait(lambda: row(first, seat.session_id), "the workstation's session")
        first.driver.back()
        first.wait(lambda: first.driver.current_url == f"{console.web_url}/", "back to /")
        assert code not in first.driver.execute_script("return document.referrer")
        second.driver.get(url)
        second.wait(lambda: second.all("form.login"), "the refusal page")
        assert not second.all("nav")
        assert "run seatctl console again" in second.text()
    finally:
        first.quit()
        second.quit()
        seat.release()


def test_sessions_appear_and_vanish_without_reloading(
    browser: Browser, tokens: dict[str, str], client: SeatClient
) -> None:
    """A workstation's new seat shows up on the open sessions page, its duration ticks, and it
    goes when released, while the page stays the same document (no reload)."""
    browser.login(tokens["admin"], "/sessions")
    browser.wait(lambda: browser.find("#live").get_attribute("data-feed-state") == "open", "feed")
    browser.driver.execute_script("window.notReloaded = true")
    seat = client.acquire(user_code="LIVE", user_name="Live One")
    browser.wait(lambda: row(browser, seat.session_id), "the new session's row")
    assert "Live One" in browser.find(f"#session-{seat.session_id}").text
    ticking = browser.find(f"#session-{seat.session_id} [data-since]")
    first = ticking.text
    browser.wait(lambda: ticking.text != first, "the duration to tick")
    seat.release()
    browser.wait(lambda: not row(browser, seat.session_id), "the released session's row to go")
    assert browser.driver.execute_script("return window.notReloaded") is True


def test_a_disconnect_reason_reaches_the_workstation(
    browser: Browser, tokens: dict[str, str], client: SeatClient
) -> None:
    """Disconnect from the page, by keyboard: the seeds' reason is prefilled, the admin types
    another, and the workstation's client receives exactly that reason."""
    events: list[SeatEvent] = []
    seat = client.acquire(user_code="EV", user_name="Evicted One", on_event=events.append)
    browser.login(tokens["admin"], "/sessions")
    browser.wait(lambda: row(browser, seat.session_id), "the session's row")
    # By keyboard alone: Enter on the row's Disconnect opens the dialog with the focus in
    # the reason, typing replaces the selected default, Enter sends it.
    browser.find(f'[data-evict="{seat.session_id}"]').send_keys(Keys.ENTER)
    reason = browser.find("#evict-dialog input[name=reason]")
    browser.wait(reason.is_displayed, "the disconnect dialog")
    assert browser.driver.switch_to.active_element == reason
    assert reason.get_attribute("value") == "Connection limit exceeded"
    browser.driver.switch_to.active_element.send_keys("Lunch break: back at 2 pm", Keys.ENTER)
    got = browser.wait(
        lambda: [e for e in events if isinstance(e, EvictedEvent)], "the Evicted event"
    )
    assert got[0].reason == "Lunch break: back at 2 pm"
    browser.wait(lambda: not row(browser, seat.session_id), "the row to go")


def test_a_viewer_sees_no_disconnect_control_and_cannot_forge_one(
    browser: Browser, console: Daemon, tokens: dict[str, str], client: SeatClient
) -> None:
    """A viewer's sessions page has no disconnect control; a disconnect POSTed anyway, with or
    without the login's CSRF token, is refused and the session stays."""
    seat = client.acquire(user_code="VW", user_name="Watched")
    try:
        browser.login(tokens["viewer"], "/sessions")
        browser.wait(lambda: row(browser, seat.session_id), "the session's row")
        assert not browser.all("[data-evict]") and not browser.all("#evict-dialog")
        csrf = browser.find("input[name=csrf_token]").get_attribute("value")
        path = f"/sessions/{seat.session_id}/evict"
        assert browser.post(path, {"csrf_token": str(csrf), "reason": "forged"}) == 403
        assert browser.post(path, {"reason": "no csrf"}) == 403
        ids = [s["id"] for s in console.sessions()["sessions"]]
        assert seat.session_id in ids
    finally:
        seat.release()


@contextmanager
def another_site(page: str) -> Iterator[str]:
    """A page served from another port of this host: same-site for the browser (a site is a
    host, ports aside), so SameSite=Strict still sends the console's cookie, but another
    origin. Yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    serving.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        serving.join(10)
        server.server_close()


def test_a_disconnect_posted_from_another_origin_is_refused(
    browser: Browser, console: Daemon, tokens: dict[str, str], client: SeatClient
) -> None:
    """A page on another port of the console's host auto-submits a disconnect form: the
    browser sends the admin's cookie (same site) and even a leaked CSRF token, and the
    console refuses it for its Origin; the workstation keeps its seat."""
    seat = client.acquire(user_code="XO", user_name="Cross Origin")
    try:
        browser.login(tokens["admin"], "/sessions")
        browser.wait(lambda: row(browser, seat.session_id), "the session's row")
        csrf = browser.find("input[name=csrf_token]").get_attribute("value")
        forged = (
            f'<form method="post" action="{console.web_url}/sessions/{seat.session_id}/evict">'
            f'<input name="csrf_token" value="{csrf}"><input name="reason" value="forged">'
            "</form><script>document.forms[0].submit()</script>"
        )
        with another_site(forged) as url:
            browser.driver.get(url)
            browser.wait(lambda: "not from this console" in browser.text(), "the refusal")
        assert seat.session_id in [s["id"] for s in console.sessions()["sessions"]]
    finally:
        seat.release()


def test_an_uploaded_licence_file_sets_the_cap(
    browser: Browser, console: Daemon, tokens: dict[str, str], keys: tuple[Path, Path]
) -> None:
    """Import a signed 3-seat licence file through the page: the screen shows 3 active seats
    and the daemon enforces them."""
    base_id = json.loads(console.ctl("licence", "show", "--json").stdout)["base_id"]
    until = (datetime.now(UTC).date() + timedelta(days=90)).isoformat()
    lic = console.state_dir.parent / "anyway.lic"
    vendor(
        "issue", "--key", str(keys[0]), "--base-id", base_id, "--company", "ANYWAY SARL",
        "--edition", "ENTERPRISE", "--mode", "LOCAL", "--period", "QUARTERLY",
        "--seats", "3", "--valid-until", until, "--out", str(lic),
    )  # fmt: skip
    browser.login(tokens["owner"])
    browser.find("#licence-file").send_keys(str(lic))
    browser.find("#licence-file").find_element("xpath", "..").submit()
    browser.wait(lambda: browser.find("#seats-active").text == "3", "3 active seats")
    assert "ANYWAY SARL" in browser.text()
    assert json.loads(console.ctl("licence", "show", "--json").stdout)["seats_active"] == 3


def listed(console: Daemon, token: str) -> dict[str, Any]:
    """The daemon's sessions and wait queue, as the JSON API answers them."""
    ask = urllib.request.Request(
        f"{console.web_url}/api/v1/sessions", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(ask, timeout=30) as answer:
        body: dict[str, Any] = json.load(answer)
    return body


def test_the_wait_queue_shows_since_when_each_waits_and_ticks(
    browser: Browser, console: Daemon, tokens: dict[str, str], client: SeatClient
) -> None:
    """At capacity (the 3 seats imported above), a workstation waiting for a seat is listed
    with the time it joined the queue, local and UTC, and a waiting time that ticks."""
    held = _holding(client, 3)
    viewer = tokens["viewer"]
    # Each holder's keepalive stream attached first: with the module's 2 s leases, a holder
    # not yet pinging could lapse and hand its seat straight to the waiter.
    ids = {seat.session_id for seat in held}
    wait_for(
        lambda: {s["id"] for s in listed(console, viewer)["sessions"] if s["attached"]} >= ids,
        30,
        "the holders' keepalive streams",
    )
    waiter = threading.Thread(
        target=lambda: client.acquire(user_code="QW", user_name="Queued Waiter", wait=60).release()
    )
    waiter.start()
    try:
        got = wait_for(lambda: listed(console, viewer)["queue"], 30, "the waiter in the queue")
        joined = datetime.fromisoformat(str(got[0]["queued_at"]).replace("Z", "+00:00"))
        browser.login(viewer, "/sessions")
        browser.wait(lambda: browser.all("#queue-body tr"), "the wait queue")
        waiting = browser.find("#queue-body tr")
        assert "Queued Waiter" in waiting.text
        cells = {
            str(td.get_attribute("data-label")): td.text
            for td in waiting.find_elements("css selector", "td")
        }
        paris = ZoneInfo("Europe/Paris")
        assert cells["Waiting since (UTC)"] == format_datetime(joined, "medium", UTC, "en")
        assert cells["Waiting since (local)"] == format_datetime(joined, "medium", paris, "en")
        ticking = waiting.find_element("css selector", "[data-since]")
        first = ticking.text
        browser.wait(lambda: ticking.text != first, "the waiting time to tick")
    finally:
        for seat in held:
            seat.release()
        waiter.join(30)


def test_the_french_page_has_french_words_and_dates(
    browser: Browser, tokens: dict[str, str], client: SeatClient
) -> None:
    """Switching the language to French gives the seeds' words and French dates."""
    seat = client.acquire(user_code="FR", user_name="Français")
    try:
        browser.login(tokens["admin"], "/sessions")
        Select(browser.find("#lang-select")).select_by_value("fr")
        browser.wait(lambda: browser.find("h1").text == "Sessions ouvertes", "the French page")
        browser.wait(lambda: row(browser, seat.session_id), "the session's row")
        text = browser.text()
        assert "Heure locale" in text and "Déconnecter" in text
        assert FRENCH_DATE.search(browser.find(f"#session-{seat.session_id}").text)
        browser.shoot("sessions-fr")
    finally:
        seat.release()


def _holding(client: SeatClient, count: int) -> list[Seat]:
    users = [("AA", "Anne Aubert"), ("BB", "Bruno Blanc"), ("CC", "Chloé Chevalier")]
    return [client.acquire(user_code=c, user_name=n) for c, n in users[:count]]


def test_every_page_is_captured_at_both_widths(
    browser: Browser, console: Daemon, tokens: dict[str, str], client: SeatClient
) -> None:
    """Each page, full length, at 1280 and 390 px, saved under var/screenshots/ (the README's
    come from here: make screenshots). A full house and one workstation waiting."""
    held = _holding(client, 3)
    waiter = threading.Thread(
        target=lambda: client.acquire(user_code="DD", user_name="Denis Durand", wait=60).release()
    )
    waiter.start()
    try:
        browser.login(tokens["owner"])
        saved = browser.shoot("overview")
        browser.get("/sessions")
        browser.wait(lambda: browser.all("#queue-body tr"), "the wait queue")
        saved += browser.shoot("sessions")
        for page in ("journal", "usage", "history", "tokens"):
            browser.get(f"/{page}")
            browser.wait(lambda: browser.all("main h1"), f"the {page} page")
            saved += browser.shoot(page)
        browser.driver.delete_all_cookies()
        browser.get("/login")
        saved += browser.shoot("login")
    finally:
        for seat in held:
            seat.release()
        waiter.join(30)
    for path in saved:
        assert path.stat().st_size > 5000, path
    assert {p.name for p in saved} >= {f"sessions-{w}.png" for w in WIDTHS}
