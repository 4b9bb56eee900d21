"""`trainstack upload SRC DEST`: a local dataset into the data lake's raw or curated zone.

Every file is hashed (SHA-256) first and compared with what the bucket already holds, so a
conflict is refused before a byte is sent and a re-run sends only what is missing. The
transfer is one s3transfer `TransferManager` (multipart, parallel, a CRC32 per part that S3
verifies); the SHA-256 travels in the object's metadata because SSE-KMS ETags are not MD5s.
No encryption header is sent: the bucket's default SSE-KMS applies, and the lake's bucket
policy refuses any other encryption. A failed or interrupted multipart upload is aborted
(s3transfer's failure cleanup, checked afterwards), so no partial object is ever visible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import ProgressColumn
from rich.text import Text

from trainstack.errors import UserError
from trainstack.model.config import ConfigError, DatasetRef, parse_dataset_ref

MIB = 1024 * 1024
MANIFEST = "_MANIFEST.json"
# S3: parts are 5 MiB-5 GiB (the last may be smaller), at most 10 000 per upload.
MIN_PART_MIB, MAX_PART_MIB, MAX_PARTS = 5, 5 * 1024, 10_000
DEFAULT_PLATFORM = "organization/trainstack/platform"
# Both names are in s3transfer's TransferManager.ALLOWED_UPLOAD_ARGS (checked in tests/fleet/test_upload.py).
CHECKSUM_ALGORITHM = "CRC32"
SHA256_METADATA = "sha256"  # sent as x-amz-meta-sha256


class UploadError(UserError):
    """A problem the user can fix; the message says how (exit 2)."""


@dataclass(frozen=True)
class LocalFile:
    path: Path
    rel: str  # path below SRC, '/'-separated
    key: str  # object key: dataset prefix + rel
    size: int
    sha256: str


@dataclass
class UploadPlan:
    bucket: str
    dataset: DatasetRef
    upload: list[LocalFile] = field(default_factory=list)
    skip: list[LocalFile] = field(default_factory=list)  # same size and SHA-256 already there
    conflicts: list[tuple[LocalFile, str]] = field(default_factory=list)  # (file, what is at the key)
    overwrite: bool = False

    @property
    def upload_bytes(self) -> int:
        return sum(f.size for f in self.upload)


@dataclass
class UploadResult:
    plan: UploadPlan
    uploaded: list[LocalFile] = field(default_factory=list)
    failed: list[tuple[LocalFile, str]] = field(default_factory=list)
    bytes_sent: int = 0
    interrupted: bool = False
    left_incomplete: list[str] = field(default_factory=list)  # keys with multipart uploads we could not abort
    manifest_written: bool = False
    seconds: float = 0.0

    unchecked: str = ""  # why leftover multipart uploads could not be looked for (nothing claimed either way)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted and not self.left_incomplete

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "ok": self.ok,
            "uri": f"s3://{plan.bucket}/{plan.dataset.prefix}",
            "uploaded": [f.key for f in self.uploaded],
            "skipped": [f.key for f in plan.skip],
            "failed": [{"key": f.key, "error": why} for f, why in self.failed],
            "bytesSent": self.bytes_sent,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "multipartLeftOpen": self.left_incomplete,
            "manifestWritten": self.manifest_written,
        }


# --------------------------------------------------------------------------------------------
# Where to


def _prefix_problem(dest: str) -> tuple[str, str] | None:
    """(problem, fix) for a DEST that names no single folder cleanly; None when it is fine so far."""
    zone, _, prefix = dest.partition("/")
    if zone not in ("raw", "curated"):
        return None  # the dataset parser says what a DEST is
    if "//" in prefix or prefix.startswith("/"):
        return "has an empty folder name (`//`): S3 would keep it as a key part of its own", "remove the extra /"
    for ch, why in (
        ("*", "`*` is not a wildcard in S3 keys: DEST names one folder"),
        ("?", "`?` is not a wildcard in S3 keys: DEST names one folder"),
        (" ", "it contains a space: URIs and the job's environment would need quoting"),
    ):
        if ch in prefix:
            return why, "use letters, digits and - _ . ! ' ( ) = + in folder names, e.g. raw/cifar10/v1/"
    bad = sorted({c for c in prefix if not (c.isascii() and (c.isalnum() or c in "/!_.'()=+-"))})
    if bad:
        return (
            f"it contains {' '.join(repr(c) for c in bad)}, which S3 keys may hold but the lake's prefixes do not",
            "use letters, digits and - _ . ! ' ( ) = + in folder names, e.g. raw/cifar10/v1/",
        )
    return None


def parse_dest(dest: str) -> DatasetRef:
    problem = _prefix_problem(dest)
    if problem is not None:
        raise UploadError(f"DEST = {dest!r}: {problem[0]}. Fix: {problem[1]}")
    try:
        return parse_dataset_ref(dest, key="DEST")
    except ConfigError as exc:
        raise UploadError("\n".join(str(p) for p in exc.problems)) from None


def bucket_from_platform(platform_stack: str, zone: str, root: Path, pulumi_root: str | None = None) -> str:
    """The zone's bucket from the platform stack's `buckets` output (Automation API, needs the CLI, found as
    every command finds it: $TRAINSTACK_PULUMI_ROOT, then PATH)."""
    from pulumi import automation as auto

    from trainstack.run.driver import CliMissingError, output_values, project_workspace

    try:
        ws = project_workspace(root, pulumi_root)
    except CliMissingError as exc:
        raise UploadError(
            f"--platform {platform_stack}: reading the platform's `buckets` output needs the Pulumi CLI: "
            f"{exc.message}. Or pass --bucket NAME (the platform's `buckets.{zone}.name` output)"
        ) from None
    try:
        outputs = output_values(ws, platform_stack)
    except auto.StackNotFoundError:
        raise UploadError(
            f"--platform {platform_stack}: no such stack in the state backend. Fix: name a deployed platform "
            "stack (`pulumi stack ls`), deploy one (`pulumi up --stack platform`), or pass --bucket NAME"
        ) from None
    except auto.CommandError as exc:
        lines = str(exc).strip().splitlines()
        raise UploadError(
            f"--platform {platform_stack}: {lines[-1] if lines else type(exc).__name__}. Fix: log in to the "
            "state backend that holds the platform, or pass --bucket NAME"
        ) from None
    from trainstack.backends import OutputsError, PlatformOutputs

    try:
        return PlatformOutputs.from_outputs(outputs).buckets[zone]["name"]
    except (KeyError, TypeError, OutputsError):
        raise UploadError(
            f"--platform {platform_stack}: the stack has no `buckets.{zone}.name` output. Fix: is it "
            "a deployed platform stack? Pass --bucket NAME otherwise"
        ) from None


def check_bucket(s3, bucket: str) -> None:
    """The bucket exists and this identity may list it (HeadBucket needs s3:ListBucket), before any hashing
    result is compared with it: a missing bucket would otherwise look like an empty one."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise UploadError(
                f"bucket {bucket}: does not exist (nothing was uploaded). Fix: check --bucket, or read it from the "
                "platform with --platform STACK (its `buckets` output)"
            ) from None
        if code in ("400", "BadRequest", "301", "PermanentRedirect"):
            raise UploadError(
                f"bucket {bucket}: HeadBucket answered {code} (nothing was uploaded): the bucket is probably in "
                "another region. Fix: set AWS_REGION to the platform's region"
            ) from None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise UploadError(
                f"bucket {bucket}: access denied (HeadBucket; nothing was uploaded). Fix: the uploading identity "
                "needs s3:ListBucket, s3:GetObject and s3:PutObject on it, and the bucket must be in this account"
            ) from None
        raise


