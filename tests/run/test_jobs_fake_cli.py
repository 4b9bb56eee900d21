"""Iterating on a kept cluster, end to end on each backend: `trainstack run --detach` (the job writes its own
run.json after the driver has gone), then two `trainstack exec`s with different code on the same stack (only
the new bundle is uploaded, no `pulumi up`, no compute resource created), then `trainstack logs` of both;
`trainstack ls` shows the detached run (running, then its latest job finished) and `reap --finished` removes the
stack once the grace has passed.

The real Automation API drives the strict fake CLI (tests/fakes/); AWS is a moto server; the jobs are played
for real by tests/fakes/jobs_harness.py (the entry script, the ec2 bootstrap, the Job's command run as
processes against the same moto server).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
import urllib.request

import boto3
import pytest
from rich.console import Console

from tests.fakes.api_calls import model_problems, recorded_calls
from tests.fakes.jobs_harness import JobPlayer, write_code
from tests.fakes.run_harness import FAKE_ROOT, ROOT, Cloud, command, create_data_lake, install_cloud, options
from trainstack.errors import ExitCode, UserError
from trainstack.fleet import inventory as fleet
from trainstack.run import jobs
from trainstack.run import run as run_mod
from trainstack.run.follow import split_s3_uri
from trainstack.run.run import Ui
from trainstack.run.run_config import Overrides

pytestmark = pytest.mark.e2e


@pytest.fixture
def played(aws_credentials, monkeypatch, platform_outputs, moto_server, tmp_path, cli):
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=30)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    cloud = Cloud(job_outcome="play")
    cloud.player = JobPlayer(cloud, moto_server, tmp_path / "cloud")
    create_data_lake(platform_outputs)
    install_cloud(monkeypatch, cloud)
    yield cloud
    cloud.close()


def ui() -> tuple[Ui, io.StringIO]:
    buf = io.StringIO()
    return Ui(Console(file=buf, width=300, force_terminal=False, color_system=None)), buf


def s3_json(uri: str) -> dict:
    bucket, key = split_s3_uri(uri)
    return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def s3_keys(uri: str) -> set[str]:
    bucket, prefix = split_s3_uri(uri)
    found = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix) :] for o in found}


def job_options(stack: str, tmp_path, **kw) -> jobs.JobOptions:
    return jobs.JobOptions(
        stack=stack,
        root=ROOT,
        pulumi_root=str(FAKE_ROOT),
        poll_seconds=0.01,
        start_timeout_seconds=30,
        record_dir=tmp_path / "runs",
        build_dir=tmp_path / "build",
        **kw,
    )


def compute_footprint(backend: str) -> dict:
    """What an exec must not create: task definitions, Auto Scaling groups, launch configurations."""
    if backend == "ecs":
        return {"task definitions": sorted(boto3.client("ecs").list_task_definitions()["taskDefinitionArns"])}
    asg = boto3.client("autoscaling")
    return {
        "groups": sorted(g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]),
        "launch configurations": len(asg.describe_launch_configurations()["LaunchConfigurations"]),
    }


# The template's knobs a one-node, one-GPU stand-in job can play (the ec2/eks examples ask for 2 nodes).
SMALL = {
    "ecs": (),
    "sagemaker": (),
    "ec2": ("job.nodes=1", "job.gpusPerNode=1"),
    "eks": ("job.nodes=1", "job.gpusPerNode=1"),
}


@pytest.mark.parametrize("backend", ["ecs", "ec2", "eks", "sagemaker"])
def test_detached_run_then_two_execs_with_new_code_and_their_logs(backend, cli, played, tmp_path):
    with recorded_calls() as calls:
        _iterate(backend, cli, played, tmp_path)
    # Every AWS call the driver, exec, logs, ls and reap made (and the jobs' own, in-process ones) fits botocore's
    # service model, enums and maximums included.
    mine = [c for c in calls if c[1] in EXEC_OPERATIONS]
    assert {c[1] for c in mine} >= EXPECTED_OPERATIONS[backend]
    assert model_problems(calls) == []


# The calls exec, attach/logs, ls and reap make on each backend (what the model check above must have seen).
EXEC_OPERATIONS = {
    "HeadObject",
    "PutObject",
    "GetObject",
    "ListObjectsV2",
    "RunTask",
    "DescribeTasks",
    "StopTask",
    "ListTasks",
    "CreateTrainingJob",
    "DescribeTrainingJob",
    "StopTrainingJob",
    "ListTrainingJobs",
    "ListTags",
    "UpdateAutoScalingGroup",
    "DescribeAutoScalingGroups",
    "DescribeLogStreams",
    "GetLogEvents",
}
EXPECTED_OPERATIONS = {
    "ecs": {"HeadObject", "PutObject", "GetObject", "ListObjectsV2", "RunTask", "DescribeTasks"},
    "eks": {"HeadObject", "PutObject", "GetObject", "ListObjectsV2"},
    "ec2": {"HeadObject", "PutObject", "GetObject", "ListObjectsV2", "UpdateAutoScalingGroup"},
    "sagemaker": {"HeadObject", "PutObject", "GetObject", "ListObjectsV2", "CreateTrainingJob", "DescribeTrainingJob"},
}


def _iterate(backend, cli, played, tmp_path):
    name = f"t-dev-{backend}"
    code_a, code_b = write_code(tmp_path / "code-a", "A"), write_code(tmp_path / "code-b", "B")
    player = played.player

    # -- run --detach: returns once the job has started; the job records its own result later -----------------
    player.deferred = True  # the job runs after the driver has returned
    overrides = Overrides(name=name, workdir=str(code_a), command=["python", "train.py"], sets=SMALL[backend])
    out_ui, out = ui()
    record = run_mod.run(
        options(f"dev-{backend}", tmp_path, detach=True, overrides=overrides), out_ui, command=command()
    )
    assert record.exit_code == 0 and record.status == "detached", record.reason
    assert cli.stacks() == [name] and "destroy" not in cli.commands()  # kept: the job still runs
    assert f"trainstack attach {name}" in out.getvalue()
    doc = s3_json(record.artifact_uri + "run.json")
    assert doc["status"] == "detached" and doc["detached"] and doc["stages"]["destroy"]["why"] == "--detach"
    assert doc["finished_at"] is None

    # ls shows the detached run, running; reap --finished leaves it alone
    before = len(cli.commands())
    listed = ls()
    # One `stack ls`, and this stack's outputs read once although two parts of the listing read them (its
    # state and its run); the platform's are not read at all.
    assert cli.commands()[before:] == ["stack ls", "stack output"]
    assert listed[name].run.cell(NOW) == "detached: running" and listed[name].run.detached
    assert fleet.reap_candidates(listed.values(), NOW, expired=False, prefix=None, grace=ZERO, finished=True) == []

    player.deferred = False
    player.play()  # the job runs and ends with nobody following it: its own entry writes run.json
    doc = s3_json(record.artifact_uri + "run.json")
    assert doc["written_by"] == "job" and doc["job_exit_code"] == 0
    assert doc["status"] == "succeeded" and doc["exit_code"] == 0 and doc["finished_at"]
    if backend == "sagemaker":  # SageMaker uploads SM_MODEL_DIR as model.tar.gz under the job's name
        assert doc["model_uri"] == f"{record.artifact_uri}{record.job_handle}/output/model.tar.gz"
    else:
        assert doc["model_uri"] == record.model_uri and "model.txt" in s3_keys(record.model_uri)
    assert _model_text(doc["model_uri"]) == "A"
    # attach afterwards reads the same outcome from the cloud and leaves the job's own record as it is
    attached = jobs.attach(job_options(name, tmp_path), ui()[0])
    assert attached.record.exit_code == 0 and attached.state.phase == "succeeded"
    assert s3_json(record.artifact_uri + "run.json")["written_by"] == "job"

    # -- two execs: the first ships code A again (already in the lake), the second code B (one new bundle) --------
    ups = cli.commands().count("up")
    footprint = compute_footprint(backend) if backend in ("ecs", "ec2") else None
    code_prefix = record.artifact_uri + "code/"
    bundles = s3_keys(code_prefix)
    first = jobs.exec_job(job_options(name, tmp_path, overrides=Overrides(workdir=str(code_a))), ui()[0])
    assert first.exit_code == 0, first.reason
    assert first.stages["bundle"]["uploaded"] is False and s3_keys(code_prefix) == bundles
    second = jobs.exec_job(job_options(name, tmp_path, overrides=Overrides(workdir=str(code_b))), ui()[0])
    assert second.exit_code == 0, second.reason
    assert second.stages["bundle"]["uploaded"] is True
    assert len(s3_keys(code_prefix) - bundles) == 1  # exactly one new bundle: code B's
    assert second.code_uri.removeprefix(code_prefix) in s3_keys(code_prefix) - bundles

    # Nothing was deployed or created for them: no `pulumi up`, the compute as it was.
    assert cli.commands().count("up") == ups
    if footprint is not None:
        assert compute_footprint(backend) == footprint

    # Each job has its own prefixes (run.json, model) under the stack's, and its own id.
    assert first.job_id != second.job_id and first.job_id < second.job_id
    for job in (first, second):
        assert job.artifact_uri == f"{record.artifact_uri}jobs/{job.job_id}/"
        assert job.checkpoint_uri.endswith(f"/checkpoints/bob/{name}/jobs/{job.job_id}/".replace("bob", record.owner))
        assert s3_json(job.artifact_uri + "run.json")["status"] == "succeeded"
    # the model each code version made
    assert _model_text(first.model_uri) == "A" and _model_text(second.model_uri) == "B"

    # -- logs of both, from the cloud -----------------------------------------------------------------------------
    for job, version in ((first, "A"), (second, "B")):
        logs_ui, text = ui()
        got = jobs.attach(job_options(name, tmp_path, job_id=job.job_id), logs_ui, follow_to_end=False)
        assert got.state.phase == "succeeded", text.getvalue()
        assert f"stand-in training, code version {version}" in text.getvalue()
    # An id no exec wrote a run.json for is no job of this stack, on every backend.
    with pytest.raises(UserError) as missing:
        jobs.attach(job_options(name, tmp_path, job_id="20260101000000-0000"), ui()[0], follow_to_end=False)
    assert missing.value.exit_code == ExitCode.NOT_FOUND and "no job 20260101000000-0000" in missing.value.message
    # Without --job: the latest job.
    latest = jobs.attach(job_options(name, tmp_path), ui()[0], follow_to_end=False)
    assert latest.record.job_id == second.job_id

    # -- ls shows the latest job finished; reap --finished removes the stack once the grace has passed --------
    listed = ls()
    run = listed[name].run
    assert run.finished and run.status == "succeeded" and run.job_id == second.job_id and run.detached
    assert listed[name].to_json(NOW)["run"]["jobId"] == second.job_id
    now = dt.datetime.now(dt.timezone.utc)
    grace = dt.timedelta(minutes=15)
    assert fleet.reap_candidates(listed.values(), now, expired=False, prefix=None, grace=grace, finished=True) == []
    later = [
        c.stack
        for c in fleet.reap_candidates(
            listed.values(), now + 2 * grace, expired=False, prefix=None, grace=grace, finished=True
        )
    ]
    assert later == [name]
    outcomes = fleet.reap(
        [listed[name]],
        destroy_stack=lambda stack: (
            run_mod.down(stack, ui()[0], pulumi_root=str(FAKE_ROOT), backoff=0).exit_code == 0,
            "",
        ),
        dry_run=False,
    )
    assert [o.action for o in outcomes] == ["destroyed"] and cli.stacks() == []


NOW = dt.datetime.now(dt.timezone.utc)
ZERO = dt.timedelta(0)


def ls() -> dict[str, fleet.Cluster]:
    """`trainstack ls` as the CLI builds it: tags (moto), Pulumi state (the fake CLI), run.json (the lake)."""
    aws = fleet.AwsClients(
        boto3.client("resourcegroupstaggingapi"),
        boto3.client("ec2"),
        boto3.client("autoscaling"),
        boto3.client("sagemaker"),
        s3=boto3.client("s3"),
    )
    found = fleet.list_clusters(aws, NOW, root=ROOT, state=fleet.pulumi_state(ROOT, str(FAKE_ROOT)))
    return {c.stack: c for c in found}


def _model_text(model_uri: str) -> str:
    """model.txt as the job wrote it: under the model prefix, or inside SageMaker's model.tar.gz."""
    if model_uri.endswith(".tar.gz"):
        bucket, key = split_s3_uri(model_uri)
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as t:
            member = t.extractfile("./model.txt")
            assert member is not None
            return member.read().decode()
    bucket, key = split_s3_uri(model_uri + "model.txt")
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
