"""Typed stack outputs: one frozen dataclass per set of outputs, written by a stack program, read by the tools.

A cluster stack exports two sets: `ClusterOutputs` (what every cluster stack exports: owner, locations,
teardown...) and its backend's own (`Backend.outputs`, e.g. `EcsOutputs` in `trainstack/backends/ecs.py`);
a platform stack exports `PlatformOutputs`, which cluster stacks read through their StackReference.
Each field is one stack output; its name is the field name in camelCase (`task_definition_arn` ->
`taskDefinitionArn`), and its annotation is the plain value a reader gets.

The two sides see different values for the same output, so they use two entry points:

    # the program (values are pulumi Outputs): keyword values, checked to be exactly the declared fields
    outputs = EcsOutputs.to_outputs(cluster_name=ecs.cluster.name, task_definition_arn=..., ...)
    # -> {"clusterName": <Output>, "taskDefinitionArn": <Output>, ...}, exported as is

    # a reader (a follower, `trainstack run`/`down`, a test): plain values, typed
    ecs = EcsOutputs.from_outputs(stack_outputs)   # -> EcsOutputs(cluster_name="...", ...)
    ecs.task_definition_arn

Why not construct the dataclass on the program side too: at program time a value is a `pulumi.Output[str]`,
at read time a `str`, and Python's type system cannot say "this field is T here and Output[T] there" for
one class (no higher-kinded types), so a field typed `str` would make mypy refuse every Output and a field
typed `Input[str]` would make every reader handle Outputs. `to_outputs(**values)` accepts any value (mypy
checks nothing about them) and checks the *names* when the program runs: every `trainstack plan` and every
test that evaluates a stack calls it, so a renamed or forgotten output fails there (TypeError naming the
name), never in a run. `from_outputs` checks names and plain types against the annotations and names the
missing output, its field, whose outputs they are and the fix.

Pure: no Pulumi, no AWS SDK (the model's import contract).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

O = TypeVar("O", bound="StackOutputs")


class OutputsError(ValueError):
    """A stack's outputs do not hold what its declaration says (a missing output, a value of the wrong type)."""


def camel(field_name: str) -> str:
    """`task_definition_arn` -> `taskDefinitionArn`: the stack output a field is exported as."""
    head, *rest = field_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True)
