"""Who may read and write what in the data lake, decided by an IAM policy engine (tests/iam/engine.py,
@cloud-copilot/iam-simulate) over the policies every example stack really plans: the platform's bucket
and key policies, each role's trust and inline policies. One engine run for the whole matrix.

Every writer's request carries the headers it really sends (see each case); S3 authorizes every
multipart step as s3:PutObject, and only CreateMultipartUpload carries the encryption headers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers import STACKS
from tests.iam.engine import ACCOUNT, ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate, s3_context

CLUSTERS = [s for s in STACKS if s.startswith("dev-")]
OTHER_ACCOUNT = "210987654321"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:user/deployer"


@dataclass
class Planned:
    """The policies one cluster stack and its platform plan, as the offline plan records them."""

    stack: str
    region: str
    outputs: dict
    bucket_policies: dict[str, dict]  # bucket ARN -> policy
    key_arn: str
    key_policy: dict
    roles: dict[str, dict]  # role logical name -> {arn, trust, policies}
    resources: list

    def role(self, name_part: str) -> dict:
        (found,) = [r for n, r in self.roles.items() if name_part in n]
        return found

    def object_arn(self, uri: str) -> str:
        return "arn:aws:s3:::" + uri[len("s3://") :]

    def bucket_arn(self, uri: str) -> str:
        return "arn:aws:s3:::" + uri[len("s3://") :].split("/")[0]

    def policy_for(self, arn: str) -> dict:
        return self.bucket_policies[arn.split("/")[0]]


def _planned(example_plans, stack: str) -> Planned:
    result = example_plans[stack]
    platform = example_plans[result.platform_stack.rsplit("/", 1)[-1]].run
    buckets = {b.state["id"]: b.state["arn"] for b in platform.of_type("aws:s3/bucket:Bucket")}
    bucket_policies = {
        buckets[p.inputs["bucket"]]: json.loads(p.inputs["policy"])
        for p in platform.of_type("aws:s3/bucketPolicy:BucketPolicy")
    }
    key = platform.one("aws:kms/key:Key")
    roles = {}
    for run in (result.run, platform):  # a shared cluster's roles may live in the platform stack
        for r in run.of_type("aws:iam/role:Role"):
            roles[r.name] = {
                "arn": r.state["arn"],
                "trust": json.loads(r.inputs["assumeRolePolicy"]),
                "policies": [
                    json.loads(p.inputs["policy"])
                    for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
                    if p.inputs["role"] in (r.state["id"], r.state["name"])
                ],
            }
    return Planned(
        stack,
        result.config.region,
        result.run.outputs,
        bucket_policies,
        key.state["arn"],
        json.loads(key.inputs["policy"]),
        roles,
        result.run.resources,
    )


def _training_role(p: Planned) -> dict:
    (role,) = [
        r
        for r in p.roles.values()
        if any(s.get("Sid") == "ReadWriteRunArtifacts" for d in r["policies"] for s in d["Statement"])
    ]
    return role


def _s3(p: Planned, label: str, principal: str, policies, action: str, uri: str, expect: str, **ctx):
    tls = ctx.pop("tls", True)
    headers = ctx.pop("headers", None)
    arn = p.object_arn(uri) if action != "s3:ListBucket" else p.bucket_arn(uri)
    context = {**s3_context(headers, tls=tls), **ctx}
    return (
        Request(f"{p.stack}: {label}", principal, action, arn, context, tuple(policies), p.policy_for(arn)),
        expect,
    )


def _kms(p: Planned, label: str, role: dict, action: str, expect: str, key: str | None = None, via_s3=True):
    ctx = {"kms:ViaService": f"s3.{p.region}.amazonaws.com"} if via_s3 else {}
    key_arn = key or p.key_arn
    return (
        Request(f"{p.stack}: {label}", role["arn"], action, key_arn, ctx, tuple(role["policies"]), p.key_policy),
        expect,
    )


def lake_key_headers(p: Planned) -> dict[str, str]:
    return {"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": p.key_arn}


def training_cases(p: Planned) -> Iterator[tuple[Request, str]]:
    """The run's training identity (ec2 node role, ECS task role, EKS pod role, SageMaker execution role)."""
    role = _training_role(p)
    arn, pol = role["arn"], role["policies"]
    o = p.outputs
    art, ckpt, data = o["artifactUri"], o["checkpointUri"], o["datasetUri"]
    other_key = f"arn:aws:kms:{p.region}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
    owner, stack = art.rstrip("/").split("/")[-2:]
    base = art[: art.index(f"artifacts/{owner}/")]
    s3 = lambda *a, **k: _s3(p, *a, **k)  # noqa: E731
    # Writes with no encryption header: boto3 upload_file / put_object as the ec2 bootstrap (markers,
    # logs, model), the example's checkpoints and model, and SageMaker's checkpoint sync send them.
    yield s3("model, no SSE header", arn, pol, "s3:PutObject", f"{o['modelUri']}model.pt", ALLOWED)
    yield s3("marker, no SSE header", arn, pol, "s3:PutObject", f"{art}_SUCCESS", ALLOWED)
    yield s3("node log, no SSE header", arn, pol, "s3:PutObject", f"{art}logs/node-0.log", ALLOWED)
    yield s3("checkpoint, no SSE header", arn, pol, "s3:PutObject", f"{ckpt}step-100.pt", ALLOWED)
    yield s3(
        "checkpoint with the lake key", arn, pol, "s3:PutObject", f"{ckpt}s.pt", ALLOWED, headers=lake_key_headers(p)
    )
    yield s3("read back a checkpoint", arn, pol, "s3:GetObject", f"{ckpt}step-100.pt", ALLOWED)
    yield s3("delete an old checkpoint", arn, pol, "s3:DeleteObject", f"{ckpt}step-50.pt", ALLOWED)
    yield s3("read the code bundle", arn, pol, "s3:GetObject", o["codeUri"], ALLOWED)
    yield s3("read the dataset", arn, pol, "s3:GetObject", f"{data}data_batch_1", ALLOWED)
    dataset_prefix = data.split("/", 3)[3]
    yield s3("list the dataset", arn, pol, "s3:ListBucket", data, ALLOWED, **{"s3:prefix": dataset_prefix})
    yield s3("list its checkpoints", arn, pol, "s3:ListBucket", ckpt, ALLOWED, **{"s3:prefix": ckpt.split("/", 3)[3]})
    # Refused by the identity policy: another owner's or stack's prefix, another dataset, the data zones.
    yield s3(
        "write another owner's prefix", arn, pol, "s3:PutObject", f"{base}artifacts/mallory/{stack}/m.pt", IMPLICIT_DENY
    )
    yield s3(
        "write another stack's prefix", arn, pol, "s3:PutObject", f"{base}artifacts/{owner}/other/m.pt", IMPLICIT_DENY
    )
    yield s3(
        "write another owner's checkpoints",
        arn,
        pol,
        "s3:PutObject",
        f"{base}checkpoints/mallory/x/s.pt",
        IMPLICIT_DENY,
    )
    yield s3(
        "delete another stack's model",
        arn,
        pol,
        "s3:DeleteObject",
        f"{base}artifacts/{owner}/other/m.pt",
        IMPLICIT_DENY,
    )
    yield s3(
        "read another stack's artifacts", arn, pol, "s3:GetObject", f"{base}artifacts/{owner}/other/m.pt", IMPLICIT_DENY
    )
    yield s3("write into the dataset zone", arn, pol, "s3:PutObject", f"{data}poison", IMPLICIT_DENY)
    yield s3(
        "read another dataset", arn, pol, "s3:GetObject", data.replace("cifar10/v1/", "imagenet/t.tar"), IMPLICIT_DENY
    )
    yield s3("list the whole raw bucket", arn, pol, "s3:ListBucket", data, IMPLICIT_DENY, **{"s3:prefix": ""})
    # Refused by the bucket policy whatever the identity policy says.
    yield s3("model over plain HTTP", arn, pol, "s3:PutObject", f"{o['modelUri']}m.pt", EXPLICIT_DENY, tls=False)
    yield s3("dataset over plain HTTP", arn, pol, "s3:GetObject", f"{data}data_batch_1", EXPLICIT_DENY, tls=False)
    kms = {"x-amz-server-side-encryption": "aws:kms"}
    yield s3("model, aws:kms without key id", arn, pol, "s3:PutObject", f"{art}m.pt", EXPLICIT_DENY, headers=kms)
    wrong = {**kms, "x-amz-server-side-encryption-aws-kms-key-id": other_key}
    yield s3("model, another KMS key", arn, pol, "s3:PutObject", f"{art}m.pt", EXPLICIT_DENY, headers=wrong)
    sse_s3 = {"x-amz-server-side-encryption": "AES256"}
    yield s3("model, SSE-S3", arn, pol, "s3:PutObject", f"{art}m.pt", EXPLICIT_DENY, headers=sse_s3)
    # The lake key, through S3 only.
    yield _kms(p, "GenerateDataKey via S3", role, "kms:GenerateDataKey", ALLOWED)
    yield _kms(p, "Decrypt via S3", role, "kms:Decrypt", ALLOWED)
    yield _kms(p, "Decrypt outside S3", role, "kms:Decrypt", IMPLICIT_DENY, via_s3=False)
    yield _kms(p, "GenerateDataKey with another key", role, "kms:GenerateDataKey", IMPLICIT_DENY, key=other_key)


