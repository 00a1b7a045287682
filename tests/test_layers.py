"""The layer rules of ARCHITECTURE.md, checked by importing each module in a clean process."""

import pkgutil
import subprocess
import sys

import pytest

import maskdesk.core
import maskdesk.inference


def _modules(package) -> list[str]:
    return [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]


def _loaded_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {name.split(".")[0] for name in out.split()}


@pytest.mark.parametrize("module", _modules(maskdesk.core))
def test_core_imports_neither_torch_nor_qt(module: str) -> None:
    loaded = _loaded_after_import(module)
    assert "torch" not in loaded
    assert "PySide6" not in loaded


@pytest.mark.parametrize("module", _modules(maskdesk.inference))
def test_inference_does_not_import_qt(module: str) -> None:
    assert "PySide6" not in _loaded_after_import(module)


def test_cli_help_does_not_import_torch() -> None:
    # `maskdesk info` and `--help` must answer without paying for torch's start-up.
    code = (
        "import sys; from maskdesk.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
