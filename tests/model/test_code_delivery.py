"""Code delivery: job.workdir -> a deterministic tar.gz in S3 -> every backend runs job.command in it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import ROOT, cluster_config, policy_of, statements
from trainstack.model import code_delivery as cd
from trainstack.model.config import ConfigError, parse_config


def make_workdir(root, files=None):
    files = files or {"train.py": "print('training')\n", "pkg/util.py": "X = 1\n"}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# --- the bundle --------------------------------------------------------------------------------


def test_bundle_is_deterministic_and_leaves_caches_out(tmp_path):
    src = make_workdir(
        tmp_path / "src",
        {
            "train.py": "x",
            "pkg/m.py": "y",
            "pkg/__pycache__/m.cpython-311.pyc": "c",
            "old.pyc": "c",
            ".git/HEAD": "ref",
            ".venv/bin/python": "p",
        },
    )
    first = cd.build_bundle(src, tmp_path / "out1")
    os.utime(src / "train.py", (1, 1))  # a touched file, another build folder: same bytes, same name
    second = cd.build_bundle(src, tmp_path / "out2")
    assert first.sha256 == second.sha256 and first.path.read_bytes() == second.path.read_bytes()
    assert first.path.name == f"{first.sha256}.tar.gz" and first.files == ("pkg/m.py", "train.py")
    data = first.path.read_bytes()
    assert data[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
        members = t.getmembers()
        assert [m.name for m in members] == ["pkg/m.py", "train.py"]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
        assert t.extractfile("train.py").read() == b"x"
    (src / "train.py").write_text("changed")
    assert cd.build_bundle(src, tmp_path / "out1").sha256 != first.sha256  # new code, new key


def test_empty_or_oversized_workdir_is_refused_with_a_fix(tmp_path):
    empty = tmp_path / "empty"
    (empty / "__pycache__").mkdir(parents=True)
    with pytest.raises(cd.BundleError, match=r"trainstack:job.workdir = .*no files to ship.*Fix"):
        cd.build_bundle(empty, tmp_path / "out")
    big = make_workdir(tmp_path / "big", {"train.py": "x", "weights.bin": os.urandom(4096).hex()})
    with pytest.raises(cd.BundleError, match=r"MiB compressed, over the .* limit\. Fix: keep only code"):
        cd.build_bundle(big, tmp_path / "out", max_bytes=1024)


def test_code_key_lives_under_the_runs_artifact_prefix():
    assert cd.code_key("artifacts/alice/dev/", "ab" * 32) == f"artifacts/alice/dev/code/{'ab' * 32}.tar.gz"


def test_container_entry_fetches_unpacks_and_execs_for_real(tmp_path, moto_server):
    """The exact script of container_entry, run by a real python against a moto server's S3."""
    import boto3

    bundle = cd.build_bundle(make_workdir(tmp_path / "src"), tmp_path / "build")
    show = "import os; print('cwd', os.getcwd()); print(open('train.py').read().strip(), open('pkg/util.py').read().strip())"
    argv = cd.container_entry([sys.executable, "-c", show])
    assert argv[:2] == ["python3", "-c"] and argv[3:] == [sys.executable, "-c", show]
    bucket = f"art-{tmp_path.name.lower().replace('_', '-')}"[:60]
    s3 = boto3.client(
        "s3", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(bundle.path), bucket, f"artifacts/alice/dev/code/{bundle.file_name}")
    code_dir = tmp_path / "opt-ml-code"
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
        cd.CODE_DIR_ENV: str(code_dir),
        cd.CODE_URI_ENV: f"s3://{bucket}/artifacts/alice/dev/code/{bundle.file_name}",
    }
    out = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"cwd {code_dir}" in out.stdout and "print('training') X = 1" in out.stdout
    assert sorted(p.relative_to(code_dir).as_posix() for p in code_dir.rglob("*.py")) == ["pkg/util.py", "train.py"]


# --- SageMaker's toolkit ------------------------------------------------------------------------


TRAIN_ECHO = """\
import os, sys
print("argv", sys.argv[1:], "rank", os.environ.get("RANK"), flush=True)
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
"""


