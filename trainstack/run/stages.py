"""`trainstack run` as stages over one context: plan -> create -> preview -> up -> follow -> destroy.

Each stage is a function of the `RunContext`: it reads what earlier stages left there (the merged
config, the plan, the stack, its outputs) and adds its own. A stage that cannot go on raises
`UserError` with the exit code of its outcome (2: refused, 1: failed); the driver (`run.run`) records
every stage in `run.json` (started_at, seconds, status, error), always runs `destroy` once a stack
exists, and turns the outcome into the record's status and exit code.

The stages stand alone: `follow` needs only outputs and a follower (attach to a running stack),
`record` only a Recorder (the `Recorder` class), `destroy` only a stack.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from trainstack import backends
from trainstack.errors import ExitCode, UserError
from trainstack.model.config import ClusterStack
from trainstack.run.destroy import NOT_FOUND, REMOVED, destroy_stack, first_line
from trainstack.run.driver import (
    REPO_ROOT,
    Interrupts,
    StackDriver,
    TrackedPulumiCommand,
    output_values,
    pulumi_command,
)
from trainstack.run.follow import (
    CAPACITY_HINTS,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    JobState,
    ReleaseError,
    followed,
    follower_for,
    handle_of,
)
from trainstack.run.progress import ProgressView
from trainstack.run.record import INTERRUPTED, KEPT, Recorder, RunRecord, git_commit, iso, now
from trainstack.run.run_config import (
    Overrides,
    RefusedError,
    check_stack_name,
    config_json,
    load_template,
    merge,
    stack_name,
    template_file,
)
from trainstack.run.ui import Ui

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
    pulumi_root: str | None = None  # a directory with bin/pulumi; default: $TRAINSTACK_PULUMI_ROOT, then PATH
    secrets_provider: str | None = None  # e.g. awskms://alias/trainstack-state?region=us-east-1
    poll_seconds: float = 15.0
    start_timeout_seconds: float = 45 * 60  # a job that has not started by then never will (capacity)
    grace_seconds: float = 15 * 60  # beyond job.maxRuntimeHours before the driver stops the job
    destroy_attempts: int = 3
    destroy_backoff_seconds: float = 10.0
    record_dir: Path | None = None  # local copy of run.json (default: <root>/.trainstack/runs)
    # Keep the stack after the job (`trainstack exec` runs further jobs on it; `trainstack down` removes it).
    keep: bool = False
    # Return once the job has started: the job writes its own result (run.json), `trainstack attach` follows
    # it from anywhere, `trainstack reap --finished` removes the stack once it has ended.
    detach: bool = False
    # `trainstack doctor`'s read-only checks before anything is created (the CLI turns them on unless
    # --no-doctor; off here so library callers and the fake-CLI tests opt in).
    doctor: bool = False

    def check(self) -> None:
        if not self.start_timeout_seconds > 0:
            raise RefusedError(
                f"--start-timeout-minutes {self.start_timeout_seconds / 60:g}: must be more than 0 (how long to "
                "wait for a GPU before giving up). Fix: pass e.g. --start-timeout-minutes 45 (the default)"
            )
        if not self.poll_seconds > 0:
            raise RefusedError(f"--poll-seconds {self.poll_seconds:g}: must be more than 0. Fix: leave it out (15)")


@dataclass
class RunContext:
    """Everything the stages share; each stage fills its part."""

    opts: RunOptions
    ui: Ui
    record: RunRecord
    recorder: Recorder
    session_factory: Callable[[], Any]
    started: dt.datetime
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    command: TrackedPulumiCommand | None = None
    merged: dict[str, Any] | None = None  # plan: the run's flat config
    plan: Any = None  # plan: trainstack.plan.planner.PlanResult
    stack: auto.Stack | None = None  # create
    outputs: dict[str, Any] | None = None  # up
    job: JobState | None = None  # follow
    intr: Interrupts | None = None  # from create on
    failure: UserError | None = None  # the first stage that could not go on
    _session: Any = None

    @classmethod
    def start(
        cls,
        opts: RunOptions,
        ui: Ui,
        *,
        session_factory: Callable[[], Any] | None = None,
        command: TrackedPulumiCommand | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RunContext:
        if session_factory is None:
            import boto3

            session_factory = boto3.Session
        started = now()
        record = RunRecord(stack="", template=opts.template, started_at=iso(started))
        recorder = Recorder(record, opts.record_dir or opts.root / ".trainstack" / "runs", session_factory)
        recorder.say = lambda text: ui.say(text, "yellow")
        return cls(opts, ui, record, recorder, session_factory, started, clock, sleep, command)

    @property
    def name(self) -> str:
        return self.record.stack

    @property
    def interrupted(self) -> bool:
        return self.intr is not None and self.intr.interrupted

    @property
    def expected(self) -> int:
        return len(self.plan.run.resources) if self.plan is not None else 0

    def session(self) -> Any:
        if self._session is None:
            self._session = self.session_factory()
        return self._session

    def driver(self) -> StackDriver:
        assert self.command is not None
        return StackDriver(self.command, root=self.opts.root, secrets_provider=self.opts.secrets_provider)


Stage = Callable[[RunContext], None]


# ---------------------------------------------------------------------------------------------- plan


def plan_stage(ctx: RunContext) -> None:
    """Merge template + overrides, validate, plan offline with the policy pack, check the deployed
    platform. Nothing is created; every problem is a refusal (exit 2)."""
    from trainstack.plan.planner import plan

    opts = ctx.opts
    opts.check()
    ctx.command = ctx.command or pulumi_command(opts.pulumi_root, project_root=opts.root)
    template = load_template(template_file(opts.template, opts.root), opts.root)
    if template.get("trainstack:kind") != "cluster":
        raise RefusedError(
            f"trainstack:kind = {template.get('trainstack:kind')} in template {opts.template}: `trainstack run` "
            "makes clusters. Fix: pick a cluster template such as dev-ecs (deploy a platform with `pulumi up -s "
            "platform`)"
        )
    merged = merge(template, opts.overrides, ctx.started)
    owner = str(merged.get("trainstack:owner", ""))
    backend = str(merged.get("trainstack:backend", ""))
    if backend in backends.names() and backend not in followed():  # typos are left to validation's hints
        raise RefusedError(
            f"trainstack:backend = {backend}: `trainstack run` follows {', '.join(followed())} jobs. Fix: deploy "
            "this one with `pulumi up` and remove it with `trainstack down NAME`"
        )
    ctx.record.stack = (
        check_stack_name(opts.overrides.name) if opts.overrides.name else stack_name(owner, backend, ctx.started)
    )
    result = plan(ctx.name, opts.root, raw=merged, now=ctx.started, _platform_cache=_PLATFORM_PLANS)
    if not isinstance(result.config, ClusterStack):  # --set trainstack:kind=...
        raise RefusedError(f"trainstack:kind = {result.config.kind}: `trainstack run` makes clusters")
    mandatory = getattr(getattr(result, "policy", None), "mandatory", None) or []
    if mandatory:  # `pulumi preview --policy-pack trainstack/policies` would refuse the same stack
        raise RefusedError(
            "mandatory policy violations (trainstack/policies/), each with its fix:\n"
            + "\n".join(f"  - {v.rule} on {v.resource or 'the stack'} ({v.type}): {v.message}" for v in mandatory)
        )
    ctx.merged, ctx.plan = merged, result
    c = result.config.cluster
    # The code that runs: job.workdir (made absolute by validation), else where `trainstack run` was started.
    workdir = Path(getattr(c.job, "workdir", None) or os.getcwd()).resolve()
    r = ctx.record
    r.owner, r.backend, r.region = c.owner, c.backend, result.config.region
    r.expires_at, r.cost, r.workdir = c.expires_at_iso, asdict(result.cost), str(workdir)
    r.git_commit = git_commit(workdir)
    _show_plan(ctx.ui, ctx.name, result)
    check_platform(ctx)


def _show_plan(ui: Ui, name: str, result: Any) -> None:
    from trainstack.plan.render import money_range

    cost, cfg = result.cost, result.config
    ui.say(
        f"{name}: {len(result.run.resources)} resources, backend {cfg.backend}, {cfg.region}, "
        f"owner {cfg.owner}, expires {cfg.cluster.expires_at_iso}",
        "bold",
    )
    ui.log(
        f"cost: idle ${cost.idle_usd_per_hour:.2f}/h, busy "
        f"{money_range(cost.busy_low_usd_per_hour, cost.busy_usd_per_hour)}/h on-demand, worst case for this "
        f"run ${cost.max_run_usd:,.2f} ({cfg.cluster.job.max_runtime_hours:g} h max runtime)"
    )
    for w in result.warnings:
        ui.say(f"warning: {w}", "yellow")


def check_platform(ctx: RunContext) -> None:
    """The platform stack the cluster references is deployed, complete and in the cluster's region:
    checked before anything is created (otherwise `preview` fails on a stack just made for nothing)."""
    cfg = ctx.plan.config
    ref = cfg.cluster.platform_stack
    try:
        raw = output_values(ctx.driver().workspace(), ref)
    except auto.StackNotFoundError:
        raise RefusedError(
            f"trainstack:platformStack = {ref}: no such stack in the state backend{_backend_hint()}. A cluster "
            "runs on a deployed platform (network, data lake). Fix: deploy it once (config: "
            "stacks/Pulumi.platform.yaml): `pulumi stack init platform && pulumi up --stack platform`, or point "
            "--set platformStack=ORG/trainstack/NAME at the deployed one"
        ) from None
    except auto.CommandError as exc:
        raise RefusedError(
            f"trainstack:platformStack = {ref}: reading its outputs failed: {first_line(exc)}. Fix: log in to the "
            "state backend that holds the platform (`pulumi login`, or PULUMI_BACKEND_URL)"
        ) from None
    if not raw:
        raise RefusedError(
            f"trainstack:platformStack = {ref}: the stack exists but has no outputs: it was never deployed, or "
            f"was destroyed. Fix: `pulumi up --stack {ref}`"
        )
    try:  # what a cluster reads from its platform, as the platform program declares it
        outputs = backends.PlatformOutputs.from_outputs(raw)
    except backends.OutputsError as exc:
        raise RefusedError(f"trainstack:platformStack = {ref}: {exc}") from None
    if outputs.region != cfg.region:
        raise RefusedError(
            f"aws:region = {cfg.region}: the deployed platform {ref} is in {outputs.region}, and a cluster "
            f"runs next to its data. Fix: --set aws:region={outputs.region}"
        )


def _backend_hint() -> str:
    url = os.environ.get("PULUMI_BACKEND_URL")
    return f" ({url})" if url else ""


def plain_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in outputs.items()}


def doctor_stage(ctx: RunContext) -> None:
    """`trainstack doctor`'s read-only checks of the account for this very plan; a failure refuses the run."""
    from trainstack.doctor.aws import Aws
    from trainstack.doctor.runner import DoctorInputError, DoctorOptions, diagnose

    opts, result = ctx.opts, ctx.plan
    try:
        report = diagnose(
            DoctorOptions(
                stack=result.stack, root=opts.root, secrets_provider=opts.secrets_provider, pulumi_root=opts.pulumi_root
            ),
            aws=Aws(result.config.region, session=ctx.session()),
            result=result,
        )
    except DoctorInputError as exc:
        raise RefusedError(str(exc)) from None
    if report.failures:
        raise RefusedError(report.message())
    warnings = [c for c in report.checks if c.status.value == "warn"]
    ctx.ui.say(f"doctor: the account is ready ({len(report.checks)} checks, {report.seconds:.1f} s)", "green")
    for c in warnings:
        ctx.ui.say(f"doctor warning: {c.name}: {c.detail}", "yellow")


