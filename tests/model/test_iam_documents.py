"""Every IAM, bucket and key policy trainstack produces is valid IAM JSON and least-privilege."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws
from moto.iam.policy_validation import IAMPolicyDocumentValidator, IAMTrustPolicyDocumentValidator

from tests.helpers import as_list, statements
from tests.iam.engine import ALLOWED, IMPLICIT_DENY, Request, evaluate
from trainstack.model import iam_documents as docs

# Parliament reads every document as an identity policy. These findings are expected and safe:
ACCEPTED_FINDINGS = {
    # A KMS key policy's "Resource": "*" means "this key"; it is a resource policy.
    ("RESOURCE_STAR", "EnableIamPolicies"),
    ("RESOURCE_STAR", "CloudWatchLogsEncryptThisAccountsLogGroups"),
    ("RESOURCE_STAR", "CloudWatchLogsDescribeKey"),
    # The encryption-context key is typed String; AWS documents ArnLike on it for the log group ARN.
    ("MISMATCHED_TYPE", "CloudWatchLogsEncryptThisAccountsLogGroups"),
    # The KMS key-id condition key is a String whose value AWS documents as the key ARN.
    ("MISMATCHED_TYPE_BUT_USABLE", "DenyOtherKmsKeys"),
    # SendCommand is authorized per resource (document and instance separately), as AWS documents;
    # parliament wants the document ARN in every statement.
    ("RESOURCE_MISMATCH", "OnThisGroupsInstancesOnly"),
    ("RESOURCE_MISMATCH", "RunShellScriptDocument"),
}


def policy_documents(example_plans):
    """(stack, resource, input key, document) for every policy input of every example stack."""
    for stack, result in example_plans.items():
        for r in result.run.resources:
            for key in ("policy", "assumeRolePolicy"):
                if isinstance(r.inputs.get(key), str):
                    yield stack, r, key, r.inputs[key]


def test_the_examples_produce_policies(example_plans):
    kinds = {(r.type, key) for _, r, key, _ in policy_documents(example_plans)}
    assert ("aws:iam/rolePolicy:RolePolicy", "policy") in kinds
    assert ("aws:s3/bucketPolicy:BucketPolicy", "policy") in kinds
    assert ("aws:kms/key:Key", "policy") in kinds
    assert ("aws:iam/role:Role", "assumeRolePolicy") in kinds


def test_every_document_passes_moto_iam_validation(example_plans):
    for _stack, _r, key, doc in policy_documents(example_plans):
        validator = IAMTrustPolicyDocumentValidator if key == "assumeRolePolicy" else IAMPolicyDocumentValidator
        validator(doc).validate()  # raises MalformedPolicyDocument with AWS's message


def test_no_unexpected_linter_findings(example_plans):
    from parliament import analyze_policy_string  # here, not at the top: 0.3 s of every collection

    unexpected = []
    for stack, r, key, doc in policy_documents(example_plans):
        if key == "assumeRolePolicy":
            continue  # trust policies have no Resource by design; moto validates them above
        sids = {s.get("Sid") for s in statements(json.loads(doc))}
        for finding in analyze_policy_string(doc, ignore_private_auditors=True).findings:
            if not any((finding.issue, sid) in ACCEPTED_FINDINGS for sid in sids):
                unexpected.append(f"{stack}/{r.name}: {finding.issue} {finding.detail}")
    assert unexpected == []


def test_policies_are_accepted_by_moto_iam_s3_and_kms(example_plans, aws_credentials):
    with mock_aws():
        iam, s3, kms = boto3.client("iam"), boto3.client("s3"), boto3.client("kms")
        s3.create_bucket(Bucket="policy-check")
        for i, (_stack, r, key, doc) in enumerate(policy_documents(example_plans)):
            if key == "assumeRolePolicy":
                iam.create_role(RoleName=f"r{i}", AssumeRolePolicyDocument=doc)
            elif r.type == "aws:iam/rolePolicy:RolePolicy":
                iam.create_role(
                    RoleName=f"p{i}", AssumeRolePolicyDocument=json.dumps(docs.assume_role("ec2.amazonaws.com"))
                )
                iam.put_role_policy(RoleName=f"p{i}", PolicyName="p", PolicyDocument=doc)
            elif r.type == "aws:s3/bucketPolicy:BucketPolicy":
                s3.put_bucket_policy(Bucket="policy-check", Policy=doc)
            elif r.type == "aws:kms/key:Key":
                kms.create_key(Policy=doc)


def identity_policies(example_plans):
    for stack, r, _key, doc in policy_documents(example_plans):
        if r.type == "aws:iam/rolePolicy:RolePolicy":
            yield stack, r, json.loads(doc)


def test_no_wildcard_s3_or_admin_grants(example_plans):
    for stack, r, doc in identity_policies(example_plans):
        for s in statements(doc):
            actions = as_list(s["Action"])
            assert "*" not in actions and not any(a in ("s3:*", "iam:*", "kms:*") for a in actions), (stack, r.name)
            if s["Resource"] == "*" or "*" in as_list(s["Resource"]):
                assert not any(
                    a.startswith(("s3:", "kms:", "iam:", "autoscaling:Update", "sagemaker:")) for a in actions
                ), (stack, r.name, s)


def test_dataset_read_is_scoped_to_the_dataset_prefix():
    """Decided by the IAM engine (tests/iam/engine.py); the planned roles' full matrix is tests/model/test_lake_access.py."""
    doc = docs.training_data_access(
        dataset_bucket_arn="arn:aws:s3:::raw",
        dataset_prefix="cifar10/v1/",
        artifacts_bucket_arn="arn:aws:s3:::art",
        write_prefixes=["artifacts/a/s/"],
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        region="us-east-1",
    )
    role = "arn:aws:iam::123456789012:role/training"
    via_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    cases = {
        "read the dataset": ("s3:GetObject", "arn:aws:s3:::raw/cifar10/v1/data_batch_1", {}, ALLOWED),
        "read another dataset": ("s3:GetObject", "arn:aws:s3:::raw/imagenet/train.tar", {}, IMPLICIT_DENY),
        "write the dataset": ("s3:PutObject", "arn:aws:s3:::raw/cifar10/v1/poison", {}, IMPLICIT_DENY),
        "list the dataset": ("s3:ListBucket", "arn:aws:s3:::raw", {"s3:prefix": "cifar10/v1/"}, ALLOWED),
        "list another prefix": ("s3:ListBucket", "arn:aws:s3:::raw", {"s3:prefix": "imagenet/"}, IMPLICIT_DENY),
        "decrypt through S3": ("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/k", via_s3, ALLOWED),
        "decrypt directly": ("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/k", {}, IMPLICIT_DENY),
    }
    key_policy = docs.kms_key_policy("123456789012")  # KMS honours IAM policies only where the key policy says so
    decided = evaluate(
        Request(k, role, a, r, ctx, (doc,), key_policy if a.startswith("kms:") else None)
        for k, (a, r, ctx, _) in cases.items()
    )
    assert decided == {k: expect for k, (_, _, _, expect) in cases.items()}


