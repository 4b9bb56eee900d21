"""Idle stop, end to end on moto, per backend (the stand-in tier: no AWS account, no Pulumi CLI).

eks (dedicated): what `trainstack plan dev-eks` would create (the cluster, its node groups, its teardown
schedules in the platform's group, the idle alarm, the state machine, with the planned names and the planned
definition) is made in moto; the alarm goes to ALARM; moto's EventBridge pattern matcher says the planned rule
matches the event CloudWatch documents for that change; the state machine runs on moto's States Language
interpreter as the rule's target would start it; then the cluster, its node groups and its expiry schedules
are gone and `trainstack ls` says so. ec2, ecs, sagemaker and eks shared bill nothing while idle, so their
idle stop is honestly nothing: no resource is planned for it and `ls` shows the idle time at $0/h.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import boto3
import pytest
from moto import mock_aws
from moto.events.models import EventPattern

from tests.fakes.sfn_sdk import pascal_case_sdk_tasks
from tests.helpers import ROOT
from trainstack.fleet import inventory as fleet
from trainstack.model import idle_stop

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
ACCOUNT = "123456789012"  # the offline plan's account is moto's default
IDLE_TYPES = ("aws:sfn/stateMachine:StateMachine", "aws:cloudwatch/eventRule:EventRule")


def _metrics(planned: list[dict]) -> list[dict]:
    """The planned `metricQueries` (provider shape) back into `PutMetricAlarm.Metrics`."""
    out = []
    for q in planned:
        item = {"Id": q["id"], "ReturnData": q.get("returnData", False)}
        if "expression" in q:
            item["Expression"] = q["expression"]
        if "label" in q:
            item["Label"] = q["label"]
        if "metric" in q:
            m = q["metric"]
            item["MetricStat"] = {
                "Metric": {
                    "Namespace": m["namespace"],
                    "MetricName": m["metricName"],
                    "Dimensions": [{"Name": k, "Value": v} for k, v in m["dimensions"].items()],
                },
                "Period": int(m["period"]),
                "Stat": m["stat"],
            }
        out.append(item)
    return out


def _alarm_event(alarm: dict, state: str) -> dict:
    """The event CloudWatch sends EventBridge when an alarm changes state (CloudWatch User Guide, "Alarm events
    and EventBridge", the single-metric example's fields)."""
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2026-11-23T12:00:00Z",
        "region": REGION,
        "resources": [alarm["AlarmArn"]],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2026-11-23T12:00:00.000+0000"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-23T11:00:00.000+0000"},
            "configuration": {"description": alarm.get("AlarmDescription", "")},
        },
    }


