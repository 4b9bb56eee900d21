"""What the eks backend asks of EKS and Kubernetes, as plain data (pure: no Pulumi).

Node group specs, the Kubernetes manifests (device plugin, Cluster Autoscaler, the training Job
and its headless Service), the kubeconfig and the auto-teardown request are built here so that
tests can check them against botocore's EKS model and the Kubernetes OpenAPI schemas offline,
and so that the components only wire them to resources.

How the pieces fit: every GPU managed node group starts at zero with the taint
`nvidia.com/gpu=true:NoSchedule` plus a per-stack taint, and carries the labels
`trainstack.io/gpu-family=<family>` and `trainstack.io/stack=<stack>`. The Job's pods select
those labels and tolerate exactly those taints, so they can land nowhere else; Cluster
Autoscaler sees them pending and scales the matching group up from zero, and back down when
they are gone.

The builders take plain values (`JobSpec`, instance types, a stack name), so the components that use
them take no trainstack config; `job_spec` and `node_group_specs` map a cluster stack's config.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainstack.model import catalog
from trainstack.model.config import ClusterConfig
from trainstack.model.run_locations import RunLocations

# Labels and taints (Kubernetes spelling; EKS node group taints spell the effect NO_SCHEDULE).
LABEL_GPU = "trainstack.io/gpu"
LABEL_FAMILY = "trainstack.io/gpu-family"
LABEL_STACK = "trainstack.io/stack"
LABEL_ROLE = "trainstack.io/role"
LABEL_JOB = "trainstack.io/job"
LABEL_ACCELERATOR = "k8s.amazonaws.com/accelerator"  # Cluster Autoscaler's GPU node label (AWS provider)
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
EXPIRED_TAINT_KEY = "trainstack.io/expired"
EKS_EFFECT = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}

JOB_NAME = "train"
SERVICE_NAME = "train"  # the headless Service; also the pods' `subdomain`
SERVICE_ACCOUNT = "trainer"
CONTAINER_NAME = "training"
SYSTEM_NAMESPACE = "kube-system"

# NVIDIA's static device plugin manifest (deployments/static/nvidia-device-plugin.yml), pinned.
DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.18.2"
# Cluster Autoscaler's minor version must equal the cluster's (kubernetes/autoscaler README); each minor
# is pinned to its latest patch release: the tags `cluster-autoscaler-<version>` of kubernetes/autoscaler
# (read at commit 55c37cd5, 2026-08-22: 1.31.5 of 2025-10-08, 1.32.7 of 2026-02-13, 1.33.6, 1.34.5 and
# 1.35.2 of 2026-07-22; `cluster-autoscaler/version/version.go` at each tag says the same). Every
# version of catalog.EKS_VERSIONS needs a row (tests/model/test_eks_request.py).
CLUSTER_AUTOSCALER_RELEASES = {
    "1.31": "1.31.5",
    "1.32": "1.32.7",
    "1.33": "1.33.6",
    "1.34": "1.34.5",
    "1.35": "1.35.2",
}
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler:v{release}"
CLUSTER_AUTOSCALER_NAME = "cluster-autoscaler"
CA_TAG_ENABLED = "k8s.io/cluster-autoscaler/enabled"
# EKS tags a managed node group's Auto Scaling group with it (value `owned`); Cluster Autoscaler discovers
# groups by it and its Pod Identity role may resize only groups that carry it (iam_documents.cluster_autoscaler).
CA_OWNER_TAG = "k8s.io/cluster-autoscaler/{cluster}"
CA_OWNER_VALUE = "owned"
CA_NODE_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"

# Requests are a share of the smallest listed type: leave room for kubelet's reservation and
# the per-node DaemonSets (vpc-cni, kube-proxy, pod identity agent, device plugin), or the
# pod would never fit the node Cluster Autoscaler launches for it.
REQUEST_SHARE = 0.8


def _dns_label(text: str, limit: int = 63) -> str:
    """A DNS-1123 label (namespaces, names): lower-case alphanumerics and '-'."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return label or "x"


def label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value) or "x"


def namespace_name(stack: str) -> str:
    return _dns_label(f"ts-{stack}")


CLUSTER_NAME_RE = re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]*$")  # CreateCluster `name` (botocore's EKS model)


def cluster_name(stack: str, owner: str = "") -> str:
    """The EKS cluster's name, fixed before it exists: EKS writes the control plane's logs to
    `/aws/eks/<name>/cluster` (`control_plane_log_group`), which is created first with the stack's
    retention and key. At most 100 of [A-Za-z0-9_-], starting alphanumeric."""
    text = re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(p for p in ("trainstack", owner, stack) if p)).strip("-_")
    return text[:100].rstrip("-_")


def control_plane_log_group(cluster: str) -> str:
    """Where EKS sends control plane logs (EKS User Guide, "Send control plane logs to CloudWatch Logs")."""
    return f"/aws/eks/{cluster}/cluster"


