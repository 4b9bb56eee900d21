"""eks: GPU managed node groups at zero, scaled up by Cluster Autoscaler for one Indexed training Job, on a
control plane of the stack's own (`eks.mode: dedicated`) or the platform's (`eks.mode: shared`)."""

from __future__ import annotations

from trainstack.backends import GPU_BOOT, AmiSource, Backend, Capabilities, CommandRule, Phase, SpotMode

BACKEND = Backend(
    name="eks",
    summary="EKS managed node groups at zero + Cluster Autoscaler; the run is an Indexed Job",
    capabilities=Capabilities(
        multi_node=True,
        spot=SpotMode.ALL_OR_NOTHING,  # a managed node group is SPOT or ON_DEMAND
        elastic_restart=False,
        placement_group=True,
        ami=AmiSource.NODE_GROUP,
        command=CommandRule.DISTRIBUTED,
    ),
    program="trainstack.programs.backends.eks",
    config_checks="trainstack.model.config.eks:check",
    follower="trainstack.run.follow.eks:EksFollower",
    job_resources=("kubernetes:batch/v1:Job",),
    started_by=None,  # the Job is created by `up`; Cluster Autoscaler reacts to its pending pods
    after_up=(
        Phase("cluster autoscaler scale-up", 60, "Cluster Autoscaler scan interval 10 s plus the node group update"),
        GPU_BOOT,
        Phase("node join and device plugin", 60, "kubelet registers; the NVIDIA device plugin advertises the GPUs"),
    ),
)
