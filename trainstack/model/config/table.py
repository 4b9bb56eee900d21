"""The config table: every `trainstack:` key, declared once as a field of the frozen dataclass it parses into.

Each `setting(...)` names the key, its type, default, bounds / choices / pattern, the sentence the docs
show and the fix a refusal names. The reader (settings.Reader.read), the unknown-key refusal, the schema
in Pulumi.yaml and docs/configuration.md are all derived from these fields; cross-field rules live in
parse.py and in the backends' own hooks (eks.py, sagemaker.py, ecs.py).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from trainstack import backends
from trainstack.backends import AmiSource, Capabilities, CommandRule, SpotMode
from trainstack.model import catalog
from trainstack.model.config.eks import EksConfig, PlatformEksConfig
from trainstack.model.config.sagemaker import MAX_RUNTIME_HOURS, SageMakerConfig
from trainstack.model.config.settings import (
    REQUIRED,
    Applies,
    Derived,
    Reader,
    Setting,
    Type,
    keys_of,
    section,
    setting,
)

KINDS = ("platform", "cluster")
EGRESS = ("public", "nat")
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
# AWS Deep Learning Containers: stock images that hold no user code.
DLC_REPOSITORY_RE = re.compile(r"^(?:[a-z0-9-]+-)?(?:pytorch|tensorflow|mxnet)-(?:training|inference)(?:-[a-z0-9-]+)?$")
STACK_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$")


# --------------------------------------------------------------------------------------------
# Values no plain type expresses


@dataclass(frozen=True)
class DatasetRef:
    """A dataset in the data lake: its zone and the key prefix inside that zone's bucket."""

    zone: str  # raw | curated
    prefix: str  # key prefix inside the zone's bucket, ends with "/"

    def __str__(self) -> str:
        return f"{self.zone}/{self.prefix}"


UNSET_DATASET = DatasetRef("raw", "unset/")


def read_dataset(r: Reader, s: Setting, default: Any) -> DatasetRef:
    text = r._string(s, r.raw(s.key), None, True)
    if text is None:
        return UNSET_DATASET
    zone, _, prefix = text.partition("/")
    if (
        zone not in DATA_ZONES
        or not prefix.strip("/")
        or ".." in prefix.split("/")
        or text.startswith("s3://")
        or prefix.startswith("/")
    ):
        r.fail(s.key, text, "is not a prefix in the raw or curated zone of the data lake", r.fix_of(s))
        return UNSET_DATASET
    # S3's "safe characters" for object keys (S3 User Guide, "Naming Amazon S3 objects"); anything else
    # (spaces, `&`, `$`, non-ASCII) needs URL encoding in every tool that names the prefix.
    unsafe = sorted({ch for ch in prefix if not re.fullmatch(r"[A-Za-z0-9!_.*'()/=+-]", ch)})
    if unsafe:
        shown = ", ".join("a space" if ch == " " else f"`{ch}`" for ch in unsafe)
        r.fail(
            s.key,
            text,
            f"contains {shown}: only S3's safe key characters are allowed (letters, digits, ! - _ . ' ( ) = + /)",
            "rename the prefix, e.g. raw/my-data/v1/",
        )
        return UNSET_DATASET
    # The prefix goes into the run's IAM grants (`arn:...:s3:::<bucket>/<zone>/<prefix>*`), where `*` and `?`
    # are wildcards (IAM User Guide, "IAM JSON policy elements: Resource"): `raw/a*/` would grant `raw/abc/`.
    # An empty segment (`raw/a//b/`) is a different S3 key than the one a user means, never a typo to keep.
    if "*" in prefix or "//" in prefix:
        found = "a `*` (a wildcard in the run's IAM grants)" if "*" in prefix else "an empty segment (`//`)"
        r.fail(s.key, text, f"contains {found}", "name one exact prefix, e.g. raw/cifar10/v1/")
        return UNSET_DATASET
    return DatasetRef(zone, prefix if prefix.endswith("/") else prefix + "/")


