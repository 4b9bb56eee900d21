"""Cluster backends. Each is one module in this package with one entry point,

    build(ctx: ClusterContext) -> BackendResult

which registers the backend's compute and returns the stack outputs it adds and the teardown
actions the cluster's `AutoTeardown` must run at expiry. The cluster program finds the module through
the backend's declaration (`trainstack.backends.get(name).program`) and knows nothing else about it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from trainstack import backends
from trainstack.components.auto_teardown import TeardownAction
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
    # fetches and unpacks it before job.command (see trainstack/code_delivery.py).
    code_uri: pulumi.Output[str] | None = None

    @property
    def cluster(self) -> ClusterConfig:
        return self.cfg.cluster

    @property
    def stack(self) -> str:
        return self.cfg.stack

    @property
    def region(self) -> str:
        return self.cfg.region


@dataclass(frozen=True)
class BackendResult:
    outputs: Mapping[str, Any]
    teardown: tuple[TeardownAction, ...]


def build(ctx: ClusterContext) -> BackendResult:
    name = ctx.cluster.backend
    declared = backends.find(name)
    if declared is None:  # config validation lets only registered backends through
        raise pulumi.RunError(f"backend {name} is not implemented (known: {', '.join(backends.names())})")
    result = importlib.import_module(declared.program).build(ctx)
    if not result.teardown:
        raise pulumi.RunError(f"backend {name} returned no teardown action: every cluster must turn itself off")
    return result
