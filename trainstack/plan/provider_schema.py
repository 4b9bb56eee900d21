"""Provider-schema validation of an offline run: what a real `pulumi preview` would refuse.

The mock engine accepts any resource input. This module checks every `aws:*` resource's recorded
inputs (camelCase, as the engine receives them; integers arrive as floats) against the installed
`pulumi_aws` SDK's own types, recursively: the resource's `*Args` class and the nested
`@pulumi.input_type` classes with their `@pulumi.getter(name=...)` names and type hints.
Reported: unknown properties (with a did-you-mean), wrong scalar types, missing required
properties (a property whose type hint does not admit None), values outside an SDK enum, and values
outside the closed list a property's docstring states ("Valid values: `a`, `b`"; see `doc_values`).

JSON payloads AWS parses itself are checked too: IAM policy grammar (queue policies included), ECS
container definitions (botocore's `RegisterTaskDefinition` model), EventBridge Scheduler universal-target
inputs and the AWS SDK tasks of Step Functions definitions (the botocore model of the API each calls), and
EventBridge event patterns (a JSON object).

Values the mock engine leaves unknown are skipped. Types of other providers are skipped; the
`kubernetes:*` objects of the eks backend plug in through `EXTRA_CHECKS` (kubernetes-validate,
on that branch). Only SDK modules the program already imported are read, and each class's hints
and each used property's docstring are resolved once per process.
"""

from __future__ import annotations

import enum
import functools
import importlib
import json
import re
import typing
from collections import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from trainstack.errors import close_matches
from trainstack.plan.offline import ASSET_KEY

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN: a value known only after `up`


@dataclass(frozen=True)
class Finding:
    """An input the provider would refuse at a real preview: the resource, the property path and why."""

    resource: str  # logical name
    type: str  # type token
    path: str  # property path, e.g. launchTemplateData.blockDeviceMappings[0].ebs.volumeSize
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.resource} ({self.type}) {self.path}: {self.problem}. Fix: {self.fix}"


# Type-token prefixes checked by another validator. The eks backend registers
# `EXTRA_CHECKS["kubernetes:"] = <kubernetes-validate check>`; until then they are skipped here,
# explicitly, because the pulumi_aws SDK knows nothing about them.
EXTRA_CHECKS: dict[str, Callable[[Any], list[Finding]]] = {}
SKIPPED_PREFIXES = ("kubernetes:",)


def check(records: Iterable[Any]) -> list[Finding]:
    """Every finding for the recorded resources (`trainstack.plan.offline.ResourceRecord`s)."""
    findings: list[Finding] = []
    for r in records:
        extra = next((fn for prefix, fn in EXTRA_CHECKS.items() if r.type.startswith(prefix)), None)
        if extra is not None:
            findings.extend(extra(r))
            continue
        if not r.type.startswith("aws:") or r.type.startswith(SKIPPED_PREFIXES) or not r.custom:
            continue
        args_cls = args_class(r.type)
        if args_cls is None:
            findings.append(
                Finding(
                    r.name,
                    r.type,
                    "(type)",
                    "the installed pulumi_aws SDK has no such resource",
                    "use a resource class of pulumi_aws",
                )
            )
            continue
        findings.extend(_Checker(r.name, r.type).object(r.inputs, args_cls, ""))
        for payload_check in _PAYLOAD_CHECKS.get(r.type, ()):
            findings.extend(payload_check(r))
    return findings


# ---------------------------------------------------------------------------------------------
# The SDK's types


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


