"""Config validation: every bad value fails with the key, the value and the fix."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import NOW, PLATFORM_CONFIG, ROOT, cluster_config
from trainstack.model import config as C


def parse(raw, stack="dev"):
    return C.parse_config(raw, stack=stack, now=NOW)


def problems_of(raw) -> list[C.Problem]:
    with pytest.raises(C.ConfigError) as info:
        parse(raw)
    return info.value.problems


def assert_rejected(raw, key: str, *fragments: str) -> C.Problem:
    problems = problems_of(raw)
    matching = [p for p in problems if p.key == key]
    assert matching, f"expected a problem with {key}, got {[str(p) for p in problems]}"
    text = " ".join(str(p) for p in matching)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return matching[0]


# ---------------------------------------------------------------------------- platform

PLATFORM_CASES = [
    ({"trainstack:flowLogs": "sometimes"}, "trainstack:flowLogs", ["true or false"]),
    ({"trainstack:azCount": 0}, "trainstack:azCount", ["from 2 to 6"]),
    ({"trainstack:azCount": 1}, "trainstack:azCount", ["from 2 to 6", "at least two AZs"]),
    ({"trainstack:azCount": 7}, "trainstack:azCount", ["from 2 to 6"]),
    ({"trainstack:azCount": "two"}, "trainstack:azCount", ['"two"']),
    ({"trainstack:vpcCidr": "10.40.0.0"}, "trainstack:vpcCidr", ["CIDR"]),
    ({"trainstack:vpcCidr": "not-a-cidr"}, "trainstack:vpcCidr", ["CIDR", "Fix:"]),
    ({"trainstack:vpcCidr": "10.40.0.1/16"}, "trainstack:vpcCidr", ["host bits"]),
    ({"trainstack:vpcCidr": "10.40.0.0/26"}, "trainstack:vpcCidr", ["/16 to /24"]),
    ({"trainstack:vpcCidr": "8.8.0.0/16"}, "trainstack:vpcCidr", ["private"]),
    (
        {"trainstack:vpcCidr": "10.40.0.0/24", "trainstack:egress": "nat", "trainstack:azCount": 4},
        "trainstack:vpcCidr",
        ["too small", "/29"],
    ),
    ({"trainstack:egress": "private"}, "trainstack:egress", ["public, nat"]),
    ({"trainstack:kind": "platfrom"}, "trainstack:kind", ["platform, cluster", "did you mean `platform`"]),
    ({"trainstack:kind": None}, "trainstack:kind", ["is required"]),
    ({"trainstack:azCout": 2}, "trainstack:azCout", ["not a trainstack setting", "did you mean `azCount`"]),
    (
        {"trainstack:dataLake": {"checkpointRetentionDays": 0}},
        "trainstack:dataLake.checkpointRetentionDays",
        ["from 1 to 3650"],
    ),
    ({"trainstack:dataLake": {"checkpointRetentionDays": -3}}, "trainstack:dataLake.checkpointRetentionDays", ["-3"]),
    ({"trainstack:dataLake": {"protect": "yes"}}, "trainstack:dataLake.protect", ["true or false"]),
    ({"trainstack:dataLake": {"glueDb": True}}, "trainstack:dataLake.glueDb", ["did you mean `glueDatabase`"]),
    ({"trainstack:dataLake": "[1, 2]"}, "trainstack:dataLake", ["object"]),
    ({"trainstack:availabilityZones": ["us-east-1a"]}, "trainstack:availabilityZones", ["azCount is 2"]),
    (
        {"trainstack:availabilityZones": ["us-east-1a", "eu-west-1b"]},
        "trainstack:availabilityZones",
        ["eu-west-1b is not an AZ of us-east-1"],
    ),
    ({"trainstack:ttlHours": 8}, "trainstack:ttlHours", ["applies to cluster stacks"]),
    ({"aws:region": None}, "aws:region", ["pulumi config set aws:region"]),
]


@pytest.mark.parametrize(
    "override,key,fragments", PLATFORM_CASES, ids=[f"{c[1]}={list(c[0].values())[0]!r}" for c in PLATFORM_CASES]
)
def test_bad_platform_config_names_key_value_and_fix(override, key, fragments):
    raw = {**PLATFORM_CONFIG, **override}
    raw = {k: v for k, v in raw.items() if v is not None}
    problem = assert_rejected(raw, key, *fragments)
    assert "Fix:" in str(problem)


def test_platform_defaults():
    cfg = parse(PLATFORM_CONFIG, stack="platform")
    assert cfg.kind == "platform"
    assert cfg.platform.az_count == 2 and cfg.platform.egress == "public"
    assert cfg.platform.data_lake.protect is True
    assert cfg.platform.data_lake.checkpoint_retention_days == 14


def test_engine_strings_are_parsed_like_yaml_values():
    """The Pulumi engine hands programs strings (objects as JSON); they mean the same as YAML values."""
    engine = {**PLATFORM_CONFIG, "trainstack:azCount": "3", "trainstack:dataLake": json.dumps({"protect": False})}
    cfg = parse(engine, stack="platform")
    assert cfg.platform.az_count == 3
    assert cfg.platform.data_lake.protect is False


def test_every_problem_is_reported_at_once():
    raw = {**PLATFORM_CONFIG, "trainstack:azCount": 9, "trainstack:vpcCidr": "nope", "trainstack:egress": "x"}
    keys = {p.key for p in problems_of(raw)}
    assert {"trainstack:azCount", "trainstack:vpcCidr", "trainstack:egress"} <= keys


def test_schema_defaults_of_pulumi_yaml_match_the_validator():
    """The CLI applies Pulumi.yaml defaults to every stack: they must be what config.py assumes."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    defaults = {k: v["default"] for k, v in project["config"].items() if "default" in v}
    assert defaults == C.SCHEMA_DEFAULTS
    platform = C.PlatformConfig()
    assert (platform.az_count, platform.vpc_cidr, platform.egress) == (
        defaults["azCount"],
        defaults["vpcCidr"],
        defaults["egress"],
    )
    # ...and a cluster stack that only carries those defaults is not rejected for them.
    parse({**cluster_config(), **{f"trainstack:{k}": v for k, v in defaults.items()}})


