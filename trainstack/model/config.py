"""Typed, validated stack configuration.

`parse_config(raw, ...)` turns the flat Pulumi config map (`"trainstack:gpu" -> value`, values
either native YAML values or the JSON strings the Pulumi engine hands a program) into frozen
dataclasses. Every problem found is collected and raised together as one `ConfigError` whose
lines each name the key, the bad value, what is allowed and how to fix it — before the program
registers a single resource. Warnings (legal but probably unintended) travel on the result.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainstack import backends
from trainstack.model import amis, catalog
from trainstack.model.cidr import SubnetPlanError, plan_subnets

NS = "trainstack"
KINDS = ("platform", "cluster")
EGRESS = ("public", "nat")
INPUT_MODES = ("File", "FastFile", "Pipe")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
DATA_ZONES = ("raw", "curated")
MAX_TTL_HOURS = 72
MIN_AZ, MAX_AZ = 2, 6
# CloudWatch Logs PutRetentionPolicy accepts exactly these retentionInDays.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
# SageMaker: MaxRuntimeInSeconds <= 28 days.
MAX_RUNTIME_HOURS = 28 * 24

OWNER_RE = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$")
FAMILY_RE = re.compile(r"^[a-z][a-z0-9-]*$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# registry[:port]/path[:tag][@digest], lower-case path components as Docker requires.
IMAGE_RE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@sha256:[a-f0-9]{64})?$"
)
ECR_RE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
# Tags that mark an image as built for CUDA 13 (e.g. `cu130`, `cuda13.0`, `cuda-13`).
CUDA13_TAG_RE = re.compile(r"(?:^|[^a-z0-9])(?:cu13\d|cuda-?13)(?:[^0-9]|$)", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class Problem:
    key: str
    value: Any
    problem: str
    fix: str

    def __str__(self) -> str:
        shown = "(not set)" if self.value is _MISSING else json.dumps(self.value, default=str)
        return f"{self.key} = {shown}: {self.problem}. Fix: {self.fix}"


class ConfigError(ValueError):
    """Invalid stack configuration; `problems` lists every key at fault."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid trainstack configuration ({len(self.problems)} problem(s)):\n{lines}")

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.problems]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


# --------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class DataLakeConfig:
    checkpoint_retention_days: int = 14
    noncurrent_version_days: int = 30
    multipart_abort_days: int = 7
    access_log_retention_days: int = 365
    glue_database: bool = True
    protect: bool = True


@dataclass(frozen=True)
class EksConfig:
    """`trainstack:eks` of a cluster stack (backend eks)."""

    mode: str = "dedicated"  # dedicated: a control plane per cluster stack; shared: the platform's
    version: str = catalog.EKS_DEFAULT_VERSION
    ami_type: str = "AL2023_x86_64_NVIDIA"
    release_version: str | None = None
    system_instance_type: str = "t3.medium"
    public_access_cidrs: tuple[str, ...] = ("0.0.0.0/0",)


@dataclass(frozen=True)
class PlatformEksConfig:
    """`trainstack:eks` of a platform stack: a control plane shared by `eks.mode: shared` clusters."""

    shared_cluster: bool = False
    version: str = catalog.EKS_DEFAULT_VERSION
    system_instance_type: str = "t3.medium"
    public_access_cidrs: tuple[str, ...] = ("0.0.0.0/0",)


@dataclass(frozen=True)
class PlatformConfig:
    az_count: int = 2
    availability_zones: tuple[str, ...] | None = None
    vpc_cidr: str = "10.40.0.0/16"
    egress: str = "public"
    data_lake: DataLakeConfig = field(default_factory=DataLakeConfig)
    flow_logs: bool = False  # VPC flow logs to the log bucket (billed per GB delivered)
    eks: PlatformEksConfig = field(default_factory=PlatformEksConfig)


@dataclass(frozen=True)
class GpuConfig:
    family: str
    instance_types: tuple[str, ...]
    max_instances: int
    on_demand_base: int = 0
    spot_percent: int = 100
    placement_group: bool = False
    root_volume_gib: int = 200
    ami_id: str | None = None
    ami_driver_branch: int | None = None

    @property
    def on_demand_percent_above_base(self) -> int:
        return 100 - self.spot_percent

    @property
    def smallest_gpus(self) -> int:
        return catalog.smallest_gpu_count(self.instance_types)

    @property
    def architectures(self) -> list[catalog.GpuArchitecture]:
        """The GPU architectures of the listed types, each once (what the AMI must drive)."""
        found = [k.architecture for k in map(catalog.lookup, self.instance_types) if k and k.architecture]
        return list({a: None for a in found})


@dataclass(frozen=True)
class DatasetRef:
    zone: str  # raw | curated
    prefix: str  # key prefix inside the zone's bucket, ends with "/"

    def __str__(self) -> str:
        return f"{self.zone}/{self.prefix}"


@dataclass(frozen=True)
class JobConfig:
    image: str
    dataset: DatasetRef
    command: tuple[str, ...] = ()
    nodes: int = 1
    gpus_per_node: int = 1
    max_runtime_hours: float = 6
    environment: Mapping[str, str] = field(default_factory=dict)
    master_port: int = 29500
    peer_timeout_minutes: int = 15
    workdir: str | None = None  # absolute path of the local folder shipped as the run's code


@dataclass(frozen=True)
class SageMakerConfig:
    spot: bool = True
    max_wait_hours: float | None = None  # None: derived (2 x maxRuntimeHours, at most 28 days)
    input_mode: str = "FastFile"
    distribution: str = "FullyReplicated"
    checkpoints: bool = True
    checkpoint_local_path: str = "/opt/ml/checkpoints"
    retry_attempts: int = 2
    vpc: bool = False
    hyperparameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterConfig:
    platform_stack: str
    owner: str
    backend: str
    expires_at: dt.datetime  # UTC, whole seconds
    gpu: GpuConfig
    job: JobConfig
    sagemaker: SageMakerConfig = field(default_factory=SageMakerConfig)
    log_retention_days: int = 14
    eks: EksConfig = field(default_factory=EksConfig)

    @property
    def max_runtime_seconds(self) -> int:
        return int(round(self.job.max_runtime_hours * 3600))

    @property
    def max_wait_seconds(self) -> int:
        hours = self.sagemaker.max_wait_hours
        if hours is None:
            hours = min(2 * self.job.max_runtime_hours, MAX_RUNTIME_HOURS)
        return int(round(hours * 3600))

    @property
    def expires_at_iso(self) -> str:
        return self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    region: str
    kind: str
    owner: str
    platform: PlatformConfig | None = None
    cluster: ClusterConfig | None = None
    warnings: tuple[str, ...] = ()

    @property
    def backend(self) -> str:
        return self.cluster.backend if self.cluster else "none"


# --------------------------------------------------------------------------------------------
# Key schema: every key the program reads, so that typos are reported instead of ignored.

