"""`trainstack:eks`: the eks backend's own section (cluster stacks) and the platform's shared control plane.

`check` is the eks backend's config hook (named by `trainstack/backends/eks.py`): it reads the cluster
section and applies what only EKS has (modes, Kubernetes versions, node AMI types and releases, the GPU
families the EKS NVIDIA AMIs drive). Rules any backend may share (spot all-or-nothing, AMI applicability,
the torchrun command check) are asked of the backend's capabilities in parse.py, not here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainstack.model import catalog, idle_stop
from trainstack.model.config.settings import Reader, Setting, Type, field_of, scalar_text, setting, settings_of

if TYPE_CHECKING:
    from trainstack.model.config.parse import ClusterDraft

EKS_MODES = ("dedicated", "shared")
# AL2023: <kubernetes version>-<build date>; Bottlerocket: <OS version>-<commit>.
EKS_RELEASE_RE = {
    "AL2023_x86_64_NVIDIA": re.compile(r"^(\d+)\.(\d+)\.\d+-\d{8}$"),
    "BOTTLEROCKET_x86_64_NVIDIA": re.compile(r"^\d+\.\d+\.\d+-[0-9a-f]{8}$"),
}
DEFAULT_AMI_TYPE = "AL2023_x86_64_NVIDIA"
SYSTEM_FIX = "use a small non-GPU type with at least 2 vCPUs, e.g. t3.medium (it runs Cluster Autoscaler and CoreDNS)"
CIDRS_FIX = "list IPv4 networks allowed to reach the Kubernetes API, e.g. [203.0.113.0/24] (default [0.0.0.0/0])"


def eks_support_status(version: str, today: dt.date) -> str:
    """standard | extended | ended, from the catalog's EKS release calendar."""
    v = catalog.EKS_VERSIONS[version]
    if today < dt.date.fromisoformat(v.end_of_standard_support):
        return "standard"
    return "extended" if today < dt.date.fromisoformat(v.end_of_extended_support) else "ended"


def _known_versions() -> list[str]:
    return sorted(catalog.EKS_VERSIONS, key=lambda v: tuple(int(p) for p in v.split(".")))


def _version(r: Reader, s: Setting, default: Any) -> str:
    if not r.has(s.key):
        return default
    value = r.raw(s.key)
    text = scalar_text(value)
    if isinstance(value, float):  # YAML reads an unquoted 1.30 as the float 1.3
        text = f"{value:.2f}" if f"{value:.2f}" in catalog.EKS_VERSIONS else f"{value:g}"
    if text not in catalog.EKS_VERSIONS:
        r.fail(
            s.key,
            value,
            f"is not an EKS Kubernetes version trainstack knows ({', '.join(_known_versions())})",
            f'use {catalog.EKS_DEFAULT_VERSION} (write it quoted, e.g. "{catalog.EKS_DEFAULT_VERSION}")',
        )
        return default
    status = eks_support_status(text, r.env.now.date())
    info = catalog.EKS_VERSIONS[text]
    if status == "ended":
        r.fail(
            s.key,
            value,
            f"reached the end of EKS extended support on {info.end_of_extended_support}; "
            "EKS creates no new clusters on it",
            f"use {catalog.EKS_DEFAULT_VERSION}",
        )
    elif status == "extended":
        r.env.warnings.append(
            f"{r.key(s.key)} = {text} is in EKS extended support (standard support ended "
            f"{info.end_of_standard_support}): the control plane costs "
            f"${catalog.EKS_EXTENDED_SUPPORT_USD_PER_HOUR:.2f}/h instead of ${catalog.EKS_CONTROL_PLANE_USD_PER_HOUR:.2f}/h "
            f"until {info.end_of_extended_support}. Use {catalog.EKS_DEFAULT_VERSION}."
        )
    return text


def _system_instance_type(r: Reader, s: Setting, default: Any) -> str:
    name = r._string(s, r.raw(s.key), default, False)
    spec = catalog.lookup(name)
    if spec is None:
        r.fail(s.key, name, "is not in trainstack's instance catalog", SYSTEM_FIX)
    elif spec.has_gpu:
        r.fail(s.key, name, "has a GPU: the system node runs around the clock", SYSTEM_FIX)
    elif spec.vcpus < 2:
        r.fail(s.key, name, f"has {spec.vcpus} vCPU", SYSTEM_FIX)
    else:
        return name
    return default


