"""Service quotas: will the account let the stack run `gpu.maxInstances` of its types at once?

EC2 quotas are vCPUs per instance class and purchase option, per region (Service Quotas, service code
`ec2`). Codes and names, checked against the AWS CLI reference example of `get-aws-default-service-quota`
(L-1216C47A, "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", usage metric
AWS/Usage ResourceCount Class=Standard/OnDemand) and against public tools that read the others; the
doctor also compares the name the API returns with the expected one and warns on a mismatch, so a
wrong code cannot pass silently.

SageMaker quotas are instance counts per type, named "ml.<type> for training job usage" and
"ml.<type> for spot training job usage": looked up by name with ListServiceQuotas, never by a code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from trainstack.doctor.aws import error_code, short_error
from trainstack.doctor.context import Context
from trainstack.doctor.facts import ON_DEMAND, SPOT, Demand
from trainstack.doctor.result import Check, failed, passed, skipped, warned

FAMILY = "quotas"


@dataclass(frozen=True)
class Quota:
    code: str
    name: str


@dataclass(frozen=True)
class QuotaClass:
    label: str
    on_demand: Quota
    spot: Quota

    def quota(self, market: str) -> Quota:
        return self.spot if market == SPOT else self.on_demand


P = QuotaClass(
    "P",
    Quota("L-417A185B", "Running On-Demand P instances"),
    Quota("L-7212CCBC", "All P Spot Instance Requests"),
)
G_VT = QuotaClass(
    "G and VT",
    Quota("L-DB2E81BA", "Running On-Demand G and VT instances"),
    Quota("L-3819A6DF", "All G and VT Spot Instance Requests"),
)
STANDARD = QuotaClass(
    "Standard",
    Quota("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"),
    Quota("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"),
)
_STANDARD_LETTERS = set("acdhimrtz")


def quota_class(instance_type: str) -> QuotaClass | None:
    """p3.2xlarge -> P; g4dn.xlarge -> G and VT; t3.medium -> Standard; inf2.xlarge -> None (not covered)."""
    m = re.match(r"^([a-z]+?)\d", instance_type.removeprefix("ml."))
    letters = m.group(1) if m else ""
    if letters == "p":
        return P
    if letters in ("g", "vt"):
        return G_VT
    if len(letters) == 1 and letters in _STANDARD_LETTERS:
        return STANDARD
    return None


def console_url(region: str, service: str, code: str) -> str:
    return f"https://{region}.console.aws.amazon.com/servicequotas/home/services/{service}/quotas/{code}"


def raise_command(region: str, service: str, code: str, value: int) -> str:
    return (
        f"aws service-quotas request-service-quota-increase --service-code {service} --quota-code {code} "
        f"--desired-value {value} --region {region}"
    )


def _applied(sq, service: str, code: str) -> tuple[float, str, bool]:
    """(value, name, is_default) of one quota: the applied value, else AWS's default."""
    try:
        q = sq.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]
        return float(q["Value"]), str(q.get("QuotaName", "")), False
    except Exception as exc:
        # "If the applied quota value is not available for a quota, the quota is not retrieved"
        # (GetServiceQuota, Service Quotas API reference): fall back to the default.
        if error_code(exc) != "NoSuchResourceException":
            raise
    q = sq.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]
    return float(q["Value"]), str(q.get("QuotaName", "")), True


def _needs(demands: Iterable[Demand]) -> dict[tuple[str, str], list[Demand]]:
    out: dict[tuple[str, str], list[Demand]] = {}
    for d in demands:
        cls = quota_class(d.instance_type)
        out.setdefault((cls.label if cls else f"?{d.instance_type}", d.market), []).append(d)
    return out


