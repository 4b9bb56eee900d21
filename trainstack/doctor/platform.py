"""The platform the cluster stands on: its subnets, buckets and KMS key exist, and the dataset is there."""

from __future__ import annotations

from trainstack.doctor.aws import error_code, short_error
from trainstack.doctor.context import Context
from trainstack.doctor.result import Check, failed, passed, skipped, warned

FAMILY = "platform"


def check_platform(ctx: Context) -> list[Check]:
    p = ctx.platform
    if p is None:
        return [skipped(FAMILY, "platform resources", f"platform outputs unreadable ({ctx.platform_error})")]
    c = ctx.facts.cfg.cluster
    checks: list[Check] = []
    ec2, s3, kms = ctx.aws.client("ec2"), ctx.aws.client("s3"), ctx.aws.client("kms")
    try:
        found = ec2.describe_subnets(SubnetIds=p.subnet_ids)["Subnets"]
        zones = sorted({s["AvailabilityZone"] for s in found})
        checks.append(passed(FAMILY, "platform subnets", f"{len(found)} subnets in {', '.join(zones)}"))
    except Exception as exc:  # noqa: BLE001
        checks.append(
            failed(
                FAMILY,
                "platform subnets",
                f"{', '.join(p.subnet_ids)}: {short_error(exc)}",
                f"redeploy the platform ({p.name}) or point trainstack:platformStack at the deployed one",
            )
        )
    zones_needed = ["artifacts", c.job.dataset.zone]
    for zone in dict.fromkeys(zones_needed):
        bucket = (p.buckets.get(zone) or {}).get("name")
        if not bucket:
            checks.append(
                failed(FAMILY, f"{zone} bucket", f"the platform exports no buckets.{zone}", "redeploy the platform")
            )
            continue
        try:
            s3.head_bucket(Bucket=bucket)
            checks.append(passed(FAMILY, f"{zone} bucket", bucket))
        except Exception as exc:  # noqa: BLE001
            gone = error_code(exc) in ("404", "NoSuchBucket", "NotFound")
            checks.append(
                failed(
                    FAMILY,
                    f"{zone} bucket",
                    f"{bucket}: {'does not exist' if gone else short_error(exc)}",
                    f"redeploy the platform ({p.name})" if gone else f"allow s3:ListBucket on {bucket}",
                )
            )
    checks.append(_dataset(ctx, s3))
    try:
        meta = kms.describe_key(KeyId=p.kms_key_arn)["KeyMetadata"]
        if meta.get("KeyState") != "Enabled":
            checks.append(
                failed(
                    FAMILY,
                    "data lake KMS key",
                    f"{p.kms_key_arn} is {meta.get('KeyState')}",
                    "enable the key (or cancel its deletion): nothing can read or write the lake without it",
                )
            )
        else:
            checks.append(passed(FAMILY, "data lake KMS key", f"{p.kms_key_arn} enabled"))
    except Exception as exc:  # noqa: BLE001
        checks.append(
            failed(
                FAMILY,
                "data lake KMS key",
                f"{p.kms_key_arn}: {short_error(exc)}",
                "allow kms:DescribeKey on the lake key (its key policy), or redeploy the platform",
            )
        )
    return checks


def _dataset(ctx: Context, s3) -> Check:
    p = ctx.platform
    c = ctx.facts.cfg.cluster
    assert p is not None
    ref = c.job.dataset
    bucket = (p.buckets.get(ref.zone) or {}).get("name", "")
    if not bucket:
        return skipped(FAMILY, "dataset", f"no {ref.zone} bucket")
    try:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=ref.prefix, MaxKeys=1)
    except Exception as exc:  # noqa: BLE001
        return warned(FAMILY, "dataset", f"s3://{bucket}/{ref.prefix}: {short_error(exc)}", "allow s3:ListBucket")
    if not listed.get("KeyCount") and not listed.get("Contents"):
        return warned(
            FAMILY,
            "dataset",
            f"s3://{bucket}/{ref.prefix} is empty (job.dataset = {ref})",
            f"upload it: trainstack upload DIR {ref}",
        )
    return passed(FAMILY, "dataset", f"s3://{bucket}/{ref.prefix} has data")
