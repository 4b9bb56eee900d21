"""Where the trainstack project is on disk: the folder holding its `Pulumi.yaml` and `stacks/`.

Every command takes `--root`; without it, the project is the nearest folder at or above the current
directory whose `Pulumi.yaml` names the `trainstack` project, else the checkout this package was
installed from (an editable install), else the current directory (the commands then say what is missing).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PROJECT_NAME = "trainstack"
_NAME_RE = re.compile(r"^name:\s*['\"]?([\w.-]+)", re.M)


def _is_project(folder: Path) -> bool:
    try:
        text = (folder / "Pulumi.yaml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    m = _NAME_RE.search(text)
    return bool(m and m.group(1) == PROJECT_NAME)


def find_root(start: Path | None = None) -> Path:
    """The project folder (see the module docstring)."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if _is_project(folder):
            return folder
    checkout = Path(__file__).resolve().parent.parent
    return checkout if _is_project(checkout) else here


REPO_ROOT = find_root()
