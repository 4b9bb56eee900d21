"""`trainstack doctor --probe`: settle with real calls what no read-only check can, using throwaway, free
or near-free resources that are always removed. Nothing starts an instance, let alone a GPU.

- **Teardown targets.** For each EventBridge Scheduler universal target the stack's teardown uses
  (`autoscaling:updateAutoScalingGroup`, `ssm:sendCommand`, `sagemaker:stopTrainingJob`,
  `eks:updateNodegroupConfig`), a one-time schedule fires the planned input (same casing, same shape,
  retargeted at a probe resource) through a role holding the product's own grant for it
  (trainstack.model.iam_documents). The ASG targets hit a real empty group (min=max=desired=0 after
  MaxSize 1, a t3.micro launch template: free while empty): the group's MaxSize turning 0 confirms
  the call ran; `ssm:sendCommand` aims its tag target at that group, so it runs on zero instances and
  is confirmed by `ssm:ListCommands`. The SageMaker and EKS targets cannot be had free, so they aim at a
  job / node group that does not exist: the schedule's dead-letter queue (SQS) receives the target's
  error, and "not found" proves the input was accepted and the role may call it, while AccessDenied or
  a validation error names the fault. The schedules use `ActionAfterCompletion: DELETE` (fine for a
  probe; the product's own schedules must not) and no retries.
- **Artifact PUT.** A small object PUT into the run's artifact prefix (`.../code/`) with the headers the
  code bundle's upload sends (Content-Type application/gzip, the standard tags, no SSE header), then
  read back: the bucket's default encryption must be SSE-KMS with the lake key. Every version is deleted.

Every resource carries the tag `trainstack:probe` (value: its expiry) and a name
`trainstack-probe-<UTC yyyymmddHHMM>-<4 hex>` that says when it was made. Cleanup is registered before
each create (by name, so a create interrupted mid-call is still removed), runs in `finally` — on
success, on a failing call and on Ctrl-C (KeyboardInterrupt; a second Ctrl-C during cleanup is
ignored) — and lists whatever it could not remove.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from trainstack.doctor.aws import error_code, is_access_denied, short_error
from trainstack.doctor.context import Context
from trainstack.doctor.result import Check, Report, failed, passed, skipped
from trainstack.model import iam_documents as docs
from trainstack.model.code_delivery import CODE_FOLDER
from trainstack.model.run_locations import run_locations
from trainstack.model.tags import standard_tags

FAMILY = "probe"
PROBE_TAG = "trainstack:probe"
PROBE_INSTANCE_TYPE = "t3.micro"  # never launched: the group stays at zero
AL2023_AMI = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
FIRE_AFTER = dt.timedelta(seconds=70)
_GONE = (
    "NoSuchEntity",
    "ResourceNotFoundException",
    "NoSuchKey",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def probe_name(now: dt.datetime) -> str:
    return f"trainstack-probe-{now:%Y%m%d%H%M}-{secrets.token_hex(2)}"


class Janitor:
    """Undo steps, registered before each create, run last-in first-out; what fails is a leftover."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, attempts: int = 3):
        self.steps: list[tuple[str, Callable[[], Any]]] = []
        self.sleep, self.attempts = sleep, attempts
        self.removed = 0

    def add(self, what: str, undo: Callable[[], Any]) -> None:
        self.steps.append((what, undo))

    def clean(self) -> list[str]:
        leftovers = []
        while self.steps:
            what, undo = self.steps.pop()
            for attempt in range(1, self.attempts + 1):
                try:
                    undo()
                    self.removed += 1
                    break
                except Exception as exc:  # noqa: BLE001
                    if error_code(exc) in _GONE or "not found" in str(exc).lower():
                        break  # never made, or already gone (a DELETE-after-completion schedule)
                    if attempt == self.attempts:
                        leftovers.append(f"{what}: {short_error(exc)}")
                    else:
                        self.sleep(2.0 * attempt)
        return leftovers


