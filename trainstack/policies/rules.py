"""trainstack's CrossGuard rules: the invariants behind "no idle GPU, no lost data, no surprise".

Importable on their own (no server starts here): `trainstack/policies/__main__.py` builds the `PolicyPack`
from `POLICIES` for `pulumi preview --policy-pack trainstack/policies`, and `trainstack/policies/offline.py` runs the
same objects through pulumi-policy's analyzer in-process for `trainstack plan` and the tests.

Written for what the real engine hands a policy: a resource rule sees the provider-checked
*inputs* (defaults filled in, `tagsAll` merged), a stack rule sees *outputs* (during preview:
inputs propagated, computed values unknown). So every rule

- treats a missing key as the provider's / AWS's default (no `enableKeyRotation` = off, no
  `metadataOptions` = IMDSv1 allowed, no `encrypted` = unencrypted), and
- reads only what it needs, so an unknown value it never touches does not stop it (one it
  does touch makes pulumi-policy report "can't run during preview", advisory, and the rule
  runs for real at `up`, before the resource is created).

Enforcement: MANDATORY blocks `pulumi preview/up` and makes `trainstack plan` exit 2; ADVISORY
only warns. Everything that costs money or data is MANDATORY; `gpu-type-in-catalog` is
ADVISORY (an unknown type is only a gap in cost estimates). A team can change a level per rule
with `--policy-pack-config` (see `throwaway-platform.json`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from trainstack.model import catalog
from trainstack.model import tags as tagset

PACK_NAME = "trainstack"
DESCRIPTION = "trainstack invariants: nobody pays for an idle GPU, no teardown loses data, mistakes stop before up."
MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY


# pulumi-policy's violation callback, `report(message, urn=None)`: its `ReportViolation` alias types the
# URN as required, though the engine's callback (and every rule here) leaves it out.
Report = Callable[..., None]

# How far ahead a cluster's teardown may be: config allows ttlHours <= 72, rounded up to the hour.
MAX_TEARDOWN_HOURS = 72 + 1

BUCKETS = {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"}
VPC = "aws:ec2/vpc:Vpc"
KMS_KEY = "aws:kms/key:Key"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
ASG = "aws:autoscaling/group:Group"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SCHEDULE = "aws:scheduler/schedule:Schedule"
# What a cluster stack must never hold and a platform stack must protect: data and its keys.
STATEFUL = BUCKETS | {
    KMS_KEY,
    "aws:glue/catalogDatabase:CatalogDatabase",
    "aws:efs/fileSystem:FileSystem",
    "aws:dynamodb/table:Table",
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
}
# A queue holds messages: the teardown dead-letter queue must outlive the cluster whose calls failed, so it is
# the platform's (components/teardown_alerts.py); it holds no user data, so the platform need not protect it.
SQS_QUEUE = "aws:sqs/queue:Queue"
CLUSTER_FORBIDDEN = STATEFUL | {VPC, SQS_QUEUE}
INTERNET = {"0.0.0.0/0", "::/0"}
ADMIN_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/AdministratorAccess$")


# ---------------------------------------------------------------------------------------------
# Reading provider-checked properties


def _get(props: Any, *path: Any, default: Any = None) -> Any:
    """props[path...], or `default` where a key is missing (the provider default applies)."""
    cur = props
    for key in path:
        if isinstance(key, int):
            if not isinstance(cur, Sequence) or isinstance(cur, str) or key >= len(cur):
                return default
            cur = cur[key]
        else:
            if not isinstance(cur, Mapping) or key not in cur:
                return default
            cur = cur[key]
        if cur is None:
            return default
    return cur


def _items(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        return [value]
    return list(value)


def _true(value: Any) -> bool:
    """pulumi-aws spells some booleans as strings (launch template `encrypted: "true"`)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _num(value: Any) -> Any:
    """The engine sends every number as a float: 22.0 -> 22 for messages."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _aws_class(resource_type: str):
    """`aws:s3/bucket:Bucket` -> pulumi_aws.s3.Bucket (None when unknown)."""
    try:
        pkg, mod, cls = resource_type.split(":")
    except ValueError:
        return None
    if pkg != "aws":
        return None
    mod = mod.split("/")[0]
    for name in ("pulumi_aws",) if mod == "index" else (f"pulumi_aws.{mod}", f"pulumi_aws.{mod}_"):
        try:
            return getattr(importlib.import_module(name), cls, None)
        except ImportError:
            continue
    return None


_TAGGABLE: dict[str, bool | None] = {}  # None: a type this pulumi-aws does not know


def taggable(resource_type: str, props: Mapping[str, Any]) -> bool:
    """An AWS resource type whose schema has `tags` (from the pulumi-aws SDK class)."""
    if resource_type not in _TAGGABLE:
        cls = _aws_class(resource_type)
        _TAGGABLE[resource_type] = hasattr(cls, "tags") if cls is not None else None
    known = _TAGGABLE[resource_type]
    return ("tags" in props or "tagsAll" in props) if known is None else known


def tags_of(props: Mapping[str, Any]) -> dict[str, str]:
    """Tags of a resource: `tags`, completed by `tagsAll` (provider defaultTags) when that is needed.

    `tagsAll` is read only when `tags` lack a required key: during preview it may be unknown.
    Auto Scaling groups carry a list of {key, value, propagateAtLaunch}.
    """

    def as_map(value: Any) -> dict[str, str]:
        if isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items() if v is not None}
        return {
            str(_get(t, "key")): str(_get(t, "value", default=""))
            for t in _items(value)
            if isinstance(t, Mapping) and _get(t, "key")
        }

    tags = as_map(_get(props, "tags"))
    if all(tags.get(k) for k in tagset.required_for(tags.get(tagset.KIND, ""))):
        return tags
    return {**as_map(_get(props, "tagsAll")), **tags}


def _kind(props: Mapping[str, Any]) -> str:
    return tags_of(props).get(tagset.KIND, "")


def _gpu_type(instance_type: Any) -> bool:
    t = catalog.lookup(str(instance_type or ""))
    return bool(t and t.has_gpu)


# ---------------------------------------------------------------------------------------------
# Resource rules (run on each resource's inputs before it is created or updated)

ResourceCheck = Callable[[ResourceValidationArgs, Report], None]


def _for(types: Iterable[str], check: ResourceCheck) -> ResourceCheck:
    wanted = frozenset(types)

    def validate(args: ResourceValidationArgs, report: Report) -> None:
        if args.resource_type in wanted:
            check(args, report)

    return validate


def required_tags(args: ResourceValidationArgs, report: Report) -> None:
    if not args.resource_type.startswith("aws:") or not taggable(args.resource_type, args.props):
        return
    tags = tags_of(args.props)
    kind = tags.get(tagset.KIND, "")
    missing = [k for k in tagset.required_for(kind) if not tags.get(k)]
    if missing:
        report(
            f"{args.name} ({args.resource_type}) has no {', '.join(missing)} tag: the reaper, `trainstack ls` "
            "and cost reports find resources by them. Fix: pass trainstack.model.tags.standard_tags(cfg) as `tags` "
            "(or set them as the aws provider's defaultTags)."
        )


def data_bucket_protected(args: ResourceValidationArgs, report: Report) -> None:
    problems = []
    if not args.opts.protect:
        problems.append("is not protected (ResourceOptions(protect=True))")
    if _true(_get(args.props, "forceDestroy")):
        problems.append("has forceDestroy=true (destroy would delete every object)")
    if problems:
        report(
            f"bucket {args.name} {' and '.join(problems)}: a teardown must never lose data. Fix: "
            "protect=True and force_destroy=False; throwaway platforms opt out with "
            "--policy-pack-config trainstack/policies/throwaway-platform.json."
        )


_PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
_PUBLIC_ACLS = {"public-read", "public-read-write", "authenticated-read"}


def s3_public_access_blocked(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
        off = [f for f in _PAB_FLAGS if not _true(_get(args.props, f))]  # each defaults to false
        if off:
            report(f"{args.name} leaves {', '.join(off)} off. Fix: set all four public access block flags to true.")
    elif args.resource_type in BUCKETS | {"aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2"}:
        acl = _get(args.props, "acl")
        if acl in _PUBLIC_ACLS:
            report(f"{args.name} has the public canned ACL {acl!r}. Fix: no ACL (ownership is BucketOwnerEnforced).")


def s3_owner_enforced(args: ResourceValidationArgs, report: Report) -> None:
    owner = _get(args.props, "rule", "objectOwnership")
    if owner != "BucketOwnerEnforced":
        report(
            f"{args.name} sets objectOwnership={owner!r}: ACLs stay enabled. "
            "Fix: rule.object_ownership='BucketOwnerEnforced'."
        )


_SSE_CONFIGS = {
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
}
_LOGGING = {"aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2"}


def _sse_problems(name: str, props: Mapping[str, Any]) -> list[str]:
    rules = _items(_get(props, "rules"))
    if not rules:
        return [
            f"{name} has no encryption rule. Fix: sse_algorithm='aws:kms' with the data lake key and "
            "bucket_key_enabled=True."
        ]
    problems = []
    for i, rule in enumerate(rules):
        algorithm = _get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
        if algorithm != "aws:kms":  # DSSE-KMS takes no bucket key; SSE-S3 / SSE-C are not KMS
            problems.append(
                f"{name} rules[{i}] uses sseAlgorithm={algorithm!r}, not SSE-KMS. "
                "Fix: sse_algorithm='aws:kms' with the data lake key."
            )
        if not _true(_get(rule, "bucketKeyEnabled")):
            problems.append(
                f"{name} rules[{i}] has no S3 bucket key (bucketKeyEnabled defaults to false): every "
                "object request becomes a billed KMS call. Fix: bucket_key_enabled=True."
            )
    return problems


def s3_sse_kms_bucket_key(args: StackValidationArgs, report: Report) -> None:
    # A stack rule because of one exception: S3 delivers server access logs only to SSE-S3 buckets
    # (docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html), and only
    # the graph says which bucket is a `targetBucket` (property dependencies are known in preview).
    log_targets = {
        d.urn
        for r in args.resources
        if r.resource_type in _LOGGING
        for d in r.property_dependencies.get("targetBucket", [])
    }
    for r in args.resources:
        if r.resource_type not in _SSE_CONFIGS:
            continue
        buckets = {d.urn for d in r.property_dependencies.get("bucket", [])}
        if buckets and buckets <= log_targets:
            continue
        for problem in _sse_problems(r.name, r.props):
            report(problem, r.urn)


def kms_rotation(args: ResourceValidationArgs, report: Report) -> None:
    spec = _get(args.props, "customerMasterKeySpec", default="SYMMETRIC_DEFAULT")
    usage = _get(args.props, "keyUsage", default="ENCRYPT_DECRYPT")
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        args.not_applicable(f"AWS rotates only symmetric encryption keys ({spec}, {usage})")
    if not _true(_get(args.props, "enableKeyRotation")):
        report(
            f"KMS key {args.name} does not rotate (enableKeyRotation defaults to false). Fix: enable_key_rotation=True."
        )


def _metadata_options(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return _get(props, "metadataOptions", default={})


def imdsv2_required(args: ResourceValidationArgs, report: Report) -> None:
    md = _metadata_options(args.props)
    if _get(md, "httpEndpoint") == "disabled":
        return
    tokens = _get(md, "httpTokens")
    if tokens != "required":
        report(
            f"{args.name} allows IMDSv1 (httpTokens={tokens!r}; unset means the AMI/account default): a "
            "server-side request forgery could read the node's credentials. "
            "Fix: metadata_options http_tokens='required'."
        )


def no_ssh_key(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == "aws:ec2/keyPair:KeyPair":
        report(f"{args.name} creates an EC2 key pair. Fix: reach nodes with SSM Session Manager, not SSH keys.")
        return
    key = _get(args.props, "keyName") or _get(args.props, "remoteAccess", "ec2SshKey")
    if key:
        report(
            f"{args.name} installs the SSH key {key!r}. Fix: drop key_name; nodes are reached with SSM Session Manager."
        )


def ebs_encrypted(args: ResourceValidationArgs, report: Report) -> None:
    t = args.resource_type
    if t == "aws:ebs/volume:Volume":
        if not _true(_get(args.props, "encrypted")):
            report(f"EBS volume {args.name} is not encrypted. Fix: encrypted=True.")
        return
    if t == LAUNCH_TEMPLATE:
        mappings = [m for m in _items(_get(args.props, "blockDeviceMappings")) if _get(m, "ebs") is not None]
        if not mappings:
            report(
                f"{args.name} maps no EBS root volume, so the AMI's snapshot settings apply (unencrypted "
                "unless the account encrypts by default). Fix: block_device_mappings with ebs encrypted='true'."
            )
        for m in mappings:
            if not _true(_get(m, "ebs", "encrypted")):
                report(f"{args.name} volume {_get(m, 'deviceName')!r} is not encrypted. Fix: ebs encrypted='true'.")
        return
    if t == INSTANCE:
        devices = [("root", _get(args.props, "rootBlockDevice", default={}))]
        devices += [(_get(d, "deviceName"), d) for d in _items(_get(args.props, "ebsBlockDevices"))]
        for name, device in devices:
            if not _true(_get(device, "encrypted")):
                report(f"{args.name} volume {name!r} is not encrypted. Fix: encrypted=True.")


def _internet_cidrs(rule: Mapping[str, Any]) -> list[str]:
    cidrs = _items(_get(rule, "cidrBlocks")) + _items(_get(rule, "ipv6CidrBlocks"))
    cidrs += [c for c in (_get(rule, "cidrIpv4"), _get(rule, "cidrIpv6")) if c]
    return sorted({c for c in cidrs if c in INTERNET})


def no_internet_ingress(args: ResourceValidationArgs, report: Report) -> None:
    t = args.resource_type
    if t in ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
        rules = _items(_get(args.props, "ingress"))
    elif t == "aws:ec2/securityGroupRule:SecurityGroupRule":
        rules = [args.props] if _get(args.props, "type") == "ingress" else []
    else:  # aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule
        rules = [args.props]
    for rule in rules:
        open_to = _internet_cidrs(rule)
        if open_to:
            report(
                f"{args.name} allows inbound traffic from {', '.join(open_to)} (ports "
                f"{_num(_get(rule, 'fromPort', default='all'))}-{_num(_get(rule, 'toPort', default='all'))}). "
                "Fix: allow only "
                "the cluster's own security group; reach nodes with SSM Session Manager."
            )


def _asg_instance_types(props: Mapping[str, Any]) -> list[str]:
    overrides = _items(_get(props, "mixedInstancesPolicy", "launchTemplate", "overrides"))
    return [str(_get(o, "instanceType")) for o in overrides if _get(o, "instanceType")]


def gpu_group_scales_from_zero(args: ResourceValidationArgs, report: Report) -> None:
    ignored = set(args.opts.ignore_changes or [])
    if args.resource_type == ASG:
        gpu = any(_gpu_type(t) for t in _asg_instance_types(args.props)) or _kind(args.props) == "cluster"
        min_size, desired_key = _get(args.props, "minSize"), "desiredCapacity"
    else:  # EKS managed node group
        ami = str(_get(args.props, "amiType", default=""))
        gpu = "NVIDIA" in ami or "GPU" in ami or any(_gpu_type(t) for t in _items(_get(args.props, "instanceTypes")))
        min_size, desired_key = _get(args.props, "scalingConfig", "minSize"), "scalingConfig.desiredSize"
    if not gpu:
        args.not_applicable("not a GPU group")
    if min_size not in (0, 0.0):
        report(
            f"GPU group {args.name} keeps minSize={_num(min_size)}: those GPUs bill while nothing trains. "
            "Fix: min_size=0 (the scheduler/autoscaler scales up for a job)."
        )
    # Ignoring the whole object ("scalingConfig") covers its desired size too.
    if not any(desired_key == path or desired_key.startswith(path + ".") for path in ignored):
        report(
            f"GPU group {args.name} does not ignore {desired_key}: every `pulumi up` would reset the size the "
            f"autoscaler chose (killing running training). Fix: ResourceOptions(ignore_changes=['{desired_key}'])."
        )


_PLACEMENT = re.compile(r"^attribute:ecs\.instance-type\s*=~\s*([a-z][a-z0-9-]*)\.\*$")


def ecs_gpu_placement(args: ResourceValidationArgs, report: Report) -> None:
    raw = _get(args.props, "containerDefinitions", default="[]")
    containers = json.loads(raw) if isinstance(raw, str) else list(raw)
    gpus = [
        c.get("name")
        for c in containers
        if any(str(r.get("type")).upper() == "GPU" for r in c.get("resourceRequirements") or [])
    ]
    if not gpus:
        args.not_applicable("the task asks for no GPU")
    families = []
    for pc in _items(_get(args.props, "placementConstraints")):
        m = _PLACEMENT.match(str(_get(pc, "expression", default="")).strip())
        if _get(pc, "type") == "memberOf" and m:
            families.append(m.group(1))
    if not families:
        report(
            f"task definition {args.name} asks for GPUs ({', '.join(map(str, gpus))}) but has no placement "
            "constraint on the GPU family, so ECS may place it on an instance whose GPU it was not built for. "
            f"Fix: placement_constraints=[{{type: memberOf, expression: '{catalog.placement_expression('p3')}'}}] "
            "with your family."
        )
    for family in families:
        if not any(t.family == family or catalog.matches_placement(t.name, family) for t in catalog.gpu_types()):
            report(
                f"task definition {args.name} is pinned to {family}.*, which matches no GPU type in the "
                "catalog. Fix: use the family of trainstack:gpu.instanceTypes."
            )


STACK = "pulumi:pulumi:Stack"
TRAINING_JOB = "aws:sagemaker/trainingJob:TrainingJob"
# The sagemaker backend's export of its job's CreateTrainingJob request (SageMakerOutputs.training_job_request).
TRAINING_JOB_REQUEST = "trainingJobRequest"


def sagemaker_spot_has_checkpoints(args: StackValidationArgs, report: Report) -> None:
    """Where a SageMaker job's request lives: trainstack's clusters export it (the job is created after `up`,
    see components/sagemaker_training_job.py), other programs may still declare a TrainingJob resource."""
    found = False
    for r in args.resources:
        if r.resource_type == STACK and isinstance(_get(r.props, TRAINING_JOB_REQUEST), Mapping):
            found = True
            # Imported here: only a SageMaker stack exports a job request (a plan of any other imports none of it).
            from trainstack.model.sagemaker_request import checkpoint_problem

            problem = checkpoint_problem(_plain(_get(r.props, TRAINING_JOB_REQUEST)))
            if problem:
                report(f"the exported {TRAINING_JOB_REQUEST}: {problem}", r.urn)
        elif r.resource_type == TRAINING_JOB:
            found = True
            if _true(_get(r.props, "enableManagedSpotTraining")) and not _get(r.props, "checkpointConfig", "s3Uri"):
                report(
                    f"spot training job {r.name} writes no checkpoints: every spot interruption restarts it from "
                    "zero. Fix: checkpoint_config s3_uri under the data lake's checkpoints/ prefix "
                    "(trainstack:sagemaker.checkpoints: true).",
                    r.urn,
                )
    if not found:
        args.not_applicable("no SageMaker training job or job request in the stack")


def _plain(value: Any) -> Any:
    """A policy property (pulumi-policy's unknown-checking proxies) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_POLICY_DOC_TYPES = {
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
}
_ATTACHMENT_TYPES = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
}


