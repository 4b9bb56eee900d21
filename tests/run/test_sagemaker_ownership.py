"""Issue 16: a SageMaker job never runs without an owner. With `aws.sagemaker.TrainingJob`, every way the
provider's wait could end early (a failed job, the create timeout, Ctrl-C or a CI cancel, expired credentials,
any stop: `Stopping` is neither its pending nor its target state) dropped the job from the state while it ran
on. Now the stack holds the role, the schedule and the request; the run creates, follows and stops the job by
its name, and every destroy first releases it (stopped and seen Stopped: the job keeps its role while it
uploads). One test per failure mode, each showing the job stopped, or still owned by a stack that exists.

The real Automation API drives the strict fake CLI; SageMaker is moto with the API's job lifecycle
(tests/fakes/sagemaker.py: InProgress after CreateTrainingJob, Stopping -> Stopped after StopTrainingJob).
"""

from __future__ import annotations

import signal
import threading
import time

import boto3
import pytest

from tests.fakes.api_calls import model_problems, recorded_calls
from tests.fakes.run_harness import FAKE_ROOT, command, options, quiet_ui, signal_when
from trainstack.run import run as run_mod
from trainstack.run import stages as stages_mod

pytestmark = pytest.mark.e2e

STACK = "t-dev-sagemaker"


@pytest.fixture(autouse=True)
def calls_fit_the_service_models():
    """Every AWS call of each test (CreateTrainingJob, Describe, Stop, ListTrainingJobs, ListTags, S3, ...) fits
    botocore's service model, enums and maximums included (tests/fakes/api_calls.py)."""
    with recorded_calls() as calls:
        yield calls
    assert any(c[1] == "CreateTrainingJob" for c in calls) and model_problems(calls) == []


@pytest.fixture
def destroys(cloud, monkeypatch):
    """The statuses of the stack's jobs at the moment each destroy began (the role still existed then)."""
    seen: list[dict[str, str]] = []
    real = stages_mod.destroy_stack

    def destroy_stack(stack, **kw):
        seen.append({name: job.training_job_status for name, job in cloud.sagemaker.jobs.items()})
        return real(stack, **kw)

    monkeypatch.setattr(stages_mod, "destroy_stack", destroy_stack)  # the run's destroy stage
    monkeypatch.setattr(run_mod, "destroy_stack", destroy_stack)  # down (and reap, through down)
    return seen


def job_of(cloud) -> str:
    (name,) = cloud.sagemaker.actions("CreateTrainingJob")
    return name


def run(tmp_path, **kw):
    ui, out = quiet_ui()
    record = run_mod.run(options("dev-sagemaker", tmp_path, **kw), ui, command=command())
    return record, out.getvalue()


def test_the_stack_is_up_in_seconds_and_the_run_creates_the_job_by_its_name(cli, cloud, destroys, tmp_path):
    record, _ = run(tmp_path)
    assert record.exit_code == 0, record.reason
    name = job_of(cloud)
    assert record.job_handle == name and name.startswith("carol-t-dev-sagemaker-")
    assert cloud.sagemaker.calls.index(("CreateTrainingJob", name)) == 0  # after `up`, by the driver
    assert destroys == [{name: "Completed"}] and cli.stacks() == []


def test_a_failed_job_leaves_nothing_running(cli, cloud, destroys, tmp_path):
    cloud.job_outcome = "failed"
    record, _ = run(tmp_path)
    assert record.exit_code == 1 and "AlgorithmError: loss is NaN" in record.reason
    assert destroys == [{job_of(cloud): "Failed"}] and cli.stacks() == []
    assert cloud.sagemaker.actions("StopTrainingJob") == []  # nothing to stop


def test_a_job_that_never_starts_is_stopped_and_seen_stopped_before_the_destroy(cli, cloud, destroys, tmp_path):
    """Was: the create timeout failed `up` with the job still InProgress and not in the state."""
    cloud.job_outcome = "hang"
    record, _ = run(tmp_path)
    assert record.exit_code == 1 and "did not start within" in record.reason
    name = job_of(cloud)
    assert cloud.sagemaker.actions("StopTrainingJob") == [name]
    assert destroys == [{name: "Stopped"}] and cli.stacks() == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "ci-cancel"])
