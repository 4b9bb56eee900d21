"""`trainstack plan --format mermaid|dot`: the picture parses, and shows the tree, the reference and the data flow."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from typer.testing import CliRunner

from tests.helpers import ROOT, STACKS
from trainstack.cli.main import app
from trainstack.plan.diagram import dot, mermaid

VALIDATOR = ROOT / "tests" / "mermaid" / "validate.mjs"


def mermaid_errors(diagrams: list[str]) -> list[str | None]:
    """Mermaid's own parser on each diagram (one node process for all): None where it parses."""
    out = subprocess.run(
        ["node", str(VALIDATOR)],
        input=json.dumps(diagrams),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=VALIDATOR.parent,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# The pages that may embed a diagram: the README and docs/ (the dev-ecs example is in docs/commands.md).
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_example_and_the_documented_diagrams_parse_with_mermaid_and_a_broken_one_does_not(example_plans):
    diagrams = [mermaid(example_plans[s]) for s in STACKS]
    documented = [
        (str(p.relative_to(ROOT)), d) for p in DOCS for d in re.findall(r"```mermaid\n(.*?)```", p.read_text(), re.S)
    ]
    assert documented, "the docs embed a diagram"
    broken = diagrams[0].replace('"]', '"', 1)  # an unclosed node label
    names = STACKS + [page for page, _ in documented]
    errors = mermaid_errors(diagrams + [d for _, d in documented] + [broken])
    assert errors[:-1] == [None] * len(names), dict(zip(names, errors[:-1], strict=True))
    assert errors[-1] and "Parse error" in errors[-1]


def test_the_documented_dev_ecs_diagram_is_what_the_plan_prints_today(example_plans):
    # Refresh with: .venv/bin/trainstack plan dev-ecs --format mermaid
    page = (ROOT / "docs" / "commands.md").read_text()
    shown = re.search(r"`trainstack plan dev-ecs --format mermaid`:\n\n```mermaid\n(.*?)```", page, re.S)
    assert shown, "docs/commands.md shows the dev-ecs diagram"
    assert shown.group(1) == mermaid(example_plans["dev-ecs"])


def test_the_mermaid_picture_nests_components_and_shows_the_data_flow(example_plans):
    text = mermaid(example_plans["dev-ecs"])
    assert text.startswith("flowchart LR\n")
    # The GPU group component sits inside the ECS cluster component, its ASG inside it.
    training = text.index('["training<br/>trainstack:compute:EcsTrainingCluster"]')
    gpu = text.index('["training-gpu<br/>trainstack:compute:GpuAutoScalingGroup"]')
    asg = text.index('["training-gpu-asg<br/>aws:autoscaling:Group"]')
    assert training < gpu < asg < text.index("end", asg)
    ids = dict(re.findall(r'(\w+)\[\S?"([^"]+?)<br/>', text))
    task = next(i for i, name in ids.items() if name == "training-task")
    ref = next(i for i, name in ids.items() if name == "platform")
    assert f'platform -.->|"StackReference: network, data lake"| {ref}' in text
    assert f'dataset -->|"reads"| {task}' in text and f'{task} -->|"writes"| model' in text
    assert 'dataset[("dataset<br/>raw/cifar10/v1/")]' in text
    assert 'model[("model<br/>artifacts/alice/dev-ecs/model/")]' in text


@pytest.mark.parametrize("stack, job", [("dev-ec2", "training-gpu-asg"), ("dev-sagemaker", "job")])
def test_each_backend_names_the_resource_that_trains(example_plans, stack, job):
    text = dot(example_plans[stack])
    node = re.search(rf'(\w+) \[label="{job}\\n', text).group(1)
    assert f'dataset -> {node} [label="reads"];' in text and f'{node} -> model [label="writes"];' in text


def test_a_job_created_after_up_is_drawn_outside_the_stack(example_plans):
    """sagemaker: the stack holds the job's request, `trainstack run` creates the job: not a node of the stack."""
    text = mermaid(example_plans["dev-sagemaker"])
    assert 'job["job<br/>aws:sagemaker:TrainingJob, created after up"]' in text
    body = text[: text.index("  end\n", text.index('subgraph stack["'))]
    assert "aws:sagemaker:TrainingJob" not in body  # not inside the stack's box


@pytest.mark.parametrize("stack", STACKS)
def test_the_dot_picture_is_well_formed(example_plans, stack):
    text = dot(example_plans[stack])
    assert text.startswith("digraph trainstack {") and text.count("{") == text.count("}")
    declared = set(re.findall(r"^\s*(\w+) \[label=", text, re.M))
    for src, dst in re.findall(r"^\s*(\w+) -> (\w+) ", text, re.M):
        assert src in declared and dst in declared
    job_outside = stack.startswith("dev-sagemaker")  # drawn outside: created after `up`
    assert (
        len(declared)
        == len(example_plans[stack].run.resources)
        - sum(1 for r in example_plans[stack].run.resources if not r.custom)
        + (4 if example_plans[stack].platform_stack else 0)
        + job_outside
    )


def test_the_cli_prints_the_diagram():
    out = CliRunner().invoke(app, ["plan", "dev-sagemaker", "--format", "mermaid"])
    assert out.exit_code == 0 and out.output.startswith("flowchart LR")
    bad = CliRunner().invoke(app, ["plan", "dev-sagemaker", "--format", "png"])
    assert bad.exit_code == 2 and "use text, mermaid or dot" in bad.output
