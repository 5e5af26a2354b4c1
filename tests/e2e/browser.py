"""A real browser for the web console's tests: Debian's chromium, headless, via chromedriver.

`make browser` installs both (no browser is downloaded at test time; Selenium is given the
driver's path, so its manager never runs). Every wait is bounded. Screenshots go to
var/screenshots/NAME-1280.png and NAME-390.png: the full page at a desktop and a phone width.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
WIDTHS = (1280, 390)
# Generous: two cores shared by several test runs.
WAIT = 20.0


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail("chromium and chromedriver are missing: run `make browser`")
    return browser, driver


class Browser:
    """One headless chromium, pointed at one console."""

    def __init__(self, base_url: str) -> None:
        binary, driver = _chromium()
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for arg in (
            "--headless=new",
            # Root in a container: chromium's sandbox needs user namespaces it may not have.
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--window-size={WIDTHS[0]},900",
            "--lang=en-US",
        ):
            options.add_argument(arg)
        options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
        # The page's console messages, kept for a failed wait's report.
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        self.base_url = base_url.rstrip("/")

    def get(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """Poll `predicate` until it returns something truthy; fail naming `what`."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                lambda _: predicate(), message=f"timed out after {timeout} s waiting for {what}"
            )
        except TimeoutException:
            # What the browser showed then, to look at: var/screenshots/failed-*.
            SHOTS.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"\W+", "-", what).strip("-")[:60]
            self.driver.save_screenshot(str(SHOTS / f"failed-{name}.png"))
            (SHOTS / f"failed-{name}.html").write_text(self.driver.page_source)
            logs = "\n".join(str(e) for e in self.driver.get_log("browser"))
            (SHOTS / f"failed-{name}.log").write_text(logs)
            raise

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return str(self.find("body").text)

    def login(self, token: str, path: str = "/") -> None:
        """Log in through the login form, as a person would."""
        self.driver.delete_all_cookies()
        self.get(path)
        self.wait(lambda: self.all("input#token"), "the login form")
        self.find("input#token").send_keys(token)
        self.find("form.login button[type=submit]").click()
        self.wait(lambda: self.all("nav"), "the console's menu after logging in")

    def post(self, path: str, fields: dict[str, str]) -> int:
        """POST a form from the page's origin with the browser's cookies; the HTTP status."""
        status = self.driver.execute_async_script(
            "const [path, fields, done] = arguments;"
            "fetch(path, {method: 'POST', body: new URLSearchParams(fields),"
            " redirect: 'manual', credentials: 'same-origin'})"
            ".then(r => done(r.status), e => done(String(e)));",
            path,
            fields,
        )
        assert isinstance(status, int), status
        return status

    def shoot(self, name: str) -> list[Path]:
        """Save the whole page at each width; the window goes back to the desktop width."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        saved = []
        for width in WIDTHS:
            self.driver.set_window_size(width, 900)
            # The window cannot outgrow the headless screen: capture beyond the viewport.
            size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {
                        "x": 0,
                        "y": 0,
                        "width": width,
                        "height": min(size["height"], 6000),
                        "scale": 1,
                    },
                },
            )
            path = SHOTS / f"{name}-{width}.png"
            path.write_bytes(base64.b64decode(shot["data"]))
            saved.append(path)
        self.driver.set_window_size(WIDTHS[0], 900)
        return saved

    def quit(self) -> None:
        self.driver.quit()


def browser_for(base_url: str) -> Iterator[Browser]:
    """A browser for a module's tests (a generator for a module-scoped fixture)."""
    b = Browser(base_url)
    try:
        yield b
    finally:
        b.quit()
