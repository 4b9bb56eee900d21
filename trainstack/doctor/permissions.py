"""Permissions: may the caller deploy, run and destroy exactly this stack? (`iam:SimulatePrincipalPolicy`)

IAM's own policy simulator evaluates the caller's identity policies (and the permission boundary and
Organizations SCP results it can see) for the actions each planned resource needs to be created and
destroyed, on that resource's ARN (the offline plan's ARN with the real account); `iam:PassRole` on every
role the stack creates with `iam:PassedToService` set to the service the role trusts; and `s3:PutObject`
of the code bundle into the run's artifact prefix with the lake's real bucket policy passed as
`ResourcePolicy` (the simulator does not fetch resource policies itself: SimulatePrincipalPolicy API
reference), plus `kms:GenerateDataKey` on the lake key via S3.

For an assumed-role session the policy source is the role (identity.principal_of), not the session.
The extra APIs a create calls are from the services' docs, e.g. CreateAutoScalingGroup with a launch
template needs ec2:RunInstances, ec2:CreateTags and iam:PassRole (EC2 Auto Scaling user guide, "Amazon
EC2 Auto Scaling API permissions").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trainstack.doctor.aws import is_access_denied, short_error
from trainstack.doctor.context import Context
from trainstack.doctor.facts import PlannedResource, real_arn
from trainstack.doctor.result import Check, failed, passed, skipped, warned
from trainstack.model.code_delivery import CODE_FOLDER
from trainstack.model.run_locations import run_locations

FAMILY = "permissions"
SELF, ANY, ROLE = "self", "*", "role"  # which resource an action is simulated on

# Pulumi resource type -> (actions, resource) to create, tag, read back and destroy it.
ACTIONS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "aws:autoscaling/group:Group": (
        (
            (
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:DeleteAutoScalingGroup",
                "autoscaling:CreateOrUpdateTags",
            ),
            SELF,
        ),
        (("autoscaling:DescribeAutoScalingGroups", "ec2:RunInstances", "ec2:CreateTags"), ANY),
    ),
    "aws:autoscaling/tag:Tag": ((("autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"), ANY),),
    "aws:ec2/launchTemplate:LaunchTemplate": (
        (("ec2:CreateLaunchTemplate", "ec2:DeleteLaunchTemplate", "ec2:CreateTags"), SELF),
        (("ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions"), ANY),
    ),
    "aws:ec2/placementGroup:PlacementGroup": (
        (("ec2:CreatePlacementGroup", "ec2:DeletePlacementGroup"), SELF),
        (("ec2:DescribePlacementGroups",), ANY),
    ),
    "aws:iam/role:Role": ((("iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:TagRole"), SELF),),
    "aws:iam/rolePolicy:RolePolicy": ((("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"), ROLE),),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ((("iam:AttachRolePolicy", "iam:DetachRolePolicy"), ROLE),),
    "aws:iam/instanceProfile:InstanceProfile": (
        (
            (
                "iam:CreateInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:GetInstanceProfile",
            ),
            SELF,
        ),
    ),
    "aws:cloudwatch/logGroup:LogGroup": (
        (("logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:TagResource"), SELF),
        (("logs:DescribeLogGroups",), ANY),
    ),
    "aws:ecs/cluster:Cluster": ((("ecs:CreateCluster", "ecs:DeleteCluster", "ecs:DescribeClusters"), SELF),),
    "aws:ecs/capacityProvider:CapacityProvider": (
        (("ecs:CreateCapacityProvider", "ecs:DeleteCapacityProvider"), SELF),
        (("ecs:DescribeCapacityProviders",), ANY),
    ),
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": ((("ecs:PutClusterCapacityProviders",), ANY),),
    "aws:ecs/taskDefinition:TaskDefinition": (
        (("ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition"), ANY),
    ),
    "aws:scheduler/schedule:Schedule": (
        (("scheduler:CreateSchedule", "scheduler:GetSchedule", "scheduler:DeleteSchedule"), SELF),
    ),
    "aws:sagemaker/trainingJob:TrainingJob": (
        (("sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:AddTags"), SELF),
    ),
    "aws:eks/cluster:Cluster": (
        (("eks:CreateCluster", "eks:DeleteCluster", "eks:DescribeCluster", "eks:TagResource"), SELF),
    ),
    "aws:eks/nodeGroup:NodeGroup": (
        (("eks:CreateNodegroup", "eks:DeleteNodegroup", "eks:DescribeNodegroup", "eks:TagResource"), SELF),
    ),
    "aws:eks/addon:Addon": ((("eks:CreateAddon", "eks:DeleteAddon", "eks:DescribeAddon"), SELF),),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": (
        (("eks:CreatePodIdentityAssociation", "eks:DeletePodIdentityAssociation"), SELF),
    ),
    "aws:eks/accessEntry:AccessEntry": ((("eks:CreateAccessEntry", "eks:DeleteAccessEntry"), SELF),),
    # The eks idle stop (components/idle_stop.py).
    "aws:sfn/stateMachine:StateMachine": (
        (("states:CreateStateMachine", "states:DeleteStateMachine", "states:DescribeStateMachine"), SELF),
        (("states:TagResource",), SELF),
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (
        (("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource"), SELF),
        (("cloudwatch:DescribeAlarms",), ANY),
    ),
    "aws:cloudwatch/eventRule:EventRule": (
        (("events:PutRule", "events:DeleteRule", "events:DescribeRule", "events:TagResource"), SELF),
    ),
    "aws:cloudwatch/eventTarget:EventTarget": (
        (("events:PutTargets", "events:RemoveTargets", "events:ListTargetsByRule"), ANY),
    ),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": (
        (("eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy", "eks:ListAssociatedAccessPolicies"), ANY),
    ),
    # Checked with the bucket policy below (the code bundle's PutObject).
    "aws:s3/bucketObject:BucketObject": (),
}

# What `trainstack run` calls to start, follow and stop the job, by the backend's job resource type
# (trainstack.backends.<name>.job_resources).
RUN_ACTIONS: dict[str, tuple[str, ...]] = {
    "aws:ecs/taskDefinition:TaskDefinition": ("ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask", "logs:GetLogEvents"),
    "aws:autoscaling/group:Group": (
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeScalingActivities",
        "autoscaling:UpdateAutoScalingGroup",
        "logs:GetLogEvents",
    ),
    # The job is created by `trainstack run` after `up` (iam:PassRole on the stack's execution role too,
    # which does not exist before `up`: not checked here).
    "aws:sagemaker/trainingJob:TrainingJob": (
        "sagemaker:CreateTrainingJob",
        "sagemaker:AddTags",
        "sagemaker:ListTrainingJobs",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "logs:GetLogEvents",
    ),
    "kubernetes:batch/v1:Job": ("eks:DescribeCluster", "eks:DescribeNodegroup"),
}


@dataclass(frozen=True)
class Denial:
    action: str
    resource: str
    decision: str
    why: str  # "" or "an SCP", "the permission boundary"


def simulate(
    ctx: Context,
    actions: Iterable[str],
    resources: list[str],
    *,
    resource_policy: str | None = None,
    context: list[dict[str, Any]] | None = None,
) -> list[Denial]:
    """Every (action, resource) the simulator does not allow."""
    assert ctx.identity is not None
    args: dict[str, Any] = {
        "PolicySourceArn": ctx.identity.principal_arn,
        "ActionNames": sorted(set(actions)),
        "ResourceArns": resources,
    }
    if resource_policy:
        args["ResourcePolicy"] = resource_policy
    if context:
        args["ContextEntries"] = context
    denied: list[Denial] = []
    for page in ctx.aws.client("iam").get_paginator("simulate_principal_policy").paginate(**args):
        for r in page.get("EvaluationResults", []):
            if r["EvalDecision"] == "allowed":
                continue
            why = ""
            if (r.get("OrganizationsDecisionDetail") or {}).get("AllowedByOrganizations") is False:
                why = "an Organizations SCP"
            elif (r.get("PermissionsBoundaryDecisionDetail") or {}).get("AllowedByPermissionsBoundary") is False:
                why = "the permission boundary"
            denied.append(Denial(r["EvalActionName"], r.get("EvalResourceName", "*"), r["EvalDecision"], why))
    return denied


def _role_arn(ctx: Context) -> str:
    assert ctx.identity is not None
    roles = ctx.facts.roles
    return real_arn(roles[0].arn, ctx.identity.account) if roles else f"arn:aws:iam::{ctx.identity.account}:role/*"


def _resource_calls(ctx: Context) -> tuple[dict[tuple[str, str], set[str]], list[str]]:
    """(resource ARN, call key) -> actions; and the planned types the table does not know."""
    assert ctx.identity is not None
    account = ctx.identity.account
    calls: dict[tuple[str, str], set[str]] = {}
    unknown: list[str] = []
    seen: set[str] = set()
    r: PlannedResource
    for r in ctx.facts.resources:
        entries = ACTIONS.get(r.type)
        if entries is None:
            if r.type not in seen:
                unknown.append(r.type)
            seen.add(r.type)
            continue
        for actions, where in entries:
            resource = {SELF: real_arn(r.arn, account), ANY: "*", ROLE: _role_arn(ctx)}[where]
            calls.setdefault((resource, where), set()).update(actions)
    for job_type in ctx.facts.backend.job_resources:
        calls.setdefault(("*", "run"), set()).update(RUN_ACTIONS.get(job_type, ()))
    return calls, unknown


def check_permissions(ctx: Context) -> list[Check]:
    if ctx.identity is None:
        return [skipped(FAMILY, "deploy permissions", "no AWS identity")]
    calls, unknown = _resource_calls(ctx)
    checks: list[Check] = []
    denied: list[Denial] = []
    try:
        for (resource, _), actions in sorted(calls.items()):
            denied += simulate(ctx, actions, [resource])
        passrole = _passrole(ctx)
    except Exception as exc:  # noqa: BLE001
        fix = "allow iam:SimulatePrincipalPolicy on your own identity to let the doctor check this"
        return [
            warned(
                FAMILY,
                "deploy permissions",
                f"cannot simulate them: {short_error(exc)}" if is_access_denied(exc) else short_error(exc),
                fix,
            )
        ]
    n = sum(len(a) for a in calls.values())
    principal = ctx.identity.principal_arn
    if denied:
        checks.append(
            failed(
                FAMILY,
                "deploy permissions",
                f"{principal} may not: " + _list(denied),
                "grant these actions to the identity that runs the deploy (or have an administrator lift the "
                "SCP/boundary named); the deploy and the destroy both need them",
                denied=[d.__dict__ for d in denied],
            )
        )
    else:
        checks.append(passed(FAMILY, "deploy permissions", f"{n} create/run/destroy actions allowed for {principal}"))
    if unknown:
        checks.append(
            warned(
                FAMILY,
                "deploy permissions",
                f"not simulated (the doctor has no action list for): {', '.join(sorted(unknown))}",
                "add them to trainstack/doctor/permissions.py ACTIONS",
            )
        )
    checks.append(passrole)
    checks.append(_bundle(ctx))
    return checks


def _list(denied: list[Denial]) -> str:
    parts = []
    for d in denied:
        on = "" if d.resource == "*" else f" on {d.resource}"
        parts.append(f"{d.action}{on} ({d.decision}{', by ' + d.why if d.why else ''})")
    return "; ".join(parts)


def _passrole(ctx: Context) -> Check:
    assert ctx.identity is not None
    denied: list[Denial] = []
    roles = ctx.facts.roles
    for role in roles:
        arn = real_arn(role.arn, ctx.identity.account)
        for service in role.services or ("",):
            context = (
                [{"ContextKeyName": "iam:PassedToService", "ContextKeyValues": [service], "ContextKeyType": "string"}]
                if service
                else None
            )
            denied += simulate(ctx, ["iam:PassRole"], [arn], context=context)
    if denied:
        return failed(
            FAMILY,
            "iam:PassRole",
            "the stack creates roles and hands them to services, but may not pass: " + _list(denied),
            "allow iam:PassRole on the stack's roles (their names are autonamed from the logical names shown), "
            "conditioned on iam:PassedToService if you like",
            denied=[d.__dict__ for d in denied],
        )
    return passed(FAMILY, "iam:PassRole", f"allowed on the {len(roles)} role(s) the stack creates")


def _bundle(ctx: Context) -> Check:
    """The code bundle's PutObject into the run's artifact prefix, with the lake's bucket policy."""
    name = "code bundle upload (s3:PutObject)"
    c = ctx.facts.cfg.cluster
    assert ctx.identity is not None
    if ctx.platform is None:
        return skipped(FAMILY, name, "platform outputs unreadable")
    try:
        loc = run_locations(ctx.platform.buckets, c.job.dataset, c.owner, ctx.facts.stack)
    except ValueError as exc:
        return failed(FAMILY, name, str(exc), "point trainstack:platformStack at a trainstack platform")
    bucket_arn = loc.artifacts_bucket_arn
    key = f"{loc.artifact_prefix}{CODE_FOLDER}0000.tar.gz"
    s3 = ctx.aws.client("s3")
    why = ""
    try:
        policy: str | None = s3.get_bucket_policy(Bucket=loc.artifacts_bucket)["Policy"]
    except Exception as exc:  # noqa: BLE001 - simulate without it, and say so
        policy = None
        why = short_error(exc)
    context = [
        {"ContextKeyName": "aws:SecureTransport", "ContextKeyValues": ["true"], "ContextKeyType": "boolean"},
    ]
    try:
        denied = simulate(
            ctx,
            ["s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:DeleteObject"],
            [f"{bucket_arn}/{key}"],
            resource_policy=policy,
            context=context,
        )
        denied += simulate(
            ctx,
            ["kms:GenerateDataKey", "kms:Decrypt"],
            [ctx.platform.kms_key_arn],
            context=[
                {
                    "ContextKeyName": "kms:ViaService",
                    "ContextKeyValues": [f"s3.{ctx.facts.region}.amazonaws.com"],
                    "ContextKeyType": "string",
                }
            ],
        )
    except Exception as exc:  # noqa: BLE001
        return warned(FAMILY, name, f"cannot simulate it: {short_error(exc)}", "allow iam:SimulatePrincipalPolicy")
    where = f"s3://{loc.artifacts_bucket}/{loc.artifact_prefix}{CODE_FOLDER}"
    note = "" if policy is not None else f" (without the bucket policy: {why})"
    if denied:
        return failed(
            FAMILY,
            name,
            f"writing the run's code to {where} is denied{note}: " + _list(denied),
            "grant s3:PutObject, s3:PutObjectTagging, s3:GetObject and s3:DeleteObject on "
            f"{bucket_arn}/artifacts/* and kms:GenerateDataKey/kms:Decrypt on the lake key",
            denied=[d.__dict__ for d in denied],
        )
    return passed(FAMILY, name, f"{where} writable, with the bucket policy{note}", policy=bool(policy))
