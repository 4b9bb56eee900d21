"""Who holds a stack's Pulumi lock, and whether that holder is provably gone.

A self-managed (DIY) backend refuses an update on a locked stack with `ConcurrentUpdateError` whose text
names each lock's holder, written by the CLI that took it (pulumi `pkg/backend/diy/lock.go`,
`checkForLock`): `<lock url>: created by <user>@<host> (pid <pid>) at <RFC 3339 time>`. A lock is
cancelled only when its holder is provably gone: it was taken on this host and that process no longer
exists (a driver killed mid-update). A live holder, a holder on another machine, or Pulumi Cloud's
`[409] Conflict` (which names nobody) is reported, never cancelled.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

_HOLDER_RE = re.compile(
    r"^\s*(?P<url>\S+): created by (?P<user>.*)@(?P<host>[^@\s]+) \(pid (?P<pid>\d+)\) at (?P<at>\S+)\s*$", re.M
)


@dataclass(frozen=True)
class LockHolder:
    url: str
    user: str
    host: str
    pid: int
    since: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}, since {self.since})"


def holders(error_text: str) -> list[LockHolder]:
    """The lock holders named in a DIY backend's "the stack is currently locked by" error; [] if none."""
    return [LockHolder(m["url"], m["user"], m["host"], int(m["pid"]), m["at"]) for m in _HOLDER_RE.finditer(error_text)]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def gone(holder: LockHolder, *, hostname: str | None = None) -> bool:
    """True only when the holder ran on this host and its process has exited."""
    return holder.host == (hostname or socket.gethostname()) and not pid_alive(holder.pid)


def stale(error_text: str, *, hostname: str | None = None) -> tuple[bool, list[LockHolder]]:
    """(every holder is provably gone, the holders). No named holder (Pulumi Cloud) is never stale."""
    found = holders(error_text)
    return bool(found) and all(gone(h, hostname=hostname) for h in found), found


def describe(found: list[LockHolder], stack: str) -> str:
    """Why a lock is left alone, and what the user can do."""
    if not found:
        return (
            f"{stack} is locked by another update in progress (the backend does not say whose: Pulumi Cloud "
            f"shows it on the stack's page). Fix: wait for it to end; if it is really dead, `pulumi cancel "
            f"--stack {stack}` and retry"
        )
    here = socket.gethostname()
    parts = []
    for h in found:
        state = (
            "still running on this machine"
            if h.host == here and pid_alive(h.pid)
            else "on another machine: cannot tell whether it is still running"
            if h.host != here
            else "gone"
        )
        parts.append(f"{h} - {state}")
    return (
        f"{stack} is locked by " + "; ".join(parts) + ". Nothing was changed. Fix: wait for that update to end "
        f"(or stop it where it runs); if you are sure it is dead, `pulumi cancel --stack {stack}` and retry"
    )
