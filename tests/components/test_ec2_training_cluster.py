"""The ec2 backend: nodes that bootstrap themselves, train with torchrun and scale to zero."""

from __future__ import annotations

import ast
import base64
import gzip
import io
import json
import re
import secrets
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.helpers import NOW, ROOT, cluster_config, policy_of, statements
from trainstack.components import ec2_training_cluster as E
from trainstack.model.config import parse_config
from trainstack.model.run_locations import RunLocations

LOC = RunLocations(
    "raw-b",
    "arn:aws:s3:::raw-b",
    "cifar10/v1/",
    "art-b",
    "arn:aws:s3:::art-b",
    "artifacts/bob/dev-ec2/",
    "checkpoints/bob/dev-ec2/",
)


@pytest.fixture(scope="module")
def ec2(run_stack):
    return run_stack(
        cluster_config(
            "ec2",
            gpu={"family": "g4dn", "instanceTypes": ["g4dn.12xlarge"], "maxInstances": 2, "placementGroup": True},
            job={"nodes": 2, "gpusPerNode": 4},
        ),
        stack="dev-ec2",
    )


def user_data_of(run) -> str:
    return base64.b64decode(run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["userData"]).decode()


def settings_of(script: str) -> dict:
    return json.loads(re.search(r"<<'TRAINSTACK_JSON'\n(.*?)\nTRAINSTACK_JSON", script, re.S).group(1))


def test_creating_the_group_starts_the_run(ec2):
    asg = ec2.one("aws:autoscaling/group:Group")
    assert asg.inputs["desiredCapacity"] == 2 and asg.inputs["minSize"] == 0 and asg.inputs["maxSize"] == 2
    assert asg.ignore_changes == ["desiredCapacity"]
    assert "protectFromScaleIn" not in asg.inputs or asg.inputs["protectFromScaleIn"] is False


def test_user_data_ships_the_bootstrap_module_without_docstrings(ec2):
    script = user_data_of(ec2)
    packed = re.search(r"echo '([A-Za-z0-9+/=]+)' \| base64 -d \| tar -xz -C /opt/trainstack", script).group(1)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(base64.b64decode(packed)))) as tar:
        files = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}
    assert sorted(files) == [
        "ec2_bootstrap.py",
        "trainstack/__init__.py",
        "trainstack/model/__init__.py",
        "trainstack/model/torchrun.py",
    ]
    shipped = files["ec2_bootstrap.py"]
    source = (ROOT / "scripts" / "ec2_bootstrap.py").read_text()
    torchrun = (ROOT / "trainstack" / "model" / "torchrun.py").read_text()
    assert ast.dump(ast.parse(files["trainstack/model/torchrun.py"])) == ast.dump(ast.parse(E.minify(torchrun)))
    # the same code: only docstrings and comments are gone
    assert ast.dump(ast.parse(shipped)) == ast.dump(ast.parse(E.minify(source)))
    assert "Boot script of each GPU instance" not in shipped and "def bootstrap(" in shipped
    for text in files.values():
        ast.parse(text, feature_version=(3, 9))  # the DLAMI's python3
    assert "python3 /opt/trainstack/ec2_bootstrap.py --settings /etc/trainstack/run.json" in script
    # with room to spare for longer settings (commands, environment)
    assert len(script.encode()) < E.USER_DATA_LIMIT - 2500


def test_the_shipped_files_run_on_their_own(ec2, tmp_path):
    """The node has python3, boto3 and what the user data unpacks, nothing of trainstack's install: the
    bootstrap must import from the files beside it."""
    import botocore

    script = user_data_of(ec2)
    packed = re.search(r"echo '([A-Za-z0-9+/=]+)' \| base64 -d \| tar -xz -C /opt/trainstack", script).group(1)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(base64.b64decode(packed)))) as tar:
        tar.extractall(tmp_path, filter="data")
    site = str(Path(botocore.__file__).resolve().parent.parent)
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import ec2_bootstrap, trainstack.model.torchrun as t; "
        "assert t.__file__.startswith(sys.argv[1]), t.__file__; "
        "print(ec2_bootstrap.torchrun_argv(['python', 'train.py'], 2, 4, '10.0.0.1', 29500, 'r')[-1])"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(tmp_path), site], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "train.py"


def test_user_data_scales_to_zero_when_the_bootstrap_dies(ec2):
    script = user_data_of(ec2)
    line = next(x for x in script.splitlines() if x.startswith("nohup bash -c"))
    inner = shlex.split(line)[3]
    assert inner.startswith("python3 /opt/trainstack/ec2_bootstrap.py")
    assert "test -e /opt/trainstack/run/finished ||" in inner
    assert (
        "aws autoscaling update-auto-scaling-group --region us-east-1 --auto-scaling-group-name "
        "trainstack-alice-dev-ec2-gpu --min-size 0 --desired-capacity 0"
    ) in inner


