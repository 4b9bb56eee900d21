"""Images: every SSM parameter the stack resolves exists in its region, its AMI exists, is available, not
deprecated, x86_64, and (where the image says) carries a driver that drives the stack's GPUs.

The parameters are the ones the offline plan saw the program resolve (`aws:ssm/getParameter` invokes);
the driver row is the backend's declaration (`trainstack.backends.<name>.ami_rows`, see
trainstack/model/amis.py). DLAMI descriptions state the driver and the supported instances
("Supported EC2 instances: ... NVIDIA driver version: 5xx...."), which the doctor compares with the GPU
architecture's last driver branch (R580 for Volta) and the family.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from trainstack.backends import AmiSource
from trainstack.doctor.aws import error_code, short_error
from trainstack.doctor.context import Context
from trainstack.doctor.result import Check, failed, passed, skipped, warned
from trainstack.model import amis, catalog

FAMILY = "images"
_DRIVER = re.compile(r"NVIDIA driver version[:\s]+(\d+)\.", re.I)
_SUPPORTED = re.compile(r"Supported EC2 instances?[:\s]+([^.]+)\.", re.I)


def check_images(ctx: Context) -> list[Check]:
    facts = ctx.facts
    source = facts.backend.capabilities.ami
    if source is not AmiSource.TABLE:
        why = {
            AmiSource.SERVICE: "the service picks its hosts' images",
            AmiSource.NODE_GROUP: "the node group's AMI type picks the image (eks.amiType, eks.releaseVersion)",
        }.get(source, str(source))
        return [skipped(FAMILY, "GPU AMI", why)]
    checks: list[Check] = []
    if facts.pinned_ami:
        checks.append(_image(ctx, facts.pinned_ami, f"gpu.amiId = {facts.pinned_ami}"))
    for param in facts.ssm_parameters:
        checks.extend(_parameter(ctx, param))
    if not checks:
        checks.append(skipped(FAMILY, "GPU AMI", "the stack resolves no SSM parameter"))
    return checks


def _parameter(ctx: Context, name: str) -> list[Check]:
    region = ctx.facts.region
    try:
        value = ctx.aws.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) == "ParameterNotFound":
            return [
                failed(
                    FAMILY,
                    f"SSM parameter {name}",
                    f"not found in {region}: AWS does not publish this AMI here",
                    "use a region where it exists (the AMI's release notes list them), or pin gpu.amiId to an AMI "
                    "with the driver your GPUs need",
                )
            ]
        return [
            failed(
                FAMILY,
                f"SSM parameter {name}",
                f"cannot read it: {short_error(exc)}",
                "allow ssm:GetParameter on arn:aws:ssm:*::parameter/aws/service/* (the deploy reads it too)",
            )
        ]
    return [passed(FAMILY, f"SSM parameter {name}", f"{value} in {region}"), _image(ctx, str(value), name)]


def _image(ctx: Context, image_id: str, source: str) -> Check:
    name = f"AMI {image_id}"
    try:
        images = ctx.aws.client("ec2").describe_images(ImageIds=[image_id], IncludeDeprecated=True)["Images"]
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) in ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"):
            images = []
        else:
            return warned(FAMILY, name, f"cannot describe it: {short_error(exc)}", "allow ec2:DescribeImages")
    if not images:
        return failed(
            FAMILY,
            name,
            f"{source}: no such image in {ctx.facts.region} (or not shared with this account)",
            "pin gpu.amiId to an AMI that exists in this region, or remove the pin",
        )
    image: dict[str, Any] = images[0]
    problems = []
    if image.get("State", "available") != "available":
        problems.append(f"state {image.get('State')}")
    if image.get("Architecture", "x86_64") != "x86_64":
        problems.append(f"architecture {image.get('Architecture')} (the GPU types are x86_64)")
    deprecated = image.get("DeprecationTime")
    if deprecated and _past(str(deprecated)):
        problems.append(f"deprecated since {deprecated}")
    data = {"imageId": image_id, "imageName": image.get("Name", ""), "source": source}
    if problems:
        return failed(
            FAMILY,
            name,
            f"{image.get('Name', '')}: {', '.join(problems)}",
            "pin gpu.amiId to a current image (or remove a stale pin)",
            **data,
        )
    driver = _driver(ctx, image)
    if driver is not None:
        return driver
    return passed(FAMILY, name, f"{image.get('Name', '')} ({source}): available, x86_64, {_row_note(ctx)}", **data)


def _past(text: str) -> bool:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return when.astimezone(dt.timezone.utc) < dt.datetime.now(dt.timezone.utc)


def _row_note(ctx: Context) -> str:
    c = ctx.facts.cfg.cluster
    rows = [amis.row(ctx.facts.backend.name, a.name) for a in c.gpu.architectures]
    parts = [
        f"{r.architecture}: {r.driver_module} module" + (f", R{r.driver_branch}" if r.driver_branch else "")
        for r in rows
        if r
    ]
    return "driver row " + "; ".join(parts) if parts else "pinned image (no driver row)"


def _driver(ctx: Context, image: dict[str, Any]) -> Check | None:
    """A failure when the image's own description says it cannot drive the stack's GPUs."""
    c = ctx.facts.cfg.cluster
    text = f"{image.get('Description', '')}"
    name = f"AMI {image.get('ImageId')}"
    found = _DRIVER.search(text)
    if found:
        branch = int(found.group(1))
        for arch in c.gpu.architectures:
            if arch.last_driver_branch is not None and branch > arch.last_driver_branch:
                return failed(
                    FAMILY,
                    name,
                    f"{image.get('Name', '')} ships NVIDIA driver {branch}; {arch.name} ({c.gpu.family}) needs "
                    f"R{arch.last_driver_branch} or older",
                    f"pin gpu.amiId to an image with an R{arch.last_driver_branch} driver, or use a family of a "
                    "newer architecture (g4dn, g5, g6)",
                    imageId=image.get("ImageId"),
                    driverBranch=branch,
                )
    listed = _SUPPORTED.search(text)
    if listed:
        supported = {s.strip().lower() for s in re.split(r"[,\s]+", listed.group(1)) if s.strip()}
        families = {catalog.family_of(t) for t in c.gpu.instance_types}
        missing = sorted(f for f in families if f not in supported)
        if missing:
            return failed(
                FAMILY,
                name,
                f"{image.get('Name', '')} lists supported instances {listed.group(1).strip()}, not {', '.join(missing)}",
                "use a family the image supports, or pin gpu.amiId to an image that supports it",
                imageId=image.get("ImageId"),
            )
    return None
