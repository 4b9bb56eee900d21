"""How `trainstack plan` shows a plan: the resource tree, cost, timing and policy (rich), or JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from trainstack.model.config import ClusterStack
from trainstack.model.cost import CostEstimate
from trainstack.plan.offline import ResourceRecord
from trainstack.plan.planner import PlanResult, ami_plan


def to_json(result: PlanResult) -> dict[str, Any]:
    return {
        "stack": result.stack,
        "kind": result.config.kind,
        "backend": result.config.backend,
        "region": result.config.region,
        "platformStack": result.platform_stack,
        "warnings": list(result.warnings),
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "parent": r.parent_name,
                "protected": r.protect,
                "ignoreChanges": r.ignore_changes,
                "inputs": r.inputs,
            }
            for r in result.run.resources
        ],
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


def _short_type(t: str) -> str:
    # aws:s3/bucket:Bucket -> aws:s3:Bucket
    if t.count(":") == 2 and "/" in t:
        pkg, mod, cls = t.split(":")
        return f"{pkg}:{mod.split('/')[0]}:{cls}"
    return t


def money_range(low: float, high: float) -> str:
    """`$1.00-2.50`, or one price when both ends print the same (never `$7.82-7.82`)."""
    lo, hi = f"{low:,.2f}", f"{high:,.2f}"
    return f"${hi}" if lo == hi else f"${lo}-{hi}"


def cost_line(cost: CostEstimate) -> str:
    """On-demand, expected (median spot, with the table's source and date) and the worst case per run."""
    line = (
        f"[bold]Estimated cost[/] ({cost.region}): idle ${cost.idle_usd_per_hour:.2f}/h; busy "
        f"{money_range(cost.busy_low_usd_per_hour, cost.busy_usd_per_hour)}/h on-demand"
    )
    if cost.max_run_usd:
        line += (
            f", expected {money_range(cost.expected_low_usd_per_hour, cost.expected_usd_per_hour)}/h with spot "
            f"(${cost.expected_run_usd:,.2f} per full run); worst case ${cost.max_run_usd:,.2f} per run "
            f"(all on-demand, priciest type, max runtime)"
        )
    if cost.price_source:
        line += f"\n  [dim]prices: {cost.price_source}, as of {cost.price_as_of}[/]"
    return line


def timing_line(t) -> str:
    """`up` time with its critical path, then the phases until the training process runs."""
    from trainstack.model.timing import minutes

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
    if isinstance(cfg, ClusterStack):
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
        console.print(
            f"[bold]GPU AMI[/]: {escape(ami['source'])} (NVIDIA kernel module: {escape(ami['driverModule'])}{branch})"
        )
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
        console.print(
            f"[bold red]plan failed[/]: {len(result.findings)} input(s) the AWS provider would refuse "
            "(checked against the installed pulumi_aws SDK and botocore's API models):"
        )
        for f in result.findings:
            console.print(f"  - {f}", markup=False, highlight=False, soft_wrap=True)
        return
    verdict = (
        "[bold red]plan refused by policy[/]" if result.policy and result.policy.mandatory else "[green]plan ok[/]"
    )
    console.print(
        f"{verdict}: {len(result.run.resources)} resources, validated offline in "
        f"{result.seconds:.2f}s (no AWS credentials, no Pulumi CLI used)"
    )


def render_policy(report, console) -> None:
    """The policy summary: every violation with its rule, level, resource and message."""
    from rich.markup import escape
    from rich.table import Table

    levels = list(report.levels.values())
    head = (
        f"[bold]Policy[/] (pack trainstack, {len(levels)} rules: {levels.count('mandatory')} mandatory, "
        f"{len(levels) - levels.count('mandatory')} advisory) over {report.resources} resources"
    )
    if not report.violations:
        console.print(f"{head}: [green]no violations[/]")
        return
    console.print(
        f"{head}: [bold red]{len(report.mandatory)} mandatory[/], "
        f"[yellow]{len(report.advisory)} advisory[/] violation(s)"
    )
    table = Table(show_lines=True)
    for column in ("level", "rule", "resource", "message"):
        table.add_column(column, overflow="fold")
    for v in report.violations:
        level = "[bold red]mandatory[/]" if v.level == "mandatory" else f"[yellow]{v.level}[/]"
        table.add_row(level, v.rule, escape(v.resource or "(stack)"), escape(v.message))
    console.print(table)
    if report.mandatory:
        console.print(
            "[bold red]mandatory violations[/]: `pulumi preview --policy-pack trainstack/policies` would refuse "
            "this stack; fix them (each message says how) before `pulumi up`"
        )