# --------------------------------------------------------------------------------------------
# What to send


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(4 * MIB), b""):
            h.update(block)
    return h.hexdigest()


def local_files(src: Path, dataset: DatasetRef, jobs: int) -> list[LocalFile]:
    """Every regular file below SRC (or SRC itself), hashed in a thread pool (hashlib releases the GIL)."""
    if not src.exists():
        raise UploadError(f"SRC = {str(src)!r}: does not exist. Fix: name a folder or a file to upload")
    if src.is_file():
        found = [(src, src.name)]
    else:
        found = sorted((p, p.relative_to(src).as_posix()) for p in src.rglob("*") if p.is_file())
    if not found:
        raise UploadError(f"SRC = {str(src)!r}: holds no files. Fix: name the folder that holds the dataset")
    undecodable = [rel for _, rel in found if not _is_utf8(rel)]
    if undecodable:
        shown = ", ".join(ascii(r) for r in undecodable[:5]) + (" …" if len(undecodable) > 5 else "")
        raise UploadError(
            f"SRC = {str(src)!r}: {len(undecodable)} file name(s) are not valid UTF-8 ({shown}); S3 keys are "
            "UTF-8, so they cannot be uploaded under their names. Fix: rename them (e.g. `convmv -f latin1 -t utf8 "
            "-r --notest SRC`), nothing was uploaded"
        )
    if any(rel == MANIFEST for _, rel in found):
        raise UploadError(
            f"SRC = {str(src)!r}: holds a top-level {MANIFEST}, which upload writes itself. "
            "Fix: rename or remove that file"
        )
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        digests = list(pool.map(lambda item: _sha256(item[0]), found))
    return [
        LocalFile(p, rel, dataset.prefix + rel, p.stat().st_size, digest)
        for (p, rel), digest in zip(found, digests, strict=True)
    ]


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")  # undecodable bytes arrive as lone surrogates (os.fsdecode's surrogateescape)
    except UnicodeEncodeError:
        return False
    return True


