"""Helpers shared by the tests (fixtures are in conftest.py, fakes under tests/fakes/)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STACKS = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
NOW = dt.datetime(2026, 11, 22, 14, 30, tzinfo=dt.timezone.utc)

PLATFORM_CONFIG = {"aws:region": "us-east-1", "trainstack:kind": "platform"}


def cluster_config(backend: str = "ecs", **overrides: Any) -> dict[str, Any]:
    """A valid cluster stack config; `gpu`/`job`/`sagemaker` overrides merge into the defaults."""
    cfg: dict[str, Any] = {
        "aws:region": "us-east-1",
        "trainstack:kind": "cluster",
        "trainstack:platformStack": "organization/trainstack/platform",
        "trainstack:owner": "alice",
        "trainstack:backend": backend,
        "trainstack:ttlHours": 8,
        "trainstack:gpu": {
            "family": "p3",
            "instanceTypes": ["p3.2xlarge", "p3.8xlarge"],
            "maxInstances": 4,
            "onDemandBase": 0,
            "spotPercent": 100,
        },
        "trainstack:job": {
            "image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311",
            "command": ["python", "train.py"],
            "nodes": 1,
            "gpusPerNode": 1,
            "dataset": "raw/cifar10/v1/",
            "maxRuntimeHours": 6,
        },
    }
    if backend == "sagemaker":
        cfg["trainstack:gpu"] = {"family": "p3", "instanceTypes": ["ml.p3.2xlarge"]}
    if backend == "ec2":  # the ec2 backend's default AMI (open kernel module) drives Turing and newer only
        cfg["trainstack:gpu"] = {
            "family": "g5",
            "instanceTypes": ["g5.xlarge", "g5.2xlarge"],
            "maxInstances": 4,
            "onDemandBase": 0,
            "spotPercent": 100,
        }
    for key, value in overrides.items():
        full = key if ":" in key else f"trainstack:{key}"
        if isinstance(value, dict) and isinstance(cfg.get(full), dict):
            cfg[full] = {**cfg[full], **value}
        elif value is None:
            cfg.pop(full, None)
        else:
            cfg[full] = value
    return cfg


CODE = ("trainstack", "components", "scripts")  # trainstack/components, trainstack/scripts: symlinks to the last two


def copy_project(dest: Path, *, code: bool = False) -> Path:
    """A copy of the project a test may edit: Pulumi.yaml, __main__.py, stacks/ and examples/ (the stacks'
    job.workdir), and with `code` the package itself (for a subprocess that must run the copy's code), with its
    compiled bytecode: copied with their sources' times and sizes, the .pyc files stay valid for every module a
    test leaves alone (Python recompiles the ones it edits), instead of the subprocess compiling the package."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, dest / name)
    for folder in ("stacks", "examples"):
        shutil.copytree(ROOT / folder, dest / folder, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in CODE if code else ():
        shutil.copytree(ROOT / folder, dest / folder, symlinks=True)
    return dest


def policy_of(record) -> dict:
    """The parsed `policy` input of a RolePolicy/BucketPolicy record."""
    return json.loads(record.inputs["policy"])


def statements(doc: dict) -> list[dict]:
    st = doc["Statement"]
    return st if isinstance(st, list) else [st]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def stack_outputs(own: Any, **common: Any) -> dict[str, Any]:
    """A deployed cluster stack's outputs, written through the typed contract (trainstack/backends/outputs.py):
    `own` is the backend's outputs record (e.g. `Ec2Outputs(...)`); `common` overrides `ClusterOutputs` fields."""
    from trainstack import backends

    backend = next(b.name for b in backends.all_backends() if isinstance(own, b.outputs))
    prefix = f"s3://art/artifacts/bob/dev-{backend}/"
    fields: dict[str, Any] = {
        "owner": "bob",
        "backend": backend,
        "region": "us-east-1",
        "expires_at": "2026-11-22T23:00:00Z",
        "platform_stack": "organization/trainstack/platform",
        "dataset_uri": "s3://raw/cifar10/v1/",
        "artifact_uri": prefix,
        "model_uri": prefix + "model/",
        "checkpoint_uri": f"s3://art/checkpoints/bob/dev-{backend}/",
        "teardown_schedules": {"scale-to-zero": "teardown-scale-to-zero-1a2b3c4"},
        "teardown_role_arn": "arn:aws:iam::123456789012:role/teardown-role-1a2b3c4",
        **common,
    }
    return {**backends.ClusterOutputs(**fields).as_outputs(), **own.as_outputs()}


def kubernetes_validate() -> Any:
    """The kubernetes-validate package, its schema files parsed once per test process: `validate` reads and parses
    the kind's schema and the version's `_definitions.json` (1-2 MB) from disk at every call (kubernetes_validate/
    utils.py `schema_contents`), and jsonschema only reads them, so the parsed documents can be shared."""
    import kubernetes_validate as package
    from kubernetes_validate import utils

    if not hasattr(utils.schema_contents, "cache_info"):
        utils.schema_contents = functools.cache(utils.schema_contents)
    return package


def wait_for(predicate: Callable[[], object], timeout: float = 60) -> None:
    """Poll `predicate` every 20 ms until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
