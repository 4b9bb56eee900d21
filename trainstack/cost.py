"""Cost model: what a stack costs per hour idle and busy, from the catalog's list prices (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from . import catalog
from .config import StackConfig, eks_support_status

NAT_GATEWAY_USD_PER_HOUR = 0.045  # plus $0.045/GB processed; S3 traffic bypasses it (gateway endpoint)
PUBLIC_IPV4_USD_PER_HOUR = 0.005
FLOW_LOGS_USD_PER_GB = 0.25  # CloudWatch vended logs delivered to S3, first 10 TB/month, us-east-1


@dataclass(frozen=True)
class CostEstimate:
    idle_usd_per_hour: float
    busy_usd_per_hour: float  # on-demand list price, the most expensive listed type: an upper bound
    busy_low_usd_per_hour: float  # on-demand, the cheapest listed type
    max_run_usd: float  # busy upper bound x the job's maximum runtime
    notes: tuple[str, ...] = field(default_factory=tuple)


def estimate(cfg: StackConfig) -> CostEstimate:
    if cfg.platform is not None:
        idle = NAT_GATEWAY_USD_PER_HOUR + PUBLIC_IPV4_USD_PER_HOUR if cfg.platform.egress == "nat" else 0.0
        notes = ["S3 storage is billed per GB-month and is not included.",
                 "KMS: $1/month for the key; requests are mostly absorbed by S3 bucket keys."]
        if cfg.platform.egress == "nat":
            notes.append("The NAT gateway runs around the clock ($0.045/h + $0.045/GB).")
        if cfg.platform.flow_logs:
            notes.append(f"VPC flow logs to S3: ${FLOW_LOGS_USD_PER_GB}/GB delivered (vended logs), plus S3 storage; "
                         "NCCL traffic between nodes makes many records.")
        if cfg.platform.eks.shared_cluster:
            eks = cfg.platform.eks
            plane = eks_idle_usd_per_hour(eks.version, eks.system_instance_type)
            idle += plane
            notes.append(f"The shared EKS control plane and its {eks.system_instance_type} system node run around the "
                         f"clock (${plane:.2f}/h) for every eks.mode: shared cluster stack.")
        return CostEstimate(idle, idle, idle, 0.0, tuple(notes))

    c = cfg.cluster
    assert c is not None
    sagemaker = c.backend == "sagemaker"
    prices = [catalog.price_per_hour(t, sagemaker=sagemaker) for t in c.gpu.instance_types]
    prices = [p for p in prices if p is not None]
    nodes = c.job.nodes
    high = max(prices, default=0.0) * nodes
    low = min(prices, default=0.0) * nodes
    notes = [f"List prices: {catalog.PRICE_SOURCE}."]
    if sagemaker and c.sagemaker.spot:
        notes.append("Managed spot training bills spot prices, typically 60-90 % below this bound.")
    elif not sagemaker and c.gpu.spot_percent > 0:
        notes.append(f"{c.gpu.spot_percent} % of capacity above the on-demand base runs on spot, "
                     "typically 60-90 % below this bound.")
    idle = 0.0
    if c.backend == "eks":
        idle, note = _eks_cluster_idle(cfg)
        notes.append(note)
    else:
        notes.append("Idle: the GPU group sits at zero instances; the ECS cluster, schedules and roles cost nothing."
                     if not sagemaker else "Idle: SageMaker releases the instances when the job ends.")
    high, low = high + idle, low + idle
    return CostEstimate(round(idle, 4), round(high, 4), round(low, 4), round(high * c.job.max_runtime_hours, 2),
                        tuple(notes))


def eks_idle_usd_per_hour(version: str, system_instance_type: str, today=None) -> float:
    """An EKS control plane (standard or extended support price) plus its one system node."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    plane = (catalog.EKS_EXTENDED_SUPPORT_USD_PER_HOUR if eks_support_status(version, today) == "extended"
             else catalog.EKS_CONTROL_PLANE_USD_PER_HOUR)
    return plane + (catalog.price_per_hour(system_instance_type) or 0.0)


def _eks_cluster_idle(cfg: StackConfig) -> tuple[float, str]:
    c = cfg.cluster
    assert c is not None
    eks = c.eks
    if eks.mode == "shared":
        return 0.0, ("Idle: the GPU node groups sit at zero; the shared control plane is billed to the platform "
                     "stack, not to this one.")
    idle = eks_idle_usd_per_hour(eks.version, eks.system_instance_type)
    return idle, (f"Idle: the GPU node groups sit at zero, but this stack's EKS control plane and its "
                  f"{eks.system_instance_type} system node cost ${idle:.2f}/h until `destroy` (after expiry only the "
                  "control plane remains).")


# --------------------------------------------------------------------------------------------
# Cost so far: what the instances a cluster has run cost up to now (pure interval arithmetic).


@dataclass(frozen=True)
class Interval:
    """One instance running from `start` to `end` (None: still running)."""

    instance_id: str
    price_key: str  # what `prices` is looked up by: usually the instance type
    start: dt.datetime
    end: dt.datetime | None = None


@dataclass(frozen=True)
class ElapsedCost:
    usd: float
    instance_hours: float
    unpriced: tuple[str, ...] = ()  # price keys missing from `prices`: their hours are not in `usd`


def merged_intervals(intervals: Iterable[Interval], now: dt.datetime) -> dict[tuple[str, str], list[tuple]]:
    """Per (instance, price key): disjoint, sorted (start, end) pairs, open ends closed at `now`, clipped to `now`.

    The same instance is usually seen twice (a scaling activity and `DescribeInstances`): merging
    keeps it from being billed twice.
    """
    spans: dict[tuple[str, str], list[tuple]] = {}
    for iv in intervals:
        end = now if iv.end is None or iv.end > now else iv.end
        if end > iv.start:
            spans.setdefault((iv.instance_id, iv.price_key), []).append((iv.start, end))
    merged: dict[tuple[str, str], list[tuple]] = {}
    for key, pieces in spans.items():
        out: list[list] = []
        for start, end in sorted(pieces):
            if out and start <= out[-1][1]:
                out[-1][1] = max(out[-1][1], end)
            else:
                out.append([start, end])
        merged[key] = [(s, e) for s, e in out]
    return merged


def elapsed_cost(intervals: Iterable[Interval], prices: Mapping[str, float], now: dt.datetime) -> ElapsedCost:
    """Σ merged instance-hours × price per hour, up to `now`."""
    usd = hours = 0.0
    unpriced: set[str] = set()
    for (_, key), pieces in merged_intervals(intervals, now).items():
        h = sum((e - s).total_seconds() for s, e in pieces) / 3600
        hours += h
        if key in prices:
            usd += h * prices[key]
        else:
            unpriced.add(key)
    return ElapsedCost(usd, hours, tuple(sorted(unpriced)))


def hourly_rate_now(intervals: Iterable[Interval], prices: Mapping[str, float], now: dt.datetime) -> float:
    """$/h of the instances running at `now` (each instance counted once)."""
    running = {(iv.instance_id, iv.price_key) for iv in intervals
               if iv.start <= now and (iv.end is None or iv.end > now)}
    return sum(prices.get(key, 0.0) for _, key in running)
