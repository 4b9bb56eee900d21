"""`trainstack ls` and `trainstack reap`: every cluster found by its AWS tags, what it has cost, and cleanup.

Clusters are found by their tags (Resource Groups Tagging API, `trainstack:kind=cluster`,
grouped by `trainstack:stack`), not by Pulumi state, so a cluster whose state was lost still
shows (as an orphan). Pulumi state is joined when the CLI is present. Cost so far is an
estimate: instance intervals (scaling activities, DescribeInstances) × catalog list prices,
spot priced at on-demand as an upper bound unless real spot prices are asked for; SageMaker
jobs as billable seconds × instance count × price. Cost Explorer would be exact but lags up to
24 h and needs activated cost-allocation tags: useless for a run of a few hours.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainstack.errors import UserError
from trainstack.fleet.runs import RunSummary, parse_utc, read_runs
from trainstack.model import catalog, idle_stop, tags
from trainstack.model.cost import Interval, elapsed_cost, hourly_rate_now

# AWS filter value lists take at most 200 values.
_FILTER_CHUNK = 200
_LAUNCH_RE = re.compile(r"^Launching a new EC2 instance: (i-[0-9a-f]+)")
_TERMINATE_RE = re.compile(r"^Terminating EC2 instance: (i-[0-9a-f]+)")
_TRANSITION_RE = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) GMT\)")


class FleetError(UserError):
    """A problem the user can fix; the message says how (exit 2)."""


@dataclass
class Cluster:
    stack: str
    owner: str | None = None
    backend: str | None = None
    expires_at: dt.datetime | None = None
    arns: list[str] = field(default_factory=list)
    state: str = "unknown"  # ok | orphan (tags, no state) | state-only (state, no tags) | unknown (no CLI)
    created_at: dt.datetime | None = None  # earliest resource time AWS reports
    running: int = 0
    usd_per_hour: float = 0.0
    cost_usd: float = 0.0
    cost_is_bound: bool = False  # spot (or unknown types) priced at on-demand: an upper bound
    cost_notes: list[str] = field(default_factory=list)
    last_update: dt.datetime | None = None
    update_in_progress: bool | None = None
    run: RunSummary | None = None  # a kept stack's latest job, from its run.json in the lake (fleet/runs.py)
    # Idle: no GPU instance running (and no SageMaker job in progress) since then, as AWS reports it (instance
    # lifetimes, training job end times); None while busy or when AWS says nothing either way.
    idle_since: dt.datetime | None = None
    idle_stop: IdleStopState | None = None  # eks dedicated clusters with eks.idleStopMinutes

    def expired(self, now: dt.datetime, grace: dt.timedelta = dt.timedelta(0)) -> bool:
        return self.expires_at is not None and self.expires_at < now - grace

    def to_json(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "owner": self.owner,
            "backend": self.backend,
            "createdAt": _iso(self.created_at),
            "ageHours": round((now - self.created_at).total_seconds() / 3600, 2) if self.created_at else None,
            "expiresAt": _iso(self.expires_at),
            "expired": self.expired(now),
            "state": self.state,
            "runningInstances": self.running,
            "usdPerHourNow": round(self.usd_per_hour, 4),
            "costSoFarUsd": round(self.cost_usd, 2),
            "costIsUpperBound": self.cost_is_bound,
            "costNotes": self.cost_notes,
            "lastUpdate": _iso(self.last_update),
            "updateInProgress": self.update_in_progress,
            "run": self.run.to_json() if self.run else None,
            "idleSince": _iso(self.idle_since),
            "idleMinutes": int((now - self.idle_since).total_seconds() // 60) if self.idle_since else None,
            "idleStop": self.idle_stop.to_json() if self.idle_stop else None,
            "arns": sorted(self.arns),
        }


@dataclass(frozen=True)
class IdleStopState:
    """An eks cluster's idle stop, from its Step Functions state machine (and the alarm that starts it)."""

    state: str  # armed | stopping | stopped | failed
    minutes: int | None = None  # idle minutes before the stop (the alarm's periods)
    at: dt.datetime | None = None  # when the last stop started (stopping, failed) or ended (stopped)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "afterMinutes": self.minutes, "at": _iso(self.at)}


