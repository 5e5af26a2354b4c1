"""`make chaos`: fault cycles against the real daemon (SEED, CYCLES from the environment),
then the attack figures of `make bench` (probe p99 under each attack of issue 12 §1, as a
ratio to idle; ATTACKS=0 skips them). Exits 1 on any violation of the model; an attack
figure over its target is printed SHORT, not an exit status."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
from pathlib import Path

from tests.bench import run as bench
from tests.chaos.harness import print_table, run

ATTACKS = (bench.queue_flood, bench.admin_reads, bench.ping_flood, bench.connection_flood)


def main() -> int:
    seed = int(os.environ.get("SEED") or random.SystemRandom().randrange(1 << 32))
    cycles = int(os.environ.get("CYCLES") or 100)
    print(f"chaos seed {seed}, {cycles} cycles (replay: make chaos SEED={seed})", flush=True)
    with tempfile.TemporaryDirectory(prefix="chaos-") as work:
        history = asyncio.run(run(seed, cycles, Path(work)))
    print_table(seed, history)
    if os.environ.get("ATTACKS", "1") != "0":
        print(f"\n{'figure':<58} {'value':>12} {'unit':<8} {'ratio':>7}  {'target':<28}")
        with tempfile.TemporaryDirectory(prefix="chaos-attacks-") as work:
            for figure in ATTACKS:
                figure(Path(work))
    return 1 if history.violations else 0


if __name__ == "__main__":
    sys.exit(main())
