"""GPU instance catalog: pure data plus lookup and placement-pattern functions.

Prices: Amazon EC2 On-Demand and Amazon SageMaker AI Training list prices, Linux,
us-east-1 (N. Virginia), USD per instance-hour, as published on
https://aws.amazon.com/ec2/pricing/on-demand/ and https://aws.amazon.com/sagemaker/pricing/
as of mid-2025, after AWS's June 2025 price cut for P4d and P5 (up to 45 %). They were
transcribed by hand (this repository is built without network access to re-check them).
They are list prices: Savings Plans, reserved capacity and spot (typically 60-90 % below
on-demand) are not reflected. Refresh them from the AWS Price List API
(`aws pricing get-products --service-code AmazonEC2`) when they matter; estimates built
from this table say so.

GPU facts: NVIDIA architecture, compute capability and per-GPU memory from NVIDIA's
CUDA GPU list (https://developer.nvidia.com/cuda-gpus); instance shapes from
https://aws.amazon.com/ec2/instance-types/accelerated-computing/.

Volta (V100, compute capability 7.0, the p3 families): NVIDIA's R580 driver branch is
the last that supports it and CUDA 13 no longer compiles for compute capability < 7.5,
so a Volta cluster needs an AMI with an R580-or-older driver and CUDA 12.x images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PRICE_SOURCE = "AWS on-demand list prices, us-east-1, Linux, mid-2025 (transcribed; verify with the Price List API)"


@dataclass(frozen=True)
class GpuArchitecture:
    """A GPU architecture and the newest driver branch and CUDA major version that still support it."""

    name: str
    compute_capability: str
    # Newest NVIDIA driver branch that still supports the architecture (None: current).
    last_driver_branch: int | None
    # Newest CUDA major version whose compilers still target it.
    last_cuda_major: int | None


VOLTA = GpuArchitecture("Volta", "7.0", last_driver_branch=580, last_cuda_major=12)
TURING = GpuArchitecture("Turing", "7.5", None, None)
AMPERE = GpuArchitecture("Ampere", "8.0", None, None)
AMPERE_GA102 = GpuArchitecture("Ampere", "8.6", None, None)
ADA = GpuArchitecture("Ada Lovelace", "8.9", None, None)
HOPPER = GpuArchitecture("Hopper", "9.0", None, None)


@dataclass(frozen=True)
class InstanceType:
    """A GPU instance type: its size, GPUs and what it supports."""

    name: str
    vcpus: int
    memory_gib: float
    gpus: int
    gpu_model: str | None
    gpu_memory_gib: int
    architecture: GpuArchitecture | None
    on_demand_usd_per_hour: float
    efa: bool = False
    # SageMaker training price of ml.<name>; None: not offered for SageMaker training.
    sagemaker_usd_per_hour: float | None = None
    # Local NVMe instance storage (hardware-encrypted; SageMaker refuses a volume KMS key there).
    instance_storage: bool = False

    @property
    def family(self) -> str:
        return family_of(self.name)

    @property
    def has_gpu(self) -> bool:
        return self.gpus > 0


def _gpu(name, vcpus, mem, gpus, model, gmem, arch, price, efa=False, sm=None):
    # Every GPU family here but plain p3 carries local NVMe storage.
    nvme = not (name.startswith("p3.") and not name.startswith("p3dn"))
    return InstanceType(name, vcpus, mem, gpus, model, gmem, arch, price, efa, sm, nvme)


def _cpu(name, vcpus, mem, price):
    return InstanceType(name, vcpus, mem, 0, None, 0, None, price)


_TYPES = [
    # p3: Tesla V100 (Volta), 16 GiB; p3dn: V100 32 GiB with 100 Gbit EFA.
    _gpu("p3.2xlarge", 8, 61, 1, "V100", 16, VOLTA, 3.06, sm=3.825),
    _gpu("p3.8xlarge", 32, 244, 4, "V100", 16, VOLTA, 12.24, sm=14.688),
    _gpu("p3.16xlarge", 64, 488, 8, "V100", 16, VOLTA, 24.48, sm=28.152),
    _gpu("p3dn.24xlarge", 96, 768, 8, "V100", 32, VOLTA, 31.212, efa=True, sm=35.894),
    # g4dn: T4 (Turing), 16 GiB.
    _gpu("g4dn.xlarge", 4, 16, 1, "T4", 16, TURING, 0.526, sm=0.736),
    _gpu("g4dn.2xlarge", 8, 32, 1, "T4", 16, TURING, 0.752, sm=0.94),
    _gpu("g4dn.4xlarge", 16, 64, 1, "T4", 16, TURING, 1.204, sm=1.505),
    _gpu("g4dn.8xlarge", 32, 128, 1, "T4", 16, TURING, 2.176, efa=True, sm=2.72),
    _gpu("g4dn.12xlarge", 48, 192, 4, "T4", 16, TURING, 3.912, efa=True, sm=4.89),
    _gpu("g4dn.16xlarge", 64, 256, 1, "T4", 16, TURING, 4.352, efa=True, sm=5.44),
    # g5: A10G (Ampere GA102), 24 GiB.
    _gpu("g5.xlarge", 4, 16, 1, "A10G", 24, AMPERE_GA102, 1.006, sm=1.408),
    _gpu("g5.2xlarge", 8, 32, 1, "A10G", 24, AMPERE_GA102, 1.212, sm=1.515),
    _gpu("g5.4xlarge", 16, 64, 1, "A10G", 24, AMPERE_GA102, 1.624, sm=2.03),
    _gpu("g5.8xlarge", 32, 128, 1, "A10G", 24, AMPERE_GA102, 2.448, efa=True, sm=3.06),
    _gpu("g5.12xlarge", 48, 192, 4, "A10G", 24, AMPERE_GA102, 5.672, efa=True, sm=7.09),
    _gpu("g5.16xlarge", 64, 256, 1, "A10G", 24, AMPERE_GA102, 4.096, efa=True, sm=5.12),
    _gpu("g5.24xlarge", 96, 384, 4, "A10G", 24, AMPERE_GA102, 8.144, efa=True, sm=10.18),
    _gpu("g5.48xlarge", 192, 768, 8, "A10G", 24, AMPERE_GA102, 16.288, efa=True, sm=20.36),
    # g6: L4 (Ada Lovelace), 24 GiB.
    _gpu("g6.xlarge", 4, 16, 1, "L4", 24, ADA, 0.8048, sm=1.0060),
    _gpu("g6.2xlarge", 8, 32, 1, "L4", 24, ADA, 0.9776, sm=1.2220),
    _gpu("g6.4xlarge", 16, 64, 1, "L4", 24, ADA, 1.3232, sm=1.6540),
    _gpu("g6.8xlarge", 32, 128, 1, "L4", 24, ADA, 2.0144, efa=True, sm=2.5180),
    _gpu("g6.12xlarge", 48, 192, 4, "L4", 24, ADA, 4.6016, efa=True, sm=5.7520),
    _gpu("g6.16xlarge", 64, 256, 1, "L4", 24, ADA, 3.3968, efa=True, sm=4.2460),
    _gpu("g6.24xlarge", 96, 384, 4, "L4", 24, ADA, 6.6752, efa=True, sm=8.3440),
    _gpu("g6.48xlarge", 192, 768, 8, "L4", 24, ADA, 13.3504, efa=True, sm=16.6880),
    # p4d: A100 40 GiB; p5: H100 80 GiB (prices after the June 2025 cut).
    _gpu("p4d.24xlarge", 96, 1152, 8, "A100", 40, AMPERE, 21.96, efa=True, sm=25.25),
    _gpu("p5.48xlarge", 192, 2048, 8, "H100", 80, HOPPER, 55.04, efa=True, sm=63.30),
    # Common CPU types, listed so that a GPU-less type gets "has no GPU", not "unknown".
    _cpu("t3.large", 2, 8, 0.0832),
    _cpu("t3.medium", 2, 4, 0.0416),  # the default EKS system node (Cluster Autoscaler, CoreDNS)
    _cpu("m5.xlarge", 4, 16, 0.192),
    _cpu("m5.2xlarge", 8, 32, 0.384),
    _cpu("m6i.xlarge", 4, 16, 0.192),
    _cpu("m7i.xlarge", 4, 16, 0.2016),
    _cpu("c5.xlarge", 4, 8, 0.17),
    _cpu("c6i.xlarge", 4, 8, 0.17),
    _cpu("r5.xlarge", 4, 32, 0.252),
    # AWS's own accelerators carry no NVIDIA GPU: CUDA images do not run there.
    _cpu("inf2.xlarge", 4, 16, 0.7582),
    _cpu("trn1.2xlarge", 8, 32, 1.34375),
]

CATALOG: dict[str, InstanceType] = {t.name: t for t in _TYPES}

_TYPE_RE = re.compile(r"^(ml\.)?([a-z][a-z0-9-]*)\.([a-z0-9]+)$")


def family_of(instance_type: str) -> str:
    """`p3dn.24xlarge` -> `p3dn`; `ml.p3.2xlarge` -> `p3`."""
    return ec2_name(instance_type).split(".", 1)[0]


def ec2_name(instance_type: str) -> str:
    """Strip SageMaker's `ml.` prefix: `ml.p3.2xlarge` -> `p3.2xlarge`."""
    return instance_type[3:] if instance_type.startswith("ml.") else instance_type