# ------------------------------------------------------------------------------------------
# Access entries: who besides the cluster's creator may use the Kubernetes API

# EKS access policies (EKS User Guide, "Review access policy permissions"; ARN `arn:<partition>:eks::aws:
# cluster-access-policy/<name>`): cluster admin (every verb on everything), and read-only on everything.
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
ADMIN_VIEW_POLICY = "AmazonEKSAdminViewPolicy"


def access_policy_arn(policy: str, partition: str = "aws") -> str:
    return f"arn:{partition}:eks::aws:cluster-access-policy/{policy}"


@dataclass(frozen=True)
class AccessGrant:
    """One EKS access entry (a STANDARD entry for an IAM role) and the access policy associated with it,
    cluster-wide."""

    principal_arn: str
    policy: str  # CLUSTER_ADMIN_POLICY or ADMIN_VIEW_POLICY

    @property
    def key(self) -> str:
        """A logical-name suffix that stays the same for the same principal."""
        name = self.principal_arn.rsplit("/", 1)[-1]
        return f"{_dns_label(name, 40)}-{hashlib.sha256(self.principal_arn.encode()).hexdigest()[:6]}"


ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/")


def role_lookup_regex(names: list[str] | tuple[str, ...]) -> str:
    """`name_regex` of the ListRoles lookup (aws.iam.get_roles): exactly these role names."""
    return "^(?:" + "|".join(re.escape(n) for n in sorted(set(names))) + ")$"


def caller_role(caller_arn: str) -> str | None:
    """The IAM role behind a caller ARN (`arn:aws:sts::<account>:assumed-role/<role>/<session>`), if any."""
    m = re.match(r"^arn:aws[a-z-]*:sts::\d{12}:assumed-role/([^/]+)/", caller_arn)
    if m:
        return m.group(1)
    return caller_arn.rsplit("/", 1)[-1] if ROLE_ARN.match(caller_arn) else None


def access_grants(
    wanted: list[tuple[str, str, tuple[str, ...]]],
    existing: dict[str, str],
    *,
    caller_arn: str,
    defaults: dict[str, tuple[str, ...]],
    account: str,
) -> tuple[list[AccessGrant], list[str], list[str]]:
    """(grants, warnings, errors) for `wanted` = [(config key, access policy, role names or ARNs)], the
    stronger policy first. `existing`: role name -> ARN (with its path) of the account's roles by those
    names. The caller is skipped: EKS made whoever creates the cluster an admin already, and an IAM
    principal can have one access entry per cluster only (EKS User Guide, "Create access entries"). A role
    name the account lacks is a warning when it is a default (the CI roles of a team without that CI) and
    an error when someone listed it."""
    me = caller_role(caller_arn)
    grants: dict[str, AccessGrant] = {}
    warnings: list[str] = []
    errors: list[str] = []
    for key, policy, roles in wanted:
        for role in roles:
            arn = role if ROLE_ARN.match(role) else existing.get(role)
            if arn is None:
                if role in defaults.get(key, ()):
                    warnings.append(
                        f"{key}: the default role `{role}` does not exist in account {account}, so it gets no "
                        "access to the cluster (create the CI roles as docs/ci.md names them, or set the key)"
                    )
                else:
                    errors.append(
                        f"{key} = {list(roles)}: role `{role}` does not exist in account {account}. Fix: create "
                        "it, give its ARN, or remove it"
                    )
                continue
            if me is not None and arn.rsplit("/", 1)[-1] == me:
                continue  # the cluster's creator: already an admin (and an entry of its own would clash)
            grants.setdefault(arn, AccessGrant(arn, policy))
    return list(grants.values()), warnings, errors


def group_key(instance_type: str) -> str:
    """`p3.2xlarge` -> `p3-2xlarge` (logical names, node group name prefixes)."""
    return instance_type.replace(".", "-")


# ------------------------------------------------------------------------------------------
# Node groups


@dataclass(frozen=True)
class NodeGroupSpec:
    """One EKS managed node group: one instance type (Cluster Autoscaler templates a group from
    one type), scaling from zero."""

    key: str
    instance_type: str
    family: str
    gpus: int
    capacity_type: str  # SPOT | ON_DEMAND
    max_size: int
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, str], ...]  # EKS spelling: {key, value, effect: NO_SCHEDULE}
    min_size: int = 0
    desired_size: int = 0

    @property
    def k8s_taints(self) -> list[dict[str, str]]:
        back = {v: k for k, v in EKS_EFFECT.items()}
        return [{"key": t["key"], "value": t["value"], "effect": back[t["effect"]]} for t in self.taints]

    def autoscaler_tags(self) -> dict[str, str]:
        """Node-template tags on the group's ASG: what Cluster Autoscaler assumes a node of this
        group offers while the group is at zero (kubernetes/autoscaler cloudprovider/aws README)."""
        tags = {f"{CA_NODE_TEMPLATE}/resources/{GPU_RESOURCE}": str(self.gpus)}
        tags.update({f"{CA_NODE_TEMPLATE}/label/{k}": v for k, v in self.labels.items()})
        tags.update({f"{CA_NODE_TEMPLATE}/taint/{t['key']}": f"{t['value']}:{t['effect']}" for t in self.k8s_taints})
        return tags


