"""The config table (trainstack/model/config/table.py) is the one declaration of every key: the reader, the
Pulumi.yaml schema and docs/configuration.md follow it, and backend rules follow the backends' capabilities."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.helpers import NOW, PLATFORM_CONFIG, ROOT, STACKS, cluster_config
from trainstack import backends
from trainstack.backends import AmiSource, Backend, Capabilities, CommandRule, IdleCost, SpotMode, StackOutputs
from trainstack.model import config as C
from trainstack.model.config.generate import configuration_md, with_config
from trainstack.model.config.settings import Derived, Reader, Setting, Type, settings_of
from trainstack.plan.planner import load_raw_config


def parse(raw: dict, stack: str = "s"):
    return C.parse_config(raw, stack=stack, now=NOW)


def problems_of(raw: dict) -> list[C.Problem]:
    with pytest.raises(C.ConfigError) as info:
        parse(raw)
    return info.value.problems


# ---------------------------------------------------------------------------- generated files


def test_pulumi_yaml_config_schema_is_the_table():
    text = (ROOT / "Pulumi.yaml").read_text()
    assert with_config(text) == text, "Pulumi.yaml's config: section drifted from the table: run `make config-docs`"


def test_configuration_reference_is_the_table():
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert configuration_md() == text, "docs/configuration.md drifted from the table: run `make config-docs`"


def test_a_changed_default_shows_in_both_generated_files(monkeypatch, request):
    """The drift tests can fail: the generated text follows the declaration."""
    field = next(f for f in dataclasses.fields(C.PlatformConfig) if f.name == "az_count")
    changed = dataclasses.replace(field.metadata["setting"], default=3)
    monkeypatch.setattr(field, "metadata", {"setting": changed})
    settings_of.cache_clear()
    request.addfinalizer(settings_of.cache_clear)
    assert "  azCount:\n    type: integer\n    default: 3\n" in with_config((ROOT / "Pulumi.yaml").read_text())
    assert "| `azCount` | integer | `3` | 2-6 |" in configuration_md()


def test_regenerating_writes_nothing_new(tmp_path):
    from trainstack.model.config.__main__ import main

    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "configuration.md").write_text("stale\n")
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert main(["--root", str(tmp_path)]) == 0
    assert (tmp_path / "docs" / "configuration.md").read_text() == configuration_md()
    assert main(["--root", str(tmp_path), "--check"]) == 0


# ---------------------------------------------------------------------------- the table and the reader agree


@dataclasses.dataclass(frozen=True)
class Row:
    """One declared key and how to reach it: a stack where it is read, and where its value lands."""

    key: str  # trainstack:gpu.instanceTypes
    setting: Setting
    base: Callable[[], dict[str, Any]]  # a valid config in which the key is read
    get: Callable[[Any], Any]  # StackConfig -> the parsed value

    def __str__(self) -> str:
        return self.key


def _applying_backend(s: Setting, section_backend: str | None) -> str:
    if section_backend:
        return section_backend
    candidates = ["ecs"] + [n for n in backends.names() if n != "ecs"]  # the helper's default first
    return next(n for n in candidates if s.applies is None or s.applies.test(backends.get(n).capabilities))


def _walk(
    cls: type, prefix: str, base: Callable[[str | None, Setting], dict], get: Callable[[Any], Any], backend=None
) -> Iterator[Row]:
    for attribute, s in settings_of(cls):
        here = (lambda obj, g=get, a=attribute: getattr(g(obj), a)) if s.type is Type.SECTION else None
        if s.type is Type.SECTION:
            assert s.section is not None and here is not None
            yield from _walk(s.section, f"{prefix}{s.key}.", base, here, s.backend or backend)
            continue
        key = f"trainstack:{prefix}{s.key}"
        yield Row(key, s, lambda b=backend, s=s: base(b, s), lambda obj, g=get, a=attribute: getattr(g(obj), a))


def _platform_base(_backend, s: Setting) -> dict:
    raw = dict(PLATFORM_CONFIG)
    if s.key != "sharedCluster" and any(s is p for _, p in settings_of(C.PlatformEksConfig)):
        raw["trainstack:eks"] = {"sharedCluster": True}  # the platform's eks keys apply only with it
    return raw


def _cluster_base(backend, s: Setting) -> dict:
    raw = cluster_config(_applying_backend(s, backend))
    if s.key == "ttlHours":  # the other way to set the expiry, so that ttlHours may be left out
        raw["trainstack:expiresAt"] = "2026-11-22T18:00:00Z"
    return raw


ROWS = [
    Row("trainstack:kind", C.table.KIND, lambda: dict(PLATFORM_CONFIG), lambda cfg: cfg.kind),
    Row("trainstack:owner", C.table.OWNER, lambda: cluster_config(), lambda cfg: cfg.owner),
    *_walk(C.PlatformConfig, "", _platform_base, lambda cfg: cfg.platform),
    *_walk(C.ClusterConfig, "", _cluster_base, lambda cfg: cfg.cluster),
]

WRONG = {
    Type.INT: "many",
    Type.NUMBER: "soon",
    Type.BOOL: "maybe",
    Type.STRING: ["not", "a", "string"],
    Type.CHOICE: "none-of-these",
    Type.TIME: "yesterday",
    Type.STRINGS: 42,
    Type.MAP: 42,
}


def _with(raw: dict, key: str, value: Any) -> dict:
    """`raw` with `trainstack:a.b` set (or removed for value None)."""
    top, _, inner = key.partition(".")
    out = {**raw}
    if not inner:
        out.pop(top, None) if value is None else out.__setitem__(top, value)
        return out
    obj = dict(out.get(top) or {})
    obj.pop(inner, None) if value is None else obj.__setitem__(inner, value)
    out[top] = obj
    return out


def test_the_table_covers_every_object():
    keys = {r.key for r in ROWS}
    assert {"trainstack:gpu.instanceTypes", "trainstack:eks.releaseVersion", "trainstack:dataLake.protect"} <= keys
    # eks.version, systemInstanceType, publicAccessCidrs, controlPlaneLogs, adminRoles, viewerRoles: platform and cluster
    assert len(keys) == len(ROWS) - 6


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_a_value_of_the_wrong_type_is_refused_naming_the_key(row: Row):
    """A key in the table that the reader never read would let this value through."""
    problems = problems_of(_with(row.base(), row.key, WRONG[row.setting.type]))
    assert row.key in [p.key for p in problems], [str(p) for p in problems]
    assert all(p.fix for p in problems)


@pytest.mark.parametrize("row", [r for r in ROWS if r.setting.static_default], ids=str)
def test_a_missing_key_gets_the_default_the_table_declares(row: Row):
    cfg = parse(_with(row.base(), row.key, None))
    assert row.get(cfg) == row.setting.default


@pytest.mark.parametrize("row", [r for r in ROWS if r.setting.lo is not None and r.setting.type is Type.INT], ids=str)
def test_the_bounds_the_table_declares_are_the_ones_enforced(row: Row):
    s = row.setting
    assert s.lo is not None and s.hi is not None
    for outside in (int(s.lo) - 1, int(s.hi) + 1):
        problems = problems_of(_with(row.base(), row.key, outside))
        text = " ".join(str(p) for p in problems if p.key == row.key)
        assert f"from {int(s.lo)} to {int(s.hi)}" in text, text


def test_every_key_the_parse_reads_is_declared(monkeypatch):
    sections = {f"trainstack:{s.key}" for cls in (C.PlatformConfig, C.ClusterConfig) for _, s in settings_of(cls)}
    declared = {r.key for r in ROWS} | sections
    seen: set[str] = set()
    monkeypatch.setattr(Reader, "trace", seen)
    for stack in STACKS:
        _, raw = load_raw_config(stack, ROOT)
        C.parse_config(raw, stack=stack, now=NOW, root=str(ROOT))
    for backend in backends.names():
        parse(cluster_config(backend, job={"environment": {"A": "1"}}))
    assert seen, "the trace saw nothing"
    assert seen <= declared, f"read but not declared in the table: {sorted(seen - declared)}"
    # ...and with the examples and the four backends, most of the table is exercised
    unread = declared - seen
    assert len(unread) < 0.2 * len(declared), sorted(unread)


def test_schema_defaults_are_the_tables_top_level_defaults():
    assert C.SCHEMA_DEFAULTS == {
        r.key.removeprefix("trainstack:"): r.setting.default
        for r in ROWS
        if "." not in r.key
        and r.setting.type not in (Type.SECTION, Type.MAP)
        and r.setting.static_default
        and r.setting.default is not None
    }


def test_schema_defaults_are_accepted_in_either_kind_as_the_engine_hands_them():
    """Pulumi applies Pulumi.yaml's defaults to every stack, and hands programs scalars as text."""
    as_text = {
        f"trainstack:{k}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in C.SCHEMA_DEFAULTS.items()
    }
    parse({**cluster_config(), **as_text})
    parse({**PLATFORM_CONFIG, **as_text}, stack="platform")
    # ...but a value other than the default is still refused in the other kind of stack
    problems = problems_of({**cluster_config(), "trainstack:flowLogs": "true"})
    assert any(p.key == "trainstack:flowLogs" and "applies to platform stacks" in p.problem for p in problems)