def sagemaker_cases(p: Planned) -> Iterator[tuple[Request, str]]:
    """SageMaker writes model.tar.gz with aws:kms and OutputDataConfig.KmsKeyId (the lake key ARN)."""
    role = _training_role(p)
    out = p.outputs["modelArtifactUri"]
    yield _s3(
        p,
        "model.tar.gz with the lake key",
        role["arn"],
        role["policies"],
        "s3:PutObject",
        out,
        ALLOWED,
        headers=lake_key_headers(p),
    )
    grant = {"kms:GrantIsForAWSResource": "true"}
    yield (
        Request(
            f"{p.stack}: volume grant",
            role["arn"],
            "kms:CreateGrant",
            p.key_arn,
            grant,
            tuple(role["policies"]),
            p.key_policy,
        ),
        ALLOWED,
    )
    yield (
        Request(
            f"{p.stack}: grant for itself",
            role["arn"],
            "kms:CreateGrant",
            p.key_arn,
            {"kms:GrantIsForAWSResource": "false"},
            tuple(role["policies"]),
            p.key_policy,
        ),
        IMPLICIT_DENY,
    )
    yield (
        Request(
            f"{p.stack}: encrypt the model",
            role["arn"],
            "kms:Encrypt",
            p.key_arn,
            {},
            tuple(role["policies"]),
            p.key_policy,
        ),
        ALLOWED,
    )
    trust = role["trust"]
    yield (
        Request(
            f"{p.stack}: SageMaker assumes",
            "sagemaker.amazonaws.com",
            "sts:AssumeRole",
            role["arn"],
            {"aws:SourceAccount": ACCOUNT},
            (),
            trust,
        ),
        ALLOWED,
    )
    yield (
        Request(
            f"{p.stack}: SageMaker of another account",
            "sagemaker.amazonaws.com",
            "sts:AssumeRole",
            role["arn"],
            {"aws:SourceAccount": OTHER_ACCOUNT},
            (),
            trust,
        ),
        IMPLICIT_DENY,
    )


