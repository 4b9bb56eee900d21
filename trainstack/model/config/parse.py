"""`parse_config`: the table's generic read, then the rules that relate keys to each other.

Backend rules are asked of the backend's declared capabilities (trainstack/backends), never of its name;
what only one backend has runs in the hook its declaration names (`Backend.config_checks`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainstack import backends
from trainstack.backends import Backend, CommandRule, SpotMode
from trainstack.model import amis, catalog
from trainstack.model.cidr import SubnetPlanError, plan_subnets
from trainstack.model.config import eks as eks_section
from trainstack.model.config.settings import (
    MISSING,
    NS,
    ConfigError,
    Env,
    Problem,
    Reader,
    Setting,
    Type,
    keys_of,
    setting_for,
    settings_of,
)
from trainstack.model.config.table import (
    CLUSTER_KEYS,
    COMMON_KEYS,
    CUDA13_TAG_RE,
    DLC_REPOSITORY_RE,
    IMAGE_RE,
    KIND,
    MAX_TTL_HOURS,
    OWNER,
    PLATFORM_KEYS,
    ClusterConfig,
    ClusterStack,
    DataLakeConfig,
    DatasetRef,
    GpuConfig,
    JobConfig,
    PlatformConfig,
    PlatformStack,
    StackConfig,
    read_dataset,
)


def namespaced(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`{"trainstack:azCount": 2, "aws:region": ...}` -> `{"azCount": 2}`."""
    prefix = NS + ":"
    return {k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}


def _top_level(kind: str) -> list[Setting]:
    cls = PlatformConfig if kind == "platform" else ClusterConfig
    return [s for _, s in settings_of(cls)]


def schema_keys() -> list[tuple[str, Setting]]:
    """(stack kind or "" for both, Setting) of every top-level key, in the order Pulumi.yaml lists them."""
    platform = [("platform", s) for s in _top_level("platform") if s.type is not Type.SECTION]
    cluster = [("cluster", s) for s in _top_level("cluster") if s.type is not Type.SECTION]
    return [("", KIND), ("", OWNER)] + platform + cluster


def _schema_defaults() -> dict[str, Any]:
    return {s.key: s.default for _, s in schema_keys() if s.static_default and s.default is not None}


# Defaults that Pulumi.yaml declares too (generated from the table): the CLI applies them to every stack
# of the project, so a key of the other kind of stack holding its default is not an error.
SCHEMA_DEFAULTS = _schema_defaults()


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
    values = namespaced(raw)

    region = raw.get("aws:region")
    if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", region or ""):
        problems.append(
            Problem(
                "aws:region",
                region if region is not None else MISSING,
                "must be an AWS region such as us-east-1",
                "run `pulumi config set aws:region us-east-1` or add `aws:region` to the stack file",
            )
        )
        region = "us-east-1"
    env = Env(now=now, region=region, root=root)
    top = Reader(values, NS + ":", problems, env)

    kind = top.read(KIND)
    owner = top.read(OWNER, required=kind == "cluster", default="platform" if kind == "platform" else None)

    top.reject_unknown(COMMON_KEYS | PLATFORM_KEYS | CLUSTER_KEYS)
    other_kind = {"platform": "cluster", "cluster": "platform"}.get(kind)
    if other_kind:
        mine = keys_of(PlatformConfig if kind == "platform" else ClusterConfig)
        for s in _top_level(other_kind):
            if s.key in mine or s.key not in values or _holds_schema_default(s, values[s.key], env):
                continue  # read by both kinds (each with its own schema), or put there by the Pulumi CLI
            top.fail(
                s.key,
                values[s.key],
                f"applies to {other_kind} stacks, not to a {kind} stack",
                "remove it from this stack's file",
            )

    platform = _parse_platform(top) if kind == "platform" else None
    cluster = _parse_cluster(top, owner or "x") if kind == "cluster" else None
    if problems:
        raise ConfigError(problems)
    common = {"project": project, "stack": stack, "region": region, "owner": owner, "warnings": tuple(env.warnings)}
    if platform is not None:
        return PlatformStack(platform=platform, **common)
    assert cluster is not None  # kind is required and one of the two, or problems were raised
    return ClusterStack(cluster=cluster, **common)