@dataclass(frozen=True)
class StateStack:
    """What `LocalWorkspace.list_stacks()` says about one stack."""

    name: str
    last_update: dt.datetime | None = None
    update_in_progress: bool | None = None
    resource_count: int | None = None
    # The stack's outputs, read only for stacks without tagged resources (owner, backend, expiresAt).
    outputs: Callable[[], Mapping[str, Any]] | None = field(default=None, compare=False, repr=False)


@dataclass
class AwsClients:
    tagging: Any
    ec2: Any
    autoscaling: Any
    sagemaker: Any
    cloudwatch: Any = None  # the idle-stop alarm of eks clusters (None: not asked)
    stepfunctions: Any = None  # the idle stop's executions
    s3: Any = None  # kept stacks' run.json (None: runs not read)

    @classmethod
    def for_region(cls, region: str | None) -> AwsClients:
        """Clients in `region`, else the AWS configuration's; a missing or unknown region is a UserError."""
        import boto3
        from botocore.config import Config

        from trainstack.fleet.aws import resolve_region

        region = resolve_region(region)
        cfg = Config(retries={"mode": "standard", "max_attempts": 5})
        mk = lambda name: boto3.client(name, region_name=region, config=cfg)  # noqa: E731
        return cls(
            mk("resourcegroupstaggingapi"),
            mk("ec2"),
            mk("autoscaling"),
            mk("sagemaker"),
            s3=mk("s3"),
            cloudwatch=mk("cloudwatch"),
            stepfunctions=mk("stepfunctions"),
        )


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def _chunks(items: list[str], n: int = _FILTER_CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _earliest(*times: dt.datetime | None) -> dt.datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


# --------------------------------------------------------------------------------------------
# Discovery


def tagged_clusters(tagging) -> dict[str, Cluster]:
    """Every resource tagged `trainstack:kind=cluster`, grouped by `trainstack:stack`."""
    found: dict[str, tuple[Cluster, Counter, Counter, Counter]] = {}
    pages = tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": tags.KIND, "Values": ["cluster"]}], ResourcesPerPage=100
    )
    for page in pages:
        for mapping in page.get("ResourceTagMappingList", []):
            t = {x["Key"]: x["Value"] for x in mapping.get("Tags", [])}
            name = t.get(tags.STACK)
            if not name:
                continue
            c, owners, backends, expiries = found.setdefault(name, (Cluster(name), Counter(), Counter(), Counter()))
            c.arns.append(mapping["ResourceARN"])
            for counter, key in ((owners, tags.OWNER), (backends, tags.BACKEND), (expiries, tags.EXPIRES_AT)):
                if t.get(key):
                    counter[t[key]] += 1
    out = {}
    for name, (c, owners, backends, expiries) in found.items():
        # Resources of one stack agree unless an update is half-applied: take the majority.
        c.owner = owners.most_common(1)[0][0] if owners else None
        c.backend = backends.most_common(1)[0][0] if backends else None
        c.expires_at = parse_utc(expiries.most_common(1)[0][0]) if expiries else None
        out[name] = c
    return out


def pulumi_state(root: Path, pulumi_root: str | None = None) -> dict[str, StateStack] | None:
    """Stacks in the current Pulumi backend, by short name; None without the CLI (found as every command
    finds it: --pulumi-root, $TRAINSTACK_PULUMI_ROOT, PATH)."""
    from trainstack.run.driver import CliMissingError, output_values, project_workspace

    try:
        ws = project_workspace(root, pulumi_root)
    except CliMissingError:
        return None

    def reader(name: str) -> Callable[[], Mapping[str, Any]]:
        # Read once per listing: join_state (owner, expiry) and join_runs (the run record's location) both need
        # them, and each read is a CLI start that reads the stack's state from the backend.
        return functools.cache(lambda: output_values(ws, name))

    return {
        s.name.rsplit("/", 1)[-1]: StateStack(
            s.name.rsplit("/", 1)[-1], s.last_update, s.update_in_progress, s.resource_count, reader(s.name)
        )
        for s in ws.list_stacks()
    }


