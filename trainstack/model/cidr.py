"""Subnet CIDR arithmetic for TrainingNetwork (pure; property-tested).

Layout: the VPC is cut into 8 equal slots, one per AZ (slot i = AZ i, up to 6 AZs), so adding an
AZ later never moves an existing subnet (moving one would replace it and everything in it).
With `egress: public` the AZ slots are the (public) subnets. With `egress: nat` they are the
private subnets the GPU nodes use, and the last slot is cut into small public subnets that only
hold the NAT gateway.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

SLOTS = 8
MIN_SUBNET_PREFIX = 28  # AWS's smallest subnet


class SubnetPlanError(ValueError):
    pass


@dataclass(frozen=True)
class SubnetPlan:
    """The public and private subnet CIDRs carved out of a VPC's block, one of each per availability zone."""

    public: tuple[str, ...]
    private: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.public + self.private


def plan_subnets(vpc_cidr: str, az_count: int, egress: str = "public") -> SubnetPlan:
    net = ipaddress.IPv4Network(vpc_cidr, strict=True)
    if not 1 <= az_count <= SLOTS - 2:
        raise SubnetPlanError(f"az count {az_count} is outside 1-{SLOTS - 2}")
    slot_prefix = net.prefixlen + int(math.log2(SLOTS))
    if slot_prefix > MIN_SUBNET_PREFIX:
        raise SubnetPlanError(
            f"is too small: {SLOTS} slots of /{slot_prefix} are below AWS's /{MIN_SUBNET_PREFIX} minimum"
        )
    slots = list(net.subnets(new_prefix=slot_prefix))
    az_subnets = tuple(str(s) for s in slots[:az_count])
    if egress == "public":
        return SubnetPlan(public=az_subnets, private=())
    if egress != "nat":
        raise SubnetPlanError(f"unknown egress {egress!r}")
    pieces = 1 << max(0, math.ceil(math.log2(az_count)))
    public_prefix = slot_prefix + int(math.log2(pieces))
    if public_prefix > MIN_SUBNET_PREFIX:
        raise SubnetPlanError(
            f"is too small for egress nat in {az_count} AZs: the NAT subnets would be /{public_prefix}, "
            f"smaller than AWS's /{MIN_SUBNET_PREFIX} minimum"
        )
    public = tuple(str(s) for s in list(slots[-1].subnets(new_prefix=public_prefix))[:az_count])
    return SubnetPlan(public=public, private=az_subnets)