def test_derived_defaults_say_what_they_derive_from():
    derived = {r.key: r.setting.default.text for r in ROWS if isinstance(r.setting.default, Derived)}
    assert derived["trainstack:gpu.maxInstances"] == "`job.nodes`"
    cfg = parse(cluster_config("ec2", job={"nodes": 3}, gpu={"maxInstances": None}))
    assert cfg.cluster.gpu.max_instances == 3


# ---------------------------------------------------------------------------- issue 16.13


@pytest.mark.parametrize("backend", ["ec2", "ecs", "eks", "sagemaker"])
def test_an_empty_instance_type_list_is_refused_naming_the_key(backend):
    """Before: accepted, and the program failed with 'no single AWS-maintained AMI drives  on the ecs backend'."""
    problems = problems_of(cluster_config(backend, gpu={"instanceTypes": []}))
    mine = [p for p in problems if p.key == "trainstack:gpu.instanceTypes"]
    assert mine and mine[0].problem == "is empty" and mine[0].value == []
    assert "list GPU instance types" in mine[0].fix
    assert not any("AMI" in str(p) for p in problems)


def _parse_as_unprivileged(raw: dict) -> str:
    """parse_config's outcome ("ok" or the error text) as a process that mode-000 entries are closed to.

    Root reads them anyway (CAP_DAC_OVERRIDE), so under root (CI containers) the parse runs in a forked
    child that drops to `nobody` first."""

    def outcome() -> str:
        try:
            C.parse_config(raw, stack="s", now=NOW)
        except C.ConfigError as exc:
            return str(exc)
        return "ok"

    if os.geteuid() != 0:
        return outcome()
    import trainstack.model.code_delivery  # noqa: F401 - imported before dropping privileges
    import trainstack.model.torchrun  # noqa: F401

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_end, outcome().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged child failed"
    return text


