"""Every stack file evaluates offline, and `trainstack plan` reports what a user needs to see."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from conftest import ROOT, STACKS
from typer.testing import CliRunner

from scripts.cli import app
from scripts.plan import PlanError, plan

runner = CliRunner()


def test_the_expected_example_stacks_exist():
    assert {"platform", "dev-ecs", "dev-ec2", "dev-sagemaker"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_evaluates_cleanly_offline(example_plans, stack):
    result = example_plans[stack]
    assert result.run.resources, stack
    assert not [m for level, m in result.run.logs if level == "ERROR"]
    expected_outputs = {"region"} | ({"vpcId", "subnetIds", "kmsKeyArn", "buckets"} if result.config.kind == "platform"
                                     else {"expiresAt", "artifactUri", "checkpointUri", "teardownSchedules"})
    assert expected_outputs <= set(result.run.outputs)


def test_platform_plan_shows_vpc_s3_endpoint_and_protected_data_lake():
    out = runner.invoke(app, ["plan", "platform"])
    assert out.exit_code == 0, out.output
    assert "network-vpc" in out.output and "aws:ec2:Vpc" in out.output
    assert "network-s3" in out.output and "aws:ec2:VpcEndpoint" in out.output
    assert "datalake-raw" in out.output and "protected" in out.output
    assert "plan ok" in out.output


def test_platform_exports_what_clusters_need(example_plans):
    out = example_plans["platform"].run.outputs
    assert out["vpcId"].startswith("vpc-") and len(out["subnetIds"]) == 2
    assert out["securityGroupId"].startswith("sg-") and out["kmsKeyArn"].startswith("arn:aws:kms:")
    assert set(out["buckets"]) == {"raw", "curated", "artifacts", "logs"}
    assert all(b["arn"] == f"arn:aws:s3:::{b['name']}" for b in out["buckets"].values())


@pytest.mark.parametrize("stack,expected", [
    ("dev-ecs", ["attribute:ecs.instance-type =~ p3.*", "teardown-scale-to-zero"]),
    ("dev-ec2", ["training-gpu-asg", "teardown-scale-to-zero"]),
    ("dev-sagemaker", ["aws:sagemaker:TrainingJob", "teardown-stop-training-job"]),
])
def test_cluster_plans_show_the_cluster_and_its_teardown(stack, expected):
    out = runner.invoke(app, ["plan", stack, "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    text = json.dumps(doc)
    for fragment in expected:
        assert fragment.replace("aws:sagemaker:TrainingJob", "aws:sagemaker/trainingJob:TrainingJob") in text
    assert doc["ok"] and doc["kind"] == "cluster" and doc["platformStack"] == "organization/trainstack/platform"
    assert doc["cost"]["idle_usd_per_hour"] == 0 and doc["cost"]["busy_usd_per_hour"] > 0


def test_json_output_is_machine_readable():
    out = runner.invoke(app, ["plan", "platform", "--json"])
    doc = json.loads(out.output)
    assert doc["summary"]["aws:s3/bucket:Bucket"] == 4
    protected = {r["name"] for r in doc["resources"] if r["protected"]}
    assert {"datalake-raw", "datalake-curated", "datalake-artifacts", "datalake-logs", "datalake-key"} <= protected


@pytest.fixture
def project_copy(tmp_path):
    """A copy of the project whose stack files a test may edit."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    for package in ("trainstack", "components", "programs", "examples"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def edit_stack(root, stack, **config):
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"].update(config)
    path.write_text(yaml.safe_dump(doc))


def test_bad_config_exits_non_zero_with_the_validation_message(project_copy):
    edit_stack(project_copy, "dev-ecs", **{"trainstack:gpu": {"family": "p3", "instanceTypes": ["g5.xlarge"]}})
    out = runner.invoke(app, ["plan", "dev-ecs", "--root", str(project_copy)])
    assert out.exit_code == 2
    assert "trainstack:gpu.instanceTypes" in out.output and "g5.xlarge" in out.output
    assert "is not in gpu.family p3" in out.output and "Fix:" in out.output
    assert "Traceback" not in out.output


def test_bad_config_in_json_mode(project_copy):
    edit_stack(project_copy, "platform", **{"trainstack:azCount": 7})
    out = runner.invoke(app, ["plan", "platform", "--json", "--root", str(project_copy)])
    assert out.exit_code == 2
    doc = json.loads(out.output)
    assert doc["ok"] is False and "trainstack:azCount = 7" in doc["error"]


def test_unknown_stack_names_the_available_ones():
    with pytest.raises(PlanError, match="stacks here: .*dev-ecs"):
        plan("nope", ROOT)


def test_cluster_with_a_platform_in_another_region_is_refused(project_copy):
    edit_stack(project_copy, "dev-ecs", **{"aws:region": "eu-west-1"})
    with pytest.raises(PlanError, match="aws:region = eu-west-1.*us-east-1"):
        plan("dev-ecs", project_copy)


def test_cluster_without_a_local_platform_stack_file(project_copy):
    edit_stack(project_copy, "dev-ecs", **{"trainstack:platformStack": "organization/trainstack/missing"})
    with pytest.raises(PlanError, match="platformStack = organization/trainstack/missing.*Pulumi.missing.yaml"):
        plan("dev-ecs", project_copy)


def test_plan_warns_like_pulumi_up_would(example_plans):
    assert any("Volta" in w for w in example_plans["dev-ecs"].warnings)


@pytest.mark.parametrize("config", [
    {"aws:region": "us-east-1", "trainstack:kind": "platform", "trainstack:azCount": 1},
    {"aws:region": "us-east-1", "trainstack:kind": "cluster", "trainstack:owner": "alice"},
])
def test_invalid_config_fails_the_program_before_any_resource(config):
    import pulumi

    from programs.program import main
    from scripts.offline import run_offline

    registered: list = []
    with pytest.raises(pulumi.RunError, match=r"trainstack:\w+ = .*Fix:") as info:
        run_offline(main, config=config, stack="bad", records=registered)
    assert registered == []
    assert "Traceback" not in str(info.value)


def test_cluster_refuses_a_platform_in_another_region(run_stack, platform_outputs):
    from conftest import cluster_config

    from programs.program import main
    from scripts.offline import run_offline

    elsewhere = {**platform_outputs, "region": "eu-west-1"}
    with pytest.raises(Exception, match="platform stack .* is in eu-west-1 .* set aws:region to eu-west-1"):
        run_offline(main, config=cluster_config("ecs"), stack="dev",
                    stack_outputs={"organization/trainstack/platform": elsewhere})
