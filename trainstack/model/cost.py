"""Cost model: what a stack costs per hour idle and busy, from the catalog's list prices (pure).

What differs between backends comes from their declarations (`trainstack.backends`), never their names:
which price list their instance names are in (`Capabilities.sagemaker_instance_names`), how they buy spot
(`Capabilities.spot`) and what they bill while no job runs (`Backend.idle`, `Backend.idle_note`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from trainstack import backends
from trainstack.backends import IdleCost, SpotMode
from trainstack.model import catalog
from trainstack.model import prices as price_tables
from trainstack.model.config import ClusterStack, PlatformStack, StackConfig, eks_support_status

NAT_GATEWAY_USD_PER_HOUR = 0.045  # plus $0.045/GB processed; S3 traffic bypasses it (gateway endpoint)
PUBLIC_IPV4_USD_PER_HOUR = 0.005
FLOW_LOGS_USD_PER_GB = 0.25  # CloudWatch vended logs delivered to S3, first 10 TB/month, us-east-1


@dataclass(frozen=True)
class CostEstimate:
    """What a stack costs per hour idle and busy, and at most per run (USD)."""

    idle_usd_per_hour: float
    busy_usd_per_hour: float  # on-demand list price, the most expensive listed type: an upper bound
    busy_low_usd_per_hour: float  # on-demand, the cheapest listed type
    max_run_usd: float  # busy upper bound x the job's maximum runtime
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Expected busy cost with the configured spot share at the region's median spot price
    # (cheapest and most expensive listed type), and at the most expensive one for a full run.
    region: str = ""
    expected_low_usd_per_hour: float = 0.0
    expected_usd_per_hour: float = 0.0
    expected_run_usd: float = 0.0
    spot_discounts: tuple[tuple[str, float], ...] = ()  # (type, median spot saving 0..1) in the region
    price_source: str = ""
    price_as_of: str = ""


def estimate(cfg: StackConfig, price_table: price_tables.PriceTable | None = None) -> CostEstimate:
    if isinstance(cfg, PlatformStack):
        idle = NAT_GATEWAY_USD_PER_HOUR + PUBLIC_IPV4_USD_PER_HOUR if cfg.platform.egress == "nat" else 0.0
        notes = [
            "S3 storage is billed per GB-month and is not included.",
            "KMS: $1/month for the key; requests are mostly absorbed by S3 bucket keys.",
        ]
        if cfg.platform.egress == "nat":
            notes.append("The NAT gateway runs around the clock ($0.045/h + $0.045/GB).")
        notes.append(
            "Teardown alerts: one CloudWatch alarm over four metrics ($0.40/month); the dead-letter queue and the "
            "alerts topic bill per request, nothing while no teardown call fails."
        )
        if cfg.platform.flow_logs:
            notes.append(
                f"VPC flow logs to S3: ${FLOW_LOGS_USD_PER_GB}/GB delivered (vended logs), plus S3 storage; "
                "NCCL traffic between nodes makes many records."
            )
        if cfg.platform.eks.shared_cluster:
            eks = cfg.platform.eks
            plane = eks_idle_usd_per_hour(eks.version, eks.system_instance_type)
            idle += plane
            notes.append(
                f"The shared EKS control plane and its {eks.system_instance_type} system node run around the "
                f"clock (${plane:.2f}/h) for every eks.mode: shared cluster stack."
            )
        return CostEstimate(
            idle,
            idle,
            idle,
            0.0,
            tuple(notes),
            region=cfg.region,
            expected_low_usd_per_hour=idle,
            expected_usd_per_hour=idle,
        )

    c = cfg.cluster
    table = price_table or price_tables.table()
    declared = backends.get(c.backend)
    # ml.* instance names: SageMaker's own (us-east-1) price list, scaled by the region's EC2 ratio.
    sagemaker = declared.capabilities.sagemaker_instance_names
    managed_spot = declared.capabilities.spot is SpotMode.MANAGED  # sagemaker.spot, not gpu.spotPercent
    nodes = c.job.nodes
    on_demand, expected, discounts = [], [], []
    for t in c.gpu.instance_types:
        od, spot = _hourly(t, cfg.region, table, sagemaker=sagemaker)
        if od is None:
            continue
        on_demand.append(od)
        if spot is not None:
            discounts.append((catalog.ec2_name(t), round(1 - spot / od, 4)))
        expected.append(_expected_hourly(c, od, spot, managed_spot=managed_spot))
    high = max(on_demand, default=0.0) * nodes
    low = min(on_demand, default=0.0) * nodes
    exp_high = max(expected, default=0.0) * nodes
    exp_low = min(expected, default=0.0) * nodes
    notes = []
    on_spot = c.sagemaker.spot if managed_spot else c.gpu.spot_percent > 0
    if on_spot and discounts:
        shown = ", ".join(f"{t} {d:.0%}" for t, d in discounts)
        notes.append(
            f"Expected: median spot in {cfg.region} is below on-demand by {shown}"
            + (
                " (EC2's discount applied to SageMaker's price, an approximation: AWS publishes no "
                "managed-spot price table)"
                if managed_spot
                else f"; {c.gpu.spot_percent} % of capacity above the on-demand base ({c.gpu.on_demand_base}) "
                "runs on spot"
            )
            + "."
        )
    elif on_spot:
        notes.append(f"No spot price for these types in {cfg.region} in the price table: expected = on-demand.")
    if sagemaker and cfg.region != "us-east-1":
        notes.append(f"SageMaker prices are us-east-1 list prices scaled by the EC2 price ratio of {cfg.region}.")
    unpriced = [t for t in c.gpu.instance_types if table.lookup(t, cfg.region) is None]
    if unpriced:
        notes.append(
            f"{', '.join(unpriced)}: no row for {cfg.region} in the price table; priced from {catalog.PRICE_SOURCE}."
        )
    idle = 0.0
    if declared.idle is IdleCost.CONTROL_PLANE and c.eks.mode != "shared":
        idle, note = _eks_cluster_idle(cfg)
        notes.append(note)
    else:
        notes.append(declared.idle_note)
    high, low, exp_high, exp_low = high + idle, low + idle, exp_high + idle, exp_low + idle
    hours = c.job.max_runtime_hours
    return CostEstimate(
        round(idle, 4),
        round(high, 4),
        round(low, 4),
        round(high * hours, 2),
        tuple(notes),
        region=cfg.region,
        expected_low_usd_per_hour=round(exp_low, 4),
        expected_usd_per_hour=round(exp_high, 4),
        expected_run_usd=round(exp_high * hours, 2),
        spot_discounts=tuple(discounts),
        price_source=table.source,
        price_as_of=table.as_of,
    )


def eks_idle_usd_per_hour(version: str, system_instance_type: str, today=None) -> float:
    """An EKS control plane (standard or extended support price) plus its one system node."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    plane = (
        catalog.EKS_EXTENDED_SUPPORT_USD_PER_HOUR
        if eks_support_status(version, today) == "extended"
        else catalog.EKS_CONTROL_PLANE_USD_PER_HOUR
    )
    return plane + (catalog.price_per_hour(system_instance_type) or 0.0)