def confirm(ctx: RunContext) -> None:
    """Ask before creating anything, when a person can answer (stdin is a terminal); refuse otherwise."""
    if ctx.opts.yes:
        return
    question = f"Create {ctx.name} and run the job?"
    if not ctx.ui.can_ask:
        raise RefusedError(
            f"would create stack {ctx.name} (worst case ${ctx.record.cost.get('max_run_usd', 0):,.2f}); refusing "
            "without a terminal to ask on (stdin is not a terminal). Fix: pass --yes"
        )
    if not ctx.ui.confirm(question):
        raise RefusedError("not confirmed: nothing was created")


# ---------------------------------------------------------------------------------------------- create


def create_stage(ctx: RunContext) -> None:
    """A fresh stack (never a reused one): `stack init` is the atomic claim on the name. Then the whole
    config in one `config set-all --json`."""
    driver = ctx.driver()
    for _attempt in range(3):
        try:
            ctx.stack = driver.create(ctx.name)
            break
        except auto.StackAlreadyExistsError:
            if ctx.opts.overrides.name:
                raise RefusedError(
                    f"--name {ctx.name}: a stack of that name already exists (another run, or a kept stack) and a "
                    f"run never reuses one. Fix: pick another --name, or remove the old stack with "
                    f"`trainstack down {ctx.name}`"
                ) from None
            ctx.record.stack = stack_name(ctx.record.owner, ctx.record.backend, ctx.started)
        except auto.CommandError as exc:  # e.g. not logged in to a state backend: nothing exists
            raise RefusedError(
                f"pulumi stack init {ctx.name} failed: {first_line(exc)}. Fix: log in to a state backend "
                "(`pulumi login`, or PULUMI_BACKEND_URL) and give it a secrets provider"
            ) from None
    if ctx.stack is None:
        raise RefusedError(f"could not find a free stack name after {ctx.name}. Fix: pass --name")
    ctx.recorder.claim()  # the name is this run's: run.json may be written from now on
    ctx.record.status = "creating"
    try:
        assert ctx.merged is not None
        ctx.stack.set_all_config_json(config_json(ctx.merged))
    except auto.CommandError as exc:
        raise RefusedError(f"setting the config of {ctx.name} failed: {first_line(exc)}") from None


