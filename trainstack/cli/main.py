"""The `trainstack` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Ephemeral GPU training clusters on AWS, fed by a protected S3 data lake.",
)


@app.callback()
def _root() -> None:
    """Ephemeral GPU training clusters on AWS, fed by a protected S3 data lake."""


@app.command("plan")
def plan_cmd(
    stack: str = typer.Argument("platform", help="Stack name: reads stacks/Pulumi.STACK.yaml."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    root: Optional[Path] = typer.Option(None, help="Project root (default: this checkout)."),
    fmt: str = typer.Option(
        "text",
        "--format",
        help="text (tree, cost, timing), mermaid or dot (the component "
        "tree, the platform reference and the data flow as a diagram).",
    ),
    live_prices: bool = typer.Option(
        False,
        "--live-prices",
        help="Price from AWS (Price List API, spot price history; needs credentials) instead of the packaged table.",
    ),
) -> None:
    """Evaluate a stack offline (mock engine): resource tree, validation, cost. No AWS, no Pulumi CLI."""
    from trainstack.plan.planner import REPO_ROOT, PlanError, plan
    from trainstack.plan.render import render, to_json

    console = Console(stderr=False)
    err = Console(stderr=True)
    if fmt not in ("text", "mermaid", "dot"):
        err.print(f"--format {fmt}: use text, mermaid or dot", highlight=False, markup=False)
        raise typer.Exit(code=2)
    try:
        result = plan(stack, root or REPO_ROOT, live_prices=live_prices)
    except PlanError as exc:
        if as_json:
            print(json.dumps({"stack": stack, "ok": False, "error": str(exc)}, indent=2))
        else:
            err.print(f"[bold red]plan failed[/] for stack {stack}:", highlight=False)
            # The message names keys and values: print it verbatim, never re-wrapped or marked up.
            err.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    if as_json:
        print(json.dumps({"ok": not result.findings, **to_json(result)}, indent=2, default=str))
    elif fmt != "text":
        from trainstack.plan.diagram import FORMATS

        print(FORMATS[fmt](result), end="")
        for f in result.findings:
            err.print(f"provider-schema finding: {f}", highlight=False, markup=False, soft_wrap=True)
    else:
        render(result, console)
    if result.policy is not None and result.policy.mandatory:
        raise typer.Exit(code=2)  # a mandatory policy violation: the same stack would fail `pulumi preview`
    if result.findings:  # inputs the provider would refuse: fail like bad config does
        raise typer.Exit(code=2)


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
    outputs: Optional[Path] = typer.Option(
        None, help="`pulumi stack output --json` of the stack (default: read it with the Automation API)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the CreateTrainingJob request only."),
    root: Optional[Path] = typer.Option(None, help="Project root (default: this checkout)."),
) -> None:
    """Start another training job from the stack's config, without redeploying."""
    from trainstack.plan.planner import REPO_ROOT
    from trainstack.run.sagemaker_jobs import JobError, load_stack, request_for_stack, start

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
    console.print(
        f"started {arn}\n  checkpoints: {request['CheckpointConfig']['S3Uri'] if 'CheckpointConfig' in request else 'off'}"
        f"\n  output: {request['OutputDataConfig']['S3OutputPath']}{request['TrainingJobName']}/output/"
    )


@sagemaker_app.command("status")
def sagemaker_status(name: str, region: str = typer.Option("us-east-1")) -> None:
    """Show a training job's status, model location and spot savings."""
    from trainstack.run.sagemaker_jobs import describe

    _print_status(Console(), describe(_sagemaker_client(region), name))


@sagemaker_app.command("stop")
def sagemaker_stop(name: str, region: str = typer.Option("us-east-1")) -> None:
    """Stop a running training job (it may save a last checkpoint); finished jobs are left alone."""
    from trainstack.run.sagemaker_jobs import stop

    _print_status(Console(), stop(_sagemaker_client(region), name))


