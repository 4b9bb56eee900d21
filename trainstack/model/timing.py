"""Time to first GPU: how long `pulumi up` takes and when training starts (pure arithmetic).

The input is the dependency graph of a plan (each resource's explicit dependencies plus its
parent: the SDK registers a child only once its parent's URN is known, i.e. once a custom parent
exists; a component parent costs nothing and is "done" when all its children are). Each custom
resource takes the typical create time of its type; the longest chain is `up`'s critical path.
After `up`, the backend still has to get a GPU instance running the job: those phases follow.

The figures are typical values, each with where it comes from; they are estimates, not promises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from trainstack import backends
from trainstack.backends import Phase

# type token -> (typical create seconds, source)
CREATE_SECONDS: dict[str, tuple[float, str]] = {
    "aws:eks/cluster:Cluster": (
        600,
        "EKS control plane: ~10 min (AWS EKS user guide, 'Create a cluster'; "
        "terraform-aws-eks default create timeout 30 min)",
    ),
    "aws:eks/nodeGroup:NodeGroup": (180, "EKS managed node group: ~3 min to ACTIVE (AWS EKS user guide)"),
    "aws:eks/addon:Addon": (60, "EKS add-on: ~1 min to ACTIVE"),
    "aws:autoscaling/group:Group": (
        20,
        "Auto Scaling group API create; wait_for_capacity_timeout=0, so up does not wait for instances",
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": (2, "EC2 CreateLaunchTemplate: synchronous"),
    "aws:iam/role:Role": (3, "IAM CreateRole: synchronous"),
    "aws:iam/instanceProfile:InstanceProfile": (
        10,
        "IAM propagation: the AWS provider waits for a new instance "
        "profile to be usable (IAM is eventually consistent)",
    ),
    "aws:iam/rolePolicy:RolePolicy": (3, "IAM PutRolePolicy + propagation"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (3, "IAM AttachRolePolicy + propagation"),
    "aws:ecs/cluster:Cluster": (5, "ECS CreateCluster"),
    "aws:ecs/capacityProvider:CapacityProvider": (5, "ECS CreateCapacityProvider"),
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": (
        10,
        "ECS PutClusterCapacityProviders (waits for the cluster update)",
    ),
    "aws:ecs/taskDefinition:TaskDefinition": (2, "ECS RegisterTaskDefinition"),
    "aws:sagemaker/trainingJob:TrainingJob": (15, "SageMaker CreateTrainingJob returns once the job is accepted"),
    "aws:scheduler/schedule:Schedule": (2, "EventBridge Scheduler CreateSchedule"),
    "aws:cloudwatch/logGroup:LogGroup": (2, "CloudWatch Logs CreateLogGroup"),
    "aws:ec2/placementGroup:PlacementGroup": (3, "EC2 CreatePlacementGroup"),
    "aws:ec2/vpc:Vpc": (5, "EC2 CreateVpc until available"),
    "aws:ec2/subnet:Subnet": (3, "EC2 CreateSubnet"),
    "aws:ec2/natGateway:NatGateway": (120, "NAT gateway: 1-2 min to available (Amazon VPC user guide)"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": (10, "Gateway VPC endpoint to available"),
    "aws:s3/bucket:Bucket": (3, "S3 CreateBucket"),
    "aws:kms/key:Key": (5, "KMS CreateKey"),
    "aws:glue/catalogDatabase:CatalogDatabase": (2, "Glue CreateDatabase"),
    # Teardown alerts (platform) and the idle stop (eks dedicated clusters).
    "aws:sqs/queue:Queue": (
        30,
        "SQS CreateQueue, then terraform-provider-aws sqs waits until GetQueueAttributes shows the attributes "
        "6 times in a row, 5 s apart (internal/service/sqs/wait.go; attributes take up to 60 s to propagate)",
    ),
    "aws:sqs/queuePolicy:QueuePolicy": (
        30,
        "SQS SetQueueAttributes(Policy) and the same propagation wait as the queue",
    ),
    "aws:sns/topic:Topic": (3, "SNS CreateTopic: synchronous"),
    "aws:sns/topicPolicy:TopicPolicy": (3, "SNS SetTopicAttributes(Policy): synchronous"),
    "aws:scheduler/scheduleGroup:ScheduleGroup": (3, "EventBridge Scheduler CreateScheduleGroup until ACTIVE"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (2, "CloudWatch PutMetricAlarm: synchronous"),
    "aws:cloudwatch/eventRule:EventRule": (3, "EventBridge PutRule: synchronous"),
    "aws:cloudwatch/eventTarget:EventTarget": (3, "EventBridge PutTargets: synchronous"),
    "aws:sfn/stateMachine:StateMachine": (
        10,
        "Step Functions CreateStateMachine; the provider retries while its new role is not yet assumable (IAM "
        "propagation, seconds)",
    ),
}
CREATE_SECONDS["pulumi:pulumi:StackReference"] = (1, "reads the platform stack's outputs from the backend")
DEFAULT_CREATE = (3.0, "a synchronous AWS API call")

# Image pull: download from ECR in the same region plus layer extraction, per GiB compressed.
PULL_SECONDS_PER_GIB = 20.0
PULL_SOURCE = "ECR pull ~100 MB/s plus extraction: ~20 s per GiB compressed"
# Compressed sizes of images whose size is known (AWS Deep Learning Containers, PyTorch GPU training).
IMAGE_GIB: tuple[tuple[re.Pattern, float, str], ...] = (
    (
        re.compile(r"763104351884\.dkr\.ecr\.[^/]+/pytorch-training:.*gpu"),
        10.0,
        "AWS DLC pytorch-training GPU images: ~10 GiB compressed",
    ),
)
DEFAULT_IMAGE_GIB = (5.0, "image size unknown: assumed 5 GiB compressed")


@dataclass(frozen=True)
class Node:
    """A registered resource as the timing estimate sees it: its URN, type, name, parent and what it waits for."""

    urn: str
    type: str
    name: str
    parent: str = ""
    dependencies: tuple[str, ...] = ()
    custom: bool = True


@dataclass(frozen=True)
class Step:
    """One create or phase on the way to training, with its duration and when it finishes."""

    name: str
    type: str
    seconds: float
    finish: float  # seconds after the start of `up` (or of the phase list)
    source: str


@dataclass(frozen=True)
class TimeEstimate:
    """How long `pulumi up` takes and how long until training runs, with the steps on the way."""

    up_seconds: float
    training_seconds: float  # from the start of `up` until the training process runs
    critical_path: tuple[Step, ...]  # `up`'s longest chain of creates, first to last
    after_up: tuple[Step, ...]  # GPU phases until training (finish = seconds after `up` began)


def create_seconds(type_: str) -> tuple[float, str]:
    return CREATE_SECONDS.get(type_, DEFAULT_CREATE)


def _latest(when: tuple[float, str | None]) -> tuple[float, str]:
    """The order of (time, deciding resource) pairs: the later time, and among equal times the greater URN, so a
    tie is decided the same way whatever order the engine registered the resources and listed their
    dependencies in (it varies between runs: the critical path printed by two plans of one stack differed)."""
    return when[0], when[1] or ""


class _Schedule:
    """Earliest start and finish of every node of a dependency graph (memoized, cycle-checked).

    A custom resource starts when its dependencies and its parent are done; a component takes no
    time itself, starts when its own dependencies are done, and is done when all its children are.
    Each time comes with the custom resource whose finish decided it, to walk the critical path back.
    """

    def __init__(self, nodes: Iterable[Node], durations: dict[str, tuple[float, str]]):
        self.by_urn = {n.urn: n for n in nodes}
        self.durations = durations
        self.children: dict[str, list[Node]] = {}
        for n in self.by_urn.values():
            self.children.setdefault(n.parent, []).append(n)
        self._start: dict[str, tuple[float, str | None]] = {}
        self._end: dict[str, tuple[float, str | None]] = {}
        self._visiting: set[str] = set()

    def seconds(self, n: Node) -> tuple[float, str]:
        return self.durations.get(n.type, DEFAULT_CREATE)

    def start(self, urn: str) -> tuple[float, str | None]:
        if urn in self._start:
            return self._start[urn]
        if urn in self._visiting:
            raise ValueError(f"dependency cycle through {self.by_urn[urn].name}")
        self._visiting.add(urn)
        n = self.by_urn[urn]
        waits = [self.end(d) for d in n.dependencies if d in self.by_urn]
        if n.parent in self.by_urn:
            parent = self.by_urn[n.parent]
            waits.append(self.end(parent.urn) if parent.custom else self.start(parent.urn))
        self._visiting.discard(urn)
        self._start[urn] = max(waits, default=(0.0, None), key=_latest)
        return self._start[urn]

    def end(self, urn: str) -> tuple[float, str | None]:
        if urn not in self._end:
            n = self.by_urn[urn]
            if n.custom:
                self._end[urn] = (self.start(urn)[0] + self.seconds(n)[0], urn)
            else:
                self._end[urn] = max(
                    [self.start(urn)] + [self.end(c.urn) for c in self.children.get(urn, [])], key=_latest
                )
        return self._end[urn]

    def path_to(self, urn: str | None) -> tuple[Step, ...]:
        chain: list[Step] = []
        while urn is not None:
            n = self.by_urn[urn]
            seconds, source = self.seconds(n)
            chain.append(Step(n.name, n.type, seconds, self.end(urn)[0], source))
            urn = self.start(urn)[1]
        return tuple(reversed(chain))


def critical_path(
    nodes: Iterable[Node], durations: dict[str, tuple[float, str]] | None = None
) -> tuple[float, tuple[Step, ...]]:
    """(total seconds, the chain of creates that takes longest) for a dependency graph."""
    schedule = _Schedule(nodes, {**CREATE_SECONDS, **(durations or {})})
    if not schedule.by_urn:
        return 0.0, ()
    total, urn = max((schedule.end(u) for u in schedule.by_urn), key=_latest)
    return total, schedule.path_to(urn)


def finish_times(nodes: Iterable[Node], durations: dict[str, tuple[float, str]] | None = None) -> dict[str, float]:
    schedule = _Schedule(nodes, {**CREATE_SECONDS, **(durations or {})})
    return {u: schedule.end(u)[0] for u in schedule.by_urn}


def image_gib(image: str | None) -> tuple[float, str]:
    for pattern, gib, source in IMAGE_GIB:
        if image and pattern.search(image):
            return gib, source
    return DEFAULT_IMAGE_GIB


def estimate(nodes: Iterable[Node], backend: str, image: str | None = None) -> TimeEstimate:
    """`up` time with its critical path, and the time until training runs on `backend`."""
    nodes = list(nodes)
    up, path = critical_path(nodes)
    after: list[Step] = []
    t = up
    declared = backends.find(backend)
    if declared is not None:
        anchor = declared.started_by
        if anchor is not None:
            finish = finish_times(nodes)
            t = max((finish[n.urn] for n in nodes if n.type == anchor), default=up)
        gib, size_source = image_gib(image)
        pull = Phase("image pull", gib * PULL_SECONDS_PER_GIB, f"{size_source}; {PULL_SOURCE}")
        for phase in (*declared.after_up, pull):
            t += phase.seconds
            after.append(Step(phase.name, "", phase.seconds, t, phase.source))
    return TimeEstimate(up, max(t, up), path, tuple(after))


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
