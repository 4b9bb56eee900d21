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
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainstack import config as config_mod
from trainstack.cost import CostEstimate, estimate

from .offline import OfflineRun, ResourceRecord, run_offline

REPO_ROOT = Path(__file__).resolve().parent.parent


class PlanError(Exception):
    """A plan that cannot be made (missing stack file, bad YAML, bad config)."""


@dataclass
class PlanResult:
    stack: str
    config: config_mod.StackConfig
    run: OfflineRun
    cost: CostEstimate
    seconds: float
    platform_stack: str | None = None
    policy: Any = None  # policies.offline.PolicyReport: the CrossGuard pack run offline over `run`
    # What the provider would refuse at a real preview (scripts/provider_schema.py); any fails the plan.
    findings: list = field(default_factory=list)
    schema_seconds: float = 0.0

    @property
    def timing(self):
        """Time to first GPU: `up`'s critical path and the phases until training runs (trainstack.timing)."""
        from trainstack import timing

        nodes = [timing.Node(r.urn, r.type, r.name, r.parent, tuple(r.dependencies), r.custom)
                 for r in self.run.resources]
        image = self.config.cluster.job.image if self.config.cluster else None
        return timing.estimate(nodes, self.config.backend, image)

    @property
    def warnings(self) -> list[str]:
        """What the program warned about (config warnings included), as `pulumi up` would show them."""
        return self.run.warnings


def project_file(root: Path) -> dict[str, Any]:
    path = root / "Pulumi.yaml"
    if not path.exists():
        raise PlanError(f"{path} not found: run trainstack plan from the trainstack project (or pass --root)")
    return yaml.safe_load(path.read_text()) or {}


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
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in folder.glob("Pulumi.*.yaml"))


def stack_file_config(path: Path, project: dict[str, Any], secret: Callable[[str], Any]) -> dict[str, Any]:
    """A stack file's config as the flat map `pulumi up` hands the program: the project's schema
    defaults under the file's own values, every key namespaced. `secret(key)` stands in for an
    encrypted (`secure:`) value, which only the stack's own secrets provider can read.
    Raises yaml.YAMLError for a file that is not YAML."""
    ns = project.get("name", "trainstack")
    doc = yaml.safe_load(path.read_text()) or {}
    raw = schema_defaults(project)
    for key, value in (doc.get("config") or {}).items():
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
    try:
        # Encrypted with the stack's key: offline we cannot and need not decrypt it.
        raw = stack_file_config(path, project, lambda key: "[secret]")
    except yaml.YAMLError as exc:
        raise PlanError(f"{path.relative_to(root)} is not valid YAML: {exc}") from None
    return project.get("name", "trainstack"), raw


def _program(root: Path):
    main = root / "__main__.py"
    return lambda: runpy.run_path(str(main), run_name="__main__")


def plan(stack: str, root: Path = REPO_ROOT, *, now: dt.datetime | None = None,
         _platform_cache: dict[str, dict] | None = None, live_prices: bool = False,
         raw: dict[str, Any] | None = None) -> PlanResult:
    """Validate and evaluate `stack`; raise PlanError (with the validation message) on bad input.
    `raw` (a flat config map) replaces the stack file: `trainstack run` plans its merged config."""
    started = time.perf_counter()
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
    if cfg.cluster is not None:
        platform_name = cfg.cluster.platform_stack
        local = platform_name.rsplit("/", 1)[-1]
        cache = _platform_cache if _platform_cache is not None else {}
        if local not in cache:
            try:
                platform = plan(local, root, now=now)
            except PlanError as exc:
                raise PlanError(f"trainstack:platformStack = {platform_name}: cannot evaluate the platform stack "
                                f"offline from stacks/Pulumi.{local}.yaml: {exc}") from None
            if platform.config.kind != "platform":
                raise PlanError(f"trainstack:platformStack = {platform_name}: stack {local} is a "
                                f"{platform.config.kind} stack, not a platform")
            cache[local] = platform.run.outputs
        if cache[local].get("region") != cfg.region:
            raise PlanError(f"aws:region = {cfg.region}: the platform stack {platform_name} is in "
                            f"{cache[local].get('region')}; a cluster must run in its platform's region")
        stack_outputs[platform_name] = cache[local]

    cwd = os.getcwd()
    os.chdir(root)  # `__main__.py` imports `components` from the project root, as under `pulumi up`
    try:
        run = run_offline(_program(root), config=raw, project=project, stack=stack, stack_outputs=stack_outputs)
    except Exception as exc:  # the program failed under mocks: report it as the plan's failure
        raise PlanError(f"the program failed: {exc}") from exc
    finally:
        os.chdir(cwd)
    from policies.offline import check_plan

    from .provider_schema import check

    policy = check_plan(cfg, run)  # the same rules `pulumi preview --policy-pack policies` enforces
    checked = time.perf_counter()
    findings = check(run.resources)
    schema_seconds = time.perf_counter() - checked
    return PlanResult(stack=stack, config=cfg, run=run, cost=_cost(cfg, live_prices, now=now),
                      seconds=time.perf_counter() - started, platform_stack=platform_name,
                      findings=findings, schema_seconds=schema_seconds, policy=policy)


