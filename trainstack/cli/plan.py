"""`trainstack plan`: the command a user runs at every edit of a stack file.

Parsed by click alone (`command`), not by the typer app: typer coerces every option through a pydantic
TypeAdapter, and importing pydantic and building those adapters costs about 0.2 s CPU, a fifth of what a
plan adds to its import floor (scripts/bench.py). The console script (`trainstack.cli.entry`) sends a
command line whose first word is `plan` here; the typer app keeps a `plan` command too (for `trainstack
--help` and `trainstack --debug plan ...`), declared from the same names and help texts, and both call
`plan_command`. tests/cli/test_entry.py checks that both parse every plan command line alike.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from trainstack.errors import ExitCode, UserError

FORMATS = ("text", "mermaid", "dot")
HELP = "Evaluate a stack offline (mock engine): resource tree, validation, cost. No AWS, no Pulumi CLI."
STACK_HELP = "Stack name: reads stacks/Pulumi.STACK.yaml."
JSON_HELP = "Machine-readable output."
ROOT_HELP = "Project root (default: this checkout)."
FORMAT_HELP = (
    "text (tree, cost, timing), mermaid or dot (the component tree, the platform reference and the data flow as a "
    "diagram)."
)
LIVE_PRICES_HELP = (
    "Price from AWS (Price List API, spot price history; needs credentials) instead of the packaged table."
)


def plan_command(stack: str, *, as_json: bool, root: Path | None, fmt: str, live_prices: bool) -> int:
    """Plan `stack` and print it; the exit code (2 when `pulumi preview` would refuse it). Raises UserError."""
    from trainstack.plan.planner import REPO_ROOT, PlanError, plan
    from trainstack.plan.render import plain_text, plain_width, render, to_json
    from trainstack.run.ui import console  # rich is imported only where a console is made

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: not a format. Fix: use text, mermaid or dot")
    try:
        result = plan(stack, root or REPO_ROOT, live_prices=live_prices)
    except PlanError as exc:
        raise UserError(
            f"plan failed for stack {stack}: {exc.message}", payload={"stack": stack, "ok": False, "error": exc.message}
        ) from None
    if as_json:
        print(json.dumps({"ok": not result.findings, **to_json(result)}, indent=2, default=str))
    elif fmt != "text":
        from trainstack.plan.diagram import FORMATS as DIAGRAMS

        print(DIAGRAMS[fmt](result), end="")
        for f in result.findings:
            console(stderr=True).print(f"provider-schema finding: {f}", highlight=False, markup=False, soft_wrap=True)
    else:
        # Not a terminal (a pipe, a file, CI): the same characters rich would print, made without rich.
        width = plain_width()
        text = plain_text(result, width) if width is not None else None
        if text is not None:
            sys.stdout.write(text)
        else:
            render(result, console())
    if result.policy is not None and result.policy.mandatory:
        return ExitCode.REFUSED  # a mandatory policy violation: `pulumi preview` would fail too
    if result.findings:  # inputs the provider would refuse: fail like bad config does
        return ExitCode.REFUSED
    return ExitCode.OK


@click.command("plan", help=HELP)
@click.argument("stack", default="platform", required=False)
@click.option("--json", "as_json", is_flag=True, default=False, help=JSON_HELP)
@click.option("--root", type=click.Path(path_type=Path), default=None, help=ROOT_HELP)
@click.option("--format", "fmt", default="text", show_default=True, help=FORMAT_HELP)
@click.option("--live-prices", is_flag=True, default=False, help=LIVE_PRICES_HELP)
def command(stack: str, as_json: bool, root: Path | None, fmt: str, live_prices: bool) -> None:
    """`trainstack plan` as the console script runs it; errors reported as the typer app reports them."""
    from trainstack.cli.report import report, user_error_for

    try:
        code = plan_command(stack, as_json=as_json, root=root, fmt=fmt, live_prices=live_prices)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - as the app does: a message, never a traceback
        code = report(user_error_for(exc), json_mode=as_json)
    raise click.exceptions.Exit(code)
