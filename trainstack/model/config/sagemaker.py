"""`trainstack:sagemaker`: the sagemaker backend's own section, and what only a SageMaker training job asks.

`check` is the sagemaker backend's config hook (named by `trainstack/backends/sagemaker.py`). What SageMaker
shares with other backends is asked of its capabilities in parse.py instead: one instance type per job
(`max_instance_types`), `ml.*` names priced from the SageMaker table (`sagemaker_instance_names`), no
placement group (`placement_group`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainstack.model.config.settings import Type, setting, settings_of

if TYPE_CHECKING:
    from trainstack.model.config.parse import ClusterDraft

# SageMaker: MaxRuntimeInSeconds <= 28 days.
MAX_RUNTIME_HOURS = 28 * 24
INPUT_MODES = ("File", "FastFile", "Pipe")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")


@dataclass(frozen=True, kw_only=True)
class SageMakerConfig:
    """A SageMaker cluster's own settings (trainstack:sagemaker)."""

    spot: bool = setting("spot", Type.BOOL, "managed spot training", default=True)
    max_wait_hours: float | None = setting(
        "maxWaitHours",
        Type.NUMBER,
        "how long a spot job may wait for capacity plus run (MaxWaitTimeInSeconds); spot only",
        fix=f"use hours at least job.maxRuntimeHours and at most {MAX_RUNTIME_HOURS}",
        lo=0,
        hi=MAX_RUNTIME_HOURS,
        exclusive_lo=True,
        allowed="at least `job.maxRuntimeHours`",
        default_doc=f"2 × `job.maxRuntimeHours`, at most {MAX_RUNTIME_HOURS}",
    )
    input_mode: str = setting(
        "inputMode",
        Type.CHOICE,
        "how the dataset reaches the container; `Pipe` only for one node with one GPU",
        values=INPUT_MODES,
        default="FastFile",
    )
    distribution: str = setting(
        "distribution", Type.CHOICE, "how nodes split the dataset", values=DISTRIBUTIONS, default="FullyReplicated"
    )
    checkpoints: bool = setting(
        "checkpoints",
        Type.BOOL,
        "sync the checkpoint folder to the run's checkpoint prefix (must stay on with spot)",
        default=True,
    )
    checkpoint_local_path: str = setting(
        "checkpointLocalPath",
        Type.STRING,
        "the folder in the container that is synced to the checkpoint prefix",
        fix="use an absolute path",
        pattern=re.compile(r"^/[\w./-]*$"),
        what="an absolute path",
        default="/opt/ml/checkpoints",
    )
    retry_attempts: int = setting(
        "retryAttempts",
        Type.INT,
        "retries on capacity and internal errors",
        fix="use 1-30 attempts",
        lo=1,
        hi=30,
        default=2,
    )
    vpc: bool = setting(
        "vpc",
        Type.BOOL,
        "run in the platform's subnets (needs a NAT gateway or ECR endpoints)",
        default=False,
    )
    hyperparameters: Mapping[str, str] = setting(
        "hyperparameters",
        Type.MAP,
        "passed to the job",
        fix="use name: value pairs",
        allowed="name: value",
        default={},
    )


def check(draft: ClusterDraft) -> dict[str, Any]:
    """The sagemaker backend's config hook."""
    s = draft.section("sagemaker")
    cfg = SageMakerConfig(**{name: s.read(setting) for name, setting in settings_of(SageMakerConfig)})
    job, region = draft.job, draft.env.region
    max_runtime = job.max_runtime_hours
    if cfg.max_wait_hours is not None and not cfg.spot:
        s.fail(
            "maxWaitHours", cfg.max_wait_hours, "applies to managed spot training only", "remove it, or set spot: true"
        )
    if cfg.spot and cfg.max_wait_hours is not None and cfg.max_wait_hours < max_runtime:
        s.fail(
            "maxWaitHours",
            cfg.max_wait_hours,
            f"is less than job.maxRuntimeHours ({max_runtime:g}); SageMaker requires MaxWaitTime >= MaxRuntime",
            f"set sagemaker.maxWaitHours to at least {max_runtime:g}",
        )
    if cfg.spot and not cfg.checkpoints:
        s.fail(
            "checkpoints",
            False,
            "is off while spot is on: an interrupted spot job would restart from scratch",
            "set sagemaker.checkpoints: true, or sagemaker.spot: false",
        )
    if cfg.input_mode == "Pipe" and (job.nodes > 1 or job.gpus_per_node > 1):
        s.fail(
            "inputMode",
            "Pipe",
            "cannot feed several training processes: a Pipe channel is one FIFO per instance that only one "
            "reader can consume, and the PyTorch containers do not read it",
            "use inputMode FastFile (streams from S3; add distribution: ShardedByS3Key to split the data "
            "across nodes), or File",
        )

    from trainstack.model.config.table import ECR_RE, IMAGE_RE

    m = IMAGE_RE.match(job.image) if job.image else None
    registry = (m.group("registry") if m else None) or ""
    ecr = ECR_RE.match(registry)
    if job.image and m and not ecr:
        draft.fail(
            "trainstack:job.image",
            job.image,
            "is not an Amazon ECR image; SageMaker training pulls images from ECR only",
            "push the image to ECR, or use an AWS Deep Learning Container such as "
            f"763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker",
        )
    elif ecr and ecr.group("region") != region:
        draft.fail(
            "trainstack:job.image",
            job.image,
            f"is in ECR region {ecr.group('region')}, but the job runs in {region}; SageMaker "
            "pulls training images from its own region only",
            f"use the {region} copy of the image",
        )

    if draft.job_reader.has("workdir") and job.command:
        from trainstack.model.code_delivery import sagemaker_entry

        try:
            sagemaker_entry(job.command)
        except ValueError as exc:
            draft.fail(
                "trainstack:job.command",
                list(job.command),
                f"cannot be run by SageMaker's training toolkit: {exc}",
                "write it as [python, script.py, --name, value, ...] (the toolkit passes hyperparameters "
                "as --name value pairs), or drop job.workdir and bake the code into your image",
            )
    return {"sagemaker": cfg}