# ---------------------------------------------------------------------------- cluster

CLUSTER_CASES = [
    ("unknown backend", {"backend": "batch"}, "trainstack:backend", ["ec2, ecs, eks, sagemaker"]),
    ("missing platform", {"platformStack": None}, "trainstack:platformStack", ["is required", "organization/"]),
    ("missing owner", {"owner": None}, "trainstack:owner", ["is required"]),
    ("owner not DNS-safe", {"owner": "Alice_Smith"}, "trainstack:owner", ["DNS-safe", "lower-case"]),
    ("owner too long", {"owner": "a" * 21}, "trainstack:owner", ["1-20"]),
    ("ttl zero", {"ttlHours": 0}, "trainstack:ttlHours", ["from 1 to 72"]),
    ("ttl negative", {"ttlHours": -1}, "trainstack:ttlHours", ["from 1 to 72"]),
    ("ttl too long", {"ttlHours": 200}, "trainstack:ttlHours", ["from 1 to 72"]),
    ("no ttl", {"ttlHours": None}, "trainstack:ttlHours", ["is required", "expiresAt"]),
    (
        "expiry in the past",
        {"ttlHours": None, "expiresAt": "2026-11-22T10:00:00Z"},
        "trainstack:expiresAt",
        ["in the past"],
    ),
    (
        "expiry too far",
        {"ttlHours": None, "expiresAt": "2026-12-31T10:00:00Z"},
        "trainstack:expiresAt",
        ["more than 72 hours"],
    ),
    (
        "expiry not UTC",
        {"ttlHours": None, "expiresAt": "2026-11-22T18:00:00+02:00"},
        "trainstack:expiresAt",
        ["ISO 8601 UTC"],
    ),
    (
        "type outside family",
        {"gpu": {"instanceTypes": ["p3.2xlarge", "g5.xlarge"]}},
        "trainstack:gpu.instanceTypes",
        ["`g5.xlarge` is not in gpu.family p3", "attribute:ecs.instance-type =~ p3.*", "p3."],
    ),
    (
        "type without GPU",
        {"gpu": {"family": "m5", "instanceTypes": ["m5.xlarge"]}},
        "trainstack:gpu.instanceTypes",
        ["`m5.xlarge` has no NVIDIA GPU"],
    ),
    (
        "trainium is no GPU",
        {"gpu": {"family": "trn1", "instanceTypes": ["trn1.2xlarge"]}},
        "trainstack:gpu.instanceTypes",
        ["has no NVIDIA GPU"],
    ),
    (
        "unknown type",
        {"gpu": {"instanceTypes": ["p3.4xlarge"]}},
        "trainstack:gpu.instanceTypes",
        ["not in trainstack's GPU catalog"],
    ),
    ("not a type", {"gpu": {"instanceTypes": ["big-gpu"]}}, "trainstack:gpu.instanceTypes", ["not an instance type"]),
    (
        "sagemaker name on ecs",
        {"gpu": {"instanceTypes": ["ml.p3.2xlarge"]}},
        "trainstack:gpu.instanceTypes",
        ["SageMaker name", "write p3.2xlarge"],
    ),
    ("no types", {"gpu": {"instanceTypes": None}}, "trainstack:gpu.instanceTypes", ["is required"]),
    (
        "more GPUs than the smallest type",
        {"job": {"gpusPerNode": 4}},
        "trainstack:job.gpusPerNode",
        ["1 GPU(s) of p3.2xlarge", "drop p3.2xlarge"],
    ),
    (
        "more nodes than instances",
        {"backend": "ec2", "job": {"nodes": 5}},
        "trainstack:job.nodes",
        ["more than gpu.maxInstances (4)"],
    ),
    ("spot percent over 100", {"gpu": {"spotPercent": 150}}, "trainstack:gpu.spotPercent", ["from 0 to 100"]),
    ("spot percent negative", {"gpu": {"spotPercent": -5}}, "trainstack:gpu.spotPercent", ["from 0 to 100"]),
    (
        "on-demand base above max",
        {"gpu": {"onDemandBase": 5}},
        "trainstack:gpu.onDemandBase",
        ["more than maxInstances (4)"],
    ),
    (
        "placement group across families",
        {"gpu": {"instanceTypes": ["p3.8xlarge", "p3dn.24xlarge"], "placementGroup": True}},
        "trainstack:gpu.placementGroup",
        ["mixes p3, p3dn"],
    ),
    ("typo in gpu", {"gpu": {"spotPrecent": 50}}, "trainstack:gpu.spotPrecent", ["did you mean `spotPercent`"]),
    ("typo in job", {"job": {"gpuPerNode": 1}}, "trainstack:job.gpuPerNode", ["did you mean `gpusPerNode`"]),
    (
        "dataset outside the lake",
        {"job": {"dataset": "s3://elsewhere/data/"}},
        "trainstack:job.dataset",
        ["raw or curated zone"],
    ),
    ("dataset in artifacts", {"job": {"dataset": "artifacts/alice/"}}, "trainstack:job.dataset", ["raw or curated"]),
    ("dataset escapes", {"job": {"dataset": "raw/../curated/x/"}}, "trainstack:job.dataset", ["raw or curated"]),
    # `*` would be a wildcard in the run's IAM grants: raw/a*/ would read raw/abc/ too.
    ("dataset wildcard", {"job": {"dataset": "raw/cifar*/"}}, "trainstack:job.dataset", ["wildcard", "exact prefix"]),
    ("dataset with a space", {"job": {"dataset": "raw/my data/"}}, "trainstack:job.dataset", ["a space", "safe key"]),
    ("dataset empty segment", {"job": {"dataset": "raw/cifar10//v1/"}}, "trainstack:job.dataset", ["empty segment"]),
    ("image missing", {"job": {"image": None}}, "trainstack:job.image", ["is required"]),
    ("image malformed", {"job": {"image": "My Image"}}, "trainstack:job.image", ["container image reference"]),
    ("ec2 without command", {"backend": "ec2", "job": {"command": None}}, "trainstack:job.command", ["torchrun"]),
    (
        "ec2 command torchrun cannot start",
        {"backend": "ec2", "job": {"command": ["python", "-u"]}},
        "trainstack:job.command",
        ["cannot be started with torchrun"],
    ),
    ("ecs multi-node", {"job": {"nodes": 2}}, "trainstack:job.nodes", ["must be 1 for the ecs backend"]),
    (
        "reserved env",
        {"job": {"environment": {"TRAINSTACK_MODEL_URI": "x"}}},
        "trainstack:job.environment",
        ["reserved"],
    ),
    ("bad env name", {"job": {"environment": {"1BAD": "x"}}}, "trainstack:job.environment.1BAD", ["not a valid name"]),
    ("platform key in cluster", {"vpcCidr": "10.9.0.0/16"}, "trainstack:vpcCidr", ["applies to platform stacks"]),
    (
        "driver too new for Volta",
        {"gpu": {"amiId": "ami-0123456789abcdef0", "amiDriverBranch": 590}},
        "trainstack:gpu.amiDriverBranch",
        ["R580", "Volta"],
    ),
    (
        "log retention CloudWatch refuses",
        {"logRetentionDays": 10},
        "trainstack:logRetentionDays",
        ["is not a retention CloudWatch Logs accepts", "1, 3, 5, 7, 14, 30", "3288, 3653"],
    ),
]


