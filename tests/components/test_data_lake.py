"""DataLake under the mock engine: encrypted, private, TLS-only, lifecycled, protected."""

from __future__ import annotations

import pytest

from tests.helpers import policy_of, statements
from tests.iam.engine import ACCOUNT, ALLOWED, EXPLICIT_DENY, Request, evaluate, s3_context
from trainstack.components.data_lake import DataLake, DataLakeArgs
from trainstack.model.run_locations import ZONES

TAGS = {"trainstack:owner": "platform"}


@pytest.fixture(scope="module")
def lake(run_program):
    return run_program(
        lambda: DataLake("lake", DataLakeArgs(checkpoint_retention_days=9, noncurrent_version_days=21, tags=TAGS))
    )


@pytest.fixture(scope="module")
def throwaway_lake(run_program):
    return run_program(lambda: DataLake("lake", DataLakeArgs(protect=False, glue_database=False, tags=TAGS)))


def by_bucket(run, type_):
    """Child resources of `type_`, keyed by zone (logical names are lake-<zone>-...)."""
    return {r.name.split("-")[1]: r for r in run.of_type(type_)}


def test_four_buckets_never_force_destroyed(lake):
    buckets = by_bucket(lake, "aws:s3/bucket:Bucket")
    assert sorted(buckets) == sorted([*ZONES, "logs"])
    assert all(b.inputs.get("forceDestroy") is False for b in buckets.values())


def test_data_buckets_use_the_lake_kms_key_with_bucket_keys(lake):
    key = lake.one("aws:kms/key:Key")
    enc = by_bucket(lake, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    for zone in ZONES:
        rule = enc[zone].inputs["rules"][0]
        assert rule["applyServerSideEncryptionByDefault"] == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": key.state["arn"],
        }
        assert rule["bucketKeyEnabled"] is True
        assert rule["blockedEncryptionTypes"] == ["SSE-C"]
    # S3 server access logs can only be delivered to SSE-S3 buckets.
    assert enc["logs"].inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"


def test_kms_key_rotates_and_has_an_alias(lake):
    key = lake.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30
    alias = lake.one("aws:kms/alias:Alias")
    assert alias.inputs["namePrefix"].startswith("alias/") and alias.inputs["targetKeyId"] == key.state["keyId"]


