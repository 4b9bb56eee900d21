"""The config table rendered for the Pulumi CLI and for people: the `config:` schema at the end of Pulumi.yaml
and docs/configuration.md. `python -m trainstack.model.config` (`make config-docs`) writes both; tests fail
when either drifts from the table (tests/model/test_config_table.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from trainstack import backends
from trainstack.model.config.parse import schema_keys
from trainstack.model.config.settings import REQUIRED, Derived, Setting, Type, settings_of
from trainstack.model.config.table import KIND, OWNER, ClusterConfig, PlatformConfig

PULUMI_YAML_HEADER = """\
# The typed schema of the project's top-level scalar keys, generated from the config table
# (trainstack/model/config/table.py) by `make config-docs`: do not edit it here. The Pulumi CLI checks
# these types and applies the defaults to every stack of the project (the config parse accepts a key of the
# other kind of stack that holds its default). Structured keys (dataLake, gpu, job, sagemaker, eks) are
# objects, which the project schema cannot type; trainstack/model/config validates every key (and rejects
# unknown ones) before any resource is registered. Every key: docs/configuration.md.
"""

# Pulumi's project schema (pulumi/pulumi sdk/go/common/workspace/project.json, `simpleConfigType`):
# string, integer, boolean, array (with `items`).
SCHEMA_TYPES = {
    Type.INT: "integer",
    Type.BOOL: "boolean",
    Type.STRING: "string",
    Type.CHOICE: "string",
    Type.TIME: "string",
    Type.STRINGS: "array",
}


# --------------------------------------------------------------------------------------------
# What a key allows, its default, where it applies: one wording for both outputs


def allowed(s: Setting) -> str:
    if s.allowed:
        return s.allowed
    if s.type is Type.CHOICE:
        return " | ".join(f"`{c}`" for c in s.choices())
    if s.type is Type.BOOL:
        return "`true` | `false`"
    if s.type is Type.INT and s.values:
        return ", ".join(map(str, s.choices()))
    if s.type is Type.INT and s.lo is not None and s.hi is not None:
        return f"{s.lo:g}-{s.hi:g}"
    if s.type is Type.NUMBER and s.hi is not None:
        low = f"> {s.lo:g}" if s.exclusive_lo else f"≥ {s.lo:g}"
        return f"{low}, ≤ {s.hi:g}"
    return s.what


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, dict):
        return "{}" if not value else json.dumps(value)
    return str(value)


def default_text(s: Setting) -> str:
    if s.default_doc:
        return s.default_doc
    if s.default is REQUIRED:
        return "required"
    if isinstance(s.default, Derived):
        return s.default.text
    if s.default is None:
        return "not set"
    return f"`{_literal(s.default)}`"


def type_text(s: Setting) -> str:
    return {
        Type.INT: "integer",
        Type.NUMBER: "number",
        Type.BOOL: "boolean",
        Type.STRING: "string",
        Type.CHOICE: "string",
        Type.TIME: "string (ISO 8601 UTC)",
        Type.STRINGS: "list of strings",
        Type.MAP: "map of strings",
        Type.SECTION: "object",
    }[s.type]


def backends_text(s: Setting, section_backend: str | None) -> str:
    if section_backend is not None:
        return f"`{section_backend}`"
    if s.applies is None:
        return "all"
    return ", ".join(f"`{b.name}`" for b in backends.all_backends() if s.applies.test(b.capabilities))


# --------------------------------------------------------------------------------------------
# Pulumi.yaml


def pulumi_yaml_config() -> str:
    """The generated tail of Pulumi.yaml: its header comment and the `config:` section."""
    lines = [PULUMI_YAML_HEADER.rstrip("\n"), "config:"]
    for kind, s in schema_keys():
        schema_type = SCHEMA_TYPES.get(s.type)
        if schema_type is None:
            raise ValueError(f"{s.key}: a {s.type.value} has no type in Pulumi's project config schema")
        lines += [f"  {s.key}:", f"    type: {schema_type}"]
        if s.type is Type.STRINGS:
            lines += ["    items:", "      type: string"]
        if s.static_default and s.default is not None:
            lines.append(f"    default: {json.dumps(s.default)}")
        rule = allowed(s) if s.type is not Type.BOOL else ""
        text = f"{kind}: {s.doc}" if kind else s.doc[:1].upper() + s.doc[1:]
        text = (text + (f". Allowed: {rule}" if rule else "") + ".").replace("`", "")
        lines.append(f"    description: {json.dumps(text, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def with_config(pulumi_yaml: str) -> str:
    """`pulumi_yaml` with everything from its generated header (or its `config:` line) replaced."""
    lines = pulumi_yaml.splitlines(keepends=True)
    first_header_line = PULUMI_YAML_HEADER.splitlines(keepends=True)[0]
    start = next((i for i, line in enumerate(lines) if line == first_header_line), None)
    if start is None:
        start = next(i for i, line in enumerate(lines) if line.startswith("config:"))
        while start > 0 and lines[start - 1].startswith("#"):
            start -= 1  # the comment that describes it goes too
    return "".join(lines[:start]) + pulumi_yaml_config()


# --------------------------------------------------------------------------------------------
# docs/configuration.md


def _rows(cls: type, prefix: str = "") -> list[tuple[str, Setting]]:
    return [(prefix + s.key, s) for _, s in settings_of(cls) if s.type is not Type.SECTION]


def _sections(cls: type) -> Iterator[Setting]:
    for _, s in settings_of(cls):
        if s.type is Type.SECTION:
            yield s


def _cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


def _table(rows: list[tuple[str, Setting]], *, backend_column: str | None | bool = False) -> list[str]:
    head = ["key", "type", "default", "allowed"] + (["backends"] if backend_column is not False else []) + ["meaning"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, s in rows:
        cells = [f"`{key}`", type_text(s), default_text(s), allowed(s) or "—"]
        if backend_column is not False:
            cells.append(backends_text(s, backend_column if isinstance(backend_column, str) else None))
        cells.append(s.doc)
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return out


def configuration_md() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated from the config table (trainstack/model/config/table.py) by `make config-docs`; do not edit."
        " tests/model/test_config_table.py fails when this file and the table drift. -->",
        "",
        "Keys live in `stacks/Pulumi.<stack>.yaml` under the `trainstack:` namespace; `aws:region` is required "
        "for every stack. Nested keys are written as YAML objects (`trainstack:gpu:` followed by indented "
        "`instanceTypes: [...]`) or, with `trainstack run --set`, dotted (`gpu.instanceTypes=[...]`). Unknown keys "
        "are errors (with a did-you-mean), and every problem is reported at once, each naming the key, the value, "
        "what is allowed and the fix, before `pulumi up` registers anything.",
        "",
        "`Pulumi.yaml` declares the top-level scalar keys' types and defaults (generated from the same table); "
        "the Pulumi CLI applies those defaults to every stack of the project, so a key of the other kind of "
        "stack that holds its default is accepted.",
        "",
        "## Every stack",
        "",
        *_table([(KIND.key, KIND), (OWNER.key, OWNER)]),
        "",
        "## Platform stack (`trainstack:kind: platform`)",
        "",
        *_table(_rows(PlatformConfig)),
    ]
    for sec in _sections(PlatformConfig):
        assert sec.section is not None
        out += ["", f"### `{sec.key}`: {sec.doc}", ""]
        out += _table(_rows(sec.section, sec.key + "."))
        out += ["", sec.allowed] if sec.allowed else []
    out += [
        "",
        "## Cluster stack (`trainstack:kind: cluster`)",
        "",
        "The `backends` column lists the backends a key does something on, from their declared capabilities "
        "(see [Backends](#backends)); a key set to anything but its default on another backend is refused. "
        "`trainstack:sagemaker` and `trainstack:eks` belong to their backend: elsewhere they are ignored with a "
        "warning.",
        "",
        *_table(_rows(ClusterConfig), backend_column=None),
    ]
    for sec in _sections(ClusterConfig):
        assert sec.section is not None
        out += ["", f"### `{sec.key}`: {sec.doc}", ""]
        out += _table(_rows(sec.section, sec.key + "."), backend_column=sec.backend)
        out += ["", sec.allowed] if sec.allowed else []
    out += ["", *_backends_table(), ""]
    return "\n".join(out)


def _backends_table() -> list[str]:
    out = [
        "## Backends",
        "",
        "Each backend is declared once in `trainstack/backends/<name>.py`; config validation asks its "
        "capabilities, and runs its own checks (`config_checks`) for what only it has.",
        "",
        "| backend | what it runs | multi-node | spot | GPU AMI | `job.command` started by torchrun | "
        "instance types per run | own checks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in backends.all_backends():
        c = b.capabilities
        cells = [
            f"`{b.name}`",
            b.summary,
            "yes" if c.multi_node else "no (`job.nodes: 1`)",
            c.spot.value,
            c.ami.value,
            c.command.value,
            "any" if c.max_instance_types is None else str(c.max_instance_types),
            f"`{b.config_checks}`" if b.config_checks else "—",
        ]
        out.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return out
