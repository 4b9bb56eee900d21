"""The shipped example (examples/cifar10): everything of it that runs without torch."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.helpers import ROOT

EXAMPLE = ROOT / "examples" / "cifar10"
sys.path.insert(0, str(EXAMPLE))
import trainlib  # noqa: E402

BUCKET = "artifacts-bucket"
CKPT = f"s3://{BUCKET}/checkpoints/alice/dev-ec2/"


@pytest.fixture
def s3(aws_credentials):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def keys(s3, prefix=""):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def test_arguments_and_their_limits():
    a = trainlib.parse_args(["--epochs", "10", "--checkpoint-every", "50"])
    assert (a.epochs, a.checkpoint_every, a.synthetic, a.fresh) == (10, 50, False, False)
    assert trainlib.parse_args(["--synthetic"]).synthetic
    for bad in (["--epochs", "0"], ["--checkpoint-every", "-1"], ["--data", "synthetic"]):
        with pytest.raises(SystemExit):
            trainlib.parse_args(bad)


def test_every_stack_command_parses():
    """The arguments each example stack passes reach argparse intact."""
    import yaml

    for path in sorted((ROOT / "stacks").glob("Pulumi.dev-*.yaml")):
        config = yaml.safe_load(path.read_text())["config"]
        job = config["trainstack:job"]
        assert job["workdir"] == "examples/cifar10", path.name
        assert job["command"][:2] == ["python", "train.py"], path.name
        # SageMaker's toolkit adds sagemaker.hyperparameters as --name value
        extra = [
            x
            for k, v in config.get("trainstack:sagemaker", {}).get("hyperparameters", {}).items()
            for x in (f"--{k}", str(v))
        ]
        trainlib.parse_args([str(a) for a in job["command"][2:]] + extra)


def test_uris():
    assert trainlib.split_s3_uri("s3://b/a/b/") == ("b", "a/b/")
    assert trainlib.join_uri("s3://b/p", "x.pt") == "s3://b/p/x.pt" == trainlib.join_uri("s3://b/p/", "x.pt")
    with pytest.raises(ValueError):
        trainlib.split_s3_uri("/local/path")


def test_rank_from_torchrun_environment():
    assert trainlib.dist_from_env({}) == trainlib.Dist(0, 1, 0)
    me = trainlib.dist_from_env({"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
    assert (me.rank, me.world_size, me.local_rank, me.is_leader) == (5, 8, 1, False)


def test_where_each_backend_writes():
    base = {
        "TRAINSTACK_DATASET_URI": "s3://raw/cifar10/",
        "TRAINSTACK_CHECKPOINT_URI": CKPT,
        "TRAINSTACK_MODEL_URI": "s3://art/artifacts/a/s/model/",
        "SM_MODEL_DIR": "/opt/ml/model",
    }
    ecs = trainlib.places_from_env(base)
    assert (ecs.checkpoint_uri, ecs.model_uri, ecs.model_dir) == (
        CKPT,
        "s3://art/artifacts/a/s/model/",
        "/opt/ml/model",
    )
    # ec2: the bootstrap sets no model URI and uploads /opt/ml/model itself, after a successful run only
    ec2 = trainlib.places_from_env(
        {k: v for k, v in base.items() if k != "TRAINSTACK_MODEL_URI"} | {"TRAINSTACK_NODE_RANK": "1"}
    )
    assert (ec2.checkpoint_uri, ec2.model_uri, ec2.model_dir) == (CKPT, None, "/opt/ml/model")
    sm = trainlib.places_from_env(
        base
        | {
            "TRAINING_JOB_NAME": "j",
            "TRAINSTACK_CHECKPOINT_DIR": "/opt/ml/checkpoints",
            "SM_CHANNEL_TRAINING": "/opt/ml/input/data/training",
        }
    )
    assert (sm.checkpoint_uri, sm.checkpoint_dir, sm.model_uri) == (None, "/opt/ml/checkpoints", None)
    assert sm.dataset_dir == "/opt/ml/input/data/training"


def test_checkpoint_names_sort_by_step():
    names = [trainlib.checkpoint_name(s) for s in (900, 1000, 50)] + [
        "ckpt-12.pt",
        "notes.txt",
        "ckpt-000000100.pt.tmp",
    ]
    assert trainlib.checkpoint_name(1000) == "ckpt-000001000.pt"
    assert trainlib.newest_checkpoint(names) == "ckpt-000001000.pt"  # not the string-largest, not a stray file
    assert trainlib.newest_checkpoint(["notes.txt"]) is None
    assert trainlib.stale_checkpoints(names, keep=2) == ["ckpt-000000050.pt"]


def test_checkpoints_to_s3_are_pruned_and_the_newest_is_resumed(s3, tmp_path):
    places = trainlib.Places(None, None, CKPT, None, None, None)
    assert trainlib.resume_from(places, fresh=False, s3=s3) is None  # first start: from scratch
    for step in (100, 200, 300, 400):
        f = tmp_path / "ckpt.pt"
        f.write_bytes(f"state at {step}".encode())
        assert trainlib.save_checkpoint(str(f), step, places, keep=2, s3=s3) == f"{CKPT}ckpt-{step:09d}.pt"
    assert keys(s3) == ["checkpoints/alice/dev-ec2/ckpt-000000300.pt", "checkpoints/alice/dev-ec2/ckpt-000000400.pt"]
    latest = trainlib.resume_from(places, fresh=False, s3=s3)
    assert latest == f"{CKPT}ckpt-000000400.pt"
    local = trainlib.fetch(latest, str(tmp_path / "resume.pt"), s3=s3)
    assert Path(local).read_bytes() == b"state at 400"
    assert trainlib.resume_from(places, fresh=True, s3=s3) is None


def test_checkpoints_into_a_local_dir_for_sagemaker(tmp_path):
    d = tmp_path / "ckpts"
    places = trainlib.Places(None, None, None, str(d), None, None)
    for step in (10, 20):
        f = tmp_path / "ckpt.pt"
        f.write_text(str(step))
        trainlib.save_checkpoint(str(f), step, places, keep=1)
    assert sorted(p.name for p in d.iterdir()) == ["ckpt-000000020.pt"]
    assert trainlib.fetch(trainlib.resume_from(places, False), "unused") == str(d / "ckpt-000000020.pt")


def test_model_goes_to_the_model_uri_or_the_model_dir(s3, tmp_path):
    f = tmp_path / "model.pt"
    f.write_bytes(b"weights")
    uri = f"s3://{BUCKET}/artifacts/alice/dev-ecs/model/"
    assert trainlib.publish_model(str(f), trainlib.Places(None, None, None, None, uri, None), s3=s3) == uri + "model.pt"
    assert s3.get_object(Bucket=BUCKET, Key="artifacts/alice/dev-ecs/model/model.pt")["Body"].read() == b"weights"
    out = tmp_path / "opt-ml-model"
    trainlib.publish_model(str(f), trainlib.Places(None, None, None, None, None, str(out)))
    assert (out / "model.pt").read_bytes() == b"weights"


def test_cifar_batches_are_found_under_the_dataset_or_absent(s3, tmp_path):
    places = trainlib.Places(f"s3://{BUCKET}/cifar10/v1/", None, None, None, None, None)
    assert trainlib.find_cifar(places, str(tmp_path / "c1"), s3=s3) is None  # no data: synthetic
    for name in trainlib.CIFAR_BATCHES:
        s3.put_object(Bucket=BUCKET, Key=f"cifar10/v1/cifar-10-batches-py/{name}", Body=name.encode())
    folder = Path(trainlib.find_cifar(places, str(tmp_path / "c2"), s3=s3))
    assert sorted(p.name for p in folder.iterdir()) == list(trainlib.CIFAR_BATCHES)
    assert (folder / "data_batch_3").read_bytes() == b"data_batch_3"


def test_example_needs_only_its_folder_and_the_image():
    """train.py imports torch only inside functions and nothing from outside its folder."""
    tree = ast.parse((EXAMPLE / "train.py").read_text())
    top = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    assert top <= set(sys.stdlib_module_names) | {"__future__", "trainlib"}
    lib = ast.parse((EXAMPLE / "trainlib.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(lib) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= set(sys.stdlib_module_names) | {"boto3"}  # boto3 is in every AWS DLC


def _prepare():
    import runpy

    return runpy.run_path(str(EXAMPLE / "prepare_data.py"))


def _unpickled(path):
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def test_a_generated_sample_has_the_layout_and_format_train_py_reads(tmp_path, s3):
    prep = _prepare()
    assert prep["main"]([str(tmp_path / "out"), "--sample", "4"]) == 0
    folder = tmp_path / "out" / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(prep["FILES"])
    for name in trainlib.CIFAR_BATCHES + ("test_batch",):
        batch = _unpickled(folder / name)
        assert len(batch[b"data"]) == 4 * 3072 and len(batch[b"labels"]) == 4
        assert all(0 <= label <= 9 for label in batch[b"labels"])
    assert len(_unpickled(folder / "batches.meta")[b"label_names"]) == 10
    # Uploaded as `trainstack upload OUT raw/cifar10/v1/` would, train.py's finder takes it from the prefix.
    for path in folder.iterdir():
        s3.put_object(Bucket=BUCKET, Key=f"cifar10/v1/cifar-10-batches-py/{path.name}", Body=path.read_bytes())
    places = trainlib.Places(f"s3://{BUCKET}/cifar10/v1/", None, None, None, None, None)
    found = Path(trainlib.find_cifar(places, str(tmp_path / "cache"), s3=s3))
    assert (found / "data_batch_5").read_bytes() == (folder / "data_batch_5").read_bytes()


def _tarball(tmp_path, members: dict[str, bytes]) -> Path:
    import io
    import tarfile

    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_an_archive_is_checked_then_only_its_batches_are_extracted_by_name(tmp_path):
    prep = _prepare()
    members = {f"cifar-10-batches-py/{n}": n.encode() for n in prep["FILES"]}
    members["cifar-10-batches-py/readme.html"] = b"<html>"
    members["../../escape"] = b"never written"  # an archive path is never trusted
    tarball = _tarball(tmp_path, members)
    dest = prep["extract"](tarball, tmp_path / "out", md5=prep["md5sum"](tarball))
    assert sorted(p.name for p in dest.iterdir()) == sorted(prep["FILES"])
    assert (dest / "data_batch_2").read_bytes() == b"data_batch_2" and not (tmp_path / "escape").exists()
    with pytest.raises(prep["PrepareError"], match=r"MD5 [0-9a-f]{32}, expected c58f30108f718f92721af3b95e74349a"):
        prep["extract"](tarball, tmp_path / "again")  # not the published archive
    partial = _tarball(tmp_path, {"cifar-10-batches-py/data_batch_1": b"x"})
    with pytest.raises(prep["PrepareError"], match=r"no batches.meta, data_batch_2"):
        prep["extract"](partial, tmp_path / "p", md5=prep["md5sum"](partial))


def test_without_data_the_example_stops_loudly_unless_synthetic(tmp_path):
    """No CIFAR-10 under the dataset: exit 2 with what to do, before torch is even imported."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINSTACK_", "SM_"))}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / "train.py"), "--epochs", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "no CIFAR-10 python batches" in proc.stderr and "prepare_data.py" in proc.stderr
    assert "trainstack upload ./cifar10 raw/cifar10/v1/" in proc.stderr and "--synthetic" in proc.stderr
    assert "No module named 'torch'" not in proc.stderr
