"""`trainstack upload` against a moto server (one per session), pointed at by AWS_ENDPOINT_URL."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import urllib.parse

import pytest
from rich.console import Console

from tests.iam.engine import (
    ACCOUNT,
    ALLOWED,
    EXPLICIT_DENY,
    OBJECT_OPERATIONS,
    S3_OPERATION_ACTION,
    Request,
    evaluate,
    s3_context,
)
from trainstack.fleet.upload import CHECKSUM_ALGORITHM, MANIFEST, MIB, SHA256_METADATA, UploadError, s3_client, upload

_names = itertools.count()
UPLOADER = f"arn:aws:iam::{ACCOUNT}:user/data-engineer"
CHUNK_MIB = 5  # S3's (and moto's) smallest part; files of 5 MiB + a bit are two-part uploads


@pytest.fixture
def lake(moto_server, aws_credentials, monkeypatch):
    """A fresh data-lake bucket as the platform builds it: versioned, SSE-KMS default; its policy document."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    s3 = s3_client("us-east-1")
    import boto3

    key_arn = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    bucket = f"lake-raw-{next(_names)}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    # No bucket policy on the moto bucket (moto does not evaluate conditions):
    # test_uploads_pass_the_lakes_planned_bucket_policy has the IAM engine decide the signed requests.
    requests: list = []
    signed: list = []  # (operation, key, headers) as botocore signed them
    s3.meta.events.register("before-send.s3", lambda request, **kw: requests.append(request))

    def sign(request, operation_name, **kw):
        path = urllib.parse.unquote(urllib.parse.urlsplit(request.url).path)  # path style: /bucket/key
        key = path.split("/", 2)[2] if path.count("/") >= 2 else ""
        signed.append((operation_name, key, {k.lower(): v for k, v in request.headers.items()}))

    s3.meta.events.register("before-sign.s3", sign)
    return {"s3": s3, "bucket": bucket, "requests": requests, "signed": signed}


def dataset(tmp_path, big: int = 1):
    src = tmp_path / "cifar"
    (src / "train").mkdir(parents=True)
    for i in range(big):  # above the multipart threshold: two parts each
        (src / "train" / f"shard-{i}.bin").write_bytes(os.urandom(CHUNK_MIB * MIB + 4096 + i))
    (src / "labels.csv").write_text("id,label\n1,cat\n")
    (src / "README.txt").write_text("cifar subset\n")
    return src


def run(lake, src, dest="raw/cifar10/v1/", **kw):
    return upload(
        src,
        dest,
        bucket=lake["bucket"],
        s3=lake["s3"],
        jobs=4,
        chunk_mib=CHUNK_MIB,
        console=Console(file=open(os.devnull, "w")),
        **kw,
    )


def data_requests(lake) -> list:
    """PutObject / UploadPart / CreateMultipartUpload requests that carried dataset bytes or started one."""
    return [
        r
        for r in lake["requests"]
        if r.method in ("PUT", "POST")
        and MANIFEST not in r.url
        and ("uploadId=" in r.url or r.method == "PUT" or "uploads" in r.url)
    ]


def test_the_extra_args_are_ones_s3transfer_accepts():
    from s3transfer.manager import TransferManager

    assert {"Metadata", "ChecksumAlgorithm"} <= set(TransferManager.ALLOWED_UPLOAD_ARGS)


def test_a_folder_uploads_multipart_with_checksums_metadata_and_a_manifest(lake, tmp_path):
    src = dataset(tmp_path, big=2)
    result = run(lake, src)
    assert result.ok and len(result.uploaded) == 4 and result.manifest_written
    s3, bucket = lake["s3"], lake["bucket"]
    big = s3.head_object(Bucket=bucket, Key="cifar10/v1/train/shard-0.bin", ChecksumMode="ENABLED")
    import hashlib

    assert big["Metadata"][SHA256_METADATA] == hashlib.sha256((src / "train/shard-0.bin").read_bytes()).hexdigest()
    assert big["ETag"].strip('"').endswith("-2")  # a two-part multipart upload
    assert "ChecksumCRC32" in big  # S3 verified a CRC32 per part
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"cifar10/v1/{MANIFEST}")["Body"].read())
    assert manifest["dataset"] == "raw/cifar10/v1/" and manifest["fileCount"] == 4
    assert [f["key"] for f in manifest["files"]] == [
        "README.txt",
        "labels.csv",
        "train/shard-0.bin",
        "train/shard-1.bin",
    ]
    assert all(f["sha256"] for f in manifest["files"])
    parts = [r for r in lake["requests"] if "partNumber=" in r.url]
    assert parts and all(r.headers.get("x-amz-checksum-crc32") or r.headers.get("x-amz-trailer") for r in parts)


