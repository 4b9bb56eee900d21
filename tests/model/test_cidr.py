"""Subnet arithmetic: disjoint, inside the VPC, stable when AZs are added."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainstack.model.cidr import SubnetPlanError, plan_subnets


def test_public_layout():
    plan = plan_subnets("10.40.0.0/16", 2)
    assert plan.public == ("10.40.0.0/19", "10.40.32.0/19") and plan.private == ()


def test_nat_layout_has_small_public_and_large_private_subnets():
    plan = plan_subnets("10.40.0.0/16", 3, "nat")
    assert plan.private == ("10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19")
    assert all(ipaddress.ip_network(c).prefixlen == 21 for c in plan.public)


def test_too_small_for_nat():
    with pytest.raises(SubnetPlanError, match="too small"):
        plan_subnets("10.40.0.0/24", 4, "nat")


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.integers(min_value=16, max_value=24),
    az=st.integers(min_value=1, max_value=6),
    egress=st.sampled_from(["public", "nat"]),
    third=st.integers(min_value=0, max_value=255),
)
def test_subnets_are_disjoint_inside_the_vpc_and_large_enough(prefix, az, egress, third):
    vpc = ipaddress.ip_network(f"10.{third}.0.0/16").subnets(new_prefix=prefix).__next__()
    try:
        plan = plan_subnets(str(vpc), az, egress)
    except SubnetPlanError:
        assert egress == "nat"  # only the NAT layout can run out of room in /16-/24
        return
    nets = [ipaddress.ip_network(c) for c in plan.all]
    assert len(plan.public) == az and len(plan.private) == (az if egress == "nat" else 0)
    assert all(n.subnet_of(vpc) and n.prefixlen <= 28 for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])


@settings(max_examples=100, deadline=None)
@given(prefix=st.integers(min_value=16, max_value=24), az=st.integers(min_value=2, max_value=5))
def test_adding_an_az_never_moves_existing_subnets(prefix, az):
    vpc = str(next(ipaddress.ip_network("10.0.0.0/8").subnets(new_prefix=prefix)))
    before, after = plan_subnets(vpc, az), plan_subnets(vpc, az + 1)
    assert after.public[:az] == before.public
