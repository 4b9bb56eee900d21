"""Shared fixtures: offline (mock-engine) runs of stacks and components, AWS test credentials."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import PLATFORM_CONFIG, ROOT, STACKS

# The plan's cache (trainstack/model/memo.py) goes to a folder of this test process, not the user's
# ~/.cache/trainstack: the tests start cold and leave nothing behind (plans run in subprocesses inherit it).
if "TRAINSTACK_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="trainstack-test-cache-")
    os.environ["TRAINSTACK_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)


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


@pytest.fixture(scope="session")
def moto_server() -> Any:
    """One moto server per session on 127.0.0.1 (a free port); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
