"""Failed teardown calls, as plain data (pure): the one alarm a platform keeps over every cluster's schedules.

A teardown schedule that fails leaves a GPU billing, and without a dead-letter queue its failure vanishes
(Scheduler retries, then drops the invocation). Every cluster's schedules run in the platform's schedule
group and send what finally failed to the platform's queue; one alarm per platform watches (5-minute
periods, `AWS/Scheduler` metrics by `ScheduleGroup`: Scheduler User Guide, "Monitoring EventBridge
Scheduler with Amazon CloudWatch"):

- `TargetErrorCount`: a call the target API refused (each attempt, retried ones included);
- `InvocationDroppedCount`: an invocation Scheduler gave up on without delivering it anywhere;
- `InvocationsFailedToBeSentToDeadLetterCount`: one that failed and could not reach the queue either;
- `ApproximateNumberOfMessagesVisible` of the queue (`AWS/SQS`, `QueueName`): failures nobody has read yet,
  which also catches the idle-stop rules' failed invocations (their targets share the queue).

The alarm notifies the platform's SNS topic, which people subscribe to (docs/backends.md).
"""

from __future__ import annotations

from typing import Any

PERIOD_SECONDS = 300
SCHEDULER_METRICS = ("TargetErrorCount", "InvocationDroppedCount", "InvocationsFailedToBeSentToDeadLetterCount")
QUEUE_METRIC = ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum")
# SQS keeps a message at most 14 days (CreateQueue, MessageRetentionPeriod: 60 s to 1,209,600 s).
RETENTION_SECONDS = 14 * 24 * 3600


def failure_metrics(schedule_group: str, queue_name: str) -> list[dict[str, Any]]:
    """`PutMetricAlarm.Metrics`: the Scheduler failure counts of the group plus the queue's depth, summed."""

    def metric(query_id: str, namespace: str, name: str, stat: str, dimension: str, value: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": name,
                    "Dimensions": [{"Name": dimension, "Value": value}],
                },
                "Period": PERIOD_SECONDS,
                "Stat": stat,
            },
            "ReturnData": False,
        }

    scheduler = [
        metric(f"m{i}", "AWS/Scheduler", name, "Sum", "ScheduleGroup", schedule_group)
        for i, name in enumerate(SCHEDULER_METRICS)
    ]
    namespace, name, stat = QUEUE_METRIC
    queue = metric("unread", namespace, name, stat, "QueueName", queue_name)
    ids = [q["Id"] for q in [*scheduler, queue]]
    return [
        *scheduler,
        queue,
        {"Id": "failures", "Expression": " + ".join(ids), "Label": "failed teardown calls", "ReturnData": True},
    ]


def failure_alarm_request(alarm_name: str, schedule_group: str, queue_name: str, topic_arn: str) -> dict[str, Any]:
    """The whole `cloudwatch:PutMetricAlarm` request of the platform's teardown-failure alarm."""
    return {
        "AlarmName": alarm_name,
        "AlarmDescription": "trainstack: a cluster teardown call failed (schedule group "
        f"{schedule_group}); read the dead-letter queue {queue_name} for which and why",
        "Metrics": failure_metrics(schedule_group, queue_name),
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1.0,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "TreatMissingData": "notBreaching",  # Scheduler reports these counts only when something happens
        "ActionsEnabled": True,
        "AlarmActions": [topic_arn],
    }


def execution_failure_metrics(state_machine_arn: str) -> list[dict[str, Any]]:
    """An idle stop that did not finish (AWS/States by `StateMachineArn`): failed, timed out or aborted runs."""
    names = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
    queries: list[dict[str, Any]] = [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/States",
                    "MetricName": n,
                    "Dimensions": [{"Name": "StateMachineArn", "Value": state_machine_arn}],
                },
                "Period": PERIOD_SECONDS,
                "Stat": "Sum",
            },
            "ReturnData": False,
        }
        for i, n in enumerate(names)
    ]
    queries.append(
        {
            "Id": "unfinished",
            "Expression": "m0 + m1 + m2",
            "Label": "idle stops that did not finish",
            "ReturnData": True,
        }
    )
    return queries


def pulumi_metric_queries(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`PutMetricAlarm.Metrics` in the shape of the provider's `metric_queries` input (aws.cloudwatch.MetricAlarm)."""
    out = []
    for q in metrics:
        item: dict[str, Any] = {"id": q["Id"], "return_data": q.get("ReturnData", False)}
        if "Expression" in q:
            item["expression"] = q["Expression"]
        if "Label" in q:
            item["label"] = q["Label"]
        if "MetricStat" in q:
            stat = q["MetricStat"]
            item["metric"] = {
                "namespace": stat["Metric"]["Namespace"],
                "metric_name": stat["Metric"]["MetricName"],
                "dimensions": {d["Name"]: d["Value"] for d in stat["Metric"].get("Dimensions", [])},
                "period": stat["Period"],
                "stat": stat["Stat"],
            }
        out.append(item)
    return out