# ---------------------------------------------------------------------------------------------- preview, up


def preview_stage(ctx: RunContext) -> None:
    """`pulumi preview` with the policy pack: real lookups (AMIs, the platform reference), nothing changed."""
    assert ctx.stack is not None
    view = ProgressView(ctx.ui.console, f"preview {ctx.name}", ctx.expected, preview=True)
    try:
        with view:
            ctx.stack.preview(on_event=view.on_event, policy_packs=_policy_packs(ctx.opts.root))
    except auto.CommandError as exc:
        raise RefusedError(_why(view, exc, "pulumi preview failed")) from None


def up_stage(ctx: RunContext) -> None:
    """`pulumi up` with live progress; its outputs say where the job and the model are."""
    assert ctx.stack is not None
    ctx.record.status = "deploying"
    ctx.recorder.write()
    view = ProgressView(ctx.ui.console, f"up {ctx.name}", ctx.expected)
    try:
        with view:
            up = ctx.stack.up(on_event=view.on_event, policy_packs=_policy_packs(ctx.opts.root))
    except auto.CommandError as exc:
        raise UserError(_why(view, exc, "pulumi up failed"), ExitCode.FAILED) from None
    ctx.outputs = plain_outputs(up.outputs)
    try:
        deployed = backends.ClusterOutputs.from_outputs(ctx.outputs)
    except backends.OutputsError as exc:
        raise UserError(f"the outputs of {ctx.name}: {exc}", ExitCode.FAILED) from None
    ctx.record.artifact_uri, ctx.record.model_uri = deployed.artifact_uri, deployed.model_uri
    ctx.record.status = "running"
    ctx.recorder.write()


