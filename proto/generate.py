"""Generate the Python code of the contract from proto/ into one package directory.

The generated modules ship inside the workstation library (`seatclient.v1`), which the
daemon also imports, so there is exactly one copy. grpcio-tools writes absolute imports
named after the proto package (`seatd.v1`); the import lines are pointed at `seatclient.v1`.
The serialized descriptors are left untouched: the wire contract stays `seatd.v1`.
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


def generate(out: Path) -> None:
    sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "seatd" / "v1").glob("*.proto"))
    wkt = Path(protoc.__file__).parent / "_proto"
    plugin_dir = Path(sysconfig.get_path("scripts"))
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{HERE}",
            f"-I{wkt}",
            f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for src in sorted((Path(tmp) / "seatd" / "v1").iterdir()):
            text = _IMPORT.sub(r"\1seatclient.v1\2", src.read_text())
            (out / src.name).write_text(text)
        (out / "__init__.py").write_text('"""Generated from proto/seatd/v1 by `make proto`."""\n')


if __name__ == "__main__":
    generate(Path(sys.argv[1]))
