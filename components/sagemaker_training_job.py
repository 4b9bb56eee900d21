"""SageMakerTrainingJob: the role and the request of a managed (spot by default) training job
checkpointing into the data lake.

SageMaker provisions and releases the GPUs itself, so nothing idles; managed spot training cuts
the bill by up to 90 %, and the checkpoint config lets an interrupted spot job resume where it
stopped instead of starting over. The execution role reaches only this run's prefixes.

The job itself is not a Pulumi resource. `aws.sagemaker.TrainingJob` creates the job and then waits
for it to end inside `pulumi up`; when that wait fails (a failed job, the create timeout, Ctrl-C or a
CI cancel, expired credentials, a job stopped by anyone: `Stopping` is neither the wait's pending nor
its target state), the provider returns before saving the resource, so the job runs on outside the
state while `destroy` removes the schedule that would have stopped it (terraform-provider-aws
internal/service/sagemaker/training_job.go: `Create` calls `CreateTrainingJob`, then
`waitTrainingJobCreated` with Pending [InProgress] and Target [Completed, Stopped], and sets the state
only after it). So this component holds what must outlive any one job (the execution role) and
exports the CreateTrainingJob `request` with a deterministic `job_name`; whoever starts the job
(`trainstack run`, `trainstack sagemaker start`, `aws sagemaker create-training-job --cli-input-json`)
follows and stops it, and the stack's teardown schedule can stop it by that name at expiry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from trainstack.model import iam_documents as docs
from trainstack.model.run_locations import RunLocations, data_access_policy
from trainstack.model.sagemaker_request import (
    TrainingJobSpec,
    content_hash,
    create_training_job_request,
    job_name,
    ml_instance_type,
    training_job_arn,
)

# A training job runs (and, with managed spot, waits) at most 28 days (config.MAX_RUNTIME_HOURS).
MAX_JOB_SECONDS = 28 * 24 * 3600


@dataclass(frozen=True)
class SageMakerTrainingJobArgs:
    # -- who and where ------------------------------------------------------------------------
    # Job names start with `<owner>-<stack>-` (then a hash of the request: a changed job is a new job).
    owner: str
    # The deployment's name (your Pulumi stack's, say).
    stack: str
    # The AWS region.
    region: str
    # The AWS account (scopes the execution role's trust and the job's ARN).
    account_id: str
    # Where the job reads its dataset and writes its model and checkpoints (trainstack.model.run_locations).
    locations: pulumi.Input[RunLocations]
    # The data lake's KMS key: the job's volumes (where the instance type allows it) and output.
    kms_key_arn: pulumi.Input[str]
    # -- what runs on what ----------------------------------------------------------------------
    # The training image (e.g. an AWS Deep Learning Container).
    image: str
    # The instance type, `ml.p3.2xlarge` (an EC2 name gets the `ml.` prefix).
    instance_type: str
    # Instances of the job.
    instance_count: int = 1
    # The training volume of each instance, GiB.
    volume_gib: int = 200
    # The container's entrypoint (empty: the image's own); with code_uri, the script the toolkit runs.
    command: tuple[str, ...] = ()
    # Environment of the training container, besides the TRAINSTACK_* locations.
    environment: Mapping[str, str] = field(default_factory=dict)
    # SageMaker hyperparameters (strings).
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    # Training processes per instance (one per GPU).
    processes_per_host: int = 1
    # The run's code bundle (s3:// tar.gz, e.g. CodeBundle.uri), run by the image's SageMaker toolkit.
    code_uri: pulumi.Input[str] | None = None
    # -- how ------------------------------------------------------------------------------------
    # Managed spot training (up to 90 % cheaper; checkpoints let an interrupted job resume).
    spot: bool = True
    # The job is stopped after this many seconds of training.
    max_runtime_seconds: int = 6 * 3600
    # Spot only: seconds the job may take in all, waiting for capacity included (>= max_runtime_seconds);
    # None: twice max_runtime_seconds, at most 28 days.
    max_wait_seconds: int | None = None
    # How the dataset reaches the container: FastFile, File or Pipe.
    input_mode: str = "FastFile"
    # FullyReplicated (every instance gets all of it) or ShardedByS3Key.
    distribution: str = "FullyReplicated"
    # Sync the checkpoint_local_path to the run's checkpoint prefix (what spot resumption needs).
    checkpoints: bool = True
    checkpoint_local_path: str = "/opt/ml/checkpoints"
    # SageMaker retries an internal failure this many times.
    retry_attempts: int = 2
    # -- network --------------------------------------------------------------------------------
    # Run in the VPC (subnet_ids + security_group_id) instead of SageMaker's network (needs NAT egress for ECR).
    vpc: bool = False
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    security_group_id: pulumi.Input[str] | None = None
    # Tags on the role and the job (the request's Tags: `trainstack ls` finds and prices jobs by them).
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.image:
            raise ValueError("image is empty: give the training image")
        if not self.instance_type:
            raise ValueError("instance_type is empty: give an ml.* instance type")
        for name in ("instance_count", "volume_gib", "processes_per_host", "max_runtime_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r}: must be a whole number, at least 1")
        for name in ("spot", "checkpoints", "vpc"):
            if not isinstance(getattr(self, name), bool):  # bool(Output(False)) is True: switches are plain bools
                raise ValueError(f"{name} = {getattr(self, name)!r}: must be True or False")
        if self.max_runtime_seconds > MAX_JOB_SECONDS:
            raise ValueError(f"max_runtime_seconds = {self.max_runtime_seconds}: at most {MAX_JOB_SECONDS} (28 days)")
        if self.max_wait_seconds is not None and not (
            self.max_runtime_seconds <= self.max_wait_seconds <= MAX_JOB_SECONDS
        ):
            raise ValueError(
                f"max_wait_seconds = {self.max_wait_seconds}: must be between max_runtime_seconds "
                f"({self.max_runtime_seconds}) and {MAX_JOB_SECONDS} (28 days)"
            )
        if not isinstance(self.retry_attempts, int) or self.retry_attempts < 0:
            raise ValueError(f"retry_attempts = {self.retry_attempts!r}: must be a whole number, 0 or more")
        if isinstance(self.command, str):
            raise ValueError(f"command = {self.command!r}: give the command as a list of arguments")
        if self.vpc and self.security_group_id is None:
            raise ValueError(
                "vpc = True needs security_group_id (and subnet_ids): the job's network interfaces use them"
            )

    def spec(
        self,
        *,
        locations: RunLocations,
        kms_key_arn: str,
        subnet_ids: Sequence[str],
        security_group_ids: Sequence[str],
        code_uri: str | None,
    ) -> TrainingJobSpec:
        """The plain request spec, once the inputs that come from other resources are known."""
        wait = self.max_wait_seconds
        if wait is None:
            wait = min(2 * self.max_runtime_seconds, MAX_JOB_SECONDS)
        return TrainingJobSpec(
            image=self.image,
            instance_type=ml_instance_type(self.instance_type),
            instance_count=self.instance_count,
            volume_gib=self.volume_gib,
            kms_key_arn=kms_key_arn,
            locations=locations,
            input_mode=self.input_mode,
            distribution=self.distribution,
            spot=self.spot,
            checkpoints=self.checkpoints,
            checkpoint_local_path=self.checkpoint_local_path,
            max_runtime_seconds=self.max_runtime_seconds,
            max_wait_seconds=wait if self.spot else None,
            retry_attempts=self.retry_attempts,
            entrypoint=tuple(self.command),
            processes_per_host=self.processes_per_host,
            environment=dict(self.environment),
            hyperparameters=dict(self.hyperparameters),
            subnet_ids=tuple(subnet_ids) if self.vpc else (),
            security_group_ids=tuple(security_group_ids) if self.vpc else (),
            tags=dict(self.tags),
            code_uri=code_uri,
        )


class SageMakerTrainingJob(pulumi.ComponentResource):
    role: aws.iam.Role
    role_policy: aws.iam.RolePolicy
    job_name: pulumi.Output[str]  # deterministic: `<owner>-<stack>-<hash of the request>`
    job_arn: pulumi.Output[str]  # built from the name: known before the job exists
    # The whole CreateTrainingJob request (TrainingJobName and RoleArn included), as boto3 takes it.
    request: pulumi.Output[dict]

    def __init__(self, name: str, args: SageMakerTrainingJobArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:compute:SageMakerTrainingJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-execution-role",
            description="trainstack: SageMaker training job of one run",
            assume_role_policy=json.dumps(docs.assume_role("sagemaker.amazonaws.com", source_account=args.account_id)),
            tags=args.tags,
            opts=child,
        )
        repo = docs.ecr_repository_arn(args.image)
        policy = pulumi.Output.all(args.locations, args.kms_key_arn).apply(
            lambda a: json.dumps(
                docs.merge(
                    data_access_policy(a[0], a[1], args.region),
                    docs.sagemaker_training(
                        region=args.region, account_id=args.account_id, kms_key_arn=a[1], vpc=args.vpc
                    ),
                    docs.pull_image(repo),
                )
            )
        )
        self.role_policy = aws.iam.RolePolicy(f"{name}-execution-policy", role=self.role.id, policy=policy, opts=child)

        sg_ids = [args.security_group_id] if args.security_group_id is not None else []
        body = pulumi.Output.all(args.locations, args.kms_key_arn, args.subnet_ids, sg_ids, args.code_uri).apply(
            lambda a: create_training_job_request(
                args.spec(locations=a[0], kms_key_arn=a[1], subnet_ids=a[2], security_group_ids=a[3], code_uri=a[4])
            )
        )
        # The name carries a hash of the request: a changed job is a new job (names are never reused).
        self.job_name = body.apply(lambda r: job_name(args.owner, args.stack, content_hash(r)))
        self.job_arn = self.job_name.apply(lambda n: training_job_arn(args.region, args.account_id, n))
        # The role ARN only once its policy exists: a job started from the request can read its data at once.
        role_ready = pulumi.Output.all(self.role.arn, self.role_policy.id).apply(lambda a: a[0])
        # The body joins them as its JSON text: `Output.all` over the dict itself would make an Output of each of
        # its ~120 values (pulumi's Output.from_input lifts a dict leaf by leaf), the text is one. The same dict
        # comes back: the request is JSON (content_hash dumps it; tests/components compare the two).
        self.request = pulumi.Output.all(body.apply(json.dumps), self.job_name, role_ready).apply(
            lambda a: {**json.loads(a[0]), "TrainingJobName": a[1], "RoleArn": a[2]}
        )
        self.register_outputs(
            {
                "trainingJobName": self.job_name,
                "trainingJobArn": self.job_arn,
                "roleArn": self.role.arn,
                "request": self.request,
            }
        )
