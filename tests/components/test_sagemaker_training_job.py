"""The sagemaker backend: one request builder, a spot job checkpointing into this run's prefix. The stack
holds the role, the schedule and the job's request (exported); no TrainingJob resource."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator
from moto import mock_aws
from moto.sagemaker.responses import SageMakerResponse

from tests.helpers import NOW, cluster_config, policy_of, statements
from trainstack.backends import ClusterOutputs
from trainstack.backends.sagemaker import SageMakerOutputs
from trainstack.model.config import parse_config
from trainstack.model.run_locations import run_locations
from trainstack.model.sagemaker_request import (
    clamp_to_expiry,
    create_training_job_request,
    job_name,
    request_problems,
    spec_from_config,
)
from trainstack.run import sagemaker_jobs as J

ROLE = "arn:aws:iam::123456789012:role/training-execution-role"


@pytest.fixture(scope="module")
def job_run(run_stack):
    return run_stack(cluster_config("sagemaker", sagemaker={"maxWaitHours": 10}), stack="dev-sagemaker")


def job_request(run):
    """The stack's own job, as it exports it for `trainstack run` (and `aws sagemaker create-training-job`)."""
    return run.outputs["trainingJobRequest"]


# --------------------------------------------------------------- the stack: role, schedule, request


def test_the_stack_holds_no_job_resource_only_its_request(job_run):
    assert job_run.of_type("aws:sagemaker/trainingJob:TrainingJob") == []
    request = job_request(job_run)
    assert request["TrainingJobName"] == job_run.outputs["trainingJobName"]
    assert request["RoleArn"] == job_run.one("aws:iam/role:Role", "execution").state["arn"]
    assert create_errors(request) == ""  # exactly what boto3 / the API take (botocore's CreateTrainingJob model)


def test_managed_spot_with_wait_at_least_runtime(job_run):
    job = job_request(job_run)
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 6 * 3600, "MaxWaitTimeInSeconds": 10 * 3600}


