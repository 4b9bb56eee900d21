"""Where a training run reads and writes in the data lake (pure, so every backend agrees).

dataset      s3://<raw|curated bucket>/<prefix>/                 read only
artifacts    s3://<artifacts bucket>/artifacts/<owner>/<stack>/   model/, logs/, markers, run.json
checkpoints  s3://<artifacts bucket>/checkpoints/<owner>/<stack>/ expired by the lake's lifecycle rule

A job started on a kept stack (`trainstack exec`) has its own prefixes under the stack's:
`artifacts/<owner>/<stack>/jobs/<job id>/` and `checkpoints/<owner>/<stack>/jobs/<job id>/`
(`job_locations`). They lie inside the prefixes the stack's training roles may already write, so a
job needs no new grant (no IAM change, no `pulumi up`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from trainstack.model.config import DatasetRef

# The data lake's layout: one bucket per zone; runs write under these prefixes of `artifacts`.
ZONES = ("raw", "curated", "artifacts")
ARTIFACTS_PREFIX = "artifacts/"
CHECKPOINTS_PREFIX = "checkpoints/"
JOBS_FOLDER = "jobs/"  # a job's prefixes under the stack's (artifacts and checkpoints)
RUN_RECORD = "run.json"  # under a run's (or a job's) artifact prefix: what happened, written by the driver or the job
RUN_RECORD_URI_ENV = "TRAINSTACK_RUN_RECORD_URI"  # the container writes its result there when the command ends
JOB_ID_ENV = "TRAINSTACK_JOB_ID"
# `<yyyymmddHHMMSS>-<4 hex>`: sortable, unique within a stack, short enough for every name it goes into
# (an Indexed Job's name, a SageMaker job name after `<owner>-<stack>-`, an ECS startedBy).
JOB_ID_RE = re.compile(r"^\d{14}-[0-9a-f]{4}$")


@dataclass(frozen=True)
class RunLocations:
    """Where a run reads its dataset and writes its artifacts and checkpoints in the data lake."""

    dataset_bucket: str
    dataset_bucket_arn: str
    dataset_prefix: str
    artifacts_bucket: str
    artifacts_bucket_arn: str
    artifact_prefix: str
    checkpoint_prefix: str

    @property
    def dataset_uri(self) -> str:
        return f"s3://{self.dataset_bucket}/{self.dataset_prefix}"

    @property
    def artifact_uri(self) -> str:
        return f"s3://{self.artifacts_bucket}/{self.artifact_prefix}"

    @property
    def model_uri(self) -> str:
        return f"{self.artifact_uri}model/"

    @property
    def checkpoint_uri(self) -> str:
        return f"s3://{self.artifacts_bucket}/{self.checkpoint_prefix}"

    @property
    def write_prefixes(self) -> tuple[str, str]:
        return (self.artifact_prefix, self.checkpoint_prefix)

    @property
    def run_record_uri(self) -> str:
        return f"{self.artifact_uri}{RUN_RECORD}"

    def environment(self) -> dict[str, str]:
        """What every training container is told, whatever the backend."""
        return {
            "TRAINSTACK_DATASET_URI": self.dataset_uri,
            "TRAINSTACK_ARTIFACT_URI": self.artifact_uri,
            "TRAINSTACK_MODEL_URI": self.model_uri,
            "TRAINSTACK_CHECKPOINT_URI": self.checkpoint_uri,
        }


def new_job_id(now: dt.datetime, suffix: str | None = None) -> str:
    """A job's id on its stack: the UTC start time to the second, then 4 hex digits: the millisecond (10 bits)
    and 6 random bits. Ids sort in start order to the millisecond (`attach` without `--job` takes the last one:
    two execs in one second, as a sweep script starts them, must not come out in random order), and two starts
    in one second share an id with the same odds as 16 random bits would give them (1 in 1000 x 64)."""
    import secrets  # here: a plan never draws a job id, and importing secrets costs more than the draw

    utc = now.astimezone(dt.timezone.utc)
    if suffix is None:
        suffix = f"{(utc.microsecond // 1000) << 6 | secrets.randbits(6):04x}"
    return f"{utc:%Y%m%d%H%M%S}-{suffix}"


def check_job_id(job_id: str) -> str:
    if not JOB_ID_RE.match(job_id):
        raise ValueError(
            f"job id {job_id!r}: not a trainstack job id (yyyymmddHHMMSS-xxxx, as `trainstack exec` prints and "
            "`trainstack ls` lists)"
        )
    return job_id


def job_locations(loc: RunLocations, job_id: str) -> RunLocations:
    """A job's own artifact and checkpoint prefixes under the stack's (see the module docstring)."""
    check_job_id(job_id)
    return replace(
        loc,
        artifact_prefix=f"{loc.artifact_prefix}{JOBS_FOLDER}{job_id}/",
        checkpoint_prefix=f"{loc.checkpoint_prefix}{JOBS_FOLDER}{job_id}/",
    )


def locations_from_uris(
    dataset_uri: str, artifact_uri: str, checkpoint_uri: str, partition: str = "aws"
) -> RunLocations:
    """A stack's locations back from its outputs (`datasetUri`, `artifactUri`, `checkpointUri`)."""

    def split(uri: str) -> tuple[str, str]:
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3:// URI: {uri!r}")
        bucket, _, key = uri[len("s3://") :].partition("/")
        return bucket, key

    data_bucket, data_prefix = split(dataset_uri)
    art_bucket, art_prefix = split(artifact_uri)
    ckpt_bucket, ckpt_prefix = split(checkpoint_uri)
    if ckpt_bucket != art_bucket:
        raise ValueError(f"checkpoints {checkpoint_uri} are not in the artifacts bucket {art_bucket}")
    return RunLocations(
        dataset_bucket=data_bucket,
        dataset_bucket_arn=f"arn:{partition}:s3:::{data_bucket}",
        dataset_prefix=data_prefix,
        artifacts_bucket=art_bucket,
        artifacts_bucket_arn=f"arn:{partition}:s3:::{art_bucket}",
        artifact_prefix=art_prefix,
        checkpoint_prefix=ckpt_prefix,
    )