def _stack_file_kind(root: Path, name: str) -> str | None:
    path = root / "stacks" / f"Pulumi.{name}.yaml"
    if not path.exists():
        return None
    from trainstack.plan.planner import PlanError, read_yaml_mapping

    try:
        config = read_yaml_mapping(path, "stack file", "fix the stack file").get("config") or {}
    except PlanError:
        return None
    return config.get(tags.KIND) if isinstance(config, dict) else None


def join_state(clusters: dict[str, Cluster], state: Mapping[str, StateStack] | None, root: Path) -> None:
    if state is None:
        return  # no CLI: state stays "unknown"
    for name, c in clusters.items():
        s = state.get(name)
        c.state = "ok" if s is not None else "orphan"
        if s is not None:
            c.last_update, c.update_in_progress = s.last_update, s.update_in_progress
    for name, s in state.items():
        # A stack in state without tagged resources: a cluster whose resources are gone (destroy
        # without `stack rm`) or never came up. Platform stacks are not clusters.
        if name not in clusters and _stack_file_kind(root, name) != "platform":
            c = Cluster(name, state="state-only", last_update=s.last_update, update_in_progress=s.update_in_progress)
            if _from_state(c, s):
                clusters[name] = c


def _from_state(c: Cluster, s: StateStack) -> bool:
    """Owner, backend and expiry of a stack without tagged resources, from its outputs (the cluster program
    exports them; a stack that never came up has none and keeps "?"). False: not a cluster stack (outputs
    without `backend`, e.g. a platform under another name)."""
    if s.outputs is None:
        return True
    try:
        outputs = s.outputs()
    except Exception as exc:  # noqa: BLE001 - a listing must not fail for one unreadable stack
        lines = str(exc).strip().splitlines()
        c.cost_notes.append(f"outputs not readable: {lines[-1] if lines else type(exc).__name__}")
        return True
    if outputs and "backend" not in outputs:
        return False
    c.owner = outputs.get("owner") or c.owner
    c.backend = outputs.get("backend") or c.backend
    c.expires_at = parse_utc(outputs.get("expiresAt")) or c.expires_at
    return True


def join_runs(clusters: dict[str, Cluster], state: Mapping[str, StateStack], s3: Any) -> None:
    """The latest job of every kept stack in state (detached or --keep), from its run.json in the lake."""

    def note(name: str, text: str) -> None:
        clusters[name].cost_notes.append(text)

    readers = {name: state[name].outputs for name in clusters if name in state}
    for name, summary in read_runs(readers, s3, note).items():
        clusters[name].run = summary


# --------------------------------------------------------------------------------------------
# Cost so far


@dataclass
class _Instance:
    id: str
    stack: str
    type: str | None = None
    lifecycle: str = "on-demand"  # or "spot"
    az: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    running: bool = False


def _instances(ec2, stacks: list[str]) -> dict[str, _Instance]:
    found: dict[str, _Instance] = {}
    for chunk in _chunks(stacks):
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": f"tag:{tags.STACK}", "Values": chunk}]
        )
        for page in pages:
            for res in page.get("Reservations", []):
                for i in res.get("Instances", []):
                    t = {x["Key"]: x["Value"] for x in i.get("Tags", [])}
                    state = i.get("State", {}).get("Name", "")
                    inst = _Instance(
                        i["InstanceId"],
                        t.get(tags.STACK, ""),
                        i.get("InstanceType"),
                        "spot" if i.get("InstanceLifecycle") == "spot" else "on-demand",
                        i.get("Placement", {}).get("AvailabilityZone"),
                        i.get("LaunchTime"),
                        running=state in ("pending", "running", "stopping", "shutting-down"),
                    )
                    if not inst.running:
                        # Stopped/terminated: "User initiated (2026-11-23 10:00:00 GMT)" dates the end.
                        m = _TRANSITION_RE.search(i.get("StateTransitionReason", ""))
                        inst.end = (
                            dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
                            if m
                            else inst.start
                        )
                    found[inst.id] = inst
    return found