def _eks_cluster_idle(cfg: ClusterStack) -> tuple[float, str]:
    """A dedicated EKS control plane and its system node, billed until `destroy`."""
    eks = cfg.cluster.eks
    idle = eks_idle_usd_per_hour(eks.version, eks.system_instance_type)
    until = (
        f"until `destroy` or the idle stop: after {eks.idle_stop_minutes} min without a GPU instance or a pending "
        "pod, AWS deletes the node groups and the control plane (`pulumi up` recreates them)"
        if eks.idle_stop
        else "until `destroy` (eks.idleStopMinutes: 0 keeps it running while idle; after expiry only the control "
        "plane remains)"
    )
    return idle, (
        f"Idle: the GPU node groups sit at zero, but this stack's EKS control plane and its "
        f"{eks.system_instance_type} system node cost ${idle:.2f}/h {until}."
    )


def _hourly(instance_type: str, region: str, table, *, sagemaker: bool) -> tuple[float | None, float | None]:
    """(on-demand, median spot) USD per instance-hour of one type in `region`."""
    listed = catalog.price_per_hour(instance_type, sagemaker=sagemaker)
    row = table.lookup(instance_type, region)
    if row is None:
        return listed, None
    od = row.on_demand
    if sagemaker:  # SageMaker lists us-east-1 prices here; other regions follow EC2's regional ratio
        us = catalog.price_per_hour(instance_type)
        od = listed * (row.on_demand / us) if listed is not None and us else listed
        if od is None:
            return None, None
    discount = row.spot_discount
    return od, (od * (1 - discount) if discount is not None else None)


def _expected_hourly(c, od: float, spot: float | None, *, managed_spot: bool) -> float:
    """Per-node expected price: the on-demand base at on-demand, the spot share of the rest at median spot
    (managed spot: all spot or all on-demand)."""
    if spot is None:
        return od
    if managed_spot:
        return spot if c.sagemaker.spot else od
    nodes = c.job.nodes
    base = min(c.gpu.on_demand_base, nodes)
    spot_nodes = (nodes - base) * c.gpu.spot_percent / 100
    return (od * (nodes - spot_nodes) + spot * spot_nodes) / nodes


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
    """What instance-hours that already ran cost (USD), and which could not be priced."""

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
    running = {
        (iv.instance_id, iv.price_key) for iv in intervals if iv.start <= now and (iv.end is None or iv.end > now)
    }
    return sum(prices.get(key, 0.0) for _, key in running)
