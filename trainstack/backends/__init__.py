"""The backend contract: one declaration per backend, looked up by name (`trainstack:backend`).

Each backend is one module here holding a `BACKEND = Backend(...)`: what it can do (`Capabilities`,
asked by config validation, never guessed from the name), where its stack program and its job follower
live (module paths, loaded by their own layers: the model never imports a program or a follower), the
resource that is its job, the phases between `pulumi up` and a training process, the AWS-maintained
AMIs it boots, what it costs while no job runs, and the typed stack outputs its program writes and its
follower reads (`trainstack/backends/outputs.py`). Adding a backend is its own module here, its program
(`trainstack/programs/backends/`), its follower (`trainstack/run/follow/`) and one line in `_MODULES`
(or one `register(...)` call for a backend declared outside this package).

Pure data: no Pulumi, no AWS SDK (the import contract in pyproject.toml enforces it).
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trainstack.backends.outputs import ClusterOutputs, OutputsError, PlatformOutputs, StackOutputs

__all__ = [
    "GPU_BOOT",
    "AmiRow",
    "AmiSource",
    "Backend",
    "Capabilities",
    "ClusterOutputs",
    "CommandRule",
    "IdleCost",
    "OutputsError",
    "Phase",
    "PlatformOutputs",
    "SpotMode",
    "StackOutputs",
    "all_backends",
    "find",
    "get",
    "names",
    "read_outputs",
    "register",
    "unregister",
]

# The registry: trainstack.backends.<module> for each backend, in the order help texts list them.
_MODULES = ("ec2", "ecs", "eks", "sagemaker")


class SpotMode(str, enum.Enum):
    """How a backend buys spot capacity, i.e. which of gpu.onDemandBase / gpu.spotPercent / sagemaker.spot apply."""

    MIXED = "mixed"  # an Auto Scaling group's mixed-instances policy: onDemandBase + spotPercent of the rest
    ALL_OR_NOTHING = "all-or-nothing"  # an EKS managed node group is SPOT or ON_DEMAND: spotPercent 0 or 100
    MANAGED = "managed"  # SageMaker managed spot training (sagemaker.spot); gpu.spotPercent does not apply


class AmiSource(str, enum.Enum):
    """Who picks the GPU instances' AMI."""

    TABLE = "table"  # trainstack, from the backend's `ami_rows` keyed by GPU architecture (or gpu.amiId)
    NODE_GROUP = "node-group"  # EKS, from the node group's AMI type and release (eks.amiType, eks.releaseVersion)
    SERVICE = "service"  # the service (SageMaker) picks its hosts


class CommandRule(str, enum.Enum):
    """When job.command must be one torchrun can start (`trainstack.model.torchrun.check_command`)."""

    ALWAYS = "always"  # torchrun starts it on every node, even one GPU (ec2)
    DISTRIBUTED = "distributed"  # only with more than one GPU in the job (eks)
    NEVER = "never"  # the image's entrypoint or the service starts it (ecs, sagemaker)


@dataclass(frozen=True)
class Capabilities:
    multi_node: bool  # job.nodes > 1
    spot: SpotMode
    elastic_restart: bool  # a lost node is replaced and the run resumes from its checkpoint
    placement_group: bool  # gpu.placementGroup applies
    ami: AmiSource
    command: CommandRule
    sagemaker_instance_names: bool = False  # launches `ml.*` instance types (priced from the SageMaker table)
    max_instance_types: int | None = None  # how many gpu.instanceTypes one run may list (None: any)


class IdleCost(str, enum.Enum):
    """What a cluster stack of the backend costs while no job runs (the plan's cost model)."""

    NOTHING = "nothing"  # the GPUs sit at zero or the service releases them; what stays bills nothing by the hour
    CONTROL_PLANE = "control-plane"  # an EKS control plane and its system node, unless eks.mode: shared


@dataclass(frozen=True)
class Phase:
    """A step between the end of `pulumi up` (or `started_by`'s creation) and the training process."""

    name: str
    seconds: float
    source: str  # where the typical figure comes from


