"""`trainstack exec` never starts a job under a prefix another job already wrote (trainstack.run.jobs.unused_job_id),
against moto's S3."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from moto import mock_aws

from trainstack.run import jobs
from trainstack.run.run_config import RefusedError

ARTIFACTS = "s3://lake-artifacts/artifacts/alice/t-dev-ecs/"
STARTED = dt.datetime(2026, 12, 3, 18, 43, 40, 120_000, tzinfo=dt.timezone.utc)


@pytest.fixture
def s3(aws_credentials):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="lake-artifacts")
        client.put_object(Bucket="lake-artifacts", Key="artifacts/alice/t-dev-ecs/jobs/20261203184340-1e05/run.json")
        yield client


def test_an_id_whose_prefix_holds_a_job_is_drawn_again(s3, monkeypatch):
    draws = iter(["20261203184340-1e05", "20261203184340-1e3a"])  # the first is taken
    monkeypatch.setattr(jobs, "new_job_id", lambda started: next(draws))
    assert jobs.unused_job_id(s3, ARTIFACTS, STARTED) == "20261203184340-1e3a"


def test_a_free_id_is_taken_at_the_first_draw_and_keeps_the_start_order(s3):
    first = jobs.unused_job_id(s3, ARTIFACTS, STARTED)
    assert first.startswith("20261203184340-") and first != "20261203184340-1e05"
    assert jobs.unused_job_id(s3, ARTIFACTS, STARTED + dt.timedelta(milliseconds=5)) > first


def test_every_draw_taken_is_a_refusal_not_an_overwrite(s3, monkeypatch):
    monkeypatch.setattr(jobs, "new_job_id", lambda started: "20261203184340-1e05")
    with pytest.raises(RefusedError, match="no unused job id"):
        jobs.unused_job_id(s3, ARTIFACTS, STARTED)


def test_credentials_that_may_not_list_the_jobs_still_start_one(monkeypatch):
    """Listing is a safeguard: an identity allowed to start jobs but not to list them gets its drawn id, as before
    (botocore's Stubber answers AccessDenied, as S3 does without s3:ListBucket)."""
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    monkeypatch.setattr(jobs, "new_job_id", lambda started: "20261203184340-1e05")
    with Stubber(client) as stub:
        stub.add_client_error("list_objects_v2", "AccessDenied", http_status_code=403)
        assert jobs.unused_job_id(client, ARTIFACTS, STARTED) == "20261203184340-1e05"
        stub.assert_no_pending_responses()
