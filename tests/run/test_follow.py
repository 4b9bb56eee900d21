"""Job followers: the follow loop's timeouts (pure, scripted follower) and each backend against moto."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.helpers import stack_outputs
from trainstack.backends.ec2 import Ec2Outputs
from trainstack.backends.sagemaker import SageMakerOutputs
from trainstack.run.driver import Interrupts
from trainstack.run.follow import FAILED, PENDING, RUNNING, SUCCEEDED, JobState, follower_for
from trainstack.run.run import RunOptions, Ui, follow

CAPACITY = (
    "We currently do not have sufficient p3.8xlarge capacity in the Availability Zone you requested (us-east-1a)."
)


class Scripted:
    """A follower whose states are a script; the last state repeats."""

    def __init__(self, *states: JobState, submit_error: Exception | None = None):
        self.states = list(states)
        self.stopped = 0
        self.submit_error = submit_error

    def submit(self):
        if self.submit_error:
            raise self.submit_error

    def poll(self):
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def tail(self):
        return []

    def stop(self):
        self.stopped += 1

    def stalled(self):
        return "no node of the group reached InService; Failed: " + CAPACITY

    def model_uri(self):
        return "s3://b/artifacts/a/s/model/"


class Clock:
    def __init__(self, step: float):
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def run_follow(follower, *, start_timeout=60.0, max_hours=1.0, step=10.0, intr=None):
    import io

    from rich.console import Console

    opts = RunOptions(template="t", poll_seconds=0, start_timeout_seconds=start_timeout, grace_seconds=600)
    ui = Ui(Console(file=io.StringIO()))
    return follow(
        follower, intr=intr or Interrupts(None), ui=ui, opts=opts, max_runtime_hours=max_hours, clock=Clock(step)
    )[0]


def test_a_job_that_never_starts_ends_on_the_timeout_with_reason_and_hints():
    f = Scripted(JobState(PENDING, "task PROVISIONING"))
    state = run_follow(f, start_timeout=600)
    assert state.phase == FAILED and f.stopped == 1
    assert "did not start within 10 min" in state.reason and "sufficient p3.8xlarge capacity" in state.reason
    assert "another availability zone" in state.reason and "on-demand" in state.reason


def test_a_job_past_its_limit_plus_grace_is_stopped():
    f = Scripted(JobState(PENDING), JobState(RUNNING, "RUNNING"))
    state = run_follow(f, max_hours=1.0, step=600, start_timeout=1e9)  # 10 min per poll: 1 h + 10 min grace pass
    assert state.phase == FAILED and "ran past job.maxRuntimeHours (1 h)" in state.reason and f.stopped == 1


def test_success_reports_the_model_and_stops_nothing():
    f = Scripted(JobState(PENDING), JobState(RUNNING), JobState(SUCCEEDED, "exit code 0"))
    state = run_follow(f)
    assert state == JobState(SUCCEEDED, "s3://b/artifacts/a/s/model/") and f.stopped == 0


def test_a_refused_submit_is_a_job_failure_not_a_crash():
    state = run_follow(Scripted(JobState(PENDING), submit_error=RuntimeError("ECS refused the task: RESOURCE:GPU")))
    assert state.phase == FAILED and "RESOURCE:GPU" in state.reason


def test_an_interrupt_stops_the_job():
    intr = Interrupts(None)
    intr.count = 1
    f = Scripted(JobState(RUNNING))
    assert run_follow(f, intr=intr) == JobState(FAILED, "interrupted") and f.stopped == 1


# ------------------------------------------------------------------------------------- moto


@pytest.fixture
def aws(aws_credentials):
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


EC2_OUTPUTS = stack_outputs(
    Ec2Outputs(
        group_name="training-gpu-asg",
        group_arn="arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1:autoScalingGroupName/training-gpu-asg",
        node_role_arn="arn:aws:iam::123456789012:role/training-gpu-node-role",
        log_group_name="/ts/g",
        ami_id="ami-0abcdef1234567890",
        launch_template_id="lt-0123456789abcdef0",
        success_marker_uri="s3://art/artifacts/bob/s/_SUCCESS",
    ),
    artifact_uri="s3://art/artifacts/bob/s/",
    model_uri="s3://art/artifacts/bob/s/model/",
)


def test_ec2_follower_reads_the_group_markers_and_every_nodes_log(aws):
    s3, asg, logs = aws.client("s3"), aws.client("autoscaling"), aws.client("logs")
    s3.create_bucket(Bucket="art")
    asg.create_launch_configuration(
        LaunchConfigurationName="lc", ImageId="ami-0abcdef1234567890", InstanceType="p3.8xlarge"
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="training-gpu-asg",
        LaunchConfigurationName="lc",
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        AvailabilityZones=["us-east-1a"],
    )
    logs.create_log_group(logGroupName="/ts/g")
    for rank in (0, 1):
        stream = f"node-{rank}-ip-10-40-0-{rank + 5}"
        logs.create_log_stream(logGroupName="/ts/g", logStreamName=stream)
        logs.put_log_events(
            logGroupName="/ts/g",
            logStreamName=stream,
            logEvents=[{"timestamp": int(time.time() * 1000), "message": f"rank {rank} step 1"}],
        )
    f = follower_for(EC2_OUTPUTS, aws)
    assert f.poll().phase == PENDING
    assert f.tail() == ["[node 0] rank 0 step 1", "[node 1] rank 1 step 1"]
    assert f.tail() == []  # caught up: nothing printed twice
    asg.set_desired_capacity(AutoScalingGroupName="training-gpu-asg", DesiredCapacity=2)
    assert f.poll() == JobState(RUNNING, "2 node(s) InService")
    s3.put_object(Bucket="art", Key="artifacts/bob/s/_FAILED", Body=json.dumps({"exitCodes": [0, 137]}).encode())
    state = f.poll()
    assert state.phase == FAILED and '"exitCodes": [0, 137]' in state.reason
    f.stop()
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["training-gpu-asg"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 0 and group["MinSize"] == 0


def test_ec2_stalled_names_the_failed_scaling_activity(aws):
    f = follower_for(EC2_OUTPUTS, aws)
    with Stubber(f.autoscaling) as stub:
        stub.add_response(
            "describe_scaling_activities",
            {
                "Activities": [
                    {
                        "ActivityId": "1",
                        "AutoScalingGroupName": "training-gpu-asg",
                        "Cause": "c",
                        "StartTime": "2026-11-22",
                        "StatusCode": "Failed",
                        "Progress": 100,
                        "StatusMessage": CAPACITY,
                    },
                    {
                        "ActivityId": "2",
                        "AutoScalingGroupName": "training-gpu-asg",
                        "Cause": "c",
                        "StartTime": "2026-11-22",
                        "StatusCode": "Successful",
                        "Progress": 100,
                    },
                ]
            },
            {"AutoScalingGroupName": "training-gpu-asg", "MaxRecords": 5},
        )
        assert f.stalled() == "no node of the group reached InService; Failed: " + CAPACITY


def sagemaker_outputs(name: str = "bob-dev-sagemaker-0123abcd", spot: bool = True) -> dict:
    request = {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/sm",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://art/artifacts/bob/dev-sagemaker/"},
        "ResourceConfig": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, **({"MaxWaitTimeInSeconds": 7200} if spot else {})},
        "EnableManagedSpotTraining": spot,
        "CheckpointConfig": {"S3Uri": "s3://art/checkpoints/bob/dev-sagemaker/"},
        "Tags": [{"Key": "trainstack:stack", "Value": "dev-sagemaker"}],
    }
    own = SageMakerOutputs(
        training_job_name=name,
        training_job_arn=f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        training_job_request=request,
        role_arn="arn:aws:iam::123456789012:role/sm",
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        subnet_ids=["subnet-1"],
        security_group_id="sg-1",
        buckets={"artifacts": {"name": "art", "arn": "arn:aws:s3:::art"}},
        model_artifact_uri=f"s3://art/artifacts/bob/dev-sagemaker/{name}/output/model.tar.gz",
    )
    return stack_outputs(own)


def test_sagemaker_follower_creates_the_stacks_job_and_maps_its_statuses(aws, monkeypatch):
    from tests.fakes.sagemaker import StandInSageMaker

    sm = StandInSageMaker(monkeypatch)
    f = follower_for(sagemaker_outputs(), aws)
    assert f.poll() == JobState(PENDING, "not created yet") and f.tail() == []
    f.submit()  # CreateTrainingJob from the exported request, by its deterministic name
    assert sm.actions("CreateTrainingJob") == ["bob-dev-sagemaker-0123abcd"]
    assert f.poll() == JobState(PENDING, "Starting")
    sm.move("bob-dev-sagemaker-0123abcd", "InProgress", "Training")
    assert f.poll() == JobState(RUNNING, "Training")
    # Stopped by anyone (its schedule, the console): still running while Stopping, failed once Stopped.
    f.stop()
    assert f.poll() == JobState(RUNNING, "Stopping")  # not gone: it may still save a last checkpoint
    assert f.poll() == JobState(FAILED, "Stopped (Stopped)")
    sm.move("bob-dev-sagemaker-0123abcd", "Failed", "Failed", "CapacityError: no ml.p3")
    assert f.poll() == JobState(FAILED, "Failed (Failed): CapacityError: no ml.p3")
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="ResourceInUse"):  # a name is used once: a second start is refused
        f.submit()


def test_sagemaker_refuses_to_start_a_spot_request_without_checkpoints(aws, monkeypatch):
    from tests.fakes.sagemaker import StandInSageMaker

    sm = StandInSageMaker(monkeypatch)
    outputs = sagemaker_outputs()
    outputs["trainingJobRequest"] = {k: v for k, v in outputs["trainingJobRequest"].items() if k != "CheckpointConfig"}
    with pytest.raises(RuntimeError, match="writes no checkpoints"):
        follower_for(outputs, aws).submit()
    assert sm.calls == []  # refused before any API call


def test_sagemaker_release_stops_every_job_of_the_stack_and_waits_for_stopped(aws, monkeypatch):
    """Before a destroy: the stack's own job and an exec'd one are stopped and seen Stopped; another stack's
    job that shares the name prefix is left alone (its trainstack:stack tag differs)."""
    from tests.fakes.sagemaker import StandInSageMaker
    from trainstack.run.follow import ReleaseError

    sm = StandInSageMaker(monkeypatch)
    own = follower_for(sagemaker_outputs(), aws)
    own.submit()
    client = aws.client("sagemaker")
    exec_job = dict(sagemaker_outputs()["trainingJobRequest"], TrainingJobName="bob-dev-sagemaker-20261123170001-3f2a")
    client.create_training_job(**exec_job)
    other = dict(exec_job, TrainingJobName="bob-dev-sagemaker-x-1", Tags=[{"Key": "trainstack:stack", "Value": "x"}])
    client.create_training_job(**other)
    sleeps = []
    own.sleep = sleeps.append
    stopped = own.release(poll_seconds=1)
    assert sorted(stopped) == ["bob-dev-sagemaker-0123abcd", "bob-dev-sagemaker-20261123170001-3f2a"]
    assert sm.status("bob-dev-sagemaker-0123abcd") == sm.status("bob-dev-sagemaker-20261123170001-3f2a") == "Stopped"
    assert sm.status("bob-dev-sagemaker-x-1") == "InProgress" and sleeps  # it waited for Stopping to end
    assert own.release() == []  # nothing left: idempotent
    sm.fail_with = "ExpiredTokenException"
    with pytest.raises(ReleaseError, match="could not list or stop"):
        own.release()
