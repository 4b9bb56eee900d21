"""Every stack file evaluates offline, and `trainstack plan` reports what a user needs to see."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from tests.helpers import ROOT, STACKS, cluster_config, copy_project
from trainstack.cli.main import app
from trainstack.plan.planner import PlanError, plan

runner = CliRunner()


def test_the_expected_example_stacks_exist():
    assert {"platform", "dev-ecs", "dev-ec2", "dev-sagemaker"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_evaluates_cleanly_offline(example_plans, stack):
    result = example_plans[stack]
    assert result.run.resources, stack
    assert not [m for level, m in result.run.logs if level == "ERROR"]
    expected_outputs = {"region"} | (
        {"vpcId", "subnetIds", "kmsKeyArn", "buckets"}
        if result.config.kind == "platform"
        else {"expiresAt", "artifactUri", "checkpointUri", "teardownSchedules"}
    )
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


@pytest.mark.parametrize(
    "stack,expected",
    [
        ("dev-ecs", ["attribute:ecs.instance-type =~ p3.*", "teardown-scale-to-zero"]),
        ("dev-ec2", ["training-gpu-asg", "teardown-scale-to-zero"]),
        ("dev-sagemaker", ["trainingJobRequest", "teardown-stop-training-job", "CreateTrainingJob"]),
    ],
)
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
    return copy_project(tmp_path)


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


def test_plan_warns_like_pulumi_up_would(project_copy):
    edit_stack(project_copy, "dev-ecs", **{"trainstack:ttlHours": 2})
    assert any("longer than the cluster lives" in w for w in plan("dev-ecs", project_copy).warnings)


@pytest.mark.parametrize(
    "stack,source,module",
    [
        ("dev-ecs", "ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id", "proprietary"),
        (
            "dev-ec2",
            "ssm:/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id",
            "open",
        ),
        ("dev-sagemaker", "managed by SageMaker", "chosen by SageMaker"),
    ],
)
def test_every_cluster_plan_shows_its_ami_source_and_driver_module(example_plans, stack, source, module):
    from io import StringIO

    from rich.console import Console

    from trainstack.plan.render import render, to_json

    doc = json.loads(json.dumps(to_json(example_plans[stack])))
    assert doc["ami"]["source"] == source and doc["ami"]["driverModule"] == module
    out = StringIO()
    render(example_plans[stack], Console(file=out, width=400))
    assert f"GPU AMI: {source} (NVIDIA kernel module: {module}" in out.getvalue()


def test_platform_plan_has_no_ami(example_plans):
    from trainstack.plan.render import to_json

    assert to_json(example_plans["platform"])["ami"] is None


def test_volta_ec2_stack_is_refused_by_plan_with_the_fix(project_copy):
    edit_stack(
        project_copy,
        "dev-ec2",
        **{"trainstack:gpu": {"family": "p3", "instanceTypes": ["p3.8xlarge"], "maxInstances": 2}},
    )
    out = runner.invoke(app, ["plan", "dev-ec2", "--root", str(project_copy)], env={"COLUMNS": "400"})
    assert out.exit_code == 2
    assert "trainstack:gpu.amiId" in out.output and "drives Volta" in out.output and "pin gpu.amiId" in out.output


@pytest.mark.parametrize(
    "config",
    [
        {"aws:region": "us-east-1", "trainstack:kind": "platform", "trainstack:azCount": 1},
        {"aws:region": "us-east-1", "trainstack:kind": "cluster", "trainstack:owner": "alice"},
    ],
)
def test_invalid_config_fails_the_program_before_any_resource(config):
    import pulumi

    from trainstack.plan.offline import run_offline
    from trainstack.programs.program import main

    registered: list = []
    with pytest.raises(pulumi.RunError, match=r"trainstack:\w+ = .*Fix:") as info:
        run_offline(main, config=config, stack="bad", records=registered)
    assert registered == []
    assert "Traceback" not in str(info.value)


def test_cluster_refuses_a_platform_in_another_region(run_stack, platform_outputs):
    from tests.helpers import cluster_config
    from trainstack.plan.offline import run_offline
    from trainstack.programs.program import main

    elsewhere = {**platform_outputs, "region": "eu-west-1"}
    with pytest.raises(Exception, match="platform stack .* is in eu-west-1 .* set aws:region to eu-west-1"):
        run_offline(
            main,
            config=cluster_config("ecs"),
            stack="dev",
            stack_outputs={"organization/trainstack/platform": elsewhere},
        )


@pytest.mark.parametrize("stack", ["dev-ecs", "dev-ec2"])
def test_cluster_log_groups_use_the_platforms_key_which_admits_cloudwatch_logs(example_plans, stack):
    platform = example_plans["platform"].run
    log_group = example_plans[stack].run.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert log_group["kmsKeyId"] == platform.outputs["kmsKeyArn"]
    key_policy = json.loads(platform.one("aws:kms/key:Key").inputs["policy"])
    principals = [s["Principal"] for s in key_policy["Statement"]]
    assert {"Service": "logs.us-east-1.amazonaws.com"} in principals


@pytest.mark.parametrize("stack", ["dev-ecs", "dev-ec2"])
def test_containers_cannot_reach_the_node_role_through_imds(example_plans, stack):
    """ECS bridge-mode tasks get their role from the ECS agent; the ec2 container runs with --network host."""
    meta = example_plans[stack].run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["metadataOptions"]
    assert meta["httpTokens"] == "required" and meta["httpPutResponseHopLimit"] == 1


def test_log_retention_reaches_the_log_group(run_stack):
    run = run_stack(cluster_config("ecs", logRetentionDays=545))
    assert run.one("aws:cloudwatch/logGroup:LogGroup").inputs["retentionInDays"] == 545


def test_flow_logs_platform_sends_vpc_traffic_records_to_the_log_bucket_and_names_the_cost(example_plans, project_copy):
    assert example_plan_flow_logs(example_plans["platform"]) is None
    edit_stack(project_copy, "platform", **{"trainstack:flowLogs": True})
    result = plan("platform", project_copy)
    flow = example_plan_flow_logs(result)
    log_bucket = result.run.outputs["buckets"]["logs"]["arn"]
    assert flow["logDestination"] == f"{log_bucket}/vpc-flow-logs" and flow["vpcId"] == result.run.outputs["vpcId"]
    assert any("VPC flow logs" in n and "$0.25/GB" in n for n in result.cost.notes)


def example_plan_flow_logs(result):
    found = result.run.of_type("aws:ec2/flowLog:FlowLog")
    return found[0].inputs if found else None
