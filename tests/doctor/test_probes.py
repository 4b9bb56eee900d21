"""`--probe` on moto: the teardown's universal targets fired by a minimal stand-in for EventBridge Scheduler
(moto stores schedules but never fires them), the artifact PUT, and cleanup on success, on a failing call,
on a real SIGINT, and when a removal fails."""

from __future__ import annotations

import json
import os
import signal
import threading

import boto3
from botocore.exceptions import ClientError

from tests.doctor.fakes import answer, error
from trainstack.doctor.context import PlatformOutputs
from trainstack.doctor.probes import Clock, run_probes
from trainstack.doctor.result import Report, Status
from trainstack.model.scheduler_input import from_universal

REGION = "us-east-1"


class FiringScheduler(threading.Thread):
    """Fires each probe schedule once, at once: calls its universal target's API with the schedule's input
    (mapped back to botocore's member names, as trainstack.model.scheduler_input does), sends a failure to
    the schedule's dead-letter queue as a message with ERROR_CODE/ERROR_MESSAGE attributes, then deletes the
    schedule (ActionAfterCompletion DELETE)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.fired: list[str] = []

    def run(self):
        scheduler = boto3.client("scheduler", region_name=REGION)
        while not self.stop.wait(0.05):
            for s in scheduler.list_schedules().get("Schedules", []):
                got = scheduler.get_schedule(Name=s["Name"])
                target = got["Target"]
                service, api = target["Arn"].split(":")[-2:]
                request, wrong = from_universal(service, api, json.loads(target["Input"]))
                assert not wrong, wrong
                client = boto3.client(service, region_name=REGION)
                method = {v: k for k, v in client.meta.method_to_api_mapping.items()}[api[0].upper() + api[1:]]
                try:
                    getattr(client, method)(**request)
                except ClientError as exc:
                    sqs = boto3.client("sqs", region_name=REGION)
                    url = sqs.get_queue_url(QueueName=target["DeadLetterConfig"]["Arn"].rsplit(":", 1)[-1])["QueueUrl"]
                    attrs = {
                        "ERROR_CODE": exc.response["Error"]["Code"],
                        "ERROR_MESSAGE": exc.response["Error"].get("Message", ""),
                        "TARGET_ARN": target["Arn"],
                        "SCHEDULE_ARN": got["Arn"],
                    }
                    sqs.send_message(
                        QueueUrl=url,
                        MessageBody="{}",
                        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()},
                    )
                self.fired.append(target["Arn"])
                try:  # a one-time schedule is gone after it fires (ActionAfterCompletion DELETE)
                    scheduler.delete_schedule(Name=s["Name"])
                except scheduler.exceptions.ResourceNotFoundException:
                    pass  # the probe's own cleanup removed it first, as it may on AWS too


def _platform(ctx):
    ec2, s3, kms = (boto3.client(n, region_name=REGION) for n in ("ec2", "s3", "kms"))
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    key = kms.create_key()["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket="lake-artifacts")
    s3.put_bucket_versioning(Bucket="lake-artifacts", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket="lake-artifacts",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]
        },
    )
    ctx.platform = PlatformOutputs(
        "organization/trainstack/platform",
        {
            "region": REGION,
            "subnetIds": [subnet],
            "buckets": {
                "raw": {"name": "lake-raw", "arn": "arn:aws:s3:::lake-raw"},
                "artifacts": {"name": "lake-artifacts", "arn": "arn:aws:s3:::lake-artifacts"},
            },
            "kmsKeyArn": key,
        },
    )


def _nothing_left():
    """Every kind of probe resource, listed from moto."""
    left = []
    left += [
        r["RoleName"]
        for r in boto3.client("iam").list_roles()["Roles"]
        if r["RoleName"].startswith("trainstack-probe-")
    ]
    left += boto3.client("sqs", region_name=REGION).list_queues().get("QueueUrls", [])
    left += [
        g["AutoScalingGroupName"]
        for g in boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups()["AutoScalingGroups"]
    ]
    left += [
        t["LaunchTemplateName"]
        for t in boto3.client("ec2", region_name=REGION).describe_launch_templates()["LaunchTemplates"]
    ]
    left += [s["Name"] for s in boto3.client("scheduler", region_name=REGION).list_schedules()["Schedules"]]
    versions = boto3.client("s3").list_object_versions(Bucket="lake-artifacts")
    left += [v["Key"] for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])]
    return left


FAST = Clock(sleep=lambda s: threading.Event().wait(min(s, 0.05)))


def test_dev_ecs_targets_fire_the_planned_input_and_everything_is_removed(make_ctx):
    ctx = make_ctx("dev-ecs")
    _platform(ctx)
    firing = FiringScheduler()
    firing.start()
    report = Report("dev-ecs")
    try:
        run_probes(ctx, report, timeout=30, poll=0.05, clock=FAST)
    finally:
        firing.stop.set()
    by_name = {c.name: c for c in report.checks}
    assert by_name["artifact PUT (code bundle headers)"].status is Status.PASS, by_name
    assert "SSE-KMS under the lake key" in by_name["artifact PUT (code bundle headers)"].detail
    assert by_name["teardown target autoscaling:updateAutoScalingGroup"].status is Status.PASS
    assert by_name["teardown target ssm:sendCommand"].status is Status.PASS
    assert by_name["probe cleanup"].status is Status.PASS
    assert sorted(firing.fired) == [
        "arn:aws:scheduler:::aws-sdk:autoscaling:updateAutoScalingGroup",
        "arn:aws:scheduler:::aws-sdk:ssm:sendCommand",
    ]
    assert report.leftovers == [] and _nothing_left() == []


def test_an_absent_eks_node_group_answering_not_found_proves_the_input_and_the_grant(make_ctx):
    ctx = make_ctx("dev-eks")
    _platform(ctx)
    firing = FiringScheduler()
    firing.start()
    report = Report("dev-eks")
    try:
        run_probes(ctx, report, timeout=30, poll=0.05, clock=FAST)
    finally:
        firing.stop.set()
    target = next(c for c in report.checks if c.name == "teardown target eks:updateNodegroupConfig")
    assert target.status is Status.PASS and "ResourceNotFoundException" in target.detail
    assert _nothing_left() == []


def test_a_failing_call_still_removes_what_was_made(make_ctx):
    ctx = make_ctx("dev-ecs")
    _platform(ctx)

    def refuse(p):
        raise error("AccessDenied", "not authorized to perform iam:CreateRole")

    answer(ctx.aws.client("iam"), "CreateRole", refuse)
    report = Report("dev-ecs")
    run_probes(ctx, report, timeout=5, poll=0.05, clock=FAST)
    failed = next(c for c in report.checks if c.name == "probes")
    assert failed.status is Status.FAIL and "AccessDenied" in failed.detail
    assert next(c for c in report.checks if c.name == "probe cleanup").status is Status.PASS
    assert _nothing_left() == []  # the artifact object and the dead-letter queue made before it are gone


def test_a_real_sigint_while_waiting_removes_everything(sigint_raises, make_ctx):
    ctx = make_ctx("dev-ecs")
    _platform(ctx)
    report = Report("dev-ecs")
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        # Nothing fires on moto, so the probe waits for its traces, polling every 0.05 s: the signal arrives at
        # its first wait (a real SIGINT to this process, not a raised exception), instead of after a 1 s timer.
        waits.append(seconds)
        if seconds == 0.05:
            os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait(min(seconds, 0.05))

    run_probes(ctx, report, timeout=30, poll=0.05, clock=Clock(sleep=sleep))
    assert waits and waits[-1] == 0.05  # interrupted while waiting for the traces
    assert report.interrupted and report.exit_code == 130
    assert _nothing_left() == []


def test_what_cannot_be_removed_is_listed(make_ctx):
    ctx = make_ctx("dev-ecs")
    _platform(ctx)

    def refuse(p):
        raise error("AccessDenied", "not authorized to perform sqs:DeleteQueue")

    answer(ctx.aws.client("sqs"), "DeleteQueue", refuse)
    report = Report("dev-ecs")
    run_probes(ctx, report, timeout=0.2, poll=0.05, clock=Clock(sleep=lambda s: None))
    assert len(report.leftovers) == 1 and report.leftovers[0].startswith("SQS queue trainstack-probe-")
    assert not report.ready
    assert next(c for c in report.checks if c.name == "probe cleanup").status is Status.FAIL