PLATFORM_KEYS = {"azCount", "availabilityZones", "vpcCidr", "egress", "dataLake", "flowLogs", "eks"}
CLUSTER_KEYS = {
    "platformStack",
    "backend",
    "ttlHours",
    "expiresAt",
    "gpu",
    "job",
    "sagemaker",
    "logRetentionDays",
    "eks",
}
EKS_KEYS = {"mode", "version", "amiType", "releaseVersion", "systemInstanceType", "publicAccessCidrs"}
PLATFORM_EKS_KEYS = {"sharedCluster", "version", "systemInstanceType", "publicAccessCidrs"}
EKS_MODES = ("dedicated", "shared")
# AL2023: <kubernetes version>-<build date>; Bottlerocket: <OS version>-<commit>.
EKS_RELEASE_RE = {
    "AL2023_x86_64_NVIDIA": re.compile(r"^(\d+)\.(\d+)\.\d+-\d{8}$"),
    "BOTTLEROCKET_x86_64_NVIDIA": re.compile(r"^\d+\.\d+\.\d+-[0-9a-f]{8}$"),
}
COMMON_KEYS = {"kind", "owner"}
DATA_LAKE_KEYS = {
    "checkpointRetentionDays",
    "noncurrentVersionDays",
    "glueDatabase",
    "protect",
    "accessLogRetentionDays",
}
GPU_KEYS = {
    "family",
    "instanceTypes",
    "maxInstances",
    "onDemandBase",
    "spotPercent",
    "placementGroup",
    "rootVolumeGiB",
    "amiId",
    "amiDriverBranch",
}
JOB_KEYS = {
    "image",
    "command",
    "nodes",
    "gpusPerNode",
    "dataset",
    "maxRuntimeHours",
    "environment",
    "masterPort",
    "peerTimeoutMinutes",
    "workdir",
}
SAGEMAKER_KEYS = {
    "spot",
    "maxWaitHours",
    "inputMode",
    "distribution",
    "checkpoints",
    "checkpointLocalPath",
    "retryAttempts",
    "vpc",
    "hyperparameters",
}
# Defaults that Pulumi.yaml declares too (the CLI applies them to every stack of the project,
# so a platform-only key holding its default is not an error in a cluster stack).
SCHEMA_DEFAULTS = {"azCount": 2, "vpcCidr": "10.40.0.0/16", "egress": "public"}


class _Reader:
    """Reads typed values from one config object, collecting problems instead of raising."""

    def __init__(self, values: Mapping[str, Any], path: str, problems: list[Problem]):
        self.values = values
        self.path = path
        self.problems = problems

    def key(self, name: str) -> str:
        return f"{self.path}{name}" if self.path.endswith(":") else f"{self.path}.{name}"

    def raw(self, name: str) -> Any:
        return self.values.get(name, _MISSING)

    def fail(self, name: str, value: Any, problem: str, fix: str) -> None:
        self.problems.append(Problem(self.key(name), value, problem, fix))

    def has(self, name: str) -> bool:
        return name in self.values and self.values[name] is not None

    def integer(self, name: str, default: Any, lo: int, hi: int, fix: str, *, required: bool = False) -> Any:
        value = self.raw(name)
        if value is _MISSING or value is None:
            if required:
                self.fail(name, _MISSING, "is required", fix)
            return default
        parsed = _as_int(value)
        if parsed is None or not lo <= parsed <= hi:
            self.fail(name, value, f"must be a whole number from {lo} to {hi}", fix)
            return default
        return parsed

    def number(self, name: str, default: Any, lo: float, hi: float, fix: str, *, exclusive_lo: bool = False) -> Any:
        value = self.raw(name)
        if value is _MISSING or value is None:
            return default
        parsed = _as_float(value)
        ok = parsed is not None and (parsed > lo if exclusive_lo else parsed >= lo) and parsed <= hi
        if not ok:
            bound = f"greater than {lo:g}" if exclusive_lo else f"at least {lo:g}"
            self.fail(name, value, f"must be a number {bound} and at most {hi:g}", fix)
            return default
        return parsed

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is _MISSING or value is None:
            return default
        parsed = _as_bool(value)
        if parsed is None:
            self.fail(name, value, "must be true or false", f"write `{name}: true` or `{name}: false`")
            return default
        return parsed

    def string(
        self,
        name: str,
        default: Any,
        fix: str,
        *,
        required: bool = False,
        pattern: re.Pattern | None = None,
        what: str = "",
    ) -> Any:
        value = self.raw(name)
        if value is _MISSING or value is None or value == "":
            if required:
                self.fail(name, _MISSING, "is required", fix)
            return default
        if not isinstance(value, str):
            self.fail(name, value, "must be a string", fix)
            return default
        if pattern is not None and not pattern.match(value):
            self.fail(name, value, f"is not {what or 'valid'}", fix)
            return default
        return value

    def choice(
        self, name: str, default: Any, allowed: tuple[str, ...], fix: str = "", *, required: bool = False
    ) -> Any:
        value = self.raw(name)
        if value is _MISSING or value is None:
            if required:
                self.fail(name, _MISSING, f"is required (one of {', '.join(allowed)})", fix or f"set {self.key(name)}")
            return default
        if value not in allowed:
            hint = difflib.get_close_matches(str(value), allowed, n=1)
            fix = fix or f"use one of {', '.join(allowed)}"
            if hint:
                fix = f"did you mean `{hint[0]}`? ({fix})"
            self.fail(name, value, f"must be one of {', '.join(allowed)}", fix)
            return default
        return value

    def string_list(self, name: str, fix: str, *, required: bool = False) -> tuple[str, ...] | None:
        value = self.raw(name)
        if value is _MISSING or value is None:
            if required:
                self.fail(name, _MISSING, "is required", fix)
            return None
        value = _maybe_json(value)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(name, value, "must be a list of non-empty strings", fix)
            return None
        return tuple(value)

    def string_map(self, name: str, fix: str, key_re: re.Pattern | None = None) -> dict[str, str]:
        value = self.raw(name)
        if value is _MISSING or value is None:
            return {}
        value = _maybe_json(value)
        if not isinstance(value, dict):
            self.fail(name, value, "must be a map of names to values", fix)
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            if key_re is not None and not key_re.match(str(k)):
                self.fail(
                    f"{name}.{k}", v, f"`{k}` is not a valid name (letters, digits, _; not starting with a digit)", fix
                )
                continue
            if isinstance(v, (dict, list)) or v is None:
                self.fail(f"{name}.{k}", v, "must be a string, number or boolean", fix)
                continue
            out[str(k)] = _scalar_text(v)
        return out

    def obj(self, name: str) -> "_Reader":
        value = self.raw(name)
        if value is _MISSING or value is None:
            value = {}
        value = _maybe_json(value)
        if not isinstance(value, dict):
            self.fail(name, value, "must be an object (a YAML mapping)", f"write `{name}:` followed by indented keys")
            value = {}
        return _Reader(value, self.key(name), self.problems)

    def reject_unknown(self, known: set[str]) -> None:
        for name in self.values:
            if name not in known:
                hint = difflib.get_close_matches(name, sorted(known), n=1)
                fix = f"did you mean `{hint[0]}`?" if hint else f"remove it; known keys: {', '.join(sorted(known))}"
                self.fail(name, self.values[name], "is not a trainstack setting", fix)


