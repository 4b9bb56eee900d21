"""DataLake: the long-lived S3 data lake every training cluster reads from and writes to.

One bucket per zone — raw (datasets as uploaded), curated (prepared datasets), artifacts
(`artifacts/<owner>/<stack>/` for models and logs, `checkpoints/<owner>/<stack>/`) — plus an
access-log bucket. Versioned, SSE-KMS with bucket keys, public access blocked, ACLs disabled,
TLS only, lifecycle rules that keep storage bills bounded, server access logging. Buckets and
the key are protected from `pulumi destroy` unless `protect=False` (throwaway platforms only),
and no bucket is ever force-destroyed: deleting a bucket that holds data fails instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from trainstack.model import iam_documents as docs
from trainstack.model.run_locations import CHECKPOINTS_PREFIX, ZONES
from trainstack.model.tags import with_name

# Lifecycle rules for every object: `{"prefix": ""}`, not `{}` (which the provider deprecates).
EVERY_OBJECT = {"prefix": ""}


@dataclass(frozen=True)
class DataLakeArgs:
    """The data lake's settings. Every field has a secure, cheap default: `DataLakeArgs()` is a valid lake."""

    # Days a checkpoint under `checkpoints/` of the artifacts bucket lives before S3 expires it.
    checkpoint_retention_days: int = 14
    # Days a replaced or deleted object version is kept (versioning is always on) before it is expired.
    noncurrent_version_days: int = 30
    # Days an unfinished multipart upload may take before S3 aborts it (and stops billing its parts).
    multipart_abort_days: int = 7
    # Days the access-log bucket keeps server access logs.
    access_log_retention_days: int = 365
    # A Glue Data Catalog database over the curated zone.
    glue_database: bool = True
    # Protect the buckets, the key and the catalog from `pulumi destroy` (False only for throwaway lakes).
    protect: bool = True
    # The catalog database's name (lower-case letters, digits, underscores); None: `trainstack_<name>`.
    glue_database_name: str | None = None
    # Set: CloudWatch Logs of this region may use the lake's key (encrypted log groups of training runs).
    region: str | None = None
    # The log bucket accepts VPC flow log delivery under `vpc-flow-logs/` (needs `region`).
    flow_logs: bool = False
    # Tags on every resource (a `Name` is added where AWS shows one).
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        for name in (
            "checkpoint_retention_days",
            "noncurrent_version_days",
            "multipart_abort_days",
            "access_log_retention_days",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r}: must be a whole number of days, at least 1")
        for name in ("glue_database", "protect", "flow_logs"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} = {getattr(self, name)!r}: must be True or False")
        if self.flow_logs and not self.region:
            raise ValueError("flow_logs needs region (flow log delivery is scoped to the region's log service)")
        if self.glue_database_name is not None and not re.fullmatch(r"[a-z0-9_]{1,255}", self.glue_database_name):
            raise ValueError(
                f"glue_database_name = {self.glue_database_name!r}: must be 1-255 lower-case letters, digits "
                "and underscores"
            )