@pytest.mark.parametrize("name,overrides,key,fragments", CLUSTER_CASES, ids=[c[0] for c in CLUSTER_CASES])
def test_bad_cluster_config_names_key_value_and_fix(name, overrides, key, fragments):
    problem = assert_rejected(cluster_config(**overrides), key, *fragments)
    assert "Fix:" in str(problem)


def test_g5_under_p3_is_refused_with_the_fix():
    problem = assert_rejected(cluster_config(gpu={"instanceTypes": ["g5.xlarge"]}), "trainstack:gpu.instanceTypes")
    message = str(problem)
    assert '"g5.xlarge"' in message
    assert "use p3 types such as" in message and "or change gpu.family" in message


def test_p3dn_is_in_the_p3_family_as_ecs_would_place_it():
    cfg = parse(cluster_config(gpu={"instanceTypes": ["p3.8xlarge", "p3dn.24xlarge"]}, job={"gpusPerNode": 4}))
    assert cfg.cluster.gpu.instance_types == ("p3.8xlarge", "p3dn.24xlarge")


def test_valid_cluster_is_typed_and_frozen():
    cfg = parse(cluster_config(gpu={"spotPercent": 70, "onDemandBase": 1}))
    c = cfg.cluster
    assert c.gpu.on_demand_percent_above_base == 30 and c.gpu.on_demand_base == 1
    assert c.job.dataset == C.DatasetRef("raw", "cifar10/v1/")
    assert c.job.command == ("python", "train.py")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.gpu.spot_percent = 5