@app.command("run")
def run_cmd(
    template: str = typer.Argument(..., help="Example stack (dev-ecs, dev-ec2, dev-sagemaker) or a stack file path."),
    name: Optional[str] = typer.Option(None, help="Stack name (default: OWNER-BACKEND-YYYYMMDDHHMM-XXXX)."),
    owner: Optional[str] = typer.Option(None, help="Overrides trainstack:owner."),
    ttl_hours: Optional[int] = typer.Option(None, "--ttl-hours", help="Cluster lifetime (default: job limit + 1 h)."),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE config override, VALUE as JSON (repeatable)."),
    workdir: Optional[str] = typer.Option(None, help="The job's working directory (trainstack:job.workdir)."),
    command: Optional[str] = typer.Option(None, help="The job's command, e.g. 'python train.py --epochs 3'."),
    keep_on_failure: bool = typer.Option(False, "--keep-on-failure", help="Keep the stack when the job fails."),
    skip_preview: bool = typer.Option(False, "--skip-preview", help="No `pulumi preview` before `up`."),
    no_doctor: bool = typer.Option(
        False, "--no-doctor", help="Skip `trainstack doctor`'s read-only account checks before anything is created."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation on a terminal."),
    as_json: bool = typer.Option(False, "--json", help="Print run.json on stdout (human output on stderr)."),
    start_timeout: float = typer.Option(45, "--start-timeout-minutes", help="Give up on a job that has not started."),
    secrets_provider: Optional[str] = typer.Option(
        None,
        envvar=["TRAINSTACK_SECRETS_PROVIDER", "PULUMI_SECRETS_PROVIDER"],
        help="e.g. awskms://alias/trainstack-state?region=us-east-1",
    ),
    pulumi_root: Optional[str] = typer.Option(None, envvar="TRAINSTACK_PULUMI_ROOT", help="Directory with bin/pulumi."),
    runs_dir: Optional[Path] = typer.Option(
        None, envvar="TRAINSTACK_RUNS_DIR", help="Local copies of run.json (default: ROOT/.trainstack/runs)."
    ),
    root: Optional[Path] = typer.Option(None, help="Project root (default: this checkout)."),
) -> None:
    """Plan, create a fresh cluster stack, run the job to the end, destroy the stack; print the model URI."""
    import shlex

    from trainstack.plan.planner import REPO_ROOT
    from trainstack.run.run import RunOptions, Ui, github_outputs, run
    from trainstack.run.run_config import Overrides

    # --workdir is relative to where the user stands, not to the project root.
    workdir = str(Path(workdir).expanduser().resolve()) if workdir else None
    overrides = Overrides(
        owner=owner,
        name=name,
        ttl_hours=ttl_hours,
        sets=tuple(set_),
        workdir=workdir,
        command=shlex.split(command) if command else None,
    )
    opts = RunOptions(
        template=template,
        overrides=overrides,
        root=root or REPO_ROOT,
        keep_on_failure=keep_on_failure,
        skip_preview=skip_preview,
        doctor=not no_doctor,
        yes=yes,
        pulumi_root=pulumi_root,
        secrets_provider=secrets_provider,
        start_timeout_seconds=start_timeout * 60,
        record_dir=runs_dir,
    )
    try:
        record = run(opts, Ui(Console(stderr=as_json)))
    except KeyboardInterrupt:  # before the stack exists (planning, confirmation): nothing to clean up
        Console(stderr=True).print("interrupted before anything was created")
        raise typer.Exit(code=130) from None
    github_outputs(record)
    if as_json:
        print(json.dumps(record.to_json(), indent=2, default=str))
    raise typer.Exit(code=record.exit_code or 0)


@app.command("down")
def down_cmd(
    name: str = typer.Argument(..., help="The cluster stack to clean up."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation on a terminal."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable result on stdout."),
    secrets_provider: Optional[str] = typer.Option(
        None, envvar=["TRAINSTACK_SECRETS_PROVIDER", "PULUMI_SECRETS_PROVIDER"]
    ),
    pulumi_root: Optional[str] = typer.Option(None, envvar="TRAINSTACK_PULUMI_ROOT", help="Directory with bin/pulumi."),
    root: Optional[Path] = typer.Option(None, help="Project root (default: this checkout)."),
) -> None:
    """Stop a cluster stack's job, destroy it (retries, stale lock cancelled) and remove it. Idempotent."""
    from dataclasses import asdict

    from trainstack.plan.planner import REPO_ROOT
    from trainstack.run.run import Ui, down

    ui = Ui(Console(stderr=as_json))
    if not yes and ui.interactive and not ui.confirm(f"Destroy and remove stack {name}?"):
        raise typer.Exit(code=2)
    result = down(name, ui, root=root or REPO_ROOT, pulumi_root=pulumi_root, secrets_provider=secrets_provider)
    if as_json:
        print(json.dumps(asdict(result), indent=2))
    raise typer.Exit(code=result.exit_code)


@app.command("upload")
def upload_cmd(
    src: Path = typer.Argument(..., help="A local folder (or file) holding the dataset."),
    dest: str = typer.Argument(..., help="raw/<prefix>/ or curated/<prefix>/, as in job.dataset."),
    bucket: Optional[str] = typer.Option(None, help="The zone's bucket (default: the platform stack's output)."),
    platform: Optional[str] = typer.Option(
        None,
        help="Platform stack to read `buckets` from (default organization/trainstack/platform; needs the Pulumi CLI).",
    ),
    jobs: int = typer.Option(8, "--jobs", help="Parallel requests (and hashing threads)."),
    chunk_mib: int = typer.Option(
        64, "--chunk-mib", help="Multipart part size in MiB (5-5120); memory ≈ part size × (jobs + 2)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace objects that differ (old versions are kept)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Hash and compare only; send nothing."),
) -> None:
    """Upload a dataset into the data lake: multipart, parallel, checksummed; skips what is already there."""
    from trainstack.fleet.upload import UploadError, summary, upload

    if bucket and platform:
        Console(stderr=True).print(
            "--bucket and --platform both given. Fix: pass one (--bucket names the bucket; "
            "--platform reads it from the platform stack's outputs)",
            markup=False,
        )
        raise typer.Exit(code=2)
    console = Console()
    try:
        result = upload(
            src,
            dest,
            bucket=bucket,
            platform=platform,
            jobs=jobs,
            chunk_mib=chunk_mib,
            overwrite=overwrite,
            dry_run=dry_run,
            console=console,
        )
    except UploadError as exc:
        Console(stderr=True).print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    if not dry_run:
        console.print(summary(result), markup=False, highlight=False, soft_wrap=True)
    if result.interrupted:
        raise typer.Exit(code=130)
    if not result.ok:
        raise typer.Exit(code=1)


@app.command("ls")
def ls_cmd(
    owner: str = typer.Option("all", help="Only this owner's clusters (or all)."),
    expired: bool = typer.Option(False, "--expired", help="Only clusters past their expiry."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    spot_prices: bool = typer.Option(
        False,
        "--spot-prices",
        help="Price spot instances from AWS's spot price history instead of the on-demand bound.",
    ),
    region: Optional[str] = typer.Option(None, help="AWS region (default: the AWS configuration's)."),
    root: Optional[Path] = typer.Option(None, help="Project root (default: this checkout)."),
) -> None:
    """Every trainstack cluster found by its AWS tags, with owner, expiry, state and cost so far."""
    from trainstack.fleet import inventory as fleet
    from trainstack.plan.planner import REPO_ROOT

    now = fleet.utcnow()
    root = root or REPO_ROOT
    try:
        clusters = fleet.list_clusters(
            fleet.AwsClients.for_region(region),
            now,
            root=root,
            state=lambda: fleet.pulumi_state(root),
            spot_prices=spot_prices,
        )
    except fleet.FleetError as exc:
        Console(stderr=True).print(str(exc), markup=False, highlight=False)
        raise typer.Exit(code=2) from None
    clusters = fleet.select(clusters, now, owner=owner, expired_only=expired)
    if as_json:
        print(json.dumps([c.to_json(now) for c in clusters], indent=2))
    else:
        console = Console()
        # Piped (CI logs, files): nothing to fit, so never truncate a stack name.
        fleet.render(clusters, now, console if console.is_terminal else Console(width=max(console.width, 160)))


@app.command("reap")
def reap_cmd(
    expired: bool = typer.Option(False, "--expired", help="Stacks past their expiry (plus the grace)."),
    prefix: Optional[str] = typer.Option(None, help="Stacks whose name starts with this, e.g. pr-12-."),
    grace: str = typer.Option(
        "15m", help="How long past expiry a stack may live (the teardown schedule acts at expiry)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be done."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
    region: Optional[str] = typer.Option(None, help="AWS region (default: the AWS configuration's)."),
    root: Optional[Path] = typer.Option(None, help="Project root (default: this checkout)."),
) -> None:
    """Destroy and remove the matching cluster stacks; orphans are listed, never deleted blindly."""
    import sys

    from trainstack.fleet import inventory as fleet
    from trainstack.plan.planner import REPO_ROOT

    err = Console(stderr=True)
    console = Console()
    now = fleet.utcnow()
    root = root or REPO_ROOT
    if dry_run and yes:
        err.print("--dry-run and --yes: pass one", markup=False)
        raise typer.Exit(code=2)
    try:
        grace_td = fleet.parse_duration(grace)
        clusters = fleet.list_clusters(
            fleet.AwsClients.for_region(region), now, root=root, state=lambda: fleet.pulumi_state(root)
        )
        candidates = fleet.reap_candidates(clusters, now, expired=expired, prefix=prefix, grace=grace_td)
    except fleet.FleetError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(code=2) from None
    if not candidates:
        console.print("nothing to reap")
        return
    destroyable = [c.stack for c in candidates if c.state != "orphan"]
    if destroyable and not dry_run and not yes:
        if not sys.stdin.isatty():
            err.print(
                f"would destroy {', '.join(destroyable)}; refusing without a terminal to ask on. "
                "Fix: pass --yes (or --dry-run to only look)",
                markup=False,
            )
            raise typer.Exit(code=2)
        if not typer.confirm(f"Destroy and remove {len(destroyable)} stack(s): {', '.join(destroyable)}?"):
            raise typer.Exit(code=1)

    def report(o: fleet.ReapOutcome) -> None:
        style = {"destroyed": "green", "failed": "red", "orphan": "yellow"}.get(o.action, "bold")
        console.print(f"[{style}]{o.action}[/] {o.stack}: {o.message}", highlight=False)
        for arn in o.arns:
            console.print(f"    {arn}", markup=False, highlight=False)

    outcomes = fleet.reap(
        candidates, destroy_stack=fleet.destroy_with_automation_api(root), dry_run=dry_run, report=report
    )
    if any(o.action == "failed" for o in outcomes):
        raise typer.Exit(code=1)


@app.command("doctor")
def doctor_cmd(
    stack: str = typer.Argument(..., help="Stack name (stacks/Pulumi.STACK.yaml) or a stack file's path."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    probe: bool = typer.Option(
        False, "--probe", help="Also settle what only a real call can, with throwaway resources always removed."
    ),
    platform_outputs: Optional[Path] = typer.Option(
        None, "--platform-outputs", help="`pulumi stack output --json` of the platform (default: read it via the CLI)."
    ),
    secrets_provider: Optional[str] = typer.Option(
        None, envvar=["TRAINSTACK_SECRETS_PROVIDER", "PULUMI_SECRETS_PROVIDER"], help="As for `trainstack run`."
    ),
    pulumi_root: Optional[str] = typer.Option(None, envvar="TRAINSTACK_PULUMI_ROOT", help="Directory with bin/pulumi."),
    root: Optional[Path] = typer.Option(None, help="Project root (default: this checkout)."),
) -> None:
    """Check a real AWS account for exactly what STACK needs: exit 0 ready, 1 not ready, 2 bad input."""
    from trainstack.doctor.render import render
    from trainstack.doctor.runner import DoctorInputError, DoctorOptions, diagnose
    from trainstack.plan.planner import REPO_ROOT

    opts = DoctorOptions(
        stack=stack,
        root=root or REPO_ROOT,
        secrets_provider=secrets_provider,
        pulumi_root=pulumi_root,
        platform_outputs=platform_outputs,
        probe=probe,
    )
    try:
        report = diagnose(opts)
    except DoctorInputError as exc:
        if as_json:
            print(json.dumps({"stack": stack, "ready": False, "error": str(exc)}, indent=2))
        else:
            Console(stderr=True).print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    if as_json:
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        render(report, Console())
    raise typer.Exit(code=report.exit_code)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