def check_quotas(ctx: Context) -> list[Check]:
    facts = ctx.facts
    if not facts.demands:
        return [skipped(FAMILY, "service quotas", "the stack launches no instances")]
    if facts.backend.capabilities.sagemaker_instance_names:
        return _sagemaker(ctx)
    sq = ctx.aws.client("service-quotas")
    region = facts.region
    checks: list[Check] = []
    for (_label, market), demands in _needs(facts.demands).items():
        cls = quota_class(demands[0].instance_type)
        if cls is None:
            checks.append(
                warned(
                    FAMILY,
                    f"{market} quota for {demands[0].instance_type}",
                    "the doctor knows no quota code for this instance class",
                    f"check the {market} vCPU quota of its class in the Service Quotas console ({region})",
                )
            )
            continue
        quota = cls.quota(market)
        need = sum(d.vcpus for d in demands)
        what = "; ".join(f"{d.instances} x {d.instance_type} for the {d.what}" for d in demands)
        name = f"{market} quota: {quota.name} ({quota.code})"
        try:
            value, got_name, default = _applied(sq, "ec2", quota.code)
        except Exception as exc:  # noqa: BLE001
            checks.append(
                warned(
                    FAMILY,
                    name,
                    f"cannot read it: {short_error(exc)}",
                    "allow servicequotas:GetServiceQuota and GetAWSDefaultServiceQuota to check it here, or look in "
                    + console_url(region, "ec2", quota.code),
                    code=quota.code,
                    need=need,
                )
            )
            continue
        data = {"code": quota.code, "quota": value, "need": need, "market": market, "default": default}
        if got_name and got_name.lower() != quota.name.lower():
            checks.append(
                warned(
                    FAMILY,
                    name,
                    f"the API names quota {quota.code} {got_name!r}, expected {quota.name!r}",
                    "report it: the doctor's quota table may be out of date",
                    **data,
                )
            )
        if value < need:
            checks.append(
                failed(
                    FAMILY,
                    name,
                    f"{value:g} vCPUs in {region}{' (the AWS default)' if default else ''}; the stack needs {need} "
                    f"({what})",
                    f"request {need}: {raise_command(region, 'ec2', quota.code, need)} or {console_url(region, 'ec2', quota.code)}; "
                    "or lower gpu.maxInstances / list smaller types",
                    **data,
                )
            )
        else:
            checks.append(passed(FAMILY, name, f"{value:g} vCPUs, the stack needs {need} ({what})", **data))
    return checks


def _sagemaker(ctx: Context) -> list[Check]:
    """SageMaker quotas by name: 'ml.p3.2xlarge for [spot ]training job usage' (instances)."""
    facts = ctx.facts
    region = facts.region
    sq = ctx.aws.client("service-quotas")
    wanted: dict[str, Demand] = {}
    for d in facts.demands:
        kind = "spot training job usage" if d.market == SPOT else "training job usage"
        wanted[f"ml.{d.instance_type} for {kind}".lower()] = d
    found: dict[str, tuple[str, float, str]] = {}
    try:
        for page in sq.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
            for q in page.get("Quotas", []):
                if str(q.get("QuotaName", "")).lower() in wanted:
                    found[str(q["QuotaName"]).lower()] = (str(q["QuotaCode"]), float(q["Value"]), str(q["QuotaName"]))
        missing_names = [n for n in wanted if n not in found]
        if missing_names:  # applied values list only quotas with an applied value: add the defaults
            for page in sq.get_paginator("list_aws_default_service_quotas").paginate(ServiceCode="sagemaker"):
                for q in page.get("Quotas", []):
                    key = str(q.get("QuotaName", "")).lower()
                    if key in missing_names:
                        found[key] = (str(q["QuotaCode"]), float(q["Value"]), str(q["QuotaName"]))
    except Exception as exc:  # noqa: BLE001
        return [
            warned(
                FAMILY,
                "SageMaker training quotas",
                f"cannot list them: {short_error(exc)}",
                "allow servicequotas:ListServiceQuotas and ListAWSDefaultServiceQuotas, or look in "
                f"https://{region}.console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas",
            )
        ]
    checks = []
    for key, d in wanted.items():
        market = "spot" if d.market == SPOT else ON_DEMAND
        if key not in found:
            checks.append(
                failed(
                    FAMILY,
                    f"SageMaker {market} quota for ml.{d.instance_type}",
                    f"no quota named {key!r} in {region}: SageMaker does not offer this type for training here",
                    "pick an ml. type SageMaker trains on in this region (gpu.instanceTypes), or another region",
                )
            )
            continue
        code, value, qname = found[key]
        name = f"SageMaker {market} quota: {qname} ({code})"
        data = {"code": code, "quota": value, "need": d.instances, "market": d.market}
        if value < d.instances:
            checks.append(
                failed(
                    FAMILY,
                    name,
                    f"{value:g} instances in {region}; the job needs {d.instances} (job.nodes)",
                    f"request {d.instances}: {raise_command(region, 'sagemaker', code, d.instances)} or "
                    f"{console_url(region, 'sagemaker', code)}",
                    **data,
                )
            )
        else:
            checks.append(passed(FAMILY, name, f"{value:g} instances, the job needs {d.instances}", **data))
    return checks
