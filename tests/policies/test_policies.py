"""The CrossGuard pack: clean on every example stack, each rule fires on a broken graph, valid layout.

Every check runs the rules through pulumi-policy's own analyzer (trainstack/policies/offline.py), the way
`pulumi preview --policy-pack trainstack/policies` runs them.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.metadata
import inspect
import json
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.helpers import STACKS
from trainstack.cli.main import app
from trainstack.model import config as config_mod
from trainstack.plan.offline import ResourceRecord
from trainstack.policies import rules
from trainstack.policies.offline import analyze, check_plan, config_for, stack_urn

ROOT = Path(__file__).resolve().parents[2]
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's "unknown during preview" sentinel
runner = CliRunner()


# ---------------------------------------------------------------------------------------------
# Helpers: copy an example graph, break one record, analyse it


def records_of(example_plans, stack: str) -> list[ResourceRecord]:
    return copy.deepcopy(example_plans[stack].run.resources)


def pick(records, type_: str, name: str = "") -> ResourceRecord:
    found = [r for r in records if r.type == type_ and name in r.name]
    assert found, f"no {type_} named *{name}* in {[r.name for r in records]}"
    return found[0]


def edit(record: ResourceRecord, change: Callable[[dict], None]) -> ResourceRecord:
    """Apply `change` to the inputs and to the outputs (the stack rules read outputs)."""
    change(record.inputs)
    change(record.state)
    return record


def fired(report, rule: str) -> list:
    return [v for v in report.violations if v.rule == rule]


def assert_fires(records, rule: str, resource: str, *fragments: str, level: str = "mandatory"):
    report = analyze(records)
    hits = fired(report, rule)
    assert hits, f"{rule} did not fire; violations: {[(v.rule, v.resource) for v in report.violations]}"
    hit = next((v for v in hits if v.resource == resource), None)
    assert hit is not None, f"{rule} fired on {[v.resource for v in hits]}, not {resource}"
    assert hit.level == level
    for fragment in fragments:
        assert fragment in hit.message, hit.message
    assert "Fix" in hit.message
    return report


# ---------------------------------------------------------------------------------------------
# Every example stack is clean


@pytest.mark.parametrize("stack", STACKS)
def test_every_example_stack_passes_every_rule(example_plans, stack):
    report = example_plans[stack].policy
    assert report is not None and report.violations == []
    assert set(report.levels) == {p.name for p in rules.POLICIES}
    assert report.resources == len(
        [r for r in example_plans[stack].run.resources if r.type != "pulumi:pulumi:StackReference"]
    )


def test_the_rules_that_matter_for_each_stack_kind_actually_ran(example_plans):
    """No rule passes an example by skipping it: only the other kind's stack rules are not applicable."""
    platform = {rule for rule, _, _ in example_plans["platform"].policy.not_applicable}
    sagemaker = "sagemaker-spot-has-checkpoints"
    assert platform == {"cluster-holds-no-data", "cluster-has-teardown", "cluster-nothing-protected", sagemaker}
    for stack in ("dev-ecs", "dev-ec2"):
        skipped = {rule for rule, _, _ in example_plans[stack].policy.not_applicable}
        assert skipped == {"platform-stateful-protected", sagemaker}
    skipped = {rule for rule, _, _ in example_plans["dev-sagemaker"].policy.not_applicable}
    assert skipped == {"platform-stateful-protected"}  # the exported job request was checked


# Rules a user can have a good reason to break: a type the catalog lacks, a job that calls the Kubernetes
# API, an image that needs root, control plane logs configured off (trainstack:eks.controlPlaneLogs).
ADVISORY_RULES = {
    "gpu-type-in-catalog",
    "k8s-job-no-service-account-token",
    "k8s-job-non-root",
    "eks-control-plane-logs",
}


def test_enforcement_levels_are_chosen_per_rule():
    levels = rules.levels()
    assert {rule for rule, level in levels.items() if level == "advisory"} == ADVISORY_RULES
    assert all(level == "mandatory" for rule, level in levels.items() if rule not in ADVISORY_RULES)
    assert len(levels) == len(rules.POLICIES)  # names are unique


# ---------------------------------------------------------------------------------------------
# Each rule fires (one test per rule; RULE_TESTS below keeps the list complete)


def test_required_tags(example_plans):
    records = records_of(example_plans, "dev-ecs")
    edit(pick(records, "aws:ecs/cluster:Cluster"), lambda p: p.get("tags", {}).pop("trainstack:expires-at", None))
    assert_fires(records, "required-tags", "training-cluster", "trainstack:expires-at")
    # Auto Scaling groups carry their tags as a list; the check reads that form too.
    asg = pick(records, "aws:autoscaling/group:Group")
    edit(asg, lambda p: p.__setitem__("tags", [t for t in p["tags"] if t["key"] != "trainstack:owner"]))
    assert_fires(records, "required-tags", asg.name, "trainstack:owner")


def test_required_tags_accepts_provider_default_tags(example_plans):
    """The real engine hands a policy checked inputs where defaultTags are merged into tagsAll."""
    records = records_of(example_plans, "dev-ecs")
    cluster = pick(records, "aws:ecs/cluster:Cluster")
    cluster.inputs["tagsAll"] = dict(cluster.inputs.pop("tags"))
    assert not fired(analyze(records), "required-tags")


