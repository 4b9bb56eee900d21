"""eks: GPU managed node groups at zero, scaled up by Cluster Autoscaler for one Indexed training Job, on a
control plane of the stack's own (`eks.mode: dedicated`) or the platform's (`eks.mode: shared`)."""

from __future__ import annotations

from dataclasses import dataclass

from trainstack.backends import (
    GPU_BOOT,
    AmiSource,
    Backend,
    Capabilities,
    CommandRule,
    IdleCost,
    Phase,
    SpotMode,
    StackOutputs,
)


@dataclass(frozen=True)
class EksOutputs(StackOutputs):
    """What an eks cluster stack exports besides `ClusterOutputs` (trainstack/programs/backends/eks.py)."""

    eks_mode: str  # eks.mode: dedicated (the stack's own control plane) or shared (the platform's)
    cluster_name: str  # the EKS cluster the Job runs on
    kubernetes_version: str
    namespace: str  # the stack's namespace
    job_name: str  # the Indexed Job that is the run
    node_group_names: list[str]  # the GPU managed node groups (stalled-run diagnosis)
    training_role_arn: str  # the pods' role (EKS Pod Identity)
    kubeconfig: str  # JSON kubeconfig (a secret output); the follower falls back to DescribeCluster without it
    update_kubeconfig_command: str
    logs_command: str  # the kubectl call that follows the Job's logs
    # eks.idleStopMinutes (dedicated mode): the alarm whose ALARM state deletes the cluster, and what it runs.
    idle_stop_minutes: int | None = None
    idle_stop_alarm_name: str | None = None
    idle_stop_state_machine_arn: str | None = None


BACKEND = Backend(
    name="eks",
    summary="EKS managed node groups at zero + Cluster Autoscaler; the run is an Indexed Job",
    capabilities=Capabilities(
        multi_node=True,
        spot=SpotMode.ALL_OR_NOTHING,  # a managed node group is SPOT or ON_DEMAND
        # An evicted pod is re-created in its index and rejoins the elastic c10d rendezvous; the run resumes
        # from its checkpoint (eks_request.torchrun_args, pod_failure_rules, eks_launcher).
        elastic_restart=True,
        placement_group=True,
        ami=AmiSource.NODE_GROUP,
        command=CommandRule.DISTRIBUTED,
    ),
    program="trainstack.programs.backends.eks",
    config_checks="trainstack.model.config.eks:check",
    follower="trainstack.run.follow.eks:EksFollower",
    job_resources=("kubernetes:batch/v1:Job",),
    started_by=None,  # the Job is created by `up`; Cluster Autoscaler reacts to its pending pods
    outputs=EksOutputs,
    idle=IdleCost.CONTROL_PLANE,  # dedicated: a control plane and a system node until `destroy` or the idle stop
    idle_note=(  # eks.mode: shared
        "Idle: the GPU node groups sit at zero; the shared control plane is billed to the platform "
        "stack, not to this one."
    ),
    after_up=(
        Phase("cluster autoscaler scale-up", 60, "Cluster Autoscaler scan interval 10 s plus the node group update"),
        GPU_BOOT,
        Phase("node join and device plugin", 60, "kubelet registers; the NVIDIA device plugin advertises the GPUs"),
    ),
)