def _star_statements(document: Any) -> list[int]:
    doc = json.loads(document) if isinstance(document, str) else document
    out = []
    for i, st in enumerate(_items(_get(doc, "Statement"))):
        if _get(st, "Effect") != "Allow":
            continue
        actions = _items(_get(st, "Action"))
        if any(a in ("*", "*:*") for a in actions) or (_get(st, "NotAction") and "*" in _items(_get(st, "Resource"))):
            out.append(i)
    return out


def iam_no_star_star(args: ResourceValidationArgs, report: Report) -> None:
    t = args.resource_type
    if t in _ATTACHMENT_TYPES:
        arn = str(_get(args.props, "policyArn", default=""))
        if ADMIN_POLICY_ARN.match(arn):
            report(
                f"{args.name} attaches AdministratorAccess. Fix: a policy scoped to the actions and resources "
                "the role needs (trainstack.model.iam_documents)."
            )
        return
    documents = []
    if t in _POLICY_DOC_TYPES:
        documents.append(("policy", _get(args.props, "policy")))
    elif t == "aws:iam/role:Role":
        documents += [
            (f"inlinePolicies[{i}]", _get(p, "policy"))
            for i, p in enumerate(_items(_get(args.props, "inlinePolicies")))
        ]
        for arn in _items(_get(args.props, "managedPolicyArns")):
            if ADMIN_POLICY_ARN.match(str(arn)):
                report(f"role {args.name} carries AdministratorAccess. Fix: a scoped policy.")
    for where, document in documents:
        if not document:
            continue
        for i in _star_statements(document):
            report(
                f"{args.name} {where} Statement[{i}] allows every action ('*:*'). Fix: name the actions "
                "and resources (trainstack.model.iam_documents builds least-privilege documents)."
            )


