"""What the self-managed backends (ecs, ec2) share: their arguments, log group and GPU group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from trainstack.components.gpu_autoscaling_group import GpuAutoScalingGroupArgs
from trainstack.model import amis
from trainstack.model.config import GpuConfig, JobConfig
from trainstack.model.run_locations import RunLocations


@dataclass(frozen=True)
class TrainingClusterArgs:
    owner: str
    stack: str
    region: str
    gpu: GpuConfig
    job: JobConfig
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]
    locations: pulumi.Input[RunLocations]
    kms_key_arn: pulumi.Input[str]
    max_runtime_seconds: int
    log_retention_days: int = 14
    tags: Mapping[str, str] = field(default_factory=dict)
    code_uri: pulumi.Input[str] | None = None  # the job.workdir bundle (components/code_bundle.py)
    account_id: str = "*"  # scopes ARNs built from names (the ec2 backend's group)


def training_log_group(name: str, args: TrainingClusterArgs, parent: pulumi.Resource) -> aws.cloudwatch.LogGroup:
    # Encrypted with the platform's data lake key (its key policy admits this region's CloudWatch Logs).
    return aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name_prefix=f"/trainstack/{args.owner}/",
        retention_in_days=args.log_retention_days,
        kms_key_id=args.kms_key_arn,
        tags=args.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def gpu_group_args(
    args: TrainingClusterArgs,
    *,
    backend: str,
    user_data: pulumi.Input[str],
    desired_capacity: int,
    managed_policy_arns: tuple[str, ...],
    protect_from_scale_in: bool = False,
    ecs_managed: bool = False,
    metadata_hop_limit: int = 1,
) -> GpuAutoScalingGroupArgs:
    # metadata_hop_limit stays 1 for both backends: ECS tasks run in bridge mode and get their role from
    # the ECS agent's endpoint, never IMDS; the ec2 backend's container uses `--network host`, where IMDS
    # is one hop away as for the host itself.
    gpu = args.gpu
    return GpuAutoScalingGroupArgs(
        instance_types=gpu.instance_types,
        subnet_ids=args.subnet_ids,
        security_group_id=args.security_group_id,
        user_data=user_data,
        max_size=gpu.max_instances,
        # The (backend, GPU architecture) table; config has refused pairings it has no AMI for.
        ami_id=gpu.ami_id,
        ami_ssm_parameter=None if gpu.ami_id else amis.parameter_for(backend, [a.name for a in gpu.architectures]),
        desired_capacity=desired_capacity,
        on_demand_base=gpu.on_demand_base,
        spot_percent=gpu.spot_percent,
        placement_group=gpu.placement_group,
        root_volume_gib=gpu.root_volume_gib,
        protect_from_scale_in=protect_from_scale_in,
        managed_policy_arns=managed_policy_arns,
        ecs_managed=ecs_managed,
        metadata_hop_limit=metadata_hop_limit,
        tags=args.tags,
    )
