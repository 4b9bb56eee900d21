"""The whole doctor: EKS and Pulumi checks, the run in its thread pool, exit codes, --json and the screen."""

from __future__ import annotations

import dataclasses
import json
import re

import boto3
from typer.testing import CliRunner

from tests.doctor.fakes import answer, error, plan_of
from tests.helpers import ROOT
from trainstack.doctor.context import PlatformOutputs
from trainstack.doctor.eks import check_eks
from trainstack.doctor.pulumi_backend import CliUnavailable, check_pulumi, kms_key_of
from trainstack.doctor.result import Status


class FakeCli:
    def __init__(self, version="3.272.0", url="https://api.pulumi.com", outputs=None, logged_in=True):
        self._version, self.url, self.outputs, self.logged_in = version, url, outputs or {}, logged_in

    def version(self):
        if self._version is None:
            raise CliUnavailable("no pulumi on PATH")
        return self._version

    def whoami(self):
        if not self.logged_in:
            raise RuntimeError("error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions")
        return {"user": "alice", "url": self.url}

    def stack_outputs(self, stack):
        if stack not in self.outputs:
            raise RuntimeError(f"error: no stack named '{stack}' found")
        return self.outputs[stack]


def test_pulumi_version_login_and_secrets(make_ctx, monkeypatch):
    ctx = make_ctx("dev-ecs")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    [cli] = check_pulumi(ctx, FakeCli(version=None))
    assert cli.status is Status.FAIL and "--version 3.272.0" in cli.fix
    old, login = check_pulumi(ctx, FakeCli(version="3.200.0", logged_in=False))
    assert old.status is Status.FAIL and "older than 3.272.0" in old.detail
    assert login.status is Status.FAIL and "pulumi login" in login.fix
    boto3.client("s3").create_bucket(Bucket="state")
    _, backend, secrets = check_pulumi(ctx, FakeCli(url="s3://state"), env={})
    assert backend.status is Status.PASS and secrets.status is Status.FAIL and "PULUMI_CONFIG_PASSPHRASE" in secrets.fix
    _, missing, _ = check_pulumi(ctx, FakeCli(url="s3://nope"), env={"PULUMI_CONFIG_PASSPHRASE": ""})
    assert missing.status is Status.FAIL and "state bucket cannot be listed" in missing.detail
    key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    ctx.secrets_provider = f"awskms://{key}?region=us-east-1"
    assert check_pulumi(ctx, FakeCli(url="s3://state"))[2].status is Status.PASS
    ctx.secrets_provider = "awskms://alias/missing?region=us-east-1"
    assert check_pulumi(ctx, FakeCli(url="s3://state"))[2].status is Status.FAIL
    assert kms_key_of("awskms:///arn:aws:kms:us-east-1:1:key/k") == ("arn:aws:kms:us-east-1:1:key/k", None)


def test_eks_version_addons_and_the_shared_clusters_access_entry(make_ctx):
    ctx = make_ctx("dev-eks-shared")
    ctx.platform = PlatformOutputs("p", {"eks": {"clusterName": "shared", "version": "1.32"}})
    eks = ctx.aws.client("eks")
    answer(
        eks,
        "DescribeClusterVersions",
        lambda p: {
            "clusterVersions": [
                {
                    "clusterVersion": "1.32",
                    "versionStatus": "EXTENDED_SUPPORT",
                    "endOfExtendedSupportDate": "2027-03-23T00:00:00Z",
                }
            ]
        },
    )
    answer(eks, "DescribeAddonVersions", lambda p: {"addons": []})

    def no_entry(p):
        raise error("ResourceNotFoundException", "no access entry")

    entries = answer(eks, "DescribeAccessEntry", no_entry)
    checks = check_eks(ctx)
    assert checks[0].status is Status.WARN and "extended support" in checks[0].detail
    assert checks[-1].status is Status.FAIL and "no access entry on the shared cluster shared" in checks[-1].detail
    assert entries[0] == {"clusterName": "shared", "principalArn": ctx.identity.principal_arn}


def test_eks_addons_missing_for_the_version_fail(make_ctx):
    ctx = make_ctx("dev-eks")
    eks = ctx.aws.client("eks")
    answer(
        eks,
        "DescribeClusterVersions",
        lambda p: {
            "clusterVersions": [{"clusterVersion": p["clusterVersions"][0], "versionStatus": "STANDARD_SUPPORT"}]
        },
    )
    answer(
        eks,
        "DescribeAddonVersions",
        lambda p: {
            "addons": []
            if p["addonName"] == "coredns"
            else [{"addonName": p["addonName"], "addonVersions": [{"addonVersion": "v1.0.0-eksbuild.1"}]}]
        },
    )
    checks = {c.name: c for c in check_eks(ctx)}
    assert checks["add-on coredns"].status is Status.FAIL and checks["add-on vpc-cni"].status is Status.PASS


