"""LOCAL STAND-INS for AWS: what `up` would have created, made in a moto server so the real commands work.

The fake CLI's `up` only evaluates the program offline; with `$FAKE_PULUMI_STANDINS` set it calls
`provision(stack, outputs)` here, which creates in the stand-in AWS (`AWS_ENDPOINT_URL`) what the outputs
name: the platform's buckets; an ecs cluster's ECS cluster, task definition, one tagged GPU "instance"
registered as its container instance, and its log group. `teardown` removes the cluster's. Only the
platform and the ecs backend are staged (what `trainstack try` shows). No training happens anywhere:
`StandInJobs` plays the container of every task started, writing a few log lines and a placeholder model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from trainstack.model import tags

ACCOUNT = "123456789012"  # moto's default account
STANDIN_INSTANCE_TYPE = "g5.xlarge"  # what the stand-in "GPU instance" says it is (ls prices it)
JOB_LOG = (
    "[stand-in job] no training happens here: this is a local trial",
    "epoch 1/2 step 20/40 loss 2.1034 (1s)",
    "epoch 2/2 step 40/40 loss 1.7420 (2s)",
)


def _client(name: str, region: str) -> Any:
    import boto3

    return boto3.client(name, region_name=region)  # AWS_ENDPOINT_URL points every client at the stand-in


SERVICES = ("ec2", "ecs", "logs", "s3")  # the clients provision, destroy and the stand-in jobs make


def warm() -> None:
    """Load, in the default session, the data files (service models, endpoint rules, partitions) of the clients
    this module makes, so a process forked after this (a fake-CLI command) makes them without parsing them again.
    The throwaway clients get explicit stand-in keys: no credentials are resolved or kept in the session."""
    import boto3

    for name in SERVICES:
        boto3.client(name, region_name="us-east-1", aws_access_key_id="warm", aws_secret_access_key="warm")


def provision(stack: str, outputs: Mapping[str, Any]) -> None:
    if "backend" not in outputs and "buckets" in outputs:
        _platform(outputs)
    elif outputs.get("backend") == "ecs":
        _ecs(stack, outputs)


def teardown(stack: str, outputs: Mapping[str, Any]) -> None:
    if outputs.get("backend") != "ecs":
        return
    region = outputs["region"]
    ec2 = _client("ec2", region)
    found = ec2.describe_instances(Filters=[{"Name": f"tag:{tags.STACK}", "Values": [stack]}])
    ids = [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]
    if ids:
        ec2.terminate_instances(InstanceIds=ids)
        # The destroy deleted what carried the stack's tags (cluster, group); a terminated instance leaves
        # the tag index too. Without this, moto would list it on as an orphan.
        ec2.delete_tags(Resources=ids, Tags=[{"Key": tags.KIND}, {"Key": tags.STACK}])


def _platform(o: Mapping[str, Any]) -> None:
    s3 = _client("s3", o["region"])
    for zone in o["buckets"].values():
        try:
            s3.create_bucket(Bucket=zone["name"])
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass


def _ecs(stack: str, o: Mapping[str, Any]) -> None:
    region = o["region"]
    ecs = _client("ecs", region)
    ecs.create_cluster(clusterName=o["clusterName"])
    family = o["taskDefinitionArn"].rsplit("/", 1)[-1].split(":")[0]
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[
            {
                "name": o["containerName"],
                "image": "stand-in:latest",
                "memory": 1024,
                "environment": [{"name": "TRAINSTACK_MODEL_URI", "value": o.get("modelUri", "")}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": o["logGroupName"],
                        "awslogs-region": region,
                        "awslogs-stream-prefix": "training",
                    },
                },
            }
        ],
    )
    cluster_tags = {
        tags.KIND: "cluster",
        tags.STACK: stack,
        tags.OWNER: str(o.get("owner", "")),
        tags.BACKEND: "ecs",
        tags.EXPIRES_AT: str(o.get("expiresAt", "")),
    }
    ec2 = _client("ec2", region)
    instance = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType=STANDIN_INSTANCE_TYPE,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in cluster_tags.items()]}
        ],
    )["Instances"][0]
    # moto's RunTask places tasks only on registered container instances (a GPU node in reality).
    doc = json.dumps({"instanceId": instance["InstanceId"], "region": region})
    ecs.register_container_instance(cluster=o["clusterName"], instanceIdentityDocument=doc)
    logs = _client("logs", region)
    try:
        logs.create_log_group(logGroupName=o["logGroupName"])
    except logs.exceptions.ResourceAlreadyExistsException:
        pass


class StandInJobs(threading.Thread):
    """Plays the container of each ECS task started in the in-process moto server: holds the task while it
    writes the job's log lines and a placeholder model, then lets moto walk it to STOPPED (exit code 0)."""

    def __init__(self, region: str):
        super().__init__(daemon=True, name="stand-in-jobs")
        self.region = region
        self.halt = threading.Event()
        self.seen: set[str] = set()
        self.errors: list[str] = []

    def run(self) -> None:
        from moto.ecs.models import ecs_backends

        while not self.halt.wait(0.05):
            backend = ecs_backends[ACCOUNT][self.region]
            for cluster_tasks in list(backend.tasks.values()):
                for arn, task in list(cluster_tasks.items()):
                    if arn not in self.seen:
                        self.seen.add(arn)
                        try:
                            self._play(backend, task)
                        except Exception as exc:  # noqa: BLE001 - reported by the trial, never a hang
                            self.errors.append(f"{arn}: {exc}")

    def _play(self, backend: Any, task: Any) -> None:
        task.advance = lambda: None  # hold it RUNNING while "training"
        try:
            definition = backend.describe_task_definition(task.task_definition_arn)
            container = definition.container_definitions[0]
            options = container["logConfiguration"]["options"]
            stream = f"{options['awslogs-stream-prefix']}/{container['name']}/{task.id}"
            logs = _client("logs", self.region)
            logs.create_log_stream(logGroupName=options["awslogs-group"], logStreamName=stream)
            import time

            now = int(time.time() * 1000)
            logs.put_log_events(
                logGroupName=options["awslogs-group"],
                logStreamName=stream,
                logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(JOB_LOG)],
            )
            model_uri = next(e["value"] for e in container["environment"] if e["name"] == "TRAINSTACK_MODEL_URI")
            if model_uri.startswith("s3://"):
                bucket, _, prefix = model_uri[len("s3://") :].partition("/")
                _client("s3", self.region).put_object(
                    Bucket=bucket, Key=prefix + "model.pt", Body=b"stand-in model: no training happened\n"
                )
        finally:
            del task.advance  # moto's own progression again: RUNNING -> ... -> STOPPED