_ACCELERATED = re.compile(r"^(ml\.)?(p|g)\d")


def gpu_type_in_catalog(args: ResourceValidationArgs, report: Report) -> None:
    t = args.resource_type
    if t in (LAUNCH_TEMPLATE, INSTANCE):
        types = _items(_get(args.props, "instanceType"))
    elif t == ASG:
        types = _asg_instance_types(args.props)
    elif t == NODE_GROUP:
        types = _items(_get(args.props, "instanceTypes"))
    else:  # SageMaker training job
        types = _items(_get(args.props, "resourceConfig", "instanceType"))
    for name in types:
        if _ACCELERATED.match(str(name)) and catalog.lookup(str(name)) is None:
            report(
                f"{args.name} uses {name}, which trainstack's catalog does not know: no GPU count, driver or "
                "price checks, and cost estimates leave it out. Fix: add it to trainstack/model/catalog.py."
            )


def k8s_no_load_balancer(args: ResourceValidationArgs, report: Report) -> None:
    if _get(args.props, "spec", "type") == "LoadBalancer":
        report(
            f"Service {args.name} is of type LoadBalancer: the cloud controller creates a load balancer "
            "outside Pulumi's graph that `destroy` does not remove, and gives it a public address. "
            "Fix: type ClusterIP (training needs no inbound traffic)."
        )


