"""The platform's offline outputs, kept between plans: what a cluster stack's StackReference reads.

A cluster plan needs its platform stack's outputs (subnets, buckets, the KMS key); offline, they come
from evaluating the platform program under the mock engine, which costs more than the cluster itself
(it imports the SDK modules of every platform resource). Those outputs are a pure function of the
platform's stack file, `Pulumi.yaml` (schema defaults), the code that builds and evaluates it (this
package, `__main__.py`) and the installed SDKs: the mock engine derives every id and name from the
logical names, and nothing in a platform's outputs reads the clock. So they are stored under a digest of
exactly those inputs and reused until one of them changes; `trainstack plan PLATFORM` refreshes them.

Where: `platform-outputs/` in the plan's cache (trainstack/model/memo.py: `$TRAINSTACK_CACHE_DIR`, else
`$XDG_CACHE_HOME/trainstack`, else `~/.cache/trainstack`; `TRAINSTACK_CACHE_DIR=off` turns it off). A cache
that cannot be read or written is skipped, never an error: the plan then evaluates the platform, as without
a cache.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from trainstack.model import memo

KEEP = 64  # entries kept (newest first); each code edit makes a new key
KIND = "platform-outputs"
_SDKS = ("pulumi", "pulumi_aws", "pulumi_kubernetes", "pulumi_policy")
_DIST_INFO = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+?)-(?P<version>[^-]+)\.dist-info$")


@cache
def _sdk_versions() -> str:
    """The installed versions of the Pulumi SDKs, from their dist-info folders (importlib.metadata costs
    more than a whole cache lookup)."""
    import importlib.util

    found: list[str] = []
    listed: dict[Path, list[re.Match[str]]] = {}  # site folder -> its dist-info entries (the SDKs share one)
    for module in _SDKS:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec else None
        if not origin:
            found.append(f"{module}=missing")
            continue
        site = Path(origin).parent.parent
        if site not in listed:
            listed[site] = [m for entry in os.listdir(site) if (m := _DIST_INFO.match(entry))]
        versions = [m.group(0) for m in listed[site] if m.group("name").replace("-", "_").lower() == module]
        found.append(f"{module}={sorted(versions)}@{site}")
    return ";".join(found)


def key(root: Path, stack_file: Path) -> str:
    """The digest a platform's outputs are stored under (see the module docstring)."""
    h = hashlib.sha256()
    for path in (root / "Pulumi.yaml", root / "__main__.py", stack_file):
        h.update(str(path.name).encode() + b"\0")
        h.update(path.read_bytes() if path.exists() else b"<missing>")
        h.update(b"\0")
    return memo.digest(
        [
            f"sdks={_sdk_versions()}",
            f"code={memo.code_digest()}",  # this package, with `components/` through its symlink
            # The engine's config environment (pulumi.runtime.config reads it beside the stack's own config).
            f"PULUMI_CONFIG={os.environ.get('PULUMI_CONFIG', '')}",
            f"files={h.hexdigest()}",
        ]
    )


def load(digest: str) -> dict[str, Any] | None:
    """The outputs stored under `digest`, or None (not stored, unreadable, or written by another format)."""
    outputs = memo.load(KIND, digest)
    return outputs if isinstance(outputs, dict) else None


def store(digest: str, stack: str, outputs: dict[str, Any]) -> None:
    """Keep `outputs` under `digest` (atomically: a concurrent plan reads the old entry or the new one)."""
    memo.store(KIND, digest, outputs, keep=KEEP, stack=stack)
