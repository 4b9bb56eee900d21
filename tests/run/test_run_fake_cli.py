"""`trainstack run` / `down` end to end: the real Automation API SDK against the strict fake CLI
(tests/fakes/), jobs in moto. The program's offline evaluation is cached across tests."""

from __future__ import annotations

import json
import os
import re
import signal

import boto3
import pytest

from tests.fakes.run_harness import (
    FAKE_ROOT,
    ROOT,
    TRAIN_LOG,
    command,
    interrupts_said,
    options,
    quiet_ui,
    signal_when,
)
from trainstack.run import run as run_mod
from trainstack.run.follow import split_s3_uri
from trainstack.run.run_config import Overrides

# What the SDK runs for one successful run, in order (flags and values elided; see test_argv_golden).
GOLDEN = [
    "stack output",  # the deployed platform's outputs, checked before anything is created (one CLI call)
    "stack init",
    "config set-all",
    "up",
    "stack output",  # the SDK's UpResult reads the outputs (masked, then plain)
    "stack output",
    "stack history",
    "destroy",
    "stack history",
    "stack rm",
]

pytestmark = pytest.mark.e2e  # the fake-CLI lifecycle tier


def config_sent(cli) -> dict:
    """The config the run's one `pulumi config set-all --json` sent."""
    (argv,) = [a for a in cli.calls() if a[1:3] == ["config", "set-all"]]
    return json.loads(argv[-1])


