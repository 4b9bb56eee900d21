"""Jobs on a kept cluster stack: `trainstack exec`, `trainstack attach` and `trainstack logs`.

`exec` runs a new job on a stack that stays (`trainstack run --keep` or `--detach`, or plain `pulumi up`)
without touching its compute: it ships only a new code bundle (content-addressed: an unchanged workdir
is not uploaded again) and starts the job through the backend's own API,

    ecs        RunTask of the stack's task definition with a container override (command, code, prefixes)
    eks        a new Indexed Job `train-<job id>` from the program's own builder (eks_request.training_job)
    sagemaker  CreateTrainingJob `<owner>-<stack>-<job id>` from the stack's config (sagemaker_jobs)
    ec2        the group's next generation: `current-job.json` for the nodes' bootstrap, then the group
               scaled to the job's nodes (the launch template is never changed)

then follows it exactly as `run` does (the same followers and loop, `run.json`, exit codes). Every job has
an id (`yyyymmddHHMMSS-xxxx`) and its own prefixes, `artifacts/<owner>/<stack>/jobs/<id>/` (model, logs,
run.json) and `checkpoints/<owner>/<stack>/jobs/<id>/`, inside what the stack's roles may already write.

Checkpoints are per job, not shared with the stack's: exec exists to run changed code, and a job that
resumed from another version's checkpoint would train on state its code may not match (or, finding the
last epoch done, train nothing). A spot-interrupted job still resumes from its own.

`attach` and `logs` read a running or finished job (the latest, or `--job ID`) from the cloud, from any
machine with credentials: state and log lines through the followers, the job's `run.json` from the lake.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from trainstack import backends
from trainstack.errors import ExitCode, UserError
from trainstack.model import code_delivery as cd
from trainstack.model.config import ClusterStack, ConfigError
from trainstack.model.run_locations import (
    JOB_ID_ENV,
    JOBS_FOLDER,
    RUN_RECORD,
    RUN_RECORD_URI_ENV,
    RunLocations,
    check_job_id,
    job_locations,
    locations_from_uris,
    new_job_id,
)
from trainstack.run.destroy import first_line
from trainstack.run.driver import REPO_ROOT, Interrupts, StackDriver, output_values, pulumi_command
from trainstack.run.follow import (
    SUCCEEDED,
    ExecRequest,
    JobRef,
    JobState,
    exec_backends,
    follower_class,
    follower_for,
    handle_of,
    split_s3_uri,
)
from trainstack.run.record import Recorder, RunRecord, git_commit, iso, now
from trainstack.run.run_config import Overrides, RefusedError, job_overrides
from trainstack.run.stages import DETACHED, RunOptions, follow
from trainstack.run.ui import Ui

# A job needs some time to be worth starting: refuse one that would be cut off almost at once by the expiry.
MIN_TIME_LEFT = dt.timedelta(minutes=10)


@dataclass
class JobOptions:
    stack: str
    root: Path = REPO_ROOT
    overrides: Overrides = field(default_factory=Overrides)  # workdir, command, sets (job.* only)
    job_id: str | None = None  # attach/logs: which job (default: the latest)
    detach: bool = False  # exec: return once the job has started
    pulumi_root: str | None = None
    secrets_provider: str | None = None
    poll_seconds: float = 15.0
    start_timeout_seconds: float = 45 * 60
    grace_seconds: float = 15 * 60
    record_dir: Path | None = None
    build_dir: Path | None = None  # where bundles are packed (default: <root>/.trainstack/build)

    def run_options(self) -> RunOptions:
        """What the shared follow loop reads."""
        return RunOptions(
            template="exec",
            root=self.root,
            poll_seconds=self.poll_seconds,
            start_timeout_seconds=self.start_timeout_seconds,
            grace_seconds=self.grace_seconds,
        )


@dataclass
class Deployed:
    """A deployed cluster stack as the jobs see it: its outputs (typed) and, for exec, its validated config."""

    name: str
    outputs: dict[str, Any]
    stack: backends.ClusterOutputs
    own: backends.StackOutputs
    raw_config: dict[str, Any] = field(default_factory=dict)
    project: str = "trainstack"

    @property
    def locations(self) -> RunLocations:
        partition = self.stack.region.startswith("cn-") and "aws-cn" or "aws"
        return locations_from_uris(
            self.stack.dataset_uri, self.stack.artifact_uri, self.stack.checkpoint_uri, partition
        )


def open_stack(opts: JobOptions, *, with_config: bool = False) -> Deployed:
    """The deployed stack's outputs (and config) through the Automation API; refusals name the fix."""
    driver = StackDriver(
        pulumi_command(opts.pulumi_root, project_root=opts.root), root=opts.root, secrets_provider=opts.secrets_provider
    )
    # The workspace reads the stack by name (`--stack`): no `pulumi stack select`, which would also change the
    # user's selected stack, and the outputs in one CLI command (driver.output_values).
    workspace = driver.workspace()
    try:
        outputs = output_values(workspace, opts.stack)
        raw = {k: v.value for k, v in workspace.get_all_config(opts.stack).items()} if with_config else {}
    except auto.StackNotFoundError:
        raise UserError(
            f"stack {opts.stack}: no such stack in the state backend. Fix: check the name (`trainstack ls`), or keep "
            "one with `trainstack run TEMPLATE --keep`",
            ExitCode.NOT_FOUND,
        ) from None
    except auto.CommandError as exc:
        raise RefusedError(f"stack {opts.stack}: reading it failed: {first_line(exc)}") from None
    if not outputs:
        raise RefusedError(
            f"stack {opts.stack} has no outputs: it was never deployed, or was destroyed. Fix: `pulumi up --stack "
            f"{opts.stack}` (or `trainstack run TEMPLATE --keep`)"
        )
    try:
        cluster, own = backends.read_outputs(outputs)
    except backends.OutputsError as exc:
        raise RefusedError(f"stack {opts.stack}: {exc} (is it a cluster stack?)") from None
    return Deployed(opts.stack, outputs, cluster, own, raw, workspace.project_settings().name)