def test_all_four_public_access_block_flags_on_every_bucket(lake):
    blocks = by_bucket(lake, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert sorted(blocks) == sorted([*ZONES, "logs"])
    for block in blocks.values():
        assert all(
            block.inputs[f] is True
            for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )


def test_acls_disabled_and_versioning_on_everywhere(lake):
    for r in lake.of_type("aws:s3/bucketOwnershipControls:BucketOwnershipControls"):
        assert r.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    versioning = by_bucket(lake, "aws:s3/bucketVersioning:BucketVersioning")
    assert len(versioning) == 4
    assert all(v.inputs["versioningConfiguration"]["status"] == "Enabled" for v in versioning.values())


def test_every_bucket_policy_denies_non_tls(lake):
    buckets = by_bucket(lake, "aws:s3/bucket:Bucket")
    policies = by_bucket(lake, "aws:s3/bucketPolicy:BucketPolicy")
    assert sorted(policies) == sorted([*ZONES, "logs"])
    for zone, policy in policies.items():
        arn = buckets[zone].state["arn"]
        deny = [
            s
            for s in statements(policy_of(policy))
            if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert len(deny) == 1 and deny[0]["Principal"] == "*" and deny[0]["Action"] == "s3:*"
        assert sorted(deny[0]["Resource"]) == sorted([arn, f"{arn}/*"])


def test_data_buckets_refuse_uploads_not_encrypted_with_the_lake_key(lake):
    """Decided by the IAM engine (tests/iam/engine.py) over each planned bucket policy: a plain PUT (the
    bucket default applies the lake key) and the lake key by ARN pass; any other encryption is refused."""
    key_arn = lake.one("aws:kms/key:Key").state["arn"]
    other_key = key_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    writer = f"arn:aws:iam::{ACCOUNT}:role/writer"
    sse = "x-amz-server-side-encryption"
    headers = {
        "none": ({}, ALLOWED),
        "lake key": ({sse: "aws:kms", f"{sse}-aws-kms-key-id": key_arn}, ALLOWED),
        "aws:kms, no key id (aws/s3)": ({sse: "aws:kms"}, EXPLICIT_DENY),
        "another key": ({sse: "aws:kms", f"{sse}-aws-kms-key-id": other_key}, EXPLICIT_DENY),
        "SSE-S3": ({sse: "AES256"}, EXPLICIT_DENY),
        "DSSE-KMS, lake key": ({sse: "aws:kms:dsse", f"{sse}-aws-kms-key-id": key_arn}, EXPLICIT_DENY),
    }
    buckets = by_bucket(lake, "aws:s3/bucket:Bucket")
    requests, expected = [], {}
    for zone, policy in by_bucket(lake, "aws:s3/bucketPolicy:BucketPolicy").items():
        if zone == "logs":
            sids = {s.get("Sid") for s in statements(policy_of(policy))}
            assert not sids & {"DenyEncryptionOtherThanKms", "DenyOtherKmsKeys", "DenyKmsWithoutTheLakeKey"}
            continue  # S3 access logs arrive SSE-S3: the log bucket must not refuse them
        arn = buckets[zone].state["arn"]
        grant = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{arn}/*"}],
        }
        for what, (h, expect) in headers.items():
            label = f"{zone}: {what}"
            requests.append(
                Request(label, writer, "s3:PutObject", f"{arn}/k", s3_context(h), (grant,), policy_of(policy))
            )
            expected[label] = expect
    assert len(expected) == len(ZONES) * len(headers)
    assert evaluate(requests) == expected


def test_log_bucket_accepts_only_the_lakes_access_logs(lake):
    buckets = by_bucket(lake, "aws:s3/bucket:Bucket")
    policy = policy_of(by_bucket(lake, "aws:s3/bucketPolicy:BucketPolicy")["logs"])
    allow = next(s for s in statements(policy) if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert sorted(allow["Condition"]["ArnLike"]["aws:SourceArn"]) == sorted(buckets[z].state["arn"] for z in ZONES)
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_server_access_logging_into_the_log_bucket(lake):
    log_bucket = by_bucket(lake, "aws:s3/bucket:Bucket")["logs"]
    logging_ = by_bucket(lake, "aws:s3/bucketLogging:BucketLogging")
    assert sorted(logging_) == sorted(ZONES)
    for zone, r in logging_.items():
        assert r.inputs["targetBucket"] == log_bucket.id and r.inputs["targetPrefix"] == f"{zone}/"


def rules_of(run, zone):
    return {
        r["id"]: r
        for r in by_bucket(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[zone].inputs[
            "rules"
        ]
    }


def test_lifecycle_rules(lake):
    for zone in ZONES:
        rules = rules_of(lake, zone)
        assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
            "daysAfterInitiation": 7
        }
        assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 21
        assert all(r["status"] == "Enabled" for r in rules.values())
    assert rules_of(lake, "raw")["raw-intelligent-tiering"]["transitions"] == [
        {"days": 0, "storageClass": "INTELLIGENT_TIERING"}
    ]
    checkpoints = rules_of(lake, "artifacts")["expire-checkpoints"]
    assert checkpoints["filter"] == {"prefix": "checkpoints/"} and checkpoints["expiration"]["days"] == 9
    assert "expire-checkpoints" not in rules_of(lake, "raw")  # datasets never expire


def test_stateful_resources_are_protected_by_default(lake):
    protected = {r.type for r in lake.resources if r.protect}
    assert protected == {"aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:glue/catalogDatabase:CatalogDatabase"}
    assert all(b.protect for b in lake.of_type("aws:s3/bucket:Bucket"))


def test_protect_false_is_the_explicit_opt_out(throwaway_lake):
    assert not any(r.protect for r in throwaway_lake.resources)
    assert throwaway_lake.of_type("aws:glue/catalogDatabase:CatalogDatabase") == []
    # Even a throwaway lake never force-deletes objects: destroy fails on a non-empty bucket instead.
    assert all(b.inputs["forceDestroy"] is False for b in throwaway_lake.of_type("aws:s3/bucket:Bucket"))


def test_glue_database_points_at_the_curated_zone(lake):
    db = lake.one("aws:glue/catalogDatabase:CatalogDatabase")
    curated = by_bucket(lake, "aws:s3/bucket:Bucket")["curated"]
    assert db.inputs["locationUri"] == f"s3://{curated.state['bucket']}/"
    assert db.inputs["name"] == "trainstack_lake"


def test_invalid_args_are_refused():
    with pytest.raises(ValueError, match="checkpoint_retention_days"):
        DataLakeArgs(checkpoint_retention_days=0)


def test_every_object_rules_filter_on_an_empty_prefix_not_an_empty_filter(lake):
    """An empty `filter: {}` draws a provider deprecation; `{"prefix": ""}` means the same to S3."""
    for zone in (*ZONES, "logs"):
        for rule in rules_of(lake, zone).values():
            assert rule["filter"] and "prefix" in rule["filter"], (zone, rule["id"])


def test_key_admits_cloudwatch_logs_only_for_this_accounts_log_groups_in_its_region(run_program):
    run = run_program(
        lambda: DataLake("lake", DataLakeArgs(region="eu-west-1", tags=TAGS)), config={"aws:region": "eu-west-1"}
    )
    sids = {s["Sid"]: s for s in statements(policy_of(run.one("aws:kms/key:Key")))}
    logs = sids["CloudWatchLogsEncryptThisAccountsLogGroups"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:123456789012:log-group:*"}
    }
    assert "kms:*" not in logs["Action"] and "kms:CreateGrant" not in logs["Action"]
    assert sids["CloudWatchLogsDescribeKey"]["Action"] == "kms:DescribeKey"


def test_log_bucket_admits_flow_log_delivery_only_when_flow_logs_are_on(lake, run_program):
    assert not any(
        s.get("Sid", "").startswith("AWSLogDelivery")
        for s in statements(policy_of(by_bucket(lake, "aws:s3/bucketPolicy:BucketPolicy")["logs"]))
    )
    run = run_program(lambda: DataLake("lake", DataLakeArgs(region="us-east-1", flow_logs=True, tags=TAGS)))
    log_bucket = by_bucket(run, "aws:s3/bucket:Bucket")["logs"].state["arn"]
    sids = {s.get("Sid"): s for s in statements(policy_of(by_bucket(run, "aws:s3/bucketPolicy:BucketPolicy")["logs"]))}
    write = sids["AWSLogDeliveryWrite"]
    assert write["Principal"] == {"Service": "delivery.logs.amazonaws.com"} and write["Action"] == "s3:PutObject"
    assert write["Resource"] == f"{log_bucket}/vpc-flow-logs/AWSLogs/123456789012/*"
    assert write["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert sids["AWSLogDeliveryAclCheck"]["Resource"] == log_bucket
    with pytest.raises(ValueError, match="flow_logs needs region"):
        DataLakeArgs(flow_logs=True)
