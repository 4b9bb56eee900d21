"""What `trainstack exec` sends to start a job, checked before anything is sent."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest

from tests.helpers import NOW, cluster_config
from tests.programs.test_outputs_contract import ecs_outputs
from trainstack.model.config import parse_config
from trainstack.model.run_locations import job_locations, locations_from_uris
from trainstack.run import jobs
from trainstack.run.follow.ecs import ECS_OVERRIDES_MAX
from trainstack.run.run_config import RefusedError


def ecs_context(environment: dict[str, str]) -> tuple[SimpleNamespace, object]:
    cfg = parse_config(cluster_config("ecs", job={"environment": environment}), stack="bob-ecs", now=NOW)
    outputs = ecs_outputs()
    deployed = SimpleNamespace(name="bob-ecs", outputs=outputs, stack=SimpleNamespace(backend="ecs"))
    ctx = SimpleNamespace(cfg=cfg, deployed=deployed, now=NOW, job_id="20261123120000-ab12")
    loc = job_locations(
        locations_from_uris("s3://raw/d/", "s3://art/artifacts/bob/bob-ecs/", "s3://art/checkpoints/bob/bob-ecs/"),
        ctx.job_id,
    )
    return ctx, loc


def test_an_ecs_job_within_runtasks_override_limit_is_sent_whole():
    ctx, loc = ecs_context({"LR": "0.1"})
    payload = jobs.job_payload(ctx, loc, "s3://art/artifacts/bob/bob-ecs/code/x.tar.gz")
    (override,) = payload["containerOverrides"]
    env = {e["name"]: e["value"] for e in override["environment"]}
    assert env["LR"] == "0.1" and env["TRAINSTACK_JOB_ID"] == ctx.job_id
    assert env["TRAINSTACK_RUN_RECORD_URI"] == "s3://art/artifacts/bob/bob-ecs/jobs/20261123120000-ab12/run.json"
    assert override["command"][0] == "timeout" and len(json.dumps(payload)) <= ECS_OVERRIDES_MAX


def test_an_ecs_job_over_runtasks_override_limit_is_refused_before_anything_is_sent():
    ctx, loc = ecs_context({f"TOKEN_{i}": "x" * 500 for i in range(12)})
    with pytest.raises(RefusedError, match=r"characters of RunTask overrides; ECS allows 8192\. Fix: shorten"):
        jobs.job_payload(ctx, loc, None)


def test_the_job_runs_no_longer_than_the_stack_lives():
    ctx, loc = ecs_context({})
    ctx.now = ctx.cfg.cluster.expires_at - dt.timedelta(minutes=30)
    (override,) = jobs.job_payload(ctx, loc, None)["containerOverrides"]
    assert "1800s" in override["command"]  # coreutils timeout at the stack's expiry, not maxRuntimeHours
