"""GpuAutoScalingGroup under the mock engine: spot mix, IMDSv2, encryption, no SSH, no fighting the autoscaler."""

from __future__ import annotations

import base64

import pytest

from components.gpu_autoscaling_group import AMI_PARAMETERS, GpuAutoScalingGroup, GpuAutoScalingGroupArgs

TAGS = {"trainstack:owner": "alice", "trainstack:expires-at": "2026-11-22T23:00:00Z"}


def make_args(**kw):
    base = dict(instance_types=("p3.2xlarge", "p3.8xlarge"), subnet_ids=["subnet-a", "subnet-b"],
                security_group_id="sg-123", user_data="#!/bin/bash\necho hi\n", max_size=4,
                ami_ssm_parameter=AMI_PARAMETERS["ecs"], on_demand_base=1, spot_percent=70, tags=TAGS)
    base.update(kw)
    return GpuAutoScalingGroupArgs(**base)


@pytest.fixture(scope="module")
def group(run_program):
    return run_program(lambda: GpuAutoScalingGroup("gpu", make_args()))


@pytest.fixture(scope="module")
def placed_group(run_program):
    return run_program(lambda: GpuAutoScalingGroup("gpu", make_args(placement_group=True, ami_ssm_parameter=None,
                                                                      ami_id="ami-0123456789abcdef0")))


def test_mixed_instances_policy(group):
    asg = group.one("aws:autoscaling/group:Group")
    mip = asg.inputs["mixedInstancesPolicy"]
    dist = mip["instancesDistribution"]
    assert dist["onDemandBaseCapacity"] == 1
    assert dist["onDemandPercentageAboveBaseCapacity"] == 30  # 100 - spotPercent
    assert dist["spotAllocationStrategy"] == "price-capacity-optimized"
    assert [o["instanceType"] for o in mip["launchTemplate"]["overrides"]] == ["p3.2xlarge", "p3.8xlarge"]
    lt = group.one("aws:ec2/launchTemplate:LaunchTemplate")
    assert mip["launchTemplate"]["launchTemplateSpecification"] == {"launchTemplateId": lt.id, "version": "$Latest"}


def test_scales_from_zero_and_never_fights_the_autoscaler(group):
    asg = group.one("aws:autoscaling/group:Group")
    assert asg.inputs["minSize"] == 0 and asg.inputs["maxSize"] == 4 and asg.inputs["desiredCapacity"] == 0
    assert asg.ignore_changes == ["desiredCapacity"]
    # off for training: a rebalance recommendation would replace (kill) a node that may never be interrupted
    assert asg.inputs["capacityRebalance"] is False
    assert "name" not in asg.inputs or asg.inputs["name"] is None  # autonamed unless a name is given
    assert asg.inputs["vpcZoneIdentifiers"] == ["subnet-a", "subnet-b"]
    assert asg.inputs["forceDelete"] is True and asg.inputs["waitForCapacityTimeout"] == "0"


def test_imdsv2_required_with_container_hop_limit(group):
    meta = group.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["metadataOptions"]
    assert meta["httpTokens"] == "required" and meta["httpPutResponseHopLimit"] == 2
    assert meta["httpEndpoint"] == "enabled"


def test_encrypted_gp3_root_volume_on_the_amis_root_device(group):
    bdm = group.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["blockDeviceMappings"]
    assert len(bdm) == 1
    assert bdm[0]["deviceName"] == "/dev/xvda"  # read from the AMI, not assumed
    assert bdm[0]["ebs"] == {"volumeSize": 200, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"}


def test_no_key_pair_ssm_access_and_cluster_security_group(group):
    lt = group.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert "keyName" not in lt
    assert lt["vpcSecurityGroupIds"] == ["sg-123"]
    assert lt["instanceInitiatedShutdownBehavior"] == "terminate"
    attached = [a.inputs["policyArn"] for a in group.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")]
    assert attached == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    profile = group.one("aws:iam/instanceProfile:InstanceProfile")
    assert lt["iamInstanceProfile"]["arn"] == profile.state["arn"]


def test_ami_comes_from_the_public_ssm_parameter(group):
    params = [a["name"] for token, a in group.invokes if token == "aws:ssm/getParameter:getParameter"]
    assert params == [AMI_PARAMETERS["ecs"]]
    assert group.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["imageId"].startswith("ami-")


def test_user_data_is_base64(group):
    lt = group.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert base64.b64decode(lt["userData"]).decode() == "#!/bin/bash\necho hi\n"


def test_placement_group_pins_one_az(placed_group):
    pg = placed_group.one("aws:ec2/placementGroup:PlacementGroup")
    asg = placed_group.one("aws:autoscaling/group:Group")
    assert pg.inputs["strategy"] == "cluster"
    assert asg.inputs["placementGroup"] == pg.state["name"]
    assert asg.inputs["vpcZoneIdentifiers"] == ["subnet-a"]
    assert not [t for t, _ in placed_group.invokes if t == "aws:ssm/getParameter:getParameter"]  # pinned AMI


@pytest.mark.parametrize("kw,message", [
    ({"spot_percent": 101}, "spot_percent"),
    ({"on_demand_base": 5}, "on_demand_base"),
    ({"instance_types": ()}, "instance_types"),
    ({"ami_id": "ami-1"}, "exactly one"),
])
def test_invalid_args_fail_before_any_resource(kw, message):
    with pytest.raises(ValueError, match=message):
        make_args(**kw)
