"""ecs: one `run_task` on the cluster's GPU capacity provider, followed with `describe_tasks`.

Own poll loop (the driver's): botocore's `tasks_stopped` waiter gives up after 10 minutes (6 s x 100).
A further job (`trainstack exec`) is another RunTask of the same task definition with a container
override (its command, its code and prefixes); `startedBy` carries `trainstack-<job id>` so every task
trainstack started on the cluster can be found (and stopped before a destroy).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from trainstack.backends import ClusterOutputs
from trainstack.backends.ecs import EcsOutputs
from trainstack.model import code_delivery as cd
from trainstack.run.follow import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    ExecRequest,
    JobRef,
    JobState,
    LogTail,
    failed_scaling_activities,
)
from trainstack.run.run_config import RefusedError

_PENDING_STATES = {"PROVISIONING", "PENDING", "ACTIVATING"}
STARTED_BY = "trainstack-run"  # the stack's own task; a further job's is `trainstack-<job id>`
# RunTask: "A total of 8192 characters are allowed for overrides. This limit includes the JSON formatting
# characters of the override structure." (ECS API reference, RunTask `overrides`)
ECS_OVERRIDES_MAX = 8192


class EcsFollower:
    def __init__(self, outputs: Mapping[str, Any], session: Any, job: JobRef | None = None):
        self.stack = ClusterOutputs.from_outputs(outputs)
        self.o = EcsOutputs.from_outputs(outputs)
        self.job = job or JobRef()
        region = self.stack.region
        self.ecs = session.client("ecs", region_name=region)
        self.autoscaling = session.client("autoscaling", region_name=region)
        self.logs = LogTail(session.client("logs", region_name=region), self.o.log_group_name)
        self.task_arn: str | None = self.job.handle
        self.last_status = ""

    @staticmethod
    def exec_payload(req: ExecRequest) -> dict[str, Any]:
        """RunTask `overrides` of a further job: the container's environment and (with job.command) the code
        entry around the command, cut to the runtime."""
        env = {**req.environment, "AWS_DEFAULT_REGION": req.cfg.region}
        if req.code_uri:
            env[cd.CODE_URI_ENV] = req.code_uri
        override: dict[str, Any] = {
            "name": EcsOutputs.from_outputs(req.outputs).container_name,
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        }
        command = req.cfg.cluster.job.command
        if command:
            override["command"] = cd.max_runtime_command(cd.container_entry(command), req.runtime_seconds)
        overrides = {"containerOverrides": [override]}
        size = len(json.dumps(overrides, separators=(",", ":")))
        if size > ECS_OVERRIDES_MAX:
            raise RefusedError(
                f"stack {req.stack}: the job's command and environment come to {size} characters of RunTask "
                f"overrides; ECS allows {ECS_OVERRIDES_MAX}. Fix: shorten trainstack:job.environment (or the "
                "command), or put long values in a file in the workdir"
            )
        return overrides

    @staticmethod
    def job_handle(outputs: Mapping[str, Any], owner: str, stack: str, job_id: str | None) -> str | None:
        """A task ARN is the cloud's, not derivable: only run.json (written by `trainstack exec`/`run`) has it."""
        which = f"job {job_id}" if job_id else "the stack's own job"
        raise RefusedError(
            f"stack {stack}: {which} has no run.json with its ECS task ARN (it was started outside trainstack, "
            "e.g. with the runTaskCommand output). Fix: `aws ecs describe-tasks`, or start jobs with `trainstack exec`"
        )

    def submit(self) -> None:
        self.start({})

    def start(self, overrides: Mapping[str, Any]) -> None:
        """RunTask with capacityProviderStrategy (and no launchType): the task waits in PROVISIONING while
        managed scaling starts an instance from zero (botocore ecs RunTask input shape). `overrides`: RunTask's
        `overrides` (a further job's container command and environment), empty for the stack's own task."""
        extra: dict[str, Any] = {"overrides": dict(overrides)} if overrides else {}
        resp = self.ecs.run_task(
            cluster=self.o.cluster_name,
            taskDefinition=self.o.task_definition_arn,
            count=1,
            capacityProviderStrategy=[{"capacityProvider": self.o.capacity_provider_name, "weight": 1, "base": 0}],
            startedBy=f"trainstack-{self.job.id}" if self.job.id else STARTED_BY,
            propagateTags="TASK_DEFINITION",
            **extra,
        )
        if resp.get("failures"):
            f = resp["failures"][0]
            raise RuntimeError(f"ECS refused the task: {f.get('reason')} {f.get('detail') or ''}".strip())
        self.task_arn = resp["tasks"][0]["taskArn"]

    def handle(self) -> str | None:
        return self.task_arn

    def poll(self) -> JobState:
        if not self.task_arn:
            return JobState(PENDING, "not started")
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

    def release(self) -> list[str]:
        """Before a destroy: stop every task trainstack started on the cluster (the run's and exec's); ECS
        stops them with the container's stopTimeout, and the destroy removes the instances after."""
        stopped = []
        for page in self.ecs.get_paginator("list_tasks").paginate(cluster=self.o.cluster_name, desiredStatus="RUNNING"):
            arns = page.get("taskArns", [])
            if not arns:
                continue
            for task in self.ecs.describe_tasks(cluster=self.o.cluster_name, tasks=arns).get("tasks", []):
                if str(task.get("startedBy", "")).startswith("trainstack-"):
                    self.ecs.stop_task(
                        cluster=self.o.cluster_name, task=task["taskArn"], reason="trainstack: the stack is destroyed"
                    )
                    stopped.append(task["taskArn"])
        return stopped

    def stalled(self) -> str:
        reasons = [f"the task is still {self.last_status or 'not started'}: no GPU instance joined the cluster"]
        reasons += failed_scaling_activities(self.autoscaling, self.o.group_name)
        return "; ".join(reasons)

    def model_uri(self) -> str | None:
        return f"{self.job.artifact_uri(self.stack.artifact_uri)}model/" if self.job.id else self.stack.model_uri
