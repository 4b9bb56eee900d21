"""The `trainstack` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Ephemeral GPU training clusters on AWS, fed by a protected S3 data lake.")


@app.callback()
def _root() -> None:
    """Ephemeral GPU training clusters on AWS, fed by a protected S3 data lake."""


@app.command("plan")
def plan_cmd(
    stack: str = typer.Argument("platform", help="Stack name: reads stacks/Pulumi.STACK.yaml."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    root: Optional[Path] = typer.Option(None, help="Project root (default: this checkout)."),
) -> None:
    """Evaluate a stack offline (mock engine): resource tree, validation, cost. No AWS, no Pulumi CLI."""
    from .plan import REPO_ROOT, PlanError, plan, render, to_json

    console = Console(stderr=False)
    err = Console(stderr=True)
    try:
        result = plan(stack, root or REPO_ROOT)
    except PlanError as exc:
        if as_json:
            print(json.dumps({"stack": stack, "ok": False, "error": str(exc)}, indent=2))
        else:
            err.print(f"[bold red]plan failed[/] for stack {stack}:", highlight=False)
            # The message names keys and values: print it verbatim, never re-wrapped or marked up.
            err.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(code=2)
    if as_json:
        print(json.dumps({"ok": True, **to_json(result)}, indent=2, default=str))
    else:
        render(result, console)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
