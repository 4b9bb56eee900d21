"""The standard tag set every trainstack resource carries (the reaper and cost reports rely on it)."""

from __future__ import annotations

from collections.abc import Mapping

from trainstack.model.config import ClusterStack, StackConfig

OWNER = "trainstack:owner"
STACK = "trainstack:stack"
KIND = "trainstack:kind"
BACKEND = "trainstack:backend"
EXPIRES_AT = "trainstack:expires-at"
REQUIRED = (OWNER, STACK, KIND, BACKEND)


def standard_tags(cfg: StackConfig) -> dict[str, str]:
    tags = {
        OWNER: cfg.owner,
        STACK: cfg.stack,
        KIND: cfg.kind,
        BACKEND: cfg.backend,
        "trainstack:project": cfg.project,
    }
    if isinstance(cfg, ClusterStack):
        tags[EXPIRES_AT] = cfg.cluster.expires_at_iso
    return tags


# Tags whose value moves between `up`s of the same stack: `expires-at` follows `ttlHours` from the next
# full hour, so it changes every hour.
VOLATILE = (EXPIRES_AT,)


def launch_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags for what launches compute (launch templates' `tag_specifications`): `tags` without the
    values that change between `up`s. A changed tag specification is a new launch template version
    (terraform-provider-aws `ec2_launch_template.go`, `resourceLaunchTemplateUpdate`: `tag_specifications`
    is one of the keys that create a version; the template's own `tags` are only retagged), and an EKS
    managed node group that follows its template's version replaces every node (a rolling update). The
    expiry stays findable on what does not roll: the template's and node group's own tags, the Auto
    Scaling group (whose tags, propagated at launch, still reach ec2/ecs instances), the schedules, roles
    and the cluster."""
    return {k: v for k, v in tags.items() if k not in VOLATILE}


def with_name(tags: Mapping[str, str], name: str) -> dict[str, str]:
    """Tags plus a console-friendly Name."""
    return {**tags, "Name": name}


def required_for(kind: str) -> tuple[str, ...]:
    return REQUIRED + ((EXPIRES_AT,) if kind == "cluster" else ())
