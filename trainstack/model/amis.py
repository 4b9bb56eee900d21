"""Which AWS-maintained AMI drives which GPU on which backend (pure data, no Pulumi).

NVIDIA's open kernel modules support Turing and newer only; Volta (p3, p3dn: V100) needs the
proprietary module, and R580 is the last driver branch that supports Volta. Which AMI loads which
module differs per backend, so the choice is a table keyed by (backend, GPU architecture), each
backend declaring its own rows (`ami_rows` in trainstack/backends/<name>.py). A
pairing without a row has no AWS-maintained AMI that can drive the GPU: config refuses it unless
`gpu.amiId` is pinned (see `problem_for`). SageMaker picks its own hosts and has no row.

Evidence (checked 2026-11; re-check when AWS publishes new AMIs):
- ECS-optimized AL2023 GPU AMI: amazon-ecs-ami ships the proprietary, open and GRID kernel
  modules and picks one at boot (`scripts/al2023/gpu/nvidia-kmod-load.sh`, since commit ff713ac,
  2025-10-03: P3 `1db1:1212`, P3dn `1db5:1249` and G3 load `nvidia-proprietary`, everything else the
  open module); the driver major is pinned to 580 (`variables.pkr.hcl` `nvidia_driver_major_al2023`,
  PR #685, 2026-04-30; `NVIDIA_DRIVER_VERSION` 580.159.03 at release 20260820). PR #370 (2025-01)
  introduced the AMI with the open module only, which is what lost p3/g4dn then; the kmod loader
  fixed that.
- DLAMI "Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023)": open module, driver
  595; supported instances G4dn, G5, G6, Gr6, G6e, G6f, G7, P4d, P4de, P5, P5e, P5en, P6 (no P3).
- DLAMI "Deep Learning Base Proprietary Nvidia Driver AMI (Amazon Linux 2)": listed P3 and P3dn up
  to version 71.6 (2026-01-02, driver 570) but not from version 73.1 (2026-06-05: G3, P4d, Inf1),
  and Amazon Linux 2 reached end of support on 2026-06-30. No DLAMI drives Volta any more, so the
  ec2 backend has no Volta row.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainstack import backends
from trainstack.backends import AmiRow, AmiSource
from trainstack.model.catalog import GpuArchitecture

OPEN = "open"
PROPRIETARY = "proprietary"


def rows() -> tuple[AmiRow, ...]:
    """Every backend's AMI rows (each backend declares its own: trainstack/backends/<name>.py)."""
    return tuple(r for b in backends.all_backends() for r in b.ami_rows)


def table_backends() -> tuple[str, ...]:
    """Backends that launch EC2 instances from an AMI trainstack chooses (from their rows or gpu.amiId)."""
    return tuple(b.name for b in backends.all_backends() if b.capabilities.ami is AmiSource.TABLE)


def row(backend: str, architecture: str) -> AmiRow | None:
    """The AWS-maintained AMI that drives `architecture` on `backend`; None when there is none."""
    found = backends.find(backend)
    return next((r for r in found.ami_rows if r.architecture == architecture), None) if found else None


def parameter_for(backend: str, architectures: list[str] | tuple[str, ...]) -> str:
    """The SSM parameter the GPU group resolves for these architectures (config has refused the rest)."""
    rows = [row(backend, a) for a in architectures]
    params = {r.ssm_parameter for r in rows if r is not None}
    if len(params) != 1 or any(r is None for r in rows):
        raise ValueError(
            f"no single AWS-maintained AMI drives {', '.join(architectures)} on the {backend} backend; pin gpu.amiId"
        )
    return params.pop()


@dataclass(frozen=True)
class AmiPlan:
    """What `trainstack plan` shows: where the AMI comes from and which driver it loads."""

    source: str  # "ssm:<parameter>", "pinned:<ami id>" or "managed by SageMaker"
    driver_module: str
    driver_branch: int | None
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "driverModule": self.driver_module,
            "driverBranch": self.driver_branch,
            "notes": list(self.notes),
        }


