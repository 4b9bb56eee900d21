"""The `trainstack` command.

Every command is thin: it turns options into a call and prints the result. Errors are handled once, in
`_Commands.invoke`: a `UserError` (what failed, the value, the fix) is printed as one message with its
exit code (trainstack.errors.ExitCode); AWS and Pulumi errors that escape become such a message too;
anything else is a bug, shown as one line, with the traceback under `--debug`. No traceback otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from trainstack.cli import plan as plan_help
from trainstack.cli.report import DEBUG_ENV, user_error_for
from trainstack.cli.report import report as report_error
from trainstack.errors import ExitCode, UserError

_JSON = "trainstack.json"  # ctx.meta key: this invocation prints JSON on stdout
_DEBUG_ENV = DEBUG_ENV


class _Commands(TyperGroup):
    """The one place errors are turned into messages and exit codes (trainstack.cli.report)."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override] # typer's Context is the one it passes
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own (its vendored click's): usage errors (exit 2), typer.Exit
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the last line of defence: never a bare traceback
            raise typer.Exit(code=report_error(user_error_for(exc), json_mode=bool(ctx.meta.get(_JSON)))) from None


def _json_mode(ctx: typer.Context, value: bool) -> bool:
    if value:
        ctx.meta[_JSON] = True  # ctx.meta is shared by every context of one invocation
    return value


def json_option(help: str = "Machine-readable output on stdout (errors too: {ok, exitCode, error}).") -> Any:
    return typer.Option(False, "--json", help=help, callback=_json_mode)


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, default=str))


def _cluster_templates() -> str:
    """The cluster stack files this checkout holds, for `run --help` (never a stale hand-written list)."""
    from trainstack.project import REPO_ROOT

    names = []
    for path in sorted((REPO_ROOT / "stacks").glob("Pulumi.*.yaml")):
        try:
            if "trainstack:kind: cluster" in path.read_text(encoding="utf-8"):
                names.append(path.name[len("Pulumi.") : -len(".yaml")])
        except (OSError, UnicodeDecodeError):
            continue
    return ", ".join(names) or "none found"


def _ask_or_refuse(ui: Any, question: str, refusal: str) -> None:
    """Ask when a person can answer (stdin is a terminal); refuse otherwise, naming --yes."""
    if not ui.can_ask:
        raise UserError(f"{refusal}; refusing without a terminal to ask on (stdin is not a terminal). Fix: pass --yes")
    if not ui.confirm(question):
        raise UserError("not confirmed: nothing was changed")


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Ephemeral GPU training clusters on AWS, fed by a protected S3 data lake.",
)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", envvar=_DEBUG_ENV, help="Show the traceback of an unexpected error (a bug)."
    ),
) -> None:
    """Ephemeral GPU training clusters on AWS, fed by a protected S3 data lake.

    Exit codes: 0 ok, 1 failed, 2 refused (nothing changed), 3 cleanup incomplete, 4 not found,
    5 busy (locked by a live update), 70 bug, 130 interrupted."""
    if debug:
        os.environ[_DEBUG_ENV] = "1"


ROOT_OPTION = typer.Option(None, "--root", help="Project root (default: this checkout).")


@app.command("plan", help=plan_help.HELP)
def plan_cmd(
    stack: str = typer.Argument("platform", help=plan_help.STACK_HELP),
    as_json: bool = json_option(plan_help.JSON_HELP),
    root: Optional[Path] = typer.Option(None, "--root", help=plan_help.ROOT_HELP),
    fmt: str = typer.Option("text", "--format", help=plan_help.FORMAT_HELP),
    live_prices: bool = typer.Option(False, "--live-prices", help=plan_help.LIVE_PRICES_HELP),
) -> None:
    """The same command as `trainstack.cli.plan.command`, which the console script runs for `trainstack plan`;
    this one serves `trainstack --debug plan ...` (and lists `plan` in `trainstack --help`)."""
    code = plan_help.plan_command(stack, as_json=as_json, root=root, fmt=fmt, live_prices=live_prices)
    if code:
        raise typer.Exit(code=code)


sagemaker_app = typer.Typer(no_args_is_help=True, help="Training jobs on a deployed sagemaker cluster stack.")
app.add_typer(sagemaker_app, name="sagemaker")


def _sagemaker_client(region: str | None):
    import boto3

    from trainstack.fleet.aws import resolve_region

    return boto3.client("sagemaker", region_name=resolve_region(region))