def _public_access_cidrs(r: Reader, s: Setting, default: Any) -> tuple[str, ...]:
    cidrs = r._strings(s, r.raw(s.key), None, False)
    if cidrs is None:
        return default
    if not cidrs:
        r.fail(s.key, [], "is empty", CIDRS_FIX)
    for c in cidrs:
        try:
            ipaddress.IPv4Network(c, strict=True)
            if "/" not in c:
                raise ValueError
        except ValueError:
            r.fail(s.key, list(cidrs), f"`{c}` is not an IPv4 network in CIDR notation", CIDRS_FIX)
    return cidrs


# EKS control plane log types (CreateCluster `logging.clusterLogging[].types`, botocore's `LogType` enum).
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
LOGS_FIX = f"list some of {', '.join(CONTROL_PLANE_LOG_TYPES)} (default [audit, authenticator]; [] turns them off)"
# IAM role names (IAM User Guide, "IAM object quotas": 64 characters of [\w+=,.@-]) or role ARNs (with a path).
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,64}$")
ROLES_FIX = (
    "list IAM role names of this account (looked up when the stack deploys) or role ARNs, "
    "e.g. [trainstack-ci-train, arn:aws:iam::111122223333:role/platform-admins]"
)
# The CI roles of .github/iam/ (docs/ci.md names them so): the train, reaper and PR-cleanup workflows
# create and destroy clusters, the preview workflow reads them. A default name with no role behind it in
# the account is skipped with a warning at deploy time (an explicitly listed one fails the deploy).
CI_ADMIN_ROLES = ("trainstack-ci-train", "trainstack-ci-reaper", "trainstack-ci-pr-cleanup")
CI_VIEWER_ROLES = ("trainstack-ci-preview",)


def _log_types(r: Reader, s: Setting, default: Any) -> tuple[str, ...]:
    types = r._strings(s, r.raw(s.key), None, False)
    if types is None:
        return default
    wrong = [t for t in types if t not in CONTROL_PLANE_LOG_TYPES]
    if wrong:
        r.fail(s.key, list(types), f"`{wrong[0]}` is not an EKS control plane log type", LOGS_FIX)
        return default
    return tuple(dict.fromkeys(types))


def _roles(r: Reader, s: Setting, default: Any) -> tuple[str, ...]:
    roles = r._strings(s, r.raw(s.key), None, False)
    if roles is None:
        return default
    for role in roles:
        if not (ROLE_NAME_RE.match(role) or ROLE_ARN_RE.match(role)):
            r.fail(s.key, list(roles), f"`{role}` is neither an IAM role name nor an IAM role ARN", ROLES_FIX)
            return default
    return tuple(dict.fromkeys(roles))


def _log_retention_days() -> tuple[Any, ...]:
    from trainstack.model.config.table import LOG_RETENTION_DAYS  # the table imports this module

    return LOG_RETENTION_DAYS


# Keys a cluster's dedicated control plane and the platform's shared one both take.
VERSION = Setting(
    "version",
    Type.STRING,
    "Kubernetes version of the control plane; one in EKS extended support warns (the control plane then costs "
    f"${catalog.EKS_EXTENDED_SUPPORT_USD_PER_HOUR:.2f}/h)",
    default=catalog.EKS_DEFAULT_VERSION,
    allowed="a version EKS still creates clusters on: " + ", ".join(_known_versions()) + " (quote it in YAML)",
    default_doc=f"`{catalog.EKS_DEFAULT_VERSION}` (the newest trainstack knows)",
    parse=_version,
)
SYSTEM_INSTANCE_TYPE = Setting(
    "systemInstanceType",
    Type.STRING,
    "the one on-demand node that runs Cluster Autoscaler and CoreDNS around the clock",
    fix=SYSTEM_FIX,
    default="t3.medium",
    allowed="a catalog type without a GPU, at least 2 vCPUs",
    parse=_system_instance_type,
)
PUBLIC_ACCESS_CIDRS = Setting(
    "publicAccessCidrs",
    Type.STRINGS,
    "who may reach the Kubernetes API endpoint",
    fix=CIDRS_FIX,
    default=("0.0.0.0/0",),
    allowed="IPv4 networks in CIDR notation",
    parse=_public_access_cidrs,
)
IDLE_STOP_FIX = (
    f"use 0 (off) or {idle_stop.MIN_MINUTES}-{idle_stop.MAX_MINUTES} minutes in steps of "
    f"{idle_stop.PERIOD_SECONDS // 60}, e.g. {idle_stop.DEFAULT_MINUTES}"
)