# ---- Kubernetes workloads and namespaces (the eks backend; any program's own objects alike)

K8S_JOB = "kubernetes:batch/v1:Job"
K8S_NAMESPACE = "kubernetes:core/v1:Namespace"
K8S_NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


def _pod_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return _get(props, "spec", "template", "spec", default={})


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in _items(_get(pod, "containers")) + _items(_get(pod, "initContainers")) if isinstance(c, Mapping)]


def k8s_job_pod_security(args: ResourceValidationArgs, report: Report) -> None:
    """What the `restricted` Pod Security Standard asks of a container that no training job needs to break
    (kubernetes.io/docs/concepts/security/pod-security-standards): no privilege (escalation), every
    capability dropped, a seccomp profile. A run as root is the namespace's business (`baseline`)."""
    pod = _pod_spec(args.props)
    pod_seccomp = _get(pod, "securityContext", "seccompProfile", "type")
    for c in _containers(pod):
        name, sc = _get(c, "name", default="?"), _get(c, "securityContext", default={})
        problems = []
        if _true(_get(sc, "privileged")):
            problems.append("is privileged")
        if _get(sc, "allowPrivilegeEscalation") is not False:
            problems.append("allows privilege escalation (allowPrivilegeEscalation defaults to true)")
        if "ALL" not in _items(_get(sc, "capabilities", "drop")):
            problems.append("keeps the runtime's default capabilities (capabilities.drop lacks ALL)")
        if _get(sc, "seccompProfile", "type", default=pod_seccomp) not in ("RuntimeDefault", "Localhost"):
            problems.append("runs without a seccomp profile")
        if problems:
            report(
                f"Job {args.name} container {name} {'; '.join(problems)}. Fix: securityContext "
                "{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}} and a pod securityContext "
                "seccompProfile {type: RuntimeDefault} (trainstack.model.eks_request.training_job does)."
            )


