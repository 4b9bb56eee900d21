"""Cost so far (`trainstack ls`): instance intervals × prices, property-tested."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trainstack.model.cost import Interval, elapsed_cost, hourly_rate_now

T0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
PRICES = {"p3.2xlarge": 3.06, "g5.xlarge": 1.006}


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@st.composite
def intervals(draw, max_size: int = 8):
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        start = draw(st.integers(0, 600))
        length = draw(st.one_of(st.none(), st.integers(0, 600)))
        out.append(
            Interval(
                draw(st.sampled_from(["i-a", "i-b", "i-c"])),
                draw(st.sampled_from(sorted(PRICES))),
                at(start),
                None if length is None else at(start + length),
            )
        )
    return out


def minutes_covered(ivs: list[Interval], now: dt.datetime) -> dict[tuple[str, str], set[int]]:
    """Brute force: the set of whole minutes each (instance, type) ran before `now`."""
    cover: dict[tuple[str, str], set[int]] = {}
    limit = int((now - T0).total_seconds() // 60)
    for iv in ivs:
        s = int((iv.start - T0).total_seconds() // 60)
        e = limit if iv.end is None else min(limit, int((iv.end - T0).total_seconds() // 60))
        cover.setdefault((iv.instance_id, iv.price_key), set()).update(range(s, max(s, e)))
    return cover


@given(intervals(), st.integers(0, 1300))
def test_cost_is_the_union_of_each_instances_minutes_times_its_price(ivs, now_min):
    now = at(now_min)
    expected = sum(len(m) / 60 * PRICES[key] for (_, key), m in minutes_covered(ivs, now).items())
    assert elapsed_cost(ivs, PRICES, now).usd == pytest.approx(expected, abs=1e-9)


@given(intervals(), st.integers(0, 1300))
def test_an_instance_seen_twice_is_billed_once(ivs, now_min):
    # A scaling activity and DescribeInstances report the same instance: no double count.
    now = at(now_min)
    assert elapsed_cost(ivs + ivs, PRICES, now).usd == pytest.approx(elapsed_cost(ivs, PRICES, now).usd)
    assert elapsed_cost(list(reversed(ivs)), PRICES, now).usd == pytest.approx(elapsed_cost(ivs, PRICES, now).usd)


@given(st.integers(0, 600), st.integers(1, 600), st.data())
def test_splitting_an_interval_anywhere_keeps_the_cost(start, length, data):
    cut = data.draw(st.integers(start, start + length))
    overlap = data.draw(st.integers(0, 30))
    whole = [Interval("i-a", "p3.2xlarge", at(start), at(start + length))]
    pieces = [
        Interval("i-a", "p3.2xlarge", at(start), at(cut)),
        Interval("i-a", "p3.2xlarge", at(max(start, cut - overlap)), at(start + length)),
    ]
    now = at(2000)
    assert elapsed_cost(pieces, PRICES, now).usd == pytest.approx(elapsed_cost(whole, PRICES, now).usd)
    assert elapsed_cost(whole, PRICES, now).usd == pytest.approx(length / 60 * 3.06)


@given(intervals(), st.integers(0, 1300), st.integers(0, 300))
def test_cost_never_falls_as_time_passes_and_is_never_negative(ivs, now_min, later):
    early = elapsed_cost(ivs, PRICES, at(now_min)).usd
    assert 0 <= early <= elapsed_cost(ivs, PRICES, at(now_min + later)).usd + 1e-9


@given(st.integers(0, 600), st.integers(0, 600))
def test_an_open_interval_runs_until_now(start, running_for):
    now = at(start + running_for)
    open_iv = [Interval("i-a", "g5.xlarge", at(start))]
    closed = [Interval("i-a", "g5.xlarge", at(start), now)]
    assert elapsed_cost(open_iv, PRICES, now).usd == pytest.approx(elapsed_cost(closed, PRICES, now).usd)
    assert elapsed_cost(open_iv, PRICES, now).instance_hours == pytest.approx(running_for / 60)


def test_an_instance_launched_after_now_costs_nothing_and_unknown_types_are_named():
    ivs = [Interval("i-a", "p3.2xlarge", at(120)), Interval("i-b", "x9.huge", at(0), at(60))]
    cost = elapsed_cost(ivs, PRICES, at(60))
    assert cost.usd == 0 and cost.unpriced == ("x9.huge",) and cost.instance_hours == pytest.approx(1)


def test_rate_now_counts_running_instances_once():
    ivs = [
        Interval("i-a", "p3.2xlarge", at(0)),
        Interval("i-a", "p3.2xlarge", at(10)),
        Interval("i-b", "g5.xlarge", at(0), at(30)),
        Interval("i-c", "g5.xlarge", at(0), at(90)),
    ]
    assert hourly_rate_now(ivs, PRICES, at(60)) == pytest.approx(3.06 + 1.006)