def _idle_stop_minutes(r: Reader, s: Setting, default: Any) -> int:
    value = r._integer(s, r.raw(s.key), None, False)
    if value is None:
        return default
    problem = idle_stop.minutes_problem(value)
    if problem:
        r.fail(s.key, value, problem, IDLE_STOP_FIX)
        return default
    return int(value)


IDLE_STOP_MINUTES = Setting(
    "idleStopMinutes",
    Type.INT,
    "idle stop: after this many minutes with no GPU instance and no pending pod (as CloudWatch reports them), "
    "AWS itself deletes the node groups and the control plane, which bill by the hour while the cluster idles "
    "(`pulumi up` recreates them, ~15-20 min); 0 turns it off. `expiresAt` stays the hard ceiling",
    fix=IDLE_STOP_FIX,
    lo=0,
    hi=idle_stop.MAX_MINUTES,
    default=idle_stop.DEFAULT_MINUTES,
    allowed=f"0 (off), or {idle_stop.MIN_MINUTES}-{idle_stop.MAX_MINUTES} in steps of {idle_stop.PERIOD_SECONDS // 60}",
    parse=_idle_stop_minutes,
)
CONTROL_PLANE_LOGS = Setting(
    "controlPlaneLogs",
    Type.STRINGS,
    "EKS control plane logs sent to CloudWatch Logs (`/aws/eks/<cluster>/cluster`, created with the "
    "stack's retention and encrypted with the platform's KMS key)",
    fix=LOGS_FIX,
    default=("audit", "authenticator"),
    allowed="any of " + ", ".join(f"`{t}`" for t in CONTROL_PLANE_LOG_TYPES) + "; `[]` turns them off",
    parse=_log_types,
)
ADMIN_ROLES = Setting(
    "adminRoles",
    Type.STRINGS,
    "IAM roles made Kubernetes cluster admins (an EKS access entry with AmazonEKSClusterAdminPolicy), "
    "besides whoever creates the cluster: whoever must refresh or destroy it (the CI's reaper) or debug it. "
    "Names are looked up in the deploying account (their path included)",
    fix=ROLES_FIX,
    default=CI_ADMIN_ROLES,
    allowed="IAM role names or role ARNs; a default name the account does not have is skipped with a warning",
    default_doc="the CI roles `" + "`, `".join(CI_ADMIN_ROLES) + "` (docs/ci.md)",
    parse=_roles,
)
VIEWER_ROLES = Setting(
    "viewerRoles",
    Type.STRINGS,
    "IAM roles that may read every Kubernetes object (AmazonEKSAdminViewPolicy): the CI's `pulumi preview`, "
    "whose refresh reads the cluster's objects",
    fix=ROLES_FIX,
    default=CI_VIEWER_ROLES,
    allowed="IAM role names or role ARNs; a default name the account does not have is skipped with a warning",
    default_doc="the CI preview role `" + "`, `".join(CI_VIEWER_ROLES) + "`",
    parse=_roles,
)
DEDICATED_ONLY = (
    "version",
    "systemInstanceType",
    "publicAccessCidrs",
    "idleStopMinutes",
    "controlPlaneLogs",
    "adminRoles",
    "viewerRoles",
)