def _holds_schema_default(s: Setting, value: Any, env: Env) -> bool:
    """Whether `value` is the default Pulumi.yaml declares for `s` (as YAML or as the engine's text)."""
    if s.key not in SCHEMA_DEFAULTS:
        return False
    scratch: list[Problem] = []
    return Reader({s.key: value}, NS + ":", scratch, env).read(s) == s.default and not scratch


# --------------------------------------------------------------------------------------------
# Platform


def _parse_platform(top: Reader) -> PlatformConfig:
    v = top.read_all(PlatformConfig, reject_unknown=False)
    az_count, region = v["az_count"], top.env.region
    zones = v["availability_zones"]
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
    _check_vpc_cidr(top, v["vpc_cidr"], az_count, v["egress"])

    lake = top.obj(setting_for(PlatformConfig, "data_lake").key)
    eks_r = top.obj(setting_for(PlatformConfig, "eks").key)
    eks_r.reject_unknown(keys_of(eks_section.PlatformEksConfig))
    return PlatformConfig(
        **v, data_lake=DataLakeConfig(**lake.read_all(DataLakeConfig)), eks=eks_section.parse_platform(eks_r)
    )


def _check_vpc_cidr(top: Reader, cidr: str, az_count: int, egress: str) -> None:
    fix = setting_for(PlatformConfig, "vpc_cidr").fix
    try:
        if "/" not in str(cidr):
            raise ValueError("no prefix length")
        net = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError:
        top.fail("vpcCidr", cidr, "is not an IPv4 network in CIDR notation (host bits must be zero)", fix)
        return
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


# --------------------------------------------------------------------------------------------
# Cluster


@dataclass
class ClusterDraft:
    """What a backend's config hook (`Backend.config_checks`) works on: the common keys, parsed and checked,
    and a reader for each backend section (its unknown keys already refused). The hook returns the
    ClusterConfig fields it parsed (e.g. {"eks": EksConfig(...)})."""

    backend: Backend
    top: Reader
    gpu: GpuConfig
    job: JobConfig
    job_reader: Reader
    sections: dict[str, Reader]

    @property
    def env(self) -> Env:
        return self.top.env

    def section(self, key: str) -> Reader:
        return self.sections[key]

    def fail(self, key: str, value: Any, problem: str, fix: str) -> None:
        self.top.problems.append(Problem(key, value, problem, fix))

    def warn(self, text: str) -> None:
        self.top.env.warnings.append(text)


def _parse_cluster(top: Reader, owner: str) -> ClusterConfig:
    v = top.read_all(ClusterConfig, reject_unknown=False)
    declared = backends.find(v["backend"]) if v["backend"] else None
    expires_at = _expiry(top, v["expires_at"], v["ttl_hours"])

    job_r = top.obj(setting_for(ClusterConfig, "job").key)
    job = _parse_job(job_r, declared)
    gpu_r = top.obj(setting_for(ClusterConfig, "gpu").key)
    gpu = _parse_gpu(gpu_r, declared, job)
    _check_region_offers(top, gpu)

    env = top.env
    hours_left = (expires_at - env.now).total_seconds() / 3600
    if job.max_runtime_hours > hours_left + 1e-9:
        env.warnings.append(
            f"trainstack:job.maxRuntimeHours = {job.max_runtime_hours:g} is longer than the cluster lives "
            f"({hours_left:.1f} h until {expires_at:%Y-%m-%dT%H:%M:%SZ}): the auto-teardown will stop the job first."
        )

    # Backend sections: read by their backend's hook; elsewhere type-checked and ignored with a warning.
    sections: dict[str, Reader] = {}
    for _, s in settings_of(ClusterConfig):
        if s.backend is None or s.section is None:
            continue
        r = sections[s.key] = top.obj(s.key)
        r.reject_unknown(keys_of(s.section))
        if declared is None or s.backend == declared.name:
            continue
        for _, inner in settings_of(s.section):
            if inner.parse is None:
                r.read(inner)
        if r.values:
            env.warnings.append(
                f"trainstack:{s.key} is set but the backend is {declared.name}: those settings are ignored."
            )

    fields: dict[str, Any] = {}
    if declared is not None:
        _check_capabilities(top, job_r, gpu_r, declared, job, gpu)
        hook = declared.config_checks
        if hook:
            module, _, function = hook.partition(":")
            draft = ClusterDraft(declared, top, gpu, job, job_r, sections)
            fields = getattr(importlib.import_module(module), function)(draft)

    return ClusterConfig(
        platform_stack=v["platform_stack"] or "",
        owner=owner,
        backend=v["backend"] or "",
        ttl_hours=v["ttl_hours"],
        expires_at=expires_at,
        gpu=gpu,
        job=job,
        log_retention_days=v["log_retention_days"],
        **fields,
    )


