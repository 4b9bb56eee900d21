"""The `platform` stack kind: network + data lake, long-lived, exported for cluster stacks."""

from __future__ import annotations

import re

import pulumi

from trainstack.backends import PlatformOutputs
from trainstack.components.data_lake import DataLake, DataLakeArgs
from trainstack.components.teardown_alerts import TeardownAlerts, TeardownAlertsArgs
from trainstack.components.training_network import TrainingNetwork, TrainingNetworkArgs
from trainstack.model.config import PlatformStack
from trainstack.model.tags import standard_tags


def build_platform(cfg: PlatformStack) -> dict[str, object]:
    """Register the platform's resources; return the outputs cluster stacks read."""
    p = cfg.platform
    tags = standard_tags(cfg)
    lake_cfg = p.data_lake
    lake = DataLake(
        "datalake",
        DataLakeArgs(
            checkpoint_retention_days=lake_cfg.checkpoint_retention_days,
            noncurrent_version_days=lake_cfg.noncurrent_version_days,
            multipart_abort_days=lake_cfg.multipart_abort_days,
            access_log_retention_days=lake_cfg.access_log_retention_days,
            glue_database=lake_cfg.glue_database,
            protect=lake_cfg.protect,
            glue_database_name="trainstack_" + re.sub(r"[^a-z0-9]", "_", cfg.stack.lower()),
            region=cfg.region,
            flow_logs=p.flow_logs,
            tags=tags,
        ),
    )
    network = TrainingNetwork(
        "network",
        TrainingNetworkArgs(
            region=cfg.region,
            vpc_cidr=p.vpc_cidr,
            az_count=p.az_count,
            availability_zones=p.availability_zones,
            egress=p.egress,
            flow_logs_bucket_arn=lake.log_bucket.arn if p.flow_logs else None,
            tags=tags,
        ),
    )

    shared_eks = _shared_eks(cfg, network, lake.kms_key.arn) if p.eks.shared_cluster else None
    alerts = TeardownAlerts("teardown", TeardownAlertsArgs(region=cfg.region, account_id=_account_id(), tags=tags))

    buckets = {zone: {"name": b.bucket, "arn": b.arn} for zone, b in lake.buckets.items()}
    buckets["logs"] = {"name": lake.log_bucket.bucket, "arn": lake.log_bucket.arn}
    return PlatformOutputs.to_outputs(
        region=cfg.region,
        vpc_id=network.vpc.id,
        egress=p.egress,
        availability_zones=network.availability_zones,
        subnet_ids=[s.id for s in network.compute_subnets],
        public_subnet_ids=[s.id for s in network.public_subnets],
        private_subnet_ids=[s.id for s in network.private_subnets],
        route_table_ids=[rt.id for rt in network.route_tables],
        security_group_id=network.security_group.id,
        s3_endpoint_id=network.s3_endpoint.id,
        kms_key_arn=lake.kms_key.arn,
        kms_key_id=lake.kms_key.key_id,
        buckets=buckets,
        glue_database=lake.glue_database.name if lake.glue_database else None,
        protected=p.data_lake.protect,
        eks=shared_eks,
        teardown_schedule_group=alerts.schedule_group.name,
        teardown_dead_letter_queue_arn=alerts.queue.arn,
        teardown_dead_letter_queue_url=alerts.queue.url,
        alerts_topic_arn=alerts.topic.arn,
    )


def _account_id() -> str:
    import pulumi_aws as aws

    return aws.get_caller_identity().account_id


def _shared_eks(cfg: PlatformStack, network: TrainingNetwork, kms_key_arn: pulumi.Output[str]) -> dict[str, object]:
    """`trainstack:eks: {sharedCluster: true}`: one control plane (with Cluster Autoscaler and the
    device plugin) that `eks.mode: shared` cluster stacks add their GPU node groups and jobs to."""
    import datetime as dt

    from trainstack.components.eks_cluster_addons import EksClusterAddons, EksClusterAddonsArgs
    from trainstack.components.eks_control_plane import EksControlPlane, EksControlPlaneArgs
    from trainstack.model import eks_request as req
    from trainstack.model.config import eks_support_status
    from trainstack.model.config.eks import ADMIN_ROLES, VIEWER_ROLES
    from trainstack.programs.backends.eks import access_grants

    eks = cfg.platform.eks
    tags = standard_tags(cfg)
    access = access_grants(
        [
            ("trainstack:eks.adminRoles", req.CLUSTER_ADMIN_POLICY, eks.admin_roles),
            # A cluster stack creates its namespace: no namespace-scoped access policy allows that.
            ("trainstack:eks.developerRoles", req.CLUSTER_ADMIN_POLICY, eks.developer_roles),
            ("trainstack:eks.viewerRoles", req.ADMIN_VIEW_POLICY, eks.viewer_roles),
        ],
        {"trainstack:eks.adminRoles": ADMIN_ROLES.default, "trainstack:eks.viewerRoles": VIEWER_ROLES.default},
    )
    extended = eks_support_status(eks.version, dt.datetime.now(dt.timezone.utc).date()) == "extended"
    plane = EksControlPlane(
        "eks",
        EksControlPlaneArgs(
            version=eks.version,
            subnet_ids=[s.id for s in network.compute_subnets],
            security_group_id=network.security_group.id,
            region=cfg.region,
            public_access_cidrs=eks.public_access_cidrs,
            system_instance_type=eks.system_instance_type,
            extended_support=extended,
            cluster_name=req.cluster_name(cfg.stack, cfg.owner),
            kms_key_arn=kms_key_arn,
            log_types=eks.control_plane_logs,
            log_retention_days=eks.log_retention_days,
            access=access,
            tags=tags,
        ),
    )
    EksClusterAddons(
        "eks-addons",
        EksClusterAddonsArgs(
            cluster_name=plane.cluster.name,
            version=eks.version,
            region=cfg.region,
            account_id=_account_id(),
            tags=tags,
        ),
        provider=plane.provider,
    )
    return {
        "clusterName": plane.cluster.name,
        "endpoint": plane.cluster.endpoint,
        "caData": plane.cluster.certificate_authority.data,
        "clusterSecurityGroupId": plane.cluster.vpc_config.cluster_security_group_id,
        "version": eks.version,
    }