def _cost(cfg: config_mod.StackConfig, live_prices: bool, session=None, now: dt.datetime | None = None) -> CostEstimate:
    """The estimate from the packaged price table, or from AWS with --live-prices (falling back, saying why)."""
    if not live_prices or cfg.cluster is None:
        return estimate(cfg)
    from dataclasses import replace

    from .live_prices import LivePriceError, fetch

    try:
        return estimate(cfg, fetch(cfg.cluster.gpu.instance_types, cfg.region, session=session, now=now))
    except LivePriceError as exc:
        cost = estimate(cfg)
        return replace(cost, notes=cost.notes + (f"--live-prices: {exc}; priced from the packaged table instead.",))


# ---------------------------------------------------------------------------------------------
# Rendering


def to_json(result: PlanResult) -> dict[str, Any]:
    return {
        "stack": result.stack,
        "kind": result.config.kind,
        "backend": result.config.backend,
        "region": result.config.region,
        "platformStack": result.platform_stack,
        "warnings": list(result.warnings),
        "resources": [{
            "type": r.type, "name": r.name, "parent": r.parent_name, "protected": r.protect,
            "ignoreChanges": r.ignore_changes, "inputs": r.inputs,
        } for r in result.run.resources],
        "summary": dict(sorted(Counter(r.type for r in result.run.resources).items())),
        "outputs": result.run.outputs,
        "cost": asdict(result.cost),
        "seconds": round(result.seconds, 3),
        "ami": ami_plan(result.config),
        "policy": result.policy.to_json() if result.policy is not None else None,
        "findings": [asdict(f) for f in result.findings],
        "schemaCheckSeconds": round(result.schema_seconds, 3),
        "timing": asdict(result.timing),
    }


def ami_plan(cfg: config_mod.StackConfig) -> dict[str, Any] | None:
    """Where a cluster's GPU AMI comes from and which NVIDIA kernel module it loads (None: platform)."""
    from trainstack import amis

    c = cfg.cluster
    if c is None:
        return None
    found = amis.plan_for(c.backend, c.gpu.architectures, c.gpu.ami_id, c.gpu.ami_driver_branch)
    if c.backend == "eks":
        found = amis.eks_plan(c.eks.ami_type, c.eks.release_version, c.gpu.architectures)
    return found.as_dict() if found else None


def _short_type(t: str) -> str:
    # aws:s3/bucket:Bucket -> aws:s3:Bucket
    if t.count(":") == 2 and "/" in t:
        pkg, mod, cls = t.split(":")
        return f"{pkg}:{mod.split('/')[0]}:{cls}"
    return t


def _range(low: float, high: float) -> str:
    return f"${high:,.2f}" if abs(high - low) < 0.005 else f"${low:,.2f}-{high:,.2f}"


def cost_line(cost: CostEstimate) -> str:
    """On-demand, expected (median spot, with the table's source and date) and the worst case per run."""
    line = (f"[bold]Estimated cost[/] ({cost.region}): idle ${cost.idle_usd_per_hour:.2f}/h; busy "
            f"{_range(cost.busy_low_usd_per_hour, cost.busy_usd_per_hour)}/h on-demand")
    if cost.max_run_usd:
        line += (f", expected {_range(cost.expected_low_usd_per_hour, cost.expected_usd_per_hour)}/h with spot "
                 f"(${cost.expected_run_usd:,.2f} per full run); worst case ${cost.max_run_usd:,.2f} per run "
                 f"(all on-demand, priciest type, max runtime)")
    if cost.price_source:
        line += f"\n  [dim]prices: {cost.price_source}, as of {cost.price_as_of}[/]"
    return line


def timing_line(t) -> str:
    """`up` time with its critical path, then the phases until the training process runs."""
    from trainstack.timing import minutes

    path = " -> ".join(f"{s.name} ({minutes(s.seconds)})" for s in t.critical_path)
    line = f"[bold]Time to first GPU[/]: `pulumi up` ~{minutes(t.up_seconds)}, critical path: {path}"
    if t.after_up:
        phases = ", ".join(f"{s.name} {minutes(s.seconds)}" for s in t.after_up)
        line += f"\n  training starts ~{minutes(t.training_seconds)} after `up` begins ({phases})"
    return line


