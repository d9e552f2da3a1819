"""Generate the CRI v1 Python bindings (`api_pb2.py` + `api_pb2.pyi`) from `api.proto`.

Generated code is not committed: `setup.py` calls `generate()` whenever the package is built or installed
(editable installs included), and `python -m skiff.agent.cri.build` regenerates it by hand. This module
imports nothing from skiff, so the build can load it by file path before skiff's dependencies exist.

Only message classes are generated, not `api_pb2_grpc.py`: the client binds the RPC paths itself, so the
bindings do not carry grpcio-tools' "generated with grpcio >= X" check into the runtime.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

PROTO = "api.proto"
OUTPUTS = ("api_pb2.py", "api_pb2.pyi")
# The proto is compiled under its package path so its descriptor is registered as
# "skiff/agent/cri/api.proto", a name no other library's "api.proto" can collide with.
PACKAGE_PATH = Path("skiff", "agent", "cri")
# protoc's stubs use bare generics (`_Mapping`), which `mypy --strict` rejects; the stubs' types are still
# used by the code that imports them, only the stub file itself is not checked.
PYI_HEADER = "# mypy: ignore-errors\n"


class BuildError(RuntimeError):
    """protoc is missing or rejected api.proto."""


def generate(package_dir: Path | None = None, out_dir: Path | None = None) -> list[Path]:
    """Compile `<package_dir>/api.proto` into `out_dir` (default: next to it); returns the written files.

    Idempotent; each file is replaced atomically, so a concurrent import sees the old or the new module.

    Raises BuildError when grpcio-tools is not installed or protoc fails.
    """
    package_dir = (package_dir or Path(__file__).parent).resolve()
    root = package_dir.parents[len(PACKAGE_PATH.parts) - 1]
    if package_dir != root / PACKAGE_PATH:
        raise BuildError(f"{package_dir} does not end in {PACKAGE_PATH}")
    try:
        from grpc_tools import protoc  # type: ignore[import-untyped]
    except ImportError as e:
        raise BuildError(
            "grpcio-tools is needed to generate the CRI bindings: pip install grpcio-tools"
        ) from e
    with tempfile.TemporaryDirectory(prefix="skiff-protoc-") as tmp:
        rc = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{root}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                str(PACKAGE_PATH / PROTO),
            ]
        )
        if rc != 0:
            raise BuildError(f"protoc failed on {package_dir / PROTO} (exit {rc})")
        stub = Path(tmp) / PACKAGE_PATH / "api_pb2.pyi"
        stub.write_text(PYI_HEADER + stub.read_text())
        written = []
        for name in OUTPUTS:
            target = (out_dir or package_dir) / name
            staged = target.with_name(f".{name}.partial")  # same filesystem as target, for os.replace
            shutil.copyfile(Path(tmp) / PACKAGE_PATH / name, staged)
            os.replace(staged, target)
            written.append(target)
    return written


def main() -> int:
    try:
        for path in generate():
            print(f"wrote {path}")
    except BuildError as e:
        print(f"skiff.agent.cri.build: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
