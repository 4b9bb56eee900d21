"""The sagemaker backend: the role, the teardown schedule and the request of a managed (spot by default)
training job checkpointing into the data lake; `trainstack run` creates the job from the request after `up`."""

from __future__ import annotations

import pulumi

from trainstack.backends.sagemaker import SageMakerOutputs
from trainstack.components import auto_teardown as teardown
from trainstack.components.sagemaker_training_job import SageMakerTrainingJob, SageMakerTrainingJobArgs
from trainstack.programs.backends import BackendResult, ClusterContext


def _warn_without_nat(ctx: ClusterContext) -> None:
    c = ctx.cluster

    def check_egress(egress: str) -> None:
        if egress != "nat":
            pulumi.log.warn(
                f"trainstack:sagemaker.vpc is true but platform {c.platform_stack} has egress {egress}: "
                "SageMaker's network interfaces get no public IP, so the job cannot pull its image "
                "from ECR. Use a platform with egress: nat (or add ECR interface endpoints), or set "
                "sagemaker.vpc: false."
            )

    ctx.platform_output("egress", required=False).apply(check_egress)


def build(ctx: ClusterContext) -> BackendResult:
    c = ctx.cluster
    settings = c.sagemaker
    if settings.vpc:
        _warn_without_nat(ctx)
    sm = SageMakerTrainingJob(
        "training",
        SageMakerTrainingJobArgs(
            owner=c.owner,
            stack=ctx.stack,
            region=ctx.region,
            account_id=ctx.account_id,
            locations=ctx.locations,
            kms_key_arn=ctx.kms_key_arn,
            # The same mapping as sagemaker_request.spec_from_config, which `trainstack sagemaker start`
            # uses for further jobs of the stack (tests/components/test_sagemaker_training_job.py compares them).
            image=c.job.image,
            instance_type=c.gpu.instance_types[0],
            instance_count=c.job.nodes,
            volume_gib=c.gpu.root_volume_gib,
            command=c.job.command,
            environment=c.job.environment,
            hyperparameters=settings.hyperparameters,
            processes_per_host=c.job.gpus_per_node,
            code_uri=ctx.code_uri,
            spot=settings.spot,
            max_runtime_seconds=c.max_runtime_seconds,
            max_wait_seconds=c.max_wait_seconds if settings.spot else None,
            input_mode=settings.input_mode,
            distribution=settings.distribution,
            checkpoints=settings.checkpoints,
            checkpoint_local_path=settings.checkpoint_local_path,
            retry_attempts=settings.retry_attempts,
            vpc=settings.vpc,
            subnet_ids=ctx.subnet_ids if settings.vpc else [],
            security_group_id=ctx.security_group_id if settings.vpc else None,
            tags=ctx.tags,
        ),
    )
    return BackendResult(
        outputs=SageMakerOutputs.to_outputs(
            training_job_name=sm.job_name,
            training_job_arn=sm.job_arn,
            training_job_request=sm.request,
            role_arn=sm.role.arn,
            kms_key_arn=ctx.kms_key_arn,
            subnet_ids=ctx.subnet_ids,
            security_group_id=ctx.security_group_id,
            buckets=ctx.platform_output("buckets"),
            model_artifact_uri=pulumi.Output.all(ctx.locations, sm.job_name).apply(
                lambda a: f"{a[0].artifact_uri}{a[1]}/output/model.tar.gz"
            ),
        ),
        # By the job's deterministic name: the job is created after `up` (never by Pulumi), and the schedule
        # stops it at expiry whoever started it.
        teardown=(teardown.stop_training_job(sm.job_name, sm.job_arn),),
    )
