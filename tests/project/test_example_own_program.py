"""examples/own-program: trainstack's components in a Pulumi program of one's own, evaluated under the mock engine
exactly as `pulumi up` would run its `__main__.py` (no trainstack stack file, only `aws:region` as config)."""

from __future__ import annotations

import base64
import re
import runpy

import pytest

from tests.helpers import ROOT
from trainstack.backends.ec2 import DLAMI_BASE_OSS_AL2023
from trainstack.model.run_locations import ZONES

EXAMPLE = ROOT / "examples" / "own-program"


@pytest.fixture(scope="module")
def run(run_program):
    # Only the AWS provider's region: no `trainstack:*` key exists for the program to read.
    return run_program(
        lambda: runpy.run_path(str(EXAMPLE / "__main__.py"), run_name="__main__"),
        config={"aws:region": "us-east-1"},
        project="my-training-infra",
    )


def by_zone(run, type_):
    return {r.name.split("-")[1]: r for r in run.of_type(type_)}


def test_every_data_bucket_is_encrypted_with_the_lakes_key_and_private(run):
    key = run.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    encryption = by_zone(run, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    for zone in ZONES:
        default = encryption[zone].inputs["rules"][0]["applyServerSideEncryptionByDefault"]
        assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.state["arn"]}, zone
    blocks = by_zone(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert sorted(blocks) == sorted([*ZONES, "logs"])
    for block in blocks.values():
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        assert all(block.inputs[f] is True for f in flags), block.name
    assert run.outputs["kmsKeyArn"] == key.state["arn"]
    assert run.outputs["rawBucket"] == by_zone(run, "aws:s3/bucket:Bucket")["raw"].state["bucket"]


def test_the_throwaway_lake_is_unprotected_and_expires_checkpoints_after_its_own_days(run):
    assert not any(r.protect for r in run.resources)  # protect=False: `pulumi destroy` may remove it
    rules = {
        r["id"]: r
        for r in by_zone(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["artifacts"].inputs[
            "rules"
        ]
    }
    assert rules["expire-checkpoints"]["expiration"] == {"days": 7}


def test_the_gpu_group_scales_from_zero_on_spot(run):
    asg = run.one("aws:autoscaling/group:Group")
    assert asg.inputs["minSize"] == 0 and asg.inputs["desiredCapacity"] == 0 and asg.inputs["maxSize"] == 2
    assert asg.ignore_changes == ["desiredCapacity"]  # `set-desired-capacity` is not undone by the next `up`
    distribution = asg.inputs["mixedInstancesPolicy"]["instancesDistribution"]
    assert distribution["onDemandPercentageAboveBaseCapacity"] == 0
    assert distribution["spotAllocationStrategy"] == "price-capacity-optimized"
    overrides = asg.inputs["mixedInstancesPolicy"]["launchTemplate"]["overrides"]
    assert [o["instanceType"] for o in overrides] == ["g5.xlarge", "g5.2xlarge"]
    assert run.outputs["gpuGroupName"] == asg.state["name"]
    assert run.outputs["scaleUpCommand"].endswith(f"--auto-scaling-group-name {asg.state['name']}")


def test_the_nodes_need_imdsv2_boot_the_deep_learning_ami_and_carry_the_users_tags(run):
    lt = run.one("aws:ec2/launchTemplate:LaunchTemplate")
    assert lt.inputs["metadataOptions"]["httpTokens"] == "required"
    assert lt.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert lt.inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    assert "keyName" not in lt.inputs  # shell access through SSM Session Manager
    assert base64.b64decode(lt.inputs["userData"]).decode().startswith("#!/bin/bash\n")
    params = [a["name"] for t, a in run.invokes if t == "aws:ssm/getParameter:getParameter"]
    assert params == [DLAMI_BASE_OSS_AL2023]
    instance_tags = next(s["tags"] for s in lt.inputs["tagSpecifications"] if s["resourceType"] == "instance")
    assert instance_tags["team"] == "vision" and instance_tags["project"] == "my-training-infra"


def test_the_nodes_run_in_the_networks_subnets_and_flow_logs_land_in_the_lake(run):
    asg = run.one("aws:autoscaling/group:Group")
    public = sorted(s.id for s in run.of_type("aws:ec2/subnet:Subnet") if "-public-" in s.name)
    assert sorted(asg.inputs["vpcZoneIdentifiers"]) == public and len(public) == 2
    lt = run.one("aws:ec2/launchTemplate:LaunchTemplate")
    assert lt.inputs["vpcSecurityGroupIds"] == [run.one("aws:ec2/securityGroup:SecurityGroup", "cluster-sg").id]
    logs = by_zone(run, "aws:s3/bucket:Bucket")["logs"]
    flow = run.one("aws:ec2/flowLog:FlowLog")
    assert flow.inputs["logDestination"] == f"{logs.state['arn']}/vpc-flow-logs"
    assert run.of_type("aws:ec2/natGateway:NatGateway") == []  # public egress: no NAT gateway billed by the hour


def test_the_readme_shows_the_program_that_is_tested():
    """The README's snippet is the example's code, so the two cannot drift apart."""
    readme = (EXAMPLE / "README.md").read_text()
    program = (EXAMPLE / "__main__.py").read_text()
    snippets = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert snippets and all(snippet in program for snippet in snippets)
    assert "pulumi up" in readme and "trainstack:" not in program
