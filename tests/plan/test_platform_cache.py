"""The platform outputs kept between plans (trainstack/plan/platform_cache.py): where they live, and that any
change to what they are computed from (the platform stack file, the project files, the code) computes them anew
rather than serving stale outputs to a cluster plan."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.helpers import ROOT, copy_project
from trainstack.model import memo
from trainstack.plan import planner, platform_cache


@pytest.fixture
def evaluations(monkeypatch) -> list[str]:
    """The platform stacks evaluated (cache misses) while the test runs."""
    seen: list[str] = []
    real = planner._evaluate_platform

    def counting(platform_name, local, root, now):
        seen.append(local)
        return real(platform_name, local, root, now)

    monkeypatch.setattr(planner, "_evaluate_platform", counting)
    return seen


def outputs(root: Path) -> dict:
    """What a new plan process sees: no outputs kept in memory, only the cache on disk."""
    return planner.platform_outputs("platform", root, _cache={})


def test_the_cache_lives_outside_the_checkout_where_xdg_says(monkeypatch, tmp_path):
    monkeypatch.delenv("TRAINSTACK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert memo.cache_dir() == tmp_path / "xdg" / "trainstack"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert memo.cache_dir() == tmp_path / "home" / ".cache" / "trainstack"
    assert not memo.cache_dir().is_relative_to(ROOT)  # type: ignore[union-attr]
    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", str(tmp_path / "mine"))
    assert memo.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", "off")
    assert memo.cache_dir() is None


def test_an_edited_platform_stack_file_is_evaluated_anew(monkeypatch, tmp_path, evaluations):
    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "p").mkdir()
    root = copy_project(tmp_path / "p")
    first = outputs(root)
    assert evaluations == ["platform"] and len(first["availabilityZones"]) == 2
    assert outputs(root) == first and evaluations == ["platform"]  # unchanged: served from the cache
    stored = list((tmp_path / "cache" / "platform-outputs").glob("*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["value"] == first

    stack_file = root / "stacks" / "Pulumi.platform.yaml"
    stack_file.write_text(stack_file.read_text().replace("trainstack:azCount: 2", "trainstack:azCount: 3"))
    edited = outputs(root)
    assert evaluations == ["platform", "platform"] and len(edited["availabilityZones"]) == 3
    assert outputs(root) == edited and len(evaluations) == 2

    (root / "Pulumi.yaml").write_text((root / "Pulumi.yaml").read_text() + "\n# an edit\n")
    assert outputs(root) == edited and len(evaluations) == 3  # the project file is part of the key too


def test_changed_code_or_sdks_give_another_key(monkeypatch, tmp_path):
    stack_file = ROOT / "stacks" / "Pulumi.platform.yaml"
    before = platform_cache.key(ROOT, stack_file)
    assert platform_cache.key(ROOT, stack_file) == before
    monkeypatch.setattr(memo, "code_digest", lambda: "edited-code")
    assert platform_cache.key(ROOT, stack_file) != before
    monkeypatch.undo()
    monkeypatch.setattr(platform_cache, "_sdk_versions", lambda: "pulumi_aws=[another version]")
    assert platform_cache.key(ROOT, stack_file) != before


def test_the_code_digest_sees_every_source_edit_but_not_bytecode(tmp_path):
    def digest(folder: Path) -> str:
        h = hashlib.sha256()
        memo.tree_digest(folder, h)
        return h.hexdigest()

    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "a.py").write_text("X = 1\n")
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "c.py").write_text("Y = 1\n")
    (tmp_path / "pkg" / "components").symlink_to("../components")  # as trainstack/components is
    base = digest(tmp_path / "pkg")
    (tmp_path / "pkg" / "sub" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "sub" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert digest(tmp_path / "pkg") == base
    (tmp_path / "components" / "c.py").write_text("Y = 2\n")  # through the symlink
    changed = digest(tmp_path / "pkg")
    assert changed != base
    (tmp_path / "pkg" / "sub" / "b.py").write_text("")  # a new module
    assert digest(tmp_path / "pkg") not in (base, changed)


def test_a_damaged_or_unwritable_cache_is_skipped(monkeypatch, tmp_path):
    """An entry that cannot be read, or was stored under another key, is never served: the platform is
    evaluated again (here a stand-in evaluation: what is tested is the choice, not the evaluation)."""
    evaluated: list[int] = []

    def evaluate(platform_name, local, root, now):
        evaluated.append(1)
        return {"evaluation": len(evaluated)}

    monkeypatch.setattr(planner, "_evaluate_platform", evaluate)
    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", str(tmp_path / "cache"))
    assert outputs(ROOT) == {"evaluation": 1} and outputs(ROOT) == {"evaluation": 1}
    (entry,) = (tmp_path / "cache" / "platform-outputs").glob("*.json")
    entry.write_text("{not json")
    assert outputs(ROOT) == {"evaluation": 2}
    doc = json.loads(entry.read_text())
    doc["key"] = "another"  # the file name is a digest, but only the digest inside the entry is trusted
    entry.write_text(json.dumps(doc))
    assert outputs(ROOT) == {"evaluation": 3}
    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", str(entry))  # a file, not a folder: nothing can be stored
    assert outputs(ROOT) == {"evaluation": 4} and outputs(ROOT) == {"evaluation": 5}
