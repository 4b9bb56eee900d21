"""Idle stop of a kept eks cluster, as plain data (pure: no Pulumi; botocore's models only through
trainstack.model.scheduler_input).

What bills while a cluster stack idles is its backend's declaration (`Backend.idle`): only an eks
control plane of the stack's own (`eks.mode: dedicated`, $0.10/h, $0.60/h in extended support) and
its system node. Everything else sits at zero. So the idle stop exists for eks dedicated only.

**Idle**, as the cloud reports it: no instance in any of the stack's GPU node groups and no pod
waiting to be scheduled, for `eks.idleStopMinutes` in a row.

- `GroupTotalInstances` (AWS/AutoScaling, `AutoScalingGroupName`) of each GPU node group's Auto
  Scaling group: in service, pending and terminating instances. EKS managed node groups have the
  group metrics enabled by default, every minute, at no charge (awsdocs/amazon-eks-user-guide
  `latest/ug/observability/enable-asg-metrics.adoc`).
- `scheduler_pending_pods` (AWS/EKS, `ClusterName`): pods the scheduler has not placed, which
  includes a job waiting for Cluster Autoscaler or for spot capacity. Vended free every minute for
  clusters on Kubernetes 1.28 and later (`latest/ug/observability/cloudwatch.adoc`); the dimension
  name is the one aws-cdk-lib's generated `EKSMetrics` uses.

A running pod holds a GPU node, so "no GPU instance and nothing pending" covers running, starting
and waiting jobs alike; Kubernetes objects themselves are invisible to CloudWatch without an agent.

**The alarm** sums those series (metric math `+`, where a missing value counts 0: CloudWatch
User Guide, "Using metric math", basic arithmetic) in 5-minute periods and goes to ALARM when the
sum is 0 in every one of `minutes / 5` periods. Missing data counts as *not* breaching: a cluster
still being created, or already gone, reports nothing and must never look idle.

**What acts** without a laptop: the alarm's state change reaches EventBridge ("CloudWatch Alarm
State Change", delivered durably: CloudWatch User Guide, "Alarm events and EventBridge"); a rule
starts a Step Functions state machine whose tasks are AWS SDK integrations (no code to maintain):
delete every node group of the cluster, delete the control plane once they are gone (DeleteCluster
refuses while node groups exist, so it is retried), then delete the stack's expiry schedules, whose
node group calls would only fail from then on. An EKS control plane cannot be stopped; deleting it
is the only way its hourly charge ends. The stack holds no data (policy `cluster-holds-no-data`),
so nothing is lost; `pulumi up` recreates the cluster (Pulumi.yaml `refresh: always` drops the
deleted resources from the state first, the Kubernetes provider's `deleteUnreachable` its objects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainstack.model.scheduler_input import to_universal_remembered

PERIOD_SECONDS = 300  # the alarm's period: five of the metrics' one-minute samples
MIN_MINUTES = 15  # Cluster Autoscaler removes a node 5 min after it is unneeded; leave room for a job to start
# CloudWatch: "An alarm's total current evaluation period can be no longer than one day, so this number
# multiplied by Period cannot be more than 86,400 seconds" (PutMetricAlarm, EvaluationPeriods).
MAX_MINUTES = 24 * 60
DEFAULT_MINUTES = 60
ALARM_PREFIX = "trainstack-idle-"
RULE_PREFIX = (
    "trainstack-idle-"  # the DLQ's queue policy admits EventBridge rules named so (components/teardown_alerts.py)
)
STATE_MACHINE_PREFIX = "trainstack-idle-"
# The state machine gives up after this long (node groups take ~5-15 min to delete, the control plane ~5).
TIMEOUT_SECONDS = 3 * 3600
# DeleteCluster is refused while node groups are still being deleted: retried once a minute this many times.
CONTROL_PLANE_ATTEMPTS = 40

GPU_METRIC = ("AWS/AutoScaling", "GroupTotalInstances", "Maximum")
PENDING_METRIC = ("AWS/EKS", "scheduler_pending_pods", "Sum")


def minutes_problem(minutes: int) -> str:
    """Why `minutes` cannot be an idle-stop threshold ("" when it can; 0 turns the idle stop off)."""
    if minutes == 0:
        return ""
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        return f"must be 0 (off) or {MIN_MINUTES}-{MAX_MINUTES} minutes"
    if minutes % (PERIOD_SECONDS // 60):
        return (
            f"must be a multiple of {PERIOD_SECONDS // 60} (the alarm looks at {PERIOD_SECONDS // 60}-minute periods)"
        )
    return ""


def evaluation_periods(minutes: int) -> int:
    return minutes * 60 // PERIOD_SECONDS


def _metric(query_id: str, metric: tuple[str, str, str], dimension: str, value: str) -> dict[str, Any]:
    namespace, name, stat = metric
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": [{"Name": dimension, "Value": value}]},
            "Period": PERIOD_SECONDS,
            "Stat": stat,
        },
        "ReturnData": False,
    }


def busy_expression(gpu_query_ids: Sequence[str]) -> str:
    return " + ".join(["pending", *gpu_query_ids])


def alarm_metrics(cluster_name: str, gpu_group_asg_names: Sequence[str]) -> list[dict[str, Any]]:
    """`PutMetricAlarm.Metrics` (also `GetMetricData.MetricDataQueries`): pending pods plus the instances of
    every GPU group, summed into `busy`, the one series the alarm watches (ReturnData)."""
    if not gpu_group_asg_names:
        raise ValueError("alarm_metrics: a cluster without GPU node groups has nothing to watch")
    gpu = [_metric(f"gpu{i}", GPU_METRIC, "AutoScalingGroupName", n) for i, n in enumerate(gpu_group_asg_names)]
    return [
        _metric("pending", PENDING_METRIC, "ClusterName", cluster_name),
        *gpu,
        {
            "Id": "busy",
            "Expression": busy_expression([q["Id"] for q in gpu]),
            "Label": "GPU instances + pending pods",
            "ReturnData": True,
        },
    ]


def alarm_request(
    alarm_name: str,
    cluster_name: str,
    gpu_group_asg_names: Sequence[str],
    minutes: int,
    actions: Sequence[str] = (),
) -> dict[str, Any]:
    """The whole `cloudwatch:PutMetricAlarm` request (what the component's MetricAlarm sends)."""
    problem = minutes_problem(minutes)
    if problem or not minutes:
        raise ValueError(f"idle stop after {minutes} min: {problem or 'the idle stop is off'}")
    periods = evaluation_periods(minutes)
    return {
        "AlarmName": alarm_name,
        "AlarmDescription": f"trainstack idle stop: no GPU instance and no pending pod for {minutes} min "
        f"on EKS cluster {cluster_name}; ALARM deletes its node groups and control plane",
        "Metrics": alarm_metrics(cluster_name, gpu_group_asg_names),
        "ComparisonOperator": "LessThanOrEqualToThreshold",
        "Threshold": 0.0,
        "EvaluationPeriods": periods,
        "DatapointsToAlarm": periods,
        # A cluster being created or already deleted reports nothing: never idle on missing data.
        "TreatMissingData": "notBreaching",
        "ActionsEnabled": bool(actions),
        "AlarmActions": list(actions),
    }


def alarm_event_pattern(alarm_arn: str) -> dict[str, Any]:
    """The EventBridge pattern of this alarm entering ALARM (CloudWatch User Guide, "Alarm events and
    EventBridge": source aws.cloudwatch, the alarm ARN in `resources`, `detail.state.value`)."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "resources": [alarm_arn],
        "detail": {"state": {"value": ["ALARM"]}},
    }


@dataclass(frozen=True)
class NodeGroup:
    """An EKS node group the idle stop scales to zero, by its state key and name."""

    key: str  # e.g. "p3-2xlarge" or "system": names the states
    name: str


@dataclass(frozen=True)
class Schedule:
    """A teardown schedule the idle stop deletes, by its action key, name and schedule group."""

    key: str  # the teardown action's key
    name: str
    group: str  # "default" when the platform has no schedule group


_ANY_FAILURE = ["States.ALL"]


def _sdk_task(service: str, action: str, request: dict[str, Any], partition: str) -> dict[str, Any]:
    """A Step Functions AWS SDK integration: Parameters in PascalCase, like a Scheduler universal target
    (docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html)."""
    return {
        "Type": "Task",
        "Resource": f"arn:{partition}:states:::aws-sdk:{service}:{action}",
        "Parameters": to_universal_remembered(service, action, request),  # kept between plans
        "ResultPath": None,  # keep the (ignored) execution input; no response is read
    }


def _tolerant(state: dict[str, Any], gone: str, retries: int = 3) -> dict[str, Any]:
    """Retry transient failures, then carry on: an object already deleted (or being deleted) is what we want.
    `States.TaskFailed` rather than the service's own error names, which differ between Step Functions
    (`Eks.ResourceNotFoundException`) and local interpreters."""
    return {
        **state,
        "Retry": [
            {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 5, "MaxAttempts": retries, "BackoffRate": 2.0}
        ],
        "Catch": [{"ErrorEquals": _ANY_FAILURE, "ResultPath": None, "Next": gone}],
    }


def state_machine_definition(
    cluster_name: str, node_groups: Sequence[NodeGroup], schedules: Sequence[Schedule], partition: str = "aws"
) -> dict[str, Any]:
    """The Amazon States Language definition of the idle stop: node groups, control plane, expiry schedules."""
    if not node_groups:
        raise ValueError("state_machine_definition: the cluster has no node group to delete")

    def branch(first: str, task: dict[str, Any], gone: str) -> dict[str, Any]:
        return {
            "StartAt": first,
            "States": {first: {**_tolerant(task, gone), "End": True}, gone: {"Type": "Pass", "End": True}},
        }

    groups = [
        branch(
            f"Delete node group {g.key}",
            _sdk_task("eks", "deleteNodegroup", {"clusterName": cluster_name, "nodegroupName": g.name}, partition),
            f"Node group {g.key} is gone",
        )
        for g in node_groups
    ]
    states: dict[str, Any] = {
        "Delete the node groups": {
            "Type": "Parallel",
            "Branches": groups,
            "ResultPath": None,
            "Next": "Delete the control plane",
        },
        "Delete the control plane": {
            **_sdk_task("eks", "deleteCluster", {"name": cluster_name}, partition),
            "Retry": [
                {
                    "ErrorEquals": ["States.TaskFailed"],  # ResourceInUseException while node groups are deleting
                    "IntervalSeconds": 60,
                    "MaxAttempts": CONTROL_PLANE_ATTEMPTS,
                    "BackoffRate": 1.0,
                }
            ],
            "Next": "Forget the expiry" if schedules else "Stopped",
        },
        "Stopped": {"Type": "Succeed"},
    }
    if schedules:
        states["Forget the expiry"] = {
            "Type": "Parallel",
            "Branches": [
                branch(
                    f"Delete schedule {s.key}",
                    _sdk_task("scheduler", "deleteSchedule", {"Name": s.name, "GroupName": s.group}, partition),
                    f"Schedule {s.key} is gone",
                )
                for s in schedules
            ],
            "ResultPath": None,
            "Next": "Stopped",
        }
    return {
        "Comment": f"trainstack idle stop of EKS cluster {cluster_name}: node groups, control plane, expiry schedules",
        "StartAt": "Delete the node groups",
        "TimeoutSeconds": TIMEOUT_SECONDS,
        "States": states,
    }


def sdk_tasks(definition: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(state name, service, apiAction, Parameters) of every AWS SDK task, nested branches included."""
    found: list[tuple[str, str, str, dict[str, Any]]] = []

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            resource = str(state.get("Resource", ""))
            if state.get("Type") == "Task" and ":aws-sdk:" in resource:
                service, action = resource.rsplit(":", 2)[-2:]
                found.append((name, service, action, dict(state.get("Parameters") or {})))
            for b in state.get("Branches", []):
                walk(b.get("States", {}))
            if "Iterator" in state:
                walk(state["Iterator"].get("States", {}))

    walk(definition.get("States", {}))
    return found
