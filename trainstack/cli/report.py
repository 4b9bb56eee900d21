"""How an error that escaped a command reaches the user: one message (or the JSON document) and an exit code.

Shared by the typer app (`trainstack.cli.main._Commands.invoke`) and the console script's plan path
(`trainstack.cli.entry`), which must not import typer. No typer here.
"""

from __future__ import annotations

import json
import os

from trainstack.errors import ExitCode, UserError

DEBUG_ENV = "TRAINSTACK_DEBUG"


def known_error(exc: BaseException) -> UserError | None:
    """AWS SDK and Pulumi CLI errors that escaped a command, as messages with a fix."""
    from trainstack.fleet.aws import user_error

    found = user_error(exc)
    if found is not None:
        return found
    try:
        from pulumi import automation as auto
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, auto.StackNotFoundError):
        from trainstack.run.destroy import first_line

        return UserError(
            f"pulumi: {first_line(exc)}. Fix: check the stack name (`pulumi stack ls`)", ExitCode.NOT_FOUND
        )
    if isinstance(exc, auto.CommandError):
        from trainstack.run.destroy import first_line

        return UserError(f"pulumi: {first_line(exc)}")
    if isinstance(exc, OSError) and exc.filename:
        return UserError(f"{exc.filename}: {exc.strerror}")
    return None


def user_error_for(exc: BaseException) -> UserError:
    """What the user is told about `exc`: itself (a UserError), "interrupted", a known AWS/Pulumi error,
    else an unexpected error (a bug: one line, and the traceback on stderr with --debug)."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return UserError("interrupted", ExitCode.INTERRUPTED)
    known = known_error(exc)
    if known is not None:
        return known
    if os.environ.get(DEBUG_ENV):
        import traceback

        traceback.print_exception(exc)
    return UserError(
        f"unexpected error: {type(exc).__name__}: {exc}. This is a bug in trainstack: rerun with --debug "
        "for the traceback and report it",
        ExitCode.INTERNAL,
    )


def report(exc: UserError, *, json_mode: bool) -> int:
    """Print `exc` (the JSON document on stdout with --json, else one line on stderr); its exit code."""
    from trainstack.run.ui import console

    if json_mode:  # scripts read stdout: the error is the JSON document, and nothing else is printed
        print(json.dumps(exc.to_json(), indent=2, default=str))
    else:
        # The message names keys and values: printed verbatim, never re-wrapped or marked up.
        console(stderr=True).print(f"error: {exc.message}", markup=False, highlight=False, soft_wrap=True)
    return int(exc.exit_code)