def test_checkpoints_go_to_this_owner_and_stacks_prefix(job_run, platform_outputs):
    art = platform_outputs["buckets"]["artifacts"]["name"]
    job = job_request(job_run)
    assert job["CheckpointConfig"] == {
        "S3Uri": f"s3://{art}/checkpoints/alice/dev-sagemaker/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{art}/artifacts/alice/dev-sagemaker/"


def test_instance_type_count_volume_and_kms(job_run, platform_outputs):
    res = job_request(job_run)["ResourceConfig"]
    assert res["InstanceType"] == "ml.p3.2xlarge" and res["InstanceCount"] == 1
    assert res["VolumeSizeInGB"] == 200 and res["VolumeKmsKeyId"] == platform_outputs["kmsKeyArn"]
    assert job_request(job_run)["OutputDataConfig"]["KmsKeyId"] == platform_outputs["kmsKeyArn"]


def test_dataset_channel(job_run, platform_outputs):
    raw = platform_outputs["buckets"]["raw"]["name"]
    (channel,) = job_request(job_run)["InputDataConfig"]
    assert channel["ChannelName"] == "training" and channel["InputMode"] == "FastFile"
    assert channel["DataSource"]["S3DataSource"] == {
        "S3DataType": "S3Prefix",
        "S3Uri": f"s3://{raw}/cifar10/v1/",
        "S3DataDistributionType": "FullyReplicated",
    }


def test_retries_capacity_errors_and_runs_the_command(job_run):
    job = job_request(job_run)
    assert job["RetryStrategy"] == {"MaximumRetryAttempts": 2}
    assert job["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python", "train.py"]
    assert job["EnableInterContainerTrafficEncryption"] is False  # single node


def test_job_name_is_unique_per_content_and_valid(job_run):
    name = job_request(job_run)["TrainingJobName"]
    assert name.startswith("alice-dev-sagemaker-") and len(name) <= 63
    assert job_run.outputs["trainingJobName"] == name


def test_the_job_carries_the_stacks_tags_for_ls(job_run):
    tags = {t["Key"]: t["Value"] for t in job_request(job_run)["Tags"]}
    assert tags["trainstack:stack"] == "dev-sagemaker" and tags["trainstack:kind"] == "cluster"


def test_execution_role_is_scoped_to_the_data_lake(job_run, platform_outputs):
    role = job_run.one("aws:iam/role:Role", "execution")
    (trust,) = statements(json.loads(role.inputs["assumeRolePolicy"]))
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    doc = policy_of(job_run.one("aws:iam/rolePolicy:RolePolicy", "execution"))
    for s in statements(doc):
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        assert not any(a in ("s3:*", "*") for a in actions)
        if "*" in resources:
            assert not any(a.startswith("s3:") for a in actions), s
    sids = {s["Sid"]: s for s in statements(doc)}
    art_arn = platform_outputs["buckets"]["artifacts"]["arn"]
    assert sorted(sids["ReadWriteRunArtifacts"]["Resource"]) == sorted(
        [f"{art_arn}/artifacts/alice/dev-sagemaker/*", f"{art_arn}/checkpoints/alice/dev-sagemaker/*"]
    )
    assert sids["PullTrainingImage"]["Resource"] == "arn:aws:ecr:us-east-1:763104351884:repository/pytorch-training"
    assert "TrainingJobNetworkInterfaces" not in sids  # no VPC config, no ENI rights


def test_multi_node_vpc_job_encrypts_inter_node_traffic(run_stack, platform_outputs):
    run = run_stack(
        cluster_config(
            "sagemaker",
            gpu={"instanceTypes": ["ml.g5.12xlarge"], "family": "g5"},
            job={"nodes": 2, "gpusPerNode": 4},
            sagemaker={"vpc": True, "distribution": "ShardedByS3Key"},
        )
    )
    job = job_request(run)
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert job["VpcConfig"] == {
        "Subnets": platform_outputs["subnetIds"],
        "SecurityGroupIds": [platform_outputs["securityGroupId"]],
    }
    # g5 has local NVMe storage, encrypted in hardware: SageMaker refuses a volume KMS key there.
    assert "VolumeKmsKeyId" not in job["ResourceConfig"]
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    sids = {s["Sid"] for s in statements(policy_of(run.one("aws:iam/rolePolicy:RolePolicy", "execution")))}
    assert "TrainingJobNetworkInterfaces" in sids
    # The example platform has egress: public, where a VPC job could not pull its image.
    assert any("egress public" in w and "cannot pull its image" in w for w in run.warnings)


def test_on_demand_job_has_no_max_wait(run_stack):
    job = job_request(run_stack(cluster_config("sagemaker", sagemaker={"spot": False})))
    assert job["EnableManagedSpotTraining"] is False and "MaxWaitTimeInSeconds" not in job["StoppingCondition"]


# --------------------------------------------------------------- the shared builder


def config(**overrides):
    return parse_config(cluster_config("sagemaker", **overrides), stack="dev-sagemaker", now=NOW)


def request_for(cfg, platform_outputs, **kw):
    loc = run_locations(platform_outputs["buckets"], cfg.cluster.job.dataset, "alice", "dev-sagemaker")
    spec = spec_from_config(
        cfg.cluster, locations=loc, kms_key_arn=platform_outputs["kmsKeyArn"], tags={"trainstack:owner": "alice"}
    )
    return create_training_job_request(spec, job_name="alice-dev-sagemaker-1", role_arn=ROLE, **kw)


def create_errors(request) -> str:
    shape = get_session().get_service_model("sagemaker").operation_model("CreateTrainingJob").input_shape
    return ParamValidator().validate(request, shape).generate_report()


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"sagemaker": {"spot": False, "inputMode": "File", "hyperparameters": {"epochs": 3}}},
        {"job": {"command": None, "nodes": 2}, "sagemaker": {"distribution": "ShardedByS3Key"}},
    ],
)
def test_request_passes_botocore_validation(platform_outputs, overrides):
    assert create_errors(request_for(config(**overrides), platform_outputs)) == ""