def test_ttl_rounds_up_to_the_hour_so_repeated_ups_keep_their_tags():
    cfg = parse(cluster_config(ttlHours=8))
    assert cfg.cluster.expires_at == dt.datetime(2026, 11, 22, 23, 0, tzinfo=dt.timezone.utc)
    assert cfg.cluster.expires_at_iso == "2026-11-22T23:00:00Z"


def test_expires_at_wins_over_ttl():
    cfg = parse(cluster_config(expiresAt="2026-11-22T18:15:00Z"))
    assert cfg.cluster.expires_at_iso == "2026-11-22T18:15:00Z"


def test_max_runtime_beyond_expiry_warns():
    cfg = parse(cluster_config(ttlHours=2, job={"maxRuntimeHours": 6}))
    assert any("longer than the cluster lives" in w for w in cfg.warnings)


def test_volta_with_cuda13_image_warns():
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.9.0-gpu-py312-cu130-ubuntu22.04-ec2"
    cfg = parse(cluster_config(job={"image": image}))
    assert any("CUDA 13" in w and "Volta" in w and "7.0" in w for w in cfg.warnings)


def test_volta_on_ecs_uses_the_default_ami_without_a_pin_warning():
    cfg = parse(cluster_config())
    assert cfg.cluster.gpu.ami_id is None
    assert not any("amiId" in w or "R580 AMI" in w for w in cfg.warnings)


