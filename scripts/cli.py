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
        raise typer.Exit(code=2) from None
    if as_json:
        print(json.dumps({"ok": True, **to_json(result)}, indent=2, default=str))
    else:
        render(result, console)


sagemaker_app = typer.Typer(no_args_is_help=True, help="Training jobs on a deployed sagemaker cluster stack.")
app.add_typer(sagemaker_app, name="sagemaker")


def _sagemaker_client(region: str):
    import boto3

    return boto3.client("sagemaker", region_name=region)


def _print_status(console: Console, st) -> None:
    from rich.markup import escape

    # Everything that comes from AWS is escaped: a failure reason such as "[Errno 2] ..." is not markup.
    line = f"{escape(st.name)}: [bold]{escape(st.status)}[/] ({escape(st.secondary_status)})"
    if st.model_artifacts:
        line += f"\n  model: {escape(st.model_artifacts)}"
    if st.failure_reason:
        line += f"\n  [red]failure:[/] {escape(st.failure_reason)}"
    if st.spot_savings_percent is not None:
        line += f"\n  managed spot saved {st.spot_savings_percent} % of {st.training_seconds} s"
    console.print(line)


@sagemaker_app.command("start")
def sagemaker_start(
    stack: str = typer.Argument(..., help="A deployed sagemaker cluster stack."),
    outputs: Optional[Path] = typer.Option(None, help="`pulumi stack output --json` of the stack "
                                           "(default: read it with the Automation API)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the CreateTrainingJob request only."),
    root: Optional[Path] = typer.Option(None, help="Project root (default: this checkout)."),
) -> None:
    """Start another training job from the stack's config, without redeploying."""
    from .plan import REPO_ROOT
    from .sagemaker_jobs import JobError, load_stack, request_for_stack, start

    console = Console()
    try:
        cfg, outs = load_stack(stack, root or REPO_ROOT, outputs)
        request = request_for_stack(cfg, outs)
    except JobError as exc:
        Console(stderr=True).print(str(exc), markup=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    if dry_run:
        print(json.dumps(request, indent=2))
        return
    arn = start(_sagemaker_client(cfg.region), request)
    console.print(f"started {arn}\n  checkpoints: {request['CheckpointConfig']['S3Uri'] if 'CheckpointConfig' in request else 'off'}"
                  f"\n  output: {request['OutputDataConfig']['S3OutputPath']}{request['TrainingJobName']}/output/")


@sagemaker_app.command("status")
def sagemaker_status(name: str, region: str = typer.Option("us-east-1")) -> None:
    """Show a training job's status, model location and spot savings."""
    from .sagemaker_jobs import describe

    _print_status(Console(), describe(_sagemaker_client(region), name))


@sagemaker_app.command("stop")
def sagemaker_stop(name: str, region: str = typer.Option("us-east-1")) -> None:
    """Stop a running training job (it may save a last checkpoint); finished jobs are left alone."""
    from .sagemaker_jobs import stop

    _print_status(Console(), stop(_sagemaker_client(region), name))


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
