"""Generate the Python code of the contracts from proto/ (`make proto`).

- `seatd.v1` (workstations and admins) goes into the workstation library, `seatclient.v1`,
  which the daemon also imports, so there is exactly one copy. grpcio-tools writes absolute
  imports named after the proto package; the import lines are pointed at `seatclient.v1`.
  The serialized descriptors are untouched: the wire contract stays `seatd.v1`.
- `seatd.cloud.v1` (daemon <-> vendor cloud) goes into `seatd/cloud/v1`, where the
  generator's own imports are already right; no workstation needs it.
"""

from __future__ import annotations

import re
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
_IMPORT = re.compile(r"(^|[^./\w])seatd\.v1(\.\w+_pb2(?:_grpc)?\b| import )")

# proto package directory -> (output directory under the root, rewrite imports?)
TARGETS = {
    Path("seatd/v1"): (Path("clients/python/seatclient/v1"), True),
    Path("seatd/cloud/v1"): (Path("seatd/cloud/v1"), False),
}


def _protoc(sources: list[str], out: str) -> None:
    wkt = Path(protoc.__file__).parent / "_proto"
    plugins = Path(sysconfig.get_path("scripts"))
    args = [
        "protoc",
        f"-I{HERE}",
        f"-I{wkt}",
        f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out=quiet:{out}",
        f"--mypy_grpc_out=quiet:{out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generate(root: Path) -> None:
    for package, (target, rewrite) in TARGETS.items():
        sources = sorted(str(p.relative_to(HERE)) for p in (HERE / package).glob("*.proto"))
        out = root / target
        with tempfile.TemporaryDirectory() as tmp:
            _protoc(sources, tmp)
            if out.exists():
                shutil.rmtree(out)
            out.mkdir(parents=True)
            for src in sorted((Path(tmp) / package).iterdir()):
                text = src.read_text()
                if rewrite:
                    text = _IMPORT.sub(r"\1seatclient.v1\2", text)
                (out / src.name).write_text(text)
        (out / "__init__.py").write_text(f'"""Generated from proto/{package} by `make proto`."""\n')


if __name__ == "__main__":
    generate(Path(sys.argv[1]))
