"""AWS from the fleet commands' side: which region, and AWS's errors as sentences with a fix.

Regions are checked against botocore's own endpoint data (every partition) before any call, so a typo
is named instead of ending in a DNS failure or, behind some proxies, an HTML page.
"""

from __future__ import annotations

import os
import re
from typing import Any

from trainstack.errors import UserError, close_matches

CREDENTIALS_FIX = "give the shell AWS credentials (`aws configure sso`, AWS_PROFILE=..., or AWS_ACCESS_KEY_ID/...)"


def known_regions() -> list[str]:
    import boto3

    session = boto3.session.Session()
    found: set[str] = set()
    for partition in session.get_available_partitions():
        found.update(session.get_available_regions("ec2", partition_name=partition))
    return sorted(found)


def resolve_region(region: str | None, option: str = "--region") -> str:
    """`region`, else the AWS configuration's (AWS_REGION, AWS_DEFAULT_REGION, the profile); a known one."""
    import boto3

    chosen = region or boto3.session.Session().region_name
    if not chosen:
        raise UserError(
            f"{option}: no AWS region given and none configured. Fix: pass {option} us-east-1 (or the platform's "
            "region), or set AWS_REGION / `aws configure set region REGION`"
        )
    if os.environ.get("AWS_ENDPOINT_URL"):
        return chosen  # a stand-in endpoint (moto, LocalStack) takes any region name
    known = known_regions()
    if chosen not in known:
        close = close_matches(chosen, known, n=3)
        import botocore

        raise UserError(
            f"{option} {chosen}: not an AWS region (botocore {botocore.__version__} knows {len(known)}). Fix: "
            + (f"did you mean {' or '.join(close)}?" if close else "use a region name such as us-east-1")
        )
    return chosen


def _looks_like_html(text: str) -> bool:
    return bool(re.match(r"\s*<(!doctype|html|\?xml)", text or "", re.I)) and "<html" in (text or "").lower()


def user_error(exc: BaseException) -> UserError | None:
    """AWS SDK exceptions as UserErrors (what failed, the value, the fix); None for anything else."""
    try:
        from botocore import exceptions as be
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return None
    if isinstance(exc, be.NoRegionError):
        return UserError(
            "AWS: no region configured. Fix: pass --region us-east-1 (or the platform's region), or set AWS_REGION"
        )
    if isinstance(exc, (be.NoCredentialsError, be.PartialCredentialsError)):
        return UserError(f"AWS: {exc}. Fix: {CREDENTIALS_FIX}")
    if isinstance(exc, (be.TokenRetrievalError, be.SSOTokenLoadError, be.UnauthorizedSSOTokenError)):
        return UserError(f"AWS: {exc}. Fix: log in again (`aws sso login`)")
    if isinstance(exc, (be.EndpointConnectionError, be.ConnectTimeoutError, be.ReadTimeoutError)):
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        return UserError(
            f"AWS: cannot reach {url or 'the endpoint'} ({type(exc).__name__}). Fix: check the network, the region "
            "(--region / AWS_REGION) and AWS_ENDPOINT_URL if set"
        )
    if isinstance(exc, be.ClientError):
        return client_error(exc)
    if isinstance(exc, be.BotoCoreError):
        return UserError(f"AWS: {exc}")
    return None


def client_error(exc: Any, fix: str = "") -> UserError:
    """A ClientError as one sentence: the operation, AWS's code and message (never an HTML page)."""
    err = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
    status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") if hasattr(exc, "response") else None
    code, message = err.get("Code", "?"), str(err.get("Message", ""))
    if _looks_like_html(message) or _looks_like_html(code):
        return UserError(
            f"AWS {exc.operation_name}: the endpoint answered with an HTML page (HTTP {status}), not AWS. Fix: "
            "check the region (--region / AWS_REGION) and AWS_ENDPOINT_URL"
        )
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation") and not fix:
        fix = f"the identity needs permission for {exc.operation_name} (check `aws sts get-caller-identity`)"
    if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
        fix = fix or CREDENTIALS_FIX
    return UserError(f"AWS {exc.operation_name}: {code}: {message.strip()}" + (f". Fix: {fix}" if fix else ""))
