"""`make chaos`: fault cycles against the real daemon (SEED, CYCLES from the environment),
then the attack figures (ATTACKS=0 skips them). Exits 1 on any violation of the model; an
attack figure over its target is printed SHORT, not an exit status."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
from pathlib import Path

from tests.chaos import attacks
from tests.chaos.harness import print_table, run


def main() -> int:
    seed = int(os.environ.get("SEED") or random.SystemRandom().randrange(1 << 32))
    cycles = int(os.environ.get("CYCLES") or 100)
    print(f"chaos seed {seed}, {cycles} cycles (replay: make chaos SEED={seed})", flush=True)
    with tempfile.TemporaryDirectory(prefix="chaos-") as work:
        history = asyncio.run(run(seed, cycles, Path(work)))
    print_table(seed, history)
    if os.environ.get("ATTACKS", "1") != "0":
        with tempfile.TemporaryDirectory(prefix="chaos-attacks-", dir="/tmp") as work:
            attacks.figures(Path(work))
    return 1 if history.violations else 0


if __name__ == "__main__":
    sys.exit(main())