def k8s_job_memory_limit(args: ResourceValidationArgs, report: Report) -> None:
    """A container without a memory limit (or with one above its request) can take its node into memory
    pressure, where the kubelet evicts whatever it picks (on a shared cluster: another tenant's run);
    at its limit the kernel kills only it (OOMKilled, which the follower reports)."""
    for c in _containers(_pod_spec(args.props)):
        limit = _get(c, "resources", "limits", "memory")
        request = _get(c, "resources", "requests", "memory", default=limit)  # Kubernetes: request = limit
        if limit is None or str(limit) != str(request):
            report(
                f"Job {args.name} container {_get(c, 'name', default='?')} has memory limit {limit!r} and request "
                f"{request!r}. Fix: resources.limits.memory equal to resources.requests.memory."
            )


def k8s_job_no_service_account_token(args: ResourceValidationArgs, report: Report) -> None:
    if _get(_pod_spec(args.props), "automountServiceAccountToken") is not False:
        report(
            f"Job {args.name} mounts a Kubernetes service account token (automountServiceAccountToken defaults to "
            "true): code in it could call the Kubernetes API as its service account. Fix: "
            "automountServiceAccountToken: false unless the job calls the API (EKS Pod Identity does not need it)."
        )


def k8s_job_runs_as_non_root(args: ResourceValidationArgs, report: Report) -> None:
    pod = _pod_spec(args.props)
    for c in _containers(pod):
        non_root = _get(c, "securityContext", "runAsNonRoot", default=_get(pod, "securityContext", "runAsNonRoot"))
        if non_root is not True:
            report(
                f"Job {args.name} container {_get(c, 'name', default='?')} may run as root. Fix: runAsNonRoot: true "
                "with a runAsUser (trainstack:eks.runAsUser), unless the image needs root."
            )


def k8s_namespace_pod_security(args: ResourceValidationArgs, report: Report) -> None:
    level = _get(args.props, "metadata", "labels", PSA_ENFORCE)
    if level not in ("baseline", "restricted"):
        report(
            f"Namespace {args.name} enforces Pod Security level {level!r} (no label: privileged): any pod there "
            "may run privileged or on the host's network. Fix: metadata.labels "
            f"{{{PSA_ENFORCE}: restricted}} (baseline for images that need root)."
        )


def eks_vpc_cni_network_policy(args: ResourceValidationArgs, report: Report) -> None:
    if _get(args.props, "addonName") != "vpc-cni":
        args.not_applicable("not the VPC CNI add-on")
    raw = _get(args.props, "configurationValues", default="{}")
    values = json.loads(raw) if isinstance(raw, str) and raw.strip() else (raw or {})
    if str(_get(values, "enableNetworkPolicy", default="false")).lower() != "true":
        report(
            f"add-on {args.name} (vpc-cni) does not enforce Kubernetes NetworkPolicies: every pod reaches every "
            "other pod (another run's rendezvous store and NCCL ports). Fix: configuration_values "
            '{"enableNetworkPolicy": "true"} (VPC CNI v1.14 or later).'
        )


def eks_control_plane(args: ResourceValidationArgs, report: Report) -> None:
    problems = []
    encryption = _items(_get(args.props, "encryptionConfig"))
    if not any("secrets" in _items(_get(e, "resources")) and _get(e, "provider", "keyArn") for e in encryption):
        problems.append(
            "does not envelope-encrypt Kubernetes secrets with a KMS key of yours (encryption_config "
            "{provider: {key_arn: <the platform key>}, resources: [secrets]})"
        )
    if not _true(_get(args.props, "vpcConfig", "endpointPrivateAccess")):
        problems.append(
            "has no private endpoint, so nodes reach the API over the internet (vpc_config endpoint_private_access=True)"
        )
    for problem in problems:
        report(f"EKS cluster {args.name} {problem}. Fix: build it with trainstack.components.eks_control_plane.")


def eks_control_plane_logs(args: ResourceValidationArgs, report: Report) -> None:
    missing = [t for t in ("audit", "authenticator") if t not in _items(_get(args.props, "enabledClusterLogTypes"))]
    if missing:
        report(
            f"EKS cluster {args.name} does not log {', '.join(missing)}: who did what through the Kubernetes API "
            "leaves no trace. Fix: enabled_cluster_log_types [audit, authenticator] (trainstack:eks.controlPlaneLogs)."
        )


def _resource_rule(
    name: str, description: str, types: Iterable[str] | None, check: ResourceCheck, level: EnforcementLevel = MANDATORY
) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name,
        description=description,
        enforcement_level=level,
        validate=check if types is None else _for(types, check),
    )