class DataLake(pulumi.ComponentResource):
    kms_key: aws.kms.Key
    kms_alias: aws.kms.Alias
    buckets: dict[str, aws.s3.Bucket]
    log_bucket: aws.s3.Bucket
    glue_database: aws.glue.CatalogDatabase | None

    def __init__(self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:storage:DataLake", name, None, opts)
        self._name = name
        self._args = args
        identity = aws.get_caller_identity()
        self._account_id = identity.account_id

        self.kms_key = aws.kms.Key(
            f"{name}-key",
            description="trainstack data lake: SSE-KMS for raw, curated and artifacts",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(docs.kms_key_policy(self._account_id, region=args.region)),
            tags=with_name(args.tags, f"{name}-key"),
            opts=self._stateful(),
        )
        self.kms_alias = aws.kms.Alias(
            f"{name}-key-alias",
            name_prefix="alias/trainstack-datalake-",
            target_key_id=self.kms_key.key_id,
            opts=self._child(),
        )

        self.log_bucket = self._bucket("logs")
        self._secure(self.log_bucket, "logs", kms=False)
        self.buckets = {}
        for zone in ZONES:
            bucket = self._bucket(zone)
            self._secure(bucket, zone, kms=True)
            self._lifecycle(bucket, zone)
            aws.s3.BucketLogging(
                f"{name}-{zone}-logging",
                bucket=bucket.id,
                target_bucket=self.log_bucket.id,
                target_prefix=f"{zone}/",
                opts=self._child(),
            )
            self.buckets[zone] = bucket
        self._log_bucket_policy_and_lifecycle()

        self.glue_database = None
        if args.glue_database:
            self.glue_database = aws.glue.CatalogDatabase(
                f"{name}-catalog",
                name=args.glue_database_name or f"trainstack_{re.sub(r'[^a-z0-9]', '_', name.lower())}",
                description="trainstack data lake catalog (curated zone)",
                location_uri=pulumi.Output.concat("s3://", self.buckets["curated"].bucket, "/"),
                tags=args.tags,
                opts=self._stateful(),
            )

        self.register_outputs(
            {
                "kmsKeyArn": self.kms_key.arn,
                **{f"{zone}Bucket": b.bucket for zone, b in self.buckets.items()},
                "logBucket": self.log_bucket.bucket,
            }
        )

    # -- helpers ---------------------------------------------------------------------------------
    def _child(self, **kw) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kw)

    def _stateful(self) -> pulumi.ResourceOptions:
        # Protected resources make `pulumi destroy` of the platform stop before it deletes anything.
        return self._child(protect=self._args.protect)

    def _bucket(self, zone: str) -> aws.s3.Bucket:
        return aws.s3.Bucket(
            f"{self._name}-{zone}",
            force_destroy=False,
            tags=with_name({**self._args.tags, "trainstack:zone": zone}, f"{self._name}-{zone}"),
            opts=self._stateful(),
        )

    def _secure(self, bucket: aws.s3.Bucket, zone: str, *, kms: bool) -> None:
        n = f"{self._name}-{zone}"
        aws.s3.BucketPublicAccessBlock(
            f"{n}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child(),
        )
        aws.s3.BucketOwnershipControls(
            f"{n}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=self._child()
        )
        aws.s3.BucketVersioning(
            f"{n}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=self._child()
        )
        if kms:
            default = {"sse_algorithm": "aws:kms", "kms_master_key_id": self.kms_key.arn}
        else:
            # S3 server access logging cannot deliver to SSE-KMS buckets; SSE-S3 is what it supports.
            default = {"sse_algorithm": "AES256"}
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{n}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": default,
                    "bucket_key_enabled": kms,
                    "blocked_encryption_types": ["SSE-C"],
                }
            ],
            opts=self._child(),
        )
        if kms:
            policy = pulumi.Output.all(bucket.arn, self.kms_key.arn).apply(
                lambda a: json.dumps(docs.data_bucket_policy(a[0], a[1]))
            )
            aws.s3.BucketPolicy(f"{n}-policy", bucket=bucket.id, policy=policy, opts=self._child())

    def _lifecycle(self, bucket: aws.s3.Bucket, zone: str) -> None:
        a = self._args
        rules: list[dict] = [
            {
                "id": "abort-incomplete-multipart-uploads",
                "status": "Enabled",
                "filter": EVERY_OBJECT,
                "abort_incomplete_multipart_upload": {"days_after_initiation": a.multipart_abort_days},
            },
            {
                "id": "expire-noncurrent-versions",
                "status": "Enabled",
                "filter": EVERY_OBJECT,
                "noncurrent_version_expiration": {"noncurrent_days": a.noncurrent_version_days},
                "expiration": {"expired_object_delete_marker": True},
            },
        ]
        if zone == "raw":
            # Raw datasets are read hard for a while, then rarely: let S3 move cold objects for us.
            rules.append(
                {
                    "id": "raw-intelligent-tiering",
                    "status": "Enabled",
                    "filter": EVERY_OBJECT,
                    "transitions": [{"days": 0, "storage_class": "INTELLIGENT_TIERING"}],
                }
            )
        if zone == "artifacts":
            rules.append(
                {
                    "id": "expire-checkpoints",
                    "status": "Enabled",
                    "filter": {"prefix": CHECKPOINTS_PREFIX},
                    "expiration": {"days": a.checkpoint_retention_days},
                }
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{self._name}-{zone}-lifecycle", bucket=bucket.id, rules=rules, opts=self._child()
        )

    def _log_bucket_policy_and_lifecycle(self) -> None:
        n = f"{self._name}-logs"
        sources = [b.arn for b in self.buckets.values()]
        policy = pulumi.Output.all(self.log_bucket.arn, *sources).apply(
            lambda a: json.dumps(
                docs.log_bucket_policy(
                    a[0], a[1:], self._account_id, self._args.region if self._args.flow_logs else None
                )
            )
        )
        aws.s3.BucketPolicy(f"{n}-policy", bucket=self.log_bucket.id, policy=policy, opts=self._child())
        aws.s3.BucketLifecycleConfiguration(
            f"{n}-lifecycle",
            bucket=self.log_bucket.id,
            rules=[
                {
                    "id": "abort-incomplete-multipart-uploads",
                    "status": "Enabled",
                    "filter": EVERY_OBJECT,
                    "abort_incomplete_multipart_upload": {"days_after_initiation": self._args.multipart_abort_days},
                },
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": EVERY_OBJECT,
                    "expiration": {"days": self._args.access_log_retention_days},
                    "noncurrent_version_expiration": {"noncurrent_days": 1},
                },
            ],
            opts=self._child(),
        )
