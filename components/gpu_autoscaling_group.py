"""GpuAutoScalingGroup: spot/on-demand GPU capacity that sits at zero until a job needs it.

Launch template: GPU AMI (from a public SSM parameter unless pinned), IMDSv2 required with hop
limit 1 by default (bridge-mode containers cannot reach the node role), encrypted gp3 root volume
no smaller than the AMI's root snapshot, no SSH key (shell
access is SSM Session Manager), the platform's cluster security group, tags on instances,
volumes and network interfaces. Auto Scaling group: min 0, a mixed-instances policy over several
GPU types with `price-capacity-optimized` spot (capacity rebalancing off: see below), every platform subnet
(or one AZ and a cluster placement group for tightly coupled multi-node jobs). Pulumi never
fights the autoscaler: changes to the desired capacity are ignored after creation.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from trainstack.model import iam_documents as docs
from trainstack.model.tags import launch_tags, with_name

# In the aws partition; callers that know their region pass docs.aws_managed_policy(name, partition).
SSM_CORE = "AmazonSSMManagedInstanceCore"
ECS_INSTANCE = "service-role/AmazonEC2ContainerServiceforEC2Role"
SSM_CORE_POLICY = docs.aws_managed_policy(SSM_CORE)
ECS_INSTANCE_POLICY = docs.aws_managed_policy(ECS_INSTANCE)


def root_snapshot_gib(mappings: Sequence, root_device: str) -> int | None:
    """Size of the AMI's root snapshot (what the root volume may not undercut), from `get_ami` mappings."""
    for m in mappings or []:
        name = m.get("device_name") if isinstance(m, dict) else getattr(m, "device_name", None)
        ebs = (m.get("ebs") if isinstance(m, dict) else getattr(m, "ebs", None)) or {}
        if name == root_device and str(ebs.get("volume_size", "")).isdigit():
            return int(ebs["volume_size"])
    return None


def check_root_volume(requested_gib: int, mappings: Sequence, root_device: str, ami_id: str) -> str:
    """The root device name, after refusing a root volume smaller than the AMI's snapshot (launches would fail)."""
    snapshot = root_snapshot_gib(mappings, root_device)
    if snapshot is not None and requested_gib < snapshot:
        raise pulumi.RunError(
            f"root_volume_gib = {requested_gib} (trainstack:gpu.rootVolumeGiB): AMI {ami_id} has a {snapshot} GiB "
            f"root snapshot, and EC2 refuses a smaller root volume (every launch would fail). Fix: set it to at "
            f"least {snapshot}."
        )
    return root_device