def test_diagnose_on_a_ready_account_exits_0_and_json_lists_every_check(
    public_images, make_ctx, monkeypatch, platform_outputs
):
    import trainstack.doctor.runner as runner
    from tests.doctor.fakes import clients
    from trainstack.doctor.aws import Aws
    from trainstack.doctor.runner import DoctorOptions, diagnose

    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    s3 = boto3.client("s3", region_name="us-east-1")
    for b in ("lake-raw", "lake-artifacts"):
        s3.create_bucket(Bucket=b)
    s3.put_object(Bucket="lake-raw", Key="cifar10/v1/data.bin", Body=b"x")
    key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    outputs = {  # what the platform program exports (offline), pointed at the moto resources
        **platform_outputs,
        "region": "us-east-1",
        "subnetIds": [subnet],
        "buckets": {z: {"name": f"lake-{z}", "arn": f"arn:aws:s3:::lake-{z}"} for z in ("raw", "artifacts")},
        "kmsKeyArn": key,
    }
    aws = Aws("us-east-1", factory=clients())
    answer(
        aws.client("service-quotas"),
        "GetServiceQuota",
        lambda p: {
            "Quota": {
                "QuotaCode": p["QuotaCode"],
                "QuotaName": "Running On-Demand G and VT instances"
                if p["QuotaCode"] == "L-DB2E81BA"
                else "All G and VT Spot Instance Requests",
                "Value": 192,
            }
        },
    )
    answer(
        aws.client("ec2"),
        "GetSpotPlacementScores",
        lambda p: {"SpotPlacementScores": [{"Region": "us-east-1", "AvailabilityZoneId": "use1-az6", "Score": 8}]},
    )
    answer(
        aws.client("iam"),
        "SimulatePrincipalPolicy",
        lambda p: {
            "EvaluationResults": [
                {"EvalActionName": a, "EvalResourceName": "*", "EvalDecision": "allowed"} for a in p["ActionNames"]
            ],
            "IsTruncated": False,
        },
    )
    # moto does not publish the DLAMI parameter: the plan's parameter is swapped for one naming a moto image (an
    # x86_64 Amazon Linux 2 one, found by name: listing all ~1,300 of moto's public images took 1.4 s).
    amzn2 = [{"Name": "name", "Values": ["amzn2-ami-hvm-*-x86_64-gp2"]}]
    image = ec2.describe_images(Owners=["amazon"], Filters=amzn2)["Images"][0]["ImageId"]
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/trainstack-test/dlami", Value=image, Type="String"
    )
    real = runner.stack_facts
    monkeypatch.setattr(
        runner, "stack_facts", lambda r: dataclasses.replace(real(r), ssm_parameters=("/trainstack-test/dlami",))
    )
    cli = FakeCli(outputs={"organization/trainstack/platform": outputs})
    report = diagnose(DoctorOptions("dev-ec2", ROOT), aws=aws, cli=cli, result=plan_of("dev-ec2"))
    doc = report.to_json()
    assert report.exit_code == 0, [c for c in report.checks if c.status is Status.FAIL]
    assert doc["ready"] is True and doc["counts"]["fail"] == 0
    families = {c["family"] for c in doc["checks"]}
    assert families >= {"identity", "pulumi", "platform", "quotas", "capacity", "images", "permissions"}


def test_cli_bad_input_exits_2_and_a_not_ready_account_exits_1_on_one_screen(monkeypatch):
    from trainstack.cli.main import app

    runner = CliRunner()
    bad = runner.invoke(app, ["doctor", "no-such-stack", "--json"])
    assert bad.exit_code == 2 and "no stack file" in json.loads(bad.stdout)["error"]
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("PATH", "/nonexistent")
    out = runner.invoke(app, ["doctor", "dev-ecs"])
    assert out.exit_code == 1, out.stdout
    lines = out.stdout.splitlines()
    assert lines[0].startswith("trainstack doctor dev-ecs: backend ecs, us-east-1")
    assert any(re.match(r"FAIL identity: AWS credentials - sts:GetCallerIdentity failed", l) for l in lines)
    assert any(l.strip().startswith("fix: configure AWS credentials") for l in lines)
    assert lines[-1].startswith("not ready: 3 problem(s)")
    assert len(lines) < 25  # one screen
