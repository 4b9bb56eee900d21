"""How `trainstack plan` shows a plan: the resource tree, cost, timing and policy (rich), or JSON.

`render` draws the plan with rich. `plain_text` makes the same characters without rich for the common case of
output that is not a terminal (a pipe, a file, CI, scripts/bench.py): rich prints no styles there, and importing
and running it is ~0.07 s CPU of a plan. It answers only where it is certain to match `render` byte for byte
(tests/plan/test_render_plain.py compares them); for anything else it returns None and rich draws the plan.
"""

from __future__ import annotations

import os
import re
import sys
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


def _tree_index(result: PlanResult) -> tuple[dict[str, list[ResourceRecord]], list[ResourceRecord]]:
    """The resource tree both renderers draw: each resource's children by its URN, and the roots (whose
    parent is not in the plan), each list sorted by name."""
    children: dict[str, list[ResourceRecord]] = {}
    for r in sorted(result.run.resources, key=lambda c: c.name):
        children.setdefault(r.parent, []).append(r)
    urns = {r.urn for r in result.run.resources}
    return children, [r for r in sorted(result.run.resources, key=lambda c: c.name) if r.parent not in urns]


def _flags(record: ResourceRecord) -> list[tuple[str, str]]:
    """(rich style, text) of what the tree notes beside a resource."""
    flags = []
    if record.protect:
        flags.append(("bold green", "protected"))
    if record.ignore_changes:
        flags.append(("dim", f"ignores {', '.join(record.ignore_changes)}"))
    return flags


def render(result: PlanResult, console) -> None:
    from rich.table import Table
    from rich.tree import Tree

    cfg = result.config
    title = f"[bold]{result.stack}[/]  kind={cfg.kind}  backend={cfg.backend}  region={cfg.region}"
    if isinstance(cfg, ClusterStack):
        title += f"  owner={cfg.cluster.owner}  expires={cfg.cluster.expires_at_iso}"
    tree = Tree(title)
    children, roots = _tree_index(result)

    def add(parent_node: Tree, record: ResourceRecord) -> None:
        flags = [f"[{style}]{text}[/]" for style, text in _flags(record)]
        label = f"{record.name}  [cyan]{_short_type(record.type)}[/]" + (f"  {' '.join(flags)}" if flags else "")
        node = parent_node.add(label)
        for child in children.get(record.urn, []):
            add(node, child)

    for r in roots:
        add(tree, r)
    if console.soft_wrap:
        # Off a terminal (trainstack.run.ui.console) lines are never wrapped, and none may be cut either: rich
        # crops each tree line at the console's width (rich/tree.py renders labels to fixed-width lines), which
        # cut a cluster's `expires=` off its title in an 80-column CI log. The tree is printed as wide as its
        # widest line (Tree.__rich_measure__: label plus guides), the console's width restored after.
        from rich.measure import Measurement

        width = console.width
        console.width = max(width, Measurement.get(console, console.options.update_width(1 << 20), tree).maximum)
        try:
            console.print(tree)
        finally:
            console.width = width
    else:
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


# ---------------------------------------------------------------------------------------------
# The same text without rich, where rich would print no styles (not a terminal).

_BOX_TOP, _BOX_HEAD, _BOX_HEAD_RULE, _BOX_ROW, _BOX_BOTTOM = "┏━┳┓", "┃┃┃", "┡━╇┩", "│││", "└─┴┘"
_COLON_PAIR = re.compile(r":(\S*?):")


