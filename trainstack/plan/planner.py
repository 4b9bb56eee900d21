"""`trainstack plan STACK`: evaluate a stack offline and show what `pulumi up` would create.

Loads `Pulumi.yaml` (schema defaults) and `stacks/Pulumi.STACK.yaml`, validates the config,
runs `__main__.py` under Pulumi's mock engine (a cluster stack's platform StackReference is
served by evaluating the platform stack the same way), and reports the resource tree, warnings
and the cost estimate. No AWS credentials, no Pulumi CLI.
"""

from __future__ import annotations

import datetime as dt
import os
import runpy
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainstack.errors import UserError
from trainstack.model import config as config_mod
from trainstack.model.cost import CostEstimate, estimate
from trainstack.plan import platform_cache
from trainstack.plan.offline import OfflineRun, run_offline
from trainstack.project import REPO_ROOT  # noqa: E402 - re-exported: the default --root


class PlanError(UserError):
    """A plan that cannot be made (missing stack file, bad YAML, bad config): exit 2."""


@dataclass
class PlanResult:
    """What `trainstack plan` shows of a stack: config, registrations, checks, cost and timing."""

    stack: str
    config: config_mod.StackConfig
    run: OfflineRun
    cost: CostEstimate
    seconds: float
    platform_stack: str | None = None
    policy: Any = None  # trainstack.policies.offline.PolicyReport: the CrossGuard pack run offline over `run`
    # What the provider would refuse at a real preview (scripts/provider_schema.py); any fails the plan.
    findings: list = field(default_factory=list)
    schema_seconds: float = 0.0

    @property
    def timing(self):
        """Time to first GPU: `up`'s critical path and the phases until training runs (trainstack.model.timing)."""
        from trainstack.model import timing

        nodes = [
            timing.Node(r.urn, r.type, r.name, r.parent, tuple(r.dependencies), r.custom) for r in self.run.resources
        ]
        cfg = self.config
        image = cfg.cluster.job.image if isinstance(cfg, config_mod.ClusterStack) else None
        return timing.estimate(nodes, self.config.backend, image)

    @property
    def warnings(self) -> list[str]:
        """What the program warned about (config warnings included), as `pulumi up` would show them."""
        return self.run.warnings


class _StrictLoader(yaml.SafeLoader):
    """YAML as Pulumi reads a stack file, but a key given twice is an error, not "the last one wins"."""


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first: int, again: int):
        super().__init__(f"key {key} is given twice (lines {first} and {again})")
        self.key, self.first, self.again = key, first, again


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)  # `<<:` merge keys, as SafeLoader does
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            continue  # construct_mapping refuses it ("found unhashable key")
        if key in seen:
            raise _DuplicateKey(key, seen[key].start_mark.line + 1, key_node.start_mark.line + 1)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)

if getattr(yaml, "__with_libyaml__", False):

    class _FastStrictLoader(yaml.CSafeLoader):
        """_StrictLoader on libyaml's parser: the same constructors and resolver, a tenth of the time.
        Only for documents it reads without an error: any error is reported by _StrictLoader."""

    _FastStrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
    _LOADERS: tuple[type, ...] = (_FastStrictLoader, _StrictLoader)
else:  # a PyYAML built without libyaml
    _LOADERS = (_StrictLoader,)


def _load_yaml(text: str) -> Any:
    """`text` as _StrictLoader reads it; raises what _StrictLoader raises (its messages name the line)."""
    try:
        return yaml.load(text, Loader=_LOADERS[0])  # noqa: S506 - a SafeLoader (CSafeLoader) subclass
    except yaml.YAMLError:
        if len(_LOADERS) == 1:
            raise
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml_mapping(path: Path, what: str, fix: str) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (or empty), as a dict. PlanError, naming the file, the
    problem and `fix`, for a file that is not UTF-8 text, not YAML, has a key twice or is not a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8). A {what} is UTF-8 YAML. Fix: {fix}"
        ) from None
    except OSError as exc:
        raise PlanError(f"{path}: cannot be read ({exc.strerror}). Fix: {fix}") from None
    try:
        doc = _load_yaml(text)
    except _DuplicateKey as exc:
        raise PlanError(
            f"{path}: {exc.key} is given twice (lines {exc.first} and {exc.again}); YAML would silently keep "
            f"only the last. Fix: remove one of them"
        ) from None
    except yaml.YAMLError as exc:
        raise PlanError(f"{path} is not valid YAML: {exc}. Fix: {fix}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PlanError(
            f"{path}: the top level is a {type(doc).__name__} ({_preview(doc)}), not a mapping. "
            f"A {what} is a mapping of keys. Fix: {fix}"
        )
    return doc


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def project_file(root: Path) -> dict[str, Any]:
    path = root / "Pulumi.yaml"
    if not path.exists():
        raise PlanError(f"{path} not found: run trainstack from the trainstack project (or pass --root)")
    return read_yaml_mapping(path, "Pulumi project file", "restore Pulumi.yaml from the repository")


