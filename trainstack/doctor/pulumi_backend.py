"""The Pulumi side: CLI present and new enough, logged in to a backend, a secrets provider that works.

`pulumi whoami --json` (through the Automation API's `LocalWorkspace.who_am_i`) names the backend URL:
Pulumi Cloud (https://...) or a self-managed one (s3://bucket[/prefix], file://...). For an S3 backend
the state bucket must be readable; for the secrets provider `trainstack run` passes (`--secrets-provider`,
TRAINSTACK_SECRETS_PROVIDER or PULUMI_SECRETS_PROVIDER) an `awskms://` key must encrypt and decrypt a test
blob, and the default passphrase provider of a self-managed backend needs PULUMI_CONFIG_PASSPHRASE(_FILE).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

from trainstack.backends import outputs as contract
from trainstack.doctor.aws import short_error
from trainstack.doctor.context import Context, PlatformOutputs
from trainstack.doctor.result import Check, failed, passed, skipped, warned

FAMILY = "pulumi"
INSTALL = "curl -fsSL https://get.pulumi.com | sh -s -- --version {version}"


class PulumiCli(Protocol):
    def version(self) -> str: ...

    def whoami(self) -> dict[str, Any]: ...

    def stack_outputs(self, stack: str) -> dict[str, Any]: ...


class CliUnavailable(Exception):
    """No usable `pulumi` executable."""


@dataclass
class AutomationCli:
    """The real CLI through the Automation API (the same command `trainstack run` drives)."""

    root: Path
    pulumi_root: str | None = None
    _ws: Any = None

    def _workspace(self) -> Any:
        if self._ws is None:
            from pulumi import automation as auto

            try:
                command = auto.PulumiCommand(root=self.pulumi_root, skip_version_check=True)
            except Exception as exc:  # noqa: BLE001 - not installed / not executable
                raise CliUnavailable(short_error(exc)) from None
            self._ws = auto.LocalWorkspace(work_dir=str(self.root), pulumi_command=command)
        return self._ws

    def version(self) -> str:
        ws = self._workspace()
        return str(ws.pulumi_command.version or ws.pulumi_version)

    def whoami(self) -> dict[str, Any]:
        who = self._workspace().who_am_i()
        return {"user": who.user, "url": who.url, "organizations": who.organizations or []}

    def stack_outputs(self, stack: str) -> dict[str, Any]:
        from trainstack.run.driver import output_values  # one CLI command instead of the SDK's two

        return output_values(self._workspace(), stack)


def required_version(root: Path) -> str:
    path = root / ".pulumi-version"
    return path.read_text().strip().lstrip("v") if path.exists() else "3.272.0"


def _tuple(version: str) -> tuple[int, ...]:
    core = version.strip().lstrip("v").split("-")[0].split("+")[0]
    return tuple(int(p) for p in core.split(".") if p.isdigit())


def kms_key_of(url: str) -> tuple[str, str | None]:
    """`awskms://alias/x?region=r` -> ("alias/x", "r"); `awskms:///arn:aws:kms:...` -> (the ARN, None)."""
    rest = url[len("awskms://") :]
    key, _, query = rest.partition("?")
    region = parse_qs(query).get("region", [None])[0]
    return key.lstrip("/"), region


def check_pulumi(ctx: Context, cli: PulumiCli, env: Mapping[str, str] = os.environ) -> list[Check]:
    want = required_version(ctx.root)
    try:
        have = cli.version()
    except CliUnavailable as exc:
        return [
            failed(
                FAMILY,
                "Pulumi CLI",
                f"no usable `pulumi` on PATH ({exc})",
                f"install it: {INSTALL.format(version=want)} (or set TRAINSTACK_PULUMI_ROOT to a folder with bin/pulumi)",
            )
        ]
    checks: list[Check] = []
    if _tuple(have) < _tuple(want):
        checks.append(
            failed(
                FAMILY,
                "Pulumi CLI",
                f"version {have} is older than {want} (.pulumi-version)",
                f"upgrade: {INSTALL.format(version=want)}",
            )
        )
    else:
        checks.append(passed(FAMILY, "Pulumi CLI", f"version {have} (need {want} or newer)", version=have))
    try:
        who = cli.whoami()
    except Exception as exc:  # noqa: BLE001 - CommandError: not logged in
        checks.append(
            failed(
                FAMILY,
                "Pulumi backend login",
                f"`pulumi whoami` failed: {short_error(exc)}",
                "log in: `pulumi login` (Pulumi Cloud) or `pulumi login s3://BUCKET` (a self-managed S3 backend)",
            )
        )
        return checks
    url = str(who.get("url") or "")
    checks.append(_backend(ctx, url, str(who.get("user") or "")))
    checks.append(_secrets(ctx, url, env))
    return checks


def _backend(ctx: Context, url: str, user: str) -> Check:
    scheme = urlparse(url).scheme
    if scheme in ("https", "http"):
        return passed(FAMILY, "Pulumi backend login", f"{user} on {url} (Pulumi Cloud or a Pulumi service)", url=url)
    if scheme == "s3":
        parsed = urlparse(url)
        bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
        region = parse_qs(parsed.query).get("region", [None])[0]
        s3 = ctx.aws.client("s3", region) if region else ctx.aws.client("s3")
        try:
            s3.list_objects_v2(Bucket=bucket, Prefix=(prefix + "/" if prefix else "") + ".pulumi/", MaxKeys=1)
        except Exception as exc:  # noqa: BLE001
            return failed(
                FAMILY,
                "Pulumi backend login",
                f"self-managed backend {url}: its state bucket cannot be listed: {short_error(exc)}",
                f"grant s3:ListBucket, s3:GetObject and s3:PutObject on {bucket} to these credentials, "
                "or `pulumi login` to the backend your team uses",
                url=url,
            )
        return passed(FAMILY, "Pulumi backend login", f"{user} on self-managed {url} (state bucket readable)", url=url)
    if scheme == "file":
        return warned(
            FAMILY,
            "Pulumi backend login",
            f"state in local files ({url}): only this machine sees the stacks; CI's reaper cannot find them",
            "for a team, `pulumi login` to Pulumi Cloud or `pulumi login s3://BUCKET`",
            url=url,
        )
    return passed(FAMILY, "Pulumi backend login", f"{user} on {url}", url=url)


def _secrets(ctx: Context, url: str, env: Mapping[str, str]) -> Check:
    provider = ctx.secrets_provider or ""
    name = "secrets provider"
    if provider.startswith("awskms://"):
        key, region = kms_key_of(provider)
        kms = ctx.aws.client("kms", region) if region else ctx.aws.client("kms")
        try:
            blob = kms.encrypt(KeyId=key, Plaintext=b"trainstack doctor")["CiphertextBlob"]
            kms.decrypt(CiphertextBlob=blob, KeyId=key)
        except Exception as exc:  # noqa: BLE001
            return failed(
                FAMILY,
                name,
                f"{provider}: encrypting a test value failed: {short_error(exc)}",
                f"grant kms:Encrypt and kms:Decrypt on {key} to these credentials (key policy or IAM), "
                "or pass another --secrets-provider",
            )
        return passed(FAMILY, name, f"{provider}: encrypts and decrypts")
    self_managed = urlparse(url).scheme not in ("https", "http")
    if provider in ("", "passphrase") and self_managed:
        if env.get("PULUMI_CONFIG_PASSPHRASE") is not None or env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
            return passed(FAMILY, name, "passphrase (PULUMI_CONFIG_PASSPHRASE is set)")
        return failed(
            FAMILY,
            name,
            "a self-managed backend with the passphrase secrets provider, and no PULUMI_CONFIG_PASSPHRASE: "
            "`pulumi stack init` cannot run non-interactively",
            "export PULUMI_CONFIG_PASSPHRASE (or _FILE), or pass --secrets-provider "
            "awskms://alias/NAME?region=REGION (also TRAINSTACK_SECRETS_PROVIDER)",
        )
    if not provider:
        return passed(FAMILY, name, "the backend's default (Pulumi Cloud keeps a key per stack)")
    return passed(FAMILY, name, f"{provider} (not checked: only awskms:// can be tested from here)")


def read_platform(ctx: Context, cli: PulumiCli | None, outputs_file: Path | None) -> list[Check]:
    """The deployed platform stack's outputs: from --platform-outputs FILE or `pulumi stack output`."""
    import json

    name = ctx.facts.platform_stack
    what = "platform stack outputs"
    try:
        if outputs_file is not None:
            outputs = json.loads(outputs_file.read_text())
        elif cli is None:
            raise CliUnavailable("no Pulumi CLI")
        else:
            outputs = cli.stack_outputs(name)
    except Exception as exc:  # noqa: BLE001
        ctx.platform_error = short_error(exc)
        return [
            failed(
                "platform",
                what,
                f"trainstack:platformStack = {name}: its outputs cannot be read: {ctx.platform_error}",
                f"deploy the platform (`pulumi up -s {name.rsplit('/', 1)[-1]}`) with the same backend login, "
                "or pass --platform-outputs FILE (`pulumi stack output --json -s NAME > FILE`)",
            )
        ]
    try:  # what a platform exports, by the contract the platform program writes (trainstack/backends/outputs.py)
        contract.PlatformOutputs.from_outputs(outputs)
    except contract.OutputsError as exc:
        ctx.platform_error = str(exc)
        return [
            failed(
                "platform",
                what,
                f"trainstack:platformStack = {name}: {exc} (not a trainstack platform, or one deployed by an older "
                "trainstack?)",
                "point trainstack:platformStack at a deployed trainstack platform stack, or `pulumi up` it again",
            )
        ]
    ctx.platform = PlatformOutputs(name, dict(outputs))
    if outputs.get("region") != ctx.facts.region:
        return [
            failed(
                "platform",
                what,
                f"the platform {name} is in {outputs.get('region')}, the stack in {ctx.facts.region}",
                f"set aws:region to {outputs.get('region')} (clusters run next to their data)",
            )
        ]
    return [
        passed("platform", what, f"{name}: {len(ctx.platform.subnet_ids)} subnets, {len(ctx.platform.buckets)} buckets")
    ]


def skipped_platform(reason: str) -> Check:
    return skipped("platform", "platform stack outputs", reason)