def _why(view: ProgressView, exc: BaseException, what: str) -> str:
    detail = view.state.errors[-1] if view.state.errors else first_line(exc)
    if view.state.policy_violations:
        detail = "; ".join(view.state.policy_violations)
    return f"{what}: {detail}"


def _policy_packs(root: Path) -> list[str] | None:
    pack = root / "trainstack" / "policies"
    return [str(pack)] if (pack / "PulumiPolicy.yaml").exists() else None


# ---------------------------------------------------------------------------------------------- follow


def follow_stage(ctx: RunContext) -> None:
    """Start (ecs RunTask, sagemaker CreateTrainingJob) and follow the job to its end with the backend's
    follower; the job's failure is the run's. With --detach, return once it has started."""
    assert ctx.outputs is not None and ctx.plan is not None
    follower = None

    def started(f: Any) -> None:
        ctx.record.job_handle = handle_of(f)
        ctx.recorder.defer_to_job = ctx.opts.detach
        ctx.recorder.write()

    try:
        follower = follower_for(ctx.outputs, ctx.session())
        job, tail = follow(
            follower,
            intr=ctx.intr,
            ui=ctx.ui,
            opts=ctx.opts,
            max_runtime_hours=ctx.plan.config.cluster.job.max_runtime_hours,
            clock=ctx.clock,
            on_started=started,
            detach=ctx.opts.detach,
        )
    except Exception as exc:  # noqa: BLE001 - e.g. AWS API errors: a failed job, and the stack is still destroyed
        job, tail = JobState(FAILED, f"following the job failed: {exc}"), collections.deque()
    ctx.job = job
    ctx.record.last_log_lines = list(tail)
    if job.phase == DETACHED:
        return
    if job.phase == SUCCEEDED:
        if job.reason.startswith("s3://"):
            ctx.record.model_uri = job.reason
    elif not ctx.interrupted:
        raise UserError(job.reason, ExitCode.FAILED)


