"""Helpers shared by the tests (fixtures are in conftest.py, fakes under tests/fakes/)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = ("trainstack", "components", "scripts")  # trainstack/components, trainstack/scripts: symlinks to the last two


def copy_project(dest: Path, *, code: bool = False) -> Path:
    """A copy of the project a test may edit: Pulumi.yaml, __main__.py, stacks/ and examples/ (the stacks'
    job.workdir), and with `code` the package itself (for a subprocess that must run the copy's code)."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, dest / name)
    folders = ("stacks", "examples") + (CODE if code else ())
    for folder in folders:
        shutil.copytree(ROOT / folder, dest / folder, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return dest
