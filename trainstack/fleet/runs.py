"""The runs of kept stacks in `trainstack ls` (its RUN column) and `trainstack reap --finished`.

A stack that `trainstack run --detach` (or `--keep`) left behind holds its jobs' records in the lake, where the
jobs themselves write them when they end (ecs/eks: the container's entry script; ec2: the leader's bootstrap;
sagemaker: the bundle's entry file; see trainstack/run/record.py):

    <artifactUri>run.json                 the stack's own run (`detached`, `kept`, its status)
    <artifactUri>jobs/<job id>/run.json   each job `trainstack exec` started

So the state shown is the cloud's, readable from any machine with the stack's outputs (Pulumi state) and S3
read access to the artifact prefix; no local file is consulted. `reap --finished` removes a stack whose own run
was detached once its latest job has ended more than `--grace` ago (a `--keep` stack stays until `down` or
its expiry: keeping it was asked for).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunSummary:
    """A kept stack's latest job, as its run.json says."""

    status: str  # the record's status: detached (still running, as far as anyone wrote), succeeded, failed...
    detached: bool  # the stack's own run was started with --detach
    kept: bool  # the stack stays for `trainstack exec` (--keep or --detach)
    finished: bool
    job_id: str | None = None  # None: the stack's own job
    finished_at: dt.datetime | None = None
    model_uri: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "detached": self.detached,
            "kept": self.kept,
            "finished": self.finished,
            "jobId": self.job_id,
            "finishedAt": self.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.finished_at else None,
            "modelUri": self.model_uri,
        }

    def cell(self, now: dt.datetime) -> str:
        """The RUN column: `detached: running`, `succeeded 12m ago (detached)`, ..."""
        how = "detached" if self.detached else "kept"
        if not self.finished:
            return f"{how}: running"
        ago = ""
        if self.finished_at is not None:
            minutes = int(max(0.0, (now - self.finished_at).total_seconds()) // 60)
            hours, mins = divmod(minutes, 60)
            ago = f" {hours}h{mins:02d}m ago" if hours else f" {mins}m ago"
        return f"{self.status}{ago} ({how})"

    def finished_before(self, when: dt.datetime) -> bool:
        return self.finished and self.finished_at is not None and self.finished_at <= when


def parse_utc(text: Any) -> dt.datetime | None:
    """An ISO 8601 time (`Z` or an offset; naive means UTC) as an aware datetime; None for anything else."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def summarize(s3: Any, artifact_uri: str) -> RunSummary | None:
    """The stack's run from its records in the lake; None when it has none (never run through trainstack, or
    not kept: a run that destroys its stack leaves nothing to list)."""
    from trainstack.run.jobs import latest_record, read_record

    own = read_record(s3, artifact_uri)
    if own is None or not (own.kept or own.detached):
        return None
    latest = latest_record(s3, artifact_uri) or own
    return RunSummary(
        status=latest.status,
        detached=own.detached,
        kept=own.kept,
        finished=latest.finished,
        job_id=latest.job_id,
        finished_at=parse_utc(latest.finished_at),
        model_uri=latest.model_uri,
    )


def read_runs(
    stacks: Mapping[str, Callable[[], Mapping[str, Any]] | None],
    s3: Any,
    note: Callable[[str, str], None] = lambda stack, text: None,
) -> dict[str, RunSummary]:
    """Each stack's run (`stacks`: name -> a reader of its outputs). A stack whose outputs or records cannot be
    read is left out with a note (a listing never fails for one stack)."""
    found: dict[str, RunSummary] = {}
    for name, outputs in stacks.items():
        if outputs is None:
            continue
        try:
            out = outputs()
            artifact_uri = out.get("artifactUri")
            if not isinstance(artifact_uri, str) or not artifact_uri.startswith("s3://"):
                continue
            summary = summarize(s3, artifact_uri)
        except Exception as exc:  # noqa: BLE001 - one unreadable stack must not hide the others
            lines = str(exc).strip().splitlines()
            note(name, f"run.json not readable: {lines[-1] if lines else type(exc).__name__}")
            continue
        if summary is not None:
            found[name] = summary
    return found