@pytest.mark.parametrize(
    "rank, exit_with, recorded",
    [(None, "0", "succeeded"), ("0", "3", "failed"), ("1", "0", None)],
    ids=["one-host", "rank0-fails", "other-rank"],
)
def test_sagemaker_entry_runs_the_script_and_records_the_result_for_real(
    rank, exit_with, recorded, tmp_path, moto_server
):
    """The bundle's entry file, run as the toolkit runs `sagemaker_program` (`python <file> --name value`, cwd the
    unpacked bundle) by a real python against a moto server: the script gets the arguments, the exit code passes
    through, and rank 0 (or a job without torchrun) merges the result into run.json; other ranks write nothing."""
    import boto3

    bundle = cd.build_bundle(
        make_workdir(tmp_path / "src", {"train.py": TRAIN_ECHO}), tmp_path / "b", backend="sagemaker"
    )
    assert bundle.files == (cd.SAGEMAKER_ENTRY_FILE, "train.py")
    code = tmp_path / "opt-ml-code"
    with tarfile.open(bundle.path, mode="r:gz") as t:
        t.extractall(code, filter="data")
    s3 = boto3.client(
        "s3", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    bucket = f"art-{tmp_path.name.lower().replace('_', '-')}"[:60]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="artifacts/a/s/run.json", Body=b'{"status": "detached", "stack": "s"}')
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
        cd.PROGRAM_ENV: "train.py",
        "TRAINSTACK_RUN_RECORD_URI": f"s3://{bucket}/artifacts/a/s/run.json",
        "TRAINSTACK_ARTIFACT_URI": f"s3://{bucket}/artifacts/a/s/",
        "TRAINING_JOB_NAME": "a-s-1234abcd",
        "EXIT_WITH": exit_with,
        **({"RANK": rank} if rank is not None else {}),
    }
    out = subprocess.run(
        [sys.executable, cd.SAGEMAKER_ENTRY_FILE, "--epochs", "3"], cwd=code, env=env, capture_output=True, text=True
    )
    assert out.returncode == int(exit_with), out.stderr
    assert f"argv ['--epochs', '3'] rank {rank}" in out.stdout
    doc = json.loads(s3.get_object(Bucket=bucket, Key="artifacts/a/s/run.json")["Body"].read())
    if recorded is None:
        assert doc == {"status": "detached", "stack": "s"}
        return
    assert doc["stack"] == "s" and doc["status"] == recorded and doc["written_by"] == "job"
    assert doc["job_exit_code"] == int(exit_with) and doc["finished_at"]
    if recorded == "succeeded":
        assert doc["model_uri"] == f"s3://{bucket}/artifacts/a/s/a-s-1234abcd/output/model.tar.gz"
    else:
        assert "model_uri" not in doc and doc["reason"] == "the command exited with code 3"


def test_a_workdir_file_named_like_the_sagemaker_entry_is_refused(tmp_path):
    src = make_workdir(tmp_path / "src", {"train.py": "x", cd.SAGEMAKER_ENTRY_FILE: "y"})
    assert cd.build_bundle(src, tmp_path / "b").files == (cd.SAGEMAKER_ENTRY_FILE, "train.py")  # other backends
    with pytest.raises(cd.BundleError, match=r"_trainstack_entry.py is the file trainstack adds.*Fix: rename"):
        cd.build_bundle(src, tmp_path / "b", backend="sagemaker")


