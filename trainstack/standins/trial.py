"""`trainstack try` / `make try`: watch upload, run, ls and down succeed end to end, on LOCAL STAND-INS.

No AWS account, no Pulumi CLI, nothing leaves the machine: a moto server in this process plays AWS
(every boto3 client is pointed at it with AWS_ENDPOINT_URL), the strict fake Pulumi CLI
(trainstack.standins.fake_pulumi) plays `pulumi` (TRAINSTACK_PULUMI_ROOT), its `up` evaluates the real
program offline and makes in moto what the outputs name (trainstack.standins.cloud), and a stand-in
container answers for the ECS task. Everything else is the real code: each step is the `trainstack`
command itself, with its real arguments. It needs the test extras (moto's server).
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainstack.errors import ExitCode, UserError

REGION = "us-east-1"
PLATFORM = "organization/trainstack/platform"
RUN_NAME = "try-dev-ecs"
KEPT = "alice-ecs-kept"
LABEL = "[local stand-ins]"


def _say(text: str = "") -> None:
    print(text, flush=True)


def _banner(text: str) -> None:
    _say(f"\n=== {LABEL} {text}")


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for the trial; restore every one after (the trial may run inside another program)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _fake_cli(folder: Path) -> Path:
    """A `bin/pulumi` that runs the fake CLI with this interpreter (PulumiCommand(root=folder) finds it),
    through the trial's fake-CLI server when it runs (trainstack.standins.fake_pulumi_server)."""
    from trainstack.standins.fake_pulumi_server import launcher

    script = folder / "bin" / "pulumi"
    script.parent.mkdir(parents=True)
    script.write_text(launcher(sys.executable))
    script.chmod(0o755)
    return folder


def _trainstack(*args: str) -> int:
    """One real `trainstack` command, as typed (in this process: the stand-ins live here)."""
    from trainstack.cli.main import app

    _say(f"\n$ trainstack {' '.join(args)}")
    # Not standalone: click returns the exit code (typer.Exit's) instead of calling sys.exit.
    code = app(args=list(args), prog_name="trainstack", standalone_mode=False)
    return code if isinstance(code, int) else 0


def _expect(code: int, want: int, step: str) -> None:
    if code != want:
        raise UserError(
            f"local trial: `{step}` exited {code}, expected {want}. This is a bug in trainstack or its stand-ins; "
            "rerun with --debug",
            ExitCode.FAILED,
        )


def _pulumi_up(stack: str, template: str, root: Path, **overrides: Any) -> dict[str, Any]:
    """What `pulumi stack init STACK && pulumi up` does, through the Automation API and the fake CLI."""
    import datetime as dt

    from trainstack.run.driver import StackDriver, pulumi_command
    from trainstack.run.run_config import Overrides, config_json, load_template, merge, template_file

    _say(f"\n$ pulumi stack init {stack} && pulumi up --stack {stack}   # stand-in CLI; config: Pulumi.{template}.yaml")
    template_config = load_template(template_file(template, root), root)
    raw = (
        merge(template_config, Overrides(**overrides), dt.datetime.now(dt.timezone.utc))
        if template_config.get("trainstack:kind") == "cluster"  # a cluster carries an expiry; a platform none
        else template_config
    )
    stack_obj = StackDriver(pulumi_command(project_root=root), root=root).create(stack)
    stack_obj.set_all_config_json(config_json(raw))
    outputs = {k: v.value for k, v in stack_obj.up().outputs.items()}
    _say(f"{stack}: deployed ({len(outputs)} outputs)")
    return outputs