def _groups(autoscaling, stacks: list[str], node_groups: Mapping[str, str] | None = None) -> dict[str, list[dict]]:
    """The stacks' Auto Scaling groups: tagged with the stack (ec2, ecs), or (eks) those of the managed node
    groups in `node_groups` (node group name -> stack), which EKS tags `eks:nodegroup-name` and not with ours."""
    by_stack: dict[str, list[dict]] = {}
    for key, wanted in (
        (f"tag:{tags.STACK}", {n: n for n in stacks}),
        (f"tag:{_EKS_NODEGROUP_TAG}", node_groups or {}),
    ):
        for chunk in _chunks(sorted(wanted)):
            pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
                Filters=[{"Name": key, "Values": chunk}]
            )
            for page in pages:
                for g in page.get("AutoScalingGroups", []):
                    t = {x["Key"]: x["Value"] for x in g.get("Tags", [])}
                    stack = wanted.get(t.get(key.removeprefix("tag:"), ""))
                    if stack:
                        by_stack.setdefault(stack, []).append(g)
    return by_stack


_EKS_NODEGROUP_TAG = "eks:nodegroup-name"  # on every managed node group's Auto Scaling group
_NODEGROUP_ARN_RE = re.compile(r"^arn:[^:]+:eks:[^:]+:\d+:nodegroup/[^/]+/(?P<name>[^/]+)/")


def _node_groups(clusters: Mapping[str, Cluster], names: list[str]) -> dict[str, str]:
    """Node group name -> stack, from the stacks' tagged EKS node group ARNs."""
    found = {}
    for name in names:
        for arn in clusters[name].arns:
            m = _NODEGROUP_ARN_RE.match(arn)
            if m:
                found[m.group("name")] = name
    return found


def _is_gpu(instance_type: str | None) -> bool:
    """Whether an instance counts against idleness: a GPU type, or one the catalog does not know (busy rather
    than wrongly idle). An eks system node is not."""
    spec = catalog.lookup(instance_type) if instance_type else None
    return spec is None or spec.has_gpu


def _idle_since(gpu: list[_Instance], created: dt.datetime | None) -> dt.datetime | None:
    """None while a GPU instance runs; else the end of the last one, or the creation if none ever ran."""
    if any(i.running for i in gpu):
        return None
    return max((i.end for i in gpu if i.end), default=created)


def _group_types(group: dict) -> list[str]:
    overrides = group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get("Overrides", [])
    return [o["InstanceType"] for o in overrides if o.get("InstanceType")]


def _activity_instances(autoscaling, group_name: str, stack: str, now: dt.datetime) -> dict[str, _Instance]:
    """Instance lifetimes from the group's scaling activities (AWS keeps six weeks of them)."""
    found: dict[str, _Instance] = {}
    pages = autoscaling.get_paginator("describe_scaling_activities").paginate(
        AutoScalingGroupName=group_name, IncludeDeletedGroups=True
    )
    for page in pages:
        for a in page.get("Activities", []):
            desc = a.get("Description", "")
            launch, term = _LAUNCH_RE.match(desc), _TERMINATE_RE.match(desc)
            if launch and a.get("StatusCode") not in ("Failed", "Cancelled"):
                inst = found.setdefault(launch.group(1), _Instance(launch.group(1), stack))
                inst.start = a.get("StartTime")
            elif term:
                inst = found.setdefault(term.group(1), _Instance(term.group(1), stack))
                # Billing stops when the instance is terminated; an activity still in progress means it runs.
                inst.end = a.get("EndTime") if a.get("StatusCode") == "Successful" else None
    return {k: v for k, v in found.items() if v.start is not None}