@dataclass(frozen=True)
class AmiRow:
    """An AWS-maintained AMI that drives one GPU architecture on one backend (see trainstack/model/amis.py)."""

    backend: str
    architecture: str  # catalog.GpuArchitecture.name
    ssm_parameter: str
    ami_name: str
    driver_module: str  # amis.OPEN | amis.PROPRIETARY: what the AMI loads for this architecture
    driver_branch: int | None  # NVIDIA driver branch when AWS pins it
    support: str  # support status of the AMI's OS
    evidence: str  # where the row comes from


@dataclass(frozen=True)
class Backend:
    name: str  # trainstack:backend
    summary: str  # one line for help texts and docs
    capabilities: Capabilities
    program: str  # module whose `build(ctx) -> BackendResult` registers the compute (programs layer)
    # "module:Class" that starts/follows the job with boto3 (run layer); None: deploy with `pulumi up` only
    # (`trainstack run` refuses the backend up front).
    follower: str | None
    job_resources: tuple[str, ...]  # the resource type(s) that are the job (diagram, timing)
    # What starts the GPU phases: the creation of this resource type, or None: the end of `up`, after which
    # `trainstack run` starts the job (ECS RunTask) or a controller reacts (Cluster Autoscaler).
    started_by: str | None
    after_up: tuple[Phase, ...]  # until the training process runs (image pull added from the image size)
    # The stack outputs its program adds to `ClusterOutputs` and its follower reads (`outputs.py`).
    outputs: type[StackOutputs]
    idle: IdleCost  # what the stack bills by the hour between runs
    idle_note: str  # the cost model's note on it (IdleCost.CONTROL_PLANE: the cost model words it from eks.mode)
    ami_rows: tuple[AmiRow, ...] = field(default=())
    # "module:function" of the config rules only this backend has (its own `trainstack:<name>` section, say),
    # run by trainstack.model.config after the rules asked of `capabilities`; None: capabilities say it all.
    config_checks: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.outputs, type) and issubclass(self.outputs, StackOutputs)):
            raise TypeError(f"backend {self.name}: outputs must be a StackOutputs dataclass, not {self.outputs!r}")
        clash = set(self.outputs.output_names()) & set(ClusterOutputs.output_names())
        if clash:
            raise TypeError(
                f"backend {self.name}: {self.outputs.__name__} redeclares {', '.join(sorted(clash))}, "
                "which every cluster stack exports already (ClusterOutputs)"
            )


# The phase every EC2-based backend goes through (shared by the declarations).
GPU_BOOT = Phase("GPU instance launch and boot", 180, "EC2 launch to running plus GPU AMI boot and driver load: ~3 min")

_REGISTRY: dict[str, Backend] = {}


def _load() -> dict[str, Backend]:
    if not _REGISTRY:
        for module in _MODULES:
            backend = importlib.import_module(f"{__name__}.{module}").BACKEND
            _REGISTRY[backend.name] = backend
    return _REGISTRY


def register(backend: Backend) -> None:
    """Add a backend declared outside this package (a plugin, a test's fake backend)."""
    _load()[backend.name] = backend


def unregister(name: str) -> None:
    _load().pop(name, None)


def names() -> tuple[str, ...]:
    return tuple(_load())


def get(name: str) -> Backend:
    try:
        return _load()[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r} (known: {', '.join(names())})") from None


def find(name: str) -> Backend | None:
    return _load().get(name)


def all_backends() -> Iterator[Backend]:
    yield from _load().values()


def read_outputs(outputs: Mapping[str, Any]) -> tuple[ClusterOutputs, StackOutputs]:
    """A cluster stack's outputs, typed: what every cluster stack exports, and its backend's own.

    Raises OutputsError naming what is missing (a platform stack's outputs have no `backend`)."""
    stack = ClusterOutputs.from_outputs(outputs)
    declared = find(stack.backend)
    if declared is None:
        raise OutputsError(
            f"the stack's backend output is {stack.backend!r}, not a known backend ({', '.join(names())})"
        )
    return stack, declared.outputs.from_outputs(outputs)
