"""EksControlPlane: an EKS cluster from pulumi_aws primitives, with one small system node.

The control plane uses API authentication (access entries, no aws-auth ConfigMap) and installs
the EKS add-ons it needs (vpc-cni, kube-proxy, CoreDNS, the Pod Identity agent) as managed
add-ons instead of the self-managed defaults. The system node group (one on-demand t3.medium)
runs CoreDNS and Cluster Autoscaler; GPU node groups (`EksGpuNodeGroups`) come and go beside it.
A Kubernetes provider for the cluster is exposed for everything that runs inside it.

Deliberately not `pulumi_eks`: its components are remote (implemented by a plugin), so under
the mock engine the whole cluster is one opaque node and `trainstack plan`, the tag walk, the
IAM checks and the cost model could not see what it creates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from trainstack.model import eks_request as req
from trainstack.model import iam_documents as docs
from trainstack.model.tags import launch_tags, with_name

CLUSTER_POLICY = "AmazonEKSClusterPolicy"  # AWS managed policy names (docs.aws_managed_policy)
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEKS_CNI_Policy",
    "AmazonSSMManagedInstanceCore",  # shell through SSM, no SSH key
)
# Add-ons that need no node to become ACTIVE; CoreDNS waits for the system node.
NODELESS_ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
# The VPC CNI enforces Kubernetes NetworkPolicies (EKS User Guide, "Restrict Pod network traffic with
# Kubernetes network policies": the add-on's configuration value, from v1.14.0-eksbuild.3; the default
# add-on versions of every Kubernetes version in the catalog are newer). Each run's namespace carries a
# default-deny policy (eks_request.network_policies), so tenants of a shared cluster cannot reach each
# other's rendezvous store or NCCL ports.
ADDON_CONFIGURATION = {"vpc-cni": {"enableNetworkPolicy": "true"}}
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")  # botocore's EKS `LogType`


def node_role(
    name: str, tags: Mapping[str, str], parent: pulumi.Resource | None, partition: str = "aws"
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """The role of managed node group instances. In API authentication mode EKS creates its
    access entry itself when a managed node group uses it."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-node-role",
        assume_role_policy=json.dumps(docs.assume_role("ec2.amazonaws.com")),
        description="trainstack: EKS nodes (pods get their own roles through Pod Identity)",
        tags=tags,
        opts=child,
    )
    return role, [
        aws.iam.RolePolicyAttachment(
            f"{name}-node-policy-{i}", role=role.name, policy_arn=docs.aws_managed_policy(p, partition), opts=child
        )
        for i, p in enumerate(NODE_POLICIES)
    ]


def kubernetes_provider(
    name: str,
    cluster_name: pulumi.Input[str],
    endpoint: pulumi.Input[str],
    ca_data: pulumi.Input[str],
    region: str,
    opts: pulumi.ResourceOptions,
) -> tuple[k8s.Provider, pulumi.Output[str]]:
    text: pulumi.Output[str] = pulumi.Output.all(cluster_name, endpoint, ca_data).apply(
        lambda a: json.dumps(req.kubeconfig(a[0], a[1], a[2], region))
    )
    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(text)
    # delete_unreachable: a destroy after the cluster is gone (or unreachable) must not get stuck on its objects.
    return k8s.Provider(name, kubeconfig=kubeconfig, delete_unreachable=True, opts=opts), kubeconfig