def _maybe_json(value: Any) -> Any:
    # The Pulumi engine hands objects and lists to programs as JSON text.
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        parsed = float(value)
    elif isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
    else:
        return None
    return parsed if math.isfinite(parsed) else None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------------
# Entry points


def namespaced(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`{"trainstack:azCount": 2, "aws:region": ...}` -> `{"azCount": 2}`."""
    prefix = NS + ":"
    return {k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}


def parse_config(
    raw: Mapping[str, Any],
    *,
    project: str = "trainstack",
    stack: str,
    now: dt.datetime | None = None,
    root: str | None = None,
) -> StackConfig:
    """Validate the whole flat config map of one stack; raise ConfigError listing every problem.

    `root`: the project folder that relative paths (job.workdir) start from; default the cwd,
    which is the project folder under `pulumi up`."""
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    problems: list[Problem] = []
    warnings: list[str] = []
    values = namespaced(raw)
    top = _Reader(values, NS + ":", problems)

    region = raw.get("aws:region")
    if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", region or ""):
        problems.append(
            Problem(
                "aws:region",
                region if region is not None else _MISSING,
                "must be an AWS region such as us-east-1",
                "run `pulumi config set aws:region us-east-1` or add `aws:region` to the stack file",
            )
        )
        region = "us-east-1"

    kind = top.choice(
        "kind", None, KINDS, "set `trainstack:kind: platform` or `trainstack:kind: cluster`", required=True
    )
    owner_default = "platform" if kind == "platform" else None
    owner = top.string(
        "owner",
        owner_default,
        "use 1-20 lower-case letters, digits or '-', starting with a letter (it becomes part of "
        "S3 prefixes, IAM scopes and resource names)",
        required=kind == "cluster",
        pattern=OWNER_RE,
        what="DNS-safe",
    )

    top.reject_unknown(COMMON_KEYS | PLATFORM_KEYS | CLUSTER_KEYS)
    other = CLUSTER_KEYS if kind == "platform" else PLATFORM_KEYS if kind == "cluster" else set()
    other = other - (CLUSTER_KEYS & PLATFORM_KEYS)  # keys both kinds read (each with its own schema)
    for name in sorted(other & set(values)):
        if name in SCHEMA_DEFAULTS and str(values[name]) == str(SCHEMA_DEFAULTS[name]):
            continue  # put there by the Pulumi CLI from Pulumi.yaml's defaults, not by the user
        top.fail(
            name,
            values[name],
            f"applies to {'cluster' if kind == 'platform' else 'platform'} stacks, not to a {kind} stack",
            "remove it from this stack's file",
        )

    platform = cluster = None
    if kind == "platform":
        platform = _parse_platform(top, region, problems, now, warnings)
    elif kind == "cluster":
        cluster = _parse_cluster(top, region, now, owner or "x", problems, warnings, root=root)

    if problems:
        raise ConfigError(problems)
    return StackConfig(
        project=project,
        stack=stack,
        region=region,
        kind=kind,
        owner=owner,
        platform=platform,
        cluster=cluster,
        warnings=tuple(warnings),
    )


def _parse_platform(
    top: _Reader, region: str, problems: list[Problem], now: dt.datetime, warnings: list[str]
) -> PlatformConfig:
    az_count = top.integer(
        "azCount",
        2,
        MIN_AZ,
        MAX_AZ,
        f"use {MIN_AZ}-{MAX_AZ}: at least two AZs so GPU capacity can be found when one AZ is out",
    )
    egress = top.choice("egress", "public", EGRESS)
    zones = top.string_list("availabilityZones", f"list {az_count} AZ names of {region}, e.g. [{region}a, {region}b]")
    if zones is not None:
        if len(zones) != az_count:
            top.fail(
                "availabilityZones",
                list(zones),
                f"lists {len(zones)} zones but azCount is {az_count}",
                "list exactly azCount zones, or drop availabilityZones to use the first available ones",
            )
        if len(set(zones)) != len(zones):
            top.fail("availabilityZones", list(zones), "lists a zone twice", "list each zone once")
        bad = [z for z in zones if not re.fullmatch(re.escape(region) + r"[a-z]", z)]
        if bad:
            top.fail(
                "availabilityZones",
                list(zones),
                f"{', '.join(bad)} is not an AZ of {region}",
                f"use names like {region}a",
            )
    cidr = top.string("vpcCidr", "10.40.0.0/16", "use a private IPv4 CIDR from /16 to /24, e.g. 10.40.0.0/16")
    try:
        if "/" not in str(cidr):
            raise ValueError("no prefix length")
        net = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError:
        top.fail(
            "vpcCidr",
            cidr,
            "is not an IPv4 network in CIDR notation (host bits must be zero)",
            "use a private IPv4 CIDR from /16 to /24, e.g. 10.40.0.0/16",
        )
    else:
        if not 16 <= net.prefixlen <= 24:
            top.fail(
                "vpcCidr",
                cidr,
                "must have a prefix length from /16 to /24 (AWS allows /16-/28 for a VPC; "
                "/24 is the smallest that leaves room for GPU nodes in every AZ)",
                "use e.g. 10.40.0.0/16",
            )
        elif not net.is_private:
            top.fail(
                "vpcCidr",
                cidr,
                "is not a private (RFC 1918) range",
                "use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
            )
        else:
            try:
                plan_subnets(cidr, az_count, egress)
            except SubnetPlanError as exc:
                top.fail("vpcCidr", cidr, str(exc), "use a larger VPC CIDR or fewer AZs")

    lake = top.obj("dataLake")
    lake.reject_unknown(DATA_LAKE_KEYS)
    data_lake = DataLakeConfig(
        checkpoint_retention_days=lake.integer(
            "checkpointRetentionDays", 14, 1, 3650, "use a number of days from 1 to 3650 (old checkpoints cost storage)"
        ),
        noncurrent_version_days=lake.integer(
            "noncurrentVersionDays", 30, 1, 3650, "use a number of days from 1 to 3650"
        ),
        access_log_retention_days=lake.integer(
            "accessLogRetentionDays", 365, 1, 3650, "use a number of days from 1 to 3650"
        ),
        glue_database=lake.boolean("glueDatabase", True),
        protect=lake.boolean("protect", True),
    )
    return PlatformConfig(
        az_count=az_count,
        availability_zones=zones,
        vpc_cidr=cidr,
        egress=egress,
        data_lake=data_lake,
        flow_logs=top.boolean("flowLogs", False),
        eks=_parse_platform_eks(top.obj("eks"), now, warnings),
    )


def _parse_expiry(top: _Reader, now: dt.datetime) -> dt.datetime:
    latest = now + dt.timedelta(hours=MAX_TTL_HOURS)
    if top.has("expiresAt"):
        text = top.raw("expiresAt")
        parsed = _parse_utc(text)
        if parsed is None:
            top.fail("expiresAt", text, "is not an ISO 8601 UTC time", "write it like 2026-11-22T18:00:00Z")
        elif parsed <= now:
            top.fail(
                "expiresAt",
                text,
                f"is in the past (now is {now:%Y-%m-%dT%H:%M:%SZ})",
                "set a future time, or use trainstack:ttlHours",
            )
        elif parsed > latest + dt.timedelta(minutes=1):
            top.fail(
                "expiresAt",
                text,
                f"is more than {MAX_TTL_HOURS} hours away",
                f"set a time before {latest:%Y-%m-%dT%H:%M:%SZ}; long-lived compute is not a training cluster",
            )
        else:
            return parsed
        return latest
    ttl = top.integer(
        "ttlHours",
        None,
        1,
        MAX_TTL_HOURS,
        f"set trainstack:ttlHours to 1-{MAX_TTL_HOURS} (or trainstack:expiresAt); every cluster "
        "is torn down automatically when it expires",
        required=True,
    )
    if ttl is None:
        return latest
    # Whole hours, rounded up: repeated `pulumi up`s within an hour keep the same expiry tags.
    base = now.replace(minute=0, second=0, microsecond=0)
    if base < now:
        base += dt.timedelta(hours=1)
    return base + dt.timedelta(hours=ttl)


def _parse_utc(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() != dt.timedelta(0):
        return None
    return parsed.astimezone(dt.timezone.utc).replace(microsecond=0)


def _parse_dataset(job: _Reader) -> DatasetRef:
    fix = "write zone/prefix/ inside the data lake, e.g. raw/cifar10/v1/ (zones: raw, curated)"
    text = job.string("dataset", None, fix, required=True)
    if text is None:
        return DatasetRef("raw", "unset/")
    zone, _, prefix = text.partition("/")
    if (
        zone not in DATA_ZONES
        or not prefix.strip("/")
        or ".." in prefix.split("/")
        or text.startswith("s3://")
        or prefix.startswith("/")
        or not re.fullmatch(r"[A-Za-z0-9!_.*'()/=+-]+", prefix)
    ):
        job.fail("dataset", text, "is not a prefix in the raw or curated zone of the data lake", fix)
        return DatasetRef("raw", "unset/")
    return DatasetRef(zone, prefix if prefix.endswith("/") else prefix + "/")


def parse_dataset_ref(text: Any, *, key: str = "trainstack:job.dataset") -> DatasetRef:
    """`raw/<prefix>/` or `curated/<prefix>/` exactly as `job.dataset` accepts it; ConfigError naming `key`."""
    problems: list[Problem] = []
    ref = _parse_dataset(_Reader({"dataset": text}, "trainstack:job", problems))
    if problems:
        raise ConfigError([Problem(key, p.value, p.problem, p.fix) for p in problems])
    return ref


def _parse_cluster(
    top: _Reader,
    region: str,
    now: dt.datetime,
    owner: str,
    problems: list[Problem],
    warnings: list[str],
    *,
    root: str | None = None,
) -> ClusterConfig:
    platform_stack = top.string(
        "platformStack",
        "",
        "set trainstack:platformStack to the platform stack's name, e.g. "
        "organization/trainstack/platform (a cluster stack creates no VPC or bucket of its own)",
        required=True,
        pattern=re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$"),
        what="a stack name",
    )
    backend = top.choice("backend", "ecs", backends.names(), required=True)
    expires_at = _parse_expiry(top, now)
    log_retention = top.integer("logRetentionDays", 14, 1, 3653, "use a number of days from 1 to 3653")
    if log_retention not in LOG_RETENTION_DAYS:
        top.fail(
            "logRetentionDays",
            log_retention,
            "is not a retention CloudWatch Logs accepts",
            f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
        )
        log_retention = 14

    job_r = top.obj("job")
    job_r.reject_unknown(JOB_KEYS)
    nodes = job_r.integer("nodes", 1, 1, 64, "use 1-64 nodes")
    gpus_per_node = job_r.integer("gpusPerNode", 1, 1, 8, "use 1-8 GPUs per node")
    image = job_r.string(
        "image",
        "",
        "set job.image to an ECR image URI or a public deep learning container",
        required=True,
        pattern=IMAGE_RE,
        what="a container image reference",
    )
    command = job_r.string_list("command", "write the command as a list, e.g. [python, train.py]") or ()
    if backend == "ec2" and not command:
        job_r.fail(
            "command",
            _MISSING,
            "is required for the ec2 backend (torchrun starts it on every node)",
            "set job.command, e.g. [python, train.py]",
        )
    if backend == "ec2" and command:
        # The same check the node bootstrap makes at boot, where a failure would waste GPU time.
        from trainstack.model.torchrun import check_command

        try:
            check_command(command)
        except ValueError as exc:
            job_r.fail(
                "command",
                list(command),
                f"cannot be started with torchrun: {exc}",
                "write it as [python, train.py, ...] or [python, -m, package.module, ...]",
            )
    max_runtime = job_r.number(
        "maxRuntimeHours",
        6,
        0,
        MAX_RUNTIME_HOURS,
        f"use hours greater than 0 and at most {MAX_RUNTIME_HOURS}",
        exclusive_lo=True,
    )
    job = JobConfig(
        image=image or "",
        dataset=_parse_dataset(job_r),
        command=command,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        max_runtime_hours=max_runtime,
        environment=job_r.string_map("environment", "use NAME: value pairs", ENV_NAME_RE),
        master_port=job_r.integer("masterPort", 29500, 1024, 65535, "use a port from 1024 to 65535"),
        peer_timeout_minutes=job_r.integer("peerTimeoutMinutes", 15, 1, 240, "use 1-240 minutes"),
        workdir=_parse_workdir(job_r, root),
    )
    _check_code_delivery(job_r, backend, image or "", command, warnings, job.workdir)
    reserved = sorted(k for k in job.environment if k.startswith(("TRAINSTACK_", "AWS_")))
    if reserved:
        job_r.fail(
            "environment",
            dict(job.environment),
            f"sets reserved variable(s) {', '.join(reserved)}",
            "rename them; trainstack sets TRAINSTACK_* and AWS sets AWS_*",
        )

    gpu = _parse_gpu(top.obj("gpu"), backend, job, warnings)
    _check_region_offers(gpu, region, problems)

    hours_left = (expires_at - now).total_seconds() / 3600
    if max_runtime > hours_left + 1e-9:
        warnings.append(
            f"trainstack:job.maxRuntimeHours = {max_runtime:g} is longer than the cluster lives "
            f"({hours_left:.1f} h until {expires_at:%Y-%m-%dT%H:%M:%SZ}): the auto-teardown will stop the job first."
        )

    sm_r = top.obj("sagemaker")
    sm_r.reject_unknown(SAGEMAKER_KEYS)
    sagemaker = _parse_sagemaker(sm_r, backend, job, gpu, region, max_runtime)
    if backend != "sagemaker" and sm_r.values:
        warnings.append(f"trainstack:sagemaker is set but the backend is {backend}: those settings are ignored.")

    if backend == "ecs" and nodes > 1:
        job_r.fail(
            "nodes",
            nodes,
            "must be 1 for the ecs backend (an ECS task runs on one instance; ECS offers "
            "no peer discovery for a multi-node torchrun)",
            "use backend ec2 (or sagemaker) for multi-node training, or set job.nodes: 1",
        )
    eks_r = top.obj("eks")
    eks = _parse_eks(eks_r, backend, job, gpu, now, warnings)
    if backend != "eks" and eks_r.values:
        warnings.append(f"trainstack:eks is set but the backend is {backend}: those settings are ignored.")

    return ClusterConfig(
        platform_stack=platform_stack,
        owner=owner,
        backend=backend,
        expires_at=expires_at,
        gpu=gpu,
        job=job,
        sagemaker=sagemaker,
        log_retention_days=log_retention,
        eks=eks,
    )


def _parse_workdir(job_r: _Reader, root: str | None) -> str | None:
    """job.workdir: a local folder with at least one file, made absolute against the project root."""
    import os

    from trainstack.model.code_delivery import bundle_files

    value = job_r.string("workdir", None, "use a folder path, e.g. examples/cifar10")
    if value is None:
        return None
    path = os.path.abspath(os.path.join(root or os.getcwd(), os.path.expanduser(value)))
    if not os.path.isdir(path):
        what = "is a file, not a folder" if os.path.exists(path) else f"does not exist (looked for {path})"
        job_r.fail(
            "workdir",
            value,
            what,
            "point job.workdir at the folder holding your training script, relative to the project root or absolute",
        )
        return None
    if not bundle_files(path):
        job_r.fail(
            "workdir",
            value,
            "is an empty folder (caches like __pycache__ and .git do not count)",
            "put your training script in it, or point job.workdir at the folder that holds it",
        )
        return None
    return path


# AWS Deep Learning Containers: stock images that hold no user code.
DLC_REPOSITORY_RE = re.compile(r"^(?:[a-z0-9-]+-)?(?:pytorch|tensorflow|mxnet)-(?:training|inference)(?:-[a-z0-9-]+)?$")


def _relative_script(command: tuple[str, ...]) -> str | None:
    """The script a command runs from the working folder (`python train.py`, `bash run.sh`), if any."""
    args = [a for a in command[1:] if not a.startswith("-")] if command else []
    if command[:1] and command[0].rsplit("/", 1)[-1].startswith(("python", "bash", "sh")) and "-m" not in command[1:2]:
        script = args[0] if args else None
    else:
        script = command[0] if command else None
    if script and not script.startswith("/") and script.endswith((".py", ".sh")):
        return script
    return None


def _check_code_delivery(
    job_r: _Reader, backend: str, image: str, command: tuple[str, ...], warnings: list[str], workdir: str | None
) -> None:
    import os

    workdir_set = job_r.has("workdir")
    m = IMAGE_RE.match(image) if image else None
    stock = bool(m and DLC_REPOSITORY_RE.match(m.group("path").rsplit("/", 1)[-1]))
    script = _relative_script(command)
    if stock and script and not workdir_set:
        warnings.append(
            f"trainstack:job.command runs `{script}` from the working folder, but job.image `{image}` is a stock "
            "Deep Learning Container that holds no such file and job.workdir is not set: the job would fail at "
            "start. Set job.workdir to the folder with your script (e.g. examples/cifar10), or bake it into the image."
        )
    if workdir and script and not os.path.isfile(os.path.join(workdir, script)):
        job_r.fail(
            "command",
            list(command),
            f"runs `{script}`, which is not in job.workdir ({workdir})",
            f"add {script} to the workdir, or fix the path in job.command (it is relative to the workdir)",
        )
    tag = (m.group("tag") or "") if m else ""
    if backend == "ecs" and workdir_set and stock and tag.endswith("sagemaker"):
        # Its entrypoint (start_with_right_hostname.sh) runs `eval "$@"`, which re-parses the code-fetching
        # entry script as shell; the -ec2 variants exec their arguments unchanged.
        job_r.fail(
            "image",
            image,
            "is the SageMaker variant of a Deep Learning Container, whose entrypoint "
            "re-parses the container command as shell and so breaks the code-fetching entry script",
            f"use the EC2 variant of the same image (tag ending in -ec2), e.g. {image[: -len('sagemaker')]}ec2",
        )
    if workdir_set and not command:
        job_r.fail(
            "command",
            _MISSING,
            "is required with job.workdir (it says what to run in the unpacked folder)",
            "set job.command, e.g. [python, train.py]",
        )
    if backend == "sagemaker" and workdir_set and command:
        from trainstack.model.code_delivery import sagemaker_entry

        try:
            sagemaker_entry(command)
        except ValueError as exc:
            job_r.fail(
                "command",
                list(command),
                f"cannot be run by SageMaker's training toolkit: {exc}",
                "write it as [python, script.py, --name, value, ...] (the toolkit passes hyperparameters "
                "as --name value pairs), or drop job.workdir and bake the code into your image",
            )


def _parse_gpu(g: _Reader, backend: str, job: JobConfig, warnings: list[str]) -> GpuConfig:
    g.reject_unknown(GPU_KEYS)
    types = (
        g.string_list("instanceTypes", "list GPU instance types, e.g. [p3.2xlarge, p3.8xlarge]", required=True) or ()
    )
    family = g.string(
        "family",
        catalog.family_of(types[0]) if types else "p3",
        "use an instance family such as p3, g5 or p4d",
        pattern=FAMILY_RE,
        what="an instance family",
    )
    for t in types:
        if not catalog.is_instance_type_syntax(t):
            g.fail("instanceTypes", list(types), f"`{t}` is not an instance type name", "write names like p3.2xlarge")
            continue
        spec = catalog.lookup(t)
        if t.startswith("ml.") and backend != "sagemaker":
            g.fail(
                "instanceTypes",
                list(types),
                f"`{t}` is a SageMaker name; the {backend} backend launches EC2 instances",
                f"write {catalog.ec2_name(t)}",
            )
        elif spec is None:
            g.fail(
                "instanceTypes",
                list(types),
                f"`{t}` is not in trainstack's GPU catalog",
                f"use a catalog type such as {', '.join(catalog.suggest(t, None))}",
            )
        elif not spec.has_gpu:
            g.fail(
                "instanceTypes",
                list(types),
                f"`{t}` has no NVIDIA GPU",
                f"use GPU types such as {', '.join(catalog.suggest(t, family))}",
            )
        elif not catalog.matches_placement(t, family):
            g.fail(
                "instanceTypes",
                list(types),
                f"`{t}` is not in gpu.family {family} (the placement constraint "
                f"`{catalog.placement_expression(family)}` would never place a task on it)",
                f"use {family} types such as {', '.join(catalog.suggest(t, family))}, or change gpu.family",
            )
    if len(set(types)) != len(types):
        g.fail("instanceTypes", list(types), "lists a type twice", "list each type once")

    max_instances = g.integer("maxInstances", max(job.nodes, 1), 1, 256, "use 1-256 instances")
    on_demand_base = g.integer("onDemandBase", 0, 0, 256, "use 0 to maxInstances")
    spot_percent = g.integer(
        "spotPercent", 100, 0, 100, "use 0-100: the share of capacity above onDemandBase that runs on spot"
    )
    placement_group = g.boolean("placementGroup", False)
    root = g.integer("rootVolumeGiB", 200, 30, 16384, "use 30-16384 GiB (the GPU AMIs need at least 30)")
    ami_id = g.string(
        "amiId",
        None,
        "use an AMI id like ami-0123456789abcdef0",
        pattern=re.compile(r"^ami-[0-9a-f]{8,17}$"),
        what="an AMI id",
    )
    driver = g.integer("amiDriverBranch", None, 400, 999, "use the NVIDIA driver branch of the AMI, e.g. 580")

    gpu = GpuConfig(
        family=family,
        instance_types=types,
        max_instances=max_instances,
        on_demand_base=on_demand_base,
        spot_percent=spot_percent,
        placement_group=placement_group,
        root_volume_gib=root,
        ami_id=ami_id,
        ami_driver_branch=driver,
    )

    known = [catalog.lookup(t) for t in types]
    with_gpus = [k for k in known if k is not None and k.has_gpu]
    if types and len(with_gpus) == len(known) and job.gpus_per_node > gpu.smallest_gpus:
        smallest = min(with_gpus, key=lambda k: k.gpus)
        g.problems.append(
            Problem(
                "trainstack:job.gpusPerNode",
                job.gpus_per_node,
                f"is more than the {smallest.gpus} GPU(s) of {smallest.name}, the smallest listed type: a task "
                "asking for it could never be placed there",
                f"lower job.gpusPerNode to {smallest.gpus} or drop {smallest.name} from gpu.instanceTypes",
            )
        )
    if job.nodes > max_instances:
        g.problems.append(
            Problem(
                "trainstack:job.nodes",
                job.nodes,
                f"is more than gpu.maxInstances ({max_instances})",
                "raise gpu.maxInstances or train on fewer nodes",
            )
        )
    if on_demand_base > max_instances:
        g.fail(
            "onDemandBase",
            on_demand_base,
            f"is more than maxInstances ({max_instances})",
            "set onDemandBase to at most maxInstances",
        )
    families = sorted({catalog.family_of(t) for t in types})
    if placement_group and len(families) > 1:
        g.fail(
            "placementGroup",
            True,
            f"needs one instance family, but instanceTypes mixes {', '.join(families)} "
            "(a cluster placement group cannot reliably hold different families)",
            "list types of one family, or set placementGroup: false",
        )

    archs = {k.architecture.name: k.architecture for k in known if k is not None and k.architecture}
    volta = archs.get("Volta")
    if volta is not None:
        image_match = IMAGE_RE.match(job.image) if job.image else None
        tag = (image_match.group("tag") if image_match else None) or ""
        if CUDA13_TAG_RE.search(tag):
            warnings.append(
                f"trainstack:job.image `{job.image}` looks built for CUDA 13, which no longer compiles for Volta "
                f"(compute capability {volta.compute_capability}, the {family} GPUs): use a CUDA 12.x image."
            )
        if driver is not None and driver > (volta.last_driver_branch or driver):
            g.fail(
                "amiDriverBranch",
                driver,
                f"is newer than R{volta.last_driver_branch}, the last NVIDIA driver branch that supports Volta "
                f"({family})",
                f"use an AMI with an R{volta.last_driver_branch}-or-older driver",
            )
        elif backend in amis.table_backends() and ami_id is not None and driver is None:
            warnings.append(
                f"gpu.amiId {ami_id} is pinned for Volta ({family}): it must load NVIDIA's proprietary kernel module "
                f"with an R{volta.last_driver_branch}-or-older driver (the open module does not drive V100s). Set "
                "gpu.amiDriverBranch so trainstack can check the branch."
            )
    if ami_id is None and types and all(k is not None and k.architecture for k in known):
        refused = amis.problem_for(backend, family, gpu.architectures)
        if refused is not None:
            g.fail("amiId", _MISSING, *refused)
    return gpu


def _check_region_offers(gpu: GpuConfig, region: str, problems: list[Problem]) -> None:
    """Refuse a GPU type the stack's region does not offer (from the price table's regions)."""
    for t in gpu.instance_types:
        if catalog.offered_in(t, region) is not False:
            continue
        offered_here = set(catalog.types_offered_in(region))
        here = [n.name for n in catalog.gpu_types() if n.name in offered_here]  # catalog order: small first
        same_family = [n for n in here if catalog.matches_placement(n, gpu.family)]
        offered = ", ".join((same_family or here)[:8])
        problems.append(
            Problem(
                "trainstack:gpu.instanceTypes",
                list(gpu.instance_types),
                f"`{t}` is not offered in {region} (aws:region); regions that offer it: "
                f"{', '.join(catalog.regions_offering(t))}",
                f"use a type {region} offers ({'' if same_family else 'no ' + gpu.family + ' types there; '}{offered}), "
                "or move the stack to a region that offers it",
            )
        )


def _parse_sagemaker(
    s: _Reader, backend: str, job: JobConfig, gpu: GpuConfig, region: str, max_runtime: float
) -> SageMakerConfig:
    cfg = SageMakerConfig(
        spot=s.boolean("spot", True),
        max_wait_hours=s.number(
            "maxWaitHours",
            None,
            0,
            MAX_RUNTIME_HOURS,
            f"use hours at least job.maxRuntimeHours and at most {MAX_RUNTIME_HOURS}",
            exclusive_lo=True,
        ),
        input_mode=s.choice("inputMode", "FastFile", INPUT_MODES),
        distribution=s.choice("distribution", "FullyReplicated", DISTRIBUTIONS),
        checkpoints=s.boolean("checkpoints", True),
        checkpoint_local_path=s.string(
            "checkpointLocalPath",
            "/opt/ml/checkpoints",
            "use an absolute path",
            pattern=re.compile(r"^/[\w./-]*$"),
            what="an absolute path",
        ),
        retry_attempts=s.integer("retryAttempts", 2, 1, 30, "use 1-30 attempts"),
        vpc=s.boolean("vpc", False),
        hyperparameters=s.string_map("hyperparameters", "use name: value pairs"),
    )
    if backend != "sagemaker":
        return cfg
    if cfg.max_wait_hours is not None and not cfg.spot:
        s.fail(
            "maxWaitHours", cfg.max_wait_hours, "applies to managed spot training only", "remove it, or set spot: true"
        )
    if cfg.spot and cfg.max_wait_hours is not None and cfg.max_wait_hours < max_runtime:
        s.fail(
            "maxWaitHours",
            cfg.max_wait_hours,
            f"is less than job.maxRuntimeHours ({max_runtime:g}); SageMaker requires MaxWaitTime >= MaxRuntime",
            f"set sagemaker.maxWaitHours to at least {max_runtime:g}",
        )
    if cfg.spot and not cfg.checkpoints:
        s.fail(
            "checkpoints",
            False,
            "is off while spot is on: an interrupted spot job would restart from scratch",
            "set sagemaker.checkpoints: true, or sagemaker.spot: false",
        )
    if cfg.input_mode == "Pipe" and (job.nodes > 1 or job.gpus_per_node > 1):
        s.fail(
            "inputMode",
            "Pipe",
            "cannot feed several training processes: a Pipe channel is one FIFO per instance that only one "
            "reader can consume, and the PyTorch containers do not read it",
            "use inputMode FastFile (streams from S3; add distribution: ShardedByS3Key to split the data "
            "across nodes), or File",
        )
    if len(gpu.instance_types) != 1:
        s.problems.append(
            Problem(
                "trainstack:gpu.instanceTypes",
                list(gpu.instance_types),
                "must list exactly one type for the sagemaker backend (a training job runs on one instance type)",
                "keep the one type to train on, e.g. [ml.p3.2xlarge]",
            )
        )
    for t in gpu.instance_types:
        spec = catalog.lookup(t)
        if spec is not None and spec.has_gpu and spec.sagemaker_usd_per_hour is None:
            s.problems.append(
                Problem(
                    "trainstack:gpu.instanceTypes",
                    list(gpu.instance_types),
                    f"`{t}` is not offered for SageMaker training",
                    "use a type SageMaker trains on, e.g. ml.p3.2xlarge or ml.g5.xlarge",
                )
            )
    if gpu.placement_group:
        s.problems.append(
            Problem(
                "trainstack:gpu.placementGroup",
                True,
                "does not apply to SageMaker (it places training instances itself)",
                "remove gpu.placementGroup",
            )
        )
    m = IMAGE_RE.match(job.image) if job.image else None
    registry = (m.group("registry") if m else None) or ""
    ecr = ECR_RE.match(registry)
    if job.image and m and not ecr:
        s.problems.append(
            Problem(
                "trainstack:job.image",
                job.image,
                "is not an Amazon ECR image; SageMaker training pulls images from ECR only",
                "push the image to ECR, or use an AWS Deep Learning Container such as "
                f"763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker",
            )
        )
    elif ecr and ecr.group("region") != region:
        s.problems.append(
            Problem(
                "trainstack:job.image",
                job.image,
                f"is in ECR region {ecr.group('region')}, but the job runs in {region}; SageMaker "
                "pulls training images from its own region only",
                f"use the {region} copy of the image",
            )
        )
    return cfg


# --------------------------------------------------------------------------------------------
# EKS


def eks_support_status(version: str, today: dt.date) -> str:
    """standard | extended | ended, from the catalog's EKS release calendar."""
    v = catalog.EKS_VERSIONS[version]
    if today < dt.date.fromisoformat(v.end_of_standard_support):
        return "standard"
    return "extended" if today < dt.date.fromisoformat(v.end_of_extended_support) else "ended"


