"""ec2: `up` starts the nodes; they write `_SUCCESS` or `_FAILED` under the artifact prefix and
scale their group to zero. Liveness from the group, logs from the `node-<rank>-*` streams."""

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
    JobState,
    LogTail,
    failed_scaling_activities,
    split_s3_uri,
)


class Ec2Follower:
    def __init__(self, outputs: Mapping[str, Any], session: Any):
        self.stack = ClusterOutputs.from_outputs(outputs)
        self.o = Ec2Outputs.from_outputs(outputs)
        region = self.stack.region
        self.s3 = session.client("s3", region_name=region)
        self.autoscaling = session.client("autoscaling", region_name=region)
        self.logs = LogTail(session.client("logs", region_name=region), self.o.log_group_name)
        self.in_service = 0

    def submit(self) -> None:
        """Nothing to start: the group was created at the job's node count."""

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
        if self._marker(self.o.success_marker_uri) is not None:
            return JobState(SUCCEEDED, "_SUCCESS written")
        failed = self._marker(self.stack.artifact_uri + "_FAILED")
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
        for stream in self.logs.streams("node-"):
            rank = stream.split("-", 2)[1] if stream.count("-") >= 2 else "?"
            lines += self.logs.read(stream, prefix=f"[node {rank}] ")
        return lines

    def stop(self) -> None:
        self.autoscaling.update_auto_scaling_group(AutoScalingGroupName=self.o.group_name, MinSize=0, DesiredCapacity=0)

    def stalled(self) -> str:
        return "; ".join(
            ["no node of the group reached InService"] + failed_scaling_activities(self.autoscaling, self.o.group_name)
        )

    def model_uri(self) -> str | None:
        return self.stack.model_uri
