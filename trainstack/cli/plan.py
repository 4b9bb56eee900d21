"""`trainstack plan`: the command a user runs at every edit of a stack file.

Parsed without typer: typer coerces every option through a pydantic TypeAdapter, and importing pydantic and
building those adapters costs about 0.2 s CPU, a fifth of what a plan adds to its import floor
(scripts/bench.py). The console script (`trainstack.cli.entry`) hands a command line whose first word is `plan`
to `main` here. A plain one (a stack name and the options, each at most once, no `--help`, nothing unusual) is
read by `simple_args` without importing click either (click's import is a tenth of what a small stack's plan
costs beyond its floor); any other goes to the click command (`command`, built on first use), which reads
it, prints `--help` and refuses bad usage. The typer app keeps a `plan` command too (for `trainstack --help`
and `trainstack --debug plan ...`), declared from the same names and help texts, and all three call
`plan_command`. tests/cli/test_entry.py checks that they parse every plan command line alike.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

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


def run(stack: str, as_json: bool, root: Path | None, fmt: str, live_prices: bool) -> int:
    """`plan_command` with errors reported as the typer app reports them (one message, or the JSON document)."""
    from trainstack.cli.report import report, user_error_for

    try:
        return plan_command(stack, as_json=as_json, root=root, fmt=fmt, live_prices=live_prices)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - as the app does: a message, never a traceback
        return report(user_error_for(exc), json_mode=as_json)


_FLAGS = {"--json": "as_json", "--live-prices": "live_prices"}
_VALUED = {"--format": "fmt", "--root": "root"}


def simple_args(argv: list[str]) -> dict[str, Any] | None:
    """`run`'s arguments for a plain command line, as the click command reads it; None for anything else
    (`--help`, `--`, an unknown or repeated option, a value that starts with `-` or is empty, a second stack)."""
    args: dict[str, Any] = {"stack": "platform", "as_json": False, "root": None, "fmt": "text", "live_prices": False}
    seen: set[str] = set()
    rest = list(argv)
    while rest:
        token = rest.pop(0)
        if token in _FLAGS:
            args[_FLAGS[token]] = True
            continue
        name, eq, value = token.partition("=")
        if name in _VALUED:
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            if name in seen or not value or value.startswith("-"):
                return None
            seen.add(name)
            args[_VALUED[name]] = Path(value) if name == "--root" else value
            continue
        if token.startswith("-") or "stack" in seen:
            return None
        seen.add("stack")
        args["stack"] = token
    return args


def main(argv: list[str]) -> None:
    """`trainstack plan ARGV...` as the console script runs it; exits with the plan's code."""
    args = simple_args(argv)
    if args is None:
        _command().main(argv, prog_name="trainstack plan")  # click exits, also after --help or a usage error
        return
    raise SystemExit(run(**args))


def _click_command() -> Any:
    import click

    @click.command("plan", help=HELP)
    @click.argument("stack", default="platform", required=False)
    @click.option("--json", "as_json", is_flag=True, default=False, help=JSON_HELP)
    @click.option("--root", type=click.Path(path_type=Path), default=None, help=ROOT_HELP)
    @click.option("--format", "fmt", default="text", show_default=True, help=FORMAT_HELP)
    @click.option("--live-prices", is_flag=True, default=False, help=LIVE_PRICES_HELP)
    def command(stack: str, as_json: bool, root: Path | None, fmt: str, live_prices: bool) -> None:
        """`trainstack plan` as click parses it; errors reported as the typer app reports them."""
        raise click.exceptions.Exit(run(stack, as_json, root, fmt, live_prices))

    return command


_built: list[Any] = []


def _command() -> Any:
    if not _built:
        _built.append(_click_command())
    return _built[0]


def __getattr__(name: str) -> Any:
    if name == "command":  # the click command, built (and click imported) on first use
        return _command()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
