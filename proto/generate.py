"""Regenerate the Python code for the ``.proto`` files: ``python -m smc.proto.generate``.

The files are compiled under the virtual path ``smc/proto/v1/`` so that generated imports read
``from smc.proto.v1 import task_pb2``. :func:`generate` writes into any directory, which is how the
staleness test compares a fresh generation with the committed modules.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSION_DIR = HERE / "v1"
VIRTUAL = "smc/proto"


def proto_files() -> list[Path]:
    return sorted(VERSION_DIR.glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Compile every ``.proto`` into ``out_dir`` (flat); returns the generated files."""
    from grpc_tools import protoc  # dev dependency only

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{VIRTUAL}={HERE}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[f"{VIRTUAL}/v1/{p.name}" for p in proto_files()],
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed: " + " ".join(args))
        produced = []
        for f in sorted((Path(tmp) / VIRTUAL / "v1").iterdir()):
            target = out_dir / f.name
            shutil.copyfile(f, target)
            produced.append(target)
    return produced


def main() -> int:
    for path in generate(VERSION_DIR):
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