@functools.cache
def args_class(type_token: str) -> type | None:
    """`aws:s3/bucket:Bucket` -> `pulumi_aws.s3.BucketArgs` (from its own module, imported on demand)."""
    try:
        _pkg, mod, cls = type_token.split(":")
        package, file = mod.split("/")
    except ValueError:
        return None
    base = "pulumi_aws" if package == "index" else f"pulumi_aws.{package}"
    try:
        # The package first, whole: pulumi_aws's packages are lazy modules (pulumi._utils.lazy_import) whose
        # __init__ runs at the first attribute read. Importing `pulumi_aws.autoscaling.group` before that runs
        # the package's __init__ from inside it, which stops half-way (its `from .group import *` meets the
        # module being imported) and leaves `pulumi_aws.autoscaling` without `Group` for the whole process.
        getattr(importlib.import_module(base), cls, None)
        module = importlib.import_module(f"{base}.{_snake(file)}")
    except ImportError:
        try:  # a file name the camel -> snake rule misses: ask the package for the class
            module = importlib.import_module(getattr(importlib.import_module(base), cls).__module__)
        except (ImportError, AttributeError):
            return None
    # A resource whose Args name clashes with a nested input type's gets `<Class>InitArgs`.
    for name in (f"{cls}InitArgs", f"{cls}Args"):
        candidate = getattr(module, name, None)
        if candidate is not None and candidate.__module__ == module.__name__:
            return candidate
    return None


@functools.cache
def _properties(cls: type) -> dict[str, Any]:
    """Pulumi (camelCase) property name -> resolved type hint of an input type."""
    from pulumi import _types

    return dict(_types._raw_return_hints(cls))


@functools.cache
def _python_names(cls: type) -> dict[str, str]:
    from pulumi import _types

    return {pulumi: py for py, pulumi in _types.input_type_py_to_pulumi_names(cls).items()}


def _is_input_type(t: Any) -> bool:
    from pulumi import _types

    return isinstance(t, type) and _types.is_input_type(t)


_ALTERNATIVES_OF: dict[int, tuple[Any, tuple[Any, ...]]] = {}  # id(hint) -> (hint, its alternatives)


def _alternatives(hint: Any) -> tuple[Any, ...]:
    """_hint_alternatives(hint), looked up by the hint's identity first: the hints come from the classes' cached
    property hints, the same objects at every lookup, and hashing a typing Union (for functools.cache) hashes
    all its arguments every time, a quarter of the check's CPU. The entry keeps its hint alive (no id reuse)."""
    found = _ALTERNATIVES_OF.get(id(hint))
    if found is not None and found[0] is hint:
        return found[1]
    alternatives = _hint_alternatives(hint)
    _ALTERNATIVES_OF[id(hint)] = (hint, alternatives)
    return alternatives


@functools.cache
def _hint_alternatives(hint: Any) -> tuple[Any, ...]:
    """The concrete shapes a hint admits, with Input/Output/Awaitable/Optional stripped.

    The result holds builtins (str, int, float, bool), enum classes, input-type classes,
    ("list", item hint), ("map", value hint), `Any`, and None when the hint admits None.
    """
    import pulumi

    out: list[Any] = []

    def add(h: Any) -> None:
        origin = typing.get_origin(h)
        if h is type(None):
            out.append(None)
        elif origin is typing.Union:
            for a in typing.get_args(h):
                add(a)
        elif origin is abc.Awaitable or origin is pulumi.Output or h is pulumi.Output:
            pass  # Input[T] = Union[T, Awaitable[T], Output[T]]: the T is listed too
        elif origin in (list, abc.Sequence, typing.Sequence):
            out.append(("list", typing.get_args(h)[0] if typing.get_args(h) else Any))
        elif origin in (dict, abc.Mapping, typing.Mapping):
            out.append(("map", typing.get_args(h)[1] if typing.get_args(h) else Any))
        elif h in (dict, abc.Mapping):
            out.append(("map", Any))
        elif isinstance(h, type) and typing.is_typeddict(h):
            pass  # the `*ArgsDict` twin of an input type listed beside it
        else:
            out.append(h)

    add(hint)
    return tuple(dict.fromkeys(out))


@functools.cache
def _required(cls: type) -> tuple[str, ...]:
    return tuple(name for name, hint in _properties(cls).items() if None not in _alternatives(hint))


# ---------------------------------------------------------------------------------------------
# The closed lists of values the SDK's docstrings state

