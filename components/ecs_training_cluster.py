"""EcsTrainingCluster: an ECS cluster whose only capacity is a GPU Auto Scaling group at zero.

Running the training task (`aws ecs run-task`, or `trainstack run`) makes the capacity provider's
managed scaling launch GPU instances; when the task ends, managed termination protection and
draining let the group scale back to zero. The task definition asks for GPUs and carries the
placement constraint `attribute:ecs.instance-type =~ <family>.*`, so a task can only ever land
on the GPU family it was built for.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from trainstack.components.gpu_autoscaling_group import ECS_INSTANCE, SSM_CORE, GpuAutoScalingGroup
from trainstack.components.training_cluster import TrainingClusterArgs, gpu_group_args, training_log_group
from trainstack.model import catalog
from trainstack.model import iam_documents as docs
from trainstack.model.code_delivery import CODE_URI_ENV, container_entry
from trainstack.model.code_delivery import max_runtime_command as _with_time_limit
from trainstack.model.run_locations import RUN_RECORD_URI_ENV, RunLocations, data_access_policy

CONTAINER_NAME = "training"
# ECS stopTimeout maximum: time between SIGTERM and SIGKILL for a last checkpoint.
STOP_TIMEOUT_SECONDS = 120
# Memory the OS, the ECS agent and the NVIDIA stack keep on every instance.
HOST_MEMORY_SHARE = 0.9


def task_memory_mib(instance_types: Sequence[str], gpus_per_node: int) -> int:
    """A task's memory reservation: its GPU share of the smallest listed instance's memory."""
    smallest_mib = catalog.smallest_memory_gib(tuple(instance_types)) * 1024
    share = gpus_per_node / max(catalog.smallest_gpu_count(tuple(instance_types)), 1)
    return int(math.floor(smallest_mib * HOST_MEMORY_SHARE * share))


def shared_memory_mib(memory_mib: int) -> int:
    """/dev/shm for PyTorch DataLoader workers: a quarter of the task's memory, 1-64 GiB."""
    return max(1024, min(memory_mib // 4, 64 * 1024))


def family_name(owner: str, stack: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"trainstack-{owner}-{stack}")[:255]


def max_runtime_command(command: Sequence[str], max_runtime_seconds: int) -> list[str]:
    """Wrap the command in coreutils `timeout` (trainstack.model.code_delivery.max_runtime_command, which
    `trainstack exec` uses for its RunTask override too)."""
    return _with_time_limit(command, max_runtime_seconds, STOP_TIMEOUT_SECONDS)


def container_definitions(
    args: EcsTrainingClusterArgs,
    *,
    locations: RunLocations,
    log_group: str,
    code_uri: str | None = None,
) -> list[dict]:
    """The task's container definitions, exactly as ECS RegisterTaskDefinition takes them.

    With `code_uri` (job.workdir), the command runs through `container_entry`, all under the max-runtime
    `timeout`: it fetches and unpacks the code bundle, runs the command in it and, when the command ends,
    writes the run's result to `<artifact prefix>run.json` (so a run nobody follows is still recorded)."""
    region = args.region
    memory = task_memory_mib(args.instance_types, args.gpus_per_node)
    env = {
        **locations.environment(),
        **dict(args.environment),
        "TRAINSTACK_NNODES": str(args.nodes),
        "TRAINSTACK_GPUS_PER_NODE": str(args.gpus_per_node),
        "SM_MODEL_DIR": "/opt/ml/model",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    if code_uri:
        # boto3 in the entry script needs a region; ECS task credentials come from the agent endpoint.
        env.update({CODE_URI_ENV: code_uri, RUN_RECORD_URI_ENV: locations.run_record_uri, "AWS_DEFAULT_REGION": region})
    definition: dict = {
        "name": CONTAINER_NAME,
        "image": args.image,
        "essential": True,
        "memoryReservation": memory,
        "resourceRequirements": [{"type": "GPU", "value": str(args.gpus_per_node)}],
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "linuxParameters": {"sharedMemorySize": shared_memory_mib(memory), "initProcessEnabled": True},
        # NCCL pins memory and needs a deep stack; the defaults make multi-GPU jobs fail oddly.
        "ulimits": [
            {"name": "memlock", "softLimit": -1, "hardLimit": -1},
            {"name": "stack", "softLimit": 67108864, "hardLimit": 67108864},
        ],
        "stopTimeout": STOP_TIMEOUT_SECONDS,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": "training"},
        },
    }
    if args.command:
        command = container_entry(args.command) if code_uri else list(args.command)
        definition["command"] = max_runtime_command(command, args.max_runtime_seconds)
    return [definition]


def ecs_user_data(cluster_name: str) -> str:
    return "\n".join(
        [
            "#!/bin/bash",
            "cat >> /etc/ecs/ecs.config <<'EOF'",
            f"ECS_CLUSTER={cluster_name}",
            "ECS_ENABLE_GPU_SUPPORT=true",
            "ECS_ENABLE_TASK_IAM_ROLE=true",
            "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true",
            f"ECS_CONTAINER_STOP_TIMEOUT={STOP_TIMEOUT_SECONDS}s",
            "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached",
            "EOF",
            "",
        ]
    )


@dataclass(frozen=True)
class EcsTrainingClusterArgs(TrainingClusterArgs):
    """`TrainingClusterArgs` (the shared, documented fields; `nodes` must be 1) plus the task's placement."""

    # The instance family the task may land on (its placement constraint `ecs.instance-type =~ <family>.*`);
    # None: the family of the first instance type.
    family: str | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.nodes != 1:
            raise ValueError(
                f"nodes = {self.nodes}: an ECS task runs on one instance (ECS offers no peer discovery for "
                "torchrun); use Ec2TrainingCluster for multi-node jobs"
            )
        unplaced = [t for t in self.instance_types if not catalog.matches_placement(t, self.task_family)]
        if unplaced:
            raise ValueError(
                f"instance_types {', '.join(unplaced)}: the task's placement constraint (family {self.task_family}) "
                "would never place it there; list types of one family or set family"
            )

    @property
    def task_family(self) -> str:
        """The instance family of the placement constraint."""
        return self.family or catalog.family_of(self.instance_types[0])


class EcsTrainingCluster(pulumi.ComponentResource):
    cluster: aws.ecs.Cluster
    capacity: GpuAutoScalingGroup
    capacity_provider: aws.ecs.CapacityProvider
    log_group: aws.cloudwatch.LogGroup
    execution_role: aws.iam.Role
    task_role: aws.iam.Role
    task_definition: aws.ecs.TaskDefinition

    def __init__(self, name: str, args: EcsTrainingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:compute:EcsTrainingCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster", settings=[{"name": "containerInsights", "value": "enabled"}], tags=args.tags, opts=child
        )
        self.log_group = training_log_group(name, args, self)
        # Managed termination protection needs every new instance protected from scale-in.
        self.capacity = GpuAutoScalingGroup(
            f"{name}-gpu",
            gpu_group_args(
                args,
                kind="ecs",
                user_data=self.cluster.name.apply(ecs_user_data),
                desired_capacity=0,
                managed_policy_arns=tuple(
                    docs.aws_managed_policy(p, docs.partition_of(args.region)) for p in (ECS_INSTANCE, SSM_CORE)
                ),
                protect_from_scale_in=True,
                ecs_managed=True,
            ),
            opts=child,
        )

        self.capacity_provider = aws.ecs.CapacityProvider(
            f"{name}-capacity",
            auto_scaling_group_provider={
                "auto_scaling_group_arn": self.capacity.group.arn,
                # Never scale in an instance that still runs a training task...
                "managed_termination_protection": "ENABLED",
                # ...and move tasks off instances that are going away (spot, rebalancing) gracefully.
                "managed_draining": "ENABLED",
                "managed_scaling": {
                    "status": "ENABLED",
                    "target_capacity": 100,
                    "minimum_scaling_step_size": 1,
                    "maximum_scaling_step_size": args.max_instances,
                    "instance_warmup_period": 300,
                },
            },
            tags=args.tags,
            opts=child,
        )
        aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity-providers",
            cluster_name=self.cluster.name,
            capacity_providers=[self.capacity_provider.name],
            default_capacity_provider_strategies=[
                {"capacity_provider": self.capacity_provider.name, "weight": 1, "base": 0}
            ],
            opts=child,
        )

        account = args.account_id if args.account_id != "*" else aws.get_caller_identity().account_id
        self.execution_role = aws.iam.Role(
            f"{name}-execution-role",
            assume_role_policy=json.dumps(docs.assume_role("ecs-tasks.amazonaws.com")),
            description="trainstack: pull the training image, write its logs",
            tags=args.tags,
            opts=child,
        )
        repo = docs.ecr_repository_arn(args.image)
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=self.execution_role.id,
            policy=self.log_group.arn.apply(
                lambda arn: json.dumps(docs.merge(docs.write_logs(arn), docs.pull_image(repo)))
            ),
            opts=child,
        )
        self.task_role = aws.iam.Role(
            f"{name}-task-role",
            # Tasks of this account and region only (the ECS docs' confused-deputy scoping).
            assume_role_policy=pulumi.Output.from_input(account).apply(
                lambda acct: json.dumps(docs.ecs_task_trust(acct, args.region))
            ),
            description="trainstack: the training job's access to the data lake",
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-task-data-policy",
            role=self.task_role.id,
            policy=pulumi.Output.all(args.locations, args.kms_key_arn).apply(
                lambda a: json.dumps(data_access_policy(a[0], a[1], args.region))
            ),
            opts=child,
        )

        definitions = pulumi.Output.all(args.locations, self.log_group.name, args.code_uri).apply(
            lambda a: json.dumps(container_definitions(args, locations=a[0], log_group=a[1], code_uri=a[2]))
        )
        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=family_name(args.owner, args.stack),
            requires_compatibilities=["EC2"],
            network_mode="bridge",
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            container_definitions=definitions,
            placement_constraints=[{"type": "memberOf", "expression": catalog.placement_expression(args.task_family)}],
            tags=args.tags,
            opts=child,
        )

        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "taskDefinitionArn": self.task_definition.arn,
                "capacityProviderName": self.capacity_provider.name,
            }
        )

    def run_task_command(self) -> pulumi.Output[str]:
        """The exact CLI call that starts one training run on this cluster."""
        return pulumi.Output.format(
            "aws ecs run-task --cluster {0} --task-definition {1} --count 1 "
            "--capacity-provider-strategy capacityProvider={2},weight=1,base=0",
            self.cluster.name,
            self.task_definition.arn,
            self.capacity_provider.name,
        )
