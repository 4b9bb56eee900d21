"""ec2: `up` starts the nodes; they write `_SUCCESS` or `_FAILED` under the artifact prefix and
scale their group to zero. Liveness from the group, logs from the `node-<rank>-*` streams.

A further job (`trainstack exec`) is the group's next generation: its settings go to
`<artifact prefix>current-job.json`, which every node's bootstrap reads at boot in place of the user
data's job (scripts/ec2_bootstrap.py), then the group is scaled to the job's node count. The launch
template never changes, so no instance is replaced; the job's markers and `run.json` are under
`jobs/<job id>/`, its log streams under `jobs/<job id>/node-*`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from trainstack.backends import ClusterOutputs
from trainstack.backends.ec2 import Ec2Outputs
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
    split_s3_uri,
)

CURRENT_JOB = "current-job.json"  # scripts/ec2_bootstrap.py CURRENT_JOB


class Ec2Follower:
    def __init__(self, outputs: Mapping[str, Any], session: Any, job: JobRef | None = None):
        self.stack = ClusterOutputs.from_outputs(outputs)
        self.o = Ec2Outputs.from_outputs(outputs)
        self.job = job or JobRef()
        self.artifact_uri = self.job.artifact_uri(self.stack.artifact_uri)
        region = self.stack.region
        self.s3 = session.client("s3", region_name=region)
        self.autoscaling = session.client("autoscaling", region_name=region)
        self.logs = LogTail(session.client("logs", region_name=region), self.o.log_group_name)
        self.in_service = 0

    @staticmethod
    def exec_payload(r: ExecRequest) -> dict[str, Any]:
        """The group's next generation: the bootstrap's job keys (scripts/ec2_bootstrap.py JOB_KEYS) and the
        node count the group scales to."""
        job = r.cfg.cluster.job
        return {
            "settings": {
                "job_id": r.job_id,
                "command": list(job.command),
                "environment": dict(job.environment),
                "code_uri": r.code_uri,
                "artifact_uri": r.locations.artifact_uri,
                "checkpoint_uri": r.locations.checkpoint_uri,
                "max_runtime_seconds": r.runtime_seconds,
            },
            "nodes": job.nodes,
        }

    @staticmethod
    def job_handle(outputs: Mapping[str, Any], owner: str, stack: str, job_id: str | None) -> str | None:
        """Nothing to derive: an ec2 job is found by its artifact prefix (the job id)."""
        return None

    def submit(self) -> None:
        """Nothing to start: the group was created at the job's node count."""

    def busy(self) -> str | None:
        """Why the group cannot start another job now (None: it sits at zero)."""
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.o.group_name])[
            "AutoScalingGroups"
        ]
        if not groups:
            return f"Auto Scaling group {self.o.group_name} does not exist (was the stack destroyed?)"
        g = groups[0]
        live = [i for i in g.get("Instances", []) if i.get("LifecycleState") not in ("Terminated", "Terminating")]
        if g.get("DesiredCapacity") or live:
            return (
                f"the group {self.o.group_name} still runs a job ({g.get('DesiredCapacity')} desired, {len(live)} "
                "instance(s)): one job at a time on ec2. Fix: wait for it (`trainstack attach`), or stop it with "
                "`aws autoscaling update-auto-scaling-group --min-size 0 --desired-capacity 0`"
            )
        return None

    def start(self, payload: Mapping[str, Any]) -> None:
        """The group's next generation: `payload["settings"]` (the bootstrap's job keys) become current-job.json,
        then the group scales to `payload["nodes"]`. No SSE header: the bucket's default SSE-KMS applies."""
        bucket, key = split_s3_uri(self.stack.artifact_uri + CURRENT_JOB)
        body = json.dumps(dict(payload["settings"]), indent=2).encode()
        self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        self.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=self.o.group_name, DesiredCapacity=int(payload.get("nodes") or 1)
        )

    def handle(self) -> str:
        return self.artifact_uri

    def _marker(self, uri: str) -> dict | None:
        from botocore.exceptions import ClientError

        bucket, key = split_s3_uri(uri)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            # Without s3:ListBucket a missing key is 403, not 404 (S3 GetObject docs): both mean "not yet".
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "403", "AccessDenied"):
                return None
            raise
        try:
            return json.loads(body or b"{}")
        except ValueError:
            return {}

    def poll(self) -> JobState:
        if self._marker(self.artifact_uri + "_SUCCESS") is not None:
            return JobState(SUCCEEDED, "_SUCCESS written")
        failed = self._marker(self.artifact_uri + "_FAILED")
        if failed is not None:
            return JobState(FAILED, f"_FAILED written: {json.dumps(failed)[:500]}")
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.o.group_name])[
            "AutoScalingGroups"
        ]
        self.in_service = sum(
            1 for i in (groups[0]["Instances"] if groups else []) if i.get("LifecycleState") == "InService"
        )
        return (
            JobState(RUNNING, f"{self.in_service} node(s) InService")
            if self.in_service
            else JobState(PENDING, "no node InService yet")
        )

    def tail(self) -> list[str]:
        lines: list[str] = []
        prefix = f"jobs/{self.job.id}/" if self.job.id else ""
        for stream in self.logs.streams(f"{prefix}node-"):
            node = stream[len(prefix) :]
            rank = node.split("-", 2)[1] if node.count("-") >= 2 else "?"
            lines += self.logs.read(stream, prefix=f"[node {rank}] ")
        return lines

    def stop(self) -> None:
        self.autoscaling.update_auto_scaling_group(AutoScalingGroupName=self.o.group_name, MinSize=0, DesiredCapacity=0)

    def stalled(self) -> str:
        return "; ".join(
            ["no node of the group reached InService"] + failed_scaling_activities(self.autoscaling, self.o.group_name)
        )

    def model_uri(self) -> str | None:
        return f"{self.artifact_uri}model/" if self.job.id else self.stack.model_uri