@dataclass(frozen=True)
class GpuAutoScalingGroupArgs:
    # The GPU instance types the group may launch (a mixed-instances policy: spot picks among them).
    instance_types: tuple[str, ...]
    # Subnets to launch in (every AZ they cover; with placement_group only the first).
    subnet_ids: pulumi.Input[Sequence[str]]
    # The security group of the nodes (e.g. TrainingNetwork.security_group: members talk to each other).
    security_group_id: pulumi.Input[str]
    # The node's user data (cloud-init), as text; base64-encoded here.
    user_data: pulumi.Input[str]
    # The most instances the group may run.
    max_size: int
    # A public SSM parameter holding the AMI id (e.g. the Deep Learning AMI's); give this or ami_id.
    ami_ssm_parameter: str | None = None
    # A pinned AMI id; give this or ami_ssm_parameter.
    ami_id: str | None = None
    # Instances at creation only; afterwards the autoscaler (or the job) owns it, and Pulumi ignores it.
    desired_capacity: int = 0
    # Instances that are always on-demand, before spot_percent applies to the rest.
    on_demand_base: int = 0
    # Percent of the capacity above on_demand_base that runs on spot (0-100).
    spot_percent: int = 100
    # Launch into one cluster placement group (one AZ, low-latency network for multi-node NCCL).
    placement_group: bool = False
    # The encrypted gp3 root volume, GiB (not below the AMI's root snapshot: checked when the AMI is known).
    root_volume_gib: int = 200
    # New instances are protected from scale-in (ECS managed termination protection needs it).
    protect_from_scale_in: bool = False
    # Managed policies on the node role (SSM Session Manager by default: shell access without SSH).
    managed_policy_arns: tuple[str, ...] = (SSM_CORE_POLICY,)
    # Tag the group `AmazonECSManaged` (an ECS capacity provider manages it).
    ecs_managed: bool = False
    # IMDS hop limit 1: only processes on the host (and host-network containers) reach the node role;
    # bridge-mode containers cannot. Raise it only for a bridge-mode container that must use the node role.
    metadata_hop_limit: int = 1
    # Tags on every resource, propagated to instances, volumes and network interfaces.
    tags: Mapping[str, str] = field(default_factory=dict)
    # A fixed group name (else autonamed) lets the node policy name the group before it exists.
    group_name: str | None = None
    # Inline node-role policy (JSON) that exists before the group launches its first node.
    node_policy: pulumi.Input[str] | None = None
    # Off for training: a rebalance recommendation replaces a spot instance that may never be
    # interrupted (killing its torchrun) and may briefly exceed MaxSize by up to 10 % (EC2 Auto Scaling
    # User Guide, docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-capacity-rebalancing.html).
    # Without it, a spot node is replaced only after its interruption, which the run survives from
    # its last checkpoint (the 2-minute notice comes either way).
    capacity_rebalance: bool = False

    def __post_init__(self):
        if not self.instance_types or isinstance(self.instance_types, str):
            raise ValueError(f"instance_types = {self.instance_types!r}: list at least one GPU instance type")
        for name in ("max_size", "desired_capacity", "on_demand_base", "spot_percent", "root_volume_gib"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} = {value!r}: must be a whole number")
        for name in ("placement_group", "protect_from_scale_in", "ecs_managed", "capacity_rebalance"):
            if not isinstance(getattr(self, name), bool):  # bool(Output(False)) is True: switches are plain bools
                raise ValueError(f"{name} = {getattr(self, name)!r}: must be True or False")
        if self.max_size < 1:
            raise ValueError(f"max_size = {self.max_size}: must be at least 1")
        if not 0 <= self.spot_percent <= 100:
            raise ValueError(f"spot_percent = {self.spot_percent}: must be between 0 and 100")
        if not 0 <= self.on_demand_base <= self.max_size:
            raise ValueError(
                f"on_demand_base = {self.on_demand_base}: must be between 0 and max_size ({self.max_size})"
            )
        if not 0 <= self.desired_capacity <= self.max_size:
            raise ValueError(
                f"desired_capacity = {self.desired_capacity}: must be between 0 and max_size ({self.max_size})"
            )
        if self.root_volume_gib < 1:
            raise ValueError(f"root_volume_gib = {self.root_volume_gib}: must be at least 1")
        if not 1 <= self.metadata_hop_limit <= 64:
            raise ValueError(f"metadata_hop_limit = {self.metadata_hop_limit}: must be between 1 and 64")
        if (self.ami_id is None) == (self.ami_ssm_parameter is None):
            raise ValueError(
                f"ami_id = {self.ami_id!r}, ami_ssm_parameter = {self.ami_ssm_parameter!r}: give exactly one of them"
            )
        if self.group_name is not None and (not 1 <= len(self.group_name) <= 255 or ":" in self.group_name):
            raise ValueError(f"group_name = {self.group_name!r}: must be 1-255 characters without ':'")


def asg_tags(tags: Mapping[str, str]) -> list[aws.autoscaling.GroupTagArgs]:
    return [aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True) for k, v in sorted(tags.items())]


