"""The platform program maps every `trainstack:dataLake` setting onto the DataLake component's own args
(components take no trainstack config): a new setting that the mapping forgets fails here."""

from __future__ import annotations

import dataclasses

from trainstack.components.data_lake import DataLakeArgs
from trainstack.model.config import DataLakeConfig


def test_every_data_lake_setting_has_a_component_arg():
    assert {f.name for f in dataclasses.fields(DataLakeConfig)} <= {f.name for f in dataclasses.fields(DataLakeArgs)}


def test_non_default_data_lake_settings_reach_the_resources(run_program):
    from trainstack.programs.program import main

    lake = {
        "checkpointRetentionDays": 3,
        "noncurrentVersionDays": 9,
        "accessLogRetentionDays": 40,
        "glueDatabase": False,
        "protect": False,
    }
    run = run_program(
        main, config={"aws:region": "us-east-1", "trainstack:kind": "platform", "trainstack:dataLake": lake}
    )
    rules = {
        r.name: {rule["id"]: rule for rule in r.inputs["rules"]}
        for r in run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    }
    artifacts, logs = rules["datalake-artifacts-lifecycle"], rules["datalake-logs-lifecycle"]
    assert artifacts["expire-checkpoints"]["expiration"] == {"days": 3}
    assert artifacts["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 9}
    assert logs["expire-access-logs"]["expiration"] == {"days": 40}
    assert run.of_type("aws:glue/catalogDatabase:CatalogDatabase") == []
    assert not any(r.protect for r in run.resources)
