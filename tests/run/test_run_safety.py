"""Issue 20, part 2: `run` and `down` are safe under concurrency and typos. The real Automation API against
the strict fake CLI (its locks are the DIY backend's: holder pid, user, host), jobs in moto."""

from __future__ import annotations

import json
import os
import threading

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.fakes.run_harness import FAKE_ROOT, command, options, quiet_ui
from tests.helpers import wait_for
from trainstack.cli.main import app
from trainstack.run import run as run_mod
from trainstack.run.ui import Ui

pytestmark = pytest.mark.e2e


def run_in_thread(opts) -> tuple[threading.Thread, dict]:
    """A run in a worker thread (signal handlers stay with the main thread), its record in `box`."""
    box: dict = {}

    def body():
        box["record"] = run_mod.run(opts, quiet_ui()[0], command=command())

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, box


def mid_up(cli, name: str, n: int = 2):
    return lambda: name in cli.stacks() and len(cli.stack(name).get("resources", [])) >= n


def test_down_during_a_live_up_refuses_and_names_the_holder(cli, cloud, tmp_path):
    cli.scenario(hold_up_after=2)  # `up` waits, locked, after two resources until released
    t, box = run_in_thread(options("dev-ecs", tmp_path))
    wait_for(mid_up(cli, "t-dev-ecs"))
    ui, out = quiet_ui()
    result = run_mod.down("t-dev-ecs", ui, pulumi_root=str(FAKE_ROOT), backoff=0)
    # The lock's holder is a live `pulumi up` on this host: never cancelled, nothing destroyed under it.
    assert (result.status, result.exit_code) == ("busy", 5)
    assert "(pid " in result.reason and "still running on this machine" in result.reason
    assert "pulumi cancel --stack t-dev-ecs" in result.reason  # the deliberate way out, named
    assert "cancel" not in cli.commands()
    cli.release()
    t.join(120)
    record = box["record"]
    assert record.exit_code == 0 and record.status == "succeeded"  # the run was not disturbed
    assert cli.stacks() == []


def test_a_lock_held_on_another_machine_is_left_alone(cli, cloud, tmp_path):
    cli.seed("t-other", {"outputs": {"backend": "ecs"}, "resources": [{"urn": "u", "type": "t"}]})
    cli.lock("t-other", pid=os.getpid(), host="build-42.example.com")
    result = run_mod.down("t-other", quiet_ui()[0], pulumi_root=str(FAKE_ROOT), backoff=0, session_factory=None)
    assert result.status == "busy" and "ci@build-42.example.com" in result.reason
    assert "on another machine: cannot tell whether it is still running" in result.reason
    assert cli.locked("t-other") and cli.stacks() == ["t-other"]


def test_a_second_run_with_the_same_name_is_refused_with_its_reason_and_the_first_record_kept(cli, cloud, tmp_path):
    cli.scenario(hold_up_after=2)
    t, box = run_in_thread(options("dev-ecs", tmp_path))
    wait_for(mid_up(cli, "t-dev-ecs"))
    first_record = tmp_path / "runs" / "t-dev-ecs" / "run.json"
    before = json.loads(first_record.read_text())
    second = run_mod.run(options("dev-ecs", tmp_path), quiet_ui()[0], command=command())
    assert second.exit_code == 2 and "--name t-dev-ecs: a stack of that name already exists" in second.reason
    after = json.loads(first_record.read_text())
    assert after["started_at"] == before["started_at"] and after["status"] != "refused"
    cli.release()
    t.join(120)
    assert box["record"].exit_code == 0
    assert json.loads(first_record.read_text())["status"] == "succeeded"


def test_the_name_collision_prints_its_reason_without_json(cli, cloud, tmp_path, monkeypatch):
    cli.seed("t-taken", {"resources": [{"urn": "u", "type": "t"}]})
    monkeypatch.setenv("TRAINSTACK_PULUMI_ROOT", str(FAKE_ROOT))
    monkeypatch.setenv("TRAINSTACK_RUNS_DIR", str(tmp_path / "runs"))
    result = CliRunner().invoke(app, ["run", "dev-ecs", "--name", "t-taken", "--yes", "--skip-preview", "--no-doctor"])
    assert result.exit_code == 2, result.output
    assert "error: refused: --name t-taken: a stack of that name already exists" in result.stderr
    assert "trainstack down t-taken" in result.stderr


def test_down_of_a_missing_stack_says_so_exit_4_and_missing_ok_makes_it_0(cli, cloud, monkeypatch):
    monkeypatch.setenv("TRAINSTACK_PULUMI_ROOT", str(FAKE_ROOT))
    result = CliRunner().invoke(app, ["down", "t-nope", "--yes", "--json"])
    assert result.exit_code == 4
    doc = json.loads(result.stdout)
    assert doc["status"] == "not-found" and doc["removed"] is False and doc["exit_code"] == 4
    assert "no such stack" in doc["reason"]
    ok = CliRunner().invoke(app, ["down", "t-nope", "--yes", "--missing-ok"])
    assert ok.exit_code == 0 and "does not exist" in ok.output


