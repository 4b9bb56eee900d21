"""How a config key is declared, and the one reader that walks the declarations.

A key is a field of a frozen result dataclass whose metadata is a `Setting`: the config key, its type,
default, bounds / choices / pattern, the sentence for the docs and the fix a refusal names. The reader
(`Reader.read`) turns a raw value into the field's value using nothing but that declaration, recording a
`Problem` (key, value, what is wrong, fix) instead of raising, so that every problem is reported at once.
Cross-field rules are plain code after the read (trainstack/model/config/parse.py and the backends' own
checks); the docs, the Pulumi.yaml schema and the unknown-key refusal are all derived from the same fields.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import enum
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainstack.errors import close_matches

if TYPE_CHECKING:
    from trainstack.backends import Capabilities

NS = "trainstack"


# --------------------------------------------------------------------------------------------
# Problems


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Problem:
    """One problem with a config key: the key, the value, what is wrong and the fix."""

    key: str
    value: Any
    problem: str
    fix: str

    def __str__(self) -> str:
        shown = "(not set)" if self.value is MISSING else json.dumps(self.value, default=str)
        return f"{self.key} = {shown}: {self.problem}. Fix: {self.fix}"


class ConfigError(ValueError):
    """Invalid stack configuration; `problems` lists every key at fault."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid trainstack configuration ({len(self.problems)} problem(s)):\n{lines}")

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.problems]


# --------------------------------------------------------------------------------------------
# Declarations


class Type(str, enum.Enum):
    """What a key holds (and its type in Pulumi.yaml's project config schema, where it has one)."""

    INT = "integer"
    NUMBER = "number"
    BOOL = "boolean"
    STRING = "string"
    CHOICE = "choice"  # one of `choices`
    TIME = "time"  # ISO 8601 UTC -> datetime
    STRINGS = "strings"  # list of non-empty strings -> tuple
    MAP = "map"  # name: scalar -> dict[str, str]
    SECTION = "section"  # a nested object, itself declared by a dataclass of Settings


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Derived:
    """A default computed from other keys or from the stack (the docs show `text`)."""

    text: str


@dataclass(frozen=True)
class Applies:
    """Which backends a cluster key does something on, asked of their capabilities.

    Set to anything but its default on a backend it does not apply to, the key is refused with
    `why(capabilities)` = (the reason, the fix) rather than silently ignored."""

    test: Callable[[Capabilities], bool]
    why: Callable[[Capabilities], tuple[str, str]]


@dataclass(frozen=True)
class Setting:
    """How a config key is declared: its key, type, default, bounds, the docs' sentence and the fix."""

    key: str
    type: Type
    doc: str
    fix: str = ""  # may name {region} and keys read before it in the same object, e.g. {azCount}
    default: Any = None  # a value, REQUIRED, or Derived(...)
    lo: float | None = None
    hi: float | None = None
    exclusive_lo: bool = False
    values: tuple[Any, ...] | Callable[[], tuple[Any, ...]] = ()  # CHOICE: the choices; INT: the accepted values
    pattern: re.Pattern | None = None  # STRING; MAP: the names
    what: str = ""  # what a value that fails `pattern` / `values` is not, e.g. "a container image reference"
    min_items: int = 0  # STRINGS
    allowed: str = ""  # docs: what is allowed where a rule in code says more than the bounds
    default_doc: str = ""  # docs: the default where the value alone does not say it (None: "not set")
    applies: Applies | None = None  # cluster keys: the backends it applies to (None: every backend)
    backend: str | None = None  # SECTION: the backend whose section it is (its own checks read it)
    section: builtins.type | None = None  # SECTION: the dataclass declaring its keys
    # A reader for a value no Type expresses; the Type still says what the docs and the schema show.
    parse: Callable[[Reader, Setting, Any], Any] | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def static_default(self) -> bool:
        return not isinstance(self.default, (Derived, _Required))

    def choices(self) -> tuple[Any, ...]:
        return self.values() if callable(self.values) else self.values

    def value_default(self) -> Any:
        """What the reader returns for a missing key: the default, or None where it is required or derived."""
        return self.default if self.static_default else None


def setting(key: str, type: Type, doc: str, **kwargs: Any) -> Any:
    """A dataclass field declared by a `Setting`; its default (when the setting has a value) is the field's."""
    s = Setting(key, type, doc, **kwargs)
    return field_of(s)


def field_of(s: Setting) -> Any:
    meta = {"setting": s}
    if not s.static_default:
        return dataclasses.field(metadata=meta)  # required or derived: the reader always passes it
    if isinstance(s.default, (dict, list)):
        default = s.default
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=s.default, metadata=meta)