@dataclass(frozen=True, kw_only=True)
class EksConfig:
    """`trainstack:eks` of a cluster stack (backend eks)."""

    mode: str = setting(
        "mode",
        Type.CHOICE,
        "dedicated: a control plane of the stack's own (~15-20 min to create, $0.10/h until destroy); "
        "shared: the platform's (`eks.sharedCluster`), so the stack adds only node groups and the job",
        values=EKS_MODES,
        default="dedicated",
    )
    version: str = field_of(VERSION)
    ami_type: str = setting(
        "amiType",
        Type.STRING,
        "the GPU node group's AMI type (both drive p3 with the R580 driver)",
        fix="use AL2023_x86_64_NVIDIA or BOTTLEROCKET_x86_64_NVIDIA",
        default=DEFAULT_AMI_TYPE,
        allowed=" | ".join(f"`{t}`" for t in catalog.EKS_GPU_AMI_TYPES) + "; `AL2_*` is refused (retired)",
    )
    release_version: str | None = setting(
        "releaseVersion",
        Type.STRING,
        "pin the node AMI release",
        fix="use an AMI release such as 1.35.0-20260120 (AL2023) or 1.50.0-0123abcd (Bottlerocket); "
        "`aws ssm get-parameter` on the EKS AMI release parameter lists the current one",
        allowed="AL2023: `<kubernetes version>-YYYYMMDD` of the same minor as `eks.version`; "
        "Bottlerocket: `<os version>-<commit>`",
        default_doc="the latest release",
    )
    system_instance_type: str = field_of(SYSTEM_INSTANCE_TYPE)
    public_access_cidrs: tuple[str, ...] = field_of(PUBLIC_ACCESS_CIDRS)
    idle_stop_minutes: int = field_of(IDLE_STOP_MINUTES)
    control_plane_logs: tuple[str, ...] = field_of(CONTROL_PLANE_LOGS)
    admin_roles: tuple[str, ...] = field_of(ADMIN_ROLES)
    viewer_roles: tuple[str, ...] = field_of(VIEWER_ROLES)
    run_as_user: int = setting(
        "runAsUser",
        Type.INT,
        "the uid the training container runs as: non-root meets the `restricted` Pod Security Standard, "
        "which the run's namespace then enforces; 0 runs as root (for an image that needs it; the namespace "
        "enforces `baseline`)",
        fix="use a uid from 1 to 2147483647, or 0 for an image that must run as root",
        lo=0,
        hi=2**31 - 1,
        default=1000,
    )

    @property
    def idle_stop(self) -> bool:
        """The cloud stops this cluster's control plane after `idle_stop_minutes` idle (dedicated mode only)."""
        return self.mode == "dedicated" and self.idle_stop_minutes > 0


@dataclass(frozen=True, kw_only=True)
class PlatformEksConfig:
    """`trainstack:eks` of a platform stack: a control plane shared by `eks.mode: shared` clusters."""

    shared_cluster: bool = setting(
        "sharedCluster",
        Type.BOOL,
        "hold an EKS control plane (with Cluster Autoscaler and the NVIDIA device plugin) that `eks.mode: shared` "
        "cluster stacks add their GPU node groups and jobs to; the other platform `eks.*` keys need it",
        default=False,
    )
    version: str = field_of(VERSION)
    system_instance_type: str = field_of(SYSTEM_INSTANCE_TYPE)
    public_access_cidrs: tuple[str, ...] = field_of(PUBLIC_ACCESS_CIDRS)
    control_plane_logs: tuple[str, ...] = field_of(CONTROL_PLANE_LOGS)
    log_retention_days: int = setting(
        "logRetentionDays",
        Type.INT,
        "retention of the shared control plane's logs (a cluster stack's own control plane keeps them for its "
        "`logRetentionDays`)",
        fix="use a number of days CloudWatch Logs accepts, e.g. 30",
        lo=1,
        hi=3653,
        values=_log_retention_days,
        what="a retention CloudWatch Logs accepts",
        default=30,
    )
    admin_roles: tuple[str, ...] = field_of(ADMIN_ROLES)
    viewer_roles: tuple[str, ...] = field_of(VIEWER_ROLES)
    developer_roles: tuple[str, ...] = setting(
        "developerRoles",
        Type.STRINGS,
        "IAM roles of the developers who deploy `eks.mode: shared` cluster stacks and follow their runs: "
        "cluster admins too (AmazonEKSClusterAdminPolicy; a cluster stack creates its namespace, which no "
        "namespace-scoped EKS access policy allows)",
        fix=ROLES_FIX,
        default=(),
        allowed="IAM role names (looked up in the account) or role ARNs",
        parse=_roles,
    )


def parse_platform(r: Reader) -> PlatformEksConfig:
    """The platform's `trainstack:eks` (unknown keys already refused)."""
    settings = dict(settings_of(PlatformEksConfig))
    if not r.read(settings.pop("shared_cluster")):
        for key in sorted(set(r.values) - {"sharedCluster"}):
            r.fail(
                key,
                r.values[key],
                "applies only with eks.sharedCluster: true",
                "set eks.sharedCluster: true, or remove it",
            )
        return PlatformEksConfig()
    return PlatformEksConfig(shared_cluster=True, **{name: r.read(s) for name, s in settings.items()})


