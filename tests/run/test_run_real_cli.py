"""Real-CLI tier: the driver against Pulumi CLI 3.272 (`.pulumi-version`) on a `file://` backend, with a
provider-free fixture project (tests/fixtures/cli_project). It replays what the fake CLI tier tests and
checks that every argv the SDK sent is one the strict fake accepts, so the fake cannot drift silently.

Deselected by default (pyproject addopts `-m 'not pulumi_cli'`); run where the CLI is installed:
    .venv/bin/python -m pytest -m pulumi_cli tests/run/test_run_real_cli.py
"""

from __future__ import annotations

import io
import json
import signal
import sys
from pathlib import Path

import pytest
from pulumi import automation as auto
from rich.console import Console

from trainstack.run import locks
from trainstack.run.driver import Interrupts, StackDriver, output_values, pulumi_command
from trainstack.run.run import Ui, destroy_stack
from trainstack.run.run_config import config_json
from trainstack.standins.fake_pulumi import parse

pytestmark = [pytest.mark.pulumi_cli, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "cli_project"


@pytest.fixture
def project(tmp_path, monkeypatch):
    work = tmp_path / "project"
    work.mkdir()
    (work / "__main__.py").write_text((FIXTURE / "__main__.py").read_text())
    # The interpreter running the tests has pulumi installed: the program runs in it.
    (work / "Pulumi.yaml").write_text(
        f"name: trainstack\nruntime:\n  name: python\n  options:\n    virtualenv: {Path(sys.prefix)}\n"
    )
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{state}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "trainstack-tests")
    return work


def driver(project: Path):
    cmd = pulumi_command(None, project_root=ROOT)
    return cmd, StackDriver(cmd, root=project)


def ui() -> Ui:
    return Ui(Console(file=io.StringIO(), width=200))


def assert_fake_accepts(cmd) -> None:
    for argv in cmd.argv_log:
        parse(list(argv))  # raises Usage on anything the fake does not implement


def test_lifecycle_config_types_outputs_destroy(project):
    cmd, d = driver(project)
    stack = d.create("t-life")
    raw = {"trainstack:steps": 2, "trainstack:job": {"command": ["python", "train.py", "--epochs", "10"]}}
    stack.set_all_config_json(config_json(raw))
    assert json.loads(stack.get_all_config()["trainstack:job"].value)["command"][-1] == "10"  # still a string
    stack.preview(on_event=lambda e: None)
    up = stack.up(on_event=lambda e: None)
    assert up.outputs["steps"].value == 2 and up.outputs["command"].value[-1] == "10"
    # One `stack output --show-secrets` reads what the SDK's masked-then-plain pair reads, secrets in plain text.
    assert up.outputs["token"].secret
    assert output_values(stack.workspace, "t-life") == {k: v.value for k, v in up.outputs.items()}
    outcome = destroy_stack(stack, ui=ui(), attempts=2, backoff=0, intr=None)
    assert outcome.status == "removed", outcome.reason
    with pytest.raises(auto.StackNotFoundError):
        d.select("t-life")
    assert_fake_accepts(cmd)


def test_sigint_during_up_then_destroy(project):
    import os
    import threading
    import time

    cmd, d = driver(project)
    stack = d.create("t-int")
    stack.set_all_config_json(config_json({"trainstack:steps": 20, "trainstack:delay": 0.5}))
    threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with Interrupts(cmd) as intr:
        with pytest.raises(auto.CommandError):
            stack.up(on_event=lambda e: None)
        assert intr.count == 1
        outcome = destroy_stack(stack, ui=ui(), attempts=3, backoff=1, intr=intr)
    assert outcome.status == "removed", outcome.reason
    time.sleep(0.1)
    assert_fake_accepts(cmd)


def test_double_sigint_leaves_a_lock_that_destroy_cancels(project):
    import os
    import threading

    cmd, d = driver(project)
    stack = d.create("t-lock")
    stack.set_all_config_json(config_json({"trainstack:steps": 40, "trainstack:delay": 0.5}))

    def twice():
        os.kill(os.getpid(), signal.SIGINT)
        threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()

    threading.Timer(3.0, twice).start()
    with Interrupts(cmd) as intr:
        with pytest.raises(auto.CommandError):
            stack.up(on_event=lambda e: None)
        dead = cmd.last_process.pid
        # The real CLI's lock refusal names its holder as trainstack.run.locks parses it: the killed CLI, gone.
        with pytest.raises(auto.ConcurrentUpdateError) as locked:
            stack.refresh(on_event=lambda e: None)
        held = locks.holders(str(locked.value))
        assert [h.pid for h in held] == [dead] and all(locks.gone(h) for h in held)
        outcome = destroy_stack(stack, ui=ui(), attempts=3, backoff=1, intr=intr)
    assert intr.count == 2 and outcome.status == "removed", outcome.reason
    assert_fake_accepts(cmd)
