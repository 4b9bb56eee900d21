"""The plan's cache of pure computations (trainstack/model/memo.py) and botocore's reports kept in it
(trainstack/model/scheduler_input.remembered): served only for exactly the same inputs, code and botocore,
and served exactly as computed."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT
from trainstack.model import memo, scheduler_input


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def counting(value):
    calls: list[int] = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def test_a_value_is_computed_once_and_served_in_its_own_order(cache):
    value = {"Zeta": 1, "Alpha": [{"b": 2, "a": 1}], "Mid": "x"}  # an order that is not sorted
    compute, calls = counting(value)
    first = memo.remembered("t", ["in"], compute)
    again = memo.remembered("t", ["in"], compute)
    assert calls == [1] and first == again == value
    assert json.dumps(again) == json.dumps(value)  # the order of keys too: a request's text is data
    memo.remembered("t", ["other"], compute)
    assert calls == [1, 1]


def test_an_edit_of_the_code_computes_anew(cache, monkeypatch):
    compute, calls = counting("report")
    memo.remembered("t", ["in"], compute)
    monkeypatch.setattr(memo, "code_digest", lambda: "edited")
    memo.remembered("t", ["in"], compute)
    assert calls == [1, 1]


def test_off_or_unwritable_computes_every_time(monkeypatch, tmp_path):
    compute, calls = counting("report")
    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", "off")
    memo.remembered("t", ["in"], compute), memo.remembered("t", ["in"], compute)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", str(tmp_path / "file"))  # not a folder
    memo.remembered("t", ["in"], compute), memo.remembered("t", ["in"], compute)
    assert calls == [1, 1, 1, 1]


def test_botocores_reports_are_keyed_by_its_version_and_data_path(cache, monkeypatch):
    import botocore

    compute, calls = counting("")
    scheduler_input.remembered("k", ["autoscaling", {"A": 1}], compute)
    scheduler_input.remembered("k", ["autoscaling", {"A": 1}], compute)
    assert calls == [1]
    monkeypatch.setenv("AWS_DATA_PATH", "/somewhere/models")
    scheduler_input.remembered("k", ["autoscaling", {"A": 1}], compute)
    monkeypatch.setattr(botocore, "__version__", "0.0.0-another")
    scheduler_input.remembered("k", ["autoscaling", {"A": 1}], compute)
    assert calls == [1, 1, 1]


def test_a_plan_served_from_the_cache_is_the_plan_computed(cache):
    """dev-ec2 converts and checks its teardown requests with botocore: cold, then from the cache."""
    from trainstack.plan.planner import plan
    from trainstack.plan.render import to_json

    platforms: dict[str, dict] = {}
    cold = to_json(plan("dev-ec2", ROOT, _platform_cache=platforms))
    assert list((cache / "botocore-universal-input").glob("*.json"))
    assert list((cache / "botocore-universal-target").glob("*.json"))
    warm = to_json(plan("dev-ec2", ROOT, _platform_cache=platforms))
    assert stable(warm) == stable(cold)


def stable(doc: dict) -> str:
    """A plan's JSON without what varies from one evaluation to the next: the seconds it took, the order in
    which the engine recorded the resources, the order of equally long critical paths."""
    doc = {k: v for k, v in doc.items() if k not in ("seconds", "schemaCheckSeconds")}
    doc["resources"] = sorted(doc["resources"], key=lambda r: (r["type"], r["name"], str(r["parent"])))
    doc["timing"] = {k: v for k, v in doc["timing"].items() if k != "critical_path"}
    return json.dumps(doc)  # key order kept: requests' texts are compared as the provider would get them
