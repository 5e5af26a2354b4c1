"""A bounded slice of `make chaos` in `make test`: every kind of fault once, in an order the
seed picks (CHAOS_SEED replays one), against the real daemon under churning clients."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.chaos.harness import WEIGHTS, print_table, run

pytestmark = pytest.mark.e2e


async def test_every_fault_once_breaks_no_promise(tmp_path: Path) -> None:
    """Each fault kind once under load: the history shows no violation of the model."""
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"chaos seed {seed} (replay: CHAOS_SEED={seed})")
    history = await run(seed, len(WEIGHTS), tmp_path, every_kind=True, quiet=True)
    print_table(seed, history)
    assert history.violations == [], f"seed {seed}: {history.violations}"
