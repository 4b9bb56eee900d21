"""`trainstack run` and `trainstack down`: one command from code to a model in S3, cluster destroyed after.

`run` drives the stages of trainstack.run.stages over one context: plan (merge, validate, offline plan,
cost, the deployed platform) -> doctor (the account's readiness) -> confirm -> create a fresh stack ->
preview -> up (live progress) ->
follow the job (boto3) -> destroy + remove, also when the job or `up` failed and on Ctrl-C. `run.json`
records every stage. Decisions use the Automation API's exception classes, events and outputs; the one
place CLI text is read is a lock's holder (trainstack.run.locks), which the CLI states nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from trainstack import backends
from trainstack.errors import ExitCode, UserError
from trainstack.run import stages
from trainstack.run.destroy import BUSY, KEPT, NOT_FOUND, REMOVED, destroy_stack
from trainstack.run.driver import (
    REPO_ROOT,
    GiveUp,
    Interrupts,
    StackDriver,
    TrackedPulumiCommand,
    output_values,
    pulumi_command,
)
from trainstack.run.follow import followed, follower_for
from trainstack.run.record import Recorder, RunRecord, github_outputs
from trainstack.run.stages import LAST_LOG_LINES, RunContext, RunOptions, follow
from trainstack.run.ui import Ui

__all__ = [
    "LAST_LOG_LINES",
    "DownResult",
    "Recorder",
    "RunOptions",
    "RunRecord",
    "Ui",
    "destroy_stack",
    "down",
    "follow",
    "followed",
    "github_outputs",
    "run",
]

# The stages after planning, in order; `destroy` follows them whenever a stack exists.
STAGES: tuple[tuple[str, stages.Stage], ...] = (
    ("create", stages.create_stage),
    ("preview", stages.preview_stage),
    ("up", stages.up_stage),
    ("follow", stages.follow_stage),
)


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
    ctx = RunContext.start(opts, ui, session_factory=session_factory, command=command, clock=clock, sleep=sleep)
    try:
        stages.execute(ctx, (("plan", stages.plan_stage), ("doctor", stages.doctor_stage)))
        stages.confirm(ctx)
    except UserError as exc:  # nothing exists yet
        return stages.refuse(ctx, exc)
    with Interrupts(ctx.command, on_signal=stages.on_signal(ctx)) as ctx.intr:
        try:
            stages.execute_guarded(ctx, STAGES)
            stages.settle(ctx)
            stages.destroy_stage(ctx)
        except GiveUp:  # a third signal between the guarded steps
            return stages.abandon(ctx)
    return stages.finish(ctx)


# ---------------------------------------------------------------------------------------------
# down


@dataclass
class DownResult:
    stack: str
    status: str  # removed | not-found | kept | busy | refused | interrupted
    exit_code: int
    reason: str = ""
    job_stopped: bool = False

    @property
    def removed(self) -> bool:
        return self.status == REMOVED

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "status": self.status,
            "removed": self.removed,
            "exit_code": int(self.exit_code),
            "reason": self.reason,
            "job_stopped": self.job_stopped,
        }


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
    """Cleanup of one cluster stack: stop its job, destroy with retries, remove. A lock is cancelled only
    when its holder has provably exited; a stack held by a live update is left alone (exit 5). A stack
    that does not exist is said so (exit 4); one that cannot be destroyed is kept (exit 3)."""
    try:
        command = command or pulumi_command(pulumi_root, project_root=root)
    except UserError as exc:
        return DownResult(stack_name, "refused", exc.exit_code, exc.message)
    driver = StackDriver(command, root=root, secrets_provider=secrets_provider)
    try:
        stack = driver.select(stack_name)
    except auto.StackNotFoundError:
        return _not_found(stack_name)
    job_stopped = False
    with Interrupts(command) as intr:
        try:
            try:
                outputs = output_values(stack.workspace, stack_name)
            except auto.CommandError:
                outputs = {}
            backend_output = backends.ClusterOutputs.output_name("backend")
            if outputs and backend_output not in outputs:
                why = (
                    f"{stack_name} is not a trainstack cluster stack (its outputs have no `backend`: a platform?) "
                    "and `trainstack down` never destroys one. Fix: `pulumi destroy` if you really mean it"
                )
                return DownResult(stack_name, "refused", ExitCode.REFUSED, why)
            if outputs.get(backend_output):
                import boto3

                session = session_factory or boto3.Session
                try:
                    follower_for(outputs, session()).stop()
                    job_stopped = True
                except Exception as exc:  # noqa: BLE001 - e.g. no job running: the destroy still runs
                    ui.say(f"job not stopped ({exc}); destroying anyway", "yellow")
                # Every job of the stack stopped, and settled where the backend needs it (sagemaker: before its
                # role goes); when that cannot be shown, nothing is destroyed.
                unreleased = stages.release_jobs(outputs, session, follower_for, ui)
                if unreleased:
                    why = (
                        f"{stack_name}: {unreleased}. It is kept, and its teardown schedule stops its job at expiry. "
                        f"Fix: retry `trainstack down {stack_name}` once AWS answers (fresh credentials)"
                    )
                    return DownResult(stack_name, KEPT, ExitCode.CLEANUP_INCOMPLETE, why, job_stopped)
            outcome = destroy_stack(stack, ui=ui, attempts=attempts, backoff=backoff, intr=intr, sleep=sleep)
        except GiveUp:
            return DownResult(stack_name, "interrupted", ExitCode.INTERRUPTED, "interrupted", job_stopped)
    if intr.interrupted and outcome.status != REMOVED:
        return DownResult(stack_name, "interrupted", ExitCode.INTERRUPTED, "interrupted", job_stopped)
    if outcome.status == REMOVED:
        ui.say(f"{stack_name}: destroyed and removed", "green")
        return DownResult(stack_name, REMOVED, ExitCode.OK, "destroyed and removed", job_stopped)
    if outcome.status == NOT_FOUND:
        return _not_found(stack_name)
    if outcome.status == BUSY:
        return DownResult(stack_name, BUSY, ExitCode.BUSY, outcome.reason, job_stopped)
    why = (
        f"{stack_name} could NOT be destroyed ({outcome.reason}); it is kept and listed, and its in-cloud teardown "
        f"stops the compute at expiry. Fix: retry `trainstack down {stack_name}`"
    )
    return DownResult(stack_name, KEPT, ExitCode.CLEANUP_INCOMPLETE, why, job_stopped)


def _not_found(stack_name: str) -> DownResult:
    return DownResult(
        stack_name,
        NOT_FOUND,
        ExitCode.NOT_FOUND,
        f"{stack_name}: no such stack in the state backend: nothing to remove (already removed, or a typo). "
        "Fix: check the name with `trainstack ls`",
    )