def is_instance_type_syntax(instance_type: str) -> bool:
    return bool(_TYPE_RE.match(instance_type))


def lookup(instance_type: str) -> InstanceType | None:
    return CATALOG.get(ec2_name(instance_type))


def require(instance_type: str) -> InstanceType:
    """The catalog entry of a type config validation has already accepted."""
    spec = lookup(instance_type)
    if spec is None:
        raise KeyError(f"{instance_type} is not in trainstack's instance catalog")
    return spec


def gpu_types() -> list[InstanceType]:
    return [t for t in _TYPES if t.has_gpu]


def placement_pattern(family: str) -> str:
    """The ECS cluster-query pattern that pins tasks to one GPU family, as in the seed article."""
    return f"{family}.*"


def placement_expression(family: str) -> str:
    return f"attribute:ecs.instance-type =~ {placement_pattern(family)}"


def matches_placement(instance_type: str, family: str) -> bool:
    """True when ECS would place a task with `placement_expression(family)` on this type.

    ECS evaluates `=~` as a regular expression over the whole attribute value, so `p3.*`
    also matches `p3dn.24xlarge` — validation must agree with what ECS will do.
    """
    return re.fullmatch(placement_pattern(family), ec2_name(instance_type)) is not None


def smallest_gpu_count(instance_types: list[str] | tuple[str, ...]) -> int:
    """GPUs of the smallest listed type: what a task may ask for and still fit anywhere."""
    known = [lookup(t) for t in instance_types]
    return min((t.gpus for t in known if t is not None), default=0)


