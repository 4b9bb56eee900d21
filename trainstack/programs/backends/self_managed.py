"""What the self-managed backends (ec2, ecs) build their cluster arguments from."""

from __future__ import annotations

from typing import TypeVar

from trainstack.components.training_cluster import TrainingClusterArgs
from trainstack.programs.backends import ClusterContext

A = TypeVar("A", bound=TrainingClusterArgs)


def training_cluster_args(ctx: ClusterContext, cls: type[A]) -> A:
    c = ctx.cluster
    return cls(
        owner=c.owner,
        stack=ctx.stack,
        region=ctx.region,
        gpu=c.gpu,
        job=c.job,
        subnet_ids=ctx.subnet_ids,
        security_group_id=ctx.security_group_id,
        locations=ctx.locations,
        kms_key_arn=ctx.kms_key_arn,
        max_runtime_seconds=c.max_runtime_seconds,
        log_retention_days=c.log_retention_days,
        tags=ctx.tags,
        code_uri=ctx.code_uri,
        account_id=ctx.account_id,
    )
