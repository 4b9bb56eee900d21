"""API requests as EventBridge Scheduler universal targets take them (pure; botocore's models only).

A universal target (`arn:aws:scheduler:::aws-sdk:<service>:<apiAction>`) takes the request with
every structure member name in PascalCase, as the AWS SDK integrations of Step Functions do:
"Parameters ... are expressed in PascalCase, even if the native service API is in camelCase"
(docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html). For query and
JSON-1.1 APIs (autoscaling, ssm, sagemaker) that is the wire casing already; for rest-json APIs
such as EKS it is not: `{"clusterName": ...}` makes CreateSchedule or the call fail with
"missing field ClusterName" (reported by public Terraform setups of `eks:updateNodegroupConfig`).
Map keys (tags, labels, SSM document parameters) are data, not member names, and keep their case.

`to_universal` converts a request built in the API's own shape (which botocore validates);
`from_universal` maps it back so botocore can validate what the schedule will send.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

from trainstack.model import memo

T = TypeVar("T")


def remembered(kind: str, key: Any, compute: Callable[[], T]) -> T:
    """`compute()` (a pure function of botocore's models and `key`), kept between plans (trainstack/model/memo.py)
    under the installed botocore's version, its data path and `key`: a plan whose requests did not change
    neither imports botocore nor loads a model. The value must survive a JSON round trip unchanged."""
    import botocore  # its __init__ alone: the version, without the models' imports

    parts = [f"botocore={botocore.__version__}", f"AWS_DATA_PATH={os.environ.get('AWS_DATA_PATH', '')}"]
    return memo.remembered(f"botocore-{kind}", [*parts, json.dumps(key)], compute)  # order kept: exact inputs


def to_universal_remembered(service: str, api_action: str, request: dict) -> dict:
    """`to_universal`, kept between plans (`remembered`)."""
    return remembered(
        "universal-input", [service, api_action, request], lambda: to_universal(service, api_action, request)
    )


@functools.cache
def _loader():
    from botocore.loaders import create_loader

    return create_loader(os.environ.get("AWS_DATA_PATH"))  # the search path a botocore session uses


@functools.cache
def service_model(service: str):
    """botocore's model of `service` (latest API version, with its SDK extras), loaded once per process
    (the plan's schema check shares it). What `botocore.session.Session.get_service_model` returns,
    without a session (whose event handlers cost more than the model) and without listing every
    service botocore knows first. Raises botocore.exceptions.DataNotFoundError for an unknown service."""
    from botocore.exceptions import DataNotFoundError
    from botocore.loaders import ExtrasProcessor
    from botocore.model import ServiceModel

    loader = _loader()
    path = f"{service}/{loader.determine_latest_version(service, 'service-2')}/service-2"
    data = loader.load_data(path)
    extras = []
    for kind in loader.extras_types:  # botocore's Loader.load_service_model merges these the same way
        try:
            extras.append(loader.load_data(f"{path}.{kind}-extras"))
        except DataNotFoundError:
            pass
    ExtrasProcessor().process(data, extras)
    return ServiceModel(data, service_name=service)


def _input_shape(service: str, operation: str):
    return service_model(service).operation_model(operation).input_shape


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def to_universal(service: str, api_action: str, request: dict) -> dict:
    """The API request (botocore's member names) -> the universal target's input (PascalCase members)."""

    def rename(key: str, members: Any) -> str:
        return _pascal(key) if key in members else key

    def convert(value: Any, shape: Any) -> Any:  # look members up by their botocore name, then rename
        kind = getattr(shape, "type_name", None)
        if kind == "structure" and isinstance(value, dict):
            return {rename(k, shape.members): convert(v, shape.members.get(k)) for k, v in value.items()}
        if kind == "list" and isinstance(value, list):
            return [convert(v, shape.member) for v in value]
        if kind == "map" and isinstance(value, dict):
            return {k: convert(v, shape.value) for k, v in value.items()}
        return value

    return convert(request, _input_shape(service, _pascal(api_action)))


def from_universal(service: str, api_action: str, data: dict) -> tuple[dict, list[str]]:
    """The universal target's input -> the API request botocore validates, and the member names
    that are not in PascalCase (each one a key the target would not recognise)."""
    wrong: list[str] = []

    def convert(value: Any, shape: Any, path: str) -> Any:
        kind = getattr(shape, "type_name", None)
        if kind == "structure" and isinstance(value, dict):
            by_pascal = {_pascal(m): m for m in shape.members}
            out = {}
            for k, v in value.items():
                member = by_pascal.get(k)
                if member is None and k in shape.members and _pascal(k) != k:
                    wrong.append(f"{path}{k} (write {_pascal(k)})")
                    member = k
                out[member or k] = convert(v, shape.members.get(member or k), f"{path}{_pascal(member or k)}.")
            return out
        if kind == "list" and isinstance(value, list):
            return [convert(v, shape.member, f"{path[:-1]}[{i}].") for i, v in enumerate(value)]
        if kind == "map" and isinstance(value, dict):
            return {k: convert(v, shape.value, f"{path}{k}.") for k, v in value.items()}
        return value

    return convert(data, _input_shape(service, _pascal(api_action)), ""), wrong