def _head(s3, bucket: str, key: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        if code in ("403", "AccessDenied"):
            # HeadObject needs s3:GetObject; without s3:ListBucket S3 answers 403 for a missing key (API reference).
            raise UploadError(
                f"s3://{bucket}/{key}: access denied reading the object (HeadObject). Fix: the "
                "uploading identity needs s3:GetObject and s3:ListBucket on the bucket"
            ) from None
        raise


def plan_upload(
    s3, bucket: str, dataset: DatasetRef, files: list[LocalFile], *, jobs: int, overwrite: bool
) -> UploadPlan:
    plan = UploadPlan(bucket, dataset, overwrite=overwrite)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        heads = list(pool.map(lambda f: _head(s3, bucket, f.key), files))
    for f, head in zip(files, heads, strict=True):
        if head is None:
            plan.upload.append(f)
            continue
        remote_sha = (head.get("Metadata") or {}).get(SHA256_METADATA)
        if head.get("ContentLength") == f.size and remote_sha == f.sha256:
            plan.skip.append(f)
            continue
        what = (
            f"{head.get('ContentLength')} bytes, sha256 {remote_sha[:12]}…"
            if remote_sha
            else f"{head.get('ContentLength')} bytes without a sha256"
        )
        plan.conflicts.append((f, what))
        if overwrite:
            plan.upload.append(f)
    return plan


def conflict_message(plan: UploadPlan, limit: int = 10) -> str:
    lines = [
        f"  s3://{plan.bucket}/{f.key}: local {f.size} bytes, sha256 {f.sha256[:12]}…; bucket holds {what}"
        for f, what in plan.conflicts[:limit]
    ]
    if len(plan.conflicts) > limit:
        lines.append(f"  … and {len(plan.conflicts) - limit} more")
    return (
        f"{len(plan.conflicts)} file(s) differ from the objects already at their keys; nothing was uploaded:\n"
        + "\n".join(lines)
        + "\nFix: upload to a new prefix (e.g. a new version folder), or pass --overwrite "
        "(the bucket is versioned: the old objects stay as noncurrent versions until the lifecycle rule "
        "expires them)"
    )


# --------------------------------------------------------------------------------------------
# Sending


def chunk_bytes(chunk_mib: int, largest: int) -> int:
    if not MIN_PART_MIB <= chunk_mib <= MAX_PART_MIB:
        raise UploadError(
            f"--chunk-mib = {chunk_mib}: S3 parts are {MIN_PART_MIB}-{MAX_PART_MIB} MiB. "
            f"Fix: pass a value in that range (default 64)"
        )
    # At most 10 000 parts per object: a 1 TiB file needs parts of at least ~105 MiB.
    return max(chunk_mib * MIB, math.ceil(largest / MAX_PARTS))


class _Progress:
    """Bytes sent, with rate and ETA: a rich bar on a terminal, one line per file otherwise."""

    def __init__(self, console: Console, total: int, files: int):
        self.console = console
        self.lock = threading.Lock()
        self.sent = 0
        self.started = time.monotonic()
        self.bar = None
        if console.is_terminal:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("[bold]upload[/] {task.fields[files]}"),
                BarColumn(),
                DownloadColumn(binary_units=True),  # MiB, as every other size on the screen
                _BinarySpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self.task = self.bar.add_task("upload", total=total, files=f"0/{files} files")
            self.bar.start()
        self.files, self.done = files, 0

    def advance(self, n: int) -> None:
        with self.lock:
            self.sent += n  # negative when s3transfer rewinds a retried part
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def file_done(self, f: LocalFile, error: str | None) -> None:
        with self.lock:
            self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, files=f"{self.done}/{self.files} files")
            if error:
                self.bar.console.print(f"[red]failed[/] {f.key}: {error}", highlight=False)
        else:
            status = f"failed: {error}" if error else "uploaded"
            self.console.print(f"{status} {f.key} ({_size(f.size)})", highlight=False, markup=False, soft_wrap=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class _BinarySpeedColumn(ProgressColumn):
    """rich's TransferSpeedColumn in MiB/s (it counts in decimal MB/s): one unit per screen."""

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{_size(speed)}/s", style="progress.data.speed")


def _subscriber(progress: _Progress):
    from s3transfer.subscribers import BaseSubscriber

    class _Sub(BaseSubscriber):
        def on_progress(self, future, bytes_transferred, **kwargs):
            progress.advance(bytes_transferred)

    return _Sub()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _abort_leftovers(s3, bucket: str, keys: set[str], since: dt.datetime, prefix: str) -> tuple[list[str], str]:
    """Abort multipart uploads this run started for `keys` that are still open (s3transfer's own abort
    failed, e.g. the network went first). Uploads started by someone else are left alone. Returns the keys
    whose open upload could not be aborted, and why the check itself failed ("" when it ran)."""
    if not keys:
        return [], ""
    left: list[str] = []
    try:
        pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for up in page.get("Uploads", []):
                if up["Key"] not in keys or up["Initiated"] < since - dt.timedelta(minutes=5):
                    continue
                try:
                    s3.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
                except Exception:  # noqa: BLE001 - reported below, the lifecycle rule is the backstop
                    left.append(up["Key"])
    except Exception as exc:  # noqa: BLE001 - say that it could not be checked, claim nothing
        return [], _short(exc)
    return sorted(left), ""


def send(s3, plan: UploadPlan, *, jobs: int, chunk_mib: int, console: Console) -> UploadResult:
    from s3transfer.manager import TransferConfig, TransferManager

    result = UploadResult(plan)
    if not plan.upload:
        return result
    chunk = chunk_bytes(chunk_mib, max(f.size for f in plan.upload))
    # Memory stays near chunk × (jobs + 2): parts read ahead of the requests that send them.
    config = TransferConfig(
        multipart_threshold=chunk,
        multipart_chunksize=chunk,
        max_request_concurrency=jobs,
        max_in_memory_upload_chunks=jobs + 2,
    )
    progress = _Progress(console, plan.upload_bytes, len(plan.upload))
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    pending = {f.key for f in plan.upload}
    try:
        # Leaving this block by an exception (Ctrl-C included) cancels every transfer; s3transfer
        # then runs each one's failure cleanup, which aborts its multipart upload.
        with TransferManager(s3, config) as tm:
            futures = []
            for f in plan.upload:
                # No ServerSideEncryption/SSEKMSKeyId: the bucket default applies (the policy refuses others).
                extra = {"Metadata": {SHA256_METADATA: f.sha256}, "ChecksumAlgorithm": CHECKSUM_ALGORITHM}
                futures.append(
                    (
                        f,
                        tm.upload(
                            str(f.path), plan.bucket, f.key, extra_args=extra, subscribers=[_subscriber(progress)]
                        ),
                    )
                )
            for f, fut in futures:
                try:
                    fut.result()
                except Exception as exc:  # noqa: BLE001 - one file's failure must not hide the others
                    result.failed.append((f, _short(exc)))
                    progress.file_done(f, _short(exc))
                else:
                    result.uploaded.append(f)
                    pending.discard(f.key)
                    progress.file_done(f, None)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        progress.close()
        result.seconds = time.monotonic() - t0
    result.bytes_sent = sum(f.size for f in result.uploaded)
    result.left_incomplete, result.unchecked = _abort_leftovers(s3, plan.bucket, pending, started, plan.dataset.prefix)
    return result


# --------------------------------------------------------------------------------------------
# Manifest


def manifest_entries(s3, bucket: str, dataset: DatasetRef, known: Iterable[LocalFile], jobs: int) -> list[dict]:
    """What the prefix holds now: key (below the prefix), size, sha256 (None when an object lacks it)."""
    by_key = {f.key: f for f in known}
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=dataset.prefix):
        objects += [o for o in page.get("Contents", []) if o["Key"] != dataset.prefix + MANIFEST]

    def entry(obj: dict) -> dict:
        f = by_key.get(obj["Key"])
        sha = (
            f.sha256
            if f is not None and f.size == obj["Size"]
            else ((_head(s3, bucket, obj["Key"]) or {}).get("Metadata") or {}).get(SHA256_METADATA)
        )
        return {"key": obj["Key"][len(dataset.prefix) :], "size": obj["Size"], "sha256": sha}

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return sorted(pool.map(entry, objects), key=lambda e: e["key"])


