"""Service quotas against what gpu.maxInstances needs (Service Quotas is not modelled by moto: `answer`)."""

from __future__ import annotations

from tests.doctor.fakes import answer, error
from trainstack.doctor.quotas import check_quotas
from trainstack.doctor.result import Status


def _quota(code: str, name: str, value: float) -> dict:
    return {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "QuotaName": name, "Value": value}}


def test_spot_p_quota_of_zero_fails_with_the_code_the_command_and_the_console_link(make_ctx):
    ctx = make_ctx("dev-ecs")
    sq = ctx.aws.client("service-quotas")
    seen = answer(sq, "GetServiceQuota", lambda p: _quota(p["QuotaCode"], "All P Spot Instance Requests", 0))
    [check] = check_quotas(ctx)
    assert seen == [{"ServiceCode": "ec2", "QuotaCode": "L-7212CCBC"}]
    assert check.status is Status.FAIL
    assert "0 vCPUs in us-east-1; the stack needs 128 (4 x p3.8xlarge" in check.detail
    assert "--quota-code L-7212CCBC --desired-value 128 --region us-east-1" in check.fix
    assert "https://us-east-1.console.aws.amazon.com/servicequotas/home/services/ec2/quotas/L-7212CCBC" in check.fix


def test_enough_quota_passes(make_ctx):
    ctx = make_ctx("dev-ecs")
    answer(
        ctx.aws.client("service-quotas"),
        "GetServiceQuota",
        lambda p: _quota(p["QuotaCode"], "All P Spot Instance Requests", 256),
    )
    [check] = check_quotas(ctx)
    assert check.status is Status.PASS and "256 vCPUs, the stack needs 128" in check.detail


def test_no_applied_value_falls_back_to_the_default_and_a_renamed_quota_warns(make_ctx):
    ctx = make_ctx("dev-ecs")
    sq = ctx.aws.client("service-quotas")

    def applied(p):
        raise error("NoSuchResourceException", "no applied quota")

    answer(sq, "GetServiceQuota", applied)
    answer(sq, "GetAWSDefaultServiceQuota", lambda p: _quota(p["QuotaCode"], "Something else", 0))
    checks = check_quotas(ctx)
    assert [c.status for c in checks] == [Status.WARN, Status.FAIL]
    assert "'Something else'" in checks[0].detail
    assert "(the AWS default)" in checks[1].detail


def test_eks_counts_on_demand_standard_and_spot_p_separately(make_ctx):
    ctx = make_ctx("dev-eks")
    sq = ctx.aws.client("service-quotas")
    names = {"L-1216C47A": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"}
    seen = answer(
        sq,
        "GetServiceQuota",
        lambda p: _quota(p["QuotaCode"], names.get(p["QuotaCode"], "All P Spot Instance Requests"), 5),
    )
    checks = {c.data["code"]: c for c in check_quotas(ctx)}
    assert {s["QuotaCode"] for s in seen} == {"L-1216C47A", "L-7212CCBC"}
    assert checks["L-1216C47A"].status is Status.PASS  # one t3.medium: 2 vCPUs
    assert checks["L-7212CCBC"].status is Status.FAIL  # 2 x p3.2xlarge: 16 vCPUs


def test_sagemaker_quotas_are_found_by_name_never_by_a_hard_coded_code(make_ctx):
    ctx = make_ctx("dev-sagemaker")
    sq = ctx.aws.client("service-quotas")
    answer(sq, "ListServiceQuotas", lambda p: {"Quotas": []})
    answer(
        sq,
        "ListAWSDefaultServiceQuotas",
        lambda p: {
            "Quotas": [
                {"QuotaName": "ml.p3.2xlarge for training job usage", "QuotaCode": "L-AAAA1111", "Value": 1},
                {"QuotaName": "ml.p3.2xlarge for spot training job usage", "QuotaCode": "L-BBBB2222", "Value": 0},
            ]
        },
    )
    [check] = check_quotas(ctx)
    assert check.status is Status.FAIL
    assert "ml.p3.2xlarge for spot training job usage (L-BBBB2222)" in check.name
    assert "0 instances in us-east-1; the job needs 1" in check.detail


def test_sagemaker_type_without_a_quota_is_not_offered_there(make_ctx):
    ctx = make_ctx("dev-sagemaker")
    sq = ctx.aws.client("service-quotas")
    answer(sq, "ListServiceQuotas", lambda p: {"Quotas": []})
    answer(sq, "ListAWSDefaultServiceQuotas", lambda p: {"Quotas": []})
    [check] = check_quotas(ctx)
    assert check.status is Status.FAIL and "does not offer this type for training here" in check.detail