# Many string arguments have no SDK enum, only a sentence in the docstring the provider's schema
# description became: "How to allocate capacity across the Spot pools. Valid values: `lowest-price`,
# `capacity-optimized`, `capacity-optimized-prioritized`, and `price-capacity-optimized`. Default: ...",
# "Valid values are `zonal` and `regional`.", "Possible values are: ...", "One of: `OFF`, `FLEXIBLE`.".
# The mock engine accepts any string there; the real deploy does not: the provider validates many such
# arguments at `pulumi preview`, and where it does not (terraform-provider-aws declares
# `spot_allocation_strategy` without a validator, internal/service/autoscaling/group.go) AWS refuses the
# value in the middle of `pulumi up` (CreateAutoScalingGroup: ValidationError). A list is used only when
# it is read precisely, else the property is not checked:
# - the statement opens a sentence and is the docstring's only mention of valid/possible/allowed/
#   supported/accepted values (a second one is usually a per-mode list: "For HTTP APIs, valid values
#   are ...", "Valid values for dedicated connections: ...");
# - every item is a `backticked` literal, joined by ",", "and", "or", "&" or "|", and the list ends the
#   sentence (ranges "`0` to `1000`", "between `1` and `20`" and open tails "or a 12-digit account ID"
#   are not lists);
# - "Valid values include ..." is skipped: the SDK uses it for partial lists (glue's
#   CatalogCreateDatabaseDefaultPermissionArgs.permissions "include" 9 Lake Formation permissions,
#   lakeformation's PermissionsArgs.permissions "may include" 11 of the same, DESCRIBE among them);
# - placeholders (`<segment-names>`, `...`, an example URL, `month * 31`, a range `0-128`) void the
#   list; a `*` in an item is a wildcard (`custom-oracle*`); "(default)"-style notes after an item are
#   dropped; quotes around an item (`"Auto"`) are not part of the value;
# - values are compared without regard to case (some provider validators ignore case, and the
#   docstring cannot say which), numbers only against lists of numbers, and an ARN never against a
#   list of keywords.
_SENTENCE = r"(?:^|(?<=[.!?] ))"
_VALUES_MENTION = re.compile(
    rf"\b(?:valid|possible|allowed|supported|accepted|permitted) (?:values?|options)\b|{_SENTENCE}(?:(?:must|can) be )?one of\b",
    re.I,
)
_VALUES_START = re.compile(
    rf"{_SENTENCE}(?:(?:currently,? )?(?:the (?:only )?|current )?(?:valid|possible|allowed|supported|accepted)"
    r" (?:values?|options)(?: for this (?:parameter|argument))?(?: are| is)?(?: currently)?(?: one of)?"
    r"|(?:(?:must|can) be )?one of):? (?=`)",
    re.I,
)
_VALUES_ITEM = re.compile(r"`(?P<value>[^`]+)`(?: ?\([^()`]*\))?")
_VALUES_SEP = re.compile(r",? (?:and|or|&|\|) |, ?")
_VALUES_END = re.compile(r" ?(?:[.;](?: |$)|$)")
_LITERAL = re.compile(r"[^\s<>\"'`|()]+(?: [^\s<>\"'`|()]+)*")
# Not a literal: `...`, an example (`ALLOW-FROM https://example.com`), a formula (`month * 31`).
_PLACEHOLDER = re.compile(r"\.\.\.|example|://| \*|\* |^\d+(?:\.\d+)? ?- ?\d", re.I)


def doc_values(doc: str | None) -> tuple[str, ...] | None:
    """The closed list of values a pulumi_aws property docstring states, or None (no list, or one this
    parser cannot read precisely; the rules are above)."""
    text = " ".join((doc or "").split())
    if len(_VALUES_MENTION.findall(text)) != 1:
        return None
    start = _VALUES_START.search(text)
    if start is None:
        return None
    values: list[str] = []
    pos = start.end()
    while (item := _VALUES_ITEM.match(text, pos)) is not None:
        values.append(item.group("value"))
        pos = item.end()
        sep = _VALUES_SEP.match(text, pos)
        if sep is None or not text.startswith("`", sep.end()):
            break
        pos = sep.end()
    if not values or not _VALUES_END.match(text, pos):
        return None
    out: list[str] = []
    for value in values:
        if len(value) > 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        parts = [p.strip() for p in value.split("|")]  # `ikev1 | ikev2`: one item, two values
        if not all(_LITERAL.fullmatch(p) and not _PLACEHOLDER.search(p) for p in parts):
            return None
        out.extend(parts)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class DocumentedValues:
    """The values a provider property's documentation lists as the ones it takes."""

    owner: str  # aws.<module>.<Class>.<python_name>: where the list is written
    values: tuple[str, ...]

    def admits(self, value: Any) -> bool:
        if isinstance(value, bool):
            return True  # the type check's business
        if isinstance(value, (int, float)):
            numbers = [_number(v) for v in self.values]
            return None in numbers or float(value) in numbers  # a list of words says nothing about numbers
        if not isinstance(value, str) or value.startswith("arn:"):
            return True  # where AWS takes a keyword or an ARN (a Lambda as an ASG termination policy)
        return any(_value_pattern(v).fullmatch(value) for v in self.values)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@functools.cache
