"""The product's own S3 writers, run for real against moto: the ec2 bootstrap (model, logs, markers), the
example's checkpoints and model (examples/cifar10/trainlib.py) and the run driver's run.json. Each request
is recorded as botocore signed it (operation, key, headers) and decided by the IAM engine
(tests/iam/engine.py) against the example platform's planned artifacts bucket policy, with the planned
ec2 node role (training writes) or a deployer grant (run.json) as the identity."""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.helpers import ROOT
from tests.iam.engine import (
    ACCOUNT,
    ALLOWED,
    OBJECT_OPERATIONS,
    S3_OPERATION_ACTION,
    Request,
    evaluate,
    s3_context,
)
from trainstack.run.run import Recorder, RunRecord
from trainstack.scripts import ec2_bootstrap as boot

sys.path.insert(0, str(ROOT / "examples" / "cifar10"))
import trainlib  # noqa: E402


@pytest.fixture
def recorded(aws_credentials, example_plans):
    """A moto bucket named like the planned artifacts bucket, a client that records what it signs."""
    art = example_plans["dev-ec2"].run.outputs["artifactUri"]
    bucket = art.split("/")[2]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        sent: list[tuple[str, str, dict]] = []

        def sign(request, operation_name, **kw):
            url = urllib.parse.urlsplit(request.url)
            key = urllib.parse.unquote(url.path.lstrip("/"))  # virtual-hosted style: the path is the key
            sent.append((operation_name, key, {k.lower(): v for k, v in request.headers.items()}))

        s3.meta.events.register("before-sign.s3", sign)
        yield s3, art, sent


def _decide(example_plans, sent, principal: str, policies) -> dict[str, str]:
    platform = example_plans["platform"].run
    art = platform.one("aws:s3/bucket:Bucket", "artifacts").state
    (policy,) = [
        json.loads(p.inputs["policy"])
        for p in platform.of_type("aws:s3/bucketPolicy:BucketPolicy")
        if p.inputs["bucket"] == art["id"]
    ]
    writes = [(op, key, h) for op, key, h in sent if S3_OPERATION_ACTION.get(op) == "s3:PutObject"]
    assert writes, sent
    return evaluate(
        Request(
            f"{i} {op} {key}",
            principal,
            S3_OPERATION_ACTION[op],
            f"{art['arn']}/{key}" if op in OBJECT_OPERATIONS else art["arn"],
            s3_context(headers),
            tuple(policies),
            policy,
        )
        for i, (op, key, headers) in enumerate(writes)
    )


def _node_role(example_plans):
    run = example_plans["dev-ec2"].run
    role = run.one("aws:iam/role:Role", "node-role")
    policies = [
        json.loads(p.inputs["policy"])
        for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == role.state["id"]
    ]
    return role.state["arn"], policies


def test_the_ec2_bootstrap_and_the_example_write_through_the_lake_policy(recorded, example_plans, tmp_path):
    s3, art, sent = recorded
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.pt").write_bytes(b"weights")
    boot.upload_dir(s3, str(model), art + "model/")
    s3.upload_file(str(model / "model.pt"), *boot.split_s3_uri(art + "logs/node-0.log"))  # as main() uploads logs
    boot.put_json(s3, art + "logs/node-0.done", {"exit_code": 0})
    boot.run_marker(s3, art, True, model_uri=art + "model/")
    ckpt_uri = art.replace("/artifacts/", "/checkpoints/", 1)
    places = trainlib.Places(None, None, ckpt_uri, None, art + "model/", None)
    local = tmp_path / "ckpt.pt"
    local.write_bytes(b"state")
    trainlib.save_checkpoint(str(local), 100, places, keep=2, s3=s3)
    trainlib.publish_model(str(local), places, s3=s3)

    ops = {op for op, _, _ in sent}
    assert {"PutObject"} <= ops
    assert not any(h.startswith("x-amz-server-side-encryption") for _, _, hs in sent for h in hs)
    role, policies = _node_role(example_plans)
    decided = _decide(example_plans, sent, role, policies)
    assert len(decided) >= 6 and set(decided.values()) == {ALLOWED}, decided


def test_the_run_drivers_run_json_passes_the_lake_policy(recorded, example_plans, tmp_path):
    s3, art, sent = recorded

    class Session:
        def client(self, *a, **kw):
            return s3

    record = RunRecord(stack="dev-ec2", template="ec2", region="us-east-1", artifact_uri=art)
    recorder = Recorder(record, tmp_path, Session)
    recorder.claim()  # the run owns its stack name: run.json is written (locally and to the artifacts bucket)
    assert recorder.s3_uri == art + "run.json"
    bucket = art.split("/")[2]
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}],
    }
    decided = _decide(example_plans, sent, f"arn:aws:iam::{ACCOUNT}:user/deployer", [grant])
    assert list(decided.values()) == [ALLOWED]
    assert Path(tmp_path / "dev-ec2" / "run.json").exists()
