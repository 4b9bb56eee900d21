"""Job followers: start or detect a cluster stack's training job and follow it to the end (boto3).

One module per backend, named by the backend's declaration (`trainstack.backends`, `follower`) and
found by the stack's `backend` output. Each module's follower takes the stack outputs, a boto3 session
and, optionally, the `JobRef` of one job of the stack (default: the stack's own job, the one `up` or
`trainstack run` starts; `trainstack exec` starts further ones, `attach`/`logs` follow any of them),
reads the outputs through the typed contract (`ClusterOutputs` and the backend's own outputs class,
`trainstack/backends/outputs.py`: a missing output is an `OutputsError` naming it) and implements:

    submit()            start the stack's own job (ecs RunTask, sagemaker CreateTrainingJob) or nothing
                        (ec2, eks: `up` started it)
    poll() -> JobState  pending | running | succeeded | failed, with the reason
    tail() -> [str]     new log lines since the last call
    stop()              stop a running job (idempotent)
    stalled() -> str    why a job that has not started is not starting (for the timeout message)
    model_uri() -> str  where the model lands
    handle() -> str     what identifies the job to its backend once started (ECS task ARN, SageMaker job
                        name, Kubernetes Job name, the ec2 job's artifact prefix), recorded in run.json

and, where the backend has them:

    exec_payload(req)   (static) what `start` takes for a further job, built from an `ExecRequest`
    job_handle(...)     (static) a job's handle derived from its id where the backend's naming fixes it
    start(payload)      start a further job (`trainstack exec`) from the payload `exec_payload` built
    release()           stop every job of the stack and wait until none holds what `destroy` removes (the
                        sagemaker execution role): called before every destroy; raises when it cannot tell
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from trainstack import backends

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"


def followed() -> tuple[str, ...]:
    """The backends `trainstack run` can follow (those that declare a follower)."""
    return tuple(b.name for b in backends.all_backends() if b.follower)


# What to try when GPU capacity does not come: shown with every never-started timeout.
CAPACITY_HINTS = (
    "try another availability zone (the platform's trainstack:availabilityZones), another instance type "
    "(trainstack:gpu.instanceTypes, e.g. --set 'gpu.instanceTypes=[\"g5.2xlarge\"]'), or on-demand capacity "
    "(--set gpu.spotPercent=0); check the account's EC2 vCPU quota for the family"
)


@dataclass(frozen=True)
class JobRef:
    """One job of a stack. `id` None: the stack's own job (its prefixes are the stack's); else a job that
    `trainstack exec` started, under `artifacts/<owner>/<stack>/jobs/<id>/`. `handle`: what the backend knows
    it by, once started (None: not started yet, or the stack's own job where the backend fixes it)."""

    id: str | None = None
    handle: str | None = None

    def artifact_uri(self, stack_artifact_uri: str) -> str:
        return stack_artifact_uri + (f"jobs/{self.id}/" if self.id else "")

    def checkpoint_uri(self, stack_checkpoint_uri: str) -> str:
        return stack_checkpoint_uri + (f"jobs/{self.id}/" if self.id else "")


@dataclass(frozen=True)
class JobState:
    phase: str
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in (SUCCEEDED, FAILED)


class JobFollower(Protocol):
    def submit(self) -> None: ...
    def poll(self) -> JobState: ...
    def tail(self) -> list[str]: ...
    def stop(self) -> None: ...
    def stalled(self) -> str: ...
    def model_uri(self) -> str | None: ...


def follower_class(backend: str) -> Any:
    """The follower class a backend declares (`trainstack.backends`, `follower`)."""
    declared = backends.find(backend)
    if declared is None or not declared.follower:
        raise KeyError(f"no job follower for backend {backend!r} (known: {', '.join(followed())})")
    module, _, cls = declared.follower.partition(":")
    return getattr(importlib.import_module(module), cls)


def follower_for(outputs: Mapping[str, Any], session: Any, job: JobRef | None = None) -> JobFollower:
    cls = follower_class(backends.ClusterOutputs.from_outputs(outputs).backend)
    kwargs = {"job": job} if job is not None else {}  # a plugin's follower may follow the stack's own job only
    return cls(outputs, session, **kwargs)


def exec_backends() -> tuple[str, ...]:
    """The backends `trainstack exec` can start further jobs on: their followers build and start them."""
    return tuple(name for name in followed() if hasattr(follower_class(name), "exec_payload"))


@dataclass(frozen=True)
class ExecRequest:
    """What a follower's `exec_payload` builds a further job from (`trainstack exec`, trainstack.run.jobs)."""

    cfg: Any  # the stack's ClusterStack, with the exec's overrides applied
    stack: str
    outputs: Mapping[str, Any]
    job_id: str
    locations: Any  # the job's RunLocations
    code_uri: str | None
    runtime_seconds: int  # max runtime cut to the stack's expiry
    now: Any  # when the exec started (datetime, UTC)
    environment: Mapping[str, str]  # job.environment + the job's locations, record URI and id


def handle_of(follower: Any) -> str | None:
    """The started job's handle (see the module docstring), for run.json; None before it started."""
    handle = getattr(follower, "handle", None)
    return handle() if callable(handle) else None


class ReleaseError(RuntimeError):
    """The stack's jobs could not be shown to be stopped: destroying it now could orphan one."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def failed_scaling_activities(autoscaling: Any, group: str, limit: int = 5) -> list[str]:
    """Status messages of the group's recent failed or cancelled scaling activities (capacity errors)."""
    try:
        acts = autoscaling.describe_scaling_activities(AutoScalingGroupName=group, MaxRecords=limit)["Activities"]
    except Exception as exc:  # noqa: BLE001 - best effort: this only enriches a message
        return [f"(could not read scaling activities of {group}: {exc})"]
    return [
        f"{a.get('StatusCode')}: {a.get('StatusMessage') or a.get('Description', '')}".strip()
        for a in acts
        if a.get("StatusCode") in ("Failed", "Cancelled")
    ]


class LogTail:
    """Incremental `get_log_events` over a set of streams; a repeated forward token means caught up."""

    def __init__(self, logs: Any, group: str):
        self.logs = logs
        self.group = group
        self.tokens: dict[str, str | None] = {}

    def read(self, stream: str, prefix: str = "") -> list[str]:
        kwargs: dict[str, Any] = {"logGroupName": self.group, "logStreamName": stream, "startFromHead": True}
        lines: list[str] = []
        while True:
            token = self.tokens.get(stream)
            if token:
                kwargs["nextToken"] = token
            try:
                resp = self.logs.get_log_events(**kwargs)
            except self.logs.exceptions.ResourceNotFoundException:
                return lines  # the stream does not exist yet
            lines.extend(prefix + e["message"].rstrip("\n") for e in resp.get("events", []))
            nxt = resp.get("nextForwardToken")
            if not nxt or nxt == token:
                return lines
            self.tokens[stream] = nxt
            if not resp.get("events"):
                return lines

    def streams(self, prefix: str) -> list[str]:
        try:
            resp = self.logs.describe_log_streams(logGroupName=self.group, logStreamNamePrefix=prefix)
        except self.logs.exceptions.ResourceNotFoundException:
            return []
        return sorted(s["logStreamName"] for s in resp.get("logStreams", []))
