"""The one builder of SageMaker CreateTrainingJob requests.

`create_training_job_request` produces the request exactly as boto3 / the SageMaker API take
it. The `SageMakerTrainingJob` component feeds the same request into `aws.sagemaker.TrainingJob`
(through `to_pulumi_args`), and `scripts/sagemaker_jobs.py` sends it with boto3 to start further
runs on a deployed stack without redeploying — so both paths always agree.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainstack.model import catalog
from trainstack.model.code_delivery import CODE_URI_ENV, sagemaker_hyperparameters
from trainstack.model.config import ClusterConfig
from trainstack.model.run_locations import RunLocations

CHANNEL = "training"
JOB_NAME_MAX = 63


@dataclass(frozen=True)
class TrainingJobSpec:
    """Everything a training job needs, as plain values."""

    image: str
    instance_type: str  # ml.*
    instance_count: int
    volume_gib: int
    kms_key_arn: str
    locations: RunLocations
    input_mode: str = "FastFile"
    distribution: str = "FullyReplicated"
    spot: bool = True
    checkpoints: bool = True
    checkpoint_local_path: str = "/opt/ml/checkpoints"
    max_runtime_seconds: int = 6 * 3600
    max_wait_seconds: int | None = 12 * 3600
    retry_attempts: int = 2
    entrypoint: tuple[str, ...] = ()
    processes_per_host: int = 1
    environment: Mapping[str, str] = field(default_factory=dict)
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    # job.workdir bundle: the stock DLC's toolkit fetches it (sagemaker_submit_directory) and runs
    # the script of `entrypoint` (then [python, script.py, --name, value, ...]) instead of an entrypoint.
    code_uri: str | None = None

    @property
    def volume_kms_allowed(self) -> bool:
        spec = catalog.lookup(self.instance_type)
        return not (spec and spec.instance_storage)


def ml_instance_type(instance_type: str) -> str:
    return instance_type if instance_type.startswith("ml.") else f"ml.{instance_type}"


def spec_from_config(
    cfg: ClusterConfig,
    *,
    locations: RunLocations,
    kms_key_arn: str,
    subnet_ids: Sequence[str] = (),
    security_group_ids: Sequence[str] = (),
    tags: Mapping[str, str] | None = None,
    code_uri: str | None = None,
) -> TrainingJobSpec:
    sm = cfg.sagemaker
    return TrainingJobSpec(
        image=cfg.job.image,
        instance_type=ml_instance_type(cfg.gpu.instance_types[0]),
        instance_count=cfg.job.nodes,
        volume_gib=cfg.gpu.root_volume_gib,
        kms_key_arn=kms_key_arn,
        locations=locations,
        input_mode=sm.input_mode,
        distribution=sm.distribution,
        spot=sm.spot,
        checkpoints=sm.checkpoints,
        checkpoint_local_path=sm.checkpoint_local_path,
        max_runtime_seconds=cfg.max_runtime_seconds,
        max_wait_seconds=cfg.max_wait_seconds if sm.spot else None,
        retry_attempts=sm.retry_attempts,
        entrypoint=tuple(cfg.job.command),
        processes_per_host=cfg.job.gpus_per_node,
        environment=dict(cfg.job.environment),
        hyperparameters=dict(sm.hyperparameters),
        subnet_ids=tuple(subnet_ids) if sm.vpc else (),
        security_group_ids=tuple(security_group_ids) if sm.vpc else (),
        tags=dict(tags or {}),
        code_uri=code_uri if cfg.job.workdir else None,
    )


def job_name(owner: str, stack: str, suffix: str) -> str:
    """`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`, owner and stack first so people can find their jobs."""
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", f"{owner}-{stack}").strip("-")
    suffix = re.sub(r"[^a-zA-Z0-9-]+", "-", suffix).strip("-")
    room = JOB_NAME_MAX - len(suffix) - 1
    return f"{base[:room].rstrip('-')}-{suffix}"


def content_hash(request: Mapping[str, Any]) -> str:
    body = {k: v for k, v in request.items() if k not in ("TrainingJobName", "RoleArn", "Tags")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]


def create_training_job_request(
    spec: TrainingJobSpec,
    *,
    job_name: str | None = None,
    role_arn: str | None = None,
    checkpoint_subdir: str | None = None,
) -> dict[str, Any]:
    """The CreateTrainingJob request. Name and role may be left out (the component sets them).

    `checkpoint_subdir` keeps the checkpoints of repeated jobs on one stack apart (one folder
    per job); a retried or spot-interrupted job keeps its name and so finds its own checkpoints.
    """
    loc = spec.locations
    checkpoint_uri = loc.checkpoint_uri + (f"{checkpoint_subdir.strip('/')}/" if checkpoint_subdir else "")
    environment = {**loc.environment(), **dict(spec.environment)}
    if spec.checkpoints:
        environment["TRAINSTACK_CHECKPOINT_DIR"] = spec.checkpoint_local_path
        environment["TRAINSTACK_CHECKPOINT_URI"] = checkpoint_uri
    algorithm: dict[str, Any] = {
        "TrainingImage": spec.image,
        "TrainingInputMode": spec.input_mode,
        "EnableSageMakerMetricsTimeSeries": True,
    }
    hyperparameters = dict(spec.hyperparameters)
    if spec.code_uri:
        environment[CODE_URI_ENV] = spec.code_uri
        # Arguments taken from the command win over sagemaker.hyperparameters of the same name.
        hyperparameters.update(
            sagemaker_hyperparameters(
                spec.entrypoint, spec.code_uri, distributed=spec.instance_count > 1 or spec.processes_per_host > 1
            )
        )
    elif spec.entrypoint:
        algorithm["ContainerEntrypoint"] = list(spec.entrypoint)
    resources: dict[str, Any] = {
        "InstanceType": spec.instance_type,
        "InstanceCount": spec.instance_count,
        "VolumeSizeInGB": spec.volume_gib,
    }
    if spec.volume_kms_allowed:
        # Instance types with local NVMe storage encrypt it in hardware and refuse a volume key.
        resources["VolumeKmsKeyId"] = spec.kms_key_arn
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": spec.max_runtime_seconds}
    if spec.spot:
        stopping["MaxWaitTimeInSeconds"] = spec.max_wait_seconds or 2 * spec.max_runtime_seconds
    request: dict[str, Any] = {
        "AlgorithmSpecification": algorithm,
        "InputDataConfig": [
            {
                "ChannelName": CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": loc.dataset_uri,
                        "S3DataDistributionType": spec.distribution,
                    }
                },
                "InputMode": spec.input_mode,
            }
        ],
        # SageMaker writes <path>/<job name>/output/model.tar.gz: inside this run's artifact prefix.
        "OutputDataConfig": {"S3OutputPath": loc.artifact_uri, "KmsKeyId": spec.kms_key_arn},
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spec.spot,
        "EnableInterContainerTrafficEncryption": spec.instance_count > 1,
        "RetryStrategy": {"MaximumRetryAttempts": spec.retry_attempts},
        "Environment": environment,
    }
    if hyperparameters:
        request["HyperParameters"] = hyperparameters
    if spec.checkpoints:
        request["CheckpointConfig"] = {"S3Uri": checkpoint_uri, "LocalPath": spec.checkpoint_local_path}
    if spec.subnet_ids:
        request["VpcConfig"] = {"Subnets": list(spec.subnet_ids), "SecurityGroupIds": list(spec.security_group_ids)}
    if spec.tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())]
    if job_name is not None:
        request["TrainingJobName"] = job_name
    if role_arn is not None:
        request["RoleArn"] = role_arn
    return request


def training_job_arn(region: str, account_id: str, name: str) -> str:
    """The job's ARN, known before the job exists (SageMaker lower-cases the name in ARNs).

    The stop schedule is built from it: `aws.sagemaker.TrainingJob` finishes creating only when the
    job has ended, so anything that waits for the resource's own `arn` would exist only afterwards.
    """
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:sagemaker:{region}:{account_id}:training-job/{name.lower()}"


# terraform-provider-aws internal/service/sagemaker/training_job.go: Create calls CreateTrainingJob and
# then waits (waitTrainingJobCreated) until the job is Completed or Stopped, 45 minutes by default;
# a job still running at the timeout fails `pulumi up` and is not recorded in the state. Delete stops an
# InProgress job, waits for Stopped, then DeleteTrainingJob. So the create timeout must outlast the job.
CREATE_MARGIN_SECONDS = 2 * 3600  # provisioning, image pull, model upload: not counted in the job's limits
JOB_LIFETIME_LIMIT_SECONDS = 30 * 24 * 3600  # SageMaker's cap on a training job's whole life
DELETE_TIMEOUT = "1h"  # StopTrainingJob gives the job up to 120 s; then SageMaker uploads and cleans up


def create_timeout(request: Mapping[str, Any]) -> str:
    """`timeouts.create` for a job: its stopping condition (all retries included) plus a margin, in hours."""
    stop = request["StoppingCondition"]
    # With a RetryStrategy, MaxRuntime/MaxWaitTime bound all attempts together (CreateTrainingJob docs).
    bound = stop.get("MaxWaitTimeInSeconds") or stop["MaxRuntimeInSeconds"]
    seconds = min(bound + CREATE_MARGIN_SECONDS, JOB_LIFETIME_LIMIT_SECONDS)
    return f"{-(-seconds // 3600)}h"


def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def to_pulumi_args(request: Mapping[str, Any]) -> dict[str, Any]:
    """CreateTrainingJob request -> keyword arguments of `aws.sagemaker.TrainingJob` (name/role/tags aside)."""
    alg, res, stop = request["AlgorithmSpecification"], request["ResourceConfig"], request["StoppingCondition"]
    args: dict[str, Any] = {
        "algorithm_specification": _drop_none(
            {
                "training_image": alg["TrainingImage"],
                "training_input_mode": alg["TrainingInputMode"],
                "container_entrypoints": alg.get("ContainerEntrypoint"),
                "enable_sagemaker_metrics_time_series": alg.get("EnableSageMakerMetricsTimeSeries"),
            }
        ),
        "input_data_configs": [
            {
                "channel_name": ch["ChannelName"],
                "input_mode": ch["InputMode"],
                "data_source": {
                    "s3_data_source": {
                        "s3_data_type": ch["DataSource"]["S3DataSource"]["S3DataType"],
                        "s3_uri": ch["DataSource"]["S3DataSource"]["S3Uri"],
                        "s3_data_distribution_type": ch["DataSource"]["S3DataSource"]["S3DataDistributionType"],
                    }
                },
            }
            for ch in request["InputDataConfig"]
        ],
        "output_data_config": _drop_none(
            {
                "s3_output_path": request["OutputDataConfig"]["S3OutputPath"],
                "kms_key_id": request["OutputDataConfig"].get("KmsKeyId"),
            }
        ),
        "resource_config": _drop_none(
            {
                "instance_type": res["InstanceType"],
                "instance_count": res["InstanceCount"],
                "volume_size_in_gb": res["VolumeSizeInGB"],
                "volume_kms_key_id": res.get("VolumeKmsKeyId"),
            }
        ),
        "stopping_condition": _drop_none(
            {
                "max_runtime_in_seconds": stop["MaxRuntimeInSeconds"],
                "max_wait_time_in_seconds": stop.get("MaxWaitTimeInSeconds"),
            }
        ),
        "enable_managed_spot_training": request["EnableManagedSpotTraining"],
        "enable_inter_container_traffic_encryption": request["EnableInterContainerTrafficEncryption"],
        "retry_strategy": {"maximum_retry_attempts": request["RetryStrategy"]["MaximumRetryAttempts"]},
        "environment": dict(request.get("Environment", {})),
        "hyper_parameters": dict(request.get("HyperParameters", {})) or None,
        "checkpoint_config": (
            {"s3_uri": request["CheckpointConfig"]["S3Uri"], "local_path": request["CheckpointConfig"]["LocalPath"]}
            if "CheckpointConfig" in request
            else None
        ),
        "vpc_config": (
            {"subnets": request["VpcConfig"]["Subnets"], "security_group_ids": request["VpcConfig"]["SecurityGroupIds"]}
            if "VpcConfig" in request
            else None
        ),
    }
    return _drop_none(args)
