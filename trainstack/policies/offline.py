"""Run the policy pack offline over an `OfflineRun`, through pulumi-policy's own analyzer.

`pulumi preview --policy-pack trainstack/policies` starts `__main__.py`, whose `PolicyPack` serves
`_PolicyAnalyzerServicer` over gRPC to the engine. Here the same servicer class, built from the
same `rules.pack_args()`, gets the same protobuf requests in-process: `Analyze` per resource
(inputs, protect, ignoreChanges, parent) and `AnalyzeStack` once (outputs and dependencies).
So deserialisation, unknown-value handling ("can't run during preview" is advisory),
`not_applicable` and enforcement levels are pulumi-policy's, not a re-implementation.

`_PolicyAnalyzerServicer` is private: pulumi-policy is pinned (pyproject.toml) and
tests/policies/test_policies.py fails loudly if its constructor or RPC signatures change.

Two differences in cost, none in result: the servicer turns a resource's properties from protobuf into a dict
once per *rule* (`deserialize_properties(json_format.MessageToDict(...))` inside its loop over the policies),
about 30 conversions of every resource per plan. Offline each distinct properties message is converted once
(`_converted_once`). And every rule still gets its own `unknown_checking_proxy` of the result, as in the loop,
but one that wraps each value when the rule first reads it rather than copying the whole resource up front
(`_LazyDictProxy`). tests/policies/test_policies.py compares both with pulumi-policy's own path on every
example stack.
"""

from __future__ import annotations

import contextlib
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, proxy
from pulumi_policy.policy import _PolicyAnalyzerServicer

from trainstack.model.config import PlatformStack, StackConfig
from trainstack.policies import rules

PACK_DIR = Path(__file__).resolve().parent
THROWAWAY_PLATFORM_CONFIG = PACK_DIR / "throwaway-platform.json"
PACK_ERROR = "policy-pack-error"  # a rule raised: `pulumi preview` would fail
_LEVEL_NAMES: dict["analyzer_pb2.EnforcementLevel.ValueType", str] = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}


@dataclass(frozen=True)
class Violation:
    """A rule's verdict on a resource (or on the stack): rule, level, resource and message."""

    rule: str
    level: str  # mandatory | advisory
    resource: str  # logical name ("" for the stack as a whole)
    type: str
    urn: str
    message: str


@dataclass
class PolicyReport:
    """The policy pack's verdicts on a plan, each rule's level and what was analysed."""

    violations: list[Violation]
    levels: dict[str, str]  # rule -> effective enforcement level
    resources: int  # how many resources the pack analysed
    not_applicable: list[tuple[str, str, str]] = field(default_factory=list)  # (rule, resource, reason)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if v.level != "mandatory"]

    @property
    def ok(self) -> bool:
        return not self.mandatory

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "pack": rules.PACK_NAME,
            "version": pack_version(),
            "rules": self.levels,
            "resources": self.resources,
            "violations": [asdict(v) for v in self.violations],
        }


def pack_version() -> str:
    return str((yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text()) or {}).get("version", "0.0.1"))


def servicer(config: Mapping[str, Any] | None = None) -> _PolicyAnalyzerServicer:
    """The analyzer `PolicyPack(**rules.pack_args())` would serve, configured like `--policy-pack-config`."""
    args = rules.pack_args()
    # PolicyPack passes enforcement_level=None as ADVISORY; every rule here sets its own level.
    s = _PolicyAnalyzerServicer(
        name=args["name"],
        version=pack_version(),
        policies=args["policies"],
        enforcement_level=EnforcementLevel.ADVISORY,
        description=args["description"],
        provider=args["provider"],
    )
    if config:
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for rule, value in config.items():
            level = value.get("enforcementLevel") if isinstance(value, Mapping) else value
            pc = analyzer_pb2.PolicyConfig(enforcementLevel=_level_enum(str(level)))
            request.policyConfig[rule].CopyFrom(pc)
        s.Configure(request, None)
    return s


def _level_enum(name: str) -> "analyzer_pb2.EnforcementLevel.ValueType":
    for value, text in _LEVEL_NAMES.items():
        if text == name:
            return value
    raise ValueError(f"policy config: enforcement level {name!r} is not one of {sorted(_LEVEL_NAMES.values())}")


