"""EksTrainingCluster: one EKS training run, on a control plane of its own or a shared one.

Dedicated (no `shared` argument): an `EksControlPlane` and its `EksClusterAddons` (device plugin,
Cluster Autoscaler) as children. Shared: the cluster named by `shared` (a platform's, whose
add-ons already run there) and a node role of its own. Either way it adds `EksGpuNodeGroups`
(at zero) and the `EksTrainingJob`, and says which node groups the auto-teardown must stop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from trainstack.components.auto_teardown import NodeGroupToStop
from trainstack.components.eks_cluster_addons import EksClusterAddons, EksClusterAddonsArgs
from trainstack.components.eks_control_plane import EksControlPlane, EksControlPlaneArgs, kubernetes_provider, node_role
from trainstack.components.eks_gpu_node_groups import EksGpuNodeGroups, EksGpuNodeGroupsArgs
from trainstack.components.eks_training_job import EksTrainingJob, EksTrainingJobArgs
from trainstack.model import eks_request as req
from trainstack.model import iam_documents as docs
from trainstack.model.config import ClusterConfig
from trainstack.model.run_locations import RunLocations


@dataclass(frozen=True)
class SharedControlPlane:
    """An existing cluster (a platform's `eks` output) with Cluster Autoscaler and the device plugin."""

    cluster_name: pulumi.Input[str]
    endpoint: pulumi.Input[str]
    ca_data: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]
    version: pulumi.Input[str]


@dataclass(frozen=True)
class EksTrainingClusterArgs:
    cluster: ClusterConfig
    stack: str
    region: str
    account_id: str
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]
    locations: pulumi.Input[RunLocations]
    kms_key_arn: pulumi.Input[str]
    shared: SharedControlPlane | None = None
    code_uri: pulumi.Input[str] | None = None  # job.workdir's bundle (trainstack/code_delivery.py)
    extended_support: bool = False  # dedicated: the version is past standard support
    tags: Mapping[str, str] = field(default_factory=dict)


class EksTrainingCluster(pulumi.ComponentResource):
    control_plane: EksControlPlane | None
    addons: EksClusterAddons | None
    gpu: EksGpuNodeGroups
    training: EksTrainingJob
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    version: pulumi.Output[str]

    def __init__(self, name: str, args: EksTrainingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:eks:EksTrainingCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        c, eks = args.cluster, args.cluster.eks
        self.specs = req.node_group_specs(c, args.stack)
        self.control_plane = self.addons = None

        if args.shared is None:
            cp = self.control_plane = EksControlPlane(
                f"{name}-control-plane",
                EksControlPlaneArgs(
                    version=eks.version,
                    subnet_ids=args.subnet_ids,
                    security_group_id=args.security_group_id,
                    region=args.region,
                    public_access_cidrs=eks.public_access_cidrs,
                    system_instance_type=eks.system_instance_type,
                    extended_support=args.extended_support,
                    tags=args.tags,
                ),
                opts=child,
            )
            self.addons = EksClusterAddons(
                f"{name}-addons",
                EksClusterAddonsArgs(
                    cluster_name=cp.cluster.name,
                    version=eks.version,
                    region=args.region,
                    account_id=args.account_id,
                    tags=args.tags,
                ),
                provider=cp.provider,
                opts=child,
            )
            self.cluster_name, self.provider, self.kubeconfig = cp.cluster.name, cp.provider, cp.kubeconfig
            self.version = pulumi.Output.from_input(eks.version)
            cluster_sg = cp.cluster.vpc_config.cluster_security_group_id
            role_arn = cp.node_role.arn
            # GPU groups after the system nodes (CNI running, node role policies attached); the
            # Job after the device plugin too.
            node_waits: list[pulumi.Resource] = [cp.system_nodes]
            job_waits: list[pulumi.Resource] = [self.addons.device_plugin]
        else:
            s = args.shared
            self.cluster_name = pulumi.Output.from_input(s.cluster_name)
            self.version = pulumi.Output.from_input(s.version)
            self.provider, self.kubeconfig = kubernetes_provider(
                f"{name}-k8s", s.cluster_name, s.endpoint, s.ca_data, args.region, child
            )
            role, policies = node_role(name, args.tags, self, docs.partition_of(args.region))
            cluster_sg, role_arn = s.cluster_security_group_id, role.arn
            node_waits, job_waits = list(policies), []

        self.gpu = EksGpuNodeGroups(
            f"{name}-gpu",
            EksGpuNodeGroupsArgs(
                cluster_name=self.cluster_name,
                cluster_security_group_id=cluster_sg,
                node_role_arn=role_arn,
                subnet_ids=args.subnet_ids,
                security_group_id=args.security_group_id,
                specs=tuple(self.specs),
                ami_type=eks.ami_type,
                release_version=eks.release_version,
                root_volume_gib=c.gpu.root_volume_gib,
                placement_group=c.gpu.placement_group,
                depends_on=node_waits,
                tags=args.tags,
            ),
            opts=child,
        )
        self.training = EksTrainingJob(
            f"{name}-training",
            EksTrainingJobArgs(
                cluster=c,
                stack=args.stack,
                region=args.region,
                cluster_name=self.cluster_name,
                locations=args.locations,
                kms_key_arn=args.kms_key_arn,
                code_uri=args.code_uri,
                depends_on=[*self.gpu.groups.values(), *job_waits],
                tags=args.tags,
                account_id=args.account_id,
            ),
            provider=self.provider,
            opts=child,
        )
        self.register_outputs(
            {"clusterName": self.cluster_name, "nodeGroupNames": [g.node_group_name for g in self.gpu.groups.values()]}
        )

    def teardown_targets(self) -> list[NodeGroupToStop]:
        """Every GPU node group; in dedicated mode also the system group, which stops Cluster
        Autoscaler itself. A shared cluster's system group is the platform's and stays."""
        stops = [
            NodeGroupToStop(
                s.key,
                self.cluster_name,
                self.gpu.groups[s.instance_type].node_group_name,
                self.gpu.groups[s.instance_type].arn,
                s.max_size,
            )
            for s in self.specs
        ]
        if self.control_plane is not None:
            system = self.control_plane.system_nodes
            stops.append(
                NodeGroupToStop("system", self.cluster_name, system.node_group_name, system.arn, 1, taint=False)
            )
        return stops
