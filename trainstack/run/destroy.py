"""Destroy and remove a stack: shared by `run` (its last stage), `down` and `reap`.

Retries with backoff. A lock (ConcurrentUpdateError) is cancelled only when its holder is provably gone
(trainstack.run.locks); a live or unknown holder is reported and the stack left alone. After a hard
interrupt (the CLI killed mid-step) the pending operations are cleared first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pulumi import automation as auto

from trainstack.run import locks
from trainstack.run.driver import Interrupts
from trainstack.run.progress import ProgressView
from trainstack.run.ui import Ui

REMOVED, NOT_FOUND, KEPT, BUSY = "removed", "not-found", "kept", "busy"


@dataclass(frozen=True)
class DestroyOutcome:
    status: (
        str  # removed | not-found | kept (destroy failed: the stack still costs money) | busy (locked by a live holder)
    )
    reason: str = ""

    @property
    def gone(self) -> bool:
        return self.status in (REMOVED, NOT_FOUND)


def first_line(exc: BaseException) -> str:
    """The CLI's own error line out of a CommandError's text (its stderr), without the code/stdout noise."""
    text = getattr(exc, "args", [""])[0] if getattr(exc, "args", None) else str(exc)
    for line in str(text).splitlines():
        line = line.strip()
        if line.startswith("stderr:"):
            line = line[len("stderr:") :].strip()
        if line and not line.startswith(("code:", "stdout:")):
            return line[:300]
    return str(exc)[:300]


def destroy_stack(
    stack: auto.Stack,
    *,
    ui: Ui,
    attempts: int,
    backoff: float,
    intr: Interrupts | None,
    expected: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> DestroyOutcome:
    """Destroy all resources and remove the stack (see the module docstring)."""
    cleared = False
    last = ""
    attempt = cancels = 0
    while attempt < attempts:
        attempt += 1
        if intr is not None and intr.escalated and not cleared:
            cleared = True
            outcome = clear_pending(stack, ui)
            if outcome is not None:
                return outcome
        view = ProgressView(ui.console, f"destroy {stack.name}", expected)
        try:
            with view:
                stack.destroy(remove=True, on_event=view.on_event)
            return DestroyOutcome(REMOVED)
        except auto.ConcurrentUpdateError as exc:
            outcome = cancel_if_stale(stack, exc, ui)
            if outcome is not None:
                return outcome
            cancels += 1
            if cancels <= 2:
                attempt -= 1  # a stale lock cancelled: the destroy itself has not been tried yet
                continue
            last = "the stack was locked again after its stale lock was cancelled"
        except auto.StackNotFoundError:
            return DestroyOutcome(NOT_FOUND, "already removed")
        except auto.CommandError as exc:
            last = view.state.errors[-1] if view.state.errors else first_line(exc)
            ui.say(f"destroy attempt {attempt}/{attempts} failed: {last}", "red")
        if attempt < attempts:
            sleep(backoff * attempt)
    return DestroyOutcome(KEPT, last)


def cancel_if_stale(stack: auto.Stack, exc: auto.ConcurrentUpdateError, ui: Ui) -> DestroyOutcome | None:
    """Cancel the stack's lock when every holder is provably gone (None: cancelled, go on); else BUSY."""
    is_stale, found = locks.stale(str(exc))
    if not is_stale:
        return DestroyOutcome(BUSY, locks.describe(found, stack.name))
    ui.say(f"{stack.name} is locked by {', '.join(map(str, found))}, which has exited: cancelling its lock", "yellow")
    try:
        stack.cancel()
    except auto.CommandError as cancel_exc:
        return DestroyOutcome(KEPT, f"cancelling the stale lock failed: {first_line(cancel_exc)}")
    return None


def clear_pending(stack: auto.Stack, ui: Ui) -> DestroyOutcome | None:
    """After a hard interrupt the CLI exits mid-step, leaving its lock and pending creates: cancel the lock
    (its holder has exited) and drop the pending creates from the state (cloud objects they may have made
    carry the stack's tags: `trainstack ls` shows them as orphans). None: go on with the destroy."""
    ui.say(f"clearing the interrupted update of {stack.name} (pending operations)", "yellow")
    for _ in range(2):
        try:
            stack.refresh(clear_pending_creates=True)
            return None
        except auto.ConcurrentUpdateError as exc:
            outcome = cancel_if_stale(stack, exc, ui)
            if outcome is not None:
                return outcome
        except auto.CommandError as exc:
            ui.say(f"refresh --clear-pending-creates failed: {first_line(exc)}", "red")
            return None
    return None
