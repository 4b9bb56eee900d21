"""sagemaker: a managed (spot by default) training job checkpointing into the data lake."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    `trainstack run` starts the stack's own job from `training_job_request`, `trainstack exec` and `trainstack
    sagemaker start` build further jobs from the rest (trainstack/run/sagemaker_jobs.py)."""

    training_job_name: str  # the stack's own job (deterministic; created after `up`, never by Pulumi)
    training_job_arn: str  # what the teardown schedule's policy names
    # The stack's own CreateTrainingJob request, name and role included, exactly as boto3 (or
    # `aws sagemaker create-training-job --cli-input-json`) takes it.
    training_job_request: Mapping[str, Any]
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
    # The job's type, though no stack holds one: `trainstack run` creates the job from the exported request
    # after `up` (the diagram draws it outside the stack; the doctor checks the calls that start it).
    job_resources=("aws:sagemaker/trainingJob:TrainingJob",),
    started_by=None,  # `trainstack run` (or `trainstack sagemaker start`) creates the job once `up` is done
    outputs=SageMakerOutputs,
    idle=IdleCost.NOTHING,
    idle_note="Idle: SageMaker releases the instances when the job ends.",
    after_up=(
        Phase("CreateTrainingJob", 2, "one API call by `trainstack run` once `up` is done"),
        Phase("SageMaker provisioning", 240, "training job 'Starting' (instance provisioning): typically 2-5 min"),
    ),
)