def toolkit_argv(hyperparameters):
    """What sagemaker-training-toolkit does with hyperparameters: json.loads each value
    (environment.read_hyperparameters), drop sagemaker_*, then --name value sorted by name
    (mapping.to_cmd_args)."""

    def load(v):
        try:
            return json.loads(v)
        except ValueError:
            return v

    user = {k: load(v) for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
    return [x for k in sorted(user) for x in (f"--{k}", str(user[k]))]


def test_sagemaker_runs_the_script_with_the_commands_arguments():
    hyper = cd.sagemaker_hyperparameters(
        ["python", "train.py", "--epochs", "10", "--run-name=07"],
        "s3://art/artifacts/a/s/code/x.tar.gz",
        distributed=True,
    )
    assert json.loads(hyper["sagemaker_submit_directory"]) == "s3://art/artifacts/a/s/code/x.tar.gz"
    # the toolkit runs trainstack's entry file, which runs train.py with the same arguments
    assert json.loads(hyper["sagemaker_program"]) == cd.SAGEMAKER_ENTRY_FILE
    assert cd.sagemaker_environment(["python", "train.py", "--epochs", "10"]) == {cd.PROGRAM_ENV: "train.py"}
    assert hyper["sagemaker_torch_distributed_enabled"] == "true"
    # JSON-encoded like the SageMaker SDK does, so "07" stays "07" and not the number 7
    assert toolkit_argv(hyper) == ["--epochs", "10", "--run-name", "07"]


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9-]{0,11}", fullmatch=True),
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1).filter(lambda v: not v.startswith("--")),
        max_size=6,
    )
)
def test_any_name_value_arguments_reach_the_script_unchanged(args):
    command = ["python", "train.py", *[x for k, v in args.items() for x in (f"--{k}", v)]]
    hyper = cd.sagemaker_hyperparameters(command, "s3://b/k.tar.gz", distributed=False)
    assert toolkit_argv(hyper) == [x for k in sorted(args) for x in (f"--{k}", args[k])]


@pytest.mark.parametrize(
    "command, why",
    [
        (["python", "-m", "pkg.train"], "not a .py script"),
        (["bash", "run.sh"], "is not `python script.py"),
        (["python", "train.py", "data/"], "is not a --name"),
        (["python", "train.py", "--fp16"], "has no value"),
        (["python", "train.py", "--a", "1", "--a", "2"], "given twice"),
    ],
)
def test_commands_the_toolkit_cannot_run(command, why):
    with pytest.raises(ValueError, match=why):
        cd.sagemaker_entry(command)


# --- config ------------------------------------------------------------------------------------


def parse(backend="ecs", root=None, **job):
    return parse_config(cluster_config(backend, job=job), stack="dev", root=str(root) if root else None)


def test_workdir_is_resolved_against_the_project_root(tmp_path):
    make_workdir(tmp_path / "code")
    cfg = parse(root=tmp_path, workdir="code")
    assert cfg.cluster.job.workdir == str(tmp_path / "code")
    assert parse(workdir=str(tmp_path / "code")).cluster.job.workdir == str(tmp_path / "code")  # absolute


@pytest.mark.parametrize(
    "setup, value, message",
    [
        (lambda t: None, "nope", "does not exist"),
        (lambda t: (t / "f.py").write_text("x"), "f.py", "is a file, not a folder"),
        (lambda t: (t / "e" / "__pycache__").mkdir(parents=True), "e", "is an empty folder"),
    ],
)
def test_bad_workdir_names_key_value_and_fix(tmp_path, setup, value, message):
    setup(tmp_path)
    with pytest.raises(ConfigError) as err:
        parse(root=tmp_path, workdir=value)
    assert err.value.keys == ["trainstack:job.workdir"]
    assert f'trainstack:job.workdir = "{value}": {message}' in str(err.value) and "Fix:" in str(err.value)


def test_script_must_be_in_the_workdir(tmp_path):
    make_workdir(tmp_path / "code")
    with pytest.raises(ConfigError, match=r"job.command = .*runs `trian.py`, which is not in job.workdir"):
        parse(root=tmp_path, workdir="code", command=["python", "trian.py"])


def test_sagemaker_refuses_a_command_its_toolkit_cannot_run(tmp_path):
    make_workdir(tmp_path / "code")
    with pytest.raises(ConfigError, match=r"cannot be run by SageMaker's training toolkit.*has no value"):
        parse("sagemaker", root=tmp_path, workdir="code", command=["python", "train.py", "--fp16"])


def test_ecs_refuses_the_sagemaker_variant_of_a_dlc_with_a_workdir(tmp_path):
    make_workdir(tmp_path / "code")
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker"
    with pytest.raises(ConfigError) as err:
        parse(root=tmp_path, workdir="code", image=image)
    assert err.value.keys == ["trainstack:job.image"]
    assert "pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-ec2" in str(err.value)


