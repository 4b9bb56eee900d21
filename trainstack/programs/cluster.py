"""The `cluster` stack kind: one ephemeral training cluster on a platform stack.

Reads the platform (network, data lake) through a StackReference, lets the configured backend
(`trainstack/programs/backends/<name>.py`) create its compute and IAM scoped to this owner and stack, and
adds the auto-teardown schedule for what the backend says must be turned off at expiry. It
creates no VPC and no bucket, so `up` and `destroy` are quick and a destroy can never touch data.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from trainstack.backends import ClusterOutputs
from trainstack.components import auto_teardown as teardown
from trainstack.components.code_bundle import CodeBundle, CodeBundleArgs
from trainstack.model import iam_documents as docs
from trainstack.model.config import ClusterStack
from trainstack.model.run_locations import RunLocations, run_locations
from trainstack.model.tags import standard_tags
from trainstack.programs import backends
from trainstack.programs.backends import platform_output


def _locations(cfg: ClusterStack, platform: pulumi.StackReference) -> pulumi.Output[RunLocations]:
    c = cfg.cluster

    def build(args: list[Any]) -> RunLocations:
        buckets, region = args
        if region != cfg.region:
            raise ValueError(
                f"platform stack {c.platform_stack} is in {region} but this cluster stack's aws:region "
                f"is {cfg.region}; set aws:region to {region} (clusters run next to their data)"
            )
        return run_locations(buckets, c.job.dataset, c.owner, cfg.stack)

    return pulumi.Output.all(platform_output(platform, "buckets"), platform_output(platform, "region")).apply(build)


def build_cluster(cfg: ClusterStack) -> dict[str, Any]:
    c = cfg.cluster
    tags = standard_tags(cfg)
    platform = pulumi.StackReference("platform", stack_name=c.platform_stack)
    locations = _locations(cfg, platform)
    code = None
    if c.job.workdir:  # built once, here, so every backend gets the same bundle
        code = CodeBundle(
            "code",
            CodeBundleArgs(
                workdir=c.job.workdir,
                bucket=locations.apply(lambda l: l.artifacts_bucket),
                artifact_prefix=locations.apply(lambda l: l.artifact_prefix),
                tags=tags,
                backend=c.backend,
            ),
        )
    ctx = backends.ClusterContext(
        cfg=cfg,
        tags=tags,
        account_id=aws.get_caller_identity().account_id,
        platform=platform,
        locations=locations,
        subnet_ids=platform_output(platform, "subnet_ids"),
        security_group_id=platform_output(platform, "security_group_id"),
        kms_key_arn=platform_output(platform, "kms_key_arn"),
        code_uri=code.uri if code else None,
    )
    result = backends.build(ctx)

    auto = teardown.AutoTeardown(
        "teardown",
        teardown.AutoTeardownArgs(
            expires_at=c.expires_at,
            actions=result.teardown,
            account_id=ctx.account_id,
            tags=tags,
            partition=docs.partition_of(cfg.region),
            # The platform's (components/teardown_alerts.py); a platform deployed before them has neither.
            group_name=ctx.platform_output("teardown_schedule_group", required=False),
            dead_letter_queue_arn=ctx.platform_output("teardown_dead_letter_queue_arn", required=False),
        ),
    )
    later = backends.after_teardown(ctx, result, auto)
    common = ClusterOutputs.to_outputs(
        owner=c.owner,
        backend=c.backend,
        region=cfg.region,
        expires_at=c.expires_at_iso,
        platform_stack=c.platform_stack,
        dataset_uri=locations.apply(lambda l: l.dataset_uri),
        artifact_uri=locations.apply(lambda l: l.artifact_uri),
        model_uri=locations.apply(lambda l: l.model_uri),
        checkpoint_uri=locations.apply(lambda l: l.checkpoint_uri),
        code_uri=code.uri if code else None,
        teardown_schedules={k: s.name for k, s in auto.schedules.items()},
        teardown_role_arn=auto.role.arn,
    )
    return {**common, **result.outputs, **later}
