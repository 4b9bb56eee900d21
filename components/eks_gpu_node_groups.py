"""EksGpuNodeGroups: one EKS managed node group per GPU instance type, idling at zero.

Each group has its own launch template (IMDSv2 with hop limit 1, so pods cannot borrow the node
role and must use Pod Identity; an encrypted gp3 root volume; tags that reach the instances,
volumes and network interfaces, which node group tags do not), starts at zero, carries the GPU
and per-stack taints and the family label, and is described to Cluster Autoscaler by
node-template tags on its Auto Scaling group so that it can scale up from zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from trainstack.model import eks_request as req
from trainstack.model.tags import launch_tags, with_name

# The volume the node's images and containers live on.
ROOT_DEVICE = {"AL2023_x86_64_NVIDIA": "/dev/xvda", "BOTTLEROCKET_x86_64_NVIDIA": "/dev/xvdb"}


@dataclass(frozen=True)
class EksGpuNodeGroupsArgs:
    # The EKS cluster the groups join.
    cluster_name: pulumi.Input[str]
    # The cluster's own security group (EKS adds it only when the launch template names none).
    cluster_security_group_id: pulumi.Input[str]
    # The nodes' role (e.g. EksControlPlane.node_role.arn, or `node_role(...)` for a shared cluster).
    node_role_arn: pulumi.Input[str]
    # Subnets of the nodes (with placement_group only the first).
    subnet_ids: pulumi.Input[Sequence[str]]
    # The cluster-members security group (NCCL between nodes; e.g. TrainingNetwork.security_group).
    security_group_id: pulumi.Input[str]
    # One spec per group: `trainstack.model.eks_request.gpu_node_groups(["g5.xlarge"], stack="dev")`.
    specs: tuple[req.NodeGroupSpec, ...]
    # AL2023_x86_64_NVIDIA or BOTTLEROCKET_x86_64_NVIDIA.
    ami_type: str = "AL2023_x86_64_NVIDIA"
    # A pinned AMI release; None: the latest for the cluster's version.
    release_version: str | None = None
    # The encrypted gp3 root volume, GiB.
    root_volume_gib: int = 200
    # One cluster placement group for every group (one AZ; multi-node NCCL).
    placement_group: bool = False
    # What the node groups must wait for (the node role's policies, the CNI add-on).
    depends_on: Sequence[pulumi.Resource] = ()
    # Tags on every AWS resource (and the nodes' instances, volumes and network interfaces).
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.specs:
            raise ValueError("specs is empty: EksGpuNodeGroups needs at least one node group spec")
        if self.ami_type not in ROOT_DEVICE:
            raise ValueError(f"ami_type = {self.ami_type!r}: must be one of {', '.join(ROOT_DEVICE)}")
        if (
            isinstance(self.root_volume_gib, bool)
            or not isinstance(self.root_volume_gib, int)
            or self.root_volume_gib < 1
        ):
            raise ValueError(f"root_volume_gib = {self.root_volume_gib!r}: must be a whole number of GiB, at least 1")
        if not isinstance(self.placement_group, bool):  # bool(Output(False)) is True: switches are plain bools
            raise ValueError(f"placement_group = {self.placement_group!r}: must be True or False")


class EksGpuNodeGroups(pulumi.ComponentResource):
    groups: dict[str, aws.eks.NodeGroup]  # by instance type
    launch_templates: dict[str, aws.ec2.LaunchTemplate]
    asg_names: dict[str, pulumi.Output[str]]  # each group's Auto Scaling group (EKS names it)
    placement_group: aws.ec2.PlacementGroup | None

    def __init__(self, name: str, args: EksGpuNodeGroupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:eks:EksGpuNodeGroups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subnets: pulumi.Input[Sequence[str]] = args.subnet_ids
        self.placement_group = None
        if args.placement_group:
            self.placement_group = aws.ec2.PlacementGroup(f"{name}-pg", strategy="cluster", tags=args.tags, opts=child)
            # A cluster placement group lives in one AZ.
            subnets = pulumi.Output.from_input(args.subnet_ids).apply(lambda ids: ids[:1])

        self.groups, self.launch_templates, self.asg_names = {}, {}, {}
        for spec in args.specs:
            lt = aws.ec2.LaunchTemplate(
                f"{name}-{spec.key}-lt",
                description=f"trainstack EKS GPU node ({spec.instance_type})",
                update_default_version=True,
                # With security groups in the template EKS no longer adds the cluster group itself.
                vpc_security_group_ids=[args.cluster_security_group_id, args.security_group_id],
                metadata_options={
                    "http_endpoint": "enabled",
                    "http_tokens": "required",
                    "http_put_response_hop_limit": 1,
                    "instance_metadata_tags": "disabled",
                },
                block_device_mappings=[
                    {
                        "device_name": ROOT_DEVICE[args.ami_type],
                        "ebs": {
                            "volume_size": args.root_volume_gib,
                            "volume_type": "gp3",
                            "encrypted": "true",
                            "delete_on_termination": "true",
                        },
                    }
                ],
                placement={"group_name": self.placement_group.name} if self.placement_group else None,
                tag_specifications=[
                    {"resource_type": rt, "tags": with_name(launch_tags(args.tags), f"{name}-{spec.key}")}
                    for rt in ("instance", "volume", "network-interface")
                ],
                tags=args.tags,
                opts=child,
            )
            group = aws.eks.NodeGroup(
                f"{name}-{spec.key}",
                cluster_name=args.cluster_name,
                node_role_arn=args.node_role_arn,
                subnet_ids=subnets,
                ami_type=args.ami_type,
                release_version=args.release_version,
                instance_types=[spec.instance_type],
                capacity_type=spec.capacity_type,
                scaling_config={
                    "min_size": spec.min_size,
                    "max_size": spec.max_size,
                    "desired_size": spec.desired_size,
                },
                labels=dict(spec.labels),
                taints=[dict(t) for t in spec.taints],
                launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
                update_config={"max_unavailable": 1},
                tags=args.tags,
                # Cluster Autoscaler owns the size between min and max; a re-`up` must not reset it.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(args.depends_on), ignore_changes=["scalingConfig.desiredSize"]
                ),
            )
            asg_name = group.resources.apply(lambda r: r[0].autoscaling_groups[0].name)
            for i, (key, value) in enumerate(sorted(spec.autoscaler_tags().items())):
                aws.autoscaling.Tag(
                    f"{name}-{spec.key}-ca-{i}",
                    autoscaling_group_name=asg_name,
                    tag={"key": key, "value": value, "propagate_at_launch": False},
                    opts=pulumi.ResourceOptions(parent=self),
                )
            # EKS sets this one itself; declaring it (same value) makes it Pulumi's, so the `up` after an
            # expiry puts it back: the auto-teardown deletes it to take the group away from Cluster
            # Autoscaler (eks_request.release_from_autoscaler_request; a refreshed missing tag is re-created,
            # terraform-provider-aws autoscaling/group_tag.go resourceGroupTagRead).
            aws.autoscaling.Tag(
                f"{name}-{spec.key}-ca-owner",
                autoscaling_group_name=asg_name,
                tag={
                    "key": pulumi.Output.from_input(args.cluster_name).apply(req.autoscaler_owner_tag),
                    "value": req.CA_OWNER_VALUE,
                    "propagate_at_launch": False,
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.asg_names[spec.instance_type] = asg_name
            self.groups[spec.instance_type] = group
            self.launch_templates[spec.instance_type] = lt

        self.register_outputs({"nodeGroupNames": [g.node_group_name for g in self.groups.values()]})