def _spot_price(ec2, instance_type: str, az: str | None, start: dt.datetime, now: dt.datetime) -> float | None:
    """The highest spot price of the type in its AZ over the interval (a tight bound, not a time average)."""
    kw: dict[str, Any] = {
        "InstanceTypes": [instance_type],
        "ProductDescriptions": ["Linux/UNIX"],
        "StartTime": start,
        "EndTime": now,
    }
    if az:
        kw["AvailabilityZone"] = az
    prices = [
        float(p["SpotPrice"])
        for page in ec2.get_paginator("describe_spot_price_history").paginate(**kw)
        for p in page.get("SpotPriceHistory", [])
    ]
    return max(prices) if prices else None


def instance_costs(
    aws: AwsClients, clusters: Mapping[str, Cluster], now: dt.datetime, *, spot_prices: bool = False
) -> None:
    """ec2/ecs clusters: running count, $/h now and cost so far from their instances' lifetimes."""
    names = sorted(n for n, c in clusters.items() if c.backend != "sagemaker" and c.state != "state-only")
    if not names:
        return
    described = _instances(aws.ec2, names)
    groups = _groups(aws.autoscaling, names, _node_groups(clusters, names))
    for name in names:
        c = clusters[name]
        instances = {i.id: i for i in described.values() if i.stack == name}
        group_types: list[str] = []
        for g in groups.get(name, []):
            c.created_at = _earliest(c.created_at, g.get("CreatedTime"))
            group_types += _group_types(g)
            for iid, seen in _activity_instances(aws.autoscaling, g["AutoScalingGroupName"], name, now).items():
                known = instances.get(iid)
                if known is None:
                    instances[iid] = seen
                    continue
                # LaunchTime is when billing starts; the launch activity begins a little earlier.
                known.start = known.start or seen.start
                if not known.running and seen.end is not None:
                    known.end = seen.end
        intervals, prices = [], {}
        dearest = max(group_types, key=lambda t: catalog.price_per_hour(t) or 0.0, default=None)
        for inst in instances.values():
            itype = inst.type or dearest
            if inst.type is None:
                c.cost_is_bound = True
                c.cost_notes.append(f"{inst.id}: type unknown, priced as {itype or 'nothing'} (dearest of the group)")
            if itype is None or inst.start is None:
                continue
            key, price = itype, catalog.price_per_hour(itype)
            if inst.lifecycle == "spot" or inst.type is None:
                if spot_prices and inst.type is not None:
                    spot = _spot_price(aws.ec2, itype, inst.az, inst.start, now)
                    if spot is not None:
                        key, price = f"spot:{itype}:{inst.az}", spot
                    else:
                        c.cost_is_bound = True
                else:
                    c.cost_is_bound = True  # spot bills below on-demand
            if price is not None:
                prices[key] = price
            intervals.append(Interval(inst.id, key, inst.start, None if inst.running else inst.end))
            c.created_at = _earliest(c.created_at, inst.start)
        c.idle_since = _idle_since(
            [i for i in instances.values() if _is_gpu(i.type or dearest)], _earliest(c.created_at, c.idle_since)
        )
        cost = elapsed_cost(intervals, prices, now)
        c.cost_usd += cost.usd
        c.usd_per_hour += hourly_rate_now(intervals, prices, now)
        c.running += sum(1 for i in instances.values() if i.running)
        if cost.unpriced:
            c.cost_notes.append(f"not in the catalog, not counted: {', '.join(cost.unpriced)}")
        if c.cost_is_bound and not spot_prices:
            c.cost_notes.append("spot priced at on-demand (upper bound); --spot-prices for spot history")