def smallest_memory_gib(instance_types: list[str] | tuple[str, ...]) -> float:
    known = [lookup(t) for t in instance_types]
    return min((t.memory_gib for t in known if t is not None), default=0.0)


def price_per_hour(instance_type: str, *, sagemaker: bool = False) -> float | None:
    t = lookup(instance_type)
    if t is None:
        return None
    return t.sagemaker_usd_per_hour if sagemaker else t.on_demand_usd_per_hour


def suggest(instance_type: str, family: str | None = None, limit: int = 4) -> list[str]:
    """A few catalog types close to what the user typed (same family first), for error messages."""
    import difflib

    names = [t.name for t in gpu_types() if family is None or matches_placement(t.name, family)]
    close = set(difflib.get_close_matches(ec2_name(instance_type), names, n=limit, cutoff=0.5))
    # In catalog order, not by similarity score: every message lists the same types in the same order.
    return [n for n in names if n in close] or names[:limit]


def regions_offering(instance_type: str) -> tuple[str, ...]:
    """Regions whose price table lists the type (empty: the table does not know the type)."""
    from trainstack.model.prices import table

    return table().regions_offering(instance_type)


def types_offered_in(region: str) -> tuple[str, ...]:
    """Types the price table lists for `region` (empty: the table does not know the region)."""
    from trainstack.model.prices import table

    return table().types_in(region)


def offered_in(instance_type: str, region: str) -> bool | None:
    """Whether `region` offers the type; None when the price table cannot tell (type or region not in it)."""
    from trainstack.model.prices import table

    t = table()
    if not t.knows_type(instance_type) or not t.knows_region(region):
        return None
    return t.lookup(instance_type, region) is not None


# ---------------------------------------------------------------------------------------------
# EKS: Kubernetes versions and the GPU AMIs of managed node groups.


@dataclass(frozen=True)
class EksVersion:
    """A Kubernetes version on Amazon EKS: its release and the ends of its standard and extended support."""

    version: str
    released: str  # Amazon EKS release, ISO date (UTC)
    end_of_standard_support: str  # $0.10 per cluster-hour until then
    end_of_extended_support: str  # $0.60 per cluster-hour until then; no new clusters afterwards


# Amazon EKS Kubernetes release calendar (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html,
# awsdocs/amazon-eks-user-guide; 1.34/1.35 dates as endoflife.date/amazon-eks lists them). Standard
# support is 14 months from the EKS release, extended support 12 more. Versions past their end of
# extended support are left out: EKS no longer creates clusters on them.
EKS_VERSIONS: dict[str, EksVersion] = {
    v.version: v
    for v in (
        EksVersion("1.31", "2024-09-26", "2025-11-26", "2026-11-26"),
        EksVersion("1.32", "2025-01-23", "2026-03-23", "2027-03-23"),
        EksVersion("1.33", "2025-05-29", "2026-07-29", "2027-07-29"),
        EksVersion("1.34", "2025-10-02", "2026-12-02", "2027-12-02"),
        EksVersion("1.35", "2026-01-27", "2027-03-27", "2028-03-27"),
    )
}
EKS_DEFAULT_VERSION = max(EKS_VERSIONS, key=lambda v: tuple(int(p) for p in v.split(".")))
EKS_CONTROL_PLANE_USD_PER_HOUR = 0.10
EKS_EXTENDED_SUPPORT_USD_PER_HOUR = 0.60

# Managed node group AMI types for NVIDIA GPUs (EKS CreateNodegroup `amiType`). Both drive every
# GPU family in this catalog, Volta (p3) included: the AL2023 NVIDIA AMI ships the R580 driver for
# it and picks the driver tree at first boot; Bottlerocket also ships the device plugin.
EKS_GPU_AMI_TYPES = ("AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA")
EKS_NVIDIA_FAMILIES = ("p3", "p3dn", "g4dn", "g5", "g6", "p4d", "p5")
