"""The pure half of `trainstack run`: template + overrides -> one validated stack config.

No Pulumi, no AWS: merging a template with `--owner/--name/--ttl-hours/--set/--workdir/--command`,
the run's expiry, its stack name, and the `pulumi config set-all --json` payload.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainstack.errors import ExitCode, UserError
from trainstack.model.config import MAX_TTL_HOURS, NS

# The exit codes, named once in trainstack.errors (these aliases keep the old names importable).
EXIT_OK = ExitCode.OK
EXIT_JOB_FAILED = ExitCode.FAILED
EXIT_REFUSED = ExitCode.REFUSED
EXIT_CLEANUP_INCOMPLETE = ExitCode.CLEANUP_INCOMPLETE
EXIT_INTERRUPTED = ExitCode.INTERRUPTED

STACK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Expiry margin beyond the job's own limit: time for `up`, image pulls and the destroy.
EXPIRY_MARGIN = dt.timedelta(hours=1)


class RefusedError(UserError):
    """Bad input found before anything was created (exit 2). The message names key, value and fix."""


@dataclass(frozen=True)
class Overrides:
    owner: str | None = None
    name: str | None = None
    ttl_hours: int | None = None
    sets: Sequence[str] = field(default_factory=tuple)  # KEY=VALUE, VALUE parsed as JSON when it is JSON
    workdir: str | None = None
    command: Sequence[str] | None = None


def parse_command(text: str) -> list[str]:
    """`--command 'python train.py --epochs 3'` as the job's argv (shell words, no shell)."""
    import shlex

    example = "--command 'python train.py --epochs 3'"
    try:
        words = shlex.split(text)
    except ValueError as exc:  # e.g. "No closing quotation"
        raise RefusedError(
            f"--command {text!r}: {str(exc).lower()} (it is split into words as a shell would). Fix: close the "
            f"quote, e.g. {example}"
        ) from None
    if not words:
        raise RefusedError(
            f"--command {text!r}: empty. Fix: give the command to run, e.g. {example}, or leave --command out "
            "to run the template's trainstack:job.command"
        )
    return words


def template_file(template: str, root: Path) -> Path:
    """`dev-ecs` -> stacks/Pulumi.dev-ecs.yaml; a path to a stack file is used as is."""
    as_path = Path(template)
    if as_path.suffix in (".yaml", ".yml") or "/" in template:
        if not as_path.exists():
            raise RefusedError(
                f"TEMPLATE = {template}: no such file; pass an example stack name such as dev-ecs "
                "or the path to a Pulumi.<stack>.yaml file"
            )
        return as_path
    from trainstack.plan.planner import project_file, stack_names

    path = root / (project_file(root).get("stackConfigDir") or ".") / f"Pulumi.{template}.yaml"
    if not path.exists():
        raise RefusedError(
            f"TEMPLATE = {template}: no stack file {path} (templates here: {', '.join(stack_names(root))})"
        )
    return path


def load_template(path: Path, root: Path) -> dict[str, Any]:
    """The template's flat config map with the project's schema defaults under it (as `pulumi up` sees it)."""
    from trainstack.plan.planner import project_file, stack_file_config

    def refuse_secret(key: str) -> Any:
        # Encrypted with another stack's key: a fresh stack cannot decrypt it.
        raise RefusedError(
            f"{key} in {path} is a secret of another stack; pass it with --set {key}=VALUE "
            "or keep secrets out of templates"
        )

    return stack_file_config(path, project_file(root), refuse_secret)  # PlanError (exit 2) for a broken file


def parse_set(item: str) -> tuple[str, list[str], Any]:
    """`job.maxRuntimeHours=2` -> ("trainstack:job", ["maxRuntimeHours"], 2). VALUE is JSON when it parses."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RefusedError(
            f"--set {item}: expected KEY=VALUE, e.g. --set job.maxRuntimeHours=2 "
            "or --set 'gpu.instanceTypes=[\"p3.2xlarge\"]'"
        )
    namespace, colon, rest = key.rpartition(":")
    full_ns = namespace if colon else NS
    top, *path = rest.split(".")
    if not top or any(not p for p in path):
        raise RefusedError(f"--set {item}: KEY {key} has an empty segment; write it like job.maxRuntimeHours")
    try:
        value = json.loads(text)
    except ValueError:
        value = text  # a bare word such as p3.2xlarge is a string
    return f"{full_ns}:{top}", path, value


def _set_path(raw: dict[str, Any], key: str, path: list[str], value: Any, origin: str) -> None:
    if not path:
        raw[key] = value
        return
    node = raw.setdefault(key, {})
    if isinstance(node, str) and node[:1] == "{":  # objects may arrive as JSON text
        try:
            node = raw[key] = json.loads(node)
        except ValueError as exc:
            raise RefusedError(f"{origin}: {key} is not valid JSON ({exc}); set the whole value instead") from None
    for i, part in enumerate(path[:-1]):
        if not isinstance(node, dict):
            raise RefusedError(
                f"{origin}: {key}.{'.'.join(path[:i])} is not an object ({node!r}); set the whole value instead"
            )
        node = node.setdefault(part, {})
    if not isinstance(node, dict):
        raise RefusedError(f"{origin}: {key}.{'.'.join(path[:-1])} is not an object ({node!r})")
    node[path[-1]] = value


# What `trainstack exec` may change: the job, never the compute (`trainstack:job.<key>`).
EXEC_JOB_KEYS = ("command", "workdir", "environment", "maxRuntimeHours")


def job_overrides(raw: Mapping[str, Any], o: Overrides) -> dict[str, Any]:
    """A deployed stack's config with `trainstack exec`'s `--set job.*`, `--command` and `--workdir` applied.
    Anything but those job keys is refused: it is the stack's compute, which only `pulumi up` changes."""
    out = copy.deepcopy(dict(raw))
    allowed = ", ".join(f"job.{k}" for k in EXEC_JOB_KEYS)
    for item in o.sets:
        key, path, value = parse_set(item)
        if key != f"{NS}:job" or not path or path[0] not in EXEC_JOB_KEYS:
            raise RefusedError(
                f"--set {item}: `trainstack exec` changes the job only ({allowed}); {key.split(':', 1)[-1]}"
                f"{'.' + '.'.join(path) if path else ''} is part of the stack's compute. Fix: `pulumi up` the stack "
                "with the new value, or start a fresh one with `trainstack run`"
            )
        _set_path(out, key, path, value, f"--set {item}")
    if o.command is not None:
        _set_path(out, f"{NS}:job", ["command"], list(o.command), "--command")
    if o.workdir is not None:
        _set_path(out, f"{NS}:job", ["workdir"], o.workdir, "--workdir")
    return out


