"""Results kept between processes: the offline plan's pure computations that cost more to redo than to read.

An entry is a pure function of its inputs, of this package's code and of the library it consults (the
platform's outputs: the Pulumi SDKs; botocore's reports: botocore and its data path). It is stored under a
digest of exactly those, so an edit of any of them computes it anew; nothing else is ever served.

Where: `$TRAINSTACK_CACHE_DIR`, else `$XDG_CACHE_HOME/trainstack`, else `~/.cache/trainstack` (never the
checkout; `TRAINSTACK_CACHE_DIR=off` turns it off). An entry that cannot be read or written is skipped, never an
error: the value is then computed, as without a cache. docs/commands.md ("The plan's cache") says the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
FORMAT = 1  # bump when what is stored changes shape


def cache_dir() -> Path | None:
    configured = os.environ.get("TRAINSTACK_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "false", "no") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "trainstack"


def _tree_files(folder: Path) -> Iterator[tuple[str, str]]:
    """(path relative to `folder`, path) of every file under it, in a fixed order: symlinked folders followed,
    byte-compiled files, `__pycache__` and hidden folders skipped."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")):
                path = os.path.join(dirpath, name)
                yield os.path.relpath(path, folder), path


def tree_digest(folder: Path, h: Any) -> None:
    """Every file under `folder` (see _tree_files), by path and content."""
    for rel, path in _tree_files(folder):
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
        h.update(b"\0")


def _tree_stats(folder: Path) -> list[list[Any]]:
    """Every file tree_digest reads, in its order, with what any write to it changes: size, mtime, ctime
    (which no one can set back: utime sets only atime and mtime) and inode (a file replaced by another)."""
    out: list[list[Any]] = []
    for rel, path in _tree_files(folder):
        st = os.stat(path)
        out.append([rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino])
    return out


RACY_NS = 2_000_000_000  # a file changed this close before its digest was taken is read again (see code_digest)


@cache
def code_digest() -> str:
    """The code that builds, evaluates and checks a stack: this package (with `components/` through its
    symlink). Once per process: the code a process runs does not change under it.

    Reading and hashing every file costs more than a cached plan's whole look-up, so the digest is kept with
    the files' stats (path, size, mtime, ctime, inode; `code-digest/` in the cache) and reused while every
    stat is the same, as git's index trusts a file whose stat did not change. A file whose ctime is within
    RACY_NS of when the digest was taken could have been written again within the same timestamp (git's "racy
    clean" case): then the files are read and hashed again."""
    return folder_digest(Path(__file__).resolve().parent.parent)


def folder_digest(folder: Path) -> str:
    """tree_digest of `folder` (sha256, hex), reused from the cache while no file's stat changed (code_digest)."""
    stats = _tree_stats(folder)
    index = _entry("code-digest", hashlib.sha256(str(folder).encode()).hexdigest()[:32])
    if index is not None:
        try:
            doc = json.loads(index.read_text(encoding="utf-8"))
            if doc.get("format") == FORMAT and doc.get("files") == stats and isinstance(doc.get("digest"), str):
                taken = doc.get("taken_ns")
                if isinstance(taken, int) and all(row[3] < taken - RACY_NS for row in stats):
                    return str(doc["digest"])
        except (OSError, ValueError):
            pass
    taken_ns = time.time_ns()
    h = hashlib.sha256()
    tree_digest(folder, h)
    digest = h.hexdigest()
    if index is not None and _tree_stats(folder) == stats:  # nothing changed while it was read
        try:
            index.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=index.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"format": FORMAT, "taken_ns": taken_ns, "digest": digest, "files": stats}, f)
            os.replace(tmp, index)
        except OSError:
            pass
    return digest


def digest(parts: list[str]) -> str:
    h = hashlib.sha256()
    for part in [f"format={FORMAT}", f"python={sys.version}", *parts]:
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _entry(kind: str, key: str) -> Path | None:
    folder = cache_dir()
    return folder / kind / f"{key}.json" if folder is not None else None


def load(kind: str, key: str) -> Any | None:
    """The value stored under `key`, or None (not stored, unreadable, or stored by another format)."""
    path = _entry(kind, key)
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("key") != key:
        return None
    return doc.get("value")


def store(kind: str, key: str, value: Any, *, keep: int, **about: Any) -> None:
    """Keep `value` under `key` (atomically: a concurrent plan reads the old entry or the new one), and the
    `keep` newest entries of `kind`."""
    path = _entry(kind, key)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": FORMAT, "key": key, **about, "value": value})  # never sorted: the order is data
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        entries = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[keep:]:
            old.unlink(missing_ok=True)
    except OSError:
        return


def remembered(kind: str, parts: list[str], compute: Callable[[], T], *, keep: int = 256) -> T:
    """`compute()`, or what it returned before for the same `parts`, code and Python. Its value must survive
    a JSON round trip unchanged (strings, numbers, lists, dicts of them)."""
    key = digest([f"code={code_digest()}", *parts])
    found = load(kind, key)
    if found is not None:
        return found
    value = compute()
    store(kind, key, value, keep=keep, inputs=parts)
    return value