def _value_pattern(value: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in value.split("*")), re.I)


# Documented lists the provider does not enforce as written: any value passes there, as in OPEN_ENUMS.
OPEN_DOCUMENTED_VALUES = frozenset(
    {
        # "Valid values are `ACTIVE` or `RESERVED`. Default to `PAUSED`.": the API's QueueStatus is
        # ACTIVE | PAUSED (RESERVED is a pricing plan); found by checking each list against its own default.
        "aws.mediaconvert.QueueArgs.status",
    }
)


@functools.cache
def documented_values(cls: type, key: str) -> DocumentedValues | None:
    """The closed list the docstring of `cls`'s property `key` (camelCase) states, read on first use."""
    python = _python_names(cls).get(key)
    prop = getattr(cls, python, None) if python else None
    if not isinstance(prop, property):
        return None
    package = cls.__module__.split(".")[1:-1]  # pulumi_aws.autoscaling._inputs -> autoscaling
    owner = ".".join(["aws", *package, cls.__name__, python or ""])
    values = doc_values(prop.__doc__)
    return DocumentedValues(owner, values) if values and owner not in OPEN_DOCUMENTED_VALUES else None


# ---------------------------------------------------------------------------------------------
# The walk


# SDK enums that lag behind AWS (new instance types arrive monthly): any string passes where the SDK
# also accepts a plain string.
OPEN_ENUMS = frozenset({"InstanceType"})

_SCALAR_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