def test_partitions_follow_botocore():
    """The region -> partition rule is botocore's (partitions.json regexes, aws as the fallback)."""
    import botocore.session
    from botocore.endpoint_provider import RuleSetStandardLibrary
    from botocore.loaders import create_loader

    data = create_loader().load_data("partitions")
    assert [(p["id"], p["regionRegex"]) for p in data["partitions"]] == list(docs.PARTITION_REGIONS)
    lib = RuleSetStandardLibrary(data)
    regions = [r for p in data["partitions"] for r in p["regions"] if r[-1].isdigit()]
    regions += botocore.session.get_session().get_available_regions("s3") + ["xx-nowhere-1", "local"]
    assert len(regions) > 30
    assert {r: docs.partition_of(r) for r in regions} == {r: lib.aws_partition(r)["name"] for r in regions}
    assert (docs.partition_of("cn-north-1"), docs.partition_of("us-gov-west-1")) == ("aws-cn", "aws-us-gov")


def test_arns_take_the_regions_partition():
    cn = "cn-northwest-1"
    assert docs.autoscaling_group_arn(cn, "1", "g").startswith("arn:aws-cn:autoscaling:cn-northwest-1:1:")
    assert docs.kms_key_policy("1", region=cn)["Statement"][0]["Principal"] == {"AWS": "arn:aws-cn:iam::1:root"}
    assert docs.kms_key_policy("1")["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::1:root"}
    shutdown = docs.send_shutdown_command("g", "us-gov-west-1", "1")
    assert {s["Resource"].split(":")[1] for s in shutdown["Statement"]} == {"aws-us-gov"}
    logs = docs.sagemaker_training(region=cn, account_id="1", kms_key_arn="k", vpc=False)["Statement"][0]
    assert all(r.startswith("arn:aws-cn:logs:") for r in logs["Resource"])
    autoscaler = docs.cluster_autoscaler("c", cn, "1")["Statement"]
    assert [s["Resource"].split(":")[1] for s in autoscaler[1:]] == ["aws-cn", "aws-cn"]
    flow = docs.flow_log_delivery("arn:aws-cn:s3:::l", "1", cn)[0]["Condition"]["ArnLike"]["aws:SourceArn"]
    assert flow == "arn:aws-cn:logs:cn-northwest-1:1:*"
    assert docs.ecs_task_trust("1", cn)["Statement"][0]["Condition"]["ArnLike"] == {
        "aws:SourceArn": "arn:aws-cn:ecs:cn-northwest-1:1:*"
    }
    assert docs.aws_managed_policy("AmazonSSMManagedInstanceCore", "aws-cn") == (
        "arn:aws-cn:iam::aws:policy/AmazonSSMManagedInstanceCore"
    )