class StackOutputs:
    """Base of every outputs dataclass (subclasses are `@dataclass(frozen=True)`, fields in snake_case).

    A field with a default of None is optional: `to_outputs` leaves it out when its value is None and
    `from_outputs` reads a missing one as None. Every other field must be exported and present; one whose
    annotation admits None (`str | None`, no default) is always exported and may be null."""

    @classmethod
    def output_name(cls, field_name: str) -> str:
        """The stack output of one field (raises on a name that is not a field: no silent typo)."""
        if field_name not in {f.name for f in dataclasses.fields(cls)}:
            raise AttributeError(f"{cls.__name__} has no output field {field_name!r}")
        return camel(field_name)

    @classmethod
    def output_names(cls) -> tuple[str, ...]:
        return tuple(camel(f.name) for f in dataclasses.fields(cls))

    @classmethod
    def required(cls) -> tuple[str, ...]:
        """The fields every stack must export (no default)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING)

    @classmethod
    def to_outputs(cls, **values: object) -> dict[str, object]:
        """The program side: keyword values (pulumi Outputs or plain) -> {"camelCaseName": value}.

        Raises TypeError naming every unknown or missing field, so a renamed output fails the plan."""
        declared = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - declared)
        missing = sorted(set(cls.required()) - set(values))
        if unknown or missing:
            problems = ([f"unknown output field(s) {', '.join(unknown)}"] if unknown else []) + (
                [f"missing {', '.join(missing)}"] if missing else []
            )
            raise TypeError(
                f"{cls.__name__}.to_outputs: {'; '.join(problems)} (declared: {', '.join(sorted(declared))}). "
                f"Rename the field in {cls.__module__}.{cls.__name__} and every reader together"
            )
        return {
            camel(name): value for name, value in values.items() if not (value is None and name not in cls.required())
        }

    @classmethod
    def to_optional_outputs(cls, **values: object) -> dict[str, object]:
        """Some optional fields (default None) on the program side: what a program exports after the rest (the
        eks idle stop, registered once the teardown schedules exist). Raises TypeError on any other name."""
        optional = {f.name for f in dataclasses.fields(cls) if f.default is None}
        wrong = sorted(set(values) - optional)
        if wrong:
            raise TypeError(
                f"{cls.__name__}.to_optional_outputs: {', '.join(wrong)} not optional output fields "
                f"(optional: {', '.join(sorted(optional))})"
            )
        return {camel(name): value for name, value in values.items() if value is not None}

    @classmethod
    def from_outputs(cls: type[O], outputs: Mapping[str, Any]) -> O:
        """The reader side: a stack's outputs (plain values; other outputs are ignored) -> the typed record.

        Raises OutputsError naming the missing output(s) and whose they are."""
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        missing: list[str] = []
        for f in dataclasses.fields(cls):
            name = camel(f.name)
            value = outputs.get(name)
            if value is None:
                if f.default is dataclasses.MISSING and not (name in outputs and _is_instance(None, hints[f.name])):
                    missing.append(f"`{name}` ({cls.__name__}.{f.name})")
                values[f.name] = None
                continue
            if not _is_instance(value, hints[f.name]):
                raise OutputsError(
                    f"stack output `{name}` of {cls._whose(outputs)} is {type(value).__name__} "
                    f"{_short(value)}, not {_type_name(hints[f.name])} ({cls.__name__}.{f.name})"
                )
            values[f.name] = value
        if missing:
            raise OutputsError(
                f"the stack has no output {', '.join(missing)}, which {cls._whose(outputs)} must export: "
                "it was deployed by another trainstack version or its `pulumi up` did not finish. "
                "Fix: run `pulumi up` on the stack (or `trainstack run` again)"
            )
        return cls(**values)

    def as_outputs(self) -> dict[str, object]:
        """Back to stack outputs (what a test or a fake builds a stack's outputs from)."""
        return type(self).to_outputs(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def _whose(cls, outputs: Mapping[str, Any]) -> str:
        backend = outputs.get("backend")
        return f"the {backend} backend" if isinstance(backend, str) and backend else cls.__name__


@dataclass(frozen=True)
class ClusterOutputs(StackOutputs):
    """What every cluster stack exports (trainstack/programs/cluster.py), whatever its backend."""

    owner: str  # trainstack:owner
    backend: str  # trainstack:backend: which declaration's outputs the stack also carries
    region: str  # aws:region
    expires_at: str  # ISO 8601 UTC: when the auto-teardown fires
    platform_stack: str  # the platform stack it runs on (fully qualified)
    dataset_uri: str  # s3://<raw or curated>/<job.dataset>
    artifact_uri: str  # s3://<artifacts>/artifacts/<owner>/<stack>/: logs, markers, the model
    model_uri: str  # where the training code's model lands (SM_MODEL_DIR is uploaded here)
    checkpoint_uri: str  # s3://<artifacts>/checkpoints/<owner>/<stack>/
    teardown_schedules: Mapping[str, str]  # teardown action key -> EventBridge Scheduler schedule name
    teardown_role_arn: str  # the role those schedules act with
    code_uri: str | None = None  # the job.workdir bundle, when the stack has one

    @classmethod
    def _whose(cls, outputs: Mapping[str, Any]) -> str:
        return "every cluster stack"


@dataclass(frozen=True)
class PlatformOutputs(StackOutputs):
    """What a platform stack exports (trainstack/programs/platform.py); cluster stacks read it through their
    StackReference, `trainstack upload` reads `buckets`."""

    region: str  # aws:region: clusters must run in it
    vpc_id: str
    egress: str  # public | nat (a SageMaker job in the VPC needs nat to pull its image)
    availability_zones: list[str]
    subnet_ids: list[str]  # where GPU instances run (public or private subnets, by egress)
    public_subnet_ids: list[str]
    private_subnet_ids: list[str]  # empty with egress: public
    route_table_ids: list[str]
    security_group_id: str  # the cluster-members security group
    s3_endpoint_id: str  # the S3 gateway endpoint
    kms_key_arn: str  # the data lake's key
    kms_key_id: str
    buckets: Mapping[str, Mapping[str, str]]  # zone (raw, curated, artifacts, logs) -> {name, arn}
    glue_database: str | None  # the catalog database over the curated zone; null without one
    protected: bool  # the lake's buckets and key are protected from `pulumi destroy`
    # `trainstack:eks: {sharedCluster: true}`: clusterName, endpoint, caData, clusterSecurityGroupId, version.
    eks: Mapping[str, str] | None = None
    # Where cluster stacks' failed teardown calls go (components/teardown_alerts.py); absent on a platform
    # deployed before them, whose clusters' schedules then keep the default group and no dead-letter queue.
    teardown_schedule_group: str | None = None  # the EventBridge Scheduler group of every cluster's schedules
    teardown_dead_letter_queue_arn: str | None = None  # SQS: failed schedule (and idle-stop) invocations
    teardown_dead_letter_queue_url: str | None = None
    alerts_topic_arn: str | None = None  # SNS: the teardown-failure and idle-stop alarms notify it; subscribe to it

    @classmethod
    def _whose(cls, outputs: Mapping[str, Any]) -> str:
        return "every platform stack"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(hint: Any) -> str:
    return re.sub(r"\b(typing|collections\.abc)\.", "", getattr(hint, "__name__", None) or str(hint))


def _is_instance(value: Any, hint: Any) -> bool:
    """A plain (JSON-like) value against a field annotation: str, int, float, bool, Sequence, Mapping, unions."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_is_instance(value, h) for h in typing.get_args(hint))
    args = typing.get_args(hint)
    if origin in (list, tuple, Sequence) or hint in (list, tuple, Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return False
        return not args or all(_is_instance(v, args[0]) for v in value)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            return False
        return not args or all(_is_instance(k, args[0]) and _is_instance(v, args[1]) for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)