class _ConvertOnce:
    """`json_format.MessageToDict` and `deserialize_properties` for `pulumi_policy.policy`, each result kept per
    distinct properties message (its deterministic wire bytes) and handed out again. Safe to share:
    deserialize_properties builds new containers without changing its input, and unknown_checking_proxy copies
    every container it wraps, so no rule sees another rule's proxy. Anything else (other messages, other
    arguments, dicts not from here) goes to the real functions."""

    def __init__(self, json_format: Any, deserialize: Callable[..., dict[str, Any]]):
        self._json_format = json_format
        self._deserialize = deserialize
        self._as_dict: dict[bytes, dict[str, Any]] = {}
        # id of a dict handed out by MessageToDict (kept alive in _as_dict) -> (that dict, its deserialized form)
        self._deserialized: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] = {}
        # id of a message seen before -> (that message, its dict): the servicer hands each rule the same
        # `request.properties` object, whose wire bytes need not be computed again (the requests are built here
        # and never changed while the servicer reads them).
        self._by_message: dict[int, tuple[Any, dict[str, Any]]] = {}
        self.converted = 0  # messages converted for real (tests/policies: once per distinct properties message)

    def __getattr__(self, name: str) -> Any:  # the rest of json_format, as it is
        return getattr(self._json_format, name)

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:  # noqa: N802 - json_format's
        if args or kwargs or not isinstance(message, struct_pb2.Struct):
            return self._json_format.MessageToDict(message, *args, **kwargs)
        seen = self._by_message.get(id(message))
        if seen is not None and seen[0] is message:  # the same message object again (the servicer's next rule)
            return seen[1]
        key = message.SerializeToString(deterministic=True)
        found = self._as_dict.get(key)
        if found is None:
            found = self._as_dict[key] = self._json_format.MessageToDict(message)
            self._deserialized[id(found)] = (found, None)
            self.converted += 1
        self._by_message[id(message)] = (message, found)  # kept alive with its dict: no id reuse
        return found

    def deserialize_properties(self, props: dict[str, Any], proxy_secrets: bool = False) -> dict[str, Any]:
        entry = self._deserialized.get(id(props))
        if proxy_secrets or entry is None or entry[0] is not props:
            return self._deserialize(props, proxy_secrets)
        if entry[1] is None:
            entry = self._deserialized[id(props)] = (props, self._deserialize(props))
        assert entry[1] is not None
        return entry[1]


class _LazyDictProxy(proxy._DictProxy):
    """What `unknown_checking_proxy(source)` returns for a dict, its values wrapped when first read.

    pulumi-policy wraps every container of a resource's properties up front, for every rule (about 30 copies of
    every resource per plan), while a rule reads a few keys. This proxy answers each read as that copy would:
    the same value or the same UnknownValueError (with the same property path), the same wrapped child on every
    read of a key, the same keys in the same order. The first write or `__target` read (pulumi-policy's
    remediation path) makes it whole: the wrapped dict the eager proxy holds, which the proxy then serves as
    the eager one does. `source` is shared by the rules and never written."""

    def __init__(self, source: dict[str, Any], props_acc: list[str]):
        self._source = source
        self._acc = props_acc
        self._made: dict[str, Any] = {}
        self._whole: dict[str, Any] | None = None

    def _child(self, key: Any) -> Any:
        if key not in self._made:
            self._made[key] = _lazy_proxy(self._source[key], proxy._append_prop(self._acc, key))
        return self._made[key]

    def _target(self) -> dict[str, Any]:
        if self._whole is None:
            self._whole = {key: self._child(key) for key in self._source}
        return self._whole

    def __getitem__(self, key: Any) -> Any:
        if key == "__target":
            return self._target()
        if self._whole is not None:
            return proxy._raise_if_unknown(key, self._whole[key], self._acc)
        return proxy._raise_if_unknown(key, self._child(key), self._acc)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._target()[key] = value

    def __len__(self) -> int:
        return len(self._whole if self._whole is not None else self._source)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._whole if self._whole is not None else self._source)


class _LazyListProxy(proxy._ListProxy):
    """_LazyDictProxy's counterpart for a list (pulumi-policy's _ListProxy: read-only; a slice reads the whole)."""

    def __init__(self, source: list[Any], props_acc: list[str]):
        self._source = source
        self._acc = props_acc
        self._made: dict[int, Any] = {}

    def _child(self, index: int) -> Any:
        if index not in self._made:
            self._made[index] = _lazy_proxy(self._source[index], proxy._append_prop(self._acc, index))
        return self._made[index]

    def __getitem__(self, key: Any) -> Any:
        if key == "__target":
            return [self._child(i) for i in range(len(self._source))]
        if isinstance(key, slice):
            value = [self._child(i) for i in range(len(self._source))][key]
        else:
            self._source[key]  # an IndexError or TypeError, as the eager list raises it
            index = operator.index(key)
            value = self._child(index + len(self._source) if index < 0 else index)
        return proxy._raise_if_unknown(key, value, self._acc)

    def __len__(self) -> int:
        return len(self._source)


def _lazy_proxy(value: Any, props_acc: list[str]) -> Any:
    """pulumi_policy.proxy._proxy_helper, each container wrapped lazily."""
    if isinstance(value, list):
        return _LazyListProxy(value, props_acc)
    if isinstance(value, dict):
        return _LazyDictProxy(value, props_acc)
    return value


def _lazy_unknown_checking_proxy(props: dict[str, Any]) -> Any:
    return _lazy_proxy(props, [])


@contextlib.contextmanager
def _converted_once() -> Iterator[_ConvertOnce]:
    """While open, pulumi-policy's servicer converts each distinct properties message once (see _ConvertOnce) and
    wraps what a rule gets in lazy proxies (see _LazyDictProxy)."""
    from pulumi_policy import policy as pp

    real = pp.json_format, pp.deserialize_properties, pp.unknown_checking_proxy
    shim = _ConvertOnce(real[0], real[1])
    pp.json_format, pp.deserialize_properties = shim, shim.deserialize_properties
    pp.unknown_checking_proxy = _lazy_unknown_checking_proxy
    try:
        yield shim
    finally:
        pp.json_format, pp.deserialize_properties, pp.unknown_checking_proxy = real


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(dict(values))
    return s


