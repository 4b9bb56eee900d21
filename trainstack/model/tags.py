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


def with_name(tags: Mapping[str, str], name: str) -> dict[str, str]:
    """Tags plus a console-friendly Name."""
    return {**tags, "Name": name}


def required_for(kind: str) -> tuple[str, ...]:
    return REQUIRED + ((EXPIRES_AT,) if kind == "cluster" else ())