def _eks_version(r: _Reader, now: dt.datetime, warnings: list[str]) -> str:
    known = sorted(catalog.EKS_VERSIONS, key=lambda v: tuple(int(p) for p in v.split(".")))
    value = r.raw("version")
    if value is _MISSING or value is None:
        return catalog.EKS_DEFAULT_VERSION
    text = _scalar_text(value)
    if isinstance(value, float):  # YAML reads an unquoted 1.30 as the float 1.3
        text = f"{value:.2f}" if f"{value:.2f}" in catalog.EKS_VERSIONS else f"{value:g}"
    if text not in catalog.EKS_VERSIONS:
        r.fail(
            "version",
            value,
            f"is not an EKS Kubernetes version trainstack knows ({', '.join(known)})",
            f'use {catalog.EKS_DEFAULT_VERSION} (write it quoted, e.g. "{catalog.EKS_DEFAULT_VERSION}")',
        )
        return catalog.EKS_DEFAULT_VERSION
    status = eks_support_status(text, now.date())
    info = catalog.EKS_VERSIONS[text]
    if status == "ended":
        r.fail(
            "version",
            value,
            f"reached the end of EKS extended support on {info.end_of_extended_support}; "
            "EKS creates no new clusters on it",
            f"use {catalog.EKS_DEFAULT_VERSION}",
        )
    elif status == "extended":
        warnings.append(
            f"{r.key('version')} = {text} is in EKS extended support (standard support ended "
            f"{info.end_of_standard_support}): the control plane costs "
            f"${catalog.EKS_EXTENDED_SUPPORT_USD_PER_HOUR:.2f}/h instead of ${catalog.EKS_CONTROL_PLANE_USD_PER_HOUR:.2f}/h "
            f"until {info.end_of_extended_support}. Use {catalog.EKS_DEFAULT_VERSION}."
        )
    return text


