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
from trainstack.model import catalog
from trainstack.model import eks_request as req
from trainstack.model import iam_documents as docs
from trainstack.model.run_locations import RunLocations


@dataclass(frozen=True)
class SharedControlPlane:
    """An existing cluster (a platform's `eks` output) with Cluster Autoscaler and the device plugin."""

    cluster_name: pulumi.Input[str]
    endpoint: pulumi.Input[str]  # the API server's https:// endpoint
    ca_data: pulumi.Input[str]  # its certificate authority, base64 (the cluster's certificate_authority.data)
    cluster_security_group_id: pulumi.Input[str]  # the security group EKS made for the cluster
    version: pulumi.Input[str]  # its Kubernetes version


@dataclass(frozen=True)
class EksTrainingClusterArgs:
    # -- where ----------------------------------------------------------------------------------
    # The deployment's name: namespace, labels, taints and node group names carry it.
    stack: str
    # The AWS region.
    region: str
    # The AWS account (the Pod Identity trust and the autoscaler's permissions are scoped to it).
    account_id: str
    # Subnets of the control plane and the node groups (e.g. TrainingNetwork.compute_subnets' ids).
    subnet_ids: pulumi.Input[Sequence[str]]
    # The nodes' cluster-members security group (e.g. TrainingNetwork.security_group: NCCL between nodes).
    security_group_id: pulumi.Input[str]
    # Where the run reads its dataset and writes its model, logs and checkpoints (trainstack.model.run_locations).
    locations: pulumi.Input[RunLocations]
    # The data lake's KMS key (the pods' role may use it for the run's objects only).
    kms_key_arn: pulumi.Input[str]
    # -- what runs on what ----------------------------------------------------------------------
    # GPU instance types: one managed node group each, at zero until the Job's pods need them.
    instance_types: tuple[str, ...]
    # The training image.
    image: str
    # The most nodes each GPU node group may scale to; None: `nodes`.
    max_instances: int | None = None
    # "SPOT" or "ON_DEMAND": a managed node group is one or the other.
    capacity_type: str = "SPOT"
    # The node groups' EKS AMI type: AL2023_x86_64_NVIDIA or BOTTLEROCKET_x86_64_NVIDIA.
    ami_type: str = "AL2023_x86_64_NVIDIA"
    # A pinned node AMI release (e.g. 1.33.4-20260917); None: the latest for the cluster's version.
    release_version: str | None = None
    # The nodes' encrypted gp3 root volume, GiB.
    root_volume_gib: int = 200
    # One cluster placement group for the GPU nodes (one AZ; multi-node NCCL).
    placement_group: bool = False
    # -- the job --------------------------------------------------------------------------------
    # The training command (empty: the image's own entrypoint and command).
    command: tuple[str, ...] = ()
    # Environment of the training container, besides the TRAINSTACK_* locations.
    environment: Mapping[str, str] = field(default_factory=dict)
    # Pods (one per node) of the Indexed Job.
    nodes: int = 1
    # GPUs each pod asks for.
    gpus_per_node: int = 1
    # The torchrun rendezvous port on rank 0's pod.
    master_port: int = 29500
    # Minutes the pods wait for each other.
    peer_timeout_minutes: int = 15
    # The Job's deadline, seconds (time pending for capacity included).
    max_runtime_seconds: int = 6 * 3600
    # The run's code bundle (s3:// tar.gz, e.g. CodeBundle.uri): fetched and unpacked before the command.
    code_uri: pulumi.Input[str] | None = None
    # The training container's uid (0: root, for an image that needs it; its namespace then enforces
    # the `baseline` Pod Security Standard instead of `restricted`).
    run_as_user: int = req.DEFAULT_RUN_AS_USER
    # -- the control plane ----------------------------------------------------------------------
    # An existing cluster to run on (e.g. a platform's shared one, with the device plugin and Cluster
    # Autoscaler running); None: a control plane of its own (EksControlPlane + EksClusterAddons).
    shared: SharedControlPlane | None = None
    # Kubernetes version of an own control plane.
    version: str = catalog.EKS_DEFAULT_VERSION
    # Who may reach an own control plane's public endpoint (narrow it to your network).
    public_access_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    # The one on-demand system node of an own control plane (CoreDNS, Cluster Autoscaler).
    system_instance_type: str = "t3.medium"
    # An own control plane's version is past standard support: pay for extended support (else EKS upgrades it).
    extended_support: bool = False
    # An own control plane's name; None: `eks_request.cluster_name(stack)`.
    cluster_name: str | None = None
    # An own control plane's logs to CloudWatch Logs (encrypted with kms_key_arn) and their retention, days.
    control_plane_logs: tuple[str, ...] = ("audit", "authenticator")
    log_retention_days: int = 14
    # Who besides its creator may use an own control plane's Kubernetes API (access entries).
    access: tuple[req.AccessGrant, ...] = ()
    # Tags on every AWS resource (and the nodes' instances, volumes and network interfaces).
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.capacity_type not in req.CAPACITY_TYPES:
            raise ValueError(f"capacity_type = {self.capacity_type!r}: use {' or '.join(req.CAPACITY_TYPES)}")
        if self.max_instances is not None and (
            isinstance(self.max_instances, bool) or not isinstance(self.max_instances, int) or self.max_instances < 1
        ):
            raise ValueError(f"max_instances = {self.max_instances!r}: must be a whole number, at least 1")
        if self.nodes > self.max_size:
            raise ValueError(f"nodes = {self.nodes}: more than max_instances ({self.max_size})")
        for name in ("placement_group", "extended_support"):
            if not isinstance(getattr(self, name), bool):  # bool(Output(False)) is True: switches are plain bools
                raise ValueError(f"{name} = {getattr(self, name)!r}: must be True or False")
        # The job's own checks (image, instance types, command, ...) run here, before any resource.
        self.job_args(cluster_name="", depends_on=())

    @property
    def max_size(self) -> int:
        return self.max_instances if self.max_instances is not None else self.nodes

    def job_args(self, *, cluster_name: pulumi.Input[str], depends_on: Sequence[pulumi.Resource]) -> EksTrainingJobArgs:
        return EksTrainingJobArgs(
            stack=self.stack,
            region=self.region,
            cluster_name=cluster_name,
            locations=self.locations,
            kms_key_arn=self.kms_key_arn,
            image=self.image,
            instance_types=self.instance_types,
            command=self.command,
            environment=self.environment,
            nodes=self.nodes,
            gpus_per_node=self.gpus_per_node,
            master_port=self.master_port,
            peer_timeout_minutes=self.peer_timeout_minutes,
            max_runtime_seconds=self.max_runtime_seconds,
            code_uri=self.code_uri,
            depends_on=depends_on,
            tags=self.tags,
            account_id=self.account_id,
            run_as_user=self.run_as_user,
        )


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
        self.specs = req.gpu_node_groups(
            args.instance_types,
            stack=args.stack,
            capacity_type=args.capacity_type,
            max_size=args.max_size,
            ami_type=args.ami_type,
        )
        self.control_plane = self.addons = None

        if args.shared is None:
            cp = self.control_plane = EksControlPlane(
                f"{name}-control-plane",
                EksControlPlaneArgs(
                    version=args.version,
                    subnet_ids=args.subnet_ids,
                    security_group_id=args.security_group_id,
                    region=args.region,
                    public_access_cidrs=args.public_access_cidrs,
                    system_instance_type=args.system_instance_type,
                    extended_support=args.extended_support,
                    cluster_name=args.cluster_name or req.cluster_name(args.stack),
                    kms_key_arn=args.kms_key_arn,
                    log_types=tuple(args.control_plane_logs),
                    log_retention_days=args.log_retention_days,
                    access=args.access,
                    tags=args.tags,
                ),
                opts=child,
            )
            self.addons = EksClusterAddons(
                f"{name}-addons",
                EksClusterAddonsArgs(
                    cluster_name=cp.cluster.name,
                    version=args.version,
                    region=args.region,
                    account_id=args.account_id,
                    tags=args.tags,
                ),
                provider=cp.provider,
                opts=child,
            )
            self.cluster_name, self.provider, self.kubeconfig = cp.cluster.name, cp.provider, cp.kubeconfig
            self.version = pulumi.Output.from_input(args.version)
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
                ami_type=args.ami_type,
                release_version=args.release_version,
                root_volume_gib=args.root_volume_gib,
                placement_group=args.placement_group,
                depends_on=node_waits,
                tags=args.tags,
            ),
            opts=child,
        )
        self.training = EksTrainingJob(
            f"{name}-training",
            args.job_args(cluster_name=self.cluster_name, depends_on=[*self.gpu.groups.values(), *job_waits]),
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
                asg_name=self.gpu.asg_names[s.instance_type],
            )
            for s in self.specs
        ]
        if self.control_plane is not None:
            system = self.control_plane.system_nodes
            stops.append(
                NodeGroupToStop("system", self.cluster_name, system.node_group_name, system.arn, 1, taint=False)
            )
        return stops
