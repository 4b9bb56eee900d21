"""Provider-schema validation: what the mock engine accepts but a real `pulumi preview` would refuse."""

from __future__ import annotations

import importlib
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


def test_looking_up_an_args_class_leaves_its_sdk_package_whole():
    # In a fresh interpreter, where pulumi_aws's packages are still lazy modules: the lookup must not leave
    # `pulumi_aws.autoscaling` half-initialised (it once did, and a later `aws.autoscaling.Group` failed).
    import subprocess
    import sys

    probe = (
        "import importlib, pulumi_aws\n"
        "from trainstack.plan import provider_schema as ps\n"
        "assert ps.args_class('aws:autoscaling/group:Group').__name__ == 'GroupArgs'\n"
        "package = importlib.import_module('pulumi_aws.autoscaling')\n"
        "print(hasattr(package, 'Group'), hasattr(package, 'GroupArgs'), hasattr(package, 'Tag'))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"]


def test_instance_type_enums_stay_open_for_types_newer_than_the_sdk():
    assert findings("aws:ec2/instance:Instance", {"instanceType": "p7.48xlarge", "ami": "ami-1"}) == []


def test_an_unknown_resource_type_is_reported():
    [f] = findings("aws:ec2/launchTemplat:LaunchTemplat", {})
    assert "no such resource" in f.problem


# -- "Valid values: ..." in the SDK's docstrings ----------------------------------------------


def sdk_doc(module: str, cls: str, prop: str) -> str:
    """A property docstring of the installed pulumi_aws (the text the check reads), never a copy."""
    return getattr(getattr(importlib.import_module(f"pulumi_aws.{module}"), cls), prop).__doc__


READ = [  # (module, class, property, the phrasing, the values read)
    (
        "autoscaling",
        "GroupMixedInstancesPolicyInstancesDistributionArgs",
        "spot_allocation_strategy",
        "Valid values: `lowest-price`, `capacity-optimized`, `capacity-optimized-prioritized`, and",
        ("lowest-price", "capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized"),
    ),
    ("ec2", "NatGatewayArgs", "connectivity_type", "Valid values are `private` and `public`.", ("private", "public")),
    ("ec2", "VpcIpamArgs", "metered_account", "`ipam-owner` (default) and", ("ipam-owner", "resource-owner")),
    ("scheduler", "ScheduleFlexibleTimeWindowArgs", "mode", "One of: `OFF`, `FLEXIBLE`.", ("OFF", "FLEXIBLE")),
    ("autoscaling", "GroupArgs", "metrics_granularity", "The only valid value is `1Minute`.", ("1Minute",)),
    ("ec2", "VpcIpamPoolArgs", "aws_service", "Valid Values: `ec2`.", ("ec2",)),
    ("ec2", "VpnConnectionArgs", "tunnel1_ike_versions", "`ikev1 | ikev2`", ("ikev1", "ikev2")),
    ("rds", "CustomDbEngineVersionArgs", "engine", "`custom-oracle*`", ("custom-oracle*", "custom-sqlserver*")),
    ("lambda_", "CapacityProviderCapacityProviderScalingConfigArgs", "scaling_mode", '`"Auto"`', ("Auto", "Manual")),
    (
        "sagemaker",
        "TrainingJobProfilerConfigArgs",
        "profiling_interval_in_milliseconds",
        "Valid values: `100`, `200`",
        ("100", "200", "500", "1000", "5000", "60000"),
    ),
]

SKIPPED = [  # (module, class, property, the phrasing that must not become a list)
    # "include" lists can be partial: glue's misses DESCRIBE, which lakeformation's lists
    ("glue", "CatalogCreateDatabaseDefaultPermissionArgs", "permissions", "Valid values include `ALL`, `SELECT`"),
    ("lakeformation", "PermissionsArgs", "permissions", "Valid values may include `ALL`, `ALTER`, `ASSOCIATE`"),
    ("apigatewayv2", "RouteArgs", "authorization_type", "For HTTP APIs, valid values are"),  # one list per mode
    ("ecs", "DaemonDeploymentConfigurationArgs", "bake_time_in_minutes", "Valid values are between 0 and 1440"),
    ("ec2", "VpcIpamPoolCidrAllocationArgs", "netmask_length", "`0-128`"),  # a range
    ("lb", "ListenerArgs", "routing_http_response_x_frame_options_header_value", "`ALLOW-FROM https://example.com`"),
    ("rds", "ClusterArgs", "performance_insights_retention_period", "`month * 31`"),  # a formula
]


@pytest.mark.parametrize(("module", "cls", "prop", "phrase", "values"), READ, ids=[f"{c}.{p}" for _, c, p, *_ in READ])
def test_the_docstring_parser_reads_the_sdks_phrasings(module, cls, prop, phrase, values):
    doc = sdk_doc(module, cls, prop)
    assert phrase in " ".join(doc.split())  # the SDK still words it so
    assert ps.doc_values(doc) == values


@pytest.mark.parametrize(("module", "cls", "prop", "phrase"), SKIPPED, ids=[f"{c}.{p}" for _, c, p, _ in SKIPPED])
def test_the_docstring_parser_skips_lists_it_cannot_read_precisely(module, cls, prop, phrase):
    doc = sdk_doc(module, cls, prop)
    assert phrase in " ".join(doc.split())
    assert ps.doc_values(doc) is None


DEFAULT = re.compile(r'Defaults?(?: to| value is| is|:) `"?(?P<value>[^`"]+)"?`')
PLAN_MODULES = ("autoscaling", "ec2", "ecs", "eks", "iam", "kms", "s3", "sagemaker", "scheduler", "cloudwatch")


