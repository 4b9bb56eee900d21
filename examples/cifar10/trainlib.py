"""Everything of the example that needs no torch: arguments, where things go, checkpoint naming,
choosing the checkpoint to resume from, S3 transfers (boto3, present in the AWS DLCs).

Kept apart from train.py so it can be tested without torch (tests/project/test_example_cifar10.py).
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

CKPT_RE = re.compile(r"(?:^|/)ckpt-(\d{9})\.pt$")
CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="trainstack example: a small CNN on CIFAR-10 (or synthetic data), DDP")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps-per-epoch", type=int, default=200, help="for synthetic data")
    p.add_argument("--batch-size", type=int, default=128, help="per process")
    p.add_argument("--lr", "--learning-rate", type=float, default=0.05)
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (0: none)")
    p.add_argument("--keep-checkpoints", type=int, default=3)
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="train on generated images; without it, CIFAR-10 must be under the dataset (prepare_data.py)",
    )
    p.add_argument("--fresh", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    for name in ("epochs", "steps_per_epoch", "batch_size", "keep_checkpoints"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.checkpoint_every < 0:
        p.error("--checkpoint-every must be 0 or more")
    return a


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def join_uri(prefix: str, name: str) -> str:
    return prefix if not name else (prefix if prefix.endswith("/") else prefix + "/") + name


@dataclass(frozen=True)
class Dist:
    """This process's place under torchrun (or alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_leader(self) -> bool:
        return self.rank == 0