LABEL_DEVICE_PLUGIN = "trainstack.io/nvidia-device-plugin"
BOTTLEROCKET_NVIDIA = "BOTTLEROCKET_x86_64_NVIDIA"


def gpu_labels(
    family: str, stack: str, ami_type: str = "AL2023_x86_64_NVIDIA", gpu_model: str = "nvidia"
) -> dict[str, str]:
    labels = {
        LABEL_GPU: "true",
        LABEL_FAMILY: family,
        LABEL_STACK: label_value(stack),
        # Cluster Autoscaler's AWS provider treats a node with this label as a GPU node whose
        # `nvidia.com/gpu` is still coming (device plugin not yet up) instead of a ready node without
        # GPUs, which would make it launch more GPU nodes for the same pending pod
        # (kubernetes/autoscaler cloudprovider/aws: GPULabel = "k8s.amazonaws.com/accelerator").
        LABEL_ACCELERATOR: label_value(f"nvidia-{gpu_model}".lower()),
    }
    if ami_type != BOTTLEROCKET_NVIDIA:  # Bottlerocket runs its own plugin; two would fight over the GPUs
        labels[LABEL_DEVICE_PLUGIN] = "true"
    return labels


def gpu_taints(stack: str) -> tuple[dict[str, str], ...]:
    return (
        {"key": GPU_TAINT_KEY, "value": "true", "effect": "NO_SCHEDULE"},
        {"key": LABEL_STACK, "value": label_value(stack), "effect": "NO_SCHEDULE"},
    )


CAPACITY_TYPES = ("SPOT", "ON_DEMAND")


def gpu_node_groups(
    instance_types: tuple[str, ...] | list[str],
    *,
    stack: str,
    capacity_type: str = "SPOT",
    max_size: int = 1,
    ami_type: str = "AL2023_x86_64_NVIDIA",
) -> list[NodeGroupSpec]:
    """One node group per instance type (catalog types only), each from zero to `max_size`."""
    specs = []
    for t in instance_types:
        spec = catalog.require(t)
        specs.append(
            NodeGroupSpec(
                key=group_key(t),
                instance_type=t,
                family=spec.family,
                gpus=spec.gpus,
                capacity_type=capacity_type,
                max_size=max_size,
                labels=gpu_labels(spec.family, stack, ami_type, spec.gpu_model or "nvidia"),
                taints=gpu_taints(stack),
            )
        )
    return specs


def capacity_type(spot_percent: int) -> str:
    """A managed node group is all spot or all on-demand; config refuses anything in between."""
    return "SPOT" if spot_percent == 100 else "ON_DEMAND"


def node_group_specs(cluster: ClusterConfig, stack: str) -> list[NodeGroupSpec]:
    """A cluster stack's GPU node groups (its config mapped onto `gpu_node_groups`)."""
    gpu = cluster.gpu
    return gpu_node_groups(
        gpu.instance_types,
        stack=stack,
        capacity_type=capacity_type(gpu.spot_percent),
        max_size=gpu.max_instances,
        ami_type=cluster.eks.ami_type,
    )


def system_labels() -> dict[str, str]:
    return {LABEL_ROLE: "system"}


# ------------------------------------------------------------------------------------------
# Kubeconfig


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> dict:
    """A kubeconfig that gets its token from `aws eks get-token` (AWS CLI v2) at every call."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "aws",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": "aws", "context": {"cluster": cluster_name, "user": "aws"}}],
        "users": [
            {
                "name": "aws",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": [
                            "eks",
                            "get-token",
                            "--cluster-name",
                            cluster_name,
                            "--region",
                            region,
                            "--output",
                            "json",
                        ],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }


# ------------------------------------------------------------------------------------------
# Device plugin


def device_plugin_daemonset() -> dict:
    """NVIDIA's static device plugin DaemonSet, on the GPU nodes whose AMI lacks it.

    It tolerates every taint (the GPU nodes also carry a per-stack taint) and is
    system-node-critical so it is never the pod that gets evicted."""
    selector = {"name": "nvidia-device-plugin-ds"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": SYSTEM_NAMESPACE},
        "spec": {
            "selector": {"matchLabels": selector},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "nodeSelector": {LABEL_DEVICE_PLUGIN: "true"},
                    "tolerations": [{"operator": "Exists"}],
                    "priorityClassName": "system-node-critical",
                    "containers": [
                        {
                            "name": "nvidia-device-plugin-ctr",
                            "image": DEVICE_PLUGIN_IMAGE,
                            "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                            "volumeMounts": [{"name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins"}],
                        }
                    ],
                    "volumes": [{"name": "device-plugin", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}],
                },
            },
        },
    }


# ------------------------------------------------------------------------------------------
# Cluster Autoscaler (port of kubernetes/autoscaler examples/cluster-autoscaler-autodiscover.yaml)


def cluster_autoscaler_image(version: str) -> str:
    """The newest Cluster Autoscaler patch release for the cluster's Kubernetes minor version."""
    try:
        return CLUSTER_AUTOSCALER_IMAGE.format(release=CLUSTER_AUTOSCALER_RELEASES[version])
    except KeyError:
        raise ValueError(
            f"Kubernetes {version}: no Cluster Autoscaler release pinned in eks_request.CLUSTER_AUTOSCALER_RELEASES"
        ) from None