@dataclass(frozen=True)
class EksControlPlaneArgs:
    # The Kubernetes version, e.g. "1.33".
    version: str
    # Subnets of the control plane's network interfaces and the system node (two AZs at least).
    subnet_ids: pulumi.Input[Sequence[str]]
    # An extra security group on the control plane (e.g. TrainingNetwork.security_group, the cluster members).
    security_group_id: pulumi.Input[str]
    # The AWS region (the kubeconfig's `aws eks get-token --region`).
    region: str
    # The cluster's name (fixed: its control plane log group is created first, `/aws/eks/<name>/cluster`).
    # `trainstack.model.eks_request.cluster_name(stack, owner)` builds one.
    cluster_name: str
    # Who may reach the public API endpoint (narrow it to your network; the private endpoint is always on).
    public_access_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    # The one on-demand system node (CoreDNS, Cluster Autoscaler).
    system_instance_type: str = "t3.medium"
    # Past standard support: False lets EKS upgrade the cluster instead of billing extended support.
    extended_support: bool = False
    # A KMS key (the platform's) that envelope-encrypts Kubernetes secrets and encrypts the control plane's
    # log group; None: EKS's own envelope encryption (AWS owned key) and an unencrypted log group.
    kms_key_arn: pulumi.Input[str] | None = None
    # Control plane logs to CloudWatch Logs (any of api, audit, authenticator, controllerManager, scheduler).
    log_types: tuple[str, ...] = ("audit", "authenticator")
    # Their retention, days (a value CloudWatch Logs accepts).
    log_retention_days: int = 14
    # Who besides the cluster's creator may use the Kubernetes API: an EKS access entry and a cluster-wide
    # access policy each (`trainstack.model.eks_request.access_grants` resolves configured roles).
    access: tuple[req.AccessGrant, ...] = ()
    # Tags on every AWS resource (and the system node's instance, volume and network interface).
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.version or not all(p.isdigit() for p in self.version.split(".")):
            raise ValueError(f"version = {self.version!r}: give a Kubernetes version such as 1.33")
        if not req.CLUSTER_NAME_RE.match(self.cluster_name or "") or len(self.cluster_name) > 100:
            raise ValueError(
                f"cluster_name = {self.cluster_name!r}: 1-100 of A-Z a-z 0-9 - _, starting alphanumeric "
                "(eks_request.cluster_name builds one)"
            )
        if isinstance(self.log_types, str) or not set(self.log_types) <= set(LOG_TYPES):
            raise ValueError(f"log_types = {self.log_types!r}: any of {', '.join(LOG_TYPES)}")
        if not self.public_access_cidrs or isinstance(self.public_access_cidrs, str):
            raise ValueError(f"public_access_cidrs = {self.public_access_cidrs!r}: list at least one CIDR")
        if not isinstance(self.extended_support, bool):  # bool(Output(False)) is True: switches are plain bools
            raise ValueError(f"extended_support = {self.extended_support!r}: must be True or False")