def render(result: PlanResult, console) -> None:
    from rich.table import Table
    from rich.tree import Tree

    cfg = result.config
    title = f"[bold]{result.stack}[/]  kind={cfg.kind}  backend={cfg.backend}  region={cfg.region}"
    if cfg.cluster is not None:
        title += f"  owner={cfg.cluster.owner}  expires={cfg.cluster.expires_at_iso}"
    tree = Tree(title)
    children: dict[str, list[ResourceRecord]] = {}
    for r in result.run.resources:
        children.setdefault(r.parent, []).append(r)
    urns = {r.urn for r in result.run.resources}

    def add(parent_node: Tree, record: ResourceRecord) -> None:
        flags = []
        if record.protect:
            flags.append("[bold green]protected[/]")
        if record.ignore_changes:
            flags.append(f"[dim]ignores {', '.join(record.ignore_changes)}[/]")
        label = f"{record.name}  [cyan]{_short_type(record.type)}[/]" + (f"  {' '.join(flags)}" if flags else "")
        node = parent_node.add(label)
        for child in sorted(children.get(record.urn, []), key=lambda c: c.name):
            add(node, child)

    for r in sorted(result.run.resources, key=lambda c: c.name):
        if r.parent not in urns:
            add(tree, r)
    console.print(tree)

    summary = Table(title="Resources by type", show_lines=False)
    summary.add_column("type")
    summary.add_column("count", justify="right")
    summary.add_column("protected", justify="right")
    counts = Counter(r.type for r in result.run.resources)
    protected = Counter(r.type for r in result.run.resources if r.protect)
    for t, n in sorted(counts.items()):
        summary.add_row(_short_type(t), str(n), str(protected.get(t, "")) or "")
    summary.add_row("[bold]total[/]", f"[bold]{sum(counts.values())}[/]", f"[bold]{sum(protected.values())}[/]")
    console.print(summary)

    ami = ami_plan(cfg)
    if ami is not None:
        from rich.markup import escape

        branch = f", driver R{ami['driverBranch']}" if ami["driverBranch"] else ""
        console.print(f"[bold]GPU AMI[/]: {escape(ami['source'])} (NVIDIA kernel module: "
                      f"{escape(ami['driverModule'])}{branch})")
        for note in ami["notes"]:
            console.print(f"  [dim]- {escape(note)}[/]")

    cost = result.cost
    console.print(cost_line(cost), highlight=False)
    for note in cost.notes:
        console.print(f"  [dim]- {note}[/]")
    console.print(timing_line(result.timing), highlight=False)
    for w in result.warnings:
        console.print(f"[bold yellow]warning:[/] {w}")
    if result.policy is not None:
        render_policy(result.policy, console)
    if result.findings:
        console.print(f"[bold red]plan failed[/]: {len(result.findings)} input(s) the AWS provider would refuse "
                      "(checked against the installed pulumi_aws SDK and botocore's API models):")
        for f in result.findings:
            console.print(f"  - {f}", markup=False, highlight=False, soft_wrap=True)
        return
    verdict = "[bold red]plan refused by policy[/]" if result.policy and result.policy.mandatory else "[green]plan ok[/]"
    console.print(f"{verdict}: {len(result.run.resources)} resources, validated offline in "
                  f"{result.seconds:.2f}s (no AWS credentials, no Pulumi CLI used)")


def render_policy(report, console) -> None:
    """The policy summary: every violation with its rule, level, resource and message."""
    from rich.markup import escape
    from rich.table import Table

    levels = list(report.levels.values())
    head = (f"[bold]Policy[/] (pack trainstack, {len(levels)} rules: {levels.count('mandatory')} mandatory, "
            f"{len(levels) - levels.count('mandatory')} advisory) over {report.resources} resources")
    if not report.violations:
        console.print(f"{head}: [green]no violations[/]")
        return
    console.print(f"{head}: [bold red]{len(report.mandatory)} mandatory[/], "
                  f"[yellow]{len(report.advisory)} advisory[/] violation(s)")
    table = Table(show_lines=True)
    for column in ("level", "rule", "resource", "message"):
        table.add_column(column, overflow="fold")
    for v in report.violations:
        level = "[bold red]mandatory[/]" if v.level == "mandatory" else f"[yellow]{v.level}[/]"
        table.add_row(level, v.rule, escape(v.resource or "(stack)"), escape(v.message))
    console.print(table)
    if report.mandatory:
        console.print("[bold red]mandatory violations[/]: `pulumi preview --policy-pack policies` would refuse "
                      "this stack; fix them (each message says how) before `pulumi up`")