def test_a_workdir_with_unreadable_entries_is_refused_naming_the_key():
    """Before: accepted, and the plan died in the code bundle with a PermissionError traceback."""
    folder = tempfile.mkdtemp(prefix="trainstack-workdir-")
    try:
        os.chmod(folder, 0o755)  # the unprivileged reader must reach it
        for name, mode in (("train.py", 0o644), ("secret.py", 0o000)):
            path = os.path.join(folder, name)
            with open(path, "w") as f:
                f.write("print('hi')\n")
            os.chmod(path, mode)
        os.mkdir(os.path.join(folder, "data"), 0o000)
        os.chmod(os.path.join(folder, "data"), 0o000)
        raw = cluster_config(job={"workdir": folder, "command": ["python", "train.py"]})
        if os.geteuid() == 0:
            parse(raw)  # root reads every entry: nothing to refuse
        text = _parse_as_unprivileged(raw)
    finally:
        os.chmod(os.path.join(folder, "data"), 0o755)
        import shutil

        shutil.rmtree(folder)
    assert "trainstack:job.workdir" in text, text
    assert "cannot read (data/, secret.py: permission denied)" in text
    assert "Fix: make them readable" in text
    assert "Traceback" not in text and "PermissionError" not in text


# ---------------------------------------------------------------------------- rules follow capabilities


