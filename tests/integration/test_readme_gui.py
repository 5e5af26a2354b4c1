"""The README's Tk example, run as printed against a real server, with a fake Tk that records
which thread touches it (Tk-free: no display needed)."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Running

README = Path(__file__).resolve().parents[2] / "README.md"


def tk_example() -> str:
    text = README.read_text()
    start = text.index("**GUI applications.**")
    found = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert found is not None
    return found.group(1)


class FakeTk:
    """Tk's surface the example uses; records the threads that call it. Its main loop runs
    due `after` callbacks until the window is destroyed or a label says `until`."""

    def __init__(self, until: str) -> None:
        self.until = until
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.alive = True
        self.threads: set[int] = set()
        self.labels: list[FakeLabel] = []

    def touched(self) -> None:
        self.threads.add(threading.get_ident())

    def after(self, ms: int, fn: Callable[[], None]) -> None:
        self.touched()
        self.timers.append((time.monotonic() + ms / 1000, fn))

    def destroy(self) -> None:
        self.touched()
        self.alive = False

    def mainloop(self) -> None:
        deadline = time.monotonic() + 20
        while self.alive and time.monotonic() < deadline:
            if any(label.text.startswith(self.until) for label in self.labels):
                return
            due = [t for t in self.timers if t[0] <= time.monotonic()]
            for timer in due:
                self.timers.remove(timer)
                timer[1]()
            time.sleep(0.01)


class FakeLabel:
    def __init__(self, root: FakeTk, text: str = "") -> None:
        self.root, self.text, self.said = root, text, [text]
        root.labels.append(self)

    def __setitem__(self, key: str, value: str) -> None:
        self.config(text=value)

    def config(self, *, text: str) -> None:
        self.root.touched()
        self.text = text
        self.said.append(text)

    def pack(self) -> None:
        self.root.touched()


class FakeButton:
    def __init__(self, root: FakeTk, *, text: str, command: Callable[[], Any]) -> None:
        root.touched()

    def pack(self) -> None:
        pass


async def test_the_readme_tk_example_holds_a_seat_touching_tk_only_from_its_thread(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example, as printed, shows "holding session 1"; every Tk call came from the
    thread running the main loop, and leaving it releases the seat."""
    root = FakeTk(until="holding session")
    fake = types.ModuleType("tkinter")
    fake.Tk = lambda: root  # type: ignore[attr-defined]
    fake.Label = FakeLabel  # type: ignore[attr-defined]
    fake.Button = FakeButton  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tkinter", fake)
    code = tk_example().replace("erp-server.lan:7117", f"127.0.0.1:{running.port}")
    ran_on: list[int] = []

    def run() -> None:
        ran_on.append(threading.get_ident())
        exec(compile(code, "README.md", "exec"), {})

    await asyncio.to_thread(run)
    (status,) = root.labels
    assert status.text == "holding session 1"
    assert root.threads == set(ran_on)
    assert running.service.arbiter.in_use == 0
