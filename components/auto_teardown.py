"""AutoTeardown: at the stack's expiry, AWS itself turns the GPUs off — even if nobody runs destroy.

Each action is an EventBridge Scheduler one-time schedule (`at(...)`, UTC) whose universal target
calls one AWS API directly (no Lambda to maintain). The role the schedules use may call exactly
those APIs on exactly this stack's resources.

A fired schedule stays (`ActionAfterCompletion: NONE`); `pulumi destroy` removes it. A schedule
that deleted itself would break the next `pulumi up` of the stack: terraform-provider-aws
`internal/service/scheduler/schedule.go` `resourceScheduleUpdate` calls UpdateSchedule on the
id in state and fails on ResourceNotFoundException (only Read, i.e. a refresh, and Delete
tolerate a missing schedule).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from trainstack.model import iam_documents as docs
from trainstack.model.scheduler_input import to_universal


def universal_target_arn(service: str, api_action: str, partition: str = "aws") -> str:
    """`autoscaling`, `updateAutoScalingGroup` -> arn:aws:scheduler:::aws-sdk:autoscaling:updateAutoScalingGroup."""
    return f"arn:{partition}:scheduler:::aws-sdk:{service}:{api_action}"


def at_expression(when: dt.datetime) -> str:
    return f"at({when.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%S})"


@dataclass(frozen=True)
class TeardownAction:
    key: str  # logical-name suffix, e.g. "scale-to-zero"
    service: str  # AWS SDK service name as Scheduler spells it, e.g. "autoscaling"
    api_action: str  # camelCase API action, e.g. "updateAutoScalingGroup"
    input: pulumi.Input[str]  # the API request, JSON
    policy: pulumi.Input[str]  # IAM policy allowing exactly this call, JSON
    delay_minutes: int = 0  # after the expiry
    description: str = ""

    @property
    def target_arn(self) -> str:
        return universal_target_arn(self.service, self.api_action)


def scale_group_to_zero_request(group_name: str) -> dict:
    return {"AutoScalingGroupName": group_name, "MinSize": 0, "MaxSize": 0, "DesiredCapacity": 0}


def stop_training_job_request(job_name: str) -> dict:
    return {"TrainingJobName": job_name}


def shut_down_instances_request(group_name: str) -> dict:
    return {
        "DocumentName": "AWS-RunShellScript",
        "Targets": [{"Key": "tag:aws:autoscaling:groupName", "Values": [group_name]}],
        "Parameters": {"commands": ["shutdown -h now"]},
        "Comment": "trainstack auto-teardown: cluster expired",
        "TimeoutSeconds": 600,
    }


def scale_group_to_zero(group_name: pulumi.Input[str], group_arn: pulumi.Input[str]) -> TeardownAction:
    return TeardownAction(
        key="scale-to-zero",
        service="autoscaling",
        api_action="updateAutoScalingGroup",
        input=pulumi.Output.from_input(group_name).apply(lambda n: json.dumps(scale_group_to_zero_request(n))),
        policy=pulumi.Output.from_input(group_arn).apply(lambda a: json.dumps(docs.scale_group_to_zero(a))),
        description="trainstack: cluster expired, scale the GPU group to zero",
    )


def stop_training_job(job_name: pulumi.Input[str], job_arn: pulumi.Input[str]) -> TeardownAction:
    return TeardownAction(
        key="stop-training-job",
        service="sagemaker",
        api_action="stopTrainingJob",
        input=pulumi.Output.from_input(job_name).apply(lambda n: json.dumps(stop_training_job_request(n))),
        policy=pulumi.Output.from_input(job_arn).apply(lambda a: json.dumps(docs.stop_training_job(a))),
        description="trainstack: cluster expired, stop the training job",
    )


def shut_down_group_instances(
    group_name: pulumi.Input[str], region: str, account_id: str, delay_minutes: int = 15
) -> TeardownAction:
    """Backstop for ECS: instances protected from scale-in by ECS (a task still runs) shut down."""

    def policy(name: str) -> str:
        return json.dumps(docs.send_shutdown_command(name, region, account_id))

    return TeardownAction(
        key="shut-down-instances",
        service="ssm",
        api_action="sendCommand",
        input=pulumi.Output.from_input(group_name).apply(lambda n: json.dumps(shut_down_instances_request(n))),
        policy=pulumi.Output.from_input(group_name).apply(policy),
        delay_minutes=delay_minutes,
        description="trainstack: cluster expired, shut down instances still held by running tasks",
    )


@dataclass(frozen=True)
class NodeGroupToStop:
    key: str  # e.g. "p3-2xlarge" or "system"
    cluster_name: pulumi.Input[str]
    nodegroup_name: pulumi.Input[str]
    nodegroup_arn: pulumi.Input[str]
    max_size: int
    taint: bool = True  # GPU groups: a NoSchedule taint keeps Cluster Autoscaler from scaling back up
    # The group's Auto Scaling group: with it the teardown also takes the group from Cluster Autoscaler
    # (deletes its `k8s.io/cluster-autoscaler/<cluster>` tag; eks_request.release_from_autoscaler_request).
    asg_name: pulumi.Input[str] | None = None


def _scale_to_zero_request(g: NodeGroupToStop) -> Callable[[list[Any]], str]:
    from trainstack.model.eks_request import scale_node_group_to_zero_request

    def request(names: list[Any]) -> str:
        return json.dumps(scale_node_group_to_zero_request(names[0], names[1], g.max_size, taint=g.taint))

    return request


def _universal_input(action: TeardownAction) -> Callable[[str], str]:
    """The API request in the universal target's casing (PascalCase members: see
    trainstack/model/scheduler_input.py; without it an eks call fails on "missing ClusterName")."""

    def convert(text: str) -> str:
        return json.dumps(to_universal(action.service, action.api_action, json.loads(text)))

    return convert


def _release_request(g: NodeGroupToStop) -> Callable[[list[Any]], str]:
    from trainstack.model.eks_request import release_from_autoscaler_request

    return lambda names: json.dumps(release_from_autoscaler_request(names[1], names[0]))


def scale_node_groups_to_zero(
    groups: list[NodeGroupToStop],
    backstop_minutes: int = 15,
    *,
    region: str | None = None,
    account_id: str | None = None,
) -> tuple[TeardownAction, ...]:
    """eks: one `eks:updateNodegroupConfig` per node group at expiry, repeated `backstop_minutes`
    later (a call made while the group is still UPDATING, or a pod that slipped through, gets a
    second chance); for a group with `asg_name` also an `autoscaling:deleteTags` of its Cluster
    Autoscaler tag (needs `region` and `account_id`). Each kind of action carries one grant: these
    node groups (these Auto Scaling groups, that one tag), nothing else."""
    from trainstack.model.eks_request import autoscaler_owner_tag

    policy = pulumi.Output.all(*[g.nodegroup_arn for g in groups]).apply(
        lambda arns: json.dumps(docs.scale_node_groups_to_zero(list(arns)))
    )
    owned = [g for g in groups if g.asg_name is not None]
    if owned and (region is None or account_id is None):
        raise ValueError("region and account_id are needed to release Auto Scaling groups from Cluster Autoscaler")
    release_policy = pulumi.Output.all(owned[0].cluster_name if owned else "", *[g.asg_name for g in owned]).apply(
        lambda a: (
            json.dumps(
                docs.release_groups_from_autoscaler(
                    list(a[1:]), autoscaler_owner_tag(a[0]), str(region), str(account_id)
                )
            )
            if len(a) > 1
            else "{}"
        )
    )
    actions = []
    for delay, suffix in ((0, ""), (backstop_minutes, "-again")):
        for g in owned:
            actions.append(
                TeardownAction(
                    key=f"release-from-autoscaler-{g.key}{suffix}",
                    service="autoscaling",
                    api_action="deleteTags",
                    input=pulumi.Output.all(g.cluster_name, g.asg_name).apply(_release_request(g)),
                    policy=release_policy,
                    delay_minutes=delay,
                    description=f"trainstack: cluster expired, take node group {g.key} from Cluster Autoscaler"
                    + (" (backstop)" if delay else ""),
                )
            )
        for g in groups:
            request = pulumi.Output.all(g.cluster_name, g.nodegroup_name).apply(_scale_to_zero_request(g))
            actions.append(
                TeardownAction(
                    key=f"scale-to-zero-{g.key}{suffix}",
                    service="eks",
                    api_action="updateNodegroupConfig",
                    input=request,
                    policy=policy,
                    delay_minutes=delay,
                    description=f"trainstack: cluster expired, scale node group {g.key} to zero"
                    + (" (backstop)" if delay else ""),
                )
            )
    return tuple(actions)


@dataclass(frozen=True)
class AutoTeardownArgs:
    # When the actions fire (timezone-aware; schedules are written in UTC, whole seconds).
    expires_at: dt.datetime
    # What to call at expires_at (+ each action's delay): build them with scale_group_to_zero,
    # stop_training_job, shut_down_group_instances, scale_node_groups_to_zero or TeardownAction itself.
    actions: tuple[TeardownAction, ...]
    # The AWS account: the schedules' role trusts EventBridge Scheduler of this account only.
    account_id: str
    # Tags on the role.
    tags: Mapping[str, str] = field(default_factory=dict)
    # Times Scheduler retries a failed call (within six hours).
    retry_attempts: int = 10
    # The AWS partition of the region the schedules live in ("aws", "aws-cn", "aws-us-gov": docs.partition_of).
    partition: str = "aws"
    # The platform's schedule group and dead-letter queue (components/teardown_alerts.py): a call that still
    # fails after the retries lands in the queue instead of vanishing. None (or an Output of None): the
    # default group, no queue.
    group_name: pulumi.Input[str | None] = None
    dead_letter_queue_arn: pulumi.Input[str | None] = None

    def __post_init__(self):
        if not isinstance(self.expires_at, dt.datetime) or self.expires_at.tzinfo is None:
            raise ValueError(f"expires_at = {self.expires_at!r}: must be a timezone-aware datetime (UTC)")
        if not self.actions:
            raise ValueError("actions is empty: AutoTeardown needs at least one action")
        keys = [a.key for a in self.actions]
        if len(set(keys)) != len(keys):
            repeated = sorted({k for k in keys if keys.count(k) > 1})
            raise ValueError(f"actions: keys {repeated} repeat; teardown action keys must be unique")
        # RetryPolicy.MaximumRetryAttempts: 0-185 (botocore's scheduler service model).
        if not 0 <= self.retry_attempts <= 185:
            raise ValueError(f"retry_attempts = {self.retry_attempts}: must be between 0 and 185")


class AutoTeardown(pulumi.ComponentResource):
    role: aws.iam.Role
    schedules: dict[str, aws.scheduler.Schedule]

    def __init__(self, name: str, args: AutoTeardownArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:lifecycle:AutoTeardown", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            description="trainstack auto-teardown: may only turn this stack's compute off",
            assume_role_policy=json.dumps(docs.assume_role("scheduler.amazonaws.com", source_account=args.account_id)),
            tags=args.tags,
            opts=child,
        )
        dlq = pulumi.Output.from_input(args.dead_letter_queue_arn)
        policy = pulumi.Output.all(dlq, *[a.policy for a in args.actions]).apply(
            lambda a: json.dumps(
                docs.merge(*[json.loads(t) for t in a[1:]], *([docs.send_to_dead_letter_queue(a[0])] if a[0] else []))
            )
        )
        role_policy = aws.iam.RolePolicy(f"{name}-policy", role=self.role.id, policy=policy, opts=child)

        self.schedules = {}
        for action in args.actions:
            when = args.expires_at + dt.timedelta(minutes=action.delay_minutes)
            self.schedules[action.key] = aws.scheduler.Schedule(
                f"{name}-{action.key}",
                description=action.description or f"trainstack teardown: {action.key}",
                schedule_expression=at_expression(when),
                schedule_expression_timezone="UTC",
                group_name=args.group_name,
                flexible_time_window={"mode": "OFF"},
                action_after_completion="NONE",  # see the module docstring: DELETE breaks the next `up`
                state="ENABLED",
                target={
                    "arn": universal_target_arn(action.service, action.api_action, args.partition),
                    "role_arn": self.role.arn,
                    "input": pulumi.Output.from_input(action.input).apply(_universal_input(action)),
                    "retry_policy": {
                        "maximum_retry_attempts": args.retry_attempts,
                        "maximum_event_age_in_seconds": 6 * 3600,
                    },
                    # Scheduler sends it with the schedule's role (Scheduler User Guide, "Configuring a
                    # schedule's dead-letter queue"), hence the role's SendMessage grant above.
                    "dead_letter_config": dlq.apply(lambda arn: {"arn": arn} if arn else None),
                },
                # The role must be able to act before the schedule can fire.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
            )
        self.register_outputs({"schedules": {k: s.name for k, s in self.schedules.items()}, "roleArn": self.role.arn})
