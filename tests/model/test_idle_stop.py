"""The idle stop as data (trainstack/model/idle_stop.py) and its config key: every request AWS parses is
checked against botocore's models, every grant decided by the IAM engine (tests/iam/engine.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.iam.engine import ACCOUNT, ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate
from tests.model.test_eks_config import eks_config, parse, rejected
from trainstack.model import iam_documents as docs
from trainstack.model import idle_stop as I
from trainstack.model import teardown_alerts as T
from trainstack.plan import provider_schema
from trainstack.plan.provider_schema import api_errors, sdk_request_problem

REGION = "us-east-1"
CLUSTER = "eks-control-plane-cluster-0123abc"
CLUSTER_ARN = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"


def nodegroup_arn(name: str, cluster: str = CLUSTER) -> str:
    return f"arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/{cluster}/{name}/0612b1bf-bc00-df9b-b41e-ca7fb7a6f9e2"


def schedule_arn(name: str, group: str = "teardown-schedules-1") -> str:
    return f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{name}"


GROUPS = [I.NodeGroup("p3-2xlarge", "gpu-p3"), I.NodeGroup("p3-8xlarge", "gpu-p3-8"), I.NodeGroup("system", "sys")]
SCHEDULES = [I.Schedule("scale-to-zero-p3-2xlarge", "s1", "teardown-schedules-1"), I.Schedule("a", "s2", "default")]


# --------------------------------------------------------------------------------------------
# eks.idleStopMinutes


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-10, max_value=3000))
def test_idle_minutes_are_off_or_whole_five_minute_periods_within_a_day(minutes):
    ok = minutes == 0 or (15 <= minutes <= 1440 and minutes % 5 == 0)
    assert (I.minutes_problem(minutes) == "") == ok
    if ok and minutes:
        # CloudWatch: evaluation periods x period must not exceed one day.
        assert I.evaluation_periods(minutes) * I.PERIOD_SECONDS <= 86400
        assert I.evaluation_periods(minutes) * I.PERIOD_SECONDS == minutes * 60


def test_a_dedicated_cluster_stops_after_an_idle_hour_by_default_and_a_shared_one_never():
    dedicated = parse(eks_config()).cluster.eks
    assert dedicated.idle_stop_minutes == 60 and dedicated.idle_stop
    off = parse(eks_config(eks={"idleStopMinutes": 0})).cluster.eks
    assert off.idle_stop_minutes == 0 and not off.idle_stop
    shared = parse(eks_config(eks={"mode": "shared"})).cluster.eks
    assert not shared.idle_stop  # the shared control plane is the platform's; the stack's GPU groups sit at zero


@pytest.mark.parametrize(
    "value, fragments",
    [
        (7, ["15-1440"]),
        (62, ["multiple of 5"]),
        (2000, ["0 to 1440"]),
        ("soon", ["whole number"]),
    ],
)
def test_a_bad_idle_stop_is_refused_naming_key_value_and_fix(value, fragments):
    text = rejected(eks_config(eks={"idleStopMinutes": value}), "trainstack:eks.idleStopMinutes", *fragments)
    assert str(value) in text


def test_idle_stop_minutes_is_refused_on_a_shared_cluster():
    rejected(
        eks_config(eks={"mode": "shared", "idleStopMinutes": 30}),
        "trainstack:eks.idleStopMinutes",
        "dedicated",
        "platform stack",
    )


# --------------------------------------------------------------------------------------------
# What the cloud is asked


@pytest.mark.parametrize("asgs", [["eks-gpu-p3"], ["eks-gpu-p3", "eks-gpu-p3-8", "eks-gpu-g5"]])
@pytest.mark.parametrize("minutes", [15, 60, 1440])
def test_the_alarm_request_is_one_botocore_accepts(asgs, minutes):
    request = I.alarm_request("trainstack-idle-c", CLUSTER, asgs, minutes, [f"arn:aws:sns:{REGION}:{ACCOUNT}:t"])
    assert api_errors("cloudwatch", "PutMetricAlarm", request) == ""
    # It watches one series (the sum), made of the pending pods and every GPU group's instances.
    returned = [m for m in request["Metrics"] if m["ReturnData"]]
    assert len(returned) == 1
    ids = {m["Id"] for m in request["Metrics"] if "MetricStat" in m}
    assert set(returned[0]["Expression"].replace(" ", "").split("+")) == ids
    watched = {
        (m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Metric"]["Dimensions"][0]["Value"])
        for m in request["Metrics"]
        if "MetricStat" in m
    }
    assert watched == {("scheduler_pending_pods", CLUSTER)} | {("GroupTotalInstances", a) for a in asgs}
    # Idle = every period of the window at zero; a missing datapoint (no cluster yet, or none left) is not idle.
    assert request["EvaluationPeriods"] == request["DatapointsToAlarm"] == minutes // 5
    assert request["TreatMissingData"] == "notBreaching"
    assert request["ComparisonOperator"] == "LessThanOrEqualToThreshold" and request["Threshold"] == 0
    # The same queries are what `GetMetricData` takes (what `ls` or a person can ask for the history).
    assert (
        api_errors(
            "cloudwatch", "GetMetricData", {"MetricDataQueries": request["Metrics"], "StartTime": 0, "EndTime": 1}
        )
        == ""
    )


def test_the_alarm_is_refused_without_gpu_groups_or_with_bad_minutes():
    with pytest.raises(ValueError, match="nothing to watch"):
        I.alarm_metrics(CLUSTER, [])
    with pytest.raises(ValueError, match="multiple of 5"):
        I.alarm_request("a", CLUSTER, ["g"], 61)
    with pytest.raises(ValueError, match="off"):
        I.alarm_request("a", CLUSTER, ["g"], 0)


def test_the_platform_failure_alarm_requests_are_ones_botocore_accepts():
    request = T.failure_alarm_request(
        "f", "teardown-schedules-1", "teardown-dlq-1", f"arn:aws:sns:{REGION}:{ACCOUNT}:t"
    )
    assert api_errors("cloudwatch", "PutMetricAlarm", request) == ""
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in request["Metrics"] if "MetricStat" in m}
    assert names == {
        "TargetErrorCount",
        "InvocationDroppedCount",
        "InvocationsFailedToBeSentToDeadLetterCount",
        "ApproximateNumberOfMessagesVisible",
    }
    unfinished = {"Metrics": T.execution_failure_metrics(f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:s")}
    assert api_errors("cloudwatch", "PutMetricAlarm", {**request, **unfinished}) == ""
    # The provider's shape carries the same queries.
    provider = T.pulumi_metric_queries(request["Metrics"])
    assert [q["id"] for q in provider] == [m["Id"] for m in request["Metrics"]]
    assert provider[0]["metric"]["dimensions"] == {"ScheduleGroup": "teardown-schedules-1"}


def test_every_task_of_the_state_machine_is_a_request_botocore_accepts():
    definition = I.state_machine_definition(CLUSTER, GROUPS, SCHEDULES)
    tasks = I.sdk_tasks(definition)
    assert [(s, a) for _, s, a, _ in tasks] == [("eks", "deleteNodegroup")] * 3 + [
        ("eks", "deleteCluster"),
        ("scheduler", "deleteSchedule"),
        ("scheduler", "deleteSchedule"),
    ]
    for _, service, action, params in tasks:
        assert sdk_request_problem(service, action, params) == ""
    names = [n for n, *_ in tasks]
    assert len(set(names)) == len(names)  # state names are unique across the whole machine
    assert definition["TimeoutSeconds"] == I.TIMEOUT_SECONDS


def test_the_plan_catches_a_camel_case_member_in_a_state_machine_task():
    definition = I.state_machine_definition(CLUSTER, GROUPS[:1], [])
    task = definition["States"]["Delete the control plane"]
    task["Parameters"] = {"name": CLUSTER}  # the API's own casing: Step Functions wants `Name`
    record = SimpleNamespace(
        name="m", type="aws:sfn/stateMachine:StateMachine", inputs={"definition": json.dumps(definition)}
    )
    (finding,) = provider_schema._state_machine(record)
    assert "Delete the control plane" in finding.path and "write Name" in finding.problem


def test_the_event_pattern_names_the_alarm_and_its_alarm_state():
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:trainstack-idle-{CLUSTER}"
    pattern = I.alarm_event_pattern(arn)
    assert pattern["resources"] == [arn] and pattern["detail"] == {"state": {"value": ["ALARM"]}}
    assert api_errors("events", "PutRule", {"Name": "r", "EventPattern": json.dumps(pattern)}) == ""


# --------------------------------------------------------------------------------------------
# Who may do what (IAM engine)


def test_the_state_machine_may_delete_exactly_this_cluster_its_node_groups_and_its_schedules():
    role = f"arn:aws:iam::{ACCOUNT}:role/idle-stop-role"
    doc = docs.idle_stop_state_machine(
        CLUSTER_ARN, [nodegroup_arn("gpu-p3"), nodegroup_arn("sys")], [schedule_arn("s1"), schedule_arn("s2")]
    )
    cases = {
        "delete its GPU node group": ("eks:DeleteNodegroup", nodegroup_arn("gpu-p3"), ALLOWED),
        "delete its system node group": ("eks:DeleteNodegroup", nodegroup_arn("sys"), ALLOWED),
        "delete its control plane": ("eks:DeleteCluster", CLUSTER_ARN, ALLOWED),
        "delete its expiry schedule": ("scheduler:DeleteSchedule", schedule_arn("s1"), ALLOWED),
        "delete another cluster": ("eks:DeleteCluster", CLUSTER_ARN + "-other", IMPLICIT_DENY),
        "delete another cluster's group": ("eks:DeleteNodegroup", nodegroup_arn("gpu-p3", "other"), IMPLICIT_DENY),
        "delete another stack's schedule": ("scheduler:DeleteSchedule", schedule_arn("s9"), IMPLICIT_DENY),
        "scale a node group": ("eks:UpdateNodegroupConfig", nodegroup_arn("gpu-p3"), IMPLICIT_DENY),
        "create a schedule": ("scheduler:CreateSchedule", schedule_arn("s3"), IMPLICIT_DENY),
    }
    decided = evaluate(Request(k, role, a, r, {}, (doc,)) for k, (a, r, _) in cases.items())
    assert decided == {k: expect for k, (_, _, expect) in cases.items()}


def test_the_rule_role_may_only_start_this_state_machine():
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:trainstack-idle-1"
    role = f"arn:aws:iam::{ACCOUNT}:role/idle-stop-events-role"
    doc = docs.start_idle_stop(machine)
    cases = {
        "start it": ("states:StartExecution", machine, ALLOWED),
        "start another": ("states:StartExecution", machine + "x", IMPLICIT_DENY),
        "change it": ("states:UpdateStateMachine", machine, IMPLICIT_DENY),
    }
    decided = evaluate(Request(k, role, a, r, {}, (doc,)) for k, (a, r, _) in cases.items())
    assert decided == {k: expect for k, (_, _, expect) in cases.items()}


def test_the_dead_letter_queue_takes_idle_stop_rules_and_schedule_roles_over_tls_only():
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:teardown-dlq-1"
    policy = docs.dead_letter_queue_policy(queue, region=REGION, account_id=ACCOUNT, rule_prefix=I.RULE_PREFIX)
    rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{I.RULE_PREFIX}0123"
    teardown_role = f"arn:aws:iam::{ACCOUNT}:role/teardown-role"
    send_grant = docs.send_to_dead_letter_queue(queue)
    tls = {"aws:SecureTransport": "true"}

    def events(source_arn: str, account: str = ACCOUNT, secure: str = "true") -> dict:
        return {"aws:SourceArn": source_arn, "aws:SourceAccount": account, "aws:SecureTransport": secure}

    cases = {
        "an idle-stop rule": ("events.amazonaws.com", events(rule), (), ALLOWED),
        "another rule": (
            "events.amazonaws.com",
            events(f"arn:aws:events:{REGION}:{ACCOUNT}:rule/someone-else"),
            (),
            IMPLICIT_DENY,
        ),
        "another account's rule": (
            "events.amazonaws.com",
            events(f"arn:aws:events:{REGION}:210987654321:rule/{I.RULE_PREFIX}x", "210987654321"),
            (),
            IMPLICIT_DENY,
        ),
        "the teardown role (a schedule)": (teardown_role, tls, (send_grant,), ALLOWED),
        "a role without the grant": (f"arn:aws:iam::{ACCOUNT}:role/other", tls, (), IMPLICIT_DENY),
        "the teardown role without TLS": (
            teardown_role,
            {"aws:SecureTransport": "false"},
            (send_grant,),
            EXPLICIT_DENY,
        ),
    }
    decided = evaluate(
        Request(k, p, "sqs:SendMessage", queue, ctx, ids, policy) for k, (p, ctx, ids, _) in cases.items()
    )
    assert decided == {k: expect for k, (_, _, _, expect) in cases.items()}
