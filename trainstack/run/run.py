"""`trainstack run` and `trainstack down`: one command from code to a model in S3, cluster destroyed after.

PLAN (merge, validate, offline plan, cost, confirm) -> CREATE a fresh stack -> CONFIG in one
`set_all_config_json` -> PREVIEW -> UP (live progress) -> FOLLOW the job (boto3) -> DESTROY + remove,
also when the job or `up` failed and on Ctrl-C. `run.json` is written at every phase change, locally
and (once the stack exists) under the run's artifact prefix, so the result outlives the stack.
Decisions use the Automation API's exception classes, events and outputs, never CLI text.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from trainstack import backends
from trainstack.model.config import ClusterStack
from trainstack.run.driver import (
    REPO_ROOT,
    CliMissingError,
    GiveUp,
    Interrupts,
    StackDriver,
    TrackedPulumiCommand,
    pulumi_command,
)
from trainstack.run.follow import (
    CAPACITY_HINTS,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    JobState,
    followed,
    follower_for,
    split_s3_uri,
)
from trainstack.run.progress import ProgressView
from trainstack.run.run_config import (
    EXIT_CLEANUP_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    Overrides,
    RefusedError,
    check_stack_name,
    config_json,
    load_template,
    merge,
    stack_name,
    template_file,
)

LAST_LOG_LINES = 50
_PLATFORM_PLANS: dict[str, dict] = {}  # platform stack -> offline outputs, evaluated once per process


@dataclass
class RunOptions:
    template: str
    overrides: Overrides = field(default_factory=Overrides)
    root: Path = REPO_ROOT
    keep_on_failure: bool = False
    skip_preview: bool = False
    yes: bool = False
    pulumi_root: str | None = None  # a directory with bin/pulumi; default: `pulumi` on PATH
    secrets_provider: str | None = None  # e.g. awskms://alias/trainstack-state?region=us-east-1
    poll_seconds: float = 15.0
    start_timeout_seconds: float = 45 * 60  # a job that has not started by then never will (capacity)
    grace_seconds: float = 15 * 60  # beyond job.maxRuntimeHours before the driver stops the job
    destroy_attempts: int = 3
    destroy_backoff_seconds: float = 10.0
    record_dir: Path | None = None  # local copy of run.json (default: <root>/.trainstack/runs)
    # `trainstack doctor`'s read-only checks before anything is created (the CLI turns them on unless
    # --no-doctor; off here so library callers and the fake-CLI tests opt in).
    doctor: bool = False


@dataclass
class RunRecord:
    """`run.json`: what happened to one run, written at every phase change."""

    stack: str
    template: str
    owner: str = ""
    backend: str = ""
    region: str = ""
    status: str = "planned"
    exit_code: int | None = None
    reason: str = ""
    model_uri: str | None = None
    artifact_uri: str | None = None
    expires_at: str = ""
    git_commit: str | None = None
    workdir: str = ""
    cost: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str | None = None
    last_log_lines: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def overhead_seconds(self) -> float:
        """Everything but the job itself: plan, create, preview, up, destroy."""
        return round(sum(p.get("seconds", 0.0) for k, p in self.phases.items() if k != "follow"), 3)


@dataclass
class DownResult:
    stack: str
    removed: bool
    exit_code: int
    reason: str = ""
    job_stopped: bool = False


class Ui:
    """What the run tells a person (rich console) and asks them (confirmation on a terminal)."""

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
    def interactive(self) -> bool:
        return self._confirm is not None or bool(self.console.is_terminal)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def git_commit(workdir: Path) -> str | None:
    """HEAD of the workdir's repository, `+dirty` when it has uncommitted changes; None outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(workdir), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(workdir), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def plain_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in outputs.items()}


