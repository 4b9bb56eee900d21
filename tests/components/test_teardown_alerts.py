"""TeardownAlerts (platform) and the clusters' use of it: a teardown call that fails for good lands in the
platform's dead-letter queue, and one alarm per platform tells the alerts topic."""

from __future__ import annotations

import json

import pytest

from tests.helpers import cluster_config, policy_of, statements
from trainstack.components.teardown_alerts import TeardownAlertsArgs
from trainstack.model import iam_documents as docs
from trainstack.model import idle_stop
from trainstack.model.teardown_alerts import RETENTION_SECONDS

CLUSTERS = ["dev-ec2", "dev-ecs", "dev-eks", "dev-eks-shared", "dev-sagemaker"]


@pytest.fixture(scope="module")
def platform(example_plans):
    return example_plans["platform"].run


def test_the_platform_keeps_an_encrypted_tls_only_queue_for_two_weeks(platform):
    queue = platform.one("aws:sqs/queue:Queue")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert queue.inputs["messageRetentionSeconds"] == RETENTION_SECONDS == 1209600  # SQS's maximum
    policy = platform.one("aws:sqs/queuePolicy:QueuePolicy")
    assert policy.inputs["queueUrl"] == queue.state["url"]
    assert json.loads(policy.inputs["policy"]) == docs.dead_letter_queue_policy(
        queue.state["arn"], region="us-east-1", account_id="123456789012", rule_prefix=idle_stop.RULE_PREFIX
    )
    assert not queue.protect  # no user data: the platform need not protect it (only clusters may not hold one)


def test_one_alarm_watches_the_groups_scheduler_failures_and_the_queue_and_tells_the_topic(platform):
    group = platform.one("aws:scheduler/scheduleGroup:ScheduleGroup")
    queue = platform.one("aws:sqs/queue:Queue")
    topic = platform.one("aws:sns/topic:Topic")
    (alarm,) = platform.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    watched = {
        (q["metric"]["namespace"], q["metric"]["metricName"], *q["metric"]["dimensions"].items())
        for q in alarm.inputs["metricQueries"]
        if "metric" in q
    }
    by_group = ("ScheduleGroup", group.state["name"])
    assert watched == {
        ("AWS/Scheduler", "TargetErrorCount", by_group),
        ("AWS/Scheduler", "InvocationDroppedCount", by_group),
        ("AWS/Scheduler", "InvocationsFailedToBeSentToDeadLetterCount", by_group),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", ("QueueName", queue.state["name"])),
    }
    assert alarm.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm.inputs["threshold"] == 1
    assert alarm.inputs["alarmActions"] == [topic.state["arn"]]
    assert alarm.inputs["treatMissingData"] == "notBreaching"


def test_the_platform_exports_what_clusters_and_people_need(platform):
    outputs = platform.outputs
    assert outputs["teardownScheduleGroup"] == platform.one("aws:scheduler/scheduleGroup:ScheduleGroup").state["name"]
    assert outputs["teardownDeadLetterQueueArn"] == platform.one("aws:sqs/queue:Queue").state["arn"]
    assert outputs["teardownDeadLetterQueueUrl"].startswith("https://sqs.us-east-1.amazonaws.com/")
    assert outputs["alertsTopicArn"] == platform.one("aws:sns/topic:Topic").state["arn"]


@pytest.mark.parametrize("stack", CLUSTERS)
def test_every_cluster_schedule_runs_in_the_platforms_group_and_fails_into_its_queue(example_plans, platform, stack):
    run = example_plans[stack].run
    group = platform.outputs["teardownScheduleGroup"]
    queue = platform.outputs["teardownDeadLetterQueueArn"]
    schedules = run.of_type("aws:scheduler/schedule:Schedule")
    assert schedules
    for s in schedules:
        assert s.inputs["groupName"] == group
        assert s.inputs["target"]["deadLetterConfig"] == {"arn": queue}
    grant = docs.send_to_dead_letter_queue(queue)["Statement"][0]
    assert grant in statements(policy_of(run.one("aws:iam/rolePolicy:RolePolicy", "teardown-policy")))


def test_a_cluster_on_a_platform_without_alerts_keeps_the_default_group_and_no_queue(platform_outputs):
    """A platform deployed before TeardownAlerts exports none of it: its clusters still deploy, as before."""
    from trainstack.plan.offline import run_offline
    from trainstack.programs.program import main

    old = {k: v for k, v in platform_outputs.items() if not k.startswith(("teardown", "alerts"))}
    config = cluster_config("eks", gpu={"instanceTypes": ["p3.2xlarge"], "spotPercent": 100})
    run = run_offline(main, config=config, stack="dev-eks", stack_outputs={"organization/trainstack/platform": old})
    for s in run.of_type("aws:scheduler/schedule:Schedule"):
        assert s.inputs.get("groupName") is None and s.inputs["target"].get("deadLetterConfig") is None
    assert "sqs:SendMessage" not in json.dumps(policy_of(run.one("aws:iam/rolePolicy:RolePolicy", "teardown-policy")))
    target = run.one("aws:cloudwatch/eventTarget:EventTarget").inputs
    assert target.get("deadLetterConfig") is None
    # The idle stop forgets the schedules in the default group.
    machine = json.loads(run.one("aws:sfn/stateMachine:StateMachine").inputs["definition"])
    groups = {p["GroupName"] for _, _, a, p in idle_stop.sdk_tasks(machine) if a == "deleteSchedule"}
    assert groups == {"default"}


def test_args_are_validated():
    with pytest.raises(ValueError, match="rule_prefix"):
        TeardownAlertsArgs(region="us-east-1", account_id="123456789012", rule_prefix="")
