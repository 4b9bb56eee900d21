"""Provider-schema validation: what the mock engine accepts but a real `pulumi preview` would refuse."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import STACKS, copy_project
from trainstack.plan import provider_schema as ps
from trainstack.plan.offline import ResourceRecord


def record(type_: str, inputs: dict, name: str = "r") -> ResourceRecord:
    return ResourceRecord(
        type=type_,
        name=name,
        urn=f"urn:{name}",
        parent="",
        custom=True,
        protect=False,
        retain_on_delete=False,
        ignore_changes=[],
        provider="",
        inputs=inputs,
        state={},
    )


LT = "aws:ec2/launchTemplate:LaunchTemplate"


def findings(type_: str, inputs: dict) -> list[ps.Finding]:
    return ps.check([record(type_, inputs)])


@pytest.mark.parametrize("stack", STACKS)
def test_every_example_stack_plans_clean(example_plans, stack):
    assert example_plans[stack].findings == []


def test_a_misspelled_nested_property_gets_a_did_you_mean():
    [f] = findings(LT, {"metadataOptions": {"httpTokns": "required"}})
    assert f.path == "metadataOptions.httpTokns"
    assert "did you mean `httpTokens` (Python: http_tokens)" in f.fix


def test_a_snake_case_typo_is_matched_too():
    [f] = findings(LT, {"metadataOptions": {"http_tokns": "required"}})
    assert "`httpTokens`" in f.fix


def test_a_string_where_a_number_is_wanted():
    [f] = findings(LT, {"blockDeviceMappings": [{"ebs": {"volumeSize": "200GiB"}}]})
    assert f.path == "blockDeviceMappings[0].ebs.volumeSize"
    assert "is a string, the provider wants a whole number" in f.problem


def test_numbers_arrive_as_floats_and_pass():
    assert findings(LT, {"blockDeviceMappings": [{"ebs": {"volumeSize": 200.0}}]}) == []
    [f] = findings(LT, {"blockDeviceMappings": [{"ebs": {"volumeSize": 200.5}}]})
    assert "whole number" in f.problem


def test_a_missing_required_nested_property():
    [f] = findings(
        "aws:autoscaling/group:Group", {"maxSize": 1.0, "minSize": 0.0, "tags": [{"key": "a", "value": "b"}]}
    )
    assert f.path == "tags[0].propagateAtLaunch" and "required" in f.problem
    assert "propagate_at_launch" in f.fix


def test_a_bad_enum_value_names_the_allowed_ones():
    [f] = findings("aws:ec2/placementGroup:PlacementGroup", {"strategy": "clustr"})
    assert f.path == "strategy" and "PlacementStrategy" in f.problem
    assert "did you mean `cluster`?" in f.fix and "spread" in f.fix


def test_an_unknown_top_level_property():
    [f] = findings("aws:s3/bucket:Bucket", {"forceDestory": True})
    assert "did you mean `forceDestroy`" in f.fix


def test_unknown_values_are_skipped():
    assert findings(LT, {"imageId": ps.UNKNOWN, "metadataOptions": {"httpTokens": ps.UNKNOWN}}) == []


def test_other_providers_and_kubernetes_are_left_to_their_own_checks():
    assert (
        ps.check(
            [
                record("kubernetes:batch/v1:Job", {"spec": {"nonsense": 1}}),
                record("trainstack:compute:X", {"whatever": 1}),
            ]
        )
        == []
    )


def test_type_tokens_map_to_the_sdk_args_classes():
    assert ps.args_class("aws:s3/bucket:Bucket").__name__ == "BucketArgs"
    # v7 renamed BucketVersioningV2 to BucketVersioning; its args class is BucketVersioningInitArgs.
    assert ps.args_class("aws:s3/bucketVersioning:BucketVersioning").__name__ == "BucketVersioningInitArgs"
    assert ps.args_class("aws:index/provider:Provider").__name__ == "ProviderArgs"


def test_instance_type_enums_stay_open_for_types_newer_than_the_sdk():
    assert findings("aws:ec2/instance:Instance", {"instanceType": "p7.48xlarge", "ami": "ami-1"}) == []


def test_an_unknown_resource_type_is_reported():
    [f] = findings("aws:ec2/launchTemplat:LaunchTemplat", {})
    assert "no such resource" in f.problem


# -- JSON payloads ---------------------------------------------------------------------------


def policy(statement: dict, **doc) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [statement], **doc})


def test_iam_grammar_catches_misspelled_elements_and_effects():
    text = policy({"Effect": "Alow", "Actions": ["s3:GetObject"], "Resource": "*"})
    found = {p: (problem, fix) for p, problem, fix in ps.policy_problems(text, kind="identity")}
    assert "did you mean `Action`?" in found["Statement[0].Actions"][1]
    assert "Allow" in found["Statement[0].Effect"][1]


def test_iam_grammar_knows_trust_and_identity_policies_apart():
    trust = policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}})
    assert ps.policy_problems(trust, kind="trust") == []
    assert any("Principal" in p for p, _, _ in ps.policy_problems(trust, kind="identity"))
    no_principal = policy({"Effect": "Allow", "Action": "sts:AssumeRole"})
    assert any("has no Principal" in problem for _, problem, _ in ps.policy_problems(no_principal, kind="trust"))


def test_a_resource_policy_statement_needs_a_principal():
    text = policy({"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    assert any("has no Principal" in problem for _, problem, _ in ps.policy_problems(text, kind="resource"))


def test_iam_grammar_checks_condition_operators():
    text = policy(
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": "*",
            "Principal": "*",
            "Condition": {
                "BoolIfExists": {"aws:SecureTransport": "false"},
                "ForAnyValue:StringLike": {"aws:TagKeys": ["x*"]},
                "StringEqual": {"aws:SourceAccount": "1"},
            },
        }
    )
    [(path, _problem, fix)] = ps.policy_problems(text, kind="resource")
    assert path == "Statement[0].Condition.StringEqual" and "StringEquals" in fix


def test_role_policies_are_checked_in_a_plan_record():
    [f] = ps.check(
        [
            record(
                "aws:iam/rolePolicy:RolePolicy",
                {"role": "r", "policy": policy({"Effect": "Allow", "Action": "s3:GetObject"})},
            )
        ]
    )
    assert "(IAM policy)" in f.path and "has no Resource" in f.problem


def test_container_definitions_are_checked_against_the_ecs_model():
    bad = json.dumps([{"name": "x", "image": "y", "memoryReservation": "lots", "gpus": 1}])
    [f] = findings("aws:ecs/taskDefinition:TaskDefinition", {"family": "f", "containerDefinitions": bad})
    assert "memoryReservation" in f.problem and "gpus" in f.problem


def test_scheduler_universal_targets_are_checked_against_the_api_they_call():
    arn = "arn:aws:scheduler:::aws-sdk:autoscaling:updateAutoScalingGroup"
    assert ps.universal_target_problem(arn, json.dumps({"AutoScalingGroupName": "g", "MinSize": 0})) == ""
    assert "MinSize" in ps.universal_target_problem(arn, json.dumps({"AutoScalingGroupName": "g", "MinSize": "0"}))
    assert "updateAutoScalingGroop" in ps.universal_target_problem(arn.replace("Group", "Groop"), "{}")


# -- planted faults in a copy of a component, through the real `trainstack plan` ----------------

PLANTS = [  # (pattern, replacement): one of each kind of mistake in the GPU group component
    (r'"http_tokens":', '"http_tokns":'),  # a misspelled nested property
    (r'"volume_size": ([^,]+),', r'"volume_size": f"{\1}GiB",'),  # a string where a number is wanted
    (r'"launch_template_specification": \{[^}]*\},', ""),  # a required nested property left out
    (r'strategy="cluster"', 'strategy="clustr"'),  # a value outside the SDK's enum
]


def test_planted_faults_are_each_reported_with_path_and_fix(tmp_path):
    copy_project(tmp_path, code=True)
    source = tmp_path / "components" / "gpu_autoscaling_group.py"
    text = source.read_text()
    for pattern, planted in PLANTS:
        text, n = re.subn(pattern, planted, text, count=1)
        assert n == 1, f"{pattern} not found in components/gpu_autoscaling_group.py"
    source.write_text(text)
    # The copy's packages come first on the path, ahead of this checkout's editable install.
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "250"}
    out = subprocess.run(
        [sys.executable, "-m", "trainstack.cli.main", "plan", "dev-ec2", "--root", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("  - ") and "(aws:" in line]
    text = "\n".join(lines)
    assert "launchTemplateData.metadataOptions.http_tokns" not in text  # paths start at the resource's inputs
    assert "metadataOptions.http_tokns: is not a property" in text and "did you mean `httpTokens`" in text
    assert 'blockDeviceMappings[0].ebs.volumeSize: "200GiB" is a string, the provider wants a whole number' in text
    assert "mixedInstancesPolicy.launchTemplate.launchTemplateSpecification: is required" in text
    assert 'strategy: "clustr" is not a value of PlacementStrategy' in text and "did you mean `cluster`?" in text
    assert len(lines) == 4, text
    assert "plan failed" in out.stdout and "Traceback" not in out.stderr


def test_json_output_carries_findings_and_timing():
    from typer.testing import CliRunner

    from trainstack.cli.main import app

    out = CliRunner().invoke(app, ["plan", "dev-sagemaker", "--json"])
    doc = json.loads(out.output)
    assert out.exit_code == 0 and doc["ok"] is True and doc["findings"] == []
    assert doc["timing"]["critical_path"] and doc["cost"]["expected_usd_per_hour"] > 0


def test_a_universal_target_input_in_the_apis_own_camel_case_is_reported():
    """Scheduler's universal targets take PascalCase members even for rest-json APIs such as EKS."""
    arn = "arn:aws:scheduler:::aws-sdk:eks:updateNodegroupConfig"
    camel = {"clusterName": "c", "nodegroupName": "g", "scalingConfig": {"minSize": 0, "maxSize": 1, "desiredSize": 0}}
    problem = ps.universal_target_problem(arn, json.dumps(camel))
    assert "PascalCase" in problem and "clusterName (write ClusterName)" in problem
    assert "ScalingConfig.minSize (write MinSize)" in problem
    pascal = {"ClusterName": "c", "NodegroupName": "g", "ScalingConfig": {"MinSize": 0, "MaxSize": 1, "DesiredSize": 0}}
    assert ps.universal_target_problem(arn, json.dumps(pascal)) == ""
    # Still checked against the API: a maxSize of 0 is refused (botocore: min 1).
    zero = {**pascal, "ScalingConfig": {"MinSize": 0, "MaxSize": 0, "DesiredSize": 0}}
    assert "maxSize" in ps.universal_target_problem(arn, json.dumps(zero))