def write_manifest(s3, bucket: str, dataset: DatasetRef, entries: list[dict], now: Callable[[], dt.datetime]) -> bool:
    """Write `<prefix>_MANIFEST.json` unless it already lists exactly these files (no needless versions)."""
    key = dataset.prefix + MANIFEST
    try:
        current = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if current.get("files") == entries:
            return False
    except s3.exceptions.NoSuchKey:
        pass
    except ValueError:
        pass  # unreadable: replace it
    doc = {
        "dataset": str(dataset),
        "uri": f"s3://{bucket}/{dataset.prefix}",
        "generatedAt": now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fileCount": len(entries),
        "totalBytes": sum(e["size"] for e in entries),
        "files": entries,
    }
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(doc, indent=1).encode(),
        ContentType="application/json",
        ChecksumAlgorithm=CHECKSUM_ALGORITHM,
    )
    return True


# --------------------------------------------------------------------------------------------
# The command


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def s3_client(region: str | None = None):
    """boto3 honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, which is how the tests point it at moto."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", region_name=region, config=Config(retries={"mode": "standard", "max_attempts": 5}))


def upload(
    src: Path,
    dest: str,
    *,
    bucket: str | None = None,
    platform: str | None = None,
    root: Path | None = None,
    jobs: int = 8,
    chunk_mib: int = 64,
    overwrite: bool = False,
    dry_run: bool = False,
    s3: Any = None,
    console: Console | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> UploadResult:
    if console is None:
        from trainstack.run.ui import console as make_console

        console = make_console()
    if jobs < 1 or jobs > 64:
        raise UploadError(f"--jobs = {jobs}: must be 1-64. Fix: pass e.g. --jobs 8")
    dataset = parse_dest(dest)
    chunk_bytes(chunk_mib, 0)  # validate before hashing anything
    files = local_files(src, dataset, jobs)  # local problems first: they need no AWS
    if bucket is None:
        from trainstack.plan.planner import REPO_ROOT

        bucket = bucket_from_platform(platform or DEFAULT_PLATFORM, dataset.zone, root or REPO_ROOT)
    s3 = s3 or s3_client()
    from botocore.exceptions import BotoCoreError

    from trainstack.fleet.aws import user_error

    try:
        check_bucket(s3, bucket)
        plan = plan_upload(s3, bucket, dataset, files, jobs=jobs, overwrite=overwrite)
    except BotoCoreError as exc:
        raise (user_error(exc) or UploadError(f"AWS: {exc}")) from None
    console.print(
        f"s3://{bucket}/{dataset.prefix}: {len(files)} file(s); {len(plan.upload)} to upload "
        f"({_size(plan.upload_bytes)}), {len(plan.skip)} already there"
        + (f", {len(plan.conflicts)} to overwrite" if overwrite and plan.conflicts else ""),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if plan.conflicts and not overwrite:
        raise UploadError(conflict_message(plan))
    if dry_run:
        for f in plan.upload:
            console.print(f"would upload {f.key} ({_size(f.size)})", highlight=False, markup=False, soft_wrap=True)
        return UploadResult(plan)
    result = send(s3, plan, jobs=jobs, chunk_mib=chunk_mib, console=console)
    if not result.failed and not result.interrupted:
        entries = manifest_entries(s3, bucket, dataset, files, jobs)
        result.manifest_written = write_manifest(s3, bucket, dataset, entries, now)
    return result


def summary(result: UploadResult) -> str:
    plan = result.plan
    rate = result.bytes_sent / result.seconds if result.seconds > 0 else 0.0
    lines = [
        f"{len(result.uploaded)} uploaded ({_size(result.bytes_sent)}"
        + (f", {_size(rate)}/s" if result.bytes_sent else "")
        + f"), {len(plan.skip)} skipped, "
        f"{len(result.failed)} failed" + ("; manifest updated" if result.manifest_written else "")
    ]
    if result.interrupted:
        lines.append(
            "interrupted: unfinished multipart uploads were aborted; run the same command again "
            "to send the rest (finished files are skipped)"
        )
    elif result.failed:
        reasons = sorted({why for _, why in result.failed})
        lines.append("failed: " + "; ".join(reasons[:3]) + (" …" if len(reasons) > 3 else ""))
        lines.append("once the cause is fixed, run the same command again: finished files are skipped")
    if result.unchecked:
        lines.append(f"could not check for unfinished multipart uploads ({result.unchecked})")
    if result.left_incomplete:
        lines.append(
            f"{len(result.left_incomplete)} multipart upload(s) could not be aborted (no object is "
            f"visible; their parts are billed until the lake's lifecycle rule removes them): "
            f"aws s3api list-multipart-uploads --bucket {plan.bucket} --prefix {plan.dataset.prefix}"
        )
    return "\n".join(lines)
