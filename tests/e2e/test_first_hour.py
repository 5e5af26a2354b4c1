"""The first hour of a new user: `make run`, the README's first commands, a second daemon."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import READY, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# What a new user's shell has: none of the settings `make run` tells them to export.
ENV = {k: v for k, v in os.environ.items() if k not in ("SEATD_ADMIN_SOCKET", "MAKEFLAGS")}


@dataclass
class MakeRun:
    export: str
    port: int
    socket: Path

    def shell(self, line: str, cwd: Path) -> list[str]:
        """`line` in bash after the export line, as in the terminal the README describes."""
        return ["bash", "-c", f"{self.export}\ncd {cwd}\n{line}"]


@pytest.fixture
def make_run(tmp_path: Path, short_dir: Path) -> Iterator[Callable[[str], MakeRun]]:
    """`make run ARGS=...` on free ports, its state under a temporary RUN_DIR."""
    started: list[subprocess.Popen[bytes]] = []

    def start(args: str) -> MakeRun:
        log = tmp_path / "make-run.log"
        run_dir = short_dir / "run"
        with log.open("wb") as out:
            make = subprocess.Popen(
                [
                    "make",
                    "-s",
                    "-C",
                    str(ROOT),
                    "run",
                    f"RUN_DIR={run_dir}",
                    f"ARGS=--listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 {args}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=ENV,
                start_new_session=True,
            )
        started.append(make)

        def ready() -> int | None:
            if make.poll() is not None:
                raise AssertionError(f"make run exited with {make.returncode}:\n{log.read_text()}")
            found = READY.search(log.read_text())
            return int(found.group(1)) if found else None

        port = wait_for(ready, 60, "daemon.ready from make run")
        export = next(line.strip() for line in log.read_text().splitlines() if "export " in line)
        return MakeRun(export, port, run_dir / "admin.sock")

    yield start
    for make in started:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(20)

        def gone(pgid: int = make.pid) -> bool:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, 20, "the daemon make run started to stop")


def test_make_run_passes_args_and_prints_the_export_line_seatctl_needs(
    make_run: Callable[[str], MakeRun], tmp_path: Path
) -> None:
    """`make run ARGS=...` gives the flags to the daemon, and the export line it prints lets
    a plain `seatctl sessions`, run from another directory, reach that daemon."""
    run = make_run("--dev-seats 2")
    assert run.port != 7117
    assert f'SEATD_ADMIN_SOCKET="{run.socket}"' in run.export
    seatctl = subprocess.run(
        run.shell("seatctl sessions --json", tmp_path),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert seatctl.returncode == 0, seatctl.stderr
    assert json.loads(seatctl.stdout)["cap"] == 2


def readme_first_commands() -> list[str]:
    """The shell block the README shows right after `make run`, one command per line."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"then, one line at a time:\n\n```sh\n(.*?)```", readme, re.S)
    assert block, "the README's first commands after `make run`"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines()]


def test_the_readme_first_commands_work_as_printed(
    make_run: Callable[[str], MakeRun], tmp_path: Path
) -> None:
    """After the export line, the README's hold / sessions / evict lines work as printed (only
    the daemon's port differs): the session is listed, evicted, and `seat` exits 3."""
    run = make_run("")
    hold, *rest = readme_first_commands()
    assert hold.endswith("&") and "127.0.0.1:7117" in hold
    holder = subprocess.Popen(
        run.shell("exec " + hold.removesuffix("&").replace(":7117", f":{run.port}"), tmp_path),
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding session 1"
        outputs = []
        for line in rest:
            done = subprocess.run(
                run.shell(line, tmp_path), env=ENV, capture_output=True, text=True, timeout=30
            )
            assert done.returncode == 0, f"{line}: {done.stderr}"
            outputs.append(done.stdout)
        assert "Bruno B" in outputs[0]
        assert holder.wait(20) == 3
        assert "Connection limit exceeded" in holder.stdout.read()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
