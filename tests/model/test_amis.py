"""The (backend, GPU architecture) AMI table: no AMI is ever paired with a GPU it cannot drive."""

from __future__ import annotations

import pytest

from tests.helpers import NOW, ROOT, cluster_config
from trainstack.backends.ec2 import DLAMI_BASE_OSS_AL2023
from trainstack.backends.ecs import ECS_AL2023_GPU
from trainstack.model import amis, catalog
from trainstack.model.config import ClusterStack, parse_config

ARCHITECTURES = sorted({t.architecture.name for t in catalog.gpu_types()})


def test_no_row_pairs_an_open_module_ami_with_volta():
    for row in amis.rows():
        arch = next(t.architecture for t in catalog.gpu_types() if t.architecture.name == row.architecture)
        if arch.last_driver_branch is not None:  # Volta: proprietary module, R580 or older
            assert row.driver_module == amis.PROPRIETARY, row
            assert row.driver_branch is not None and row.driver_branch <= arch.last_driver_branch, row
        else:  # NVIDIA's open module drives Turing and newer
            assert row.driver_module == amis.OPEN, row


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_ecs_has_an_aws_ami_for_every_catalog_architecture(arch):
    row = amis.row("ecs", arch)
    assert row is not None and row.ssm_parameter == ECS_AL2023_GPU


def test_ec2_has_no_aws_ami_for_volta_and_the_dlami_for_the_rest():
    assert amis.row("ec2", "Volta") is None
    for arch in set(ARCHITECTURES) - {"Volta"}:
        assert amis.row("ec2", arch).ssm_parameter == DLAMI_BASE_OSS_AL2023


def test_every_row_names_a_public_parameter_and_its_evidence():
    for row in amis.rows():
        assert row.ssm_parameter.startswith("/aws/service/")
        assert row.evidence.startswith("https://")
        assert row.support


def test_parameter_for_refuses_what_has_no_row():
    assert amis.parameter_for("ecs", ["Volta"]) == ECS_AL2023_GPU
    with pytest.raises(ValueError, match="pin gpu.amiId"):
        amis.parameter_for("ec2", ["Volta"])


def test_sagemaker_has_no_ami_to_choose():
    assert amis.problem_for("sagemaker", "p3", [catalog.VOLTA]) is None
    assert amis.plan_for("sagemaker", [catalog.VOLTA], None, None).source == "managed by SageMaker"


def test_the_ami_the_program_resolves_is_the_one_the_plan_shows(example_plans):
    for name, result in example_plans.items():
        if not isinstance(result.config, ClusterStack) or result.config.backend not in amis.table_backends():
            continue
        c = result.config.cluster
        plan = amis.plan_for(c.backend, c.gpu.architectures, c.gpu.ami_id, c.gpu.ami_driver_branch)
        params = [a["name"] for t, a in result.run.invokes if t == "aws:ssm/getParameter:getParameter"]
        assert plan.source == f"ssm:{params[0]}", name


def test_p3_on_ecs_resolves_to_an_ami_that_loads_the_proprietary_module():
    cfg = parse_config(cluster_config("ecs"), stack="s", now=NOW).cluster
    plan = amis.plan_for("ecs", cfg.gpu.architectures, None, None)
    assert plan.driver_module == amis.PROPRIETARY and plan.driver_branch == 580
    assert any("R580" in n for n in plan.notes)


def test_pinned_ami_is_shown_as_pinned():
    plan = amis.plan_for("ec2", [catalog.VOLTA], "ami-0123456789abcdef0", 580)
    assert plan.source == "pinned:ami-0123456789abcdef0" and plan.driver_branch == 580
    assert plan.driver_module.startswith(amis.PROPRIETARY)


def test_the_ec2_examples_documented_p3_variant_is_valid():
    """The comment in stacks/Pulumi.dev-ec2.yaml: family p3 with a pinned R580 AMI."""
    from trainstack.plan.planner import load_raw_config

    _, raw = load_raw_config("dev-ec2")
    text = (ROOT / "stacks" / "Pulumi.dev-ec2.yaml").read_text()
    assert "instanceTypes [p3.8xlarge, p3.16xlarge]" in text and "amiDriverBranch: 580" in text
    raw["trainstack:gpu"] = {
        **raw["trainstack:gpu"],
        "family": "p3",
        "instanceTypes": ["p3.8xlarge", "p3.16xlarge"],
        "amiId": "ami-0123456789abcdef0",
        "amiDriverBranch": 580,
    }
    cfg = parse_config(raw, stack="dev-ec2", now=NOW).cluster
    assert amis.plan_for("ec2", cfg.gpu.architectures, cfg.gpu.ami_id, 580).source == "pinned:ami-0123456789abcdef0"
