"""The engine's core must import without torch and without Qt (app-only installs)."""

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import engine

ROOT = Path(__file__).parents[2]
# Modules allowed to import torch: the zoo (except its torch-free registry) and the torch backend.
TORCH_SIDE = ("engine.models.", "engine.backends.torch_backend")
TORCH_FREE_IN_MODELS = {"engine.models", "engine.models.registry"}


def _core_modules(packages: bool = True) -> list[str]:
    found = [(m.name, m.ispkg) for m in pkgutil.walk_packages(engine.__path__, "engine.")]
    return sorted(
        n
        for n, ispkg in [("engine", True), *found]
        if (n in TORCH_FREE_IN_MODELS or not n.startswith(TORCH_SIDE)) and (packages or not ispkg)
    )


def test_core_modules_import_with_torch_and_qt_blocked():
    modules = _core_modules()
    code = (
        "import sys\n"
        "for blocked in ('torch', 'PySide6'):\n"
        "    sys.modules[blocked] = None  # any import of it now raises ImportError\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_import_linter_contract_lists_every_core_module():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (core,) = [c for c in contracts if "without torch" in c["name"]]
    listed = set(core["source_modules"])
    # Packages are left out of the contract (a package there stands for all its children,
    # torch-side ones included); their __init__ files are imported by the test above.
    expected = set(_core_modules(packages=False))
    assert expected - listed == set(), "add these modules to the import-linter core contract"
