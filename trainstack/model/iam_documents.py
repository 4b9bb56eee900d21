"""IAM, bucket and key policy documents, as plain dicts built from plain strings.

One place for each document (style habit 6). Components feed them resolved ARNs through
`Output.all(...).apply(...)` and `json.dumps`; tests validate the same dicts with IAM linters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

VERSION = "2012-10-17"

# Which partition a region belongs to, as botocore/data/partitions.json ("regionRegex") says; the first
# match wins and an unknown name falls back to "aws", as botocore resolves it. tests/model/test_iam_documents.py
# checks this table against the partitions data of the installed botocore.
PARTITION_REGIONS: tuple[tuple[str, str], ...] = (
    ("aws", r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$"),
    ("aws-cn", r"^cn\-\w+\-\d+$"),
    ("aws-eusc", r"^eusc\-(de)\-\w+\-\d+$"),
    ("aws-iso", r"^us\-iso\-\w+\-\d+$"),
    ("aws-iso-b", r"^us\-isob\-\w+\-\d+$"),
    ("aws-iso-e", r"^eu\-isoe\-\w+\-\d+$"),
    ("aws-iso-f", r"^us\-isof\-\w+\-\d+$"),
    ("aws-us-gov", r"^us\-gov\-\w+\-\d+$"),
)


def partition_of(region: str | None) -> str:
    """`us-east-1` -> `aws`, `cn-north-1` -> `aws-cn`, `us-gov-west-1` -> `aws-us-gov` (None -> `aws`)."""
    for name, pattern in PARTITION_REGIONS:
        if region and re.match(pattern, region):
            return name
    return "aws"


def aws_managed_policy(name: str, partition: str = "aws") -> str:
    """The ARN of an AWS managed policy (`service-role/...` names included) in a partition."""
    return f"arn:{partition}:iam::aws:policy/{name}"


def _doc(*statements: dict) -> dict:
    return {"Version": VERSION, "Statement": [s for s in statements if s]}


def assume_role(*services: str, source_account: str | None = None, source_arn: str | None = None) -> dict:
    stmt: dict = {
        "Effect": "Allow",
        "Principal": {"Service": sorted(services) if len(services) > 1 else services[0]},
        "Action": "sts:AssumeRole",
    }
    condition: dict = {}
    if source_account:
        # Confused-deputy guard for service principals that act on behalf of this account.
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    if condition:
        stmt["Condition"] = condition
    return _doc(stmt)


def ecs_task_trust(account_id: str, region: str) -> dict:
    """Trust of an ECS *task* role: ECS tasks of this account and region only. Amazon ECS Developer Guide,
    "Amazon ECS task IAM role": scope the trust with aws:SourceAccount and aws:SourceArn, and "Using the
    aws:SourceArn condition key to specify a specific cluster is not currently supported, you should use
    the wildcard to specify all clusters" (hence `...:<account>:*`). The task *execution* role keeps the
    plain trust AWS documents for it: ECS documents no source keys when it assumes that one."""
    return assume_role(
        "ecs-tasks.amazonaws.com",
        source_account=account_id,
        source_arn=f"arn:{partition_of(region)}:ecs:{region}:{account_id}:*",
    )


def deny_insecure_transport(bucket_arn: str) -> dict:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


SSE_HEADER = "s3:x-amz-server-side-encryption"
SSE_KMS_KEY_HEADER = "s3:x-amz-server-side-encryption-aws-kms-key-id"


def data_bucket_policy(bucket_arn: str, kms_key_arn: str) -> dict:
    """TLS only; a write that names any encryption but SSE-KMS with this data lake's key is refused.

    A plain PUT (no encryption header) is admitted: the bucket's default encryption applies SSE-KMS with
    the lake key to it. Every Deny therefore fires only on a header that is present (`Null` false):
    IAM User Guide, "Condition operators": a negated operator on a missing key is *true*, and
    `...IfExists` is true on a missing key too, so neither may stand alone in a Deny.

    `aws:kms` without a key id is refused: S3 then encrypts with the account's AWS managed key `aws/s3`,
    not the bucket default (S3 API Reference, PutObject / CreateMultipartUpload, SSEKMSKeyId: "If you
    specify x-amz-server-side-encryption:aws:kms ..., but do not provide
    x-amz-server-side-encryption-aws-kms-key-id, Amazon S3 uses the Amazon Web Services managed key
    (aws/s3) to protect the data"). A writer that names the key must name it by its ARN.
    """
    objects = f"{bucket_arn}/*"
    return _doc(
        deny_insecure_transport(bucket_arn),
        {
            "Sid": "DenyEncryptionOtherThanKms",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"StringNotEquals": {SSE_HEADER: "aws:kms"}, "Null": {SSE_HEADER: "false"}},
        },
        {
            "Sid": "DenyOtherKmsKeys",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"StringNotEquals": {SSE_KMS_KEY_HEADER: kms_key_arn}, "Null": {SSE_KMS_KEY_HEADER: "false"}},
        },
        {
            "Sid": "DenyKmsWithoutTheLakeKey",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"Null": {SSE_HEADER: "false", SSE_KMS_KEY_HEADER: "true"}},
        },
    )


FLOW_LOGS_PREFIX = "vpc-flow-logs/"


def flow_log_delivery(log_bucket_arn: str, account_id: str, region: str) -> list[dict]:
    """VPC flow logs to S3: the log delivery service writes under the flow-log prefix of this account only
    (Amazon VPC User Guide, "Amazon S3 bucket permissions for flow logs")."""
    source = {
        "StringEquals": {"aws:SourceAccount": account_id},
        "ArnLike": {"aws:SourceArn": f"arn:{partition_of(region)}:logs:{region}:{account_id}:*"},
    }
    return [
        {
            "Sid": "AWSLogDeliveryWrite",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{log_bucket_arn}/{FLOW_LOGS_PREFIX}AWSLogs/{account_id}/*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id, "s3:x-amz-acl": "bucket-owner-full-control"},
                "ArnLike": source["ArnLike"],
            },
        },
        {
            "Sid": "AWSLogDeliveryAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
            "Resource": log_bucket_arn,
            "Condition": source,
        },
    ]


def log_bucket_policy(
    log_bucket_arn: str, source_bucket_arns: Sequence[str], account_id: str, flow_logs_region: str | None = None
) -> dict:
    """S3 server access logging writes with the logging service principal (ACLs are disabled); with
    `flow_logs_region`, VPC flow log delivery may write too."""
    flow = flow_log_delivery(log_bucket_arn, account_id, flow_logs_region) if flow_logs_region else []
    return _doc(
        deny_insecure_transport(log_bucket_arn),
        *flow,
        {
            "Sid": "AllowS3ServerAccessLogs",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{log_bucket_arn}/*",
            "Condition": {
                "ArnLike": {"aws:SourceArn": sorted(source_bucket_arns)},
                "StringEquals": {"aws:SourceAccount": account_id},
            },
        },
    )


def kms_key_policy(account_id: str, partition: str | None = None, region: str | None = None) -> dict:
    """The account administers the key; IAM policies (scoped per role) grant its use. With `region`,
    CloudWatch Logs of this account and region may encrypt log groups with it (the clusters' logs).
    The partition is the region's unless given."""
    partition = partition or partition_of(region)
    logs: list[dict] = []
    if region:
        # CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS": the regional
        # service principal, limited by the log group ARN in the encryption context to this account's groups
        # (ArnLike as AWS documents it). DescribeKey carries no encryption context, so it stands apart.
        principal = {"Service": f"logs.{region}.amazonaws.com"}
        logs = [
            {
                "Sid": "CloudWatchLogsEncryptThisAccountsLogGroups",
                "Effect": "Allow",
                "Principal": principal,
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                    }
                },
            },
            {
                "Sid": "CloudWatchLogsDescribeKey",
                "Effect": "Allow",
                "Principal": principal,
                "Action": "kms:DescribeKey",
                "Resource": "*",
            },
        ]
    return _doc(
        {
            "Sid": "EnableIamPolicies",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        *logs,
    )


def _prefix_arns(bucket_arn: str, prefixes: Iterable[str]) -> list[str]:
    return [f"{bucket_arn}/{p}*" for p in prefixes]


def training_data_access(
    *,
    dataset_bucket_arn: str,
    dataset_prefix: str,
    artifacts_bucket_arn: str,
    write_prefixes: Sequence[str],
    kms_key_arn: str,
    region: str,
) -> dict:
    """Read one dataset prefix; read/write only this run's artifact and checkpoint prefixes."""
    write_prefixes = list(write_prefixes)
    return _doc(
        {
            "Sid": "ListDataset",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": dataset_bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [dataset_prefix, f"{dataset_prefix}*"]}},
        },
        {
            "Sid": "ReadDataset",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{dataset_bucket_arn}/{dataset_prefix}*",
        },
        {
            "Sid": "ListRunArtifacts",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": artifacts_bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [x for p in write_prefixes for x in (p, f"{p}*")]}},
        },
        {
            "Sid": "ReadWriteRunArtifacts",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": _prefix_arns(artifacts_bucket_arn, write_prefixes),
        },
        {
            "Sid": "UseDataLakeKeyThroughS3",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": kms_key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        },
    )


def write_logs(log_group_arn: str) -> dict:
    return _doc(
        {
            "Sid": "WriteRunLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"],
        }
    )


def pull_image(repository_arn: str | None) -> dict:
    """ECR pull for one repository (GetAuthorizationToken has no resource scope)."""
    if repository_arn is None:  # public registry: nothing to grant
        return _doc()
    return _doc(
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Sid": "PullTrainingImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            "Resource": repository_arn,
        },
    )


