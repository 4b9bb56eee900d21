"""The Pulumi program: validate the config, build the stack for `trainstack:kind`, export."""

from __future__ import annotations

import pulumi

from trainstack.model import config as config_mod


def main() -> None:
    try:
        cfg = config_mod.load()
    except config_mod.ConfigError as exc:
        # RunError: Pulumi prints the message without a Python traceback.
        raise pulumi.RunError(str(exc)) from None
    for warning in cfg.warnings:
        pulumi.log.warn(warning)
    if cfg.kind == "platform":
        from trainstack.programs.platform import build_platform

        outputs = build_platform(cfg)
    else:
        from trainstack.programs.cluster import build_cluster

        outputs = build_cluster(cfg)
    for key, value in outputs.items():
        pulumi.export(key, value)
