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
            assert tags[T.OWNER] and tags[T.EXPIRES_AT]
        group = example_plans[stack].run.one("aws:autoscaling/group:Group")
        assert all(t["propagateAtLaunch"] is True for t in group.inputs["tags"])
