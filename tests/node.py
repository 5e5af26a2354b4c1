"""The TypeScript client (clients/node), as `make node-client` builds it, for the tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "clients" / "node"
BUILT = NODE_DIR / "dist"


def node_script(relative: str) -> list[str]:
    """`node <clients/node/dist/relative>`; fails with what to run when it is not built."""
    node = shutil.which("node")
    script = BUILT / relative
    if node is None or not script.exists():
        pytest.fail(f"the TypeScript client is not built ({script}): run `make node-client`")
    return [node, str(script)]
