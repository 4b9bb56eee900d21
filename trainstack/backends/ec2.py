"""ec2: GPU nodes on the Deep Learning AMI that find each other, train with elastic torchrun and scale their
own group to zero (scripts/ec2_bootstrap.py); creating the group starts the run."""

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

# DLAMI "Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023)": open module, driver 595;
# supported instances G4dn, G5, G6, Gr6, G6e, G6f, G7, P4d, P4de, P5, P5e, P5en, P6 (no P3). The DLAMI
# follows NVIDIA's current branch without pinning it, so the rows name no branch.
# No Volta row: the proprietary-driver DLAMI (AL2) dropped P3 in version 73.1 (2026-06-05,
# https://docs.aws.amazon.com/dlami/latest/devguide/aws-deep-learning-ami-base-aml2-2026-06-05.html)
# and every AL2023 DLAMI loads the open module.
DLAMI_BASE_OSS_AL2023 = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"
)
_NAME = "Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023)"
_SUPPORT = "Amazon Linux 2023: supported"
_EVIDENCE = "https://docs.aws.amazon.com/dlami/latest/devguide/aws-deep-learning-ami-gpubaseoss-al2023-2026-09-04.html"


def _row(architecture: str) -> AmiRow:
    return AmiRow("ec2", architecture, DLAMI_BASE_OSS_AL2023, _NAME, "open", None, _SUPPORT, _EVIDENCE)


@dataclass(frozen=True)
class Ec2Outputs(StackOutputs):
    """What an ec2 cluster stack exports besides `ClusterOutputs` (trainstack/programs/backends/ec2.py)."""

    group_name: str  # the GPU Auto Scaling group (fixed name): the job's liveness, `stop` scales it to zero
    group_arn: str
    node_role_arn: str  # the GPU nodes' role
    log_group_name: str  # CloudWatch Logs group of the nodes' `node-<rank>-<host>` streams
    ami_id: str  # the AMI the launch template boots
    launch_template_id: str
    success_marker_uri: str  # s3://.../_SUCCESS: the nodes write it when training succeeded


BACKEND = Backend(
    name="ec2",
    summary="GPU Auto Scaling group on the Deep Learning AMI; nodes run elastic torchrun and scale themselves to zero",
    capabilities=Capabilities(
        multi_node=True,
        spot=SpotMode.MIXED,
        elastic_restart=True,  # a spot replacement joins in the lost node's slot; torchrun restarts from the checkpoint
        placement_group=True,
        ami=AmiSource.TABLE,
        command=CommandRule.ALWAYS,  # torchrun starts it on every node
    ),
    program="trainstack.programs.backends.ec2",
    follower="trainstack.run.follow.ec2:Ec2Follower",
    job_resources=("aws:autoscaling/group:Group",),
    started_by="aws:autoscaling/group:Group",  # created with desired capacity = nodes: instances launch at once
    after_up=(
        GPU_BOOT,
        Phase("bootstrap and peer discovery", 60, "user data: workdir download, ECR login, leader election by tags"),
    ),
    outputs=Ec2Outputs,
    idle=IdleCost.NOTHING,
    idle_note="Idle: the GPU group sits at zero instances; the launch template, schedules and roles cost nothing.",
    ami_rows=tuple(_row(a) for a in ("Turing", "Ampere", "Ada Lovelace", "Hopper")),
)
