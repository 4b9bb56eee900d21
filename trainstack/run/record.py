"""`run.json`: what happened to one run, stage by stage, written at every stage change.

Local copy: `<runs dir>/<stack>/run.json` (a job of `trainstack exec`: `<runs dir>/<stack>/jobs/<id>/run.json`),
written only once the run owns its stack name (the stack was created), so a second run refused for the same
name never overwrites the first one's record. Remote copy: `run.json` under the run's (or the job's) artifact
prefix once `up` has reported it, so the result outlives the stack. A write that fails warns once and never
fails the run.

The job itself merges its result into the remote copy when its command ends (ecs, eks: the container's entry
script; ec2: the leader's bootstrap), so a run nobody follows (`--detach`, a driver that died) still gets
one; sagemaker's is derived from DescribeTrainingJob by the next `attach`, `logs` or `reap`
(`trainstack.run.jobs`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainstack.model.run_locations import RUN_RECORD

# A stage's status in run.json.
OK, FAILED, REFUSED, INTERRUPTED, SKIPPED, KEPT = "ok", "failed", "refused", "interrupted", "skipped", "kept"
# The record's status once the job has ended (`detached`, `running`, `deploying`... are not).
FINAL_STATUSES = frozenset(
    {"succeeded", "failed", "interrupted", "refused", "error", "cleanup-incomplete", "abandoned", KEPT}
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunRecord:
    """`run.json`. `stages` holds one entry per stage run, in order: started_at, seconds, status, error."""

    stack: str
    template: str
    owner: str = ""
    backend: str = ""
    region: str = ""
    status: str = "planned"
    exit_code: int | None = None
    reason: str = ""
    model_uri: str | None = None
    artifact_uri: str | None = None
    expires_at: str = ""
    git_commit: str | None = None
    workdir: str = ""
    cost: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str | None = None
    last_log_lines: list[str] = field(default_factory=list)
    job_id: str | None = None  # a job `trainstack exec` started (None: the stack's own job)
    job_handle: str | None = None  # what the backend knows the job by: ECS task ARN, SageMaker/Kubernetes job name
    detached: bool = False  # `--detach`: nobody follows the job; it (or the next `attach`) writes the result
    kept: bool = False  # `--keep` or `--detach`: the stack stays for `trainstack exec` (or `reap`)
    checkpoint_uri: str | None = None
    code_uri: str | None = None
    written_by: str = "driver"  # or "job" (the job merged its result in), "attach" (derived from the backend)
    job_exit_code: int | None = None  # the training command's own exit code, as the job reported it

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["exit_code"] = None if self.exit_code is None else int(self.exit_code)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunRecord:
        """A run.json as read back (fields this version does not know are dropped; missing ones default)."""
        import dataclasses

        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        values.setdefault("stack", "")
        values.setdefault("template", "")
        return cls(**values)

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def overhead_seconds(self) -> float:
        """Everything but the job itself: plan, create, preview, up, destroy."""
        return round(sum(s.get("seconds", 0.0) for k, s in self.stages.items() if k != "follow"), 3)


class Recorder:
    """Keeps the record's stages and writes run.json (see the module docstring)."""

    def __init__(self, record: RunRecord, local_dir: Path, session_factory: Callable[[], Any]):
        self.record = record
        self.local_dir = local_dir
        self._session_factory = session_factory
        self._s3: Any = None  # boto3 S3 client, made on the first remote write
        self.claimed = False  # the run owns record.stack: local writes may begin
        self.s3_uri: str | None = None
        self.warned = False
        self.say: Callable[[str], None] | None = None  # where the one warning goes
        # A detached job may finish (and merge its result into the remote run.json) before the driver's last
        # writes: then its outcome is adopted, never overwritten.
        self.defer_to_job = False

    @property
    def path(self) -> Path:
        job = f"jobs/{self.record.job_id}/" if self.record.job_id else ""
        return self.local_dir / self.record.stack / job / RUN_RECORD

    def claim(self) -> None:
        """The stack exists and is this run's: from now on run.json is written."""
        self.claimed = True
        self.write()

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        """Records one stage: started_at, seconds and a status (the caller may set `status`/`error`)."""
        entry: dict[str, Any] = {"started_at": iso(now()), "status": OK}
        self.record.stages[name] = entry
        started = time.perf_counter()
        self.write()
        try:
            yield entry
        except BaseException as exc:
            if entry["status"] == OK:
                entry["status"] = _status_of(exc)
                entry["error"] = str(exc) or type(exc).__name__
            raise
        finally:
            entry["seconds"] = round(time.perf_counter() - started, 3)
            self.write()

    def skip(self, name: str, why: str) -> None:
        self.record.stages[name] = {"status": SKIPPED, "why": why}

    def write(self) -> None:
        if not self.claimed:
            return
        if self.defer_to_job:
            self._adopt_job_result()
        doc = json.dumps(self.record.to_json(), indent=2, default=str)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(doc + "\n")
            tmp.replace(self.path)
        except OSError as exc:
            self._warn(f"could not write {self.path}: {exc.strerror}")
        if not self.record.artifact_uri:
            return
        try:
            from trainstack.run.follow import split_s3_uri

            bucket, key = split_s3_uri(self.record.artifact_uri + RUN_RECORD)
            # No SSE header: the bucket's default SSE-KMS applies (its policy denies only other keys).
            self._client().put_object(Bucket=bucket, Key=key, Body=doc.encode(), ContentType="application/json")
            self.s3_uri = f"s3://{bucket}/{key}"
        except Exception as exc:  # noqa: BLE001 - the record must never fail the run
            self._warn(f"could not write run.json to {self.record.artifact_uri}: {exc} (local copy: {self.path})")

    def _client(self) -> Any:
        if self._s3 is None:
            self._s3 = self._session_factory().client("s3", region_name=self.record.region)
        return self._s3

    def _adopt_job_result(self) -> None:
        if not self.record.artifact_uri:
            return
        try:
            from trainstack.run.follow import split_s3_uri

            bucket, key = split_s3_uri(self.record.artifact_uri + RUN_RECORD)
            remote = json.loads(self._client().get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception:  # noqa: BLE001 - not written yet (or unreadable): the driver's record stands
            return
        if isinstance(remote, dict) and remote.get("written_by") == "job" and remote.get("status") in FINAL_STATUSES:
            for name in ("status", "exit_code", "reason", "model_uri", "finished_at", "job_exit_code", "written_by"):
                if name in remote:
                    setattr(self.record, name, remote[name])

    def _warn(self, text: str) -> None:
        if self.say is not None and not self.warned:
            self.say(f"warning: {text}")
            self.warned = True


def _status_of(exc: BaseException) -> str:
    from trainstack.errors import ExitCode, UserError

    if isinstance(exc, UserError):
        return FAILED if exc.exit_code == ExitCode.FAILED else REFUSED
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    return FAILED


def git_commit(workdir: Path) -> str | None:
    """HEAD of the workdir's repository, `+dirty` when it has uncommitted changes; None outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(workdir), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(workdir), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def github_outputs(record: RunRecord, env: Mapping[str, str] = os.environ) -> None:
    """`$GITHUB_OUTPUT` key=value lines and a `$GITHUB_STEP_SUMMARY` table, when Actions provides them."""
    if env.get("GITHUB_OUTPUT"):
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as f:
            for key, value in (
                ("stack", record.stack),
                ("status", record.status),
                ("exit-code", "" if record.exit_code is None else int(record.exit_code)),
                ("model-uri", record.model_uri or ""),
                ("artifact-uri", record.artifact_uri or ""),
            ):
                f.write(f"{key}={value}\n")
    if env.get("GITHUB_STEP_SUMMARY"):
        rows = [
            ("stack", record.stack),
            ("status", record.status),
            ("exit code", "-" if record.exit_code is None else int(record.exit_code)),
            ("model", record.model_uri or "-"),
            ("git commit", record.git_commit or "-"),
            ("worst-case cost", f"${record.cost.get('max_run_usd', 0):,.2f}"),
        ]
        rows += [
            (f"stage {k}", f"{v.get('status', '')} {v.get('seconds', 0):.1f} s".strip())
            for k, v in record.stages.items()
        ]
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
            f.write(f"### trainstack run {record.stack}\n\n| | |\n|---|---|\n")
            f.writelines(f"| {k} | {str(v).replace('|', '/')} |\n" for k, v in rows)
            if record.reason:
                f.write(f"\n{record.reason}\n")