def sagemaker_costs(sagemaker, clusters: Mapping[str, Cluster], now: dt.datetime) -> None:
    """SageMaker: billable seconds (managed spot savings already deducted) × instances × price; idle since the
    last job ended."""
    for c in clusters.values():
        ends: list[dt.datetime] = []
        running = False
        for arn in c.arns:
            if ":training-job/" not in arn:
                continue
            job = sagemaker.describe_training_job(TrainingJobName=arn.rsplit("/", 1)[-1])
            rc = job.get("ResourceConfig", {})
            itype, count = rc.get("InstanceType", ""), int(rc.get("InstanceCount", 1))
            price = catalog.price_per_hour(itype, sagemaker=True)
            c.created_at = _earliest(c.created_at, job.get("CreationTime"))
            if price is None:
                c.cost_notes.append(f"{itype}: no SageMaker price in the catalog, not counted")
                continue
            in_progress = job.get("TrainingJobStatus") in ("InProgress", "Stopping")
            running = running or in_progress
            if job.get("TrainingEndTime") or job.get("LastModifiedTime"):
                ends.append(job.get("TrainingEndTime") or job["LastModifiedTime"])
            seconds = job.get("BillableTimeInSeconds")
            if seconds is None and job.get("TrainingStartTime"):
                # Still running: wall clock so far (spot savings are only known at the end).
                end = job.get("TrainingEndTime") or now
                seconds = max(0.0, (end - job["TrainingStartTime"]).total_seconds())
                c.cost_is_bound = c.cost_is_bound or bool(job.get("EnableManagedSpotTraining"))
            c.cost_usd += (seconds or 0) * count * price / 3600
            if in_progress:
                c.running += count
                c.usd_per_hour += count * price
        if c.backend == "sagemaker" and any(":training-job/" in a for a in c.arns):
            c.idle_since = None if running else max(ends, default=c.created_at)


_STATE_MACHINE_RE = re.compile(rf"^arn:[^:]+:states:[^:]+:\d+:stateMachine:{re.escape(idle_stop.STATE_MACHINE_PREFIX)}")
_ALARM_RE = re.compile(rf"^arn:[^:]+:cloudwatch:[^:]+:\d+:alarm:(?P<name>{re.escape(idle_stop.ALARM_PREFIX)}.+)$")


def idle_stops(aws: AwsClients, clusters: Mapping[str, Cluster]) -> None:
    """eks clusters with an idle stop: its last execution (ListExecutions, newest first) and its threshold
    (the alarm's evaluation periods). Armed: no execution yet, or the cluster was recreated after one."""
    if aws.stepfunctions is None or aws.cloudwatch is None:
        return
    for c in clusters.values():
        machine = next((a for a in c.arns if _STATE_MACHINE_RE.match(a)), None)
        if machine is None:
            continue
        alarms = [m.group("name") for m in map(_ALARM_RE.match, c.arns) if m]
        minutes = None
        if alarms:
            found = aws.cloudwatch.describe_alarms(AlarmNames=alarms[:1]).get("MetricAlarms", [])
            if found:
                minutes = int(found[0]["EvaluationPeriods"]) * idle_stop.PERIOD_SECONDS // 60
        runs = aws.stepfunctions.list_executions(stateMachineArn=machine, maxResults=1).get("executions", [])
        state, at = "armed", None
        if runs:
            run = runs[0]
            state = {"RUNNING": "stopping", "SUCCEEDED": "stopped"}.get(run["status"], "failed")
            at = run.get("stopDate") if state == "stopped" else run.get("startDate")
            if state == "stopped" and any(":cluster/" in a and ":eks:" in a for a in c.arns):
                state = "armed"  # `pulumi up` recreated the cluster since
        c.idle_stop = IdleStopState(state, minutes, at)


