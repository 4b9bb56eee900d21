"""Code delivery: a run's `job.workdir`, packed once and fetched by every backend.

The folder becomes a deterministic `.tar.gz` (sorted entries, mtime/uid/gid 0, gzip mtime 0), so
the same code always gives the same bytes, and its sha256 names the S3 object:

    s3://<artifacts bucket>/artifacts/<owner>/<stack>/code/<sha256>.tar.gz   ($TRAINSTACK_CODE_URI)

Why a tar.gz built here and not a Pulumi `FileArchive`: the SageMaker training toolkit opens
`sagemaker_submit_directory` with `tarfile.open(mode="r:gz")` (aws/sagemaker-training-toolkit,
src/sagemaker_training/files.py `download_and_extract`), while a bridged provider uploads an
Archive given as an Asset as ZIP when no format is set (pulumi/pulumi-terraform#472: "If no format
has been specified in the asset translation, default to ZIP"). One format serves every backend.

`container_entry(command)` is the argv a stock Deep Learning Container runs to fetch and unpack
the bundle with boto3 (present in the DLCs), run the command in the unpacked folder and, when told
where (`$TRAINSTACK_RUN_RECORD_URI`), write the run's result to its `run.json` when the command ends.
Pure: no Pulumi, no AWS calls.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from trainstack.model.run_locations import RUN_RECORD_URI_ENV

CODE_URI_ENV = "TRAINSTACK_CODE_URI"
CODE_DIR_ENV = "TRAINSTACK_CODE_DIR"
PROGRAM_ENV = "TRAINSTACK_PROGRAM"  # sagemaker: the script the entry file runs
CODE_DIR = "/opt/ml/code"  # where SageMaker's toolkit unpacks it too
CODE_FOLDER = "code/"  # under the run's artifact prefix
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
EXCLUDED_DIRS = frozenset({"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
EXCLUDED_SUFFIXES = (".pyc",)


class BundleError(ValueError):
    """The workdir cannot be shipped (empty, too big, unreadable)."""


@dataclass(frozen=True)
class Bundle:
    """A built code bundle: its tar.gz, that file's SHA-256 and size, and the files in it."""

    path: Path
    sha256: str
    size: int
    files: tuple[str, ...]

    @property
    def file_name(self) -> str:
        return f"{self.sha256}.tar.gz"


