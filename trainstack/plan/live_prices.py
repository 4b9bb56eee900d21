"""`trainstack plan --live-prices`: ask AWS for today's prices instead of the packaged table.

On-demand: the Price List API (`pricing.get_products`, served from us-east-1), Linux, shared
tenancy, no pre-installed software (the filter set of terraform's `aws_pricing_product` example).
Spot: `ec2.describe_spot_price_history` for Linux/UNIX in the stack's region, the latest price per
availability zone, whose lowest and median become the row. The answer is a `PriceTable` like the
packaged one, so the cost model does not care where prices came from.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Iterable

from trainstack.model.catalog import ec2_name
from trainstack.model.prices import PriceTable, RegionalPrice


class LivePriceError(Exception):
    """No credentials, or AWS refused: the plan falls back to the packaged table and says why."""


def on_demand_price(pricing, instance_type: str, region: str) -> float | None:
    filters = {
        "instanceType": ec2_name(instance_type),
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    response = pricing.get_products(
        ServiceCode="AmazonEC2",
        MaxResults=10,
        Filters=[{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()],
    )
    for item in response.get("PriceList", []):
        product = json.loads(item) if isinstance(item, str) else item
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if usd and float(usd) > 0:
                    return float(usd)
    return None


def spot_prices(ec2, instance_types: Iterable[str], now: dt.datetime) -> dict[str, list[float]]:
    """Latest Linux/UNIX spot price per AZ, per type (StartTime = now returns the current price per AZ)."""
    latest: dict[tuple[str, str], tuple[dt.datetime, float]] = {}
    kwargs = {
        "InstanceTypes": [ec2_name(t) for t in instance_types],
        "ProductDescriptions": ["Linux/UNIX"],
        "StartTime": now,
    }
    while True:
        page = ec2.describe_spot_price_history(**kwargs)
        for p in page.get("SpotPriceHistory", []):
            key = (p["InstanceType"], p["AvailabilityZone"])
            if key not in latest or p["Timestamp"] > latest[key][0]:
                latest[key] = (p["Timestamp"], float(p["SpotPrice"]))
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    out: dict[str, list[float]] = {}
    for (t, _az), (_ts, price) in latest.items():
        out.setdefault(t, []).append(price)
    return out


def fetch(instance_types: Iterable[str], region: str, *, session=None, now: dt.datetime | None = None) -> PriceTable:
    """A PriceTable for `instance_types` in `region`, from AWS. Raises LivePriceError."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = session or boto3.Session()
    if session.get_credentials() is None:
        raise LivePriceError("no AWS credentials found (--live-prices needs them)")
    now = now or dt.datetime.now(dt.timezone.utc)
    types = [ec2_name(t) for t in instance_types]
    try:
        pricing = session.client("pricing", region_name="us-east-1")  # the Price List API's endpoint
        ec2 = session.client("ec2", region_name=region)
        spot = spot_prices(ec2, types, now)
        rows = {}
        for t in types:
            od = on_demand_price(pricing, t, region)
            if od is None:
                continue
            zone_prices = sorted(spot.get(t, []))
            rows[(t, region)] = RegionalPrice(
                t,
                region,
                od,
                zone_prices[0] if zone_prices else None,
                statistics.median(zone_prices) if zone_prices else None,
                len(zone_prices),
            )
    except (BotoCoreError, ClientError) as exc:
        raise LivePriceError(f"AWS did not answer: {exc}") from None
    return PriceTable(rows, "AWS Price List API + DescribeSpotPriceHistory (live)", f"{now:%Y-%m-%d %H:%M} UTC")
