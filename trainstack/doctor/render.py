"""The doctor's screen: one line per check, the fix under each failure; nothing wrapped off a terminal."""

from __future__ import annotations

from typing import Any

from trainstack.doctor.result import Report, Status

MARK = {
    Status.PASS: ("ok  ", "green"),
    Status.WARN: ("warn", "yellow"),
    Status.FAIL: ("FAIL", "bold red"),
    Status.SKIP: ("skip", "dim"),
}


def render(report: Report, console: Any) -> None:
    from rich.markup import escape

    # Off a terminal (CI logs, files) nothing is fitted to a width: URIs and commands stay whole.
    wrap = {"soft_wrap": not console.is_terminal}
    console.print(
        f"[bold]trainstack doctor[/] {escape(report.stack)}: backend {escape(report.backend)}, {escape(report.region)}",
        highlight=False,
    )
    for c in report.checks:
        mark, style = MARK[c.status]
        line = f"[{style}]{mark}[/] {escape(c.family)}: {escape(c.name)}"
        if c.detail:
            line += f" [dim]-[/] {escape(c.detail)}"
        console.print(line, highlight=False, **wrap)
        if c.fix and c.status in (Status.FAIL, Status.WARN):
            console.print(f"      fix: {escape(c.fix)}", highlight=False, **wrap)
    for left in report.leftovers:
        console.print(f"[bold red]LEFT[/] {escape(left)}", highlight=False, **wrap)
    fails, warns = len(report.failures), sum(1 for c in report.checks if c.status is Status.WARN)
    if report.interrupted:
        verdict = "[bold yellow]interrupted[/]"
    elif report.ready:
        verdict = "[bold green]ready[/]"
    else:
        verdict = f"[bold red]not ready[/]: {fails} problem(s)"
    extra = f", {len(report.leftovers)} probe resource(s) left" if report.leftovers else ""
    console.print(f"{verdict} ({warns} warning(s){extra}; {report.seconds:.1f} s)", highlight=False)
