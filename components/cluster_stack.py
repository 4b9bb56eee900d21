"""The `cluster` stack kind: one ephemeral training cluster on a platform stack.

Reads the platform (network, data lake) through a StackReference, creates compute for one
backend, IAM scoped to this owner and stack, and the auto-teardown schedule. It creates no VPC
and no bucket, so `up` and `destroy` are quick and a destroy can never touch data.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from . import auto_teardown as teardown
from .config import StackConfig
from .run_locations import RunLocations, run_locations
from .tags import standard_tags


def _locations(cfg: StackConfig, platform: pulumi.StackReference) -> pulumi.Output[RunLocations]:
    c = cfg.cluster
    assert c is not None

    def build(args: list[Any]) -> RunLocations:
        buckets, region = args
        if region != cfg.region:
            raise ValueError(f"platform stack {c.platform_stack} is in {region} but this cluster stack's aws:region "
                             f"is {cfg.region}; set aws:region to {region} (clusters run next to their data)")
        return run_locations(buckets, c.job.dataset, c.owner, cfg.stack)

    return pulumi.Output.all(platform.require_output("buckets"), platform.require_output("region")).apply(build)


def build_cluster(cfg: StackConfig) -> dict[str, Any]:
    c = cfg.cluster
    assert c is not None
    tags = standard_tags(cfg)
    account_id = aws.get_caller_identity().account_id
    platform = pulumi.StackReference("platform", stack_name=c.platform_stack)
    locations = _locations(cfg, platform)
    subnet_ids = platform.require_output("subnetIds")
    security_group_id = platform.require_output("securityGroupId")
    kms_key_arn = platform.require_output("kmsKeyArn")

    outputs: dict[str, Any] = {
        "owner": c.owner,
        "backend": c.backend,
        "region": cfg.region,
        "expiresAt": c.expires_at_iso,
        "platformStack": c.platform_stack,
        "datasetUri": locations.apply(lambda l: l.dataset_uri),
        "artifactUri": locations.apply(lambda l: l.artifact_uri),
        "modelUri": locations.apply(lambda l: l.model_uri),
        "checkpointUri": locations.apply(lambda l: l.checkpoint_uri),
    }

    # What the self-managed backends (ecs, ec2) are built from.
    compute = dict(owner=c.owner, stack=cfg.stack, region=cfg.region, gpu=c.gpu, job=c.job, subnet_ids=subnet_ids,
                   security_group_id=security_group_id, locations=locations, kms_key_arn=kms_key_arn,
                   max_runtime_seconds=c.max_runtime_seconds, log_retention_days=c.log_retention_days, tags=tags)
    if c.backend == "ecs":
        from .ecs_training_cluster import EcsTrainingCluster, EcsTrainingClusterArgs

        ecs = EcsTrainingCluster("training", EcsTrainingClusterArgs(**compute))
        group = ecs.capacity.group
        actions = (teardown.scale_group_to_zero(group.name, group.arn),
                   teardown.shut_down_group_instances(group.name, cfg.region, account_id))
        outputs.update({
            "clusterName": ecs.cluster.name, "clusterArn": ecs.cluster.arn,
            "capacityProviderName": ecs.capacity_provider.name,
            "taskDefinitionArn": ecs.task_definition.arn, "containerName": "training",
            "logGroupName": ecs.log_group.name, "taskRoleArn": ecs.task_role.arn,
            "executionRoleArn": ecs.execution_role.arn, "nodeRoleArn": ecs.capacity.role.arn,
            "groupName": group.name, "groupArn": group.arn, "amiId": ecs.capacity.ami_id,
            "runTaskCommand": ecs.run_task_command(),
        })
    elif c.backend == "ec2":
        from .ec2_training_cluster import Ec2TrainingCluster, Ec2TrainingClusterArgs

        ec2 = Ec2TrainingCluster("training", Ec2TrainingClusterArgs(**compute))
        group = ec2.capacity.group
        actions = (teardown.scale_group_to_zero(group.name, group.arn),)
        outputs.update({
            "groupName": group.name, "groupArn": group.arn, "nodeRoleArn": ec2.capacity.role.arn,
            "logGroupName": ec2.log_group.name, "amiId": ec2.capacity.ami_id,
            "launchTemplateId": ec2.capacity.launch_template.id,
            "successMarkerUri": locations.apply(lambda l: f"{l.artifact_uri}_SUCCESS"),
        })
    elif c.backend == "sagemaker":
        from .sagemaker_training_job import SageMakerTrainingJob, SageMakerTrainingJobArgs

        if c.sagemaker.vpc:
            def check_egress(egress: str) -> None:
                if egress != "nat":
                    pulumi.log.warn(
                        f"trainstack:sagemaker.vpc is true but platform {c.platform_stack} has egress {egress}: "
                        "SageMaker's network interfaces get no public IP, so the job cannot pull its image "
                        "from ECR. Use a platform with egress: nat (or add ECR interface endpoints), or set "
                        "sagemaker.vpc: false.")

            platform.get_output("egress").apply(check_egress)

        sm = SageMakerTrainingJob("training", SageMakerTrainingJobArgs(
            cluster=c, stack=cfg.stack, region=cfg.region, account_id=account_id, locations=locations,
            kms_key_arn=kms_key_arn, subnet_ids=subnet_ids if c.sagemaker.vpc else [],
            security_group_id=security_group_id if c.sagemaker.vpc else None, tags=tags))
        actions = (teardown.stop_training_job(sm.job_name, sm.job.arn),)
        outputs.update({
            "trainingJobName": sm.job_name, "trainingJobArn": sm.job.arn, "roleArn": sm.role.arn,
            "kmsKeyArn": kms_key_arn, "subnetIds": subnet_ids, "securityGroupId": security_group_id,
            "buckets": platform.require_output("buckets"),
            "modelArtifactUri": pulumi.Output.all(locations, sm.job_name).apply(
                lambda a: f"{a[0].artifact_uri}{a[1]}/output/model.tar.gz"),
        })
    else:  # config validation only lets implemented backends through
        raise pulumi.RunError(f"backend {c.backend} is not implemented")

    auto = teardown.AutoTeardown("teardown", teardown.AutoTeardownArgs(
        expires_at=c.expires_at, actions=actions, account_id=account_id, tags=tags))
    outputs["teardownSchedules"] = {k: s.name for k, s in auto.schedules.items()}
    outputs["teardownRoleArn"] = auto.role.arn
    return outputs