def plain_width() -> int | None:
    """The width rich's Console would give sys.stdout when it prints no styles there, else None.

    rich (console.py, Console.is_terminal/size/_detect_color_system): styles are off when the file is not a
    terminal (TTY_COMPATIBLE=0 says it is not, =1 that it is; a set FORCE_COLOR says it is unless empty); the
    width is the first of stdin, stdout, stderr that is a terminal, overridden by COLUMNS, else 80. Windows,
    Jupyter and a non-UTF-8 stdout (ASCII tree guides and boxes) are left to rich."""
    import builtins

    if sys.platform == "win32" or hasattr(builtins, "get_ipython"):
        return None
    out = sys.stdout
    if out is None or not (getattr(out, "encoding", "") or "utf-8").lower().startswith("utf"):
        return None
    env = os.environ
    compatible = env.get("TTY_COMPATIBLE", "")
    if compatible == "1":
        return None
    if compatible != "0":
        force = env.get("FORCE_COLOR")
        if force is not None:
            if force != "":
                return None
        else:
            try:
                if out.isatty():
                    return None
            except (ValueError, AttributeError):
                pass
    columns = env.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns)  # as given, 0 too (then nothing is plain here)
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd)[0] or 80
        except (AttributeError, ValueError, OSError):
            continue
    return 80


class _NotPlain(Exception):
    """rich might print this text differently (markup, emoji codes, wide or control characters)."""


def _text(value: object) -> str:
    """`value` as rich prints it from markup, when that is the value itself: printable ASCII (rich's cell widths
    and control-code stripping are not redone here) with no `[` or `\\` (markup, escapes)."""
    text = str(value)
    if any(not (" " <= c <= "~") for c in text) or "[" in text or "\\" in text:
        raise _NotPlain(text)
    return text


def _check_emoji(line: str) -> None:
    """Raise _NotPlain if rich could read an emoji code (`:ok:` -> 🆗, rich/_emoji_replace.py) in `line`: every
    pair of adjacent colons is checked, a superset of the pairs rich reads in any part of the line."""
    if line.count(":") < 2:
        return
    start = 0
    while True:
        m = _COLON_PAIR.search(line, start)
        if m is None:
            return
        name = m.group(1).lower()
        for variant in ("-emoji", "-text"):
            name = name.removesuffix(variant)
        if name not in _NOT_EMOJI:
            from rich._emoji_codes import EMOJI  # ~3,700 names: imported only for a name not known below

            if name in EMOJI:
                raise _NotPlain(line)
        start = m.start() + 1


# What stands between the colons of the resource types a plan prints (`aws:s3:Bucket`, `trainstack:compute:...`,
# `kubernetes:rbac.authorization.k8s.io:Role`) and of the title's expiry time (`T19:00:00Z`): none is one of
# rich's emoji names (tests/plan/test_render_plain.py checks that against the installed rich), so a line of
# them needs no look-up in rich's table.
_NOT_EMOJI = frozenset(
    {
        *("apps", "autoscaling", "batch", "cloudwatch", "code", "compute", "core", "ec2", "ecr", "ecs", "efs"),
        *("eks", "glue", "iam", "kms", "lifecycle", "network", "networking.k8s.io", "providers", "pulumi"),
        *("rbac.authorization.k8s.io", "s3", "sagemaker", "scheduler", "sfn", "sns", "sqs", "ssm", "storage"),
        *("storage.k8s.io", "vpc", "policy", "data", "lake", "training", "teardown", "cloudformation"),
        *(f"{minute:02d}" for minute in range(60)),
    }
)


def plain_text(result: PlanResult, width: int) -> str | None:
    """What `render(result, console())` prints on a console without styles `width` cells wide, or None when
    that is not certain here (a policy violation table, provider findings, text rich reads as markup or emoji,
    a table wider than the console): then render it with rich."""
    if result.findings or (result.policy is not None and result.policy.violations):
        return None
    try:
        lines = _plain_lines(result, width)
        for line in lines:
            _check_emoji(line)
    except _NotPlain:
        return None
    return "".join(line + "\n" for line in lines)


