"""The model check of tests/fakes/api_calls.py catches what the real service would refuse: a planted bad enum,
an over-long name, an unknown parameter (botocore's models, not hand-written rules)."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from tests.fakes.api_calls import model_problems, recorded_calls


def test_planted_bad_arguments_are_named_and_good_ones_pass():
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    stub = Stubber(sm)  # answers without a network; the recorder sees the arguments before botocore validates
    stub.add_response("stop_training_job", {})
    stub.activate()
    with recorded_calls() as calls:
        sm.stop_training_job(TrainingJobName="alice-dev-sagemaker-20261123120000-ab12")
    assert [c[1] for c in calls] == ["StopTrainingJob"] and model_problems(calls) == []

    model = sm.meta.service_model.operation_model
    planted = [
        ("sagemaker", "ListTrainingJobs", {"StatusEquals": "Running"}, model("ListTrainingJobs")),
        ("sagemaker", "StopTrainingJob", {"TrainingJobName": "x" * 64}, model("StopTrainingJob")),
        ("sagemaker", "StopTrainingJob", {"JobName": "x"}, model("StopTrainingJob")),
    ]
    problems = model_problems(planted)
    assert any("StatusEquals = 'Running': not one of the model's" in p for p in problems)
    assert any("64 characters, the model allows at most 63" in p for p in problems)
    assert any('Unknown parameter in input: "JobName"' in p for p in problems)
