"""The plan's table of compiled dataclass methods (trainstack/cli/dataclass_code.py): a class made with it is the
class Python makes without it, the next process compiles nothing it already has, and a changed class is never
served an old method."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from trainstack.cli import dataclass_code


def _classes(n_default: int = 3, *, more: bool = False) -> dict[str, type]:
    """Dataclasses with what the model uses: frozen, defaults, default factories, ordering. `n_default` only
    changes a default (passed to the generated __init__, not written into it); `more` adds a field."""

    @dataclasses.dataclass(frozen=True)
    class Gpu:
        instance_types: tuple[str, ...]
        max_nodes: int = n_default
        spot: bool = False

    if more:

        @dataclasses.dataclass(frozen=True)
        class Gpu:  # type: ignore[no-redef]
            instance_types: tuple[str, ...]
            max_nodes: int = n_default
            spot: bool = False
            zones: int = 2

    @dataclasses.dataclass
    class Report:
        violations: list[str] = dataclasses.field(default_factory=list)
        levels: dict[str, str] = dataclasses.field(default_factory=dict)
        resources: int = 0

    @dataclasses.dataclass(order=True, frozen=True)
    class Version:
        major: int
        minor: int = 0

    return {"Gpu": Gpu, "Report": Report, "Version": Version}


def _methods(cls: type) -> dict[str, tuple]:
    """What each generated method is: its bytecode, constants, names and annotations."""
    out = {}
    for name, fn in vars(cls).items():
        code = getattr(fn, "__code__", None)
        if code is not None and code.co_filename == "<string>":
            out[name] = (code.co_code, code.co_consts, code.co_names, code.co_varnames, fn.__annotations__)
    return out


@pytest.fixture
def table(tmp_path, monkeypatch):
    """A table (in tmp_path) installed for the test's duration, as `trainstack plan` installs it."""
    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delattr(dataclasses, "exec", raising=False)
    installed = dataclass_code.install()
    assert installed is not None
    yield installed
    dataclass_code.uninstall(installed)


def test_a_class_made_with_the_table_is_the_class_python_makes(table):
    made = _classes()
    dataclass_code.uninstall(table)
    plain = _classes()
    assert table.compiled > 0
    for name in plain:
        assert _methods(made[name]) == _methods(plain[name]) != {}
    gpu = made["Gpu"](("g5.xlarge",))
    assert gpu == made["Gpu"](("g5.xlarge",), 3) and hash(gpu) == hash(made["Gpu"](("g5.xlarge",), 3, False))
    assert (
        repr(gpu)
        == repr(plain["Gpu"](("g5.xlarge",)))
        == "_classes.<locals>.Gpu(instance_types=('g5.xlarge',), max_nodes=3, spot=False)"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        gpu.spot = True  # type: ignore[misc]
    assert made["Version"](1, 2) < made["Version"](2)
    assert made["Report"]().violations is not made["Report"]().violations  # a new list per instance


def test_the_next_plan_compiles_nothing_it_has_and_a_changed_class_anew(table):
    _classes()
    assert table.compiled > 0
    table.save()
    assert table.path is not None and table.path.exists()
    dataclass_code.uninstall(table)

    again = dataclass_code.install()  # what the next `trainstack plan` process loads
    assert again is not None
    try:
        same = _classes()
        assert again.compiled == 0
        other_default = _classes(n_default=8)  # the same texts: the default is an argument of the code
        assert again.compiled == 0
        assert other_default["Gpu"](("p5.48xlarge",)).max_nodes == 8
        assert same["Gpu"](("p5.48xlarge",)).max_nodes == 3
        changed = _classes(more=True)  # a field more: new texts (__init__, __repr__, __eq__, ...), compiled
        assert again.compiled > 0
        assert repr(changed["Gpu"](("p5.48xlarge",))).endswith("max_nodes=3, spot=False, zones=2)")
    finally:
        dataclass_code.uninstall(again)


def test_an_unreadable_table_is_skipped_and_a_cache_that_is_off_is_never_written(tmp_path, monkeypatch):
    monkeypatch.delattr(dataclasses, "exec", raising=False)
    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", str(tmp_path / "cache"))
    path = dataclass_code.table_path()
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not marshal data")
    table = dataclass_code.install()
    assert table is not None
    try:
        version = _classes()["Version"]
        assert version(1) == version(1, 0)
        table.save()  # replaces the unreadable file
    finally:
        dataclass_code.uninstall(table)
    assert dataclass_code._load(path)

    monkeypatch.setenv("TRAINSTACK_CACHE_DIR", "off")
    off = dataclass_code.install()
    assert off is not None and off.path is None
    try:
        _classes()
        off.save()  # nowhere to write: nothing happens
    finally:
        dataclass_code.uninstall(off)


def test_trainstack_plan_writes_the_table_and_its_next_run_finds_every_method_in_it(tmp_path):
    """Two plans in fresh processes (of a stack file that does not exist: the model is imported all the same, and
    the plan fails fast): the first writes the table, the second compiles nothing, so it leaves the file alone."""
    exe = Path(sys.executable).parent / "trainstack"
    env = {"TRAINSTACK_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def plan() -> Path:
        proc = subprocess.run([exe, "plan", "no-such-stack"], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 2 and "no stack file stacks/Pulumi.no-such-stack.yaml" in proc.stderr
        (table,) = (tmp_path / "cache" / dataclass_code.KIND).glob("*.marshal")
        return table

    table = plan()
    codes = dataclass_code._load(table)
    assert any("def __init__(" in text for text in codes)  # the config model's classes, compiled
    written = table.stat().st_mtime_ns
    plan()
    assert table.stat().st_mtime_ns == written