@contextlib.contextmanager
def _sigint_shield(say: Callable[[str], None]) -> Iterator[None]:
    """During cleanup a Ctrl-C must not abandon resources: note it and carry on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        say("cleaning up the probe resources first; they are removed in a few seconds")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class Clock:
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], dt.datetime] = _utcnow


def run_probes(
    ctx: Context,
    report: Report,
    *,
    timeout: float = 240.0,
    poll: float = 5.0,
    clock: Clock | None = None,
    say: Callable[[str], None] = lambda text: None,
) -> None:
    clock = clock or Clock()
    name = probe_name(clock.now())
    janitor = Janitor(clock.sleep)
    checks: list[Check] = []
    try:
        checks.append(_artifact_put(ctx, janitor, name, clock))
        checks.extend(_teardown_targets(ctx, janitor, name, clock, timeout, poll))
    except KeyboardInterrupt:
        report.interrupted = True
        checks.append(skipped(FAMILY, "probes", "interrupted (Ctrl-C): probe resources removed below"))
    except Exception as exc:  # noqa: BLE001 - a failing call: still clean up, and say which call
        checks.append(
            failed(
                FAMILY,
                "probes",
                f"a probe call failed: {short_error(exc)}",
                "the caller needs the permissions the deploy needs (see the permission checks); run again",
            )
        )
    finally:
        with _sigint_shield(say):
            leftovers = janitor.clean()
    report.extend(checks)
    report.leftovers.extend(leftovers)
    if leftovers:
        report.extend(
            [
                failed(
                    FAMILY,
                    "probe cleanup",
                    f"{len(leftovers)} probe resource(s) could not be removed (listed below)",
                    f"remove them by hand; all carry the tag {PROBE_TAG} and start with trainstack-probe-",
                )
            ]
        )
    else:
        report.extend([passed(FAMILY, "probe cleanup", f"every probe resource removed ({janitor.removed})")])


# ---------------------------------------------------------------------------------------------
# The artifact PUT


def _expiry(clock: Clock, hours: int = 1) -> str:
    return (clock.now() + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _delete_versions(s3: Any, bucket: str, key: str) -> None:
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key)
    for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
        if v["Key"] == key:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])


def _artifact_put(ctx: Context, janitor: Janitor, name: str, clock: Clock) -> Check:
    what = "artifact PUT (code bundle headers)"
    c = ctx.facts.cfg.cluster
    if ctx.platform is None:
        return skipped(FAMILY, what, "platform outputs unreadable")
    loc = run_locations(ctx.platform.buckets, c.job.dataset, c.owner, ctx.facts.stack)
    bucket, key = loc.artifacts_bucket, f"{loc.artifact_prefix}{CODE_FOLDER}{name}.tar.gz"
    s3 = ctx.aws.client("s3")
    janitor.add(f"s3://{bucket}/{key} (every version)", lambda: _delete_versions(s3, bucket, key))
    tags = {**standard_tags(ctx.facts.cfg), PROBE_TAG: _expiry(clock)}
    try:
        # What the provider's PutObject of the code bundle carries: Content-Type and x-amz-tagging, no SSE.
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=gzip.compress(b"trainstack doctor probe\n", mtime=0),
            ContentType="application/gzip",
            Tagging=urlencode(tags),
        )
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001
        return failed(
            FAMILY,
            what,
            f"s3://{bucket}/{key}: {short_error(exc)}",
            "allow s3:PutObject and s3:PutObjectTagging on the artifact prefix and kms:GenerateDataKey on the "
            "lake key" + (" (the bucket policy denies other encryption headers)" if is_access_denied(exc) else ""),
        )
    sse, key_id = head.get("ServerSideEncryption"), head.get("SSEKMSKeyId", "")
    lake_key = ctx.platform.kms_key_arn
    if sse != "aws:kms" or (key_id and lake_key and key_id.split("/")[-1] != lake_key.split("/")[-1]):
        return failed(
            FAMILY,
            what,
            f"the object was stored with {sse or 'no'} encryption{f' under {key_id}' if key_id else ''}, not the "
            f"lake key {lake_key}",
            "set the artifacts bucket's default encryption to SSE-KMS with the lake key (redeploy the platform)",
        )
    return passed(FAMILY, what, f"s3://{bucket}/{key}: written with SSE-KMS under the lake key, then deleted")


# ---------------------------------------------------------------------------------------------
# The teardown's universal targets


@dataclass
class Names:
    probe: str
    region: str
    account: str
    group: str = ""
    group_arn: str = ""


def _retarget(target: str, data: dict[str, Any], n: Names) -> dict[str, Any]:
    """The planned input with the stack's resource swapped for the probe's (everything else as planned)."""
    out = json.loads(json.dumps(data))
    if target == "autoscaling:updateAutoScalingGroup":
        out["AutoScalingGroupName"] = n.group
    elif target == "ssm:sendCommand":
        for t in out.get("Targets", []):
            t["Values"] = [n.group]
    elif target == "sagemaker:stopTrainingJob":
        out["TrainingJobName"] = n.probe
    elif target == "eks:updateNodegroupConfig":
        out["ClusterName"], out["NodegroupName"] = n.probe, n.probe
    return out


def _policy(target: str, n: Names) -> dict:
    """The product's own grant for this target, on the probe's resource."""
    if target == "autoscaling:updateAutoScalingGroup":
        return docs.scale_group_to_zero(n.group_arn)
    if target == "ssm:sendCommand":
        return docs.send_shutdown_command(n.group, n.region, n.account)
    if target == "sagemaker:stopTrainingJob":
        return docs.stop_training_job(f"arn:aws:sagemaker:{n.region}:{n.account}:training-job/{n.probe}")
    if target == "eks:updateNodegroupConfig":
        return docs.scale_node_groups_to_zero([f"arn:aws:eks:{n.region}:{n.account}:nodegroup/{n.probe}/{n.probe}/*"])
    raise KeyError(target)


SUPPORTED = (
    "autoscaling:updateAutoScalingGroup",
    "ssm:sendCommand",
    "sagemaker:stopTrainingJob",
    "eks:updateNodegroupConfig",
)
NEEDS_GROUP = ("autoscaling:updateAutoScalingGroup", "ssm:sendCommand")
ABSENT_TARGET = ("sagemaker:stopTrainingJob", "eks:updateNodegroupConfig")  # confirmed by a "not found" error


def _confirmed(ctx: Context, target: str, n: Names, since: dt.datetime) -> bool:
    if target == "autoscaling:updateAutoScalingGroup":
        groups = ctx.aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[n.group])
        return any(g["MaxSize"] == 0 for g in groups["AutoScalingGroups"])
    if target == "ssm:sendCommand":
        listed = ctx.aws.client("ssm").list_commands(
            Filters=[{"key": "InvokedAfter", "value": (since - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}]
        )
        return any(
            n.group in v for cmd in listed.get("Commands", []) for t in cmd.get("Targets", []) for v in t["Values"]
        )
    return False


def _judge(target: str, code: str, message: str) -> tuple[bool, str]:
    """A dead-letter error: (the probe passed, what it means)."""
    text = f"{code} {message}".strip()
    if "AccessDenied" in code or "not authorized" in message:
        return False, f"the teardown role's grant does not allow the call: {text}"
    gone = "not found" in message.lower() or "ResourceNotFound" in code or "does not exist" in message.lower()
    if target in ABSENT_TARGET and gone:
        return (
            True,
            f"the call ran with the planned input and was refused only because the probe target does not exist ({text})",
        )
    return False, f"the target refused the call: {text}"


def _group(ctx: Context, janitor: Janitor, n: Names, expiry: str) -> None:
    """An empty Auto Scaling group: launch template of a small non-GPU type, min=desired=0, MaxSize 1."""
    assert ctx.platform is not None
    ec2, asg = ctx.aws.client("ec2"), ctx.aws.client("autoscaling")
    image = ctx.aws.client("ssm").get_parameter(Name=AL2023_AMI)["Parameter"]["Value"]
    janitor.add(f"launch template {n.group}", lambda: ec2.delete_launch_template(LaunchTemplateName=n.group))
    ec2.create_launch_template(
        LaunchTemplateName=n.group,
        LaunchTemplateData={"ImageId": image, "InstanceType": PROBE_INSTANCE_TYPE},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": PROBE_TAG, "Value": expiry}]}],
    )
    janitor.add(
        f"Auto Scaling group {n.group}",
        lambda: asg.delete_auto_scaling_group(AutoScalingGroupName=n.group, ForceDelete=True),
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=n.group,
        LaunchTemplate={"LaunchTemplateName": n.group, "Version": "$Latest"},
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        VPCZoneIdentifier=",".join(ctx.platform.subnet_ids),
        Tags=[{"Key": PROBE_TAG, "Value": expiry, "PropagateAtLaunch": True}],
    )
    found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[n.group])["AutoScalingGroups"]
    n.group_arn = found[0]["AutoScalingGroupARN"]


def _delete_role(iam: Any, role: str) -> None:
    for policy in iam.list_role_policies(RoleName=role).get("PolicyNames", []):
        iam.delete_role_policy(RoleName=role, PolicyName=policy)
    iam.delete_role(RoleName=role)


def _teardown_targets(
    ctx: Context, janitor: Janitor, name: str, clock: Clock, timeout: float, poll: float
) -> list[Check]:
    facts = ctx.facts
    targets = facts.universal_targets
    if not targets:
        return [skipped(FAMILY, "teardown targets", "the stack has no teardown schedule")]
    assert ctx.identity is not None
    checks = [
        skipped(FAMILY, f"teardown target {t}", "the doctor has no probe for this target")
        for t in targets
        if t not in SUPPORTED
    ]
    targets = tuple(t for t in targets if t in SUPPORTED)
    if any(t in NEEDS_GROUP for t in targets) and ctx.platform is None:
        return checks + [
            skipped(FAMILY, "teardown targets", "platform outputs unreadable (the probe group needs its subnets)")
        ]
    planned: dict[str, Any] = {}
    for s in facts.schedules:
        planned.setdefault(s.target, s)
    n = Names(name, facts.region, ctx.identity.account, group=f"{name}-asg")
    expiry = _expiry(clock)
    iam, sqs, scheduler = ctx.aws.client("iam"), ctx.aws.client("sqs"), ctx.aws.client("scheduler")

    queue = f"{name}-dlq"
    janitor.add(f"SQS queue {queue}", lambda: sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"]))
    url = sqs.create_queue(QueueName=queue, tags={PROBE_TAG: expiry})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    role = f"{name}-scheduler"
    janitor.add(f"IAM role {role}", lambda: _delete_role(iam, role))
    role_arn = iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(docs.assume_role("scheduler.amazonaws.com", source_account=n.account)),
        Description="trainstack doctor probe: fires the teardown's universal targets once",
        Tags=[{"Key": PROBE_TAG, "Value": expiry}],
    )["Role"]["Arn"]
    if any(t in NEEDS_GROUP for t in targets):
        _group(ctx, janitor, n, expiry)
    dlq = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "DeadLetters", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": dlq_arn}],
    }
    policy = docs.merge(*(_policy(t, n) for t in targets), dlq)
    iam.put_role_policy(RoleName=role, PolicyName="probe", PolicyDocument=json.dumps(policy))

    started = clock.now()
    when = started + FIRE_AFTER
    schedules: dict[str, str] = {}
    for i, target in enumerate(targets):
        schedule = f"{name}-{i}"
        schedules[schedule] = target
        janitor.add(f"schedule {schedule}", _deleter(scheduler, schedule))
        _create_schedule(
            scheduler,
            clock,
            Name=schedule,
            Description=f"trainstack doctor probe of {target}",
            ScheduleExpression=f"at({when:%Y-%m-%dT%H:%M:%S})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            State="ENABLED",
            Target={
                "Arn": f"arn:aws:scheduler:::aws-sdk:{target}",
                "RoleArn": role_arn,
                "Input": json.dumps(_retarget(target, dict(planned[target].input), n)),
                "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60},
                "DeadLetterConfig": {"Arn": dlq_arn},
            },
        )
    return checks + _await(ctx, targets, schedules, n, url, started, clock, timeout, poll)


def _deleter(scheduler: Any, schedule: str) -> Callable[[], Any]:
    return lambda: scheduler.delete_schedule(Name=schedule)


def _create_schedule(scheduler: Any, clock: Clock, **request: Any) -> None:
    """A just-created role takes a few seconds to be assumable: CreateSchedule refuses it until then."""
    for attempt in range(8):
        try:
            scheduler.create_schedule(**request)
            return
        except Exception as exc:
            if error_code(exc) != "ValidationException" or attempt == 7:
                raise
            clock.sleep(5.0)


def _await(
    ctx: Context,
    targets: tuple[str, ...],
    schedules: dict[str, str],
    n: Names,
    queue_url: str,
    started: dt.datetime,
    clock: Clock,
    timeout: float,
    poll: float,
) -> list[Check]:
    sqs = ctx.aws.client("sqs")
    results: dict[str, Check] = {}
    deadline = clock.monotonic() + timeout
    while len(results) < len(targets) and clock.monotonic() < deadline:
        for target in targets:
            if target not in results and target not in ABSENT_TARGET and _confirmed(ctx, target, n, started):
                results[target] = passed(
                    FAMILY, f"teardown target {target}", "the schedule fired the planned input and the target changed"
                )
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        for m in messages:
            attrs = {k: v.get("StringValue", "") for k, v in (m.get("MessageAttributes") or {}).items()}
            blob = json.dumps(attrs) + m.get("Body", "")
            found = next((t for s, t in schedules.items() if s in blob), None)
            found = found or next((t for t in targets if t.split(":")[1] in attrs.get("TARGET_ARN", "")), None)
            if found is None or found in results:
                continue
            target = found
            ok, meaning = _judge(
                target, attrs.get("ERROR_CODE", ""), attrs.get("ERROR_MESSAGE", "") or m.get("Body", "")
            )
            name = f"teardown target {target}"
            results[target] = (
                passed(FAMILY, name, meaning)
                if ok
                else failed(
                    FAMILY,
                    name,
                    meaning,
                    "the expiry teardown would fail the same way: fix the grant in trainstack/model/iam_documents.py "
                    "or the input in trainstack/model/scheduler_input.py, and report it",
                )
            )
        if len(results) < len(targets):
            clock.sleep(poll)
    for target in targets:
        if target not in results:
            results[target] = failed(
                FAMILY,
                f"teardown target {target}",
                f"the probe schedule did not fire (or left no trace) within {timeout:.0f} s",
                "check that EventBridge Scheduler is available in the region and the caller may create schedules; "
                "run the probe again",
            )
    return [results[t] for t in targets]
