"""CodeBundle: a run's `job.workdir`, packed and uploaded where every backend can fetch it.

The program packs the folder into a deterministic tar.gz named by its sha256 (see
`trainstack/model/code_delivery.py` for why tar.gz and not a `FileArchive`), caches it under
`.trainstack/build/`, and uploads it as one S3 object under the run's artifact prefix:
`artifacts/<owner>/<stack>/code/<sha256>.tar.gz`. Changed code is a new key (the object is
replaced); `pulumi destroy` of the cluster stack deletes it. The training roles can already read
it: it lies inside their artifact prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from trainstack.model.code_delivery import build_bundle, code_key

DEFAULT_CACHE = Path(".trainstack") / "build"


@dataclass(frozen=True)
class CodeBundleArgs:
    # The local folder to ship (packed deterministically: the same files give the same key).
    workdir: str
    # The bucket the bundle goes to (e.g. DataLake.buckets["artifacts"].bucket).
    bucket: pulumi.Input[str]
    # The key prefix, e.g. `artifacts/<owner>/<stack>/`: the bundle is `<prefix>code/<sha256>.tar.gz`.
    artifact_prefix: pulumi.Input[str]
    # Where packed bundles are cached between runs.
    cache_dir: str = str(DEFAULT_CACHE)
    # Tags on the S3 object (S3 takes at most 10).
    tags: Mapping[str, str] = field(default_factory=dict)
    # The backend that runs it: a sagemaker bundle carries the entry file the toolkit runs (code_delivery).
    backend: str | None = None

    def __post_init__(self):
        if not self.workdir:
            raise ValueError("workdir is empty: name the folder to ship")
        if len(self.tags) > 10:
            raise ValueError(f"tags: {len(self.tags)} given, but an S3 object takes at most 10")


class CodeBundle(pulumi.ComponentResource):
    bucket_object: aws.s3.BucketObject
    sha256: str
    uri: pulumi.Output[str]

    def __init__(self, name: str, args: CodeBundleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:code:CodeBundle", name, None, opts)
        bundle = build_bundle(args.workdir, args.cache_dir, backend=args.backend)
        self.sha256 = bundle.sha256
        key = pulumi.Output.from_input(args.artifact_prefix).apply(lambda p: code_key(p, bundle.sha256))
        # aws.s3.BucketObject, not BucketObjectv2: in pulumi-aws 7.51.1 the v2 class carries an alias to
        # `aws:s3/BucketObject:BucketObject` (the compatibility name); both manage an aws_s3_object.
        # No SSE arguments: the bucket's default SSE-KMS applies, which its policy accepts. Tags: the
        # standard set (6 keys) stays within S3's 10 tags per object.
        self.bucket_object = aws.s3.BucketObject(
            f"{name}-object",
            bucket=args.bucket,
            key=key,
            source=pulumi.FileAsset(str(bundle.path.resolve())),
            content_type="application/gzip",
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.uri = pulumi.Output.concat("s3://", self.bucket_object.bucket, "/", self.bucket_object.key)
        self.register_outputs({"uri": self.uri, "sha256": bundle.sha256})
