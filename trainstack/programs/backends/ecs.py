"""The ecs backend: an ECS cluster whose capacity provider is a GPU Auto Scaling group at zero."""

from __future__ import annotations

from trainstack.backends.ecs import EcsOutputs
from trainstack.components import auto_teardown as teardown
from trainstack.components.ecs_training_cluster import CONTAINER_NAME, EcsTrainingCluster, EcsTrainingClusterArgs
from trainstack.programs.backends import BackendResult, ClusterContext
from trainstack.programs.backends.self_managed import training_cluster_args


def build(ctx: ClusterContext) -> BackendResult:
    args = training_cluster_args(ctx, EcsTrainingClusterArgs, family=ctx.cluster.gpu.family)
    ecs = EcsTrainingCluster("training", args)
    group = ecs.capacity.group
    return BackendResult(
        outputs=EcsOutputs.to_outputs(
            cluster_name=ecs.cluster.name,
            cluster_arn=ecs.cluster.arn,
            capacity_provider_name=ecs.capacity_provider.name,
            task_definition_arn=ecs.task_definition.arn,
            container_name=CONTAINER_NAME,
            log_group_name=ecs.log_group.name,
            task_role_arn=ecs.task_role.arn,
            execution_role_arn=ecs.execution_role.arn,
            node_role_arn=ecs.capacity.role.arn,
            group_name=group.name,
            group_arn=group.arn,
            ami_id=ecs.capacity.ami_id,
            run_task_command=ecs.run_task_command(),
        ),
        teardown=(
            teardown.scale_group_to_zero(group.name, group.arn),
            teardown.shut_down_group_instances(group.name, ctx.region, ctx.account_id),
        ),
    )