def _options(record) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=record.protect, ignoreChanges=list(record.ignore_changes), parent=record.parent or ""
    )


STACK_TYPE = "pulumi:pulumi:Stack"


def stack_urn(project: str, stack: str) -> str:
    return f"urn:pulumi:{stack}::{project}::{STACK_TYPE}::{project}-{stack}"


def analyze(
    records: Iterable[Any],
    *,
    config: Mapping[str, Any] | None = None,
    stack_outputs: Mapping[str, Any] | None = None,
    stack_urn: str = "",
    convert_once: bool = True,
) -> PolicyReport:
    """Every rule over `records` (`trainstack.plan.offline.ResourceRecord`s): Analyze each, then AnalyzeStack.

    With `stack_outputs`, AnalyzeStack also gets the root `pulumi:pulumi:Stack` resource whose properties
    are the stack's exports, as the engine sends it (pulumi pkg/resource/deploy/step_generator.go
    `AnalyzeResources`: every new resource state with its Outputs; the root stack's are its exports).
    `convert_once=False` leaves pulumi-policy's per-rule conversion alone (the tests compare the two)."""
    records = [r for r in records if r.type != "pulumi:pulumi:StackReference"]  # reads, not registrations
    s = servicer(config)
    by_urn = {r.urn: r for r in records}
    violations: list[Violation] = []
    skipped: list[tuple[str, str, str]] = []

    def collect(response, record=None) -> None:
        for d in response.diagnostics:
            target = by_urn.get(d.urn) or record
            prefix = d.description + "\n"
            message = d.message[len(prefix) :] if d.message.startswith(prefix) else d.message
            violations.append(
                Violation(
                    rule=d.policyName,
                    level=_LEVEL_NAMES.get(d.enforcementLevel, "advisory"),
                    resource=target.name if target else "",
                    type=target.type if target else "",
                    urn=target.urn if target else d.urn,
                    message=message,
                )
            )
        for na in response.not_applicable:
            skipped.append((na.policy_name, record.name if record else "", na.reason))

    def crashed(exc: Exception, record=None) -> None:
        # In `pulumi preview` an exception in a rule fails the analyzer call, and so the preview.
        violations.append(
            Violation(
                rule=PACK_ERROR,
                level="mandatory",
                resource=record.name if record else "",
                type=record.type if record else "",
                urn=record.urn if record else "",
                message=f"the policy pack failed: {type(exc).__name__}: {exc}",
            )
        )

    with _converted_once() if convert_once else contextlib.nullcontext():
        for r in records:
            request = analyzer_pb2.AnalyzeRequest(
                type=r.type, properties=_struct(r.inputs), urn=r.urn, name=r.name, options=_options(r)
            )
            try:
                collect(s.Analyze(request, None), r)
            except Exception as exc:  # noqa: BLE001 - reported as the failed preview it would be
                crashed(exc, r)
        root = []
        if stack_outputs is not None:
            root.append(
                analyzer_pb2.AnalyzerResource(
                    type=STACK_TYPE,
                    properties=_struct(stack_outputs),
                    urn=stack_urn,
                    name=stack_urn.rsplit("::", 1)[-1],
                )
            )
        stack = analyzer_pb2.AnalyzeStackRequest(
            resources=root
            + [
                analyzer_pb2.AnalyzerResource(
                    type=r.type,
                    properties=_struct(r.state or r.inputs),
                    urn=r.urn,
                    name=r.name,
                    options=_options(r),
                    parent=r.parent or "",
                    dependencies=[d for d in r.dependencies if d in by_urn],
                    propertyDependencies={
                        k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v)
                        for k, v in getattr(r, "property_dependencies", {}).items()
                    },
                )
                for r in records
            ]
        )
        try:
            collect(s.AnalyzeStack(stack, None))
        except Exception as exc:  # noqa: BLE001
            crashed(exc)
    levels = rules.levels()
    for rule, value in (config or {}).items():
        levels[rule] = str(value.get("enforcementLevel") if isinstance(value, Mapping) else value)
    return PolicyReport(violations=violations, levels=levels, resources=len(records), not_applicable=skipped)


def config_for(stack_config: StackConfig) -> dict[str, Any]:
    """The `--policy-pack-config` a stack needs: a throwaway platform (dataLake.protect: false) opts out
    of protection by the same file CI passes to `pulumi preview`."""
    if isinstance(stack_config, PlatformStack) and not stack_config.platform.data_lake.protect:
        return json.loads(THROWAWAY_PLATFORM_CONFIG.read_text())
    return {}


def check_plan(stack_config: StackConfig, run) -> PolicyReport:
    """The policy report `trainstack plan` prints for a validated config and its offline run."""
    return analyze(
        run.resources,
        config=config_for(stack_config),
        stack_outputs=run.outputs,
        stack_urn=stack_urn(run.project, run.stack),
    )