def test_volta_on_ec2_without_a_pinned_ami_is_refused_with_the_fixes():
    volta = {"family": "p3", "instanceTypes": ["p3.8xlarge"], "maxInstances": 2}
    problem = assert_rejected(
        cluster_config("ec2", gpu=volta),
        "trainstack:gpu.amiId",
        "no AWS-maintained AMI for the ec2 backend drives Volta",
        "proprietary",
        "R580-or-older",
    )
    fix = problem.fix
    assert "pin gpu.amiId" in fix and "g4dn" in fix and "backend ecs or eks or sagemaker" in fix  # each drives Volta


def test_volta_on_ec2_with_a_pinned_ami_is_accepted_and_asks_for_the_branch():
    pinned = {"family": "p3", "instanceTypes": ["p3.8xlarge"], "amiId": "ami-0123456789abcdef0"}
    unchecked = parse(cluster_config("ec2", gpu=pinned))
    assert any("gpu.amiDriverBranch" in w and "proprietary" in w for w in unchecked.warnings)
    checked = parse(cluster_config("ec2", gpu={**pinned, "amiDriverBranch": 580}))
    assert not any("amiDriverBranch" in w for w in checked.warnings)


def test_cuda13_on_ampere_is_fine():
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.9.0-gpu-py312-cu130-ubuntu22.04-ec2"
    cfg = parse(cluster_config(gpu={"family": "g5", "instanceTypes": ["g5.xlarge"]}, job={"image": image}))
    assert not any("CUDA 13" in w for w in cfg.warnings)


# ---------------------------------------------------------------------------- sagemaker

SAGEMAKER_CASES = [
    (
        "max wait below max runtime",
        {"sagemaker": {"maxWaitHours": 2}, "job": {"maxRuntimeHours": 6}},
        "trainstack:sagemaker.maxWaitHours",
        ["less than job.maxRuntimeHours (6)", "at least 6"],
    ),
    (
        "spot without checkpoints",
        {"sagemaker": {"checkpoints": False}},
        "trainstack:sagemaker.checkpoints",
        ["restart from scratch"],
    ),
    (
        "pipe with several nodes",
        {"sagemaker": {"inputMode": "Pipe"}, "job": {"nodes": 2}},
        "trainstack:sagemaker.inputMode",
        ["FIFO", "FastFile", "ShardedByS3Key"],
    ),
    (
        "pipe with several GPUs",
        {"sagemaker": {"inputMode": "Pipe"}, "job": {"gpusPerNode": 4}, "gpu": {"instanceTypes": ["ml.p3.8xlarge"]}},
        "trainstack:sagemaker.inputMode",
        ["FIFO"],
    ),
    (
        "unknown input mode",
        {"sagemaker": {"inputMode": "Fastfile"}},
        "trainstack:sagemaker.inputMode",
        ["did you mean `FastFile`"],
    ),
    (
        "no gpu",
        {"gpu": {"family": "m5", "instanceTypes": ["ml.m5.xlarge"]}},
        "trainstack:gpu.instanceTypes",
        ["has no NVIDIA GPU"],
    ),
    (
        "several types",
        {"gpu": {"instanceTypes": ["ml.p3.2xlarge", "ml.p3.8xlarge"]}},
        "trainstack:gpu.instanceTypes",
        ["exactly one type"],
    ),
    (
        "image not in ECR",
        {"job": {"image": "docker.io/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"}},
        "trainstack:job.image",
        ["ECR only"],
    ),
    (
        "image in another region",
        {"job": {"image": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.5"}},
        "trainstack:job.image",
        ["eu-west-1", "us-east-1"],
    ),
    (
        "max wait without spot",
        {"sagemaker": {"spot": False, "maxWaitHours": 12}},
        "trainstack:sagemaker.maxWaitHours",
        ["spot training only"],
    ),
]


@pytest.mark.parametrize("name,overrides,key,fragments", SAGEMAKER_CASES, ids=[c[0] for c in SAGEMAKER_CASES])
def test_bad_sagemaker_config(name, overrides, key, fragments):
    problem = assert_rejected(cluster_config("sagemaker", **overrides), key, *fragments)
    assert "Fix:" in str(problem)


def test_non_sagemaker_type_is_refused(monkeypatch):
    from trainstack.model import catalog

    spec = catalog.CATALOG["g4dn.xlarge"]
    monkeypatch.setitem(
        catalog.CATALOG, "g4dn.xlarge", catalog.InstanceType(**{**spec.__dict__, "sagemaker_usd_per_hour": None})
    )
    assert_rejected(
        cluster_config("sagemaker", gpu={"family": "g4dn", "instanceTypes": ["ml.g4dn.xlarge"]}),
        "trainstack:gpu.instanceTypes",
        "not offered for SageMaker training",
    )


def test_sagemaker_defaults_are_spot_with_checkpoints():
    c = parse(cluster_config("sagemaker")).cluster
    assert c.sagemaker.spot and c.sagemaker.checkpoints
    assert c.max_wait_seconds == 2 * c.max_runtime_seconds == 12 * 3600


# ---------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-1000, max_value=1000))
def test_az_count_accepted_exactly_in_range(n):
    raw = {**PLATFORM_CONFIG, "trainstack:azCount": n}
    if 2 <= n <= 6:
        assert parse(raw).platform.az_count == n
    else:
        assert_rejected(raw, "trainstack:azCount", str(n))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-300, max_value=300))
