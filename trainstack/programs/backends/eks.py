"""The eks backend: GPU managed node groups at zero, scaled up by Cluster Autoscaler for one
Indexed training Job, on a control plane of this stack's own (`eks.mode: dedicated`) or the
platform's (`eks.mode: shared`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pulumi

from trainstack.backends.eks import EksOutputs
from trainstack.components import auto_teardown as teardown
from trainstack.components.eks_training_cluster import EksTrainingCluster, EksTrainingClusterArgs, SharedControlPlane
from trainstack.components.eks_training_job import EksTrainingJob
from trainstack.components.idle_stop import IdleStop, IdleStopArgs, NodeGroupToDelete, ScheduleToForget
from trainstack.model import eks_request as req
from trainstack.model.config import eks_support_status
from trainstack.model.iam_documents import partition_of
from trainstack.programs.backends import BackendResult, ClusterContext

PLATFORM_EKS_KEYS = ("clusterName", "endpoint", "caData", "clusterSecurityGroupId", "version")


def _platform_eks(ctx: ClusterContext) -> SharedControlPlane:
    """The platform's shared cluster; the plan fails (naming the fix) when the platform has none."""
    c = ctx.cluster

    def check(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or any(not value.get(k) for k in PLATFORM_EKS_KEYS):
            raise ValueError(
                f"trainstack:eks.mode = shared: platform stack {c.platform_stack} exports no shared EKS cluster "
                "(output `eks`). Fix: set `trainstack:eks: {sharedCluster: true}` in the platform stack and run "
                "`pulumi up` there, or use eks.mode: dedicated"
            )
        release = c.eks.release_version
        if release and c.eks.ami_type.startswith("AL2023") and not release.startswith(f"{value['version']}."):
            raise ValueError(
                f"trainstack:eks.releaseVersion = {release}: the shared cluster of {c.platform_stack} "
                f"runs Kubernetes {value['version']}. Fix: use a {value['version']}.x-YYYYMMDD release"
            )
        return value

    shared = ctx.platform_output("eks", required=False).apply(check)
    return SharedControlPlane(*(shared.apply(_item(k)) for k in PLATFORM_EKS_KEYS))


def _item(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda value: value[key]


def access_grants(
    wanted: list[tuple[str, str, tuple[str, ...]]], defaults: dict[str, tuple[str, ...]]
) -> tuple[req.AccessGrant, ...]:
    """The access entries a control plane gets for configured roles: names looked up in the deploying
    account (ListRoles: their ARNs with their paths, as EKS wants them), the caller left out (it created
    the cluster and is its admin already). A missing default role is a warning, a missing listed one fails
    the deploy with the key and the fix (before any resource is registered)."""
    import pulumi_aws as aws

    names = sorted({r for _, _, roles in wanted for r in roles if not req.ROLE_ARN.match(r)})
    existing: dict[str, str] = {}
    if names:
        found = aws.iam.get_roles(name_regex=req.role_lookup_regex(names))
        existing = {arn.rsplit("/", 1)[-1]: arn for arn in found.arns or []}
    caller = aws.get_caller_identity()
    grants, warnings, errors = req.access_grants(
        wanted, existing, caller_arn=caller.arn, defaults=defaults, account=caller.account_id
    )
    if errors:
        raise pulumi.RunError("invalid EKS access configuration:\n" + "\n".join(f"  - {e}" for e in errors))
    for warning in warnings:
        pulumi.log.warn(warning)
    return tuple(grants)


def build(ctx: ClusterContext) -> BackendResult:
    c = ctx.cluster
    eks, gpu, job = c.eks, c.gpu, c.job
    shared = _platform_eks(ctx) if eks.mode == "shared" else None
    access: tuple[req.AccessGrant, ...] = ()
    if shared is None:  # a shared cluster's access entries are the platform's
        from trainstack.model.config.eks import ADMIN_ROLES, VIEWER_ROLES

        access = access_grants(
            [
                ("trainstack:eks.adminRoles", req.CLUSTER_ADMIN_POLICY, eks.admin_roles),
                ("trainstack:eks.viewerRoles", req.ADMIN_VIEW_POLICY, eks.viewer_roles),
            ],
            {"trainstack:eks.adminRoles": ADMIN_ROLES.default, "trainstack:eks.viewerRoles": VIEWER_ROLES.default},
        )
    extended = eks_support_status(eks.version, dt.datetime.now(dt.timezone.utc).date()) == "extended"
    cluster = EksTrainingCluster(
        "eks",
        EksTrainingClusterArgs(
            stack=ctx.stack,
            region=ctx.region,
            account_id=ctx.account_id,
            subnet_ids=ctx.subnet_ids,
            security_group_id=ctx.security_group_id,
            locations=ctx.locations,
            kms_key_arn=ctx.kms_key_arn,
            instance_types=gpu.instance_types,
            image=job.image,
            max_instances=gpu.max_instances,
            capacity_type=req.capacity_type(gpu.spot_percent),
            ami_type=eks.ami_type,
            release_version=eks.release_version,
            root_volume_gib=gpu.root_volume_gib,
            placement_group=gpu.placement_group,
            command=job.command,
            environment=job.environment,
            nodes=job.nodes,
            gpus_per_node=job.gpus_per_node,
            master_port=job.master_port,
            peer_timeout_minutes=job.peer_timeout_minutes,
            max_runtime_seconds=c.max_runtime_seconds,
            code_uri=ctx.code_uri,
            run_as_user=eks.run_as_user,
            shared=shared,
            version=eks.version,
            public_access_cidrs=eks.public_access_cidrs,
            system_instance_type=eks.system_instance_type,
            extended_support=extended and shared is None,
            cluster_name=req.cluster_name(ctx.stack, c.owner),
            control_plane_logs=eks.control_plane_logs,
            log_retention_days=c.log_retention_days,
            access=access,
            tags=ctx.tags,
        ),
    )
    namespace = req.namespace_name(ctx.stack)
    return BackendResult(
        outputs=EksOutputs.to_outputs(
            eks_mode=eks.mode,
            cluster_name=cluster.cluster_name,
            kubernetes_version=cluster.version,
            namespace=namespace,
            job_name=req.JOB_NAME,
            node_group_names=[g.node_group_name for g in cluster.gpu.groups.values()],
            training_role_arn=cluster.training.role.arn,
            kubeconfig=cluster.kubeconfig,
            update_kubeconfig_command=pulumi.Output.format(
                "aws eks update-kubeconfig --name {0} --region {1}", cluster.cluster_name, ctx.region
            ),
            logs_command=EksTrainingJob.logs_command(namespace, c.job.nodes),
        ),
        teardown=teardown.scale_node_groups_to_zero(
            cluster.teardown_targets(), region=ctx.region, account_id=ctx.account_id
        ),
        after_teardown=_idle_stop(ctx, cluster) if eks.idle_stop else None,
    )


def _idle_stop(ctx: ClusterContext, cluster: EksTrainingCluster) -> Callable[[teardown.AutoTeardown], dict[str, Any]]:
    """eks.idleStopMinutes (dedicated mode): AWS deletes the idle cluster's node groups and control plane,
    then its expiry schedules (components/idle_stop.py)."""
    assert cluster.control_plane is not None  # dedicated mode
    plane = cluster.control_plane
    minutes = ctx.cluster.eks.idle_stop_minutes

    def build(auto: teardown.AutoTeardown) -> dict[str, Any]:
        gpu_asg = {t: g.resources.apply(_asg_name) for t, g in cluster.gpu.groups.items()}
        groups = tuple(
            NodeGroupToDelete(
                s.key,
                cluster.gpu.groups[s.instance_type].node_group_name,
                cluster.gpu.groups[s.instance_type].arn,
                gpu_asg[s.instance_type],
            )
            for s in cluster.specs
        ) + (NodeGroupToDelete("system", plane.system_nodes.node_group_name, plane.system_nodes.arn),)
        idle = IdleStop(
            "idle-stop",
            IdleStopArgs(
                minutes=minutes,
                cluster_name=plane.cluster.name,
                cluster_arn=plane.cluster.arn,
                node_groups=groups,
                schedules=tuple(
                    ScheduleToForget(k, s.name, s.arn, s.group_name) for k, s in sorted(auto.schedules.items())
                ),
                account_id=ctx.account_id,
                partition=partition_of(ctx.region),
                dead_letter_queue_arn=ctx.platform_output("teardown_dead_letter_queue_arn", required=False),
                alerts_topic_arn=ctx.platform_output("alerts_topic_arn", required=False),
                tags=ctx.tags,
            ),
        )
        return EksOutputs.to_optional_outputs(
            idle_stop_minutes=minutes,
            idle_stop_alarm_name=idle.alarm.name,
            idle_stop_state_machine_arn=idle.state_machine.arn,
        )

    return build


def _asg_name(resources: Any) -> str:
    return resources[0].autoscaling_groups[0].name
