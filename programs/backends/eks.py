"""The eks backend: GPU managed node groups at zero, scaled up by Cluster Autoscaler for one
Indexed training Job, on a control plane of this stack's own (`eks.mode: dedicated`) or the
platform's (`eks.mode: shared`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import auto_teardown as teardown
from components.eks_cluster_addons import EksClusterAddons, EksClusterAddonsArgs
from components.eks_control_plane import EksControlPlane, EksControlPlaneArgs, kubernetes_provider, node_role
from components.eks_gpu_node_groups import EksGpuNodeGroups, EksGpuNodeGroupsArgs
from components.eks_training_job import EksTrainingJob, EksTrainingJobArgs
from trainstack import eks_request as req
from trainstack.config import eks_support_status

from . import BackendResult, ClusterContext

PLATFORM_EKS_KEYS = ("clusterName", "endpoint", "caData", "clusterSecurityGroupId", "version")


class _Plane:
    """What the rest of the backend needs from a control plane, dedicated or shared."""

    def __init__(self, cluster_name, cluster_security_group_id, node_role_arn, provider: k8s.Provider,
                 kubeconfig, version, *, node_waits: list[pulumi.Resource], job_waits: list[pulumi.Resource]):
        self.cluster_name = cluster_name
        self.cluster_security_group_id = cluster_security_group_id
        self.node_role_arn = node_role_arn
        self.provider = provider
        self.kubeconfig = kubeconfig
        self.version = version
        self.node_waits = node_waits  # what the GPU node groups wait for
        self.job_waits = job_waits  # what the Job waits for besides its node groups and identity


def _dedicated(ctx: ClusterContext) -> tuple[_Plane, EksControlPlane]:
    eks = ctx.cluster.eks
    extended = eks_support_status(eks.version, dt.datetime.now(dt.timezone.utc).date()) == "extended"
    cp = EksControlPlane("eks", EksControlPlaneArgs(
        version=eks.version, subnet_ids=ctx.subnet_ids, security_group_id=ctx.security_group_id, region=ctx.region,
        public_access_cidrs=eks.public_access_cidrs, system_instance_type=eks.system_instance_type,
        extended_support=extended, tags=ctx.tags))
    addons = EksClusterAddons("eks-addons", EksClusterAddonsArgs(
        cluster_name=cp.cluster.name, version=eks.version, region=ctx.region, account_id=ctx.account_id,
        tags=ctx.tags), provider=cp.provider)
    return _Plane(cp.cluster.name, cp.cluster.vpc_config.cluster_security_group_id, cp.node_role.arn, cp.provider,
                  cp.kubeconfig, pulumi.Output.from_input(eks.version),
                  node_waits=[cp.system_nodes], job_waits=[addons.device_plugin]), cp


def _platform_eks(ctx: ClusterContext) -> pulumi.Output[dict[str, Any]]:
    c = ctx.cluster

    def check(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or any(not value.get(k) for k in PLATFORM_EKS_KEYS):
            raise ValueError(
                f"trainstack:eks.mode = shared: platform stack {c.platform_stack} exports no shared EKS cluster "
                "(output `eks`). Fix: set `trainstack:eks: {sharedCluster: true}` in the platform stack and run "
                "`pulumi up` there, or use eks.mode: dedicated")
        release = c.eks.release_version
        if release and c.eks.ami_type.startswith("AL2023") and not release.startswith(f"{value['version']}."):
            raise ValueError(f"trainstack:eks.releaseVersion = {release}: the shared cluster of {c.platform_stack} "
                             f"runs Kubernetes {value['version']}. Fix: use a {value['version']}.x-YYYYMMDD release")
        return value

    return ctx.platform.get_output("eks").apply(check)


def _shared(ctx: ClusterContext) -> _Plane:
    shared = _platform_eks(ctx)
    name = shared.apply(lambda e: e["clusterName"])
    provider, kubeconfig = kubernetes_provider(
        "eks-k8s", name, shared.apply(lambda e: e["endpoint"]), shared.apply(lambda e: e["caData"]), ctx.region,
        pulumi.ResourceOptions())
    role, policies = node_role("eks", ctx.tags, None)
    return _Plane(name, shared.apply(lambda e: e["clusterSecurityGroupId"]), role.arn, provider, kubeconfig,
                  shared.apply(lambda e: e["version"]), node_waits=list(policies), job_waits=[])


def build(ctx: ClusterContext) -> BackendResult:
    c = ctx.cluster
    eks = c.eks
    cp = None
    if eks.mode == "shared":
        plane = _shared(ctx)
    else:
        plane, cp = _dedicated(ctx)

    specs = req.node_group_specs(c, ctx.stack)
    gpu = EksGpuNodeGroups("gpu", EksGpuNodeGroupsArgs(
        cluster_name=plane.cluster_name, cluster_security_group_id=plane.cluster_security_group_id,
        node_role_arn=plane.node_role_arn, subnet_ids=ctx.subnet_ids, security_group_id=ctx.security_group_id,
        specs=tuple(specs), ami_type=eks.ami_type, release_version=eks.release_version,
        root_volume_gib=c.gpu.root_volume_gib, placement_group=c.gpu.placement_group,
        depends_on=plane.node_waits, tags=ctx.tags))
    job = EksTrainingJob("training", EksTrainingJobArgs(
        cluster=c, stack=ctx.stack, region=ctx.region, cluster_name=plane.cluster_name, locations=ctx.locations,
        kms_key_arn=ctx.kms_key_arn, depends_on=[*gpu.groups.values(), *plane.job_waits], tags=ctx.tags),
        provider=plane.provider)

    stops = [teardown.NodeGroupToStop(s.key, plane.cluster_name, gpu.groups[s.instance_type].node_group_name,
                                      gpu.groups[s.instance_type].arn, s.max_size) for s in specs]
    if cp is not None:  # dedicated: stopping the system group stops Cluster Autoscaler itself
        stops.append(teardown.NodeGroupToStop("system", plane.cluster_name, cp.system_nodes.node_group_name,
                                              cp.system_nodes.arn, 1, taint=False))
    namespace = req.namespace_name(ctx.stack)
    return BackendResult(
        outputs={
            "eksMode": eks.mode,
            "clusterName": plane.cluster_name,
            "kubernetesVersion": plane.version,
            "namespace": namespace,
            "jobName": req.JOB_NAME,
            "nodeGroupNames": [g.node_group_name for g in gpu.groups.values()],
            "trainingRoleArn": job.role.arn,
            "kubeconfig": plane.kubeconfig,
            "updateKubeconfigCommand": pulumi.Output.format(
                "aws eks update-kubeconfig --name {0} --region {1}", plane.cluster_name, ctx.region),
            "logsCommand": EksTrainingJob.logs_command(namespace, c.job.nodes),
        },
        teardown=teardown.scale_node_groups_to_zero(stops))
