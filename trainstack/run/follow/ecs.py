"""ecs: one `run_task` on the cluster's GPU capacity provider, followed with `describe_tasks`.

Own poll loop (the driver's): botocore's `tasks_stopped` waiter gives up after 10 minutes (6 s x 100).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainstack.backends import ClusterOutputs
from trainstack.backends.ecs import EcsOutputs
from trainstack.run.follow import FAILED, PENDING, RUNNING, SUCCEEDED, JobState, LogTail, failed_scaling_activities

_PENDING_STATES = {"PROVISIONING", "PENDING", "ACTIVATING"}


class EcsFollower:
    def __init__(self, outputs: Mapping[str, Any], session: Any):
        self.stack = ClusterOutputs.from_outputs(outputs)
        self.o = EcsOutputs.from_outputs(outputs)
        region = self.stack.region
        self.ecs = session.client("ecs", region_name=region)
        self.autoscaling = session.client("autoscaling", region_name=region)
        self.logs = LogTail(session.client("logs", region_name=region), self.o.log_group_name)
        self.task_arn: str | None = None
        self.last_status = ""

    def submit(self) -> None:
        # RunTask with capacityProviderStrategy (and no launchType): the task waits in PROVISIONING
        # while managed scaling starts an instance from zero (botocore ecs RunTask input shape).
        resp = self.ecs.run_task(
            cluster=self.o.cluster_name,
            taskDefinition=self.o.task_definition_arn,
            count=1,
            capacityProviderStrategy=[{"capacityProvider": self.o.capacity_provider_name, "weight": 1, "base": 0}],
            startedBy="trainstack-run",
            propagateTags="TASK_DEFINITION",
        )
        if resp.get("failures"):
            f = resp["failures"][0]
            raise RuntimeError(f"ECS refused the task: {f.get('reason')} {f.get('detail') or ''}".strip())
        self.task_arn = resp["tasks"][0]["taskArn"]

    def poll(self) -> JobState:
        assert self.task_arn, "submit() first"
        resp = self.ecs.describe_tasks(cluster=self.o.cluster_name, tasks=[self.task_arn])
        if not resp.get("tasks"):
            return JobState(FAILED, f"task {self.task_arn} disappeared: {resp.get('failures')}")
        task = resp["tasks"][0]
        self.last_status = task.get("lastStatus", "")
        if self.last_status in _PENDING_STATES:
            return JobState(PENDING, f"task {self.last_status}")
        if self.last_status != "STOPPED":
            return JobState(RUNNING, self.last_status)
        containers = task.get("containers", [])
        container: dict[str, Any] = next((c for c in containers if c.get("name") == self.o.container_name), {})
        code = container.get("exitCode")
        if code == 0:
            return JobState(SUCCEEDED, "exit code 0")
        why = "; ".join(x for x in (task.get("stoppedReason"), container.get("reason")) if x)
        return JobState(FAILED, f"container {self.o.container_name} exit code {code}" + (f": {why}" if why else ""))

    def tail(self) -> list[str]:
        if not self.task_arn:
            return []
        task_id = self.task_arn.rsplit("/", 1)[-1]
        # awslogs stream name: <awslogs-stream-prefix>/<container name>/<task id>
        return self.logs.read(f"training/{self.o.container_name}/{task_id}")

    def stop(self) -> None:
        if self.task_arn:
            self.ecs.stop_task(
                cluster=self.o.cluster_name,
                task=self.task_arn,
                reason="trainstack run: interrupted or past its time limit",
            )

    def stalled(self) -> str:
        reasons = [f"the task is still {self.last_status or 'not started'}: no GPU instance joined the cluster"]
        reasons += failed_scaling_activities(self.autoscaling, self.o.group_name)
        return "; ".join(reasons)

    def model_uri(self) -> str | None:
        return self.stack.model_uri
