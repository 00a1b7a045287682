"""The layer rules of ARCHITECTURE.md, checked by importing the modules in a clean process.

One process per rule, not per module: each start pays for numpy (and torch) again. Within
it, sys.modules is read after each import, so a failure still names the module that pulled
the forbidden package in (the first one in import order; later ones get no blame of their own
for what is already loaded, so fix and re-run).
"""

import json
import pkgutil
import subprocess
import sys

import maskdesk.core
import maskdesk.inference

_PROBE = """
import importlib, json, sys
forbidden, blamed = sys.argv[2:], {}
for module in sys.argv[1].split(","):
    importlib.import_module(module)
    for name in forbidden:
        if name in sys.modules and name not in blamed:
            blamed[name] = module
print(json.dumps(blamed))
"""


def _modules(package) -> list[str]:
    return [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]


def _first_importers(modules: list[str], forbidden: list[str]) -> dict[str, str]:
    """{forbidden package: the first of `modules` whose import loaded it}, in a new process."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(modules), *forbidden],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def test_the_probe_names_the_module_that_imports_a_forbidden_package() -> None:
    # The checks below must be able to fail: errors.py loads no sqlite3, store.py does.
    modules = ["maskdesk.core.errors", "maskdesk.core.store"]
    assert _first_importers(modules, ["sqlite3", "torch"]) == {"sqlite3": "maskdesk.core.store"}


def test_core_imports_neither_torch_nor_qt() -> None:
    modules = _modules(maskdesk.core)
    assert len(modules) >= 10
    assert _first_importers(modules, ["torch", "PySide6"]) == {}


def test_inference_does_not_import_qt() -> None:
    modules = _modules(maskdesk.inference)
    assert {"maskdesk.inference.models", "maskdesk.inference.training"} <= set(modules)
    assert _first_importers(modules, ["PySide6"]) == {}


def test_cli_help_and_the_entry_point_do_not_import_torch() -> None:
    # `maskdesk info`, `--help` and the start of the window must not pay for torch's start-up.
    code = (
        "import sys; from maskdesk.cli import build_parser; build_parser(); "
        "from maskdesk.app import commands; commands(); "
        "import maskdesk.ui.launch; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
