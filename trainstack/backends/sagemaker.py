"""sagemaker: a managed (spot by default) training job checkpointing into the data lake."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trainstack.backends import (
    AmiSource,
    Backend,
    Capabilities,
    CommandRule,
    IdleCost,
    Phase,
    SpotMode,
    StackOutputs,
)


@dataclass(frozen=True)
class SageMakerOutputs(StackOutputs):
    """What a sagemaker cluster stack exports besides `ClusterOutputs` (trainstack/programs/backends/sagemaker.py);
    `trainstack sagemaker start` builds further jobs of the stack from them (trainstack/run/sagemaker_jobs.py)."""

    training_job_name: str  # the stack's own job
    training_job_arn: str
    role_arn: str  # the execution role (further jobs use it too)
    kms_key_arn: str  # the data lake key: volumes and output
    subnet_ids: list[str]  # the platform's compute subnets (used with sagemaker.vpc)
    security_group_id: str  # the platform's cluster security group (used with sagemaker.vpc)
    buckets: Mapping[str, Mapping[str, str]]  # the platform's buckets: zone -> {name, arn}
    model_artifact_uri: str  # s3://.../<job name>/output/model.tar.gz


BACKEND = Backend(
    name="sagemaker",
    summary="SageMaker training job (managed spot, checkpoints in the lake)",
    capabilities=Capabilities(
        multi_node=True,
        spot=SpotMode.MANAGED,
        elastic_restart=False,
        placement_group=False,  # SageMaker places training instances itself
        ami=AmiSource.SERVICE,
        command=CommandRule.NEVER,
        sagemaker_instance_names=True,
        max_instance_types=1,  # a training job runs on one instance type
    ),
    program="trainstack.programs.backends.sagemaker",
    config_checks="trainstack.model.config.sagemaker:check",
    follower="trainstack.run.follow.sagemaker:SageMakerFollower",
    job_resources=("aws:sagemaker/trainingJob:TrainingJob",),
    started_by="aws:sagemaker/trainingJob:TrainingJob",  # the job provisions as soon as it is created
    outputs=SageMakerOutputs,
    idle=IdleCost.NOTHING,
    idle_note="Idle: SageMaker releases the instances when the job ends.",
    after_up=(
        Phase("SageMaker provisioning", 240, "training job 'Starting' (instance provisioning): typically 2-5 min"),
    ),
)