def _session() -> Any:
    import boto3

    return boto3.Session()


# --------------------------------------------------------------------------------------------- exec


@dataclass
class ExecContext:
    opts: JobOptions
    ui: Ui
    deployed: Deployed
    cfg: ClusterStack
    job_id: str
    record: RunRecord
    recorder: Recorder
    session: Any
    now: dt.datetime
    s3: Any  # one client for the id check and the bundle upload


def exec_job(
    opts: JobOptions,
    ui: Ui,
    *,
    session: Any = None,
    clock: Callable[[], float] = time.monotonic,
    now_: dt.datetime | None = None,
) -> RunRecord:
    """`trainstack exec`: resolve -> bundle -> start + follow (or return with --detach). Returns the job's
    record; `record.exit_code` is the process exit code. Refusals before anything started raise UserError."""
    started = (now_ or now()).astimezone(dt.timezone.utc)
    deployed = open_stack(opts, with_config=True)
    backend = deployed.stack.backend
    if backend not in exec_backends():
        raise RefusedError(
            f"stack {opts.stack}: backend {backend}: `trainstack exec` starts jobs on {', '.join(exec_backends())}"
        )
    cfg = _config(deployed, opts)
    left = cfg.cluster.expires_at - started
    if left < MIN_TIME_LEFT:
        raise RefusedError(
            f"stack {opts.stack} expires at {cfg.cluster.expires_at_iso} ({'expired' if left.total_seconds() <= 0 else 'in ' + str(left).split('.')[0]}): "
            "its teardown stops the compute then, so no job starts this close to it. Fix: `trainstack run TEMPLATE "
            "--keep` a fresh stack (or redeploy this one with a later trainstack:expiresAt)"
        )
    session = session if session is not None else _session()
    s3 = session.client("s3", region_name=cfg.region)
    job_id = unused_job_id(s3, deployed.stack.artifact_uri, started)
    loc = job_locations(deployed.locations, job_id)
    c = cfg.cluster
    workdir = Path(c.job.workdir).resolve() if c.job.workdir else None
    record = RunRecord(
        stack=opts.stack,
        template="exec",
        owner=c.owner,
        backend=backend,
        region=cfg.region,
        status="starting",
        artifact_uri=loc.artifact_uri,
        model_uri=loc.model_uri,
        checkpoint_uri=loc.checkpoint_uri,
        expires_at=c.expires_at_iso,
        workdir=str(workdir or ""),
        git_commit=git_commit(workdir) if workdir else None,
        started_at=iso(started),
        job_id=job_id,
        kept=True,
        detached=opts.detach,
    )
    recorder = Recorder(record, opts.record_dir or opts.root / ".trainstack" / "runs", lambda: session)
    recorder.say = lambda text: ui.say(text, "yellow")
    ctx = ExecContext(opts, ui, deployed, cfg, job_id, record, recorder, session, started, s3)
    follower: Any = follower_for(deployed.outputs, session, JobRef(id=job_id))
    busy = getattr(follower, "busy", None)
    why = busy() if busy is not None else None
    if why:
        raise RefusedError(f"stack {opts.stack}: {why}")
    recorder.claim()  # the job id is this job's: run.json from here on
    ui.say(f"{opts.stack}: job {job_id} ({backend}), expires {c.expires_at_iso}", "bold")
    try:
        with recorder.stage("bundle") as entry:
            code_uri, uploaded = upload_bundle(ctx)
            entry["uploaded"], record.code_uri = uploaded, code_uri
        payload = job_payload(ctx, loc, code_uri)
        with Interrupts(None) as intr, recorder.stage("follow") as entry:
            record.status = "running"

            def on_started(f: Any) -> None:
                record.job_handle = handle_of(f)
                recorder.defer_to_job = opts.detach
                recorder.write()

            job, tail = follow(
                follower,
                intr=intr,
                ui=ui,
                opts=opts.run_options(),
                max_runtime_hours=c.max_runtime_seconds / 3600,
                clock=clock,
                start=lambda: follower.start(payload),
                on_started=on_started,
                detach=opts.detach,
            )
            record.last_log_lines = list(tail)
            if intr.interrupted:
                entry["status"] = "interrupted"
    except UserError as exc:
        record.status, record.exit_code, record.reason = "refused", exc.exit_code, exc.message
        return _finish(ctx)
    _settle(record, job, interrupted=intr.interrupted)
    return _finish(ctx)


