"""The ECS backend: a p3-pinned GPU task on a capacity provider that scales from zero."""

from __future__ import annotations

import json

import pytest

from tests.helpers import NOW, cluster_config
from trainstack.components import ecs_training_cluster as E
from trainstack.model.config import parse_config
from trainstack.model.run_locations import RunLocations
from trainstack.plan.provider_schema import api_errors

LOC = RunLocations(
    "raw-b",
    "arn:aws:s3:::raw-b",
    "cifar10/v1/",
    "art-b",
    "arn:aws:s3:::art-b",
    "artifacts/alice/dev-ecs/",
    "checkpoints/alice/dev-ecs/",
)


@pytest.fixture(scope="module")
def ecs(run_stack):
    return run_stack(
        cluster_config(
            "ecs", gpu={"family": "p3", "instanceTypes": ["p3.8xlarge", "p3.16xlarge"]}, job={"gpusPerNode": 4}
        ),
        stack="dev-ecs",
    )


def args_of(cluster) -> E.EcsTrainingClusterArgs:
    """The component's flat args for a cluster config, as a program would build them."""
    return E.EcsTrainingClusterArgs(
        owner="alice",
        stack="dev-ecs",
        region="us-east-1",
        subnet_ids=["subnet-1"],
        security_group_id="sg-1",
        locations=LOC,
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        instance_types=cluster.gpu.instance_types,
        max_instances=cluster.gpu.max_instances,
        image=cluster.job.image,
        command=cluster.job.command,
        environment=cluster.job.environment,
        gpus_per_node=cluster.job.gpus_per_node,
        max_runtime_seconds=cluster.max_runtime_seconds,
        family=cluster.gpu.family,
    )


def task_containers(run):
    return json.loads(run.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])


def test_placement_constraint_pins_the_gpu_family(ecs):
    td = ecs.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert td["placementConstraints"] == [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ p3.*"}]
    assert td["requiresCompatibilities"] == ["EC2"]


def test_family_comes_from_config(run_stack):
    run = run_stack(cluster_config("ecs", gpu={"family": "g5", "instanceTypes": ["g5.xlarge", "g5.2xlarge"]}))
    td = run.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert td["placementConstraints"][0]["expression"] == "attribute:ecs.instance-type =~ g5.*"


def test_container_asks_for_gpus_memory_and_shared_memory(ecs):
    (c,) = task_containers(ecs)
    assert c["resourceRequirements"] == [{"type": "GPU", "value": "4"}]
    # 4 of the 4 GPUs of p3.8xlarge (the smallest listed): 90 % of its 244 GiB.
    assert c["memoryReservation"] == int(244 * 1024 * 0.9)
    # /dev/shm for DataLoader workers: a quarter of that (capped at 64 GiB).
    assert c["linuxParameters"]["sharedMemorySize"] == int(244 * 1024 * 0.9) // 4
    assert {"name": "memlock", "softLimit": -1, "hardLimit": -1} in c["ulimits"]


def test_container_knows_where_data_and_outputs_go(ecs, platform_outputs):
    (c,) = task_containers(ecs)
    env = {e["name"]: e["value"] for e in c["environment"]}
    raw, art = platform_outputs["buckets"]["raw"]["name"], platform_outputs["buckets"]["artifacts"]["name"]
    assert env["TRAINSTACK_DATASET_URI"] == f"s3://{raw}/cifar10/v1/"
    assert env["TRAINSTACK_MODEL_URI"] == f"s3://{art}/artifacts/alice/dev-ecs/model/"
    assert env["TRAINSTACK_CHECKPOINT_URI"] == f"s3://{art}/checkpoints/alice/dev-ecs/"


def test_command_is_bounded_by_max_runtime(ecs):
    (c,) = task_containers(ecs)
    assert c["command"] == ["timeout", "--signal=TERM", "--kill-after=120s", "21600s", "python", "train.py"]
    assert c["stopTimeout"] == 120


def test_logs_go_to_the_stacks_log_group(ecs):
    (c,) = task_containers(ecs)
    group = ecs.one("aws:cloudwatch/logGroup:LogGroup")
    assert c["logConfiguration"]["options"]["awslogs-group"] == group.state["name"]
    assert group.inputs["retentionInDays"] == 14


def test_capacity_provider_scales_from_zero_with_termination_protection(ecs):
    cp = ecs.one("aws:ecs/capacityProvider:CapacityProvider").inputs["autoScalingGroupProvider"]
    asg = ecs.one("aws:autoscaling/group:Group")
    assert cp["autoScalingGroupArn"] == asg.state["arn"]
    assert cp["managedTerminationProtection"] == "ENABLED" and cp["managedDraining"] == "ENABLED"
    assert cp["managedScaling"]["status"] == "ENABLED" and cp["managedScaling"]["targetCapacity"] == 100
    # Managed termination protection only works when the group protects new instances from scale-in.
    assert asg.inputs["protectFromScaleIn"] is True and asg.inputs["minSize"] == 0
    assert asg.inputs["desiredCapacity"] == 0


def test_cluster_defaults_to_the_gpu_capacity_provider(ecs):
    ccp = ecs.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders").inputs
    cp = ecs.one("aws:ecs/capacityProvider:CapacityProvider")
    assert ccp["capacityProviders"] == [cp.state["name"]]
    assert ccp["defaultCapacityProviderStrategies"] == [{"capacityProvider": cp.state["name"], "weight": 1, "base": 0}]
    cluster = ecs.one("aws:ecs/cluster:Cluster").inputs
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]


