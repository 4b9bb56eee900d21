"""The ecs backend: an ECS cluster whose capacity provider is a GPU Auto Scaling group at zero."""

from __future__ import annotations

from trainstack.components import auto_teardown as teardown
from trainstack.components.ecs_training_cluster import EcsTrainingCluster, EcsTrainingClusterArgs
from trainstack.programs.backends import BackendResult, ClusterContext
from trainstack.programs.backends.self_managed import training_cluster_args


def build(ctx: ClusterContext) -> BackendResult:
    ecs = EcsTrainingCluster("training", training_cluster_args(ctx, EcsTrainingClusterArgs))
    group = ecs.capacity.group
    return BackendResult(
        outputs={
            "clusterName": ecs.cluster.name,
            "clusterArn": ecs.cluster.arn,
            "capacityProviderName": ecs.capacity_provider.name,
            "taskDefinitionArn": ecs.task_definition.arn,
            "containerName": "training",
            "logGroupName": ecs.log_group.name,
            "taskRoleArn": ecs.task_role.arn,
            "executionRoleArn": ecs.execution_role.arn,
            "nodeRoleArn": ecs.capacity.role.arn,
            "groupName": group.name,
            "groupArn": group.arn,
            "amiId": ecs.capacity.ami_id,
            "runTaskCommand": ecs.run_task_command(),
        },
        teardown=(
            teardown.scale_group_to_zero(group.name, group.arn),
            teardown.shut_down_group_instances(group.name, ctx.region, ctx.account_id),
        ),
    )
