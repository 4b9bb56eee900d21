"""Capacity: which of the platform's zones offer the stack's types, and how likely spot capacity is.

- `ec2:DescribeInstanceTypeOfferings` (LocationType availability-zone) for every type the stack's groups
  list, against the Availability Zones of the platform's subnets (`ec2:DescribeSubnets`).
- `ec2:GetSpotPlacementScores` once per doctor run (AWS rate-limits it per account): scores 1-10 per
  Availability Zone of every region (`SingleAvailabilityZone=true`, no RegionNames) for the spot types and
  the spot instance count, so the platform's zones, the best zone of the region and the best region come
  from one call. "A score of 10 means that your Spot capacity request is highly likely to succeed"
  (Amazon EC2 User Guide, "Spot placement score").
"""

from __future__ import annotations

from typing import Any

from trainstack.doctor.aws import short_error
from trainstack.doctor.context import Context
from trainstack.doctor.facts import SPOT
from trainstack.doctor.result import Check, failed, passed, skipped, warned

FAMILY = "capacity"
POOR_SCORE = 3  # at or below: the chosen zones are unlikely to get the spot capacity


def platform_zones(ctx: Context) -> tuple[dict[str, str], str]:
    """{AZ name: AZ id} of the platform's subnets, and where they came from."""
    if ctx.platform is not None and ctx.platform.subnet_ids:
        try:
            subnets = ctx.aws.client("ec2").describe_subnets(SubnetIds=ctx.platform.subnet_ids)["Subnets"]
            return {s["AvailabilityZone"]: s.get("AvailabilityZoneId", "") for s in subnets}, "the platform's subnets"
        except Exception:  # noqa: BLE001 - reported by the platform check; fall back to the region's zones
            pass
    zones = ctx.aws.client("ec2").describe_availability_zones(
        Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}]
    )["AvailabilityZones"]
    return {z["ZoneName"]: z.get("ZoneId", "") for z in zones}, f"every zone of {ctx.facts.region} (platform unknown)"


def check_capacity(ctx: Context) -> list[Check]:
    facts = ctx.facts
    if not facts.runs_own_instances:
        return [skipped(FAMILY, "instance type offerings", f"{facts.backend.name}: the service picks its hosts")]
    types = list(dict.fromkeys([*facts.gpu_types, *(d.instance_type for d in facts.demands)]))
    ec2 = ctx.aws.client("ec2")
    try:
        zones, source = platform_zones(ctx)
        offered: dict[str, set[str]] = {t: set() for t in types}
        pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": types}]
        )
        for page in pages:
            for o in page.get("InstanceTypeOfferings", []):
                offered.setdefault(o["InstanceType"], set()).add(o["Location"])
    except Exception as exc:  # noqa: BLE001
        return [
            warned(
                FAMILY,
                "instance type offerings",
                f"cannot read them: {short_error(exc)}",
                "allow ec2:DescribeInstanceTypeOfferings and ec2:DescribeSubnets",
            )
        ]
    checks = [_offerings(ctx, types, zones, source, offered)]
    if facts.uses_spot:
        checks.append(_spot_scores(ctx, zones))
    return checks


def _offerings(ctx: Context, types: list[str], zones: dict[str, str], source: str, offered: dict[str, set[str]]):
    region = ctx.facts.region
    where = {t: sorted(offered.get(t, set()) & set(zones)) for t in types}
    nowhere = [t for t in types if not where[t]]
    data = {"zones": sorted(zones), "offered": where}
    if nowhere and len(nowhere) == len(types) or any(t in nowhere for t in _required(ctx, types)):
        elsewhere = {t: sorted(offered.get(t, set()) - set(zones)) for t in nowhere}
        hint = "; ".join(f"{t} is offered in {', '.join(z) or 'no zone of ' + region}" for t, z in elsewhere.items())
        return failed(
            FAMILY,
            "instance type offerings",
            f"{', '.join(nowhere)} not offered in {', '.join(sorted(zones))} ({source}). {hint}",
            "give the platform subnets in a zone that offers them (trainstack:availabilityZones of the platform "
            "stack), or list types offered there (gpu.instanceTypes), or use another region",
            **data,
        )
    if nowhere:
        return warned(
            FAMILY,
            "instance type offerings",
            f"{', '.join(nowhere)} not offered in {', '.join(sorted(zones))}: the group never launches them",
            "drop them from gpu.instanceTypes, or move the platform's subnets",
            **data,
        )
    detail = "; ".join(f"{t}: {', '.join(z)}" for t, z in where.items())
    return passed(FAMILY, "instance type offerings", f"{detail} ({source})", **data)


def _required(ctx: Context, types: list[str]) -> list[str]:
    """Types the stack cannot do without: every type of a group that lists only one (node groups, system)."""
    single = [d.instance_type for d in ctx.facts.demands if d.instance_type not in ctx.facts.gpu_types]
    if len(ctx.facts.gpu_types) == 1:
        single.append(ctx.facts.gpu_types[0])
    return [t for t in single if t in types]


def _spot_scores(ctx: Context, zones: dict[str, str]) -> Check:
    facts = ctx.facts
    spot = [d for d in facts.demands if d.market == SPOT]
    target = max(d.instances for d in spot)
    types = sorted({t for t in facts.gpu_types})
    name = "spot placement score"
    try:
        scores: list[dict[str, Any]] = ctx.aws.client("ec2").get_spot_placement_scores(
            InstanceTypes=types,
            TargetCapacity=target,
            TargetCapacityUnitType="units",
            SingleAvailabilityZone=True,
        )["SpotPlacementScores"]
    except Exception as exc:  # noqa: BLE001
        return warned(
            FAMILY,
            name,
            f"cannot read it: {short_error(exc)}",
            "allow ec2:GetSpotPlacementScores (it is rate-limited: try again later if throttled)",
        )
    region = facts.region
    ids = {v: k for k, v in zones.items()}
    mine = {ids[s["AvailabilityZoneId"]]: int(s["Score"]) for s in scores if s.get("AvailabilityZoneId") in ids}
    in_region = [s for s in scores if s.get("Region") == region]
    best_here = max(in_region, key=lambda s: s["Score"], default=None)
    best_region: dict[str, int] = {}
    for s in scores:
        best_region[s["Region"]] = max(best_region.get(s["Region"], 0), int(s["Score"]))
    top = sorted(best_region.items(), key=lambda kv: -kv[1])[:3]
    data = {"types": types, "targetCapacity": target, "zones": mine, "bestRegions": dict(top)}
    what = f"{target} x {'/'.join(types)} on spot"
    best_mine = max(mine.values(), default=0)
    shown = ", ".join(f"{z} {s}" for z, s in sorted(mine.items())) or "no score for the platform's zones"
    if best_mine > POOR_SCORE:
        return passed(FAMILY, name, f"{what}: {shown} (10 = highly likely)", **data)
    suggestions = []
    if best_here and int(best_here["Score"]) > best_mine:
        suggestions.append(f"zone id {best_here['AvailabilityZoneId']} of {region} scores {best_here['Score']}")
    suggestions += [f"{r} scores {s}" for r, s in top if r != region and s > best_mine]
    return warned(
        FAMILY,
        name,
        f"{what}: {shown} (1-10; {POOR_SCORE} or less: spot capacity is unlikely)",
        ("better: " + "; ".join(suggestions) + ". ") * bool(suggestions)
        + "or add types (gpu.instanceTypes), lower gpu.maxInstances, or raise gpu.onDemandBase",
        **data,
    )
