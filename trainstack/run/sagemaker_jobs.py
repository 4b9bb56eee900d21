"""Start, follow and stop SageMaker training jobs of a deployed sagemaker cluster stack with boto3.

The request comes from the same builder the Pulumi component uses
(`trainstack.model.sagemaker_request`), filled with the stack's outputs — so a developer can start
run after run on one stack without redeploying, and `trainstack run` can reuse this module.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trainstack.backends import ClusterOutputs, OutputsError
from trainstack.backends.sagemaker import SageMakerOutputs
from trainstack.model.config import ClusterStack, StackConfig
from trainstack.model.run_locations import run_locations
from trainstack.model.sagemaker_request import create_training_job_request, job_name, spec_from_config
from trainstack.model.tags import standard_tags

FINISHED = ("Completed", "Failed", "Stopped")


class JobError(Exception):
    """A job request that cannot be made; the message says what to do."""


@dataclass(frozen=True)
class JobStatus:
    name: str
    status: str
    secondary_status: str
    failure_reason: str | None
    model_artifacts: str | None
    training_seconds: int | None
    billable_seconds: int | None
    spot: bool

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def spot_savings_percent(self) -> float | None:
        if not self.spot or not self.training_seconds or self.billable_seconds is None:
            return None
        return round(100 * (1 - self.billable_seconds / self.training_seconds), 1)


def request_for_stack(cfg: StackConfig, outputs: Mapping[str, Any], *, now: dt.datetime | None = None) -> dict:
    """A CreateTrainingJob request for a new run on a deployed sagemaker cluster stack."""
    if not isinstance(cfg, ClusterStack) or cfg.cluster.backend != "sagemaker":
        shown = cfg.backend if isinstance(cfg, ClusterStack) else cfg.kind
        raise JobError(f"stack {cfg.stack} is not a sagemaker cluster stack (trainstack:backend = {shown})")
    c = cfg.cluster
    try:
        sm, stack = SageMakerOutputs.from_outputs(outputs), ClusterOutputs.from_outputs(outputs)
    except OutputsError as exc:
        raise JobError(f"stack {cfg.stack}: {exc}") from None
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    if now >= c.expires_at:
        raise JobError(
            f"stack {cfg.stack} expired at {c.expires_at_iso}; its teardown may already have stopped "
            "jobs. Redeploy with a later trainstack:expiresAt or ttlHours"
        )
    locations = run_locations(sm.buckets, c.job.dataset, c.owner, cfg.stack)
    if c.job.workdir and not stack.code_uri:
        raise JobError(f"stack {cfg.stack} sets job.workdir but has no codeUri output: run `pulumi up` on it first")
    sg = [sm.security_group_id] if c.sagemaker.vpc else []
    spec = spec_from_config(
        c,
        locations=locations,
        kms_key_arn=sm.kms_key_arn,
        subnet_ids=sm.subnet_ids,
        security_group_ids=sg,
        tags=standard_tags(cfg),
        code_uri=stack.code_uri,
    )
    # Jobs started here are not the stack's own job, so its teardown schedule cannot stop them:
    # SageMaker's own limits must end them by the stack's expiry.
    left = int((c.expires_at - now).total_seconds())
    runtime = min(spec.max_runtime_seconds, left)
    wait = max(runtime, min(spec.max_wait_seconds or left, left)) if spec.spot else None
    spec = replace(spec, max_runtime_seconds=runtime, max_wait_seconds=wait)
    name = job_name(c.owner, cfg.stack, now.strftime("%Y%m%d-%H%M%S"))
    return create_training_job_request(spec, job_name=name, role_arn=sm.role_arn, checkpoint_subdir=name)


def start(client, request: Mapping[str, Any]) -> str:
    """Create the job; returns its ARN."""
    return client.create_training_job(**request)["TrainingJobArn"]


def describe(client, name: str) -> JobStatus:
    d = client.describe_training_job(TrainingJobName=name)
    return JobStatus(
        name=d["TrainingJobName"],
        status=d["TrainingJobStatus"],
        secondary_status=d.get("SecondaryStatus", ""),
        failure_reason=d.get("FailureReason"),
        model_artifacts=(d.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        training_seconds=d.get("TrainingTimeInSeconds"),
        billable_seconds=d.get("BillableTimeInSeconds"),
        spot=bool(d.get("EnableManagedSpotTraining")),
    )


def stop(client, name: str) -> JobStatus:
    """Stop a running job (SageMaker lets it save a last checkpoint); a finished job is left as it is."""
    status = describe(client, name)
    if status.finished or status.status == "Stopping":
        return status
    client.stop_training_job(TrainingJobName=name)
    return describe(client, name)


def load_stack(stack: str, root: Path, outputs_file: Path | None = None) -> tuple[StackConfig, dict[str, Any]]:
    """A deployed stack's config and outputs: from its stack file plus a `pulumi stack output --json`
    file, or from the Pulumi backend through the Automation API."""
    from trainstack.model.config import ConfigError, parse_config
    from trainstack.plan.planner import load_raw_config

    if outputs_file is not None:
        project, raw = load_raw_config(stack, root)
        outputs = json.loads(Path(outputs_file).read_text())
    else:
        from pulumi import automation as auto

        deployed = auto.select_stack(stack_name=stack, work_dir=str(root))
        project = deployed.workspace.project_settings().name
        raw = {k: v.value for k, v in deployed.get_all_config().items()}
        outputs = {k: v.value for k, v in deployed.outputs().items()}
    now = None
    # Read alone (request_for_stack reads the rest): a stack that is not deployed yet has no outputs.
    expires_at = outputs.get(ClusterOutputs.output_name("expires_at"))
    if isinstance(expires_at, str) and expires_at:
        # The deployed expiry is the truth (ttlHours counts from `pulumi up`). Validate the config as of
        # the deployment; whether the stack has expired since is request_for_stack's question.
        raw = {k: v for k, v in raw.items() if k != "trainstack:ttlHours"}
        raw["trainstack:expiresAt"] = expires_at
        now = dt.datetime.fromisoformat(expires_at.replace("Z", "+00:00")) - dt.timedelta(hours=1)
    try:
        return parse_config(raw, project=project, stack=stack, now=now, root=str(root)), outputs
    except ConfigError as exc:
        raise JobError(str(exc)) from None
