"""IdleStop in the planned eks stacks: what the alarm watches, what the rule starts, what the state machine
deletes, and that each role may do only its part (inputs as the mock engine recorded them)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import cluster_config, policy_of, statements
from trainstack.components.idle_stop import IdleStopArgs, NodeGroupToDelete
from trainstack.model import idle_stop as I


@pytest.fixture(scope="module")
def dedicated(example_plans):
    return example_plans["dev-eks"].run


def _asg(group) -> str:
    return group.state["resources"][0]["autoscalingGroups"][0]["name"]


def test_the_alarm_watches_the_gpu_groups_and_the_pending_pods_for_the_configured_minutes(example_plans, dedicated):
    minutes = example_plans["dev-eks"].config.cluster.eks.idle_stop_minutes
    cluster = dedicated.one("aws:eks/cluster:Cluster")
    gpu = [g for g in dedicated.of_type("aws:eks/nodeGroup:NodeGroup") if "system" not in g.name]
    alarm = dedicated.one("aws:cloudwatch/metricAlarm:MetricAlarm", "idle-stop-alarm").inputs
    watched = {
        (q["metric"]["metricName"], *q["metric"]["dimensions"].values())
        for q in alarm["metricQueries"]
        if "metric" in q
    }
    assert watched == {("scheduler_pending_pods", cluster.state["name"])} | {
        ("GroupTotalInstances", _asg(g)) for g in gpu
    }
    assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"] == minutes // 5
    assert alarm["treatMissingData"] == "notBreaching" and alarm["threshold"] == 0
    # Named after the cluster: a cluster recreated after a stop gets a fresh alarm.
    assert alarm["name"] == I.ALARM_PREFIX + cluster.state["name"]
    platform_topic = example_plans["platform"].run.outputs["alertsTopicArn"]
    assert alarm["alarmActions"] == [platform_topic]


def test_the_rule_starts_the_state_machine_on_this_alarm_with_its_own_role_and_the_platforms_queue(
    example_plans, dedicated
):
    alarm = dedicated.one("aws:cloudwatch/metricAlarm:MetricAlarm", "idle-stop-alarm")
    rule = dedicated.one("aws:cloudwatch/eventRule:EventRule")
    assert json.loads(rule.inputs["eventPattern"]) == I.alarm_event_pattern(alarm.state["arn"])
    assert rule.inputs["namePrefix"] == I.RULE_PREFIX  # the queue's policy admits rules named so
    target = dedicated.one("aws:cloudwatch/eventTarget:EventTarget").inputs
    machine = dedicated.one("aws:sfn/stateMachine:StateMachine")
    events_role = dedicated.one("aws:iam/role:Role", "idle-stop-events-role")
    assert target["rule"] == rule.state["name"] and target["arn"] == machine.state["arn"]
    assert target["roleArn"] == events_role.state["arn"]
    assert target["deadLetterConfig"] == {"arn": example_plans["platform"].run.outputs["teardownDeadLetterQueueArn"]}
    assert statements(policy_of(dedicated.one("aws:iam/rolePolicy:RolePolicy", "idle-stop-events-policy"))) == [
        {
            "Sid": "StartTheIdleStop",
            "Effect": "Allow",
            "Action": "states:StartExecution",
            "Resource": machine.state["arn"],
        }
    ]
    trust = json.loads(events_role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_the_state_machine_deletes_every_node_group_then_the_cluster_then_every_expiry_schedule(dedicated):
    cluster = dedicated.one("aws:eks/cluster:Cluster")
    groups = dedicated.of_type("aws:eks/nodeGroup:NodeGroup")
    schedules = dedicated.of_type("aws:scheduler/schedule:Schedule")
    machine = dedicated.one("aws:sfn/stateMachine:StateMachine")
    tasks = I.sdk_tasks(json.loads(machine.inputs["definition"]))
    deleted = {p["NodegroupName"] for _, _, a, p in tasks if a == "deleteNodegroup"}
    assert deleted == {g.state["nodeGroupName"] for g in groups}  # the GPU groups and the system group
    assert [p for _, _, a, p in tasks if a == "deleteCluster"] == [{"Name": cluster.state["name"]}]
    forgotten = {(p["Name"], p["GroupName"]) for _, _, a, p in tasks if a == "deleteSchedule"}
    assert forgotten == {(s.state["name"], s.inputs["groupName"]) for s in schedules}
    # Its role: exactly those ARNs (the IAM engine decides these grants in tests/model/test_idle_stop.py).
    doc = policy_of(dedicated.one("aws:iam/rolePolicy:RolePolicy", "idle-stop-policy"))
    granted = {
        s["Action"]: set(s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]) for s in statements(doc)
    }
    assert granted == {
        "eks:DeleteNodegroup": {g.state["arn"] for g in groups},
        "eks:DeleteCluster": {cluster.state["arn"]},
        "scheduler:DeleteSchedule": {s.state["arn"] for s in schedules},
    }
    role = dedicated.one("aws:iam/role:Role", "idle-stop-role")
    assert machine.inputs["roleArn"] == role.state["arn"]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "states.amazonaws.com"
    }
    # The machine exists only once its role may act.
    assert any("idle-stop-policy" in d for d in machine.dependencies)


def test_an_idle_stop_that_does_not_finish_tells_the_platforms_topic(example_plans, dedicated):
    machine = dedicated.one("aws:sfn/stateMachine:StateMachine")
    alarm = dedicated.one("aws:cloudwatch/metricAlarm:MetricAlarm", "idle-stop-unfinished").inputs
    names = {q["metric"]["metricName"] for q in alarm["metricQueries"] if "metric" in q}
    assert names == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    assert {q["metric"]["dimensions"]["StateMachineArn"] for q in alarm["metricQueries"] if "metric" in q} == {
        machine.state["arn"]
    }
    assert alarm["alarmActions"] == [example_plans["platform"].run.outputs["alertsTopicArn"]]


def test_the_stack_exports_the_idle_stop(example_plans, dedicated):
    outputs = dedicated.outputs
    assert outputs["idleStopMinutes"] == example_plans["dev-eks"].config.cluster.eks.idle_stop_minutes
    assert outputs["idleStopAlarmName"].startswith(I.ALARM_PREFIX)
    assert outputs["idleStopStateMachineArn"] == dedicated.one("aws:sfn/stateMachine:StateMachine").state["arn"]


@pytest.mark.parametrize("minutes, periods", [(0, None), (30, 6)])
def test_idle_stop_minutes_sets_the_window_or_turns_it_off(run_stack, minutes, periods):
    config = cluster_config(
        "eks", gpu={"instanceTypes": ["p3.2xlarge"], "spotPercent": 100}, eks={"idleStopMinutes": minutes}
    )
    run = run_stack(config, stack="dev-eks")
    alarms = [a for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "idle-stop-alarm" in a.name]
    if periods is None:
        assert alarms == [] and run.of_type("aws:sfn/stateMachine:StateMachine") == []
        assert "idleStopMinutes" not in run.outputs
    else:
        assert [a.inputs["evaluationPeriods"] for a in alarms] == [periods]


def test_args_are_validated():
    gpu = NodeGroupToDelete("p3", "ng", "arn:ng", asg_name="asg")
    base = {"cluster_name": "c", "cluster_arn": "arn:c", "schedules": (), "account_id": "123456789012"}
    with pytest.raises(ValueError, match="multiple of 5"):
        IdleStopArgs(minutes=61, node_groups=(gpu,), **base)
    with pytest.raises(ValueError, match="minutes > 0"):
        IdleStopArgs(minutes=0, node_groups=(gpu,), **base)
    with pytest.raises(ValueError, match="no GPU node group"):
        IdleStopArgs(minutes=60, node_groups=(NodeGroupToDelete("system", "s", "arn:s"),), **base)
    with pytest.raises(ValueError, match="unique"):
        IdleStopArgs(minutes=60, node_groups=(gpu, gpu), **base)