def scan(folder: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(the files that go into the bundle, the entries this process cannot read), relative POSIX paths in
    sorted order; an unreadable folder ends in "/". os.walk alone skips a folder it cannot list, which
    would ship the run without that code."""
    root = Path(folder)
    files: list[str] = []
    unreadable: list[str] = []

    def rel(path: str | os.PathLike) -> str:
        return Path(path).relative_to(root).as_posix()

    def refused(exc: OSError) -> None:
        unreadable.append(rel(exc.filename) + "/")

    for dirpath, dirnames, filenames in os.walk(root, onerror=refused):
        kept = []
        for d in sorted(d for d in dirnames if d not in EXCLUDED_DIRS):
            if os.access(os.path.join(dirpath, d), os.R_OK | os.X_OK):
                kept.append(d)
            else:
                unreadable.append(rel(os.path.join(dirpath, d)) + "/")
        dirnames[:] = kept
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if name.endswith(EXCLUDED_SUFFIXES) or not path.is_file():
                continue
            (files if os.access(path, os.R_OK) else unreadable).append(rel(path))
    return sorted(files), sorted(unreadable)


def bundle_files(folder: str | os.PathLike) -> list[str]:
    """The files that go into the bundle, relative POSIX paths in sorted order."""
    return scan(folder)[0]


def bundle_bytes(
    folder: str | os.PathLike, files: Sequence[str] | None = None, extra: Mapping[str, str] | None = None
) -> bytes:
    """Deterministic tar.gz of `folder` (plus `extra` files trainstack adds, name -> text): same files, same
    bytes."""
    root = Path(folder)
    files = bundle_files(root) if files is None else files
    entries = sorted([(rel, None) for rel in files] + [(name, text) for name, text in (extra or {}).items()])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, text in entries:
            path = root / rel
            info = tarfile.TarInfo(rel)
            data = path.read_bytes() if text is None else text.encode()
            info.size, info.mtime, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0, 0, "", ""
            info.mode = 0o755 if text is None and os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    # filename="" and mtime=0: the gzip header then carries nothing that varies between builds.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_bundle(
    folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    key: str = "trainstack:job.workdir",
    max_bytes: int = MAX_BUNDLE_BYTES,
    backend: str | None = None,
) -> Bundle:
    """Pack `folder` into `<out_dir>/<sha256>.tar.gz` (written once; the name is the content). A sagemaker
    bundle also carries SAGEMAKER_ENTRY_FILE (what the toolkit runs; see there)."""
    files, unreadable = scan(folder)
    extra = {SAGEMAKER_ENTRY_FILE: SAGEMAKER_ENTRY_SCRIPT} if backend == "sagemaker" else {}
    clash = sorted(set(extra) & set(files))
    if clash:
        raise BundleError(
            f"{key} = {str(folder)!r}: {clash[0]} is the file trainstack adds to a sagemaker bundle (it runs the "
            "job's command and records its result). Fix: rename your file"
        )
    if unreadable:
        raise BundleError(
            f"{key} = {str(folder)!r}: cannot read {', '.join(unreadable)} (permission denied). Fix: make them "
            "readable, or move them out of the workdir"
        )
    if not files:
        raise BundleError(
            f"{key} = {str(folder)!r}: the folder has no files to ship (caches like __pycache__ "
            "and .git are left out). Fix: point it at the folder holding your training script"
        )
    data = bundle_bytes(folder, files, extra)
    if len(data) > max_bytes:
        raise BundleError(
            f"{key} = {str(folder)!r}: the code bundle is {len(data) / 2**20:.1f} MiB compressed, over the "
            f"{max_bytes / 2**20:.0f} MiB limit. Fix: keep only code in the workdir; put data in the data lake "
            "(job.dataset) and large files in the image"
        )
    sha = hashlib.sha256(data).hexdigest()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{sha}.tar.gz"
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a concurrent plan never sees half a file
    return Bundle(path=path, sha256=sha, size=len(data), files=tuple(sorted([*files, *extra])))


def code_key(artifact_prefix: str, sha256: str) -> str:
    """S3 key of a bundle under a run's artifact prefix (`artifacts/<owner>/<stack>/`)."""
    prefix = artifact_prefix if artifact_prefix.endswith("/") else artifact_prefix + "/"
    return f"{prefix}{CODE_FOLDER}{sha256}.tar.gz"


# Run by `python3 -c` inside the container: argv[1:] is the command.
# 1. With $TRAINSTACK_CODE_URI: download it, unpack it into $TRAINSTACK_CODE_DIR (default /opt/ml/code) with
#    tarfile's "data" filter where the Python has it (no absolute paths or `..`), and `cd` there.
# 2. Without $TRAINSTACK_RUN_RECORD_URI (or on a rank other than 0): replace itself with the command, so
#    signals (ECS stop, `timeout`) reach the training process directly.
# 3. With it (rank 0): run the command as a child, pass SIGTERM/SIGINT on to it, and when it ends merge the
#    result into that run.json (status, exit code, finished_at, the model URI on success) before exiting with
#    the command's code: the record of a run nobody follows (`trainstack run --detach`, a laptop that died)
#    is still written, by the job itself, with the container's own role (its artifact-prefix grant).
#    No boto3 in the image and no code to fetch: step 2, and the job writes no record (said on its log).
def _entry_lines(*, sagemaker: bool) -> list[str]:
    if sagemaker:
        # The toolkit has unpacked the bundle and runs this file (`python _trainstack_entry.py --name value ...`,
        # or torchrun on it): the command is the user's script with those arguments; rank 0 of the job (torchrun's
        # RANK; absent without distribution) records; SageMaker uploads <S3OutputPath>/<job>/output/model.tar.gz
        # after the container ends (TRAINING_JOB_NAME: set by SageMaker in every training container).
        head = [
            "uri = None",
            f"record = os.environ.get('{RUN_RECORD_URI_ENV}') if os.environ.get('RANK', '0') == '0' else None",
            f"cmd, s3 = [sys.executable, os.environ['{PROGRAM_ENV}'], *sys.argv[1:]], None",
            "model = os.environ.get('TRAINSTACK_ARTIFACT_URI', '') + os.environ.get('TRAINING_JOB_NAME', '') + '/output/model.tar.gz'",
        ]
    else:
        head = [
            f"uri = os.environ.get('{CODE_URI_ENV}')",
            f"record = os.environ.get('{RUN_RECORD_URI_ENV}') if os.environ.get('TRAINSTACK_NODE_RANK', '0') == '0' else None",
            "cmd, s3 = sys.argv[1:], None",
            "model = os.environ.get('TRAINSTACK_MODEL_URI')",
        ]
    return [
        "import json, os, signal, subprocess, sys, tarfile, tempfile, time",
        *head,
        "try:",
        "    import boto3",
        "    s3 = boto3.client('s3')",
        "except ImportError:",
        "    if uri:",
        "        raise",
        "    if record:",
        "        print('trainstack: no boto3 in the image: this job writes no run.json', flush=True)",
        "    record = None",
        "if uri:",
        "    bucket, _, key = uri[len('s3://'):].partition('/')",
        f"    dest = os.environ.get('{CODE_DIR_ENV}', '{CODE_DIR}')",
        "    os.makedirs(dest, exist_ok=True)",
        "    with tempfile.TemporaryFile() as f:",
        "        s3.download_fileobj(bucket, key, f)",
        "        f.seek(0)",
        "        with tarfile.open(fileobj=f, mode='r:gz') as t:",
        "            t.extractall(dest, **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))",
        "    print(f'trainstack: code from {uri} in {dest}', flush=True)",
        "    os.chdir(dest)",
        "if not record:",
        "    os.execvp(cmd[0], cmd)",
        "child = subprocess.Popen(cmd)",
        "for sig in (signal.SIGTERM, signal.SIGINT):",
        "    signal.signal(sig, lambda n, _: child.send_signal(n))",
        "code = child.wait()",
        "code = 128 - code if code < 0 else code",
        "bucket, _, key = record[len('s3://'):].partition('/')",
        "try:",
        "    doc = json.loads(s3.get_object(Bucket=bucket, Key=key)['Body'].read())",
        "except Exception:",
        "    doc = {}",
        "doc.update(status='succeeded' if code == 0 else 'failed', exit_code=0 if code == 0 else 1,",
        "           reason='' if code == 0 else f'the command exited with code {code}', job_exit_code=code,",
        "           finished_at=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), written_by='job')",
        "if code == 0 and model:",
        "    doc['model_uri'] = model",
        "try:",
        "    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc, indent=2).encode(), ContentType='application/json')",
        "    print(f'trainstack: result in {record}', flush=True)",
        "except Exception as exc:",
        "    print(f'trainstack: could not write {record}: {exc}', flush=True)",
        "sys.exit(code)",
    ]


ENTRY_SCRIPT = "\n".join(_entry_lines(sagemaker=False))
# The file SageMaker's toolkit runs as `sagemaker_program` (added to the bundle of a sagemaker stack): it runs
# the command's script as a child with the toolkit's arguments, and rank 0 writes the job's result into its
# run.json when it ends, as ENTRY_SCRIPT does in ecs/eks containers. A child process, not runpy: a script run
# in-process is not importable as `__main__` by the spawn start method (torch.multiprocessing.spawn).
SAGEMAKER_ENTRY_FILE = "_trainstack_entry.py"
SAGEMAKER_ENTRY_SCRIPT = "\n".join(_entry_lines(sagemaker=True)) + "\n"


def container_entry(command: Sequence[str]) -> list[str]:
    """The argv a container runs: fetch and unpack the code, `cd` there, run the command (writing its
    result to $TRAINSTACK_RUN_RECORD_URI when that is set)."""
    if not command:
        raise ValueError("command is empty: nothing to run after fetching the code")
    return ["python3", "-c", ENTRY_SCRIPT, *command]


def max_runtime_command(command: Sequence[str], max_runtime_seconds: int, kill_after_seconds: int = 120) -> list[str]:
    """Wrap the command in coreutils `timeout`: ECS has no task timeout, and a task that never ends
    keeps its GPU instance protected from scale-in (and billed) forever. SIGTERM at the limit, SIGKILL
    `kill_after_seconds` later (ECS's stopTimeout maximum: time for a last checkpoint)."""
    if not command:
        return []
    return ["timeout", "--signal=TERM", f"--kill-after={kill_after_seconds}s", f"{max_runtime_seconds}s", *command]


PYTHON_NAMES = ("python", "python3")


def sagemaker_entry(command: Sequence[str]) -> tuple[str, dict[str, str]]:
    """`[python, train.py, --epochs, 10]` -> ("train.py", {"epochs": '"10"'}) for the SageMaker toolkit.

    The toolkit runs `sagemaker_program` from the unpacked `sagemaker_submit_directory` and passes
    every other hyperparameter back as `--name value`, sorted by name (sagemaker_training/mapping.py
    `to_cmd_args`). Values are JSON-encoded as the SageMaker Python SDK does, because the toolkit
    `json.loads` each one (environment.py `read_hyperparameters`): "10" then stays the string "10".
    So only `--name value` / `--name=value` arguments map; their order does not survive.
    """
    cmd = list(command)
    if len(cmd) < 2 or os.path.basename(cmd[0]).split(".")[0].rstrip("0123456789") not in PYTHON_NAMES:
        raise ValueError(f"{cmd!r} is not `python script.py ...`")
    script, rest = cmd[1], cmd[2:]
    if script.startswith("-") or script.startswith("/") or not script.endswith(".py"):
        raise ValueError(
            f"`{script}` is not a .py script inside the workdir (`python -m` and interpreter "
            "options are not supported by the toolkit)"
        )
    hyper: dict[str, str] = {}
    i = 0
    while i < len(rest):
        arg = rest[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise ValueError(f"argument `{arg}` is not a --name")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(rest) or rest[i + 1].startswith("--"):
                raise ValueError(f"`{arg}` has no value (flags without a value cannot be passed as hyperparameters)")
            value, i = rest[i + 1], i + 1
        if name in hyper:
            raise ValueError(f"`--{name}` is given twice")
        hyper[name] = json.dumps(value)
        i += 1
    return script, hyper


def sagemaker_hyperparameters(command: Sequence[str], code_uri: str, *, distributed: bool) -> dict[str, str]:
    """What makes the stock PyTorch DLC's toolkit fetch the bundle and run the script: through
    SAGEMAKER_ENTRY_FILE, which runs the script named by `sagemaker_environment` (same arguments)."""
    _script, hyper = sagemaker_entry(command)
    hyper.update(
        {"sagemaker_submit_directory": json.dumps(code_uri), "sagemaker_program": json.dumps(SAGEMAKER_ENTRY_FILE)}
    )
    if distributed:
        # torchrun on every host (sagemaker-pytorch-training-toolkit training.py, TorchDistributedRunnerType)
        hyper["sagemaker_torch_distributed_enabled"] = "true"
    return hyper


def sagemaker_environment(command: Sequence[str]) -> dict[str, str]:
    """The container environment SAGEMAKER_ENTRY_FILE reads: which script of the bundle to run."""
    script, _hyper = sagemaker_entry(command)
    return {PROGRAM_ENV: script}