class _Checker:
    def __init__(self, resource: str, type_: str):
        self.resource, self.type = resource, type_
        self.findings: list[Finding] = []

    def fail(self, path: str, problem: str, fix: str) -> None:
        self.findings.append(Finding(self.resource, self.type, path or "(inputs)", problem, fix))

    def object(self, value: dict, cls: type, path: str) -> list[Finding]:
        props = _properties(cls)
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key not in props:
                self.fail(where, f"is not a property of {cls.__name__}", self._did_you_mean(key, cls))
                continue
            self.value(item, props[key], where, documented_values(cls, key))
        for key in _required(cls):
            if key not in value:
                where = f"{path}.{key}" if path else key
                self.fail(
                    where,
                    f"is required by {cls.__name__} and missing",
                    f"set `{key}` (Python: {_python_names(cls).get(key, key)})",
                )
        return self.findings

    def _did_you_mean(self, key: str, cls: type) -> str:
        names = _python_names(cls)  # camelCase -> snake_case
        by_form = {**{k: k for k in names}, **{py: k for k, py in names.items()}}
        close = close_matches(key, list(by_form), n=1, cutoff=0.6) or close_matches(
            _snake(key), list(by_form), n=1, cutoff=0.6
        )
        if close:
            camel = by_form[close[0]]
            return f"did you mean `{camel}` (Python: {names[camel]})?"
        return f"remove it; {cls.__name__} has {', '.join(sorted(names)) or 'no properties'}"

    def value(self, value: Any, hint: Any, path: str, documented: DocumentedValues | None = None) -> None:
        """Check `value` against `hint`; `documented` is the list the property's docstring states (it
        applies to the value itself or to each item of a list, never to the members of an object)."""
        if value is None or value == UNKNOWN:
            return  # unknown until `up` (or explicitly unset): nothing to check offline
        alts = _alternatives(hint)
        if Any in alts or typing.Any in alts:
            return
        if isinstance(value, dict) and ASSET_KEY in value:  # a recorded pulumi.Asset / pulumi.Archive
            import pulumi

            if not any(isinstance(a, type) and issubclass(a, (pulumi.Asset, pulumi.Archive)) for a in alts):
                self.fail(path, f"is a {value[ASSET_KEY]}", f"use {self._expected(alts)}")
            return
        if isinstance(value, dict):
            classes = [a for a in alts if _is_input_type(a)]
            maps = [a for a in alts if isinstance(a, tuple) and a[0] == "map"]
            if maps:
                for k, v in value.items():
                    self.value(v, maps[0][1], f"{path}.{k}")
            elif len(classes) == 1:
                self.object(value, classes[0], path)
            elif classes:
                best = min(classes, key=lambda c: len(set(value) - set(_properties(c))))
                self.object(value, best, path)
            else:
                self.fail(path, "is an object", f"use {self._expected(alts)}")
            return
        if isinstance(value, list):
            lists = [a for a in alts if isinstance(a, tuple) and a[0] == "list"]
            if not lists:
                self.fail(path, "is a list", f"use {self._expected(alts)}")
                return
            for i, item in enumerate(value):
                self.value(item, lists[0][1], f"{path}[{i}]", documented)
            return
        enums = [a for a in alts if isinstance(a, type) and issubclass(a, enum.Enum)]
        if self._scalar_ok(value, alts):
            if documented is not None and not enums and not documented.admits(value):
                self._not_documented(value, documented, path)
            return
        if enums and isinstance(value, str):
            allowed = [str(e.value) for c in enums for e in c]
            hint_ = close_matches(value, allowed, n=1)
            fix = f"use one of {', '.join(allowed)}"
            self.fail(
                path,
                f"{json.dumps(value)} is not a value of {enums[0].__name__}",
                f"did you mean `{hint_[0]}`? ({fix})" if hint_ else fix,
            )
            return
        self.fail(
            path,
            f"{json.dumps(value)} is {_kind(value)}, the provider wants {self._expected(alts)}",
            f"pass {self._expected(alts)}",
        )

    def _not_documented(self, value: Any, documented: DocumentedValues, path: str) -> None:
        allowed = ", ".join(documented.values)
        words = [v for v in documented.values if "*" not in v]
        close = close_matches(str(value), words, n=1) or close_matches(
            str(value).lower(), [w.lower() for w in words], n=1
        )
        hint_ = next((w for w in words if w.lower() == close[0].lower()), None) if close else None
        self.fail(
            path,
            f"{json.dumps(value)} is not one of the valid values pulumi_aws documents for {documented.owner}",
            f"did you mean `{hint_}`? (use one of {allowed})" if hint_ else f"use one of {allowed}",
        )

    @staticmethod
    def _scalar_ok(value: Any, alts: tuple[Any, ...]) -> bool:
        enums = [a for a in alts if isinstance(a, type) and issubclass(a, enum.Enum) and a.__name__ not in OPEN_ENUMS]
        if isinstance(value, bool):
            return bool in alts
        if isinstance(value, (int, float)):
            # The engine carries every number as a float: 200 arrives as 200.0.
            return (
                float in alts
                or (int in alts and float(value).is_integer())
                or any(value in [e.value for e in c] for c in enums)
            )
        if isinstance(value, str):
            if enums:  # Union[str, SomeEnum]: the SDK lists every value the provider takes
                return any(value in [str(e.value) for e in c] for c in enums)
            return str in alts
        return False

    @staticmethod
    def _expected(alts: tuple[Any, ...]) -> str:
        names = []
        for a in alts:
            if a in _SCALAR_NAMES:
                names.append(_SCALAR_NAMES[a])
            elif isinstance(a, tuple):
                names.append("a list" if a[0] == "list" else "an object (map)")
            elif _is_input_type(a):
                names.append(f"an object ({a.__name__})")
            elif isinstance(a, type) and issubclass(a, enum.Enum):
                names.append(f"one of {', '.join(str(e.value) for e in a)}")
        return " or ".join(dict.fromkeys(names)) or "another value"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# JSON payloads AWS parses itself


