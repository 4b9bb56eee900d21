"""sagemaker: create the job from the stack's exported request (or a further one), follow
`describe_training_job` and its CloudWatch logs, stop it, and release every job of the stack before a destroy.

The job is never a Pulumi resource (components/sagemaker_training_job.py says why): this follower owns it
from CreateTrainingJob on. A `Stopping` job is still running (SageMaker lets it save a last checkpoint):
followed until Stopped, never treated as gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from trainstack.backends import ClusterOutputs
from trainstack.backends.sagemaker import SageMakerOutputs
from trainstack.errors import ExitCode
from trainstack.model.run_locations import JOB_ID_ENV
from trainstack.model.sagemaker_request import job_name, request_problems
from trainstack.run import sagemaker_jobs
from trainstack.run.follow import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    ExecRequest,
    JobRef,
    JobState,
    LogTail,
    ReleaseError,
)
from trainstack.run.run_config import RefusedError

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
NOT_CREATED = "not created yet"
# SecondaryStatus values before the instances run the container.
_STARTING = {"Starting", "LaunchingMLInstances", "PreparingTrainingStack", "Pending", "Interrupted"}
# A stopped job uploads what it has and releases its instances within minutes (StopTrainingJob: SIGTERM, 120 s,
# SIGKILL, then the upload); the destroy waits this long for it before keeping the stack instead.
RELEASE_TIMEOUT_SECONDS = 20 * 60
RELEASE_POLL_SECONDS = 10.0


LONGEST_SUFFIX = 19  # a job id (`yyyymmddHHMMSS-xxxx`); the stack's own job has an 8-character hash


def stack_job_prefix(owner: str, stack: str) -> str:
    """What every job name of the stack starts with (`job_name(owner, stack, …)` with the longest suffix, which
    leaves the least room for the stack's part), for ListTrainingJobs."""
    return job_name(owner, stack, "0" * LONGEST_SUFFIX)[: -LONGEST_SUFFIX - 1]


class SageMakerFollower:
    def __init__(
        self,
        outputs: Mapping[str, Any],
        session: Any,
        job: JobRef | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.stack = ClusterOutputs.from_outputs(outputs)
        self.o = SageMakerOutputs.from_outputs(outputs)
        self.job = job or JobRef()
        # The stack's own job has its deterministic name before it exists; a further job once started.
        self.name: str | None = self.job.handle or (self.o.training_job_name if self.job.id is None else None)
        self.sm = session.client("sagemaker", region_name=self.stack.region)
        self.logs = LogTail(session.client("logs", region_name=self.stack.region), LOG_GROUP)
        self.status: sagemaker_jobs.JobStatus | None = None
        self.clock, self.sleep = clock, sleep
        self._stack = _stack_of(self.stack)

    @staticmethod
    def exec_payload(r: ExecRequest) -> dict[str, Any]:
        """A further job's CreateTrainingJob request (`<owner>-<stack>-<job id>`), built from the stack's
        config and outputs by the same code as `trainstack sagemaker start`."""
        try:
            request = sagemaker_jobs.request_for_stack(
                r.cfg, r.outputs, now=r.now, job_id=r.job_id, code_uri=r.code_uri
            )
        except sagemaker_jobs.JobError as exc:
            raise RefusedError(exc.message) from None
        request["Environment"] = {**request.get("Environment", {}), JOB_ID_ENV: r.job_id}
        return request

    @staticmethod
    def job_handle(outputs: Mapping[str, Any], owner: str, stack: str, job_id: str | None) -> str | None:
        """The job's deterministic name: `<owner>-<stack>-<job id>`, or the stack's own job's."""
        return job_name(owner, stack, job_id) if job_id else SageMakerOutputs.from_outputs(outputs).training_job_name

    def submit(self) -> None:
        """Create the stack's own job: the exported request, by its deterministic name."""
        self.start(dict(self.o.training_job_request))

    def start(self, request: Mapping[str, Any]) -> None:
        problems = request_problems(request)
        if problems:
            raise RuntimeError("; ".join(problems))
        self.name = str(request["TrainingJobName"])
        sagemaker_jobs.start(self.sm, request)

    def handle(self) -> str | None:
        return self.name

    def poll(self) -> JobState:
        if self.name is None:
            return JobState(PENDING, NOT_CREATED)
        try:
            self.status = st = sagemaker_jobs.describe(self.sm, self.name)
        except sagemaker_jobs.JobError as exc:
            if exc.exit_code != ExitCode.NOT_FOUND:
                raise
            return JobState(PENDING, NOT_CREATED)  # the stack's own job before `trainstack run` created it
        if st.status == "Completed":
            return JobState(SUCCEEDED, st.secondary_status)
        if st.status in ("Failed", "Stopped"):
            return JobState(
                FAILED, f"{st.status} ({st.secondary_status})" + (f": {st.failure_reason}" if st.failure_reason else "")
            )
        if st.status == "Stopping":  # not gone: it still holds instances and may save a last checkpoint
            return JobState(RUNNING, "Stopping")
        return JobState(PENDING if st.secondary_status in _STARTING else RUNNING, st.secondary_status)

    def tail(self) -> list[str]:
        if self.name is None:
            return []
        lines: list[str] = []
        for stream in self.logs.streams(f"{self.name}/"):
            lines += self.logs.read(stream)
        return lines

    def stop(self) -> None:
        """Stop the job (idempotent: a job that is finished, stopping or was never created needs nothing)."""
        if self.name is None:
            return
        try:
            sagemaker_jobs.stop(self.sm, self.name)
        except sagemaker_jobs.JobError as exc:
            if exc.exit_code != ExitCode.NOT_FOUND:
                raise

    def release(
        self, timeout: float = RELEASE_TIMEOUT_SECONDS, poll_seconds: float = RELEASE_POLL_SECONDS
    ) -> list[str]:
        """Before `destroy` removes the execution role: stop every running job of the stack (its own and those
        `trainstack exec` or `sagemaker start` added, found by name) and wait until none is InProgress or
        Stopping, so no job loses its role mid-upload or outlives the stack's schedule. Returns the jobs it
        stopped; raises ReleaseError when it cannot show that none runs (an AWS error, the timeout)."""
        prefix = stack_job_prefix(self.stack.owner, self._stack)
        deadline = self.clock() + timeout
        stopped: list[str] = []
        try:
            while True:
                live = self._live_jobs(prefix)
                for name, status in live.items():
                    if status == "InProgress":
                        self.sm.stop_training_job(TrainingJobName=name)
                        stopped.append(name)
                if not live:
                    return stopped
                if self.clock() >= deadline:
                    raise ReleaseError(
                        f"training job(s) {', '.join(sorted(live))} still {'/'.join(sorted(set(live.values())))} "
                        f"after {timeout / 60:.0f} min"
                    )
                self.sleep(poll_seconds)
        except ReleaseError:
            raise
        except Exception as exc:  # noqa: BLE001 - an AWS error: the jobs' state is unknown, so nothing is destroyed
            raise ReleaseError(f"could not list or stop the stack's training jobs: {exc}") from None

    def _live_jobs(self, prefix: str) -> dict[str, str]:
        """Running jobs whose name starts with the stack's prefix and whose `trainstack:stack` tag (every request
        carries the stack's tags) names this stack: a long name's prefix could be another stack's too."""
        from trainstack.model import tags

        live: dict[str, str] = {}
        for status in ("InProgress", "Stopping"):
            for page in self.sm.get_paginator("list_training_jobs").paginate(NameContains=prefix, StatusEquals=status):
                for j in page.get("TrainingJobSummaries", []):
                    if not j["TrainingJobName"].startswith(prefix):
                        continue
                    found = {t["Key"]: t["Value"] for t in self.sm.list_tags(ResourceArn=j["TrainingJobArn"])["Tags"]}
                    if found.get(tags.STACK, self._stack) == self._stack:
                        live[j["TrainingJobName"]] = status
        return live

    def stalled(self) -> str:
        st = self.status
        return (
            f"the job is still {st.secondary_status if st else 'starting'}: SageMaker found no capacity "
            f"for it (managed spot waits up to sagemaker.maxWaitHours)"
        )

    def model_uri(self) -> str | None:
        if self.status and self.status.model_artifacts:
            return self.status.model_artifacts
        if self.job.id is None:
            return self.o.model_artifact_uri
        # SageMaker writes <S3OutputPath>/<job name>/output/model.tar.gz; a job's S3OutputPath is its own prefix.
        return f"{self.job.artifact_uri(self.stack.artifact_uri)}{self.name}/output/model.tar.gz" if self.name else None


def _stack_of(stack: ClusterOutputs) -> str:
    """The stack's name from its artifact prefix (`artifacts/<owner>/<stack>/`), as the job names carry it."""
    parts = stack.artifact_uri.rstrip("/").split("/")
    return parts[-1]