def _expiry(top: Reader, expires_at: dt.datetime | None, ttl: int | None) -> dt.datetime:
    now = top.env.now
    latest = now + dt.timedelta(hours=MAX_TTL_HOURS)
    if top.has("expiresAt"):
        text = top.raw("expiresAt")
        if expires_at is None:  # not a time: read_utc_time said so
            return latest
        if expires_at <= now:
            top.fail(
                "expiresAt",
                text,
                f"is in the past (now is {now:%Y-%m-%dT%H:%M:%SZ})",
                "set a future time, or use trainstack:ttlHours",
            )
        elif expires_at > latest + dt.timedelta(minutes=1):
            top.fail(
                "expiresAt",
                text,
                f"is more than {MAX_TTL_HOURS} hours away",
                f"set a time before {latest:%Y-%m-%dT%H:%M:%SZ}; long-lived compute is not a training cluster",
            )
        else:
            return expires_at
        return latest
    if ttl is None:
        if not top.has("ttlHours"):
            top.fail("ttlHours", MISSING, "is required", setting_for(ClusterConfig, "ttl_hours").fix)
        return latest
    # Whole hours, rounded up: repeated `pulumi up`s within an hour keep the same expiry tags.
    base = now.replace(minute=0, second=0, microsecond=0)
    if base < now:
        base += dt.timedelta(hours=1)
    return base + dt.timedelta(hours=ttl)


def parse_dataset_ref(text: Any, *, key: str = "trainstack:job.dataset") -> DatasetRef:
    """`raw/<prefix>/` or `curated/<prefix>/` exactly as `job.dataset` accepts it; ConfigError naming `key`."""
    problems: list[Problem] = []
    ref = read_dataset(Reader({"dataset": text}, "trainstack:job", problems), setting_for(JobConfig, "dataset"), None)
    if problems:
        raise ConfigError([Problem(key, p.value, p.problem, p.fix) for p in problems])
    return ref


def _check_command(r: Reader, command: tuple[str, ...]) -> None:
    from trainstack.model.torchrun import check_command

    try:
        check_command(command)
    except ValueError as exc:
        r.fail(
            "command",
            list(command),
            f"cannot be started with torchrun: {exc}",
            "write it as [python, train.py, ...] or [python, -m, package.module, ...]",
        )


def _parse_job(job_r: Reader, declared: Backend | None) -> JobConfig:
    v = job_r.read_all(JobConfig)
    job = JobConfig(**{**v, "image": v["image"] or ""})
    rule = declared.capabilities.command if declared else CommandRule.NEVER
    name = declared.name if declared else ""
    distributed = job.nodes > 1 or job.gpus_per_node > 1
    # The check the node bootstrap makes at boot, where a failure would waste GPU time.
    if rule is CommandRule.ALWAYS and not job.command:
        job_r.fail(
            "command",
            MISSING,
            f"is required for the {name} backend (torchrun starts it on every node)",
            "set job.command, e.g. [python, train.py]",
        )
    elif rule is CommandRule.DISTRIBUTED and distributed and not job.command:
        job_r.fail(
            "command",
            MISSING,
            f"is required for a multi-GPU {name} job (torchrun starts it on every node)",
            "set job.command, e.g. [python, train.py]",
        )
    elif job.command and (rule is CommandRule.ALWAYS or (rule is CommandRule.DISTRIBUTED and distributed)):
        _check_command(job_r, job.command)
    _check_code_delivery(job_r, job)
    reserved = sorted(k for k in job.environment if k.startswith(("TRAINSTACK_", "AWS_")))
    if reserved:
        job_r.fail(
            "environment",
            dict(job.environment),
            f"sets reserved variable(s) {', '.join(reserved)}",
            "rename them; trainstack sets TRAINSTACK_* and AWS sets AWS_*",
        )
    return job


