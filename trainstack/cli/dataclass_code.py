"""Compiled dataclass methods, kept between plans (installed by `trainstack plan` alone).

`@dataclass` writes the source of each generated method (`__init__`, `__repr__`, `__eq__`, `__setattr__` of a
frozen class, ...) and compiles it with `exec(text, globals, ns)` (CPython's dataclasses.py, `_create_fn`): about
400 compilations as a plan imports the model, its checks and the components, a fifth to a third of what a plan
costs beyond its import floor (scripts/bench.py). The text of a generated method is the same in every process
until a class changes, so its compiled code is kept, as `__pycache__` keeps a module's: `install()` gives the
dataclasses module an `exec` that compiles each text once and then reuses the code object; `save()` writes the
table for the next plan.

- The code is a function of the text alone: compiled as `exec` would compile it (filename "<string>", the
  calling module's compiler flags, which in dataclasses.py are none), and looked up by the whole text, so a
  changed class compiles anew and nothing else is ever served.
- The table belongs to one interpreter: its file is named after the bytecode magic number and the
  optimisation level, and read with `marshal`, as .pyc files are.
- It lives in the plan's cache (trainstack/model/memo.py: `$TRAINSTACK_CACHE_DIR`, else the XDG cache,
  `TRAINSTACK_CACHE_DIR=off` turns it off). A file that cannot be read or written is skipped, never an error:
  the methods are then compiled, as without it.
"""

from __future__ import annotations

import builtins
import importlib.util
import marshal
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

KIND = "dataclass-code"
KEEP = 4096  # texts kept; more (after many edits of many classes) start the table again from this run's


class CodeTable:
    """The `exec` dataclasses.py calls, compiling each text once (see the module docstring)."""

    def __init__(self, path: Path | None, codes: dict[str, types.CodeType]):
        self.path = path
        self.codes = codes
        self.used: set[str] = set()
        self.compiled = 0  # texts compiled in this process (not found in the table)

    def __call__(self, source: Any, globals: Any = None, locals: Any = None, /) -> None:  # noqa: A002 - exec's
        if type(source) is not str:  # only dataclasses.py calls this, with a str; anything else as exec takes it
            return builtins.exec(source, globals, locals)
        code = self.codes.get(source)
        if code is None:
            # dont_inherit: this module's `from __future__ import annotations` must not leak into the method
            # (dataclasses.py, which calls exec, has no future imports).
            code = self.codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
            self.compiled += 1
        self.used.add(source)
        return builtins.exec(code, globals, locals)

    def save(self) -> None:
        """Write the table for the next plan when this one compiled anything (atomically)."""
        if self.path is None or not self.compiled:
            return
        codes = self.codes
        if len(codes) > KEEP:
            codes = {text: code for text, code in codes.items() if text in self.used}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".marshal")
            with os.fdopen(fd, "wb") as f:
                f.write(marshal.dumps(codes))
            os.replace(tmp, self.path)
        except (OSError, ValueError):
            return


def table_path() -> Path | None:
    from trainstack.model.memo import cache_dir

    folder = cache_dir()
    if folder is None:
        return None
    return folder / KIND / f"{importlib.util.MAGIC_NUMBER.hex()}-O{sys.flags.optimize}.marshal"


def _load(path: Path | None) -> dict[str, types.CodeType]:
    if path is None:
        return {}
    try:
        codes = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(codes, dict):
        return {}
    return {k: v for k, v in codes.items() if isinstance(k, str) and isinstance(v, types.CodeType)}


def install() -> CodeTable | None:
    """Give the dataclasses module the caching `exec` (once per process); the table, or None if it already has
    one or has no `_create_fn` that calls `exec` (another Python's dataclasses: left as it is)."""
    import dataclasses

    create_fn = getattr(dataclasses, "_create_fn", None)
    calls_exec = isinstance(create_fn, types.FunctionType) and "exec" in create_fn.__code__.co_names
    if "exec" in vars(dataclasses) or not calls_exec:
        return None
    path = table_path()
    table = CodeTable(path, _load(path))
    dataclasses.exec = table  # type: ignore[attr-defined]  # a module global shadows the builtin
    return table


def uninstall(table: CodeTable) -> None:
    import dataclasses

    if vars(dataclasses).get("exec") is table:
        del dataclasses.exec  # type: ignore[attr-defined]