def test_an_interrupt_stops_the_job_before_the_destroy_removes_its_role(sig, cli, cloud, destroys, tmp_path):
    cloud.job_outcome = "long"
    signal_when(lambda: bool(cloud.sagemaker.actions("CreateTrainingJob")), sig=sig)
    record, _ = run(tmp_path, poll_seconds=0.05)
    assert record.exit_code == 130
    name = job_of(cloud)
    assert destroys == [{name: "Stopped"}] and cli.stacks() == []


def test_a_job_stopped_by_someone_else_is_followed_until_stopped_then_destroyed(cli, cloud, destroys, tmp_path):
    """Was: `Stopping` is neither the provider wait's pending nor its target state: `up` failed, the job left
    the state. Now Stopping is a running job; Stopped ends it."""
    cloud.job_outcome = "long"
    seen = []

    def stop_from_outside():
        deadline = time.monotonic() + 30
        while not cloud.sagemaker.actions("CreateTrainingJob") and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        name = job_of(cloud)
        boto3.client("sagemaker", region_name="us-east-1").stop_training_job(TrainingJobName=name)
        seen.append(name)

    threading.Thread(target=stop_from_outside, daemon=True).start()
    record, _ = run(tmp_path, poll_seconds=0.05)
    assert seen and record.exit_code == 1 and record.reason.startswith("Stopped")
    assert destroys == [{seen[0]: "Stopped"}] and cli.stacks() == []


def test_expired_credentials_keep_the_stack_and_its_schedule_until_down_stops_the_job(cli, cloud, destroys, tmp_path):
    """Was: the wait failed, the job left the state, the destroy removed its stop schedule. Now nothing is
    destroyed while the job cannot be shown stopped: the stack, its role and its schedule stay (exit 3), and
    `trainstack down` with fresh credentials stops the job, sees it Stopped, then destroys."""
    cloud.job_outcome = "long"

    def expire():
        deadline = time.monotonic() + 30
        while not cloud.sagemaker.actions("CreateTrainingJob") and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        cloud.sagemaker.fail_with = "ExpiredTokenException"

    threading.Thread(target=expire, daemon=True).start()
    record, out = run(tmp_path, poll_seconds=0.05)
    name = job_of(cloud)
    assert record.exit_code == 3 and record.status == "cleanup-incomplete"
    assert "ExpiredToken" in record.reason and f"trainstack down {STACK}" in out
    assert destroys == [] and cli.stacks() == [STACK]  # kept, with everything that owns the job:
    types = {r["type"] for r in cli.stack(STACK)["resources"]}
    assert {"aws:scheduler/schedule:Schedule", "aws:iam/role:Role"} <= types
    assert cli.stack(STACK)["outputs"]["trainingJobName"] == name  # the schedule's target
    assert cloud.sagemaker.status(name) == "InProgress"

    cloud.sagemaker.fail_with = None  # fresh credentials
    result = run_mod.down(STACK, quiet_ui()[0], pulumi_root=str(FAKE_ROOT), backoff=0)
    assert result.exit_code == 0 and result.removed
    assert destroys == [{name: "Stopped"}] and cli.stacks() == []


def test_a_driver_that_is_gone_leaves_the_job_owned_by_its_stack(cli, cloud, destroys, tmp_path):
    """The driver returns (--detach; a killed driver leaves the same state): the stack and its schedule own the
    job until `down` (or `reap --finished`, or the schedule at expiry) stops it, Stopped before the destroy."""
    cloud.job_outcome = "long"
    record, _ = run(tmp_path, detach=True)
    name = job_of(cloud)
    assert record.exit_code == 0 and record.status == "detached" and record.job_handle == name
    assert cli.stacks() == [STACK] and cloud.sagemaker.status(name) == "InProgress"
    # `up` deployed no job (so it takes seconds, not the job's length): the request is an output
    types = {r["type"] for r in cli.stack(STACK)["resources"]}
    assert "aws:sagemaker/trainingJob:TrainingJob" not in types and "aws:iam/role:Role" in types
    assert cli.stack(STACK)["outputs"]["trainingJobRequest"]["TrainingJobName"] == name
    schedules = cli.stack(STACK)["outputs"]["teardownSchedules"]
    assert "stop-training-job" in schedules
    result = run_mod.down(STACK, quiet_ui()[0], pulumi_root=str(FAKE_ROOT), backoff=0)
    assert result.exit_code == 0 and result.job_stopped
    assert destroys == [{name: "Stopped"}] and cli.stacks() == []
