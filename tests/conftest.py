"""Shared fixtures: offline (mock-engine) runs of stacks and components, AWS test credentials."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture(scope="session")
def platform_outputs() -> dict[str, Any]:
    from trainstack.plan.offline import run_offline
    from trainstack.programs.program import main

    run = run_offline(main, config=PLATFORM_CONFIG, stack="platform")
    return run.outputs


@pytest.fixture(scope="session")
def run_stack(platform_outputs) -> Callable[..., Any]:
    """Evaluate the whole program for a raw config under the mock engine (platform reference served)."""
    from trainstack.plan.offline import run_offline
    from trainstack.programs.program import main

    def run(config: dict[str, Any], stack: str = "dev", **kw) -> Any:
        refs = {"organization/trainstack/platform": platform_outputs}
        return run_offline(main, config=config, stack=stack, stack_outputs=refs, **kw)

    return run


@pytest.fixture(scope="session")
def run_program() -> Callable[..., Any]:
    """Evaluate any program (e.g. one component) under the mock engine."""
    from trainstack.plan.offline import run_offline

    def run(program, config: dict[str, Any] | None = None, **kw) -> Any:
        return run_offline(program, config=config or {"aws:region": "us-east-1"}, **kw)

    return run


@pytest.fixture(scope="session")
def example_plans() -> dict[str, Any]:
    """`trainstack plan` of every stack file, evaluated once per test session."""
    from trainstack.plan.planner import plan

    cache: dict[str, dict] = {}
    return {name: plan(name, ROOT, _platform_cache=cache) for name in STACKS}


@pytest.fixture
def aws_credentials(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def policy_of(record) -> dict:
    """The parsed `policy` input of a RolePolicy/BucketPolicy record."""
    return json.loads(record.inputs["policy"])


def statements(doc: dict) -> list[dict]:
    st = doc["Statement"]
    return st if isinstance(st, list) else [st]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="session")
def moto_server() -> Any:
    """One moto server per session on 127.0.0.1 (a free port); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
