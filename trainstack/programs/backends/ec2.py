"""The ec2 backend: GPU nodes on the Deep Learning AMI that train with torchrun and scale themselves to zero."""

from __future__ import annotations

from trainstack.components import auto_teardown as teardown
from trainstack.components.ec2_training_cluster import Ec2TrainingCluster, Ec2TrainingClusterArgs
from trainstack.programs.backends import BackendResult, ClusterContext
from trainstack.programs.backends.self_managed import training_cluster_args


def build(ctx: ClusterContext) -> BackendResult:
    ec2 = Ec2TrainingCluster("training", training_cluster_args(ctx, Ec2TrainingClusterArgs))
    group = ec2.capacity.group
    return BackendResult(
        outputs={
            "groupName": group.name,
            "groupArn": group.arn,
            "nodeRoleArn": ec2.capacity.role.arn,
            "logGroupName": ec2.log_group.name,
            "amiId": ec2.capacity.ami_id,
            "launchTemplateId": ec2.capacity.launch_template.id,
            "successMarkerUri": ctx.locations.apply(lambda l: f"{l.artifact_uri}_SUCCESS"),
        },
        teardown=(teardown.scale_group_to_zero(group.name, group.arn),),
    )
