"""A fifth backend from its own module (tests/programs/fake_backend.py) and one `backends.register(...)`:
`trainstack plan` evaluates a stack of it (its resources, its teardown, its outputs through the typed
contract, its cost and timing from the declaration) and `trainstack run`'s follower lookup finds its
follower, with no trainstack file touched."""

from __future__ import annotations

import json

import boto3
import pytest
import yaml
from moto import mock_aws
from typer.testing import CliRunner

from tests.helpers import copy_project
from tests.programs import fake_backend as fake
from trainstack import backends

STACK = "dev-spot"
CONFIG = {
    "aws:region": "us-east-1",
    "trainstack:kind": "cluster",
    "trainstack:platformStack": "organization/trainstack/platform",
    "trainstack:owner": "dana",
    "trainstack:backend": fake.NAME,
    "trainstack:ttlHours": 4,
    "trainstack:gpu": {"family": "g5", "instanceTypes": ["g5.xlarge", "g5.2xlarge"], "maxInstances": 1},
    "trainstack:job": {
        "image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311",
        "command": ["python", "train.py"],
        "dataset": "raw/cifar10/v1/",
        "maxRuntimeHours": 2,
    },
}


@pytest.fixture(scope="module")
def registered():
    assert fake.NAME not in backends.names()
    backends.register(fake.BACKEND)  # the one registry entry
    yield fake.BACKEND
    backends.unregister(fake.NAME)
    assert fake.NAME not in backends.names()


@pytest.fixture(scope="module")
def planned(registered, tmp_path_factory) -> dict:
    """`trainstack plan dev-spot --json` on a copy of the project with one more stack file."""
    from trainstack.cli.main import app

    root = copy_project(tmp_path_factory.mktemp("project"))
    (root / "stacks" / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": CONFIG}))
    result = CliRunner().invoke(app, ["plan", STACK, "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_plan_evaluates_the_backends_own_resources(planned):
    assert planned["backend"] == fake.NAME
    assert planned["findings"] == [] and planned["policy"]["ok"] is True  # provider schema and policy pack
    by_type = {r["type"]: r for r in planned["resources"]}
    asg = by_type["aws:autoscaling/group:Group"]
    assert asg["inputs"]["name"] == f"trainstack-dana-{STACK}-spot" and asg["inputs"]["desiredCapacity"] == 1
    assert asg["inputs"]["minSize"] == 0 and asg["parent"] == "spot"  # inside its GpuAutoScalingGroup
    # The declaration's AMI rows picked the AMI, as for a built-in backend.
    assert planned["ami"]["source"] == f"ssm:{fake.DLAMI_BASE_OSS_AL2023}"


def test_the_cluster_program_adds_the_backends_teardown(planned):
    schedules = [r for r in planned["resources"] if r["type"] == "aws:scheduler/schedule:Schedule"]
    assert [s["name"] for s in schedules] == ["teardown-scale-to-zero"]
    request = json.loads(schedules[0]["inputs"]["target"]["input"])
    assert request == {
        "AutoScalingGroupName": f"trainstack-dana-{STACK}-spot",
        "MinSize": 0,
        "MaxSize": 0,
        "DesiredCapacity": 0,
    }
    assert list(planned["outputs"]["teardownSchedules"]) == ["scale-to-zero"]


def test_the_outputs_go_through_the_typed_contract(planned):
    stack, own = backends.read_outputs(planned["outputs"])
    assert isinstance(own, fake.SpotGroupOutputs)
    assert own.group_name == f"trainstack-dana-{STACK}-spot" and own.ami_id.startswith("ami-")
    assert stack.backend == fake.NAME and stack.owner == "dana"
    assert stack.model_uri.endswith(f"/artifacts/dana/{STACK}/model/")
    expected = set(backends.ClusterOutputs.output_names()) - {"codeUri"} | set(fake.SpotGroupOutputs.output_names())
    assert set(planned["outputs"]) == expected


def test_cost_and_timing_come_from_the_declaration(planned):
    assert "Idle: the spot group sits at zero instances." in planned["cost"]["notes"]
    assert planned["cost"]["idle_usd_per_hour"] == 0 and planned["cost"]["busy_usd_per_hour"] > 0
    # Started by the group's creation (the declaration's started_by), then its one phase and the image pull.
    assert [p["name"] for p in planned["timing"]["after_up"]] == ["GPU instance launch and boot", "image pull"]


def test_trainstack_run_finds_and_drives_its_follower(planned, registered, aws_credentials):
    from trainstack.run.follow import RUNNING, SUCCEEDED, JobState, follower_for

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        asg = session.client("autoscaling")
        asg.create_launch_configuration(
            LaunchConfigurationName="lc", ImageId="ami-0abcdef1234567890", InstanceType="g5.xlarge"
        )
        name = planned["outputs"]["groupName"]
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchConfigurationName="lc",
            MinSize=0,
            MaxSize=1,
            DesiredCapacity=1,
            AvailabilityZones=["us-east-1a"],
        )
        follower = follower_for(planned["outputs"], session)
        assert isinstance(follower, fake.SpotGroupFollower)
        assert follower.model_uri() == planned["outputs"]["modelUri"]
        assert follower.poll() == JobState(RUNNING, "1 InService")
        follower.stop()
        assert follower.poll().phase == SUCCEEDED


def test_a_stack_without_a_backend_output_names_it(registered, planned):
    outputs = {k: v for k, v in planned["outputs"].items() if k != "groupName"}
    with pytest.raises(
        backends.OutputsError,
        match=r"no output `groupName` \(SpotGroupOutputs.group_name\), which "
        "the spotgroup backend must export",
    ):
        backends.read_outputs(outputs)


def test_exec_is_offered_where_the_follower_builds_further_jobs(registered):
    """`trainstack exec` asks each backend's follower (its `exec_payload`), not a list of names: the four
    built-in backends offer it, the fifth one, whose follower follows only the stack's own job, does not."""
    from trainstack.run.follow import exec_backends, followed

    assert fake.NAME in followed()
    assert set(exec_backends()) == {"ec2", "ecs", "eks", "sagemaker"}