def relative_script(command: tuple[str, ...]) -> str | None:
    """The script a command runs from the working folder (`python train.py`, `bash run.sh`), if any."""
    args = [a for a in command[1:] if not a.startswith("-")] if command else []
    if command[:1] and command[0].rsplit("/", 1)[-1].startswith(("python", "bash", "sh")) and "-m" not in command[1:2]:
        script = args[0] if args else None
    else:
        script = command[0] if command else None
    if script and not script.startswith("/") and script.endswith((".py", ".sh")):
        return script
    return None


def stock_image(image: str) -> bool:
    """An AWS Deep Learning Container: holds no user code."""
    m = IMAGE_RE.match(image) if image else None
    return bool(m and DLC_REPOSITORY_RE.match(m.group("path").rsplit("/", 1)[-1]))


def _check_code_delivery(job_r: Reader, job: JobConfig) -> None:
    workdir_set, command, image = job_r.has("workdir"), job.command, job.image
    script = relative_script(command)
    if stock_image(image) and script and not workdir_set:
        job_r.env.warnings.append(
            f"trainstack:job.command runs `{script}` from the working folder, but job.image `{image}` is a stock "
            "Deep Learning Container that holds no such file and job.workdir is not set: the job would fail at "
            "start. Set job.workdir to the folder with your script (e.g. examples/cifar10), or bake it into the image."
        )
    if job.workdir and script and not os.path.isfile(os.path.join(job.workdir, script)):
        job_r.fail(
            "command",
            list(command),
            f"runs `{script}`, which is not in job.workdir ({job.workdir})",
            f"add {script} to the workdir, or fix the path in job.command (it is relative to the workdir)",
        )
    if workdir_set and not command:
        job_r.fail(
            "command",
            MISSING,
            "is required with job.workdir (it says what to run in the unpacked folder)",
            "set job.command, e.g. [python, train.py]",
        )