def test_uploads_pass_the_lakes_planned_bucket_policy(lake, tmp_path, example_plans):
    """Every request `trainstack upload` really sent (operation and headers as botocore signed them),
    replayed against the raw bucket of the example platform plan and decided by the IAM engine
    (tests/iam/engine.py). The uploader's own IAM rights are the user's: a grant on the bucket stands in."""
    run(lake, dataset(tmp_path, big=1))
    sent = lake["signed"]
    assert {"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "PutObject"} <= {op for op, _, _ in sent}
    platform = example_plans["platform"].run
    raw = platform.one("aws:s3/bucket:Bucket", "raw").state
    policy = json.loads(
        next(p for p in platform.of_type("aws:s3/bucketPolicy:BucketPolicy") if p.inputs["bucket"] == raw["id"]).inputs[
            "policy"
        ]
    )
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": [raw["arn"], f"{raw['arn']}/*"]}],
    }
    requests = []
    for i, (op, key, headers) in enumerate(sent):
        action = S3_OPERATION_ACTION[op]
        resource = f"{raw['arn']}/{key}" if op in OBJECT_OPERATIONS else raw["arn"]
        for tls in (True, False):
            requests.append(
                Request(
                    f"{i} {op} {key} tls={tls}",
                    UPLOADER,
                    action,
                    resource,
                    s3_context(headers, tls=tls),
                    (grant,),
                    policy,
                )
            )
    decided = evaluate(requests)
    assert {label: d for label, d in decided.items() if label.endswith("tls=True") and d != ALLOWED} == {}
    assert {d for label, d in decided.items() if label.endswith("tls=False")} == {EXPLICIT_DENY}


def test_the_default_endpoint_is_tls(monkeypatch, aws_credentials):
    # The lake denies aws:SecureTransport=false; only tests point boto3 at an http endpoint.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert s3_client("us-east-1").meta.endpoint_url.startswith("https://")


def test_a_second_identical_upload_sends_nothing(lake, tmp_path):
    src = dataset(tmp_path)
    run(lake, src)
    lake["requests"].clear()
    again = run(lake, src)
    assert again.ok and again.bytes_sent == 0 and not again.uploaded and len(again.plan.skip) == 3
    assert not again.manifest_written
    assert [r for r in lake["requests"] if r.method in ("PUT", "POST")] == []


def test_a_changed_file_is_refused_without_overwrite_and_nothing_is_sent(lake, tmp_path):
    src = dataset(tmp_path)
    run(lake, src)
    (src / "labels.csv").write_text("id,label\n1,dog\n")
    (src / "new.txt").write_text("new\n")
    lake["requests"].clear()
    with pytest.raises(UploadError) as err:
        run(lake, src)
    assert "cifar10/v1/labels.csv" in str(err.value) and "--overwrite" in str(err.value)
    assert [r for r in lake["requests"] if r.method in ("PUT", "POST")] == []
    done = run(lake, src, overwrite=True)
    assert sorted(f.rel for f in done.uploaded) == ["labels.csv", "new.txt"]
    body = lake["s3"].get_object(Bucket=lake["bucket"], Key="cifar10/v1/labels.csv")["Body"].read()
    assert body == b"id,label\n1,dog\n"


def test_dry_run_sends_nothing(lake, tmp_path):
    result = run(lake, dataset(tmp_path), dry_run=True)
    assert len(result.plan.upload) == 3 and not result.uploaded
    assert "Contents" not in lake["s3"].list_objects_v2(Bucket=lake["bucket"])


def test_bad_dest_names_the_argument_and_the_fix(tmp_path):
    with pytest.raises(UploadError, match=r"DEST = \"s3://x/y\".*raw/cifar10/v1/"):
        upload(tmp_path, "s3://x/y", bucket="b", s3=object())
    with pytest.raises(UploadError, match=r"--chunk-mib = 1"):
        upload(tmp_path, "raw/x/", bucket="b", s3=object(), chunk_mib=1)


def _fail_part(lake, key_part: str, part: int, action):
    """Run `action` when the given part of the given key is about to be sent (from a transfer thread)."""
    fired = threading.Event()

    def hook(params, model, **kw):
        if params.get("PartNumber") == part and key_part in params.get("Key", "") and not fired.is_set():
            fired.set()
            action()

    lake["s3"].meta.events.register("before-parameter-build.s3.UploadPart", hook)
    return lambda: lake["s3"].meta.events.unregister("before-parameter-build.s3.UploadPart", hook)


def _no_trace(lake, key):
    s3, bucket = lake["s3"], lake["bucket"]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    pending = [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return key not in listed and pending == []


def test_a_failure_mid_upload_leaves_no_object_and_a_retry_sends_only_the_rest(lake, tmp_path):
    src = dataset(tmp_path)

    def boom():
        raise ConnectionError("network went away")

    remove = _fail_part(lake, "shard-0", 2, boom)
    first = run(lake, src)
    remove()
    assert [f.rel for f, _ in first.failed] == ["train/shard-0.bin"] and not first.manifest_written
    assert _no_trace(lake, "cifar10/v1/train/shard-0.bin")  # the multipart upload was aborted
    retry = run(lake, src)
    assert retry.ok and [f.rel for f in retry.uploaded] == ["train/shard-0.bin"] and len(retry.plan.skip) == 2
    assert retry.manifest_written


def test_ctrl_c_mid_upload_aborts_the_multipart_upload(sigint_raises, lake, tmp_path):
    src = dataset(tmp_path, big=1)

    def interrupt():
        os.kill(os.getpid(), signal.SIGINT)  # the main thread gets KeyboardInterrupt, as on a terminal
        raise ConnectionError("interrupted")

    remove = _fail_part(lake, "shard-0", 2, interrupt)
    result = run(lake, src)
    remove()
    assert result.interrupted and not result.ok and not result.manifest_written
    assert _no_trace(lake, "cifar10/v1/train/shard-0.bin")
    assert run(lake, src).ok


def test_checksum_algorithm_is_one_s3_verifies_per_part():
    import botocore.session

    model = botocore.session.get_session().get_service_model("s3").operation_model("UploadPart")
    assert CHECKSUM_ALGORITHM in model.input_shape.members["ChecksumAlgorithm"].enum


def test_on_a_terminal_a_progress_bar_counts_bytes(lake, tmp_path):
    import io

    out = io.StringIO()
    result = upload(
        dataset(tmp_path, big=1),
        "curated/cifar10/v2/",
        bucket=lake["bucket"],
        s3=lake["s3"],
        jobs=2,
        chunk_mib=CHUNK_MIB,
        console=Console(file=out, force_terminal=True, width=120),
    )
    assert result.ok and result.bytes_sent == CHUNK_MIB * MIB + 4096 + len("id,label\n1,cat\n") + len("cifar subset\n")
    text = out.getvalue()
    # One unit per screen: the plan line, the bar's size and its speed all count in MiB (binary), never MB.
    assert "3/3 files" in text and "5.0/5.0 MiB" in text and "MiB/s" in text and " MB" not in text


def test_without_bucket_or_pulumi_cli_the_error_says_what_to_pass(monkeypatch, tmp_path):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("TRAINSTACK_PULUMI_ROOT", raising=False)
    (tmp_path / "a.csv").write_text("x\n")
    with pytest.raises(UploadError, match=r"--platform organization/trainstack/platform.*--bucket NAME.*buckets\.raw"):
        upload(tmp_path, "raw/x/", s3=object())


def test_the_cli_exit_codes(lake, tmp_path):
    from typer.testing import CliRunner

    from trainstack.cli.main import app

    src = dataset(tmp_path, big=0)
    args = ["upload", str(src), "raw/cli/v1/", "--bucket", lake["bucket"], "--chunk-mib", "5"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0 and "2 uploaded" in first.output, first.output
    (src / "labels.csv").write_text("changed\n")
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "--overwrite" in refused.output


def test_when_leftovers_cannot_be_checked_nothing_is_claimed_about_them():
    """A failed listing (e.g. no such bucket) is not "N uploads could not be aborted; their parts are billed"."""
    import datetime as dt

    from botocore.exceptions import ClientError

    from trainstack.fleet import upload as up

    class S3:
        def get_paginator(self, name):
            raise ClientError({"Error": {"Code": "NoSuchBucket", "Message": "gone"}}, "ListMultipartUploads")

    left, why = up._abort_leftovers(S3(), "b", {"k1", "k2"}, dt.datetime.now(dt.timezone.utc), "p/")
    assert left == [] and "NoSuchBucket" in why
    plan = up.UploadPlan("b", up.parse_dest("raw/p/"))
    text = up.summary(up.UploadResult(plan, unchecked=why))
    assert "could not check for unfinished multipart uploads" in text and "billed" not in text


def test_a_missing_bucket_is_refused_before_a_byte_is_sent(lake, tmp_path):
    src = dataset(tmp_path, big=0)
    with pytest.raises(UploadError, match=r"bucket no-such-lake: does not exist \(nothing was uploaded\)"):
        upload(src, "raw/x/v1/", bucket="no-such-lake", s3=lake["s3"], console=Console(file=open(os.devnull, "w")))
    assert not [r for r in lake["requests"] if r.method in ("PUT", "POST")]