def _config(deployed: Deployed, opts: JobOptions) -> ClusterStack:
    """The deployed config with exec's job overrides, validated as of the deployment (its expiry is the
    deployed one: `ttlHours` counted from that `up`)."""
    from trainstack.model.config import parse_config

    raw = job_overrides(deployed.raw_config, opts.overrides)
    raw = {k: v for k, v in raw.items() if k != "trainstack:ttlHours"}
    raw["trainstack:expiresAt"] = deployed.stack.expires_at
    expiry = dt.datetime.fromisoformat(deployed.stack.expires_at.replace("Z", "+00:00"))
    try:
        cfg = parse_config(
            raw, project=deployed.project, stack=deployed.name, now=expiry - dt.timedelta(hours=1), root=str(opts.root)
        )
    except ConfigError as exc:
        raise RefusedError(f"stack {deployed.name}: {exc}") from None
    if not isinstance(cfg, ClusterStack):
        raise RefusedError(f"stack {deployed.name} is not a cluster stack")
    return cfg


def upload_bundle(ctx: ExecContext) -> tuple[str | None, bool]:
    """The workdir's bundle at its content-addressed key under the stack's artifact prefix (the key the
    stack's CodeBundle uses): skipped when that key exists (same sha256, same bytes). Sent with no encryption
    header: the bucket's default SSE-KMS applies, which the lake's bucket policy admits."""
    c = ctx.cfg.cluster
    if not c.job.workdir:
        return None, False
    build = ctx.opts.build_dir or ctx.opts.root / ".trainstack" / "build"
    try:
        bundle = cd.build_bundle(
            c.job.workdir, build, key="--workdir (trainstack:job.workdir)", backend=ctx.deployed.stack.backend
        )
    except cd.BundleError as exc:
        raise RefusedError(str(exc)) from None
    loc = ctx.deployed.locations
    key = cd.code_key(loc.artifact_prefix, bundle.sha256)
    uri = f"s3://{loc.artifacts_bucket}/{key}"
    s3 = ctx.s3
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=loc.artifacts_bucket, Key=key)
        ctx.ui.log(f"code: {bundle.sha256[:12]} is already in the lake ({uri}): nothing uploaded")
        return uri, False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(
        Bucket=loc.artifacts_bucket,
        Key=key,
        Body=bundle.path.read_bytes(),
        ContentType="application/gzip",
        Metadata={"sha256": bundle.sha256},
    )
    ctx.ui.log(f"code: uploaded {bundle.size / 1024:.1f} KiB ({len(bundle.files)} files) to {uri}")
    return uri, True