# ---------------------------------------------------------------------------------------------
# Stack rules (run on the whole graph after the resource rules)


def stack_kind(resources: Sequence[PolicyResource]) -> str:
    """`cluster` or `platform` from the resources' trainstack:kind tags ('' for a foreign program)."""
    kinds = {_kind(r.props) for r in resources if r.resource_type.startswith("aws:")}
    return "cluster" if "cluster" in kinds else "platform" if "platform" in kinds else ""


StackCheck = Callable[[StackValidationArgs, Report], None]


def _in_kind(kind: str, check: StackCheck) -> StackCheck:
    def validate(args: StackValidationArgs, report: Report) -> None:
        if stack_kind(args.resources) != kind:
            args.not_applicable(f"not a {kind} stack (no resource tagged trainstack:kind={kind})")
        check(args, report)

    return validate


def cluster_holds_no_data(args: StackValidationArgs, report: Report) -> None:
    for r in args.resources:
        if r.resource_type in CLUSTER_FORBIDDEN:
            report(
                f"cluster stack creates {r.name} ({r.resource_type}): destroying the cluster would delete it. "
                "Fix: keep data, keys and networks in the platform stack and read them through "
                "trainstack:platformStack.",
                r.urn,
            )


def cluster_nothing_protected(args: StackValidationArgs, report: Report) -> None:
    for r in args.resources:
        if r.opts.protect:
            report(
                f"cluster stack protects {r.name} ({r.resource_type}): `pulumi destroy` would stop halfway and "
                "leave GPUs billing. Fix: no protect=True in a cluster stack.",
                r.urn,
            )


_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def cluster_has_teardown(args: StackValidationArgs, report: Report) -> None:
    latest = _now() + dt.timedelta(hours=MAX_TEARDOWN_HOURS)
    times = []
    for r in args.resources:
        if r.resource_type != SCHEDULE or _get(r.props, "state", default="ENABLED") != "ENABLED":
            continue
        m = _AT.match(str(_get(r.props, "scheduleExpression", default="")))
        zone = _get(r.props, "scheduleExpressionTimezone", default="UTC")
        if m and zone in ("UTC", "Etc/UTC"):
            times.append(dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=dt.timezone.utc))
    if not times:
        report(
            "cluster stack has no enabled one-time teardown schedule (EventBridge Scheduler at(...), UTC): a "
            "forgotten cluster would bill forever. Fix: an AutoTeardown (components/auto_teardown.py) at "
            "trainstack:expires-at."
        )
    elif min(times) > latest:
        report(
            f"cluster stack's first teardown is at {min(times):%Y-%m-%dT%H:%M:%SZ}, more than "
            f"{MAX_TEARDOWN_HOURS - 1} h away. Fix: trainstack:ttlHours <= 72 (or an earlier trainstack:expiresAt)."
        )


def platform_stateful_protected(args: StackValidationArgs, report: Report) -> None:
    for r in args.resources:
        if r.resource_type in STATEFUL and not r.opts.protect:
            report(
                f"platform resource {r.name} ({r.resource_type}) holds data but is not protected: `pulumi "
                "destroy` would delete it. Fix: protect=True (trainstack:dataLake.protect: true).",
                r.urn,
            )


_BUCKET_GUARDS = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "public access block",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "ownership controls",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "default encryption configuration",
}


def s3_bucket_guards(args: StackValidationArgs, report: Report) -> None:
    # A guard belongs to the bucket it depends on: known during preview, unlike the bucket's name.
    guarded: dict[str, set[str]] = {}
    for r in args.resources:
        if r.resource_type in _BUCKET_GUARDS:
            for dep in r.dependencies:
                guarded.setdefault(dep.urn, set()).add(r.resource_type)
    for r in args.resources:
        if r.resource_type in BUCKETS:
            missing = [what for t, what in _BUCKET_GUARDS.items() if t not in guarded.get(r.urn, set())]
            if missing:
                report(
                    f"bucket {r.name} has no {', no '.join(missing)}. Fix: build buckets with "
                    "trainstack.components.data_lake.DataLake (or add the missing resources for this bucket).",
                    r.urn,
                )


def _namespace_of(r: PolicyResource) -> str | None:
    name = _get(r.props, "metadata", "name" if r.resource_type == K8S_NAMESPACE else "namespace")
    return str(name) if isinstance(name, str) else None


def _admits_anyone(rule: Mapping[str, Any], direction: str) -> bool:
    """An ingress/egress rule with no peers, or a peer that is every namespace, admits every pod in the cluster."""
    peers = _items(_get(rule, direction))
    return not peers or any(
        isinstance(p, Mapping) and _get(p, "namespaceSelector") == {} and not _get(p, "ipBlock") for p in peers
    )


def k8s_namespace_default_deny(args: StackValidationArgs, report: Report) -> None:
    """Every namespace a stack creates denies by default and admits no other namespace's pods, so tenants of a
    shared cluster cannot reach each other's unauthenticated rendezvous stores or NCCL ports."""
    policies: dict[str, list[PolicyResource]] = {}
    for r in args.resources:
        if r.resource_type == K8S_NETWORK_POLICY and _namespace_of(r):
            policies.setdefault(str(_namespace_of(r)), []).append(r)
    for r in args.resources:
        if r.resource_type != K8S_NAMESPACE or _namespace_of(r) is None:
            continue
        ns = str(_namespace_of(r))
        mine = policies.get(ns, [])
        deny = [
            p
            for p in mine
            if _get(p.props, "spec", "podSelector") == {}
            and {"Ingress", "Egress"} <= set(_items(_get(p.props, "spec", "policyTypes")))
        ]
        if not deny:
            report(
                f"namespace {ns} has no default-deny NetworkPolicy (podSelector {{}}, policyTypes [Ingress, Egress]): "
                "any pod in the cluster reaches its pods. Fix: trainstack.model.eks_request.network_policies(ns).",
                r.urn,
            )
        for p in mine:
            if any(_admits_anyone(rule, "from") for rule in _items(_get(p.props, "spec", "ingress"))):
                report(
                    f"NetworkPolicy {p.name} in namespace {ns} admits ingress from every pod of the cluster. Fix: "
                    "`from: [{podSelector: {}}]` (this namespace's pods only).",
                    p.urn,
                )


