"""TeardownAlerts: failed teardown calls do not vanish (platform stack, long-lived).

Every cluster's teardown schedules run in this schedule group and send what finally failed (after their
retries) to this dead-letter queue; the idle-stop rules of eks clusters send theirs too. One alarm watches
the group's Scheduler failure counts and the queue's depth and notifies the alerts topic, which people
subscribe to (`aws sns subscribe --topic-arn <alertsTopicArn> --protocol email ...`).

The queue lives here, not in the clusters: it outlives the cluster whose teardown failed, so its messages
(the target, the error, the request) can still be read, and a cluster stack holds no data store (policy
`cluster-holds-no-data`).

Cost: nothing while nothing fails (an SQS queue and an SNS topic bill per request; the schedule group is
free) plus one CloudWatch alarm over four metrics ($0.10 per metric-month).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from trainstack.model import iam_documents as docs
from trainstack.model import idle_stop
from trainstack.model.teardown_alerts import RETENTION_SECONDS, failure_metrics, pulumi_metric_queries


@dataclass(frozen=True)
class TeardownAlertsArgs:
    # Where the queue and group live: clusters must run in the same region (their schedules reference them).
    region: str
    # The account whose EventBridge idle-stop rules may send to the queue.
    account_id: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # EventBridge rules named with this prefix may send their failed invocations to the queue.
    rule_prefix: str = idle_stop.RULE_PREFIX

    def __post_init__(self):
        if not self.rule_prefix:
            raise ValueError("rule_prefix is empty: the queue would admit every EventBridge rule of the account")


class TeardownAlerts(pulumi.ComponentResource):
    schedule_group: aws.scheduler.ScheduleGroup
    queue: aws.sqs.Queue
    topic: aws.sns.Topic
    alarm: aws.cloudwatch.MetricAlarm

    def __init__(self, name: str, args: TeardownAlertsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:lifecycle:TeardownAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.schedule_group = aws.scheduler.ScheduleGroup(f"{name}-schedules", tags=args.tags, opts=child)
        self.queue = aws.sqs.Queue(
            f"{name}-dlq",
            # SQS-owned encryption keys: neither Scheduler nor EventBridge needs a KMS grant to send.
            sqs_managed_sse_enabled=True,
            message_retention_seconds=RETENTION_SECONDS,
            tags=args.tags,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.queue.url,
            policy=self.queue.arn.apply(
                lambda arn: json.dumps(
                    docs.dead_letter_queue_policy(
                        arn, region=args.region, account_id=args.account_id, rule_prefix=args.rule_prefix
                    )
                )
            ),
            opts=child,
        )
        # No KMS key on the topic: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
        # SNS key, and a customer key would need the data lake key's policy opened to CloudWatch. The messages
        # carry an alarm's name and reason, nothing secret. Its default access policy (this account only) lets
        # the account's alarms publish.
        self.topic = aws.sns.Topic(f"{name}-alerts", tags=args.tags, opts=child)
        self.alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-failures",
            alarm_description=self.queue.name.apply(
                lambda q: (
                    "trainstack: a cluster teardown call failed; read the dead-letter queue "
                    f"{q} for which and why (docs/backends.md)"
                )
            ),
            metric_queries=pulumi.Output.all(self.schedule_group.name, self.queue.name).apply(
                lambda a: pulumi_metric_queries(failure_metrics(a[0], a[1]))
            ),
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data="notBreaching",  # Scheduler reports these counts only when something happens
            alarm_actions=[self.topic.arn],
            tags=args.tags,
            opts=child,
        )
        self.register_outputs(
            {
                "scheduleGroup": self.schedule_group.name,
                "deadLetterQueueArn": self.queue.arn,
                "alertsTopicArn": self.topic.arn,
            }
        )
