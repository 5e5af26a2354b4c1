"""The project's own dependency declarations (pyproject.toml)."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_each_package_is_declared_once_across_runtime_and_dev() -> None:
    """No package is pinned twice (a runtime pin and a looser dev line would disagree)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    names = Counter(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0].lower() for line in lines)
    assert [name for name, count in names.items() if count > 1] == []
