"""EksClusterAddons: what every trainstack EKS cluster runs besides the training job.

The NVIDIA device plugin (the AL2023 NVIDIA AMI ships drivers but not the plugin; Bottlerocket
ships both) and Cluster Autoscaler, whose AWS permissions come through an EKS Pod Identity
association scoped to this cluster's node groups. Typed `pulumi_kubernetes` objects, not Helm
or YAML components: those are remote and would hide the manifests from `trainstack plan`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from trainstack.model import eks_request as req
from trainstack.model import iam_documents as docs

# kind -> the pulumi_kubernetes API group module holding its class. Looked up when an object is made: the SDK
# loads a group's modules on first use, and a stack that only imports this module (a shared cluster's) must
# not pay for groups it never uses (`make bench`).
_KINDS = {
    "ServiceAccount": "core",
    "ClusterRole": "rbac",
    "Role": "rbac",
    "ClusterRoleBinding": "rbac",
    "RoleBinding": "rbac",
    "Deployment": "apps",
    "DaemonSet": "apps",
}


def kubernetes_object(name: str, manifest: Mapping, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """A typed pulumi_kubernetes object from a plain manifest (`eks_request`), all fields visible."""
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    if "roleRef" in body:
        body["role_ref"] = body.pop("roleRef")
    kind = manifest["kind"]
    cls = getattr(getattr(k8s, _KINDS[kind]).v1, kind)
    return cls(name, **body, opts=opts)


@dataclass(frozen=True)
class EksClusterAddonsArgs:
    # The EKS cluster (Cluster Autoscaler discovers node groups tagged with its name).
    cluster_name: pulumi.Input[str]
    # The cluster's Kubernetes version: Cluster Autoscaler's minor version must equal it.
    version: str
    # The cluster's region.
    region: str
    # The AWS account (scopes Cluster Autoscaler's Pod Identity role).
    account_id: str
    # Tags on the AWS resources (role, Pod Identity association).
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.version or not all(p.isdigit() for p in self.version.split(".")):
            raise ValueError(f"version = {self.version!r}: give the cluster's Kubernetes version, e.g. 1.33")


class EksClusterAddons(pulumi.ComponentResource):
    device_plugin: k8s.apps.v1.DaemonSet
    autoscaler_role: aws.iam.Role
    autoscaler_association: aws.eks.PodIdentityAssociation
    autoscaler: k8s.apps.v1.Deployment

    def __init__(
        self, name: str, args: EksClusterAddonsArgs, provider: k8s.Provider, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("trainstack:eks:EksClusterAddons", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider)
        child = pulumi.ResourceOptions(parent=self)

        # It selects only nodes labelled for it (not Bottlerocket's, which ship their own plugin).
        self.device_plugin = kubernetes_object(f"{name}-nvidia-device-plugin", req.device_plugin_daemonset(), k8s_opts)

        sa = req.CLUSTER_AUTOSCALER_NAME
        self.autoscaler_role = aws.iam.Role(
            f"{name}-autoscaler-role",
            assume_role_policy=pulumi.Output.from_input(args.cluster_name).apply(
                lambda c: json.dumps(
                    docs.eks_pod_identity_trust(
                        namespace=req.SYSTEM_NAMESPACE,
                        service_account=sa,
                        source_account=args.account_id,
                        cluster_name=c,
                    )
                )
            ),
            description="trainstack: Cluster Autoscaler resizes this cluster's node groups",
            tags=args.tags,
            opts=child,
        )
        autoscaler_policy = aws.iam.RolePolicy(
            f"{name}-autoscaler-policy",
            role=self.autoscaler_role.id,
            policy=pulumi.Output.from_input(args.cluster_name).apply(
                lambda c: json.dumps(docs.cluster_autoscaler(c, args.region, args.account_id))
            ),
            opts=child,
        )
        self.autoscaler_association = aws.eks.PodIdentityAssociation(
            f"{name}-autoscaler-identity",
            cluster_name=args.cluster_name,
            namespace=req.SYSTEM_NAMESPACE,
            service_account=sa,
            role_arn=self.autoscaler_role.arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[autoscaler_policy]),
        )

        rbac = [
            kubernetes_object(f"{name}-autoscaler-{m['kind'].lower()}", m, k8s_opts)
            for m in req.cluster_autoscaler_rbac()
        ]
        deployment = pulumi.Output.from_input(args.cluster_name).apply(
            lambda c: req.cluster_autoscaler_deployment(c, args.version, args.region)
        )
        self.autoscaler = k8s.apps.v1.Deployment(
            f"{name}-autoscaler",
            metadata=deployment.apply(lambda d: d["metadata"]),
            spec=deployment.apply(lambda d: d["spec"]),
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[*rbac, self.autoscaler_association]
            ),
        )
        self.register_outputs({"autoscalerRoleArn": self.autoscaler_role.arn})