def job_payload(ctx: ExecContext, loc: RunLocations, code_uri: str | None) -> Any:
    """What the backend's follower `start`s, built by that follower's `exec_payload` from the stack's config
    (the same model code the program uses), with the job's id, prefixes, code and a run time cut to the
    stack's expiry."""
    c = ctx.cfg.cluster
    runtime = int(min(c.max_runtime_seconds, (c.expires_at - ctx.now).total_seconds()))
    env = {
        **dict(c.job.environment),
        **loc.environment(),
        RUN_RECORD_URI_ENV: loc.run_record_uri,
        JOB_ID_ENV: ctx.job_id,
    }
    request = ExecRequest(
        cfg=ctx.cfg,
        stack=ctx.deployed.name,
        outputs=ctx.deployed.outputs,
        job_id=ctx.job_id,
        locations=loc,
        code_uri=code_uri,
        runtime_seconds=runtime,
        now=ctx.now,
        environment=env,
    )
    return follower_class(ctx.deployed.stack.backend).exec_payload(request)


def _settle(record: RunRecord, job: JobState, *, interrupted: bool) -> None:
    if job.phase == DETACHED and not interrupted:
        record.status, record.exit_code, record.detached = "detached", ExitCode.OK, True
        record.reason = "the job runs on without the driver; it writes its result to run.json when it ends"
    elif interrupted:
        record.status, record.exit_code, record.reason = "interrupted", ExitCode.INTERRUPTED, job.reason
    elif job.phase == SUCCEEDED:
        record.status, record.exit_code = "succeeded", ExitCode.OK
        if job.reason.startswith("s3://"):
            record.model_uri = job.reason
    else:
        record.status, record.exit_code, record.reason = "failed", ExitCode.FAILED, job.reason


def _finish(ctx: ExecContext) -> RunRecord:
    r = ctx.record
    if r.status != "detached":
        r.finished_at = iso(now())
    ctx.recorder.write()
    if r.status == "detached":
        ctx.ui.say(
            f"job {r.job_id} runs on. Follow it: trainstack attach {r.stack} --job {r.job_id}  (logs: trainstack logs "
            f"{r.stack} --job {r.job_id} --follow); it writes {r.artifact_uri}run.json when it ends",
            "bold green",
        )
    elif r.exit_code == ExitCode.OK:
        ctx.ui.say(f"model: {r.model_uri}", "bold green")
    return r


# --------------------------------------------------------------------------------------------- attach, logs


def list_jobs(s3: Any, artifact_uri: str) -> list[str]:
    """The ids of the jobs `exec` started on the stack (their `jobs/<id>/` prefixes), oldest first."""
    bucket, prefix = split_s3_uri(artifact_uri + JOBS_FOLDER)
    ids: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for p in page.get("CommonPrefixes", []):
            ids.append(p["Prefix"][len(prefix) :].rstrip("/"))
    return sorted(i for i in ids if _is_job_id(i))


