"""moto's SageMaker with the job lifecycle the tests need. moto completes every job the moment it is
created, accepts a name twice and has no StopTrainingJob; the API reference says otherwise:

- CreateTrainingJob refuses a name already used in the account and region (ResourceInUse); here the job then
  starts `InProgress` / `Starting` (or whatever `initial` says);
- StopTrainingJob: an InProgress job becomes `Stopping` (SageMaker sends SIGTERM, waits up to 120 s, uploads),
  then `Stopped`; here after `stop_after` further reads of it (Describe/List), so a caller that does not wait
  sees it still Stopping; stopping a job that is not InProgress is a ValidationException;
- `move(name, status, secondary, reason)` scripts a job; `calls` records each action and job in order, so a test
  can show a job was stopped before the stack's role was deleted.
"""

from __future__ import annotations

import json
from typing import Any

from moto.sagemaker.exceptions import ResourceInUseException, SagemakerClientError, ValidationError
from moto.sagemaker.models import sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

ACCOUNT = "123456789012"


class _Refused(SagemakerClientError):
    """Every call refused with one error code (e.g. ExpiredTokenException: the caller's credentials expired)."""

    def __init__(self, code: str):
        self.code = code
        super().__init__("The security token included in the request is expired")


class StandInSageMaker:
    def __init__(
        self,
        monkeypatch: Any,
        *,
        region: str = "us-east-1",
        initial: tuple[str, str] = ("InProgress", "Starting"),
        stop_after: int = 2,
    ):
        self.region, self.initial, self.stop_after = region, initial, stop_after
        self.calls: list[tuple[str, str]] = []
        self.requests: dict[str, dict[str, Any]] = {}  # each CreateTrainingJob request as sent, by job name
        self.fail_with: str | None = None  # an error code every call answers with (e.g. ExpiredTokenException)
        self._stopping: dict[str, int] = {}
        outer = self
        create, describe, listing = (
            SageMakerResponse.create_training_job,
            SageMakerResponse.describe_training_job,
            SageMakerResponse.list_training_jobs,
        )

        def guarded(name: str, action: str) -> None:
            outer.calls.append((action, name))
            if outer.fail_with:
                raise _Refused(outer.fail_with)

        def create_training_job(self: SageMakerResponse) -> Any:
            name = self._get_param("TrainingJobName")
            guarded(name, "CreateTrainingJob")
            if name in self.sagemaker_backend.training_jobs:
                raise ResourceInUseException(message=f"Training job names must be unique: {name} exists")
            result = create(self)
            outer.requests[name] = json.loads(self.body)  # moto keeps no Environment: the container needs it
            job = self.sagemaker_backend.training_jobs[name]
            job.training_job_status, job.secondary_status = outer.initial
            return result

        def stop_training_job(self: SageMakerResponse) -> Any:
            name = self._get_param("TrainingJobName")
            guarded(name, "StopTrainingJob")
            job = self.sagemaker_backend.training_jobs[name]
            if job.training_job_status != "InProgress":
                raise ValidationError(message=f"The job {name} is not in progress")
            job.training_job_status, job.secondary_status = "Stopping", "Stopping"
            outer._stopping[name] = outer.stop_after
            return "{}"

        def describe_training_job(self: SageMakerResponse) -> Any:
            name = self._get_param("TrainingJobName")
            guarded(name, "DescribeTrainingJob")
            outer._tick(name)
            return describe(self)

        def list_training_jobs(self: SageMakerResponse) -> Any:
            guarded(self._get_param("NameContains") or "", "ListTrainingJobs")
            for name in list(outer._stopping):
                outer._tick(name)
            return listing(self)

        for name, fn in (
            ("create_training_job", create_training_job),
            ("stop_training_job", stop_training_job),
            ("describe_training_job", describe_training_job),
            ("list_training_jobs", list_training_jobs),
        ):
            monkeypatch.setattr(SageMakerResponse, name, fn, raising=False)

    @property
    def jobs(self) -> dict[str, Any]:
        return sagemaker_backends[ACCOUNT][self.region].training_jobs

    def _tick(self, name: str) -> None:
        left = self._stopping.get(name)
        if left is None:
            return
        if left <= 0:
            job = self.jobs[name]
            job.training_job_status, job.secondary_status = "Stopped", "Stopped"
            del self._stopping[name]
        else:
            self._stopping[name] = left - 1

    def move(self, name: str, status: str, secondary: str, reason: str | None = None) -> None:
        job = self.jobs[name]
        job.training_job_status, job.secondary_status = status, secondary
        if reason is not None:
            job.failure_reason = reason

    def status(self, name: str) -> str:
        return self.jobs[name].training_job_status

    def actions(self, action: str) -> list[str]:
        return [name for a, name in self.calls if a == action]