def deployer_cases(p: Planned) -> Iterator[tuple[Request, str]]:
    """The deployer's own IAM rights are theirs, not planned: a grant on the artifacts bucket stands in, so
    what is decided here is whether the planned bucket policy lets the product's writes through."""
    (code,) = [r for r in p.resources if r.type == "aws:s3/bucketObject:BucketObject"]
    bucket = "arn:aws:s3:::" + code.inputs["bucket"]
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{bucket}/*"}],
    }
    uri = f"s3://{code.inputs['bucket']}/{code.inputs['key']}"
    # terraform-provider-aws resourceObjectUpload: ServerSideEncryption / SSEKMSKeyId only when set (GetOk);
    # the CodeBundle sets neither, so `up` sends none. An update that re-uploads sends what Read stored in
    # state: aws:kms and the key ARN S3 reported (the lake key).
    yield _s3(p, "code bundle create", DEPLOYER, [grant], "s3:PutObject", uri, ALLOWED)
    yield _s3(p, "code bundle update", DEPLOYER, [grant], "s3:PutObject", uri, ALLOWED, headers=lake_key_headers(p))
    # The run driver's run.json: put_object without SSE arguments (trainstack/run/run.py).
    yield _s3(p, "run.json", DEPLOYER, [grant], "s3:PutObject", p.outputs["artifactUri"] + "run.json", ALLOWED)
    yield _s3(
        p,
        "run.json over HTTP",
        DEPLOYER,
        [grant],
        "s3:PutObject",
        p.outputs["artifactUri"] + "r.json",
        EXPLICIT_DENY,
        tls=False,
    )


def teardown_cases(p: Planned) -> Iterator[tuple[Request, str]]:
    role = p.role("teardown-role")
    arn, pol = role["arn"], tuple(role["policies"])
    label = f"{p.stack}: teardown"
    for r in p.resources:
        if r.type == "aws:autoscaling/group:Group":
            yield (
                Request(
                    f"{label} scales its group", arn, "autoscaling:UpdateAutoScalingGroup", r.state["arn"], {}, pol
                ),
                ALLOWED,
            )
            other = r.state["arn"].rsplit("/", 1)[0] + "/someone-elses-group"
            yield (
                Request(f"{label} another group", arn, "autoscaling:UpdateAutoScalingGroup", other, {}, pol),
                IMPLICIT_DENY,
            )
        if r.type == "aws:sagemaker/trainingJob:TrainingJob":
            yield Request(f"{label} stops its job", arn, "sagemaker:StopTrainingJob", r.state["arn"], {}, pol), ALLOWED
            other = r.state["arn"].rsplit("/", 1)[0] + "/someone-elses-job"
            yield Request(f"{label} another job", arn, "sagemaker:StopTrainingJob", other, {}, pol), IMPLICIT_DENY
        if r.type == "aws:eks/nodeGroup:NodeGroup":
            yield Request(f"{label} {r.name}", arn, "eks:UpdateNodegroupConfig", r.state["arn"], {}, pol), ALLOWED
    if p.stack.startswith("dev-ecs"):
        group = p.outputs.get("groupName") or next(
            r.state["name"] for r in p.resources if r.type == "aws:autoscaling/group:Group"
        )
        instance = f"arn:aws:ec2:{p.region}:{ACCOUNT}:instance/i-0123456789abcdef0"
        # The AWS-RunShellScript document ARN has no account (arn:aws:ssm:<region>::document/...), which
        # the engine's resource-type patterns do not accept: only the instance half is decided here.
        tag = "ssm:resourceTag/aws:autoscaling:groupName"
        yield Request(f"{label} its instances", arn, "ssm:SendCommand", instance, {tag: group}, pol), ALLOWED
        yield Request(f"{label} other instances", arn, "ssm:SendCommand", instance, {tag: "other"}, pol), IMPLICIT_DENY
    yield (
        Request(
            f"{label} reads the lake",
            arn,
            "s3:GetObject",
            p.object_arn(p.outputs["artifactUri"] + "m.pt"),
            s3_context(),
            pol,
            p.policy_for(p.object_arn(p.outputs["artifactUri"])),
        ),
        IMPLICIT_DENY,
    )
    trust = role["trust"]
    yield (
        Request(
            f"{label} assumed by Scheduler",
            "scheduler.amazonaws.com",
            "sts:AssumeRole",
            arn,
            {"aws:SourceAccount": ACCOUNT},
            (),
            trust,
        ),
        ALLOWED,
    )
    yield (
        Request(
            f"{label} assumed for another account",
            "scheduler.amazonaws.com",
            "sts:AssumeRole",
            arn,
            {"aws:SourceAccount": OTHER_ACCOUNT},
            (),
            trust,
        ),
        IMPLICIT_DENY,
    )


def ecs_trust_cases(p: Planned) -> Iterator[tuple[Request, str]]:
    """ECS sets aws:SourceAccount and aws:SourceArn (a task ARN) when it assumes a task role."""
    task = p.role("task-role")
    task_arn = lambda region, acct: f"arn:aws:ecs:{region}:{acct}:task/trainstack/0123456789abcdef"  # noqa: E731
    cases = {
        "its account and region": (
            {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": task_arn(p.region, ACCOUNT)},
            ALLOWED,
        ),
        "another account": (
            {"aws:SourceAccount": OTHER_ACCOUNT, "aws:SourceArn": task_arn(p.region, OTHER_ACCOUNT)},
            IMPLICIT_DENY,
        ),
        "another region": (
            {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": task_arn("eu-north-1", ACCOUNT)},
            IMPLICIT_DENY,
        ),
        "no source keys": ({}, IMPLICIT_DENY),
    }
    for what, (ctx, expect) in cases.items():
        yield (
            Request(
                f"{p.stack}: ECS task role, {what}",
                "ecs-tasks.amazonaws.com",
                "sts:AssumeRole",
                task["arn"],
                ctx,
                (),
                task["trust"],
            ),
            expect,
        )
    execution = p.role("execution-role")
    yield (
        Request(
            f"{p.stack}: ECS execution role",
            "ecs-tasks.amazonaws.com",
            "sts:AssumeRole",
            execution["arn"],
            {},
            (),
            execution["trust"],
        ),
        ALLOWED,
    )


def pod_identity_cases(p: Planned) -> Iterator[tuple[Request, str]]:
    """EKS Pod Identity assumes with sts:AssumeRole + sts:TagSession and its session tags."""
    role = _training_role(p)
    trust = role["trust"]
    cond = trust["Statement"][0]["Condition"]["StringEquals"]
    tags = {k: v for k, v in cond.items() if k.startswith("aws:RequestTag/")}
    for action in ("sts:AssumeRole", "sts:TagSession"):
        mine = {"aws:SourceAccount": ACCOUNT, **tags}
        yield (
            Request(f"{p.stack}: pod role {action}", "pods.eks.amazonaws.com", action, role["arn"], mine, (), trust),
            ALLOWED,
        )
        theirs = {**mine, "aws:SourceAccount": OTHER_ACCOUNT}
        yield (
            Request(
                f"{p.stack}: same cluster name, another account {action}",
                "pods.eks.amazonaws.com",
                action,
                role["arn"],
                theirs,
                (),
                trust,
            ),
            IMPLICIT_DENY,
        )
        ns = {**mine, "aws:RequestTag/kubernetes-namespace": "default"}
        yield (
            Request(
                f"{p.stack}: another namespace {action}", "pods.eks.amazonaws.com", action, role["arn"], ns, (), trust
            ),
            IMPLICIT_DENY,
        )


def cases(p: Planned) -> list[tuple[Request, str]]:
    out = [*training_cases(p), *deployer_cases(p), *teardown_cases(p)]
    if p.stack.startswith("dev-sagemaker"):
        out += sagemaker_cases(p)
    if p.stack.startswith("dev-ecs"):
        out += ecs_trust_cases(p)
    if p.stack.startswith("dev-eks"):
        out += pod_identity_cases(p)
    return out


@pytest.fixture(scope="module")
def matrix(example_plans) -> dict[str, tuple[list[tuple[Request, str]], dict[str, str]]]:
    by_stack = {s: cases(_planned(example_plans, s)) for s in CLUSTERS}
    decided = evaluate(r for c in by_stack.values() for r, _ in c)
    return {s: (c, decided) for s, c in by_stack.items()}


@pytest.mark.parametrize("stack", CLUSTERS)
def test_every_path_of_the_run_is_decided_as_intended(matrix, stack):
    cases_, decided = matrix[stack]
    wrong = [f"{r.label}: {decided[r.label]}, expected {expect}" for r, expect in cases_ if decided[r.label] != expect]
    assert wrong == []
    assert {expect for _, expect in cases_} == {ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY}


def test_the_old_if_exists_policy_refused_a_plain_put(example_plans):
    """The bug this guards against, decided by the same engine: `StringNotEqualsIfExists` in a Deny is
    true when the header is absent, so the old policy refused every write without SSE headers."""
    p = _planned(example_plans, "dev-ec2")
    role = _training_role(p)
    art = p.object_arn(p.outputs["artifactUri"] + "model/model.pt")
    bucket = art.split("/")[0]
    old = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket}/*",
                "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            }
        ],
    }
    decided = evaluate(
        [
            Request("old", role["arn"], "s3:PutObject", art, s3_context(), tuple(role["policies"]), old),
            Request("new", role["arn"], "s3:PutObject", art, s3_context(), tuple(role["policies"]), p.policy_for(art)),
        ]
    )
    assert decided == {"old": EXPLICIT_DENY, "new": ALLOWED}