DETACHED = "detached"  # follow()'s phase for a job left running on purpose (--detach, attach's Ctrl-C)


def follow(
    follower: Any,
    *,
    intr: Interrupts | None,
    ui: Ui,
    opts: RunOptions,
    max_runtime_hours: float,
    clock: Callable[[], float] = time.monotonic,
    start: Callable[[], None] | None = None,
    on_started: Callable[[Any], None] | None = None,
    detach: bool = False,
    passive: bool = False,
) -> tuple[JobState, collections.deque]:
    """Submit (`start`, default the follower's own `submit`) and follow the job to its end; never hangs: a job
    that does not start times out, one that runs past its limit (+ grace) is stopped, an interrupt stops it.
    `detach`: return once it has started. `passive` (`attach`, `logs`): never stop the job; an interrupt
    only ends the following (phase DETACHED)."""
    tail: collections.deque = collections.deque(maxlen=LAST_LOG_LINES)
    try:
        (start or follower.submit)()
    except Exception as exc:  # noqa: BLE001 - the service refused the job: a job failure, then destroy
        return JobState(FAILED, f"the job could not be started: {exc}"), tail
    if on_started is not None:
        on_started(follower)
    if detach:
        return JobState(DETACHED, "detached: the job runs on without the driver"), tail
    started = clock()
    running_since: float | None = None
    run_limit = max_runtime_hours * 3600 + opts.grace_seconds
    while True:
        if intr is not None and intr.interrupted:
            if passive:
                return JobState(DETACHED, "interrupted: the job runs on"), tail
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
        if not passive and state.phase == PENDING and running_since is None and waited > opts.start_timeout_seconds:
            why = follower.stalled()
            _safe_stop(follower, ui)
            return JobState(
                FAILED, f"the job did not start within {waited / 60:.0f} min: {why}. What to try: {CAPACITY_HINTS}"
            ), tail
        if state.phase == RUNNING and running_since is None:
            running_since = clock()
            ui.say(f"job running ({state.reason})", "green")
        if not passive and running_since is not None and clock() - running_since > run_limit:
            _safe_stop(follower, ui)
            return JobState(
                FAILED,
                f"the job ran past job.maxRuntimeHours ({max_runtime_hours:g} h) plus "
                f"{opts.grace_seconds / 60:.0f} min grace and was stopped",
            ), tail
        if intr is not None:
            intr.event.wait(opts.poll_seconds)
        else:
            time.sleep(opts.poll_seconds)


def _safe_stop(follower: Any, ui: Ui) -> None:
    try:
        follower.stop()
    except Exception as exc:  # noqa: BLE001 - the destroy that follows removes the compute anyway
        ui.say(f"could not stop the job: {exc}; the destroy removes its compute", "yellow")


# ---------------------------------------------------------------------------------------------- destroy