def ceil_hour(t: dt.datetime) -> dt.datetime:
    base = t.replace(minute=0, second=0, microsecond=0)
    return base if base == t else base + dt.timedelta(hours=1)


def expires_at(now: dt.datetime, max_runtime_hours: float, ttl_hours: int | None = None) -> dt.datetime:
    """When the cluster's in-cloud teardown fires: whole hours, job limit + margin, never past 72 h."""
    now = now.astimezone(dt.timezone.utc)
    wanted = now + (
        dt.timedelta(hours=ttl_hours) if ttl_hours else dt.timedelta(hours=float(max_runtime_hours)) + EXPIRY_MARGIN
    )
    latest = (now + dt.timedelta(hours=MAX_TTL_HOURS)).replace(minute=0, second=0, microsecond=0)
    return min(ceil_hour(wanted), latest)


def _max_runtime(raw: Mapping[str, Any]) -> float:
    job = raw.get(f"{NS}:job") or {}
    if isinstance(job, str):
        job = json.loads(job) if job[:1] == "{" else {}
    value = job.get("maxRuntimeHours", 6) if isinstance(job, dict) else 6
    try:
        return float(value)
    except (TypeError, ValueError):
        return 6.0  # validation names the bad value


def merge(template: Mapping[str, Any], o: Overrides, now: dt.datetime) -> dict[str, Any]:
    """The run's config: template, then --set, then the named flags, then the computed expiry."""
    raw = copy.deepcopy(dict(template))
    for item in o.sets:
        key, path, value = parse_set(item)
        _set_path(raw, key, path, value, f"--set {item}")
    if o.owner is not None:
        raw[f"{NS}:owner"] = o.owner
    if o.command is not None:
        _set_path(raw, f"{NS}:job", ["command"], list(o.command), "--command")
    if o.workdir is not None:
        _set_path(raw, f"{NS}:job", ["workdir"], o.workdir, "--workdir")
    if o.ttl_hours is not None and not 1 <= o.ttl_hours <= MAX_TTL_HOURS:
        raise RefusedError(
            f"--ttl-hours {o.ttl_hours}: use 1-{MAX_TTL_HOURS}; every cluster is torn down when it expires"
        )
    # A run always carries an absolute expiry: the in-cloud teardown is the backstop when the driver dies.
    if f"{NS}:expiresAt" not in raw or o.ttl_hours is not None:
        expiry = expires_at(now, _max_runtime(raw), o.ttl_hours)
        raw[f"{NS}:expiresAt"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    raw.pop(f"{NS}:ttlHours", None)
    return raw


def stack_name(owner: str, backend: str, now: dt.datetime, suffix: str | None = None) -> str:
    """`<owner>-<backend>-<yyyymmddHHMM>-<4hex>`: sortable, unique per run, found by owner."""
    suffix = suffix or secrets.token_hex(2)
    return f"{owner}-{backend}-{now.astimezone(dt.timezone.utc):%Y%m%d%H%M}-{suffix}"


def check_stack_name(name: str) -> str:
    if not STACK_NAME_RE.match(name):
        raise RefusedError(
            f"--name {name}: use 1-63 lower-case letters, digits or '-', starting with a letter "
            "or digit (it becomes part of S3 prefixes and resource names)"
        )
    return name


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def config_json(raw: Mapping[str, Any]) -> str:
    """The `pulumi config set-all --json` payload (format of `pulumi config --json`).

    Objects and lists travel as `objectValue` so their types survive; scalars as text, exactly as a
    stack file's YAML scalars reach the program. Not `--path`: it would turn `"10"` into a number.
    """
    doc: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        entry: dict[str, Any] = {"value": _text(value), "secret": False}
        if isinstance(value, (dict, list)):
            entry["objectValue"] = value
        doc[key] = entry
    return json.dumps(doc, sort_keys=True)
