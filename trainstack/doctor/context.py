"""What every check reads: the stack's planned facts, the AWS clients, who the caller is, the platform."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainstack.doctor.aws import Aws
from trainstack.doctor.facts import StackFacts


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str  # as STS reports it (for an assumed role: the session ARN)
    principal_arn: str  # what IAM policies are attached to: the user, or the role behind a session
    kind: str  # user | assumed-role | root | federated-user | other
    partition: str = "aws"


@dataclass(frozen=True)
class PlatformOutputs:
    """The deployed platform stack's outputs (`pulumi stack output --json`), as cluster stacks read them."""

    name: str
    outputs: dict[str, Any]

    @property
    def subnet_ids(self) -> list[str]:
        return [str(s) for s in self.outputs.get("subnetIds") or []]

    @property
    def availability_zones(self) -> list[str]:
        return [str(z) for z in self.outputs.get("availabilityZones") or []]

    @property
    def buckets(self) -> dict[str, dict[str, str]]:
        return dict(self.outputs.get("buckets") or {})

    @property
    def kms_key_arn(self) -> str:
        return str(self.outputs.get("kmsKeyArn") or "")

    @property
    def eks(self) -> dict[str, Any] | None:
        value = self.outputs.get("eks")
        return dict(value) if isinstance(value, dict) else None


@dataclass
class Context:
    facts: StackFacts
    aws: Aws
    root: Path
    secrets_provider: str | None = None
    identity: Identity | None = None
    platform: PlatformOutputs | None = None
    platform_error: str = ""  # why the platform's outputs could not be read
    notes: dict[str, Any] = field(default_factory=dict)