def _plain_lines(result: PlanResult, width: int) -> list[str]:
    cfg = result.config
    title = f"{_text(result.stack)}  kind={_text(cfg.kind)}  backend={_text(cfg.backend)}  region={_text(cfg.region)}"
    if isinstance(cfg, ClusterStack):
        title += f"  owner={_text(cfg.cluster.owner)}  expires={_text(cfg.cluster.expires_at_iso)}"
    if width < 1:
        raise _NotPlain(title)  # COLUMNS=0: left to rich
    lines = [title]  # off a terminal the tree's lines are printed whole, as render() prints them
    children, roots = _tree_index(result)

    def add(record: ResourceRecord, guides: str, last: bool) -> None:
        flags = [_text(text) for _, text in _flags(record)]
        label = f"{_text(record.name)}  {_text(_short_type(record.type))}" + (f"  {' '.join(flags)}" if flags else "")
        lines.append(guides + ("└── " if last else "├── ") + label)
        kids = children.get(record.urn, [])
        for i, child in enumerate(kids):
            add(child, guides + ("    " if last else "│   "), i == len(kids) - 1)

    for i, r in enumerate(roots):
        add(r, "", i == len(roots) - 1)

    counts = Counter(r.type for r in result.run.resources)
    protected = Counter(r.type for r in result.run.resources if r.protect)
    rows = [(_text(_short_type(t)), str(n), str(protected.get(t, "")) or "") for t, n in sorted(counts.items())]
    rows.append(("total", str(sum(counts.values())), str(sum(protected.values()))))
    header = ("type", "count", "protected")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    if sum(widths) + 3 * len(widths) + 1 > width:  # cells padded by one space, and the rules between them
        raise _NotPlain("table wider than the console")  # rich would shrink and wrap its columns

    def rule(box: str) -> str:
        return box[0] + box[2].join(box[1] * (w + 2) for w in widths) + box[3]

    def row(cells: tuple[str, str, str], box: str) -> str:
        just = [cells[0].ljust(widths[0]), cells[1].rjust(widths[1]), cells[2].rjust(widths[2])]
        return box[0] + box[1].join(f" {c} " for c in just) + box[2]

    # The title as print(table) leaves it on a console that does not wrap (overflow "ignore"): not centred.
    lines.append("Resources by type")
    lines += [rule(_BOX_TOP), row(header, _BOX_HEAD), rule(_BOX_HEAD_RULE)]
    lines += [row(r, _BOX_ROW) for r in rows]
    lines.append(rule(_BOX_BOTTOM))

    ami = ami_plan(cfg)
    if ami is not None:
        branch = f", driver R{_text(ami['driverBranch'])}" if ami["driverBranch"] else ""
        lines.append(f"GPU AMI: {_text(ami['source'])} (NVIDIA kernel module: {_text(ami['driverModule'])}{branch})")
        lines += [f"  - {_text(note)}" for note in ami["notes"]]
    cost = result.cost
    lines += _markup_free(cost_line(cost)).split("\n")
    lines += [f"  - {_text(note)}" for note in cost.notes]
    lines += _markup_free(timing_line(result.timing)).split("\n")
    lines += [f"warning: {_text(w)}" for w in result.warnings]
    if result.policy is not None:
        report = result.policy
        levels = list(report.levels.values())
        lines.append(
            f"Policy (pack trainstack, {len(levels)} rules: {levels.count('mandatory')} mandatory, "
            f"{len(levels) - levels.count('mandatory')} advisory) over {report.resources} resources: no violations"
        )
    lines.append(
        f"plan ok: {len(result.run.resources)} resources, validated offline in "
        f"{result.seconds:.2f}s (no AWS credentials, no Pulumi CLI used)"
    )
    return lines


_OWN_TAGS = re.compile(r"\[(?:bold|dim|/)\]")


def _markup_free(text: str) -> str:
    """cost_line/timing_line without their own [bold]/[dim] tags; any other bracket or backslash: not plain."""
    plain = _OWN_TAGS.sub("", text)
    for line in plain.split("\n"):
        _text(line)
    return plain