def check(draft: ClusterDraft) -> dict[str, Any]:
    """The eks backend's config hook: its section, and what EKS managed node groups cannot do."""
    r = draft.section("eks")
    settings = dict(settings_of(EksConfig))
    mode = r.read(settings["mode"])
    shared = mode == "shared"
    if shared:
        # The platform owns these; a cluster stack cannot change a control plane it shares.
        for key in DEDICATED_ONLY:
            if r.has(key):
                r.fail(
                    key,
                    r.raw(key),
                    "applies to eks.mode dedicated; a shared cluster's control plane is the platform's",
                    f"set it in the platform stack's trainstack:eks, or remove eks.{key}",
                )
    version = catalog.EKS_DEFAULT_VERSION if shared else r.read(VERSION)
    ami = settings["ami_type"]
    ami_type = r.read(ami)
    if ami_type.startswith("AL2_"):
        r.fail(
            ami.key,
            ami_type,
            "is an Amazon Linux 2 AMI type; EKS stopped publishing AL2 AMIs on 2025-11-26 "
            "and has none for Kubernetes 1.33 or newer",
            "use AL2023_x86_64_NVIDIA (or BOTTLEROCKET_x86_64_NVIDIA)",
        )
        ami_type = DEFAULT_AMI_TYPE
    elif ami_type not in catalog.EKS_GPU_AMI_TYPES:
        r.fail(
            ami.key,
            ami_type,
            "is not an NVIDIA GPU AMI type of EKS managed node groups",
            f"use one of {', '.join(catalog.EKS_GPU_AMI_TYPES)}",
        )
        ami_type = DEFAULT_AMI_TYPE
    release = r.read(settings["release_version"])
    if release is not None:
        m = EKS_RELEASE_RE[ami_type].match(release)
        if m is None:
            r.fail(
                "releaseVersion",
                release,
                f"is not a release version of {ami_type}",
                "use <kubernetes version>-<YYYYMMDD> for AL2023 (e.g. 1.35.0-20260120), "
                "<os version>-<commit> for Bottlerocket",
            )
        elif ami_type.startswith("AL2023") and not shared and f"{m.group(1)}.{m.group(2)}" != version:
            r.fail(
                "releaseVersion",
                release,
                f"is an AMI for Kubernetes {m.group(1)}.{m.group(2)}, but eks.version is {version}",
                f"use a {version}.x-YYYYMMDD release, or change eks.version",
            )
    eks = EksConfig(
        mode=mode,
        version=version,
        ami_type=ami_type,
        release_version=release,
        system_instance_type=SYSTEM_INSTANCE_TYPE.default if shared else r.read(SYSTEM_INSTANCE_TYPE),
        public_access_cidrs=PUBLIC_ACCESS_CIDRS.default if shared else r.read(PUBLIC_ACCESS_CIDRS),
        # A shared control plane is the platform's and bills there; the stack's own GPU groups sit at zero.
        idle_stop_minutes=0 if shared else r.read(IDLE_STOP_MINUTES),
        control_plane_logs=CONTROL_PLANE_LOGS.default if shared else r.read(CONTROL_PLANE_LOGS),
        admin_roles=ADMIN_ROLES.default if shared else r.read(ADMIN_ROLES),
        viewer_roles=VIEWER_ROLES.default if shared else r.read(VIEWER_ROLES),
        run_as_user=r.read(settings["run_as_user"]),
    )

    gpu, job = draft.gpu, draft.job
    for t in gpu.instance_types:
        spec = catalog.lookup(t)
        if spec is not None and spec.has_gpu and spec.family not in catalog.EKS_NVIDIA_FAMILIES:
            draft.fail(
                "trainstack:gpu.instanceTypes",
                list(gpu.instance_types),
                f"`{t}` is not supported by the EKS NVIDIA AMIs",
                f"use types of {', '.join(catalog.EKS_NVIDIA_FAMILIES)}",
            )
    if job.nodes > 1 and not gpu.placement_group:
        draft.warn(
            f"trainstack:job.nodes = {job.nodes} without gpu.placementGroup: the GPU node groups span "
            "every AZ, so the pods may land in different AZs (slower NCCL, cross-AZ traffic billed); set "
            "gpu.placementGroup: true to keep them on one network spine in one AZ (spot capacity there "
            "is thinner)."
        )
    return {"eks": eks}
