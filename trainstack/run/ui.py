"""What a command tells a person (a rich console) and asks them (a confirmation, only on a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def console(*, stderr: bool = False, file: Any = None) -> Any:
    """A rich console that never wraps when it is not a terminal: CI logs and files keep URIs, commands
    and JSON on one line (a wrapped `s3://…/ou` + `tput/` cannot be copied)."""
    from rich.console import Console

    c = Console(stderr=stderr, file=file)
    if not c.is_terminal:
        c.soft_wrap = True
    return c


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed or detached stdin
        return False


class Ui:
    """Messages go to `console`; questions are asked only when stdin is a terminal (where a person can
    answer), whatever stdout is: `trainstack run … | tee log` still asks."""

    def __init__(self, console: Any, confirm: Callable[[str], bool] | None = None):
        self.console = console
        self._confirm = confirm

    def say(self, text: str, style: str = "") -> None:
        from rich.markup import escape

        # Messages quote config values (lists in brackets): never parse them as markup.
        self.console.print(
            f"[{style}]{escape(text)}[/]" if style else text, highlight=False, markup=bool(style), soft_wrap=True
        )

    def log(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def confirm(self, question: str) -> bool:
        if self._confirm is not None:
            return self._confirm(question)
        from rich.prompt import Confirm

        return Confirm.ask(question, console=self.console, default=False)

    @property
    def can_ask(self) -> bool:
        """A person can answer a question (stdin is a terminal, or a test supplied the answers)."""
        return self._confirm is not None or stdin_is_terminal()

    # Kept for callers of the old name.
    interactive = can_ask