def safe_segment(text: str) -> str:
    """A stack or owner name as an S3 key segment (no slashes, no surprises)."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)


def run_locations(
    buckets: Mapping[str, Mapping[str, str]], dataset: DatasetRef, owner: str, stack: str
) -> RunLocations:
    """`buckets` is the platform stack's `buckets` output: zone -> {name, arn}."""
    run = f"{safe_segment(owner)}/{safe_segment(stack)}/"
    try:
        data, artifacts = buckets[dataset.zone], buckets["artifacts"]
    except KeyError as exc:
        raise ValueError(
            f"the platform stack exports no {exc.args[0]!r} bucket; is it a trainstack platform?"
        ) from None
    return RunLocations(
        dataset_bucket=data["name"],
        dataset_bucket_arn=data["arn"],
        dataset_prefix=dataset.prefix,
        artifacts_bucket=artifacts["name"],
        artifacts_bucket_arn=artifacts["arn"],
        artifact_prefix=f"{ARTIFACTS_PREFIX}{run}",
        checkpoint_prefix=f"{CHECKPOINTS_PREFIX}{run}",
    )


def data_access_policy(loc: RunLocations, kms_key_arn: str, region: str) -> dict:
    """The least-privilege data lake policy of a run's training role."""
    from trainstack.model import iam_documents as docs

    return docs.training_data_access(
        dataset_bucket_arn=loc.dataset_bucket_arn,
        dataset_prefix=loc.dataset_prefix,
        artifacts_bucket_arn=loc.artifacts_bucket_arn,
        write_prefixes=loc.write_prefixes,
        kms_key_arn=kms_key_arn,
        region=region,
    )