def destroy_stage(ctx: RunContext) -> None:
    """Destroy and remove the stack (once it exists), whatever happened before, unless --keep-on-failure
    keeps a failed job's stack. A stack that will not go is kept: exit 3, `trainstack down NAME` retries."""
    r = ctx.record
    if ctx.stack is None:
        return
    detached = ctx.opts.detach and ctx.job is not None and ctx.job.phase == DETACHED
    if ctx.outputs and (detached or (ctx.opts.keep and r.status in ("succeeded", "failed"))):
        why = "--detach" if detached else "--keep"
        r.kept = True
        ctx.recorder.skip("destroy", why)
        ctx.recorder.write()
        return
    if r.exit_code == ExitCode.FAILED and ctx.opts.keep_on_failure:
        r.status = KEPT
        ctx.recorder.skip("destroy", "--keep-on-failure")
        ctx.ui.say(
            f"--keep-on-failure: {ctx.name} is kept for debugging; it expires at {r.expires_at}. "
            f"Remove it with: trainstack down {ctx.name}",
            "yellow",
        )
        return
    with ctx.recorder.stage("destroy") as entry:
        unreleased = release_jobs(ctx.outputs, ctx.session, follower_for, ctx.ui) if ctx.outputs else None
        if unreleased:
            entry["status"], entry["error"] = "failed", unreleased
            r.status, r.exit_code = "cleanup-incomplete", ExitCode.CLEANUP_INCOMPLETE
            r.reason = (r.reason + "; " if r.reason else "") + unreleased
            ctx.ui.say(
                f"{ctx.name} is KEPT: {unreleased}. Its teardown schedule stops the job at {r.expires_at}; once "
                f"AWS answers again: trainstack down {ctx.name}",
                "bold red",
            )
            return
        outcome = destroy_stack(
            ctx.stack,
            ui=ctx.ui,
            attempts=ctx.opts.destroy_attempts,
            backoff=ctx.opts.destroy_backoff_seconds,
            intr=ctx.intr,
            expected=ctx.expected,
            sleep=ctx.sleep,
        )
        entry["outcome"] = outcome.status
        if outcome.status in (REMOVED, NOT_FOUND):
            if r.status == "refused":
                r.reason += f" (nothing was deployed; the empty stack {ctx.name} was removed)"
            return
        entry["status"], entry["error"] = "failed", outcome.reason
    r.status, r.exit_code = "cleanup-incomplete", ExitCode.CLEANUP_INCOMPLETE
    r.reason = (r.reason + "; " if r.reason else "") + f"destroy failed: {outcome.reason}"
    ctx.ui.say(
        f"{ctx.name} could NOT be destroyed ({outcome.reason}). It is kept and still listed; its in-cloud "
        f"teardown stops the compute at {r.expires_at}. Retry: trainstack down {ctx.name}",
        "bold red",
    )


def release_jobs(
    outputs: Mapping[str, Any], session: Callable[[], Any], follower_for: Callable[..., Any], ui: Ui
) -> str | None:
    """Before a destroy: stop the stack's jobs and wait until none holds what the destroy removes (the sagemaker
    execution role: a job loses it mid-upload, or outlives the schedule that would stop it). Returns why the
    stack must be kept (None: released, or nothing to release)."""
    try:
        follower = follower_for(outputs, session())
    except Exception:  # noqa: BLE001 - no follower, no typed outputs: nothing this driver could have started
        return None
    release = getattr(follower, "release", None)
    if release is None:
        return None
    try:
        stopped = release()
    except ReleaseError as exc:
        return f"its jobs may still run, so it was not destroyed ({exc})"
    if stopped:
        ui.say(f"stopped before the destroy: {', '.join(stopped)}", "yellow")
    return None


# ---------------------------------------------------------------------------------------------- driving


# Stages an option turns off, and the option (recorded as why the stage was skipped).
_SKIPPED_BY: dict[str, Callable[[RunOptions], str]] = {
    "doctor": lambda o: "" if o.doctor else "--no-doctor",
    "preview": lambda o: "--skip-preview" if o.skip_preview else "",
}


def execute(ctx: RunContext, stages: tuple[tuple[str, Stage], ...]) -> None:
    """Run stages in order, each recorded; stop at an interrupt. A stage's UserError propagates."""
    for name, stage in stages:
        if ctx.interrupted:
            return
        skipped_by = _SKIPPED_BY.get(name, lambda o: "")(ctx.opts)
        if skipped_by:
            ctx.recorder.skip(name, skipped_by)
            continue
        with ctx.recorder.stage(name) as entry:
            stage(ctx)
            if ctx.interrupted:
                entry["status"] = INTERRUPTED