def test_ecr_repository_arn():
    assert (
        docs.ecr_repository_arn("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu")
        == "arn:aws:ecr:us-east-1:763104351884:repository/pytorch-training"
    )
    assert docs.ecr_repository_arn("docker.io/pytorch/pytorch:latest") is None
    assert docs.pull_image(None)["Statement"] == []


def test_flow_log_platform_policies_pass_the_same_checks(aws_credentials):
    """The bucket and key policies of a platform with `flowLogs: true` (off in the examples)."""
    from parliament import analyze_policy_string  # here, not at the top: 0.3 s of every collection

    from tests.helpers import PLATFORM_CONFIG
    from trainstack.plan.offline import run_offline
    from trainstack.programs.program import main

    run = run_offline(main, config={**PLATFORM_CONFIG, "trainstack:flowLogs": True}, stack="platform")
    policies = [r for r in run.resources if r.type in ("aws:s3/bucketPolicy:BucketPolicy", "aws:kms/key:Key")]
    log_policy = next(r for r in policies if "logs" in r.name)
    assert any(s.get("Sid") == "AWSLogDeliveryWrite" for s in statements(json.loads(log_policy.inputs["policy"])))
    with mock_aws():
        s3, kms = boto3.client("s3"), boto3.client("kms")
        s3.create_bucket(Bucket="policy-check")
        for r in policies:
            doc = r.inputs["policy"]
            IAMPolicyDocumentValidator(doc).validate()
            sids = {s.get("Sid") for s in statements(json.loads(doc))}
            findings = [
                f
                for f in analyze_policy_string(doc, ignore_private_auditors=True).findings
                if not any((f.issue, sid) in ACCEPTED_FINDINGS for sid in sids)
            ]
            assert findings == [], (r.name, [(f.issue, f.detail) for f in findings])
            if r.type == "aws:kms/key:Key":
                kms.create_key(Policy=doc)
            else:
                s3.put_bucket_policy(Bucket="policy-check", Policy=doc)
