"""sagemaker: `up` created the training job; follow `describe_training_job` and its CloudWatch logs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainstack.backends import ClusterOutputs
from trainstack.backends.sagemaker import SageMakerOutputs
from trainstack.run import sagemaker_jobs
from trainstack.run.follow import FAILED, PENDING, RUNNING, SUCCEEDED, JobState, LogTail

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# SecondaryStatus values before the instances run the container.
_STARTING = {"Starting", "LaunchingMLInstances", "PreparingTrainingStack", "Pending", "Interrupted"}


class SageMakerFollower:
    def __init__(self, outputs: Mapping[str, Any], session: Any):
        self.stack = ClusterOutputs.from_outputs(outputs)
        self.o = SageMakerOutputs.from_outputs(outputs)
        self.name = self.o.training_job_name
        self.sm = session.client("sagemaker", region_name=self.stack.region)
        self.logs = LogTail(session.client("logs", region_name=self.stack.region), LOG_GROUP)
        self.status: sagemaker_jobs.JobStatus | None = None

    def submit(self) -> None:
        """Nothing to start: the stack's TrainingJob resource is the job."""

    def poll(self) -> JobState:
        self.status = st = sagemaker_jobs.describe(self.sm, self.name)
        if st.status == "Completed":
            return JobState(SUCCEEDED, st.secondary_status)
        if st.status in ("Failed", "Stopped"):
            return JobState(
                FAILED, f"{st.status} ({st.secondary_status})" + (f": {st.failure_reason}" if st.failure_reason else "")
            )
        return JobState(PENDING if st.secondary_status in _STARTING else RUNNING, st.secondary_status)

    def tail(self) -> list[str]:
        lines: list[str] = []
        for stream in self.logs.streams(f"{self.name}/"):
            lines += self.logs.read(stream)
        return lines

    def stop(self) -> None:
        sagemaker_jobs.stop(self.sm, self.name)

    def stalled(self) -> str:
        st = self.status
        return (
            f"the job is still {st.secondary_status if st else 'starting'}: SageMaker found no capacity "
            f"for it (managed spot waits up to sagemaker.maxWaitHours)"
        )

    def model_uri(self) -> str | None:
        if self.status and self.status.model_artifacts:
            return self.status.model_artifacts
        return self.o.model_artifact_uri
