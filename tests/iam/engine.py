"""IAM decisions from a maintained policy engine: @cloud-copilot/iam-simulate (npm, pinned by
tests/iam/package-lock.json, installed by `make setup`). Identity, resource (bucket, key, trust)
policies and the request context go in; AWS's evaluation logic, condition operators included, is the
engine's, never ours. One node process per test process answers every `evaluate` call (simulate.mjs
--serve, a JSON line in, a JSON line out); still batch the requests of a test into one call.

The engine is strict about its input, and so is this wrapper: an unknown action, a resource of the wrong
type, a malformed policy or a context key that does not apply to the action (which the engine would
silently drop) fail the test instead of deciding on less than was asked.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ENGINE = Path(__file__).with_name("simulate.mjs")
ACCOUNT = "123456789012"  # the offline plan's account (trainstack.plan.offline.ACCOUNT_ID)

ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY = "Allowed", "ExplicitlyDenied", "ImplicitlyDenied"

# S3 operation -> the IAM action S3 authorizes it as (Amazon S3 User Guide, "Multipart upload API and
# permissions" and each operation's "Permissions" section in the S3 API Reference). Request mapping only:
# the decision is the engine's.
S3_OPERATION_ACTION = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",  # API reference, HeadBucket: "you must have permissions to perform s3:ListBucket"
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}
OBJECT_OPERATIONS = {op for op, action in S3_OPERATION_ACTION.items() if action != "s3:ListBucket"} - {
    "ListMultipartUploads"
}


def s3_context(headers: Mapping[str, str] | None = None, *, tls: bool = True) -> dict[str, str]:
    """The request context of an S3 request: aws:SecureTransport, and each server-side-encryption header
    as the S3 condition key of the same name (`x-amz-server-side-encryption` ->
    `s3:x-amz-server-side-encryption`)."""
    ctx = {"aws:SecureTransport": "true" if tls else "false"}
    for name, value in (headers or {}).items():
        if name.lower().startswith("x-amz-server-side-encryption"):
            ctx[f"s3:{name.lower()}"] = value
    return ctx


@dataclass(frozen=True)
class Request:
    label: str  # what the request is, for failure messages
    principal: str  # a role/user ARN, or a service principal such as ecs-tasks.amazonaws.com
    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    identity_policies: Sequence[dict] = ()
    resource_policy: dict | None = None
    resource_account: str = ACCOUNT

    def simulation(self) -> dict:
        sim: dict = {
            "request": {
                "principal": self.principal,
                "action": self.action,
                "resource": {"resource": self.resource, "accountId": self.resource_account},
                "contextVariables": dict(self.context),
            },
            "identityPolicies": [{"name": f"policy{i}", "policy": p} for i, p in enumerate(self.identity_policies)],
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
        }
        if self.resource_policy is not None:
            sim["resourcePolicy"] = self.resource_policy
        return sim


_server: subprocess.Popen | None = None
_errors = tempfile.TemporaryFile()  # the engine's stderr, for the message when it fails
_lock = threading.Lock()


def _stop() -> None:
    if _server is not None and _server.stdin is not None and _server.poll() is None:
        _server.stdin.close()
        _server.wait(timeout=30)


atexit.register(_stop)


def _ask(batch: str) -> str:
    """One line of answers from the engine's process, started on first use (and again if it died)."""
    global _server
    with _lock:
        if _server is None or _server.poll() is not None:
            _errors.truncate(0)
            _server = subprocess.Popen(
                ["node", str(ENGINE), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=_errors,
                text=True,
                cwd=ENGINE.parent,
            )
        assert _server.stdin is not None and _server.stdout is not None
        _server.stdin.write(batch + "\n")
        _server.stdin.flush()
        line = _server.stdout.readline()
        if not line:
            _server.wait(timeout=30)
            _errors.seek(0)
            raise AssertionError(_errors.read().decode(errors="replace"))
        return line


def evaluate(requests: Iterable[Request]) -> dict[str, str]:
    """label -> Allowed / ExplicitlyDenied / ImplicitlyDenied, for every request (labels must be unique)."""
    requests = list(requests)
    labels = [r.label for r in requests]
    assert len(set(labels)) == len(labels), "request labels must be unique"
    answers = json.loads(_ask(json.dumps([r.simulation() for r in requests])))
    problems = [
        f"{r.label}: {a.get('errors') or ''} {('ignored context keys ' + str(a.get('ignoredContextKeys'))) if a.get('ignoredContextKeys') else ''}"
        for r, a in zip(requests, answers, strict=True)
        if a["result"] == "error" or a.get("ignoredContextKeys")
    ]
    assert not problems, "the IAM engine refused requests:\n" + "\n".join(problems)
    return {r.label: a["result"] for r, a in zip(requests, answers, strict=True)}
