"""What the stack will create and read, taken from its offline plan (no AWS calls here).

The plan already evaluated the program under the mock engine: its resource records carry every input
(Auto Scaling groups and node groups with their instance types, sizes and purchase options; the roles
and who may assume them; the teardown schedules with their universal targets and inputs; the EKS
add-ons) and its invokes name the SSM parameters the program resolves. The doctor checks the real
account for exactly these, instead of re-deriving them from the config.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainstack import backends
from trainstack.backends import AmiSource, Backend, SpotMode
from trainstack.model import catalog
from trainstack.model.config import ClusterStack, StackConfig

ON_DEMAND = "on-demand"
SPOT = "spot"

ASG = "aws:autoscaling/group:Group"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ROLE = "aws:iam/role:Role"
SCHEDULE = "aws:scheduler/schedule:Schedule"
ADDON = "aws:eks/addon:Addon"
SSM_INVOKE = "aws:ssm/getParameter:getParameter"
MOCK_ACCOUNT = "123456789012"  # trainstack.plan.offline.ACCOUNT_ID: replaced by the real account


@dataclass(frozen=True)
class Demand:
    """Instances the stack may run at once in one purchase option, for the quota check."""

    market: str  # ON_DEMAND | SPOT
    instance_type: str  # the largest listed type (what the vCPU need is counted in)
    instances: int
    vcpus: int  # instances x vCPUs of that type
    what: str  # e.g. "GPU group (gpu.maxInstances 4, spotPercent 100)"


@dataclass(frozen=True)
class PlannedRole:
    logical_name: str
    arn: str  # with the mock account and an autonamed physical name; the account is replaced
    services: tuple[str, ...]  # the services its trust policy lets assume it (iam:PassedToService)


@dataclass(frozen=True)
class PlannedSchedule:
    key: str  # logical name
    target_arn: str  # arn:aws:scheduler:::aws-sdk:<service>:<apiAction>
    input: Mapping[str, Any]  # the universal target's input (PascalCase members)

    @property
    def service(self) -> str:
        return self.target_arn.split(":")[-2]

    @property
    def api_action(self) -> str:
        return self.target_arn.split(":")[-1]

    @property
    def target(self) -> str:
        return f"{self.service}:{self.api_action}"


@dataclass(frozen=True)
class PlannedResource:
    type: str
    logical_name: str
    arn: str


@dataclass(frozen=True)
class StackFacts:
    stack: str
    region: str
    cfg: ClusterStack
    backend: Backend
    gpu_types: tuple[str, ...]  # EC2 names (SageMaker's ml. prefix dropped)
    demands: tuple[Demand, ...]
    ssm_parameters: tuple[str, ...]
    pinned_ami: str | None
    roles: tuple[PlannedRole, ...]
    schedules: tuple[PlannedSchedule, ...]
    resources: tuple[PlannedResource, ...]  # every custom AWS resource the stack creates
    addons: tuple[str, ...]  # EKS add-on names
    platform_stack: str
    owner: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def runs_own_instances(self) -> bool:
        """The stack launches EC2 instances itself (not a service such as SageMaker picking its hosts)."""
        return self.backend.capabilities.ami is not AmiSource.SERVICE

    @property
    def uses_spot(self) -> bool:
        return any(d.market == SPOT for d in self.demands)

    @property
    def max_instances(self) -> int:
        return self.cfg.cluster.gpu.max_instances

    @property
    def universal_targets(self) -> tuple[str, ...]:
        return tuple(sorted({s.target for s in self.schedules}))  # stable: schedules register in any order


def _num(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, (int, float)) else default


def _largest(types: list[str]) -> tuple[str, int]:
    known = [(t, catalog.lookup(t)) for t in types]
    best = max(known, key=lambda kv: kv[1].vcpus if kv[1] else 0)
    return best[0], (best[1].vcpus if best[1] else 0)


def _group_demands(record_type: str, inputs: Mapping[str, Any]) -> list[Demand]:
    """On-demand and spot instances one group may run, from its recorded inputs."""
    if record_type == ASG:
        policy = inputs.get("mixedInstancesPolicy") or {}
        overrides = (policy.get("launchTemplate") or {}).get("overrides") or []
        types = [o["instanceType"] for o in overrides if o.get("instanceType")]
        if not types:
            return []
        dist = policy.get("instancesDistribution") or {}
        size = _num(inputs.get("maxSize"))
        base = min(size, _num(dist.get("onDemandBaseCapacity")))
        od_pct = _num(dist.get("onDemandPercentageAboveBaseCapacity"), 100)
        # The ASG rounds the on-demand share above the base up (EC2 Auto Scaling user guide,
        # "Allocation strategies for multiple instance types": percentages are rounded up).
        on_demand = base + math.ceil((size - base) * od_pct / 100)
        spot = size - on_demand
        what = f"Auto Scaling group (max {size}, on-demand base {base}, {100 - od_pct} % spot above it)"
    else:
        types = list(inputs.get("instanceTypes") or [])
        if not types:
            return []
        size = _num((inputs.get("scalingConfig") or {}).get("maxSize"))
        spot_group = inputs.get("capacityType") == "SPOT"
        on_demand, spot = (0, size) if spot_group else (size, 0)
        what = f"EKS node group of {', '.join(types)} (max {size}, {inputs.get('capacityType') or 'ON_DEMAND'})"
    name, vcpus = _largest(types)
    out = []
    for market, n in ((ON_DEMAND, on_demand), (SPOT, spot)):
        if n > 0:
            out.append(Demand(market, name, n, n * vcpus, what))
    return out


def _sagemaker_demands(cfg: ClusterStack) -> list[Demand]:
    c = cfg.cluster
    market = SPOT if c.sagemaker.spot else ON_DEMAND
    name, vcpus = _largest([catalog.ec2_name(t) for t in c.gpu.instance_types])
    n = c.job.nodes
    return [Demand(market, name, n, n * vcpus, f"SageMaker training job ({n} x ml.{name})")]


def _trusted_services(assume_role_policy: Any) -> tuple[str, ...]:
    try:
        doc = json.loads(assume_role_policy) if isinstance(assume_role_policy, str) else assume_role_policy or {}
    except ValueError:
        return ()
    out: list[str] = []
    for stmt in doc.get("Statement", []):
        service = (stmt.get("Principal") or {}).get("Service")
        for s in [service] if isinstance(service, str) else service or []:
            out.append(s)
    return tuple(dict.fromkeys(out))


def stack_facts(result: Any) -> StackFacts:
    """`result` is trainstack.plan.planner.PlanResult of a cluster stack."""
    cfg: StackConfig = result.config
    if not isinstance(cfg, ClusterStack):
        raise ValueError(f"{result.stack} is a {cfg.kind} stack; the doctor checks cluster stacks")
    c = cfg.cluster
    backend = backends.get(c.backend)
    records = result.run.resources
    demands: list[Demand] = []
    if backend.capabilities.ami is AmiSource.SERVICE:
        demands = _sagemaker_demands(cfg)
    else:
        for r in records:
            if r.type in (ASG, NODE_GROUP):
                demands.extend(_group_demands(r.type, r.inputs))
    roles = tuple(
        PlannedRole(r.name, str(r.state.get("arn", "")), _trusted_services(r.inputs.get("assumeRolePolicy")))
        for r in records
        if r.type == ROLE
    )
    schedules = []
    for r in records:
        if r.type == SCHEDULE:
            target = r.inputs.get("target") or {}
            try:
                data = json.loads(target.get("input") or "{}")
            except ValueError:
                data = {}
            schedules.append(PlannedSchedule(r.name, str(target.get("arn", "")), data))
    resources = tuple(
        PlannedResource(r.type, r.name, str(r.state.get("arn", "")))
        for r in records
        if r.custom and r.type.startswith("aws:")
    )
    params = tuple(dict.fromkeys(a.get("name", "") for t, a in result.run.invokes if t == SSM_INVOKE))
    addons = tuple(dict.fromkeys(str(r.inputs.get("addonName")) for r in records if r.type == ADDON))
    spot_mode = backend.capabilities.spot
    return StackFacts(
        stack=result.stack,
        region=cfg.region,
        cfg=cfg,
        backend=backend,
        gpu_types=tuple(catalog.ec2_name(t) for t in c.gpu.instance_types),
        demands=tuple(demands),
        ssm_parameters=tuple(p for p in params if p),
        pinned_ami=c.gpu.ami_id,
        roles=roles,
        schedules=tuple(schedules),
        resources=resources,
        addons=addons,
        platform_stack=c.platform_stack,
        owner=c.owner,
        data={"spotMode": spot_mode.value if isinstance(spot_mode, SpotMode) else str(spot_mode)},
    )


def real_arn(arn: str, account: str) -> str:
    """An ARN from the offline plan with the real account in place of the mock one."""
    return arn.replace(f":{MOCK_ACCOUNT}:", f":{account}:")
