"""SageMakerTrainingJob: a managed (spot by default) training job checkpointing into the data lake.

SageMaker provisions and releases the GPUs itself, so nothing idles; managed spot training cuts
the bill by up to 90 %, and the checkpoint config lets an interrupted spot job resume where it
stopped instead of starting over. The execution role reaches only this run's prefixes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from trainstack.model import iam_documents as docs
from trainstack.model.config import ClusterConfig
from trainstack.model.run_locations import RunLocations, data_access_policy
from trainstack.model.sagemaker_request import (
    DELETE_TIMEOUT,
    content_hash,
    create_timeout,
    create_training_job_request,
    job_name,
    spec_from_config,
    to_pulumi_args,
    training_job_arn,
)


@dataclass(frozen=True)
class SageMakerTrainingJobArgs:
    cluster: ClusterConfig
    stack: str
    region: str
    account_id: str
    locations: pulumi.Input[RunLocations]
    kms_key_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    security_group_id: pulumi.Input[str] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    code_uri: pulumi.Input[str] | None = None  # job.workdir bundle (components/code_bundle.py)

    def __post_init__(self):
        if self.cluster.sagemaker.vpc and self.security_group_id is None:
            raise ValueError("sagemaker.vpc needs the platform's security group")


class SageMakerTrainingJob(pulumi.ComponentResource):
    role: aws.iam.Role
    job: aws.sagemaker.TrainingJob
    job_name: pulumi.Output[str]
    job_arn: pulumi.Output[str]  # known before the job ends, unlike `job.arn`
    request: pulumi.Output[dict]

    def __init__(self, name: str, args: SageMakerTrainingJobArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:compute:SageMakerTrainingJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        c = args.cluster
        self.role = aws.iam.Role(
            f"{name}-execution-role",
            description="trainstack: SageMaker training job of one run",
            assume_role_policy=json.dumps(docs.assume_role("sagemaker.amazonaws.com", source_account=args.account_id)),
            tags=args.tags,
            opts=child,
        )
        repo = docs.ecr_repository_arn(c.job.image)
        policy = pulumi.Output.all(args.locations, args.kms_key_arn).apply(
            lambda a: json.dumps(
                docs.merge(
                    data_access_policy(a[0], a[1], args.region),
                    docs.sagemaker_training(
                        region=args.region, account_id=args.account_id, kms_key_arn=a[1], vpc=c.sagemaker.vpc
                    ),
                    docs.pull_image(repo),
                )
            )
        )
        role_policy = aws.iam.RolePolicy(f"{name}-execution-policy", role=self.role.id, policy=policy, opts=child)

        sg_ids = [args.security_group_id] if args.security_group_id is not None else []
        self.request = pulumi.Output.all(
            args.locations, args.kms_key_arn, args.subnet_ids, sg_ids, args.code_uri
        ).apply(
            lambda a: create_training_job_request(
                spec_from_config(
                    c, locations=a[0], kms_key_arn=a[1], subnet_ids=a[2], security_group_ids=a[3], code_uri=a[4]
                )
            )
        )
        # The name carries a hash of the request: a changed job is a new job (names are never reused).
        self.job_name = self.request.apply(lambda r: job_name(c.owner, args.stack, content_hash(r)))
        self.job_arn = self.job_name.apply(lambda n: training_job_arn(args.region, args.account_id, n))
        pulumi_args = self.request.apply(to_pulumi_args)

        def field_of(key: str) -> pulumi.Output:
            return pulumi_args.apply(lambda a: a.get(key))

        self.job = aws.sagemaker.TrainingJob(
            f"{name}-job",
            training_job_name=self.job_name,
            role_arn=self.role.arn,
            algorithm_specification=field_of("algorithm_specification"),
            input_data_configs=field_of("input_data_configs"),
            output_data_config=field_of("output_data_config"),
            resource_config=field_of("resource_config"),
            stopping_condition=field_of("stopping_condition"),
            enable_managed_spot_training=field_of("enable_managed_spot_training"),
            enable_inter_container_traffic_encryption=field_of("enable_inter_container_traffic_encryption"),
            retry_strategy=field_of("retry_strategy"),
            environment=field_of("environment"),
            hyper_parameters=field_of("hyper_parameters"),
            checkpoint_config=field_of("checkpoint_config"),
            vpc_config=field_of("vpc_config"),
            tags=args.tags,
            # Creating the resource waits for the job to end: a timeout shorter than the job would fail
            # `pulumi up` and drop a still-running job from the state (see sagemaker_request.create_timeout).
            timeouts=self.request.apply(lambda r: {"create": create_timeout(r), "delete": DELETE_TIMEOUT}),
            # The role must be able to read the data before SageMaker starts the job.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        self.register_outputs(
            {"trainingJobName": self.job_name, "trainingJobArn": self.job_arn, "roleArn": self.role.arn}
        )
