"""The layering holds: `rules` <- `engine` <- `api`, capabilities inside `engine` import only those below them, no
web framework in `engine`, no SQL in `api`. The contracts live in pyproject.toml; this runs them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout, result.stdout


def test_every_source_folder_is_a_package_with_a_docstring():
    """`pip install` finds packages by their `__init__.py`: a folder of modules without one would be left out
    of the install, and each package says in its docstring what it owns."""
    for top in ("rules", "engine", "api"):
        for folder in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts or not any(folder.glob("*.py")):
                continue
            if "migrations" in folder.parts:   # Alembic's scripts, loaded by path
                continue
            init = folder / "__init__.py"
            assert init.exists(), f"{folder.relative_to(ROOT)} has modules but no __init__.py"
            assert init.read_text(encoding="utf-8").lstrip().startswith('"""'), f"{init.relative_to(ROOT)}: no docstring"
