"""Where a training run reads and writes in the data lake (pure, so every backend agrees).

dataset      s3://<raw|curated bucket>/<prefix>/                 read only
artifacts    s3://<artifacts bucket>/artifacts/<owner>/<stack>/   model/, logs/, markers
checkpoints  s3://<artifacts bucket>/checkpoints/<owner>/<stack>/ expired by the lake's lifecycle rule
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from trainstack.model.config import DatasetRef

# The data lake's layout: one bucket per zone; runs write under these prefixes of `artifacts`.
ZONES = ("raw", "curated", "artifacts")
ARTIFACTS_PREFIX = "artifacts/"
CHECKPOINTS_PREFIX = "checkpoints/"


@dataclass(frozen=True)
class RunLocations:
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

    def environment(self) -> dict[str, str]:
        """What every training container is told, whatever the backend."""
        return {
            "TRAINSTACK_DATASET_URI": self.dataset_uri,
            "TRAINSTACK_ARTIFACT_URI": self.artifact_uri,
            "TRAINSTACK_MODEL_URI": self.model_uri,
            "TRAINSTACK_CHECKPOINT_URI": self.checkpoint_uri,
        }


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
