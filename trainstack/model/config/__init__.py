"""Typed, validated stack configuration.

`parse_config(raw, ...)` turns the flat Pulumi config map (`"trainstack:gpu" -> value`, values either
native YAML values or the JSON strings the Pulumi engine hands a program) into a `StackConfig`: a
`PlatformStack` (`.platform`) or a `ClusterStack` (`.cluster`). Every problem found is collected and raised
together as one `ConfigError` whose lines each name the key, the bad value, what is allowed and how to fix
it, before the program registers a single resource. Warnings (legal but probably unintended) travel on
the result.

Where things are:
- settings.py: how a key is declared (`setting(...)` on a dataclass field) and the one reader that reads
  any declared key; `Problem`, `ConfigError`.
- table.py: every key, declared once, as the fields of the result dataclasses (and eks.py / sagemaker.py
  for the backends' own sections).
- parse.py: `parse_config`: the generic read, then the rules relating keys, asked of the backends'
  capabilities; eks.py, sagemaker.py, ecs.py: the hooks the backends declare (`Backend.config_checks`).
- generate.py: the `config:` schema in Pulumi.yaml and docs/configuration.md, generated from the table
  (`make config-docs`, i.e. `python -m trainstack.model.config`).
"""

from __future__ import annotations

from trainstack.model.config.eks import EKS_MODES, EKS_RELEASE_RE, EksConfig, PlatformEksConfig, eks_support_status
from trainstack.model.config.parse import (
    SCHEMA_DEFAULTS,
    ClusterDraft,
    namespaced,
    parse_config,
    parse_dataset_ref,
)
from trainstack.model.config.sagemaker import DISTRIBUTIONS, INPUT_MODES, MAX_RUNTIME_HOURS, SageMakerConfig
from trainstack.model.config.settings import NS, ConfigError, Problem
from trainstack.model.config.table import (
    CLUSTER_KEYS,
    COMMON_KEYS,
    CUDA13_TAG_RE,
    DATA_LAKE_KEYS,
    DATA_ZONES,
    DLC_REPOSITORY_RE,
    ECR_RE,
    EGRESS,
    EKS_KEYS,
    ENV_NAME_RE,
    FAMILY_RE,
    GPU_KEYS,
    IMAGE_RE,
    JOB_KEYS,
    KINDS,
    LOG_RETENTION_DAYS,
    MAX_AZ,
    MAX_TTL_HOURS,
    MIN_AZ,
    OWNER_RE,
    PLATFORM_EKS_KEYS,
    PLATFORM_KEYS,
    SAGEMAKER_KEYS,
    ClusterConfig,
    ClusterStack,
    DataLakeConfig,
    DatasetRef,
    GpuConfig,
    JobConfig,
    PlatformConfig,
    PlatformStack,
    StackConfig,
)

__all__ = [
    "CLUSTER_KEYS",
    "COMMON_KEYS",
    "CUDA13_TAG_RE",
    "DATA_LAKE_KEYS",
    "DATA_ZONES",
    "DISTRIBUTIONS",
    "DLC_REPOSITORY_RE",
    "ECR_RE",
    "EGRESS",
    "EKS_KEYS",
    "EKS_MODES",
    "EKS_RELEASE_RE",
    "ENV_NAME_RE",
    "FAMILY_RE",
    "GPU_KEYS",
    "IMAGE_RE",
    "INPUT_MODES",
    "JOB_KEYS",
    "KINDS",
    "LOG_RETENTION_DAYS",
    "MAX_AZ",
    "MAX_RUNTIME_HOURS",
    "MAX_TTL_HOURS",
    "MIN_AZ",
    "NS",
    "OWNER_RE",
    "PLATFORM_EKS_KEYS",
    "PLATFORM_KEYS",
    "SAGEMAKER_KEYS",
    "SCHEMA_DEFAULTS",
    "ClusterConfig",
    "ClusterDraft",
    "ClusterStack",
    "ConfigError",
    "DataLakeConfig",
    "DatasetRef",
    "EksConfig",
    "GpuConfig",
    "JobConfig",
    "PlatformConfig",
    "PlatformEksConfig",
    "PlatformStack",
    "Problem",
    "SageMakerConfig",
    "StackConfig",
    "eks_support_status",
    "namespaced",
    "parse_config",
    "parse_dataset_ref",
]
