"""What the doctor checks is what the offline plan says the stack creates."""

from __future__ import annotations

from tests.doctor.fakes import facts_of
from trainstack.doctor.facts import ON_DEMAND, SPOT


def test_dev_ecs_needs_spot_vcpus_for_max_instances_of_its_largest_type():
    f = facts_of("dev-ecs")
    # gpu.maxInstances 4, spotPercent 100, onDemandBase 0; the largest listed type is p3.8xlarge (32 vCPUs)
    assert [(d.market, d.instance_type, d.instances, d.vcpus) for d in f.demands] == [(SPOT, "p3.8xlarge", 4, 128)]
    assert f.ssm_parameters == ("/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id",)
    # The schedules' order follows the mock engine's registration order, which varies: compare as a set.
    assert set(f.universal_targets) == {"autoscaling:updateAutoScalingGroup", "ssm:sendCommand"}
    services = {s for r in f.roles for s in r.services}
    assert {"ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "scheduler.amazonaws.com"} <= services


def test_dev_eks_counts_the_on_demand_system_group_apart_from_the_spot_gpus():
    f = facts_of("dev-eks")
    markets = {(d.market, d.instance_type) for d in f.demands}
    assert (ON_DEMAND, "t3.medium") in markets and (SPOT, "p3.2xlarge") in markets
    assert f.universal_targets == ("autoscaling:deleteTags", "eks:updateNodegroupConfig")
    assert "vpc-cni" in f.addons and "coredns" in f.addons


def test_dev_sagemaker_demands_job_nodes_of_its_ml_type_and_launches_nothing_itself():
    f = facts_of("dev-sagemaker")
    assert [(d.market, d.instance_type, d.instances) for d in f.demands] == [(SPOT, "p3.2xlarge", 1)]
    assert not f.runs_own_instances
    assert f.universal_targets == ("sagemaker:stopTrainingJob",)
