"""Cluster backends. Each is one module in this package with one entry point,

    build(ctx: ClusterContext) -> BackendResult

which registers the backend's compute and returns the stack outputs it adds (written with its
declaration's outputs class: `<Backend>Outputs.to_outputs(...)`, see trainstack/backends/outputs.py) and
the teardown actions the cluster's `AutoTeardown` must run at expiry. The cluster program finds the module through
the backend's declaration (`trainstack.backends.get(name).program`) and knows nothing else about it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from trainstack import backends
from trainstack.backends.outputs import camel
from trainstack.components.auto_teardown import AutoTeardown, TeardownAction
from trainstack.model.config import ClusterConfig, ClusterStack
from trainstack.model.run_locations import RunLocations


@dataclass(frozen=True)
class ClusterContext:
    """What every backend builds from: the validated config and the platform it runs on."""

    cfg: ClusterStack
    tags: Mapping[str, str]
    account_id: str
    platform: pulumi.StackReference
    locations: pulumi.Output[RunLocations]
    subnet_ids: pulumi.Output[Any]
    security_group_id: pulumi.Output[Any]
    kms_key_arn: pulumi.Output[Any]
    # s3://…/artifacts/<owner>/<stack>/code/<sha256>.tar.gz when job.workdir is set: every backend
    # fetches and unpacks it before job.command (see trainstack/model/code_delivery.py).
    code_uri: pulumi.Output[str] | None = None

    def platform_output(self, field_name: str, *, required: bool = True) -> pulumi.Output[Any]:
        """The platform stack's output of a `PlatformOutputs` field (a typo fails the plan, naming it)."""
        return platform_output(self.platform, field_name, required=required)

    @property
    def cluster(self) -> ClusterConfig:
        return self.cfg.cluster

    @property
    def stack(self) -> str:
        return self.cfg.stack

    @property
    def region(self) -> str:
        return self.cfg.region


def platform_output(platform: pulumi.StackReference, field_name: str, *, required: bool = True) -> pulumi.Output[Any]:
    """One output of the platform stack, by its `PlatformOutputs` field (required: the plan fails without it).

    One `apply` on `platform.outputs`, the same lookup `require_output` (KeyError naming a missing output) and
    `get_output` (None) make, without their `Output.all(name, platform.outputs)`: `Output.all` lifts the whole
    outputs map into one Output per value (pulumi's `Output.from_input`, leaf by leaf) on every call, about 70
    Outputs per read, 560 of the 1,440 Outputs a dev-sagemaker plan made. The value, its dependency (the
    StackReference) and whether it is known are theirs. Secretness: they take each output's from the referenced
    stack's secret output names, this takes `outputs`', which the engine marks secret when any output is; so a
    value is never less secret than theirs, and is the same while the platform exports no secret
    (tests/programs/test_outputs_contract.py checks that it exports none)."""
    name = backends.PlatformOutputs.output_name(field_name)
    if required:
        return platform.outputs.apply(lambda outputs: outputs[name])
    return platform.outputs.apply(lambda outputs: outputs.get(name))


@dataclass(frozen=True)
class BackendResult:
    """What a backend's program returns: its outputs, its teardown actions and what it registers after them."""

    outputs: Mapping[str, Any]
    teardown: tuple[TeardownAction, ...]
    # What the backend registers once the stack's teardown schedules exist (eks: the idle stop, which deletes
    # them after deleting the cluster); returns further outputs of its declaration.
    after_teardown: Callable[[AutoTeardown], Mapping[str, Any]] | None = None


def after_teardown(ctx: ClusterContext, result: BackendResult, teardown: AutoTeardown) -> Mapping[str, Any]:
    """The backend's `after_teardown` outputs (none without the hook), checked against its declaration."""
    if result.after_teardown is None:
        return {}
    outputs = result.after_teardown(teardown)
    declared = backends.get(ctx.cluster.backend).outputs
    unknown = sorted(set(outputs) - set(declared.output_names()) | set(outputs) & set(result.outputs))
    if unknown:
        raise pulumi.RunError(
            f"backend {ctx.cluster.backend}'s after_teardown outputs {', '.join(unknown)} are undeclared in "
            f"{declared.__name__} or exported twice. Write them with {declared.__name__}.to_outputs(...)"
        )
    return outputs


def build(ctx: ClusterContext) -> BackendResult:
    name = ctx.cluster.backend
    declared = backends.find(name)
    if declared is None:  # config validation lets only registered backends through
        raise pulumi.RunError(f"backend {name} is not implemented (known: {', '.join(backends.names())})")
    result = importlib.import_module(declared.program).build(ctx)
    if not result.teardown:
        raise pulumi.RunError(f"backend {name} returned no teardown action: every cluster must turn itself off")
    declared_names = set(declared.outputs.output_names())
    unknown = sorted(set(result.outputs) - declared_names)
    missing = sorted({camel(f) for f in declared.outputs.required()} - set(result.outputs))
    if unknown or missing:
        raise pulumi.RunError(
            f"backend {name} exported outputs that do not match {declared.outputs.__name__}: "
            + "; ".join(
                ([f"undeclared {', '.join(unknown)}"] if unknown else [])
                + ([f"missing {', '.join(missing)}"] if missing else [])
            )
            + f". Write them with {declared.outputs.__name__}.to_outputs(...)"
        )
    return result