def test_every_list_read_in_the_modules_the_stacks_use_holds_its_own_default():
    """Precision on real docstrings: a list read short or long would miss the default the same docstring
    states. Covers every input type of the pulumi_aws modules the example stacks create resources in."""
    from pulumi import _types

    read, with_default, wrong = 0, 0, []
    for name in PLAN_MODULES:
        module = importlib.import_module(f"pulumi_aws.{name}")
        _ = module.outputs  # pulumi_aws packages load lazily: fill the namespace
        for cls in {v for v in vars(module).values() if isinstance(v, type) and _types.is_input_type(v)}:
            for prop, attr in vars(cls).items():
                values = ps.doc_values(attr.__doc__) if isinstance(attr, property) else None
                if not values:
                    continue
                read += 1
                default = DEFAULT.search(" ".join(attr.__doc__.split()))
                if default and not default.group("value").startswith("["):
                    with_default += 1
                    if not ps.DocumentedValues("", values).admits(default.group("value")):
                        wrong.append(f"{cls.__name__}.{prop}: {values} without {default.group('value')}")
    assert wrong == []
    assert read > 400 and with_default > 50, (read, with_default)


def test_each_open_documented_list_is_still_read():
    """An entry of OPEN_DOCUMENTED_VALUES whose list the parser no longer reads is dead: drop it."""
    for owner in ps.OPEN_DOCUMENTED_VALUES:
        _aws, *package, cls, prop = owner.split(".")
        assert ps.doc_values(sdk_doc(".".join(package), cls, prop)), owner


ASG = "aws:autoscaling/group:Group"


def asg(distribution: dict | None = None, **inputs) -> dict:
    return {
        "maxSize": 1.0,
        "minSize": 0.0,
        "mixedInstancesPolicy": {
            "launchTemplate": {"launchTemplateSpecification": {"launchTemplateId": "lt-1"}},
            "instancesDistribution": distribution or {},
        },
        **inputs,
    }


def test_a_value_outside_a_documented_list_names_path_value_list_and_fix():
    [f] = findings(ASG, asg({"spotAllocationStrategy": "price-capacity-optimised"}))
    assert f.path == "mixedInstancesPolicy.instancesDistribution.spotAllocationStrategy"
    assert '"price-capacity-optimised" is not one of the valid values' in f.problem
    assert "aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs.spot_allocation_strategy" in f.problem
    assert f.fix.startswith("did you mean `price-capacity-optimized`?")
    assert "lowest-price, capacity-optimized, capacity-optimized-prioritized, price-capacity-optimized" in f.fix


def test_documented_values_pass_whatever_their_case_and_arns_pass_lists_of_keywords():
    assert findings(ASG, asg({"spotAllocationStrategy": "price-capacity-optimized"})) == []
    # Case: some provider validators ignore it and the docstring cannot say which, so it never fails a plan.
    assert findings(ASG, asg({"onDemandAllocationStrategy": "Prioritized"})) == []
    # "Additionally, the ARN of a Lambda function can be specified for custom termination policies."
    lambda_arn = "arn:aws:lambda:us-east-1:123456789012:function:pick-victim"
    assert findings(ASG, asg(terminationPolicies=["OldestInstance", lambda_arn])) == []


def test_each_item_of_a_list_is_checked_against_the_documented_values():
    [f] = findings(ASG, asg(terminationPolicies=["OldestInstance", "OldestInstanse"]))
    assert f.path == "terminationPolicies[1]" and "did you mean `OldestInstance`?" in f.fix


def test_numbers_are_checked_against_a_documented_list_of_numbers():
    def at_interval(ms: float) -> list[str]:
        inputs = {"profilerConfig": {"profilingIntervalInMilliseconds": ms}}
        return [f.fix for f in findings("aws:sagemaker/trainingJob:TrainingJob", inputs) if "profiling" in f.path]

    assert at_interval(500.0) == []
    [fix] = at_interval(150.0)
    assert "use one of 100, 200, 500, 1000, 5000, 60000" in fix


def test_a_documented_list_the_provider_does_not_enforce_as_written_stays_open():
    # mediaconvert Queue: "Valid values are `ACTIVE` or `RESERVED`. Default to `PAUSED`." (the API takes PAUSED)
    assert findings("aws:mediaconvert/queue:Queue", {"status": "PAUSED"}) == []


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
    # a value outside the list the SDK's docstring states (no enum): `pulumi up` would fail on it
    (
        r'"spot_allocation_strategy": "price-capacity-optimized"',
        '"spot_allocation_strategy": "price-capacity-optimised"',
    ),
]


def test_planted_faults_are_each_reported_with_path_and_fix(tmp_path):
    copy_project(tmp_path, code=True)
    source = tmp_path / "components" / "gpu_autoscaling_group.py"
    text = source.read_text()
    for pattern, planted in PLANTS:
        text, n = re.subn(pattern, planted, text, count=1)
        assert n == 1, f"{pattern} not found in components/gpu_autoscaling_group.py"
    source.write_text(text)
    # The copy's packages come first on the path, ahead of this checkout's editable install. The console script's
    # own module (`trainstack = trainstack.cli.entry:main`), as a user runs it: its plain plan path, ~0.6 s less
    # than the typer app's.
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "250"}
    out = subprocess.run(
        [sys.executable, "-m", "trainstack.cli.entry", "plan", "dev-ec2", "--root", str(tmp_path)],
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
    assert (
        'mixedInstancesPolicy.instancesDistribution.spotAllocationStrategy: "price-capacity-optimised" is not one of'
        in text
    )
    assert "did you mean `price-capacity-optimized`? (use one of lowest-price," in text
    assert len(lines) == 5, text
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
