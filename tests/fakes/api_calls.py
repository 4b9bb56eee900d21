"""Every AWS API call a test's code makes, checked against botocore's service model (the model AWS publishes
for its SDKs): botocore's own ParamValidator (required members, types, unknown names, minimums), plus what it
leaves to the service: enum values and maximum lengths/sizes (the model's `enum` and `max` traits), so an
argument the real service would refuse fails here too. Nothing about the services is hand-written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient
from botocore.validate import validate_parameters


@contextmanager
def recorded_calls() -> Iterator[list[tuple[str, str, dict[str, Any], Any]]]:
    """(service, operation, params, operation model) of every call made through any botocore client."""
    calls: list[tuple[str, str, dict[str, Any], Any]] = []
    real = BaseClient._make_api_call

    def record(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        model = self.meta.service_model.operation_model(operation_name)
        calls.append((self.meta.service_model.service_name, operation_name, dict(api_params), model))
        return real(self, operation_name, api_params)

    BaseClient._make_api_call = record  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = real  # type: ignore[method-assign]


def _beyond_validator(value: Any, shape: Any, path: str) -> list[str]:
    problems: list[str] = []
    if shape is None or value is None:
        return problems
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                problems += _beyond_validator(value[name], member, f"{path}.{name}")
    elif kind == "list" and isinstance(value, list):
        top = shape.metadata.get("max")
        if top is not None and len(value) > top:
            problems.append(f"{path}: {len(value)} items, the model allows at most {top}")
        for i, item in enumerate(value):
            problems += _beyond_validator(item, shape.member, f"{path}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        top = shape.metadata.get("max")
        if top is not None and len(value) > top:
            problems.append(f"{path}: {len(value)} entries, the model allows at most {top}")
        for k, v in value.items():
            problems += _beyond_validator(k, shape.key, f"{path} key")
            problems += _beyond_validator(v, shape.value, f"{path}[{k!r}]")
    elif kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            problems.append(f"{path} = {value!r}: not one of the model's {sorted(shape.enum)}")
        top = shape.metadata.get("max")
        if top is not None and len(value) > top:
            problems.append(f"{path}: {len(value)} characters, the model allows at most {top}")
    elif kind in ("integer", "long") and isinstance(value, int):
        top = shape.metadata.get("max")
        if top is not None and value > top:
            problems.append(f"{path} = {value}: the model allows at most {top}")
    return problems


def model_problems(calls: list[tuple[str, str, dict[str, Any], Any]]) -> list[str]:
    """What botocore's service models refuse in the recorded calls (empty: every call fits its model)."""
    problems: list[str] = []
    for service, operation, params, model in calls:
        where = f"{service}.{operation}"
        try:
            validate_parameters(params, model.input_shape)
        except Exception as exc:  # noqa: BLE001 - botocore's ParamValidationError names every problem
            problems.append(f"{where}: {exc}")
        problems += [f"{where}: {p}" for p in _beyond_validator(params, model.input_shape, "")]
    return problems