def test_group_has_a_fixed_name_and_boots_after_its_node_policy(ec2):
    asg = ec2.one("aws:autoscaling/group:Group")
    assert asg.inputs["name"] == "trainstack-alice-dev-ec2-gpu" == settings_of(user_data_of(ec2))["group"]
    policy = ec2.one("aws:iam/rolePolicy:RolePolicy", "node-run")
    assert policy.urn in asg.dependencies
    assert asg.inputs["capacityRebalance"] is False  # a rebalance would kill a healthy torchrun


def test_bootstrap_settings_are_the_runs(ec2, platform_outputs):
    s = settings_of(user_data_of(ec2))
    art = platform_outputs["buckets"]["artifacts"]["name"]
    assert s["nodes"] == 2 and s["gpus_per_node"] == 4 and s["command"] == ["python", "train.py"]
    assert s["artifact_uri"] == f"s3://{art}/artifacts/alice/dev-ec2/"
    assert s["checkpoint_uri"] == f"s3://{art}/checkpoints/alice/dev-ec2/"
    assert s["max_runtime_seconds"] == 6 * 3600 and s["teardown"] is True
    assert s["log_group"] == ec2.one("aws:cloudwatch/logGroup:LogGroup").state["name"]


def test_bootstrap_accepts_the_settings_it_is_given(ec2, tmp_path):
    from trainstack.scripts import ec2_bootstrap

    path = tmp_path / "run.json"
    path.write_text(json.dumps(settings_of(user_data_of(ec2))))
    loaded = ec2_bootstrap.load_settings(str(path))
    unknown = set(json.loads(path.read_text())) - set(ec2_bootstrap.REQUIRED) - set(ec2_bootstrap.DEFAULTS)
    assert unknown == set() and loaded["nodes"] == 2


def test_ecr_login_for_ecr_images_only():
    cfg = parse_config(cluster_config("ec2"), stack="s", now=NOW).cluster
    args = E.Ec2TrainingClusterArgs(
        owner="bob",
        stack="s",
        region="us-east-1",
        subnet_ids=["subnet-1"],
        security_group_id="sg-1",
        locations=LOC,
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        instance_types=cfg.gpu.instance_types,
        max_instances=cfg.gpu.max_instances,
        image=cfg.job.image,
        command=cfg.job.command,
        max_runtime_seconds=60,
    )
    settings = E.bootstrap_settings(args, locations=LOC)
    script = E.render_user_data(settings)
    assert "docker login --username AWS --password-stdin 763104351884.dkr.ecr.us-east-1.amazonaws.com" in script
    public = dict(settings, image="docker.io/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime")
    assert "docker login" not in E.render_user_data(public)


def test_oversized_user_data_is_refused():
    with pytest.raises(ValueError, match="16384-byte limit"):
        # Random text does not compress: 40 KB of it cannot fit in 16 KB of user data.
        E.render_user_data({"region": "us-east-1", "image": "x"}, bootstrap_source=secrets.token_hex(20000))


def test_deep_learning_ami_from_ssm(ec2):
    params = [a["name"] for t, a in ec2.invokes if t == "aws:ssm/getParameter:getParameter"]
    assert params == ["/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"]


def test_node_role_may_scale_only_its_own_group(ec2):
    doc = policy_of(ec2.one("aws:iam/rolePolicy:RolePolicy", "node-run"))
    sids = {s["Sid"]: s for s in statements(doc)}
    arn = (
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:"
        "autoScalingGroupName/trainstack-alice-dev-ec2-gpu"
    )
    assert sids["ScaleOwnGroupToZero"]["Resource"] == arn
    assert sids["ScaleOwnGroupToZero"]["Action"] == "autoscaling:UpdateAutoScalingGroup"
    assert sids["LatecomerLeavesOwnGroup"] == {
        "Sid": "LatecomerLeavesOwnGroup",
        "Effect": "Allow",
        "Resource": arn,
        "Action": "autoscaling:TerminateInstanceInAutoScalingGroup",
    }
    assert set(sids["DiscoverPeers"]["Action"]) == {"ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups"}
    assert sids["PullTrainingImage"]["Resource"] == "arn:aws:ecr:us-east-1:763104351884:repository/pytorch-training"


def test_placement_group_for_multi_node(ec2):
    assert ec2.one("aws:ec2/placementGroup:PlacementGroup").inputs["strategy"] == "cluster"


def test_exports(ec2):
    assert {"groupName", "groupArn", "nodeRoleArn", "logGroupName", "successMarkerUri"} <= set(ec2.outputs)
    assert ec2.outputs["successMarkerUri"].endswith("/artifacts/alice/dev-ec2/_SUCCESS")