def plan_for(
    backend: str, architectures: list[GpuArchitecture], ami_id: str | None, driver_branch: int | None
) -> AmiPlan | None:
    """The AMI a valid config resolves to (None for pairings config refuses)."""
    if backend not in table_backends():
        return AmiPlan("managed by SageMaker", "chosen by SageMaker", None)
    if ami_id is not None:
        module = "as built into the pinned AMI"
        if any(a.last_driver_branch is not None for a in architectures):
            module = f"{PROPRIETARY} (required for {', '.join(sorted({a.name for a in architectures}))})"
        return AmiPlan(f"pinned:{ami_id}", module, driver_branch)
    found = [row(backend, a.name) for a in architectures]
    rows = [r for r in found if r is not None]
    if not rows or len(rows) != len(found):
        return None
    modules = sorted({r.driver_module for r in rows})
    notes = [f"{rows[0].ami_name}; {rows[0].support}; evidence: {rows[0].evidence}"]
    for a in architectures:
        if a.last_driver_branch is not None and rows[0].driver_branch is not None:
            notes.append(
                f"{a.name} needs an R{a.last_driver_branch}-or-older driver: AWS pins this AMI to "
                f"R{rows[0].driver_branch}; if it ever moves past R{a.last_driver_branch}, pin gpu.amiId."
            )
    return AmiPlan(f"ssm:{rows[0].ssm_parameter}", "/".join(modules), rows[0].driver_branch, tuple(notes))


def problem_for(backend: str, family: str, architectures: list[GpuArchitecture]) -> tuple[str, str] | None:
    """(problem, fix) when no AWS-maintained AMI on `backend` drives these GPUs and none is pinned."""
    if backend not in table_backends():
        return None
    missing = sorted({a.name for a in architectures if row(backend, a.name) is None})
    if not missing:
        parameters = {r.ssm_parameter for r in (row(backend, a.name) for a in architectures) if r is not None}
        if len(parameters) <= 1:
            return None
        return (
            f"is not set, and the listed GPU architectures need different AMIs on the {backend} backend",
            "list instance types of one GPU architecture, or pin gpu.amiId",
        )
    service = [b.name for b in backends.all_backends() if b.capabilities.ami is not AmiSource.TABLE]
    others = sorted({r.backend for r in rows() if r.architecture in missing and r.backend != backend}) + service
    newer = sorted({r.architecture for r in rows() if r.backend == backend})
    volta = next((a for a in architectures if a.name in missing and a.last_driver_branch), None)
    needs = (
        f"the proprietary NVIDIA kernel module with an R{volta.last_driver_branch}-or-older driver"
        if volta
        else "a driver for it"
    )
    return (
        f"is not set, and no AWS-maintained AMI for the {backend} backend drives {', '.join(missing)} "
        f"(gpu.family {family}), which needs {needs}",
        f"pin gpu.amiId to an AMI with that driver, docker and the NVIDIA container toolkit (and set "
        f"gpu.amiDriverBranch); or use a family of another architecture ({', '.join(newer)}), e.g. g4dn, "
        f"g5 or g6; or use backend {' or '.join(others)}",
    )


# EKS managed node groups pick their AMI from the node group's AMI type (and optional release).
# The EKS AL2023 NVIDIA AMI ships the proprietary and the open kernel module and an LTS (R580) and
# a production (R595) driver tree and picks both at first boot per GPU: Volta (p3, p3dn) gets the
# proprietary module on R580 (awslabs/amazon-eks-ami doc/usage/g7-ami.md, "Driver version 595 is not
# compatible with P3, P3dn"; release v20260917). Bottlerocket's NVIDIA variants drive the same
# families (awsdocs/amazon-eks-user-guide ml-eks-optimized-ami.adoc).
EKS_AMI_EVIDENCE = (
    "amazon-eks-ami doc/usage/g7-ami.md and release v20260917 (two driver trees, picked at boot); "
    "EKS user guide ml-eks-optimized-ami"
)


def eks_plan(ami_type: str, release_version: str | None, architectures: list[GpuArchitecture]) -> AmiPlan:
    volta = any(a.last_driver_branch is not None for a in architectures)
    source = f"EKS node group AMI type {ami_type}" + (
        f", release {release_version}" if release_version else ", latest release"
    )
    module = f"{PROPRIETARY}/{OPEN}, picked at boot per GPU"
    notes = [f"evidence: {EKS_AMI_EVIDENCE}"]
    if volta:
        notes.append(
            "Volta gets the proprietary module on the R580 (LTS) tree; if AWS ever drops that tree from "
            "the AMI, pin eks.releaseVersion to the last release that had it."
        )
    return AmiPlan(source, module, 580 if volta else None, tuple(notes))