# Service principals that assume a role on a workload's behalf and set aws:SourceAccount when they do
# (Amazon ECS Developer Guide, "Amazon ECS task IAM role"; EKS Best Practices Guide on Pod Identity).
# Without the condition, the same service acting for another account could be steered to this role.
SOURCE_SCOPED_SERVICES = ("ecs-tasks.amazonaws.com", "pods.eks.amazonaws.com")
# Operators that require the key to be present and equal (IfExists and negated forms do not).
_SOURCE_OPERATORS = {"stringequals", "stringlike", "stringequalsignorecase"}


def _trust_services(statement: Mapping[str, Any]) -> set[str]:
    principal = _get(statement, "Principal", default={})
    return {str(s) for s in _items(_get(principal, "Service"))} if isinstance(principal, Mapping) else set()


def _requires_source_account(statement: Mapping[str, Any]) -> bool:
    condition = _get(statement, "Condition", default={})
    return any(
        str(op).lower() in _SOURCE_OPERATORS
        and any(str(k).lower() == "aws:sourceaccount" and v for k, v in (keys or {}).items())
        for op, keys in (condition.items() if isinstance(condition, Mapping) else [])
    )


def _execution_only_roles(resources: Sequence[PolicyResource]) -> set[str]:
    """Roles that ECS task definitions use only as their execution role (ECS documents no source keys for it)."""
    execution: set[str] = set()
    task: set[str] = set()
    for r in resources:
        if r.resource_type == "aws:ecs/taskDefinition:TaskDefinition":
            execution |= {d.urn for d in r.property_dependencies.get("executionRoleArn", [])}
            task |= {d.urn for d in r.property_dependencies.get("taskRoleArn", [])}
    return execution - task


def service_trust_source_account(args: StackValidationArgs, report: Report) -> None:
    execution_only = _execution_only_roles(args.resources)
    for r in args.resources:
        if r.resource_type != "aws:iam/role:Role":
            continue
        document = _get(r.props, "assumeRolePolicy")
        if not isinstance(document, (str, Mapping)):
            continue  # unknown until the graph resolves it; `up` runs the rule on the value
        doc = json.loads(document) if isinstance(document, str) else document
        for i, st in enumerate(_items(_get(doc, "Statement"))):
            services = _trust_services(st) & set(SOURCE_SCOPED_SERVICES)
            if _get(st, "Effect") != "Allow" or not services or _requires_source_account(st):
                continue
            if services == {"ecs-tasks.amazonaws.com"} and r.urn in execution_only:
                continue
            report(
                f"role {r.name} trusts {', '.join(sorted(services))} (Statement[{i}]) without an aws:SourceAccount "
                "condition: the service acting for another account could assume it. Fix: "
                '"Condition": {"StringEquals": {"aws:SourceAccount": "<account id>"}} '
                "(trainstack.model.iam_documents.ecs_task_trust / eks_pod_identity_trust(source_account=...)).",
                r.urn,
            )


# ---------------------------------------------------------------------------------------------
# The pack