def _print_status(out: Any, st: Any) -> None:
    from rich.markup import escape

    # Everything that comes from AWS is escaped: a failure reason such as "[Errno 2] ..." is not markup.
    line = f"{escape(st.name)}: [bold]{escape(st.status)}[/] ({escape(st.secondary_status)})"
    if st.model_artifacts:
        line += f"\n  model: {escape(st.model_artifacts)}"
    if st.failure_reason:
        line += f"\n  [red]failure:[/] {escape(st.failure_reason)}"
    if st.spot_savings_percent is not None:
        line += f"\n  managed spot saved {st.spot_savings_percent} % of {st.training_seconds} s"
    out.print(line)


REGION_OPTION = typer.Option(None, "--region", help="AWS region (default: the AWS configuration's).")


@sagemaker_app.command("start")
def sagemaker_start(
    stack: str = typer.Argument(..., help="A deployed sagemaker cluster stack."),
    outputs: Optional[Path] = typer.Option(
        None, help="`pulumi stack output --json` of the stack (default: read it with the Automation API)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the CreateTrainingJob request only."),
    as_json: bool = json_option(),
    root: Optional[Path] = ROOT_OPTION,
) -> None:
    """Start another training job from the stack's config, without redeploying."""
    from trainstack.plan.planner import REPO_ROOT
    from trainstack.run.sagemaker_jobs import load_stack, request_for_stack, start
    from trainstack.run.ui import console

    cfg, outs = load_stack(stack, root or REPO_ROOT, outputs)
    request = request_for_stack(cfg, outs)
    if dry_run:
        _print_json(request)
        return
    arn = start(_sagemaker_client(cfg.region), request)
    checkpoints = request["CheckpointConfig"]["S3Uri"] if "CheckpointConfig" in request else None
    output = f"{request['OutputDataConfig']['S3OutputPath']}{request['TrainingJobName']}/output/"
    if as_json:
        _print_json({"ok": True, "trainingJobArn": arn, "name": request["TrainingJobName"], "output": output,
                     "checkpoints": checkpoints})  # fmt: skip
        return
    console().print(
        f"started {arn}\n  checkpoints: {checkpoints or 'off'}\n  output: {output}", markup=False, highlight=False
    )


@sagemaker_app.command("status")
def sagemaker_status(
    name: str = typer.Argument(..., help="The training job's name."),
    region: Optional[str] = REGION_OPTION,
    as_json: bool = json_option(),
) -> None:
    """Show a training job's status, model location and spot savings."""
    from trainstack.run.sagemaker_jobs import describe
    from trainstack.run.ui import console

    st = describe(_sagemaker_client(region), name)
    _print_json(st.to_json()) if as_json else _print_status(console(), st)


@sagemaker_app.command("stop")
def sagemaker_stop(
    name: str = typer.Argument(..., help="The training job's name."),
    region: Optional[str] = REGION_OPTION,
    as_json: bool = json_option(),
) -> None:
    """Stop a running training job (it may save a last checkpoint); finished jobs are left alone."""
    from trainstack.run.sagemaker_jobs import stop
    from trainstack.run.ui import console

    st = stop(_sagemaker_client(region), name)
    _print_json(st.to_json()) if as_json else _print_status(console(), st)


SECRETS_OPTION = typer.Option(
    None,
    envvar=["TRAINSTACK_SECRETS_PROVIDER", "PULUMI_SECRETS_PROVIDER"],
    help="e.g. awskms://alias/trainstack-state?region=us-east-1",
)
START_TIMEOUT_OPTION = typer.Option(45, "--start-timeout-minutes", help="Give up on a job that has not started.")
POLL_SECONDS_OPTION = typer.Option(15, "--poll-seconds", hidden=True, envvar="TRAINSTACK_POLL_SECONDS")
RUNS_DIR_OPTION = typer.Option(
    None, envvar="TRAINSTACK_RUNS_DIR", help="Local copies of run.json (default: ROOT/.trainstack/runs)."
)
PULUMI_ROOT_OPTION = typer.Option(
    None, envvar="TRAINSTACK_PULUMI_ROOT", help="Directory with bin/pulumi (default: `pulumi` on PATH)."
)


