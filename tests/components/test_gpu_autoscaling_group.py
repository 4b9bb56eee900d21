"""GpuAutoScalingGroup under the mock engine: spot mix, IMDSv2, encryption, no SSH, no fighting the autoscaler."""

from __future__ import annotations

import base64

import pytest

from trainstack.backends.ecs import ECS_AL2023_GPU
from trainstack.components.gpu_autoscaling_group import GpuAutoScalingGroup, GpuAutoScalingGroupArgs, check_root_volume

TAGS = {"trainstack:owner": "alice", "trainstack:expires-at": "2026-11-22T23:00:00Z"}


def make_args(**kw):
    base = dict(
        instance_types=("p3.2xlarge", "p3.8xlarge"),
        subnet_ids=["subnet-a", "subnet-b"],
        security_group_id="sg-123",
        user_data="#!/bin/bash\necho hi\n",
        max_size=4,
        ami_ssm_parameter=ECS_AL2023_GPU,
        on_demand_base=1,
        spot_percent=70,
        tags=TAGS,
    )
    base.update(kw)
    return GpuAutoScalingGroupArgs(**base)


@pytest.fixture(scope="module")
def group(run_program):
    return run_program(lambda: GpuAutoScalingGroup("gpu", make_args()))


@pytest.fixture(scope="module")
def placed_group(run_program):
    return run_program(
        lambda: GpuAutoScalingGroup(
            "gpu", make_args(placement_group=True, ami_ssm_parameter=None, ami_id="ami-0123456789abcdef0")
        )
    )


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


def test_imdsv2_required_and_bridge_containers_cannot_reach_the_node_role(group):
    meta = group.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["metadataOptions"]
    assert meta["httpTokens"] == "required" and meta["httpPutResponseHopLimit"] == 1
    assert meta["httpEndpoint"] == "enabled"


def test_hop_limit_is_an_explicit_opt_in(run_program):
    run = run_program(lambda: GpuAutoScalingGroup("gpu", make_args(metadata_hop_limit=2)))
    assert run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["metadataOptions"]["httpPutResponseHopLimit"] == 2


def test_root_volume_smaller_than_the_amis_snapshot_is_refused():
    mappings = [
        {"device_name": "/dev/xvda", "ebs": {"volume_size": "100", "volume_type": "gp3"}},
        {"device_name": "/dev/sdb", "ebs": {}},
    ]
    assert check_root_volume(100, mappings, "/dev/xvda", "ami-1") == "/dev/xvda"
    assert check_root_volume(30, [], "/dev/xvda", "ami-1") == "/dev/xvda"  # nothing known: nothing refused
    with pytest.raises(
        Exception, match=r"root_volume_gib = 60 \(trainstack:gpu.rootVolumeGiB\).*100 GiB root snapshot.*at least 100"
    ):
        check_root_volume(60, mappings, "/dev/xvda", "ami-1")


def test_root_volume_check_runs_on_the_amis_real_mappings(run_program, monkeypatch):
    from trainstack.plan import offline

    answer = offline.OfflineMocks.call

    def call(self, args):
        out = answer(self, args)
        if args.token == "aws:ec2/getAmi:getAmi":
            out = dict(out, blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"volume_size": "250"}}])
        return out

    monkeypatch.setattr(offline.OfflineMocks, "call", call)
    with pytest.raises(Exception, match="250 GiB root snapshot"):
        run_program(lambda: GpuAutoScalingGroup("gpu", make_args(root_volume_gib=200)))


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
    assert params == [ECS_AL2023_GPU]
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


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"spot_percent": 101}, "spot_percent"),
        ({"on_demand_base": 5}, "on_demand_base"),
        ({"instance_types": ()}, "instance_types"),
        ({"ami_id": "ami-1"}, "exactly one"),
        ({"metadata_hop_limit": 0}, "metadata_hop_limit"),
    ],
)
def test_invalid_args_fail_before_any_resource(kw, message):
    with pytest.raises(ValueError, match=message):
        make_args(**kw)