def test_run_asks_when_stdin_is_a_terminal_even_if_stdout_is_piped(cli, cloud, tmp_path, monkeypatch):
    """`trainstack run … | tee log` at a terminal: stdout is a pipe, stdin the terminal. It asks."""
    from rich.prompt import Confirm

    from trainstack.run import ui as ui_mod

    asked = []
    monkeypatch.setattr(ui_mod, "stdin_is_terminal", lambda: True)
    monkeypatch.setattr(Confirm, "ask", classmethod(lambda cls, q, **kw: asked.append(q) or False))
    piped = Ui(Console(file=open(os.devnull, "w"), force_terminal=False))
    record = run_mod.run(options("dev-ecs", tmp_path, yes=False), piped, command=command())
    assert asked == ["Create t-dev-ecs and run the job?"] and record.exit_code == 2
    assert "stack init" not in cli.commands()


def test_run_refuses_without_a_terminal_on_stdin_even_if_stdout_is_one(cli, cloud, tmp_path, monkeypatch):
    from trainstack.run import ui as ui_mod

    monkeypatch.setattr(ui_mod, "stdin_is_terminal", lambda: False)
    terminal = Ui(Console(file=open(os.devnull, "w"), force_terminal=True))
    record = run_mod.run(options("dev-ecs", tmp_path, yes=False), terminal, command=command())
    assert record.exit_code == 2 and "stdin is not a terminal" in record.reason and "--yes" in record.reason
    assert "stack init" not in cli.commands()


def test_run_refuses_before_creating_anything_when_the_platform_is_not_deployed(cli, cloud, tmp_path):
    (cli.state / "stacks" / "platform.json").unlink()
    record = run_mod.run(options("dev-ecs", tmp_path), quiet_ui()[0], command=command())
    assert record.exit_code == 2 and record.stages["plan"]["status"] == "refused"
    assert "trainstack:platformStack = organization/trainstack/platform: no such stack" in record.reason
    assert "pulumi up --stack platform" in record.reason
    assert cli.commands() == ["stack output"] and cli.stacks() == []  # looked, created nothing


def test_a_platform_stack_that_was_never_deployed_is_named_as_such(cli, cloud, tmp_path):
    cli.seed("platform", {"outputs": {}})
    record = run_mod.run(options("dev-ecs", tmp_path), quiet_ui()[0], command=command())
    assert record.exit_code == 2 and "has no outputs: it was never deployed" in record.reason
    assert "stack init" not in cli.commands()


def test_a_failed_up_is_recorded_stage_by_stage(cli, cloud, tmp_path):
    cli.scenario(fail_up_after=3)
    record = run_mod.run(options("dev-ecs", tmp_path, skip_preview=False), quiet_ui()[0], command=command())
    doc = json.loads((tmp_path / "runs" / "t-dev-ecs" / "run.json").read_text())
    assert [(k, v["status"]) for k, v in doc["stages"].items()] == [
        ("plan", "ok"),
        ("doctor", "skipped"),
        ("create", "ok"),
        ("preview", "ok"),
        ("up", "failed"),
        ("destroy", "ok"),
    ]
    assert "InsufficientInstanceCapacity" in doc["stages"]["up"]["error"] and doc["exit_code"] == record.exit_code == 1


def test_a_deployed_platform_without_an_output_a_cluster_reads_is_refused_naming_it(
    cli, cloud, tmp_path, platform_outputs
):
    cli.seed("platform", {"outputs": {k: v for k, v in platform_outputs.items() if k != "kmsKeyArn"}})
    record = run_mod.run(options("dev-ecs", tmp_path), quiet_ui()[0], command=command())
    assert record.exit_code == 2 and "`kmsKeyArn` (PlatformOutputs.kms_key_arn)" in record.reason
    assert "trainstack:platformStack = organization/trainstack/platform" in record.reason
    assert "stack init" not in cli.commands()


def test_a_deployed_platform_in_another_region_is_refused_before_anything_is_created(
    cli, cloud, tmp_path, platform_outputs
):
    cli.seed("platform", {"outputs": {**platform_outputs, "region": "eu-west-1"}})
    record = run_mod.run(options("dev-ecs", tmp_path), quiet_ui()[0], command=command())
    assert record.exit_code == 2 and "aws:region = us-east-1: the deployed platform" in record.reason
    assert "Fix: --set aws:region=eu-west-1" in record.reason and "stack init" not in cli.commands()