@pytest.fixture
def fake_backend():
    """A fifth backend declared with plain capabilities: no edit to config."""
    fake = Backend(
        name="fake",
        summary="a test's single-node service backend",
        capabilities=Capabilities(
            multi_node=False,
            spot=SpotMode.MIXED,
            elastic_restart=False,
            placement_group=True,
            ami=AmiSource.SERVICE,
            command=CommandRule.NEVER,
        ),
        program="tests.nowhere",
        follower=None,
        job_resources=(),
        started_by=None,
        after_up=(),
        outputs=StackOutputs,  # no outputs of its own (the program never runs here)
        idle=IdleCost.NOTHING,
        idle_note="Idle: nothing runs.",
    )
    backends.register(fake)
    yield fake
    backends.unregister(fake.name)


def test_a_fake_backend_declared_by_capabilities_validates(fake_backend):
    cfg = parse(cluster_config("fake"))
    assert isinstance(cfg, C.ClusterStack) and cfg.backend == "fake"
    assert cfg.cluster.gpu.instance_types == ("p3.2xlarge", "p3.8xlarge")

    problems = problems_of(cluster_config("fake", job={"nodes": 2}))
    nodes = [p for p in problems if p.key == "trainstack:job.nodes"]
    assert nodes and nodes[0].problem.startswith("must be 1 for the fake backend (it runs a job on one instance")
    assert nodes[0].fix == "use backend ec2 or eks or sagemaker for multi-node training, or set job.nodes: 1"

    # AmiSource.SERVICE: the service picks the AMI, so gpu.amiId is refused; MIXED spot takes a base
    ami = problems_of(cluster_config("fake", gpu={"amiId": "ami-0123456789abcdef0"}))
    assert [str(p) for p in ami] == [
        'trainstack:gpu.amiId = "ami-0123456789abcdef0": does not apply to the fake backend (the service picks '
        "its hosts' AMI). Fix: remove gpu.amiId"
    ]
    parse(cluster_config("fake", gpu={"onDemandBase": 1, "spotPercent": 50}))
    assert "fake" in C.ClusterConfig.__dataclass_fields__["backend"].metadata["setting"].choices()


@pytest.mark.parametrize(
    "backend,gpu,job,key,fragment",
    [
        ("sagemaker", {"spotPercent": 50}, {}, "trainstack:gpu.spotPercent", "managed spot training"),
        ("sagemaker", {"amiId": "ami-0123456789abcdef0"}, {}, "trainstack:gpu.amiId", "the service picks"),
        ("sagemaker", {"placementGroup": True}, {}, "trainstack:gpu.placementGroup", "places its instances itself"),
        ("ecs", {}, {"masterPort": 29600}, "trainstack:job.masterPort", "not trainstack's torchrun"),
        ("eks", {"onDemandBase": 1, "spotPercent": 0}, {}, "trainstack:gpu.onDemandBase", "no on-demand base"),
    ],
)
def test_a_key_that_does_nothing_on_the_backend_is_refused(backend, gpu, job, key, fragment):
    problems = problems_of(cluster_config(backend, gpu=gpu, job=job))
    mine = [p for p in problems if p.key == key]
    assert mine and f"does not apply to the {backend} backend" in mine[0].problem and fragment in mine[0].problem
    assert mine[0].fix.startswith(f"remove {key.removeprefix('trainstack:')}")


def test_a_key_at_its_default_is_harmless_anywhere():
    """Templates copied between backends carry defaults: those are not mistakes."""
    parse(cluster_config("sagemaker", gpu={"spotPercent": 100, "onDemandBase": 0, "placementGroup": False}))
    parse(cluster_config("ecs", job={"masterPort": 29500, "peerTimeoutMinutes": 15}))


def test_the_stack_is_one_of_two_kinds():
    platform, cluster = parse(PLATFORM_CONFIG, "platform"), parse(cluster_config())
    assert isinstance(platform, C.PlatformStack) and not hasattr(platform, "cluster") and platform.backend == "none"
    assert isinstance(cluster, C.ClusterStack) and not hasattr(cluster, "platform") and cluster.backend == "ecs"
    assert (platform.kind, cluster.kind) == ("platform", "cluster")