def cluster_autoscaler_args(cluster_name: str) -> list[str]:
    return [
        "./cluster-autoscaler",
        "--cloud-provider=aws",
        # EKS tags every managed node group's ASG with both keys.
        f"--node-group-auto-discovery=asg:tag={CA_TAG_ENABLED},k8s.io/cluster-autoscaler/{cluster_name}",
        "--expander=least-waste",
        "--balance-similar-node-groups",
        "--skip-nodes-with-system-pods=false",
        "--skip-nodes-with-local-storage=false",  # /dev/shm is an emptyDir; it must not pin a node
        "--scale-down-unneeded-time=5m",
        "--scale-down-delay-after-add=5m",
        "--v=2",
    ]


def cluster_autoscaler_manifests(cluster_name: str, version: str, region: str) -> list[dict]:
    """ServiceAccount, RBAC and Deployment, on the system node group. Its AWS permissions come
    from a Pod Identity association on the ServiceAccount (no annotation needed)."""
    return cluster_autoscaler_rbac() + [cluster_autoscaler_deployment(cluster_name, version, region)]


def cluster_autoscaler_rbac() -> list[dict]:
    name, ns = CLUSTER_AUTOSCALER_NAME, SYSTEM_NAMESPACE
    labels = {"app": name}
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns, "labels": labels}}
    cluster_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels},
        "rules": [
            {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": ["create", "patch"]},
            {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"]},
            {"apiGroups": [""], "resources": ["endpoints"], "resourceNames": [name], "verbs": ["get", "update"]},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch", "list", "get", "update"]},
            {
                "apiGroups": [""],
                "resources": [
                    "namespaces",
                    "pods",
                    "services",
                    "replicationcontrollers",
                    "persistentvolumeclaims",
                    "persistentvolumes",
                ],
                "verbs": ["watch", "list", "get"],
            },
            {
                "apiGroups": ["extensions"],
                "resources": ["replicasets", "daemonsets"],
                "verbs": ["watch", "list", "get"],
            },
            {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["watch", "list"]},
            {
                "apiGroups": ["apps"],
                "resources": ["statefulsets", "replicasets", "daemonsets"],
                "verbs": ["watch", "list", "get"],
            },
            {
                "apiGroups": ["storage.k8s.io"],
                "resources": ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities", "volumeattachments"],
                "verbs": ["watch", "list", "get"],
            },
            {"apiGroups": ["batch", "extensions"], "resources": ["jobs"], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {
                "apiGroups": ["coordination.k8s.io"],
                "resourceNames": [name],
                "resources": ["leases"],
                "verbs": ["get", "update"],
            },
            {
                "apiGroups": ["resource.k8s.io"],
                "resources": ["resourceclaims", "resourceslices", "deviceclasses"],
                "verbs": ["get", "list", "watch"],
            },
        ],
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "list", "watch"]},
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"],
                "verbs": ["delete", "get", "update", "watch"],
            },
        ],
    }
    subject = [{"kind": "ServiceAccount", "name": name, "namespace": ns}]
    cluster_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": subject,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": subject,
    }
    return [sa, cluster_role, role, cluster_binding, binding]


