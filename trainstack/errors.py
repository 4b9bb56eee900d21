"""The one error type a user sees, and the exit codes of every `trainstack` command (named once, here).

Every layer raises `UserError` (or a subclass kept for its callers: PlanError, RefusedError, UploadError,
FleetError, JobError, CliMissingError) with a message that says what failed, the value, and the fix.
The CLI catches it in one place (`trainstack.cli.main`), prints the message and exits with its code;
anything else is a bug, shown as one line (and the traceback with `--debug`).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """What a `trainstack` command's exit status means (the same for every command)."""

    OK = 0
    FAILED = 1  # the work ran and failed: `up` or the job (the stack is destroyed), files not uploaded, a reap
    REFUSED = 2  # bad input or an unmet precondition: refused before anything was created or changed
    CLEANUP_INCOMPLETE = 3  # a stack was kept that may still cost money: `trainstack down NAME` retries
    NOT_FOUND = 4  # the named stack or job does not exist: nothing to do
    BUSY = 5  # another live process holds the stack (its Pulumi lock): nothing was changed, try again later
    INTERNAL = 70  # a bug in trainstack (EX_SOFTWARE): `--debug` shows the traceback
    INTERRUPTED = 130  # Ctrl-C / SIGTERM (128 + SIGINT)


# What each code means, for `--help` texts and the docs' table (kept beside the codes).
MEANING = {
    ExitCode.OK: "success",
    ExitCode.FAILED: "the work ran and failed (`up` or the job; the stack was destroyed)",
    ExitCode.REFUSED: "refused: bad input or an unmet precondition; nothing was created or changed",
    ExitCode.CLEANUP_INCOMPLETE: "a stack was kept and may still cost money; retry with `trainstack down NAME`",
    ExitCode.NOT_FOUND: "the named stack or job does not exist",
    ExitCode.BUSY: "another live process holds the stack's lock; nothing was changed",
    ExitCode.INTERNAL: "a bug in trainstack; rerun with --debug for the traceback",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C, SIGTERM)",
}


class UserError(Exception):
    """A problem the user can act on. The message names what failed, the value and the fix.

    `payload` is what `--json` prints instead of the default `{"ok": false, "error": ..., "exitCode": ...}`
    (e.g. a run's record, which says everything about the run)."""

    exit_code: ExitCode = ExitCode.REFUSED

    def __init__(self, message: str, exit_code: int | None = None, *, payload: dict[str, Any] | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = ExitCode(exit_code)
        self.payload = payload

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def to_json(self) -> dict[str, Any]:
        if self.payload is not None:
            return self.payload
        return {"ok": False, "exitCode": int(self.exit_code), "error": self.message}


def close_matches(word: str, possibilities: Sequence[str], **kw: Any) -> list[str]:
    """`difflib.get_close_matches`, for a refusal's "did you mean": difflib is imported only when a refusal is
    written, so a clean `trainstack plan` never imports it."""
    import difflib

    return difflib.get_close_matches(word, possibilities, **kw)
