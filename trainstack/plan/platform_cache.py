"""The platform's offline outputs, kept between plans: what a cluster stack's StackReference reads.

A cluster plan needs its platform stack's outputs (subnets, buckets, the KMS key); offline, they come
from evaluating the platform program under the mock engine, which costs more than the cluster itself
(it imports the SDK modules of every platform resource). Those outputs are a pure function of the
platform's stack file, `Pulumi.yaml` (schema defaults), the code that builds and evaluates it (this
package, `__main__.py`) and the installed SDKs: the mock engine derives every id and name from the
logical names, and nothing in a platform's outputs reads the clock. So they are stored under a digest of
exactly those inputs and reused until one of them changes; `trainstack plan PLATFORM` refreshes them.

Where: `$TRAINSTACK_CACHE_DIR`, else `$XDG_CACHE_HOME/trainstack`, else `~/.cache/trainstack`
(`TRAINSTACK_CACHE_DIR=off` turns the cache off). A cache that cannot be read or written is skipped, never
an error: the plan then evaluates the platform, as without a cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when what is stored changes shape
KEEP = 64  # entries kept (newest first); each code edit makes a new key
_SDKS = ("pulumi", "pulumi_aws", "pulumi_kubernetes", "pulumi_policy")
_DIST_INFO = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+?)-(?P<version>[^-]+)\.dist-info$")


def cache_dir() -> Path | None:
    configured = os.environ.get("TRAINSTACK_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "false", "no") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "trainstack"


def _tree_digest(folder: Path, h: Any) -> None:
    """Every file under `folder` (symlinked folders followed, byte-compiled files skipped), by path and content."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, folder).encode() + b"\0")
            with open(path, "rb") as f:
                h.update(f.read())
            h.update(b"\0")


@cache
def _sdk_versions() -> str:
    """The installed versions of the Pulumi SDKs, from their dist-info folders (importlib.metadata costs
    more than a whole cache lookup)."""
    import importlib.util

    found: list[str] = []
    for module in _SDKS:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec else None
        if not origin:
            found.append(f"{module}=missing")
            continue
        site = Path(origin).parent.parent
        versions = [
            m.group(0)
            for entry in os.listdir(site)
            if (m := _DIST_INFO.match(entry)) and m.group("name").replace("-", "_").lower() == module
        ]
        found.append(f"{module}={sorted(versions)}@{site}")
    return ";".join(found)


def code_digest() -> str:
    """The code that builds and evaluates a stack: this package (with `components/` through its symlink)."""
    import trainstack

    h = hashlib.sha256()
    _tree_digest(Path(trainstack.__file__).resolve().parent, h)
    return h.hexdigest()


def key(root: Path, stack_file: Path) -> str:
    """The digest a platform's outputs are stored under (see the module docstring)."""
    h = hashlib.sha256()
    parts = [
        f"format={FORMAT}",
        f"python={sys.version}",
        f"sdks={_sdk_versions()}",
        f"code={code_digest()}",
        # The engine's config environment (pulumi.runtime.config reads it beside the stack's own config).
        f"PULUMI_CONFIG={os.environ.get('PULUMI_CONFIG', '')}",
    ]
    for part in parts:
        h.update(part.encode() + b"\0")
    for path in (root / "Pulumi.yaml", root / "__main__.py", stack_file):
        h.update(str(path.name).encode() + b"\0")
        h.update(path.read_bytes() if path.exists() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def _entry(digest: str) -> Path | None:
    folder = cache_dir()
    return folder / "platform-outputs" / f"{digest}.json" if folder is not None else None


def load(digest: str) -> dict[str, Any] | None:
    """The outputs stored under `digest`, or None (not stored, unreadable, or written by another format)."""
    path = _entry(digest)
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("key") != digest:
        return None
    outputs = doc.get("outputs")
    return outputs if isinstance(outputs, dict) else None


def store(digest: str, stack: str, outputs: dict[str, Any]) -> None:
    """Keep `outputs` under `digest` (atomically: a concurrent plan reads the old entry or the new one)."""
    path = _entry(digest)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": FORMAT, "key": digest, "stack": stack, "outputs": outputs}, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        _prune(path.parent)
    except OSError:
        return


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        old.unlink(missing_ok=True)
