"""ecs: an ECS cluster whose capacity provider is a GPU Auto Scaling group at zero; `trainstack run` starts the
training task (RunTask) once `up` is done and ECS managed scaling brings an instance up for it."""

from __future__ import annotations

from dataclasses import dataclass

from trainstack.backends import (
    GPU_BOOT,
    AmiRow,
    AmiSource,
    Backend,
    Capabilities,
    CommandRule,
    IdleCost,
    Phase,
    SpotMode,
    StackOutputs,
)

# ECS-optimized AL2023 GPU AMI: amazon-ecs-ami ships the proprietary, open and GRID kernel modules and
# picks one at boot (`scripts/al2023/gpu/nvidia-kmod-load.sh`, since commit ff713ac, 2025-10-03: P3
# `1db1:1212`, P3dn `1db5:1249` and G3 load `nvidia-proprietary`, everything else the open module); the
# driver major is pinned to 580 (`variables.pkr.hcl` `nvidia_driver_major_al2023`, PR #685, 2026-04-30;
# `NVIDIA_DRIVER_VERSION` 580.159.03 at release 20260820).
ECS_AL2023_GPU = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
_NAME = "ECS-optimized Amazon Linux 2023 GPU AMI"
_SUPPORT = "Amazon Linux 2023: supported"
_EVIDENCE = (
    "https://github.com/aws/amazon-ecs-ami/blob/main/scripts/al2023/gpu/nvidia-kmod-load.sh "
    "+ variables.pkr.hcl nvidia_driver_major_al2023 = 580"
)


def _row(architecture: str, module: str) -> AmiRow:
    return AmiRow("ecs", architecture, ECS_AL2023_GPU, _NAME, module, 580, _SUPPORT, _EVIDENCE)


@dataclass(frozen=True)
class EcsOutputs(StackOutputs):
    """What an ecs cluster stack exports besides `ClusterOutputs` (trainstack/programs/backends/ecs.py)."""

    cluster_name: str  # the ECS cluster RunTask starts the training task on
    cluster_arn: str
    capacity_provider_name: str  # the GPU group's capacity provider (RunTask's capacityProviderStrategy)
    task_definition_arn: str  # the training task
    container_name: str  # its one container (exit code, awslogs stream `training/<container>/<task id>`)
    log_group_name: str
    task_role_arn: str  # the training container's access to the data lake
    execution_role_arn: str  # ECS pulls the image and writes the logs with it
    node_role_arn: str  # the GPU instances' role
    group_name: str  # the GPU Auto Scaling group behind the capacity provider
    group_arn: str
    ami_id: str
    run_task_command: str  # the AWS CLI call that starts one run by hand


BACKEND = Backend(
    name="ecs",
    summary="ECS cluster on a GPU Auto Scaling group at zero (managed scaling); one task per run",
    capabilities=Capabilities(
        multi_node=False,  # an ECS task runs on one instance; ECS offers no peer discovery for torchrun
        spot=SpotMode.MIXED,
        elastic_restart=False,
        placement_group=True,
        ami=AmiSource.TABLE,
        command=CommandRule.NEVER,
    ),
    program="trainstack.programs.backends.ecs",
    config_checks="trainstack.model.config.ecs:check",
    follower="trainstack.run.follow.ecs:EcsFollower",
    job_resources=("aws:ecs/taskDefinition:TaskDefinition",),
    started_by=None,  # `trainstack run` (or the runTaskCommand output) starts the task after `up`
    after_up=(
        Phase(
            "capacity provider scale-out",
            120,
            "ECS managed scaling: the CapacityProviderReservation alarm fires after ~1-2 one-minute datapoints",
        ),
        GPU_BOOT,
        Phase("ECS agent registration", 30, "the instance joins the cluster; the pending task is placed"),
    ),
    outputs=EcsOutputs,
    idle=IdleCost.NOTHING,
    idle_note="Idle: the GPU group sits at zero instances; the ECS cluster, schedules and roles cost nothing.",
    ami_rows=(
        _row("Volta", "proprietary"),  # the kmod loader picks nvidia-proprietary for P3/P3dn, R580 pinned
        _row("Turing", "open"),  # ... and the open module for every Turing-or-newer card
        _row("Ampere", "open"),
        _row("Ada Lovelace", "open"),
        _row("Hopper", "open"),
    ),
)
