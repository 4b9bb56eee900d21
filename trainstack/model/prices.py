"""Regional GPU prices: on-demand and spot per instance type and region, from a dated table (pure).

The table (`trainstack/model/data/gpu_prices.csv`) names its source and date in its header; estimates
built from it print both. `trainstack plan --live-prices` replaces it with AWS's own answers
(`trainstack/plan/live_prices.py`).
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RegionalPrice:
    """One instance type's on-demand and spot prices in one region (USD per instance-hour)."""

    instance_type: str
    region: str
    on_demand: float  # USD per instance-hour
    spot_min: float | None  # lowest spot price over the region's AZs (None: no spot offer listed)
    spot_median: float | None  # median spot price over the region's AZs
    azs: int = 0

    @property
    def spot_discount(self) -> float | None:
        """Median spot saving against on-demand, 0..1."""
        if self.spot_median is None or self.on_demand <= 0:
            return None
        return max(0.0, 1 - self.spot_median / self.on_demand)


@dataclass(frozen=True)
class PriceTable:
    """Prices by (instance type, region), with where they come from and as of when."""

    prices: dict[tuple[str, str], RegionalPrice]
    source: str
    as_of: str

    def lookup(self, instance_type: str, region: str) -> RegionalPrice | None:
        return self.prices.get((_ec2_name(instance_type), region))

    def regions_offering(self, instance_type: str) -> tuple[str, ...]:
        name = _ec2_name(instance_type)
        return tuple(sorted(r for t, r in self.prices if t == name))

    def types_in(self, region: str) -> tuple[str, ...]:
        return tuple(sorted(t for t, r in self.prices if r == region))

    def knows_type(self, instance_type: str) -> bool:
        return bool(self.regions_offering(instance_type))

    def knows_region(self, region: str) -> bool:
        return bool(self.types_in(region))


def _ec2_name(instance_type: str) -> str:
    return instance_type[3:] if instance_type.startswith("ml.") else instance_type


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def parse(text: str) -> PriceTable:
    """A price table from its CSV text: `# key: value` header comments, then the rows."""
    meta: dict[str, str] = {}
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            if value and key.strip() in ("source", "as-of"):
                meta[key.strip()] = value.strip()
        elif line.strip():
            lines.append(line)
    prices = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        p = RegionalPrice(
            row["instance_type"],
            row["region"],
            float(row["on_demand"]),
            _number(row["spot_min"]),
            _number(row["spot_median"]),
            int(row["azs"] or 0),
        )
        prices[(p.instance_type, p.region)] = p
    return PriceTable(prices, meta.get("source", "unknown source"), meta.get("as-of", "undated"))


@functools.cache
def table() -> PriceTable:
    """The packaged table (read once per process)."""
    # Beside this module (what importlib.resources.files reads for a package on disk, without its reader: ~2 ms).
    return parse((Path(__file__).parent / "data" / "gpu_prices.csv").read_text(encoding="utf-8"))
