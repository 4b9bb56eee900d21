"""The Pulumi program: validate the config, build the stack for `trainstack:kind`, export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from trainstack.model import config as config_mod


def raw_config() -> dict[str, Any]:
    """The flat config map the Pulumi engine gave this program (all namespaces)."""
    merged: dict[str, Any] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return merged


def load_config(now_fn: Callable[[], dt.datetime] | None = None) -> config_mod.StackConfig:
    """This stack's validated config; raises ConfigError naming every bad key."""
    return config_mod.parse_config(
        raw_config(), project=pulumi.get_project(), stack=pulumi.get_stack(), now=now_fn() if now_fn else None
    )


def main() -> None:
    try:
        cfg = load_config()
    except config_mod.ConfigError as exc:
        # RunError: Pulumi prints the message without a Python traceback.
        raise pulumi.RunError(str(exc)) from None
    for warning in cfg.warnings:
        pulumi.log.warn(warning)
    if isinstance(cfg, config_mod.PlatformStack):
        from trainstack.programs.platform import build_platform

        outputs = build_platform(cfg)
    else:
        from trainstack.programs.cluster import build_cluster

        outputs = build_cluster(cfg)
    for key, value in outputs.items():
        pulumi.export(key, value)
