"""The self-managed backends' (ec2, ecs) mapping of a cluster stack's config onto their components' flat args."""

from __future__ import annotations

from typing import Any, TypeVar

from trainstack.components.training_cluster import TrainingClusterArgs
from trainstack.model import amis
from trainstack.programs.backends import ClusterContext

A = TypeVar("A", bound=TrainingClusterArgs)


def training_cluster_args(ctx: ClusterContext, cls: type[A], **own: Any) -> A:
    """The fields every self-managed cluster shares, mapped from the config, plus the backend's `own` fields."""
    c = ctx.cluster
    gpu, job = c.gpu, c.job
    return cls(
        owner=c.owner,
        stack=ctx.stack,
        region=ctx.region,
        account_id=ctx.account_id,
        subnet_ids=ctx.subnet_ids,
        security_group_id=ctx.security_group_id,
        locations=ctx.locations,
        kms_key_arn=ctx.kms_key_arn,
        instance_types=gpu.instance_types,
        max_instances=gpu.max_instances,
        on_demand_base=gpu.on_demand_base,
        spot_percent=gpu.spot_percent,
        placement_group=gpu.placement_group,
        root_volume_gib=gpu.root_volume_gib,
        # The (backend, GPU architecture) table; config has refused pairings it has no AMI for.
        ami_id=gpu.ami_id,
        ami_ssm_parameter=None if gpu.ami_id else amis.parameter_for(c.backend, [a.name for a in gpu.architectures]),
        image=job.image,
        command=job.command,
        environment=job.environment,
        nodes=job.nodes,
        gpus_per_node=job.gpus_per_node,
        max_runtime_seconds=c.max_runtime_seconds,
        code_uri=ctx.code_uri,
        log_retention_days=c.log_retention_days,
        tags=ctx.tags,
        **own,
    )