POLICY_KEYS = {"Version", "Id", "Statement"}
STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
}
PRINCIPAL_KEYS = {"AWS", "Service", "Federated", "CanonicalUser"}
# IAM condition operators (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html);
# each may carry `IfExists` and a `ForAllValues:`/`ForAnyValue:` set qualifier.
CONDITION_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
}
ACTION_RE = re.compile(r"^(\*|[a-z0-9-]+:[A-Za-z0-9*?]+)$")


def policy_problems(text: str, *, kind: str) -> list[tuple[str, str, str]]:
    """(path, problem, fix) for one policy document. kind: identity | resource | trust."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return [("", f"is not JSON ({exc})", "build the document as a dict and json.dumps it")]
    out: list[tuple[str, str, str]] = []
    if not isinstance(doc, dict):
        return [("", "is not a JSON object", 'write {"Version": "2012-10-17", "Statement": [...]}')]
    for key in sorted(set(doc) - POLICY_KEYS):
        out.append((key, "is not a policy element", _close(key, POLICY_KEYS)))
    if doc.get("Version") not in ("2012-10-17", "2008-10-17"):
        out.append(
            (
                "Version",
                f"{json.dumps(doc.get('Version'))} is not a policy language version",
                'use "2012-10-17" (without it, policy variables are not substituted)',
            )
        )
    statements = doc.get("Statement")
    statements = [statements] if isinstance(statements, dict) else statements
    if not isinstance(statements, list) or not statements:
        return out + [("Statement", "is missing or empty", "add at least one statement")]
    for i, st in enumerate(statements):
        p = f"Statement[{i}]"
        if not isinstance(st, dict):
            out.append((p, "is not an object", 'write each statement as {"Effect": ..., "Action": ...}'))
            continue
        for key in sorted(set(st) - STATEMENT_KEYS):
            out.append((f"{p}.{key}", "is not a statement element", _close(key, STATEMENT_KEYS)))
        if st.get("Effect") not in ("Allow", "Deny"):
            out.append((f"{p}.Effect", f"{json.dumps(st.get('Effect'))} is not Allow or Deny", 'use "Allow" or "Deny"'))
        if ("Action" in st) == ("NotAction" in st):
            out.append((p, "needs exactly one of Action and NotAction", "list the actions under Action"))
        for key in ("Action", "NotAction"):
            for a in _strings(st.get(key)):
                if not ACTION_RE.match(a):
                    out.append((f"{p}.{key}", f"{json.dumps(a)} is not service:Action", "write e.g. s3:GetObject"))
        has_resource = "Resource" in st or "NotResource" in st
        has_principal = "Principal" in st or "NotPrincipal" in st
        if kind == "trust":
            if has_resource:
                out.append((f"{p}.Resource", "does not belong in a trust policy", "remove it"))
            if not has_principal:
                out.append(
                    (
                        p,
                        "has no Principal; a trust policy names who may assume the role",
                        'add Principal, e.g. {"Service": "ec2.amazonaws.com"}',
                    )
                )
        elif not has_resource:
            out.append((p, "has no Resource", 'add Resource (an ARN pattern, or "*")'))
        if kind == "resource" and not has_principal:
            out.append(
                (
                    p,
                    "has no Principal; a resource policy names whom it applies to",
                    'add Principal, e.g. "*" with a Condition, or {"AWS": "arn:aws:iam::123456789012:root"}',
                )
            )
        if kind == "identity" and has_principal:
            out.append((f"{p}.Principal", "does not belong in an identity policy", "remove it"))
        if kind != "identity" and kind and has_principal:
            principal = st.get("Principal", st.get("NotPrincipal"))
            if principal != "*" and not (isinstance(principal, dict) and set(principal) <= PRINCIPAL_KEYS):
                out.append(
                    (
                        f"{p}.Principal",
                        f'{json.dumps(principal)} is not "*" or a map of {", ".join(sorted(PRINCIPAL_KEYS))}',
                        'write e.g. {"Service": "ec2.amazonaws.com"}',
                    )
                )
        cond = st.get("Condition")
        if cond is not None:
            if not isinstance(cond, dict):
                out.append((f"{p}.Condition", "is not an object", 'write {"StringEquals": {"key": "value"}}'))
                continue
            for op, body in cond.items():
                base = op.split(":", 1)[1] if op.startswith(("ForAllValues:", "ForAnyValue:")) else op
                base = base[: -len("IfExists")] if base.endswith("IfExists") else base
                if base not in CONDITION_OPERATORS:
                    out.append(
                        (f"{p}.Condition.{op}", "is not an IAM condition operator", _close(base, CONDITION_OPERATORS))
                    )
                elif not isinstance(body, dict) or not body:
                    out.append(
                        (
                            f"{p}.Condition.{op}",
                            "must map condition keys to values",
                            'write {"aws:SourceAccount": "123456789012"}',
                        )
                    )
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _close(word: str, allowed: Iterable[str]) -> str:
    hint = close_matches(word, sorted(allowed), n=1)
    return f"did you mean `{hint[0]}`?" if hint else f"use one of {', '.join(sorted(allowed))}"


def _policy_check(key: str, kind: str) -> Callable[[Any], list[Finding]]:
    def run(r: Any) -> list[Finding]:
        text = r.inputs.get(key)
        if not isinstance(text, str) or UNKNOWN in text:
            return []
        return [
            Finding(r.name, r.type, f"{key}{'.' + p if p else ''} (IAM policy)", problem, fix)
            for p, problem, fix in policy_problems(text, kind=kind)
        ]

    return run


def _service_model(service: str):
    from trainstack.model.scheduler_input import service_model

    return service_model(service)  # one cached model per service, shared with the teardown's input conversion


def api_errors(service: str, operation: str, params: Any, member: str | None = None) -> str:
    """botocore's report on `params` as the request of `service`.`operation` ("" when valid).

    With `member`, `params` is that one member of the request (e.g. `containerDefinitions`).
    """
    from botocore.validate import ParamValidator

    shape = _service_model(service).operation_model(operation).input_shape
    if member is not None:
        shape = shape.members[member]
    return ParamValidator().validate(params, shape).generate_report()


def _container_definitions(r: Any) -> list[Finding]:
    text = r.inputs.get("containerDefinitions")
    if not isinstance(text, str) or UNKNOWN in text:
        return []
    path = "containerDefinitions (ECS RegisterTaskDefinition)"
    try:
        containers = json.loads(text)
    except ValueError as exc:
        return [Finding(r.name, r.type, path, f"is not JSON ({exc})", "json.dumps a list of container definitions")]
    from trainstack.model.scheduler_input import remembered

    report = remembered(  # botocore's report, kept between plans while the definitions do not change
        "api-errors",
        ["ecs", "RegisterTaskDefinition", containers, "containerDefinitions"],
        lambda: api_errors("ecs", "RegisterTaskDefinition", containers, member="containerDefinitions"),
    )
    return (
        [Finding(r.name, r.type, path, report.strip(), "follow the ECS API's ContainerDefinition shape")]
        if report
        else []
    )


_UNIVERSAL_TARGET_RE = re.compile(r"^arn:aws[a-z-]*:scheduler:::aws-sdk:(?P<service>[a-z0-9-]+):(?P<action>\w+)$")


def universal_target_problem(arn: str, text: str) -> str:
    """botocore's report on a Scheduler universal target's `input` for the API its ARN names."""
    m = _UNIVERSAL_TARGET_RE.match(arn)
    if not m:
        return ""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return f"input is not JSON ({exc})"
    return sdk_request_problem(m.group("service"), m.group("action"), data)


def sdk_request_problem(service: str, action: str, data: Any) -> str:
    """botocore's report on a request in the PascalCase of Scheduler universal targets and Step Functions AWS SDK
    integrations (trainstack/model/scheduler_input.py) for `service`'s `action`."""
    operation = action[:1].upper() + action[1:]
    try:
        model = _service_model(service)
    except Exception:  # botocore.exceptions.UnknownServiceError
        return f"the target names AWS service `{service}`, which botocore does not know"
    if operation not in model.operation_names:
        return f"`{service}` has no API action `{action}`; {_close(operation, model.operation_names)}"
    from trainstack.model.scheduler_input import from_universal

    params, wrong = from_universal(service, action, data)
    casing = (
        f"universal targets take member names in PascalCase: {', '.join(wrong)}" if wrong else ""
    )  # trainstack/scheduler_input.py
    return "\n".join(p for p in (casing, api_errors(service, operation, params).strip()) if p)