def cluster_autoscaler_deployment(cluster_name: str, version: str, region: str) -> dict:
    name, ns = CLUSTER_AUTOSCALER_NAME, SYSTEM_NAMESPACE
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": name,
                    "priorityClassName": "system-cluster-critical",
                    "nodeSelector": system_labels(),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "fsGroup": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": name,
                            "image": cluster_autoscaler_image(version),
                            "command": cluster_autoscaler_args(cluster_name),
                            "env": [{"name": "AWS_REGION", "value": region}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "600Mi"},
                                "limits": {"cpu": "100m", "memory": "600Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


# ------------------------------------------------------------------------------------------
# The training Job


COMPLETION_INDEX = "$(JOB_COMPLETION_INDEX)"  # injected into Indexed Job pods; Kubernetes expands $(VAR)
# The training container's user: a non-root uid with no entry in the image's /etc/passwd (HOME and USER
# are set for it), so the pod meets the `restricted` Pod Security Standard. 0 runs as root (`baseline`).
DEFAULT_RUN_AS_USER = 1000
HOME_DIR = "/home/trainstack"  # a writable emptyDir: the image's /root is not the uid's
# A multi-node run survives this many losses of its rendezvous host's pod (each costs the other pods
# one counted failure: eks_launcher.LOST_HOST_EXIT); torchrun restarts its workers up to MAX_RESTARTS times.
HOST_LOSSES = 3
MAX_RESTARTS = 3


@dataclass(frozen=True)
class JobSpec:
    """What the Indexed Job runs, as plain values (`job_spec` maps a cluster stack's config)."""

    image: str
    instance_types: tuple[str, ...]  # the GPU node groups' types: pod resources fit the smallest
    command: tuple[str, ...] = ()  # empty: the image's own entrypoint and command
    environment: Mapping[str, str] = field(default_factory=dict)
    nodes: int = 1
    gpus_per_node: int = 1
    master_port: int = 29500
    peer_timeout_minutes: int = 15
    max_runtime_seconds: int = 6 * 3600  # the Job's activeDeadlineSeconds (pending time included)
    run_as_user: int = DEFAULT_RUN_AS_USER  # the training container's uid; 0: root (Pod Security baseline)


def job_spec(cluster: ClusterConfig) -> JobSpec:
    job = cluster.job
    return JobSpec(
        image=job.image,
        instance_types=cluster.gpu.instance_types,
        command=job.command,
        environment=job.environment,
        nodes=job.nodes,
        gpus_per_node=job.gpus_per_node,
        master_port=job.master_port,
        peer_timeout_minutes=job.peer_timeout_minutes,
        max_runtime_seconds=cluster.max_runtime_seconds,
        run_as_user=cluster.eks.run_as_user,
    )


def master_address(job: JobSpec, namespace: str, name: str = JOB_NAME) -> str:
    """Rank 0's pod: hostname `<job>-0` in the headless Service's subdomain."""
    return "127.0.0.1" if job.nodes == 1 else f"{name}-0.{SERVICE_NAME}.{namespace}.svc"


def torchrun_args(job: JobSpec, namespace: str, name: str = JOB_NAME) -> list[str]:
    """torchrun for the Job's pods.

    One pod (several GPUs): a static single-node rendezvous on 127.0.0.1. Several pods: elastic, as on the
    ec2 backend (`torchrun.elastic_argv`): `--nnodes N:N`, a c10d rendezvous whose store rank 0's pod
    (`train-0`, the headless Service's name for index 0) hosts, `--max_restarts`. A pod that is evicted
    (spot interruption, rebalance drain) is re-created by the Job in the same index and joins the
    rendezvous; the agents restart the workers together and the script resumes from its checkpoint.
    `read_timeout` is the peer timeout: pods start minutes apart (each may wait for its node from zero),
    and a non-host agent waits only that long for the host's store."""
    from trainstack.model.eks_launcher import IS_HOST
    from trainstack.model.torchrun import check_command, elastic_argv

    if job.nodes == 1:
        return [
            "torchrun",
            "--nnodes",
            "1",
            "--nproc_per_node",
            str(job.gpus_per_node),
            "--master_addr",
            master_address(job, namespace, name),
            "--master_port",
            str(job.master_port),
        ] + check_command(job.command)
    return elastic_argv(
        job.command,
        job.nodes,
        job.gpus_per_node,
        master_address(job, namespace, name),
        job.master_port,
        f"{namespace}-{name}",
        max_restarts=MAX_RESTARTS,
        read_timeout=job.peer_timeout_minutes * 60,
        is_host=IS_HOST,
    )


def launcher_command(job: JobSpec, namespace: str, name: str = JOB_NAME) -> list[str]:
    """`python3 -c <eks_launcher> host port torchrun ...`: says which pod hosts the store and turns a lost
    host into a retryable exit (trainstack/model/eks_launcher.py)."""
    return ["python3", "-c", launcher_source(), master_address(job, namespace, name), str(job.master_port)] + (
        torchrun_args(job, namespace, name)
    )


def launcher_source() -> str:
    """eks_launcher.py without its docstrings (the container's command line carries it)."""
    import ast
    import importlib.resources

    tree = ast.parse(importlib.resources.files("trainstack.model").joinpath("eks_launcher.py").read_text())
    for node in [tree, *ast.walk(tree)]:
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.unparse(tree)


def container_command(job: JobSpec, namespace: str, name: str = JOB_NAME) -> list[str]:
    """The training container's command before code delivery wraps it (`training_job`).

    One process on one GPU runs the command as it is; one pod with several GPUs runs it under a
    single-node torchrun; several pods run elastic torchrun under the launcher."""
    if job.nodes == 1 and job.gpus_per_node == 1:
        return list(job.command)
    if job.nodes == 1:
        return torchrun_args(job, namespace, name)
    return launcher_command(job, namespace, name)


@dataclass(frozen=True)
class PodResources:
    """What a training pod requests: CPU, memory, shared memory and GPUs."""

    cpu: str
    memory: str
    shm: str
    gpus: int


def pod_resources(job: JobSpec) -> PodResources:
    smallest = min((catalog.require(t) for t in job.instance_types), key=lambda s: s.gpus)
    share = job.gpus_per_node / max(smallest.gpus, 1)
    cpu = max(1, math.floor(smallest.vcpus * share * REQUEST_SHARE))
    mem_gib = max(2, math.floor(smallest.memory_gib * share * REQUEST_SHARE))
    # /dev/shm for DataLoader workers and NCCL: half the pod's memory (counted as its memory use).
    return PodResources(cpu=str(cpu), memory=f"{mem_gib}Gi", shm=f"{max(1, mem_gib // 2)}Gi", gpus=job.gpus_per_node)


def pod_labels() -> dict[str, str]:
    return {LABEL_JOB: JOB_NAME}


def job_environment(job: JobSpec, locations: RunLocations, region: str) -> list[dict[str, Any]]:
    env = {
        **dict(job.environment),
        **locations.environment(),
        "TRAINSTACK_NNODES": str(job.nodes),
        "TRAINSTACK_GPUS_PER_NODE": str(job.gpus_per_node),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
    out: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    # The node rank from the pod's completion index (downward API: no ordering dependency on
    # the JOB_COMPLETION_INDEX variable the Job controller adds).
    out.append(
        {
            "name": "TRAINSTACK_NODE_RANK",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
            },
        }
    )
    return out


def training_job(
    job: JobSpec,
    *,
    stack: str,
    namespace: str,
    locations: RunLocations,
    region: str,
    code_uri: str | None = None,
    name: str = JOB_NAME,
    record: bool = False,
) -> dict:
    """The Indexed Job `name` (the stack's own: `train`; `trainstack exec`'s: `train-<job id>`): one pod per
    node, pinned to this stack's GPU node groups.

    With `code_uri` (job.workdir), or `record`, the container runs the command through
    `code_delivery.container_entry`: it fetches and unpacks the code bundle (if any), runs the command and
    rank 0 writes the run's result to `<artifact prefix>run.json` when it ends (the record of a run nobody
    follows)."""
    from trainstack.model.code_delivery import CODE_URI_ENV, container_entry
    from trainstack.model.run_locations import RUN_RECORD_URI_ENV

    command: list[str] | None = container_command(job, namespace, name) if job.command else None
    extra_env: list[dict[str, Any]] = []
    if code_uri or (record and command):
        command = container_entry(command or [])
        extra_env.append({"name": RUN_RECORD_URI_ENV, "value": locations.run_record_uri})
    if code_uri:
        extra_env.append({"name": CODE_URI_ENV, "value": code_uri})
    res = pod_resources(job)
    family = catalog.family_of(job.instance_types[0])
    labels = pod_labels()
    mounts: list[dict[str, Any]] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": res.shm}}]
    if code_uri:  # the entry unpacks the bundle here: writable whatever the image's own files allow
        from trainstack.model.code_delivery import CODE_DIR

        mounts.append({"name": "code", "mountPath": CODE_DIR})
        volumes.append({"name": "code", "emptyDir": {}})
    if job.run_as_user:
        # A uid the image does not know has no home: give it one (caches of torch, triton, pip), and a
        # name (getpass.getuser(), which torch's compile caches call, fails for a uid without one).
        extra_env += [
            {"name": k, "value": v} for k, v in (("HOME", HOME_DIR), ("USER", "trainstack")) if k not in job.environment
        ]
        mounts.append({"name": "home", "mountPath": HOME_DIR})
        volumes.append({"name": "home", "emptyDir": {}})
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": SERVICE_ACCOUNT,
        # The training code never calls the Kubernetes API; AWS credentials come from Pod Identity's own
        # projected token (the EKS Pod Identity webhook mounts it whatever this says).
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(job.run_as_user),
        "nodeSelector": {LABEL_FAMILY: family, LABEL_STACK: label_value(stack)},
        "tolerations": [
            {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
            {"key": LABEL_STACK, "operator": "Equal", "value": label_value(stack), "effect": "NoSchedule"},
        ],
        "terminationGracePeriodSeconds": 120,  # time for a last checkpoint on spot interruption
        "containers": [
            {
                "name": CONTAINER_NAME,
                "image": job.image,
                **({"command": command} if command else {}),  # none: the image's own entrypoint and command
                "env": job_environment(job, locations, region) + extra_env,
                "ports": [{"name": "rendezvous", "containerPort": job.master_port}],
                "resources": {
                    "requests": {"cpu": res.cpu, "memory": res.memory, GPU_RESOURCE: str(res.gpus)},
                    # Memory limit = request: a runaway job ends as its own OOMKilled container (which the
                    # follower reports), not as a node under memory pressure evicting whatever it picks.
                    # /dev/shm (memory-backed) counts against it. No CPU limit (CFS throttling of the
                    # data loaders would only slow the run).
                    "limits": {"memory": res.memory, GPU_RESOURCE: str(res.gpus)},
                },
                "securityContext": CONTAINER_SECURITY_CONTEXT,
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    if job.nodes > 1:
        spec["subdomain"] = SERVICE_NAME
        term = {"labelSelector": {"matchLabels": labels}}
        spec["affinity"] = {
            # One pod per node.
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{**term, "topologyKey": "kubernetes.io/hostname"}]
            },
            # One AZ if at all possible (NCCL across AZs is slow and billed). Preferred, not
            # required: a multi-AZ group may launch the second node in another AZ, and a hard rule
            # would leave that pod pending for good. gpu.placementGroup pins the group to one AZ.
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": {**term, "topologyKey": "topology.kubernetes.io/zone"}}
                ]
            },
        }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_metadata(stack, namespace, name),
        "spec": {
            "completionMode": "Indexed",
            "completions": job.nodes,
            "parallelism": job.nodes,
            # Counted failures are only the other pods' lost-host exits (rule 2): HOST_LOSSES of them.
            "backoffLimit": (job.nodes - 1) * HOST_LOSSES,
            "podFailurePolicy": {"rules": pod_failure_rules(job)},
            # A hard stop that includes time spent pending for capacity.
            "activeDeadlineSeconds": job.max_runtime_seconds,
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def pod_failure_rules(job: JobSpec) -> list[dict[str, Any]]:
    """What a failed pod means (first matching rule; Kubernetes "Pod failure policy").

    1. Evicted (spot interruption, capacity-rebalance drain, node scale-in: the `DisruptionTarget`
       condition): not the training's fault and not counted; the Job re-creates the pod in its index, and
       with several pods the new one rejoins the elastic rendezvous.
    2. (several pods) A pod whose rendezvous host was the evicted one exits `LOST_HOST_EXIT`: counted
       against `backoffLimit`, so the Job re-creates it to rejoin the new host, a bounded number of times.
    3. Any other non-zero exit (a bug, OOMKilled, max runtime): the Job fails at once."""
    from trainstack.model.eks_launcher import LOST_HOST_EXIT

    rules: list[dict[str, Any]] = [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    ]
    if job.nodes > 1:
        rules.append(
            {
                "action": "Count",
                "onExitCodes": {"containerName": CONTAINER_NAME, "operator": "In", "values": [LOST_HOST_EXIT]},
            }
        )
    rules.append(
        {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER_NAME, "operator": "NotIn", "values": [0]}}
    )
    return rules