def _is_job_id(text: str) -> bool:
    try:
        check_job_id(text)
    except ValueError:
        return False
    return True


def read_record(s3: Any, artifact_uri: str) -> RunRecord | None:
    from botocore.exceptions import ClientError

    bucket, key = split_s3_uri(artifact_uri + RUN_RECORD)
    try:
        doc = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "403", "AccessDenied"):
            return None
        raise
    except ValueError:
        return None
    return RunRecord.from_json(doc) if isinstance(doc, dict) else None


def unused_job_id(s3: Any, artifact_uri: str, started: dt.datetime, attempts: int = 5) -> str:
    """A new job id whose prefix (`jobs/<id>/`) holds nothing yet: two execs started in the same millisecond
    that drew the same random bits (1 in 64 then) would otherwise write into one job's run.json and model.
    The same ListObjectsV2 as `list_jobs` (the caller can list the stack's jobs), one key at most."""
    from botocore.exceptions import ClientError

    bucket, prefix = split_s3_uri(artifact_uri + JOBS_FOLDER)
    for _ in range(attempts):
        job_id = new_job_id(started)
        try:
            found = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}{job_id}/", MaxKeys=1).get("KeyCount", 0)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("AccessDenied", "AllAccessDisabled"):
                return job_id  # credentials that may start jobs but not list them: the id's odds alone (see above)
            raise
        if not found:
            return job_id
    raise RefusedError(
        f"no unused job id under {artifact_uri}{JOBS_FOLDER} after {attempts} draws; try again"
    )  # only a listing that answers every prefix as taken gets here


def latest_record(s3: Any, artifact_uri: str) -> RunRecord | None:
    """The newest job's run.json (an exec job's, else the stack's own)."""
    jobs = list_jobs(s3, artifact_uri)
    for job_id in reversed(jobs):
        found = read_record(s3, f"{artifact_uri}{JOBS_FOLDER}{job_id}/")
        if found is not None:
            return found
    return read_record(s3, artifact_uri)


def job_ref(deployed: Deployed, job_id: str | None, record: RunRecord | None) -> JobRef:
    """Which job to follow, with its backend handle: recorded in its run.json, or derived from its id where
    the backend's naming fixes it (eks `train-<id>`, sagemaker `<owner>-<stack>-<id>`, ec2 its prefix)."""
    handle = record.job_handle if record is not None else None
    if handle is None:
        derive = getattr(follower_class(deployed.stack.backend), "job_handle", None)
        if derive is not None:
            handle = derive(deployed.outputs, deployed.stack.owner, deployed.name, job_id)
    return JobRef(id=job_id, handle=handle)


@dataclass
class Attached:
    record: RunRecord
    state: JobState