def _parse_gpu(g: Reader, declared: Backend | None, job: JobConfig) -> GpuConfig:
    v = g.read_all(GpuConfig)
    types: tuple[str, ...] = v["instance_types"] or ()
    family = v["family"] or (catalog.family_of(types[0]) if types else "p3")
    caps = declared.capabilities if declared else None
    for t in types:
        if not catalog.is_instance_type_syntax(t):
            g.fail("instanceTypes", list(types), f"`{t}` is not an instance type name", "write names like p3.2xlarge")
            continue
        spec = catalog.lookup(t)
        if declared and caps and t.startswith("ml.") and not caps.sagemaker_instance_names:
            g.fail(
                "instanceTypes",
                list(types),
                f"`{t}` is a SageMaker name; the {declared.name} backend launches EC2 instances",
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

    max_instances = v["max_instances"] if v["max_instances"] is not None else max(job.nodes, 1)
    gpu = GpuConfig(**{**v, "family": family, "instance_types": types, "max_instances": max_instances})

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
    if gpu.on_demand_base > max_instances:
        g.fail(
            "onDemandBase",
            gpu.on_demand_base,
            f"is more than maxInstances ({max_instances})",
            "set onDemandBase to at most maxInstances",
        )
    families = sorted({catalog.family_of(t) for t in types})
    if gpu.placement_group and len(families) > 1:
        g.fail(
            "placementGroup",
            True,
            f"needs one instance family, but instanceTypes mixes {', '.join(families)} "
            "(a cluster placement group cannot reliably hold different families)",
            "list types of one family, or set placementGroup: false",
        )

    driver, ami_id = gpu.ami_driver_branch, gpu.ami_id
    archs = {k.architecture.name: k.architecture for k in known if k is not None and k.architecture}
    volta = archs.get("Volta")
    if volta is not None:
        image_match = IMAGE_RE.match(job.image) if job.image else None
        tag = (image_match.group("tag") if image_match else None) or ""
        if CUDA13_TAG_RE.search(tag):
            g.env.warnings.append(
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
        elif declared and declared.name in amis.table_backends() and ami_id is not None and driver is None:
            g.env.warnings.append(
                f"gpu.amiId {ami_id} is pinned for Volta ({family}): it must load NVIDIA's proprietary kernel module "
                f"with an R{volta.last_driver_branch}-or-older driver (the open module does not drive V100s). Set "
                "gpu.amiDriverBranch so trainstack can check the branch."
            )
    if declared and ami_id is None and types and all(k is not None and k.architecture for k in known):
        refused = amis.problem_for(declared.name, family, gpu.architectures)
        if refused is not None:
            g.fail("amiId", MISSING, *refused)
    return gpu


def _check_region_offers(top: Reader, gpu: GpuConfig) -> None:
    """Refuse a GPU type the stack's region does not offer (from the price table's regions)."""
    region = top.env.region
    for t in gpu.instance_types:
        if catalog.offered_in(t, region) is not False:
            continue
        offered_here = set(catalog.types_offered_in(region))
        here = [n.name for n in catalog.gpu_types() if n.name in offered_here]  # catalog order: small first
        same_family = [n for n in here if catalog.matches_placement(n, gpu.family)]
        offered = ", ".join((same_family or here)[:8])
        top.problems.append(
            Problem(
                "trainstack:gpu.instanceTypes",
                list(gpu.instance_types),
                f"`{t}` is not offered in {region} (aws:region); regions that offer it: "
                f"{', '.join(catalog.regions_offering(t))}",
                f"use a type {region} offers ({'' if same_family else 'no ' + gpu.family + ' types there; '}{offered}), "
                "or move the stack to a region that offers it",
            )
        )


def _check_capabilities(
    top: Reader, job_r: Reader, gpu_r: Reader, declared: Backend, job: JobConfig, gpu: GpuConfig
) -> None:
    """What the backend's declared capabilities rule out (trainstack/backends/<name>.py)."""
    caps, name = declared.capabilities, declared.name
    # A key set to something other than its default on a backend it does nothing on.
    for reader, cls, values in ((gpu_r, GpuConfig, gpu), (job_r, JobConfig, job)):
        for attribute, s in settings_of(cls):
            value = getattr(values, attribute)
            if s.applies is None or s.applies.test(caps) or not reader.has(s.key) or value == s.default:
                continue
            reason, fix = s.applies.why(caps)
            reader.fail(s.key, value, f"does not apply to the {name} backend ({reason})", fix)
    if not caps.multi_node and job.nodes > 1:
        multi = [b.name for b in backends.all_backends() if b.capabilities.multi_node]
        job_r.fail(
            "nodes",
            job.nodes,
            f"must be 1 for the {name} backend (it runs a job on one instance: no peer discovery for a "
            "multi-node torchrun)",
            f"use backend {' or '.join(multi)} for multi-node training, or set job.nodes: 1",
        )
    if caps.spot is SpotMode.ALL_OR_NOTHING and gpu.spot_percent not in (0, 100):
        gpu_r.fail(
            "spotPercent",
            gpu.spot_percent,
            f"must be 0 or 100 for the {name} backend (its GPU capacity is all spot or all on-demand)",
            "set gpu.spotPercent: 100 (spot) or 0 (on-demand)",
        )
    if caps.max_instance_types is not None and len(gpu.instance_types) > caps.max_instance_types:
        one = caps.max_instance_types == 1
        gpu_r.fail(
            "instanceTypes",
            list(gpu.instance_types),
            f"must list {'exactly one type' if one else f'at most {caps.max_instance_types} types'} for the "
            f"{name} backend (a job runs on {'one instance type' if one else 'that many types'})",
            f"keep the {'one type' if one else 'types'} to train on, e.g. [{gpu.instance_types[0]}]",
        )
    if caps.sagemaker_instance_names:
        for t in gpu.instance_types:
            spec = catalog.lookup(t)
            if spec is not None and spec.has_gpu and spec.sagemaker_usd_per_hour is None:
                gpu_r.fail(
                    "instanceTypes",
                    list(gpu.instance_types),
                    f"`{t}` is not offered for SageMaker training",
                    "use a type SageMaker trains on, e.g. ml.p3.2xlarge or ml.g5.xlarge",
                )