def section(key: str, cls: type, doc: str, *, backend: str | None = None, note: str = "") -> Any:
    """A nested object (`gpu`, `job`, ...) whose keys `cls` declares; `note`: a rule across its keys, for the docs."""
    s = Setting(key, Type.SECTION, doc, section=cls, backend=backend, allowed=note)
    return dataclasses.field(default_factory=cls, metadata={"setting": s})


@functools.cache
def settings_of(cls: type) -> tuple[tuple[str, Setting], ...]:
    """(attribute, Setting) of every declared key of `cls`, in declaration order (fixed once the class exists)."""
    return tuple((f.name, f.metadata["setting"]) for f in dataclasses.fields(cls) if "setting" in f.metadata)


def keys_of(cls: type) -> set[str]:
    return {s.key for _, s in settings_of(cls)}


def setting_for(cls: type, attribute: str) -> Setting:
    return next(s for name, s in settings_of(cls) if name == attribute)


# --------------------------------------------------------------------------------------------
# The reader


@dataclass
class Env:
    """What a parse runs against: the time, the stack's region, the project folder, the warnings so far."""

    now: dt.datetime
    region: str = "us-east-1"
    root: str | None = None  # relative paths (job.workdir) start here; None: the current directory
    warnings: list[str] = dataclasses.field(default_factory=list)