class Recorder:
    """Writes run.json locally at every phase change, and to S3 once the run's artifact prefix is known."""

    def __init__(self, record: RunRecord, local_dir: Path, session_factory: Callable[[], Any]):
        self.record = record
        self.path = local_dir / record.stack / "run.json"
        self._session_factory = session_factory
        self._s3: Any = None  # boto3 S3 client, made on the first write
        self.s3_uri: str | None = None
        self.warned = False

    def phase(self, name: str) -> "_Phase":
        return _Phase(self, name)

    def write(self, ui: Ui | None = None) -> None:
        doc = json.dumps(self.record.to_json(), indent=2, default=str)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(doc + "\n")
        if not self.record.artifact_uri:
            return
        try:
            if self._s3 is None:
                self._s3 = self._session_factory().client("s3", region_name=self.record.region)
            bucket, key = split_s3_uri(self.record.artifact_uri + "run.json")
            # No SSE header: the bucket's default SSE-KMS applies (its policy denies only other keys).
            self._s3.put_object(Bucket=bucket, Key=key, Body=doc.encode(), ContentType="application/json")
            self.s3_uri = f"s3://{bucket}/{key}"
        except Exception as exc:  # noqa: BLE001 - the record must never fail the run
            if ui is not None and not self.warned:
                ui.say(
                    f"warning: could not write run.json to {self.record.artifact_uri}: {exc} (local copy: {self.path})",
                    "yellow",
                )
                self.warned = True


class _Phase:
    def __init__(self, recorder: Recorder, name: str):
        self.recorder, self.name = recorder, name

    def __enter__(self) -> "_Phase":
        self.started = time.perf_counter()
        self.recorder.record.phases[self.name] = {"started_at": _iso(_now())}
        return self

    def __exit__(self, *exc: Any) -> None:
        entry = self.recorder.record.phases[self.name]
        entry["seconds"] = round(time.perf_counter() - self.started, 3)
        self.recorder.write()


# ---------------------------------------------------------------------------------------------
# Destroy (shared by run, down and reap)


def destroy_stack(
    stack: auto.Stack,
    *,
    ui: Ui,
    attempts: int,
    backoff: float,
    intr: Interrupts | None,
    expected: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, str]:
    """Destroy all resources and remove the stack. Retries with backoff; a lock (ConcurrentUpdateError)
    or an escalated interrupt first cancels the update and clears pending creates. Returns (removed, why)."""
    escalated_done = False
    last = ""
    for attempt in range(1, attempts + 1):
        if intr is not None and intr.escalated and not escalated_done:
            escalated_done = True
            _clear_pending(stack, ui)
        view = ProgressView(ui.console, f"destroy {stack.name}", expected)
        try:
            with view:
                stack.destroy(remove=True, on_event=view.on_event)
            return True, ""
        except auto.ConcurrentUpdateError:
            last = "the stack is locked by another update"
            ui.say(f"{stack.name} is locked (a driver died mid-update?): cancelling the stale lock", "yellow")
            try:
                stack.cancel()
            except auto.CommandError as exc:
                last = f"cancel failed: {_first_line(exc)}"
        except auto.StackNotFoundError:
            return True, "already removed"
        except auto.CommandError as exc:
            last = view.state.errors[-1] if view.state.errors else _first_line(exc)
            ui.say(f"destroy attempt {attempt}/{attempts} failed: {last}", "red")
        if attempt < attempts:
            sleep(backoff * attempt)
    return False, last


def _clear_pending(stack: auto.Stack, ui: Ui) -> None:
    """After a hard interrupt the CLI exits mid-step: unlock, then drop pending creates from the state
    (the cloud objects they might have made carry the stack's tags; `trainstack ls` shows orphans)."""
    ui.say(f"cancelling the interrupted update of {stack.name} and clearing pending operations", "yellow")
    try:
        stack.cancel()
    except auto.CommandError:
        pass  # nothing was locked
    try:
        stack.refresh(clear_pending_creates=True)
    except auto.CommandError as exc:
        ui.say(f"refresh --clear-pending-creates failed: {_first_line(exc)}", "red")


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "args", [""])[0] if getattr(exc, "args", None) else str(exc)
    for line in str(text).splitlines():
        line = line.strip()
        if line.startswith("stderr:"):
            line = line[len("stderr:") :].strip()
        if line and not line.startswith(("code:", "stdout:")):
            return line[:300]
    return str(exc)[:300]


