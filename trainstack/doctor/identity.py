"""Credentials, account and region: `sts:GetCallerIdentity`, and the principal IAM evaluates.

For an assumed-role session STS returns `arn:aws:sts::<acct>:assumed-role/<role>/<session>`, which
`iam:SimulatePrincipalPolicy` does not take: policies are attached to the role, whose ARN may carry a
path (IAM Identity Center roles live under /aws-reserved/sso.amazonaws.com/), so the role's ARN comes
from `iam:GetRole` when the caller may read it, else `arn:<partition>:iam::<acct>:role/<role>`.
"""

from __future__ import annotations

from trainstack.doctor.aws import Aws, short_error
from trainstack.doctor.context import Context, Identity
from trainstack.doctor.result import Check, failed, passed

FAMILY = "identity"

CREDENTIALS_FIX = (
    "configure AWS credentials for the account the stack deploys to (`aws configure sso` then "
    "`export AWS_PROFILE=NAME`, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and run the doctor again"
)


def principal_of(arn: str, aws: Aws) -> tuple[str, str, str]:
    """(principal ARN, kind, partition) for a caller ARN from GetCallerIdentity."""
    parts = arn.split(":", 5)
    partition, account, resource = parts[1], parts[4], parts[5]
    if parts[2] == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        try:
            found = aws.client("iam").get_role(RoleName=role)["Role"]["Arn"]
            return str(found), "assumed-role", partition
        except Exception:  # noqa: BLE001 - no iam:GetRole: the path-less ARN is right for most roles
            return f"arn:{partition}:iam::{account}:role/{role}", "assumed-role", partition
    if parts[2] == "sts" and resource.startswith("federated-user/"):
        return arn, "federated-user", partition
    if resource == "root":
        return arn, "root", partition
    if resource.startswith("user/"):
        return arn, "user", partition
    return arn, "other", partition


def check_identity(ctx: Context) -> list[Check]:
    try:
        who = ctx.aws.client("sts").get_caller_identity()
    except Exception as exc:  # noqa: BLE001 - no credentials, expired session, no network
        return [failed(FAMILY, "AWS credentials", f"sts:GetCallerIdentity failed: {short_error(exc)}", CREDENTIALS_FIX)]
    principal, kind, partition = principal_of(who["Arn"], ctx.aws)
    ctx.identity = Identity(str(who["Account"]), str(who["Arn"]), principal, kind, partition)
    checks = [
        passed(
            FAMILY,
            "AWS credentials",
            f"account {who['Account']}, {who['Arn']}" + (f" (role {principal})" if principal != who["Arn"] else ""),
            account=who["Account"],
            arn=who["Arn"],
            principal=principal,
        )
    ]
    if kind == "root":
        checks.append(
            failed(
                FAMILY,
                "not the root user",
                "the credentials are the account's root user",
                "use an IAM Identity Center user or an IAM role with the permissions the deploy needs; "
                "AWS recommends never using root credentials for everyday work",
            )
        )
    checks.append(_region(ctx))
    return checks


def _region(ctx: Context) -> Check:
    """An opt-in region (e.g. af-south-1) must be enabled before anything can be created there."""
    region = ctx.facts.region
    try:
        found = ctx.aws.client("ec2").describe_regions(RegionNames=[region], AllRegions=True)["Regions"]
    except Exception as exc:  # noqa: BLE001
        return failed(
            FAMILY,
            "region",
            f"aws:region = {region}: ec2:DescribeRegions failed: {short_error(exc)}",
            "set aws:region to a region name such as us-east-1 (and allow ec2:DescribeRegions)",
        )
    status = found[0].get("OptInStatus", "opt-in-not-required") if found else "unknown"
    if status == "not-opted-in":
        return failed(
            FAMILY,
            "region",
            f"aws:region = {region} is an opt-in region that this account has not enabled",
            f"enable it (Account settings > AWS Regions, or `aws account enable-region --region-name {region}`), "
            "or pick another region",
        )
    return passed(FAMILY, "region", f"{region} (aws:region of {ctx.facts.stack}; {status})")