def run_json(record) -> dict:
    bucket, key = split_s3_uri(record.artifact_uri + "run.json")
    return json.loads(boto3.client("s3", region_name="us-east-1").get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.mark.parametrize("template", ["dev-ecs", "dev-ec2", "dev-sagemaker", "dev-eks"])
def test_a_run_ends_with_the_model_in_s3_and_no_stack(template, cli, cloud, tmp_path):
    ui, out = quiet_ui()
    record = run_mod.run(options(template, tmp_path), ui, command=command())
    text = out.getvalue()
    assert record.exit_code == 0, record.reason
    assert cli.commands() == GOLDEN
    assert cli.stacks() == []  # destroyed and removed
    assert all(line in text for line in TRAIN_LOG)  # the job's log was tailed live
    expected_model = {
        "dev-ecs": "model/",
        "dev-ec2": "model/",
        "dev-sagemaker": "/output/model.tar.gz",
        "dev-eks": "model/",
    }[template]
    assert record.model_uri.startswith("s3://datalake-artifacts-") and record.model_uri.endswith(expected_model)
    assert f"model: {record.model_uri}" in text
    doc = run_json(record)
    assert doc["status"] == "succeeded" and doc["model_uri"] == record.model_uri
    assert list(doc["stages"]) == ["plan", "doctor", "create", "preview", "up", "follow", "destroy"]
    assert doc["stages"]["preview"] == {"status": "skipped", "why": "--skip-preview"}
    assert doc["stages"]["doctor"] == {"status": "skipped", "why": "--no-doctor"}
    ran = {k: s for k, s in doc["stages"].items() if k not in ("preview", "doctor")}
    assert all(s["status"] == "ok" and s["seconds"] >= 0 for s in ran.values())
    assert doc["cost"]["max_run_usd"] > 0 and doc["expires_at"].endswith("Z")
    assert json.loads((tmp_path / "runs" / f"t-{template}" / "run.json").read_text())["exit_code"] == 0


def test_argv_golden_and_a_failed_job_is_reported_then_destroyed(cli, cloud, tmp_path):
    """The exact argv the SDK hands the CLI (the fake rejects anything else): one config call, the
    gRPC event stream, a local program, and a preview unless skipped."""
    cloud.job_outcome = "failed"  # a failed job takes the same path to destroy
    record = run_mod.run(options("dev-ecs", tmp_path, skip_preview=False), quiet_ui()[0], command=command())
    assert record.exit_code == 1 and "exit code 3" in record.reason
    assert record.last_log_lines == TRAIN_LOG
    assert run_json(record)["status"] == "failed"
    calls = [re.sub(r"tcp://127\.0\.0\.1:\d+", "tcp://PORT", " ".join(a)) for a in cli.calls()]
    assert calls[:1] == [
        "--non-interactive stack output --json --show-secrets --stack organization/trainstack/platform",
    ]
    calls = calls[1:]  # the run's own stack from here
    config_call = calls[1]
    assert calls[0] == "--non-interactive stack init t-dev-ecs"
    assert config_call.startswith("--non-interactive config set-all --stack t-dev-ecs --json {")
    pack = f"--policy-pack {ROOT / 'trainstack' / 'policies'}"  # the CrossGuard pack runs in the real preview and up
    assert calls[2] == (
        f"--non-interactive preview {pack} --exec-kind auto.local --event-log tcp://PORT --stack t-dev-ecs"
    )
    assert calls[3] == (
        f"--non-interactive up --yes --skip-preview {pack} --exec-kind auto.local "
        "--event-log tcp://PORT --stack t-dev-ecs"
    )
    assert calls[-2:] == [
        "--non-interactive stack history --json --show-secrets --page-size 1 --page 1 --stack t-dev-ecs",
        "--non-interactive stack rm --yes t-dev-ecs",
    ]
    payload = config_sent(cli)
    assert payload["trainstack:job"]["objectValue"]["command"] == ["python", "train.py", "--epochs", "10"]
    assert "Essential container in task exited" in record.reason and cli.stacks() == []


def test_failed_up_is_destroyed_and_no_job_starts(cli, cloud, tmp_path):
    cli.scenario(fail_up_after=5)
    ui, out = quiet_ui()
    record = run_mod.run(options("dev-ecs", tmp_path), ui, command=command())
    assert record.exit_code == 1 and record.status == "failed"
    assert "pulumi up failed" in record.reason and "InsufficientInstanceCapacity" in record.reason
    assert cloud.provisioned == {}  # never looked for a job
    assert cli.stacks() == [] and "destroy" in cli.commands()


def test_keep_on_failure_keeps_the_stack_and_says_how_to_remove_it(cli, cloud, tmp_path):
    cloud.job_outcome = "failed"
    ui, out = quiet_ui()
    record = run_mod.run(options("dev-sagemaker", tmp_path, keep_on_failure=True), ui, command=command())
    assert record.exit_code == 1 and record.status == "kept"
    assert "AlgorithmError: loss is NaN" in record.reason
    assert cli.stacks() == ["t-dev-sagemaker"] and "destroy" not in cli.commands()
    assert "trainstack down t-dev-sagemaker" in out.getvalue()


@pytest.mark.parametrize("outcome, exit_code, status", [("succeeded", 0, "succeeded"), ("failed", 1, "failed")])
def test_keep_keeps_the_stack_after_the_job_for_exec_whatever_its_outcome(
    outcome, exit_code, status, cli, cloud, tmp_path
):
    cloud.job_outcome = outcome
    ui, out = quiet_ui()
    record = run_mod.run(options("dev-ecs", tmp_path, keep=True), ui, command=command())
    assert record.exit_code == exit_code and record.status == status and record.kept and not record.detached
    assert cli.stacks() == ["t-dev-ecs"] and "destroy" not in cli.commands()
    doc = run_json(record)
    assert doc["kept"] is True and doc["stages"]["destroy"] == {"status": "skipped", "why": "--keep"}
    assert "trainstack exec t-dev-ecs" in out.getvalue() and "trainstack down t-dev-ecs" in out.getvalue()


def test_a_job_that_never_starts_times_out_with_the_reason_and_what_to_try(cli, cloud, tmp_path):
    cloud.job_outcome = "hang"
    cloud.scaling_activities = [
        {
            "ActivityId": "a1",
            "AutoScalingGroupName": "g",
            "Cause": "scale out",
            "StartTime": "2026-11-22T14:00:00Z",
            "StatusCode": "Failed",
            "Progress": 100,
            "StatusMessage": "We currently do not have sufficient p3.2xlarge capacity in the Availability Zone you "
            "requested (us-east-1a).",
        }
    ]
    record = run_mod.run(options("dev-ecs", tmp_path), quiet_ui()[0], command=command())
    assert record.exit_code == 1
    assert "did not start" in record.reason and "still PROVISIONING" in record.reason
    assert "sufficient p3.2xlarge capacity" in record.reason
    assert "another availability zone" in record.reason and "gpu.spotPercent=0" in record.reason
    assert cloud.stopped == ["ecs"] and cli.stacks() == []


def test_an_eks_job_that_never_schedules_is_suspended_with_the_schedulers_reason(cli, cloud, tmp_path):
    cloud.job_outcome = "hang"
    record = run_mod.run(options("dev-eks", tmp_path), quiet_ui()[0], command=command())
    assert record.exit_code == 1 and "did not start" in record.reason
    assert "Insufficient nvidia.com/gpu" in record.reason and "another availability zone" in record.reason
    assert cloud.stopped == ["eks"] and cloud.kube.kube.job["spec"]["suspend"] is True
    assert cli.stacks() == []


def test_destroy_that_fails_once_is_retried(cli, cloud, tmp_path):
    cli.scenario(fail_destroy="once")
    ui, out = quiet_ui()
    record = run_mod.run(options("dev-ec2", tmp_path), ui, command=command())
    assert record.exit_code == 0, record.reason
    assert cli.commands().count("destroy") == 2 and cli.stacks() == []
    assert "destroy attempt 1/3 failed: deleting" in out.getvalue()


def test_destroy_that_keeps_failing_keeps_the_stack_exit_3(cli, cloud, tmp_path):
    cli.scenario(fail_destroy="always")
    ui, out = quiet_ui()
    record = run_mod.run(options("dev-ecs", tmp_path), ui, command=command())
    assert record.exit_code == 3 and record.status == "cleanup-incomplete"
    assert cli.commands().count("destroy") == 3
    assert cli.stacks() == ["t-dev-ecs"] and cli.stack("t-dev-ecs")["resources"]  # kept, not forgotten
    assert "Retry: trainstack down t-dev-ecs" in out.getvalue()
    assert run_json(record)["status"] == "cleanup-incomplete"


def test_down_cleans_up_a_half_failed_locked_stack(cli, cloud, tmp_path):
    cli.scenario(fail_up_after=6, fail_destroy="always")
    record = run_mod.run(options("dev-ecs", tmp_path, destroy_attempts=1), quiet_ui()[0], command=command())
    assert record.exit_code == 3 and len(cli.stack("t-dev-ecs")["resources"]) == 6
    cli.scenario()
    cli.lock("t-dev-ecs")  # a driver died mid-update: the lock's holder (this host, its pid) has exited
    ui, out = quiet_ui()
    result = run_mod.down("t-dev-ecs", ui, pulumi_root=str(FAKE_ROOT), backoff=0)
    assert (result.exit_code, result.status, result.removed) == (0, "removed", True)
    assert cli.stacks() == [] and not cli.locked("t-dev-ecs")
    assert "cancel" in cli.commands() and "which has exited: cancelling its lock" in out.getvalue()
    again = run_mod.down("t-dev-ecs", quiet_ui()[0], pulumi_root=str(FAKE_ROOT))
    # Gone already: said so, and not "removed" (exit 4; `down --missing-ok` makes it 0 for cleanup steps).
    assert (again.exit_code, again.status, again.removed) == (4, "not-found", False)
    assert "no such stack" in again.reason and "trainstack ls" in again.reason


def test_down_stops_the_job_of_a_kept_stack(cli, cloud, tmp_path):
    cloud.job_outcome = "failed"
    run_mod.run(options("dev-ec2", tmp_path, keep_on_failure=True), quiet_ui()[0], command=command())
    result = run_mod.down("t-dev-ec2", quiet_ui()[0], pulumi_root=str(FAKE_ROOT), backoff=0)
    assert result.exit_code == 0 and result.job_stopped
    group = boto3.client("autoscaling", region_name="us-east-1").describe_auto_scaling_groups(
        AutoScalingGroupNames=[cloud.provisioned["groupName"]]
    )["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 0 and cli.stacks() == []


def test_sigint_during_up_cancels_then_destroys(cli, cloud, tmp_path):
    # The fourth step lasts until the driver has handled the Ctrl-C (and so sent it on); the rest take 0.05 s
    # each, time for the CLI to see it before the update ends, however loaded the machine.
    cli.scenario(step_seconds=0.05, hold_up_after=3)
    cmd = command()
    sessions = []

    def mid_up() -> bool:
        if cli.stacks() and len(cli.stack("t-dev-ecs").get("resources", [])) >= 3:
            proc = cmd.process
            sessions.append(os.getsid(proc.pid) if proc else None)
            return True
        return False

    ui, out = quiet_ui()
    signal_when(mid_up, handled=interrupts_said(out), then=cli.release)
    record = run_mod.run(options("dev-ecs", tmp_path), ui, command=cmd)
    assert record.exit_code == 130 and record.status == "interrupted"
    # The CLI leads its own session: a terminal's Ctrl-C (sent to the foreground group) reaches only the driver.
    assert sessions and sessions[0] not in (None, os.getsid(0))
    assert cloud.provisioned == {}  # no job was started
    assert cli.stacks() == [] and not cli.locked("t-dev-ecs")
    assert "interrupt: stopping" in out.getvalue()


def test_sigterm_during_the_job_stops_it_then_destroys(cli, cloud, tmp_path):
    cloud.job_outcome = "long"
    signal_when(lambda: bool(cloud.provisioned), sig=signal.SIGTERM)
    record = run_mod.run(options("dev-ecs", tmp_path, poll_seconds=0.05), quiet_ui()[0], command=command())
    assert record.exit_code == 130
    assert cloud.stopped == ["ecs"]
    ecs = boto3.client("ecs", region_name="us-east-1")
    tasks = ecs.list_tasks(cluster=cloud.provisioned["clusterName"], desiredStatus="STOPPED")["taskArns"]
    assert len(tasks) == 1 and cli.stacks() == []


@pytest.mark.filterwarnings("ignore:Error in event stream")  # the SDK's event server sees the CLI die mid-stream
def test_double_sigint_abandons_the_update_then_clears_pending_and_destroys(cli, cloud, tmp_path):
    cli.scenario(hold_up_after=2)  # the third step lasts until released: both signals land in it
    ui, out = quiet_ui()
    mid_up = lambda: cli.stacks() and len(cli.stack("t-dev-ecs").get("resources", [])) >= 2  # noqa: E731
    signal_when(mid_up, signals=2, gap=0.05, handled=interrupts_said(out))
    record = run_mod.run(options("dev-ecs", tmp_path), ui, command=command())
    assert record.exit_code == 130
    cmds = [c for c in cli.commands() if not c.startswith("stack ")]
    # The CLI died leaving its lock and a pending create: the refresh finds the lock, whose holder (the dead
    # CLI) has exited, so it is cancelled; then refresh --clear-pending-creates, destroy.
    assert cmds[cmds.index("up") + 1 :] == ["refresh", "cancel", "refresh", "destroy"]
    assert any("--clear-pending-creates" in c for c in cli.calls())
    assert cli.stacks() == []


@pytest.mark.filterwarnings("ignore:Error in event stream")
def test_third_interrupt_exits_and_prints_the_cleanup_command(cli, cloud, tmp_path):
    cli.scenario(hold_up_after=1)  # the second step lasts until released: the three signals land in it
    ui, out = quiet_ui()
    mid_up = lambda: cli.stacks() and len(cli.stack("t-dev-ecs").get("resources", [])) >= 1  # noqa: E731
    signal_when(mid_up, signals=3, gap=0.05, handled=interrupts_said(out))
    cmd = command()
    record = run_mod.run(options("dev-ecs", tmp_path), ui, command=cmd)
    assert record.exit_code == 130 and record.status == "abandoned"
    assert "trainstack down t-dev-ecs" in out.getvalue()
    assert json.loads((tmp_path / "runs" / "t-dev-ecs" / "run.json").read_text())["status"] == "abandoned"
    # The abandoned CLI is in its own session, still running: end it (the test started it).
    if cmd.last_process is not None and cmd.last_process.poll() is None:
        cmd.last_process.kill()
        cmd.last_process.wait(10)


def test_no_cli_is_one_clear_message_and_nothing_runs(cli, cloud, tmp_path):
    ui, out = quiet_ui()
    record = run_mod.run(options("dev-ecs", tmp_path, pulumi_root=str(tmp_path / "nowhere")), ui)
    assert record.exit_code == 2 and record.stages["plan"]["status"] == "refused"
    assert "Pulumi CLI is not installed" in record.reason and "3.272.0" in record.reason
    assert "Traceback" not in out.getvalue() and cli.calls() == []


def test_an_older_cli_is_refused(cli, cloud, tmp_path):
    old = tmp_path / "old" / "bin"
    old.mkdir(parents=True)
    (old / "pulumi").write_text("#!/bin/sh\necho v3.100.0\n")
    (old / "pulumi").chmod(0o755)
    record = run_mod.run(options("dev-ecs", tmp_path, pulumi_root=str(old.parent)), quiet_ui()[0])
    assert record.exit_code == 2 and "3.272.0" in record.reason and "3.100.0" in record.reason


def test_bad_overrides_are_refused_before_anything_is_created(cli, cloud, tmp_path):
    opts = options("dev-ecs", tmp_path, overrides=Overrides(name="t-bad", sets=("job.nodes=0",)))
    record = run_mod.run(opts, quiet_ui()[0], command=command())
    assert record.exit_code == 2 and "trainstack:job.nodes" in record.reason
    assert cli.commands() == []


def test_the_doctor_refuses_a_not_ready_account_before_anything_is_created(cli, cloud, tmp_path):
    # moto models no Service Quotas and the fake CLI has no `whoami`: the doctor finds problems, the run stops.
    opts = options("dev-ecs", tmp_path, doctor=True)
    record = run_mod.run(opts, quiet_ui()[0], command=command())
    assert record.exit_code == 2 and record.status == "refused"
    assert record.reason.startswith("trainstack doctor: t-dev-ecs is not ready")
    assert "Pulumi backend login" in record.reason and "fix: " in record.reason and "--no-doctor" in record.reason
    assert "stack init" not in cli.commands()  # nothing was created


def test_a_name_in_use_is_never_reused(cli, cloud, tmp_path):
    cli.seed("t-dev-ecs", {"resources": [{"urn": "u", "type": "t"}]})
    record = run_mod.run(options("dev-ecs", tmp_path), quiet_ui()[0], command=command())
    assert record.exit_code == 2 and "already exists" in record.reason and "never reuses" in record.reason
    assert cli.stack("t-dev-ecs")["resources"] == [{"urn": "u", "type": "t"}]
    assert not (tmp_path / "runs" / "t-dev-ecs").exists()  # the name is not this run's: no record under it


def test_cli_run_json_and_github_outputs(cli, cloud, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from trainstack.cli.main import app

    gh_out, gh_summary = tmp_path / "gh-output", tmp_path / "gh-summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(gh_out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(gh_summary))
    monkeypatch.setenv("TRAINSTACK_PULUMI_ROOT", str(FAKE_ROOT))
    monkeypatch.setenv("TRAINSTACK_RUNS_DIR", str(tmp_path / "runs"))
    result = CliRunner().invoke(
        app,
        [
            "run",
            "dev-ec2",
            "--name",
            "t-dev-ec2",
            "--yes",
            "--skip-preview",
            "--no-doctor",
            "--json",
            "--command",
            "python train.py --epochs 3",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout[result.stdout.index("{\n") :])
    assert doc["status"] == "succeeded" and doc["model_uri"].endswith("/artifacts/bob/t-dev-ec2/model/")
    outputs = dict(line.split("=", 1) for line in gh_out.read_text().splitlines())
    assert outputs["model-uri"] == doc["model_uri"] and outputs["exit-code"] == "0"
    assert "| status | succeeded |" in gh_summary.read_text()
    sent = config_sent(cli)
    assert sent["trainstack:job"]["objectValue"]["command"] == ["python", "train.py", "--epochs", "3"]


def test_cli_without_pulumi_exits_2_without_a_traceback(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "trainstack"
    env = {**os.environ, "PATH": str(tmp_path)}  # no pulumi anywhere
    env.pop("TRAINSTACK_PULUMI_ROOT", None)
    proc = subprocess.run([str(exe), "run", "dev-ecs", "--yes"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert "error: refused: the Pulumi CLI is not installed" in proc.stderr and ".pulumi-version" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_down_refuses_a_platform_stack(cli, cloud, platform_outputs):
    ui, out = quiet_ui()
    result = run_mod.down("platform", ui, pulumi_root=str(FAKE_ROOT), backoff=0)
    assert (result.exit_code, result.status) == (2, "refused") and "not a trainstack cluster stack" in result.reason
    assert cli.stack("platform")["outputs"] == platform_outputs and "destroy" not in cli.commands()


def test_outputs_are_read_in_one_cli_command_with_the_values_the_sdk_reads_in_two(cli, platform_outputs):
    """driver.output_values against the SDK's own LocalWorkspace.stack_outputs on the same stack: the same values,
    one `stack output` instead of two, and the SDK's error class for a stack that does not exist. The real-CLI tier
    (test_run_real_cli.py) compares them on a stack with a secret output."""
    from pulumi.automation import StackNotFoundError

    from trainstack.run.driver import StackDriver, output_values

    ws = StackDriver(command(), root=ROOT).workspace()
    before = len(cli.calls())
    values = output_values(ws, "organization/trainstack/platform")
    assert cli.commands()[before:] == ["stack output"]
    assert values == platform_outputs == {k: v.value for k, v in ws.stack_outputs("platform").items()}
    with pytest.raises(StackNotFoundError):
        output_values(ws, "nope")
    # `trainstack upload --platform` reads the zone's bucket the same way.
    from trainstack.fleet.upload import bucket_from_platform

    before = len(cli.calls())
    bucket = bucket_from_platform("organization/trainstack/platform", "raw", ROOT, str(FAKE_ROOT))
    assert bucket == platform_outputs["buckets"]["raw"]["name"] and cli.commands()[before:] == ["stack output"]


def test_tracked_command_runs_what_the_sdk_command_runs(cli):
    from pulumi.automation import PulumiCommand, StackNotFoundError

    env = {"PULUMI_SKIP_UPDATE_CHECK": "true"}
    sdk, tracked = PulumiCommand(root=str(FAKE_ROOT)), command()
    results = [c.run(["stack", "ls", "--json"], str(ROOT), env) for c in (sdk, tracked)]
    assert results[0].stdout == results[1].stdout and results[0].code == results[1].code == 0
    assert cli.calls()[-2:] == [["--non-interactive", "stack", "ls", "--json"]] * 2
    for c in (sdk, tracked):  # the same error classes, from the same stderr
        with pytest.raises(StackNotFoundError):
            c.run(["stack", "select", "--stack", "nope"], str(ROOT), env)


def test_a_backend_that_refuses_the_stack_is_exit_2(cli, cloud, tmp_path):
    cli.scenario(init_error="PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions")
    record = run_mod.run(options("dev-ecs", tmp_path), quiet_ui()[0], command=command())
    assert record.exit_code == 2 and "PULUMI_ACCESS_TOKEN must be set" in record.reason
    assert cli.commands() == ["stack output", "stack init"]


def test_a_program_error_in_preview_is_refused_and_the_empty_stack_removed(cli, cloud, tmp_path):
    cli.scenario(program_error="trainstack:gpu.amiId = ami-1: no such image in us-east-1")
    record = run_mod.run(options("dev-ecs", tmp_path, skip_preview=False), quiet_ui()[0], command=command())
    assert record.exit_code == 2 and "preview failed: trainstack:gpu.amiId = ami-1" in record.reason
    # A stack existed for a moment: the reason says it is gone again, not "nothing was created".
    assert "the empty stack t-dev-ecs was removed" in record.reason
    assert record.stages["preview"]["status"] == "refused" and record.stages["destroy"]["status"] == "ok"
    assert cli.stacks() == [] and "up" not in cli.commands()


def test_a_no_at_the_prompt_creates_nothing(cli, cloud, tmp_path):
    ui, out = quiet_ui()
    asked = []
    ui._confirm = lambda q: asked.append(q) or False
    record = run_mod.run(options("dev-ecs", tmp_path, yes=False), ui, command=command())
    assert asked == ["Create t-dev-ecs and run the job?"]
    assert record.exit_code == 2 and "not confirmed" in record.reason
    assert cli.commands() == ["stack output"]  # only the platform was read
    assert "worst case for this run $" in out.getvalue()  # the cost was shown before the question


def test_the_platform_template_is_refused(cli, cloud, tmp_path):
    record = run_mod.run(options("platform", tmp_path), quiet_ui()[0], command=command())
    assert record.exit_code == 2 and "`trainstack run` makes clusters" in record.reason and cli.commands() == []


def test_a_mandatory_policy_violation_is_refused_before_anything_is_created(cli, cloud, tmp_path, monkeypatch):
    # The example stacks pass the pack: inject a mandatory violation into the plan's policy report.
    from trainstack.plan import planner as plan_mod
    from trainstack.policies.offline import Violation

    real = plan_mod.plan

    def plan_with_violation(*a, **kw):
        result = real(*a, **kw)
        result.policy.violations.append(
            Violation(
                "imdsv2-required",
                "mandatory",
                "training-gpu-lt",
                "aws:ec2/launchTemplate:LaunchTemplate",
                "urn",
                "IMDSv1 enabled",
            )
        )
        return result

    monkeypatch.setattr(plan_mod, "plan", plan_with_violation)
    record = run_mod.run(options("dev-ecs", tmp_path, name="t-policy"), quiet_ui()[0], command=command())
    assert record.exit_code == 2 and "imdsv2-required on training-gpu-lt" in record.reason
    assert cli.commands() == []


def test_workdir_ships_the_code_and_records_its_commit(cli, cloud, tmp_path):
    workdir = ROOT / "examples" / "cifar10"
    opts = options("dev-ecs", tmp_path, overrides=Overrides(name="t-code", workdir=str(workdir)))
    record = run_mod.run(opts, quiet_ui()[0], command=command())
    assert record.exit_code == 0, record.reason
    sent = config_sent(cli)["trainstack:job"]["objectValue"]
    assert sent["workdir"] == str(workdir) and record.workdir == str(workdir)
    assert cloud.provisioned["codeUri"].startswith(record.artifact_uri + "code/")
    assert record.git_commit is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", record.git_commit)


def test_reap_cleans_up_with_down(cli, cloud, tmp_path, monkeypatch):
    from trainstack.fleet import inventory as fleet

    cli.scenario(fail_up_after=4, fail_destroy="always")
    run_mod.run(options("dev-ecs", tmp_path, destroy_attempts=1), quiet_ui()[0], command=command())
    cli.scenario()
    monkeypatch.setenv("PATH", f"{FAKE_ROOT / 'bin'}{os.pathsep}{os.environ['PATH']}")  # `pulumi` = the fake
    assert fleet.destroy_with_automation_api(ROOT)("t-dev-ecs") == (True, "destroyed and removed")
    assert cli.stacks() == []


def test_a_backend_without_a_follower_is_refused_up_front(cli, cloud, tmp_path, monkeypatch):
    import dataclasses

    from trainstack import backends

    assert set(backends.names()) == set(run_mod.followed())  # every backend is followed today (eks included)
    # a backend that declares no follower (deploy with `pulumi up` only) is refused up front
    monkeypatch.setitem(backends._load(), "eks", dataclasses.replace(backends.get("eks"), follower=None))
    record = run_mod.run(options("dev-eks", tmp_path), quiet_ui()[0], command=command())
    assert record.exit_code == 2 and "trainstack:backend = eks" in record.reason and cli.commands() == []