def _system_instance_type(r: _Reader) -> str:
    default = "t3.medium"
    name = r.string("systemInstanceType", default, "use a small non-GPU type with at least 2 vCPUs, e.g. t3.medium")
    spec = catalog.lookup(name)
    fix = "use a small non-GPU type with at least 2 vCPUs, e.g. t3.medium (it runs Cluster Autoscaler and CoreDNS)"
    if spec is None:
        r.fail("systemInstanceType", name, "is not in trainstack's instance catalog", fix)
    elif spec.has_gpu:
        r.fail("systemInstanceType", name, "has a GPU: the system node runs around the clock", fix)
    elif spec.vcpus < 2:
        r.fail("systemInstanceType", name, f"has {spec.vcpus} vCPU", fix)
    else:
        return name
    return default


def _public_access_cidrs(r: _Reader) -> tuple[str, ...]:
    fix = "list IPv4 networks allowed to reach the Kubernetes API, e.g. [203.0.113.0/24] (default [0.0.0.0/0])"
    cidrs = r.string_list("publicAccessCidrs", fix)
    if cidrs is None:
        return ("0.0.0.0/0",)
    if not cidrs:
        r.fail("publicAccessCidrs", [], "is empty", fix)
    for c in cidrs:
        try:
            ipaddress.IPv4Network(c, strict=True)
            if "/" not in c:
                raise ValueError
        except ValueError:
            r.fail("publicAccessCidrs", list(cidrs), f"`{c}` is not an IPv4 network in CIDR notation", fix)
    return cidrs


