"""Config of the eks backend: every refusal names the key, the value and the fix."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import NOW, PLATFORM_CONFIG, cluster_config
from trainstack.model import catalog
from trainstack.model import config as C


def eks_config(**overrides):
    base = {"gpu": {"instanceTypes": ["p3.2xlarge"], "spotPercent": 100}}
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return cluster_config("eks", **base)


def parse(raw, now=NOW):
    return C.parse_config(raw, stack="dev-eks", now=now)


def rejected(raw, key: str, *fragments: str, now=NOW) -> str:
    with pytest.raises(C.ConfigError) as info:
        parse(raw, now)
    text = " ".join(str(p) for p in info.value.problems if p.key == key)
    assert text, f"expected a problem with {key}, got {info.value}"
    assert "Fix:" in text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return text


def test_defaults_are_a_dedicated_cluster_on_the_newest_version_and_the_al2023_nvidia_ami():
    eks = parse(eks_config()).cluster.eks
    assert eks.mode == "dedicated" and eks.version == catalog.EKS_DEFAULT_VERSION
    assert eks.ami_type == "AL2023_x86_64_NVIDIA" and eks.system_instance_type == "t3.medium"
    assert eks.public_access_cidrs == ("0.0.0.0/0",)


BAD = [
    ("half spot", {"gpu": {"spotPercent": 50}}, "trainstack:gpu.spotPercent", ["0 or 100"]),
    (
        "on-demand base",
        {"gpu": {"onDemandBase": 1, "spotPercent": 0}},
        "trainstack:gpu.onDemandBase",
        ["no on-demand base"],
    ),
    ("ami id", {"gpu": {"amiId": "ami-0123456789abcdef0"}}, "trainstack:gpu.amiId", ["eks.releaseVersion"]),
    ("driver branch", {"gpu": {"amiDriverBranch": 580}}, "trainstack:gpu.amiDriverBranch", ["picks the driver"]),
    (
        "AL2",
        {"eks": {"amiType": "AL2_x86_64_GPU"}},
        "trainstack:eks.amiType",
        ["Amazon Linux 2", "AL2023_x86_64_NVIDIA"],
    ),
    ("non-GPU AMI", {"eks": {"amiType": "AL2023_x86_64_STANDARD"}}, "trainstack:eks.amiType", ["NVIDIA"]),
    ("unknown version", {"eks": {"version": "1.20"}}, "trainstack:eks.version", ["1.35"]),
    ("bad release", {"eks": {"releaseVersion": "latest"}}, "trainstack:eks.releaseVersion", ["YYYYMMDD"]),
    (
        "release for another minor",
        {"eks": {"version": "1.34", "releaseVersion": "1.35.0-20260120"}},
        "trainstack:eks.releaseVersion",
        ["Kubernetes 1.35", "eks.version is 1.34"],
    ),
    ("GPU system node", {"eks": {"systemInstanceType": "g5.xlarge"}}, "trainstack:eks.systemInstanceType", ["GPU"]),
    (
        "unknown system node",
        {"eks": {"systemInstanceType": "t3.nano"}},
        "trainstack:eks.systemInstanceType",
        ["catalog"],
    ),
    ("bad CIDR", {"eks": {"publicAccessCidrs": ["10.0.0.1/8"]}}, "trainstack:eks.publicAccessCidrs", ["CIDR"]),
    ("bad mode", {"eks": {"mode": "auto"}}, "trainstack:eks.mode", ["dedicated, shared"]),
    ("typo", {"eks": {"amiTyp": "AL2023_x86_64_NVIDIA"}}, "trainstack:eks.amiTyp", ["amiType"]),
    (
        "shared mode sets the version",
        {"eks": {"mode": "shared", "version": "1.35"}},
        "trainstack:eks.version",
        ["platform"],
    ),
    (
        "multi-node without a command",
        {"job": {"nodes": 2, "command": None}, "gpu": {"maxInstances": 2}},
        "trainstack:job.command",
        ["torchrun"],
    ),
    (
        "torchrun cannot start it",
        {"job": {"gpusPerNode": 4, "command": ["python", "--version"]}, "gpu": {"instanceTypes": ["p3.8xlarge"]}},
        "trainstack:job.command",
        ["torchrun"],
    ),
]


@pytest.mark.parametrize("overrides,key,fragments", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_eks_config_is_refused_with_key_value_and_fix(overrides, key, fragments):
    raw = eks_config(**{k: v for k, v in overrides.items() if k != "job"})
    if "job" in overrides:
        job = {**raw["trainstack:job"], **overrides["job"]}
        raw["trainstack:job"] = {k: v for k, v in job.items() if v is not None}
    rejected(raw, key, *fragments)


def test_extended_support_warns_with_the_price_and_an_ended_version_is_refused():
    cfg = parse(eks_config(eks={"version": "1.32"}))
    assert any("extended support" in w and "$0.60/h" in w for w in cfg.warnings)
    assert not any("extended support" in w for w in parse(eks_config(eks={"version": "1.35"})).warnings)
    rejected(
        eks_config(eks={"version": "1.31"}),
        "trainstack:eks.version",
        "end of EKS extended support",
        now=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc),
    )


def test_an_unquoted_yaml_version_reads_as_the_version_meant():
    assert parse(eks_config(eks={"version": 1.33})).cluster.eks.version == "1.33"


def test_eks_settings_on_another_backend_are_ignored_with_a_warning():
    cfg = parse(cluster_config("ecs", eks={"mode": "shared"}))
    assert any("trainstack:eks is set but the backend is ecs" in w for w in cfg.warnings)


def test_the_platform_takes_a_shared_cluster_and_refuses_settings_without_it():
    cfg = C.parse_config(
        {**PLATFORM_CONFIG, "trainstack:eks": {"sharedCluster": True, "version": "1.34"}}, stack="platform", now=NOW
    )
    assert cfg.platform.eks.shared_cluster and cfg.platform.eks.version == "1.34"
    with pytest.raises(C.ConfigError) as info:
        C.parse_config({**PLATFORM_CONFIG, "trainstack:eks": {"version": "1.34"}}, stack="platform", now=NOW)
    assert "trainstack:eks.version" in info.value.keys


@settings(max_examples=60, deadline=None)
@given(
    spot=st.integers(0, 100),
    ami=st.sampled_from(
        ["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA", "AL2_x86_64_GPU", "AL2023_ARM_64_NVIDIA"]
    ),
    version=st.sampled_from(sorted(catalog.EKS_VERSIONS) + ["1.29", "2.0"]),
)
def test_eks_config_is_accepted_exactly_when_every_rule_holds(spot, ami, version):
    raw = eks_config(gpu={"spotPercent": spot}, eks={"amiType": ami, "version": version})
    ok = (
        spot in (0, 100)
        and ami in catalog.EKS_GPU_AMI_TYPES
        and version in catalog.EKS_VERSIONS
        and C.eks_support_status(version, NOW.date()) != "ended"
    )
    if ok:
        cfg = parse(raw).cluster
        assert (cfg.eks.ami_type, cfg.eks.version) == (ami, version)
    else:
        with pytest.raises(C.ConfigError) as info:
            parse(raw)
        assert all(p.key.startswith(("trainstack:eks.", "trainstack:gpu.")) for p in info.value.problems)
