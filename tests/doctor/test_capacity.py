"""Offerings per zone of the platform's subnets (moto's offering data) and spot placement scores (`answer`)."""

from __future__ import annotations

import boto3

from tests.doctor.fakes import answer
from trainstack.doctor.capacity import check_capacity
from trainstack.doctor.context import PlatformOutputs
from trainstack.doctor.result import Status


def _platform(ctx, zones=("us-east-1a", "us-east-1b")):
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(zones)
    ]
    ctx.platform = PlatformOutputs("organization/trainstack/platform", {"subnetIds": subnets, "region": "us-east-1"})
    return subnets


def _scores(zone_scores):
    return lambda p: {
        "SpotPlacementScores": [
            {"Region": region, "AvailabilityZoneId": zone, "Score": score} for region, zone, score in zone_scores
        ]
    }


def test_offered_types_and_good_spot_scores_pass(make_ctx):
    ctx = make_ctx("dev-ec2")  # g4dn.12xlarge, offered in moto's us-east-1a/b
    _platform(ctx)
    seen = answer(
        ctx.aws.client("ec2"),
        "GetSpotPlacementScores",
        _scores([("us-east-1", "use1-az6", 9), ("us-east-1", "use1-az1", 7)]),
    )
    offerings, scores = check_capacity(ctx)
    assert offerings.status is Status.PASS and "g4dn.12xlarge: us-east-1a, us-east-1b" in offerings.detail
    assert scores.status is Status.PASS and "us-east-1a 9" in scores.detail
    assert seen == [
        {
            "InstanceTypes": ["g4dn.12xlarge"],
            "TargetCapacity": 2,
            "TargetCapacityUnitType": "units",
            "SingleAvailabilityZone": True,
        }
    ]


def test_a_type_offered_in_none_of_the_platform_zones_fails(make_ctx):
    ctx = make_ctx("dev-ecs")  # p3.2xlarge/p3.8xlarge: moto's us-east-1 offers no p3
    _platform(ctx)
    answer(ctx.aws.client("ec2"), "GetSpotPlacementScores", _scores([]))
    offerings = check_capacity(ctx)[0]
    assert offerings.status is Status.FAIL
    assert "p3.2xlarge, p3.8xlarge not offered in us-east-1a, us-east-1b (the platform's subnets)" in offerings.detail


def test_a_poor_spot_score_warns_and_names_a_better_zone_and_region(make_ctx):
    ctx = make_ctx("dev-ec2")
    _platform(ctx)
    answer(
        ctx.aws.client("ec2"),
        "GetSpotPlacementScores",
        _scores(
            [
                ("us-east-1", "use1-az6", 1),
                ("us-east-1", "use1-az1", 2),
                ("us-east-1", "use1-az4", 8),
                ("us-west-2", "usw2-az1", 9),
            ]
        ),
    )
    scores = check_capacity(ctx)[1]
    assert scores.status is Status.WARN
    assert "zone id use1-az4 of us-east-1 scores 8" in scores.fix and "us-west-2 scores 9" in scores.fix


def test_sagemaker_has_no_offerings_to_check(make_ctx):
    [check] = check_capacity(make_ctx("dev-sagemaker"))
    assert check.status is Status.SKIP
