"""AutoTeardown: at expiry AWS itself scales the GPUs to zero / stops the job; its role can do nothing else."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from moto import mock_aws

from tests.helpers import ROOT, policy_of, statements
from trainstack.components import auto_teardown as T
from trainstack.plan.provider_schema import api_errors


@pytest.mark.parametrize("stack", ["dev-ecs", "dev-ec2", "dev-sagemaker", "dev-eks", "dev-eks-shared"])
def test_every_cluster_stack_has_a_teardown_schedule_at_its_expiry(example_plans, stack):
    result = example_plans[stack]
    schedules = result.run.of_type("aws:scheduler/schedule:Schedule")
    assert schedules
    expiry = result.config.cluster.expires_at
    first = min(s.inputs["scheduleExpression"] for s in schedules)
    assert first == f"at({expiry:%Y-%m-%dT%H:%M:%S})"
    for s in schedules:
        assert s.inputs["scheduleExpressionTimezone"] == "UTC"
        # A schedule that deletes itself breaks the next `pulumi up` (UpdateSchedule on a missing schedule).
        assert s.inputs["actionAfterCompletion"] == "NONE"
        assert s.inputs["flexibleTimeWindow"] == {"mode": "OFF"} and s.inputs["state"] == "ENABLED"
        assert s.inputs["target"]["retryPolicy"]["maximumRetryAttempts"] > 0


@pytest.mark.parametrize("stack", ["dev-ecs", "dev-ec2"])
def test_group_schedule_calls_update_auto_scaling_group_with_zero(example_plans, stack):
    run = example_plans[stack].run
    group = run.one("aws:autoscaling/group:Group")
    target = run.one("aws:scheduler/schedule:Schedule", "scale-to-zero").inputs["target"]
    assert target["arn"] == "arn:aws:scheduler:::aws-sdk:autoscaling:updateAutoScalingGroup"
    request = json.loads(target["input"])
    assert request == {"AutoScalingGroupName": group.state["name"], "MinSize": 0, "MaxSize": 0, "DesiredCapacity": 0}
    assert api_errors("autoscaling", "UpdateAutoScalingGroup", request) == ""
    assert target["roleArn"] == run.one("aws:iam/role:Role", "teardown").state["arn"]


def test_sagemaker_schedule_stops_this_training_job(example_plans):
    run = example_plans["dev-sagemaker"].run
    name = run.outputs["trainingJobRequest"]["TrainingJobName"]  # the job `trainstack run` creates after `up`
    target = run.one("aws:scheduler/schedule:Schedule").inputs["target"]
    assert target["arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:stopTrainingJob"
    request = json.loads(target["input"])
    assert request == {"TrainingJobName": name}
    assert api_errors("sagemaker", "StopTrainingJob", request) == ""
    doc = policy_of(run.one("aws:iam/rolePolicy:RolePolicy", "teardown"))
    assert statements(doc) == [
        {
            "Sid": "StopThisTrainingJob",
            "Effect": "Allow",
            "Action": "sagemaker:StopTrainingJob",
            "Resource": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name.lower()}",
        },
        # Scheduler sends a call that failed for good to the platform's queue with this role.
        {
            "Sid": "SendFailedCallsToDeadLetterQueue",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": target["deadLetterConfig"]["arn"],
        },
    ]


def test_ecs_backstop_shuts_down_instances_still_held_by_tasks(example_plans):
    run = example_plans["dev-ecs"].run
    group = run.one("aws:autoscaling/group:Group").state["name"]
    schedule = run.one("aws:scheduler/schedule:Schedule", "shut-down").inputs
    assert schedule["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:ssm:sendCommand"
    request = json.loads(schedule["target"]["input"])
    assert request["Targets"] == [{"Key": "tag:aws:autoscaling:groupName", "Values": [group]}]
    assert api_errors("ssm", "SendCommand", request) == ""
    # 15 minutes after the scale-to-zero, so a task can still checkpoint when ECS stops it.
    expiry = example_plans["dev-ecs"].config.cluster.expires_at + dt.timedelta(minutes=15)
    assert schedule["scheduleExpression"] == f"at({expiry:%Y-%m-%dT%H:%M:%S})"


@pytest.mark.parametrize("stack", ["dev-ecs", "dev-ec2"])
def test_teardown_role_may_only_touch_this_group(example_plans, stack):
    run = example_plans[stack].run
    group = run.one("aws:autoscaling/group:Group")
    doc = policy_of(run.one("aws:iam/rolePolicy:RolePolicy", "teardown"))
    update = [s for s in statements(doc) if "autoscaling" in json.dumps(s["Action"])]
    assert update == [
        {
            "Sid": "ScaleThisGroupToZero",
            "Effect": "Allow",
            "Action": "autoscaling:UpdateAutoScalingGroup",
            "Resource": group.state["arn"],
        }
    ]
    for s in statements(doc):
        if s["Action"] == "ssm:SendCommand" and "instance/" in s["Resource"]:
            assert s["Condition"] == {
                "StringEquals": {"ssm:resourceTag/aws:autoscaling:groupName": group.state["name"]}
            }


def test_only_the_scheduler_of_this_account_can_assume_the_role(example_plans):
    role = example_plans["dev-ec2"].run.one("aws:iam/role:Role", "teardown")
    (s,) = statements(json.loads(role.inputs["assumeRolePolicy"]))
    assert s["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert s["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


@pytest.mark.parametrize("stack", ["dev-ecs", "dev-ec2", "dev-sagemaker"])
def test_schedules_wait_for_the_role_policy(example_plans, stack):
    """A schedule that could fire before its permissions exist would fail; each depends on the policy."""
    run = example_plans[stack].run
    policy = run.one("aws:iam/rolePolicy:RolePolicy", "teardown")
    for schedule in run.of_type("aws:scheduler/schedule:Schedule"):
        assert policy.urn in schedule.dependencies


def test_at_expression_is_utc():
    when = dt.datetime(2026, 11, 22, 20, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert T.at_expression(when) == "at(2026-11-22T18:05:00)"


def test_args_are_validated():
    with pytest.raises(ValueError, match="timezone"):
        T.AutoTeardownArgs(
            expires_at=dt.datetime(2026, 1, 1), actions=(T.TeardownAction("a", "s", "x", "{}", "{}"),), account_id="1"
        )
    with pytest.raises(ValueError, match="at least one"):
        T.AutoTeardownArgs(expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), actions=(), account_id="1")


def test_the_api_validator_catches_a_wrong_request():
    assert "MinSize" in api_errors(
        "autoscaling", "UpdateAutoScalingGroup", {"AutoScalingGroupName": "g", "MinSize": "zero"}
    )


# ----------------------------------------------------------------------------- re-deploy after expiry


def engine_update(program_inputs: dict, prior: dict, ignore_changes: list[str]) -> dict:
    """What `pulumi up` sends for a resource: the inputs that differ from the prior state, ignored ones aside."""
    return {k: v for k, v in program_inputs.items() if k not in ignore_changes and prior.get(k) != v}


@pytest.mark.parametrize("stack", ["dev-ecs", "dev-ec2"])
def test_a_stack_redeployed_after_its_teardown_fired_gets_its_group_back(example_plans, stack, aws_credentials):
    import boto3

    run = example_plans[stack].run
    asg = run.one("aws:autoscaling/group:Group")
    name, deployed = asg.state["name"], {k: asg.inputs[k] for k in ("minSize", "maxSize", "desiredCapacity")}
    teardown = json.loads(run.one("aws:scheduler/schedule:Schedule", "scale-to-zero").inputs["target"]["input"])
    refresh = (yaml.safe_load((ROOT / "Pulumi.yaml").read_text()).get("options") or {}).get("refresh")
    with mock_aws():
        ec2, autoscaling = boto3.client("ec2", "us-east-1"), boto3.client("autoscaling", "us-east-1")
        ec2.create_launch_template(LaunchTemplateName="gpu-lt", LaunchTemplateData={"ImageId": "ami-12c6146b"})
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": "gpu-lt"},
            AvailabilityZones=["us-east-1a"],
            MinSize=int(deployed["minSize"]),
            MaxSize=int(deployed["maxSize"]),
            DesiredCapacity=0,
        )
        # The schedule fires: exactly the request it carries.
        autoscaling.update_auto_scaling_group(**teardown)

        def live() -> dict:
            g = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
            return {"minSize": g["MinSize"], "maxSize": g["MaxSize"], "desiredCapacity": g["DesiredCapacity"]}

        assert live()["maxSize"] == 0
        # The next `pulumi up`: with `refresh: always` the engine diffs against what AWS has now, otherwise
        # against the state of the last deploy (in which MaxSize is still the configured value).
        prior = live() if refresh == "always" else deployed
        change = engine_update(deployed, prior, asg.ignore_changes)
        if change:
            autoscaling.update_auto_scaling_group(
                AutoScalingGroupName=name, **{k[0].upper() + k[1:]: int(v) for k, v in change.items()}
            )
        assert live()["maxSize"] == int(deployed["maxSize"]) > 0
