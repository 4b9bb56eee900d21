"""Regional prices: the dated table, the region refusal, expected spot cost and --live-prices."""

from __future__ import annotations

import datetime as dt
import io
import json

import boto3
import pytest
from botocore.stub import Stubber
from rich.console import Console

from tests.helpers import NOW, STACKS, cluster_config
from trainstack.model import catalog, prices
from trainstack.model.config import ConfigError, parse_config
from trainstack.model.cost import estimate
from trainstack.plan import live_prices
from trainstack.plan.planner import _cost
from trainstack.plan.render import cost_line


def test_the_table_is_dated_and_names_its_source():
    t = prices.table()
    assert "SkyPilot" in t.source and "00148f2a" in t.source and t.as_of == "late 2025"


def test_every_catalog_gpu_type_is_priced_in_us_east_1_like_the_catalog():
    for spec in catalog.gpu_types():
        row = prices.table().lookup(spec.name, "us-east-1")
        assert row is not None, spec.name
        assert row.on_demand == pytest.approx(spec.on_demand_usd_per_hour, rel=0.01), spec.name


def test_spot_discounts_follow_the_data():
    t = prices.table()
    assert t.lookup("p3.2xlarge", "us-east-1").spot_discount == pytest.approx(0.87, abs=0.005)
    assert t.lookup("g5.xlarge", "us-east-1").spot_discount == pytest.approx(0.57, abs=0.005)
    assert t.lookup("ml.p3.2xlarge", "us-west-2").on_demand == 3.06


def test_the_catalog_knows_which_regions_offer_a_type():
    assert "us-west-2" in catalog.regions_offering("p3.2xlarge")
    assert catalog.offered_in("p3.2xlarge", "eu-west-3") is False
    assert catalog.offered_in("p3.2xlarge", "eu-west-1") is True
    assert catalog.offered_in("p3.2xlarge", "xx-nowhere-1") is None  # the table cannot tell
    assert catalog.offered_in("m5.xlarge", "us-east-1") is None


def test_config_refuses_a_type_the_region_does_not_offer():
    with pytest.raises(ConfigError) as err:
        parse_config(
            cluster_config("ecs", **{"aws:region": "eu-west-3", "gpu": {"instanceTypes": ["p3.2xlarge"]}}),
            stack="s",
            now=NOW,
        )
    [problem] = err.value.problems
    assert problem.key == "trainstack:gpu.instanceTypes" and problem.value == ["p3.2xlarge"]
    assert "not offered in eu-west-3" in problem.problem and "us-west-2" in problem.problem
    assert "no p3 types there" in problem.fix and "g6.xlarge" in problem.fix


def test_a_type_the_region_offers_passes():
    cfg = parse_config(cluster_config("ecs", **{"aws:region": "us-west-2"}), stack="s", now=NOW)
    assert cfg.region == "us-west-2"


def cluster(backend="ecs", **overrides):
    return parse_config(cluster_config(backend, **overrides), stack="s", now=NOW)


def test_expected_cost_uses_the_regions_median_spot():
    cost = estimate(cluster(**{"aws:region": "us-west-2", "gpu": {"instanceTypes": ["p3.2xlarge"]}}))
    assert cost.busy_usd_per_hour == 3.06
    assert cost.expected_usd_per_hour == pytest.approx(0.5415, abs=1e-4)  # us-west-2 median spot
    assert cost.max_run_usd == pytest.approx(3.06 * 6) and cost.expected_run_usd == pytest.approx(0.5415 * 6, abs=0.01)
    east = estimate(cluster(gpu={"instanceTypes": ["p3.2xlarge"]}))
    assert east.expected_usd_per_hour == pytest.approx(0.3941, abs=1e-4)


def test_the_on_demand_base_is_priced_on_demand():
    # 2 nodes, 1 on-demand base, half the rest on spot: 1.5 on-demand + 0.5 spot nodes.
    cost = estimate(
        cluster(
            "ec2",
            gpu={"family": "g5", "instanceTypes": ["g5.12xlarge"], "onDemandBase": 1, "spotPercent": 50},
            job={"nodes": 2, "gpusPerNode": 4},
        )
    )
    row = prices.table().lookup("g5.12xlarge", "us-east-1")
    assert cost.expected_usd_per_hour == pytest.approx(1.5 * row.on_demand + 0.5 * row.spot_median, abs=0.01)
    assert cost.busy_usd_per_hour == pytest.approx(2 * row.on_demand)


def test_sagemaker_spot_applies_the_ec2_discount_to_the_sagemaker_price():
    cost = estimate(cluster("sagemaker"))
    assert cost.busy_usd_per_hour == 3.825
    assert cost.expected_usd_per_hour == pytest.approx(3.825 * 0.3941 / 3.06, abs=1e-3)
    on_demand = estimate(cluster("sagemaker", sagemaker={"spot": False}))
    assert on_demand.expected_usd_per_hour == 3.825