def attach(
    opts: JobOptions,
    ui: Ui,
    *,
    session: Any = None,
    follow_to_end: bool = True,
    show_state: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> Attached:
    """Follow a job of a kept stack from the cloud (`attach`, `logs --follow`) or print what it has logged
    so far (`logs`). Never stops the job (Ctrl-C leaves it running). When the job has ended, its run.json
    gets the result if nothing wrote it yet (sagemaker: always derived here, from DescribeTrainingJob)."""
    deployed = open_stack(opts)
    session = session if session is not None else _session()
    s3 = session.client("s3", region_name=deployed.stack.region)
    job_id = opts.job_id
    if job_id is not None:
        try:
            check_job_id(job_id)
        except ValueError as exc:
            raise RefusedError(f"--job {job_id}: {exc}") from None
    else:
        jobs = list_jobs(s3, deployed.stack.artifact_uri)
        job_id = jobs[-1] if jobs else None
    artifact_uri = JobRef(id=job_id).artifact_uri(deployed.stack.artifact_uri)
    record = read_record(s3, artifact_uri)
    if job_id is not None and record is None and opts.job_id is not None:
        # exec writes a job's run.json before it starts the job: without one, there is no such job
        raise UserError(
            f"stack {opts.stack}: no job {job_id} (no {artifact_uri}{RUN_RECORD}). Fix: pick one that `aws s3 ls "
            f"{deployed.stack.artifact_uri}{JOBS_FOLDER}` lists (`trainstack ls` shows the latest)",
            ExitCode.NOT_FOUND,
        )
    ref = job_ref(deployed, job_id, record)
    follower = follower_for(deployed.outputs, session, ref)
    label = f"job {job_id}" if job_id else "the stack's own job"
    ui.say(f"{opts.stack}: {label} ({deployed.stack.backend}, {ref.handle or artifact_uri})", "bold")
    if not follow_to_end:
        state = follower.poll()
        for line in follower.tail():
            ui.log(line)
        if show_state:
            ui.say(f"{label}: {state.phase} ({state.reason})", "bold")
        return Attached(_finalize(s3, record, deployed, ref, artifact_uri, state, follower), state)
    with Interrupts(None) as intr:
        state, _tail = follow(
            follower,
            intr=intr,
            ui=ui if show_state else _QuietStates(ui),
            opts=opts.run_options(),
            max_runtime_hours=float("inf"),
            clock=clock,
            start=lambda: None,
            passive=True,
        )
    if state.phase == DETACHED:
        ui.say(f"{label} runs on (Ctrl-C only stops following it)", "yellow")
        rec = record or RunRecord(stack=opts.stack, template="", job_id=job_id)
        rec.exit_code = ExitCode.INTERRUPTED
        return Attached(rec, state)
    done = _finalize(s3, record, deployed, ref, artifact_uri, state, follower)
    if state.phase == SUCCEEDED:
        ui.say(f"model: {done.model_uri}", "bold green")
    else:
        ui.say(f"{label} {done.status}: {done.reason}", "bold red")
    return Attached(done, state)


class _QuietStates(Ui):
    """A Ui that prints log lines but not the follow loop's state messages (`logs --follow`)."""

    def __init__(self, ui: Ui):
        super().__init__(ui.console)

    def say(self, text: str, style: str = "") -> None:
        pass


def _finalize(
    s3: Any,
    record: RunRecord | None,
    deployed: Deployed,
    ref: JobRef,
    artifact_uri: str,
    state: JobState,
    follower: Any,
) -> RunRecord:
    """The job's record with its outcome, written back when the job has ended and nobody wrote it yet."""
    rec = record or RunRecord(
        stack=deployed.name,
        template="",
        owner=deployed.stack.owner,
        backend=deployed.stack.backend,
        region=deployed.stack.region,
        artifact_uri=artifact_uri,
        job_id=ref.id,
        job_handle=ref.handle,
    )
    if not state.finished:
        rec.exit_code = None
        return rec
    ok = state.phase == SUCCEEDED
    # The job wrote its own result: it knows best, unless the backend disagrees (a sagemaker job whose script
    # succeeded but whose model upload failed is Failed).
    if rec.finished and rec.written_by == "job" and (rec.status == "succeeded") == ok:
        return rec
    rec.status, rec.exit_code = ("succeeded", ExitCode.OK) if ok else ("failed", ExitCode.FAILED)
    rec.reason = "" if ok else state.reason
    if ok:
        uri = state.reason if state.reason.startswith("s3://") else follower.model_uri()
        rec.model_uri = uri or rec.model_uri
    rec.finished_at = rec.finished_at or iso(now())
    rec.written_by = "attach"
    bucket, key = split_s3_uri(artifact_uri + RUN_RECORD)
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(rec.to_json(), indent=2, default=str).encode(),
            ContentType="application/json",
        )
    except Exception:  # noqa: BLE001 - the record is a convenience; the job's state is the cloud's
        pass
    return rec
