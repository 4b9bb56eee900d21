"""The layer rules of pyproject.toml's [tool.importlinter] hold, and each one catches a planted violation.

The rules are checked by import-linter (grimp's import graph), not by a hand-written import scanner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.helpers import ROOT

LINT = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
]

# (module to plant the import in, the import, the contract that must break)
PLANTS = [
    ("trainstack/model/cidr.py", "import pulumi", "the pure model (model, backends) imports no Pulumi"),
    ("trainstack/model/tags.py", "import trainstack.run.run", "the pure model (model, backends) imports no Pulumi"),
    ("components/code_bundle.py", "import trainstack.plan.planner", "components import only the model"),
    ("trainstack/programs/cluster.py", "import boto3", "stack programs import components and the model"),
    ("trainstack/run/progress.py", "import trainstack.components.data_lake", "the tools (cli, plan, run"),
    ("trainstack/plan/render.py", "import trainstack.programs.program", "the tools (cli, plan, run"),
    ("trainstack/doctor/facts.py", "import trainstack.components.auto_teardown", "the tools (cli, plan, run"),
    ("scripts/ec2_bootstrap.py", "import trainstack.run.follow", "the node bootstrap imports only the model"),
]


def lint(root) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy's `trainstack` ahead of the editable install
    return subprocess.run(
        LINT + ["--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_layer_contract():
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5 kept, 0 broken" in out.stdout


def test_each_planted_violation_breaks_its_contract(tmp_path):
    for folder in ("trainstack", "components", "scripts"):
        shutil.copytree(ROOT / folder, tmp_path / folder, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for path, line, _ in PLANTS:
        target = tmp_path / path
        target.write_text(target.read_text() + f"\n{line}  # planted\n")
    out = lint(tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    for path, line, contract in PLANTS:
        broken = [block for block in out.stdout.split("\n\n") if contract in block and "BROKEN" in block]
        assert broken, f"{contract}: not reported broken for `{line}` in {path}\n{out.stdout}"
    assert "0 kept, 5 broken" in out.stdout