def merge(*docs: dict) -> dict:
    statements: list[dict] = []
    for s in (s for d in docs for s in d["Statement"]):
        if s not in statements:  # several actions may need the same grant; Sids must stay unique
            statements.append(s)
    return _doc(*statements)


def scale_group_to_zero(group_arn: str) -> dict:
    """What the auto-teardown schedule may do: update this one Auto Scaling group."""
    return _doc(
        {
            "Sid": "ScaleThisGroupToZero",
            "Effect": "Allow",
            "Action": "autoscaling:UpdateAutoScalingGroup",
            "Resource": group_arn,
        }
    )


def stop_training_job(job_arn: str) -> dict:
    return _doc(
        {
            "Sid": "StopThisTrainingJob",
            "Effect": "Allow",
            "Action": "sagemaker:StopTrainingJob",
            "Resource": job_arn,
        }
    )


def autoscaling_group_arn(region: str, account_id: str, group_name: str) -> str:
    """ARN of a group by name (the id part is unknown before it exists; IAM matches it with *)."""
    return f"arn:{partition_of(region)}:autoscaling:{region}:{account_id}:autoScalingGroup:*:autoScalingGroupName/{group_name}"


def ec2_node(group_arn: str) -> dict:
    """A node of the ec2 backend: find its peers, scale its own group to zero, or (a latecomer)
    terminate itself while decrementing the desired capacity."""
    return _doc(
        {
            "Sid": "DiscoverPeers",
            "Effect": "Allow",
            # Describe* calls support no resource-level scoping.
            "Action": ["ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups"],
            "Resource": "*",
        },
        {
            "Sid": "ScaleOwnGroupToZero",
            "Effect": "Allow",
            "Action": "autoscaling:UpdateAutoScalingGroup",
            "Resource": group_arn,
        },
        {
            # Resource-scoped to the group (Service Authorization Reference, Amazon EC2 Auto Scaling).
            "Sid": "LatecomerLeavesOwnGroup",
            "Effect": "Allow",
            "Action": "autoscaling:TerminateInstanceInAutoScalingGroup",
            "Resource": group_arn,
        },
    )