def test_spot_percent_accepted_exactly_in_range(n):
    raw = cluster_config(gpu={"spotPercent": n})
    if 0 <= n <= 100:
        assert parse(raw).cluster.gpu.on_demand_percent_above_base == 100 - n
    else:
        assert_rejected(raw, "trainstack:gpu.spotPercent", str(n))


@settings(max_examples=80, deadline=None)
@given(st.text(min_size=0, max_size=30))
def test_owner_is_accepted_only_when_dns_safe(owner):
    raw = cluster_config(owner=owner)
    ok = bool(C.OWNER_RE.match(owner))
    if ok:
        assert parse(raw).owner == owner
    else:
        problems = problems_of(raw)
        assert any(p.key == "trainstack:owner" for p in problems)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-100, max_value=400))
def test_ttl_hours_bounds(hours):
    raw = cluster_config(ttlHours=hours)
    if 1 <= hours <= C.MAX_TTL_HOURS:
        c = parse(raw).cluster
        assert dt.timedelta(hours=hours) <= c.expires_at - NOW <= dt.timedelta(hours=hours + 1)
    else:
        assert_rejected(raw, "trainstack:ttlHours")


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.integers(), max_size=3))
def test_unknown_gpu_keys_are_always_reported(extra):
    unknown = {k: v for k, v in extra.items() if k not in C.GPU_KEYS}
    raw = cluster_config(gpu=unknown)
    if not unknown:
        parse(raw)
        return
    keys = {p.key for p in problems_of(raw)}
    assert {f"trainstack:gpu.{k}" for k in unknown} <= keys


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(sorted(t.name for t in __import__("trainstack.model.catalog", fromlist=["x"]).gpu_types())),
    st.sampled_from(["p3", "g4dn", "g5", "g6", "p4d", "p5"]),
)
def test_family_rule_matches_the_ecs_placement_pattern(instance_type, family):
    import re

    raw = cluster_config(
        gpu={"family": family, "instanceTypes": [instance_type], "maxInstances": 1}, job={"gpusPerNode": 1}
    )
    placed = re.fullmatch(f"{family}.*", instance_type) is not None
    if placed:
        parse(raw)
    else:
        assert_rejected(raw, "trainstack:gpu.instanceTypes", "is not in gpu.family")


@pytest.mark.parametrize("days", C.LOG_RETENTION_DAYS)
def test_every_cloudwatch_retention_is_accepted(days):
    assert parse(cluster_config(logRetentionDays=days)).cluster.log_retention_days == days


def test_flow_logs_are_off_by_default_and_opt_in():
    base = {"aws:region": "us-east-1", "trainstack:kind": "platform"}
    assert parse(base, stack="platform").platform.flow_logs is False
    assert parse({**base, "trainstack:flowLogs": True}, stack="platform").platform.flow_logs is True
    assert_rejected(cluster_config(flowLogs=True), "trainstack:flowLogs", "applies to platform stacks")
