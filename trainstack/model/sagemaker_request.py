"""The one builder of SageMaker CreateTrainingJob requests.

`create_training_job_request` produces the request exactly as boto3 / the SageMaker API take it.
The job is not a Pulumi resource: the `SageMakerTrainingJob` component builds the stack's request
(name, role, everything) and the stack exports it (`trainingJobRequest`); `trainstack run`, `trainstack
exec`, `trainstack sagemaker start` (trainstack/run/sagemaker_jobs.py) or plain `aws sagemaker
create-training-job --cli-input-json` send it. So the job is always created, followed and stopped by
something that owns it, never by a provider wait that can drop it from the state (see
docs/backends.md, "sagemaker").

`request_problems` is the guard every path shares (the policy pack's `sagemaker-spot-has-checkpoints`
on the exported request, and the starter before CreateTrainingJob); `clamp_to_expiry` keeps a job that
the stack's teardown schedule cannot stop by name from outliving the stack.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainstack.model import catalog
from trainstack.model.code_delivery import CODE_URI_ENV, sagemaker_environment, sagemaker_hyperparameters
from trainstack.model.config import ClusterConfig
from trainstack.model.run_locations import RUN_RECORD_URI_ENV, RunLocations

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
        # The toolkit runs the bundle's entry file, which runs the script and, on rank 0, writes the job's
        # result into its run.json when it ends (code_delivery.SAGEMAKER_ENTRY_SCRIPT): a job nobody follows
        # (`--detach`) still records its end.
        environment.update(sagemaker_environment(spec.entrypoint))
        environment[RUN_RECORD_URI_ENV] = loc.run_record_uri
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

    The stop schedule's policy names it: the job is created after `up` (by `trainstack run`), by its
    deterministic name, so the schedule exists before the job does and can stop it at expiry.
    """
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:sagemaker:{region}:{account_id}:training-job/{name.lower()}"


def checkpoint_problem(request: Mapping[str, Any]) -> str | None:
    """A managed spot job without checkpoints restarts from zero at every interruption."""
    if request.get("EnableManagedSpotTraining") and not (request.get("CheckpointConfig") or {}).get("S3Uri"):
        name = request.get("TrainingJobName", "the job")
        return (
            f"spot training job {name} writes no checkpoints: every spot interruption restarts it from zero. "
            "Fix: CheckpointConfig.S3Uri under the data lake's checkpoints/ prefix (trainstack:sagemaker.checkpoints: "
            "true)."
        )
    return None


def request_problems(request: Mapping[str, Any]) -> list[str]:
    """What makes a CreateTrainingJob request unfit to run (empty: fit), each with its fix."""
    problems = [p for p in (checkpoint_problem(request),) if p]
    stop = request.get("StoppingCondition") or {}
    wait, runtime = stop.get("MaxWaitTimeInSeconds"), stop.get("MaxRuntimeInSeconds")
    if (
        request.get("EnableManagedSpotTraining")
        and isinstance(wait, int)
        and isinstance(runtime, int)
        and wait < runtime
    ):
        problems.append(
            f"StoppingCondition.MaxWaitTimeInSeconds = {wait} is less than MaxRuntimeInSeconds = {runtime}: SageMaker "
            "refuses the job. Fix: trainstack:sagemaker.maxWaitHours >= job.maxRuntimeHours"
        )
    return problems


def clamp_to_expiry(request: Mapping[str, Any], seconds_left: int) -> dict[str, Any]:
    """The request with its stopping condition cut to the stack's remaining life.

    For jobs the stack's teardown schedule cannot stop by name (`trainstack exec`, `sagemaker start`):
    SageMaker's own limits end them by the stack's expiry. MaxRuntime and MaxWait (spot) bound all
    attempts together when a RetryStrategy is set (CreateTrainingJob API reference)."""
    if seconds_left < 1:
        raise ValueError("the stack has expired: no time left for a job")
    out = dict(request)
    stop = dict(out["StoppingCondition"])
    stop["MaxRuntimeInSeconds"] = min(int(stop["MaxRuntimeInSeconds"]), seconds_left)
    if "MaxWaitTimeInSeconds" in stop:
        stop["MaxWaitTimeInSeconds"] = max(
            stop["MaxRuntimeInSeconds"], min(int(stop["MaxWaitTimeInSeconds"]), seconds_left)
        )
    out["StoppingCondition"] = stop
    return out