def schema_defaults(project: dict[str, Any]) -> dict[str, Any]:
    """Project-level config defaults, as the Pulumi CLI applies them to every stack."""
    ns = project.get("name", "trainstack")
    out: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{ns}:{key}"
        if isinstance(spec, dict):
            if "default" in spec:
                out[full] = spec["default"]
            elif "value" in spec:
                out[full] = spec["value"]
        else:
            out[full] = spec
    return out


def stack_names(root: Path = REPO_ROOT) -> list[str]:
    folder = root / (project_file(root).get("stackConfigDir") or ".")
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in folder.glob("Pulumi.*.yaml"))


def stack_file_config(path: Path, project: dict[str, Any], secret: Callable[[str], Any]) -> dict[str, Any]:
    """A stack file's config as the flat map `pulumi up` hands the program: the project's schema
    defaults under the file's own values, every key namespaced. `secret(key)` stands in for an
    encrypted (`secure:`) value, which only the stack's own secrets provider can read.
    Raises PlanError for a file that is not a YAML mapping with a `config:` mapping (or has a key twice)."""
    ns = project.get("name", "trainstack")
    fix = "write it like stacks/Pulumi.dev-ecs.yaml: a top-level `config:` mapping of trainstack:KEY: VALUE"
    doc = read_yaml_mapping(path, "stack file", fix)
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise PlanError(
            f"{path}: `config` is a {type(config).__name__} ({_preview(config)}), not a mapping. Fix: {fix}"
        )
    raw = schema_defaults(project)
    for key, value in config.items():
        full = key if ":" in key else f"{ns}:{key}"
        raw[full] = secret(full) if isinstance(value, dict) and set(value) == {"secure"} else value
    return raw


def load_raw_config(stack: str, root: Path = REPO_ROOT) -> tuple[str, dict[str, Any]]:
    project = project_file(root)
    folder = root / (project.get("stackConfigDir") or ".")
    path = folder / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(stack_names(root)) or "none"
        raise PlanError(f"no stack file {path.relative_to(root)} (stacks here: {known})")
    # Encrypted with the stack's key: offline we cannot and need not decrypt it.
    raw = stack_file_config(path, project, lambda key: "[secret]")
    return project.get("name", "trainstack"), raw


def _program(root: Path):
    main = root / "__main__.py"
    return lambda: runpy.run_path(str(main), run_name="__main__")


def stack_file(stack: str, root: Path) -> Path:
    return root / (project_file(root).get("stackConfigDir") or ".") / f"Pulumi.{stack}.yaml"


def _evaluate(stack: str, root: Path, raw: dict[str, Any], project: str, stack_outputs: dict[str, dict]) -> OfflineRun:
    """Run the project's program for `raw` under the mock engine."""
    cwd = os.getcwd()
    os.chdir(root)  # `__main__.py` imports `components` from the project root, as under `pulumi up`
    try:
        return run_offline(_program(root), config=raw, project=project, stack=stack, stack_outputs=stack_outputs)
    except Exception as exc:  # the program failed under mocks: report it as the plan's failure
        raise PlanError(f"the program failed: {exc}") from exc
    finally:
        os.chdir(cwd)


def platform_outputs(
    platform_name: str, root: Path = REPO_ROOT, *, now: dt.datetime | None = None, _cache: dict | None = None
) -> dict[str, Any]:
    """The outputs of the platform stack `platform_name` (its last path segment names the stack file),
    as a cluster's StackReference reads them: from `_cache` (this process), else from the platform cache
    (earlier plans), else by evaluating the platform program offline. Raises PlanError naming
    trainstack:platformStack when the platform stack cannot be evaluated or is not a platform."""
    local = platform_name.rsplit("/", 1)[-1]
    cache = _cache if _cache is not None else {}
    if local in cache:
        return cache[local]
    path = stack_file(local, root)
    digest = platform_cache.key(root, path) if path.exists() else None
    outputs = platform_cache.load(digest) if digest else None
    if outputs is None:
        outputs = _evaluate_platform(platform_name, local, root, now)
        if digest:
            platform_cache.store(digest, local, outputs)
    cache[local] = outputs
    return outputs


