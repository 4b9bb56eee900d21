"""`trainstack try` (and `make try`): the documented local trial runs end to end, on stand-ins only, fast."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_the_local_trial_runs_upload_run_ls_and_down_without_aws_or_pulumi(tmp_path, request):
    exe = Path(sys.executable).parent / "trainstack"
    path = "/usr/bin:/bin"
    assert shutil.which("pulumi", path=path) is None  # no Pulumi CLI to fall back on
    env = {
        "PATH": path,
        "HOME": str(tmp_path),  # no ~/.aws, no ~/.pulumi
        "FAKE_PULUMI_CACHE": str(request.config.cache.mkdir("fake-pulumi-programs")),
    }
    started = time.monotonic()
    proc = subprocess.run(
        [str(exe), "try", "--keep", str(tmp_path / "trial")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=110,
    )
    seconds = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in out + proc.stderr
    # Clearly labelled, start and end.
    assert out.startswith("[local stand-ins] LOCAL TRIAL") and "not AWS" in out.splitlines()[0]
    assert "local trial passed" in out
    # Each command ran and did what it says.
    for step in (
        "$ trainstack upload",
        "$ trainstack run dev-ecs",
        "$ trainstack ls",
        "$ trainstack down alice-ecs-kept",
    ):
        assert step in out, step
    assert "7 uploaded" in out and "manifest updated" in out
    assert "try-dev-ecs: succeeded" in out and "model: s3://datalake-artifacts-" in out
    assert "stages: plan ok, doctor skipped, create ok, preview ok, up ok, follow ok, destroy ok" in out
    assert "[stand-in job] no training happens here" in out  # the job's log, tailed by the real follower
    ls_tables = out.split("$ trainstack ls")[1:]
    assert "alice-ecs-kept  alice  ecs" in ls_tables[0] and " ok " in ls_tables[0]
    assert "alice-ecs-kept: destroyed and removed" in out and "no trainstack clusters found" in ls_tables[1]
    assert seconds < 100, f"the trial took {seconds:.0f} s"  # ~30 s warm, ~60 s cold, on 2 busy cores
