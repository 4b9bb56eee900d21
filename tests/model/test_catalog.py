"""The GPU catalog: what validation, placement and cost estimates rely on."""

from __future__ import annotations

import pytest

from trainstack.model import catalog

REQUIRED = (
    ["p3.2xlarge", "p3.8xlarge", "p3.16xlarge", "p3dn.24xlarge", "p4d.24xlarge", "p5.48xlarge"]
    + [f"g4dn.{s}" for s in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge")]
    + [f"g5.{s}" for s in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")]
    + [f"g6.{s}" for s in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")]
)


@pytest.mark.parametrize("name", REQUIRED)
def test_required_gpu_types_are_complete(name):
    t = catalog.lookup(name)
    assert t is not None and t.has_gpu
    assert t.gpus in (1, 4, 8) and t.gpu_model and t.gpu_memory_gib >= 16
    assert t.architecture is not None and t.architecture.compute_capability
    assert t.vcpus >= 4 and t.memory_gib >= 16
    assert 0.5 < t.on_demand_usd_per_hour < 100
    assert t.sagemaker_usd_per_hour is None or t.sagemaker_usd_per_hour > t.on_demand_usd_per_hour


def test_known_shapes():
    assert catalog.lookup("p3.8xlarge").gpus == 4
    assert catalog.lookup("p3.16xlarge").gpus == 8 and catalog.lookup("p3.16xlarge").gpu_model == "V100"
    assert catalog.lookup("g5.12xlarge").gpus == 4 and catalog.lookup("g5.48xlarge").gpus == 8
    assert catalog.lookup("p5.48xlarge").gpu_model == "H100" and catalog.lookup("p5.48xlarge").efa
    assert not catalog.lookup("p3.2xlarge").efa and catalog.lookup("p3dn.24xlarge").efa


def test_p3_is_volta_with_r580_and_cuda12_limits():
    volta = catalog.lookup("p3.2xlarge").architecture
    assert volta.name == "Volta" and volta.compute_capability == "7.0"
    assert volta.last_driver_branch == 580 and volta.last_cuda_major == 12
    assert catalog.lookup("g4dn.xlarge").architecture.last_driver_branch is None


def test_prices_are_attributed():
    assert "us-east-1" in catalog.PRICE_SOURCE
    assert "Price List API" in catalog.__doc__


def test_ml_prefix_and_family():
    assert catalog.family_of("ml.p3.2xlarge") == "p3"
    assert catalog.family_of("p3dn.24xlarge") == "p3dn"
    assert catalog.lookup("ml.g5.xlarge") is catalog.lookup("g5.xlarge")


@pytest.mark.parametrize(
    "instance_type,family,placed",
    [
        ("p3.2xlarge", "p3", True),
        ("p3dn.24xlarge", "p3", True),
        ("p3dn.24xlarge", "p3dn", True),
        ("p3.2xlarge", "p3dn", False),
        ("g5.xlarge", "p3", False),
        ("g4dn.xlarge", "g4", True),
        ("g4dn.xlarge", "g5", False),
        ("ml.p3.2xlarge", "p3", True),
    ],
)
def test_placement_matches_like_ecs(instance_type, family, placed):
    assert catalog.matches_placement(instance_type, family) is placed


def test_placement_expression_is_the_seed_articles():
    assert catalog.placement_expression("p3") == "attribute:ecs.instance-type =~ p3.*"


def test_smallest_gpu_count_and_memory():
    assert catalog.smallest_gpu_count(["p3.8xlarge", "p3.2xlarge"]) == 1
    assert catalog.smallest_gpu_count(["p3.8xlarge", "p3.16xlarge"]) == 4
    assert catalog.smallest_memory_gib(["p3.8xlarge", "p3.16xlarge"]) == 244


def test_cpu_types_are_known_but_have_no_gpu():
    for name in ("m5.xlarge", "c5.xlarge", "trn1.2xlarge", "inf2.xlarge"):
        assert catalog.lookup(name) is not None and not catalog.lookup(name).has_gpu


def test_suggestions_stay_in_the_family():
    assert all(s.startswith("p3") for s in catalog.suggest("g5.xlarge", "p3"))
    assert "g5.2xlarge" in catalog.suggest("g5.2xlarg", None)


def test_local_storage_flag_for_sagemaker_volume_keys():
    assert not catalog.lookup("p3.2xlarge").instance_storage
    assert catalog.lookup("p3dn.24xlarge").instance_storage and catalog.lookup("g5.xlarge").instance_storage


def test_suggestions_come_in_one_stable_order():
    """Two messages about the same family list its types in the same (catalog) order, not by typo distance."""
    a = catalog.suggest("p3.2xlarg", "p3")
    b = catalog.suggest("g5.xlarge", "p3")
    assert a == b == [t.name for t in catalog.gpu_types() if catalog.matches_placement(t.name, "p3")][:4]