class EksControlPlane(pulumi.ComponentResource):
    cluster: aws.eks.Cluster
    log_group: aws.cloudwatch.LogGroup
    cluster_role: aws.iam.Role
    node_role: aws.iam.Role
    system_nodes: aws.eks.NodeGroup
    addons: dict[str, aws.eks.Addon]
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: EksControlPlaneArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:eks:EksControlPlane", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            assume_role_policy=json.dumps(docs.assume_role("eks.amazonaws.com")),
            description="trainstack: the EKS control plane",
            tags=args.tags,
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=self.cluster_role.name,
            policy_arn=docs.aws_managed_policy(CLUSTER_POLICY, docs.partition_of(args.region)),
            opts=child,
        )
        extras = aws.iam.RolePolicy(
            f"{name}-cluster-key-policy",
            role=self.cluster_role.id,
            policy=pulumi.Output.from_input(args.kms_key_arn).apply(
                lambda key: json.dumps(docs.eks_cluster_role_extras(key))
            ),
            opts=child,
        )
        # Created before the cluster with EKS's name for it, so that it has the stack's retention and key
        # (terraform-aws-modules/terraform-aws-eks main.tf does the same: aws_cloudwatch_log_group.this,
        # which aws_eks_cluster.this depends on).
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=req.control_plane_log_group(args.cluster_name),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=child,
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=args.cluster_name,
            version=args.version,
            role_arn=self.cluster_role.arn,
            enabled_cluster_log_types=list(args.log_types),
            # Kubernetes secrets envelope-encrypted with the platform's key (a key of the cluster's own
            # would be left pending deletion for 7-30 days after every run; the platform's is protected,
            # and EKS cannot recover a cluster whose key is deleted).
            encryption_config=(
                {"provider": {"key_arn": args.kms_key_arn}, "resources": ["secrets"]} if args.kms_key_arn else None
            ),
            vpc_config={
                "subnet_ids": args.subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": True,  # kubectl and `pulumi up` from a laptop; narrow the CIDRs
                "public_access_cidrs": list(args.public_access_cidrs),
                "security_group_ids": [args.security_group_id],
            },
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            # Managed add-ons below instead of the unmanaged defaults EKS would otherwise install.
            bootstrap_self_managed_addons=False,
            upgrade_policy={"support_type": "EXTENDED" if args.extended_support else "STANDARD"},
            tags=args.tags,
            # A fixed name cannot exist twice: a replacement deletes the old cluster first.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[cluster_policy, extras, self.log_group], delete_before_replace=True
            ),
        )

        self.node_role, node_policies = node_role(name, args.tags, self, docs.partition_of(args.region))

        self.addons = {
            a: aws.eks.Addon(
                f"{name}-{a}",
                cluster_name=self.cluster.name,
                addon_name=a,
                configuration_values=json.dumps(ADDON_CONFIGURATION[a]) if a in ADDON_CONFIGURATION else None,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                tags=args.tags,
                opts=child,
            )
            for a in NODELESS_ADDONS
        }
        # Without security groups in it EKS adds the cluster security group itself.
        system_lt = aws.ec2.LaunchTemplate(
            f"{name}-system-lt",
            description="trainstack EKS system node",
            update_default_version=True,
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
                "instance_metadata_tags": "disabled",
            },
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {
                        "volume_size": 30,
                        "volume_type": "gp3",
                        "encrypted": "true",
                        "delete_on_termination": "true",
                    },
                }
            ],
            # Node group tags do not reach instances; the reaper and cost reports find them by these.
            tag_specifications=[
                {"resource_type": rt, "tags": with_name(launch_tags(args.tags), f"{name}-system")}
                for rt in ("instance", "volume", "network-interface")
            ],
            tags=args.tags,
            opts=child,
        )
        # Nodes become Ready only once the CNI runs; a node group waits for Ready nodes.
        self.system_nodes = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=self.cluster.name,
            node_role_arn=self.node_role.arn,
            subnet_ids=args.subnet_ids,
            ami_type="AL2023_x86_64_STANDARD",
            instance_types=[args.system_instance_type],
            capacity_type="ON_DEMAND",  # Cluster Autoscaler must not vanish with a spot reclaim
            scaling_config={"min_size": 1, "max_size": 1, "desired_size": 1},
            labels=req.system_labels(),
            launch_template={"id": system_lt.id, "version": system_lt.latest_version.apply(str)},
            update_config={"max_unavailable": 1},
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*node_policies, self.addons["vpc-cni"]]),
        )
        # CoreDNS stays DEGRADED without a node to run on; one replica is plenty for one job.
        self.addons["coredns"] = aws.eks.Addon(
            f"{name}-coredns",
            cluster_name=self.cluster.name,
            addon_name="coredns",
            configuration_values=json.dumps({"replicaCount": 1}),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_nodes]),
        )

        self.access_entries: list[aws.eks.AccessEntry] = []
        associations: list[pulumi.Resource] = []
        for grant in args.access:
            entry = aws.eks.AccessEntry(
                f"{name}-access-{grant.key}",
                cluster_name=self.cluster.name,
                principal_arn=grant.principal_arn,
                type="STANDARD",
                tags=args.tags,
                opts=child,
            )
            associations.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-access-{grant.key}-policy",
                    cluster_name=self.cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=req.access_policy_arn(grant.policy, docs.partition_of(args.region)),
                    access_scope={"type": "cluster"},
                    opts=child,
                )
            )
            self.access_entries.append(entry)
        self.provider, self.kubeconfig = kubernetes_provider(
            f"{name}-k8s",
            self.cluster.name,
            self.cluster.endpoint,
            self.cluster.certificate_authority.data,
            args.region,
            # Through the provider, every Kubernetes object depends on the access entries: a `destroy` by
            # one of those roles (the reaper) deletes the objects before it deletes its own access.
            pulumi.ResourceOptions(parent=self, depends_on=[self.addons["coredns"], *associations]),
        )

        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "endpoint": self.cluster.endpoint,
                "nodeRoleArn": self.node_role.arn,
                "systemNodeGroup": self.system_nodes.node_group_name,
            }
        )