def list_clusters(
    aws: AwsClients,
    now: dt.datetime,
    *,
    root: Path,
    state: Mapping[str, StateStack] | None | Callable[[], Any] = None,
    spot_prices: bool = False,
) -> list[Cluster]:
    """Every cluster: tagged ones joined with Pulumi state (`state`: a mapping, or a callable that reads it), and
    with `aws.s3` the runs of kept stacks (their run.json)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from trainstack.fleet.aws import client_error, user_error

    try:
        clusters = tagged_clusters(aws.tagging)
        states = state() if callable(state) else state
        join_state(clusters, states, root)
        if aws.s3 is not None and states:
            join_runs(clusters, states, aws.s3)
        instance_costs(aws, clusters, now, spot_prices=spot_prices)
        sagemaker_costs(aws.sagemaker, clusters, now)
        idle_stops(aws, clusters)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        fix = (
            "the identity needs tag:GetResources, ec2:DescribeInstances, autoscaling:DescribeAutoScalingGroups, "
            "autoscaling:DescribeScalingActivities, sagemaker:DescribeTrainingJob, cloudwatch:DescribeAlarms and "
            "states:ListExecutions (ec2:DescribeSpotPriceHistory with --spot-prices)"
            if "AccessDenied" in code or code == "UnauthorizedOperation"
            else ""
        )
        raise FleetError(client_error(exc, fix).message) from None
    except BotoCoreError as exc:
        raise FleetError((user_error(exc) or FleetError(f"AWS: {exc}")).message) from None
    return sorted(clusters.values(), key=lambda c: c.stack)


def select(
    clusters: Iterable[Cluster], now: dt.datetime, *, owner: str = "all", expired_only: bool = False
) -> list[Cluster]:
    return [c for c in clusters if (owner == "all" or c.owner == owner) and (not expired_only or c.expired(now))]


# --------------------------------------------------------------------------------------------
# Rendering


def _duration(delta: dt.timedelta) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}d{hours}h" if days else f"{hours}h{mins:02d}m" if hours else f"{mins}m"


def idle_cell(c: Cluster, now: dt.datetime) -> str:
    """The IDLE column: `-` while a GPU instance (or job) runs, how long it has been idle, and the idle stop."""
    stop = c.idle_stop
    if stop is not None and stop.state == "stopped":
        return f"stopped {_duration(now - stop.at)} ago" if stop.at else "stopped"
    if stop is not None and stop.state == "stopping":
        return "stopping"
    if c.idle_since is None:
        return "-" if c.running else "?"
    text = _duration(now - c.idle_since)
    if stop is not None and stop.state == "failed":
        return f"{text} [red](stop failed)[/]"
    if stop is not None and stop.minutes:
        left = dt.timedelta(minutes=stop.minutes) - (now - c.idle_since)
        text += f" (stop in ~{_duration(left)})" if left > dt.timedelta(0) else " (stop due)"
    return text


def render(clusters: list[Cluster], now: dt.datetime, console) -> None:
    from rich.table import Table

    if not clusters:
        console.print("no trainstack clusters found")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    right = ("AGE", "EXPIRES", "RUNNING", "IDLE", "$/H NOW", "COST SO FAR")
    runs = any(c.run for c in clusters)  # kept stacks' latest job (RUN), only when there is one
    for col in ("STACK", "OWNER", "BACKEND", "AGE", "EXPIRES", "STATE", "RUNNING", "IDLE", "$/H NOW", "COST SO FAR"):
        table.add_column(col, justify="right" if col in right else "left")
    if runs:
        table.add_column("RUN")
    for c in clusters:
        if c.expires_at is None:
            expires = "?"
        elif c.expired(now):
            expires = f"[red]{_duration(now - c.expires_at)} ago[/]"
        else:
            expires = f"in {_duration(c.expires_at - now)}"
        state = {"orphan": "[yellow]ORPHAN[/]", "state-only": "[yellow]STATE-ONLY[/]"}.get(c.state, c.state)
        row = [
            c.stack,
            c.owner or "?",
            c.backend or "?",
            _duration(now - c.created_at) if c.created_at else "?",
            expires,
            state,
            str(c.running),
            idle_cell(c, now),
            f"{c.usd_per_hour:.2f}",
            # "≤$0.00" says nothing: a bound only where there is a cost to bound.
            f"{'≤' if c.cost_is_bound and round(c.cost_usd, 2) else ''}${c.cost_usd:,.2f}",
        ]
        if runs:
            row.append(c.run.cell(now) if c.run else "")
        table.add_row(*row)
    console.print(table)
    if any(c.cost_is_bound for c in clusters):
        console.print(
            "≤: spot priced at on-demand list price, an upper bound (--spot-prices asks AWS for spot "
            "history). Costs are estimates from catalog list prices; EBS, logs and data transfer "
            "are not included.",
            highlight=False,
        )
    if runs:
        console.print(
            "RUN: the latest job of a stack kept by `run --detach`/`--keep`, as its run.json in the lake says; "
            "`trainstack attach STACK` follows it, `trainstack reap --finished` removes finished detached stacks.",
            highlight=False,
        )
    if any(c.idle_stop for c in clusters):
        console.print(
            "IDLE: time since the last GPU instance (or job) ended; an eks cluster's idle stop deletes its node "
            "groups and control plane after that many idle minutes (`pulumi up` recreates them).",
            highlight=False,
        )
    if any(c.state == "orphan" for c in clusters):
        console.print(
            "ORPHAN: tagged resources without Pulumi state; `trainstack reap` lists their ARNs, remove them by hand.",
            highlight=False,
        )


# --------------------------------------------------------------------------------------------
# Reap


_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> dt.timedelta:
    m = _DURATION_RE.match(text.strip())
    if text.strip() in ("0", ""):
        return dt.timedelta(0)
    if not m or not any(m.groups()):
        raise FleetError(f"--grace = {text!r}: not a duration. Fix: write e.g. 15m, 2h, 1h30m or 0")
    d, h, mi, s = (int(x or 0) for x in m.groups())
    return dt.timedelta(days=d, hours=h, minutes=mi, seconds=s)


@dataclass(frozen=True)
class ReapOutcome:
    stack: str
    action: str  # destroyed | failed | would-destroy | orphan
    message: str
    arns: tuple[str, ...] = ()


DestroyStack = Callable[[str], "tuple[bool, str]"]


def destroy_with_automation_api(root: Path) -> DestroyStack:
    """Clean up a stack as `trainstack down` does (trainstack.run.run.down): stop its job, cancel a stale lock,
    destroy with retries, remove; a stack that will not go is kept and reported."""

    def destroy(stack_name: str) -> tuple[bool, str]:
        from trainstack.run.run import down
        from trainstack.run.ui import Ui, console

        result = down(stack_name, Ui(console(stderr=True)), root=root)
        if result.status in ("removed", "not-found"):  # gone either way: nothing left to reap
            return True, "destroyed and removed" if result.status == "removed" else "already removed"
        return False, result.reason

    return destroy


def _last_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def reap_candidates(
    clusters: Iterable[Cluster],
    now: dt.datetime,
    *,
    expired: bool,
    prefix: str | None,
    grace: dt.timedelta,
    finished: bool = False,
) -> list[Cluster]:
    """Clusters matching every selector given: expired past the grace, a stack-name prefix, and/or (`finished`)
    a stack `run --detach` left whose latest job ended more than the grace ago."""
    if not expired and not prefix and not finished:
        raise FleetError(
            "reap needs a selector: --expired, --finished and/or --prefix P (refusing to match every stack)"
        )
    return [
        c
        for c in clusters
        if (not expired or c.expired(now, grace))
        and (not prefix or c.stack.startswith(prefix))
        and (not finished or (c.run is not None and c.run.detached and c.run.finished_before(now - grace)))
    ]


def reap(
    candidates: Iterable[Cluster],
    *,
    destroy_stack: DestroyStack,
    dry_run: bool,
    report: Callable[[ReapOutcome], None] = lambda o: None,
) -> list[ReapOutcome]:
    """Destroy each candidate that has Pulumi state; orphans are reported with their ARNs, never deleted."""
    outcomes = []
    for c in candidates:
        if c.state == "orphan":
            out = ReapOutcome(
                c.stack,
                "orphan",
                "tagged resources without Pulumi state: not deleted; check and "
                "remove them by hand (or restore the state and reap again)",
                tuple(sorted(c.arns)),
            )
        elif dry_run:
            out = ReapOutcome(
                c.stack,
                "would-destroy",
                "would destroy and remove the stack"
                + (" (state not checked: no Pulumi CLI)" if c.state == "unknown" else ""),
            )
        else:
            ok, message = destroy_stack(c.stack)
            out = ReapOutcome(c.stack, "destroyed" if ok else "failed", message)
        report(out)
        outcomes.append(out)
    return outcomes