def trial(keep: Path | None = None, *, root: Path | None = None) -> float:
    """The whole trial; returns its seconds. UserError if a step does not do what it should."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise UserError(
            "trainstack try needs moto's server (a test extra). Fix: `make setup` in the checkout, or "
            "`pip install 'trainstack[test]'`"
        ) from None
    from trainstack.project import REPO_ROOT
    from trainstack.standins.cloud import StandInJobs

    root = root or REPO_ROOT
    if not (root / "__main__.py").exists() or not (root / "examples" / "cifar10").is_dir():
        raise UserError(f"--root {root}: not a trainstack checkout (no __main__.py, examples/). Fix: run it there")
    started = time.monotonic()
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="trainstack-try-"))
    work.mkdir(parents=True, exist_ok=True)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the stand-in's request log is noise here
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    jobs = StandInJobs(REGION)
    _say(
        f"{LABEL} LOCAL TRIAL. Everything below runs against local stand-ins, not AWS: a moto server on "
        f"http://{host}:{port} plays AWS and a fake Pulumi CLI plays `pulumi` (it evaluates the real program "
        "offline). No AWS account, no Pulumi CLI, no cost; nothing leaves this machine. No training happens: a "
        f"stand-in container answers for the job. State: {work}"
    )
    (work / "state").mkdir(exist_ok=True)
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "stand-in",
        "AWS_SECRET_ACCESS_KEY": "stand-in",
        "AWS_SESSION_TOKEN": "stand-in",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(work / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
        "TRAINSTACK_PULUMI_ROOT": str(work / "pulumi" if (work / "pulumi").exists() else _fake_cli(work / "pulumi")),
        "FAKE_PULUMI_STATE": str(work / "state"),
        "FAKE_PULUMI_PYTHON": sys.executable,
        # Offline evaluations of the program, kept across trials (keyed by config and sources: never stale).
        "FAKE_PULUMI_CACHE": os.environ.get("FAKE_PULUMI_CACHE") or str(root / ".trainstack" / "cache" / "programs"),
        "FAKE_PULUMI_STANDINS": "1",
        "TRAINSTACK_RUNS_DIR": str(work / "runs"),
        "TRAINSTACK_POLL_SECONDS": "0.3",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    from trainstack.standins import fake_pulumi_server

    try:
        # Every `pulumi` command of the trial runs in a fork of one fake-CLI server, its imports done.
        with fake_pulumi_server.running(standins=True) as sock, _environment({**env, "FAKE_PULUMI_SERVER": sock}):
            os.environ.pop("AWS_PROFILE", None)
            jobs.start()
            _steps(root, work)
        if jobs.errors:
            raise UserError(f"local trial: the stand-in job failed: {jobs.errors[0]}", ExitCode.FAILED)
    finally:
        jobs.halt.set()
        server.stop()
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started
    _banner(f"local trial passed in {seconds:.0f} s: upload, run, ls and down worked end to end (on stand-ins)")
    _say(
        "The real path is the same commands with AWS credentials and the Pulumi CLI: deploy the platform "
        "(`pulumi up --stack platform`), then `trainstack upload`, `trainstack run dev-ecs`."
    )
    return seconds


def _steps(root: Path, work: Path) -> None:
    import boto3

    _banner("1. the platform (network + data lake), deployed once per team")
    platform = _pulumi_up("platform", "platform", root)

    _banner("2. a dataset into the lake: a tiny generated CIFAR-10-shaped sample (examples/cifar10/prepare_data.py)")
    data = work / "cifar10"
    script = root / "examples" / "cifar10" / "prepare_data.py"
    _say(f"$ python {script.relative_to(root)} {data} --sample 20")
    prepare_data = runpy.run_path(str(script))  # the example's own script (stdlib only), not a package
    prepare_data["sample"](data, 20)
    _expect(_trainstack("upload", str(data), "raw/cifar10/v1/", "--platform", PLATFORM), 0, "upload")

    _banner("3. one command from code to model: plan, create, preview, up, follow the job, destroy")
    _say("(--no-doctor: `trainstack doctor` checks a real account's quotas and capacity, which no stand-in has)")
    code = _trainstack("run", "dev-ecs", "--name", RUN_NAME, "--yes", "--no-doctor", "--root", str(root))
    _expect(code, 0, "run")
    record = json.loads((work / "runs" / RUN_NAME / "run.json").read_text())
    bucket, _, key = record["model_uri"][len("s3://") :].partition("/")
    boto3.client("s3", region_name=REGION).head_object(Bucket=bucket, Key=key + "model.pt")
    stages = ", ".join(f"{k} {v['status']}" for k, v in record["stages"].items())
    _say(f"run.json: {record['status']}; stages: {stages}; model.pt is in the lake")

    _banner("4. a cluster kept with plain Pulumi, as a developer might leave one")
    _pulumi_up(KEPT, "dev-ecs", root, owner="alice")
    _expect(_trainstack("ls", "--region", REGION, "--root", str(root)), 0, "ls")

    _banner("5. clean it up")
    _expect(_trainstack("down", KEPT, "--yes", "--root", str(root)), 0, "down")
    _expect(_trainstack("ls", "--region", REGION, "--root", str(root)), 0, "ls")
    assert platform["buckets"]