def test_stock_image_with_a_relative_script_and_no_workdir_warns(tmp_path):
    warnings = parse().warnings  # cluster_config: a pytorch-training DLC running `python train.py`
    assert any("stock Deep Learning Container" in w and "job.workdir" in w for w in warnings)
    make_workdir(tmp_path / "code")
    assert not any("stock Deep Learning Container" in w for w in parse(root=tmp_path, workdir="code").warnings)
    custom = parse(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/my-trainer:1")
    assert not any("stock Deep Learning Container" in w for w in custom.warnings)


# --- every backend -----------------------------------------------------------------------------

WORKDIR = str(ROOT / "examples" / "cifar10")


# The example stacks all ship examples/cifar10 (stacks/Pulumi.dev-*.yaml); their plans are evaluated
# once per session.
@pytest.fixture(scope="module")
def ecs(example_plans):
    return example_plans["dev-ecs"].run


def test_bundle_object_under_the_artifact_prefix(ecs, platform_outputs):
    obj = ecs.one("aws:s3/bucketObject:BucketObject")
    assert obj.inputs["bucket"] == platform_outputs["buckets"]["artifacts"]["name"]
    key = obj.inputs["key"]
    assert key.startswith("artifacts/alice/dev-ecs/code/") and key.endswith(".tar.gz")
    sha = key.rsplit("/", 1)[1].removesuffix(".tar.gz")
    assert sha == cd.build_bundle(WORKDIR, ROOT / ".trainstack" / "build").sha256
    assert ecs.outputs["codeUri"] == f"s3://{obj.inputs['bucket']}/{key}"
    assert not ecs.one("aws:s3/bucketObject:BucketObject").protect  # removed with the cluster stack


def test_ecs_container_fetches_the_code_then_runs_the_command_under_its_timeout(ecs):
    (container,) = json.loads(ecs.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])
    cmd = container["command"]
    assert cmd[0] == "timeout" and cmd[4:7] == ["python3", "-c", cd.ENTRY_SCRIPT]
    assert cmd[7:] == ["python", "train.py", "--epochs", "10"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env[cd.CODE_URI_ENV] == ecs.outputs["codeUri"] and env["AWS_DEFAULT_REGION"] == "us-east-1"


def test_training_roles_can_read_the_code(ecs):
    doc = policy_of(ecs.one("aws:iam/rolePolicy:RolePolicy", "task-data"))
    key = ecs.one("aws:s3/bucketObject:BucketObject").inputs["key"]
    bucket_arn = f"arn:aws:s3:::{ecs.one('aws:s3/bucketObject:BucketObject').inputs['bucket']}"
    import fnmatch

    assert any(
        "s3:GetObject" in s["Action"] and any(fnmatch.fnmatch(f"{bucket_arn}/{key}", r) for r in s["Resource"])
        for s in statements(doc)
        if s["Effect"] == "Allow" and isinstance(s["Resource"], list)
    )


def test_ec2_nodes_get_the_code_uri(example_plans):
    import base64
    import re

    run = example_plans["dev-ec2"].run
    script = base64.b64decode(run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["userData"]).decode()
    settings = json.loads(re.search(r"<<'TRAINSTACK_JSON'\n(.*?)\nTRAINSTACK_JSON", script, re.S).group(1))
    assert settings["code_uri"] == run.outputs["codeUri"]
    assert "/artifacts/bob/dev-ec2/code/" in settings["code_uri"]


def test_sagemaker_toolkit_gets_the_submit_directory_and_program(example_plans):
    run = example_plans["dev-sagemaker"].run
    job = run.outputs["trainingJobRequest"]  # what `trainstack run` sends to CreateTrainingJob
    hyper = job["HyperParameters"]
    assert json.loads(hyper["sagemaker_submit_directory"]) == run.outputs["codeUri"]
    # the toolkit runs trainstack's entry file, which runs train.py with the same arguments
    assert json.loads(hyper["sagemaker_program"]) == cd.SAGEMAKER_ENTRY_FILE
    assert cd.sagemaker_environment(["python", "train.py", "--epochs", "10"]) == {cd.PROGRAM_ENV: "train.py"}
    assert "sagemaker_torch_distributed_enabled" not in hyper  # one instance, one GPU: plain python
    # the stack's command arguments and its sagemaker.hyperparameters, as the toolkit passes them
    assert toolkit_argv(hyper) == ["--epochs", "10", "--learning-rate", "0.001"]
    assert "ContainerEntrypoint" not in job["AlgorithmSpecification"]  # the toolkit is the entrypoint