def read_workdir(r: Reader, s: Setting, default: Any) -> str | None:
    """A local folder whose every entry can be read and that holds at least one file, made absolute
    against the project root."""
    from trainstack.model.code_delivery import scan

    value = r._string(s, r.raw(s.key), None, False)
    if value is None:
        return None
    path = os.path.abspath(os.path.join(r.env.root or os.getcwd(), os.path.expanduser(value)))
    if not os.path.isdir(path):
        what = "is a file, not a folder" if os.path.exists(path) else f"does not exist (looked for {path})"
        r.fail(s.key, value, what, r.fix_of(s))
        return None
    files, unreadable = scan(path)
    if unreadable:
        shown = ", ".join(unreadable[:5]) + (f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else "")
        r.fail(
            s.key,
            value,
            f"holds entries trainstack cannot read ({shown}: permission denied); the whole folder is shipped "
            "as the run's code",
            f"make them readable (e.g. chmod -R u+rX {value}), or move them out of the workdir",
        )
        return None
    if not files:
        r.fail(
            s.key,
            value,
            "is an empty folder (caches like __pycache__ and .git do not count)",
            "put your training script in it, or point job.workdir at the folder that holds it",
        )
        return None
    return path


def parse_utc(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() != dt.timedelta(0):
        return None
    return parsed.astimezone(dt.timezone.utc).replace(microsecond=0)


def read_utc_time(r: Reader, s: Setting, default: Any) -> dt.datetime | None:
    if not r.has(s.key):
        return None
    text = r.raw(s.key)
    parsed = parse_utc(text)
    if parsed is None:
        r.fail(s.key, text, "is not an ISO 8601 UTC time", r.fix_of(s))
    return parsed


# --------------------------------------------------------------------------------------------
# Which backends a key applies to, asked of their capabilities


def _spot_reason(c: Capabilities) -> str:
    if c.spot is SpotMode.ALL_OR_NOTHING:
        return "its GPU capacity is all spot or all on-demand, with no on-demand base"
    return "it buys spot capacity as managed spot training, switched by sagemaker.spot"


ON_DEMAND_BASE_APPLIES = Applies(
    lambda c: c.spot is SpotMode.MIXED,
    lambda c: (
        _spot_reason(c),
        "remove gpu.onDemandBase, and use gpu.spotPercent: 0 for on-demand nodes"
        if c.spot is SpotMode.ALL_OR_NOTHING
        else "remove gpu.onDemandBase (sagemaker.spot: false trains on-demand)",
    ),
)
SPOT_PERCENT_APPLIES = Applies(
    lambda c: c.spot is not SpotMode.MANAGED,
    lambda c: (_spot_reason(c), "remove gpu.spotPercent (sagemaker.spot: false trains on-demand)"),
)
PLACEMENT_APPLIES = Applies(
    lambda c: c.placement_group,
    lambda c: ("it places its instances itself", "remove gpu.placementGroup"),
)


def _ami_reason(c: Capabilities, what: str) -> str:
    if c.ami is AmiSource.NODE_GROUP:  # EKS managed node groups (AmiSource.NODE_GROUP)
        return (
            "the node group picks its AMI from eks.amiType and eks.releaseVersion"
            if what == "AMI"
            else "the node group's AMI picks the driver for the GPU at boot: R580 for Volta"
        )
    return f"the service picks its hosts' {what}"


AMI_ID_APPLIES = Applies(
    lambda c: c.ami is AmiSource.TABLE,
    lambda c: (
        _ami_reason(c, "AMI"),
        "remove gpu.amiId" + ("; pin an AMI release with eks.releaseVersion" if c.ami is AmiSource.NODE_GROUP else ""),
    ),
)
AMI_DRIVER_APPLIES = Applies(
    lambda c: c.ami is AmiSource.TABLE,
    lambda c: (_ami_reason(c, "driver"), "remove gpu.amiDriverBranch"),
)


def _torchrun_applies(key: str) -> Applies:
    return Applies(
        lambda c: c.command is not CommandRule.NEVER,
        lambda c: ("the image or the service starts the command there, not trainstack's torchrun", f"remove job.{key}"),
    )


# --------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True, kw_only=True)
class DataLakeConfig:
    """The platform's data lake settings (trainstack:dataLake)."""

    checkpoint_retention_days: int = setting(
        "checkpointRetentionDays",
        Type.INT,
        "objects under `checkpoints/` expire after this many days",
        fix="use a number of days from 1 to 3650 (old checkpoints cost storage)",
        lo=1,
        hi=3650,
        default=14,
    )
    noncurrent_version_days: int = setting(
        "noncurrentVersionDays",
        Type.INT,
        "old (noncurrent) object versions expire after this many days",
        fix="use a number of days from 1 to 3650",
        lo=1,
        hi=3650,
        default=30,
    )
    multipart_abort_days: int = 7  # not a key: incomplete multipart uploads are aborted after a week
    access_log_retention_days: int = setting(
        "accessLogRetentionDays",
        Type.INT,
        "S3 server access logs expire after this many days",
        fix="use a number of days from 1 to 3650",
        lo=1,
        hi=3650,
        default=365,
    )
    glue_database: bool = setting("glueDatabase", Type.BOOL, "a Glue database over the curated zone", default=True)
    protect: bool = setting(
        "protect",
        Type.BOOL,
        "protect the buckets and the key from deletion; `false` only for throwaway test platforms",
        default=True,
    )


@dataclass(frozen=True, kw_only=True)
class PlatformConfig:
    """A platform stack's settings."""

    az_count: int = setting(
        "azCount",
        Type.INT,
        "number of availability zones to spread subnets and GPU capacity over",
        fix=f"use {MIN_AZ}-{MAX_AZ}: at least two AZs so GPU capacity can be found when one AZ is out",
        lo=MIN_AZ,
        hi=MAX_AZ,
        default=2,
    )
    availability_zones: tuple[str, ...] | None = setting(
        "availabilityZones",
        Type.STRINGS,
        "pin the AZs (some lack your GPU type)",
        fix="list {azCount} AZ names of {region}, e.g. [{region}a, {region}b]",
        allowed="`azCount` AZ names of the stack's region",
        default_doc="the first `azCount` available AZs",
    )
    vpc_cidr: str = setting(
        "vpcCidr",
        Type.STRING,
        "the VPC's range, cut into 8 slots: one per AZ",
        fix="use a private IPv4 CIDR from /16 to /24, e.g. 10.40.0.0/16",
        allowed="a private IPv4 CIDR from /16 to /24, large enough for `azCount` subnets of at least /28",
        default="10.40.0.0/16",
    )
    egress: str = setting(
        "egress",
        Type.CHOICE,
        "public: an internet gateway and public IPs, nothing inbound; nat: private subnets and one NAT gateway "
        "($0.045/h)",
        values=EGRESS,
        default="public",
    )
    data_lake: DataLakeConfig = section("dataLake", DataLakeConfig, "the long-lived, protected S3 data lake")
    flow_logs: bool = setting(
        "flowLogs",
        Type.BOOL,
        "VPC flow logs (all traffic) to the log bucket under `vpc-flow-logs/` ($0.25/GB delivered plus storage)",
        default=False,
    )
    eks: PlatformEksConfig = section(
        "eks",
        PlatformEksConfig,
        "an EKS control plane shared by `eks.mode: shared` cluster stacks",
        note="The keys other than `sharedCluster` apply only with `sharedCluster: true`.",
    )


@dataclass(frozen=True, kw_only=True)
class GpuConfig:
    """A cluster's GPU capacity settings (trainstack:gpu)."""

    family: str = setting(
        "family",
        Type.STRING,
        "the instance family; ECS places tasks with `attribute:ecs.instance-type =~ <family>.*`, so every "
        "listed type must match it",
        fix="use an instance family such as p3, g5 or p4d",
        pattern=FAMILY_RE,
        what="an instance family",
        allowed="e.g. `p3`, `g5`, `p4d`",
        default=Derived("the family of the first instance type"),
    )
    instance_types: tuple[str, ...] = setting(
        "instanceTypes",
        Type.STRINGS,
        "the GPU instance types; several types mean more spot capacity pools",
        fix="list GPU instance types, e.g. [p3.2xlarge, p3.8xlarge]",
        min_items=1,
        allowed="GPU types of trainstack's catalog offered in the region (`ml.` names on sagemaker); "
        "at most as many as the backend takes",
        default=REQUIRED,
    )
    max_instances: int = setting(
        "maxInstances",
        Type.INT,
        "the GPU group's maximum size",
        fix="use 1-256 instances",
        lo=1,
        hi=256,
        allowed="1-256, at least `job.nodes`",
        default=Derived("`job.nodes`"),
    )
    on_demand_base: int = setting(
        "onDemandBase",
        Type.INT,
        "instances that are always on-demand",
        fix="use 0 to maxInstances",
        lo=0,
        hi=256,
        allowed="0-`maxInstances`",
        default=0,
        applies=ON_DEMAND_BASE_APPLIES,
    )
    spot_percent: int = setting(
        "spotPercent",
        Type.INT,
        "the share of capacity above `onDemandBase` that runs on spot",
        fix="use 0-100: the share of capacity above onDemandBase that runs on spot",
        lo=0,
        hi=100,
        allowed="0-100; 0 or 100 where capacity is all spot or all on-demand (eks)",
        default=100,
        applies=SPOT_PERCENT_APPLIES,
    )
    placement_group: bool = setting(
        "placementGroup",
        Type.BOOL,
        "a cluster placement group: the nodes in one AZ on one network spine (one instance family)",
        default=False,
        applies=PLACEMENT_APPLIES,
    )
    root_volume_gib: int = setting(
        "rootVolumeGiB",
        Type.INT,
        "the encrypted gp3 root volume (SageMaker: the training volume)",
        fix="use 30-16384 GiB (the GPU AMIs need at least 30)",
        lo=30,
        hi=16384,
        allowed="30-16384, and at least the AMI's root snapshot (checked at preview)",
        default=200,
    )
    ami_id: str | None = setting(
        "amiId",
        Type.STRING,
        "pin the GPU AMI; required where no AWS-maintained AMI drives the GPU on the backend (ec2 + p3). "
        "A pinned Volta AMI must load the proprietary module with an R580-or-older driver",
        fix="use an AMI id like ami-0123456789abcdef0",
        pattern=re.compile(r"^ami-[0-9a-f]{8,17}$"),
        what="an AMI id",
        allowed="`ami-…`",
        default_doc="the backend's AWS-maintained AMI for the GPU architecture (trainstack/backends/<name>.py)",
        applies=AMI_ID_APPLIES,
    )
    ami_driver_branch: int | None = setting(
        "amiDriverBranch",
        Type.INT,
        "the pinned AMI's NVIDIA driver branch; over 580 is refused for Volta (p3), and a pinned Volta AMI "
        "without it draws a warning",
        fix="use the NVIDIA driver branch of the AMI, e.g. 580",
        lo=400,
        hi=999,
        applies=AMI_DRIVER_APPLIES,
    )

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


@dataclass(frozen=True, kw_only=True)
class JobConfig:
    """A cluster's training job settings (trainstack:job)."""

    image: str = setting(
        "image",
        Type.STRING,
        "the training container image (sagemaker: ECR in the stack's region)",
        fix="set job.image to an ECR image URI or a public deep learning container",
        pattern=IMAGE_RE,
        what="a container image reference",
        allowed="an image reference",
        default=REQUIRED,
    )
    dataset: DatasetRef = setting(
        "dataset",
        Type.STRING,
        "the read-only input",
        fix="write zone/prefix/ inside the data lake, e.g. raw/cifar10/v1/ (zones: raw, curated)",
        allowed="`raw/<prefix>/` or `curated/<prefix>/` (one exact prefix: no `*`, no empty segment)",
        default=REQUIRED,
        parse=read_dataset,
    )
    command: tuple[str, ...] = setting(
        "command",
        Type.STRINGS,
        "what to run; with `workdir`, run in the unpacked folder. Backends whose nodes start it with torchrun "
        "(ec2 always, eks with more than one GPU) require one torchrun can start",
        fix="write the command as a list, e.g. [python, train.py]",
        default=(),
        default_doc="the image's own command",
    )
    nodes: int = setting(
        "nodes",
        Type.INT,
        "training nodes",
        fix="use 1-64 nodes",
        lo=1,
        hi=64,
        allowed="1-64; 1 on backends without multi-node training (ecs)",
        default=1,
    )
    gpus_per_node: int = setting(
        "gpusPerNode",
        Type.INT,
        "GPUs per node: training processes per node",
        fix="use 1-8 GPUs per node",
        lo=1,
        hi=8,
        allowed="1-8, at most the GPUs of the smallest listed type",
        default=1,
    )
    max_runtime_hours: float = setting(
        "maxRuntimeHours",
        Type.NUMBER,
        "the job's hard stop",
        fix=f"use hours greater than 0 and at most {MAX_RUNTIME_HOURS}",
        lo=0,
        hi=MAX_RUNTIME_HOURS,
        exclusive_lo=True,
        default=6,
    )
    environment: Mapping[str, str] = setting(
        "environment",
        Type.MAP,
        "extra environment variables; `TRAINSTACK_*` and `AWS_*` are reserved (every container gets "
        "TRAINSTACK_DATASET_URI, TRAINSTACK_ARTIFACT_URI, TRAINSTACK_MODEL_URI and TRAINSTACK_CHECKPOINT_URI)",
        fix="use NAME: value pairs",
        pattern=ENV_NAME_RE,
        what="a valid name (letters, digits, _; not starting with a digit)",
        allowed="NAME: value",
        default={},
    )
    master_port: int = setting(
        "masterPort",
        Type.INT,
        "torchrun's rendezvous port (eks: the rank 0 pod's)",
        fix="use a port from 1024 to 65535",
        lo=1024,
        hi=65535,
        default=29500,
        applies=_torchrun_applies("masterPort"),
    )
    peer_timeout_minutes: int = setting(
        "peerTimeoutMinutes",
        Type.INT,
        "how long torchrun's peers wait for each other",
        fix="use 1-240 minutes",
        lo=1,
        hi=240,
        default=15,
        applies=_torchrun_applies("peerTimeoutMinutes"),
    )
    workdir: str | None = setting(
        "workdir",
        Type.STRING,
        "the local folder shipped as the run's code (packed once, fetched by every backend); the script in "
        "`command` must be in it; "
        "sagemaker: `command` must be `[python, script.py, --name, value, ...]`",
        fix="point job.workdir at the folder holding your training script, relative to the project root or absolute",
        allowed="a readable local folder with at least one file, relative to the project root or absolute",
        default_doc="none: the code is in the image",
        parse=read_workdir,
    )


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """A cluster stack's settings."""

    platform_stack: str = setting(
        "platformStack",
        Type.STRING,
        "the platform stack this cluster runs on (a cluster creates no VPC or bucket of its own)",
        fix="set trainstack:platformStack to the platform stack's name, e.g. "
        "organization/trainstack/platform (a cluster stack creates no VPC or bucket of its own)",
        pattern=STACK_NAME_RE,
        what="a stack name",
        allowed="a stack name, e.g. `organization/trainstack/platform`",
        default=REQUIRED,
    )
    owner: str  # trainstack:owner, a key every stack reads (declared once, on the stack: see OWNER)
    backend: str = setting(
        "backend",
        Type.CHOICE,
        "where training runs",
        values=backends.names,
        default=REQUIRED,
    )
    ttl_hours: int | None = setting(
        "ttlHours",
        Type.INT,
        "hours until the in-cloud teardown stops the cluster, counted from the next full hour (stable across "
        "repeated `up`s within the hour)",
        fix=f"set trainstack:ttlHours to 1-{MAX_TTL_HOURS} (or trainstack:expiresAt); every cluster "
        "is torn down automatically when it expires",
        lo=1,
        hi=MAX_TTL_HOURS,
        default_doc="required unless `expiresAt` is set",
    )
    expires_at: dt.datetime = setting(
        "expiresAt",
        Type.TIME,
        "absolute expiry (`trainstack run` sets it); wins over `ttlHours`",
        fix="write it like 2026-11-22T18:00:00Z",
        allowed=f"ISO 8601 UTC, in the future, at most {MAX_TTL_HOURS} h away",
        default=Derived("the next full hour + `ttlHours`"),
        parse=read_utc_time,
    )
    gpu: GpuConfig = section("gpu", GpuConfig, "the GPU instances")
    job: JobConfig = section("job", JobConfig, "the training job")
    sagemaker: SageMakerConfig = section("sagemaker", SageMakerConfig, "the SageMaker job", backend="sagemaker")
    log_retention_days: int = setting(
        "logRetentionDays",
        Type.INT,
        "CloudWatch log retention; the log groups are encrypted with the platform's KMS key",
        fix="use a number of days from 1 to 3653",
        lo=1,
        hi=3653,
        values=LOG_RETENTION_DAYS,
        what="a retention CloudWatch Logs accepts",
        default=14,
    )
    eks: EksConfig = section(
        "eks",
        EksConfig,
        "the EKS cluster",
        backend="eks",
        note="`version`, `systemInstanceType`, `publicAccessCidrs` and `idleStopMinutes` apply to `mode: dedicated`: "
        "a shared control plane is the platform's (its `trainstack:eks`).",
    )

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


# Keys every stack reads, declared once and carried by both kinds of stack.
KIND = Setting(
    "kind",
    Type.CHOICE,
    "what this stack is: platform (the long-lived network and data lake) or cluster (one ephemeral training cluster)",
    fix="set `trainstack:kind: platform` or `trainstack:kind: cluster`",
    values=KINDS,
    default=REQUIRED,
)
OWNER = Setting(
    "owner",
    Type.STRING,
    "who owns the stack: a cluster's developer (scopes IAM to `artifacts/<owner>/<stack>/`, names resources) "
    "or the platform's team (tags only)",
    fix="use 1-20 lower-case letters, digits or '-', starting with a letter (it becomes part of "
    "S3 prefixes, IAM scopes and resource names)",
    pattern=OWNER_RE,
    what="DNS-safe",
    allowed="DNS-safe: 1-20 lower-case letters, digits or `-`, starting with a letter",
    default=Derived("`platform` in a platform stack; required in a cluster stack"),
)


@dataclass(frozen=True, kw_only=True)
class _Stack:
    """What every stack's config has: project, stack, region, owner and the config's warnings."""

    project: str
    stack: str
    region: str  # aws:region
    owner: str = field(metadata={"setting": OWNER})
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PlatformStack(_Stack):
    """A platform stack: network + data lake (+ an optional shared EKS control plane), long-lived."""

    platform: PlatformConfig
    kind: Literal["platform"] = field(default="platform", metadata={"setting": KIND})

    @property
    def backend(self) -> str:
        return "none"


@dataclass(frozen=True, kw_only=True)
class ClusterStack(_Stack):
    """A cluster stack: one ephemeral training cluster on a platform stack."""

    cluster: ClusterConfig
    kind: Literal["cluster"] = field(default="cluster", metadata={"setting": KIND})

    @property
    def backend(self) -> str:
        return self.cluster.backend


StackConfig = PlatformStack | ClusterStack

# The keys of each object, for the unknown-key refusal and the tests.
COMMON_KEYS = {KIND.key, OWNER.key}
PLATFORM_KEYS = keys_of(PlatformConfig)
CLUSTER_KEYS = keys_of(ClusterConfig)
DATA_LAKE_KEYS = keys_of(DataLakeConfig)
PLATFORM_EKS_KEYS = keys_of(PlatformEksConfig)
GPU_KEYS = keys_of(GpuConfig)
JOB_KEYS = keys_of(JobConfig)
SAGEMAKER_KEYS = keys_of(SageMakerConfig)
EKS_KEYS = keys_of(EksConfig)