def test_instances_join_the_cluster_with_gpu_support(ecs):
    import base64

    lt = ecs.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    script = base64.b64decode(lt["userData"]).decode()
    cluster = ecs.one("aws:ecs/cluster:Cluster")
    assert f"ECS_CLUSTER={cluster.state['name']}" in script and "ECS_ENABLE_GPU_SUPPORT=true" in script
    params = [a["name"] for t, a in ecs.invokes if t == "aws:ssm/getParameter:getParameter"]
    assert params == ["/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"]


def test_run_task_command_is_exported(ecs):
    cmd = ecs.outputs["runTaskCommand"]
    assert cmd.startswith("aws ecs run-task --cluster ") and ecs.outputs["taskDefinitionArn"] in cmd
    assert f"capacityProvider={ecs.outputs['capacityProviderName']}" in cmd


def test_cluster_exports_everything_a_run_needs(ecs):
    needed = {
        "clusterName",
        "clusterArn",
        "capacityProviderName",
        "taskDefinitionArn",
        "logGroupName",
        "taskRoleArn",
        "executionRoleArn",
        "groupName",
        "groupArn",
        "datasetUri",
        "artifactUri",
        "checkpointUri",
        "expiresAt",
        "teardownSchedules",
    }
    assert needed <= set(ecs.outputs)


def test_creates_no_vpc_and_no_bucket(ecs):
    types = {r.type for r in ecs.resources}
    assert not {"aws:ec2/vpc:Vpc", "aws:s3/bucket:Bucket", "aws:kms/key:Key"} & types


def register_task_definition_errors(containers: list[dict]) -> str:
    return api_errors(
        "ecs",
        "RegisterTaskDefinition",
        {
            "family": "trainstack-alice-dev-ecs",
            "containerDefinitions": containers,
            "networkMode": "bridge",
            "requiresCompatibilities": ["EC2"],
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ p3.*"}],
        },
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"job": {"command": None, "environment": {"EPOCHS": 3, "DEBUG": True}}},
        {"gpu": {"instanceTypes": ["p3.16xlarge"]}, "job": {"gpusPerNode": 8}},
    ],
)
def test_container_definitions_match_the_ecs_api_model(overrides):
    cfg = parse_config(cluster_config("ecs", **overrides), stack="dev-ecs", now=NOW).cluster
    containers = E.container_definitions(args_of(cfg), locations=LOC, log_group="/trainstack/alice/x")
    assert register_task_definition_errors(containers) == ""


def test_the_validator_would_catch_a_malformed_definition():
    assert "memoryReservation" in register_task_definition_errors(
        [{"name": "x", "image": "y", "memoryReservation": "lots"}]
    )


def test_shared_memory_is_capped():
    assert E.shared_memory_mib(1024 * 1024) == 64 * 1024 and E.shared_memory_mib(100) == 1024


def test_memory_share_follows_the_gpu_share():
    cfg = parse_config(
        cluster_config("ecs", gpu={"instanceTypes": ["p3.8xlarge"]}, job={"gpusPerNode": 2}), stack="s", now=NOW
    ).cluster
    assert E.task_memory_mib(cfg.gpu.instance_types, 2) == int(244 * 1024 * 0.9 / 2)
