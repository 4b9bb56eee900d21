"""IdleStop: a kept eks cluster whose control plane of its own sits idle is deleted by AWS itself.

An EKS control plane bills by the hour ($0.10/h, $0.60/h in extended support) and cannot be stopped, only
deleted; its system node bills too. After `minutes` with no GPU instance and no pending pod (what the cloud
reports: trainstack/model/idle_stop.py), a CloudWatch alarm goes to ALARM; an EventBridge rule on that state
change starts a Step Functions state machine of AWS SDK tasks (no code to maintain) that deletes the node
groups, then the control plane, then the stack's expiry schedules, which would only fail from then on. No
laptop is involved. `pulumi up` recreates the cluster (Pulumi.yaml refreshes first); `expiresAt` stays the
hard ceiling for whatever runs meanwhile.

Each role may do exactly its part: the rule's role starts this state machine; the state machine's role deletes
these node groups, this cluster and these schedules. A failed start goes to the platform's dead-letter queue
(after the rule's retries); an idle stop that does not finish raises an alarm on the platform's alerts topic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from trainstack.model import iam_documents as docs
from trainstack.model import idle_stop as model
from trainstack.model.teardown_alerts import execution_failure_metrics, pulumi_metric_queries


@dataclass(frozen=True)
class NodeGroupToDelete:
    key: str  # names the state machine's states, e.g. "p3-2xlarge" or "system"
    name: pulumi.Input[str]
    arn: pulumi.Input[str]
    # The node group's Auto Scaling group when its instances count as "busy" (GPU groups); None: the system group.
    asg_name: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class ScheduleToForget:
    key: str  # the teardown action's key
    name: pulumi.Input[str]
    arn: pulumi.Input[str]
    group: pulumi.Input[str | None] = None  # None: the default group


@dataclass(frozen=True)
class IdleStopArgs:
    # Idle minutes before the stop: a multiple of 5 from 15 to 1440 (model.minutes_problem).
    minutes: int
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    # Every node group of the cluster (the control plane cannot be deleted while one exists).
    node_groups: tuple[NodeGroupToDelete, ...]
    # The stack's expiry schedules, deleted once the cluster is gone.
    schedules: tuple[ScheduleToForget, ...]
    # The account: the roles trust EventBridge and Step Functions of this account only.
    account_id: str
    # The AWS partition of the region ("aws", "aws-cn", "aws-us-gov": docs.partition_of).
    partition: str = "aws"
    # The platform's dead-letter queue for a rule invocation that failed (None: none).
    dead_letter_queue_arn: pulumi.Input[str | None] = None
    # The platform's alerts topic: told when the cluster goes idle and when an idle stop does not finish.
    alerts_topic_arn: pulumi.Input[str | None] = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        problem = model.minutes_problem(self.minutes)
        if problem or not self.minutes:
            raise ValueError(f"minutes = {self.minutes}: {problem or 'an IdleStop needs minutes > 0'}")
        if not any(g.asg_name is not None for g in self.node_groups):
            raise ValueError("node_groups: no GPU node group (asg_name) to watch; an idle stop needs one")
        keys = [g.key for g in self.node_groups] + [s.key for s in self.schedules]
        if len(set(keys)) != len(keys):
            raise ValueError(f"node group and schedule keys must be unique: {keys}")


def _actions(topic: pulumi.Input[str | None]) -> pulumi.Output[list[str]]:
    return pulumi.Output.from_input(topic).apply(lambda t: [t] if t else [])


class IdleStop(pulumi.ComponentResource):
    alarm: aws.cloudwatch.MetricAlarm
    state_machine: aws.sfn.StateMachine
    rule: aws.cloudwatch.EventRule

    def __init__(self, name: str, args: IdleStopArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:lifecycle:IdleStop", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        gpu = [g for g in args.node_groups if g.asg_name is not None]

        role = aws.iam.Role(
            f"{name}-role",
            description="trainstack idle stop: may only delete this cluster, its node groups and its expiry schedules",
            assume_role_policy=json.dumps(docs.assume_role("states.amazonaws.com", source_account=args.account_id)),
            tags=args.tags,
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(
                args.cluster_arn,
                pulumi.Output.all(*[g.arn for g in args.node_groups]),
                pulumi.Output.all(*[s.arn for s in args.schedules]),
            ).apply(lambda a: json.dumps(docs.idle_stop_state_machine(a[0], list(a[1]), list(a[2])))),
            opts=child,
        )
        self.state_machine = aws.sfn.StateMachine(
            f"{name}-machine",
            name_prefix=model.STATE_MACHINE_PREFIX,
            type="STANDARD",
            role_arn=role.arn,
            definition=self._definition(args),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )

        periods = model.evaluation_periods(args.minutes)
        self.alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-alarm",
            # Named after the cluster: a recreated cluster gets a fresh alarm (INSUFFICIENT_DATA, then OK), so its
            # next idle period is a new transition into ALARM.
            name=pulumi.Output.concat(model.ALARM_PREFIX, args.cluster_name),
            alarm_description=pulumi.Output.concat(
                f"trainstack idle stop: no GPU instance and no pending pod for {args.minutes} min on EKS cluster ",
                args.cluster_name,
                "; ALARM deletes its node groups and control plane (`pulumi up` recreates them)",
            ),
            metric_queries=pulumi.Output.all(args.cluster_name, *[g.asg_name for g in gpu]).apply(
                lambda a: pulumi_metric_queries(model.alarm_metrics(a[0], list(a[1:])))
            ),
            comparison_operator="LessThanOrEqualToThreshold",
            threshold=0,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            # A cluster being created, or already deleted, reports nothing: never idle on missing data.
            treat_missing_data="notBreaching",
            alarm_actions=_actions(args.alerts_topic_arn),
            tags=args.tags,
            opts=child,
        )

        events_role = aws.iam.Role(
            f"{name}-events-role",
            description="trainstack idle stop: EventBridge may only start this cluster's idle stop",
            assume_role_policy=json.dumps(docs.assume_role("events.amazonaws.com", source_account=args.account_id)),
            tags=args.tags,
            opts=child,
        )
        events_policy = aws.iam.RolePolicy(
            f"{name}-events-policy",
            role=events_role.id,
            policy=self.state_machine.arn.apply(lambda arn: json.dumps(docs.start_idle_stop(arn))),
            opts=child,
        )
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name_prefix=model.RULE_PREFIX,
            description="trainstack idle stop: the cluster's idle alarm went to ALARM",
            event_pattern=self.alarm.arn.apply(lambda arn: json.dumps(model.alarm_event_pattern(arn))),
            tags=args.tags,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=self.rule.name,
            arn=self.state_machine.arn,
            role_arn=events_role.arn,
            # EventBridge retries a failed start (throttling, a role not yet usable) for an hour, then gives up.
            retry_policy={"maximum_event_age_in_seconds": 3600, "maximum_retry_attempts": 10},
            dead_letter_config=pulumi.Output.from_input(args.dead_letter_queue_arn).apply(
                lambda arn: {"arn": arn} if arn else None
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[events_policy]),
        )
        aws.cloudwatch.MetricAlarm(
            f"{name}-unfinished",
            alarm_description=pulumi.Output.concat(
                "trainstack idle stop of EKS cluster ",
                args.cluster_name,
                " failed, timed out or was aborted: its control plane may still bill. See the execution in "
                "Step Functions; `pulumi destroy` or `trainstack down` removes the cluster",
            ),
            metric_queries=self.state_machine.arn.apply(
                lambda arn: pulumi_metric_queries(execution_failure_metrics(arn))
            ),
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data="notBreaching",  # Step Functions reports these counts only when something happens
            alarm_actions=_actions(args.alerts_topic_arn),
            tags=args.tags,
            opts=child,
        )
        self.register_outputs(
            {"alarmName": self.alarm.name, "stateMachineArn": self.state_machine.arn, "ruleName": self.rule.name}
        )

    @staticmethod
    def _definition(args: IdleStopArgs) -> pulumi.Output[str]:
        def build(a: list[Any]) -> str:
            cluster, group_names, schedule_values = a[0], a[1], a[2]
            groups = [model.NodeGroup(g.key, n) for g, n in zip(args.node_groups, group_names, strict=True)]
            schedules = [
                model.Schedule(s.key, n, g or "default")
                for s, (n, g) in zip(args.schedules, _pairs(schedule_values), strict=True)
            ]
            return json.dumps(model.state_machine_definition(cluster, groups, schedules, args.partition))

        return pulumi.Output.all(
            args.cluster_name,
            pulumi.Output.all(*[g.name for g in args.node_groups]),
            pulumi.Output.all(*[v for s in args.schedules for v in (s.name, s.group)]),
        ).apply(build)


def _pairs(values: Sequence[Any]) -> list[tuple[Any, Any]]:
    return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
