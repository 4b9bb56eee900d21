"""Every taggable resource of every example stack carries the standard tag set."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from tests.helpers import STACKS
from trainstack.model import tags as T


def python_class(type_token: str):
    """`aws:s3/bucket:Bucket` -> pulumi_aws.s3.Bucket."""
    pkg, module, cls = type_token.split(":")
    mod = module.split("/")[0]
    base = importlib.import_module("pulumi_aws" if mod == "index" else f"pulumi_aws.{mod}")
    return getattr(base, cls)


def taggable(type_token: str) -> bool:
    # Kubernetes objects (labels, not AWS tags) and provider resources carry no AWS tags.
    if not type_token.startswith("aws:"):
        return False
    return "tags" in inspect.signature(python_class(type_token)._internal_init).parameters


def tags_of(record) -> dict[str, str]:
    tags = record.inputs.get("tags")
    if isinstance(tags, list):  # Auto Scaling groups: [{key, value, propagateAtLaunch}]
        return {t["key"]: t["value"] for t in tags}
    return tags or {}


def test_taggability_is_read_from_the_provider_classes():
    assert taggable("aws:s3/bucket:Bucket") and taggable("aws:autoscaling/group:Group")
    assert not taggable("aws:s3/bucketPolicy:BucketPolicy") and not taggable("aws:scheduler/schedule:Schedule")
    assert not taggable("kubernetes:batch/v1:Job") and not taggable("pulumi:providers:kubernetes")


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_carries_the_standard_tags(example_plans, stack):
    result = example_plans[stack]
    expected = T.standard_tags(result.config)
    checked = 0
    for record in result.run.resources:
        if not taggable(record.type):
            continue
        checked += 1
        tags = tags_of(record)
        missing = {k: v for k, v in expected.items() if tags.get(k) != v}
        assert not missing, f"{record.type} {record.name} lacks {missing}"
    assert checked >= 3


@pytest.mark.parametrize("stack", [s for s in STACKS if s.startswith("dev-")])
def test_cluster_tags_carry_owner_and_expiry(example_plans, stack):
    tags = T.standard_tags(example_plans[stack].config)
    assert set(T.required_for("cluster")) <= set(tags)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", tags[T.EXPIRES_AT])
    assert tags[T.OWNER] == example_plans[stack].config.cluster.owner


def test_gpu_instances_and_volumes_are_tagged_at_launch(example_plans):
    for stack in ("dev-ecs", "dev-ec2"):
        lt = example_plans[stack].run.one("aws:ec2/launchTemplate:LaunchTemplate")
        specs = {s["resourceType"]: s["tags"] for s in lt.inputs["tagSpecifications"]}
        assert set(specs) == {"instance", "volume", "network-interface"}
        for tags in specs.values():
            assert tags[T.OWNER] and tags[T.STACK] and T.EXPIRES_AT not in tags  # see the next test
        group = example_plans[stack].run.one("aws:autoscaling/group:Group")
        assert all(t["propagateAtLaunch"] is True for t in group.inputs["tags"])
        # The expiry still reaches the instances, from the group's tags (a retag, not a new template version).
        assert tags_of(group)[T.EXPIRES_AT] == example_plans[stack].config.cluster.expires_at_iso


LAUNCHING = ("dev-ec2", "dev-eks", "dev-eks-shared")  # ec2 and ecs share GpuAutoScalingGroup


def test_two_ups_an_hour_apart_keep_every_launch_template():
    """`ttlHours` moves `expires-at` every hour (and `trainstack run` sets `expiresAt`). A launch template that
    carried it in its tag specifications would get a new version at every `up`, and an EKS node group
    following it would replace its nodes (the running GPU job's and the system node's)."""
    import datetime as dt

    from tests.helpers import ROOT
    from trainstack.plan.planner import load_raw_config, plan

    soon = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=5)

    platforms: dict[str, dict] = {}

    def up(stack: str, expires: dt.datetime):
        raw = {**load_raw_config(stack, ROOT)[1], "trainstack:expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return plan(stack, ROOT, raw=raw, _platform_cache=platforms).run

    def templates(run) -> dict[str, dict]:
        # The template's own `tags` are retagged in place (no version): everything else makes a version.
        return {
            r.name: {k: v for k, v in r.inputs.items() if k not in ("tags", "tagsAll")}
            for r in run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
        }

    for stack in LAUNCHING:
        first, second = up(stack, soon), up(stack, soon + dt.timedelta(hours=1))
        assert templates(first), stack
        assert templates(first) == templates(second), f"{stack}: a launch template changes between two `up`s"
        # ... while the expiry did move (else this proves nothing), and stays on what does not roll.
        expiry = {
            t.type: tags_of(t)[T.EXPIRES_AT]
            for run in (first, second)
            for t in run.resources
            if t.type in ("aws:eks/nodeGroup:NodeGroup", "aws:autoscaling/group:Group")
        }
        assert expiry, stack
        for kind in expiry:
            values = {tags_of(r)[T.EXPIRES_AT] for run in (first, second) for r in run.of_type(kind)}
            assert len(values) == 2, (stack, kind, values)
