"""`trainstack doctor STACK`: plan the stack offline, then check the real account for exactly what it needs.

Two rounds in a thread pool: first who the caller is, the Pulumi login and the platform's outputs (the
rest depends on them), then quotas, capacity, images, platform resources, permissions and EKS, each a
family of independent calls with bounded timeouts (trainstack/doctor/aws.py). Read-only: nothing is
created unless `--probe` (trainstack/doctor/probes.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainstack.doctor.aws import Aws, short_error
from trainstack.doctor.context import Context
from trainstack.doctor.facts import stack_facts
from trainstack.doctor.pulumi_backend import AutomationCli, PulumiCli, check_pulumi, read_platform
from trainstack.doctor.result import Check, Report, Status, failed, skipped

ORDER = ("identity", "pulumi", "platform", "quotas", "capacity", "images", "permissions", "eks", "probe")


class DoctorInputError(Exception):
    """Bad input (no such stack, invalid config, not a cluster stack): exit 2, as `plan` does."""


@dataclass
class DoctorOptions:
    stack: str
    root: Path
    secrets_provider: str | None = None
    pulumi_root: str | None = None
    platform_outputs: Path | None = None
    probe: bool = False
    probe_timeout_seconds: float = 240.0
    workers: int = 8


def load_plan(stack: str, root: Path, raw: dict[str, Any] | None = None) -> Any:
    """The offline plan of STACK (a name in stacks/ or a stack file's path)."""
    from trainstack.plan.planner import PlanError, plan, project_file, stack_file_config

    try:
        path = Path(stack)
        if raw is None and path.suffix in (".yaml", ".yml") and path.exists():
            name = path.name.removeprefix("Pulumi.").rsplit(".", 1)[0]
            raw = stack_file_config(path, project_file(root), lambda key: "[secret]")
            return plan(name, root, raw=raw)
        return plan(stack, root, raw=raw)
    except PlanError as exc:
        raise DoctorInputError(str(exc)) from None


def _safe(family: str, fn: Callable[[Context], list[Check]], ctx: Context) -> list[Check]:
    try:
        return fn(ctx)
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
        return [failed(family, f"{family} checks", f"the check itself failed: {short_error(exc)}", "report it")]


def diagnose(
    opts: DoctorOptions,
    *,
    aws: Aws | None = None,
    cli: PulumiCli | None = None,
    result: Any = None,
    probe_runner: Callable[[Context, Report], None] | None = None,
) -> Report:
    """The whole doctor run. Raises DoctorInputError for bad input (nothing was checked)."""
    from trainstack.doctor.capacity import check_capacity
    from trainstack.doctor.eks import check_eks
    from trainstack.doctor.identity import check_identity
    from trainstack.doctor.images import check_images
    from trainstack.doctor.permissions import check_permissions
    from trainstack.doctor.platform import check_platform
    from trainstack.doctor.quotas import check_quotas

    started = time.perf_counter()
    result = result if result is not None else load_plan(opts.stack, opts.root)
    try:
        facts = stack_facts(result)
    except ValueError as exc:
        raise DoctorInputError(str(exc)) from None
    ctx = Context(facts=facts, aws=aws or Aws(facts.region), root=opts.root, secrets_provider=opts.secrets_provider)
    cli = cli if cli is not None else AutomationCli(opts.root, opts.pulumi_root)
    report = Report(stack=facts.stack, region=facts.region, backend=facts.backend.name, probes=opts.probe)

    with ThreadPoolExecutor(max_workers=opts.workers, thread_name_prefix="doctor") as pool:
        first = {
            "identity": pool.submit(_safe, "identity", check_identity, ctx),
            "pulumi": pool.submit(_safe, "pulumi", lambda c: check_pulumi(c, cli), ctx),
            "platform": pool.submit(_safe, "platform", lambda c: read_platform(c, cli, opts.platform_outputs), ctx),
        }
        results = {k: f.result() for k, f in first.items()}
        if ctx.identity is None:  # no credentials: every AWS check would fail the same way
            rest = [
                skipped(f, f"{f} checks", "needs AWS credentials (see above)")
                for f in ("quotas", "capacity", "images", "permissions")
            ]
            results["quotas"] = rest
        else:
            second = {
                "platform-resources": pool.submit(_safe, "platform", check_platform, ctx),
                "quotas": pool.submit(_safe, "quotas", check_quotas, ctx),
                "capacity": pool.submit(_safe, "capacity", check_capacity, ctx),
                "images": pool.submit(_safe, "images", check_images, ctx),
                "permissions": pool.submit(_safe, "permissions", check_permissions, ctx),
                "eks": pool.submit(_safe, "eks", check_eks, ctx),
            }
            results.update({k: f.result() for k, f in second.items()})
    for key in ("identity", "pulumi", "platform", "platform-resources", "quotas", "capacity", "images"):
        report.extend(results.get(key, []))
    report.extend(results.get("permissions", []))
    report.extend(results.get("eks", []))
    if opts.probe:
        if report.failures:
            report.extend(
                [skipped("probe", "probes", "not run: fix the failures above first (probes need a working account)")]
            )
        else:
            from trainstack.doctor.probes import run_probes

            (probe_runner or (lambda c, r: run_probes(c, r, timeout=opts.probe_timeout_seconds)))(ctx, report)
    report.seconds = time.perf_counter() - started
    return report


def statuses(report: Report) -> dict[str, int]:
    return {s.value: sum(1 for c in report.checks if c.status is s) for s in Status}
