"""Build hook: generate the CRI v1 bindings from `skiff/agent/cri/api.proto` whenever skiff is built.

Everything else about the package is declared in pyproject.toml. The generation is a `build` sub-command
that follows setuptools' SubCommand protocol (setuptools/command/build.py), so it runs for wheels and for
editable installs (`pip install -e .`, PEP 660) alike: a wheel gets the bindings in its build directory,
an editable install gets them written next to `api.proto` in the source tree (they are git-ignored there).
A failure stops the install instead of leaving a skiff that cannot import its runtime client.

The generator is loaded by file path because skiff's own dependencies are not installed in the isolated
build environment; it needs `grpcio-tools` there (pyproject `[build-system].requires`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from setuptools import Command, setup
from setuptools.command.build import build

ROOT = Path(__file__).parent.resolve()
CRI_PACKAGE = Path("skiff", "agent", "cri")
PROTO = CRI_PACKAGE / "api.proto"
GENERATED = (CRI_PACKAGE / "api_pb2.py", CRI_PACKAGE / "api_pb2.pyi")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_skiff_cri_build", ROOT / CRI_PACKAGE / "build.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {ROOT / CRI_PACKAGE / 'build.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildCRIBindings(Command):
    description = "generate skiff/agent/cri/api_pb2.py(i) from api.proto with grpcio-tools"
    user_options: list[tuple[str, str | None, str]] = []

    def initialize_options(self) -> None:
        self.build_lib: str | None = None
        self.editable_mode = False

    def finalize_options(self) -> None:
        self.set_undefined_options("build_py", ("build_lib", "build_lib"))

    def _target_dir(self) -> Path:
        # In place for editable installs (the import path is the source tree), else the build directory.
        return ROOT / CRI_PACKAGE if self.editable_mode else Path(str(self.build_lib)) / CRI_PACKAGE

    def run(self) -> None:
        target = self._target_dir()
        target.mkdir(parents=True, exist_ok=True)
        for path in load_generator().generate(ROOT / CRI_PACKAGE, out_dir=target):
            print(f"skiff: generated {path}")

    def get_source_files(self) -> list[str]:
        return [str(PROTO)]

    def get_outputs(self) -> list[str]:
        return [str(Path(str(self.build_lib)) / path) for path in GENERATED]

    def get_output_mapping(self) -> dict[str, str]:
        if not self.editable_mode:
            return {}
        return {str(Path(str(self.build_lib)) / path): str(path) for path in GENERATED}


class BuildWithCRIBindings(build):
    sub_commands = [("build_cri_bindings", None), *build.sub_commands]


setup(
    cmdclass={"build": BuildWithCRIBindings, "build_cri_bindings": BuildCRIBindings},
    package_data={"skiff.agent.cri": ["api.proto"]},
)
