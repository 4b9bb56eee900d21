"""The pure half of `trainstack run`: template merge, overrides, expiry, names, the config payload."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.helpers import ROOT
from trainstack.model.config import parse_config
from trainstack.run.run_config import (
    Overrides,
    RefusedError,
    check_stack_name,
    config_json,
    expires_at,
    load_template,
    merge,
    parse_set,
    stack_name,
    template_file,
)

NOW = dt.datetime(2026, 11, 22, 14, 30, tzinfo=dt.timezone.utc)


def template(name: str = "dev-ecs") -> dict:
    return load_template(template_file(name, ROOT), ROOT)


def test_template_by_name_or_path_and_unknown_names_list_the_choices(tmp_path):
    assert template_file("dev-ecs", ROOT) == ROOT / "stacks" / "Pulumi.dev-ecs.yaml"
    assert template_file(str(ROOT / "stacks" / "Pulumi.dev-ec2.yaml"), ROOT).name == "Pulumi.dev-ec2.yaml"
    with pytest.raises(RefusedError, match=r"TEMPLATE = dev-gpu: .*templates here: dev-ec2, dev-ecs"):
        template_file("dev-gpu", ROOT)
    secret = tmp_path / "Pulumi.s.yaml"
    secret.write_text("config:\n  trainstack:owner:\n    secure: AAAB\n")
    with pytest.raises(RefusedError, match=r"trainstack:owner .* secret of another stack; pass it with --set"):
        load_template(secret, ROOT)


def test_set_values_are_json_when_they_parse_and_strings_otherwise():
    assert parse_set("job.maxRuntimeHours=2") == ("trainstack:job", ["maxRuntimeHours"], 2)
    assert parse_set('gpu.instanceTypes=["g5.2xlarge"]') == ("trainstack:gpu", ["instanceTypes"], ["g5.2xlarge"])
    assert parse_set("aws:region=eu-west-1") == ("aws:region", [], "eu-west-1")
    # A quoted JSON string stays a string: "10" must not become a number.
    assert parse_set('job.command=["python","train.py","--epochs","10"]')[2][-1] == "10"
    for bad in ("job.nodes", "=3", "job..nodes=2"):
        with pytest.raises(RefusedError, match="--set"):
            parse_set(bad)


def test_overrides_merge_into_the_template_without_touching_the_rest():
    raw = merge(
        template(),
        Overrides(
            owner="dana",
            command=["python", "train.py", "--lr", "0.1"],
            sets=("job.maxRuntimeHours=2", "gpu.maxInstances=1"),
        ),
        NOW,
    )
    assert raw["trainstack:owner"] == "dana"
    assert raw["trainstack:job"]["command"] == ["python", "train.py", "--lr", "0.1"]
    assert raw["trainstack:job"]["maxRuntimeHours"] == 2
    assert raw["trainstack:job"]["dataset"] == "raw/cifar10/v1/"  # untouched sibling
    assert raw["trainstack:gpu"]["maxInstances"] == 1 and raw["trainstack:gpu"]["family"] == "p3"
    assert template()["trainstack:job"]["maxRuntimeHours"] == 6  # the template itself is not modified
    cfg = parse_config(raw, stack="dana-ecs-1", now=NOW)
    assert cfg.cluster.owner == "dana" and cfg.cluster.job.command == ("python", "train.py", "--lr", "0.1")


def test_workdir_lands_in_the_job_object():
    raw = merge(template(), Overrides(workdir="examples/cifar10"), NOW)
    assert raw["trainstack:job"]["workdir"] == "examples/cifar10"
    cfg = parse_config(raw, stack="s", now=NOW, root=str(ROOT))
    assert cfg.cluster.job.workdir == str(ROOT / "examples" / "cifar10")  # validated, made absolute


def test_expiry_follows_the_job_limit_in_whole_hours_and_never_passes_72h():
    raw = merge(template(), Overrides(sets=("job.maxRuntimeHours=2",)), NOW)
    assert raw["trainstack:expiresAt"] == "2026-11-22T18:00:00Z"  # 14:30 + 2 h + 1 h margin, rounded up
    assert "trainstack:ttlHours" not in raw
    assert expires_at(NOW, 200) == dt.datetime(2026, 11, 25, 14, 0, tzinfo=dt.timezone.utc)
    assert merge(template(), Overrides(ttl_hours=10), NOW)["trainstack:expiresAt"] == "2026-11-23T01:00:00Z"
    with pytest.raises(RefusedError, match=r"--ttl-hours 100: use 1-72"):
        merge(template(), Overrides(ttl_hours=100), NOW)
    cfg = parse_config(raw, stack="s", now=NOW)
    assert cfg.cluster.expires_at_iso == "2026-11-22T18:00:00Z"


def test_stack_names_sort_by_time_and_carry_owner_and_backend():
    assert stack_name("alice", "ecs", NOW, "0a1b") == "alice-ecs-202611221430-0a1b"
    assert stack_name("alice", "ecs", NOW) != stack_name("alice", "ecs", NOW)
    assert check_stack_name("pr-12-345") == "pr-12-345"
    with pytest.raises(RefusedError, match="--name Bad_Name"):
        check_stack_name("Bad_Name")


def test_config_payload_keeps_types_objects_as_object_values():
    raw = merge(template(), Overrides(), NOW)
    doc = json.loads(config_json(raw))
    job = doc["trainstack:job"]
    assert job["objectValue"]["command"] == ["python", "train.py", "--epochs", "10"]
    assert json.loads(job["value"]) == job["objectValue"] and job["secret"] is False
    assert doc["aws:region"] == {"value": "us-east-1", "secret": False}
    assert doc["trainstack:azCount"]["value"] == "2"  # scalars as the text a stack file would give
    # What the program reads back (objects as JSON text, scalars as text) validates like the template.
    engine_view = {k: v["value"] for k, v in doc.items()}
    assert parse_config(engine_view, stack="s", now=NOW).cluster.job.command[-1] == "10"


def test_a_command_is_split_as_a_shell_would_and_a_broken_one_is_named():
    from trainstack.run.run_config import parse_command

    assert parse_command("python train.py --name 'my run'") == ["python", "train.py", "--name", "my run"]
    with pytest.raises(RefusedError, match=r"--command 'python \"train.py': no closing quotation.*Fix: close"):
        parse_command('python "train.py')
    for empty in ("", "   "):
        with pytest.raises(RefusedError, match=r"empty\. Fix: .*leave --command out"):
            parse_command(empty)


@pytest.mark.parametrize(
    "text, says",
    [
        ("- a\n- b\n", r"the top level is a list \(\['a', 'b'\]\), not a mapping"),
        ("config: [1, 2]\n", r"`config` is a list"),
        ("config:\n  trainstack:gpu:\n    family: p3\n    family: g5\n", r"family is given twice \(lines 3 and 4\)"),
        ("config:\n  aws:region: us-east-1\n  aws:region: eu-west-1\n", r"aws:region is given twice"),
        ("config: {a: [\n", r"is not valid YAML"),
    ],
)
def test_a_broken_stack_file_is_one_message_naming_the_file(tmp_path, text, says):
    from trainstack.plan.planner import PlanError, stack_file_config

    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(text)
    with pytest.raises(PlanError, match=says) as err:
        stack_file_config(path, {"name": "trainstack"}, lambda key: key)
    assert str(path) in str(err.value) and err.value.exit_code == 2


def test_a_binary_stack_file_is_refused_as_not_text(tmp_path):
    from trainstack.plan.planner import PlanError, stack_file_config

    path = tmp_path / "Pulumi.x.yaml"
    path.write_bytes(b"\x00\xff\xfe binary")
    with pytest.raises(PlanError, match=r"not a text file \(byte 1 is not UTF-8\)"):
        stack_file_config(path, {}, lambda key: key)


def test_an_object_given_as_broken_json_text_is_refused_not_a_crash():
    with pytest.raises(RefusedError, match=r"--set job.nodes=2: trainstack:job is not valid JSON"):
        merge({"trainstack:job": "{not json"}, Overrides(sets=("job.nodes=2",)), NOW)
