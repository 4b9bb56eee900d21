"""What the self-managed training clusters (Ec2TrainingCluster, EcsTrainingCluster) share: their
arguments, log group and GPU group.

The arguments are flat and plain (or pulumi Inputs where a value comes from another resource), one
comment per field: a program builds them from its own settings, not from a trainstack stack file
(trainstack's own programs map their config onto them in trainstack/programs/backends/self_managed.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from trainstack.components.gpu_autoscaling_group import GpuAutoScalingGroupArgs
from trainstack.model import amis, catalog
from trainstack.model.run_locations import RunLocations


@dataclass(frozen=True)
class TrainingClusterArgs:
    # -- who and where ------------------------------------------------------------------------
    # Who the cluster is for: the log group is `/trainstack/<owner>/...`, names carry it.
    owner: str
    # The deployment's name (your Pulumi stack's, say): GPU group and task family names carry it.
    stack: str
    # The AWS region the cluster runs in.
    region: str
    # Subnets for the GPU instances (e.g. TrainingNetwork.compute_subnets' ids).
    subnet_ids: pulumi.Input[Sequence[str]]
    # The instances' security group (e.g. TrainingNetwork.security_group: members talk to each other).
    security_group_id: pulumi.Input[str]
    # Where the run reads its dataset and writes its model, logs and checkpoints (trainstack.model.run_locations).
    locations: pulumi.Input[RunLocations]
    # The KMS key the data lake's buckets are encrypted with (e.g. DataLake.kms_key.arn); the log group uses it too.
    kms_key_arn: pulumi.Input[str]
    # -- what runs on what ---------------------------------------------------------------------
    # GPU instance types the group may launch (one GPU architecture: they share an AMI).
    instance_types: tuple[str, ...]
    # The most GPU instances the group may run.
    max_instances: int
    # The training image (an ECR image needs no extra permission: the nodes may pull it).
    image: str
    # Instances that are always on-demand, before spot_percent applies to the rest.
    on_demand_base: int = 0
    # Percent of the capacity above on_demand_base that runs on spot (0-100).
    spot_percent: int = 100
    # One cluster placement group (one AZ, the low-latency network multi-node NCCL wants).
    placement_group: bool = False
    # The encrypted gp3 root volume, GiB (images, the workdir, local checkpoints).
    root_volume_gib: int = 200
    # A pinned AMI id. None, and no ami_ssm_parameter: the AWS-maintained GPU AMI that drives these instance
    # types on this cluster kind (trainstack.model.amis; the Deep Learning AMI or the ECS GPU AMI).
    ami_id: str | None = None
    # A public SSM parameter naming the AMI (instead of ami_id).
    ami_ssm_parameter: str | None = None
    # -- the job ------------------------------------------------------------------------------
    # The training command (empty: the image's own entrypoint and command, where the cluster kind allows it).
    command: tuple[str, ...] = ()
    # Environment of the training container, besides the TRAINSTACK_* locations.
    environment: Mapping[str, str] = field(default_factory=dict)
    # Instances one run uses.
    nodes: int = 1
    # GPUs of each instance one run uses.
    gpus_per_node: int = 1
    # The run is stopped after this many seconds, whatever it does.
    max_runtime_seconds: int = 6 * 3600
    # The run's code bundle (s3:// tar.gz, e.g. CodeBundle.uri): fetched and unpacked before the command.
    code_uri: pulumi.Input[str] | None = None
    # -- the rest -----------------------------------------------------------------------------
    # Days CloudWatch Logs keeps the training logs (one of the values CloudWatch Logs accepts).
    log_retention_days: int = 14
    # Tags on every resource (and the instances, volumes and network interfaces they launch).
    tags: Mapping[str, str] = field(default_factory=dict)
    # The AWS account: scopes the ARNs built from names ("*": any account).
    account_id: str = "*"

    def __post_init__(self):
        if not self.instance_types or isinstance(self.instance_types, str):
            raise ValueError(f"instance_types = {self.instance_types!r}: list at least one GPU instance type")
        if not self.image:
            raise ValueError("image is empty: give the training image (e.g. an ECR or Docker Hub reference)")
        for name in (
            "max_instances",
            "nodes",
            "gpus_per_node",
            "max_runtime_seconds",
            "on_demand_base",
            "spot_percent",
            "root_volume_gib",
            "log_retention_days",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} = {value!r}: must be a whole number")
        for name in ("max_instances", "nodes", "gpus_per_node", "max_runtime_seconds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        if not isinstance(self.placement_group, bool):  # bool(Output(False)) is True: switches are plain bools
            raise ValueError(f"placement_group = {self.placement_group!r}: must be True or False")
        if isinstance(self.command, str):
            raise ValueError(f"command = {self.command!r}: give the command as a list of arguments")
        if self.ami_id is not None and self.ami_ssm_parameter is not None:
            raise ValueError(
                f"ami_id = {self.ami_id!r}, ami_ssm_parameter = {self.ami_ssm_parameter!r}: give at most one of them"
            )


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


def default_ami_parameter(kind: str, instance_types: Sequence[str]) -> str:
    """The AWS-maintained AMI (its public SSM parameter) that drives these instance types on `kind`
    ("ec2": the Deep Learning AMI, "ecs": the ECS GPU AMI), from the table in trainstack.model.amis."""
    found = [k.architecture.name for k in map(catalog.lookup, instance_types) if k and k.architecture]
    try:
        return amis.parameter_for(kind, list(dict.fromkeys(found)))
    except ValueError as exc:
        raise ValueError(f"instance_types = {list(instance_types)!r}: {exc} (ami_id)") from None


def gpu_group_args(
    args: TrainingClusterArgs,
    *,
    kind: str,
    user_data: pulumi.Input[str],
    desired_capacity: int,
    managed_policy_arns: tuple[str, ...],
    protect_from_scale_in: bool = False,
    ecs_managed: bool = False,
    metadata_hop_limit: int = 1,
) -> GpuAutoScalingGroupArgs:
    # metadata_hop_limit stays 1 for both kinds: ECS tasks run in bridge mode and get their role from
    # the ECS agent's endpoint, never IMDS; the ec2 cluster's container uses `--network host`, where IMDS
    # is one hop away as for the host itself.
    ssm_parameter = args.ami_ssm_parameter
    if args.ami_id is None and ssm_parameter is None:
        ssm_parameter = default_ami_parameter(kind, args.instance_types)
    return GpuAutoScalingGroupArgs(
        instance_types=args.instance_types,
        subnet_ids=args.subnet_ids,
        security_group_id=args.security_group_id,
        user_data=user_data,
        max_size=args.max_instances,
        ami_id=args.ami_id,
        ami_ssm_parameter=ssm_parameter,
        desired_capacity=desired_capacity,
        on_demand_base=args.on_demand_base,
        spot_percent=args.spot_percent,
        placement_group=args.placement_group,
        root_volume_gib=args.root_volume_gib,
        protect_from_scale_in=protect_from_scale_in,
        managed_policy_arns=managed_policy_arns,
        ecs_managed=ecs_managed,
        metadata_hop_limit=metadata_hop_limit,
        tags=args.tags,
    )
