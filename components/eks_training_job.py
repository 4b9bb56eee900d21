"""EksTrainingJob: the run itself — namespace, identity and an Indexed Job pinned to the GPUs.

A namespace per stack, a service account whose EKS Pod Identity role may read the dataset and
write only this run's artifact and checkpoint prefixes, a headless Service for the torchrun
rendezvous (multi-node), and the Indexed `batch/v1` Job (`eks_request.training_job`). `up`
does not wait for training (`pulumi.com/skipAwait`); follow it with the `logsCommand` output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from trainstack.model import eks_request as req
from trainstack.model import iam_documents as docs
from trainstack.model.config import ClusterConfig
from trainstack.model.run_locations import RunLocations, data_access_policy


@dataclass(frozen=True)
class EksTrainingJobArgs:
    cluster: ClusterConfig
    stack: str
    region: str
    cluster_name: pulumi.Input[str]
    locations: pulumi.Input[RunLocations]
    kms_key_arn: pulumi.Input[str]
    # What must exist before the Job's pods can be scheduled (node groups, device plugin).
    depends_on: Sequence[pulumi.Resource] = ()
    code_uri: pulumi.Input[str] | None = None  # job.workdir's bundle, fetched before the command
    tags: Mapping[str, str] = field(default_factory=dict)
    account_id: str | None = None  # the trust's aws:SourceAccount; None: the caller's account


class EksTrainingJob(pulumi.ComponentResource):
    namespace: k8s.core.v1.Namespace
    service_account: k8s.core.v1.ServiceAccount
    role: aws.iam.Role
    association: aws.eks.PodIdentityAssociation
    service: k8s.core.v1.Service | None
    job: k8s.batch.v1.Job

    def __init__(
        self, name: str, args: EksTrainingJobArgs, provider: k8s.Provider, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("trainstack:eks:EksTrainingJob", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider)
        child = pulumi.ResourceOptions(parent=self)
        c = args.cluster
        ns_name = req.namespace_name(args.stack)

        ns = req.namespace_manifest(ns_name, args.stack)
        self.namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=ns["metadata"], opts=k8s_opts)
        in_ns = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.namespace])
        sa = req.service_account_manifest(ns_name)
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=sa["metadata"], opts=in_ns
        )

        account = args.account_id or aws.get_caller_identity().account_id
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.from_input(args.cluster_name).apply(
                lambda cn: json.dumps(
                    docs.eks_pod_identity_trust(
                        namespace=ns_name, service_account=req.SERVICE_ACCOUNT, source_account=account, cluster_name=cn
                    )
                )
            ),
            description="trainstack: the training job's access to the data lake (EKS Pod Identity)",
            tags=args.tags,
            opts=child,
        )
        data_policy = aws.iam.RolePolicy(
            f"{name}-data-policy",
            role=self.role.id,
            policy=pulumi.Output.all(args.locations, args.kms_key_arn).apply(
                lambda a: json.dumps(data_access_policy(a[0], a[1], args.region))
            ),
            opts=child,
        )
        self.association = aws.eks.PodIdentityAssociation(
            f"{name}-identity",
            cluster_name=args.cluster_name,
            namespace=ns_name,
            service_account=req.SERVICE_ACCOUNT,
            role_arn=self.role.arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[data_policy]),
        )

        self.service = None
        waits: list[pulumi.Resource] = [self.service_account, self.association, *args.depends_on]
        if c.job.nodes > 1:
            svc = req.headless_service(c.job, ns_name)
            self.service = k8s.core.v1.Service(
                f"{name}-service", metadata=svc["metadata"], spec=svc["spec"], opts=in_ns
            )
            waits.append(self.service)

        manifest = pulumi.Output.all(args.locations, args.code_uri).apply(
            lambda a: req.training_job(
                c, stack=args.stack, namespace=ns_name, locations=a[0], region=args.region, code_uri=a[1]
            )
        )
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=req.job_metadata(args.stack, ns_name),
            spec=manifest.apply(lambda m: m["spec"]),
            # A changed spec replaces the Job (its template is immutable): training restarts.
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=waits),
        )
        self.register_outputs({"namespace": ns_name, "jobName": req.JOB_NAME, "roleArn": self.role.arn})

    @staticmethod
    def logs_command(namespace: str, nodes: int) -> str:
        selector = f"-l {req.LABEL_JOB}={req.JOB_NAME}"
        return (
            f"kubectl logs -n {namespace} {selector} --all-containers --prefix --follow "
            f"--max-log-requests {max(nodes, 5)}"
        )