def test_the_stacks_request_and_the_builders_agree(platform_outputs, job_run):
    """The exported request is the builder's (the path `trainstack sagemaker start` and `exec` take): one."""
    request = request_for(config(sagemaker={"maxWaitHours": 10}), platform_outputs)
    job = job_request(job_run)
    for key in ("StoppingCondition", "CheckpointConfig", "ResourceConfig", "Environment", "AlgorithmSpecification"):
        assert request[key] == job[key], key


def test_the_request_reads_back_from_its_json_text_unchanged(platform_outputs):
    """The component joins the request body to the job's name and role as JSON text: it must read back as the
    same dict, value for value and type for type (a tuple would come back a list, a non-str key a str)."""

    def typed(value):
        if isinstance(value, dict):
            return {(type(k), k): typed(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return (type(value), [typed(v) for v in value])
        return (type(value), value)

    for cfg in (
        config(sagemaker={"maxWaitHours": 10}),
        config(sagemaker={"spot": False, "vpc": True}, job={"nodes": 2}),
    ):
        request = request_for(cfg, platform_outputs)
        assert typed(json.loads(json.dumps(request))) == typed(request)


def test_a_spot_request_without_checkpoints_is_unfit_and_clamping_keeps_it_valid(platform_outputs):
    request = request_for(config(), platform_outputs)
    assert request_problems(request) == []
    no_ckpt = {k: v for k, v in request.items() if k != "CheckpointConfig"}
    (problem,) = request_problems(no_ckpt)
    assert "writes no checkpoints" in problem and "Fix:" in problem
    short = clamp_to_expiry(request, 1800)
    assert short["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 1800}
    assert create_errors(short) == "" and request_problems(short) == []
    with pytest.raises(ValueError, match="expired"):
        clamp_to_expiry(request, 0)


def test_checkpoint_subdir_keeps_repeated_jobs_apart(platform_outputs):
    request = request_for(config(), platform_outputs, checkpoint_subdir="alice-dev-sagemaker-2")
    assert request["CheckpointConfig"]["S3Uri"].endswith("/checkpoints/alice/dev-sagemaker/alice-dev-sagemaker-2/")
    assert request["Environment"]["TRAINSTACK_CHECKPOINT_URI"] == request["CheckpointConfig"]["S3Uri"]


def test_job_names_are_valid_sagemaker_names():
    import re

    name = job_name("a" * 20, "x" * 80, "20261122-143000")
    assert len(name) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)
    assert name.endswith("-20261122-143000")


# --------------------------------------------------------------- the boto3 path, against moto


@pytest.fixture
def sagemaker_client(aws_credentials, monkeypatch):
    """moto's SageMaker, extended with StopTrainingJob as AWS documents it (moto lacks it)."""

    def stop_training_job(self):
        name = self._get_param("TrainingJobName")
        job = self.sagemaker_backend.training_jobs[name]
        if job.training_job_status != "InProgress":
            from moto.sagemaker.exceptions import ValidationError

            raise ValidationError(message=f"The job {name} is not in progress")
        job.training_job_status = "Stopping"
        return "{}"

    monkeypatch.setattr(SageMakerResponse, "stop_training_job", stop_training_job, raising=False)
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


CODE_URI = "s3://art/artifacts/carol/dev-sagemaker/code/0123.tar.gz"


def deployed_outputs(platform_outputs):
    """A deployed sagemaker stack's outputs, written through the typed contract as its program writes them."""
    art = platform_outputs["buckets"]["artifacts"]["name"]
    prefix = f"s3://{art}/artifacts/alice/dev-sagemaker/"
    stack = ClusterOutputs(
        owner="alice",
        backend="sagemaker",
        region="us-east-1",
        expires_at="2026-11-22T23:00:00Z",
        platform_stack="organization/trainstack/platform",
        dataset_uri=f"s3://{platform_outputs['buckets']['raw']['name']}/cifar10/v1/",
        artifact_uri=prefix,
        model_uri=prefix + "model/",
        checkpoint_uri=f"s3://{art}/checkpoints/alice/dev-sagemaker/",
        teardown_schedules={"stop-training-job": "teardown-stop-training-job-1234567"},
        teardown_role_arn="arn:aws:iam::123456789012:role/teardown-role",
        code_uri=CODE_URI,
    )
    own = SageMakerOutputs(
        training_job_name="alice-dev-sagemaker-0123abcd",
        training_job_arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/alice-dev-sagemaker-0123abcd",
        role_arn=ROLE,
        kms_key_arn=platform_outputs["kmsKeyArn"],
        subnet_ids=platform_outputs["subnetIds"],
        security_group_id=platform_outputs["securityGroupId"],
        buckets=platform_outputs["buckets"],
        model_artifact_uri=prefix + "alice-dev-sagemaker-0123abcd/output/model.tar.gz",
        training_job_request={"TrainingJobName": "alice-dev-sagemaker-0123abcd", "RoleArn": ROLE},
    )
    return {**stack.as_outputs(), **own.as_outputs()}


def test_create_describe_and_stop_against_moto(sagemaker_client, platform_outputs):
    cfg = config()
    now = dt.datetime(2026, 11, 22, 15, 0, tzinfo=dt.timezone.utc)
    request = J.request_for_stack(cfg, deployed_outputs(platform_outputs), now=now)
    assert request["TrainingJobName"] == "alice-dev-sagemaker-20261122-150000"
    arn = J.start(sagemaker_client, request)
    assert arn.endswith(":training-job/alice-dev-sagemaker-20261122-150000")

    status = J.describe(sagemaker_client, request["TrainingJobName"])
    assert status.status == "Completed" and status.spot is True
    # Finished jobs are left alone: no StopTrainingJob call that AWS would reject.
    assert J.stop(sagemaker_client, request["TrainingJobName"]).status == "Completed"

    from moto.sagemaker.models import sagemaker_backends

    job = sagemaker_backends["123456789012"]["us-east-1"].training_jobs[request["TrainingJobName"]]
    job.training_job_status = "InProgress"
    assert J.stop(sagemaker_client, request["TrainingJobName"]).status == "Stopping"


def test_jobs_started_later_end_by_the_stacks_expiry(platform_outputs):
    now = dt.datetime(2026, 11, 22, 21, 0, tzinfo=dt.timezone.utc)  # 2 h before expiry, 6 h runtime asked
    request = J.request_for_stack(config(), deployed_outputs(platform_outputs), now=now)
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 7200}
    assert create_errors(request) == ""


def test_an_exec_job_records_its_result_and_a_started_one_does_not_touch_the_stacks(platform_outputs):
    """An exec job writes its result into its own run.json through the bundle's entry file (the stack's own job
    too: tests/run/test_jobs_fake_cli.py); a `sagemaker start` job shares the stack's prefix, so it records
    nothing there."""
    from trainstack.model.code_delivery import PROGRAM_ENV, SAGEMAKER_ENTRY_FILE
    from trainstack.model.run_locations import RUN_RECORD_URI_ENV

    now = dt.datetime(2026, 11, 22, 21, 0, tzinfo=dt.timezone.utc)
    cfg = config(job={"workdir": "examples/cifar10"})
    outputs = {**deployed_outputs(platform_outputs), "codeUri": CODE_URI}
    job = J.request_for_stack(cfg, outputs, now=now, job_id="20261122210000-ab12")
    assert job["Environment"][RUN_RECORD_URI_ENV].endswith("/jobs/20261122210000-ab12/run.json")
    assert json.loads(job["HyperParameters"]["sagemaker_program"]) == SAGEMAKER_ENTRY_FILE
    started = J.request_for_stack(cfg, outputs, now=now)
    assert RUN_RECORD_URI_ENV not in started["Environment"] and started["Environment"][PROGRAM_ENV] == "train.py"
    assert create_errors(job) == "" and create_errors(started) == ""


def test_expired_stack_and_wrong_backend_are_refused(platform_outputs):
    late = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.timezone.utc)
    with pytest.raises(J.JobError, match="expired at 2026-11-22T23:00:00Z"):
        J.request_for_stack(config(), deployed_outputs(platform_outputs), now=late)
    ecs = parse_config(cluster_config("ecs"), stack="dev-ecs", now=NOW)
    with pytest.raises(J.JobError, match="not a sagemaker cluster stack"):
        J.request_for_stack(ecs, deployed_outputs(platform_outputs))
    with pytest.raises(J.JobError, match="no output .*`roleArn` .*the sagemaker backend.*pulumi up"):
        J.request_for_stack(config(), {"backend": "sagemaker", "buckets": {}}, now=NOW)


