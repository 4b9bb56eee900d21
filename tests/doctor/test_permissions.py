"""Simulated permissions: IAM's simulator answers through `answer` (moto does not model SimulatePrincipalPolicy);
the request the doctor sends is validated against botocore's IAM model and asserted here."""

from __future__ import annotations

import json

import boto3

from tests.doctor.fakes import answer
from trainstack.doctor.context import PlatformOutputs
from trainstack.doctor.permissions import check_permissions
from trainstack.doctor.result import Status


def _simulator(deny=(), scp=()):
    def fn(p):
        results = []
        for action in p["ActionNames"]:
            for resource in p.get("ResourceArns", ["*"]):
                denied = action in deny or action in scp
                r = {
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": "implicitDeny" if denied else "allowed",
                }
                if action in scp:
                    r["EvalDecision"] = "explicitDeny"
                    r["OrganizationsDecisionDetail"] = {"AllowedByOrganizations": False}
                results.append(r)
        return {"EvaluationResults": results, "IsTruncated": False}

    return fn


def _lake(ctx):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lake-artifacts")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::lake-artifacts", "arn:aws:s3:::lake-artifacts/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    s3.put_bucket_policy(Bucket="lake-artifacts", Policy=json.dumps(policy))
    ctx.platform = PlatformOutputs(
        "organization/trainstack/platform",
        {
            "region": "us-east-1",
            "buckets": {
                "raw": {"name": "lake-raw", "arn": "arn:aws:s3:::lake-raw"},
                "artifacts": {"name": "lake-artifacts", "arn": "arn:aws:s3:::lake-artifacts"},
            },
            "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234",
        },
    )
    return policy


def test_everything_allowed_passes_and_is_simulated_for_the_caller_on_the_planned_arns(make_ctx):
    ctx = make_ctx("dev-ecs")
    policy = _lake(ctx)
    seen = answer(ctx.aws.client("iam"), "SimulatePrincipalPolicy", _simulator())
    checks = check_permissions(ctx)
    assert [c.status for c in checks] == [Status.PASS, Status.PASS, Status.PASS]
    assert {s["PolicySourceArn"] for s in seen} == {ctx.identity.principal_arn}
    asg = next(s for s in seen if "autoscaling:CreateAutoScalingGroup" in s["ActionNames"])
    assert asg["ResourceArns"][0].startswith("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:")
    passrole = [s for s in seen if s["ActionNames"] == ["iam:PassRole"]]
    assert {e["ContextKeyValues"][0] for s in passrole for e in s["ContextEntries"]} >= {
        "ec2.amazonaws.com",
        "ecs-tasks.amazonaws.com",
        "scheduler.amazonaws.com",
    }
    put = next(s for s in seen if "s3:PutObject" in s["ActionNames"])
    assert json.loads(put["ResourcePolicy"]) == policy  # the lake's real bucket policy
    assert put["ResourceArns"] == ["arn:aws:s3:::lake-artifacts/artifacts/alice/dev-ecs/code/0000.tar.gz"]


def test_a_denied_create_and_an_scp_are_named(make_ctx):
    ctx = make_ctx("dev-ecs")
    _lake(ctx)
    answer(
        ctx.aws.client("iam"),
        "SimulatePrincipalPolicy",
        _simulator(deny={"ecs:CreateCluster"}, scp={"ec2:RunInstances"}),
    )
    deploy = check_permissions(ctx)[0]
    assert deploy.status is Status.FAIL
    assert "ecs:CreateCluster on arn:aws:ecs:us-east-1:123456789012:cluster/" in deploy.detail
    assert "ec2:RunInstances (explicitDeny, by an Organizations SCP)" in deploy.detail


def test_passrole_denied_fails_apart_from_the_creates(make_ctx):
    ctx = make_ctx("dev-ecs")
    _lake(ctx)
    answer(ctx.aws.client("iam"), "SimulatePrincipalPolicy", _simulator(deny={"iam:PassRole"}))
    deploy, passrole, bundle = check_permissions(ctx)
    assert deploy.status is Status.PASS
    assert (
        passrole.status is Status.FAIL
        and "may not pass: iam:PassRole on arn:aws:iam::123456789012:role/" in passrole.detail
    )


def test_a_denied_code_bundle_upload_fails(make_ctx):
    ctx = make_ctx("dev-ecs")
    _lake(ctx)
    answer(ctx.aws.client("iam"), "SimulatePrincipalPolicy", _simulator(deny={"s3:PutObjectTagging"}))
    bundle = check_permissions(ctx)[-1]
    assert bundle.status is Status.FAIL
    assert "s3://lake-artifacts/artifacts/alice/dev-ecs/code/ is denied" in bundle.detail


def test_an_assumed_role_session_is_simulated_as_its_role():
    from trainstack.doctor.aws import Aws
    from trainstack.doctor.identity import principal_of

    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    answer(
        iam,
        "GetRole",
        lambda p: {
            "Role": {
                "Path": "/aws-reserved/sso.amazonaws.com/",
                "RoleName": p["RoleName"],
                "RoleId": "AROAEXAMPLE123456789",
                "Arn": f"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/{p['RoleName']}",
                "CreateDate": "2026-01-01T00:00:00Z",
                "AssumeRolePolicyDocument": "{}",
            }
        },
    )
    aws = Aws("us-east-1", factory=lambda name, region: iam)
    arn, kind, _ = principal_of("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_abc/alice", aws)
    assert (arn, kind) == (
        "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_abc",
        "assumed-role",
    )