@pytest.mark.parametrize("stack", [s for s in STACKS if not s.startswith("platform")])
def test_every_example_cost_line_shows_expected_spot_with_source_and_date(example_plans, stack):
    out = io.StringIO()
    Console(file=out, width=400).print(cost_line(example_plans[stack].cost))
    text = out.getvalue()
    assert "on-demand" in text and "expected $" in text and "with spot" in text and "worst case $" in text
    assert "SkyPilot catalog" in text and "as of late 2025" in text


def test_the_us_west_2_example_is_priced_for_us_west_2(example_plans):
    cost = example_plans["dev-ecs-usw2"].cost
    assert cost.region == "us-west-2"
    west = prices.table().lookup("g5.xlarge", "us-west-2")
    assert cost.busy_low_usd_per_hour == west.on_demand
    assert max(cost.expected_usd_per_hour, cost.expected_low_usd_per_hour) == pytest.approx(west.spot_median, abs=1e-3)


# -- --live-prices ------------------------------------------------------------------------------


class FakeSession:
    """A boto3 session whose clients answer from Stubbers."""

    def __init__(self, clients, credentials=True):
        self.clients, self.credentials = clients, credentials

    def get_credentials(self):
        return object() if self.credentials else None

    def client(self, name, region_name=None):
        assert name != "pricing" or region_name == "us-east-1"  # the Price List API lives there
        return self.clients[name]


def product(usd: str) -> str:
    return json.dumps(
        {
            "terms": {
                "OnDemand": {
                    "SKU.JRTCKXETXF": {
                        "priceDimensions": {"SKU.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}
                    }
                }
            }
        }
    )


def stubbed_session(region="us-west-2"):
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    ec2 = boto3.client("ec2", region_name=region, aws_access_key_id="x", aws_secret_access_key="y")
    ps, es = Stubber(pricing), Stubber(ec2)
    when = dt.datetime(2026, 11, 22, 14, 0, tzinfo=dt.timezone.utc)
    es.add_response(
        "describe_spot_price_history",
        {
            "SpotPriceHistory": [
                {
                    "InstanceType": "p3.2xlarge",
                    "AvailabilityZone": f"{region}a",
                    "SpotPrice": "0.9000",
                    "ProductDescription": "Linux/UNIX",
                    "Timestamp": when - dt.timedelta(hours=3),
                },
                {
                    "InstanceType": "p3.2xlarge",
                    "AvailabilityZone": f"{region}a",
                    "SpotPrice": "0.5000",
                    "ProductDescription": "Linux/UNIX",
                    "Timestamp": when,
                },
                {
                    "InstanceType": "p3.2xlarge",
                    "AvailabilityZone": f"{region}b",
                    "SpotPrice": "0.7000",
                    "ProductDescription": "Linux/UNIX",
                    "Timestamp": when,
                },
                {
                    "InstanceType": "p3.2xlarge",
                    "AvailabilityZone": f"{region}c",
                    "SpotPrice": "0.6000",
                    "ProductDescription": "Linux/UNIX",
                    "Timestamp": when,
                },
            ]
        },
        {"InstanceTypes": ["p3.2xlarge"], "ProductDescriptions": ["Linux/UNIX"], "StartTime": NOW},
    )
    ps.add_response(
        "get_products",
        {"PriceList": [product("3.1000000000")], "FormatVersion": "aws_v1"},
        {
            "ServiceCode": "AmazonEC2",
            "MaxResults": 10,
            "Filters": [
                {"Type": "TERM_MATCH", "Field": k, "Value": v}
                for k, v in {
                    "instanceType": "p3.2xlarge",
                    "regionCode": region,
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                    "licenseModel": "No License required",
                }.items()
            ],
        },
    )
    ps.activate()
    es.activate()
    return FakeSession({"pricing": pricing, "ec2": ec2}), (ps, es)


def test_live_prices_come_from_the_price_list_and_spot_history():
    session, stubs = stubbed_session()
    table = live_prices.fetch(["p3.2xlarge"], "us-west-2", session=session, now=NOW)
    for s in stubs:
        s.assert_no_pending_responses()
    row = table.lookup("p3.2xlarge", "us-west-2")
    assert row.on_demand == 3.1 and row.spot_min == 0.5 and row.spot_median == 0.6 and row.azs == 3
    assert "live" in table.source and table.as_of.startswith("2026-11-22")


def test_the_plan_prices_with_live_answers():
    session, _ = stubbed_session()
    cfg = cluster(**{"aws:region": "us-west-2", "gpu": {"instanceTypes": ["p3.2xlarge"]}})
    cost = _cost(cfg, True, session=session, now=NOW)
    assert cost.busy_usd_per_hour == 3.1 and cost.expected_usd_per_hour == pytest.approx(0.6)
    assert "live" in cost.price_source


def test_without_credentials_the_plan_says_so_and_uses_the_table():
    cfg = cluster(gpu={"instanceTypes": ["p3.2xlarge"]})
    cost = _cost(cfg, True, session=FakeSession({}, credentials=False))
    assert "SkyPilot" in cost.price_source
    assert any("--live-prices: no AWS credentials" in n for n in cost.notes)