def _schedule_target(r: Any) -> list[Finding]:
    target = r.inputs.get("target") or {}
    arn, text = target.get("arn"), target.get("input")
    if not isinstance(arn, str) or not isinstance(text, str) or UNKNOWN in arn + text:
        return []
    from trainstack.model.scheduler_input import remembered

    # botocore's report, kept between plans while the target does not change
    problem = remembered("universal-target", [arn, text], lambda: universal_target_problem(arn, text))
    return (
        [
            Finding(
                r.name,
                r.type,
                "target.input (Scheduler universal target)",
                problem,
                f"match the {arn.rsplit(':', 2)[-2]} API request shape",
            )
        ]
        if problem
        else []
    )


def _state_machine(r: Any) -> list[Finding]:
    """Every AWS SDK task of a Step Functions definition against botocore's model of the API it calls."""
    text = r.inputs.get("definition")
    if not isinstance(text, str) or UNKNOWN in text:
        return []
    try:
        definition = json.loads(text)
    except ValueError as exc:
        return [Finding(r.name, r.type, "definition", f"is not JSON ({exc})", "json.dumps the States Language dict")]
    from trainstack.model.idle_stop import sdk_tasks
    from trainstack.model.scheduler_input import remembered

    findings = []
    for state, service, action, params in sdk_tasks(definition):
        # `Key.$` parameters are JSONPath selections resolved at run time: the member is present, its value unknown.
        data = {k[:-2] if k.endswith(".$") else k: ("" if k.endswith(".$") else v) for k, v in params.items()}
        problem = remembered(  # botocore's report, kept between plans while the request does not change
            "sdk-task", [service, action, data], functools.partial(sdk_request_problem, service, action, data)
        )
        if problem:
            findings.append(
                Finding(
                    r.name,
                    r.type,
                    f"definition.States[{state!r}].Parameters (aws-sdk:{service}:{action})",
                    problem,
                    f"match the {service} {action} request shape, member names in PascalCase",
                )
            )
    return findings