class GpuAutoScalingGroup(pulumi.ComponentResource):
    role: aws.iam.Role
    instance_profile: aws.iam.InstanceProfile
    launch_template: aws.ec2.LaunchTemplate
    group: aws.autoscaling.Group
    placement_group: aws.ec2.PlacementGroup | None
    ami_id: pulumi.Output[str]

    def __init__(self, name: str, args: GpuAutoScalingGroupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:compute:GpuAutoScalingGroup", name, None, opts)
        self._name = name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)

        self.role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=json.dumps(docs.assume_role("ec2.amazonaws.com")),
            description="trainstack GPU node",
            tags=args.tags,
            opts=child,
        )
        for i, arn in enumerate(args.managed_policy_arns):
            aws.iam.RolePolicyAttachment(f"{name}-node-policy-{i}", role=self.role.name, policy_arn=arn, opts=child)
        self.instance_profile = aws.iam.InstanceProfile(
            f"{name}-node-profile", role=self.role.name, tags=args.tags, opts=child
        )

        self.ami_id = self._ami()
        # The root device name differs between AMIs (/dev/xvda, /dev/sda1): ask the AMI. Filtering by
        # image id needs no owner; a pinned Volta (R580) AMI may well be deprecated by now.
        ami = aws.ec2.get_ami_output(filters=[{"name": "image-id", "values": [self.ami_id]}], include_deprecated=True)
        root_device = pulumi.Output.all(ami.root_device_name, ami.block_device_mappings, self.ami_id).apply(
            lambda a: check_root_volume(args.root_volume_gib, a[1], a[0], a[2])
        )
        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description="trainstack GPU node",
            image_id=self.ami_id,
            update_default_version=True,
            user_data=pulumi.Output.from_input(args.user_data).apply(
                lambda text: base64.b64encode(text.encode()).decode()
            ),
            iam_instance_profile={"arn": self.instance_profile.arn},
            vpc_security_group_ids=[args.security_group_id],
            # No key_name: shell access goes through SSM Session Manager, audited and without open ports.
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": args.metadata_hop_limit,
                "instance_metadata_tags": "disabled",
            },
            block_device_mappings=[
                {
                    "device_name": root_device,
                    "ebs": {
                        "volume_size": args.root_volume_gib,
                        "volume_type": "gp3",
                        "encrypted": "true",
                        "delete_on_termination": "true",
                    },
                }
            ],
            # A node that shuts itself down is gone, not parked as a stopped (still billed for EBS) instance.
            instance_initiated_shutdown_behavior="terminate",
            tag_specifications=[
                {"resource_type": rt, "tags": with_name(launch_tags(args.tags), name)}
                for rt in ("instance", "volume", "network-interface")
            ],
            tags=args.tags,
            opts=child,
        )

        self.placement_group = None
        subnets: pulumi.Input[Sequence[str]] = args.subnet_ids
        if args.placement_group:
            self.placement_group = aws.ec2.PlacementGroup(f"{name}-pg", strategy="cluster", tags=args.tags, opts=child)
            # A cluster placement group lives in one AZ.
            subnets = pulumi.Output.from_input(args.subnet_ids).apply(lambda ids: ids[:1])

        policy = None
        if args.node_policy is not None:
            policy = aws.iam.RolePolicy(
                f"{name}-node-run-policy", role=self.role.id, policy=args.node_policy, opts=child
            )

        group_tags = dict(args.tags)
        if args.ecs_managed:
            group_tags["AmazonECSManaged"] = "true"  # ECS adds it anyway; declaring it avoids a diff
        self.group = aws.autoscaling.Group(
            f"{name}-asg",
            name=args.group_name,
            min_size=0,
            max_size=args.max_size,
            desired_capacity=args.desired_capacity,
            vpc_zone_identifiers=subnets,
            placement_group=self.placement_group.name if self.placement_group else None,
            capacity_rebalance=args.capacity_rebalance,
            protect_from_scale_in=args.protect_from_scale_in,
            # Do not block `pulumi up` until GPUs are in service (capacity can take a while).
            wait_for_capacity_timeout="0",
            # `pulumi destroy` must not hang on instances still running a job.
            force_delete=True,
            mixed_instances_policy={
                "instances_distribution": {
                    "on_demand_base_capacity": args.on_demand_base,
                    "on_demand_percentage_above_base_capacity": 100 - args.spot_percent,
                    "on_demand_allocation_strategy": "lowest-price",
                    "spot_allocation_strategy": "price-capacity-optimized",
                },
                "launch_template": {
                    "launch_template_specification": {
                        "launch_template_id": self.launch_template.id,
                        "version": "$Latest",
                    },
                    "overrides": [{"instance_type": t} for t in args.instance_types],
                },
            },
            tags=asg_tags(group_tags),
            # A fixed name cannot exist twice: replace by deleting first. Nodes boot with their policy.
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=["desiredCapacity"],
                delete_before_replace=args.group_name is not None,
                depends_on=[policy] if policy else None,
            ),
        )

        self.register_outputs(
            {"groupName": self.group.name, "groupArn": self.group.arn, "roleArn": self.role.arn, "amiId": self.ami_id}
        )

    def _ami(self) -> pulumi.Output[str]:
        if self._args.ami_id:
            return pulumi.Output.from_input(self._args.ami_id)
        return aws.ssm.get_parameter_output(name=self._args.ami_ssm_parameter).value