def execute_guarded(ctx: RunContext, stages: tuple[tuple[str, Stage], ...]) -> None:
    """`execute`, keeping the first failure in the context instead of raising: the destroy must still run."""
    try:
        execute(ctx, stages)
    except UserError as exc:
        ctx.failure = exc
    except Exception as exc:  # noqa: BLE001 - whatever broke, the cleanup still runs
        if os.environ.get("TRAINSTACK_DEBUG"):
            ctx.ui.log(traceback.format_exc())
        ctx.failure = UserError(
            f"unexpected error: {exc!r} (a bug in trainstack; --debug shows the traceback)", ExitCode.INTERNAL
        )
    if ctx.interrupted and ctx.record.stages:
        last = next(reversed(ctx.record.stages.values()))
        if last.get("status") != "skipped":
            last["status"] = INTERRUPTED


def settle(ctx: RunContext) -> None:
    """The outcome before cleanup: succeeded, detached, refused, failed or interrupted."""
    r, f = ctx.record, ctx.failure
    if f is None and ctx.job is not None and ctx.job.phase == DETACHED and not ctx.interrupted:
        r.status, r.exit_code, r.detached = "detached", ExitCode.OK, True
        r.reason = "the job runs on without the driver; it writes its result to run.json when it ends"
    elif ctx.interrupted:
        r.status, r.exit_code, r.reason = "interrupted", ExitCode.INTERRUPTED, f.message if f else "interrupted"
    elif f is not None:
        r.status = {ExitCode.REFUSED: "refused", ExitCode.INTERNAL: "error"}.get(f.exit_code, "failed")
        r.exit_code, r.reason = f.exit_code, f.message
    else:
        r.status, r.exit_code = "succeeded", ExitCode.OK
    ctx.recorder.write()


def refuse(ctx: RunContext, exc: UserError) -> RunRecord:
    """Refused before anything was created: the record says why (nothing to clean up)."""
    r = ctx.record
    r.status, r.exit_code, r.reason = "refused", exc.exit_code, exc.message
    return finish(ctx)


def abandon(ctx: RunContext) -> RunRecord:
    r = ctx.record
    r.status, r.exit_code = "abandoned", ExitCode.INTERRUPTED
    r.reason = (
        f"third interrupt: the driver exited without waiting for the cleanup; the stack may still exist: "
        f"remove it with `trainstack down {ctx.name}`"
    )
    r.finished_at = iso(now())
    ctx.recorder.write()
    ctx.ui.say(f"exiting. The stack may still exist: remove it with  trainstack down {ctx.name}", "bold red")
    return r


def finish(ctx: RunContext) -> RunRecord:
    r = ctx.record
    if r.status != "detached":  # a detached job writes its own end
        r.finished_at = iso(now())
    ctx.recorder.write()
    if r.stack and r.stages:
        timings = ", ".join(f"{k} {v.get('seconds', 0):.1f} s" for k, v in r.stages.items() if "seconds" in v)
        ctx.ui.log(f"{r.stack}: {r.status}; {r.overhead_seconds:.1f} s outside the job ({timings})")
    if r.detached:
        ctx.ui.say(
            f"{r.stack}: the job runs on. Follow it: trainstack attach {r.stack}  (logs: trainstack logs {r.stack} "
            f"--follow). When it ends it writes {r.artifact_uri}run.json and the model to {r.model_uri}; "
            f"`trainstack reap --finished` then removes the stack (its expiry {r.expires_at} is the backstop).",
            "bold green",
        )
    elif r.exit_code == ExitCode.OK:
        ctx.ui.say(f"model: {r.model_uri}", "bold green")
    if r.kept and not r.detached:
        ctx.ui.say(
            f"{r.stack} is kept (--keep) until {r.expires_at}: run further jobs with `trainstack exec {r.stack} "
            f"--workdir DIR`, remove it with `trainstack down {r.stack}`",
            "bold",
        )
    return r


def on_signal(ctx: RunContext) -> Callable[[int], None]:
    def say(count: int) -> None:
        msg = {
            1: "interrupt: stopping (the current Pulumi step finishes), then destroying; Ctrl-C again to abandon "
            "the update",
            2: "second interrupt: abandoning the update; then cancel, clear pending creates, "
            f"destroy. Ctrl-C once more to exit and leave it to `trainstack down {ctx.name}`",
        }.get(count)
        if msg:
            ctx.ui.say(msg, "bold yellow")

    return say