def _json_object(key: str, what: str) -> Callable[[Any], list[Finding]]:
    def run(r: Any) -> list[Finding]:
        text = r.inputs.get(key)
        if not isinstance(text, str) or UNKNOWN in text:
            return []
        try:
            ok = isinstance(json.loads(text), dict)
        except ValueError:
            ok = False
        return [] if ok else [Finding(r.name, r.type, key, f"is not a JSON object ({what})", "json.dumps a dict")]

    return run


_PAYLOAD_CHECKS: dict[str, tuple[Callable[[Any], list[Finding]], ...]] = {
    "aws:iam/role:Role": (_policy_check("assumeRolePolicy", "trust"),),
    "aws:iam/rolePolicy:RolePolicy": (_policy_check("policy", "identity"),),
    "aws:iam/policy:Policy": (_policy_check("policy", "identity"),),
    "aws:s3/bucketPolicy:BucketPolicy": (_policy_check("policy", "resource"),),
    "aws:kms/key:Key": (_policy_check("policy", "resource"),),
    "aws:ecs/taskDefinition:TaskDefinition": (_container_definitions,),
    "aws:scheduler/schedule:Schedule": (_schedule_target,),
    "aws:sqs/queuePolicy:QueuePolicy": (_policy_check("policy", "resource"),),
    "aws:sfn/stateMachine:StateMachine": (_state_machine,),
    "aws:cloudwatch/eventRule:EventRule": (_json_object("eventPattern", "an EventBridge event pattern"),),
}