def test_data_bucket_protected(example_plans):
    records = records_of(example_plans, "platform")
    pick(records, "aws:s3/bucket:Bucket", "raw").protect = False
    edit(pick(records, "aws:s3/bucket:Bucket", "curated"), lambda p: p.__setitem__("forceDestroy", True))
    report = assert_fires(records, "data-bucket-protected", "datalake-raw", "not protected")
    assert any(
        v.resource == "datalake-curated" and "forceDestroy" in v.message for v in fired(report, "data-bucket-protected")
    )


def test_s3_public_access_blocked(example_plans):
    records = records_of(example_plans, "platform")
    pab = pick(records, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "raw")
    edit(pab, lambda p: p.pop("restrictPublicBuckets"))  # missing = the provider default, false
    assert_fires(records, "s3-public-access-blocked", pab.name, "restrictPublicBuckets")


def test_s3_owner_enforced(example_plans):
    records = records_of(example_plans, "platform")
    own = pick(records, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "raw")
    edit(own, lambda p: p["rule"].__setitem__("objectOwnership", "ObjectWriter"))
    assert_fires(records, "s3-owner-enforced", own.name, "ObjectWriter")


def test_s3_sse_kms_bucket_key(example_plans):
    records = records_of(example_plans, "platform")
    sse = pick(records, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "raw")
    edit(sse, lambda p: p["rules"][0].pop("bucketKeyEnabled"))
    assert_fires(records, "s3-sse-kms-bucket-key", sse.name, "bucket key")
    edit(sse, lambda p: p["rules"][0]["applyServerSideEncryptionByDefault"].update(sseAlgorithm="AES256"))
    report = analyze(records)
    assert any("AES256" in v.message for v in fired(report, "s3-sse-kms-bucket-key"))
    # The access-log bucket is SSE-S3 on purpose (S3 cannot deliver logs to SSE-KMS buckets) and is not flagged.
    assert {v.resource for v in fired(report, "s3-sse-kms-bucket-key")} == {sse.name}


def test_kms_rotation(example_plans):
    records = records_of(example_plans, "platform")
    edit(pick(records, "aws:kms/key:Key"), lambda p: p.pop("enableKeyRotation"))
    assert_fires(records, "kms-rotation", "datalake-key", "does not rotate")


def test_kms_rotation_does_not_apply_to_asymmetric_keys(example_plans):
    records = records_of(example_plans, "platform")
    key = edit(
        pick(records, "aws:kms/key:Key"),
        lambda p: p.update(enableKeyRotation=False, keyUsage="SIGN_VERIFY", customerMasterKeySpec="RSA_2048"),
    )
    report = analyze(records)
    assert not fired(report, "kms-rotation")
    assert ("kms-rotation", key.name) in {(rule, res) for rule, res, _ in report.not_applicable}


def test_imdsv2_required(example_plans):
    records = records_of(example_plans, "dev-ecs")
    lt = edit(pick(records, "aws:ec2/launchTemplate:LaunchTemplate"), lambda p: p.pop("metadataOptions"))
    assert_fires(records, "imdsv2-required", lt.name, "IMDSv1")


def test_no_ssh_key(example_plans):
    records = records_of(example_plans, "dev-ec2")
    lt = edit(pick(records, "aws:ec2/launchTemplate:LaunchTemplate"), lambda p: p.update(keyName="alice-laptop"))
    assert_fires(records, "no-ssh-key", lt.name, "alice-laptop")


def test_ebs_encrypted(example_plans):
    records = records_of(example_plans, "dev-ec2")
    lt = edit(
        pick(records, "aws:ec2/launchTemplate:LaunchTemplate"),
        lambda p: p["blockDeviceMappings"][0]["ebs"].pop("encrypted"),
    )
    assert_fires(records, "ebs-encrypted", lt.name, "not encrypted")
    edit(lt, lambda p: p.pop("blockDeviceMappings"))  # the AMI's snapshot settings: unencrypted by default
    assert_fires(records, "ebs-encrypted", lt.name, "AMI")


