"""The package layers of docs/architecture.md, enforced: import-linter's contracts in pyproject.toml."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.wine import RUST_PRNG

ROOT = Path(__file__).resolve().parent.parent


def lint_imports() -> list[str]:
    """lint-imports run by this interpreter: its script's folder differs by install (a venv's bin/ or
    Scripts\\, a system Python's Scripts\\ beside python.exe's folder, a --target install's bin\\)."""
    assert importlib.util.find_spec("importlinter") is not None, "import-linter is not installed (test extra)"
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return [sys.executable, "-c", code, "--no-cache"]


@pytest.mark.wine_lacks(*RUST_PRNG)
def test_the_import_contracts_are_kept() -> None:
    done = subprocess.run(lint_imports(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


def test_no_module_sits_at_the_top_but_the_allowed_ones() -> None:
    top = sorted(p.stem for p in (ROOT / "orchestrator").glob("*.py"))
    assert top == ["__init__", "__main__", "app", "errors", "types"]


@pytest.mark.wine_lacks(*RUST_PRNG)
def test_a_planted_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    """The contract can fail: core/events.py importing the API (a higher layer) is reported."""
    # copy_function=shutil.copy: copytree's default, copy2, calls CopyFile2 on Windows, which Wine 8.0 lacks (crash)
    shutil.copytree(ROOT / "orchestrator", tmp_path / "orchestrator", ignore=shutil.ignore_patterns("__pycache__"),
                    copy_function=shutil.copy)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    events = tmp_path / "orchestrator" / "core" / "events.py"
    events.write_text(events.read_text() + "\nfrom orchestrator.api import app as _planted  # noqa\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    if sys.platform == "win32":  # Windows programs need SYSTEMROOT (sockets, crypto); the planted copy still wins
        env |= {"SYSTEMROOT": os.environ["SYSTEMROOT"], "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(lint_imports(), cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "orchestrator.core is not allowed to import orchestrator.api" in done.stdout
    assert "orchestrator.core.events -> orchestrator.api.app" in done.stdout
