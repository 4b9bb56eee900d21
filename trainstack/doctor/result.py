"""What a doctor check says: one typed result per thing checked (pass, warn, fail or skip), with the fix."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

EXIT_READY = 0
EXIT_NOT_READY = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"  # ready, but worth knowing (a poor spot score, a check the caller may not run)
    FAIL = "fail"  # this would stop `trainstack run` from training
    SKIP = "skip"  # not applicable, or could not run because an earlier check failed


@dataclass(frozen=True)
class Check:
    family: str  # e.g. "quotas", "capacity": the module that made it
    name: str  # one short line, e.g. "spot quota: All P Spot Instance Requests"
    status: Status
    detail: str = ""
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # for --json

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"family": self.family, "name": self.name, "status": self.status.value}
        if self.detail:
            out["detail"] = self.detail
        if self.fix:
            out["fix"] = self.fix
        if self.data:
            out["data"] = self.data
        return out


def passed(family: str, name: str, detail: str = "", **data: Any) -> Check:
    return Check(family, name, Status.PASS, detail, "", dict(data))


def warned(family: str, name: str, detail: str, fix: str = "", **data: Any) -> Check:
    return Check(family, name, Status.WARN, detail, fix, dict(data))


def failed(family: str, name: str, detail: str, fix: str, **data: Any) -> Check:
    return Check(family, name, Status.FAIL, detail, fix, dict(data))


def skipped(family: str, name: str, detail: str, **data: Any) -> Check:
    return Check(family, name, Status.SKIP, detail, "", dict(data))


@dataclass
class Report:
    stack: str
    region: str = ""
    backend: str = ""
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    probes: bool = False
    leftovers: list[str] = field(default_factory=list)  # probe resources the doctor could not remove
    interrupted: bool = False

    def extend(self, checks: Iterable[Check]) -> None:
        self.checks.extend(checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status is Status.FAIL]

    @property
    def ready(self) -> bool:
        return not self.failures and not self.leftovers and not self.interrupted

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_READY if self.ready else EXIT_NOT_READY

    def to_json(self) -> dict[str, Any]:
        counts = {s.value: sum(1 for c in self.checks if c.status is s) for s in Status}
        return {
            "stack": self.stack,
            "region": self.region,
            "backend": self.backend,
            "ready": self.ready,
            "counts": counts,
            "seconds": round(self.seconds, 3),
            "probes": self.probes,
            "interrupted": self.interrupted,
            "leftovers": list(self.leftovers),
            "checks": [c.to_json() for c in self.checks],
        }

    def message(self) -> str:
        """The refusal `trainstack run` prints: every failure with its fix."""
        lines = [f"trainstack doctor: {self.stack} is not ready ({len(self.failures)} problem(s)):"]
        for c in self.failures:
            lines.append(f"  - {c.name}: {c.detail}")
            if c.fix:
                lines.append(f"    fix: {c.fix}")
        lines.append("Run `trainstack doctor STACK` for the whole report, or skip the checks with --no-doctor.")
        return "\n".join(lines)