def test_cli_dry_run_from_an_outputs_file(platform_outputs, tmp_path):
    from typer.testing import CliRunner

    from trainstack.cli.main import app

    outputs = deployed_outputs(platform_outputs)
    outputs["expiresAt"] = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    result = CliRunner().invoke(app, ["sagemaker", "start", "dev-sagemaker", "--outputs", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    request = json.loads(result.output)
    assert request["TrainingJobName"].startswith("carol-dev-sagemaker-") and request["RoleArn"] == ROLE
    assert json.loads(request["HyperParameters"]["sagemaker_submit_directory"]) == CODE_URI  # the stack's workdir
    assert create_errors(request) == ""


# --------------------------------------------------------------- lifetime: the schedule owns the job by name


def depends_on(run, record) -> set[str]:
    """Every URN `record` waits for, directly or through other resources (children wait for their parents' deps)."""
    by_urn = {r.urn: r for r in run.resources}
    seen: set[str] = set()
    todo = list(record.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        todo.extend(by_urn[urn].dependencies if urn in by_urn else [])
    return seen


def test_the_stop_schedule_names_the_job_the_run_will_create(job_run):
    """The job is created after `up` by its deterministic name; the schedule's policy names that job's ARN."""
    schedule = job_run.one("aws:scheduler/schedule:Schedule", "stop-training-job")
    assert json.loads(schedule.inputs["target"]["input"]) == {"TrainingJobName": job_run.outputs["trainingJobName"]}
    doc = policy_of(job_run.one("aws:iam/rolePolicy:RolePolicy", "teardown"))
    name = job_request(job_run)["TrainingJobName"]
    assert statements(doc)[0]["Resource"] == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name.lower()}"
    assert job_run.outputs["trainingJobArn"] == statements(doc)[0]["Resource"]


def test_model_artifacts_use_the_data_lake_key_which_the_role_may_encrypt_with(job_run, platform_outputs):
    key = platform_outputs["kmsKeyArn"]
    assert job_request(job_run)["OutputDataConfig"]["KmsKeyId"] == key
    doc = policy_of(job_run.one("aws:iam/rolePolicy:RolePolicy", "execution"))
    encrypt = [
        s for s in statements(doc) if "kms:Encrypt" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert encrypt and all(s["Resource"] == key for s in encrypt)


def test_status_prints_failure_reasons_verbatim():
    from io import StringIO

    from rich.console import Console

    from trainstack.cli.main import _print_status

    out = StringIO()
    status = J.JobStatus(
        name="alice-dev-1",
        status="Failed",
        secondary_status="Failed",
        failure_reason="AlgorithmError: [Errno 2] No such file: 'train.py' [/bold]",
        model_artifacts=None,
        training_seconds=None,
        billable_seconds=None,
        spot=False,
    )
    _print_status(Console(file=out, width=300), status)
    assert "AlgorithmError: [Errno 2] No such file: 'train.py' [/bold]" in out.getvalue()
