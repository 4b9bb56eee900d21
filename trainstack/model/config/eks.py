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
DEDICATED_ONLY = ("version", "systemInstanceType", "publicAccessCidrs", "idleStopMinutes")


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
