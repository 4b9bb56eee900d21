"""sagemaker: a managed (spot by default) training job checkpointing into the data lake."""

from __future__ import annotations

from trainstack.backends import AmiSource, Backend, Capabilities, CommandRule, Phase, SpotMode

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
    after_up=(
        Phase("SageMaker provisioning", 240, "training job 'Starting' (instance provisioning): typically 2-5 min"),
    ),
)