# ---------------------------------------------------------------------------------------------
# run


def _refuse(record: RunRecord, ui: Ui, message: str) -> RunRecord:
    ui.say("refused: nothing was created", "bold red")
    ui.log(message)
    record.status, record.exit_code, record.reason = "refused", EXIT_REFUSED, message
    record.finished_at = _iso(_now())
    return record


def _show_plan(ui: Ui, name: str, result: Any) -> None:
    cost = result.cost
    cfg = result.config
    ui.say(
        f"{name}: {len(result.run.resources)} resources, backend {cfg.backend}, {cfg.region}, "
        f"owner {cfg.owner}, expires {cfg.cluster.expires_at_iso}",
        "bold",
    )
    ui.log(
        f"cost: idle ${cost.idle_usd_per_hour:.2f}/h, busy ${cost.busy_low_usd_per_hour:.2f}-"
        f"{cost.busy_usd_per_hour:.2f}/h on-demand, worst case for this run ${cost.max_run_usd:,.2f} "
        f"({cfg.cluster.job.max_runtime_hours:g} h max runtime)"
    )
    for w in result.warnings:
        ui.say(f"warning: {w}", "yellow")


def run(
    opts: RunOptions,
    ui: Ui,
    *,
    session_factory: Callable[[], Any] | None = None,
    command: TrackedPulumiCommand | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunRecord:
    """The whole run. Returns its record; `record.exit_code` is the process exit code."""
    import boto3

    from trainstack.plan.planner import PlanError, plan

    session_factory = session_factory or boto3.Session
    now = _now()
    record = RunRecord(stack="", template=opts.template, started_at=_iso(now))
    t0 = time.perf_counter()

    # PLAN: nothing exists yet, every problem is exit 2.
    try:
        command = command or pulumi_command(opts.pulumi_root, project_root=opts.root)
        template = load_template(template_file(opts.template, opts.root), opts.root)
        if template.get("trainstack:kind") != "cluster":
            raise RefusedError(
                f"trainstack:kind = {template.get('trainstack:kind')} in template {opts.template}: "
                "`trainstack run` makes clusters; pick a cluster template such as dev-ecs (deploy "
                "a platform with `pulumi up -s platform`)"
            )
        merged = merge(template, opts.overrides, now)
        owner = str(merged.get("trainstack:owner", ""))
        backend = str(merged.get("trainstack:backend", ""))
        if backend in backends.names() and backend not in followed():  # typos are left to validation's hints
            raise RefusedError(
                f"trainstack:backend = {backend}: `trainstack run` follows "
                f"{', '.join(followed())} jobs; deploy this one with `pulumi up` and remove it "
                "with `trainstack down NAME`"
            )
        name = check_stack_name(opts.overrides.name) if opts.overrides.name else stack_name(owner, backend, now)
        record.stack = name
        try:
            result = plan(name, opts.root, raw=merged, now=now, _platform_cache=_PLATFORM_PLANS)
        except PlanError as exc:
            raise RefusedError(str(exc)) from None
        if not isinstance(result.config, ClusterStack):  # --set trainstack:kind=...
            raise RefusedError(f"trainstack:kind = {result.config.kind}: `trainstack run` makes clusters")
        mandatory = getattr(getattr(result, "policy", None), "mandatory", None) or []
        if mandatory:  # `pulumi preview --policy-pack policies` would refuse the same stack
            raise RefusedError(
                "mandatory policy violations (policies/):\n"
                + "\n".join(f"  - {v.rule} on {v.resource or 'the stack'} ({v.type}): {v.message}" for v in mandatory)
            )
        if opts.doctor:
            _doctor(result, opts, ui, session_factory)
    except (RefusedError, CliMissingError) as exc:  # one message, no traceback
        return _refuse(record, ui, str(exc))

    c = result.config.cluster
    # The code that runs: job.workdir (made absolute by validation), else where `trainstack run` was started.
    workdir = Path(getattr(c.job, "workdir", None) or os.getcwd()).resolve()
    record.owner, record.backend, record.region = c.owner, c.backend, result.config.region
    record.expires_at, record.cost, record.workdir = c.expires_at_iso, asdict(result.cost), str(workdir)
    record.git_commit = git_commit(workdir)
    record.phases["plan"] = {"seconds": round(time.perf_counter() - t0, 3)}
    recorder = Recorder(record, opts.record_dir or opts.root / ".trainstack" / "runs", session_factory)
    _show_plan(ui, name, result)
    if not opts.yes and ui.interactive and not ui.confirm(f"Create {name} and run the job?"):
        return _refuse(record, ui, "not confirmed")
    recorder.write(ui)

    driver = StackDriver(command, root=opts.root, secrets_provider=opts.secrets_provider)
    expected = len(result.run.resources)
    stack: auto.Stack | None = None
    job = JobState(PENDING)
    failed_reason = ""
    refused = False

    def on_signal(count: int) -> None:
        msg = {
            1: "interrupt: stopping (the current Pulumi step finishes), then destroying; Ctrl-C again to abandon "
            "the update",
            2: "second interrupt: abandoning the update; then cancel, clear pending creates, "
            f"destroy. Ctrl-C once more to exit and leave it to `trainstack down {name}`",
        }.get(count)
        if msg:
            ui.say(msg, "bold yellow")

    with Interrupts(command, on_signal=on_signal) as intr:
        try:
            try:
                # CREATE + CONFIG (+ PREVIEW): a failure here leaves an empty stack, removed below.
                with recorder.phase("create"):
                    record.status = "creating"
                    for _attempt in range(3):
                        try:
                            stack = driver.create(name)
                            break
                        except auto.StackAlreadyExistsError:
                            if opts.overrides.name:
                                raise RefusedError(
                                    f"--name {name}: a stack of that name exists; a run never reuses "
                                    f"one (remove it with `trainstack down {name}` or pick a new name)"
                                ) from None
                            name = record.stack = stack_name(owner, backend, now)
                            recorder.path = recorder.path.parent.parent / name / "run.json"
                        except auto.CommandError as exc:  # e.g. not logged in to a state backend: nothing exists
                            raise RefusedError(f"pulumi stack init {name} failed: {_first_line(exc)}") from None
                    if stack is None:
                        raise RefusedError(f"could not find a free stack name after {name}; pass --name")
                    try:
                        stack.set_all_config_json(config_json(merged))
                    except auto.CommandError as exc:
                        raise RefusedError(f"setting the config of {name} failed: {_first_line(exc)}") from None
                if not opts.skip_preview and not intr.interrupted:
                    with recorder.phase("preview"):
                        view = ProgressView(ui.console, f"preview {name}", expected)
                        try:
                            with view:
                                stack.preview(on_event=view.on_event, policy_packs=_policy_packs(opts.root))
                        except auto.CommandError as exc:
                            raise RefusedError(_why(view, exc, "preview failed")) from None
                if not intr.interrupted:
                    with recorder.phase("up"):
                        record.status = "deploying"
                        recorder.write(ui)
                        view = ProgressView(ui.console, f"up {name}", expected)
                        try:
                            with view:
                                up = stack.up(on_event=view.on_event, policy_packs=_policy_packs(opts.root))
                            outputs = plain_outputs(up.outputs)
                        except auto.CommandError as exc:
                            failed_reason = _why(view, exc, "pulumi up failed")
                            outputs = None
                    if outputs is not None:
                        deployed = backends.ClusterOutputs.from_outputs(outputs)
                        record.artifact_uri, record.model_uri = deployed.artifact_uri, deployed.model_uri
                        record.status = "running"
                        recorder.write(ui)
                        if not intr.interrupted:
                            with recorder.phase("follow"):
                                try:
                                    job, tail = follow(
                                        follower_for(outputs, session_factory()),
                                        intr=intr,
                                        ui=ui,
                                        opts=opts,
                                        max_runtime_hours=c.job.max_runtime_hours,
                                        clock=clock,
                                    )
                                except Exception as exc:  # noqa: BLE001 - e.g. AWS API errors: still destroy
                                    job, tail = (
                                        JobState(FAILED, f"following the job failed: {exc}"),
                                        collections.deque(),
                                    )
                                record.last_log_lines = list(tail)
                                if job.phase != SUCCEEDED:
                                    failed_reason = job.reason
                                elif job.reason.startswith("s3://"):
                                    record.model_uri = job.reason
            except RefusedError as exc:
                refused = not intr.interrupted
                failed_reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - whatever broke, the cleanup below still runs
                failed_reason = f"unexpected error: {exc!r}"

            # Outcome before cleanup.
            if intr.interrupted:
                record.status, record.exit_code = "interrupted", EXIT_INTERRUPTED
                record.reason = failed_reason or "interrupted"
            elif refused:
                record.status, record.exit_code, record.reason = "refused", EXIT_REFUSED, failed_reason
            elif failed_reason:
                record.status, record.exit_code, record.reason = "failed", EXIT_JOB_FAILED, failed_reason
                ui.say(f"run failed: {failed_reason}", "bold red")
            else:
                record.status, record.exit_code = "succeeded", EXIT_OK
            recorder.write(ui)

            # DESTROY (always, unless --keep-on-failure on a failed job).
            if stack is not None:
                if record.exit_code == EXIT_JOB_FAILED and opts.keep_on_failure:
                    record.status = "kept"
                    ui.say(
                        f"--keep-on-failure: {name} is kept for debugging; it expires at {record.expires_at}. "
                        f"Remove it with: trainstack down {name}",
                        "yellow",
                    )
                else:
                    with recorder.phase("destroy"):
                        removed, why = destroy_stack(
                            stack,
                            ui=ui,
                            attempts=opts.destroy_attempts,
                            backoff=opts.destroy_backoff_seconds,
                            intr=intr,
                            expected=expected,
                            sleep=sleep,
                        )
                    if not removed:
                        record.status, record.exit_code = "cleanup-incomplete", EXIT_CLEANUP_INCOMPLETE
                        record.reason = (record.reason + "; " if record.reason else "") + f"destroy failed: {why}"
                        ui.say(
                            f"{name} could NOT be destroyed ({why}). It is kept and still listed; its in-cloud "
                            f"teardown stops the compute at {record.expires_at}. Retry: trainstack down {name}",
                            "bold red",
                        )
        except GiveUp:  # a third signal between the guarded steps
            return _abandon(record, recorder, ui, name)
    record.finished_at = _iso(_now())
    recorder.write(ui)
    timings = ", ".join(f"{k} {v.get('seconds', 0):.1f} s" for k, v in record.phases.items())
    ui.log(f"{name}: {record.status}; {record.overhead_seconds:.1f} s outside the job ({timings})")
    if record.exit_code == EXIT_OK:
        ui.say(f"model: {record.model_uri}", "bold green")
    return record


def _doctor(result: Any, opts: RunOptions, ui: Ui, session_factory: Callable[[], Any]) -> None:
    """`trainstack doctor`'s read-only checks of the account for this very plan; a failure refuses the run."""
    from trainstack.doctor.aws import Aws
    from trainstack.doctor.runner import DoctorOptions, diagnose

    report = diagnose(
        DoctorOptions(
            stack=result.stack, root=opts.root, secrets_provider=opts.secrets_provider, pulumi_root=opts.pulumi_root
        ),
        aws=Aws(result.config.region, session=session_factory()),
        result=result,
    )
    if report.failures:
        raise RefusedError(report.message())
    warnings = [c for c in report.checks if c.status.value == "warn"]
    ui.say(f"doctor: the account is ready ({len(report.checks)} checks, {report.seconds:.1f} s)", "green")
    for c in warnings:
        ui.say(f"doctor warning: {c.name}: {c.detail}", "yellow")


def _abandon(record: RunRecord, recorder: Recorder, ui: Ui, name: str) -> RunRecord:
    record.status, record.exit_code = "abandoned", EXIT_INTERRUPTED
    record.reason = "third interrupt: the driver exited without waiting for the cleanup"
    record.finished_at = _iso(_now())
    recorder.write()
    ui.say(f"exiting. The stack may still exist: remove it with  trainstack down {name}", "bold red")
    return record


def _why(view: ProgressView, exc: BaseException, what: str) -> str:
    detail = view.state.errors[-1] if view.state.errors else _first_line(exc)
    if view.state.policy_violations:
        detail = "; ".join(view.state.policy_violations)
    return f"{what}: {detail}"


def _policy_packs(root: Path) -> list[str] | None:
    pack = root / "trainstack" / "policies"
    return [str(pack)] if (pack / "PulumiPolicy.yaml").exists() else None


def follow(
    follower: Any,
    *,
    intr: Interrupts,
    ui: Ui,
    opts: RunOptions,
    max_runtime_hours: float,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[JobState, collections.deque]:
    """Submit and follow the job to its end; never hangs: a job that does not start times out, one that
    runs past its limit (+ grace) is stopped, an interrupt stops it."""
    tail: collections.deque = collections.deque(maxlen=LAST_LOG_LINES)
    try:
        follower.submit()
    except Exception as exc:  # noqa: BLE001 - the service refused the job: a job failure, then destroy
        return JobState(FAILED, f"the job could not be started: {exc}"), tail
    started = clock()
    running_since: float | None = None
    run_limit = max_runtime_hours * 3600 + opts.grace_seconds
    while True:
        if intr.interrupted:
            ui.say("stopping the job", "yellow")
            _safe_stop(follower, ui)
            return JobState(FAILED, "interrupted"), tail
        state = follower.poll()
        for line in follower.tail():
            tail.append(line)
            ui.log(line)
        if state.finished:
            if state.phase == SUCCEEDED:
                uri = follower.model_uri()
                return JobState(SUCCEEDED, uri or state.reason), tail
            return state, tail
        waited = clock() - started
        if state.phase == PENDING and running_since is None and waited > opts.start_timeout_seconds:
            why = follower.stalled()
            _safe_stop(follower, ui)
            return JobState(
                FAILED, f"the job did not start within {waited / 60:.0f} min: {why}. What to try: {CAPACITY_HINTS}"
            ), tail
        if state.phase == RUNNING and running_since is None:
            running_since = clock()
            ui.say(f"job running ({state.reason})", "green")
        if running_since is not None and clock() - running_since > run_limit:
            _safe_stop(follower, ui)
            return JobState(
                FAILED,
                f"the job ran past job.maxRuntimeHours ({max_runtime_hours:g} h) plus "
                f"{opts.grace_seconds / 60:.0f} min grace and was stopped",
            ), tail
        intr.event.wait(opts.poll_seconds)


def _safe_stop(follower: Any, ui: Ui) -> None:
    try:
        follower.stop()
    except Exception as exc:  # noqa: BLE001 - the destroy that follows removes the compute anyway
        ui.say(f"could not stop the job: {exc}; the destroy removes its compute", "yellow")


# ---------------------------------------------------------------------------------------------
# down


def down(
    stack_name: str,
    ui: Ui,
    *,
    root: Path = REPO_ROOT,
    pulumi_root: str | None = None,
    secrets_provider: str | None = None,
    session_factory: Callable[[], Any] | None = None,
    command: TrackedPulumiCommand | None = None,
    attempts: int = 3,
    backoff: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DownResult:
    """Idempotent cleanup of one stack: stop its job, destroy with retries (a stale lock is cancelled),
    remove. A stack that cannot be destroyed is kept (exit 3): it still costs money until its expiry."""
    import boto3

    try:
        command = command or pulumi_command(pulumi_root, project_root=root)
    except CliMissingError as exc:
        ui.log(str(exc))
        return DownResult(stack_name, False, EXIT_REFUSED, str(exc))
    driver = StackDriver(command, root=root, secrets_provider=secrets_provider)
    try:
        stack = driver.select(stack_name)
    except auto.StackNotFoundError:
        ui.say(f"{stack_name}: no such stack (already removed)", "green")
        return DownResult(stack_name, True, EXIT_OK, "already removed")
    result = DownResult(stack_name, False, EXIT_OK)
    with Interrupts(command) as intr:
        try:
            try:
                outputs = plain_outputs(stack.outputs())
            except auto.CommandError:
                outputs = {}
            backend_output = backends.ClusterOutputs.output_name("backend")
            if outputs and backend_output not in outputs:
                why = (
                    f"{stack_name} is not a trainstack cluster stack (its outputs have no `backend`: a platform?); "
                    "`trainstack down` never destroys one. Use `pulumi destroy` if you really mean it"
                )
                ui.log(why)
                return DownResult(stack_name, False, EXIT_REFUSED, why)
            if outputs.get(backend_output):
                try:
                    follower_for(outputs, (session_factory or boto3.Session)()).stop()
                    result.job_stopped = True
                except Exception as exc:  # noqa: BLE001 - e.g. no job running: the destroy still runs
                    ui.say(f"job not stopped ({exc}); destroying anyway", "yellow")
            removed, why = destroy_stack(stack, ui=ui, attempts=attempts, backoff=backoff, intr=intr, sleep=sleep)
        except GiveUp:
            return DownResult(stack_name, False, EXIT_INTERRUPTED, "interrupted")
    result.removed, result.reason = removed, why
    if removed:
        ui.say(f"{stack_name}: destroyed and removed", "green")
    else:
        result.exit_code = EXIT_CLEANUP_INCOMPLETE
        ui.say(
            f"{stack_name} could NOT be destroyed ({why}); it is kept and listed. Its in-cloud teardown stops "
            f"the compute at expiry. Retry: trainstack down {stack_name}",
            "bold red",
        )
    if intr.interrupted and result.exit_code == EXIT_OK:
        result.exit_code = EXIT_INTERRUPTED
    return result


# ---------------------------------------------------------------------------------------------
# CI outputs


def github_outputs(record: RunRecord, env: Mapping[str, str] = os.environ) -> None:
    """`$GITHUB_OUTPUT` key=value lines and a `$GITHUB_STEP_SUMMARY` table, when Actions provides them."""
    if env.get("GITHUB_OUTPUT"):
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as f:
            for key, value in (
                ("stack", record.stack),
                ("status", record.status),
                ("exit-code", record.exit_code),
                ("model-uri", record.model_uri or ""),
                ("artifact-uri", record.artifact_uri or ""),
            ):
                f.write(f"{key}={value}\n")
    if env.get("GITHUB_STEP_SUMMARY"):
        rows = [
            ("stack", record.stack),
            ("status", record.status),
            ("exit code", record.exit_code),
            ("model", record.model_uri or "-"),
            ("git commit", record.git_commit or "-"),
            ("worst-case cost", f"${record.cost.get('max_run_usd', 0):,.2f}"),
        ]
        rows += [(f"phase {k}", f"{v.get('seconds', 0):.1f} s") for k, v in record.phases.items()]
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
            f.write(f"### trainstack run {record.stack}\n\n| | |\n|---|---|\n")
            f.writelines(f"| {k} | {str(v).replace('|', '/')} |\n" for k, v in rows)
            if record.reason:
                f.write(f"\n{record.reason}\n")