def dist_from_env(env=None) -> Dist:
    env = os.environ if env is None else env
    return Dist(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


@dataclass(frozen=True)
class Places:
    """Where this run reads and writes, from the environment every trainstack backend sets."""

    dataset_uri: str | None
    dataset_dir: str | None  # SageMaker's mounted channel
    checkpoint_uri: str | None  # written with boto3 (ec2, ecs)
    checkpoint_dir: str | None  # written locally; SageMaker syncs it to S3
    model_uri: str | None  # uploaded with boto3 (ecs)
    model_dir: str | None  # the backend uploads it (SageMaker; the ec2 bootstrap on success only)


def places_from_env(env=None) -> Places:
    env = os.environ if env is None else env
    on_sagemaker = "SM_TRAINING_ENV" in env or "TRAINING_JOB_NAME" in env
    on_ec2 = "TRAINSTACK_NODE_RANK" in env and "TRAINSTACK_MODEL_URI" not in env
    ckpt_dir = env.get("TRAINSTACK_CHECKPOINT_DIR") if on_sagemaker else None
    return Places(
        dataset_uri=env.get("TRAINSTACK_DATASET_URI") or None,
        dataset_dir=env.get("SM_CHANNEL_TRAINING") or None,
        checkpoint_uri=None if ckpt_dir else (env.get("TRAINSTACK_CHECKPOINT_URI") or None),
        checkpoint_dir=ckpt_dir,
        # A backend that uploads the model directory itself wins: it uploads only a finished model.
        model_uri=None if (on_sagemaker or on_ec2) else (env.get("TRAINSTACK_MODEL_URI") or None),
        model_dir=env.get("SM_MODEL_DIR") or None,
    )


def checkpoint_name(step: int) -> str:
    return f"ckpt-{step:09d}.pt"


def checkpoint_step(name: str) -> int | None:
    m = CKPT_RE.search(name)
    return int(m.group(1)) if m else None


def newest_checkpoint(names) -> str | None:
    """The name with the highest step; other files (and half-named ones) are ignored."""
    steps = [(checkpoint_step(n), n) for n in names]
    steps = [(s, n) for s, n in steps if s is not None]
    return max(steps)[1] if steps else None


def stale_checkpoints(names, keep: int) -> list[str]:
    """What to delete so only the `keep` newest remain."""
    ranked = sorted((checkpoint_step(n), n) for n in names if checkpoint_step(n) is not None)
    return [n for _, n in ranked[:-keep]] if keep > 0 else [n for _, n in ranked]


def s3_client():
    import boto3

    return boto3.client("s3")


def list_checkpoints(places: Places, s3=None) -> list[str]:
    """Checkpoint locations (S3 keys as URIs, or local paths) that exist now."""
    if places.checkpoint_dir:
        d = Path(places.checkpoint_dir)
        return sorted(str(p) for p in d.glob("ckpt-*.pt")) if d.is_dir() else []
    if not places.checkpoint_uri:
        return []
    s3 = s3 or s3_client()
    bucket, prefix = split_s3_uri(join_uri(places.checkpoint_uri, ""))
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", [])]
    return sorted(out)


def resume_from(places: Places, fresh: bool, s3=None) -> str | None:
    """The checkpoint to resume from: the newest, unless --fresh."""
    return None if fresh else newest_checkpoint(list_checkpoints(places, s3))


def fetch(location: str, local_path: str, s3=None) -> str:
    """A checkpoint (S3 URI or local path) as a local file."""
    if not location.startswith("s3://"):
        return location
    (s3 or s3_client()).download_file(*split_s3_uri(location), local_path)
    return local_path


def save_checkpoint(local_file: str, step: int, places: Places, keep: int, s3=None) -> str | None:
    """Store a finished checkpoint file, then prune old ones. One PUT: a reader never sees half of it."""
    name = checkpoint_name(step)
    if places.checkpoint_dir:
        os.makedirs(places.checkpoint_dir, exist_ok=True)
        dest = os.path.join(places.checkpoint_dir, name)
        os.replace(local_file, dest)
        for old in stale_checkpoints(list_checkpoints(places), keep):
            os.remove(old)
        return dest
    if not places.checkpoint_uri:
        return None
    s3 = s3 or s3_client()
    dest = join_uri(places.checkpoint_uri, name)
    s3.upload_file(local_file, *split_s3_uri(dest))
    for old in stale_checkpoints(list_checkpoints(places, s3), keep):
        s3.delete_object(Bucket=split_s3_uri(old)[0], Key=split_s3_uri(old)[1])
    return dest


def publish_model(local_file: str, places: Places, s3=None) -> str | None:
    """The final model: into the backend's model directory, and to TRAINSTACK_MODEL_URI where no
    backend uploads that directory."""
    dest = None
    if places.model_dir:
        os.makedirs(places.model_dir, exist_ok=True)
        dest = os.path.join(places.model_dir, "model.pt")
        if os.path.abspath(local_file) != os.path.abspath(dest):
            with open(local_file, "rb") as src, open(dest, "wb") as out:
                out.write(src.read())
    if places.model_uri:
        dest = join_uri(places.model_uri, "model.pt")
        (s3 or s3_client()).upload_file(local_file, *split_s3_uri(dest))
    return dest


def no_data_message(places: Places) -> str:
    """Why the example stops when the dataset holds no CIFAR-10, and how to give it some."""
    where = places.dataset_dir or places.dataset_uri or "no dataset (TRAINSTACK_DATASET_URI is not set)"
    return (
        f"no CIFAR-10 python batches ({', '.join(CIFAR_BATCHES)}) under {where}. Fix: prepare them with "
        "`python prepare_data.py ./cifar10` (in examples/cifar10) and upload them with "
        "`trainstack upload ./cifar10 raw/cifar10/v1/`, or pass --synthetic to train on generated images"
    )


def find_cifar(places: Places, cache_dir: str, s3=None) -> str | None:
    """A folder holding CIFAR-10's python batches (data_batch_1..5, test_batch), or None.

    SageMaker mounts the dataset channel; elsewhere the batches are downloaded from the dataset URI."""

    def has_batches(d: Path) -> bool:
        return all((d / b).is_file() for b in CIFAR_BATCHES)

    if places.dataset_dir:
        for d in [Path(places.dataset_dir), *Path(places.dataset_dir).rglob("*")]:
            if d.is_dir() and has_batches(d):
                return str(d)
        return None
    if not places.dataset_uri:
        return None
    s3 = s3 or s3_client()
    bucket, prefix = split_s3_uri(join_uri(places.dataset_uri, ""))
    keys = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            base = o["Key"].rsplit("/", 1)[-1]
            if base in CIFAR_BATCHES:
                keys[base] = o["Key"]
    if set(keys) != set(CIFAR_BATCHES):
        return None
    os.makedirs(cache_dir, exist_ok=True)
    for base, key in keys.items():
        target = os.path.join(cache_dir, base)
        if not os.path.exists(target):
            s3.download_file(bucket, key, target)
    return cache_dir