def _parse_eks(
    r: _Reader, backend: str, job: JobConfig, gpu: GpuConfig, now: dt.datetime, warnings: list[str]
) -> EksConfig:
    r.reject_unknown(EKS_KEYS)
    if backend != "eks":
        return EksConfig()
    mode = r.choice("mode", "dedicated", EKS_MODES)
    shared = mode == "shared"
    if shared:
        # The platform owns these; a cluster stack cannot change a control plane it shares.
        for key in ("version", "systemInstanceType", "publicAccessCidrs"):
            if r.has(key):
                r.fail(
                    key,
                    r.raw(key),
                    "applies to eks.mode dedicated; a shared cluster's control plane is the platform's",
                    f"set it in the platform stack's trainstack:eks, or remove eks.{key}",
                )
    version = catalog.EKS_DEFAULT_VERSION if shared else _eks_version(r, now, warnings)
    ami_type = r.string("amiType", "AL2023_x86_64_NVIDIA", "use AL2023_x86_64_NVIDIA or BOTTLEROCKET_x86_64_NVIDIA")
    if ami_type.startswith("AL2_"):
        r.fail(
            "amiType",
            ami_type,
            "is an Amazon Linux 2 AMI type; EKS stopped publishing AL2 AMIs on 2025-11-26 "
            "and has none for Kubernetes 1.33 or newer",
            "use AL2023_x86_64_NVIDIA (or BOTTLEROCKET_x86_64_NVIDIA)",
        )
        ami_type = "AL2023_x86_64_NVIDIA"
    elif ami_type not in catalog.EKS_GPU_AMI_TYPES:
        r.fail(
            "amiType",
            ami_type,
            "is not an NVIDIA GPU AMI type of EKS managed node groups",
            f"use one of {', '.join(catalog.EKS_GPU_AMI_TYPES)}",
        )
        ami_type = "AL2023_x86_64_NVIDIA"
    release = r.string(
        "releaseVersion",
        None,
        "use an AMI release such as 1.35.0-20260120 (AL2023) or "
        "1.50.0-0123abcd (Bottlerocket); `aws ssm get-parameter` on the EKS AMI release parameter "
        "lists the current one",
    )
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
    cfg = EksConfig(
        mode=mode,
        version=version,
        ami_type=ami_type,
        release_version=release,
        system_instance_type="t3.medium" if shared else _system_instance_type(r),
        public_access_cidrs=("0.0.0.0/0",) if shared else _public_access_cidrs(r),
    )

    # What a managed node group cannot do.
    g = "trainstack:gpu"
    if gpu.spot_percent not in (0, 100):
        r.problems.append(
            Problem(
                f"{g}.spotPercent",
                gpu.spot_percent,
                "must be 0 or 100 for the eks backend (a managed node group is all spot or all on-demand)",
                "set gpu.spotPercent: 100 (spot) or 0 (on-demand)",
            )
        )
    if gpu.on_demand_base > 0:
        r.problems.append(
            Problem(
                f"{g}.onDemandBase",
                gpu.on_demand_base,
                "does not apply to the eks backend (a managed node group has no on-demand base)",
                "remove gpu.onDemandBase, and use gpu.spotPercent: 0 for on-demand nodes",
            )
        )
    if gpu.ami_id is not None:
        r.problems.append(
            Problem(
                f"{g}.amiId",
                gpu.ami_id,
                "does not apply to the eks backend (EKS picks the node AMI from eks.amiType and eks.releaseVersion)",
                "remove gpu.amiId; pin an AMI release with eks.releaseVersion",
            )
        )
    if gpu.ami_driver_branch is not None:
        r.problems.append(
            Problem(
                f"{g}.amiDriverBranch",
                gpu.ami_driver_branch,
                "does not apply to the eks backend (the EKS NVIDIA AMI picks the driver for the "
                "GPU at boot: R580 for Volta)",
                "remove gpu.amiDriverBranch",
            )
        )
    for t in gpu.instance_types:
        spec = catalog.lookup(t)
        if spec is not None and spec.has_gpu and spec.family not in catalog.EKS_NVIDIA_FAMILIES:
            r.problems.append(
                Problem(
                    f"{g}.instanceTypes",
                    list(gpu.instance_types),
                    f"`{t}` is not supported by the EKS NVIDIA AMIs",
                    f"use types of {', '.join(catalog.EKS_NVIDIA_FAMILIES)}",
                )
            )
    distributed = job.nodes > 1 or job.gpus_per_node > 1
    if distributed and not job.command:
        r.problems.append(
            Problem(
                "trainstack:job.command",
                _MISSING,
                "is required for a multi-GPU eks job (torchrun starts it in every pod)",
                "set job.command, e.g. [python, train.py]",
            )
        )
    elif distributed:
        from trainstack.model.torchrun import check_command

        try:
            check_command(job.command)
        except ValueError as exc:
            r.problems.append(
                Problem(
                    "trainstack:job.command",
                    list(job.command),
                    f"cannot be started with torchrun: {exc}",
                    "write it as [python, train.py, ...] or [python, -m, package.module, ...]",
                )
            )
    if job.nodes > 1 and not gpu.placement_group:
        warnings.append(
            f"trainstack:job.nodes = {job.nodes} without gpu.placementGroup: the GPU node groups span "
            "every AZ, so the pods may land in different AZs (slower NCCL, cross-AZ traffic billed); set "
            "gpu.placementGroup: true to keep them on one network spine in one AZ (spot capacity there "
            "is thinner)."
        )
    return cfg


def _parse_platform_eks(r: _Reader, now: dt.datetime, warnings: list[str]) -> PlatformEksConfig:
    r.reject_unknown(PLATFORM_EKS_KEYS)
    shared = r.boolean("sharedCluster", False)
    if not shared:
        for key in sorted(set(r.values) - {"sharedCluster"}):
            r.fail(
                key,
                r.values[key],
                "applies only with eks.sharedCluster: true",
                "set eks.sharedCluster: true, or remove it",
            )
        return PlatformEksConfig()
    return PlatformEksConfig(
        shared_cluster=True,
        version=_eks_version(r, now, warnings),
        system_instance_type=_system_instance_type(r),
        public_access_cidrs=_public_access_cidrs(r),
    )