@app.command("run")
def run_cmd(
    template: str = typer.Argument(
        ..., help=f"An example cluster stack ({_cluster_templates()}) or the path of a stack file."
    ),
    name: Optional[str] = typer.Option(None, help="Stack name (default: OWNER-BACKEND-YYYYMMDDHHMM-XXXX)."),
    owner: Optional[str] = typer.Option(None, help="Overrides trainstack:owner."),
    ttl_hours: Optional[int] = typer.Option(None, "--ttl-hours", help="Cluster lifetime (default: job limit + 1 h)."),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE config override, VALUE as JSON (repeatable)."),
    workdir: Optional[str] = typer.Option(None, help="The job's working directory (trainstack:job.workdir)."),
    command: Optional[str] = typer.Option(None, help="The job's command, e.g. 'python train.py --epochs 3'."),
    keep_on_failure: bool = typer.Option(False, "--keep-on-failure", help="Keep the stack when the job fails."),
    keep: bool = typer.Option(
        False, "--keep", help="Keep the stack after the job (run more with `trainstack exec`; remove with `down`)."
    ),
    detach: bool = typer.Option(
        False,
        "--detach",
        help="Return once the job has started; it writes run.json itself; `trainstack attach` follows it.",
    ),
    skip_preview: bool = typer.Option(False, "--skip-preview", help="No `pulumi preview` before `up`."),
    no_doctor: bool = typer.Option(
        False, "--no-doctor", help="Skip `trainstack doctor`'s read-only account checks before anything is created."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask; without it, runs off a terminal are refused."),
    as_json: bool = json_option("Print run.json on stdout (human output on stderr)."),
    start_timeout: float = START_TIMEOUT_OPTION,
    poll_seconds: float = POLL_SECONDS_OPTION,
    secrets_provider: Optional[str] = SECRETS_OPTION,
    pulumi_root: Optional[str] = PULUMI_ROOT_OPTION,
    runs_dir: Optional[Path] = RUNS_DIR_OPTION,
    root: Optional[Path] = ROOT_OPTION,
) -> None:
    """Plan, create a fresh cluster stack, run the job to the end, destroy the stack; print the model URI."""
    from trainstack.plan.planner import REPO_ROOT
    from trainstack.run.record import github_outputs
    from trainstack.run.run import RunOptions, run
    from trainstack.run.run_config import Overrides, parse_command
    from trainstack.run.ui import Ui, console

    overrides = Overrides(
        owner=owner,
        name=name,
        ttl_hours=ttl_hours,
        sets=tuple(set_),
        workdir=str(Path(workdir).expanduser().resolve()) if workdir else None,  # relative to the user, not ROOT
        command=parse_command(command) if command is not None else None,
    )
    opts = RunOptions(
        template=template,
        overrides=overrides,
        root=root or REPO_ROOT,
        keep_on_failure=keep_on_failure,
        keep=keep,
        detach=detach,
        skip_preview=skip_preview,
        doctor=not no_doctor,
        yes=yes,
        pulumi_root=pulumi_root,
        secrets_provider=secrets_provider,
        start_timeout_seconds=start_timeout * 60,
        poll_seconds=poll_seconds,
        record_dir=runs_dir,
    )
    try:
        record = run(opts, Ui(console(stderr=as_json)))
    except KeyboardInterrupt:  # before the stack exists (planning, confirmation): nothing to clean up
        raise UserError("interrupted before anything was created", ExitCode.INTERRUPTED) from None
    github_outputs(record)
    if record.exit_code:
        raise UserError(f"{record.status}: {record.reason}", record.exit_code, payload=record.to_json())
    if as_json:
        _print_json(record.to_json())


def _job_options(
    stack: str, root: Optional[Path], pulumi_root: Optional[str], secrets_provider: Optional[str], **kw: Any
):
    from trainstack.plan.planner import REPO_ROOT
    from trainstack.run.jobs import JobOptions

    return JobOptions(
        stack=stack, root=root or REPO_ROOT, pulumi_root=pulumi_root, secrets_provider=secrets_provider, **kw
    )


@app.command("exec")
def exec_cmd(
    stack: str = typer.Argument(..., help="A kept cluster stack (`trainstack run --keep`, or `pulumi up`)."),
    workdir: Optional[str] = typer.Option(
        None, help="The code to ship (default: the stack's job.workdir); only a changed bundle is uploaded."
    ),
    command: Optional[str] = typer.Option(None, help="The job's command, e.g. 'python train.py --epochs 3'."),
    set_: list[str] = typer.Option(
        [], "--set", help="job.command, job.environment, job.workdir or job.maxRuntimeHours=VALUE (repeatable)."
    ),
    detach: bool = typer.Option(False, "--detach", help="Return once the job has started."),
    as_json: bool = json_option("Print the job's run.json on stdout (human output on stderr)."),
    start_timeout: float = START_TIMEOUT_OPTION,
    poll_seconds: float = POLL_SECONDS_OPTION,
    secrets_provider: Optional[str] = SECRETS_OPTION,
    pulumi_root: Optional[str] = PULUMI_ROOT_OPTION,
    runs_dir: Optional[Path] = RUNS_DIR_OPTION,
    root: Optional[Path] = ROOT_OPTION,
) -> None:
    """Run a new job on a kept cluster stack: ship only the new code, start it through the backend's own API
    (no `pulumi up`, no new compute), follow it as `run` does."""
    from trainstack.run.jobs import exec_job
    from trainstack.run.run_config import Overrides, parse_command
    from trainstack.run.ui import Ui, console

    overrides = Overrides(
        sets=tuple(set_),
        workdir=str(Path(workdir).expanduser().resolve()) if workdir else None,
        command=parse_command(command) if command is not None else None,
    )
    opts = _job_options(
        stack,
        root,
        pulumi_root,
        secrets_provider,
        overrides=overrides,
        detach=detach,
        start_timeout_seconds=start_timeout * 60,
        poll_seconds=poll_seconds,
        record_dir=runs_dir,
    )
    record = exec_job(opts, Ui(console(stderr=as_json)))
    if record.exit_code:
        raise UserError(f"{record.status}: {record.reason}", record.exit_code, payload=record.to_json())
    if as_json:
        _print_json(record.to_json())


JOB_OPTION = typer.Option(None, "--job", help="The job's id (default: the stack's latest job).")


@app.command("attach")
def attach_cmd(
    stack: str = typer.Argument(..., help="A cluster stack with a running or finished job."),
    job: Optional[str] = JOB_OPTION,
    as_json: bool = json_option("Print the job's run.json on stdout when it ends."),
    poll_seconds: float = POLL_SECONDS_OPTION,
    secrets_provider: Optional[str] = SECRETS_OPTION,
    pulumi_root: Optional[str] = PULUMI_ROOT_OPTION,
    root: Optional[Path] = ROOT_OPTION,
) -> None:
    """Follow a job (state and log) from any machine until it ends; exit with its outcome. Ctrl-C stops
    following, never the job. A finished job's run.json gets its result if nothing wrote it yet."""
    from trainstack.run.jobs import attach
    from trainstack.run.ui import Ui, console

    opts = _job_options(stack, root, pulumi_root, secrets_provider, job_id=job, poll_seconds=poll_seconds)
    got = attach(opts, Ui(console(stderr=as_json)))
    code = got.record.exit_code
    if code:
        raise UserError(
            f"{got.record.status}: {got.record.reason or got.state.reason}", code, payload=got.record.to_json()
        )
    if as_json:
        _print_json(got.record.to_json())


@app.command("logs")
def logs_cmd(
    stack: str = typer.Argument(..., help="A cluster stack with a running or finished job."),
    job: Optional[str] = JOB_OPTION,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job ends."),
    poll_seconds: float = POLL_SECONDS_OPTION,
    secrets_provider: Optional[str] = SECRETS_OPTION,
    pulumi_root: Optional[str] = PULUMI_ROOT_OPTION,
    root: Optional[Path] = ROOT_OPTION,
) -> None:
    """Print a job's log (the latest job, or --job ID) and its state, from the cloud."""
    from trainstack.run.jobs import attach
    from trainstack.run.ui import Ui, console

    opts = _job_options(stack, root, pulumi_root, secrets_provider, job_id=job, poll_seconds=poll_seconds)
    got = attach(opts, Ui(console()), follow_to_end=follow, show_state=not follow)
    if got.record.exit_code == ExitCode.INTERRUPTED:  # Ctrl-C while following: the job runs on
        raise typer.Exit(code=ExitCode.INTERRUPTED)


@app.command("down")
def down_cmd(
    name: str = typer.Argument(..., help="The cluster stack to clean up."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask; without it, runs off a terminal are refused."),
    missing_ok: bool = typer.Option(
        False, "--missing-ok", help="A stack that does not exist is success (exit 0), e.g. in a CI cleanup step."
    ),
    as_json: bool = json_option(),
    secrets_provider: Optional[str] = SECRETS_OPTION,
    pulumi_root: Optional[str] = PULUMI_ROOT_OPTION,
    root: Optional[Path] = ROOT_OPTION,
) -> None:
    """Stop a cluster stack's job, destroy it (retries; a lock only if its holder has exited) and remove it."""
    from trainstack.plan.planner import REPO_ROOT
    from trainstack.run.run import down
    from trainstack.run.ui import Ui, console

    ui = Ui(console(stderr=as_json))
    if not yes:
        _ask_or_refuse(ui, f"Destroy and remove stack {name}?", f"would destroy and remove stack {name}")
    result = down(name, ui, root=root or REPO_ROOT, pulumi_root=pulumi_root, secrets_provider=secrets_provider)
    if result.status == "not-found" and missing_ok:
        result.exit_code = ExitCode.OK
        ui.say(f"{name}: does not exist (--missing-ok: nothing to do)", "green")
    if result.exit_code:
        raise UserError(result.reason, result.exit_code, payload=result.to_json())
    if as_json:
        _print_json(result.to_json())


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
    as_json: bool = json_option(),
    root: Optional[Path] = ROOT_OPTION,
) -> None:
    """Upload a dataset into the data lake: multipart, parallel, checksummed; skips what is already there."""
    from trainstack.fleet.upload import summary, upload
    from trainstack.run.ui import console

    if bucket and platform:
        raise UserError(
            "--bucket and --platform both given. Fix: pass one (--bucket names the bucket; "
            "--platform reads it from the platform stack's outputs)"
        )
    out = console(stderr=as_json)
    result = upload(
        src,
        dest,
        bucket=bucket,
        platform=platform,
        root=root,
        jobs=jobs,
        chunk_mib=chunk_mib,
        overwrite=overwrite,
        dry_run=dry_run,
        console=out,
    )
    if not dry_run:
        out.print(summary(result), markup=False, highlight=False, soft_wrap=True)
    if as_json:
        _print_json(result.to_json())
    if result.interrupted:
        raise typer.Exit(code=ExitCode.INTERRUPTED)
    if not result.ok:
        raise typer.Exit(code=ExitCode.FAILED)


@app.command("ls")
def ls_cmd(
    owner: str = typer.Option("all", help="Only this owner's clusters (or all)."),
    expired: bool = typer.Option(False, "--expired", help="Only clusters past their expiry."),
    as_json: bool = json_option(),
    spot_prices: bool = typer.Option(
        False,
        "--spot-prices",
        help="Price spot instances from AWS's spot price history instead of the on-demand bound.",
    ),
    region: Optional[str] = REGION_OPTION,
    root: Optional[Path] = ROOT_OPTION,
) -> None:
    """Every trainstack cluster found by its AWS tags, with owner, expiry, state and cost so far."""
    from trainstack.fleet import inventory as fleet
    from trainstack.plan.planner import REPO_ROOT
    from trainstack.run.ui import console

    now = fleet.utcnow()
    root = root or REPO_ROOT
    clusters = fleet.list_clusters(
        fleet.AwsClients.for_region(region),
        now,
        root=root,
        state=lambda: fleet.pulumi_state(root),
        spot_prices=spot_prices,
    )
    clusters = fleet.select(clusters, now, owner=owner, expired_only=expired)
    if as_json:
        _print_json([c.to_json(now) for c in clusters])
        return
    out = console()
    if not out.is_terminal:  # piped (CI logs, files): nothing to fit, so never truncate a stack name
        from rich.console import Console

        out = Console(width=max(out.width, 160), soft_wrap=True)
    fleet.render(clusters, now, out)


@app.command("reap")
def reap_cmd(
    expired: bool = typer.Option(False, "--expired", help="Stacks past their expiry (plus the grace)."),
    finished: bool = typer.Option(
        False, "--finished", help="Stacks `run --detach` left whose latest job ended (plus the grace)."
    ),
    prefix: Optional[str] = typer.Option(None, help="Stacks whose name starts with this, e.g. pr-12-."),
    grace: str = typer.Option(
        "15m",
        help="How long past expiry (or a detached run's end) a stack may live (the teardown schedule acts at expiry).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be done."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask; without it, runs off a terminal are refused."),
    as_json: bool = json_option(),
    region: Optional[str] = REGION_OPTION,
    root: Optional[Path] = ROOT_OPTION,
) -> None:
    """Destroy and remove the matching cluster stacks; orphans are listed, never deleted blindly."""
    from trainstack.fleet import inventory as fleet
    from trainstack.plan.planner import REPO_ROOT
    from trainstack.run.ui import Ui, console

    out = console(stderr=as_json)
    now = fleet.utcnow()
    root = root or REPO_ROOT
    if dry_run and yes:
        raise UserError("--dry-run and --yes both given. Fix: pass one (--dry-run only looks)")
    if not expired and not prefix and not finished:
        raise UserError(
            "reap needs a selector: refusing to match every stack. Fix: pass --expired, --finished and/or --prefix P"
        )
    grace_td = fleet.parse_duration(grace)
    clusters = fleet.list_clusters(
        fleet.AwsClients.for_region(region), now, root=root, state=lambda: fleet.pulumi_state(root)
    )
    candidates = fleet.reap_candidates(clusters, now, expired=expired, prefix=prefix, grace=grace_td, finished=finished)
    destroyable = [c.stack for c in candidates if c.state != "orphan"]
    if destroyable and not dry_run and not yes:
        _ask_or_refuse(
            Ui(out),
            f"Destroy and remove {len(destroyable)} stack(s): {', '.join(destroyable)}?",
            f"would destroy {', '.join(destroyable)}",
        )

    def report(o: fleet.ReapOutcome) -> None:
        style = {"destroyed": "green", "failed": "red", "orphan": "yellow"}.get(o.action, "bold")
        out.print(f"[{style}]{o.action}[/] {o.stack}: {o.message}", highlight=False)
        for arn in o.arns:
            out.print(f"    {arn}", markup=False, highlight=False)

    if not candidates:
        out.print("nothing to reap")
    outcomes = fleet.reap(
        candidates, destroy_stack=fleet.destroy_with_automation_api(root), dry_run=dry_run, report=report
    )
    if as_json:
        _print_json(
            [{"stack": o.stack, "action": o.action, "message": o.message, "arns": list(o.arns)} for o in outcomes]
        )
    if any(o.action == "failed" for o in outcomes):
        raise typer.Exit(code=ExitCode.FAILED)


@app.command("doctor")
def doctor_cmd(
    stack: str = typer.Argument(..., help="Stack name (stacks/Pulumi.STACK.yaml) or a stack file's path."),
    as_json: bool = json_option("Machine-readable output."),
    probe: bool = typer.Option(
        False, "--probe", help="Also settle what only a real call can, with throwaway resources always removed."
    ),
    platform_outputs: Optional[Path] = typer.Option(
        None, "--platform-outputs", help="`pulumi stack output --json` of the platform (default: read it via the CLI)."
    ),
    secrets_provider: Optional[str] = typer.Option(
        None, envvar=["TRAINSTACK_SECRETS_PROVIDER", "PULUMI_SECRETS_PROVIDER"], help="As for `trainstack run`."
    ),
    pulumi_root: Optional[str] = PULUMI_ROOT_OPTION,
    root: Optional[Path] = ROOT_OPTION,
) -> None:
    """Check a real AWS account for exactly what STACK needs: exit 0 ready, 1 not ready, 2 bad input."""
    from trainstack.doctor.render import render
    from trainstack.doctor.runner import DoctorInputError, DoctorOptions, diagnose
    from trainstack.plan.planner import REPO_ROOT
    from trainstack.run.ui import console

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
        raise UserError(str(exc), payload={"stack": stack, "ready": False, "error": str(exc)}) from None
    if as_json:
        _print_json(report.to_json())
    else:
        render(report, console())
    raise typer.Exit(code=report.exit_code)


@app.command("try")
def try_cmd(
    keep: Optional[Path] = typer.Option(
        None, "--keep", help="Keep the stand-ins' state in this folder (default: a temporary one, removed after)."
    ),
) -> None:
    """See run, upload, ls and down work end to end against LOCAL STAND-INS (a fake Pulumi CLI and a
    moto AWS server in this process): no AWS account, no Pulumi CLI, nothing leaves this machine."""
    from trainstack.standins.trial import trial

    trial(keep)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