# restricted Pod Security Standard, container level (kubernetes.io/docs/concepts/security/pod-security-standards):
# no privilege escalation, every capability dropped. torchrun and NCCL over TCP sockets need none
# (no raw sockets, no ports below 1024: the rendezvous listens on job.masterPort).
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod_security_context(run_as_user: int) -> dict[str, Any]:
    """The seccomp profile the runtime provides, and a non-root uid (with fsGroup, so the emptyDirs and the
    projected Pod Identity token are its group's) unless the image needs root."""
    context: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if run_as_user:
        context.update(runAsNonRoot=True, runAsUser=run_as_user, runAsGroup=run_as_user, fsGroup=run_as_user)
    return context


def pod_security_level(run_as_user: int) -> str:
    """The Pod Security Standard the training pods meet, which their namespace enforces: `restricted`
    (non-root) or `baseline` (an image that must run as root)."""
    return "restricted" if run_as_user else "baseline"


def job_metadata(stack: str, namespace: str, name: str = JOB_NAME) -> dict:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {**pod_labels(), LABEL_STACK: label_value(stack)},
        # Without it pulumi-kubernetes waits for the Job to complete and fails `up` after 10 minutes.
        "annotations": {"pulumi.com/skipAwait": "true"},
    }


def headless_service(job: JobSpec, namespace: str) -> dict:
    """Gives each pod the DNS name `<job>-<index>.<service>`; rank 0 is reachable before it is Ready."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        # pulumi-kubernetes would otherwise wait for ready endpoints, which exist only once the
        # Job's pods run (after the Service is created, and on nodes that start from zero).
        "metadata": {"name": SERVICE_NAME, "namespace": namespace, "annotations": {"pulumi.com/skipAwait": "true"}},
        "spec": {
            "clusterIP": "None",
            "selector": pod_labels(),
            "publishNotReadyAddresses": True,
            "ports": [
                {"name": "rendezvous", "port": job.master_port, "targetPort": job.master_port, "protocol": "TCP"}
            ],
        },
    }


def namespace_manifest(namespace: str, stack: str, pod_security: str = "restricted") -> dict:
    """The run's namespace, enforcing the Pod Security Standard its pods meet (`pod_security_level`):
    the API server refuses any pod there that does not (Pod Security Admission)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {
                LABEL_STACK: label_value(stack),
                "pod-security.kubernetes.io/enforce": pod_security,
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }


# Private and shared address space: the VPC (every pod and node of every tenant has a VPC address), other
# VPCs, and the EC2 instance metadata service (pods use Pod Identity, not the node role). Everything else
# (S3, ECR, STS, CloudWatch on their public addresses; the Pod Identity agent at 169.254.170.23) stays open.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.169.254/32")
DEFAULT_DENY = "default-deny"
ALLOW_RUN = "allow-own-pods-dns-and-aws"


def network_policies(namespace: str) -> list[dict]:
    """Tenant isolation (enforced by the VPC CNI with `enableNetworkPolicy`): nothing reaches or leaves the
    run's pods but the run's own pods (rendezvous, NCCL), DNS at CoreDNS, and AWS's public endpoints."""
    all_pods: dict[str, Any] = {}
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": DEFAULT_DENY, "namespace": namespace},
        "spec": {"podSelector": all_pods, "policyTypes": ["Ingress", "Egress"]},
    }
    own: list[dict[str, Any]] = [{"podSelector": {}}]
    dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": SYSTEM_NAMESPACE}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},  # the CoreDNS add-on's pods
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    aws = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}]}
    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": ALLOW_RUN, "namespace": namespace},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": own}],
            "egress": [{"to": own}, dns, aws],
        },
    }
    return [deny, allow]


