"""The ec2 backend: GPU nodes on the Deep Learning AMI that train with torchrun and scale themselves to zero."""

from __future__ import annotations

from trainstack.backends.ec2 import Ec2Outputs
from trainstack.components import auto_teardown as teardown
from trainstack.components.ec2_training_cluster import Ec2TrainingCluster, Ec2TrainingClusterArgs
from trainstack.programs.backends import BackendResult, ClusterContext
from trainstack.programs.backends.self_managed import training_cluster_args


def build(ctx: ClusterContext) -> BackendResult:
    job = ctx.cluster.job
    args = training_cluster_args(
        ctx, Ec2TrainingClusterArgs, master_port=job.master_port, peer_timeout_minutes=job.peer_timeout_minutes
    )
    ec2 = Ec2TrainingCluster("training", args)
    group = ec2.capacity.group
    return BackendResult(
        outputs=Ec2Outputs.to_outputs(
            group_name=group.name,
            group_arn=group.arn,
            node_role_arn=ec2.capacity.role.arn,
            log_group_name=ec2.log_group.name,
            ami_id=ec2.capacity.ami_id,
            launch_template_id=ec2.capacity.launch_template.id,
            success_marker_uri=ctx.locations.apply(lambda l: f"{l.artifact_uri}_SUCCESS"),
        ),
        teardown=(teardown.scale_group_to_zero(group.name, group.arn),),
    )