def _evaluate_platform(platform_name: str, local: str, root: Path, now: dt.datetime | None) -> dict[str, Any]:
    """The platform program alone under the mock engine (its own checks are its own plan's business)."""
    try:
        project, raw = load_raw_config(local, root)
        try:
            cfg = config_mod.parse_config(raw, project=project, stack=local, now=now, root=str(root))
        except config_mod.ConfigError as exc:
            raise PlanError(str(exc)) from None
        if cfg.kind == "platform":
            return _evaluate(local, root, raw, project, {}).outputs
    except PlanError as exc:
        raise PlanError(
            f"trainstack:platformStack = {platform_name}: cannot evaluate the platform stack "
            f"offline from stacks/Pulumi.{local}.yaml: {exc}"
        ) from None
    raise PlanError(f"trainstack:platformStack = {platform_name}: stack {local} is a {cfg.kind} stack, not a platform")


def plan(
    stack: str,
    root: Path = REPO_ROOT,
    *,
    now: dt.datetime | None = None,
    _platform_cache: dict[str, dict] | None = None,
    live_prices: bool = False,
    raw: dict[str, Any] | None = None,
) -> PlanResult:
    """Validate and evaluate `stack`; raise PlanError (with the validation message) on bad input.
    `raw` (a flat config map) replaces the stack file: `trainstack run` plans its merged config."""
    started = time.perf_counter()
    from_file = raw is None
    if raw is None:
        project, raw = load_raw_config(stack, root)
    else:
        project = project_file(root).get("name", "trainstack")
    try:
        cfg = config_mod.parse_config(raw, project=project, stack=stack, now=now, root=str(root))
    except config_mod.ConfigError as exc:
        raise PlanError(str(exc)) from None

    stack_outputs: dict[str, dict] = {}
    platform_name = None
    if isinstance(cfg, config_mod.ClusterStack):
        platform_name = cfg.cluster.platform_stack
        outputs = platform_outputs(platform_name, root, now=now, _cache=_platform_cache)
        if outputs.get("region") != cfg.region:
            raise PlanError(
                f"aws:region = {cfg.region}: the platform stack {platform_name} is in "
                f"{outputs.get('region')}; a cluster must run in its platform's region"
            )
        stack_outputs[platform_name] = outputs

    run = _evaluate(stack, root, raw, project, stack_outputs)
    if isinstance(cfg, config_mod.PlatformStack) and from_file:
        # What this stack's clusters will read: kept for their plans (trainstack/plan/platform_cache.py).
        platform_cache.store(platform_cache.key(root, stack_file(stack, root)), stack, run.outputs)
    from trainstack.plan.provider_schema import check
    from trainstack.policies.offline import check_plan

    policy = check_plan(cfg, run)  # the same rules `pulumi preview --policy-pack policies` enforces
    checked = time.perf_counter()
    findings = check(run.resources)
    schema_seconds = time.perf_counter() - checked
    return PlanResult(
        stack=stack,
        config=cfg,
        run=run,
        cost=_cost(cfg, live_prices, now=now),
        seconds=time.perf_counter() - started,
        platform_stack=platform_name,
        findings=findings,
        schema_seconds=schema_seconds,
        policy=policy,
    )


def _cost(cfg: config_mod.StackConfig, live_prices: bool, session=None, now: dt.datetime | None = None) -> CostEstimate:
    """The estimate from the packaged price table, or from AWS with --live-prices (falling back, saying why)."""
    if not live_prices or not isinstance(cfg, config_mod.ClusterStack):
        return estimate(cfg)
    from dataclasses import replace

    from trainstack.plan.live_prices import LivePriceError, fetch

    try:
        return estimate(cfg, fetch(cfg.cluster.gpu.instance_types, cfg.region, session=session, now=now))
    except LivePriceError as exc:
        cost = estimate(cfg)
        return replace(cost, notes=cost.notes + (f"--live-prices: {exc}; priced from the packaged table instead.",))


def ami_plan(cfg: config_mod.StackConfig) -> dict[str, Any] | None:
    """Where a cluster's GPU AMI comes from and which NVIDIA kernel module it loads (None: platform)."""
    from trainstack import backends
    from trainstack.model import amis

    if not isinstance(cfg, config_mod.ClusterStack):
        return None
    c = cfg.cluster
    found: amis.AmiPlan | None
    if backends.get(c.backend).capabilities.ami is backends.AmiSource.NODE_GROUP:
        found = amis.eks_plan(c.eks.ami_type, c.eks.release_version, c.gpu.architectures)
    else:
        found = amis.plan_for(c.backend, c.gpu.architectures, c.gpu.ami_id, c.gpu.ami_driver_branch)
    return found.as_dict() if found else None