def service_account_manifest(namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace}}


# ------------------------------------------------------------------------------------------
# Auto-teardown


def scale_node_group_to_zero_request(
    cluster_name: str, nodegroup_name: str, max_size: int, *, taint: bool = True
) -> dict:
    """`eks:UpdateNodegroupConfig` input: min = desired = 0 and, for GPU groups, a NoSchedule taint
    that reaches Cluster Autoscaler's template (DescribeNodegroup), so no pending pod fits.
    `maxSize` stays >= 1: the API refuses 0 (botocore model, `min: 1`)."""
    request: dict[str, Any] = {
        "clusterName": cluster_name,
        "nodegroupName": nodegroup_name,
        "scalingConfig": {"minSize": 0, "maxSize": max(1, max_size), "desiredSize": 0},
    }
    if taint:
        request["taints"] = {
            "addOrUpdateTaints": [{"key": EXPIRED_TAINT_KEY, "value": "true", "effect": "NO_SCHEDULE"}]
        }
    return request


def autoscaler_owner_tag(cluster_name: str) -> str:
    return CA_OWNER_TAG.format(cluster=cluster_name)


def release_from_autoscaler_request(group_name: str, cluster_name: str) -> dict:
    """`autoscaling:DeleteTags` input: the tag that gives Cluster Autoscaler a node group's Auto Scaling group.

    At expiry the node groups go to zero with a NoSchedule taint, but Cluster Autoscaler could still
    bring one back for the Job's re-created pods: it builds a group's template node from the last node
    it saw running there (its node-info cache, `--node-info-cache-expire-time`, default 10 years) or from
    DescribeNodegroup cached up to 6 minutes (`managed_nodegroup_cache.go`), and neither knows the new
    taint. Without this tag its role may no longer resize the group (the IAM condition fails at once) and
    it drops the group at its next Auto Scaling refresh (1 minute, `aws_manager.go` refreshInterval;
    `auto_scaling_groups.go` regenerate unregisters groups no longer found by their tags). The tag is a
    Pulumi resource (EksGpuNodeGroups), so the next `up` puts it back."""
    return {
        "Tags": [
            {"ResourceId": group_name, "ResourceType": "auto-scaling-group", "Key": autoscaler_owner_tag(cluster_name)}
        ]
    }


def manifests_for_validation(
    cluster: ClusterConfig, *, stack: str, locations: RunLocations, region: str, cluster_name: str = "trainstack"
) -> list[dict]:
    """Every manifest the backend applies, with placeholders where a real deploy has outputs."""
    ns = namespace_name(stack)
    job = job_spec(cluster)
    out = [
        namespace_manifest(ns, stack, pod_security_level(job.run_as_user)),
        service_account_manifest(ns),
        training_job(job, stack=stack, namespace=ns, locations=locations, region=region),
        training_job(job, stack=stack, namespace=ns, locations=locations, region=region, code_uri="s3://b/k.tar.gz"),
        *network_policies(ns),
    ]
    if job.nodes > 1:
        out.append(headless_service(job, ns))
    out.append(device_plugin_daemonset())
    out += cluster_autoscaler_manifests(cluster_name, cluster.eks.version, region)
    return out