RESOURCE_POLICIES = [
    _resource_rule(
        "required-tags",
        "AWS resources carry the trainstack owner/stack/kind/backend (and, in a cluster, expires-at) tags.",
        None,
        required_tags,
    ),
    _resource_rule(
        "data-bucket-protected", "S3 buckets are protected and never force-destroyed.", BUCKETS, data_bucket_protected
    ),
    _resource_rule(
        "s3-public-access-blocked",
        "S3 public access blocks set all four flags; no public ACLs.",
        BUCKETS
        | {
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "aws:s3/bucketAcl:BucketAcl",
            "aws:s3/bucketAclV2:BucketAclV2",
        },
        s3_public_access_blocked,
    ),
    _resource_rule(
        "s3-owner-enforced",
        "S3 object ownership is BucketOwnerEnforced (ACLs disabled).",
        {"aws:s3/bucketOwnershipControls:BucketOwnershipControls"},
        s3_owner_enforced,
    ),
    _resource_rule("kms-rotation", "Symmetric KMS keys rotate automatically.", {KMS_KEY}, kms_rotation),
    _resource_rule(
        "imdsv2-required", "Instances require IMDSv2 (session tokens).", {LAUNCH_TEMPLATE, INSTANCE}, imdsv2_required
    ),
    _resource_rule(
        "no-ssh-key",
        "No SSH key pairs on nodes (SSM Session Manager instead).",
        {LAUNCH_TEMPLATE, INSTANCE, NODE_GROUP, "aws:ec2/keyPair:KeyPair"},
        no_ssh_key,
    ),
    _resource_rule(
        "ebs-encrypted",
        "EBS volumes are encrypted.",
        {LAUNCH_TEMPLATE, INSTANCE, "aws:ebs/volume:Volume"},
        ebs_encrypted,
    ),
    _resource_rule(
        "no-internet-ingress",
        "No security group admits traffic from 0.0.0.0/0 or ::/0.",
        {
            "aws:ec2/securityGroup:SecurityGroup",
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        },
        no_internet_ingress,
    ),
    _resource_rule(
        "gpu-group-scales-from-zero",
        "GPU groups have min size 0 and ignore their desired size.",
        {ASG, NODE_GROUP},
        gpu_group_scales_from_zero,
    ),
    _resource_rule(
        "ecs-gpu-placement",
        "ECS task definitions that ask for GPUs carry the GPU-family placement constraint.",
        {"aws:ecs/taskDefinition:TaskDefinition"},
        ecs_gpu_placement,
    ),
    _resource_rule(
        "iam-no-star-star",
        "No IAM policy allows every action ('*:*'); no AdministratorAccess.",
        _POLICY_DOC_TYPES | _ATTACHMENT_TYPES | {"aws:iam/role:Role"},
        iam_no_star_star,
    ),
    _resource_rule(
        "gpu-type-in-catalog",
        "GPU instance types are in trainstack's catalog (prices, GPU counts, drivers).",
        {LAUNCH_TEMPLATE, INSTANCE, ASG, NODE_GROUP, "aws:sagemaker/trainingJob:TrainingJob"},
        gpu_type_in_catalog,
        ADVISORY,
    ),
    _resource_rule(
        "k8s-no-load-balancer",
        "No Kubernetes Service of type LoadBalancer (nothing outside Pulumi's graph).",
        {"kubernetes:core/v1:Service"},
        k8s_no_load_balancer,
    ),
    _resource_rule(
        "k8s-job-pod-security",
        "Job containers: not privileged, no privilege escalation, every capability dropped, a seccomp profile.",
        {K8S_JOB},
        k8s_job_pod_security,
    ),
    _resource_rule(
        "k8s-job-memory-limit",
        "Job containers have a memory limit equal to their request (an OOMKill of their own, not a node eviction).",
        {K8S_JOB},
        k8s_job_memory_limit,
    ),
    _resource_rule(
        "k8s-job-no-service-account-token",
        "Jobs mount no Kubernetes service account token unless they call the API.",
        {K8S_JOB},
        k8s_job_no_service_account_token,
        ADVISORY,
    ),
    _resource_rule(
        "k8s-job-non-root",
        "Job containers run as non-root unless the image needs root.",
        {K8S_JOB},
        k8s_job_runs_as_non_root,
        ADVISORY,
    ),
    _resource_rule(
        "k8s-namespace-pod-security",
        "Namespaces enforce the baseline or restricted Pod Security Standard.",
        {K8S_NAMESPACE},
        k8s_namespace_pod_security,
    ),
    _resource_rule(
        "eks-vpc-cni-network-policy",
        "The VPC CNI add-on enforces Kubernetes NetworkPolicies.",
        {"aws:eks/addon:Addon"},
        eks_vpc_cni_network_policy,
    ),
    _resource_rule(
        "eks-control-plane-hardened",
        "EKS clusters envelope-encrypt secrets with your KMS key and have a private endpoint.",
        {"aws:eks/cluster:Cluster"},
        eks_control_plane,
    ),
    _resource_rule(
        "eks-control-plane-logs",
        "EKS clusters send their audit and authenticator logs to CloudWatch Logs.",
        {"aws:eks/cluster:Cluster"},
        eks_control_plane_logs,
        ADVISORY,
    ),
]

STACK_POLICIES = [
    StackValidationPolicy(
        name="sagemaker-spot-has-checkpoints",
        enforcement_level=MANDATORY,
        description="SageMaker managed spot jobs write checkpoints to S3 (the exported job request, or a "
        "TrainingJob resource).",
        validate=sagemaker_spot_has_checkpoints,
    ),
    StackValidationPolicy(
        name="cluster-holds-no-data",
        enforcement_level=MANDATORY,
        description="A cluster stack creates no bucket, VPC, KMS key, queue or other data store.",
        validate=_in_kind("cluster", cluster_holds_no_data),
    ),
    StackValidationPolicy(
        name="cluster-has-teardown",
        enforcement_level=MANDATORY,
        description=f"A cluster stack has a teardown schedule at most {MAX_TEARDOWN_HOURS - 1} h "
        "ahead (plus rounding to the hour).",
        validate=_in_kind("cluster", cluster_has_teardown),
    ),
    StackValidationPolicy(
        name="cluster-nothing-protected",
        enforcement_level=MANDATORY,
        description="A cluster stack protects nothing, so destroy always finishes.",
        validate=_in_kind("cluster", cluster_nothing_protected),
    ),
    StackValidationPolicy(
        name="platform-stateful-protected",
        enforcement_level=MANDATORY,
        description="A platform stack protects its stateful resources (buckets, keys, catalogs).",
        validate=_in_kind("platform", platform_stateful_protected),
    ),
    StackValidationPolicy(
        name="s3-sse-kms-bucket-key",
        enforcement_level=MANDATORY,
        description="S3 default encryption is SSE-KMS with S3 bucket keys (SSE-S3 only on "
        "server-access-log target buckets, which cannot take SSE-KMS).",
        validate=s3_sse_kms_bucket_key,
    ),
    StackValidationPolicy(
        name="service-trust-source-account",
        enforcement_level=MANDATORY,
        description="Roles assumed by ECS tasks or EKS Pod Identity require aws:SourceAccount in their trust "
        "(ECS execution roles excepted: ECS documents no source keys for them).",
        validate=service_trust_source_account,
    ),
    StackValidationPolicy(
        name="k8s-namespace-default-deny",
        enforcement_level=MANDATORY,
        description="Every namespace a stack creates has a default-deny NetworkPolicy and admits no other "
        "namespace's pods.",
        validate=k8s_namespace_default_deny,
    ),
    StackValidationPolicy(
        name="s3-bucket-guards",
        enforcement_level=MANDATORY,
        description="Every S3 bucket has a public access block, ownership controls and default encryption.",
        validate=s3_bucket_guards,
    ),
]

POLICIES = RESOURCE_POLICIES + STACK_POLICIES


def pack_args() -> dict[str, Any]:
    """Keyword arguments of `PolicyPack(...)`: the one description of the pack, shared with the offline run."""
    return {"name": PACK_NAME, "policies": list(POLICIES), "description": DESCRIPTION, "provider": "aws"}


def levels() -> dict[str, str]:
    return {p.name: (p.enforcement_level or ADVISORY).value for p in POLICIES}  # the pack default: advisory
