"""`trainstack run` / `down` end to end: the real Automation API SDK against the strict fake CLI
(tests/fakes/), jobs in moto. Fast: the program's offline evaluation is cached across tests."""

from __future__ import annotations

import pytest
from moto import mock_aws
from run_harness import Cloud, command, create_data_lake, install_cloud, make_fake_cli, options, quiet_ui

from scripts import run as run_mod


@pytest.fixture(scope="session")
def program_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fake-pulumi-cache")


@pytest.fixture
def cli(tmp_path, monkeypatch, platform_outputs, program_cache):
    return make_fake_cli(tmp_path, monkeypatch, platform_outputs, program_cache)


@pytest.fixture
def cloud(aws_credentials, monkeypatch, platform_outputs):
    c = Cloud()
    with mock_aws():
        create_data_lake(platform_outputs)
        install_cloud(monkeypatch, c)
        yield c


def test_ecs_run_end_to_end(cli, cloud, tmp_path):
    ui, out = quiet_ui()
    record = run_mod.run(options("dev-ecs", tmp_path), ui, command=command())
    assert record.exit_code == 0, record.reason
