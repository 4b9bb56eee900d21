"""Helpers for the doctor's tests: plans of the example stacks, AWS clients on moto, and `answer`, which
lets a test compute a botocore response from the request (for the APIs moto does not model: Service
Quotas, spot placement scores, SimulatePrincipalPolicy, EKS versions/add-ons/access entries).

`answer` works like botocore's Stubber (same two events): the request is still validated against the
service model before the fake sees it, so a parameter AWS would refuse fails the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from tests.helpers import ROOT

_EXAMPLES: Mapping[str, Any] = {}  # the session's example plans (tests/doctor/conftest.py), evaluated on first use
_PLANS: dict[str, Any] = {}
_PLATFORMS: dict[str, dict] = {}
_LOCK = threading.Lock()


def plan_of(stack: str) -> Any:
    from trainstack.plan.planner import plan

    with _LOCK:
        if stack in _EXAMPLES:
            return _EXAMPLES[stack]
        if stack not in _PLANS:
            _PLANS[stack] = plan(stack, ROOT, _platform_cache=_PLATFORMS)
        return _PLANS[stack]


def facts_of(stack: str) -> Any:
    from trainstack.doctor.facts import stack_facts

    return stack_facts(plan_of(stack))


def answer(client: Any, operation: str, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
    """Make `client.<operation>` answer `fn(api_params)`; returns the list of requests seen.
    `fn` may raise `error(code, message)` to answer with an AWS error."""
    seen: list[dict[str, Any]] = []
    local = threading.local()
    service = client.meta.service_model.service_id.hyphenize()

    def capture(params: dict[str, Any], **kwargs: Any) -> None:
        local.params = dict(params)

    def respond(model: Any, **kwargs: Any) -> Any:
        if model.name != operation:
            return None
        params = getattr(local, "params", {})
        seen.append(params)
        try:
            return AWSResponse(None, 200, {}, None), fn(params)
        except ClientError as exc:
            return AWSResponse(None, 400, {}, None), exc.response

    client.meta.events.register(f"before-parameter-build.{service}.{operation}", capture)
    client.meta.events.register_first(f"before-call.{service}.{operation}", respond)
    return seen


def error(code: str, message: str = "", operation: str = "Call") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def clients(region: str = "us-east-1") -> Callable[[str, str], Any]:
    """A factory for trainstack.doctor.aws.Aws: plain boto3 clients (moto's, inside mock_aws)."""
    made: dict[tuple[str, str], Any] = {}

    def make(name: str, reg: str) -> Any:
        if (name, reg) not in made:
            made[(name, reg)] = boto3.client(name, region_name=reg)
        return made[(name, reg)]

    return make
