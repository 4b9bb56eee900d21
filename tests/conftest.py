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

# moto's EC2 backend otherwise creates its catalogue of ~1,000 public AMIs with random ids for every
# region it instantiates (0.3 s each, at every mock_aws() start); the tests register the images they use.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


def _share_botocore_models() -> None:
    """Every botocore Loader in this test process shares one cache of parsed service models.

    botocore caches what a Loader parsed per Loader instance (`instance_cache`), and each boto3
    Session has its own: every run, doctor and moto fixture in a test builds new sessions, so the
    same JSON models (ec2's is 5 MB) were parsed again for each test, about 2 s of a fake-CLI run.
    Sharing the cache among Loaders with the same search paths and extras is what one long-lived
    Session does anyway: the parsed models are the same objects botocore itself would hand out twice.
    """
    from botocore import loaders

    shared: dict[tuple, dict] = {}
    init = loaders.Loader.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        key = (tuple(self.search_paths), tuple(self.extras_types), type(self.file_loader))
        self._cache = shared.setdefault(key, {})

    loaders.Loader.__init__ = __init__


_share_botocore_models()


def once_per_session(factory: pytest.TempPathFactory, name: str, compute: Callable[[], Any]) -> Any:
    """`compute()` once per test session, even when pytest-xdist runs it in several worker processes.

    The first worker to get here computes it under a lock and pickles the result into the session's
    shared temporary folder; the others wait for the lock and load it (pytest-xdist's documented recipe
    for session fixtures, "Making session-scoped fixtures execute only once"). Nothing outlives the
    session: a new run computes afresh."""
    import fcntl
    import pickle

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return compute()
    shared = factory.getbasetemp().parent
    path = shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return pickle.loads(path.read_bytes())
        value = compute()
        path.write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(scope="session")
def platform_outputs(tmp_path_factory) -> dict[str, Any]:
    def compute() -> dict[str, Any]:
        from trainstack.plan.offline import run_offline
        from trainstack.programs.program import main

        return run_offline(main, config=PLATFORM_CONFIG, stack="platform").outputs

    return once_per_session(tmp_path_factory, "platform-outputs", compute)


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
def example_plans(tmp_path_factory) -> dict[str, Any]:
    """`trainstack plan` of every stack file, evaluated once per test session."""

    def compute() -> dict[str, Any]:
        from trainstack.plan.planner import plan

        cache: dict[str, dict] = {}
        return {name: plan(name, ROOT, _platform_cache=cache) for name in STACKS}

    return once_per_session(tmp_path_factory, "example-plans", compute)


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


@pytest.fixture
def sigint_raises() -> Any:
    """A Ctrl-C (SIGINT) raises KeyboardInterrupt in the main thread during this test, as in a terminal, even when
    the suite was started with SIGINT ignored (a background job of a non-interactive shell, `make test &`): Python
    then installs no handler of its own, and the signal is dropped."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def fake_pulumi_server() -> Any:
    """One fake-CLI server per test process (trainstack/standins/fake_pulumi_server.py): each fake `pulumi`
    command runs in a fork of it, its imports done, instead of a new interpreter. Yields its socket."""
    from trainstack.standins.fake_pulumi_server import running

    with running() as path:
        yield path


@pytest.fixture(scope="session")
def moto_server() -> Any:
    """One moto server per session on 127.0.0.1 (a free port); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