def test_no_internet_ingress(example_plans):
    records = records_of(example_plans, "platform")
    rule = edit(
        pick(records, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"),
        lambda p: (
            p.pop("referencedSecurityGroupId"),
            p.update(cidrIpv4="0.0.0.0/0", fromPort=22.0, toPort=22.0, ipProtocol="tcp"),
        ),
    )
    assert_fires(records, "no-internet-ingress", rule.name, "0.0.0.0/0", "22-22")
    sg = edit(
        pick(records, "aws:ec2/securityGroup:SecurityGroup"),
        lambda p: p.update(ingress=[{"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}]),
    )
    assert_fires(records, "no-internet-ingress", sg.name, "::/0")


def test_gpu_group_scales_from_zero(example_plans):
    records = records_of(example_plans, "dev-ecs")
    asg = edit(pick(records, "aws:autoscaling/group:Group"), lambda p: p.update(minSize=1.0))
    assert_fires(records, "gpu-group-scales-from-zero", asg.name, "minSize=1")
    asg = edit(asg, lambda p: p.update(minSize=0.0))
    asg.ignore_changes = []
    assert_fires(records, "gpu-group-scales-from-zero", asg.name, "desiredCapacity")


def test_gpu_group_rule_covers_eks_node_groups_but_not_cpu_ones():
    def node_group(name, ami, min_size, ignore):
        return ResourceRecord(
            type=rules.NODE_GROUP,
            name=name,
            urn=f"urn:pulumi:s::p::{rules.NODE_GROUP}::{name}",
            parent="",
            custom=True,
            protect=False,
            retain_on_delete=False,
            ignore_changes=ignore,
            provider="",
            inputs={"amiType": ami, "scalingConfig": {"minSize": min_size}, "instanceTypes": ["m6i.large"]},
            state={},
        )

    report = analyze(
        [
            node_group("gpu", "AL2023_x86_64_NVIDIA", 1.0, ["scalingConfig.desiredSize"]),
            node_group("gpu-whole-config-ignored", "AL2023_x86_64_NVIDIA", 0.0, ["scalingConfig"]),
            node_group("gpu-resized-by-up", "AL2023_x86_64_NVIDIA", 0.0, []),
            node_group("system", "AL2023_x86_64_STANDARD", 2.0, []),
        ]
    )
    hits = fired(report, "gpu-group-scales-from-zero")
    assert [(v.resource, "minSize=1" in v.message) for v in hits] == [("gpu", True), ("gpu-resized-by-up", False)]


def test_ecs_gpu_placement(example_plans):
    records = records_of(example_plans, "dev-ecs")
    td = edit(pick(records, "aws:ecs/taskDefinition:TaskDefinition"), lambda p: p.pop("placementConstraints"))
    assert_fires(records, "ecs-gpu-placement", td.name, "no placement constraint")
    edit(
        td,
        lambda p: p.update(
            placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ zz9.*"}]
        ),
    )
    assert_fires(records, "ecs-gpu-placement", td.name, "zz9.*")


def training_job_record(**props) -> ResourceRecord:
    """A TrainingJob resource as another program (not trainstack's) might still declare one."""
    inputs = {
        "enableManagedSpotTraining": True,
        "resourceConfig": {"instanceType": "ml.p3.2xlarge", "instanceCount": 1, "volumeSizeInGb": 50},
        **props,
    }
    return ResourceRecord(
        type="aws:sagemaker/trainingJob:TrainingJob",
        name="their-job",
        urn="urn:pulumi:s::p::aws:sagemaker/trainingJob:TrainingJob::their-job",
        parent="",
        custom=True,
        protect=False,
        retain_on_delete=False,
        ignore_changes=[],
        provider="",
        inputs=inputs,
        state=dict(inputs),
    )


def test_sagemaker_spot_has_checkpoints(example_plans):
    """The guard follows the request where it now lives: the stack's export (the job is created after `up`)."""
    plan = example_plans["dev-sagemaker"]
    outputs = copy.deepcopy(plan.run.outputs)
    outputs["trainingJobRequest"].pop("CheckpointConfig")
    urn = stack_urn(plan.run.project, plan.run.stack)
    report = analyze(records_of(example_plans, "dev-sagemaker"), stack_outputs=outputs, stack_urn=urn)
    (hit,) = fired(report, "sagemaker-spot-has-checkpoints")
    assert hit.level == "mandatory" and hit.urn == urn and "trainingJobRequest" in hit.message
    assert "spot interruption" in hit.message and "Fix" in hit.message
    # The plan as `trainstack run` sees it refuses the stack before anything is created.
    assert not report.ok
    # A TrainingJob resource of another program is still guarded.
    assert_fires([training_job_record()], "sagemaker-spot-has-checkpoints", "their-job", "spot interruption")


def test_iam_no_star_star(example_plans):
    records = records_of(example_plans, "dev-ecs")
    policy = pick(records, "aws:iam/rolePolicy:RolePolicy", "task-data")
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*:*", "Resource": "*"}]}
    edit(policy, lambda p: p.update(policy=json.dumps(admin)))
    assert_fires(records, "iam-no-star-star", policy.name, "Statement[0]")
    attachment = edit(
        pick(records, "aws:iam/rolePolicyAttachment:RolePolicyAttachment"),
        lambda p: p.update(policyArn="arn:aws:iam::aws:policy/AdministratorAccess"),
    )
    assert_fires(records, "iam-no-star-star", attachment.name, "AdministratorAccess")


def test_gpu_type_in_catalog(example_plans):
    records = records_of(example_plans, "dev-ec2")
    lt = edit(pick(records, "aws:ec2/launchTemplate:LaunchTemplate"), lambda p: p.update(instanceType="p9.48xlarge"))
    report = assert_fires(records, "gpu-type-in-catalog", lt.name, "p9.48xlarge", level="advisory")
    assert report.ok  # advisory only: the plan still passes
    job = training_job_record(
        checkpointConfig={"s3Uri": "s3://b/c/"},
        resourceConfig={"instanceType": "ml.p9.48xlarge", "instanceCount": 1, "volumeSizeInGb": 50},
    )
    assert_fires([job], "gpu-type-in-catalog", "their-job", "ml.p9.48xlarge", level="advisory")


def test_k8s_no_load_balancer():
    svc = ResourceRecord(
        type="kubernetes:core/v1:Service",
        name="tensorboard",
        urn="urn:pulumi:s::p::kubernetes:core/v1:Service::tensorboard",
        parent="",
        custom=True,
        protect=False,
        retain_on_delete=False,
        ignore_changes=[],
        provider="",
        inputs={"spec": {"type": "LoadBalancer", "ports": [{"port": 6006}]}},
        state={},
    )
    assert_fires([svc], "k8s-no-load-balancer", "tensorboard", "LoadBalancer")
    svc.inputs["spec"]["type"] = "ClusterIP"
    assert not analyze([svc]).violations


def test_cluster_holds_no_data(example_plans):
    records = records_of(example_plans, "dev-ecs")
    bucket = copy.deepcopy(pick(records_of(example_plans, "platform"), "aws:s3/bucket:Bucket", "artifacts"))
    bucket.urn = bucket.urn.replace("platform::", "dev-ecs::")
    bucket.protect = False
    records.append(bucket)
    assert_fires(records, "cluster-holds-no-data", bucket.name, "platform stack")


def test_a_queue_in_a_cluster_stack_is_refused(example_plans):
    """The teardown dead-letter queue is the platform's: a cluster's would vanish with the failures it holds."""
    records = records_of(example_plans, "dev-eks")
    queue = copy.deepcopy(pick(records_of(example_plans, "platform"), "aws:sqs/queue:Queue", "dlq"))
    queue.urn = queue.urn.replace("platform::", "dev-eks::")
    queue.inputs["tags"] = queue.state["tagsAll"] = pick(records, "aws:iam/role:Role", "teardown").inputs["tags"]
    records.append(queue)
    assert_fires(records, "cluster-holds-no-data", queue.name, "platform stack")


def test_cluster_has_teardown(example_plans):
    records = records_of(example_plans, "dev-ec2")
    schedule = pick(records, "aws:scheduler/schedule:Schedule")
    late = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=100)
    edit(schedule, lambda p: p.update(scheduleExpression=f"at({late:%Y-%m-%dT%H:%M:%S})"))
    assert_fires(records, "cluster-has-teardown", "", "more than 72 h")
    records.remove(schedule)
    assert_fires(records, "cluster-has-teardown", "", "no enabled one-time teardown")


def test_cluster_nothing_protected(example_plans):
    records = records_of(example_plans, "dev-sagemaker")
    pick(records, "aws:iam/role:Role", "execution").protect = True
    assert_fires(records, "cluster-nothing-protected", "training-execution-role", "destroy")


def test_platform_stateful_protected(example_plans):
    records = records_of(example_plans, "platform")
    pick(records, "aws:kms/key:Key").protect = False
    assert_fires(records, "platform-stateful-protected", "datalake-key", "not protected")


def test_s3_bucket_guards(example_plans):
    records = records_of(example_plans, "platform")
    pab = pick(records, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "artifacts")
    records.remove(pab)
    assert_fires(records, "s3-bucket-guards", "datalake-artifacts", "public access block")


def test_service_trust_source_account(example_plans):
    records = records_of(example_plans, "dev-ecs")
    plain = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    task_role = edit(
        pick(records, "aws:iam/role:Role", "task-role"), lambda p: p.update(assumeRolePolicy=json.dumps(plain))
    )
    report = assert_fires(
        records, "service-trust-source-account", task_role.name, "ecs-tasks.amazonaws.com", "Statement[0]"
    )
    # The execution role keeps the plain trust ECS documents for it, and is not reported.
    assert [v.resource for v in fired(report, "service-trust-source-account")] == [task_role.name]

    # ...IfExists is no requirement: it holds when the key is absent.
    if_exists = copy.deepcopy(plain)
    if_exists["Statement"][0]["Condition"] = {"StringEqualsIfExists": {"aws:SourceAccount": "123456789012"}}
    edit(task_role, lambda p: p.update(assumeRolePolicy=json.dumps(if_exists)))
    assert_fires(records, "service-trust-source-account", task_role.name, "aws:SourceAccount")

    # A role that is a task role somewhere is held to the rule even where it is also the execution role.
    records = records_of(example_plans, "dev-ecs")
    task_def = pick(records, "aws:ecs/taskDefinition:TaskDefinition")
    execution = pick(records, "aws:iam/role:Role", "execution-role")
    task_def.property_dependencies["taskRoleArn"] = [execution.urn]
    assert_fires(records, "service-trust-source-account", execution.name, "ecs-tasks.amazonaws.com")

    records = records_of(example_plans, "dev-eks")
    role = pick(records, "aws:iam/role:Role", "eks-training-role")

    def drop_source_account(p):
        trust = json.loads(p["assumeRolePolicy"])
        del trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"]
        p["assumeRolePolicy"] = json.dumps(trust)

    edit(role, drop_source_account)
    assert_fires(records, "service-trust-source-account", role.name, "pods.eks.amazonaws.com")


def test_k8s_job_pod_security(example_plans):
    records = records_of(example_plans, "dev-eks")
    job = pick(records, rules.K8S_JOB)
    container = lambda p: p["spec"]["template"]["spec"]["containers"][0]  # noqa: E731
    edit(job, lambda p: container(p)["securityContext"].update(allowPrivilegeEscalation=True))
    assert_fires(records, "k8s-job-pod-security", job.name, "allows privilege escalation")
    edit(job, lambda p: container(p).pop("securityContext"))
    edit(job, lambda p: p["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"))
    assert_fires(records, "k8s-job-pod-security", job.name, "capabilities.drop lacks ALL", "seccomp")


def test_k8s_job_memory_limit(example_plans):
    records = records_of(example_plans, "dev-eks")
    job = pick(records, rules.K8S_JOB)
    edit(job, lambda p: p["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].pop("memory"))
    assert_fires(records, "k8s-job-memory-limit", job.name, "memory limit None")
    edit(job, lambda p: p["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(memory="999Gi"))
    assert_fires(records, "k8s-job-memory-limit", job.name, "'999Gi'")


def test_k8s_job_no_service_account_token(example_plans):
    records = records_of(example_plans, "dev-eks-shared")
    job = edit(
        pick(records, rules.K8S_JOB), lambda p: p["spec"]["template"]["spec"].pop("automountServiceAccountToken")
    )
    assert_fires(records, "k8s-job-no-service-account-token", job.name, "token", level="advisory")


def test_k8s_job_non_root(example_plans):
    records = records_of(example_plans, "dev-eks")
    job = edit(
        pick(records, rules.K8S_JOB), lambda p: p["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot")
    )
    report = assert_fires(records, "k8s-job-non-root", job.name, "root", level="advisory")
    assert report.ok


def test_k8s_namespace_pod_security(example_plans):
    records = records_of(example_plans, "dev-eks")
    ns = edit(pick(records, rules.K8S_NAMESPACE), lambda p: p["metadata"]["labels"].pop(rules.PSA_ENFORCE))
    assert_fires(records, "k8s-namespace-pod-security", ns.name, "privileged")


def test_k8s_namespace_default_deny(example_plans):
    records = records_of(example_plans, "dev-eks-shared")
    policies = [r for r in records if r.type == rules.K8S_NETWORK_POLICY]
    allow = next(p for p in policies if p.inputs["spec"].get("ingress"))
    edit(allow, lambda p: p["spec"]["ingress"].append({"from": [{"namespaceSelector": {}}]}))
    assert_fires(records, "k8s-namespace-default-deny", allow.name, "every pod of the cluster")
    for p in policies:
        records.remove(p)
    assert_fires(
        records, "k8s-namespace-default-deny", "eks-training-namespace", "ts-dev-eks-shared has no default-deny"
    )


def test_eks_vpc_cni_network_policy(example_plans):
    records = records_of(example_plans, "platform-eks")
    cni = next(r for r in records if r.type == "aws:eks/addon:Addon" and r.inputs["addonName"] == "vpc-cni")
    edit(cni, lambda p: p.pop("configurationValues"))
    assert_fires(records, "eks-vpc-cni-network-policy", cni.name, "NetworkPolicies")


def test_eks_control_plane_hardened(example_plans):
    records = records_of(example_plans, "dev-eks")
    cluster = edit(pick(records, "aws:eks/cluster:Cluster"), lambda p: p.pop("encryptionConfig"))
    assert_fires(records, "eks-control-plane-hardened", cluster.name, "secrets")
    records = records_of(example_plans, "dev-eks")
    cluster = edit(
        pick(records, "aws:eks/cluster:Cluster"), lambda p: p["vpcConfig"].update(endpointPrivateAccess=False)
    )
    assert_fires(records, "eks-control-plane-hardened", cluster.name, "private endpoint")


def test_eks_control_plane_logs(example_plans):
    records = records_of(example_plans, "platform-eks")
    cluster = edit(pick(records, "aws:eks/cluster:Cluster"), lambda p: p.update(enabledClusterLogTypes=["api"]))
    assert_fires(records, "eks-control-plane-logs", cluster.name, "audit, authenticator", level="advisory")


@pytest.mark.parametrize("stack", STACKS)
def test_every_example_role_trust_names_its_source_account(example_plans, stack):
    report = example_plans[stack].policy
    assert fired(report, "service-trust-source-account") == []
    assert "service-trust-source-account" not in {rule for rule, _, _ in report.not_applicable}


RULE_TESTS = {
    "required-tags": test_required_tags,
    "data-bucket-protected": test_data_bucket_protected,
    "s3-public-access-blocked": test_s3_public_access_blocked,
    "s3-owner-enforced": test_s3_owner_enforced,
    "s3-sse-kms-bucket-key": test_s3_sse_kms_bucket_key,
    "kms-rotation": test_kms_rotation,
    "imdsv2-required": test_imdsv2_required,
    "no-ssh-key": test_no_ssh_key,
    "ebs-encrypted": test_ebs_encrypted,
    "no-internet-ingress": test_no_internet_ingress,
    "gpu-group-scales-from-zero": test_gpu_group_scales_from_zero,
    "ecs-gpu-placement": test_ecs_gpu_placement,
    "sagemaker-spot-has-checkpoints": test_sagemaker_spot_has_checkpoints,
    "iam-no-star-star": test_iam_no_star_star,
    "gpu-type-in-catalog": test_gpu_type_in_catalog,
    "k8s-no-load-balancer": test_k8s_no_load_balancer,
    "cluster-holds-no-data": test_cluster_holds_no_data,
    "cluster-has-teardown": test_cluster_has_teardown,
    "cluster-nothing-protected": test_cluster_nothing_protected,
    "platform-stateful-protected": test_platform_stateful_protected,
    "s3-bucket-guards": test_s3_bucket_guards,
    "service-trust-source-account": test_service_trust_source_account,
    "k8s-job-pod-security": test_k8s_job_pod_security,
    "k8s-job-memory-limit": test_k8s_job_memory_limit,
    "k8s-job-no-service-account-token": test_k8s_job_no_service_account_token,
    "k8s-job-non-root": test_k8s_job_non_root,
    "k8s-namespace-pod-security": test_k8s_namespace_pod_security,
    "k8s-namespace-default-deny": test_k8s_namespace_default_deny,
    "eks-vpc-cni-network-policy": test_eks_vpc_cni_network_policy,
    "eks-control-plane-hardened": test_eks_control_plane_hardened,
    "eks-control-plane-logs": test_eks_control_plane_logs,
}


def test_every_rule_has_a_test_that_makes_it_fire():
    assert set(RULE_TESTS) == {p.name for p in rules.POLICIES}


# ---------------------------------------------------------------------------------------------
# Engine semantics the offline run inherits from pulumi-policy


def test_an_unknown_value_is_an_advisory_cannot_run_not_a_violation(example_plans):
    """During preview an input may be unknown: pulumi-policy reports that the rule could not run."""
    records = records_of(example_plans, "dev-ecs")
    lt = pick(records, "aws:ec2/launchTemplate:LaunchTemplate")
    lt.inputs["metadataOptions"]["httpTokens"] = UNKNOWN_STRING
    report = analyze(records)
    hits = fired(report, "imdsv2-required")
    assert [(v.level, v.resource) for v in hits] == [("advisory", lt.name)]
    assert "can't run policy 'imdsv2-required'" in hits[0].message and "during preview" in hits[0].message
    assert report.ok


def test_a_rule_that_raises_fails_the_plan_like_it_fails_a_preview(example_plans):
    records = records_of(example_plans, "dev-ecs")
    td = edit(pick(records, "aws:ecs/taskDefinition:TaskDefinition"), lambda p: p.update(containerDefinitions="[{"))
    report = analyze(records)
    (hit,) = [v for v in report.violations if v.rule == "policy-pack-error"]
    assert hit.level == "mandatory" and hit.resource == td.name and "JSONDecodeError" in hit.message
    assert not report.ok


def test_converting_each_resource_once_for_all_rules_changes_no_verdict(example_plans, monkeypatch):
    """`trainstack plan` converts each resource's properties from protobuf once for all rules (policies/offline.py
    `_converted_once`); pulumi-policy's servicer, as `pulumi preview` runs it, converts them once per rule. The
    same violations (messages, levels, resources), skips and levels, on every example stack and on a graph with a
    violation, an unknown value, a crashing rule and the config of a throwaway platform."""
    from google.protobuf import json_format

    broken = records_of(example_plans, "dev-ecs")
    edit(pick(broken, "aws:ecs/cluster:Cluster"), lambda p: p.get("tags", {}).pop("trainstack:expires-at", None))
    pick(broken, "aws:ec2/launchTemplate:LaunchTemplate").inputs["metadataOptions"]["httpTokens"] = UNKNOWN_STRING
    edit(pick(broken, "aws:ecs/taskDefinition:TaskDefinition"), lambda p: p.update(containerDefinitions="[{"))
    throwaway = json.loads((ROOT / "trainstack" / "policies" / "throwaway-platform.json").read_text())
    cases = [(broken, {}, {"region": "us-east-1"}), (example_plans["platform"].run.resources, throwaway, None)]
    cases += [(example_plans[s].run.resources, {}, example_plans[s].run.outputs) for s in STACKS]
    conversions = []
    real = json_format.MessageToDict
    monkeypatch.setattr(json_format, "MessageToDict", lambda *a, **k: conversions.append(1) or real(*a, **k))
    for records, config, outputs in cases:
        urn = stack_urn("trainstack", "s")
        runs = {}
        for once in (True, False):
            conversions.clear()
            report = analyze(records, config=config, stack_outputs=outputs, stack_urn=urn, convert_once=once)
            runs[once] = (report, len(conversions))
        (fast, converted_once), (slow, converted_per_rule) = runs[True], runs[False]
        assert fast == slow
        assert converted_once <= 2 * len(records) + 1 < converted_per_rule / 10  # inputs and outputs, once each
    found = {(v.rule, v.level) for v in analyze(broken).violations}
    assert {
        ("required-tags", "mandatory"),
        ("imdsv2-required", "advisory"),
        ("policy-pack-error", "mandatory"),
    } <= found


def test_a_lazy_proxy_answers_every_read_as_pulumi_policys_eager_proxy():
    """What a rule can do with its properties (policies/offline.py `_LazyDictProxy`): the same values, the same
    UnknownValueError with the same property path, the same errors, keys and order, writes and `__target`."""
    from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

    from trainstack.policies.offline import _lazy_unknown_checking_proxy

    source = {
        "tags": {"trainstack:owner": "alice", "Name": UNKNOWN_STRING},
        "blockDeviceMappings": [{"ebs": {"encrypted": True, "kmsKeyId": UNKNOWN_STRING}}, {"deviceName": "/dev/x"}],
        "count": 2,
        "empty": [],
    }

    def reads(props) -> list:
        out: list = []

        def attempt(read) -> None:
            try:
                value = read()
            except UnknownValueError as exc:
                out.append(("unknown", exc.message))
            except (KeyError, IndexError, TypeError) as exc:
                out.append((type(exc).__name__, str(exc)))
            else:
                out.append(("value", _plain_proxy(value)))

        attempt(lambda: list(props))
        attempt(lambda: len(props))
        attempt(lambda: props["tags"]["trainstack:owner"])
        attempt(lambda: props["tags"]["Name"])
        attempt(lambda: props["tags"].get("Name"))
        attempt(lambda: "Name" in props["tags"])
        attempt(lambda: props["tags"] is props["tags"])
        attempt(lambda: props["blockDeviceMappings"][0]["ebs"]["kmsKeyId"])
        attempt(lambda: props["blockDeviceMappings"][-1]["deviceName"])
        attempt(lambda: props["blockDeviceMappings"][5])
        attempt(lambda: props["blockDeviceMappings"]["a"])
        attempt(lambda: [d.get("deviceName") for d in props["blockDeviceMappings"][0:2]])
        attempt(lambda: [sorted(d) for d in props["blockDeviceMappings"]])
        attempt(lambda: props["missing"])
        attempt(lambda: props.get("count"))
        attempt(lambda: dict(props["tags"].items()))
        attempt(lambda: list(props["empty"]))
        props["tags"]["new"] = "x"  # a write (pulumi-policy's remediation path)
        attempt(lambda: list(props["tags"]))
        attempt(lambda: props["tags"]["new"])
        attempt(lambda: _plain_proxy(props["__target"]))
        return out

    eager, lazy = reads(unknown_checking_proxy(copy.deepcopy(source))), reads(_lazy_unknown_checking_proxy(source))
    assert lazy == eager
    assert ("unknown", eager[3][1]) == eager[3] and ".tags.Name" in eager[3][1]
    assert source["tags"] == {"trainstack:owner": "alice", "Name": UNKNOWN_STRING}  # the shared source unwritten


def _plain_proxy(value):
    """A proxy's contents as plain Python, read through its `__target` (without raising on unknowns)."""
    from pulumi_policy.proxy import _DictProxy, _ListProxy

    if isinstance(value, _DictProxy):
        return {k: _plain_proxy(v) for k, v in value["__target"].items()}
    if isinstance(value, _ListProxy):
        return [_plain_proxy(v) for v in value["__target"]]
    if isinstance(value, dict):
        return {k: _plain_proxy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_proxy(v) for v in value]
    return value


def test_a_throwaway_platform_gets_advisories_from_the_shipped_policy_config(run_stack):
    raw = {"aws:region": "us-east-1", "trainstack:kind": "platform", "trainstack:dataLake": {"protect": False}}
    cfg = config_mod.parse_config(raw, project="trainstack", stack="scratch")
    run = run_stack(raw, stack="scratch")
    report = check_plan(cfg, run)
    assert config_for(cfg) == json.loads((ROOT / "trainstack" / "policies" / "throwaway-platform.json").read_text())
    levels = {(v.rule, v.level) for v in report.violations}
    assert levels == {("data-bucket-protected", "advisory"), ("platform-stateful-protected", "advisory")}
    assert report.ok
    assert not analyze(run.resources).ok  # without the config the same graph is refused


# ---------------------------------------------------------------------------------------------
# `trainstack plan`: the summary and the exit code


@pytest.fixture
def user_program(tmp_path):
    """A project whose program uses trainstack's tags but builds an unprotected, force-destroyed bucket."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "stacks").mkdir()
    shutil.copy(ROOT / "stacks" / "Pulumi.platform.yaml", tmp_path / "stacks" / "Pulumi.platform.yaml")
    (tmp_path / "__main__.py").write_text(
        "import pulumi_aws as aws\n"
        "from trainstack.model import tags\n"
        "from trainstack.programs.program import load_config\n"
        "cfg = load_config()\n"
        "aws.s3.Bucket('scratch', force_destroy=True, tags=tags.standard_tags(cfg))\n"
    )
    return tmp_path


def test_plan_prints_a_clean_policy_summary():
    out = runner.invoke(app, ["plan", "dev-ecs"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "Policy (pack trainstack, 31 rules: 27 mandatory, 4 advisory)" in out.output
    assert "no violations" in out.output and "plan ok" in out.output
    doc = json.loads(runner.invoke(app, ["plan", "dev-ecs", "--json"]).output)
    assert doc["policy"]["ok"] is True and doc["policy"]["violations"] == []
    assert doc["policy"]["rules"]["gpu-type-in-catalog"] == "advisory" and doc["policy"]["version"] == "0.1.0"


def test_plan_exits_2_on_a_mandatory_violation_and_names_rule_and_resource(user_program):
    out = runner.invoke(app, ["plan", "platform", "--root", str(user_program)], env={"COLUMNS": "200"})
    assert out.exit_code == 2, out.output
    for fragment in (
        "mandatory",
        "data-bucket-protected",
        "scratch",
        "forceDestroy",
        "s3-bucket-guards",
        "plan refused by policy",
    ):
        assert fragment in out.output
    doc = json.loads(runner.invoke(app, ["plan", "platform", "--json", "--root", str(user_program)]).output)
    assert doc["policy"]["ok"] is False
    assert {"rule": "data-bucket-protected", "resource": "scratch"}.items() <= next(
        v for v in doc["policy"]["violations"] if v["rule"] == "data-bucket-protected"
    ).items()


# ---------------------------------------------------------------------------------------------
# The pack layout `pulumi preview --policy-pack trainstack/policies` loads


def test_pulumi_policy_yaml_is_a_python_pack_on_the_project_virtualenv():
    doc = yaml.safe_load((ROOT / "trainstack" / "policies" / "PulumiPolicy.yaml").read_text())
    assert doc["runtime"]["name"] == "python"
    venv = (ROOT / "trainstack" / "policies" / doc["runtime"]["options"]["virtualenv"]).resolve()
    assert venv == (ROOT / ".venv").resolve() and (venv / "bin" / "python").exists()
    assert doc["version"].count(".") == 2
    assert (ROOT / "trainstack" / "policies" / "__main__.py").exists()


def test_main_builds_the_policy_pack_with_every_rule(monkeypatch, capsysbinary):
    """Run `trainstack/policies/__main__.py` the way the CLI does (runpy on the directory) with the gRPC server faked."""
    import pulumi_policy.policy as pp

    served = {}

    class FakeServer:
        def add_insecure_port(self, address):
            served["address"] = address
            return 50123

        def start(self):
            served["started"] = True

        def stop(self, grace):
            served["stopped"] = True

    def sleep(_seconds):
        raise KeyboardInterrupt  # PolicyPack serves until interrupted

    monkeypatch.setattr(pp.grpc, "server", lambda *a, **k: FakeServer())
    monkeypatch.setattr(
        pp.analyzer_pb2_grpc,
        "add_AnalyzerServicer_to_server",
        lambda servicer, server: served.setdefault("servicer", servicer),
    )
    monkeypatch.setattr(pp.time, "sleep", sleep)
    runpy.run_path(str(ROOT / "trainstack" / "policies"), run_name="__main__")

    assert served["started"] and served["stopped"] and served["address"] == "127.0.0.1:0"
    assert capsysbinary.readouterr().out == b"50123\n"  # the port the engine reads
    info = served["servicer"].GetAnalyzerInfo(None, None)
    assert info.name == "trainstack"
    from pulumi.runtime.proto import analyzer_pb2

    listed = {p.name: (p.enforcementLevel, p.policy_type) for p in info.policies}
    expected = {
        p.name: (
            analyzer_pb2.MANDATORY if p.enforcement_level.value == "mandatory" else analyzer_pb2.ADVISORY,
            analyzer_pb2.POLICY_TYPE_STACK if p in rules.STACK_POLICIES else analyzer_pb2.POLICY_TYPE_RESOURCE,
        )
        for p in rules.POLICIES
    }
    assert listed == expected


def test_guard_the_private_pulumi_policy_api_the_offline_run_relies_on():
    """trainstack/policies/offline.py drives pulumi-policy's private `_PolicyAnalyzerServicer`. If this fails after an
    upgrade, re-read pulumi_policy/policy.py, update trainstack/policies/offline.py, then this test and the pin."""
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy.policy import PolicyPack, _PolicyAnalyzerServicer

    assert importlib.metadata.version("pulumi-policy") == "1.21.0"
    init = list(inspect.signature(_PolicyAnalyzerServicer.__init__).parameters)
    assert init == [
        "self",
        "name",
        "version",
        "policies",
        "enforcement_level",
        "initial_config",
        "description",
        "display_name",
        "readme",
        "provider",
        "tags",
        "repository",
    ]
    for rpc in ("Analyze", "AnalyzeStack", "Configure", "GetAnalyzerInfo"):  # called as (request, None)
        assert len(inspect.signature(getattr(_PolicyAnalyzerServicer, rpc)).parameters) == 3, rpc
    # What the pack serves is this servicer, so the offline run and `pulumi preview` agree.
    assert "_PolicyAnalyzerServicer(" in inspect.getsource(PolicyPack.__init__)
    assert set(inspect.signature(PolicyPack.__init__).parameters) >= set(rules.pack_args())
    fields = {
        m: {f.name for f in getattr(analyzer_pb2, m).DESCRIPTOR.fields}
        for m in ("AnalyzeRequest", "AnalyzerResource", "AnalyzerResourceOptions", "AnalyzeDiagnostic")
    }
    assert {"type", "properties", "urn", "name", "options"} <= fields["AnalyzeRequest"]
    assert {"parent", "dependencies", "propertyDependencies"} <= fields["AnalyzerResource"]
    assert {"protect", "ignoreChanges", "parent"} <= fields["AnalyzerResourceOptions"]
    assert {"policyName", "message", "description", "enforcementLevel", "urn"} <= fields["AnalyzeDiagnostic"]


def test_the_pack_serves_the_engine_over_grpc_as_the_cli_starts_it(example_plans):
    """`pulumi preview --policy-pack trainstack/policies` runs `python -m pulumi.policy <engine> trainstack/policies` from the
    venv and talks gRPC to the port it prints. Do exactly that on loopback and send one real request."""
    import grpc
    from google.protobuf import empty_pb2, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    proc = subprocess.Popen(
        [sys.executable, "-m", "pulumi.policy", "127.0.0.1:0", str(ROOT / "trainstack" / "policies")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(proc.stdout.readline().strip())  # the handshake the engine reads
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert {p.name for p in info.policies} == {p.name for p in rules.POLICIES}
            lt = pick(records_of(example_plans, "dev-ecs"), "aws:ec2/launchTemplate:LaunchTemplate")
            props = struct_pb2.Struct()
            props.update({**lt.inputs, "keyName": "alice-laptop"})
            response = stub.Analyze(
                analyzer_pb2.AnalyzeRequest(type=lt.type, properties=props, urn=lt.urn, name=lt.name), timeout=30
            )
            assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
                ("no-ssh-key", analyzer_pb2.MANDATORY)
            ]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
