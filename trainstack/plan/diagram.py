"""`trainstack plan STACK --format mermaid|dot`: the plan as a picture.

Shows the component tree (components as nested boxes, resources inside them), the cross-stack
reference to the platform, and the data flow of a run: dataset -> job -> model and checkpoints.
Mermaid renders on GitHub and in most Markdown viewers; dot is for Graphviz.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from trainstack import backends
from trainstack.model.config import ClusterStack
from trainstack.plan.offline import ResourceRecord
from trainstack.plan.planner import PlanResult
from trainstack.plan.render import _short_type


@dataclass
class Box:
    """A component (or the stack) with the resources and components under it."""

    id: str
    label: str
    nodes: list[tuple[str, str, str]] = field(default_factory=list)  # (id, label, shape: rect|db|ref)
    boxes: list[Box] = field(default_factory=list)


@dataclass
class Picture:
    root: Box
    outside: list[tuple[str, str, str]]  # nodes outside the stack: platform, dataset, artifacts
    edges: list[tuple[str, str, str, bool]]  # (from, to, label, dashed)


def picture(result: PlanResult) -> Picture:
    """The diagram's content, independent of the output syntax."""
    records = result.run.resources
    ids = _ids(records)
    children: dict[str, list[ResourceRecord]] = {}
    for r in records:
        children.setdefault(r.parent if r.parent in ids else "", []).append(r)

    def fill(box: Box, parent: str) -> None:
        for r in sorted(children.get(parent, []), key=lambda c: c.name):
            if r.custom or r.type == "pulumi:pulumi:StackReference":
                shape = (
                    "ref"
                    if r.type == "pulumi:pulumi:StackReference"
                    else "db"
                    if r.type in ("aws:s3/bucket:Bucket", "aws:glue/catalogDatabase:CatalogDatabase")
                    else "rect"
                )
                box.nodes.append((ids[r.urn], f"{r.name}\n{_short_type(r.type)}", shape))
            else:
                sub = Box(ids[r.urn], f"{r.name}\n{r.type}")
                fill(sub, r.urn)
                box.boxes.append(sub)

    cfg = result.config
    root = Box(
        "stack",
        f"stack {result.stack}: {cfg.kind}"
        + (f", {cfg.backend}" if isinstance(cfg, ClusterStack) else "")
        + f", {cfg.region}",
    )
    fill(root, "")
    outside: list[tuple[str, str, str]] = []
    edges: list[tuple[str, str, str, bool]] = []
    refs = [r for r in records if r.type == "pulumi:pulumi:StackReference"]
    if result.platform_stack:
        outside.append(("platform", f"platform stack\n{result.platform_stack}", "rect"))
        for r in refs:
            edges.append(("platform", ids[r.urn], "StackReference: network, data lake", True))
    if isinstance(cfg, ClusterStack):
        c = cfg.cluster
        outs = result.run.outputs
        # The resource that runs the training (the middle of the data flow): the backend declares it.
        jobs = [r for r in records if r.type in backends.get(c.backend).job_resources]
        outside.append(("dataset", f"dataset\n{c.job.dataset}", "db"))
        for key, node, label in (("modelUri", "model", "model"), ("checkpointUri", "checkpoints", "checkpoints")):
            if isinstance(outs.get(key), str):
                outside.append((node, f"{label}\n{_after_bucket(outs[key])}", "db"))
        if result.platform_stack:  # the data lake is the platform's
            for node in ("dataset", "model", "checkpoints"):
                if any(o[0] == node for o in outside):
                    edges.append(("platform", node, "data lake", True))
        job_ids = [ids[job.urn] for job in jobs]
        if not jobs and backends.get(c.backend).job_resources:
            # The job is not in the stack (sagemaker: `trainstack run` creates it from the exported request).
            kind = _short_type(backends.get(c.backend).job_resources[0])
            outside.append(("job", f"job\n{kind}, created after up", "rect"))
            job_ids = ["job"]
        for job_id in job_ids:
            edges.append(("dataset", job_id, "reads", False))
            for node in ("model", "checkpoints"):
                if any(o[0] == node for o in outside):
                    edges.append((job_id, node, "writes", False))
    return Picture(root, outside, edges)


def _ids(records: list[ResourceRecord]) -> dict[str, str]:
    """Stable node ids from logical names (registration order varies between runs)."""
    ids: dict[str, str] = {}
    taken = {"stack", "platform", "dataset", "model", "checkpoints", "job"}
    for r in sorted(records, key=lambda r: (r.name, r.type)):
        base = "n_" + re.sub(r"\W", "_", r.name)
        node_id, i = base, 2
        while node_id in taken:
            node_id, i = f"{base}_{i}", i + 1
        taken.add(node_id)
        ids[r.urn] = node_id
    return ids


def _after_bucket(uri: str) -> str:
    """s3://bucket-1234/artifacts/alice/dev/model/ -> artifacts/alice/dev/model/ (mock bucket names mean nothing)."""
    return uri.split("://", 1)[-1].split("/", 1)[-1]


# ---------------------------------------------------------------------------------------------
# Mermaid


def _mermaid_text(label: str) -> str:
    return label.replace('"', "#quot;").replace("\n", "<br/>")


_MERMAID_SHAPES = {"rect": ('["', '"]'), "db": ('[("', '")]'), "ref": ('[/"', '"/]')}


def mermaid(result: PlanResult) -> str:
    pic = picture(result)
    lines = ["flowchart LR"]

    def box(b: Box, depth: int) -> None:
        pad = "  " * depth
        lines.append(f'{pad}subgraph {b.id}["{_mermaid_text(b.label)}"]')
        for node_id, label, shape in b.nodes:
            left, right = _MERMAID_SHAPES[shape]
            lines.append(f"{pad}  {node_id}{left}{_mermaid_text(label)}{right}")
        for sub in b.boxes:
            box(sub, depth + 1)
        lines.append(f"{pad}end")

    box(pic.root, 1)
    for node_id, label, shape in pic.outside:
        left, right = _MERMAID_SHAPES[shape]
        lines.append(f"  {node_id}{left}{_mermaid_text(label)}{right}")
    for src, dst, label, dashed in pic.edges:
        arrow = "-.->" if dashed else "-->"
        lines.append(f'  {src} {arrow}|"{_mermaid_text(label)}"| {dst}')
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Graphviz dot


def _dot_text(label: str) -> str:
    return '"' + label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_SHAPES = {"rect": "box", "db": "cylinder", "ref": "parallelogram"}


def dot(result: PlanResult) -> str:
    pic = picture(result)
    lines = ["digraph trainstack {", "  rankdir=LR;", "  node [fontname=Helvetica, fontsize=10];"]

    def box(b: Box, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}subgraph cluster_{b.id} {{")
        lines.append(f"{pad}  label={_dot_text(b.label)};")
        for node_id, label, shape in b.nodes:
            lines.append(f"{pad}  {node_id} [label={_dot_text(label)}, shape={_DOT_SHAPES[shape]}];")
        for sub in b.boxes:
            box(sub, depth + 1)
        lines.append(f"{pad}}}")

    box(pic.root, 1)
    for node_id, label, shape in pic.outside:
        lines.append(f"  {node_id} [label={_dot_text(label)}, shape={_DOT_SHAPES[shape]}];")
    for src, dst, label, dashed in pic.edges:
        style = ", style=dashed" if dashed else ""
        lines.append(f"  {src} -> {dst} [label={_dot_text(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


FORMATS = {"mermaid": mermaid, "dot": dot}
