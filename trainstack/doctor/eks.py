"""EKS: the Kubernetes version is still supported, every add-on the stack installs exists for it, and
(`eks.mode: shared`) the caller has an access entry on the platform's cluster.

`eks:DescribeClusterVersions` (versionStatus UNSUPPORTED / STANDARD_SUPPORT / EXTENDED_SUPPORT),
`eks:DescribeAddonVersions` (kubernetesVersion + addonName), `eks:DescribeAccessEntry` (clusterName,
principalArn). A dedicated cluster's creator gets admin through
`bootstrap_cluster_creator_admin_permissions`, so only a shared cluster needs an entry made beforehand.
"""

from __future__ import annotations

from trainstack.doctor.aws import error_code, short_error
from trainstack.doctor.context import Context
from trainstack.doctor.result import Check, failed, passed, skipped, warned

FAMILY = "eks"


def uses_eks(ctx: Context) -> bool:
    return any(r.type.startswith("aws:eks/") for r in ctx.facts.resources)


def check_eks(ctx: Context) -> list[Check]:
    if not uses_eks(ctx):
        return []
    c = ctx.facts.cfg.cluster
    shared = c.eks.mode == "shared"
    version = c.eks.version
    if shared:
        if ctx.platform is None or ctx.platform.eks is None:
            return [skipped(FAMILY, "shared EKS cluster", "platform outputs unreadable or without `eks`")]
        version = str(ctx.platform.eks.get("version") or version)
    eks = ctx.aws.client("eks")
    checks = [_version(eks, version)]
    addons = ctx.facts.addons
    for addon in addons:
        checks.append(_addon(eks, version, addon))
    if shared:
        checks.append(_access_entry(ctx, eks))
    return checks


def _version(eks, version: str) -> Check:
    name = f"Kubernetes {version}"
    try:
        found = eks.describe_cluster_versions(clusterVersions=[version], includeAll=True)["clusterVersions"]
    except Exception as exc:  # noqa: BLE001
        return warned(
            FAMILY, name, f"cannot read the EKS versions: {short_error(exc)}", "allow eks:DescribeClusterVersions"
        )
    if not found:
        return failed(FAMILY, name, f"EKS does not know version {version}", "set eks.version to a supported version")
    info = found[0]
    status = info.get("versionStatus") or info.get("status")
    end = info.get("endOfExtendedSupportDate") or ""
    if status in ("UNSUPPORTED", "unsupported"):
        return failed(
            FAMILY, name, f"EKS no longer supports {version}", "set eks.version to a version in standard support"
        )
    if status in ("EXTENDED_SUPPORT", "extended-support"):
        return warned(
            FAMILY,
            name,
            f"{version} is in extended support (control plane $0.60/h instead of $0.10/h, until {end})",
            "set eks.version to a version in standard support",
        )
    return passed(FAMILY, name, f"{status or 'supported'}")


def _addon(eks, version: str, addon: str) -> Check:
    name = f"add-on {addon}"
    try:
        found = eks.describe_addon_versions(kubernetesVersion=version, addonName=addon)["addons"]
    except Exception as exc:  # noqa: BLE001
        return warned(FAMILY, name, f"cannot read its versions: {short_error(exc)}", "allow eks:DescribeAddonVersions")
    versions = [v["addonVersion"] for a in found for v in a.get("addonVersions", [])]
    if not versions:
        return failed(
            FAMILY,
            name,
            f"no version of {addon} for Kubernetes {version}",
            "pick an eks.version the add-on supports",
        )
    return passed(FAMILY, name, f"{len(versions)} version(s) for {version}, newest {versions[0]}")


def _access_entry(ctx: Context, eks) -> Check:
    assert ctx.platform is not None and ctx.platform.eks is not None and ctx.identity is not None
    cluster = str(ctx.platform.eks.get("clusterName"))
    principal = ctx.identity.principal_arn
    candidates = [principal]
    if ":role/" in principal and principal.count("/") > 1:  # a role with a path: entries may omit it
        account_part, _, rest = principal.partition(":role/")
        candidates.append(f"{account_part}:role/{rest.rsplit('/', 1)[-1]}")
    name = f"access entry on {cluster}"
    for arn in candidates:
        try:
            eks.describe_access_entry(clusterName=cluster, principalArn=arn)
            return passed(FAMILY, name, f"{arn} has an access entry")
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ResourceNotFoundException":
                return warned(FAMILY, name, f"cannot read it: {short_error(exc)}", "allow eks:DescribeAccessEntry")
    return failed(
        FAMILY,
        name,
        f"{principal} has no access entry on the shared cluster {cluster}: the deploy cannot create the "
        "namespace and the Job",
        f"ask the platform's owner: aws eks create-access-entry --cluster-name {cluster} --principal-arn {principal} "
        f"and associate-access-policy (AmazonEKSClusterAdminPolicy, or AmazonEKSAdminPolicy scoped to the namespace)",
    )
