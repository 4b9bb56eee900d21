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


def _tree(tmp_path):
    folder = tmp_path / "pkg"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.py").write_text("A = 1\n")
    (folder / "sub" / "b.py").write_text("B = 2\n")
    return folder


_TREE_DIGEST = memo.tree_digest  # what the digest is, read directly (the tests below count memo's reads)


def _hashed(folder) -> str:
    import hashlib

    h = hashlib.sha256()
    _TREE_DIGEST(folder, h)
    return h.hexdigest()


def _reads(monkeypatch) -> list[int]:
    reads: list[int] = []
    real = memo.tree_digest
    monkeypatch.setattr(memo, "tree_digest", lambda folder, h: reads.append(1) or real(folder, h))
    return reads


def test_the_code_digest_is_reused_while_no_file_changed_and_taken_anew_after_any_write(cache, tmp_path, monkeypatch):
    """code_digest keeps the digest with every file's stat (memo.folder_digest): reused while no stat changed,
    taken anew after a write, also one that keeps the size and puts the old mtime back (the ctime moves)."""
    import os
    import time

    folder = _tree(tmp_path)
    monkeypatch.setattr(memo, "RACY_NS", 0)  # these files were just written: see the next test for that case
    first = memo.folder_digest(folder)
    reads = _reads(monkeypatch)
    assert memo.folder_digest(folder) == first == _hashed(folder) and reads == []  # served from the index
    (folder / "sub" / "c.py").write_text("")  # a new file
    assert memo.folder_digest(folder) == _hashed(folder) != first and reads == [1]
    second = memo.folder_digest(folder)
    assert reads == [1]
    time.sleep(0.05)  # past the file system's timestamp granularity
    before = os.stat(folder / "a.py")
    (folder / "a.py").write_text("A = 2\n")  # the same size
    os.utime(folder / "a.py", ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old mtime
    assert memo.folder_digest(folder) == _hashed(folder) != second and reads == [1, 1]


def test_a_file_written_just_before_its_digest_was_taken_is_read_again(cache, tmp_path, monkeypatch):
    """git's "racy clean" case: a write in the same timestamp tick as the digest could leave every stat as it
    was, so a file whose ctime is that recent is never trusted to the index (the tree is hashed again)."""
    folder = _tree(tmp_path)  # written now: within RACY_NS of any digest taken in this test
    first = memo.folder_digest(folder)
    reads = _reads(monkeypatch)
    assert memo.folder_digest(folder) == first and reads == [1]


def test_an_unreadable_code_digest_index_is_taken_anew(cache, tmp_path, monkeypatch):
    folder = _tree(tmp_path)
    monkeypatch.setattr(memo, "RACY_NS", 0)
    first = memo.folder_digest(folder)
    (index,) = (cache / "code-digest").glob("*.json")
    index.write_text("{not json")
    reads = _reads(monkeypatch)
    assert memo.folder_digest(folder) == first and reads == [1]
    assert memo.folder_digest(folder) == first and reads == [1]  # rewritten, then served
    assert memo.code_digest() == _hashed(ROOT / "trainstack")  # the package's own, as it always was