class Reader:
    """Reads typed values from one config object, collecting problems instead of raising."""

    # Tests set a set here to learn which keys the parse looked at (tests/model/test_config_table.py).
    trace: set[str] | None = None

    def __init__(self, values: Mapping[str, Any], path: str, problems: list[Problem], env: Env | None = None):
        self.values = values
        self.path = path
        self.problems = problems
        self.env = env or Env(dt.datetime.now(dt.timezone.utc))
        self.context: dict[str, Any] = {"region": self.env.region}  # what a fix may name: each key once read

    def key(self, name: str) -> str:
        return f"{self.path}{name}" if self.path.endswith(":") else f"{self.path}.{name}"

    def raw(self, name: str) -> Any:
        if Reader.trace is not None:
            Reader.trace.add(self.key(name))
        return self.values.get(name, MISSING)

    def has(self, name: str) -> bool:
        return self.raw(name) not in (MISSING, None)

    def fail(self, name: str, value: Any, problem: str, fix: str) -> None:
        self.problems.append(Problem(self.key(name), value, problem, fix))

    def fix_of(self, s: Setting) -> str:
        return s.fix.format_map(self.context) if "{" in s.fix else s.fix

    # ---- the generic read: one Setting -> one value

    def read(self, s: Setting, *, required: bool | None = None, default: Any = MISSING) -> Any:
        """The value of `s` (its default when missing or refused). `required`/`default` override the
        declaration where a rule depends on the stack kind (trainstack:owner)."""
        if default is MISSING:
            default = s.value_default()
        required = s.required if required is None else required
        value = self.raw(s.key)
        if s.parse is not None:
            out = s.parse(self, s, default)
        elif s.type is Type.INT:
            out = self._integer(s, value, default, required)
        elif s.type is Type.NUMBER:
            out = self._number(s, value, default, required)
        elif s.type is Type.BOOL:
            out = self._boolean(s, value, default)
        elif s.type is Type.STRING:
            out = self._string(s, value, default, required)
        elif s.type is Type.CHOICE:
            out = self._choice(s, value, default, required)
        elif s.type is Type.STRINGS:
            out = self._strings(s, value, default, required)
        elif s.type is Type.MAP:
            out = self._map(s, value, default)
        else:
            raise TypeError(f"{self.key(s.key)}: a {s.type.value} is not read by Reader.read")
        self.context[s.key] = out
        return out

    def read_all(self, cls: type, *, reject_unknown: bool = True) -> dict[str, Any]:
        """Every declared key of `cls` but its sections (the caller's), by attribute name; first refuses the
        keys `cls` does not declare."""
        if reject_unknown:
            self.reject_unknown(keys_of(cls))
        return {name: self.read(s) for name, s in settings_of(cls) if s.type is not Type.SECTION}

    def _missing(self, s: Setting, value: Any, required: bool) -> bool:
        if value is MISSING or value is None or (s.type is Type.STRING and value == ""):
            if required:
                choices = f" (one of {', '.join(map(str, s.choices()))})" if s.type is Type.CHOICE else ""
                self.fail(s.key, MISSING, f"is required{choices}", self.fix_of(s) or f"set {self.key(s.key)}")
            return True
        return False

    def _integer(self, s: Setting, value: Any, default: Any, required: bool) -> Any:
        if self._missing(s, value, required):
            return default
        parsed = as_int(value)
        lo, hi = int(s.lo if s.lo is not None else -(2**63)), int(s.hi if s.hi is not None else 2**63)
        if parsed is None or not lo <= parsed <= hi:
            self.fail(s.key, value, f"must be a whole number from {lo} to {hi}", self.fix_of(s))
            return default
        if s.values and parsed not in s.choices():
            self.fail(s.key, parsed, f"is not {s.what}", f"use one of {', '.join(map(str, s.choices()))}")
            return default
        return parsed

    def _number(self, s: Setting, value: Any, default: Any, required: bool) -> Any:
        if self._missing(s, value, required):
            return default
        parsed = as_float(value)
        lo, hi = float(s.lo if s.lo is not None else -math.inf), float(s.hi if s.hi is not None else math.inf)
        ok = parsed is not None and (parsed > lo if s.exclusive_lo else parsed >= lo) and parsed <= hi
        if not ok:
            bound = f"greater than {lo:g}" if s.exclusive_lo else f"at least {lo:g}"
            self.fail(s.key, value, f"must be a number {bound} and at most {hi:g}", self.fix_of(s))
            return default
        return parsed

    def _boolean(self, s: Setting, value: Any, default: Any) -> Any:
        if value is MISSING or value is None:
            return default
        parsed = as_bool(value)
        if parsed is None:
            self.fail(s.key, value, "must be true or false", f"write `{s.key}: true` or `{s.key}: false`")
            return default
        return parsed

    def _string(self, s: Setting, value: Any, default: Any, required: bool) -> Any:
        if self._missing(s, value, required):
            return default
        if not isinstance(value, str):
            self.fail(s.key, value, "must be a string", self.fix_of(s))
            return default
        if s.pattern is not None and not s.pattern.match(value):
            self.fail(s.key, value, f"is not {s.what or 'valid'}", self.fix_of(s))
            return default
        return value

    def _choice(self, s: Setting, value: Any, default: Any, required: bool) -> Any:
        if self._missing(s, value, required):
            return default
        allowed = s.choices()
        if value not in allowed:
            hint = close_matches(str(value), allowed, n=1)
            fix = self.fix_of(s) or f"use one of {', '.join(allowed)}"
            if hint:
                fix = f"did you mean `{hint[0]}`? ({fix})"
            self.fail(s.key, value, f"must be one of {', '.join(allowed)}", fix)
            return default
        return value

    def _strings(self, s: Setting, value: Any, default: Any, required: bool) -> Any:
        if self._missing(s, value, required):
            return default
        value = maybe_json(value)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(s.key, value, "must be a list of non-empty strings", self.fix_of(s))
            return default
        if len(value) < s.min_items:
            self.fail(s.key, value, "is empty" if not value else f"lists fewer than {s.min_items}", self.fix_of(s))
            return default
        return tuple(value)

    def _map(self, s: Setting, value: Any, default: Any) -> Any:
        if value is MISSING or value is None:
            return dict(default or {})
        value = maybe_json(value)
        fix = self.fix_of(s)
        if not isinstance(value, dict):
            self.fail(s.key, value, "must be a map of names to values", fix)
            return dict(default or {})
        out: dict[str, str] = {}
        for k, v in value.items():
            if s.pattern is not None and not s.pattern.match(str(k)):
                self.fail(f"{s.key}.{k}", v, f"`{k}` is not {s.what}", fix)
                continue
            if isinstance(v, (dict, list)) or v is None:
                self.fail(f"{s.key}.{k}", v, "must be a string, number or boolean", fix)
                continue
            out[str(k)] = scalar_text(v)
        return out

    # ---- objects

    def obj(self, name: str) -> Reader:
        value = self.raw(name)
        if value is MISSING or value is None:
            value = {}
        value = maybe_json(value)
        if not isinstance(value, dict):
            self.fail(name, value, "must be an object (a YAML mapping)", f"write `{name}:` followed by indented keys")
            value = {}
        return Reader(value, self.key(name), self.problems, self.env)

    def reject_unknown(self, known: set[str]) -> None:
        for name in self.values:
            if name not in known:
                hint = close_matches(name, sorted(known), n=1)
                fix = f"did you mean `{hint[0]}`?" if hint else f"remove it; known keys: {', '.join(sorted(known))}"
                self.fail(name, self.values[name], "is not a trainstack setting", fix)


# --------------------------------------------------------------------------------------------
# Values as the Pulumi engine and YAML hand them over


def maybe_json(value: Any) -> Any:
    # The Pulumi engine hands objects and lists to programs as JSON text.
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        parsed = float(value)
    elif isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
    else:
        return None
    return parsed if math.isfinite(parsed) else None


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
