"""Shared fixtures: offline (mock-engine) runs of stacks and components, AWS test credentials."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from tests.helpers import PLATFORM_CONFIG, ROOT, STACKS

# The plan's cache (trainstack/model/memo.py) goes to a folder of this test process, not the user's
# ~/.cache/trainstack: the tests start cold and leave nothing behind (plans run in subprocesses inherit it).
if "TRAINSTACK_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="trainstack-test-cache-")
    os.environ["TRAINSTACK_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

_worker_done = False  # set when a pytest-xdist worker's session is over


def _exit_without_teardown() -> None:
    """Registered first, so it runs after every other exit handler of the process: a pytest-xdist worker whose
    session is over (its results sent to the controller) exits there, without the interpreter's teardown of its
    ~3,000 modules and their objects (pulumi_aws, botocore's models, moto's backends): 2-3 s at the end of every
    run during which the controller waits for its workers (measured: 2.0 s from the last exit handler to the
    exit, in a process that planned three stacks and started moto once)."""
    if _worker_done:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


atexit.register(_exit_without_teardown)

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


def _share_botocore_client_parts() -> None:
    """Every botocore client of one service shares its API methods and its parsed endpoint rules.

    Creating a client builds one Python function per operation of the service (ec2 has ~700) and parses the
    service's endpoint ruleset into rule objects, for every client, although both depend only on the service
    model and the ruleset (shared by `_share_botocore_models`): 60 % of a client's creation. The methods are
    closures over the operation's name (botocore/client.py `_create_api_method`); the class built around them
    is still made per client, so each session's `creating-client-class` handlers (boto3's s3 transfer
    methods...) apply as before. The endpoint provider evaluates its rules as a pure function of its inputs
    (botocore/endpoint_provider.py, itself memoised per instance)."""
    from botocore import client, endpoint_provider

    methods: dict[int, tuple[object, dict]] = {}
    create_methods = client.ClientCreator._create_methods

    def _create_methods(self, service_model):
        description = service_model._service_description
        cached = methods.get(id(description))
        if cached is None or cached[0] is not description:
            cached = methods[id(description)] = (description, create_methods(self, service_model))
        return dict(cached[1])  # the caller's handlers add to its own copy

    client.ClientCreator._create_methods = _create_methods

    providers: dict[tuple[int, int, frozenset | None], tuple[object, object, object]] = {}
    provider_init = endpoint_provider.EndpointProvider.__init__

    def __init__(self, ruleset_data, partition_data, excluded_params=None):
        key = (id(ruleset_data), id(partition_data), None if excluded_params is None else frozenset(excluded_params))
        cached = providers.get(key)
        if cached is None or cached[0] is not ruleset_data or cached[1] is not partition_data:
            provider_init(self, ruleset_data, partition_data, excluded_params)
            providers[key] = (ruleset_data, partition_data, self)
            return
        shared = cached[2]
        self.__dict__.update(shared.__dict__)  # its parsed RuleSet and excluded parameters

    endpoint_provider.EndpointProvider.__init__ = __init__


def _share_botocore_session_parts() -> None:
    """A new botocore session registers ~150 built-in event handlers, and each registration inspects the
    handler's signature (does it take **kwargs?) and rewrites the event's name through the session's aliases:
    30 ms per session, which the tests create by the hundred. Both answers depend only on the handler and on
    the alias table (botocore/hooks.py `_verify_accept_kwargs`, `EventAliaser._alias_event_name`, whose own
    cache is per session), so they are remembered for the test process."""
    from botocore import hooks

    accepts = hooks.accepts_kwargs
    answers: dict[Any, bool] = {}

    def accepts_kwargs(func):
        key = getattr(func, "__func__", func)  # a bound method takes **kwargs exactly when its function does
        try:
            return answers[key]
        except KeyError:
            answer = answers[key] = accepts(func)
            return answer
        except TypeError:  # unhashable callable
            return accepts(func)

    hooks.accepts_kwargs = accepts_kwargs

    names: dict[tuple, dict[str, str]] = {}
    aliaser_init = hooks.EventAliaser.__init__

    def __init__(self, event_emitter, event_aliases=None):
        aliaser_init(self, event_emitter, event_aliases)
        self._alias_name_cache = names.setdefault(tuple(self._event_aliases.items()), {})

    hooks.EventAliaser.__init__ = __init__


def _cheaper_moto() -> None:
    """Two of moto's per-request and per-mock costs that depend on nothing but moto's own classes:

    - every request lists its response class's methods with `inspect.getmembers` to find the action's handler
      (moto/core/responses.py `call_action` -> `method_names_from_class`); the list is kept per class and per
      size of each of its classes' namespaces, so a test that adds a handler (monkeypatch) is seen;
    - every `mock_aws()` start registers a `responses` callback (the `requests` library's interception) for each
      of ~180 URL patterns times 7 HTTP methods, building ~1,300 `CallbackResponse` objects (moto/core/models.py
      `_enable_patching`); they hold only the method, the pattern and moto's callback, so the same objects are
      registered again at the next start (moto's registry keeps them in lists; nothing else is shared)."""
    from moto.core import models
    from moto.core import responses as moto_responses

    names: dict[tuple, list[str]] = {}
    method_names = moto_responses.method_names_from_class

    def method_names_from_class(clazz):
        key = (clazz, *(len(vars(c)) for c in clazz.__mro__))
        try:
            return names[key]
        except KeyError:
            found = names[key] = method_names(clazz)
            return found

    moto_responses.method_names_from_class = method_names_from_class

    built: dict[tuple, Any] = {}
    callback_response = models.CallbackResponse

    def CallbackResponse(*, method, url, callback, **kwargs):  # noqa: N802 (stands in for the class)
        key = (method, url, callback, tuple(sorted(kwargs.items())))
        try:
            made = built[key]
            made.calls.reset()  # `responses` records each call it matched on the object: start afresh, as a new one
            return made
        except KeyError:
            made = built[key] = callback_response(method=method, url=url, callback=callback, **kwargs)
            return made

    models.CallbackResponse = CallbackResponse


def _symmetric_kms_keys_without_an_rsa_key() -> None:
    """moto gives every KMS key a private key for Sign/Verify, and for a symmetric key (SYMMETRIC_DEFAULT, HMAC_*:
    every key the tests and the stand-in cloud create) an RSA-2048 one it never uses: moto encrypts with the key's
    own `key_material` (moto/kms/models.py `Key.__init__`, utils.py `generate_private_key`). Drawing that RSA key
    took 0.05-0.1 s per CreateKey (1.7 s of a serial fast tier); the symmetric keys of a test process now share
    one. An asymmetric spec (RSA_*, ECC_*, SM2) still gets its own key pair, as before. Worth the patch: one
    module-level name of moto's, checked at start-up (an upgrade that renames it fails here, not silently)."""
    from moto.kms import models as kms_models
    from moto.kms.utils import KeySpec

    generate = kms_models.generate_private_key
    symmetric = {KeySpec.SYMMETRIC_DEFAULT.value, *KeySpec.hmac_key_specs()}
    shared: dict[str, Any] = {}

    def generate_private_key(key_spec: str) -> Any:
        if key_spec not in symmetric:
            return generate(key_spec)
        if key_spec not in shared:
            shared[key_spec] = generate(key_spec)
        return shared[key_spec]

    kms_models.generate_private_key = generate_private_key


def _commands_built_once() -> None:
    """typer's CliRunner builds the click command tree of the app at every `invoke` (typer/testing.py calls
    `typer.main.get_command(app)`): 12 ms for trainstack's app, at each of the ~100 invocations. The tree holds the
    commands' functions and parameters as declared at import; nothing in it changes between invocations (a test's
    monkeypatch of what a command calls is looked up when it runs), so each app's tree is built once per worker."""
    from typer import testing

    built: dict[int, tuple[Any, Any]] = {}
    get_command = testing._get_command

    def _get_command(app):
        cached = built.get(id(app))
        if cached is None or cached[0] is not app:
            cached = built[id(app)] = (app, get_command(app))
        return cached[1]

    testing._get_command = _get_command


def _freeze_what_full_collections_keep() -> None:
    """After each full (generation 2) garbage collection, the objects that survived it are frozen (`gc.freeze`:
    moved to the permanent generation, which later collections do not traverse). A test process holds ~3,000
    modules, botocore's parsed models, pulumi_aws's classes and moto's backends, all alive to the end, and every
    full collection walked them again: 18 of them took 3.9 s of 24 s in tests/policies+components+model (measured
    with gc.callbacks). Survivors of a full collection are reachable by definition, so nothing collectable is
    frozen; an object frozen then that becomes cyclic garbage later stays in memory until the process exits
    (reference counting still frees the rest), a bounded cost for a test worker. The documented API, no patch."""
    import gc

    def after(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    gc.callbacks.append(after)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _worker_done
    _worker_done = getattr(config, "workerinput", None) is not None


def pytest_configure(config: pytest.Config) -> None:
    # Not in pytest-xdist's controller, which runs no test (and need not import botocore or moto before it starts
    # its workers).
    if getattr(config, "workerinput", None) is not None or not getattr(config.option, "numprocesses", None):
        _share_botocore_models()
        _share_botocore_client_parts()
        _share_botocore_session_parts()
        _cheaper_moto()
        _symmetric_kms_keys_without_an_rsa_key()
        _commands_built_once()
        _freeze_what_full_collections_keep()


_PENDING = object()  # once_per_session(..., wait=False): another worker is computing it


def once_per_session(
    factory: pytest.TempPathFactory, name: str, compute: Callable[[], Any], *, wait: bool = True
) -> Any:
    """`compute()` once per test session, even when pytest-xdist runs it in several worker processes.

    The first worker to get here computes it under a lock and pickles the result into the session's
    shared temporary folder; the others wait for the lock and load it (pytest-xdist's documented recipe
    for session fixtures, "Making session-scoped fixtures execute only once"). With `wait=False` a worker
    that finds the lock taken gets `_PENDING` at once instead, to do something else meanwhile. Nothing
    outlives the session: a new run computes afresh."""
    import fcntl
    import pickle

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return compute()
    shared = factory.getbasetemp().parent
    path = shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return _PENDING
        if path.exists():
            return pickle.loads(path.read_bytes())
        value = compute()
        path.write_bytes(pickle.dumps(value))
        return value


class ExamplePlans(Mapping[str, Any]):
    """`trainstack plan` of every stack file by name, each evaluated once per test session and only when a
    test first asks for it. Iterating (`items()`, `values()`) evaluates them all; with two workers each
    evaluates those the other is not busy with instead of waiting for them one at a time."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self._plans: dict[str, Any] = {}
        self._platforms: dict[str, dict] = {}  # the platform outputs the cluster plans of this process read

    def _get(self, name: str, *, wait: bool = True) -> Any:
        if name not in self._plans:

            def compute() -> Any:
                from trainstack.plan.planner import plan

                return plan(name, ROOT, _platform_cache=self._platforms)

            value = once_per_session(self._factory, f"example-plan-{name}", compute, wait=wait)
            if value is _PENDING:
                return value
            self._plans[name] = value
        return self._plans[name]

    def __getitem__(self, name: str) -> Any:
        if name not in STACKS:
            raise KeyError(name)
        return self._get(name)

    def __contains__(self, name: object) -> bool:
        return name in STACKS

    def __iter__(self) -> Iterator[str]:
        pending = [name for name in STACKS if name not in self._plans]
        if os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":
            pending.reverse()  # the workers start from opposite ends
        while pending:
            left = [name for name in pending if self._get(name, wait=False) is _PENDING]
            if left and left == pending:  # everything left is being computed elsewhere: wait for one
                self._get(left[0])
                left = left[1:]
            pending = left
        return iter(STACKS)

    def __len__(self) -> int:
        return len(STACKS)


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
def example_plans(tmp_path_factory) -> ExamplePlans:
    """`trainstack plan` of every stack file (a read-only mapping by stack name), once per test session."""
    return ExamplePlans(tmp_path_factory)


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