def _wait(sfn, execution_arn: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        run = sfn.describe_execution(executionArn=execution_arn)
        if run["status"] != "RUNNING" or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def test_an_idle_eks_cluster_is_deleted_in_the_cloud_and_ls_says_so(example_plans, aws_credentials):
    plan = example_plans["dev-eks"]
    run = plan.run
    cluster = run.one("aws:eks/cluster:Cluster")
    node_groups = run.of_type("aws:eks/nodeGroup:NodeGroup")
    schedules = run.of_type("aws:scheduler/schedule:Schedule")
    machine = run.one("aws:sfn/stateMachine:StateMachine")
    alarm_in = run.one("aws:cloudwatch/metricAlarm:MetricAlarm", "idle-stop-alarm").inputs
    rule_in = run.one("aws:cloudwatch/eventRule:EventRule").inputs
    stack_tags = cluster.inputs["tags"]
    name = cluster.state["name"]

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), pascal_case_sdk_tasks() as calls:
        eks = boto3.client("eks", region_name=REGION)
        eks.create_cluster(
            name=name,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/cluster",
            resourcesVpcConfig={"subnetIds": ["subnet-0123"]},
            tags=stack_tags,
        )
        for g in node_groups:
            eks.create_nodegroup(
                clusterName=name,
                nodegroupName=g.state["nodeGroupName"],
                subnets=["subnet-0123"],
                nodeRole=f"arn:aws:iam::{ACCOUNT}:role/node",
                tags=stack_tags,
            )
        scheduler = boto3.client("scheduler", region_name=REGION)
        group = schedules[0].inputs["groupName"]
        scheduler.create_schedule_group(Name=group)
        for s in schedules:
            target = s.inputs["target"]
            scheduler.create_schedule(
                Name=s.state["name"],
                GroupName=group,
                ScheduleExpression=s.inputs["scheduleExpression"],
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={"Arn": target["arn"], "RoleArn": target["roleArn"], "Input": target["input"]},
            )
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        cloudwatch.put_metric_alarm(
            AlarmName=alarm_in["name"],
            Metrics=_metrics(alarm_in["metricQueries"]),
            ComparisonOperator=alarm_in["comparisonOperator"],
            Threshold=alarm_in["threshold"],
            EvaluationPeriods=int(alarm_in["evaluationPeriods"]),
            DatapointsToAlarm=int(alarm_in["datapointsToAlarm"]),
            TreatMissingData=alarm_in["treatMissingData"],
            Tags=[{"Key": k, "Value": v} for k, v in stack_tags.items()],
        )
        sfn = boto3.client("stepfunctions", region_name=REGION)
        created = sfn.create_state_machine(
            name=machine.state["name"],
            definition=machine.inputs["definition"],
            roleArn=machine.inputs["roleArn"],
            tags=[{"key": k, "value": v} for k, v in stack_tags.items()],
        )
        assert created["stateMachineArn"] == machine.state["arn"]  # the planned ARN, which the roles name

        # Idle for the planned minutes: the alarm goes to ALARM and CloudWatch tells EventBridge.
        cloudwatch.set_alarm_state(AlarmName=alarm_in["name"], StateValue="ALARM", StateReason="idle")
        alarm = cloudwatch.describe_alarms(AlarmNames=[alarm_in["name"]])["MetricAlarms"][0]
        # The planned rule, with moto's EventBridge pattern parser and matcher (TestEventPattern is not in moto).
        boto3.client("events", region_name=REGION).put_rule(Name="idle", EventPattern=rule_in["eventPattern"])
        pattern = EventPattern.load(rule_in["eventPattern"])
        assert pattern.matches_event(_alarm_event(alarm, "ALARM"))
        assert not pattern.matches_event(_alarm_event(alarm, "OK"))
        other = {**alarm, "AlarmArn": alarm["AlarmArn"] + "-another"}
        assert not pattern.matches_event(_alarm_event(other, "ALARM"))
        # ... and the rule's target starts the state machine with the event as its input.
        execution = sfn.start_execution(
            stateMachineArn=created["stateMachineArn"], input=json.dumps(_alarm_event(alarm, "ALARM"))
        )
        result = _wait(sfn, execution["executionArn"])
        assert result["status"] == "SUCCEEDED", result.get("cause")

        # What was deleted, in that order: every node group, the control plane, every expiry schedule.
        kinds = [(service, action) for service, action, _ in calls]
        deleted_groups = {r["nodegroupName"] for s, a, r in calls if a == "deleteNodegroup"}
        assert deleted_groups == {g.state["nodeGroupName"] for g in node_groups}
        assert kinds.index(("eks", "deleteCluster")) > max(i for i, k in enumerate(kinds) if k[1] == "deleteNodegroup")
        assert kinds.index(("eks", "deleteCluster")) < min(i for i, k in enumerate(kinds) if k[1] == "deleteSchedule")
        assert eks.list_clusters()["clusters"] == []
        assert scheduler.list_schedules(GroupName=group)["Schedules"] == []

        # `trainstack ls`: the cluster stack is still there (its roles, alarm, state machine), stopped.
        now = dt.datetime.now(dt.timezone.utc)
        clients = fleet.AwsClients(
            boto3.client("resourcegroupstaggingapi", region_name=REGION),
            boto3.client("ec2", region_name=REGION),
            boto3.client("autoscaling", region_name=REGION),
            boto3.client("sagemaker", region_name=REGION),
            cloudwatch,
            sfn,
        )
        listed = {c.stack: c for c in fleet.list_clusters(clients, now, root=ROOT, state=None)}
        stopped = listed["dev-eks"]
        assert stopped.idle_stop is not None
        assert stopped.idle_stop.state == "stopped"
        assert stopped.idle_stop.minutes == plan.config.cluster.eks.idle_stop_minutes
        assert fleet.idle_cell(stopped, now + dt.timedelta(minutes=30)).startswith("stopped 30m ago")
        assert stopped.to_json(now)["idleStop"]["state"] == "stopped"


@pytest.mark.parametrize("stack", ["dev-ec2", "dev-ecs", "dev-sagemaker", "dev-eks-shared"])
def test_backends_that_bill_nothing_while_idle_have_nothing_to_stop(example_plans, stack):
    """Their GPUs sit at zero (or the service released them) between runs: no idle-stop resource is planned,
    and the cost model says idle costs nothing (an eks shared cluster's control plane is the platform's)."""
    result = example_plans[stack]
    for t in IDLE_TYPES:
        assert result.run.of_type(t) == []
    assert result.cost.idle_usd_per_hour == 0.0
    assert "idleStopMinutes" not in json.dumps(result.run.outputs)
    assert idle_stop.STATE_MACHINE_PREFIX not in json.dumps([r.inputs for r in result.run.resources])
