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

from trainstack.model import catalog
from trainstack.model import eks_request as req
from trainstack.model import iam_documents as docs
from trainstack.model.run_locations import RunLocations, data_access_policy
from trainstack.model.torchrun import check_command


@dataclass(frozen=True)
class EksTrainingJobArgs:
    # The deployment's name: the namespace (`ts-<stack>`), the pods' node selector and tolerations carry it.
    stack: str
    # The cluster's region (the pods' AWS_REGION).
    region: str
    # The EKS cluster (the Pod Identity association names it).
    cluster_name: pulumi.Input[str]
    # Where the run reads its dataset and writes its model, logs and checkpoints (trainstack.model.run_locations).
    locations: pulumi.Input[RunLocations]
    # The data lake's KMS key (the pods' role may use it for the run's objects only).
    kms_key_arn: pulumi.Input[str]
    # The training image.
    image: str
    # The GPU node groups' instance types: the pods ask for a share of the smallest and select its family.
    instance_types: tuple[str, ...]
    # The training command (empty: the image's own entrypoint and command).
    command: tuple[str, ...] = ()
    # Environment of the training container, besides the TRAINSTACK_* locations.
    environment: Mapping[str, str] = field(default_factory=dict)
    # Pods (one per node) of the Indexed Job; more than one: elastic torchrun, the rendezvous on rank 0's pod.
    nodes: int = 1
    # GPUs each pod asks for.
    gpus_per_node: int = 1
    # The rendezvous port on rank 0's pod.
    master_port: int = 29500
    # Minutes the pods wait for each other (each may wait for its node from zero).
    peer_timeout_minutes: int = 15
    # The Job's deadline (activeDeadlineSeconds, time pending for capacity included).
    max_runtime_seconds: int = 6 * 3600
    # The run's code bundle (s3:// tar.gz, e.g. CodeBundle.uri): fetched and unpacked before the command.
    code_uri: pulumi.Input[str] | None = None
    # What must exist before the Job's pods can be scheduled (node groups, device plugin).
    depends_on: Sequence[pulumi.Resource] = ()
    # Tags on the AWS resources (role, Pod Identity association).
    tags: Mapping[str, str] = field(default_factory=dict)
    # The AWS account the pods' role trusts EKS Pod Identity of (aws:SourceAccount); None: the caller's account.
    account_id: str | None = None
    # The training container's uid: non-root (the namespace then enforces the `restricted` Pod Security
    # Standard); 0 for an image that must run as root (`baseline`).
    run_as_user: int = req.DEFAULT_RUN_AS_USER

    def __post_init__(self):
        if not self.image:
            raise ValueError("image is empty: give the training image")
        if not self.instance_types or isinstance(self.instance_types, str):
            raise ValueError(f"instance_types = {self.instance_types!r}: list the GPU node groups' instance types")
        unknown = [t for t in self.instance_types if catalog.lookup(t) is None]
        if unknown:
            raise ValueError(f"instance_types {', '.join(unknown)}: not in trainstack's GPU instance catalog")
        if isinstance(self.run_as_user, bool) or not isinstance(self.run_as_user, int) or self.run_as_user < 0:
            raise ValueError(f"run_as_user = {self.run_as_user!r}: must be a uid (0 runs as root)")
        for name in ("nodes", "gpus_per_node", "peer_timeout_minutes", "max_runtime_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r}: must be a whole number, at least 1")
        if not 1 <= self.master_port <= 65535:
            raise ValueError(f"master_port = {self.master_port}: must be a TCP port, 1-65535")
        if isinstance(self.command, str):
            raise ValueError(f"command = {self.command!r}: give the command as a list of arguments")
        if self.command and (self.nodes > 1 or self.gpus_per_node > 1):
            try:  # torchrun starts a distributed job's command
                check_command(self.command)
            except ValueError as exc:
                raise ValueError(f"command = {list(self.command)!r}: {exc}") from None

    @property
    def job(self) -> req.JobSpec:
        return req.JobSpec(
            image=self.image,
            instance_types=tuple(self.instance_types),
            command=tuple(self.command),
            environment=self.environment,
            nodes=self.nodes,
            gpus_per_node=self.gpus_per_node,
            master_port=self.master_port,
            peer_timeout_minutes=self.peer_timeout_minutes,
            max_runtime_seconds=self.max_runtime_seconds,
            run_as_user=self.run_as_user,
        )


class EksTrainingJob(pulumi.ComponentResource):
    namespace: k8s.core.v1.Namespace
    service_account: k8s.core.v1.ServiceAccount
    role: aws.iam.Role
    association: aws.eks.PodIdentityAssociation
    service: k8s.core.v1.Service | None
    network_policies: list[k8s.networking.v1.NetworkPolicy]
    job: k8s.batch.v1.Job

    def __init__(
        self, name: str, args: EksTrainingJobArgs, provider: k8s.Provider, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("trainstack:eks:EksTrainingJob", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider)
        child = pulumi.ResourceOptions(parent=self)
        job = args.job
        ns_name = req.namespace_name(args.stack)

        ns = req.namespace_manifest(ns_name, args.stack, req.pod_security_level(job.run_as_user))
        self.namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=ns["metadata"], opts=k8s_opts)
        in_ns = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.namespace])
        # Only the run's own pods, DNS and AWS's endpoints (enforced where the VPC CNI has network policy on).
        self.network_policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{m['metadata']['name']}", metadata=m["metadata"], spec=m["spec"], opts=in_ns
            )
            for m in req.network_policies(ns_name)
        ]
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
        waits: list[pulumi.Resource] = [
            self.service_account,
            self.association,
            *self.network_policies,
            *args.depends_on,
        ]
        if job.nodes > 1:
            svc = req.headless_service(job, ns_name)
            self.service = k8s.core.v1.Service(
                f"{name}-service", metadata=svc["metadata"], spec=svc["spec"], opts=in_ns
            )
            waits.append(self.service)

        manifest = pulumi.Output.all(args.locations, args.code_uri).apply(
            lambda a: req.training_job(
                job, stack=args.stack, namespace=ns_name, locations=a[0], region=args.region, code_uri=a[1]
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