def ecr_repository_arn(image: str) -> str | None:
    """`<acct>.dkr.ecr.<region>.amazonaws.com/name:tag` -> the repository ARN; None for other registries."""
    import re

    m = re.match(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/([^:@]+)", image)
    if not m:
        return None
    partition = "aws-cn" if m.group(3) else "aws"
    return f"arn:{partition}:ecr:{m.group(2)}:{m.group(1)}:repository/{m.group(4)}"


def send_shutdown_command(group_name: str, region: str, account_id: str) -> dict:
    """Run `shutdown` through SSM on the instances of one Auto Scaling group, and nothing else."""
    return _doc(
        {
            "Sid": "RunShellScriptDocument",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": f"arn:{partition_of(region)}:ssm:{region}::document/AWS-RunShellScript",
        },
        {
            "Sid": "OnThisGroupsInstancesOnly",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": f"arn:{partition_of(region)}:ec2:{region}:{account_id}:instance/*",
            "Condition": {"StringEquals": {"ssm:resourceTag/aws:autoscaling:groupName": group_name}},
        },
    )


def sagemaker_training(*, region: str, account_id: str, kms_key_arn: str, vpc: bool) -> dict:
    """What a SageMaker training job's execution role needs besides the data lake and its image."""
    log_group = f"arn:{partition_of(region)}:logs:{region}:{account_id}:log-group:/aws/sagemaker/TrainingJobs"
    statements: list[dict] = [
        {
            "Sid": "TrainingJobLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [log_group, f"{log_group}:log-stream:*"],
        },
        {
            "Sid": "TrainingJobMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",  # PutMetricData has no resource scope; the namespace condition is the scope
            "Condition": {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
        },
        {
            "Sid": "EncryptTrainingVolume",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": kms_key_arn,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
        {"Sid": "DescribeDataLakeKey", "Effect": "Allow", "Action": "kms:DescribeKey", "Resource": kms_key_arn},
        {
            # OutputDataConfig.KmsKeyId is the data lake key, so model.tar.gz is encrypted like everything else
            # in the lake (the bucket policy refuses other keys); SageMaker requires kms:Encrypt for it
            # (CreateTrainingJob API reference, OutputDataConfig.KmsKeyId).
            "Sid": "EncryptModelArtifacts",
            "Effect": "Allow",
            "Action": "kms:Encrypt",
            "Resource": kms_key_arn,
        },
    ]
    if vpc:
        statements.append(
            {
                "Sid": "TrainingJobNetworkInterfaces",
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                "Resource": "*",  # SageMaker manages the ENIs; EC2 offers no resource scope for these calls
            }
        )
    return _doc(*statements)


# ---------------------------------------------------------------------------------------------
# EKS


def eks_pod_identity_trust(
    *, namespace: str, service_account: str, source_account: str, cluster_name: str | None = None
) -> dict:
    """Trust for EKS Pod Identity, limited to one namespace/service account (and cluster) by the
    session tags the service sets (Amazon EKS User Guide, "Create IAM role with trust policy required by
    EKS Pod Identity": it sends eks-cluster-name, kubernetes-namespace, kubernetes-service-account ...),
    and to this account by aws:SourceAccount: cluster names are not unique across accounts (EKS Best
    Practices Guide, Identity and Access Management: "EKS will pass in a value for aws:SourceOrgId ...
    when assuming a role using EKS Pod Identity", a source key of the same family)."""
    equals = {
        "aws:SourceAccount": source_account,
        "aws:RequestTag/kubernetes-namespace": namespace,
        "aws:RequestTag/kubernetes-service-account": service_account,
    }
    if cluster_name:
        equals["aws:RequestTag/eks-cluster-name"] = cluster_name
    return _doc(
        {
            "Sid": "AllowEksPodIdentity",
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringEquals": equals},
        }
    )


def cluster_autoscaler(cluster_name: str, region: str, account_id: str) -> dict:
    """Cluster Autoscaler on EKS managed node groups: resize only this cluster's groups
    (kubernetes/autoscaler cloudprovider/aws README, "Full Cluster Autoscaler Features Policy")."""
    return _doc(
        {
            "Sid": "DiscoverGroupsAndInstanceTypes",
            "Effect": "Allow",
            # Describe* calls support no resource-level scoping.
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ResizeOnlyThisClustersGroups",
            "Effect": "Allow",
            "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            "Resource": f"arn:{partition_of(region)}:autoscaling:{region}:{account_id}:autoScalingGroup:*:autoScalingGroupName/*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
        },
        {
            "Sid": "ReadThisClustersNodeGroups",
            "Effect": "Allow",
            "Action": "eks:DescribeNodegroup",
            "Resource": f"arn:{partition_of(region)}:eks:{region}:{account_id}:nodegroup/{cluster_name}/*",
        },
    )


def scale_node_groups_to_zero(nodegroup_arns: Sequence[str]) -> dict:
    """What the eks auto-teardown may do: update these node groups' size and taints."""
    return _doc(
        {
            "Sid": "ScaleTheseNodeGroupsToZero",
            "Effect": "Allow",
            "Action": "eks:UpdateNodegroupConfig",
            "Resource": sorted(nodegroup_arns) if len(nodegroup_arns) > 1 else nodegroup_arns[0],
        }
    )


def release_groups_from_autoscaler(group_names: Sequence[str], tag_key: str, region: str, account_id: str) -> dict:
    """What the eks auto-teardown may do to the node groups' Auto Scaling groups: delete the one tag that
    hands them to Cluster Autoscaler (`k8s.io/cluster-autoscaler/<cluster>`), nothing else. The
    `aws:TagKeys` condition is the tag keys in the request (Service Authorization Reference, Amazon EC2
    Auto Scaling: DeleteTags takes aws:TagKeys)."""
    arns = sorted(autoscaling_group_arn(region, account_id, n) for n in group_names)
    return _doc(
        {
            "Sid": "ReleaseTheseGroupsFromClusterAutoscaler",
            "Effect": "Allow",
            "Action": "autoscaling:DeleteTags",
            "Resource": arns if len(arns) > 1 else arns[0],
            "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": [tag_key]}},
        }
    )


def eks_cluster_role_extras(kms_key_arn: str | None) -> dict:
    """The control plane's role besides AmazonEKSClusterPolicy: use the key that envelope-encrypts Kubernetes
    secrets (what terraform-aws-modules/terraform-aws-eks attaches as its cluster encryption policy:
    Encrypt, Decrypt, ListGrants, DescribeKey), and never create its log group itself. EKS creates
    `/aws/eks/<cluster>/cluster` when it is missing; the stack creates it first (retention, key), and a
    cluster still logging while `destroy` runs must not re-create it behind Pulumi's back
    (terraform-aws-eks, the same deny, issue #920)."""
    statements: list[dict] = []
    if kms_key_arn:
        statements.append(
            {
                "Sid": "EnvelopeEncryptKubernetesSecrets",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                "Resource": kms_key_arn,
            }
        )
    statements.append(
        {"Sid": "NeverCreateTheLogGroup", "Effect": "Deny", "Action": "logs:CreateLogGroup", "Resource": "*"}
    )
    return _doc(*statements)


# ---------------------------------------------------------------------------------------------
# Failed teardown calls (platform) and the idle stop (eks dedicated clusters)


def send_to_dead_letter_queue(queue_arn: str) -> dict:
    """A schedule's execution role sends the schedule's failed invocations to the dead-letter queue: EventBridge
    Scheduler uses that role for it (Scheduler User Guide, "Configuring a schedule's dead-letter queue")."""
    return _doc(
        {
            "Sid": "SendFailedCallsToDeadLetterQueue",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
        }
    )


def idle_stop_rule_arn_pattern(region: str, account_id: str, rule_prefix: str) -> str:
    return f"arn:{partition_of(region)}:events:{region}:{account_id}:rule/{rule_prefix}*"


def dead_letter_queue_policy(queue_arn: str, *, region: str, account_id: str, rule_prefix: str) -> dict:
    """The teardown dead-letter queue's policy: TLS only; EventBridge may send the failed invocations of this
    account's idle-stop rules (a rule target's DLQ needs a resource-based grant: EventBridge User Guide, "Event
    retry policy and using dead-letter queues"). Schedules send with their own role's grant."""
    return _doc(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": queue_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "IdleStopRulesSendFailedEvents",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {
                "ArnLike": {"aws:SourceArn": idle_stop_rule_arn_pattern(region, account_id, rule_prefix)},
                "StringEquals": {"aws:SourceAccount": account_id},
            },
        },
    )


def idle_stop_state_machine(cluster_arn: str, nodegroup_arns: Sequence[str], schedule_arns: Sequence[str]) -> dict:
    """What the idle stop's state machine may do: delete these node groups, then this control plane, then this
    stack's expiry schedules. Nothing else (EKS and Scheduler actions on their own resources: Service
    Authorization Reference)."""

    def one_or_many(arns: Sequence[str]) -> str | list[str]:
        return sorted(arns) if len(arns) > 1 else arns[0]

    statements: list[dict] = [
        {
            "Sid": "DeleteTheseNodeGroups",
            "Effect": "Allow",
            "Action": "eks:DeleteNodegroup",
            "Resource": one_or_many(nodegroup_arns),
        },
        {"Sid": "DeleteThisControlPlane", "Effect": "Allow", "Action": "eks:DeleteCluster", "Resource": cluster_arn},
    ]
    if schedule_arns:
        statements.append(
            {
                "Sid": "ForgetThisStacksExpiry",
                "Effect": "Allow",
                "Action": "scheduler:DeleteSchedule",
                "Resource": one_or_many(schedule_arns),
            }
        )
    return _doc(*statements)


def start_idle_stop(state_machine_arn: str) -> dict:
    """The EventBridge rule's role: start this state machine, nothing else."""
    return _doc(
        {
            "Sid": "StartTheIdleStop",
            "Effect": "Allow",
            "Action": "states:StartExecution",
            "Resource": state_machine_arn,
        }
    )
